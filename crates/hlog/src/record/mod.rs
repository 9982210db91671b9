//! The record format of the hybrid log.
//!
//! # Byte layout
//!
//! A record starts at an 8-byte-aligned address, never spans a page, and its size is a multiple
//! of 8. All integers are little-endian.
//!
//! ```text
//! offset  size  field
//!      0     8  header word (atomic u64):
//!                 bits  0..48  previous address in the hash chain (0 = none)
//!                 bit     48   TOMBSTONE   the record deletes its key
//!                 bit     49   INVALID     the record is dead; scans skip it
//!                 bit     50   SEALED      no more in-place updates (being copied forward)
//!                 bit     51   LOCK        in-place lock bit, free for the store's protocol
//!                 bit     52   FILLER      not a record: page padding up to the page end
//!                 bit     53   RECORD      set in every record header
//!                 bits 54..64  reserved, zero
//!      8     4  checkpoint version (u32, compared with `version_is_newer`)
//!     12     4  seqlock of the value (u32: even = stable, odd = writer inside)
//!     16     4  key length in bytes (u32)
//!     20     4  value length in bytes (u32, <= capacity; changes under the seqlock)
//!     24     4  value capacity in bytes (u32)
//!     28     4  checksum on a device (see the `checksum` module); zero in memory
//!     32     k  key bytes, zero-padded to a multiple of 8
//!   32+k     c  value bytes, zero-padded to capacity rounded up to a multiple of 8
//! ```
//!
//! Words 8..16 (version + seqlock) form one atomic u64, as do words 16..24 (key length +
//! value length): the seqlock and the value length are updated with atomic word operations.
//!
//! # Page padding and unwritten space
//!
//! When a page is closed because the next record does not fit, the rest of the page starts with
//! a *filler* word: a header word equal to exactly [`FILLER_BIT`]. It needs only 8 bytes, so
//! every remainder (always a multiple of 8) can hold it. A zero header word means *unwritten*:
//! nothing follows in that page (the first 64 bytes of page 0, or the unused end of the tail
//! page). A record header always has [`RECORD_BIT`] set, so a record whose previous address is
//! 0 and whose flags are clear is still distinguishable from unwritten space.
//!
//! # Access
//!
//! In memory, records live in page frames that many threads share; [`RecordRef`] accesses
//! them only through atomic words (so concurrent readers, in-place updaters and the flusher
//! never race). On disk or in a copied buffer, [`RecordView`] decodes plain bytes; its
//! [`RecordView::parse`] is bounds-checked and never panics on garbage.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Address;
use crate::error::{HlogError, Result};

/// Size of the fixed record header in bytes.
pub const HEADER_SIZE: usize = 32;
/// Mask of the previous-address bits of the header word.
pub const PREV_MASK: u64 = (1 << 48) - 1;
/// Header bit: the record is a tombstone (deletes its key).
pub const TOMBSTONE_BIT: u64 = 1 << 48;
/// Header bit: the record is invalid; scans skip it.
pub const INVALID_BIT: u64 = 1 << 49;
/// Header bit: the record is sealed against in-place updates.
pub const SEALED_BIT: u64 = 1 << 50;
/// Header bit: the in-place lock.
pub const LOCK_BIT: u64 = 1 << 51;
/// Header word of page padding: the rest of the page holds no record.
pub const FILLER_BIT: u64 = 1 << 52;
/// Header bit present in every record.
pub const RECORD_BIT: u64 = 1 << 53;
/// Header bits that must be zero.
pub const RESERVED_MASK: u64 = !((1 << 54) - 1);

const SEQ_ONE: u64 = 1 << 32;

/// Word 2 (key length, value length) of a record with an 8-byte key and an 8-byte value.
const WORD8_LENGTHS: u64 = 8 | 8 << 32;
/// Size in words of a record with an 8-byte key and a value capacity of 8.
const WORD8_RECORD_WORDS: usize = (HEADER_SIZE + 16) / 8;

/// Wrap-safe comparison of checkpoint versions (serial-number arithmetic, RFC 1982 style):
/// `true` if `a` is newer than `b`, that is `a` lies in the half of the u32 circle after `b`.
/// Correct across the 2^32 wrap as long as the two versions are less than 2^31 apart.
pub const fn version_is_newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

const fn pad8(n: u64) -> u64 {
    (n + 7) & !7
}

/// Size in bytes of a record with a key of `key_len` bytes and a value capacity of
/// `value_capacity` bytes; `None` if a length does not fit in a u32.
pub fn record_size(key_len: usize, value_capacity: usize) -> Option<u64> {
    let k = u32::try_from(key_len).ok()? as u64;
    let c = u32::try_from(value_capacity).ok()? as u64;
    Some(HEADER_SIZE as u64 + pad8(k) + pad8(c))
}

/// A decoded header word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header(pub u64);

impl Header {
    /// The previous address in the chain.
    pub fn prev_address(self) -> Address {
        Address::from_raw_truncated(self.0 & PREV_MASK)
    }
    /// Whether [`TOMBSTONE_BIT`] is set.
    pub fn is_tombstone(self) -> bool {
        self.0 & TOMBSTONE_BIT != 0
    }
    /// Whether [`INVALID_BIT`] is set.
    pub fn is_invalid(self) -> bool {
        self.0 & INVALID_BIT != 0
    }
    /// Whether [`SEALED_BIT`] is set.
    pub fn is_sealed(self) -> bool {
        self.0 & SEALED_BIT != 0
    }
    /// Whether [`LOCK_BIT`] is set.
    pub fn is_locked(self) -> bool {
        self.0 & LOCK_BIT != 0
    }
}

/// Why bytes do not decode as a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct FormatError {
    /// What is wrong.
    pub reason: &'static str,
}

impl FormatError {
    /// This error as a [`HlogError::Corrupt`] at `address`.
    pub fn at(self, address: Address) -> HlogError {
        HlogError::Corrupt {
            address,
            reason: self.reason,
        }
    }
}

fn bad(reason: &'static str) -> FormatError {
    FormatError { reason }
}

/// What a position in a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A record.
    Record(RecordView<'a>),
    /// Page padding: no record follows in this page.
    Filler,
    /// Unwritten (zero) space: no record follows in this page.
    Unwritten,
}

/// Lengths of a record, checked against the space available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lengths {
    pub key_len: usize,
    pub capacity: usize,
    pub size: usize,
}

/// Classifies a header word and the length words; `avail` is the number of bytes from the
/// record start to the end of its page (or buffer).
pub(crate) enum Kind {
    Record(Lengths),
    Filler,
    Unwritten,
}

#[inline(always)]
pub(crate) fn classify(
    header: u64,
    lens: Option<(u64, u64)>,
    avail: usize,
) -> Result<Kind, FormatError> {
    // The common case first: one test for "a record header" (record bit set, filler and
    // reserved bits clear) instead of four.
    if header & (RESERVED_MASK | FILLER_BIT | RECORD_BIT) == RECORD_BIT {
        if let Some((w2, w3)) = lens {
            let key_len = (w2 & 0xffff_ffff) as usize;
            let value_len = w2 >> 32;
            let capacity = w3;
            // `w3 >> 32 == 0` and `value_len <= capacity` in one comparison (value_len < 2^32).
            if capacity < (1 << 32) && value_len <= capacity {
                let size = HEADER_SIZE as u64 + pad8(key_len as u64) + pad8(capacity);
                if size <= avail as u64 {
                    return Ok(Kind::Record(Lengths {
                        key_len,
                        capacity: capacity as usize,
                        size: size as usize,
                    }));
                }
            }
        }
    }
    classify_slow(header, lens, avail)
}

#[cold]
fn classify_slow(header: u64, lens: Option<(u64, u64)>, avail: usize) -> Result<Kind, FormatError> {
    if header == 0 {
        return Ok(Kind::Unwritten);
    }
    if header == FILLER_BIT {
        return Ok(Kind::Filler);
    }
    if header & RESERVED_MASK != 0 {
        return Err(bad("reserved header bits are set"));
    }
    if header & RECORD_BIT == 0 || header & FILLER_BIT != 0 {
        return Err(bad("header word is neither a record nor page padding"));
    }
    let Some((w2, w3)) = lens else {
        return Err(bad("record header runs past the end of the page"));
    };
    let key_len = (w2 & 0xffff_ffff) as usize;
    let value_len = w2 >> 32;
    let capacity = w3 & 0xffff_ffff;
    if w3 >> 32 != 0 {
        return Err(bad("reserved length bits are set"));
    }
    if value_len > capacity {
        return Err(bad("value length exceeds value capacity"));
    }
    let size = record_size(key_len, capacity as usize).ok_or(bad("lengths overflow"))?;
    if size > avail as u64 {
        return Err(bad("record runs past the end of the page"));
    }
    Ok(Kind::Record(Lengths {
        key_len,
        capacity: capacity as usize,
        size: size as usize,
    }))
}

/// Words 2 and 3 of the record at the start of plain bytes, without the checksum field (the
/// high half of word 3: zero in memory, the checksum on a device).
fn plain_lengths(bytes: &[u8]) -> Option<(u64, u64)> {
    le_u64(bytes, 16).zip(le_u64(bytes, 24).map(|w3| w3 & 0xffff_ffff))
}

fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at + 8)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Decodes the entry at the start of `bytes` (which should extend to the end of the page, or
/// at least to the end of the record). Never panics.
pub fn parse_entry(bytes: &[u8]) -> Result<Entry<'_>, FormatError> {
    let header = le_u64(bytes, 0).ok_or(bad("fewer than 8 bytes"))?;
    let lens = plain_lengths(bytes);
    match classify(header, lens, bytes.len())? {
        Kind::Unwritten => Ok(Entry::Unwritten),
        Kind::Filler => Ok(Entry::Filler),
        Kind::Record(l) => Ok(Entry::Record(RecordView::from_checked(bytes, l))),
    }
}

/// The checked lengths of the record at the start of `bytes`.
pub(crate) fn parse_lengths(bytes: &[u8]) -> Result<Lengths, FormatError> {
    match parse_entry(bytes)? {
        Entry::Record(r) => Ok(Lengths {
            key_len: r.key_len,
            capacity: r.capacity,
            size: r.bytes.len(),
        }),
        _ => Err(bad("not a record")),
    }
}

/// The size of the record at the start of `bytes`, from its header alone: `Ok(None)` if fewer
/// than [`HEADER_SIZE`] bytes are present, an error if the header is not a record's. `avail`
/// bounds the record (bytes to the end of its page).
pub fn record_size_from_header(bytes: &[u8], avail: usize) -> Result<Option<usize>, FormatError> {
    if bytes.len() < HEADER_SIZE {
        return Ok(None);
    }
    let header = le_u64(bytes, 0).ok_or(bad("fewer than 8 bytes"))?;
    let lens = plain_lengths(bytes);
    match classify(header, lens, avail)? {
        Kind::Record(l) => Ok(Some(l.size)),
        Kind::Filler => Err(bad("address points at page padding")),
        Kind::Unwritten => Err(bad("address points at unwritten space")),
    }
}

/// A decoded record in plain bytes (on-disk pages, read buffers, copies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    bytes: &'a [u8],
    key_len: usize,
    capacity: usize,
}

impl<'a> RecordView<'a> {
    pub(crate) fn from_checked(bytes: &'a [u8], l: Lengths) -> Self {
        RecordView {
            bytes: &bytes[..l.size],
            key_len: l.key_len,
            capacity: l.capacity,
        }
    }

    /// Decodes the record at the start of `bytes`; `bytes` may extend past the record. Fails
    /// (never panics) on page padding, unwritten space, or inconsistent lengths.
    pub fn parse(bytes: &'a [u8]) -> Result<RecordView<'a>, FormatError> {
        match parse_entry(bytes)? {
            Entry::Record(r) => Ok(r),
            Entry::Filler => Err(bad("page padding, not a record")),
            Entry::Unwritten => Err(bad("unwritten space, not a record")),
        }
    }

    fn u32_at(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.bytes[at..at + 4]);
        u32::from_le_bytes(b)
    }

    /// The header word.
    pub fn header(&self) -> Header {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[..8]);
        Header(u64::from_le_bytes(b))
    }
    /// The checkpoint version.
    pub fn version(&self) -> u32 {
        self.u32_at(8)
    }
    /// The seqlock word as stored (odd if a writer was inside when the bytes were copied).
    pub fn seqlock(&self) -> u32 {
        self.u32_at(12)
    }
    /// The key bytes.
    pub fn key(&self) -> &'a [u8] {
        &self.bytes[HEADER_SIZE..HEADER_SIZE + self.key_len]
    }
    /// The value bytes.
    pub fn value(&self) -> &'a [u8] {
        let start = HEADER_SIZE + pad8(self.key_len as u64) as usize;
        let len = self.u32_at(20) as usize;
        &self.bytes[start..start + len]
    }
    /// The value capacity in bytes.
    pub fn value_capacity(&self) -> usize {
        self.capacity
    }
    /// The record size in bytes (a multiple of 8).
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
    /// The record's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A record to write: key, value and header fields. Build with [`NewRecord::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Space reserved for the value (at least `value.len()`), for later in-place updates.
    pub value_capacity: usize,
    /// Previous address in the hash chain.
    pub prev: Address,
    /// Checkpoint version.
    pub version: u32,
    /// Whether the record is a tombstone.
    pub tombstone: bool,
}

impl<'a> NewRecord<'a> {
    /// A record with capacity `value.len()`, no previous address, version 0, not a tombstone.
    pub fn new(key: &'a [u8], value: &'a [u8]) -> Self {
        NewRecord {
            key,
            value,
            value_capacity: value.len(),
            prev: Address::INVALID,
            version: 0,
            tombstone: false,
        }
    }
    /// Sets the previous address.
    pub fn with_prev(mut self, prev: Address) -> Self {
        self.prev = prev;
        self
    }
    /// Sets the version.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }
    /// Sets the value capacity (raised to `value.len()` if smaller).
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.value_capacity = capacity.max(self.value.len());
        self
    }
    /// Marks the record as a tombstone.
    pub fn tombstone(mut self) -> Self {
        self.tombstone = true;
        self
    }
    /// The size of the record in bytes, or an error if a length exceeds u32.
    pub fn size(&self) -> Result<u64> {
        if self.value.len() > self.value_capacity {
            return Err(HlogError::InvalidArgument("value longer than its capacity"));
        }
        record_size(self.key.len(), self.value_capacity).ok_or(HlogError::InvalidArgument(
            "key or value capacity exceeds u32",
        ))
    }
}

/// Stores `bytes` into `words` as little-endian words, zero-padding the last one.
fn store_bytes(words: &[AtomicU64], bytes: &[u8]) {
    if let (Ok(b), Some(w)) = (<[u8; 8]>::try_from(bytes), words.first()) {
        // The common 8-byte value: one store.
        w.store(u64::from_le_bytes(b), Ordering::Relaxed);
        return;
    }
    let mut chunks = bytes.chunks_exact(8);
    let mut i = 0;
    for c in chunks.by_ref() {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        words[i].store(u64::from_le_bytes(b), Ordering::Relaxed);
        i += 1;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        words[i].store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
}

/// Appends `len` bytes stored in `words` to `out`.
fn load_bytes(words: &[AtomicU64], len: usize, out: &mut Vec<u8>) {
    if let (8, Some(w)) = (len, words.first()) {
        out.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        return;
    }
    let mut left = len;
    for w in words {
        if left == 0 {
            break;
        }
        let b = w.load(Ordering::Relaxed).to_le_bytes();
        if left >= 8 {
            // A fixed-size copy: an 8-byte store, not a call to memcpy.
            out.extend_from_slice(&b);
            left -= 8;
        } else {
            out.extend_from_slice(&b[..left]);
            left = 0;
        }
    }
}

/// Writes `rec` into `words` (exactly its size), header word last with release ordering.
pub(crate) fn write_record(words: &[AtomicU64], rec: &NewRecord<'_>) {
    let key_words = pad8(rec.key.len() as u64) as usize / 8;
    let cap_words = pad8(rec.value_capacity as u64) as usize / 8;
    words[1].store(rec.version as u64, Ordering::Relaxed);
    words[2].store(
        rec.key.len() as u64 | (rec.value.len() as u64) << 32,
        Ordering::Relaxed,
    );
    words[3].store(rec.value_capacity as u64, Ordering::Relaxed);
    let key_area = &words[4..4 + key_words];
    store_bytes(key_area, rec.key);
    let value_area = &words[4 + key_words..4 + key_words + cap_words];
    store_bytes(value_area, rec.value);
    for w in &value_area[pad8(rec.value.len() as u64) as usize / 8..] {
        w.store(0, Ordering::Relaxed);
    }
    let mut header = RECORD_BIT | (rec.prev.raw() & PREV_MASK);
    if rec.tombstone {
        header |= TOMBSTONE_BIT;
    }
    words[0].store(header, Ordering::Release);
}

/// Writes the page-padding word.
pub(crate) fn write_filler(word: &AtomicU64) {
    word.store(FILLER_BIT, Ordering::Release);
}

/// Classifies the entry at the start of `words` (which extend to the end of the page).
#[inline(always)]
pub(crate) fn classify_words(words: &[AtomicU64]) -> Result<Kind, FormatError> {
    let header = words
        .first()
        .ok_or(bad("fewer than 8 bytes"))?
        .load(Ordering::Acquire);
    let lens = words
        .get(2)
        .zip(words.get(3))
        .map(|(a, b)| (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed)));
    classify(header, lens, words.len() * 8)
}

mod live;
#[cfg(test)]
mod tests;

pub use live::{RecordLock, RecordRef};
