//! What a run measured: [`LoadResult`], [`CellResult`] (with its [`RmwCheck`] and
//! [`CheckpointRun`]) and [`SystemReport`], serialisable for the child processes' hand-off;
//! [`peak_rss_kib`].

use serde::{Deserialize, Serialize};

use crate::config::CheckpointMode;
use crate::workload::{Dist, Workload};

/// The load phase of one system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    /// Keys loaded.
    pub keys: u64,
    /// Threads that loaded them (each a contiguous share of the keys).
    pub threads: usize,
    /// Seconds it took.
    pub secs: f64,
}

impl LoadResult {
    /// Millions of upserts per second.
    pub fn mops(&self) -> f64 {
        self.keys as f64 / self.secs / 1e6
    }
}

/// The consistency check of an RMW cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RmwCheck {
    /// RMWs issued (each adds 1).
    pub expected: u64,
    /// Growth of the sum of all values over the cell (wrapping).
    pub observed: u64,
}

/// One measured cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// System name.
    pub system: String,
    /// Workload.
    pub workload: Workload,
    /// Key distribution.
    pub dist: Dist,
    /// Threads.
    pub threads: usize,
    /// Operations completed.
    pub ops: u64,
    /// Reads among them.
    pub reads: u64,
    /// Reads that found a value.
    pub read_hits: u64,
    /// Upserts among them.
    pub upserts: u64,
    /// RMWs among them.
    pub rmws: u64,
    /// Measured seconds.
    pub secs: f64,
    /// Median latency of the sampled operations, in nanoseconds.
    pub p50_ns: u64,
    /// 99th percentile latency of the sampled operations, in nanoseconds.
    pub p99_ns: u64,
    /// Number of sampled operations.
    pub samples: u64,
    /// The RMW check, for RMW cells run with [`BenchConfig::verify`](crate::config::BenchConfig::verify).
    pub rmw_check: Option<RmwCheck>,
    /// The same cell run again with checkpoints ([`BenchConfig::checkpoint_every`](crate::config::BenchConfig::checkpoint_every)), for
    /// store-backed systems.
    pub checkpoint: Option<CheckpointRun>,
    /// With `--repeat N`: the throughput (Mops/s) of every repeat of this cell, in run order
    /// (this cell is the median one, see [`crate::repeat`]); empty for a single run.
    #[serde(default)]
    pub repeats: Vec<f64>,
    /// With `--repeat N`: how many repeats of this cell failed ([`CellResult::failed`]); any
    /// makes this cell failed, even if its median repeat did not.
    #[serde(default)]
    pub failed_repeats: usize,
}

/// One checkpoint taken during a checkpoint run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// The version it captured.
    pub version: u64,
    /// Seconds from the start of the timed phase to the request.
    pub at_secs: f64,
    /// Its duration (`CheckpointInfo::duration`), in milliseconds.
    pub duration_ms: f64,
    /// Bytes written for the index.
    pub index_bytes: u64,
    /// Bytes of log made durable (the fold-over flush or the snapshot).
    pub log_bytes: u64,
}

/// A cell's second run, with a checkpoint every [`CheckpointRun::every_ms`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRun {
    /// How the checkpoints captured the log.
    pub mode: CheckpointMode,
    /// The interval, in milliseconds.
    pub every_ms: f64,
    /// The measurement of the run (its own `checkpoint` is `None`).
    pub run: Box<CellResult>,
    /// The checkpoints that completed, in order.
    pub checkpoints: Vec<CheckpointRecord>,
    /// The checkpoints that failed: their errors, in order.
    pub errors: Vec<String>,
}

impl CheckpointRun {
    /// Checkpoints requested (completed or failed).
    pub fn attempted(&self) -> usize {
        self.checkpoints.len() + self.errors.len()
    }

    /// The minimum, median and maximum duration of the completed checkpoints, in ms.
    pub fn duration_ms(&self) -> Option<(f64, f64, f64)> {
        let mut d: Vec<f64> = self.checkpoints.iter().map(|c| c.duration_ms).collect();
        if d.is_empty() {
            return None;
        }
        d.sort_by(f64::total_cmp);
        let n = d.len();
        let median = if n % 2 == 1 {
            d[n / 2]
        } else {
            (d[n / 2 - 1] + d[n / 2]) / 2.0
        };
        Some((d[0], median, d[n - 1]))
    }

    /// Total bytes written by the completed checkpoints: (index, log).
    pub fn bytes_written(&self) -> (u64, u64) {
        self.checkpoints
            .iter()
            .fold((0, 0), |(i, l), c| (i + c.index_bytes, l + c.log_bytes))
    }
}

impl CellResult {
    /// Whether the cell failed: it did no work or failed its RMW check, or its checkpoint
    /// run did, or a checkpoint of that run failed, or (with `--repeat`) any of its repeats
    /// failed.
    pub fn failed(&self) -> bool {
        if self.failed_repeats > 0 {
            return true;
        }
        let bad =
            |c: &CellResult| c.ops == 0 || c.rmw_check.is_some_and(|k| k.expected != k.observed);
        bad(self)
            || self
                .checkpoint
                .as_ref()
                .is_some_and(|k| bad(&k.run) || !k.errors.is_empty())
    }

    /// Millions of operations per second.
    pub fn mops(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops as f64 / self.secs / 1e6
        } else {
            0.0
        }
    }
}

/// Everything measured for one system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemReport {
    /// System name.
    pub system: String,
    /// The load phase.
    pub load: LoadResult,
    /// The cells, in matrix order (distribution, workload, threads).
    pub cells: Vec<CellResult>,
    /// Peak resident set (`VmHWM`) of the process in KiB after the run, if known. Process-wide
    /// and monotone: it is this system's only if the system ran alone in its process.
    pub peak_rss_kib: Option<u64>,
}

/// The process's peak resident set size (`VmHWM` of `/proc/self/status`) in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
