//! The CPR envelope of every operation: marking the session busy and idle, following the
//! checkpoint state machine, serial numbers, epoch refreshes, crossing a cut.

use faster_cpr::{MAX_SERIAL, SessionWork};

use super::pending::finish_pending;
use super::{Parts, REFRESH_INTERVAL, Session};
use crate::error::{Error, Result};
use crate::ops::{Cx, Flow, Shift};

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
            self.p.op.guard.reprotect();
        }
        self.may_drain
    }
}

impl Session {
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
    pub(super) fn op<T>(
        &mut self,
        mut f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>,
    ) -> Result<T> {
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
    pub(super) fn op_in_window<T>(
        &mut self,
        f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>,
    ) -> Result<T> {
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
    pub(super) fn next_serial(&mut self) -> Result<()> {
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
    pub(super) fn refresh_in_op(&mut self) -> Result<()> {
        if let Some(live) = &mut self.live {
            live.guard.refresh();
        }
        self.inner.hlog.device().poll()?;
        if self.inner.index.wants_growth() {
            crate::grow::maybe_start(&self.inner);
        }
        if self.inner.space.auto_compaction && crate::compact::wanted(&self.inner) {
            crate::compact::maybe_start(&self.inner);
        }
        Ok(())
    }

    /// Whether this session should wait for the running compaction before its next
    /// operation: the log outgrew it ([`crate::compact::behind`]), the session has nothing
    /// pending (it waits idle, and a pending operation would hold a shift up), and it is
    /// not the compaction's own session.
    #[cold]
    pub(super) fn waits_for_compaction(&self) -> bool {
        self.pending.len() == 0
            && crate::compact::behind(&self.inner)
            && !crate::shared::lock(&self.inner.internal_sessions).contains(&self.id().as_u64())
    }

    /// [`Session::op`] after the membership's `enter` found a phase change (`!synced`) or
    /// a refresh is due: the rest of the operation, every step in the same order as
    /// [`Session::enter`] and the fast path.
    #[cold]
    #[inline(never)]
    pub(super) fn op_slow<T>(
        &mut self,
        mut synced: bool,
        f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>,
    ) -> Result<T> {
        if (self.serial + 1) % REFRESH_INTERVAL == 0 && self.waits_for_compaction() {
            // The log outgrows a running compaction: wait for it, idle (so it is never
            // waited for in turn), before this operation takes its serial number.
            self.exit();
            self.inner.compacting.running.wait_idle();
            self.enter()?;
            synced = true;
        }
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
    pub(super) fn op_shifted<T>(
        &mut self,
        f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>,
    ) -> Result<T> {
        if let Err(e) = self.cross_cut() {
            self.exit();
            return Err(e);
        }
        self.run_op(f)
    }

    /// Runs `f` (the session is busy and has its serial number), retrying it after each
    /// [`Shift`], and marks the session idle.
    pub(super) fn run_op<T>(
        &mut self,
        f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>,
    ) -> Result<T> {
        let result = self.run_tries(f);
        self.exit();
        result
    }

    /// Runs `f` (the session is busy and has its serial number), crossing the cut and
    /// retrying after each [`Shift`]; leaves the session busy. Inlined: it is the body of
    /// every operation in a batch window ([`Session::op_in_window`]).
    #[inline(always)]
    pub(super) fn run_tries<T>(
        &mut self,
        mut f: impl FnMut(&mut Parts<'_>) -> Result<Flow<T>>,
    ) -> Result<T> {
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
    pub(super) fn cross_cut(&mut self) -> Result<()> {
        self.shifts += 1;
        self.sync(self.serial - 1, true)
    }

    /// Marks the session busy; if the checkpoint state changed, follows it (protecting the
    /// session again in full, and finishing pending writes if PREPARE needs it). Fails if
    /// the store is closed.
    #[inline]
    pub(super) fn enter(&mut self) -> Result<()> {
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
    pub(super) fn exit(&mut self) {
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
    pub(super) fn exit_slow(&mut self) {
        // Errors here only mean "not yet" (pending writes must finish first); the next call
        // on the session tries again.
        let _ = self.sync(self.serial, false);
    }

    /// Follows the checkpoint state machine to the global phase; `last` is the serial of
    /// the session's last operation before a cut taken here.
    pub(super) fn sync(&mut self, last: u64, may_drain: bool) -> Result<()> {
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
        result?;
        if may_drain && rules.phase.is_growth() {
            self.follow_growth(last)?;
        }
        Ok(())
    }

    /// The index is growing and the session is about to use it: wait until it may. In
    /// GROW_PREPARE (acknowledged already) the session waits for the split to begin; in
    /// GROW_IN_PROGRESS it helps split, then waits for the driver's switch to the new
    /// table. The session never uses the index meanwhile, and refreshes its epoch while it
    /// waits (it holds nothing of the log), so that a session still busy in its last call
    /// can finish it; the growth never waits for this session (it acknowledged), so the
    /// wait ends.
    #[cold]
    #[inline(never)]
    fn follow_growth(&mut self, last: u64) -> Result<()> {
        let spin = faster_sync::Spin::new();
        loop {
            if self.inner.is_closed() {
                return Err(Error::Closed);
            }
            let Some(live) = &mut self.live else {
                return Err(Error::Closed);
            };
            // Between operations: nothing of the log is held, so let the epoch move (a
            // session busy in its last call before it acknowledges may wait for a page).
            live.guard.refresh();
            let phase = live.cpr.rules().phase;
            if phase == faster_cpr::Phase::GrowInProgress {
                crate::grow::help(&self.inner.hlog, &self.inner.index, &live.guard);
                if !self.inner.index.is_growing() {
                    return Ok(());
                }
            } else if !phase.is_growth() {
                return Ok(());
            }
            spin.wait();
            let mut p = parts!(self, live);
            let mut work = Work {
                p: &mut p,
                may_drain: true,
            };
            live.cpr.sync(last, &mut work)?;
        }
    }

    /// The parts of the session (`None` on a closed store).
    pub(super) fn parts(&mut self) -> Option<Parts<'_>> {
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
}
