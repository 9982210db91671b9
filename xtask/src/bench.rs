//! `cargo xtask bench <name> [args..]`: end-to-end benchmarks.
//!
//! Each benchmark is a `harness = false` bench target in the crate it
//! measures (or, for `ycsb`, the `ycsb` binary of the `faster-bench` crate),
//! run in release mode; extra arguments are passed through.
//!
//! * `device` — `faster-device`'s devices against a plain `std::fs` loop:
//!   sequential 1 MiB writes (GB/s) and random 4 KiB reads at queue depth 1
//!   and 64 (IOPS). Takes `--quick`, `--dir DIR`, `--size-mib N`.
//! * `index` — `faster-index` find and insert Mops/s on 10 M keys with 1 and 2
//!   threads, against `std::collections::HashMap`. Takes `--quick`, `--keys N`.
//! * `hlog` — `faster-hlog` append GB/s with flushing on, against a `std::fs`
//!   sequential write of the same bytes. Takes `--quick`.
//! * `recovery` — store recovery GB/s of a 1 GB log, fold-over and snapshot, against a
//!   `std::fs` read of the same files. Takes `--quick`.
//! * `cold` — uniform random reads of a store ten times larger than its log memory, one at a
//!   time and 32 pending, against random 4 KiB `pread`s of its log files. Takes `--quick`,
//!   `--seconds S`.
//! * `grow` — index growth: 10 M keys loaded into a default store (the index starts at
//!   2^16 and doubles online) against one pre-sized for them, in one run: the load-time
//!   ratio, the throughput during each growth against just before it, peak index memory;
//!   then YCSB-A on both. Takes `--quick`, `--keys N`, `--seconds S`, `--repeat R`.
//! * `space` — log-space reclamation: the overwrite workload (100 k keys of 1000 bytes,
//!   2.2 GB of writes, a checkpoint every 64 MiB) with the default space policy, directory
//!   size against live data after each checkpoint and the peak; then YCSB-A while a
//!   compaction runs against the same store without one: throughput ratio and the
//!   compaction's MB/s. Takes `--quick`, `--total-mb N`, `--repeat R`.
//! * `ycsb` — the store on YCSB A / B / C / RMW, zipf 0.99 and uniform, 1 and
//!   2 threads, 8-byte keys and values, against `dashmap` in the same run
//!   (and `oxifaster` with `--features oxifaster`, built only on request).
//!   Takes `--smoke`, `--json`, `--seconds S`, `--keys N`, `--workload`,
//!   `--dist`, `--threads`, `--systems`, `--verify`, `--dir`, and
//!   `--checkpoint-every D` (`5s`, `500ms`, `2`) with `--checkpoint-mode
//!   fold-over|snapshot|incremental|index-only`: each store cell again with a
//!   checkpoint every D; `--repeat N` runs every system N times round-robin
//!   and reports each cell's median run with the runs' min-max Mops/s.

use crate::cmd;

/// (name, cargo arguments up to the pass-through `--`, what it measures)
const BENCHES: &[(&str, &[&str], &str)] = &[
    (
        "device",
        &["bench", "--package", "faster-device", "--bench", "device"],
        "io_uring / file device / std::fs: sequential writes and random reads",
    ),
    (
        "index",
        &["bench", "--package", "faster-index", "--bench", "index"],
        "hash index find / insert Mops/s vs std HashMap, 1 and 2 threads",
    ),
    (
        "hlog",
        &["bench", "--package", "faster-hlog", "--bench", "hlog"],
        "hybrid log append GB/s with flushing vs a std::fs sequential write",
    ),
    (
        "recovery",
        &["bench", "--package", "faster", "--bench", "recovery"],
        "store recovery GB/s of a 1 GB log, fold-over and snapshot, vs a std::fs read",
    ),
    (
        "cold",
        &["bench", "--package", "faster", "--bench", "cold"],
        "uniform reads of a store 10x its log memory, blocking and 32 pending, vs 4 KiB preads",
    ),
    (
        "grow",
        &[
            "run",
            "--release",
            "--package",
            "faster-bench",
            "--bin",
            "grow",
        ],
        "index growth: loading 10 M keys growing vs pre-sized, throughput during each growth, YCSB-A",
    ),
    (
        "space",
        &[
            "run",
            "--release",
            "--package",
            "faster-bench",
            "--bin",
            "space",
        ],
        "log space: disk use over time of the overwrite workload (vs live data), YCSB-A with a compaction running vs without",
    ),
    (
        "ycsb",
        &[
            "run",
            "--release",
            "--package",
            "faster-bench",
            "--bin",
            "ycsb",
        ],
        "the store on YCSB A/B/C/RMW, zipf and uniform, 1 and 2 threads, vs dashmap",
    ),
];

fn list() -> String {
    let mut s = String::from("benchmarks:\n");
    for (name, _, what) in BENCHES {
        s.push_str(&format!("  {name:<10} {what}\n"));
    }
    s
}

/// Runs the named benchmark.
pub fn run(args: &[String]) -> Result<(), String> {
    let Some(name) = args.first() else {
        return Err(format!(
            "usage: cargo xtask bench <name> [args..]\n{}",
            list()
        ));
    };
    let Some((_, cargo_args, _)) = BENCHES.iter().find(|b| b.0 == name) else {
        return Err(format!("unknown benchmark `{name}`\n{}", list()));
    };
    let rest: Vec<&str> = args[1..]
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--")
        .collect();
    let mut argv = cargo_args.to_vec();
    argv.push("--");
    argv.extend(rest);
    cmd::run(&format!("bench {name}"), cmd::cargo(&argv))
}
