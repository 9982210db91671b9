//! Shared fixtures: well-formed metadata and the data files it refers to.
#![allow(dead_code)]

use std::fs;

use faster_index::IndexCheckpointInfo;
use faster_recovery::{
    CheckpointKind, CheckpointMeta, CheckpointToken, IndexPart, LogMode, SessionRecord, StoreLayout,
};

/// Segment size of the test devices: small, so the index spans several files.
pub const SEGMENT: u64 = 4096;

/// Index info of a 2^6-bucket table with 3 overflow buckets at offset 0, alignment 4096.
pub fn info() -> IndexCheckpointInfo {
    IndexCheckpointInfo {
        table_bits: 6,
        overflow_capacity: 16,
        overflow_buckets: 3,
        table_offset: 0,
        table_bytes: 64 << 6,
        overflow_offset: 4096,
        overflow_bytes: 3 * 64,
        end_offset: 8192,
        table_checksum: 0x1234,
        overflow_checksum: 0x5678,
    }
}

/// A valid full fold-over checkpoint of `version` with sessions (1, 10 + version), (2, 20).
pub fn full(version: u64) -> CheckpointMeta {
    let token = CheckpointToken::for_version(version);
    CheckpointMeta {
        token,
        version,
        kind: CheckpointKind::Full,
        log_mode: Some(LogMode::FoldOver),
        created_unix_ms: 1_700_000_000_000,
        begin_address: 64,
        start_address: 4096,
        flushed_address: 8192,
        final_address: 12288,
        snapshot_start: None,
        snapshot_segment_size: None,
        log_bytes_written: 8192,
        index: Some(IndexPart {
            token,
            info: info(),
            start_address: 4096,
            segment_size: SEGMENT,
        }),
        index_bytes_written: 8192,
        sessions: vec![
            SessionRecord {
                id: 1,
                serial: 10 + version,
                issued: 10 + version,
            },
            SessionRecord {
                id: 2,
                serial: 20,
                issued: 20,
            },
        ],
        page_size: 4096,
        log_segment_size: None,
    }
}

/// A valid snapshot checkpoint of `version`.
pub fn snapshot(version: u64) -> CheckpointMeta {
    CheckpointMeta {
        log_mode: Some(LogMode::Snapshot),
        snapshot_start: Some(8192),
        snapshot_segment_size: Some(SEGMENT),
        ..full(version)
    }
}

/// Writes the index files (and snapshot files, if any) `meta` needs, then its metadata.
pub fn write_checkpoint(layout: &StoreLayout, meta: &CheckpointMeta) {
    let index = meta.index.as_ref().expect("index part");
    fs::create_dir_all(layout.index_dir(&index.token)).unwrap();
    let end = index.info.end_offset;
    let mut n = 0;
    while n * SEGMENT < end {
        let len = (end - n * SEGMENT).min(SEGMENT);
        fs::write(
            layout.index_segment_path(&index.token, n),
            vec![0u8; len as usize],
        )
        .unwrap();
        n += 1;
    }
    if let Some(start) = meta.snapshot_start {
        fs::create_dir_all(layout.snapshot_dir(&meta.token)).unwrap();
        let bytes = meta.final_address - start;
        let mut n = 0;
        while n * SEGMENT < bytes {
            let len = (bytes - n * SEGMENT).min(SEGMENT);
            fs::write(
                layout.snapshot_segment_path(&meta.token, n),
                vec![0u8; len as usize],
            )
            .unwrap();
            n += 1;
        }
    }
    layout.write_meta(meta).unwrap();
}
