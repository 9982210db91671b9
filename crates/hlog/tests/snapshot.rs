//! `Hlog::snapshot_to`: ranges in memory, across the disk / memory boundary, with concurrent
//! appends, to a file device, and invalid ranges.
#![cfg(not(loom))]

mod common;

use std::sync::Arc;

use faster_device::{Device, DeviceOptions, FileDevice, MemoryDevice};
use faster_epoch::{Guard, Participant};
use faster_hlog::{Address, Hlog, HlogError, NewRecord, RecordView, SnapshotInfo};

fn memory_device() -> Arc<dyn Device> {
    Arc::new(MemoryDevice::new(DeviceOptions::default()).unwrap())
}

/// Appends records `ids` (key = id, value = `value_of(id, id % max_len)`); returns addresses.
fn append(
    log: &Hlog,
    g: &mut Guard<&mut Participant>,
    ids: std::ops::Range<u64>,
    max_len: u64,
) -> Vec<(Address, u64)> {
    ids.map(|id| {
        let value = common::value_of(id, (id % max_len) as usize);
        let addr = log
            .append(g, &NewRecord::new(&id.to_le_bytes(), &value))
            .unwrap();
        g.refresh();
        (addr, id)
    })
    .collect()
}

/// The target's bytes `[0, bytes_written)`.
fn target_bytes(target: &dyn Device, info: &SnapshotInfo) -> Vec<u8> {
    if info.bytes_written == 0 {
        return Vec::new();
    }
    common::read_device(target, 0, info.bytes_written as usize)
}

/// Every record of `recs` inside `[from, to)` decodes from the snapshot at `addr - base`;
/// the bytes outside `[from, to)` are zero; `[from, to)` equals the log's own bytes once
/// flushed (nothing is updated in place in these tests).
fn check(
    log: &Hlog,
    g: &mut Guard<&mut Participant>,
    info: &SnapshotInfo,
    snap: &[u8],
    recs: &[(Address, u64)],
) {
    let (base, from, to) = (info.base.raw(), info.from.raw(), info.to.raw());
    assert_eq!(snap.len() as u64, info.bytes_written);
    let mut n = 0;
    for &(addr, id) in recs {
        let Some(off) = info.target_offset(addr) else {
            continue;
        };
        let v = RecordView::parse(&snap[off as usize..]).unwrap();
        assert_eq!(v.key(), id.to_le_bytes());
        assert_eq!(v.value(), common::value_of(id, (id % 300) as usize));
        n += 1;
    }
    assert!(n > 0);
    assert!(snap[..(from - base) as usize].iter().all(|&b| b == 0));
    assert!(snap[(to - base) as usize..].iter().all(|&b| b == 0));
    log.flush_until(g, info.to).unwrap();
    let end = (to - base).next_multiple_of(4096) as usize;
    let log_bytes = common::read_device(&**log.device(), base, end);
    assert_eq!(
        &snap[(from - base) as usize..(to - base) as usize],
        &log_bytes[(from - base) as usize..(to - base) as usize]
    );
}

#[test]
fn range_in_memory() {
    let (log, epoch) = common::memory_log(64 << 10, 1 << 20);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let recs = append(&log, &mut g, 0..100, 300);
    assert_eq!(log.head_address(), Address::INVALID);
    let target = memory_device();
    let (from, to) = (recs[3].0, log.tail_address());
    let info = log.snapshot_to(&mut g, &*target, from, to).unwrap();
    assert_eq!(info.base, Address::INVALID);
    assert_eq!((info.from, info.to), (from, to));
    assert_eq!(info.bytes_written, to.raw().next_multiple_of(4096));
    assert_eq!(info.target_offset(recs[2].0), None);
    assert_eq!(info.target_offset(from), Some(from.raw()));
    let snap = target_bytes(&*target, &info);
    check(&log, &mut g, &info, &snap, &recs);
}

#[test]
fn range_across_disk_and_memory() {
    let page = 16 << 10;
    let (log, epoch) = common::memory_log(page, 64 << 10);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let recs = append(&log, &mut g, 0..3000, 300);
    let head = log.head_address();
    assert!(head.raw() > 4 * page, "most of the log is on disk");
    // From inside a page below the head (not aligned) to a record boundary in memory.
    let from = recs.iter().find(|(a, _)| a.raw() > page + 100).unwrap().0;
    let to = recs[recs.len() - 5].0;
    assert!(from < head && to > head);
    let target = memory_device();
    let info = log.snapshot_to(&mut g, &*target, from, to).unwrap();
    assert_eq!(info.base.raw(), from.raw() & !4095);
    let snap = target_bytes(&*target, &info);
    check(&log, &mut g, &info, &snap, &recs);
}

#[test]
fn snapshot_to_file_device_is_durable_and_recoverable() {
    let dir = tempfile::tempdir().unwrap();
    let page = 16 << 10;
    let (log, epoch) = common::memory_log(page, 64 << 10);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let recs = append(&log, &mut g, 0..2000, 300);
    let (from, to) = (log.begin_address(), log.tail_address());
    let info = {
        let target = FileDevice::open(dir.path(), DeviceOptions::default()).unwrap();
        log.snapshot_to(&mut g, &target, from, to).unwrap()
    };
    assert_eq!(info.base, Address::INVALID);
    // Reopen the files: the snapshot is a log device (base 0), so a log can recover over it.
    let target: Arc<dyn Device> =
        Arc::new(FileDevice::open(dir.path(), DeviceOptions::default()).unwrap());
    let snap = target_bytes(&*target, &info);
    check(&log, &mut g, &info, &snap, &recs);
    let config = faster_hlog::HlogConfig::default()
        .with_page_size(page)
        .with_memory_size(64 << 10);
    let epoch2 = faster_epoch::LightEpoch::new();
    let copy = Hlog::recover(config, target, epoch2, from, to).unwrap();
    let got: Vec<_> = copy
        .scan(Address::INVALID, Address::MAX)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.address, u64::from_le_bytes(r.key.try_into().unwrap()))
        })
        .collect();
    assert_eq!(got, recs);
}

#[test]
fn concurrent_appends_while_snapshotting() {
    let page = 64 << 10;
    let (log, epoch) = common::memory_log(page, 4 << 20);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let recs = append(&log, &mut g, 0..20_000, 300);
    let (from, to) = (log.begin_address(), log.tail_address());
    assert!(to.raw() > 3 << 20, "several chunks");
    let target = memory_device();
    let reused_before = log.frames_reused();
    let info = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut p = epoch.register().unwrap();
            let mut g = p.protect();
            append(&log, &mut g, 20_000..80_000, 300).len()
        });
        let info = log.snapshot_to(&mut g, &*target, from, to).unwrap();
        // The writer may wait for this participant to refresh before it can evict a page.
        while !writer.is_finished() {
            g.refresh();
            std::thread::yield_now();
        }
        assert_eq!(writer.join().unwrap(), 60_000);
        info
    });
    assert!(
        log.frames_reused() > reused_before,
        "pages were evicted meanwhile"
    );
    assert!(
        log.head_address() > to,
        "the whole range was evicted by now"
    );
    let snap = target_bytes(&*target, &info);
    check(&log, &mut g, &info, &snap, &recs);
}

#[test]
fn invalid_ranges_are_errors() {
    let (log, epoch) = common::memory_log(16 << 10, 64 << 10);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let recs = append(&log, &mut g, 0..10, 300);
    let target = memory_device();
    let tail = log.tail_address();
    let bad = |r: Result<SnapshotInfo, HlogError>| {
        assert!(
            matches!(r, Err(HlogError::AddressOutOfRange { .. })),
            "{r:?}"
        )
    };
    bad(log.snapshot_to(&mut g, &*target, Address::INVALID, tail));
    bad(log.snapshot_to(&mut g, &*target, recs[5].0, recs[4].0));
    let past = Address::new(tail.raw() + 8).unwrap();
    bad(log.snapshot_to(&mut g, &*target, recs[0].0, past));
    assert_eq!(target.size(), 0, "nothing written");
    let empty = log
        .snapshot_to(&mut g, &*target, recs[3].0, recs[3].0)
        .unwrap();
    assert_eq!(empty.bytes_written, 0);
}
