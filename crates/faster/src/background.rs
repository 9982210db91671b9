//! [`Background`]: a store task (a checkpoint, an index growth) on a thread of its own, and
//! the handle's `wait` / `is_finished`.

use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// A task running on its own thread.
#[derive(Debug)]
pub(crate) struct Background<T> {
    thread: JoinHandle<Result<T>>,
}

impl<T: Send + 'static> Background<T> {
    /// Runs `task` on a thread named `name`; `what` names the thread in the error if it
    /// cannot be started.
    pub(crate) fn spawn(
        name: &str,
        what: &'static str,
        task: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<Self> {
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(task)
            .map_err(|source| Error::Io {
                what,
                path: Default::default(),
                source,
            })?;
        Ok(Background { thread })
    }

    /// Waits for the task: its result, or `panicked` if its thread panicked.
    pub(crate) fn wait(self, panicked: Error) -> Result<T> {
        self.thread.join().unwrap_or(Err(panicked))
    }

    /// Whether the task has ended.
    pub(crate) fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}
