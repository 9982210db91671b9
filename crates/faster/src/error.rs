//! The one error type of the store, [`Error`], and its [`Result`] alias.

use std::path::PathBuf;

use faster_device::DeviceError;
use faster_epoch::EpochError;
use faster_hlog::HlogError;
use faster_index::IndexError;

/// Everything that can go wrong in the store.
///
/// The layers' errors are wrapped as they are ([`Error::Hlog`], [`Error::Index`],
/// [`Error::Device`], [`Error::Epoch`]); the other variants are the store's own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hybrid log failed: a flush or page turn failed, a disk read failed or returned
    /// bytes that do not decode, the log is full, ...
    #[error("hybrid log: {0}")]
    Hlog(#[from] HlogError),
    /// The hash index failed (for example, every overflow bucket is in use).
    #[error("hash index: {0}")]
    Index(#[from] IndexError),
    /// The storage device failed, or could not be opened.
    #[error("device: {0}")]
    Device(#[from] DeviceError),
    /// Epoch protection failed (for example, the epoch table is full: too many sessions).
    #[error("epoch: {0}")]
    Epoch(#[from] EpochError),
    /// The key is too long for a record to fit in one page of the log.
    #[error("key of {len} bytes is too large: at most {max} bytes fit in a page")]
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// The longest key that fits (with an empty value).
        max: usize,
    },
    /// The value is too long for its record to fit in one page of the log.
    #[error("value of {len} bytes is too large for this key: at most {max} bytes fit in a page")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The longest value that fits with this key.
        max: usize,
    },
    /// The store was closed ([`crate::FasterKv::close`], or its last handle was dropped).
    #[error("the store is closed")]
    Closed,
    /// [`crate::FasterKv::open`] found a store in the directory already. Recovering an
    /// existing store is not supported yet; the directory was left untouched.
    #[error("a store already exists in {}", path.display())]
    AlreadyExists {
        /// The store's directory.
        path: PathBuf,
    },
    /// A file-system operation on the store's directory failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

/// The result type of the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;
