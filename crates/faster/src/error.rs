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
    /// A checkpoint that was waiting for sessions when the store closed fails with it too
    /// (a closed store never completes what it waited for).
    #[error("the store is closed")]
    Closed,
    /// [`crate::FasterKv::open`] found a store in the directory already (recover it with
    /// [`crate::FasterKv::recover`]); the directory was left untouched.
    #[error("a store already exists in {}", path.display())]
    AlreadyExists {
        /// The store's directory.
        path: PathBuf,
    },
    /// Another open store holds the directory ([`crate::FasterKv::open`] or
    /// [`crate::FasterKv::recover`] in this process or another; see the lock file `LOCK`).
    /// Nothing in the directory was read or changed.
    #[error("the store in {} is in use by another open store", dir.display())]
    InUse {
        /// The store's directory.
        dir: PathBuf,
    },
    /// A path inside the store's directory is a symbolic link where the store keeps a file
    /// or directory of its own: the store never follows one (it could lead writes outside the
    /// directory). The layers report the same as [`DeviceError::Symlink`] and
    /// [`faster_recovery::RecoveryError::Symlink`]; [`Error::symlink`] finds any of them.
    #[error("{} is a symbolic link: refusing to follow it", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Session `session` has used every serial number ([`faster_cpr::MAX_SERIAL`]): it
    /// cannot issue another operation (start a new session).
    #[error("session {session} has used every serial number")]
    SerialExhausted {
        /// The session.
        session: crate::session_id::SessionId,
    },
    /// Every session id has been handed out ([`faster_recovery::MAX_SESSION_ID`]).
    #[error("no session id is left")]
    SessionIdsExhausted,
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
    /// An index growth is already running; only one runs at a time.
    #[error("an index growth is already in progress")]
    GrowthInProgress,
    /// Sessions did not let an index growth through `phase` in time (a session stayed busy
    /// in one call). The growth was abandoned; the index keeps its table and the store goes
    /// on.
    #[error(
        "index growth timed out in {phase} after {waited_ms} ms; sessions still busy: {sessions:?}"
    )]
    GrowthTimeout {
        /// The phase that did not complete.
        phase: faster_cpr::Phase,
        /// The sessions that had not acknowledged it.
        sessions: Vec<crate::session_id::SessionId>,
        /// How long the growth waited.
        waited_ms: u64,
    },
    /// An index growth failed (memory for its new table ran out); the index keeps its table.
    #[error("index growth failed: {0}")]
    GrowthFailed(#[source] Box<Error>),
    /// A checkpoint is already running; only one runs at a time.
    #[error("a checkpoint is already in progress ({phase} of version {version})")]
    CheckpointInProgress {
        /// The running checkpoint's phase.
        phase: faster_cpr::Phase,
        /// Its version.
        version: u64,
    },
    /// Sessions did not let the checkpoint through `phase` in time (for example a session
    /// kept operations pending without completing them). The checkpoint was abandoned and
    /// its files removed; sessions go on working, and a later checkpoint can succeed.
    #[error(
        "checkpoint of version {version} timed out in {phase} after {waited_ms} ms; sessions still pending: {sessions:?}"
    )]
    CheckpointTimeout {
        /// The phase that did not complete.
        phase: faster_cpr::Phase,
        /// The abandoned checkpoint's version.
        version: u64,
        /// The sessions that had not acknowledged the phase.
        sessions: Vec<crate::session_id::SessionId>,
        /// How long the checkpoint waited.
        waited_ms: u64,
    },
    /// The store's work for a checkpoint failed in `phase` (writing the index, the log or
    /// the metadata); the checkpoint was abandoned and its files removed.
    #[error("checkpoint of version {version} failed in {phase}: {source}")]
    CheckpointFailed {
        /// The phase whose work failed.
        phase: faster_cpr::Phase,
        /// The abandoned checkpoint's version.
        version: u64,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// The state machine left the checkpoint's phases without its driver (a protocol
    /// violation, reported instead of a checkpoint that could not be recovered); the
    /// checkpoint is not valid and its files were removed.
    #[error("checkpoint of version {version} lost its state machine (found {found})")]
    CheckpointLost {
        /// The checkpoint's version.
        version: u64,
        /// The state found instead.
        found: faster_cpr::SystemState,
    },
    /// The checkpoint thread panicked (a bug); the checkpoint is not valid.
    #[error("the checkpoint thread panicked")]
    CheckpointPanicked,
    /// The index growth thread panicked (a bug).
    #[error("the index growth thread panicked")]
    GrowthPanicked,
    /// A compaction is already running; only one runs at a time.
    #[error("a compaction is already in progress")]
    CompactionInProgress,
    /// A compaction failed; what it copied stays (the copies are ordinary records), the log's
    /// begin address did not move, and a later compaction can succeed.
    #[error("compaction failed: {0}")]
    CompactionFailed(#[source] Box<Error>),
    /// The compaction found the index changed in a way its protocol rules out (a bug,
    /// reported instead of a compaction that could lose a key).
    #[error("compaction: {0}")]
    CompactionConflict(String),
    /// The compaction thread panicked (a bug); the log's begin address did not move.
    #[error("the compaction thread panicked")]
    CompactionPanicked,
    /// Sessions did not let a shift of the log's begin address through `phase` in time (a
    /// session stayed busy in one call, or kept operations pending without completing
    /// them). The begin address did not move; the store goes on.
    #[error(
        "shift of the begin address timed out in {phase} after {waited_ms} ms; sessions still busy or pending: {sessions:?}"
    )]
    ShiftTimeout {
        /// The phase that did not complete.
        phase: faster_cpr::Phase,
        /// The sessions that had not acknowledged it.
        sessions: Vec<crate::session_id::SessionId>,
        /// How long the shift waited.
        waited_ms: u64,
    },
    /// [`crate::FasterKv::continue_session`]: the recovered checkpoint has no session with
    /// this id.
    #[error("session {0} is not among the recovered sessions")]
    UnknownSession(crate::session_id::SessionId),
    /// [`crate::FasterKv::continue_session`]: the session was continued already.
    #[error("session {0} was continued already")]
    SessionAlreadyContinued(crate::session_id::SessionId),
    /// Recovery needs a log that outlives the process: [`crate::LogDevice::Memory`] cannot
    /// be recovered (a device given with [`crate::Config::with_device`] can).
    #[error("a store with an in-memory log device cannot be recovered")]
    MemoryLogNotRecoverable,
    /// Checkpoint files: writing, reading or validating them failed.
    #[error("checkpoint files: {0}")]
    Recovery(#[from] faster_recovery::RecoveryError),
}

impl Error {
    /// [`Error::Io`], or [`Error::Symlink`] if `source` says the path was a symbolic link.
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Error {
        if faster_device::nofollow::is_symlink_error(&source) {
            return Error::Symlink {
                path: path.to_path_buf(),
            };
        }
        Error::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The symbolic link this error refused to follow, whichever layer found it.
    pub fn symlink(&self) -> Option<&std::path::Path> {
        match self {
            Error::Symlink { path }
            | Error::Device(DeviceError::Symlink { path })
            | Error::Recovery(faster_recovery::RecoveryError::Symlink { path }) => Some(path),
            Error::Hlog(HlogError::Device(DeviceError::Symlink { path })) => Some(path),
            Error::Recovery(faster_recovery::RecoveryError::Log(HlogError::Device(
                DeviceError::Symlink { path },
            ))) => Some(path),
            _ => None,
        }
    }

    /// The store's form of a state-machine error of an index growth.
    pub(crate) fn from_grow(e: faster_cpr::CprError<Error>) -> Error {
        use faster_cpr::CprError;
        match e {
            CprError::Timeout {
                phase,
                sessions,
                waited_ms,
                ..
            } => Error::GrowthTimeout {
                phase,
                sessions: ids(sessions),
                waited_ms,
            },
            CprError::Store { source, .. } => Error::GrowthFailed(Box::new(source)),
            e => Error::from_cpr(e),
        }
    }

    /// The store's form of a state-machine error of a shift of the begin address.
    pub(crate) fn from_shift(e: faster_cpr::CprError<Error>) -> Error {
        use faster_cpr::CprError;
        match e {
            CprError::Timeout {
                phase,
                sessions,
                waited_ms,
                ..
            } => Error::ShiftTimeout {
                phase,
                sessions: ids(sessions),
                waited_ms,
            },
            CprError::Store { source, .. } => source,
            e => Error::from_cpr(e),
        }
    }

    /// The store's form of a state-machine error.
    pub(crate) fn from_cpr(e: faster_cpr::CprError<Error>) -> Error {
        use faster_cpr::CprError;
        match e {
            CprError::CheckpointInProgress { phase, version } => {
                Error::CheckpointInProgress { phase, version }
            }
            CprError::Timeout {
                phase,
                version,
                sessions,
                waited_ms,
            } => Error::CheckpointTimeout {
                phase,
                version,
                sessions: ids(sessions),
                waited_ms,
            },
            CprError::Store {
                phase,
                version,
                source,
            } => Error::CheckpointFailed {
                phase,
                version,
                source: Box::new(source),
            },
            CprError::Lost { version, found } => Error::CheckpointLost { version, found },
            // The hooks cancel only when the store is closed.
            CprError::Cancelled { .. } => Error::Closed,
        }
    }
}

/// Session ids from the state machine's raw ids.
fn ids(raw: Vec<u64>) -> Vec<crate::session_id::SessionId> {
    raw.into_iter()
        .map(crate::session_id::SessionId::from_raw)
        .collect()
}

/// The result type of the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;
