//! `e^x` in `f32` with the same bits on every platform: the algorithm of glibc's `expf`
//! (from Arm's optimized-routines, glibc 2.28 and later) as glibc runs it on x86-64 CPUs
//! with FMA (`__expf_fma`), with its table and constants.
//!
//! The sampler ([`crate::sampling::sample_token`]) exponentiates every logit of every agent
//! at every step. `f32::exp` is the platform's libm: glibc picks a kernel by CPU (with and
//! without FMA round differently), and musl or macOS have their own. This one is the same
//! everywhere (the kinematics and features still use libm's sines and cosines), and on this
//! project's reference machines (glibc on an FMA CPU) its values are `f32::exp`'s own
//! (tested), so rollouts keep their bytes. It is also faster: eight lanes at once.
//!
//! [`exp_f32`] is the scalar form (`f64::mul_add`, a correctly rounded fused multiply-add
//! whether the CPU has FMA or libm computes it); [`exp_f32x8`] runs eight at once with AVX2
//! and FMA where the CPU has them (checked once at run time), the same operations lane by
//! lane, so the same bits.
//!
//! How (for `x` whose magnitude is below 88): `x · 32 / ln 2 = k + r` with `k` the nearest
//! whole number (by adding and subtracting 1.5 · 2^52) and `|r| ≤ 1/2`; `e^x = 2^(k/32) ·
//! 2^(r/32)`, the first from a 32-entry table of `2^(i/32)` with `k / 32` added to the
//! exponent, the second a cubic in `r`; the product is rounded once to `f32`.

/// `2^(i/32)` with `i << 47` subtracted from the bits (glibc's `__exp2f_data.tab`).
const TABLE: [u64; 32] = [
    0x3ff0000000000000,
    0x3fefd9b0d3158574,
    0x3fefb5586cf9890f,
    0x3fef9301d0125b51,
    0x3fef72b83c7d517b,
    0x3fef54873168b9aa,
    0x3fef387a6e756238,
    0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715,
    0x3feef1a7373aa9cb,
    0x3feedea64c123422,
    0x3feece086061892d,
    0x3feebfdad5362a27,
    0x3feeb42b569d4f82,
    0x3feeab07dd485429,
    0x3feea47eb03a5585,
    0x3feea09e667f3bcd,
    0x3fee9f75e8ec5f74,
    0x3feea11473eb0187,
    0x3feea589994cce13,
    0x3feeace5422aa0db,
    0x3feeb737b0cdc5e5,
    0x3feec49182a3f090,
    0x3feed503b23e255d,
    0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47,
    0x3fef199bdd85529c,
    0x3fef3720dcef9069,
    0x3fef5818dcfba487,
    0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da,
    0x3fefd0765b6e4540,
];
/// 32 / ln 2.
const INV_LN2_N: u64 = 0x40471547652b82fe;
/// The cubic's coefficients of `r^3`, `r^2`, `r` (scaled for `r` in 1/32 units).
const C0: u64 = 0x3ebc6af84b912394;
const C1: u64 = 0x3f2ebfce50fac4f3;
const C2: u64 = 0x3f962e42ff0c52d6;
/// 1.5 · 2^52: adding it rounds to a whole number (to nearest, ties to even).
const SHIFT: u64 = 0x4338000000000000;
/// Inputs whose top 12 bits (sign aside) are above this (|x| ≥ 88, infinities, NaN) take
/// the special cases first.
const ABSTOP_LIMIT: u32 = 0x42a;
/// Above this `e^x` overflows (ln 2^128).
const OVERFLOW_ABOVE: u32 = 0x42b17217;
/// Below this it underflows to 0 (ln 2^-150).
const UNDERFLOW_BELOW: u32 = 0xc2cff1b4;
/// Below this (ln 2^-149) it is the smallest subnormal.
const SUBNORMAL_BELOW: u32 = 0xc2ce8ecf;

/// `e^x` (module docs).
#[inline]
pub fn exp_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    if (bits >> 20) & 0x7ff > ABSTOP_LIMIT
        && let Some(y) = special(x)
    {
        return y;
    }
    let xd = f64::from(x);
    let inv = f64::from_bits(INV_LN2_N);
    let shifted = inv.mul_add(xd, f64::from_bits(SHIFT));
    let ki = shifted.to_bits();
    let kd = shifted - f64::from_bits(SHIFT);
    let r = inv.mul_add(xd, -kd);
    let s = f64::from_bits(TABLE[(ki & 31) as usize].wrapping_add(ki << 47));
    let z = r.mul_add(f64::from_bits(C0), f64::from_bits(C1));
    let r2 = r * r;
    let y = r.mul_add(f64::from_bits(C2), 1.0);
    let y = z.mul_add(r2, y);
    (y * s) as f32
}

/// The result for |x| ≥ 88, infinities and NaN; `None` where the main path applies.
#[cold]
fn special(x: f32) -> Option<f32> {
    let bits = x.to_bits();
    if x == f32::NEG_INFINITY {
        Some(0.0)
    } else if (bits >> 20) & 0x7ff >= 0x7f8 {
        Some(x + x)
    } else if x > f32::from_bits(OVERFLOW_ABOVE) {
        Some(f32::INFINITY)
    } else if x < f32::from_bits(UNDERFLOW_BELOW) {
        Some(0.0)
    } else if x < f32::from_bits(SUBNORMAL_BELOW) {
        Some(f32::from_bits(1))
    } else {
        None
    }
}

/// [`exp_f32`] of eight values.
#[inline]
pub fn exp_f32x8(x: &[f32; 8]) -> [f32; 8] {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        return unsafe { x86::exp8(x) };
    }
    x.map(exp_f32)
}

/// `e^x` of `x = (l − max) / temperature` for every logit `l` (just `l − max` at a
/// temperature of 1), in `f32` as written, into `out[..logits.len()]`; returns their sum,
/// added in token order (one `f32` add after another). The values are [`exp_f32`]'s; with
/// AVX2 and FMA eight logits go through the same operations at once.
///
/// # Panics
/// When `out` is shorter than `logits`.
pub fn exp_scaled_sum(logits: &[f32], max: f32, temperature: f32, out: &mut [f32]) -> f32 {
    let out = &mut out[..logits.len()];
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked above); `out` is as long as `logits`.
        unsafe { x86::exp_scaled(logits, max, temperature, out) };
        return out.iter().fold(0.0f32, |sum, &e| sum + e);
    }
    let unit = temperature == 1.0;
    let mut sum = 0.0f32;
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = exp_f32(if unit { l - max } else { (l - max) / temperature });
        sum += *o;
    }
    sum
}

/// Whether the CPU has AVX2 and FMA (checked once).
#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::*;

    /// [`exp_f32`] of eight lanes: the same operations in the same order (four `f64` lanes
    /// at a time); lanes that need a special case are redone one by one.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn exp8(x: &[f32; 8]) -> [f32; 8] {
        let mut out = [0.0f32; 8];
        // SAFETY: `x` and `out` hold eight f32 (unaligned load and store).
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), exp8v(_mm256_loadu_ps(x.as_ptr()))) };
        out
    }

    /// [`super::exp_scaled_sum`]'s values (not the sum), eight logits at a time; the last
    /// few in a chunk padded with zeros.
    ///
    /// # Safety
    /// AVX2 and FMA must be present; `out` must be as long as `logits`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_scaled(logits: &[f32], max: f32, temperature: f32, out: &mut [f32]) {
        debug_assert_eq!(logits.len(), out.len());
        let unit = temperature == 1.0;
        let (max_v, t_v) = (_mm256_set1_ps(max), _mm256_set1_ps(temperature));
        let scaled = |l: __m256| {
            let x = _mm256_sub_ps(l, max_v);
            if unit { x } else { _mm256_div_ps(x, t_v) }
        };
        let mut chunks = logits.chunks_exact(8);
        let mut at = 0;
        for chunk in &mut chunks {
            // SAFETY: `chunk` holds eight f32 and `out[at..at + 8]` is in bounds (`out` is
            // as long as `logits`): unaligned load and store.
            unsafe {
                let e = exp8v(scaled(_mm256_loadu_ps(chunk.as_ptr())));
                _mm256_storeu_ps(out.as_mut_ptr().add(at), e);
            }
            at += 8;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut x = [0.0f32; 8];
            x[..rest.len()].copy_from_slice(rest);
            let mut e = [0.0f32; 8];
            // SAFETY: eight f32 each way (unaligned load and store).
            unsafe { _mm256_storeu_ps(e.as_mut_ptr(), exp8v(scaled(_mm256_loadu_ps(x.as_ptr())))) };
            out[at..].copy_from_slice(&e[..rest.len()]);
        }
    }

    /// [`exp8`] in registers.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn exp8v(x8: __m256) -> __m256 {
        let lo = exp4(_mm256_castps256_ps128(x8));
        let hi = exp4(_mm256_extractf128_ps::<1>(x8));
        let y = _mm256_set_m128(hi, lo);
        // The lanes whose top bits (sign aside) are above the limit, all at once: most
        // chunks have none.
        let top = _mm256_and_si256(_mm256_srli_epi32::<20>(_mm256_castps_si256(x8)), _mm256_set1_epi32(0x7ff));
        let special_lanes =
            _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(top, _mm256_set1_epi32(ABSTOP_LIMIT as i32))));
        if special_lanes == 0 {
            return y;
        }
        let (mut x, mut out) = ([0.0f32; 8], [0.0f32; 8]);
        // SAFETY: `x` and `out` hold eight f32 (unaligned stores and load).
        unsafe {
            _mm256_storeu_ps(x.as_mut_ptr(), x8);
            _mm256_storeu_ps(out.as_mut_ptr(), y);
        }
        for (o, &v) in out.iter_mut().zip(&x) {
            if (v.to_bits() >> 20) & 0x7ff > ABSTOP_LIMIT
                && let Some(y) = special(v)
            {
                *o = y;
            }
        }
        // SAFETY: as above.
        unsafe { _mm256_loadu_ps(out.as_ptr()) }
    }

    /// The main path of [`exp_f32`] on four lanes in `f64` (special cases left to the
    /// caller).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn exp4(xs: __m128) -> __m128 {
        let inv = _mm256_set1_pd(f64::from_bits(INV_LN2_N));
        let shift = _mm256_set1_pd(f64::from_bits(SHIFT));
        let xd = _mm256_cvtps_pd(xs);
        let shifted = _mm256_fmadd_pd(inv, xd, shift);
        let ki = _mm256_castpd_si256(shifted);
        let kd = _mm256_sub_pd(shifted, shift);
        // inv · xd − kd, fused.
        let r = _mm256_fmsub_pd(inv, xd, kd);
        let idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
        // The four table entries by plain loads (a gather is slower on some CPUs, AMD's
        // Zen 3 among them): the same values.
        let mut i = [0u64; 4];
        // SAFETY: four u64 (unaligned store).
        unsafe { _mm256_storeu_si256(i.as_mut_ptr().cast(), idx) };
        let t = _mm256_setr_epi64x(
            TABLE[i[0] as usize & 31] as i64,
            TABLE[i[1] as usize & 31] as i64,
            TABLE[i[2] as usize & 31] as i64,
            TABLE[i[3] as usize & 31] as i64,
        );
        let s = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64::<47>(ki)));
        let z = _mm256_fmadd_pd(r, _mm256_set1_pd(f64::from_bits(C0)), _mm256_set1_pd(f64::from_bits(C1)));
        let r2 = _mm256_mul_pd(r, r);
        let y = _mm256_fmadd_pd(r, _mm256_set1_pd(f64::from_bits(C2)), _mm256_set1_pd(1.0));
        let y = _mm256_fmadd_pd(z, r2, y);
        // Rounded to nearest (the MXCSR default, which Rust code does not change).
        _mm256_cvtpd_ps(_mm256_mul_pd(y, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `exp_scaled_sum` gives `exp_f32` of each scaled logit as the scalar code writes it and
    /// their sum added in token order, at both temperatures' forms, for vocabularies whose
    /// length is and is not a multiple of eight, with logits that take the special cases
    /// (−∞, far below the maximum, NaN).
    #[test]
    fn scaled_exponentials_and_their_sum_are_the_scalar_ones() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        for n in [1, 7, 8, 81, 143, 256] {
            for temperature in [1.0f32, 0.7, 2.5] {
                let mut logits: Vec<f32> = (0..n).map(|_| 30.0 * next() - 20.0).collect();
                if n > 5 {
                    logits[1] = f32::NEG_INFINITY;
                    logits[3] = -150.0;
                    logits[4] = f32::NAN;
                }
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut out = vec![0.0f32; n];
                let sum = exp_scaled_sum(&logits, max, temperature, &mut out);
                let mut want_sum = 0.0f32;
                for (l, o) in logits.iter().zip(&out) {
                    let x = if temperature == 1.0 { l - max } else { (l - max) / temperature };
                    let want = exp_f32(x);
                    assert_eq!(o.to_bits(), want.to_bits(), "n {n} t {temperature} x {x}");
                    want_sum += want;
                }
                assert_eq!(sum.to_bits(), want_sum.to_bits(), "n {n} t {temperature}");
            }
        }
    }

    /// Every 97th f32 (all signs, subnormals, infinities and NaN among them), and the
    /// special cases' edges: against the platform's `expf` where that is glibc's FMA
    /// kernel (bit for bit), and everywhere against `e^x` in f64 rounded to f32 (within one
    /// unit in the last place); the eight-lane form equals the scalar one.
    #[test]
    fn exp_matches_glibc_and_is_within_an_ulp() {
        let glibc_fma =
            cfg!(all(target_arch = "x86_64", target_env = "gnu")) && std::arch::is_x86_feature_detected!("fma");
        if !glibc_fma {
            println!("not glibc on an FMA CPU: checking against e^x in f64 only");
        }
        let edges = [OVERFLOW_ABOVE, UNDERFLOW_BELOW, SUBNORMAL_BELOW, 0x42b0_0000, 0xc2b0_0000];
        let mut xs: Vec<f32> = (0..=u32::MAX / 97).map(|i| f32::from_bits(i * 97)).collect();
        for e in edges {
            xs.extend((e - 3..=e + 3).map(f32::from_bits));
        }
        xs.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -88.0, 88.0, -103.5, 1e-30, -1e-30]);
        while !xs.len().is_multiple_of(8) {
            xs.push(-1.0);
        }
        for chunk in xs.chunks(8) {
            let lanes: [f32; 8] = chunk.try_into().expect("eight");
            let eight = exp_f32x8(&lanes);
            for (&x, &y8) in chunk.iter().zip(&eight) {
                let y = exp_f32(x);
                assert_eq!(y.to_bits(), y8.to_bits(), "x {x:e} ({:08x})", x.to_bits());
                if glibc_fma {
                    assert_eq!(y.to_bits(), x.exp().to_bits(), "x {x:e} ({:08x})", x.to_bits());
                }
                let want = f64::from(x).exp() as f32;
                if want.is_nan() {
                    assert!(y.is_nan());
                } else {
                    let ulps = (i64::from(y.to_bits() as i32) - i64::from(want.to_bits() as i32)).abs();
                    assert!(ulps <= 1, "x {x:e}: {y:e} vs {want:e}");
                }
            }
        }
    }
}
