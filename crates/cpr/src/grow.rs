//! Driving an index growth ([`Action::Grow`]) through the state machine: the same state
//! word as checkpoints, so one excludes the other.
//!
//! | phase | driver | each session |
//! |---|---|---|
//! | GROW_PREPARE | act for idle sessions, wait for the rest | acknowledge between operations, then wait for the next phase |
//! | GROW_IN_PROGRESS | split the index and finish the growth ([`GrowHooks::split`]) | help split; use the index again once the growth is over |
//!
//! The store begins the growth in its index *before* [`Cpr::begin`] publishes GROW_PREPARE,
//! so a session that sees GROW_IN_PROGRESS always finds the split to help with. GROW_PREPARE
//! may time out or be cancelled (the state returns to rest, then [`GrowHooks::abort`]);
//! GROW_IN_PROGRESS cannot, because sessions may have split part of the index: it ends when
//! the split does, or when the split fails and the index keeps its old table.

use std::time::{Duration, Instant};

use crate::driver::{Deadline, Started, Waits, wait};
use crate::error::CprError;
use crate::machine::Cpr;
use crate::state::{Action, Phase, SystemState};

/// The store's work in an index growth: `faster-cpr` decides *when*, the store splits.
pub trait GrowHooks {
    /// The store's error type.
    type Error: std::error::Error + 'static;
    /// GROW_IN_PROGRESS: split chunks of the index, and once every chunk is split, finish
    /// the growth. Called repeatedly until it returns `Ok(true)` (the growth is over and the
    /// index uses its new table); an error means the growth failed and the index keeps its
    /// old table.
    fn split(&mut self) -> Result<bool, Self::Error>;
    /// The growth was given up in GROW_PREPARE (the state is at rest again): drop what the
    /// store prepared for it.
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

struct GrowWaits<'a, H>(&'a mut H);

impl<H: GrowHooks> Waits for GrowWaits<'_, H> {
    fn cancelled(&mut self) -> bool {
        self.0.cancelled()
    }
    fn help(&mut self) -> bool {
        self.0.help()
    }
}

impl Cpr {
    /// Drives an index growth claimed with [`Cpr::begin`]`(Action::Grow)` to its end on the
    /// calling thread, which must not be a session of this state machine. Returns the version
    /// the growth ran in (sessions then work in the next, as after any action).
    pub fn finish_grow<H: GrowHooks>(
        &self,
        mut started: Started,
        timeout: Duration,
        hooks: &mut H,
    ) -> Result<u64, CprError<H::Error>> {
        let s = &*self.shared;
        let Some(first) = started.first.take() else {
            return Ok(s.load().version);
        };
        if first.action != Action::Grow || first.phase == Phase::Rest {
            return Err(CprError::Lost {
                version: first.version,
                found: s.load(),
            });
        }
        #[cfg(not(loom))]
        s.set_driver(Some(std::thread::current()));
        let result = self.drive_grow(first, Deadline::after(timeout), started.at, hooks);
        #[cfg(not(loom))]
        s.set_driver(None);
        s.prune();
        result
    }

    fn drive_grow<H: GrowHooks>(
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
            if g.version != version || g.action != Action::Grow || g.phase == Phase::Rest {
                return Err(CprError::Lost { version, found: g });
            }
            match g.phase {
                Phase::GrowPrepare => {
                    if let Err(e) = self.await_phase(g, deadline, start, &mut GrowWaits(hooks)) {
                        // The state is at rest again: nobody splits any more.
                        hooks.abort();
                        return Err(e);
                    }
                }
                Phase::GrowInProgress => match hooks.split() {
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
