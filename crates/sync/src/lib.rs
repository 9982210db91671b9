//! # faster-sync: one std/loom switch for the workspace
//!
//! The crates with lock-free protocols (`faster-epoch`, `faster-index`, `faster-hlog`,
//! `faster-cpr`) name their atomics, `Arc`, `Mutex` and cells only through this crate, so
//! that under `--cfg loom` everything comes from `loom` and the loom models in their
//! `tests/loom.rs` check the real code; otherwise from `std`. (crossbeam keeps the same
//! switch in one place, `crossbeam-utils`; the idea is the same.)
//!
//! * the atomics, [`fence`], [`Arc`], [`Mutex`] and [`MutexGuard`];
//! * [`UnsafeCell`]: loom's cell, or a `std` one with the same closure-based `with_mut`;
//! * [`Spin`]: a spin-then-yield backoff (crossbeam's `Backoff`; a loom yield under loom);
//! * [`yield_now`]: the thread's yield (loom's under loom, where a loop without it never
//!   ends);
//! * [`lock`] and [`try_lock`], which ignore poisoning (the guarded values stay consistent
//!   across a panic everywhere they are used), and [`lock_std`] for `std` mutexes that stay
//!   `std` under loom (device bookkeeping, callbacks' result slots).
//!
//! It knows nothing of the store: no records, pages, checkpoints or devices.

#![forbid(unsafe_code)]

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(loom)]
pub use loom::sync::{Arc, Mutex, MutexGuard};

#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(loom)]
pub use loom::cell::UnsafeCell;

/// `std`'s `UnsafeCell` with loom's closure-based access, so the same code compiles both
/// ways.
#[cfg(not(loom))]
#[derive(Debug)]
pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    pub fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a raw pointer to the value (loom's `with_mut`).
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// A wait step for spin loops: exponential spinning, then yielding (crossbeam's `Backoff`);
/// under loom, a yield to the model's scheduler.
#[derive(Debug, Default)]
pub struct Spin {
    #[cfg(not(loom))]
    backoff: crossbeam_utils::Backoff,
}

impl Spin {
    /// A fresh backoff.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits one step.
    pub fn wait(&self) {
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        self.backoff.snooze();
    }
}

/// Lets other threads run inside a helping loop: loom's yield under loom, the OS
/// scheduler's otherwise.
pub fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// Locks `m`, ignoring poisoning.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Locks `m` if it is free, ignoring poisoning; `None` if another thread holds it.
pub fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    #[cfg(not(loom))]
    {
        match m.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
    #[cfg(loom)]
    {
        m.try_lock().ok()
    }
}

/// Locks a `std` mutex (one that stays `std` under loom), ignoring poisoning.
pub fn lock_std<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
