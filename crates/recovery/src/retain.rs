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
    /// The checkpoints kept, newest first: the newest `keep` valid ones and, for each kept
    /// log-only one, the checkpoint whose index it uses.
    pub kept: Vec<CheckpointMeta>,
    /// The checkpoints removed, newest first (valid or not).
    pub removed: Vec<CheckpointToken>,
    /// The lowest begin address of the kept checkpoints: the log below it is needed by none
    /// of them (`None` when nothing is kept).
    pub log_needed_from: Option<u64>,
}

/// Keeps the newest `keep` valid checkpoints at or below `newest` (at least one: the
/// newest valid checkpoint, the one recovery picks, is never removed) and the checkpoints
/// whose index a kept log-only checkpoint uses; removes every other checkpoint at or below
/// `newest`, valid or damaged, with [`StoreLayout::remove_checkpoint`] (crash-safe: a crash
/// leaves each checkpoint whole or gone), and the leftovers of removals a crash
/// interrupted. Checkpoints newer than `newest` (one being written) are not touched.
///
/// Call it once `newest`'s metadata is durable. Errors are the file system's; what was
/// removed before an error stays removed.
pub fn retain(layout: &StoreLayout, keep: usize, newest: &CheckpointToken) -> Result<Retained> {
    let keep = keep.max(1);
    let tokens: Vec<CheckpointToken> = layout
        .list()?
        .into_iter()
        .filter(|t| t <= newest)
        .collect();
    let mut kept: Vec<CheckpointMeta> = Vec::new();
    let mut needed: Vec<CheckpointToken> = Vec::new();
    let mut doomed = Vec::new();
    for token in &tokens {
        let valid = || {
            let meta = layout.read_meta(token)?;
            check_files(&meta, layout)?;
            Ok::<_, crate::RecoveryError>(meta)
        };
        let wanted = kept.len() < keep || needed.contains(token);
        match (wanted, valid()) {
            (true, Ok(meta)) => {
                if meta.kind == CheckpointKind::LogOnly
                    && let Some(part) = &meta.index
                {
                    needed.push(part.token);
                }
                kept.push(meta);
            }
            (true, Err(e)) => {
                log::info!("removing the damaged checkpoint {token}: {e}");
                doomed.push(*token);
            }
            (false, _) => doomed.push(*token),
        }
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
