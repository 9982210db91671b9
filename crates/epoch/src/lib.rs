//! # faster-epoch: epoch protection in the style of FASTER's `LightEpoch`
//!
//! Epoch protection lets many threads read shared memory without locks while
//! others retire it: a thread *protects* itself before it touches shared
//! state and *refreshes* regularly; whoever changes shared state publishes
//! the change and then *bumps* the global epoch with an action (free a page,
//! advance a region boundary, move a state machine) that runs only once
//! every participant that might still see the old state has moved on.
//!
//! ## What this crate owns
//!
//! * [`LightEpoch`]: the global epoch, a fixed table of cache-padded slots
//!   (one per [`Participant`]), and the drain list of pending actions.
//! * [`Participant`]: a registered slot; [`Guard`]: its protection (RAII),
//!   with [`Guard::refresh`], [`Guard::bump_epoch`] and
//!   [`Guard::finish_phase`].
//! * The phase-acknowledgement hook of the CPR state machine; see
//!   [`phase`] for the rule.
//!
//! ## Invariants
//!
//! * An action registered by [`LightEpoch::bump_epoch`] when the epoch moved
//!   from `e` to `e + 1` runs exactly once, and only after every slot that
//!   was protected at an epoch `<= e` has refreshed past it or unprotected.
//!   [`LightEpoch::safe_to_reclaim_epoch`] is the largest such `e`.
//! * The drain list never loses an action: when it is full, the caller helps
//!   drain and retries; it never runs an action early, and it never sleeps.
//!   Actions still pending when the last handle drops run then, when no
//!   participant can be protected any more.
//! * Exactly one participant is told it is the last to finish a phase.
//! * Registering more participants than slots is an error
//!   ([`EpochError::TableFull`]), not a panic.
//!
//! ## Boundaries
//!
//! This crate knows nothing about logs, pages, records, indexes or
//! checkpoints: an action is an opaque closure and a phase an opaque,
//! growing `u64` token. It is a leaf of the workspace.
//!
//! ## Concurrency checking
//!
//! All atomics come through a private `sync` module that switches to `loom`
//! under `--cfg loom`; `tests/loom.rs` model-checks this crate's real code.
//!
//! ## Example
//!
//! ```
//! use faster_epoch::LightEpoch;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! let epoch = LightEpoch::new();
//! let mut reader = epoch.register()?;
//! let freed = Arc::new(AtomicBool::new(false));
//!
//! let guard = reader.protect();
//! let flag = freed.clone();
//! epoch.bump_epoch(move || flag.store(true, Ordering::SeqCst));
//! assert!(!freed.load(Ordering::SeqCst), "the reader is still protected");
//! drop(guard); // unprotect: the action becomes safe and runs
//! assert!(freed.load(Ordering::SeqCst));
//! # Ok::<(), faster_epoch::EpochError>(())
//! ```

mod drain;
mod error;
mod light_epoch;
mod participant;
pub mod phase;
use faster_sync as sync;
mod table;

pub use drain::Action;
pub use error::{EpochError, Result};
pub use light_epoch::{DEFAULT_DRAIN_LIST, DEFAULT_PARTICIPANTS, LightEpoch};
pub use participant::{Guard, Participant};
