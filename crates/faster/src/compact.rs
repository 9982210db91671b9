//! Compaction: copying the live records of the log's front to its tail, then shifting the
//! begin address past them ([`crate::FasterKv::compact`], and the automatic trigger sessions
//! call from their refresh). Imports `shared`, `session`, `shift`, `compacting`, `error`.
//!
//! 1. The range is `[begin, until)` with `until` at a page boundary at or below the safe
//!    read-only address: every record there is immutable (but for header bits).
//! 2. A first log scan of the range (from disk, pages read ahead, every record verified)
//!    notes each key's newest address in it (a range with more keys than one pass keeps,
//!    `Config::with_compaction_memory`, ends early at a page boundary). A second scan hands every record that
//!    is its key's newest in the range, not a tombstone, to the store's own compaction
//!    session, which copies it to the tail if it is still its key's newest in the store, by a compare-and-swap from the index entry it
//!    decided on (`ops::compact`): a user's write that lands meanwhile wins. It is an
//!    ordinary session: it follows checkpoints and growths, and its copies are ordinary
//!    records of the current version (its cuts are left out of checkpoints). Tombstones are
//!    dropped: every older record of their key lies below `until` too.
//! 3. The shift (`shift`): once every session has passed an operation boundary, the begin
//!    address moves to `until`, index entries below it are freed, and the log's files below
//!    what the kept checkpoints need are deleted.
//!
//! A crash at any point loses nothing: until a checkpoint records the new begin address,
//! recovery uses one that still has the old records (their files are deleted only once no
//! kept checkpoint needs them), and the copies beyond it are dropped like any record of a
//! later version.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use faster_hlog::Address;

use crate::background::Background;
use crate::compacting::{CompactInfo, HISTORY};
use crate::error::{Error, Result};
use crate::key_map::KeyMap;
use crate::ops::compact::Copied;
use crate::session::Session;
use crate::shared::{Inner, lock};

/// A running compaction ([`crate::FasterKv::compact`]): it runs on its own thread; sessions
/// keep working.
#[derive(Debug)]
pub struct CompactHandle {
    task: Background<CompactInfo>,
}

impl CompactHandle {
    /// Waits for the compaction to end: what it did, or why it failed
    /// ([`Error::CompactionFailed`], [`Error::ShiftTimeout`], [`Error::Closed`]).
    pub fn wait(self) -> Result<CompactInfo> {
        self.task.wait(Error::CompactionPanicked)
    }

    /// Whether the compaction has ended ([`CompactHandle::wait`] will not block).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts a compaction of `[begin, until)` (`None`: up to the safe read-only address) on
/// its own thread, or fails with [`Error::CompactionInProgress`].
pub(crate) fn start(inner: Arc<Inner>, until: Option<Address>) -> Result<CompactHandle> {
    if inner.is_closed() {
        return Err(Error::Closed);
    }
    if !inner.compacting.running.claim() {
        return Err(Error::CompactionInProgress);
    }
    let compacting = inner.compacting.clone();
    let task = Background::spawn("faster-compact", "starting the compaction thread", {
        let inner = inner.clone();
        let compacting = compacting.clone();
        move || {
            let result = run(&inner, until);
            if let Err(e) = &result {
                log::warn!("compaction failed: {e}");
            }
            // Let go of the store first: the last handle's drop waits for the end signal,
            // and the directory must be free once it returns.
            drop(inner);
            compacting.running.end();
            result
        }
    });
    if task.is_err() {
        compacting.running.end();
    }
    Ok(CompactHandle { task: task? })
}

/// Whether the automatic trigger wants a compaction now: the log above its begin address
/// passed the ratio of the live estimate (the index's keys at the average record size the
/// last compaction saw; 0 before the first) and the smallest size, or the disk budget.
pub(crate) fn wanted(inner: &Inner) -> bool {
    let policy = &inner.space;
    if !policy.auto_compaction || inner.compacting.running.is_running() {
        return false;
    }
    let hlog = &inner.hlog;
    let begin = hlog.begin_address().raw();
    let log = hlog.tail_address().raw().saturating_sub(begin);
    // Something to compact: at least a quarter of the smallest log below the read-only
    // boundary (the mutable region is never compacted).
    let compactable = hlog.safe_read_only_address().raw().saturating_sub(begin);
    if compactable < policy.compaction_min_log / 4 {
        return false;
    }
    let live = inner.compacting.live_estimate.load(Ordering::Relaxed);
    let by_ratio =
        log >= policy.compaction_min_log && log as f64 > policy.compaction_ratio * live as f64;
    let by_budget = policy.disk_budget.is_some_and(|budget| {
        let on_disk = hlog
            .flushed_until_address()
            .raw()
            .saturating_sub(hlog.truncated_address().raw());
        on_disk + inner.checkpoint_bytes.load(Ordering::Relaxed) > budget
            && log >= policy.compaction_min_log.min(budget / 4)
    });
    by_ratio || by_budget
}

/// Whether writers should wait for the running automatic compaction: the log above its
/// begin address passed [`STALL_RATIO`] times the ratio of the live estimate (a writer
/// faster than the compaction would otherwise grow the log without bound). Checked by
/// sessions every [`crate::session::REFRESH_INTERVAL`] operations.
pub(crate) fn behind(inner: &Inner) -> bool {
    let policy = &inner.space;
    if !policy.auto_compaction {
        return false;
    }
    let live = inner.compacting.live_estimate.load(Ordering::Relaxed);
    let hlog = &inner.hlog;
    let log = hlog
        .tail_address()
        .raw()
        .saturating_sub(hlog.begin_address().raw());
    live > 0
        && log as f64 > STALL_RATIO * policy.compaction_ratio * live as f64
        && inner.compacting.running.is_running()
}

/// How far past the compaction ratio the log may grow while a compaction runs before
/// writers wait for it.
const STALL_RATIO: f64 = 1.25;

/// Starts a compaction if the policy wants one (called by sessions now and then); whatever
/// refuses it, a later call tries again.
#[cold]
pub(crate) fn maybe_start(inner: &Arc<Inner>) {
    if wanted(inner) {
        match start(inner.clone(), None) {
            Ok(handle) => drop(handle),
            Err(e) => log::debug!("automatic compaction not started: {e}"),
        }
    }
}

fn run(inner: &Arc<Inner>, until: Option<Address>) -> Result<CompactInfo> {
    let at = Instant::now();
    let hlog = &inner.hlog;
    let from = hlog.begin_address();
    let limit = hlog.safe_read_only_address();
    // A page boundary: records never span pages, so the scan ends at a record's end.
    let page = hlog.page_size();
    let until = Address::from_raw_truncated(until.unwrap_or(limit).min(limit).raw() / page * page);
    let mut info = CompactInfo {
        from: from.raw(),
        until: from.raw(),
        records_scanned: 0,
        record_bytes_scanned: 0,
        bytes_scanned: 0,
        records_copied: 0,
        bytes_copied: 0,
        tombstones_dropped: 0,
        entries_freed: 0,
        truncated_to: hlog.truncated_address().raw(),
        duration: Default::default(),
        copy_time: Default::default(),
        checkpoint: None,
    };
    if until <= from {
        return Ok(info);
    }
    let until = copy_live(inner, from, until, &mut info).map_err(|e| match e {
        Error::Closed => Error::Closed,
        e => Error::CompactionFailed(Box::new(e)),
    })?;
    info.copy_time = at.elapsed();
    let shifted = crate::shift::shift(inner, until)?;
    info.until = shifted.begin;
    info.bytes_scanned = shifted.begin.saturating_sub(from.raw());
    info.entries_freed = shifted.freed;
    info.truncated_to = shifted.reclaimed.truncated_to;
    if inner.space.checkpoint_after_compaction && info.truncated_to < info.until {
        // A kept checkpoint needs the records below the new begin address: a checkpoint
        // now records the shift, so that the next one lets the log go (two checkpoints
        // after the shift instead of the kept number).
        info.checkpoint = checkpoint_after(inner);
        info.truncated_to = hlog.truncated_address().raw();
    }
    info.duration = at.elapsed();
    // The live estimate: the keys the index holds, at the average size of the records the
    // compaction scanned.
    if let Some(average) = info.record_bytes_scanned.checked_div(info.records_scanned) {
        let live = inner.index.stats().entries.saturating_mul(average);
        inner
            .compacting
            .live_estimate
            .store(live, Ordering::Relaxed);
    }
    inner.compacting.count.fetch_add(1, Ordering::Relaxed);
    let mut history = lock(&inner.compacting.history);
    if history.len() == HISTORY {
        history.remove(0);
    }
    history.push(info.clone());
    Ok(info)
}

/// The checkpoint after a shift: its token, or `None` (why is logged).
fn checkpoint_after(inner: &Arc<Inner>) -> Option<String> {
    let own = &inner.compacting.checkpointing;
    own.store(true, Ordering::Release);
    let started = crate::checkpoint::start(inner.clone(), crate::CheckpointOptions::full());
    if started.is_err() {
        own.store(false, Ordering::Release);
    }
    let result = match started {
        Ok(handle) => match handle.wait() {
            Ok(done) => Some(done.token),
            Err(e) => {
                log::warn!("the checkpoint after a compaction failed: {e}");
                None
            }
        },
        Err(e) => {
            log::debug!("no checkpoint after the compaction: {e}");
            None
        }
    };
    own.store(false, Ordering::Release);
    result
}

/// The copy phase: finds each key's newest record in (a prefix of) `[from, until)`, then
/// copies every record that is its key's newest there, and still its key's newest in the
/// store, to the tail through the store's compaction session. Returns the end of the range
/// it covered: `until`, or a page boundary below it when the range holds more keys than
/// one pass keeps track of ([`crate::Config::with_compaction_memory`]).
fn copy_live(
    inner: &Arc<Inner>,
    from: Address,
    until: Address,
    info: &mut CompactInfo,
) -> Result<Address> {
    // Pass 1: the newest address of each key in the range. A record that is not its key's
    // newest in the range is dead without a look at the index (or the disk: a key's newer
    // record below the head would otherwise cost a read per record).
    let page = inner.hlog.page_size();
    let budget = inner.space.compaction_memory;
    let mut newest = KeyMap::new();
    let mut end = until;
    let mut scan = inner.hlog.scan(from, until)?;
    while let Some(rec) = scan.next_ref() {
        let rec = rec?;
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        if rec.address >= end {
            break;
        }
        if end == until && !newest.fits_one_more(rec.key.len(), budget) {
            // Enough for one pass: finish this page, compact up to its end (the keys of
            // the page's remaining records go over the budget by at most a page).
            end = Address::from_raw_truncated((rec.address.raw() / page + 1) * page).min(until);
        }
        newest.insert(rec.key, rec.address.raw());
    }
    drop(scan);
    // Pass 2: copy what is still live. Records written since the range was fixed reach the
    // disk meanwhile: the records of `[end, above_end)` are read (sequentially, as far as
    // the head, again whenever a chain leads past what was read) and each key of the range
    // rewritten there is marked [`REWRITTEN`], so that it is known dead without a read of
    // its chain's head.
    let newest = std::cell::RefCell::new(newest);
    let mut above_end = end;
    // A failed read of the newer log fails the compaction before its shift: a key whose
    // newer record went unread must not be copied over it, nor dropped.
    let mut above_error: Option<Error> = None;
    let mut newer = |key: &[u8], b: Address| -> bool {
        if b < end {
            return false;
        }
        if above_error.is_some() {
            return true;
        }
        if b >= above_end {
            let head = inner.hlog.head_address();
            let mut map = newest.borrow_mut();
            let marked = inner.hlog.scan(above_end, head).and_then(|mut scan| {
                while let Some(rec) = scan.next_ref() {
                    let rec = rec?;
                    if map.get(rec.key).is_some() {
                        map.insert(rec.key, REWRITTEN);
                    }
                }
                Ok(())
            });
            if let Err(e) = marked {
                above_error = Some(e.into());
                return true;
            }
            above_end = head;
        }
        newest.borrow().get(key) == Some(REWRITTEN)
    };
    let mut session = internal_session(inner)?;
    let result = (|| {
        let mut scan = inner.hlog.scan(from, end)?;
        while let Some(rec) = scan.next_ref() {
            let rec = rec?;
            if inner.is_closed() {
                return Err(Error::Closed);
            }
            info.records_scanned += 1;
            info.record_bytes_scanned += rec.size as u64;
            if rec.header.is_tombstone() {
                info.tombstones_dropped += 1;
                continue;
            }
            if newest.borrow().get(rec.key) != Some(rec.address.raw()) {
                continue;
            }
            if session.copy_if_newest(rec.key, rec.value, rec.address, &mut newer)? == Copied::Yes {
                info.records_copied += 1;
                info.bytes_copied += rec.size as u64;
            }
        }
        Ok(())
    })();
    // Its id stays in the set: a checkpoint running now may still collect its cut.
    drop(session);
    result?;
    match above_error {
        Some(e) => Err(e),
        None => Ok(end),
    }
}

/// The mark of a key of the range rewritten above it (no record lies at this address: it
/// is not a multiple of 8).
const REWRITTEN: u64 = (1 << 48) - 1;

/// A session of the store's own, whose cuts checkpoints leave out.
fn internal_session(inner: &Arc<Inner>) -> Result<Session> {
    let participant = inner.epoch.register()?;
    let id = inner.next_session.fetch_add(1, Ordering::Relaxed);
    lock(&inner.internal_sessions).insert(id);
    Ok(Session::new(inner.clone(), id, participant))
}
