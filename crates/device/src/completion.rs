//! Finished requests waiting for their callbacks to be run by `poll`/`wait`.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::buf::AlignedBuf;
use crate::error::Result;
use crate::{ReadCallback, WriteCallback};

/// A finished request: its callback and its outcome.
pub(crate) enum Done {
    /// A finished read.
    Read(ReadCallback, Result<AlignedBuf>),
    /// A finished write.
    Write(WriteCallback, Result<()>),
}

impl Done {
    /// Runs the callback.
    pub fn run(self) {
        match self {
            Done::Read(cb, r) => cb(r),
            Done::Write(cb, r) => cb(r),
        }
    }
}

/// Runs the callbacks of `done`, in order, and returns how many ran. Callers must not hold any
/// device lock, so callbacks may submit new requests.
pub(crate) fn run_all(done: impl IntoIterator<Item = Done>) -> usize {
    let mut n = 0;
    for d in done {
        d.run();
        n += 1;
    }
    n
}

/// A FIFO of finished requests for the devices that perform I/O at submission time.
#[derive(Default)]
pub(crate) struct CompletionQueue {
    queue: Mutex<VecDeque<Done>>,
}

impl CompletionQueue {
    /// Queues a finished request.
    pub fn push(&self, done: Done) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(done);
    }

    /// Number of queued requests.
    pub fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Takes every queued request out under the lock, then runs their callbacks without it.
    pub fn drain(&self) -> usize {
        let taken = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        run_all(taken)
    }
}
