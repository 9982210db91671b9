//! [`CliError`]: everything a command can fail with, and the exit code each one maps to.

use std::path::PathBuf;

/// The exit code of a successful run.
pub const EXIT_OK: u8 = 0;
/// The exit code of a failed verification (a CPR prefix violated, an invalid newest
/// checkpoint) and of runtime failures (I/O, the store).
pub const EXIT_FAILED: u8 = 1;
/// The exit code of a usage error: bad arguments, a missing directory, a directory that is
/// not a store.
pub const EXIT_USAGE: u8 = 2;

/// An error of a `faster` command. [`CliError::exit_code`] says how the process ends;
/// [`Display`](std::fmt::Display) is the one line printed on stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The arguments do not make sense together (beyond what the parser checks).
    #[error("{0}")]
    Usage(String),
    /// A directory given on the command line does not exist.
    #[error("{}: no such directory", .0.display())]
    NoSuchDir(PathBuf),
    /// A directory given on the command line holds no store.
    #[error("{}: not a faster store (no log/ or checkpoints/ directory)", .0.display())]
    NotAStore(PathBuf),
    /// A directory the command would create already exists.
    #[error("{}: already exists (choose another --dir, or remove it)", .0.display())]
    AlreadyExists(PathBuf),
    /// A verification failed: the CPR prefix is violated, or a checkpoint is invalid.
    #[error("{0}")]
    Failed(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] faster::Error),
    /// A file-system or process operation failed.
    #[error("could not {what} {}: {source}", path.display())]
    Io {
        /// What was attempted, phrased to follow "could not".
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The benchmark library failed.
    #[error("benchmark: {0}")]
    Bench(String),
    /// Standard output was closed by its reader (`faster inspect d | head`): stop quietly.
    #[error("standard output closed")]
    BrokenPipe,
}

impl CliError {
    /// The process exit code for this error: [`EXIT_USAGE`] for usage errors,
    /// [`EXIT_OK`] for a closed standard output, [`EXIT_FAILED`] otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_)
            | CliError::NoSuchDir(_)
            | CliError::NotAStore(_)
            | CliError::AlreadyExists(_) => EXIT_USAGE,
            CliError::BrokenPipe => EXIT_OK,
            _ => EXIT_FAILED,
        }
    }

    /// Shorthand for [`CliError::Io`].
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// The result type of the commands.
pub type Result<T> = std::result::Result<T, CliError>;
