//! Index growth: the store's side of [`faster_cpr::ActionHooks`], the handle a caller waits on,
//! the automatic trigger, and what sessions do while the index doubles.
//!
//! The protocol (see `faster_index`'s `grow` module for the split and `faster_cpr`'s for the
//! phases):
//!
//! 1. [`start`] builds the doubled table beside the current one
//!    ([`HashIndex::begin_grow`]), then claims the state machine for [`Action::Grow`]
//!    (GROW_PREPARE): a checkpoint running refuses it, and a checkpoint requested now waits
//!    for the growth ([`Growing::wait_idle`]).
//! 2. Sessions acknowledge GROW_PREPARE between operations and wait; the driver acts for
//!    idle ones. None of them uses the index from then on.
//! 3. In GROW_IN_PROGRESS every session that calls in helps split chunks
//!    ([`help`]) and waits for the driver, which splits too and switches to the new table.
//!    A table of `2^16` buckets or more splits by its entries' tags, reading nothing; a
//!    smaller one reads the records in memory, and the driver scans the on-disk log once
//!    for the records whose side only the disk knows.
//! 4. Back at rest; the old table's memory goes back to the system in an epoch action, once
//!    no thread protected before the switch can still hold it.
//!
//! [`HashIndex::begin_grow`]: faster_index::HashIndex::begin_grow

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faster_cpr::{Action, ActionHooks};
use faster_epoch::{Guard, Participant};
use faster_hlog::{Address, Hlog};
use faster_index::{Growth, IndexError, KeyHash, Link};

use crate::background::Background;
use crate::error::{Error, Result};
use crate::growing::GrowInfo;
use crate::shared::{Inner, lock};

/// A running index growth ([`crate::FasterKv::grow_index`]), on its own thread.
#[derive(Debug)]
pub struct GrowHandle {
    task: Background<GrowInfo>,
}

impl GrowHandle {
    /// Waits for the growth to end: what it did, or why it failed (the index then keeps its
    /// table, and the store goes on).
    pub fn wait(self) -> Result<GrowInfo> {
        self.task.wait(Error::GrowthPanicked)
    }

    /// Whether the growth has ended ([`GrowHandle::wait`] will not block).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts doubling the index on a thread of its own. The thread is started first and makes
/// the claims itself (the index's new table, mapped and zeroed, then the state machine), so
/// a thread that cannot be started has claimed nothing. With `report`, this waits until the
/// claims are made and a claim refused is this call's error; without (the automatic trigger,
/// on a session's thread, which must not wait for the table's memory), a refusal is only
/// logged.
pub(crate) fn start(inner: Arc<Inner>, report: bool) -> Result<GrowHandle> {
    if inner.is_closed() {
        return Err(Error::Closed);
    }
    if !inner.growing.claim() {
        return Err(Error::GrowthInProgress);
    }
    let (claimed_tx, claimed_rx) = std::sync::mpsc::sync_channel(1);
    let task_inner = inner.clone();
    let task = Background::spawn(
        "faster-grow",
        "starting the index growth thread",
        move || {
            let inner = task_inner;
            let growing = inner.growing.clone();
            let at = Instant::now();
            let r = match claim(&inner) {
                Ok((started, from_bits)) => {
                    let _ = claimed_tx.send(Ok(()));
                    run(&inner, started, from_bits, at)
                }
                Err(e) => {
                    log::debug!("index growth not started: {e}");
                    let _ = claimed_tx.send(Err(e));
                    Err(Error::GrowthInProgress)
                }
            };
            // The store first, then the end of the growth: whoever waits for it may reopen
            // the directory at once.
            drop(inner);
            growing.end();
            r
        },
    );
    let task = match task {
        Ok(task) => task,
        Err(e) => {
            inner.growing.end();
            return Err(e);
        }
    };
    if !report {
        return Ok(GrowHandle { task });
    }
    match claimed_rx.recv() {
        Ok(Ok(())) => Ok(GrowHandle { task }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::GrowthPanicked),
    }
}

/// The growth's claims: the doubled table in the index, then the state machine
/// (GROW_PREPARE), whose `Started` the driver takes to the end. Undoes the first if the
/// second is refused.
fn claim(inner: &Inner) -> Result<(faster_cpr::Started, u32)> {
    let from_bits = inner.index.table_bits();
    inner.index.begin_grow().map_err(|e| match e {
        IndexError::InvalidConfig(_) if inner.index.is_growing() => Error::GrowthInProgress,
        e => Error::Index(e),
    })?;
    if inner.is_closed() {
        inner.index.cancel_grow();
        return Err(Error::Closed);
    }
    match inner.cpr.begin::<Error>(Action::Grow) {
        Ok(started) => Ok((started, from_bits)),
        Err(e) => {
            inner.index.cancel_grow();
            Err(Error::from_cpr(e))
        }
    }
}

/// Starts a growth if the index wants one and nothing else runs (called by sessions now
/// and then); whatever refuses it, a later call tries again.
#[cold]
pub(crate) fn maybe_start(inner: &Arc<Inner>) {
    if inner.auto_grow
        && inner.cpr.state().phase == faster_cpr::Phase::Rest
        && inner.index.wants_growth()
    {
        match start(inner.clone(), false) {
            Ok(handle) => drop(handle),
            Err(e) => log::debug!("automatic index growth not started: {e}"),
        }
    }
}

fn run(
    inner: &Arc<Inner>,
    started: faster_cpr::Started,
    from_bits: u32,
    at: Instant,
) -> Result<GrowInfo> {
    let mut hooks = Driver {
        inner,
        guard: None,
        split_from: None,
        switched: None,
        scan_time: Duration::ZERO,
        scanned: 0,
    };
    let result = inner
        .cpr
        .finish_action(started, inner.checkpoint_timeout, &mut hooks);
    // Unprotected again before anything waits on the epoch.
    hooks.guard = None;
    result.map_err(Error::from_grow)?;
    inner
        .growing
        .count
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The old table's memory goes back once every thread protected now has moved on.
    let weak = Arc::downgrade(inner);
    inner.epoch.bump_epoch(move || {
        if let Some(inner) = weak.upgrade() {
            inner.index.release_retired();
        }
    });
    let info = GrowInfo {
        from_bits,
        to_bits: inner.index.table_bits(),
        duration: at.elapsed(),
        prepare: hooks.split_from.map_or(Duration::ZERO, |t| t - at),
        split: match (hooks.split_from, hooks.switched) {
            (Some(a), Some(b)) => b - a,
            _ => Duration::ZERO,
        },
        scan: hooks.scan_time,
        scanned_records: hooks.scanned,
    };
    lock(&inner.growing.history).push(info.clone());
    Ok(info)
}

/// The driver's hooks.
struct Driver<'a> {
    inner: &'a Arc<Inner>,
    /// The driver's epoch protection, taken for the split only (GROW_IN_PROGRESS, when no
    /// session is inside an operation): while it waits in GROW_PREPARE it must not hold
    /// back the epoch that a busy session's last call may wait on.
    guard: Option<Guard<Participant>>,
    split_from: Option<Instant>,
    switched: Option<Instant>,
    scan_time: Duration,
    scanned: u64,
}

impl ActionHooks for Driver<'_> {
    type Error = Error;

    fn work(&mut self) -> Result<bool> {
        let inner = self.inner;
        self.split_from.get_or_insert_with(Instant::now);
        let guard = match &mut self.guard {
            Some(g) => g,
            None => self
                .guard
                .insert(inner.epoch.register_observer()?.into_guard()),
        };
        match help(&inner.hlog, &inner.index, guard) {
            Growth::Idle => return Ok(true),
            Growth::Splitting => return Ok(false),
            Growth::Finishing => {}
        }
        // Every chunk is split: place the entries whose records are on disk, from one
        // sequential read of the on-disk log, then switch.
        let (begin, head) = (inner.hlog.begin_address(), inner.hlog.head_address());
        if head > begin && inner.index.growth_reads_log() {
            let t = Instant::now();
            self.scanned += scan_disk(inner, begin, head, guard);
            self.scan_time = t.elapsed();
        }
        let bits = inner.index.finish_grow()?;
        self.switched = Some(Instant::now());
        log::info!("index grown to 2^{bits} buckets");
        Ok(true)
    }

    fn abort(&mut self) {
        self.inner.index.cancel_grow();
    }

    fn help(&mut self) -> bool {
        self.inner.help_io()
    }

    fn cancelled(&mut self) -> bool {
        self.inner.is_closed()
    }
}

/// Reads `[begin, head)` of the log in order and hands every record to the split's scan
/// pass. A damaged page ends the scan early: the entries it did not reach go to both sides
/// of the split, which is always correct. Returns the records read.
fn scan_disk(inner: &Inner, begin: Address, head: Address, guard: &Guard<Participant>) -> u64 {
    let scan = match inner.hlog.scan(begin, head) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("index growth: the on-disk log cannot be scanned: {e}");
            return 0;
        }
    };
    let link = |a| link(&inner.hlog, guard, a);
    let mut n = 0;
    for rec in scan {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                log::warn!("index growth: the scan of the on-disk log stopped: {e}");
                break;
            }
        };
        n += 1;
        let hash = KeyHash::of(&rec.key);
        let prev = rec.header.prev_address().raw();
        if let Err(e) = inner
            .index
            .place_scanned(rec.address.raw(), hash, prev, &link)
        {
            log::warn!("index growth: {e}");
            break;
        }
    }
    n
}

thread_local! {
    /// The key of the record the split reads, copied out of the log.
    static KEY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What the log says about the record at `a`, for the split: its key's hash and previous
/// address if it is in memory, [`Link::Unknown`] if it is on disk (or unreadable),
/// [`Link::Gone`] below the begin address.
fn link<P: std::borrow::BorrowMut<Participant>>(hlog: &Hlog, guard: &Guard<P>, a: u64) -> Link {
    let Some(addr) = Address::new(a) else {
        return Link::Gone;
    };
    if addr < hlog.begin_address() || addr.is_invalid() {
        return Link::Gone;
    }
    match hlog.get(guard, addr) {
        Ok(Some(rec)) => KEY.with_borrow_mut(|key| {
            key.clear();
            rec.read_key_into(key);
            Link::Record {
                hash: KeyHash::of(key),
                previous: rec.prev_address().raw(),
            }
        }),
        Ok(None) | Err(_) => Link::Unknown,
    }
}

/// The log as the split reads it, under a guard.
struct LogChains<'a, P: std::borrow::BorrowMut<Participant>> {
    hlog: &'a Hlog,
    guard: &'a Guard<P>,
}

impl<P: std::borrow::BorrowMut<Participant>> faster_index::Chains for LogChains<'_, P> {
    fn link(&self, address: u64) -> Link {
        link(self.hlog, self.guard, address)
    }

    fn prefetch(&self, address: u64) {
        self.hlog.prefetch(Address::from_raw_truncated(address));
    }
}

/// Splits chunks of the running growth, reading records under `guard`.
pub(crate) fn help<P: std::borrow::BorrowMut<Participant>>(
    hlog: &Hlog,
    index: &faster_index::HashIndex,
    guard: &Guard<P>,
) -> Growth {
    index.help_grow(&LogChains { hlog, guard })
}
