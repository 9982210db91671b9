//! The hostile-directory sweep (the hardening issue's tests): from a store with several
//! checkpoints (fold-over and snapshot, two sessions of the tagged workload), each case damages
//! a fresh copy of the directory and recovers it:
//!
//! * a log segment deleted, truncated, or with a flipped byte;
//! * a snapshot or index segment deleted, truncated or damaged;
//! * symbolic links, pointing outside the store, for a log segment, the log directory, a
//!   checkpoint directory and the checkpoints directory;
//! * metadata fields set to extremes (a huge index over a sparse file, overflow counts,
//!   serials and session ids at `u64::MAX`, page and segment sizes, addresses), re-framed
//!   with a valid checksum.
//!
//! Recovery must never panic, and either fails with a typed error or restores one of the
//! checkpoints exactly: reading back every operation of every session gives its value up
//! to the recovered cut and nothing after, or (for a record whose bytes were damaged below
//! the range recovery replays, which only a read of it meets) a typed error, never a value
//! that was not written. A sentinel directory outside the store, which the links point into,
//! must stay byte-for-byte unchanged.
//!
//! `FASTER_HOSTILE_SEED` replays a run (the seed is printed); `FASTER_HOSTILE_CASES` sets the
//! number of random damage cases on top of the fixed ones (default 24).

#[path = "recovery_common.rs"]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use common::{copy_dir, files, tempdir};
use faster::recovery::{CheckpointMeta, CheckpointToken, StoreLayout, codec};
use faster::{CheckpointOptions, Config, FasterKv, LogCapture, LogDevice, SessionId};
use faster_cli::workload::{self, counter_key, last_key, last_value, unique_key, value};

const SESSIONS: usize = 2;
/// Operations per session between checkpoints.
const STRETCH: u64 = 700;

fn config(dir: &Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(12)
        .with_device_options(faster::device::DeviceOptions::default().with_segment_size(64 << 10))
}

/// A small deterministic generator (xorshift64*), so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The pristine store: its directory, the checkpoints it took (token -> cuts) and each
/// session's last serial.
struct Pristine {
    dir: tempfile::TempDir,
    cuts: BTreeMap<String, Vec<(SessionId, u64)>>,
    issued: Vec<(SessionId, u64)>,
}

/// Two sessions write the tagged workload; after each stretch a checkpoint: fold-over,
/// snapshot, fold-over, snapshot; a last stretch is not checkpointed.
fn build() -> Pristine {
    let dir = tempdir();
    let store = FasterKv::open(config(dir.path())).unwrap();
    let mut sessions: Vec<_> = (0..SESSIONS).map(|_| store.start_session()).collect();
    let mut cuts = BTreeMap::new();
    let captures = [
        LogCapture::FoldOver,
        LogCapture::Snapshot,
        LogCapture::FoldOver,
        LogCapture::Snapshot,
    ];
    for capture in captures.iter().map(Some).chain([None]) {
        for s in &mut sessions {
            for _ in 0..STRETCH {
                workload::step(s).unwrap();
            }
        }
        if let Some(&log) = capture {
            let info = store
                .checkpoint_with(CheckpointOptions::full().with_log(log))
                .unwrap()
                .wait()
                .unwrap();
            cuts.insert(info.token, info.sessions);
        }
    }
    let issued = sessions.iter().map(|s| (s.id(), s.serial())).collect();
    drop(sessions);
    drop(store);
    Pristine { dir, cuts, issued }
}

/// One way to damage a copy of the store (`root` is the copy, `outside` the sentinel).
type Damage = Box<dyn Fn(&Path, &Path)>;
/// A change of a checkpoint's metadata.
type Edit = fn(&mut CheckpointMeta);

fn flip(path: &Path, at: u64, mask: u8) {
    let mut b = fs::read(path).unwrap();
    if b.is_empty() {
        return;
    }
    let i = (at % b.len() as u64) as usize;
    b[i] ^= mask.max(1);
    fs::write(path, b).unwrap();
}

fn truncate(path: &Path, to: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(to).unwrap();
}

/// Replaces `path` by a symbolic link to a copy of it in `outside`.
fn link_out(path: &Path, outside: &Path, name: &str) {
    let target = outside.join(name);
    if path.is_dir() {
        copy_dir(path, &target);
        fs::remove_dir_all(path).unwrap();
    } else {
        fs::copy(path, &target).unwrap();
        fs::remove_file(path).unwrap();
    }
    std::os::unix::fs::symlink(&target, path).unwrap();
}

/// The newest checkpoint's metadata, changed by `f` and written back with a valid frame and
/// checksum (never validated on the way: the point is to feed recovery what it must refuse).
fn craft(root: &Path, f: impl Fn(&mut CheckpointMeta)) {
    let layout = StoreLayout::new(root);
    let token = layout.list().unwrap()[0];
    let mut meta = layout.read_meta(&token).unwrap();
    f(&mut meta);
    fs::write(layout.meta_path(&token), codec::encode(&meta)).unwrap();
}

/// The checkpoints' tokens, newest first.
fn tokens(root: &Path) -> Vec<CheckpointToken> {
    StoreLayout::new(root).list().unwrap()
}

fn fixed_cases() -> Vec<(String, Damage)> {
    let mut cases: Vec<(String, Damage)> = Vec::new();
    let mut add = |name: &str, d: Damage| cases.push((name.to_string(), d));
    add("nothing", Box::new(|_, _| {}));
    add(
        "the last log segment deleted",
        Box::new(|root, _| {
            let f = files(&root.join("log"), "log");
            fs::remove_file(f.last().unwrap()).unwrap();
        }),
    );
    add(
        "a middle log segment deleted",
        Box::new(|root, _| {
            let f = files(&root.join("log"), "log");
            fs::remove_file(&f[f.len() / 2]).unwrap();
        }),
    );
    add(
        "the first log segment truncated to half",
        Box::new(|root, _| {
            let f = files(&root.join("log"), "log");
            truncate(&f[0], fs::metadata(&f[0]).unwrap().len() / 2);
        }),
    );
    add(
        "the last log segment truncated by a block",
        Box::new(|root, _| {
            let f = files(&root.join("log"), "log");
            let last = f.last().unwrap();
            truncate(last, fs::metadata(last).unwrap().len().saturating_sub(4096));
        }),
    );
    add(
        "the newest snapshot deleted",
        Box::new(|root, _| {
            let t = tokens(root);
            let layout = StoreLayout::new(root);
            for tok in &t {
                let f = files(&layout.snapshot_dir(tok), "snapshot");
                if let Some(p) = f.first() {
                    fs::remove_file(p).unwrap();
                    return;
                }
            }
        }),
    );
    add(
        "the newest index truncated",
        Box::new(|root, _| {
            let layout = StoreLayout::new(root);
            let f = files(&layout.index_dir(&tokens(root)[0]), "index");
            truncate(&f[0], 100);
        }),
    );
    add(
        "a log segment is a link outside",
        Box::new(|root, outside| {
            let f = files(&root.join("log"), "log");
            link_out(f.last().unwrap(), outside, "log-segment");
        }),
    );
    add(
        "the log directory is a link outside",
        Box::new(|root, outside| link_out(&root.join("log"), outside, "log-dir")),
    );
    add(
        "the newest checkpoint directory is a link outside",
        Box::new(|root, outside| {
            let layout = StoreLayout::new(root);
            link_out(&layout.checkpoint_dir(&tokens(root)[0]), outside, "ckpt")
        }),
    );
    add(
        "the checkpoints directory is a link outside",
        Box::new(|root, outside| link_out(&root.join("checkpoints"), outside, "ckpts")),
    );
    add(
        "the newest index segment is a link outside",
        Box::new(|root, outside| {
            let layout = StoreLayout::new(root);
            let f = files(&layout.index_dir(&tokens(root)[0]), "index");
            link_out(&f[0], outside, "index-segment")
        }),
    );
    // A table of 2^32 buckets (256 GiB) over one sparse index file of that length: the files
    // "justify" it, the machine refuses the mapping, and recovery says so (a typed error,
    // not the abort of an allocation). Where the kernel grants any mapping
    // (`overcommit_memory` 1), recovery would go on to read the whole sparse file: skipped.
    // 2^33 is beyond the documented limit and refused before anything is opened.
    let overcommit = fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    let bits: &[u32] = if overcommit.trim() == "1" {
        &[33]
    } else {
        &[32, 33]
    };
    for &bits in bits {
        add(
            &format!("table_bits {bits} over a sparse index file"),
            Box::new(move |root, _| {
                let layout = StoreLayout::new(root);
                let t = tokens(root)[0];
                let end = std::cell::Cell::new(0);
                craft(root, |m| {
                    if let Some(i) = m.index.as_mut() {
                        i.info.table_bits = bits;
                        i.info.table_bytes = 64u64 << bits;
                        i.info.overflow_offset = i.info.table_offset + i.info.table_bytes;
                        i.info.end_offset = i.info.overflow_offset + i.info.overflow_bytes;
                        i.segment_size = 1 << 40;
                        end.set(i.info.end_offset);
                    }
                });
                let f = files(&layout.index_dir(&t), "index");
                fs::OpenOptions::new()
                    .write(true)
                    .open(&f[0])
                    .unwrap()
                    .set_len(end.get())
                    .unwrap();
            }),
        );
    }
    let extremes: [(&str, Edit); 12] = [
        ("overflow buckets at the limit", |m| {
            if let Some(i) = m.index.as_mut() {
                i.info.overflow_capacity = u64::MAX;
                i.info.overflow_buckets = u64::MAX;
            }
        }),
        ("a session serial at u64::MAX", |m| {
            m.sessions[0].serial = u64::MAX;
            m.sessions[0].issued = u64::MAX;
        }),
        ("a session id at u64::MAX", |m| m.sessions[0].id = u64::MAX),
        ("a page size of 2^62", |m| m.page_size = 1 << 62),
        ("a log segment size of 1", |m| m.log_segment_size = Some(1)),
        ("a log segment size of 2^62", |m| {
            m.log_segment_size = Some(1 << 62)
        }),
        ("an index segment size of 8", |m| {
            if let Some(i) = m.index.as_mut() {
                i.segment_size = 8;
            }
        }),
        ("a final address at 2^48 - 8", |m| {
            m.final_address = (1 << 48) - 8
        }),
        ("a final address far past the log", |m| {
            m.final_address += 1 << 30
        }),
        ("a begin address past the start", |m| {
            m.begin_address = m.start_address + 8
        }),
        ("ten thousand sessions", |m| {
            m.sessions = (1..=10_000)
                .map(|id| faster::recovery::SessionRecord {
                    id,
                    serial: 1,
                    issued: 1,
                })
                .collect()
        }),
        ("the index start past the final address", |m| {
            if let Some(i) = m.index.as_mut() {
                i.start_address = m.final_address + 4096;
            }
        }),
    ];
    for (name, f) in extremes {
        add(name, Box::new(move |root, _| craft(root, f)));
    }
    cases
}

/// A random damage: a flipped byte, a truncation or a deletion of a random file of the log,
/// a snapshot or an index.
fn random_case(rng: &mut Rng, pristine: &Path) -> (String, Damage) {
    let mut all = files(&pristine.join("log"), "log");
    all.extend(files(&pristine.join("checkpoints"), "snapshot"));
    all.extend(files(&pristine.join("checkpoints"), "index"));
    let pick = all[rng.below(all.len() as u64) as usize]
        .strip_prefix(pristine)
        .unwrap()
        .to_path_buf();
    let len = fs::metadata(pristine.join(&pick)).unwrap().len();
    let (at, mask) = (rng.below(len), (rng.next() >> 8) as u8);
    match rng.below(8) {
        0 => (
            format!("{} deleted", pick.display()),
            Box::new(move |root, _| fs::remove_file(root.join(&pick)).unwrap()),
        ),
        1 => (
            format!("{} truncated to {at}", pick.display()),
            Box::new(move |root, _| truncate(&root.join(&pick), at)),
        ),
        _ => (
            format!("{} byte {at} xor {mask:#04x}", pick.display()),
            Box::new(move |root, _| flip(&root.join(&pick), at, mask)),
        ),
    }
}

/// How a case ended.
enum Outcome {
    /// Recovery refused, with this typed error.
    Refused(String),
    /// Recovery restored this checkpoint; reads of damaged records failed with a typed
    /// error this many times.
    Restored(String, u64),
}

/// Recovers `root` and checks the result against `pristine`'s checkpoints (see the module
/// documentation). Panics on a wrong value.
fn recover_and_check(root: &Path, pristine: &Pristine) -> Outcome {
    let (store, rec) = match FasterKv::recover(config(root)) {
        Ok(r) => r,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let cuts = pristine
        .cuts
        .get(&rec.token)
        .unwrap_or_else(|| panic!("recovered {} is none of the checkpoints taken", rec.token));
    let mut got = rec.sessions.clone();
    got.sort();
    let mut want = cuts.clone();
    want.sort();
    assert_eq!(got, want, "the cuts of {}", rec.token);
    let mut s = store.start_session();
    let mut read_errors = 0;
    let mut check = |key: Vec<u8>, want: Option<Vec<u8>>, what: &str| match s.read(&key) {
        Ok(v) => assert_eq!(v, want, "{what}"),
        Err(_) => read_errors += 1,
    };
    for &(id, last) in &pristine.issued {
        let sid = id.as_u64();
        let t = cuts.iter().find(|c| c.0 == id).unwrap().1;
        for n in 1..=last {
            if n % 4 == 1 || n % 4 == 2 {
                let want = (n <= t).then(|| value(n));
                check(
                    unique_key(sid, n),
                    want,
                    &format!("session {sid} op {n}, cut {t}"),
                );
            }
        }
        let counter = (t >= 4).then(|| (t / 4).to_le_bytes().to_vec());
        check(
            counter_key(sid),
            counter,
            &format!("session {sid} counter, cut {t}"),
        );
        let overwritten = (t >= 3).then(|| last_value(t - (t + 1) % 4));
        check(
            last_key(sid),
            overwritten,
            &format!("session {sid} last, cut {t}"),
        );
    }
    Outcome::Restored(rec.token, read_errors)
}

/// Every file under `dir` with its bytes.
fn snapshot_of(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(snapshot_of(&e.path()));
        } else if ft.is_file() {
            out.insert(e.path(), fs::read(e.path()).unwrap());
        }
    }
    out
}

#[test]
fn recovery_of_a_damaged_directory_is_exact_or_a_typed_error() {
    let seed = std::env::var("FASTER_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d_u64);
    let random: u64 = std::env::var("FASTER_HOSTILE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    eprintln!("hostile_dir: seed {seed}, {random} random cases");
    let pristine = build();
    assert_eq!(pristine.cuts.len(), 4);
    let mut rng = Rng(seed | 1);
    let mut cases = fixed_cases();
    for _ in 0..random {
        cases.push(random_case(&mut rng, pristine.dir.path()));
    }
    let mut refused = 0;
    for (i, (name, damage)) in cases.iter().enumerate() {
        let work = tempdir();
        let root = work.path().join("store");
        let outside = work.path().join("outside");
        copy_dir(pristine.dir.path(), &root);
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("sentinel"), b"outside the store").unwrap();
        damage(&root, &outside);
        let before = snapshot_of(&outside);
        let outcome = catch_unwind(AssertUnwindSafe(|| recover_and_check(&root, &pristine)))
            .unwrap_or_else(|_| panic!("case {i} ({name}, seed {seed}): panicked"));
        assert!(
            snapshot_of(&outside) == before,
            "case {i} ({name}, seed {seed}): the directory outside the store changed"
        );
        match &outcome {
            Outcome::Refused(e) => {
                refused += 1;
                eprintln!("case {i} ({name}): refused: {e}");
            }
            Outcome::Restored(token, errors) => {
                eprintln!("case {i} ({name}): restored {token}, {errors} typed read errors")
            }
        }
        if name == "nothing" {
            assert!(
                matches!(&outcome, Outcome::Restored(t, 0) if Some(t) == pristine.cuts.keys().last()),
                "the undamaged store recovers its newest checkpoint"
            );
        }
    }
    assert!(
        refused > 0,
        "no case was refused: the damage did not reach recovery"
    );
}
