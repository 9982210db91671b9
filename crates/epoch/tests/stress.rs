//! Multi-thread stress tests with std threads: the same three properties the
//! loom models check, at scale.
#![cfg(not(loom))]

use faster_epoch::{EpochError, LightEpoch};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

const LIVE: u8 = 1;
const RETIRED: u8 = 2;

/// (a) No action runs before every protected slot has passed its epoch.
///
/// A writer publishes object after object and retires the previous one with
/// a bump action that marks it reclaimed; readers protect, pick up the current
/// object and check, while still protected, that it was not reclaimed. An
/// early action shows up as a reclaimed object under a guard.
#[test]
fn stress_no_action_runs_early() {
    const OBJECTS: usize = 200_000;
    const READERS: usize = 3;
    const READER_ROUNDS: usize = 2_000;
    let epoch = LightEpoch::with_capacity(READERS + 1, 16).unwrap();
    let state: Arc<Vec<AtomicU8>> = Arc::new((0..OBJECTS).map(|_| AtomicU8::new(0)).collect());
    let current = Arc::new(AtomicUsize::new(0));
    let readers_done = Arc::new(AtomicUsize::new(0));
    state[0].store(LIVE, Ordering::SeqCst);

    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let (epoch, state, current, readers_done) = (
                epoch.clone(),
                state.clone(),
                current.clone(),
                readers_done.clone(),
            );
            thread::spawn(move || {
                let mut p = epoch.register().unwrap();
                let mut checks = 0u64;
                for _ in 0..READER_ROUNDS {
                    let mut guard = p.protect();
                    for _ in 0..64 {
                        let obj = current.load(Ordering::SeqCst);
                        for _ in 0..4 {
                            assert_eq!(
                                state[obj].load(Ordering::SeqCst),
                                LIVE,
                                "reader {i}: object {obj} reclaimed under a guard"
                            );
                            checks += 1;
                        }
                        if obj % 7 == i {
                            guard.refresh();
                        }
                    }
                    drop(guard);
                }
                readers_done.fetch_add(1, Ordering::SeqCst);
                checks
            })
        })
        .collect();

    let mut writer = epoch.register().unwrap();
    let mut guard = writer.protect();
    let mut published = 1;
    // Publish until every reader is done (or the objects run out).
    for next in 1..OBJECTS {
        if readers_done.load(Ordering::SeqCst) == READERS {
            break;
        }
        published += 1;
        state[next].store(LIVE, Ordering::SeqCst);
        let old = current.swap(next, Ordering::SeqCst);
        let state = state.clone();
        guard.bump_epoch(move || state[old].store(RETIRED, Ordering::SeqCst));
        if next % 16 == 0 {
            guard.refresh();
        }
    }
    drop(guard);
    let checks: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(checks, (READERS * READER_ROUNDS * 64 * 4) as u64);
    assert!(
        published > 1,
        "the writer retired objects while readers ran"
    );
    epoch.drain();
    let retired = state
        .iter()
        .filter(|s| s.load(Ordering::SeqCst) == RETIRED)
        .count();
    assert_eq!(
        retired,
        published - 1,
        "every retired object is reclaimed once all leave"
    );
}

/// (b) No action is lost or run twice under concurrent bumps, with a small
/// drain list so that bumpers constantly find it full and help.
#[test]
fn stress_concurrent_bumps_run_each_action_exactly_once() {
    const BUMPERS: usize = 4;
    const PER_BUMPER: usize = 5_000;
    let epoch = LightEpoch::with_capacity(BUMPERS + 2, 4).unwrap();
    let runs: Arc<Vec<AtomicU8>> = Arc::new(
        (0..BUMPERS * PER_BUMPER)
            .map(|_| AtomicU8::new(0))
            .collect(),
    );
    let done = Arc::new(AtomicBool::new(false));

    // A protected participant that refreshes only now and then holds
    // epochs back, so the list fills up.
    let holder = {
        let (epoch, done) = (epoch.clone(), done.clone());
        thread::spawn(move || {
            let mut p = epoch.register().unwrap();
            let mut guard = p.protect();
            let mut spins = 0u64;
            while !done.load(Ordering::SeqCst) {
                spins += 1;
                if spins % 64 == 0 {
                    guard.refresh();
                }
                std::hint::spin_loop();
            }
        })
    };
    let bumpers: Vec<_> = (0..BUMPERS)
        .map(|b| {
            let (epoch, runs) = (epoch.clone(), runs.clone());
            thread::spawn(move || {
                // Half the bumpers are protected participants themselves.
                let mut p = epoch.register().unwrap();
                let mut guard = (b % 2 == 0).then(|| p.protect());
                for k in 0..PER_BUMPER {
                    let id = b * PER_BUMPER + k;
                    let runs = runs.clone();
                    let action = move || {
                        runs[id].fetch_add(1, Ordering::SeqCst);
                    };
                    match guard.as_mut() {
                        Some(g) => {
                            g.bump_epoch(action);
                        }
                        None => {
                            epoch.bump_epoch(action);
                        }
                    }
                }
            })
        })
        .collect();
    for b in bumpers {
        b.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    holder.join().unwrap();
    epoch.drain();
    assert_eq!(epoch.pending_actions(), 0);
    for (id, r) in runs.iter().enumerate() {
        assert_eq!(r.load(Ordering::SeqCst), 1, "action {id}");
    }
}

/// (c) Exactly one participant observes "last to finish phase", round after
/// round; idle (unprotected) participants never block a phase, and when a
/// protected participant leaves without finishing, a driver closes the phase.
#[test]
fn stress_exactly_one_last_per_phase() {
    const THREADS: usize = 4;
    const ROUNDS: u64 = 500;
    let epoch = LightEpoch::with_capacity(THREADS, 1).unwrap();
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let lasts: Arc<Vec<AtomicUsize>> =
        Arc::new((0..=ROUNDS).map(|_| AtomicUsize::new(0)).collect());

    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let (epoch, barrier, lasts) = (epoch.clone(), barrier.clone(), lasts.clone());
            thread::spawn(move || {
                let mut p = epoch.register().unwrap();
                for round in 1..=ROUNDS {
                    barrier.wait();
                    // In some rounds this participant is idle, in some it
                    // leaves half-way without finishing the phase.
                    match (round as usize + i) % 5 {
                        0 => {}
                        1 => drop(p.protect()),
                        _ => {
                            let mut g = p.protect();
                            g.refresh();
                            if g.finish_phase(round) {
                                lasts[round as usize].fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                    barrier.wait();
                }
            })
        })
        .collect();
    for round in 1..=ROUNDS {
        barrier.wait();
        barrier.wait();
        // Everyone is unprotected now; the driver closes a phase that a
        // leaver held open, and must not win one that was already closed.
        if epoch.try_complete_phase(round) {
            lasts[round as usize].fetch_add(1, Ordering::SeqCst);
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    for round in 1..=ROUNDS {
        assert_eq!(
            lasts[round as usize].load(Ordering::SeqCst),
            1,
            "round {round}"
        );
    }
    assert_eq!(epoch.completed_phase(), ROUNDS);
}

/// When every participant that is protected finishes, one of them (not the
/// driver) is the last: phases do not depend on a driver to close.
#[test]
fn stress_protected_finishers_close_their_phase() {
    const THREADS: usize = 3;
    const ROUNDS: u64 = 500;
    let epoch = LightEpoch::with_capacity(THREADS, 1).unwrap();
    let start = Arc::new(Barrier::new(THREADS));
    let winners = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (epoch, start, winners) = (epoch.clone(), start.clone(), winners.clone());
            thread::spawn(move || {
                let mut g = epoch.register().unwrap().into_guard();
                start.wait();
                for round in 1..=ROUNDS {
                    if g.finish_phase(round) {
                        winners.fetch_add(1, Ordering::SeqCst);
                    }
                    // Wait until someone closed this round before the next.
                    while epoch.completed_phase() < round {
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(winners.load(Ordering::SeqCst), ROUNDS as usize);
}

#[test]
fn register_beyond_capacity_is_a_typed_error() {
    let epoch = LightEpoch::with_capacity(2, 1).unwrap();
    let a = epoch.register().unwrap();
    let _b = epoch.register().unwrap();
    assert_eq!(
        epoch.register().unwrap_err(),
        EpochError::TableFull { capacity: 2 }
    );
    drop(a);
    assert!(
        epoch.register().is_ok(),
        "a dropped participant frees its slot"
    );
    assert!(matches!(
        LightEpoch::with_capacity(0, 1),
        Err(EpochError::InvalidConfig(_))
    ));
}
