//! # faster-cpr: the Concurrent Prefix Recovery state machine
//!
//! This crate owns the CPR checkpoint protocol of the faster store:
//!
//! * the system state, (action, phase, version) packed in one atomic word
//!   ([`SystemState`]), and the phase order of full, index-only and log-only
//!   checkpoints ([`Action`], [`Phase`]);
//! * each session's membership ([`Membership`]): its view of the phases, its
//!   cut (the serial of its last operation of version `v`, taken where it
//!   crosses to `v + 1`), the [`Rules`] its operations follow in each phase,
//!   and acknowledgement through `faster-epoch`'s phase-finished hook;
//! * index growth ([`Action::Grow`]) and the shift of the log's begin address
//!   ([`Action::Shift`]), driven by [`Cpr::finish_action`] with [`ActionHooks`]: the same
//!   state word, so no two of a growth, a shift and a checkpoint overlap; sessions stop
//!   using the index between operations in GROW_PREPARE and help split it in
//!   GROW_IN_PROGRESS; they acknowledge SHIFT_PREPARE between operations once nothing of
//!   theirs is pending;
//! * the driver ([`Cpr::run`]): global transitions by compare-and-swap (only
//!   the winner proceeds), the store's work in the phases it owns, through
//!   [`CheckpointHooks`], WAIT_PENDING draining with a deadline, and the
//!   acknowledgement of idle sessions on their behalf (see the `member`
//!   module: an asymmetric fence handshake keeps the session fast path free
//!   of locked instructions).
//!
//! ## The protocol in one table
//!
//! | phase | driver | each session |
//! |---|---|---|
//! | PREP_INDEX_CHKPT | - | acknowledge |
//! | INDEX_CHKPT | write the fuzzy index | - |
//! | PREPARE | - | finish pending writes, acknowledge; from now on detect records of `v + 1` (shift) and do not send writes pending |
//! | IN_PROGRESS (`v + 1`) | - | take the cut, acknowledge |
//! | WAIT_PENDING | help with I/O | acknowledge once nothing of version `<= v` is pending |
//! | WAIT_FLUSH | flush or snapshot the log | - |
//! | PERSISTENCE_CALLBACK | write metadata with every cut | - |
//!
//! Between IN_PROGRESS and WAIT_FLUSH, operations never update a record of
//! an older version in place (they copy it to the tail). Writes never go
//! pending across a cut, which is this crate's answer to FASTER's
//! per-bucket checkpoint locks: a version-`v` write can never complete after
//! a version-`v + 1` write to the same key.
//!
//! It knows only `faster-epoch`. It must not know about records, pages,
//! buckets, devices or files: the store does that work through
//! [`CheckpointHooks`] and [`SessionWork`].

mod driver;
mod error;
pub mod fence;
mod machine;
mod member;
mod shared;
pub mod state;
mod store_action;
use faster_sync as sync;

pub use driver::{CheckpointDone, CheckpointHooks, Started};
pub use error::CprError;
pub use machine::Cpr;
pub use member::{MAX_SERIAL, Membership, Rules, SessionCut, SessionWork};
pub use shared::PhaseObserver;
pub use state::{Action, Phase, SystemState};
pub use store_action::ActionHooks;
