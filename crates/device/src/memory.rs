//! [`MemoryDevice`] and its backing [`MemoryStore`]: a device in memory, for tests.
//!
//! ## Durability model
//!
//! A [`MemoryStore`] plays the part of a disk *with* its page cache, and is shared (cloning it
//! shares it): a device opened on a store sees everything written through earlier devices on
//! that store, flushed or not, just as a reopened file sees data a dead process wrote. Each
//! segment keeps its current bytes and its *durable* bytes (as of the last flush that covered
//! it). [`MemoryStore::crash`] simulates a power failure: every segment falls back to its
//! durable bytes, so unflushed writes vanish. Truncation is durable at once.
//!
//! ## Execution
//!
//! Like the [`FileDevice`](crate::FileDevice), requests are carried out at submission and their
//! callbacks run at the next `poll`/`wait`. Transfers go through a simulated system call that
//! moves at most [`DeviceOptions::max_transfer`] bytes, so the short-transfer retry loop runs
//! exactly as it does on files.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::buf::{AlignedBuf, IoSource};
use crate::completion::CompletionQueue;
use crate::error::{DeviceError, OpKind, Result};
use crate::forward::requests_at_submission;
use crate::options::DeviceOptions;
use crate::segments::next_chunk;
use crate::{Device, DeviceKind, ReadCallback, WriteCallback, check_read, check_write};

#[derive(Default, Debug)]
struct MemSegment {
    data: Vec<u8>,
    durable: Vec<u8>,
    dirty: bool,
}

#[derive(Default, Debug)]
struct StoreState {
    segment_size: Option<u64>,
    segments: BTreeMap<u64, MemSegment>,
    begin: u64,
    size: u64,
}

impl StoreState {
    fn recompute_size(&mut self) {
        let seg = self.segment_size.unwrap_or(1);
        self.size = self
            .segments
            .iter()
            .map(|(n, s)| n * seg + s.data.len() as u64)
            .max()
            .unwrap_or(0);
    }
}

/// The shared backing store of memory devices: a simulated disk.
///
/// It plays the part of a disk *with* its page cache, and is shared (cloning it shares it): a
/// device opened on a store sees everything written through earlier devices on that store,
/// flushed or not, just as a reopened file sees data a dead process wrote. Each segment keeps
/// its current bytes and its *durable* bytes (as of the last flush that covered it).
/// [`MemoryStore::crash`] simulates a power failure: every segment falls back to its durable
/// bytes, so unflushed writes vanish. Truncation is durable at once.
#[derive(Clone, Default, Debug)]
pub struct MemoryStore {
    inner: Arc<Mutex<StoreState>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, StoreState> {
        faster_sync::lock_std(&self.inner)
    }

    /// Simulates a power failure: drops every write not made durable by a flush.
    pub fn crash(&self) {
        let mut s = self.lock();
        s.segments.retain(|_, seg| {
            seg.data = seg.durable.clone();
            seg.dirty = false;
            !seg.data.is_empty()
        });
        s.recompute_size();
    }

    /// Numbers of the segments currently stored (the memory analogue of the segment files).
    pub fn segments(&self) -> Vec<u64> {
        self.lock().segments.keys().copied().collect()
    }
}

/// A device in memory, on a [`MemoryStore`] (see there for the durability model).
///
/// Like the [`FileDevice`](crate::FileDevice), requests are carried out at submission and their
/// callbacks run at the next `poll`/`wait`. Transfers go through a simulated system call that
/// moves at most [`DeviceOptions::max_transfer`] bytes, so the short-transfer retry loop runs
/// exactly as it does on files.
///
/// Segments are dense vectors: a write far into a segment allocates the segment up to it, so
/// keep segment sizes and offsets within what memory holds.
pub struct MemoryDevice {
    store: MemoryStore,
    options: DeviceOptions,
    done: CompletionQueue,
}

impl MemoryDevice {
    /// Opens a device on `store`. Fails with [`DeviceError::InvalidOptions`] if the options are
    /// inconsistent or the store was used with a different segment size.
    pub fn open(store: MemoryStore, options: DeviceOptions) -> Result<Self> {
        options.validate()?;
        {
            let mut s = store.lock();
            match s.segment_size {
                Some(seg) if seg != options.segment_size => {
                    return Err(DeviceError::InvalidOptions(format!(
                        "memory store has segment size {seg}, not {}",
                        options.segment_size
                    )));
                }
                _ => s.segment_size = Some(options.segment_size),
            }
        }
        Ok(MemoryDevice {
            store,
            options,
            done: CompletionQueue::default(),
        })
    }

    /// A device on a fresh store.
    pub fn new(options: DeviceOptions) -> Result<Self> {
        MemoryDevice::open(MemoryStore::new(), options)
    }

    /// The store this device writes to.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// A simulated system call: moves at most `max_transfer` bytes and says how many it moved,
    /// like a short `pread`/`pwrite`.
    fn transfer(&self, len: usize) -> usize {
        self.options.max_transfer.map_or(len, |m| len.min(m))
    }

    fn read_now(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if let Some(e) = self.options.faults.check(OpKind::Read, offset, buf.len()) {
            return Err(e);
        }
        let s = self.store.lock();
        let mut pos = 0;
        while pos < buf.len() {
            let at = offset + pos as u64;
            let c = next_chunk(at, buf.len() - pos, self.options.segment_size, usize::MAX);
            if at < s.begin {
                return Err(DeviceError::Truncated {
                    offset: at,
                    begin: s.begin,
                });
            }
            let n = self.transfer(c.len);
            let dst = &mut buf[pos..pos + n];
            let src = s
                .segments
                .get(&c.segment)
                .map_or(&[][..], |seg| &seg.data[..]);
            let from = (c.file_offset as usize).min(src.len());
            let avail = (src.len() - from).min(n);
            dst[..avail].copy_from_slice(&src[from..from + avail]);
            dst[avail..].fill(0);
            pos += n;
        }
        Ok(())
    }

    fn write_now(&self, offset: u64, data: &[u8]) -> Result<()> {
        if let Some(e) = self.options.faults.check(OpKind::Write, offset, data.len()) {
            return Err(e);
        }
        let mut s = self.store.lock();
        let mut pos = 0;
        while pos < data.len() {
            let at = offset + pos as u64;
            let c = next_chunk(at, data.len() - pos, self.options.segment_size, usize::MAX);
            if at < s.begin {
                return Err(DeviceError::Truncated {
                    offset: at,
                    begin: s.begin,
                });
            }
            let n = self.transfer(c.len);
            let seg = s.segments.entry(c.segment).or_default();
            let from = c.file_offset as usize;
            if seg.data.len() < from + n {
                seg.data.resize(from + n, 0);
            }
            seg.data[from..from + n].copy_from_slice(&data[pos..pos + n]);
            seg.dirty = true;
            pos += n;
        }
        s.size = s.size.max(offset + data.len() as u64);
        Ok(())
    }
}

impl Device for MemoryDevice {
    fn kind(&self) -> DeviceKind {
        DeviceKind::Memory
    }

    fn alignment(&self) -> usize {
        self.options.alignment
    }

    fn is_direct(&self) -> bool {
        false
    }

    requests_at_submission!();

    fn flush(&self) -> Result<()> {
        if let Some(e) = self.options.faults.check(OpKind::Flush, 0, 0) {
            return Err(e);
        }
        let mut s = self.store.lock();
        for seg in s.segments.values_mut().filter(|seg| seg.dirty) {
            seg.durable.clone_from(&seg.data);
            seg.dirty = false;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.store.lock().size
    }

    fn begin(&self) -> u64 {
        self.store.lock().begin
    }

    fn truncate_front(&self, offset: u64) -> Result<()> {
        let mut s = self.store.lock();
        if offset > s.begin {
            s.begin = offset;
            let whole = offset / self.options.segment_size;
            s.segments.retain(|n, _| *n >= whole);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn crash_drops_unflushed_writes() {
        let store = MemoryStore::new();
        let opts = DeviceOptions::default()
            .with_alignment(512)
            .with_segment_size(4096);
        let dev = MemoryDevice::open(store.clone(), opts.clone()).unwrap();
        let (tx, rx) = mpsc::channel();
        let write = |off: u64, byte: u8| {
            let tx = tx.clone();
            let buf = AlignedBuf::from_slice(&[byte; 512], 512).unwrap();
            dev.write(
                off,
                Box::new(buf),
                Box::new(move |r| tx.send(r.is_ok()).unwrap()),
            )
            .unwrap();
            dev.wait().unwrap();
            assert!(rx.recv().unwrap());
        };
        write(0, 1);
        dev.flush().unwrap();
        write(0, 2);
        write(4096, 3);
        drop(dev);
        // Reopening without a crash sees everything.
        let dev = MemoryDevice::open(store.clone(), opts.clone()).unwrap();
        assert_eq!(dev.size(), 4096 + 512);
        drop(dev);
        store.crash();
        let dev = MemoryDevice::open(store.clone(), opts).unwrap();
        assert_eq!(dev.size(), 512);
        assert_eq!(store.segments(), vec![0]);
        let (tx, rx) = mpsc::channel();
        dev.read(
            0,
            AlignedBuf::new(512, 512).unwrap(),
            Box::new(move |r| tx.send(r).unwrap()),
        )
        .unwrap();
        dev.wait().unwrap();
        assert!(rx.recv().unwrap().unwrap().iter().all(|&b| b == 1));
    }
}
