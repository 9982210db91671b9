//! What memory costs on this machine at the time of a run: the latency of a dependent random
//! load (pointer chasing through a single random cycle of cache lines), within a region that
//! fits in the core's private cache and across one far larger than the last-level cache,
//! backed by transparent huge pages as the store's index and log are.
//!
//! On a shared or virtualised machine this moves with the neighbours' load, and the store's
//! per-operation path makes two dependent loads for a key that is not cached (its index
//! bucket, then its record), so a report that states it can be read against another day's.

use std::time::Instant;

use memmap2::MmapMut;
use serde::Serialize;

/// The far region the benchmark reports measure ([`measure`]): far larger than the
/// last-level cache, and quick to set up (about 0.3 s).
pub const REPORT_FAR_BYTES: usize = 128 << 20;

/// Bytes per probe slot: one cache line.
const LINE: usize = 64;

/// The two latencies measured by [`measure`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MemoryLatency {
    /// Size of the near region in bytes.
    pub near_bytes: usize,
    /// Nanoseconds per dependent load within the near region.
    pub near_ns: f64,
    /// Size of the far region in bytes.
    pub far_bytes: usize,
    /// Nanoseconds per dependent load across the far region.
    pub far_ns: f64,
}

impl MemoryLatency {
    /// One line for a report.
    pub fn describe(&self) -> String {
        format!(
            "memory now: a dependent random load takes {:.0} ns within {} KiB and {:.0} ns \
             across {} MiB (huge pages)",
            self.near_ns,
            self.near_bytes >> 10,
            self.far_ns,
            self.far_bytes >> 20
        )
    }
}

/// Measures the near (512 KiB) and far (`far_bytes`, at least 1 MiB) latencies; about 0.3 s
/// for 128 MiB. `None` if the far region cannot be mapped.
pub fn measure(far_bytes: usize) -> Option<MemoryLatency> {
    let far_bytes = far_bytes.max(1 << 20);
    let near_bytes = 512 << 10;
    Some(MemoryLatency {
        near_bytes,
        near_ns: chase_ns(near_bytes, 1 << 20)?,
        far_bytes,
        far_ns: chase_ns(far_bytes, 1 << 20)?,
    })
}

/// Nanoseconds per load of `steps` dependent loads through a random single cycle over the
/// cache lines of a `bytes`-byte anonymous mapping.
fn chase_ns(bytes: usize, steps: usize) -> Option<f64> {
    let lines = bytes / LINE;
    if lines < 2 || u32::try_from(lines).is_err() {
        return None;
    }
    let mut map = MmapMut::map_anon(bytes).ok()?;
    #[cfg(target_os = "linux")]
    {
        // Advisory, before the first touch, as the store's frames do.
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    // Sattolo's algorithm: a uniformly random permutation with a single cycle, so the chase
    // visits every line before it repeats.
    let mut next: Vec<u32> = (0..lines as u32).collect();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..lines).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let j = ((rng as u128 * i as u128) >> 64) as usize; // uniform in 0..i
        next.swap(i, j);
    }
    for (line, &to) in next.iter().enumerate() {
        map[line * LINE..line * LINE + 8].copy_from_slice(&u64::from(to).to_ne_bytes());
    }
    drop(next);
    let load = |at: usize| -> usize {
        let mut b = [0u8; 8];
        b.copy_from_slice(&map[at * LINE..at * LINE + 8]);
        u64::from_ne_bytes(b) as usize
    };
    // Warm the page tables and caches as far as they go, then time.
    let mut at = 0usize;
    for _ in 0..steps.min(lines) {
        at = load(at);
    }
    let start = Instant::now();
    for _ in 0..steps {
        at = load(at);
    }
    let ns = start.elapsed().as_nanos() as f64 / steps as f64;
    std::hint::black_box(at);
    Some(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_positive_and_described() {
        let m = measure(4 << 20).expect("a 4 MiB mapping");
        assert!(m.near_ns > 0.0 && m.far_ns > 0.0, "{m:?}");
        assert_eq!((m.near_bytes, m.far_bytes), (512 << 10, 4 << 20));
        let line = m.describe();
        assert!(line.contains("512 KiB") && line.contains("4 MiB"), "{line}");
    }

    #[test]
    fn too_small_regions_are_refused() {
        assert_eq!(chase_ns(64, 10), None);
    }
}
