//! Key choosers: YCSB's Zipfian generator (Gray et al., "Quickly generating billion-record
//! synthetic databases", SIGMOD 1994, as used by YCSB's `ZipfianGenerator`), its scrambled
//! form (`ScrambledZipfianGenerator`), and uniform; plus the small PRNG that drives them.
//!
//! These run only while the operation streams are generated, before timing starts
//! ([`crate::workload::generate_streams`]), so their speed is not measured.

/// YCSB's default Zipfian constant.
pub const ZIPF_THETA: f64 = 0.99;

/// SplitMix64: a small, fast, well-mixed 64-bit generator (Steele et al., 2014). Seeded
/// streams are reproducible, so every system sees the same operation sequence.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform double in `[0, 1)` (53 random bits).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)` (Lemire's multiply-shift; the bias is below 2^-32 for
    /// the key counts used here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// `zeta(n, theta) = sum_{i=1..n} 1 / i^theta`.
pub fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| (i as f64).powf(-theta)).sum()
}

/// YCSB's standard Zipfian generator over ranks `[0, n)`: rank 0 is the most popular, with
/// probability `1 / zeta(n, theta)`; rank `i` has probability proportional to
/// `1 / (i + 1)^theta`.
#[derive(Clone, Debug)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    half_pow_theta: f64,
}

impl Zipfian {
    /// A generator over `n >= 1` items with constant `theta` in `(0, 1)`. Computes
    /// `zeta(n, theta)` in `O(n)` (about 0.1 s for 10 M items).
    pub fn new(n: u64, theta: f64) -> Self {
        assert!(n >= 1, "a Zipfian generator needs at least one item");
        assert!(theta > 0.0 && theta < 1.0, "theta must lie in (0, 1)");
        let zetan = zeta(n, theta);
        let zeta2 = zeta(2.min(n), theta);
        let eta = if n > 2 {
            (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan)
        } else {
            0.0
        };
        Zipfian {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
            half_pow_theta: 0.5f64.powf(theta),
        }
    }

    /// The number of items.
    pub fn items(&self) -> u64 {
        self.n
    }

    /// The constant `theta`.
    pub fn theta(&self) -> f64 {
        self.theta
    }

    /// `zeta(n, theta)`.
    pub fn zetan(&self) -> f64 {
        self.zetan
    }

    /// The rank for the uniform draw `u` in `[0, 1)` (YCSB's `nextLong`).
    pub fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 || self.n == 1 {
            return 0;
        }
        if uz < 1.0 + self.half_pow_theta || self.n == 2 {
            return 1;
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }

    /// A rank drawn with `rng`.
    pub fn sample(&self, rng: &mut SplitMix64) -> u64 {
        self.rank(rng.next_f64())
    }
}

/// YCSB's 64-bit FNV-1 hash of a `long` (`Utils.fnvhash64`): the eight low-to-high octets of
/// `v`, each xor-ed in and then multiplied by the FNV prime.
pub fn fnv_hash64(v: u64) -> u64 {
    const OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    let mut h = OFFSET;
    let mut v = v;
    for _ in 0..8 {
        h ^= v & 0xFF;
        h = h.wrapping_mul(PRIME);
        v >>= 8;
    }
    h
}

/// The scrambled Zipfian generator: a Zipfian rank, hashed with [`fnv_hash64`] and reduced
/// modulo `n`, so the popular keys are spread over the key space instead of clustered at its
/// start (and so over the index and the log).
///
/// YCSB draws the rank over a fixed 10^10 items and then hashes; this draws it over `n` items
/// (so the skew is exactly that of `theta` over the store's keys). As in YCSB, the hash
/// modulo `n` is not a permutation: a few ranks collide, which merges their popularity.
#[derive(Clone, Debug)]
pub struct ScrambledZipfian {
    zipf: Zipfian,
}

impl ScrambledZipfian {
    /// A generator over keys `[0, n)` with constant `theta`.
    pub fn new(n: u64, theta: f64) -> Self {
        ScrambledZipfian {
            zipf: Zipfian::new(n, theta),
        }
    }

    /// The key for a rank.
    pub fn key_of_rank(&self, rank: u64) -> u64 {
        fnv_hash64(rank) % self.zipf.items()
    }

    /// A key drawn with `rng`.
    pub fn sample(&self, rng: &mut SplitMix64) -> u64 {
        self.key_of_rank(self.zipf.sample(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_head_matches_theory() {
        let n = 1000;
        let z = Zipfian::new(n, ZIPF_THETA);
        let mut rng = SplitMix64::new(7);
        let draws = 200_000;
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            let r = z.sample(&mut rng);
            assert!(r < n);
            counts[r as usize] += 1;
        }
        for (i, &c) in counts.iter().enumerate().take(2) {
            let p = 1.0 / ((i + 1) as f64).powf(ZIPF_THETA) / z.zetan();
            let got = c as f64 / draws as f64;
            assert!((got - p).abs() < 0.01, "rank {i}: {got} vs {p}");
        }
        // Monotone on average: the first tenth of the ranks gets far more than a tenth.
        let head: u64 = counts[..100].iter().sum();
        assert!(head as f64 / draws as f64 > 0.5);
    }

    #[test]
    fn scrambled_keys_in_range_and_skewed() {
        let n = 10_000;
        let z = ScrambledZipfian::new(n, ZIPF_THETA);
        let mut rng = SplitMix64::new(1);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..100_000 {
            let k = z.sample(&mut rng);
            assert!(k < n);
            *counts.entry(k).or_insert(0u64) += 1;
        }
        let hottest = counts.values().max().copied().unwrap_or(0);
        assert!(hottest > 5_000, "the hottest key should take ~10% of draws");
        assert_eq!(counts.get(&z.key_of_rank(0)).copied(), Some(hottest));
    }

    #[test]
    fn tiny_domains() {
        let mut rng = SplitMix64::new(3);
        for n in 1..4 {
            let z = Zipfian::new(n, ZIPF_THETA);
            for _ in 0..1000 {
                assert!(z.sample(&mut rng) < n);
            }
        }
        assert!(rng.below(5) < 5);
    }
}
