//! Finished requests waiting for their callbacks to be run by `poll`/`wait`, and the one loop
//! that runs them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::buf::{AlignedBuf, IoSource};
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

/// The callbacks of one batch not run yet; if dropped early (a callback panicked), hands them
/// to `requeue` so that a later `poll` runs them.
struct Batch<F: FnOnce(Vec<Done>)> {
    rest: std::vec::IntoIter<Done>,
    requeue: Option<F>,
}

impl<F: FnOnce(Vec<Done>)> Drop for Batch<F> {
    fn drop(&mut self) {
        let left: Vec<Done> = self.rest.by_ref().collect();
        if let (false, Some(requeue)) = (left.is_empty(), self.requeue.take()) {
            requeue(left);
        }
    }
}

/// Calls `ran` when dropped, i.e. after a callback returned or while it unwinds.
struct Ran<'a, R: FnMut()>(&'a mut R);

impl<R: FnMut()> Drop for Ran<'_, R> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Runs the callbacks of `done` in order and returns how many ran. `ran` is called after each
/// callback returns (or unwinds), so a count of pending callbacks stays exact. If a callback
/// panics, the callbacks not run yet are handed to `requeue` (a later `poll` runs them, so
/// each still runs exactly once) and the panic continues. Callers must not hold any device
/// lock, so callbacks may submit new requests.
pub(crate) fn run_all(
    done: Vec<Done>,
    mut ran: impl FnMut(),
    requeue: impl FnOnce(Vec<Done>),
) -> usize {
    let n = done.len();
    let mut batch = Batch {
        rest: done.into_iter(),
        requeue: Some(requeue),
    };
    for d in batch.rest.by_ref() {
        let _ran = Ran(&mut ran);
        d.run();
    }
    n
}

/// A FIFO of finished requests for the devices that perform I/O at submission time. Dropping
/// it runs the callbacks not yet reaped, so every accepted request's callback runs once.
#[derive(Default)]
pub(crate) struct CompletionQueue {
    queue: Mutex<VecDeque<Done>>,
    /// Requests pushed whose callbacks have not finished running (queued, or running now).
    pending: AtomicUsize,
}

impl CompletionQueue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Done>> {
        faster_sync::lock_std(&self.queue)
    }

    /// Queues a finished request.
    pub fn push(&self, done: Done) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        self.lock().push_back(done);
    }

    /// Performs a read at once with `read` and queues its completion.
    pub fn read_now(
        &self,
        mut buf: AlignedBuf,
        done: ReadCallback,
        read: impl FnOnce(&mut AlignedBuf) -> Result<()>,
    ) {
        let result = read(&mut buf).map(|()| buf);
        self.push(Done::Read(done, result));
    }

    /// Performs a write at once with `write`, drops the source, and queues the completion.
    pub fn write_now(
        &self,
        source: Box<dyn IoSource>,
        done: WriteCallback,
        write: impl FnOnce(&[u8]) -> Result<()>,
    ) {
        let result = write(source.as_bytes());
        drop(source);
        self.push(Done::Write(done, result));
    }

    /// Number of requests whose callbacks have not finished running: queued ones, and ones
    /// another thread is running right now.
    pub fn len(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Takes every queued request out under the lock, then runs their callbacks without it.
    pub fn drain(&self) -> usize {
        // Nothing queued: skip the lock (the common case of a poll between operations).
        if self.len() == 0 {
            return 0;
        }
        let taken: Vec<Done> = std::mem::take(&mut *self.lock()).into();
        run_all(
            taken,
            || {
                self.pending.fetch_sub(1, Ordering::AcqRel);
            },
            |left| {
                let mut q = self.lock();
                for d in left.into_iter().rev() {
                    q.push_front(d);
                }
            },
        )
    }
}

impl Drop for CompletionQueue {
    fn drop(&mut self) {
        while self.drain() > 0 {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_panicking_callback_leaves_the_rest_queued() {
        let q = CompletionQueue::default();
        let ran = Arc::new(AtomicUsize::new(0));
        q.push(Done::Write(Box::new(|_| panic!("boom")), Ok(())));
        for _ in 0..3 {
            let ran = Arc::clone(&ran);
            q.push(Done::Write(
                Box::new(move |_| {
                    ran.fetch_add(1, Ordering::Relaxed);
                }),
                Ok(()),
            ));
        }
        assert_eq!(q.len(), 4);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.drain()));
        assert!(r.is_err());
        assert_eq!(q.len(), 3, "the panicked callback counts as run");
        assert_eq!(ran.load(Ordering::Relaxed), 0);
        assert_eq!(q.drain(), 3);
        assert_eq!((q.len(), ran.load(Ordering::Relaxed)), (0, 3));
    }
}
