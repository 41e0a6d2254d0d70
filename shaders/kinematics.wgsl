// Token kinematics of swm_model::tokens (vehicle_step, pedestrian_step) in f32, with positions
// split into whole metres (i32) and an f32 offset in [0, 1) m, so a step keeps ~1e-7 m
// kilometres from the origin. (A double-single hi + lo sum does not survive: shader compilers
// such as Mesa's NIR simplify (a + b) - a to b.) A library file, composed before the kernels
// that use it.

const DT_S: f32 = 0.1;
const TAU: f32 = 6.283185307179586;
const PI: f32 = 3.141592653589793;
const VEHICLE_MAX_CURVATURE_PER_M: f32 = 0.2;
const PEDESTRIAN_MAX_SPEED_MPS: f32 = 3.0;
const VEHICLE_TOKENS: u32 = 143u;
const PEDESTRIAN_TOKENS: u32 = 81u;
const CLASS_VEHICLE: u32 = 0u;
const CLASS_PEDESTRIAN: u32 = 1u;

// One agent's kinematic state (twin frame). Position = cell + offset per axis.
struct AgentState {
    x_cell_m: i32,
    y_cell_m: i32,
    x_offset_m: f32,
    y_offset_m: f32,
    heading_rad: f32,
    speed_mps: f32,
    // Height of the road deck the agent is on above the ground (m): the level its path
    // matches keep to (map.wgsl) and the collision mask's level. Steps carry it.
    deck_m: f32,
    _pad1: u32,
}

const VEHICLE_ACCEL_MPS2 = array<f32, 13>(-6.0, -4.0, -3.0, -2.0, -1.2, -0.6, -0.2, 0.0, 0.2, 0.6, 1.2, 2.0, 3.0);
const VEHICLE_YAW_RATE_RADPS = array<f32, 11>(-0.6, -0.4, -0.25, -0.12, -0.05, 0.0, 0.05, 0.12, 0.25, 0.4, 0.6);
const PEDESTRIAN_DV_MPS = array<f32, 9>(-0.6, -0.3, -0.15, -0.05, 0.0, 0.05, 0.15, 0.3, 0.6);

// swm_model::tokens::wrap_angle: into (-π, π].
fn wrap_angle(a: f32) -> f32 {
    var t = a - TAU * floor(a / TAU);
    if t > PI {
        t -= TAU;
    }
    return t;
}

// The state moved by (dx, dy) metres, offsets renormalised into [0, 1).
fn moved(k: AgentState, dx_m: f32, dy_m: f32) -> AgentState {
    var o = k;
    let fx = k.x_offset_m + dx_m;
    let fy = k.y_offset_m + dy_m;
    let cx = floor(fx);
    let cy = floor(fy);
    o.x_cell_m = k.x_cell_m + i32(cx);
    o.y_cell_m = k.y_cell_m + i32(cy);
    o.x_offset_m = fx - cx;
    o.y_offset_m = fy - cy;
    return o;
}

// swm_model::tokens::vehicle_step_with: a kinematic bicycle step with an acceleration and a
// yaw rate (clamped to the curvature limit).
fn vehicle_step_with(k: AgentState, accel_mps2: f32, yaw_rate_radps: f32) -> AgentState {
    let v1 = max(k.speed_mps + accel_mps2 * DT_S, 0.0);
    let v_mean = 0.5 * (k.speed_mps + v1);
    let max_w = VEHICLE_MAX_CURVATURE_PER_M * v_mean;
    let w = clamp(yaw_rate_radps, -max_w, max_w);
    let mid = k.heading_rad + 0.5 * w * DT_S;
    var o = moved(k, v_mean * DT_S * cos(mid), v_mean * DT_S * sin(mid));
    o.heading_rad = wrap_angle(k.heading_rad + w * DT_S);
    o.speed_mps = v1;
    return o;
}

// The yaw rate of a vehicle token.
fn vehicle_token_yaw_rate(token: u32) -> f32 {
    return VEHICLE_YAW_RATE_RADPS[min(token, VEHICLE_TOKENS - 1u) % 11u];
}

fn vehicle_step(k: AgentState, token: u32) -> AgentState {
    let t = min(token, VEHICLE_TOKENS - 1u);
    return vehicle_step_with(k, VEHICLE_ACCEL_MPS2[t / 11u], VEHICLE_YAW_RATE_RADPS[t % 11u]);
}

fn pedestrian_step(k: AgentState, token: u32) -> AgentState {
    let t = min(token, PEDESTRIAN_TOKENS - 1u);
    return pedestrian_step_with(k, PEDESTRIAN_DV_MPS[t / 9u], PEDESTRIAN_DV_MPS[t % 9u]);
}

// One pedestrian step with a velocity change (forward, left) in the agent frame (m/s).
fn pedestrian_step_with(k: AgentState, dv_forward_mps: f32, dv_left_mps: f32) -> AgentState {
    let s = sin(k.heading_rad);
    let c = cos(k.heading_rad);
    var vx = k.speed_mps * c + dv_forward_mps * c - dv_left_mps * s;
    var vy = k.speed_mps * s + dv_forward_mps * s + dv_left_mps * c;
    var speed = sqrt(vx * vx + vy * vy);
    if speed > PEDESTRIAN_MAX_SPEED_MPS {
        vx *= PEDESTRIAN_MAX_SPEED_MPS / speed;
        vy *= PEDESTRIAN_MAX_SPEED_MPS / speed;
        speed = PEDESTRIAN_MAX_SPEED_MPS;
    }
    var o = moved(k, vx * DT_S, vy * DT_S);
    if speed > 0.2 {
        o.heading_rad = atan2(vy, vx);
    }
    o.speed_mps = speed;
    return o;
}

fn token_step(agent_class: u32, k: AgentState, token: u32) -> AgentState {
    if agent_class == CLASS_VEHICLE {
        return vehicle_step(k, token);
    }
    return pedestrian_step(k, token);
}
