//! Read: index entry, chain walk in memory, and the hand-off to disk.

use faster_hlog::Address;
use faster_index::KeyHash;

use super::{Found, SessionGuard, trace};
use crate::error::Result;
use crate::store::Inner;

/// What a read found in memory.
pub(crate) enum ReadOutcome {
    /// The answer: the value, or `None` if the key is missing or deleted.
    Done(Option<Vec<u8>>),
    /// The chain continues on disk at this address.
    Disk(Address),
}

/// Reads `key` from memory, or says where on disk to continue.
pub(crate) fn read(
    inner: &Inner,
    guard: &SessionGuard,
    key: &[u8],
    hash: KeyHash,
) -> Result<ReadOutcome> {
    let Some((_, entry)) = inner.index.find_entry(hash) else {
        return Ok(ReadOutcome::Done(None));
    };
    let hlog = &inner.hlog;
    Ok(
        match trace(hlog, guard, key, entry.address(), hlog.head_address())? {
            Found::Missing => ReadOutcome::Done(None),
            Found::Below(addr) => ReadOutcome::Disk(addr),
            Found::Mem(r) => {
                if r.header().is_tombstone() {
                    ReadOutcome::Done(None)
                } else {
                    let mut v = Vec::with_capacity(r.value_len());
                    r.read_value_into(&mut v);
                    ReadOutcome::Done(Some(v))
                }
            }
        },
    )
}
