//! The lines the crash child prints ([`super::child`]) and their parsing.

use std::collections::BTreeMap;
use std::time::Duration;

use faster::SessionId;

use crate::error::{CliError, Result};

/// A checkpoint the child reported durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    /// The version it captured.
    pub version: u64,
    /// How long it took.
    pub duration: Duration,
    /// Bytes it wrote (index and log).
    pub bytes: u64,
    /// Every session's cut.
    pub cuts: BTreeMap<SessionId, u64>,
}

/// One line of the child's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// `SESSION <i> <id>`.
    Session(SessionId),
    /// `CKPT <version> <micros> <bytes> <id>:<t>,...`.
    Checkpoint(Reported),
    /// `GROW <bits>`: the index grew to `2^bits` buckets.
    Grow(u32),
    /// `GROW-BEGIN <bits>`: a growth of the index from `2^bits` buckets begins.
    GrowBegin(u32),
    /// `COMPACT <begin>`: a compaction ended, the log now begins at `begin`.
    Compact(u64),
    /// `ERR <message>`.
    Error(String),
    /// Anything else (ignored).
    Other,
}

impl Line {
    /// Parses one line; a malformed `SESSION` or `CKPT` line is [`CliError::Failed`].
    pub fn parse(line: &str) -> Result<Line> {
        let bad = || CliError::Failed(format!("malformed line from the child: {line:?}"));
        let num = |s: Option<&str>| s.and_then(|s| s.parse::<u64>().ok()).ok_or_else(bad);
        if let Some(rest) = line.strip_prefix("SESSION ") {
            let id = rest.split(' ').nth(1).and_then(|id| id.parse().ok());
            return id.map(Line::Session).ok_or_else(bad);
        }
        if let Some(rest) = line.strip_prefix("CKPT ") {
            let mut parts = rest.split(' ');
            let version = num(parts.next())?;
            let duration = Duration::from_micros(num(parts.next())?);
            let bytes = num(parts.next())?;
            let cuts = parts
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|c| !c.is_empty())
                .map(|c| {
                    let (id, t) = c.split_once(':').ok_or_else(bad)?;
                    Ok((id.parse().map_err(|_| bad())?, num(Some(t))?))
                })
                .collect::<Result<_>>()?;
            return Ok(Line::Checkpoint(Reported {
                version,
                duration,
                bytes,
                cuts,
            }));
        }
        if let Some(rest) = line.strip_prefix("GROW-BEGIN ") {
            return rest.parse().map(Line::GrowBegin).map_err(|_| bad());
        }
        if let Some(rest) = line.strip_prefix("GROW ") {
            return rest.parse().map(Line::Grow).map_err(|_| bad());
        }
        if let Some(rest) = line.strip_prefix("COMPACT ") {
            return rest.parse().map(Line::Compact).map_err(|_| bad());
        }
        if let Some(rest) = line.strip_prefix("ERR ") {
            return Ok(Line::Error(rest.to_string()));
        }
        Ok(Line::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse() {
        assert!(matches!(Line::parse("SESSION 0 7"), Ok(Line::Session(_))));
        let Ok(Line::Checkpoint(r)) = Line::parse("CKPT 3 1500 4096 1:10,2:20") else {
            panic!("checkpoint line");
        };
        assert_eq!((r.version, r.bytes, r.cuts.len()), (3, 4096, 2));
        assert_eq!(r.duration, Duration::from_micros(1500));
        assert!(Line::parse("CKPT x").is_err());
        assert_eq!(Line::parse("GROW 12").ok(), Some(Line::Grow(12)));
        assert_eq!(Line::parse("GROW-BEGIN 11").ok(), Some(Line::GrowBegin(11)));
        assert!(Line::parse("GROW x").is_err());
        assert_eq!(Line::parse("COMPACT 4096").ok(), Some(Line::Compact(4096)));
        assert_eq!(Line::parse("hello").ok(), Some(Line::Other));
    }
}
