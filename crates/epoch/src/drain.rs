//! The drain list: actions waiting for their epoch to become safe.
//!
//! A fixed array of cells. Each cell's `epoch` word is either [`FREE`],
//! [`LOCKED`] (someone is installing or taking the action) or the trigger
//! epoch of the action stored in the cell. Ownership of a cell's action moves
//! only through a successful compare-and-swap on that word, which is why an
//! action is never run twice and never lost: installing goes
//! `FREE -> LOCKED -> trigger` and taking goes `trigger -> LOCKED -> FREE`,
//! and only the thread that won the swap into `LOCKED` touches the action.

use crate::sync::{AtomicU64, AtomicUsize, Ordering, UnsafeCell};

/// A deferred action.
pub type Action = Box<dyn FnOnce() + Send + 'static>;

/// The cell holds no action.
const FREE: u64 = u64::MAX;
/// A thread owns the cell's action right now.
const LOCKED: u64 = u64::MAX - 1;

struct Cell {
    epoch: AtomicU64,
    action: UnsafeCell<Option<Action>>,
}

/// The fixed-capacity list of pending actions.
pub(crate) struct DrainList {
    cells: Box<[Cell]>,
    /// Number of actions installed and not yet taken (an over-estimate while
    /// an install is in progress, never an under-estimate).
    pending: AtomicUsize,
}

// SAFETY: a cell's `action` is only accessed by the thread that moved the
// cell's `epoch` word into `LOCKED` with a compare-and-swap (or by `Drop`,
// which has `&mut self`), so the `UnsafeCell` is never accessed concurrently.
// The actions themselves are `Send`.
unsafe impl Sync for DrainList {}
// SAFETY: all fields are owned; the boxed actions are `Send`.
unsafe impl Send for DrainList {}

impl std::fmt::Debug for DrainList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrainList")
            .field("capacity", &self.cells.len())
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl DrainList {
    pub(crate) fn new(capacity: usize) -> Self {
        let cells = (0..capacity)
            .map(|_| Cell {
                epoch: AtomicU64::new(FREE),
                action: UnsafeCell::new(None),
            })
            .collect();
        Self {
            cells,
            pending: AtomicUsize::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cells.len()
    }

    /// Whether any action may be waiting.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) > 0
    }

    /// Number of actions waiting (approximate while installs are in flight).
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Installs `action` to run once `trigger` is safe. Gives the action back
    /// when every cell is taken.
    pub(crate) fn try_push(&self, trigger: u64, action: Action) -> Result<(), Action> {
        debug_assert!(trigger < LOCKED);
        for cell in self.cells.iter() {
            if cell.epoch.load(Ordering::Relaxed) == FREE
                && cell
                    .epoch
                    .compare_exchange(FREE, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // SAFETY: we moved this cell into LOCKED, so we own `action`.
                cell.action.with_mut(|slot| unsafe { *slot = Some(action) });
                self.pending.fetch_add(1, Ordering::AcqRel);
                cell.epoch.store(trigger, Ordering::Release);
                return Ok(());
            }
        }
        Err(action)
    }

    /// Takes every action whose trigger epoch is `<= safe` and runs it, in
    /// this thread, after the cell has been freed. Returns how many ran.
    pub(crate) fn run_ready(&self, safe: u64) -> usize {
        let mut ran = 0;
        for cell in self.cells.iter() {
            let trigger = cell.epoch.load(Ordering::Acquire);
            // FREE and LOCKED are larger than any real epoch, so they never
            // pass this test.
            if trigger <= safe
                && cell
                    .epoch
                    .compare_exchange(trigger, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // SAFETY: we moved this cell into LOCKED, so we own `action`.
                let action = cell.action.with_mut(|slot| unsafe { (*slot).take() });
                cell.epoch.store(FREE, Ordering::Release);
                self.pending.fetch_sub(1, Ordering::AcqRel);
                let action = action.expect("a cell holding a trigger epoch holds an action");
                action();
                ran += 1;
            }
        }
        ran
    }
}

impl Drop for DrainList {
    /// Runs every action still waiting. `Drop` of the list happens only when
    /// the last handle to the epoch is gone, and every participant holds a
    /// handle, so no participant can be protected any more: every epoch is
    /// safe and no action is lost.
    fn drop(&mut self) {
        for cell in self.cells.iter() {
            // SAFETY: `&mut self` gives exclusive access to every cell.
            let action = cell.action.with_mut(|slot| unsafe { (*slot).take() });
            if let Some(action) = action {
                action();
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn counting(c: &Arc<AtomicUsize>) -> Action {
        let c = c.clone();
        Box::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn runs_only_ready_actions_once() {
        let list = DrainList::new(2);
        let c = Arc::new(AtomicUsize::new(0));
        assert!(list.try_push(5, counting(&c)).is_ok());
        assert!(list.try_push(9, counting(&c)).is_ok());
        assert!(list.try_push(1, counting(&c)).is_err(), "full");
        assert_eq!(list.run_ready(4), 0);
        assert_eq!(list.run_ready(5), 1);
        assert_eq!(list.run_ready(5), 0, "not twice");
        assert_eq!(c.load(Ordering::SeqCst), 1);
        assert_eq!(list.pending(), 1);
    }

    #[test]
    fn drop_runs_what_is_left() {
        let c = Arc::new(AtomicUsize::new(0));
        {
            let list = DrainList::new(4);
            assert!(list.try_push(7, counting(&c)).is_ok());
            assert!(list.try_push(8, counting(&c)).is_ok());
        }
        assert_eq!(c.load(Ordering::SeqCst), 2);
    }
}
