//! Every crate the facade re-exports is reachable and works through it
//! (after crossbeam's `tests/subcrates.rs`).

use faster::device::{self, AlignedBuf, Device, DeviceKind, DeviceOptions, MemoryDevice};
use faster::epoch::{EpochError, LightEpoch};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn epoch_through_the_facade() {
    let epoch = LightEpoch::with_capacity(1, 4).unwrap();
    let mut p = epoch.register().unwrap();
    assert_eq!(
        epoch.register().unwrap_err(),
        EpochError::TableFull { capacity: 1 }
    );
    let runs = Arc::new(AtomicUsize::new(0));
    let mut guard = p.protect();
    let r = runs.clone();
    guard.bump_epoch(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    guard.refresh();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(guard.finish_phase(1), "the only participant is the last");
}

#[test]
fn devices_through_the_facade() {
    let dir = tempfile::tempdir().unwrap();
    let chosen = device::open_default(dir.path(), DeviceOptions::default()).unwrap();
    assert!(matches!(
        chosen.kind(),
        DeviceKind::IoUring | DeviceKind::File
    ));

    let dev = MemoryDevice::new(DeviceOptions::default()).unwrap();
    let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let page = AlignedBuf::from_slice(&data, dev.alignment()).unwrap();
    dev.write(0, Box::new(page), Box::new(|r| r.unwrap()))
        .unwrap();
    device::drain(&dev).unwrap();
    let got = Arc::new(std::sync::Mutex::new(None));
    let g = got.clone();
    let buf = AlignedBuf::new(4096, dev.alignment()).unwrap();
    dev.read(
        0,
        buf,
        Box::new(move |r| *g.lock().unwrap() = Some(r.unwrap())),
    )
    .unwrap();
    device::drain(&dev).unwrap();
    let got = got.lock().unwrap().take().unwrap();
    assert_eq!(&got[..], &data[..]);
}
