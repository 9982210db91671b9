//! [`CheckpointMeta`]: what one checkpoint captured and where its data lives.

use faster_index::IndexCheckpointInfo;
use serde::{Deserialize, Serialize};

use crate::token::CheckpointToken;

/// The first valid logical log address (addresses below it are never used).
pub const FIRST_VALID: u64 = faster_hlog::Address::FIRST_VALID.raw();
/// One past the largest logical log address: addresses are 48-bit.
pub const ADDRESS_LIMIT: u64 = 1 << faster_hlog::Address::BITS;

/// The largest serial number a checkpoint may record for a session (the state machine's
/// limit: `faster_cpr::MAX_SERIAL`, `2^63 - 1`).
pub const MAX_SERIAL: u64 = u64::MAX >> 1;
/// The largest session id a checkpoint may record (`2^63 - 1`): numbering the next session
/// of a recovered store never overflows (past this limit a store refuses new sessions).
pub const MAX_SESSION_ID: u64 = u64::MAX >> 1;

/// What a checkpoint contains (also what `faster`'s `CheckpointOptions` ask for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CheckpointKind {
    /// The index and the log (the default).
    #[default]
    Full,
    /// The index only (no log part, no session cuts are promised by it).
    IndexOnly,
    /// The log only; the index part names an earlier checkpoint's index files.
    LogOnly,
}

/// How the log part of a checkpoint was made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogMode {
    /// The read-only boundary was moved to the tail and the log flushed up to the final
    /// address: the log device itself holds the checkpoint.
    FoldOver,
    /// The in-memory part `[snapshot_start, final_address)` was copied to a snapshot file.
    Snapshot,
}

/// The index part of a checkpoint: which index files to load and from when they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPart {
    /// The checkpoint directory whose index files are used: the checkpoint's own token for
    /// [`CheckpointKind::Full`] and [`CheckpointKind::IndexOnly`], an earlier one for
    /// [`CheckpointKind::LogOnly`].
    pub token: CheckpointToken,
    /// What the index checkpoint wrote where (offsets, sizes, checksums).
    pub info: IndexCheckpointInfo,
    /// The log tail when that index checkpoint started: replay must start at or below it.
    pub start_address: u64,
    /// The segment size of the index device (its files are `index.<n>`, each holding device
    /// bytes `[n * segment_size, (n + 1) * segment_size)`).
    pub segment_size: u64,
}

/// One session's record in a checkpoint, its CPR cut: every operation of session `id` with a
/// serial number `<= serial` is in the checkpoint, none after it. (The state machine's
/// `faster_cpr::SessionCut` is what this is written from.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session's id.
    pub id: u64,
    /// The serial number of the session's last operation in the checkpoint's version.
    pub serial: u64,
    /// The serial of the session's last operation when the checkpoint was written: how many
    /// operations it had issued. A cut beyond it is corrupt.
    pub issued: u64,
}

/// The metadata of one checkpoint, persisted as `<checkpoint>/meta` by
/// [`StoreLayout::write_meta`](crate::StoreLayout::write_meta) in the
/// [codec](crate::codec) format. [`validate`](crate::validate()) states its rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The checkpoint's name; its version equals [`version`](Self::version).
    pub token: CheckpointToken,
    /// The CPR version `v` the checkpoint captures.
    pub version: u64,
    /// What the checkpoint contains.
    pub kind: CheckpointKind,
    /// How the log part was made durable; `None` exactly for [`CheckpointKind::IndexOnly`].
    pub log_mode: Option<LogMode>,
    /// Wall-clock creation time, milliseconds since the Unix epoch (informational).
    pub created_unix_ms: u64,
    /// The log's begin address (everything below it was truncated).
    pub begin_address: u64,
    /// The log tail when the checkpoint started; recovery replays from here.
    pub start_address: u64,
    /// The log device holds everything below this address.
    pub flushed_address: u64,
    /// The end of the checkpoint's log. In snapshot mode the snapshot covers
    /// `[snapshot_start, final_address)`.
    pub final_address: u64,
    /// The log address stored at offset 0 of the snapshot device (`faster_hlog`'s
    /// `SnapshotInfo::base`: log address `a` is at device offset `a - snapshot_start`);
    /// `Some` exactly in [`LogMode::Snapshot`].
    pub snapshot_start: Option<u64>,
    /// The segment size of the snapshot device (files `snapshot.<n>` in the snapshot
    /// directory); `Some` exactly in [`LogMode::Snapshot`].
    pub snapshot_segment_size: Option<u64>,
    /// Bytes the log part wrote (flush or snapshot), informational.
    pub log_bytes_written: u64,
    /// The index part; `None` only if the kind has none (never, for the current kinds).
    pub index: Option<IndexPart>,
    /// Bytes the index part wrote, informational (0 when an earlier index is reused).
    pub index_bytes_written: u64,
    /// Every session's cut at version `v`; ids are unique.
    pub sessions: Vec<SessionRecord>,
    /// The hybrid log's page size in bytes (a power of two, at least 512, at most
    /// [`crate::MAX_PAGE_SIZE`]).
    pub page_size: u64,
    /// The segment size of the store's own log files (`<dir>/log/log.<n>`, each holding log
    /// bytes `[n * size, (n + 1) * size)`): recovery checks that the files the checkpoint
    /// needs are there, whole, and opens the log with this size. `None` when the log lives
    /// on a device of the caller's (`faster`'s `Config::with_device`), whose files recovery
    /// does not know.
    pub log_segment_size: Option<u64>,
}

impl CheckpointMeta {
    /// Whether the checkpoint has a log part (everything but [`CheckpointKind::IndexOnly`]).
    pub fn has_log(&self) -> bool {
        self.kind != CheckpointKind::IndexOnly
    }

    /// The cut of session `id`, if the checkpoint has one.
    pub fn session(&self, id: u64) -> Option<SessionRecord> {
        self.sessions.iter().copied().find(|s| s.id == id)
    }
}
