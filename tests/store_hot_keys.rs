//! Hot keys under in-place updates: threads upsert 8-byte values into and read a handful of
//! keys (each thread's values tagged with its id), so that every in-place update contends
//! for the same few record locks. Every thread must finish within a generous deadline (a
//! record lock that were never released would leave the others spinning forever), and every
//! read must return a value some thread wrote.

use faster::{Config, FasterKv, LogDevice};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

#[test]
fn hot_keys_under_in_place_updates_never_hang() {
    const THREADS: u64 = 4;
    const KEYS: u64 = 4;
    const OPS: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path())
        .with_log_device(LogDevice::Memory)
        .with_log_memory(8 << 20)
        .with_page_size(1 << 20)
        .with_table_bits(10);
    let store = FasterKv::open(config).unwrap();
    {
        let mut s = store.start_session();
        for k in 0..KEYS {
            s.upsert(&k.to_le_bytes(), &0u64.to_le_bytes()).unwrap();
        }
    }
    let (done, finished) = mpsc::channel();
    for t in 0..THREADS {
        let store = store.clone();
        let done = done.clone();
        thread::spawn(move || {
            let mut s = store.start_session();
            for i in 0..OPS {
                let k = (i * 7 + t) % KEYS;
                if i % 2 == 0 {
                    let v = t << 56 | i;
                    s.upsert(&k.to_le_bytes(), &v.to_le_bytes()).unwrap();
                } else {
                    let v = s
                        .read_with(&k.to_le_bytes(), |v| {
                            u64::from_le_bytes(v.expect("present").try_into().unwrap())
                        })
                        .unwrap();
                    assert!(v >> 56 < THREADS && v & ((1 << 56) - 1) < OPS, "{v:#x}");
                }
            }
            done.send(t).unwrap();
        });
    }
    drop(done);
    for _ in 0..THREADS {
        match finished.recv_timeout(Duration::from_secs(60)) {
            Ok(t) => assert!(t < THREADS),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("a thread is stuck after 60 s: a record lock never released?")
            }
            // Every sender is gone before all reported: a thread panicked.
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("a worker thread panicked"),
        }
    }
}
