//! The smoke matrix in-process with tiny sizes: every cell does work, and the store's
//! contents stay consistent (the load and every RMW cell are checked by reading every key).

use faster_bench::{BenchConfig, Dist, SystemKind, Workload, report, run_system};

#[test]
fn smoke_matrix_does_work_and_counts_add_up() {
    let target = tempfile::tempdir().expect("tempdir");
    let cfg = BenchConfig {
        keys: 5_000,
        seconds: 0.02,
        workloads: Workload::ALL.to_vec(),
        dists: Dist::ALL.to_vec(),
        threads: vec![1, 2],
        stream_len: 1 << 13,
        verify: true,
        ..BenchConfig::smoke(target.path().to_path_buf())
    };
    let mut reports = Vec::new();
    for &kind in SystemKind::ALL {
        let r = run_system(kind, &cfg).expect("run");
        assert_eq!(r.load.keys, cfg.keys);
        assert_eq!(r.cells.len(), 4 * 2 * 2, "{}", r.system);
        for c in &r.cells {
            let what = format!("{} {} {} {}t", c.system, c.workload, c.dist, c.threads);
            assert!(
                c.ops > 0 && c.secs > 0.0 && c.samples > 0,
                "{what}: no work"
            );
            assert_eq!(c.ops, c.reads + c.upserts + c.rmws, "{what}");
            // Every key was loaded and none deleted: every read finds its key.
            assert_eq!(c.read_hits, c.reads, "{what}: a read missed");
            match c.workload {
                Workload::A => assert!(c.reads > 0 && c.upserts > 0, "{what}"),
                Workload::B => assert!(c.reads > c.upserts, "{what}"),
                Workload::C => assert_eq!(c.reads, c.ops, "{what}"),
                Workload::Rmw => {
                    assert_eq!(c.rmws, c.ops, "{what}");
                    let check = c.rmw_check.expect("RMW cells are checked");
                    assert_eq!(check.expected, c.rmws, "{what}");
                    assert_eq!(check.observed, check.expected, "{what}: increments lost");
                }
            }
            assert!(c.p50_ns <= c.p99_ns, "{what}");
        }
        reports.push(r);
    }
    let table = report::table(&cfg, &reports, &report::RunContext::default());
    assert!(
        table.contains("dashmap") && !table.contains("FAILED"),
        "{table}"
    );
    assert!(
        report::json(&cfg, &reports, &report::RunContext::default()).contains("\"faster_ratio\"")
    );
}

/// The `ycsb` binary with `--checkpoint-every 200ms` on a tiny RMW cell (store in its own
/// child process, as in a real run): the JSON report carries the checkpoint run, with at
/// least one checkpoint, no failures, and consistent counters.
#[test]
fn checkpoint_cell_reports_checkpoints() {
    let target = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ycsb"))
        .args([
            "--keys",
            "20000",
            "--seconds",
            "0.6",
            "--workload",
            "rmw",
            "--dist",
            "zipf",
            "--threads",
            "1",
            "--systems",
            "faster",
            "--stream-len",
            "65536",
            "--verify",
            "--checkpoint-every",
            "200ms",
            "--json",
            "--dir",
        ])
        .arg(target.path())
        .output()
        .expect("run ycsb");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ycsb failed: {stderr}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(j["config"]["checkpoint_every_ms"], 200.0, "{j}");
    assert_eq!(j["config"]["checkpoint_mode"], "fold-over", "{j}");
    let cell = &j["systems"][0]["cells"][0];
    let k = &cell["checkpoint"];
    for field in [
        "mops_without",
        "mops_with",
        "ratio",
        "dip_pct",
        "taken",
        "failed",
        "duration_ms",
        "bytes_written",
        "checkpoints",
        "run",
    ] {
        assert!(!k[field].is_null(), "checkpoint.{field} missing: {k}");
    }
    let taken = k["taken"].as_u64().expect("taken");
    assert!(taken >= 1, "no checkpoint taken: {k}");
    assert_eq!(k["failed"], 0, "{k}");
    assert_eq!(
        k["checkpoints"].as_array().map(Vec::len),
        Some(taken as usize)
    );
    assert_eq!(k["mops_without"], cell["mops"], "{k}");
    assert!(k["mops_with"].as_f64().expect("mops_with") > 0.0, "{k}");
    let first = &k["checkpoints"][0];
    assert!(
        first["duration_ms"].as_f64().expect("duration") > 0.0,
        "{k}"
    );
    assert!(
        first["index_bytes"].as_u64().expect("index bytes") > 0,
        "{k}"
    );
    assert_eq!(
        k["bytes_written"]["total"].as_u64(),
        Some(
            k["bytes_written"]["index"].as_u64().expect("index")
                + k["bytes_written"]["log"].as_u64().expect("log")
        )
    );
    let check = &k["run"]["rmw_check"];
    assert_eq!(check["expected"], check["observed"], "increments lost: {k}");
}
