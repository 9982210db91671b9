//! Read-modify-write: in place under the record lock in the mutable region, copy-update
//! from read-only records, retry in the fuzzy region, hand-off to disk for on-disk values.

use faster_hlog::{Address, RecordRef};
use faster_index::KeyHash;

use super::{
    Ctx, Cx, Flow, Found, Probe, Shift, append_install, check_sizes, lock, new_record, trace,
};
use crate::error::Result;
use crate::rmw::Rmw;

/// How an RMW attempt ended.
pub(crate) enum RmwOutcome {
    /// The update is installed.
    Done,
    /// The key's newest record may be on disk at `addr`; `snapshot` is the index entry's
    /// address the walk started from (the update may be installed only if it is unchanged).
    Disk {
        /// Where the chain continues on disk.
        addr: Address,
        /// The index entry's address when the walk started.
        snapshot: u64,
    },
}

/// What to do after looking at the key's newest record in memory.
enum Step {
    /// Append a record with this value.
    Append(Vec<u8>),
    /// The record is in the fuzzy region: refresh and retry.
    Retry,
}

/// [`rmw`] as a call, for the mixed batch pipeline (see [`super::read::read_into_call`]) and
/// rare paths.
#[inline(never)]
pub(crate) fn rmw_call<R: Rmw + ?Sized>(
    c: &mut Ctx<'_>,
    scratch: &mut Vec<u8>,
    key: &[u8],
    probe: Probe<'_>,
    input: &[u8],
    f: &R,
) -> Result<Flow<RmwOutcome>> {
    rmw(c, scratch, key, probe, input, f)
}

/// Runs the RMW as far as memory allows. Inlined into its callers, like
/// [`super::read::read_into`] ([`rmw_call`] is the out-of-line form).
#[inline(always)]
pub(crate) fn rmw<R: Rmw + ?Sized>(
    c: &mut Ctx<'_>,
    scratch: &mut Vec<u8>,
    key: &[u8],
    probe: Probe<'_>,
    input: &[u8],
    f: &R,
) -> Result<Flow<RmwOutcome>> {
    let (inner, guard, cx) = (c.inner, &mut *c.guard, c.cx);
    check_sizes(inner, key, 0)?;
    let hlog = &inner.hlog;
    loop {
        let (slot, entry) = probe.find_or_create(inner)?;
        let step = match trace(hlog, guard, key, entry.address(), hlog.head_address())? {
            Found::Missing => Step::Append(f.initial(input)),
            Found::Below(addr) => {
                return Ok(Ok(RmwOutcome::Disk {
                    addr,
                    snapshot: entry.address(),
                }));
            }
            Found::Mem(r) => {
                if cx.shifted(r.version()) {
                    return Ok(Err(Shift));
                }
                if r.address() >= hlog.read_only_address() {
                    match in_place(&r, cx, scratch, input, f)? {
                        Some(step) => step,
                        None => return Ok(Ok(RmwOutcome::Done)),
                    }
                } else if r.address() >= hlog.safe_read_only_address() && !r.header().is_sealed() {
                    // The fuzzy region: a thread that saw this record mutable may still be
                    // updating it in place; copying it now could lose that update.
                    Step::Retry
                } else {
                    Step::Append(from_stable(&r, scratch, input, f))
                }
            }
        };
        match step {
            Step::Retry => {
                guard.refresh();
            }
            Step::Append(value) => {
                check_sizes(inner, key, value.len())?;
                let rec = new_record(cx, key, &value, entry);
                if append_install(inner, guard, &slot, entry, &rec)? {
                    return Ok(Ok(RmwOutcome::Done));
                }
            }
        }
    }
}

/// The RMW on a mutable record, under its lock: `None` if it was updated in place, else the
/// step to take (the record is then sealed, so nobody updates it in place any more). A
/// record of an older version while a checkpoint captures it is copied, never updated.
fn in_place<R: Rmw + ?Sized>(
    r: &RecordRef<'_>,
    cx: Cx,
    scratch: &mut Vec<u8>,
    input: &[u8],
    f: &R,
) -> Result<Option<Step>> {
    let mut l = lock(r);
    if !l.header().is_sealed() && !cx.may_update_in_place(r.version()) {
        l.seal();
    }
    let h = l.header();
    if h.is_sealed() {
        drop(l);
        return Ok(Some(Step::Append(from_stable(r, scratch, input, f))));
    }
    let new = if h.is_tombstone() {
        f.initial(input)
    } else {
        r.read_value_into(scratch);
        if f.in_place(input, scratch) {
            return r
                .update_value_exclusive(scratch)
                .map(|()| None)
                .map_err(Into::into);
        }
        r.read_value_into(scratch);
        let new = f.copy(input, scratch);
        if new.len() <= r.value_capacity() {
            return r
                .update_value_exclusive(&new)
                .map(|()| None)
                .map_err(Into::into);
        }
        new
    };
    l.seal();
    Ok(Some(Step::Append(new)))
}

/// The new value computed from a record nobody updates in place any more (read-only or
/// sealed).
fn from_stable<R: Rmw + ?Sized>(
    r: &RecordRef<'_>,
    scratch: &mut Vec<u8>,
    input: &[u8],
    f: &R,
) -> Vec<u8> {
    if r.header().is_tombstone() {
        f.initial(input)
    } else {
        r.read_value_into(scratch);
        f.copy(input, scratch)
    }
}

/// What a disk read found for an RMW: the old value (`None` if missing or deleted), the
/// version of the record that decided it, and the index entry's address the RMW started from.
pub(crate) struct FromDisk {
    /// The old value.
    pub(crate) old: Option<Vec<u8>>,
    /// The version of the record that decided it (`None`: the chain ended).
    pub(crate) old_version: Option<u32>,
    /// The index entry's address when the RMW's walk started.
    pub(crate) snapshot: u64,
}

/// Continues an RMW whose old value was read from disk ([`FromDisk`]). Installs the new
/// value if the index entry still holds the snapshot; otherwise a newer record appeared and
/// the RMW starts over.
pub(crate) fn rmw_after_disk<R: Rmw + ?Sized>(
    c: &mut Ctx<'_>,
    scratch: &mut Vec<u8>,
    key: &[u8],
    hash: KeyHash,
    input: &[u8],
    f: &R,
    read: FromDisk,
) -> Result<Flow<RmwOutcome>> {
    let FromDisk {
        old,
        old_version,
        snapshot,
    } = read;
    let (inner, cx) = (c.inner, c.cx);
    if old_version.is_some_and(|v| cx.shifted(v)) {
        return Ok(Err(Shift));
    }
    let (slot, entry) = inner.index.find_or_create_entry(hash)?;
    if entry.address() == snapshot {
        let value = match old {
            Some(old) => f.copy(input, &old),
            None => f.initial(input),
        };
        check_sizes(inner, key, value.len())?;
        let rec = new_record(cx, key, &value, entry);
        if append_install(inner, c.guard, &slot, entry, &rec)? {
            return Ok(Ok(RmwOutcome::Done));
        }
    }
    rmw(c, scratch, key, Probe::of(hash), input, f)
}
