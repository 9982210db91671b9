//! The rules a checkpoint's metadata must follow, alone ([`validate`]), against an older
//! checkpoint ([`validate_successor`]) and against the files it refers to ([`check_files`]).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use faster_index::{IndexCheckpointInfo, MAX_OVERFLOW_BUCKETS, MAX_TABLE_BITS};

use crate::error::{RecoveryError, Result};
use crate::layout::StoreLayout;
use crate::meta::{
    ADDRESS_LIMIT, CheckpointKind, CheckpointMeta, FIRST_VALID, IndexPart, LogMode, MAX_SERIAL,
    MAX_SESSION_ID,
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
///   `Full` and `IndexOnly` use their own index, `LogOnly` has a log mode and an index of a
///   version `<=` its own, started at or after `begin` and at or before `start`;
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
    if meta.has_log()
        && !(meta.begin_address <= index.start_address && index.start_address <= meta.start_address)
    {
        return Err(format!(
            "index start address {:#x} is outside [begin {:#x}, start {:#x}]: the log needed to \
             repair the index is not covered",
            index.start_address, meta.begin_address, meta.start_address
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

/// Checks that the data files `meta` refers to exist under `layout` and are long enough,
/// before anything is read, allocated or written:
///
/// * the index device files (`index.<n>` in the index part's checkpoint's index directory)
///   cover `[table_offset, end_offset)`;
/// * in snapshot mode the snapshot device files (`snapshot.<n>` in the snapshot directory)
///   cover `final - snapshot_start` bytes;
/// * when the metadata names the log's segment size, the log's segment files
///   (`<dir>/log/log.<n>`) cover every byte of `[begin, end)` the checkpoint needs from
///   them: `end` is the final address, or the flushed address in snapshot mode (the
///   snapshot holds the rest).
///
/// A missing or short file (or one that is not a regular file) is [`RecoveryError::Corrupt`]
/// naming it; a symbolic link, for a file or one of these directories, is
/// [`RecoveryError::Symlink`]. Contents are not read here (the index checks its own
/// checksums when it loads; replay checks every record's).
pub fn check_files(meta: &CheckpointMeta, layout: &StoreLayout) -> Result<()> {
    if let Some(IndexPart {
        token,
        info,
        segment_size,
        ..
    }) = &meta.index
    {
        layout.check_dir(&layout.checkpoint_dir(token))?;
        layout.check_dir(&layout.index_dir(token))?;
        check_device(
            |n| layout.index_segment_path(token, n),
            *segment_size,
            info.table_offset,
            info.end_offset,
        )?;
    }
    if let (Some(start), Some(seg)) = (meta.snapshot_start, meta.snapshot_segment_size) {
        let bytes = meta.final_address.saturating_sub(start);
        layout.check_dir(&layout.snapshot_dir(&meta.token))?;
        check_device(
            |n| layout.snapshot_segment_path(&meta.token, n),
            seg,
            0,
            bytes,
        )?;
    }
    if let (true, Some(seg)) = (meta.has_log(), meta.log_segment_size) {
        let end = if meta.log_mode == Some(LogMode::Snapshot) {
            meta.flushed_address
        } else {
            meta.final_address
        };
        if meta.begin_address < end {
            layout.check_dir(&layout.log_dir())?;
        }
        check_device(|n| layout.log_segment_path(n), seg, meta.begin_address, end)?;
    }
    Ok(())
}

/// Checks that segment files of size `seg` hold device bytes `[from, to)`.
fn check_device(path: impl Fn(u64) -> PathBuf, seg: u64, from: u64, to: u64) -> Result<()> {
    if from >= to {
        return Ok(());
    }
    if seg == 0 {
        return Err(RecoveryError::corrupt(path(0), "segment size 0"));
    }
    let first = from / seg;
    let last = (to - 1) / seg;
    for n in first..=last {
        let p = path(n);
        let seg_start = n.saturating_mul(seg);
        let need = (to - seg_start).min(seg);
        let len = match fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => m.len(),
            Ok(m) if m.file_type().is_symlink() => return Err(RecoveryError::Symlink { path: p }),
            Ok(_) => return Err(RecoveryError::corrupt(p, "not a regular file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RecoveryError::corrupt(
                    p,
                    format!("missing: the checkpoint needs its {need} bytes"),
                ));
            }
            Err(e) => return Err(RecoveryError::io("inspect", p, e)),
        };
        if len < need {
            return Err(RecoveryError::corrupt(
                p,
                format!("short: {len} bytes, the checkpoint needs {need}"),
            ));
        }
    }
    Ok(())
}
