//! [`CheckpointToken`]: a checkpoint's name, derived from its CPR version.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{RecoveryError, Result};

/// The fixed prefix of every token.
pub const TOKEN_PREFIX: &str = "ckpt-";
/// The number of decimal digits after the prefix (enough for any `u64`).
pub const TOKEN_DIGITS: usize = 20;
/// How many characters of a rejected token an error message repeats.
const MAX_ECHO: usize = 64;

/// A checkpoint's name: `"ckpt-"` followed by its CPR version as exactly 20 zero-padded ASCII
/// decimal digits, e.g. `ckpt-00000000000000000007`.
///
/// A token is also a directory name; parsing is strict, so a token never contains `/`, `..`
/// or anything else a path could be steered with. Tokens order by version.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckpointToken {
    // Compared first: tokens order by version (the name is a function of it).
    version: u64,
    name: [u8; TOKEN_LEN],
}

/// The length of every token in bytes.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + TOKEN_DIGITS;

impl CheckpointToken {
    /// The token of the checkpoint capturing CPR version `version`.
    pub fn for_version(version: u64) -> Self {
        let mut name = [b'0'; TOKEN_LEN];
        name[..TOKEN_PREFIX.len()].copy_from_slice(TOKEN_PREFIX.as_bytes());
        let mut v = version;
        for slot in name[TOKEN_PREFIX.len()..].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        CheckpointToken { version, name }
    }

    /// Parses `s` strictly: the exact prefix, then exactly 20 ASCII digits, nothing else.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: &'static str| RecoveryError::InvalidToken {
            token: s.chars().take(MAX_ECHO).collect(),
            reason,
        };
        let digits = s
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| bad("does not start with \"ckpt-\""))?;
        if digits.len() != TOKEN_DIGITS {
            return Err(bad("expected exactly 20 decimal digits after \"ckpt-\""));
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("contains a character that is not an ASCII digit"));
        }
        let version = digits
            .parse::<u64>()
            .map_err(|_| bad("the version does not fit in 64 bits"))?;
        Ok(CheckpointToken::for_version(version))
    }

    /// The CPR version this token names.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The token as text (also its directory name).
    pub fn as_str(&self) -> &str {
        // Always ASCII (built by `for_version`), so the fallback is never taken.
        std::str::from_utf8(&self.name).unwrap_or_default()
    }
}

impl fmt::Display for CheckpointToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CheckpointToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointToken({self})")
    }
}

impl FromStr for CheckpointToken {
    type Err = RecoveryError;

    fn from_str(s: &str) -> Result<Self> {
        CheckpointToken::parse(s)
    }
}

impl Serialize for CheckpointToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckpointToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_str(TokenVisitor)
    }
}

/// Accepts a string (borrowed or not) and parses it strictly.
struct TokenVisitor;

impl serde::de::Visitor<'_> for TokenVisitor {
    type Value = CheckpointToken;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a checkpoint token \"ckpt-\" followed by 20 decimal digits")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Self::Value, E> {
        CheckpointToken::parse(s).map_err(E::custom)
    }
}
