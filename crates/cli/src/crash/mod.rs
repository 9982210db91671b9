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
    /// Sessions in the child.
    pub sessions: usize,
    /// Durable checkpoints the child must report before it may be killed.
    pub min_checkpoints: usize,
    /// How long to wait after them before the kill (a deliberate, random delay: the child
    /// is killed wherever it happens to be).
    pub delay: Duration,
    /// How long to wait for the checkpoints before giving up.
    pub report_timeout: Duration,
    /// After the checkpoints, also wait for the child to report that an index growth begins
    /// (`GROW-BEGIN`), and count the delay from there: the kill then lands in a growth.
    pub kill_in_growth: bool,
}

/// Durable checkpoints the child must report before it may be killed, by default.
pub const MIN_CHECKPOINTS: usize = 2;
/// The longest random kill delay after those checkpoints, in milliseconds.
pub const MAX_KILL_DELAY_MS: u64 = 300;

impl RoundOptions {
    /// A round with `sessions` sessions, killed `delay` after [`MIN_CHECKPOINTS`] durable
    /// checkpoints, which must come within 30 s.
    pub fn new(sessions: usize, delay: Duration) -> Self {
        RoundOptions {
            sessions,
            min_checkpoints: MIN_CHECKPOINTS,
            delay,
            report_timeout: Duration::from_secs(30),
            kill_in_growth: false,
        }
    }

    /// A random kill delay in `0..=`[`MAX_KILL_DELAY_MS`] ms.
    pub fn random_delay(rng: &mut Rng) -> Duration {
        Duration::from_millis(rng.below(MAX_KILL_DELAY_MS + 1))
    }
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
    /// Index growths the child reported before the kill (the new `table_bits` of each).
    pub growths: Vec<u32>,
    /// Whether the kill landed inside a growth (one had begun and not ended).
    pub killed_in_growth: bool,
    /// Compactions the child reported before the kill (the begin address after each).
    pub compactions: Vec<u64>,
    /// The recovered index's `table_bits`.
    pub table_bits: u32,
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
#[derive(Clone, Debug, Default)]
pub struct ChildRun {
    /// Its sessions, in start order.
    pub sessions: Vec<SessionId>,
    /// The checkpoints it reported durable, in order.
    pub checkpoints: Vec<Reported>,
    /// The errors it reported.
    pub errors: Vec<String>,
    /// Index growths it reported (`GROW` lines: the new `table_bits` of each).
    pub growths: Vec<u32>,
    /// Index growths it reported beginning (`GROW-BEGIN` lines: the `table_bits` before).
    pub growths_begun: Vec<u32>,
    /// Compactions it reported (`COMPACT` lines: the begin address after each).
    pub compactions: Vec<u64>,
    /// How many growths had begun when the child had reported its awaited checkpoints (see
    /// [`RoundOptions::kill_in_growth`]).
    pub growths_begun_at_checkpoints: Option<usize>,
    /// The delay between the awaited checkpoints and the kill.
    pub delay: Duration,
    /// Its standard error.
    pub stderr: String,
}

impl ChildRun {
    /// Whether the child was killed inside an index growth: it reported one beginning and
    /// not its end.
    pub fn killed_in_growth(&self) -> bool {
        self.growths_begun.len() > self.growths.len()
    }

    fn take(&mut self, line: &str) -> Result<()> {
        match Line::parse(line)? {
            Line::Session(id) => self.sessions.push(id),
            Line::Checkpoint(r) => self.checkpoints.push(r),
            Line::Error(e) => self.errors.push(e),
            Line::Grow(bits) => self.growths.push(bits),
            Line::GrowBegin(bits) => self.growths_begun.push(bits),
            Line::Compact(begin) => self.compactions.push(begin),
            Line::Other => {}
        }
        Ok(())
    }
}

/// The command that runs this binary, `exe`, as the child of a round in `dir`.
pub fn child_command(exe: &Path, dir: &Path, sessions: usize) -> Command {
    let mut c = Command::new(exe);
    c.arg(CHILD_SUBCOMMAND)
        .arg("--dir")
        .arg(dir)
        .arg("--sessions")
        .arg(sessions.to_string());
    c
}

/// Runs one round in `dir` (a fresh, empty directory) with `exe` re-executed as the child:
/// [`crash_child`], then [`recover_and_verify`]; the recovered store is closed. `status`
/// hears what the round is doing, for a progress display.
///
/// A CPR violation, a failed recovery or a misbehaving child is [`CliError::Failed`]
/// (recovery's own error is [`CliError::Store`]); a child that cannot be started is
/// [`CliError::Io`].
pub fn run_round(
    exe: &Path,
    dir: &Path,
    o: &RoundOptions,
    status: &dyn Fn(&str),
) -> Result<RoundReport> {
    let run = crash_child(child_command(exe, dir, o.sessions), o, status)?;
    let (store, report) = recover_and_verify(dir, run, status)?;
    store.close();
    Ok(report)
}

/// Starts `command` (a child that runs [`child::run`]), waits for
/// [`RoundOptions::min_checkpoints`] durable checkpoints, waits [`RoundOptions::delay`],
/// kills it with SIGKILL and returns what it reported. A child that fails, exits, or does
/// not report its checkpoints in time is [`CliError::Failed`].
pub fn crash_child(
    mut command: Command,
    o: &RoundOptions,
    status: &dyn Fn(&str),
) -> Result<ChildRun> {
    status("starting the child");
    let program = PathBuf::from(command.get_program());
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CliError::io("start", program, e))?;
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
    let mut run = ChildRun {
        delay: o.delay,
        ..ChildRun::default()
    };
    let deadline = Instant::now() + o.report_timeout;
    let mut failure = None;
    let waiting = |run: &ChildRun| match run.growths_begun_at_checkpoints {
        None => true,
        Some(n) => o.kill_in_growth && run.growths_begun.len() <= n,
    };
    while waiting(&run) && run.errors.is_empty() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                run.take(&line)?;
                if run.checkpoints.len() >= o.min_checkpoints
                    && run.growths_begun_at_checkpoints.is_none()
                {
                    run.growths_begun_at_checkpoints = Some(run.growths_begun.len());
                }
                status(&format!(
                    "child writing on {} sessions, {} checkpoints durable",
                    run.sessions.len(),
                    run.checkpoints.len()
                ));
            }
            Err(RecvTimeoutError::Timeout) => {
                failure = Some(format!(
                    "the child reported {} checkpoints in {:?}",
                    run.checkpoints.len(),
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
    if failure.is_none() && run.errors.is_empty() {
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
        run.take(&line)?;
    }
    run.stderr = err_reader.join().unwrap_or_default();
    let tail = |s: &str| s.lines().last().unwrap_or("").to_string();
    if let Some(e) = run.errors.first() {
        return Err(CliError::Failed(format!("the child failed: {e}")));
    }
    if let Some(f) = failure {
        return Err(CliError::Failed(format!(
            "{f} (exit {exit:?}; stderr: {})",
            tail(&run.stderr)
        )));
    }
    if run.sessions.len() != o.sessions {
        return Err(CliError::Failed(format!(
            "the child reported {} of {} sessions",
            run.sessions.len(),
            o.sessions
        )));
    }
    Ok(run)
}

/// Recovers `dir` and checks it against what the child reported: the recovered checkpoint is
/// at least the newest reported one, with the reported cuts if it is that one, and every
/// session's prefix is exact ([`ABSENCE_WINDOW`] serials past each cut are checked for
/// absence). Returns the recovered store, open, and the report. A violation is
/// [`CliError::Failed`]; a failed recovery [`CliError::Store`].
pub fn recover_and_verify(
    dir: &Path,
    seen: ChildRun,
    status: &dyn Fn(&str),
) -> Result<(FasterKv, RoundReport)> {
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
    let killed_in_growth = seen.killed_in_growth();
    let report = RoundReport {
        sessions: seen.sessions,
        checkpoints: seen.checkpoints,
        delay: seen.delay,
        killed_in_growth,
        growths: seen.growths,
        compactions: seen.compactions,
        table_bits: store.index().table_bits(),
        token: rec.token,
        version: rec.version,
        cuts: rec.sessions,
        skipped: rec.skipped,
        recovery,
        verification,
    };
    Ok((store, report))
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
