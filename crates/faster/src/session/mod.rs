//! [`Session`]: a thread's context for operations, with its serial numbers and pending
//! operations; [`Status`].
//!
//! The rooms: this file holds the type, its accessors and its `Drop`; `envelope` the CPR
//! envelope every operation runs in (busy and idle marks, following the state machine,
//! serials, refreshes, crossing a cut); `single` the per-operation calls (read, upsert,
//! delete, RMW, with the 8-byte fast paths); `batch` the batched calls and their prefetch
//! pipeline; `pending` the non-blocking calls and `complete_pending`; `queue` the table of
//! operations waiting for disk reads; `compact` the compaction session's copy operation.

use std::fmt;
use std::sync::Arc;

use faster_cpr::Membership;
use faster_epoch::Participant;

use crate::error::Error;
use crate::ops::{Ctx, Cx, SessionGuard};
pub use crate::session_id::SessionId;
use crate::shared::Inner;
use queue::Pending;

/// Operations between two refreshes of a session's epoch protection.
pub const REFRESH_INTERVAL: u64 = 64;

/// Operations per window of the batched API ([`Session::read_batch`] and friends): the keys
/// of a window are hashed and their index buckets and records prefetched before the first
/// of them executes. Measured on YCSB-A and C with 10 M keys (zipf, one thread, alternating
/// runs): 32 beats 16 by about 10% and 48 or 64 by 10-20% (more lines in flight than the
/// cache keeps until their operations run).
pub const BATCH_WINDOW: usize = 32;

/// How a non-blocking operation ([`Session::read_async`], [`Session::rmw_async`]) went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum Status {
    /// Finished: the context has already been called.
    Done,
    /// Waiting for a disk read: [`Session::complete_pending`] finishes it and calls the
    /// context.
    Pending,
}

/// A session: the context of one thread's operations on a store.
///
/// A session is `Send + 'static` and used by one thread at a time (`&mut self`). It holds an
/// epoch slot and stays protected between operations, refreshing every
/// [`REFRESH_INTERVAL`] operations. **A session that stops issuing operations holds back the
/// log's eviction** (other sessions' appends wait for it once memory is full): drop idle
/// sessions, or call [`Session::refresh`] from time to time.
///
/// Each read, upsert, rmw and delete call takes the next serial number ([`Session::serial`]),
/// starting at 1, whether it finishes, goes pending or fails; so does each operation of a
/// batch ([`Session::read_batch`], [`Session::upsert_batch`], [`Session::rmw_batch`],
/// [`Session::delete_batch`]), in order.
///
/// Dropping a session with pending operations completes them first (blocking on their I/O),
/// so every context is called exactly once.
pub struct Session {
    inner: Arc<Inner>,
    /// The epoch guard and the checkpoint membership (`None` on a closed store): one check
    /// for both on the hot path.
    live: Option<Live>,
    /// The version rules of the session's current phase.
    cx: Cx,
    /// The session's CPR version (the full width of [`Cx::version`]), kept with `cx`.
    cpr_version: u64,
    id: SessionId,
    serial: u64,
    scratch: Vec<u8>,
    pending: Pending,
    /// Operations that crossed a cut while they ran (for tests).
    shifts: u64,
    /// The batch pipeline holds the session busy across a window of operations
    /// ([`Session::pipeline`]): [`Session::op`] then takes no enter and exit of its own.
    in_window: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("serial", &self.serial)
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// What a session of an open store holds.
struct Live {
    guard: SessionGuard,
    /// The session's membership in the checkpoint state machine.
    cpr: Membership,
}

/// The parts of a session an operation works with: the operations' context, and what the
/// session keeps for them.
struct Parts<'a> {
    op: Ctx<'a>,
    scratch: &'a mut Vec<u8>,
    pending: &'a mut Pending,
    /// The session's CPR version (the full width of [`Cx::version`]).
    pending_version: u64,
}

/// The [`Parts`] of session `$s` whose [`Live`] the caller has borrowed as `$live` (a macro,
/// not a method, so that the borrows of the session's fields stay split).
macro_rules! parts {
    ($s:ident, $live:ident) => {
        Parts {
            op: $crate::ops::Ctx {
                inner: &$s.inner,
                guard: &mut $live.guard,
                cx: $s.cx,
            },
            scratch: &mut $s.scratch,
            pending: &mut $s.pending,
            pending_version: $s.cpr_version,
        }
    };
}

mod batch;
mod compact;
pub use batch::BatchOp;
mod envelope;
mod pending;
mod queue;
mod single;
#[cfg(test)]
mod tests;

impl Session {
    pub(crate) fn new(inner: Arc<Inner>, id: u64, participant: Participant) -> Self {
        Self::resume(inner, id, participant, 0)
    }

    /// A session whose last operation had serial `serial` (a recovered session continued
    /// with [`crate::FasterKv::continue_session`]): its next operation gets `serial + 1`.
    pub(crate) fn resume(
        inner: Arc<Inner>,
        id: u64,
        participant: Participant,
        serial: u64,
    ) -> Self {
        let guard = participant.into_guard();
        // The slot is protected: the membership joins the phase under way.
        let cpr = inner.cpr.join(id, guard.slot_index(), serial);
        let rules = cpr.rules();
        Session {
            inner,
            live: Some(Live { guard, cpr }),
            cx: Cx::of(rules),
            cpr_version: rules.version,
            id: SessionId::from_raw(id),
            serial,
            scratch: Vec::new(),
            pending: Pending::new(),
            shifts: 0,
            in_window: false,
        }
    }

    /// A session of a closed store: every operation fails with [`Error::Closed`].
    pub(crate) fn closed(inner: Arc<Inner>, id: u64) -> Self {
        let cx = Cx::of(faster_cpr::Rules {
            version: 0,
            phase: faster_cpr::Phase::Rest,
            detect_shift: false,
            copy_older: false,
            no_pending_writes: false,
        });
        Session {
            inner,
            live: None,
            cx,
            cpr_version: 0,
            id: SessionId::from_raw(id),
            serial: 0,
            scratch: Vec::new(),
            pending: Pending::new(),
            shifts: 0,
            in_window: false,
        }
    }

    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The serial number of the last operation issued on this session (0 before the first).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The CPR version this session works in: its operations write records of this version.
    /// It moves to `v + 1` at the session's cut in a checkpoint of version `v`.
    pub fn version(&self) -> u64 {
        self.live.as_ref().map_or(0, |l| l.cpr.rules().version)
    }

    /// The checkpoint phase this session has reached (it follows the store's phase at its
    /// next call; [`faster_cpr::Phase::Rest`] when no checkpoint runs).
    pub fn phase(&self) -> faster_cpr::Phase {
        self.live
            .as_ref()
            .map_or(faster_cpr::Phase::Rest, |l| l.cpr.rules().phase)
    }

    /// This session's cut in the checkpoint of `version`: the serial of its last operation
    /// of that version, once it has crossed to `version + 1` (`None` before, or if it took
    /// no part in that checkpoint).
    pub fn cut(&self, version: u64) -> Option<u64> {
        self.live.as_ref().and_then(|l| l.cpr.cut(version))
    }

    /// Number of operations waiting for [`Session::complete_pending`].
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }
}

impl Parts<'_> {
    /// The CPR version of the session's current phase (as stamped, widened).
    fn cx_version(&self) -> u64 {
        self.pending_version
    }
}

impl Drop for Session {
    /// Completes the pending operations (blocking on their I/O) so that every context is
    /// called (on a closed store they get [`Error::Closed`]), then leaves the checkpoint
    /// state machine (a session that leaves before a running checkpoint's cut is cut at its
    /// last serial) and frees its epoch slot.
    fn drop(&mut self) {
        if self.pending.len() > 0 && self.complete_pending(true).is_err() {
            self.pending.fail_all(|| Error::Closed);
        }
        if let Some(Live { guard, cpr }) = self.live.take() {
            cpr.leave(self.serial);
            drop(guard);
        }
    }
}
