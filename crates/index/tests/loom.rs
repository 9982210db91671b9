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
