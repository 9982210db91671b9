//! `faster crash-test --rounds N`: the kill -9 prefix torture test. Each round runs
//! [`crate::crash::run_round`] in a fresh directory with a random kill delay; a progress bar
//! counts the rounds, a line per round and a summary go to stdout. A failed round's store
//! is kept and named; the command exits 1 if any round failed.

use std::fmt::Write as _;
use std::time::Instant;

use crate::args::CrashTestArgs;
use crate::crash::{MIN_CHECKPOINTS, Rng, RoundOptions, run_round};
use crate::error::{CliError, Result};
use crate::out::emit;
use crate::progress;

/// Runs the rounds and prints a line for each, then the summary.
pub fn run(a: &CrashTestArgs) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| CliError::io("locate", "this program", e))?;
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).map_err(|e| CliError::io("create", &parent, e))?;
    let seed = a.seed.unwrap_or_else(Rng::clock_seed);
    let mut rng = Rng::new(seed);
    emit(&format!(
        "crash-test: {} rounds, {} sessions per child, seed {seed} (replay: --seed {seed})\n",
        a.rounds, a.sessions
    ))?;
    let pb = progress::bar(a.rounds, "rounds");
    let began = Instant::now();
    let (mut ok, mut checkpoints, mut failures) = (0u64, 0usize, Vec::new());
    for round in 1..=a.rounds {
        let delay = RoundOptions::random_delay(&mut rng);
        let dir = tempfile::Builder::new()
            .prefix("faster-crash-")
            .tempdir_in(&parent)
            .map_err(|e| CliError::io("create a directory in", &parent, e))?;
        let options = RoundOptions::new(a.sessions, delay);
        let t = Instant::now();
        let store = dir.path().join("store");
        let status = |m: &str| pb.set_message(format!("round {round}: {m}"));
        let mut line = String::new();
        match run_round(&exe, &store, &options, &status) {
            Ok(r) => {
                ok += 1;
                checkpoints += r.checkpoints.len();
                let cuts: Vec<String> = r.cuts.iter().map(|(id, t)| format!("{id}:{t}")).collect();
                let _ = writeln!(
                    line,
                    "round {round:>3}/{}  ok         {} checkpoints, killed {:>3} ms after \
                     checkpoint {MIN_CHECKPOINTS}, recovered v{}, cuts {}  ({:.1} s)",
                    a.rounds,
                    r.checkpoints.len(),
                    delay.as_millis(),
                    r.version,
                    cuts.join(" "),
                    t.elapsed().as_secs_f64()
                );
            }
            Err(e @ (CliError::Failed(_) | CliError::Store(_))) => {
                let kept = dir.keep();
                let _ = writeln!(
                    line,
                    "round {round:>3}/{}  VIOLATION  {e} (store kept: {})",
                    a.rounds,
                    kept.display()
                );
                failures.push(format!("round {round}: {e}"));
            }
            Err(e) => return Err(e),
        }
        pb.suspend(|| emit(&line))?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "\ncrash-test summary ({:.1} s):",
        began.elapsed().as_secs_f64()
    );
    let _ = writeln!(summary, "  seed                 {seed}");
    let _ = writeln!(summary, "  rounds               {}", a.rounds);
    let _ = writeln!(summary, "  rounds ok            {ok}");
    let _ = writeln!(summary, "  checkpoints reported {checkpoints}");
    let _ = writeln!(summary, "  recoveries verified  {ok}");
    let _ = writeln!(summary, "  violations           {}", failures.len());
    emit(&summary)?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} of {} rounds violated the CPR prefix; replay with --seed {seed}",
            failures.len(),
            a.rounds
        )))
    }
}
