//! The directory layout: paths, crash-safe metadata writes, listing, removal.

mod common;

use std::fs;

use faster_recovery::{CheckpointToken, MAX_META_BYTES, RecoveryError, StoreLayout};

#[test]
fn paths_follow_the_layout() {
    let layout = StoreLayout::new("/store");
    let t = CheckpointToken::for_version(3);
    let ckpt = "/store/checkpoints/ckpt-00000000000000000003";
    assert_eq!(
        layout.checkpoints_dir().to_str(),
        Some("/store/checkpoints")
    );
    assert_eq!(layout.checkpoint_dir(&t).to_str(), Some(ckpt));
    assert_eq!(layout.meta_path(&t), layout.checkpoint_dir(&t).join("meta"));
    assert_eq!(
        layout.index_dir(&t),
        layout.checkpoint_dir(&t).join("index")
    );
    assert_eq!(
        layout.snapshot_dir(&t),
        layout.checkpoint_dir(&t).join("snapshot")
    );
    assert_eq!(
        layout.index_segment_path(&t, 2),
        layout.index_dir(&t).join("index.2")
    );
}

#[test]
fn write_meta_is_atomic_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let layout = StoreLayout::new(dir.path());
    let meta = common::full(5);
    let n = layout.write_meta(&meta).unwrap();
    assert_eq!(
        n,
        fs::metadata(layout.meta_path(&meta.token)).unwrap().len()
    );
    assert!(!layout.meta_tmp_path(&meta.token).exists());
    assert_eq!(layout.read_meta(&meta.token).unwrap(), meta);
    // Overwriting replaces the content.
    let mut newer = meta.clone();
    newer.created_unix_ms += 1;
    layout.write_meta(&newer).unwrap();
    assert!(!layout.meta_tmp_path(&meta.token).exists());
    assert_eq!(layout.read_meta(&meta.token).unwrap(), newer);
}

#[test]
fn write_meta_refuses_invalid_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let layout = StoreLayout::new(dir.path());
    let mut meta = common::full(5);
    meta.page_size = 1000;
    assert!(matches!(
        layout.write_meta(&meta),
        Err(RecoveryError::Corrupt { .. })
    ));
    assert!(!layout.meta_path(&meta.token).exists());
}

#[test]
fn read_meta_rejects_oversized_and_misplaced_files() {
    let dir = tempfile::tempdir().unwrap();
    let layout = StoreLayout::new(dir.path());
    let t = CheckpointToken::for_version(1);
    fs::create_dir_all(layout.checkpoint_dir(&t)).unwrap();
    let f = fs::File::create(layout.meta_path(&t)).unwrap();
    f.set_len(MAX_META_BYTES + 1).unwrap();
    match layout.read_meta(&t) {
        Err(RecoveryError::Corrupt { reason, .. }) => assert!(reason.contains("limit"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A valid meta copied into another checkpoint's directory.
    let meta = common::full(2);
    layout.write_meta(&meta).unwrap();
    fs::copy(layout.meta_path(&meta.token), layout.meta_path(&t)).unwrap();
    assert!(matches!(
        layout.read_meta(&t),
        Err(RecoveryError::Corrupt { .. })
    ));
    // Missing.
    let missing = CheckpointToken::for_version(99);
    assert!(matches!(
        layout.read_meta(&missing),
        Err(RecoveryError::Io { .. })
    ));
}

#[test]
fn list_is_newest_first_and_ignores_junk() {
    let dir = tempfile::tempdir().unwrap();
    let layout = StoreLayout::new(dir.path());
    assert!(layout.list().unwrap().is_empty());
    for v in [3, 12, 1, 7] {
        fs::create_dir_all(layout.checkpoint_dir(&CheckpointToken::for_version(v))).unwrap();
    }
    let cps = layout.checkpoints_dir();
    for junk in [
        "tmp",
        "ckpt-1",
        "ckpt-00000000000000000005.old",
        ".ckpt-00000000000000000006",
    ] {
        fs::create_dir_all(cps.join(junk)).unwrap();
    }
    fs::write(
        cps.join("ckpt-00000000000000000009"),
        b"a file, not a checkpoint",
    )
    .unwrap();
    // A file with a checkpoint's name is listed (so that recovery reports it as damaged
    // rather than passing over it), and reading it fails.
    let versions: Vec<u64> = layout.list().unwrap().iter().map(|t| t.version()).collect();
    assert_eq!(versions, [12, 9, 7, 3, 1]);
    assert!(layout.read_meta(&CheckpointToken::for_version(9)).is_err());
}

#[test]
fn remove_checkpoint_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let layout = StoreLayout::new(dir.path());
    let meta = common::full(4);
    common::write_checkpoint(&layout, &meta);
    layout.remove_checkpoint(&meta.token).unwrap();
    assert!(!layout.checkpoint_dir(&meta.token).exists());
    assert!(layout.list().unwrap().is_empty());
    layout.remove_checkpoint(&meta.token).unwrap();
}
