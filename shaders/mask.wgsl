// The rollout feasibility masks of swm_model::rollout (module docs, "Feasibility masks") on
// the device, after sample.wgsl: one workgroup per agent. Composed after philox.wgsl,
// kinematics.wgsl, feature_types.wgsl, map.wgsl (binding 1) and token_rule.wgsl.
//
// For the sampled token: collision-feasible when one of its escapes, the agent after the
// token braking at 6 m/s² until it stops, never overlaps, step by step, a candidate braking
// at the same rate (a moving vehicle within 3 m and 0.5 rad of a lane on its level straight
// on in its route's frame, `make_ghosts`; any other straight on). Both boxes grown by 0.1 m
// clear: level 0; only the bare boxes clear:
// level 1; the bare boxes first meet at braking step k: level 2 + 16 (31 - k) + the
// vehicle token's acceleration index, so an earlier hit is worse and, at the same step, a
// harder braking better). A vehicle's escapes hold the yaw rate of the token's column, of
// the columns on either side and straight on, each no sharper than 3 m/s² of lateral
// acceleration allows at the speed after the token (else the nearest towards straight on
// that is); with the off-road mask only escapes that stay on the road count (where none of
// those does, the first other column from the token's outwards that does); the level is
// the best escape's. Pedestrians slow straight at the same rate. A vehicle candidate's
// boxes are grown by its spread (`ghost_spread`: where its own token this step may take it
// instead). Candidates are the agents of the same (scenario, sample) within reach on the
// same level for the mask (decks less than 5.5 m apart: a ramp's decks converge) whose bare
// box does not overlap it already, checked with the bare boxes only
// when the grown ones overlap already; a pedestrian candidate's bare box is grown by its reach
// in one step (0.6·√2 m/s × 0.1 s) for the hit test unless the agent is within it already. A vehicle within 3 m and 0.5 rad of a path is also
// checked braking along its route (its intent's successors, keeping its lateral offset):
// the route level, ranked after the escapes'. Off-road-feasible (vehicles): the larger
// count of box corners off the drivable area after the token and after holding it 10 more
// steps is 0 and, after the token, the vehicle can still brake to a stop on the road
// holding one of the vocabulary's yaw rates; for a vehicle partly off the road now, that
// count is below the corners off now, and the corners' summed off-road depth (cm) breaks
// ties last. A kept token leaves the sampler's output as it is. Otherwise every token is
// checked (one per invocation) and the CPU's walk is replayed: the probe (hardest braking
// straight on) first, then the others by probability; it stops once a token of the best key
// possible (all 0) is found and such tokens hold MASK_STOP_FRACTION of their mass plus that
// of the tokens after; all but the walked tokens of the best key so far by (off-road score,
// collision level, route level, depth) are banned as the CPU bans them, and a token is drawn
// again with word 1 of the same keyed draw; the state is stepped with it.

struct MaskParams {
    collision: u32,
    offroad: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: SampleParams;
@group(0) @binding(2) var<storage, read> info: array<AgentInfo>;
@group(0) @binding(3) var<storage, read> members: array<u32>;
@group(0) @binding(4) var<storage, read> keys: array<AgentKey>;
@group(0) @binding(5) var<storage, read> logits: array<f32>;
@group(0) @binding(6) var<storage, read> state_in: array<AgentState>;
@group(0) @binding(7) var<storage, read_write> state_out: array<AgentState>;
@group(0) @binding(8) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(9) var<uniform> mp: MaskParams;
@group(0) @binding(10) var<storage, read_write> ghosts: array<MaskGhost>;

// How another vehicle brakes in the collision mask (swm_model's their_route_states: straight
// on in the route's frame, at its heading error from the line), made per
// agent by the `make_ghosts` entry point before `main`: the paths of its route (its intent's
// successors from its path match, cut where a path ends more than GHOST_ROUTE_GAP_M from the
// next one's start), where each starts relative to the matched point, their count (0: it
// brakes straight on), and the line's point at the match relative to the agent's position and
// its unit direction there.
struct MaskGhost {
    paths: array<u32, 8>,
    starts_m: array<f32, 8>,
    n: u32,
    q0_x_m: f32,
    q0_y_m: f32,
    d0_x: f32,
    d0_y: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const MASK_BRAKE_MPS2: f32 = 6.0;
const MASK_OFFROAD_HOLD_STEPS: u32 = 10u;
const MASK_OFFROAD_MARGIN_M: f32 = 0.0;
const MASK_ESCAPE_MAX_STEPS: u32 = 60u;
const OFFROAD_NO_ESCAPE: u32 = 5u;
const MASK_MAX_BRAKE_STEPS: u32 = 30u;
const MASK_BOX_MARGIN_M: f32 = 0.1;
// A pedestrian's reach in one step beyond its assumed state: 0.6·√2 m/s × 0.1 s.
const MASK_PEDESTRIAN_REACH_M: f32 = 0.08485281;
const MASK_GROW_GAP_M: f32 = 0.001;
const MASK_LATERAL_MPS2: f32 = 3.0;
// swm_model::rollout::MASK_LEVEL_SEPARATION_M: a level's height (6 m) less 0.5 m.
const MASK_LEVEL_SEPARATION_M: f32 = 5.5;
const COLL_HIT: u32 = 2u;
const NO_LEVEL: u32 = 0xffffffffu;
const NO_COLUMN: u32 = 99u;
const MASK_ROUTE_MATCH_M: f32 = 3.0;
const MASK_ROUTE_HEADING_RAD: f32 = 0.5;
const GHOST_ROUTE_GAP_M: f32 = 1.0e-4;
// swm_model::rollout::MASK_STOP_FRACTION.
const MASK_STOP_FRACTION: f32 = 0.99;
// The walk's first token: the hardest braking straight on (vehicles: acceleration row 0, the
// middle yaw-rate column; pedestrians: forward row 0, the middle lateral column).
const VEHICLE_PROBE: u32 = 5u;
const PEDESTRIAN_PROBE: u32 = 4u;

var<workgroup> n_cand: atomic<u32>;
var<workgroup> decision: u32;
var<workgroup> coll_level: array<u32, MAX_VOCAB>;
var<workgroup> off_score: array<u32, MAX_VOCAB>;
var<workgroup> along_level: array<u32, MAX_VOCAB>;
var<workgroup> depth_cm: array<u32, MAX_VOCAB>;
// The masked vehicle's route (swm_model's MaskScratch::route): paths, where each starts
// relative to the agent, their count (0: no route) and the agent's lateral offset.
var<workgroup> route_p: array<u32, 8>;
var<workgroup> route_s: array<f32, 8>;
var<workgroup> route_n: u32;
var<workgroup> route_lat: f32;

// An oriented box: centre (relative to the masked agent's current position), unit forward,
// half length and width (margin included).
struct MBox {
    c: vec2<f32>,
    f: vec2<f32>,
    hl: f32,
    hw: f32,
}

fn mbox(c: vec2<f32>, heading: f32, length_m: f32, width_m: f32, margin: f32) -> MBox {
    return MBox(c, vec2<f32>(cos(heading), sin(heading)), 0.5 * length_m + margin, 0.5 * width_m + margin);
}

fn radius(b: MBox) -> f32 {
    return sqrt(b.hl * b.hl + b.hw * b.hw);
}

fn extent(b: MBox, axis: vec2<f32>) -> f32 {
    let l = vec2<f32>(-b.f.y, b.f.x);
    return b.hl * abs(dot(b.f, axis)) + b.hw * abs(dot(l, axis));
}

// How far `o`'s half sizes could grow before it touches `a` (swm_model's growth_room).
fn growth_room(a: MBox, o: MBox) -> f32 {
    let d = o.c - a.c;
    let ol = vec2<f32>(-o.f.y, o.f.x);
    let axes = array<vec2<f32>, 4>(a.f, vec2<f32>(-a.f.y, a.f.x), o.f, ol);
    var room = -1.0e30;
    for (var i = 0u; i < 4u; i++) {
        let sep = abs(dot(d, axes[i])) - extent(a, axes[i]) - extent(o, axes[i]);
        room = max(room, sep / (abs(dot(o.f, axes[i])) + abs(dot(ol, axes[i]))));
    }
    return room;
}

// Separating-axis test (touching counts as overlapping).
fn overlaps(a: MBox, o: MBox) -> bool {
    let d = o.c - a.c;
    let r = radius(a) + radius(o);
    if dot(d, d) > r * r {
        return false;
    }
    let axes = array<vec2<f32>, 4>(a.f, vec2<f32>(-a.f.y, a.f.x), o.f, vec2<f32>(-o.f.y, o.f.x));
    for (var i = 0u; i < 4u; i++) {
        if abs(dot(d, axes[i])) > extent(a, axes[i]) + extent(o, axes[i]) {
            return false;
        }
    }
    return true;
}

// One braking step (vehicles at MASK_BRAKE_MPS2 holding `yaw`; pedestrians slow straight at
// the same rate, the vocabulary's hardest forward slowing).
fn brake(agent_class: u32, k: AgentState, yaw: f32) -> AgentState {
    if agent_class == CLASS_VEHICLE {
        return vehicle_step_with(k, -MASK_BRAKE_MPS2, yaw);
    }
    return pedestrian_step_with(k, -min(k.speed_mps, MASK_BRAKE_MPS2 * DT_S), 0.0);
}

fn class_of(kind: u32) -> u32 {
    if kind == 3u {
        return CLASS_PEDESTRIAN;
    }
    return CLASS_VEHICLE;
}

// Box corners (grown by MASK_OFFROAD_MARGIN_M) of `k` off the drivable area.
fn corners_off(k: AgentState, length_m: f32, width_m: f32) -> u32 {
    var n = 0u;
    for (var i = 0u; i < 4u; i++) {
        if !is_drivable(k, road_corner(k, length_m, width_m, i)) {
            n++;
        }
    }
    return n;
}

// Corner `i` (0..4) of `k`'s box grown by MASK_OFFROAD_MARGIN_M, relative to its centre.
fn road_corner(k: AgentState, length_m: f32, width_m: f32, i: u32) -> vec2<f32> {
    let f = vec2<f32>(cos(k.heading_rad), sin(k.heading_rad));
    let l = vec2<f32>(-f.y, f.x);
    let hl = 0.5 * length_m + MASK_OFFROAD_MARGIN_M;
    let hw = 0.5 * width_m + MASK_OFFROAD_MARGIN_M;
    let sa = array<f32, 4>(hl, -hl, -hl, hl);
    let sb = array<f32, 4>(hw, hw, -hw, -hw);
    return sa[i] * f + sb[i] * l;
}

// Whether member `j` of the agent's (scenario, sample) is a collision candidate: 0 no, 1
// checked with the grown boxes, 2 with the bare boxes (the grown ones overlap already); plus,
// from bit 3 up, how much its bare box is grown for the hit test in micrometres (a
// pedestrian's: MASK_PEDESTRIAN_REACH_M, or the gap to the agent's bare box less
// MASK_GROW_GAP_M where that is smaller).
fn candidate(me: AgentInfo, now: AgentState, j: u32, brake_steps: u32) -> u32 {
    if j == me.index {
        return 0u;
    }
    let orow = members[me.members_off + j];
    let ob = info[orow];
    let o = state_in[orow];
    if abs(o.deck_m - now.deck_m) >= MASK_LEVEL_SEPARATION_M {
        return 0u;
    }
    let mine = mbox(vec2<f32>(0.0, 0.0), now.heading_rad, me.length_m, me.width_m, MASK_BOX_MARGIN_M);
    let theirs = mbox(rel(now, o), o.heading_rad, ob.length_m, ob.width_m, MASK_BOX_MARGIN_M);
    let horizon_s = DT_S * f32(brake_steps + 1u);
    let base = radius(mine) + (now.speed_mps + 3.0) * horizon_s;
    var spread = 0.0;
    if class_of(ob.kind) == CLASS_VEHICLE {
        let g = ghost_spread(o.speed_mps, theirs.hl, theirs.hw, MASK_MAX_BRAKE_STEPS);
        spread = g.x + g.y + g.z;
    }
    let reach = base + radius(theirs) + spread + o.speed_mps * horizon_s;
    let d = theirs.c;
    if dot(d, d) > reach * reach {
        return 0u;
    }
    var grow_bits = 0u;
    if class_of(ob.kind) == CLASS_PEDESTRIAN {
        let grow = clamp(growth_room(bare(mine), bare(theirs)) - MASK_GROW_GAP_M, 0.0, MASK_PEDESTRIAN_REACH_M);
        grow_bits = u32(round(grow * 1.0e6)) << 3u;
    }
    if !overlaps(mine, theirs) {
        return 1u | grow_bits;
    }
    if !overlaps(bare(mine), bare(theirs)) {
        return 2u | grow_bits;
    }
    return 0u;
}

// How much candidate code `cand`'s bare box is grown for the hit test.
fn cand_grow(cand: u32) -> f32 {
    return f32(cand >> 3u) * 1.0e-6;
}

// The box without the collision margin.
fn bare(b: MBox) -> MBox {
    return bare_grown(b, 0.0);
}

// The bare box grown by `extra_m`.
fn bare_grown(b: MBox, extra_m: f32) -> MBox {
    return MBox(b.c, b.f, b.hl - MASK_BOX_MARGIN_M + extra_m, b.hw - MASK_BOX_MARGIN_M + extra_m);
}

// The collision level of token `t` of an agent of class `cls` whose braking continuation
// first meets a candidate's bare box at step `k` (swm_model's hit_level).
fn hit_level(cls: u32, t: u32, k: u32) -> u32 {
    var accel = min(t, PEDESTRIAN_TOKENS - 1u) / 9u;
    if cls == CLASS_VEHICLE {
        accel = min(t, VEHICLE_TOKENS - 1u) / 11u;
    }
    return COLL_HIT + 16u * (MASK_MAX_BRAKE_STEPS + 1u - min(k, MASK_MAX_BRAKE_STEPS)) + accel;
}

// Their state one step ahead of ours (their braking states 1, 2, ..., capped at 30): a
// pedestrian first finishes its step at its current velocity.
fn their_first(ocls: u32, o: AgentState) -> AgentState {
    if ocls == CLASS_PEDESTRIAN {
        return pedestrian_step_with(o, 0.0, 0.0);
    }
    return brake(ocls, o, 0.0);
}

// The continuous distance covered in `t_s` braking at MASK_BRAKE_MPS2 from `v` (swm_model's
// braked_m).
fn braked_m(v: f32, t_s: f32) -> f32 {
    let t = max(min(t_s, v / MASK_BRAKE_MPS2), 0.0);
    return v * t - 0.5 * MASK_BRAKE_MPS2 * t * t;
}

// How a vehicle's ghost box (half sizes `hl`, `hw`, speed now `v`) is grown in its braking
// state `i` (swm_model's ghost_spread: where it may be instead when its token this step is
// not the hardest braking): (centre moved forward, half length added, half width added).
fn ghost_spread(v_in: f32, hl: f32, hw: f32, i: u32) -> vec3<f32> {
    if i == 0u {
        return vec3<f32>(0.0);
    }
    let v = max(v_in, 0.0);
    let a = VEHICLE_ACCEL_MPS2[12];
    let v1 = v + a * DT_S;
    let s_alt = v * DT_S + 0.5 * a * DT_S * DT_S + braked_m(v1, f32(i - 1u) * DT_S);
    // Plus the steps' discretisation (a braking run of steps overshoots the continuous stop
    // by less than ½·a·dt²).
    let along = max(s_alt - braked_m(v, f32(i) * DT_S), 0.0) + 0.5 * MASK_BRAKE_MPS2 * DT_S * DT_S;
    let yaw = min(min(VEHICLE_YAW_RATE_RADPS[10], VEHICLE_MAX_CURVATURE_PER_M * (v + 0.5 * a * DT_S)), MASK_LATERAL_MPS2 / v1);
    let sin_d = sin(yaw * DT_S);
    return vec3<f32>(0.5 * along, 0.5 * along + hw * sin_d, (s_alt + hl) * sin_d);
}

// The box `b` (a candidate's in braking state `i`, `o0` its state now) grown by its spread
// when it is a vehicle's.
fn spread_box(b: MBox, ob: AgentInfo, o0: AgentState, i: u32) -> MBox {
    if class_of(ob.kind) != CLASS_VEHICLE {
        return b;
    }
    let g = ghost_spread(o0.speed_mps, b.hl, b.hw, i);
    return MBox(b.c + g.x * b.f, b.f, b.hl + g.y, b.hw + g.z);
}

// Candidate row `orow`'s box (grown by MASK_BOX_MARGIN_M and by its spread) relative to the
// masked agent at `now`, in its braking state `i`: along its route when it has one
// (`ghosts`), else the straight braking state `o` (the i-th, iterated by the caller).
fn their_box(now: AgentState, orow: u32, ob: AgentInfo, o: AgentState, i: u32) -> MBox {
    return spread_box(their_pose_box(now, orow, ob, o, i), ob, state_in[orow], i);
}

// `their_box` without the spread.
fn their_pose_box(now: AgentState, orow: u32, ob: AgentInfo, o: AgentState, i: u32) -> MBox {
    let g = ghosts[orow];
    if g.n == 0u {
        return mbox(rel(now, o), o.heading_rad, ob.length_m, ob.width_m, MASK_BOX_MARGIN_M);
    }
    let o0 = state_in[orow];
    let v = o0.speed_mps;
    let t_s = min(f32(i) * DT_S, v / MASK_BRAKE_MPS2);
    let s_m = v * t_s - 0.5 * MASK_BRAKE_MPS2 * t_s * t_s;
    // Straight on in the lane's frame: at its heading error from the line.
    let d0 = vec2<f32>(g.d0_x, g.d0_y);
    let f0 = vec2<f32>(cos(o0.heading_rad), sin(o0.heading_rad));
    let along_m = s_m * dot(d0, f0);
    let across_m = s_m * (d0.x * f0.y - d0.y * f0.x);
    // The last path starting at or before `along_m` (a fixed trip count, no early exit: see
    // map.wgsl's path_segment).
    var r = 0u;
    for (var idx = 1u; idx < 8u; idx++) {
        if idx < g.n && g.starts_m[idx] <= along_m {
            r = idx;
        }
    }
    let local_m = along_m - g.starts_m[r];
    let at = path_at(g.paths[r], local_m, o0);
    let d = path_dir_at(g.paths[r], local_m);
    let turn = atan2(d0.x * d.y - d0.y * d.x, dot(d0, d));
    var moved = at - vec2<f32>(g.q0_x_m, g.q0_y_m) + across_m * vec2<f32>(-d.y, d.x);
    let len_m = length(moved);
    if len_m > s_m {
        moved = moved * (s_m / len_m);
    }
    return mbox(rel(now, o0) + moved, o0.heading_rad + turn, ob.length_m, ob.width_m, MASK_BOX_MARGIN_M);
}

// The collision level of token `t` against candidate `j` of kind `cand` when the agent, at
// `first` after the token, brakes holding `yaw` (the CPU's step-by-step check): grown boxes
// first, the bare ones from the step they meet.
fn coll_level_of(me: AgentInfo, now: AgentState, cls: u32, t: u32, first: AgentState, yaw: f32, j: u32, cand: u32, brake_steps: u32) -> u32 {
    let orow = members[me.members_off + j];
    let ob = info[orow];
    var s = first;
    let ocls = class_of(ob.kind);
    var o = their_first(ocls, state_in[orow]);
    var level = 0u;
    if (cand & 3u) == 2u {
        level = 1u;
    }
    let grow = cand_grow(cand);
    for (var k = 0u; k <= brake_steps; k++) {
        let mine = mbox(rel(now, s), s.heading_rad, me.length_m, me.width_m, MASK_BOX_MARGIN_M);
        let theirs = their_box(now, orow, ob, o, min(k + 1u, MASK_MAX_BRAKE_STEPS));
        if level == 0u && overlaps(mine, theirs) {
            level = 1u;
        }
        if level == 1u && overlaps(bare(mine), bare_grown(theirs, grow)) {
            return hit_level(cls, t, k);
        }
        if s.speed_mps <= 0.0 && k > 0u {
            break;
        }
        s = brake(cls, s, yaw);
        if k + 2u <= MASK_MAX_BRAKE_STEPS {
            o = brake(ocls, o, 0.0);
        }
    }
    // A candidate checked with the bare boxes from the start is clear when they are.
    if (cand & 3u) == 2u {
        return 0u;
    }
    return level;
}

// The collision level of the escape holding `yaw` from `first`: the worst over candidates
// (nothing is worse than a hit right after the token).
fn escape_yaw_level(me: AgentInfo, now: AgentState, cls: u32, t: u32, first: AgentState, yaw: f32, brake_steps: u32) -> u32 {
    var level = 0u;
    for (var j = 0u; j < me.members_n; j++) {
        let cand = candidate(me, now, j, brake_steps);
        if cand != 0u {
            level = max(level, coll_level_of(me, now, cls, t, first, yaw, j, cand, brake_steps));
            if level >= hit_level(cls, t, 0u) {
                break;
            }
        }
    }
    return level;
}

// Whether a vehicle at `k` braking at MASK_BRAKE_MPS2 holding `yaw` keeps every box on the
// road until it stops, `k`'s own included (swm_model's brakes_on_road).
fn brakes_on_road(me: AgentInfo, k: AgentState, yaw: f32) -> bool {
    if corners_off(k, me.length_m, me.width_m) > 0u {
        return false;
    }
    var s = k;
    for (var i = 0u; i < MASK_ESCAPE_MAX_STEPS; i++) {
        if s.speed_mps <= 0.0 {
            return true;
        }
        s = vehicle_step_with(s, -MASK_BRAKE_MPS2, yaw);
        if corners_off(s, me.length_m, me.width_m) > 0u {
            return false;
        }
    }
    return s.speed_mps <= 0.0;
}

// Yaw-rate column `j`, or the nearest towards straight on whose yaw rate is no sharper than
// MASK_LATERAL_MPS2 allows at `speed_mps`.
fn toward_zero(j_in: u32, speed_mps: f32) -> u32 {
    var j = j_in;
    while j != 5u && abs(VEHICLE_YAW_RATE_RADPS[j]) * speed_mps > MASK_LATERAL_MPS2 {
        if j < 5u {
            j++;
        } else {
            j--;
        }
    }
    return j;
}

// The collision level of vehicle token `t` (swm_model's MaskScratch::escape_level).
fn escape_level(me: AgentInfo, now: AgentState, t: u32, first: AgentState, brake_steps: u32, off_now: u32) -> u32 {
    let raw = min(t, VEHICLE_TOKENS - 1u) % 11u;
    let col = toward_zero(raw, first.speed_mps);
    var cols = array<u32, 4>(col, toward_zero(max(col, 1u) - 1u, first.speed_mps), toward_zero(min(col + 1u, 10u), first.speed_mps), 5u);
    for (var k = 1u; k < 4u; k++) {
        for (var i = 0u; i < k; i++) {
            if cols[i] == cols[k] {
                cols[k] = NO_COLUMN;
            }
        }
    }
    var best = NO_LEVEL;
    var best_off_road = NO_LEVEL;
    for (var c = 0u; c < 4u; c++) {
        let j = cols[c];
        if j == NO_COLUMN {
            continue;
        }
        let yaw = VEHICLE_YAW_RATE_RADPS[j];
        let l = escape_yaw_level(me, now, CLASS_VEHICLE, t, first, yaw, brake_steps);
        if l >= best {
            continue;
        }
        if off_now == 0u && !brakes_on_road(me, first, yaw) {
            best_off_road = min(best_off_road, l);
            continue;
        }
        best = l;
        if best == 0u {
            break;
        }
    }
    if best == NO_LEVEL && off_now == 0u {
        for (var d = 0u; d < 11u; d++) {
            let j = escape_column(raw, d, 11u);
            if j == cols[0] || j == cols[1] || j == cols[2] || j == cols[3] {
                continue;
            }
            let yaw = VEHICLE_YAW_RATE_RADPS[j];
            let l = escape_yaw_level(me, now, CLASS_VEHICLE, t, first, yaw, brake_steps);
            if brakes_on_road(me, first, yaw) {
                return l;
            }
        }
    }
    if best == NO_LEVEL {
        return best_off_road;
    }
    return best;
}

// The masked vehicle's state (relative position, heading) `k` braking steps along its
// route after token `t` (speed `v1` after it, `s1` m travelled in it).
struct RouteState {
    c: vec2<f32>,
    heading: f32,
    speed: f32,
}

fn route_state(now: AgentState, v1: f32, s1: f32, k: u32) -> RouteState {
    let t_s = min(f32(k) * DT_S, v1 / MASK_BRAKE_MPS2);
    let s = s1 + v1 * t_s - 0.5 * MASK_BRAKE_MPS2 * t_s * t_s;
    var r = 0u;
    for (var q = 1u; q < 8u; q++) {
        if q < route_n && route_s[q] <= s {
            r = q;
        }
    }
    let q = path_at(route_p[r], s - route_s[r], now);
    let d = path_dir_at(route_p[r], s - route_s[r]);
    let c = q + route_lat * vec2<f32>(-d.y, d.x);
    return RouteState(c, atan2(d.y, d.x), max(v1 - MASK_BRAKE_MPS2 * f32(k) * DT_S, 0.0));
}

// The route level of vehicle token `t` (swm_model's MaskScratch::route_level): braking
// along the route after the token against every candidate's braking; 0 without a route.
fn route_level(me: AgentInfo, now: AgentState, t: u32, first: AgentState, brake_steps: u32) -> u32 {
    if route_n == 0u {
        return 0u;
    }
    let v1 = first.speed_mps;
    let s1 = 0.5 * (now.speed_mps + v1) * DT_S;
    var coll = 0u;
    for (var j = 0u; j < me.members_n; j++) {
        let cand = candidate(me, now, j, brake_steps);
        if cand == 0u {
            continue;
        }
        let orow = members[me.members_off + j];
        let ob = info[orow];
        let ocls = class_of(ob.kind);
        var o = their_first(ocls, state_in[orow]);
        var level = 0u;
        if (cand & 3u) == 2u {
            level = 1u;
        }
        let grow = cand_grow(cand);
        var hit_k = NO_LEVEL;
        for (var k = 0u; k <= brake_steps; k++) {
            let s = route_state(now, v1, s1, k);
            let mine = mbox(s.c, s.heading, me.length_m, me.width_m, MASK_BOX_MARGIN_M);
            let theirs = their_box(now, orow, ob, o, min(k + 1u, MASK_MAX_BRAKE_STEPS));
            if level == 0u && overlaps(mine, theirs) {
                level = 1u;
            }
            if level == 1u && overlaps(bare(mine), bare_grown(theirs, grow)) {
                hit_k = k;
                break;
            }
            if s.speed <= 0.0 && k > 0u {
                break;
            }
            if k + 2u <= MASK_MAX_BRAKE_STEPS {
                o = brake(ocls, o, 0.0);
            }
        }
        if hit_k != NO_LEVEL {
            coll = max(coll, hit_level(CLASS_VEHICLE, t, hit_k));
            if hit_k == 0u {
                break;
            }
        } else if (cand & 3u) == 1u {
            coll = max(coll, level);
        }
    }
    return coll;
}

// Fills the route of the masked vehicle (route_n = 0 when it follows no path).
fn find_route(me: AgentInfo, now: AgentState) {
    route_n = 0u;
    let m = match_path(now, MASK_ROUTE_MATCH_M);
    if !m.found || abs(m.heading_error_rad) >= MASK_ROUTE_HEADING_RAD {
        return;
    }
    let v = now.speed_mps + MASK_BRAKE_MPS2 * DT_S;
    let horizon_m = v * DT_S + v * v / (2.0 * MASK_BRAKE_MPS2) + me.length_m + 1.0;
    let r = route_ahead(m, me.intent, horizon_m);
    route_p = r.p;
    route_s = r.s;
    route_n = r.n;
    route_lat = m.lateral_m;
}

// The `d`-th yaw-rate column tried from `first` (swm_model's escape_column): `first`, then
// alternately one more to each side (right first), then the rest of the longer side.
fn escape_column(first: u32, d: u32, n: u32) -> u32 {
    let left = n - 1u - first;
    let right = first;
    let pairs = min(left, right);
    if d == 0u {
        return first;
    }
    if d <= 2u * pairs {
        let k = (d + 1u) / 2u;
        if d % 2u == 1u {
            return first - k;
        }
        return first + k;
    }
    let k = d - pairs;
    if right > left {
        return first - k;
    }
    return first + k;
}

// Whether a vehicle at `k` can brake to a stop at MASK_BRAKE_MPS2 holding one of the
// vocabulary's yaw rates with every box on the road, `k`'s own included (yaw columns tried
// from `first` outwards).
fn can_brake_on_road(me: AgentInfo, k: AgentState, first: u32) -> bool {
    for (var d = 0u; d < 11u; d++) {
        if brakes_on_road(me, k, VEHICLE_YAW_RATE_RADPS[escape_column(first, d, 11u)]) {
            return true;
        }
    }
    return false;
}

// Summed off-road depth of the box corners (margin MASK_OFFROAD_MARGIN_M) of `k` (m).
fn corners_depth(k: AgentState, length_m: f32, width_m: f32) -> f32 {
    var sum = 0.0;
    for (var i = 0u; i < 4u; i++) {
        sum += off_road_depth(k, road_corner(k, length_m, width_m, i));
    }
    return sum;
}

// The off-road score of token `t` (x): the larger count of corners off after it and after
// holding it MASK_OFFROAD_HOLD_STEPS more steps; for a vehicle on the road now,
// OFFROAD_NO_ESCAPE plus the corners off after it when it cannot then brake on the road.
// For a vehicle partly off now, also the corners' summed depth off the road, the larger of
// the two states, in centimetres (y).
fn offroad_score(me: AgentInfo, now: AgentState, cls: u32, t: u32, off_now: u32) -> vec2<u32> {
    var s = token_step(cls, now, t);
    let after = s;
    let first = corners_off(s, me.length_m, me.width_m);
    for (var k = 0u; k < MASK_OFFROAD_HOLD_STEPS; k++) {
        s = token_step(cls, s, t);
    }
    var score = max(first, corners_off(s, me.length_m, me.width_m));
    if off_now == 0u && !(first == 0u && can_brake_on_road(me, after, t % 11u)) {
        score = OFFROAD_NO_ESCAPE + first;
    }
    var depth = 0u;
    if off_now > 0u {
        let m = max(corners_depth(after, me.length_m, me.width_m), corners_depth(s, me.length_m, me.width_m));
        depth = u32(min(round(m * 100.0), 65535.0));
    }
    return vec2<u32>(score, depth);
}

// (collision level, route level, off-road score, depth) of token `t`.
fn check(me: AgentInfo, now: AgentState, cls: u32, t: u32, cands: u32, brake_steps: u32, off_now: u32) -> vec4<u32> {
    let first = token_step(cls, now, t);
    var coll = 0u;
    var along = 0u;
    if mp.collision != 0u && cands > 0u {
        if cls == CLASS_VEHICLE {
            along = route_level(me, now, t, first, brake_steps);
            coll = escape_level(me, now, t, first, brake_steps, off_now);
        } else {
            coll = escape_yaw_level(me, now, cls, t, first, 0.0, brake_steps);
        }
    }
    var off = vec2<u32>(0u, 0u);
    if off_now < 4u {
        off = offroad_score(me, now, cls, t, off_now);
    }
    return vec4<u32>(coll, along, off.x, off.y);
}

// Whether key a (off, coll, along, depth) is below key b.
fn key_less(a: vec4<u32>, b: vec4<u32>) -> bool {
    if a.z != b.z {
        return a.z < b.z;
    }
    if a.x != b.x {
        return a.x < b.x;
    }
    if a.y != b.y {
        return a.y < b.y;
    }
    return a.w < b.w;
}

// Every agent's braking in the masks of the others (`ghosts`; swm_model's
// their_braking_states): a moving vehicle within MASK_ROUTE_MATCH_M and
// MASK_ROUTE_HEADING_RAD of a lane (path word 7) on its level brakes along its route, up to
// the distance it stops in plus a metre; every other agent brakes straight (n = 0). One
// invocation per agent, 64 to a workgroup.
@compute @workgroup_size(64)
fn make_ghosts(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row = (wg.x + wg.y * groups.x) * 64u + li;
    if row >= p.agents {
        return;
    }
    var g: MaskGhost;
    g.n = 0u;
    let k = state_in[row];
    let me = info[row];
    if mp.collision != 0u && class_of(me.kind) == CLASS_VEHICLE && k.speed_mps > 0.0 {
        let m = match_path(k, MASK_ROUTE_MATCH_M);
        if m.found && abs(m.heading_error_rad) < MASK_ROUTE_HEADING_RAD && map[path_base(m.path) + 7u] != NONE {
            let v = k.speed_mps;
            let r = route_ahead(m, me.intent, v * v / (2.0 * MASK_BRAKE_MPS2) + 1.0);
            var n = 1u;
            for (var idx = 1u; idx < 8u; idx++) {
                if idx < r.n && n == idx {
                    let a = r.p[idx - 1u];
                    let gap = path_at(r.p[idx], 0.0, k) - path_at(a, mf(path_base(a) + 4u), k);
                    if length(gap) <= GHOST_ROUTE_GAP_M {
                        n = idx + 1u;
                    }
                }
            }
            g.paths = r.p;
            g.starts_m = r.s;
            g.n = n;
            let q0 = path_at(r.p[0], -r.s[0], k);
            let d0 = path_dir_at(r.p[0], -r.s[0]);
            g.q0_x_m = q0.x;
            g.q0_y_m = q0.y;
            g.d0_x = d0.x;
            g.d0_y = d0.y;
        }
    }
    ghosts[row] = g;
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row = wg.x + wg.y * groups.x;
    if row >= p.agents || (mp.collision == 0u && mp.offroad == 0u) {
        return;
    }
    let me = info[row];
    let key = keys[row];
    let cls = key.agent_class;
    var vocab = VEHICLE_TOKENS;
    if cls != CLASS_VEHICLE {
        vocab = PEDESTRIAN_TOKENS;
    }
    let now = state_in[row];
    let brake_steps = min(u32(ceil((now.speed_mps + 3.0) / (MASK_BRAKE_MPS2 * DT_S))), MASK_MAX_BRAKE_STEPS);
    var off_now = 4u;
    if mp.offroad != 0u && cls == CLASS_VEHICLE {
        off_now = corners_off(now, me.length_m, me.width_m);
    }
    if li == 0u {
        atomicStore(&n_cand, 0u);
    }
    workgroupBarrier();

    // The candidates, one per invocation.
    if mp.collision != 0u {
        for (var j = li; j < me.members_n; j += GROUP) {
            if candidate(me, now, j, brake_steps) != 0u {
                atomicAdd(&n_cand, 1u);
            }
        }
    }
    workgroupBarrier();
    let cands = atomicLoad(&n_cand);
    if li == 0u {
        route_n = 0u;
        if mp.collision != 0u && cands > 0u && cls == CLASS_VEHICLE {
            find_route(me, now);
        }
        // The sampled token.
        var d = 0u;
        if cands > 0u || off_now < 4u {
            let c = check(me, now, cls, tokens[row], cands, brake_steps, off_now);
            let feasible = c.x == 0u && c.y == 0u && (off_now >= 4u || c.z == 0u || c.z < off_now);
            if !feasible {
                d = 1u;
            }
        }
        decision = d;
    }
    if workgroupUniformLoad(&decision) == 0u {
        return;
    }

    // Every token, one per invocation.
    for (var t = li; t < vocab; t += GROUP) {
        let c = check(me, now, cls, t, cands, brake_steps, off_now);
        coll_level[t] = c.x;
        along_level[t] = c.y;
        off_score[t] = c.z;
        depth_cm[t] = c.w;
    }
    workgroupBarrier();
    // The walk: the hardest braking straight on (the probe) first, then the other tokens by
    // probability (descending, ties by token), in `order`.
    let base = row * p.logit_stride;
    if li == 0u {
        var m = logits[base];
        for (var t = 1u; t < vocab; t++) {
            m = max(m, logits[base + t]);
        }
        max_logit = m;
    }
    let m = workgroupUniformLoad(&max_logit);
    for (var t = li; t < vocab; t += GROUP) {
        var x = logits[base + t] - m;
        if p.temperature > 0.0 {
            x = x / p.temperature;
        }
        e[t] = exp(x);
    }
    workgroupBarrier();
    var probe = PEDESTRIAN_PROBE;
    if cls == CLASS_VEHICLE {
        probe = VEHICLE_PROBE;
    }
    probe = min(probe, vocab - 1u);
    for (var t = li; t < vocab; t += GROUP) {
        var rank = 0u;
        if t != probe {
            rank = 1u;
            let et = e[t];
            for (var j = 0u; j < vocab; j++) {
                if j != probe && (e[j] > et || (e[j] == et && j < t)) {
                    rank++;
                }
            }
        }
        order[rank] = t;
    }
    workgroupBarrier();
    if li == 0u {
        // Along the walk: the best (off-road score, collision level, route level, depth)
        // so far, compared in that order, and the mass of the tokens of the best key
        // possible (all 0); the walk stops once that mass is at least MASK_STOP_FRACTION of
        // itself plus the mass of the tokens after (`after`, summed from the end).
        var after: array<f32, MAX_VOCAB>;
        var rest = 0.0;
        for (var j = vocab; j > 0u; j--) {
            after[j - 1u] = rest;
            rest += e[order[j - 1u]];
        }
        let t0 = order[0];
        var best = vec4<u32>(coll_level[t0], along_level[t0], off_score[t0], depth_cm[t0]);
        var best_mass = 0.0;
        var walked = vocab;
        for (var j = 0u; j < vocab; j++) {
            let t = order[j];
            let k = vec4<u32>(coll_level[t], along_level[t], off_score[t], depth_cm[t]);
            if key_less(k, best) {
                best = k;
            }
            if all(k == vec4<u32>(0u)) {
                best_mass += e[t];
            }
            if all(best == vec4<u32>(0u)) && best_mass >= MASK_STOP_FRACTION * (best_mass + after[j]) {
                walked = j + 1u;
                break;
            }
        }
        for (var t = 0u; t < vocab; t++) {
            banned[t] = 1u;
        }
        for (var j = 0u; j < walked; j++) {
            let t = order[j];
            let k = vec4<u32>(coll_level[t], along_level[t], off_score[t], depth_cm[t]);
            banned[t] = select(0u, 1u, key_less(best, k));
        }
    }
    workgroupBarrier();
    let bits = keyed_u32x4(key_from_seed(p.seed_lo, p.seed_hi), key.scenario, key.agent, p.step, key.sample, STREAM_TOKEN);
    let token = draw_token(base, vocab, p.temperature, p.top_k, p.top_p, unit_f32(bits.y), li, true);
    if li == 0u {
        tokens[row] = token;
        state_out[row] = token_step(cls, now, token);
    }
}
