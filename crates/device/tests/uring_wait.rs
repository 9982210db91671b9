//! `UringDevice::wait` blocks in the kernel without the device lock: another thread can submit
//! while it waits. A FIFO stands in for segment 0 so that a read blocks until fed.
#![cfg(target_os = "linux")]

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use faster_device::{AlignedBuf, Device, DeviceOptions, UringDevice};

const ALIGN: usize = 512;

fn write_sync(dev: &dyn Device, offset: u64) {
    let (tx, rx) = mpsc::channel();
    let buf = AlignedBuf::new(ALIGN, ALIGN).unwrap();
    dev.write(
        offset,
        Box::new(buf),
        Box::new(move |r| tx.send(r).unwrap()),
    )
    .unwrap();
    faster_device::drain(dev).unwrap();
    rx.recv().unwrap().unwrap();
}

#[test]
fn submission_proceeds_while_another_thread_waits() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("log.0");
    let path = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `path` is a valid NUL-terminated string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let opts = DeviceOptions::default()
        .with_alignment(ALIGN)
        .with_segment_size(1 << 20)
        .with_direct_io(false);
    let dev = Arc::new(UringDevice::open(dir.path(), opts).unwrap());
    // Put one block into the pipe (size becomes 512) and read it back out: the pipe is empty.
    write_sync(&*dev, 0);
    let (tx, rx) = mpsc::channel();
    let buf = AlignedBuf::new(ALIGN, ALIGN).unwrap();
    dev.read(0, buf, Box::new(move |r| tx.send(r.map(|_| ())).unwrap()))
        .unwrap();
    faster_device::drain(&*dev).unwrap();
    rx.recv().unwrap().unwrap();

    // This read blocks in the kernel until the pipe is fed.
    let read_done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&read_done);
    let buf = AlignedBuf::new(ALIGN, ALIGN).unwrap();
    dev.read(
        0,
        buf,
        Box::new(move |r| flag.store(r.is_ok(), Ordering::SeqCst)),
    )
    .unwrap();
    let waiter = {
        let dev = Arc::clone(&dev);
        std::thread::spawn(move || {
            while dev.in_flight() > 0 {
                dev.wait().unwrap();
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));

    // Submit from another thread while the waiter is blocked in the kernel.
    let (sub_tx, sub_rx) = mpsc::channel();
    let submitter = {
        let dev = Arc::clone(&dev);
        std::thread::spawn(move || {
            let buf = AlignedBuf::new(ALIGN, ALIGN).unwrap();
            dev.write(ALIGN as u64, Box::new(buf), Box::new(|r| r.unwrap()))
                .unwrap();
            sub_tx.send(()).unwrap();
        })
    };
    let submitted = sub_rx.recv_timeout(Duration::from_secs(5)).is_ok();
    if !submitted {
        // Unblock the waiter ourselves, so that the test fails instead of hanging.
        let mut w = OpenOptions::new().write(true).open(&fifo).unwrap();
        w.write_all(&[0; ALIGN]).unwrap();
    }
    submitter.join().unwrap();
    waiter.join().unwrap();
    assert!(
        submitted,
        "write() blocked while another thread was in wait()"
    );
    assert!(read_done.load(Ordering::SeqCst));
    assert_eq!(dev.in_flight(), 0);
}
