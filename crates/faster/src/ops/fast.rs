//! The fast paths of reads, upserts and RMWs whose key and value are 8 bytes each: the
//! common case of an embedded store (and YCSB's), run in a few dozen instructions.
//!
//! Each handles only the case the general paths ([`super::read::read_into`],
//! [`super::write::upsert`], [`super::rmw::rmw`]) meet most often, with the same protocol:
//! the key's entry is in its home bucket, its newest record is the first of the chain, in
//! memory (mutable, for an update), valid, of a version the session may read or update in
//! place, and holds an 8-byte key and value. For anything else a fast path gives up, having
//! changed nothing, and the caller runs the general path from the start. Giving up is always correct, so every
//! test here only decides how often the fast path is taken, never what an operation does.

use faster_hlog::{Address, RecordRef};
use faster_index::HashEntry;

use super::{Ctx, Cx, Probe, SessionGuard};
use crate::rmw::Rmw;
use crate::shared::Inner;

/// The key's index entry: from the probe's hint if it has one (a batch found the slot
/// already) and the hint still holds, else from the home bucket. `None`: neither.
#[inline(always)]
fn entry_of(inner: &Inner, probe: Probe<'_>) -> Option<HashEntry> {
    match &probe.hint {
        Some(slot) => inner.index.recheck(slot, probe.hash),
        None => inner.index.find_in_home(probe.hash),
    }
}

/// The newest record of the 8-byte `key` (probe `probe`) if the fast paths may use it: the
/// first record of the chain of the key's entry, in memory (`mutable`: at or above the
/// read-only address, else at or above the head) and at or above the begin address, valid,
/// not a tombstone, with the key `key` and an 8-byte value in a capacity of 8, and of no
/// version that shows the cut has passed the session. `None` otherwise: the caller takes the
/// general path.
#[inline(always)]
fn first_record_word8<'g>(
    inner: &'g Inner,
    guard: &'g SessionGuard,
    cx: Cx,
    key: [u8; 8],
    probe: Probe<'_>,
    mutable: bool,
) -> Option<RecordRef<'g>> {
    let entry = entry_of(inner, probe)?;
    let hlog = &inner.hlog;
    let addr = Address::from_raw_truncated(entry.address());
    // The head and the read-only address are loaded under `guard`.
    let floor = if mutable {
        hlog.read_only_address()
    } else {
        hlog.head_address()
    };
    if addr < floor || addr < hlog.begin_address() {
        return None;
    }
    let r = hlog.get_resident_word8(guard, addr, key)?;
    let h = r.header();
    (!h.is_invalid() && !h.is_tombstone() && !cx.shifted(r.version())).then_some(r)
}

/// Reads the 8-byte `key` (probe `probe`) if its newest record is in memory and has an 8-byte
/// value: `Some((word, len))` as [`faster_hlog::RecordRef::read_small_value`] returns it,
/// a consistent copy. `None`: the caller runs [`super::read::read_into`].
#[inline(always)]
pub(crate) fn read_word8(c: &Ctx<'_>, key: [u8; 8], probe: Probe<'_>) -> Option<(u64, usize)> {
    first_record_word8(c.inner, c.guard, c.cx, key, probe, false)?.read_small_value()
}

/// Runs `update` on the mutable record of the 8-byte `key` (probe `probe`) under its lock,
/// if the record has an 8-byte value and the session may update it in place: the common
/// part of [`upsert_word8`] and [`rmw_word8`]. Returns what `update` returns, and `false`
/// without calling it otherwise. `update` must change nothing when it returns `false`.
#[inline(always)]
fn update_mutable_word8(
    c: &Ctx<'_>,
    key: [u8; 8],
    probe: Probe<'_>,
    update: impl FnOnce(&RecordRef<'_>) -> bool,
) -> bool {
    let cx = c.cx;
    let Some(r) = first_record_word8(c.inner, c.guard, cx, key, probe, true) else {
        return false;
    };
    if !cx.may_update_in_place(r.version()) {
        return false;
    }
    // Contended: the general path waits for the lock.
    let Some(l) = r.try_lock() else {
        return false;
    };
    // The header as the lock holder sees it (a tombstone may have been set since).
    let h = l.header();
    if h.is_sealed() || h.is_tombstone() {
        // Dropping the lock stores the header back unchanged.
        return false;
    }
    let done = update(&r);
    drop(l);
    done
}

/// Sets the 8-byte `key` (probe `probe`) to `value` in place if its newest record is mutable
/// and may be updated in place: `true` if done. `false`: nothing was changed, and the caller
/// runs [`super::write::upsert`].
#[inline(always)]
pub(crate) fn upsert_word8(c: &Ctx<'_>, key: [u8; 8], probe: Probe<'_>, value: [u8; 8]) -> bool {
    // An 8-byte value over an 8-byte value of capacity 8: one word store, which cannot fail.
    update_mutable_word8(
        c,
        key,
        probe,
        #[inline(always)]
        |r| r.update_value_exclusive(&value).is_ok(),
    )
}

/// The RMW of the 8-byte `key` (probe `probe`) with `input` through `f`, in place, if its
/// newest record is mutable, may be updated in place, holds an 8-byte value and `f` updates
/// it in place ([`Rmw::in_place`] on a copy of the value, stored back in one word): `true`
/// if done. `false`: nothing was changed, and the caller runs [`super::rmw::rmw`].
#[inline(always)]
pub(crate) fn rmw_word8<R: Rmw + ?Sized>(
    c: &Ctx<'_>,
    key: [u8; 8],
    probe: Probe<'_>,
    input: &[u8],
    f: &R,
) -> bool {
    update_mutable_word8(
        c,
        key,
        probe,
        #[inline(always)]
        |r| {
            // Under the lock no other writer changes the value.
            let Some((word, 8)) = r.read_small_value() else {
                return false;
            };
            let mut value = word.to_le_bytes();
            f.in_place(input, &mut value) && r.update_value_exclusive(&value).is_ok()
        },
    )
}
