//! Shared by `checkpoint_concurrent`, `recovery_validation` and `crash_prefix` (included
//! with `#[path]`): a workload whose every operation is tagged with its session and serial,
//! so that the CPR prefix of each session can be checked exactly after recovery. The
//! workload itself is `faster_cli::workload`'s; this file adds the panicking forms and the
//! worker loop the suites use. Session `sid`'s operation `n` is an RMW of its counter, an
//! upsert of a unique key, or an upsert of its overwritten key, by `n % 4`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use faster::{Config, FasterKv, Session, SessionId};

/// A store configuration on the real disk, small enough to evict constantly: the crash
/// round's (`faster_cli::crash::store_config`: the file device, 1 MiB of log memory in
/// 64 KiB pages), with room for every key the workers may write before they stop (up to
/// 10 x 200k).
pub fn config(dir: &Path) -> Config {
    faster_cli::crash::store_config(dir).with_table_bits(18)
}

/// A fresh temporary directory under the target directory (real disk, not tmpfs).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

#[allow(unused_imports)]
pub use faster_cli::workload::value;

/// Runs the session's next operation (serial `s.serial() + 1`) of the workload.
pub fn step(s: &mut Session) {
    let n = s.serial() + 1;
    faster_cli::workload::step(s).expect("operation");
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

/// [`worker`] issuing the workload in mixed batches of `batch` operations
/// ([`faster_cli::workload::step_batch`]), so that checkpoints cut sessions inside batches.
pub fn worker_batched(
    store: &FasterKv,
    load: &Load,
    (min_ops, max_ops): (u64, u64),
    batch: u64,
) -> (SessionId, u64) {
    let (stop, progress) = (&load.stop, &load.progress);
    let mut s = store.start_session();
    load.started.fetch_add(1, Ordering::SeqCst);
    while (s.serial() < min_ops || !stop.load(Ordering::Relaxed)) && s.serial() < max_ops {
        let n = s.serial() + batch;
        faster_cli::workload::step_batch(&mut s, batch).expect("batch");
        assert_eq!(
            s.serial(),
            n,
            "every operation of a batch takes the next serial"
        );
        progress.fetch_add(batch, Ordering::Relaxed);
    }
    (s.id(), s.serial())
}

/// Checks session `sid`'s exact prefix `t` in `store`; `issued` is the session's last serial
/// before the crash (keys up to it are checked for absence past `t`); panics on a violation
/// (see `faster_cli::workload::verify_session`).
pub fn verify_session(s: &mut Session, sid: u64, t: u64, issued: u64) {
    if let Err(e) = faster_cli::workload::verify_session(s, sid, t, issued) {
        panic!("{e}");
    }
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

/// Every file below `dir` whose name starts with `prefix.`.
pub fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p, prefix));
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&format!("{prefix}.")))
        {
            out.push(p);
        }
    }
    out.sort();
    out
}
