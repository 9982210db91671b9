//! The CPR shift (FASTER's CPR_SHIFT_DETECTED): an operation of a session still in
//! PREPARE of version `v` that meets a record of a newer version must not act on it; the
//! session crosses its cut and the operation runs again in the new version, with the
//! same serial number. A session cannot be held in PREPARE from outside while another
//! writes `v + 1` records (it would synchronise before its operation), so these tests
//! give the session PREPARE's rules by hand and let a real checkpoint write the newer
//! records.
use super::*;
use crate::{AddU64, Config, FasterKv, LogDevice};

fn store() -> (tempfile::TempDir, FasterKv) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path())
        .with_log_device(LogDevice::Memory)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(10);
    let store = FasterKv::open(config).unwrap();
    (dir, store)
}

/// Gives `s` the rules of PREPARE in version `version`.
fn in_prepare(s: &mut Session, version: u32) {
    s.cx = Cx {
        version,
        detect_shift: true,
        copy_older: false,
        no_pending_writes: true,
    };
}

fn versions(store: &FasterKv, key: &[u8]) -> Vec<u32> {
    let hlog = store.hlog();
    hlog.scan(hlog.begin_address(), hlog.tail_address())
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|r| r.key == key)
        .map(|r| r.version)
        .collect()
}

#[test]
fn every_operation_kind_shifts_on_a_newer_record_and_keeps_its_serial() {
    let (_dir, store) = store();
    let mut w = store.start_session();
    let mut s = store.start_session();
    store.checkpoint().unwrap().wait().unwrap(); // the store works in version 2 now
    for k in [&b"u"[..], b"r", b"m", b"d"] {
        w.upsert(k, &1u64.to_le_bytes()).unwrap(); // version-2 records
    }
    s.read(b"warm-up").unwrap(); // `s` follows the checkpoint's end here
    assert_eq!(s.cx.version, 2);
    assert_eq!(versions(&store, b"u"), [2]);
    let serial = s.serial();

    in_prepare(&mut s, 1);
    s.upsert(b"u", b"x").unwrap();
    assert_eq!(s.cx.version, 2, "the session crossed to the new version");
    assert_eq!(
        s.serial(),
        serial + 1,
        "one serial for the shifted operation"
    );
    // A version-1 operation never updated the version-2 record in place: the retry
    // (in version 2, at rest) did.
    assert_eq!(versions(&store, b"u"), [2]);
    assert_eq!(s.read(b"u").unwrap(), Some(b"x".to_vec()));

    in_prepare(&mut s, 1);
    assert_eq!(s.read(b"r").unwrap(), Some(1u64.to_le_bytes().to_vec()));
    assert_eq!(s.cx.version, 2);

    in_prepare(&mut s, 1);
    s.rmw(b"m", &2u64.to_le_bytes(), &AddU64).unwrap();
    assert_eq!(s.cx.version, 2);
    assert_eq!(s.read(b"m").unwrap(), Some(3u64.to_le_bytes().to_vec()));

    in_prepare(&mut s, 1);
    s.delete(b"d").unwrap();
    assert_eq!(s.cx.version, 2);
    assert_eq!(s.read(b"d").unwrap(), None);
    assert_eq!(s.serial(), serial + 7);
    assert_eq!(s.shifts, 4, "each of the four operations shifted once");
}

/// The fast paths for 8-byte keys and values see the newer record too.
#[test]
fn eight_byte_operations_shift_on_a_newer_record() {
    let (_dir, store) = store();
    let mut w = store.start_session();
    let mut s = store.start_session();
    store.checkpoint().unwrap().wait().unwrap(); // the store works in version 2 now
    for k in [
        b"upsert-k",
        b"readkey8",
        b"batch-up",
        b"batch-rd",
        b"rmw-key8",
    ] {
        w.upsert(k, &1u64.to_le_bytes()).unwrap(); // version-2 records
    }
    s.read(b"warm-up").unwrap();
    assert_eq!(s.cx.version, 2);
    let serial = s.serial();

    in_prepare(&mut s, 1);
    s.upsert(b"upsert-k", &2u64.to_le_bytes()).unwrap();
    assert_eq!(s.cx.version, 2, "the upsert crossed to the new version");
    assert_eq!(versions(&store, b"upsert-k"), [2]);

    in_prepare(&mut s, 1);
    let got = s.read_with(b"readkey8", |v| v.map(<[u8]>::to_vec)).unwrap();
    assert_eq!(got, Some(1u64.to_le_bytes().to_vec()));
    assert_eq!(s.cx.version, 2, "the read crossed to the new version");

    in_prepare(&mut s, 1);
    s.upsert_batch(&[(b"batch-up", 3u64.to_le_bytes())])
        .unwrap();
    assert_eq!(s.cx.version, 2, "the batched upsert crossed");
    in_prepare(&mut s, 1);
    s.read_batch(&[b"batch-rd"], |_, v| assert!(v.is_some()))
        .unwrap();
    assert_eq!(s.cx.version, 2, "the batched read crossed");

    in_prepare(&mut s, 1);
    s.rmw(b"rmw-key8", &2u64.to_le_bytes(), &AddU64).unwrap();
    assert_eq!(s.cx.version, 2, "the RMW crossed");
    assert_eq!(versions(&store, b"rmw-key8"), [2]);

    assert_eq!(s.serial(), serial + 5);
    assert_eq!(s.shifts, 5, "each of the five operations shifted once");
    assert_eq!(
        s.read(b"rmw-key8").unwrap(),
        Some(3u64.to_le_bytes().to_vec())
    );
    assert_eq!(
        s.read(b"upsert-k").unwrap(),
        Some(2u64.to_le_bytes().to_vec())
    );
    assert_eq!(
        s.read(b"batch-up").unwrap(),
        Some(3u64.to_le_bytes().to_vec())
    );
}

#[test]
fn records_of_the_same_or_older_versions_do_not_shift() {
    let (_dir, store) = store();
    let mut s = store.start_session();
    s.upsert(b"k", b"1").unwrap(); // a version-1 record
    in_prepare(&mut s, 1);
    s.upsert(b"k", b"2").unwrap();
    assert_eq!(s.cx.version, 1, "no shift: still in PREPARE's rules");
    assert_eq!(versions(&store, b"k"), [1], "updated in place");
    assert_eq!(s.shifts, 0);
}
