//! Checkpoints under concurrent load, then recovery: the CPR prefix is exact per session
//! (see `recovery_common.rs` for the workload and what is checked).

#[path = "recovery_common.rs"]
mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::{
    Load, config, copy_dir, step, tempdir, verify, verify_session, worker, worker_batched,
};
use faster::{CheckpointInfo, CheckpointOptions, Error, FasterKv, LogCapture, SessionId};

/// Runs `threads` workers (each issuing batches of `batch` operations if it is not 1); once
/// they did `before` operations in all, takes the checkpoints
/// `options` one after another (each after `between` more operations); stops the workers
/// `after` operations later. Returns the checkpoints and each worker's last serial.
fn run_load(
    store: &FasterKv,
    threads: usize,
    options: &[CheckpointOptions],
    (before, between, after): (u64, u64, u64),
    max_ops: u64,
) -> (Vec<CheckpointInfo>, Vec<(SessionId, u64)>) {
    run_load_batched(
        store,
        threads,
        options,
        (before, between, after),
        max_ops,
        1,
    )
}

/// [`run_load`] with workers that issue mixed batches of `batch` operations.
fn run_load_batched(
    store: &FasterKv,
    threads: usize,
    options: &[CheckpointOptions],
    (before, between, after): (u64, u64, u64),
    max_ops: u64,
    batch: u64,
) -> (Vec<CheckpointInfo>, Vec<(SessionId, u64)>) {
    let load = Load::default();
    let progress = &load.progress;
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    if batch == 1 {
                        worker(store, &load, 64, max_ops)
                    } else {
                        worker_batched(store, &load, (64, max_ops), batch)
                    }
                })
            })
            .collect();
        // Workers stop at `max_ops` on their own (or fail): never wait for more than that,
        // nor for a worker that has finished.
        let wait_for = |n: u64| {
            let n = n.min(threads as u64 * max_ops);
            while progress.load(Ordering::Relaxed) < n && !workers.iter().all(|w| w.is_finished()) {
                thread::sleep(Duration::from_millis(1));
            }
        };
        // Every session joins before the first checkpoint, so every one has a cut.
        while load.started.load(Ordering::SeqCst) < threads {
            thread::yield_now();
        }
        wait_for(before);
        let mut infos = Vec::new();
        for (i, o) in options.iter().enumerate() {
            if i > 0 {
                let now = progress.load(Ordering::Relaxed);
                wait_for(now + between);
            }
            infos.push(store.checkpoint_with(*o).unwrap().wait().unwrap());
        }
        let now = progress.load(Ordering::Relaxed);
        wait_for(now + after);
        load.stop.store(true, Ordering::Relaxed);
        let issued = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (infos, issued)
    })
}

fn check_cuts(info: &CheckpointInfo, issued: &[(SessionId, u64)]) {
    for (id, _) in issued {
        assert!(
            info.sessions.iter().any(|(s, _)| s == id),
            "session {id} missing from the checkpoint's cuts {:?}",
            info.sessions
        );
    }
}

/// Ten sessions of upserts and RMW counters while the main thread checkpoints; recovery
/// restores exactly each session's prefix.
#[test]
fn checkpoint_under_ten_writers_recovers_the_exact_prefix_per_session() {
    let dir = tempdir();
    let store = FasterKv::open(config(dir.path())).unwrap();
    let (infos, issued) = run_load(
        &store,
        10,
        &[CheckpointOptions::full()],
        (5_000, 0, 5_000),
        1_000_000,
    );
    drop(store);
    let info = &infos[0];
    check_cuts(info, &issued);
    let (store, rec) = FasterKv::recover(config(dir.path())).unwrap();
    assert_eq!(rec.token, info.token);
    assert_eq!(rec.version, info.version);
    assert_eq!(store.version(), info.version + 1);
    let mut want = info.sessions.clone();
    let mut got = rec.sessions.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "recovered cuts are the checkpoint's");
    verify(&store, &rec.sessions, &issued);
}

/// Recovers each checkpoint of `infos` (in a copy of `dir`) and verifies it against its own
/// cuts; `issued` is each worker's last serial.
fn recover_each_exactly(dir: &Path, infos: &[CheckpointInfo], issued: &[(SessionId, u64)]) {
    for info in infos {
        check_cuts(info, issued);
        let copy = tempdir();
        copy_dir(dir, copy.path());
        let (store, rec) = FasterKv::recover_from(config(copy.path()), &info.token).unwrap();
        assert_eq!(rec.version, info.version);
        verify(&store, &rec.sessions, issued);
    }
}

/// Four sessions issuing the workload in mixed batches (upserts and RMWs,
/// 100 operations each: windows of the batch pipeline hold a session busy, and cuts fall
/// inside batches) while three checkpoints are taken; each recovers exactly each session's
/// prefix.
#[test]
fn checkpoints_under_batched_writers_recover_the_exact_prefix_per_session() {
    let dir = tempdir();
    // All three are recovered: keep them (the default keeps the newest two).
    let store = FasterKv::open(config(dir.path()).with_checkpoints_kept(3)).unwrap();
    let full = CheckpointOptions::full();
    let (infos, issued) = run_load_batched(
        &store,
        4,
        &[full, full, full],
        (4_000, 4_000, 2_000),
        1_000_000,
        100,
    );
    drop(store);
    recover_each_exactly(dir.path(), &infos, &issued);
}

/// Three checkpoints under continuous load; each is recovered (in a copy of the directory)
/// and verified against its own cuts.
#[test]
fn three_checkpoints_under_load_each_recover_exactly() {
    let dir = tempdir();
    // All three are recovered: keep them (the default keeps the newest two).
    let store = FasterKv::open(config(dir.path()).with_checkpoints_kept(3)).unwrap();
    let full = CheckpointOptions::full();
    let (infos, issued) = run_load(
        &store,
        4,
        &[full, full, full],
        (2_000, 2_000, 1_000),
        1_000_000,
    );
    drop(store);
    recover_each_exactly(dir.path(), &infos, &issued);
}

/// Readers of fixed keys stay correct while a checkpoint runs under a writer; the fixed keys
/// recover too.
#[test]
fn reads_stay_correct_during_a_checkpoint() {
    let dir = tempdir();
    let store = FasterKv::open(config(dir.path())).unwrap();
    let fixed = |k: u64| format!("fixed-{k}").into_bytes();
    {
        let mut s = store.start_session();
        for k in 0..5_000u64 {
            s.upsert(&fixed(k), &common::value(k)).unwrap();
        }
    }
    let load = Load::default();
    let stop = &load.stop;
    let reads = AtomicU64::new(0);
    let (info, issued) = thread::scope(|scope| {
        let writer = scope.spawn(|| worker(&store, &load, 64, 20_000));
        let readers: Vec<_> = (0..6u64)
            .map(|r| {
                let (store, reads) = (&store, &reads);
                scope.spawn(move || {
                    let mut s = store.start_session();
                    let mut rng = faster_tests::Rng::new(r);
                    while !stop.load(Ordering::Relaxed) {
                        let k = rng.below(5_000);
                        assert_eq!(s.read(&fixed(k)).unwrap(), Some(common::value(k)));
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        while reads.load(Ordering::Relaxed) < 2_000 {
            thread::sleep(Duration::from_millis(1));
        }
        let info = store.checkpoint().unwrap().wait().unwrap();
        let after = reads.load(Ordering::Relaxed);
        while reads.load(Ordering::Relaxed) < after + 2_000 {
            thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        (info, vec![writer.join().unwrap()])
    });
    drop(store);
    let (store, rec) = FasterKv::recover(config(dir.path())).unwrap();
    assert_eq!(rec.version, info.version);
    verify(&store, &rec.sessions, &issued);
    let mut s = store.start_session();
    for k in 0..5_000u64 {
        assert_eq!(s.read(&fixed(k)).unwrap(), Some(common::value(k)));
    }
}

/// A log of ~100 MB through 16 MiB of log memory: a full checkpoint early, a log-only one at
/// the end, so recovery replays almost the whole log from the device.
#[test]
fn a_log_larger_than_memory_recovers_fully() {
    let dir = tempdir();
    let cfg = || {
        config(dir.path())
            .with_log_memory(16 << 20)
            .with_page_size(1 << 20)
            .with_table_bits(16)
    };
    let store = FasterKv::open(cfg()).unwrap();
    let key = |k: u64| k.to_le_bytes();
    let val = |k: u64| {
        let mut v = vec![(k % 253) as u8; 1000];
        v[..8].copy_from_slice(&k.to_le_bytes());
        v
    };
    const N: u64 = 100_000;
    let mut s = store.start_session();
    for k in 0..N / 10 {
        s.upsert(&key(k), &val(k)).unwrap();
    }
    store.checkpoint().unwrap().wait().unwrap();
    for k in N / 10..N {
        s.upsert(&key(k), &val(k)).unwrap();
    }
    let info = store
        .checkpoint_with(CheckpointOptions::log_only())
        .unwrap()
        .wait()
        .unwrap();
    assert!(store.hlog().tail_address().raw() > 100_000_000);
    drop(s);
    drop(store);
    let (store, rec) = FasterKv::recover(cfg()).unwrap();
    assert_eq!(rec.version, info.version);
    assert!(rec.replay.records_applied >= N * 9 / 10, "{:?}", rec.replay);
    let mut s = store.start_session();
    for k in 0..N {
        assert_eq!(s.read(&key(k)).unwrap(), Some(val(k)), "key {k}");
    }
}

/// A snapshot checkpoint under ten writers recovers the exact prefix too.
#[test]
fn a_snapshot_checkpoint_recovers_the_exact_prefix() {
    let dir = tempdir();
    let store = FasterKv::open(config(dir.path()).with_log_memory(4 << 20)).unwrap();
    let snap = CheckpointOptions::full().with_log(LogCapture::Snapshot);
    let (infos, issued) = run_load(&store, 10, &[snap], (5_000, 0, 5_000), 200_000);
    drop(store);
    check_cuts(&infos[0], &issued);
    let (store, rec) = FasterKv::recover(config(dir.path()).with_log_memory(4 << 20)).unwrap();
    assert_eq!(rec.version, infos[0].version);
    assert!(rec.replay.snapshot_bytes > 0, "{:?}", rec.replay);
    verify(&store, &rec.sessions, &issued);
}

/// Continued sessions resume at `t + 1`; new writes, a second checkpoint and a second
/// recovery keep the prefix exact; ids and errors of `continue_session`.
#[test]
fn continue_session_resumes_after_the_cut_and_checkpoints_go_on() {
    let dir = tempdir();
    let store = FasterKv::open(config(dir.path())).unwrap();
    let (infos, issued) = run_load(
        &store,
        4,
        &[CheckpointOptions::full()],
        (2_000, 0, 2_000),
        1_000_000,
    );
    drop(store);
    assert!(matches!(
        FasterKv::open(config(dir.path())),
        Err(Error::AlreadyExists { .. })
    ));
    let (store, rec) = FasterKv::recover(config(dir.path())).unwrap();
    assert_eq!(rec.version, infos[0].version);
    // The load ran through the checkpoint: records of `v + 1` lie below its final address.
    assert!(rec.replay.records_invalidated > 0, "{:?}", rec.replay);
    let max_id = rec.sessions.iter().map(|s| s.0.as_u64()).max().unwrap();
    assert!(store.start_session().id().as_u64() > max_id);
    assert!(matches!(
        store.continue_session((max_id + 100).to_string().parse().unwrap()),
        Err(Error::UnknownSession(_))
    ));
    let mut sessions = Vec::new();
    for &(id, t) in &rec.sessions {
        let (mut s, got) = store.continue_session(id).unwrap();
        assert_eq!(got, t);
        assert_eq!(s.serial(), t);
        assert!(matches!(
            store.continue_session(id),
            Err(Error::SessionAlreadyContinued(_))
        ));
        for _ in 0..500 {
            step(&mut s);
        }
        assert_eq!(s.serial(), t + 500);
        sessions.push(s);
    }
    // A log-only checkpoint reuses the recovered index checkpoint, so its recovery replays
    // the first checkpoint's log again: its records of the first `v + 1` must stay invalid.
    let info = store
        .checkpoint_with(CheckpointOptions::log_only())
        .unwrap()
        .wait()
        .unwrap();
    // More writes after the second checkpoint: they must not survive.
    for s in &mut sessions {
        for _ in 0..100 {
            step(s);
        }
    }
    let last: Vec<(SessionId, u64)> = sessions.iter().map(|s| (s.id(), s.serial())).collect();
    drop(sessions);
    drop(store);
    let (store, rec2) = FasterKv::recover(config(dir.path())).unwrap();
    assert_eq!(rec2.version, info.version);
    let mut s = store.start_session();
    for &(id, t2) in &rec2.sessions {
        let t1 = rec.sessions.iter().find(|c| c.0 == id).unwrap().1;
        assert_eq!(t2, t1 + 500, "session {id}");
        let l = last.iter().find(|c| c.0 == id).unwrap().1;
        let before = issued.iter().find(|c| c.0 == id).unwrap().1;
        verify_session(&mut s, id.as_u64(), t2, l.max(before));
    }
}
