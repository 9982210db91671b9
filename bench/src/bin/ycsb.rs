//! `ycsb`: the YCSB benchmark of the `faster` store against its peers.
//!
//! Each system runs in a fresh child process (this binary re-executed with the hidden
//! `--child <system>` flag), so each system's peak RSS is its own; `--in-process` runs them
//! all in this process instead. With `--repeat N`, the systems run N times round-robin and
//! each cell reports its median run (`faster_bench::repeat`). See `--help`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use faster_bench::{BenchConfig, BenchError, SystemKind, SystemReport, run_system};
use faster_bench::{repeat, report};

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
  --repeat N          run every system N times (default 1), round-robin: round 1 runs each
                      system once in order, then round 2, ... (each run in its own process,
                      or in this one with --in-process); each cell reports the run of median
                      Mops/s (for even N the lower middle) with its latencies and checks, a
                      `range` column the runs' min-max Mops/s, and fails if any run failed;
                      load: the median run; peak RSS: the maximum over the runs
  --in-process        run every system in this process (peak RSS is then process-wide)
  -h, --help          this help
";

#[derive(Default)]
struct Args {
    o: faster_bench::Overrides,
    systems: Option<Vec<SystemKind>>,
    dir: Option<PathBuf>,
    json: bool,
    in_process: bool,
    repeat: Option<usize>,
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
            "--keys" => a.o.keys = Some(num(value()?).parse().map_err(|e| format!("--keys: {e}"))?),
            "--seconds" => {
                a.o.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            "--workload" | "--workloads" => a.o.workloads = Some(list(&value()?)?),
            "--dist" | "--dists" => a.o.dists = Some(list(&value()?)?),
            "--threads" => a.o.threads = Some(list::<usize, _>(&value()?)?),
            "--systems" | "--system" => a.systems = Some(list(&value()?)?),
            "--stream-len" => {
                a.o.stream_len = Some(
                    num(value()?)
                        .parse()
                        .map_err(|e| format!("--stream-len: {e}"))?,
                )
            }
            "--seed" => a.o.seed = Some(value()?.parse().map_err(|e| format!("--seed: {e}"))?),
            "--dir" => a.dir = Some(PathBuf::from(value()?)),
            "--child" => a.child = Some(value()?.parse()?),
            "--verify" => a.o.verify = true,
            "--smoke" => a.o.smoke = true,
            "--json" => a.json = true,
            "--checkpoint-every" => {
                a.o.checkpoint_every = Some(
                    faster_bench::parse_duration(&value()?)
                        .map_err(|e| format!("--checkpoint-every: {e}"))?,
                )
            }
            "--checkpoint-mode" => {
                a.o.checkpoint_mode = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--checkpoint-mode: {e}"))?,
                )
            }
            "--in-process" => a.in_process = true,
            "--repeat" => a.repeat = Some(repeat::parse_repeat(&value()?)?),
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
    a.o.config(dir)
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
    let n = args.repeat.unwrap_or(1);
    let memory = faster_bench::machine::measure(faster_bench::machine::REPORT_FAR_BYTES);
    if let Some(m) = &memory {
        eprintln!("ycsb: {}", m.describe());
    }
    let reports = repeat::round_robin::<BenchError>(&systems, n, |kind, round| {
        let twice = cfg.runs_twice(kind);
        eprintln!(
            "ycsb: {kind}{}: loading {} keys, then {} cells of {} s{} ...",
            if n > 1 {
                format!(" (run {} of {n})", round + 1)
            } else {
                String::new()
            },
            cfg.keys,
            cfg.workloads.len() * cfg.dists.len() * cfg.threads.len(),
            cfg.seconds,
            if twice {
                ", each run twice (without and with checkpoints)"
            } else {
                ""
            }
        );
        if args.in_process {
            run_system(kind, &cfg)
        } else {
            run_child(kind, &argv)
        }
    })?;
    let run = report::RunContext {
        separate_processes: !args.in_process,
        memory,
    };
    if args.json {
        println!("{}", report::json(&cfg, &reports, &run));
    } else {
        print!("{}", report::table(&cfg, &reports, &run));
    }
    if reports.iter().flat_map(|r| &r.cells).any(|c| c.failed()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn repeat_is_parsed_and_zero_rejected() {
        assert_eq!(args(&[]).expect("no flags").repeat, None);
        assert_eq!(args(&["--repeat", "3"]).expect("3").repeat, Some(3));
        assert_eq!(args(&["--repeat=2"]).expect("2").repeat, Some(2));
        let zero = args(&["--repeat", "0"]).err().expect("0 is rejected");
        assert!(zero.contains("at least 1"), "{zero}");
        assert!(args(&["--repeat"]).is_err(), "a value is needed");
        assert!(args(&["--repeat", "two"]).is_err());
    }
}
