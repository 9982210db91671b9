//! Checkpoint and recovery through real devices: round trips on the memory and file devices,
//! a checkpoint taken while other threads insert, and truncated or corrupted input giving
//! typed errors.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use faster_device::{AlignedBuf, Device, DeviceOptions, FileDevice, MemoryDevice, MemoryStore};
use faster_index::{
    HashEntry, HashIndex, IndexCheckpointInfo, IndexConfig, IndexError, KeyHash, SlotLocation,
};

const ALIGN: usize = 4096;

fn options() -> DeviceOptions {
    DeviceOptions::default()
        .with_alignment(ALIGN)
        .with_segment_size(1 << 20)
}

fn memory() -> MemoryDevice {
    MemoryDevice::open(MemoryStore::new(), options()).unwrap()
}

/// An index of `2^bits` buckets holding `keys` keys (address `0x1000 + key`).
fn filled(bits: u32, keys: u64) -> HashIndex {
    let index = HashIndex::new(IndexConfig::new(bits, 1024)).unwrap();
    for k in 0..keys {
        let (slot, e) = index
            .find_or_create_entry(KeyHash::of(&k.to_le_bytes()))
            .unwrap();
        slot.compare_exchange_address(e, 0x1000 + k).unwrap();
    }
    index
}

fn snapshot(index: &HashIndex) -> Vec<(u64, SlotLocation, HashEntry)> {
    let mut v = Vec::new();
    index.for_each_entry(|home, slot, e| v.push((home, slot.location(), e)));
    v.sort_by_key(|x| (x.0, x.1));
    v
}

fn read_block(dev: &dyn Device, offset: u64) -> AlignedBuf {
    let (tx, rx) = mpsc::channel();
    dev.read(
        offset,
        AlignedBuf::new(ALIGN, ALIGN).unwrap(),
        Box::new(move |r| tx.send(r).unwrap()),
    )
    .unwrap();
    faster_device::drain(dev).unwrap();
    rx.recv().unwrap().unwrap()
}

fn write_block(dev: &dyn Device, offset: u64, buf: AlignedBuf) {
    let (tx, rx) = mpsc::channel();
    dev.write(
        offset,
        Box::new(buf),
        Box::new(move |r| tx.send(r).unwrap()),
    )
    .unwrap();
    faster_device::drain(dev).unwrap();
    rx.recv().unwrap().unwrap();
}

fn round_trip(dev: &dyn Device) {
    let index = filled(6, 2_000);
    assert!(index.stats().overflow_buckets > 0);
    let info = index.checkpoint(dev, 2 * ALIGN as u64).unwrap();
    assert_eq!(info.table_bits, 6);
    assert_eq!(info.table_bytes, 64 << 6);
    assert_eq!(info.overflow_bytes, info.overflow_buckets * 64);
    assert!(dev.size() >= info.end_offset);

    // The info survives the serde round trip the recovery crate will do.
    let bytes = postcard::to_allocvec(&info).unwrap();
    let info: IndexCheckpointInfo = postcard::from_bytes(&bytes).unwrap();

    let recovered = HashIndex::recover(dev, &info).unwrap();
    assert_eq!(snapshot(&recovered), snapshot(&index));
    assert_eq!(recovered.config(), index.config());
    for k in 0..2_000u64 {
        let (_, e) = recovered.find_entry(KeyHash::of(&k.to_le_bytes())).unwrap();
        assert_eq!(e.address() & 0xFFFF_FFFF_0000_0000, 0);
    }
    // The recovered index keeps working, chains included.
    for k in 2_000..3_000u64 {
        let (slot, e) = recovered
            .find_or_create_entry(KeyHash::of(&k.to_le_bytes()))
            .unwrap();
        let _ = slot.compare_exchange_address(e, 0x1000 + k);
    }
    assert!(recovered.stats().entries > index.stats().entries);
}

#[test]
fn round_trip_memory_device() {
    round_trip(&memory());
}

#[test]
fn round_trip_file_device() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dev = FileDevice::open(dir.path(), options()).unwrap();
    round_trip(&dev);
    drop(dev);
    // Reopened, as after a restart.
    let dev = FileDevice::open(dir.path(), options()).unwrap();
    let index = filled(3, 300);
    let info = index.checkpoint(&dev, 0).unwrap();
    drop(dev);
    let dev = FileDevice::open(dir.path(), options()).unwrap();
    let recovered = HashIndex::recover(&dev, &info).unwrap();
    assert_eq!(snapshot(&recovered), snapshot(&index));
}

/// A checkpoint taken while two threads insert recovers to a consistent index: no duplicate
/// tags, no tentative entries, every key inserted before the checkpoint started present.
#[test]
fn fuzzy_checkpoint_during_inserts() {
    let index = HashIndex::new(IndexConfig::new(4, 4096)).unwrap();
    for k in 0..500u64 {
        index
            .find_or_create_entry(KeyHash::of(&k.to_le_bytes()))
            .unwrap();
    }
    let dev = memory();
    let stop = AtomicBool::new(false);
    let info = std::thread::scope(|s| {
        for t in 0..2u64 {
            let (index, stop) = (&index, &stop);
            s.spawn(move || {
                let mut k = 1_000 + t;
                while !stop.load(Ordering::Relaxed) && k < 20_000 {
                    index
                        .find_or_create_entry(KeyHash::of(&k.to_le_bytes()))
                        .unwrap();
                    k += 2;
                }
            });
        }
        let info = index.checkpoint(&dev, 0);
        stop.store(true, Ordering::Relaxed);
        info.unwrap()
    });
    let recovered = HashIndex::recover(&dev, &info).unwrap();
    let mut seen = std::collections::HashSet::new();
    recovered.for_each_entry(|home, _, e| {
        assert!(!e.is_tentative());
        assert!(seen.insert((home, e.tag())), "duplicate tag after recovery");
    });
    for k in 0..500u64 {
        assert!(
            recovered
                .find_entry(KeyHash::of(&k.to_le_bytes()))
                .is_some()
        );
    }
}

#[test]
fn truncated_device_is_a_typed_error() {
    let full = memory();
    let index = filled(6, 2_000);
    let info = index.checkpoint(&full, 0).unwrap();
    // Copy only the table region to a fresh device: the overflow region is missing.
    let cut = memory();
    for off in (0..info.overflow_offset).step_by(ALIGN) {
        write_block(&cut, off, read_block(&full, off));
    }
    match HashIndex::recover(&cut, &info) {
        Err(IndexError::Truncated { what, size, .. }) => {
            assert_eq!(what, "overflow buckets");
            assert_eq!(size, info.overflow_offset);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert!(matches!(
        HashIndex::recover(&memory(), &info),
        Err(IndexError::Truncated { what: "table", .. })
    ));
}

#[test]
fn corrupted_bytes_and_metadata_are_typed_errors() {
    let dev = memory();
    let index = filled(6, 2_000);
    let info = index.checkpoint(&dev, 0).unwrap();

    // A flipped bit in the table: checksum mismatch.
    let mut block = read_block(&dev, 0);
    block[100] ^= 0x10;
    write_block(&dev, 0, block);
    assert!(matches!(
        HashIndex::recover(&dev, &info),
        Err(IndexError::Corrupt { what: "table", .. })
    ));

    // Inconsistent metadata.
    let mut bad = info.clone();
    bad.table_bits = 7;
    assert!(matches!(
        HashIndex::recover(&dev, &bad),
        Err(IndexError::Corrupt {
            what: "checkpoint info",
            ..
        })
    ));
    let mut bad = info.clone();
    bad.overflow_buckets = bad.overflow_capacity + 1;
    bad.overflow_bytes = bad.overflow_buckets * 64;
    assert!(matches!(
        HashIndex::recover(&dev, &bad),
        Err(IndexError::Corrupt { .. })
    ));
    let mut bad = info.clone();
    bad.table_offset = 100;
    assert!(matches!(
        HashIndex::recover(&dev, &bad),
        Err(IndexError::Corrupt { .. })
    ));
}

fn word(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap())
}

fn set_word(b: &mut [u8], i: usize, w: u64) {
    b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
}

/// Sets bucket 1's overflow word to the first non-zero overflow pointer of another bucket.
fn link_twice(b: &mut [u8]) {
    let from = (2..64).find(|&k| word(b, k * 8 + 7) != 0).unwrap();
    set_word(b, 8 + 7, word(b, from * 8 + 7));
}

/// Corrupts a table block in place.
type Patch = fn(&mut [u8]);

/// Words that are impossible even with a matching checksum are rejected: a set reserved bit,
/// an entry with address 0, an overflow pointer out of range or linked twice.
#[test]
fn impossible_words_are_corrupt() {
    let cases: [(&str, Patch); 4] = [
        ("reserved bit", |b| set_word(b, 0, 1 << 62 | 0x40)),
        ("address 0", |b| set_word(b, 1, 5 << 48)),
        ("does not name", |b| set_word(b, 7, 999_999)),
        ("linked twice", link_twice),
    ];
    for (needle, patch) in cases {
        let dev = memory();
        let index = filled(6, 2_000);
        let mut info = index.checkpoint(&dev, 0).unwrap();
        let mut block = read_block(&dev, 0);
        patch(&mut block);
        // Keep the checksum valid, so the word checks themselves must catch it.
        info.table_checksum = xxhash_rust::xxh3::xxh3_64(&block[..info.table_bytes as usize]);
        write_block(&dev, 0, block);
        match HashIndex::recover(&dev, &info) {
            Err(IndexError::Corrupt {
                what: "table",
                reason,
            }) => assert!(reason.contains(needle), "{needle}: {reason}"),
            other => panic!("{needle}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn misaligned_checkpoint_offset_is_rejected() {
    let index = filled(2, 10);
    assert!(matches!(
        index.checkpoint(&memory(), 100),
        Err(IndexError::InvalidConfig(_))
    ));
}
