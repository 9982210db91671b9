//! Kill -9 crash test: a child process (this test binary, re-executed) runs 4 sessions of
//! tagged upserts and RMW counters (`faster_cli::workload`) while a thread checkpoints every
//! ~200 ms (`faster_cli::crash::child`); the parent kills it with SIGKILL at a random moment
//! after at least two checkpoints were reported, recovers, and checks the exact CPR prefix of
//! every session against the recovered cuts (`faster_cli::crash`, the round `faster demo`
//! and `faster crash-test` run). It then continues every session, writes more, checkpoints,
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

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{step, tempdir, verify_session};
use faster::{CheckpointOptions, FasterKv, SessionId};
use faster_cli::crash::{self, ABSENCE_WINDOW, RoundOptions, child::ChildOptions};

/// The environment variable that makes `child_main` run, naming the store directory.
const CHILD_ENV: &str = "FASTER_CRASH_CHILD";
/// Set (by `crash_prefix_survives_sigkill_during_index_growth`): the child grows its index
/// over and over while it runs.
const GROW_ENV: &str = "FASTER_CRASH_GROW";
/// Set (by `crash_prefix_survives_sigkill_during_compaction`): the child compacts its log
/// over and over while it runs.
const COMPACT_ENV: &str = "FASTER_CRASH_COMPACT";
/// Sessions in the child.
const SESSIONS: usize = 4;

thread_local! {
    /// Whether this thread's rounds run a compacting child.
    static COMPACTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
/// Operations per session after `continue_session`, before and after the second checkpoint.
const MORE: u64 = 300;
const UNCHECKPOINTED: u64 = 50;

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

/// The child's entry: runs only when `FASTER_CRASH_CHILD` names a directory; otherwise
/// (a normal `cargo test --include-ignored`) returns at once. Never returns when it runs:
/// the parent kills it.
#[test]
#[ignore = "the child process of crash_prefix_survives_sigkill; runs only when re-executed"]
fn child_main() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let options = ChildOptions {
        sessions: SESSIONS,
        ops_per_ms: ops_per_ms(),
        grow_index: std::env::var_os(GROW_ENV).is_some(),
        compact: std::env::var_os(COMPACT_ENV).is_some(),
        ..ChildOptions::default()
    };
    crash::child::run(Path::new(&dir), &options)
}

// ---------------------------------------------------------------------------------------
// The parent.

/// Runs the child in `dir`, waits for two durable checkpoints, waits `delay_ms`, kills
/// it with SIGKILL, recovers and verifies every session's exact prefix; returns the store and
/// the round's report.
fn crash_and_recover(dir: &Path, delay_ms: u64, grow: bool) -> (FasterKv, crash::RoundReport) {
    let mut child = Command::new(std::env::current_exe().expect("current_exe"));
    child
        .args([
            "child_main",
            "--exact",
            "--nocapture",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir);
    if grow {
        child.env(GROW_ENV, "1");
    }
    if COMPACTING.with(|c| c.get()) {
        child.env(COMPACT_ENV, "1");
    }
    let mut options = RoundOptions::new(SESSIONS, Duration::from_millis(delay_ms));
    options.kill_in_growth = grow;
    let run = crash::crash_child(child, &options, &|_| {})
        .unwrap_or_else(|e| panic!("child failed: {e}"));
    let stderr = run.stderr.clone();
    crash::recover_and_verify(dir, run, &|_| {})
        .unwrap_or_else(|e| panic!("{e}; child stderr:\n{stderr}"))
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

fn one_round(round: u64, delay_ms: u64, grow: bool) -> RoundOk {
    let began = Instant::now();
    let dir = RoundDir(Some(tempdir()));
    let (store, rec) = crash_and_recover(dir.path(), delay_ms, grow);
    COMPACTIONS_SEEN.fetch_add(
        rec.compactions.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    if grow {
        let mut grown = rec.growths.clone();
        grown.dedup();
        println!(
            "round {round}: the child grew its index to {grown:?} and was killed {} a growth; \
             recovered 2^{}",
            if rec.killed_in_growth {
                "inside"
            } else {
                "outside"
            },
            rec.table_bits
        );
        GROWTH_KILLS.fetch_add(
            rec.killed_in_growth as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    let killed_at = began.elapsed();
    println!(
        "round {round}: child killed {delay_ms} ms after checkpoint {:?}; recovered {} v{} \
         cuts {:?} skipped {:?}; verified",
        rec.checkpoints.last(),
        rec.token,
        rec.version,
        rec.cuts,
        rec.skipped
    );
    let cuts: BTreeMap<SessionId, u64> = rec.cuts.iter().copied().collect();

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
    let (store, rec2) = FasterKv::recover(crash::store_config(dir.path())).unwrap();
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
         recovered v{} (last reported v{}, skipped {}), cuts {:?}; \
         continued +{MORE}, {:?} checkpoint v{} recovered and verified; round took {:.2?}",
        rec.checkpoints.len(),
        killed_at,
        rec.version,
        rec.checkpoints.iter().map(|r| r.version).max().unwrap_or(0),
        rec.skipped.len(),
        cuts.values().collect::<Vec<_>>(),
        if round % 2 == 1 { "log-only" } else { "full" },
        rec2.version,
        began.elapsed(),
    );
    RoundOk {
        checkpoints: rec.checkpoints.len(),
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
    crash_rounds(rounds, false);
}

/// The same rounds while the child doubles its index again and again (from 2^8): the kill
/// lands before, during or between growths; recovery restores the last checkpoint's index
/// (grown or not) with the exact prefix, and the continued store checkpoints and recovers
/// again. Each kill comes 0-3 ms after the child announces a growth. At least one kill must
/// land inside a growth. `FASTER_CRASH_GROW_ROUNDS` rounds (default 3).
#[test]
fn crash_prefix_survives_sigkill_during_index_growth() {
    let rounds: u64 = std::env::var("FASTER_CRASH_GROW_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    crash_rounds(rounds, true);
}

/// The same rounds while the child compacts its log again and again (with log files of
/// 256 KiB, so each compaction's shift and each checkpoint delete files, and each
/// checkpoint removes an older one): the kill lands before, during or between compactions,
/// truncations and checkpoint removals; recovery gives the exact prefix with no file
/// missing, and the continued store checkpoints and recovers again.
/// `FASTER_CRASH_COMPACT_ROUNDS` rounds (default 3). At least one round's child must have
/// finished a compaction before its kill.
#[test]
fn crash_prefix_survives_sigkill_during_compaction() {
    let rounds: u64 = std::env::var("FASTER_CRASH_COMPACT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    COMPACTING.with(|c| c.set(true));
    crash_rounds(rounds, false);
    let compacted = COMPACTIONS_SEEN.load(std::sync::atomic::Ordering::Relaxed);
    println!("crash_prefix: {compacted} compactions reported before the kills");
    assert!(compacted > 0, "no child compacted before its kill");
}

/// Compactions the children of the compaction test reported before their kills.
static COMPACTIONS_SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Rounds of the growth test whose kill landed inside a growth.
static GROWTH_KILLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn crash_rounds(rounds: u64, grow: bool) {
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
        // Growth rounds are killed this soon after a growth begins, so that the kill lands
        // in it (its wait for the sessions and its split take longer in a debug build).
        let delay_ms = if grow { rng.below(4) } else { rng.below(301) };
        let t = Instant::now();
        match std::panic::catch_unwind(|| one_round(round, delay_ms, grow)) {
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
    if grow {
        let inside = GROWTH_KILLS.load(std::sync::atomic::Ordering::Relaxed);
        println!("crash_prefix: {inside} of {rounds} kills landed inside a growth");
        assert!(inside > 0, "no kill landed inside a growth");
    }
}
