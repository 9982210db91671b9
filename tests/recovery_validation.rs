//! Recovery validation: the prefix cut, corrupted serials, every flipped byte and every
//! truncation of a metadata file (typed error or fallback, never a panic), arbitrary bytes
//! fed to the metadata parser, and the devices recovery accepts.

#[path = "recovery_common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{copy_dir, step, tempdir, verify_session};
use faster::device::{DeviceOptions, MemoryDevice, MemoryStore};
use faster::recovery::{CheckpointToken, RecoveryError, StoreLayout, codec};
use faster::{CheckpointInfo, Config, Error, FasterKv, LogDevice, RecoveryPolicy};
use proptest::prelude::*;

/// A tiny store configuration: recovering it takes milliseconds.
fn small(dir: &Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(64 << 10)
        .with_page_size(16 << 10)
        .with_table_bits(8)
}

/// A store with one session: `ops[0]` operations, a checkpoint, `ops[1]` more, a second
/// checkpoint, `ops[2]` more; then dropped. Returns the checkpoints and the last serial.
fn two_checkpoints(dir: &Path, ops: [u64; 3]) -> (Vec<CheckpointInfo>, u64) {
    let store = FasterKv::open(small(dir)).unwrap();
    let mut s = store.start_session();
    let mut infos = Vec::new();
    for (i, n) in ops.iter().enumerate() {
        for _ in 0..*n {
            step(&mut s);
        }
        if i < 2 {
            infos.push(store.checkpoint().unwrap().wait().unwrap());
        }
    }
    (infos, s.serial())
}

fn meta_path(dir: &Path, token: &str) -> PathBuf {
    StoreLayout::new(dir).meta_path(&CheckpointToken::parse(token).unwrap())
}

/// Decodes checkpoint `token`'s metadata, lets `edit` change it and writes it back with a
/// valid checksum.
fn edit_meta(dir: &Path, token: &str, edit: impl FnOnce(&mut faster::recovery::CheckpointMeta)) {
    let path = meta_path(dir, token);
    let mut meta = codec::decode(&std::fs::read(&path).unwrap(), &path).unwrap();
    edit(&mut meta);
    std::fs::write(&path, codec::encode(&meta)).unwrap();
}

#[test]
fn only_operations_up_to_the_checkpoint_serial_are_present() {
    let dir = tempdir();
    let (infos, last) = two_checkpoints(dir.path(), [300, 200, 150]);
    let (id, t) = infos[1].sessions[0];
    assert_eq!(t, 500);
    let (store, rec) = FasterKv::recover(small(dir.path())).unwrap();
    assert_eq!(rec.sessions, vec![(id, 500)]);
    assert!(rec.skipped.is_empty());
    let mut s = store.start_session();
    verify_session(&mut s, id.as_u64(), 500, last);
    drop((s, store));
    // The older checkpoint, from a copy: its own cut.
    let copy = tempdir();
    copy_dir(dir.path(), copy.path());
    let (store, rec) = FasterKv::recover_from(small(copy.path()), &infos[0].token).unwrap();
    assert_eq!(rec.sessions, vec![(id, 300)]);
    let mut s = store.start_session();
    verify_session(&mut s, id.as_u64(), 300, last);
}

#[test]
fn corrupted_serials_are_rejected_or_skipped_with_the_reason() {
    let template = tempdir();
    let (infos, _) = two_checkpoints(template.path(), [100, 100, 10]);
    let (old, new) = (&infos[0], &infos[1]);

    // A re-encoded (checksum-valid) serial that goes backwards: rejected under both policies.
    for policy in [RecoveryPolicy::Fallback, RecoveryPolicy::Strict] {
        let dir = tempdir();
        copy_dir(template.path(), dir.path());
        edit_meta(dir.path(), &new.token, |m| m.sessions[0].serial = 50);
        match FasterKv::recover(small(dir.path()).with_recovery_policy(policy)) {
            Err(Error::Recovery(RecoveryError::Inconsistent { reason })) => {
                assert!(reason.contains("backwards"), "{reason}");
            }
            other => panic!("expected an inconsistency, got {other:?}"),
        }
    }
    // The older checkpoint's serial raised above the newer one's: also inconsistent.
    let dir = tempdir();
    copy_dir(template.path(), dir.path());
    edit_meta(dir.path(), &old.token, |m| {
        m.sessions[0].serial = 250;
        m.sessions[0].issued = 250;
    });
    assert!(matches!(
        FasterKv::recover(small(dir.path())),
        Err(Error::Recovery(RecoveryError::Inconsistent { .. }))
    ));
    // A serial beyond the operations the session had issued: corrupt, so skipped (fallback)
    // for the older checkpoint, with the reason.
    let dir = tempdir();
    copy_dir(template.path(), dir.path());
    edit_meta(dir.path(), &new.token, |m| {
        m.sessions[0].serial = m.sessions[0].issued + 1
    });
    let (_, rec) = FasterKv::recover(small(dir.path())).unwrap();
    assert_eq!(rec.token, old.token);
    assert!(
        rec.skipped.iter().any(|(_, why)| why.contains("beyond")),
        "{:?}",
        rec.skipped
    );

    // A raw byte flip in the newer metadata: skipped with its reason (fallback), or an
    // error (strict).
    let dir = tempdir();
    copy_dir(template.path(), dir.path());
    let path = meta_path(dir.path(), &new.token);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 12;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let strict = FasterKv::recover(small(dir.path()).with_recovery_policy(RecoveryPolicy::Strict));
    assert!(
        matches!(strict, Err(Error::Recovery(RecoveryError::Corrupt { .. }))),
        "{strict:?}"
    );
    let (_store, rec) = FasterKv::recover(small(dir.path())).unwrap();
    assert_eq!(rec.version, old.version);
    assert_eq!(rec.skipped.len(), 1);
    assert_eq!(rec.skipped[0].0, new.token);
    assert!(rec.skipped[0].1.contains("checksum"), "{:?}", rec.skipped);
}

/// Recovers a fresh copy of `template` after `damage` changed the newer checkpoint's meta:
/// it must fall back to the older checkpoint (never panic, never use the damaged one).
fn falls_back(template: &Path, infos: &[CheckpointInfo], bytes: &[u8], strict_too: bool) {
    let dir = tempdir();
    copy_dir(template, dir.path());
    std::fs::write(meta_path(dir.path(), &infos[1].token), bytes).unwrap();
    if strict_too {
        let strict = small(dir.path()).with_recovery_policy(RecoveryPolicy::Strict);
        assert!(matches!(
            FasterKv::recover(strict),
            Err(Error::Recovery(RecoveryError::Corrupt { .. }))
        ));
    }
    match FasterKv::recover(small(dir.path())) {
        Ok((_, rec)) => {
            assert_eq!(rec.version, infos[0].version);
            assert_eq!(rec.skipped[0].0, infos[1].token);
        }
        Err(e) => panic!("expected a fallback, got {e:?}"),
    }
}

#[test]
fn every_flipped_byte_and_every_truncation_falls_back_or_fails_typed() {
    let template = tempdir();
    let (infos, _) = two_checkpoints(template.path(), [20, 20, 5]);
    let original = std::fs::read(meta_path(template.path(), &infos[1].token)).unwrap();
    for i in 0..original.len() {
        let mut bytes = original.clone();
        bytes[i] ^= 0xFF;
        falls_back(template.path(), &infos, &bytes, i % 16 == 0);
    }
    for len in 0..original.len() {
        falls_back(template.path(), &infos, &original[..len], len % 16 == 0);
    }
    // A missing metadata file and a single damaged checkpoint: typed errors.
    let dir = tempdir();
    copy_dir(template.path(), dir.path());
    std::fs::remove_file(meta_path(dir.path(), &infos[1].token)).unwrap();
    std::fs::write(meta_path(dir.path(), &infos[0].token), &original[..10]).unwrap();
    assert!(matches!(
        FasterKv::recover(small(dir.path())),
        Err(Error::Recovery(RecoveryError::NoCheckpoint { .. }))
    ));
}

#[test]
fn recovery_needs_a_durable_log_device_and_a_safe_token() {
    let dir = tempdir();
    assert!(matches!(
        FasterKv::recover(small(dir.path()).with_log_device(LogDevice::Memory)),
        Err(Error::MemoryLogNotRecoverable)
    ));
    assert!(matches!(
        FasterKv::recover(small(dir.path())),
        Err(Error::Recovery(RecoveryError::NoCheckpoint { .. }))
    ));
    assert!(matches!(
        FasterKv::recover_from(small(dir.path()), "../../etc"),
        Err(Error::Recovery(RecoveryError::InvalidToken { .. }))
    ));
}

/// A custom memory device survives a simulated power failure ([`MemoryStore::crash`]) and
/// is recovered through [`Config::with_device`].
#[test]
fn a_memory_device_given_by_the_caller_recovers_after_a_crash() {
    let dir = tempdir();
    let mem = MemoryStore::new();
    let device = |m: &MemoryStore| {
        Arc::new(
            MemoryDevice::open(m.clone(), DeviceOptions::default().with_base_name("log")).unwrap(),
        )
    };
    let store = FasterKv::open(small(dir.path()).with_device(device(&mem))).unwrap();
    let mut s = store.start_session();
    for _ in 0..2_000 {
        step(&mut s);
    }
    let info = store.checkpoint().unwrap().wait().unwrap();
    for _ in 0..500 {
        step(&mut s);
    }
    let (id, last) = (s.id(), s.serial());
    drop((s, store));
    mem.crash();
    let (store, rec) = FasterKv::recover(small(dir.path()).with_device(device(&mem))).unwrap();
    assert_eq!(rec.sessions, info.sessions);
    let mut s = store.start_session();
    verify_session(&mut s, id.as_u64(), 2_000, last);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// The metadata parser never panics on arbitrary bytes, also behind a valid header.
    #[test]
    fn the_metadata_parser_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let path = Path::new("meta");
        let _ = codec::decode(&tail, path);
        let mut framed = codec::MAGIC.to_vec();
        framed.extend_from_slice(&codec::FORMAT_VERSION.to_le_bytes());
        framed.extend_from_slice(&(tail.len().saturating_sub(8) as u32).to_le_bytes());
        framed.extend_from_slice(&tail);
        prop_assert!(codec::decode(&framed, path).is_err() || tail.len() >= 8);
    }
}
