//! The command line, parsed with clap's derive API: [`Cli`] and one argument struct per
//! subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
pub use faster_bench::args::BenchArgs;
use faster_bench::args::{DeviceArg, count, duration, seconds, small_count};

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
