//! One conformance suite, instantiated for each device (io_uring, file, memory) by the
//! `conformance!` macro at the bottom. File-backed devices live under `CARGO_TARGET_TMPDIR`,
//! on the real disk, so `O_DIRECT` alignment rules are the real ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use faster_device::{
    AlignedBuf, Device, DeviceError, DeviceKind, DeviceOptions, Fault, FaultInjector, FileDevice,
    IoSource, MemoryDevice, MemoryStore, OpKind, Result,
};

const ALIGN: usize = 4096;
const SEG: u64 = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Uring,
    File,
    Memory,
}

struct Fixture {
    kind: Kind,
    dir: tempfile::TempDir,
    store: MemoryStore,
}

impl Fixture {
    fn new(kind: Kind) -> Self {
        Fixture {
            kind,
            dir: tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
            store: MemoryStore::new(),
        }
    }

    fn options(&self) -> DeviceOptions {
        DeviceOptions::default()
            .with_alignment(ALIGN)
            .with_segment_size(SEG)
            .with_queue_depth(32)
    }

    fn open(&self, options: DeviceOptions) -> Box<dyn Device> {
        let dev: Box<dyn Device> = match self.kind {
            #[cfg(target_os = "linux")]
            Kind::Uring => {
                Box::new(faster_device::UringDevice::open(self.dir.path(), options).unwrap())
            }
            #[cfg(not(target_os = "linux"))]
            Kind::Uring => Box::new(FileDevice::open(self.dir.path(), options).unwrap()),
            Kind::File => Box::new(FileDevice::open(self.dir.path(), options).unwrap()),
            Kind::Memory => Box::new(MemoryDevice::open(self.store.clone(), options).unwrap()),
        };
        let expect = match self.kind {
            Kind::Uring if cfg!(target_os = "linux") => DeviceKind::IoUring,
            Kind::Uring | Kind::File => DeviceKind::File,
            Kind::Memory => DeviceKind::Memory,
        };
        assert_eq!(dev.kind(), expect);
        dev
    }

    /// The numbers of the segments that exist: files `log.<n>` in the directory, or the
    /// memory store's segments.
    fn segments(&self) -> Vec<u64> {
        if self.kind == Kind::Memory {
            return self.store.segments();
        }
        let mut v: Vec<u64> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_prefix("log.")?.parse().ok()
            })
            .collect();
        v.sort();
        v
    }
}

/// Deterministic test bytes depending on the device offset of each byte.
fn pattern(offset: u64, len: usize, salt: u8) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let x = (offset + i).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56;
            x as u8 ^ salt
        })
        .collect()
}

fn source(data: &[u8]) -> Box<dyn IoSource> {
    Box::new(AlignedBuf::from_slice(data, ALIGN).unwrap())
}

fn drain(dev: &dyn Device) {
    faster_device::drain(dev).unwrap();
}

fn write_sync(dev: &dyn Device, offset: u64, data: &[u8]) -> Result<()> {
    let (tx, rx) = mpsc::channel();
    dev.write(offset, source(data), Box::new(move |r| tx.send(r).unwrap()))?;
    drain(dev);
    rx.recv().unwrap()
}

fn read_sync(dev: &dyn Device, offset: u64, len: usize) -> Result<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    let buf = AlignedBuf::new(len, ALIGN).unwrap();
    dev.read(offset, buf, Box::new(move |r| tx.send(r).unwrap()))?;
    drain(dev);
    rx.recv().unwrap().map(|b| b.to_vec())
}

fn round_trip(f: Fixture) {
    let dev = f.open(f.options());
    assert_eq!((dev.size(), dev.begin(), dev.in_flight()), (0, 0, 0));
    let data = pattern(0, 3 * ALIGN, 1);
    write_sync(&*dev, 0, &data).unwrap();
    assert_eq!(dev.size(), 3 * ALIGN as u64);
    assert_eq!(read_sync(&*dev, 0, 3 * ALIGN).unwrap(), data);
    assert_eq!(
        read_sync(&*dev, ALIGN as u64, ALIGN).unwrap(),
        data[ALIGN..2 * ALIGN]
    );
    // Across a segment boundary, both ways.
    let at = SEG - 2 * ALIGN as u64;
    let data = pattern(at, 4 * ALIGN, 2);
    write_sync(&*dev, at, &data).unwrap();
    assert_eq!(read_sync(&*dev, at, 4 * ALIGN).unwrap(), data);
    assert_eq!(
        read_sync(&*dev, SEG, ALIGN).unwrap(),
        data[2 * ALIGN..3 * ALIGN]
    );
    // A write far ahead leaves a hole that reads as zeros (including a missing segment).
    let far = 5 * SEG + ALIGN as u64;
    write_sync(&*dev, far, &pattern(far, ALIGN, 3)).unwrap();
    assert_eq!(dev.size(), far + ALIGN as u64);
    let hole = read_sync(&*dev, SEG + 2 * ALIGN as u64, 3 * SEG as usize).unwrap();
    assert!(hole.iter().all(|&b| b == 0));
    assert_eq!(
        f.segments(),
        vec![0, 1, 5],
        "reading a hole creates no segment"
    );
    assert_eq!(dev.in_flight(), 0);
}

fn many_in_flight(f: Fixture) {
    const N: usize = 512;
    let dev = f.open(f.options());
    let ok = Arc::new(AtomicUsize::new(0));
    for i in 0..N {
        let off = (i * ALIGN) as u64;
        let ok = Arc::clone(&ok);
        dev.write(
            off,
            source(&pattern(off, ALIGN, 7)),
            Box::new(move |r| {
                r.unwrap();
                ok.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .unwrap();
    }
    assert_eq!(dev.in_flight(), N, "nothing completes before a poll");
    assert_eq!(
        ok.load(Ordering::Relaxed),
        0,
        "no callback runs inside submission"
    );
    drain(&*dev);
    assert_eq!(ok.load(Ordering::Relaxed), N);
    assert_eq!(dev.size(), (N * ALIGN) as u64);
    let good = Arc::new(AtomicUsize::new(0));
    // Submit in reverse order, to mix up the segments.
    for i in (0..N).rev() {
        let off = (i * ALIGN) as u64;
        let good = Arc::clone(&good);
        let buf = AlignedBuf::new(ALIGN, ALIGN).unwrap();
        dev.read(
            off,
            buf,
            Box::new(move |r| {
                assert_eq!(*r.unwrap(), pattern(off, ALIGN, 7)[..], "offset {off}");
                good.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .unwrap();
    }
    assert_eq!(dev.in_flight(), N);
    let mut polled = 0;
    while dev.in_flight() > 0 {
        polled += dev.poll().unwrap();
        polled += dev.wait().unwrap();
    }
    assert_eq!(polled, N);
    assert_eq!(good.load(Ordering::Relaxed), N);
}

/// A write source whose bytes start `shift` bytes into an aligned buffer.
struct Shifted(AlignedBuf, usize);
// SAFETY: the bytes live in the owned `AlignedBuf`, which never moves or changes.
unsafe impl IoSource for Shifted {
    fn as_bytes(&self) -> &[u8] {
        &self.0[self.1..self.1 + ALIGN]
    }
}

fn misaligned_requests_are_rejected(f: Fixture) {
    let dev = f.open(f.options());
    assert_eq!(dev.alignment(), ALIGN);
    write_sync(&*dev, 0, &pattern(0, 4 * ALIGN, 0)).unwrap();
    let never = || -> faster_device::WriteCallback {
        Box::new(|_| panic!("callback of a rejected request"))
    };
    let never_r = || -> faster_device::ReadCallback {
        Box::new(|_| panic!("callback of a rejected request"))
    };
    // Misaligned offset.
    let e = dev.write(512, source(&[0; ALIGN]), never()).unwrap_err();
    assert!(
        matches!(
            e,
            DeviceError::Misaligned {
                what: "offset",
                value: 512,
                alignment: ALIGN
            }
        ),
        "{e}"
    );
    let e = dev
        .read(100, AlignedBuf::new(ALIGN, ALIGN).unwrap(), never_r())
        .unwrap_err();
    assert!(
        matches!(e, DeviceError::Misaligned { what: "offset", .. }),
        "{e}"
    );
    // Misaligned length.
    let e = dev.write(0, source(&[0; 1000]), never()).unwrap_err();
    assert!(
        matches!(
            e,
            DeviceError::Misaligned {
                what: "length",
                value: 1000,
                ..
            }
        ),
        "{e}"
    );
    let e = dev
        .read(0, AlignedBuf::new(ALIGN + 512, ALIGN).unwrap(), never_r())
        .unwrap_err();
    assert!(
        matches!(e, DeviceError::Misaligned { what: "length", .. }),
        "{e}"
    );
    // Misaligned buffer address.
    let shifted = Shifted(AlignedBuf::new(2 * ALIGN, ALIGN).unwrap(), 512);
    let e = dev.write(0, Box::new(shifted), never()).unwrap_err();
    assert!(
        matches!(
            e,
            DeviceError::Misaligned {
                what: "buffer address",
                ..
            }
        ),
        "{e}"
    );
    let buf = (0..64)
        .map(|_| AlignedBuf::new(ALIGN, 16).unwrap())
        .find(|b| b.as_ptr() as usize % ALIGN != 0)
        .expect("some 16-aligned allocation is not page aligned");
    let e = dev.read(0, buf, never_r()).unwrap_err();
    assert!(
        matches!(
            e,
            DeviceError::Misaligned {
                what: "buffer address",
                ..
            }
        ),
        "{e}"
    );
    // Empty requests.
    let e = dev
        .read(0, AlignedBuf::new(0, ALIGN).unwrap(), never_r())
        .unwrap_err();
    assert!(matches!(e, DeviceError::InvalidRange { .. }), "{e}");
    assert_eq!(dev.in_flight(), 0);
    assert_eq!(dev.poll().unwrap(), 0);
    // Still usable.
    assert_eq!(read_sync(&*dev, 0, ALIGN).unwrap(), pattern(0, ALIGN, 0));
}

fn read_past_end_is_an_error(f: Fixture) {
    let dev = f.open(f.options());
    let e = read_sync(&*dev, 0, ALIGN).unwrap_err();
    assert!(
        matches!(
            e,
            DeviceError::PastEnd {
                offset: 0,
                size: 0,
                ..
            }
        ),
        "{e}"
    );
    write_sync(&*dev, 0, &pattern(0, 2 * ALIGN, 0)).unwrap();
    let e = read_sync(&*dev, ALIGN as u64, 2 * ALIGN).unwrap_err();
    assert!(
        matches!(e, DeviceError::PastEnd { len, size, .. } if len == 2 * ALIGN && size == 2 * ALIGN as u64),
        "{e}"
    );
    let e = read_sync(&*dev, 2 * ALIGN as u64, ALIGN).unwrap_err();
    assert!(matches!(e, DeviceError::PastEnd { .. }), "{e}");
    assert_eq!(
        read_sync(&*dev, ALIGN as u64, ALIGN).unwrap(),
        pattern(ALIGN as u64, ALIGN, 0)
    );
}

fn flush_is_durable_across_reopen(f: Fixture) {
    let data = pattern(SEG - ALIGN as u64, 3 * ALIGN, 9);
    {
        let dev = f.open(f.options());
        write_sync(&*dev, SEG - ALIGN as u64, &data).unwrap();
        dev.flush().unwrap();
        // A second flush with nothing dirty is fine.
        dev.flush().unwrap();
    }
    let dev = f.open(f.options());
    assert_eq!(dev.size(), SEG + 2 * ALIGN as u64);
    assert_eq!(
        read_sync(&*dev, SEG - ALIGN as u64, 3 * ALIGN).unwrap(),
        data
    );
    if f.kind == Kind::Memory {
        // The memory device's crash simulation: unflushed writes vanish, flushed ones stay.
        write_sync(&*dev, 0, &pattern(0, ALIGN, 1)).unwrap();
        write_sync(&*dev, 4 * SEG, &pattern(0, ALIGN, 1)).unwrap();
        drop(dev);
        f.store.crash();
        let dev = f.open(f.options());
        assert_eq!(dev.size(), SEG + 2 * ALIGN as u64);
        assert_eq!(read_sync(&*dev, 0, ALIGN).unwrap(), vec![0; ALIGN]);
        assert_eq!(
            read_sync(&*dev, SEG - ALIGN as u64, 3 * ALIGN).unwrap(),
            data
        );
    }
}

fn short_transfers_are_retried(f: Fixture) {
    let opts = f
        .options()
        .with_alignment(512)
        .with_segment_size(16 * 1024)
        .with_max_transfer(Some(512));
    let dev = f.open(opts);
    // 200 KiB starting mid-segment: 13 segments, 400 transfers of 512 bytes each way.
    let at = 3 * 512;
    let data = pattern(at, 200 * 1024, 5);
    write_sync(&*dev, at, &data).unwrap();
    assert_eq!(read_sync(&*dev, at, data.len()).unwrap(), data);
    drop(dev);
    // The bytes really landed where they belong: read them back without the cap.
    let dev = f.open(f.options().with_alignment(512).with_segment_size(16 * 1024));
    let all = read_sync(&*dev, 0, at as usize + data.len()).unwrap();
    assert!(all[..at as usize].iter().all(|&b| b == 0));
    assert_eq!(all[at as usize..], data[..]);
}

/// A read that runs past the end of a segment *file* (but not of the device) gets a genuinely
/// short transfer from the kernel: the first piece returns only the bytes the file has, the
/// next returns nothing. The device continues after the short piece and fills the rest with
/// zeros, as for any hole.
fn kernel_short_reads_are_continued(f: Fixture) {
    let dev = f.open(f.options());
    let head = pattern(0, ALIGN, 9);
    write_sync(&*dev, 0, &head).unwrap();
    // Grow the device past segment 0's file, which stays one block long.
    write_sync(&*dev, SEG, &pattern(SEG, ALIGN, 10)).unwrap();
    let got = read_sync(&*dev, 0, 4 * ALIGN).unwrap();
    assert_eq!(got[..ALIGN], head[..]);
    assert!(got[ALIGN..].iter().all(|&b| b == 0));
}

fn injected_errors_fail_one_request(f: Fixture) {
    let faults = FaultInjector::new();
    let dev = f.open(f.options().with_faults(faults.clone()));
    faults.inject(Fault::on(OpKind::Write).after(1));
    write_sync(&*dev, 0, &pattern(0, ALIGN, 1)).unwrap();
    let e = write_sync(&*dev, ALIGN as u64, &pattern(0, ALIGN, 1)).unwrap_err();
    assert!(
        matches!(e, DeviceError::Injected { op: OpKind::Write, offset } if offset == ALIGN as u64),
        "{e}"
    );
    assert_eq!(
        dev.size(),
        ALIGN as u64,
        "a failed write does not grow the device"
    );
    write_sync(&*dev, ALIGN as u64, &pattern(ALIGN as u64, ALIGN, 1)).unwrap();
    faults.inject(
        Fault::on(OpKind::Read)
            .when(|_, off, _| off == 0)
            .errno(libc::EIO),
    );
    let e = read_sync(&*dev, 0, ALIGN).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    faults.inject(Fault::on(OpKind::Flush));
    assert!(matches!(
        dev.flush(),
        Err(DeviceError::Injected {
            op: OpKind::Flush,
            ..
        })
    ));
    assert_eq!(faults.fired(), 3);
    // Usable afterwards, data intact.
    dev.flush().unwrap();
    assert_eq!(
        read_sync(&*dev, 0, 2 * ALIGN).unwrap(),
        pattern(0, 2 * ALIGN, 1)
    );
    // A fault in the middle of many requests fails exactly that one.
    faults.inject(Fault::on(OpKind::Read).after(100));
    let results = Arc::new(Mutex::new(Vec::new()));
    for i in 0..256u64 {
        let results = Arc::clone(&results);
        let buf = AlignedBuf::new(ALIGN, ALIGN).unwrap();
        dev.read(
            (i % 2) * ALIGN as u64,
            buf,
            Box::new(move |r| results.lock().unwrap().push(r.is_ok())),
        )
        .unwrap();
    }
    drain(&*dev);
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 256);
    assert_eq!(results.iter().filter(|ok| !**ok).count(), 1);
}

/// A real kernel error: ext4 refuses writes beyond its maximum file size (16 TiB with 4 KiB
/// blocks) with `EFBIG`. A huge segment size puts offset 32 TiB inside segment 0.
fn kernel_errors_fail_one_request(f: Fixture) {
    let dev = f.open(f.options().with_segment_size(1 << 50));
    write_sync(&*dev, 0, &pattern(0, ALIGN, 1)).unwrap();
    let e = write_sync(&*dev, 1 << 45, &pattern(0, ALIGN, 1)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EFBIG), "{e}");
    assert!(matches!(e, DeviceError::Io { op: OpKind::Write, offset, .. } if offset == 1 << 45));
    assert_eq!(dev.size(), ALIGN as u64);
    write_sync(&*dev, ALIGN as u64, &pattern(ALIGN as u64, ALIGN, 1)).unwrap();
    assert_eq!(
        read_sync(&*dev, 0, 2 * ALIGN).unwrap(),
        pattern(0, 2 * ALIGN, 1)
    );
}

fn truncate_front_drops_segments(f: Fixture) {
    let dev = f.open(f.options());
    let data = pattern(0, 4 * SEG as usize, 4);
    write_sync(&*dev, 0, &data).unwrap();
    dev.flush().unwrap();
    assert_eq!(f.segments(), vec![0, 1, 2, 3]);
    let cut = 2 * SEG + ALIGN as u64;
    dev.truncate_front(cut).unwrap();
    assert_eq!(dev.begin(), cut);
    assert_eq!(
        f.segments(),
        vec![2, 3],
        "whole segments below the cut are deleted"
    );
    for off in [0, SEG, 2 * SEG] {
        let e = read_sync(&*dev, off, ALIGN).unwrap_err();
        assert!(
            matches!(e, DeviceError::Truncated { offset, begin } if offset == off && begin == cut),
            "{e}"
        );
    }
    let e = write_sync(&*dev, SEG, &data[..ALIGN]).unwrap_err();
    assert!(matches!(e, DeviceError::Truncated { .. }), "{e}");
    assert_eq!(
        read_sync(&*dev, cut, ALIGN).unwrap(),
        data[cut as usize..cut as usize + ALIGN]
    );
    // Truncation never moves backwards.
    dev.truncate_front(SEG).unwrap();
    assert_eq!(dev.begin(), cut);
    assert_eq!(dev.size(), 4 * SEG);
    drop(dev);
    // After reopening, the device starts at the first remaining segment.
    let dev = f.open(f.options());
    assert!(dev.begin() <= cut && dev.begin() >= 2 * SEG);
    assert_eq!(
        read_sync(&*dev, cut, 2 * SEG as usize - ALIGN).unwrap(),
        data[cut as usize..]
    );
    assert!(matches!(
        read_sync(&*dev, SEG, ALIGN),
        Err(DeviceError::Truncated { .. })
    ));
}

fn concurrent_submission(f: Fixture) {
    const THREADS: usize = 4;
    const PER: usize = 128;
    let dev = f.open(f.options());
    let region = (PER * ALIGN) as u64;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let dev = &*dev;
            s.spawn(move || {
                let done = Arc::new(AtomicUsize::new(0));
                for i in 0..PER {
                    let off = t as u64 * region + (i * ALIGN) as u64;
                    let done = Arc::clone(&done);
                    dev.write(
                        off,
                        source(&pattern(off, ALIGN, t as u8)),
                        Box::new(move |r| {
                            r.unwrap();
                            done.fetch_add(1, Ordering::Relaxed);
                        }),
                    )
                    .unwrap();
                    if i % 16 == 0 {
                        dev.poll().unwrap();
                    }
                }
                // Other threads may run our callbacks; wait until all of ours have run.
                while done.load(Ordering::Relaxed) < PER {
                    if dev.wait().unwrap() == 0 {
                        std::thread::yield_now();
                    }
                }
            });
        }
    });
    drain(&*dev);
    assert_eq!(dev.size(), THREADS as u64 * region);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let dev = &*dev;
            s.spawn(move || {
                let off = t as u64 * region;
                let got = read_sync(dev, off, PER * ALIGN);
                let want: Vec<u8> = (0..PER)
                    .flat_map(|i| pattern(off + (i * ALIGN) as u64, ALIGN, t as u8))
                    .collect();
                assert!(got.unwrap() == want, "thread {t} region");
            });
        }
    });
}

fn callbacks_may_submit(f: Fixture) {
    let dev: Arc<dyn Device> = Arc::from(f.open(f.options()));
    let (tx, rx) = mpsc::channel();
    let d2 = Arc::clone(&dev);
    dev.write(
        0,
        source(&pattern(0, ALIGN, 6)),
        Box::new(move |r| {
            r.unwrap();
            // Submitting from inside a callback must not deadlock.
            let buf = AlignedBuf::new(ALIGN, ALIGN).unwrap();
            d2.read(
                0,
                buf,
                Box::new(move |r| tx.send(r.unwrap().to_vec()).unwrap()),
            )
            .unwrap();
        }),
    )
    .unwrap();
    drain(&*dev);
    assert_eq!(rx.recv().unwrap(), pattern(0, ALIGN, 6));
}

fn drop_completes_requests_in_flight(f: Fixture) {
    let ran = Arc::new(AtomicUsize::new(0));
    {
        let dev = f.open(f.options());
        for i in 0..256u64 {
            let ran = Arc::clone(&ran);
            let off = i * ALIGN as u64;
            dev.write(
                off,
                source(&pattern(off, ALIGN, 8)),
                Box::new(move |r| {
                    r.unwrap();
                    ran.fetch_add(1, Ordering::Relaxed);
                }),
            )
            .unwrap();
        }
    }
    assert_eq!(ran.load(Ordering::Relaxed), 256, "drop runs every callback");
    let dev = f.open(f.options());
    assert_eq!(
        read_sync(&*dev, 0, 256 * ALIGN).unwrap(),
        pattern(0, 256 * ALIGN, 8)
    );
}

macro_rules! conformance {
    ($kind:ident: $($test:ident),* $(,)?) => {
        #[allow(non_snake_case)]
        mod $kind {
            $(
                #[test]
                fn $test() {
                    super::$test(super::Fixture::new(super::Kind::$kind));
                }
            )*
        }
    };
}

macro_rules! all_devices {
    ($($test:ident),* $(,)?) => {
        conformance!(Uring: $($test),*);
        conformance!(File: $($test),*);
        conformance!(Memory: $($test),*);
    };
}

all_devices!(
    round_trip,
    many_in_flight,
    misaligned_requests_are_rejected,
    read_past_end_is_an_error,
    flush_is_durable_across_reopen,
    short_transfers_are_retried,
    kernel_short_reads_are_continued,
    injected_errors_fail_one_request,
    truncate_front_drops_segments,
    concurrent_submission,
    callbacks_may_submit,
    drop_completes_requests_in_flight,
);

mod kernel_errors {
    #[test]
    fn uring() {
        super::kernel_errors_fail_one_request(super::Fixture::new(super::Kind::Uring));
    }
    #[test]
    fn file() {
        super::kernel_errors_fail_one_request(super::Fixture::new(super::Kind::File));
    }
}

#[test]
fn open_default_prefers_io_uring() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dev = faster_device::open_default(dir.path(), DeviceOptions::default()).unwrap();
    let expect = if cfg!(target_os = "linux") {
        DeviceKind::IoUring
    } else {
        DeviceKind::File
    };
    assert_eq!(dev.kind(), expect);
    // On this project's machines /work is ext4, which accepts O_DIRECT.
    eprintln!(
        "open_default: {:?}, O_DIRECT {}",
        dev.kind(),
        dev.is_direct()
    );
    write_sync(&*dev, 0, &pattern(0, ALIGN, 1)).unwrap();
    assert_eq!(read_sync(&*dev, 0, ALIGN).unwrap(), pattern(0, ALIGN, 1));
}

mod direct_io {
    use super::*;

    /// `direct_io(false)` never uses `O_DIRECT`; the default probes it. On this project's
    /// machines the target directory is on ext4, which accepts it with 4 KiB alignment.
    fn probed(kind: Kind) {
        let f = Fixture::new(kind);
        let dev = f.open(f.options().with_direct_io(false));
        assert!(!dev.is_direct());
        write_sync(&*dev, 0, &pattern(0, ALIGN, 1)).unwrap();
        drop(dev);
        let dev = f.open(f.options());
        eprintln!("{kind:?}: O_DIRECT {}", dev.is_direct());
        // Whatever was chosen, the data written buffered reads back through it.
        assert_eq!(read_sync(&*dev, 0, ALIGN).unwrap(), pattern(0, ALIGN, 1));
        // The probe file does not linger.
        let names: Vec<_> = std::fs::read_dir(f.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("log.0")]);
    }

    #[test]
    fn uring() {
        probed(Kind::Uring);
    }

    #[test]
    fn file() {
        probed(Kind::File);
    }
}
