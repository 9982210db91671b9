//! Doubling the index online: the split of one generation into the next.
//!
//! FASTER's design (`GrowIndex`, `mem_index.h::Grow`): the new generation has twice the
//! buckets; old bucket `i` splits into new buckets `i` and `i + n` by bit `k` of each key's
//! hash (`n = 2^k`); tags stay (they come from high hash bits), so entry words move verbatim.
//! The caller (the store's state machine) guarantees that **no other thread uses the index
//! while it splits**: sessions are parked at a phase boundary and help with the split
//! instead. The old generation is therefore frozen, and the split may use its reserved bit
//! as a "placed" mark.
//!
//! A table of at least `2^16` buckets splits by its entries' tags alone: bit `k` of every
//! key's hash is tag bit `k - 16` ([`KeyHash`]), so each entry goes to one side, exactly,
//! without reading a record (pass 1 only; `split_by_tags`). A smaller table splits by hash
//! bits only the keys hold, reading the records, in three passes, in this order:
//!
//! 1. **Chunks** ([`HashIndex::help_grow`], any number of threads): the old table is cut into
//!    chunks of `SPLIT_CHUNK` buckets, each claimed by one thread (`next_chunk`), split, and
//!    counted down (`pending`). An entry whose record is in memory goes to its key's side;
//!    the other side gets the newest record of the other side found by walking the chain
//!    back (FASTER's `TraceBackForOtherChainStart`), or the first address the walk cannot
//!    read (on disk: it may hold keys of either side), or nothing if the chain ends. Entries
//!    whose record is on disk are left for pass 2.
//! 2. **Scan** ([`HashIndex::place_scanned`], the driver): the driver reads the on-disk log
//!    sequentially and hands over each record; a record that is the head of an unplaced
//!    entry's chain tells its key's side, and its previous address goes to the other side.
//! 3. **Rest** ([`HashIndex::finish_grow`], the driver): every entry still unplaced goes to
//!    both sides (always correct: a chain holds only keys of its bucket and tag, and lookups
//!    compare full keys), then the new generation becomes current.
//!
//! The invariants this keeps: for every key with a newest record `R` in the old chain of
//! bucket `i`, the new entry of its bucket and tag points at `R` or at a newer record of the
//! same chain, so a walk from it reaches `R`; no new bucket gets two entries with one tag
//! (each old entry is placed once, into each side at most once, and a new bucket draws from
//! one old bucket only). A failure (memory) before the switch leaves the old generation
//! current, its marks cleared.

use crate::entry::{HashEntry, RESERVED_BIT, TEMP_INVALID_ADDRESS};
use crate::error::{IndexError, Result};
use crate::generation::{Generation, SPLIT_CHUNK, TAG_SPLIT_BITS};
use crate::hash::KeyHash;
use crate::index::HashIndex;
use crate::sync::Ordering;

/// What the log says about the record at an address, for the split (given by the caller,
/// which knows the record format; the index does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// No record: the invalid address, or below the log's begin. Nothing to follow.
    Gone,
    /// A record that cannot be read now (on disk): its key's side is unknown.
    Unknown,
    /// A record in memory: its key's hash and the address of the previous record of its
    /// chain.
    Record {
        /// The hash of the record's key.
        hash: KeyHash,
        /// The previous record of the chain (`0` if none).
        previous: u64,
    },
}

/// The log as the split reads it: what a record says ([`Link`]) and a cache hint.
/// Implemented for every `Fn(u64) -> Link` (with no hint).
pub trait Chains {
    /// What the log says about the record at `address`.
    fn link(&self, address: u64) -> Link;
    /// Hints that the record at `address` will be read soon (a pure hint; the default does
    /// nothing). The split issues it for a group of buckets' records before it reads them.
    fn prefetch(&self, address: u64) {
        let _ = address;
    }
}

impl<F: Fn(u64) -> Link> Chains for F {
    fn link(&self, address: u64) -> Link {
        self(address)
    }
}

/// Old buckets whose records the split prefetches before it reads them.
const PREFETCH_BUCKETS: u64 = 8;

/// Where a growth stands, as [`HashIndex::help_grow`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// No growth is running: use the index.
    Idle,
    /// Chunks are still being split (by this thread or others).
    Splitting,
    /// Every chunk is split; the driver finishes the growth. Do not use the index yet.
    Finishing,
}

impl HashIndex {
    /// Splits chunks of a running growth until none is left to claim. Any thread the caller
    /// has parked away from the index may help (see the crate docs on growth); `link` reads
    /// the log. Returns where the growth stands; a thread must not use the index until it
    /// reports [`Growth::Idle`].
    pub fn help_grow(&self, link: &dyn Chains) -> Growth {
        let Some(split) = self.split() else {
            return Growth::Idle;
        };
        let (old, new) = (split.old(), split.target());
        let n = old.buckets.len() as u64;
        loop {
            let c = split.next_chunk.fetch_add(1, Ordering::AcqRel);
            if c >= split.chunks {
                break;
            }
            let (lo, hi) = (c * SPLIT_CHUNK, ((c + 1) * SPLIT_CHUNK).min(n));
            if let Err(e) = split_chunk(old, new, lo, hi, link) {
                split.fail(e);
            }
            split.pending.fetch_sub(1, Ordering::AcqRel);
        }
        if !self.is_growing() {
            Growth::Idle
        } else if split.pending.load(Ordering::Acquire) == 0 {
            Growth::Finishing
        } else {
            Growth::Splitting
        }
    }

    /// Pass 2 of a growth (the driver only, after [`HashIndex::help_grow`] reported
    /// [`Growth::Finishing`]): the record at `address`, whose key hashes to `hash` and whose
    /// previous record is at `previous`, was read from the log; if it heads the chain of an
    /// entry not placed yet, the entry goes to its key's side.
    pub fn place_scanned(
        &self,
        address: u64,
        hash: KeyHash,
        previous: u64,
        link: &dyn Chains,
    ) -> Result<()> {
        let Some(split) = self.split() else {
            return Ok(());
        };
        let (old, new) = (split.old(), split.target());
        let home = old.home(hash);
        let tag = hash.tag();
        for (_, bucket) in old.chain(home) {
            for word in &bucket.entries {
                let raw = word.load(Ordering::Relaxed);
                let e = HashEntry::from_raw(raw);
                if e.is_empty() || e.is_tentative() || e.tag() != tag || e.address() != address {
                    continue;
                }
                if raw & RESERVED_BIT == 0 {
                    let r = place(old, new, home, e, hash, previous, link);
                    if let Err(err) = r {
                        split.fail(err);
                        return Ok(());
                    }
                    word.store(raw | RESERVED_BIT, Ordering::Relaxed);
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Pass 3 and the switch (the driver only, after the chunks and the scan): every entry
    /// not placed goes to both sides, then the new generation becomes current and the old
    /// one is retired (its memory goes back with [`HashIndex::release_retired`]). Returns
    /// the new `table_bits`. On failure (memory ran out during the split) the old
    /// generation stays current, unchanged, and the growth is over.
    pub fn finish_grow(&self) -> Result<u32> {
        let Some(split) = self.split() else {
            return Err(IndexError::InvalidConfig("no growth is running".into()));
        };
        let (old, new) = (split.old(), split.target());
        if split.pending.load(Ordering::Acquire) != 0 {
            return Err(IndexError::InvalidConfig(
                "chunks are still being split".into(),
            ));
        }
        let n = old.buckets.len() as u64;
        // A split by tags placed every entry in pass 1 (and marked none).
        if !split.failed() && old.table_bits < TAG_SPLIT_BITS {
            for home in 0..n {
                let r = for_each_unplaced(old, home, |e| {
                    new.append(home, e)?;
                    new.append(home + n, e)?;
                    Ok(true)
                });
                if let Err(e) = r {
                    split.fail(e);
                    break;
                }
            }
        }
        if let Some(e) = split.take_failure() {
            clear_marks(old);
            self.abandon_growth();
            return Err(e);
        }
        self.switch_to_growing();
        Ok(new.table_bits)
    }
}

/// Splits old buckets `lo..hi` (pass 1), a group at a time: the group's records are
/// prefetched before any of them is read.
fn split_chunk(
    old: &Generation,
    new: &Generation,
    lo: u64,
    hi: u64,
    link: &dyn Chains,
) -> Result<()> {
    if old.table_bits >= TAG_SPLIT_BITS {
        return (lo..hi).try_for_each(|home| split_by_tags(old, new, home));
    }
    let mut group = lo;
    while group < hi {
        let end = (group + PREFETCH_BUCKETS).min(hi);
        for home in group..end {
            for (_, bucket) in old.chain(home) {
                for word in &bucket.entries {
                    let e = HashEntry::from_raw(word.load(Ordering::Relaxed));
                    if !e.is_empty() && e.address() > TEMP_INVALID_ADDRESS {
                        link.prefetch(e.address());
                    }
                }
            }
        }
        for home in group..end {
            split_bucket(old, new, home, link)?;
        }
        group = end;
    }
    Ok(())
}

/// Calls `place(entry)` for every entry of old bucket `home`'s chain that is neither free,
/// tentative nor marked placed, and marks it when `place` returns `true`.
fn for_each_unplaced(
    old: &Generation,
    home: u64,
    mut place: impl FnMut(HashEntry) -> Result<bool>,
) -> Result<()> {
    for (_, bucket) in old.chain(home) {
        for word in &bucket.entries {
            let raw = word.load(Ordering::Relaxed);
            let e = HashEntry::from_raw(raw);
            if e.is_empty() || e.is_tentative() || raw & RESERVED_BIT != 0 {
                continue;
            }
            if place(e)? {
                word.store(raw | RESERVED_BIT, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// Splits old bucket `home`'s chain (pass 1): places every entry whose record is in memory
/// (or that points nowhere) and marks it.
fn split_bucket(old: &Generation, new: &Generation, home: u64, link: &dyn Chains) -> Result<()> {
    for_each_unplaced(old, home, |e| match read(e.address(), link) {
        Link::Unknown => Ok(false),
        Link::Gone => Ok(true),
        Link::Record { hash, previous } => {
            place(old, new, home, e, hash, previous, link)?;
            Ok(true)
        }
    })
}

/// Splits old bucket `home`'s chain of a table of at least `2^TAG_SPLIT_BITS` buckets: each
/// entry goes to the side its tag names (every key of its chain has that tag), whether its
/// records are in memory or on disk. Every entry is placed here, so none is marked and no
/// later pass looks at this table again: it is read once.
fn split_by_tags(old: &Generation, new: &Generation, home: u64) -> Result<()> {
    let n = old.buckets.len() as u64;
    let bit = old.table_bits - TAG_SPLIT_BITS;
    for_each_unplaced(old, home, |e| {
        let side = (e.tag() as u64 >> bit) & 1;
        new.append(home + side * n, HashEntry::new(e.address(), e.tag()))?;
        Ok(false)
    })
}

/// `link(address)`, with the addresses that are never records answered here.
fn read(address: u64, link: &dyn Chains) -> Link {
    if address <= TEMP_INVALID_ADDRESS {
        Link::Gone
    } else {
        link.link(address)
    }
}

/// Places entry `e` of old bucket `home`, whose record's key hashes to `hash`: into the
/// key's side, and into the other side the newest record of that side below it.
fn place(
    old: &Generation,
    new: &Generation,
    home: u64,
    e: HashEntry,
    hash: KeyHash,
    previous: u64,
    link: &dyn Chains,
) -> Result<()> {
    let n = old.buckets.len() as u64;
    let side = hash.raw() & n != 0;
    let (mine, other) = if side {
        (home + n, home)
    } else {
        (home, home + n)
    };
    new.append(mine, HashEntry::new(e.address(), e.tag()))?;
    if let Some(b) = other_side_start(previous, side, n, link) {
        new.append(other, HashEntry::new(b, e.tag()))?;
    }
    Ok(())
}

/// Walks a chain back from `p` for the first record whose key is not on `side` (or the first
/// the walk cannot read); `None` if the chain ends first.
fn other_side_start(mut p: u64, side: bool, n: u64, link: &dyn Chains) -> Option<u64> {
    loop {
        match read(p, link) {
            Link::Gone => return None,
            Link::Unknown => return Some(p),
            Link::Record { hash, previous } => {
                if (hash.raw() & n != 0) != side {
                    return Some(p);
                }
                p = previous;
            }
        }
    }
}

/// Clears the split's marks from a generation that stays current.
fn clear_marks(old: &Generation) {
    for home in 0..old.buckets.len() as u64 {
        for (_, bucket) in old.chain(home) {
            for word in &bucket.entries {
                let raw = word.load(Ordering::Relaxed);
                if raw & RESERVED_BIT != 0 {
                    word.store(raw & !RESERVED_BIT, Ordering::Relaxed);
                }
            }
        }
    }
}
