//! Concurrent tail allocation: records never overlap and cover every closed page.
#![cfg(not(loom))]

mod common;

use std::collections::BTreeMap;

use faster_hlog::record::{Entry, parse_entry};
use faster_hlog::{Address, HlogError, NewRecord};

#[test]
fn concurrent_allocation_tiles_pages() {
    let page = 64 << 10;
    let (log, epoch) = common::memory_log(page, 256 << 10);
    let threads = 4u64;
    let per_thread = 1500u64;
    let results: Vec<Vec<(u64, u64, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let log = &log;
                let epoch = &epoch;
                s.spawn(move || {
                    let mut p = epoch.register().unwrap();
                    let mut g = p.protect();
                    let mut out = Vec::new();
                    for i in 0..per_thread {
                        let id = t * per_thread + i;
                        let len = ((id * 7919) % 3000) as usize;
                        let value = common::value_of(id, len);
                        let key = id.to_le_bytes();
                        let rec = NewRecord::new(&key, &value);
                        let addr = log.append(&mut g, &rec).unwrap();
                        out.push((addr.raw(), rec.size().unwrap(), id));
                        g.refresh();
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (addr, size, id) in results.into_iter().flatten() {
        assert!(
            all.insert(addr, (size, id)).is_none(),
            "address handed out twice"
        );
    }
    assert_eq!(all.len() as u64, threads * per_thread);
    // No overlaps, and no record crosses a page end.
    let mut prev_end = 0;
    for (&addr, &(size, _)) in &all {
        assert!(addr >= prev_end, "records overlap at {addr:#x}");
        assert_eq!(addr / page, (addr + size - 1) / page, "record spans pages");
        prev_end = addr + size;
    }
    assert!(log.frames_reused() > 0, "the test should evict pages");

    // Flush everything and walk every page on the device: each byte is a record we handed
    // out, or the closing padding of its page.
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let tail = log.tail_address();
    log.flush_until(&mut g, tail).unwrap();
    drop(g);
    let device = log.device().clone();
    let mut expected = all.iter().peekable();
    let last_page = (tail.raw() - 1) / page;
    for pg in 0..=last_page {
        let len = page.min(device.size() - pg * page);
        let mut bytes = common::read_device(&*device, pg * page, len as usize);
        bytes.resize(page as usize, 0);
        let mut pos = if pg == 0 {
            Address::FIRST_VALID.raw()
        } else {
            0
        };
        while pos < page {
            let addr = pg * page + pos;
            if addr == tail.raw() {
                break;
            }
            match parse_entry(&bytes[pos as usize..]).unwrap() {
                Entry::Record(r) => {
                    let (&want, &(size, id)) = expected.next().expect("an extra record");
                    assert_eq!(addr, want);
                    assert_eq!(r.size() as u64, size);
                    assert_eq!(r.key(), id.to_le_bytes());
                    assert_eq!(r.value(), common::value_of(id, r.value().len()));
                    pos += size;
                }
                Entry::Filler => {
                    assert!(pg < last_page, "filler in the tail page");
                    break;
                }
                Entry::Unwritten => panic!("unwritten gap at {addr:#x} below the tail"),
            }
        }
    }
    assert!(expected.next().is_none(), "records missing from the pages");
}

#[test]
fn allocation_errors_are_typed() {
    let (log, epoch) = common::memory_log(4096, 4 * 4096);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    assert!(matches!(
        log.allocate(&mut g, 4097),
        Err(HlogError::RecordTooLarge {
            size: 4097,
            page_size: 4096
        })
    ));
    assert!(matches!(
        log.allocate(&mut g, 0),
        Err(HlogError::InvalidArgument(_))
    ));
    // A full-page record goes to a fresh page.
    let a = log.allocate(&mut g, 4096).unwrap();
    assert_eq!(a.raw(), 4096);
    let big = vec![1u8; 5000];
    assert!(matches!(
        log.append(&mut g, &NewRecord::new(b"k", &big)),
        Err(HlogError::RecordTooLarge { .. })
    ));

    let epoch = faster_epoch::LightEpoch::new();
    let device: std::sync::Arc<dyn faster_device::Device> = std::sync::Arc::new(
        faster_device::MemoryDevice::new(faster_device::DeviceOptions::default()).unwrap(),
    );
    let config = faster_hlog::HlogConfig::default()
        .with_page_size(1 << 20)
        .with_memory_size(1 << 20);
    assert!(matches!(
        faster_hlog::Hlog::new(config, device, epoch),
        Err(HlogError::InvalidConfig(_))
    ));
}
