//! `ycsb`: the YCSB benchmark of the `faster` store against its peers.
//!
//! Each system runs in a fresh child process (this binary re-executed with the hidden
//! `--child <system>` flag), so each system's peak RSS is its own; `--in-process` runs them
//! all in this process instead. With `--repeat N`, the systems run N times round-robin and
//! each cell reports its median run (`faster_bench::repeat`). See `--help`.

#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use clap::Parser;
use faster_bench::args::BenchArgs;
use faster_bench::{BenchConfig, BenchError, SystemKind, SystemReport, run_system};
use faster_bench::{repeat, report};

/// `ycsb`: the YCSB benchmark of the faster store against its peers (see the crate docs).
/// Each system runs in a child process of its own unless `--in-process`.
#[derive(Debug, Parser)]
#[command(name = "ycsb", about, long_about = None)]
struct Args {
    /// The benchmark's options (the same as `faster bench`'s).
    #[command(flatten)]
    bench: BenchArgs,
    /// Run every system in this process (peak RSS is then process-wide).
    #[arg(long)]
    in_process: bool,
    /// Run one system and print its report for the parent (internal).
    #[arg(long, hide = true, value_parser = clap::value_parser!(SystemKind))]
    child: Option<SystemKind>,
}

/// The configuration: stores under `<workspace>/target/ycsb` unless `--dir` says otherwise.
fn config(a: &Args) -> Result<BenchConfig, String> {
    a.bench.config(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("ycsb"),
    )
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
    let args = Args::parse();
    let cfg = config(&args)?;
    if let Some(kind) = args.child {
        let r = run_system(kind, &cfg)?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(report::encode(&r).as_bytes())?;
        return Ok(());
    }
    let systems = args.bench.systems();
    let n = args.bench.repeat;
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
    if args.bench.json {
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

    fn args(v: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("ycsb").chain(v.iter().copied()))
    }

    #[test]
    fn repeat_is_parsed_and_zero_rejected() {
        assert_eq!(args(&[]).expect("no flags").bench.repeat, 1);
        assert_eq!(args(&["--repeat", "3"]).expect("3").bench.repeat, 3);
        assert_eq!(args(&["--repeat=2"]).expect("2").bench.repeat, 2);
        let zero = args(&["--repeat", "0"])
            .expect_err("0 is rejected")
            .to_string();
        assert!(zero.contains("at least 1"), "{zero}");
        assert!(args(&["--repeat"]).is_err(), "a value is needed");
        assert!(args(&["--repeat", "two"]).is_err());
    }

    #[test]
    fn the_old_spellings_still_parse() {
        let a = args(&[
            "--workloads",
            "a,c",
            "--dists",
            "zipf",
            "--system",
            "faster",
            "--keys",
            "1_000",
        ])
        .unwrap();
        assert_eq!(a.bench.workload.as_ref().map(Vec::len), Some(2));
        assert_eq!(a.bench.keys, Some(1000));
        assert_eq!(a.bench.systems(), [SystemKind::Faster]);
        assert_eq!(
            args(&["--child", "faster"]).unwrap().child,
            Some(SystemKind::Faster)
        );
    }
}
