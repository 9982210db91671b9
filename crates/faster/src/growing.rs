//! What the store keeps about index growth between growths: whether one runs (the
//! automatic trigger and checkpoints that wait for it look here), and what each completed
//! growth did ([`GrowInfo`]). The growth itself is in `grow`.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use faster_sync::lock_std as lock;

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
    running: Mutex<bool>,
    ended: Condvar,
    /// Growths completed (for stats and tests).
    pub(crate) count: std::sync::atomic::AtomicU64,
    /// What each completed growth did, oldest first.
    pub(crate) history: Mutex<Vec<GrowInfo>>,
}

impl Growing {
    /// Marks a growth running; `false` if one is already.
    pub(crate) fn claim(&self) -> bool {
        !std::mem::replace(&mut *lock(&self.running), true)
    }

    pub(crate) fn end(&self) {
        *lock(&self.running) = false;
        self.ended.notify_all();
    }

    /// Waits until no growth runs.
    pub(crate) fn wait_idle(&self) {
        let mut running = lock(&self.running);
        while *running {
            running = match self.ended.wait(running) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
    }
}
