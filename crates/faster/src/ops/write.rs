//! Blind writes: upsert and delete. They never read the old value, so they never go to disk
//! and may copy-update anywhere below the mutable region (including the fuzzy region).

use faster_hlog::NewRecord;
use faster_index::KeyHash;

use super::{Found, SessionGuard, append_install, check_sizes, lock, new_record, prev_of, trace};
use crate::error::Result;
use crate::store::Inner;

/// Sets `key` to `value`: in place if the key's newest record is mutable, unsealed, not a
/// tombstone and large enough; otherwise appends a new record.
pub(crate) fn upsert(
    inner: &Inner,
    guard: &mut SessionGuard,
    key: &[u8],
    hash: KeyHash,
    value: &[u8],
) -> Result<()> {
    check_sizes(inner, key, value.len())?;
    loop {
        let (slot, entry) = inner.index.find_or_create_entry(hash)?;
        let ro = inner.hlog.read_only_address();
        if let Found::Mem(r) = trace(&inner.hlog, guard, key, entry.address(), ro)? {
            lock(&r);
            let h = r.header();
            if !h.is_sealed() && !h.is_tombstone() && value.len() <= r.value_capacity() {
                let res = r.update_value_exclusive(value);
                r.unlock();
                return res.map_err(Into::into);
            }
            // Too small (or deleted): no more in-place updates of this record; its
            // successor goes to the tail.
            r.seal();
            r.unlock();
        }
        let rec = new_record(inner, key, value, entry);
        if append_install(inner, guard, &slot, entry, &rec)? {
            return Ok(());
        }
    }
}

/// Deletes `key`: sets the tombstone bit in place if its newest record is mutable and
/// unsealed, appends a tombstone record if the chain continues below the mutable region, and
/// does nothing if the key has no record at all.
pub(crate) fn delete(
    inner: &Inner,
    guard: &mut SessionGuard,
    key: &[u8],
    hash: KeyHash,
) -> Result<()> {
    check_sizes(inner, key, 0)?;
    loop {
        let Some((slot, entry)) = inner.index.find_entry(hash) else {
            return Ok(());
        };
        let ro = inner.hlog.read_only_address();
        match trace(&inner.hlog, guard, key, entry.address(), ro)? {
            Found::Missing => return Ok(()),
            Found::Mem(r) => {
                lock(&r);
                let h = r.header();
                if !h.is_sealed() {
                    r.set_tombstone();
                    r.unlock();
                    return Ok(());
                }
                r.unlock();
            }
            Found::Below(_) => {}
        }
        let rec = NewRecord::new(key, &[])
            .with_prev(prev_of(entry))
            .with_version(inner.version())
            .tombstone();
        if append_install(inner, guard, &slot, entry, &rec)? {
            return Ok(());
        }
    }
}
