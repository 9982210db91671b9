//! Flushing: moving the read-only boundary's bytes to the device, one write per page range,
//! stamping record checksums, and the bookkeeping of which ranges are durable.

use std::borrow::BorrowMut;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use faster_device::AlignedBuf;
use faster_epoch::{Guard, Participant};
use faster_sync::lock_std as lock;

use crate::address::{Address, align_up};
use crate::checksum;
use crate::error::{HlogError, Result};
use crate::hlog::{Hlog, Shared};
use crate::sync::Ordering;

/// Bookkeeping of page flushes. Flushes of one page are serialised (a later range of a page
/// is issued only when the previous write of that page has completed), so two writes of the
/// same device block are never in flight together.
#[derive(Default)]
pub(crate) struct FlushCtl {
    /// Flushes have been requested for `[0, issued_until)`.
    pub(crate) issued_until: u64,
    /// Every write of `[0, flushed)` has completed: the authoritative value, published to
    /// `Shared::flushed_until` (with `fetch_max`) after the lock is released.
    pub(crate) flushed: u64,
    /// Pages with a write in flight, and the end of the range queued behind it.
    pub(crate) in_flight: HashMap<u64, Option<u64>>,
    /// Completed ranges not yet contiguous with `flushed_until` (start -> end).
    pub(crate) done: BTreeMap<u64, u64>,
    /// The first flush failure.
    pub(crate) error: Option<(u64, String)>,
}

impl Hlog {
    /// Makes everything up to the current tail read-only, so that it gets flushed (the first
    /// step of a fold-over checkpoint). Returns the tail it used; wait for the flush with
    /// [`Hlog::flush_until`].
    pub fn shift_read_only_to_tail<P: BorrowMut<Participant>>(
        &self,
        guard: &mut Guard<P>,
    ) -> Address {
        let tail = self.tail_address();
        self.shift_read_only(guard, tail);
        tail
    }

    /// Makes `[.., addr)` read-only if it is not yet, then helps (device completions, epoch
    /// refreshes) until `flushed_until >= addr`. `addr` must not exceed the tail.
    pub fn flush_until<P: BorrowMut<Participant>>(
        &self,
        guard: &mut Guard<P>,
        addr: Address,
    ) -> Result<()> {
        let s = &self.shared;
        if addr > self.tail_address() {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: "flush target beyond the tail",
            });
        }
        self.shift_read_only(guard, addr);
        while s.flushed_until.load(Ordering::Acquire) < addr.raw() {
            self.help(guard)?;
        }
        Ok(())
    }

    /// One step of [`Hlog::flush_until`]: makes `[.., addr)` read-only if it is not yet and
    /// returns `Ok(true)` once `flushed_until >= addr`; otherwise does one round of help
    /// (device completions, an epoch refresh; it may block briefly on in-flight I/O) and
    /// returns `Ok(false)`. For a caller that must do other work between steps (a checkpoint
    /// driver that keeps idle participants from holding the epoch back).
    pub fn try_flush_until<P: BorrowMut<Participant>>(
        &self,
        guard: &mut Guard<P>,
        addr: Address,
    ) -> Result<bool> {
        if addr > self.tail_address() {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: "flush target beyond the tail",
            });
        }
        self.shift_read_only(guard, addr);
        if self.shared.flushed_until.load(Ordering::Acquire) >= addr.raw() {
            return Ok(true);
        }
        self.help(guard)?;
        Ok(self.shared.flushed_until.load(Ordering::Acquire) >= addr.raw())
    }
}

impl Shared {
    pub(crate) fn check_flush(&self) -> Result<()> {
        if !self.flush_failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let c = lock(&self.flush);
        let (address, message) = c
            .error
            .clone()
            .unwrap_or((0, "unknown flush failure".to_owned()));
        Err(HlogError::FlushFailed {
            address: Address::from_raw_truncated(address),
            message,
        })
    }

    /// Requests flushes of `[issued_until, until)`, one write per page (queued behind a
    /// write of the same page already in flight).
    pub(crate) fn request_flush(self: &Arc<Self>, until: u64) {
        let mut issue = Vec::new();
        {
            let mut c = lock(&self.flush);
            while c.issued_until < until {
                let from = c.issued_until;
                let page = from >> self.geo.page_bits;
                let to = until.min((page + 1) << self.geo.page_bits);
                c.issued_until = to;
                match c.in_flight.get_mut(&page) {
                    Some(queued) => *queued = Some(to),
                    None => {
                        c.in_flight.insert(page, None);
                        issue.push((from, to));
                    }
                }
            }
        }
        for (from, to) in issue {
            self.issue_write(from, to);
        }
    }

    /// Copies `[from, to)` (one page) into an aligned buffer starting at the aligned block
    /// containing `from` (bytes past `to` stay zero), stamps the checksums of the records
    /// the write covers (see [`checksum::stamp_flush`]) and writes it to the device.
    ///
    /// The frame bytes are stable: they are below `safe_read_only`, so every writer has
    /// finished with them, and the frame cannot be reused before this range completes (reuse
    /// needs `flushed_until` past it).
    pub(crate) fn issue_write(self: &Arc<Self>, from: u64, to: u64) {
        let align = self.geo.alignment as u64;
        let start = from & !(align - 1);
        let end = align_up(to, align);
        let page = from >> self.geo.page_bits;
        let in_page = (start - (page << self.geo.page_bits)) as usize;
        let result = AlignedBuf::new((end - start) as usize, self.geo.alignment)
            .map_err(HlogError::from)
            .and_then(|mut buf| {
                let frame = self.frame(page);
                let bytes = &mut buf[..(to - start) as usize];
                frame.copy_out(in_page, bytes);
                let page_start = page << self.geo.page_bits;
                checksum::stamp_flush(
                    frame.words(),
                    page_start,
                    checksum::first_record(page_start),
                    (start, to),
                    bytes,
                );
                let weak = Arc::downgrade(self);
                self.device
                    .write(
                        start,
                        Box::new(buf),
                        Box::new(move |r| {
                            if let Some(s) = weak.upgrade() {
                                s.write_done(from, to, r.map_err(HlogError::from));
                            }
                        }),
                    )
                    .map_err(HlogError::from)
            });
        if let Err(e) = result {
            self.write_done(from, to, Err(e));
        }
    }

    /// Completion of the flush of `[from, to)`: advance `flushed_until` over the contiguous
    /// completed prefix, then issue the range queued behind this write, if any.
    pub(crate) fn write_done(self: &Arc<Self>, from: u64, to: u64, r: Result<()>) {
        // The bookkeeping is done under the lock; the atomics are published after it is
        // released (no loom operation may run while a std mutex is held). `flushed` inside
        // the lock is authoritative and `fetch_max` keeps the atomic monotonic however the
        // publications of concurrent completions interleave.
        let (flushed, next) = {
            let mut c = lock(&self.flush);
            if let Err(e) = r {
                if c.error.is_none() {
                    c.error = Some((from, e.to_string()));
                }
                drop(c);
                self.flush_failed.store(true, Ordering::Release);
                return;
            }
            c.done.insert(from, to);
            let mut f = c.flushed;
            while let Some(end) = c.done.remove(&f) {
                f = end;
            }
            c.flushed = f;
            let page = from >> self.geo.page_bits;
            let next = match c.in_flight.get_mut(&page).map(Option::take) {
                Some(Some(queued)) => Some((to, queued)),
                Some(None) => {
                    c.in_flight.remove(&page);
                    None
                }
                None => None,
            };
            (f, next)
        };
        self.flushed_until.fetch_max(flushed, Ordering::AcqRel);
        if let Some((a, b)) = next {
            self.issue_write(a, b);
        }
    }
}
