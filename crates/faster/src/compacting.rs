//! What the store keeps about compaction between compactions: whether one runs, the live
//! estimate the automatic trigger compares with, and what each completed compaction did
//! ([`CompactInfo`]). The compaction itself is in `compact`. Imports `running`.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::running::Running;

/// A finished compaction ([`crate::FasterKv::compact`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactInfo {
    /// The begin address before: the compaction scanned `[from, until)`.
    pub from: u64,
    /// The end of the scanned range, and the begin address after.
    pub until: u64,
    /// Records scanned (valid ones; records marked invalid are skipped).
    pub records_scanned: u64,
    /// Bytes of those records.
    pub record_bytes_scanned: u64,
    /// Bytes of log compacted, `until - from` (each is read twice: a first pass notes every
    /// key's newest address in the range, the second copies).
    pub bytes_scanned: u64,
    /// Records copied to the tail (each was its key's newest).
    pub records_copied: u64,
    /// Bytes of those records.
    pub bytes_copied: u64,
    /// Tombstones dropped (every older version of their key lies below `until` too).
    pub tombstones_dropped: u64,
    /// Index entries freed because they pointed below the new begin address.
    pub entries_freed: u64,
    /// The log's truncation point afterwards (its files below it are deleted; a kept
    /// checkpoint may hold it lower than `until` until newer checkpoints replace it).
    pub truncated_to: u64,
    /// From the start to the shifted begin address.
    pub duration: Duration,
    /// The part spent scanning and copying (the rest is the shift, and the checkpoint).
    pub copy_time: Duration,
    /// The checkpoint taken after the shift, when a kept checkpoint still held the log's
    /// files below the new begin address ([`crate::Config::with_checkpoint_after_compaction`]):
    /// its token. `None` when none was needed or it could not start (another checkpoint
    /// was running) or failed (logged).
    pub checkpoint: Option<String>,
}

impl CompactInfo {
    /// Scanned bytes per second of the copy phase, in MB/s (10^6 bytes).
    pub fn scan_mb_per_s(&self) -> f64 {
        let s = self.copy_time.as_secs_f64();
        if s == 0.0 {
            return 0.0;
        }
        self.bytes_scanned as f64 / s / 1e6
    }
}

/// Compaction's state in the store.
#[derive(Debug, Default)]
pub(crate) struct Compacting {
    /// Whether a compaction runs (one at a time).
    pub(crate) running: Running,
    /// Whether a shift of the begin address runs (checkpoints requested meanwhile wait).
    pub(crate) shifting: Running,
    /// Whether the running checkpoint is one a compaction took after its shift (a user's
    /// checkpoint requested meanwhile waits for it instead of failing).
    pub(crate) checkpointing: std::sync::atomic::AtomicBool,
    /// The live estimate: the index's keys at the average size of the records the last
    /// compaction scanned (0: no compaction yet).
    pub(crate) live_estimate: AtomicU64,
    /// Compactions completed.
    pub(crate) count: AtomicU64,
    /// The last compactions, oldest first (at most [`HISTORY`]).
    pub(crate) history: Mutex<Vec<CompactInfo>>,
}

/// How many completed compactions the store remembers.
pub(crate) const HISTORY: usize = 64;
