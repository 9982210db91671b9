//! [`Session`]: a thread's context for operations, with its serial numbers and pending
//! operations; [`SessionId`] and [`Status`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use faster_cpr::{MAX_SERIAL, Membership, SessionWork};
use faster_epoch::{Guard, Participant};
use faster_hlog::Address;
use faster_index::KeyHash;

use crate::batch::BatchOp;
use crate::error::{Error, Result};
use crate::ops::read::{self, ReadInto, ReadOutcome};
use crate::ops::rmw::{self, RmwOutcome};
use crate::ops::{self, Chase, Cx, Flow, Probe, SessionGuard, Shift, fast, write};
use crate::pending::{Kind, Pending, PendingOp};
use crate::rmw::Rmw;
use crate::store::Inner;

/// Operations between two refreshes of a session's epoch protection.
pub const REFRESH_INTERVAL: u64 = 64;

/// Operations per window of the batched API ([`Session::read_batch`] and friends): the keys
/// of a window are hashed and their index buckets and records prefetched before the first
/// of them executes. Measured on YCSB-A and C with 10 M keys (zipf, one thread, alternating
/// runs): 32 beats 16 by about 10% and 48 or 64 by 10-20% (more lines in flight than the
/// cache keeps until their operations run).
pub const BATCH_WINDOW: usize = 32;

/// The identity of a session, unique within its store. Displays and parses as a decimal
/// number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    pub(crate) fn from_raw(id: u64) -> SessionId {
        SessionId(id)
    }

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
    /// The epoch guard and the checkpoint membership (`None` on a closed store): one check
    /// for both on the hot path.
    live: Option<Live>,
    /// The version rules of the session's current phase.
    cx: Cx,
    /// The session's CPR version (the full width of [`Cx::version`]), kept with `cx`.
    cpr_version: u64,
    id: SessionId,
    serial: u64,
    scratch: Vec<u8>,
    pending: Pending,
    /// Operations that crossed a cut while they ran (for tests).
    shifts: u64,
    /// The batch pipeline holds the session busy across a window of operations
    /// ([`Session::pipeline`]): [`Session::op`] then takes no enter and exit of its own.
    in_window: bool,
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

/// What a session of an open store holds.
struct Live {
    guard: SessionGuard,
    /// The session's membership in the checkpoint state machine.
    cpr: Membership,
}

/// The parts of a session an operation works with.
struct Parts<'a> {
    inner: &'a Inner,
    guard: &'a mut Guard<Participant>,
    scratch: &'a mut Vec<u8>,
    pending: &'a mut Pending,
    cx: Cx,
    /// The session's CPR version (the full width of [`Cx::version`]).
    pending_version: u64,
}

/// The [`Parts`] of session `$s` whose [`Live`] the caller has borrowed as `$live` (a macro,
/// not a method, so that the borrows of the session's fields stay split).
macro_rules! parts {
    ($s:ident, $live:ident) => {
        Parts {
            inner: &$s.inner,
            guard: &mut $live.guard,
            scratch: &mut $s.scratch,
            pending: &mut $s.pending,
            cx: $s.cx,
            pending_version: $s.cpr_version,
        }
    };
}

/// The session's side of the checkpoint phases ([`SessionWork`]): finishing pending writes
/// (PREPARE) and counting old pending operations (WAIT_PENDING).
struct Work<'a, 'p> {
    p: &'a mut Parts<'p>,
    /// Whether this call may block to finish pending writes (not at the end of an
    /// operation: the session then acknowledges PREPARE at its next call).
    may_drain: bool,
}

impl SessionWork for Work<'_, '_> {
    type Error = Error;

    fn drain_writes(&mut self) -> Result<()> {
        if self.p.pending.writes() == 0 {
            return Ok(());
        }
        if !self.may_drain {
            return Err(Error::Closed);
        }
        finish_pending(self.p, true, |pending| pending.writes() == 0).map(|_| ())
    }

    fn pending_up_to(&self, version: u64) -> usize {
        self.p.pending.count_up_to(version)
    }

    fn protect(&mut self) -> bool {
        // At the end of a call (no drain allowed) the session goes idle: it stays as it is.
        if self.may_drain {
            self.p.guard.reprotect();
        }
        self.may_drain
    }
}

impl Session {
    pub(crate) fn new(inner: Arc<Inner>, id: u64, participant: Participant) -> Self {
        Self::resume(inner, id, participant, 0)
    }

    /// A session whose last operation had serial `serial` (a recovered session continued
    /// with [`crate::FasterKv::continue_session`]): its next operation gets `serial + 1`.
    pub(crate) fn resume(
        inner: Arc<Inner>,
        id: u64,
        participant: Participant,
        serial: u64,
    ) -> Self {
        let guard = participant.into_guard();
        // The slot is protected: the membership joins the phase under way.
        let cpr = inner.cpr.join(id, guard.slot_index(), serial);
        let rules = cpr.rules();
        Session {
            inner,
            live: Some(Live { guard, cpr }),
            cx: Cx::of(rules),
            cpr_version: rules.version,
            id: SessionId(id),
            serial,
            scratch: Vec::new(),
            pending: Pending::new(),
            shifts: 0,
            in_window: false,
        }
    }

    /// A session of a closed store: every operation fails with [`Error::Closed`].
    pub(crate) fn closed(inner: Arc<Inner>, id: u64) -> Self {
        let cx = Cx::of(faster_cpr::Rules {
            version: 0,
            phase: faster_cpr::Phase::Rest,
            detect_shift: false,
            copy_older: false,
            no_pending_writes: false,
        });
        Session {
            inner,
            live: None,
            cx,
            cpr_version: 0,
            id: SessionId(id),
            serial: 0,
            scratch: Vec::new(),
            pending: Pending::new(),
            shifts: 0,
            in_window: false,
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

    /// The CPR version this session works in: its operations write records of this version.
    /// It moves to `v + 1` at the session's cut in a checkpoint of version `v`.
    pub fn version(&self) -> u64 {
        self.live.as_ref().map_or(0, |l| l.cpr.rules().version)
    }

    /// The checkpoint phase this session has reached (it follows the store's phase at its
    /// next call; [`faster_cpr::Phase::Rest`] when no checkpoint runs).
    pub fn phase(&self) -> faster_cpr::Phase {
        self.live
            .as_ref()
            .map_or(faster_cpr::Phase::Rest, |l| l.cpr.rules().phase)
    }

    /// This session's cut in the checkpoint of `version`: the serial of its last operation
    /// of that version, once it has crossed to `version + 1` (`None` before, or if it took
    /// no part in that checkpoint).
    pub fn cut(&self, version: u64) -> Option<u64> {
        self.live.as_ref().and_then(|l| l.cpr.cut(version))
    }

    /// Number of operations waiting for [`Session::complete_pending`].
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Runs one operation: marks the session busy for the checkpoint state machine (and
    /// follows a phase change first), takes the next serial number, refreshes the epoch
    /// every [`REFRESH_INTERVAL`] operations, runs `f`, retries it in the new version if a
    /// checkpoint's cut passed the session meanwhile ([`Shift`]), and marks the session idle
    /// again. Fails with [`Error::Closed`] if the store is closed.
    ///
    /// The fast path (no phase change, no refresh due, no shift) checks the session once,
    /// builds the parts from that borrow and runs the membership's `enter` / `exit` inline;
    /// everything else goes to the out-of-line [`Session::op_slow`] /
    /// [`Session::op_shifted`] / [`Session::exit_slow`], which do the same steps in the same
    /// order as [`Session::enter`], the refresh and [`Session::exit`] (in particular a phase
    /// change is followed by `sync(serial, true)`, which protects the session again in full
    /// before `f` touches data).
    // `always`: only the fast path is here (the rest is out of line), and LLVM otherwise
    // keeps it out of line in the batch closures, with a call and a `Result` copy per op.
    #[inline(always)]
    fn op<T>(&mut self, mut f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>) -> Result<T> {
        if self.in_window {
            return self.op_in_window(f);
        }
        let Some(live) = self.live.as_mut() else {
            return Err(Error::Closed);
        };
        if self.inner.is_closed() {
            return Err(Error::Closed);
        }
        let synced = live.cpr.enter(self.serial);
        // `self.serial <= MAX_SERIAL < u64::MAX`: no overflow.
        let serial = self.serial + 1;
        // One test for the rare cases: a phase change to follow, a refresh due, the last
        // serial number used.
        if !synced | (serial % REFRESH_INTERVAL == 0) | (serial > MAX_SERIAL) {
            return self.op_slow(synced, f);
        }
        self.serial = serial;
        let mut p = parts!(self, live);
        // Each outcome builds its result in place after the exit (no copy of a `Result`
        // through a temporary).
        match f(&mut p) {
            Ok(Ok(v)) => {
                if !live.cpr.exit(serial, self.pending.len()) {
                    self.exit_slow();
                }
                Ok(v)
            }
            Ok(Err(Shift)) => self.op_shifted(f),
            Err(e) => {
                if !live.cpr.exit(serial, self.pending.len()) {
                    self.exit_slow();
                }
                Err(e)
            }
        }
    }

    /// [`Session::op`] inside a window of the batch pipeline, which has marked the session
    /// busy (and followed any phase change) for the whole window and marks it idle after:
    /// the same steps as `op` otherwise, in the same order (closed store, serial number,
    /// refresh every [`REFRESH_INTERVAL`] operations, retry after a [`Shift`]).
    #[inline(always)]
    fn op_in_window<T>(&mut self, f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>) -> Result<T> {
        if self.inner.is_closed() {
            return Err(Error::Closed);
        }
        self.next_serial()?;
        if self.serial % REFRESH_INTERVAL == 0 {
            self.refresh_in_op()?;
        }
        self.run_tries(f)
    }

    /// Takes the next serial number, or fails with [`Error::SerialExhausted`] (the session
    /// keeps its last one) past [`MAX_SERIAL`].
    #[inline(always)]
    fn next_serial(&mut self) -> Result<()> {
        if self.serial >= MAX_SERIAL {
            return Err(Error::SerialExhausted { session: self.id });
        }
        self.serial += 1;
        Ok(())
    }

    /// The refresh of a busy session (periodically inside an operation, or
    /// [`Session::refresh`]): the epoch, and finished device completions.
    #[cold]
    #[inline(never)]
    fn refresh_in_op(&mut self) -> Result<()> {
        if let Some(live) = &mut self.live {
            live.guard.refresh();
        }
        self.inner.hlog.device().poll()?;
        Ok(())
    }

    /// [`Session::op`] after the membership's `enter` found a phase change (`!synced`) or
    /// a refresh is due: the rest of the operation, every step in the same order as
    /// [`Session::enter`] and the fast path.
    #[cold]
    #[inline(never)]
    fn op_slow<T>(
        &mut self,
        synced: bool,
        f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>,
    ) -> Result<T> {
        if !synced {
            // The slow path of `enter`: `sync` protects the session again in full first (a
            // checkpoint may have cleared its protection while it was idle).
            self.sync(self.serial, true)?;
        }
        if let Err(e) = self.next_serial() {
            self.exit();
            return Err(e);
        }
        if self.serial % REFRESH_INTERVAL == 0 {
            if let Err(e) = self.refresh_in_op() {
                self.exit();
                return Err(e);
            }
        }
        self.run_op(f)
    }

    /// [`Session::op`] after `f` met a [`Shift`] on its first try.
    #[cold]
    #[inline(never)]
    fn op_shifted<T>(&mut self, f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>) -> Result<T> {
        if let Err(e) = self.cross_cut() {
            self.exit();
            return Err(e);
        }
        self.run_op(f)
    }

    /// Runs `f` (the session is busy and has its serial number), retrying it after each
    /// [`Shift`], and marks the session idle.
    fn run_op<T>(&mut self, f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>) -> Result<T> {
        let result = self.run_tries(f);
        self.exit();
        result
    }

    /// Runs `f` (the session is busy and has its serial number), crossing the cut and
    /// retrying after each [`Shift`]; leaves the session busy. Inlined: it is the body of
    /// every operation in a batch window ([`Session::op_in_window`]).
    #[inline(always)]
    fn run_tries<T>(&mut self, mut f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>) -> Result<T> {
        loop {
            let Some(mut p) = self.parts() else {
                return Err(Error::Closed);
            };
            match f(&mut p)? {
                Ok(v) => return Ok(v),
                Err(Shift) => self.cross_cut()?,
            }
        }
    }

    /// The current operation met a [`Shift`]: it becomes the first of the new version, so
    /// the session's cut is the serial before it.
    fn cross_cut(&mut self) -> Result<()> {
        self.shifts += 1;
        self.sync(self.serial - 1, true)
    }

    /// Marks the session busy; if the checkpoint state changed, follows it (protecting the
    /// session again in full, and finishing pending writes if PREPARE needs it). Fails if
    /// the store is closed.
    #[inline]
    fn enter(&mut self) -> Result<()> {
        let Some(live) = &self.live else {
            return Err(Error::Closed);
        };
        if self.inner.is_closed() {
            return Err(Error::Closed);
        }
        if !live.cpr.enter(self.serial) {
            // The slow path: `sync` protects the session again in full first (a
            // checkpoint may have cleared its protection while it was idle).
            self.sync(self.serial, true)?;
        }
        Ok(())
    }

    /// Marks the session idle; if the checkpoint state changed, follows it as far as it can
    /// without blocking.
    #[inline]
    fn exit(&mut self) {
        if let Some(live) = &self.live {
            if !live.cpr.exit(self.serial, self.pending.len()) {
                self.exit_slow();
            }
        }
    }

    /// The end of a call while the checkpoint state changed: follow the phases as far as
    /// possible without blocking (and without protecting the session: it goes idle).
    #[cold]
    #[inline(never)]
    fn exit_slow(&mut self) {
        // Errors here only mean "not yet" (pending writes must finish first); the next call
        // on the session tries again.
        let _ = self.sync(self.serial, false);
    }

    /// Follows the checkpoint state machine to the global phase; `last` is the serial of
    /// the session's last operation before a cut taken here.
    fn sync(&mut self, last: u64, may_drain: bool) -> Result<()> {
        let Some(live) = &mut self.live else {
            return Ok(());
        };
        let result = {
            let mut p = parts!(self, live);
            let mut work = Work {
                p: &mut p,
                may_drain,
            };
            live.cpr.sync(last, &mut work)
        };
        let rules = live.cpr.rules();
        self.cx = Cx::of(rules);
        self.cpr_version = rules.version;
        result.map(|_| ())
    }

    /// The parts of the session (`None` on a closed store).
    fn parts(&mut self) -> Option<Parts<'_>> {
        let live = self.live.as_mut()?;
        Some(parts!(self, live))
    }

    /// Refreshes the session's epoch protection now (lets the log evict and flush), runs
    /// finished device completions, and follows a checkpoint's phase change (a session
    /// that is idle but alive should call this, or drop, so that the log can evict; a
    /// checkpoint does not need it: idle sessions are acknowledged on their behalf).
    pub fn refresh(&mut self) -> Result<()> {
        self.enter()?;
        let r = self.refresh_in_op();
        self.exit();
        r
    }

    /// The probe of a per-operation call: the key's hash, with its index bucket prefetched,
    /// so that the bucket's line loads while the session's bookkeeping runs.
    #[inline(always)]
    fn probe_of(&self, key: &[u8]) -> Probe<'static> {
        let hash = KeyHash::of(key);
        self.inner.index.prefetch(hash);
        Probe::of(hash)
    }

    /// Sets `key` to `value`. Never waits for disk reads.
    ///
    /// Errors: [`Error::KeyTooLarge`] / [`Error::ValueTooLarge`] if the record would not fit
    /// in a page, [`Error::Closed`], and the layers' errors (for example a failed flush that
    /// keeps the log from evicting).
    pub fn upsert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.upsert_hashed::<true>(key, self.probe_of(key), value)
    }

    /// Deletes `key` (a no-op if it has no value). Never waits for disk reads.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.delete_hashed(key, self.probe_of(key))
    }

    /// Reads `key`: its value, or `None` if it is missing or deleted. Blocks on the disk reads
    /// it needs (and only on those: other pending operations stay pending).
    pub fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let probe = self.probe_of(key);
        let word8 = <[u8; 8]>::try_from(key).ok();
        self.op(|p| {
            if let Some(k) = word8 {
                if let Some((word, len)) = fast::read_word8(p.inner, p.guard, p.cx, k, probe) {
                    return Ok(Ok(Some(word.to_le_bytes()[..len].to_vec())));
                }
            }
            Ok(match read::read(p.inner, p.guard, p.cx, key, probe)? {
                ReadOutcome::Done(v) => Ok(v),
                ReadOutcome::Disk(addr) => Ok(ops::lookup_blocking(p.inner, p.guard, key, addr)?),
                ReadOutcome::Shift => Err(Shift),
            })
        })
    }

    /// Reads `key` like [`Session::read`], but hands the value to `f` as a borrowed slice
    /// (`None`: missing or deleted) instead of returning a new vector, and returns what `f`
    /// returns. The value is copied into a buffer of the session, so a read from memory does
    /// not allocate. The slice is only valid during the call.
    ///
    /// Same semantics as [`Session::read`] otherwise: it takes the next serial number and
    /// blocks on the disk reads it needs; `f` is called exactly once if this returns `Ok`,
    /// and never if it returns `Err`.
    ///
    /// ```
    /// # use faster::{Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// s.upsert(b"n", &7u64.to_le_bytes())?;
    /// let n = s.read_with(b"n", |v| v.map(|b| u64::from_le_bytes(b.try_into().unwrap())))?;
    /// assert_eq!(n, Some(7));
    /// assert_eq!(s.read_with(b"missing", |v| v.is_none())?, true);
    /// assert_eq!(s.serial(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn read_with<T>(&mut self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> T) -> Result<T> {
        self.read_hashed_with::<true, _>(key, self.probe_of(key), f)
    }

    /// Read-modify-write of `key` with `input` through `rmw` (see [`Rmw`]). Blocks on the disk
    /// reads it needs.
    pub fn rmw<R: Rmw + ?Sized>(&mut self, key: &[u8], input: &[u8], rmw: &R) -> Result<()> {
        self.rmw_hashed::<true, _>(key, self.probe_of(key), input, rmw)
    }

    /// [`Session::upsert`] of a key whose hash is known. `INLINE`: the operation's body is
    /// inlined here (a per-operation call, or a batch of one kind), or called out of line
    /// (a mixed batch, see [`Session::batch`]).
    #[inline]
    fn upsert_hashed<const INLINE: bool>(
        &mut self,
        key: &[u8],
        probe: Probe<'_>,
        value: &[u8],
    ) -> Result<()> {
        if let (Ok(k), Ok(v)) = (<[u8; 8]>::try_from(key), <[u8; 8]>::try_from(value)) {
            // 8-byte key and value: the fast path, and the general one out of line.
            // `inline(always)`: LLVM otherwise keeps the closure out of line (it is called
            // from the slow paths too), with a call and its captures built on the stack.
            return self.op(
                #[inline(always)]
                |p| {
                    if fast::upsert_word8(p.inner, p.guard, p.cx, k, probe, v) {
                        Ok(Ok(()))
                    } else {
                        write::upsert_call(p.inner, p.guard, p.cx, key, probe, value)
                    }
                },
            );
        }
        self.op(|p| {
            if INLINE {
                write::upsert(p.inner, p.guard, p.cx, key, probe, value)
            } else {
                write::upsert_call(p.inner, p.guard, p.cx, key, probe, value)
            }
        })
    }

    /// [`Session::delete`] of a key whose hash is known.
    #[inline]
    fn delete_hashed(&mut self, key: &[u8], probe: Probe<'_>) -> Result<()> {
        self.op(|p| write::delete(p.inner, p.guard, p.cx, key, probe))
    }

    /// [`Session::read`] of a key whose hash is known, handing the value to `out` as a
    /// borrowed slice (copied into the session's scratch buffer, or read from disk) instead
    /// of a new vector. `INLINE` as for [`Session::upsert_hashed`].
    #[inline]
    fn read_hashed_with<const INLINE: bool, T>(
        &mut self,
        key: &[u8],
        probe: Probe<'_>,
        out: impl FnOnce(Option<&[u8]>) -> T,
    ) -> Result<T> {
        /// Where the value ended up.
        enum Got {
            Scratch,
            Small(u64, usize),
            Owned(Option<Vec<u8>>),
        }
        let word8 = <[u8; 8]>::try_from(key).ok();
        let got = self.op(
            #[inline(always)]
            |p| {
                let inline = match word8 {
                    Some(k) => {
                        if let Some((word, len)) =
                            fast::read_word8(p.inner, p.guard, p.cx, k, probe)
                        {
                            return Ok(Ok(Got::Small(word, len)));
                        }
                        // The general path out of line, after the fast one.
                        false
                    }
                    None => INLINE,
                };
                Ok(
                    match if inline {
                        read::read_into(p.inner, p.guard, p.cx, key, probe, p.scratch)?
                    } else {
                        read::read_into_call(p.inner, p.guard, p.cx, key, probe, p.scratch)?
                    } {
                        ReadInto::Found => Ok(Got::Scratch),
                        ReadInto::Small(word, len) => Ok(Got::Small(word, len)),
                        ReadInto::Missing => Ok(Got::Owned(None)),
                        ReadInto::Disk(addr) => Ok(Got::Owned(ops::lookup_blocking(
                            p.inner, p.guard, key, addr,
                        )?)),
                        ReadInto::Shift => Err(Shift),
                    },
                )
            },
        )?;
        Ok(match got {
            Got::Scratch => out(Some(&self.scratch)),
            Got::Small(word, len) => out(Some(&word.to_le_bytes()[..len])),
            Got::Owned(v) => out(v.as_deref()),
        })
    }

    /// [`Session::rmw`] of a key whose hash is known.
    #[inline]
    fn rmw_hashed<const INLINE: bool, R: Rmw + ?Sized>(
        &mut self,
        key: &[u8],
        probe: Probe<'_>,
        input: &[u8],
        rmw: &R,
    ) -> Result<()> {
        if let Ok(k) = <[u8; 8]>::try_from(key) {
            // An 8-byte key: the fast path, and the general one out of line (as for upserts).
            return self.op(
                #[inline(always)]
                |p| {
                    if fast::rmw_word8(p.inner, p.guard, p.cx, k, probe, input, rmw) {
                        Ok(Ok(()))
                    } else {
                        rmw_blocking::<false, R>(p, key, probe, input, rmw)
                    }
                },
            );
        }
        self.op(|p| rmw_blocking::<INLINE, R>(p, key, probe, input, rmw))
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
            |s, i, probe| s.read_hashed_with::<true, _>(keys[i].as_ref(), probe, |v| out(i, v)),
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
            |s, i, probe| {
                let (k, v) = &items[i];
                s.upsert_hashed::<true>(k.as_ref(), probe, v.as_ref())
            },
        )
    }

    /// Deletes each key of `keys`, in order: the batched form of [`Session::delete`] (see
    /// [`Session::read_batch`] for how batches work and how they stop on an error).
    pub fn delete_batch<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<()> {
        self.pipeline(
            keys.len(),
            |i| keys[i].as_ref(),
            |s, i, probe| s.delete_hashed(keys[i].as_ref(), probe),
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
            |s, i, probe| {
                let (k, input) = &items[i];
                s.rmw_hashed::<true, _>(k.as_ref(), probe, input.as_ref(), rmw)
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
            |s, i, probe| match ops[i] {
                BatchOp::Read(k) => s.read_hashed_with::<false, _>(k, probe, |v| out(i, v)),
                BatchOp::Upsert(k, v) => s.upsert_hashed::<false>(k, probe, v),
                BatchOp::Rmw(k, input) => s.rmw_hashed::<false, _>(k, probe, input, rmw),
                BatchOp::Delete(k) => s.delete_hashed(k, probe),
            },
        )
    }

    /// The batched API's pipeline over `n` operations whose keys `key(i)` gives: per window
    /// of [`BATCH_WINDOW`] operations, hash the keys and prefetch their index buckets; probe
    /// the buckets and prefetch the records they point to; then run `exec(self, i, probe)`
    /// for each operation in order, stopping at the first error. The probe carries the slot
    /// where the key's index entry was found, so the operation re-checks that one word
    /// instead of searching the bucket again ([`faster_index::HashIndex::recheck`]).
    ///
    /// The prefetches and slots are pure hints (an index probe and cache hints, no state
    /// changes), so every operation keeps the exact semantics of its per-op form, which
    /// `exec` runs: a record may move, be evicted or be replaced, and an entry may change,
    /// between its prefetch and its operation.
    fn pipeline<'k>(
        &mut self,
        n: usize,
        key: impl Fn(usize) -> &'k [u8],
        mut exec: impl FnMut(&mut Self, usize, Probe<'_>) -> Result<()>,
    ) -> Result<()> {
        // The hints borrow the index from this handle while `exec` borrows the session. A
        // single operation has nothing to overlap: no handle, no prefetch (and one call site
        // of `exec`, so that it is inlined).
        let inner = (n > 1).then(|| Arc::clone(&self.inner));
        let mut probes = [Probe::of(KeyHash::from_raw(0)); BATCH_WINDOW];
        let mut start = 0;
        while start < n {
            let len = BATCH_WINDOW.min(n - start);
            let window = &mut probes[..len];
            for (j, p) in window.iter_mut().enumerate() {
                *p = Probe::of(KeyHash::of(key(start + j)));
                if let Some(inner) = &inner {
                    inner.index.prefetch(p.hash);
                }
            }
            if let Some(inner) = &inner {
                for p in window.iter_mut() {
                    if let Some((slot, entry)) = inner.index.find_entry(p.hash) {
                        p.hint = Some(slot);
                        inner
                            .hlog
                            .prefetch(Address::from_raw_truncated(entry.address()));
                    }
                }
            }
            // A window of several operations runs as one busy stretch of the session (one
            // enter and one exit for the checkpoint state machine); each operation still
            // takes its own serial number and follows a cut it meets
            // ([`Session::op_in_window`]). A single operation has its own enter and exit.
            let windowed = inner.is_some();
            if windowed {
                if let Err(e) = self.enter() {
                    self.exit();
                    return Err(e);
                }
                self.in_window = true;
            }
            let mut result = Ok(());
            for (j, p) in window.iter().enumerate() {
                if let Err(e) = exec(self, start + j, *p) {
                    result = Err(e);
                    break;
                }
            }
            if windowed {
                self.in_window = false;
                self.exit();
            }
            result?;
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
        let probe = self.probe_of(key);
        let mut ctx = Some(ctx);
        self.op(|p| {
            Ok(match read::read(p.inner, p.guard, p.cx, key, probe)? {
                ReadOutcome::Shift => Err(Shift),
                ReadOutcome::Done(v) => {
                    if let Some(ctx) = ctx.take() {
                        ctx(Ok(v));
                    }
                    Ok(Status::Done)
                }
                ReadOutcome::Disk(addr) => {
                    let Some(ctx) = ctx.take() else {
                        return Ok(Ok(Status::Done));
                    };
                    let op = PendingOp {
                        key: key.to_vec(),
                        hash: probe.hash,
                        version: p.cx_version(),
                        kind: Kind::Read(Box::new(ctx)),
                    };
                    p.pending.start(&p.inner.hlog, addr, op)?;
                    Ok(Status::Pending)
                }
            })
        })
    }

    /// Read-modify-write without blocking on disk: `ctx` is called exactly once when the
    /// update is installed (or fails) — before this returns [`Status::Done`], or from
    /// [`Session::complete_pending`] after [`Status::Pending`]. If this returns `Err`, `ctx`
    /// is never called.
    ///
    /// While a checkpoint is in its PREPARE phase, an RMW whose old value is on disk does
    /// not go pending: it completes blocking and returns [`Status::Done`] (a write pending
    /// across the checkpoint's cut could otherwise complete after newer writes to its key).
    pub fn rmw_async<R: Rmw + Send + 'static>(
        &mut self,
        key: &[u8],
        input: &[u8],
        rmw: R,
        ctx: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<Status> {
        let probe = self.probe_of(key);
        let mut ctx = Some(ctx);
        let mut rmw = Some(rmw);
        self.op(|p| {
            let Some(f) = rmw.as_ref() else {
                return Ok(Ok(Status::Done));
            };
            if p.cx.no_pending_writes {
                let done = rmw_blocking::<false, _>(p, key, probe, input, f)?;
                if done.is_ok() {
                    if let Some(ctx) = ctx.take() {
                        ctx(Ok(()));
                    }
                }
                return Ok(done.map(|()| Status::Done));
            }
            Ok(
                match rmw::rmw(p.inner, p.guard, p.cx, p.scratch, key, probe, input, f)? {
                    Err(Shift) => Err(Shift),
                    Ok(RmwOutcome::Done) => {
                        if let Some(ctx) = ctx.take() {
                            ctx(Ok(()));
                        }
                        Ok(Status::Done)
                    }
                    Ok(RmwOutcome::Disk { addr, snapshot }) => {
                        let (Some(ctx), Some(f)) = (ctx.take(), rmw.take()) else {
                            return Ok(Ok(Status::Done));
                        };
                        let op = PendingOp {
                            key: key.to_vec(),
                            hash: probe.hash,
                            version: p.cx_version(),
                            kind: Kind::Rmw {
                                input: input.to_vec(),
                                rmw: Box::new(f),
                                snapshot,
                                ctx: Box::new(ctx),
                            },
                        };
                        p.pending.start(&p.inner.hlog, addr, op)?;
                        Ok(Status::Pending)
                    }
                },
            )
        })
    }

    /// Finishes pending operations whose disk reads have completed, calling their contexts;
    /// with `wait`, blocks until none is left. Returns how many finished.
    ///
    /// An operation may need several disk reads (its chain continues on disk, or an RMW
    /// finds that a newer record appeared meanwhile and starts over); it stays pending until
    /// the last. Errors of an operation go to its context; an `Err` from this method is a
    /// device failure while driving I/O, or [`Error::Closed`] (every waiting context is then
    /// called with [`Error::Closed`]).
    ///
    /// This is also where a session acknowledges a checkpoint's WAIT_PENDING phase, once its
    /// operations issued before its cut have finished.
    pub fn complete_pending(&mut self, wait: bool) -> Result<usize> {
        if let Err(e) = self.enter() {
            self.pending.fail_all(|| Error::Closed);
            return Err(e);
        }
        let r = match self.parts() {
            Some(mut p) => finish_pending(&mut p, wait, |pending| pending.len() == 0),
            None => Err(Error::Closed),
        };
        self.exit();
        r
    }
}

impl Parts<'_> {
    /// The CPR version of the session's current phase (as stamped, widened).
    fn cx_version(&self) -> u64 {
        self.pending_version
    }
}

/// Runs an RMW to its end, blocking on the disk reads it needs. `INLINE`: the in-memory
/// part ([`rmw::rmw`]) is inlined here, or called out of line (see
/// [`Session::upsert_hashed`]).
fn rmw_blocking<const INLINE: bool, R: Rmw + ?Sized>(
    p: &mut Parts<'_>,
    key: &[u8],
    probe: Probe<'_>,
    input: &[u8],
    f: &R,
) -> Result<Flow<()>> {
    let first = if INLINE {
        rmw::rmw(p.inner, p.guard, p.cx, p.scratch, key, probe, input, f)?
    } else {
        rmw::rmw_call(p.inner, p.guard, p.cx, p.scratch, key, probe, input, f)?
    };
    let mut outcome = match first {
        Ok(o) => o,
        Err(Shift) => return Ok(Err(Shift)),
    };
    while let RmwOutcome::Disk { addr, snapshot } = outcome {
        let (old, old_version) = ops::lookup_blocking_versioned(p.inner, p.guard, key, addr)?;
        outcome = match rmw::rmw_after_disk(
            p.inner,
            p.guard,
            p.cx,
            p.scratch,
            key,
            probe.hash,
            input,
            f,
            snapshot,
            old,
            old_version,
        )? {
            Ok(o) => o,
            Err(Shift) => return Ok(Err(Shift)),
        };
    }
    Ok(Ok(()))
}

/// Processes pending completions (driving the device) until `done(pending)` holds, or
/// once if not `wait`. Returns how many operations finished.
fn finish_pending(p: &mut Parts<'_>, wait: bool, done: impl Fn(&Pending) -> bool) -> Result<usize> {
    let mut finished = 0;
    loop {
        let device = p.inner.hlog.device();
        let polled = device.poll()?;
        while let Some((id, op, r)) = p.pending.next_completion() {
            finished += process(p, id, op, r);
        }
        if done(p.pending) || !wait {
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
    let PendingOp {
        key,
        hash,
        version,
        kind,
    } = op;
    let step = ops::chase_step(&p.inner.hlog, &key, &rec);
    drop(rec);
    // Pending writes never exist in PREPARE (the only phase that detects shifts): the
    // session finishes them before it acknowledges PREPARE and does not send writes
    // pending during it. So completions run without shift detection.
    let cx = Cx {
        detect_shift: false,
        ..p.cx
    };
    match (step, kind) {
        (Chase::Next(addr), kind) => {
            let op = PendingOp {
                key,
                hash,
                version,
                kind,
            };
            usize::from(!p.pending.resume(&p.inner.hlog, id, addr, op))
        }
        (Chase::Done(v, _), Kind::Read(ctx)) => {
            ctx(Ok(v));
            1
        }
        (
            Chase::Done(v, old_version),
            Kind::Rmw {
                input,
                rmw,
                snapshot,
                ctx,
            },
        ) => {
            let outcome = rmw::rmw_after_disk(
                p.inner,
                p.guard,
                cx,
                p.scratch,
                &key,
                hash,
                &input,
                &*rmw,
                snapshot,
                v,
                old_version,
            );
            match outcome {
                Ok(Ok(RmwOutcome::Done)) => {
                    ctx(Ok(()));
                    1
                }
                Ok(Err(Shift)) => unreachable!("shift detection is off for completions"),
                Ok(Ok(RmwOutcome::Disk { addr, snapshot })) => {
                    let kind = Kind::Rmw {
                        input,
                        rmw,
                        snapshot,
                        ctx,
                    };
                    let op = PendingOp {
                        key,
                        hash,
                        version,
                        kind,
                    };
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
    /// called (on a closed store they get [`Error::Closed`]), then leaves the checkpoint
    /// state machine (a session that leaves before a running checkpoint's cut is cut at its
    /// last serial) and frees its epoch slot.
    fn drop(&mut self) {
        if self.pending.len() > 0 && self.complete_pending(true).is_err() {
            self.pending.fail_all(|| Error::Closed);
        }
        if let Some(Live { guard, cpr }) = self.live.take() {
            cpr.leave(self.serial);
            drop(guard);
        }
    }
}

#[cfg(test)]
mod shift_tests {
    //! The CPR shift (FASTER's CPR_SHIFT_DETECTED): an operation of a session still in
    //! PREPARE of version `v` that meets a record of a newer version must not act on it; the
    //! session crosses its cut and the operation runs again in the new version, with the
    //! same serial number. A session cannot be held in PREPARE from outside while another
    //! writes `v + 1` records (it would synchronise before its operation), so these tests
    //! give the session PREPARE's rules by hand and let a real checkpoint write the newer
    //! records.
    use super::*;
    use crate::{AddU64, Config, FasterKv, LogDevice};

    fn store() -> (tempfile::TempDir, FasterKv) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path())
            .with_log_device(LogDevice::Memory)
            .with_log_memory(1 << 20)
            .with_page_size(64 << 10)
            .with_table_bits(10);
        let store = FasterKv::open(config).unwrap();
        (dir, store)
    }

    /// Gives `s` the rules of PREPARE in version `version`.
    fn in_prepare(s: &mut Session, version: u32) {
        s.cx = Cx {
            version,
            detect_shift: true,
            copy_older: false,
            no_pending_writes: true,
        };
    }

    fn versions(store: &FasterKv, key: &[u8]) -> Vec<u32> {
        let hlog = store.hlog();
        hlog.scan(hlog.begin_address(), hlog.tail_address())
            .unwrap()
            .map(|r| r.unwrap())
            .filter(|r| r.key == key)
            .map(|r| r.version)
            .collect()
    }

    #[test]
    fn every_operation_kind_shifts_on_a_newer_record_and_keeps_its_serial() {
        let (_dir, store) = store();
        let mut w = store.start_session();
        let mut s = store.start_session();
        store.checkpoint().unwrap().wait().unwrap(); // the store works in version 2 now
        for k in [&b"u"[..], b"r", b"m", b"d"] {
            w.upsert(k, &1u64.to_le_bytes()).unwrap(); // version-2 records
        }
        s.read(b"warm-up").unwrap(); // `s` follows the checkpoint's end here
        assert_eq!(s.cx.version, 2);
        assert_eq!(versions(&store, b"u"), [2]);
        let serial = s.serial();

        in_prepare(&mut s, 1);
        s.upsert(b"u", b"x").unwrap();
        assert_eq!(s.cx.version, 2, "the session crossed to the new version");
        assert_eq!(
            s.serial(),
            serial + 1,
            "one serial for the shifted operation"
        );
        // A version-1 operation never updated the version-2 record in place: the retry
        // (in version 2, at rest) did.
        assert_eq!(versions(&store, b"u"), [2]);
        assert_eq!(s.read(b"u").unwrap(), Some(b"x".to_vec()));

        in_prepare(&mut s, 1);
        assert_eq!(s.read(b"r").unwrap(), Some(1u64.to_le_bytes().to_vec()));
        assert_eq!(s.cx.version, 2);

        in_prepare(&mut s, 1);
        s.rmw(b"m", &2u64.to_le_bytes(), &AddU64).unwrap();
        assert_eq!(s.cx.version, 2);
        assert_eq!(s.read(b"m").unwrap(), Some(3u64.to_le_bytes().to_vec()));

        in_prepare(&mut s, 1);
        s.delete(b"d").unwrap();
        assert_eq!(s.cx.version, 2);
        assert_eq!(s.read(b"d").unwrap(), None);
        assert_eq!(s.serial(), serial + 7);
        assert_eq!(s.shifts, 4, "each of the four operations shifted once");
    }

    /// The fast paths for 8-byte keys and values see the newer record too.
    #[test]
    fn eight_byte_operations_shift_on_a_newer_record() {
        let (_dir, store) = store();
        let mut w = store.start_session();
        let mut s = store.start_session();
        store.checkpoint().unwrap().wait().unwrap(); // the store works in version 2 now
        for k in [
            b"upsert-k",
            b"readkey8",
            b"batch-up",
            b"batch-rd",
            b"rmw-key8",
        ] {
            w.upsert(k, &1u64.to_le_bytes()).unwrap(); // version-2 records
        }
        s.read(b"warm-up").unwrap();
        assert_eq!(s.cx.version, 2);
        let serial = s.serial();

        in_prepare(&mut s, 1);
        s.upsert(b"upsert-k", &2u64.to_le_bytes()).unwrap();
        assert_eq!(s.cx.version, 2, "the upsert crossed to the new version");
        assert_eq!(versions(&store, b"upsert-k"), [2]);

        in_prepare(&mut s, 1);
        let got = s.read_with(b"readkey8", |v| v.map(<[u8]>::to_vec)).unwrap();
        assert_eq!(got, Some(1u64.to_le_bytes().to_vec()));
        assert_eq!(s.cx.version, 2, "the read crossed to the new version");

        in_prepare(&mut s, 1);
        s.upsert_batch(&[(b"batch-up", 3u64.to_le_bytes())])
            .unwrap();
        assert_eq!(s.cx.version, 2, "the batched upsert crossed");
        in_prepare(&mut s, 1);
        s.read_batch(&[b"batch-rd"], |_, v| assert!(v.is_some()))
            .unwrap();
        assert_eq!(s.cx.version, 2, "the batched read crossed");

        in_prepare(&mut s, 1);
        s.rmw(b"rmw-key8", &2u64.to_le_bytes(), &AddU64).unwrap();
        assert_eq!(s.cx.version, 2, "the RMW crossed");
        assert_eq!(versions(&store, b"rmw-key8"), [2]);

        assert_eq!(s.serial(), serial + 5);
        assert_eq!(s.shifts, 5, "each of the five operations shifted once");
        assert_eq!(
            s.read(b"rmw-key8").unwrap(),
            Some(3u64.to_le_bytes().to_vec())
        );
        assert_eq!(
            s.read(b"upsert-k").unwrap(),
            Some(2u64.to_le_bytes().to_vec())
        );
        assert_eq!(
            s.read(b"batch-up").unwrap(),
            Some(3u64.to_le_bytes().to_vec())
        );
    }

    #[test]
    fn records_of_the_same_or_older_versions_do_not_shift() {
        let (_dir, store) = store();
        let mut s = store.start_session();
        s.upsert(b"k", b"1").unwrap(); // a version-1 record
        in_prepare(&mut s, 1);
        s.upsert(b"k", b"2").unwrap();
        assert_eq!(s.cx.version, 1, "no shift: still in PREPARE's rules");
        assert_eq!(versions(&store, b"k"), [1], "updated in place");
        assert_eq!(s.shifts, 0);
    }
}
