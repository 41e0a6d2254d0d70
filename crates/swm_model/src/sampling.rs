//! Keyed randomness and token sampling.
//!
//! # Keyed draws ([`keyed_u32x4`])
//! Every random number of a rollout is Philox4x32-10 ([`swm_core::rng::philox4x32`]) of a
//! counter made of what it is for, under the key of the rollout seed
//! ([`swm_core::rng::key_from_seed`]):
//!
//! ```text
//! counter = [step, agent, scenario as u32, (sample & 0xFF_FFFF) << 8 | stream]
//! key     = key_from_seed(seed)
//! ```
//!
//! `step` is the frame being produced (1..=N), `agent` the agent's index in the scenario,
//! `scenario` the scenario id (low 32 bits), `sample` the rollout sample (low 24 bits) and
//! `stream` what the draw is for ([`STREAM_TOKEN`], [`STREAM_INTENT`]). Only `u32`
//! arithmetic: a WGSL shader gets the same integers. A uniform in `[0, 1)` is
//! [`swm_core::rng::unit_f32`] of the first word; a token draw that the rollout's
//! feasibility masks reject is redrawn with the second word (`crate::rollout`).
//!
//! # Sampling ([`sample_token`])
//! `p = softmax(logits / temperature)` (with [`crate::expf`]'s `e^x`, the same bits on every
//! platform); tokens are ordered by probability (descending, ties by token index); top-k
//! keeps the first `k` (0: all); top-p keeps the shortest prefix whose mass reaches `p` (at
//! least one token); the kept probabilities are renormalised and the token is the first
//! whose cumulative mass exceeds `u`. A
//! temperature of 0 takes the most likely token (ties: lowest index).

use swm_core::rng::{key_from_seed, philox4x32, unit_f32};

use crate::expf::exp_scaled_sum;

/// Stream of token draws.
pub const STREAM_TOKEN: u32 = 0;
/// Stream of per-agent route intents.
pub const STREAM_INTENT: u32 = 1;

/// 128 random bits for (seed, scenario, agent, step, sample, stream); see the module docs.
pub fn keyed_u32x4(seed: u64, scenario: u64, agent: u32, step: u32, sample: u32, stream: u32) -> [u32; 4] {
    philox4x32([step, agent, scenario as u32, ((sample & 0xFF_FFFF) << 8) | (stream & 0xFF)], key_from_seed(seed))
}

/// A uniform in `[0, 1)` for (seed, scenario, agent, step, sample, stream).
pub fn keyed_unit(seed: u64, scenario: u64, agent: u32, step: u32, sample: u32, stream: u32) -> f32 {
    unit_f32(keyed_u32x4(seed, scenario, agent, step, sample, stream)[0])
}

/// Relative probability below which tokens are left out of the first, partial sort of
/// [`sample_token`] (an optimisation only: the drawn token is the same).
const NUCLEUS_FLOOR: f32 = 1e-4;

/// How many of the likeliest tokens [`sample_token`] sorts first (an optimisation only).
const NUCLEUS_PREFIX: usize = 12;

/// How tokens are drawn.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplingConfig {
    pub temperature: f32,
    /// Keep the k most likely tokens (0: no limit).
    pub top_k: usize,
    /// Keep the most likely tokens up to this mass (1: no limit).
    pub top_p: f32,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig { temperature: 1.0, top_k: 0, top_p: 0.95 }
    }
}

/// Draws a token from `logits` with the uniform `u` in `[0, 1)` (module docs).
pub fn sample_token(logits: &[f32], cfg: &SamplingConfig, u: f32, scratch: &mut Vec<(f32, u16)>) -> u16 {
    let argmax = || {
        let mut best = 0;
        for (i, &l) in logits.iter().enumerate() {
            if l > logits[best] {
                best = i;
            }
        }
        best as u16
    };
    if cfg.temperature <= 0.0 || logits.len() <= 1 {
        return argmax();
    }
    let max = max_logit(logits);
    if !max.is_finite() {
        return argmax();
    }
    if cfg.top_k == 0
        && cfg.top_p < 1.0
        && logits.len() <= NUCLEUS_FAST_MAX_TOKENS
        && let Some(t) = draw_from_likeliest(logits, max, cfg, u)
    {
        return t;
    }
    draw_sorted(logits, max, cfg, u, scratch)
}

/// The largest of `logits`, NaNs left out (−∞ when there is none): `f32::max` folded from
/// −∞, in eight independent running maxima instead of one chain of 143 dependent `max`es.
/// The same value as the fold, as the maximum does not depend on the order; only the sign
/// of a zero maximum may differ, which changes no probability (`x − 0` and `x + 0` are the
/// same bits for every nonzero `x`, and `e^x` of both zeros is 1, tested).
pub(crate) fn max_logit(logits: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; 8];
    let mut chunks = logits.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            m[l] = m[l].max(c[l]);
        }
    }
    for &x in chunks.remainder() {
        m[0] = m[0].max(x);
    }
    m.into_iter().fold(f32::NEG_INFINITY, f32::max)
}

/// Vocabularies up to this size are exponentiated on the stack by [`draw_from_likeliest`].
const NUCLEUS_FAST_MAX_TOKENS: usize = 256;

/// The longest nucleus [`draw_from_likeliest`] takes (about six tokens on average in the
/// benchmark's rollouts); [`draw_sorted`] draws from longer ones.
const NUCLEUS_FAST_MAX_TAKEN: usize = 32;

/// `p` and the token index packed into one integer key that orders like the sampler's
/// order (likelier first, ties by token) for positive, finite probabilities, whose bits
/// order like the values.
#[inline]
fn nucleus_key(e: f32, t: usize) -> u64 {
    (u64::from(!e.to_bits()) << 16) | t as u64
}

/// The probability (unnormalised) packed in a [`nucleus_key`].
#[inline]
fn key_e(key: u64) -> f32 {
    f32::from_bits(!((key >> 16) as u32))
}

/// [`sample_token`]'s draw under top-p without top-k when the nucleus ends within the
/// front (the tokens within [`NUCLEUS_FLOOR`] of the most likely; it nearly always does):
/// the nucleus is taken from the front one likeliest token at a time (about six of thirty),
/// and nothing is sorted. `None` when the nucleus goes on past the front, or the sum is NaN:
/// [`draw_sorted`] decides then. The same token as [`draw_sorted`] in every case it
/// answers: the same probabilities (the same `e^x` of the same numbers), summed in the same
/// order, and the same sorted prefix. The loops have no data-dependent branches but their
/// ends (the front's membership and each round's minimum are conditional moves): the
/// front's pattern is random, and mispredicted branches were most of the sampler's time.
fn draw_from_likeliest(logits: &[f32], max: f32, cfg: &SamplingConfig, u: f32) -> Option<u16> {
    let n = logits.len();
    let mut es = [0.0f32; NUCLEUS_FAST_MAX_TOKENS];
    let sum = exp_scaled_sum(logits, max, cfg.temperature, &mut es);
    if sum.is_nan() {
        return None;
    }
    // The front's keys, in token order.
    let mut front = [0u64; NUCLEUS_FAST_MAX_TOKENS];
    let len = front_keys(&es[..n], &mut front);
    let front = &front[..len];
    // The nucleus: each round takes the smallest key above the last one taken (keys are
    // distinct: the token is in them), i.e. the front in sorted order.
    let mut taken = [0u64; NUCLEUS_FAST_MAX_TAKEN];
    let (mut keep, mut from, mut mass) = (0, 0, 0.0f32);
    loop {
        if keep == len || keep == NUCLEUS_FAST_MAX_TAKEN {
            return None;
        }
        let next = min_key_from(front, from);
        taken[keep] = next;
        keep += 1;
        // Keys are below u64::MAX (a probability's bits are below infinity's).
        from = next + 1;
        mass += key_e(next) / sum;
        if mass >= cfg.top_p {
            break;
        }
    }
    let taken = &taken[..keep];
    let kept: f32 = taken.iter().map(|&k| key_e(k)).sum();
    let target = u * kept;
    let mut acc = 0.0;
    for &k in taken {
        acc += key_e(k);
        if acc > target {
            return Some((k & 0xFFFF) as u16);
        }
    }
    Some((taken[keep - 1] & 0xFFFF) as u16)
}

/// The [`nucleus_key`]s of the tokens of `es` (probabilities, none NaN, none negative) at
/// least [`NUCLEUS_FLOOR`], in token order, into the front of `out`; returns their count.
/// With AVX-512F eight tokens at a time (the keys of the members compressed into place),
/// with AVX2 four at a time (the members' keys permuted to the front of the register),
/// else one at a time; the same keys every way (tested).
#[inline]
fn front_keys(es: &[f32], out: &mut [u64; NUCLEUS_FAST_MAX_TOKENS]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            // SAFETY: AVX-512F is present (checked above).
            return unsafe { avx512::front_keys(es, out) };
        }
        if avx2::available() {
            // SAFETY: AVX2 is present (checked above).
            return unsafe { avx2::front_keys(es, out) };
        }
    }
    front_keys_one_by_one(es, out)
}

/// [`front_keys`] one token at a time: every key is written, the count moves only for
/// members.
fn front_keys_one_by_one(es: &[f32], out: &mut [u64]) -> usize {
    let mut len = 0;
    for (t, &e) in es.iter().enumerate() {
        out[len] = nucleus_key(e, t);
        len += usize::from(e >= NUCLEUS_FLOOR);
    }
    len
}

/// The vector forms' end of [`front_keys`]: the keys of the tokens from `done` on (fewer
/// than a register holds) one at a time, appended after the `len` keys in `out`, their
/// tokens counted from `done`; returns the front's length.
#[cfg(target_arch = "x86_64")]
fn front_keys_tail(es: &[f32], done: usize, out: &mut [u64], len: usize) -> usize {
    // `len ≤ done`, so `out[len..]` has room for every key the loop writes.
    let more = front_keys_one_by_one(&es[done..], &mut out[len..]);
    for key in &mut out[len..len + more] {
        *key += done as u64;
    }
    len + more
}

/// The smallest of `keys` that is at least `from` (`u64::MAX` when none is): with
/// AVX-512F eight keys at a time, with AVX2 four, else [`min_key_from_scalar`]; the same
/// key every way (the minimum does not depend on the order).
#[inline]
fn min_key_from(keys: &[u64], from: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            // SAFETY: AVX-512F is present (checked above).
            return unsafe { avx512::min_key_from(keys, from) };
        }
        if avx2::available() {
            // SAFETY: AVX2 is present (checked above).
            return unsafe { avx2::min_key_from(keys, from) };
        }
    }
    min_key_from_scalar(keys, from)
}

/// [`min_key_from`] in four independent running minima (conditional moves, not branches).
#[inline]
fn min_key_from_scalar(keys: &[u64], from: u64) -> u64 {
    let mut m = [u64::MAX; 4];
    let mut chunks = keys.chunks_exact(4);
    for c in &mut chunks {
        for l in 0..4 {
            m[l] = m[l].min(if c[l] >= from { c[l] } else { u64::MAX });
        }
    }
    for &k in chunks.remainder() {
        m[0] = m[0].min(if k >= from { k } else { u64::MAX });
    }
    m[0].min(m[1]).min(m[2].min(m[3]))
}

/// The nucleus's vector forms ([`front_keys`], [`min_key_from`]).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{NUCLEUS_FAST_MAX_TOKENS, NUCLEUS_FLOOR, front_keys_tail};

    /// Whether this CPU has AVX-512F (asked once).
    #[inline]
    pub(super) fn available() -> bool {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| std::is_x86_feature_detected!("avx512f"))
    }

    /// [`super::front_keys`]: per eight tokens, each key `!bits(e) << 16 | t` and the
    /// members' mask (`bits(e) ≥ bits(NUCLEUS_FLOOR)`, which is `e ≥ NUCLEUS_FLOOR` for
    /// probabilities: non-negative, not NaN), the members' keys stored side by side.
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn front_keys(es: &[f32], out: &mut [u64; NUCLEUS_FAST_MAX_TOKENS]) -> usize {
        let floor = _mm512_set1_epi64(i64::from(NUCLEUS_FLOOR.to_bits()));
        let ones = _mm512_set1_epi64(0xFFFF_FFFF);
        let mut tokens = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
        let eight = _mm512_set1_epi64(8);
        let mut len = 0;
        let mut chunks = es.chunks_exact(8);
        for chunk in &mut chunks {
            // SAFETY: `chunk` holds eight f32 (32 bytes, unaligned load).
            let bits = _mm512_cvtepu32_epi64(unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) });
            let member = _mm512_cmpge_epu64_mask(bits, floor);
            let key = _mm512_or_si512(_mm512_slli_epi64::<16>(_mm512_xor_si512(bits, ones)), tokens);
            // SAFETY: `len` ≤ the tokens before this chunk, so `len + 8` ≤ `es.len()` ≤
            // NUCLEUS_FAST_MAX_TOKENS (the caller's bound): the stored keys fit in `out`.
            debug_assert!(len + 8 <= out.len());
            // Compressed in the register and stored whole (the lanes past the members are
            // overwritten by the next store or lie past the count): AMD's Zen 4 runs a
            // compressing store to memory as microcode, tens of times slower than this.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(len).cast(), _mm512_maskz_compress_epi64(member, key)) };
            len += member.count_ones() as usize;
            tokens = _mm512_add_epi64(tokens, eight);
        }
        front_keys_tail(es, es.len() - chunks.remainder().len(), out, len)
    }

    /// [`super::min_key_from`] eight keys at a time: the running minimum of the keys at
    /// least `from`, reduced at the end.
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn min_key_from(keys: &[u64], from: u64) -> u64 {
        let from_v = _mm512_set1_epi64(from as i64);
        let mut m = _mm512_set1_epi64(-1);
        let mut chunks = keys.chunks_exact(8);
        for chunk in &mut chunks {
            // SAFETY: `chunk` holds eight u64 (64 bytes, unaligned load).
            let k = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) };
            m = _mm512_mask_min_epu64(m, _mm512_cmpge_epu64_mask(k, from_v), m, k);
        }
        let rest = chunks.remainder();
        // The remainder as a masked load: the lanes past it read nothing and stay out.
        let tail: __mmask8 = ((1u32 << rest.len()) - 1) as __mmask8;
        // SAFETY: only the `rest.len()` lanes of the mask are read.
        let k = unsafe { _mm512_maskz_loadu_epi64(tail, rest.as_ptr().cast()) };
        m = _mm512_mask_min_epu64(m, tail & _mm512_cmpge_epu64_mask(k, from_v), m, k);
        _mm512_reduce_min_epu64(m)
    }
}

/// The nucleus's AVX2 forms ([`front_keys`], [`min_key_from`]) for CPUs without AVX-512F.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{NUCLEUS_FAST_MAX_TOKENS, NUCLEUS_FLOOR, front_keys_tail};

    /// Whether this CPU has AVX2 (asked once).
    #[inline]
    pub(super) fn available() -> bool {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| std::is_x86_feature_detected!("avx2"))
    }

    /// Per pattern of four members (bit `l`: lane `l` is one), the 32-bit lanes that bring
    /// the members' 64-bit keys to the front in order (the rest: lane 0, never counted).
    const LEFT_PACK: [[i32; 8]; 16] = {
        let mut table = [[0i32; 8]; 16];
        let mut pattern = 0;
        while pattern < 16 {
            let (mut to, mut lane) = (0usize, 0usize);
            while lane < 4 {
                if pattern >> lane & 1 == 1 {
                    table[pattern][2 * to] = 2 * lane as i32;
                    table[pattern][2 * to + 1] = 2 * lane as i32 + 1;
                    to += 1;
                }
                lane += 1;
            }
            pattern += 1;
        }
        table
    };

    /// Keys are below this (a probability's 32 bits shifted by 16, or'ed with a token
    /// below 2^16), so they compare the same as signed 64-bit integers.
    const KEY_END: u64 = 1 << 48;

    /// [`super::front_keys`]: per four tokens, each key `!bits(e) << 16 | t` and the
    /// members' mask (`bits(e) ≥ bits(NUCLEUS_FLOOR)` as signed 32-bit integers, which is
    /// `e ≥ NUCLEUS_FLOOR` for probabilities: non-negative, not NaN), the members' keys
    /// permuted to the front ([`LEFT_PACK`]) and stored, the count moved by the members.
    ///
    /// # Safety
    /// AVX2 must be available.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn front_keys(es: &[f32], out: &mut [u64; NUCLEUS_FAST_MAX_TOKENS]) -> usize {
        let below_floor = _mm_set1_epi32(NUCLEUS_FLOOR.to_bits() as i32 - 1);
        let ones = _mm256_set1_epi64x(0xFFFF_FFFF);
        let mut tokens = _mm256_setr_epi64x(0, 1, 2, 3);
        let four = _mm256_set1_epi64x(4);
        let mut len = 0;
        let mut chunks = es.chunks_exact(4);
        for chunk in &mut chunks {
            // SAFETY: `chunk` holds four f32 (16 bytes, unaligned load).
            let bits = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
            let member = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(bits, below_floor))) as usize;
            let key =
                _mm256_or_si256(_mm256_slli_epi64::<16>(_mm256_xor_si256(_mm256_cvtepu32_epi64(bits), ones)), tokens);
            // SAFETY: the table's row is eight lane indices below 8.
            let order = unsafe { _mm256_loadu_si256(LEFT_PACK[member].as_ptr().cast()) };
            // SAFETY: `len` ≤ the tokens before this chunk, so `len + 4` ≤ `es.len()` ≤
            // NUCLEUS_FAST_MAX_TOKENS (the caller's bound): the four stored keys fit in `out`.
            debug_assert!(len + 4 <= out.len());
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(len).cast(), _mm256_permutevar8x32_epi32(key, order)) };
            len += member.count_ones() as usize;
            tokens = _mm256_add_epi64(tokens, four);
        }
        front_keys_tail(es, es.len() - chunks.remainder().len(), out, len)
    }

    /// [`super::min_key_from`] four keys at a time: the running minimum of the keys at
    /// least `from` (as signed integers: keys are below 2^48, and a `from` beyond every key
    /// finds none), reduced at the end.
    ///
    /// # Safety
    /// AVX2 must be available.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn min_key_from(keys: &[u64], from: u64) -> u64 {
        debug_assert!(keys.iter().all(|&k| k < KEY_END));
        if from >= KEY_END {
            return u64::MAX;
        }
        let from_v = _mm256_set1_epi64x(from as i64);
        let none = _mm256_set1_epi64x(i64::MAX);
        let mut m = none;
        let mut chunks = keys.chunks_exact(4);
        for chunk in &mut chunks {
            // SAFETY: `chunk` holds four u64 (32 bytes, unaligned load).
            let k = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
            // Keys below `from` stand aside as "none".
            let k = _mm256_blendv_epi8(k, none, _mm256_cmpgt_epi64(from_v, k));
            m = _mm256_blendv_epi8(m, k, _mm256_cmpgt_epi64(m, k));
        }
        let mut lanes = [0i64; 4];
        // SAFETY: four i64 (32 bytes, unaligned store).
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), m) };
        let mut min = lanes.iter().fold(i64::MAX, |a, &b| a.min(b)) as u64;
        for &k in chunks.remainder() {
            if k >= from {
                min = min.min(k);
            }
        }
        if min == i64::MAX as u64 { u64::MAX } else { min }
    }
}

/// [`sample_token`] for any configuration: every probability computed, the front within
/// [`NUCLEUS_FLOOR`] of the most likely sorted first (by selection of its likeliest
/// [`NUCLEUS_PREFIX`] when it is longer), everything sorted when the nucleus does not end
/// there.
fn draw_sorted(logits: &[f32], max: f32, cfg: &SamplingConfig, u: f32, scratch: &mut Vec<(f32, u16)>) -> u16 {
    scratch.clear();
    let mut sum = 0.0f32;
    // e^x of the scaled logits ([`exp_scaled_sum`]'s values) a stack buffer at a time,
    // summed here in token order across the buffers.
    let mut es = [0.0f32; NUCLEUS_FAST_MAX_TOKENS];
    for chunk in logits.chunks(NUCLEUS_FAST_MAX_TOKENS) {
        exp_scaled_sum(chunk, max, cfg.temperature, &mut es);
        for &e in &es[..chunk.len()] {
            sum += e;
            scratch.push((e, scratch.len() as u16));
        }
    }
    // Most likely first, ties by token: a total order, so any way of sorting gives the
    // same sequence.
    let order = |a: &(f32, u16), b: &(f32, u16)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    // The length of the nucleus (`top_p`) prefix of `sorted`, when it ends there.
    let nucleus = |sorted: &[(f32, u16)]| {
        let mut mass = 0.0;
        for (j, (e, _)) in sorted.iter().enumerate() {
            mass += e / sum;
            if mass >= cfg.top_p {
                return Some(j + 1);
            }
        }
        None
    };
    let mut keep = None;
    if cfg.top_k == 0 && cfg.top_p < 1.0 && !sum.is_nan() {
        // Only the tokens within a factor NUCLEUS_FLOOR of the most likely one (which has
        // e = 1) are sorted first: they are the sorted sequence's prefix, and the nucleus
        // almost always ends among them. When it does not, everything is sorted below.
        // (A NaN anywhere makes `sum` NaN; the full sort then orders it as before.)
        let mut front = 0;
        for i in 0..scratch.len() {
            if scratch[i].0 >= NUCLEUS_FLOOR {
                scratch.swap(i, front);
                front += 1;
            }
        }
        // The front's probabilities are positive and finite, whose bits order like the
        // values: one integer key per token gives `order` (likelier first, ties by token).
        let key = |&(e, t): &(f32, u16)| nucleus_key(e, t.into());
        // The nucleus is short (six tokens on average in the benchmark's rollouts, of about
        // thirty in the front): the likeliest NUCLEUS_PREFIX first, sorted; when the
        // nucleus ends among them they are the sorted front's prefix. Else the whole front.
        if front > NUCLEUS_PREFIX {
            scratch[..front].select_nth_unstable_by_key(NUCLEUS_PREFIX - 1, key);
            scratch[..NUCLEUS_PREFIX].sort_unstable_by_key(key);
            keep = nucleus(&scratch[..NUCLEUS_PREFIX]);
        }
        if keep.is_none() {
            scratch[..front].sort_unstable_by_key(key);
            keep = nucleus(&scratch[..front]);
        }
    }
    let keep = match keep {
        Some(k) => k,
        None => {
            scratch.sort_unstable_by(order);
            let k = if cfg.top_k > 0 { cfg.top_k.min(scratch.len()) } else { scratch.len() };
            if cfg.top_p < 1.0 { nucleus(&scratch[..k]).unwrap_or(k) } else { k }
        }
    };
    let kept: f32 = scratch[..keep].iter().map(|x| x.0).sum();
    let target = u * kept;
    let mut acc = 0.0;
    for (e, t) in &scratch[..keep] {
        acc += e;
        if acc > target {
            return *t;
        }
    }
    scratch[keep - 1].1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expf::{exp_f32, exp_f32x8};

    #[test]
    fn the_largest_logit_is_the_folds() {
        let mut rng = swm_core::rng::CounterRng::new(11, 0);
        for len in (0..=20).chain([81, 143, 256]) {
            for special in 0..5 {
                let mut v: Vec<f32> = (0..len).map(|_| rng.range_f64(-30.0, 30.0) as f32).collect();
                for x in v.iter_mut().step_by(special + 2) {
                    *x = [f32::NAN, f32::NEG_INFINITY, f32::INFINITY, -0.0, f32::MAX][special];
                }
                let fold = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                // The same value; NaNs are left out by both.
                assert_eq!(max_logit(&v), fold, "len {len}, special {special}");
            }
        }
        assert_eq!(max_logit(&[f32::NAN; 9]), f32::NEG_INFINITY);
        assert_eq!(max_logit(&[]), f32::NEG_INFINITY);
        // Where the sign of a zero maximum differs from the fold's, `l − max` differs only
        // for a zero logit, and both zeros give the same probability, one at a time or
        // eight at a time.
        assert_eq!(exp_f32(0.0).to_bits(), exp_f32(-0.0).to_bits());
        let (pos, neg) = (exp_f32x8(&[0.0; 8]), exp_f32x8(&[-0.0; 8]));
        assert!(pos.iter().zip(&neg).all(|(a, b)| a.to_bits() == b.to_bits() && *a == 1.0));
    }

    #[test]
    fn the_fronts_keys_and_minima_are_the_one_by_one_loops() {
        let mut rng = swm_core::rng::CounterRng::new(12, 0);
        let floor = NUCLEUS_FLOOR;
        let special = [
            0.0,
            floor,
            f32::from_bits(floor.to_bits() - 1),
            f32::from_bits(floor.to_bits() + 1),
            f32::from_bits(1),
            f32::MIN_POSITIVE,
            1.0,
        ];
        for len in (0..=40).chain([81, 143, 200, 255, 256]) {
            for round in 0..20 {
                let es: Vec<f32> = (0..len)
                    .map(|_| match rng.next_u32() % 4 {
                        0 => special[(rng.next_u32() % special.len() as u32) as usize],
                        1 => rng.range_f64(0.0, 2e-4) as f32,
                        _ => (-rng.range_f64(0.0, 15.0)).exp() as f32,
                    })
                    .collect();
                let (mut a, mut b) = ([0u64; NUCLEUS_FAST_MAX_TOKENS], [0u64; NUCLEUS_FAST_MAX_TOKENS]);
                let (na, nb) = (front_keys(&es, &mut a), front_keys_one_by_one(&es, &mut b));
                assert_eq!(a[..na], b[..nb], "len {len}, round {round}");
                assert_eq!(nb, es.iter().filter(|&&e| e >= floor).count());
                // Every bound: below, at and above each key, and the extremes.
                let keys = &a[..na];
                let mut froms = vec![0, 1, u64::MAX];
                for &k in keys {
                    froms.extend([k - 1, k, k + 1]);
                }
                for &from in &froms {
                    assert_eq!(min_key_from(keys, from), min_key_from_scalar(keys, from), "len {len}, from {from}");
                }
                // The AVX2 forms too where the CPU has AVX2 (`front_keys` may have run the
                // AVX-512 ones).
                #[cfg(target_arch = "x86_64")]
                if avx2::available() {
                    let mut c = [0u64; NUCLEUS_FAST_MAX_TOKENS];
                    // SAFETY: AVX2 is present (checked above).
                    let nc = unsafe { avx2::front_keys(&es, &mut c) };
                    assert_eq!(c[..nc], b[..nb], "AVX2, len {len}, round {round}");
                    for &from in &froms {
                        // SAFETY: as above.
                        let got = unsafe { avx2::min_key_from(keys, from) };
                        assert_eq!(got, min_key_from_scalar(keys, from), "AVX2, len {len}, from {from}");
                    }
                }
            }
        }
    }

    #[test]
    fn keyed_draws_depend_on_every_key_part() {
        let base = keyed_u32x4(1, 2, 3, 4, 5, 0);
        assert_eq!(base, keyed_u32x4(1, 2, 3, 4, 5, 0));
        for other in [
            keyed_u32x4(9, 2, 3, 4, 5, 0),
            keyed_u32x4(1, 9, 3, 4, 5, 0),
            keyed_u32x4(1, 2, 9, 4, 5, 0),
            keyed_u32x4(1, 2, 3, 9, 5, 0),
            keyed_u32x4(1, 2, 3, 4, 9, 0),
            keyed_u32x4(1, 2, 3, 4, 5, 1),
        ] {
            assert_ne!(base, other);
        }
    }

    /// The sampler before the partial sort: sort everything, then cut.
    fn reference(logits: &[f32], cfg: &SamplingConfig, u: f32) -> u16 {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut v: Vec<(f32, u16)> = Vec::new();
        let mut sum = 0.0f32;
        for (i, &l) in logits.iter().enumerate() {
            let e = exp_f32((l - max) / cfg.temperature);
            sum += e;
            v.push((e, i as u16));
        }
        v.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut keep = if cfg.top_k > 0 { cfg.top_k.min(v.len()) } else { v.len() };
        if cfg.top_p < 1.0 {
            let mut mass = 0.0;
            for (j, (e, _)) in v[..keep].iter().enumerate() {
                mass += e / sum;
                if mass >= cfg.top_p {
                    keep = j + 1;
                    break;
                }
            }
        }
        let kept: f32 = v[..keep].iter().map(|x| x.0).sum();
        let mut acc = 0.0;
        for (e, t) in &v[..keep] {
            acc += e;
            if acc > u * kept {
                return *t;
            }
        }
        v[keep - 1].1
    }

    #[test]
    fn partial_nucleus_sort_draws_the_same_tokens() {
        let mut s = Vec::new();
        let mut rng = swm_core::rng::CounterRng::new(11, 3);
        let configs = [
            SamplingConfig::default(),
            SamplingConfig { temperature: 0.7, top_k: 0, top_p: 0.5 },
            SamplingConfig { temperature: 2.0, top_k: 0, top_p: 0.999 },
            SamplingConfig { temperature: 1.0, top_k: 7, top_p: 0.9 },
            SamplingConfig { temperature: 1.0, top_k: 0, top_p: 1.0 },
        ];
        for case in 0..3000 {
            let n = 1 + case % 150;
            // Peaked and flat distributions, with ties and masked (−∞) tokens.
            let scale = [0.1, 1.0, 4.0, 12.0][case % 4];
            let logits: Vec<f32> = (0..n)
                .map(|i| match i % 17 {
                    0 if n > 1 => f32::NEG_INFINITY,
                    // Ties, of neighbouring tokens too (their keys differ by one).
                    5 | 6 | 11 => 1.0,
                    _ => (rng.range_f64(-1.0, 1.0) * scale) as f32,
                })
                .collect();
            if logits.iter().all(|l| !l.is_finite()) {
                continue;
            }
            for cfg in &configs {
                for u in [0.0, 0.3, 0.77, 0.9999] {
                    assert_eq!(sample_token(&logits, cfg, u, &mut s), reference(&logits, cfg, u), "case {case}");
                }
            }
        }
    }

    #[test]
    fn sampling_respects_temperature_top_k_and_top_p() {
        let logits = [0.0f32, 2.0, 1.0, -1.0];
        let mut s = Vec::new();
        let greedy = SamplingConfig { temperature: 0.0, ..Default::default() };
        assert_eq!(sample_token(&logits, &greedy, 0.99, &mut s), 1);
        let top1 = SamplingConfig { temperature: 1.0, top_k: 1, top_p: 1.0 };
        for u in [0.0, 0.5, 0.999] {
            assert_eq!(sample_token(&logits, &top1, u, &mut s), 1);
        }
        // Full distribution: frequencies follow softmax.
        let full = SamplingConfig { temperature: 1.0, top_k: 0, top_p: 1.0 };
        let mut counts = [0usize; 4];
        for i in 0..10_000u32 {
            counts[sample_token(&logits, &full, keyed_unit(3, 0, 0, i, 0, 0), &mut s) as usize] += 1;
        }
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        for (c, l) in counts.iter().zip(logits) {
            let p = l.exp() / z;
            assert!((*c as f32 / 10_000.0 - p).abs() < 0.02, "{counts:?}");
        }
        // top-p 0.6 keeps tokens 1 and 2 only (0.665 > 0.6 after token 1 alone? 0.64 > 0.6: token 1 only).
        let p = SamplingConfig { temperature: 1.0, top_k: 0, top_p: 0.6 };
        for u in [0.0, 0.5, 0.999] {
            assert_eq!(sample_token(&logits, &p, u, &mut s), 1);
        }
    }
}
