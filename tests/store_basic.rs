//! The store's basic contract: operations, serial numbers, session ids, in-place and
//! copy updates, tag collisions, opening a directory that already holds a store, closing.

use faster::index::KeyHash;
use faster::{AddU64, Config, Error, FasterKv, LogDevice, Session, SessionId, Status};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

fn small(dir: &std::path::Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::Memory)
        .with_log_memory(256 << 10)
        .with_page_size(32 << 10)
        .with_table_bits(8)
}

fn counter(v: Option<Vec<u8>>) -> u64 {
    u64::from_le_bytes(v.expect("present").try_into().expect("8 bytes"))
}

#[test]
fn handles_and_sessions_are_send_and_sync() {
    fn send_sync<T: Send + Sync + Clone>() {}
    fn send_static<T: Send + 'static>() {}
    send_sync::<FasterKv>();
    send_static::<Session>();
    send_static::<Error>();
}

#[test]
fn upsert_read_rmw_delete_and_serials() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(small(dir.path())).unwrap();
    let mut s = store.start_session();
    assert_eq!(s.serial(), 0);
    assert_eq!(s.read(b"key").unwrap(), None);
    s.upsert(b"key", b"value").unwrap();
    assert_eq!(s.read(b"key").unwrap(), Some(b"value".to_vec()));
    s.upsert(b"key", b"other").unwrap();
    assert_eq!(s.read(b"key").unwrap(), Some(b"other".to_vec()));
    // Longer than the record's capacity: copied to a new record.
    let long = vec![7u8; 1000];
    s.upsert(b"key", &long).unwrap();
    assert_eq!(s.read(b"key").unwrap(), Some(long));
    s.upsert(b"key", b"").unwrap();
    assert_eq!(s.read(b"key").unwrap(), Some(vec![]));
    s.rmw(b"counter", &5u64.to_le_bytes(), &AddU64).unwrap();
    s.rmw(b"counter", &6u64.to_le_bytes(), &AddU64).unwrap();
    assert_eq!(counter(s.read(b"counter").unwrap()), 11);
    s.delete(b"key").unwrap();
    assert_eq!(s.read(b"key").unwrap(), None);
    s.delete(b"never-written").unwrap();
    assert_eq!(s.read(b"never-written").unwrap(), None);
    // After a delete, an RMW starts from `initial` and an upsert brings the key back.
    s.delete(b"counter").unwrap();
    s.rmw(b"counter", &3u64.to_le_bytes(), &AddU64).unwrap();
    assert_eq!(counter(s.read(b"counter").unwrap()), 3);
    s.upsert(b"key", b"back").unwrap();
    assert_eq!(s.read(b"key").unwrap(), Some(b"back".to_vec()));
    assert_eq!(s.serial(), 21);
    // A failing operation takes its serial number too.
    let huge = vec![0u8; 64 << 10];
    assert!(s.upsert(b"key", &huge).is_err());
    assert_eq!(s.serial(), 22);
}

#[test]
fn empty_key_is_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(small(dir.path())).unwrap();
    let mut s = store.start_session();
    s.upsert(b"", b"empty").unwrap();
    s.upsert(b"\0", b"zero").unwrap();
    assert_eq!(s.read(b"").unwrap(), Some(b"empty".to_vec()));
    assert_eq!(s.read(b"\0").unwrap(), Some(b"zero".to_vec()));
    s.delete(b"").unwrap();
    assert_eq!(s.read(b"").unwrap(), None);
    assert_eq!(s.read(b"\0").unwrap(), Some(b"zero".to_vec()));
}

#[test]
fn session_ids_are_unique_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(small(dir.path())).unwrap();
    let a = store.start_session();
    let b = store.clone().start_session();
    assert_ne!(a.id(), b.id());
    let text = a.id().to_string();
    assert_eq!(text.parse::<SessionId>().unwrap(), a.id());
    assert!("not a number".parse::<SessionId>().is_err());
}

#[test]
fn async_forms_report_done_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(small(dir.path())).unwrap();
    let mut s = store.start_session();
    s.upsert(b"k", b"v").unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let st = s
        .read_async(b"k", move |r| g.lock().unwrap().push(r.unwrap()))
        .unwrap();
    assert_eq!(st, Status::Done);
    assert_eq!(*got.lock().unwrap(), vec![Some(b"v".to_vec())]);
    let done = Arc::new(Mutex::new(0));
    let d = done.clone();
    let st = s
        .rmw_async(b"c", &1u64.to_le_bytes(), AddU64, move |r| {
            r.unwrap();
            *d.lock().unwrap() += 1;
        })
        .unwrap();
    assert_eq!(st, Status::Done);
    assert_eq!(*done.lock().unwrap(), 1);
    assert_eq!(s.complete_pending(true).unwrap(), 0);
    assert_eq!(s.serial(), 3);
}

#[test]
fn colliding_tags_share_a_chain() {
    // One bucket: every key lands in it, and among 3000 keys many share a 14-bit tag.
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(small(dir.path()).with_table_bits(0)).unwrap();
    let keys: Vec<Vec<u8>> = (0..3000u32).map(|i| format!("k{i}").into_bytes()).collect();
    let mut by_tag: HashMap<u16, usize> = HashMap::new();
    for k in &keys {
        *by_tag.entry(KeyHash::of(k).tag()).or_default() += 1;
    }
    assert!(by_tag.values().any(|&n| n > 1), "the test needs collisions");
    let mut s = store.start_session();
    for (i, k) in keys.iter().enumerate() {
        s.upsert(k, &(i as u64).to_le_bytes()).unwrap();
    }
    for (i, k) in keys.iter().enumerate().step_by(3) {
        s.rmw(k, &1u64.to_le_bytes(), &AddU64).unwrap();
        if i % 2 == 0 {
            s.delete(k).unwrap();
        }
    }
    for (i, k) in keys.iter().enumerate() {
        let want = match (i % 3, i % 2) {
            (0, 0) => None,
            (0, _) => Some(i as u64 + 1),
            _ => Some(i as u64),
        };
        assert_eq!(
            s.read(k).unwrap().map(|v| counter(Some(v))),
            want,
            "key {i}"
        );
    }
}

#[test]
fn opening_an_existing_store_is_refused_and_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path().join("db"))
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(8);
    let store = FasterKv::open(config.clone()).unwrap();
    let mut s = store.start_session();
    s.upsert(b"k", b"v").unwrap();
    assert!(dir.path().join("db").join("log").is_dir());
    // While it is open, the directory is locked: a second open is refused at once.
    match FasterKv::open(config.clone()) {
        Err(Error::InUse { dir: d }) => assert_eq!(d, dir.path().join("db")),
        other => panic!("expected InUse, got {other:?}"),
    }
    assert_eq!(s.read(b"k").unwrap(), Some(b"v".to_vec()));
    drop(s);
    drop(store);
    match FasterKv::open(config) {
        Err(Error::AlreadyExists { path }) => assert_eq!(path, dir.path().join("db")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

#[test]
fn closed_store_fails_operations() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(small(dir.path())).unwrap();
    let mut s = store.start_session();
    s.upsert(b"k", b"v").unwrap();
    let other = store.clone();
    store.close();
    assert!(other.is_closed());
    assert!(matches!(s.read(b"k"), Err(Error::Closed)));
    assert!(matches!(s.upsert(b"k", b"w"), Err(Error::Closed)));
    assert!(matches!(s.rmw(b"k", b"", &AddU64), Err(Error::Closed)));
    assert!(matches!(s.delete(b"k"), Err(Error::Closed)));
    assert!(matches!(s.complete_pending(true), Err(Error::Closed)));
    assert!(matches!(other.try_start_session(), Err(Error::Closed)));
    let mut late = other.start_session();
    assert!(matches!(late.read(b"k"), Err(Error::Closed)));
}

#[test]
fn dropping_the_last_handle_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(small(dir.path())).unwrap();
    let second = store.clone();
    let mut s = store.start_session();
    drop(store);
    s.upsert(b"k", b"v").unwrap();
    drop(second);
    assert!(matches!(s.read(b"k"), Err(Error::Closed)));
}

#[test]
fn session_limit_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(small(dir.path()).with_max_sessions(2)).unwrap();
    let _a = store.try_start_session().unwrap();
    let _b = store.try_start_session().unwrap();
    // Spare epoch slots exist for the layers, so the table ends a little later.
    let mut extra = Vec::new();
    let err = loop {
        match store.try_start_session() {
            Ok(s) => extra.push(s),
            Err(e) => break e,
        }
        assert!(extra.len() < 100, "the epoch table never filled");
    };
    assert!(matches!(err, Error::Epoch(_)), "{err:?}");
}

#[test]
fn invalid_configurations_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [
        small(dir.path()).with_page_size(3000),
        small(dir.path()).with_log_memory(32 << 10),
        small(dir.path()).with_mutable_fraction(0.0),
        small(dir.path()).with_table_bits(60),
        small(dir.path()).with_max_sessions(0),
    ];
    for config in bad {
        let r = FasterKv::open(config.clone());
        assert!(r.is_err(), "{config:?}");
        // A refused configuration leaves the directory usable.
    }
    FasterKv::open(small(dir.path())).unwrap();
}

#[test]
fn file_and_uring_devices_store_the_log_under_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind) in [("file", LogDevice::File), ("uring", LogDevice::IoUring)] {
        let config = Config::new(dir.path().join(name))
            .with_log_device(kind)
            .with_log_memory(64 << 10)
            .with_page_size(16 << 10)
            .with_table_bits(6);
        let store = match FasterKv::open(config) {
            Ok(store) => store,
            // io_uring may be unavailable (kernel or sandbox): a typed error, not a panic.
            Err(Error::Device(e)) if kind == LogDevice::IoUring => {
                eprintln!("io_uring unavailable: {e}");
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let mut s = store.start_session();
        for i in 0..200u32 {
            s.upsert(&i.to_le_bytes(), &[i as u8; 700]).unwrap();
        }
        assert!(store.hlog().head_address().raw() > 0, "{name}: evicted");
        for i in 0..200u32 {
            assert_eq!(
                s.read(&i.to_le_bytes()).unwrap(),
                Some(vec![i as u8; 700]),
                "{name}: key {i}"
            );
        }
        let segments = std::fs::read_dir(dir.path().join(name).join("log"))
            .unwrap()
            .count();
        assert!(segments > 0, "{name}: the log is on disk");
    }
}
