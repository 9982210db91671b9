//! Kill -9 crash test: a child process (this test binary, re-executed) runs 4 sessions of
//! tagged upserts and RMW counters (see `recovery_common.rs`) while a thread checkpoints
//! every ~200 ms; the parent kills it with SIGKILL at a random moment after at least two
//! checkpoints were reported, recovers, and checks the exact CPR prefix of every session
//! against the recovered cuts. It then continues every session, writes more, checkpoints,
//! recovers again and checks again.
//!
//! `FASTER_CRASH_ROUNDS` sets the number of rounds (default 20), `FASTER_CRASH_SEED` the seed
//! of the kill delays. A failed round does not stop the test: each round prints one line
//! `CRASH-ROUND <i> ok checkpoints=<n> recovered_version=<v> cuts=<t,..> delay_ms=<d> ms=<m>`
//! or `CRASH-ROUND <i> VIOLATION delay_ms=<d> ms=<m> msg=<first line of the failure>`, then
//! `CRASH-SUMMARY rounds=<n> ok=<n> violations=<n> checkpoints=<n> seed=<s>`; the test fails
//! at the end if any round failed (`cargo xtask crash` parses these lines).

#[path = "recovery_common.rs"]
mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{step, tempdir, verify_session};
use faster::{CheckpointOptions, Config, FasterKv, Session, SessionId};

/// The environment variable that makes `child_main` run, naming the store directory.
const CHILD_ENV: &str = "FASTER_CRASH_CHILD";
/// Sessions in the child.
const SESSIONS: usize = 4;
/// Checkpoints the child must report before the parent may kill it.
const MIN_CHECKPOINTS: usize = 2;
/// How long the parent waits for them.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);
/// The child exits on its own after this long (if the parent is gone).
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// Past a cut, keys are checked for absence up to this many serials further (densely for
/// the first 4096, sampled after): the child's last serial before the kill is unknown.
const ABSENCE_WINDOW: u64 = 20_000;
/// Operations per session after `continue_session`, before and after the second checkpoint.
const MORE: u64 = 300;
const UNCHECKPOINTED: u64 = 50;

/// A child session stops issuing operations at this serial (it then idles until killed),
/// which bounds the keys the index must hold.
const MAX_SERIAL: u64 = 200_000;

/// The store configuration of the child and of the parent's recoveries: the real disk,
/// 1 MiB of log memory (64 KiB pages) so that even the debug build's throughput puts most
/// of the log on the device, and an index with room for `MAX_SERIAL` operations per session.
fn config(dir: &Path) -> Config {
    common::config(dir).with_table_bits(16)
}

// ---------------------------------------------------------------------------------------
// The child.

/// Each child session sleeps 1 ms after this many operations (`FASTER_CRASH_OPS_PER_MS`,
/// default 24; 0: no pause), which bounds the prefixes the parent reads back.
fn ops_per_ms() -> u64 {
    std::env::var("FASTER_CRASH_OPS_PER_MS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(24)
}

fn child_fail(what: &str, e: impl std::fmt::Debug) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "CRASH-ERR {what}: {e:?}");
    let _ = out.flush();
    eprintln!("child: {what}: {e:?}");
    std::process::exit(2);
}

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).ok();
}

/// The child's entry: runs only when `FASTER_CRASH_CHILD` names a directory; otherwise
/// (a normal `cargo test --include-ignored`) returns at once. Never returns when it runs:
/// the parent kills it.
#[test]
#[ignore = "the child process of crash_prefix_survives_sigkill; runs only when re-executed"]
fn child_main() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    // A failure on any thread (a worker's operation error included) ends the child at once,
    // so the parent sees it instead of a child whose sessions silently stopped.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(&format!("CRASH-ERR panic: {info}"));
        default_hook(info);
        std::process::exit(101);
    }));
    let store = FasterKv::open(config(Path::new(&dir))).unwrap_or_else(|e| child_fail("open", e));
    // Sessions start in a fixed order, before any work, and are reported to the parent.
    let sessions: Vec<Session> = (0..SESSIONS)
        .map(|i| {
            let s = store.start_session();
            report(&format!("CRASH-SESSION {i} {}", s.id()));
            s
        })
        .collect();
    let started = Instant::now();
    let per_ms = ops_per_ms();
    thread::scope(|scope| {
        for mut s in sessions {
            scope.spawn(move || {
                loop {
                    if s.serial() >= MAX_SERIAL {
                        thread::sleep(Duration::from_millis(10));
                        s.refresh().unwrap_or_else(|e| child_fail("refresh", e));
                        continue;
                    }
                    step(&mut s);
                    if per_ms > 0 && s.serial() % per_ms == 0 {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            });
        }
        let store = &store;
        scope.spawn(move || {
            loop {
                thread::sleep(Duration::from_millis(200));
                if started.elapsed() > CHILD_LIFETIME {
                    eprintln!("child: lifetime over, exiting");
                    std::process::exit(3);
                }
                let info = store
                    .checkpoint()
                    .and_then(|h| h.wait())
                    .unwrap_or_else(|e| child_fail("checkpoint", e));
                let cuts: Vec<String> = info
                    .sessions
                    .iter()
                    .map(|(id, t)| format!("{id}:{t}"))
                    .collect();
                report(&format!("CRASH-CKPT {} {}", info.version, cuts.join(",")));
            }
        });
    });
}

// ---------------------------------------------------------------------------------------
// The parent.

/// Kills and reaps the child when dropped (on every path, panics included).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A checkpoint the child reported as complete.
#[derive(Debug)]
struct Reported {
    version: u64,
    cuts: BTreeMap<SessionId, u64>,
}

fn parse_checkpoint(rest: &str) -> Reported {
    let mut parts = rest.split(' ');
    let version = parts.next().unwrap().parse().unwrap();
    let cuts = parts
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|c| {
            let (id, t) = c.split_once(':').unwrap();
            (id.parse().unwrap(), t.parse().unwrap())
        })
        .collect();
    Reported { version, cuts }
}

/// What the child reported before it was killed.
struct ChildRun {
    ids: Vec<SessionId>,
    checkpoints: Vec<Reported>,
    stderr: String,
}

/// Runs the child in `dir`, waits for `MIN_CHECKPOINTS` checkpoints, waits `delay_ms`, kills
/// it with SIGKILL and returns what it reported.
fn run_child(dir: &Path, delay_ms: u64) -> ChildRun {
    let exe = std::env::current_exe().expect("current_exe");
    let child = Command::new(exe)
        .args([
            "child_main",
            "--exact",
            "--nocapture",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the child");
    let mut guard = Guard(child);
    let stdout = guard.0.stdout.take().unwrap();
    let mut stderr = guard.0.stderr.take().unwrap();
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let (tx, rx) = mpsc::channel();
    let out_reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut ids = Vec::new();
    let mut checkpoints = Vec::new();
    let mut errors = Vec::new();
    let mut take = |line: String, ids: &mut Vec<SessionId>, cps: &mut Vec<Reported>| {
        // The harness prints `test child_main ... ` without a newline before the test runs.
        let Some(at) = line.find("CRASH-") else {
            return;
        };
        let line = line[at..].to_string();
        if let Some(rest) = line.strip_prefix("CRASH-SESSION ") {
            let (i, id) = rest.split_once(' ').unwrap();
            assert_eq!(i.parse::<usize>().unwrap(), ids.len(), "session order");
            ids.push(id.parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("CRASH-CKPT ") {
            cps.push(parse_checkpoint(rest));
        } else if line.starts_with("CRASH-ERR") {
            errors.push(line);
        }
    };
    let deadline = Instant::now() + REPORT_TIMEOUT;
    let mut failure = None;
    while checkpoints.len() < MIN_CHECKPOINTS {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => take(line, &mut ids, &mut checkpoints),
            Err(RecvTimeoutError::Timeout) => {
                failure = Some(format!(
                    "timed out after {REPORT_TIMEOUT:?} with {} checkpoints reported",
                    checkpoints.len()
                ));
                break;
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = guard.0.wait().ok();
                failure = Some(format!(
                    "the child exited ({status:?}) after {} checkpoints",
                    checkpoints.len()
                ));
                break;
            }
        }
    }
    if failure.is_none() {
        thread::sleep(Duration::from_millis(delay_ms));
    }
    // SIGKILL on Unix.
    let _ = guard.0.kill();
    let status = guard.0.wait().expect("reaping the child");
    // Lines written before the kill are still in the pipe.
    out_reader.join().unwrap();
    while let Ok(line) = rx.try_recv() {
        take(line, &mut ids, &mut checkpoints);
    }
    let stderr = err_reader.join().unwrap();
    if let Some(f) = failure {
        panic!("child failed: {f}; errors {errors:?}; status {status:?}; stderr:\n{stderr}");
    }
    assert!(
        errors.is_empty(),
        "child reported errors {errors:?}; stderr:\n{stderr}"
    );
    assert_eq!(ids.len(), SESSIONS, "child sessions; stderr:\n{stderr}");
    for c in &checkpoints {
        let got: Vec<SessionId> = c.cuts.keys().copied().collect();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(got, want, "sessions of the reported checkpoint {c:?}");
    }
    ChildRun {
        ids,
        checkpoints,
        stderr,
    }
}

/// Recovers `dir`, checks the cuts against the child's reports, verifies every session's
/// exact prefix; returns the store and the cuts.
fn recover_and_verify(dir: &Path, run: &ChildRun) -> (FasterKv, faster::Recovered) {
    let (store, rec) = FasterKv::recover(config(dir)).unwrap_or_else(|e| {
        panic!("recovery failed: {e}; child stderr:\n{}", run.stderr);
    });
    let got: HashSet<SessionId> = rec.sessions.iter().map(|c| c.0).collect();
    let want: HashSet<SessionId> = run.ids.iter().copied().collect();
    assert_eq!(got, want, "recovered sessions {:?}", rec.sessions);
    assert_eq!(
        rec.sessions.len(),
        SESSIONS,
        "duplicate cuts {:?}",
        rec.sessions
    );
    // Every reported checkpoint was durable before it was reported.
    let last = run.checkpoints.iter().max_by_key(|r| r.version).unwrap();
    assert!(
        rec.version >= last.version,
        "recovered version {} older than the reported durable {last:?} (skipped {:?})",
        rec.version,
        rec.skipped
    );
    for &(id, t) in &rec.sessions {
        let reported = last.cuts[&id];
        if rec.version == last.version {
            assert_eq!(
                t, reported,
                "session {id}: cut differs from the reported one"
            );
        } else {
            assert!(t >= reported, "session {id}: cut {t} < reported {reported}");
        }
    }
    println!(
        "recovered {} v{} cuts {:?} skipped {:?} replay {:?}; verifying",
        rec.token, rec.version, rec.sessions, rec.skipped, rec.replay
    );
    {
        let mut s = store.start_session();
        for &(id, t) in &rec.sessions {
            verify_session(&mut s, id.as_u64(), t, t + ABSENCE_WINDOW);
        }
    }
    (store, rec)
}

/// The round's store directory: removed at the end, kept (and named) if the round fails.
struct RoundDir(Option<tempfile::TempDir>);

impl RoundDir {
    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for RoundDir {
    fn drop(&mut self) {
        if thread::panicking() {
            if let Some(d) = self.0.take() {
                eprintln!(
                    "crash_prefix: keeping the failed round's store: {}",
                    d.keep().display()
                );
            }
        }
    }
}

/// What a round that passed reports.
struct RoundOk {
    /// Checkpoints the child reported before the kill.
    checkpoints: usize,
    /// The version of the first recovery (after the kill).
    recovered_version: u64,
    /// That recovery's cuts, in session-id order.
    cuts: Vec<u64>,
}

fn one_round(round: u64, delay_ms: u64) -> RoundOk {
    let began = Instant::now();
    let dir = RoundDir(Some(tempdir()));
    let run = run_child(dir.path(), delay_ms);
    let killed_at = began.elapsed();
    println!(
        "round {round}: child killed {delay_ms} ms after checkpoint {:?}",
        run.checkpoints.last().unwrap()
    );
    let (store, rec) = recover_and_verify(dir.path(), &run);
    let cuts: BTreeMap<SessionId, u64> = rec.sessions.iter().copied().collect();

    // Continue every session after its cut, checkpoint, write more, recover again.
    let mut sessions = Vec::new();
    for (&id, &t) in &cuts {
        let (s, got) = store.continue_session(id).unwrap();
        assert_eq!(got, t, "session {id}: continue_session's serial");
        assert_eq!(s.serial(), t, "session {id}: next serial is t + 1");
        sessions.push(s);
    }
    for s in &mut sessions {
        let t = s.serial();
        for _ in 0..MORE {
            step(s);
        }
        assert_eq!(s.serial(), t + MORE);
    }
    let options = if round % 2 == 1 {
        CheckpointOptions::log_only()
    } else {
        CheckpointOptions::full()
    };
    let info = store.checkpoint_with(options).unwrap().wait().unwrap();
    for s in &mut sessions {
        let cut = info.sessions.iter().find(|c| c.0 == s.id()).map(|c| c.1);
        assert_eq!(cut, Some(s.serial()), "session {}: second cut", s.id());
        for _ in 0..UNCHECKPOINTED {
            step(s);
        }
    }
    drop(sessions);
    drop(store);
    let (store, rec2) = FasterKv::recover(config(dir.path())).unwrap();
    assert_eq!(rec2.version, info.version, "second recovery's version");
    println!(
        "second recovery {} v{} cuts {:?}; verifying",
        rec2.token, rec2.version, rec2.sessions
    );
    {
        let mut s = store.start_session();
        for (&id, &t) in &cuts {
            let t2 = rec2.sessions.iter().find(|c| c.0 == id).map(|c| c.1);
            assert_eq!(t2, Some(t + MORE), "session {id}: second recovered cut");
            verify_session(&mut s, id.as_u64(), t + MORE, t + ABSENCE_WINDOW);
        }
    }
    drop(store);
    println!(
        "round {round}: killed {delay_ms} ms after {} reported checkpoints (at {:.2?}); \
         recovered v{} (last reported v{}, skipped {}), cuts {:?}, replay {:?}; \
         continued +{MORE}, {:?} checkpoint v{} recovered and verified; round took {:.2?}",
        run.checkpoints.len(),
        killed_at,
        rec.version,
        run.checkpoints.iter().map(|r| r.version).max().unwrap(),
        rec.skipped.len(),
        cuts.values().collect::<Vec<_>>(),
        rec.replay,
        if round % 2 == 1 { "log-only" } else { "full" },
        rec2.version,
        began.elapsed(),
    );
    RoundOk {
        checkpoints: run.checkpoints.len(),
        recovered_version: rec.version,
        cuts: cuts.values().copied().collect(),
    }
}

/// The first line of a panic's message.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_string()
    };
    text.lines().next().unwrap_or("").to_string()
}

/// Kills the child with SIGKILL at a random moment, `FASTER_CRASH_ROUNDS` times (20 by
/// default), and verifies the exact per-session prefix after each crash; every round runs
/// even if an earlier one failed, and the test fails at the end if any did.
#[test]
fn crash_prefix_survives_sigkill() {
    let rounds: u64 = std::env::var("FASTER_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("FASTER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("crash_prefix: {rounds} rounds, FASTER_CRASH_SEED={seed}");
    let mut rng = faster_tests::Rng::new(seed);
    let began = Instant::now();
    let (mut ok, mut violations, mut checkpoints) = (0u64, 0u64, 0usize);
    for round in 0..rounds {
        let delay_ms = rng.below(301);
        let t = Instant::now();
        match std::panic::catch_unwind(|| one_round(round, delay_ms)) {
            Ok(r) => {
                ok += 1;
                checkpoints += r.checkpoints;
                let cuts: Vec<String> = r.cuts.iter().map(u64::to_string).collect();
                println!(
                    "CRASH-ROUND {round} ok checkpoints={} recovered_version={} cuts={} \
                     delay_ms={delay_ms} ms={}",
                    r.checkpoints,
                    r.recovered_version,
                    cuts.join(","),
                    t.elapsed().as_millis()
                );
            }
            Err(payload) => {
                violations += 1;
                println!(
                    "CRASH-ROUND {round} VIOLATION delay_ms={delay_ms} ms={} msg={}",
                    t.elapsed().as_millis(),
                    panic_message(&*payload)
                );
            }
        }
    }
    println!(
        "CRASH-SUMMARY rounds={rounds} ok={ok} violations={violations} checkpoints={checkpoints} seed={seed}"
    );
    println!(
        "crash_prefix: {rounds} rounds, {violations} violations, {:.2?}",
        began.elapsed()
    );
    assert_eq!(
        violations, 0,
        "{violations} of {rounds} rounds failed; replay with FASTER_CRASH_SEED={seed}"
    );
}
