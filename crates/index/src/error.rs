//! The one error type of the crate, [`IndexError`], and its [`Result`] alias.

use faster_device::DeviceError;

/// Everything that can go wrong in the hash index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// An [`IndexConfig`](crate::IndexConfig) (or the sizes recorded in an
    /// [`IndexCheckpointInfo`](crate::IndexCheckpointInfo)) is out of range.
    #[error("invalid index configuration: {0}")]
    InvalidConfig(String),
    /// Every overflow bucket the configuration allows is in use; the key could not be added.
    #[error("all {capacity} overflow buckets are in use")]
    OverflowExhausted {
        /// The configured number of overflow buckets.
        capacity: u64,
    },
    /// The index reached its memory limit ([`IndexConfig::memory_limit`]): `what` would
    /// take it to `needed` bytes. Keys already present keep working.
    ///
    /// [`IndexConfig::memory_limit`]: crate::IndexConfig::memory_limit
    #[error("the index's memory limit of {limit} bytes is reached: {what} needs {needed}")]
    MemoryLimit {
        /// The limit, in bytes.
        limit: u64,
        /// The bytes the index would need.
        needed: u64,
        /// What needed them.
        what: &'static str,
    },
    /// Memory for `what` could not be had (the operating system refused a mapping of
    /// `bytes` bytes): the configuration, or the sizes a checkpoint records, ask for more
    /// than this machine gives.
    #[error("cannot allocate {bytes} bytes for {what}")]
    OutOfMemory {
        /// What the memory was for.
        what: &'static str,
        /// How many bytes were asked for.
        bytes: u64,
    },
    /// The device failed while writing or reading a checkpoint.
    #[error("device error: {0}")]
    Device(#[from] DeviceError),
    /// A checkpoint region reaches past the end of the device: it was not (fully) written, or
    /// the device was cut short.
    #[error("checkpoint {what} needs bytes [{offset}, {end}) but the device ends at {size}")]
    Truncated {
        /// Which region: `"table"` or `"overflow buckets"`.
        what: &'static str,
        /// First byte of the region on the device.
        offset: u64,
        /// One past the last byte the region needs.
        end: u64,
        /// The device size.
        size: u64,
    },
    /// Checkpoint bytes or metadata are inconsistent (bad checksum, impossible entry or
    /// overflow pointer, misaligned offset, ...).
    #[error("corrupt checkpoint {what}: {reason}")]
    Corrupt {
        /// What was found corrupt.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
