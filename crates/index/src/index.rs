//! [`HashIndex`]: the table of `2^k` buckets, its overflow chains and the tentative-insert
//! protocol.

use crate::bucket::{ENTRIES_PER_BUCKET, HashBucket, OVERFLOW_MASK};
use crate::entry::{
    EntrySlot, HashEntry, SlotLocation, TAG_MASK, TAG_SHIFT, TEMP_INVALID_ADDRESS, TENTATIVE_BIT,
};
use crate::error::{IndexError, Result};
use crate::hash::KeyHash;
use crate::overflow::OverflowAllocator;
use crate::sync::AtomicU64;
use crate::sync::{Ordering, Spin, fence};
use crate::table::Table;

/// The largest accepted `table_bits` (`2^32` buckets, 256 GiB).
pub const MAX_TABLE_BITS: u32 = 32;
/// The largest accepted number of overflow buckets (`2^30`, 64 GiB).
pub const MAX_OVERFLOW_BUCKETS: u64 = 1 << 30;

/// The size of a [`HashIndex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexConfig {
    /// `k`: the main table has `2^k` buckets (`0..=MAX_TABLE_BITS`).
    pub table_bits: u32,
    /// Capacity of the overflow-bucket allocator, in buckets (`0..=MAX_OVERFLOW_BUCKETS`).
    pub overflow_buckets: u64,
}

impl IndexConfig {
    /// A table of `2^table_bits` buckets with room for `overflow_buckets` overflow buckets.
    pub fn new(table_bits: u32, overflow_buckets: u64) -> Self {
        IndexConfig {
            table_bits,
            overflow_buckets,
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if self.table_bits > MAX_TABLE_BITS {
            return Err(IndexError::InvalidConfig(format!(
                "table_bits {} exceeds {MAX_TABLE_BITS}",
                self.table_bits
            )));
        }
        if self.overflow_buckets > MAX_OVERFLOW_BUCKETS {
            return Err(IndexError::InvalidConfig(format!(
                "overflow_buckets {} exceeds {MAX_OVERFLOW_BUCKETS}",
                self.overflow_buckets
            )));
        }
        if (1u64 << self.table_bits) > usize::MAX as u64 / 64 {
            return Err(IndexError::InvalidConfig(format!(
                "2^{} buckets do not fit the address space",
                self.table_bits
            )));
        }
        Ok(())
    }
}

/// Counts from a scan of the whole index (see [`HashIndex::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Buckets in the main table (`2^k`).
    pub table_buckets: u64,
    /// Overflow buckets linked into chains.
    pub overflow_buckets: u64,
    /// Non-empty entries that are not tentative.
    pub entries: u64,
    /// Tentative entries (inserts in progress).
    pub tentative_entries: u64,
    /// Length in buckets of the longest chain (1 = no overflow).
    pub max_chain: u64,
}

/// Which bucket of the index: a main-table index or an overflow logical address.
#[derive(Clone, Copy)]
enum BucketId {
    Main(u64),
    Overflow(u64),
}

impl BucketId {
    fn slot(self, entry: usize) -> SlotLocation {
        let entry = entry as u8;
        match self {
            BucketId::Main(bucket) => SlotLocation::Main { bucket, entry },
            BucketId::Overflow(bucket) => SlotLocation::Overflow { bucket, entry },
        }
    }
}

/// FASTER's hash index: `2^k` cache-line buckets of seven entries, chained through overflow
/// buckets, updated lock-free. See the [crate docs](crate) for the protocol.
pub struct HashIndex {
    table_bits: u32,
    /// `2^table_bits - 1`: a hash's home bucket is `hash & bucket_mask`.
    bucket_mask: u64,
    buckets: Table,
    overflow: OverflowAllocator,
}

impl HashIndex {
    /// An empty index.
    pub fn new(config: IndexConfig) -> Result<Self> {
        config.validate()?;
        Ok(HashIndex {
            table_bits: config.table_bits,
            bucket_mask: (1u64 << config.table_bits) - 1,
            buckets: Table::new(1usize << config.table_bits)?,
            overflow: OverflowAllocator::new(config.overflow_buckets),
        })
    }

    /// The configuration the index was built with.
    pub fn config(&self) -> IndexConfig {
        IndexConfig::new(self.table_bits, self.overflow.capacity())
    }

    /// `k`: the main table has `2^k` buckets.
    pub fn table_bits(&self) -> u32 {
        self.table_bits
    }

    pub(crate) fn buckets(&self) -> &[HashBucket] {
        &self.buckets
    }

    pub(crate) fn overflow(&self) -> &OverflowAllocator {
        &self.overflow
    }

    /// The buckets of the chain starting at main bucket `home`, in order.
    fn chain(&self, home: u64) -> impl Iterator<Item = (BucketId, &HashBucket)> {
        let first = (BucketId::Main(home), &self.buckets[home as usize]);
        std::iter::successors(Some(first), |(_, bucket)| {
            let next = bucket.overflow.load(Ordering::Acquire) & OVERFLOW_MASK;
            (next != 0).then(|| (BucketId::Overflow(next), self.overflow.get(next)))
        })
    }

    /// The home bucket of `hash` (equal to `hash.bucket(table_bits)`, one instruction).
    #[inline]
    fn home(&self, hash: KeyHash) -> u64 {
        hash.raw() & self.bucket_mask
    }

    /// Hints the CPU to start loading the cache line of `hash`'s main-table bucket, so that a
    /// later [`find_entry`](Self::find_entry) or
    /// [`find_or_create_entry`](Self::find_or_create_entry) of the same hash finds it in the
    /// cache. A pure hint: no effect on the index, a no-op on targets without a prefetch
    /// instruction. Batched lookups issue it for several keys before probing any of them.
    #[inline]
    pub fn prefetch(&self, hash: KeyHash) {
        if let Some(bucket) = self.buckets.get(self.home(hash) as usize) {
            prefetch_line(std::ptr::from_ref(bucket).cast());
        }
    }

    /// Finds the entry of `hash`: the first non-tentative entry with its tag in its bucket's
    /// chain. Tentative entries (inserts in progress) are skipped.
    pub fn find_entry(&self, hash: KeyHash) -> Option<(EntrySlot<'_>, HashEntry)> {
        let tag = hash.tag();
        for (id, bucket) in self.chain(self.home(hash)) {
            for (i, word) in bucket.entries.iter().enumerate() {
                let e = HashEntry::from_raw(word.load(Ordering::Acquire));
                if !e.is_empty() && !e.is_tentative() && e.tag() == tag {
                    return Some((EntrySlot::new(word, id.slot(i)), e));
                }
            }
        }
        None
    }

    /// The entry of `hash` if its home bucket (the first bucket of its chain) holds it: then
    /// exactly the entry [`HashIndex::find_entry`] returns. `None` says only "not in the home
    /// bucket": the entry may still be in an overflow bucket, so callers go on with
    /// `find_entry` (or [`HashIndex::find_or_create_entry`]).
    ///
    /// The per-operation fast path of the store: one cache line, one masked comparison per
    /// entry, no slot to build.
    #[inline(always)]
    pub fn find_in_home(&self, hash: KeyHash) -> Option<HashEntry> {
        let want = (hash.tag() as u64) << TAG_SHIFT;
        let bucket = self.buckets.get(self.home(hash) as usize)?;
        bucket.entries.iter().find_map(|word| {
            let raw = word.load(Ordering::Acquire);
            // Tag equal and tentative bit clear in one comparison; the free word `0` has
            // tag 0 too, hence the second test.
            (raw & (TAG_MASK | TENTATIVE_BIT) == want && raw != 0)
                .then_some(HashEntry::from_raw(raw))
        })
    }

    /// The entry of `hash` in `slot`, a slot that [`HashIndex::find_entry`] or
    /// [`HashIndex::find_or_create_entry`] returned for `hash` earlier: `Some` if the slot
    /// still holds a finished (non-tentative) entry with `hash`'s tag, which is then the
    /// entry those methods would find now; `None` if the caller must search again.
    ///
    /// Sound because a bucket never moves to another chain while the index is in use (an
    /// overflow bucket is freed only if it was never linked) and a chain holds at most one
    /// finished entry per tag (see [`HashIndex::find_or_create_entry`]). Batched operations
    /// use it to probe a bucket once.
    #[inline]
    pub fn recheck(&self, slot: &EntrySlot<'_>, hash: KeyHash) -> Option<HashEntry> {
        let e = slot.load();
        (!e.is_empty() && !e.is_tentative() && e.tag() == hash.tag()).then_some(e)
    }

    /// Finds the entry of `hash`, or creates one with address
    /// [`TEMP_INVALID_ADDRESS`](crate::TEMP_INVALID_ADDRESS).
    ///
    /// FASTER's tentative insert: find a free slot in the chain (appending an overflow bucket
    /// if the chain is full), install a *tentative* entry with the tag by compare-and-swap,
    /// then rescan the chain for any other entry with the same tag, tentative or not. If there
    /// is one, free the slot again and start over; otherwise clear the tentative bit. Two
    /// threads inserting the same tag cannot both miss each other (a `SeqCst` fence separates
    /// each one's install from its rescan), so at most one of them finalizes, and every
    /// caller ends up with the same slot.
    ///
    /// Fails only with [`IndexError::OverflowExhausted`] when the chain is full and no
    /// overflow bucket is left.
    pub fn find_or_create_entry(&self, hash: KeyHash) -> Result<(EntrySlot<'_>, HashEntry)> {
        let tag = hash.tag();
        let home = self.home(hash);
        let spin = Spin::new();
        'retry: loop {
            let mut free = None;
            let mut tail = &self.buckets[home as usize];
            for (id, bucket) in self.chain(home) {
                for (i, word) in bucket.entries.iter().enumerate() {
                    let e = HashEntry::from_raw(word.load(Ordering::Acquire));
                    if e.is_empty() {
                        free.get_or_insert(EntrySlot::new(word, id.slot(i)));
                    } else if !e.is_tentative() && e.tag() == tag {
                        return Ok((EntrySlot::new(word, id.slot(i)), e));
                    }
                }
                tail = bucket;
            }
            let (slot, word) = match free {
                Some(slot) => (slot, slot.word()),
                None => {
                    let addr = self.overflow.allocate()?;
                    if tail
                        .overflow
                        .compare_exchange(0, addr, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        // Another thread extended the chain first; ours was never published.
                        self.overflow.free(addr);
                        continue 'retry;
                    }
                    let word = &self.overflow.get(addr).entries[0];
                    let loc = BucketId::Overflow(addr).slot(0);
                    (EntrySlot::new(word, loc), word)
                }
            };
            let tentative = HashEntry::tentative(TEMP_INVALID_ADDRESS, tag);
            if word
                .compare_exchange(0, tentative.raw(), Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue 'retry;
            }
            // Store-then-load against the other inserters' install-then-rescan.
            fence(Ordering::SeqCst);
            if self.other_with_tag(home, tag, word) {
                word.store(0, Ordering::Release);
                spin.wait();
                continue 'retry;
            }
            let entry = tentative.finalized();
            word.store(entry.raw(), Ordering::Release);
            return Ok((slot, entry));
        }
    }

    /// Whether the chain holds an entry with `tag` (tentative or not) other than `mine`.
    fn other_with_tag(&self, home: u64, tag: u16, mine: &AtomicU64) -> bool {
        self.chain(home).any(|(_, bucket)| {
            bucket.entries.iter().any(|word| {
                let e = HashEntry::from_raw(word.load(Ordering::Acquire));
                !e.is_empty() && e.tag() == tag && !std::ptr::eq(word, mine)
            })
        })
    }

    /// Calls `f(home, slot, entry)` for every non-empty entry (tentative ones included),
    /// chain by chain; `home` is the main-table bucket the chain starts at. A fuzzy snapshot if
    /// other threads update the index meanwhile.
    pub fn for_each_entry(&self, mut f: impl FnMut(u64, EntrySlot<'_>, HashEntry)) {
        for home in 0..self.buckets.len() as u64 {
            for (id, bucket) in self.chain(home) {
                for (i, word) in bucket.entries.iter().enumerate() {
                    let e = HashEntry::from_raw(word.load(Ordering::Acquire));
                    if !e.is_empty() {
                        f(home, EntrySlot::new(word, id.slot(i)), e);
                    }
                }
            }
        }
    }

    /// Scans the whole index and counts buckets and entries.
    pub fn stats(&self) -> IndexStats {
        let mut s = IndexStats {
            table_buckets: self.buckets.len() as u64,
            ..IndexStats::default()
        };
        for home in 0..self.buckets.len() as u64 {
            let mut len = 0;
            for (_, bucket) in self.chain(home) {
                len += 1;
                for word in &bucket.entries {
                    let e = HashEntry::from_raw(word.load(Ordering::Acquire));
                    if e.is_tentative() {
                        s.tentative_entries += 1;
                    } else if !e.is_empty() {
                        s.entries += 1;
                    }
                }
            }
            s.overflow_buckets += len - 1;
            s.max_chain = s.max_chain.max(len);
        }
        s
    }

    /// Capacity of the index without overflow buckets: `7 * 2^k` entries.
    pub fn table_capacity(&self) -> u64 {
        self.buckets.len() as u64 * ENTRIES_PER_BUCKET as u64
    }
}

/// Prefetches the cache line at `p` into all cache levels (a hint; never faults).
#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetch` only hints the cache hierarchy: it never dereferences `p` in the
    // language's sense, cannot fault, and SSE is part of the x86-64 baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl std::fmt::Debug for HashIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashIndex")
            .field("table_bits", &self.table_bits)
            .field("overflow_capacity", &self.overflow.capacity())
            .field("overflow_high_water", &self.overflow.high_water())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn find_in_home_agrees_with_find_entry_and_leaves_overflow_to_it() {
        // Four buckets for 200 hashes: most entries land in overflow buckets.
        let index = HashIndex::new(IndexConfig::new(2, 256)).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut seen = std::collections::HashSet::new();
        let hashes: Vec<KeyHash> = std::iter::repeat_with(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            KeyHash::from_raw(x)
        })
        // One hash per (home bucket, tag): each has an entry of its own.
        .filter(|h| seen.insert((h.raw() & 3, h.tag())))
        .take(200)
        .collect();
        // Nothing yet, not even for tag 0 (whose entries look like the free word but for
        // their address).
        assert_eq!(index.find_in_home(KeyHash::from_raw(0)), None);
        for &h in &hashes {
            index.find_or_create_entry(h).unwrap();
        }
        let (mut home, mut elsewhere) = (0, 0);
        for &h in &hashes {
            let found = index.find_entry(h).expect("created").1;
            match index.find_in_home(h) {
                Some(e) => {
                    assert_eq!(e, found, "the same entry as find_entry");
                    home += 1;
                }
                None => elsewhere += 1,
            }
        }
        // 4 buckets of 7 entries hold at most 28 home entries (fewer if tags repeat).
        assert!(home > 0 && home <= 28, "{home} in home buckets");
        assert!(elsewhere >= 200 - 28, "{elsewhere} in overflow buckets");
    }
}
