//! Fuzzes the checkpoint metadata parser, `faster_recovery::codec::decode`.
//!
//! Each input is decoded twice: as is (exercising the length, magic, version and checksum
//! checks), and with its header and checksum repaired (magic, format version, payload
//! length and xxh3 trailer recomputed around the input's bytes from offset 16), so that the
//! fuzzer reaches the postcard payload and the metadata validation without having to
//! guess a checksum. Whenever a decode succeeds, `encode` of the result must decode to the
//! same value.

#![no_main]

use std::path::Path;

use faster_recovery::codec::{self, FORMAT_VERSION, HEADER_BYTES, MAGIC, TRAILER_BYTES};
use libfuzzer_sys::fuzz_target;
use xxhash_rust::xxh3::xxh3_64;

fn check(bytes: &[u8]) {
    let file = Path::new("fuzz");
    if let Ok(meta) = codec::decode(bytes, file) {
        let again = codec::encode(&meta);
        let back = codec::decode(&again, file).expect("re-encoded metadata must decode");
        assert_eq!(back, meta, "encode/decode round trip changed the metadata");
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
