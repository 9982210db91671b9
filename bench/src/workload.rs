//! Workloads (YCSB A, B, C and an RMW counter workload), key distributions, and the
//! pre-generated operation streams the runner replays.
//!
//! As in FASTER's YCSB benchmark, keys and operations are generated **before timing starts**:
//! each thread gets an array of 64-bit entries, `key | (choice << 48)`, where `choice` is 16
//! uniform random bits that decide the operation (a read if `choice` is below the workload's
//! read threshold). One stream per thread and distribution serves every workload, so all
//! workloads and all systems replay exactly the same key sequence; a thread cycles through its
//! stream if the cell outlasts it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::zipf::{ScrambledZipfian, SplitMix64, ZIPF_THETA};

/// Keys must fit in the low 48 bits of a stream entry.
pub const MAX_KEYS: u64 = 1 << KEY_BITS;
const KEY_BITS: u32 = 48;
const KEY_MASK: u64 = MAX_KEYS - 1;

/// A YCSB workload: its mix of operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// YCSB-A: 50% reads, 50% upserts.
    A,
    /// YCSB-B: 95% reads, 5% upserts.
    B,
    /// YCSB-C: 100% reads.
    C,
    /// 100% read-modify-writes, each adding 1 to the key's little-endian `u64` counter.
    Rmw,
}

/// One operation of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read the key.
    Read,
    /// Set the key to an 8-byte value.
    Upsert,
    /// Add 1 to the key's counter.
    Rmw,
}

impl Workload {
    /// All workloads.
    pub const ALL: [Workload; 4] = [Workload::A, Workload::B, Workload::C, Workload::Rmw];

    /// Reads are the choices below this (out of 65536); the rest are the workload's write.
    fn read_threshold(self) -> u32 {
        match self {
            Workload::A => 32_768,
            Workload::B => 62_259, // 0.95 * 65536
            Workload::C => 65_536,
            Workload::Rmw => 0,
        }
    }

    /// The operation for the 16-bit `choice` of a stream entry.
    #[inline]
    pub fn op(self, choice: u16) -> Op {
        if u32::from(choice) < self.read_threshold() {
            Op::Read
        } else if self == Workload::Rmw {
            Op::Rmw
        } else {
            Op::Upsert
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::A => "a",
            Workload::B => "b",
            Workload::C => "c",
            Workload::Rmw => "rmw",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "a" | "ycsb-a" => Ok(Workload::A),
            "b" | "ycsb-b" => Ok(Workload::B),
            "c" | "ycsb-c" => Ok(Workload::C),
            "rmw" => Ok(Workload::Rmw),
            _ => Err(format!("unknown workload {s:?} (a, b, c, rmw)")),
        }
    }
}

/// How keys are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dist {
    /// Scrambled Zipfian with theta = 0.99 ([`ScrambledZipfian`]).
    Zipf,
    /// Uniform over all keys.
    Uniform,
}

impl Dist {
    /// Both distributions.
    pub const ALL: [Dist; 2] = [Dist::Zipf, Dist::Uniform];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Dist::Zipf => "zipf",
            Dist::Uniform => "uniform",
        }
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "zipf" | "zipfian" => Ok(Dist::Zipf),
            "uniform" | "uni" => Ok(Dist::Uniform),
            _ => Err(format!("unknown distribution {s:?} (zipf, uniform)")),
        }
    }
}

/// One thread's pre-generated sequence of `(choice, key)` entries.
#[derive(Clone, Debug)]
pub struct OpStream {
    entries: Vec<u64>,
}

impl OpStream {
    /// The number of entries (the stream is replayed cyclically).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the stream is empty (never, for generated streams).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The raw entries.
    pub fn entries(&self) -> &[u64] {
        &self.entries
    }

    /// Splits an entry into its key and its 16-bit choice.
    #[inline]
    pub fn decode(entry: u64) -> (u64, u16) {
        (entry & KEY_MASK, (entry >> KEY_BITS) as u16)
    }
}

/// Generates `threads` streams of `len` entries over keys `[0, keys)`, one generator thread
/// per stream, seeded from `seed` and the stream's index (so stream `i` is the same whatever
/// the number of streams).
pub fn generate_streams(
    dist: Dist,
    keys: u64,
    threads: usize,
    len: usize,
    seed: u64,
) -> Vec<OpStream> {
    assert!((1..=MAX_KEYS).contains(&keys), "keys must lie in [1, 2^48]");
    assert!(len >= 1, "streams need at least one entry");
    let zipf = match dist {
        Dist::Zipf => Some(ScrambledZipfian::new(keys, ZIPF_THETA)),
        Dist::Uniform => None,
    };
    let zipf = zipf.as_ref();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut rng =
                        SplitMix64::new(seed ^ (t as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
                    let entries = (0..len)
                        .map(|_| {
                            let key = match zipf {
                                Some(z) => z.sample(&mut rng),
                                None => rng.below(keys),
                            };
                            let choice = rng.next_u64() >> 48;
                            key | (choice << KEY_BITS)
                        })
                        .collect();
                    OpStream { entries }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("stream generator panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes() {
        let count = |w: Workload, op: Op| (0..=u16::MAX).filter(|&c| w.op(c) == op).count();
        assert_eq!(count(Workload::A, Op::Read), 32_768);
        assert_eq!(count(Workload::A, Op::Upsert), 32_768);
        assert_eq!(count(Workload::B, Op::Read), 62_259);
        assert_eq!(count(Workload::C, Op::Read), 65_536);
        assert_eq!(count(Workload::Rmw, Op::Rmw), 65_536);
    }

    #[test]
    fn streams_are_reproducible_and_in_range() {
        for dist in Dist::ALL {
            let a = generate_streams(dist, 1000, 2, 5000, 42);
            let b = generate_streams(dist, 1000, 1, 5000, 42);
            assert_eq!(a[0].entries(), b[0].entries());
            assert_ne!(a[0].entries(), a[1].entries());
            for &e in a[1].entries() {
                assert!(OpStream::decode(e).0 < 1000);
            }
        }
        assert_eq!("RMW".parse::<Workload>(), Ok(Workload::Rmw));
        assert_eq!("zipf".parse::<Dist>(), Ok(Dist::Zipf));
    }
}
