//! 64 MiB of records through 4 MiB of memory, read back from memory and from the device.
#![cfg(not(loom))]

mod common;

use std::sync::Arc;
use std::sync::mpsc;

use faster_device::{Device, DeviceOptions, MemoryDevice};
use faster_epoch::LightEpoch;
use faster_hlog::{Address, Hlog, HlogConfig, HlogError, NewRecord};

const VALUE: usize = 4096;
const TOTAL: u64 = 64 << 20;

fn roundtrip(device: Arc<dyn Device>) {
    let epoch = LightEpoch::new();
    let config = HlogConfig::default()
        .with_page_size(256 << 10)
        .with_memory_size(4 << 20);
    let log = Hlog::new(config, device, epoch.clone()).unwrap();
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let mut addrs = Vec::new();
    let mut value = vec![0u8; VALUE];
    let mut i = 0u64;
    while log.tail_address().raw() < TOTAL {
        value[..8].copy_from_slice(&i.to_le_bytes());
        value[VALUE - 8..].copy_from_slice(&(!i).to_le_bytes());
        let key = i.to_le_bytes();
        addrs.push(log.append(&mut g, &NewRecord::new(&key, &value)).unwrap());
        g.refresh();
        i += 1;
    }
    let n = addrs.len() as u64;
    assert!(n > 15_000, "{n} records");
    // Memory stays within budget: head trails the tail by at most the frames.
    let head = log.head_address();
    assert!(log.tail_address().raw() - head.raw() <= 4 << 20);
    assert!(head.raw() > 32 << 20, "most of the log was evicted");
    assert!(log.flushed_until_address() >= head);
    assert!(log.safe_head_address() <= head);
    assert!(log.safe_read_only_address() <= log.read_only_address());
    assert!(log.read_only_address() <= log.tail_address());

    let check = |i: u64, key: &[u8], value: &[u8]| {
        assert_eq!(key, i.to_le_bytes());
        assert_eq!(value.len(), VALUE);
        assert_eq!(value[..8], i.to_le_bytes());
        assert_eq!(value[VALUE - 8..], (!i).to_le_bytes());
    };
    let (tx, rx) = mpsc::channel();
    let mut in_memory = 0;
    let mut pending = 0;
    for (i, &addr) in addrs.iter().enumerate() {
        let i = i as u64;
        match log.get(&g, addr).unwrap() {
            Some(r) => {
                in_memory += 1;
                check(i, &r.key(), &r.value());
            }
            None => {
                let tx = tx.clone();
                log.read_async(addr, move |r| tx.send((i, addr, r)).unwrap())
                    .unwrap();
                pending += 1;
                if pending % 128 == 0 {
                    log.complete_pending(true).unwrap();
                }
            }
        }
    }
    log.complete_pending(true).unwrap();
    drop(tx);
    let mut from_disk = 0;
    for (i, addr, r) in rx {
        let rec = r.unwrap();
        assert_eq!(rec.address(), addr);
        let v = rec.view();
        check(i, v.key(), v.value());
        from_disk += 1;
    }
    assert_eq!(from_disk, pending);
    assert!(
        in_memory > 100 && from_disk > 10_000,
        "{in_memory} {from_disk}"
    );

    // Fold-over style: flush everything up to the tail, then read the newest record from disk.
    let tail = log.shift_read_only_to_tail(&mut g);
    log.flush_until(&mut g, tail).unwrap();
    assert!(log.flushed_until_address() >= tail);
    let last = *addrs.last().unwrap();
    let (tx, rx) = mpsc::channel();
    log.read_async(last, move |r| tx.send(r).unwrap()).unwrap();
    log.complete_pending(true).unwrap();
    let rec = rx.recv().unwrap().unwrap();
    check(n - 1, rec.view().key(), rec.view().value());
    // Appending after a mid-page flush keeps working, and the page is flushed again later.
    let a = log
        .append(&mut g, &NewRecord::new(b"after", b"fold"))
        .unwrap();
    let end = log.tail_address();
    log.flush_until(&mut g, end).unwrap();
    let (tx, rx) = mpsc::channel();
    log.read_async(a, move |r| tx.send(r).unwrap()).unwrap();
    log.complete_pending(true).unwrap();
    let rec = rx.recv().unwrap().unwrap();
    assert_eq!(rec.view().value(), b"fold");
    // Not yet flushed: a typed error.
    let b = log.append(&mut g, &NewRecord::new(b"x", b"y")).unwrap();
    assert!(matches!(
        log.read_async(b, |_| {}),
        Err(HlogError::AddressOutOfRange { .. })
    ));
    assert!(matches!(
        log.get(&g, Address::new(8).unwrap()),
        Err(HlogError::AddressOutOfRange { .. })
    ));
}

#[test]
fn roundtrip_memory_device() {
    roundtrip(Arc::new(
        MemoryDevice::new(DeviceOptions::default()).unwrap(),
    ));
}

#[test]
fn roundtrip_default_device() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let device = faster_device::open_default(
        dir.path(),
        DeviceOptions::default().with_segment_size(16 << 20),
    )
    .unwrap();
    roundtrip(Arc::from(device));
}
