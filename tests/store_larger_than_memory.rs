//! A store with 16 MiB of log memory holding 200 MB of data: every key reads back correctly
//! through the blocking and the non-blocking forms, and RMWs of on-disk keys go pending and
//! copy-update.

use faster::{AddU64, Config, FasterKv, Status};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const VALUE: usize = 4096;
const TOTAL: usize = 200_000_000;
const KEYS: u64 = (TOTAL / VALUE) as u64;

fn key(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

/// A value that tells which key (and which version) it belongs to.
fn value(i: u64, version: u64) -> Vec<u8> {
    let mut x = (i << 8 | version).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(VALUE);
    while v.len() < VALUE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

#[test]
fn two_hundred_megabytes_through_sixteen_mebibytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path())
        .with_log_memory(16 << 20)
        .with_page_size(1 << 20)
        .with_table_bits(14)
        .with_device_options(faster::device::DeviceOptions::default().with_direct_io(false));
    let store = FasterKv::open(config).unwrap();
    let mut s = store.start_session();
    let t = Instant::now();
    s.rmw(b"counter", &1u64.to_le_bytes(), &AddU64).unwrap();
    for i in 0..KEYS {
        s.upsert(&key(i), &value(i, 0)).unwrap();
    }
    let wrote = t.elapsed();
    let hlog = store.hlog();
    assert!(
        hlog.tail_address().raw() >= TOTAL as u64,
        "the log holds the data"
    );
    assert!(
        hlog.head_address().raw() > hlog.tail_address().raw() - (16 << 20),
        "the head follows the tail"
    );

    // The counter was evicted long ago: the blocking RMW reads it from disk.
    s.rmw(b"counter", &2u64.to_le_bytes(), &AddU64).unwrap();
    assert_eq!(
        s.read(b"counter").unwrap(),
        Some(3u64.to_le_bytes().to_vec())
    );

    // Blocking reads of every key (most on disk).
    let t = Instant::now();
    for i in 0..KEYS {
        let got = s.read(&key(i)).unwrap();
        assert!(got.as_deref() == Some(&value(i, 0)[..]), "key {i}");
    }
    let blocking = t.elapsed();

    // Non-blocking reads, many in flight, completed in batches.
    let t = Instant::now();
    let bad = Arc::new(Mutex::new(Vec::new()));
    let mut pending = 0;
    for i in 0..KEYS {
        let bad = bad.clone();
        let st = s
            .read_async(&key(i), move |r| {
                let ok = matches!(&r, Ok(Some(v)) if *v == value(i, 0));
                if !ok {
                    bad.lock().unwrap().push(i);
                }
            })
            .unwrap();
        if st == Status::Pending {
            pending += 1;
        }
        if i % 64 == 63 {
            s.complete_pending(false).unwrap();
        }
    }
    s.complete_pending(true).unwrap();
    let non_blocking = t.elapsed();
    assert_eq!(s.pending_count(), 0);
    assert!(
        pending > KEYS / 2,
        "most keys are on disk ({pending} pending)"
    );
    assert!(bad.lock().unwrap().is_empty(), "{:?}", bad.lock().unwrap());

    // Non-blocking RMWs of on-disk keys go pending and copy-update.
    let done = Arc::new(Mutex::new(0u64));
    let mut went_pending = 0;
    for i in (0..KEYS).step_by(997) {
        let done = done.clone();
        let st = s
            .rmw_async(&key(i), &1u64.to_le_bytes(), AddU64, move |r| {
                r.unwrap();
                *done.lock().unwrap() += 1;
            })
            .unwrap();
        went_pending += u64::from(st == Status::Pending);
    }
    s.complete_pending(true).unwrap();
    let rmws = (0..KEYS).step_by(997).count() as u64;
    assert_eq!(*done.lock().unwrap(), rmws);
    assert!(went_pending > 0);
    for i in (0..KEYS).step_by(997) {
        let mut want = value(i, 0);
        let first = u64::from_le_bytes(want[..8].try_into().unwrap()).wrapping_add(1);
        want = first.to_le_bytes().to_vec();
        assert_eq!(s.read(&key(i)).unwrap(), Some(want), "key {i}");
    }
    eprintln!(
        "{KEYS} records of {VALUE} bytes: write {wrote:?}, blocking reads {blocking:?}, \
         non-blocking reads {non_blocking:?}"
    );
}
