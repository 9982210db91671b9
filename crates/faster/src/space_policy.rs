//! [`SpacePolicy`]: what the store keeps on disk and when it reclaims the rest (set through
//! [`crate::Config`]).

/// The default number of checkpoints kept ([`crate::Config::with_checkpoints_kept`]).
pub const DEFAULT_CHECKPOINTS_KEPT: usize = 2;
/// The default compaction ratio ([`crate::Config::with_compaction_ratio`]).
pub const DEFAULT_COMPACTION_RATIO: f64 = 1.5;
/// The default smallest log that is compacted automatically: 64 MiB
/// ([`crate::Config::with_compaction_min_log`]).
pub const DEFAULT_COMPACTION_MIN_LOG: u64 = 64 << 20;
/// The default memory one compaction pass may spend on the keys of its range: 128 MiB,
/// about 3.5 million keys of at most 8 bytes ([`crate::Config::with_compaction_memory`]).
pub const DEFAULT_COMPACTION_MEMORY: usize = 128 << 20;
/// The default segment size of the log's files: 64 MiB. The log's front is deleted a whole
/// segment at a time, so the segment bounds how much dead log outlives a truncation.
pub const DEFAULT_LOG_SEGMENT: u64 = 16 << 20;

/// What the store keeps on disk and when it reclaims the rest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpacePolicy {
    /// Checkpoints kept: the newest this many valid ones (at least 1).
    pub checkpoints_kept: usize,
    /// Whether the store compacts its log by itself.
    pub auto_compaction: bool,
    /// Compact when the log above its begin address exceeds this multiple of the live
    /// estimate (the index's keys at the average record size the last compaction saw).
    pub compaction_ratio: f64,
    /// Never compact automatically a log smaller than this (bytes above the begin address).
    pub compaction_min_log: u64,
    /// Compact when the log on disk and the kept checkpoints together exceed this many
    /// bytes (`None`: no budget).
    pub disk_budget: Option<u64>,
    /// The memory one compaction pass may spend on the keys of its range; a range with
    /// more keys is compacted in several passes (each ending at a page boundary).
    pub compaction_memory: usize,
    /// Whether a compaction whose shift a kept checkpoint holds back (its files below the
    /// new begin address stay for it) ends with a full checkpoint of its own.
    pub checkpoint_after_compaction: bool,
}

impl Default for SpacePolicy {
    fn default() -> Self {
        SpacePolicy {
            checkpoints_kept: DEFAULT_CHECKPOINTS_KEPT,
            auto_compaction: true,
            compaction_ratio: DEFAULT_COMPACTION_RATIO,
            compaction_min_log: DEFAULT_COMPACTION_MIN_LOG,
            disk_budget: None,
            compaction_memory: DEFAULT_COMPACTION_MEMORY,
            checkpoint_after_compaction: true,
        }
    }
}
