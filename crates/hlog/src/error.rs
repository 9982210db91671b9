//! The one error type of the crate, [`HlogError`], and its [`Result`] alias.

use crate::Address;

/// Everything that can go wrong in the hybrid log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HlogError {
    /// The configuration is inconsistent (page size, memory budget, mutable fraction,
    /// or a device alignment the pages cannot satisfy).
    #[error("invalid hybrid-log configuration: {0}")]
    InvalidConfig(String),
    /// A record (or an allocation) does not fit in one page. Records never span pages.
    #[error("a record of {size} bytes does not fit in a page of {page_size} bytes")]
    RecordTooLarge {
        /// Requested size in bytes.
        size: u64,
        /// The configured page size.
        page_size: u64,
    },
    /// An argument is out of its domain (for example an allocation of zero bytes, or a value
    /// longer than the record's capacity).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The address lies outside the range the operation can serve (below `begin`, at or past
    /// the tail, not yet flushed for a disk read, ...).
    #[error("address {address} is out of range for this operation ({reason})")]
    AddressOutOfRange {
        /// The offending address.
        address: Address,
        /// Why it is out of range.
        reason: &'static str,
    },
    /// The 48-bit logical address space is exhausted.
    #[error("the 48-bit logical address space of the log is exhausted")]
    LogFull,
    /// Bytes at `address` do not decode as a record.
    #[error("corrupt record at address {address}: {reason}")]
    Corrupt {
        /// Where the bad bytes are.
        address: Address,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// A device request failed.
    #[error("device error: {0}")]
    Device(#[from] faster_device::DeviceError),
    /// An earlier asynchronous page flush failed; the log cannot make its pages durable and
    /// stops advancing `flushed_until` (so it stops evicting).
    #[error("flush of log bytes at {address} failed: {message}")]
    FlushFailed {
        /// Start of the flush that failed.
        address: Address,
        /// The device error, rendered.
        message: String,
    },
    /// The thread that closed a page failed to open the next one (for example because an
    /// eviction needed a flush that failed); allocation cannot proceed.
    #[error("opening page {page} failed: {message}")]
    PageTurnFailed {
        /// The page that could not be opened.
        page: u64,
        /// The error the opening thread got, rendered.
        message: String,
    },
    /// Registering an epoch participant failed (the scan iterator registers one).
    #[error("epoch error: {0}")]
    Epoch(#[from] faster_epoch::EpochError),
    /// The log was dropped before an asynchronous operation completed.
    #[error("the hybrid log was dropped before the operation completed")]
    Closed,
}

/// The result type of this crate.
pub type Result<T, E = HlogError> = std::result::Result<T, E>;
