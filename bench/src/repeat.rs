//! `--repeat N`: every system runs N times, round-robin (round 1 runs every system once, in
//! order, then round 2, ...), so slow drift of the machine hits all systems alike; the N
//! reports of a system are then merged into one ([`merge`]).
//!
//! **Merge.** For each cell (the same position in [`SystemReport::cells`], hence the same
//! workload, distribution and thread count), the repeat whose throughput is the median (for
//! even N, the lower middle) is kept whole, so its latencies, counts and checks are those of a
//! real run; [`CellResult::repeats`] records every repeat's Mops/s in run order, and
//! [`CellResult::failed_repeats`] how many repeats failed, so a cell is failed if any repeat
//! was. The load is the median load (by Mops/s), the peak RSS the maximum over the repeats.

use crate::peers::SystemKind;
use crate::results::{CellResult, SystemReport};

/// Parses the value of `--repeat`: a whole number of runs, at least 1.
pub fn parse_repeat(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|e| format!("--repeat: {e}"))?;
    if n == 0 {
        return Err("--repeat must be at least 1".into());
    }
    Ok(n)
}

/// The index, in `values`, of the median value (for an even count, the lower middle); ties
/// keep run order. `None` if `values` is empty.
fn median_index(values: &[f64]) -> Option<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    order.get(values.len().checked_sub(1)? / 2).copied()
}

/// Merges one cell's repeats (in run order): the median repeat by throughput, with
/// `repeats` and `failed_repeats` filled in. `None` if `runs` is empty.
pub fn merge_cell(runs: &[&CellResult]) -> Option<CellResult> {
    let mops: Vec<f64> = runs.iter().map(|c| c.mops()).collect();
    let mut cell = runs[median_index(&mops)?].clone();
    cell.failed_repeats = runs.iter().filter(|c| c.failed()).count();
    cell.repeats = mops;
    Some(cell)
}

/// Merges the reports of N repeats of one system (in run order) into one (see the module
/// documentation). Fails if `runs` is empty or the reports are not of the same system and
/// matrix.
pub fn merge(runs: &[SystemReport]) -> Result<SystemReport, String> {
    let first = runs.first().ok_or("no runs to merge")?;
    for r in runs {
        if r.system != first.system || r.cells.len() != first.cells.len() {
            return Err(format!(
                "cannot merge runs of {} ({} cells) and {} ({} cells)",
                first.system,
                first.cells.len(),
                r.system,
                r.cells.len()
            ));
        }
    }
    let mut cells = Vec::with_capacity(first.cells.len());
    for (i, c0) in first.cells.iter().enumerate() {
        let column: Vec<&CellResult> = runs.iter().map(|r| &r.cells[i]).collect();
        if let Some(c) = column
            .iter()
            .find(|c| (c.workload, c.dist, c.threads) != (c0.workload, c0.dist, c0.threads))
        {
            return Err(format!(
                "{}: cell {i} is {} {} {}t in one run and {} {} {}t in another",
                first.system, c0.workload, c0.dist, c0.threads, c.workload, c.dist, c.threads
            ));
        }
        cells.extend(merge_cell(&column));
    }
    let loads: Vec<f64> = runs.iter().map(|r| r.load.mops()).collect();
    let load = median_index(&loads).map_or_else(|| first.load.clone(), |i| runs[i].load.clone());
    Ok(SystemReport {
        system: first.system.clone(),
        load,
        cells,
        peak_rss_kib: runs.iter().filter_map(|r| r.peak_rss_kib).max(),
    })
}

/// Runs every system of `systems` `n` times, round-robin, with `run(system, round)` (`round`
/// counts from 0), and merges each system's runs ([`merge`]); the reports are in the order of
/// `systems`. The first error stops the rounds.
pub fn round_robin<E: From<String>>(
    systems: &[SystemKind],
    n: usize,
    mut run: impl FnMut(SystemKind, usize) -> Result<SystemReport, E>,
) -> Result<Vec<SystemReport>, E> {
    let mut runs: Vec<Vec<SystemReport>> = systems.iter().map(|_| Vec::new()).collect();
    for round in 0..n.max(1) {
        for (kind, out) in systems.iter().zip(&mut runs) {
            out.push(run(*kind, round)?);
        }
    }
    runs.iter().map(|r| merge(r).map_err(E::from)).collect()
}

/// The most repeats any cell of `reports` has (1 for single runs).
pub fn repeats_per_cell(reports: &[SystemReport]) -> usize {
    reports
        .iter()
        .flat_map(|r| &r.cells)
        .map(|c| c.repeats.len())
        .max()
        .unwrap_or(0)
        .max(1)
}

/// `min-max` of a cell's repeats in Mops/s (`13.1-15.0`), or `-` without repeats.
pub fn range(c: &CellResult) -> String {
    let lo = c.repeats.iter().copied().min_by(f64::total_cmp);
    let hi = c.repeats.iter().copied().max_by(f64::total_cmp);
    match (lo, hi) {
        (Some(lo), Some(hi)) => format!("{lo:.1}-{hi:.1}"),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{LoadResult, RmwCheck};
    use crate::workload::{Dist, Workload};

    /// A cell of `mops` Mops/s (in tenths), with a passing or failing RMW check, whose p50
    /// tells the repeats apart.
    fn cell(tenths: u64, p50: u64, ok: bool) -> CellResult {
        CellResult {
            system: "faster".into(),
            workload: Workload::Rmw,
            dist: Dist::Zipf,
            threads: 1,
            ops: tenths * 100_000,
            reads: 0,
            read_hits: 0,
            upserts: 0,
            rmws: tenths * 100_000,
            secs: 1.0,
            p50_ns: p50,
            p99_ns: 10 * p50,
            samples: 5,
            rmw_check: Some(RmwCheck {
                expected: 4,
                observed: if ok { 4 } else { 3 },
            }),
            checkpoint: None,
            repeats: Vec::new(),
            failed_repeats: 0,
        }
    }

    fn report(cells: Vec<CellResult>, load_secs: f64, rss: Option<u64>) -> SystemReport {
        SystemReport {
            system: "faster".into(),
            load: LoadResult {
                keys: 1_000_000,
                threads: 1,
                secs: load_secs,
            },
            cells,
            peak_rss_kib: rss,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn odd_count_keeps_the_median_repeat_and_the_spread() {
        let runs = vec![
            report(vec![cell(150, 1, true)], 2.0, Some(100)),
            report(vec![cell(131, 2, true)], 1.0, Some(300)),
            report(vec![cell(140, 3, true)], 4.0, None),
        ];
        let m = merge(&runs).expect("merge");
        let c = &m.cells[0];
        assert_eq!(c.p50_ns, 3, "the 14.0 Mops/s repeat is the median");
        assert!(close(c.mops(), 14.0));
        assert_eq!(c.repeats.len(), 3);
        assert!(
            close(c.repeats[0], 15.0) && close(c.repeats[1], 13.1) && close(c.repeats[2], 14.0)
        );
        assert_eq!(range(c), "13.1-15.0");
        assert!(!c.failed());
        assert_eq!(m.peak_rss_kib, Some(300), "peak RSS is the maximum");
        assert!(close(m.load.secs, 2.0), "the median load (0.5 Mops/s)");
    }

    #[test]
    fn even_count_keeps_the_lower_middle() {
        let runs: Vec<SystemReport> = [(40, 1), (10, 2), (30, 3), (20, 4)]
            .into_iter()
            .map(|(t, p)| report(vec![cell(t, p, true)], 1.0, None))
            .collect();
        let m = merge(&runs).expect("merge");
        assert_eq!(
            m.cells[0].p50_ns, 4,
            "2.0 is the lower middle of 1, 2, 3, 4"
        );
        assert_eq!(m.peak_rss_kib, None);
        let two = merge(&runs[..2]).expect("merge");
        assert_eq!(two.cells[0].p50_ns, 2, "the lower of two");
    }

    #[test]
    fn a_failed_repeat_fails_the_merged_cell() {
        let runs = vec![
            report(vec![cell(10, 1, false), cell(10, 1, true)], 1.0, None),
            report(vec![cell(20, 2, true), cell(20, 2, true)], 1.0, None),
            report(vec![cell(30, 3, true), cell(30, 3, true)], 1.0, None),
        ];
        let m = merge(&runs).expect("merge");
        assert_eq!(m.cells[0].p50_ns, 2);
        assert_eq!(m.cells[0].failed_repeats, 1);
        assert!(
            m.cells[0].failed(),
            "the median passed, another repeat did not"
        );
        assert!(!m.cells[1].failed());
    }

    #[test]
    fn single_run_and_mismatches() {
        let one = merge(&[report(vec![cell(10, 1, true)], 1.0, Some(7))]).expect("merge");
        assert_eq!(one.cells[0].repeats.len(), 1);
        assert_eq!(repeats_per_cell(&[one]), 1);
        assert!(merge(&[]).is_err());
        let mut other = cell(10, 1, true);
        other.threads = 2;
        let runs = vec![
            report(vec![cell(10, 1, true)], 1.0, None),
            report(vec![other], 1.0, None),
        ];
        assert!(merge(&runs).is_err());
        assert!(merge(&[runs[0].clone(), report(Vec::new(), 1.0, None)]).is_err());
    }

    #[test]
    fn round_robin_interleaves_the_systems() {
        let mut order = Vec::new();
        let systems = [SystemKind::Faster, SystemKind::DashMap];
        let merged = round_robin::<String>(&systems, 3, |kind, round| {
            order.push((kind, round));
            let mut c = cell(10 + round as u64, round as u64, true);
            c.system = kind.name().into();
            let mut r = report(vec![c], 1.0, None);
            r.system = kind.name().into();
            Ok(r)
        })
        .expect("round robin");
        use SystemKind::{DashMap, Faster};
        assert_eq!(
            order,
            [
                (Faster, 0),
                (DashMap, 0),
                (Faster, 1),
                (DashMap, 1),
                (Faster, 2),
                (DashMap, 2)
            ]
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[1].system, DashMap.name());
        assert_eq!(merged[1].cells[0].p50_ns, 1);
        assert_eq!(repeats_per_cell(&merged), 3);
    }

    #[test]
    fn repeat_zero_is_rejected() {
        assert!(parse_repeat("0").is_err());
        assert!(parse_repeat("x").is_err());
        assert!(parse_repeat("-1").is_err());
        assert_eq!(parse_repeat("3"), Ok(3));
    }
}
