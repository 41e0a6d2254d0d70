// Philox4x32-10 (Salmon et al., SC'11), bit-identical to swm_core::rng::philox4x32, and the
// keyed counter layout of swm_model::sampling::keyed_u32x4. A library file: kernels are
// composed with it by swm_gpu (WGSL has no #include). Only u32 arithmetic: WGSL has no
// 64-bit integers, so the 32×32→64 product is built from 16-bit halves.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// (high, low) 32-bit words of the 64-bit product a·b.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    // Bits 16..48 of the product: at most 3·0xFFFF, no overflow.
    let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

// 128 random bits from a 128-bit counter and a 64-bit key.
fn philox4x32(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if round > 0u {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = mulhilo(PHILOX_M0, c.x);
        let p1 = mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// swm_core::rng::key_from_seed: the two halves of the u64 seed, low word first.
fn key_from_seed(seed_lo: u32, seed_hi: u32) -> vec2<u32> {
    return vec2<u32>(seed_lo, seed_hi);
}

// swm_core::rng::unit_f32: a uniform in [0, 1) from the top 24 bits (exact in f32).
fn unit_f32(bits: u32) -> f32 {
    return f32(bits >> 8u) * (1.0 / 16777216.0);
}

// swm_model::sampling::keyed_u32x4 with the key already derived (scenario: its low 32 bits).
fn keyed_u32x4(key: vec2<u32>, scenario: u32, agent: u32, step: u32, sample: u32, stream: u32) -> vec4<u32> {
    return philox4x32(vec4<u32>(step, agent, scenario, ((sample & 0xFFFFFFu) << 8u) | (stream & 0xFFu)), key);
}
