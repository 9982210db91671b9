//! `cargo xtask grow [--keys N]`: the index-growth soak: `N` distinct keys (default 20
//! million) written into a store opened with the default `Config` (the index starts at 2^16
//! buckets and doubles online; the log spills to disk past 64 MiB), then every key read
//! back with its value (`tests/index_growth.rs`,
//! `a_default_store_holds_keys_far_past_its_first_table`, in release mode). The suite runs
//! the same test with 1 million keys.

use std::time::Instant;

use crate::cmd;

/// Keys when `--keys` is not given.
pub const DEFAULT_KEYS: u64 = 20_000_000;

const USAGE: &str = "usage: cargo xtask grow [--keys N]";

/// Parses the arguments and runs the test.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut keys = DEFAULT_KEYS;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--keys" => {
                keys = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&k| k > 0)
                    .ok_or_else(|| format!("--keys needs a positive integer\n{USAGE}"))?
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let mut c = cmd::cargo(&[
        "test",
        "--release",
        "-p",
        "faster-tests",
        "--test",
        "index_growth",
        "--",
        "a_default_store_holds_keys_far_past_its_first_table",
        "--exact",
        "--nocapture",
    ]);
    c.env("FASTER_GROW_KEYS", keys.to_string());
    println!("grow: {keys} keys into a default store, then every key read back (release build)");
    let started = Instant::now();
    cmd::run("index growth soak", c)?;
    println!("grow: passed in {}", cmd::human(started.elapsed()));
    Ok(())
}
