//! Running cargo from the project root and timing steps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The workspace root (the parent of this crate's directory).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// A `cargo` command run from the project root.
pub fn cargo(args: &[&str]) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(project_root()).args(args);
    cmd
}

/// Runs `cmd`, inheriting stdio; an error names the step on failure.
pub fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("step `{step}`: could not start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("step `{step}` failed ({status})"))
    }
}

/// Formats a duration as `1m 02.3s` or `4.2s`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m {:04.1}s", (secs / 60.0) as u64, secs % 60.0)
    } else {
        format!("{secs:.1}s")
    }
}

/// A sequence of named steps, printed with their durations.
pub struct Steps {
    started: Instant,
    done: Vec<(String, Duration)>,
}

impl Steps {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            done: Vec::new(),
        }
    }

    /// Runs one step; on failure prints the summary so far and returns the error.
    pub fn step(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        println!("\n==> [{}] {name}", self.done.len() + 1);
        let t = Instant::now();
        let result = f();
        let took = t.elapsed();
        match &result {
            Ok(()) => println!("==> {name}: ok in {}", human(took)),
            Err(_) => println!("==> {name}: FAILED after {}", human(took)),
        }
        self.done.push((name.to_string(), took));
        if result.is_err() {
            self.summary(false);
        }
        result
    }

    /// Prints every step with its duration.
    pub fn summary(&self, ok: bool) {
        println!("\nsteps:");
        let last = self.done.len();
        for (i, (name, took)) in self.done.iter().enumerate() {
            let mark = if !ok && i + 1 == last { "FAILED" } else { "ok" };
            println!("  {:<28} {:>10}  {mark}", name, human(*took));
        }
        println!("  {:<28} {:>10}", "total", human(self.started.elapsed()));
    }
}
