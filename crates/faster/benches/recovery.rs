//! Recovery time of the store against a `std::fs` sequential read of the same bytes, in the
//! same run.
//!
//! `cargo bench -p faster --bench recovery [-- --quick]` (or `cargo xtask bench recovery`):
//! loads 1 M keys with 1 KiB values (~1 GB of log; 64 K keys, ~64 MB, with `--quick`) into a
//! store in a directory under `target/` (the real disk) with 64 MiB of log memory and the
//! [`LogDevice::Auto`] device, takes an index checkpoint of the empty store and, after the
//! load, a log-only fold-over checkpoint (and, in a second store, a log-only snapshot
//! checkpoint), so that recovery replays the whole log from disk (the worst case); drops the
//! store and the page cache, and times
//! [`FasterKv::recover`]. Then drops the page cache again and times a sequential read of the
//! store's log segment files (`<dir>/log/log.*`, plus the snapshot's segment files for the
//! snapshot case; each file up to its size before recovery) with `std::fs`. Prints a table with the ratio, then checks (untimed) that a
//! sample of keys reads back.
//!
//! The page cache is dropped by writing `3` to `/proc/sys/vm/drop_caches` (needs root); where
//! that is refused the table says the numbers are warm-cache.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faster::{CheckpointOptions, Config, FasterKv, LogCapture, LogDevice};

const VALUE: usize = 1024;

fn gbps(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e9
}

/// Writes back dirty pages and drops the page cache; false if not permitted.
fn drop_caches() -> bool {
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", b"3\n").is_ok()
}

fn config(dir: &Path) -> Config {
    Config::new(dir)
        .with_table_bits(18)
        .with_log_memory(64 << 20)
        .with_page_size(1 << 20)
        .with_log_device(LogDevice::Auto)
}

fn value_of(key: u64) -> Vec<u8> {
    let mut v = vec![(key % 251) as u8; VALUE];
    v[..8].copy_from_slice(&key.to_le_bytes());
    v
}

/// The files of `dir` whose names start with `prefix.`, in segment order.
fn segments(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix(prefix)?.strip_prefix('.')?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// Reads the first `len` bytes of each of `files` sequentially in 1 MiB chunks: (bytes, time).
fn read_fs(files: &[(PathBuf, u64)]) -> (u64, Duration) {
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    let mut sum = 0u64;
    let start = Instant::now();
    for (path, len) in files {
        let mut f = std::fs::File::open(path).expect("open").take(*len);
        loop {
            let n = f.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            sum = sum.wrapping_add(buf[n - 1] as u64);
            bytes += n as u64;
        }
    }
    let t = start.elapsed();
    std::hint::black_box(sum);
    (bytes, t)
}

/// This process's `read_bytes` from `/proc/self/io` (bytes it caused to be read from
/// storage), if available.
fn proc_read_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("read_bytes:"))?
        .trim()
        .parse()
        .ok()
}

struct Row {
    case: &'static str,
    bytes: u64,
    t_recover: Duration,
    t_fs: Duration,
    stats: String,
}

fn run_case(dir: &Path, keys: u64, snapshot: bool, cold: &mut bool) -> Row {
    let _ = std::fs::remove_dir_all(dir);
    let case = if snapshot { "snapshot" } else { "fold-over" };
    let (kind, tail, info) = {
        let store = FasterKv::open(config(dir)).expect("open");
        let device = store.hlog().device();
        let kind = format!("{:?}, O_DIRECT: {}", device.kind(), device.is_direct());
        // The worst case for recovery: the index checkpoint is taken on the empty store and
        // the log checkpoint after the load, so replay scans the whole log from disk.
        store
            .checkpoint_with(CheckpointOptions::index_only())
            .expect("index checkpoint")
            .wait()
            .expect("index checkpoint wait");
        {
            let mut s = store.start_session();
            for k in 0..keys {
                s.upsert(&k.to_le_bytes(), &value_of(k)).expect("upsert");
            }
        }
        let handle = if snapshot {
            store.checkpoint_with(CheckpointOptions::log_only().with_log(LogCapture::Snapshot))
        } else {
            store.checkpoint_with(CheckpointOptions::log_only())
        };
        let info = handle.expect("checkpoint").wait().expect("checkpoint wait");
        let tail = store.hlog().tail_address().raw();
        (kind, tail, info)
    };
    let mut files = segments(&dir.join("log"), "log");
    if snapshot {
        let snap = dir
            .join("checkpoints")
            .join(&info.token)
            .join(faster::recovery::SNAPSHOT_DIR);
        files.extend(segments(&snap, faster::recovery::SNAPSHOT_DIR));
    }
    // Their sizes now: recovery from a snapshot copies it into the log files.
    let files: Vec<(PathBuf, u64)> = files
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).expect("stat").len();
            (p, len)
        })
        .collect();
    println!(
        "{case}: {keys} keys, log tail {tail} B, checkpoint {} ({:.3} s, index {} B, log {} B), device {kind}",
        info.token,
        info.duration.as_secs_f64(),
        info.index_bytes,
        info.log_bytes
    );

    *cold &= drop_caches();
    let read_before = proc_read_bytes();
    let start = Instant::now();
    let (store, recovered) = FasterKv::recover(config(dir)).expect("recover");
    let t_recover = start.elapsed();
    let disk_read = match (read_before, proc_read_bytes()) {
        (Some(a), Some(b)) => format!("{} B", b.saturating_sub(a)),
        _ => "unknown".to_string(),
    };
    assert_eq!(recovered.token, info.token);
    let r = &recovered.replay;
    let stats = format!(
        "{case} replay: snapshot {} B, scanned {}, applied {}, invalidated {}, dropped {}; \
         read from storage during recovery: {disk_read}",
        r.snapshot_bytes,
        r.records_scanned,
        r.records_applied,
        r.records_invalidated,
        r.entries_dropped
    );

    // Untimed: a sample of keys (first, last, and a stride through the rest) reads back.
    {
        let mut s = store.start_session();
        let stride = (keys / 1000).max(1);
        let sample = (0..keys).step_by(stride as usize).chain([keys - 1]);
        let mut checked = 0u64;
        for k in sample {
            let v = s.read(&k.to_le_bytes()).expect("read");
            assert_eq!(v.as_deref(), Some(&value_of(k)[..]), "{case}: key {k}");
            checked += 1;
        }
        assert_eq!(s.read(&keys.to_le_bytes()).expect("read"), None);
        println!("{case}: {checked} sampled keys read back correctly after recovery");
    }
    drop(store);

    *cold &= drop_caches();
    let (bytes, t_fs) = read_fs(&files);
    let _ = std::fs::remove_dir_all(dir);
    Row {
        case,
        bytes,
        t_recover,
        t_fs,
        stats,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let keys: u64 = if quick { 64 << 10 } else { 1 << 20 };
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("recovery-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");

    let mut cold = true;
    let rows = [
        run_case(&root.join("fold-over"), keys, false, &mut cold),
        run_case(&root.join("snapshot"), keys, true, &mut cold),
    ];
    let _ = std::fs::remove_dir_all(&root);

    for row in &rows {
        println!("{}", row.stats);
    }
    println!(
        "recovery of {keys} keys x {VALUE} B values, 64 MiB log memory, 1 MiB pages; {}",
        if cold {
            "page cache dropped before each timing (cold)"
        } else {
            "could not drop the page cache: numbers are WARM-CACHE"
        }
    );
    println!("| case | log bytes | recovery (s) | GB/s | std::fs read (s) | GB/s | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let (g_rec, g_fs) = (gbps(r.bytes, r.t_recover), gbps(r.bytes, r.t_fs));
        println!(
            "| {} | {} | {:.3} | {g_rec:.3} | {:.3} | {g_fs:.3} | {:.2} |",
            r.case,
            r.bytes,
            r.t_recover.as_secs_f64(),
            r.t_fs.as_secs_f64(),
            g_rec / g_fs
        );
    }
    println!(
        "ratio = recovery GB/s / std::fs read GB/s (1.00 = recovery as fast as reading the bytes)"
    );
}
