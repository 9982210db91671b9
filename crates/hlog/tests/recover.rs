//! `Hlog::recover`: a log reopened over the device an earlier log wrote.
#![cfg(not(loom))]

mod common;

use std::sync::{Arc, mpsc};

use faster_device::{Device, DeviceOptions, FileDevice, MemoryDevice};
use faster_epoch::LightEpoch;
use faster_hlog::{Address, Hlog, HlogConfig, HlogError, NewRecord};

const PAGE: u64 = 16 << 10;

fn config() -> HlogConfig {
    HlogConfig::default()
        .with_page_size(PAGE)
        .with_memory_size(64 << 10)
}

fn value(id: u64) -> Vec<u8> {
    common::value_of(id, (id % 300) as usize)
}

/// Appends `ids` to `log` with a fresh participant; returns (address, id).
fn append(log: &Hlog, ids: std::ops::Range<u64>) -> Vec<(Address, u64)> {
    let mut p = log.epoch().register().unwrap();
    let mut g = p.protect();
    ids.map(|id| {
        let addr = log
            .append(&mut g, &NewRecord::new(&id.to_le_bytes(), &value(id)))
            .unwrap();
        g.refresh();
        (addr, id)
    })
    .collect()
}

/// Writes `n` records with a first log over `device`, flushes them and drops the log.
/// Returns the records and the end of the log.
fn first_log(device: Arc<dyn Device>, n: u64) -> (Vec<(Address, u64)>, Address) {
    let epoch = LightEpoch::new();
    let log = Hlog::new(config(), device, epoch.clone()).unwrap();
    let recs = append(&log, 0..n);
    let end = log.tail_address();
    assert_ne!(end.raw() % PAGE, 0, "the test wants a partial last page");
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    log.flush_until(&mut g, end).unwrap();
    drop(g);
    log.device().flush().unwrap();
    (recs, end)
}

/// Reads every record of `recs` back with `read_async`.
fn read_all_async(log: &Hlog, recs: &[(Address, u64)]) {
    let (tx, rx) = mpsc::channel();
    for &(addr, id) in recs {
        let tx = tx.clone();
        log.read_async(addr, move |r| tx.send((addr, id, r)).unwrap())
            .unwrap();
    }
    drop(tx);
    log.complete_pending(true).unwrap();
    let mut n = 0;
    for (addr, id, r) in rx {
        let rec = r.unwrap();
        assert_eq!(rec.address(), addr);
        assert_eq!(rec.view().key(), id.to_le_bytes());
        assert_eq!(rec.view().value(), value(id));
        n += 1;
    }
    assert_eq!(n, recs.len());
}

/// Scans `[from, to)` of `log` and compares with `recs`.
fn scan_equals(log: &Hlog, from: Address, to: Address, recs: &[(Address, u64)]) {
    let got: Vec<_> = log
        .scan(from, to)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(
                r.value,
                value(u64::from_le_bytes(r.key[..].try_into().unwrap()))
            );
            (r.address, u64::from_le_bytes(r.key.try_into().unwrap()))
        })
        .collect();
    assert_eq!(got, recs);
}

fn recover_and_continue(device: Arc<dyn Device>, recs: Vec<(Address, u64)>, end: Address) {
    let n = recs.len() as u64;
    let epoch = LightEpoch::new();
    let begin = Address::FIRST_VALID;
    let log = Hlog::recover(config(), device, epoch.clone(), begin, end).unwrap();
    let boundary = Address::new(end.raw().next_multiple_of(PAGE)).unwrap();
    assert_eq!(log.begin_address(), begin);
    for a in [
        log.head_address(),
        log.safe_head_address(),
        log.read_only_address(),
        log.safe_read_only_address(),
        log.flushed_until_address(),
        log.tail_address(),
    ] {
        assert_eq!(a, boundary);
    }
    {
        let mut p = epoch.register().unwrap();
        let g = p.protect();
        for &(addr, _) in &recs {
            assert!(log.get(&g, addr).unwrap().is_none());
        }
    }
    read_all_async(&log, &recs);
    scan_equals(&log, begin, end, &recs);
    scan_equals(&log, Address::INVALID, Address::MAX, &recs);
    // The wasted end of the last recovered page holds no record.
    assert!(matches!(
        log.read_async(end, |_| {}),
        Err(HlogError::AddressOutOfRange { .. })
    ));

    // Append after recovery: in memory first, then (many more) evicted to the device.
    let more = append(&log, n..n + 50);
    assert_eq!(more[0].0, boundary);
    {
        let mut p = epoch.register().unwrap();
        let g = p.protect();
        for &(addr, id) in &more {
            let r = log.get(&g, addr).unwrap().unwrap();
            assert!(r.key_eq(&id.to_le_bytes()));
            assert_eq!(r.value(), value(id));
        }
    }
    let later = append(&log, n + 50..n + 3000);
    let all: Vec<_> = recs.iter().chain(&more).chain(&later).copied().collect();
    assert!(
        log.head_address() > more[49].0,
        "the first appended records were evicted"
    );
    let on_disk: Vec<_> = all
        .iter()
        .filter(|(a, _)| *a < log.head_address())
        .copied()
        .collect();
    read_all_async(&log, &on_disk);
    scan_equals(&log, Address::INVALID, Address::MAX, &all);
}

#[test]
fn recover_over_memory_device() {
    let device: Arc<dyn Device> = Arc::new(MemoryDevice::new(DeviceOptions::default()).unwrap());
    let (recs, end) = first_log(device.clone(), 2000);
    recover_and_continue(device, recs, end);
}

#[test]
fn recover_over_reopened_file_device() {
    let dir = tempfile::tempdir().unwrap();
    let (recs, end) = {
        let device: Arc<dyn Device> =
            Arc::new(FileDevice::open(dir.path(), DeviceOptions::default()).unwrap());
        first_log(device, 2000)
    };
    let device: Arc<dyn Device> =
        Arc::new(FileDevice::open(dir.path(), DeviceOptions::default()).unwrap());
    recover_and_continue(device, recs, end);
}

#[test]
fn recover_twice_ignores_bytes_past_the_first_end() {
    // The first log wrote past the end we recover to: those records must not reappear, not
    // even in a second recovery that resumes further on.
    let device: Arc<dyn Device> = Arc::new(MemoryDevice::new(DeviceOptions::default()).unwrap());
    let (recs, _) = first_log(device.clone(), 2000);
    let end = recs[1500].0;
    let kept = &recs[..1500];
    let epoch = LightEpoch::new();
    let log = Hlog::recover(
        config(),
        device.clone(),
        epoch.clone(),
        Address::FIRST_VALID,
        end,
    )
    .unwrap();
    scan_equals(&log, Address::INVALID, Address::MAX, kept);
    let more = append(&log, 5000..5100);
    let end2 = log.tail_address();
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let all: Vec<_> = kept.iter().chain(&more).copied().collect();
    // A snapshot across the wasted end of the recovered page is a log device again.
    let target: Arc<dyn Device> = Arc::new(MemoryDevice::new(DeviceOptions::default()).unwrap());
    let info = log
        .snapshot_to(&mut g, &*target, Address::FIRST_VALID, end2)
        .unwrap();
    assert_eq!(info.base, Address::INVALID);
    let copy = Hlog::recover(
        config(),
        target,
        LightEpoch::new(),
        Address::FIRST_VALID,
        end2,
    )
    .unwrap();
    scan_equals(&copy, Address::INVALID, Address::MAX, &all);
    log.flush_until(&mut g, end2).unwrap();
    drop(g);
    drop(log);
    let log = Hlog::recover(
        config(),
        device,
        LightEpoch::new(),
        Address::FIRST_VALID,
        end2,
    )
    .unwrap();
    scan_equals(&log, Address::INVALID, Address::MAX, &all);
}

#[test]
fn invalid_recoveries_fail_cleanly() {
    let device: Arc<dyn Device> = Arc::new(MemoryDevice::new(DeviceOptions::default()).unwrap());
    let (recs, end) = first_log(device.clone(), 100);
    let size = device.size();
    let bad = |begin: u64, end: u64| {
        let r = Hlog::recover(
            config(),
            device.clone(),
            LightEpoch::new(),
            Address::new(begin).unwrap(),
            Address::new(end).unwrap(),
        );
        assert!(
            matches!(r, Err(HlogError::AddressOutOfRange { .. })),
            "{r:?}"
        );
    };
    bad(64, size + 4096); // past the device's end
    bad(0, end.raw()); // below the first valid address
    bad(recs[5].0.raw(), recs[4].0.raw()); // end below begin
    bad(64, end.raw() + 4); // misaligned
    assert_eq!(device.size(), size, "failed recoveries write nothing");
    // An empty log needs no device bytes.
    let empty: Arc<dyn Device> = Arc::new(MemoryDevice::new(DeviceOptions::default()).unwrap());
    let log = Hlog::recover(
        config(),
        empty,
        LightEpoch::new(),
        Address::FIRST_VALID,
        Address::FIRST_VALID,
    )
    .unwrap();
    assert_eq!(log.tail_address().raw(), PAGE);
    assert_eq!(append(&log, 0..3)[0].0.raw(), PAGE);
}

/// `invalidate_on_device` sets the invalid bit durably: a second recovery's scan skips the
/// records; unsorted, in-memory and non-record addresses are typed errors.
#[test]
fn invalidated_records_stay_invalid_across_recoveries() {
    let device: Arc<dyn Device> = Arc::new(MemoryDevice::new(DeviceOptions::default()).unwrap());
    let (recs, end) = first_log(device.clone(), 500);
    let open =
        || Hlog::recover(config(), device.clone(), LightEpoch::new(), recs[0].0, end).unwrap();
    let log = open();
    let victims: Vec<Address> = recs.iter().step_by(7).map(|r| r.0).collect();
    assert_eq!(log.invalidate_on_device(&victims).unwrap(), victims.len());
    // Already invalid: nothing to do.
    assert_eq!(log.invalidate_on_device(&victims[..3]).unwrap(), 0);
    let unsorted = [victims[1], victims[0]];
    assert!(matches!(
        log.invalidate_on_device(&unsorted),
        Err(HlogError::AddressOutOfRange { .. })
    ));
    assert!(matches!(
        log.invalidate_on_device(&[log.tail_address()]),
        Err(HlogError::AddressOutOfRange { .. })
    ));
    assert!(matches!(
        log.invalidate_on_device(&[Address::from_raw_truncated(recs[0].0.raw() + 8)]),
        Err(HlogError::Corrupt { .. })
    ));
    drop(log);
    let log = open();
    let seen: Vec<Address> = log
        .scan(recs[0].0, end)
        .unwrap()
        .map(|r| r.unwrap().address)
        .collect();
    let want: Vec<Address> = recs
        .iter()
        .map(|r| r.0)
        .filter(|a| !victims.contains(a))
        .collect();
    assert_eq!(seen, want);
}
