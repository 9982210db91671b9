//! The operations' shared machinery: walking a hash chain in memory, following it on disk,
//! appending a record and installing it in the index.
//!
//! Every function here runs under the calling session's epoch guard and never holds a
//! [`RecordRef`] across a call that may refresh the guard (allocation, waiting for I/O).

pub(crate) mod compact;
pub(crate) mod fast;
pub(crate) mod read;
pub(crate) mod rmw;
pub(crate) mod write;

use std::sync::mpsc::{self, TryRecvError};

use faster_epoch::{Guard, Participant};
use faster_hlog::record::record_size;
use faster_hlog::{Address, DiskRecord, Hlog, HlogError, NewRecord, RecordLock, RecordRef};
use faster_index::{EntrySlot, HashEntry, KeyHash};

use crate::error::{Error, Result};
use crate::shared::Inner;

/// The guard every operation runs under.
pub(crate) type SessionGuard = Guard<Participant>;

/// The checkpoint has cut this session while the operation ran (it met a record of a newer
/// version in PREPARE, FASTER's CPR_SHIFT_DETECTED): the session must cross its cut and
/// retry the operation in the new version.
pub(crate) struct Shift;

/// An operation's outcome: done, or [`Shift`].
pub(crate) type Flow<T> = std::result::Result<T, Shift>;

/// What every operation works with: the store, the session's epoch guard and the session's
/// version rules. Built once per operation by the session; the operations' bodies are
/// inlined into their callers, so passing it by reference costs nothing there.
pub(crate) struct Ctx<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) guard: &'a mut SessionGuard,
    pub(crate) cx: Cx,
}

impl Ctx<'_> {
    /// A copy of this context for a call that is not inlined: the copy's address escapes,
    /// this one's does not, so the caller keeps its context in registers (passing `&mut
    /// self` out of line made the session spill it on every operation: 4-8 instructions).
    #[inline(always)]
    pub(crate) fn reborrow(&mut self) -> Ctx<'_> {
        Ctx {
            inner: self.inner,
            guard: &mut *self.guard,
            cx: self.cx,
        }
    }
}

/// How an operation treats record versions, from the session's CPR rules
/// ([`faster_cpr::Rules`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cx {
    /// The version stamped into new records (the low 32 bits of the CPR version).
    pub(crate) version: u32,
    /// PREPARE: a record of a newer version means the cut has passed this session.
    pub(crate) detect_shift: bool,
    /// IN_PROGRESS to WAIT_FLUSH: records of older versions are copied, never updated in
    /// place.
    pub(crate) copy_older: bool,
    /// PREPARE: writes must not go pending.
    pub(crate) no_pending_writes: bool,
}

impl Cx {
    pub(crate) fn of(rules: faster_cpr::Rules) -> Cx {
        Cx {
            version: rules.version as u32,
            detect_shift: rules.detect_shift,
            copy_older: rules.copy_older,
            no_pending_writes: rules.no_pending_writes,
        }
    }

    /// Whether a record of version `v` shows that the cut has passed this session.
    #[inline]
    pub(crate) fn shifted(&self, v: u32) -> bool {
        self.detect_shift && faster_hlog::version_is_newer(v, self.version)
    }

    /// Whether a record of version `v` may be updated in place by this session (as far as
    /// versions go; the region and the record's own bits decide the rest).
    #[inline]
    pub(crate) fn may_update_in_place(&self, v: u32) -> bool {
        !self.copy_older || v == self.version
    }
}

/// A key's hash, with the index slot where the batch pipeline found its entry (a hint,
/// re-checked before it is trusted: [`faster_index::HashIndex::recheck`]).
#[derive(Clone, Copy)]
pub(crate) struct Probe<'i> {
    pub(crate) hash: KeyHash,
    pub(crate) hint: Option<EntrySlot<'i>>,
}

impl<'i> Probe<'i> {
    /// A probe without a hint.
    #[inline]
    pub(crate) fn of(hash: KeyHash) -> Probe<'i> {
        Probe { hash, hint: None }
    }

    /// The hinted slot and its entry, if the hint still holds.
    #[inline]
    fn hinted<'a>(self, inner: &'a Inner) -> Option<(EntrySlot<'a>, HashEntry)>
    where
        'i: 'a,
    {
        let slot = self.hint?;
        inner.index.recheck(&slot, self.hash).map(|e| (slot, e))
    }

    /// The key's index entry, from the hint if it still holds, else by a search.
    #[inline]
    pub(crate) fn find<'a>(self, inner: &'a Inner) -> Option<(EntrySlot<'a>, HashEntry)>
    where
        'i: 'a,
    {
        self.hinted(inner)
            .or_else(|| inner.index.find_entry(self.hash))
    }

    /// The key's index entry, from the hint if it still holds, else found or created.
    #[inline]
    pub(crate) fn find_or_create<'a>(self, inner: &'a Inner) -> Result<(EntrySlot<'a>, HashEntry)>
    where
        'i: 'a,
    {
        match self.hinted(inner) {
            Some(found) => Ok(found),
            None => Ok(inner.index.find_or_create_entry(self.hash)?),
        }
    }
}

/// Where the newest record of a key is, as far as a chain walk looked.
pub(crate) enum Found<'g> {
    /// In memory, at or above the walk's lower bound.
    Mem(RecordRef<'g>),
    /// The chain continues below the walk's lower bound (or below the head) at this address.
    Below(Address),
    /// The chain ends without a record of the key: the key has no value.
    Missing,
}

/// Walks the hash chain from address `from` (an index entry's address) for the newest valid
/// record of `key`, comparing keys (tags collide), skipping invalid records, and stopping at
/// the first address below `stop`. `stop` must be at or above a head address loaded under
/// `guard` (the head itself, or the read-only address), so that every record the walk reads
/// is in memory ([`Hlog::get_resident`]).
#[inline(always)]
pub(crate) fn trace<'g>(
    hlog: &'g Hlog,
    guard: &'g SessionGuard,
    key: &[u8],
    from: u64,
    stop: Address,
) -> Result<Found<'g>> {
    let begin = hlog.begin_address();
    let mut addr = Address::from_raw_truncated(from);
    loop {
        if addr < begin {
            return Ok(Found::Missing);
        }
        if addr < stop {
            return Ok(Found::Below(addr));
        }
        // In memory: `stop` is at or above a head loaded under `guard` (see above).
        let r = hlog.get_resident(guard, addr)?;
        let h = r.header();
        if !h.is_invalid() && r.key_eq(key) {
            return Ok(Found::Mem(r));
        }
        addr = h.prev_address();
    }
}

/// One step of following a chain on disk.
pub(crate) enum Chase {
    /// The walk is over: the key's value (`None`: missing or deleted) and the version of
    /// the record that decided it (`None`: the chain ended).
    Done(Option<Vec<u8>>, Option<u32>),
    /// The record read belongs to another key; read this address next.
    Next(Address),
}

/// Examines a record read from disk while looking for `key`.
pub(crate) fn chase_step(hlog: &Hlog, key: &[u8], rec: &DiskRecord) -> Chase {
    let v = rec.view();
    let h = v.header();
    if !h.is_invalid() && v.key() == key {
        return Chase::Done(
            (!h.is_tombstone()).then(|| v.value().to_vec()),
            Some(v.version()),
        );
    }
    let prev = h.prev_address();
    if prev < hlog.begin_address() {
        Chase::Done(None, None)
    } else {
        Chase::Next(prev)
    }
}

/// One round of waiting for device I/O: runs finished completions; if there were none,
/// refreshes the guard (so that this thread never holds back an eviction it waits for) and
/// blocks on in-flight I/O, or yields to the thread running the completions.
pub(crate) fn drive(inner: &Inner, guard: &mut SessionGuard) -> Result<usize> {
    let device = inner.hlog.device();
    let n = device.poll()?;
    if n == 0 {
        guard.refresh();
        if device.in_flight() > 0 {
            device.wait()?;
        } else {
            std::thread::yield_now();
        }
    }
    Ok(n)
}

/// Follows the chain of `key` on disk from `addr`, blocking until the walk ends.
pub(crate) fn lookup_blocking(
    c: &mut Ctx<'_>,
    key: &[u8],
    addr: Address,
) -> Result<Option<Vec<u8>>> {
    lookup_blocking_versioned(c, key, addr).map(|(v, _)| v)
}

/// [`lookup_blocking`], also returning the version of the record that decided the value.
pub(crate) fn lookup_blocking_versioned(
    c: &mut Ctx<'_>,
    key: &[u8],
    addr: Address,
) -> Result<(Option<Vec<u8>>, Option<u32>)> {
    chase_blocking(c, key, addr).map(|(v, version, _)| (v, version))
}

/// Follows the chain of `key` on disk from `addr` to the key's newest valid record, and
/// returns its address (`None`: the chain ended without one). For compaction.
pub(crate) fn lookup_blocking_at(
    c: &mut Ctx<'_>,
    key: &[u8],
    addr: Address,
) -> Result<Option<Address>> {
    chase_blocking(c, key, addr).map(|(_, _, at)| at)
}

/// What a disk walk found: the value, its record's version and address.
type Chased = (Option<Vec<u8>>, Option<u32>, Option<Address>);

/// The disk walk of [`lookup_blocking_versioned`] and [`lookup_blocking_at`]: the value,
/// its record's version and address (`None`, `None`, `None` when the chain ended).
fn chase_blocking(c: &mut Ctx<'_>, key: &[u8], mut addr: Address) -> Result<Chased> {
    let (inner, guard) = (c.inner, &mut *c.guard);
    loop {
        let (tx, rx) = mpsc::sync_channel(1);
        inner.hlog.read_async(addr, move |r| {
            let _ = tx.send(r);
        })?;
        let rec = loop {
            match rx.try_recv() {
                Ok(r) => break r?,
                Err(TryRecvError::Empty) => {
                    drive(inner, guard)?;
                }
                Err(TryRecvError::Disconnected) => return Err(HlogError::Closed.into()),
            }
        };
        match chase_step(&inner.hlog, key, &rec) {
            Chase::Done(v, version) => return Ok((v, version, version.map(|_| addr))),
            Chase::Next(next) => addr = next,
        }
    }
}

/// The previous address for a record replacing `entry`'s chain head.
pub(crate) fn prev_of(entry: HashEntry) -> Address {
    let a = Address::from_raw_truncated(entry.address());
    if a < Address::FIRST_VALID {
        Address::INVALID
    } else {
        a
    }
}

/// Value capacity of a new record: the value's length rounded up to the 8 bytes the record
/// occupies anyway.
pub(crate) fn capacity_for(len: usize) -> usize {
    (len + 7) & !7
}

/// Checks that a record with this key and a value of `value_len` bytes fits in a page.
#[inline]
pub(crate) fn check_sizes(inner: &Inner, key: &[u8], value_len: usize) -> Result<()> {
    let page = inner.hlog.page_size();
    // The common case in one comparison: padding adds at most 7 bytes to each of key and
    // value, so a record with `key + value + header + 14` bytes or fewer fits.
    let small = (key.len() as u64).saturating_add(value_len as u64);
    if small.saturating_add(faster_hlog::record::HEADER_SIZE as u64 + 14) <= page {
        return Ok(());
    }
    check_sizes_slow(inner, key, value_len)
}

/// [`check_sizes`] for records near the page size: the exact sizes, and which part is too
/// large.
#[cold]
fn check_sizes_slow(inner: &Inner, key: &[u8], value_len: usize) -> Result<()> {
    let page = inner.hlog.page_size();
    let header = faster_hlog::record::HEADER_SIZE as u64;
    let fits = |k: usize, v: usize| record_size(k, v).is_some_and(|s| s <= page);
    if !fits(key.len(), 0) {
        return Err(Error::KeyTooLarge {
            len: key.len(),
            max: (page - header) as usize,
        });
    }
    if !fits(key.len(), value_len) {
        let key_space = capacity_for(key.len()) as u64;
        return Err(Error::ValueTooLarge {
            len: value_len,
            max: (page - header - key_space) as usize,
        });
    }
    Ok(())
}

/// Appends `rec` at the tail and installs it as the head of `slot`'s chain with a
/// compare-and-swap from `entry`. Returns `false` (and marks the new record invalid) if the
/// entry changed meanwhile: the caller retries the whole operation.
pub(crate) fn append_install(
    inner: &Inner,
    guard: &mut SessionGuard,
    slot: &EntrySlot<'_>,
    entry: HashEntry,
    rec: &NewRecord<'_>,
) -> Result<bool> {
    let addr = inner.hlog.append(guard, rec)?;
    match slot.compare_exchange_address(entry, addr.raw()) {
        Ok(()) => Ok(true),
        Err(_) => {
            if let Some(r) = inner.hlog.get(guard, addr)? {
                r.set_invalid();
            }
            Ok(false)
        }
    }
}

/// Takes the record's in-place lock, spinning (then yielding) while another thread holds
/// it; holders keep it only for an in-memory update.
pub(crate) fn lock<'r, 'a>(r: &'r RecordRef<'a>) -> RecordLock<'r, 'a> {
    let mut spins = 0u32;
    loop {
        if let Some(l) = r.try_lock() {
            return l;
        }
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// A new record for `key` with `value`, chained to `entry`'s head, at the session's version.
pub(crate) fn new_record<'a>(
    cx: Cx,
    key: &'a [u8],
    value: &'a [u8],
    entry: HashEntry,
) -> NewRecord<'a> {
    NewRecord::new(key, value)
        .with_prev(prev_of(entry))
        .with_version(cx.version)
        .with_capacity(capacity_for(value.len()))
}
