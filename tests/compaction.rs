//! Compaction, the begin address, truncation and checkpoint retention: every key keeps its
//! newest value through compaction and recovery, deleted keys stay deleted, a user's write
//! during a compaction is never lost, and disk use follows live data.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use faster::{Config, FasterKv, LogDevice};

fn config(dir: &std::path::Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_device_options(
            faster::device::DeviceOptions::default().with_segment_size(256 << 10),
        )
        .with_auto_compaction(false)
}

fn key(k: u64) -> [u8; 8] {
    k.to_le_bytes()
}

fn value(k: u64, round: u64) -> Vec<u8> {
    let mut v = vec![(k ^ round) as u8; 200];
    v[..8].copy_from_slice(&round.to_le_bytes());
    v
}

/// Overwrites `keys` keys `rounds` times; returns the model.
fn overwrite(s: &mut faster::Session, keys: u64, rounds: std::ops::Range<u64>) -> HashMap<u64, Vec<u8>> {
    let mut model = HashMap::new();
    for round in rounds {
        for k in 0..keys {
            let v = value(k, round);
            s.upsert(&key(k), &v).unwrap();
            model.insert(k, v);
        }
    }
    model
}

fn check(s: &mut faster::Session, model: &HashMap<u64, Vec<u8>>, deleted: &[u64]) {
    for (k, v) in model {
        assert_eq!(s.read(&key(*k)).unwrap().as_ref(), Some(v), "key {k}");
    }
    for k in deleted {
        assert_eq!(s.read(&key(*k)).unwrap(), None, "deleted key {k}");
    }
}

#[test]
fn compaction_keeps_every_newest_value_and_frees_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(config(dir.path())).unwrap();
    let mut s = store.start_session();
    let model = overwrite(&mut s, 10_000, 0..5);
    let before = store.space().unwrap();
    let info = store.compact(None).unwrap().wait().unwrap();
    assert!(info.until > info.from, "{info:?}");
    assert_eq!(store.hlog().begin_address().raw(), info.until);
    assert!(info.records_copied > 0 && info.records_copied <= 10_000, "{info:?}");
    check(&mut s, &model, &[]);
    // No checkpoint needs the old log: its files are gone at once.
    let after = store.space().unwrap();
    assert!(after.truncated >= info.until - (256 << 10), "{after:?}");
    assert!(after.disk.log < before.disk.log / 2, "{before:?} -> {after:?}");
}
