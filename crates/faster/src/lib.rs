//! # faster: a FASTER-style concurrent key-value store
//!
//! `faster` is the facade of a workspace of small crates, in the way `crossbeam` re-exports
//! its parts, and the home of the store itself, [`FasterKv`], which composes them. Each part
//! owns one concern:
//!
//! | module | crate | owns |
//! |---|---|---|
//! | [`epoch`] | `faster-epoch` | epoch protection, drain actions, phase acknowledgement |
//! | [`device`] | `faster-device` | storage devices: io_uring, portable file, in-memory |
//! | [`hlog`] | `faster-hlog` | the hybrid log: pages in memory and on a device, records |
//! | [`index`] | `faster-index` | the lock-free cache-line hash index |
//! | [`cpr`] | `faster-cpr` | the CPR checkpoint state machine: phases, versions, session cuts |
//! | [`recovery`] | `faster-recovery` | checkpoint metadata, validation, choosing and replaying a checkpoint |
//!
//! None of the crates above knows about this one; only the tools built on the store do
//! (`faster-bench`, `faster-cli`, the `tests` crate).
//!
//! ## The store
//!
//! ```
//! use faster::{AddU64, Config, FasterKv, LogDevice, Status};
//! use std::sync::{Arc, Mutex};
//!
//! let dir = tempfile::tempdir()?;
//! let config = Config::new(dir.path())
//!     .with_log_device(LogDevice::Memory)
//!     .with_log_memory(1 << 20)
//!     .with_page_size(64 << 10)
//!     .with_table_bits(10);
//! let store = FasterKv::open(config)?;            // a new store in `dir`
//! let mut s = store.start_session();              // one per thread
//! s.upsert(b"key", b"value")?;
//! assert_eq!(s.read(b"key")?, Some(b"value".to_vec()));
//! s.rmw(b"counter", &5u64.to_le_bytes(), &AddU64)?;
//! s.rmw(b"counter", &2u64.to_le_bytes(), &AddU64)?;
//! assert_eq!(s.read(b"counter")?, Some(7u64.to_le_bytes().to_vec()));
//! s.delete(b"key")?;
//! assert_eq!(s.read(b"key")?, None);
//! assert_eq!(s.serial(), 7); // every operation takes the next serial number
//!
//! // The non-blocking form: an operation whose record is on disk goes pending, and
//! // `complete_pending` finishes it and calls its context.
//! let got = Arc::new(Mutex::new(None));
//! let slot = got.clone();
//! let status = s.read_async(b"counter", move |r| *slot.lock().unwrap() = Some(r))?;
//! if status == Status::Pending {
//!     s.complete_pending(true)?;
//! }
//! let value = got.lock().unwrap().take().expect("called exactly once")?;
//! assert_eq!(value, Some(7u64.to_le_bytes().to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Key types
//!
//! * [`FasterKv`]: the store, a cheap handle (`Clone + Send + Sync`). [`FasterKv::open`]
//!   creates a store in a directory (the log's device lives in `<dir>/log/`) and refuses a
//!   directory that already holds one ([`Error::AlreadyExists`]); [`FasterKv::recover`]
//!   reopens one from its latest valid checkpoint.
//!   [`FasterKv::close`], or dropping the last handle, closes it: sessions' operations then
//!   fail with [`Error::Closed`].
//! * [`Config`]: directory, initial index size and index memory limit, log memory, page
//!   size, mutable fraction, device
//!   ([`LogDevice`], or any [`device::Device`] through [`Config::with_device`], e.g. a
//!   memory device with a fault injector), session limit, checkpoint timeout, recovery
//!   policy, phase observer.
//! * [`Session`]: one thread's context (`Send + 'static`, `&mut self`): `read`, `upsert`,
//!   `rmw`, `delete`, their non-blocking forms [`Session::read_async`] and
//!   [`Session::rmw_async`] returning a [`Status`], and [`Session::complete_pending`]. It has
//!   a [`SessionId`] and numbers its operations ([`Session::serial`]). The batched forms
//!   [`Session::read_batch`], [`Session::upsert_batch`], [`Session::rmw_batch`] and
//!   [`Session::delete_batch`] run a slice of operations with the same semantics, several
//!   times faster: they prefetch the index buckets and records of a window of
//!   [`session::BATCH_WINDOW`] operations before executing them in order.
//! * [`Rmw`]: the update of a read-modify-write (`initial`, `in_place`, `copy`); [`AddU64`]
//!   is a little-endian counter.
//! * [`Error`]: the one error type, wrapping the layers' errors.
//! * Checkpoints: [`FasterKv::checkpoint`] / [`FasterKv::checkpoint_with`]
//!   ([`CheckpointOptions`]: full, index-only or log-only; fold-over or snapshot) return a
//!   [`CheckpointHandle`]; `wait()` gives the [`CheckpointInfo`] with every session's cut.
//!   [`FasterKv::recover`] returns the store and [`Recovered`] (the cuts), and
//!   [`FasterKv::continue_session`] gives a session back with its recovered serial.
//! * Index growth: the index doubles online as it fills (nothing to size; see
//!   [`Config::with_index_growth`]), and on request with [`FasterKv::grow_index`]
//!   ([`GrowHandle`], [`GrowInfo`]).
//!
//! ## What CPR guarantees
//!
//! A checkpoint gives every session `i` a serial number `t_i`, its *cut*: the last operation
//! it issued before it crossed from the checkpoint's version `v` to `v + 1`. After recovering
//! that checkpoint (or after a crash, the latest valid one), every operation of session `i`
//! with a serial `<= t_i` is in the store and none after it is. Sessions never stop for a
//! checkpoint: each takes its own cut between two operations, and an idle session is cut on
//! its behalf.
//!
//! ## How an operation works
//!
//! A key hashes ([`index::KeyHash`]) to one index entry, whose address is the newest record
//! of a *hash chain*; each record holds the address of the previous one. Keys whose hashes
//! share a bucket and a 14-bit tag share a chain, so every step compares keys, skips invalid
//! records, and treats a tombstone as "no value". Records at or above the log's head are
//! read in memory; below it, on disk.
//!
//! * **Reads** walk the chain in memory; if it continues below the head, the record is read
//!   from the device ([`hlog::Hlog::read_async`]), and the walk continues on disk.
//! * **Upserts and deletes** are blind. If the key's newest record is in the mutable region
//!   (`address >= read_only`), they update it in place (the value, under the record's lock
//!   and seqlock; a delete sets the tombstone bit). Otherwise they append a new record (a
//!   tombstone for a delete) at the tail.
//! * **RMWs** update a mutable record in place under its lock: read the value, apply
//!   [`Rmw::in_place`], write it back (readers see the old or the new value, never a mix).
//!   A read-only record is copied forward ([`Rmw::copy`]) into a new record at the tail; an
//!   on-disk one is read first (the operation goes pending, or the blocking form waits);
//!   a missing key gets [`Rmw::initial`].
//!
//! ## Invariants
//!
//! * **New records are installed by compare-and-swap** of the index entry from the address
//!   the operation started from to the new record's (whose previous address is the old
//!   one). If the CAS fails, the new record is marked invalid and the operation starts over.
//!   An RMW that went to disk installs its result only if the entry still holds the address
//!   it started from; otherwise it starts over.
//! * **In-place updates exclude each other** through the record's lock bit
//!   ([`faster_hlog::RecordLock`]: every header change of a reachable record happens under
//!   it, so the holder releases it with a plain store, one locked instruction per update),
//!   and readers get consistent values through its seqlock. A record whose successor is being created from
//!   it (the value no longer fits, or it is a tombstone) is *sealed* under the lock first;
//!   nobody updates a sealed record in place again, so its value is stable and may be copied.
//! * **The fuzzy region** `[safe_read_only, read_only)`: a thread that saw a record there as
//!   mutable may still be updating it in place. An RMW never copies an unsealed record from
//!   this region (that could lose the concurrent update): it refreshes its epoch and retries
//!   until `safe_read_only` has passed the record. Blind upserts and deletes may append
//!   there: they do not depend on the old value.
//! * **Epochs**: a session stays protected between operations and refreshes every
//!   [`session::REFRESH_INTERVAL`] operations, and while it waits for I/O; no record
//!   reference is held across a refresh or an allocation.
//! * **Versions** (the CPR rules, see [`cpr`]): new records carry the session's version. In
//!   PREPARE, an operation that meets a record of a newer version moves the session across
//!   its cut and retries there. From IN_PROGRESS to WAIT_FLUSH, a record of an older version
//!   is never updated in place: it is copied to the tail. Writes never go pending across a
//!   cut (a session finishes its pending RMWs before it acknowledges PREPARE, and in PREPARE
//!   an RMW of an on-disk key completes blocking).
//! * **Index growth** runs on the CPR state word as its own action, so it never overlaps a
//!   checkpoint. Sessions acknowledge GROW_PREPARE between operations and stop using the
//!   index; in GROW_IN_PROGRESS they help split it and use it again only after the switch
//!   to the doubled table. No index slot is kept across a growth: a batch window probes
//!   inside its busy stretch, and pending operations keep keys and hashes, not slots. The
//!   old table's memory goes back in an epoch action.
//! * **Bad input and faults are errors, never panics or wrong data**: a key or value too large
//!   for a page ([`Error::KeyTooLarge`], [`Error::ValueTooLarge`]), device failures
//!   ([`Error::Hlog`] / [`Error::Device`]), a closed store ([`Error::Closed`]). Empty keys
//!   and empty values are allowed.
//!
//! ## Not yet
//!
//! The read cache. An idle session still holds back the log's *eviction* outside
//! checkpoints (its epoch protection): drop idle sessions or call [`Session::refresh`].

#![forbid(unsafe_code)]

mod background;
mod checkpoint;
mod compact;
mod compacting;
mod config;
mod error;
mod grow;
mod growing;
mod key_map;
mod lock;
mod ops;
mod recover;
mod rmw;
mod running;
pub mod session;
mod session_id;
mod shared;
mod shift;
mod space;
mod space_policy;
mod store;

pub use checkpoint::{CheckpointHandle, CheckpointInfo, CheckpointOptions, LogCapture};
pub use compact::CompactHandle;
pub use compacting::CompactInfo;
pub use config::{Config, LogDevice};
pub use error::{Error, Result};
pub use faster_cpr::{Phase, SystemState};
pub use faster_recovery::{CheckpointKind, RecoveryPolicy};
pub use grow::GrowHandle;
pub use growing::GrowInfo;
pub use recover::Recovered;
pub use rmw::{AddU64, Rmw};
pub use session::BatchOp;
pub use session::{Session, Status};
pub use session_id::SessionId;
pub use space::{DiskUsage, SpaceStats};
pub use space_policy::{
    DEFAULT_CHECKPOINTS_KEPT, DEFAULT_COMPACTION_MIN_LOG, DEFAULT_COMPACTION_RATIO,
    DEFAULT_LOG_SEGMENT, SpacePolicy,
};
pub use store::FasterKv;

#[doc(inline)]
pub use faster_cpr as cpr;
#[doc(inline)]
pub use faster_device as device;
#[doc(inline)]
pub use faster_epoch as epoch;
#[doc(inline)]
pub use faster_hlog as hlog;
#[doc(inline)]
pub use faster_index as index;
#[doc(inline)]
pub use faster_recovery as recovery;
