//! [`Hlog::recover`]: opens a log over a device that already holds log bytes.

use std::sync::Arc;

use faster_device::{AlignedBuf, Device};
use faster_epoch::LightEpoch;

use crate::address::{Address, align_up};
use crate::config::HlogConfig;
use crate::error::{HlogError, Result};
use crate::hlog::Hlog;
use crate::record::FILLER_BIT;
use crate::scan::read_sync;

impl Hlog {
    /// Opens a log over `device`, which already holds valid log bytes `[begin, end)` at
    /// their addresses (written by an earlier log with the same page size, or copied there),
    /// protected by `epoch`.
    ///
    /// The new log begins at `begin` and resumes appending at `end` rounded **up** to the next
    /// page boundary `B`, so no page has to be loaded into memory: `head`, `read_only`, their
    /// safe twins and `flushed_until` all start at `B`, and every page frame is free. Records of
    /// `[begin, end)` are on-disk records: [`Hlog::get`] returns `Ok(None)` for them and
    /// [`Hlog::read_async`] / [`Hlog::scan`] read them from the device. The bytes
    /// `[end, B)` (less than a page) are wasted: they hold no records, `read_async` rejects
    /// them, and scans and snapshots treat them as page padding.
    ///
    /// **Device write:** if `end` is not page-aligned, this writes (and flushes) a page-padding
    /// word at `end` and zeros to the page's end, keeping the bytes before `end`, so that
    /// bytes the earlier log wrote past `end` are never read as records (also by a later
    /// recovery from the same device). Nothing below `end` changes.
    ///
    /// Errors: [`HlogError::AddressOutOfRange`] if `begin` is below
    /// [`Address::FIRST_VALID`], below the device's begin, or not 8-byte aligned, if `end` is
    /// below `begin` or not 8-byte aligned, or if `end` lies past the device's end
    /// ([`Device::size`]; allowed only when `begin == end`, an empty log);
    /// [`HlogError::InvalidConfig`] as for [`Hlog::new`]; [`HlogError::LogFull`] if `B` is
    /// past the address space; [`HlogError::Device`] if the padding write fails.
    pub fn recover(
        config: HlogConfig,
        device: Arc<dyn Device>,
        epoch: LightEpoch,
        begin: Address,
        end: Address,
    ) -> Result<Hlog> {
        let (b, e) = (begin.raw(), end.raw());
        let out = |address, reason| Err(HlogError::AddressOutOfRange { address, reason });
        if begin < Address::FIRST_VALID || b % 8 != 0 {
            return out(
                begin,
                "recovered begin below the first valid address or misaligned",
            );
        }
        if b < device.begin() {
            return out(
                begin,
                "recovered begin below the device's begin (truncated)",
            );
        }
        if e < b || e % 8 != 0 {
            return out(end, "recovered end below the begin or misaligned");
        }
        if e > device.size() && e != b {
            return out(end, "recovered end past the end of the device");
        }
        let mut log = Hlog::new(config, device, epoch)?;
        let boundary = align_up(e, log.page_size());
        if boundary > Address::MAX.raw() {
            return Err(HlogError::LogFull);
        }
        if e < boundary {
            log.pad_at(e)?;
        }
        log.rebase(b, e, boundary)?;
        Ok(log)
    }

    /// Writes the page-padding word at `end` (not page-aligned) on the device, and zeros from
    /// there to the page's end (the rule of padding: only zeros follow it, see
    /// [`crate::checksum`]): the blocks of the log's alignment from `end` rounded down to
    /// the page end, keeping the bytes before `end`. Also makes the device cover them, so
    /// reads of whole blocks up to `end` succeed.
    fn pad_at(&self, end: u64) -> Result<()> {
        let device = self.device();
        let ga = self.geometry().alignment as u64;
        let da = device.alignment() as u64;
        let start = end & !(ga - 1);
        let page_end = align_up(end + 1, self.page_size());
        let mut buf = AlignedBuf::new((page_end - start) as usize, ga as usize)?;
        // The bytes before `end` in the block (read in device-aligned units: the device may
        // end before the block does). Below the device's begin or end they are not log bytes.
        let keep_end = align_up(end, da);
        if end > start && start >= device.begin() && keep_end <= device.size() {
            let data = read_sync(self, start, (keep_end - start) as usize)?;
            let keep = (end - start) as usize;
            buf[..keep].copy_from_slice(&data[..keep]);
        }
        let at = (end - start) as usize;
        buf[at..at + 8].copy_from_slice(&FILLER_BIT.to_le_bytes());
        faster_device::write_sync(&**device, start, buf)?;
        device.flush()?;
        Ok(())
    }
}
