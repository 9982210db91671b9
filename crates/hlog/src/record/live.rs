//! Records in the shared page frames: [`RecordRef`] (atomic word access, the seqlock of the
//! value) and [`RecordLock`] (the in-place lock bit).

use std::sync::atomic::{AtomicU64, Ordering, fence};

use super::{
    FILLER_BIT, FormatError, Header, INVALID_BIT, Kind, LOCK_BIT, RECORD_BIT, RESERVED_MASK,
    SEALED_BIT, SEQ_ONE, TOMBSTONE_BIT, WORD8_LENGTHS, WORD8_RECORD_WORDS, bad, classify_words,
    load_bytes, pad8, store_bytes,
};
use crate::Address;
use crate::error::{HlogError, Result};

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
