//! The metadata byte format: roundtrip, and rejection of every damaged form.

mod common;

use std::path::Path;

use faster_recovery::{MAX_META_BYTES, RecoveryError, decode, encode};
use proptest::prelude::*;

const FILE: &str = "/ckpt/meta";

#[test]
fn roundtrip_full_and_snapshot() {
    for meta in [common::full(7), common::snapshot(8)] {
        let bytes = encode(&meta);
        assert_eq!(&bytes[..8], b"FSTRCKPT");
        assert_eq!(decode(&bytes, Path::new(FILE)).unwrap(), meta);
    }
}

#[test]
fn every_byte_flip_is_rejected() {
    let meta = common::full(7);
    let bytes = encode(&meta);
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[i] ^= mask;
            match decode(&damaged, Path::new(FILE)) {
                Err(RecoveryError::Corrupt { file, .. }) => assert_eq!(file, Path::new(FILE)),
                Err(e) => panic!("byte {i}: unexpected error {e}"),
                Ok(m) => panic!("byte {i} mask {mask:#x}: accepted as {m:?}"),
            }
        }
    }
}

#[test]
fn every_truncation_and_extension_is_rejected() {
    let bytes = encode(&common::full(7));
    for len in 0..bytes.len() {
        assert!(
            decode(&bytes[..len], Path::new(FILE)).is_err(),
            "length {len}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode(&longer, Path::new(FILE)).is_err());
}

#[test]
fn reasons_are_precise() {
    let bytes = encode(&common::full(7));
    let reason = |b: &[u8]| match decode(b, Path::new(FILE)) {
        Err(RecoveryError::Corrupt { reason, .. }) => reason,
        other => panic!("expected Corrupt, got {other:?}"),
    };
    assert!(reason(&bytes[..10]).contains("shorter"));
    let huge = vec![0u8; MAX_META_BYTES as usize + 1];
    assert!(reason(&huge).contains("limit"));
    let mut v = bytes.clone();
    v[8..12].copy_from_slice(&1u32.to_le_bytes());
    let r = reason(&v);
    assert!(r.contains("version 1") && r.contains("version 3"), "{r}");
    // A version no build ever wrote: the header itself is damaged.
    let mut v = bytes.clone();
    v[8..12].copy_from_slice(&1_482_162_177u32.to_le_bytes());
    let r = reason(&v);
    assert!(r.contains("header is damaged"), "{r}");
    let mut v = bytes.clone();
    v[0] = b'X';
    assert!(reason(&v).contains("magic"));
    let mut v = bytes.clone();
    v[12] ^= 1;
    assert!(reason(&v).contains("payload"));
    let mut v = bytes.clone();
    let last = v.len() - 1;
    v[last] ^= 1;
    assert!(reason(&v).contains("checksum"));
}

#[test]
fn valid_framing_around_invalid_metadata_is_rejected() {
    let mut meta = common::full(7);
    meta.version = 8; // disagrees with the token
    let bytes = encode(&meta);
    match decode(&bytes, Path::new(FILE)) {
        Err(RecoveryError::Corrupt { reason, .. }) => assert!(reason.contains("token"), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn trailing_payload_bytes_are_rejected() {
    // Re-frame a payload with an extra byte and a correct checksum.
    let bytes = encode(&common::full(7));
    let payload_len = bytes.len() - 24;
    let mut payload = bytes[16..16 + payload_len].to_vec();
    payload.push(0);
    let mut framed = b"FSTRCKPT".to_vec();
    framed.extend_from_slice(&faster_recovery::codec::FORMAT_VERSION.to_le_bytes());
    framed.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    framed.extend_from_slice(&payload);
    let sum = xxhash_rust::xxh3::xxh3_64(&framed);
    framed.extend_from_slice(&sum.to_le_bytes());
    match decode(&framed, Path::new(FILE)) {
        Err(RecoveryError::Corrupt { reason, .. }) => {
            assert!(reason.contains("trailing"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Frames `payload` as a metadata file with a correct checksum.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut v = b"FSTRCKPT".to_vec();
    v.extend_from_slice(&faster_recovery::codec::FORMAT_VERSION.to_le_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    let sum = xxhash_rust::xxh3::xxh3_64(&v);
    v.extend_from_slice(&sum.to_le_bytes());
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes, Path::new(FILE));
    }

    #[test]
    fn arbitrary_payload_after_valid_header_never_panics(
        payload in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        // Correct framing and checksum, so the postcard decoder and validation see it.
        let _ = decode(&framed(&payload), Path::new(FILE));
    }

    #[test]
    fn mutated_payload_never_panics(i in 0usize..4096, b in any::<u8>()) {
        let bytes = encode(&common::full(7));
        let mut payload = bytes[16..bytes.len() - 8].to_vec();
        let i = i % payload.len();
        payload[i] = b;
        let _ = decode(&framed(&payload), Path::new(FILE));
    }
}
