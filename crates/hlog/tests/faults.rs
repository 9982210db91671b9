//! Device failures surface as typed errors instead of hangs or panics.
#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::mpsc;

use faster_device::{Device, DeviceOptions, Fault, FaultInjector, MemoryDevice, OpKind};
use faster_epoch::LightEpoch;
use faster_hlog::{Hlog, HlogConfig, HlogError, NewRecord};

fn log_with(faults: &FaultInjector) -> (Hlog, LightEpoch) {
    let epoch = LightEpoch::new();
    let device: Arc<dyn Device> =
        Arc::new(MemoryDevice::new(DeviceOptions::default().with_faults(faults.clone())).unwrap());
    let config = HlogConfig::default()
        .with_page_size(4096)
        .with_memory_size(4 * 4096);
    (Hlog::new(config, device, epoch.clone()).unwrap(), epoch)
}

#[test]
fn failed_flush_stops_allocation_with_an_error() {
    let faults = FaultInjector::new();
    faults.inject(Fault::on(OpKind::Write).after(2).forever());
    let (log, epoch) = log_with(&faults);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let value = [7u8; 500];
    let err = (0..10_000)
        .find_map(|i: u64| {
            let key = i.to_le_bytes();
            let r = log.append(&mut g, &NewRecord::new(&key, &value));
            g.refresh();
            r.err()
        })
        .expect("allocation must fail once eviction needs the failed page");
    assert!(matches!(err, HlogError::FlushFailed { .. }), "{err}");
    // Later allocations, from this thread or another, fail too instead of waiting forever.
    let again = log.append(&mut g, &NewRecord::new(b"k", &[1; 4000]));
    assert!(
        matches!(
            again,
            Err(HlogError::PageTurnFailed { .. } | HlogError::FlushFailed { .. })
        ),
        "{again:?}"
    );
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut p = epoch.register().unwrap();
            let mut g = p.protect();
            assert!(
                log.append(&mut g, &NewRecord::new(b"k", &[1; 4000]))
                    .is_err()
            );
        });
    });
    assert!(log.flushed_until_address().raw() <= 2 * 4096);
    assert!(matches!(
        log.complete_pending(true),
        Err(HlogError::FlushFailed { .. })
    ));
}

#[test]
fn failed_read_reaches_the_callback() {
    let faults = FaultInjector::new();
    let (log, epoch) = log_with(&faults);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let addr = log
        .append(&mut g, &NewRecord::new(b"key", b"value"))
        .unwrap();
    let tail = log.tail_address();
    log.flush_until(&mut g, tail).unwrap();
    faults.inject(Fault::on(OpKind::Read));
    let (tx, rx) = mpsc::channel();
    log.read_async(addr, move |r| tx.send(r).unwrap()).unwrap();
    log.complete_pending(true).unwrap();
    assert!(matches!(rx.recv().unwrap(), Err(HlogError::Device(_))));
    // The next read succeeds.
    let (tx, rx) = mpsc::channel();
    log.read_async(addr, move |r| tx.send(r).unwrap()).unwrap();
    log.complete_pending(true).unwrap();
    assert_eq!(rx.recv().unwrap().unwrap().view().value(), b"value");
}

/// After a failed page turn, every later `allocate` must fail without adding to the packed
/// tail word: before the fix each failing call still did its `fetch_add`, so after
/// 2^16 pages' worth of failed calls the offset carried into the page number and
/// `allocate` handed out space in a page that was never opened (whose frame still held an
/// unflushed page).
#[test]
fn failed_page_turn_does_not_overflow_the_tail() {
    let faults = FaultInjector::new();
    faults.inject(Fault::on(OpKind::Write).after(2).forever());
    let (log, epoch) = log_with(&faults);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let value = [7u8; 500];
    (0..10_000u64)
        .find_map(|i| {
            let key = i.to_le_bytes();
            let r = log.append(&mut g, &NewRecord::new(&key, &value));
            g.refresh();
            r.err()
        })
        .expect("allocation must fail once eviction needs the failed page");
    let tail = log.tail_address();
    for _ in 0..(1u64 << 16) + 8 {
        assert!(
            log.allocate(&mut g, 4096).is_err(),
            "allocated past a failed page turn"
        );
    }
    assert_eq!(log.tail_address(), tail);
}

/// If the thread opening a page unwinds (here: a user read callback it runs while helping
/// panics), the turn is marked failed: later allocations get `PageTurnFailed` instead of
/// waiting forever for a page nobody will open (they hung before the fix).
#[test]
fn panic_during_page_turn_fails_the_turn() {
    let epoch = LightEpoch::new();
    let device: Arc<dyn Device> = Arc::new(MemoryDevice::new(DeviceOptions::default()).unwrap());
    let config = HlogConfig::default()
        .with_page_size(4096)
        .with_memory_size(2 * 4096);
    let log = Hlog::new(config, device, epoch.clone()).unwrap();
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let big = [1u8; 4000];
    let first = log.append(&mut g, &NewRecord::new(b"a", &big)).unwrap();
    log.append(&mut g, &NewRecord::new(b"b", &big)).unwrap(); // opens page 1
    g.refresh(); // runs the read-only action: page 0's flush is issued
    log.complete_pending(true).unwrap();
    assert!(log.flushed_until_address().raw() >= 4096);
    // The read completes on the next poll, which the page turn below performs.
    log.read_async(first, |_| panic!("user callback panics"))
        .unwrap();
    let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        log.append(&mut g, &NewRecord::new(b"c", &big))
    }));
    assert!(
        turn.is_err(),
        "the callback's panic unwinds out of the page turn"
    );
    let again = log.append(&mut g, &NewRecord::new(b"d", b"x"));
    assert!(
        matches!(again, Err(HlogError::PageTurnFailed { .. })),
        "{again:?}"
    );
}
