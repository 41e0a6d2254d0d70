// Batched linear layer C = act(A · Wᵀ + b), tiled in workgroup memory.
// A is [m, k] read through a gather: A(row, kk) = a[a_offset + (row / a_group_rows) · a_group_stride
// + (row % a_group_rows) · a_row_stride + kk] (plain row-major: a_group_rows 1, a_group_stride the
// row length). W is [n, k] row-major (PyTorch nn.Linear) inside the weights buffer at w_offset,
// the bias at b_offset. C(row, col) = c[c_offset + row · c_stride + col]. relu != 0 fuses a ReLU.
// A workgroup computes a 64 × 64 tile of C, 16 × 16 threads with 4 × 4 outputs each, over
// k-slices of 16 staged in workgroup memory. Tiles are linearised over a 2-D grid
// (x + y · num_workgroups.x) so any m fits one dispatch.

struct LinearParams {
    m: u32,
    n: u32,
    k: u32,
    relu: u32,
    a_offset: u32,
    a_group_rows: u32,
    a_group_stride: u32,
    a_row_stride: u32,
    w_offset: u32,
    b_offset: u32,
    c_offset: u32,
    c_stride: u32,
    tiles_n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> a_tile: array<f32, 1024>; // [TILE_K][TILE], k-major
var<workgroup> w_tile: array<f32, 1024>; // [TILE_K][TILE], k-major

fn a_at(row: u32, kk: u32) -> f32 {
    let g = row / p.a_group_rows;
    let r = row % p.a_group_rows;
    return a[p.a_offset + g * p.a_group_stride + r * p.a_row_stride + kk];
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let tile = wg.x + wg.y * groups.x;
    let tile_m = tile / p.tiles_n;
    let tile_n = tile % p.tiles_n;
    let m0 = tile_m * TILE;
    let n0 = tile_n * TILE;
    if m0 >= p.m {
        return;
    }
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        for (var q = 0u; q < 4u; q++) {
            let e = li + 256u * q;
            let r = e / TILE_K;
            let kk = e % TILE_K;
            var av = 0.0;
            if m0 + r < p.m && k0 + kk < p.k {
                av = a_at(m0 + r, k0 + kk);
            }
            a_tile[kk * TILE + r] = av;
            var wv = 0.0;
            if n0 + r < p.n && k0 + kk < p.k {
                wv = w[p.w_offset + (n0 + r) * p.k + k0 + kk];
            }
            w_tile[kk * TILE + r] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let wv = vec4<f32>(
                w_tile[kk * TILE + lid.x],
                w_tile[kk * TILE + lid.x + 16u],
                w_tile[kk * TILE + lid.x + 32u],
                w_tile[kk * TILE + lid.x + 48u],
            );
            for (var i = 0u; i < 4u; i++) {
                acc[i] += a_tile[kk * TILE + lid.y + 16u * i] * wv;
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = m0 + lid.y + 16u * i;
        if row >= p.m {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = n0 + lid.x + 16u * j;
            if col >= p.n {
                continue;
            }
            var v = acc[i][j] + w[p.b_offset + col];
            if p.relu != 0u {
                v = max(v, 0.0);
            }
            c[p.c_offset + row * p.c_stride + col] = v;
        }
    }
}
