//! Serial numbers and session ids at their limits (defect 6 of the hardening issue): a
//! session that reaches the last serial gets a typed error while the store goes on, and a
//! checkpoint that records a serial or an id beyond the limits is refused, never
//! overflowed.

use std::fs;
use std::path::Path;

use faster::recovery::{MAX_SERIAL, MAX_SESSION_ID, RecoveryError, StoreLayout, codec};
use faster::{Config, Error, FasterKv, LogDevice, RecoveryPolicy};

fn config(dir: &Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(10)
}

/// A store whose one checkpoint has a session with one operation; returns its directory.
fn one_checkpoint() -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = FasterKv::open(config(dir.path())).unwrap();
    let mut s = store.start_session();
    s.upsert(b"k", b"v").unwrap();
    store.checkpoint().unwrap().wait().unwrap();
    dir
}

/// Rewrites the only checkpoint's metadata through `f`, with a valid frame (not validated).
fn craft(dir: &Path, f: impl FnOnce(&mut faster::recovery::CheckpointMeta)) {
    let layout = StoreLayout::new(dir);
    let token = layout.list().unwrap()[0];
    let mut meta = layout.read_meta(&token).unwrap();
    f(&mut meta);
    fs::write(layout.meta_path(&token), codec::encode(&meta)).unwrap();
}

#[test]
fn a_session_at_the_last_serial_gets_a_typed_error_and_the_store_goes_on() {
    assert_eq!(MAX_SERIAL, faster::cpr::MAX_SERIAL);
    let dir = one_checkpoint();
    craft(dir.path(), |m| {
        m.sessions[0].serial = MAX_SERIAL - 1;
        m.sessions[0].issued = MAX_SERIAL - 1;
    });
    let (store, rec) = FasterKv::recover(config(dir.path())).unwrap();
    let (id, t) = rec.sessions[0];
    assert_eq!(t, MAX_SERIAL - 1);
    let (mut s, serial) = store.continue_session(id).unwrap();
    assert_eq!(serial, MAX_SERIAL - 1);
    s.upsert(b"last", b"one").unwrap();
    assert_eq!(s.serial(), MAX_SERIAL);
    for r in [
        s.upsert(b"k", b"w").map(|_| ()),
        s.read(b"k").map(|_| ()),
        s.upsert_batch(&[(b"k", b"w")]).map(|_| ()),
    ] {
        match r {
            Err(Error::SerialExhausted { session }) => assert_eq!(session, id),
            other => panic!("expected SerialExhausted, got {other:?}"),
        }
    }
    assert_eq!(
        s.serial(),
        MAX_SERIAL,
        "a refused operation takes no serial"
    );
    // The store goes on: other sessions work, and a checkpoint cuts the exhausted session
    // at its last serial.
    let mut other = store.start_session();
    assert_eq!(other.read(b"last").unwrap(), Some(b"one".to_vec()));
    assert_eq!(other.read(b"k").unwrap(), Some(b"v".to_vec()));
    let info = store.checkpoint().unwrap().wait().unwrap();
    assert!(
        info.sessions.contains(&(id, MAX_SERIAL)),
        "{:?}",
        info.sessions
    );
}

#[test]
fn serials_and_ids_beyond_the_limits_are_refused_at_recovery() {
    type Edit = fn(&mut faster::recovery::CheckpointMeta);
    let cases: [(&str, Edit); 3] = [
        ("serial", |m| {
            m.sessions[0].serial = u64::MAX;
            m.sessions[0].issued = u64::MAX;
        }),
        ("issued", |m| m.sessions[0].issued = MAX_SERIAL + 1),
        ("id", |m| m.sessions[0].id = u64::MAX),
    ];
    for (what, f) in cases {
        let dir = one_checkpoint();
        craft(dir.path(), f);
        let strict = config(dir.path()).with_recovery_policy(RecoveryPolicy::Strict);
        match FasterKv::recover(strict) {
            Err(Error::Recovery(RecoveryError::Corrupt { reason, .. })) => {
                assert!(reason.contains("limits"), "{what}: {reason}")
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
        // Under the default policy it is skipped like any damaged checkpoint.
        assert!(FasterKv::recover(config(dir.path())).is_err(), "{what}");
    }
    // The largest id a checkpoint may hold: the next session is refused with a typed error,
    // the numbering never overflows.
    let dir = one_checkpoint();
    craft(dir.path(), |m| m.sessions[0].id = MAX_SESSION_ID);
    let (store, _) = FasterKv::recover(config(dir.path())).unwrap();
    assert!(matches!(
        store.try_start_session(),
        Err(Error::SessionIdsExhausted)
    ));
}
