//! Append throughput of the hybrid log with flushing on, against a `std::fs` sequential-write
//! baseline of the same bytes in the same run.
//!
//! `cargo bench -p faster-hlog --bench hlog [-- --quick]`: appends 1 GiB (128 MiB with
//! `--quick`) of records with 1 KiB values through 64 MiB of memory (1 MiB pages) into
//! `faster_device::open_default` in a directory under `target/`, flushes everything and makes
//! it durable; then writes the same number of bytes with a `BufWriter` in record-sized chunks
//! and one final `fdatasync`. Prints a table with the ratio.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faster_device::{Device, DeviceOptions};
use faster_epoch::LightEpoch;
use faster_hlog::{Hlog, HlogConfig, NewRecord};

const VALUE: usize = 1024;

fn gbps(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e9
}

fn bench_hlog(dir: &std::path::Path, total: u64) -> (u64, u64, Duration, String) {
    let epoch = LightEpoch::new();
    let device: Arc<dyn Device> =
        Arc::from(faster_device::open_default(dir, DeviceOptions::default()).expect("device"));
    let kind = format!("{:?}, O_DIRECT: {}", device.kind(), device.is_direct());
    let config = HlogConfig::default()
        .with_page_size(1 << 20)
        .with_memory_size(64 << 20);
    let log = Hlog::new(config, device.clone(), epoch.clone()).expect("log");
    let mut participant = epoch.register().expect("participant");
    let mut guard = participant.protect();
    let mut value = vec![0x5au8; VALUE];
    let mut records = 0u64;
    let start = Instant::now();
    while log.tail_address().raw() < total {
        value[..8].copy_from_slice(&records.to_le_bytes());
        let key = records.to_le_bytes();
        log.append(&mut guard, &NewRecord::new(&key, &value))
            .expect("append");
        records += 1;
        if records % 64 == 0 {
            guard.refresh();
        }
    }
    let tail = log.tail_address();
    log.flush_until(&mut guard, tail).expect("flush");
    device.flush().expect("durable");
    let elapsed = start.elapsed();
    (tail.raw(), records, elapsed, kind)
}

fn bench_fs(path: &std::path::Path, total: u64, chunk: usize) -> Duration {
    let data = vec![0xa5u8; chunk];
    let start = Instant::now();
    let file = std::fs::File::create(path).expect("create");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut written = 0u64;
    while written < total {
        w.write_all(&data).expect("write");
        written += chunk as u64;
    }
    let file = w.into_inner().expect("flush");
    file.sync_data().expect("fdatasync");
    start.elapsed()
}

/// The cost of the flush path's page copy on its own: `total` bytes copied 1 MiB at a time
/// from atomic words (as the log's frames are read) into an aligned buffer.
fn bench_copy(total: u64) -> Duration {
    use std::sync::atomic::{AtomicU64, Ordering};
    let page = 1usize << 20;
    let frames: Vec<AtomicU64> = (0..(64 << 20) / 8).map(AtomicU64::new).collect();
    let mut out = faster_device::AlignedBuf::new(page, 4096).expect("buf");
    let start = Instant::now();
    let mut copied = 0u64;
    let mut frame = 0usize;
    while copied < total {
        let words = &frames[frame * page / 8..(frame + 1) * page / 8];
        for (w, chunk) in words.iter().zip(out.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        std::hint::black_box(&out);
        copied += page as u64;
        frame = (frame + 1) % 64;
    }
    start.elapsed()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let total: u64 = if quick { 128 << 20 } else { 1 << 30 };
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("hlog-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");

    let (bytes, records, t_hlog, kind) = bench_hlog(&root.join("hlog"), total);
    let chunk = NewRecord::new(&[0; 8], &[0; VALUE]).size().expect("size") as usize;
    let t_fs = bench_fs(&root.join("baseline.dat"), bytes, chunk);
    let _ = std::fs::remove_dir_all(&root);
    let t_copy = bench_copy(bytes);

    let (g_hlog, g_fs) = (gbps(bytes, t_hlog), gbps(bytes, t_fs));
    println!(
        "hlog append, {} MiB of {chunk}-byte records ({records} records, 1 KiB values), 64 MiB memory, 1 MiB pages; device: {kind}",
        bytes >> 20
    );
    println!("| case | bytes | time (s) | GB/s | ratio vs std::fs |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| hlog append + flush + device.flush | {bytes} | {:.3} | {g_hlog:.3} | {:.2} |",
        t_hlog.as_secs_f64(),
        g_hlog / g_fs
    );
    println!(
        "| std::fs BufWriter + fdatasync | {bytes} | {:.3} | {g_fs:.3} | 1.00 |",
        t_fs.as_secs_f64()
    );
    println!(
        "| (flush-path page copy alone, frame -> AlignedBuf) | {bytes} | {:.3} | {:.3} | - |",
        t_copy.as_secs_f64(),
        gbps(bytes, t_copy)
    );
}
