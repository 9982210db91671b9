//! Checksums of the records the log writes to devices, and the checks that read them back.
//!
//! # What is checksummed, where
//!
//! Every record the log writes to a device (its own log device, or a snapshot) carries a
//! 32-bit checksum in header bytes 28..32, the field that is reserved (zero) in memory: the
//! frames never hold it, so the in-memory fast paths are untouched. The checksum covers
//! every byte of the record but the checksum field itself and the two header bits that only
//! matter in memory ([`SEALED_BIT`] and [`LOCK_BIT`]): previous address, tombstone and
//! invalid bits, version, seqlock, lengths, key, value and padding. It is xxh3-64 of the
//! first 28 bytes (with those two bits cleared), used as the seed of xxh3-64 over the rest of
//! the record, folded to 32 bits.
//!
//! Records are stamped in the buffer that is written, never in the frame:
//!
//! * a flush of `[from, to)` rewrites the whole aligned block holding `from`, so it stamps
//!   every record whose checksum field lies in the bytes it writes, including records below
//!   `from` (computed from the frame, where they are stable);
//! * a snapshot stamps the records it copies from memory and verifies those it copies from
//!   the device ([`verify_range`]);
//! * recovery's invalidation of a record on the device stamps it again.
//!
//! # What a reader checks
//!
//! A read of one record from the device checks that record's checksum
//! ([`verify_record`]). A sequential read of device pages ([`verify_range`], the log's scan of
//! pages below its head) checks more than each record: below the end of what it reads, a page
//! holds records and at most one page-padding word, and nothing else. Unwritten (zero) space
//! before the end is damage (a page's records end only where the page does, or at a padding
//! word), and the bytes after a padding word are all zero to the page end, so a record header
//! damaged into a padding word is caught too.

use std::sync::atomic::AtomicU64;

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::address::Address;
use crate::error::{HlogError, Result};
use crate::record::{
    Entry, FormatError, HEADER_SIZE, Kind, LOCK_BIT, SEALED_BIT, classify_words, parse_entry,
};

/// Byte offset of the checksum field in a record header.
pub const CHECKSUM_AT: usize = 28;
/// Header bits the checksum leaves out: they change in memory after a record is written to
/// the device and mean nothing on it.
const VOLATILE_BITS: u64 = SEALED_BIT | LOCK_BIT;

/// The checksum of the record whose bytes are `rec` (exactly its size, at least
/// [`HEADER_SIZE`]), as stored in bytes 28..32 on a device. The stored field itself is not
/// covered.
pub fn record_checksum(rec: &[u8]) -> u32 {
    let mut head = [0u8; CHECKSUM_AT];
    head.copy_from_slice(&rec[..CHECKSUM_AT]);
    let w0 = u64::from_le_bytes([
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
    ]) & !VOLATILE_BITS;
    head[..8].copy_from_slice(&w0.to_le_bytes());
    let h = xxh3_64_with_seed(rec.get(HEADER_SIZE..).unwrap_or(&[]), xxh3_64(&head));
    (h ^ (h >> 32)) as u32
}

/// The checksum stored in the record `rec`.
pub fn stored_checksum(rec: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&rec[CHECKSUM_AT..CHECKSUM_AT + 4]);
    u32::from_le_bytes(b)
}

/// Writes the checksum of the record `rec` (exactly its size) into it.
pub fn stamp(rec: &mut [u8]) {
    let sum = record_checksum(rec);
    rec[CHECKSUM_AT..CHECKSUM_AT + 4].copy_from_slice(&sum.to_le_bytes());
}

/// Checks the stored checksum of the record `rec` (exactly its size), read from the device
/// at `address`.
pub fn verify_record(rec: &[u8], address: Address) -> Result<()> {
    if stored_checksum(rec) != record_checksum(rec) {
        return Err(HlogError::Corrupt {
            address,
            reason: "record checksum mismatch: the bytes on the device are damaged",
        });
    }
    Ok(())
}

/// A walk over the pages of `[from, to)` in a buffer holding log bytes from address `base`
/// on: `from` is the start of a record (or of a page), `to` the end of a record or a page
/// end; pages are `1 << page_bits` bytes. The buffer is passed to each step, so the caller
/// may change a record (its checksum field) between steps.
struct Walk {
    at: u64,
    to: u64,
    base: u64,
    page_bits: u32,
}

/// One step of a [`Walk`].
enum Step {
    /// A record (valid or not) at `at`, in `buf[off..off + size]`.
    Record { at: u64, off: usize, size: usize },
    /// Unwritten (zero) space at this address, before the range's end.
    Unwritten(Address),
    /// Bytes at this address that are neither a record nor clean page padding.
    Damaged(Address, &'static str),
}

impl Walk {
    fn new(base: u64, (from, to): (u64, u64), page_bits: u32) -> Walk {
        Walk {
            at: from,
            to,
            base,
            page_bits,
        }
    }

    /// The next record, or what stops the walk; `None` once every page of the range ended
    /// at its end, at `to` or at a page-padding word followed by zeros.
    fn next(&mut self, buf: &[u8]) -> Option<Step> {
        while self.at < self.to {
            let page_end = ((self.at >> self.page_bits) + 1) << self.page_bits;
            let off = (self.at - self.base) as usize;
            let end = (page_end.min(self.to) - self.base) as usize;
            if end - off < 8 {
                self.at = page_end;
                continue;
            }
            let address = Address::from_raw_truncated(self.at);
            let step = match parse_entry(&buf[off..end]) {
                Ok(Entry::Record(r)) => {
                    let at = self.at;
                    self.at += r.size() as u64;
                    return Some(Step::Record {
                        at,
                        off,
                        size: r.size(),
                    });
                }
                Ok(Entry::Filler) => {
                    let rest_end =
                        (page_end.min(self.base + buf.len() as u64) - self.base) as usize;
                    if buf[off + 8..rest_end].iter().any(|&b| b != 0) {
                        Step::Damaged(address, "bytes after a page-padding word are not zero")
                    } else {
                        self.at = page_end;
                        continue;
                    }
                }
                Ok(Entry::Unwritten) => Step::Unwritten(address),
                Err(FormatError { reason }) => Step::Damaged(address, reason),
            };
            self.at = self.to;
            return Some(step);
        }
        None
    }
}

/// Stamps the checksum of every record of `[from, to)` in `buf` (log bytes from address
/// `base`; see [`Walk`] for the range's bounds). Stops at the first unwritten word or
/// undecodable bytes (what follows holds no record a scan could reach).
pub(crate) fn stamp_range(buf: &mut [u8], base: u64, range: (u64, u64), page_bits: u32) {
    let mut walk = Walk::new(base, range, page_bits);
    while let Some(Step::Record { off, size, .. }) = walk.next(buf) {
        stamp(&mut buf[off..off + size]);
    }
}

/// Verifies `[from, to)` in `buf` (log bytes read from a device, from address `base`; `from`
/// is the start of a record or of a page, `to` the end of a record or a page end, and pages
/// are `1 << page_bits` bytes): every record's checksum, and that nothing but records
/// and clean page padding lies below `to`. Calls `each(address, bytes)` with every record
/// (valid or not) once it checked out. [`HlogError::Corrupt`] names the first bad address.
pub fn verify_range(
    buf: &[u8],
    base: u64,
    range: (u64, u64),
    page_bits: u32,
    mut each: impl FnMut(u64, &[u8]),
) -> Result<()> {
    let mut walk = Walk::new(base, range, page_bits);
    while let Some(step) = walk.next(buf) {
        match step {
            Step::Record { at, off, size } => {
                let rec = &buf[off..off + size];
                verify_record(rec, Address::from_raw_truncated(at))?;
                each(at, rec);
            }
            Step::Unwritten(address) => {
                return Err(HlogError::Corrupt {
                    address,
                    reason: "unwritten (zero) bytes where the log holds records: lost or damaged",
                });
            }
            Step::Damaged(address, reason) => return Err(HlogError::Corrupt { address, reason }),
        }
    }
    Ok(())
}

/// Stamps the buffer of a flush: `buf` holds the page bytes from `start` (the aligned block
/// holding `from`) to `to`, copied from `words`, the frame of the page starting at
/// `page_start`; `first` is the address of the page's first record.
///
/// Every record whose checksum field lies in `[start, to)` is stamped: those wholly in the
/// buffer from the buffer, those that begin below `start` (flushed before; this write
/// rewrites the rest of their block from the frame, which holds no checksum) from the frame,
/// where every record below the flush's end is complete and stable but for the volatile
/// header bits the checksum leaves out.
pub(crate) fn stamp_flush(
    words: &[AtomicU64],
    page_start: u64,
    first: u64,
    (start, to): (u64, u64),
    buf: &mut [u8],
) {
    let mut at = first.max(page_start);
    let mut scratch = Vec::new();
    while at < to {
        let w = ((at - page_start) / 8) as usize;
        let size = match classify_words(&words[w..]) {
            Ok(Kind::Record(l)) => l.size as u64,
            // Padding or unwritten space: no record follows in this page.
            _ => return,
        };
        let field = at + CHECKSUM_AT as u64;
        if field >= start && field + 4 <= to {
            let sum = if at >= start && at + size <= to {
                let off = (at - start) as usize;
                record_checksum(&buf[off..off + size as usize])
            } else {
                scratch.clear();
                scratch.resize(size as usize, 0);
                for (i, chunk) in scratch.chunks_exact_mut(8).enumerate() {
                    let word = words[w + i].load(std::sync::atomic::Ordering::Acquire);
                    chunk.copy_from_slice(&word.to_le_bytes());
                }
                record_checksum(&scratch)
            };
            let off = (field - start) as usize;
            buf[off..off + 4].copy_from_slice(&sum.to_le_bytes());
        }
        at += size;
    }
}

/// The address of the first record of the page starting at `page_start` (the first page
/// begins at [`Address::FIRST_VALID`]).
pub(crate) fn first_record(page_start: u64) -> u64 {
    page_start.max(Address::FIRST_VALID.raw())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{self, FILLER_BIT, INVALID_BIT, NewRecord, RECORD_BIT};

    /// The bytes of `rec` as `write_record` lays them out (checksum field zero).
    fn bytes_of(rec: &NewRecord<'_>) -> Vec<u8> {
        let size = rec.size().unwrap() as usize;
        let words: Vec<AtomicU64> = (0..size / 8).map(|_| AtomicU64::new(0)).collect();
        record::write_record(&words, rec);
        words
            .iter()
            .flat_map(|w| w.load(std::sync::atomic::Ordering::Relaxed).to_le_bytes())
            .collect()
    }

    #[test]
    fn the_checksum_covers_every_byte_but_its_own_field_and_the_volatile_bits() {
        let rec = NewRecord::new(b"key-17", b"a value of some length")
            .with_version(9)
            .with_prev(Address::from_raw_truncated(4096));
        let mut b = bytes_of(&rec);
        stamp(&mut b);
        verify_record(&b, Address::FIRST_VALID).unwrap();
        for i in 0..b.len() {
            if (CHECKSUM_AT..CHECKSUM_AT + 4).contains(&i) {
                continue;
            }
            for bit in 0..8 {
                let mut d = b.clone();
                d[i] ^= 1 << bit;
                let volatile = i < 8 && (1u64 << (8 * i + bit)) & VOLATILE_BITS != 0;
                assert_eq!(
                    verify_record(&d, Address::FIRST_VALID).is_ok(),
                    volatile,
                    "byte {i} bit {bit}"
                );
            }
        }
        // A damaged checksum field is caught too.
        let mut d = b.clone();
        d[CHECKSUM_AT] ^= 4;
        assert!(verify_record(&d, Address::FIRST_VALID).is_err());
    }

    /// A page of three records, padding and zeros, stamped.
    fn page() -> (Vec<u8>, Vec<u64>) {
        let mut page = vec![0u8; 512];
        let mut at = 64;
        let mut starts = Vec::new();
        for (i, v) in [&b"one"[..], b"second value", b"3"].iter().enumerate() {
            let b = bytes_of(&NewRecord::new(&[i as u8; 8], v));
            page[at..at + b.len()].copy_from_slice(&b);
            starts.push(at as u64);
            at += b.len();
        }
        page[at..at + 8].copy_from_slice(&FILLER_BIT.to_le_bytes());
        stamp_range(&mut page, 0, (64, 512), 9);
        (page, starts)
    }

    #[test]
    fn a_clean_range_verifies_and_every_damage_is_named() {
        let (page, starts) = page();
        let mut seen = Vec::new();
        verify_range(&page, 0, (64, 512), 9, |a, _| seen.push(a)).unwrap();
        assert_eq!(seen, starts);
        // Any damaged byte of the records, the padding word or the zeros after it is caught,
        // but for the volatile bits of a header word.
        for i in 64..512 {
            let mut d = page.clone();
            d[i] ^= 0x5a;
            let word = i - i % 8;
            let volatile = starts.contains(&(word as u64)) && {
                let w = |b: &[u8]| u64::from_le_bytes(b[word..word + 8].try_into().unwrap());
                (w(&d) ^ w(&page)) & !VOLATILE_BITS == 0
            };
            let r = verify_range(&d, 0, (64, 512), 9, |_, _| {});
            assert_eq!(r.is_ok(), volatile, "byte {i}");
        }
        // A record header zeroed (a lost sector) before the end: unwritten space is damage.
        let mut d = page.clone();
        d[starts[1] as usize..starts[1] as usize + 8].fill(0);
        let e = verify_range(&d, 0, (64, 512), 9, |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("unwritten"), "{e}");
        // A record header turned into a padding word: the bytes after it are not zero.
        let mut d = page.clone();
        d[starts[1] as usize..starts[1] as usize + 8].copy_from_slice(&FILLER_BIT.to_le_bytes());
        assert!(verify_range(&d, 0, (64, 512), 9, |_, _| {}).is_err());
        // A record marked invalid on the device verifies once it is stamped again.
        let mut d = page.clone();
        let s = starts[0] as usize;
        let w = u64::from_le_bytes(d[s..s + 8].try_into().unwrap()) | INVALID_BIT;
        d[s..s + 8].copy_from_slice(&w.to_le_bytes());
        assert!(verify_range(&d, 0, (64, 512), 9, |_, _| {}).is_err());
        let size = (starts[1] - starts[0]) as usize;
        stamp(&mut d[s..s + size]);
        verify_range(&d, 0, (64, 512), 9, |_, _| {}).unwrap();
        assert_ne!(w & RECORD_BIT, 0);
    }
}
