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

use std::sync::atomic::{AtomicU64, Ordering, fence};

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

/// The error of [`RecordRef::parse`] for bytes that are not a record (off the hot path).
#[cold]
#[inline(never)]
fn not_a_record(address: Address, e: FormatError) -> HlogError {
    e.at(address)
}

/// A record in an in-memory page frame, borrowed under epoch protection (see
/// [`crate::Hlog::get`]). Every access is an atomic word operation.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    address: Address,
    words: &'a [AtomicU64],
    key_len: usize,
    capacity: usize,
}

impl<'a> RecordRef<'a> {
    /// Decodes the record at the start of `words` (which extend to the end of the page).
    #[inline(always)]
    pub(crate) fn parse(address: Address, words: &'a [AtomicU64]) -> Result<Self> {
        match classify_words(words) {
            Ok(Kind::Record(l)) => Ok(RecordRef {
                address,
                words: &words[..l.size / 8],
                key_len: l.key_len,
                capacity: l.capacity,
            }),
            Ok(Kind::Filler) => Err(not_a_record(address, bad("page padding, not a record"))),
            Ok(Kind::Unwritten) => Err(not_a_record(address, bad("unwritten space, not a record"))),
            Err(e) => Err(not_a_record(address, e)),
        }
    }

    /// [`RecordRef::parse`] of the common small record, with its key compared: `Some` if the
    /// words hold a record (record bit set, filler and reserved bits clear) whose key is the
    /// 8 bytes of `key` (little-endian) and whose value is 8 bytes long in a capacity of 8;
    /// `None` for anything else, which the caller then parses in full. The checks are four
    /// word comparisons, and the record they accept passes every check of `parse` (its 48
    /// bytes lie within `words`).
    #[inline(always)]
    pub(crate) fn parse_word8(address: Address, words: &'a [AtomicU64], key: u64) -> Option<Self> {
        let w = words.get(..WORD8_RECORD_WORDS)?;
        let header = w[0].load(Ordering::Acquire);
        if header & (RESERVED_MASK | FILLER_BIT | RECORD_BIT) != RECORD_BIT
            || w[2].load(Ordering::Relaxed) != WORD8_LENGTHS
            || w[3].load(Ordering::Relaxed) != 8
            || w[4].load(Ordering::Relaxed) != key
        {
            return None;
        }
        Some(RecordRef {
            address,
            words: w,
            key_len: 8,
            capacity: 8,
        })
    }

    /// The record's address.
    pub fn address(&self) -> Address {
        self.address
    }
    /// The record size in bytes.
    pub fn size(&self) -> usize {
        self.words.len() * 8
    }
    /// The current header word (acquire load).
    pub fn header(&self) -> Header {
        Header(self.words[0].load(Ordering::Acquire))
    }
    /// The previous address in the chain.
    pub fn prev_address(&self) -> Address {
        self.header().prev_address()
    }
    /// The checkpoint version.
    pub fn version(&self) -> u32 {
        self.words[1].load(Ordering::Relaxed) as u32
    }
    /// The key length in bytes.
    pub fn key_len(&self) -> usize {
        self.key_len
    }
    /// The value capacity in bytes.
    pub fn value_capacity(&self) -> usize {
        self.capacity
    }
    #[inline(always)]
    fn key_words(&self) -> &'a [AtomicU64] {
        &self.words[4..4 + pad8(self.key_len as u64) as usize / 8]
    }
    #[inline(always)]
    fn value_words(&self) -> &'a [AtomicU64] {
        &self.words[4 + pad8(self.key_len as u64) as usize / 8..]
    }
    /// Whether the key equals `key` (compared word by word, without copying).
    pub fn key_eq(&self, key: &[u8]) -> bool {
        if key.len() != self.key_len {
            return false;
        }
        if let (Ok(k), Some(w)) = (<[u8; 8]>::try_from(key), self.words.get(4)) {
            return w.load(Ordering::Relaxed) == u64::from_le_bytes(k);
        }
        let mut chunks = key.chunks(8);
        self.key_words().iter().all(|w| {
            let mut b = [0u8; 8];
            let c = chunks.next().unwrap_or(&[]);
            b[..c.len()].copy_from_slice(c);
            w.load(Ordering::Relaxed) == u64::from_le_bytes(b)
        })
    }
    /// Appends the key to `out`.
    pub fn read_key_into(&self, out: &mut Vec<u8>) {
        load_bytes(self.key_words(), self.key_len, out);
    }
    /// The key, copied.
    pub fn key(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.key_len);
        self.read_key_into(&mut v);
        v
    }
    /// Runs `copy(len)` (`len`: the value length) under the seqlock until it ran while no
    /// in-place writer was inside, and returns its last result.
    #[inline(always)]
    fn seq_read<T>(&self, mut copy: impl FnMut(usize) -> T) -> T {
        loop {
            let s1 = self.words[1].load(Ordering::Acquire);
            if s1 & SEQ_ONE != 0 {
                std::hint::spin_loop();
                continue;
            }
            let len = ((self.words[2].load(Ordering::Relaxed) >> 32) as usize).min(self.capacity);
            let copied = copy(len);
            fence(Ordering::Acquire);
            let s2 = self.words[1].load(Ordering::Relaxed);
            if s1 >> 32 == s2 >> 32 {
                return copied;
            }
        }
    }
    /// Replaces the contents of `out` with a consistent copy of the value (seqlock read:
    /// retries while an in-place writer is inside or was inside during the copy).
    #[inline]
    pub fn read_value_into(&self, out: &mut Vec<u8>) {
        self.seq_read(|len| {
            out.clear();
            load_bytes(self.value_words(), len, out);
        });
    }
    /// A consistent copy of a value of at most 8 bytes, without a buffer: its word (the
    /// value is the first `len` of the word's little-endian bytes, zero-padded) and `len`;
    /// `None` if the record's value capacity exceeds 8 bytes (use
    /// [`RecordRef::read_value_into`]). The same seqlock read.
    ///
    /// A word rather than a byte array, so that callers pass it on in one register or one
    /// 8-byte store (LLVM split the array into narrower stores, which then stalled the
    /// 8-byte load that read it back).
    #[inline(always)]
    pub fn read_small_value(&self) -> Option<(u64, usize)> {
        if self.capacity > 8 {
            return None;
        }
        let w = self.value_words().first()?;
        Some(self.seq_read(|len| (w.load(Ordering::Relaxed), len)))
    }
    /// The value, copied consistently (see [`RecordRef::read_value_into`]).
    pub fn value(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.read_value_into(&mut v);
        v
    }
    /// The current value length in bytes.
    pub fn value_len(&self) -> usize {
        ((self.words[2].load(Ordering::Acquire) >> 32) as usize).min(self.capacity)
    }
    /// Replaces the value in place under the seqlock (writers exclude each other; readers
    /// retry). Fails if `value` exceeds the capacity. Only meaningful for records in the
    /// mutable region (see [`crate::Hlog::is_mutable`]): the log does not re-flush pages.
    pub fn update_value(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.capacity {
            return Err(HlogError::InvalidArgument(
                "value longer than the record's capacity",
            ));
        }
        let seq = &self.words[1];
        loop {
            let w = seq.load(Ordering::Relaxed);
            if w & SEQ_ONE != 0 {
                std::hint::spin_loop();
                continue;
            }
            if seq
                .compare_exchange_weak(
                    w,
                    w.wrapping_add(SEQ_ONE),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                break;
            }
        }
        fence(Ordering::Release);
        store_bytes(self.value_words(), value);
        self.words[2].store(
            self.key_len as u64 | (value.len() as u64) << 32,
            Ordering::Relaxed,
        );
        seq.fetch_add(SEQ_ONE, Ordering::Release);
        Ok(())
    }
    /// [`RecordRef::update_value`] for a caller that excludes every other in-place writer of
    /// this record (for example by holding its [lock](RecordRef::try_lock), if all
    /// writers take it): the seqlock is advanced with plain atomic stores instead of
    /// read-modify-writes, which saves two locked instructions. Readers are protected exactly
    /// as by `update_value`. If another writer does run concurrently, readers may see a
    /// mix of the two values (never anything unsafe).
    ///
    /// A value of at most 8 bytes whose length equals the current one is at most one word
    /// store (readers see the old word or the new one, whole), so the seqlock is left alone.
    /// That case of an 8-byte value is inlined into the caller; the rest is a call.
    #[inline(always)]
    pub fn update_value_exclusive(&self, value: &[u8]) -> Result<()> {
        if let (Ok(b), Some(w)) = (<[u8; 8]>::try_from(value), self.value_words().first()) {
            if (self.words[2].load(Ordering::Relaxed) >> 32) == 8 {
                // The current value has 8 bytes too (so the capacity is at least 8).
                w.store(u64::from_le_bytes(b), Ordering::Relaxed);
                return Ok(());
            }
        }
        self.update_value_exclusive_general(value)
    }
    /// [`RecordRef::update_value_exclusive`] past its inlined case.
    #[inline(never)]
    fn update_value_exclusive_general(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.capacity {
            return Err(HlogError::InvalidArgument(
                "value longer than the record's capacity",
            ));
        }
        let current = (self.words[2].load(Ordering::Relaxed) >> 32) as usize;
        if value.len() <= 8 && value.len() == current {
            // One word (zero-padded), or none for an empty value.
            store_bytes(self.value_words(), value);
            return Ok(());
        }
        let seq = &self.words[1];
        let w = seq.load(Ordering::Relaxed);
        debug_assert_eq!(w & SEQ_ONE, 0, "another writer is inside the seqlock");
        seq.store(w.wrapping_add(SEQ_ONE), Ordering::Relaxed);
        // Orders the odd seqlock word before the value stores, for readers that see any of
        // them (they then see the seqlock changed and retry).
        fence(Ordering::Release);
        store_bytes(self.value_words(), value);
        self.words[2].store(
            self.key_len as u64 | (value.len() as u64) << 32,
            Ordering::Relaxed,
        );
        seq.store(w.wrapping_add(2 * SEQ_ONE), Ordering::Release);
        Ok(())
    }
    /// Sets [`INVALID_BIT`]. Only for a record no other thread can lock: one appended but
    /// never installed in the index (see [`RecordLock`] for why).
    pub fn set_invalid(&self) {
        self.words[0].fetch_or(INVALID_BIT, Ordering::AcqRel);
    }
    /// Tries to take the in-place lock bit: the [`RecordLock`] while it is held, `None` if
    /// another thread holds it.
    #[inline]
    pub fn try_lock(&self) -> Option<RecordLock<'_, 'a>> {
        let old = self.words[0].fetch_or(LOCK_BIT, Ordering::Acquire);
        if old & LOCK_BIT != 0 {
            // Held by another thread. (No `RecordLock` is built here: dropping one would
            // store `old` back over the holder's release.)
            return None;
        }
        Some(RecordLock {
            record: self,
            header: old,
        })
    }
}

/// A record's in-place lock, held (from [`RecordRef::try_lock`]); dropping it releases it.
///
/// **The header rule.** Every change to the header of a record that other threads can reach
/// (through the index or a chain) happens under this lock: sealing and setting the tombstone
/// are methods of the lock, not of [`RecordRef`]. So the holder knows the header exactly,
/// and releases the lock with one plain release store of it instead of a second locked
/// read-modify-write: one locked instruction per in-place update instead of two. Other
/// threads meanwhile only read the header, or fail to take the lock (a `fetch_or` of a bit
/// already set changes nothing). [`RecordRef::set_invalid`] is the one change made without
/// the lock, and only to a record never installed, which nobody else can lock.
#[derive(Debug)]
pub struct RecordLock<'r, 'a> {
    record: &'r RecordRef<'a>,
    /// The header as the holder keeps it, without [`LOCK_BIT`].
    header: u64,
}

impl<'a> RecordLock<'_, 'a> {
    /// The header (exact while the lock is held), without the lock bit.
    #[inline]
    pub fn header(&self) -> Header {
        Header(self.header)
    }
    /// The locked record.
    #[inline]
    pub fn record(&self) -> &RecordRef<'a> {
        self.record
    }
    /// Sets [`SEALED_BIT`]: nobody updates the record in place any more.
    #[inline]
    pub fn seal(&mut self) {
        self.set(SEALED_BIT);
    }
    /// Sets [`TOMBSTONE_BIT`].
    #[inline]
    pub fn set_tombstone(&mut self) {
        self.set(TOMBSTONE_BIT);
    }
    fn set(&mut self, bit: u64) {
        self.header |= bit;
        // Published at once (readers that look without the lock see it now); the release
        // store at unlock orders it for the next holder.
        self.record.words[0].store(self.header | LOCK_BIT, Ordering::Relaxed);
    }
}

impl Drop for RecordLock<'_, '_> {
    #[inline]
    fn drop(&mut self) {
        self.record.words[0].store(self.header, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    fn to_bytes(words: &[AtomicU64]) -> Vec<u8> {
        words
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
            .collect()
    }

    #[test]
    fn parse_word8_accepts_exactly_an_8_byte_key_and_value() {
        let at = Address::new(64).unwrap();
        let key = u64::from_le_bytes(*b"eightkey");
        let record = |k: &[u8], v: &[u8], capacity: usize| {
            let rec = NewRecord::new(k, v).with_capacity(capacity);
            let w = words(rec.size().unwrap() as usize / 8 + 2);
            write_record(&w, &rec);
            w
        };
        let w = record(b"eightkey", b"value--8", 8);
        let r = RecordRef::parse_word8(at, &w, key).expect("accepted");
        let full = RecordRef::parse(at, &w).unwrap();
        assert_eq!((r.key_len(), r.value_capacity(), r.size()), (8, 8, 48));
        assert_eq!(
            (full.key_len(), full.value_capacity(), full.size()),
            (8, 8, 48)
        );
        assert_eq!(r.value(), b"value--8");
        assert!(r.key_eq(b"eightkey"));
        // Another key, other lengths, a larger capacity: the full parse's business.
        assert!(RecordRef::parse_word8(at, &w, key + 1).is_none());
        assert!(RecordRef::parse_word8(at, &record(b"eightkey", b"short", 8), key).is_none());
        assert!(RecordRef::parse_word8(at, &record(b"eightkey", b"value--8", 16), key).is_none());
        assert!(RecordRef::parse_word8(at, &record(b"seven-k", b"value--8", 8), key).is_none());
        // Cut short, page padding, unwritten space, reserved bits: never a record.
        assert!(RecordRef::parse_word8(at, &w[..5], key).is_none());
        let filler = words(8);
        write_filler(&filler[0]);
        assert!(RecordRef::parse_word8(at, &filler, key).is_none());
        assert!(RecordRef::parse_word8(at, &words(8), key).is_none());
        w[0].fetch_or(1 << 60, Ordering::Relaxed);
        assert!(RecordRef::parse_word8(at, &w, key).is_none());
        assert!(RecordRef::parse(at, &w).is_err());
    }

    #[test]
    fn small_values_read_without_a_buffer() {
        let rec = NewRecord::new(b"k", b"12345").with_capacity(8);
        let size = rec.size().unwrap() as usize;
        let w = words(size / 8);
        write_record(&w, &rec);
        let r = RecordRef::parse(Address::new(64).unwrap(), &w).unwrap();
        let (word, len) = r.read_small_value().unwrap();
        assert_eq!(&word.to_le_bytes()[..len], b"12345");
        r.update_value(b"xy").unwrap();
        let (word, len) = r.read_small_value().unwrap();
        assert_eq!(&word.to_le_bytes()[..len], b"xy");
        assert_eq!(word, u64::from_le_bytes(*b"xy\0\0\0\0\0\0"), "zero-padded");

        let big = NewRecord::new(b"k", b"12345").with_capacity(16);
        let w = words(big.size().unwrap() as usize / 8);
        write_record(&w, &big);
        let r = RecordRef::parse(Address::new(64).unwrap(), &w).unwrap();
        assert_eq!(
            r.read_small_value(),
            None,
            "capacity above 8 bytes: use a buffer"
        );
        assert_eq!(r.value(), b"12345");
    }

    #[test]
    fn same_length_small_update_is_one_word_store() {
        let rec = NewRecord::new(b"k", b"12345678").with_capacity(16);
        let w = words(rec.size().unwrap() as usize / 8);
        write_record(&w, &rec);
        let r = RecordRef::parse(Address::new(64).unwrap(), &w).unwrap();
        let seq = || w[1].load(Ordering::Relaxed) >> 32;
        let before = seq();
        // Each update: the value read back, and how far the seqlock has moved since `before`.
        let step = |value: &[u8], seq_moved: u64, why: &str| {
            r.update_value_exclusive(value).unwrap();
            assert_eq!(r.value(), value, "{why}");
            assert_eq!(seq(), before + seq_moved, "{why}");
        };
        step(
            b"abcdefgh",
            0,
            "same length, one word: the seqlock is untouched",
        );
        step(b"abc", 2, "a length change goes through the seqlock");
        step(b"xyz", 2, "same length, one word");
        assert_eq!(to_bytes(&w[5..6]), b"xyz\0\0\0\0\0", "padded with zeros");
        step(
            b"ABCDEFGH",
            4,
            "8 bytes over 3: the length changes, the seqlock",
        );
        step(b"abcdefgh", 4, "8 bytes over 8: one word");
        step(b"0123456789", 6, "more than one word: the seqlock");
        step(b"01234567", 8, "8 bytes over 10: the seqlock");

        // No value word at all: an 8-byte value does not fit.
        let empty = NewRecord::new(b"k", b"");
        let w0 = words(empty.size().unwrap() as usize / 8);
        write_record(&w0, &empty);
        let r0 = RecordRef::parse(Address::new(64).unwrap(), &w0).unwrap();
        assert!(r0.update_value_exclusive(b"12345678").is_err());
        assert_eq!(r0.value(), b"");
    }

    #[test]
    fn round_trip() {
        let rec = NewRecord::new(b"hello", b"world!!!!")
            .with_prev(Address::new(0x1234_5678).unwrap())
            .with_version(7)
            .with_capacity(20);
        let size = rec.size().unwrap() as usize;
        assert_eq!(size, 32 + 8 + 24);
        let w = words(size / 8 + 3);
        write_record(&w[..size / 8], &rec);
        let r = RecordRef::parse(Address::new(64).unwrap(), &w).unwrap();
        assert_eq!(r.size(), size);
        assert!(r.key_eq(b"hello"));
        assert!(!r.key_eq(b"hellp"));
        assert!(!r.key_eq(b"hell"));
        assert_eq!(r.key(), b"hello");
        assert_eq!(r.value(), b"world!!!!");
        assert_eq!(r.version(), 7);
        assert_eq!(r.prev_address().raw(), 0x1234_5678);
        r.update_value(b"a much longer value!").unwrap();
        assert_eq!(r.value(), b"a much longer value!");
        assert!(r.update_value(&[0; 21]).is_err());
        r.update_value_exclusive(b"yy").unwrap();
        assert_eq!(r.value(), b"yy");
        assert!(r.update_value_exclusive(&[0; 21]).is_err());
        r.update_value(b"x").unwrap();
        {
            let mut l = r.try_lock().unwrap();
            assert!(r.try_lock().is_none());
            assert!(r.header().is_locked());
            assert!(!l.header().is_sealed());
            l.seal();
            assert!(l.header().is_sealed() && r.header().is_sealed());
        }
        assert!(!r.header().is_locked());
        assert!(r.try_lock().unwrap().header().is_sealed());
        r.set_invalid();
        let bytes = to_bytes(&w);
        let v = RecordView::parse(&bytes).unwrap();
        assert_eq!(v.key(), b"hello");
        assert_eq!(v.value(), b"x");
        assert_eq!(v.seqlock(), 6, "three completed in-place updates");
        assert!(v.header().is_invalid() && v.header().is_sealed());
        assert!(!v.header().is_tombstone() && !v.header().is_locked());
        assert_eq!(record_size_from_header(&bytes, bytes.len()), Ok(Some(size)));
        assert_eq!(record_size_from_header(&bytes[..31], 100), Ok(None));
    }

    #[test]
    fn filler_and_unwritten() {
        let w = words(4);
        assert!(matches!(parse_entry(&to_bytes(&w)), Ok(Entry::Unwritten)));
        write_filler(&w[0]);
        assert!(matches!(parse_entry(&to_bytes(&w)), Ok(Entry::Filler)));
        assert!(RecordView::parse(&to_bytes(&w)).is_err());
        assert!(RecordRef::parse(Address::FIRST_VALID, &w).is_err());
        // A record with no prev and no flags is still a record.
        let w = words(5);
        write_record(&w, &NewRecord::new(b"", b"abc"));
        assert!(matches!(parse_entry(&to_bytes(&w)), Ok(Entry::Record(_))));
    }

    #[test]
    fn versions_wrap() {
        assert!(version_is_newer(1, 0));
        assert!(!version_is_newer(0, 1));
        assert!(!version_is_newer(5, 5));
        assert!(version_is_newer(0, u32::MAX));
        assert!(version_is_newer(3, u32::MAX - 3));
        assert!(!version_is_newer(u32::MAX - 3, 3));
        assert!(version_is_newer(8192, 8191));
        let mut v = u32::MAX - 10_000;
        for _ in 0..20_000 {
            let next = v.wrapping_add(1);
            assert!(version_is_newer(next, v));
            assert!(!version_is_newer(v, next));
            assert!(version_is_newer(v.wrapping_add(1 << 30), v));
            v = next;
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in 0..200usize {
            for _ in 0..50 {
                let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                if len >= 8 && next() % 2 == 0 {
                    // Make the header plausible so the length checks are reached.
                    let h = RECORD_BIT | (next() & PREV_MASK);
                    bytes[..8].copy_from_slice(&h.to_le_bytes());
                }
                if len >= 32 && next() % 2 == 0 {
                    bytes[28..32].fill(0);
                    let k = (next() % 64) as u32;
                    bytes[16..20].copy_from_slice(&k.to_le_bytes());
                }
                if let Ok(Entry::Record(r)) = parse_entry(&bytes) {
                    assert!(r.size() <= len);
                    let _ = (r.key(), r.value(), r.header(), r.version());
                }
                let _ = record_size_from_header(&bytes, len);
            }
        }
    }
}
