//! # faster-index: the hash index
//!
//! FASTER's cache-line hash index: a table of `2^k` buckets of 64 bytes, each holding seven
//! entries and a pointer to an overflow bucket, updated lock-free by any number of threads,
//! with a fuzzy checkpoint to a [`faster_device::Device`] and recovery from it.
//!
//! ## What this crate owns
//!
//! * [`KeyHash`], the xxh3-64 hash of a key; its low `k` bits pick the bucket, bits `48..62`
//!   the 14-bit tag (see [`hash`]).
//! * [`HashEntry`], the 64-bit entry word, 48-bit address (bit 47 is the read-cache flag),
//!   14-bit tag, a reserved bit and the tentative bit (layout in [`entry`]); [`EntrySlot`],
//!   a stable reference to where an entry lives, updated only by compare-and-swap
//!   ([`EntrySlot::compare_exchange_address`], [`EntrySlot::delete`]).
//! * [`HashIndex`], with [`find_entry`](HashIndex::find_entry),
//!   [`find_or_create_entry`](HashIndex::find_or_create_entry) (FASTER's tentative insert),
//!   [`for_each_entry`](HashIndex::for_each_entry) and [`stats`](HashIndex::stats); sized by
//!   an [`IndexConfig`].
//! * The overflow-bucket allocator ([`overflow`]): fixed capacity, chunks allocated on
//!   demand, buckets that never move, a lock-free free list for buckets that lost a race.
//! * [`HashIndex::checkpoint`] and [`HashIndex::recover`] with their metadata
//!   [`IndexCheckpointInfo`] (format and fuzzy semantics in [`checkpoint`]).
//! * [`IndexError`] and its [`Result`] alias.
//!
//! ```
//! use faster_index::{HashIndex, IndexConfig, KeyHash, TEMP_INVALID_ADDRESS};
//!
//! let index = HashIndex::new(IndexConfig::new(10, 256))?; // 2^10 buckets
//! let hash = KeyHash::of(b"some key");
//! let (slot, entry) = index.find_or_create_entry(hash)?;
//! assert_eq!(entry.address(), TEMP_INVALID_ADDRESS); // new: no record yet
//! slot.compare_exchange_address(entry, 0x4000).expect("nobody raced us");
//! let (_, found) = index.find_entry(hash).expect("present");
//! assert_eq!((found.address(), found.tag()), (0x4000, hash.tag()));
//! # Ok::<(), faster_index::IndexError>(())
//! ```
//!
//! ## Invariants
//!
//! * **One entry per tag and chain.** [`HashIndex::find_or_create_entry`] installs a
//!   *tentative* entry in a free slot, fences (`SeqCst`), then rescans the chain for another
//!   entry with the same tag, tentative or not: if it finds one it frees its slot and retries,
//!   otherwise it clears the tentative bit. Of two racing inserters at least one sees the
//!   other, so at most one finalizes and no chain ever holds two non-tentative entries with
//!   the same tag (updates through an [`EntrySlot`] keep the tag, so callers cannot break
//!   this either). Readers ([`HashIndex::find_entry`]) skip tentative entries.
//! * **Slots are stable.** Main buckets live in one allocation for the life of the index;
//!   overflow buckets live in chunks that are never freed or moved before the index drops.
//!   An overflow word goes from `0` to a bucket once and never changes again, so chains only
//!   grow at the tail and an [`EntrySlot`] stays valid for as long as its borrow.
//! * **Free is zero.** The free slot is the word `0`; no other word has address `0` (a new
//!   entry holds [`TEMP_INVALID_ADDRESS`] until its owner stores a record address).
//! * **No panics on bad input.** A full allocator is [`IndexError::OverflowExhausted`]; bad
//!   checkpoint bytes or metadata are [`IndexError::Corrupt`] or [`IndexError::Truncated`].
//!
//! Nothing here needs epoch protection yet: no bucket is ever freed while the index lives.
//! (Resizing the table, which would need it, is not part of this crate yet.)
//!
//! ## Concurrency
//!
//! `HashIndex` is `Send + Sync`. All operations are lock-free and use atomics only through
//! the private `sync` module, which switches to `loom` under `--cfg loom`; `tests/loom.rs`
//! model-checks the tentative insert and the overflow append on this very code.
//!
//! ## What it must not know about
//!
//! Record formats, keys beyond their hash, sessions, checkpoint versions or the log's
//! address regions: an entry is an address and a tag. Which address is "invalid", "in the
//! read cache" or "below the log's begin" is the caller's business; the index only keeps the
//! tentative protocol and the chains consistent.

pub mod bucket;
pub mod checkpoint;
mod checkpoint_writer;
pub mod entry;
mod error;
mod generation;
mod grow;
pub mod hash;
mod index;
pub mod overflow;
use faster_sync as sync;
mod table;

pub use checkpoint::IndexCheckpointInfo;
pub use entry::{
    ADDRESS_BITS, ADDRESS_MASK, EntrySlot, HashEntry, INVALID_ADDRESS, READ_CACHE_BIT,
    SlotLocation, TAG_BITS, TEMP_INVALID_ADDRESS,
};
pub use error::{IndexError, Result};
pub use hash::KeyHash;
pub use grow::{Growth, Link};
pub use index::{
    GROW_OVERFLOW_FRACTION, HashIndex, IndexConfig, IndexStats, MAX_OVERFLOW_BUCKETS,
    MAX_TABLE_BITS,
};
