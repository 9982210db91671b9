//! Checkpoint tokens: formatting, strict parsing, ordering, serde.

use faster_recovery::{CheckpointToken, RecoveryError};

#[test]
fn formats_as_zero_padded_version() {
    let t = CheckpointToken::for_version(7);
    assert_eq!(t.as_str(), "ckpt-00000000000000000007");
    assert_eq!(t.to_string(), t.as_str());
    assert_eq!(t.version(), 7);
    let max = CheckpointToken::for_version(u64::MAX);
    assert_eq!(max.as_str(), "ckpt-18446744073709551615");
    assert_eq!(max.as_str().parse::<CheckpointToken>().unwrap(), max);
}

#[test]
fn parse_roundtrips() {
    for v in [0, 1, 7, 42, 1 << 40, u64::MAX - 1] {
        let t = CheckpointToken::for_version(v);
        assert_eq!(CheckpointToken::parse(t.as_str()).unwrap(), t);
    }
}

#[test]
fn parse_rejects_everything_else() {
    let bad = [
        "",
        "../x",
        "/abs",
        "/ckpt-00000000000000000007",
        "ckpt-1",
        "ckpt-00000000000000000007/..",
        "ckpt-00000000000000000007/",
        "ckpt-0000000000000000007",
        "ckpt-000000000000000000007",
        "CKPT-00000000000000000007",
        " ckpt-00000000000000000007",
        "ckpt-00000000000000000007 ",
        "ckpt-+0000000000000000007",
        "ckpt--0000000000000000007",
        "ckpt-99999999999999999999",
        "ckpt-0000000000000000000٧",  // Arabic-Indic digit seven
        "ckpt-0000000000000000000７", // full-width digit seven
        "ckpt-0000000000000000000\u{0}",
    ];
    for s in bad {
        match CheckpointToken::parse(s) {
            Err(RecoveryError::InvalidToken { .. }) => {}
            other => panic!("{s:?} gave {other:?}"),
        }
    }
}

#[test]
fn orders_by_version() {
    let mut v: Vec<_> = [10, 2, 300, 0].map(CheckpointToken::for_version).into();
    v.sort();
    assert_eq!(
        v.iter().map(|t| t.version()).collect::<Vec<_>>(),
        [0, 2, 10, 300]
    );
}

#[test]
fn serde_is_a_validated_string() {
    let t = CheckpointToken::for_version(9);
    let bytes = postcard::to_allocvec(&t).unwrap();
    assert_eq!(postcard::from_bytes::<CheckpointToken>(&bytes).unwrap(), t);
    let as_string = postcard::to_allocvec("ckpt-00000000000000000009").unwrap();
    assert_eq!(bytes, as_string);
    let evil = postcard::to_allocvec("../../etc/passwd").unwrap();
    assert!(postcard::from_bytes::<CheckpointToken>(&evil).is_err());
}
