//! Damaged log and snapshot bytes (defects 2 and 3 of the hardening issue), each case on a
//! store whose records are all on disk after recovery:
//!
//! * a flipped byte in a record read cold gives a typed error from the read, never a wrong
//!   value;
//! * a flipped byte in a record recovery replays, in a log segment or in a snapshot, is
//!   `RecoveryError::Corrupt` naming the file under the strict policy, and a fallback to the
//!   older checkpoint (or a typed error) under the default one;
//! * a deleted or truncated log segment inside the checkpoint's range is
//!   `RecoveryError::Corrupt` naming the segment, before anything is loaded.

#[path = "recovery_common.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::files;

use faster::device::DeviceOptions;
use faster::hlog::HlogError;
use faster::recovery::RecoveryError;
use faster::{
    CheckpointInfo, CheckpointOptions, Config, Error, FasterKv, LogCapture, LogDevice,
    RecoveryPolicy,
};

const SEGMENT: u64 = 64 << 10;

fn config(dir: &Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(12)
        .with_device_options(DeviceOptions::default().with_segment_size(SEGMENT))
}

fn strict(dir: &Path) -> Config {
    config(dir).with_recovery_policy(RecoveryPolicy::Strict)
}

/// A value that is easy to find in the files: `tag` repeated.
fn marked(tag: u8) -> Vec<u8> {
    vec![tag; 48]
}

/// Keys `0..2000` with filler values and a full checkpoint (the fallback), an index-only
/// checkpoint, then the keys `b"early"` (if `replayed`) and `b"late"` with marked values, and a
/// log-only checkpoint captured by `log`: recovering it replays the log from the index-only
/// checkpoint's start, so it reads the marked records. When `replayed` is false the early
/// key is written before the first checkpoint instead: recovery reaches it only through the
/// index, and only a read of it reads it.
fn store(dir: &Path, log: LogCapture, replayed: bool) -> Vec<CheckpointInfo> {
    let store = FasterKv::open(config(dir)).unwrap();
    let mut s = store.start_session();
    for k in 0..2000u64 {
        s.upsert(&k.to_le_bytes(), &[7u8; 100]).unwrap();
    }
    if !replayed {
        s.upsert(b"early", &marked(0xe1)).unwrap();
    }
    let mut infos = vec![store.checkpoint().unwrap().wait().unwrap()];
    let index_only = CheckpointOptions::index_only();
    infos.push(store.checkpoint_with(index_only).unwrap().wait().unwrap());
    if replayed {
        s.upsert(b"early", &marked(0xe1)).unwrap();
    }
    s.upsert(b"late", &marked(0x1a)).unwrap();
    let log_only = CheckpointOptions::log_only().with_log(log);
    infos.push(store.checkpoint_with(log_only).unwrap().wait().unwrap());
    infos
}

/// Flips one bit in the middle of the first occurrence of `value` in the files below `dir`
/// named `prefix.*`; returns the file.
fn flip_value(dir: &Path, prefix: &str, value: &[u8]) -> PathBuf {
    for f in files(dir, prefix) {
        let mut bytes = fs::read(&f).unwrap();
        if let Some(at) = bytes.windows(value.len()).position(|w| w == value) {
            bytes[at + value.len() / 2] ^= 0x10;
            fs::write(&f, bytes).unwrap();
            return f;
        }
    }
    panic!(
        "{:?} not found in {prefix}.* under {}",
        &value[..4],
        dir.display()
    );
}

#[test]
fn a_damaged_record_read_cold_is_a_typed_error_never_a_wrong_value() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    store(dir.path(), LogCapture::FoldOver, false);
    flip_value(&dir.path().join("log"), "log", &marked(0xe1));
    // The damaged record lies below the range recovery replays: it recovers, and the read
    // of that record (from disk: a recovered log holds no page in memory) is refused.
    let (store, _) = FasterKv::recover(strict(dir.path())).unwrap();
    let mut s = store.start_session();
    match s.read(b"early") {
        Err(Error::Hlog(HlogError::Corrupt { reason, .. })) => {
            assert!(reason.contains("checksum"), "{reason}")
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert_eq!(s.read(b"late").unwrap(), Some(marked(0x1a)));
    assert_eq!(s.read(&5u64.to_le_bytes()).unwrap(), Some(vec![7u8; 100]));
}

#[test]
fn a_damaged_record_in_the_replayed_log_is_corrupt_naming_the_segment() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let infos = store(dir.path(), LogCapture::FoldOver, true);
    let file = flip_value(&dir.path().join("log"), "log", &marked(0x1a));
    match FasterKv::recover(strict(dir.path())) {
        Err(Error::Recovery(RecoveryError::Corrupt { file: f, reason })) => {
            assert_eq!(f, file, "{reason}");
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|r| r.1)),
    }
    // The default policy falls back to the older checkpoint (whose range ends before the
    // damaged record) and says why.
    let (store, rec) = FasterKv::recover(config(dir.path())).unwrap();
    assert_eq!(rec.token, infos[0].token);
    assert_eq!(rec.skipped.len(), 1, "{:?}", rec.skipped);
    let mut s = store.start_session();
    assert_eq!(s.read(b"late").unwrap(), None);
    assert_eq!(s.read(&5u64.to_le_bytes()).unwrap(), Some(vec![7u8; 100]));
}

#[test]
fn a_damaged_snapshot_is_corrupt_naming_its_file() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let infos = store(dir.path(), LogCapture::Snapshot, true);
    let snapshot = dir.path().join("checkpoints").join(&infos[2].token);
    let file = flip_value(&snapshot, "snapshot", &marked(0x1a));
    match FasterKv::recover(strict(dir.path())) {
        Err(Error::Recovery(RecoveryError::Corrupt { file: f, reason })) => {
            assert_eq!(f, file, "{reason}");
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|r| r.1)),
    }
    let (_, rec) = FasterKv::recover(config(dir.path())).unwrap();
    assert_eq!(rec.token, infos[0].token);
}

#[test]
fn a_missing_or_short_log_segment_is_corrupt_naming_it() {
    for truncate in [false, true] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        store(dir.path(), LogCapture::FoldOver, true);
        let segments = files(&dir.path().join("log"), "log");
        assert!(segments.len() >= 3, "{segments:?}");
        let victim = &segments[1];
        if truncate {
            let f = fs::OpenOptions::new().write(true).open(victim).unwrap();
            f.set_len(SEGMENT / 2).unwrap();
        } else {
            fs::remove_file(victim).unwrap();
        }
        match FasterKv::recover(strict(dir.path())) {
            Err(Error::Recovery(RecoveryError::Corrupt { file, reason })) => {
                assert_eq!(&file, victim, "{reason}");
                let want = if truncate { "short" } else { "missing" };
                assert!(reason.contains(want), "{reason}");
            }
            other => panic!("expected Corrupt, got {:?}", other.map(|r| r.1)),
        }
    }
}
