//! [`LightEpoch`]: the shared epoch state and its operations.

use crate::drain::{Action, DrainList};
use crate::error::{EpochError, Result};
use crate::participant::Participant;
use crate::sync::{Arc, AtomicU64, Ordering, Spin, fence};
use crate::table::{Slot, Table, UNPROTECTED};
use crossbeam_utils::CachePadded;

/// Default number of participant slots.
pub const DEFAULT_PARTICIPANTS: usize = 128;
/// Default number of drain-list cells (as in FASTER).
pub const DEFAULT_DRAIN_LIST: usize = 256;

/// The first epoch. Epoch 0 means "unprotected" in a slot.
const FIRST_EPOCH: u64 = 1;

/// The shared state behind every [`LightEpoch`] handle and [`Participant`].
#[derive(Debug)]
pub(crate) struct Inner {
    /// The global epoch. Only ever incremented.
    current: CachePadded<AtomicU64>,
    /// Largest epoch known to be safe: no participant is protected at it or
    /// below. Only ever increased.
    safe: CachePadded<AtomicU64>,
    /// Largest phase token whose completion has been claimed.
    pub(crate) phase_completed: CachePadded<AtomicU64>,
    pub(crate) table: Table,
    drain: DrainList,
}

/// Epoch protection in the style of FASTER's `LightEpoch`.
///
/// A cheap, cloneable handle (an `Arc` inside). Participants register to get a
/// slot ([`LightEpoch::register`]), protect themselves while they touch shared
/// memory, and refresh regularly. [`LightEpoch::bump_epoch`] registers an
/// action that runs exactly once, after every participant that was protected
/// at the bumped epoch or earlier has refreshed or unprotected.
#[derive(Debug, Clone)]
pub struct LightEpoch {
    pub(crate) inner: Arc<Inner>,
}

impl Default for LightEpoch {
    fn default() -> Self {
        Self::new()
    }
}

impl LightEpoch {
    /// An epoch with [`DEFAULT_PARTICIPANTS`] slots and [`DEFAULT_DRAIN_LIST`]
    /// drain-list cells.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_PARTICIPANTS, DEFAULT_DRAIN_LIST)
            .expect("default capacities are valid")
    }

    /// An epoch with `participants` slots and `drain_list` cells for pending
    /// actions. Both must be at least 1.
    pub fn with_capacity(participants: usize, drain_list: usize) -> Result<Self> {
        if participants == 0 {
            return Err(EpochError::InvalidConfig("participants must be at least 1"));
        }
        if drain_list == 0 {
            return Err(EpochError::InvalidConfig("drain list must be at least 1"));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                current: CachePadded::new(AtomicU64::new(FIRST_EPOCH)),
                safe: CachePadded::new(AtomicU64::new(FIRST_EPOCH - 1)),
                phase_completed: CachePadded::new(AtomicU64::new(0)),
                table: Table::new(participants),
                drain: DrainList::new(drain_list),
            }),
        })
    }

    /// Claims a slot for a new participant (a thread or a session).
    ///
    /// Fails with [`EpochError::TableFull`] when every slot is held. Dropping
    /// the [`Participant`] frees its slot.
    pub fn register(&self) -> Result<Participant> {
        match self.inner.table.claim() {
            Some(index) => Ok(Participant::new(self.inner.clone(), index)),
            None => Err(EpochError::TableFull {
                capacity: self.inner.table.capacity(),
            }),
        }
    }

    /// Claims a slot for an **observer**: a participant that protects memory
    /// like any other but never takes part in phase acknowledgement (see
    /// [`crate::phase`]), so it cannot hold a phase open. For log scans, a
    /// checkpoint driver and other helpers that are not sessions.
    pub fn register_observer(&self) -> Result<Participant> {
        let p = self.register()?;
        // The slot is not protected yet, so no phase scan can be misled by
        // the marker changing here.
        self.inner
            .table
            .slot(p.slot_index())
            .phase
            .store(u64::MAX, Ordering::Release);
        Ok(p)
    }

    /// Acknowledges phase `token` **on behalf of** the participant holding
    /// slot `slot_index`, then tries to complete the phase, exactly as
    /// [`crate::Guard::finish_phase`] would for that participant. Returns
    /// `true` if this call completed the phase.
    ///
    /// This is how a state machine acknowledges for a participant it knows to
    /// be idle (it did that participant's phase work itself). The caller must
    /// make sure that the slot still belongs to that participant for the whole
    /// call (for example by holding a lock that the participant also takes
    /// before it drops), or the mark lands on a stranger. An index out of
    /// range is ignored (returns `false`).
    pub fn finish_phase_for(&self, slot_index: usize, token: u64) -> bool {
        if slot_index >= self.inner.table.capacity() {
            return false;
        }
        let slot = self.inner.table.slot(slot_index);
        self.inner.finish_phase(slot, token)
    }

    /// Unprotects slot `slot_index` **on behalf of** its owner, so that an idle
    /// participant stops holding back epochs, and runs what became safe.
    ///
    /// The caller must know that the owner holds no reference obtained under
    /// its protection and will not use one before it re-protects: the owner's
    /// next [`crate::Guard::refresh`] sees its slot unprotected and protects it
    /// again in full. A state machine establishes this with a handshake (the
    /// CPR crate's idle-session takeover). An index out of range is ignored.
    pub fn unprotect_slot(&self, slot_index: usize) {
        if slot_index < self.inner.table.capacity() {
            self.inner.unprotect(self.inner.table.slot(slot_index));
        }
    }

    /// Protects slot `slot_index` again **on behalf of** its idle owner, after
    /// [`LightEpoch::unprotect_slot`], so that it takes part in phase
    /// acknowledgement again. The owner must still protect itself in full
    /// ([`crate::Guard::reprotect`]) before it uses anything: this only makes
    /// the slot hold back epochs (and phases) as a protected one does. An
    /// index out of range is ignored.
    pub fn protect_slot(&self, slot_index: usize) {
        if slot_index < self.inner.table.capacity() {
            self.inner.protect(self.inner.table.slot(slot_index));
        }
    }

    /// The number of participant slots.
    pub fn capacity(&self) -> usize {
        self.inner.table.capacity()
    }

    /// The number of slots held by live participants.
    pub fn registered(&self) -> usize {
        self.inner.table.registered()
    }

    /// The number of drain-list cells.
    pub fn drain_list_capacity(&self) -> usize {
        self.inner.drain.capacity()
    }

    /// The number of actions waiting to run (approximate under concurrency).
    pub fn pending_actions(&self) -> usize {
        self.inner.drain.pending()
    }

    /// The current global epoch.
    pub fn current_epoch(&self) -> u64 {
        self.inner.current.load(Ordering::SeqCst)
    }

    /// The largest epoch known to be safe to reclaim: no participant is
    /// protected at this epoch or an earlier one. Computes a fresh value.
    pub fn safe_to_reclaim_epoch(&self) -> u64 {
        self.inner.compute_safe()
    }

    /// Whether `epoch` is safe to reclaim (see
    /// [`LightEpoch::safe_to_reclaim_epoch`]).
    pub fn is_safe_to_reclaim(&self, epoch: u64) -> bool {
        epoch <= self.inner.safe.load(Ordering::SeqCst) || epoch <= self.inner.compute_safe()
    }

    /// Increments the global epoch and returns the new value. Runs any
    /// pending action that became safe.
    pub fn bump(&self) -> u64 {
        let new = self.inner.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.drain();
        new
    }

    /// Increments the global epoch from `e` to `e + 1` and registers `action`
    /// to run exactly once when epoch `e` is safe, that is after every
    /// participant protected at `e` or earlier has refreshed or unprotected.
    /// Returns the new epoch `e + 1`.
    ///
    /// The action runs on whichever thread next drains the list: possibly
    /// this one, before `bump_epoch` returns, if nobody is protected at `e`.
    /// When the drain list is full the caller helps: it drains what is safe
    /// and retries, yielding between attempts, until a cell frees. That wait
    /// ends when the participants holding old epochs refresh or unprotect. A
    /// protected caller should use [`crate::Guard::bump_epoch`], which also
    /// refreshes the caller's own slot while it waits.
    pub fn bump_epoch(&self, action: impl FnOnce() + Send + 'static) -> u64 {
        self.inner.bump_epoch(Box::new(action), None)
    }

    /// Runs every pending action whose epoch is safe. Returns how many ran.
    pub fn drain(&self) -> usize {
        self.inner.drain()
    }

    /// Claims the completion of the phase `token` if every protected slot has
    /// finished it (see the [`crate::phase`] module documentation). Returns
    /// `true` to exactly one caller per token, across this method and
    /// [`crate::Guard::finish_phase`].
    pub fn try_complete_phase(&self, token: u64) -> bool {
        self.inner.try_complete_phase(token)
    }

    /// The largest phase token whose completion has been claimed.
    pub fn completed_phase(&self) -> u64 {
        self.inner.phase_completed.load(Ordering::SeqCst)
    }
}

impl Inner {
    /// Publishes protection of `slot` at the current epoch and returns it.
    ///
    /// This is a store followed by a load of another location, so it needs a
    /// full fence; it pairs with the fence in [`Inner::compute_safe`], which
    /// sits between a bump of the global epoch and the scan of the slots. Of
    /// the two fences, the later one sees the other side's write: either the
    /// scan sees our slot, or our re-read sees the bumped epoch and we
    /// publish again. When the loop exits, no scan that could free something
    /// we may still see has missed our slot. (Sessions protect once and then
    /// only refresh, so the fence is off the per-operation path.)
    pub(crate) fn protect(&self, slot: &Slot) -> u64 {
        let mut epoch = self.current.load(Ordering::Acquire);
        loop {
            slot.epoch.store(epoch, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let now = self.current.load(Ordering::Acquire);
            if now == epoch {
                return epoch;
            }
            epoch = now;
        }
    }

    /// Moves a protected slot to the current epoch and drains what is safe.
    ///
    /// A slot that is already protected can move forward with a plain release
    /// store: while the store is in flight, scans see the older, smaller
    /// epoch, which only delays actions.
    pub(crate) fn refresh(&self, slot: &Slot) -> u64 {
        if slot.epoch.load(Ordering::Relaxed) == UNPROTECTED {
            // Suspended, or unprotected on the owner's behalf
            // (`LightEpoch::unprotect_slot`): a full protect, with its fence.
            let epoch = self.protect(slot);
            if self.drain.has_pending() {
                self.drain();
            }
            return epoch;
        }
        let epoch = self.current.load(Ordering::Acquire);
        slot.epoch.store(epoch, Ordering::Release);
        if self.drain.has_pending() {
            self.drain();
        }
        epoch
    }

    /// Clears the slot's protection and drains what became safe.
    ///
    /// The fence orders the store before the check of the drain list: a
    /// bumper that installs an action concurrently either is seen here, or
    /// its own drain (after its fence) sees this slot unprotected. Either
    /// way an action that only this slot held back runs now, not at some
    /// later drain.
    pub(crate) fn unprotect(&self, slot: &Slot) {
        slot.epoch.store(UNPROTECTED, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.drain.has_pending() {
            self.drain();
        }
    }

    /// Computes the safe epoch from the table: one less than the oldest epoch
    /// any protected slot holds (or than the current epoch if none).
    ///
    /// The fence pairs with the one in [`Inner::protect`]: every bump of the
    /// global epoch that this scan serves happened before it.
    pub(crate) fn compute_safe(&self) -> u64 {
        let current = self.current.load(Ordering::Acquire);
        fence(Ordering::SeqCst);
        let mut oldest = current;
        for slot in self.table.iter() {
            let epoch = slot.epoch.load(Ordering::Acquire);
            if epoch != UNPROTECTED && epoch < oldest {
                oldest = epoch;
            }
        }
        let safe = oldest - 1;
        let previous = self.safe.fetch_max(safe, Ordering::SeqCst);
        previous.max(safe)
    }

    pub(crate) fn drain(&self) -> usize {
        if !self.drain.has_pending() {
            return 0;
        }
        let safe = self.compute_safe();
        self.drain.run_ready(safe)
    }

    pub(crate) fn bump_epoch(&self, action: Action, own: Option<&Slot>) -> u64 {
        let trigger = self.current.fetch_add(1, Ordering::SeqCst);
        let mut action = action;
        let spin = Spin::new();
        loop {
            match self.drain.try_push(trigger, action) {
                Ok(()) => {
                    self.drain();
                    return trigger + 1;
                }
                Err(back) => action = back,
            }
            // The list is full: help. Our own slot may be what holds the
            // oldest epoch back, so move it forward first.
            if let Some(slot) = own {
                let epoch = self.current.load(Ordering::Acquire);
                slot.epoch.store(epoch, Ordering::Release);
            }
            let safe = self.compute_safe();
            if self.drain.run_ready(safe) == 0 {
                spin.wait();
            }
        }
    }
}
