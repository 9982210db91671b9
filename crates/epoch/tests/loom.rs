//! Loom models of the real `faster-epoch` code (run with `--cfg loom`).
//!
//! `cargo xtask ci` runs them in release mode with `LOOM_MAX_PREEMPTIONS=2`;
//! each model finishes in seconds there (the whole file in well under a
//! minute on a 2-core machine).
#![cfg(loom)]

use faster_epoch::LightEpoch;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

/// Memory a writer retires and a reader may still be reading.
struct Retired {
    published: AtomicBool,
    value: UnsafeCell<u64>,
}

// SAFETY: `value` is only touched through loom's checked accessors; loom
// reports any unsynchronised access as a causality violation.
unsafe impl Sync for Retired {}

/// (a) No action runs before every protected slot has passed its epoch.
///
/// The writer unpublishes the value and retires it with a bump action that
/// overwrites it; the reader protects (racing with the bump) and reads the
/// value if it still sees it published. Loom flags the overwrite as a data
/// race if the action could run while the reader is inside its guard.
#[test]
fn loom_no_action_before_protected_slots_pass() {
    loom::model(|| {
        let epoch = LightEpoch::with_capacity(2, 2).unwrap();
        let shared = Arc::new(Retired {
            published: AtomicBool::new(true),
            value: UnsafeCell::new(7),
        });

        let reader = {
            let epoch = epoch.clone();
            let shared = shared.clone();
            thread::spawn(move || {
                let mut p = epoch.register().unwrap();
                let guard = p.protect();
                if shared.published.load(Ordering::SeqCst) {
                    // SAFETY: read through loom's checked cell.
                    let v = shared.value.with(|v| unsafe { *v });
                    assert_eq!(v, 7, "a retired value was overwritten under a guard");
                }
                drop(guard);
            })
        };

        shared.published.store(false, Ordering::SeqCst);
        let s = shared.clone();
        epoch.bump_epoch(move || {
            // SAFETY: written through loom's checked cell.
            s.value.with_mut(|v| unsafe { *v = 0 });
        });
        reader.join().unwrap();
        epoch.drain();
        assert_eq!(epoch.pending_actions(), 0);
    });
}

/// (a'') The epoch-level form of (a): a participant that protects while an
/// action of epoch `e` runs is never protected at `e` or below. (Without the
/// re-validation loop in `protect`, a slot could publish a stale epoch that a
/// concurrent scan had already declared safe.)
#[test]
fn loom_protect_never_lands_on_a_safe_epoch() {
    loom::model(|| {
        let epoch = LightEpoch::with_capacity(2, 2).unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let reader = {
            let epoch = epoch.clone();
            let ran = ran.clone();
            thread::spawn(move || {
                let mut p = epoch.register().unwrap();
                let guard = p.protect();
                if ran.load(Ordering::SeqCst) {
                    assert!(guard.epoch() > 1, "protected at an epoch whose action ran");
                }
            })
        };
        let r = ran.clone();
        let new = epoch.bump_epoch(move || r.store(true, Ordering::SeqCst));
        assert_eq!(new, 2);
        reader.join().unwrap();
        epoch.drain();
        assert!(ran.load(Ordering::SeqCst));
    });
}

/// (a') The same with a reader that was protected before the bump and
/// refreshes: after its refresh it may no longer see the retired value, and
/// before it the action must wait.
#[test]
fn loom_refresh_releases_old_epoch_only() {
    loom::model(|| {
        let epoch = LightEpoch::with_capacity(2, 2).unwrap();
        let shared = Arc::new(Retired {
            published: AtomicBool::new(true),
            value: UnsafeCell::new(7),
        });
        let mut p = epoch.register().unwrap();
        let mut guard = p.protect();

        let writer = {
            let epoch = epoch.clone();
            let shared = shared.clone();
            thread::spawn(move || {
                shared.published.store(false, Ordering::SeqCst);
                let s = shared.clone();
                epoch.bump_epoch(move || {
                    // SAFETY: written through loom's checked cell.
                    s.value.with_mut(|v| unsafe { *v = 0 });
                });
            })
        };

        guard.refresh();
        if shared.published.load(Ordering::SeqCst) {
            // SAFETY: read through loom's checked cell.
            let v = shared.value.with(|v| unsafe { *v });
            assert_eq!(v, 7, "a retired value was overwritten under a guard");
        }
        drop(guard);
        writer.join().unwrap();
        epoch.drain();
        assert_eq!(epoch.pending_actions(), 0);
    });
}

/// (b) No action is lost or run twice under concurrent bumps, with a drain
/// list of one cell so that bumpers must help each other drain, and a
/// protected participant holding epochs back until it refreshes.
#[test]
fn loom_concurrent_bumps_run_each_action_once() {
    loom::model(|| {
        let epoch = LightEpoch::with_capacity(3, 1).unwrap();
        let runs: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let mut holder = epoch.register().unwrap();
        let mut guard = holder.protect();

        let bumpers: Vec<_> = (0..2)
            .map(|i| {
                let epoch = epoch.clone();
                let runs = runs.clone();
                thread::spawn(move || {
                    epoch.bump_epoch(move || {
                        runs[i].fetch_add(1, Ordering::SeqCst);
                    });
                })
            })
            .collect();

        // The holder refreshes once and then leaves, so a bumper waiting on
        // the full list can always make progress.
        guard.refresh();
        drop(guard);
        for b in bumpers {
            b.join().unwrap();
        }
        // Nobody is protected any more: the unprotect above, or the bumpers'
        // own drains, ran both actions.
        assert_eq!(epoch.pending_actions(), 0, "an action was left behind");
        for r in runs.iter() {
            assert_eq!(r.load(Ordering::SeqCst), 1, "an action ran twice");
        }
    });
}

/// (b') Actions still pending when the last handle drops run exactly once.
#[test]
fn loom_pending_actions_run_on_drop() {
    loom::model(|| {
        let epoch = LightEpoch::with_capacity(2, 2).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut p = epoch.register().unwrap();
        let guard = p.protect();
        let t = {
            let epoch = epoch.clone();
            let runs = runs.clone();
            thread::spawn(move || {
                epoch.bump_epoch(move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                });
            })
        };
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 0, "ran under a guard");
        drop(guard);
        drop(p);
        drop(epoch);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "lost or doubled");
    });
}

/// (c) Exactly one participant observes "last to finish phase": three
/// participants, all protected before any of them finishes, finish
/// concurrently (two threads and the main thread).
#[test]
fn loom_exactly_one_last_finisher() {
    loom::model(|| {
        let epoch = LightEpoch::with_capacity(3, 1).unwrap();
        let lasts = Arc::new(AtomicUsize::new(0));
        let mut guards: Vec<_> = (0..3)
            .map(|_| epoch.register().unwrap().into_guard())
            .collect();
        let mut mine = guards.pop().unwrap();
        let threads: Vec<_> = guards
            .into_iter()
            .map(|mut g| {
                let lasts = lasts.clone();
                thread::spawn(move || {
                    if g.finish_phase(1) {
                        lasts.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        if mine.finish_phase(1) {
            lasts.fetch_add(1, Ordering::SeqCst);
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(lasts.load(Ordering::SeqCst), 1);
    });
}

/// (c'') Participants that protect while others finish: whoever protects
/// late must acknowledge too, and still exactly one is last.
#[test]
fn loom_late_protector_still_one_last() {
    loom::model(|| {
        let epoch = LightEpoch::with_capacity(2, 1).unwrap();
        let lasts = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let p = epoch.register().unwrap();
                let lasts = lasts.clone();
                thread::spawn(move || {
                    let mut g = p.into_guard();
                    if g.finish_phase(1) {
                        lasts.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(lasts.load(Ordering::SeqCst), 1);
    });
}

/// (c') An idle participant does not block a phase, and when a protected one
/// leaves without finishing, a driver's `try_complete_phase` closes the phase:
/// still exactly one "last" in all.
#[test]
fn loom_idle_participant_does_not_block_phase() {
    loom::model(|| {
        let epoch = LightEpoch::with_capacity(3, 1).unwrap();
        let lasts = Arc::new(AtomicUsize::new(0));
        let _idle = epoch.register().unwrap(); // registered, never protected
        let mut worker = epoch.register().unwrap();
        let leaver = epoch.register().unwrap();
        let leaver_guard = leaver.into_guard();

        let t1 = {
            let lasts = lasts.clone();
            thread::spawn(move || {
                let mut g = worker.protect();
                if g.finish_phase(1) {
                    lasts.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let t2 = thread::spawn(move || {
            // Leaves the phase without acknowledging it.
            drop(leaver_guard.unprotect());
        });
        t1.join().unwrap();
        t2.join().unwrap();
        if epoch.try_complete_phase(1) {
            lasts.fetch_add(1, Ordering::SeqCst);
        }
        assert_eq!(lasts.load(Ordering::SeqCst), 1);
    });
}
