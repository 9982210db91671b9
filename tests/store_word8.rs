//! The store's fast paths for 8-byte keys and values (taken by `Session::read`, `read_with`,
//! `upsert` and the batches): they must behave exactly like the general paths, including in
//! every case where they give up and hand over (a value of another length, a tombstone, a
//! read-only or evicted record, an entry in an overflow bucket, colliding tags, a
//! checkpoint's version rule).

use std::collections::HashMap;

use faster::index::KeyHash;
use faster::{AddU64, BatchOp, Config, FasterKv, LogDevice, Session};

fn config(dir: &std::path::Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::Memory)
        .with_log_memory(256 << 10)
        .with_page_size(32 << 10)
        .with_table_bits(8)
}

fn tail(store: &FasterKv) -> u64 {
    store.hlog().tail_address().raw()
}

/// The value through `read_with` (the per-operation path the benchmark takes) and `read`
/// (a new vector): both must agree.
fn get(s: &mut Session, key: &[u8]) -> Option<Vec<u8>> {
    let with = s.read_with(key, |v| v.map(<[u8]>::to_vec)).unwrap();
    let plain = s.read(key).unwrap();
    assert_eq!(with, plain, "read_with and read disagree on {key:?}");
    plain
}

#[test]
fn updates_stay_in_place_and_hand_over_when_they_must() {
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(config(dir.path())).unwrap();
    let mut s = store.start_session();
    let k = *b"eightkey";
    s.upsert(&k, &1u64.to_le_bytes()).unwrap();
    let t0 = tail(&store);
    s.upsert(&k, &2u64.to_le_bytes()).unwrap();
    assert_eq!(
        tail(&store),
        t0,
        "an 8-byte update of a mutable record is in place"
    );
    assert_eq!(get(&mut s, &k), Some(2u64.to_le_bytes().to_vec()));

    // A shorter value fits the record's capacity: in place, and read back at its length.
    s.upsert(&k, b"abc").unwrap();
    assert_eq!(tail(&store), t0);
    assert_eq!(get(&mut s, &k), Some(b"abc".to_vec()));
    // Back to 8 bytes over the 3-byte value: the general in-place path.
    s.upsert(&k, &3u64.to_le_bytes()).unwrap();
    assert_eq!(tail(&store), t0);
    assert_eq!(get(&mut s, &k), Some(3u64.to_le_bytes().to_vec()));

    // A tombstone in place; the next upsert appends a new record.
    s.delete(&k).unwrap();
    assert_eq!(tail(&store), t0);
    assert_eq!(get(&mut s, &k), None);
    s.upsert(&k, &4u64.to_le_bytes()).unwrap();
    let t1 = tail(&store);
    assert!(t1 > t0, "an upsert over a tombstone appends");
    assert_eq!(get(&mut s, &k), Some(4u64.to_le_bytes().to_vec()));

    // A fold-over checkpoint makes the whole log read-only: the next update copies, the
    // one after updates the copy in place.
    store.checkpoint().unwrap().wait().unwrap();
    s.upsert(&k, &5u64.to_le_bytes()).unwrap();
    let t2 = tail(&store);
    assert!(t2 > t1, "an update of a read-only record appends a copy");
    s.upsert(&k, &6u64.to_le_bytes()).unwrap();
    assert_eq!(tail(&store), t2);
    assert_eq!(get(&mut s, &k), Some(6u64.to_le_bytes().to_vec()));

    // Other lengths next to it never take the fast path and never disturb it.
    s.upsert(b"seven-k", &7u64.to_le_bytes()).unwrap();
    s.upsert(b"nine-key!", &9u64.to_le_bytes()).unwrap();
    s.upsert(&k, b"a 16-byte value!").unwrap();
    assert_eq!(get(&mut s, b"seven-k"), Some(7u64.to_le_bytes().to_vec()));
    assert_eq!(get(&mut s, b"nine-key!"), Some(9u64.to_le_bytes().to_vec()));
    assert_eq!(get(&mut s, &k), Some(b"a 16-byte value!".to_vec()));
    s.upsert(&k, &8u64.to_le_bytes()).unwrap();
    assert_eq!(get(&mut s, &k), Some(8u64.to_le_bytes().to_vec()));
    assert_eq!(
        s.serial(),
        32,
        "every operation takes one serial number (a `get` is two)"
    );
}

/// A deterministic generator (xorshift), so that a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Two buckets for 1500 keys: long overflow chains and colliding tags. 128 KiB of log
/// memory: records go read-only and are evicted to the device. Mostly 8-byte values, some of
/// other lengths; per-operation calls and batches; checked against a `HashMap` throughout.
#[test]
fn crowded_chains_and_evictions_match_a_model() {
    const KEYS: u64 = 1500;
    let dir = tempfile::tempdir().unwrap();
    let store = FasterKv::open(
        config(dir.path())
            .with_table_bits(1)
            .with_log_memory(128 << 10)
            .with_page_size(16 << 10),
    )
    .unwrap();
    let mut s = store.start_session();
    let key = |k: u64| (k * 0x9e37_79b9).to_le_bytes();
    let mut tags: HashMap<(u64, u16), u32> = HashMap::new();
    for k in 0..KEYS {
        let h = KeyHash::of(&key(k));
        *tags.entry((h.raw() & 1, h.tag())).or_default() += 1;
    }
    assert!(
        tags.values().any(|&n| n > 1),
        "the test needs colliding tags"
    );
    let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let value = |rng: &mut Rng| -> Vec<u8> {
        match rng.below(10) {
            0 => b"abc".to_vec(),
            1 => vec![rng.below(256) as u8; 16],
            _ => rng.next().to_le_bytes().to_vec(),
        }
    };
    for round in 0..40_000u64 {
        let k = rng.below(KEYS);
        match rng.below(20) {
            0 => {
                s.delete(&key(k)).unwrap();
                model.remove(&k);
            }
            // A counter: only over a missing or 8-byte value.
            1 if model.get(&k).is_none_or(|v| v.len() == 8) => {
                s.rmw(&key(k), &1u64.to_le_bytes(), &AddU64).unwrap();
                let n = model.get(&k).map_or(0, |v| AddU64::decode(v)) + 1;
                model.insert(k, n.to_le_bytes().to_vec());
            }
            2..=9 => {
                let v = value(&mut rng);
                s.upsert(&key(k), &v).unwrap();
                model.insert(k, v);
            }
            _ => assert_eq!(get(&mut s, &key(k)), model.get(&k).cloned(), "key {k}"),
        }
        if round % 1000 == 999 {
            let ks: Vec<u64> = (0..64).map(|_| rng.below(KEYS)).collect();
            let items: Vec<([u8; 8], Vec<u8>)> =
                ks.iter().map(|&k| (key(k), value(&mut rng))).collect();
            s.upsert_batch(&items).unwrap();
            for (&k, (_, v)) in ks.iter().zip(&items) {
                model.insert(k, v.clone());
            }
            let ks: Vec<u64> = (0..64).map(|_| rng.below(KEYS)).collect();
            let keys: Vec<[u8; 8]> = ks.iter().map(|&k| key(k)).collect();
            let mut got = Vec::new();
            s.read_batch(&keys, |i, v| got.push((i, v.map(<[u8]>::to_vec))))
                .unwrap();
            assert_eq!(got.len(), ks.len());
            for (i, v) in got {
                assert_eq!(
                    v,
                    model.get(&ks[i]).cloned(),
                    "batched read of key {}",
                    ks[i]
                );
            }
            // A mixed batch: upserts and reads of the same keys, in order.
            let ks: Vec<u64> = (0..32).map(|_| rng.below(KEYS)).collect();
            let vals: Vec<[u8; 8]> = ks.iter().map(|&k| (k + round).to_le_bytes()).collect();
            let keys: Vec<[u8; 8]> = ks.iter().map(|&k| key(k)).collect();
            let mut ops = Vec::new();
            for i in 0..ks.len() {
                ops.push(BatchOp::Upsert(&keys[i], &vals[i]));
                ops.push(BatchOp::Read(&keys[i]));
            }
            let mut reads = Vec::new();
            s.batch(&ops, &AddU64, |i, v| reads.push((i, v.map(<[u8]>::to_vec))))
                .unwrap();
            assert_eq!(reads.len(), ks.len());
            for (i, v) in reads {
                assert_eq!(v, Some(vals[i / 2].to_vec()), "mixed batch, operation {i}");
            }
            for (i, &k) in ks.iter().enumerate() {
                model.insert(k, vals[i].to_vec());
            }
        }
    }
    assert!(
        store.hlog().head_address().raw() > 64,
        "the test needs evicted records"
    );
    for k in 0..KEYS {
        assert_eq!(
            get(&mut s, &key(k)),
            model.get(&k).cloned(),
            "final, key {k}"
        );
    }
}
