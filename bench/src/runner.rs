//! Running the benchmark: loading, the timed cells, latency sampling, consistency checks and
//! peak memory.
//!
//! **Timing.** A cell's threads each take their own [`Worker`] (for the store, a session),
//! meet at a barrier, and replay their pre-generated stream in chunks of [`CHUNK`] operations,
//! checking a stop flag between chunks; the main thread raises the flag after the cell's
//! duration. Throughput is all threads' operations over the span from the first thread's
//! start to the last thread's stop.
//!
//! **Latency.** Timing every operation would cost two clock reads (~20-40 ns) per operation
//! of a few hundred nanoseconds, so only the first operation of each chunk, one in
//! [`CHUNK`] = 256, is timed with [`Instant`] and recorded in an HDR histogram (3 significant
//! digits); the percentiles are those of this uniform 1/256 sample.
//!
//! **Checkpoints.** With [`BenchConfig::checkpoint_every`], every cell of a system backed by
//! the store runs twice: as usual, then again from the start of the same streams with one more
//! thread that, every interval of the timed phase, takes a full checkpoint
//! (`checkpoint_with(..)?.wait()`, fold-over or snapshot per [`BenchConfig::checkpoint_mode`])
//! and records its duration and bytes written, or its error. The checkpoints are deleted after
//! the run, untimed, so a long matrix does not fill the disk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::config::{BenchConfig, CheckpointMode};
use crate::peers::{BenchError, DashMapPeer, FasterStore, System, SystemKind, Worker};
use crate::results::{
    CellResult, CheckpointRecord, CheckpointRun, LoadResult, RmwCheck, SystemReport, peak_rss_kib,
};
use crate::workload::{Dist, Op, OpStream, Workload, generate_streams};

/// Operations per chunk: the stop flag is checked, and one operation timed, per chunk.
pub const CHUNK: usize = 256;

/// Loads keys `0..keys` (value = key) with `threads` threads, each a contiguous share.
pub fn load<S: System>(sys: &S, keys: u64, threads: usize) -> LoadResult {
    load_with_progress(sys, keys, threads, &|_| {})
}

/// Keys a loading thread upserts between two calls of the progress callback.
pub const LOAD_PROGRESS_STEP: u64 = 1 << 14;

/// [`load`], calling `progress(n)` from the loading threads each time one of them has loaded
/// `n` more keys (every [`LOAD_PROGRESS_STEP`] keys, and at the end of its share).
pub fn load_with_progress<S: System>(
    sys: &S,
    keys: u64,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> LoadResult {
    let threads = threads.max(1);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads as u64 {
            s.spawn(move || {
                let mut w = sys.worker();
                let lo = keys * t / threads as u64;
                let hi = keys * (t + 1) / threads as u64;
                for k in lo..hi {
                    w.upsert(k, k);
                    if (k - lo + 1) % LOAD_PROGRESS_STEP == 0 {
                        progress(LOAD_PROGRESS_STEP);
                    }
                }
                progress((hi - lo) % LOAD_PROGRESS_STEP);
            });
        }
    });
    LoadResult {
        keys,
        threads,
        secs: start.elapsed().as_secs_f64(),
    }
}

/// Reads every key of `0..keys` with `threads` threads: the wrapping sum of the values and
/// the number of keys present.
pub fn sum_values<S: System>(sys: &S, keys: u64, threads: usize) -> (u64, u64) {
    let threads = threads.max(1) as u64;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut w = sys.worker();
                    let (mut sum, mut present) = (0u64, 0u64);
                    for k in keys * t / threads..keys * (t + 1) / threads {
                        if let Some(v) = w.read(k) {
                            sum = sum.wrapping_add(v);
                            present += 1;
                        }
                    }
                    (sum, present)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sum thread panicked"))
            .fold((0u64, 0u64), |(s, p), (s2, p2)| {
                (s.wrapping_add(s2), p + p2)
            })
    })
}

#[derive(Default)]
struct ThreadStats {
    ops: u64,
    reads: u64,
    read_hits: u64,
    upserts: u64,
    rmws: u64,
}

#[inline(always)]
fn do_op<W: Worker>(w: &mut W, workload: Workload, entry: u64, value: u64, st: &mut ThreadStats) {
    let (key, choice) = OpStream::decode(entry);
    match workload.op(choice) {
        Op::Read => {
            st.reads += 1;
            if w.read(key).is_some() {
                st.read_hits += 1;
            }
        }
        Op::Upsert => {
            st.upserts += 1;
            w.upsert(key, value);
        }
        Op::Rmw => {
            st.rmws += 1;
            w.rmw_add(key, 1);
        }
    }
}

/// The next [`CHUNK`] entries of a cyclic stream, from `*i` (wrapping at the end).
fn next_chunk<'a>(entries: &'a [u64], i: &mut usize) -> &'a [u64] {
    let end = (*i + CHUNK).min(entries.len());
    let chunk = &entries[*i..end];
    *i = if end == entries.len() { 0 } else { end };
    chunk
}

/// Runs `chunk` through a batched worker as one mixed batch, in stream order
/// ([`Worker::mixed_entries`]). Its time divided by its length is the chunk's latency sample
/// (a batched operation has no latency of its own).
fn run_chunk<W: Worker>(
    w: &mut W,
    workload: Workload,
    chunk: &[u64],
    st: &mut ThreadStats,
    hist: &mut Histogram<u64>,
) {
    // Counted by kind without a branch on it: the kinds are random in a mixed workload, and
    // a mispredicted branch per operation here would be charged to the store.
    let mut counts = [0u64; 3];
    for &entry in chunk {
        counts[workload.op(OpStream::decode(entry).1) as usize] += 1;
    }
    st.reads += counts[Op::Read as usize];
    st.upserts += counts[Op::Upsert as usize];
    st.rmws += counts[Op::Rmw as usize];
    let t = Instant::now();
    st.read_hits += w.mixed_entries(workload, chunk, st.ops);
    let per_op = t.elapsed().as_nanos() as u64 / chunk.len().max(1) as u64;
    hist.saturating_record(per_op.max(1));
    st.ops += chunk.len() as u64;
}

/// Runs one cell: `threads` threads (thread `i` replays `streams[i]` from its start) for
/// `duration`.
pub fn run_cell<S: System>(
    sys: &S,
    streams: &[OpStream],
    workload: Workload,
    dist: Dist,
    threads: usize,
    duration: Duration,
) -> CellResult {
    run_timed(sys, streams, workload, dist, threads, duration, None).0
}

/// The outcome of one checkpoint request: its record, or its error.
pub type Attempt = Result<CheckpointRecord, String>;

/// The checkpoint thread of a checkpoint run: after the barrier, at `every`, `2 * every`, ...
/// strictly before `duration` (so a 20 s cell with `every` = 5 s takes 3), one full checkpoint
/// of `kv` in `mode`, waited for; then it waits for `stop`.
fn checkpoint_loop(
    kv: &faster::FasterKv,
    (every, mode): (Duration, CheckpointMode),
    duration: Duration,
    stop: &AtomicBool,
    barrier: &Barrier,
) -> Vec<Attempt> {
    let mut out = Vec::new();
    barrier.wait();
    let start = Instant::now();
    let end = start + duration;
    let mut next = start + every;
    loop {
        loop {
            if stop.load(Ordering::Acquire) {
                return out;
            }
            let now = Instant::now();
            if now >= next && next < end {
                break;
            }
            if next >= end {
                std::thread::park();
                continue;
            }
            // The main thread unparks this thread when it raises `stop`.
            std::thread::park_timeout(next - now);
        }
        let at = Instant::now();
        let first = !out.iter().any(|a: &Attempt| a.is_ok());
        let attempt = kv
            .checkpoint_with(mode.options(first))
            .and_then(|h| h.wait())
            .map(|info| CheckpointRecord {
                version: info.version,
                at_secs: (at - start).as_secs_f64(),
                duration_ms: info.duration.as_secs_f64() * 1e3,
                index_bytes: info.index_bytes,
                log_bytes: info.log_bytes,
            })
            .map_err(|e| format!("at {:.3} s: {e}", (at - start).as_secs_f64()));
        out.push(attempt);
        // Fixed rate; an interval a checkpoint overran is skipped.
        let now = Instant::now();
        while next <= now {
            next += every;
        }
    }
}

/// [`run_cell`], with a checkpoint thread if `checkpoints` is given (the interval and mode)
/// and `sys` is backed by the store; returns the cell and the checkpoint attempts.
pub fn run_timed<S: System>(
    sys: &S,
    streams: &[OpStream],
    workload: Workload,
    dist: Dist,
    threads: usize,
    duration: Duration,
    checkpoints: Option<(Duration, CheckpointMode)>,
) -> (CellResult, Vec<Attempt>) {
    assert!(
        threads >= 1 && streams.len() >= threads,
        "one stream per thread"
    );
    let checkpointer = checkpoints.and_then(|(every, mode)| Some((sys.store()?, every, mode)));
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(threads + 1 + usize::from(checkpointer.is_some()));
    let merged = Mutex::new((
        ThreadStats::default(),
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("histogram bounds"),
        None::<Instant>,
        None::<Instant>,
    ));
    let attempts = std::thread::scope(|s| {
        for stream in &streams[..threads] {
            let (stop, barrier, merged) = (&stop, &barrier, &merged);
            s.spawn(move || {
                let mut w = sys.worker();
                let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)
                    .expect("histogram bounds");
                let mut st = ThreadStats::default();
                let entries = stream.entries();
                let mut i = 0usize;
                barrier.wait();
                let start = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if sys.batched() {
                        let chunk = next_chunk(entries, &mut i);
                        run_chunk(&mut w, workload, chunk, &mut st, &mut hist);
                        continue;
                    }
                    for c in 0..CHUNK {
                        let entry = entries[i];
                        i += 1;
                        if i == entries.len() {
                            i = 0;
                        }
                        if c == 0 {
                            let t = Instant::now();
                            do_op(&mut w, workload, entry, st.ops, &mut st);
                            hist.saturating_record(t.elapsed().as_nanos() as u64);
                        } else {
                            do_op(&mut w, workload, entry, st.ops, &mut st);
                        }
                        st.ops += 1;
                    }
                }
                let end = Instant::now();
                drop(w);
                let mut m = merged.lock().expect("merge lock");
                m.0.ops += st.ops;
                m.0.reads += st.reads;
                m.0.read_hits += st.read_hits;
                m.0.upserts += st.upserts;
                m.0.rmws += st.rmws;
                m.1.add(&hist).expect("histogram merge");
                m.2 = Some(m.2.map_or(start, |s| s.min(start)));
                m.3 = Some(m.3.map_or(end, |e| e.max(end)));
            });
        }
        let ckpt = checkpointer.map(|(kv, every, mode)| {
            let (stop, barrier) = (&stop, &barrier);
            s.spawn(move || checkpoint_loop(kv, (every, mode), duration, stop, barrier))
        });
        barrier.wait();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Release);
        if let Some(h) = ckpt {
            h.thread().unpark();
            // A checkpoint running at the stop completes (the workers' sessions end) and
            // counts; it is outside the measured span.
            h.join()
                .unwrap_or_else(|_| vec![Err("the checkpoint thread panicked".into())])
        } else {
            Vec::new()
        }
    });
    let (st, hist, start, end) = merged.into_inner().expect("merge lock");
    let secs = match (start, end) {
        (Some(s), Some(e)) => (e - s).as_secs_f64(),
        _ => 0.0,
    };
    let cell = CellResult {
        system: sys.name().to_string(),
        workload,
        dist,
        threads,
        ops: st.ops,
        reads: st.reads,
        read_hits: st.read_hits,
        upserts: st.upserts,
        rmws: st.rmws,
        secs,
        p50_ns: hist.value_at_quantile(0.5),
        p99_ns: hist.value_at_quantile(0.99),
        samples: hist.len(),
        rmw_check: None,
        checkpoint: None,
        repeats: Vec::new(),
        failed_repeats: 0,
    };
    (cell, attempts)
}

/// Loads `sys` and runs the matrix of `cfg` on it: for each distribution, the streams are
/// generated (untimed), then each workload runs at each thread count.
pub fn run_matrix<S: System>(sys: &S, cfg: &BenchConfig) -> Result<SystemReport, BenchError> {
    let max_threads = cfg.max_threads();
    let load = load(sys, cfg.keys, max_threads);
    if cfg.verify {
        let (sum, present) = sum_values(sys, cfg.keys, max_threads);
        let expected = (0..cfg.keys).fold(0u64, |a, k| a.wrapping_add(k));
        if present != cfg.keys || sum != expected {
            return Err(format!(
                "{}: after loading, {present} of {} keys present, sum {sum} (expected {expected})",
                sys.name(),
                cfg.keys
            )
            .into());
        }
    }
    let duration = Duration::from_secs_f64(cfg.seconds.max(0.0));
    let mut cells = Vec::new();
    for &dist in &cfg.dists {
        let streams = generate_streams(dist, cfg.keys, max_threads, cfg.stream_len, cfg.seed);
        for &workload in &cfg.workloads {
            for &threads in &cfg.threads {
                let check = cfg.verify && workload == Workload::Rmw;
                let run = |plan| {
                    let before = check.then(|| sum_values(sys, cfg.keys, max_threads).0);
                    let (mut cell, attempts) = run_timed(
                        sys,
                        &streams,
                        workload,
                        dist,
                        threads.max(1),
                        duration,
                        plan,
                    );
                    if let Some(before) = before {
                        let after = sum_values(sys, cfg.keys, max_threads).0;
                        cell.rmw_check = Some(RmwCheck {
                            expected: cell.rmws,
                            observed: after.wrapping_sub(before),
                        });
                    }
                    (cell, attempts)
                };
                let mut cell = run(None).0;
                if let (Some(every), Some(kv)) = (cfg.checkpoint_every, sys.store()) {
                    let (with, attempts) = run(Some((every, cfg.checkpoint_mode)));
                    remove_checkpoints(kv);
                    let (checkpoints, errors) = attempts.into_iter().fold(
                        (Vec::new(), Vec::new()),
                        |(mut ok, mut err), a| {
                            match a {
                                Ok(c) => ok.push(c),
                                Err(e) => err.push(e),
                            }
                            (ok, err)
                        },
                    );
                    for e in &errors {
                        eprintln!(
                            "ycsb: {} {workload} {dist} {threads}t: checkpoint failed: {e}",
                            sys.name()
                        );
                    }
                    cell.checkpoint = Some(CheckpointRun {
                        mode: cfg.checkpoint_mode,
                        every_ms: every.as_secs_f64() * 1e3,
                        run: Box::new(with),
                        checkpoints,
                        errors,
                    });
                }
                cells.push(cell);
            }
        }
    }
    Ok(SystemReport {
        system: sys.name().to_string(),
        load,
        cells,
        peak_rss_kib: peak_rss_kib(),
    })
}

/// Deletes the store's checkpoints (untimed, after a checkpoint run): the benchmark never
/// recovers them, and a long matrix would otherwise fill the disk.
fn remove_checkpoints(kv: &faster::FasterKv) {
    let dir = kv.dir().join(faster::recovery::CHECKPOINTS_DIR);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            eprintln!("ycsb: could not remove {}: {e}", dir.display());
        }
        _ => {}
    }
}

/// Builds system `kind` (the store in a temporary directory under `cfg.dir`) and runs
/// [`run_matrix`] on it.
pub fn run_system(kind: SystemKind, cfg: &BenchConfig) -> Result<SystemReport, BenchError> {
    match kind {
        SystemKind::Faster => run_matrix(
            &FasterStore::open_with(&cfg.dir, cfg.keys, cfg.device)?,
            cfg,
        ),
        SystemKind::FasterBatch => run_matrix(
            &crate::peers::FasterBatchStore(FasterStore::open_with(
                &cfg.dir, cfg.keys, cfg.device,
            )?),
            cfg,
        ),
        SystemKind::DashMap => run_matrix(&DashMapPeer::new(cfg.keys), cfg),
        #[cfg(feature = "oxifaster")]
        SystemKind::OxiFaster => run_matrix(&crate::peers::OxiFasterPeer::new(cfg.keys), cfg),
    }
}
