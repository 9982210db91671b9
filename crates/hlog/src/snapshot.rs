//! [`Hlog::snapshot_to`]: copies an address range of the log to another device (the log part of
//! a CPR snapshot checkpoint).

use std::borrow::BorrowMut;
use std::sync::{Arc, Mutex};

use faster_device::{AlignedBuf, Device, DeviceError};
use faster_epoch::{Guard, Participant};

use crate::address::{Address, align_up};
use crate::checksum;
use crate::error::{HlogError, Result};
use crate::hlog::Hlog;
use crate::record::FILLER_BIT;
use crate::scan::read_sync;
use crate::sync::Ordering;
use faster_sync::lock_std as lock;

/// Largest number of bytes copied and written by one request (raised to the alignment if
/// that is larger).
const CHUNK: u64 = 1 << 20;
/// Most snapshot writes in flight at once.
const MAX_IN_FLIGHT: usize = 8;

/// What [`Hlog::snapshot_to`] wrote: log address `a` of `[from, to)` is stored at target
/// offset `a - base`.
///
/// The target holds `[0, bytes_written)`, which may be longer than `to - base`: the last
/// write is padded with zeros to the alignment. Bytes of `[0, from - base)` are zeros too (not
/// log bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// `from` rounded down to the alignment (the larger of the target's and the log's).
    pub base: Address,
    /// The first log address copied.
    pub from: Address,
    /// One past the last log address copied.
    pub to: Address,
    /// Bytes written to the target, from offset 0: `to` rounded up to the alignment, minus
    /// `base` (0 if `from == to`).
    pub bytes_written: u64,
}

impl SnapshotInfo {
    /// The target offset of log address `addr`, if `addr` lies in `[from, to)`.
    pub fn target_offset(&self, addr: Address) -> Option<u64> {
        (self.from <= addr && addr < self.to).then(|| addr.raw() - self.base.raw())
    }
}

/// Completions of the snapshot's writes, shared with their callbacks.
#[derive(Default)]
struct WriteState {
    done: usize,
    error: Option<DeviceError>,
}

/// The snapshot's writes to the target: how many were submitted, and their completions.
struct Writes<'a> {
    target: &'a dyn Device,
    submitted: usize,
    state: Arc<Mutex<WriteState>>,
}

impl Writes<'_> {
    fn submit(&mut self, offset: u64, buf: AlignedBuf) -> Result<()> {
        let state = self.state.clone();
        self.target.write(
            offset,
            Box::new(buf),
            Box::new(move |r| {
                let mut st = lock(&state);
                st.done += 1;
                if let Err(e) = r {
                    st.error.get_or_insert(e);
                }
            }),
        )?;
        self.submitted += 1;
        Ok(())
    }

    /// Drives the target's completions until at most `pending` of our writes are in flight;
    /// fails with the first write error.
    fn wait_until(&self, pending: usize) -> Result<()> {
        loop {
            {
                let mut st = lock(&self.state);
                if let Some(e) = st.error.take() {
                    return Err(e.into());
                }
                if self.submitted - st.done <= pending {
                    return Ok(());
                }
            }
            // 0: another thread ran our callbacks, or nothing is in flight yet.
            if self.target.wait()? == 0 {
                std::thread::yield_now();
            }
        }
    }
}

impl Hlog {
    /// One step of waiting until every record allocated below `addr` (an address at or below
    /// the tail, loaded before this call) is completely written: `true` once it is. The
    /// first call for an address requests an epoch action that runs once every participant
    /// protected now has refreshed, and a participant writes the record it allocated before
    /// its next refresh (see [`Hlog::allocate`]); each call refreshes `guard` and returns.
    /// For a caller that must do other work between steps (a checkpoint driver acting for
    /// idle sessions), before [`Hlog::snapshot_to`] of a range that ends near the tail.
    pub fn try_wait_written<P: BorrowMut<Participant>>(
        &self,
        guard: &mut Guard<P>,
        addr: Address,
    ) -> bool {
        let s = self.shared();
        let a = addr.min(self.tail_address()).raw();
        if s.written_until.load(Ordering::Acquire) >= a {
            return true;
        }
        if s.written_requested.fetch_max(a, Ordering::AcqRel) < a {
            let weak = Arc::downgrade(self.shared_arc());
            guard.bump_epoch(move || {
                if let Some(s) = weak.upgrade() {
                    s.written_until.fetch_max(a, Ordering::AcqRel);
                }
            });
        }
        guard.refresh();
        s.written_until.load(Ordering::Acquire) >= a
    }

    /// Writes the log bytes of `[from, to)` to `target`, log address `a` at target offset
    /// `a - base` (`base` is `from` rounded down to the larger of the target's and the log's
    /// alignment), then flushes `target` so the copy is durable. See [`SnapshotInfo`] for the
    /// exact layout (zeros before `from` and after `to`, up to the alignment).
    ///
    /// Bytes below the head are read from the log's device; the others are copied out of their
    /// page frames under `guard`'s protection, in chunks of at most 1 MiB, with `guard`
    /// refreshed between chunks (so the snapshot does not hold back eviction) and at most 8
    /// writes in flight. A page evicted while the snapshot runs is read from the device (an
    /// evicted page has been flushed). The unused end of the page a recovered log resumed after
    /// (see [`Hlog::recover`]) is copied as page padding.
    ///
    /// Every record copied from memory is stamped with its checksum in the copy (see
    /// [`crate::checksum`]); records read from the device are verified instead, and a
    /// damaged one fails the snapshot.
    ///
    /// **Caller's contract:** every record of the range is completely written (wait for it
    /// with [`Hlog::try_wait_written`]); records updated in place while the snapshot runs are
    /// copied as they are (their checksum covers the bytes copied), so a caller who needs
    /// them stable must keep them from being updated; the log may keep growing at the tail
    /// meanwhile. This call drives completions of the
    /// log's device and of `target` on the calling thread (running their callbacks).
    ///
    /// Errors: [`HlogError::AddressOutOfRange`] unless `begin <= from <= to <= tail`;
    /// [`HlogError::Device`] if a read, write or the final flush fails (after a failure the
    /// target's content is unspecified).
    pub fn snapshot_to<P: BorrowMut<Participant>>(
        &self,
        guard: &mut Guard<P>,
        target: &dyn Device,
        from: Address,
        to: Address,
    ) -> Result<SnapshotInfo> {
        if from < self.begin_address() {
            return Err(HlogError::AddressOutOfRange {
                address: from,
                reason: "snapshot start below the begin address",
            });
        }
        if from > to {
            return Err(HlogError::AddressOutOfRange {
                address: from,
                reason: "snapshot start beyond its end",
            });
        }
        if to > self.tail_address() {
            return Err(HlogError::AddressOutOfRange {
                address: to,
                reason: "snapshot end beyond the tail",
            });
        }
        let align = (self.geometry().alignment as u64).max(target.alignment() as u64);
        let base = from.raw() & !(align - 1);
        let end = if from == to {
            base
        } else {
            align_up(to.raw(), align)
        };
        let mut writes = Writes {
            target,
            submitted: 0,
            state: Arc::default(),
        };
        let copied = self.copy_chunks(guard, &mut writes, align, base, end, from.raw(), to.raw());
        // Whatever happened, let our writes finish before returning.
        let drained = writes.wait_until(0);
        copied?;
        drained?;
        target.flush()?;
        Ok(SnapshotInfo {
            base: Address::from_raw_truncated(base),
            from,
            to,
            bytes_written: end - base,
        })
    }

    /// Copies `[base, end)` (aligned to `align`) chunk by chunk and submits the writes.
    #[allow(clippy::too_many_arguments)]
    fn copy_chunks<P: BorrowMut<Participant>>(
        &self,
        guard: &mut Guard<P>,
        writes: &mut Writes<'_>,
        align: u64,
        base: u64,
        end: u64,
        from: u64,
        to: u64,
    ) -> Result<()> {
        // Chunks end at page boundaries (both are powers of two), so that no record
        // straddles two chunks: each chunk's records are stamped whole.
        let chunk = CHUNK.max(align).max(self.page_size());
        let mut start = base;
        while start < end {
            let stop = ((start / chunk + 1) * chunk).min(end);
            let mut buf = AlignedBuf::new((stop - start) as usize, align as usize)?;
            self.fill(&mut buf, start, from, to)?;
            // Let eviction proceed past what we copied before we wait for the device.
            guard.refresh();
            writes.wait_until(MAX_IN_FLIGHT - 1)?;
            writes.submit(start - base, buf)?;
            start = stop;
        }
        Ok(())
    }

    /// Fills `buf` (zeroed, covering log bytes `[start, start + buf.len())`) with the log bytes
    /// of `[from, to)` it covers, page by page. Runs under the caller's epoch protection.
    fn fill(&self, buf: &mut [u8], start: u64, from: u64, to: u64) -> Result<()> {
        let s = self.shared();
        let bits = s.geo.page_bits;
        let (hole_start, hole_end) = s.hole();
        let stop = start + buf.len() as u64;
        let mut at = start;
        while at < stop {
            let page = at >> bits;
            let page_start = page << bits;
            let page_end = ((page + 1) << bits).min(stop);
            let lo = at.max(from);
            let mut hi = page_end.min(to);
            if lo < hole_end && hi > hole_start {
                // The unused end of the page a recovered log resumed after: padding.
                if (lo..hi).contains(&hole_start) {
                    let i = (hole_start - start) as usize;
                    buf[i..i + 8].copy_from_slice(&FILLER_BIT.to_le_bytes());
                }
                hi = hole_start.max(lo);
            }
            if lo < hi {
                // Word-aligned cover of [lo, hi): `at` and page ends are multiples of 8.
                let (lo8, hi8) = (lo & !7, align_up(hi, 8));
                let out = &mut buf[(lo8 - start) as usize..(hi8 - start) as usize];
                let from_memory = self.copy_piece(page_start, lo8, out)?;
                // Keep only [lo, hi) (zeros around it).
                out[..(lo - lo8) as usize].fill(0);
                let keep = (hi - lo8) as usize;
                out[keep..].fill(0);
                // `lo` is the start of a record (`from`, or a page start) and `hi` the end of
                // one or of the page. Records copied from memory get their checksums; those
                // read from the device must carry intact ones (never stamp over damage).
                if from_memory {
                    checksum::stamp_range(buf, start, (lo, hi), bits);
                } else {
                    checksum::verify_range(buf, start, (lo, hi), bits, |_, _| {})?;
                }
            }
            at = page_end;
        }
        Ok(())
    }

    /// Copies the log bytes at `[lo8, lo8 + out.len())`, inside the page starting at
    /// `page_start`, into `out`: from the frame if the page is in memory (returns `true`),
    /// else from the device (`false`).
    fn copy_piece(&self, page_start: u64, lo8: u64, out: &mut [u8]) -> Result<bool> {
        let s = self.shared();
        // The head is page-aligned: the page is wholly in memory or wholly below the head.
        if page_start >= s.head() {
            // In memory: the caller is protected, so the frame holds this page until the
            // caller refreshes (reusing it needs `safe_head` past the page, which waits for
            // every participant protected when the head moved). Acquire loads: the range may
            // have been published just before the snapshot started.
            s.frame(page_start >> s.geo.page_bits)
                .copy_out_acquire((lo8 - page_start) as usize, out);
            // Defensive re-check: if the frame could have been reused for another page
            // during the copy, the page has been flushed; read it from the device instead.
            if s.safe_head() <= page_start {
                return Ok(true);
            }
        }
        // Below the head: flushed (the head never passes `flushed_until`).
        let ga = s.geo.alignment as u64;
        let hi8 = lo8 + out.len() as u64;
        let (r0, r1) = (lo8 & !(ga - 1), align_up(hi8, ga));
        let data = read_sync(self, r0, (r1 - r0) as usize)?;
        let skip = (lo8 - r0) as usize;
        out.copy_from_slice(&data[skip..skip + out.len()]);
        Ok(false)
    }
}
