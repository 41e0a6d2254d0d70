//! Motion tokens: the model's discrete actions, one vocabulary per agent class, and the
//! kinematics that turn a token into the next pose.
//!
//! # Vehicles (cars, buses, trucks): 143 tokens
//! A token is an (acceleration, yaw rate) pair held for one step of [`DT_S`] = 0.1 s:
//! `token = accel_index * 11 + yaw_index` with
//!
//! | index | acceleration (m/s²) [`VEHICLE_ACCEL_MPS2`] |
//! |---|---|
//! | 0..13 | -6, -4, -3, -2, -1.2, -0.6, -0.2, 0, 0.2, 0.6, 1.2, 2, 3 |
//!
//! | index | yaw rate (rad/s) [`VEHICLE_YAW_RATE_RADPS`] |
//! |---|---|
//! | 0..11 | -0.6, -0.4, -0.25, -0.12, -0.05, 0, 0.05, 0.12, 0.25, 0.4, 0.6 |
//!
//! The grids are finer near zero (cruising, lane keeping) than at the ends (hard braking,
//! junction turns). The step ([`vehicle_step`]) is a unicycle limited like a bicycle:
//! `v' = max(0, v + a·dt)`; the yaw rate is clamped to `|ω| ≤ κ_max · v̄` with
//! `κ_max` = [`VEHICLE_MAX_CURVATURE_PER_M`] (no turning on the spot) where `v̄ = (v + v')/2`;
//! `θ' = θ + ω·dt`; the position moves `v̄·dt` along the mid-step heading `θ + ω·dt/2`.
//! Vehicles never reverse.
//!
//! # Pedestrians: 81 tokens
//! A token is a velocity change `(Δv_forward, Δv_left)` in the agent frame (forward along
//! its heading), `token = forward_index * 9 + left_index`, both from
//! [`PEDESTRIAN_DV_MPS`] = -0.6, -0.3, -0.15, -0.05, 0, 0.05, 0.15, 0.3, 0.6 m/s per step.
//! [`pedestrian_step`]: `v' = v + R(θ)·Δv` (speed capped at [`PEDESTRIAN_MAX_SPEED_MPS`]),
//! `p' = p + v'·dt`, and the heading follows the velocity when the speed is above
//! 0.2 m/s (held otherwise). The velocity is `speed · (cos θ, sin θ)`: pedestrians face
//! where they walk.
//!
//! # Tokenising teacher data (closed loop)
//! [`tokenize_track`] starts from the first recorded pose and, at every step, picks the
//! token whose one-step rollout *from the reconstructed state* lands closest to the next
//! recorded state, then continues from the rollout, not the record (as in MotionLM and
//! SMART): errors cannot accumulate, because each choice corrects the drift of the last.
//! The distance is `|Δp|² + (2 m)²·Δθ² + (0.2 s)²·Δv²` (position m, heading rad wrapped,
//! speed m/s).

use swm_sim::AgentKind;

/// The step of the model (s): the teacher's and the scenarios' 10 Hz.
pub const DT_S: f64 = 0.1;

/// Vehicle accelerations (m/s²), token rows.
pub const VEHICLE_ACCEL_MPS2: [f64; 13] = [-6.0, -4.0, -3.0, -2.0, -1.2, -0.6, -0.2, 0.0, 0.2, 0.6, 1.2, 2.0, 3.0];
/// Vehicle yaw rates (rad/s, counter-clockwise), token columns.
pub const VEHICLE_YAW_RATE_RADPS: [f64; 11] = [-0.6, -0.4, -0.25, -0.12, -0.05, 0.0, 0.05, 0.12, 0.25, 0.4, 0.6];
/// Tightest vehicle turn (1/m): a 5 m radius.
pub const VEHICLE_MAX_CURVATURE_PER_M: f64 = 0.2;
/// Pedestrian velocity changes per step (m/s), both axes.
pub const PEDESTRIAN_DV_MPS: [f64; 9] = [-0.6, -0.3, -0.15, -0.05, 0.0, 0.05, 0.15, 0.3, 0.6];
/// Pedestrians never walk faster (m/s).
pub const PEDESTRIAN_MAX_SPEED_MPS: f64 = 3.0;

/// Tokens in the vehicle vocabulary.
pub const VEHICLE_TOKENS: usize = VEHICLE_ACCEL_MPS2.len() * VEHICLE_YAW_RATE_RADPS.len();
/// Tokens in the pedestrian vocabulary.
pub const PEDESTRIAN_TOKENS: usize = PEDESTRIAN_DV_MPS.len() * PEDESTRIAN_DV_MPS.len();

/// The two agent classes the model has a vocabulary (and an output head) for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentClass {
    Vehicle,
    Pedestrian,
}

impl AgentClass {
    pub fn of(kind: AgentKind) -> AgentClass {
        if kind.is_vehicle() { AgentClass::Vehicle } else { AgentClass::Pedestrian }
    }
    /// Tokens in this class's vocabulary.
    pub fn vocab(self) -> usize {
        match self {
            AgentClass::Vehicle => VEHICLE_TOKENS,
            AgentClass::Pedestrian => PEDESTRIAN_TOKENS,
        }
    }
    /// The token that keeps the current motion (zero acceleration and yaw rate, or no
    /// velocity change).
    pub fn keep_token(self) -> u16 {
        match self {
            AgentClass::Vehicle => (7 * VEHICLE_YAW_RATE_RADPS.len() + 5) as u16,
            AgentClass::Pedestrian => (4 * PEDESTRIAN_DV_MPS.len() + 4) as u16,
        }
    }
}

/// The kinematic state the tokens act on (twin frame).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kinematics {
    pub point_enu: [f64; 2],
    /// Counter-clockwise from east.
    pub heading_rad: f64,
    pub speed_mps: f64,
}

/// Wraps an angle into `(-π, π]`: `a.rem_euclid(τ)`, less τ above π.
///
/// Angles within one turn of zero (every heading a step makes) skip the `fmod` call with
/// the same bits: for `|a| < τ` the remainder is `a` itself, exactly, and `rem_euclid` adds τ
/// to a negative one.
#[inline]
pub fn wrap_angle(a: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    let t = if (0.0..TAU).contains(&a) {
        a
    } else if a < 0.0 && a > -TAU {
        a + TAU
    } else {
        a.rem_euclid(TAU)
    };
    if t > PI { t - TAU } else { t }
}

/// The (acceleration m/s², yaw rate rad/s) of a vehicle token.
pub fn vehicle_action(token: u16) -> (f64, f64) {
    let t = (token as usize).min(VEHICLE_TOKENS - 1);
    let n = VEHICLE_YAW_RATE_RADPS.len();
    (VEHICLE_ACCEL_MPS2[t / n], VEHICLE_YAW_RATE_RADPS[t % n])
}

/// The (Δv forward, Δv left) (m/s) of a pedestrian token.
pub fn pedestrian_action(token: u16) -> (f64, f64) {
    let t = (token as usize).min(PEDESTRIAN_TOKENS - 1);
    let n = PEDESTRIAN_DV_MPS.len();
    (PEDESTRIAN_DV_MPS[t / n], PEDESTRIAN_DV_MPS[t % n])
}

/// One vehicle step with acceleration `accel_mps2` and yaw rate `yaw_rate_radps`.
pub fn vehicle_step_with(k: &Kinematics, accel_mps2: f64, yaw_rate_radps: f64) -> Kinematics {
    vehicle_step_by(k, accel_mps2, yaw_rate_radps, f64::sin_cos)
}

/// [`vehicle_step_with`] taking the sine and cosine of the mid-step heading from `sin_cos`,
/// which must give [`f64::sin_cos`]'s values (a cache of it, say) for the same step.
#[inline]
pub fn vehicle_step_by(
    k: &Kinematics,
    accel_mps2: f64,
    yaw_rate_radps: f64,
    sin_cos: impl FnOnce(f64) -> (f64, f64),
) -> Kinematics {
    let v1 = (k.speed_mps + accel_mps2 * DT_S).max(0.0);
    let v_mean = 0.5 * (k.speed_mps + v1);
    let max_w = VEHICLE_MAX_CURVATURE_PER_M * v_mean;
    let w = yaw_rate_radps.clamp(-max_w, max_w);
    let mid = k.heading_rad + 0.5 * w * DT_S;
    let (sin_mid, cos_mid) = sin_cos(mid);
    Kinematics {
        point_enu: [k.point_enu[0] + v_mean * DT_S * cos_mid, k.point_enu[1] + v_mean * DT_S * sin_mid],
        heading_rad: wrap_angle(k.heading_rad + w * DT_S),
        speed_mps: v1,
    }
}

/// One vehicle step with a token.
pub fn vehicle_step(k: &Kinematics, token: u16) -> Kinematics {
    let (a, w) = vehicle_action(token);
    vehicle_step_with(k, a, w)
}

/// One pedestrian step with a velocity change `(forward, left)` in the agent frame (m/s).
pub fn pedestrian_step_with(k: &Kinematics, dv_forward_mps: f64, dv_left_mps: f64) -> Kinematics {
    pedestrian_step_by(k, dv_forward_mps, dv_left_mps, f64::sin_cos)
}

/// [`pedestrian_step_with`] taking the sine and cosine of the heading from `sin_cos`, which
/// must give [`f64::sin_cos`]'s values.
#[inline]
pub fn pedestrian_step_by(
    k: &Kinematics,
    dv_forward_mps: f64,
    dv_left_mps: f64,
    sin_cos: impl FnOnce(f64) -> (f64, f64),
) -> Kinematics {
    let (s, c) = sin_cos(k.heading_rad);
    let mut vx = k.speed_mps * c + dv_forward_mps * c - dv_left_mps * s;
    let mut vy = k.speed_mps * s + dv_forward_mps * s + dv_left_mps * c;
    let mut speed = (vx * vx + vy * vy).sqrt();
    if speed > PEDESTRIAN_MAX_SPEED_MPS {
        vx *= PEDESTRIAN_MAX_SPEED_MPS / speed;
        vy *= PEDESTRIAN_MAX_SPEED_MPS / speed;
        speed = PEDESTRIAN_MAX_SPEED_MPS;
    }
    let heading = if speed > 0.2 { vy.atan2(vx) } else { k.heading_rad };
    Kinematics {
        point_enu: [k.point_enu[0] + vx * DT_S, k.point_enu[1] + vy * DT_S],
        heading_rad: heading,
        speed_mps: speed,
    }
}

/// One pedestrian step with a token.
pub fn pedestrian_step(k: &Kinematics, token: u16) -> Kinematics {
    let (f, l) = pedestrian_action(token);
    pedestrian_step_with(k, f, l)
}

/// One step of `class` with `token`.
pub fn step(class: AgentClass, k: &Kinematics, token: u16) -> Kinematics {
    step_by(class, k, token, f64::sin_cos)
}

/// [`step`] taking the sines and cosines from `sin_cos`, which must give [`f64::sin_cos`]'s
/// values (a cache of it, say).
#[inline]
pub fn step_by(class: AgentClass, k: &Kinematics, token: u16, sin_cos: impl FnOnce(f64) -> (f64, f64)) -> Kinematics {
    match class {
        AgentClass::Vehicle => {
            let (a, w) = vehicle_action(token);
            vehicle_step_by(k, a, w, sin_cos)
        }
        AgentClass::Pedestrian => {
            let (f, l) = pedestrian_action(token);
            pedestrian_step_by(k, f, l, sin_cos)
        }
    }
}

/// The tokenisation distance between a rolled-out and a recorded state (module docs).
pub fn state_distance(a: &Kinematics, b: &Kinematics) -> f64 {
    let dx = a.point_enu[0] - b.point_enu[0];
    let dy = a.point_enu[1] - b.point_enu[1];
    let dh = wrap_angle(a.heading_rad - b.heading_rad);
    let dv = a.speed_mps - b.speed_mps;
    dx * dx + dy * dy + 4.0 * dh * dh + 0.04 * dv * dv
}

/// The token whose step from `from` lands closest to `target`, with the landing state.
pub fn best_token(class: AgentClass, from: &Kinematics, target: &Kinematics) -> (u16, Kinematics) {
    let mut best = (class.keep_token(), step(class, from, class.keep_token()));
    let mut best_d = state_distance(&best.1, target);
    for t in 0..class.vocab() as u16 {
        let k = step(class, from, t);
        let d = state_distance(&k, target);
        if d < best_d {
            best_d = d;
            best = (t, k);
        }
    }
    best
}

/// Closed-loop tokenisation of a contiguous track (one state per step): `states.len() - 1`
/// tokens, and the reconstructed states (the first is `states[0]`).
pub fn tokenize_track(class: AgentClass, states: &[Kinematics]) -> (Vec<u16>, Vec<Kinematics>) {
    let Some(first) = states.first() else { return (Vec::new(), Vec::new()) };
    let mut tokens = Vec::with_capacity(states.len().saturating_sub(1));
    let mut rec = Vec::with_capacity(states.len());
    rec.push(*first);
    let mut cur = *first;
    for target in &states[1..] {
        let (t, k) = best_token(class, &cur, target);
        tokens.push(t);
        rec.push(k);
        cur = k;
    }
    (tokens, rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(x: f64, y: f64, h: f64, v: f64) -> Kinematics {
        Kinematics { point_enu: [x, y], heading_rad: h, speed_mps: v }
    }

    #[test]
    fn vocabularies_and_keep_tokens() {
        assert_eq!(VEHICLE_TOKENS, 143);
        assert_eq!(PEDESTRIAN_TOKENS, 81);
        assert_eq!(vehicle_action(AgentClass::Vehicle.keep_token()), (0.0, 0.0));
        assert_eq!(pedestrian_action(AgentClass::Pedestrian.keep_token()), (0.0, 0.0));
        let s = vehicle_step(&k(0.0, 0.0, 0.0, 10.0), AgentClass::Vehicle.keep_token());
        assert!((s.point_enu[0] - 1.0).abs() < 1e-12 && s.point_enu[1] == 0.0 && s.speed_mps == 10.0);
        // No reversing, no turning on the spot.
        let s = vehicle_step(&k(0.0, 0.0, 0.0, 0.1), 0);
        assert_eq!(s.speed_mps, 0.0);
        assert!(s.heading_rad.abs() < 0.01);
    }

    /// A vehicle on a circle of 40 m radius accelerating then braking, and a pedestrian
    /// on a zig-zag: the closed-loop reconstruction stays within 5 cm (vehicle) and 15 cm
    /// (pedestrian, at the sharp corners).
    #[test]
    fn closed_loop_round_trip_error_bounds() {
        let mut states = Vec::new();
        let (mut theta, mut v) = (0.0f64, 5.0f64);
        for i in 0..200 {
            let a = if i < 100 { 1.0 } else { -1.0 };
            states.push(k(40.0 * theta.sin(), 40.0 - 40.0 * theta.cos(), theta, v));
            let v1 = (v + a * DT_S).max(0.0);
            theta += 0.5 * (v + v1) * DT_S / 40.0;
            v = v1;
        }
        let (tokens, rec) = tokenize_track(AgentClass::Vehicle, &states);
        assert_eq!(tokens.len(), 199);
        let max_err = states
            .iter()
            .zip(&rec)
            .map(|(a, b)| (a.point_enu[0] - b.point_enu[0]).hypot(a.point_enu[1] - b.point_enu[1]))
            .fold(0.0, f64::max);
        assert!(max_err < 0.05, "vehicle reconstruction error {max_err} m");
        let max_dh =
            states.iter().zip(&rec).map(|(a, b)| wrap_angle(a.heading_rad - b.heading_rad).abs()).fold(0.0, f64::max);
        assert!(max_dh < 0.02, "heading error {max_dh} rad");

        let mut peds = Vec::new();
        let mut p = [0.0, 0.0];
        for i in 0..100 {
            let h = if (i / 20) % 2 == 0 { 0.4 } else { -0.4 };
            peds.push(k(p[0], p[1], h, 1.3));
            p = [p[0] + 1.3 * DT_S * f64::cos(h), p[1] + 1.3 * DT_S * f64::sin(h)];
        }
        let (_, rec) = tokenize_track(AgentClass::Pedestrian, &peds);
        let max_err = peds
            .iter()
            .zip(&rec)
            .map(|(a, b)| (a.point_enu[0] - b.point_enu[0]).hypot(a.point_enu[1] - b.point_enu[1]))
            .fold(0.0, f64::max);
        // The zig-zag turns by 0.8 rad at once: a 1 m/s velocity change, more than one
        // token gives (0.6 m/s per axis), so the track is caught up over two steps.
        assert!(max_err < 0.15, "pedestrian reconstruction error {max_err} m");
    }

    #[test]
    fn wrap() {
        assert!((wrap_angle(3.0 * std::f64::consts::PI) - std::f64::consts::PI).abs() < 1e-12);
        assert!((wrap_angle(-0.5) + 0.5).abs() < 1e-12);
    }

    #[test]
    fn wrapping_skips_fmod_with_the_same_bits() {
        use std::f64::consts::{PI, TAU};
        let slow = |a: f64| {
            let t = a.rem_euclid(TAU);
            if t > PI { t - TAU } else { t }
        };
        let mut angles = vec![0.0, -0.0, PI, -PI, TAU, -TAU, 1e-300, -1e-300, 7.0, -7.0, 1e6, -1e6, f64::NAN];
        for a in [PI, TAU, 0.0] {
            angles.extend([a.next_up(), a.next_down(), -a.next_up(), -a.next_down()]);
        }
        let mut rng = swm_core::rng::CounterRng::new(5, 5);
        angles.extend((0..100_000).map(|_| rng.range_f64(-2.5 * TAU, 2.5 * TAU)));
        for a in angles {
            assert_eq!(wrap_angle(a).to_bits(), slow(a).to_bits(), "{a:e}");
        }
    }
}
