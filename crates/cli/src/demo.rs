//! `faster demo`: the store's main job in under a minute. It loads keys (with a progress
//! bar), runs YCSB-A on every core while it checkpoints every few seconds (both through
//! `faster-bench`), then crashes a child process with SIGKILL mid-load, recovers it and
//! verifies every session's CPR prefix ([`crate::crash`]), and prints a short report.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use faster_bench::runner::{Attempt, load_with_progress, run_timed};
use faster_bench::workload::generate_streams;
use faster_bench::{CellResult, CheckpointMode, Dist, FasterStore, LoadResult, Workload};

use crate::args::DemoArgs;
use crate::crash::{MIN_CHECKPOINTS, Rng, RoundOptions, RoundReport, run_round};
use crate::error::{CliError, Result};
use crate::inspect::human_bytes;
use crate::progress;
use crate::workspace::Workspace;
use faster_bench::table::{Align, Table};

/// The longest pre-generated operation stream per thread (8 MiB).
const MAX_STREAM: u64 = 1 << 20;

/// What the demo measured and verified.
#[derive(Debug)]
pub struct DemoReport {
    /// Threads of the load and of YCSB-A.
    pub threads: usize,
    /// The interval between checkpoints.
    pub every: Duration,
    /// The load.
    pub load: LoadResult,
    /// The YCSB-A cell, run with checkpoints.
    pub cell: CellResult,
    /// The checkpoints taken during YCSB-A: each one's record or error.
    pub checkpoints: Vec<Attempt>,
    /// The crash round: what it verified, or why the prefix does not hold.
    pub round: std::result::Result<RoundReport, String>,
    /// The seed of the kill delay.
    pub seed: u64,
    /// The directory left in place (`--keep`, or a failed crash round).
    pub kept: Option<PathBuf>,
}

impl DemoReport {
    /// [`CliError::Failed`] if the prefix did not hold or a checkpoint failed.
    pub fn verdict(&self) -> Result<()> {
        if let Err(e) = &self.round {
            return Err(CliError::Failed(format!("CPR prefix violated: {e}")));
        }
        if let Some(Err(e)) = self.checkpoints.iter().find(|a| a.is_err()) {
            return Err(CliError::Failed(format!("a checkpoint failed: {e}")));
        }
        Ok(())
    }
}

/// Runs the demo.
pub fn run(a: &DemoArgs) -> Result<DemoReport> {
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let exe = std::env::current_exe().map_err(|e| CliError::io("locate", "this program", e))?;
    let mut ws = Workspace::new(a.dir.as_deref(), "faster-demo-", a.keep)?;
    let ycsb_dir = ws.subdir("ycsb")?;
    let crash_dir = ws.subdir("crash")?;

    // 1. Load.
    let store = FasterStore::create(&ycsb_dir, a.keys, a.device.into())
        .map_err(|e| CliError::Bench(e.to_string()))?;
    let pb = progress::bar(a.keys, "load");
    let load = load_with_progress(&store, a.keys, threads, &|n| pb.inc(n));
    pb.finish_and_clear();

    // 2. YCSB-A with checkpoints.
    let stream_len = (a.keys.saturating_mul(4)).clamp(1 << 14, MAX_STREAM) as usize;
    let seed = a.seed.unwrap_or_else(Rng::clock_seed);
    let sp = progress::spinner("ycsb-a");
    sp.set_message("generating the operation streams");
    let streams = generate_streams(Dist::Zipf, a.keys, threads, stream_len, seed);
    sp.finish_and_clear();
    let duration = Duration::from_secs_f64(a.seconds);
    let pb = progress::timed("ycsb-a", duration);
    let began = Instant::now();
    let (cell, checkpoints) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            run_timed(
                &store,
                &streams,
                Workload::A,
                Dist::Zipf,
                threads,
                duration,
                Some((a.checkpoint_every, CheckpointMode::FoldOver)),
            )
        });
        while !h.is_finished() {
            progress::set_elapsed(&pb, began.elapsed());
            std::thread::park_timeout(Duration::from_millis(100));
        }
        h.join()
    })
    .map_err(|_| CliError::Failed("a YCSB-A thread panicked".into()))?;
    pb.finish_and_clear();
    drop(streams);
    drop(store);

    // 3-4. Crash a child, recover, verify.
    let delay = RoundOptions::random_delay(&mut Rng::new(seed));
    let options = RoundOptions::new(a.sessions, delay);
    let sp = progress::spinner("crash");
    let round = match run_round(&exe, &crash_dir, &options, &|m| {
        sp.set_message(m.to_string())
    }) {
        Ok(r) => Ok(r),
        Err(e @ (CliError::Failed(_) | CliError::Store(_))) => Err(e.to_string()),
        Err(e) => return Err(e),
    };
    sp.finish_and_clear();
    if round.is_err() {
        ws.keep();
    }
    Ok(DemoReport {
        threads,
        every: a.checkpoint_every,
        load,
        cell,
        checkpoints,
        round,
        seed,
        kept: ws.kept().then(|| ws.root().to_path_buf()),
    })
}

/// `n` with thousands separators.
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Nanoseconds as `850 ns` or `1.2 us`.
fn latency(ns: u64) -> String {
    if ns < 1000 {
        format!("{ns} ns")
    } else {
        format!("{:.1} us", ns as f64 / 1e3)
    }
}

/// The report.
pub fn render(r: &DemoReport) -> String {
    let mut out = String::new();
    let c = &r.cell;
    let _ = writeln!(
        out,
        "faster demo: {} keys, YCSB-A (50% reads, 50% upserts, zipf) on {} threads for {:.0} s, \
         a checkpoint every {:.1} s, then a kill -9",
        grouped(r.load.keys),
        r.threads,
        c.secs,
        r.every.as_secs_f64()
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "load        {} keys in {:.2} s ({:.2} M upserts/s)",
        grouped(r.load.keys),
        r.load.secs,
        r.load.mops()
    );
    let _ = writeln!(
        out,
        "throughput  {:.2} M ops/s: {} ops in {:.2} s (p50 {}, p99 {}, sampled)",
        c.mops(),
        grouped(c.ops),
        c.secs,
        latency(c.p50_ns),
        latency(c.p99_ns)
    );
    let _ = writeln!(out);
    let mut t = Table::new(&[
        ("checkpoint", Align::Right),
        ("at s", Align::Right),
        ("duration ms", Align::Right),
        ("size", Align::Right),
        ("written", Align::Left),
    ]);
    for a in &r.checkpoints {
        match a {
            Ok(k) => t.row(vec![
                format!("v{}", k.version),
                format!("{:.1}", k.at_secs),
                format!("{:.1}", k.duration_ms),
                human_bytes(k.index_bytes + k.log_bytes),
                format!(
                    "index {} + log {}",
                    human_bytes(k.index_bytes),
                    human_bytes(k.log_bytes)
                ),
            ]),
            Err(e) => t.row(vec![
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                e.clone(),
            ]),
        }
    }
    if t.is_empty() {
        let _ = writeln!(out, "no checkpoint fell within the run");
    } else {
        let _ = writeln!(out, "checkpoints during YCSB-A (full, fold-over):");
        out.push_str(&t.render());
    }
    let _ = writeln!(out);
    match &r.round {
        Ok(k) => render_round(&mut out, k, r.seed),
        Err(e) => {
            let _ = writeln!(out, "crash       {e}");
            let _ = writeln!(out, "verdict     PREFIX VIOLATED");
        }
    }
    if let Some(d) = &r.kept {
        let _ = writeln!(out, "kept        {}", d.display());
    }
    out
}

fn render_round(out: &mut String, k: &RoundReport, seed: u64) {
    let newest = k.checkpoints.iter().map(|c| c.version).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "crash       a child writing on {} sessions reported {} durable checkpoints (newest \
         v{newest}) and was killed with SIGKILL mid-load, {} ms after checkpoint \
         {MIN_CHECKPOINTS} (seed {seed})",
        k.sessions.len(),
        k.checkpoints.len(),
        k.delay.as_millis(),
    );
    let skipped = if k.skipped.is_empty() {
        String::new()
    } else {
        format!(", skipping {} torn checkpoint(s)", k.skipped.len())
    };
    let _ = writeln!(
        out,
        "recovered   version {} ({}) in {:.0} ms{skipped}",
        k.version,
        k.token,
        k.recovery.as_secs_f64() * 1e3
    );
    let mut t = Table::new(&[("session", Align::Right), ("serial", Align::Right)]);
    for (id, serial) in &k.cuts {
        t.row(vec![id.to_string(), grouped(*serial)]);
    }
    for line in t.render().lines() {
        let _ = writeln!(out, "            {line}");
    }
    let _ = writeln!(
        out,
        "verified    every operation up to its session's serial is present, none after \
         ({:.0} ms)",
        k.verification.as_secs_f64() * 1e3
    );
    let _ = writeln!(
        out,
        "verdict     prefix holds for all {} sessions",
        k.cuts.len()
    );
}
