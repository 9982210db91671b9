//! The epoch table: one cache-padded slot per registered participant.

use crate::sync::{AtomicBool, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// Epoch value of a slot that is not protected.
pub(crate) const UNPROTECTED: u64 = 0;

/// Phase marker of a slot that has finished no phase yet.
pub(crate) const NO_PHASE: u64 = 0;

/// One participant's slot. Padded to its own cache line(s) so that a
/// participant's refresh never invalidates another participant's line.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The epoch this participant is protected at, or [`UNPROTECTED`].
    pub(crate) epoch: AtomicU64,
    /// The largest phase token this participant has finished.
    pub(crate) phase: AtomicU64,
    /// Whether a live [`crate::Participant`] owns this slot.
    pub(crate) in_use: AtomicBool,
}

/// The fixed table of slots.
#[derive(Debug)]
pub(crate) struct Table {
    slots: Box<[CachePadded<Slot>]>,
}

impl Table {
    pub(crate) fn new(capacity: usize) -> Self {
        let slots = (0..capacity)
            .map(|_| {
                CachePadded::new(Slot {
                    epoch: AtomicU64::new(UNPROTECTED),
                    phase: AtomicU64::new(NO_PHASE),
                    in_use: AtomicBool::new(false),
                })
            })
            .collect();
        Self { slots }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn slot(&self, index: usize) -> &Slot {
        &self.slots[index]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().map(|s| &**s)
    }

    /// Claims a free slot, resetting its phase marker, and returns its index.
    pub(crate) fn claim(&self) -> Option<usize> {
        for (index, slot) in self.slots.iter().enumerate() {
            if !slot.in_use.load(Ordering::Relaxed)
                && slot
                    .in_use
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // The marker was reset when the slot was released, so a new
                // participant has finished no phase: it must acknowledge every
                // phase it takes part in (see `crate::phase`).
                return Some(index);
            }
        }
        None
    }

    /// Returns a slot to the free pool. The slot must be unprotected.
    ///
    /// The phase marker is reset *after* the slot was unprotected, with a
    /// release store: a phase scan that reads the reset marker then reads the
    /// unprotected epoch (see `crate::phase`).
    pub(crate) fn release(&self, index: usize) {
        let slot = self.slot(index);
        slot.phase.store(NO_PHASE, Ordering::Release);
        slot.in_use.store(false, Ordering::Release);
    }

    /// Registered slots (for diagnostics).
    pub(crate) fn registered(&self) -> usize {
        self.iter()
            .filter(|s| s.in_use.load(Ordering::Relaxed))
            .count()
    }
}
