//! # faster-hlog: the hybrid log
//!
//! This crate owns FASTER's *hybrid log*: a logical, append-only address space of 2^48 bytes
//! cut into fixed-size pages, whose newest pages live in a circular buffer of in-memory page
//! frames and whose older pages live on a [`faster_device::Device`].
//!
//! ## Key types
//!
//! * [`Hlog`]: the log. [`Hlog::allocate`] / [`Hlog::append`] at the tail, [`Hlog::get`] for
//!   in-memory records, [`Hlog::read_async`] + [`Hlog::complete_pending`] for on-disk ones,
//!   [`Hlog::scan`] for ranges, [`Hlog::shift_read_only_to_tail`] / [`Hlog::flush_until`] for
//!   fold-over checkpoints, [`Hlog::snapshot_to`] to copy a range to another device for
//!   snapshot checkpoints (layout in [`SnapshotInfo`]), and [`Hlog::recover`] to open a log
//!   over a device that already holds log bytes.
//! * [`HlogConfig`]: page size (default 1 MiB), memory budget (default 64 MiB) and mutable
//!   fraction (default 0.9).
//! * [`Address`]: a 48-bit logical address; [`record`]: the record format ([`RecordRef`] in
//!   memory, [`RecordView`] over bytes, [`NewRecord`] to write);
//!   [`HlogError`] / [`Result`].
//!
//! ## Regions and invariants
//!
//! ```text
//!  begin <= head <= read_only <= tail          (safe_head <= head, safe_read_only <= read_only)
//!  | on disk | in memory, read-only | mutable |
//! ```
//!
//! * The log starts at [`Address::FIRST_VALID`] (64): the first 64 bytes of page 0 are
//!   reserved, so address 0 means "no record".
//! * Page `p` lives in frame `p % frames` (`frames = memory / page_size`, at least 2).
//! * **Tail allocation** is one `fetch_add` on a packed word: page number in the high bits,
//!   offset in the low `page_bits + 16` bits (so up to 2^16 overshooting threads cannot carry
//!   into the page number). The one thread whose allocation crosses the page end writes the
//!   page's filler word and opens the next page; threads that overshot help until it is open.
//! * **Shifts** are published then acknowledged: a boundary (`read_only`, `head`) is raised with
//!   `fetch_max`, then `bump_epoch` registers an action that raises the `safe_*` twin once
//!   every participant has refreshed past the shift.
//! * **Read-only** trails the tail: opening page `n` makes everything below page
//!   `n + 1 - mutable_pages` read-only. The epoch action that moves `safe_read_only` *issues
//!   the flushes* of the newly read-only bytes (copying each page range into an aligned
//!   buffer, one write per page, writes of the same page serialised). `flushed_until` advances
//!   over the contiguous prefix of completed writes.
//! * **Head / eviction**: opening page `n >= frames` needs frame `n % frames`, which holds page
//!   `n - frames`. The opener raises `head` to the end of that page once `flushed_until` has
//!   passed it, and reuses (zeroes) the frame only when `safe_head` has passed it too: the old
//!   page is then both durable on the device (written) and unreachable by every protected
//!   thread. Until then it *helps*: it reaps device completions, waits on in-flight I/O, and
//!   refreshes its guard (which runs ready epoch actions) — no blind spinning on a flag.
//!   Nothing requires the user to call flush by hand.
//! * Bytes below `safe_read_only` never change except header bits, and every frame access
//!   is an atomic word operation (see [`record`]), so flushing never races with readers.
//!   Each flush copies its page range out of the frame into an `AlignedBuf` (relaxed word
//!   loads) and hands the copy to the device, so the frame is free of I/O the moment the
//!   copy is taken and header bits may still be set on read-only records. The bench measures
//!   that copy at about 13 GB/s, roughly a tenth of the append-with-flush time.
//! * The page turn ends with a `swap` of the tail word (not a plain store), so that the
//!   tail's modification order consists of read-modify-writes only; `allocate` checks the
//!   sticky turn-failed flag *before* its `fetch_add`, so failed calls never add to the
//!   word (which would eventually carry the offset into the page number).
//! * [`Hlog::get`] decides "in memory or not" with a single load of `head`.
//! * Scans copy in-memory pages with acquire loads and re-read, under each record's
//!   seqlock, the values of records at or above `safe_read_only` (which may be updated in
//!   place during the copy).
//! * **Snapshots** ([`Hlog::snapshot_to`]) copy `[from, to)` chunk by chunk (at most 1 MiB,
//!   at most 8 writes in flight): on-disk bytes from the log's device, in-memory bytes from
//!   their frames under the caller's guard, refreshed between chunks; a page evicted during
//!   the copy is read from the device instead. The caller keeps `[from, to)` free of in-place
//!   updates meanwhile.
//! * **Recovery** ([`Hlog::recover`]) resumes at the page boundary after the recovered end,
//!   so every page frame starts free and all recovered bytes are read from the device; the
//!   rest of the last recovered page is padding (a filler word is written at the end).
//! * A failed flush write is sticky: `flushed_until` stops before it, and allocation returns
//!   [`HlogError::FlushFailed`] (or [`HlogError::PageTurnFailed`] to the threads waiting for
//!   the page turn) instead of waiting forever for a frame that can never be evicted.
//!
//! ## Epoch contract for callers
//!
//! Every frame access happens under a [`faster_epoch::Guard`] of the epoch passed to
//! [`Hlog::new`]. Write allocated space before the guard's next refresh (allocation itself may
//! refresh the guard, so do not hold one allocation across another); refresh regularly, since
//! a participant that never refreshes holds back eviction, and allocation then waits for it.
//!
//! ## Concurrency checking
//!
//! The control words (packed tail, region boundaries, `flushed_until`, failure flags) come
//! from a private `sync` module that switches to `loom` under `--cfg loom`; `tests/loom.rs`
//! model-checks the real page-turn code (with and without eviction). Frame memory stays
//! `std` atomics under loom (each loom operation is a scheduling point; zeroing one 4 KiB
//! frame would be 512 of them), so the models check frame contents with assertions. No
//! loom operation runs while the flush bookkeeping's `std` mutex is held.
//!
//! ## What this crate must not know about
//!
//! The hash index, sessions, serial numbers and the CPR state machine: it stores records at
//! addresses and nothing more. The previous-address chain, versions and header bits are
//! fields it stores for the store above it; it never follows chains or interprets versions
//! (beyond offering the wrap-safe [`record::version_is_newer`]).
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use faster_device::{DeviceOptions, MemoryDevice};
//! use faster_epoch::LightEpoch;
//! use faster_hlog::{Hlog, HlogConfig, NewRecord};
//!
//! let epoch = LightEpoch::new();
//! let device = Arc::new(MemoryDevice::new(DeviceOptions::default())?);
//! let config = HlogConfig::default().with_page_size(64 << 10).with_memory_size(256 << 10);
//! let log = Hlog::new(config, device, epoch.clone())?;
//! let mut participant = epoch.register()?;
//! let mut guard = participant.protect();
//! let addr = log.append(&mut guard, &NewRecord::new(b"key", b"value"))?;
//! let rec = log.get(&guard, addr)?.expect("in memory");
//! assert!(rec.key_eq(b"key"));
//! assert_eq!(rec.value(), b"value");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
pub mod checksum;
pub mod config;
mod disk_read;
mod error;
mod flush;
mod frame;
mod hlog;
mod invalidate;
pub mod record;
mod reopen;
mod scan;
mod snapshot;
mod space;
// The atomics of the log's *control* words (the packed tail, the region boundaries, the
// failure flags) switch to loom under `--cfg loom`, so `tests/loom.rs` model-checks the real
// page-turn protocol. Frame memory and record words stay `std` atomics even then: every loom
// atomic operation is a scheduling point, and zeroing one 4 KiB frame would add 512 of them.
// The flush bookkeeping uses a `std` mutex, never held across a loom operation.
use faster_sync as sync;

pub use address::Address;
pub use config::{Geometry, HlogConfig};
pub use disk_read::DiskRecord;
pub use error::{HlogError, Result};
pub use hlog::{Hlog, StallHook};
pub use record::{Header, NewRecord, RecordLock, RecordRef, RecordView, version_is_newer};
pub use scan::{LogScan, ScanRecord, ScanRef};
pub use snapshot::SnapshotInfo;
