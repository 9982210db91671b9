//! [`Running`]: whether one of the store's background actions (a growth, a compaction, a
//! shift of the begin address) runs, for those who must wait for it to end.

use std::sync::{Condvar, Mutex};

use faster_sync::lock_std as lock;

/// A flag with a condition variable: claimed by the action, waited on by others.
#[derive(Debug, Default)]
pub(crate) struct Running {
    running: Mutex<bool>,
    ended: Condvar,
}

impl Running {
    /// Marks the action running; `false` if it runs already.
    pub(crate) fn claim(&self) -> bool {
        !std::mem::replace(&mut *lock(&self.running), true)
    }

    /// Marks it ended and wakes those waiting.
    pub(crate) fn end(&self) {
        *lock(&self.running) = false;
        self.ended.notify_all();
    }

    /// Whether it runs now.
    pub(crate) fn is_running(&self) -> bool {
        *lock(&self.running)
    }

    /// Waits until it does not run.
    pub(crate) fn wait_idle(&self) {
        let mut running = lock(&self.running);
        while *running {
            running = match self.ended.wait(running) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
    }
}
