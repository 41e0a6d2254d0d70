// Agent features, layout 1 of swm_model::features (see that module's table), for every row at
// once: one invocation per agent. Composed after kinematics.wgsl (AgentState, wrap_angle, PI)
// feature_types.wgsl (FeatureParams, AgentInfo) and map.wgsl (the packed map, binding 1).
//
// Inputs: the packed map (swm_gpu::features::pack_map: a header of offsets, then paths,
// points, successors, the segment grid, the class raster, the signal plans), each row's
// AgentInfo, the member rows of every (scenario, sample), and the history ring
// hist[slot * rows + row] (slot of the state `age` steps old: (10 + steps_done - age) % 11).
// Geometry is always taken as whole metres (i32) + an f32 offset, relative to the agent.

@group(0) @binding(0) var<uniform> params: FeatureParams;
@group(0) @binding(2) var<storage, read> info: array<AgentInfo>;
@group(0) @binding(3) var<storage, read> members: array<u32>;
@group(0) @binding(4) var<storage, read> hist: array<AgentState>;
@group(0) @binding(5) var<storage, read_write> features: array<f32>;
@group(0) @binding(6) var<storage, read_write> current: array<AgentState>;

const FEATURE_DIM: u32 = 202u;
const EGO_DIM: u32 = 90u;
const NEIGHBOURS: u32 = 8u;
const NEIGHBOUR_DIM: u32 = 14u;
const HISTORY_SLOTS: u32 = 11u;
const HISTORY_STEPS: u32 = 10u;
const LANE_POINTS: u32 = 15u;
const LANE_SPACING_M: f32 = 4.0;
const ROUTE_HORIZON_M: f32 = 61.0;
const STOP_HORIZON_M: f32 = 60.0;
const RAY_MAX_M: f32 = 24.0;
const MATCH_RADIUS_M: f32 = 6.0;
const NEIGHBOUR_RADIUS_M: f32 = 40.0;
const KIND_PEDESTRIAN: u32 = 3u;
const SIGNAL_NONE: u32 = 3u;

// The state `age` steps old of `row`.
fn state_at(row: u32, age: u32) -> AgentState {
    let slot = (HISTORY_SLOTS - 1u + params.steps_done - age) % HISTORY_SLOTS;
    return hist[slot * params.rows + row];
}

// A vector in the agent frame (cos, sin of its heading).
fn to_local(cs: vec2<f32>, d: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(cs.x * d.x + cs.y * d.y, -cs.y * d.x + cs.x * d.y);
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

// swm_model::map::Path::at: the point at distance s along path p (clamped), relative to k.
fn path_at(p: u32, s_in: f32, k: AgentState) -> vec2<f32> {
    let b = path_base(p);
    let g0 = map[b + 2u];
    let n = map[b + 3u];
    let ar = anchor_rel(p, k);
    if n <= 1u {
        return ar + pt(g0).xy;
    }
    let s = clamp(s_in, 0.0, mf(b + 4u));
    var lo = 0u;
    var hi = n - 1u;
    while lo < hi {
        let mid = (lo + hi + 1u) / 2u;
        if pt(g0 + mid).z <= s {
            lo = mid;
        } else {
            hi = mid - 1u;
        }
    }
    let i = min(lo, n - 2u);
    let a = pt(g0 + i);
    let c = pt(g0 + i + 1u);
    let seg = c.z - a.z;
    var u = 0.0;
    if seg > 1e-9 {
        u = (s - a.z) / seg;
    }
    return ar + a.xy + u * (c.xy - a.xy);
}

struct PathMatch {
    found: bool,
    path: u32,
    s_m: f32,
    lateral_m: f32,
    heading_error_rad: f32,
}

// swm_model::map::MapContext::match_path within MATCH_RADIUS_M: among segments whose
// heading is within 90°, the one minimising distance + 4 (1 - cos error), ties by path.
fn match_path(k: AgentState) -> PathMatch {
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
        if dist > MATCH_RADIUS_M {
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

// swm_sim::signal::Plan::phase_state: 0 red, 1 amber, 2 green.
fn phase_state(plan: u32, phase: u32, t: f32) -> u32 {
    let pb = map[H_PLANS] + 3u * plan;
    let cycle = mf(pb);
    let x = t + mf(pb + 1u);
    var local = x - cycle * floor(x / cycle);
    if local >= cycle {
        local -= cycle;
    }
    if local < 0.0 {
        local += cycle;
    }
    let ph = map[H_PHASES] + 3u * (map[pb + 2u] + phase);
    let dt = local - mf(ph);
    let green = mf(ph + 1u);
    let amber = mf(ph + 2u);
    if dt >= 0.0 && dt < green {
        return 2u;
    }
    if dt >= green && dt < green + amber {
        return 1u;
    }
    return 0u;
}

// swm_sim::signal::SignalController::lane_state (SIGNAL_NONE: no signal).
fn lane_signal(lane: u32, t: f32) -> u32 {
    if lane >= map[H_LANES] {
        return SIGNAL_NONE;
    }
    let w0 = map[map[H_LANE_SIG] + 2u * lane];
    let kind = w0 & 3u;
    if kind == 0u {
        return SIGNAL_NONE;
    }
    if kind == 1u {
        return 2u;
    }
    let n = w0 >> 2u;
    let off = map[map[H_LANE_SIG] + 2u * lane + 1u];
    var best = 0u;
    for (var m = 0u; m < n; m++) {
        let at = map[H_LANE_PH] + 2u * (off + m);
        let s = phase_state(map[at], map[at + 1u], t);
        if s == 2u {
            return 2u;
        }
        if s == 1u {
            best = 1u;
        }
    }
    return best;
}

fn put(base: u32, i: u32, v: f32) {
    features[base + i] = v;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = (wg.x + wg.y * nwg.x) * 64u + li;
    if row >= params.rows {
        return;
    }
    let me = info[row];
    let base = row * FEATURE_DIM;
    for (var i = 0u; i < FEATURE_DIM; i++) {
        features[base + i] = 0.0;
    }
    let now = state_at(row, 0u);
    current[row] = now;
    let cs = vec2<f32>(cos(now.heading_rad), sin(now.heading_rad));
    let n = min(me.hist_len0 + params.steps_done, HISTORY_SLOTS);

    // Ego kinematics.
    put(base, 0u, now.speed_mps / 10.0);
    if n >= 2u {
        let prev = state_at(row, 1u);
        put(base, 1u, (now.speed_mps - prev.speed_mps) / 0.1 / 3.0);
        put(base, 2u, wrap_angle(now.heading_rad - prev.heading_rad) / 0.1 / 0.5);
    }
    put(base, 3u, me.length_m / 5.0);
    put(base, 4u, me.width_m / 2.0);
    put(base, 5u + min(me.kind, 3u), 1.0);
    let past = min(n - 1u, HISTORY_STEPS);
    put(base, 9u, f32(past) / f32(HISTORY_STEPS));
    for (var j = 0u; j < 5u; j++) {
        let k = state_at(row, min(2u * (j + 1u), past));
        let p = to_local(cs, rel(now, k));
        put(base, 10u + 3u * j, p.x / 10.0);
        put(base, 11u + 3u * j, p.y / 10.0);
        put(base, 12u + 3u * j, wrap_angle(k.heading_rad - now.heading_rad));
    }

    // Lane ahead (vehicles).
    let time_s = me.time0_s + 0.1 * f32(params.frame - 1u);
    var signal = SIGNAL_NONE;
    if me.kind != KIND_PEDESTRIAN {
        let m = match_path(now);
        if m.found {
            let pb = path_base(m.path);
            put(base, 25u, 1.0);
            if map[pb + 7u] == NONE {
                put(base, 26u, 1.0);
            }
            // The route: up to 8 paths and where each starts along it (relative to the agent).
            var rp: array<u32, 8>;
            var rs: array<f32, 8>;
            rp[0] = m.path;
            rs[0] = -m.s_m;
            var nr = 1u;
            var end = mf(pb + 4u) - m.s_m;
            var cur = m.path;
            while end < ROUTE_HORIZON_M && nr < 8u {
                let cb = path_base(cur);
                let ns = map[cb + 9u];
                if ns == 0u {
                    break;
                }
                let next = map[map[H_SUCC] + map[cb + 8u] + mix_u32(me.intent, cur) % ns];
                rp[nr] = next;
                rs[nr] = end;
                nr++;
                end += mf(path_base(next) + 4u);
                cur = next;
            }
            for (var k = 0u; k < LANE_POINTS; k++) {
                let d = f32(k + 1u) * LANE_SPACING_M;
                var r = 0u;
                for (var q = nr; q > 0u; q--) {
                    if rs[q - 1u] <= d {
                        r = q - 1u;
                        break;
                    }
                }
                let l = to_local(cs, path_at(rp[r], d - rs[r], now));
                put(base, 27u + 2u * k, l.x / 30.0);
                put(base, 28u + 2u * k, l.y / 30.0);
            }
            put(base, 57u, m.lateral_m / 2.0);
            put(base, 58u, sin(m.heading_error_rad));
            put(base, 59u, cos(m.heading_error_rad));
            put(base, 60u, mf(pb + 5u) / 15.0);
            put(base, 61u, 1.0);
            for (var r = 0u; r < nr; r++) {
                let rb = path_base(rp[r]);
                if map[rb + 10u] == 1u {
                    let d = rs[r] + mf(rb + 6u);
                    if d >= -1.0 && d <= STOP_HORIZON_M {
                        put(base, 61u, max(d, 0.0) / STOP_HORIZON_M);
                        put(base, 62u, 1.0);
                        if map[H_HAS_PLANS] == 1u {
                            let lane = map[rb + 7u];
                            if lane != NONE {
                                signal = lane_signal(lane, time_s);
                            }
                        } else {
                            signal = me.recorded_signal;
                        }
                        break;
                    }
                }
            }
        }
    } else {
        signal = me.recorded_signal;
    }
    put(base, 63u + min(signal, 3u), 1.0);

    // Static context: rays through the class raster, the class underfoot.
    let here = class_at(now, vec2<f32>(0.0, 0.0));
    for (var d = 0u; d < 8u; d++) {
        let ang = now.heading_rad + f32(d) * (PI / 4.0);
        let dir = vec2<f32>(cos(ang), sin(ang));
        var building = RAY_MAX_M;
        var edge = RAY_MAX_M;
        var t = 1.0;
        while t <= RAY_MAX_M && (building == RAY_MAX_M || edge == RAY_MAX_M) {
            let cl = class_at(now, t * dir);
            if building == RAY_MAX_M && cl == CLASS_BUILDING {
                building = t;
            }
            if edge == RAY_MAX_M && is_road(cl) != is_road(here) {
                edge = t;
            }
            t += 1.0;
        }
        put(base, 67u + 2u * d, building / RAY_MAX_M);
        put(base, 68u + 2u * d, edge / RAY_MAX_M);
    }
    var g = 3u;
    if here == CLASS_ROAD {
        g = 0u;
    } else if here == CLASS_CROSSING {
        g = 1u;
    } else if here == CLASS_SIDEWALK {
        g = 2u;
    }
    put(base, 83u + g, 1.0);

    // Neighbours: the 8 nearest within 40 m (ties by index), and the leader among all near.
    var nd2: array<f32, 8>;
    var nj: array<u32, 8>;
    var count = 0u;
    let r2 = NEIGHBOUR_RADIUS_M * NEIGHBOUR_RADIUS_M;
    var best_gap = 3.0e38;
    var best_d2 = 0.0;
    var best_j = NONE;
    var leader_dv = 0.0;
    for (var j = 0u; j < me.members_n; j++) {
        if j == me.index {
            continue;
        }
        let orow = members[me.members_off + j];
        let b = state_at(orow, 0u);
        let dp = rel(now, b);
        let d2 = dot(dp, dp);
        if d2 > r2 {
            continue;
        }
        // Insert (d2, j) into the sorted top 8.
        if count < NEIGHBOURS || d2 < nd2[NEIGHBOURS - 1u] {
            var at = min(count, NEIGHBOURS - 1u);
            while at > 0u && d2 < nd2[at - 1u] {
                nd2[at] = nd2[at - 1u];
                nj[at] = nj[at - 1u];
                at--;
            }
            nd2[at] = d2;
            nj[at] = j;
            count = min(count + 1u, NEIGHBOURS);
        }
        // The leader: smallest gap, ties by (distance, index) as the CPU's sorted scan.
        let ob = info[orow];
        let p = to_local(cs, dp);
        let half = 0.5 * (me.width_m + ob.width_m) + 0.5;
        if p.x > 0.0 && abs(p.y) < half {
            let gap = max(p.x - 0.5 * (me.length_m + ob.length_m), 0.0);
            if gap < best_gap || (gap == best_gap && d2 < best_d2) {
                best_gap = gap;
                best_d2 = d2;
                best_j = j;
                let vb = to_local(cs, b.speed_mps * vec2<f32>(cos(b.heading_rad), sin(b.heading_rad)));
                leader_dv = vb.x - now.speed_mps;
            }
        }
    }
    put(base, 88u, 1.0);
    if best_j != NONE {
        put(base, 87u, 1.0);
        put(base, 88u, best_gap / NEIGHBOUR_RADIUS_M);
        put(base, 89u, leader_dv / 10.0);
    }
    let v_own = now.speed_mps * cs;
    for (var s = 0u; s < count; s++) {
        let orow = members[me.members_off + nj[s]];
        let b = state_at(orow, 0u);
        let ob = info[orow];
        let o = base + EGO_DIM + s * NEIGHBOUR_DIM;
        let p = to_local(cs, rel(now, b));
        let dh = wrap_angle(b.heading_rad - now.heading_rad);
        let vb = b.speed_mps * vec2<f32>(cos(b.heading_rad), sin(b.heading_rad));
        let dv = to_local(cs, vb - v_own);
        features[o] = p.x / 20.0;
        features[o + 1u] = p.y / 20.0;
        features[o + 2u] = cos(dh);
        features[o + 3u] = sin(dh);
        features[o + 4u] = dv.x / 10.0;
        features[o + 5u] = dv.y / 10.0;
        features[o + 6u] = ob.length_m / 5.0;
        features[o + 7u] = ob.width_m / 2.0;
        features[o + 8u + min(ob.kind, 3u)] = 1.0;
        features[o + 12u] = sqrt(nd2[s]) / NEIGHBOUR_RADIUS_M;
        features[o + 13u] = 1.0;
    }
}
