//! The command line, parsed with clap's derive API: [`Cli`] and one argument struct per
//! subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use faster::LogDevice;
use faster_bench::{CheckpointMode, Dist, SystemKind, Workload};

/// `faster`: run, measure, inspect and crash-test a FASTER-style key-value store with CPR
/// checkpoints.
#[derive(Debug, Parser)]
#[command(name = "faster", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load keys, run YCSB-A with periodic checkpoints, crash a child with SIGKILL, recover
    /// and verify every session's CPR prefix; print a short report.
    Demo(DemoArgs),
    /// Run the YCSB benchmark matrix (the one of `cargo xtask bench ycsb`).
    Bench(BenchArgs),
    /// List a store's checkpoints and validate each; exit 1 if the newest is invalid.
    Inspect(InspectArgs),
    /// The kill -9 prefix torture test: N rounds of crash, recover, verify.
    CrashTest(CrashTestArgs),
    /// The child process of a crash round (internal).
    #[command(name = "__crash-child", hide = true)]
    CrashChild(CrashChildArgs),
}

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
fn duration(s: &str) -> Result<Duration, String> {
    faster_bench::parse_duration(s)
}

/// Parses non-negative, finite seconds.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a non-negative number of seconds")),
    }
}

/// Parses a positive count, allowing `_` separators (`1_000_000`).
fn count(s: &str) -> Result<u64, String> {
    match s.replace('_', "").parse::<u64>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive whole number")),
    }
}

/// Parses a positive thread or session count.
fn small_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if (1..=1024).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a whole number in 1..=1024")),
    }
}

/// `faster demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Work in this directory (created if missing; its `ycsb/` and `crash/` must not exist)
    /// instead of a fresh temporary one.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seconds of YCSB-A.
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub seconds: f64,
    /// Keys loaded before YCSB-A.
    #[arg(long, default_value = "1000000", value_parser = count)]
    pub keys: u64,
    /// Threads of the load and of YCSB-A (default: every core).
    #[arg(long, value_parser = small_count)]
    pub threads: Option<usize>,
    /// The interval between checkpoints during YCSB-A (`2s`, `500ms`).
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub checkpoint_every: Duration,
    /// Sessions of the crashed child.
    #[arg(long, default_value = "4", value_parser = small_count)]
    pub sessions: usize,
    /// The seed of the kill delay (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The YCSB store's log device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Keep the stores instead of removing them at the end.
    #[arg(long)]
    pub keep: bool,
}

/// `faster bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Workloads: a, b, c, rmw (comma-separated; default a,b,c,rmw, smoke a,rmw).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(Workload))]
    pub workload: Option<Vec<Workload>>,
    /// Key distributions: zipf, uniform (comma-separated; default both).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(Dist))]
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
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(SystemKind))]
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
    #[arg(long, default_value = "1", value_parser = faster_bench::repeat::parse_repeat)]
    pub repeat: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// The parent of the stores' temporary directories (default: the system's temporary
    /// directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `faster inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The store directory.
    pub dir: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `faster crash-test`.
#[derive(Debug, Args)]
pub struct CrashTestArgs {
    /// Rounds of crash, recover, verify.
    #[arg(long, default_value = "20", value_parser = count)]
    pub rounds: u64,
    /// The seed of the kill delays (printed; pass it back to replay a run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Sessions of each child.
    #[arg(long, default_value = "4", value_parser = small_count)]
    pub sessions: usize,
    /// The parent of the rounds' store directories (default: the system's temporary
    /// directory). A failed round's store is kept and named.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `faster __crash-child` (internal).
#[derive(Debug, Args)]
pub struct CrashChildArgs {
    /// The store directory to create.
    #[arg(long)]
    pub dir: PathBuf,
    /// Sessions to run.
    #[arg(long, default_value = "4", value_parser = small_count)]
    pub sessions: usize,
}
