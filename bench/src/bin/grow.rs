//! `grow`: the cost of index growth. One run, two stores side by side:
//!
//! * **growing**: the index starts at 2^16 buckets and doubles online as keys arrive;
//! * **pre-sized**: the index is sized for the keys up front (`2^ceil(log2(keys / 2))`
//!   buckets, as the YCSB benchmark sizes it) and never grows.
//!
//! Part 1 loads `--keys` distinct 8-byte keys (default 10 M) on one session into each, with
//! the default `Config` otherwise (64 MiB of log memory: the log spills to disk), `--repeat`
//! times alternating: total load time and its ratio, for every growth the throughput during
//! it as a fraction of the throughput just before it (from a timestamped op count and the
//! state machine's phase observer), and peak index memory.
//!
//! Part 2 runs YCSB-A (zipf 0.99, one thread, `--seconds` per run) on both, loaded again with
//! the log in memory (the YCSB benchmark's geometry), `--repeat` runs each alternating: the
//! median Mops/s and the ratio.
//!
//! `cargo xtask bench grow [-- --quick] [--keys N] [--seconds S] [--repeat R]`.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use faster::cpr::Action;
use faster::{Config, FasterKv, Phase, SystemState};
use faster_bench::table::{Align, Table};
use faster_bench::workload::generate_streams;
use faster_bench::{Dist, Op, OpStream, Workload};

/// `grow`: index growth against a pre-sized index (see the crate docs of the binary).
#[derive(Debug, Parser)]
#[command(name = "grow", about, long_about = None)]
struct Args {
    /// Keys to load.
    #[arg(long, default_value_t = 10_000_000)]
    keys: u64,
    /// Seconds of each YCSB-A run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Runs of each store, alternating.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// A quick run: 1 M keys, 2 s, one repeat.
    #[arg(long)]
    quick: bool,
    /// Parent directory of the stores (default `<workspace>/target/grow`).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Ops counted every this many operations of the load.
const SAMPLE: u64 = 1 << 12;

/// What one load measured.
struct Load {
    seconds: f64,
    /// `(time, ops done)` every [`SAMPLE`] ops.
    samples: Vec<(Instant, u64)>,
    /// Each growth's `(from bits, start, end)`.
    growths: Vec<(u32, Instant, Instant)>,
    peak_index: u64,
    final_bits: u32,
    /// The store's own account of each growth.
    infos: Vec<faster::GrowInfo>,
}

impl Load {
    /// Ops done at `t`, interpolated between samples.
    fn ops_at(&self, t: Instant) -> f64 {
        let i = self.samples.partition_point(|s| s.0 <= t);
        match (
            i.checked_sub(1).map(|j| self.samples[j]),
            self.samples.get(i),
        ) {
            (Some(a), Some(b)) => {
                let span = (b.0 - a.0).as_secs_f64().max(1e-9);
                a.1 as f64 + (b.1 - a.1) as f64 * (t - a.0).as_secs_f64() / span
            }
            (Some(a), None) => a.1 as f64,
            (None, _) => 0.0,
        }
    }

    /// Mops/s over `[from, to)`.
    fn rate(&self, from: Instant, to: Instant) -> f64 {
        (self.ops_at(to) - self.ops_at(from)) / (to - from).as_secs_f64().max(1e-9) / 1e6
    }
}

fn key(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

fn presized_bits(keys: u64) -> u32 {
    keys.div_ceil(2)
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .max(10)
}

/// Watches the state machine for growths: `(from bits, start, end)`.
type Watch = Arc<Mutex<Vec<(SystemState, Instant)>>>;

fn watched(config: Config) -> (Config, Watch) {
    let seen: Watch = Arc::default();
    let s = seen.clone();
    let config = config.with_phase_observer(move |state| {
        s.lock().unwrap().push((state, Instant::now()));
    });
    (config, seen)
}

fn growths(seen: &Watch) -> Vec<(u32, Instant, Instant)> {
    let mut out = Vec::new();
    let mut start = None;
    for &(s, t) in seen.lock().unwrap().iter() {
        match (s.action, s.phase) {
            (Action::Grow, Phase::GrowPrepare) => start = Some(t),
            (_, Phase::Rest) => {
                if let Some(st) = start.take() {
                    out.push((out.len() as u32, st, t));
                }
            }
            _ => {}
        }
    }
    out
}

fn load(config: Config, keys: u64) -> Load {
    let (config, seen) = watched(config);
    let store = FasterKv::open(config).expect("open");
    let first_bits = store.index().table_bits();
    let mut s = store.start_session();
    let mut samples = Vec::with_capacity((keys / SAMPLE) as usize + 2);
    let mut peak = store.index().memory_bytes();
    let start = Instant::now();
    samples.push((start, 0));
    for i in 0..keys {
        s.upsert(&key(i), &key(i)).expect("upsert");
        if (i + 1) % SAMPLE == 0 {
            samples.push((Instant::now(), i + 1));
            peak = peak.max(store.index().memory_bytes());
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    samples.push((Instant::now(), keys));
    drop(s);
    let growths = growths(&seen)
        .into_iter()
        .map(|(n, a, b)| (first_bits + n, a, b))
        .collect();
    Load {
        seconds,
        samples,
        growths,
        peak_index: peak.max(store.index().memory_bytes()),
        final_bits: store.index().table_bits(),
        infos: store.growth_history(),
    }
}

fn ycsb_a(store: &FasterKv, stream: &OpStream, seconds: f64) -> f64 {
    let mut s = store.start_session();
    let entries = stream.entries();
    let deadline = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0usize;
    let mut sink = 0u64;
    // The clock is read once per chunk of the stream.
    for chunk in entries.chunks(4096).cycle() {
        if start.elapsed() >= deadline {
            break;
        }
        for &e in chunk {
            let (k, choice) = OpStream::decode(e);
            match Workload::A.op(choice) {
                Op::Read => {
                    let v = s.read_with(&key(k), |v| v.map_or(0, |v| v[0] as u64));
                    sink ^= v.expect("read");
                }
                _ => s.upsert(&key(k), &key(k ^ 1)).expect("upsert"),
            }
        }
        n += chunk.len();
    }
    std::hint::black_box(sink);
    n as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

fn mib(b: u64) -> String {
    format!("{:.0}", b as f64 / (1 << 20) as f64)
}

fn main() {
    let mut a = Args::parse();
    if a.quick {
        (a.keys, a.seconds, a.repeat) = (1_000_000, 2.0, 1);
    }
    let parent = a
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/grow"));
    std::fs::create_dir_all(&parent).expect("create the parent directory");
    let fresh = |p: &Path| tempfile::tempdir_in(p).expect("tempdir");
    let bits = presized_bits(a.keys);
    println!(
        "grow: {} keys, 1 session; pre-sized index 2^{bits}; {} runs each, alternating",
        a.keys, a.repeat
    );

    // Part 1: the load, default Config (the log spills past 64 MiB).
    let (mut grown, mut sized) = (Vec::new(), Vec::new());
    for _ in 0..a.repeat {
        let d = fresh(&parent);
        sized.push(load(
            Config::new(d.path())
                .with_table_bits(bits)
                .with_index_growth(false),
            a.keys,
        ));
        let d = fresh(&parent);
        grown.push(load(Config::new(d.path()), a.keys));
    }
    let g_med = median(grown.iter().map(|l| l.seconds).collect());
    let s_med = median(sized.iter().map(|l| l.seconds).collect());
    let mut t = Table::new(&[
        ("store", Align::Left),
        ("load s (median)", Align::Right),
        ("runs", Align::Right),
        ("Mkeys/s", Align::Right),
        ("index 2^k", Align::Right),
        ("peak index MiB", Align::Right),
    ]);
    for (name, runs, med) in [("pre-sized", &sized, s_med), ("growing", &grown, g_med)] {
        let list: Vec<String> = runs.iter().map(|l| format!("{:.2}", l.seconds)).collect();
        t.row(vec![
            name.into(),
            format!("{med:.2}"),
            list.join(" "),
            format!("{:.2}", a.keys as f64 / med / 1e6),
            runs[0].final_bits.to_string(),
            mib(runs.iter().map(|l| l.peak_index).max().unwrap_or(0)),
        ]);
    }
    println!(
        "\nload, default Config (64 MiB of log memory):\n{}",
        t.render()
    );
    println!(
        "load time ratio growing / pre-sized: {:.2}x (target <= 1.3)",
        g_med / s_med
    );

    // Each growth of the median growing run.
    let run = grown
        .iter()
        .min_by(|x, y| {
            (x.seconds - g_med)
                .abs()
                .total_cmp(&(y.seconds - g_med).abs())
        })
        .expect("a run");
    let mut t = Table::new(&[
        ("growth", Align::Left),
        ("ms", Align::Right),
        ("Mops/s before", Align::Right),
        ("Mops/s during", Align::Right),
        ("during / before", Align::Right),
        ("prepare ms", Align::Right),
        ("split ms", Align::Right),
        ("scan ms", Align::Right),
        ("records scanned", Align::Right),
    ]);
    let mut worst = f64::INFINITY;
    for (i, &(from, s, e)) in run.growths.iter().enumerate() {
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
        let info = run.infos.get(i);
        let len = (e - s).max(Duration::from_millis(20));
        let before = run.rate(s.checked_sub(len).unwrap_or(s), s);
        let during = run.rate(s, e.max(s + Duration::from_micros(1)));
        let ratio = during / before.max(1e-9);
        worst = worst.min(ratio);
        t.row(vec![
            format!("2^{from} -> 2^{}", from + 1),
            format!("{:.1}", (e - s).as_secs_f64() * 1e3),
            format!("{before:.2}"),
            format!("{during:.2}"),
            format!("{ratio:.2}"),
            info.map_or("-".into(), |g| ms(g.prepare)),
            info.map_or("-".into(), |g| ms(g.split)),
            info.map_or("-".into(), |g| ms(g.scan)),
            info.map_or("-".into(), |g| g.scanned_records.to_string()),
        ]);
    }
    println!("\nthe growths of the median growing run:\n{}", t.render());
    println!("worst during / before: {worst:.2} (target >= 0.7)");

    // Part 2: YCSB-A on the grown store and the pre-sized one, the log in memory.
    let streams = generate_streams(Dist::Zipf, a.keys, 1, 1 << 25, 0x5EED);
    let memory = a.keys.saturating_mul(128).max(1 << 20).next_power_of_two();
    let geometry = |c: Config| {
        c.with_log_memory(memory)
            .with_page_size((memory / 16).clamp(64 << 10, 32 << 20))
    };
    let (d1, d2) = (fresh(&parent), fresh(&parent));
    let fill = |config: Config| {
        let store = FasterKv::open(config).expect("open");
        let mut s = store.start_session();
        for i in 0..a.keys {
            s.upsert(&key(i), &key(i)).expect("upsert");
        }
        store
    };
    let grown_store = fill(geometry(Config::new(d1.path())));
    let sized_store = fill(geometry(
        Config::new(d2.path())
            .with_table_bits(bits)
            .with_index_growth(false),
    ));
    // The grown table's size, pre-sized: what growth itself costs, apart from the size.
    let d3 = fresh(&parent);
    let same_store = fill(geometry(
        Config::new(d3.path())
            .with_table_bits(grown_store.index().table_bits())
            .with_index_growth(false),
    ));
    let (mut g, mut s, mut same) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.repeat {
        s.push(ycsb_a(&sized_store, &streams[0], a.seconds));
        g.push(ycsb_a(&grown_store, &streams[0], a.seconds));
        same.push(ycsb_a(&same_store, &streams[0], a.seconds));
    }
    let (gm, sm, xm) = (median(g.clone()), median(s.clone()), median(same.clone()));
    let mut t = Table::new(&[
        ("store", Align::Left),
        ("index 2^k", Align::Right),
        ("Mops/s (median)", Align::Right),
        ("runs", Align::Right),
    ]);
    for (name, store, med, runs) in [
        ("pre-sized", &sized_store, sm, &s),
        ("grown", &grown_store, gm, &g),
        ("pre-sized as grown", &same_store, xm, &same),
    ] {
        let list: Vec<String> = runs.iter().map(|r| format!("{r:.2}")).collect();
        t.row(vec![
            name.into(),
            store.index().table_bits().to_string(),
            format!("{med:.2}"),
            list.join(" "),
        ]);
    }
    println!(
        "\nYCSB-A, zipf 0.99, 1 thread, the log in memory:\n{}",
        t.render()
    );
    println!("grown / pre-sized as grown: {:.3}x", gm / xm);
    println!("grown / pre-sized: {:.3}x (target within 5%)", gm / sm);
}
