//! [`Participant`] (a registered slot) and [`Guard`] (its protection).

use crate::light_epoch::{Inner, LightEpoch};
use crate::sync::Arc;
use crate::table::Slot;
use std::borrow::BorrowMut;

/// A registered participant: owns one slot of the epoch table until dropped.
///
/// A participant is used by one thread at a time (`&mut self` to protect) but
/// may move between threads. Protect it with [`Participant::protect`] for a
/// scoped guard, or turn it into an owned guard with
/// [`Participant::into_guard`] to stay protected across calls, as a session
/// does between its operations.
#[derive(Debug)]
pub struct Participant {
    inner: Arc<Inner>,
    index: usize,
}

impl Participant {
    pub(crate) fn new(inner: Arc<Inner>, index: usize) -> Self {
        Self { inner, index }
    }

    fn slot(&self) -> &Slot {
        self.inner.table.slot(self.index)
    }

    /// The index of this participant's slot in the epoch table.
    pub fn slot_index(&self) -> usize {
        self.index
    }

    /// A handle to the epoch this participant is registered with.
    pub fn epoch(&self) -> LightEpoch {
        LightEpoch {
            inner: self.inner.clone(),
        }
    }

    /// Protects this participant at the current epoch until the guard drops.
    pub fn protect(&mut self) -> Guard<&mut Participant> {
        Guard::new(self)
    }

    /// Protects this participant and keeps it protected inside an owned guard
    /// (`'static`, `Send`), until [`Guard::unprotect`] or drop.
    pub fn into_guard(self) -> Guard<Participant> {
        Guard::new(self)
    }
}

impl Drop for Participant {
    /// Frees the slot. A participant whose guard was leaked (with
    /// `mem::forget`) is still protected: it is unprotected first, since a
    /// dropped participant can no longer read anything.
    fn drop(&mut self) {
        let slot = self.slot();
        if slot.epoch.load(crate::sync::Ordering::Relaxed) != crate::table::UNPROTECTED {
            self.inner.unprotect(slot);
        }
        self.inner.table.release(self.index);
    }
}

/// Protection of one participant: while a guard lives, nothing registered
/// with [`LightEpoch::bump_epoch`] at or after the guard's epoch runs.
///
/// `P` is `&mut Participant` for a scoped guard or `Participant` for an owned
/// one. Dropping the guard unprotects the participant.
#[derive(Debug)]
pub struct Guard<P: BorrowMut<Participant>> {
    participant: Option<P>,
    epoch: u64,
}

impl<P: BorrowMut<Participant>> Guard<P> {
    fn new(participant: P) -> Self {
        let p = participant.borrow();
        let epoch = p.inner.protect(p.slot());
        Self {
            participant: Some(participant),
            epoch,
        }
    }

    fn participant(&self) -> &Participant {
        self.participant
            .as_ref()
            .expect("a guard holds its participant until it unprotects")
            .borrow()
    }

    /// The index of the protected participant's slot in the epoch table.
    pub fn slot_index(&self) -> usize {
        self.participant().slot_index()
    }

    /// The epoch this guard is protected at (as of the last protect or
    /// refresh).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Protects this participant again in full (publish the current epoch,
    /// fence, revalidate), whatever its slot holds: after
    /// [`LightEpoch::unprotect_slot`] acted on its behalf, possibly racing with
    /// it. Costs one fence.
    pub fn reprotect(&mut self) -> u64 {
        let p = self.participant();
        self.epoch = p.inner.protect(p.slot());
        self.epoch
    }

    /// Moves this participant's protection to the current epoch, letting
    /// actions of older epochs run, and runs the pending actions that became
    /// safe. Returns the new epoch. Call it regularly: a participant that
    /// never refreshes holds back every later action. A participant unprotected
    /// on its behalf ([`LightEpoch::unprotect_slot`]) is protected again, in full.
    pub fn refresh(&mut self) -> u64 {
        let p = self.participant();
        self.epoch = p.inner.refresh(p.slot());
        self.epoch
    }

    /// Like [`LightEpoch::bump_epoch`], for a protected caller: while the
    /// drain list is full it also moves its own slot forward, so that it never
    /// waits on itself. After the call the guard is protected at an epoch
    /// `<=` the returned one; [`Guard::epoch`] tells which.
    pub fn bump_epoch(&mut self, action: impl FnOnce() + Send + 'static) -> u64 {
        let p = self.participant();
        let new = p.inner.bump_epoch(Box::new(action), Some(p.slot()));
        let own = p.slot().epoch.load(crate::sync::Ordering::Relaxed);
        self.epoch = own;
        new
    }

    /// Acknowledges that this participant has finished the phase `token`.
    /// Returns `true` to exactly one participant per token: the one that
    /// found every protected participant finished (see [`crate::phase`]).
    pub fn finish_phase(&mut self, token: u64) -> bool {
        let p = self.participant();
        p.inner.finish_phase(p.slot(), token)
    }

    /// Unprotects and gives the participant back.
    pub fn unprotect(mut self) -> P {
        let participant = self
            .participant
            .take()
            .expect("a guard holds its participant until it unprotects");
        let p = participant.borrow();
        p.inner.unprotect(p.slot());
        participant
    }
}

impl<P: BorrowMut<Participant>> Drop for Guard<P> {
    fn drop(&mut self) {
        if let Some(participant) = self.participant.take() {
            let p = participant.borrow();
            p.inner.unprotect(p.slot());
        }
    }
}
