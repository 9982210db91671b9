//! Reports: the aligned human table, the `--json` document, and the line format a child
//! process (one per system, for a per-system peak RSS) hands its results back in.

use std::fmt::Write as _;

use crate::peers::{BenchError, SystemKind};
use crate::runner::{BenchConfig, CellResult, LoadResult, RmwCheck, SystemReport};

/// `faster`'s throughput over `cell`'s system's in the same (workload, distribution,
/// threads) cell of the run, if the store ran that cell.
pub fn store_ratio(reports: &[SystemReport], cell: &CellResult) -> Option<f64> {
    let store = reports
        .iter()
        .find(|r| r.system == SystemKind::Faster.name())?
        .cells
        .iter()
        .find(|c| {
            c.workload == cell.workload && c.dist == cell.dist && c.threads == cell.threads
        })?;
    let peer = cell.mops();
    (peer > 0.0).then(|| store.mops() / peer)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".into(), |k| format!("{:.0}", k as f64 / 1024.0))
}

/// The human-readable report: the load phases, then one row per (workload, distribution,
/// threads, system), with the store's throughput ratio over each system.
pub fn table(cfg: &BenchConfig, reports: &[SystemReport], separate_processes: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "YCSB: {} keys (8-byte keys and values), {} s per cell, streams of {} ops per thread, \
         latency sampled on 1 op in {}",
        cfg.keys,
        cfg.seconds,
        cfg.stream_len,
        crate::runner::CHUNK
    );
    let _ = writeln!(
        out,
        "peak RSS (VmHWM): {}",
        if separate_processes {
            "per system, each run in its own process (includes its pre-generated op streams)"
        } else {
            "of the whole process, monotone over the systems run in it"
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<12} {:>10} {:>7} {:>9} {:>9} {:>13}",
        "system", "keys", "threads", "load s", "load Mops", "peak RSS MiB"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>7} {:>9.2} {:>9.2} {:>13}",
            r.system,
            r.load.keys,
            r.load.threads,
            r.load.secs,
            r.load.mops(),
            mib(r.peak_rss_kib)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<8} {:<8} {:>7} {:<12} {:>9} {:>9} {:>9} {:>12} {:>11} {:>7}",
        "workload",
        "dist",
        "threads",
        "system",
        "Mops/s",
        "p50 ns",
        "p99 ns",
        "ops",
        "faster/sys",
        "check"
    );
    let mut rows: Vec<&CellResult> = reports.iter().flat_map(|r| r.cells.iter()).collect();
    // Group the systems of a cell together, keeping the matrix order.
    let key = |c: &CellResult| {
        let first = reports[0]
            .cells
            .iter()
            .position(|x| x.workload == c.workload && x.dist == c.dist && x.threads == c.threads)
            .unwrap_or(usize::MAX);
        (first, c.dist.name(), c.workload.name(), c.threads)
    };
    rows.sort_by_key(|c| key(c));
    for c in rows {
        let ratio = store_ratio(reports, c).map_or_else(|| "-".into(), |r| format!("{r:.2}x"));
        let check = match c.rmw_check {
            Some(k) if k.expected == k.observed => "ok",
            Some(_) => "FAILED",
            None => "",
        };
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:>7} {:<12} {:>9.3} {:>9} {:>9} {:>12} {:>11} {:>7}",
            c.workload.name(),
            c.dist.name(),
            c.threads,
            c.system,
            c.mops(),
            c.p50_ns,
            c.p99_ns,
            c.ops,
            ratio,
            check
        );
    }
    out
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

fn json_opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "null".into(), |v| v.to_string())
}

/// The JSON report: the configuration, then each system's load, peak RSS and cells (each with
/// `mops`, `p50_ns`, `p99_ns` and `faster_ratio`, the store's throughput over this system's).
pub fn json(cfg: &BenchConfig, reports: &[SystemReport], separate_processes: bool) -> String {
    let list = |v: Vec<String>| v.join(",");
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"config\":{{\"keys\":{},\"seconds\":{},\"workloads\":[{}],\"dists\":[{}],\
         \"threads\":[{}],\"stream_len\":{},\"seed\":{},\"verify\":{},\"latency_sample_every\":{},\
         \"rss_per_process\":{}}},\"systems\":[",
        cfg.keys,
        json_f64(cfg.seconds),
        list(cfg.workloads.iter().map(|w| json_str(w.name())).collect()),
        list(cfg.dists.iter().map(|d| json_str(d.name())).collect()),
        list(cfg.threads.iter().map(|t| t.to_string()).collect()),
        cfg.stream_len,
        cfg.seed,
        cfg.verify,
        crate::runner::CHUNK,
        separate_processes
    );
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"system\":{},\"peak_rss_kib\":{},\"load\":{{\"keys\":{},\"threads\":{},\"secs\":{},\"mops\":{}}},\"cells\":[",
            json_str(&r.system),
            json_opt(r.peak_rss_kib),
            r.load.keys,
            r.load.threads,
            json_f64(r.load.secs),
            json_f64(r.load.mops())
        );
        for (j, c) in r.cells.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let check = c.rmw_check.map_or_else(
                || "null".into(),
                |k| {
                    format!(
                        "{{\"expected\":{},\"observed\":{}}}",
                        k.expected, k.observed
                    )
                },
            );
            let _ = write!(
                out,
                "{{\"workload\":{},\"dist\":{},\"threads\":{},\"ops\":{},\"reads\":{},\"read_hits\":{},\
                 \"upserts\":{},\"rmws\":{},\"secs\":{},\"mops\":{},\"p50_ns\":{},\"p99_ns\":{},\
                 \"latency_samples\":{},\"faster_ratio\":{},\"rmw_check\":{}}}",
                json_str(c.workload.name()),
                json_str(c.dist.name()),
                c.threads,
                c.ops,
                c.reads,
                c.read_hits,
                c.upserts,
                c.rmws,
                json_f64(c.secs),
                json_f64(c.mops()),
                c.p50_ns,
                c.p99_ns,
                c.samples,
                store_ratio(reports, c).map_or_else(|| "null".into(), json_f64),
                check
            );
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out
}

/// Encodes a report as tab-separated lines (`LOAD`, `RSS`, `CELL`), for a child process to
/// hand back on its standard output.
pub fn encode(r: &SystemReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "LOAD\t{}\t{}\t{}\t{}",
        r.system, r.load.keys, r.load.threads, r.load.secs
    );
    let _ = writeln!(out, "RSS\t{}", json_opt(r.peak_rss_kib));
    for c in &r.cells {
        let (e, o) = c.rmw_check.map_or(("-".to_string(), "-".to_string()), |k| {
            (k.expected.to_string(), k.observed.to_string())
        });
        let _ = writeln!(
            out,
            "CELL\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.system,
            c.workload,
            c.dist,
            c.threads,
            c.ops,
            c.reads,
            c.read_hits,
            c.upserts,
            c.rmws,
            c.secs,
            c.p50_ns,
            c.p99_ns,
            c.samples,
            e,
            o
        );
    }
    out
}

fn field<T: std::str::FromStr>(f: &[&str], i: usize) -> Result<T, BenchError>
where
    T::Err: std::fmt::Display,
{
    let s = f
        .get(i)
        .ok_or_else(|| format!("missing field {i} in {f:?}"))?;
    s.parse()
        .map_err(|e| format!("field {i} ({s:?}): {e}").into())
}

/// Decodes [`encode`]'s output (other lines are ignored).
pub fn decode(text: &str) -> Result<SystemReport, BenchError> {
    let mut load = None;
    let mut rss = None;
    let mut cells = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "LOAD" => {
                load = Some((
                    f.get(1).copied().unwrap_or_default().to_string(),
                    LoadResult {
                        keys: field(&f, 2)?,
                        threads: field(&f, 3)?,
                        secs: field(&f, 4)?,
                    },
                ))
            }
            "RSS" => rss = f.get(1).and_then(|v| v.parse().ok()),
            "CELL" => cells.push(CellResult {
                system: f.get(1).copied().unwrap_or_default().to_string(),
                workload: field(&f, 2)?,
                dist: field(&f, 3)?,
                threads: field(&f, 4)?,
                ops: field(&f, 5)?,
                reads: field(&f, 6)?,
                read_hits: field(&f, 7)?,
                upserts: field(&f, 8)?,
                rmws: field(&f, 9)?,
                secs: field(&f, 10)?,
                p50_ns: field(&f, 11)?,
                p99_ns: field(&f, 12)?,
                samples: field(&f, 13)?,
                rmw_check: match (field::<u64>(&f, 14), field::<u64>(&f, 15)) {
                    (Ok(expected), Ok(observed)) => Some(RmwCheck { expected, observed }),
                    _ => None,
                },
            }),
            _ => {}
        }
    }
    let (system, load) = load.ok_or("no LOAD line in the child's output")?;
    Ok(SystemReport {
        system,
        load,
        cells,
        peak_rss_kib: rss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Dist, Workload};

    fn sample(system: &str, mops: u64) -> SystemReport {
        SystemReport {
            system: system.into(),
            load: LoadResult {
                keys: 10,
                threads: 1,
                secs: 0.5,
            },
            cells: vec![CellResult {
                system: system.into(),
                workload: Workload::Rmw,
                dist: Dist::Zipf,
                threads: 2,
                ops: mops * 1_000_000,
                reads: 0,
                read_hits: 0,
                upserts: 0,
                rmws: mops * 1_000_000,
                secs: 1.0,
                p50_ns: 100,
                p99_ns: 900,
                samples: 7,
                rmw_check: Some(RmwCheck {
                    expected: 3,
                    observed: 3,
                }),
            }],
            peak_rss_kib: Some(2048),
        }
    }

    #[test]
    fn roundtrip_and_ratio() {
        let r = sample("faster", 4);
        assert_eq!(decode(&encode(&r)).expect("decode"), r);
        let reports = vec![r, sample("dashmap", 2)];
        let ratio = store_ratio(&reports, &reports[1].cells[0]).expect("ratio");
        assert!((ratio - 2.0).abs() < 1e-9);
        let cfg = BenchConfig::smoke("/tmp".into());
        let t = table(&cfg, &reports, true);
        assert!(t.contains("2.00x") && t.contains("ok"), "{t}");
        let j = json(&cfg, &reports, true);
        assert!(j.contains("\"faster_ratio\":2") && j.starts_with('{') && j.ends_with('}'));
    }
}
