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
    let table = report::table(&cfg, &reports, false);
    assert!(
        table.contains("dashmap") && !table.contains("FAILED"),
        "{table}"
    );
    assert!(report::json(&cfg, &reports, false).contains("\"faster_ratio\""));
}
