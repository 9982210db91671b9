//! [`Overrides`]: what a command line changes in the full or smoke matrix. Shared by the
//! `ycsb` binary and the `faster bench` command, so both read their flags the same way.

use std::path::PathBuf;
use std::time::Duration;

use faster::LogDevice;

use crate::config::{BenchConfig, CheckpointMode};
use crate::workload::{Dist, MAX_KEYS, Workload};

/// Choices over [`BenchConfig::full`] (or [`BenchConfig::smoke`]): every `Some` replaces the
/// base value.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Start from the smoke matrix instead of the full one.
    pub smoke: bool,
    /// Keys loaded.
    pub keys: Option<u64>,
    /// Seconds per cell.
    pub seconds: Option<f64>,
    /// Workloads.
    pub workloads: Option<Vec<Workload>>,
    /// Distributions.
    pub dists: Option<Vec<Dist>>,
    /// Thread counts.
    pub threads: Option<Vec<usize>>,
    /// Entries per thread's stream.
    pub stream_len: Option<usize>,
    /// Seed of the streams.
    pub seed: Option<u64>,
    /// Turn verification on (the smoke matrix has it on already).
    pub verify: bool,
    /// Checkpoint runs, with this interval.
    pub checkpoint_every: Option<Duration>,
    /// How the checkpoints capture the log.
    pub checkpoint_mode: Option<CheckpointMode>,
    /// The store's log device.
    pub device: Option<LogDevice>,
}

impl Overrides {
    /// The configuration: the base matrix with these choices, its stores under `dir`.
    /// Fails, saying why, if the result is not a matrix that can run (no keys or more than
    /// 2^48, a zero stream length or thread count, negative seconds, an empty dimension).
    pub fn config(&self, dir: PathBuf) -> Result<BenchConfig, String> {
        let mut c = if self.smoke {
            BenchConfig::smoke(dir)
        } else {
            BenchConfig::full(dir)
        };
        c.keys = self.keys.unwrap_or(c.keys);
        c.seconds = self.seconds.unwrap_or(c.seconds);
        c.workloads = self.workloads.clone().unwrap_or(c.workloads);
        c.dists = self.dists.clone().unwrap_or(c.dists);
        c.threads = self.threads.clone().unwrap_or(c.threads);
        c.stream_len = self.stream_len.unwrap_or(c.stream_len);
        c.seed = self.seed.unwrap_or(c.seed);
        c.verify |= self.verify;
        c.checkpoint_every = self.checkpoint_every;
        c.checkpoint_mode = self.checkpoint_mode.unwrap_or(c.checkpoint_mode);
        c.device = self.device.unwrap_or(c.device);
        if c.keys == 0 || c.keys > MAX_KEYS {
            return Err("--keys must lie in [1, 2^48]".into());
        }
        if c.stream_len == 0
            || c.threads.contains(&0)
            || !(c.seconds >= 0.0 && c.seconds.is_finite())
        {
            return Err(
                "--stream-len and --threads must be positive, --seconds non-negative".into(),
            );
        }
        if c.workloads.is_empty() || c.dists.is_empty() || c.threads.is_empty() {
            return Err("the matrix is empty".into());
        }
        Ok(c)
    }
}
