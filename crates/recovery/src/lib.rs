//! # faster-recovery: checkpoint metadata, validation and recovery
//!
//! This crate owns the on-disk form of a checkpoint and the decision which one to recover:
//!
//! * [`CheckpointToken`] (`token`): a checkpoint's name, derived from its CPR version and
//!   strictly parsed, so it is always a safe directory name;
//! * [`CheckpointMeta`] (`meta`): what a checkpoint captured: its kind and log mode, the log
//!   addresses, the index part ([`faster_index::IndexCheckpointInfo`]) and every session's
//!   CPR cut as an `(id, serial)` pair;
//! * [`codec`]: the checksummed byte format of the `meta` file (magic, format version,
//!   postcard payload, xxh3-64), whose decoder never panics on any input;
//! * `validate`: the rules one metadata file must follow ([`validate()`]) and the rules
//!   between consecutive checkpoints ([`validate_successor`]);
//! * `files`: the presence and sizes of the data files ([`check_files`]);
//! * [`StoreLayout`] (`layout`): the directory layout (the one place paths are built), the
//!   crash-safe metadata write (temporary name, fsync, rename, directory fsync), listing and
//!   removal of checkpoints;
//! * `retain` ([`retain()`]): keeping the newest checkpoints (and the indexes log-only ones
//!   use), removing the others crash-safely, and the log address the kept ones need;
//! * `choose`: picking the newest valid checkpoint ([`choose_latest`], [`RecoveryPolicy`]) or
//!   a named one ([`choose()`]).
//!
//! ## What a checkpoint may ask for
//!
//! Nothing read from a checkpoint is trusted before it is bounded, and bounded before
//! anything is allocated, mapped or written: the metadata file is at most
//! [`MAX_META_BYTES`] (so its session list is bounded by it) and checksummed; addresses are
//! below [`ADDRESS_LIMIT`]; the page size is a power of two of at most [`MAX_PAGE_SIZE`];
//! segment sizes are multiples of [`MIN_SEGMENT_SIZE`]; the index table has at most
//! `2^`[`faster_index::MAX_TABLE_BITS`] buckets and at most
//! [`faster_index::MAX_OVERFLOW_BUCKETS`] overflow buckets, with region sizes that match
//! them; session ids are at most [`MAX_SESSION_ID`] and serials at most [`MAX_SERIAL`]. Then
//! [`check_files`] compares every size with the files that must hold it (the index, the
//! snapshot and the log segments) before a byte of them is read, so memory follows what the
//! files justify; an allocation the machine refuses is a typed error, never an abort. Every
//! byte read back is checksummed (the metadata, the index regions, each log and snapshot
//! record), and nothing inside the store directory is reached through a symbolic link.
//!
//! It knows the on-disk formats of `faster-hlog` (48-bit addresses, records) and
//! `faster-index` (its checkpoint info and regions), and opens file devices of `faster-device`. It must not know the facade (`faster`), its sessions
//! or its public API: sessions appear here only as `(id, serial)` pairs. Nor does it know
//! the store's in-memory structures.
//!
//! * `replay` ([`replay()`]): restoring the index and the log of a chosen checkpoint so that
//!   exactly each session's CPR prefix is reachable (snapshot copy, index repair from the log,
//!   durable invalidation of records newer than the checkpoint).

#![forbid(unsafe_code)]

mod choose;
pub mod codec;
mod error;
mod files;
mod layout;
mod meta;
mod replay;
mod retain;
mod token;
mod validate;

pub use choose::{Chosen, RecoveryPolicy, choose, choose_latest};
pub use codec::{MAX_META_BYTES, decode, encode};
pub use error::{RecoveryError, Result};
pub use files::check_files;
pub use layout::{
    CHECKPOINTS_DIR, INDEX_DIR, LOG_DIR, META_FILE, META_TMP_FILE, REMOVING_PREFIX, SNAPSHOT_DIR,
    StoreLayout,
};
pub use meta::{
    ADDRESS_LIMIT, CheckpointKind, CheckpointMeta, FIRST_VALID, IndexPart, LogMode, MAX_SERIAL,
    MAX_SESSION_ID, SessionRecord,
};
pub use replay::{ReplayStats, Replayed, replay};
pub use retain::{Retained, retain};
pub use token::{CheckpointToken, TOKEN_DIGITS, TOKEN_LEN, TOKEN_PREFIX};
pub use validate::{MAX_PAGE_SIZE, MIN_SEGMENT_SIZE, validate, validate_successor};
