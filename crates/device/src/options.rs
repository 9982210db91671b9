//! [`DeviceOptions`]: segment size, alignment, queue depth and the knobs tests use.

use crate::error::{DeviceError, Result};
use crate::fault::FaultInjector;

/// The largest accepted alignment, and the largest single transfer: 1 GiB.
const MAX_ALIGNMENT: usize = 1 << 30;

/// Configuration shared by all devices. Build it with [`DeviceOptions::default`] and the
/// `with_*` setters.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeviceOptions {
    /// Size in bytes of one segment file (`<dir>/<base_name>.<n>` holds device bytes
    /// `[n * segment_size, (n + 1) * segment_size)`). A multiple of `alignment`, at most
    /// `i64::MAX`. Default 1 GiB.
    pub segment_size: u64,
    /// Required alignment of buffer addresses, offsets and lengths; a power of two of at most
    /// 1 GiB. Default 4096,
    /// which satisfies `O_DIRECT` on every common block device.
    pub alignment: usize,
    /// Number of submission-queue entries of the io_uring instance (ignored by the other
    /// devices). More requests than this may be in flight; the surplus waits in user space.
    /// Default 128.
    pub queue_depth: u32,
    /// Largest number of bytes moved by one system call / submission-queue entry. Longer
    /// requests are carried out as a sequence of transfers through the same path that retries
    /// short transfers, so a small value exercises that path. A multiple of `alignment`.
    /// Default: no limit.
    pub max_transfer: Option<usize>,
    /// Try `O_DIRECT` (bypassing the page cache) for the io_uring and file devices; the device
    /// falls back to buffered I/O if the file system refuses it. Default `true`.
    pub direct_io: bool,
    /// Base name of the segment files. Default `"log"`.
    pub base_name: String,
    /// Open the segment files read-only, for a device that is only read (recovery's index
    /// and snapshot files): the directory must exist (it is not created), files are opened
    /// without write access and with buffered I/O, and writes and truncation fail with
    /// [`DeviceError::ReadOnly`] (a flush has nothing to do). Default `false`.
    pub read_only: bool,
    /// Fault injector consulted by every read, write and flush (all devices). Default: one
    /// with no faults armed.
    pub faults: FaultInjector,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            segment_size: 1 << 30,
            alignment: 4096,
            queue_depth: 128,
            max_transfer: None,
            direct_io: true,
            base_name: "log".to_owned(),
            read_only: false,
            faults: FaultInjector::default(),
        }
    }
}

impl DeviceOptions {
    /// Sets [`segment_size`](Self::segment_size).
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets [`alignment`](Self::alignment).
    pub fn with_alignment(mut self, bytes: usize) -> Self {
        self.alignment = bytes;
        self
    }

    /// Sets [`queue_depth`](Self::queue_depth).
    pub fn with_queue_depth(mut self, entries: u32) -> Self {
        self.queue_depth = entries;
        self
    }

    /// Sets [`max_transfer`](Self::max_transfer).
    pub fn with_max_transfer(mut self, bytes: Option<usize>) -> Self {
        self.max_transfer = bytes;
        self
    }

    /// Sets [`direct_io`](Self::direct_io).
    pub fn with_direct_io(mut self, on: bool) -> Self {
        self.direct_io = on;
        self
    }

    /// Sets [`base_name`](Self::base_name).
    pub fn with_base_name(mut self, name: impl Into<String>) -> Self {
        self.base_name = name.into();
        self
    }

    /// Sets [`read_only`](Self::read_only).
    pub fn with_read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// Sets [`faults`](Self::faults).
    pub fn with_faults(mut self, faults: FaultInjector) -> Self {
        self.faults = faults;
        self
    }

    /// Checks the options for consistency.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(DeviceError::InvalidOptions(msg));
        if !self.alignment.is_power_of_two() || self.alignment > MAX_ALIGNMENT {
            return bad(format!(
                "alignment {} is not a power of two of at most {MAX_ALIGNMENT}",
                self.alignment
            ));
        }
        if self.segment_size > i64::MAX as u64 {
            return bad(format!(
                "segment_size {} exceeds the largest file offset",
                self.segment_size
            ));
        }
        if self.segment_size == 0 || self.segment_size % self.alignment as u64 != 0 {
            return bad(format!(
                "segment_size {} is not a positive multiple of alignment {}",
                self.segment_size, self.alignment
            ));
        }
        if self.queue_depth == 0 {
            return bad("queue_depth must be positive".to_owned());
        }
        if let Some(m) = self.max_transfer {
            if m == 0 || m % self.alignment != 0 {
                return bad(format!(
                    "max_transfer {m} is not a positive multiple of alignment {}",
                    self.alignment
                ));
            }
        }
        if self.base_name.is_empty() || self.base_name.contains('/') {
            return bad(format!("bad base_name {:?}", self.base_name));
        }
        Ok(())
    }

    /// The largest single transfer: `max_transfer`, or 1 GiB. Never above 1 GiB, so it fits
    /// the `u32` length of an io_uring entry, and (for valid options) a multiple of the
    /// alignment, which is at most 1 GiB.
    pub(crate) fn transfer_cap(&self) -> usize {
        self.max_transfer
            .unwrap_or(MAX_ALIGNMENT)
            .min(MAX_ALIGNMENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        DeviceOptions::default().validate().unwrap();
    }

    #[test]
    fn inconsistent_options_are_rejected() {
        let d = DeviceOptions::default;
        for o in [
            d().with_alignment(3),
            d().with_alignment(1 << 31).with_segment_size(1 << 31),
            d().with_segment_size(1 << 63),
            d().with_segment_size(1000),
            d().with_segment_size(0),
            d().with_queue_depth(0),
            d().with_max_transfer(Some(100)),
            d().with_base_name("a/b"),
        ] {
            assert!(
                matches!(o.validate(), Err(DeviceError::InvalidOptions(_))),
                "{o:?}"
            );
        }
    }
}
