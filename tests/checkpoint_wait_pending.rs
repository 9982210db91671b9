//! WAIT_PENDING: a checkpoint waits for the operations sessions issued before their cut, and
//! gives up with a typed error, not a hang, when one never completes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use faster::{CheckpointOptions, Config, Error, FasterKv, LogCapture, LogDevice, Phase, Status};

/// A store whose log is mostly on disk: `keys` keys of 64-byte values through 1 MiB of memory.
fn store_on_disk(
    dir: &std::path::Path,
    keys: u64,
    observer: Option<Arc<Mutex<Vec<String>>>>,
) -> FasterKv {
    let mut config = Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(12)
        .with_checkpoint_timeout(Duration::from_secs(20));
    if let Some(events) = observer {
        config = config.with_phase_observer(move |s| {
            events.lock().unwrap().push(format!("phase {}", s.phase))
        });
    }
    let store = FasterKv::open(config).unwrap();
    let mut s = store.start_session();
    for k in 0..keys {
        s.upsert(&k.to_le_bytes(), &value(k)).unwrap();
    }
    drop(s);
    store
}

fn value(k: u64) -> Vec<u8> {
    (0..64)
        .map(|i| (k as u8).wrapping_mul(31).wrapping_add(i))
        .collect()
}

#[test]
fn pending_reads_drain_before_the_snapshot_and_none_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let store = store_on_disk(dir.path(), 20_000, Some(events.clone()));
    let mut s = store.start_session();
    let mut pending = 0;
    for k in 0..400u64 {
        let ev = events.clone();
        let st = s
            .read_async(&k.to_le_bytes(), move |r| {
                assert_eq!(r.unwrap(), Some(value(k)), "key {k}");
                ev.lock().unwrap().push(format!("read {k}"));
            })
            .unwrap();
        if st == Status::Pending {
            pending += 1;
        }
    }
    assert!(
        pending > 300,
        "the early keys are on disk ({pending} pending)"
    );
    let handle = store
        .checkpoint_with(CheckpointOptions::full().with_log(LogCapture::Snapshot))
        .unwrap();
    // The session is not idle (it has pending reads): it acknowledges the phases itself,
    // without completing anything, until the checkpoint waits for its reads.
    while store.checkpoint_state().phase != Phase::WaitPending {
        s.refresh().unwrap();
        std::thread::yield_now();
    }
    assert_eq!(s.pending_count(), pending, "nothing completed yet");
    assert_eq!(
        s.version(),
        store.checkpoint_state().version + 1,
        "the session crossed its cut"
    );
    while !handle.is_finished() {
        s.complete_pending(false).unwrap();
        std::thread::yield_now();
    }
    let info = handle.wait().unwrap();
    assert_eq!(s.pending_count(), 0);
    assert_eq!(info.sessions, [(s.id(), 400)]);
    let ev = events.lock().unwrap();
    let flush = ev
        .iter()
        .position(|e| e == "phase WAIT_FLUSH")
        .expect("WAIT_FLUSH entered");
    let reads: Vec<usize> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e.starts_with("read "))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(reads.len(), 400, "every context was called exactly once");
    assert!(
        reads.iter().all(|&i| i < flush),
        "every pending read finished before the log was captured"
    );
}

#[test]
fn a_stuck_pending_operation_times_out_and_the_next_checkpoint_succeeds() {
    let got = Arc::new(Mutex::new(None));
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path())
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(12)
        .with_checkpoint_timeout(Duration::from_millis(500));
    let store = FasterKv::open(config).unwrap();
    let mut s = store.start_session();
    for k in 0..20_000u64 {
        s.upsert(&k.to_le_bytes(), &value(k)).unwrap();
    }
    let st = s
        .read_async(&3u64.to_le_bytes(), move |r| {
            *got.lock().unwrap() = Some(r.unwrap())
        })
        .unwrap();
    assert_eq!(st, Status::Pending);
    let handle = store.checkpoint().unwrap();
    while !handle.is_finished() {
        s.refresh().unwrap();
        std::thread::yield_now();
    }
    match handle.wait() {
        Err(Error::CheckpointTimeout {
            phase,
            sessions,
            version,
            ..
        }) => {
            assert_eq!(phase, Phase::WaitPending);
            assert_eq!(sessions, [s.id()]);
            assert!(
                !dir.path()
                    .join("checkpoints")
                    .join(faster::recovery::CheckpointToken::for_version(version).as_str())
                    .exists(),
                "the abandoned checkpoint left no files"
            );
        }
        other => panic!("expected a timeout in WAIT_PENDING, got {other:?}"),
    }
    assert_eq!(store.checkpoint_state().phase, Phase::Rest, "back to rest");
    // Work goes on; the stuck read completes when asked, with the right value.
    s.upsert(b"after", b"timeout").unwrap();
    assert_eq!(s.complete_pending(true).unwrap(), 1);
    // The next checkpoint succeeds (the session is idle now: acknowledged on its behalf).
    let info = store.checkpoint().unwrap().wait().unwrap();
    assert_eq!(info.sessions, [(s.id(), s.serial())]);
}

/// A checkpoint requested just before `close()` while a session has reads pending (which a
/// closed store never completes) fails promptly with `Error::Closed` instead of waiting for
/// its timeout.
#[test]
fn a_checkpoint_racing_close_with_pending_reads_fails_promptly_with_closed() {
    let timeout = Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path())
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(12)
        .with_checkpoint_timeout(timeout);
    let store = FasterKv::open(config).unwrap();
    let mut s = store.start_session();
    for k in 0..20_000u64 {
        s.upsert(&k.to_le_bytes(), &value(k)).unwrap();
    }
    let st = s.read_async(&3u64.to_le_bytes(), |_| {}).unwrap();
    assert_eq!(st, Status::Pending);
    let handle = store.checkpoint().unwrap();
    let closed_at = std::time::Instant::now();
    store.close();
    let r = handle.wait();
    let waited = closed_at.elapsed();
    assert!(
        matches!(r, Err(Error::Closed)),
        "expected Closed, got {r:?}"
    );
    assert!(
        waited < timeout / 4,
        "the checkpoint waited {waited:?} after close (timeout {timeout:?})"
    );
    assert_eq!(store.checkpoint_state().phase, Phase::Rest, "back to rest");
    drop(s);
}

/// An idle session (alive, no call in flight, nothing pending) never stalls a checkpoint:
/// it is acknowledged on its behalf, and cut at its last serial. The busy sessions' work fits
/// in memory: an idle session that holds its epoch protection would hold back the log's
/// eviction (a documented limitation), though not a checkpoint's flush.
#[test]
fn an_idle_session_does_not_stall_busy_ones() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path())
        .with_log_device(LogDevice::File)
        .with_log_memory(64 << 20)
        .with_page_size(1 << 20)
        .with_table_bits(14);
    let store = FasterKv::open(config).unwrap();
    let mut idle = store.start_session();
    for k in 0..3u64 {
        idle.upsert(&k.to_le_bytes(), b"idle").unwrap();
    }
    let running = Arc::new(AtomicUsize::new(2));
    let busy: Vec<_> = (0..2u64)
        .map(|t| {
            let (store, running) = (store.clone(), running.clone());
            std::thread::spawn(move || {
                let mut s = store.start_session();
                for i in 0..300_000u64 {
                    let key = 1000 + t * 1_000_000 + i % 5000;
                    s.upsert(&key.to_le_bytes(), &i.to_le_bytes()).unwrap();
                }
                running.fetch_sub(1, Ordering::SeqCst);
                (s.id(), s.serial())
            })
        })
        .collect();
    let mut infos = Vec::new();
    while running.load(Ordering::SeqCst) > 0 || infos.len() < 3 {
        infos.push(store.checkpoint().unwrap().wait().unwrap());
    }
    let finals: Vec<_> = busy.into_iter().map(|t| t.join().unwrap()).collect();
    for info in &infos {
        let cut = |id| {
            info.sessions
                .iter()
                .find(|(i, _)| *i == id)
                .map(|&(_, c)| c)
        };
        assert_eq!(
            cut(idle.id()),
            Some(3),
            "the idle session was cut at its last serial"
        );
        for &(id, serial) in &finals {
            if let Some(c) = cut(id) {
                assert!(c <= serial);
            }
        }
    }
    assert_eq!(store.version(), 1 + infos.len() as u64);
    // The idle session works on, in the latest version.
    idle.upsert(b"later", b"x").unwrap();
    assert_eq!(idle.version(), store.version());
}
