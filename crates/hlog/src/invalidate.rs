//! [`Hlog::invalidate_on_device`]: sets the invalid bit of on-disk records durably (recovery
//! uses it for records newer than the recovered checkpoint).

use faster_device::AlignedBuf;

use crate::address::Address;
use crate::checksum;
use crate::error::{HlogError, Result};
use crate::hlog::Hlog;
use crate::record::{FILLER_BIT, INVALID_BIT, RECORD_BIT, RESERVED_MASK, record_size_from_header};
use crate::scan::read_sync;

impl Hlog {
    /// Sets [`INVALID_BIT`] in the header word of the record at each of `addresses` **on the
    /// device**, with a fresh checksum (after checking the old one), then flushes the device, so scans (also by a later recovery from the same
    /// device) skip those records. Returns the number of headers rewritten (records already
    /// invalid are left alone and not counted).
    ///
    /// The addresses must be sorted, lie in `[begin, head)` (records on disk only: in-memory
    /// pages would be overwritten by their next flush), and each must be the start of a record.
    /// The records of one page are patched with one read and one write of the aligned range
    /// covering them. Meant for recovery, before any session uses the log: nobody else may
    /// write those pages meanwhile.
    ///
    /// Errors: [`HlogError::AddressOutOfRange`] for an unsorted address or one outside
    /// `[begin, head)`; [`HlogError::Corrupt`] if the word at an address is not a record
    /// header, or if its checksum does not match (it is not rewritten);
    /// [`HlogError::Device`] if a read, write or the flush fails.
    pub fn invalidate_on_device(&self, addresses: &[Address]) -> Result<usize> {
        let (begin, head) = (self.begin_address(), self.head_address());
        let bits = self.page_size().trailing_zeros();
        let align = self.geometry().alignment as u64;
        let mut changed = 0;
        let mut i = 0;
        while i < addresses.len() {
            let page = addresses[i].raw() >> bits;
            let mut j = i;
            while j < addresses.len() && addresses[j].raw() >> bits == page {
                let a = addresses[j];
                if a < begin || a >= head || a.raw() % 8 != 0 {
                    return Err(HlogError::AddressOutOfRange {
                        address: a,
                        reason: "invalidation outside the on-disk part of the log",
                    });
                }
                if j > i && addresses[j - 1] >= a {
                    return Err(HlogError::AddressOutOfRange {
                        address: a,
                        reason: "invalidation addresses are not sorted",
                    });
                }
                j += 1;
            }
            let group = &addresses[i..j];
            let lo = group[0].raw() & !(align - 1);
            // Up to the page's end (records never span pages), or the device's.
            let page_end = (page + 1) << bits;
            let device_end = self.device().size().div_ceil(align) * align;
            let hi = page_end.min(device_end).max(lo + align);
            let mut data = read_sync(self, lo, (hi - lo) as usize)?;
            let mut dirty = false;
            for a in group {
                let off = (a.raw() - lo) as usize;
                let not_a_record = HlogError::Corrupt {
                    address: *a,
                    reason: "invalidation target is not a record header",
                };
                let avail = (page_end.min(hi) - a.raw()) as usize;
                let size = match record_size_from_header(&data[off..], avail) {
                    Ok(Some(size)) => size,
                    _ => return Err(not_a_record),
                };
                let word = u64::from_le_bytes(data[off..off + 8].try_into().unwrap_or_default());
                if word & RECORD_BIT == 0 || word & (FILLER_BIT | RESERVED_MASK) != 0 {
                    return Err(not_a_record);
                }
                if word & INVALID_BIT == 0 {
                    let rec = &mut data[off..off + size];
                    // Only a record that was intact may be rewritten with a fresh checksum.
                    checksum::verify_record(rec, *a)?;
                    rec[..8].copy_from_slice(&(word | INVALID_BIT).to_le_bytes());
                    checksum::stamp(rec);
                    dirty = true;
                    changed += 1;
                }
            }
            if dirty {
                self.write_sync(lo, data)?;
            }
            i = j;
        }
        if changed > 0 {
            self.device().flush()?;
        }
        Ok(changed)
    }

    /// Writes `buf` at `offset` on the log's device, driving completions until done.
    fn write_sync(&self, offset: u64, buf: AlignedBuf) -> Result<()> {
        Ok(faster_device::write_sync(&**self.device(), offset, buf)?)
    }
}
