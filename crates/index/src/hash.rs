//! [`KeyHash`]: the 64-bit hash of a key, and how the index cuts it up.
//!
//! * bits `0..k` select one of the `2^k` buckets of the main table ([`KeyHash::bucket`]);
//! * bits `48..62` are the 14-bit tag stored in the entry ([`KeyHash::tag`]), which tells
//!   apart keys that share a bucket without reading their records;
//! * bits `16..30` are a copy of the tag (see [`KeyHash::of`]): a table of more than
//!   `2^16` buckets takes its bucket bits past 16 from the tag.
//!
//! The copy is what lets a table of `2^k >= 2^16` buckets double without reading a single
//! record: the bit that splits bucket `i` into `i` and `i + 2^k` is bit `k` of the hash,
//! which is tag bit `k - 16`, stored in every entry. Chains are split exactly even when
//! their records are on disk, and every key of a chain goes to the same side (they share
//! their tag). The price: in a table of `2^k` buckets, keys of one bucket share `k - 16` of
//! their tag bits, so `30 - k` bits tell them apart (7 bits at `2^23` buckets, the size for
//! 10 M keys); hence [`MAX_TABLE_BITS`](crate::MAX_TABLE_BITS) is 30.

use crate::entry::{TAG_BITS, TAG_SHIFT};

/// Bits `16..30` of a [`KeyHash`]: the copy of the tag.
const TAG_COPY: u64 = ((1 << TAG_BITS) - 1) << 16;

/// The 64-bit hash of a key: `xxh3_64` of the key's bytes, with bits `16..30` replaced by a
/// copy of the tag (bits `48..62`; see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash(u64);

impl KeyHash {
    /// Hashes `key` with xxh3 (64-bit, default secret, seed 0), then copies the tag into
    /// bits `16..30`.
    #[inline]
    pub fn of(key: &[u8]) -> Self {
        KeyHash::from_raw(xxhash_rust::xxh3::xxh3_64(key))
    }

    /// Wraps a hash computed elsewhere (it must be well distributed in bits `0..16` and
    /// `48..62`; tests use it to choose buckets and tags). Bits `16..30` are replaced by the
    /// copy of the tag, as for every hash.
    #[inline]
    pub const fn from_raw(hash: u64) -> Self {
        KeyHash((hash & !TAG_COPY) | ((hash >> (TAG_SHIFT - 16)) & TAG_COPY))
    }

    /// The raw 64-bit hash.
    #[inline]
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The bucket of a table of `2^table_bits` buckets: the low `table_bits` bits.
    #[inline]
    pub const fn bucket(self, table_bits: u32) -> u64 {
        if table_bits >= 64 {
            self.0
        } else {
            self.0 & ((1u64 << table_bits) - 1)
        }
    }

    /// The 14-bit tag: bits `48..62`.
    #[inline]
    pub const fn tag(self) -> u16 {
        ((self.0 >> TAG_SHIFT) & ((1 << TAG_BITS) - 1)) as u16
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn bucket_and_tag_bits() {
        let h = KeyHash::from_raw(0xFFFF_0000_0000_0000 | 0b1011);
        assert_eq!(h.bucket(0), 0);
        assert_eq!(h.bucket(2), 0b11);
        assert_eq!(h.bucket(4), 0b1011);
        assert_eq!(h.tag(), 0x3FFF);
        assert_eq!(KeyHash::from_raw(1 << 48).tag(), 1);
        assert_eq!(KeyHash::from_raw(1 << 62).tag(), 0);
        let x = xxhash_rust::xxh3::xxh3_64(b"abc");
        let h = KeyHash::of(b"abc");
        assert_eq!(h.raw() & !TAG_COPY, x & !TAG_COPY);
        assert_eq!((h.raw() >> 16) & 0x3FFF, h.tag() as u64);
        // Past 2^16 buckets, the bucket bits are the tag's: bit k is tag bit k - 16.
        for k in 16..30 {
            assert_eq!((h.raw() >> k) & 1, (h.tag() as u64 >> (k - 16)) & 1);
        }
        assert_eq!(
            KeyHash::from_raw(h.raw()),
            h,
            "normalising twice changes nothing"
        );
    }
}
