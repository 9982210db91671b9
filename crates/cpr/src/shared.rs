//! The state the driver and the sessions share: the packed state word, the member records
//! (each session's fast-path words and its lock-guarded view), and the global transitions.
//! The session's side of the protocol lives in `member`, the driver's in `driver`.

use crossbeam_utils::CachePadded;
use faster_epoch::LightEpoch;

use crate::state::SystemState;
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};

/// A hook called with every new global state, by the thread that made the
/// transition (tests use it to watch the phase order).
pub type PhaseObserver = Box<dyn Fn(SystemState) + Send + Sync>;

pub(crate) struct Shared {
    pub(crate) state: CachePadded<AtomicU64>,
    pub(crate) epoch: LightEpoch,
    pub(crate) members: Mutex<Vec<Arc<Member>>>,
    #[cfg(not(loom))]
    pub(crate) driver: Mutex<Option<std::thread::Thread>>,
    pub(crate) observer: Option<PhaseObserver>,
}

impl Shared {
    #[inline]
    pub(crate) fn load(&self) -> SystemState {
        SystemState::unpack(self.state.load(Ordering::SeqCst))
    }

    pub(crate) fn add_member(&self, m: Arc<Member>) {
        lock(&self.members).push(m);
    }

    pub(crate) fn members(&self) -> Vec<Arc<Member>> {
        lock(&self.members).clone()
    }

    /// Forgets members that have left.
    pub(crate) fn prune(&self) {
        lock(&self.members).retain(|m| !lock(&m.state).left);
    }

    /// Moves the global state from `from` to `to` if it still is `from`.
    pub(crate) fn transition(&self, from: SystemState, to: SystemState) -> bool {
        let ok = self
            .state
            .compare_exchange(from.pack(), to.pack(), Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if ok {
            if let Some(obs) = &self.observer {
                obs(to);
            }
            self.wake_driver();
        }
        ok
    }

    /// Moves the global state from `from` to the next state (the caller saw
    /// `from`'s phase completed, or did its work).
    pub(crate) fn advance(&self, from: SystemState) -> bool {
        self.transition(from, from.next())
    }

    #[cfg(not(loom))]
    pub(crate) fn set_driver(&self, t: Option<std::thread::Thread>) {
        *lock(&self.driver) = t;
    }

    pub(crate) fn wake_driver(&self) {
        #[cfg(not(loom))]
        if let Some(t) = lock(&self.driver).as_ref() {
            t.unpark();
        }
    }
}

/// The shared part of a member.
pub(crate) struct Member {
    pub(crate) id: u64,
    pub(crate) slot: usize,
    /// The words the session's fast path touches, on one cache line.
    pub(crate) hot: CachePadded<Hot>,
    pub(crate) state: Mutex<MemberState>,
}

/// The member's fast-path words.
pub(crate) struct Hot {
    /// `last serial << 1 | BUSY`, written by the session only.
    pub(crate) busy: AtomicU64,
    /// The packed global state the session is synchronised with, or `UNSYNCED`: written by
    /// the session (under the member lock) and reset to `UNSYNCED` by the driver (under the
    /// member lock) when it clears the session's epoch protection.
    pub(crate) cached: AtomicU64,
    /// The session's number of pending operations, as of its last call.
    pub(crate) pending: AtomicU64,
}

/// What the member lock guards.
pub(crate) struct MemberState {
    /// The global state this member has moved to.
    pub(crate) view: SystemState,
    /// The last phase token acknowledged for this member.
    pub(crate) acked: u64,
    /// The member's cut in the checkpoint of `cut.0`: its last version-v
    /// serial.
    pub(crate) cut: Option<(u64, u64)>,
    /// The session has left; nobody may act for it any more.
    pub(crate) left: bool,
    /// The driver cleared this idle member's epoch protection (WAIT_FLUSH) and must give
    /// it back (`Shared::restore_round`).
    pub(crate) stolen: bool,
}
