//! [`UringDevice`]: segment files driven through one Linux io_uring instance.
//!
//! One ring and a slab of in-flight requests sit behind a mutex. `user_data` of every
//! submission-queue entry (SQE) is the request's slab index. A request has at most one SQE in
//! the kernel at a time: the next transfer of a request (after a short transfer, at a segment
//! boundary, or past [`DeviceOptions::max_transfer`]) is issued when the previous one completes.
//! At most as many SQEs as the completion queue holds are outstanding, so it never overflows;
//! requests beyond that wait in a user-space ready queue and are issued as completions are
//! reaped. Completions are collected under the lock; callbacks run after it is released.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use io_uring::{IoUring, opcode, types};

use crate::buf::{AlignedBuf, IoSource};
use crate::completion::{Done, run_all};
use crate::error::{DeviceError, OpKind, Result};
use crate::options::DeviceOptions;
use crate::segments::{Segment, SegmentFiles, next_chunk};
use crate::{Device, DeviceKind, ReadCallback, WriteCallback, check_request};

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
    /// Segment and length of the SQE in the kernel, if any; holding the `Arc` keeps the file
    /// descriptor open even if `truncate_front` deletes the segment meanwhile.
    current: Option<(Arc<Segment>, usize)>,
}

struct State {
    ring: IoUring,
    ops: Vec<Option<Op>>,
    free: Vec<usize>,
    ready: VecDeque<usize>,
    /// SQEs pushed whose CQE has not been reaped.
    in_kernel: usize,
    /// Upper bound for `in_kernel`: the completion-queue size.
    limit: usize,
    /// Requests finished but whose callbacks have not been handed out yet.
    finished: Vec<Done>,
}

impl State {
    fn live(&self) -> usize {
        self.ops.len() - self.free.len()
    }
}

/// The io_uring device: segment files driven through one io_uring instance, with `O_DIRECT`
/// when the file system accepts it (probed at open).
///
/// The ring and a slab of in-flight requests sit behind a mutex. A request has at most one
/// submission-queue entry in the kernel at a time; its next transfer (after a short transfer,
/// at a segment boundary, or past [`DeviceOptions::max_transfer`]) is issued when the previous
/// one completes. No more entries are outstanding than the completion queue holds; requests
/// beyond that wait in user space and are issued as completions are reaped, so any number may
/// be submitted before polling. Callbacks run in `poll`/`wait` after the lock is released.
/// [`Device::wait`] blocks in `io_uring_enter` while holding the lock.
pub struct UringDevice {
    segs: SegmentFiles,
    options: DeviceOptions,
    state: Mutex<State>,
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
            state: Mutex::new(State {
                ring,
                ops: Vec::new(),
                free: Vec::new(),
                ready: VecDeque::new(),
                in_kernel: 0,
                limit,
                finished: Vec::new(),
            }),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends request `idx` with `result`, moving its callback to `finished`.
    fn finish(&self, st: &mut State, idx: usize, result: Result<()>) {
        let op = st.ops[idx].take().expect("finishing a live op");
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

    /// Issues the next transfer of ready requests while the completion queue has room, then
    /// submits the SQEs to the kernel.
    fn fill(&self, st: &mut State) -> Result<()> {
        while st.in_kernel < st.limit {
            let Some(&idx) = st.ready.front() else { break };
            let op = st.ops[idx].as_mut().expect("ready op is live");
            let at = op.offset + op.pos as u64;
            let cap = self.options.transfer_cap();
            let c = next_chunk(at, op.len - op.pos, self.segs.segment_size(), cap);
            let seg = match self.segs.segment(c.segment) {
                Ok(seg) => seg,
                Err(e) => {
                    st.ready.pop_front();
                    self.finish(st, idx, Err(e));
                    continue;
                }
            };
            let fd = types::Fd(seg.file.as_raw_fd());
            let entry = match &mut op.payload {
                Payload::Read(buf, _) => {
                    let ptr = buf[op.pos..].as_mut_ptr();
                    opcode::Read::new(fd, ptr, c.len as u32)
                        .offset(c.file_offset)
                        .build()
                }
                Payload::Write(src, _) => {
                    seg.mark_dirty();
                    let ptr = src.as_bytes()[op.pos..].as_ptr();
                    opcode::Write::new(fd, ptr, c.len as u32)
                        .offset(c.file_offset)
                        .build()
                }
            }
            .user_data(idx as u64);
            op.current = Some((seg, c.len));
            loop {
                // SAFETY: the SQE points into the request's buffer (an `AlignedBuf`'s heap block
                // or an `IoSource`'s bytes, stable by its contract) and names the file of
                // `op.current`. Both are owned by the op in the slab, which is removed only
                // after this SQE's CQE is reaped, and `Drop` reaps every CQE before freeing.
                let pushed = unsafe { st.ring.submission().push(&entry) };
                if pushed.is_ok() {
                    break;
                }
                self.submit(st)?;
            }
            st.ready.pop_front();
            st.in_kernel += 1;
        }
        self.submit(st)
    }

    /// Hands queued SQEs to the kernel without waiting.
    fn submit(&self, st: &mut State) -> Result<()> {
        loop {
            if st.ring.submission().is_empty() {
                return Ok(());
            }
            match st.ring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // The kernel is short of resources or the CQ is full: the SQEs stay queued and
                // go in with the next submission.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY)) => {
                    return Ok(());
                }
                Err(e) => return Err(DeviceError::io(OpKind::Submit, 0, e)),
            }
        }
    }

    /// Processes every available CQE.
    fn reap(&self, st: &mut State) {
        let cqes: Vec<(usize, i32)> = st
            .ring
            .completion()
            .map(|c| (c.user_data() as usize, c.result()))
            .collect();
        for (idx, res) in cqes {
            st.in_kernel -= 1;
            let op = st.ops[idx].as_mut().expect("CQE for a live op");
            let (_seg, issued) = op.current.take().expect("CQE for an issued op");
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
            if res == 0 {
                match &mut op.payload {
                    // End of this segment file, but below the device size: a hole.
                    Payload::Read(buf, _) => {
                        buf[op.pos..op.pos + issued].fill(0);
                        op.pos += issued;
                    }
                    Payload::Write(..) => {
                        let e = io::Error::from(io::ErrorKind::WriteZero);
                        self.finish(st, idx, Err(DeviceError::io(kind, at, e)));
                        continue;
                    }
                }
            } else {
                op.pos += res as usize;
            }
            if op.pos >= op.len {
                self.finish(st, idx, Ok(()));
            } else {
                st.ready.push_back(idx);
            }
        }
    }

    /// Runs callbacks taken out under the lock, after releasing it.
    fn deliver(&self, done: Vec<Done>) -> usize {
        let n = done.len();
        run_all(done);
        self.in_flight.fetch_sub(n, Ordering::AcqRel);
        n
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
        // the ready queue and `poll`/`wait` retry (and report the error).
        if let Err(e) = self.fill(&mut st) {
            log::warn!("io_uring submission failed, will retry: {e}");
        }
        Ok(())
    }
}

impl Device for UringDevice {
    fn kind(&self) -> DeviceKind {
        DeviceKind::IoUring
    }

    fn alignment(&self) -> usize {
        self.options.alignment
    }

    fn is_direct(&self) -> bool {
        self.segs.is_direct()
    }

    fn read(&self, offset: u64, buf: AlignedBuf, done: ReadCallback) -> Result<()> {
        let len = buf.len();
        check_request(
            true,
            buf.as_ptr() as usize,
            offset,
            len,
            self.options.alignment,
            self.segs.begin(),
            self.segs.size(),
        )?;
        self.enqueue(offset, len, Payload::Read(buf, done))
    }

    fn write(&self, offset: u64, buf: Box<dyn IoSource>, done: WriteCallback) -> Result<()> {
        let data = buf.as_bytes();
        let len = data.len();
        check_request(
            false,
            data.as_ptr() as usize,
            offset,
            len,
            self.options.alignment,
            self.segs.begin(),
            self.segs.size(),
        )?;
        self.enqueue(offset, len, Payload::Write(buf, done))
    }

    fn poll(&self) -> Result<usize> {
        let done = {
            let mut st = self.lock();
            self.reap(&mut st);
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
        loop {
            let mut st = self.lock();
            self.reap(&mut st);
            self.fill(&mut st)?;
            if !st.finished.is_empty() {
                let done = std::mem::take(&mut st.finished);
                drop(st);
                return Ok(self.deliver(done));
            }
            if st.live() == 0 {
                return Ok(0);
            }
            if st.in_kernel == 0 {
                continue;
            }
            match st.ring.submit_and_wait(1) {
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

    fn flush(&self) -> Result<()> {
        if let Some(e) = self.options.faults.check(OpKind::Flush, 0, 0) {
            return Err(e);
        }
        self.segs.flush()
    }

    fn size(&self) -> u64 {
        self.segs.size()
    }

    fn begin(&self) -> u64 {
        self.segs.begin()
    }

    fn truncate_front(&self, offset: u64) -> Result<()> {
        self.segs.truncate_front(offset)
    }
}

impl Drop for UringDevice {
    /// Completes every request in flight (running its callback) before the buffers are freed.
    /// If the ring fails so that this is impossible, the buffers of the unfinished requests are
    /// leaked rather than freed under the kernel.
    fn drop(&mut self) {
        loop {
            match self.wait() {
                Ok(0) if self.lock().live() == 0 => break,
                Ok(_) => {}
                Err(e) => {
                    log::error!("io_uring failed while dropping the device; leaking buffers: {e}");
                    std::mem::forget(std::mem::take(&mut self.lock().ops));
                    break;
                }
            }
        }
    }
}
