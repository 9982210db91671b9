//! `faster bench`: the YCSB matrix of `cargo xtask bench ycsb`, run by `faster-bench` (this
//! module only turns the arguments into a [`BenchConfig`], shows progress and prints
//! `faster-bench`'s report). Every system runs in this process, one after the other, so the
//! peak RSS reported is the process's. With `--repeat N`, the systems run N times round-robin
//! and each cell reports its median run (`faster_bench::repeat`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use faster_bench::{BenchConfig, CellResult, SystemKind, SystemReport, repeat, report, run_system};

use crate::args::BenchArgs;
use crate::error::{CliError, Result};
use crate::out::emit;

/// The benchmark configuration the arguments ask for (stores under the system's temporary
/// directory unless `--dir` says otherwise).
pub fn config(a: &BenchArgs) -> Result<BenchConfig> {
    a.config(std::env::temp_dir().join("faster-bench"))
        .map_err(CliError::Usage)
}

/// Seconds the timed cells of `kind` should take (load and checks not included).
fn estimate(cfg: &BenchConfig, kind: SystemKind) -> f64 {
    let cells = (cfg.workloads.len() * cfg.dists.len() * cfg.threads.len()) as f64;
    cells * cfg.seconds * if cfg.runs_twice(kind) { 2.0 } else { 1.0 }
}

/// Runs `kind` while a bar on stderr, labelled `label`, shows the time spent against the
/// cells' planned time. The error is the benchmark's, prefixed with the system.
fn run_with_progress(
    kind: SystemKind,
    cfg: &BenchConfig,
    label: &str,
) -> std::result::Result<SystemReport, String> {
    let planned = estimate(cfg, kind);
    let pb = crate::progress::timed(label, Duration::from_secs_f64(planned));
    let done = AtomicBool::new(false);
    let began = Instant::now();
    let report = std::thread::scope(|s| {
        let ticker = s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                crate::progress::set_elapsed(&pb, began.elapsed());
                std::thread::park_timeout(Duration::from_millis(100));
            }
        });
        let r = run_system(kind, cfg);
        done.store(true, Ordering::Release);
        ticker.thread().unpark();
        r
    });
    pb.finish_and_clear();
    report.map_err(|e| format!("{kind}: {e}"))
}

/// Runs `faster bench`: every system of the matrix (`--repeat` times, round-robin, each cell
/// its median run), then the table (or `--json`). A cell that
/// did no work, failed its RMW check or had a checkpoint fail is [`CliError::Failed`], after
/// the report.
pub fn run(a: &BenchArgs) -> Result<()> {
    let cfg = config(a)?;
    let systems = a.systems();
    let n = a.repeat;
    let memory = faster_bench::machine::measure(faster_bench::machine::REPORT_FAR_BYTES);
    let reports = repeat::round_robin::<String>(&systems, n, |kind, round| {
        let label = if n > 1 {
            format!("{kind} {}/{n}", round + 1)
        } else {
            kind.name().to_string()
        };
        run_with_progress(kind, &cfg, &label)
    })
    .map_err(CliError::Bench)?;
    let run = report::RunContext {
        separate_processes: false,
        memory,
    };
    if a.json {
        emit(&format!("{}\n", report::json(&cfg, &reports, &run)))?;
    } else {
        emit(&report::table(&cfg, &reports, &run))?;
    }
    if reports
        .iter()
        .flat_map(|r| &r.cells)
        .any(CellResult::failed)
    {
        return Err(CliError::Failed(
            "a cell did no work, failed its RMW check, or had a checkpoint fail (see the report)"
                .into(),
        ));
    }
    Ok(())
}
