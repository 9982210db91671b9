//! [`replay()`]: restores the index and the log of a validated checkpoint so that exactly each
//! session's CPR prefix is reachable.
//!
//! See [`replay()`] for the steps.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use faster_device::{AlignedBuf, Device, DeviceOptions, FileDevice};
use faster_epoch::LightEpoch;
use faster_hlog::{Address, Hlog, HlogConfig, HlogError, checksum, version_is_newer};
use faster_index::{HashIndex, KeyHash};

use crate::error::{RecoveryError, Result};
use crate::layout::{INDEX_DIR, SNAPSHOT_DIR, StoreLayout};
use crate::meta::{CheckpointMeta, FIRST_VALID, LogMode};

/// Bytes copied per request when a snapshot is copied into the log device.
const COPY_CHUNK: u64 = 1 << 20;

/// The restored parts of a store.
pub struct Replayed {
    /// The repaired index.
    pub index: HashIndex,
    /// The log, ending at the checkpoint's final address (appends resume at the next page).
    pub hlog: Hlog,
    /// What the replay did.
    pub stats: ReplayStats,
}

impl std::fmt::Debug for Replayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replayed")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Counters of one replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Snapshot bytes copied into the log device.
    pub snapshot_bytes: u64,
    /// Valid records scanned (of any version).
    pub records_scanned: u64,
    /// Records of version `<= v` whose entry now points at them.
    pub records_applied: u64,
    /// Records of a version newer than `v`, marked invalid on the device.
    pub records_invalidated: u64,
    /// Index entries deleted because they pointed at or beyond the final address.
    pub entries_dropped: u64,
}

/// Restores the checkpoint described by `meta` (already validated and its files checked, see
/// [`crate::choose_latest`]): loads its index from `layout`, brings `device` (the store's
/// log device, holding `[begin, flushed)`) to hold `[begin, final)`, repairs the index from
/// the log and returns both.
///
/// Steps, for a checkpoint of version `v` (records carry its low 32 bits):
///
/// 1. load the fuzzy index checkpoint named by the index part (tentative entries cleared);
///    nothing is written before this succeeds;
/// 2. snapshot mode: copy the snapshot's log bytes `[flushed, final)` into the log device at
///    their own addresses (bytes below `flushed` in the first aligned block are kept), each
///    chunk only after its records below the scan's start verified (checksums, no
///    unwritten space); damage found later in the copied range is named in the snapshot's
///    file;
/// 3. open the log over the device with [`Hlog::recover`] (`[begin, final)`, all on disk);
/// 4. scan `[index start, final)` page by page from the device (any log size; each page is
///    verified as it is read: every record's checksum, nothing but records and clean padding
///    before `final`): a record of a
///    version not newer than `v` becomes its hash entry's target (later records win); a
///    newer record (of `v + 1`) is collected for invalidation and, if its entry points at
///    it, the entry goes back to its previous address (past other invalidated records);
/// 5. set the invalid bit of the collected records durably on the device
///    ([`Hlog::invalidate_on_device`]), so a later recovery that scans them again (a log-only
///    checkpoint reusing this index) does not take them for records of its own version;
/// 6. delete index entries at or beyond `final` (a fuzzy index never has them for a
///    checkpoint this store wrote; a defensive repair).
///
/// Errors: [`RecoveryError::Index`] if the index files do not load (nothing was written
/// then), [`RecoveryError::Device`] for the snapshot device, [`RecoveryError::Corrupt`]
/// naming the snapshot or log segment file for damaged bytes (a checksum mismatch, lost or
/// undecodable bytes), [`RecoveryError::Log`] for other failures of the log (reads, the
/// invalidation writes), [`RecoveryError::Inconsistent`] if the
/// checkpoint has no log part or its page size differs from `config`'s.
pub fn replay(
    meta: &CheckpointMeta,
    layout: &StoreLayout,
    device: Arc<dyn Device>,
    epoch: LightEpoch,
    config: HlogConfig,
) -> Result<Replayed> {
    let Some(part) = meta.index.as_ref().filter(|_| meta.has_log()) else {
        return Err(RecoveryError::inconsistent(format!(
            "checkpoint {} has no log part: an index-only checkpoint cannot be recovered alone",
            meta.token
        )));
    };
    if config.page_size() != meta.page_size {
        return Err(RecoveryError::inconsistent(format!(
            "checkpoint {} was written with pages of {} bytes, the configuration has {}",
            meta.token,
            meta.page_size,
            config.page_size()
        )));
    }
    let index_dir = layout.index_dir(&part.token);
    let index_dev = open_file_device(&index_dir, INDEX_DIR, part.segment_size)?;
    let index =
        HashIndex::recover(&index_dev, &part.info).map_err(|source| RecoveryError::Index {
            dir: index_dir.clone(),
            source,
        })?;
    drop(index_dev);

    let mut stats = ReplayStats::default();
    if meta.log_mode == Some(LogMode::Snapshot) {
        let scan_from = part.start_address.max(meta.begin_address);
        stats.snapshot_bytes = copy_snapshot(meta, layout, device.as_ref(), scan_from)?;
    }
    let (begin, fin) = (
        Address::from_raw_truncated(meta.begin_address),
        Address::from_raw_truncated(meta.final_address),
    );
    let hlog = Hlog::recover(config, device, epoch, begin, fin)?;
    let from = Address::from_raw_truncated(part.start_address.max(meta.begin_address));
    let invalid = repair_index(&index, &hlog, (from, fin), meta.version as u32, &mut stats)
        .map_err(|e| match e {
            RecoveryError::Index { source, .. } => RecoveryError::Index {
                dir: index_dir.clone(),
                source,
            },
            RecoveryError::Log(e) => log_error(meta, layout, e),
            e => e,
        })?;
    stats.records_invalidated = hlog
        .invalidate_on_device(&invalid)
        .map_err(|e| log_error(meta, layout, e))? as u64;
    index.for_each_entry(|_, slot, e| {
        if !e.is_tentative() && e.address() >= meta.final_address && slot.delete(e).is_ok() {
            stats.entries_dropped += 1;
        }
    });
    if stats.entries_dropped > 0 {
        log::warn!(
            "checkpoint {}: dropped {} index entries at or beyond the final address",
            meta.token,
            stats.entries_dropped
        );
    }
    Ok(Replayed { index, hlog, stats })
}

/// Scans `[from, to)` and points each record's entry as described in the module docs;
/// returns the addresses (sorted) of the records newer than `version`.
fn repair_index(
    index: &HashIndex,
    hlog: &Hlog,
    (from, to): (Address, Address),
    version: u32,
    stats: &mut ReplayStats,
) -> Result<Vec<Address>> {
    let mut invalid = Vec::new();
    // Invalidated record -> its previous address, to skip chains of them.
    let mut prev_of: HashMap<u64, u64> = HashMap::new();
    for rec in hlog.scan(from, to)? {
        let rec = rec?;
        stats.records_scanned += 1;
        let hash = KeyHash::of(&rec.key);
        let addr = rec.address.raw();
        if !version_is_newer(rec.version, version) {
            let (slot, entry) =
                index
                    .find_or_create_entry(hash)
                    .map_err(|source| RecoveryError::Index {
                        dir: Default::default(),
                        source,
                    })?;
            // Recovery is single-threaded: the exchange cannot fail.
            let _ = slot.compare_exchange_address(entry, addr);
            stats.records_applied += 1;
            continue;
        }
        let mut prev = rec.header.prev_address().raw();
        invalid.push(rec.address);
        prev_of.insert(addr, prev);
        if let Some((slot, entry)) = index.find_entry(hash)
            && entry.address() == addr
        {
            while let Some(p) = prev_of.get(&prev) {
                prev = *p;
            }
            let _ = if prev < FIRST_VALID {
                slot.delete(entry)
            } else {
                slot.compare_exchange_address(entry, prev)
            };
        }
    }
    Ok(invalid)
}

/// A log error as recovery reports it: damaged bytes at a log address are
/// [`RecoveryError::Corrupt`] naming the log segment file that holds them (or the log
/// directory, for a log on a device of the caller's).
fn log_error(meta: &CheckpointMeta, layout: &StoreLayout, e: HlogError) -> RecoveryError {
    match e {
        HlogError::Corrupt { address, reason } => {
            let a = address.raw();
            let file = match (snapshot_offset(meta, a), meta.log_segment_size) {
                // Bytes the replay copied from the snapshot: the damage came with them.
                (Some((offset, seg)), _) if seg > 0 => {
                    layout.snapshot_segment_path(&meta.token, offset / seg)
                }
                (_, Some(seg)) if seg > 0 => layout.log_segment_path(a / seg),
                _ => layout.log_dir(),
            };
            RecoveryError::corrupt(
                file,
                format!(
                    "log address {address} (checkpoint {}): {reason}",
                    meta.token
                ),
            )
        }
        e => RecoveryError::Log(e),
    }
}

/// Where log address `a` lies in the checkpoint's snapshot, if the replay copied it from
/// there (`[flushed, final)` of a snapshot checkpoint): its device offset and the snapshot's
/// segment size.
fn snapshot_offset(meta: &CheckpointMeta, a: u64) -> Option<(u64, u64)> {
    let (base, seg) = (meta.snapshot_start?, meta.snapshot_segment_size?);
    (meta.flushed_address <= a && a < meta.final_address).then(|| (a - base, seg))
}

/// Opens a checkpoint's file device in `dir` with base name `base`, read-only.
fn open_file_device(dir: &Path, base: &str, segment_size: u64) -> Result<FileDevice> {
    let options = DeviceOptions::default()
        .with_base_name(base)
        .with_segment_size(segment_size)
        .with_read_only(true);
    FileDevice::open(dir, options).map_err(|source| RecoveryError::Device {
        path: dir.to_path_buf(),
        source,
    })
}

const fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Copies the snapshot's bytes of `[flushed, final)` into `log` at their addresses, in
/// aligned chunks ending at page boundaries; bytes of the first chunk below `flushed` are
/// taken from `log` itself. Each chunk's records below `scan_from` (which the replay's scan
/// does not read) are verified before the chunk is written. Flushes `log`. Returns the bytes
/// written.
fn copy_snapshot(
    meta: &CheckpointMeta,
    layout: &StoreLayout,
    log: &dyn Device,
    scan_from: u64,
) -> Result<u64> {
    let (Some(base), Some(seg)) = (meta.snapshot_start, meta.snapshot_segment_size) else {
        return Ok(0);
    };
    let (flushed, fin) = (meta.flushed_address, meta.final_address);
    if flushed >= fin {
        return Ok(0);
    }
    let dir = layout.snapshot_dir(&meta.token);
    let snap = open_file_device(&dir, SNAPSHOT_DIR, seg)?;
    let snap_err = |source| RecoveryError::Device {
        path: dir.clone(),
        source,
    };
    let align = (snap.alignment() as u64)
        .max(log.alignment() as u64)
        .max(4096);
    if base % align != 0 || base > flushed {
        return Err(RecoveryError::corrupt(
            &dir,
            format!("snapshot start {base:#x} is not aligned or lies above flushed {flushed:#x}"),
        ));
    }
    let end = align_up(fin, align);
    if end - base > snap.size() {
        return Err(RecoveryError::corrupt(
            &dir,
            format!(
                "the snapshot holds {} bytes, the checkpoint needs {}",
                snap.size(),
                end - base
            ),
        ));
    }
    // Chunks end at page boundaries, so each chunk's records are whole and verified before
    // anything of the chunk is written.
    let chunk = COPY_CHUNK.max(meta.page_size).max(align);
    let page_bits = meta.page_size.trailing_zeros();
    let mut at = base;
    while at < end {
        let stop = ((at / chunk + 1) * chunk).min(end);
        let len = (stop - at) as usize;
        let mut buf =
            faster_device::read_sync(&snap, at - base, AlignedBuf::new(len, align as usize)?)
                .map_err(snap_err)?;
        // The scan of step 4 verifies `[index start, final)` as it reads it; the copy
        // verifies only what lies below that (reachable through the index alone).
        let (lo, hi) = (at.max(flushed), stop.min(fin).min(scan_from));
        if lo < hi {
            checksum::verify_range(&buf, at, (lo, hi), page_bits, |_, _| {}).map_err(|e| {
                let file = layout.snapshot_segment_path(&meta.token, (lo - base) / seg);
                RecoveryError::corrupt(file, e.to_string())
            })?;
        }
        // The first block: the log device already holds [begin, flushed); bytes below the
        // begin are no log bytes (and may not be on the device).
        let keep_from = at.max(meta.begin_address);
        if keep_from < flushed.min(stop) {
            let lo = keep_from & !(align - 1);
            let keep_end = align_up(flushed, align).min(stop);
            let old = AlignedBuf::new((keep_end - lo) as usize, align as usize)?;
            let old = faster_device::read_sync(log, lo, old)?;
            let (a, b) = ((keep_from - at) as usize, (flushed.min(stop) - at) as usize);
            let skip = (at.max(lo) - lo) as usize;
            buf[a..b].copy_from_slice(&old[skip + a..skip + b]);
        }
        faster_device::write_sync(log, at, buf)?;
        at = stop;
    }
    log.flush()?;
    Ok(end - base)
}
