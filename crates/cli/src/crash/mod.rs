//! The kill -9 round shared by `faster demo` and `faster crash-test`: a child process (this
//! binary re-executed with the hidden subcommand [`CHILD_SUBCOMMAND`], see [`child`]) writes
//! the tagged workload on several sessions while it checkpoints; the parent waits for
//! [`RoundOptions::min_checkpoints`] durable checkpoints, waits a random delay, kills the
//! child with SIGKILL, recovers the store with `FasterKv::recover` and verifies every
//! session's exact CPR prefix ([`crate::workload::verify_session`]).

pub mod child;
mod protocol;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use faster::{Config, FasterKv, LogDevice, SessionId};

use crate::error::{CliError, Result};
pub use protocol::{Line, Reported};

/// The hidden subcommand that runs [`child::run`].
pub const CHILD_SUBCOMMAND: &str = "__crash-child";

/// Past a cut, operations are checked for absence up to this many serials further: the
/// child's last serial before the kill is unknown.
pub const ABSENCE_WINDOW: u64 = 20_000;

/// The store configuration of the child and of the parent's recovery: the file device,
/// 1 MiB of log memory in 64 KiB pages (so most of the log is on disk), an index with room
/// for the child's keys.
pub fn store_config(dir: &Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(16)
        .with_checkpoint_timeout(Duration::from_secs(20))
}

/// How a round runs.
#[derive(Clone, Debug)]
pub struct RoundOptions {
    /// The executable to re-execute as the child (normally `std::env::current_exe()`).
    pub exe: PathBuf,
    /// Sessions in the child.
    pub sessions: usize,
    /// Durable checkpoints the child must report before it may be killed.
    pub min_checkpoints: usize,
    /// How long to wait after them before the kill (a deliberate, random delay: the child
    /// is killed wherever it happens to be).
    pub delay: Duration,
    /// How long to wait for the checkpoints before giving up.
    pub report_timeout: Duration,
}

/// What a round saw and verified.
#[derive(Clone, Debug)]
pub struct RoundReport {
    /// The child's sessions, in start order.
    pub sessions: Vec<SessionId>,
    /// The checkpoints the child reported durable before the kill.
    pub checkpoints: Vec<Reported>,
    /// The delay between the last awaited checkpoint and the kill.
    pub delay: Duration,
    /// The recovered checkpoint's token.
    pub token: String,
    /// Its version.
    pub version: u64,
    /// The recovered cuts, verified: every session's serial.
    pub cuts: Vec<(SessionId, u64)>,
    /// Newer checkpoints recovery skipped (torn by the kill), with the reason.
    pub skipped: Vec<(String, String)>,
    /// How long recovery took.
    pub recovery: Duration,
    /// How long verification took.
    pub verification: Duration,
}

/// Kills and reaps the child when dropped, on every path.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the child printed before it was killed.
#[derive(Default)]
struct Seen {
    sessions: Vec<SessionId>,
    checkpoints: Vec<Reported>,
    errors: Vec<String>,
}

impl Seen {
    fn take(&mut self, line: &str) -> Result<()> {
        match Line::parse(line)? {
            Line::Session(id) => self.sessions.push(id),
            Line::Checkpoint(r) => self.checkpoints.push(r),
            Line::Error(e) => self.errors.push(e),
            Line::Other => {}
        }
        Ok(())
    }
}

/// Runs one round in `dir` (a fresh, empty directory). `status` hears what the round is
/// doing, for a progress display.
///
/// A CPR violation, a failed recovery or a misbehaving child is [`CliError::Failed`]
/// (recovery's own error is [`CliError::Store`]); a child that cannot be started is
/// [`CliError::Io`].
pub fn run_round(dir: &Path, o: &RoundOptions, status: &dyn Fn(&str)) -> Result<RoundReport> {
    status("starting the child");
    let child = Command::new(&o.exe)
        .arg(CHILD_SUBCOMMAND)
        .arg("--dir")
        .arg(dir)
        .arg("--sessions")
        .arg(o.sessions.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CliError::io("start", &o.exe, e))?;
    let mut guard = Guard(child);
    let (Some(stdout), Some(mut stderr)) = (guard.0.stdout.take(), guard.0.stderr.take()) else {
        return Err(CliError::Failed("the child's output is not piped".into()));
    };
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let (tx, rx) = mpsc::channel();
    let out_reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Seen::default();
    let deadline = Instant::now() + o.report_timeout;
    let mut failure = None;
    while seen.checkpoints.len() < o.min_checkpoints && seen.errors.is_empty() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                seen.take(&line)?;
                status(&format!(
                    "child writing on {} sessions, {} checkpoints durable",
                    seen.sessions.len(),
                    seen.checkpoints.len()
                ));
            }
            Err(RecvTimeoutError::Timeout) => {
                failure = Some(format!(
                    "the child reported {} checkpoints in {:?}",
                    seen.checkpoints.len(),
                    o.report_timeout
                ));
                break;
            }
            Err(RecvTimeoutError::Disconnected) => {
                failure = Some("the child exited before it was killed".to_string());
                break;
            }
        }
    }
    if failure.is_none() && seen.errors.is_empty() {
        status(&format!(
            "killing the child with SIGKILL in {} ms",
            o.delay.as_millis()
        ));
        std::thread::sleep(o.delay);
    }
    // `Child::kill` sends SIGKILL on Unix.
    let _ = guard.0.kill();
    let exit = guard.0.wait();
    // Lines written before the kill are still in the pipe.
    let _ = out_reader.join();
    for line in rx.try_iter() {
        seen.take(&line)?;
    }
    let stderr = err_reader.join().unwrap_or_default();
    let tail = |s: &str| s.lines().last().unwrap_or("").to_string();
    if let Some(e) = seen.errors.first() {
        return Err(CliError::Failed(format!("the child failed: {e}")));
    }
    if let Some(f) = failure {
        return Err(CliError::Failed(format!(
            "{f} (exit {exit:?}; stderr: {})",
            tail(&stderr)
        )));
    }
    if seen.sessions.len() != o.sessions {
        return Err(CliError::Failed(format!(
            "the child reported {} of {} sessions",
            seen.sessions.len(),
            o.sessions
        )));
    }
    recover_and_verify(dir, seen, o.delay, status)
}

/// Recovers `dir` and checks it against what the child reported: the recovered checkpoint is
/// at least the newest reported one, with the reported cuts if it is that one, and every
/// session's prefix is exact.
fn recover_and_verify(
    dir: &Path,
    seen: Seen,
    delay: Duration,
    status: &dyn Fn(&str),
) -> Result<RoundReport> {
    status("recovering");
    let began = Instant::now();
    let (store, rec) = FasterKv::recover(store_config(dir))?;
    let recovery = began.elapsed();
    let fail = |msg: String| Err(CliError::Failed(msg));
    let mut want = seen.sessions.clone();
    want.sort();
    let cuts: BTreeMap<SessionId, u64> = rec.sessions.iter().copied().collect();
    if cuts.keys().copied().collect::<Vec<_>>() != want || cuts.len() != rec.sessions.len() {
        return fail(format!(
            "recovered sessions {:?}, but the child ran {want:?}",
            rec.sessions
        ));
    }
    let Some(last) = seen.checkpoints.iter().max_by_key(|r| r.version) else {
        return fail("the child reported no checkpoint".into());
    };
    if rec.version < last.version {
        return fail(format!(
            "recovered version {}, older than the reported durable version {} (skipped {:?})",
            rec.version, last.version, rec.skipped
        ));
    }
    for (id, &t) in &cuts {
        let reported = last.cuts.get(id).copied().unwrap_or(0);
        if (rec.version == last.version && t != reported) || t < reported {
            return fail(format!(
                "session {id}: recovered cut {t}, but the durable checkpoint v{} reported {reported}",
                last.version
            ));
        }
    }
    status("verifying the CPR prefix of every session");
    let began = Instant::now();
    {
        let mut s = store.try_start_session()?;
        for (id, &t) in &cuts {
            crate::workload::verify_session(&mut s, id.as_u64(), t, t + ABSENCE_WINDOW)?;
        }
    }
    let verification = began.elapsed();
    store.close();
    Ok(RoundReport {
        sessions: seen.sessions,
        checkpoints: seen.checkpoints,
        delay,
        token: rec.token,
        version: rec.version,
        cuts: rec.sessions,
        skipped: rec.skipped,
        recovery,
        verification,
    })
}

/// A small xorshift generator for the kill delays: reproducible from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A seed from the clock.
    pub fn clock_seed() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
