//! The overwrite workload of log-space reclamation at CI size (a tenth of the live
//! data, scaled throughout): the directory stays a small multiple of live data, and every key
//! has its latest value after recovery, for a writer of single upserts and one of batches.
//! `cargo xtask bench space` runs the full size, whose target is 3x (it measured 1.93-2.02x);
//! this size measured 2.10-2.20x (7.1x for batches before their windows waited for a
//! compaction the log outgrew), and its bound is the target's 3x.

use faster::Config;
use faster_bench::space::{OverwriteSpec, run_overwrite};

/// Runs the CI-sized workload with `batch` overwrites per call and checks its bound.
fn overwrite(batch: usize) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    // 10 k keys of 1000 bytes (10 MB live), 220 MB of writes, a checkpoint every 6.4 MiB;
    // the log's memory, its files, the index (2^13 buckets for 10 k keys, as 2^16 are for
    // the full size) and the smallest compacted log scaled by about the same tenth.
    let spec = OverwriteSpec {
        keys: 10_000,
        value_len: 1000,
        total_bytes: 220_000_000,
        checkpoint_every: (64 << 20) / 10,
        batch,
    };
    let config = Config::new(dir.path())
        .with_log_memory(8 << 20)
        .with_page_size(256 << 10)
        .with_table_bits(13)
        .with_device_options(faster::device::DeviceOptions::default().with_segment_size(4 << 20))
        .with_compaction_min_log((64 << 20) / 10);
    let report = run_overwrite(config, &spec, |_| {}).expect("the workload runs and verifies");
    assert_eq!(report.verified, spec.keys);
    assert!(report.compactions >= 3, "{report:?}");
    assert!(
        report.peak_ratio <= 3.0,
        "peak directory size {:.2}x live data: {:?}",
        report.peak_ratio,
        report.samples
    );
}

#[test]
fn overwrites_keep_the_directory_within_three_times_live_data() {
    overwrite(1);
}

/// Batches run their windows without the single operation's check: a batch writer that
/// outgrew a running compaction once went on writing.
#[test]
fn batched_overwrites_keep_the_directory_within_three_times_live_data() {
    overwrite(64);
}
