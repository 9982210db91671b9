//! Driving the store's actions that are not checkpoints through the state machine: index
//! growth ([`Action::Grow`]) and the shift of the log's begin address ([`Action::Shift`]).
//! They use the same state word as checkpoints, so one excludes the others. Each has two
//! phases: one every session acknowledges, then the store's work.
//!
//! | phase | driver | each session |
//! |---|---|---|
//! | GROW_PREPARE | act for idle sessions, wait for the rest | acknowledge between operations, then wait for the next phase |
//! | GROW_IN_PROGRESS | split the index and finish the growth ([`ActionHooks::work`]) | help split; use the index again once the growth is over |
//! | SHIFT_PREPARE | act for idle sessions, wait for the rest | acknowledge between operations once nothing is pending |
//! | SHIFT_IN_PROGRESS | shift the begin address, clean the index ([`ActionHooks::work`]) | work as usual |
//!
//! For a growth, the store begins the growth in its index *before* [`Cpr::begin`]
//! publishes GROW_PREPARE, so a session that sees GROW_IN_PROGRESS always finds the split to
//! help with. The first phase may time out or be cancelled (the state returns to rest, then
//! [`ActionHooks::abort`]); the second cannot, because sessions may have split part of the
//! index: it ends when the store's work does, or when that work fails.
//!
//! SHIFT_PREPARE is what makes a shift safe: once every session has acknowledged it, no
//! operation that began before it (a read that loaded an index entry the compaction has
//! replaced since, a pending read) is still running, so none can follow a chain into the
//! records the shift takes away.

use std::time::{Duration, Instant};

use crate::driver::{Deadline, Started, Waits, wait};
use crate::error::CprError;
use crate::machine::Cpr;
use crate::state::{Action, Phase, SystemState};

/// The store's work in a growth or a shift: `faster-cpr` decides *when*, the store works.
pub trait ActionHooks {
    /// The store's error type.
    type Error: std::error::Error + 'static;
    /// The second phase (GROW_IN_PROGRESS: split chunks of the index and, once every chunk
    /// is split, finish the growth; SHIFT_IN_PROGRESS: shift the begin address and clean
    /// the index). Called repeatedly until it returns `Ok(true)` (the work is over); an
    /// error means it failed (a growth's index keeps its old table).
    fn work(&mut self) -> Result<bool, Self::Error>;
    /// The action was given up in its first phase (the state is at rest again): drop what
    /// the store prepared for it.
    fn abort(&mut self);
    /// Called while waiting for sessions: finish device I/O. Returns whether I/O is still in
    /// flight. The default does nothing.
    fn help(&mut self) -> bool {
        false
    }
    /// Whether to give up the wait for sessions now (the store is closing). The default never
    /// does.
    fn cancelled(&mut self) -> bool {
        false
    }
}

struct ActionWaits<'a, H>(&'a mut H);

impl<H: ActionHooks> Waits for ActionWaits<'_, H> {
    fn cancelled(&mut self) -> bool {
        self.0.cancelled()
    }
    fn help(&mut self) -> bool {
        self.0.help()
    }
}

impl Cpr {
    /// Drives a growth or a shift claimed with [`Cpr::begin`]`(Action::Grow)` or
    /// `(Action::Shift)` to its end on the calling thread, which must not be a session of
    /// this state machine. Returns the version the action ran in (sessions then work in the
    /// next, as after any action).
    pub fn finish_action<H: ActionHooks>(
        &self,
        mut started: Started,
        timeout: Duration,
        hooks: &mut H,
    ) -> Result<u64, CprError<H::Error>> {
        let s = &*self.shared;
        let Some(first) = started.first.take() else {
            return Ok(s.load().version);
        };
        if !matches!(first.action, Action::Grow | Action::Shift) || first.phase == Phase::Rest {
            return Err(CprError::Lost {
                version: first.version,
                found: s.load(),
            });
        }
        #[cfg(not(loom))]
        s.set_driver(Some(std::thread::current()));
        let result = self.drive_action(first, Deadline::after(timeout), started.at, hooks);
        #[cfg(not(loom))]
        s.set_driver(None);
        s.prune();
        result
    }

    fn drive_action<H: ActionHooks>(
        &self,
        first: SystemState,
        deadline: Deadline,
        start: Instant,
        hooks: &mut H,
    ) -> Result<u64, CprError<H::Error>> {
        let s = &*self.shared;
        let version = first.version;
        loop {
            let g = s.load();
            if g.version != version || g.action != first.action || g.phase == Phase::Rest {
                return Err(CprError::Lost { version, found: g });
            }
            match g.phase {
                Phase::GrowPrepare | Phase::ShiftPrepare => {
                    if let Err(e) = self.await_phase(g, deadline, start, &mut ActionWaits(hooks)) {
                        // The state is at rest again: nobody splits any more.
                        hooks.abort();
                        return Err(e);
                    }
                }
                Phase::GrowInProgress | Phase::ShiftInProgress => match hooks.work() {
                    Ok(true) => {
                        return if s.advance(g) {
                            Ok(version)
                        } else {
                            Err(CprError::Lost {
                                version,
                                found: s.load(),
                            })
                        };
                    }
                    // Other threads are splitting their last chunks.
                    Ok(false) => wait(Deadline::Never, true),
                    Err(source) => {
                        s.advance(g);
                        return Err(CprError::Store {
                            phase: g.phase,
                            version,
                            source,
                        });
                    }
                },
                _ => return Err(CprError::Lost { version, found: g }),
            }
        }
    }
}
