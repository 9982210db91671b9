//! [`RecoveryError`]: what can go wrong while writing, reading, validating or choosing a
//! checkpoint.

use std::path::PathBuf;

/// An error of the recovery crate. Every variant names the file, directory or token involved
/// and says what is wrong, so a person can act on it.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// A file is damaged: unreadable framing, a bad checksum, an impossible value, a missing
    /// or short data file.
    #[error("checkpoint file {} is damaged: {reason}", file.display())]
    Corrupt {
        /// The damaged (or missing) file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A path inside the store directory is a symbolic link where recovery expected a file
    /// or directory of the store's: it is never followed (it could lead reads or writes
    /// outside the store).
    #[error("{} is a symbolic link: refusing to follow it", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Files that are each well-formed disagree with each other or violate an ordering rule
    /// (for example a session's serial number going backwards between checkpoints).
    #[error("checkpoints are inconsistent: {reason}")]
    Inconsistent {
        /// What disagrees.
        reason: String,
    },
    /// An I/O operation failed.
    #[error("could not {what} {}: {source}", path.display())]
    Io {
        /// The operation, phrased to follow "could not" (e.g. "read", "create directory").
        what: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No valid checkpoint was found.
    #[error("no valid checkpoint in {}", dir.display())]
    NoCheckpoint {
        /// The checkpoints directory that was searched.
        dir: PathBuf,
    },
    /// A string is not a valid checkpoint token.
    #[error("invalid checkpoint token {token:?}: {reason}")]
    InvalidToken {
        /// The rejected text (possibly shortened).
        token: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Loading a checkpoint's index files failed (bad checksum, impossible entries, short
    /// file, failed read).
    #[error("could not load the index checkpoint {}: {source}", dir.display())]
    Index {
        /// The index directory.
        dir: PathBuf,
        /// What the index reported.
        #[source]
        source: faster_index::IndexError,
    },
    /// Reading, scanning or rewriting the log (or copying a snapshot into it) failed.
    #[error("replaying the log: {0}")]
    Log(#[from] faster_hlog::HlogError),
    /// A checkpoint file device (index or snapshot) could not be opened, read or written.
    #[error("device {}: {source}", path.display())]
    Device {
        /// The device's directory.
        path: PathBuf,
        /// What the device reported.
        #[source]
        source: faster_device::DeviceError,
    },
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, RecoveryError>;

impl RecoveryError {
    /// Shorthand for [`RecoveryError::Corrupt`].
    pub(crate) fn corrupt(file: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        RecoveryError::Corrupt {
            file: file.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`RecoveryError::Inconsistent`].
    pub(crate) fn inconsistent(reason: impl Into<String>) -> Self {
        RecoveryError::Inconsistent {
            reason: reason.into(),
        }
    }

    /// Shorthand for [`RecoveryError::Io`], or [`RecoveryError::Symlink`] if `source` says
    /// the path was a symbolic link.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        if faster_device::nofollow::is_symlink_error(&source) {
            return RecoveryError::Symlink { path: path.into() };
        }
        RecoveryError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// A failed request of the store's log device (not a checkpoint file device, whose errors are
/// [`RecoveryError::Device`] naming its directory).
impl From<faster_device::DeviceError> for RecoveryError {
    fn from(source: faster_device::DeviceError) -> Self {
        match source {
            faster_device::DeviceError::Symlink { path } => RecoveryError::Symlink { path },
            source => RecoveryError::Log(source.into()),
        }
    }
}
