//! [`Address`]: a logical 48-bit address in the hybrid log.

use std::fmt;

/// A logical address in the hybrid log: a byte position in an unbounded, append-only space of
/// 2^48 bytes, cut into pages of `2^page_bits` bytes (`page = addr >> page_bits`,
/// `offset = addr & (page_size - 1)`).
///
/// The same number is the byte offset of the record on the device: the log's device holds
/// logical byte `a` at device offset `a`.
///
/// Address 0 ([`Address::INVALID`]) is never a record: the log starts at
/// [`Address::FIRST_VALID`] (64 bytes into page 0), so 0 can mean "no previous record" in the
/// header chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(u64);

impl Address {
    /// Number of bits of an address.
    pub const BITS: u32 = 48;
    /// The largest representable address (`2^48 - 1`).
    pub const MAX: Address = Address((1 << Self::BITS) - 1);
    /// The null address: "no record".
    pub const INVALID: Address = Address(0);
    /// The first address the log hands out (the first 64 bytes of page 0 are reserved).
    pub const FIRST_VALID: Address = Address(64);

    /// An address from its raw value; `None` if it does not fit in 48 bits.
    pub const fn new(raw: u64) -> Option<Address> {
        if raw >> Self::BITS == 0 {
            Some(Address(raw))
        } else {
            None
        }
    }

    /// An address from its raw value, keeping only the low 48 bits.
    pub const fn from_raw_truncated(raw: u64) -> Address {
        Address(raw & Self::MAX.0)
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Whether this is [`Address::INVALID`].
    pub const fn is_invalid(self) -> bool {
        self.0 == 0
    }

    /// The page this address lies in, for pages of `2^page_bits` bytes.
    pub const fn page(self, page_bits: u32) -> u64 {
        self.0 >> page_bits
    }

    /// The offset of this address inside its page, for pages of `2^page_bits` bytes.
    pub const fn offset(self, page_bits: u32) -> u64 {
        self.0 & ((1 << page_bits) - 1)
    }

    /// The address of the start of `page`, for pages of `2^page_bits` bytes (truncated to
    /// 48 bits).
    pub const fn of_page(page: u64, page_bits: u32) -> Address {
        Address::from_raw_truncated(page << page_bits)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// `x` rounded up to a multiple of `a` (a power of two).
pub(crate) const fn align_up(x: u64, a: u64) -> u64 {
    (x + a - 1) & !(a - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_offsets() {
        let a = Address::new((5 << 20) + 24).unwrap();
        assert_eq!(a.page(20), 5);
        assert_eq!(a.offset(20), 24);
        assert_eq!(Address::of_page(5, 20).raw(), 5 << 20);
        assert!(Address::new(1 << 48).is_none());
        assert_eq!(Address::from_raw_truncated(u64::MAX), Address::MAX);
        assert!(Address::INVALID.is_invalid());
    }
}
