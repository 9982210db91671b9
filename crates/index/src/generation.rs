//! [`Generation`]: one size of the index, a main table of `2^k` buckets and its overflow
//! buckets, with the chain walks and the tentative-insert protocol. [`HashIndex`] uses the
//! current generation; growth builds the next one beside it (see the `grow` module).
//!
//! [`HashIndex`]: crate::HashIndex

use crate::bucket::{BUCKET_BYTES, ENTRIES_PER_BUCKET, HashBucket, OVERFLOW_MASK};
use crate::entry::{
    EntrySlot, HashEntry, SlotLocation, TAG_MASK, TAG_SHIFT, TEMP_INVALID_ADDRESS, TENTATIVE_BIT,
};
use crate::error::Result;
use crate::hash::KeyHash;
use crate::overflow::OverflowAllocator;
use crate::sync::AtomicU64;
use crate::sync::{Ordering, Spin, fence};
use crate::table::Table;

/// Counts from a scan of the whole index (see [`crate::HashIndex::stats`]).
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
    /// Bytes of bucket memory of the current generation: the main table and the overflow
    /// chunks mapped so far.
    pub memory_bytes: u64,
}

/// Tables of at least `2^TAG_SPLIT_BITS` buckets split by their entries' tags alone (see
/// [`KeyHash`]): bit `k` of every hash is tag bit `k - 16`.
pub(crate) const TAG_SPLIT_BITS: u32 = 16;

/// Old buckets per chunk of a growth's split (FASTER's `kHashTableChunkSize`; one under
/// loom).
pub(crate) const SPLIT_CHUNK: u64 = if cfg!(loom) { 1 } else { 16384 };

/// Which bucket of a generation: a main-table index or an overflow logical address.
#[derive(Clone, Copy)]
pub(crate) enum BucketId {
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

/// A main table of `2^table_bits` buckets and its overflow buckets.
pub(crate) struct Generation {
    pub(crate) table_bits: u32,
    /// `2^table_bits - 1`: a hash's home bucket is `hash & bucket_mask`.
    pub(crate) bucket_mask: u64,
    pub(crate) buckets: Table,
    pub(crate) overflow: OverflowAllocator,
}

impl Generation {
    /// An empty generation of `2^table_bits` buckets with room for `overflow` overflow
    /// buckets.
    pub(crate) fn new(table_bits: u32, overflow: u64) -> Result<Self> {
        Ok(Generation {
            table_bits,
            bucket_mask: (1u64 << table_bits) - 1,
            buckets: Table::new(1usize << table_bits, "the hash table")?,
            overflow: OverflowAllocator::new(overflow),
        })
    }

    /// Bytes of bucket memory: the main table and the overflow chunks mapped so far.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.buckets.len() as u64 * BUCKET_BYTES as u64 + self.overflow.mapped_bytes()
    }

    /// Returns the generation's memory to the operating system (it reads as empty after).
    pub(crate) fn release(&self) {
        self.buckets.release();
        self.overflow.release();
    }

    /// The buckets of the chain starting at main bucket `home`, in order.
    pub(crate) fn chain(&self, home: u64) -> impl Iterator<Item = (BucketId, &HashBucket)> {
        let first = (BucketId::Main(home), &self.buckets[home as usize]);
        std::iter::successors(Some(first), |(_, bucket)| {
            let next = bucket.overflow.load(Ordering::Acquire) & OVERFLOW_MASK;
            (next != 0).then(|| (BucketId::Overflow(next), self.overflow.get(next)))
        })
    }

    /// The home bucket of `hash`.
    #[inline(always)]
    pub(crate) fn home(&self, hash: KeyHash) -> u64 {
        hash.raw() & self.bucket_mask
    }

    /// See [`crate::HashIndex::find_entry`].
    pub(crate) fn find_entry(&self, hash: KeyHash) -> Option<(EntrySlot<'_>, HashEntry)> {
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

    /// See [`crate::HashIndex::find_in_home`].
    #[inline(always)]
    pub(crate) fn find_in_home(&self, hash: KeyHash) -> Option<HashEntry> {
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

    /// See [`crate::HashIndex::find_or_create_entry`].
    pub(crate) fn find_or_create_entry(&self, hash: KeyHash) -> Result<(EntrySlot<'_>, HashEntry)> {
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

    /// Appends `entry` to the chain of main bucket `home` with plain stores, linking a new
    /// overflow bucket if the chain is full. Only for a generation no other thread touches
    /// in `home`'s chain (growth fills the new generation this way; see `grow`).
    pub(crate) fn append(&self, home: u64, entry: HashEntry) -> Result<()> {
        let mut tail = &self.buckets[home as usize];
        for (_, bucket) in self.chain(home) {
            for word in &bucket.entries {
                if word.load(Ordering::Relaxed) == 0 {
                    word.store(entry.raw(), Ordering::Relaxed);
                    return Ok(());
                }
            }
            tail = bucket;
        }
        let addr = self.overflow.allocate()?;
        let bucket = self.overflow.get(addr);
        bucket.entries[0].store(entry.raw(), Ordering::Relaxed);
        tail.overflow.store(addr, Ordering::Release);
        Ok(())
    }

    /// See [`crate::HashIndex::for_each_entry`].
    pub(crate) fn for_each_entry(&self, mut f: impl FnMut(u64, EntrySlot<'_>, HashEntry)) {
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

    /// See [`crate::HashIndex::stats`].
    pub(crate) fn stats(&self) -> IndexStats {
        let mut s = IndexStats {
            table_buckets: self.buckets.len() as u64,
            memory_bytes: self.memory_bytes(),
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

    /// Capacity without overflow buckets: `7 * 2^k` entries.
    pub(crate) fn table_capacity(&self) -> u64 {
        self.buckets.len() as u64 * ENTRIES_PER_BUCKET as u64
    }
}
