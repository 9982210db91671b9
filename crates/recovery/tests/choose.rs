//! Choosing the checkpoint to recover from.

mod common;

use std::fs;

use faster_recovery::{
    CheckpointToken, RecoveryError, RecoveryPolicy, StoreLayout, choose, choose_latest,
};

fn store(versions: &[u64]) -> (tempfile::TempDir, StoreLayout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = StoreLayout::new(dir.path());
    for &v in versions {
        common::write_checkpoint(&layout, &common::full(v));
    }
    (dir, layout)
}

fn corrupt_meta(layout: &StoreLayout, v: u64) {
    let path = layout.meta_path(&CheckpointToken::for_version(v));
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&path, bytes).unwrap();
}

#[test]
fn picks_the_newest_valid() {
    let (_d, layout) = store(&[1, 2, 3]);
    for policy in [RecoveryPolicy::Strict, RecoveryPolicy::Fallback] {
        let chosen = choose_latest(&layout, policy).unwrap();
        assert_eq!(chosen.meta.version, 3);
        assert!(chosen.skipped.is_empty());
    }
    assert_eq!(RecoveryPolicy::default(), RecoveryPolicy::Fallback);
}

#[test]
fn corrupted_newest_falls_back_or_fails() {
    let (_d, layout) = store(&[1, 2, 3]);
    corrupt_meta(&layout, 3);
    let chosen = choose_latest(&layout, RecoveryPolicy::Fallback).unwrap();
    assert_eq!(chosen.meta.version, 2);
    assert_eq!(chosen.skipped.len(), 1);
    assert_eq!(chosen.skipped[0].0.version(), 3);
    assert!(matches!(chosen.skipped[0].1, RecoveryError::Corrupt { .. }));
    assert!(matches!(
        choose_latest(&layout, RecoveryPolicy::Strict),
        Err(RecoveryError::Corrupt { .. })
    ));
}

#[test]
fn missing_data_file_falls_back() {
    let (_d, layout) = store(&[1, 2]);
    fs::remove_file(layout.index_segment_path(&CheckpointToken::for_version(2), 0)).unwrap();
    assert_eq!(
        choose_latest(&layout, RecoveryPolicy::Fallback)
            .unwrap()
            .meta
            .version,
        1
    );
    assert!(choose_latest(&layout, RecoveryPolicy::Strict).is_err());
}

#[test]
fn checkpoint_without_meta_is_skipped() {
    // A checkpoint that crashed before its metadata was renamed into place.
    let (_d, layout) = store(&[1]);
    fs::create_dir_all(layout.index_dir(&CheckpointToken::for_version(2))).unwrap();
    let chosen = choose_latest(&layout, RecoveryPolicy::Fallback).unwrap();
    assert_eq!(chosen.meta.version, 1);
    assert!(matches!(chosen.skipped[0].1, RecoveryError::Io { .. }));
}

#[test]
fn nothing_valid_is_no_checkpoint() {
    let (_d, layout) = store(&[]);
    assert!(matches!(
        choose_latest(&layout, RecoveryPolicy::Fallback),
        Err(RecoveryError::NoCheckpoint { .. })
    ));
    let (_d, layout) = store(&[1]);
    corrupt_meta(&layout, 1);
    assert!(matches!(
        choose_latest(&layout, RecoveryPolicy::Fallback),
        Err(RecoveryError::NoCheckpoint { .. })
    ));
    assert!(matches!(
        choose_latest(&layout, RecoveryPolicy::Strict),
        Err(RecoveryError::Corrupt { .. })
    ));
}

#[test]
fn serial_going_backwards_is_inconsistent() {
    let (_d, layout) = store(&[1]);
    let mut newer = common::full(2);
    newer.sessions[0].serial = 0; // session 1 had 11 in version 1
    common::write_checkpoint(&layout, &newer);
    for policy in [RecoveryPolicy::Strict, RecoveryPolicy::Fallback] {
        assert!(matches!(
            choose_latest(&layout, policy),
            Err(RecoveryError::Inconsistent { .. })
        ));
    }
}

#[test]
fn choose_a_named_checkpoint() {
    let (_d, layout) = store(&[1, 2, 3]);
    let t = CheckpointToken::for_version(2);
    assert_eq!(
        choose(&layout, &t, RecoveryPolicy::Strict)
            .unwrap()
            .meta
            .version,
        2
    );
    corrupt_meta(&layout, 1);
    assert!(choose(&layout, &t, RecoveryPolicy::Fallback).is_ok());
    assert!(choose(&layout, &t, RecoveryPolicy::Strict).is_err());
    let missing = CheckpointToken::for_version(9);
    assert!(choose(&layout, &missing, RecoveryPolicy::Fallback).is_err());
}
