//! In-place updates under the seqlock: readers never see a torn value.
#![cfg(not(loom))]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use faster_hlog::NewRecord;

#[test]
fn seqlock_readers_never_see_torn_values() {
    let (log, epoch) = common::memory_log(64 << 10, 256 << 10);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let addr = log
        .append(
            &mut g,
            &NewRecord::new(b"counter", &[0u8; 16]).with_capacity(1000),
        )
        .unwrap();
    drop(g);
    assert!(log.is_mutable(addr));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for w in 0..2u8 {
            let (log, epoch, stop) = (&log, &epoch, &stop);
            s.spawn(move || {
                let mut p = epoch.register().unwrap();
                for n in 0..3000u32 {
                    let g = p.protect();
                    let r = log.get(&g, addr).unwrap().unwrap();
                    let byte = (n as u8).wrapping_mul(2).wrapping_add(w);
                    let len = 16 + (n as usize * 37) % 984;
                    r.update_value(&vec![byte; len]).unwrap();
                }
                stop.store(true, Ordering::Release);
            });
        }
        let (log, epoch, stop) = (&log, &epoch, &stop);
        s.spawn(move || {
            let mut p = epoch.register().unwrap();
            let mut v = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let g = p.protect();
                let r = log.get(&g, addr).unwrap().unwrap();
                r.read_value_into(&mut v);
                assert!(v.len() >= 16 && v.len() <= 1000);
                assert!(v.iter().all(|&b| b == v[0]), "torn value");
                assert!(r.key_eq(b"counter"));
            }
        });
    });
}

/// A scan of the mutable region copies values that are being updated in place: it must
/// re-read them under the seqlock (before the fix it copied the frame with plain relaxed
/// loads and returned torn values).
#[test]
fn scans_of_the_mutable_region_never_see_torn_values() {
    let (log, epoch) = common::memory_log(64 << 10, 256 << 10);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let addr = log
        .append(
            &mut g,
            &NewRecord::new(b"counter", &[0u8; 16]).with_capacity(1000),
        )
        .unwrap();
    drop(g);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (log, epoch, stop) = (&log, &epoch, &stop);
        s.spawn(move || {
            let mut p = epoch.register().unwrap();
            let mut n = 0u32;
            while !stop.load(Ordering::Acquire) {
                let g = p.protect();
                let r = log.get(&g, addr).unwrap().unwrap();
                let len = 16 + (n as usize * 37) % 984;
                r.update_value(&vec![n as u8; len]).unwrap();
                n = n.wrapping_add(1);
            }
        });
        s.spawn(move || {
            // Stop the updater even if an assertion below fails.
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Release);
                }
            }
            let _stop = StopOnDrop(stop);
            for _ in 0..500 {
                let recs: Vec<_> = log
                    .scan(addr, log.tail_address())
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(recs.len(), 1);
                let v = &recs[0].value;
                assert!(v.len() >= 16 && v.len() <= 1000);
                assert!(v.iter().all(|&b| b == v[0]), "torn value in a scan");
            }
        });
    });
}
