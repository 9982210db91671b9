//! Loom models of the real `faster-index` code (run with `--cfg loom`).
//!
//! `cargo xtask ci` runs them in release mode with `LOOM_MAX_PREEMPTIONS=2`;
//! the four models together take well under a second once built (about 0.2 s
//! on the 2-core machine; the build takes ~30 s).
//!
//! Each model was checked against a broken variant of the code: a reader that
//! does not skip tentative entries fails `loom_reader_never_sees_tentative_entry`;
//! an insert without the rescan, or whose rescan ignores tentative entries, fails
//! `loom_tentative_insert_has_one_winner`; an insert without the `SeqCst` fence
//! between install and rescan fails `loom_tentative_insert_in_different_slots`.
//!
//! Every racing operation runs on a *spawned* thread and the model's main
//! thread only joins: with loom 0.7, work done on the main thread after a
//! spawn was not interleaved with the spawned thread's operations (a probe
//! found 4 executions where the two-spawned-threads form of the same model
//! has dozens, and a reader on the main thread never saw the writer's entry).
#![cfg(loom)]

use faster_index::{EntrySlot, HashEntry, HashIndex, IndexConfig, KeyHash, SlotLocation};
use loom::sync::Arc;
use loom::thread;

/// Entries in the chain of main bucket `home` with `tag`: (non-tentative, tentative).
fn count_tag(index: &HashIndex, home: u64, tag: u16) -> (usize, usize) {
    let (mut done, mut tentative) = (0, 0);
    index.for_each_entry(|h, _: EntrySlot<'_>, e: HashEntry| {
        if h == home && e.tag() == tag {
            if e.is_tentative() {
                tentative += 1;
            } else {
                done += 1;
            }
        }
    });
    (done, tentative)
}

/// Runs `f(index)` on a spawned thread.
fn spawn<T: Send + 'static>(
    index: &Arc<HashIndex>,
    f: impl FnOnce(&HashIndex) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let index = index.clone();
    thread::spawn(move || f(&index))
}

/// Two threads create the entry of the same hash at once: both get the same slot, and the
/// bucket ends with exactly one non-tentative entry with the tag and no tentative one.
#[test]
fn loom_tentative_insert_has_one_winner() {
    loom::model(|| {
        let index = Arc::new(HashIndex::new(IndexConfig::new(0, 0)).unwrap());
        let hash = KeyHash::from_raw(5 << 48);
        let create = move |index: &HashIndex| {
            let (slot, e) = index.find_or_create_entry(hash).unwrap();
            assert!(!e.is_tentative());
            slot.location()
        };
        let a = spawn(&index, create);
        let b = spawn(&index, create);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(a, b, "two slots for one tag");
        assert_eq!(count_tag(&index, 0, 5), (1, 0));
    });
}

/// A reader racing with an insert either misses the key or sees the finished entry, never
/// the tentative one.
#[test]
fn loom_reader_never_sees_tentative_entry() {
    loom::model(|| {
        let index = Arc::new(HashIndex::new(IndexConfig::new(0, 0)).unwrap());
        let hash = KeyHash::from_raw(9 << 48);
        let writer = spawn(&index, move |index| {
            let (slot, e) = index.find_or_create_entry(hash).unwrap();
            slot.compare_exchange_address(e, 0x40).unwrap();
        });
        let reader = spawn(&index, move |index| {
            if let Some((_, e)) = index.find_entry(hash) {
                assert!(!e.is_tentative(), "reader saw {e:?}");
                assert_eq!(e.tag(), 9);
            }
        });
        writer.join().unwrap();
        reader.join().unwrap();
        let (_, e) = index.find_entry(hash).unwrap();
        assert_eq!(e.address(), 0x40);
    });
}

/// Two threads with different tags both need a new overflow bucket of a full bucket: one
/// appends, the other frees its bucket and follows the winner. Both keys end up in the
/// (single) overflow bucket, found by readers.
#[test]
fn loom_overflow_append_race() {
    loom::model(|| {
        let index = Arc::new(HashIndex::new(IndexConfig::new(0, 2)).unwrap());
        for t in 1..=7u64 {
            index
                .find_or_create_entry(KeyHash::from_raw(t << 48))
                .unwrap();
        }
        let a = KeyHash::from_raw(100 << 48);
        let b = KeyHash::from_raw(200 << 48);
        let ta = spawn(&index, move |index| {
            index.find_or_create_entry(a).unwrap().0.location()
        });
        let tb = spawn(&index, move |index| {
            index.find_or_create_entry(b).unwrap().0.location()
        });
        let (la, lb) = (ta.join().unwrap(), tb.join().unwrap());
        assert!(matches!(la, SlotLocation::Overflow { .. }));
        assert!(matches!(lb, SlotLocation::Overflow { .. }));
        assert_ne!(la, lb);
        assert_eq!(index.stats().overflow_buckets, 1);
        assert_eq!(index.find_entry(a).unwrap().0.location(), la);
        assert_eq!(index.find_entry(b).unwrap().0.location(), lb);
    });
}

/// The same race where the two inserters install their tentative entries in *different*
/// slots: slot 0 holds another key, which one inserter deletes first, so the other may still
/// see it and take slot 1. Only the fence between install and rescan keeps both from
/// missing each other (the store-buffering pattern).
#[test]
fn loom_tentative_insert_in_different_slots() {
    loom::model(|| {
        let index = Arc::new(HashIndex::new(IndexConfig::new(0, 0)).unwrap());
        let other = KeyHash::from_raw(3 << 48);
        let (slot, e) = index.find_or_create_entry(other).unwrap();
        slot.compare_exchange_address(e, 0x80).unwrap();
        let hash = KeyHash::from_raw(5 << 48);
        let a = spawn(&index, move |index| {
            let (slot, e) = index.find_entry(other).unwrap();
            slot.delete(e).unwrap();
            index.find_or_create_entry(hash).unwrap().0.location()
        });
        let b = spawn(&index, move |index| {
            index.find_or_create_entry(hash).unwrap().0.location()
        });
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(a, b, "two slots for one tag");
        assert_eq!(count_tag(&index, 0, 5), (1, 0));
    });
}

/// The fake log of the growth model: record `i` at address `64 + 8 i`, in memory.
fn log_link(records: &[(KeyHash, u64)], a: u64) -> faster_index::Link {
    match a
        .checked_sub(64)
        .map(|i| i / 8)
        .and_then(|i| records.get(i as usize))
    {
        Some(&(hash, previous)) => faster_index::Link::Record { hash, previous },
        None => faster_index::Link::Gone,
    }
}

/// The split/help protocol on a table of two buckets (two chunks under loom): a session
/// parked by the state machine helps split, waits for the driver to finish, then inserts a
/// key and reads the old ones; the driver splits what is left and finishes. Every key
/// inserted before the growth is found at its address by both (invariant 3), each chunk is
/// split once (invariant 2: a chunk split twice would append its entries twice, and the
/// tag-uniqueness check below fails), the session's insert after the growth is found
/// afterwards (invariant 4), and no bucket holds two entries with one tag (invariant 6).
/// Breaking the claim (`fetch_add` replaced by a load and a store) fails it: a chunk split
/// twice counts down twice and the driver never finishes. The model found a real bug of the
/// first version: a helper that read the growing generation, then the current one after the
/// driver's switch, split the new table into itself (two entries with one tag); each growth
/// now carries its own generations and counters.
#[test]
fn loom_split_and_help_keep_every_key() {
    use faster_index::Growth;
    // The splits walk every word of both tables: more steps than loom's default bound.
    let mut model = loom::model::Builder::new();
    model.max_branches = 100_000;
    model.check(|| {
        let index = Arc::new(HashIndex::new(IndexConfig::new(1, 8)).unwrap());
        // Three keys: bucket 0 and 1 of the old table, both sides of the split.
        let keys = [
            KeyHash::from_raw((3 << 48) | 0b00),
            KeyHash::from_raw((4 << 48) | 0b11),
            KeyHash::from_raw((5 << 48) | 0b10),
        ];
        let mut records = Vec::new();
        for (i, &k) in keys.iter().enumerate() {
            let (slot, e) = index.find_or_create_entry(k).unwrap();
            records.push((k, 0));
            slot.compare_exchange_address(e, 64 + 8 * i as u64).unwrap();
        }
        let new_key = KeyHash::from_raw((6 << 48) | 0b01);
        records.push((new_key, 0));
        let records = std::sync::Arc::new(records);
        index.begin_grow().unwrap();
        let found = |index: &HashIndex, k: KeyHash| index.find_entry(k).map(|(_, e)| e.address());

        let r = records.clone();
        let session = spawn(&index, move |index| {
            let link = |a| log_link(&r, a);
            // Helps with what is left, then waits for the driver.
            index.help_grow(&link);
            while index.is_growing() {
                thread::yield_now();
            }
            let (slot, e) = index.find_or_create_entry(new_key).unwrap();
            slot.compare_exchange_address(e, 64 + 8 * 3).unwrap();
            for (i, &k) in keys.iter().enumerate() {
                assert_eq!(found(index, k), Some(64 + 8 * i as u64));
            }
        });
        let r = records.clone();
        let driver = spawn(&index, move |index| {
            let link = |a| log_link(&r, a);
            while index.help_grow(&link) != Growth::Finishing {
                thread::yield_now();
            }
            assert_eq!(index.finish_grow().unwrap(), 2);
        });
        session.join().unwrap();
        driver.join().unwrap();
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(found(&index, k), Some(64 + 8 * i as u64));
        }
        assert_eq!(found(&index, new_key), Some(64 + 8 * 3));
        let mut seen = std::collections::HashSet::new();
        index.for_each_entry(|home, _, e| assert!(seen.insert((home, e.tag()))));
        assert_eq!(seen.len(), 4);
    });
}

/// A record of the compaction model's fake log: its previous address, whether it is the
/// user's write (else the original or the compaction's copy), and its invalid mark.
#[derive(Clone, Copy)]
struct Rec {
    previous: u64,
    user: bool,
    invalid: bool,
}

/// The fake log of the compaction model: record `i` at address `64 + 8 i`, appended under a
/// lock (the real log's tail is a `fetch_add`; the model is about the index entry).
struct FakeLog(loom::sync::Mutex<Vec<Rec>>);

impl FakeLog {
    fn append(&self, rec: Rec) -> u64 {
        let mut log = self.0.lock().unwrap();
        log.push(rec);
        64 + 8 * (log.len() as u64 - 1)
    }

    fn at(&self, a: u64) -> Rec {
        self.0.lock().unwrap()[((a - 64) / 8) as usize]
    }

    fn invalidate(&self, a: u64) {
        self.0.lock().unwrap()[((a - 64) / 8) as usize].invalid = true;
    }

    /// The newest valid record of the one key on the chain from `a` (0: none).
    fn newest(&self, mut a: u64) -> u64 {
        while a >= 64 {
            let r = self.at(a);
            if !r.invalid {
                return a;
            }
            a = r.previous;
        }
        0
    }
}

/// Compaction's conditional insert against a user's upsert of the same key, on the real
/// `replace_unless_changed` and `compare_exchange_address`: the key's original record is at
/// 64; the compactor copies it to the tail only while it is still the key's newest record
/// (deciding from the entry it loaded and swapping from that entry), the upserter appends
/// its record on top of whatever entry it loaded and retries a lost swap. In every
/// interleaving the key's newest valid record, from the index, is the user's write: the
/// copy never hides it. Swapping from a freshly loaded entry instead of the one the
/// decision was made on fails the model (the copy lands on top of the upsert).
#[test]
fn loom_compaction_copy_never_hides_an_upsert() {
    loom::model(|| {
        let index = Arc::new(HashIndex::new(IndexConfig::new(0, 0)).unwrap());
        let hash = KeyHash::from_raw(7 << 48);
        let log = std::sync::Arc::new(FakeLog(loom::sync::Mutex::new(Vec::new())));
        let original = log.append(Rec {
            previous: 0,
            user: false,
            invalid: false,
        });
        let (slot, e) = index.find_or_create_entry(hash).unwrap();
        slot.compare_exchange_address(e, original).unwrap();

        let l = log.clone();
        let compactor = spawn(&index, move |index| {
            let (slot, _) = index.find_entry(hash).unwrap();
            faster_index::replace_unless_changed(
                &slot,
                |e: HashEntry| {
                    if l.newest(e.address()) != original {
                        return Ok::<_, ()>(None);
                    }
                    Ok(Some(l.append(Rec {
                        previous: e.address(),
                        user: false,
                        invalid: false,
                    })))
                },
                |lost| l.invalidate(lost),
            )
            .unwrap()
        });
        let l = log.clone();
        let upserter = spawn(&index, move |index| {
            loop {
                let (slot, e) = index.find_entry(hash).unwrap();
                let mine = l.append(Rec {
                    previous: e.address(),
                    user: true,
                    invalid: false,
                });
                match slot.compare_exchange_address(e, mine) {
                    Ok(()) => return,
                    Err(_) => l.invalidate(mine),
                }
            }
        });
        let copied = compactor.join().unwrap();
        upserter.join().unwrap();
        let head = index.find_entry(hash).unwrap().1.address();
        let newest = log.newest(head);
        assert!(
            log.at(newest).user,
            "the copy hid the user's write (copied: {copied})"
        );
    });
}
