//! [`SessionId`]: the identity of a session, in errors, checkpoints and recovery.

use std::fmt;
use std::str::FromStr;

/// The identity of a session, unique within its store. Displays and parses as a decimal
/// number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    pub(crate) fn from_raw(id: u64) -> SessionId {
        SessionId(id)
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for SessionId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        s.parse().map(SessionId)
    }
}
