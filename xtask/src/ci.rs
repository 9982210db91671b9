//! `cargo xtask ci`: the whole pipeline, in order, stopping at the first
//! failing step and naming it.
//!
//! 1. `cargo fmt --check`
//! 2. `cargo clippy --workspace --all-targets -- -D warnings`
//! 3. `cargo test --workspace`
//! 4. the loom models (see [`crate::loom`])
//! 5. `cargo doc --workspace --no-deps` with warnings denied

use crate::cmd::{self, Steps};
use crate::loom;

/// Runs the pipeline. Takes no arguments.
pub fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("usage: cargo xtask ci (takes no arguments)".into());
    }
    let mut steps = Steps::new();
    steps.step("fmt", || {
        cmd::run("fmt", cmd::cargo(&["fmt", "--all", "--", "--check"]))
    })?;
    steps.step("clippy", || {
        cmd::run(
            "clippy",
            cmd::cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )
    })?;
    steps.step("test", || {
        cmd::run("test", cmd::cargo(&["test", "--workspace"]))
    })?;
    steps.step("loom models", || {
        loom::run_models(loom::DEFAULT_PREEMPTIONS)
    })?;
    steps.step("doc", || {
        let mut c = cmd::cargo(&["doc", "--workspace", "--no-deps"]);
        c.env("RUSTDOCFLAGS", "-D warnings");
        cmd::run("doc", c)
    })?;
    steps.summary(true);
    println!("\nci: all steps passed");
    Ok(())
}
