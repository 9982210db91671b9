//! Index benchmark: insert (`find_or_create_entry` + CAS of the address) and find
//! (`find_entry`) in Mops/s over 8-byte keys, with 1 and 2 threads, against a
//! `std::collections::HashMap<u64, u64>` baseline in the same run (1 thread: a plain map;
//! 2 threads: the map behind a `std::sync::RwLock`, write lock per insert, read lock per get).
//! Both sides are pre-sized; the map uses the default SipHash hasher, the index xxh3.
//!
//! `cargo bench -p faster-index --bench index -- [--quick] [--keys N]`
//! (default 10 M keys; `--quick` 1 M).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

use faster_index::{HashIndex, IndexConfig, KeyHash};

struct Config {
    keys: u64,
}

fn parse_args() -> Config {
    let mut quick = false;
    let mut keys = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--keys" => keys = args.next().and_then(|s| s.parse::<u64>().ok()),
            _ => {} // `cargo bench` passes `--bench`; ignore what we do not know.
        }
    }
    Config {
        keys: keys
            .unwrap_or(if quick { 1_000_000 } else { 10_000_000 })
            .max(1),
    }
}

/// Runs `work(thread, threads)` on `threads` threads and returns Mops/s for `ops` operations.
fn timed(threads: u64, ops: u64, work: impl Fn(u64, u64) + Sync) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let work = &work;
            s.spawn(move || work(t, threads));
        }
    });
    ops as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// The keys of thread `t` of `threads`: a strided share of `0..n`.
fn share(n: u64, t: u64, threads: u64) -> impl Iterator<Item = u64> {
    (t..n).step_by(threads as usize)
}

fn hash(k: u64) -> KeyHash {
    KeyHash::of(&k.to_le_bytes())
}

/// (insert, find) Mops/s of the index.
fn bench_index(n: u64, threads: u64, table_bits: u32) -> (f64, f64) {
    let config = IndexConfig::new(table_bits, (1u64 << table_bits) / 2 + 1024);
    let index = HashIndex::new(config).expect("index config");
    let insert = timed(threads, n, |t, th| {
        for k in share(n, t, th) {
            let (slot, e) = index.find_or_create_entry(hash(k)).expect("overflow");
            // Keys sharing (bucket, tag) share an entry; the CAS may lose, which is fine.
            let _ = slot.compare_exchange_address(e, 64 + k);
        }
    });
    let found = std::sync::atomic::AtomicU64::new(0);
    let find = timed(threads, n, |t, th| {
        let mut hits = 0;
        for k in share(n, t, th) {
            hits += u64::from(index.find_entry(hash(k)).is_some());
        }
        found.fetch_add(hits, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(found.into_inner(), n, "a key was not found");
    if threads == 1 {
        let s = index.stats();
        println!(
            "index: 2^{table_bits} buckets, {} entries, {} overflow buckets, longest chain {}",
            s.entries, s.overflow_buckets, s.max_chain
        );
    }
    (insert, find)
}

/// (insert, get) Mops/s of the HashMap baseline.
fn bench_map(n: u64, threads: u64) -> (f64, f64) {
    if threads == 1 {
        let mut map = HashMap::<u64, u64>::with_capacity(n as usize);
        let start = Instant::now();
        for k in 0..n {
            map.insert(k, 64 + k);
        }
        let insert = n as f64 / start.elapsed().as_secs_f64() / 1e6;
        let start = Instant::now();
        let mut hits = 0u64;
        for k in 0..n {
            hits += u64::from(map.get(&k) == Some(&(64 + k)));
        }
        let get = n as f64 / start.elapsed().as_secs_f64() / 1e6;
        assert_eq!(hits, n);
        return (insert, get);
    }
    let map = RwLock::new(HashMap::<u64, u64>::with_capacity(n as usize));
    let insert = timed(threads, n, |t, th| {
        for k in share(n, t, th) {
            map.write().unwrap().insert(k, 64 + k);
        }
    });
    let found = std::sync::atomic::AtomicU64::new(0);
    let get = timed(threads, n, |t, th| {
        let mut hits = 0;
        for k in share(n, t, th) {
            hits += u64::from(map.read().unwrap().get(&k) == Some(&(64 + k)));
        }
        found.fetch_add(hits, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(found.into_inner(), n);
    (insert, get)
}

fn main() {
    let Config { keys: n } = parse_args();
    // 2 to 4 keys per bucket of 7 entries: `n / 4` buckets, rounded up to a power of two.
    let table_bits = (n.div_ceil(4)).next_power_of_two().trailing_zeros();
    println!("faster-index bench: {n} keys of 8 bytes");
    let mut rows = Vec::new();
    for threads in [1u64, 2] {
        let (ins, find) = bench_index(n, threads, table_bits);
        let (map_ins, map_get) = bench_map(n, threads);
        rows.push(("insert", threads, ins, map_ins));
        rows.push(("find", threads, find, map_get));
    }
    println!();
    println!("| op     | threads | faster-index Mops/s | HashMap Mops/s          | ratio |");
    println!("|--------|---------|---------------------|-------------------------|-------|");
    for (op, threads, ours, map) in rows {
        let baseline = if threads == 1 {
            ""
        } else {
            " (RwLock<HashMap>)"
        };
        println!(
            "| {op:<6} | {threads:>7} | {ours:>19.2} | {:<23} | {:>5.2} |",
            format!("{map:.2}{baseline}"),
            ours / map
        );
    }
}
