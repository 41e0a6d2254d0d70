// The neighbour MLP, fused: for 4 agents per workgroup (their 8 neighbour slots = 32 rows),
// Linear 14→64 + ReLU into workgroup memory, Linear 64→64 + ReLU in registers, the masked
// max-pool over slots (a slot counts when its last feature, the mask, is > 0; the pool starts
// at 0 like the CPU forward), written after the agent's ego features (ego_dim) into x
// ([agents, x_stride], x_stride = ego_dim + 64). Thread j (64 per workgroup) owns hidden unit j.
// Layer 1's weight is stored transposed ([in, out]) so threads read consecutive words.

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

@group(0) @binding(0) var<uniform> p: NbrParams;
@group(0) @binding(1) var<storage, read> features: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

var<workgroup> inp: array<f32, 448>; // [ROWS][IN_DIM]
var<workgroup> h1: array<f32, 2048>; // [ROWS][HIDDEN]

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
        let agent = a0 + r / SLOTS;
        var v = 0.0;
        if agent < p.agents {
            v = features[agent * p.feature_dim + p.ego_dim + (r % SLOTS) * IN_DIM + e % IN_DIM];
        }
        inp[e] = v;
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
    var w0: array<f32, 14>;
    for (var kk = 0u; kk < IN_DIM; kk++) {
        w0[kk] = w[p.w0_offset + j * IN_DIM + kk];
    }
    let b0 = w[p.b0_offset + j];
    for (var r = 0u; r < ROWS; r++) {
        var acc = b0;
        for (var kk = 0u; kk < IN_DIM; kk++) {
            acc += inp[r * IN_DIM + kk] * w0[kk];
        }
        h1[r * HIDDEN + j] = max(acc, 0.0);
    }
    workgroupBarrier();
    var acc: array<f32, 32>;
    let b1 = w[p.b1_offset + j];
    for (var r = 0u; r < ROWS; r++) {
        acc[r] = b1;
    }
    for (var i = 0u; i < HIDDEN; i++) {
        let wv = w[p.w1t_offset + i * HIDDEN + j];
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += h1[r * HIDDEN + i] * wv;
        }
    }
    for (var q = 0u; q < AGENTS_PER_GROUP; q++) {
        let agent = a0 + q;
        if agent >= p.agents {
            break;
        }
        var pooled = 0.0;
        for (var s = 0u; s < SLOTS; s++) {
            let r = q * SLOTS + s;
            if inp[r * IN_DIM + IN_DIM - 1u] > 0.0 {
                pooled = max(pooled, max(acc[r], 0.0));
            }
        }
        x[agent * p.x_stride + p.ego_dim + j] = pooled;
    }
}
