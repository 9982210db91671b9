//! Loom models of the CPR state machine's phase barriers: the real code of
//! `faster-cpr` and `faster-epoch` (both built on loom atomics under
//! `--cfg loom`), with simulated sessions and a driver running [`Cpr::run`].
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p
//! faster-cpr --test loom --profile loom`. Without `LOOM_MAX_PREEMPTIONS` the
//! models use a bound of 2. Timeouts are `Duration::ZERO` (give up at the
//! first wait) or `Duration::MAX` (never): any other duration reads the real
//! clock and makes the model nondeterministic.
#![cfg(loom)]

use std::time::Duration;

use faster_cpr::{
    Action, CheckpointDone, CheckpointHooks, Cpr, CprError, Membership, Phase, Rules, SessionCut,
    SessionWork, SystemState,
};
use faster_epoch::{Guard, LightEpoch, Participant};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use loom::thread;

/// The version every model starts at rest in.
const V: u64 = 1;

/// Runs `f` under loom with the environment's settings, and a preemption
/// bound of 2 unless `LOOM_MAX_PREEMPTIONS` says otherwise.
fn model<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    b.check(f);
}

#[derive(Debug, thiserror::Error)]
#[error("never fails")]
struct Never;

/// Hooks that do nothing and never fail.
struct Hooks;

impl CheckpointHooks for Hooks {
    type Error = Never;
    fn start(&mut self, _action: Action, _version: u64) -> Result<(), Never> {
        Ok(())
    }
    fn write_index(&mut self, _version: u64) -> Result<(), Never> {
        Ok(())
    }
    fn write_log(&mut self, _version: u64) -> Result<bool, Never> {
        Ok(true)
    }
    fn write_metadata(&mut self, _version: u64, _sessions: &[SessionCut]) -> Result<(), Never> {
        Ok(())
    }
    fn abort(&mut self, _version: u64) {}
    fn help(&mut self) -> bool {
        false
    }
}

/// The session's store side: `pending` operations that never drain, and its
/// epoch guard (protected again in full on the slow path of a call's start).
struct Work<'a> {
    pending: usize,
    guard: &'a mut Guard<Participant>,
    protect: bool,
}

impl SessionWork for Work<'_> {
    type Error = std::convert::Infallible;
    fn drain_writes(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn pending_up_to(&self, _version: u64) -> usize {
        self.pending
    }
    fn protect(&mut self) -> bool {
        if self.protect {
            self.guard.reprotect();
        }
        self.protect
    }
}

/// A simulated session: a protected epoch guard, its membership, its serials
/// and a log of `(serial, version)` per operation.
struct Sim {
    _guard: Guard<Participant>,
    m: Membership,
    serial: u64,
    pending: usize,
    log: Vec<(u64, u64)>,
}

impl Sim {
    fn join(cpr: &Cpr, epoch: &LightEpoch, id: u64) -> Sim {
        let guard = epoch.register().unwrap().into_guard();
        let m = cpr.join(id, guard.slot_index(), 0);
        Sim {
            _guard: guard,
            m,
            serial: 0,
            pending: 0,
            log: Vec::new(),
        }
    }

    fn sync(&mut self, last: u64, protect: bool) -> Rules {
        let mut work = Work {
            pending: self.pending,
            guard: &mut self._guard,
            protect,
        };
        match self.m.sync(last, &mut work) {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// One operation: `body` runs with the rules the operation follows.
    fn op(&mut self, body: impl FnOnce(Rules)) {
        if !self.m.enter(self.serial) {
            self.sync(self.serial, true);
        }
        self.serial += 1;
        let rules = self.m.rules();
        self.log.push((self.serial, rules.version));
        body(rules);
        if !self.m.exit(self.serial, self.pending) {
            self.sync(self.serial, false);
        }
    }

    /// Enters and exits without an operation (publishes `pending`, syncs).
    fn poke(&mut self) -> Rules {
        if !self.m.enter(self.serial) {
            self.sync(self.serial, true);
        }
        if !self.m.exit(self.serial, self.pending) {
            self.sync(self.serial, false);
        }
        self.m.rules()
    }
}

fn machine(observer: Option<faster_cpr::PhaseObserver>) -> (Cpr, LightEpoch) {
    let epoch = LightEpoch::with_capacity(3, 1).unwrap();
    let cpr = Cpr::new(epoch.clone(), V, observer);
    (cpr, epoch)
}

/// Every operation of `log` up to `cut` ran in `version`, every later one in
/// `version + 1`.
fn assert_cut_splits(log: &[(u64, u64)], cut: u64, version: u64) {
    for &(serial, v) in log {
        if serial <= cut {
            assert_eq!(v, version, "op {serial} <= cut {cut} ran in {v}");
        } else {
            assert_eq!(v, version + 1, "op {serial} > cut {cut} ran in {v}");
        }
    }
}

fn cut_of(done: &CheckpointDone, id: u64) -> u64 {
    done.sessions
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no cut for session {id}: {done:?}"))
        .serial
}

/// The rules of an operation in flight, published for the other session
/// (0: no operation in flight).
fn code(r: Rules) -> u64 {
    1 | (r.phase as u64) << 1 | r.version << 8
}

/// 1. PREPARE is a barrier: no session works in `v + 1` before every session
///    has acknowledged PREPARE.
///
/// What the protocol promises, and what is asserted:
/// * a `v + 1` operation runs only after the PREPARE token is complete in the
///   epoch (every protected slot acknowledged it, itself or through the
///   driver);
/// * a `v` operation that overlaps with, or follows, a `v + 1` operation of
///   another session runs under PREPARE rules (it looks out for `v + 1`
///   records and keeps writes from going pending). Checked from both sides:
///   the `v + 1` operation reads the other's operation in flight, and a `v`
///   operation reads whether a `v + 1` operation has started anywhere;
/// * each session's cut splits its log: serials `<= cut` ran in `v`, the rest
///   in `v + 1`.
///
/// (A per-session "my view >= PREPARE" flag set by the session itself is not
/// promised: the driver may acknowledge PREPARE for an idle session, which
/// then learns of it only at its next call.)
#[test]
fn no_session_works_in_v_plus_1_before_all_acknowledged_prepare() {
    model(|| {
        let (cpr, epoch) = machine(None);
        let prepare_token = SystemState {
            action: Action::LogOnly,
            phase: Phase::Prepare,
            version: V,
        }
        .token();
        // Rules of each session's operation in flight (0: none).
        let in_flight: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        // Some session has started an operation of `v + 1`.
        let v1_started = Arc::new(AtomicBool::new(false));
        let ops = [2usize, 1];
        let sims: Vec<Sim> = (0..2).map(|i| Sim::join(&cpr, &epoch, i + 1)).collect();
        let threads: Vec<_> = sims
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                let (in_flight, v1_started, epoch) =
                    (in_flight.clone(), v1_started.clone(), epoch.clone());
                thread::spawn(move || {
                    for _ in 0..ops[i] {
                        s.op(|r| {
                            in_flight[i].store(code(r), Ordering::SeqCst);
                            if r.version == V + 1 {
                                v1_started.store(true, Ordering::SeqCst);
                                assert!(
                                    epoch.completed_phase() >= prepare_token,
                                    "session {i} works in v+1 before PREPARE completed"
                                );
                                let other = in_flight[1 - i].load(Ordering::SeqCst);
                                if other != 0 && other >> 8 == V {
                                    assert_eq!(
                                        other >> 1 & 0x7f,
                                        Phase::Prepare as u64,
                                        "session {} works in v outside PREPARE while {i} works in v+1",
                                        1 - i
                                    );
                                }
                            } else {
                                assert_eq!(r.version, V);
                                if v1_started.load(Ordering::SeqCst) {
                                    assert_eq!(
                                        r.phase,
                                        Phase::Prepare,
                                        "session {i} works in v outside PREPARE after a v+1 op"
                                    );
                                    assert!(r.detect_shift && r.no_pending_writes);
                                }
                            }
                            in_flight[i].store(0, Ordering::SeqCst);
                        });
                    }
                    s
                })
            })
            .collect();
        let done = cpr.run(Action::LogOnly, Duration::MAX, &mut Hooks).unwrap();
        let sims: Vec<Sim> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(done.version, V);
        assert_eq!(cpr.state(), SystemState::rest(V + 1));
        for (i, s) in sims.iter().enumerate() {
            let cut = cut_of(&done, i as u64 + 1);
            assert_eq!(s.m.cut(V), Some(cut));
            assert_cut_splits(&s.log, cut, V);
        }
    });
}

/// 2. A full checkpoint with one busy and one idle session enters each phase
///    exactly once (no double advance by racing completers), ends at rest in
///    `v + 1`, and the idle session gets its cut (taken on its behalf).
#[test]
fn every_phase_advances_exactly_once() {
    model(|| {
        let counts: Arc<[AtomicUsize; 8]> = Arc::new(Default::default());
        let c = counts.clone();
        let (cpr, epoch) = machine(Some(Box::new(move |s: SystemState| {
            c[s.phase as usize].fetch_add(1, Ordering::SeqCst);
        })));
        let idle = Sim::join(&cpr, &epoch, 1);
        let mut busy = Sim::join(&cpr, &epoch, 2);
        let driver = {
            let cpr = cpr.clone();
            thread::spawn(move || cpr.run(Action::Full, Duration::MAX, &mut Hooks))
        };
        let busy = thread::spawn(move || {
            busy.op(|_| {});
            busy
        });
        let done = driver.join().unwrap().unwrap();
        let busy = busy.join().unwrap();
        for (phase, n) in counts.iter().enumerate() {
            let n = n.load(Ordering::SeqCst);
            assert_eq!(n, 1, "phase {phase} entered {n} times");
        }
        assert_eq!(cpr.state(), SystemState::rest(V + 1));
        assert_eq!(done.version, V);
        assert_eq!(cut_of(&done, 1), 0);
        assert_eq!(idle.m.cut(V), Some(0));
        assert_cut_splits(&busy.log, cut_of(&done, 2), V);
    });
}

/// 3. A session with a pending operation it never drains makes a log-only
///    checkpoint with a zero timeout fail and never complete. Depending on
///    how far the session (which keeps calling in) acknowledges before the
///    driver's first wait, the timeout is in PREPARE (the driver does not act
///    for a member with work pending), IN_PROGRESS or WAIT_PENDING; the model
///    reaches all three. The state goes back to rest in `v + 1`, the
///    session's next call moves it there, and a second (full) checkpoint with
///    nothing pending completes.
#[test]
fn timeout_leaves_a_consistent_state() {
    model(|| {
        let (cpr, epoch) = machine(None);
        let mut stuck = Sim::join(&cpr, &epoch, 1);
        stuck.pending = 1;
        stuck.op(|_| {}); // exit(1, 1): one operation pending, never drained
        let session = thread::spawn(move || {
            // It keeps calling in: it acknowledges what it can.
            stuck.poke();
            stuck.poke();
            stuck
        });
        let r = cpr.run(Action::LogOnly, Duration::ZERO, &mut Hooks);
        let mut stuck = session.join().unwrap();
        match r {
            Err(CprError::Timeout {
                phase,
                version,
                sessions,
                ..
            }) => {
                assert_eq!(version, V);
                assert!(
                    matches!(
                        phase,
                        Phase::Prepare | Phase::InProgress | Phase::WaitPending
                    ),
                    "timed out in {phase}"
                );
                assert_eq!(sessions, [1], "laggards in {phase}");
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(cpr.state(), SystemState::rest(V + 1));
        let rules = stuck.poke();
        assert_eq!((rules.version, rules.phase), (V + 1, Phase::Rest));
        assert!(!rules.copy_older && !rules.detect_shift && !rules.no_pending_writes);

        stuck.pending = 0;
        stuck.poke();
        let done = cpr.run(Action::Full, Duration::MAX, &mut Hooks).unwrap();
        assert_eq!(done.version, V + 1);
        assert_eq!(
            done.sessions,
            [SessionCut {
                id: 1,
                serial: stuck.serial,
                issued: stuck.serial
            }]
        );
        assert_eq!(cpr.state(), SystemState::rest(V + 2));
    });
}

/// 4. An idle session wakes up and starts an operation while the driver
///    acknowledges for it: either the driver took the cut first (the cut is
///    the serial before the operation, which runs in `v + 1`) or the session
///    was seen busy (the operation runs in `v` and the cut includes it). The
///    checkpoint completes either way.
#[test]
fn idle_takeover_races_a_waking_session() {
    model(|| {
        let (cpr, epoch) = machine(None);
        let mut s = Sim::join(&cpr, &epoch, 1);
        let session = thread::spawn(move || {
            s.op(|_| {});
            s
        });
        let done = cpr.run(Action::LogOnly, Duration::MAX, &mut Hooks).unwrap();
        let s = session.join().unwrap();
        assert_eq!(done.version, V);
        let cut = cut_of(&done, 1);
        let (serial, version) = s.log[0];
        assert_eq!(serial, 1);
        match version {
            V => assert_eq!(cut, 1, "op 1 ran in v but the cut excludes it"),
            v if v == V + 1 => assert_eq!(cut, 0, "op 1 ran in v+1 but the cut includes it"),
            v => panic!("op ran in version {v}"),
        }
        assert_eq!(cpr.state(), SystemState::rest(V + 1));
    });
}

/// Hooks that record, for one requester, every call the driver makes on them.
#[derive(Default)]
struct Recording {
    calls: Vec<(&'static str, u64)>,
}

impl CheckpointHooks for Recording {
    type Error = Never;
    fn start(&mut self, _action: Action, version: u64) -> Result<(), Never> {
        self.calls.push(("start", version));
        Ok(())
    }
    fn write_index(&mut self, version: u64) -> Result<(), Never> {
        self.calls.push(("index", version));
        Ok(())
    }
    fn write_log(&mut self, version: u64) -> Result<bool, Never> {
        self.calls.push(("log", version));
        Ok(true)
    }
    fn write_metadata(&mut self, version: u64, _sessions: &[SessionCut]) -> Result<(), Never> {
        self.calls.push(("meta", version));
        Ok(())
    }
    fn abort(&mut self, version: u64) {
        self.calls.push(("abort", version));
    }
    fn help(&mut self) -> bool {
        false
    }
}

/// 5. Two requesters race: one asks for an index-only checkpoint, the other for a full one,
///    while a session works. Each request either is refused at once with
///    `CheckpointInProgress` or runs its own checkpoint to its end: a driver never touches a
///    checkpoint another requester began (no call on its hooks for another version or for a
///    phase its action does not have), every completed full checkpoint has the session's
///    cut and wrote its metadata, and the machine ends at rest after the checkpoints that
///    ran.
#[test]
fn two_requesters_each_drive_only_their_own_checkpoint() {
    model(|| {
        let (cpr, epoch) = machine(None);
        let mut s = Sim::join(&cpr, &epoch, 1);
        let requester = |action: Action| {
            let cpr = cpr.clone();
            thread::spawn(move || {
                let mut hooks = Recording::default();
                let r = cpr.run(action, Duration::MAX, &mut hooks);
                (r, hooks.calls)
            })
        };
        let index_only = requester(Action::IndexOnly);
        let full = requester(Action::Full);
        // The member yields inside its operations, so a driver that waits for it (it cannot
        // act for a busy member) lets the other requester run without a preemption.
        for _ in 0..2 {
            s.op(|_| thread::yield_now());
        }
        let mut ran = 0;
        for (action, t) in [(Action::IndexOnly, index_only), (Action::Full, full)] {
            let (r, calls) = t.join().unwrap();
            match r {
                Err(CprError::CheckpointInProgress { .. }) => {
                    assert!(calls.is_empty(), "{action:?} refused but drove {calls:?}")
                }
                Ok(done) => {
                    ran += 1;
                    let v = done.version;
                    let want: &[&str] = match action {
                        Action::IndexOnly => &["start", "index"],
                        _ => &["start", "index", "log", "meta"],
                    };
                    let got: Vec<&str> = calls.iter().map(|c| c.0).collect();
                    assert_eq!(got, want, "{action:?} of version {v} made calls {calls:?}");
                    assert!(
                        calls.iter().all(|c| c.1 == v),
                        "{action:?} of version {v} made calls {calls:?}"
                    );
                    if action == Action::Full {
                        assert_eq!(done.sessions.len(), 1, "{done:?}");
                        assert_eq!(done.sessions[0].id, 1);
                    } else {
                        assert!(done.sessions.is_empty());
                    }
                }
                Err(e) => panic!("{action:?}: {e}"),
            }
        }
        assert!(ran >= 1, "both requests were refused");
        assert_eq!(cpr.state(), SystemState::rest(V + ran));
        drop(s);
    });
}

/// Growth hooks of the model: the split raises `splitting` while it runs.
struct Split {
    splitting: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl faster_cpr::ActionHooks for Split {
    type Error = Never;
    fn work(&mut self) -> Result<bool, Never> {
        self.splitting.store(true, Ordering::SeqCst);
        thread::yield_now();
        self.splitting.store(false, Ordering::SeqCst);
        self.done.store(true, Ordering::SeqCst);
        Ok(true)
    }
    fn abort(&mut self) {}
}

/// 6. Index growth parks every member away from the index: no operation of a member runs
///    while the store splits, whether the member is busy when GROW_PREPARE is published
///    (it acknowledges at its exit), idle (the driver acknowledges for it) or calls in
///    during the growth (growth phases are never cached, so its call takes the slow path
///    and waits, as the store's `follow_growth` does, until the split is over). Breaking
///    the rule "never cache a growth phase" fails it.
#[test]
fn no_operation_runs_while_a_growth_splits() {
    model(|| {
        let (cpr, epoch) = machine(None);
        let splitting = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let mut sim = Sim::join(&cpr, &epoch, 1);
        let c = cpr.clone();
        let (sp, dn) = (splitting.clone(), done.clone());
        let session = thread::spawn(move || {
            for _ in 0..2 {
                // The store's envelope: a call in a growth phase waits (re-syncing) until
                // the split is over before it touches the index.
                if !sim.m.enter(sim.serial) {
                    let mut rules = sim.sync(sim.serial, true);
                    while rules.phase.is_growth()
                        && !(rules.phase == Phase::GrowInProgress && dn.load(Ordering::SeqCst))
                    {
                        thread::yield_now();
                        rules = sim.sync(sim.serial, true);
                    }
                }
                sim.serial += 1;
                assert!(
                    !sp.load(Ordering::SeqCst),
                    "an operation ran during the split"
                );
                if !sim.m.exit(sim.serial, 0) {
                    sim.sync(sim.serial, false);
                }
            }
            drop(c);
        });
        let driver = thread::spawn(move || {
            let started = cpr.begin::<Never>(Action::Grow).unwrap();
            let mut hooks = Split { splitting, done };
            cpr.finish_action(started, Duration::MAX, &mut hooks)
                .unwrap();
            assert_eq!(cpr.state(), SystemState::rest(V + 1));
        });
        session.join().unwrap();
        driver.join().unwrap();
    });
}
