//! The errors of a checkpoint.

use crate::state::Phase;

/// Why a checkpoint did not complete. `E` is the store's own error type (the
/// work of [`crate::CheckpointHooks`]).
#[derive(Debug, thiserror::Error)]
pub enum CprError<E: std::error::Error + 'static> {
    /// Another checkpoint is running; only one runs at a time.
    #[error("a checkpoint is already in progress ({phase} of version {version})")]
    CheckpointInProgress {
        /// The running checkpoint's phase when this request was refused.
        phase: Phase,
        /// Its version.
        version: u64,
    },
    /// Sessions did not acknowledge `phase` before the deadline. The state
    /// machine went back to rest; the sessions' work goes on; this checkpoint
    /// is not valid and its partial files were removed.
    #[error(
        "checkpoint of version {version} timed out in {phase} after {waited_ms} ms; sessions still pending: {sessions:?}"
    )]
    Timeout {
        /// The phase that did not complete.
        phase: Phase,
        /// The abandoned checkpoint's version.
        version: u64,
        /// The ids of the sessions that had not acknowledged it.
        sessions: Vec<u64>,
        /// How long the checkpoint waited in all.
        waited_ms: u64,
    },
    /// The store's work for `phase` failed; the checkpoint was abandoned.
    #[error("checkpoint of version {version} failed in {phase}: {source}")]
    Store {
        /// The phase whose work failed.
        phase: Phase,
        /// The abandoned checkpoint's version.
        version: u64,
        /// The store's error.
        #[source]
        source: E,
    },
    /// [`crate::CheckpointHooks::cancelled`] said to give up while the checkpoint waited for
    /// sessions in `phase` (the store is closing). The state machine went back to rest; the
    /// checkpoint is not valid and its partial files were removed.
    #[error("checkpoint of version {version} was cancelled in {phase}")]
    Cancelled {
        /// The phase the checkpoint waited in.
        phase: Phase,
        /// The abandoned checkpoint's version.
        version: u64,
    },
    /// The state machine left this checkpoint's phases without its driver: a protocol
    /// violation that the driver reports instead of driving a checkpoint it did not begin.
    /// The checkpoint is not valid (its partial files were removed).
    #[error("checkpoint of version {version} lost its state machine: found {found:?}")]
    Lost {
        /// The checkpoint's version.
        version: u64,
        /// The state found instead of one of the checkpoint's phases.
        found: crate::state::SystemState,
    },
}
