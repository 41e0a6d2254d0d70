//! Robot kinds and their dynamics: a sidewalk delivery robot (differential drive) and an
//! autonomous car (kinematic bicycle).
//!
//! # Conventions
//! * State in the twin frame: `point_enu` is the centre of the footprint box (x east, y
//!   north, metres), `heading_rad` counter-clockwise from east, `speed_mps` along the
//!   heading (never negative: neither robot reverses here).
//! * One [`Action`] per step of [`DT_S`] = 0.1 s: `accel_mps2` (longitudinal acceleration
//!   command) and `turn` (delivery robot: yaw-rate command in rad/s; car: steering-angle
//!   command in rad, positive to the left).
//! * Commands are *clipped* to the limits, never trusted: [`RobotParams::step`] applies the
//!   acceleration limits (`max_accel_mps2`, `max_brake_mps2`), the speed limit, and for the
//!   delivery robot the yaw-rate and yaw-acceleration limits plus the wheel-speed limit of a
//!   differential drive (`|v| + |ω|·track/2 ≤ max_wheel_speed_mps`); for the car the
//!   steering-angle and steering-rate limits. Integration is semi-implicit Euler (speed and
//!   yaw first, then position with the new values), the same discretisation the world
//!   model's tokens use.
//!
//! # Kinematic bicycle (car)
//! `ẋ = v cos θ`, `ẏ = v sin θ`, `θ̇ = v tan δ / L` with `L` the wheelbase and `δ` the
//! steering angle. The reference point is the box centre (the usual simplification for
//! low-speed planning; the slip angle at the centre is neglected).

use serde::{Deserialize, Serialize};
use swm_sim::AgentKind;
use swm_sim::metrics::OrientedBox;

use crate::RobotError;

/// Step of the robots and the environment (s): the teacher simulator's and the world
/// model's step.
pub const DT_S: f64 = 0.1;

/// The kinds of robots this crate plans for (the drone lives in [`crate::drone`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RobotKind {
    /// A sidewalk delivery robot on the walk graph and crossings.
    Delivery,
    /// An autonomous car on the lane graph, obeying signals.
    Car,
}

impl RobotKind {
    /// `delivery` or `car`.
    pub fn as_str(self) -> &'static str {
        match self {
            RobotKind::Delivery => "delivery",
            RobotKind::Car => "car",
        }
    }

    /// How the other agents (and the world model) see this robot.
    pub fn agent_kind(self) -> AgentKind {
        match self {
            RobotKind::Delivery => AgentKind::Pedestrian,
            RobotKind::Car => AgentKind::Car,
        }
    }
}

/// A robot's kinematic state (module docs, "Conventions").
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobotState {
    /// Centre of the footprint box in the twin frame (m).
    pub point_enu: [f64; 2],
    /// Counter-clockwise from east (rad).
    pub heading_rad: f64,
    /// Along the heading (m/s, ≥ 0).
    pub speed_mps: f64,
    /// Yaw rate now (rad/s).
    pub yaw_rate_radps: f64,
    /// Steering angle (car; 0 for the delivery robot) (rad).
    pub steer_rad: f64,
    /// Longitudinal acceleration applied in the last step (m/s²).
    pub accel_mps2: f64,
}

impl RobotState {
    /// A robot at rest at `point_enu` facing `heading_rad`.
    pub fn at_rest(point_enu: [f64; 2], heading_rad: f64) -> RobotState {
        RobotState { point_enu, heading_rad, speed_mps: 0.0, yaw_rate_radps: 0.0, steer_rad: 0.0, accel_mps2: 0.0 }
    }
}

/// One step's command (module docs, "Conventions").
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Longitudinal acceleration command (m/s²); clipped to `[-max_brake, max_accel]`.
    pub accel_mps2: f64,
    /// Delivery robot: yaw-rate command (rad/s). Car: steering-angle command (rad).
    pub turn: f64,
}

/// Limits and sizes of a robot.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobotParams {
    pub kind: RobotKind,
    /// Footprint length along the heading (m).
    pub length_m: f64,
    /// Footprint width (m).
    pub width_m: f64,
    /// Top speed (m/s).
    pub max_speed_mps: f64,
    /// Largest forward acceleration (m/s²).
    pub max_accel_mps2: f64,
    /// Largest deceleration (m/s², positive).
    pub max_brake_mps2: f64,
    /// Delivery robot: largest yaw rate (rad/s). Car: unused (follows from steering).
    pub max_yaw_rate_radps: f64,
    /// Delivery robot: largest yaw acceleration (rad/s²).
    pub max_yaw_accel_radps2: f64,
    /// Delivery robot: distance between the wheels (m).
    pub track_m: f64,
    /// Delivery robot: largest wheel rim speed (m/s).
    pub max_wheel_speed_mps: f64,
    /// Car: wheelbase (m).
    pub wheelbase_m: f64,
    /// Car: largest steering angle (rad).
    pub max_steer_rad: f64,
    /// Car: largest steering rate (rad/s).
    pub max_steer_rate_radps: f64,
}

impl RobotParams {
    /// A sidewalk delivery robot: 0.7 × 0.6 m, 1.6 m/s top speed (a brisk walk), 1 m/s²
    /// forward, 2 m/s² braking, 1.5 rad/s yaw, 0.5 m track with 2 m/s wheels.
    pub fn delivery_robot() -> RobotParams {
        RobotParams {
            kind: RobotKind::Delivery,
            length_m: 0.7,
            width_m: 0.6,
            max_speed_mps: 1.6,
            max_accel_mps2: 1.0,
            max_brake_mps2: 2.0,
            max_yaw_rate_radps: 1.5,
            max_yaw_accel_radps2: 4.0,
            track_m: 0.5,
            max_wheel_speed_mps: 2.0,
            wheelbase_m: 0.0,
            max_steer_rad: 0.0,
            max_steer_rate_radps: 0.0,
        }
    }

    /// A compact car: 4.5 × 1.8 m, 2.7 m wheelbase, 0.55 rad steering at 0.8 rad/s,
    /// 2.5 m/s² forward, 6 m/s² braking, 16.7 m/s (60 km/h) top speed.
    pub fn car() -> RobotParams {
        RobotParams {
            kind: RobotKind::Car,
            length_m: 4.5,
            width_m: 1.8,
            max_speed_mps: 16.7,
            max_accel_mps2: 2.5,
            max_brake_mps2: 6.0,
            max_yaw_rate_radps: 0.0,
            max_yaw_accel_radps2: 0.0,
            track_m: 0.0,
            max_wheel_speed_mps: 0.0,
            wheelbase_m: 2.7,
            max_steer_rad: 0.55,
            max_steer_rate_radps: 0.8,
        }
    }

    /// The default parameters of `kind`.
    pub fn of(kind: RobotKind) -> RobotParams {
        match kind {
            RobotKind::Delivery => RobotParams::delivery_robot(),
            RobotKind::Car => RobotParams::car(),
        }
    }

    /// Checks that every limit is finite and positive where the kind uses it.
    pub fn validate(&self) -> Result<(), RobotError> {
        let mut checks: Vec<(&'static str, f64)> = vec![
            ("length_m", self.length_m),
            ("width_m", self.width_m),
            ("max_speed_mps", self.max_speed_mps),
            ("max_accel_mps2", self.max_accel_mps2),
            ("max_brake_mps2", self.max_brake_mps2),
        ];
        match self.kind {
            RobotKind::Delivery => checks.extend([
                ("max_yaw_rate_radps", self.max_yaw_rate_radps),
                ("max_yaw_accel_radps2", self.max_yaw_accel_radps2),
                ("track_m", self.track_m),
                ("max_wheel_speed_mps", self.max_wheel_speed_mps),
            ]),
            RobotKind::Car => checks.extend([
                ("wheelbase_m", self.wheelbase_m),
                ("max_steer_rad", self.max_steer_rad),
                ("max_steer_rate_radps", self.max_steer_rate_radps),
            ]),
        }
        for (name, v) in checks {
            if !v.is_finite() || v <= 0.0 {
                return Err(RobotError::InvalidParameter { name, reason: format!("must be finite and > 0, got {v}") });
            }
        }
        Ok(())
    }

    /// The range of each action component: `([accel low, turn low], [accel high, turn high])`.
    pub fn action_bounds(&self) -> ([f64; 2], [f64; 2]) {
        let turn = match self.kind {
            RobotKind::Delivery => self.max_yaw_rate_radps,
            RobotKind::Car => self.max_steer_rad,
        };
        ([-self.max_brake_mps2, -turn], [self.max_accel_mps2, turn])
    }

    /// The state after one step of [`DT_S`] under `action` (module docs); non-finite
    /// command components count as 0.
    pub fn step(&self, s: &RobotState, action: &Action) -> RobotState {
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        let accel_cmd = finite(action.accel_mps2).clamp(-self.max_brake_mps2, self.max_accel_mps2);
        let mut speed = (s.speed_mps + accel_cmd * DT_S).clamp(0.0, self.max_speed_mps);
        let (yaw_rate, steer) = match self.kind {
            RobotKind::Delivery => {
                let cmd = finite(action.turn).clamp(-self.max_yaw_rate_radps, self.max_yaw_rate_radps);
                let dmax = self.max_yaw_accel_radps2 * DT_S;
                let mut w = s.yaw_rate_radps + (cmd - s.yaw_rate_radps).clamp(-dmax, dmax);
                // Wheel-speed limit of the differential drive: the turn wins over speed.
                let half_track = 0.5 * self.track_m;
                let w_cap = (self.max_wheel_speed_mps / half_track).min(self.max_yaw_rate_radps);
                w = w.clamp(-w_cap, w_cap);
                speed = speed.min(self.max_wheel_speed_mps - w.abs() * half_track).max(0.0);
                (w, 0.0)
            }
            RobotKind::Car => {
                let cmd = finite(action.turn).clamp(-self.max_steer_rad, self.max_steer_rad);
                let dmax = self.max_steer_rate_radps * DT_S;
                let d = (s.steer_rad + (cmd - s.steer_rad).clamp(-dmax, dmax))
                    .clamp(-self.max_steer_rad, self.max_steer_rad);
                (speed * d.tan() / self.wheelbase_m, d)
            }
        };
        let heading = wrap_angle(s.heading_rad + yaw_rate * DT_S);
        let (sin, cos) = heading.sin_cos();
        RobotState {
            point_enu: [s.point_enu[0] + speed * cos * DT_S, s.point_enu[1] + speed * sin * DT_S],
            heading_rad: heading,
            speed_mps: speed,
            yaw_rate_radps: yaw_rate,
            steer_rad: steer,
            accel_mps2: (speed - s.speed_mps) / DT_S,
        }
    }

    /// The robot's footprint at `s`, grown by `margin_m` on every side.
    pub fn footprint(&self, s: &RobotState, margin_m: f64) -> OrientedBox {
        OrientedBox {
            center: s.point_enu,
            heading_rad: s.heading_rad,
            length_m: self.length_m + 2.0 * margin_m,
            width_m: self.width_m + 2.0 * margin_m,
        }
    }

    /// The yaw-rate (delivery) or steering (car) command that turns the robot at `s`
    /// towards `target_enu` (pure pursuit on the arc through the target), within limits.
    pub fn pursuit_turn(&self, s: &RobotState, target_enu: [f64; 2]) -> f64 {
        let (dx, dy) = (target_enu[0] - s.point_enu[0], target_enu[1] - s.point_enu[1]);
        let d2 = (dx * dx + dy * dy).max(1e-6);
        let (sin, cos) = s.heading_rad.sin_cos();
        let lateral = -sin * dx + cos * dy;
        let curvature = 2.0 * lateral / d2;
        match self.kind {
            RobotKind::Delivery => {
                let ahead = cos * dx + sin * dy;
                // Behind the robot: turn on the spot towards it.
                let w = if ahead < 0.0 {
                    if lateral >= 0.0 { self.max_yaw_rate_radps } else { -self.max_yaw_rate_radps }
                } else {
                    curvature * s.speed_mps.max(0.5)
                };
                w.clamp(-self.max_yaw_rate_radps, self.max_yaw_rate_radps)
            }
            RobotKind::Car => (curvature * self.wheelbase_m).atan().clamp(-self.max_steer_rad, self.max_steer_rad),
        }
    }
}

/// Wraps an angle into `(-π, π]`.
pub fn wrap_angle(a: f64) -> f64 {
    let t = a.rem_euclid(std::f64::consts::TAU);
    if t > std::f64::consts::PI { t - std::f64::consts::TAU } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_robot_respects_every_limit() {
        let p = RobotParams::delivery_robot();
        let mut s = RobotState::at_rest([0.0, 0.0], 0.0);
        let mut prev = s;
        for k in 0..200 {
            let a =
                Action { accel_mps2: if k < 100 { 50.0 } else { -50.0 }, turn: if k % 20 < 10 { 9.0 } else { -9.0 } };
            s = p.step(&s, &a);
            assert!(s.speed_mps >= 0.0 && s.speed_mps <= p.max_speed_mps + 1e-12);
            assert!(s.accel_mps2 <= p.max_accel_mps2 + 1e-9 && s.accel_mps2 >= -p.max_brake_mps2 - 1e-9, "{s:?}");
            assert!(s.yaw_rate_radps.abs() <= p.max_yaw_rate_radps + 1e-12);
            assert!((s.yaw_rate_radps - prev.yaw_rate_radps).abs() <= p.max_yaw_accel_radps2 * DT_S + 1e-9);
            let wheel = s.speed_mps + s.yaw_rate_radps.abs() * 0.5 * p.track_m;
            assert!(wheel <= p.max_wheel_speed_mps + 1e-9, "wheel speed {wheel}");
            prev = s;
        }
    }

    #[test]
    fn car_respects_steering_limits_and_follows_the_bicycle() {
        let p = RobotParams::car();
        let mut s = RobotState { speed_mps: 10.0, ..RobotState::at_rest([0.0, 0.0], 0.0) };
        let mut prev = s;
        for _ in 0..50 {
            s = p.step(&s, &Action { accel_mps2: 0.0, turn: 5.0 });
            assert!(s.steer_rad <= p.max_steer_rad + 1e-12);
            assert!((s.steer_rad - prev.steer_rad).abs() <= p.max_steer_rate_radps * DT_S + 1e-12);
            let expect = s.speed_mps * s.steer_rad.tan() / p.wheelbase_m;
            assert!((s.yaw_rate_radps - expect).abs() < 1e-12);
            prev = s;
        }
        assert!((s.steer_rad - p.max_steer_rad).abs() < 1e-12);
        // A car at rest cannot turn.
        let rest = p.step(&RobotState::at_rest([0.0, 0.0], 0.3), &Action { accel_mps2: 0.0, turn: 0.5 });
        assert_eq!(rest.heading_rad, 0.3);
        // Non-finite commands are ignored.
        let n = p.step(&s, &Action { accel_mps2: f64::NAN, turn: f64::INFINITY });
        assert!(n.point_enu[0].is_finite() && n.speed_mps == s.speed_mps);
    }

    #[test]
    fn validation_names_the_parameter() {
        let p = RobotParams { wheelbase_m: -1.0, ..RobotParams::car() };
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("wheelbase_m"), "{e}");
        assert!(RobotParams::delivery_robot().validate().is_ok());
    }
}
