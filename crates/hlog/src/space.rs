//! Reclaiming the log's front: the logical begin address, which readers compare with, and
//! the physical truncation of the device below it.
//!
//! The two are separate steps, in this order: [`Hlog::shift_begin_address`] makes records
//! below the new begin gone for every reader that loads the begin afterwards (the store
//! decides when that is safe: no operation that started before the shift may still need
//! them); [`Hlog::truncate_until`] deletes the device's bytes below an address at or below
//! the begin (the store calls it only once no recoverable checkpoint needs them).

use std::sync::atomic::Ordering;

use crate::address::Address;
use crate::error::{HlogError, Result};
use crate::hlog::Hlog;

impl Hlog {
    /// Raises the begin address to `addr` (it never goes down: a lower `addr` changes
    /// nothing) and returns the begin address after the call. Readers that load the begin
    /// address afterwards treat every record below it as absent; records below it stay
    /// readable ([`Hlog::get`], [`Hlog::read_async`]) until [`Hlog::truncate_until`].
    ///
    /// Fails with [`HlogError::AddressOutOfRange`] if `addr` is not 8-byte aligned or lies
    /// past the safe read-only address (records there may still change in place, and the
    /// log's regions keep `begin <= read_only`).
    pub fn shift_begin_address(&self, addr: Address) -> Result<Address> {
        let s = self.shared();
        if addr.raw() % 8 != 0 {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: "begin address not 8-byte aligned",
            });
        }
        if addr.raw() > s.safe_read_only() {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: "begin address past the safe read-only address",
            });
        }
        let old = s.begin.fetch_max(addr.raw(), Ordering::AcqRel);
        Ok(Address::from_raw_truncated(old.max(addr.raw())))
    }

    /// The truncation point: the device's bytes below it may be deleted, and reads below it
    /// fail. At or below the begin address.
    pub fn truncated_address(&self) -> Address {
        Address::from_raw_truncated(self.shared().truncated.load(Ordering::Acquire))
    }

    /// Deletes the log's device bytes below `addr` (the device deletes whole segments:
    /// [`faster_device::Device::truncate_front`]), durably when this returns `Ok`. Reads
    /// below `addr` fail from now on; reads already issued complete. Lowering the point
    /// changes nothing.
    ///
    /// Fails with [`HlogError::AddressOutOfRange`] if `addr` is above the begin address
    /// (records there are still live), and with the device's error if deleting fails (the
    /// truncation point is raised either way: the bytes are no longer the log's).
    pub fn truncate_until(&self, addr: Address) -> Result<()> {
        let s = self.shared();
        if addr > self.begin_address() {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: "truncation past the begin address",
            });
        }
        let old = s.truncated.fetch_max(addr.raw(), Ordering::AcqRel);
        if addr.raw() <= old {
            return Ok(());
        }
        s.device.truncate_front(addr.raw())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faster_device::{DeviceOptions, MemoryDevice};
    use faster_epoch::LightEpoch;

    use super::*;
    use crate::HlogConfig;
    use crate::record::NewRecord;

    fn log() -> Hlog {
        let device =
            Arc::new(MemoryDevice::new(DeviceOptions::default().with_segment_size(4096)).unwrap());
        let config = HlogConfig::default()
            .with_page_size(4096)
            .with_memory_size(4 * 4096);
        Hlog::new(config, device, LightEpoch::new()).unwrap()
    }

    /// 400 records appended (about 23 pages of 4 KiB: most of them read-only and flushed),
    /// and their addresses.
    fn fill(log: &Hlog) -> (faster_epoch::Guard<faster_epoch::Participant>, Vec<Address>) {
        let mut guard = log.epoch().register().unwrap().into_guard();
        let addrs = (0..400u64)
            .map(|i| {
                log.append(&mut guard, &NewRecord::new(&i.to_le_bytes(), &[7; 40]))
                    .unwrap()
            })
            .collect();
        guard.refresh();
        (guard, addrs)
    }

    #[test]
    fn begin_moves_up_only_and_not_past_the_safe_read_only_address() {
        let log = log();
        let (guard, addrs) = fill(&log);
        let sro = log.safe_read_only_address();
        assert!(sro > addrs[10], "pages became read-only: {sro:?}");
        assert!(
            log.shift_begin_address(Address::from_raw_truncated(sro.raw() + 8))
                .is_err()
        );
        assert!(
            log.shift_begin_address(Address::from_raw_truncated(addrs[3].raw() + 4))
                .is_err()
        );
        assert_eq!(log.shift_begin_address(addrs[5]).unwrap(), addrs[5]);
        assert_eq!(
            log.shift_begin_address(addrs[2]).unwrap(),
            addrs[5],
            "never lowered"
        );
        assert_eq!(log.begin_address(), addrs[5]);
        // Below the begin but above the truncation point: still readable.
        assert_eq!(log.truncated_address(), Address::FIRST_VALID);
        assert!(log.get(&guard, addrs[1]).is_ok());
    }

    #[test]
    fn truncation_stays_at_or_below_the_begin_and_refuses_reads_below_it() {
        let log = log();
        let (_guard, addrs) = fill(&log);
        let to = addrs[200];
        assert!(log.truncate_until(to).is_err(), "past the begin");
        log.shift_begin_address(to).unwrap();
        log.truncate_until(to).unwrap();
        assert_eq!(log.truncated_address(), to);
        assert!(
            log.device().begin() > 0,
            "whole segments below were deleted"
        );
        let (tx, _rx) = std::sync::mpsc::channel();
        let err = log.read_async(addrs[0], move |r| {
            let _ = tx.send(r.is_ok());
        });
        assert!(
            matches!(err, Err(HlogError::AddressOutOfRange { .. })),
            "{err:?}"
        );
        log.truncate_until(addrs[10]).unwrap();
        assert_eq!(log.truncated_address(), to, "never lowered");
    }
}
