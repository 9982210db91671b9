//! # faster-tests: cross-crate integration tests
//!
//! One file per suite at `tests/<suite>.rs`, each declared as a `[[test]]`
//! target in this package's `Cargo.toml`. Suites exercise the workspace
//! through the `faster` facade, the way a user sees it:
//!
//! * `subcrates` — every re-exported crate is reachable through the facade
//!   and works through it.
//! * `store_basic` — the store's operations, serial numbers, session ids,
//!   tag collisions, devices, refusing an existing store, closing.
//! * `store_concurrency` — no lost updates, no torn reads, the fuzzy region,
//!   multi-session stress, pending RMWs racing on shared keys.
//! * `store_larger_than_memory` — 200 MB through 16 MiB of log memory, read
//!   back through the blocking and the non-blocking forms.
//! * `store_model` — a proptest of one session against a `HashMap` model
//!   under constant eviction.
//! * `store_batch` — the batched API against a `HashMap` model (memory and
//!   disk), serial numbers, errors, concurrent batched RMWs.
//! * `store_faults` — oversized keys and values, injected device read and
//!   write failures, closed stores: typed errors, never panics or wrong data.
//!
//! This library target is empty; each suite keeps its few helpers to itself.
