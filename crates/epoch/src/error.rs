//! Errors of the epoch crate.

/// What can go wrong when using a [`crate::LightEpoch`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpochError {
    /// Every slot of the epoch table is held by a live [`crate::Participant`].
    #[error("epoch table is full: all {capacity} participant slots are registered")]
    TableFull {
        /// The number of slots the table was built with.
        capacity: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid epoch configuration: {0}")]
    InvalidConfig(&'static str),
}

/// Result alias of the epoch crate.
pub type Result<T, E = EpochError> = std::result::Result<T, E>;
