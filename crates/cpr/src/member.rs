//! A session's side of the state machine: its membership, the fast-path
//! check, and the per-phase work done either by the session itself or, when
//! it is idle, by the driver on its behalf.
//!
//! # The idle-session handshake
//!
//! A session stays protected by the epoch between its operations, so an idle
//! session would hold every phase open forever (FASTER #227, #102). Instead
//! each member publishes a `busy` word: `last serial << 1 | 1` while a call is
//! running, `last serial << 1` between calls (plain stores, no locked
//! instruction), and its count of pending operations.
//!
//! * A session, after marking itself busy, runs the light fence and reads the
//!   global state; after clearing the mark, it runs the light fence and reads
//!   the global state again. If the state differs from its view, it
//!   synchronises under its member lock.
//! * The driver publishes a new state; then, holding every member's lock, it
//!   resets each member's fast-path cache (so that its next call takes the
//!   slow path), runs the heavy fence, and reads `busy`. If a member is not
//!   busy and has no pending operation, the driver does that member's work for
//!   the phase (for IN_PROGRESS: the cut is the member's last serial),
//!   acknowledges the phase for it, and clears its epoch protection, so that
//!   an idle session cannot hold back the log's flush either. The session's
//!   slow path protects it again before it reads the state or touches data.
//!
//! By the fence pair (see [`crate::fence`]), either the driver sees the
//! session busy (and leaves it alone), or the session's next read of the state
//! sees the new phase and it synchronises, taking the member lock, which
//! orders it after any work the driver did on its behalf. A session that was
//! busy when the driver looked sees the new phase when it clears its mark, so
//! it cannot become idle without acknowledging. The member lock also
//! keeps the driver from marking a slot that the session is releasing.

use crossbeam_utils::CachePadded;

use crate::fence;
use crate::shared::Hot;
use crate::shared::{Member, MemberState, Shared};
use crate::state::{Phase, SystemState};
use crate::sync::{Arc, AtomicU64, Mutex, MutexGuard, Ordering, lock, try_lock};

const BUSY: u64 = 1;
/// The largest serial number a session may reach: `busy` holds the serial shifted left by
/// one. A store refuses operations past it (and recovery refuses checkpoints that record
/// more).
pub const MAX_SERIAL: u64 = u64::MAX >> 1;
/// A cached view that never equals a packed state: the fast path falls into
/// the slow path until the phase is acknowledged.
const UNSYNCED: u64 = u64::MAX;

/// A session's cut in a checkpoint: the serial of its last operation of the
/// checkpoint's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionCut {
    /// The session's id.
    pub id: u64,
    /// Its last serial in the checkpoint's version.
    pub serial: u64,
    /// The serial of its last operation when the cuts were collected (`>= serial`): how
    /// many operations it had issued, for validating the cut later.
    pub issued: u64,
}

/// What the session must do to move through the phases: the store's side of
/// a session, given to [`Membership::sync`].
pub trait SessionWork {
    /// The store's error type.
    type Error;
    /// Completes every pending operation that writes (blocking on its I/O):
    /// called before the session acknowledges PREPARE, so that no write issued
    /// in version `v` is still pending after the session's cut.
    fn drain_writes(&mut self) -> Result<(), Self::Error>;
    /// The number of pending operations issued in version `version` or
    /// earlier (WAIT_PENDING waits until it is 0).
    fn pending_up_to(&self, version: u64) -> usize;
    /// Protects the session's epoch slot again, in full (store, fence,
    /// revalidate: `faster_epoch::Guard::reprotect`), if the session will touch
    /// data in this call. [`Membership::sync`] calls it first: the driver may
    /// have cleared an idle session's protection. At the end of a call (the
    /// session goes idle) it may do nothing.
    /// Returns whether it protected.
    fn protect(&mut self) -> bool;
}

/// The rules an operation follows in the session's current phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The version the session works in (stamp the low 32 bits into records).
    pub version: u64,
    /// The phase the session is in.
    pub phase: Phase,
    /// PREPARE: a record of a newer version than [`Rules::version`] means the
    /// cut has passed this session: call [`Membership::shift`] and retry.
    pub detect_shift: bool,
    /// IN_PROGRESS to WAIT_FLUSH: never update in place a record of an older
    /// version than [`Rules::version`]; copy it to the tail instead.
    pub copy_older: bool,
    /// PREPARE: an operation that writes must not go pending (it would cross
    /// the cut); complete it blocking instead.
    pub no_pending_writes: bool,
}

impl Rules {
    fn of(view: SystemState) -> Rules {
        let log = view.action.captures_log();
        Rules {
            version: view.session_version(),
            phase: view.phase,
            detect_shift: log && view.phase == Phase::Prepare,
            copy_older: log
                && matches!(
                    view.phase,
                    Phase::InProgress | Phase::WaitPending | Phase::WaitFlush
                ),
            no_pending_writes: log && view.phase == Phase::Prepare,
        }
    }
}

/// A session's membership in the state machine (owned by the session, used by
/// one thread at a time).
pub struct Membership {
    shared: Arc<Shared>,
    member: Arc<Member>,
    rules: Rules,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("id", &self.member.id)
            .field("rules", &self.rules)
            .finish()
    }
}

impl Membership {
    pub(crate) fn join(shared: Arc<Shared>, id: u64, slot: usize, serial: u64) -> Membership {
        debug_assert!(serial <= MAX_SERIAL, "serial {serial} beyond MAX_SERIAL");
        let member = Arc::new(Member {
            id,
            slot,
            hot: CachePadded::new(Hot {
                busy: AtomicU64::new(serial << 1 | BUSY),
                cached: AtomicU64::new(UNSYNCED),
                pending: AtomicU64::new(0),
            }),
            state: Mutex::new(MemberState {
                view: SystemState::rest(0),
                acked: 0,
                cut: None,
                left: false,
                stolen: false,
            }),
        });
        let view = {
            let mut st = lock(&member.state);
            shared.add_member(member.clone());
            // The caller's epoch slot is protected already: the phase read
            // here is at least the one the slot must acknowledge.
            let global = shared.load();
            st.view = global;
            st.view
        };
        let mut m = Membership {
            shared,
            member,
            rules: Rules::of(view),
        };
        // A new member has nothing pending: acknowledge the current phase.
        let _ = m.sync(serial, &mut NoWork);
        m.member.hot.busy.store(serial << 1, Ordering::Release);
        m
    }

    /// The session's id.
    pub fn id(&self) -> u64 {
        self.member.id
    }

    /// The rules for the next operation.
    #[inline]
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Marks the session busy (a call starts; `last` is the serial of its last
    /// finished operation) and checks the global state. `false`: the state
    /// changed, call [`Membership::sync`] before the operation.
    #[inline]
    pub fn enter(&self, last: u64) -> bool {
        let hot = &self.member.hot;
        hot.busy.store(last << 1 | BUSY, Ordering::Relaxed);
        fence::light();
        self.shared.state.load(Ordering::Relaxed) == hot.cached.load(Ordering::Relaxed)
    }

    /// Marks the session idle (a call ended; `last` is its last serial,
    /// `pending` its number of pending operations) and checks the global
    /// state. `false`: the state changed, call [`Membership::sync`] (it may be
    /// called while idle).
    #[inline]
    pub fn exit(&self, last: u64, pending: usize) -> bool {
        let hot = &self.member.hot;
        hot.pending.store(pending as u64, Ordering::Relaxed);
        hot.busy.store(last << 1, Ordering::Release);
        fence::light();
        self.shared.state.load(Ordering::Relaxed) == hot.cached.load(Ordering::Relaxed)
    }

    /// Brings the session to the global state, doing each phase's work
    /// through `work` and acknowledging the current phase when its condition
    /// holds. `last` is the serial of the session's last operation that
    /// belongs before a cut met here. Returns the rules to follow.
    pub fn sync<W: SessionWork + ?Sized>(
        &mut self,
        last: u64,
        work: &mut W,
    ) -> Result<Rules, W::Error> {
        let member = self.member.clone();
        let mut st = lock(&member.state);
        // Under the lock, so that a takeover round (which clears idle members' protection)
        // cannot slip in between; before reading the global state (the phase rule).
        if work.protect() {
            st.stolen = false;
        }
        loop {
            let global = self.shared.load();
            if global == st.view && (st.acked >= global.token() || !global.phase.needs_ack()) {
                // Growth phases are never cached: every call takes the slow path, where the
                // store parks the session away from the index (see `Phase::GrowPrepare`).
                let cached = if global.phase.is_growth() {
                    UNSYNCED
                } else {
                    global.pack()
                };
                member.hot.cached.store(cached, Ordering::Relaxed);
                break;
            }
            let acked = self
                .shared
                .step(&member, &mut st, global, Some(last), &mut *work)?;
            self.rules = Rules::of(st.view);
            if !acked {
                // The phase's condition does not hold yet (pending operations):
                // stay on the slow path until it does.
                member.hot.cached.store(UNSYNCED, Ordering::Relaxed);
                break;
            }
        }
        self.rules = Rules::of(st.view);
        Ok(self.rules)
    }

    /// The operation with serial `serial` met a record of a newer version
    /// while the session was in PREPARE: the cut has passed it. Moves the
    /// session across its cut (the cut is `serial - 1`, so the operation
    /// becomes the first of the new version) and returns the new rules; the
    /// caller retries the operation.
    pub fn shift<W: SessionWork + ?Sized>(
        &mut self,
        serial: u64,
        work: &mut W,
    ) -> Result<Rules, W::Error> {
        self.sync(serial.saturating_sub(1), work)
    }

    /// The session's cut in the checkpoint of `version`, if it has one.
    pub fn cut(&self, version: u64) -> Option<u64> {
        let st = lock(&self.member.state);
        st.cut.filter(|c| c.0 == version).map(|c| c.1)
    }

    /// Leaves the state machine (the session ends; `last` is its last
    /// serial). A session that leaves before its cut in a running checkpoint
    /// takes its cut here: all its operations belong to that checkpoint.
    pub fn leave(self, last: u64) {
        {
            let mut st = lock(&self.member.state);
            let g = self.shared.load();
            if g.action.captures_log()
                && g.phase != Phase::Rest
                && g.phase < Phase::InProgress
                && st.cut.is_none_or(|c| c.0 != g.version)
            {
                st.cut = Some((g.version, last));
            }
            st.left = true;
        }
        self.shared.wake_driver();
    }
}

/// The work of a member with nothing pending.
struct NoWork;

impl SessionWork for NoWork {
    type Error = std::convert::Infallible;
    fn drain_writes(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn pending_up_to(&self, _version: u64) -> usize {
        0
    }
    fn protect(&mut self) -> bool {
        false
    }
}

impl Shared {
    /// Moves `member` from its view to `global`, doing the per-phase work, and
    /// acknowledges `global`'s phase if it needs it and its condition holds.
    /// `last`: the serial of the member's cut if one is taken here (`None`:
    /// the driver acts for an idle member and reads it from `busy`). Returns
    /// whether the member is now fully at `global`.
    fn step<W: SessionWork + ?Sized>(
        &self,
        member: &Member,
        st: &mut MemberState,
        global: SystemState,
        last: Option<u64>,
        work: &mut W,
    ) -> Result<bool, W::Error> {
        let mut view = st.view;
        if view.version == global.version && view.phase > global.phase {
            // A stale `global`: the member is ahead already. Never move a view backwards.
            return Ok(true);
        }
        if view.version != global.version {
            // The view's checkpoint is over (finished or abandoned): start
            // from rest in the new version.
            view = SystemState::rest(global.version);
        }
        let log = global.action.captures_log();
        if log && view.phase < Phase::Prepare && global.phase >= Phase::Prepare {
            work.drain_writes()?;
        }
        if log && view.phase < Phase::InProgress && global.phase >= Phase::InProgress {
            let serial = match last {
                Some(s) => s,
                None => member.hot.busy.load(Ordering::Acquire) >> 1,
            };
            st.cut = Some((global.version, serial));
        }
        st.view = global;
        if !global.phase.needs_ack() || st.acked >= global.token() {
            return Ok(true);
        }
        if global.phase.waits_for_pending() && work.pending_up_to(global.version) > 0 {
            return Ok(false);
        }
        st.acked = global.token();
        if self.epoch.finish_phase_for(member.slot, global.token()) {
            self.advance(global);
        }
        Ok(true)
    }

    /// A round of acting for idle members at state `global` (the driver calls it after
    /// publishing `global`; see the module documentation):
    ///
    /// 1. lock every member it can (members busy in their own slow path are skipped) and
    ///    reset its fast-path cache, so that its next call takes the slow path;
    /// 2. one heavy fence;
    /// 3. for each locked member that is idle (not busy, nothing pending): move it to
    ///    `global`, acknowledge for it, and clear its epoch protection (an idle session
    ///    must not hold back the log's flush; its slow path protects it again).
    pub(crate) fn take_over_round(&self, global: SystemState) {
        let steal = global.phase == Phase::WaitFlush;
        let members = self.members();
        let mut locked: Vec<(&Member, MutexGuard<'_, MemberState>)> = Vec::new();
        for m in &members {
            if let Some(st) = try_lock(&m.state) {
                if !st.left {
                    m.hot.cached.store(UNSYNCED, Ordering::Relaxed);
                    locked.push((m, st));
                }
            }
        }
        if !fence::heavy() {
            // The cross-thread barrier is unavailable: acting for members would be unsound;
            // sessions acknowledge for themselves.
            return;
        }
        for (m, mut st) in locked {
            if self.load() != global {
                // `global` is stale: members may have moved past it already (found by the
                // loom model `idle_takeover_races_a_waking_session`). Under the member lock
                // the state cannot move past a phase that still needs this member, so a
                // state that is still `global` stays comparable with the member's view.
                return;
            }
            if m.hot.busy.load(Ordering::Acquire) & BUSY != 0 {
                continue;
            }
            if m.hot.pending.load(Ordering::Acquire) != 0 && !global.phase.is_growth() {
                // Not idle: pending operations are the session's to finish, and it keeps
                // its epoch protection, so that phase scans keep waiting for it. (Growth
                // does not wait for them: they complete in a later call, which follows the
                // growth before it touches the index.)
                continue;
            }
            if st.view != global || (st.acked < global.token() && global.phase.needs_ack()) {
                match self.step(m, &mut st, global, None, &mut NoWork) {
                    Ok(_) => {}
                    Err(never) => match never {},
                }
            }
            if steal && !st.stolen {
                // Idle and at WAIT_FLUSH: stop it holding back the epoch (the flush waits
                // for every protected participant). Its next call takes the slow path (its
                // cache was reset above, before the fence) and protects it again, in full,
                // before touching anything; the driver gives the protection back after the
                // flush otherwise (`restore_round`), so that idle members never miss a
                // phase scan.
                self.epoch.unprotect_slot(m.slot);
                st.stolen = true;
            }
        }
    }

    /// See [`crate::Cpr::release_idle`]: the steal of [`Shared::take_over_round`] in
    /// WAIT_FLUSH, without moving any member to another phase.
    pub(crate) fn release_idle(&self) {
        let members = self.members();
        let mut locked: Vec<(&Member, MutexGuard<'_, MemberState>)> = Vec::new();
        for m in &members {
            if let Some(st) = try_lock(&m.state) {
                if !st.left && !st.stolen {
                    m.hot.cached.store(UNSYNCED, Ordering::Relaxed);
                    locked.push((m, st));
                }
            }
        }
        if !fence::heavy() {
            return;
        }
        for (m, mut st) in locked {
            if m.hot.busy.load(Ordering::Acquire) & BUSY != 0
                || m.hot.pending.load(Ordering::Acquire) != 0
            {
                continue;
            }
            self.epoch.unprotect_slot(m.slot);
            st.stolen = true;
        }
    }

    /// Gives back the epoch protection the driver cleared in WAIT_FLUSH: a member still
    /// idle is protected again on its behalf (it still protects itself in full on its next
    /// call: its cache stays reset); a member that called in meanwhile protected itself.
    pub(crate) fn restore_round(&self) {
        for m in self.members() {
            let mut st = lock(&m.state);
            if st.stolen {
                st.stolen = false;
                if !st.left && m.hot.busy.load(Ordering::Acquire) & BUSY == 0 {
                    m.hot.cached.store(UNSYNCED, Ordering::Relaxed);
                    self.epoch.protect_slot(m.slot);
                }
            }
        }
    }

    /// The members that have not reached `global` (for a timeout report).
    pub(crate) fn laggards(&self, global: SystemState) -> Vec<u64> {
        let mut out = Vec::new();
        for m in self.members() {
            match try_lock(&m.state) {
                Some(st) => {
                    let done = st.left
                        || (st.view == global
                            && (st.acked >= global.token() || !global.phase.needs_ack()));
                    if !done {
                        out.push(m.id);
                    }
                }
                None => out.push(m.id),
            }
        }
        out.sort_unstable();
        out
    }

    /// The cuts of the checkpoint of `version`, collected at `global` (PERSISTENCE_CALLBACK).
    /// A member whose protection was cleared while idle may not have been moved across the
    /// cut yet (phase scans skip unprotected slots): if it is still idle, its cut is its
    /// last serial, taken here; if it is busy, it synchronised before its call (its cache
    /// was reset), so it has its cut already.
    pub(crate) fn cuts(&self, version: u64, global: SystemState) -> Vec<SessionCut> {
        let mut out: Vec<SessionCut> = self
            .members()
            .iter()
            .filter_map(|m| {
                let mut st = lock(&m.state);
                if !st.left
                    && st.cut.is_none_or(|c| c.0 != version)
                    && m.hot.busy.load(Ordering::Acquire) & BUSY == 0
                {
                    let _ = self.step(m, &mut st, global, None, &mut NoWork);
                }
                let issued = m.hot.busy.load(Ordering::Acquire) >> 1;
                st.cut.filter(|c| c.0 == version).map(|c| SessionCut {
                    id: m.id,
                    serial: c.1,
                    issued: issued.max(c.1),
                })
            })
            .collect();
        out.sort_unstable_by_key(|c| c.id);
        out
    }
}
