// The neighbour MLP, fused: for 4 agents per workgroup (their 8 neighbour slots = 32 rows),
// Linear 14→64 + ReLU into workgroup memory, Linear 64→64 + ReLU in registers, the masked
// max-pool over slots (a slot counts when its last feature, the mask, is > 0; the pool starts
// at 0 like the CPU forward), written after the agent's ego features (ego_dim) into x
// ([agents, x_stride], x_stride = ego_dim + 64). Thread j (64 per workgroup) owns hidden unit j.
// Layer 1's weight is stored transposed ([in, out]) so threads read consecutive words.
//
// Both layers keep the 32 rows as 8 vec4s of 4 consecutive rows: inputs and layer 1's
// outputs are staged in workgroup memory transposed (feature-major, a vec4 of 4 rows per
// entry), so each multiply-add step of a thread is one vec4 read (the same address for
// every thread: a broadcast) and a vec4 multiply-add, with the 32 accumulators in 8 vec4
// registers.

struct NbrParams {
    agents: u32,
    feature_dim: u32,
    ego_dim: u32,
    x_stride: u32,
    w0_offset: u32,
    b0_offset: u32,
    w1t_offset: u32,
    b1_offset: u32,
}

const AGENTS_PER_GROUP: u32 = 4u;
const SLOTS: u32 = 8u;
const ROWS: u32 = 32u;
const IN_DIM: u32 = 14u;
const HIDDEN: u32 = 64u;
// vec4s per staged feature: the 32 rows in 8 vec4s, one of padding (spreads the banks of
// the layer-1 writes, where each thread writes its own feature).
const GROUP_STRIDE: u32 = 9u;

@group(0) @binding(0) var<uniform> p: NbrParams;
@group(0) @binding(1) var<storage, read> features: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

var<workgroup> inp: array<vec4<f32>, 126>; // [IN_DIM][GROUP_STRIDE]: rows 4g..4g+3 in vec4 g
var<workgroup> h1: array<vec4<f32>, 576>; // [HIDDEN][GROUP_STRIDE]

// The 32 rows' accumulators of one hidden unit, 4 rows per vec4.
struct Acc {
    g0: vec4<f32>,
    g1: vec4<f32>,
    g2: vec4<f32>,
    g3: vec4<f32>,
    g4: vec4<f32>,
    g5: vec4<f32>,
    g6: vec4<f32>,
    g7: vec4<f32>,
}

fn acc_splat(v: f32) -> Acc {
    let s = vec4<f32>(v);
    return Acc(s, s, s, s, s, s, s, s);
}

// The masked max-pool of `v` (ReLU'd: the pool starts at 0) over the 8 slots of one agent:
// rows in vec4s `a` (slots 0..3) and `b` (slots 4..7), masks `ma` and `mb`.
fn pool(a: vec4<f32>, b: vec4<f32>, ma: vec4<f32>, mb: vec4<f32>) -> f32 {
    let za = select(vec4<f32>(0.0), max(a, vec4<f32>(0.0)), ma > vec4<f32>(0.0));
    let zb = select(vec4<f32>(0.0), max(b, vec4<f32>(0.0)), mb > vec4<f32>(0.0));
    let m = max(za, zb);
    return max(max(m.x, m.y), max(m.z, m.w));
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let a0 = (wg.x + wg.y * groups.x) * AGENTS_PER_GROUP;
    if a0 >= p.agents {
        return;
    }
    for (var e = li; e < ROWS * IN_DIM; e += HIDDEN) {
        let r = e / IN_DIM;
        let kk = e % IN_DIM;
        let agent = a0 + r / SLOTS;
        var v = 0.0;
        if agent < p.agents {
            v = features[agent * p.feature_dim + p.ego_dim + (r % SLOTS) * IN_DIM + kk];
        }
        inp[kk * GROUP_STRIDE + r / 4u][r % 4u] = v;
    }
    for (var q = 0u; q < AGENTS_PER_GROUP; q++) {
        let agent = a0 + q;
        if agent < p.agents {
            for (var col = li; col < p.ego_dim; col += HIDDEN) {
                x[agent * p.x_stride + col] = features[agent * p.feature_dim + col];
            }
        }
    }
    workgroupBarrier();
    let j = li;
    // Layer 1: hidden unit j of every row.
    var acc = acc_splat(w[p.b0_offset + j]);
    for (var kk = 0u; kk < IN_DIM; kk++) {
        let wv = w[p.w0_offset + j * IN_DIM + kk];
        let base = kk * GROUP_STRIDE;
        acc.g0 += inp[base] * wv;
        acc.g1 += inp[base + 1u] * wv;
        acc.g2 += inp[base + 2u] * wv;
        acc.g3 += inp[base + 3u] * wv;
        acc.g4 += inp[base + 4u] * wv;
        acc.g5 += inp[base + 5u] * wv;
        acc.g6 += inp[base + 6u] * wv;
        acc.g7 += inp[base + 7u] * wv;
    }
    let z = vec4<f32>(0.0);
    let hb = j * GROUP_STRIDE;
    h1[hb] = max(acc.g0, z);
    h1[hb + 1u] = max(acc.g1, z);
    h1[hb + 2u] = max(acc.g2, z);
    h1[hb + 3u] = max(acc.g3, z);
    h1[hb + 4u] = max(acc.g4, z);
    h1[hb + 5u] = max(acc.g5, z);
    h1[hb + 6u] = max(acc.g6, z);
    h1[hb + 7u] = max(acc.g7, z);
    workgroupBarrier();
    // Layer 2: hidden unit j of every row, from all 64 of layer 1.
    acc = acc_splat(w[p.b1_offset + j]);
    for (var i = 0u; i < HIDDEN; i++) {
        let wv = w[p.w1t_offset + i * HIDDEN + j];
        let base = i * GROUP_STRIDE;
        acc.g0 += h1[base] * wv;
        acc.g1 += h1[base + 1u] * wv;
        acc.g2 += h1[base + 2u] * wv;
        acc.g3 += h1[base + 3u] * wv;
        acc.g4 += h1[base + 4u] * wv;
        acc.g5 += h1[base + 5u] * wv;
        acc.g6 += h1[base + 6u] * wv;
        acc.g7 += h1[base + 7u] * wv;
    }
    // The masks are the last input feature of each row.
    let mb = (IN_DIM - 1u) * GROUP_STRIDE;
    let col = p.ego_dim + j;
    // Agent q's slots are rows 8q..8q+7: vec4s 2q and 2q + 1.
    if a0 < p.agents {
        x[a0 * p.x_stride + col] = pool(acc.g0, acc.g1, inp[mb], inp[mb + 1u]);
    }
    if a0 + 1u < p.agents {
        x[(a0 + 1u) * p.x_stride + col] = pool(acc.g2, acc.g3, inp[mb + 2u], inp[mb + 3u]);
    }
    if a0 + 2u < p.agents {
        x[(a0 + 2u) * p.x_stride + col] = pool(acc.g4, acc.g5, inp[mb + 4u], inp[mb + 5u]);
    }
    if a0 + 3u < p.agents {
        x[(a0 + 3u) * p.x_stride + col] = pool(acc.g6, acc.g7, inp[mb + 6u], inp[mb + 7u]);
    }
}
