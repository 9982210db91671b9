//! The CPR state machine in the store: versions, the session's cut (its `prev` / `cur`
//! contexts), the phase order, and the version rules that keep the prefix exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use faster::{AddU64, CheckpointOptions, Config, FasterKv, LogCapture, LogDevice, Phase, Status};

/// The store of these tests: they count versions, and an index growth (which moves the
/// store to the next version, as any action of the state machine does) would shift them, so
/// the index does not grow by itself here.
fn config(dir: &std::path::Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(12)
        .with_index_growth(false)
        .with_checkpoint_timeout(Duration::from_secs(20))
}

/// Every record of `key` in the log, oldest first: (version, value).
fn records(store: &FasterKv, key: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let hlog = store.hlog();
    hlog.scan(hlog.begin_address(), hlog.tail_address())
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|r| r.key == key)
        .map(|r| (r.version, r.value))
        .collect()
}

/// Refreshes `s` until the store reaches `phase` (the session acknowledges what it can).
fn refresh_until(store: &FasterKv, s: &mut faster::Session, phase: Phase) {
    while store.checkpoint_state().phase != phase {
        s.refresh().unwrap();
        std::thread::yield_now();
    }
}

/// A session that is not idle (one pending read of an on-disk key) and so must acknowledge
/// every phase itself: it lets the test hold the state machine where it wants.
fn holder(store: &FasterKv) -> (faster::Session, Arc<Mutex<Option<Vec<u8>>>>) {
    let mut s = store.start_session();
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let st = s
        .read_async(&0u64.to_le_bytes(), move |r| {
            *g.lock().unwrap() = r.unwrap()
        })
        .unwrap();
    assert_eq!(st, Status::Pending, "key 0 is on disk");
    (s, got)
}

/// Starts a log-only checkpoint (after a full one, which it needs) and waits until the
/// machine is in PREPARE: a log-only checkpoint starts there, and `holder`, which has not
/// acknowledged it, keeps it there.
fn hold_in_prepare(store: &FasterKv) -> faster::CheckpointHandle {
    let handle = store
        .checkpoint_with(CheckpointOptions::log_only())
        .unwrap();
    while store.checkpoint_state().phase != Phase::Prepare {
        std::thread::yield_now();
    }
    handle
}

fn fill(store: &FasterKv) {
    let mut s = store.start_session();
    for k in 0..20_000u64 {
        s.upsert(&k.to_le_bytes(), &[7u8; 56]).unwrap();
    }
}

#[test]
fn the_version_advances_by_one_per_checkpoint_and_stamps_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(config(dir.path())).unwrap();
    let mut s = store.start_session();
    assert_eq!(store.version(), 1);
    s.upsert(b"a", b"1").unwrap();
    for (n, options) in [
        CheckpointOptions::full(),
        CheckpointOptions::index_only(),
        CheckpointOptions::log_only(),
        CheckpointOptions::full().with_log(LogCapture::Snapshot),
    ]
    .into_iter()
    .enumerate()
    {
        let info = store.checkpoint_with(options).unwrap().wait().unwrap();
        assert_eq!(info.version, n as u64 + 1);
        assert_eq!(store.version(), n as u64 + 2);
        s.upsert(format!("k{n}").as_bytes(), b"x").unwrap();
        assert_eq!(s.version(), n as u64 + 2);
        assert_eq!(
            records(&store, format!("k{n}").as_bytes()),
            [(n as u32 + 2, b"x".to_vec())]
        );
    }
    assert_eq!(records(&store, b"a"), [(1, b"1".to_vec())]);
}

#[test]
fn every_phase_is_entered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let store = FasterKv::open(
        config(dir.path()).with_phase_observer(move |s| s2.lock().unwrap().push(s.phase)),
    )
    .unwrap();
    let mut s = store.start_session();
    s.upsert(b"a", b"1").unwrap();
    store.checkpoint().unwrap().wait().unwrap();
    store
        .checkpoint_with(CheckpointOptions::index_only())
        .unwrap()
        .wait()
        .unwrap();
    store
        .checkpoint_with(CheckpointOptions::log_only())
        .unwrap()
        .wait()
        .unwrap();
    use Phase::*;
    let full = [
        PrepIndexChkpt,
        IndexChkpt,
        Prepare,
        InProgress,
        WaitPending,
        WaitFlush,
        PersistenceCallback,
        Rest,
    ];
    let index = [PrepIndexChkpt, IndexChkpt, Rest];
    let log = [
        Prepare,
        InProgress,
        WaitPending,
        WaitFlush,
        PersistenceCallback,
        Rest,
    ];
    let expected: Vec<Phase> = full.iter().chain(&index).chain(&log).copied().collect();
    assert_eq!(*seen.lock().unwrap(), expected);
}

#[test]
fn the_session_swaps_contexts_at_its_cut() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(config(dir.path())).unwrap();
    fill(&store);
    store.checkpoint().unwrap().wait().unwrap(); // version 1
    let (mut h, _) = holder(&store);
    let mut s = store.start_session();
    s.upsert(b"a", b"1").unwrap();
    s.upsert(b"b", b"2").unwrap();
    let handle = hold_in_prepare(&store); // version 2
    // The holder has not acknowledged PREPARE: the machine waits there.
    assert_eq!(store.checkpoint_state().phase, Phase::Prepare);
    s.upsert(b"c", b"3").unwrap(); // serial 3, still version 2
    assert_eq!(
        (s.phase(), s.version(), s.cut(2)),
        (Phase::Prepare, 2, None)
    );
    assert_eq!(records(&store, b"c")[0].0, 2);
    refresh_until(&store, &mut h, Phase::WaitPending);
    // `s` is idle: it was acknowledged on its behalf and cut at serial 3.
    assert_eq!(s.cut(2), Some(3));
    s.upsert(b"d", b"4").unwrap(); // serial 4: the first operation of version 3
    assert_eq!((s.phase(), s.version()), (Phase::WaitPending, 3));
    assert_eq!(records(&store, b"d")[0].0, 3);
    assert_eq!(h.cut(2), Some(1), "the holder's cut: its one read");
    h.complete_pending(true).unwrap();
    let info = handle.wait().unwrap();
    let mut sessions = info.sessions.clone();
    sessions.sort();
    let mut expected = vec![(h.id(), 1), (s.id(), 3)];
    expected.sort();
    assert_eq!(sessions, expected);
    s.upsert(b"e", b"5").unwrap();
    assert_eq!((s.phase(), s.version()), (Phase::Rest, 3));
}

#[test]
fn version_v_plus_1_never_updates_a_version_v_record_in_place() {
    version_rule(b"hot");
}

/// The same with an 8-byte key and 8-byte values: the store's fast paths must keep the rule.
#[test]
fn version_v_plus_1_never_updates_a_version_v_record_in_place_8_byte_key() {
    version_rule(b"hot-key8");
}

/// Version `v + 1` copies a version-`v` record of `hot` instead of updating it in place.
fn version_rule(hot: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(config(dir.path())).unwrap();
    fill(&store);
    let mut s = store.start_session();
    s.upsert(hot, &1u64.to_le_bytes()).unwrap();
    s.upsert(hot, &2u64.to_le_bytes()).unwrap(); // in place at rest
    s.rmw(b"n", &1u64.to_le_bytes(), &AddU64).unwrap();
    assert_eq!(records(&store, hot), [(1, 2u64.to_le_bytes().to_vec())]);
    let (mut h, _) = holder(&store);
    let handle = store.checkpoint().unwrap();
    refresh_until(&store, &mut h, Phase::WaitPending);
    // `s` works in version 2 now; the version-1 records must stay as the checkpoint saw them.
    s.upsert(hot, &3u64.to_le_bytes()).unwrap();
    s.upsert(hot, &4u64.to_le_bytes()).unwrap(); // the version-2 copy is updated in place
    s.rmw(b"n", &1u64.to_le_bytes(), &AddU64).unwrap();
    s.delete(b"a-missing-key").unwrap();
    assert_eq!(
        records(&store, hot),
        [
            (1, 2u64.to_le_bytes().to_vec()),
            (2, 4u64.to_le_bytes().to_vec())
        ]
    );
    assert_eq!(
        records(&store, b"n"),
        [
            (1, 1u64.to_le_bytes().to_vec()),
            (2, 2u64.to_le_bytes().to_vec())
        ]
    );
    h.complete_pending(true).unwrap();
    handle.wait().unwrap();
    // The fold-over made the whole log read-only: the next update copies once more, and
    // the copy (mutable, at rest) is updated in place as usual.
    s.upsert(hot, &5u64.to_le_bytes()).unwrap();
    s.upsert(hot, &6u64.to_le_bytes()).unwrap();
    assert_eq!(records(&store, hot).len(), 3);
    assert_eq!(s.read(hot).unwrap(), Some(6u64.to_le_bytes().to_vec()));
}

#[test]
fn a_pending_rmw_issued_before_the_cut_completes_in_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(config(dir.path())).unwrap();
    let mut s = store.start_session();
    s.upsert(b"counter", &10u64.to_le_bytes()).unwrap();
    for k in 0..20_000u64 {
        s.upsert(&k.to_le_bytes(), &[7u8; 56]).unwrap();
    }
    let done = Arc::new(Mutex::new(false));
    let d = done.clone();
    let st = s
        .rmw_async(b"counter", &5u64.to_le_bytes(), AddU64, move |r| {
            r.unwrap();
            *d.lock().unwrap() = true;
        })
        .unwrap();
    assert_eq!(st, Status::Pending, "the counter is on disk");
    let rmw_serial = s.serial();
    let handle = store.checkpoint().unwrap();
    // The session finishes its pending write before it acknowledges PREPARE.
    while !handle.is_finished() {
        s.refresh().unwrap();
        std::thread::yield_now();
    }
    let info = handle.wait().unwrap();
    assert!(
        *done.lock().unwrap(),
        "the RMW completed during the checkpoint"
    );
    assert_eq!(info.sessions, [(s.id(), rmw_serial)]);
    let recs = records(&store, b"counter");
    assert_eq!(
        recs.last().unwrap(),
        &(1, 15u64.to_le_bytes().to_vec()),
        "written in version 1"
    );
}

#[test]
fn an_rmw_of_an_on_disk_key_in_prepare_completes_without_going_pending() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(config(dir.path())).unwrap();
    let mut s = store.start_session();
    s.upsert(b"counter", &10u64.to_le_bytes()).unwrap();
    drop(s);
    fill(&store);
    store.checkpoint().unwrap().wait().unwrap(); // version 1
    let (mut h, _) = holder(&store);
    let mut s = store.start_session();
    let handle = hold_in_prepare(&store); // version 2
    let st = s
        .rmw_async(b"counter", &1u64.to_le_bytes(), AddU64, |r| r.unwrap())
        .unwrap();
    assert_eq!(st, Status::Done, "no write goes pending across a cut");
    assert_eq!(s.pending_count(), 0);
    h.complete_pending(true).unwrap();
    while !handle.is_finished() {
        h.refresh().unwrap();
        std::thread::yield_now();
    }
    let info = handle.wait().unwrap();
    let cut = info
        .sessions
        .iter()
        .find(|(id, _)| *id == s.id())
        .unwrap()
        .1;
    // The RMW ran in PREPARE, so in version 2: it is inside the cut.
    assert_eq!(cut, 1);
    assert_eq!(
        records(&store, b"counter").last().unwrap(),
        &(2, 11u64.to_le_bytes().to_vec())
    );
}

#[test]
fn checkpoints_can_be_requested_from_any_thread_and_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(config(dir.path())).unwrap();
    fill(&store);
    let (mut h, _) = holder(&store);
    let handle = store.checkpoint().unwrap();
    let other = store.clone();
    let second = std::thread::spawn(move || other.checkpoint().map(|_| ()))
        .join()
        .unwrap();
    assert!(
        matches!(second, Err(faster::Error::CheckpointInProgress { .. })),
        "{second:?}"
    );
    h.complete_pending(true).unwrap();
    while !handle.is_finished() {
        h.refresh().unwrap();
        std::thread::yield_now();
    }
    handle.wait().unwrap();
    // Without any session at all.
    drop(h);
    store.checkpoint().unwrap().wait().unwrap();
}

/// Thread coordination: busy sessions acknowledge phases as they run, and the last one to
/// acknowledge a phase moves the state machine on, not only the checkpoint's own thread.
#[test]
fn busy_sessions_advance_the_state_machine() {
    let dir = tempfile::tempdir().unwrap();
    let movers = Arc::new(Mutex::new(Vec::new()));
    let m2 = movers.clone();
    let store = FasterKv::open(
        config(dir.path())
            .with_log_memory(16 << 20)
            .with_phase_observer(move |s| {
                let name = std::thread::current().name().unwrap_or("").to_string();
                m2.lock().unwrap().push((s.phase, name));
            }),
    )
    .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..3u64)
        .map(|t| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("worker-{t}"))
                .spawn(move || {
                    let mut s = store.start_session();
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let key = ((t << 32) | (i % 1000)).to_le_bytes();
                        s.rmw(&key, &1u64.to_le_bytes(), &AddU64).unwrap();
                        i += 1;
                    }
                })
                .unwrap()
        })
        .collect();
    for _ in 0..5 {
        store.checkpoint().unwrap().wait().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let movers = movers.lock().unwrap();
    let by_sessions = movers
        .iter()
        .filter(|(_, name)| name.starts_with("worker-"))
        .count();
    assert!(
        by_sessions > 0,
        "no transition was made by a session: {movers:?}"
    );
}
