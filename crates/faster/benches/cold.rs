//! Cold reads: uniform random reads of a store ten times larger than its log memory, against
//! random 4 KiB `pread`s of the same log files in the same run.
//!
//! `cargo bench -p faster --bench cold [-- --quick] [--seconds S]` (or `cargo xtask bench
//! cold`): loads keys of 16 bytes with 100-byte values (about 640 MiB of records; 64 MiB with
//! `--quick`) into a store under `target/` (the real disk) with 64 MiB of log memory (6.4
//! MiB with `--quick`) and the [`LogDevice::Auto`] device, drops the page cache, then times
//! for S seconds each (default 10, 3 with `--quick`):
//!
//! * `read`: one blocking [`faster::Session::read`] at a time (queue depth 1), every value
//!   checked;
//! * `read_async x32`: [`faster::Session::read_async`] with up to 32 reads pending, finished by
//!   `complete_pending`;
//! * `pread 4 KiB`: `O_DIRECT` reads of random 4 KiB blocks of the log's segment files, one at
//!   a time (the device's own queue-depth-1 rate).
//!
//! Prints reads per second and the ratio of each store row to the `pread` row. The page cache
//! is dropped by writing `3` to `/proc/sys/vm/drop_caches` (needs root); where that is
//! refused the table says the numbers are warm-cache.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faster::{Config, FasterKv, LogDevice};

const VALUE: usize = 100;

fn drop_caches() -> bool {
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", b"3\n").is_ok()
}

fn key(k: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&k.to_le_bytes());
    b[8..].copy_from_slice(&(!k).to_le_bytes());
    b
}

fn value(k: u64) -> Vec<u8> {
    let mut v = vec![(k % 251) as u8; VALUE];
    v[..8].copy_from_slice(&k.to_le_bytes());
    v
}

/// xorshift64*: the same key sequence in every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn config(dir: &Path, memory: u64, keys: u64) -> Config {
    let bits = (64 - keys.leading_zeros()).saturating_sub(2).max(10);
    Config::new(dir)
        .with_table_bits(bits)
        .with_log_memory(memory)
        .with_page_size(1 << 20)
        .with_log_device(LogDevice::Auto)
}

fn timed_reads(store: &FasterKv, keys: u64, seconds: Duration) -> f64 {
    let mut s = store.start_session();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < seconds {
        for _ in 0..64 {
            let k = rng.below(keys);
            let v = s.read(&key(k)).expect("read");
            assert_eq!(v.as_deref(), Some(&value(k)[..]), "key {k}");
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn timed_async_reads(store: &FasterKv, keys: u64, seconds: Duration, depth: usize) -> f64 {
    let mut s = store.start_session();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut issued = 0u64;
    while start.elapsed() < seconds {
        while s.pending_count() < depth {
            let k = rng.below(keys);
            let d = done.clone();
            // Answered at once (in memory) or pending: the context runs exactly once.
            let _status = s
                .read_async(&key(k), move |r| {
                    assert_eq!(r.expect("read").as_deref(), Some(&value(k)[..]), "key {k}");
                    d.fetch_add(1, Ordering::Relaxed);
                })
                .expect("read_async");
            issued += 1;
        }
        s.complete_pending(false).expect("complete_pending");
    }
    let t = start.elapsed().as_secs_f64();
    s.complete_pending(true).expect("complete_pending");
    assert_eq!(done.load(Ordering::Relaxed), issued);
    issued as f64 / t
}

fn timed_preads(files: &[(PathBuf, u64)], seconds: Duration) -> f64 {
    use std::os::unix::fs::OpenOptionsExt;
    // O_DIRECT, as the store reads: the device's own rate, not a cache's.
    let opened: Vec<(std::fs::File, u64)> = files
        .iter()
        .map(|(p, len)| {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(p)
                .expect("open");
            (f, *len / 4096)
        })
        .filter(|(_, blocks)| *blocks > 0)
        .collect();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut buf = faster::device::AlignedBuf::new(4096, 4096).expect("buffer");
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < seconds {
        let (f, blocks) = &opened[rng.below(opened.len() as u64) as usize];
        f.read_exact_at(&mut buf, rng.below(*blocks) * 4096)
            .expect("pread");
        n += 1;
    }
    std::hint::black_box(&buf);
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(if quick { 3 } else { 10 }));
    let memory: u64 = if quick { 8 << 20 } else { 64 << 20 };
    let record = 32 + 16 + VALUE.next_multiple_of(8) as u64;
    let keys = memory * 10 / record;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cold-bench");
    let _ = std::fs::remove_dir_all(&dir);
    let store = FasterKv::open(config(&dir, memory, keys)).expect("open");
    let load = Instant::now();
    {
        let mut s = store.start_session();
        for k in 0..keys {
            s.upsert(&key(k), &value(k)).expect("upsert");
        }
    }
    let device = store.hlog().device();
    println!(
        "{keys} keys of 16 B with {VALUE}-byte values ({} MiB of log) through {} MiB of log \
         memory, loaded in {:.1} s; device {:?}, O_DIRECT: {}",
        store.hlog().tail_address().raw() >> 20,
        memory >> 20,
        load.elapsed().as_secs_f64(),
        device.kind(),
        device.is_direct()
    );
    let mut cold = drop_caches();
    let per_op = timed_reads(&store, keys, seconds);
    cold &= drop_caches();
    let batched = timed_async_reads(&store, keys, seconds, 32);
    drop(store);
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir.join("log")).expect("log dir") {
        let p = e.expect("entry").path();
        let len = std::fs::metadata(&p).expect("stat").len();
        files.push((p, len));
    }
    cold &= drop_caches();
    let pread = timed_preads(&files, seconds);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "uniform random reads, {} s each; {}",
        seconds.as_secs_f64(),
        if cold {
            "page cache dropped before each timing (cold)"
        } else {
            "could not drop the page cache: numbers are WARM-CACHE"
        }
    );
    println!("| reads | per second | ratio to pread |");
    println!("|---|---:|---:|");
    for (name, rate) in [
        ("read (blocking)", per_op),
        ("read_async x32", batched),
        ("pread 4 KiB", pread),
    ] {
        println!("| {name} | {rate:.0} | {:.2} |", rate / pread);
    }
}
