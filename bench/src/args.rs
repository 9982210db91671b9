//! [`BenchArgs`]: the benchmark's command-line options, parsed with clap, shared by the
//! `ycsb` binary and `faster bench` (which flatten it into their own arguments), and the
//! value parsers of counts, seconds and durations the `faster` tool uses too.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use faster::LogDevice;

use crate::config::{BenchConfig, CheckpointMode};
use crate::options::Overrides;
use crate::peers::SystemKind;
use crate::workload::{Dist, Workload};

/// Where the log lives (`--device`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// io_uring if the kernel allows it, else the portable file device.
    Auto,
    /// io_uring only.
    IoUring,
    /// The portable file device.
    File,
    /// In memory (nothing reaches the disk; checkpoints cannot be recovered).
    Memory,
}

impl From<DeviceArg> for LogDevice {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Auto => LogDevice::Auto,
            DeviceArg::IoUring => LogDevice::IoUring,
            DeviceArg::File => LogDevice::File,
            DeviceArg::Memory => LogDevice::Memory,
        }
    }
}

/// Parses a duration: `2s`, `500ms`, `1.5s`, `2m` or bare seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s)
}

/// Parses non-negative, finite seconds.
pub fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a non-negative number of seconds")),
    }
}

/// Parses a positive count, allowing `_` separators (`1_000_000`).
pub fn count(s: &str) -> Result<u64, String> {
    match s.replace('_', "").parse::<u64>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive whole number")),
    }
}

/// Parses a positive thread or session count.
pub fn small_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if (1..=1024).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a whole number in 1..=1024")),
    }
}

/// The benchmark's options, shared by `faster bench` and the `ycsb` binary (flatten it into
/// a command's own arguments).
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Workloads: a, b, c, rmw (comma-separated; default a,b,c,rmw, smoke a,rmw).
    #[arg(long, alias = "workloads", value_delimiter = ',', value_parser = clap::value_parser!(Workload))]
    pub workload: Option<Vec<Workload>>,
    /// Key distributions: zipf, uniform (comma-separated; default both).
    #[arg(long, alias = "dists", value_delimiter = ',', value_parser = clap::value_parser!(Dist))]
    pub dist: Option<Vec<Dist>>,
    /// Keys loaded before timing (default 10000000; smoke 100000).
    #[arg(long, value_parser = count)]
    pub keys: Option<u64>,
    /// Thread counts (comma-separated; default 1,2; smoke 1).
    #[arg(long, value_delimiter = ',', value_parser = small_count)]
    pub threads: Option<Vec<usize>>,
    /// Seconds per cell (default 20; smoke 0.5).
    #[arg(long, value_parser = seconds)]
    pub seconds: Option<f64>,
    /// Run every store cell again with a checkpoint this often (`5s`, `500ms`).
    #[arg(long, value_parser = duration)]
    pub checkpoint_every: Option<Duration>,
    /// How those checkpoints capture the log: fold-over, snapshot, incremental.
    #[arg(long, value_parser = clap::value_parser!(CheckpointMode))]
    pub checkpoint_mode: Option<CheckpointMode>,
    /// The store's log device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Systems: faster, faster-batch, dashmap (comma-separated; default all).
    #[arg(long, alias = "system", value_delimiter = ',', value_parser = clap::value_parser!(SystemKind))]
    pub systems: Option<Vec<SystemKind>>,
    /// Pre-generated operations per thread, replayed cyclically.
    #[arg(long, value_parser = count)]
    pub stream_len: Option<u64>,
    /// The seed of the operation streams.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Check the contents after the load and around every RMW cell.
    #[arg(long)]
    pub verify: bool,
    /// A small, quick matrix (a few seconds).
    #[arg(long)]
    pub smoke: bool,
    /// Run every system this many times, round-robin (each system once, then each again,
    /// ...); each cell reports its median run, with the runs' min-max Mops/s.
    #[arg(long, default_value = "1", value_parser = crate::repeat::parse_repeat)]
    pub repeat: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// The parent of the stores' temporary directories (each command has its default).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl BenchArgs {
    /// The benchmark configuration these options ask for, its stores under `dir` (or
    /// `default_dir`). Fails, saying why, on a matrix that cannot run.
    pub fn config(&self, default_dir: PathBuf) -> Result<BenchConfig, String> {
        let stream_len = self
            .stream_len
            .map(usize::try_from)
            .transpose()
            .map_err(|_| "--stream-len is too large".to_string())?;
        Overrides {
            smoke: self.smoke,
            keys: self.keys,
            seconds: self.seconds,
            workloads: self.workload.clone(),
            dists: self.dist.clone(),
            threads: self.threads.clone(),
            stream_len,
            seed: self.seed,
            verify: self.verify,
            checkpoint_every: self.checkpoint_every,
            checkpoint_mode: self.checkpoint_mode,
            device: Some(self.device.into()),
        }
        .config(self.dir.clone().unwrap_or(default_dir))
    }

    /// The systems to run: those asked for, or every one built in.
    pub fn systems(&self) -> Vec<SystemKind> {
        self.systems
            .clone()
            .unwrap_or_else(|| SystemKind::ALL.to_vec())
    }
}
