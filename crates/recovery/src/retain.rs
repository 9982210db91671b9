//! Checkpoint retention: which checkpoints a store keeps, the crash-safe removal of the
//! others, and the lowest log address the kept ones need (below it the log may be deleted).

use crate::error::Result;
use crate::files::check_files;
use crate::layout::StoreLayout;
use crate::meta::{CheckpointKind, CheckpointMeta};
use crate::token::CheckpointToken;

/// What [`retain`] kept and removed.
#[derive(Debug, Default)]
pub struct Retained {
    /// The checkpoints kept, newest first (see [`retain`]).
    pub kept: Vec<CheckpointMeta>,
    /// The checkpoints removed, newest first (valid or not).
    pub removed: Vec<CheckpointToken>,
    /// The lowest begin address of the kept checkpoints: the log below it is needed by none
    /// of them (`None` when nothing is kept).
    pub log_needed_from: Option<u64>,
}

/// Keeps, among the checkpoints at or below `newest`: the newest `keep` valid ones with a
/// log part (at least one: the newest, the one recovery picks, is never removed), index-only
/// ones among the newest `keep` of all, the
/// checkpoints whose index a kept log-only checkpoint uses, and the newest valid checkpoint
/// with an index of its own (later log-only checkpoints will use it); removes every other
/// checkpoint at or below `newest`, valid or damaged, with [`StoreLayout::remove_checkpoint`] (crash-safe: a crash
/// leaves each checkpoint whole or gone), and the leftovers of removals a crash
/// interrupted. Checkpoints newer than `newest` (one being written) are not touched.
///
/// Call it once `newest`'s metadata is durable. Errors are the file system's; what was
/// removed before an error stays removed.
pub fn retain(layout: &StoreLayout, keep: usize, newest: &CheckpointToken) -> Result<Retained> {
    let keep = keep.max(1);
    let tokens: Vec<CheckpointToken> = layout.list()?.into_iter().filter(|t| t <= newest).collect();
    let mut kept: Vec<CheckpointMeta> = Vec::new();
    let mut with_log = 0;
    let mut newest_index_kept = false;
    let mut needed: Vec<CheckpointToken> = Vec::new();
    let mut doomed = Vec::new();
    for token in &tokens {
        let meta = match layout.read_meta(token) {
            Ok(meta) => check_files(&meta, layout).map(|()| meta),
            Err(e) => Err(e),
        };
        let Ok(meta) = meta else {
            // Damaged or incomplete, and older than the checkpoint just written: recovery
            // would pass over it.
            doomed.push(*token);
            continue;
        };
        let own_index = meta.kind != CheckpointKind::LogOnly;
        let wanted = (meta.has_log() && with_log < keep)
            || (!meta.has_log() && kept.len() < keep)
            || needed.contains(token)
            || (own_index && !newest_index_kept);
        if !wanted {
            doomed.push(*token);
            continue;
        }
        if meta.has_log() {
            with_log += 1;
        }
        newest_index_kept |= own_index;
        if meta.kind == CheckpointKind::LogOnly
            && let Some(part) = &meta.index
        {
            needed.push(part.token);
        }
        kept.push(meta);
    }
    for token in &doomed {
        layout.remove_checkpoint(token)?;
    }
    layout.purge_removed()?;
    let log_needed_from = kept.iter().map(|m| m.begin_address).min();
    Ok(Retained {
        kept,
        removed: doomed,
        log_needed_from,
    })
}
