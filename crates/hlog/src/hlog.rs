//! [`Hlog`]: the hybrid log itself: tail allocation, region shifts, flush and eviction,
//! in-memory access and asynchronous reads of on-disk records.

use std::borrow::BorrowMut;
use std::sync::atomic::AtomicU64 as FrameWord;
use std::sync::{Arc, Mutex, Weak};

use faster_sync::lock_std as lock;

use crossbeam_utils::CachePadded;
use faster_device::Device;
use faster_epoch::{Guard, LightEpoch, Participant};

use crate::address::{Address, align_up};
use crate::config::{Geometry, HlogConfig};
use crate::error::{HlogError, Result};
use crate::flush::FlushCtl;
use crate::frame::Frame;
use crate::record::{self, NewRecord, RecordRef};
use crate::sync::{self, AtomicBool, AtomicU64, Ordering};

/// Extra bits of the offset field of the packed tail word beyond `page_bits`: up to 2^16
/// threads can overshoot a page (each adds at most one page-sized allocation to a closed page
/// before it waits for the page turn) without the offset overflowing into the page number.
const OVERSHOOT_BITS: u32 = 16;

/// The hybrid log. See the [crate documentation](crate) for the model.
///
/// `Hlog` is `Send + Sync`; share it by reference or in an `Arc`. Every method that touches
/// page frames takes a [`Guard`] of the [`LightEpoch`] the log was built with.
pub struct Hlog {
    pub(crate) shared: Arc<Shared>,
}

/// State shared with epoch actions and device callbacks (which hold a `Weak` to it).
pub(crate) struct Shared {
    pub(crate) geo: Geometry,
    pub(crate) page_size: u64,
    pub(crate) offset_bits: u32,
    pub(crate) max_pages: u64,
    pub(crate) frames: Box<[Frame]>,
    /// `frames - 1` if the frame count is a power of two, else 0. A page's frame is
    /// `page & frame_mask` if this is not 0, else `page % frames` (also right for one frame).
    pub(crate) frame_mask: u64,
    pub(crate) device: Arc<dyn Device>,
    pub(crate) epoch: LightEpoch,
    /// Packed tail: page number in the high bits, offset in the low `offset_bits` bits.
    pub(crate) tail: CachePadded<AtomicU64>,
    /// The logical begin address: records below it are gone for every reader that loads it
    /// (see [`Hlog::shift_begin_address`]).
    pub(crate) begin: AtomicU64,
    /// The physical begin: the device's bytes below it may be deleted; reads below it fail
    /// (see [`Hlog::truncate_until`]). At or below `begin`.
    pub(crate) truncated: AtomicU64,
    pub(crate) head: AtomicU64,
    pub(crate) safe_head: AtomicU64,
    pub(crate) read_only: AtomicU64,
    pub(crate) safe_read_only: AtomicU64,
    pub(crate) flushed_until: AtomicU64,
    pub(crate) flush: Mutex<FlushCtl>,
    pub(crate) flush_failed: AtomicBool,
    /// Set (after `turn_failed`) when the thread that closed a page failed to open the next
    /// one: from then on `allocate` fails *before* touching the tail word, so failed calls
    /// cannot carry the packed offset into the page number.
    pub(crate) turn_failed_flag: AtomicBool,
    /// Why the page turn failed.
    pub(crate) turn_failed: Mutex<Option<String>>,
    pub(crate) frames_reused: AtomicU64,
    pub(crate) pages_opened: AtomicU64,
    /// Every record below this address is completely written (see
    /// [`Hlog::try_wait_written`]); moved only by epoch actions.
    pub(crate) written_until: AtomicU64,
    /// The highest address a `written_until` action was requested for.
    pub(crate) written_requested: AtomicU64,
    /// `[start, end)`: the unused end of the page a recovered log resumed after (see
    /// [`Hlog::recover`]); empty (`0..0`) for a log built by [`Hlog::new`]. Fixed at
    /// construction. Bytes there are not log bytes: reads reject them, scans and snapshots
    /// treat them as page padding.
    pub(crate) hole: (u64, u64),
    /// Called while a page turn waits for its frame's old page to be evicted (see
    /// [`Hlog::set_stall_hook`]).
    pub(crate) stall_hook: std::sync::OnceLock<StallHook>,
}

/// What a page turn calls while it waits for participants to let an old page go.
pub type StallHook = Box<dyn Fn() + Send + Sync>;

/// Rounds of help between two calls of the stall hook.
const STALL_ROUNDS: u32 = 64;

impl Hlog {
    /// Builds an empty log over `device` (which should be empty: the log writes logical
    /// address `a` at device offset `a`), protected by `epoch`. Allocates every page frame
    /// up front.
    ///
    /// Fails with [`HlogError::InvalidConfig`] if the configuration is invalid, in particular
    /// if the memory budget holds fewer than [`crate::config::MIN_FRAMES`] pages or the page
    /// size is smaller than the device alignment.
    pub fn new(config: HlogConfig, device: Arc<dyn Device>, epoch: LightEpoch) -> Result<Hlog> {
        let geo = config.validate(device.alignment())?;
        let page_size = geo.page_size();
        let frames = (0..geo.frames)
            .map(|_| {
                Frame::new(page_size as usize, geo.alignment)
                    .ok_or_else(|| HlogError::InvalidConfig("bad frame layout".into()))
            })
            .collect::<Result<Vec<_>>>()?
            .into_boxed_slice();
        let offset_bits = geo.page_bits + OVERSHOOT_BITS;
        let first = Address::FIRST_VALID.raw();
        let shared = Shared {
            geo,
            page_size,
            offset_bits,
            max_pages: 1 << (Address::BITS - geo.page_bits),
            frames,
            frame_mask: if geo.frames.is_power_of_two() {
                geo.frames - 1
            } else {
                0
            },
            device,
            epoch,
            tail: CachePadded::new(AtomicU64::new(first)),
            begin: AtomicU64::new(first),
            truncated: AtomicU64::new(first),
            head: AtomicU64::new(0),
            safe_head: AtomicU64::new(0),
            read_only: AtomicU64::new(0),
            safe_read_only: AtomicU64::new(0),
            flushed_until: AtomicU64::new(0),
            flush: Mutex::new(FlushCtl::default()),
            flush_failed: AtomicBool::new(false),
            turn_failed_flag: AtomicBool::new(false),
            turn_failed: Mutex::new(None),
            frames_reused: AtomicU64::new(0),
            pages_opened: AtomicU64::new(0),
            written_until: AtomicU64::new(first),
            written_requested: AtomicU64::new(first),
            hole: (0, 0),
            stall_hook: std::sync::OnceLock::new(),
        };
        Ok(Hlog {
            shared: Arc::new(shared),
        })
    }

    /// Sets the hook a page turn calls (every few rounds of help) while it waits for the
    /// participants that still protect the frame's old page: the owner of the participants
    /// can release those that are idle (the store clears idle sessions' protection, which
    /// would otherwise hold eviction back until they call again). Set once; later calls
    /// change nothing and return `false`.
    pub fn set_stall_hook(&self, hook: StallHook) -> bool {
        self.shared.stall_hook.set(hook).is_ok()
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The shared state's `Arc`, for epoch actions that hold a `Weak` to it.
    pub(crate) fn shared_arc(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Moves the boundaries of a freshly built log that nobody else references yet (no epoch
    /// action, device callback or scan holds its state) for [`Hlog::recover`]: the log begins
    /// at `begin`, its device holds valid bytes up to `end`, and it resumes at the page
    /// boundary `boundary >= end`, which becomes the tail, head, read-only and flushed
    /// boundaries (and their safe twins). The caller has validated the three addresses.
    pub(crate) fn rebase(&mut self, begin: u64, end: u64, boundary: u64) -> Result<()> {
        let s = Arc::get_mut(&mut self.shared).ok_or(HlogError::InvalidArgument(
            "rebase of a log that is already shared",
        ))?;
        debug_assert!(begin <= end && end <= boundary && boundary % s.page_size == 0);
        let page = boundary >> s.geo.page_bits;
        if page >= s.max_pages {
            return Err(HlogError::LogFull);
        }
        s.tail.store(page << s.offset_bits, Ordering::Release);
        s.begin.store(begin, Ordering::Release);
        s.truncated.store(begin, Ordering::Release);
        for w in [
            &s.head,
            &s.safe_head,
            &s.read_only,
            &s.safe_read_only,
            &s.flushed_until,
            &s.written_until,
            &s.written_requested,
        ] {
            w.store(boundary, Ordering::Release);
        }
        {
            let mut c = lock(&s.flush);
            c.issued_until = boundary;
            c.flushed = boundary;
        }
        s.hole = (end, boundary);
        Ok(())
    }

    /// The validated geometry (page size, frames, mutable pages, alignment).
    pub fn geometry(&self) -> Geometry {
        self.shared.geo
    }
    /// The page size in bytes.
    pub fn page_size(&self) -> u64 {
        self.shared.page_size
    }
    /// The device the log flushes to and reads from.
    pub fn device(&self) -> &Arc<dyn Device> {
        &self.shared.device
    }
    /// The epoch the log is protected by.
    pub fn epoch(&self) -> &LightEpoch {
        &self.shared.epoch
    }
    /// The first valid address of the log.
    pub fn begin_address(&self) -> Address {
        Address::from_raw_truncated(self.shared.begin.load(Ordering::Acquire))
    }
    /// The head: addresses below it are not in memory (page-aligned).
    pub fn head_address(&self) -> Address {
        Address::from_raw_truncated(self.shared.head.load(Ordering::Acquire))
    }
    /// The head as every participant has seen it: frames of pages below it may be reused.
    pub fn safe_head_address(&self) -> Address {
        Address::from_raw_truncated(self.shared.safe_head.load(Ordering::Acquire))
    }
    /// The read-only boundary: records below it must not be updated in place.
    pub fn read_only_address(&self) -> Address {
        Address::from_raw_truncated(self.shared.read_only.load(Ordering::Acquire))
    }
    /// The read-only boundary as every participant has seen it: bytes below it are being or
    /// have been flushed.
    pub fn safe_read_only_address(&self) -> Address {
        Address::from_raw_truncated(self.shared.safe_read_only.load(Ordering::Acquire))
    }
    /// Every byte below this address has been written to the device (the writes completed;
    /// call `device().flush()` for durability).
    pub fn flushed_until_address(&self) -> Address {
        Address::from_raw_truncated(self.shared.flushed_until.load(Ordering::Acquire))
    }
    /// The tail: the next address to be allocated (the end of the closed page while a page
    /// turn is under way).
    pub fn tail_address(&self) -> Address {
        self.shared.tail_address()
    }
    /// Whether `addr` lies in the mutable region (`addr >= read_only`), where records may be
    /// updated in place. Meaningful under epoch protection.
    pub fn is_mutable(&self, addr: Address) -> bool {
        addr.raw() >= self.shared.read_only.load(Ordering::Acquire)
    }
    /// How many times a page frame has been reused for a newer page.
    pub fn frames_reused(&self) -> u64 {
        self.shared.frames_reused.load(Ordering::Relaxed)
    }
    /// How many pages have been opened after page 0 (one per completed page turn).
    pub fn pages_opened(&self) -> u64 {
        self.shared.pages_opened.load(Ordering::Relaxed)
    }

    /// Allocates `size` bytes (rounded up to a multiple of 8) at the tail and returns their
    /// address. The space lies in one page and in the mutable region.
    ///
    /// Lock-free in the common case: one `fetch_add` on the packed tail word. The thread whose
    /// allocation crosses the page end pads the page and opens the next one; if that page's
    /// frame still holds an old page, it moves read-only and head, completes device I/O and
    /// refreshes `guard` until the frame is flushed and safe to reuse. Threads that overshot
    /// the closed page help the same way until the next page opens, then retry.
    ///
    /// **Because it may refresh `guard`, write the record into the space before the next
    /// refresh (before the next `allocate` with the same guard, too):** the flush of a page
    /// waits only for participants to refresh, not for records to be written.
    ///
    /// Errors: [`HlogError::RecordTooLarge`] if `size` exceeds the page size,
    /// [`HlogError::InvalidArgument`] for zero, [`HlogError::FlushFailed`] if a page cannot be
    /// evicted because its flush failed, [`HlogError::LogFull`] past 2^48.
    pub fn allocate<P: BorrowMut<Participant>>(
        &self,
        guard: &mut Guard<P>,
        size: u64,
    ) -> Result<Address> {
        let s = &self.shared;
        if size == 0 {
            return Err(HlogError::InvalidArgument("zero-byte allocation"));
        }
        if size > s.page_size {
            return Err(HlogError::RecordTooLarge {
                size,
                page_size: s.page_size,
            });
        }
        let size = align_up(size, 8);
        loop {
            // A failed page turn is final; fail before adding to the tail word, so that no
            // number of failing calls can carry the offset into the page number.
            if s.turn_failed_flag.load(Ordering::Acquire) {
                return Err(s.turn_failed_error(s.unpack(s.tail.load(Ordering::Acquire)).0 + 1));
            }
            let old = s.tail.fetch_add(size, Ordering::AcqRel);
            let (page, off) = s.unpack(old);
            if off + size <= s.page_size {
                return Ok(Address::from_raw_truncated((page << s.geo.page_bits) + off));
            }
            if off <= s.page_size {
                // This allocation crossed the page end: close the page and open the next.
                if off < s.page_size {
                    let words = s.frame(page).words();
                    record::write_filler(&words[(off / 8) as usize]);
                }
                // Threads waiting for this page turn must not wait forever, even if opening
                // the page panics (a user read callback run while helping, say).
                let turn = TurnGuard { shared: s };
                let opened = self.open_page(guard, page + 1);
                std::mem::forget(turn);
                if let Err(e) = opened {
                    s.fail_turn(e.to_string());
                    return Err(e);
                }
            } else {
                self.wait_page_turn(guard, page)?;
            }
        }
    }

    /// Waits, helping, until the tail has moved past `page`.
    fn wait_page_turn<P: BorrowMut<Participant>>(
        &self,
        guard: &mut Guard<P>,
        page: u64,
    ) -> Result<()> {
        let s = &self.shared;
        if page + 1 >= s.max_pages {
            return Err(HlogError::LogFull);
        }
        while s.unpack(s.tail.load(Ordering::Acquire)).0 == page {
            if s.turn_failed_flag.load(Ordering::Acquire) {
                return Err(s.turn_failed_error(page + 1));
            }
            self.help(guard)?;
        }
        Ok(())
    }

    /// Opens page `n` (called by the one thread that closed page `n - 1`).
    fn open_page<P: BorrowMut<Participant>>(&self, guard: &mut Guard<P>, n: u64) -> Result<()> {
        let s = &self.shared;
        if n >= s.max_pages {
            return Err(HlogError::LogFull);
        }
        let bits = s.geo.page_bits;
        // Pages n + 1 - mutable_pages ..= n stay mutable; everything below becomes read-only.
        let ro = (n + 1).saturating_sub(s.geo.mutable_pages) << bits;
        self.shift_read_only(guard, Address::from_raw_truncated(ro));
        if n >= s.geo.frames {
            // Frame n % frames holds page n - frames: it must be flushed and evicted.
            let need = (n - s.geo.frames + 1) << bits;
            let mut rounds = 0u32;
            while s.safe_head.load(Ordering::Acquire) < need {
                if s.flushed_until.load(Ordering::Acquire) >= need {
                    self.shift_head(guard, need);
                }
                self.help(guard)?;
                rounds = rounds.wrapping_add(1);
                if rounds % STALL_ROUNDS == 0
                    && let Some(hook) = s.stall_hook.get()
                {
                    hook();
                }
            }
            // Two loads per page turn: cheap enough to check in release builds (and the loom
            // model, which runs in release), and a violation would corrupt unflushed data.
            assert!(
                s.safe_head.load(Ordering::Acquire) >= need
                    && s.flushed_until.load(Ordering::Acquire) >= need,
                "frame of page {} reused before its old page was flushed and safely evicted",
                n - s.geo.frames
            );
            s.frame(n).zero();
            s.frames_reused.fetch_add(1, Ordering::Relaxed);
        }
        s.pages_opened.fetch_add(1, Ordering::Relaxed);
        // A swap, not a plain store: every other access to the tail word is a read-modify-
        // write, and an RMW in the modification order of the word is what the
        // overshooters' `fetch_add`s must order against (loom, which keeps the modification
        // order of plain stores partial, otherwise lets a later `fetch_add` read a value from
        // before the turn). It costs one locked instruction per page.
        let closed = s.tail.swap(n << s.offset_bits, Ordering::AcqRel);
        debug_assert_eq!(s.unpack(closed).0, n - 1, "two threads opened page {n}");
        Ok(())
    }

    /// One round of help: report a failed flush, reap device completions, refresh the epoch
    /// (which runs ready actions), and if nothing completed, block on in-flight I/O or yield
    /// to the participants that hold the epoch back.
    pub(crate) fn help<P: BorrowMut<Participant>>(&self, guard: &mut Guard<P>) -> Result<()> {
        let s = &self.shared;
        s.check_flush()?;
        let done = s.device.poll()?;
        guard.refresh();
        if done == 0 && (s.device.in_flight() == 0 || s.device.wait()? == 0) {
            // Nothing completed (another thread may be running the callbacks): let the
            // participants and helpers we wait for run.
            sync::yield_now();
        }
        Ok(())
    }

    /// Raises the read-only boundary to `addr`, clamped to the tail (never lowers it). The
    /// new boundary is published at once; an epoch action moves `safe_read_only` and issues
    /// the flushes of the newly read-only bytes once every participant has seen it.
    pub fn shift_read_only<P: BorrowMut<Participant>>(&self, guard: &mut Guard<P>, addr: Address) {
        let s = &self.shared;
        // Never beyond the tail: bytes past it may not be written, or the frame may still
        // hold an older page.
        let addr = addr.min(s.tail_address()).raw();
        if s.read_only.fetch_max(addr, Ordering::AcqRel) >= addr {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        guard.bump_epoch(move || {
            if let Some(s) = weak.upgrade() {
                s.safe_read_only.fetch_max(addr, Ordering::AcqRel);
                Shared::request_flush(&s, addr);
            }
        });
    }

    /// Raises the head to `addr`; an epoch action moves `safe_head` once every participant
    /// has seen it. Callers keep `addr <= flushed_until`.
    fn shift_head<P: BorrowMut<Participant>>(&self, guard: &mut Guard<P>, addr: u64) {
        let s = &self.shared;
        if s.head.fetch_max(addr, Ordering::AcqRel) >= addr {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        guard.bump_epoch(move || {
            if let Some(s) = weak.upgrade() {
                s.safe_head.fetch_max(addr, Ordering::AcqRel);
            }
        });
    }

    /// Allocates space for `rec` and writes it; returns its address.
    pub fn append<P: BorrowMut<Participant>>(
        &self,
        guard: &mut Guard<P>,
        rec: &NewRecord<'_>,
    ) -> Result<Address> {
        let size = rec.size()?;
        let addr = self.allocate(guard, size)?;
        self.write_at(guard, addr, rec)?;
        Ok(addr)
    }

    /// Writes `rec` into space obtained from [`Hlog::allocate`] at `addr` (of at least
    /// `rec.size()` bytes). The header word is written last, with release ordering.
    pub fn write_at<P: BorrowMut<Participant>>(
        &self,
        _guard: &Guard<P>,
        addr: Address,
        rec: &NewRecord<'_>,
    ) -> Result<()> {
        let s = &self.shared;
        let size = rec.size()?;
        let words = s.words_at(addr, "write_at")?;
        if size as usize > words.len() * 8 {
            return Err(HlogError::RecordTooLarge {
                size,
                page_size: s.page_size,
            });
        }
        record::write_record(&words[..size as usize / 8], rec);
        Ok(())
    }

    /// The record at `addr` if it is in memory: `Ok(None)` if `addr` is below the head (read
    /// it with [`Hlog::read_async`]), [`HlogError::AddressOutOfRange`] if it is below the
    /// truncation point ([`Hlog::truncated_address`]) or misaligned, a format error if the bytes there are not a record. The
    /// borrow is tied to `guard`, which cannot refresh while it lives.
    ///
    /// `addr` must be the address of a completely written record (one published by its
    /// writer, e.g. through the index); otherwise the decode may fail or see partial bytes.
    ///
    /// **An address at or past the tail is not detected in release builds** (the check cost
    /// about 12 instructions per lookup on the store's hot path); debug builds still return
    /// [`HlogError::AddressOutOfRange`] for it. In release builds `get` decodes whatever the
    /// address's frame holds: past the tail on the tail's page, zeros (a format error,
    /// "unwritten space") or a record another thread is writing; on a later page, the bytes
    /// of the older page that frame holds, which may decode as a stale record returned as if
    /// it were at `addr`. It never reads outside the log's frames, so memory safety does not
    /// depend on this; callers must only pass addresses taken from the log (index entries,
    /// previous-address links, addresses returned by [`Hlog::append`]).
    pub fn get<'a, P: BorrowMut<Participant>>(
        &'a self,
        _guard: &'a Guard<P>,
        addr: Address,
    ) -> Result<Option<RecordRef<'a>>> {
        let s = &self.shared;
        let a = s.readable(addr)?;
        // One load of the head decides: a second load (in `words_at`) could see a head
        // shift that happened in between and turn "not in memory" into an error.
        let head = s.head.load(Ordering::Acquire);
        if a < head {
            return Ok(None);
        }
        // The tail check only in debug builds (see the contract above). The slice ends at
        // the end of the frame whatever the address, and the parse validates the bytes.
        if cfg!(debug_assertions) && addr >= s.tail_address() {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: "get: at or past the tail",
            });
        }
        RecordRef::parse(addr, s.frame_words(addr)).map(Some)
    }

    /// [`Hlog::get`] of an address the caller knows is in memory: at or above the begin
    /// address, and at or above a head address it loaded under `guard` (pages at or above
    /// that head cannot be evicted while `guard` lives, so the head need not be loaded
    /// again). Skips those checks and the `Option`; otherwise the same contract as `get`,
    /// including its memory safety: it never reads outside the log's frames, whatever the
    /// address.
    #[inline(always)]
    pub fn get_resident<'a, P: BorrowMut<Participant>>(
        &'a self,
        _guard: &'a Guard<P>,
        addr: Address,
    ) -> Result<RecordRef<'a>> {
        let s = &self.shared;
        debug_assert!(addr.raw() % 8 == 0, "misaligned record address {addr:?}");
        // The head may have moved past `addr` since the caller loaded it, but the frames
        // every participant has let go of (below the safe head) cannot include it.
        debug_assert!(
            addr.raw() >= s.safe_head.load(Ordering::Acquire),
            "get_resident({addr:?}) below the safe head: not in memory"
        );
        RecordRef::parse(addr, s.frame_words(addr))
    }

    /// [`Hlog::get_resident`] specialised to the most common record, for the store's
    /// per-operation fast paths: `Some` if the record at `addr` has the 8-byte key `key` and
    /// an 8-byte value in a capacity of 8 (see [`RecordRef::key_eq`] and
    /// [`RecordRef::value_capacity`]); `None` for any other record, or for bytes that are not
    /// a record, which the caller then reads through `get_resident`. The same contract as
    /// `get_resident` otherwise (`addr` at or above a head loaded under `guard`, and at or
    /// above the begin address), and the same memory safety whatever the address.
    #[inline(always)]
    pub fn get_resident_word8<'a, P: BorrowMut<Participant>>(
        &'a self,
        _guard: &'a Guard<P>,
        addr: Address,
        key: [u8; 8],
    ) -> Option<RecordRef<'a>> {
        let s = &self.shared;
        RecordRef::parse_word8(addr, s.frame_words(addr), u64::from_le_bytes(key))
    }

    /// Hints the CPU to start loading the record at `addr` if it is in memory, so that a later
    /// [`Hlog::get`] of it finds it in the cache: the cache line of its header, and the next
    /// line too if the record starts past the first quarter of its line (a small record, such
    /// as a header with an 8-byte key and value, then spans two lines). A pure hint: it reads
    /// only the head, never fails, and does nothing for addresses below the head. Batched
    /// operations issue it for several records before reading any of them.
    #[inline]
    pub fn prefetch(&self, addr: Address) {
        let s = &self.shared;
        let a = addr.raw();
        if a < s.head.load(Ordering::Relaxed) {
            return;
        }
        let frame = s.frame(addr.page(s.geo.page_bits));
        let word = (addr.offset(s.geo.page_bits) / 8) as usize;
        frame.prefetch(word);
        // A record of 48 bytes or more that starts past byte 16 of a line continues in the next.
        if a % 64 > 16 {
            frame.prefetch(word + (64 - (a % 64) as usize) / 8);
        }
    }
}

impl Drop for Hlog {
    /// Completes every device request in flight (flush writes run their bookkeeping, reads
    /// their callbacks) before the frames are freed.
    fn drop(&mut self) {
        let _ = faster_device::drain(&*self.shared.device);
    }
}

impl std::fmt::Debug for Hlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hlog")
            .field("geometry", &self.shared.geo)
            .field("begin", &self.begin_address())
            .field("head", &self.head_address())
            .field("safe_head", &self.safe_head_address())
            .field("read_only", &self.read_only_address())
            .field("safe_read_only", &self.safe_read_only_address())
            .field("flushed_until", &self.flushed_until_address())
            .field("tail", &self.tail_address())
            .finish()
    }
}

impl Shared {
    pub(crate) fn unpack(&self, word: u64) -> (u64, u64) {
        (
            word >> self.offset_bits,
            word & ((1 << self.offset_bits) - 1),
        )
    }

    pub(crate) fn tail_address(&self) -> Address {
        let (page, off) = self.unpack(self.tail.load(Ordering::Acquire));
        Address::from_raw_truncated((page << self.geo.page_bits) + off.min(self.page_size))
    }

    pub(crate) fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// The raw address of `addr` if a record may start there: at or above the truncation
    /// point and 8-byte aligned (the check of [`Hlog::get`] and [`Hlog::read_async`]). A
    /// record below the (logical) begin address but above the truncation point is still
    /// readable: an operation that loaded the begin address before a shift may finish its
    /// walk there (see [`Hlog::shift_begin_address`]).
    #[inline]
    pub(crate) fn readable(&self, addr: Address) -> Result<u64> {
        let a = addr.raw();
        if a < self.truncated.load(Ordering::Acquire) || a % 8 != 0 {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: "below the log's truncation point or misaligned",
            });
        }
        Ok(a)
    }

    pub(crate) fn safe_read_only(&self) -> u64 {
        self.safe_read_only.load(Ordering::Acquire)
    }

    pub(crate) fn safe_head(&self) -> u64 {
        self.safe_head.load(Ordering::Acquire)
    }

    /// The unused end `[start, end)` of the page a recovered log resumed after (`(0, 0)` for
    /// a log built by [`Hlog::new`]).
    pub(crate) fn hole(&self) -> (u64, u64) {
        self.hole
    }

    // `inline(always)`: LLVM kept it out of line (the division below), a call on every
    // record access of the store's fast paths.
    #[inline(always)]
    pub(crate) fn frame(&self, page: u64) -> &Frame {
        // A mask instead of a 64-bit division when the frame count is a power of two (always,
        // for power-of-two budgets and pages); the division stays for other counts.
        let i = if self.frame_mask != 0 {
            page & self.frame_mask
        } else {
            page % self.geo.frames
        };
        &self.frames[i as usize]
    }

    /// The words from `addr` to the end of its page, if `addr` is in `[head, tail)` and
    /// 8-aligned.
    pub(crate) fn words_at(&self, addr: Address, what: &'static str) -> Result<&[FrameWord]> {
        self.words_from(addr, self.head(), what)
    }

    /// [`Shared::words_at`] with the head the caller loaded (under its epoch protection).
    #[inline]
    pub(crate) fn words_from(
        &self,
        addr: Address,
        head: u64,
        what: &'static str,
    ) -> Result<&[FrameWord]> {
        let a = addr.raw();
        if a % 8 != 0 || a < head || addr >= self.tail_address() {
            return Err(HlogError::AddressOutOfRange {
                address: addr,
                reason: what,
            });
        }
        Ok(self.frame_words(addr))
    }

    /// The words from `addr` to the end of its page, in the frame that page maps to (the
    /// caller has checked that the page is in memory). Never out of bounds: an offset within
    /// a page is within a frame.
    #[inline(always)]
    pub(crate) fn frame_words(&self, addr: Address) -> &[FrameWord] {
        let page = addr.page(self.geo.page_bits);
        let off = addr.offset(self.geo.page_bits) as usize / 8;
        &self.frame(page).words()[off..]
    }

    /// Records that the page turn failed (first message wins) and wakes its waiters.
    pub(crate) fn fail_turn(&self, message: String) {
        lock(&self.turn_failed).get_or_insert(message);
        self.turn_failed_flag.store(true, Ordering::Release);
    }

    pub(crate) fn turn_failed_error(&self, page: u64) -> HlogError {
        let message = lock(&self.turn_failed)
            .clone()
            .unwrap_or_else(|| "unknown page-turn failure".to_owned());
        HlogError::PageTurnFailed { page, message }
    }
}

/// Marks the page turn failed if the thread that closed a page unwinds before opening the
/// next one (disarmed with `mem::forget` on the normal path), so that the threads waiting
/// for the turn get [`HlogError::PageTurnFailed`] instead of waiting forever.
struct TurnGuard<'a> {
    shared: &'a Shared,
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .fail_turn("the thread opening the page panicked".to_owned());
    }
}
