//! Choosing the checkpoint to recover from: the newest valid one by default.

use crate::error::{RecoveryError, Result};
use crate::files::check_files;
use crate::layout::StoreLayout;
use crate::meta::CheckpointMeta;
use crate::token::CheckpointToken;
use crate::validate::validate_successor;

/// What to do when a checkpoint is damaged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryPolicy {
    /// Fail on the first checkpoint that does not validate.
    Strict,
    /// Skip damaged checkpoints (logging why) and use the newest valid one.
    #[default]
    Fallback,
}

/// The checkpoint chosen for recovery, and those passed over on the way.
#[derive(Debug)]
pub struct Chosen {
    /// The chosen checkpoint's metadata (validated, files checked).
    pub meta: CheckpointMeta,
    /// Newer checkpoints that were skipped, newest first, each with the reason.
    pub skipped: Vec<(CheckpointToken, RecoveryError)>,
}

/// Reads, validates and checks the files of checkpoint `token`.
fn load(layout: &StoreLayout, token: &CheckpointToken) -> Result<CheckpointMeta> {
    let meta = layout.read_meta(token)?;
    check_files(&meta, layout)?;
    Ok(meta)
}

/// Chooses the newest checkpoint in `layout` that reads, validates and has its files.
///
/// Under [`RecoveryPolicy::Strict`] the first failure is returned; under
/// [`RecoveryPolicy::Fallback`] damaged checkpoints are skipped (each logged as a warning and
/// recorded in [`Chosen::skipped`]). Then the chosen checkpoint is checked with
/// [`validate_successor`] against the newest older checkpoint that is valid, if any (under
/// `Strict`, a damaged older checkpoint met on the way is an error too); a violation is
/// returned as [`RecoveryError::Inconsistent`] under both policies. No valid checkpoint is
/// [`RecoveryError::NoCheckpoint`].
pub fn choose_latest(layout: &StoreLayout, policy: RecoveryPolicy) -> Result<Chosen> {
    let tokens = layout.list()?;
    let mut skipped = Vec::new();
    let mut rest = tokens.iter();
    let mut chosen = None;
    for token in rest.by_ref() {
        match load(layout, token) {
            Ok(meta) => {
                chosen = Some(meta);
                break;
            }
            Err(e) if policy == RecoveryPolicy::Strict => return Err(e),
            Err(e) => {
                log::warn!("skipping checkpoint {token}: {e}");
                skipped.push((*token, e));
            }
        }
    }
    let Some(meta) = chosen else {
        return Err(RecoveryError::NoCheckpoint {
            dir: layout.checkpoints_dir(),
        });
    };
    // The newest older valid checkpoint, if any: the serial cuts must not go backwards.
    for token in rest {
        match load(layout, token) {
            Ok(older) => {
                validate_successor(&older, &meta)?;
                break;
            }
            Err(e) if policy == RecoveryPolicy::Strict => return Err(e),
            Err(e) => log::warn!("older checkpoint {token} is not valid either: {e}"),
        }
    }
    Ok(Chosen { meta, skipped })
}

/// Chooses checkpoint `token`: reads, validates and checks its files, then checks it with
/// [`validate_successor`] against the newest older valid checkpoint, if any. The policy
/// only decides whether damaged *older* checkpoints are tolerated there: under
/// [`RecoveryPolicy::Strict`] the first damaged older one is an error.
pub fn choose(
    layout: &StoreLayout,
    token: &CheckpointToken,
    policy: RecoveryPolicy,
) -> Result<Chosen> {
    let meta = load(layout, token)?;
    for older in layout.list()?.iter().filter(|t| *t < token) {
        match load(layout, older) {
            Ok(older) => {
                validate_successor(&older, &meta)?;
                break;
            }
            Err(e) if policy == RecoveryPolicy::Strict => return Err(e),
            Err(e) => log::warn!("older checkpoint {older} is not valid: {e}"),
        }
    }
    Ok(Chosen {
        meta,
        skipped: Vec::new(),
    })
}
