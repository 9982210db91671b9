//! `cargo xtask crash [--rounds N] [--seed S]`: the kill -9 prefix test
//! (`tests/crash_prefix.rs`) in release mode, with a progress line per round
//! and a final summary.
//!
//! Runs `cargo test --release -p faster-tests --test crash_prefix --
//! crash_prefix_survives_sigkill --exact --nocapture` with `FASTER_CRASH_ROUNDS=N` (and
//! `FASTER_CRASH_SEED=S` to replay a run; `--grow` runs
//! `crash_prefix_survives_sigkill_during_index_growth` with `FASTER_CRASH_GROW_ROUNDS=N`
//! instead: the child doubles its index over and over while it is killed; `--compact` runs
//! `crash_prefix_survives_sigkill_during_compaction` with `FASTER_CRASH_COMPACT_ROUNDS=N`:
//! the child compacts its log over and over),
//! reads the test's `CRASH-ROUND` / `CRASH-SUMMARY` lines, and fails if any
//! round reported a violation, if fewer rounds than asked for reported, or if
//! the test itself failed.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

use crate::cmd;

/// Rounds when `--rounds` is not given.
pub const DEFAULT_ROUNDS: u64 = 20;

const USAGE: &str = "usage: cargo xtask crash [--rounds N] [--seed S] [--grow | --compact]";

/// Parses the arguments, runs the test and prints the summary.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut rounds = DEFAULT_ROUNDS;
    let mut seed: Option<u64> = None;
    let mut grow = false;
    let mut compact = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a non-negative integer\n{USAGE}"))
        };
        match arg.as_str() {
            "--grow" => grow = true,
            "--compact" => compact = true,
            "--rounds" => rounds = value("--rounds")?,
            "--seed" => seed = Some(value("--seed")?),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if rounds == 0 {
        return Err(format!("--rounds must be at least 1\n{USAGE}"));
    }

    // One test of the suite: the plain rounds, or the rounds during index growth.
    let (test, rounds_env) = if grow && compact {
        return Err(format!("--grow and --compact are separate tests\n{USAGE}"));
    } else if grow {
        (
            "crash_prefix_survives_sigkill_during_index_growth",
            "FASTER_CRASH_GROW_ROUNDS",
        )
    } else if compact {
        (
            "crash_prefix_survives_sigkill_during_compaction",
            "FASTER_CRASH_COMPACT_ROUNDS",
        )
    } else {
        ("crash_prefix_survives_sigkill", "FASTER_CRASH_ROUNDS")
    };
    let mut c = cmd::cargo(&[
        "test",
        "--release",
        "-p",
        "faster-tests",
        "--test",
        "crash_prefix",
        "--",
        test,
        "--exact",
        "--nocapture",
    ]);
    c.env(rounds_env, rounds.to_string());
    if let Some(s) = seed {
        c.env("FASTER_CRASH_SEED", s.to_string());
    }
    c.stdout(Stdio::piped());
    println!("crash: {rounds} rounds of the kill -9 prefix test (release build)");
    let started = Instant::now();
    let mut child = c
        .spawn()
        .map_err(|e| format!("could not start {c:?}: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");

    let mut tally = Tally::default();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        tally.take(&line, rounds, started);
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the test: {e}"))?;

    println!("\ncrash summary ({}):", cmd::human(started.elapsed()));
    if let Some(s) = &tally.seed {
        println!("  seed                   {s}  (replay: --seed {s})");
    }
    println!(
        "  rounds run             {} of {rounds}",
        tally.ok + tally.violations
    );
    println!("  rounds ok              {}", tally.ok);
    println!("  checkpoints reported   {}", tally.checkpoints);
    println!(
        "  recoveries verified    {}  (crash + post-continue, per ok round)",
        2 * tally.ok
    );
    println!("  violations             {}", tally.violations);
    for v in &tally.failures {
        println!("    {v}");
    }

    if tally.violations > 0 {
        return Err(format!("{} of {rounds} rounds failed", tally.violations));
    }
    if !status.success() {
        return Err(format!("the crash test failed ({status})"));
    }
    if tally.ok != rounds {
        return Err(format!(
            "only {} of {rounds} rounds reported (did the test change its output?)",
            tally.ok
        ));
    }
    Ok(())
}

/// Totals of the test's per-round lines.
#[derive(Default)]
struct Tally {
    ok: u64,
    violations: u64,
    checkpoints: u64,
    seed: Option<String>,
    failures: Vec<String>,
}

impl Tally {
    /// Folds one line of the test's output in, printing progress for round lines.
    fn take(&mut self, line: &str, rounds: u64, started: Instant) {
        if let Some(at) = line.find("FASTER_CRASH_SEED=") {
            let seed = &line[at + "FASTER_CRASH_SEED=".len()..];
            self.seed = Some(seed.split_whitespace().next().unwrap_or("").to_string());
            println!("{line}");
            return;
        }
        // The harness may print `test ... ` before the line without a newline.
        let Some(at) = line.find("CRASH-ROUND ") else {
            return;
        };
        let rest = &line[at + "CRASH-ROUND ".len()..];
        let mut words = rest.split_whitespace();
        let round: u64 = words.next().and_then(|r| r.parse().ok()).unwrap_or(0);
        let verdict = words.next().unwrap_or("");
        let field = |name: &str| {
            rest.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("?")
                .to_string()
        };
        let elapsed = cmd::human(started.elapsed());
        if verdict == "ok" {
            self.ok += 1;
            self.checkpoints += field("checkpoints").parse::<u64>().unwrap_or(0);
            println!(
                "[{:>3}/{rounds}] ok         checkpoints={} recovered_version={} cuts={} \
                 ({} ms, {elapsed} total)",
                round + 1,
                field("checkpoints"),
                field("recovered_version"),
                field("cuts"),
                field("ms"),
            );
        } else {
            self.violations += 1;
            let msg = rest.split_once("msg=").map_or("", |(_, m)| m);
            println!("[{:>3}/{rounds}] VIOLATION  {msg}", round + 1);
            self.failures.push(format!("round {round}: {msg}"));
        }
    }
}
