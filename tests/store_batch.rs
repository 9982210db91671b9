//! The batched API (`read_batch`, `upsert_batch`, `rmw_batch`, `delete_batch`): batches agree
//! with a `HashMap` model (keys in the mutable region, read-only and on disk, tag collisions),
//! every batched operation takes the next serial number, errors stop a batch where the
//! per-op form would fail, and concurrent batched RMWs lose no update.

use faster::{AddU64, BatchOp, Config, Error, FasterKv, LogDevice};
use std::collections::HashMap;
use std::thread;

use faster_tests::Rng;

fn key(k: u64) -> Vec<u8> {
    // Keys of different lengths.
    format!("k{k}-{}", "y".repeat(k as usize % 7)).into_bytes()
}

fn value(k: u64, round: u64, len: usize) -> Vec<u8> {
    let b = (k ^ round.wrapping_mul(31)) as u8;
    (0..len).map(|i| b.wrapping_add(i as u8)).collect()
}

fn add(old: Option<&Vec<u8>>, delta: u64) -> Vec<u8> {
    let old = old.map_or(0, |v| AddU64::decode(v));
    old.wrapping_add(delta).to_le_bytes().to_vec()
}

/// A store whose small log memory keeps pushing records to disk, and whose small index makes
/// chains long (tags collide in memory and on disk).
fn small_store(dir: &std::path::Path) -> FasterKv {
    FasterKv::open(
        Config::new(dir)
            .with_log_device(LogDevice::Memory)
            .with_log_memory(32 << 10)
            .with_page_size(4 << 10)
            .with_mutable_fraction(0.25)
            .with_table_bits(2),
    )
    .unwrap()
}

#[test]
fn batches_agree_with_a_model_across_memory_and_disk() {
    const KEYS: u64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let mut s = store.start_session();
    let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut rng = Rng::new(7);
    let mut serial = 0u64;
    for round in 0..200u64 {
        // Batch lengths across the window size: 0, 1, less than, exactly and more than a window.
        let len = [0, 1, 5, 16, 17, 40][rng.below(6) as usize];
        let keys: Vec<u64> = (0..len).map(|_| rng.below(KEYS)).collect();
        match rng.below(4) {
            0 => {
                let items: Vec<(Vec<u8>, Vec<u8>)> = keys
                    .iter()
                    .map(|&k| {
                        (
                            key(k),
                            value(k, round, 1 + (k as usize * 13 + round as usize) % 90),
                        )
                    })
                    .collect();
                s.upsert_batch(&items).unwrap();
                for (&k, (_, v)) in keys.iter().zip(&items) {
                    model.insert(k, v.clone());
                }
            }
            1 => {
                let items: Vec<(Vec<u8>, [u8; 8])> = keys
                    .iter()
                    .map(|&k| (key(k), (k + round).to_le_bytes()))
                    .collect();
                s.rmw_batch(&items, &AddU64).unwrap();
                for &k in &keys {
                    let new = add(model.get(&k), k + round);
                    model.insert(k, new);
                }
            }
            2 => {
                let ks: Vec<Vec<u8>> = keys.iter().map(|&k| key(k)).collect();
                s.delete_batch(&ks).unwrap();
                for k in &keys {
                    model.remove(k);
                }
            }
            _ => {
                let ks: Vec<Vec<u8>> = keys.iter().map(|&k| key(k)).collect();
                let mut seen = Vec::new();
                s.read_batch(&ks, |i, v| seen.push((i, v.map(<[u8]>::to_vec))))
                    .unwrap();
                let want: Vec<_> = keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (i, model.get(k).cloned()))
                    .collect();
                assert_eq!(seen, want, "round {round}");
            }
        }
        serial += len as u64;
        assert_eq!(
            s.serial(),
            serial,
            "one serial number per batched operation"
        );
    }
    let hlog = store.hlog();
    assert!(
        hlog.head_address().raw() > 64,
        "records were evicted to disk"
    );
    // Every key, read back in one batch (most from disk) and one by one.
    let all: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let mut n = 0;
    s.read_batch(&all, |i, v| {
        assert_eq!(
            v.map(<[u8]>::to_vec),
            model.get(&(i as u64)).cloned(),
            "key {i}"
        );
        n += 1;
    })
    .unwrap();
    assert_eq!(n, KEYS);
    for k in 0..KEYS {
        assert_eq!(s.read(&key(k)).unwrap(), model.get(&k).cloned(), "key {k}");
    }
    assert_eq!(s.serial(), serial + 2 * KEYS);
}

#[test]
fn batched_rmws_of_on_disk_keys_copy_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let mut s = store.start_session();
    let counters: Vec<([u8; 8], [u8; 8])> = (0..20u64)
        .map(|k| (k.to_le_bytes(), k.to_le_bytes()))
        .collect();
    s.rmw_batch(&counters, &AddU64).unwrap();
    // Push the counters to disk.
    let filler = vec![0u8; 500];
    let junk: Vec<(Vec<u8>, &[u8])> = (0..400u64)
        .map(|i| (format!("junk{i}").into_bytes(), &filler[..]))
        .collect();
    s.upsert_batch(&junk).unwrap();
    let head = store.hlog().head_address();
    assert!(head.raw() > 4096, "the counters' page was evicted");
    s.rmw_batch(&counters, &AddU64).unwrap();
    s.rmw_batch(&counters, &AddU64).unwrap();
    let keys: Vec<[u8; 8]> = counters.iter().map(|c| c.0).collect();
    s.read_batch(&keys, |i, v| {
        assert_eq!(v, Some(&(3 * i as u64).to_le_bytes()[..]), "counter {i}");
    })
    .unwrap();
}

#[test]
fn an_error_stops_the_batch_after_taking_its_serial_number() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let mut s = store.start_session();
    let big = vec![1u8; 8 << 10];
    let items: Vec<(&[u8], &[u8])> =
        vec![(b"a", b"1"), (b"b", b"2"), (b"too big", &big), (b"c", b"3")];
    assert!(matches!(
        s.upsert_batch(&items),
        Err(Error::ValueTooLarge { .. })
    ));
    assert_eq!(s.serial(), 3, "the two before and the failing one");
    let mut got = Vec::new();
    s.read_batch(&[b"a", b"b", b"c"], |i, v| {
        got.push((i, v.map(<[u8]>::to_vec)))
    })
    .unwrap();
    assert_eq!(
        got,
        [
            (0, Some(b"1".to_vec())),
            (1, Some(b"2".to_vec())),
            (2, None)
        ]
    );
    store.close();
    assert!(matches!(
        s.read_batch(&[b"a"], |_, _| ()),
        Err(Error::Closed)
    ));
    // An empty batch issues nothing and cannot fail.
    s.read_batch::<&[u8]>(&[], |_, _| unreachable!()).unwrap();
}

#[test]
fn concurrent_batched_rmws_lose_no_update() {
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 2_000;
    let dir = tempfile::tempdir().unwrap();
    // A small mutable region: the counters keep moving from the mutable region through the
    // fuzzy region to read-only, so the in-place, retry and copy paths race.
    let store = FasterKv::open(
        Config::new(dir.path())
            .with_log_device(LogDevice::Memory)
            .with_log_memory(128 << 10)
            .with_page_size(8 << 10)
            .with_mutable_fraction(0.5)
            .with_table_bits(10),
    )
    .unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                let mut s = store.start_session();
                let mut rng = Rng::new(t + 11);
                let junk = vec![t as u8; 300];
                for i in 0..ROUNDS {
                    // Each batch adds 1 to every shared counter (some twice) and to its own.
                    let mut items: Vec<(Vec<u8>, [u8; 8])> = (0..8u64)
                        .map(|c| (format!("shared{c}").into_bytes(), 1u64.to_le_bytes()))
                        .collect();
                    items.push((format!("shared{}", i % 8).into_bytes(), 1u64.to_le_bytes()));
                    items.push((format!("mine{t}").into_bytes(), 2u64.to_le_bytes()));
                    s.rmw_batch(&items, &AddU64).unwrap();
                    if i % 4 == 0 {
                        let k = rng.below(500);
                        s.upsert_batch(&[(format!("junk{t}-{k}").into_bytes(), &junk)])
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut s = store.start_session();
    let shared: Vec<Vec<u8>> = (0..8u64)
        .map(|c| format!("shared{c}").into_bytes())
        .collect();
    s.read_batch(&shared, |c, v| {
        let v = AddU64::decode(v.expect("present"));
        assert_eq!(v, THREADS * (ROUNDS + ROUNDS / 8), "shared counter {c}");
    })
    .unwrap();
    for t in 0..THREADS {
        let v = s.read(format!("mine{t}").as_bytes()).unwrap().unwrap();
        assert_eq!(AddU64::decode(&v), 2 * ROUNDS);
    }
    assert!(
        store.hlog().read_only_address().raw() > 0,
        "records went read-only"
    );
}

/// Mixed batches (reads, upserts, RMWs and deletes interleaved, as YCSB-A issues them) agree
/// with a `HashMap` model, with keys in memory and on disk, and take one serial each.
#[test]
fn mixed_batches_agree_with_a_model() {
    const KEYS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let mut s = store.start_session();
    let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut rng = Rng::new(11);
    let mut serial = 0u64;
    let one = 1u64.to_le_bytes();
    for round in 0..150u64 {
        let len = [1, 7, 16, 33][rng.below(4) as usize];
        let plan: Vec<(u64, u64, Vec<u8>, Vec<u8>)> = (0..len)
            .map(|j| {
                let k = rng.below(KEYS);
                (
                    rng.below(4),
                    k,
                    key(k),
                    value(k, round * 100 + j, 8 + (k as usize % 24)),
                )
            })
            .collect();
        let ops: Vec<BatchOp<'_>> = plan
            .iter()
            .map(|(kind, _, k, v)| match kind {
                0 => BatchOp::Read(k),
                1 => BatchOp::Upsert(k, v),
                2 => BatchOp::Rmw(k, &one),
                _ => BatchOp::Delete(k),
            })
            .collect();
        // What the model says each read at position i sees, applying the ops in order.
        let mut expected = Vec::new();
        for (i, (kind, k, _, v)) in plan.iter().enumerate() {
            match kind {
                0 => expected.push((i, model.get(k).cloned())),
                1 => {
                    model.insert(*k, v.clone());
                }
                2 => {
                    let new = add(model.get(k), 1);
                    model.insert(*k, new);
                }
                _ => {
                    model.remove(k);
                }
            }
        }
        let mut got = Vec::new();
        s.batch(&ops, &AddU64, |i, v| got.push((i, v.map(<[u8]>::to_vec))))
            .unwrap();
        assert_eq!(got, expected, "round {round}");
        serial += len;
        assert_eq!(s.serial(), serial);
    }
    assert!(
        store.hlog().head_address().raw() > 0,
        "records were evicted"
    );
    for k in 0..KEYS {
        assert_eq!(s.read(&key(k)).unwrap(), model.get(&k).cloned(), "key {k}");
    }
}
