//! # xtask: project automation for faster
//!
//! Run through the `cargo xtask` alias (see `.cargo/config.toml`):
//!
//! * `cargo xtask ci` — the whole CI pipeline, step by step (see [`mod@ci`]).
//! * `cargo xtask loom [--preemptions N]` — only the loom models.
//! * `cargo xtask bench <name> [-- args]` — end-to-end benchmarks (see
//!   [`mod@bench`]).
//! * `cargo xtask crash [--rounds N] [--grow]` — the kill -9 prefix test (see
//!   [`mod@crash`]).
//! * `cargo xtask grow [--keys N]` — the index-growth soak (see [`mod@grow`]).
//!
//! It depends on nothing but `std`, so it builds in seconds on a fresh
//! machine.

#![forbid(unsafe_code)]

mod bench;
mod ci;
mod cmd;
mod crash;
mod grow;
mod loom;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                      fmt, clippy, tests, loom models, docs (stops at the first failure)
  loom [--preemptions N]  run only the loom models (default N = 2)
  bench <name> [args..]   run a benchmark; names: device, index, hlog, ycsb
  crash [--rounds N] [--seed S] [--grow]  kill -9 prefix test in release, N rounds (default 20;
                          --grow: while the index doubles over and over)
  grow [--keys N]         index-growth soak: N keys (default 20 M) into a default store, read back
  help                    this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("loom") => loom::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("crash") => crash::run(&args[1..]),
        Some("grow") => grow::run(&args[1..]),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
