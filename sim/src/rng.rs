//! The simulator's own pseudo-random numbers: xoshiro256** seeded through splitmix64.
//!
//! Hand-written on purpose: a dependency's generator may change its output in a minor
//! release, and then the same scenario and seed would no longer give the same report. These
//! twenty lines never change, so a seed printed in a report reproduces it for good.

/// xoshiro256** (Blackman and Vigna), seeded by running splitmix64 over the seed.
///
/// ```
/// use failover_buffer_sim::Rng;
///
/// let mut a = Rng::new(7);
/// let mut b = Rng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let gap = a.exponential(0.5); // a Poisson inter-arrival time with mean 0.5
/// assert!(gap >= 0.0);
/// ```
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

/// One step of splitmix64: a good 64-bit mix, used for seeding.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for `seed`. Every seed, zero included, gives a good state.
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        Rng {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    /// An independent stream for `stream` (e.g. a shard's index) under one `seed`, so that
    /// each shard's traffic does not depend on how many shards come before it.
    pub fn for_stream(seed: u64, stream: u64) -> Rng {
        let mut sm = stream;
        Rng::new(seed ^ splitmix64(&mut sm))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform number in `(0, 1]`: never zero, so its logarithm is finite.
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An exponentially distributed number with the given mean (inverse transform), the
    /// gap between two arrivals of a Poisson process of rate `1 / mean`.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -self.unit().ln() * mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro256_star_star_matches_the_reference_vector() {
        // The reference implementation's output from the state [1, 2, 3, 4].
        let mut rng = Rng { s: [1, 2, 3, 4] };
        let out: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(out, [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240]);
    }

    #[test]
    fn splitmix64_matches_the_reference_vector() {
        let mut state = 1_234_567;
        let out: Vec<u64> = (0..3).map(|_| splitmix64(&mut state)).collect();
        assert_eq!(
            out,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
    }

    #[test]
    fn exponential_samples_have_the_requested_mean() {
        let mut rng = Rng::new(42);
        let n = 200_000;
        let mean = (0..n).map(|_| rng.exponential(2.0)).sum::<f64>() / n as f64;
        assert!((mean - 2.0).abs() < 0.02, "mean {mean}");
    }
}
