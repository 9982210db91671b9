//! Device benchmark: sequential 1 MiB writes (GB/s, final flush included) and random 4 KiB
//! reads (IOPS at queue depth 1 and 64) for the io_uring device, the file device and a plain
//! `std::fs` loop as the baseline.
//!
//! `cargo bench -p faster-device --bench device -- [--quick] [--dir DIR] [--size-mib N]
//! [--seconds S]`
//!
//! Before each read test the page cache of the data files is dropped with
//! `posix_fadvise(DONTNEED)`, so buffered rows start cold (they warm up during the run);
//! `O_DIRECT` rows never use the cache.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use faster_device::{AlignedBuf, Device, DeviceOptions, FileDevice, IoSource};

const BLOCK: usize = 4096;
const CHUNK: usize = 1 << 20;

struct Config {
    dir: PathBuf,
    size: u64,
    seconds: f64,
    quick: bool,
}

fn parse_args() -> Config {
    let mut quick = false;
    let mut dir = None;
    let mut size_mib = None;
    let mut seconds = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--dir" => dir = args.next().map(PathBuf::from),
            "--size-mib" => size_mib = args.next().and_then(|s| s.parse::<u64>().ok()),
            "--seconds" => seconds = args.next().and_then(|s| s.parse::<f64>().ok()),
            _ => {} // `cargo bench` passes `--bench`; ignore what we do not know.
        }
    }
    let size_mib = size_mib.unwrap_or(if quick { 64 } else { 1024 });
    let dir = dir
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/device-bench"));
    Config {
        dir,
        size: size_mib << 20,
        seconds: seconds.unwrap_or(if quick { 0.2 } else { 2.0 }),
        quick,
    }
}

/// A write source sharing one immutable buffer between requests.
struct Shared(Arc<AlignedBuf>);

// SAFETY: the `Arc`'d buffer is never mutated (no `&mut` to it exists once shared) and its heap
// block does not move while any clone is alive.
unsafe impl IoSource for Shared {
    fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// xorshift64*, seeded.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn block(&mut self, size: u64) -> u64 {
        (self.next() % (size / BLOCK as u64)) * BLOCK as u64
    }
}

/// Drops the page cache of every file in `dir`.
fn drop_cache(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let f = File::open(e.unwrap().path()).unwrap();
        // SAFETY: plain system call on a valid open file descriptor; no memory is passed.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise");
    }
}

struct Row {
    name: String,
    direct: String,
    write_gbs: f64,
    qd1: f64,
    qd64: f64,
}

fn device_seq_write(dev: &dyn Device, size: u64) -> f64 {
    let mut buf = AlignedBuf::new(CHUNK, BLOCK).unwrap();
    buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let buf = Arc::new(buf);
    let start = Instant::now();
    let mut off = 0;
    while off < size {
        while dev.in_flight() >= 16 {
            dev.wait().unwrap();
        }
        let done = Box::new(|r: faster_device::Result<()>| r.unwrap());
        dev.write(off, Box::new(Shared(Arc::clone(&buf))), done)
            .unwrap();
        dev.poll().unwrap();
        off += CHUNK as u64;
    }
    faster_device::drain(dev).unwrap();
    dev.flush().unwrap();
    size as f64 / start.elapsed().as_secs_f64() / 1e9
}

fn device_random_read(dev: &dyn Device, size: u64, qd: usize, secs: f64, seed: u64) -> f64 {
    let (tx, rx) = mpsc::channel::<AlignedBuf>();
    for _ in 0..qd {
        tx.send(AlignedBuf::new(BLOCK, BLOCK).unwrap()).unwrap();
    }
    let mut rng = Rng(seed);
    let deadline = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < deadline {
        // Keep `qd` reads in flight: submit while buffers are free, then reap.
        while let Ok(buf) = rx.try_recv() {
            let tx = tx.clone();
            dev.read(
                rng.block(size),
                buf,
                Box::new(move |r| tx.send(r.unwrap()).unwrap()),
            )
            .unwrap();
        }
        ops += dev.wait().unwrap() as u64;
    }
    ops += {
        let before = dev.in_flight() as u64;
        faster_device::drain(dev).unwrap();
        before
    };
    ops as f64 / start.elapsed().as_secs_f64()
}

fn bench_device(
    name: &str,
    dir: &Path,
    opts: DeviceOptions,
    uring: bool,
    cfg: &Config,
    seed: u64,
) -> Row {
    let _ = std::fs::remove_dir_all(dir);
    let dev: Box<dyn Device> = if uring {
        #[cfg(target_os = "linux")]
        {
            Box::new(faster_device::UringDevice::open(dir, opts).unwrap())
        }
        #[cfg(not(target_os = "linux"))]
        {
            Box::new(FileDevice::open(dir, opts).unwrap())
        }
    } else {
        Box::new(FileDevice::open(dir, opts).unwrap())
    };
    let write_gbs = device_seq_write(&*dev, cfg.size);
    drop_cache(dir);
    let qd1 = device_random_read(&*dev, cfg.size, 1, cfg.seconds, seed);
    drop_cache(dir);
    let qd64 = device_random_read(&*dev, cfg.size, 64, cfg.seconds, seed);
    let direct = if dev.is_direct() {
        "O_DIRECT"
    } else {
        "buffered"
    }
    .to_owned();
    drop(dev);
    let _ = std::fs::remove_dir_all(dir);
    Row {
        name: name.to_owned(),
        direct,
        write_gbs,
        qd1,
        qd64,
    }
}

fn bench_std(dir: &Path, cfg: &Config, seed: u64) -> Row {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("data");
    let chunk: Vec<u8> = (0..CHUNK).map(|i| i as u8).collect();
    let start = Instant::now();
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(&path)
        .unwrap();
    let mut off = 0;
    while off < cfg.size {
        f.write_all(&chunk).unwrap();
        off += CHUNK as u64;
    }
    f.sync_data().unwrap();
    let write_gbs = cfg.size as f64 / start.elapsed().as_secs_f64() / 1e9;
    let reads = |secs: f64| {
        drop_cache(dir);
        let mut rng = Rng(seed);
        let mut buf = vec![0u8; BLOCK];
        let deadline = Duration::from_secs_f64(secs);
        let start = Instant::now();
        let mut ops = 0u64;
        while start.elapsed() < deadline {
            for _ in 0..64 {
                f.read_exact_at(&mut buf, rng.block(cfg.size)).unwrap();
            }
            ops += 64;
        }
        ops as f64 / start.elapsed().as_secs_f64()
    };
    let qd1 = reads(cfg.seconds);
    // There is no queue in a synchronous loop: "QD64" is the same loop again.
    let qd64 = reads(cfg.seconds);
    let _ = std::fs::remove_dir_all(dir);
    Row {
        name: "std::fs loop".to_owned(),
        direct: "buffered".to_owned(),
        write_gbs,
        qd1,
        qd64,
    }
}

fn main() {
    let cfg = parse_args();
    let seed = 0x5EED_F00D_u64;
    std::fs::create_dir_all(&cfg.dir).unwrap();
    println!(
        "faster-device bench: dir {}, {} MiB written in 1 MiB writes (16 in flight for devices; \
         time includes the final fdatasync), random 4 KiB reads for {:.1} s per cell, seed {seed:#x}{}",
        cfg.dir.display(),
        cfg.size >> 20,
        cfg.seconds,
        if cfg.quick { " (--quick)" } else { "" }
    );
    println!(
        "page cache dropped (posix_fadvise DONTNEED) before each read test; buffered rows warm it during the run"
    );
    let base = DeviceOptions::default()
        .with_segment_size(1 << 30)
        .with_queue_depth(128);
    let mut rows = Vec::new();
    if cfg!(target_os = "linux") {
        rows.push(bench_device(
            "io_uring",
            &cfg.dir.join("uring"),
            base.clone(),
            true,
            &cfg,
            seed,
        ));
        rows.push(bench_device(
            "io_uring (buffered)",
            &cfg.dir.join("uring-buf"),
            base.clone().with_direct_io(false),
            true,
            &cfg,
            seed,
        ));
    }
    rows.push(bench_device(
        "file device",
        &cfg.dir.join("file"),
        base.clone(),
        false,
        &cfg,
        seed,
    ));
    rows.push(bench_device(
        "file device (buffered)",
        &cfg.dir.join("file-buf"),
        base.clone().with_direct_io(false),
        false,
        &cfg,
        seed,
    ));
    let std_row = bench_std(&cfg.dir.join("std"), &cfg, seed);
    rows.push(std_row);
    let b = rows.last().map(|r| (r.write_gbs, r.qd1, r.qd64)).unwrap();

    println!();
    println!(
        "{:<24} {:<9} {:>10} {:>7} {:>12} {:>7} {:>12} {:>7}",
        "device", "I/O", "seq GB/s", "ratio", "4K QD1 IOPS", "ratio", "4K QD64 IOPS", "ratio"
    );
    println!("{}", "-".repeat(24 + 9 + 10 + 7 + 12 + 7 + 12 + 7 + 7));
    for r in &rows {
        println!(
            "{:<24} {:<9} {:>10.3} {:>6.2}x {:>12.0} {:>6.2}x {:>12.0} {:>6.2}x",
            r.name,
            r.direct,
            r.write_gbs,
            r.write_gbs / b.0,
            r.qd1,
            r.qd1 / b.1,
            r.qd64,
            r.qd64 / b.2
        );
    }
    println!();
    println!(
        "ratios are relative to the std::fs loop; its QD64 column is the same synchronous loop as QD1."
    );
    println!(
        "the file device performs each request synchronously at submission, so its QD64 is also effectively QD1."
    );
}
