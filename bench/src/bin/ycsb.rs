//! `ycsb`: the YCSB benchmark of the `faster` store against its peers.
//!
//! Each system runs in a fresh child process (this binary re-executed with the hidden
//! `--child <system>` flag), so each system's peak RSS is its own; `--in-process` runs them
//! all in this process instead. See `--help`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use faster_bench::report;
use faster_bench::{BenchConfig, BenchError, Dist, SystemKind, SystemReport, Workload, run_system};

const HELP: &str = "\
ycsb: YCSB benchmark of the faster store against an in-memory peer (dashmap)

USAGE: ycsb [OPTIONS]

  --keys N            keys loaded before timing (default 10000000; smoke 100000)
  --seconds S         seconds per cell (default 20; smoke 0.5)
  --workload LIST     of a, b, c, rmw (default a,b,c,rmw; smoke a,rmw)
  --dist LIST         of zipf, uniform (default zipf,uniform)
  --threads LIST      thread counts (default 1,2; smoke 1)
  --systems LIST      of faster, dashmap, oxifaster (the last with the cargo feature
                      `oxifaster`; default: all built in)
  --stream-len N      pre-generated ops per thread, replayed cyclically (default 33554432;
                      smoke 1048576)
  --seed N            seed of the op streams (default 1592642302)
  --verify            check contents after the load and around each RMW cell (smoke: on)
  --smoke             a small, quick matrix (a few seconds)
  --dir PATH          parent of the store's temporary directory (default <workspace>/target/ycsb)
  --json              print a JSON report instead of the table
  --checkpoint-every D  run every cell of faster and faster-batch twice: as usual, then with
                      a full checkpoint (store.checkpoint_with(..).wait()) every D of the timed
                      phase (D: 5s, 500ms, or seconds: 2); reports both throughputs, the dip,
                      and the checkpoints' count, durations and bytes written
  --checkpoint-mode M fold-over (default), snapshot, incremental (the first checkpoint
                     full, the later ones log-only fold-over), or index-only
  --in-process        run every system in this process (peak RSS is then process-wide)
  -h, --help          this help
";

#[derive(Default)]
struct Args {
    keys: Option<u64>,
    seconds: Option<f64>,
    workloads: Option<Vec<Workload>>,
    dists: Option<Vec<Dist>>,
    threads: Option<Vec<usize>>,
    systems: Option<Vec<SystemKind>>,
    stream_len: Option<usize>,
    seed: Option<u64>,
    verify: bool,
    smoke: bool,
    dir: Option<PathBuf>,
    json: bool,
    checkpoint_every: Option<std::time::Duration>,
    checkpoint_mode: Option<faster_bench::CheckpointMode>,
    in_process: bool,
    child: Option<SystemKind>,
    help: bool,
}

fn list<T: std::str::FromStr<Err = E>, E: std::fmt::Display>(s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse::<T>().map_err(|e| e.to_string()))
        .collect()
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (flag.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let num = |v: String| v.replace('_', "");
        match name {
            "--keys" => a.keys = Some(num(value()?).parse().map_err(|e| format!("--keys: {e}"))?),
            "--seconds" => {
                a.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            "--workload" | "--workloads" => a.workloads = Some(list(&value()?)?),
            "--dist" | "--dists" => a.dists = Some(list(&value()?)?),
            "--threads" => a.threads = Some(list::<usize, _>(&value()?)?),
            "--systems" | "--system" => a.systems = Some(list(&value()?)?),
            "--stream-len" => {
                a.stream_len = Some(
                    num(value()?)
                        .parse()
                        .map_err(|e| format!("--stream-len: {e}"))?,
                )
            }
            "--seed" => a.seed = Some(value()?.parse().map_err(|e| format!("--seed: {e}"))?),
            "--dir" => a.dir = Some(PathBuf::from(value()?)),
            "--child" => a.child = Some(value()?.parse()?),
            "--verify" => a.verify = true,
            "--smoke" => a.smoke = true,
            "--json" => a.json = true,
            "--checkpoint-every" => {
                a.checkpoint_every = Some(
                    faster_bench::parse_duration(&value()?)
                        .map_err(|e| format!("--checkpoint-every: {e}"))?,
                )
            }
            "--checkpoint-mode" => {
                a.checkpoint_mode = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--checkpoint-mode: {e}"))?,
                )
            }
            "--in-process" => a.in_process = true,
            "-h" | "--help" => a.help = true,
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(a)
}

fn config(a: &Args) -> Result<BenchConfig, String> {
    let dir = a.dir.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("ycsb")
    });
    let mut c = if a.smoke {
        BenchConfig::smoke(dir)
    } else {
        BenchConfig::full(dir)
    };
    if let Some(k) = a.keys {
        c.keys = k;
    }
    if let Some(s) = a.seconds {
        c.seconds = s;
    }
    if let Some(w) = &a.workloads {
        c.workloads = w.clone();
    }
    if let Some(d) = &a.dists {
        c.dists = d.clone();
    }
    if let Some(t) = &a.threads {
        c.threads = t.clone();
    }
    if let Some(n) = a.stream_len {
        c.stream_len = n;
    }
    if let Some(s) = a.seed {
        c.seed = s;
    }
    c.verify |= a.verify;
    c.checkpoint_every = a.checkpoint_every;
    if let Some(m) = a.checkpoint_mode {
        c.checkpoint_mode = m;
    }
    if c.keys == 0 || c.keys > faster_bench::workload::MAX_KEYS {
        return Err("--keys must lie in [1, 2^48]".into());
    }
    if c.stream_len == 0 || c.threads.contains(&0) || !(c.seconds >= 0.0 && c.seconds.is_finite()) {
        return Err("--stream-len and --threads must be positive, --seconds non-negative".into());
    }
    if c.workloads.is_empty() || c.dists.is_empty() || c.threads.is_empty() {
        return Err("the matrix is empty".into());
    }
    Ok(c)
}

fn run_child(kind: SystemKind, argv: &[String]) -> Result<SystemReport, BenchError> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(argv)
        .args(["--child", kind.name()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("the {kind} child process failed: {}", out.status).into());
    }
    report::decode(&String::from_utf8(out.stdout)?)
}

fn run() -> Result<(), BenchError> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = parse(&argv)?;
    if args.help {
        print!("{HELP}");
        return Ok(());
    }
    let cfg = config(&args)?;
    if let Some(kind) = args.child {
        let r = run_system(kind, &cfg)?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(report::encode(&r).as_bytes())?;
        return Ok(());
    }
    let systems = args
        .systems
        .clone()
        .unwrap_or_else(|| SystemKind::ALL.to_vec());
    let mut reports = Vec::new();
    for kind in systems {
        let twice = cfg.checkpoint_every.is_some()
            && matches!(kind, SystemKind::Faster | SystemKind::FasterBatch);
        eprintln!(
            "ycsb: {kind}: loading {} keys, then {} cells of {} s{} ...",
            cfg.keys,
            cfg.workloads.len() * cfg.dists.len() * cfg.threads.len(),
            cfg.seconds,
            if twice {
                ", each run twice (without and with checkpoints)"
            } else {
                ""
            }
        );
        let r = if args.in_process {
            run_system(kind, &cfg)?
        } else {
            run_child(kind, &argv)?
        };
        reports.push(r);
    }
    let separate = !args.in_process;
    if args.json {
        println!("{}", report::json(&cfg, &reports, separate));
    } else {
        print!("{}", report::table(&cfg, &reports, separate));
    }
    let bad = |c: &faster_bench::CellResult| {
        c.ops == 0 || c.rmw_check.is_some_and(|k| k.expected != k.observed)
    };
    let failed = reports.iter().flat_map(|r| &r.cells).any(|c| {
        bad(c)
            || c.checkpoint
                .as_ref()
                .is_some_and(|k| bad(&k.run) || !k.errors.is_empty())
    });
    if failed {
        return Err(
            "a cell did no work, failed its RMW check, or had a checkpoint fail (see the report)"
                .into(),
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ycsb: {e}");
            ExitCode::FAILURE
        }
    }
}
