//! The `faster` binary run as a user runs it: exit codes, one-line errors, the reports.
//! Sizes are tiny so each test stays within seconds in a debug build.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use faster::{Config, FasterKv, LogDevice};

fn faster(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faster"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run faster")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts that `out` failed with `code` and exactly one line on stderr containing `what`.
fn assert_one_line_error(out: &Output, code: i32, what: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    assert!(err.contains(what), "{err:?} should mention {what:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Asserts that `out` succeeded; returns its stdout.
fn assert_ok(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    stdout
}

/// A small store on the file device in `dir` with two full checkpoints.
fn store_with_checkpoints(dir: &Path) {
    let config = Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(10);
    let store = FasterKv::open(config).expect("open");
    let mut s = store.start_session();
    for round in 0..2u64 {
        for k in 0..200u64 {
            s.upsert(&k.to_le_bytes(), &(k + round).to_le_bytes())
                .expect("upsert");
        }
        store
            .checkpoint()
            .and_then(|h| h.wait())
            .expect("checkpoint");
    }
}

#[test]
fn demo_small_run_verifies_the_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("demo");
    let out = faster(&[
        "demo",
        "--keys",
        "20000",
        "--seconds",
        "2",
        "--checkpoint-every",
        "500ms",
        "--dir",
        work.to_str().expect("utf-8 path"),
    ]);
    let stdout = assert_ok(&out);
    assert!(
        stdout.contains("prefix holds for all 4 sessions"),
        "{stdout}"
    );
    assert!(stdout.contains("throughput"), "{stdout}");
    assert!(stdout.contains("recovered   version"), "{stdout}");
    // Without --keep, what the demo created is gone.
    assert!(!work.join("ycsb").exists() && !work.join("crash").exists());
}

#[test]
fn inspect_lists_a_good_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    store_with_checkpoints(dir.path());
    let out = faster(&["inspect", dir.path().to_str().expect("utf-8 path")]);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("ckpt-00000000000000000001"), "{stdout}");
    assert!(stdout.contains("ckpt-00000000000000000002"), "{stdout}");
    assert_eq!(stdout.matches(" OK").count(), 2, "{stdout}");
    assert!(stdout.contains("full/fold-over"), "{stdout}");

    let out = faster(&[
        "inspect",
        "--json",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let cps = v["checkpoints"].as_array().expect("checkpoints");
    assert_eq!(cps.len(), 2);
    assert_eq!(cps[0]["version"], 2);
    assert_eq!(cps[0]["valid"], true);
    assert_eq!(cps[0]["sessions"][0]["serial"], 400);
}

#[test]
fn inspect_names_the_corruption_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    store_with_checkpoints(dir.path());
    let meta = dir
        .path()
        .join("checkpoints/ckpt-00000000000000000002/meta");
    let mut bytes = std::fs::read(&meta).expect("read meta");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    bytes[mid + 1] ^= 0x55;
    std::fs::write(&meta, bytes).expect("write meta");
    let out = faster(&["inspect", dir.path().to_str().expect("utf-8 path")]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("CORRUPT"), "{stdout}");
    assert!(stdout.contains("checksum mismatch"), "{stdout}");
    // The older checkpoint is still fine.
    assert!(stdout.contains(" OK"), "{stdout}");
    assert_one_line_error(
        &out,
        1,
        "newest checkpoint ckpt-00000000000000000002 is invalid",
    );
}

#[test]
fn inspect_refuses_an_empty_or_missing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = faster(&["inspect", dir.path().to_str().expect("utf-8 path")]);
    assert_one_line_error(&out, 2, "not a faster store");
    let missing = dir.path().join("nope");
    let out = faster(&["inspect", missing.to_str().expect("utf-8 path")]);
    assert_one_line_error(&out, 2, "no such directory");
}

#[test]
fn inspect_survives_a_closed_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    store_with_checkpoints(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_faster"))
        .args(["inspect", dir.path().to_str().expect("utf-8 path")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Close the reading end before the report is written: the write fails with EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// `faster bench --smoke --json` on a tiny uniform matrix of the store and `dashmap` in a
/// temporary directory, with `extra` arguments; the parsed JSON report.
fn bench_json(extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec![
        "bench",
        "--smoke",
        "--json",
        "--keys",
        "2000",
        "--seconds",
        "0.05",
        "--stream-len",
        "4096",
        "--dist",
        "uniform",
        "--systems",
        "faster,dashmap",
        "--dir",
        dir.path().to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let out = faster(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn bench_smoke_json_parses() {
    let v = bench_json(&[]);
    let systems = v["systems"].as_array().expect("systems");
    assert_eq!(systems.len(), 2);
    assert_eq!(v["config"]["keys"], 2000);
    for s in systems {
        for c in s["cells"].as_array().expect("cells") {
            assert!(c["ops"].as_u64().unwrap_or(0) > 0, "{c}");
        }
    }
}

#[test]
fn bench_repeat_reports_every_run() {
    let v = bench_json(&["--repeat", "2", "--workload", "a"]);
    assert_eq!(v["config"]["repeat"], 2);
    for s in v["systems"].as_array().expect("systems") {
        for c in s["cells"].as_array().expect("cells") {
            assert_eq!(c["repeats"].as_array().map(Vec::len), Some(2), "{c}");
        }
    }
}

#[test]
fn crash_test_one_round_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = faster(&[
        "crash-test",
        "--rounds",
        "1",
        "--seed",
        "7",
        "--dir",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    let stdout = assert_ok(&out);
    assert!(stdout.contains("round   1/1  ok"), "{stdout}");
    assert!(stdout.contains("violations           0"), "{stdout}");
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    assert_one_line_error(&faster(&["demo", "--no-such-flag"]), 2, "--no-such-flag");
    assert_one_line_error(&faster(&["bench", "--workload", "z"]), 2, "workload");
    assert_one_line_error(&faster(&["frobnicate"]), 2, "frobnicate");
    assert_one_line_error(&faster(&["crash-test", "--rounds", "0"]), 2, "--rounds");
    assert_one_line_error(&faster(&["inspect"]), 2, "<DIR>");
    assert_one_line_error(&faster(&["bench", "--device", "floppy"]), 2, "io-uring");
    assert_one_line_error(&faster(&["bench", "--repeat", "0"]), 2, "at least 1");
}
