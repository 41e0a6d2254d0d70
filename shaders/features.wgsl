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
// swm_model::rollout's RECORD_LANE_MATCH_M: the match a vehicle's deck follows.
const RECORD_LANE_MATCH_M: f32 = 3.0;
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

// Every row's state now into `current`, dispatched before `main` (whose neighbours are
// read there, on their decks now): the state the history ring holds, on the deck at the new
// state after the first step (the deck at the vehicle's path match on its level, kept while
// it matches none: swm_model::rollout::RolloutAgent::deck_m). On a map on one level every
// deck is 0 and no match is needed for it.
@compute @workgroup_size(64)
fn decks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = (wg.x + wg.y * nwg.x) * 64u + li;
    if row >= params.rows {
        return;
    }
    var now = state_at(row, 0u);
    if params.steps_done > 0u && info[row].kind != KIND_PEDESTRIAN && map[H_HAS_LEVELS] != 0u {
        let rm = match_path(now, RECORD_LANE_MATCH_M);
        if rm.found {
            now.deck_m = deck_at(rm.path, rm.s_m);
        }
    }
    current[row] = now;
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
    // Made by `decks`.
    let now = current[row];
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
        let m = match_path(now, MATCH_RADIUS_M);
        if m.found {
            let pb = path_base(m.path);
            put(base, 25u, 1.0);
            if map[pb + 7u] == NONE {
                put(base, 26u, 1.0);
            }
            // The route: up to 8 paths and where each starts along it (relative to the agent).
            let route = route_ahead(m, me.intent, ROUTE_HORIZON_M);
            var rp = route.p;
            var rs = route.s;
            let nr = route.n;
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

    // Neighbours: the 8 nearest within 40 m on the agent's level (decks less than
    // LEVEL_SEPARATION_M apart; swm_model::features::same_level), ties by index, and the
    // leader among them.
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
        let b = current[orow];
        let dp = rel(now, b);
        let d2 = dot(dp, dp);
        // Not `dz >= separation`: a NaN deck keeps the agent, as on the CPU.
        if d2 > r2 || abs(b.deck_m - now.deck_m) >= LEVEL_SEPARATION_M {
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
        let b = current[orow];
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
