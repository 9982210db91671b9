//! The overwrite workload of log-space reclamation at CI size (a tenth of the live
//! data, scaled throughout): the directory stays a small multiple of live data, and every key
//! has its latest value after recovery. `cargo xtask bench space` runs the full size, whose
//! target is 3x (it measured 2.89-3.15x); this size measured 3.06-3.20x, and its bound is
//! 3.5x.

use faster::Config;
use faster_bench::space::{OverwriteSpec, run_overwrite};

#[test]
fn overwrites_keep_the_directory_within_three_times_live_data() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    // 10 k keys of 1000 bytes (10 MB live), 220 MB of writes, a checkpoint every 6.4 MiB;
    // the log's memory, its files, the index (2^13 buckets for 10 k keys, as 2^16 are for
    // the full size) and the smallest compacted log scaled by about the same tenth.
    let spec = OverwriteSpec {
        keys: 10_000,
        value_len: 1000,
        total_bytes: 220_000_000,
        checkpoint_every: (64 << 20) / 10,
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
        report.peak_ratio <= 3.5,
        "peak directory size {:.2}x live data: {:?}",
        report.peak_ratio,
        report.samples
    );
}
