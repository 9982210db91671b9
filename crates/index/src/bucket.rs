//! `HashBucket`: one cache line of the table, seven entries and an overflow word.
//!
//! The overflow word holds, in bits `0..48`, the logical address of the next bucket of the
//! chain in the [overflow allocator](crate::overflow) (`0` = end of chain). It goes from `0` to
//! a bucket exactly once (by compare-and-swap) and never changes again while the bucket is
//! linked, so chains only grow at the tail. While a bucket sits on the allocator's free list,
//! its overflow word is a free-list link marked with `FREE_LINK` instead; such a bucket is
//! never reachable from a chain.

use crate::sync::AtomicU64;

/// Number of entries in a bucket.
pub const ENTRIES_PER_BUCKET: usize = 7;
/// Size of a bucket in bytes (one cache line).
pub const BUCKET_BYTES: usize = 64;
/// Number of 64-bit words in a bucket (entries and overflow word).
pub(crate) const WORDS_PER_BUCKET: usize = ENTRIES_PER_BUCKET + 1;
/// Mask of the bucket address in an overflow word.
pub(crate) const OVERFLOW_MASK: u64 = (1 << 48) - 1;
/// Marks an overflow word that is a free-list link, not a chain pointer.
pub(crate) const FREE_LINK: u64 = 1 << 63;

/// A bucket: seven entry words and the overflow word, one 64-byte cache line.
#[repr(C, align(64))]
pub(crate) struct HashBucket {
    pub(crate) entries: [AtomicU64; ENTRIES_PER_BUCKET],
    pub(crate) overflow: AtomicU64,
}

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<HashBucket>() == BUCKET_BYTES);
    assert!(std::mem::align_of::<HashBucket>() == BUCKET_BYTES);
};

impl HashBucket {
    #[cfg(any(loom, test))]
    pub(crate) fn new() -> Self {
        HashBucket {
            entries: std::array::from_fn(|_| AtomicU64::new(0)),
            overflow: AtomicU64::new(0),
        }
    }

    /// The word at position `i` (`0..7` entries, `7` the overflow word), as laid out in a
    /// checkpoint.
    pub(crate) fn word(&self, i: usize) -> &AtomicU64 {
        if i < ENTRIES_PER_BUCKET {
            &self.entries[i]
        } else {
            &self.overflow
        }
    }
}

/// Allocates `n` empty buckets (the table's memory under loom; tests).
#[cfg(any(loom, test))]
pub(crate) fn new_buckets(n: usize) -> Box<[HashBucket]> {
    (0..n).map(|_| HashBucket::new()).collect()
}
