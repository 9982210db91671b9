//! Scans across the disk / memory boundary.
#![cfg(not(loom))]

mod common;

use faster_hlog::{Address, NewRecord};

#[test]
fn scan_crosses_disk_and_memory_and_skips_invalid() {
    let page = 16 << 10;
    let (log, epoch) = common::memory_log(page, 64 << 10);
    let mut p = epoch.register().unwrap();
    let mut g = p.protect();
    let mut expected = Vec::new();
    for id in 0..2000u64 {
        let value = common::value_of(id, (id % 500) as usize);
        let key = id.to_le_bytes();
        let rec = NewRecord::new(&key, &value).with_version(id as u32);
        let rec = if id % 11 == 0 { rec.tombstone() } else { rec };
        let addr = log.append(&mut g, &rec).unwrap();
        if id % 7 == 0 {
            log.get(&g, addr).unwrap().unwrap().set_invalid();
        } else {
            expected.push((addr, id, value));
        }
        g.refresh();
    }
    drop(g);
    let head = log.head_address();
    assert!(head > log.begin_address() && head < log.tail_address());
    let got: Vec<_> = log
        .scan(Address::INVALID, Address::MAX)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got.len(), expected.len());
    for (r, (addr, id, value)) in got.iter().zip(&expected) {
        assert_eq!(r.address, *addr);
        assert_eq!(r.key, id.to_le_bytes());
        assert_eq!(&r.value, value);
        assert_eq!(r.version, *id as u32);
        assert_eq!(r.header.is_tombstone(), id % 11 == 0);
        assert!(!r.header.is_invalid());
    }
    assert!(got.iter().any(|r| r.address < head) && got.iter().any(|r| r.address >= head));

    // A sub-range starting at a page boundary below the head, ending at a record boundary.
    let from = Address::new((head.raw() / page - 2) * page).unwrap();
    let (to, _, _) = expected[expected.len() - 10];
    let sub: Vec<_> = log.scan(from, to).unwrap().map(Result::unwrap).collect();
    let want: Vec<_> = expected
        .iter()
        .filter(|(a, _, _)| *a >= from && *a < to)
        .map(|(a, _, _)| *a)
        .collect();
    assert_eq!(sub.iter().map(|r| r.address).collect::<Vec<_>>(), want);
}
