//! In-place updates under the seqlock: readers never see a torn value.

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
