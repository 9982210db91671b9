//! Shared by `checkpoint_concurrent` and `recovery_validation` (included with `#[path]`):
//! a workload whose every operation is tagged with its session and serial, so that the CPR
//! prefix of each session can be checked exactly after recovery.
//!
//! Session `sid`'s operation with serial `n` is, by `n % 4`:
//! * `0`: an RMW (`AddU64`, +1) of the session's counter key `c<sid>`;
//! * `1`, `2`: an upsert of the unique key `u<sid><n>` with value `v(n)`;
//! * `3`: an upsert of the session's overwritten key `l<sid>` with value `v(n)`.
//!
//! After recovering a checkpoint where the session's cut is `t`: every unique key with
//! `n <= t` holds `v(n)` and none with `n > t` exists, the counter equals the number of
//! `n <= t` with `n % 4 == 0`, and `l<sid>` holds `v` of the largest such `n % 4 == 3`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use faster::{AddU64, Config, FasterKv, LogDevice, Session, SessionId};

/// A store configuration on the real disk, small enough to evict constantly.
pub fn config(dir: &Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        // Room for every key the workers may write before they stop (up to 10 x 200k).
        .with_table_bits(18)
        .with_checkpoint_timeout(Duration::from_secs(20))
}

/// A fresh temporary directory under the target directory (real disk, not tmpfs).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

/// The unique key of session `sid`'s operation `n`.
pub fn unique_key(sid: u64, n: u64) -> Vec<u8> {
    let mut k = vec![b'u'];
    k.extend_from_slice(&sid.to_le_bytes());
    k.extend_from_slice(&n.to_le_bytes());
    k
}

/// The counter key of session `sid`.
pub fn counter_key(sid: u64) -> Vec<u8> {
    let mut k = vec![b'c'];
    k.extend_from_slice(&sid.to_le_bytes());
    k
}

/// The overwritten key of session `sid`.
pub fn last_key(sid: u64) -> Vec<u8> {
    let mut k = vec![b'l'];
    k.extend_from_slice(&sid.to_le_bytes());
    k
}

/// The value written by operation `n`: `n` and a filler of 24 bytes.
pub fn value(n: u64) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    v.extend_from_slice(&[(n % 251) as u8; 24]);
    v
}

/// Runs the session's next operation (serial `s.serial() + 1`) of the workload.
pub fn step(s: &mut Session) {
    let n = s.serial() + 1;
    let sid = s.id().as_u64();
    match n % 4 {
        0 => s.rmw(&counter_key(sid), &1u64.to_le_bytes(), &AddU64),
        3 => s.upsert(&last_key(sid), &value(n)),
        _ => s.upsert(&unique_key(sid, n), &value(n)),
    }
    .expect("operation");
    assert_eq!(s.serial(), n, "every operation takes the next serial");
}

/// Counters shared by the workers and the thread that drives them.
#[derive(Default)]
pub struct Load {
    /// Set to stop the workers.
    pub stop: AtomicBool,
    /// Operations done by all workers.
    pub progress: AtomicU64,
    /// Workers whose session has started.
    pub started: AtomicUsize,
}

/// Runs the workload on a new session until `load.stop` (at least `min_ops` operations, at
/// most `max_ops`), adding each operation to `load.progress`; returns the session's id and
/// last serial.
pub fn worker(store: &FasterKv, load: &Load, min_ops: u64, max_ops: u64) -> (SessionId, u64) {
    let (stop, progress) = (&load.stop, &load.progress);
    let mut s = store.start_session();
    load.started.fetch_add(1, Ordering::SeqCst);
    while (s.serial() < min_ops || !stop.load(Ordering::Relaxed)) && s.serial() < max_ops {
        step(&mut s);
        progress.fetch_add(1, Ordering::Relaxed);
    }
    (s.id(), s.serial())
}

/// Checks session `sid`'s exact prefix `t` in `store`; `issued` is the session's last serial
/// before the crash (keys up to it are checked for absence past `t`). `from` skips the
/// unique keys below it (already checked).
pub fn verify_session(s: &mut Session, sid: u64, t: u64, issued: u64) {
    for n in 1..=issued.max(t) {
        // Past the cut, absence is checked densely for 4096 operations, then sampled.
        if n % 4 == 0 || n % 4 == 3 || (n > t + 4096 && n % 61 != 1) {
            continue;
        }
        let got = s.read(&unique_key(sid, n)).expect("read");
        if n <= t {
            assert_eq!(got, Some(value(n)), "session {sid}: op {n} <= cut {t} lost");
        } else {
            assert_eq!(got, None, "session {sid}: op {n} > cut {t} present");
        }
    }
    let counter = s.read(&counter_key(sid)).expect("read");
    let want = t / 4;
    let got = counter.map_or(0, |v| AddU64::decode(&v));
    assert_eq!(got, want, "session {sid}: counter with cut {t}");
    let last = s.read(&last_key(sid)).expect("read");
    let want = (t >= 3).then(|| value(t - (t + 1) % 4));
    assert_eq!(last, want, "session {sid}: overwritten key with cut {t}");
}

/// Checks every worker's exact prefix: `cuts` are the recovered cuts, `issued` each worker's
/// last serial. Every worker must have a cut.
pub fn verify(store: &FasterKv, cuts: &[(SessionId, u64)], issued: &[(SessionId, u64)]) {
    let cuts: HashMap<SessionId, u64> = cuts.iter().copied().collect();
    let mut s = store.start_session();
    for &(id, last) in issued {
        let t = *cuts
            .get(&id)
            .unwrap_or_else(|| panic!("session {id} has no cut"));
        assert!(
            t <= last,
            "session {id}: cut {t} beyond its last serial {last}"
        );
        verify_session(&mut s, id.as_u64(), t, last);
    }
}

/// Copies directory `from` into `to` recursively (files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
