//! One open store per directory (defect 7 of the hardening issue): a second open, from this
//! process or another, fails at once with `Error::InUse` and reads or changes nothing; a
//! process killed with SIGKILL leaves no lock behind. The other process is this test binary,
//! re-executed (`child_holds_the_store`).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use faster::{Config, Error, FasterKv, LogDevice};

/// The environment variable that makes `child_holds_the_store` run, naming the directory.
const CHILD_ENV: &str = "FASTER_LOCK_CHILD";

fn config(dir: &Path) -> Config {
    Config::new(dir)
        .with_log_device(LogDevice::File)
        .with_log_memory(1 << 20)
        .with_page_size(64 << 10)
        .with_table_bits(10)
}

/// The child: opens a new store, writes `k`, checkpoints, says `CHILD-READY` and holds the store
/// until its stdin closes (the parent kills it first). Runs only when re-executed.
#[test]
#[ignore = "the child process of a_second_process_gets_in_use_until_the_first_is_killed"]
fn child_holds_the_store() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = FasterKv::open(config(Path::new(&dir))).expect("child: open");
    let mut s = store.start_session();
    s.upsert(b"k", b"from the child").expect("child: upsert");
    store
        .checkpoint()
        .unwrap()
        .wait()
        .expect("child: checkpoint");
    println!("CHILD-READY");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

#[test]
fn a_second_process_gets_in_use_until_the_first_is_killed() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_holds_the_store",
            "--exact",
            "--nocapture",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // libtest prints the test's name on the same line first.
    while !line.contains("CHILD-READY") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended before it held the store"
        );
    }
    let listing = |p: &Path| {
        let mut names: Vec<_> = walk(p);
        names.sort();
        names
    };
    let before = listing(dir.path());
    for attempt in [
        FasterKv::open(config(dir.path())).map(|_| ()),
        FasterKv::recover(config(dir.path())).map(|_| ()),
    ] {
        match attempt {
            Err(Error::InUse { dir: d }) => assert_eq!(d, dir.path()),
            other => panic!("expected InUse while the child holds the store, got {other:?}"),
        }
    }
    assert_eq!(
        listing(dir.path()),
        before,
        "the refused opens changed nothing"
    );
    // SIGKILL: the kernel drops the lock with the process.
    child.kill().unwrap();
    child.wait().unwrap();
    let (store, rec) = FasterKv::recover(config(dir.path())).expect("recover after the kill");
    assert_eq!(rec.sessions.len(), 1);
    let mut s = store.start_session();
    assert_eq!(s.read(b"k").unwrap(), Some(b"from the child".to_vec()));
    // And in this process: held while the store lives, released when it is freed.
    assert!(matches!(
        FasterKv::recover(config(dir.path())),
        Err(Error::InUse { .. })
    ));
    drop((s, store));
    FasterKv::recover(config(dir.path())).expect("recover after the store was freed");
}

/// Every path below `dir` with its size (directories as size 0).
fn walk(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        let name = e.path().display().to_string();
        if m.is_dir() {
            out.push((name, 0));
            out.extend(walk(&e.path()));
        } else {
            out.push((name, m.len()));
        }
    }
    out
}
