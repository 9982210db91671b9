//! [`Cpr`]: the shared state word, the members, and global transitions.

use crossbeam_utils::CachePadded;
use faster_epoch::LightEpoch;

use crate::member::{Member, Membership};
use crate::state::SystemState;
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};

/// A hook called with every new global state, by the thread that made the
/// transition (tests use it to watch the phase order).
pub type PhaseObserver = Box<dyn Fn(SystemState) + Send + Sync>;

pub(crate) struct Shared {
    pub(crate) state: CachePadded<AtomicU64>,
    pub(crate) epoch: LightEpoch,
    members: Mutex<Vec<Arc<Member>>>,
    #[cfg(not(loom))]
    driver: Mutex<Option<std::thread::Thread>>,
    observer: Option<PhaseObserver>,
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
