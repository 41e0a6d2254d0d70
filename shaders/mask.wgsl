// The rollout feasibility masks of swm_model::rollout (module docs, "Feasibility masks") on
// the device, after sample.wgsl: one workgroup per agent. Composed after philox.wgsl,
// kinematics.wgsl, feature_types.wgsl, map.wgsl (binding 1) and token_rule.wgsl.
//
// For the sampled token: collision-feasible when, after the token, the agent braking at
// 6 m/s² holding the token's yaw rate, limited to 3 m/s² of lateral acceleration
// (pedestrians: slowing straight at the same rate) until it stops never overlaps, step by
// step, a candidate braking straight at the same rate (both boxes grown by 0.1 m: level 0;
// only the bare boxes clear: level 1; the bare boxes first meet at braking step k: level
// 2 + 16 (31 - k) + the vehicle token's acceleration index, so an earlier hit is worse and,
// at the same step, a harder braking better); candidates are the agents of the same
// (scenario, sample) within reach on the same level (frame-0 heights less than 3 m apart)
// whose bare box does not overlap it already, checked with the bare boxes only when the
// grown ones overlap already (in parallel, one candidate per invocation). Off-road-feasible
// (vehicles): the larger count of box corners off the drivable area after the token and
// after holding it 10 more steps is 0 and, after the token, the vehicle can still brake to a
// stop on the road holding one of the vocabulary's yaw rates; for a vehicle partly off the
// road now, that count is below the corners off now. A kept
// token leaves the sampler's output as it is. Otherwise every token is checked (one per
// invocation), all but the best by (off-road score, collision level) are banned as the CPU
// bans them, and a token is drawn again with word 1 of the same keyed draw; the state is
// stepped with it.

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

const MASK_BRAKE_MPS2: f32 = 6.0;
const MASK_OFFROAD_HOLD_STEPS: u32 = 10u;
const MASK_OFFROAD_MARGIN_M: f32 = 0.0;
const MASK_ESCAPE_MAX_STEPS: u32 = 60u;
const OFFROAD_NO_ESCAPE: u32 = 5u;
const MASK_MAX_BRAKE_STEPS: u32 = 30u;
const MASK_BOX_MARGIN_M: f32 = 0.1;
const MASK_LATERAL_MPS2: f32 = 3.0;
const LEVEL_SEPARATION_M: f32 = 3.0;
const COLL_HIT: u32 = 2u;

var<workgroup> n_cand: atomic<u32>;
var<workgroup> hit: atomic<u32>;
var<workgroup> decision: u32;
var<workgroup> coll_level: array<u32, MAX_VOCAB>;
var<workgroup> off_score: array<u32, MAX_VOCAB>;

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

// One braking step (vehicles at MASK_BRAKE_MPS2 holding `yaw`, limited to
// MASK_LATERAL_MPS2 of lateral acceleration; pedestrians slow straight at the same rate, the
// vocabulary's hardest forward slowing).
fn brake(agent_class: u32, k: AgentState, yaw: f32) -> AgentState {
    if agent_class == CLASS_VEHICLE {
        let w_max = MASK_LATERAL_MPS2 / max(k.speed_mps, 1e-3);
        return vehicle_step_with(k, -MASK_BRAKE_MPS2, clamp(yaw, -w_max, w_max));
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
    let f = vec2<f32>(cos(k.heading_rad), sin(k.heading_rad));
    let l = vec2<f32>(-f.y, f.x);
    let hl = 0.5 * length_m + MASK_OFFROAD_MARGIN_M;
    let hw = 0.5 * width_m + MASK_OFFROAD_MARGIN_M;
    var n = 0u;
    let sa = array<f32, 4>(hl, -hl, -hl, hl);
    let sb = array<f32, 4>(hw, hw, -hw, -hw);
    for (var i = 0u; i < 4u; i++) {
        if !is_drivable(k, sa[i] * f + sb[i] * l) {
            n++;
        }
    }
    return n;
}

// Whether member `j` of the agent's (scenario, sample) is a collision candidate: 0 no, 1
// checked with the grown boxes, 2 with the bare boxes (the grown ones overlap already).
fn candidate(me: AgentInfo, now: AgentState, j: u32, brake_steps: u32) -> u32 {
    if j == me.index {
        return 0u;
    }
    let orow = members[me.members_off + j];
    let ob = info[orow];
    if abs(ob.z0_m - me.z0_m) >= LEVEL_SEPARATION_M {
        return 0u;
    }
    let o = state_in[orow];
    let mine = mbox(vec2<f32>(0.0, 0.0), now.heading_rad, me.length_m, me.width_m, MASK_BOX_MARGIN_M);
    let theirs = mbox(rel(now, o), o.heading_rad, ob.length_m, ob.width_m, MASK_BOX_MARGIN_M);
    let horizon_s = DT_S * f32(brake_steps + 1u);
    let base = radius(mine) + (now.speed_mps + 3.0) * horizon_s;
    let reach = base + radius(theirs) + o.speed_mps * horizon_s;
    let d = theirs.c;
    if dot(d, d) > reach * reach {
        return 0u;
    }
    if !overlaps(mine, theirs) {
        return 1u;
    }
    if !overlaps(bare(mine), bare(theirs)) {
        return 2u;
    }
    return 0u;
}

// The box without the collision margin.
fn bare(b: MBox) -> MBox {
    return MBox(b.c, b.f, b.hl - MASK_BOX_MARGIN_M, b.hw - MASK_BOX_MARGIN_M);
}

// The collision level of token `t` of an agent of class `cls` whose braking continuation
// first meets a candidate's bare box at step `k` (swm_model's hit_level).
fn hit_level(cls: u32, t: u32, k: u32) -> u32 {
    var accel = 0u;
    if cls == CLASS_VEHICLE {
        accel = min(t, VEHICLE_TOKENS - 1u) / 11u;
    }
    return COLL_HIT + 16u * (MASK_MAX_BRAKE_STEPS + 1u - min(k, MASK_MAX_BRAKE_STEPS)) + accel;
}

// The collision level of token `t` against candidate `j` of kind `cand` (the CPU's
// step-by-step braking check): grown boxes first, the bare ones from the step they meet.
fn coll_level_of(me: AgentInfo, now: AgentState, cls: u32, t: u32, j: u32, cand: u32, brake_steps: u32) -> u32 {
    let orow = members[me.members_off + j];
    let ob = info[orow];
    var yaw = 0.0;
    if cls == CLASS_VEHICLE {
        yaw = vehicle_token_yaw_rate(t);
    }
    var s = token_step(cls, now, t);
    // Their state one step ahead of ours (their braking states 1, 2, ..., capped at 30): a
    // pedestrian first finishes its step at its current velocity.
    let ocls = class_of(ob.kind);
    var o = brake(ocls, state_in[orow], 0.0);
    if ocls == CLASS_PEDESTRIAN {
        o = pedestrian_step_with(state_in[orow], 0.0, 0.0);
    }
    var level = 0u;
    if cand == 2u {
        level = 1u;
    }
    for (var k = 0u; k <= brake_steps; k++) {
        let mine = mbox(rel(now, s), s.heading_rad, me.length_m, me.width_m, MASK_BOX_MARGIN_M);
        let theirs = mbox(rel(now, o), o.heading_rad, ob.length_m, ob.width_m, MASK_BOX_MARGIN_M);
        if level == 0u && overlaps(mine, theirs) {
            level = 1u;
        }
        if level == 1u && overlaps(bare(mine), bare(theirs)) {
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
    if cand == 2u {
        return 0u;
    }
    return level;
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
    if corners_off(k, me.length_m, me.width_m) > 0u {
        return false;
    }
    for (var d = 0u; d < 11u; d++) {
        let yaw = VEHICLE_YAW_RATE_RADPS[escape_column(first, d, 11u)];
        var s = k;
        var ok = true;
        for (var i = 0u; i < MASK_ESCAPE_MAX_STEPS; i++) {
            if s.speed_mps <= 0.0 {
                break;
            }
            s = vehicle_step_with(s, -MASK_BRAKE_MPS2, yaw);
            if corners_off(s, me.length_m, me.width_m) > 0u {
                ok = false;
                break;
            }
        }
        if ok && s.speed_mps <= 0.0 {
            return true;
        }
    }
    return false;
}

// The off-road score of token `t`: the larger count of corners off after it and after
// holding it MASK_OFFROAD_HOLD_STEPS more steps; for a vehicle on the road now,
// OFFROAD_NO_ESCAPE plus the corners off after it when it cannot then brake on the road.
fn offroad_score(me: AgentInfo, now: AgentState, cls: u32, t: u32, off_now: u32) -> u32 {
    var s = token_step(cls, now, t);
    let after = s;
    let first = corners_off(s, me.length_m, me.width_m);
    for (var k = 0u; k < MASK_OFFROAD_HOLD_STEPS; k++) {
        s = token_step(cls, s, t);
    }
    let score = max(first, corners_off(s, me.length_m, me.width_m));
    if off_now == 0u && !(first == 0u && can_brake_on_road(me, after, t % 11u)) {
        return OFFROAD_NO_ESCAPE + first;
    }
    return score;
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
        atomicStore(&hit, 0u);
    }
    workgroupBarrier();

    // The sampled token against every candidate, one candidate per invocation.
    let tok = tokens[row];
    if mp.collision != 0u {
        for (var j = li; j < me.members_n; j += GROUP) {
            let cand = candidate(me, now, j, brake_steps);
            if cand != 0u {
                atomicAdd(&n_cand, 1u);
                atomicMax(&hit, coll_level_of(me, now, cls, tok, j, cand, brake_steps));
            }
        }
    }
    workgroupBarrier();
    if li == 0u {
        let cands = atomicLoad(&n_cand);
        var d = 0u;
        if cands > 0u || off_now < 4u {
            var off = 0u;
            if off_now < 4u {
                off = offroad_score(me, now, cls, tok, off_now);
            }
            let feasible = atomicLoad(&hit) == 0u && (off_now >= 4u || off == 0u || off < off_now);
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
        var level = 0u;
        if mp.collision != 0u {
            for (var j = 0u; j < me.members_n; j++) {
                let cand = candidate(me, now, j, brake_steps);
                if cand != 0u {
                    level = max(level, coll_level_of(me, now, cls, t, j, cand, brake_steps));
                    // Nothing is worse than a hit right after the token.
                    if level >= hit_level(cls, t, 0u) {
                        break;
                    }
                }
            }
        }
        coll_level[t] = level;
        var off = 0u;
        if off_now < 4u {
            off = offroad_score(me, now, cls, t, off_now);
        }
        off_score[t] = off;
    }
    workgroupBarrier();
    if li == 0u {
        // The best (off-road score, collision level), compared in that order.
        var best_off = off_score[0];
        var best_coll = coll_level[0];
        for (var t = 1u; t < vocab; t++) {
            if off_score[t] < best_off || (off_score[t] == best_off && coll_level[t] < best_coll) {
                best_off = off_score[t];
                best_coll = coll_level[t];
            }
        }
        for (var t = 0u; t < vocab; t++) {
            let worse = off_score[t] > best_off || (off_score[t] == best_off && coll_level[t] > best_coll);
            banned[t] = select(0u, 1u, worse);
        }
    }
    workgroupBarrier();
    let bits = keyed_u32x4(key_from_seed(p.seed_lo, p.seed_hi), key.scenario, key.agent, p.step, key.sample, STREAM_TOKEN);
    let base = row * p.logit_stride;
    let token = draw_token(base, vocab, p.temperature, p.top_k, p.top_p, unit_f32(bits.y), li, true);
    if li == 0u {
        tokens[row] = token;
        state_out[row] = token_step(cls, now, token);
    }
}
