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

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use faster::{CheckpointOptions, LogCapture, LogDevice};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::peers::{BenchError, DashMapPeer, FasterStore, System, SystemKind, Worker};
use crate::workload::{Dist, Op, OpStream, Workload, generate_streams};

/// Operations per chunk: the stop flag is checked, and one operation timed, per chunk.
pub const CHUNK: usize = 256;

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Number of keys loaded (`0..keys`, 8-byte little-endian keys and values).
    pub keys: u64,
    /// Duration of each cell.
    pub seconds: f64,
    /// Workloads, in order.
    pub workloads: Vec<Workload>,
    /// Distributions, in order.
    pub dists: Vec<Dist>,
    /// Thread counts, in order.
    pub threads: Vec<usize>,
    /// Entries per thread's pre-generated stream (replayed cyclically).
    pub stream_len: usize,
    /// Seed of the streams (the same for every system).
    pub seed: u64,
    /// Check the store's contents after loading (every key holds its own number) and around
    /// every RMW cell (the values' sum grows by exactly the number of RMWs). Reads every key:
    /// not timed, but slow for 10 M keys.
    pub verify: bool,
    /// Parent directory of the store's temporary directory.
    pub dir: PathBuf,
    /// If set, every cell of a store-backed system runs a second time with a checkpoint
    /// taken every this often ([`CheckpointRun`]).
    pub checkpoint_every: Option<Duration>,
    /// How those checkpoints capture the log.
    pub checkpoint_mode: CheckpointMode,
    /// The store's log device ([`LogDevice::Auto`] by default).
    pub device: LogDevice,
}

/// How the benchmark's checkpoints capture the log (`--checkpoint-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointMode {
    /// [`LogCapture::FoldOver`]: flush the log up to the tail (the default).
    #[default]
    FoldOver,
    /// [`LogCapture::Snapshot`]: write the in-memory part of the log to a snapshot file.
    Snapshot,
    /// The first checkpoint full (fold-over), the later ones log-only (fold-over): the index
    /// is written once, as FASTER users who checkpoint often do with `CheckpointHybridLog`.
    Incremental,
    /// Index-only checkpoints (`CheckpointIndex`): the hash index, no log; separates the
    /// index's share of a full checkpoint's cost from the fold-over's.
    IndexOnly,
}

impl CheckpointMode {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            CheckpointMode::FoldOver => "fold-over",
            CheckpointMode::Snapshot => "snapshot",
            CheckpointMode::Incremental => "incremental",
            CheckpointMode::IndexOnly => "index-only",
        }
    }

    /// The store's options for a checkpoint in this mode (`first`: no checkpoint succeeded
    /// yet in this run).
    pub fn options(self, first: bool) -> CheckpointOptions {
        match self {
            CheckpointMode::FoldOver => CheckpointOptions::full(),
            CheckpointMode::Snapshot => CheckpointOptions::full().with_log(LogCapture::Snapshot),
            CheckpointMode::Incremental if first => CheckpointOptions::full(),
            CheckpointMode::Incremental => CheckpointOptions::log_only(),
            CheckpointMode::IndexOnly => CheckpointOptions::index_only(),
        }
    }
}

impl std::fmt::Display for CheckpointMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CheckpointMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "fold-over" | "foldover" | "fold_over" => Ok(CheckpointMode::FoldOver),
            "snapshot" => Ok(CheckpointMode::Snapshot),
            "incremental" => Ok(CheckpointMode::Incremental),
            "index-only" | "index_only" => Ok(CheckpointMode::IndexOnly),
            _ => Err(format!(
                "unknown checkpoint mode {s:?} (fold-over, snapshot, incremental, index-only)"
            )),
        }
    }
}

/// Parses a duration: `5s`, `500ms`, `1.5s`, `2m`, or a bare number of seconds (`2`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|e| format!("bad duration {s:?}: {e}"))?;
    let secs = v * scale;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("bad duration {s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl BenchConfig {
    /// The full matrix: 10 M keys, workloads A, B, C, RMW, zipf and uniform, 1 and 2 threads,
    /// 20 s per cell, streams of 2^25 entries per thread (256 MiB each).
    pub fn full(dir: PathBuf) -> Self {
        BenchConfig {
            keys: 10_000_000,
            seconds: 20.0,
            workloads: Workload::ALL.to_vec(),
            dists: Dist::ALL.to_vec(),
            threads: vec![1, 2],
            stream_len: 1 << 25,
            seed: 0x5EED_CAFE,
            verify: false,
            dir,
            checkpoint_every: None,
            checkpoint_mode: CheckpointMode::FoldOver,
            device: LogDevice::Auto,
        }
    }

    /// The smoke matrix: 100 k keys, workloads A and RMW, zipf and uniform, 1 thread, 0.5 s
    /// per cell, streams of 2^20 entries, with verification.
    pub fn smoke(dir: PathBuf) -> Self {
        BenchConfig {
            keys: 100_000,
            seconds: 0.5,
            workloads: vec![Workload::A, Workload::Rmw],
            dists: Dist::ALL.to_vec(),
            threads: vec![1],
            stream_len: 1 << 20,
            verify: true,
            ..BenchConfig::full(dir)
        }
    }

    /// Whether system `kind`'s cells run twice, the second time with checkpoints
    /// ([`BenchConfig::checkpoint_every`] is set and `kind` is backed by the store).
    pub fn runs_twice(&self, kind: SystemKind) -> bool {
        self.checkpoint_every.is_some()
            && matches!(kind, SystemKind::Faster | SystemKind::FasterBatch)
    }

    /// The largest thread count.
    pub fn max_threads(&self) -> usize {
        self.threads.iter().copied().max().unwrap_or(1).max(1)
    }
}

/// The load phase of one system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    /// Keys loaded.
    pub keys: u64,
    /// Threads that loaded them (each a contiguous share of the keys).
    pub threads: usize,
    /// Seconds it took.
    pub secs: f64,
}

impl LoadResult {
    /// Millions of upserts per second.
    pub fn mops(&self) -> f64 {
        self.keys as f64 / self.secs / 1e6
    }
}

/// The consistency check of an RMW cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RmwCheck {
    /// RMWs issued (each adds 1).
    pub expected: u64,
    /// Growth of the sum of all values over the cell (wrapping).
    pub observed: u64,
}

/// One measured cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// System name.
    pub system: String,
    /// Workload.
    pub workload: Workload,
    /// Key distribution.
    pub dist: Dist,
    /// Threads.
    pub threads: usize,
    /// Operations completed.
    pub ops: u64,
    /// Reads among them.
    pub reads: u64,
    /// Reads that found a value.
    pub read_hits: u64,
    /// Upserts among them.
    pub upserts: u64,
    /// RMWs among them.
    pub rmws: u64,
    /// Measured seconds.
    pub secs: f64,
    /// Median latency of the sampled operations, in nanoseconds.
    pub p50_ns: u64,
    /// 99th percentile latency of the sampled operations, in nanoseconds.
    pub p99_ns: u64,
    /// Number of sampled operations.
    pub samples: u64,
    /// The RMW check, for RMW cells run with [`BenchConfig::verify`].
    pub rmw_check: Option<RmwCheck>,
    /// The same cell run again with checkpoints ([`BenchConfig::checkpoint_every`]), for
    /// store-backed systems.
    pub checkpoint: Option<CheckpointRun>,
    /// With `--repeat N`: the throughput (Mops/s) of every repeat of this cell, in run order
    /// (this cell is the median one, see [`crate::repeat`]); empty for a single run.
    #[serde(default)]
    pub repeats: Vec<f64>,
    /// With `--repeat N`: how many repeats of this cell failed ([`CellResult::failed`]); any
    /// makes this cell failed, even if its median repeat did not.
    #[serde(default)]
    pub failed_repeats: usize,
}

/// One checkpoint taken during a checkpoint run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// The version it captured.
    pub version: u64,
    /// Seconds from the start of the timed phase to the request.
    pub at_secs: f64,
    /// Its duration (`CheckpointInfo::duration`), in milliseconds.
    pub duration_ms: f64,
    /// Bytes written for the index.
    pub index_bytes: u64,
    /// Bytes of log made durable (the fold-over flush or the snapshot).
    pub log_bytes: u64,
}

/// A cell's second run, with a checkpoint every [`CheckpointRun::every_ms`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRun {
    /// How the checkpoints captured the log.
    pub mode: CheckpointMode,
    /// The interval, in milliseconds.
    pub every_ms: f64,
    /// The measurement of the run (its own `checkpoint` is `None`).
    pub run: Box<CellResult>,
    /// The checkpoints that completed, in order.
    pub checkpoints: Vec<CheckpointRecord>,
    /// The checkpoints that failed: their errors, in order.
    pub errors: Vec<String>,
}

impl CheckpointRun {
    /// Checkpoints requested (completed or failed).
    pub fn attempted(&self) -> usize {
        self.checkpoints.len() + self.errors.len()
    }

    /// The minimum, median and maximum duration of the completed checkpoints, in ms.
    pub fn duration_ms(&self) -> Option<(f64, f64, f64)> {
        let mut d: Vec<f64> = self.checkpoints.iter().map(|c| c.duration_ms).collect();
        if d.is_empty() {
            return None;
        }
        d.sort_by(f64::total_cmp);
        let n = d.len();
        let median = if n % 2 == 1 {
            d[n / 2]
        } else {
            (d[n / 2 - 1] + d[n / 2]) / 2.0
        };
        Some((d[0], median, d[n - 1]))
    }

    /// Total bytes written by the completed checkpoints: (index, log).
    pub fn bytes_written(&self) -> (u64, u64) {
        self.checkpoints
            .iter()
            .fold((0, 0), |(i, l), c| (i + c.index_bytes, l + c.log_bytes))
    }
}

impl CellResult {
    /// Whether the cell failed: it did no work or failed its RMW check, or its checkpoint
    /// run did, or a checkpoint of that run failed, or (with `--repeat`) any of its repeats
    /// failed.
    pub fn failed(&self) -> bool {
        if self.failed_repeats > 0 {
            return true;
        }
        let bad =
            |c: &CellResult| c.ops == 0 || c.rmw_check.is_some_and(|k| k.expected != k.observed);
        bad(self)
            || self
                .checkpoint
                .as_ref()
                .is_some_and(|k| bad(&k.run) || !k.errors.is_empty())
    }

    /// Millions of operations per second.
    pub fn mops(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops as f64 / self.secs / 1e6
        } else {
            0.0
        }
    }
}

/// Everything measured for one system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemReport {
    /// System name.
    pub system: String,
    /// The load phase.
    pub load: LoadResult,
    /// The cells, in matrix order (distribution, workload, threads).
    pub cells: Vec<CellResult>,
    /// Peak resident set (`VmHWM`) of the process in KiB after the run, if known. Process-wide
    /// and monotone: it is this system's only if the system ran alone in its process.
    pub peak_rss_kib: Option<u64>,
}

/// The process's peak resident set size (`VmHWM` of `/proc/self/status`) in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

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
