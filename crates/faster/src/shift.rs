//! Moving the log's begin address: [`Action::Shift`] on the state machine (so it never
//! overlaps a checkpoint or an index growth), the store's side of its phases, and the
//! reclaim that follows. Imports `shared`, `space`, `error`.
//!
//! 1. Claim the state machine (SHIFT_PREPARE): a running checkpoint or growth is waited for.
//! 2. Every session acknowledges SHIFT_PREPARE between operations, once nothing of its own is
//!    pending (the driver acts for idle sessions). From then on no operation that began
//!    before the shift is running: none holds an index entry loaded before a compaction's
//!    copies were installed, so none can follow a chain into the records the shift drops.
//! 3. SHIFT_IN_PROGRESS (the driver): raise the begin address, free the index entries below
//!    it, then reclaim: remove checkpoints beyond those kept and delete the log's files
//!    below what the kept checkpoints need.
//! 4. Back at rest in the next version, as after every action.

use std::sync::Arc;

use faster_cpr::{Action, ActionHooks};
use faster_hlog::Address;

use crate::error::{Error, Result};
use crate::shared::Inner;
use crate::space::{Reclaimed, reclaim};

/// What a shift did.
#[derive(Clone, Debug, Default)]
pub(crate) struct Shifted {
    /// The begin address afterwards.
    pub(crate) begin: u64,
    /// Index entries freed.
    pub(crate) freed: u64,
    /// What the reclaim did.
    pub(crate) reclaimed: Reclaimed,
}

/// Shifts the begin address to `to` through the state machine (see the module
/// documentation), on the calling thread, which must not be inside a session's operation.
/// `to` must be at or below the safe read-only address.
pub(crate) fn shift(inner: &Arc<Inner>, to: Address) -> Result<Shifted> {
    let started = loop {
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        match inner.cpr.begin::<Error>(Action::Shift) {
            Ok(s) => {
                inner.compacting.shifting.claim();
                break s;
            }
            Err(e) => match Error::from_cpr(e) {
                Error::CheckpointInProgress { phase, .. } => inner.wait_for_action(phase),
                e => return Err(e),
            },
        }
    };
    let mut hooks = Driver {
        inner,
        to,
        done: None,
    };
    let result = inner
        .cpr
        .finish_action(started, inner.checkpoint_timeout, &mut hooks);
    inner.compacting.shifting.end();
    result.map_err(Error::from_shift)?;
    hooks
        .done
        .ok_or_else(|| Error::CompactionConflict("the shift ended without its work".into()))
}

/// The driver's hooks.
struct Driver<'a> {
    inner: &'a Arc<Inner>,
    to: Address,
    done: Option<Shifted>,
}

impl ActionHooks for Driver<'_> {
    type Error = Error;

    fn work(&mut self) -> Result<bool> {
        let inner = self.inner;
        let begin = inner.hlog.shift_begin_address(self.to)?;
        let freed = inner.index.clean_below(begin.raw());
        // A failed reclaim leaves more on disk than needed, nothing lost: the shift itself
        // stands (the next checkpoint's reclaim tries again).
        let reclaimed = match reclaim(inner, None) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("reclaiming disk space after the shift to {begin:?} failed: {e}");
                Reclaimed {
                    removed: 0,
                    truncated_to: inner.hlog.truncated_address().raw(),
                }
            }
        };
        self.done = Some(Shifted {
            begin: begin.raw(),
            freed,
            reclaimed,
        });
        Ok(true)
    }

    fn abort(&mut self) {}

    fn help(&mut self) -> bool {
        self.inner.help_io()
    }

    fn cancelled(&mut self) -> bool {
        self.inner.is_closed()
    }
}
