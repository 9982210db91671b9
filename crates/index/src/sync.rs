//! The only place in this crate that names atomics.
//!
//! Under `--cfg loom` everything comes from `loom`, so the loom models in
//! `tests/loom.rs` check the real code of this crate; otherwise from `std`.
//! (The same pattern as `faster-epoch`'s `sync` module.)

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering, fence};

/// Waits politely inside a retry loop. Under loom this yields to the model
/// scheduler (a spin loop without a yield never terminates there); otherwise
/// it backs off with `crossbeam_utils::Backoff`, which spins a little and then
/// yields the thread. It never sleeps.
pub(crate) struct Spin {
    #[cfg(not(loom))]
    backoff: crossbeam_utils::Backoff,
}

impl Spin {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            backoff: crossbeam_utils::Backoff::new(),
        }
    }

    pub(crate) fn wait(&self) {
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        self.backoff.snooze();
    }
}
