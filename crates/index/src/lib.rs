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
//!   an [`IndexConfig`] (initial size, overflow cap, memory limit).
//! * Generations and online doubling (the `generation` and `grow` modules): the index uses
//!   one generation at a time through one pointer; [`HashIndex::begin_grow`],
//!   [`HashIndex::help_grow`] (chunks claimed by any number of threads),
//!   [`HashIndex::place_scanned`] (records the caller reads from disk) and
//!   [`HashIndex::finish_grow`] double it (FASTER's `GrowIndex` split), with the log read
//!   through the caller's [`Link`]; [`HashIndex::wants_growth`] is the trigger and
//!   [`HashIndex::release_retired`] gives retired tables' memory back.
//! * The overflow-bucket allocator ([`overflow`]): chunks that double in size, mapped on
//!   demand (the capacity is a limit, not a reservation), buckets that never move, a
//!   lock-free free list for buckets that lost a race.
//! * Compaction's half (the `conditional` module): [`replace_unless_changed`], the
//!   compare-and-swap from the entry a decision was made on, so that a compaction's copy
//!   never hides a newer write; [`HashIndex::clean_below`] frees entries below the log's
//!   begin address.
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
//! * **Slots are stable within a generation.** A generation's main buckets live in one
//!   mapping and its overflow buckets in chunks, none moved or unmapped before the index
//!   drops. An overflow word goes from `0` to a bucket once and never changes again, so
//!   chains only grow at the tail. An [`EntrySlot`] is memory-safe for as long as its borrow
//!   (a retired generation's memory is returned with `MADV_DONTNEED`, which keeps the
//!   mapping: it then reads as empty buckets); it is *meaningful* until the next growth,
//!   so callers drop slots before their state machine lets a growth split the table.
//! * **Growth splits a frozen table.** While [`HashIndex::help_grow`] and
//!   [`HashIndex::finish_grow`] run, no other thread uses the index (the caller parks its
//!   threads at a phase boundary and lets them help). Each chunk is split by one thread;
//!   every key reachable before the growth is reachable after it, at its newest record; no
//!   new chain holds two entries with one tag.
//! * **Free is zero.** The free slot is the word `0`; no other word has address `0` (a new
//!   entry holds [`TEMP_INVALID_ADDRESS`] until its owner stores a record address).
//! * **No panics on bad input.** A full allocator is [`IndexError::OverflowExhausted`] (the
//!   cap) or [`IndexError::MemoryLimit`]; bad checkpoint bytes or metadata are
//!   [`IndexError::Corrupt`] or [`IndexError::Truncated`].
//!
//! The crate needs no epoch: no memory is ever unmapped while the index lives. *When* a
//! retired generation's memory may go back is the caller's call (the store does it in an
//! epoch action); releasing too early could lose updates of a thread still in the old table, never touch freed memory.
//!
//! ## Concurrency
//!
//! `HashIndex` is `Send + Sync`. All operations are lock-free (growth's bookkeeping takes a
//! lock, never on an operation's path) and use atomics only through `faster-sync`, which
//! switches to `loom` under `--cfg loom`; `tests/loom.rs` model-checks the tentative insert,
//! the overflow append and the split/help protocol of growth on this very code.
//!
//! ## What it must not know about
//!
//! Record formats, keys beyond their hash, sessions, checkpoint versions, phases or the log's
//! address regions: an entry is an address and a tag, and growth learns what it needs of a
//! record (its key's hash, its previous address) through the caller's [`Link`]. Which address is "invalid", "in the
//! read cache" or "below the log's begin" is the caller's business; the index only keeps the
//! tentative protocol and the chains consistent.

pub mod bucket;
pub mod checkpoint;
mod checkpoint_writer;
mod conditional;
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
pub use conditional::replace_unless_changed;
pub use entry::{
    ADDRESS_BITS, ADDRESS_MASK, EntrySlot, HashEntry, INVALID_ADDRESS, READ_CACHE_BIT,
    SlotLocation, TAG_BITS, TEMP_INVALID_ADDRESS,
};
pub use error::{IndexError, Result};
pub use generation::IndexStats;
pub use grow::{Chains, Growth, Link};
pub use hash::KeyHash;
pub use index::{
    GROW_OVERFLOW_FRACTION, HashIndex, IndexConfig, MAX_OVERFLOW_BUCKETS, MAX_TABLE_BITS,
};
