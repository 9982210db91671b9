//! [`Cpr`]: the handle of one store's state machine: sessions join it, drivers run
//! checkpoints through it (see the `driver` module).

use crossbeam_utils::CachePadded;
use faster_epoch::LightEpoch;

use crate::member::Membership;
use crate::shared::{PhaseObserver, Shared};
use crate::state::SystemState;
use crate::sync::{Arc, AtomicU64, Mutex, lock};

/// The CPR state machine of one store: a cheap handle (`Clone`).
///
/// Sessions [`Cpr::join`] it (after protecting their epoch slot) and follow
/// the phases through their [`Membership`]; one thread at a time drives a
/// checkpoint with [`Cpr::run`].
#[derive(Clone)]
pub struct Cpr {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Cpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cpr").field("state", &self.state()).finish()
    }
}

impl Cpr {
    /// A state machine at rest in `version`, acknowledging phases through
    /// `epoch`. `observer` sees every transition.
    pub fn new(epoch: LightEpoch, version: u64, observer: Option<PhaseObserver>) -> Cpr {
        crate::fence::init();
        Cpr {
            shared: Arc::new(Shared {
                state: CachePadded::new(AtomicU64::new(SystemState::rest(version).pack())),
                epoch,
                members: Mutex::new(Vec::new()),
                #[cfg(not(loom))]
                driver: Mutex::new(None),
                observer,
            }),
        }
    }

    /// The current global state.
    pub fn state(&self) -> SystemState {
        self.shared.load()
    }

    /// Joins a session: `id` names it in checkpoints, `slot` is the index of
    /// its epoch slot ([`faster_epoch::Participant::slot_index`]), which must
    /// be **protected already**, and `serial` is its last serial so far (at most
    /// [`crate::MAX_SERIAL`]). The session takes part in the phase under way from now on.
    pub fn join(&self, id: u64, slot: usize, serial: u64) -> Membership {
        Membership::join(self.shared.clone(), id, slot, serial)
    }

    /// Clears the epoch protection of every idle member (not inside a call, nothing
    /// pending), as a checkpoint's WAIT_FLUSH does: an idle session must not hold back a
    /// background writer of the store (a compaction's appends wait for the log to evict,
    /// which waits for every protected participant). Each such member takes its slow path
    /// at its next call and protects itself again in full before it touches anything.
    /// Needs the cross-thread barrier (`fence::heavy`); without it nothing is cleared.
    pub fn release_idle(&self) {
        self.shared.release_idle();
    }

    /// The number of sessions that have joined and not left (members that
    /// left are forgotten at the end of the next checkpoint).
    pub fn members(&self) -> usize {
        self.shared
            .members()
            .iter()
            .filter(|m| !lock(&m.state).left)
            .count()
    }
}
