//! Online doubling of the index: every key stays reachable through every growth, whether
//! its record is in memory, on disk (found by the scan pass or not) or behind a chain of
//! records of other keys; growth refuses to pass the memory limit; concurrent helpers split
//! each chunk once.

use std::collections::HashMap;
use std::sync::Arc;

use faster_index::{
    Growth, HashIndex, IndexConfig, IndexError, KeyHash, Link, TEMP_INVALID_ADDRESS,
};

/// A stand-in for the log: records at addresses `64, 72, ...`, each a key hash and the
/// previous address of its chain; records below `head` are "on disk".
#[derive(Default)]
struct Log {
    records: Vec<(KeyHash, u64)>,
    head: u64,
}

impl Log {
    fn append(&mut self, hash: KeyHash, previous: u64) -> u64 {
        self.records.push((hash, previous));
        56 + 8 * self.records.len() as u64
    }

    fn get(&self, address: u64) -> Option<(KeyHash, u64)> {
        let i = address.checked_sub(64)? / 8;
        self.records.get(i as usize).copied()
    }

    fn link(&self, address: u64) -> Link {
        match self.get(address) {
            None => Link::Gone,
            Some(_) if address < self.head => Link::Unknown,
            Some((hash, previous)) => Link::Record { hash, previous },
        }
    }

    /// The newest record of `hash` reachable from its index entry, as a store's lookup walks.
    fn lookup(&self, index: &HashIndex, hash: KeyHash) -> Option<u64> {
        let (_, e) = index.find_entry(hash)?;
        let mut a = e.address();
        while let Some((h, prev)) = self.get(a) {
            if h == hash {
                return Some(a);
            }
            a = prev;
        }
        None
    }
}

fn hashes(seed: u64, n: usize) -> Vec<KeyHash> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            KeyHash::from_raw(x)
        })
        .collect()
}

/// Upserts `hash` with a new record at the head of its chain.
fn upsert(index: &HashIndex, log: &mut Log, hash: KeyHash) -> u64 {
    let (slot, e) = index.find_or_create_entry(hash).unwrap();
    let prev = if e.address() == TEMP_INVALID_ADDRESS {
        0
    } else {
        e.address()
    };
    let a = log.append(hash, prev);
    slot.compare_exchange_address(e, a).unwrap();
    a
}

/// Runs a whole growth on this thread, with the scan pass over the records below the head.
fn grow(index: &HashIndex, log: &Log) -> u32 {
    let link = |a| log.link(a);
    index.begin_grow().unwrap();
    assert_eq!(index.help_grow(&link), Growth::Finishing);
    for (i, &(hash, previous)) in log.records.iter().enumerate() {
        let a = 64 + 8 * i as u64;
        if a < log.head {
            index.place_scanned(a, hash, previous, &link).unwrap();
        }
    }
    index.finish_grow().unwrap()
}

fn check_all(index: &HashIndex, log: &Log, newest: &HashMap<u64, u64>) {
    for (&h, &a) in newest {
        assert_eq!(
            log.lookup(index, KeyHash::from_raw(h)),
            Some(a),
            "key {h:#x} after growth to 2^{}",
            index.table_bits()
        );
    }
    let s = index.stats();
    assert_eq!(s.tentative_entries, 0);
    // One entry per (chain, tag).
    let mut seen = std::collections::HashSet::new();
    index.for_each_entry(|home, _, e| {
        assert!(
            seen.insert((home, e.tag())),
            "two entries with tag {}",
            e.tag()
        );
    });
}

#[test]
fn keys_stay_reachable_through_growths_in_memory_and_on_disk() {
    for on_disk in [0.0, 0.5, 1.0] {
        let index = HashIndex::new(IndexConfig::new(2, 1 << 20)).unwrap();
        let mut log = Log::default();
        let mut newest = HashMap::new();
        let keys = hashes(7, 3000);
        for (round, chunk) in keys.chunks(600).enumerate() {
            for &h in chunk {
                newest.insert(h.raw(), upsert(&index, &mut log, h));
            }
            // Updates make chains of several records of one key.
            for &h in chunk.iter().step_by(5) {
                newest.insert(h.raw(), upsert(&index, &mut log, h));
            }
            log.head = 64 + (log.records.len() as f64 * on_disk) as u64 * 8;
            let bits = index.table_bits();
            assert_eq!(grow(&index, &log), bits + 1, "round {round}");
            check_all(&index, &log, &newest);
        }
        assert_eq!(index.table_bits(), 7);
    }
}

#[test]
fn chains_shared_by_keys_of_both_sides_are_split_by_tracing_back() {
    // Two keys with the same tag and old bucket (0 of 1) but different sides after
    // doubling: one chain holds both; after growth each side's entry reaches its key.
    let a = KeyHash::from_raw(0x1234 << 48);
    let b = KeyHash::from_raw((0x1234 << 48) | 1);
    assert_eq!(a.tag(), b.tag());
    for head in [0, 1 << 20] {
        let index = HashIndex::new(IndexConfig::new(0, 16)).unwrap();
        let mut log = Log::default();
        let mut newest = HashMap::new();
        newest.insert(a.raw(), upsert(&index, &mut log, a));
        newest.insert(b.raw(), upsert(&index, &mut log, b));
        newest.insert(a.raw(), upsert(&index, &mut log, a));
        // The entry's chain: a(2) -> b(1) -> a(0); both keys behind one entry.
        assert_eq!(index.stats().entries, 1);
        log.head = head;
        grow(&index, &log);
        check_all(&index, &log, &newest);
        assert_eq!(index.stats().entries, 2, "one entry per side");
    }
}

#[test]
fn entries_the_scan_does_not_place_go_to_both_sides() {
    let index = HashIndex::new(IndexConfig::new(3, 1 << 16)).unwrap();
    let mut log = Log::default();
    let mut newest = HashMap::new();
    for &h in &hashes(11, 500) {
        newest.insert(h.raw(), upsert(&index, &mut log, h));
    }
    let before = index.stats().entries;
    log.head = u64::MAX; // everything on disk
    let link = |a| log.link(a);
    index.begin_grow().unwrap();
    assert_eq!(index.help_grow(&link), Growth::Finishing);
    // No scan pass: each entry is copied to both sides.
    index.finish_grow().unwrap();
    assert_eq!(index.stats().entries, 2 * before);
    check_all(&index, &log, &newest);
    // A second growth with the scan places them exactly.
    let index2 = HashIndex::new(IndexConfig::new(3, 1 << 16)).unwrap();
    let mut log2 = Log::default();
    for &h in &hashes(11, 500) {
        upsert(&index2, &mut log2, h);
    }
    log2.head = u64::MAX;
    grow(&index2, &log2);
    // Exactly, but for chains shared by two keys (a tag collision in a bucket): their older
    // record may be of either side, so the other side gets an entry too.
    let entries = index2.stats().entries;
    assert!(
        (before..before + 10).contains(&entries),
        "{entries} of {before}"
    );
}

#[test]
fn helpers_on_several_threads_split_each_chunk_once() {
    // 2^16 buckets: four chunks of the split.
    let index = Arc::new(HashIndex::new(IndexConfig::new(16, 1 << 20)).unwrap());
    let mut log = Log::default();
    let mut newest = HashMap::new();
    for &h in &hashes(3, 400_000) {
        newest.insert(h.raw(), upsert(&index, &mut log, h));
    }
    let log = Arc::new(log);
    index.begin_grow().unwrap();
    let helpers: Vec<_> = (0..4)
        .map(|_| {
            let (index, log) = (index.clone(), log.clone());
            std::thread::spawn(move || {
                let link = |a| log.link(a);
                loop {
                    match index.help_grow(&link) {
                        Growth::Splitting => std::thread::yield_now(),
                        other => return other,
                    }
                }
            })
        })
        .collect();
    for h in helpers {
        assert_eq!(h.join().unwrap(), Growth::Finishing);
    }
    assert_eq!(index.finish_grow().unwrap(), 17);
    assert_eq!(index.help_grow(&|_| Link::Gone), Growth::Idle);
    check_all(&index, &log, &newest);
    assert!(
        index.release_retired() > 0,
        "the old table's memory goes back"
    );
    assert_eq!(index.release_retired(), 0);
}

#[test]
fn the_memory_limit_stops_growth_and_new_keys_but_not_existing_ones() {
    // 2^4 buckets (1 KiB) and 4 KiB in all: growth to 2^5 (2 KiB more) still fits once.
    let index = HashIndex::new(IndexConfig::new(4, 1 << 16).with_memory_limit(4096)).unwrap();
    let mut log = Log::default();
    assert!(!index.wants_growth());
    let mut stored = Vec::new();
    let mut refused = None;
    for &h in &hashes(5, 10_000) {
        match index.find_or_create_entry(h) {
            Ok((slot, e)) => {
                let a = log.append(h, 0);
                slot.compare_exchange_address(e, a).unwrap();
                stored.push((h, a));
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(refused, Some(IndexError::MemoryLimit { limit: 4096, .. })),
        "{refused:?}"
    );
    assert!(
        index.memory_bytes() <= 4096 + 64 * 1024,
        "{}",
        index.memory_bytes()
    );
    for &(h, a) in &stored {
        assert_eq!(log.lookup(&index, h), Some(a));
        // Existing keys can still be found (and so updated).
        assert!(index.find_or_create_entry(h).is_ok());
    }
    // The overflow chunk already mapped (64 KiB) leaves no room for a doubled table.
    assert!(matches!(
        index.begin_grow(),
        Err(IndexError::MemoryLimit { .. })
    ));
    assert!(!index.wants_growth());
}

#[test]
fn wants_growth_follows_the_overflow_threshold() {
    let index = HashIndex::new(IndexConfig::new(6, 1 << 16)).unwrap();
    let mut log = Log::default();
    let mut n = 0;
    for &h in &hashes(9, 100_000) {
        upsert(&index, &mut log, h);
        n += 1;
        if index.wants_growth() {
            break;
        }
    }
    // 64 buckets, 4 overflow buckets: about four keys a bucket.
    assert!((150..=500).contains(&n), "{n} keys");
    assert!(index.stats().overflow_buckets >= 64 / faster_index::GROW_OVERFLOW_FRACTION);
    grow(&index, &log);
    assert!(!index.wants_growth());
}

#[test]
fn a_cancelled_growth_leaves_the_index_as_it_was() {
    let index = HashIndex::new(IndexConfig::new(2, 1024)).unwrap();
    let mut log = Log::default();
    let mut newest = HashMap::new();
    for &h in &hashes(13, 100) {
        newest.insert(h.raw(), upsert(&index, &mut log, h));
    }
    index.begin_grow().unwrap();
    assert!(index.is_growing());
    index.cancel_grow();
    assert!(!index.is_growing());
    assert_eq!(index.table_bits(), 2);
    check_all(&index, &log, &newest);
    assert_eq!(grow(&index, &log), 3);
    check_all(&index, &log, &newest);
}

#[test]
fn tables_of_2_16_buckets_and_more_split_by_tags_alone() {
    let index = HashIndex::new(IndexConfig::new(16, 1 << 20)).unwrap();
    let mut log = Log::default();
    let mut newest = HashMap::new();
    for &h in &hashes(17, 300_000) {
        newest.insert(h.raw(), upsert(&index, &mut log, h));
    }
    for &h in hashes(17, 300_000).iter().step_by(7) {
        newest.insert(h.raw(), upsert(&index, &mut log, h));
    }
    // Every record "on disk": the split must not need a single one.
    log.head = u64::MAX;
    let reads = std::cell::Cell::new(0u64);
    let link = |a| {
        reads.set(reads.get() + 1);
        log.link(a)
    };
    for bits in 16..19 {
        assert!(!index.growth_reads_log());
        let entries = index.stats().entries;
        index.begin_grow().unwrap();
        assert_eq!(index.help_grow(&link), Growth::Finishing);
        assert_eq!(index.finish_grow().unwrap(), bits + 1);
        assert_eq!(
            index.stats().entries,
            entries,
            "each entry on one side, exactly"
        );
        check_all(&index, &log, &newest);
    }
    assert_eq!(reads.get(), 0, "no record read");
    // Below 2^16 buckets the split reads records.
    assert!(
        HashIndex::new(IndexConfig::new(15, 16))
            .unwrap()
            .growth_reads_log()
    );
}
