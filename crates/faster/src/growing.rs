//! What the store keeps about index growth between growths: whether one runs (the
//! automatic trigger and checkpoints that wait for it look here), and what each completed
//! growth did ([`GrowInfo`]). The growth itself is in `grow`. Imports `running`.

use std::sync::Mutex;
use std::time::Duration;

use crate::running::Running;

/// A finished index growth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrowInfo {
    /// `k` before: the table had `2^k` buckets.
    pub from_bits: u32,
    /// `k` after.
    pub to_bits: u32,
    /// From the request to the switch to the new table.
    pub duration: Duration,
    /// From the request to the start of the split (GROW_PREPARE: waiting for every session
    /// to stop between operations).
    pub prepare: Duration,
    /// The split, from its start to the switch to the new table (sessions wait meanwhile).
    pub split: Duration,
    /// The part of the split spent reading the on-disk log (only a table under 2^16
    /// buckets needs it; a larger one splits by its entries' tags).
    pub scan: Duration,
    /// Records of the on-disk log read to place their index entries (0 from 2^16 buckets
    /// on).
    pub scanned_records: u64,
}

/// Whether a growth runs, for the automatic trigger and for checkpoints that wait for it.
#[derive(Debug, Default)]
pub(crate) struct Growing {
    running: Running,
    /// Growths completed (for stats and tests).
    pub(crate) count: std::sync::atomic::AtomicU64,
    /// What each completed growth did, oldest first.
    pub(crate) history: Mutex<Vec<GrowInfo>>,
}

impl Growing {
    /// Marks a growth running; `false` if one is already.
    pub(crate) fn claim(&self) -> bool {
        self.running.claim()
    }

    pub(crate) fn end(&self) {
        self.running.end();
    }

    /// Waits until no growth runs.
    pub(crate) fn wait_idle(&self) {
        self.running.wait_idle();
    }
}
