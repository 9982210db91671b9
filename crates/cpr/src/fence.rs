//! The asymmetric fence that keeps locked instructions off the session's fast
//! path.
//!
//! A session announces "I am inside an operation" with a plain store and then
//! reads the global state; the checkpoint driver publishes a new state and then
//! reads whether the session is inside an operation. That is Dekker's pattern:
//! without a store-load barrier on *both* sides, both can miss each other. The
//! session side runs on every operation, the driver side a few times per
//! checkpoint, so the cost goes to the driver:
//!
//! * `light` (session side) is a compiler fence when the process is
//!   registered for `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which
//!   `heavy` (driver side) then issues: the kernel runs a full barrier on
//!   every CPU that runs a thread of this process, which is as if each of
//!   those threads had executed a `SeqCst` fence at that point.
//! * Elsewhere (not Linux, an old kernel, registration refused) both sides are
//!   `SeqCst` fences, which is correct everywhere.
//! * Under loom both are `SeqCst` fences, the abstraction the models check.
//!
//! The mode is chosen once, by [`init`], before any session exists, and never
//! changes afterwards, so the two sides always agree.

use crate::sync::{Ordering, fence};

#[cfg(all(target_os = "linux", not(loom)))]
mod imp {
    use std::sync::Once;
    use std::sync::atomic::{AtomicBool, Ordering};

    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    static INIT: Once = Once::new();
    static EXPEDITED: AtomicBool = AtomicBool::new(false);

    fn membarrier(cmd: libc::c_long) -> bool {
        // SAFETY: membarrier(2) takes two integer arguments (command and
        // flags), touches no memory of ours and only fails with an error code.
        let r = unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_long) };
        r == 0
    }

    pub(super) fn init() {
        INIT.call_once(|| {
            if membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) {
                EXPEDITED.store(true, Ordering::SeqCst);
            }
        });
    }

    #[inline]
    pub(super) fn expedited() -> bool {
        EXPEDITED.load(Ordering::Relaxed)
    }

    pub(super) fn barrier_all() -> bool {
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
    }
}

#[cfg(not(all(target_os = "linux", not(loom))))]
mod imp {
    pub(super) fn init() {}
    #[inline]
    pub(super) fn expedited() -> bool {
        false
    }
    pub(super) fn barrier_all() -> bool {
        false
    }
}

/// Chooses the fence mode for the process (idempotent). Call before the first
/// session of the first store starts; [`crate::Cpr::new`] does.
pub fn init() {
    imp::init();
}

/// Whether the cheap mode (compiler fence + `membarrier`) is in use.
pub fn is_expedited() -> bool {
    imp::expedited()
}

/// The session side: orders a preceding store before a following load,
/// provided the other side uses [`heavy`].
#[inline]
pub(crate) fn light() {
    if imp::expedited() {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The driver side: a full barrier here and, in the cheap mode, on every
/// thread of the process. Returns `false` if the cross-thread barrier could not
/// be issued (the kernel refused membarrier after registration, which it
/// documents as impossible); the caller must then not rely on it.
pub(crate) fn heavy() -> bool {
    fence(Ordering::SeqCst);
    !imp::expedited() || imp::barrier_all()
}
