//! [`check_files`]: the data files a checkpoint's metadata refers to are there and long
//! enough, before anything of them is read.

use std::fs;
use std::path::PathBuf;

use crate::error::{RecoveryError, Result};
use crate::layout::StoreLayout;
use crate::meta::{CheckpointMeta, IndexPart, LogMode};

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
