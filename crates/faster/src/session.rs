//! [`Session`]: a thread's context for operations, with its serial numbers and pending
//! operations; [`SessionId`] and [`Status`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use faster_epoch::{Guard, Participant};
use faster_hlog::Address;
use faster_index::KeyHash;

use crate::batch::BatchOp;
use crate::error::{Error, Result};
use crate::ops::read::{self, ReadInto, ReadOutcome};
use crate::ops::rmw::{self, RmwOutcome};
use crate::ops::{self, Chase, SessionGuard, write};
use crate::pending::{Kind, Pending, PendingOp};
use crate::rmw::Rmw;
use crate::store::Inner;

/// Operations between two refreshes of a session's epoch protection.
pub const REFRESH_INTERVAL: u64 = 64;

/// Operations per window of the batched API ([`Session::read_batch`] and friends): the keys
/// of a window are hashed and their index buckets and records prefetched before the first
/// of them executes.
pub const BATCH_WINDOW: usize = 16;

/// The identity of a session, unique within its store. Displays and parses as a decimal
/// number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for SessionId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        s.parse().map(SessionId)
    }
}

/// How a non-blocking operation ([`Session::read_async`], [`Session::rmw_async`]) went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum Status {
    /// Finished: the context has already been called.
    Done,
    /// Waiting for a disk read: [`Session::complete_pending`] finishes it and calls the
    /// context.
    Pending,
}

/// A session: the context of one thread's operations on a store.
///
/// A session is `Send + 'static` and used by one thread at a time (`&mut self`). It holds an
/// epoch slot and stays protected between operations, refreshing every
/// [`REFRESH_INTERVAL`] operations. **A session that stops issuing operations holds back the
/// log's eviction** (other sessions' appends wait for it once memory is full): drop idle
/// sessions, or call [`Session::refresh`] from time to time.
///
/// Each read, upsert, rmw and delete call takes the next serial number ([`Session::serial`]),
/// starting at 1, whether it finishes, goes pending or fails; so does each operation of a
/// batch ([`Session::read_batch`], [`Session::upsert_batch`], [`Session::rmw_batch`],
/// [`Session::delete_batch`]), in order.
///
/// Dropping a session with pending operations completes them first (blocking on their I/O),
/// so every context is called exactly once.
pub struct Session {
    inner: Arc<Inner>,
    guard: Option<SessionGuard>,
    id: SessionId,
    serial: u64,
    scratch: Vec<u8>,
    pending: Pending,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("serial", &self.serial)
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// The parts of a session an operation works with.
struct Parts<'a> {
    inner: &'a Inner,
    guard: &'a mut Guard<Participant>,
    scratch: &'a mut Vec<u8>,
    pending: &'a mut Pending,
}

impl Session {
    pub(crate) fn new(inner: Arc<Inner>, id: u64, participant: Participant) -> Self {
        Session {
            inner,
            guard: Some(participant.into_guard()),
            id: SessionId(id),
            serial: 0,
            scratch: Vec::new(),
            pending: Pending::new(),
        }
    }

    /// A session of a closed store: every operation fails with [`Error::Closed`].
    pub(crate) fn closed(inner: Arc<Inner>, id: u64) -> Self {
        Session {
            inner,
            guard: None,
            id: SessionId(id),
            serial: 0,
            scratch: Vec::new(),
            pending: Pending::new(),
        }
    }

    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The serial number of the last operation issued on this session (0 before the first).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Number of operations waiting for [`Session::complete_pending`].
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Takes the next serial number and returns the parts an operation needs, refreshing the
    /// epoch every [`REFRESH_INTERVAL`] operations. Fails if the store is closed.
    fn begin(&mut self) -> Result<Parts<'_>> {
        self.serial += 1;
        self.parts(true)
    }

    fn parts(&mut self, count: bool) -> Result<Parts<'_>> {
        let inner = &*self.inner;
        let guard = match &mut self.guard {
            Some(g) if !inner.is_closed() => g,
            _ => return Err(Error::Closed),
        };
        // Every counted operation took the next serial number in `begin`.
        if count && self.serial % REFRESH_INTERVAL == 0 {
            guard.refresh();
            inner.hlog.device().poll()?;
        }
        Ok(Parts {
            inner,
            guard,
            scratch: &mut self.scratch,
            pending: &mut self.pending,
        })
    }

    /// Refreshes the session's epoch protection now (lets the log evict and flush) and runs
    /// finished device completions.
    pub fn refresh(&mut self) -> Result<()> {
        let p = self.parts(false)?;
        p.guard.refresh();
        p.inner.hlog.device().poll()?;
        Ok(())
    }

    /// Sets `key` to `value`. Never waits for disk reads.
    ///
    /// Errors: [`Error::KeyTooLarge`] / [`Error::ValueTooLarge`] if the record would not fit
    /// in a page, [`Error::Closed`], and the layers' errors (for example a failed flush that
    /// keeps the log from evicting).
    pub fn upsert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.upsert_hashed(key, KeyHash::of(key), value)
    }

    /// Deletes `key` (a no-op if it has no value). Never waits for disk reads.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.delete_hashed(key, KeyHash::of(key))
    }

    /// Reads `key`: its value, or `None` if it is missing or deleted. Blocks on the disk reads
    /// it needs (and only on those: other pending operations stay pending).
    pub fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let p = self.begin()?;
        match read::read(p.inner, p.guard, key, KeyHash::of(key))? {
            ReadOutcome::Done(v) => Ok(v),
            ReadOutcome::Disk(addr) => ops::lookup_blocking(p.inner, p.guard, key, addr),
        }
    }

    /// Read-modify-write of `key` with `input` through `rmw` (see [`Rmw`]). Blocks on the disk
    /// reads it needs.
    pub fn rmw<R: Rmw + ?Sized>(&mut self, key: &[u8], input: &[u8], rmw: &R) -> Result<()> {
        self.rmw_hashed(key, KeyHash::of(key), input, rmw)
    }

    /// [`Session::upsert`] of a key whose hash is known.
    #[inline]
    fn upsert_hashed(&mut self, key: &[u8], hash: KeyHash, value: &[u8]) -> Result<()> {
        let p = self.begin()?;
        write::upsert(p.inner, p.guard, key, hash, value)
    }

    /// [`Session::delete`] of a key whose hash is known.
    #[inline]
    fn delete_hashed(&mut self, key: &[u8], hash: KeyHash) -> Result<()> {
        let p = self.begin()?;
        write::delete(p.inner, p.guard, key, hash)
    }

    /// [`Session::read`] of a key whose hash is known, handing the value to `out` as a
    /// borrowed slice (copied into the session's scratch buffer, or read from disk) instead
    /// of a new vector.
    #[inline]
    fn read_hashed_with<T>(
        &mut self,
        key: &[u8],
        hash: KeyHash,
        out: impl FnOnce(Option<&[u8]>) -> T,
    ) -> Result<T> {
        let p = self.begin()?;
        match read::read_into(p.inner, p.guard, key, hash, p.scratch)? {
            ReadInto::Found => Ok(out(Some(p.scratch))),
            ReadInto::Missing => Ok(out(None)),
            ReadInto::Disk(addr) => {
                let v = ops::lookup_blocking(p.inner, p.guard, key, addr)?;
                Ok(out(v.as_deref()))
            }
        }
    }

    /// [`Session::rmw`] of a key whose hash is known.
    #[inline]
    fn rmw_hashed<R: Rmw + ?Sized>(
        &mut self,
        key: &[u8],
        hash: KeyHash,
        input: &[u8],
        rmw: &R,
    ) -> Result<()> {
        let p = self.begin()?;
        let mut outcome = rmw::rmw(p.inner, p.guard, p.scratch, key, hash, input, rmw)?;
        while let RmwOutcome::Disk { addr, snapshot } = outcome {
            let old = ops::lookup_blocking(p.inner, p.guard, key, addr)?;
            outcome = rmw::rmw_after_disk(
                p.inner, p.guard, p.scratch, key, hash, input, rmw, snapshot, old,
            )?;
        }
        Ok(())
    }

    /// Reads every key of `keys`, in order, calling `out(i, value)` for `keys[i]` (`None`:
    /// missing or deleted). The value slice is only valid during the call.
    ///
    /// The batched form of [`Session::read`], with the same semantics: the reads are issued
    /// in order, each takes the next serial number, and a read whose record is on disk
    /// **blocks** until the disk read completes (like [`Session::read`]; other pending
    /// operations stay pending). It is faster than a loop of [`Session::read`] because it
    /// hashes the keys of a window of [`BATCH_WINDOW`] operations and prefetches their index
    /// buckets, then their records, before executing them one by one; and it copies each
    /// value into a buffer of the session rather than a new vector.
    ///
    /// On an error the batch stops: the reads before have been delivered, the failing one
    /// took its serial number (so [`Session::serial`] tells which failed) and the rest were
    /// not issued.
    ///
    /// ```
    /// # use faster::{Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// s.upsert_batch(&[(b"a", b"1"), (b"b", b"2")])?;
    /// let mut got = Vec::new();
    /// s.read_batch(&[b"a", b"x", b"b"], |i, v| got.push((i, v.map(<[u8]>::to_vec))))?;
    /// assert_eq!(got, [(0, Some(b"1".to_vec())), (1, None), (2, Some(b"2".to_vec()))]);
    /// assert_eq!(s.serial(), 5); // one serial number per operation
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_batch<K: AsRef<[u8]>>(
        &mut self,
        keys: &[K],
        mut out: impl FnMut(usize, Option<&[u8]>),
    ) -> Result<()> {
        self.pipeline(
            keys.len(),
            |i| keys[i].as_ref(),
            |s, i, hash| s.read_hashed_with(keys[i].as_ref(), hash, |v| out(i, v)),
        )
    }

    /// Sets each key of `items` to its value, in order: the batched form of
    /// [`Session::upsert`] (see [`Session::read_batch`] for how batches work and how they
    /// stop on an error). Never waits for disk reads.
    ///
    /// ```
    /// # use faster::{Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// let items: Vec<([u8; 8], [u8; 8])> =
    ///     (0..100u64).map(|k| (k.to_le_bytes(), (k * 2).to_le_bytes())).collect();
    /// s.upsert_batch(&items)?;
    /// assert_eq!(s.read(&7u64.to_le_bytes())?, Some(14u64.to_le_bytes().to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn upsert_batch<K: AsRef<[u8]>, V: AsRef<[u8]>>(&mut self, items: &[(K, V)]) -> Result<()> {
        self.pipeline(
            items.len(),
            |i| items[i].0.as_ref(),
            |s, i, hash| {
                let (k, v) = &items[i];
                s.upsert_hashed(k.as_ref(), hash, v.as_ref())
            },
        )
    }

    /// Deletes each key of `keys`, in order: the batched form of [`Session::delete`] (see
    /// [`Session::read_batch`] for how batches work and how they stop on an error).
    pub fn delete_batch<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<()> {
        self.pipeline(
            keys.len(),
            |i| keys[i].as_ref(),
            |s, i, hash| s.delete_hashed(keys[i].as_ref(), hash),
        )
    }

    /// Read-modify-writes each key of `items` with its input through `rmw`, in order: the
    /// batched form of [`Session::rmw`], with its semantics (in place under the record lock
    /// in the mutable region, copy-update from read-only records, the fuzzy-region rule; an
    /// old value on disk is read **blocking**). See [`Session::read_batch`] for how batches
    /// work and how they stop on an error.
    ///
    /// ```
    /// # use faster::{AddU64, Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// let one = 1u64.to_le_bytes();
    /// s.rmw_batch(&[(b"hits", one), (b"hits", one), (b"miss", one)], &AddU64)?;
    /// assert_eq!(s.read(b"hits")?, Some(2u64.to_le_bytes().to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rmw_batch<K: AsRef<[u8]>, I: AsRef<[u8]>, R: Rmw + ?Sized>(
        &mut self,
        items: &[(K, I)],
        rmw: &R,
    ) -> Result<()> {
        self.pipeline(
            items.len(),
            |i| items[i].0.as_ref(),
            |s, i, hash| {
                let (k, input) = &items[i];
                s.rmw_hashed(k.as_ref(), hash, input.as_ref(), rmw)
            },
        )
    }

    /// Runs a mixed batch of reads, upserts, RMWs (all through `rmw`) and deletes, in order,
    /// through one prefetch pipeline (see [`Session::read_batch`] for how batches work and
    /// how they stop on an error). `out(i, value)` receives the result of each read at
    /// position `i`. Every operation keeps the semantics of its per-op form and takes the next
    /// serial number; old values on disk are read **blocking**.
    ///
    /// ```
    /// # use faster::{AddU64, BatchOp, Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// let one = 1u64.to_le_bytes();
    /// let ops = [
    ///     BatchOp::Upsert(b"a", b"x"),
    ///     BatchOp::Read(b"a"),
    ///     BatchOp::Rmw(b"n", &one),
    ///     BatchOp::Delete(b"a"),
    ///     BatchOp::Read(b"a"),
    /// ];
    /// let mut reads = Vec::new();
    /// s.batch(&ops, &AddU64, |i, v| reads.push((i, v.map(<[u8]>::to_vec))))?;
    /// assert_eq!(reads, [(1, Some(b"x".to_vec())), (4, None)]);
    /// assert_eq!(s.serial(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batch<R: Rmw + ?Sized>(
        &mut self,
        ops: &[BatchOp<'_>],
        rmw: &R,
        mut out: impl FnMut(usize, Option<&[u8]>),
    ) -> Result<()> {
        self.pipeline(
            ops.len(),
            |i| ops[i].key(),
            |s, i, hash| match ops[i] {
                BatchOp::Read(k) => s.read_hashed_with(k, hash, |v| out(i, v)),
                BatchOp::Upsert(k, v) => s.upsert_hashed(k, hash, v),
                BatchOp::Rmw(k, input) => s.rmw_hashed(k, hash, input, rmw),
                BatchOp::Delete(k) => s.delete_hashed(k, hash),
            },
        )
    }

    /// The batched API's pipeline over `n` operations whose keys `key(i)` gives: per window
    /// of [`BATCH_WINDOW`] operations, hash the keys and prefetch their index buckets; probe
    /// the buckets and prefetch the records they point to; then run `exec(self, i, hash)`
    /// for each operation in order, stopping at the first error.
    ///
    /// The prefetches are pure hints (an index probe and cache hints, no state changes), so
    /// every operation keeps the exact semantics of its per-op form, which `exec` runs: a
    /// record may move, be evicted or be replaced between its prefetch and its operation.
    fn pipeline<'k>(
        &mut self,
        n: usize,
        key: impl Fn(usize) -> &'k [u8],
        mut exec: impl FnMut(&mut Self, usize, KeyHash) -> Result<()>,
    ) -> Result<()> {
        let mut hashes = [KeyHash::from_raw(0); BATCH_WINDOW];
        let mut start = 0;
        while start < n {
            let len = BATCH_WINDOW.min(n - start);
            let window = &mut hashes[..len];
            {
                let inner = &*self.inner;
                for (j, h) in window.iter_mut().enumerate() {
                    *h = KeyHash::of(key(start + j));
                    inner.index.prefetch(*h);
                }
                for h in window.iter() {
                    if let Some((_, entry)) = inner.index.find_entry(*h) {
                        inner
                            .hlog
                            .prefetch(Address::from_raw_truncated(entry.address()));
                    }
                }
            }
            for (j, h) in window.iter().enumerate() {
                exec(self, start + j, *h)?;
            }
            start += len;
        }
        Ok(())
    }

    /// Reads `key` without blocking on disk: `ctx` gets the value (or `None`, or the error)
    /// exactly once — before this returns [`Status::Done`], or from
    /// [`Session::complete_pending`] after [`Status::Pending`]. If this returns `Err`, `ctx`
    /// is never called.
    pub fn read_async(
        &mut self,
        key: &[u8],
        ctx: impl FnOnce(Result<Option<Vec<u8>>>) + Send + 'static,
    ) -> Result<Status> {
        let p = self.begin()?;
        let hash = KeyHash::of(key);
        match read::read(p.inner, p.guard, key, hash)? {
            ReadOutcome::Done(v) => {
                ctx(Ok(v));
                Ok(Status::Done)
            }
            ReadOutcome::Disk(addr) => {
                let op = PendingOp {
                    key: key.to_vec(),
                    hash,
                    kind: Kind::Read(Box::new(ctx)),
                };
                p.pending.start(&p.inner.hlog, addr, op)?;
                Ok(Status::Pending)
            }
        }
    }

    /// Read-modify-write without blocking on disk: `ctx` is called exactly once when the
    /// update is installed (or fails) — before this returns [`Status::Done`], or from
    /// [`Session::complete_pending`] after [`Status::Pending`]. If this returns `Err`, `ctx`
    /// is never called.
    pub fn rmw_async<R: Rmw + Send + 'static>(
        &mut self,
        key: &[u8],
        input: &[u8],
        rmw: R,
        ctx: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<Status> {
        let p = self.begin()?;
        let hash = KeyHash::of(key);
        match rmw::rmw(p.inner, p.guard, p.scratch, key, hash, input, &rmw)? {
            RmwOutcome::Done => {
                ctx(Ok(()));
                Ok(Status::Done)
            }
            RmwOutcome::Disk { addr, snapshot } => {
                let op = PendingOp {
                    key: key.to_vec(),
                    hash,
                    kind: Kind::Rmw {
                        input: input.to_vec(),
                        rmw: Box::new(rmw),
                        snapshot,
                        ctx: Box::new(ctx),
                    },
                };
                p.pending.start(&p.inner.hlog, addr, op)?;
                Ok(Status::Pending)
            }
        }
    }

    /// Finishes pending operations whose disk reads have completed, calling their contexts;
    /// with `wait`, blocks until none is left. Returns how many finished.
    ///
    /// An operation may need several disk reads (its chain continues on disk, or an RMW
    /// finds that a newer record appeared meanwhile and starts over); it stays pending until
    /// the last. Errors of an operation go to its context; an `Err` from this method is a
    /// device failure while driving I/O, or [`Error::Closed`] (every waiting context is then
    /// called with [`Error::Closed`]).
    pub fn complete_pending(&mut self, wait: bool) -> Result<usize> {
        let mut p = match self.parts(false) {
            Ok(p) => p,
            Err(e) => {
                self.pending.fail_all(|| Error::Closed);
                return Err(e);
            }
        };
        let mut finished = 0;
        loop {
            let device = p.inner.hlog.device();
            let polled = device.poll()?;
            while let Some((id, op, r)) = p.pending.next_completion() {
                finished += process(&mut p, id, op, r);
            }
            if p.pending.len() == 0 || !wait {
                return Ok(finished);
            }
            if polled == 0 {
                p.guard.refresh();
                if device.in_flight() > 0 {
                    device.wait()?;
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// Handles the completion of a pending operation's disk read: follows the chain, or
/// finishes the operation. Returns 1 if the operation finished (its context was called).
fn process(
    p: &mut Parts<'_>,
    id: u64,
    op: PendingOp,
    r: faster_hlog::Result<faster_hlog::DiskRecord>,
) -> usize {
    let rec = match r {
        Ok(rec) => rec,
        Err(e) => {
            op.fail(e.into());
            return 1;
        }
    };
    let PendingOp { key, hash, kind } = op;
    let step = ops::chase_step(&p.inner.hlog, &key, &rec);
    drop(rec);
    match (step, kind) {
        (Chase::Next(addr), kind) => {
            let op = PendingOp { key, hash, kind };
            usize::from(!p.pending.resume(&p.inner.hlog, id, addr, op))
        }
        (Chase::Done(v), Kind::Read(ctx)) => {
            ctx(Ok(v));
            1
        }
        (
            Chase::Done(v),
            Kind::Rmw {
                input,
                rmw,
                snapshot,
                ctx,
            },
        ) => {
            let outcome = rmw::rmw_after_disk(
                p.inner, p.guard, p.scratch, &key, hash, &input, &*rmw, snapshot, v,
            );
            match outcome {
                Ok(RmwOutcome::Done) => {
                    ctx(Ok(()));
                    1
                }
                Ok(RmwOutcome::Disk { addr, snapshot }) => {
                    let kind = Kind::Rmw {
                        input,
                        rmw,
                        snapshot,
                        ctx,
                    };
                    let op = PendingOp { key, hash, kind };
                    usize::from(!p.pending.resume(&p.inner.hlog, id, addr, op))
                }
                Err(e) => {
                    ctx(Err(e));
                    1
                }
            }
        }
    }
}

impl Drop for Session {
    /// Completes the pending operations (blocking on their I/O) so that every context is
    /// called; on a closed store they get [`Error::Closed`].
    fn drop(&mut self) {
        if self.pending.len() > 0 && self.complete_pending(true).is_err() {
            self.pending.fail_all(|| Error::Closed);
        }
    }
}
