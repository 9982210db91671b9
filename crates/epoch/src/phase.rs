//! Phase acknowledgement: who is the last participant to finish a phase.
//!
//! This is the hook the CPR state machine builds on (FASTER's
//! `FinishThreadPhase`). A phase is named by a **token**, a `u64` chosen by
//! the caller. Tokens must grow strictly from one phase to the next (for
//! example `version << 8 | phase`), and `0` is reserved for "no phase".
//!
//! # The rule
//!
//! * A participant finishes phase `t` with [`crate::Guard::finish_phase`]: it
//!   writes `t` into its own slot, then scans the table.
//! * A phase is complete when **every protected slot** has finished it, that
//!   is holds a token `>= t`. Unprotected slots, idle participants, are
//!   skipped: they cannot block a phase.
//! * The participant that sees the phase complete then tries to move the
//!   shared "completed phase" word from below `t` to `t`. Only one swap can
//!   succeed, so **exactly one** caller per token is told it is the last, and
//!   it alone advances the state machine.
//! * Observers ([`crate::LightEpoch::register_observer`]) carry the largest
//!   token from the start: they never hold a phase open.
//! * A state machine that does an idle participant's phase work itself may
//!   mark that participant's slot with
//!   [`crate::LightEpoch::finish_phase_for`], under the same rule.
//! * A slot that is protected but has not finished `t` holds the phase open.
//!   If such a participant unprotects instead of finishing, nobody may be
//!   left to see the phase complete: whoever drives the state machine (the
//!   thread that started the checkpoint, or the unprotecting participant)
//!   calls [`crate::LightEpoch::try_complete_phase`], which runs the same
//!   scan and the same single swap without marking a slot.
//! * A participant that protects while a phase is in progress has not
//!   finished it (a newly registered slot starts at "no phase", and an old
//!   marker is below the new token), so it holds the phase until it, too,
//!   acknowledges. The state machine must therefore make every participant
//!   read the global phase *after* it protects, and do that phase's work
//!   before it acknowledges.
//!
//! Marking and scanning are separated by a sequentially consistent fence: of
//! two participants that finish concurrently, the one whose fence comes
//! second sees the other's mark, so a phase that every protected participant has
//! finished is always seen complete by at least one of them.

use crate::light_epoch::Inner;
use crate::sync::{Ordering, fence};
use crate::table::{Slot, UNPROTECTED};

impl Inner {
    /// Marks `slot` as having finished `token`, then tries to complete it.
    pub(crate) fn finish_phase(&self, slot: &Slot, token: u64) -> bool {
        assert!(token != 0, "phase token 0 is reserved for `no phase`");
        slot.phase.fetch_max(token, Ordering::Release);
        self.try_complete_phase(token)
    }

    /// Claims completion of `token` if every protected slot has finished it.
    pub(crate) fn try_complete_phase(&self, token: u64) -> bool {
        // Pairs with the fence of every other finisher: of two finishers, the
        // one whose fence comes later sees the other's mark.
        fence(Ordering::SeqCst);
        if !self.phase_finished_by_all(token) {
            return false;
        }
        let mut completed = self.phase_completed.load(Ordering::SeqCst);
        while completed < token {
            match self.phase_completed.compare_exchange(
                completed,
                token,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => completed = now,
            }
        }
        false
    }

    /// Whether every protected slot has finished `token`.
    ///
    /// The phase marker is read before the epoch. A participant that leaves
    /// stores "unprotected" first and resets its marker after (see
    /// `Table::release`), so a reset marker seen here implies an unprotected
    /// slot is seen too: a leaving participant that had finished the phase is
    /// never mistaken for a protected one that has not.
    fn phase_finished_by_all(&self, token: u64) -> bool {
        self.table.iter().all(|slot| {
            slot.phase.load(Ordering::Acquire) >= token
                || slot.epoch.load(Ordering::Acquire) == UNPROTECTED
        })
    }
}
