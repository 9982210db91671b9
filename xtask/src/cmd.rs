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
/// Rounds to tenths of a second first, so that 479.97 s is `8m 00.0s`, never `7m 60.0s`.
pub fn human(d: Duration) -> String {
    let tenths = (d.as_secs_f64() * 10.0).round() as u64;
    let (minutes, rest) = (tenths / 600, tenths % 600);
    if minutes > 0 {
        format!("{minutes}m {:02}.{}s", rest / 10, rest % 10)
    } else {
        format!("{}.{}s", rest / 10, rest % 10)
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

#[cfg(test)]
mod tests {
    use super::human;
    use std::time::Duration;

    #[test]
    fn durations_round_before_they_split_into_minutes() {
        assert_eq!(human(Duration::from_secs_f64(479.97)), "8m 00.0s");
        assert_eq!(human(Duration::from_secs_f64(59.96)), "1m 00.0s");
        assert_eq!(human(Duration::from_secs_f64(62.34)), "1m 02.3s");
        assert_eq!(human(Duration::from_secs_f64(4.2)), "4.2s");
        assert_eq!(human(Duration::ZERO), "0.0s");
    }
}
