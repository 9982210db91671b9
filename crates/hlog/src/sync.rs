//! The atomics of the log's *control* words, switchable to `loom`.
//!
//! Under `--cfg loom` the packed tail word, the region boundaries (`read_only`,
//! `safe_read_only`, `head`, `safe_head`, `flushed_until`, `begin`) and the failure flags
//! come from `loom`, so `tests/loom.rs` model-checks the real page-turn protocol; otherwise
//! they come from `std`.
//!
//! Frame memory (see `crate::frame`) and record words deliberately stay `std` atomics even
//! under loom: every loom atomic operation is a scheduling point, and zeroing one 4 KiB frame
//! would add 512 of them, which explodes the state space. The models therefore check the
//! control protocol (who opens a page, when a frame may be reused) and verify frame contents
//! with ordinary assertions after the fact, not loom's race detector.
//!
//! The flush bookkeeping uses a `std` `Mutex`; no loom operation is ever performed while it
//! is held (loom could otherwise switch to a thread that blocks on it and deadlock its
//! scheduler).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Gives other threads a chance to run inside a helping loop: `loom`'s yield under loom (a
/// loop without it never terminates in the model), the OS scheduler's otherwise.
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}
