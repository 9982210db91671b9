//! [`HashEntry`], the 64-bit word stored in a bucket, and [`EntrySlot`], a stable reference to
//! the place in the table where one lives.
//!
//! ## Layout of an entry word
//!
//! | bits     | field                                                                 |
//! |----------|-----------------------------------------------------------------------|
//! | `0..48`  | address (48 bits); bit 47 of the address is the read-cache flag       |
//! | `48..62` | tag (14 bits, from bits `48..62` of the [`KeyHash`](crate::KeyHash))  |
//! | `62`     | reserved, always 0 (recovery rejects a set bit as corrupt)            |
//! | `63`     | tentative bit                                                         |
//!
//! This is FASTER's layout. The read-cache flag is part of the address, as in FASTER: the
//! index stores and compares it like any other address bit and never interprets it
//! ([`HashEntry::is_read_cache`] only reports it), so log addresses are below `2^47`.
//!
//! The word `0` is a free slot. Address `0` is the invalid address and occurs only in the free
//! word: a slot created by [`HashIndex::find_or_create_entry`](crate::HashIndex::find_or_create_entry)
//! holds the placeholder [`TEMP_INVALID_ADDRESS`] (`1`, FASTER's `kTempInvalidAddress`) until its
//! owner swaps in a real address, so even an entry with tag `0` never looks free.

use std::fmt;

use crate::sync::{AtomicU64, Ordering};

/// Number of address bits in an entry.
pub const ADDRESS_BITS: u32 = 48;
/// Mask of the address bits.
pub const ADDRESS_MASK: u64 = (1 << ADDRESS_BITS) - 1;
/// The read-cache flag: bit 47 of the address (reserved for read-cache addresses; the index
/// never interprets it).
pub const READ_CACHE_BIT: u64 = 1 << 47;
/// Number of tag bits in an entry.
pub const TAG_BITS: u32 = 14;
pub(crate) const TAG_SHIFT: u32 = 48;
pub(crate) const TAG_MASK: u64 = ((1 << TAG_BITS) - 1) << TAG_SHIFT;
pub(crate) const RESERVED_BIT: u64 = 1 << 62;
pub(crate) const TENTATIVE_BIT: u64 = 1 << 63;

/// The invalid address: the address of no record. The free slot is the all-zero word.
pub const INVALID_ADDRESS: u64 = 0;
/// The placeholder address of a freshly created entry whose owner has not yet stored the
/// address of a record (FASTER's `kTempInvalidAddress`). Callers treat it as "no record".
pub const TEMP_INVALID_ADDRESS: u64 = 1;

/// The value of one entry: an address, a tag and a tentative bit, packed in a `u64`
/// (see the [module docs](self) for the layout).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HashEntry(u64);

impl HashEntry {
    /// The free (empty) entry, the word `0`.
    pub const EMPTY: HashEntry = HashEntry(0);

    /// A non-tentative entry. `address` is truncated to its low 48 bits and `tag` to 14 bits.
    #[inline]
    pub const fn new(address: u64, tag: u16) -> Self {
        HashEntry((address & ADDRESS_MASK) | (((tag as u64) << TAG_SHIFT) & TAG_MASK))
    }

    #[inline]
    pub(crate) const fn tentative(address: u64, tag: u16) -> Self {
        HashEntry(Self::new(address, tag).0 | TENTATIVE_BIT)
    }

    /// Reinterprets a raw word (as stored in a checkpoint).
    #[inline]
    pub const fn from_raw(word: u64) -> Self {
        HashEntry(word)
    }

    /// The raw 64-bit word.
    #[inline]
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The 48-bit address (including the read-cache bit 47).
    #[inline]
    pub const fn address(self) -> u64 {
        self.0 & ADDRESS_MASK
    }

    /// The 14-bit tag.
    #[inline]
    pub const fn tag(self) -> u16 {
        ((self.0 & TAG_MASK) >> TAG_SHIFT) as u16
    }

    /// Whether the entry is being inserted and not yet visible to readers.
    #[inline]
    pub const fn is_tentative(self) -> bool {
        self.0 & TENTATIVE_BIT != 0
    }

    /// Whether this is the free slot (the word `0`).
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether bit 47 of the address, the read-cache flag, is set.
    #[inline]
    pub const fn is_read_cache(self) -> bool {
        self.0 & READ_CACHE_BIT != 0
    }

    /// The same entry with another address (tag and tentative bit kept).
    #[inline]
    pub const fn with_address(self, address: u64) -> Self {
        HashEntry((self.0 & !ADDRESS_MASK) | (address & ADDRESS_MASK))
    }

    /// The same entry with the tentative bit cleared.
    #[inline]
    pub(crate) const fn finalized(self) -> Self {
        HashEntry(self.0 & !TENTATIVE_BIT)
    }
}

impl fmt::Debug for HashEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("HashEntry(empty)");
        }
        f.debug_struct("HashEntry")
            .field("address", &format_args!("{:#x}", self.address()))
            .field("tag", &self.tag())
            .field("tentative", &self.is_tentative())
            .finish()
    }
}

/// Where an entry slot lives: which bucket and which of its seven entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlotLocation {
    /// Entry `entry` of main-table bucket `bucket`.
    Main {
        /// The bucket index in `0..2^k`.
        bucket: u64,
        /// The entry index in `0..7`.
        entry: u8,
    },
    /// Entry `entry` of overflow bucket `bucket`.
    Overflow {
        /// The overflow bucket's logical address (`1..`; `0` means "none").
        bucket: u64,
        /// The entry index in `0..7`.
        entry: u8,
    },
}

/// A stable reference to one entry slot of a [`HashIndex`](crate::HashIndex): buckets never
/// move while the index lives, so the slot stays valid for as long as the borrow.
///
/// All updates are compare-and-swap on the whole word; two slots compare equal when they are
/// the same place in the table.
#[derive(Clone, Copy)]
pub struct EntrySlot<'a> {
    word: &'a AtomicU64,
    location: SlotLocation,
}

impl<'a> EntrySlot<'a> {
    pub(crate) fn new(word: &'a AtomicU64, location: SlotLocation) -> Self {
        EntrySlot { word, location }
    }

    pub(crate) fn word(&self) -> &'a AtomicU64 {
        self.word
    }

    /// Where the slot lives.
    pub fn location(&self) -> SlotLocation {
        self.location
    }

    /// The current entry (acquire load).
    #[inline]
    pub fn load(&self) -> HashEntry {
        HashEntry(self.word.load(Ordering::Acquire))
    }

    /// Replaces `expected` by `new` if the slot still holds `expected`; on failure returns the
    /// entry found. `new` must carry the same tag as `expected` and must not be tentative or
    /// have address 0 (use [`delete`](Self::delete) to free the slot); `new` is normalised
    /// accordingly: only its address is taken.
    #[inline]
    pub fn compare_exchange(&self, expected: HashEntry, new: HashEntry) -> Result<(), HashEntry> {
        self.compare_exchange_address(expected, new.address())
    }

    /// Replaces the address of `expected` by `address` (tag kept, tentative bit cleared) if
    /// the slot still holds `expected`; on failure returns the entry found. An `address` of 0
    /// is stored as [`TEMP_INVALID_ADDRESS`], so the slot never looks free.
    #[inline]
    pub fn compare_exchange_address(
        &self,
        expected: HashEntry,
        address: u64,
    ) -> Result<(), HashEntry> {
        let address = match address & ADDRESS_MASK {
            INVALID_ADDRESS => TEMP_INVALID_ADDRESS,
            a => a,
        };
        let new = expected.finalized().with_address(address);
        self.word
            .compare_exchange(expected.0, new.0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(HashEntry)
    }

    /// Frees the slot (stores the empty word) if it still holds `expected`; on failure returns
    /// the entry found.
    #[inline]
    pub fn delete(&self, expected: HashEntry) -> Result<(), HashEntry> {
        self.word
            .compare_exchange(expected.0, 0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(HashEntry)
    }
}

impl PartialEq for EntrySlot<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.word, other.word)
    }
}

impl Eq for EntrySlot<'_> {}

impl fmt::Debug for EntrySlot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntrySlot")
            .field("location", &self.location)
            .field("entry", &self.load())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips() {
        let e = HashEntry::new(0x1234_5678_9abc, 0x2abc);
        assert_eq!(e.address(), 0x1234_5678_9abc);
        assert_eq!(e.tag(), 0x2abc);
        assert!(!e.is_tentative() && !e.is_empty() && !e.is_read_cache());
        assert_eq!(e.raw() & RESERVED_BIT, 0);
        let t = HashEntry::tentative(TEMP_INVALID_ADDRESS, 0);
        assert!(t.is_tentative() && !t.is_empty());
        assert_eq!(t.finalized(), HashEntry::new(1, 0));
        assert!(HashEntry::new(READ_CACHE_BIT | 5, 1).is_read_cache());
        // Truncation keeps fields apart.
        let w = HashEntry::new(u64::MAX, u16::MAX);
        assert_eq!(w.raw() & (RESERVED_BIT | TENTATIVE_BIT), 0);
        assert_eq!(w.with_address(7).tag(), (1 << TAG_BITS) - 1);
    }

    #[test]
    fn slot_cas() {
        let word = AtomicU64::new(HashEntry::new(TEMP_INVALID_ADDRESS, 3).raw());
        let slot = EntrySlot::new(
            &word,
            SlotLocation::Main {
                bucket: 0,
                entry: 0,
            },
        );
        let e = slot.load();
        slot.compare_exchange_address(e, 0x40).unwrap();
        assert_eq!(slot.load(), HashEntry::new(0x40, 3));
        assert_eq!(
            slot.compare_exchange_address(e, 0x80),
            Err(HashEntry::new(0x40, 3))
        );
        slot.compare_exchange(HashEntry::new(0x40, 3), HashEntry::new(0, 3))
            .unwrap();
        assert_eq!(slot.load().address(), TEMP_INVALID_ADDRESS);
        slot.delete(slot.load()).unwrap();
        assert!(slot.load().is_empty());
    }
}
