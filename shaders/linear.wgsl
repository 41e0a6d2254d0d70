// Batched linear layer C = act(A · Wᵀ + b), tiled in workgroup memory.
// A is [m, k] read through a gather: A(row, kk) = a[a_offset + (row / a_group_rows) · a_group_stride
// + (row % a_group_rows) · a_row_stride + kk] (plain row-major: a_group_rows 1, a_group_stride the
// row length). W is [n, k] row-major (PyTorch nn.Linear) inside the weights buffer at w_offset,
// the bias at b_offset. C(row, col) = c[c_offset + row · c_stride + col]. relu != 0 fuses a ReLU.
// A workgroup computes a 64 × 64 tile of C, 16 × 16 threads with a 4 × 4 block of outputs
// each (rows 4·ty.., columns 4·tx..), over k-slices of 16 staged in workgroup memory as
// vec4s of 4 consecutive rows (A) or columns (W), so each k step of a thread is two vec4
// reads and four vec4 multiply-adds into accumulators held in registers. The slices'
// rows are padded to 17 vec4s, which spreads the staging writes over the banks. Each
// thread's 4 staging rows are fixed, so their gather offsets are computed once, not per
// slice. Tiles are linearised over a 2-D grid (x + y · num_workgroups.x) so any m fits one
// dispatch.

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
// vec4s per k row of a staged slice: 16 for the tile's 64 rows or columns, one of padding.
const SLICE_ROW: u32 = 17u;

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> a_tile: array<vec4<f32>, 272>; // [TILE_K][SLICE_ROW]: rows 4i..4i+3 in vec4 i
var<workgroup> w_tile: array<vec4<f32>, 272>; // [TILE_K][SLICE_ROW]: columns 4j..4j+3 in vec4 j

// Offset of A(row, 0) in `a`.
fn a_row_base(row: u32) -> u32 {
    let g = row / p.a_group_rows;
    let r = row % p.a_group_rows;
    return p.a_offset + g * p.a_group_stride + r * p.a_row_stride;
}

// Where one staging row of A and one of W start (`a_base`, `w_base`) and whether they exist.
struct Stager {
    a_base: u32,
    w_base: u32,
    a_ok: bool,
    w_ok: bool,
}

fn stager(m0: u32, n0: u32, r: u32) -> Stager {
    let a_ok = m0 + r < p.m;
    return Stager(select(0u, a_row_base(m0 + r), a_ok), p.w_offset + (n0 + r) * p.k, a_ok, n0 + r < p.n);
}

// Stages A(row r of the tile, k) and W(column r of the tile, k) at slice offset kk.
fn stage(s: Stager, r: u32, k: u32, k_in: bool, kk: u32) {
    var av = 0.0;
    if s.a_ok && k_in {
        av = a[s.a_base + k];
    }
    a_tile[kk * SLICE_ROW + r / 4u][r % 4u] = av;
    var wv = 0.0;
    if s.w_ok && k_in {
        wv = w[s.w_base + k];
    }
    w_tile[kk * SLICE_ROW + r / 4u][r % 4u] = wv;
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
    // Staging: element q (0..4) of this thread is row (or column) li / 16 + 16 q of the
    // tile, at k offset li % 16 in the slice (written out four times, not looped, so the
    // offsets stay in registers).
    let kk_ld = li % TILE_K;
    let r_ld = li / TILE_K;
    let s0 = stager(m0, n0, r_ld);
    let s1 = stager(m0, n0, r_ld + 16u);
    let s2 = stager(m0, n0, r_ld + 32u);
    let s3 = stager(m0, n0, r_ld + 48u);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let tx = lid.x;
    let ty = lid.y;
    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        let k_in = k0 + kk_ld < p.k;
        stage(s0, r_ld, k0 + kk_ld, k_in, kk_ld);
        stage(s1, r_ld + 16u, k0 + kk_ld, k_in, kk_ld);
        stage(s2, r_ld + 32u, k0 + kk_ld, k_in, kk_ld);
        stage(s3, r_ld + 48u, k0 + kk_ld, k_in, kk_ld);
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let av = a_tile[kk * SLICE_ROW + ty];
            let wv = w_tile[kk * SLICE_ROW + tx];
            acc0 += av.x * wv;
            acc1 += av.y * wv;
            acc2 += av.z * wv;
            acc3 += av.w * wv;
        }
        workgroupBarrier();
    }
    let col0 = n0 + 4u * tx;
    var bias = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        if col0 + j < p.n {
            bias[j] = w[p.b_offset + col0 + j];
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let row = m0 + 4u * ty + i;
        if row >= p.m {
            break;
        }
        var v: vec4<f32>;
        switch i {
            case 0u: { v = acc0; }
            case 1u: { v = acc1; }
            case 2u: { v = acc2; }
            default: { v = acc3; }
        }
        v += bias;
        if p.relu != 0u {
            v = max(v, vec4<f32>(0.0));
        }
        for (var j = 0u; j < 4u; j++) {
            if col0 + j < p.n {
                c[p.c_offset + row * p.c_stride + col0 + j] = v[j];
            }
        }
    }
}
