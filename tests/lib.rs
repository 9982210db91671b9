//! # faster-tests: cross-crate integration tests
//!
//! One file per suite at `tests/<suite>.rs`, each declared as a `[[test]]`
//! target in this package's `Cargo.toml`. Suites exercise the workspace
//! through the `faster` facade, the way a user sees it:
//!
//! * `subcrates` — every re-exported crate is reachable through the facade
//!   and works through it.
//!
//! This library target is empty; shared test helpers will live here when a
//! second suite needs them.
