//! Bad input and faults give typed errors, never panics and never wrong data: keys and values
//! too large for a page, device read and write failures (injected through the memory
//! device's fault injector), operations on a closed store.

use faster::device::{DeviceOptions, Fault, FaultInjector, MemoryDevice, OpKind};
use faster::hlog::HlogError;
use faster::{AddU64, Config, Error, FasterKv, Rmw, Session, Status};
use std::sync::{Arc, Mutex};

const PAGE: u64 = 4 << 10;

/// A store on a memory device whose faults the test controls.
fn faulty(dir: &std::path::Path) -> (FasterKv, FaultInjector) {
    let faults = FaultInjector::new();
    let device = MemoryDevice::new(
        DeviceOptions::default()
            .with_segment_size(1 << 20)
            .with_faults(faults.clone()),
    )
    .unwrap();
    let config = Config::new(dir)
        .with_device(Arc::new(device))
        .with_log_memory(4 * PAGE)
        .with_page_size(PAGE)
        .with_table_bits(6);
    (FasterKv::open(config).unwrap(), faults)
}

/// Writes enough other records to push everything written before to disk.
fn flood(s: &mut Session, tag: &str) {
    for i in 0..40 {
        s.upsert(format!("{tag}{i}").as_bytes(), &[1; 500]).unwrap();
    }
}

fn is_device_failure(e: &Error) -> bool {
    matches!(e, Error::Hlog(HlogError::Device(_)) | Error::Device(_))
}

/// An RMW that makes values grow past any page.
struct Explode;

impl Rmw for Explode {
    fn initial(&self, _input: &[u8]) -> Vec<u8> {
        vec![0; 2 * PAGE as usize]
    }
    fn in_place(&self, _input: &[u8], _value: &mut [u8]) -> bool {
        false
    }
    fn copy(&self, _input: &[u8], _old: &[u8]) -> Vec<u8> {
        vec![0; 2 * PAGE as usize]
    }
}

#[test]
fn oversized_keys_and_values_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = faulty(dir.path());
    let mut s = store.start_session();
    let big = vec![b'k'; PAGE as usize];
    for r in [
        s.upsert(&big, b"v"),
        s.delete(&big),
        s.rmw(&big, &[1], &AddU64),
    ] {
        let e = r.unwrap_err();
        assert!(
            matches!(e, Error::KeyTooLarge { len, max } if len == PAGE as usize && max == PAGE as usize - 32),
            "{e:?}"
        );
    }
    // A key too long to store has no value.
    assert_eq!(s.read(&big).unwrap(), None);
    let err = s.upsert(b"k", &vec![0; PAGE as usize]).unwrap_err();
    assert!(
        matches!(err, Error::ValueTooLarge { len, max } if len == PAGE as usize && max == PAGE as usize - 40),
        "{err:?}"
    );
    // The largest value that fits does fit.
    let max = vec![3; PAGE as usize - 40];
    s.upsert(b"k", &max).unwrap();
    assert_eq!(s.read(b"k").unwrap(), Some(max.clone()));
    // An RMW whose result does not fit fails and leaves the old value.
    assert!(matches!(
        s.rmw(b"k", b"", &Explode),
        Err(Error::ValueTooLarge { .. })
    ));
    assert!(matches!(
        s.rmw(b"new", b"", &Explode),
        Err(Error::ValueTooLarge { .. })
    ));
    let called = Arc::new(Mutex::new(false));
    let c = called.clone();
    assert!(matches!(
        s.rmw_async(b"k", b"", Explode, move |_| *c.lock().unwrap() = true),
        Err(Error::ValueTooLarge { .. })
    ));
    assert!(!*called.lock().unwrap(), "no context call after an Err");
    assert_eq!(s.read(b"k").unwrap(), Some(max));
    assert_eq!(s.read(b"new").unwrap(), None);
}

#[test]
fn failed_disk_reads_are_errors_and_leave_data_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    let mut s = store.start_session();
    s.upsert(b"victim", b"precious").unwrap();
    s.rmw(b"count", &5u64.to_le_bytes(), &AddU64).unwrap();
    flood(&mut s, "a");
    assert!(store.hlog().head_address().raw() > 0);

    // Blocking read.
    faults.inject(Fault::on(OpKind::Read));
    let err = s.read(b"victim").unwrap_err();
    assert!(is_device_failure(&err), "{err:?}");
    assert_eq!(s.read(b"victim").unwrap(), Some(b"precious".to_vec()));

    // Non-blocking read: the error goes to the context.
    faults.inject(Fault::on(OpKind::Read));
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let st = s
        .read_async(b"victim", move |r| *g.lock().unwrap() = Some(r))
        .unwrap();
    assert_eq!(st, Status::Pending);
    assert_eq!(s.complete_pending(true).unwrap(), 1);
    let r = got.lock().unwrap().take().expect("context called");
    assert!(is_device_failure(&r.unwrap_err()));

    // Blocking and non-blocking RMW of an on-disk counter: the failure changes nothing.
    faults.inject(Fault::on(OpKind::Read));
    assert!(is_device_failure(
        &s.rmw(b"count", &1u64.to_le_bytes(), &AddU64).unwrap_err()
    ));
    faults.inject(Fault::on(OpKind::Read));
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let st = s
        .rmw_async(b"count", &1u64.to_le_bytes(), AddU64, move |r| {
            *g.lock().unwrap() = Some(r)
        })
        .unwrap();
    assert_eq!(st, Status::Pending);
    s.complete_pending(true).unwrap();
    assert!(is_device_failure(
        &got.lock().unwrap().take().unwrap().unwrap_err()
    ));
    assert_eq!(faults.fired(), 4);
    assert_eq!(s.read(b"count").unwrap(), Some(5u64.to_le_bytes().to_vec()));
    s.rmw(b"count", &1u64.to_le_bytes(), &AddU64).unwrap();
    assert_eq!(s.read(b"count").unwrap(), Some(6u64.to_le_bytes().to_vec()));
}

#[test]
fn failed_flushes_stop_appends_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(dir.path());
    let mut s = store.start_session();
    faults.inject(Fault::on(OpKind::Write).forever());
    let mut written = Vec::new();
    let err = loop {
        let i = written.len();
        match s.upsert(format!("k{i}").as_bytes(), &[i as u8; 300]) {
            Ok(()) => written.push(i),
            Err(e) => break e,
        }
        assert!(i < 1000, "the log never ran out of evictable pages");
    };
    assert!(
        matches!(
            err,
            Error::Hlog(HlogError::FlushFailed { .. } | HlogError::PageTurnFailed { .. })
        ),
        "{err:?}"
    );
    // Further appends keep failing, promptly.
    assert!(s.upsert(b"more", &[0; 300]).is_err());
    assert!(s.rmw(b"fresh", &[1], &AddU64).is_err());
    // The newest records are still in memory and read back right.
    let last = *written.last().unwrap();
    assert_eq!(
        s.read(format!("k{last}").as_bytes()).unwrap(),
        Some(vec![last as u8; 300])
    );
}

#[test]
fn closing_fails_pending_operations() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = faulty(dir.path());
    let mut s = store.start_session();
    s.upsert(b"old", b"value").unwrap();
    flood(&mut s, "b");
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let st = s
        .read_async(b"old", move |r| *g.lock().unwrap() = Some(r))
        .unwrap();
    assert_eq!(st, Status::Pending);
    store.close();
    assert!(matches!(s.complete_pending(true), Err(Error::Closed)));
    assert!(matches!(
        got.lock().unwrap().take(),
        Some(Err(Error::Closed))
    ));
    assert!(matches!(
        s.read_async(b"old", |_| panic!("not called")),
        Err(Error::Closed)
    ));
}

#[test]
fn dropping_a_session_completes_its_pending_operations() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = faulty(dir.path());
    let mut s = store.start_session();
    s.upsert(b"old", b"value").unwrap();
    flood(&mut s, "c");
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let st = s
        .read_async(b"old", move |r| *g.lock().unwrap() = Some(r))
        .unwrap();
    assert_eq!(st, Status::Pending);
    assert_eq!(s.pending_count(), 1);
    drop(s);
    assert_eq!(
        got.lock().unwrap().take().unwrap().unwrap(),
        Some(b"value".to_vec())
    );
}
