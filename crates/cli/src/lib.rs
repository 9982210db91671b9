//! # faster-cli: the `faster` command-line tool
//!
//! One binary, `faster`, built on the `faster` facade, with four commands:
//!
//! | command | module | does |
//! |---|---|---|
//! | `faster demo` | [`demo`] | load, YCSB-A with checkpoints, a kill -9, recovery, the CPR prefix verified, a report |
//! | `faster bench` | [`mod@bench`] | the YCSB matrix of `cargo xtask bench ycsb`, run by `faster-bench` |
//! | `faster inspect <dir>` | [`inspect`] | a store's checkpoints, each validated by `faster-recovery` |
//! | `faster crash-test` | [`crash_test`] | rounds of the kill -9 prefix test |
//!
//! The crash round that `demo` and `crash-test` share is [`crash`]: the binary re-executes
//! itself as a hidden child (`faster __crash-child`) that writes the tagged workload of
//! [`workload`] while it checkpoints, kills it with SIGKILL, recovers and checks every
//! session's exact prefix.
//!
//! This crate owns the command line ([`args`]), the presentation (aligned tables through `faster_bench::table`,
//! [`progress`] bars on stderr, [`out`]put that survives a closed pipe, `--json`), the exit
//! codes ([`error`]: 0 success, 1 failed verification or runtime failure, 2 usage error) and
//! the crash-test orchestration. It must not know the store's internals: it uses the
//! facade's public API (`FasterKv`, `Session`, `Config`, checkpoints, recovery) and
//! `faster_recovery`'s public metadata API through `faster::recovery`, and leaves the
//! benchmark to `faster-bench`. No other crate depends on it.

#![forbid(unsafe_code)]

pub mod args;
pub mod bench;
pub mod crash;
pub mod crash_test;
pub mod demo;
pub mod error;
pub mod inspect;
pub mod out;
pub mod progress;
pub mod workload;
pub mod workspace;

pub use error::{CliError, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Result};

use args::{Cli, Command};
use out::emit;

/// Runs the command `cli` names: its report on stdout, progress on stderr. The error says
/// how the process should end ([`CliError::exit_code`]).
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(a) => {
            let report = demo::run(&a)?;
            emit(&demo::render(&report))?;
            report.verdict()
        }
        Command::Bench(a) => bench::run(&a),
        Command::Inspect(a) => {
            let ins = inspect::inspect(&a.dir)?;
            if a.json {
                emit(&format!("{:#}\n", inspect::json(&ins)))?;
            } else {
                emit(&inspect::render(&ins))?;
            }
            ins.verdict()
        }
        Command::CrashTest(a) => crash_test::run(&a),
        Command::CrashChild(a) => crash::child::run(
            &a.dir,
            &crash::child::ChildOptions {
                sessions: a.sessions,
                ..Default::default()
            },
        ),
    }
}
