//! Unit tests of the record format and of records in frames.

use super::*;

fn words(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn to_bytes(words: &[AtomicU64]) -> Vec<u8> {
    words
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
        .collect()
}

#[test]
fn parse_word8_accepts_exactly_an_8_byte_key_and_value() {
    let at = Address::new(64).unwrap();
    let key = u64::from_le_bytes(*b"eightkey");
    let record = |k: &[u8], v: &[u8], capacity: usize| {
        let rec = NewRecord::new(k, v).with_capacity(capacity);
        let w = words(rec.size().unwrap() as usize / 8 + 2);
        write_record(&w, &rec);
        w
    };
    let w = record(b"eightkey", b"value--8", 8);
    let r = RecordRef::parse_word8(at, &w, key).expect("accepted");
    let full = RecordRef::parse(at, &w).unwrap();
    assert_eq!((r.key_len(), r.value_capacity(), r.size()), (8, 8, 48));
    assert_eq!(
        (full.key_len(), full.value_capacity(), full.size()),
        (8, 8, 48)
    );
    assert_eq!(r.value(), b"value--8");
    assert!(r.key_eq(b"eightkey"));
    // Another key, other lengths, a larger capacity: the full parse's business.
    assert!(RecordRef::parse_word8(at, &w, key + 1).is_none());
    assert!(RecordRef::parse_word8(at, &record(b"eightkey", b"short", 8), key).is_none());
    assert!(RecordRef::parse_word8(at, &record(b"eightkey", b"value--8", 16), key).is_none());
    assert!(RecordRef::parse_word8(at, &record(b"seven-k", b"value--8", 8), key).is_none());
    // Cut short, page padding, unwritten space, reserved bits: never a record.
    assert!(RecordRef::parse_word8(at, &w[..5], key).is_none());
    let filler = words(8);
    write_filler(&filler[0]);
    assert!(RecordRef::parse_word8(at, &filler, key).is_none());
    assert!(RecordRef::parse_word8(at, &words(8), key).is_none());
    w[0].fetch_or(1 << 60, Ordering::Relaxed);
    assert!(RecordRef::parse_word8(at, &w, key).is_none());
    assert!(RecordRef::parse(at, &w).is_err());
}

#[test]
fn small_values_read_without_a_buffer() {
    let rec = NewRecord::new(b"k", b"12345").with_capacity(8);
    let size = rec.size().unwrap() as usize;
    let w = words(size / 8);
    write_record(&w, &rec);
    let r = RecordRef::parse(Address::new(64).unwrap(), &w).unwrap();
    let (word, len) = r.read_small_value().unwrap();
    assert_eq!(&word.to_le_bytes()[..len], b"12345");
    r.update_value(b"xy").unwrap();
    let (word, len) = r.read_small_value().unwrap();
    assert_eq!(&word.to_le_bytes()[..len], b"xy");
    assert_eq!(word, u64::from_le_bytes(*b"xy\0\0\0\0\0\0"), "zero-padded");

    let big = NewRecord::new(b"k", b"12345").with_capacity(16);
    let w = words(big.size().unwrap() as usize / 8);
    write_record(&w, &big);
    let r = RecordRef::parse(Address::new(64).unwrap(), &w).unwrap();
    assert_eq!(
        r.read_small_value(),
        None,
        "capacity above 8 bytes: use a buffer"
    );
    assert_eq!(r.value(), b"12345");
}

#[test]
fn same_length_small_update_is_one_word_store() {
    let rec = NewRecord::new(b"k", b"12345678").with_capacity(16);
    let w = words(rec.size().unwrap() as usize / 8);
    write_record(&w, &rec);
    let r = RecordRef::parse(Address::new(64).unwrap(), &w).unwrap();
    let seq = || w[1].load(Ordering::Relaxed) >> 32;
    let before = seq();
    // Each update: the value read back, and how far the seqlock has moved since `before`.
    let step = |value: &[u8], seq_moved: u64, why: &str| {
        r.update_value_exclusive(value).unwrap();
        assert_eq!(r.value(), value, "{why}");
        assert_eq!(seq(), before + seq_moved, "{why}");
    };
    step(
        b"abcdefgh",
        0,
        "same length, one word: the seqlock is untouched",
    );
    step(b"abc", 2, "a length change goes through the seqlock");
    step(b"xyz", 2, "same length, one word");
    assert_eq!(to_bytes(&w[5..6]), b"xyz\0\0\0\0\0", "padded with zeros");
    step(
        b"ABCDEFGH",
        4,
        "8 bytes over 3: the length changes, the seqlock",
    );
    step(b"abcdefgh", 4, "8 bytes over 8: one word");
    step(b"0123456789", 6, "more than one word: the seqlock");
    step(b"01234567", 8, "8 bytes over 10: the seqlock");

    // No value word at all: an 8-byte value does not fit.
    let empty = NewRecord::new(b"k", b"");
    let w0 = words(empty.size().unwrap() as usize / 8);
    write_record(&w0, &empty);
    let r0 = RecordRef::parse(Address::new(64).unwrap(), &w0).unwrap();
    assert!(r0.update_value_exclusive(b"12345678").is_err());
    assert_eq!(r0.value(), b"");
}

#[test]
fn round_trip() {
    let rec = NewRecord::new(b"hello", b"world!!!!")
        .with_prev(Address::new(0x1234_5678).unwrap())
        .with_version(7)
        .with_capacity(20);
    let size = rec.size().unwrap() as usize;
    assert_eq!(size, 32 + 8 + 24);
    let w = words(size / 8 + 3);
    write_record(&w[..size / 8], &rec);
    let r = RecordRef::parse(Address::new(64).unwrap(), &w).unwrap();
    assert_eq!(r.size(), size);
    assert!(r.key_eq(b"hello"));
    assert!(!r.key_eq(b"hellp"));
    assert!(!r.key_eq(b"hell"));
    assert_eq!(r.key(), b"hello");
    assert_eq!(r.value(), b"world!!!!");
    assert_eq!(r.version(), 7);
    assert_eq!(r.prev_address().raw(), 0x1234_5678);
    r.update_value(b"a much longer value!").unwrap();
    assert_eq!(r.value(), b"a much longer value!");
    assert!(r.update_value(&[0; 21]).is_err());
    r.update_value_exclusive(b"yy").unwrap();
    assert_eq!(r.value(), b"yy");
    assert!(r.update_value_exclusive(&[0; 21]).is_err());
    r.update_value(b"x").unwrap();
    {
        let mut l = r.try_lock().unwrap();
        assert!(r.try_lock().is_none());
        assert!(r.header().is_locked());
        assert!(!l.header().is_sealed());
        l.seal();
        assert!(l.header().is_sealed() && r.header().is_sealed());
    }
    assert!(!r.header().is_locked());
    assert!(r.try_lock().unwrap().header().is_sealed());
    r.set_invalid();
    let bytes = to_bytes(&w);
    let v = RecordView::parse(&bytes).unwrap();
    assert_eq!(v.key(), b"hello");
    assert_eq!(v.value(), b"x");
    assert_eq!(v.seqlock(), 6, "three completed in-place updates");
    assert!(v.header().is_invalid() && v.header().is_sealed());
    assert!(!v.header().is_tombstone() && !v.header().is_locked());
    assert_eq!(record_size_from_header(&bytes, bytes.len()), Ok(Some(size)));
    assert_eq!(record_size_from_header(&bytes[..31], 100), Ok(None));
}

#[test]
fn filler_and_unwritten() {
    let w = words(4);
    assert!(matches!(parse_entry(&to_bytes(&w)), Ok(Entry::Unwritten)));
    write_filler(&w[0]);
    assert!(matches!(parse_entry(&to_bytes(&w)), Ok(Entry::Filler)));
    assert!(RecordView::parse(&to_bytes(&w)).is_err());
    assert!(RecordRef::parse(Address::FIRST_VALID, &w).is_err());
    // A record with no prev and no flags is still a record.
    let w = words(5);
    write_record(&w, &NewRecord::new(b"", b"abc"));
    assert!(matches!(parse_entry(&to_bytes(&w)), Ok(Entry::Record(_))));
}

#[test]
fn versions_wrap() {
    assert!(version_is_newer(1, 0));
    assert!(!version_is_newer(0, 1));
    assert!(!version_is_newer(5, 5));
    assert!(version_is_newer(0, u32::MAX));
    assert!(version_is_newer(3, u32::MAX - 3));
    assert!(!version_is_newer(u32::MAX - 3, 3));
    assert!(version_is_newer(8192, 8191));
    let mut v = u32::MAX - 10_000;
    for _ in 0..20_000 {
        let next = v.wrapping_add(1);
        assert!(version_is_newer(next, v));
        assert!(!version_is_newer(v, next));
        assert!(version_is_newer(v.wrapping_add(1 << 30), v));
        v = next;
    }
}

#[test]
fn garbage_never_panics() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for len in 0..200usize {
        for _ in 0..50 {
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= 8 && next() % 2 == 0 {
                // Make the header plausible so the length checks are reached.
                let h = RECORD_BIT | (next() & PREV_MASK);
                bytes[..8].copy_from_slice(&h.to_le_bytes());
            }
            if len >= 32 && next() % 2 == 0 {
                bytes[28..32].fill(0);
                let k = (next() % 64) as u32;
                bytes[16..20].copy_from_slice(&k.to_le_bytes());
            }
            if let Ok(Entry::Record(r)) = parse_entry(&bytes) {
                assert!(r.size() <= len);
                let _ = (r.key(), r.value(), r.header(), r.version());
            }
            let _ = record_size_from_header(&bytes, len);
        }
    }
}
