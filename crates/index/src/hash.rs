//! [`KeyHash`]: the 64-bit xxh3 hash of a key, and how the index cuts it up.
//!
//! * bits `0..k` select one of the `2^k` buckets of the main table ([`KeyHash::bucket`]);
//! * bits `48..62` are the 14-bit tag stored in the entry ([`KeyHash::tag`]), which tells
//!   apart keys that share a bucket without reading their records.
//!
//! The two ranges do not overlap as long as `k <= 48` (the index allows at most
//! [`MAX_TABLE_BITS`](crate::MAX_TABLE_BITS)), so the tag adds information beyond the bucket.
//! Bits `62..64` and `k..48` are unused.

use crate::entry::{TAG_BITS, TAG_SHIFT};

/// The 64-bit hash of a key: `xxh3_64` of the key's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash(u64);

impl KeyHash {
    /// Hashes `key` with xxh3 (64-bit, default secret, seed 0).
    #[inline]
    pub fn of(key: &[u8]) -> Self {
        KeyHash(xxhash_rust::xxh3::xxh3_64(key))
    }

    /// Wraps a hash computed elsewhere (it must be well distributed in bits `0..k` and
    /// `48..62`); tests use it to choose buckets and tags.
    #[inline]
    pub const fn from_raw(hash: u64) -> Self {
        KeyHash(hash)
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
        assert_eq!(
            KeyHash::of(b"abc").raw(),
            xxhash_rust::xxh3::xxh3_64(b"abc")
        );
    }
}
