//! A tour of the two finished layers, epoch protection and storage devices.
//!
//! `cargo run --release -p faster --example tour [-- --dir DIR] [--mib N]`
//!
//! 1. Opens the default device (io_uring when the kernel allows it) in a
//!    fresh directory, writes N MiB of checksummed 64 KiB pages with many
//!    writes in flight, flushes, reopens, reads every page back and checks it.
//! 2. Runs readers against a writer that retires objects through
//!    `bump_epoch`, and checks that no object was reclaimed under a guard and
//!    that every one was reclaimed exactly once.
//! 3. Runs participants through a series of phases and checks that exactly
//!    one of them was told it finished each phase last.

use faster::device::{self, AlignedBuf, DeviceOptions};
use faster::epoch::LightEpoch;
use std::error::Error;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Instant;

const PAGE: usize = 64 * 1024;
const IN_FLIGHT: usize = 32;

fn main() {
    if let Err(e) = run() {
        eprintln!("tour failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let (dir, mib) = parse_args()?;
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    println!("faster tour: epoch protection and storage devices\n");
    device_part(&dir, mib)?;
    epoch_reclaim_part()?;
    phase_part()?;
    println!("\nall checks passed");
    Ok(())
}

fn parse_args() -> Result<(Option<PathBuf>, usize), Box<dyn Error>> {
    let mut dir = None;
    let mut mib = 256;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = Some(PathBuf::from(args.next().ok_or("--dir needs a path")?)),
            "--mib" => mib = args.next().ok_or("--mib needs a number")?.parse()?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    if mib == 0 {
        return Err("--mib must be at least 1".into());
    }
    Ok((dir, mib))
}

/// Fills a page with bytes derived from its index, so any mix-up shows.
fn fill(page: &mut [u8], index: u64) {
    let mut x = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in page.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

fn device_part(dir: &std::path::Path, mib: usize) -> Result<(), Box<dyn Error>> {
    let pages = (mib * 1024 * 1024 / PAGE) as u64;
    let options = DeviceOptions::default().with_segment_size(64 * 1024 * 1024);
    let dev = device::open_default(dir, options.clone())?;
    println!(
        "1. device: {:?} in {} (O_DIRECT: {})",
        dev.kind(),
        dir.display(),
        dev.is_direct()
    );

    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let t = Instant::now();
    for index in 0..pages {
        while dev.in_flight() >= IN_FLIGHT {
            dev.wait()?;
        }
        let mut buf = AlignedBuf::new(PAGE, dev.alignment())?;
        fill(&mut buf, index);
        let errors = errors.clone();
        dev.write(
            index * PAGE as u64,
            Box::new(buf),
            Box::new(move |r| {
                if let Err(e) = r {
                    errors.lock().unwrap().push(format!("write {index}: {e}"));
                }
            }),
        )?;
    }
    device::drain(dev.as_ref())?;
    dev.flush()?;
    let secs = t.elapsed().as_secs_f64();
    if let Some(e) = errors.lock().unwrap().first() {
        return Err(e.clone().into());
    }
    println!(
        "   wrote {mib} MiB in {} KiB pages, {IN_FLIGHT} in flight, flushed: {:.2} GB/s",
        PAGE / 1024,
        (pages * PAGE as u64) as f64 / secs / 1e9
    );
    drop(dev);

    let dev = device::open_default(dir, options)?;
    let bad = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    for index in 0..pages {
        while dev.in_flight() >= IN_FLIGHT {
            dev.wait()?;
        }
        let (bad, errors) = (bad.clone(), errors.clone());
        dev.read(
            index * PAGE as u64,
            AlignedBuf::new(PAGE, dev.alignment())?,
            Box::new(move |r| match r {
                Ok(buf) => {
                    let mut want = vec![0u8; PAGE];
                    fill(&mut want, index);
                    if buf[..] != want[..] {
                        bad.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Err(e) => errors.lock().unwrap().push(format!("read {index}: {e}")),
            }),
        )?;
    }
    device::drain(dev.as_ref())?;
    let secs = t.elapsed().as_secs_f64();
    if let Some(e) = errors.lock().unwrap().first() {
        return Err(e.clone().into());
    }
    let bad = bad.load(Ordering::SeqCst);
    if bad > 0 {
        return Err(format!("{bad} pages read back wrong").into());
    }
    println!(
        "   reopened and verified all {pages} pages: {:.2} GB/s",
        (pages * PAGE as u64) as f64 / secs / 1e9
    );
    Ok(())
}

fn epoch_reclaim_part() -> Result<(), Box<dyn Error>> {
    const OBJECTS: usize = 200_000;
    const LIVE: u8 = 1;
    const RECLAIMED: u8 = 2;
    let epoch = LightEpoch::with_capacity(8, 64)?;
    let state: Arc<Vec<AtomicU8>> = Arc::new((0..OBJECTS).map(|_| AtomicU8::new(0)).collect());
    let current = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicUsize::new(0));
    state[0].store(LIVE, Ordering::SeqCst);
    let t = Instant::now();
    // One reader: with the writer that fills this 2-core machine; spinning
    // readers beyond the core count would only steal the writer's time slices.
    let readers: Vec<_> = (0..1)
        .map(|_| {
            let (epoch, state, current, stop) =
                (epoch.clone(), state.clone(), current.clone(), stop.clone());
            thread::spawn(move || -> Result<u64, String> {
                let mut p = epoch.register().map_err(|e| e.to_string())?;
                let mut guard = p.protect();
                let mut reads = 0u64;
                while stop.load(Ordering::SeqCst) == 0 {
                    let obj = current.load(Ordering::SeqCst);
                    if state[obj].load(Ordering::SeqCst) != LIVE {
                        return Err(format!("object {obj} reclaimed under a guard"));
                    }
                    reads += 1;
                    if reads % 32 == 0 {
                        guard.refresh();
                    }
                }
                Ok(reads)
            })
        })
        .collect();
    let mut writer = epoch.register()?;
    let mut guard = writer.protect();
    for next in 1..OBJECTS {
        state[next].store(LIVE, Ordering::SeqCst);
        let old = current.swap(next, Ordering::SeqCst);
        let state = state.clone();
        guard.bump_epoch(move || state[old].store(RECLAIMED, Ordering::SeqCst));
    }
    drop(guard);
    stop.store(1, Ordering::SeqCst);
    let mut reads = 0;
    for r in readers {
        reads += r.join().map_err(|_| "reader panicked")??;
    }
    epoch.drain();
    let reclaimed = state
        .iter()
        .filter(|s| s.load(Ordering::SeqCst) == RECLAIMED)
        .count();
    if reclaimed != OBJECTS - 1 {
        return Err(format!("{reclaimed} of {} objects reclaimed", OBJECTS - 1).into());
    }
    println!(
        "2. epoch: {} objects retired under {reads} protected reads in {:.2}s; \
         none reclaimed early, all reclaimed once (epoch now {}, safe {})",
        OBJECTS - 1,
        t.elapsed().as_secs_f64(),
        epoch.current_epoch(),
        epoch.safe_to_reclaim_epoch()
    );
    Ok(())
}

fn phase_part() -> Result<(), Box<dyn Error>> {
    const PARTICIPANTS: usize = 3;
    const PHASES: u64 = 1_000;
    let epoch = LightEpoch::with_capacity(PARTICIPANTS, 1)?;
    let start = Arc::new(Barrier::new(PARTICIPANTS));
    let lasts = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..PARTICIPANTS)
        .map(|_| {
            let (epoch, start, lasts) = (epoch.clone(), start.clone(), lasts.clone());
            thread::spawn(move || -> Result<(), String> {
                let mut g = epoch.register().map_err(|e| e.to_string())?.into_guard();
                start.wait();
                for phase in 1..=PHASES {
                    if g.finish_phase(phase) {
                        lasts.fetch_add(1, Ordering::SeqCst);
                    }
                    while epoch.completed_phase() < phase {
                        std::hint::spin_loop();
                    }
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "participant panicked")??;
    }
    let lasts = lasts.load(Ordering::SeqCst);
    if lasts as u64 != PHASES {
        return Err(format!("{lasts} last finishers for {PHASES} phases").into());
    }
    println!(
        "3. phases: {PARTICIPANTS} participants finished {PHASES} phases; \
         exactly one was last each time"
    );
    Ok(())
}
