//! Concurrency: no lost updates (RMW counters across threads, while the log moves records
//! through the read-only and fuzzy regions), no torn reads (self-checking values of varying
//! length, read while updated in place), and a multi-session stress test against per-thread
//! models.

use faster::{AddU64, Config, FasterKv, LogDevice, Rmw, Status};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use faster_tests::Rng;

fn config(dir: &std::path::Path, memory: u64, page: u64) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::Memory)
        .with_log_memory(memory)
        .with_page_size(page)
        .with_mutable_fraction(0.5)
        .with_table_bits(10)
}

fn as_u64(v: Option<Vec<u8>>) -> u64 {
    u64::from_le_bytes(v.expect("present").try_into().expect("8 bytes"))
}

#[test]
fn no_lost_updates() {
    const THREADS: u64 = 4;
    const INCREMENTS: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    // Small memory and a small mutable region: the counter keeps moving from the mutable
    // region through the fuzzy region to read-only, so all three RMW paths race.
    let store = FasterKv::open(config(dir.path(), 128 << 10, 8 << 10)).unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                let mut s = store.start_session();
                let mut rng = Rng::new(t + 1);
                let junk = vec![t as u8; 300];
                for i in 0..INCREMENTS {
                    s.rmw(b"counter", &1u64.to_le_bytes(), &AddU64).unwrap();
                    // An 8-byte key: the store's fast path races the general one.
                    s.rmw(b"counter8", &1u64.to_le_bytes(), &AddU64).unwrap();
                    s.rmw(format!("mine{t}").as_bytes(), &2u64.to_le_bytes(), &AddU64)
                        .unwrap();
                    if i % 4 == 0 {
                        let k = rng.below(1000);
                        s.upsert(format!("junk{t}-{k}").as_bytes(), &junk).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut s = store.start_session();
    assert_eq!(as_u64(s.read(b"counter").unwrap()), THREADS * INCREMENTS);
    assert_eq!(as_u64(s.read(b"counter8").unwrap()), THREADS * INCREMENTS);
    for t in 0..THREADS {
        assert_eq!(
            as_u64(s.read(format!("mine{t}").as_bytes()).unwrap()),
            2 * INCREMENTS
        );
    }
    assert!(
        store.hlog().read_only_address().raw() > 0,
        "records went read-only"
    );
}

/// A value that checks itself: byte `i` is `seed + i`, and the length follows from the seed.
fn self_checking(seed: u8) -> Vec<u8> {
    let len = 1 + (seed as usize * 37) % 300;
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

fn check(v: &[u8]) -> bool {
    !v.is_empty() && v == self_checking(v[0]).as_slice()
}

/// Replaces a self-checking value by the one of the next seed (whose length differs).
struct NextSeed;

impl Rmw for NextSeed {
    fn initial(&self, _input: &[u8]) -> Vec<u8> {
        self_checking(0)
    }
    fn in_place(&self, _input: &[u8], value: &mut [u8]) -> bool {
        let next = self_checking(value[0].wrapping_add(1));
        if next.len() != value.len() {
            return false;
        }
        value.copy_from_slice(&next);
        true
    }
    fn copy(&self, _input: &[u8], old: &[u8]) -> Vec<u8> {
        self_checking(old.first().copied().unwrap_or(0).wrapping_add(1))
    }
}

#[test]
fn no_torn_reads() {
    const WRITES: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(config(dir.path(), 1 << 20, 64 << 10)).unwrap();
    let mut s = store.start_session();
    // The first record is as long as any value, so later values fit in place.
    let longest = (0..=255u8).map(self_checking).max_by_key(Vec::len).unwrap();
    for k in [&b"a"[..], b"b"] {
        s.upsert(k, &longest).unwrap();
    }
    drop(s);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (store.clone(), done.clone());
        thread::spawn(move || {
            let mut s = store.start_session();
            let mut rng = Rng::new(7);
            for i in 0..WRITES {
                if i % 2 == 0 {
                    s.upsert(b"a", &self_checking(rng.next_u64() as u8))
                        .unwrap();
                } else {
                    s.rmw(b"b", &[], &NextSeed).unwrap();
                }
                if i % 1000 == 0 {
                    // Now and then a value longer than the record: copied to the tail.
                    s.upsert(b"c", &vec![1; 2000 + i as usize % 7]).unwrap();
                }
            }
            done.store(true, Ordering::Release);
        })
    };
    let reader = {
        let (store, done) = (store.clone(), done.clone());
        thread::spawn(move || {
            let mut s = store.start_session();
            let mut reads = 0u64;
            while !done.load(Ordering::Acquire) || reads < 1000 {
                for k in [&b"a"[..], b"b"] {
                    let v = s.read(k).unwrap().expect("present");
                    assert!(check(&v), "torn read of {k:?}: {v:?}");
                    reads += 1;
                }
            }
            reads
        })
    };
    writer.join().unwrap();
    let reads = reader.join().unwrap();
    assert!(reads >= 1000);
    let mut s = store.start_session();
    let b = s.read(b"b").unwrap().unwrap();
    assert!(check(&b));
    let steps = (WRITES / 2 % 256) as u8;
    assert_eq!(
        b[0],
        longest[0].wrapping_add(steps),
        "every RMW applied once"
    );
}

#[test]
fn multi_session_stress() {
    const THREADS: u64 = 4;
    const OPS: u64 = 6_000;
    const KEYS: u64 = 150;
    let dir = tempfile::tempdir().unwrap();
    // 64 KiB of memory in 4 KiB pages: reads and RMWs often go to disk.
    let store = FasterKv::open(config(dir.path(), 64 << 10, 4 << 10).with_table_bits(4)).unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                let mut s = store.start_session();
                let mut rng = Rng::new(100 + t);
                let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
                let key = |k: u64| format!("t{t}k{k}").into_bytes();
                let mut shared = 0;
                let bad = Arc::new(Mutex::new(0u64));
                let mut pending = 0;
                for op in 0..OPS {
                    let k = rng.below(KEYS);
                    let choice = rng.below(10);
                    if !(3..=5).contains(&choice) {
                        // Pending reads expect the value at issue time: finish them before
                        // any write.
                        s.complete_pending(true).unwrap();
                    }
                    match choice {
                        0..=2 => {
                            let len = rng.below(200) as usize;
                            let v = vec![(op % 251) as u8; len];
                            s.upsert(&key(k), &v).unwrap();
                            model.insert(k, v);
                        }
                        3 | 4 => {
                            let want = model.get(&k).cloned();
                            assert_eq!(s.read(&key(k)).unwrap(), want, "t{t}k{k}");
                        }
                        5 => {
                            // Non-blocking: the disk read may complete on another thread
                            // (one helping inside an allocation) and come back here.
                            let want = model.get(&k).cloned();
                            let bad = bad.clone();
                            let st = s
                                .read_async(&key(k), move |r| {
                                    if r.unwrap() != want {
                                        *bad.lock().unwrap() += 1;
                                    }
                                })
                                .unwrap();
                            pending += u64::from(st == Status::Pending);
                        }
                        6 => {
                            s.delete(&key(k)).unwrap();
                            model.remove(&k);
                        }
                        7 | 8 => {
                            s.rmw(&key(k), &3u64.to_le_bytes(), &AddU64).unwrap();
                            let old = model.get(&k).map_or(0, |v| AddU64::decode(v));
                            model.insert(k, old.wrapping_add(3).to_le_bytes().to_vec());
                        }
                        _ => {
                            s.rmw(b"shared", &1u64.to_le_bytes(), &AddU64).unwrap();
                            shared += 1;
                        }
                    }
                }
                s.complete_pending(true).unwrap();
                assert_eq!(
                    *bad.lock().unwrap(),
                    0,
                    "non-blocking reads of t{t} were wrong"
                );
                (model, shared, pending)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut s = store.start_session();
    let mut shared = 0;
    let mut pending = 0;
    for (t, (model, n, p)) in results.into_iter().enumerate() {
        shared += n;
        pending += p;
        for k in 0..KEYS {
            let got = s.read(format!("t{t}k{k}").as_bytes()).unwrap();
            assert_eq!(got, model.get(&k).cloned(), "t{t}k{k}");
        }
    }
    assert_eq!(as_u64(s.read(b"shared").unwrap()), shared);
    assert!(
        store.hlog().head_address().raw() > 0,
        "records were evicted"
    );
    assert!(pending > 0, "some non-blocking reads went to disk");
}

#[test]
fn rmw_waits_out_the_fuzzy_region_and_blind_writes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    // 128 frames of 8 KiB, 12 of them mutable: records go read-only long before eviction.
    let store = FasterKv::open(
        config(dir.path(), 1 << 20, 8 << 10)
            .with_mutable_fraction(0.1)
            .with_table_bits(8),
    )
    .unwrap();
    let mut idle = store.start_session();
    let mut s = store.start_session();
    s.rmw(b"counter", &1u64.to_le_bytes(), &AddU64).unwrap();
    s.upsert(b"blind", b"v0").unwrap();
    // Push the read-only boundary past both records. `idle` does not refresh, so
    // `safe_read_only` stays behind: the records sit in the fuzzy region.
    for i in 0..20 * 8 {
        s.upsert(format!("junk{i}").as_bytes(), &[0; 1000]).unwrap();
    }
    let hlog = store.hlog();
    assert!(hlog.safe_read_only_address() < hlog.read_only_address());
    // Blind writes copy-update in the fuzzy region without waiting.
    s.upsert(b"blind", b"v1").unwrap();
    s.delete(b"blind").unwrap();
    assert_eq!(s.read(b"blind").unwrap(), None);

    let finished = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = {
        let finished = finished.clone();
        thread::spawn(move || {
            tx.send(()).unwrap();
            // Must not copy the counter while a thread that saw it mutable (`idle`) may
            // still update it in place: it waits until `safe_read_only` passes it.
            s.rmw(b"counter", &1u64.to_le_bytes(), &AddU64).unwrap();
            finished.store(true, Ordering::Release);
            s
        })
    };
    rx.recv().unwrap();
    for _ in 0..1000 {
        assert!(
            !finished.load(Ordering::Acquire),
            "the RMW copied a record from the fuzzy region"
        );
        thread::yield_now();
    }
    idle.refresh().unwrap();
    let mut s = worker.join().unwrap();
    assert!(finished.load(Ordering::Acquire));
    assert_eq!(as_u64(s.read(b"counter").unwrap()), 2);
    drop(idle);
}

#[test]
fn pending_rmws_on_shared_keys_lose_nothing() {
    const THREADS: u64 = 2;
    const ROUNDS: u64 = 20;
    const KEYS: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(config(dir.path(), 64 << 10, 4 << 10).with_table_bits(3)).unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                let mut s = store.start_session();
                let done = Arc::new(Mutex::new(0u64));
                let mut pending = 0;
                for round in 0..ROUNDS {
                    for k in 0..KEYS {
                        let done = done.clone();
                        let st = s
                            .rmw_async(
                                format!("c{k}").as_bytes(),
                                &1u64.to_le_bytes(),
                                AddU64,
                                move |r| {
                                    r.unwrap();
                                    *done.lock().unwrap() += 1;
                                },
                            )
                            .unwrap();
                        pending += u64::from(st == Status::Pending);
                        if k % 8 == 0 {
                            s.complete_pending(false).unwrap();
                        }
                    }
                    // Push the counters out of memory again.
                    for i in 0..100 {
                        s.upsert(format!("junk{t}-{round}-{i}").as_bytes(), &[0; 1000])
                            .unwrap();
                    }
                    s.complete_pending(true).unwrap();
                }
                assert_eq!(*done.lock().unwrap(), ROUNDS * KEYS);
                pending
            })
        })
        .collect();
    let pending: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(pending > 0, "some RMWs went to disk");
    let mut s = store.start_session();
    for k in 0..KEYS {
        assert_eq!(
            as_u64(s.read(format!("c{k}").as_bytes()).unwrap()),
            THREADS * ROUNDS,
            "counter {k}"
        );
    }
}
