//! Two threads request checkpoints at the same time, in a loop, while sessions write: one
//! index-only, one full (defect 1 of the hardening issue). Every request either is refused
//! at once with `CheckpointInProgress` or completes its own checkpoint: each `Ok` has its
//! `meta` file on disk, a full one lists every session, and recovery afterwards restores
//! the exact CPR prefix of every session.

#[path = "recovery_common.rs"]
mod common;

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use common::{Load, config, step, tempdir, verify};
use faster::recovery::{CheckpointToken, StoreLayout};
use faster::{CheckpointInfo, CheckpointOptions, Error, FasterKv};

/// How long the two requesters race.
const RACE: Duration = Duration::from_secs(10);
const WRITERS: usize = 2;
/// Operations per writer, spread over the race (recovery reads them all back at the end).
const OPS: u64 = 30_000;

/// A writer: a session that issues the workload's next operation whenever it is behind its
/// share of [`OPS`] for the time elapsed of the race, and lives until the race is over (a
/// session that ended has no cut). Returns its id and last serial.
fn writer(store: &FasterKv, load: &Load, start: Instant) -> (faster::SessionId, u64) {
    let mut s = store.start_session();
    load.started.fetch_add(1, Ordering::SeqCst);
    while !load.stop.load(Ordering::Relaxed) {
        let due = (OPS as f64 * start.elapsed().as_secs_f64() / RACE.as_secs_f64()) as u64;
        if s.serial() < due.min(OPS) {
            step(&mut s);
        } else {
            // Pacing only: the writer is idle meanwhile (checkpoints act for it).
            thread::sleep(Duration::from_millis(1));
        }
    }
    (s.id(), s.serial())
}

/// Requests checkpoints with `options` until `deadline`; returns the completed ones and
/// how many were refused.
fn request_until(
    store: &FasterKv,
    options: CheckpointOptions,
    deadline: Instant,
) -> (Vec<CheckpointInfo>, u64) {
    let (mut done, mut refused) = (Vec::new(), 0);
    while Instant::now() < deadline {
        match store.checkpoint_with(options) {
            Ok(handle) => match handle.wait() {
                Ok(info) => done.push(info),
                Err(e) => panic!("a {options:?} checkpoint failed: {e}"),
            },
            Err(Error::CheckpointInProgress { .. }) => {
                refused += 1;
                thread::yield_now();
            }
            Err(e) => panic!("a {options:?} request failed: {e}"),
        }
    }
    (done, refused)
}

#[test]
fn racing_index_only_and_full_requests_each_complete_their_own_checkpoint() {
    let dir = tempdir();
    // Every acknowledged checkpoint is read back below: keep them all.
    let store = FasterKv::open(config(dir.path()).with_checkpoints_kept(usize::MAX)).unwrap();
    let layout = StoreLayout::new(dir.path());
    let load = Load::default();
    let start = Instant::now();
    let (fulls, index_onlys, issued) = thread::scope(|scope| {
        let workers: Vec<_> = (0..WRITERS)
            .map(|_| scope.spawn(|| writer(&store, &load, start)))
            .collect();
        while load.started.load(Ordering::SeqCst) < WRITERS {
            thread::yield_now();
        }
        let deadline = start + RACE;
        let store_ref = &store;
        let index_only = scope
            .spawn(move || request_until(store_ref, CheckpointOptions::index_only(), deadline));
        let full = request_until(&store, CheckpointOptions::full(), deadline);
        let index_only = index_only.join().unwrap();
        load.stop.store(true, Ordering::Relaxed);
        let issued: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (full, index_only, issued)
    });
    let (fulls, refused_full) = fulls;
    let (index_onlys, refused_index) = index_onlys;
    eprintln!(
        "{} full and {} index-only checkpoints; {refused_full} and {refused_index} refused",
        fulls.len(),
        index_onlys.len()
    );
    assert!(!fulls.is_empty(), "no full checkpoint completed");
    for info in fulls.iter().chain(&index_onlys) {
        let token = CheckpointToken::parse(&info.token).unwrap();
        let meta = layout
            .read_meta(&token)
            .unwrap_or_else(|e| panic!("checkpoint {} acknowledged: {e}", info.token));
        assert_eq!(meta.version, info.version);
    }
    let mut versions: Vec<u64> = fulls
        .iter()
        .chain(&index_onlys)
        .map(|i| i.version)
        .collect();
    versions.sort_unstable();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "two acknowledged checkpoints share a version: {versions:?}"
    );
    for info in &fulls {
        for (id, _) in &issued {
            assert!(
                info.sessions.iter().any(|(s, _)| s == id),
                "full checkpoint {} has no cut for session {id}: {:?}",
                info.token,
                info.sessions
            );
        }
    }
    drop(store);
    let last = fulls.iter().max_by_key(|i| i.version).unwrap();
    let (store, rec) = FasterKv::recover(config(dir.path())).unwrap();
    assert_eq!(rec.token, last.token);
    verify(&store, &rec.sessions, &issued);
}
