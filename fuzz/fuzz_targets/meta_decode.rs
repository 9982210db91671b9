//! Fuzzes the checkpoint metadata parser, `faster_recovery::codec::decode` (which validates
//! what it decodes), and the checks recovery makes before it loads anything
//! (`faster_recovery::check_files`, against a small store directory of real files).
//!
//! Each input is decoded twice: as is (exercising the length, magic, version and checksum
//! checks), and with its header and checksum repaired (magic, format version, payload
//! length and xxh3 trailer recomputed around the input's bytes from offset 16), so that the
//! fuzzer reaches the postcard payload and the metadata validation without having to
//! guess a checksum. Whenever a decode succeeds, `encode` of the result must decode to the
//! same value.

#![no_main]

use std::path::Path;

use std::sync::OnceLock;

use faster_recovery::codec::{self, FORMAT_VERSION, HEADER_BYTES, MAGIC, TRAILER_BYTES};
use faster_recovery::{CheckpointToken, StoreLayout, check_files};
use libfuzzer_sys::fuzz_target;
use xxhash_rust::xxh3::xxh3_64;

/// A store directory with a few small files in the places a checkpoint refers to: log
/// segments, and the index and snapshot segments of checkpoint 1 (made once per process).
fn layout() -> &'static StoreLayout {
    static LAYOUT: OnceLock<StoreLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("faster-fuzz-{}", std::process::id()));
        let layout = StoreLayout::new(&dir);
        let token = CheckpointToken::for_version(1);
        std::fs::create_dir_all(layout.log_dir()).unwrap();
        std::fs::create_dir_all(layout.index_dir(&token)).unwrap();
        std::fs::create_dir_all(layout.snapshot_dir(&token)).unwrap();
        for n in 0..3 {
            std::fs::write(layout.log_segment_path(n), vec![0u8; 4096]).unwrap();
            std::fs::write(layout.index_segment_path(&token, n), vec![0u8; 4096]).unwrap();
            std::fs::write(layout.snapshot_segment_path(&token, n), vec![0u8; 4096]).unwrap();
        }
        layout
    })
}

fn check(bytes: &[u8]) {
    let file = Path::new("fuzz");
    if let Ok(meta) = codec::decode(bytes, file) {
        let again = codec::encode(&meta);
        let back = codec::decode(&again, file).expect("re-encoded metadata must decode");
        assert_eq!(back, meta, "encode/decode round trip changed the metadata");
        // Whatever the sizes say, checking them against the files never panics (nor
        // allocates by them).
        let _ = check_files(&meta, layout());
    }
}

/// `payload` wrapped in a valid header and checksum.
fn repaired(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len() + TRAILER_BYTES);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let sum = xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&repaired(data.get(HEADER_BYTES..).unwrap_or(&[])));
});
