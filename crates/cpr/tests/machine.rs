//! The state machine with simulated sessions on std threads.

#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faster_cpr::{
    Action, CheckpointHooks, Cpr, CprError, Membership, Phase, SessionCut, SessionWork, SystemState,
};
use faster_epoch::{Guard, LightEpoch, Participant};

#[derive(Debug, thiserror::Error)]
#[error("store failure")]
struct StoreFail;

#[derive(Default)]
struct Hooks {
    calls: Vec<String>,
    fail_in: Option<&'static str>,
    cuts: Vec<SessionCut>,
}

impl CheckpointHooks for Hooks {
    type Error = StoreFail;
    fn start(&mut self, action: Action, version: u64) -> Result<(), StoreFail> {
        self.calls.push(format!("start {action:?} {version}"));
        Ok(())
    }
    fn write_index(&mut self, version: u64) -> Result<(), StoreFail> {
        self.calls.push(format!("index {version}"));
        if self.fail_in == Some("index") {
            Err(StoreFail)
        } else {
            Ok(())
        }
    }
    fn write_log(&mut self, version: u64) -> Result<bool, StoreFail> {
        self.calls.push(format!("log {version}"));
        if self.fail_in == Some("log") {
            Err(StoreFail)
        } else {
            Ok(true)
        }
    }
    fn write_metadata(&mut self, version: u64, sessions: &[SessionCut]) -> Result<(), StoreFail> {
        self.calls.push(format!("meta {version}"));
        self.cuts = sessions.to_vec();
        Ok(())
    }
    fn abort(&mut self, version: u64) {
        self.calls.push(format!("abort {version}"));
    }
    fn help(&mut self) -> bool {
        false
    }
}

/// A simulated session: an epoch guard, a membership, serial numbers, and a
/// log of (serial, version) per operation.
struct Sim {
    _guard: Guard<Participant>,
    m: Membership,
    serial: u64,
    pending: Arc<AtomicUsize>,
    log: Vec<(u64, u64)>,
}

struct Work<'a>(Arc<AtomicUsize>, &'a mut Guard<Participant>, bool);
impl SessionWork for Work<'_> {
    type Error = std::convert::Infallible;
    fn drain_writes(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn pending_up_to(&self, _v: u64) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    fn protect(&mut self) -> bool {
        if self.2 {
            self.1.reprotect();
        }
        self.2
    }
}

impl Sim {
    fn new(cpr: &Cpr, epoch: &LightEpoch, id: u64) -> Sim {
        let guard = epoch.register().unwrap().into_guard();
        let m = cpr.join(id, guard.slot_index(), 0);
        Sim {
            _guard: guard,
            m,
            serial: 0,
            pending: Arc::new(AtomicUsize::new(0)),
            log: Vec::new(),
        }
    }

    fn op(&mut self) {
        if !self.m.enter(self.serial) {
            let mut work = Work(self.pending.clone(), &mut self._guard, true);
            self.m.sync(self.serial, &mut work).unwrap();
        }
        self.serial += 1;
        self.log.push((self.serial, self.m.rules().version));
        if !self
            .m
            .exit(self.serial, self.pending.load(Ordering::SeqCst))
        {
            let mut work = Work(self.pending.clone(), &mut self._guard, false);
            self.m.sync(self.serial, &mut work).unwrap();
        }
    }

    fn poke(&mut self) {
        if !self.m.enter(self.serial) {
            let mut work = Work(self.pending.clone(), &mut self._guard, true);
            self.m.sync(self.serial, &mut work).unwrap();
        }
        if !self
            .m
            .exit(self.serial, self.pending.load(Ordering::SeqCst))
        {
            let mut work = Work(self.pending.clone(), &mut self._guard, false);
            self.m.sync(self.serial, &mut work).unwrap();
        }
    }
}

fn machine() -> (Cpr, LightEpoch, Arc<Mutex<Vec<SystemState>>>) {
    let epoch = LightEpoch::with_capacity(16, 64).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let cpr = Cpr::new(
        epoch.clone(),
        1,
        Some(Box::new(move |s| s2.lock().unwrap().push(s))),
    );
    (cpr, epoch, seen)
}

#[test]
fn a_checkpoint_without_sessions_visits_every_phase_in_order() {
    let (cpr, _epoch, seen) = machine();
    let mut hooks = Hooks::default();
    let done = cpr
        .run(Action::Full, Duration::from_secs(10), &mut hooks)
        .unwrap();
    assert_eq!(done.version, 1);
    assert_eq!(cpr.state(), SystemState::rest(2));
    let phases: Vec<Phase> = seen.lock().unwrap().iter().map(|s| s.phase).collect();
    use Phase::*;
    assert_eq!(
        phases,
        [
            PrepIndexChkpt,
            IndexChkpt,
            Prepare,
            InProgress,
            WaitPending,
            WaitFlush,
            PersistenceCallback,
            Rest
        ]
    );
    assert_eq!(hooks.calls, ["start Full 1", "index 1", "log 1", "meta 1"]);
}

#[test]
fn an_idle_session_is_acknowledged_on_its_behalf() {
    let (cpr, epoch, _) = machine();
    let mut idle = Sim::new(&cpr, &epoch, 7);
    idle.op();
    idle.op();
    let mut hooks = Hooks::default();
    let done = cpr
        .run(Action::Full, Duration::from_secs(10), &mut hooks)
        .unwrap();
    assert_eq!(
        done.sessions,
        [SessionCut {
            id: 7,
            serial: 2,
            issued: 2
        }]
    );
    // Its next operation works in the new version.
    idle.op();
    assert_eq!(idle.log.last(), Some(&(3, 2)));
}

#[test]
fn busy_sessions_cut_their_own_prefix() {
    let (cpr, epoch, _) = machine();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for id in 1..=3 {
        let (cpr, epoch, stop) = (cpr.clone(), epoch.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut s = Sim::new(&cpr, &epoch, id);
            while !stop.load(Ordering::Relaxed) {
                s.op();
            }
            s.log
        }));
    }
    while cpr.members() < 3 {
        std::thread::yield_now();
    }
    let mut hooks = Hooks::default();
    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(
            cpr.run(Action::Full, Duration::from_secs(30), &mut hooks)
                .unwrap(),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let logs: Vec<Vec<(u64, u64)>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for done in &results {
        assert_eq!(done.sessions.len(), 3, "{done:?}");
        for cut in &done.sessions {
            let log = &logs[cut.id as usize - 1];
            for &(serial, version) in log {
                if serial <= cut.serial {
                    assert!(
                        version <= done.version,
                        "op {serial} <= cut {} ran in {version}",
                        cut.serial
                    );
                } else {
                    assert!(
                        version > done.version,
                        "op {serial} > cut {} ran in {version}",
                        cut.serial
                    );
                }
            }
        }
    }
    assert_eq!(cpr.state(), SystemState::rest(4));
}

#[test]
fn pending_work_times_out_in_wait_pending_and_the_next_checkpoint_succeeds() {
    let (cpr, epoch, _) = machine();
    let mut stuck = Sim::new(&cpr, &epoch, 5);
    stuck.op();
    stuck.pending.store(1, Ordering::SeqCst);
    stuck.poke(); // publishes one pending operation
    let cpr2 = cpr.clone();
    let driver = std::thread::spawn(move || {
        let mut hooks = Hooks::default();
        let r = cpr2.run(Action::Full, Duration::from_millis(300), &mut hooks);
        (r, hooks)
    });
    // The session keeps working (it acknowledges what it can) but never drains.
    while !driver.is_finished() {
        stuck.op();
        std::thread::yield_now();
    }
    let (r, hooks) = driver.join().unwrap();
    match r {
        Err(CprError::Timeout {
            phase,
            sessions,
            version,
            ..
        }) => {
            assert_eq!(phase, Phase::WaitPending);
            assert_eq!(sessions, [5]);
            assert_eq!(version, 1);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(hooks.calls.last().map(String::as_str), Some("abort 1"));
    assert_eq!(cpr.state(), SystemState::rest(2));
    stuck.op();
    assert_eq!(
        stuck.log.last().unwrap().1,
        2,
        "work continues in the next version"
    );
    // Once drained, the next checkpoint completes.
    stuck.pending.store(0, Ordering::SeqCst);
    stuck.poke();
    let mut hooks = Hooks::default();
    let done = cpr
        .run(Action::Full, Duration::from_secs(10), &mut hooks)
        .unwrap();
    assert_eq!(done.version, 2);
    assert_eq!(
        done.sessions,
        [SessionCut {
            id: 5,
            serial: stuck.serial,
            issued: stuck.serial
        }]
    );
}

#[test]
fn a_second_checkpoint_is_refused_while_one_runs() {
    let (cpr, epoch, _) = machine();
    let mut s = Sim::new(&cpr, &epoch, 1);
    s.op();
    s.pending.store(1, Ordering::SeqCst);
    s.poke();
    let cpr2 = cpr.clone();
    let driver = std::thread::spawn(move || {
        cpr2.run(Action::Full, Duration::from_secs(30), &mut Hooks::default())
    });
    while cpr.state().phase != Phase::WaitPending {
        s.poke();
        std::thread::yield_now();
    }
    match cpr.run(
        Action::LogOnly,
        Duration::from_secs(1),
        &mut Hooks::default(),
    ) {
        Err(CprError::CheckpointInProgress { phase, version }) => {
            assert_eq!((phase, version), (Phase::WaitPending, 1));
        }
        other => panic!("expected CheckpointInProgress, got {other:?}"),
    }
    s.pending.store(0, Ordering::SeqCst);
    s.poke();
    assert!(driver.join().unwrap().is_ok());
}

#[test]
fn a_failing_store_abandons_the_checkpoint() {
    let (cpr, epoch, _) = machine();
    let mut s = Sim::new(&cpr, &epoch, 1);
    s.op();
    let mut hooks = Hooks {
        fail_in: Some("log"),
        ..Hooks::default()
    };
    match cpr.run(Action::Full, Duration::from_secs(10), &mut hooks) {
        Err(CprError::Store {
            phase: Phase::WaitFlush,
            version: 1,
            ..
        }) => {}
        other => panic!("expected a store error, got {other:?}"),
    }
    assert_eq!(hooks.calls.last().map(String::as_str), Some("abort 1"));
    assert_eq!(cpr.state(), SystemState::rest(2));
    s.op();
    let done = cpr
        .run(Action::Full, Duration::from_secs(10), &mut Hooks::default())
        .unwrap();
    assert_eq!(done.version, 2);
}

#[test]
fn index_only_and_log_only_checkpoints() {
    let (cpr, epoch, seen) = machine();
    let mut s = Sim::new(&cpr, &epoch, 1);
    s.op();
    let mut hooks = Hooks::default();
    let done = cpr
        .run(Action::IndexOnly, Duration::from_secs(10), &mut hooks)
        .unwrap();
    assert!(done.sessions.is_empty());
    assert_eq!(hooks.calls, ["start IndexOnly 1", "index 1"]);
    s.op();
    let mut hooks = Hooks::default();
    let done = cpr
        .run(Action::LogOnly, Duration::from_secs(10), &mut hooks)
        .unwrap();
    assert_eq!(done.version, 2);
    assert_eq!(
        done.sessions,
        [SessionCut {
            id: 1,
            serial: 2,
            issued: 2
        }]
    );
    assert_eq!(hooks.calls, ["start LogOnly 2", "log 2", "meta 2"]);
    let phases: Vec<Phase> = seen.lock().unwrap().iter().map(|s| s.phase).collect();
    use Phase::*;
    assert_eq!(
        phases,
        [
            PrepIndexChkpt,
            IndexChkpt,
            Rest,
            Prepare,
            InProgress,
            WaitPending,
            WaitFlush,
            PersistenceCallback,
            Rest
        ]
    );
}

#[test]
fn a_session_that_leaves_before_its_cut_is_cut_at_its_last_serial() {
    let (cpr, epoch, _) = machine();
    let mut s = Sim::new(&cpr, &epoch, 9);
    s.op();
    s.op();
    s.pending.store(1, Ordering::SeqCst);
    s.poke();
    let cpr2 = cpr.clone();
    let driver = std::thread::spawn(move || {
        cpr2.run(
            Action::LogOnly,
            Duration::from_secs(30),
            &mut Hooks::default(),
        )
    });
    while cpr.state().phase != Phase::Prepare {
        std::thread::yield_now();
    }
    let Sim {
        _guard, m, serial, ..
    } = s;
    m.leave(serial);
    drop(_guard);
    let done = driver.join().unwrap().unwrap();
    assert_eq!(
        done.sessions,
        [SessionCut {
            id: 9,
            serial: 2,
            issued: 2
        }]
    );
}

/// The growth hooks of the tests: count the splits and aborts.
#[derive(Default)]
struct GrowCounts {
    splits: usize,
    aborts: usize,
}

impl faster_cpr::ActionHooks for GrowCounts {
    type Error = StoreFail;
    fn work(&mut self) -> Result<bool, StoreFail> {
        self.splits += 1;
        Ok(self.splits >= 2)
    }
    fn abort(&mut self) {
        self.aborts += 1;
    }
}

/// Growth and checkpoints share the state word: each refuses to start while the other runs;
/// a growth visits GROW_PREPARE and GROW_IN_PROGRESS and ends at rest in the next version;
/// an idle member does not hold it, and a member never caches a growth phase (every call of
/// it takes the slow path, where the store parks it away from the index).
#[test]
fn growth_and_checkpoints_exclude_each_other() {
    let (cpr, epoch, seen) = machine();
    let mut sim = Sim::new(&cpr, &epoch, 1);
    sim.op();
    let grow = cpr.begin::<StoreFail>(Action::Grow).unwrap();
    assert!(matches!(
        cpr.begin::<StoreFail>(Action::Full),
        Err(CprError::CheckpointInProgress {
            phase: Phase::GrowPrepare,
            ..
        })
    ));
    // The member acknowledges GROW_PREPARE (the last one to, it moves the state on to
    // GROW_IN_PROGRESS) but keeps taking the slow path.
    assert!(!sim.m.enter(sim.serial));
    let mut work = Work(sim.pending.clone(), &mut sim._guard, true);
    assert_eq!(
        sim.m.sync(sim.serial, &mut work).unwrap().phase,
        Phase::GrowInProgress
    );
    assert!(!sim.m.enter(sim.serial), "a growth phase is never cached");
    assert!(!sim.m.exit(sim.serial, 0));
    let mut hooks = GrowCounts::default();
    let v = cpr
        .finish_action(grow, Duration::from_secs(10), &mut hooks)
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!((hooks.splits, hooks.aborts), (2, 0));
    assert_eq!(cpr.state(), SystemState::rest(2));
    let phases: Vec<Phase> = seen.lock().unwrap().iter().map(|s| s.phase).collect();
    assert_eq!(
        phases,
        [Phase::GrowPrepare, Phase::GrowInProgress, Phase::Rest]
    );
    sim.op();
    assert!(sim.m.enter(sim.serial), "cached again at rest");
    sim.m.exit(sim.serial, 0);

    let ckpt = cpr.begin::<StoreFail>(Action::IndexOnly).unwrap();
    assert!(matches!(
        cpr.begin::<StoreFail>(Action::Grow),
        Err(CprError::CheckpointInProgress {
            phase: Phase::PrepIndexChkpt,
            ..
        })
    ));
    cpr.finish(ckpt, Duration::from_secs(10), &mut Hooks::default())
        .unwrap();
}

/// A member busy in one call holds GROW_PREPARE; past the timeout the growth is abandoned
/// (back to rest, the store's preparation dropped through `abort`), and the member goes on.
#[test]
fn a_busy_member_times_growth_out_in_grow_prepare() {
    let (cpr, epoch, _) = machine();
    let mut sim = Sim::new(&cpr, &epoch, 1);
    sim.op();
    // A call that never ends.
    assert!(sim.m.enter(sim.serial));
    let grow = cpr.begin::<StoreFail>(Action::Grow).unwrap();
    let mut hooks = GrowCounts::default();
    let r = cpr.finish_action(grow, Duration::from_millis(50), &mut hooks);
    assert!(
        matches!(r, Err(CprError::Timeout { phase: Phase::GrowPrepare, ref sessions, .. }) if sessions == &[1]),
        "{r:?}"
    );
    assert_eq!((hooks.splits, hooks.aborts), (0, 1));
    assert_eq!(cpr.state(), SystemState::rest(2));
    sim.m.exit(sim.serial, 0);
    sim.op();
}

/// A shift waits in SHIFT_PREPARE for a member with pending operations (their records may
/// lie below the new begin address): neither the member's own call nor the driver acting
/// for it while it is idle acknowledges, so the shift times out and is abandoned. Once the
/// pending operations are done, the member's next call acknowledges and the shift runs.
#[test]
fn a_member_with_pending_operations_holds_shift_prepare() {
    let (cpr, epoch, seen) = machine();
    let mut sim = Sim::new(&cpr, &epoch, 1);
    sim.op();
    sim.pending.store(1, Ordering::SeqCst);
    let shift = cpr.begin::<StoreFail>(Action::Shift).unwrap();
    sim.poke();
    assert_eq!(cpr.state().phase, Phase::ShiftPrepare);
    let mut hooks = GrowCounts::default();
    let r = cpr.finish_action(shift, Duration::from_millis(50), &mut hooks);
    assert!(
        matches!(r, Err(CprError::Timeout { phase: Phase::ShiftPrepare, ref sessions, .. }) if sessions == &[1]),
        "{r:?}"
    );
    assert_eq!((hooks.splits, hooks.aborts), (0, 1));
    assert_eq!(cpr.state().phase, Phase::Rest);

    sim.pending.store(0, Ordering::SeqCst);
    seen.lock().unwrap().clear();
    let shift = cpr.begin::<StoreFail>(Action::Shift).unwrap();
    sim.poke();
    assert_eq!(cpr.state().phase, Phase::ShiftInProgress);
    let mut hooks = GrowCounts::default();
    cpr.finish_action(shift, Duration::from_secs(10), &mut hooks)
        .unwrap();
    assert_eq!((hooks.splits, hooks.aborts), (2, 0));
    let phases: Vec<Phase> = seen.lock().unwrap().iter().map(|s| s.phase).collect();
    assert_eq!(
        phases,
        [Phase::ShiftPrepare, Phase::ShiftInProgress, Phase::Rest]
    );
    sim.op();
}
