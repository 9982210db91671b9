//! Compaction's operation: copy a record to the tail if it is still its key's newest.
//!
//! The record at `addr` (below the safe read-only address, so it never changes but for
//! header bits) is *live* if the key's chain, walked from its index entry, reaches `addr`
//! before any other valid record of the key. If it is, the copy is appended with the entry's
//! address as its previous address and installed by a compare-and-swap from that entry
//! ([`faster_index::replace_unless_changed`]): if a user's write of the key landed
//! meanwhile, the swap fails, the walk runs again from the new entry, finds the write and
//! the copy is given up (marked invalid). The copy never hides a newer write.

use faster_hlog::{Address, NewRecord};
use faster_index::{HashEntry, KeyHash, replace_unless_changed};

use super::{Ctx, Found, capacity_for, lookup_blocking_at, trace};
use crate::error::{Error, Result};

/// What [`copy_if_newest`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Copied {
    /// The record was its key's newest: a copy is at the tail now.
    Yes,
    /// A newer record of the key exists (or the key has no entry): nothing to keep.
    Dead,
}

/// Copies the record of `key` with `value` at `addr` to the tail if it is still the key's
/// newest record (see the module documentation).
///
/// `newer(key, b)` may save a disk read when the key's chain continues on disk at `b`
/// above `addr`: `true` if the caller knows the key has a record at an address above
/// `addr` (then `addr` is dead); `false` if it does not know (the record at `b` is read).
pub(crate) fn copy_if_newest(
    c: &mut Ctx<'_>,
    key: &[u8],
    value: &[u8],
    addr: Address,
    newer: &mut dyn FnMut(&[u8], Address) -> bool,
) -> Result<Copied> {
    let hash = KeyHash::of(key);
    let inner = c.inner;
    let Some((slot, _)) = inner.index.find_entry(hash) else {
        return Ok(Copied::Dead);
    };
    let mut lost = Vec::new();
    let installed = replace_unless_changed(
        &slot,
        |entry: HashEntry| {
            if entry.is_empty() || entry.is_tentative() {
                // Entries are freed only by a shift, which never runs during a compaction's
                // copies: the index changed under the compaction.
                return Err(Error::CompactionConflict(format!(
                    "the index entry of the key of the record at {addr:?} vanished"
                )));
            }
            if !newest_is(c, key, entry.address(), addr, newer)? {
                return Ok(None);
            }
            let rec = NewRecord::new(key, value)
                .with_prev(super::prev_of(entry))
                .with_version(c.cx.version)
                .with_capacity(capacity_for(value.len()));
            Ok(Some(inner.hlog.append(c.guard, &rec)?.raw()))
        },
        |a| lost.push(a),
    )?;
    for a in lost {
        if let Some(r) = inner.hlog.get(c.guard, Address::from_raw_truncated(a))? {
            r.set_invalid();
        }
    }
    Ok(if installed { Copied::Yes } else { Copied::Dead })
}

/// Whether the first valid record of `key` on the chain from `from` is the one at `addr`.
fn newest_is(
    c: &mut Ctx<'_>,
    key: &[u8],
    from: u64,
    addr: Address,
    newer: &mut dyn FnMut(&[u8], Address) -> bool,
) -> Result<bool> {
    let hlog = &c.inner.hlog;
    match trace(hlog, c.guard, key, from, hlog.head_address())? {
        Found::Mem(r) => Ok(r.address() == addr),
        Found::Missing => Ok(false),
        Found::Below(b) if b == addr => Ok(true),
        // Below `addr` already: the walk passed it without meeting it (it is not on the
        // chain: a copy that lost its swap before it was marked invalid).
        Found::Below(b) if b < addr => Ok(false),
        Found::Below(b) if newer(key, b) => Ok(false),
        Found::Below(b) => Ok(lookup_blocking_at(&mut c.reborrow(), key, b)? == Some(addr)),
    }
}
