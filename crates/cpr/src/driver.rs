//! Driving one checkpoint: the global transitions, the store's work in the
//! driver's phases, the idle-member takeover and the deadline.

use std::time::{Duration, Instant};

use crate::error::CprError;
use crate::machine::Cpr;
use crate::member::SessionCut;
use crate::state::{Action, Phase, SystemState};

/// The store's work in the phases the driver owns. `faster-cpr` decides
/// *when*; the store decides *what* (which files, which devices).
pub trait CheckpointHooks {
    /// The store's error type.
    type Error: std::error::Error + 'static;
    /// A checkpoint of `version` (kind `action`) has started: prepare its
    /// files, note the log's begin and current tail.
    fn start(&mut self, action: Action, version: u64) -> Result<(), Self::Error>;
    /// INDEX_CHKPT: write the fuzzy index checkpoint.
    fn write_index(&mut self, version: u64) -> Result<(), Self::Error>;
    /// WAIT_FLUSH: every session has crossed its cut and drained its pending
    /// operations; make the log of version `version` durable (fold-over flush
    /// or snapshot) and note its final address. Called repeatedly until it
    /// returns `Ok(true)`: between calls the driver stops idle sessions from
    /// holding back the epoch (a flush waits for every protected participant)
    /// and waits briefly, so each call should do one bounded step.
    fn write_log(&mut self, version: u64) -> Result<bool, Self::Error>;
    /// PERSISTENCE_CALLBACK: write the metadata (durably, last) that makes the
    /// checkpoint valid, with every session's cut.
    fn write_metadata(&mut self, version: u64, sessions: &[SessionCut]) -> Result<(), Self::Error>;
    /// The checkpoint failed: remove what it wrote (it must never be taken
    /// for a valid one).
    fn abort(&mut self, version: u64);
    /// Called while waiting for sessions: finish device I/O that pending
    /// operations wait for. Returns whether I/O is still in flight.
    fn help(&mut self) -> bool;
    /// Whether the checkpoint should give up now (the store is closing, so sessions may
    /// never finish what the checkpoint waits for). Asked before every wait for sessions;
    /// `true` abandons the checkpoint with [`CprError::Cancelled`]. The default never does.
    fn cancelled(&mut self) -> bool {
        false
    }
}

/// What a driver does while it waits for sessions: the hooks' `help` and `cancelled`.
pub(crate) trait Waits {
    /// Whether to give up now.
    fn cancelled(&mut self) -> bool;
    /// Helps the sessions (device I/O); returns whether I/O is in flight.
    fn help(&mut self) -> bool;
}

/// A checkpoint's hooks as [`Waits`].
struct CheckpointWaits<'a, H>(&'a mut H);

impl<H: CheckpointHooks> Waits for CheckpointWaits<'_, H> {
    fn cancelled(&mut self) -> bool {
        self.0.cancelled()
    }
    fn help(&mut self) -> bool {
        self.0.help()
    }
}

/// A completed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointDone {
    /// The version the checkpoint captured (sessions now work in the next).
    pub version: u64,
    /// Every session's cut, by id.
    pub sessions: Vec<SessionCut>,
}

/// A checkpoint claimed with [`Cpr::begin`], to be driven with [`Cpr::finish`]. Dropping
/// it unfinished abandons the checkpoint (the state returns to rest in `v + 1`).
#[must_use = "a started checkpoint holds the state machine until it is finished"]
#[derive(Debug)]
pub struct Started {
    cpr: Cpr,
    pub(crate) first: Option<SystemState>,
    pub(crate) at: Instant,
}

impl Started {
    /// The version the checkpoint captures.
    pub fn version(&self) -> u64 {
        self.first.map_or(0, |f| f.version)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(first) = self.first.take() {
            if first.phase != Phase::Rest {
                self.cpr.abandon(first);
            }
        }
    }
}

/// When the wait for sessions gives up.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Deadline {
    Never,
    At(Instant),
}

impl Deadline {
    pub(crate) fn after(timeout: Duration) -> Deadline {
        match Instant::now().checked_add(timeout) {
            Some(t) if timeout < Duration::from_secs(u32::MAX as u64) => Deadline::At(t),
            _ => Deadline::Never,
        }
    }

    fn expired(self) -> bool {
        match self {
            Deadline::Never => false,
            Deadline::At(t) => Instant::now() >= t,
        }
    }

    #[cfg_attr(loom, allow(dead_code))]
    fn remaining(self) -> Duration {
        match self {
            Deadline::Never => Duration::from_millis(50),
            Deadline::At(t) => t.saturating_duration_since(Instant::now()),
        }
    }
}

impl Cpr {
    /// Runs a checkpoint of kind `action` to its end on the calling thread,
    /// which must not be a session of this state machine (a thread that owns
    /// a session should run it from another thread, as the store's
    /// `checkpoint()` does, or its own session could never acknowledge).
    ///
    /// Sessions keep working throughout. The driver does the store's work in
    /// INDEX_CHKPT, WAIT_FLUSH and PERSISTENCE_CALLBACK; sessions acknowledge
    /// the other phases as they refresh, and the driver acknowledges for idle
    /// ones. If the phases needing sessions have not completed within
    /// `timeout` (a zero timeout gives up at the first wait), or the store's
    /// work fails, the checkpoint is abandoned: the state returns to rest in
    /// `v + 1`, [`CheckpointHooks::abort`] runs, and the error says why.
    ///
    /// Fails at once with [`CprError::CheckpointInProgress`] if a checkpoint
    /// is running, and does nothing for [`Action::None`].
    pub fn run<H: CheckpointHooks>(
        &self,
        action: Action,
        timeout: Duration,
        hooks: &mut H,
    ) -> Result<CheckpointDone, CprError<H::Error>> {
        let started = self.begin(action)?;
        self.finish(started, timeout, hooks)
    }

    /// The first half of [`Cpr::run`]: claims the state machine for a checkpoint of
    /// `action`, moving it from rest to the action's first phase, or fails at once with
    /// [`CprError::CheckpointInProgress`]. Lets a caller refuse a second checkpoint on its
    /// own thread and drive the first on another with [`Cpr::finish`]. A [`Started`]
    /// checkpoint that is dropped unfinished is abandoned.
    pub fn begin<E: std::error::Error + 'static>(
        &self,
        action: Action,
    ) -> Result<Started, CprError<E>> {
        let s = &*self.shared;
        let at = Instant::now();
        // Forget members that left at rest. Not after the transition: a member that leaves
        // during the checkpoint keeps its cut until the cuts are collected.
        s.prune();
        let mut cur = s.load();
        loop {
            if cur.phase != Phase::Rest {
                return Err(CprError::CheckpointInProgress {
                    phase: cur.phase,
                    version: cur.version,
                });
            }
            if action == Action::None {
                return Ok(Started {
                    cpr: self.clone(),
                    first: Some(cur),
                    at,
                });
            }
            let first = SystemState {
                action,
                phase: action.first_phase(),
                version: cur.version,
            };
            if s.transition(cur, first) {
                return Ok(Started {
                    cpr: self.clone(),
                    first: Some(first),
                    at,
                });
            }
            cur = s.load();
        }
    }

    /// The second half of [`Cpr::run`]: drives a checkpoint claimed with [`Cpr::begin`] to
    /// its end on the calling thread (see [`Cpr::run`]).
    pub fn finish<H: CheckpointHooks>(
        &self,
        mut started: Started,
        timeout: Duration,
        hooks: &mut H,
    ) -> Result<CheckpointDone, CprError<H::Error>> {
        let s = &*self.shared;
        let Some(first) = started.first.take() else {
            return Ok(CheckpointDone {
                version: s.load().version,
                sessions: Vec::new(),
            });
        };
        let version = first.version;
        if first.phase == Phase::Rest {
            return Ok(CheckpointDone {
                version,
                sessions: Vec::new(),
            });
        }
        #[cfg(not(loom))]
        s.set_driver(Some(std::thread::current()));
        let result = self.drive(first, Deadline::after(timeout), started.at, hooks);
        if result.is_err() {
            hooks.abort(version);
        }
        #[cfg(not(loom))]
        s.set_driver(None);
        s.prune();
        result
    }

    fn drive<H: CheckpointHooks>(
        &self,
        first: SystemState,
        deadline: Deadline,
        start: Instant,
        hooks: &mut H,
    ) -> Result<CheckpointDone, CprError<H::Error>> {
        let s = &*self.shared;
        let version = first.version;
        let fail = |g: SystemState, source| {
            self.abandon(g);
            CprError::Store {
                phase: g.phase,
                version,
                source,
            }
        };
        if let Err(e) = hooks.start(first.action, version) {
            return Err(fail(first, e));
        }
        loop {
            let g = s.load();
            // Sessions only move this checkpoint from one of its phases to the next; only
            // this driver ends it (past its last phase, or abandoned), and it returns right
            // there. So any other state means the machine was taken from under it: never
            // drive a checkpoint another requester began.
            if g.version != version || g.action != first.action || g.phase == Phase::Rest {
                return Err(CprError::Lost { version, found: g });
            }
            if matches!(g.phase, Phase::IndexChkpt | Phase::WaitFlush) {
                // (Each round also resets the members' fast-path caches: cheap, a slow
                // path per member per round.)
                // Idle sessions must not hold back the epoch while the store works.
                self.take_over_round(g);
            }
            match g.phase {
                Phase::IndexChkpt => match hooks.write_index(version) {
                    // An index-only checkpoint ends here: once the state is at rest another
                    // requester may begin the next checkpoint, so return without looking
                    // at the state again.
                    Ok(()) if g.next().phase == Phase::Rest => {
                        if s.advance(g) {
                            return Ok(CheckpointDone {
                                version,
                                sessions: Vec::new(),
                            });
                        }
                    }
                    Ok(()) => {
                        s.advance(g);
                    }
                    Err(e) => return Err(fail(g, e)),
                },
                Phase::WaitFlush => match hooks.write_log(version) {
                    Ok(true) => {
                        s.restore_round();
                        s.advance(g);
                    }
                    Ok(false) => {
                        let io = hooks.help();
                        wait(Deadline::Never, io);
                    }
                    Err(e) => {
                        s.restore_round();
                        return Err(fail(g, e));
                    }
                },
                Phase::PersistenceCallback => {
                    let sessions = s.cuts(version, g);
                    return match hooks.write_metadata(version, &sessions) {
                        Ok(()) if s.advance(g) => Ok(CheckpointDone { version, sessions }),
                        Ok(()) => Err(CprError::Lost {
                            version,
                            found: s.load(),
                        }),
                        Err(e) => Err(fail(g, e)),
                    };
                }
                _ => self.await_phase(g, deadline, start, &mut CheckpointWaits(hooks))?,
            }
        }
    }

    /// One round of waiting for the sessions to acknowledge `g`'s phase: advances if it is
    /// complete (acting for idle sessions first), else helps (`help`: whether I/O is in
    /// flight) and waits briefly. Abandons the action, and fails, if `cancelled` says so or
    /// the deadline passed. `Ok` means "look at the state again".
    pub(crate) fn await_phase<E: std::error::Error + 'static>(
        &self,
        g: SystemState,
        deadline: Deadline,
        start: Instant,
        waits: &mut dyn Waits,
    ) -> Result<(), CprError<E>> {
        let s = &*self.shared;
        let version = g.version;
        if s.epoch.completed_phase() >= g.token() {
            // Completed; its completer advances (or we do).
            s.advance(g);
            return Ok(());
        }
        self.take_over_round(g);
        if s.epoch.try_complete_phase(g.token()) {
            s.advance(g);
            return Ok(());
        }
        if s.load() != g {
            return Ok(());
        }
        if waits.cancelled() {
            if self.abandon(g) {
                return Err(CprError::Cancelled {
                    phase: g.phase,
                    version,
                });
            }
            return Ok(());
        }
        if deadline.expired() {
            let sessions = s.laggards(g);
            if self.abandon(g) {
                return Err(CprError::Timeout {
                    phase: g.phase,
                    version,
                    sessions,
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            return Ok(());
        }
        let io = waits.help();
        wait(deadline, io);
        Ok(())
    }

    /// Acts for every idle member at state `g` (see the `member` module).
    pub(crate) fn take_over_round(&self, g: SystemState) {
        self.shared.take_over_round(g);
    }

    /// Gives up the checkpoint at state `g`: back to rest in `v + 1`.
    pub(crate) fn abandon(&self, g: SystemState) -> bool {
        self.shared.transition(g, g.abandoned())
    }
}

/// Waits for a session to report progress (it unparks the driver when it
/// completes a phase or leaves), for at most the time left, or briefly while
/// I/O that pending operations wait for is in flight.
pub(crate) fn wait(deadline: Deadline, io_in_flight: bool) {
    #[cfg(loom)]
    {
        let _ = (deadline, io_in_flight);
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        let mut d = deadline.remaining().min(Duration::from_millis(50));
        if io_in_flight {
            d = d.min(Duration::from_millis(1));
        }
        std::thread::park_timeout(d);
    }
}
