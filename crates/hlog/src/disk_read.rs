//! Reading records from the device: [`Hlog::read_async`], one aligned block (and a second
//! read for a longer record), each record's checksum checked; [`Hlog::complete_pending`].

use std::sync::{Arc, Mutex, Weak};

use faster_device::AlignedBuf;
use faster_sync::lock_std as lock;

use crate::address::{Address, align_up};
use crate::checksum;
use crate::error::{HlogError, Result};
use crate::hlog::{Hlog, Shared};
use crate::record::{self, HEADER_SIZE, Lengths, RecordView};
use crate::sync::Ordering;

/// A record read from the device by [`Hlog::read_async`].
#[derive(Debug)]
pub struct DiskRecord {
    address: Address,
    buf: AlignedBuf,
    offset: usize,
    lengths: Lengths,
}

impl DiskRecord {
    /// The record's address.
    pub fn address(&self) -> Address {
        self.address
    }
    /// The decoded record.
    pub fn view(&self) -> RecordView<'_> {
        RecordView::from_checked(&self.buf[self.offset..], self.lengths)
    }
}

type ReadDone = Box<dyn FnOnce(Result<DiskRecord>) + Send>;

impl Hlog {
    /// Reads the on-disk record at `addr` asynchronously (`addr` must be below
    /// `flushed_until`). It reads one aligned block (the device alignment, at least 4 KiB)
    /// around the address, decodes the header, and reads again if the record is longer.
    ///
    /// `done` runs exactly once, with the record or an error, on the thread that drives device
    /// completions: [`Hlog::complete_pending`], or a thread helping inside
    /// [`Hlog::allocate`]; send the result through a channel to bring it back to another
    /// context. If this call returns `Err`, `done` is never called.
    pub fn read_async(
        &self,
        addr: Address,
        done: impl FnOnce(Result<DiskRecord>) + Send + 'static,
    ) -> Result<()> {
        let s = &self.shared;
        let a = s.readable(addr)?;
        if a >= s.flushed_until.load(Ordering::Acquire) {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: "not flushed to the device yet",
            });
        }
        if (s.hole.0..s.hole.1).contains(&a) {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: "in the unused end of the page the recovered log resumed after",
            });
        }
        let align = s.geo.alignment as u64;
        let start = a & !(align - 1);
        let pending = Arc::new(Mutex::new(Some(Box::new(done) as ReadDone)));
        Shared::issue_read(&self.shared, addr, start, align as usize, pending)
    }

    /// Drives device completions (flush writes and reads): runs the callbacks of finished
    /// requests and returns how many ran. With `wait`, blocks until no request is in flight.
    pub fn complete_pending(&self, wait: bool) -> Result<usize> {
        let d = &self.shared.device;
        let mut n = d.poll()?;
        if wait {
            while d.in_flight() > 0 {
                n += d.wait()?;
            }
        }
        self.shared.check_flush()?;
        Ok(n)
    }
}

impl Shared {
    /// Issues a read of `len` bytes at `start` for the record at `addr`.
    pub(crate) fn issue_read(
        self: &Arc<Self>,
        addr: Address,
        start: u64,
        len: usize,
        pending: Arc<Mutex<Option<ReadDone>>>,
    ) -> Result<()> {
        if start + len as u64 > self.device.size() {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: "record not completely on the device",
            });
        }
        let buf = AlignedBuf::new(len, self.geo.alignment)?;
        let weak = Arc::downgrade(self);
        let p = pending.clone();
        self.device.read(
            start,
            buf,
            Box::new(move |r| Shared::read_done(weak, addr, start, r, p)),
        )?;
        Ok(())
    }

    pub(crate) fn read_done(
        weak: Weak<Shared>,
        addr: Address,
        start: u64,
        r: faster_device::Result<AlignedBuf>,
        pending: Arc<Mutex<Option<ReadDone>>>,
    ) {
        let finish = |res: Result<DiskRecord>| {
            // Take the callback out first: it must not run under the lock.
            let done = lock(&pending).take();
            if let Some(done) = done {
                done(res);
            }
        };
        let Some(s) = weak.upgrade() else {
            return finish(Err(HlogError::Closed));
        };
        let buf = match r {
            Ok(b) => b,
            Err(e) => return finish(Err(e.into())),
        };
        let within = (addr.raw() - start) as usize;
        let page_end = (addr.page(s.geo.page_bits) + 1) << s.geo.page_bits;
        let avail = (page_end - addr.raw()) as usize;
        let bytes = buf.get(within..).unwrap_or(&[]);
        match record::record_size_from_header(bytes, avail) {
            Err(e) => finish(Err(e.at(addr))),
            Ok(Some(size)) if within + size <= buf.len() => {
                let rec = &buf[within..within + size];
                if let Err(e) = checksum::verify_record(rec, addr) {
                    return finish(Err(e));
                }
                match record::parse_lengths(rec) {
                    Ok(lengths) => finish(Ok(DiskRecord {
                        address: addr,
                        buf,
                        offset: within,
                        lengths,
                    })),
                    Err(e) => finish(Err(e.at(addr))),
                }
            }
            Ok(need) => {
                let need = need.unwrap_or(HEADER_SIZE);
                let len = align_up((within + need) as u64, s.geo.alignment as u64) as usize;
                if len <= buf.len() {
                    return finish(Err(HlogError::Corrupt {
                        address: addr,
                        reason: "record header inconsistent across reads",
                    }));
                }
                drop(buf);
                if let Err(e) = Shared::issue_read(&s, addr, start, len, pending.clone()) {
                    finish(Err(e));
                }
            }
        }
    }
}
