//! Compaction: copying the live records of the log's front to its tail, then shifting the
//! begin address past them ([`crate::FasterKv::compact`], and the automatic trigger sessions
//! call from their refresh). Imports `shared`, `session`, `shift`, `compacting`, `error`.
//!
//! 1. The range is `[begin, until)` with `until` at a page boundary at or below the safe
//!    read-only address: every record there is immutable (but for header bits).
//! 2. A log scan reads the range (from disk, pages read ahead, every record verified). The
//!    store's own compaction session copies each valid record that is not a tombstone and
//!    is still its key's newest to the tail, by a compare-and-swap from the index entry it
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
    let task = Background::spawn("faster-compact", "starting the compaction thread", {
        let inner = inner.clone();
        move || {
            let result = run(&inner, until);
            inner.compacting.running.end();
            result
        }
    });
    if task.is_err() {
        inner.compacting.running.end();
    }
    Ok(CompactHandle { task: task? })
}

/// Whether the automatic trigger wants a compaction now: the log above its begin address
/// passed the ratio of the live estimate (and the smallest size), or the disk budget.
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
    let by_ratio = log >= policy.compaction_min_log
        && log as f64 > policy.compaction_ratio * live as f64;
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
        bytes_scanned: 0,
        records_copied: 0,
        bytes_copied: 0,
        tombstones_dropped: 0,
        entries_freed: 0,
        truncated_to: hlog.truncated_address().raw(),
        duration: Default::default(),
        copy_time: Default::default(),
    };
    if until <= from {
        return Ok(info);
    }
    copy_live(inner, from, until, &mut info).map_err(|e| match e {
        Error::Closed => Error::Closed,
        e => Error::CompactionFailed(Box::new(e)),
    })?;
    info.copy_time = at.elapsed();
    let shifted = crate::shift::shift(inner, until)?;
    info.until = shifted.begin;
    info.bytes_scanned = shifted.begin.saturating_sub(from.raw());
    info.entries_freed = shifted.freed;
    info.truncated_to = shifted.reclaimed.truncated_to;
    info.duration = at.elapsed();
    let live = hlog.tail_address().raw().saturating_sub(shifted.begin);
    inner.compacting.live_estimate.store(live, Ordering::Relaxed);
    inner.compacting.count.fetch_add(1, Ordering::Relaxed);
    let mut history = lock(&inner.compacting.history);
    if history.len() == HISTORY {
        history.remove(0);
    }
    history.push(info.clone());
    Ok(info)
}

/// The copy phase: scans `[from, until)` and copies every live record to the tail through
/// the store's compaction session.
fn copy_live(inner: &Arc<Inner>, from: Address, until: Address, info: &mut CompactInfo) -> Result<()> {
    let mut session = internal_session(inner)?;
    let result = (|| {
        for rec in inner.hlog.scan(from, until)? {
            let rec = rec?;
            if inner.is_closed() {
                return Err(Error::Closed);
            }
            info.records_scanned += 1;
            if rec.header.is_tombstone() {
                info.tombstones_dropped += 1;
                continue;
            }
            if session.copy_if_newest(&rec.key, &rec.value, rec.address)? == Copied::Yes {
                info.records_copied += 1;
                info.bytes_copied += rec.size as u64;
            }
        }
        Ok(())
    })();
    // Its id stays in the set: a checkpoint running now may still collect its cut.
    drop(session);
    result
}

/// A session of the store's own, whose cuts checkpoints leave out.
fn internal_session(inner: &Arc<Inner>) -> Result<Session> {
    let participant = inner.epoch.register()?;
    let id = inner.next_session.fetch_add(1, Ordering::Relaxed);
    lock(&inner.internal_sessions).insert(id);
    Ok(Session::new(inner.clone(), id, participant))
}
