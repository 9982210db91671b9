//! A frame is never reused while a protected thread may still read the page it held.
#![cfg(not(loom))]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use faster_hlog::NewRecord;

const RING: usize = 256;

#[test]
fn frames_outlive_protected_readers() {
    // 4 frames of 16 KiB: the writer turns pages constantly.
    let (log, epoch) = common::memory_log(16 << 10, 64 << 10);
    let ring: Vec<AtomicU64> = (0..RING).map(|_| AtomicU64::new(0)).collect();
    let published = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut p = epoch.register().unwrap();
                let mut value = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    let g = p.protect();
                    // The oldest published record still in memory: the one nearest the head.
                    let n = published.load(Ordering::Acquire);
                    let head = log.head_address().raw();
                    let candidates = (n.saturating_sub(RING as u64)..n)
                        .map(|i| (i, ring[(i % RING as u64) as usize].load(Ordering::Acquire)))
                        .filter(|&(_, a)| a >= head && a != 0);
                    let Some((_, addr)) = candidates.min_by_key(|&(_, a)| a) else {
                        continue;
                    };
                    let Some(r) = log
                        .get(&g, faster_hlog::Address::new(addr).unwrap())
                        .unwrap()
                    else {
                        continue;
                    };
                    // Read it repeatedly while the writer churns: it must not change.
                    let key = r.key();
                    let id = u64::from_le_bytes(key[..8].try_into().unwrap());
                    for _ in 0..20 {
                        assert!(r.key_eq(&key), "record {id} changed");
                        assert!(!r.header().is_invalid());
                        r.read_value_into(&mut value);
                        assert_eq!(
                            value,
                            common::value_of(id, value.len()),
                            "record {id} changed"
                        );
                        std::thread::yield_now();
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    drop(g);
                }
            });
        }
        s.spawn(|| {
            // Stop the readers even if the writer panics.
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Release);
                }
            }
            let _stop = StopOnDrop(&stop);
            let mut p = epoch.register().unwrap();
            let mut g = p.protect();
            for id in 0..20_000u64 {
                let value = common::value_of(id, 200 + (id % 300) as usize);
                let key = id.to_le_bytes();
                let addr = log.append(&mut g, &NewRecord::new(&key, &value)).unwrap();
                ring[(id % RING as u64) as usize].store(addr.raw(), Ordering::Release);
                published.store(id + 1, Ordering::Release);
                g.refresh();
            }
        });
    });
    assert!(log.frames_reused() > 100, "{} reuses", log.frames_reused());
    assert!(reads.load(Ordering::Relaxed) > 10);
}
