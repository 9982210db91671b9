//! Reports: the aligned human table, the `--json` document, and the line a child process
//! (one per system, for a per-system peak RSS) hands its results back in; both JSON, with
//! `serde_json`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::config::BenchConfig;
use crate::machine::MemoryLatency;
use crate::peers::{BenchError, SystemKind};
use crate::repeat;
use crate::results::{CellResult, CheckpointRun, SystemReport};
use crate::table::{Align, Table};

/// `faster`'s throughput over `cell`'s system's in the same (workload, distribution,
/// threads) cell of the run, if the store ran that cell.
pub fn store_ratio(reports: &[SystemReport], cell: &CellResult) -> Option<f64> {
    let store = reports
        .iter()
        .find(|r| r.system == SystemKind::Faster.name())?
        .cells
        .iter()
        .find(|c| {
            c.workload == cell.workload && c.dist == cell.dist && c.threads == cell.threads
        })?;
    let peer = cell.mops();
    (peer > 0.0).then(|| store.mops() / peer)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".into(), |k| format!("{:.0}", k as f64 / 1024.0))
}

/// How the runs of a report were made, beyond their configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunContext {
    /// Each system ran in its own process (so each peak RSS is that system's own).
    pub separate_processes: bool,
    /// The machine's memory latency measured before the runs ([`crate::machine`]), if it was.
    pub memory: Option<MemoryLatency>,
}

impl RunContext {
    /// Separate processes, no memory measurement.
    pub fn separate() -> RunContext {
        RunContext {
            separate_processes: true,
            memory: None,
        }
    }
}

/// The human-readable report: the load phases, then one row per (workload, distribution,
/// threads, system), with the store's throughput ratio over each system. With repeats
/// (`--repeat N`, [`crate::repeat`]), each row is the median run and a `range` column shows
/// the repeats' min-max Mops/s.
pub fn table(cfg: &BenchConfig, reports: &[SystemReport], run: &RunContext) -> String {
    let separate_processes = run.separate_processes;
    let mut out = String::new();
    let runs = repeat::repeats_per_cell(reports);
    let _ = writeln!(
        out,
        "YCSB: {} keys (8-byte keys and values), {} s per cell, streams of {} ops per thread, \
         latency sampled on 1 op in {}",
        cfg.keys,
        cfg.seconds,
        cfg.stream_len,
        crate::runner::CHUNK
    );
    let _ = writeln!(
        out,
        "peak RSS (VmHWM): {}",
        if separate_processes {
            "per system, each run in its own process (includes its pre-generated op streams)"
        } else {
            "of the whole process, monotone over the systems run in it"
        }
    );
    if let Some(m) = &run.memory {
        let _ = writeln!(out, "{}", m.describe());
    }
    if runs > 1 {
        let _ = writeln!(
            out,
            "median of {runs} runs per cell ({}, round-robin); load: the median run; peak RSS: \
             the maximum over the runs",
            if separate_processes {
                "separate processes"
            } else {
                "in one process"
            }
        );
    }
    let _ = writeln!(out);
    let mut load = Table::new(&[
        ("system", Align::Left),
        ("keys", Align::Right),
        ("threads", Align::Right),
        ("load s", Align::Right),
        ("load Mops", Align::Right),
        ("peak RSS MiB", Align::Right),
    ]);
    for r in reports {
        load.row(vec![
            r.system.to_string(),
            r.load.keys.to_string(),
            r.load.threads.to_string(),
            format!("{:.2}", r.load.secs),
            format!("{:.2}", r.load.mops()),
            mib(r.peak_rss_kib),
        ]);
    }
    out.push_str(&load.render());
    let _ = writeln!(out);
    let mut columns = vec![
        ("workload", Align::Left),
        ("dist", Align::Left),
        ("threads", Align::Right),
        ("system", Align::Left),
        ("Mops/s", Align::Right),
    ];
    if runs > 1 {
        columns.push(("range", Align::Right));
    }
    columns.extend([
        ("p50 ns", Align::Right),
        ("p99 ns", Align::Right),
        ("ops", Align::Right),
        ("faster/sys", Align::Right),
        ("check", Align::Left),
    ]);
    let mut cells = Table::new(&columns);
    let mut rows: Vec<&CellResult> = reports.iter().flat_map(|r| r.cells.iter()).collect();
    // Group the systems of a cell together, keeping the matrix order.
    let key = |c: &CellResult| {
        let first = reports[0]
            .cells
            .iter()
            .position(|x| x.workload == c.workload && x.dist == c.dist && x.threads == c.threads)
            .unwrap_or(usize::MAX);
        (first, c.dist.name(), c.workload.name(), c.threads)
    };
    rows.sort_by_key(|c| key(c));
    for c in rows {
        let ratio = store_ratio(reports, c).map_or_else(|| "-".into(), |r| format!("{r:.2}x"));
        let check = match c.rmw_check {
            Some(k) if k.expected == k.observed => "ok",
            Some(_) => "FAILED",
            None => "",
        };
        let check = if c.failed_repeats > 0 {
            "FAILED"
        } else {
            check
        };
        let mut row = vec![
            c.workload.name().to_string(),
            c.dist.name().to_string(),
            c.threads.to_string(),
            c.system.to_string(),
            format!("{:.3}", c.mops()),
        ];
        if runs > 1 {
            row.push(repeat::range(c));
        }
        row.extend([
            c.p50_ns.to_string(),
            c.p99_ns.to_string(),
            c.ops.to_string(),
            ratio,
            check.to_string(),
        ]);
        cells.row(row);
    }
    out.push_str(&cells.render());
    for c in reports.iter().flat_map(|r| &r.cells) {
        if c.failed_repeats > 0 {
            let _ = writeln!(
                out,
                "failed repeats: {} {} {} {}t: {} of {} runs failed (did no work, failed a check, \
                 or had a checkpoint fail)",
                c.system,
                c.workload,
                c.dist,
                c.threads,
                c.failed_repeats,
                c.repeats.len()
            );
        }
    }
    checkpoint_table(cfg, reports, &mut out);
    out
}

/// Ratio of a checkpoint run's throughput to its cell's, and the dip in percent.
fn checkpoint_ratio(c: &CellResult, k: &CheckpointRun) -> Option<(f64, f64)> {
    let base = c.mops();
    (base > 0.0).then(|| {
        let r = k.run.mops() / base;
        (r, (1.0 - r) * 100.0)
    })
}

fn checkpoint_table(cfg: &BenchConfig, reports: &[SystemReport], out: &mut String) {
    let rows: Vec<(&CellResult, &CheckpointRun)> = reports
        .iter()
        .flat_map(|r| &r.cells)
        .filter_map(|c| Some((c, c.checkpoint.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "checkpoints: each cell run again with a {} checkpoint every {} s (min/median/max \
         duration; bytes written by all of the run's checkpoints, index + log)",
        cfg.checkpoint_mode,
        cfg.checkpoint_every.map_or(0.0, |d| d.as_secs_f64())
    );
    let mut t = Table::new(&[
        ("workload", Align::Left),
        ("dist", Align::Left),
        ("threads", Align::Right),
        ("system", Align::Left),
        ("no-ckpt", Align::Right),
        ("ckpt", Align::Right),
        ("ratio", Align::Right),
        ("dip %", Align::Right),
        ("ckpts", Align::Right),
        ("errs", Align::Right),
        ("duration ms min/med/max", Align::Right),
        ("written MiB idx+log", Align::Right),
        ("ckpt p99", Align::Right),
        ("check", Align::Left),
    ]);
    for (c, k) in rows {
        let (ratio, dip) = checkpoint_ratio(c, k).map_or_else(
            || ("-".into(), "-".into()),
            |(r, d)| (format!("{r:.3}"), format!("{d:.1}")),
        );
        let durations = k.duration_ms().map_or_else(
            || "-".into(),
            |(lo, med, hi)| format!("{lo:.0}/{med:.0}/{hi:.0}"),
        );
        let (ib, lb) = k.bytes_written();
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        let check = match k.run.rmw_check {
            Some(x) if x.expected == x.observed => "ok",
            Some(_) => "FAILED",
            None => "",
        };
        t.row(vec![
            c.workload.name().to_string(),
            c.dist.name().to_string(),
            c.threads.to_string(),
            c.system.to_string(),
            format!("{:.3}", c.mops()),
            format!("{:.3}", k.run.mops()),
            ratio,
            dip,
            k.checkpoints.len().to_string(),
            k.errors.len().to_string(),
            durations,
            format!("{:.1}+{:.1}", mib(ib), mib(lb)),
            k.run.p99_ns.to_string(),
            check.to_string(),
        ]);
    }
    out.push_str(&t.render());
    for (c, k) in reports
        .iter()
        .flat_map(|r| &r.cells)
        .filter_map(|c| Some((c, c.checkpoint.as_ref()?)))
    {
        for e in &k.errors {
            let _ = writeln!(
                out,
                "checkpoint error: {} {} {} {}t: {e}",
                c.system, c.workload, c.dist, c.threads
            );
        }
    }
}

/// The `checkpoint` object of a cell in the JSON report.
fn checkpoint_json(c: &CellResult, k: &CheckpointRun) -> Value {
    let (ib, lb) = k.bytes_written();
    let (ratio, dip) = checkpoint_ratio(c, k).unzip();
    let run = &k.run;
    json!({
        "mode": k.mode,
        "every_ms": k.every_ms,
        "mops_without": c.mops(),
        "mops_with": run.mops(),
        "ratio": ratio,
        "dip_pct": dip,
        "taken": k.checkpoints.len(),
        "failed": k.errors.len(),
        "errors": k.errors,
        "duration_ms": k.duration_ms().map(|(min, median, max)| {
            json!({"min": min, "median": median, "max": max})
        }),
        "bytes_written": {"index": ib, "log": lb, "total": ib + lb},
        "checkpoints": k.checkpoints,
        "run": {
            "ops": run.ops,
            "reads": run.reads,
            "read_hits": run.read_hits,
            "upserts": run.upserts,
            "rmws": run.rmws,
            "secs": run.secs,
            "mops": run.mops(),
            "p50_ns": run.p50_ns,
            "p99_ns": run.p99_ns,
            "latency_samples": run.samples,
            "rmw_check": run.rmw_check,
        },
    })
}

/// The JSON report (built with `serde_json`): the configuration, then each system's load,
/// peak RSS and cells (each with `mops`, `p50_ns`, `p99_ns` and `faster_ratio`, the store's
/// throughput over this system's, and `checkpoint`: `null`, or the checkpoint run's
/// `mops_without`, `mops_with`, `ratio`, `dip_pct`, `taken`, `failed`, `errors`,
/// `duration_ms` {min, median, max}, `bytes_written` {index, log, total}, and each of its
/// `checkpoints` {version, at_secs, duration_ms, index_bytes, log_bytes}). With `--repeat N`
/// ([`crate::repeat`]), each cell is its median run, `repeats` holds every run's Mops/s in
/// run order, `failed_repeats` how many runs failed, and `config.repeat` is N.
pub fn json(cfg: &BenchConfig, reports: &[SystemReport], run: &RunContext) -> String {
    let separate_processes = run.separate_processes;
    let finite = |v: f64| v.is_finite().then_some(v);
    let systems: Vec<Value> = reports
        .iter()
        .map(|r| {
            let cells: Vec<Value> = r
                .cells
                .iter()
                .map(|c| {
                    json!({
                        "workload": c.workload,
                        "dist": c.dist,
                        "threads": c.threads,
                        "ops": c.ops,
                        "reads": c.reads,
                        "read_hits": c.read_hits,
                        "upserts": c.upserts,
                        "rmws": c.rmws,
                        "secs": c.secs,
                        "mops": c.mops(),
                        "p50_ns": c.p50_ns,
                        "p99_ns": c.p99_ns,
                        "latency_samples": c.samples,
                        "repeats": c.repeats,
                        "failed_repeats": c.failed_repeats,
                        "faster_ratio": store_ratio(reports, c).and_then(finite),
                        "rmw_check": c.rmw_check,
                        "checkpoint": c.checkpoint.as_ref().map(|k| checkpoint_json(c, k)),
                    })
                })
                .collect();
            json!({
                "system": r.system,
                "peak_rss_kib": r.peak_rss_kib,
                "load": {
                    "keys": r.load.keys,
                    "threads": r.load.threads,
                    "secs": r.load.secs,
                    "mops": finite(r.load.mops()),
                },
                "cells": cells,
            })
        })
        .collect();
    json!({
        "config": {
            "keys": cfg.keys,
            "seconds": finite(cfg.seconds),
            "workloads": cfg.workloads,
            "dists": cfg.dists,
            "threads": cfg.threads,
            "stream_len": cfg.stream_len,
            "seed": cfg.seed,
            "verify": cfg.verify,
            "latency_sample_every": crate::runner::CHUNK,
            "rss_per_process": separate_processes,
            "checkpoint_every_ms": cfg.checkpoint_every.map(|d| d.as_secs_f64() * 1e3),
            "checkpoint_mode": cfg.checkpoint_mode,
            "repeat": repeat::repeats_per_cell(reports),
        },
        "memory_latency": run.memory,
        "systems": systems,
    })
    .to_string()
}

/// The prefix of the line that carries a child process's report.
const REPORT_LINE: &str = "REPORT\t";

/// Encodes a report as one line, `REPORT\t` and the report in JSON, for a child process to
/// hand back on its standard output.
pub fn encode(r: &SystemReport) -> String {
    let body = serde_json::to_string(r).expect("a report serialises to JSON");
    format!("{REPORT_LINE}{body}\n")
}

/// Decodes [`encode`]'s output (other lines are ignored).
pub fn decode(text: &str) -> Result<SystemReport, BenchError> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(REPORT_LINE))
        .ok_or("no REPORT line in the child's output")?;
    Ok(serde_json::from_str(line)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CheckpointMode;
    use crate::results::{CheckpointRecord, LoadResult, RmwCheck};
    use crate::workload::{Dist, Workload};

    fn cell(system: &str, mops: u64) -> CellResult {
        CellResult {
            system: system.into(),
            workload: Workload::Rmw,
            dist: Dist::Zipf,
            threads: 2,
            ops: mops * 1_000_000,
            reads: 0,
            read_hits: 0,
            upserts: 0,
            rmws: mops * 1_000_000,
            secs: 1.0,
            p50_ns: 100,
            p99_ns: 900,
            samples: 7,
            rmw_check: Some(RmwCheck {
                expected: 3,
                observed: 3,
            }),
            checkpoint: None,
            repeats: Vec::new(),
            failed_repeats: 0,
        }
    }

    fn sample(system: &str, mops: u64) -> SystemReport {
        SystemReport {
            system: system.into(),
            load: LoadResult {
                keys: 10,
                threads: 1,
                secs: 0.5,
            },
            cells: vec![cell(system, mops)],
            peak_rss_kib: Some(2048),
        }
    }

    #[test]
    fn roundtrip_and_ratio() {
        let r = sample("faster", 4);
        assert_eq!(decode(&encode(&r)).expect("decode"), r);
        let reports = vec![r, sample("dashmap", 2)];
        let ratio = store_ratio(&reports, &reports[1].cells[0]).expect("ratio");
        assert!((ratio - 2.0).abs() < 1e-9);
        let cfg = BenchConfig::smoke("/tmp".into());
        let t = table(&cfg, &reports, &RunContext::separate());
        assert!(t.contains("2.00x") && t.contains("ok"), "{t}");
        assert!(!t.contains("checkpoints:"), "{t}");
        let j: Value = serde_json::from_str(&json(&cfg, &reports, &RunContext::separate()))
            .expect("valid JSON");
        assert_eq!(j["systems"][1]["cells"][0]["faster_ratio"], 2.0);
        assert_eq!(j["systems"][0]["cells"][0]["checkpoint"], Value::Null);
    }

    #[test]
    fn memory_latency_is_stated() {
        let cfg = BenchConfig::smoke("/tmp".into());
        let reports = [sample("faster", 4)];
        let run = RunContext {
            separate_processes: true,
            memory: Some(MemoryLatency {
                near_bytes: 512 << 10,
                near_ns: 6.0,
                far_bytes: 128 << 20,
                far_ns: 155.0,
            }),
        };
        let t = table(&cfg, &reports, &run);
        assert!(
            t.contains("6 ns within 512 KiB and 155 ns across 128 MiB"),
            "{t}"
        );
        let j: Value = serde_json::from_str(&json(&cfg, &reports, &run)).expect("valid JSON");
        assert_eq!(j["memory_latency"]["far_ns"], 155.0);
        let j: Value = serde_json::from_str(&json(&cfg, &reports, &RunContext::separate()))
            .expect("valid JSON");
        assert!(j["memory_latency"].is_null());
    }

    #[test]
    fn repeats_are_reported() {
        let merge = |system: &str, mops: [u64; 3]| {
            let runs: Vec<SystemReport> = mops.iter().map(|&m| sample(system, m)).collect();
            repeat::merge(&runs).expect("merge")
        };
        let reports = vec![merge("faster", [4, 5, 3]), merge("dashmap", [2, 1, 3])];
        assert_eq!(decode(&encode(&reports[0])).expect("decode"), reports[0]);
        let cfg = BenchConfig::smoke("/tmp".into());
        let t = table(&cfg, &reports, &RunContext::separate());
        assert!(
            t.contains("median of 3 runs per cell (separate processes, round-robin)"),
            "{t}"
        );
        assert!(
            t.contains("range") && t.contains("3.0-5.0") && t.contains("1.0-3.0"),
            "{t}"
        );
        assert!(t.contains("2.00x"), "the ratio of the medians: {t}");
        let j: Value = serde_json::from_str(&json(&cfg, &reports, &RunContext::separate()))
            .expect("valid JSON");
        assert_eq!(j["config"]["repeat"], 3);
        assert_eq!(
            j["systems"][0]["cells"][0]["repeats"],
            json!([4.0, 5.0, 3.0])
        );
        assert_eq!(j["systems"][1]["cells"][0]["faster_ratio"], 2.0);
        let single = table(&cfg, &[sample("faster", 4)], &RunContext::separate());
        assert!(
            !single.contains("range") && !single.contains("median of"),
            "{single}"
        );
    }

    #[test]
    fn checkpoint_run_is_reported() {
        let mut r = sample("faster", 4);
        let record = |ms: f64| CheckpointRecord {
            version: 1,
            at_secs: 0.5,
            duration_ms: ms,
            index_bytes: 1 << 20,
            log_bytes: 2 << 20,
        };
        r.cells[0].checkpoint = Some(CheckpointRun {
            mode: CheckpointMode::Snapshot,
            every_ms: 500.0,
            run: Box::new(cell("faster", 3)),
            checkpoints: vec![record(30.0), record(10.0), record(20.0)],
            errors: vec!["at 1.5 s: timed out".into()],
        });
        assert_eq!(decode(&encode(&r)).expect("decode"), r);
        let mut cfg = BenchConfig::smoke("/tmp".into());
        cfg.checkpoint_every = Some(std::time::Duration::from_millis(500));
        cfg.checkpoint_mode = CheckpointMode::Snapshot;
        let reports = vec![r];
        let t = table(&cfg, &reports, &RunContext::separate());
        assert!(
            t.contains("snapshot") && t.contains("0.750") && t.contains("25.0"),
            "{t}"
        );
        assert!(
            t.contains("10/20/30") && t.contains("3.0+6.0") && t.contains("timed out"),
            "{t}"
        );
        let j: Value = serde_json::from_str(&json(&cfg, &reports, &RunContext::separate()))
            .expect("valid JSON");
        assert_eq!(j["config"]["checkpoint_mode"], "snapshot");
        let k = &j["systems"][0]["cells"][0]["checkpoint"];
        assert_eq!(k["taken"], 3);
        assert_eq!(k["failed"], 1);
        assert_eq!(k["mops_without"], 4.0);
        assert_eq!(k["mops_with"], 3.0);
        assert_eq!(k["dip_pct"], 25.0);
        assert_eq!(k["duration_ms"]["median"], 20.0);
        assert_eq!(k["bytes_written"]["total"], 9u64 << 20);
        assert_eq!(k["checkpoints"].as_array().map(Vec::len), Some(3));
    }
}
