//! Counter-based randomness: Philox4x32-10 (Salmon et al., SC'11).
//!
//! Every random number in Seoul World Model is a pure function of a key and a counter,
//! so any agent's draw at any step can be recomputed on any thread or on the GPU
//! (the same rounds are written in WGSL using only `u32` arithmetic). The key is derived
//! from the run's `u64` seed; the counter holds the (stream, scenario, agent, step) tuple.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = (a as u64) * (b as u64);
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with 10 rounds: maps a 128-bit counter and a 64-bit key to 128 random bits.
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// A key derived from a run seed: the two halves of the `u64`.
pub fn key_from_seed(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// Uniform `f32` in `[0, 1)` from 24 random bits (exactly representable, same in WGSL).
pub fn unit_f32(bits: u32) -> f32 {
    (bits >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A small sequential generator over Philox for code that needs a stream of numbers
/// (the procedural city generator, spawners). Deterministic from `(seed, stream)`.
#[derive(Clone, Debug)]
pub struct CounterRng {
    key: [u32; 2],
    stream: u64,
    counter: u64,
    buffer: [u32; 4],
    used: usize,
}

impl CounterRng {
    pub fn new(seed: u64, stream: u64) -> Self {
        Self { key: key_from_seed(seed), stream, counter: 0, buffer: [0; 4], used: 4 }
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.used == 4 {
            let ctr =
                [self.counter as u32, (self.counter >> 32) as u32, self.stream as u32, (self.stream >> 32) as u32];
            self.buffer = philox4x32(ctr, self.key);
            self.counter += 1;
            self.used = 0;
        }
        let v = self.buffer[self.used];
        self.used += 1;
        v
    }

    pub fn next_u64(&mut self) -> u64 {
        ((self.next_u32() as u64) << 32) | self.next_u32() as u64
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Uniform integer in `[lo, hi]` (inclusive); `lo` when `hi <= lo`.
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range_i64(0, items.len() as i64 - 1) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer tests from the Random123 distribution (kat_vectors, philox4x32 10 rounds).
    #[test]
    fn philox_known_answers() {
        assert_eq!(philox4x32([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
        assert_eq!(philox4x32([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
        assert_eq!(
            philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn stream_is_deterministic_and_streams_differ() {
        let a: Vec<u32> = {
            let mut r = CounterRng::new(42, 1);
            (0..10).map(|_| r.next_u32()).collect()
        };
        let b: Vec<u32> = {
            let mut r = CounterRng::new(42, 1);
            (0..10).map(|_| r.next_u32()).collect()
        };
        let c: Vec<u32> = {
            let mut r = CounterRng::new(42, 2);
            (0..10).map(|_| r.next_u32()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn unit_values_in_range() {
        let mut r = CounterRng::new(7, 0);
        for _ in 0..1000 {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
            let k = r.range_i64(-3, 3);
            assert!((-3..=3).contains(&k));
        }
        assert_eq!(unit_f32(u32::MAX), 16_777_215.0 / 16_777_216.0);
    }
}
