//! `space`: log-space reclamation, measured. Two parts, one run:
//!
//! 1. **Disk use over time** for the overwrite workload (`faster_bench::space`): `--keys`
//!    keys of `--value-len` bytes (default 100 k of 1000 bytes), overwritten uniformly for
//!    `--total-mb` MB of writes with a checkpoint every `--checkpoint-mb` MB, default store
//!    configuration (automatic compaction, two checkpoints kept). A table of directory size
//!    against live data after each checkpoint; the peak ratio; compaction's scan speed;
//!    every key checked after recovery.
//! 2. **YCSB-A while a compaction runs** against the same store without one: `--ycsb-keys`
//!    8-byte keys loaded and overwritten three times through `--ycsb-log-mib` MiB of log
//!    memory (the garbage a compaction reclaims lies on disk; by default one store whose
//!    live data fits in its memory and one whose live data is 1.5x it, where every copy
//!    to the tail pushes hot records out to disk), then YCSB-A (zipf 0.99, one session) for
//!    as long as one compaction of the whole log takes, and the same span on a copy
//!    of the setup without it, alternating `--repeat` times: throughput ratio and the
//!    compaction's MB/s of log scanned.
//!
//! `cargo xtask bench space [-- --quick] [--total-mb N] [--repeat R] [--only overwrite|ycsb]`.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use faster::{Config, FasterKv};
use faster_bench::space::{OverwriteSpec, run_overwrite};
use faster_bench::table::{Align, Table};
use faster_bench::workload::generate_streams;
use faster_bench::{Dist, Op, OpStream, Workload};

/// `space`: log-space reclamation (see the crate docs of the binary).
#[derive(Debug, Parser)]
#[command(name = "space", about, long_about = None)]
struct Args {
    /// Keys of the overwrite workload.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Bytes of each value.
    #[arg(long, default_value_t = 1000)]
    value_len: usize,
    /// MB (10^6 bytes) of values written in all.
    #[arg(long, default_value_t = 2200)]
    total_mb: u64,
    /// MiB written between two checkpoints.
    #[arg(long, default_value_t = 64)]
    checkpoint_mb: u64,
    /// Overwrites per `upsert_batch` call in the overwrite workload (1: one `upsert` each).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Keys of the YCSB-A part.
    #[arg(long, default_value_t = 2_000_000)]
    ycsb_keys: u64,
    /// MiB of log memory of the YCSB-A part's store, one row each (comma-separated; the
    /// default: the live data fits in memory, and the live data is 1.5x the memory).
    #[arg(long, value_delimiter = ',', default_values_t = [96, 64])]
    ycsb_log_mib: Vec<u64>,
    /// Runs of the YCSB-A part, each system alternating.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// A short run (a tenth of the sizes).
    #[arg(long)]
    quick: bool,
    /// Where the stores live (default `<workspace>/target/space`).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run only one part.
    #[arg(long, value_enum)]
    only: Option<Part>,
}

/// The two parts of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// Disk use over time of the overwrite workload.
    Overwrite,
    /// YCSB-A with a compaction running against without.
    Ycsb,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = Args::parse();
    if args.quick {
        args.keys /= 10;
        args.total_mb /= 10;
        args.checkpoint_mb = (args.checkpoint_mb / 10).max(1);
        args.ycsb_keys /= 10;
        args.ycsb_log_mib = args.ycsb_log_mib.iter().map(|m| m.div_ceil(10)).collect();
        args.repeat = 1;
    }
    let base = match &args.dir {
        Some(d) => d.clone(),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/space"),
    };
    std::fs::create_dir_all(&base)?;
    if args.only != Some(Part::Ycsb) {
        overwrite_part(&args, &base)?;
    }
    if args.only != Some(Part::Overwrite) {
        ycsb_part(&args, &base)?;
    }
    Ok(())
}

fn overwrite_part(args: &Args, base: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let spec = OverwriteSpec {
        keys: args.keys,
        value_len: args.value_len,
        total_bytes: args.total_mb * 1_000_000,
        checkpoint_every: args.checkpoint_mb << 20,
        batch: args.batch,
    };
    let dir = tempfile::tempdir_in(base)?;
    println!(
        "overwrite: {} keys x {} B (live {:.1} MB), {} MB of writes, a checkpoint every {} MiB, \
         default space policy",
        spec.keys,
        spec.value_len,
        spec.live_bytes() as f64 / 1e6,
        args.total_mb,
        args.checkpoint_mb
    );
    let mut table = Table::new(&[
        ("written MB", Align::Right),
        ("on disk MB", Align::Right),
        ("log MB", Align::Right),
        ("disk / live", Align::Right),
        ("compactions", Align::Right),
    ]);
    let report = run_overwrite(Config::new(dir.path()), &spec, |s| {
        table.row(vec![
            format!("{:.0}", s.written as f64 / 1e6),
            format!("{:.1}", s.disk as f64 / 1e6),
            format!("{:.1}", s.log as f64 / 1e6),
            format!("{:.2}", s.ratio),
            s.compactions.to_string(),
        ]);
    })?;
    print!("{}", table.render());
    println!(
        "peak disk / live: {:.2}x; {} compactions scanned {:.0} MB and copied {:.0} MB \
         ({:.2} bytes copied per byte written); writing took {:.1} s; {} keys verified after \
         recovery",
        report.peak_ratio,
        report.compactions,
        report.scanned as f64 / 1e6,
        report.copied as f64 / 1e6,
        report.copied as f64 / spec.total_bytes as f64,
        report.write_time.as_secs_f64(),
        report.verified
    );
    Ok(())
}

/// A store with `keys` 8-byte keys, overwritten three times through `log_mib` MiB of log
/// memory.
fn ycsb_store(dir: &std::path::Path, keys: u64, log_mib: u64) -> faster::Result<FasterKv> {
    let config = Config::new(dir)
        .with_log_memory(log_mib << 20)
        .with_auto_compaction(false)
        .with_table_bits((keys / 2).next_power_of_two().trailing_zeros().max(16));
    let store = FasterKv::open(config)?;
    let mut s = store.start_session();
    for round in 0..4u64 {
        for k in 0..keys {
            s.upsert(&k.to_le_bytes(), &(k ^ round).to_le_bytes())?;
        }
    }
    Ok(store)
}

/// Runs YCSB-A on `store` until `until` says stop; returns ops and the time.
fn ycsb_a(store: &FasterKv, stream: &OpStream, until: &dyn Fn(u64) -> bool) -> (u64, Duration) {
    let mut s = store.start_session();
    let at = Instant::now();
    let mut ops = 0u64;
    let mut out = 0u64;
    'run: loop {
        for chunk in stream.entries().chunks(1024) {
            for &e in chunk {
                let (k, choice) = OpStream::decode(e);
                let key = k.to_le_bytes();
                match Workload::A.op(choice) {
                    Op::Read => {
                        out ^= s.read_with(&key, |v| v.map_or(0, |v| v[0] as u64)).unwrap();
                    }
                    _ => s.upsert(&key, &ops.to_le_bytes()).unwrap(),
                }
            }
            ops += chunk.len() as u64;
            if until(ops) {
                break 'run;
            }
        }
    }
    std::hint::black_box(out);
    (ops, at.elapsed())
}

fn ycsb_part(args: &Args, base: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let stream = &generate_streams(Dist::Zipf, args.ycsb_keys, 1, 1 << 22, 42)[0];
    // A record of an 8-byte key and an 8-byte value takes 48 bytes of log.
    let live = args.ycsb_keys * 48;
    println!(
        "\nYCSB-A (zipf 0.99, 1 session, {} keys, {:.0} MB live, overwritten 3 times) while one \
         compaction of the whole log runs, against none for the same span, by log memory:",
        args.ycsb_keys,
        live as f64 / 1e6
    );
    let mut table = Table::new(&[
        ("log memory MiB", Align::Right),
        ("memory / live", Align::Right),
        ("run", Align::Right),
        ("with compaction Mops/s", Align::Right),
        ("without Mops/s", Align::Right),
        ("ratio", Align::Right),
        ("compaction MB/s scanned", Align::Right),
        ("MB copied", Align::Right),
        ("span s", Align::Right),
    ]);
    let mut medians = Vec::new();
    for &mib in &args.ycsb_log_mib {
        let mut ratios = Vec::new();
        for run in 0..args.repeat {
            let dir = tempfile::tempdir_in(base)?;
            let store = ycsb_store(dir.path(), args.ycsb_keys, mib)?;
            let done = Arc::new(AtomicBool::new(false));
            let compactor = {
                let (store, done) = (store.clone(), done.clone());
                std::thread::spawn(move || {
                    let r = store.compact(None).and_then(|h| h.wait());
                    done.store(true, Ordering::Release);
                    r
                })
            };
            let (ops, span) = ycsb_a(&store, stream, &|_| done.load(Ordering::Acquire));
            let info = compactor
                .join()
                .map_err(|_| "the compaction thread panicked")??;
            drop(store);
            let dir2 = tempfile::tempdir_in(base)?;
            let plain = ycsb_store(dir2.path(), args.ycsb_keys, mib)?;
            let at = Instant::now();
            let (ops2, span2) = ycsb_a(&plain, stream, &|_| at.elapsed() >= span);
            let with = ops as f64 / span.as_secs_f64() / 1e6;
            let without = ops2 as f64 / span2.as_secs_f64() / 1e6;
            ratios.push(with / without);
            table.row(vec![
                mib.to_string(),
                format!("{:.2}", (mib << 20) as f64 / live as f64),
                (run + 1).to_string(),
                format!("{with:.3}"),
                format!("{without:.3}"),
                format!("{:.2}", with / without),
                format!(
                    "{:.0}",
                    info.bytes_scanned as f64 / info.duration.as_secs_f64() / 1e6
                ),
                format!("{:.1}", info.bytes_copied as f64 / 1e6),
                format!("{:.2}", span.as_secs_f64()),
            ]);
        }
        ratios.sort_by(f64::total_cmp);
        medians.push((mib, ratios[ratios.len() / 2]));
    }
    print!("{}", table.render());
    for (mib, median) in medians {
        println!(
            "median throughput ratio with / without compaction, {mib} MiB of log memory: {median:.2}"
        );
    }
    Ok(())
}
