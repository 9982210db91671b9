//! The overwrite workload of log-space reclamation: `keys` keys with `value_len`-byte
//! values, overwritten in a loop (uniformly random keys) for `total_bytes` of writes with a
//! checkpoint every `checkpoint_every` bytes, on a store with its default space policy. It
//! samples the store directory's size after every checkpoint and reports it against the live
//! data; at the end it recovers the store and checks that every key has its latest value.
//! `cargo xtask bench space` runs the full size; `bench/tests/space.rs` a CI-sized one.

use std::path::Path;
use std::time::{Duration, Instant};

use faster::{Config, FasterKv};

use crate::zipf::SplitMix64;

/// The workload's size.
#[derive(Clone, Debug)]
pub struct OverwriteSpec {
    /// Distinct keys (8-byte).
    pub keys: u64,
    /// Bytes of each value.
    pub value_len: usize,
    /// Bytes of values written in all (the initial load included).
    pub total_bytes: u64,
    /// Bytes of values written between two checkpoints.
    pub checkpoint_every: u64,
    /// Overwrites per [`faster::Session::upsert_batch`] call (1: one
    /// [`faster::Session::upsert`] each).
    pub batch: usize,
}

impl OverwriteSpec {
    /// The size: 100 k keys of 1000 bytes, 2.2 GB of writes, a checkpoint every
    /// 64 MiB.
    pub fn full() -> Self {
        OverwriteSpec {
            keys: 100_000,
            value_len: 1000,
            total_bytes: 2_200_000_000,
            checkpoint_every: 64 << 20,
            batch: 1,
        }
    }

    /// The live data: keys and values.
    pub fn live_bytes(&self) -> u64 {
        self.keys * (8 + self.value_len as u64)
    }
}

/// One sample, taken after a checkpoint.
#[derive(Clone, Debug)]
pub struct SpaceSample {
    /// Bytes of values written so far.
    pub written: u64,
    /// Bytes of the store directory on disk (log, checkpoints).
    pub disk: u64,
    /// Of which the log.
    pub log: u64,
    /// `disk / live`.
    pub ratio: f64,
    /// Compactions so far.
    pub compactions: u64,
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct SpaceReport {
    /// Every sample, in order.
    pub samples: Vec<SpaceSample>,
    /// The largest `disk / live`.
    pub peak_ratio: f64,
    /// The live data.
    pub live: u64,
    /// Compactions, and their scanned and copied bytes.
    pub compactions: u64,
    /// Bytes scanned by compactions.
    pub scanned: u64,
    /// Bytes copied by compactions.
    pub copied: u64,
    /// Time of the writing phase.
    pub write_time: Duration,
    /// Keys checked after recovery (all of them, with their latest value).
    pub verified: u64,
}

/// The value of `key` at `version`: self-describing, so a stale value is caught.
fn value(key: u64, version: u64, len: usize) -> Vec<u8> {
    let mut v = vec![(key.wrapping_mul(31) ^ version) as u8; len];
    v[..8].copy_from_slice(&version.to_le_bytes());
    if len >= 16 {
        v[8..16].copy_from_slice(&key.to_le_bytes());
    }
    v
}

/// Runs the workload in `dir` with `config` (whose directory must be `dir`); `progress`
/// sees each sample. Errors are the store's, or a key whose value after recovery is not its
/// latest (as a message).
pub fn run_overwrite(
    config: Config,
    spec: &OverwriteSpec,
    mut progress: impl FnMut(&SpaceSample),
) -> Result<SpaceReport, Box<dyn std::error::Error>> {
    let dir = config.dir().to_path_buf();
    let live = spec.live_bytes();
    let mut versions = vec![0u64; spec.keys as usize];
    let mut samples = Vec::new();
    let started = Instant::now();
    let history = {
        let store = FasterKv::open(config.clone())?;
        let mut s = store.start_session();
        for k in 0..spec.keys {
            s.upsert(&k.to_le_bytes(), &value(k, 0, spec.value_len))?;
        }
        let mut written = spec.keys * spec.value_len as u64;
        let mut next_checkpoint = spec.checkpoint_every;
        let mut rng = SplitMix64::new(0x5eed);
        let batch = spec.batch.max(1);
        let mut items: Vec<([u8; 8], Vec<u8>)> = Vec::with_capacity(batch);
        while written < spec.total_bytes {
            items.clear();
            while items.len() < batch && written < spec.total_bytes {
                let k = rng.below(spec.keys);
                let v = versions[k as usize] + 1;
                items.push((k.to_le_bytes(), value(k, v, spec.value_len)));
                versions[k as usize] = v;
                written += spec.value_len as u64;
            }
            if let [(k, v)] = &items[..] {
                s.upsert(k, v)?;
            } else {
                s.upsert_batch(&items)?;
            }
            if written >= next_checkpoint {
                next_checkpoint += spec.checkpoint_every;
                store.checkpoint()?.wait()?;
                let sample = sample(&store, &dir, written, live)?;
                progress(&sample);
                samples.push(sample);
            }
        }
        store.checkpoint()?.wait()?;
        let sample = sample(&store, &dir, written, live)?;
        progress(&sample);
        samples.push(sample);
        store.compaction_history()
    };
    let write_time = started.elapsed();
    {
        let (store, _) = FasterKv::recover(config)?;
        let mut s = store.start_session();
        for k in 0..spec.keys {
            let want = value(k, versions[k as usize], spec.value_len);
            let got = s.read(&k.to_le_bytes())?;
            if got.as_deref() != Some(&want[..]) {
                return Err(format!("key {k}: not its latest value after recovery").into());
            }
        }
    }
    let peak_ratio = samples.iter().map(|s| s.ratio).fold(0.0, f64::max);
    let last = samples.last().map_or(0, |s| s.compactions);
    Ok(SpaceReport {
        peak_ratio,
        live,
        compactions: last,
        scanned: history.iter().map(|c| c.bytes_scanned).sum(),
        copied: history.iter().map(|c| c.bytes_copied).sum(),
        samples,
        write_time,
        verified: spec.keys,
    })
}

fn sample(store: &FasterKv, dir: &Path, written: u64, live: u64) -> faster::Result<SpaceSample> {
    let space = store.space()?;
    let disk = faster::DiskUsage::of(dir)?;
    Ok(SpaceSample {
        written,
        disk: disk.total(),
        log: disk.log,
        ratio: disk.total() as f64 / live as f64,
        compactions: space.compactions,
    })
}
