//! [`UringDevice`]: segment files driven through one Linux io_uring instance.
//!
//! A slab of in-flight requests sits behind a mutex, and the ring's submission and completion
//! queues are only touched with that mutex held. `user_data` of every submission-queue entry
//! (SQE) is the request's slab index. A request has at most one SQE in the kernel at a time:
//! the next transfer of a request (after a short transfer, at a segment boundary, or past
//! [`DeviceOptions::max_transfer`]) is issued when the previous one completes. At most as many
//! SQEs as the completion queue holds are outstanding, so it never overflows; requests beyond
//! that wait in a user-space ready queue and are issued as completions are reaped.
//!
//! `wait` blocks in `io_uring_enter` *without* the mutex, so other threads keep submitting.
//! While one thread is blocked there (the "kernel waiter"), nobody else reaps completions, so
//! the completion that is to wake it cannot be stolen; other waiting threads sleep on a
//! condition variable until it returns. Callbacks run after the mutex is released.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use io_uring::{IoUring, opcode, squeue, types};

use crate::buf::{AlignedBuf, IoSource};
use crate::completion::{Done, run_all};
use crate::error::{DeviceError, OpKind, Result};
use crate::forward::storage_on_segments;
use crate::options::DeviceOptions;
use crate::segments::{Segment, SegmentFiles, next_chunk};
use crate::{Device, DeviceKind, ReadCallback, WriteCallback, check_read, check_write};

/// Creates the io_uring instance for `options` (`queue_depth` SQEs, clamped by the kernel).
pub(crate) fn build_ring(options: &DeviceOptions) -> io::Result<IoUring> {
    IoUring::builder().setup_clamp().build(options.queue_depth)
}

enum Payload {
    Read(AlignedBuf, ReadCallback),
    Write(Box<dyn IoSource>, WriteCallback),
}

/// A request in flight.
struct Op {
    offset: u64,
    len: usize,
    /// Bytes done so far.
    pos: usize,
    payload: Payload,
    /// Segment and length of the SQE in the kernel, if any. While it is `Some`, the kernel may
    /// access the payload's buffer. Holding the `Arc` keeps the segment (to mark it dirty on
    /// completion) even if `truncate_front` deletes it meanwhile.
    current: Option<(Arc<Segment>, usize)>,
}

struct State {
    ops: Vec<Option<Op>>,
    free: Vec<usize>,
    ready: VecDeque<usize>,
    /// SQEs pushed whose CQE has not been reaped.
    in_kernel: usize,
    /// Upper bound for `in_kernel`: the completion-queue size.
    limit: usize,
    /// Requests finished but whose callbacks have not been handed out yet.
    finished: Vec<Done>,
    /// A thread is blocked in `io_uring_enter` without the lock; nobody else reaps meanwhile.
    kernel_waiter: bool,
}

impl State {
    fn live(&self) -> usize {
        self.ops.len() - self.free.len()
    }
}

/// The io_uring device: segment files driven through one io_uring instance, with `O_DIRECT`
/// when the file system accepts it (probed at open).
///
/// A request has at most one submission-queue entry in the kernel at a time; its next transfer
/// (after a short transfer, at a segment boundary, or past [`DeviceOptions::max_transfer`]) is
/// issued when the previous one completes. No more entries are outstanding than the completion
/// queue holds; requests beyond that wait in user space and are issued as completions are
/// reaped, so any number may be submitted before polling.
///
/// [`Device::wait`] blocks in the kernel without holding the device's lock, so other threads
/// can submit (and their submissions can complete) meanwhile. Only one thread at a time blocks
/// in the kernel; further threads calling `wait` sleep until it returns, and `poll` does not
/// reap completions while a thread is blocked there (that thread reaps them and runs their
/// callbacks as soon as it wakes). A request that fails before reaching the kernel (an injected
/// fault, a segment that cannot be opened) while a thread is blocked is delivered when that
/// thread next wakes.
pub struct UringDevice {
    segs: SegmentFiles,
    options: DeviceOptions,
    /// The ring. Its submission and completion queues are used only with `state` locked;
    /// `wait` enters the kernel through `submitter()` without the lock.
    ring: IoUring,
    state: Mutex<State>,
    /// Signalled when the kernel waiter returns.
    waiter_left: Condvar,
    in_flight: AtomicUsize,
}

impl UringDevice {
    /// Opens (creating if needed) the device stored in directory `dir`.
    pub fn open(dir: impl AsRef<Path>, options: DeviceOptions) -> Result<Self> {
        options.validate()?;
        let ring = build_ring(&options).map_err(|e| DeviceError::io(OpKind::Submit, 0, e))?;
        UringDevice::open_with_ring(dir.as_ref(), options, ring)
    }

    pub(crate) fn open_with_ring(
        dir: &Path,
        options: DeviceOptions,
        ring: IoUring,
    ) -> Result<Self> {
        let segs = SegmentFiles::open(dir, &options)?;
        let limit = ring.params().cq_entries() as usize;
        Ok(UringDevice {
            segs,
            options,
            ring,
            state: Mutex::new(State {
                ops: Vec::new(),
                free: Vec::new(),
                ready: VecDeque::new(),
                in_kernel: 0,
                limit,
                finished: Vec::new(),
                kernel_waiter: false,
            }),
            waiter_left: Condvar::new(),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        faster_sync::lock_std(&self.state)
    }

    /// Ends request `idx` (which has no SQE in the kernel) with `result`, moving its callback
    /// to `finished`.
    fn finish(&self, st: &mut State, idx: usize, result: Result<()>) {
        let Some(op) = st.ops[idx].take() else {
            return;
        };
        debug_assert!(
            op.current.is_none(),
            "finishing a request the kernel still uses"
        );
        st.free.push(idx);
        let done = match op.payload {
            Payload::Read(buf, cb) => Done::Read(cb, result.map(|()| buf)),
            Payload::Write(src, cb) => {
                drop(src);
                if result.is_ok() {
                    self.segs.note_written(op.offset + op.len as u64);
                }
                Done::Write(cb, result)
            }
        };
        st.finished.push(done);
    }

    /// Pushes `entry` onto the submission queue; `false` if it is full.
    ///
    /// # Safety
    ///
    /// Every buffer `entry` points to must stay allocated, unmoved and otherwise unused until
    /// the entry's completion has been reaped.
    unsafe fn push(&self, _locked: &mut State, entry: &squeue::Entry) -> bool {
        // SAFETY: `_locked` proves the state lock is held. Every `SubmissionQueue` of this
        // ring is created in `push` or `sq_is_empty` with the lock held and dropped before they
        // return, so no other one exists (the contract of `submission_shared`). The buffers of
        // `entry` are the caller's obligation (the contract of `push`).
        unsafe { self.ring.submission_shared().push(entry).is_ok() }
    }

    fn sq_is_empty(&self, _locked: &mut State) -> bool {
        // SAFETY: as in `push`: the lock is held and no other `SubmissionQueue` exists.
        unsafe { self.ring.submission_shared().is_empty() }
    }

    /// Takes every available CQE as `(user_data, result)`.
    fn take_cqes(&self, _locked: &mut State) -> Vec<(u64, i32)> {
        // SAFETY: `_locked` proves the state lock is held; every `CompletionQueue` of this ring
        // is created here, with the lock held, and dropped at the end of this statement, so no
        // other one exists (the contract of `completion_shared`).
        unsafe { self.ring.completion_shared() }
            .map(|c| (c.user_data(), c.result()))
            .collect()
    }

    /// Issues the next transfer of ready requests while the completion queue has room, then
    /// submits the SQEs to the kernel.
    fn fill(&self, st: &mut State) -> Result<()> {
        let cap = self.options.transfer_cap();
        while st.in_kernel < st.limit {
            let Some(&idx) = st.ready.front() else { break };
            let Some(op) = st.ops[idx].as_mut() else {
                st.ready.pop_front();
                continue;
            };
            let at = op.offset + op.pos as u64;
            let c = next_chunk(at, op.len - op.pos, self.segs.segment_size(), cap);
            let seg = match &op.payload {
                Payload::Read(..) => self.segs.existing(c.segment),
                Payload::Write(..) => self.segs.segment(c.segment).map(Some),
            };
            let seg = match seg {
                Ok(Some(seg)) => seg,
                Ok(None) => {
                    // A read of a segment without a file: a hole, zeros without a system call.
                    if let Payload::Read(buf, _) = &mut op.payload {
                        buf[op.pos..op.pos + c.len].fill(0);
                    }
                    op.pos += c.len;
                    if op.pos == op.len {
                        st.ready.pop_front();
                        self.finish(st, idx, Ok(()));
                    }
                    continue;
                }
                Err(e) => {
                    st.ready.pop_front();
                    self.finish(st, idx, Err(e));
                    continue;
                }
            };
            let fd = types::Fd(seg.file.as_raw_fd());
            // `transfer_cap` is at most 1 GiB, so the length fits.
            let len = c.len as u32;
            let entry = match &mut op.payload {
                Payload::Read(buf, _) => {
                    let ptr = buf[op.pos..op.pos + c.len].as_mut_ptr();
                    opcode::Read::new(fd, ptr, len)
                        .offset(c.file_offset)
                        .build()
                }
                Payload::Write(src, _) => {
                    let ptr = src.as_bytes()[op.pos..op.pos + c.len].as_ptr();
                    opcode::Write::new(fd, ptr, len)
                        .offset(c.file_offset)
                        .build()
                }
            }
            .user_data(idx as u64);
            // SAFETY: the entry points at `c.len` bytes from `op.pos` of the request's buffer
            // (within it, as `op.pos + c.len <= op.len`): an `AlignedBuf`'s heap block, or an
            // `IoSource`'s bytes, which by that trait's contract stay put and unmodified while
            // the device owns the source. The op owning the buffer stays in the slab with
            // `current` set until `reap` has taken this entry's CQE; only then may `finish`
            // drop it, and `Drop` either reaps every CQE or leaks the buffers still in use.
            // Nothing else touches the buffer meanwhile: the op is not in the ready queue.
            // (The kernel holds its own reference to the file for the entry's lifetime.)
            let mut pushed = unsafe { self.push(st, &entry) };
            if !pushed {
                // The queue is full of entries not handed to the kernel yet.
                self.submit(st)?;
                // SAFETY: as above.
                pushed = unsafe { self.push(st, &entry) };
            }
            if !pushed {
                // The kernel took none of them (it is short of resources): retry later.
                break;
            }
            if let Some(op) = st.ops[idx].as_mut() {
                op.current = Some((seg, c.len));
            }
            st.ready.pop_front();
            st.in_kernel += 1;
        }
        self.submit(st)
    }

    /// Hands queued SQEs to the kernel without waiting.
    fn submit(&self, st: &mut State) -> Result<()> {
        if self.sq_is_empty(st) {
            return Ok(());
        }
        loop {
            match self.ring.submitter().submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // The kernel is short of resources: the SQEs stay queued and go in with the
                // next submission (at the latest the one in `wait`).
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY)) => {
                    return Ok(());
                }
                Err(e) => return Err(DeviceError::io(OpKind::Submit, 0, e)),
            }
        }
    }

    /// Processes every available CQE. Must not run while another thread is the kernel
    /// waiter (it would take the CQE meant to wake that thread).
    fn reap(&self, st: &mut State) {
        for (user_data, res) in self.take_cqes(st) {
            st.in_kernel = st.in_kernel.saturating_sub(1);
            let idx = user_data as usize;
            // Only a request abandoned by `Drop` after a ring failure has no live op.
            let Some(op) = st.ops.get_mut(idx).and_then(Option::as_mut) else {
                continue;
            };
            let Some((seg, issued)) = op.current.take() else {
                continue;
            };
            let at = op.offset + op.pos as u64;
            let is_read = matches!(op.payload, Payload::Read(..));
            let kind = if is_read { OpKind::Read } else { OpKind::Write };
            if res < 0 {
                let errno = -res;
                if errno == libc::EINTR || errno == libc::EAGAIN {
                    st.ready.push_back(idx);
                } else {
                    let e = io::Error::from_raw_os_error(errno);
                    self.finish(st, idx, Err(DeviceError::io(kind, at, e)));
                }
                continue;
            }
            let moved = (res as usize).min(issued);
            match &mut op.payload {
                // End of this segment file, but below the device size: a hole.
                Payload::Read(buf, _) if moved == 0 => {
                    buf[op.pos..op.pos + issued].fill(0);
                    op.pos += issued;
                }
                Payload::Read(..) => op.pos += moved,
                Payload::Write(..) if moved == 0 => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    self.finish(st, idx, Err(DeviceError::io(kind, at, e)));
                    continue;
                }
                Payload::Write(..) => {
                    // After the bytes reached the file, never before (see `mark_dirty`).
                    seg.mark_dirty();
                    op.pos += moved;
                }
            }
            if op.pos >= op.len {
                self.finish(st, idx, Ok(()));
            } else {
                st.ready.push_back(idx);
            }
        }
    }

    /// Runs callbacks taken out under the lock, after releasing it. If one panics, the rest go
    /// back to `finished` for a later `poll`.
    fn deliver(&self, done: Vec<Done>) -> usize {
        run_all(
            done,
            || {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
            },
            |left| {
                self.lock().finished.splice(0..0, left);
            },
        )
    }

    fn enqueue(&self, offset: u64, len: usize, payload: Payload) -> Result<()> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let mut st = self.lock();
        let kind = match payload {
            Payload::Read(..) => OpKind::Read,
            Payload::Write(..) => OpKind::Write,
        };
        if let Some(e) = self.options.faults.check(kind, offset, len) {
            st.finished.push(match payload {
                Payload::Read(_, cb) => Done::Read(cb, Err(e)),
                Payload::Write(_, cb) => Done::Write(cb, Err(e)),
            });
            return Ok(());
        }
        let op = Op {
            offset,
            len,
            pos: 0,
            payload,
            current: None,
        };
        let idx = match st.free.pop() {
            Some(i) => {
                st.ops[i] = Some(op);
                i
            }
            None => {
                st.ops.push(Some(op));
                st.ops.len() - 1
            }
        };
        st.ready.push_back(idx);
        // The request is accepted even if the kernel refuses the submission now: it stays in
        // the ready queue (or its SQE in the submission queue) and `poll`/`wait` retry (and
        // report the error).
        if let Err(e) = self.fill(&mut st) {
            log::warn!("io_uring submission failed, will retry: {e}");
        }
        Ok(())
    }

    /// After the ring failed in `Drop`: runs every remaining callback with an error. Buffers
    /// of requests with an SQE in the kernel are leaked, never freed: the kernel may still
    /// access them.
    fn abandon(&mut self, cause: &DeviceError) {
        log::error!("io_uring failed while dropping the device; leaking buffers in use: {cause}");
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut done = std::mem::take(&mut st.finished);
        st.ready.clear();
        st.free.clear();
        st.in_kernel = 0;
        for op in std::mem::take(&mut st.ops).into_iter().flatten() {
            let at = op.offset + op.pos as u64;
            let msg = format!("the device was dropped after its io_uring failed: {cause}");
            let err = DeviceError::io(OpKind::Submit, at, io::Error::other(msg));
            let in_kernel = op.current.is_some();
            done.push(match op.payload {
                Payload::Read(buf, cb) => {
                    if in_kernel {
                        std::mem::forget(buf);
                    }
                    Done::Read(cb, Err(err))
                }
                Payload::Write(src, cb) => {
                    if in_kernel {
                        std::mem::forget(src);
                    }
                    Done::Write(cb, Err(err))
                }
            });
        }
        self.deliver(done);
    }
}

impl Device for UringDevice {
    fn kind(&self) -> DeviceKind {
        DeviceKind::IoUring
    }

    fn alignment(&self) -> usize {
        self.options.alignment
    }

    fn read(&self, offset: u64, buf: AlignedBuf, done: ReadCallback) -> Result<()> {
        let len = buf.len();
        check_read(self, offset, &buf)?;
        self.enqueue(offset, len, Payload::Read(buf, done))
    }

    fn write(&self, offset: u64, buf: Box<dyn IoSource>, done: WriteCallback) -> Result<()> {
        let data = buf.as_bytes();
        let len = data.len();
        check_write(self, offset, data)?;
        self.enqueue(offset, len, Payload::Write(buf, done))
    }

    fn poll(&self) -> Result<usize> {
        // Nothing accepted and unfinished: nothing to reap, issue or deliver. Spares the
        // mutex (two locked instructions) when sessions poll between operations.
        if self.in_flight.load(Ordering::Acquire) == 0 {
            return Ok(0);
        }
        let done = {
            let mut st = self.lock();
            if !st.kernel_waiter {
                self.reap(&mut st);
            }
            let r = self.fill(&mut st);
            let done = std::mem::take(&mut st.finished);
            if done.is_empty() {
                r?;
            }
            done
        };
        Ok(self.deliver(done))
    }

    fn wait(&self) -> Result<usize> {
        let mut st = self.lock();
        loop {
            if !st.kernel_waiter {
                self.reap(&mut st);
            }
            let filled = self.fill(&mut st);
            if !st.finished.is_empty() {
                let done = std::mem::take(&mut st.finished);
                drop(st);
                return Ok(self.deliver(done));
            }
            filled?;
            if st.live() == 0 {
                return Ok(0);
            }
            if st.kernel_waiter {
                st = self.waiter_left.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            if st.in_kernel == 0 {
                // Unreachable: live requests not in the kernel are ready, and `fill` issued
                // or finished some. Never block on an empty ring.
                continue;
            }
            // Block without the lock. Nobody reaps while `kernel_waiter` is set, so a CQE
            // of the `in_kernel` entries (submitted here if still queued) will wake us.
            st.kernel_waiter = true;
            drop(st);
            let entered = self.ring.submitter().submit_and_wait(1);
            st = self.lock();
            st.kernel_waiter = false;
            self.waiter_left.notify_all();
            match entered {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(DeviceError::io(OpKind::Submit, 0, e)),
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    storage_on_segments!();
}

impl Drop for UringDevice {
    /// Completes every request in flight (running its callback) before the buffers are freed.
    /// If the ring fails so that this is impossible, the remaining callbacks run with an error
    /// and the buffers the kernel may still use are leaked rather than freed under it.
    fn drop(&mut self) {
        loop {
            match self.wait() {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    self.abandon(&e);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn abandon_runs_every_callback_once() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DeviceOptions::default()
            .with_alignment(512)
            .with_segment_size(1 << 20)
            .with_queue_depth(4)
            .with_direct_io(false);
        let mut dev = UringDevice::open(dir.path(), opts).unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..32u64 {
            let tx = tx.clone();
            let buf = AlignedBuf::new(512, 512).unwrap();
            let cb: WriteCallback = Box::new(move |r| tx.send(r.is_err()).unwrap());
            dev.write(i * 512, Box::new(buf), cb).unwrap();
        }
        let cause = DeviceError::io(OpKind::Submit, 0, io::Error::other("test"));
        dev.abandon(&cause);
        assert_eq!(dev.in_flight(), 0);
        drop(tx);
        let results: Vec<bool> = rx.iter().collect();
        assert_eq!(results.len(), 32, "every callback ran once");
        assert!(results.iter().all(|&failed| failed));
        // Dropping now reaps the CQEs of the abandoned entries without touching their buffers.
        drop(dev);
    }
}
