//! # faster-device
//!
//! Storage devices for the faster key-value store: one asynchronous, offset-addressed
//! [`Device`] trait and three implementations of it.
//!
//! ## What this crate owns
//!
//! A device is a flat, byte-addressed space `[begin, size)` that grows at the end and can be
//! dropped at the front. Requests are *aligned*: the buffer address, the offset and the length
//! must all be multiples of [`Device::alignment`] (from [`DeviceOptions::alignment`]), which is
//! what `O_DIRECT` needs. Reads and writes are submitted with a callback and complete later;
//! the caller reaps completions with [`Device::poll`] (non-blocking) or [`Device::wait`]
//! (blocking), which run the callbacks **on the calling thread, with no device lock held**, so
//! a callback may submit new requests. Callbacks never run inside `read`/`write`/`flush`.
//!
//! On disk, the space is stored in segment files `<dir>/<base_name>.<n>` of
//! [`DeviceOptions::segment_size`] bytes each, so [`Device::truncate_front`] can delete whole
//! segments. Requests crossing a segment boundary are split; transfers the kernel performs only
//! partly (short reads and writes) are continued for the remainder; [`DeviceOptions::max_transfer`]
//! caps each transfer so that path is exercised on purpose.
//!
//! ## Key types
//!
//! * [`Device`], the trait; [`DeviceKind`] tells the implementations apart.
//! * [`UringDevice`] (Linux): io_uring, batched submission, many requests in flight, `O_DIRECT`
//!   when the file system accepts it (probed at open).
//! * [`FileDevice`]: portable `pread`/`pwrite`, performed synchronously at submission; the
//!   callback is delivered by the next `poll`/`wait`.
//! * [`MemoryDevice`] over a shared [`MemoryStore`]: for tests, with a crash simulation.
//! * [`open_default`]: io_uring if a ring can be created, else the file device.
//! * [`AlignedBuf`] (read buffers, and a ready-made write source), [`IoSource`] (what a write
//!   takes ownership of), [`DeviceOptions`], [`DeviceError`], and the [`FaultInjector`] that
//!   every device consults, to make chosen requests fail.
//!
//! ## Invariants
//!
//! * Every request accepted by `read`/`write` (they returned `Ok`) has its callback run exactly
//!   once, by `poll`, `wait` or the device's `Drop`; a request they rejected (`Err`) never does.
//! * A write's callback runs only after `size()` covers it; a read of bytes in `[begin, size)`
//!   that were never written returns zeros.
//! * After `flush` returns `Ok`, every write whose callback ran before `flush` was called
//!   survives a crash, even if other writes or flushes run concurrently (for files:
//!   `fdatasync` of each segment written since its last sync, and of the directory after
//!   segments were created). After `truncate_front` returns `Ok`, the deletion is durable too
//!   (the directory is `fsync`ed).
//! * Buffers handed to the kernel stay alive and unmoved until the kernel is done with them,
//!   even if the device is dropped with requests in flight: drop completes them first, and if
//!   the ring fails so that it cannot, it leaks those buffers (their callbacks still run, with
//!   an error) rather than free them.
//! * No device lock is held while a thread blocks in `wait`, nor while callbacks run.
//!
//! ## What it must not know about
//!
//! Nothing about logs, records, pages of the hybrid log, addresses in it, or checkpoints: a
//! device moves aligned bytes between memory and storage and nothing else. The segment files
//! are a storage detail, not a log structure.

mod blocking;
mod buf;
mod completion;
mod error;
mod fault;
mod file;
mod forward;
mod memory;
pub mod nofollow;
mod options;
mod segments;
#[cfg(target_os = "linux")]
mod uring;

use std::path::Path;

pub use blocking::{Completion, read_sync, write_sync};
pub use buf::{AlignedBuf, IoSource};
pub use error::{DeviceError, OpKind, Result};
pub use fault::{Fault, FaultInjector};
pub use file::FileDevice;
pub use memory::{MemoryDevice, MemoryStore};
pub use options::DeviceOptions;
#[cfg(target_os = "linux")]
pub use uring::UringDevice;

/// Called with the filled buffer when a read finishes, or with the error that ended it.
pub type ReadCallback = Box<dyn FnOnce(Result<AlignedBuf>) + Send>;

/// Called when a write finishes, or with the error that ended it. The write's source has been
/// dropped by then.
pub type WriteCallback = Box<dyn FnOnce(Result<()>) + Send>;

/// Which implementation a [`Device`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// [`UringDevice`]: Linux io_uring.
    IoUring,
    /// [`FileDevice`]: portable positioned reads and writes.
    File,
    /// [`MemoryDevice`]: in memory, for tests.
    Memory,
}

/// An asynchronous, offset-addressed storage device. See the [crate docs](crate) for the
/// model; all methods may be called from several threads at once.
pub trait Device: Send + Sync {
    /// Which implementation this is.
    fn kind(&self) -> DeviceKind;

    /// Required alignment of buffer addresses, offsets and lengths, in bytes.
    fn alignment(&self) -> usize;

    /// Whether the device bypasses the page cache (`O_DIRECT`). Always `false` for memory.
    fn is_direct(&self) -> bool;

    /// Submits a read of `buf.len()` bytes at `offset` into `buf`; `done` gets the buffer back
    /// filled. Fails synchronously (and never calls `done`) with
    /// [`DeviceError::Misaligned`], [`DeviceError::InvalidRange`], [`DeviceError::Truncated`]
    /// if `offset < begin()`, or [`DeviceError::PastEnd`] if the read reaches past `size()`.
    fn read(&self, offset: u64, buf: AlignedBuf, done: ReadCallback) -> Result<()>;

    /// Submits a write of `buf.as_bytes()` at `offset`; `buf` is dropped before `done` runs.
    /// Fails synchronously (and never calls `done`) with [`DeviceError::Misaligned`],
    /// [`DeviceError::InvalidRange`] or [`DeviceError::Truncated`].
    fn write(&self, offset: u64, buf: Box<dyn IoSource>, done: WriteCallback) -> Result<()>;

    /// Runs the callbacks of the requests that have finished, without blocking; returns how
    /// many ran.
    fn poll(&self) -> Result<usize>;

    /// Blocks until at least one request has finished and runs the callbacks of all that have;
    /// returns how many ran. Returns 0 at once if no request is in flight, and may return 0
    /// when another thread ran the callbacks of the requests that finished. Other threads may
    /// submit while one waits.
    fn wait(&self) -> Result<usize>;

    /// Number of accepted requests whose callbacks have not finished running yet.
    fn in_flight(&self) -> usize;

    /// Makes every write whose callback has run before this call durable.
    fn flush(&self) -> Result<()>;

    /// One past the highest byte written (by a write whose completion has been processed).
    fn size(&self) -> u64;

    /// The first readable offset: bytes below it have been truncated.
    fn begin(&self) -> u64;

    /// Drops the front of the device: raises `begin()` to `offset` (never lowers it) and
    /// deletes every segment lying entirely below `offset`, durably when it returns `Ok`.
    /// Later requests below `offset` fail with [`DeviceError::Truncated`].
    fn truncate_front(&self, offset: u64) -> Result<()>;
}

/// Drives every request in flight to completion (running callbacks), e.g. before dropping.
pub fn drain(device: &dyn Device) -> Result<()> {
    while device.in_flight() > 0 {
        device.wait()?;
    }
    Ok(())
}

/// Opens the device stored in directory `dir`: a [`UringDevice`] if an io_uring instance can be
/// created, otherwise a [`FileDevice`]. Logs the choice at info level; [`Device::kind`] tells it.
pub fn open_default(dir: impl AsRef<Path>, options: DeviceOptions) -> Result<Box<dyn Device>> {
    let dir = dir.as_ref();
    #[cfg(target_os = "linux")]
    {
        match uring::build_ring(&options) {
            Ok(ring) => {
                let dev = UringDevice::open_with_ring(dir, options, ring)?;
                log::info!(
                    "faster-device: {} uses io_uring (O_DIRECT: {})",
                    dir.display(),
                    dev.is_direct()
                );
                return Ok(Box::new(dev));
            }
            Err(e) => {
                log::info!("faster-device: io_uring unavailable ({e}); falling back to files");
            }
        }
    }
    let dev = FileDevice::open(dir, options)?;
    log::info!(
        "faster-device: {} uses the file device (O_DIRECT: {})",
        dir.display(),
        dev.is_direct()
    );
    Ok(Box::new(dev))
}

/// Checks a read of `buf.len()` bytes at `offset` against `dev`'s alignment and range.
pub(crate) fn check_read(dev: &dyn Device, offset: u64, buf: &AlignedBuf) -> Result<()> {
    check_request(
        true,
        buf.as_ptr() as usize,
        offset,
        buf.len(),
        dev.alignment(),
        dev.begin(),
        dev.size(),
    )
}

/// Checks a write of `data` at `offset` against `dev`'s alignment and range.
pub(crate) fn check_write(dev: &dyn Device, offset: u64, data: &[u8]) -> Result<()> {
    check_request(
        false,
        data.as_ptr() as usize,
        offset,
        data.len(),
        dev.alignment(),
        dev.begin(),
        dev.size(),
    )
}

/// Checks a request against the alignment and the device range. `read` selects the past-end
/// check.
pub(crate) fn check_request(
    read: bool,
    addr: usize,
    offset: u64,
    len: usize,
    alignment: usize,
    begin: u64,
    size: u64,
) -> Result<()> {
    let end = offset.checked_add(len as u64);
    if len == 0 || end.is_none() {
        return Err(DeviceError::InvalidRange { offset, len });
    }
    let a = alignment as u64;
    for (what, value) in [
        ("buffer address", addr as u64),
        ("offset", offset),
        ("length", len as u64),
    ] {
        if value % a != 0 {
            return Err(DeviceError::Misaligned {
                what,
                value,
                alignment,
            });
        }
    }
    if offset < begin {
        return Err(DeviceError::Truncated { offset, begin });
    }
    if read && end.is_some_and(|e| e > size) {
        return Err(DeviceError::PastEnd { offset, len, size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checks() {
        let ok = |r: Result<()>| r.is_ok();
        assert!(ok(check_request(true, 4096, 0, 4096, 512, 0, 4096)));
        assert!(matches!(
            check_request(true, 4097, 0, 4096, 512, 0, 4096),
            Err(DeviceError::Misaligned {
                what: "buffer address",
                ..
            })
        ));
        assert!(matches!(
            check_request(false, 4096, 1, 512, 512, 0, 0),
            Err(DeviceError::Misaligned {
                what: "offset",
                value: 1,
                alignment: 512
            })
        ));
        assert!(matches!(
            check_request(false, 4096, 0, 100, 512, 0, 0),
            Err(DeviceError::Misaligned { what: "length", .. })
        ));
        assert!(matches!(
            check_request(true, 4096, 512, 512, 512, 0, 512),
            Err(DeviceError::PastEnd {
                offset: 512,
                len: 512,
                size: 512
            })
        ));
        assert!(matches!(
            check_request(false, 4096, 0, 512, 512, 1024, 0),
            Err(DeviceError::Truncated {
                offset: 0,
                begin: 1024
            })
        ));
        assert!(matches!(
            check_request(false, 4096, u64::MAX - 511, 1024, 512, 0, 0),
            Err(DeviceError::InvalidRange { .. })
        ));
        assert!(matches!(
            check_request(false, 4096, 0, 0, 512, 0, 0),
            Err(DeviceError::InvalidRange { .. })
        ));
    }
}
