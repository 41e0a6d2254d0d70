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
const H_HAS_LEVELS: u32 = 44u;
const PATH_WORDS: u32 = 12u;
// swm_sim::metrics::LEVEL_SEPARATION_M: decks this far apart are on different levels.
const LEVEL_SEPARATION_M: f32 = 3.0;

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
        let sq = strip_offset(k, d, map[map[H_EXACT_ITEMS] + i]);
        if dot(sq.xy, sq.xy) <= sq.z * sq.z {
            return true;
        }
    }
    return false;
}

// Strip segment `n` of the exact test seen from the state's position plus d (m): the
// offset from the segment's nearest centre-line point to the point, and the half width.
fn strip_offset(k: AgentState, d: vec2<f32>, n: u32) -> vec3<f32> {
    let o = map[H_EXACT_SEGS] + 7u * n;
    let p = vec2<f32>(
        f32(k.x_cell_m - bitcast<i32>(map[o])) + k.x_offset_m + d.x,
        f32(k.y_cell_m - bitcast<i32>(map[o + 1u])) + k.y_offset_m + d.y,
    );
    let a = vec2<f32>(mf(o + 2u), mf(o + 3u));
    let ab = vec2<f32>(mf(o + 4u), mf(o + 5u)) - a;
    let ap = p - a;
    let l2 = dot(ab, ab);
    var t = 0.0;
    if l2 > 0.0 {
        t = clamp(dot(ap, ab) / l2, 0.0, 1.0);
    }
    return vec3<f32>(ap - t * ab, mf(o + 6u));
}

// swm_model::map::MapContext::off_road_depth at the state's position plus d (m): 0 on the
// drivable area, else the least (distance to a strip's centre line - its half width) over
// the segments of the 3 x 3 buckets around the point's, at most one bucket side (the
// bucket side without the exact test).
fn off_road_depth(k: AgentState, d: vec2<f32>) -> f32 {
    if is_drivable(k, d) {
        return 0.0;
    }
    let bucket_m = mf(H_EXACT_BUCKET);
    if map[H_HAS_DRIVE] == 0u {
        return 4.0;
    }
    let gx = f32(k.x_cell_m - mi(H_EXACT_X0)) + k.x_offset_m + d.x;
    let gy = f32(k.y_cell_m - mi(H_EXACT_Y0)) + k.y_offset_m + d.y;
    let col = floor(gx / bucket_m);
    let row = floor(gy / bucket_m);
    var best = 3.0e38;
    for (var dr = -1.0; dr <= 1.0; dr += 1.0) {
        for (var dc = -1.0; dc <= 1.0; dc += 1.0) {
            let c = col + dc;
            let r = row + dr;
            if c < 0.0 || r < 0.0 || c >= f32(map[H_EXACT_NX]) || r >= f32(map[H_EXACT_NY]) {
                continue;
            }
            let b = map[H_EXACT_START] + u32(r) * map[H_EXACT_NX] + u32(c);
            for (var i = map[b]; i < map[b + 1u]; i++) {
                let sq = strip_offset(k, d, map[map[H_EXACT_ITEMS] + i]);
                best = min(best, length(sq.xy) - sq.z);
            }
        }
    }
    return clamp(best, 0.0, bucket_m);
}

fn path_base(p: u32) -> u32 {
    return map[H_PATHS] + PATH_WORDS * p;
}

// A path's anchor relative to the agent.
fn anchor_rel(p: u32, k: AgentState) -> vec2<f32> {
    let b = path_base(p);
    return vec2<f32>(f32(mi(b) - k.x_cell_m) - k.x_offset_m, f32(mi(b + 1u) - k.y_cell_m) - k.y_offset_m);
}

// Point g (global index): x, y relative to its path's anchor, and s.
fn pt(g: u32) -> vec3<f32> {
    let i = map[H_PTS] + 3u * g;
    return vec3<f32>(mf(i), mf(i + 1u), mf(i + 2u));
}

// The global index of the first point of the segment of path p (at least 2 points) holding
// distance s (clamped to the path), as swm_model::map::Path::at finds it.
fn path_segment(p: u32, s: f32) -> u32 {
    let b = path_base(p);
    let g0 = map[b + 2u];
    let n = map[b + 3u];
    var lo = 0u;
    var hi = n - 1u;
    // A fixed trip count (32 halvings cover any u32 count): lavapipe ran a loop that exits
    // on `lo < hi` once only in the masks' kernel (session 41).
    for (var it = 0u; it < 32u; it++) {
        if lo < hi {
            let mid = (lo + hi + 1u) / 2u;
            if pt(g0 + mid).z <= s {
                lo = mid;
            } else {
                hi = mid - 1u;
            }
        }
    }
    return g0 + min(lo, n - 2u);
}

// swm_model::map::Path::at: the point at distance s along path p (clamped), relative to k.
fn path_at(p: u32, s_in: f32, k: AgentState) -> vec2<f32> {
    let b = path_base(p);
    let ar = anchor_rel(p, k);
    if map[b + 3u] <= 1u {
        return ar + pt(map[b + 2u]).xy;
    }
    let s = clamp(s_in, 0.0, mf(b + 4u));
    let g = path_segment(p, s);
    let a = pt(g);
    let c = pt(g + 1u);
    let seg = c.z - a.z;
    var u = 0.0;
    if seg > 1e-9 {
        u = (s - a.z) / seg;
    }
    return ar + a.xy + u * (c.xy - a.xy);
}

// The unit direction of path p at distance s (clamped): swm_model::map::Path::at's second.
fn path_dir_at(p: u32, s_in: f32) -> vec2<f32> {
    let b = path_base(p);
    if map[b + 3u] <= 1u {
        return vec2<f32>(1.0, 0.0);
    }
    let g = path_segment(p, clamp(s_in, 0.0, mf(b + 4u)));
    let d = pt(g + 1u).xy - pt(g).xy;
    return d / max(length(d), 1e-9);
}

// The deck of path p at its start and at its end (m above the ground; word 11 of the path:
// two i16 in decimetres).
fn path_deck(p: u32) -> vec2<f32> {
    let w = map[path_base(p) + 11u];
    return vec2<f32>(f32((i32(w) << 16u) >> 16u), f32(i32(w) >> 16u)) * 0.1;
}

// swm_model::map::MapContext::deck_at: the deck at distance s along path p.
fn deck_at(p: u32, s: f32) -> f32 {
    let d = path_deck(p);
    if d.x == d.y {
        return d.x;
    }
    let len = max(mf(path_base(p) + 4u), 0.05);
    return d.x + (d.y - d.x) * clamp(s / len, 0.0, 1.0);
}

// swm_model::map::MapContext::on_level: whether some part of path p lies within
// LEVEL_SEPARATION_M of a deck deck_m high (always on a map on one level).
fn on_level(p: u32, deck_m: f32) -> bool {
    if map[H_HAS_LEVELS] == 0u {
        return true;
    }
    let d = path_deck(p);
    return deck_m > min(d.x, d.y) - LEVEL_SEPARATION_M && deck_m < max(d.x, d.y) + LEVEL_SEPARATION_M;
}

struct PathMatch {
    found: bool,
    path: u32,
    s_m: f32,
    lateral_m: f32,
    heading_error_rad: f32,
}

// swm_model::map::MapContext::match_path_on within radius_m (at most the segment grid's
// reach, 6 m) on the level of k's deck: among segments of paths on it whose heading is within
// 90°, the one minimising distance + 4 (1 - cos error), ties by path.
fn match_path(k: AgentState, radius_m: f32) -> PathMatch {
    var best = PathMatch(false, 0u, 0.0, 0.0, 0.0);
    let nx = map[H_GRID_NX];
    let ny = map[H_GRID_NY];
    if nx == 0u {
        return best;
    }
    let cell = mf(H_GRID_CELL);
    let gx = floor((f32(k.x_cell_m - mi(H_GRID_X0)) + k.x_offset_m) / cell);
    let gy = floor((f32(k.y_cell_m - mi(H_GRID_Y0)) + k.y_offset_m) / cell);
    if gx < 0.0 || gy < 0.0 || gx >= f32(nx) || gy >= f32(ny) {
        return best;
    }
    let c = u32(gy) * nx + u32(gx);
    let e0 = map[map[H_GRID_START] + c];
    let e1 = map[map[H_GRID_START] + c + 1u];
    let hd = vec2<f32>(cos(k.heading_rad), sin(k.heading_rad));
    var best_score = 3.0e38;
    for (var e = e0; e < e1; e++) {
        let p = map[map[H_GRID_ENT] + 2u * e];
        let i = map[map[H_GRID_ENT] + 2u * e + 1u];
        if !on_level(p, k.deck_m) {
            continue;
        }
        let g0 = map[path_base(p) + 2u];
        let ar = anchor_rel(p, k);
        let pa = pt(g0 + i);
        let pb = pt(g0 + i + 1u);
        let a = ar + pa.xy;
        let d = pb.xy - pa.xy;
        let len = length(d);
        if len < 1e-6 {
            continue;
        }
        let cos_e = dot(d, hd) / len;
        if cos_e < 0.0 {
            continue;
        }
        let l2 = dot(d, d);
        let u = clamp(dot(-a, d) / l2, 0.0, 1.0);
        let q = a + u * d;
        let dist = length(q);
        if dist > radius_m {
            continue;
        }
        let score = dist + 4.0 * (1.0 - cos_e);
        if !best.found || score < best_score || (score == best_score && p < best.path) {
            best_score = score;
            let cross = d.x * (-a.y) - d.y * (-a.x);
            var lat = dist;
            if cross < 0.0 {
                lat = -dist;
            }
            best = PathMatch(true, p, pa.z + u * len, lat, wrap_angle(atan2(d.y, d.x) - k.heading_rad));
        }
    }
    return best;
}

// swm_model::features::mix.
fn mix_u32(a: u32, b: u32) -> u32 {
    var x = a ^ (b * 0x9E3779B9u);
    x ^= x >> 16u;
    x *= 0x7FEB352Du;
    x ^= x >> 15u;
    x *= 0x846CA68Bu;
    return x ^ (x >> 16u);
}

// The route ahead of a path match (swm_model::features::route): up to 8 paths and where each
// starts along it relative to the agent, following the successors the intent hash picks
// until the route reaches horizon_m.
struct Route {
    p: array<u32, 8>,
    s: array<f32, 8>,
    n: u32,
}

fn route_ahead(m: PathMatch, intent: u32, horizon_m: f32) -> Route {
    var r: Route;
    r.p[0] = m.path;
    r.s[0] = -m.s_m;
    r.n = 1u;
    var end = mf(path_base(m.path) + 4u) - m.s_m;
    var cur = m.path;
    while end < horizon_m && r.n < 8u {
        let cb = path_base(cur);
        let ns = map[cb + 9u];
        if ns == 0u {
            break;
        }
        let next = map[map[H_SUCC] + map[cb + 8u] + mix_u32(intent, cur) % ns];
        r.p[r.n] = next;
        r.s[r.n] = end;
        r.n++;
        end += mf(path_base(next) + 4u);
        cur = next;
    }
    return r;
}
