//! `cargo xtask loom`: the loom models, bounded.
//!
//! Every workspace crate with a `tests/loom.rs` has models. They run with
//! `RUSTFLAGS="--cfg loom"`, in the `loom` profile (release optimisation,
//! quick to build), in their own target directory so that the cfg change does
//! not invalidate the normal build, and with `LOOM_MAX_PREEMPTIONS` bounded
//! (2 by default) so that they finish in minutes.

use crate::cmd::{self, project_root};
use std::fs;

/// Default bound on preemptions per loom execution.
pub const DEFAULT_PREEMPTIONS: u32 = 2;

/// Packages with a `tests/loom.rs`, found by scanning `crates/*`.
pub fn packages_with_models() -> Result<Vec<String>, String> {
    let crates = project_root().join("crates");
    let mut found = Vec::new();
    let entries = fs::read_dir(&crates).map_err(|e| format!("reading {crates:?}: {e}"))?;
    for entry in entries {
        let dir = entry.map_err(|e| e.to_string())?.path();
        if !dir.join("tests/loom.rs").is_file() {
            continue;
        }
        let manifest = fs::read_to_string(dir.join("Cargo.toml"))
            .map_err(|e| format!("reading {dir:?}/Cargo.toml: {e}"))?;
        let name = manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|v| v.trim_matches('"').to_string())
            .ok_or_else(|| format!("{dir:?}/Cargo.toml has no package name"))?;
        found.push(name);
    }
    found.sort();
    Ok(found)
}

/// Runs every model with the given preemption bound.
pub fn run_models(preemptions: u32) -> Result<(), String> {
    let packages = packages_with_models()?;
    if packages.is_empty() {
        return Err("no crate has loom models (crates/*/tests/loom.rs)".into());
    }
    for package in &packages {
        println!("loom models of {package} (LOOM_MAX_PREEMPTIONS={preemptions})");
        let mut c = cmd::cargo(&[
            "test",
            "--profile",
            "loom",
            "--package",
            package,
            "--test",
            "loom",
        ]);
        c.env("RUSTFLAGS", "--cfg loom -D warnings")
            .env("LOOM_MAX_PREEMPTIONS", preemptions.to_string())
            .env("CARGO_TARGET_DIR", project_root().join("target/loom"));
        cmd::run(&format!("loom {package}"), c)?;
    }
    Ok(())
}

/// `cargo xtask loom [--preemptions N]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let preemptions = match args {
        [] => DEFAULT_PREEMPTIONS,
        [flag, n] if flag == "--preemptions" => n
            .parse()
            .map_err(|_| format!("--preemptions wants a number, got `{n}`"))?,
        _ => return Err("usage: cargo xtask loom [--preemptions N]".into()),
    };
    let mut steps = cmd::Steps::new();
    steps.step("loom models", || run_models(preemptions))?;
    steps.summary(true);
    Ok(())
}
