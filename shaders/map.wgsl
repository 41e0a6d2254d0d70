// The model's map as one buffer of 32-bit words (swm_gpu::features::pack_map): a header of
// offsets and sizes (H_*), then the paths, points, successors, the segment grid, the class
// raster, the signal plans, the drivable-area bitmap and the exact test's bucketed strip
// segments. A library file (composed after
// kinematics.wgsl) that declares the map's binding: every kernel using it binds the map at 1.

@group(0) @binding(1) var<storage, read> map: array<u32>;

const NONE: u32 = 0xffffffffu;
const CLASS_GROUND: u32 = 0u;
const CLASS_ROAD: u32 = 1u;
const CLASS_SIDEWALK: u32 = 2u;
const CLASS_CROSSING: u32 = 3u;
const CLASS_BUILDING: u32 = 4u;
// Header words of the packed map.
const H_PATHS: u32 = 0u;
const H_PTS: u32 = 2u;
const H_SUCC: u32 = 3u;
const H_GRID_START: u32 = 4u;
const H_GRID_ENT: u32 = 5u;
const H_GRID_NX: u32 = 6u;
const H_GRID_NY: u32 = 7u;
const H_GRID_X0: u32 = 8u;
const H_GRID_Y0: u32 = 9u;
const H_GRID_CELL: u32 = 10u;
const H_HAS_PLANS: u32 = 11u;
const H_RASTER: u32 = 12u;
const H_RASTER_W: u32 = 13u;
const H_RASTER_H: u32 = 14u;
const H_RASTER_RES: u32 = 15u;
const H_RASTER_CX: u32 = 16u;
const H_RASTER_CY: u32 = 17u;
const H_RASTER_OX: u32 = 18u;
const H_RASTER_OY: u32 = 19u;
const H_LANE_SIG: u32 = 20u;
const H_LANES: u32 = 21u;
const H_LANE_PH: u32 = 22u;
const H_PLANS: u32 = 23u;
const H_PHASES: u32 = 24u;
const H_RES_ONE: u32 = 25u;
const H_DRIVE: u32 = 26u;
const H_DRIVE_NX: u32 = 27u;
const H_DRIVE_NY: u32 = 28u;
const H_DRIVE_CX: u32 = 29u;
const H_DRIVE_CY: u32 = 30u;
const H_DRIVE_OX: u32 = 31u;
const H_DRIVE_OY: u32 = 32u;
const H_DRIVE_RES: u32 = 33u;
const H_DRIVE_CELLS_PER_M: u32 = 34u;
const H_HAS_DRIVE: u32 = 35u;
const H_EXACT_START: u32 = 36u;
const H_EXACT_ITEMS: u32 = 37u;
const H_EXACT_SEGS: u32 = 38u;
const H_EXACT_NX: u32 = 39u;
const H_EXACT_NY: u32 = 40u;
const H_EXACT_X0: u32 = 41u;
const H_EXACT_Y0: u32 = 42u;
const H_EXACT_BUCKET: u32 = 43u;
const PATH_WORDS: u32 = 12u;

fn mf(i: u32) -> f32 {
    return bitcast<f32>(map[i]);
}

fn mi(i: u32) -> i32 {
    return bitcast<i32>(map[i]);
}

// b's position relative to a (m).
fn rel(a: AgentState, b: AgentState) -> vec2<f32> {
    return vec2<f32>(
        f32(b.x_cell_m - a.x_cell_m) + (b.x_offset_m - a.x_offset_m),
        f32(b.y_cell_m - a.y_cell_m) + (b.y_offset_m - a.y_offset_m),
    );
}

// The raster class at the agent's position plus d (m): swm_model::map::MapContext::class_at.
fn class_at(k: AgentState, d: vec2<f32>) -> u32 {
    let w = map[H_RASTER_W];
    let h = map[H_RASTER_H];
    let fx = (k.x_offset_m - mf(H_RASTER_OX)) + d.x;
    let fy = (k.y_offset_m - mf(H_RASTER_OY)) + d.y;
    var col: f32;
    var row: f32;
    if map[H_RES_ONE] == 1u {
        // Whole metres and the small remainder apart: exact pixel edges.
        col = f32(k.x_cell_m - mi(H_RASTER_CX)) + floor(fx);
        row = f32(k.y_cell_m - mi(H_RASTER_CY)) + floor(fy);
    } else {
        let res = mf(H_RASTER_RES);
        col = floor((f32(k.x_cell_m - mi(H_RASTER_CX)) + fx) / res);
        row = floor((f32(k.y_cell_m - mi(H_RASTER_CY)) + fy) / res);
    }
    if col < 0.0 || row < 0.0 || col >= f32(w) || row >= f32(h) {
        return CLASS_GROUND;
    }
    let px = u32(row) * w + u32(col);
    return (map[map[H_RASTER] + px / 4u] >> (8u * (px % 4u))) & 0xffu;
}

fn is_road(c: u32) -> bool {
    return c == CLASS_ROAD || c == CLASS_CROSSING;
}

// swm_model::map::MapContext::is_drivable at the state's position plus d (m): a wholly
// drivable cell of the bitmap or the exact test when the map has one, else a road or
// crossing pixel of the class raster.
fn is_drivable(k: AgentState, d: vec2<f32>) -> bool {
    if map[H_HAS_DRIVE] == 0u {
        return is_road(class_at(k, d));
    }
    let fx = (k.x_offset_m - mf(H_DRIVE_OX)) + d.x;
    let fy = (k.y_offset_m - mf(H_DRIVE_OY)) + d.y;
    let n = map[H_DRIVE_CELLS_PER_M];
    var col: f32;
    var row: f32;
    if n > 0u {
        // Whole metres and the small remainder apart: exact cell edges.
        col = f32(n) * f32(k.x_cell_m - mi(H_DRIVE_CX)) + floor(fx * f32(n));
        row = f32(n) * f32(k.y_cell_m - mi(H_DRIVE_CY)) + floor(fy * f32(n));
    } else {
        let res = mf(H_DRIVE_RES);
        col = floor((f32(k.x_cell_m - mi(H_DRIVE_CX)) + fx) / res);
        row = floor((f32(k.y_cell_m - mi(H_DRIVE_CY)) + fy) / res);
    }
    if col < 0.0 || row < 0.0 || col >= f32(map[H_DRIVE_NX]) || row >= f32(map[H_DRIVE_NY]) {
        return false;
    }
    let c = u32(row) * map[H_DRIVE_NX] + u32(col);
    if ((map[map[H_DRIVE] + c / 32u] >> (c % 32u)) & 1u) == 1u {
        return true;
    }
    return exactly_drivable(k, d);
}

// swm_twin::drivable::StripIndex::contains at the state's position plus d (m): within a
// strip's half width of its centre line, among the segments of the point's bucket.
fn exactly_drivable(k: AgentState, d: vec2<f32>) -> bool {
    let bucket_m = mf(H_EXACT_BUCKET);
    let gx = f32(k.x_cell_m - mi(H_EXACT_X0)) + k.x_offset_m + d.x;
    let gy = f32(k.y_cell_m - mi(H_EXACT_Y0)) + k.y_offset_m + d.y;
    let col = floor(gx / bucket_m);
    let row = floor(gy / bucket_m);
    if col < 0.0 || row < 0.0 || col >= f32(map[H_EXACT_NX]) || row >= f32(map[H_EXACT_NY]) {
        return false;
    }
    let b = map[H_EXACT_START] + u32(row) * map[H_EXACT_NX] + u32(col);
    for (var i = map[b]; i < map[b + 1u]; i++) {
        let o = map[H_EXACT_SEGS] + 7u * map[map[H_EXACT_ITEMS] + i];
        let pt = vec2<f32>(
            f32(k.x_cell_m - bitcast<i32>(map[o])) + k.x_offset_m + d.x,
            f32(k.y_cell_m - bitcast<i32>(map[o + 1u])) + k.y_offset_m + d.y,
        );
        let a = vec2<f32>(mf(o + 2u), mf(o + 3u));
        let ab = vec2<f32>(mf(o + 4u), mf(o + 5u)) - a;
        let ap = pt - a;
        let l2 = dot(ab, ab);
        var t = 0.0;
        if l2 > 0.0 {
            t = clamp(dot(ap, ab) / l2, 0.0, 1.0);
        }
        let q = ap - t * ab;
        let hw = mf(o + 6u);
        if dot(q, q) <= hw * hw {
            return true;
        }
    }
    return false;
}
