//! [`BenchConfig`]: what a benchmark run measures (the matrix, the stores' options, the
//! checkpoint runs), [`CheckpointMode`] and [`parse_duration`].

use std::path::PathBuf;
use std::time::Duration;

use faster::{CheckpointOptions, LogCapture, LogDevice};
use serde::{Deserialize, Serialize};

use crate::peers::SystemKind;
use crate::workload::{Dist, Workload};

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Number of keys loaded (`0..keys`, 8-byte little-endian keys and values).
    pub keys: u64,
    /// Duration of each cell.
    pub seconds: f64,
    /// Workloads, in order.
    pub workloads: Vec<Workload>,
    /// Distributions, in order.
    pub dists: Vec<Dist>,
    /// Thread counts, in order.
    pub threads: Vec<usize>,
    /// Entries per thread's pre-generated stream (replayed cyclically).
    pub stream_len: usize,
    /// Seed of the streams (the same for every system).
    pub seed: u64,
    /// Check the store's contents after loading (every key holds its own number) and around
    /// every RMW cell (the values' sum grows by exactly the number of RMWs). Reads every key:
    /// not timed, but slow for 10 M keys.
    pub verify: bool,
    /// Parent directory of the store's temporary directory.
    pub dir: PathBuf,
    /// If set, every cell of a store-backed system runs a second time with a checkpoint
    /// taken every this often ([`CheckpointRun`](crate::results::CheckpointRun)).
    pub checkpoint_every: Option<Duration>,
    /// How those checkpoints capture the log.
    pub checkpoint_mode: CheckpointMode,
    /// The store's log device ([`LogDevice::Auto`] by default).
    pub device: LogDevice,
}

/// How the benchmark's checkpoints capture the log (`--checkpoint-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointMode {
    /// [`LogCapture::FoldOver`]: flush the log up to the tail (the default).
    #[default]
    FoldOver,
    /// [`LogCapture::Snapshot`]: write the in-memory part of the log to a snapshot file.
    Snapshot,
    /// The first checkpoint full (fold-over), the later ones log-only (fold-over): the index
    /// is written once, as FASTER users who checkpoint often do with `CheckpointHybridLog`.
    Incremental,
    /// Index-only checkpoints (`CheckpointIndex`): the hash index, no log; separates the
    /// index's share of a full checkpoint's cost from the fold-over's.
    IndexOnly,
}

impl CheckpointMode {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            CheckpointMode::FoldOver => "fold-over",
            CheckpointMode::Snapshot => "snapshot",
            CheckpointMode::Incremental => "incremental",
            CheckpointMode::IndexOnly => "index-only",
        }
    }

    /// The store's options for a checkpoint in this mode (`first`: no checkpoint succeeded
    /// yet in this run).
    pub fn options(self, first: bool) -> CheckpointOptions {
        match self {
            CheckpointMode::FoldOver => CheckpointOptions::full(),
            CheckpointMode::Snapshot => CheckpointOptions::full().with_log(LogCapture::Snapshot),
            CheckpointMode::Incremental if first => CheckpointOptions::full(),
            CheckpointMode::Incremental => CheckpointOptions::log_only(),
            CheckpointMode::IndexOnly => CheckpointOptions::index_only(),
        }
    }
}

impl std::fmt::Display for CheckpointMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CheckpointMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "fold-over" | "foldover" | "fold_over" => Ok(CheckpointMode::FoldOver),
            "snapshot" => Ok(CheckpointMode::Snapshot),
            "incremental" => Ok(CheckpointMode::Incremental),
            "index-only" | "index_only" => Ok(CheckpointMode::IndexOnly),
            _ => Err(format!(
                "unknown checkpoint mode {s:?} (fold-over, snapshot, incremental, index-only)"
            )),
        }
    }
}

/// Parses a duration: `5s`, `500ms`, `1.5s`, `2m`, or a bare number of seconds (`2`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|e| format!("bad duration {s:?}: {e}"))?;
    let secs = v * scale;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("bad duration {s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl BenchConfig {
    /// The full matrix: 10 M keys, workloads A, B, C, RMW, zipf and uniform, 1 and 2 threads,
    /// 20 s per cell, streams of 2^25 entries per thread (256 MiB each).
    pub fn full(dir: PathBuf) -> Self {
        BenchConfig {
            keys: 10_000_000,
            seconds: 20.0,
            workloads: Workload::ALL.to_vec(),
            dists: Dist::ALL.to_vec(),
            threads: vec![1, 2],
            stream_len: 1 << 25,
            seed: 0x5EED_CAFE,
            verify: false,
            dir,
            checkpoint_every: None,
            checkpoint_mode: CheckpointMode::FoldOver,
            device: LogDevice::Auto,
        }
    }

    /// The smoke matrix: 100 k keys, workloads A and RMW, zipf and uniform, 1 thread, 0.5 s
    /// per cell, streams of 2^20 entries, with verification.
    pub fn smoke(dir: PathBuf) -> Self {
        BenchConfig {
            keys: 100_000,
            seconds: 0.5,
            workloads: vec![Workload::A, Workload::Rmw],
            dists: Dist::ALL.to_vec(),
            threads: vec![1],
            stream_len: 1 << 20,
            verify: true,
            ..BenchConfig::full(dir)
        }
    }

    /// Whether system `kind`'s cells run twice, the second time with checkpoints
    /// ([`BenchConfig::checkpoint_every`] is set and `kind` is backed by the store).
    pub fn runs_twice(&self, kind: SystemKind) -> bool {
        self.checkpoint_every.is_some()
            && matches!(kind, SystemKind::Faster | SystemKind::FasterBatch)
    }

    /// The largest thread count.
    pub fn max_threads(&self) -> usize {
        self.threads.iter().copied().max().unwrap_or(1).max(1)
    }
}
