//! Read: index entry, chain walk in memory, and the hand-off to disk.

use faster_hlog::Address;

use super::{Ctx, Found, Probe, trace};
use crate::error::Result;

/// What a read found in memory.
pub(crate) enum ReadOutcome {
    /// The answer: the value, or `None` if the key is missing or deleted.
    Done(Option<Vec<u8>>),
    /// The chain continues on disk at this address.
    Disk(Address),
    /// The checkpoint's cut has passed the session (see [`super::Shift`]).
    Shift,
}

/// What [`read_into`] found in memory.
pub(crate) enum ReadInto {
    /// The key has a value: it is in the caller's buffer.
    Found,
    /// The key has a value of at most 8 bytes: the first `.1` of the little-endian bytes of
    /// `.0` (the caller's buffer is untouched; see [`faster_hlog::RecordRef::read_small_value`]).
    Small(u64, usize),
    /// The key is missing or deleted.
    Missing,
    /// The chain continues on disk at this address.
    Disk(Address),
    /// The checkpoint's cut has passed the session (see [`super::Shift`]).
    Shift,
}

/// Reads `key` from memory into a new buffer ([`read_into`]), or says where on disk to
/// continue.
pub(crate) fn read(c: &Ctx<'_>, key: &[u8], probe: Probe<'_>) -> Result<ReadOutcome> {
    let mut value = Vec::new();
    Ok(match read_into(c, key, probe, &mut value)? {
        ReadInto::Found => ReadOutcome::Done(Some(value)),
        ReadInto::Small(word, len) => ReadOutcome::Done(Some(word.to_le_bytes()[..len].to_vec())),
        ReadInto::Missing => ReadOutcome::Done(None),
        ReadInto::Disk(addr) => ReadOutcome::Disk(addr),
        ReadInto::Shift => ReadOutcome::Shift,
    })
}

/// Reads `key` from memory into `buf` (replacing its contents, a consistent seqlock copy) or,
/// for a value of at most 8 bytes, into the result itself; or says where on disk to
/// continue. Inlined into its callers: with their bodies inlined, per-operation reads and
/// upserts ran 8-26% faster on a cached store (YCSB A and C, 10 K keys; see
/// [`read_into_call`] for the exception).
#[inline(always)]
pub(crate) fn read_into(
    c: &Ctx<'_>,
    key: &[u8],
    probe: Probe<'_>,
    buf: &mut Vec<u8>,
) -> Result<ReadInto> {
    let (inner, guard, cx) = (c.inner, &*c.guard, c.cx);
    let Some((_, entry)) = probe.find(inner) else {
        return Ok(ReadInto::Missing);
    };
    let hlog = &inner.hlog;
    Ok(
        match trace(hlog, guard, key, entry.address(), hlog.head_address())? {
            Found::Missing => ReadInto::Missing,
            Found::Below(addr) => ReadInto::Disk(addr),
            Found::Mem(r) => {
                if cx.shifted(r.version()) {
                    ReadInto::Shift
                } else if r.header().is_tombstone() {
                    ReadInto::Missing
                } else if let Some((word, len)) = r.read_small_value() {
                    ReadInto::Small(word, len)
                } else {
                    // One allocation for a new buffer, none for a reused one that is large
                    // enough (the copy would otherwise grow it word by word).
                    buf.reserve(r.value_len());
                    r.read_value_into(buf);
                    ReadInto::Found
                }
            }
        },
    )
}

/// [`read_into`] as a call, for the mixed batch pipeline ([`crate::Session::batch`]): with
/// the bodies of every operation kind inlined into its loop, mixed batches ran 7% slower
/// (YCSB A, 10 K keys).
#[inline(never)]
pub(crate) fn read_into_call(
    c: &Ctx<'_>,
    key: &[u8],
    probe: Probe<'_>,
    buf: &mut Vec<u8>,
) -> Result<ReadInto> {
    read_into(c, key, probe, buf)
}
