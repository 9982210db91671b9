//! Blind writes: upsert and delete. They never read the old value, so they never go to disk
//! and may copy-update anywhere below the mutable region (including the fuzzy region).

use faster_hlog::NewRecord;

use super::{
    Ctx, Flow, Found, Probe, Shift, append_install, check_sizes, lock, new_record, prev_of, trace,
};
use crate::error::Result;

/// Sets `key` to `value`: in place if the key's newest record is mutable, unsealed, not a
/// tombstone, large enough and of the session's version while a checkpoint needs that;
/// otherwise appends a new record. Inlined into its callers, like [`super::read::read_into`]
/// (and [`upsert_call`] is the out-of-line form for mixed batches).
#[inline(always)]
pub(crate) fn upsert(
    c: &mut Ctx<'_>,
    key: &[u8],
    probe: Probe<'_>,
    value: &[u8],
) -> Result<Flow<()>> {
    let (inner, guard, cx) = (c.inner, &mut *c.guard, c.cx);
    check_sizes(inner, key, value.len())?;
    loop {
        let (slot, entry) = probe.find_or_create(inner)?;
        let ro = inner.hlog.read_only_address();
        if let Found::Mem(r) = trace(&inner.hlog, guard, key, entry.address(), ro)? {
            if cx.shifted(r.version()) {
                return Ok(Err(Shift));
            }
            let mut l = lock(&r);
            let h = l.header();
            if !h.is_sealed()
                && !h.is_tombstone()
                && value.len() <= r.value_capacity()
                && cx.may_update_in_place(r.version())
            {
                let res = r.update_value_exclusive(value);
                drop(l);
                return res.map(Ok).map_err(Into::into);
            }
            // Too small, deleted, or of the version a running checkpoint captures: no more
            // in-place updates of this record; its successor goes to the tail.
            l.seal();
        }
        let rec = new_record(cx, key, value, entry);
        if append_install(inner, guard, &slot, entry, &rec)? {
            return Ok(Ok(()));
        }
    }
}

/// [`upsert`] as a call, for the mixed batch pipeline (see [`super::read::read_into_call`]).
#[inline(never)]
pub(crate) fn upsert_call(
    c: &mut Ctx<'_>,
    key: &[u8],
    probe: Probe<'_>,
    value: &[u8],
) -> Result<Flow<()>> {
    upsert(c, key, probe, value)
}

/// Deletes `key`: sets the tombstone bit in place if its newest record is mutable, unsealed
/// and may be updated in place, appends a tombstone record if the chain continues below the
/// mutable region, and does nothing if the key has no record at all.
pub(crate) fn delete(c: &mut Ctx<'_>, key: &[u8], probe: Probe<'_>) -> Result<Flow<()>> {
    let (inner, guard, cx) = (c.inner, &mut *c.guard, c.cx);
    check_sizes(inner, key, 0)?;
    loop {
        let Some((slot, entry)) = probe.find(inner) else {
            return Ok(Ok(()));
        };
        let ro = inner.hlog.read_only_address();
        match trace(&inner.hlog, guard, key, entry.address(), ro)? {
            Found::Missing => return Ok(Ok(())),
            Found::Mem(r) => {
                if cx.shifted(r.version()) {
                    return Ok(Err(Shift));
                }
                let mut l = lock(&r);
                let h = l.header();
                if !h.is_sealed() && cx.may_update_in_place(r.version()) {
                    l.set_tombstone();
                    return Ok(Ok(()));
                }
                l.seal();
            }
            Found::Below(_) => {}
        }
        let rec = NewRecord::new(key, &[])
            .with_prev(prev_of(entry))
            .with_version(cx.version)
            .tombstone();
        if append_install(inner, guard, &slot, entry, &rec)? {
            return Ok(Ok(()));
        }
    }
}
