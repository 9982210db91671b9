//! Index growth through the store: a default `Config` holds keys far past its first table,
//! readers and writers verify their own keys through several growths, checkpoints taken
//! before or after a growth recover, the memory limit gives a typed error and leaves the
//! store usable, and growth and checkpoints never overlap.
//!
//! The 20-million-key run is `cargo xtask grow` (release build); here it runs with
//! `FASTER_GROW_KEYS` keys (default 1,000,000).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use faster::index::IndexError;
use faster::{Config, Error, FasterKv, LogDevice};
use faster_tests::Rng;

fn key(writer: u64, i: u64) -> [u8; 8] {
    (writer << 40 | i).to_le_bytes()
}

fn value(i: u64, round: u64) -> [u8; 8] {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ round).to_le_bytes()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads keys `0..n` of writer 0 back, `window` at a time through `read_async` (most of the
/// log is on disk when `n` is large), checking each value.
fn read_back(store: &FasterKv, n: u64, round: impl Fn(u64) -> u64 + Copy) {
    let mut s = store.start_session();
    let mut checked = 0u64;
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    for i in 0..n {
        let want = value(i, round(i));
        let f = failures.clone();
        let _ = s
            .read_async(&key(0, i), move |r| {
                if r.as_ref().ok().and_then(|v| v.as_deref()) != Some(&want[..]) {
                    f.lock().unwrap().push((i, format!("{r:?}")));
                }
            })
            .unwrap();
        checked += 1;
        if checked % 256 == 0 {
            s.complete_pending(false).unwrap();
        }
    }
    s.complete_pending(true).unwrap();
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} wrong: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

#[test]
fn a_default_store_holds_keys_far_past_its_first_table() {
    let n = env_u64("FASTER_GROW_KEYS", 1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(Config::new(dir.path())).unwrap();
    let first = store.index().table_bits();
    let mut s = store.start_session();
    let t = std::time::Instant::now();
    for i in 0..n {
        s.upsert(&key(0, i), &value(i, 0)).unwrap();
    }
    drop(s);
    eprintln!(
        "{n} keys in {:.1} s; index 2^{first} -> 2^{} in {} growths, {} MiB; log {} MiB, {} MiB on disk",
        t.elapsed().as_secs_f64(),
        store.index().table_bits(),
        store.index_growths(),
        store.index().memory_bytes() >> 20,
        store.hlog().tail_address().raw() >> 20,
        store.hlog().head_address().raw() >> 20,
    );
    // 2^16 buckets hold about 260 thousand keys before the first growth.
    let expect = (n / 260_000).max(1).ilog2() + 1;
    assert!(
        store.index_growths() >= expect as u64,
        "{} growths, {expect} expected",
        store.index_growths()
    );
    // At most about four keys a bucket on average once grown.
    assert!(
        (1u64 << store.index().table_bits()) * 5 >= n,
        "table too small"
    );
    read_back(&store, n, |_| 0);
}

#[test]
fn readers_and_writers_verify_their_keys_through_growths() {
    let seed = env_u64("FASTER_GROW_SEED", 0x5EED);
    eprintln!("FASTER_GROW_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    // A small table and a log that spills to disk: growths split in-memory and on-disk
    // records both.
    let store = FasterKv::open(
        Config::new(dir.path())
            .with_table_bits(8)
            .with_log_memory(4 << 20)
            .with_page_size(256 << 10),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ w);
                let mut s = store.start_session();
                let mut rounds = vec![0u64; 0];
                while !stop.load(Ordering::Relaxed) && rounds.len() < 400_000 {
                    let i = rounds.len() as u64;
                    s.upsert(&key(w, i), &value(i, 0)).unwrap();
                    rounds.push(0);
                    // Update and verify a few of its own keys, in memory or on disk.
                    for _ in 0..2 {
                        let j = rng.below(rounds.len() as u64);
                        let got = s.read(&key(w, j)).unwrap();
                        assert_eq!(
                            got.as_deref(),
                            Some(&value(j, rounds[j as usize])[..]),
                            "writer {w} key {j} (seed {seed})"
                        );
                    }
                    let j = rng.below(rounds.len() as u64);
                    rounds[j as usize] += 1;
                    s.upsert(&key(w, j), &value(j, rounds[j as usize])).unwrap();
                }
                rounds
            })
        })
        .collect();
    // Stop once the index has grown four times (2^8 -> 2^12) or the writers are done.
    while store.index_growths() < 4 && !writers.iter().all(|w| w.is_finished()) {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let rounds: Vec<Vec<u64>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        store.index_growths() >= 4,
        "{} growths",
        store.index_growths()
    );
    let mut s = store.start_session();
    for (w, rounds) in rounds.iter().enumerate() {
        for (i, &r) in rounds.iter().enumerate() {
            assert_eq!(
                s.read(&key(w as u64, i as u64)).unwrap().as_deref(),
                Some(&value(i as u64, r)[..]),
                "writer {w} key {i} after the run (seed {seed})"
            );
        }
    }
    // No key twice: the index holds about one entry per key (tag collisions share one).
    let stats = store.index().stats();
    let keys: u64 = rounds.iter().map(|r| r.len() as u64).sum();
    assert!(
        stats.entries <= keys + keys / 20,
        "{} entries for {keys} keys",
        stats.entries
    );
}

#[test]
fn checkpoints_before_and_after_a_growth_recover() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        Config::new(dir.path())
            .with_table_bits(6)
            .with_log_memory(1 << 20)
            .with_page_size(64 << 10)
    };
    let store = FasterKv::open(config().with_index_growth(false)).unwrap();
    let mut s = store.start_session();
    for i in 0..1000 {
        s.upsert(&key(0, i), &value(i, 0)).unwrap();
    }
    let before = store.checkpoint().unwrap().wait().unwrap();
    for _ in 0..3 {
        store.grow_index().unwrap().wait().unwrap();
    }
    assert_eq!(store.index().table_bits(), 9);
    for i in 1000..3000 {
        s.upsert(&key(0, i), &value(i, 0)).unwrap();
    }
    let after = store.checkpoint().unwrap().wait().unwrap();
    for i in 3000..4000 {
        s.upsert(&key(0, i), &value(i, 0)).unwrap();
    }
    drop(s);
    drop(store);

    // The newest checkpoint: written after the growths, with the grown table.
    let (store, rec) = FasterKv::recover(config()).unwrap();
    assert_eq!(rec.token, after.token);
    assert_eq!(store.index().table_bits(), 9);
    let mut s = store.start_session();
    for i in 0..4000 {
        let want = (i < 3000).then(|| value(i, 0).to_vec());
        assert_eq!(s.read(&key(0, i)).unwrap(), want, "key {i}");
    }
    // Growing the recovered store and writing on.
    store.grow_index().unwrap().wait().unwrap();
    s.upsert(&key(0, 5000), &value(5000, 0)).unwrap();
    assert_eq!(s.read(&key(0, 10)).unwrap(), Some(value(10, 0).to_vec()));
    drop(s);
    drop(store);

    // The checkpoint written before the growths: its small table, and its prefix exactly.
    let (store, rec) = FasterKv::recover_from(config(), &before.token).unwrap();
    assert_eq!(rec.token, before.token);
    assert_eq!(store.index().table_bits(), 6);
    let mut s = store.start_session();
    for i in 0..3000 {
        let want = (i < 1000).then(|| value(i, 0).to_vec());
        assert_eq!(s.read(&key(0, i)).unwrap(), want, "key {i}");
    }
}

#[test]
fn the_memory_limit_is_a_typed_error_and_the_store_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    // 2^8 buckets (16 KiB) within a 96 KiB limit: the first overflow chunk (64 KiB) fits,
    // a doubled table beside it does not.
    let store = FasterKv::open(
        Config::new(dir.path())
            .with_log_device(LogDevice::Memory)
            .with_table_bits(8)
            .with_index_memory_limit(96 << 10),
    )
    .unwrap();
    let mut s = store.start_session();
    let mut stored = 0;
    let err = loop {
        match s.upsert(&key(0, stored), &value(stored, 0)) {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 1_000_000, "no limit reached");
    };
    assert!(
        matches!(err, Error::Index(IndexError::MemoryLimit { .. })),
        "{err}"
    );
    assert!(matches!(
        store.grow_index(),
        Err(Error::Index(IndexError::MemoryLimit { .. }))
    ));
    assert_eq!(store.index().table_bits(), 8);
    for i in 0..stored {
        assert_eq!(s.read(&key(0, i)).unwrap(), Some(value(i, 0).to_vec()));
        s.upsert(&key(0, i), &value(i, 1)).unwrap();
    }
    assert_eq!(s.read(&key(0, 0)).unwrap(), Some(value(0, 1).to_vec()));
    // A checkpoint works at the limit, too.
    store.checkpoint().unwrap().wait().unwrap();
}

#[test]
fn growth_waits_for_busy_sessions_and_idle_ones_do_not_hold_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(
        Config::new(dir.path())
            .with_log_device(LogDevice::Memory)
            .with_table_bits(4)
            .with_index_growth(false),
    )
    .unwrap();
    // An idle session (it never calls again) and one with a pending read do not hold it.
    let mut idle = store.start_session();
    idle.upsert(b"idle", b"1").unwrap();
    let mut s = store.start_session();
    for i in 0..500 {
        s.upsert(&key(0, i), &value(i, 0)).unwrap();
    }
    let info = store.grow_index().unwrap().wait().unwrap();
    assert_eq!((info.from_bits, info.to_bits), (4, 5));
    assert_eq!(store.grow_index().unwrap().wait().unwrap().to_bits, 6);
    assert_eq!(store.index().table_bits(), 6);
    assert_eq!(idle.read(b"idle").unwrap(), Some(b"1".to_vec()));
    for i in 0..500 {
        assert_eq!(s.read(&key(0, i)).unwrap(), Some(value(i, 0).to_vec()));
    }
    // A checkpoint requested right after a growth starts waits for it, never overlaps.
    let g = store.grow_index().unwrap();
    let c = store.checkpoint().unwrap().wait().unwrap();
    let grown = g.wait().unwrap();
    assert_eq!(grown.to_bits, 7);
    assert!(
        c.index_bytes >= 128 * 64,
        "the checkpoint wrote the grown table"
    );
}

/// Sessions parked by a growth keep refreshing their epoch and the driver holds none while it
/// waits, so a session whose last call before its acknowledgement needs a page of the log
/// evicted gets it: with pages turning over constantly, every growth completes well within
/// a short timeout (before, each such growth waited for the timeout and was abandoned).
#[test]
fn growth_does_not_wait_on_sessions_that_wait_on_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(
        Config::new(dir.path())
            .with_log_device(LogDevice::Memory)
            .with_log_memory(64 << 10)
            .with_page_size(16 << 10)
            .with_table_bits(2)
            .with_index_growth(false)
            .with_checkpoint_timeout(std::time::Duration::from_secs(5)),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(std::sync::Barrier::new(3));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (store, stop, started) = (store.clone(), stop.clone(), started.clone());
            std::thread::spawn(move || {
                let mut s = store.start_session();
                let big = vec![w as u8; 1000];
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    s.upsert(&key(w, i % 5000), &big).unwrap();
                    i += 1;
                    if i == 1 {
                        // Between operations: the growths may start.
                        started.wait();
                    }
                }
                i
            })
        })
        .collect();
    // The growths run while both writers write (on a busy machine a writer could otherwise
    // not have started its first operation before the last growth ended).
    started.wait();
    for _ in 0..6 {
        let info = store.grow_index().unwrap().wait().unwrap();
        assert!(info.duration.as_secs() < 5, "{info:?}");
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        assert!(w.join().unwrap() > 0);
    }
    assert_eq!(store.index().table_bits(), 8);
}

/// Dropping the last handle while a growth runs (here splitting its table) waits
/// for the growth to give up and let go of the store, so the directory can be recovered at
/// once (before, the growth's thread kept the store, and its lock, for a while longer:
/// `Error::InUse`).
#[test]
fn the_directory_is_free_once_the_last_handle_drops_during_a_growth() {
    let dir = tempfile::tempdir().unwrap();
    let config = || Config::new(dir.path()).with_table_bits(18);
    let store = FasterKv::open(config().with_index_growth(false)).unwrap();
    let mut s = store.start_session();
    for i in 0..1000 {
        s.upsert(&key(0, i), &value(i, 0)).unwrap();
    }
    store.checkpoint().unwrap().wait().unwrap();
    drop(s);
    let grow = store.grow_index().unwrap();
    drop(store);
    let (store, _) = FasterKv::recover(config()).unwrap();
    let mut s = store.start_session();
    assert_eq!(s.read(&key(0, 7)).unwrap(), Some(value(7, 0).to_vec()));
    // The growth ended: done before the close, or given up because of it.
    assert!(grow.is_finished());
}
