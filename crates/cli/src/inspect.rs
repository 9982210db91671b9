//! `faster inspect <dir>`: the checkpoints of a store, each validated with
//! `faster-recovery` the way recovery would (metadata decoded and checked, data files
//! present and long enough, session serials not going backwards from the next older valid
//! checkpoint).

use indicatif::BinaryBytes;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use faster::recovery::{
    CHECKPOINTS_DIR, CheckpointKind, CheckpointMeta, LogMode, StoreLayout, check_files,
    validate_successor,
};
use serde_json::{Value, json};

use crate::error::{CliError, Result};
use faster_bench::table::{Align, Table};

/// Sessions listed per checkpoint in the table (the JSON has them all).
const TABLE_SESSIONS: usize = 8;

/// One checkpoint directory and its verdict.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its token (directory name).
    pub token: String,
    /// The version its name carries.
    pub version: u64,
    /// Its metadata, if the `meta` file decoded and validated.
    pub meta: Option<CheckpointMeta>,
    /// Bytes of the files in its directory.
    pub bytes: u64,
    /// `Ok`, or the precise reason recovery would reject it.
    pub status: std::result::Result<(), String>,
}

/// The checkpoints of a store, newest first.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// The store directory.
    pub dir: PathBuf,
    /// Its checkpoints, newest first.
    pub entries: Vec<Entry>,
}

impl Inspection {
    /// The error to end with: the newest checkpoint is invalid, or there is none.
    pub fn verdict(&self) -> Result<()> {
        match self.entries.first() {
            None => Err(CliError::Failed(format!(
                "{}: no checkpoint: nothing to recover",
                self.dir.display()
            ))),
            Some(Entry {
                token,
                status: Err(reason),
                ..
            }) => Err(CliError::Failed(format!(
                "the newest checkpoint {token} is invalid: {reason}"
            ))),
            Some(_) => Ok(()),
        }
    }
}

/// Whether `dir` is a store directory, with a one-line error if not.
pub fn check_store_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Err(CliError::NoSuchDir(dir.to_path_buf()));
    }
    if !dir.is_dir() || !(dir.join("log").is_dir() || dir.join(CHECKPOINTS_DIR).is_dir()) {
        return Err(CliError::NotAStore(dir.to_path_buf()));
    }
    Ok(())
}

/// Lists and validates the checkpoints of the store in `dir`.
pub fn inspect(dir: &Path) -> Result<Inspection> {
    check_store_dir(dir)?;
    let layout = StoreLayout::new(dir);
    let tokens = layout.list().map_err(faster::Error::from)?;
    let mut entries = Vec::with_capacity(tokens.len());
    let mut older: Option<CheckpointMeta> = None;
    // Oldest first, so each one is checked against the newest older valid one.
    for token in tokens.iter().rev() {
        let checked = layout.read_meta(token).and_then(|meta| {
            check_files(&meta, &layout)?;
            if let Some(o) = &older {
                validate_successor(o, &meta)?;
            }
            Ok(meta)
        });
        let (meta, status) = match checked {
            Ok(meta) => (Some(meta), Ok(())),
            Err(e) => (layout.read_meta(token).ok(), Err(e.to_string())),
        };
        if status.is_ok() {
            older.clone_from(&meta);
        }
        entries.push(Entry {
            token: token.to_string(),
            version: token.version(),
            meta,
            bytes: dir_bytes(&layout.checkpoint_dir(token)),
            status,
        });
    }
    entries.reverse();
    Ok(Inspection {
        dir: dir.to_path_buf(),
        entries,
    })
}

/// The total size of the files under `dir` (0 for what cannot be read).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// The kind as shown: `full/fold-over`, `log-only/snapshot`, `index-only`.
pub fn kind_name(meta: &CheckpointMeta) -> String {
    let kind = match meta.kind {
        CheckpointKind::Full => "full",
        CheckpointKind::IndexOnly => "index-only",
        CheckpointKind::LogOnly => "log-only",
    };
    match meta.log_mode {
        Some(LogMode::FoldOver) => format!("{kind}/fold-over"),
        Some(LogMode::Snapshot) => format!("{kind}/snapshot"),
        None => kind.to_string(),
    }
}

/// `ms` since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A byte count as `12.30 MiB`, `512 B` (indicatif's [`BinaryBytes`]).
pub fn human_bytes(b: u64) -> String {
    BinaryBytes(b).to_string()
}

/// The human report: a line about the store, then one row per checkpoint, newest first.
pub fn render(ins: &Inspection) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "store {}: {} checkpoint(s), newest first",
        ins.dir.display(),
        ins.entries.len()
    );
    let mut t = Table::new(&[
        ("token", Align::Left),
        ("version", Align::Right),
        ("kind", Align::Left),
        ("time", Align::Left),
        ("size", Align::Right),
        ("sessions (id:serial)", Align::Left),
        ("status", Align::Left),
    ]);
    for e in &ins.entries {
        let (kind, time, sessions) = match &e.meta {
            Some(m) => {
                let mut s: Vec<String> = m
                    .sessions
                    .iter()
                    .take(TABLE_SESSIONS)
                    .map(|c| format!("{}:{}", c.id, c.serial))
                    .collect();
                if m.sessions.len() > TABLE_SESSIONS {
                    s.push(format!("(+{})", m.sessions.len() - TABLE_SESSIONS));
                }
                (kind_name(m), utc(m.created_unix_ms), s.join(" "))
            }
            None => ("?".into(), "?".into(), "?".into()),
        };
        let status = match &e.status {
            Ok(()) => "OK".to_string(),
            Err(reason) => format!("CORRUPT: {reason}"),
        };
        t.row(vec![
            e.token.clone(),
            e.version.to_string(),
            kind,
            time,
            human_bytes(e.bytes),
            if sessions.is_empty() {
                "-".into()
            } else {
                sessions
            },
            status,
        ]);
    }
    if t.is_empty() {
        out.push_str("no checkpoints\n");
    } else {
        out.push_str(&t.render());
    }
    out.push_str(&space_line(ins));
    out
}

/// The space line: the newest valid checkpoint's begin address and the log above it (at
/// most the live data), and the bytes on disk by part.
fn space_line(ins: &Inspection) -> String {
    let newest = ins
        .entries
        .iter()
        .find(|e| e.status.is_ok())
        .and_then(|e| e.meta.as_ref());
    let log = match newest {
        Some(m) => format!(
            "begin address {:#x}, log above it {} (at most the live data)",
            m.begin_address,
            human_bytes(m.final_address.saturating_sub(m.begin_address))
        ),
        None => "no valid checkpoint".into(),
    };
    match faster::DiskUsage::of(&ins.dir) {
        Ok(u) => format!(
            "space: {log}; on disk {}: log {}, index checkpoints {}, snapshots {}, other {}\n",
            human_bytes(u.total()),
            human_bytes(u.log),
            human_bytes(u.index_checkpoints),
            human_bytes(u.snapshots),
            human_bytes(u.checkpoint_other)
        ),
        Err(e) => format!("space: {log}; on disk: {e}\n"),
    }
}

/// The JSON report: `{"dir", "checkpoints": [{"token", "version", "valid", "error",
/// "kind", "log_mode", "created_unix_ms", "bytes", "index_bytes_written",
/// "log_bytes_written", "sessions": [{"id", "serial"}]}]}`, newest first (fields of an
/// undecodable `meta` are `null`).
pub fn json(ins: &Inspection) -> Value {
    let checkpoints: Vec<Value> = ins
        .entries
        .iter()
        .map(|e| {
            let m = e.meta.as_ref();
            json!({
                "token": e.token,
                "version": e.version,
                "valid": e.status.is_ok(),
                "error": e.status.as_ref().err(),
                "kind": m.map(kind_name),
                "created_unix_ms": m.map(|m| m.created_unix_ms),
                "bytes": e.bytes,
                "index_bytes_written": m.map(|m| m.index_bytes_written),
                "log_bytes_written": m.map(|m| m.log_bytes_written),
                "sessions": m.map(|m| m.sessions.iter().map(|c| json!({
                    "id": c.id,
                    "serial": c.serial,
                })).collect::<Vec<_>>()),
            })
        })
        .collect();
    json!({
        "dir": ins.dir.display().to_string(),
        "checkpoints": checkpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_709_251_199_000), "2024-02-29 23:59:59 UTC");
    }

    #[test]
    fn bytes_format() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 20), "3.00 MiB");
    }
}
