//! The child process of a crash round (`faster __crash-child --dir D`): it creates a store,
//! runs the tagged workload ([`crate::workload`]) on several sessions while a thread
//! checkpoints, and reports on standard output, one line each:
//!
//! * `SESSION <i> <id>`: session `i` started, before any work;
//! * `CKPT <version> <micros> <bytes> <id>:<t>,...`: a checkpoint is durable, with its
//!   duration, the bytes it wrote and every session's cut;
//! * `ERR <message>`: something failed; the child then exits with status 2.
//!
//! Its first line is empty, so that whatever a test harness printed before it (`test
//! child_main ... `, without a newline) stands on a line of its own. It never ends on its
//! own before [`ChildOptions::lifetime`]: the parent kills it.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use faster::{FasterKv, Session};

use super::store_config;
use crate::workload::step;

/// What the child runs.
#[derive(Clone, Debug)]
pub struct ChildOptions {
    /// Sessions, each on its own thread.
    pub sessions: usize,
    /// Each session sleeps 1 ms after this many operations (0: never), which bounds the
    /// prefixes the parent must read back.
    pub ops_per_ms: u64,
    /// A session stops issuing operations at this serial (then idles), which bounds the keys
    /// the index must hold.
    pub max_serial: u64,
    /// The pause between the end of one checkpoint and the request of the next.
    pub checkpoint_every: Duration,
    /// The child exits (status 3) after this long, in case the parent is gone.
    pub lifetime: Duration,
    /// Start with an index of 2^12 buckets and double it every half checkpoint interval (up
    /// to 2^20) on a thread of its own while the sessions write and the checkpoints run,
    /// reporting `GROW-BEGIN <bits>` before and `GROW <bits>` after each growth.
    pub grow_index: bool,
    /// Compact the log over and over (log files of 256 KiB, so that truncation deletes
    /// files often) on a thread of its own, reporting `COMPACT <begin>` after each: kills
    /// then land during compactions, truncations and checkpoint removals.
    pub compact: bool,
}

impl Default for ChildOptions {
    fn default() -> Self {
        ChildOptions {
            sessions: 4,
            ops_per_ms: 24,
            max_serial: 200_000,
            checkpoint_every: Duration::from_millis(200),
            lifetime: Duration::from_secs(60),
            grow_index: false,
            compact: false,
        }
    }
}

/// Writes one protocol line to standard output and flushes it (a closed pipe ends the
/// child: the parent is gone).
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(4);
    }
}

/// Reports `ERR <what>: <e>` and exits with status 2.
fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    report(&format!("ERR {what}: {e}"));
    std::process::exit(2);
}

/// Runs the child in store directory `dir` (which must not hold a store yet). Never returns:
/// the parent kills the process, or it exits on a failure or after its lifetime.
pub fn run(dir: &Path, options: &ChildOptions) -> ! {
    report("");
    let config = if options.grow_index {
        store_config(dir).with_table_bits(12)
    } else {
        store_config(dir)
    };
    let config = if options.compact {
        config.with_device_options(
            faster::device::DeviceOptions::default().with_segment_size(256 << 10),
        )
    } else {
        config
    };
    let store = FasterKv::open(config).unwrap_or_else(|e| fail("open", e));
    let sessions: Vec<Session> = (0..options.sessions)
        .map(|i| {
            let s = store
                .try_start_session()
                .unwrap_or_else(|e| fail("start session", e));
            report(&format!("SESSION {i} {}", s.id()));
            s
        })
        .collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for mut s in sessions {
            let o = options.clone();
            scope.spawn(move || {
                loop {
                    if s.serial() >= o.max_serial {
                        // Idle, but keep refreshing so checkpoints are not held back.
                        std::thread::sleep(Duration::from_millis(10));
                        s.refresh().unwrap_or_else(|e| fail("refresh", e));
                        continue;
                    }
                    step(&mut s).unwrap_or_else(|e| fail("operation", e));
                    if o.ops_per_ms > 0 && s.serial() % o.ops_per_ms == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
        }
        let store = &store;
        if options.grow_index {
            scope.spawn(move || {
                // A growth every half checkpoint interval, up to 2^20 buckets, each announced
                // before it begins (the parent may kill the child right then).
                while store.index().table_bits() < 20 {
                    std::thread::sleep(options.checkpoint_every / 2);
                    loop {
                        report(&format!("GROW-BEGIN {}", store.index().table_bits()));
                        match store.grow_index().and_then(|h| h.wait()) {
                            Ok(info) => {
                                report(&format!("GROW {}", info.to_bits));
                                break;
                            }
                            // A checkpoint's turn, or an automatic growth's: this one did
                            // not start; try again after it.
                            Err(
                                faster::Error::CheckpointInProgress { .. }
                                | faster::Error::GrowthInProgress,
                            ) => {
                                report(&format!("GROW {}", store.index().table_bits()));
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            Err(e) => fail("grow", e),
                        }
                    }
                }
            });
        }
        if options.compact {
            scope.spawn(move || {
                loop {
                    match store.compact(None).and_then(|h| h.wait()) {
                        Ok(info) => report(&format!("COMPACT {}", info.until)),
                        Err(faster::Error::CompactionInProgress) => {}
                        Err(e) => fail("compact", e),
                    }
                    std::thread::sleep(options.checkpoint_every / 4);
                }
            });
        }
        scope.spawn(move || {
            loop {
                std::thread::sleep(options.checkpoint_every);
                if started.elapsed() > options.lifetime {
                    std::process::exit(3);
                }
                let info = store
                    .checkpoint()
                    .and_then(|h| h.wait())
                    .unwrap_or_else(|e| fail("checkpoint", e));
                let cuts: Vec<String> = info
                    .sessions
                    .iter()
                    .map(|(id, t)| format!("{id}:{t}"))
                    .collect();
                report(&format!(
                    "CKPT {} {} {} {}",
                    info.version,
                    info.duration.as_micros(),
                    info.index_bytes + info.log_bytes,
                    cuts.join(",")
                ));
            }
        });
    });
    // The threads loop until the process exits.
    std::process::exit(3)
}
