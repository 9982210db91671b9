//! # faster-bench: the YCSB benchmark of the `faster` store
//!
//! Runs YCSB-style workloads over 8-byte keys and 8-byte values against the store
//! ([`peers::FasterStore`]) and an in-memory peer ([`peers::DashMapPeer`]), in the manner of
//! FASTER's own benchmark: keys are loaded first (timed separately), each thread's keys and
//! operations are generated before timing starts, and every thread uses its own session.
//!
//! | module | owns |
//! |---|---|
//! | [`zipf`] | the scrambled Zipfian (theta = 0.99) and uniform key choosers |
//! | [`workload`] | workloads A (50/50), B (95/5), C (100% reads), RMW; pre-generated streams |
//! | [`peers`] | the systems under test and the store's benchmark configuration |
//! | [`runner`] | load, timed cells, sampled latency, consistency checks, peak RSS |
//! | [`options`] | [`Overrides`]: the command-line choices over the full or smoke matrix |
//! | [`report`] | the aligned table, `--json` (serde_json), the child-process hand-off |
//! | [`machine`] | the machine's memory latency at the time of a run, stated in reports |
//! | [`repeat`] | `--repeat N`: round-robin runs, merged into the median run per cell |
//! | [`space`] | the overwrite workload of log-space reclamation: disk use against live data |
//!
//! The binary is `ycsb` (`cargo run --release -p faster-bench --bin ycsb -- --help`).
//!
//! With the cargo feature `oxifaster` (off by default), the `oxifaster` crate, another Rust
//! port of FASTER, joins as a third system (`OxiFasterPeer`, on its in-memory null device).

#![forbid(unsafe_code)]

pub mod args;
pub mod config;
pub mod machine;
pub mod options;
pub mod peers;
pub mod repeat;
pub mod report;
pub mod results;
pub mod runner;
pub mod space;
pub mod table;
pub mod workload;
pub mod zipf;

pub use config::{BenchConfig, CheckpointMode, parse_duration};
pub use options::Overrides;
pub use peers::{BenchError, DashMapPeer, FasterStore, System, SystemKind, Worker};
pub use results::{
    CellResult, CheckpointRecord, CheckpointRun, LoadResult, RmwCheck, SystemReport,
};
pub use runner::run_system;
pub use workload::{Dist, Op, OpStream, Workload};
