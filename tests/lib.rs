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
//! This library target holds what several suites share: [`Rng`].

/// A small xorshift generator shared by the suites: reproducible from its seed, without extra
/// dependencies.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
