//! The rules a checkpoint's metadata must follow, alone ([`validate`]) and against an older
//! checkpoint ([`validate_successor`]); the files it refers to are checked by
//! [`crate::check_files`].

use std::collections::HashSet;
use std::path::Path;

use faster_index::{IndexCheckpointInfo, MAX_OVERFLOW_BUCKETS, MAX_TABLE_BITS};

use crate::error::{RecoveryError, Result};
use crate::meta::{
    ADDRESS_LIMIT, CheckpointKind, CheckpointMeta, FIRST_VALID, LogMode, MAX_SERIAL, MAX_SESSION_ID,
};

/// Bytes per hash bucket (main table and overflow), as the index writes them.
const BUCKET_BYTES: u64 = 64;
/// The smallest accepted page size.
const MIN_PAGE_SIZE: u64 = 512;
/// The largest page size a checkpoint may record: 1 GiB.
pub const MAX_PAGE_SIZE: u64 = 1 << 30;
/// The smallest segment size (of the log, index and snapshot files) a checkpoint may record;
/// every segment size is a multiple of it.
pub const MIN_SEGMENT_SIZE: u64 = 512;

/// Checks `meta` (read from `file`, named in errors) against its own rules; fails with
/// [`RecoveryError::Corrupt`] saying which rule is broken:
///
/// * `version` equals the token's version;
/// * every address is below 2^48; `begin <= flushed <= final`, `begin <= start <= final`,
///   and `final >= FIRST_VALID` when there is a log part;
/// * `snapshot_start` (and `snapshot_segment_size`) are present exactly in snapshot mode,
///   with `begin` rounded down to its page `<= snapshot_start <= final`;
/// * kind and parts agree: every kind has an index part; `IndexOnly` has no log mode and
///   `Full` and `IndexOnly` use their own index, started at or after `begin` and at or
///   before `start`; `LogOnly` has a log mode and an index of a version `<=` its own,
///   started at or before `start` (before `begin` too, after a compaction);
/// * session ids are unique, at most [`MAX_SESSION_ID`], with serials at most [`MAX_SERIAL`];
///   the page size is a power of two in `[512, MAX_PAGE_SIZE]`; segment sizes are multiples
///   of [`MIN_SEGMENT_SIZE`];
/// * the index info is possible (table bits, overflow counts, region sizes and offsets).
pub fn validate(meta: &CheckpointMeta, file: &Path) -> Result<()> {
    let bad = |reason: String| Err(RecoveryError::corrupt(file, reason));
    if meta.version != meta.token.version() {
        return bad(format!(
            "version {} does not match token {} (version {})",
            meta.version,
            meta.token,
            meta.token.version()
        ));
    }
    check_addresses(meta).or_else(bad)?;
    check_parts(meta).or_else(bad)?;
    let mut ids = HashSet::with_capacity(meta.sessions.len());
    for s in &meta.sessions {
        if !ids.insert(s.id) {
            return bad(format!("session {} appears more than once", s.id));
        }
        if s.id > MAX_SESSION_ID || s.issued > MAX_SERIAL {
            return bad(format!(
                "session {} with {} operations issued is beyond the limits (ids and serials \
                 up to {MAX_SERIAL})",
                s.id, s.issued
            ));
        }
        if s.serial > s.issued {
            return bad(format!(
                "session {}'s cut, serial {}, is beyond the {} operations it had issued",
                s.id, s.serial, s.issued
            ));
        }
    }
    if !meta.page_size.is_power_of_two()
        || meta.page_size < MIN_PAGE_SIZE
        || meta.page_size > MAX_PAGE_SIZE
    {
        return bad(format!(
            "page size {} is not a power of two in [{MIN_PAGE_SIZE}, {MAX_PAGE_SIZE}]",
            meta.page_size
        ));
    }
    if let Some(seg) = meta.log_segment_size {
        check_segment_size("log", seg).or_else(bad)?;
    }
    Ok(())
}

fn check_addresses(meta: &CheckpointMeta) -> std::result::Result<(), String> {
    let named = [
        ("begin", meta.begin_address),
        ("start", meta.start_address),
        ("flushed", meta.flushed_address),
        ("final", meta.final_address),
    ];
    for (name, a) in named {
        if a >= ADDRESS_LIMIT {
            return Err(format!("{name} address {a:#x} is not a 48-bit address"));
        }
    }
    let (begin, start, flushed, fin) = (
        meta.begin_address,
        meta.start_address,
        meta.flushed_address,
        meta.final_address,
    );
    if !(begin <= flushed && flushed <= fin) {
        return Err(format!(
            "addresses out of order: need begin {begin:#x} <= flushed {flushed:#x} <= final \
             {fin:#x}"
        ));
    }
    if !(begin <= start && start <= fin) {
        return Err(format!(
            "addresses out of order: need begin {begin:#x} <= start {start:#x} <= final {fin:#x}"
        ));
    }
    if meta.has_log() && fin < FIRST_VALID {
        return Err(format!(
            "final address {fin:#x} is below the first valid address {FIRST_VALID:#x}"
        ));
    }
    let snapshot = meta.log_mode == Some(LogMode::Snapshot);
    match (snapshot, meta.snapshot_start, meta.snapshot_segment_size) {
        (true, Some(s), Some(seg)) => {
            // The snapshot starts at `flushed` rounded down to the alignment (at most a
            // page), which may lie below `begin` in the begin's page.
            let low = if meta.page_size.is_power_of_two() {
                begin & !(meta.page_size - 1)
            } else {
                begin
            };
            if !(low <= s && s <= fin) {
                return Err(format!(
                    "snapshot start {s:#x} is outside [begin {begin:#x} rounded down to its \
                     page, final {fin:#x}]"
                ));
            }
            check_segment_size("snapshot", seg)?;
        }
        (true, _, _) => {
            return Err("snapshot mode without snapshot start or segment size".into());
        }
        (false, None, None) => {}
        (false, _, _) => {
            return Err("snapshot start or segment size given outside snapshot mode".into());
        }
    }
    Ok(())
}

fn check_segment_size(what: &str, seg: u64) -> std::result::Result<(), String> {
    if seg < MIN_SEGMENT_SIZE || seg % MIN_SEGMENT_SIZE != 0 || seg > i64::MAX as u64 {
        return Err(format!(
            "{what} segment size {seg} is not a multiple of {MIN_SEGMENT_SIZE} in \
             [{MIN_SEGMENT_SIZE}, 2^63)"
        ));
    }
    Ok(())
}

fn check_parts(meta: &CheckpointMeta) -> std::result::Result<(), String> {
    let Some(index) = &meta.index else {
        return Err(format!("a {:?} checkpoint needs an index part", meta.kind));
    };
    match (meta.kind, meta.log_mode) {
        (CheckpointKind::IndexOnly, None) => {}
        (CheckpointKind::IndexOnly, Some(m)) => {
            return Err(format!("an index-only checkpoint has log mode {m:?}"));
        }
        (kind, None) => return Err(format!("a {kind:?} checkpoint needs a log mode")),
        (_, Some(_)) => {}
    }
    match meta.kind {
        CheckpointKind::Full | CheckpointKind::IndexOnly if index.token != meta.token => {
            return Err(format!(
                "a {:?} checkpoint must use its own index, not {}'s",
                meta.kind, index.token
            ));
        }
        CheckpointKind::LogOnly if index.token.version() > meta.version => {
            return Err(format!(
                "the log-only checkpoint of version {} uses the index of a later checkpoint {}",
                meta.version, index.token
            ));
        }
        _ => {}
    }
    if index.start_address >= ADDRESS_LIMIT {
        return Err(format!(
            "index start address {:#x} is not a 48-bit address",
            index.start_address
        ));
    }
    // A log-only checkpoint may use an index taken before the begin address moved past its
    // start (by a compaction): replay starts at the begin then, and the index's entries
    // below it mean "no record", as they do in the running store.
    let low = match meta.kind {
        CheckpointKind::LogOnly => 0,
        _ => meta.begin_address,
    };
    if meta.has_log() && !(low <= index.start_address && index.start_address <= meta.start_address)
    {
        return Err(format!(
            "index start address {:#x} is outside [{:#x}, start {:#x}]: the log needed to \
             repair the index is not covered",
            index.start_address, low, meta.start_address
        ));
    }
    check_segment_size("index", index.segment_size)?;
    check_index_info(&index.info)
}

/// The index's own consistency rules, so a later `HashIndex::recover` sees sane sizes.
fn check_index_info(info: &IndexCheckpointInfo) -> std::result::Result<(), String> {
    if info.table_bits > MAX_TABLE_BITS {
        return Err(format!(
            "index table bits {} exceed {MAX_TABLE_BITS}",
            info.table_bits
        ));
    }
    if info.overflow_capacity > MAX_OVERFLOW_BUCKETS
        || info.overflow_buckets > info.overflow_capacity
    {
        return Err(format!(
            "{} overflow buckets with capacity {} (limit {MAX_OVERFLOW_BUCKETS}) is impossible",
            info.overflow_buckets, info.overflow_capacity
        ));
    }
    if info.table_bytes != BUCKET_BYTES << info.table_bits {
        return Err(format!(
            "index table of {} bytes does not match 2^{} buckets",
            info.table_bytes, info.table_bits
        ));
    }
    if info.overflow_bytes != info.overflow_buckets * BUCKET_BYTES {
        return Err(format!(
            "overflow region of {} bytes does not match {} buckets",
            info.overflow_bytes, info.overflow_buckets
        ));
    }
    let table_end = info.table_offset.checked_add(info.table_bytes);
    let overflow_end = info.overflow_offset.checked_add(info.overflow_bytes);
    match (table_end, overflow_end) {
        (Some(t), Some(o)) if t <= info.overflow_offset && o <= info.end_offset => Ok(()),
        _ => Err(format!(
            "index regions out of order: table at {} ({} bytes), overflow at {} ({} bytes), end \
             {}",
            info.table_offset,
            info.table_bytes,
            info.overflow_offset,
            info.overflow_bytes,
            info.end_offset
        )),
    }
}

/// Checks that `newer` may follow `older`: a higher version, and for every session in both,
/// a serial number that did not go backwards. Fails with [`RecoveryError::Inconsistent`]
/// naming the tokens (and the session, with both serials).
pub fn validate_successor(older: &CheckpointMeta, newer: &CheckpointMeta) -> Result<()> {
    if newer.version <= older.version {
        return Err(RecoveryError::inconsistent(format!(
            "checkpoint {} (version {}) is not newer than {} (version {})",
            newer.token, newer.version, older.token, older.version
        )));
    }
    for old in &older.sessions {
        let Some(new) = newer.session(old.id) else {
            continue;
        };
        if new.serial < old.serial {
            return Err(RecoveryError::inconsistent(format!(
                "session {}'s serial went backwards: {} in {} but {} in the newer {}",
                old.id, old.serial, older.token, new.serial, newer.token
            )));
        }
    }
    Ok(())
}
