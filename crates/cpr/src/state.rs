//! The system state: (action, phase, version) packed in one 64-bit word.

use std::fmt;

/// A phase of the CPR state machine, in the order a full checkpoint visits
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Phase {
    /// No checkpoint is running.
    Rest = 0,
    /// Every session learns that an index checkpoint starts (acknowledged).
    PrepIndexChkpt = 1,
    /// The driver writes the fuzzy index checkpoint.
    IndexChkpt = 2,
    /// Sessions stop sending writes to disk and look out for version v+1
    /// records (acknowledged).
    Prepare = 3,
    /// The version is v+1: each session swaps its contexts at its cut
    /// (acknowledged).
    InProgress = 4,
    /// Every session's version-v pending operations drain (acknowledged).
    WaitPending = 5,
    /// The driver makes the log of version v durable (fold-over flush or
    /// snapshot).
    WaitFlush = 6,
    /// The driver writes the checkpoint metadata.
    PersistenceCallback = 7,
    /// Index growth: every session learns that the index is about to double and stops
    /// using it (acknowledged; a session that acknowledged waits until the next phase).
    GrowPrepare = 8,
    /// Index growth: the index is split into its doubled table; sessions help, and use
    /// the index again only once the split is over.
    GrowInProgress = 9,
    /// Moving the log's begin address: every session learns that the begin is about to
    /// move (acknowledged between operations, once it has nothing pending), so that no
    /// operation that started before the shift is still running when it happens.
    ShiftPrepare = 10,
    /// Moving the log's begin address: the store shifts it and cleans the index of entries
    /// below it; sessions work as usual.
    ShiftInProgress = 11,
}

impl Phase {
    const ALL: [Phase; 12] = [
        Phase::Rest,
        Phase::PrepIndexChkpt,
        Phase::IndexChkpt,
        Phase::Prepare,
        Phase::InProgress,
        Phase::WaitPending,
        Phase::WaitFlush,
        Phase::PersistenceCallback,
        Phase::GrowPrepare,
        Phase::GrowInProgress,
        Phase::ShiftPrepare,
        Phase::ShiftInProgress,
    ];

    fn from_u8(v: u8) -> Phase {
        Phase::ALL.get(v as usize).copied().unwrap_or(Phase::Rest)
    }

    /// Whether this is a phase of index growth, in which sessions must not use the index
    /// on their own (see [`Phase::GrowPrepare`]).
    pub fn is_growth(self) -> bool {
        matches!(self, Phase::GrowPrepare | Phase::GrowInProgress)
    }

    /// Whether this is a phase of a shift of the log's begin address.
    pub fn is_shift(self) -> bool {
        matches!(self, Phase::ShiftPrepare | Phase::ShiftInProgress)
    }

    /// Whether every session must acknowledge this phase before the state
    /// machine leaves it. The other phases are the driver's alone.
    pub fn needs_ack(self) -> bool {
        matches!(
            self,
            Phase::PrepIndexChkpt
                | Phase::Prepare
                | Phase::InProgress
                | Phase::WaitPending
                | Phase::GrowPrepare
                | Phase::ShiftPrepare
        )
    }

    /// Whether a session acknowledges this phase only once it has no operations pending
    /// of the phase's version (WAIT_PENDING, SHIFT_PREPARE).
    pub fn waits_for_pending(self) -> bool {
        matches!(self, Phase::WaitPending | Phase::ShiftPrepare)
    }

    /// The phase's name as FASTER spells it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Rest => "REST",
            Phase::PrepIndexChkpt => "PREP_INDEX_CHKPT",
            Phase::IndexChkpt => "INDEX_CHKPT",
            Phase::Prepare => "PREPARE",
            Phase::InProgress => "IN_PROGRESS",
            Phase::WaitPending => "WAIT_PENDING",
            Phase::WaitFlush => "WAIT_FLUSH",
            Phase::PersistenceCallback => "PERSISTENCE_CALLBACK",
            Phase::GrowPrepare => "GROW_PREPARE",
            Phase::GrowInProgress => "GROW_IN_PROGRESS",
            Phase::ShiftPrepare => "SHIFT_PREPARE",
            Phase::ShiftInProgress => "SHIFT_IN_PROGRESS",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What runs on the state machine (a checkpoint and what it captures, or index growth); it
/// selects the sequence of phases. One action at a time: the state word makes them
/// mutually exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Action {
    /// Nothing is running.
    None = 0,
    /// Index and log: PREP_INDEX_CHKPT, INDEX_CHKPT, PREPARE, IN_PROGRESS,
    /// WAIT_PENDING, WAIT_FLUSH, PERSISTENCE_CALLBACK.
    Full = 1,
    /// The index only: PREP_INDEX_CHKPT, INDEX_CHKPT.
    IndexOnly = 2,
    /// The log only: PREPARE, IN_PROGRESS, WAIT_PENDING, WAIT_FLUSH,
    /// PERSISTENCE_CALLBACK.
    LogOnly = 3,
    /// Index growth, no checkpoint: GROW_PREPARE, GROW_IN_PROGRESS.
    Grow = 4,
    /// A shift of the log's begin address (after a compaction), no checkpoint:
    /// SHIFT_PREPARE, SHIFT_IN_PROGRESS.
    Shift = 5,
}

impl Action {
    fn from_u8(v: u8) -> Action {
        match v {
            1 => Action::Full,
            2 => Action::IndexOnly,
            3 => Action::LogOnly,
            4 => Action::Grow,
            5 => Action::Shift,
            _ => Action::None,
        }
    }

    /// The first phase of this action's checkpoint.
    pub fn first_phase(self) -> Phase {
        match self {
            Action::None => Phase::Rest,
            Action::Full | Action::IndexOnly => Phase::PrepIndexChkpt,
            Action::LogOnly => Phase::Prepare,
            Action::Grow => Phase::GrowPrepare,
            Action::Shift => Phase::ShiftPrepare,
        }
    }

    /// Whether the checkpoint captures the log (and so moves the version
    /// across a cut).
    pub fn captures_log(self) -> bool {
        matches!(self, Action::Full | Action::LogOnly)
    }
}

/// Bits of the version field: versions never wrap in practice (2^40
/// checkpoints); records keep the low 32 bits and compare them wrap-safely.
pub const VERSION_BITS: u32 = 40;
const VERSION_MASK: u64 = (1 << VERSION_BITS) - 1;

/// The system state: which checkpoint runs (action), where it is (phase) and
/// its version `v`, the version the checkpoint captures. While the phase is
/// IN_PROGRESS or later, sessions that crossed the cut work in `v + 1`.
///
/// Packed as `version (40 bits) | phase << 40 | action << 48` in one atomic
/// word.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SystemState {
    /// The running checkpoint's kind ([`Action::None`] at rest).
    pub action: Action,
    /// The phase.
    pub phase: Phase,
    /// The checkpoint's version `v` (at rest: the version every session
    /// works in).
    pub version: u64,
}

impl SystemState {
    /// At rest in `version`.
    pub fn rest(version: u64) -> Self {
        SystemState {
            action: Action::None,
            phase: Phase::Rest,
            version: version & VERSION_MASK,
        }
    }

    /// The packed word.
    pub fn pack(self) -> u64 {
        (self.version & VERSION_MASK)
            | (self.phase as u64) << VERSION_BITS
            | (self.action as u64) << (VERSION_BITS + 8)
    }

    /// Unpacks a word made by [`SystemState::pack`].
    pub fn unpack(word: u64) -> Self {
        SystemState {
            version: word & VERSION_MASK,
            phase: Phase::from_u8((word >> VERSION_BITS) as u8),
            action: Action::from_u8((word >> (VERSION_BITS + 8)) as u8),
        }
    }

    /// The version a session at this state works in: `v + 1` from
    /// IN_PROGRESS on (for checkpoints that capture the log), else `v`.
    pub fn session_version(self) -> u64 {
        if self.action.captures_log() && self.phase >= Phase::InProgress {
            (self.version + 1) & VERSION_MASK
        } else {
            self.version
        }
    }

    /// The phase-acknowledgement token of this state for `faster-epoch`:
    /// strictly increasing along every run of the state machine, across
    /// checkpoints too (each checkpoint, finished or failed, ends at rest in a
    /// higher version), and never 0 for a phase that needs acknowledgement.
    pub fn token(self) -> u64 {
        self.version << 8 | self.phase as u64
    }

    /// The state after this one: the next phase of the action, or rest in
    /// `v + 1` after the last.
    pub fn next(self) -> SystemState {
        use Phase::*;
        let phase = match (self.action, self.phase) {
            (Action::None, _) => return self,
            (Action::Full, PrepIndexChkpt) | (Action::IndexOnly, PrepIndexChkpt) => IndexChkpt,
            (Action::Full, IndexChkpt) => Prepare,
            (Action::IndexOnly, IndexChkpt) => return SystemState::rest(self.version + 1),
            (_, Rest) => self.action.first_phase(),
            (_, Prepare) => InProgress,
            (_, InProgress) => WaitPending,
            (_, WaitPending) => WaitFlush,
            (_, WaitFlush) => PersistenceCallback,
            (_, PersistenceCallback) => return SystemState::rest(self.version + 1),
            (_, GrowPrepare) => GrowInProgress,
            (_, GrowInProgress) => return SystemState::rest(self.version + 1),
            (_, ShiftPrepare) => ShiftInProgress,
            (_, ShiftInProgress) => return SystemState::rest(self.version + 1),
            (Action::LogOnly | Action::Grow | Action::Shift, PrepIndexChkpt | IndexChkpt) => {
                Prepare
            }
        };
        SystemState { phase, ..self }
    }

    /// The state a failed checkpoint falls back to: rest in `v + 1` (a failed
    /// attempt uses up its version, so that acknowledgement tokens keep
    /// growing).
    pub fn abandoned(self) -> SystemState {
        SystemState::rest(self.version + 1)
    }
}

impl fmt::Debug for SystemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(v{}, {:?})", self.phase, self.version, self.action)
    }
}

impl fmt::Display for SystemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of version {}", self.phase, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks() {
        for action in [
            Action::None,
            Action::Full,
            Action::IndexOnly,
            Action::LogOnly,
            Action::Grow,
            Action::Shift,
        ] {
            for phase in Phase::ALL {
                for version in [0, 1, 7, VERSION_MASK] {
                    let s = SystemState {
                        action,
                        phase,
                        version,
                    };
                    assert_eq!(SystemState::unpack(s.pack()), s);
                }
            }
        }
    }

    fn run(action: Action, v: u64) -> Vec<SystemState> {
        let mut s = SystemState {
            action,
            phase: action.first_phase(),
            version: v,
        };
        let mut out = vec![s];
        while s.phase != Phase::Rest {
            s = s.next();
            out.push(s);
        }
        out
    }

    #[test]
    fn phase_orders() {
        use Phase::*;
        let phases = |a| run(a, 3).iter().map(|s| s.phase).collect::<Vec<_>>();
        assert_eq!(
            phases(Action::Full),
            [
                PrepIndexChkpt,
                IndexChkpt,
                Prepare,
                InProgress,
                WaitPending,
                WaitFlush,
                PersistenceCallback,
                Rest
            ]
        );
        assert_eq!(
            phases(Action::IndexOnly),
            [PrepIndexChkpt, IndexChkpt, Rest]
        );
        assert_eq!(
            phases(Action::LogOnly),
            [
                Prepare,
                InProgress,
                WaitPending,
                WaitFlush,
                PersistenceCallback,
                Rest
            ]
        );
        assert_eq!(phases(Action::Grow), [GrowPrepare, GrowInProgress, Rest]);
        assert_eq!(run(Action::Full, 3).last().unwrap().version, 4);
        assert_eq!(run(Action::Grow, 3).last().unwrap().version, 4);
        assert_eq!(phases(Action::Shift), [ShiftPrepare, ShiftInProgress, Rest]);
        assert_eq!(run(Action::Shift, 3).last().unwrap().version, 4);
    }

    #[test]
    fn tokens_grow_across_checkpoints() {
        let mut all = run(Action::Full, 1);
        all.extend(run(Action::IndexOnly, 2));
        all.extend(run(Action::LogOnly, 3));
        all.extend(run(Action::Grow, 4));
        all.extend(run(Action::Shift, 5));
        all.extend(run(Action::Full, 6));
        let tokens: Vec<u64> = all
            .iter()
            .filter(|s| s.phase.needs_ack())
            .map(|s| s.token())
            .collect();
        assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
        assert!(tokens.iter().all(|&t| t != 0));
    }

    #[test]
    fn session_version_moves_at_in_progress() {
        let v: Vec<u64> = run(Action::Full, 5)
            .iter()
            .map(|s| s.session_version())
            .collect();
        assert_eq!(v, [5, 5, 5, 6, 6, 6, 6, 6]);
        let v: Vec<u64> = run(Action::IndexOnly, 5)
            .iter()
            .map(|s| s.session_version())
            .collect();
        assert_eq!(v, [5, 5, 6]);
    }
}
