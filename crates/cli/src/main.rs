//! `faster`: the command-line tool. Parses the arguments ([`faster_cli::args::Cli`]), runs
//! the command ([`faster_cli::run`]) and maps its outcome to an exit code: 0 success,
//! 1 failed verification, 2 usage error. Every error is one line on stderr.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use clap::error::ErrorKind;
use faster_cli::args::Cli;
use faster_cli::{CliError, EXIT_USAGE};

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!("faster: internal error{at}: {msg}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    match faster_cli::run(cli) {
        Ok(()) | Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faster: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// clap's error message on one line: its text up to the usage, without tips or blank lines.
fn one_line(text: &str) -> String {
    let words: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    let line = words.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    if line.is_empty() {
        "bad arguments".to_string()
    } else {
        line.to_string()
    }
}

/// Help and version go to stdout (exit 0); a missing subcommand shows the help on stderr;
/// any other parse error is its first line on stderr. Both exit 2.
fn usage(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            eprintln!(
                "faster: {} (see faster --help)",
                one_line(&e.render().to_string())
            );
            ExitCode::from(EXIT_USAGE)
        }
    }
}
