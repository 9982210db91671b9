//! Multi-threaded properties of the real index: one entry per (chain, tag), the same slot for
//! every thread, overflow chains growing under load, exhaustion as an error.
#![cfg(not(loom))]

use std::collections::{HashMap, HashSet};
use std::sync::Barrier;

use faster_index::{HashIndex, IndexConfig, IndexError, KeyHash, SlotLocation};

/// xorshift64*, seeded (seeds are printed by the tests).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
    }
}

/// Asserts that no chain holds two entries with one tag and that none is tentative; returns
/// the (home bucket, tag) pairs present.
fn unique_entries(index: &HashIndex) -> HashSet<(u64, u16)> {
    let mut seen = HashSet::new();
    index.for_each_entry(|home, slot, e| {
        assert!(!e.is_tentative(), "tentative entry left at {slot:?}");
        assert!(
            seen.insert((home, e.tag())),
            "duplicate tag {} in chain {home}",
            e.tag()
        );
    });
    seen
}

/// Every thread runs find_or_create over the same keys, each in its own order, and stores
/// its own address: each key ends up with exactly one entry, the same slot for every thread.
#[test]
fn same_keys_from_many_threads_give_one_entry_each() {
    const THREADS: usize = 4;
    const KEYS: u64 = 20_000;
    let seed = 0x5EED_1234_u64;
    println!("seed {seed:#x}");
    let index = HashIndex::new(IndexConfig::new(10, 4096)).unwrap();
    let barrier = Barrier::new(THREADS);
    let results: Vec<HashMap<u64, SlotLocation>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (index, barrier) = (&index, &barrier);
                s.spawn(move || {
                    let mut keys: Vec<u64> = (0..KEYS).collect();
                    Rng(seed + t as u64).shuffle(&mut keys);
                    barrier.wait();
                    let mut got = HashMap::new();
                    for k in keys {
                        let (slot, e) = index
                            .find_or_create_entry(KeyHash::of(&k.to_le_bytes()))
                            .unwrap();
                        assert!(!e.is_tentative());
                        // Keys sharing (bucket, tag) share the entry; any address will do.
                        let _ = slot.compare_exchange_address(e, 0x1000 + t as u64);
                        got.insert(k, slot.location());
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for k in 0..KEYS {
        let first = results[0][&k];
        for r in &results[1..] {
            assert_eq!(r[&k], first, "threads disagree on the slot of key {k}");
        }
        let (slot, e) = index.find_entry(KeyHash::of(&k.to_le_bytes())).unwrap();
        assert_eq!(slot.location(), first);
        assert!((0x1000..0x1000 + THREADS as u64).contains(&e.address()));
    }
    let present = unique_entries(&index);
    let expected: HashSet<(u64, u16)> = (0..KEYS)
        .map(|k| {
            let h = KeyHash::of(&k.to_le_bytes());
            (h.bucket(10), h.tag())
        })
        .collect();
    assert_eq!(present, expected);
    let stats = index.stats();
    assert_eq!(stats.entries, expected.len() as u64);
    assert_eq!(stats.tentative_entries, 0);
    assert!(stats.overflow_buckets > 0, "{stats:?}");
}

/// A table of four buckets and thousands of tags: long chains grow while several threads
/// append to them, and every key stays findable without duplicates.
#[test]
fn overflow_chains_grow_under_load() {
    const THREADS: usize = 4;
    const KEYS: u64 = 4_000;
    let seed = 0xC4A1_0000_u64;
    println!("seed {seed:#x}");
    let index = HashIndex::new(IndexConfig::new(2, 2048)).unwrap();
    // Distinct (bucket, tag) for every key: bucket k % 4, tag k / 4 + 1.
    let hash = |k: u64| KeyHash::from_raw(((k / 4 + 1) << 48) | (k % 4));
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (index, barrier) = (&index, &barrier);
            s.spawn(move || {
                // Half of the keys are shared by all threads, half are this thread's own.
                let mut keys: Vec<u64> = (0..KEYS)
                    .filter(|k| k % 2 == 0 || (k / 2) as usize % THREADS == t)
                    .collect();
                Rng(seed + t as u64).shuffle(&mut keys);
                barrier.wait();
                for k in keys {
                    let (slot, e) = index.find_or_create_entry(hash(k)).unwrap();
                    let _ = slot.compare_exchange_address(e, 0x100 + k);
                    let (found, _) = index.find_entry(hash(k)).expect("inserted key not found");
                    assert_eq!(found, slot);
                }
            });
        }
    });
    for k in 0..KEYS {
        let (_, e) = index.find_entry(hash(k)).expect("key lost");
        assert_eq!(e.address(), 0x100 + k);
    }
    let present = unique_entries(&index);
    assert_eq!(present.len() as u64, KEYS);
    let stats = index.stats();
    assert_eq!(stats.entries, KEYS);
    // 1000 entries per chain need at least 143 buckets each.
    assert!(stats.max_chain >= 143, "{stats:?}");
    assert!(stats.overflow_buckets >= 4 * 142, "{stats:?}");
}

#[test]
fn exhaustion_is_an_error_and_deletion_frees_a_slot() {
    let index = HashIndex::new(IndexConfig::new(0, 1)).unwrap();
    let hash = |t: u64| KeyHash::from_raw(t << 48);
    for t in 1..=14 {
        index.find_or_create_entry(hash(t)).unwrap();
    }
    assert!(matches!(
        index.find_or_create_entry(hash(15)),
        Err(IndexError::OverflowExhausted { capacity: 1 })
    ));
    // Existing keys are still found and created without a new bucket.
    assert!(index.find_or_create_entry(hash(3)).is_ok());
    let (slot, e) = index.find_entry(hash(3)).unwrap();
    slot.delete(e).unwrap();
    assert!(index.find_entry(hash(3)).is_none());
    let (again, _) = index.find_or_create_entry(hash(15)).unwrap();
    assert_eq!(again, slot, "the freed slot is reused");
    assert_eq!(index.stats().entries, 14);
}

#[test]
fn invalid_config_is_an_error() {
    assert!(matches!(
        HashIndex::new(IndexConfig::new(faster_index::MAX_TABLE_BITS + 1, 0)),
        Err(IndexError::InvalidConfig(_))
    ));
    assert!(matches!(
        HashIndex::new(IndexConfig::new(1, faster_index::MAX_OVERFLOW_BUCKETS + 1)),
        Err(IndexError::InvalidConfig(_))
    ));
}

#[test]
fn index_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<HashIndex>();
}

/// Threads create, update and delete a handful of tags in one bucket chain at random: the
/// protocol never leaves two entries with one tag, nor a tentative entry, behind.
#[test]
fn creates_and_deletes_race_without_duplicates() {
    const THREADS: u64 = 4;
    const OPS: u64 = 20_000;
    let seed = 0xDE1E_7E00_u64;
    println!("seed {seed:#x}");
    let index = HashIndex::new(IndexConfig::new(0, 64)).unwrap();
    let barrier = Barrier::new(THREADS as usize);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (index, barrier) = (&index, &barrier);
            s.spawn(move || {
                let mut rng = Rng(seed + t);
                barrier.wait();
                for i in 0..OPS {
                    let hash = KeyHash::from_raw((1 + rng.next() % 12) << 48);
                    let (slot, e) = index.find_or_create_entry(hash).unwrap();
                    assert_eq!(e.tag(), hash.tag());
                    if rng.next() % 3 == 0 {
                        let _ = slot.delete(e);
                    } else {
                        let _ = slot.compare_exchange_address(e, 0x100 + i);
                    }
                }
            });
        }
    });
    let present = unique_entries(&index);
    assert!(present.len() <= 12);
    assert!(
        present
            .iter()
            .all(|&(home, tag)| home == 0 && (1..=12).contains(&tag))
    );
}

#[test]
fn recheck_trusts_a_slot_only_while_it_holds_the_tag() {
    let index = HashIndex::new(IndexConfig::new(0, 1)).unwrap();
    let hash = |t: u64| KeyHash::from_raw(t << 48);
    let (slot, e) = index.find_or_create_entry(hash(3)).unwrap();
    // Still the entry: the same word, as a search would find it.
    assert_eq!(index.recheck(&slot, hash(3)), Some(e));
    assert_eq!(index.find_entry(hash(3)), Some((slot, e)));
    // Freed: search again.
    slot.delete(e).unwrap();
    assert_eq!(index.recheck(&slot, hash(3)), None);
    // Reused by another tag: not this key's entry.
    let (reused, _) = index.find_or_create_entry(hash(4)).unwrap();
    assert_eq!(reused, slot, "the freed slot is reused");
    assert_eq!(index.recheck(&slot, hash(3)), None);
    assert!(index.recheck(&slot, hash(4)).is_some());
}
