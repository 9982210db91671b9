//! The metadata rules, the successor rule and the data-file checks.

mod common;

use std::fs;
use std::path::Path;

use faster_recovery::{
    CheckpointKind, CheckpointMeta, CheckpointToken, LogMode, RecoveryError, SessionRecord,
    StoreLayout, check_files, validate, validate_successor,
};

fn reason(meta: &CheckpointMeta) -> String {
    match validate(meta, Path::new("meta")) {
        Err(RecoveryError::Corrupt { reason, .. }) => reason,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn fixtures_are_valid() {
    validate(&common::full(3), Path::new("meta")).unwrap();
    validate(&common::snapshot(3), Path::new("meta")).unwrap();
}

#[test]
fn each_rule_is_enforced() {
    type Edit = fn(&mut CheckpointMeta);
    let cases: &[(&str, Edit)] = &[
        ("token", |m| m.version += 1),
        ("48-bit", |m| m.final_address = 1 << 48),
        ("flushed", |m| m.flushed_address = m.final_address + 1),
        ("flushed", |m| m.begin_address = m.flushed_address + 1),
        ("start", |m| m.start_address = m.final_address + 64),
        ("first valid", |m| {
            m.begin_address = 0;
            m.start_address = 0;
            m.flushed_address = 0;
            m.final_address = 32;
            m.index.as_mut().unwrap().start_address = 0;
        }),
        ("snapshot", |m| m.snapshot_start = Some(64)),
        ("snapshot", |m| m.log_mode = Some(LogMode::Snapshot)),
        ("log mode", |m| m.log_mode = None),
        ("index part", |m| m.index = None),
        ("own index", |m| {
            m.index.as_mut().unwrap().token = CheckpointToken::for_version(1)
        }),
        ("index start", |m| {
            m.index.as_mut().unwrap().start_address = m.start_address + 64
        }),
        ("more than once", |m| {
            m.sessions.push(SessionRecord {
                id: 1,
                serial: 0,
                issued: 0,
            })
        }),
        ("page size", |m| m.page_size = 256),
        ("page size", |m| m.page_size = 4097),
        ("table bits", |m| {
            m.index.as_mut().unwrap().info.table_bits = 41
        }),
        ("overflow", |m| {
            m.index.as_mut().unwrap().info.overflow_buckets = 17
        }),
        ("table of", |m| {
            m.index.as_mut().unwrap().info.table_bytes = 64
        }),
        ("out of order", |m| {
            m.index.as_mut().unwrap().info.end_offset = 4096
        }),
        ("segment size", |m| {
            m.index.as_mut().unwrap().segment_size = 0
        }),
    ];
    for (want, edit) in cases {
        let mut m = common::full(3);
        edit(&mut m);
        let r = reason(&m);
        assert!(r.contains(want), "expected {want:?} in {r:?}");
    }
}

#[test]
fn snapshot_start_must_lie_in_the_log() {
    let mut m = common::snapshot(3);
    m.snapshot_start = Some(m.final_address + 64);
    assert!(reason(&m).contains("snapshot start"));
}

#[test]
fn kinds_and_parts_agree() {
    let mut m = common::full(5);
    m.kind = CheckpointKind::IndexOnly;
    assert!(reason(&m).contains("log mode"));
    m.log_mode = None;
    validate(&m, Path::new("meta")).unwrap();

    let mut m = common::full(5);
    m.kind = CheckpointKind::LogOnly;
    m.index.as_mut().unwrap().token = CheckpointToken::for_version(2);
    validate(&m, Path::new("meta")).unwrap();
    m.index.as_mut().unwrap().token = CheckpointToken::for_version(6);
    assert!(reason(&m).contains("later checkpoint"));
}

#[test]
fn successor_needs_higher_version_and_monotone_serials() {
    let old = common::full(3);
    let new = common::full(4);
    validate_successor(&old, &new).unwrap();
    assert!(matches!(
        validate_successor(&new, &old),
        Err(RecoveryError::Inconsistent { .. })
    ));
    let mut back = common::full(4);
    back.sessions[1].serial = 19; // session 2 had 20 in version 3
    match validate_successor(&old, &back) {
        Err(RecoveryError::Inconsistent { reason }) => {
            for part in [
                "session 2",
                "20",
                "19",
                old.token.as_str(),
                back.token.as_str(),
            ] {
                assert!(reason.contains(part), "{part:?} not in {reason:?}");
            }
        }
        other => panic!("{other:?}"),
    }
    // Sessions present in only one of them are fine.
    let mut gone = common::full(4);
    gone.sessions = vec![SessionRecord {
        id: 9,
        serial: 0,
        issued: 0,
    }];
    validate_successor(&old, &gone).unwrap();
}

#[test]
fn check_files_accepts_complete_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let layout = StoreLayout::new(dir.path());
    for meta in [common::full(1), common::snapshot(2)] {
        common::write_checkpoint(&layout, &meta);
        check_files(&meta, &layout).unwrap();
    }
}

#[test]
fn check_files_detects_missing_and_short_files() {
    let dir = tempfile::tempdir().unwrap();
    let layout = StoreLayout::new(dir.path());
    let meta = common::snapshot(2);
    common::write_checkpoint(&layout, &meta);
    let t = meta.token;

    let seg1 = layout.index_segment_path(&t, 1);
    fs::remove_file(&seg1).unwrap();
    match check_files(&meta, &layout) {
        Err(RecoveryError::Corrupt { file, reason }) => {
            assert_eq!(file, seg1);
            assert!(reason.contains("missing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    fs::write(&seg1, vec![0u8; 100]).unwrap();
    match check_files(&meta, &layout) {
        Err(RecoveryError::Corrupt { file, reason }) => {
            assert_eq!(file, seg1);
            assert!(reason.contains("short"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    fs::write(&seg1, vec![0u8; 4096]).unwrap();
    check_files(&meta, &layout).unwrap();

    let snap = layout.snapshot_segment_path(&t, 0);
    fs::write(&snap, vec![0u8; 10]).unwrap();
    match check_files(&meta, &layout) {
        Err(RecoveryError::Corrupt { file, .. }) => assert_eq!(file, snap),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cut_beyond_the_operations_issued_is_corrupt() {
    let mut meta = common::full(3);
    meta.sessions[0].serial = meta.sessions[0].issued + 1;
    let err = validate(&meta, Path::new("meta")).unwrap_err();
    assert!(err.to_string().contains("beyond"), "{err}");
}
