//! Fuzzy checkpoint of a [`HashIndex`] to a [`Device`], and recovery from it.
//!
//! ## On-device format
//!
//! Both regions go to one device, starting at a caller-chosen aligned offset:
//!
//! * the **table region** at `table_offset`: the `2^k` main buckets in order, each as eight
//!   little-endian `u64` words (entries `0..7`, then the overflow word), `table_bytes =
//!   2^k * 64` bytes, zero-padded to the device alignment;
//! * the **overflow region** at `overflow_offset` (the next aligned offset): overflow buckets
//!   `1..=overflow_buckets` in the same form, `overflow_bytes = overflow_buckets * 64` bytes,
//!   zero-padded to the alignment (absent when there are none).
//!
//! [`IndexCheckpointInfo`] records the sizes, offsets and an xxh3-64 checksum of each region's
//! unpadded bytes; the recovery crate persists it next to the log checkpoint.
//!
//! ## Fuzzy semantics
//!
//! The table is copied word by word while other threads keep inserting, updating and deleting
//! entries, so the copy is no snapshot: an entry may be newer than the log checkpoint (its
//! address points past the checkpoint's log end) or older (an update made before the log
//! checkpoint is missing), and tentative entries of inserts in progress are copied as they are.
//! The copy only guarantees structural sanity: the main table is copied before the overflow
//! high-water mark is read, so every chain pointer in it names a copied bucket; pointers in
//! overflow buckets to buckets allocated after that are written as `0`, and free-list links as
//! `0`. Recovery of the *store* (a later crate) repairs the entries by scanning the log from
//! the checkpoint's start address and re-pointing each key's entry, and truncating entries
//! that point past the recovered log end.
//!
//! [`HashIndex::recover`] loads both regions, verifies sizes against the device, checksums,
//! entry words (reserved bit clear, address non-zero) and chain pointers (in range, each bucket
//! linked at most once), clears tentative entries, and puts overflow buckets that no chain
//! reaches back on the free list.

use std::sync::mpsc;

use faster_device::{AlignedBuf, Device};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3Default;

use crate::bucket::{BUCKET_BYTES, FREE_LINK, OVERFLOW_MASK, WORDS_PER_BUCKET};
use crate::checkpoint_writer::Writer;
use crate::entry::{ADDRESS_MASK, RESERVED_BIT, TENTATIVE_BIT};
use crate::error::{IndexError, Result};
use crate::index::{HashIndex, IndexConfig, MAX_OVERFLOW_BUCKETS, MAX_TABLE_BITS};
use crate::sync::Ordering;

/// What a checkpoint wrote where: the metadata the recovery crate persists and hands back to
/// [`HashIndex::recover`]. Plain data; serialisable with serde.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexCheckpointInfo {
    /// `k`: the table has `2^k` buckets.
    pub table_bits: u32,
    /// Capacity of the overflow allocator of the checkpointed index.
    pub overflow_capacity: u64,
    /// Number of overflow buckets written (the allocator's high-water mark).
    pub overflow_buckets: u64,
    /// Device offset of the table region.
    pub table_offset: u64,
    /// Unpadded size of the table region: `2^k * 64`.
    pub table_bytes: u64,
    /// Device offset of the overflow region.
    pub overflow_offset: u64,
    /// Unpadded size of the overflow region: `overflow_buckets * 64`.
    pub overflow_bytes: u64,
    /// One past the last (padded) byte written.
    pub end_offset: u64,
    /// xxh3-64 of the table region's unpadded bytes.
    pub table_checksum: u64,
    /// xxh3-64 of the overflow region's unpadded bytes.
    pub overflow_checksum: u64,
}

/// Bytes per read request of a recovery (rounded up to the device alignment).
const READ_PIECE_BYTES: usize = 4 << 20;

fn round_up(n: u64, alignment: u64) -> u64 {
    n.div_ceil(alignment) * alignment
}

impl HashIndex {
    /// Writes a fuzzy checkpoint of the index to `device` at `offset` (a multiple of the
    /// device alignment; see the [module docs](crate::checkpoint) for the format), waits for
    /// every write and flushes the device, so the checkpoint is durable when this returns.
    /// Other threads may use the index meanwhile.
    pub fn checkpoint(&self, device: &dyn Device, offset: u64) -> Result<IndexCheckpointInfo> {
        let align = device.alignment() as u64;
        if offset % align != 0 {
            return Err(IndexError::InvalidConfig(format!(
                "checkpoint offset {offset} is not a multiple of the device alignment {align}"
            )));
        }
        let buckets = self.buckets();
        let table_bytes = buckets.len() as u64 * BUCKET_BYTES as u64;
        let mut writer = Writer::new(device);
        let table_checksum = writer.table(offset, buckets);
        // Read after the table copy: every pointer copied above names a bucket `<= n`.
        let overflow = self.overflow();
        let n = overflow.high_water();
        let overflow_offset = offset + round_up(table_bytes, align);
        let overflow_bytes = n * BUCKET_BYTES as u64;
        let overflow_checksum = writer.words(overflow_offset, overflow_bytes, |i| {
            let addr = (i / WORDS_PER_BUCKET) as u64 + 1;
            let k = i % WORDS_PER_BUCKET;
            // A bucket whose chunk is not installed yet was never published: zeros.
            let w = overflow
                .try_get(addr)
                .map_or(0, |b| b.word(k).load(Ordering::Relaxed));
            if k == WORDS_PER_BUCKET - 1 && (w & FREE_LINK != 0 || w > n) {
                0
            } else {
                w
            }
        });
        writer.finish()?;
        device.flush()?;
        Ok(IndexCheckpointInfo {
            table_bits: self.table_bits(),
            overflow_capacity: overflow.capacity(),
            overflow_buckets: n,
            table_offset: offset,
            table_bytes,
            overflow_offset,
            overflow_bytes,
            end_offset: overflow_offset + round_up(overflow_bytes, align),
            table_checksum,
            overflow_checksum,
        })
    }

    /// Rebuilds an index from a checkpoint described by `info` on `device`.
    ///
    /// Fails with [`IndexError::Corrupt`] if `info` is inconsistent or the bytes do not match
    /// it (checksum, impossible entries or chain pointers), [`IndexError::Truncated`] if a
    /// region reaches past `device.size()`, [`IndexError::Device`] if a read fails. Tentative
    /// entries are cleared; see the [module docs](crate::checkpoint).
    pub fn recover(device: &dyn Device, info: &IndexCheckpointInfo) -> Result<HashIndex> {
        validate_info(device, info)?;
        let index = HashIndex::new(IndexConfig::new(info.table_bits, info.overflow_capacity))?;
        let n = info.overflow_buckets;
        index.overflow().reserve_prefix(n)?;
        let mut linked = vec![false; n as usize + 1];
        let mut problem: Option<String> = None;

        let buckets = index.buckets();
        let sum = read_region(device, info.table_offset, info.table_bytes, |i, w| {
            let word = check_word(i % WORDS_PER_BUCKET, w, n, &mut linked, &mut problem);
            buckets[i / WORDS_PER_BUCKET]
                .word(i % WORDS_PER_BUCKET)
                .store(word, Ordering::Relaxed);
        })?;
        if sum != info.table_checksum {
            return Err(corrupt("table", "checksum mismatch".into()));
        }
        if let Some(reason) = problem.take() {
            return Err(corrupt("table", reason));
        }

        let overflow = index.overflow();
        let sum = read_region(device, info.overflow_offset, info.overflow_bytes, |i, w| {
            let k = i % WORDS_PER_BUCKET;
            let word = check_word(k, w, n, &mut linked, &mut problem);
            overflow
                .get((i / WORDS_PER_BUCKET) as u64 + 1)
                .word(k)
                .store(word, Ordering::Relaxed);
        })?;
        if sum != info.overflow_checksum {
            return Err(corrupt("overflow buckets", "checksum mismatch".into()));
        }
        if let Some(reason) = problem {
            return Err(corrupt("overflow buckets", reason));
        }

        // Each bucket is linked at most once, so chains from the table end; buckets no chain
        // reaches (fuzzy leftovers) are emptied and freed.
        let mut reachable = vec![false; n as usize + 1];
        for bucket in buckets {
            let mut next = bucket.overflow.load(Ordering::Relaxed);
            while next != 0 {
                reachable[next as usize] = true;
                next = overflow.get(next).overflow.load(Ordering::Relaxed);
            }
        }
        for addr in (1..=n).rev() {
            if !reachable[addr as usize] {
                let b = overflow.get(addr);
                for k in 0..WORDS_PER_BUCKET {
                    b.word(k).store(0, Ordering::Relaxed);
                }
                overflow.free(addr);
            }
        }
        Ok(index)
    }
}

fn corrupt(what: &'static str, reason: String) -> IndexError {
    IndexError::Corrupt { what, reason }
}

/// Checks one loaded word (`k` = position in its bucket) and returns what to store.
fn check_word(k: usize, w: u64, n: u64, linked: &mut [bool], problem: &mut Option<String>) -> u64 {
    let mut fail = |reason: String| {
        problem.get_or_insert(reason);
        0
    };
    if k == WORDS_PER_BUCKET - 1 {
        if w & !OVERFLOW_MASK != 0 || w > n {
            return fail(format!(
                "overflow word {w:#x} does not name one of the {n} overflow buckets"
            ));
        }
        if w != 0 && std::mem::replace(&mut linked[w as usize], true) {
            return fail(format!("overflow bucket {w} is linked twice"));
        }
        return w;
    }
    if w == 0 {
        0
    } else if w & RESERVED_BIT != 0 {
        fail(format!("entry {w:#x} has the reserved bit set"))
    } else if w & ADDRESS_MASK == 0 {
        fail(format!("entry {w:#x} has address 0 but is not empty"))
    } else if w & TENTATIVE_BIT != 0 {
        0
    } else {
        w
    }
}

fn validate_info(device: &dyn Device, info: &IndexCheckpointInfo) -> Result<()> {
    let bad = |reason: String| Err(corrupt("checkpoint info", reason));
    if info.table_bits > MAX_TABLE_BITS {
        return bad(format!("table_bits {} out of range", info.table_bits));
    }
    if info.overflow_capacity > MAX_OVERFLOW_BUCKETS
        || info.overflow_buckets > info.overflow_capacity
    {
        return bad(format!(
            "{} overflow buckets of capacity {} out of range",
            info.overflow_buckets, info.overflow_capacity
        ));
    }
    if info.table_bytes != (BUCKET_BYTES as u64) << info.table_bits
        || info.overflow_bytes != info.overflow_buckets * BUCKET_BYTES as u64
    {
        return bad("region sizes do not match the bucket counts".into());
    }
    let align = device.alignment() as u64;
    for (what, offset, bytes) in [
        ("table", info.table_offset, info.table_bytes),
        (
            "overflow buckets",
            info.overflow_offset,
            info.overflow_bytes,
        ),
    ] {
        if offset % align != 0 {
            return bad(format!(
                "{what} offset {offset} is not a multiple of the device alignment {align}"
            ));
        }
        let end = offset.checked_add(round_up(bytes, align));
        let size = device.size();
        match end {
            Some(end) if end <= size => {}
            Some(end) => {
                return Err(IndexError::Truncated {
                    what,
                    offset,
                    end,
                    size,
                });
            }
            None => return bad(format!("{what} region overflows the offset range")),
        }
    }
    Ok(())
}

/// Reads `bytes` bytes at `offset` piece by piece, calling `f(word_index, word)` for every
/// little-endian word; returns the xxh3 of the bytes.
fn read_region(
    device: &dyn Device,
    offset: u64,
    bytes: u64,
    mut f: impl FnMut(usize, u64),
) -> Result<u64> {
    let align = device.alignment();
    let piece = READ_PIECE_BYTES.div_ceil(align) * align;
    let mut hasher = Xxh3Default::new();
    let (tx, rx) = mpsc::channel();
    let mut done = 0u64;
    while done < bytes {
        let len = (bytes - done).min(piece as u64) as usize;
        let padded = len.div_ceil(align) * align;
        let tx = tx.clone();
        device.read(
            offset + done,
            AlignedBuf::new(padded, align)?,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        let buf = loop {
            if let Ok(r) = rx.try_recv() {
                break r?;
            }
            if device.wait()? == 0 {
                std::thread::yield_now();
            }
        };
        hasher.update(&buf[..len]);
        let first = (done / 8) as usize;
        for (j, chunk) in buf[..len].chunks_exact(8).enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            f(first + j, u64::from_le_bytes(w));
        }
        done += len as u64;
    }
    Ok(hasher.digest())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use faster_device::{DeviceOptions, MemoryDevice, MemoryStore};

    use super::*;
    use crate::entry::HashEntry;
    use crate::hash::KeyHash;

    fn entries(index: &HashIndex) -> Vec<(u64, crate::SlotLocation, HashEntry)> {
        let mut v = Vec::new();
        index.for_each_entry(|home, slot, e| v.push((home, slot.location(), e)));
        v.sort_by_key(|x| (x.0, x.1));
        v
    }

    /// Tentative entries and free-list links are in the fuzzy copy, and recovery drops both.
    #[test]
    fn recovery_clears_tentative_entries_and_free_links() {
        let index = HashIndex::new(IndexConfig::new(1, 64)).unwrap();
        for t in 0..20u64 {
            let (slot, e) = index
                .find_or_create_entry(KeyHash::from_raw(t << 48))
                .unwrap();
            slot.compare_exchange_address(e, 0x1000 + t).unwrap();
        }
        // An insert in progress in bucket 1, and a bucket on the free list.
        let tentative = HashEntry::tentative(crate::TEMP_INVALID_ADDRESS, 77);
        index.buckets()[1].entries[3].store(tentative.raw(), Ordering::Relaxed);
        let spare = index.overflow().allocate().unwrap();
        index.overflow().free(spare);
        let before = entries(&index);
        assert_eq!(index.stats().tentative_entries, 1);

        let dev = MemoryDevice::open(MemoryStore::new(), DeviceOptions::default()).unwrap();
        let info = index.checkpoint(&dev, 4096).unwrap();
        assert_eq!(info.table_offset, 4096);
        assert_eq!(info.table_bytes, 128);
        assert_eq!(info.overflow_offset, 8192);
        assert_eq!(info.overflow_buckets, index.overflow().high_water());
        let recovered = HashIndex::recover(&dev, &info).unwrap();
        let after = entries(&recovered);
        let expect: Vec<_> = before.into_iter().filter(|x| x.2 != tentative).collect();
        assert_eq!(after, expect);
        assert_eq!(recovered.stats().tentative_entries, 0);
        // The spare bucket went back on the free list, not into a chain.
        assert_eq!(recovered.overflow().allocate().unwrap(), spare);
        for t in 0..20u64 {
            let (_, e) = recovered.find_entry(KeyHash::from_raw(t << 48)).unwrap();
            assert_eq!(e.address(), 0x1000 + t);
        }
    }
}
