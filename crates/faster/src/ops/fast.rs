//! The fast paths of reads and upserts whose key and value are 8 bytes each: the common
//! case of an embedded store (and YCSB's), run in a few dozen instructions.
//!
//! Each handles only the case the general paths ([`super::read::read_into`],
//! [`super::write::upsert`]) meet most often, with the same protocol: the key's entry is in
//! its home bucket, its newest record is the first of the chain, in memory (mutable, for an
//! upsert), valid, of a version the session may read or update in place, and holds an
//! 8-byte key and value. For anything else a fast path gives up, having changed nothing, and
//! the caller runs the general path from the start. Giving up is always correct, so every
//! test here only decides how often the fast path is taken, never what an operation does.

use faster_hlog::Address;
use faster_index::HashEntry;

use super::{Cx, Probe, SessionGuard};
use crate::store::Inner;

/// The key's index entry: from the probe's hint if it has one (a batch found the slot
/// already) and the hint still holds, else from the home bucket. `None`: neither.
#[inline(always)]
fn entry_of(inner: &Inner, probe: Probe<'_>) -> Option<HashEntry> {
    match &probe.hint {
        Some(slot) => inner.index.recheck(slot, probe.hash),
        None => inner.index.find_in_home(probe.hash),
    }
}

/// Reads the 8-byte `key` (probe `probe`) if its newest record is in memory and has an 8-byte
/// value: `Some((word, len))` as [`faster_hlog::RecordRef::read_small_value`] returns it,
/// a consistent copy. `None`: the caller runs [`super::read::read_into`].
#[inline(always)]
pub(crate) fn read_word8(
    inner: &Inner,
    guard: &SessionGuard,
    cx: Cx,
    key: [u8; 8],
    probe: Probe<'_>,
) -> Option<(u64, usize)> {
    let entry = entry_of(inner, probe)?;
    let hlog = &inner.hlog;
    let addr = Address::from_raw_truncated(entry.address());
    // In memory: at or above the head (loaded under `guard`), and a valid log address.
    if addr < hlog.head_address() || addr < hlog.begin_address() {
        return None;
    }
    let r = hlog.get_resident_word8(guard, addr, key)?;
    let h = r.header();
    if h.is_invalid() || h.is_tombstone() || cx.shifted(r.version()) {
        return None;
    }
    r.read_small_value()
}

/// Sets the 8-byte `key` (probe `probe`) to `value` in place if its newest record is mutable
/// and may be updated in place: `true` if done. `false`: nothing was changed, and the caller
/// runs [`super::write::upsert`].
#[inline(always)]
pub(crate) fn upsert_word8(
    inner: &Inner,
    guard: &SessionGuard,
    cx: Cx,
    key: [u8; 8],
    probe: Probe<'_>,
    value: [u8; 8],
) -> bool {
    let Some(entry) = entry_of(inner, probe) else {
        return false;
    };
    let hlog = &inner.hlog;
    let addr = Address::from_raw_truncated(entry.address());
    // Mutable: at or above the read-only address (so in memory), and a valid log address.
    if addr < hlog.read_only_address() || addr < hlog.begin_address() {
        return false;
    }
    let Some(r) = hlog.get_resident_word8(guard, addr, key) else {
        return false;
    };
    let v = r.version();
    if r.header().is_invalid() || cx.shifted(v) || !cx.may_update_in_place(v) {
        return false;
    }
    // Contended: the general path waits for the lock.
    let Some(l) = r.try_lock() else {
        return false;
    };
    let h = l.header();
    if h.is_sealed() || h.is_tombstone() {
        // Dropping the lock stores the header back unchanged.
        return false;
    }
    // An 8-byte value over an 8-byte value of capacity 8: one word store, which cannot fail.
    let done = r.update_value_exclusive(&value).is_ok();
    drop(l);
    done
}
