//! Disk space: reclaiming it (checkpoint retention, then the truncation of the log's front
//! below what the kept checkpoints need) and reporting it ([`SpaceStats`], [`DiskUsage`]).
//! Imports `shared` and `error`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;

use faster_hlog::Address;
use faster_recovery::{CHECKPOINTS_DIR, CheckpointToken, INDEX_DIR, LOG_DIR, SNAPSHOT_DIR};

use crate::error::{Error, Result};
use crate::shared::Inner;

/// What one reclaim did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reclaimed {
    /// Checkpoints removed.
    pub(crate) removed: usize,
    /// The log's truncation point afterwards.
    pub(crate) truncated_to: u64,
}

/// Keeps the newest checkpoints the policy asks for (at or below `newest`, the one just
/// made durable, or the newest on disk), removes the others, and truncates the log below
/// the lowest begin address the kept ones need (or below the begin address if none is
/// kept). Runs inside an action of the state machine (a checkpoint's last phase, a shift),
/// so no other action moves the begin address or writes a checkpoint meanwhile.
pub(crate) fn reclaim(inner: &Inner, newest: Option<CheckpointToken>) -> Result<Reclaimed> {
    let layout = &inner.layout;
    let newest = match newest {
        Some(t) => Some(t),
        None => layout.list()?.first().copied(),
    };
    let (removed, needed) = match newest {
        Some(t) => {
            let r = faster_recovery::retain(layout, inner.space.checkpoints_kept, &t)?;
            (r.removed.len(), r.log_needed_from)
        }
        None => (0, None),
    };
    let hlog = &inner.hlog;
    let begin = hlog.begin_address().raw();
    let to = needed.map_or(begin, |n| n.min(begin));
    hlog.truncate_until(Address::from_raw_truncated(to))?;
    inner.checkpoint_bytes.store(
        dir_bytes(&layout.checkpoints_dir()).unwrap_or(0),
        Ordering::Relaxed,
    );
    Ok(Reclaimed {
        removed,
        truncated_to: hlog.truncated_address().raw(),
    })
}

/// The bytes a store directory holds on disk, by part (allocated blocks: sparse files count
/// what they use).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// The log's segment files (`<dir>/log`).
    pub log: u64,
    /// The index files of the checkpoints (`checkpoints/*/index`).
    pub index_checkpoints: u64,
    /// The snapshot files of snapshot checkpoints (`checkpoints/*/snapshot`).
    pub snapshots: u64,
    /// The rest of the checkpoints (metadata, leftovers).
    pub checkpoint_other: u64,
    /// The number of checkpoint directories.
    pub checkpoints: usize,
}

impl DiskUsage {
    /// Measures the store directory `dir` (symbolic links are not followed; a part that is
    /// missing counts 0).
    pub fn of(dir: &Path) -> Result<DiskUsage> {
        let measure = |p: &Path| dir_bytes(p).map_err(|e| Error::io("measuring", p, e));
        let mut u = DiskUsage {
            log: measure(&dir.join(LOG_DIR))?,
            ..DiskUsage::default()
        };
        let ckpts = dir.join(CHECKPOINTS_DIR);
        let entries = match fs::read_dir(&ckpts) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(u),
            Err(e) => return Err(Error::io("listing", &ckpts, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| Error::io("listing", &ckpts, e))?.path();
            let total = measure(&path)?;
            let index = measure(&path.join(INDEX_DIR))?;
            let snapshot = measure(&path.join(SNAPSHOT_DIR))?;
            u.checkpoints += 1;
            u.index_checkpoints += index;
            u.snapshots += snapshot;
            u.checkpoint_other += total.saturating_sub(index + snapshot);
        }
        Ok(u)
    }

    /// Everything together.
    pub fn total(&self) -> u64 {
        self.log + self.index_checkpoints + self.snapshots + self.checkpoint_other
    }
}

/// The bytes allocated to the files below `path` (a file counts itself; links and missing
/// paths count 0).
fn dir_bytes(path: &Path) -> std::io::Result<u64> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        return Ok(0);
    }
    if !meta.is_dir() {
        return Ok(meta.blocks() * 512);
    }
    let mut sum = 0;
    for entry in fs::read_dir(path)? {
        match dir_bytes(&entry?.path()) {
            Ok(n) => sum += n,
            // Removed meanwhile (a checkpoint being dropped).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sum)
}

/// Where a store's space goes ([`crate::FasterKv::space`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceStats {
    /// The log's begin address: records below it are gone.
    pub begin: u64,
    /// The log's truncation point: its files below it are deleted.
    pub truncated: u64,
    /// The log's tail.
    pub tail: u64,
    /// The live estimate: the index's keys at the average record size the last compaction
    /// saw (`None` before the first one).
    pub live_estimate: Option<u64>,
    /// The bytes on disk, by part.
    pub disk: DiskUsage,
    /// Compactions completed since the store was opened.
    pub compactions: u64,
}
