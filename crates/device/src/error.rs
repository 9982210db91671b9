//! The one error type of the crate, [`DeviceError`], and its [`Result`] alias.

use std::fmt;
use std::io;

/// What kind of operation an error or an injected fault is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// A read request.
    Read,
    /// A write request.
    Write,
    /// A flush (`fdatasync`) of the device.
    Flush,
    /// Opening, creating or probing a segment file or the device directory.
    Open,
    /// Deleting segment files in `truncate_front`.
    Truncate,
    /// Submitting to or waiting on the io_uring instance (`io_uring_enter`).
    Submit,
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Flush => "flush",
            OpKind::Open => "open",
            OpKind::Truncate => "truncate",
            OpKind::Submit => "io_uring_enter",
        };
        f.write_str(s)
    }
}

/// Everything that can go wrong in a device.
///
/// Errors about the request itself (alignment, range) are returned synchronously by
/// [`Device::read`](crate::Device::read) / [`Device::write`](crate::Device::write); errors of the
/// I/O itself arrive through the request's callback.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// A buffer address, an offset or a length is not a multiple of the device alignment.
    #[error("{what} {value:#x} is not a multiple of the device alignment {alignment}")]
    Misaligned {
        /// Which value was misaligned: `"buffer address"`, `"offset"` or `"length"`.
        what: &'static str,
        /// The offending value.
        value: u64,
        /// The required alignment.
        alignment: usize,
    },
    /// A read of `len` bytes at `offset` reaches past the device size.
    #[error(
        "read of {len} bytes at offset {offset} reaches past the end of the device (size {size})"
    )]
    PastEnd {
        /// Start of the request.
        offset: u64,
        /// Length of the request.
        len: usize,
        /// Device size at the time of the request.
        size: u64,
    },
    /// The request touches bytes below the truncation point of the device.
    #[error("offset {offset} lies below the start of the device ({begin}); it was truncated")]
    Truncated {
        /// Start of the request (or of the part of it that hit truncated space).
        offset: u64,
        /// The current first valid offset of the device.
        begin: u64,
    },
    /// A request of zero bytes, or whose end overflows `u64`.
    #[error("invalid request range: {len} bytes at offset {offset}")]
    InvalidRange {
        /// Start of the request.
        offset: u64,
        /// Length of the request.
        len: usize,
    },
    /// The options given to a device are inconsistent.
    #[error("invalid device options: {0}")]
    InvalidOptions(String),
    /// An operating-system I/O error.
    #[error("{op} at offset {offset} failed: {source}")]
    Io {
        /// The operation that failed.
        op: OpKind,
        /// The device offset the failing system call addressed (0 for whole-device operations).
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A path the device opens (its directory or a segment file) is a symbolic link: the
    /// device never follows one (it could lead reads and writes outside the store).
    #[error("{} is a symbolic link: refusing to follow it", path.display())]
    Symlink {
        /// The link.
        path: std::path::PathBuf,
    },
    /// A write, flush or truncation of a device opened read-only
    /// ([`DeviceOptions::read_only`](crate::DeviceOptions::read_only)).
    #[error("the device in {} was opened read-only", dir.display())]
    ReadOnly {
        /// The device's directory.
        dir: std::path::PathBuf,
    },
    /// A fault injected through a [`FaultInjector`](crate::FaultInjector) without an errno.
    #[error("injected fault on {op} at offset {offset}")]
    Injected {
        /// The operation the fault was injected into.
        op: OpKind,
        /// The device offset of the request (0 for flush).
        offset: u64,
    },
}

impl DeviceError {
    /// Builds an [`DeviceError::Io`].
    pub(crate) fn io(op: OpKind, offset: u64, source: io::Error) -> Self {
        DeviceError::Io { op, offset, source }
    }

    /// The raw OS error code, when this is an I/O error that carries one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            DeviceError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = DeviceError> = std::result::Result<T, E>;
