//! Single-threaded and small two-thread behaviour of the public API.
#![cfg(not(loom))]

use faster_epoch::LightEpoch;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

fn counter() -> (Arc<AtomicUsize>, impl Fn() -> usize) {
    let c = Arc::new(AtomicUsize::new(0));
    let r = c.clone();
    (c, move || r.load(Ordering::SeqCst))
}

#[test]
fn action_runs_at_once_when_nobody_is_protected() {
    let epoch = LightEpoch::new();
    let (c, runs) = counter();
    let before = epoch.current_epoch();
    let after = epoch.bump_epoch(move || {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(after, before + 1);
    assert_eq!(runs(), 1);
    assert_eq!(epoch.safe_to_reclaim_epoch(), after - 1);
}

#[test]
fn protected_participant_holds_action_until_it_refreshes() {
    let epoch = LightEpoch::new();
    let mut p = epoch.register().unwrap();
    let mut guard = p.protect();
    let protected_at = guard.epoch();
    let (c, runs) = counter();
    epoch.bump_epoch(move || {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(runs(), 0);
    assert_eq!(epoch.safe_to_reclaim_epoch(), protected_at - 1);
    assert!(!epoch.is_safe_to_reclaim(protected_at));
    epoch.drain();
    assert_eq!(runs(), 0, "draining does not run an unsafe action");
    let now = guard.refresh();
    assert!(now > protected_at);
    assert_eq!(runs(), 1, "refresh drains what became safe");
    assert!(epoch.is_safe_to_reclaim(protected_at));
}

#[test]
fn unprotect_runs_actions_it_held_back() {
    let epoch = LightEpoch::new();
    let mut p = epoch.register().unwrap();
    let guard = p.protect();
    let (c, runs) = counter();
    epoch.bump_epoch(move || {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(runs(), 0);
    let p = guard.unprotect();
    assert_eq!(runs(), 1);
    assert_eq!(p.slot_index(), 0);
}

#[test]
fn protected_bumper_with_full_list_does_not_wait_on_itself() {
    let epoch = LightEpoch::with_capacity(1, 1).unwrap();
    let mut g = epoch.register().unwrap().into_guard();
    let (c, runs) = counter();
    for _ in 0..100 {
        let c = c.clone();
        g.bump_epoch(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
    }
    // The last action may still wait for this guard.
    assert!(runs() >= 99);
    drop(g);
    assert_eq!(runs(), 100);
}

#[test]
fn full_list_makes_bumper_wait_for_the_slow_participant() {
    let epoch = LightEpoch::with_capacity(2, 1).unwrap();
    let mut slow = epoch.register().unwrap();
    let mut guard = slow.protect();
    let (c, runs) = counter();
    let c1 = c.clone();
    epoch.bump_epoch(move || {
        c1.fetch_add(1, Ordering::SeqCst);
    }); // fills the only cell
    let returned = Arc::new(AtomicBool::new(false));
    let bumper = {
        let (epoch, returned, c) = (epoch.clone(), returned.clone(), c.clone());
        thread::spawn(move || {
            epoch.bump_epoch(move || {
                c.fetch_add(1, Ordering::SeqCst);
            });
            returned.store(true, Ordering::SeqCst);
        })
    };
    // The bumper cannot install while the slow participant holds the first
    // action back. (Checked for a while; this cannot fail spuriously.)
    for _ in 0..10_000 {
        assert!(!returned.load(Ordering::SeqCst));
        assert_eq!(runs(), 0);
        thread::yield_now();
    }
    guard.refresh();
    bumper.join().unwrap();
    assert!(returned.load(Ordering::SeqCst));
    assert!(runs() >= 1);
    drop(guard);
    assert_eq!(runs(), 2);
}

#[test]
fn dropping_a_participant_with_a_leaked_guard_unprotects_it() {
    let epoch = LightEpoch::new();
    let (c, runs) = counter();
    let mut p = epoch.register().unwrap();
    let g = p.protect();
    let c2 = c.clone();
    epoch.bump_epoch(move || {
        c2.fetch_add(1, Ordering::SeqCst);
    });
    std::mem::forget(g);
    assert_eq!(runs(), 0, "the leaked guard still protects");
    drop(p);
    assert_eq!(runs(), 1);
    assert_eq!(epoch.registered(), 0);
}

#[test]
fn observers_never_hold_a_phase_open() {
    let epoch = faster_epoch::LightEpoch::with_capacity(4, 8).unwrap();
    let observer = epoch.register_observer().unwrap();
    let _g = observer.into_guard();
    let member = epoch.register().unwrap();
    let mut g = member.into_guard();
    assert!(g.finish_phase(7), "the observer must not hold phase 7 open");
}

#[test]
fn finishing_a_phase_on_behalf_of_a_participant() {
    let epoch = faster_epoch::LightEpoch::with_capacity(4, 8).unwrap();
    let a = epoch.register().unwrap();
    let b = epoch.register().unwrap();
    let b_slot = b.slot_index();
    let mut ga = a.into_guard();
    let _gb = b.into_guard();
    assert!(!ga.finish_phase(9), "b has not finished phase 9");
    assert!(
        epoch.finish_phase_for(b_slot, 9),
        "marking b completes the phase"
    );
    assert_eq!(epoch.completed_phase(), 9);
    assert!(
        !epoch.finish_phase_for(99, 10),
        "an out-of-range slot is ignored"
    );
}
