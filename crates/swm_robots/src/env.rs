//! The gym-like environment: a robot in a twin whose other agents are moved by the teacher
//! simulator (`swm_sim::Simulation`, the ground truth).
//!
//! # What moves the world, and why
//! The other agents (vehicles, pedestrians) are the teacher simulator's: it is the ground
//! truth the world model was trained to imitate, so outcomes measured here are not graded
//! by the model that plans. Every step the robot is handed to the simulator as a
//! [`swm_sim::ExternalAgent`] ([`EnvConfig::teacher_sees_robot`], on by default), so **the
//! ground-truth agents react to it** as the world model's do: vehicles brake for it on their
//! path and never drive into it, pedestrians keep clear of it, a crossing it stands on stops
//! traffic. A pedestrian can still step into it and the robot can still drive into anyone:
//! every contact counts against the robot (the episode fails), and [`Info::struck`] says
//! when the robot was standing still or hit from behind.
//!
//! **Model world** ([`Env::with_model_world`]): after the same warm-up the world model
//! takes every agent over from the teacher's last second ([`swm_model::LiveRollout`], the
//! robot among them as an externally driven agent [`ROBOT_AGENT_ID`], so the model's agents
//! see it through their features and feasibility masks); nobody spawns, so agents that
//! leave are gone. Outcomes there are graded by a world the model itself makes: the setting
//! for asking whether planning with the right model of the world helps, not for judging the
//! model.
//!
//! # Episodes
//! [`Env::reset`]`(seed)` builds the simulation with that seed ([`EnvConfig`]'s traffic),
//! runs it [`EnvConfig::warmup_s`] so traffic spreads, then picks a start and a goal with
//! `CounterRng(seed, `[`STREAM_EPISODE`]`)`: a random start node (lane), then a random goal
//! among the walk nodes (lanes) whose shortest route from it is `min_route_m..=max_route_m`
//! long (Dijkstra, [`crate::route::reachable_within`]); the route is A*'s. The
//! car (start at rest, on the lane's centre line, [`START_S_M`] in), retrying up to
//! [`MAX_TRIES`] times for a start whose footprint is clear of buildings; the warm-up is
//! extended (up to 30 s) until, for the last second, no agent's box overlaps the start
//! footprint grown by 0.5 m nor would before stopping ([`would_reach`]: braking at
//! [`START_BRAKE_MPS2`] along its heading, [`START_GAP_M`] to spare). A start still blocked
//! after 30 s is given up: another start and goal are drawn from the same stream and the
//! wait begins again (up to 5 times, then [`Env::reset`] fails with
//! [`RobotError::Scene`]); an episode never begins inside an agent's reach. A given route
//! ([`Env::reset_on_route`]) has no other start, and begins after 30 s regardless. Each [`Env::step`] applies the
//! action for [`DT_S`] (robot dynamics: [`crate::robot`]), steps the simulation once, then
//! checks, in order: collision (the footprint against the box of every agent on the robot's
//! level — a car's height comes from its route, [`crate::route::Route::z_at`], else the
//! terrain's — oriented-box SAT beyond 1 cm, and against building outlines: the footprint's corners, edge midpoints and
//! centre), success (within `goal_radius_m` of the route's end), timeout
//! (`max_episode_s`).
//!
//! # Reward
//! `progress_m · 0.1 − 0.01` per step (route metres gained, a time cost), `+10` on success,
//! `−10` on collision, `−0.05 · off_walk_m` (delivery robot off the walkable area),
//! `−1` for entering a crossing on a red pedestrian signal or passing a stop line on red.
//!
//! # Observation spec ([`Observation`])
//! All in SI units; "robot frame" is x forward, y left, origin at the footprint centre.
//! * `state`: the robot's [`RobotState`] (twin frame);
//! * `goal_robot_m`: the goal in the robot frame; `route_remaining_m`: along the route;
//! * `route_ahead_robot_m`: [`ROUTE_POINTS`] route points every [`ROUTE_SPACING_M`]
//!   (delivery) or 4× that (car) ahead of the robot's projection, robot frame;
//! * `signal_ahead`: the next rule on the route within 50 m: its state (`None`: no signal)
//!   and its distance along the route (the car's next stop line; the robot's next signalled
//!   crossing);
//! * `neighbours`: up to `max_neighbours` agents within `neighbour_radius_m`, nearest first:
//!   kind, position, heading and velocity in the robot frame, size;
//! * `bev`: optional ([`BevSpec`]) a square crop around the robot, robot-forward up: the
//!   twin's classes (`swm_twin::query::BevClass` as u8) and an agent-occupancy layer;
//! * `lidar_ranges_m`: optional ([`LidarSpec`]) a planar lidar scan from `swm_sensors`
//!   against buildings, terrain and the agents' boxes (noise keyed by the episode seed and
//!   the step);
//! * `flat(max_neighbours)`: the same as one fixed-length `Vec<f32>` for learning.
//!
//! # Action spec
//! [`Action`] `{ accel_mps2, turn }`: bounds from [`RobotParams::action_bounds`]; `turn` is
//! a yaw-rate command (rad/s) for the delivery robot and a steering angle (rad) for the car.
//! Out-of-range commands are clipped.
//!
//! # Determinism
//! One `reset(seed)` decides the episode: the simulation is seeded with it and every random
//! choice comes from `CounterRng`; an environment is single-threaded. [`VecEnv`] steps
//! environments in parallel with rayon and returns results in environment order, so the
//! bytes are the same whatever the thread count.

use std::collections::VecDeque;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use swm_core::ErrorChain;
use swm_core::rng::CounterRng;
use swm_model::tokens::Kinematics;
use swm_sim::metrics::OrientedBox;
use swm_sim::{AgentKind, ExternalAgent, SignalState, SimConfig, Simulation, TrajectoryRecord};
use swm_twin::P2;

use crate::RobotError;
use crate::robot::{Action, DT_S, RobotKind, RobotParams, RobotState, wrap_angle};
use crate::route::{Route, RouteCrossing, RouteStop};
use crate::scene::Scene;

/// Random stream of start and goal choices.
pub const STREAM_EPISODE: u64 = 0x70B0_0001;
/// Attempts at a start and goal before [`RobotError::Scene`].
pub const MAX_TRIES: usize = 200;
/// How long (steps) the warm-up waits beyond [`EnvConfig::warmup_s`] for the start to clear.
const MAX_WARM_EXTRA_STEPS: u32 = 300;
/// How many times a blocked start is given up for another before [`Env::reset`] fails.
const MAX_START_RESTARTS: u32 = 5;
/// Route points in the observation.
pub const ROUTE_POINTS: usize = 8;
/// Spacing of the route points for the delivery robot (m; ×4 for the car).
pub const ROUTE_SPACING_M: f64 = 2.0;
/// Where the car starts on its first lane (m from its start).
pub const START_S_M: f64 = 3.0;
/// Frames of history kept (1 s at 10 Hz plus now), what the world model needs.
pub const HISTORY_FRAMES: usize = 11;

/// An optional bird's-eye-view crop in the observation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BevSpec {
    /// Pixels per side.
    pub size_px: u32,
    /// Metres per pixel.
    pub resolution_m: f64,
}

/// An optional planar lidar in the observation (`swm_sensors`), mounted at the footprint
/// centre facing forward.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LidarSpec {
    /// Beams over 360° (the first at −180° + half a step, counter-clockwise).
    pub beams: u32,
    /// Largest range (m); beams with no return read this.
    pub range_max_m: f64,
    /// Gaussian range noise (m).
    pub noise_std_m: f64,
    /// Mount height above the ground (m).
    pub height_m: f64,
}

impl LidarSpec {
    /// A 2-D scanner: 360 beams, 30 m, 1 cm noise, 0.5 m high.
    pub fn planar() -> LidarSpec {
        LidarSpec { beams: 360, range_max_m: 30.0, noise_std_m: 0.01, height_m: 0.5 }
    }

    fn config(&self) -> swm_sensors::LidarConfig {
        swm_sensors::LidarConfig {
            beams_per_channel: self.beams,
            range_max_m: self.range_max_m,
            range_noise_std_m: self.noise_std_m,
            ..swm_sensors::LidarConfig::planar_2d()
        }
    }
}

/// What an environment simulates (module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvConfig {
    pub robot: RobotParams,
    /// Vehicles the teacher keeps in the district.
    pub vehicles: u32,
    /// Pedestrians the teacher keeps in the district.
    pub pedestrians: u32,
    /// Simulated time before the episode starts (s).
    pub warmup_s: f64,
    /// Episode length limit (s).
    pub max_episode_s: f64,
    /// Success radius around the goal (m).
    pub goal_radius_m: f64,
    /// Shortest and longest route between start and goal (m).
    pub min_route_m: f64,
    pub max_route_m: f64,
    /// Agents within this radius are observed (m).
    pub neighbour_radius_m: f64,
    pub max_neighbours: usize,
    pub bev: Option<BevSpec>,
    pub lidar: Option<LidarSpec>,
    /// The teacher's agents see the robot (default): its vehicles brake for it and never
    /// drive into it, pedestrians keep clear of it, a crossing it stands on stops traffic
    /// ([`swm_sim::ExternalAgent`]). `false`: they ignore it, as in earlier versions.
    pub teacher_sees_robot: bool,
}

impl EnvConfig {
    /// The delivery robot among pedestrians and traffic (120 vehicles, 150 pedestrians).
    pub fn delivery() -> EnvConfig {
        EnvConfig {
            robot: RobotParams::delivery_robot(),
            vehicles: 120,
            pedestrians: 150,
            warmup_s: 20.0,
            max_episode_s: 120.0,
            goal_radius_m: 1.5,
            min_route_m: 40.0,
            max_route_m: 120.0,
            neighbour_radius_m: 20.0,
            max_neighbours: 16,
            bev: None,
            lidar: None,
            teacher_sees_robot: true,
        }
    }

    /// The car in traffic (120 vehicles, 60 pedestrians).
    pub fn car() -> EnvConfig {
        EnvConfig {
            robot: RobotParams::car(),
            vehicles: 120,
            pedestrians: 60,
            warmup_s: 20.0,
            max_episode_s: 90.0,
            goal_radius_m: 4.0,
            min_route_m: 120.0,
            max_route_m: 400.0,
            neighbour_radius_m: 50.0,
            max_neighbours: 16,
            bev: None,
            lidar: None,
            teacher_sees_robot: true,
        }
    }

    /// The default configuration of `kind`.
    pub fn of(kind: RobotKind) -> EnvConfig {
        match kind {
            RobotKind::Delivery => EnvConfig::delivery(),
            RobotKind::Car => EnvConfig::car(),
        }
    }

    /// Rush hour: twice the traffic of this configuration.
    pub fn rush_hour(mut self) -> EnvConfig {
        self.vehicles *= 2;
        self.pedestrians *= 2;
        self
    }

    fn validate(&self) -> Result<(), RobotError> {
        self.robot.validate()?;
        for (name, v) in [
            ("warmup_s", self.warmup_s),
            ("max_episode_s", self.max_episode_s),
            ("goal_radius_m", self.goal_radius_m),
            ("min_route_m", self.min_route_m),
            ("max_route_m", self.max_route_m),
            ("neighbour_radius_m", self.neighbour_radius_m),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(RobotError::InvalidParameter { name, reason: format!("must be finite and >= 0, got {v}") });
            }
        }
        if self.max_route_m < self.min_route_m {
            return Err(RobotError::InvalidParameter {
                name: "max_route_m",
                reason: format!("{} is below min_route_m {}", self.max_route_m, self.min_route_m),
            });
        }
        if let Some(b) = self.bev
            && (b.size_px == 0 || b.size_px > 512 || !b.resolution_m.is_finite() || b.resolution_m <= 0.0)
        {
            return Err(RobotError::InvalidParameter {
                name: "bev",
                reason: format!("{b:?}: 1..=512 px, resolution > 0"),
            });
        }
        Ok(())
    }
}

/// Another agent as the robot observes it (robot frame).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    pub agent_id: u64,
    pub kind: AgentKind,
    pub point_robot_m: [f64; 2],
    pub heading_robot_rad: f64,
    pub velocity_robot_mps: [f64; 2],
    pub length_m: f64,
    pub width_m: f64,
}

/// A bird's-eye-view crop (rows top to bottom = ahead to behind, robot at the centre).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BevObservation {
    pub size_px: u32,
    pub resolution_m: f64,
    /// `swm_twin::query::BevClass` values, row-major.
    pub classes: Vec<u8>,
    /// 1 where an agent's box covers the pixel centre, row-major.
    pub agents: Vec<u8>,
}

/// What the robot observes (module docs, "Observation spec").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub time_s: f64,
    pub state: RobotState,
    pub goal_robot_m: [f64; 2],
    pub route_remaining_m: f64,
    pub route_ahead_robot_m: Vec<[f64; 2]>,
    /// `(state, distance along the route in m)` of the next rule ahead within 50 m.
    pub signal_ahead: Option<(Option<SignalState>, f64)>,
    pub neighbours: Vec<Neighbour>,
    pub bev: Option<BevObservation>,
    /// Ranges of the planar lidar ([`LidarSpec`]) against the twin and the agents' boxes,
    /// beam order as `swm_sensors::lidar` (m; `range_max_m` where nothing returned).
    pub lidar_ranges_m: Option<Vec<f32>>,
}

impl Observation {
    /// Length of [`Observation::flat`]'s vector for `max_neighbours`.
    pub fn flat_len(max_neighbours: usize) -> usize {
        6 + 3 + 2 * ROUTE_POINTS + 3 + 7 * max_neighbours
    }

    /// The observation as one fixed-length vector: speed, yaw rate, steer, accel, sin and
    /// cos of heading; goal (x, y), route remaining; route points (x, y)…; signal (present,
    /// state 0 green / 0.5 amber / 1 red, distance); per neighbour slot (present, x, y,
    /// vx, vy, length, width), zeros for empty slots. BEV and lidar are not included.
    pub fn flat(&self, max_neighbours: usize) -> Vec<f32> {
        let s = &self.state;
        let mut v = vec![
            s.speed_mps,
            s.yaw_rate_radps,
            s.steer_rad,
            s.accel_mps2,
            s.heading_rad.sin(),
            s.heading_rad.cos(),
            self.goal_robot_m[0],
            self.goal_robot_m[1],
            self.route_remaining_m,
        ];
        for k in 0..ROUTE_POINTS {
            let p = self.route_ahead_robot_m.get(k).copied().unwrap_or([0.0, 0.0]);
            v.extend(p);
        }
        match self.signal_ahead {
            Some((st, d)) => v.extend([
                1.0,
                match st {
                    Some(SignalState::Red) => 1.0,
                    Some(SignalState::Amber) => 0.5,
                    _ => 0.0,
                },
                d,
            ]),
            None => v.extend([0.0, 0.0, 0.0]),
        }
        for k in 0..max_neighbours {
            match self.neighbours.get(k) {
                Some(n) => v.extend([
                    1.0,
                    n.point_robot_m[0],
                    n.point_robot_m[1],
                    n.velocity_robot_mps[0],
                    n.velocity_robot_mps[1],
                    n.length_m,
                    n.width_m,
                ]),
                None => v.extend([0.0; 7]),
            }
        }
        v.into_iter().map(|x| x as f32).collect()
    }
}

/// How an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Success,
    Collision,
    Timeout,
}

/// What the robot hit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Contact {
    /// A teacher agent (its run id and kind).
    Agent { agent_id: u64, kind: AgentKind },
    /// A building outline (index into `Twin::buildings`).
    Building { building: u32 },
}

/// Diagnostics of one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// Set on the step that ends the episode.
    pub outcome: Option<Outcome>,
    pub contact: Option<Contact>,
    /// The contact happened while the robot stood still (< 0.1 m/s) or came from behind
    /// it (a pedestrian stepping into it, or with `teacher_sees_robot` off).
    pub struck: bool,
    /// Route metres gained this step.
    pub progress_m: f64,
    /// Arc length of the robot's projection on its route.
    pub route_s_m: f64,
    /// Distance outside the walkable area (delivery robot).
    pub off_walk_m: f64,
    /// Entered a crossing on red, or passed a stop line on red, this step.
    pub red_violation: bool,
}

/// One step's result (gym's `(observation, reward, done, info)`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub observation: Observation,
    pub reward: f64,
    pub done: bool,
    pub info: Info,
}

/// One frame of history: the robot and every teacher agent.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub time_s: f64,
    pub step: u32,
    pub robot: RobotState,
    /// The robot's height (m, twin frame) where known (a car on a bridge deck is a level
    /// above the terrain); agents `swm_sim::metrics::LEVEL_SEPARATION_M` or more above or
    /// below it are on another level (no contact, not predicted).
    pub robot_z_m: Option<f64>,
    pub others: Vec<TrajectoryRecord>,
}

/// Whether two heights are on the same level (`swm_sim::metrics::LEVEL_SEPARATION_M`).
pub fn same_level(z_a_m: f64, z_b_m: f64) -> bool {
    (z_a_m - z_b_m).abs() < swm_sim::metrics::LEVEL_SEPARATION_M
}

/// Road rules along a route, as the planner and the environment check them.
pub trait Rules: Sync {
    /// How far `p` lies outside where the robot may be (m; 0 inside).
    fn off_area_m(&self, p: P2) -> f64;
    /// Whether `p` is inside a building.
    fn in_building(&self, p: P2) -> bool;
    /// Whether a building may lie within `radius_m` of `p`: a prefilter before
    /// [`Rules::in_building`] tests (`true`, the default, is always safe).
    fn building_near(&self, _p: P2, _radius_m: f64) -> bool {
        true
    }
    /// The signal at a stop on the route at `time_s` (`None`: no signal).
    fn stop_state(&self, stop: &RouteStop, time_s: f64) -> Option<SignalState>;
    /// The pedestrian signal of a crossing on the route at `time_s` (`None`: no signal).
    fn crossing_state(&self, crossing: &RouteCrossing, time_s: f64) -> Option<SignalState>;
}

/// The rules of a scene with the simulation's signal plans.
pub struct SceneRules<'a> {
    pub scene: &'a Scene,
    pub sim: &'a Simulation,
    pub kind: RobotKind,
}

impl Rules for SceneRules<'_> {
    fn off_area_m(&self, p: P2) -> f64 {
        match self.kind {
            RobotKind::Delivery => self.scene.off_walk_m(p),
            // The car's area is its route (the planner's lane-keeping cost).
            RobotKind::Car => 0.0,
        }
    }
    fn in_building(&self, p: P2) -> bool {
        self.scene.in_building(p)
    }
    fn building_near(&self, p: P2, radius_m: f64) -> bool {
        self.scene.building_near(p, radius_m)
    }
    fn stop_state(&self, stop: &RouteStop, time_s: f64) -> Option<SignalState> {
        self.sim.signals().connection_state(stop.connection, time_s)
    }
    fn crossing_state(&self, c: &RouteCrossing, time_s: f64) -> Option<SignalState> {
        if !c.signalled {
            return None;
        }
        let lanes: Vec<u32> =
            self.scene.crossings.lanes_of_crossing.get(&c.walk_edge).map(|v| v.iter().map(|x| x.lane).collect())?;
        self.sim.signals().pedestrian_state(&lanes, time_s)
    }
}

struct Episode {
    /// With a model world, the model's rollout of every other agent (and the robot, driven).
    live: Option<swm_model::LiveRollout<'static>>,
    sim: Simulation,
    robot: RobotState,
    route: Route,
    route_s_m: f64,
    goal: P2,
    steps: u32,
    history: VecDeque<Frame>,
    done: bool,
}

/// A robot in a twin with teacher traffic (module docs).
pub struct Env {
    scene: Arc<Scene>,
    config: EnvConfig,
    seed: u64,
    ep: Option<Episode>,
    model_world: Option<ModelWorld>,
}

/// The world model as the robot's world ([`Env::with_model_world`]).
struct ModelWorld {
    net: Arc<swm_model::Network>,
    map: Arc<swm_model::MapContext>,
}

/// The robot's agent id in a model world's rollout.
pub const ROBOT_AGENT_ID: u64 = u64::MAX;

/// The robot frame of `s`: point `p` (twin frame) in robot coordinates.
pub fn to_robot_frame(s: &RobotState, p: P2) -> [f64; 2] {
    let (sin, cos) = s.heading_rad.sin_cos();
    let (dx, dy) = (p[0] - s.point_enu[0], p[1] - s.point_enu[1]);
    [cos * dx + sin * dy, -sin * dx + cos * dy]
}

/// The building (index) that the footprint touches: its centre, corners or edge midpoints
/// inside an outline.
pub fn footprint_building(scene: &Scene, fp: &OrientedBox) -> Option<u32> {
    footprint_probes(fp).into_iter().find_map(|p| scene.index.building_at(p))
}

/// The points of a footprint tested against buildings, by the environment's contact check
/// and the planner's building cost alike: centre, corners and edge midpoints.
pub fn footprint_probes(fp: &OrientedBox) -> [P2; 9] {
    let (s, c) = fp.heading_rad.sin_cos();
    let (hl, hw) = (0.5 * fp.length_m, 0.5 * fp.width_m);
    [(0.0, 0.0), (hl, hw), (hl, -hw), (-hl, hw), (-hl, -hw), (hl, 0.0), (-hl, 0.0), (0.0, hw), (0.0, -hw)]
        .map(|(a, b)| [fp.center[0] + a * c - b * s, fp.center[1] + a * s + b * c])
}

fn record_box(r: &TrajectoryRecord) -> OrientedBox {
    OrientedBox::of_record(r)
}

/// An agent braking at this rate (m/s²) must stop short of a start (see [`would_reach`]).
pub const START_BRAKE_MPS2: f64 = 3.0;
/// ... with this much room to spare (m).
pub const START_GAP_M: f64 = 2.0;

/// Whether the agent of `r` overlaps `fp` or would before it stops: its box swept along its
/// heading over its braking distance at [`START_BRAKE_MPS2`] plus [`START_GAP_M`]. A robot
/// that appears (at rest) where this holds is run into by traffic that cannot stop.
pub fn would_reach(r: &TrajectoryRecord, fp: &OrientedBox) -> bool {
    let b = record_box(r);
    if b.overlap_depth_m(fp) > 0.0 {
        return true;
    }
    let v = r.speed_mps.max(0.0);
    if v < 0.1 {
        return false;
    }
    let reach_m = v * v / (2.0 * START_BRAKE_MPS2) + START_GAP_M;
    // Is `fp` anywhere near the sweep at all?
    let d = (fp.center[0] - b.center[0]).hypot(fp.center[1] - b.center[1]);
    if d > reach_m + 0.5 * (b.length_m.hypot(b.width_m) + fp.length_m.hypot(fp.width_m)) {
        return false;
    }
    let (c, s) = (r.heading_rad.cos(), r.heading_rad.sin());
    let n = (reach_m / 1.0).ceil().max(1.0) as usize;
    (1..=n).any(|i| {
        let x = reach_m * i as f64 / n as f64;
        let mut m = b;
        m.center[0] += x * c;
        m.center[1] += x * s;
        m.overlap_depth_m(fp) > 0.0
    })
}

impl Env {
    /// An environment on `scene`; call [`Env::reset`] before stepping.
    pub fn new(scene: Arc<Scene>, config: EnvConfig) -> Result<Env, RobotError> {
        config.validate()?;
        let ok = match config.robot.kind {
            RobotKind::Delivery => !scene.twin.walk_edges.is_empty(),
            RobotKind::Car => !scene.twin.lanes.is_empty(),
        };
        if !ok {
            return Err(RobotError::Scene {
                twin: scene.name().to_string(),
                reason: format!(
                    "no {} graph for the {} robot",
                    if config.robot.kind == RobotKind::Car { "lane" } else { "walk" },
                    config.robot.kind.as_str()
                ),
            });
        }
        Ok(Env { scene, config, seed: 0, ep: None, model_world: None })
    }

    /// The other agents moved by the world model instead of the teacher (module docs,
    /// "Model world"): after the teacher's warm-up the model takes every agent over from the
    /// last second, with the robot among them as an externally driven agent (the model's
    /// agents see it: features and feasibility masks). The teacher keeps running for the
    /// clock and the signals; its agents are no longer the world.
    pub fn with_model_world(mut self, net: Arc<swm_model::Network>, map: Arc<swm_model::MapContext>) -> Env {
        self.model_world = Some(ModelWorld { net, map });
        self
    }

    /// The robot as a trajectory record (for a model world).
    fn robot_record(&self, f: &Frame) -> TrajectoryRecord {
        let p = self.config.robot;
        TrajectoryRecord {
            agent_id: ROBOT_AGENT_ID,
            kind: p.kind.agent_kind(),
            length_m: p.length_m as f32,
            width_m: p.width_m as f32,
            step: f.step,
            time_s: f.time_s,
            x_m: f.robot.point_enu[0],
            y_m: f.robot.point_enu[1],
            z_m: f.robot_z_m.unwrap_or_else(|| self.scene.twin.terrain.elevation_at(f.robot.point_enu)),
            heading_rad: f.robot.heading_rad,
            speed_mps: f.robot.speed_mps,
            accel_mps2: f.robot.accel_mps2,
            lane: None,
            signal: None,
        }
    }

    pub fn scene(&self) -> &Arc<Scene> {
        &self.scene
    }
    pub fn config(&self) -> &EnvConfig {
        &self.config
    }
    /// The seed of the current episode.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn ep(&self) -> Result<&Episode, RobotError> {
        self.ep.as_ref().ok_or(RobotError::EnvState("not reset"))
    }

    /// The teacher simulation (after `reset`).
    pub fn sim(&self) -> Result<&Simulation, RobotError> {
        Ok(&self.ep()?.sim)
    }
    /// The robot's state now (after `reset`).
    pub fn robot(&self) -> Result<RobotState, RobotError> {
        Ok(self.ep()?.robot)
    }
    /// The route and the robot's arc length on it (after `reset`).
    pub fn route(&self) -> Result<(&Route, f64), RobotError> {
        let e = self.ep()?;
        Ok((&e.route, e.route_s_m))
    }
    /// The last [`HISTORY_FRAMES`] frames, oldest first (after `reset`).
    pub fn history(&self) -> Result<&VecDeque<Frame>, RobotError> {
        Ok(&self.ep()?.history)
    }
    /// Simulated time now (s).
    pub fn time_s(&self) -> Result<f64, RobotError> {
        Ok(self.ep()?.sim.time_s())
    }
    /// Whether the episode has ended.
    pub fn is_done(&self) -> bool {
        self.ep.as_ref().is_none_or(|e| e.done)
    }
    /// The rules of this scene and simulation (after `reset`).
    pub fn rules(&self) -> Result<SceneRules<'_>, RobotError> {
        Ok(SceneRules { scene: &self.scene, sim: &self.ep()?.sim, kind: self.config.robot.kind })
    }

    /// Starts an episode (module docs, "Episodes").
    pub fn reset(&mut self, seed: u64) -> Result<Observation, RobotError> {
        self.reset_inner(seed, None)
    }

    /// Starts an episode on a given route (its first point, facing along it, at rest); the
    /// traffic still comes from `seed`. For scripted situations (an unprotected left turn).
    pub fn reset_on_route(&mut self, seed: u64, route: Route) -> Result<Observation, RobotError> {
        if route.points.len() < 2 {
            return Err(RobotError::InvalidParameter { name: "route", reason: "fewer than 2 points".into() });
        }
        self.reset_inner(seed, Some(route))
    }

    /// A random start and goal for the robot (module docs, "Episodes"): `None` after
    /// [`MAX_TRIES`] tries.
    fn pick_start(&self, rng: &mut CounterRng) -> Option<(Route, RobotState)> {
        let c = &self.config;
        let twin = &self.scene.twin;
        for _ in 0..MAX_TRIES {
            let pick = match c.robot.kind {
                RobotKind::Delivery => {
                    let n = twin.walk_nodes.len() as i64;
                    let a = rng.range_i64(0, n - 1) as u32;
                    if self.scene.walk.adjacency[a as usize].is_empty() {
                        continue;
                    }
                    let goals = self.scene.walk.nodes_within(twin, a, c.min_route_m, c.max_route_m);
                    if goals.is_empty() {
                        continue;
                    }
                    self.scene.walk.route(twin, a, *rng.pick(&goals)).ok()
                }
                RobotKind::Car => {
                    let n = twin.lanes.len() as i64;
                    let a = rng.range_i64(0, n - 1) as u32;
                    if twin.lanes[a as usize].length_m < 2.0 * START_S_M + c.robot.length_m {
                        continue;
                    }
                    let goals = self.scene.lanes.lanes_within(twin, a, c.min_route_m, c.max_route_m);
                    if goals.is_empty() {
                        continue;
                    }
                    self.scene.lanes.route(twin, a, *rng.pick(&goals)).ok()
                }
            };
            let Some(route) = pick else { continue };
            let len = route.length_m();
            if len < c.min_route_m || len > c.max_route_m || route.points.len() < 2 {
                continue;
            }
            let s0 = if c.robot.kind == RobotKind::Car { START_S_M + 0.5 * c.robot.length_m } else { 0.0 };
            let (p, t) = route.point_at(s0);
            let state = RobotState::at_rest(p, t[1].atan2(t[0]));
            let fp = c.robot.footprint(&state, 0.3);
            if footprint_building(&self.scene, &fp).is_some() {
                continue;
            }
            return Some((route, state));
        }
        None
    }

    fn no_start(&self) -> RobotError {
        let c = &self.config;
        RobotError::Scene {
            twin: self.scene.name().to_string(),
            reason: format!(
                "no start and goal {}..{} m apart on the {} graph after {MAX_TRIES} tries",
                c.min_route_m,
                c.max_route_m,
                if c.robot.kind == RobotKind::Car { "lane" } else { "walk" }
            ),
        }
    }

    fn reset_inner(&mut self, seed: u64, given: Option<Route>) -> Result<Observation, RobotError> {
        self.seed = seed;
        let c = &self.config;
        let sim_cfg = SimConfig {
            seed,
            vehicles: c.vehicles,
            pedestrians: c.pedestrians,
            duration_s: c.warmup_s + c.max_episode_s + 1.0,
            record_every_steps: 1,
            density: 1.0,
        };
        let mut sim = Simulation::new(self.scene.twin.clone(), sim_cfg)?;
        let warm = (c.warmup_s / DT_S).round() as u32;
        let mut rng = CounterRng::new(seed, STREAM_EPISODE);
        let twin = &self.scene.twin;
        let mut history: VecDeque<Frame> = VecDeque::with_capacity(HISTORY_FRAMES + 1);
        let mut chosen: Option<(Route, RobotState)> = given.map(|route| {
            let (p, t) = route.point_at(0.0);
            (route, RobotState::at_rest(p, t[1].atan2(t[0])))
        });
        let fixed = chosen.is_some();
        if !fixed {
            chosen = self.pick_start(&mut rng);
        }
        let Some((mut route, mut robot)) = chosen else {
            return Err(self.no_start());
        };
        let level_of = |route: &Route, robot: &RobotState| {
            route
                .z_at(route.project(robot.point_enu, 0.0, 20.0).0)
                .unwrap_or_else(|| twin.terrain.elevation_at(robot.point_enu))
        };
        let mut robot_z_m = level_of(&route, &robot);
        let mut clear_since = 0u32;
        let mut max_warm = warm + MAX_WARM_EXTRA_STEPS;
        let mut restarts = 0;
        // Warm up; extend (up to 30 s) until the start has been clear for the last second,
        // else pick another start and goal (a given route has no other) and wait for it.
        loop {
            sim.step();
            let others = sim.records();
            let fp = c.robot.footprint(&robot, 0.5);
            let blocked = others.iter().any(|r| same_level(r.z_m, robot_z_m) && would_reach(r, &fp));
            clear_since = if blocked { 0 } else { clear_since + 1 };
            history.push_back(Frame {
                time_s: sim.time_s(),
                step: sim.step_index(),
                robot,
                robot_z_m: Some(robot_z_m),
                others,
            });
            if history.len() > HISTORY_FRAMES {
                history.pop_front();
            }
            if sim.step_index() >= warm && clear_since as usize >= HISTORY_FRAMES {
                break;
            }
            if sim.step_index() >= max_warm {
                if fixed {
                    break;
                }
                restarts += 1;
                if restarts > MAX_START_RESTARTS {
                    return Err(RobotError::Scene {
                        twin: self.scene.name().to_string(),
                        reason: format!(
                            "seed {seed}: no start stayed clear of traffic for 1 s in {} tries of {} s each",
                            MAX_START_RESTARTS + 1,
                            MAX_WARM_EXTRA_STEPS as f64 * DT_S
                        ),
                    });
                }
                (route, robot) = self.pick_start(&mut rng).ok_or_else(|| self.no_start())?;
                robot_z_m = level_of(&route, &robot);
                // The frames so far show the robot at the old start: the history restarts.
                history.clear();
                clear_since = 0;
                max_warm = sim.step_index() + MAX_WARM_EXTRA_STEPS;
                tracing::debug!(seed, restarts, "start blocked by traffic: another start");
            }
        }
        let goal = *route.points.last().expect("routes have points");
        let s0 = route.project(robot.point_enu, 0.0, 20.0).0;
        let live = self.model_world.as_ref().map(|mw| {
            let frames: Vec<Vec<TrajectoryRecord>> = history
                .iter()
                .map(|f| {
                    let mut v = f.others.clone();
                    v.push(self.robot_record(f));
                    v
                })
                .collect();
            let world_seed = seed ^ 0x6D6F_6465_6C57_6F72; // "modelWor"
            swm_model::LiveRollout::from_history(&frames, &mw.map, world_seed, swm_model::SamplingConfig::default())
        });
        self.ep = Some(Episode { live, sim, robot, route, route_s_m: s0, goal, steps: 0, history, done: false });
        tracing::debug!(seed, kind = c.robot.kind.as_str(), "episode reset");
        self.observe()
    }

    /// Advances the episode by one step under `action` (module docs).
    pub fn step(&mut self, action: &Action) -> Result<Step, RobotError> {
        let params = self.config.robot;
        let ep = self.ep.as_mut().ok_or(RobotError::EnvState("not reset"))?;
        if ep.done {
            return Err(RobotError::EnvState("episode is over: call reset"));
        }
        let t_before = ep.sim.time_s();
        ep.robot = params.step(&ep.robot, action);
        // The height where the robot is now (its route's, from last step's projection).
        let robot_z_m =
            ep.route.z_at(ep.route_s_m).unwrap_or_else(|| self.scene.twin.terrain.elevation_at(ep.robot.point_enu));
        if self.config.teacher_sees_robot {
            let fp = params.footprint(&ep.robot, 0.0);
            ep.sim.set_external_agents(&[ExternalAgent {
                center: fp.center,
                z_m: robot_z_m,
                heading_rad: fp.heading_rad,
                length_m: fp.length_m,
                width_m: fp.width_m,
                speed_mps: ep.robot.speed_mps,
            }]);
        }
        ep.sim.step();
        ep.steps += 1;
        let others = match (&mut ep.live, &self.model_world) {
            (Some(live), Some(mw)) => {
                let robot = Kinematics {
                    point_enu: ep.robot.point_enu,
                    heading_rad: ep.robot.heading_rad,
                    speed_mps: ep.robot.speed_mps,
                };
                let driver = move |_s: u64, _sample: u32, id: u64, _f: i32, _w: &[swm_model::WorldAgent]| {
                    (id == ROBOT_AGENT_ID).then_some(robot)
                };
                let mut out = Vec::new();
                live.step(&mw.net, &mw.map, Some(&driver), &mut out);
                out.into_iter().map(|(_, r)| r).filter(|r| r.agent_id != ROBOT_AGENT_ID).collect()
            }
            _ => ep.sim.records(),
        };
        // Progress along the route (windowed projection: no jumps to a later leg).
        let (s_new, _) = ep.route.project(ep.robot.point_enu, ep.route_s_m - 2.0, ep.route_s_m + 5.0);
        let progress = s_new - ep.route_s_m;
        let s_old = ep.route_s_m;
        ep.route_s_m = s_new;
        let mut info = Info { progress_m: progress, route_s_m: s_new, ..Default::default() };
        // Collisions.
        let fp = params.footprint(&ep.robot, 0.0);
        let mut contact = None;
        for r in others.iter().filter(|r| same_level(r.z_m, robot_z_m)) {
            let b = record_box(r);
            let d2 = (b.center[0] - fp.center[0]).powi(2) + (b.center[1] - fp.center[1]).powi(2);
            let reach = b.bounding_radius_m() + fp.bounding_radius_m();
            if d2 <= reach * reach && fp.overlap_depth_m(&b) > 0.01 {
                let rel = to_robot_frame(&ep.robot, b.center);
                info.struck = ep.robot.speed_mps < 0.1 || rel[0] < -0.25 * params.length_m;
                contact = Some(Contact::Agent { agent_id: r.agent_id, kind: r.kind });
                break;
            }
        }
        let building = if contact.is_none() { footprint_building(&self.scene, &fp) } else { None };
        if let Some(b) = building {
            contact = Some(Contact::Building { building: b });
        }
        info.contact = contact;
        // Rules.
        let rules = SceneRules { scene: &self.scene, sim: &ep.sim, kind: params.kind };
        match params.kind {
            RobotKind::Delivery => {
                info.off_walk_m = self.scene.off_walk_m(ep.robot.point_enu);
                for c in &ep.route.crossings {
                    if s_old < c.s_start_m
                        && s_new >= c.s_start_m
                        && rules.crossing_state(c, t_before) == Some(SignalState::Red)
                    {
                        info.red_violation = true;
                    }
                }
            }
            RobotKind::Car => {
                for st in &ep.route.stops {
                    if s_old < st.s_m && s_new >= st.s_m && rules.stop_state(st, t_before) == Some(SignalState::Red) {
                        info.red_violation = true;
                    }
                }
            }
        }
        let mut reward = 0.1 * progress - 0.01 - 0.05 * info.off_walk_m;
        if info.red_violation {
            reward -= 1.0;
        }
        if info.contact.is_some() {
            info.outcome = Some(Outcome::Collision);
            reward -= 10.0;
        } else if crate::planner::goal_reached(&ep.route, ep.robot.point_enu, s_new, self.config.goal_radius_m) {
            info.outcome = Some(Outcome::Success);
            reward += 10.0;
        } else if f64::from(ep.steps) * DT_S >= self.config.max_episode_s - 1e-9 {
            info.outcome = Some(Outcome::Timeout);
        }
        ep.done = info.outcome.is_some();
        ep.history.push_back(Frame {
            time_s: ep.sim.time_s(),
            step: ep.sim.step_index(),
            robot: ep.robot,
            robot_z_m: Some(robot_z_m),
            others,
        });
        if ep.history.len() > HISTORY_FRAMES {
            ep.history.pop_front();
        }
        let done = ep.done;
        let observation = self.observe()?;
        Ok(Step { observation, reward, done, info })
    }

    /// Seconds since the episode started.
    pub fn episode_time_s(&self) -> f64 {
        self.ep.as_ref().map_or(0.0, |e| f64::from(e.steps) * DT_S)
    }

    /// The observation now (module docs, "Observation spec").
    pub fn observe(&self) -> Result<Observation, RobotError> {
        let ep = self.ep()?;
        let s = ep.robot;
        let c = &self.config;
        let spacing = if c.robot.kind == RobotKind::Car { 4.0 * ROUTE_SPACING_M } else { ROUTE_SPACING_M };
        let route_ahead_robot_m = (1..=ROUTE_POINTS)
            .map(|k| to_robot_frame(&s, ep.route.point_at(ep.route_s_m + spacing * k as f64).0))
            .collect();
        let t = ep.sim.time_s();
        let rules = SceneRules { scene: &self.scene, sim: &ep.sim, kind: c.robot.kind };
        let signal_ahead = match c.robot.kind {
            RobotKind::Car => ep
                .route
                .stops
                .iter()
                .find(|st| st.s_m >= ep.route_s_m && st.s_m - ep.route_s_m <= 50.0)
                .map(|st| (rules.stop_state(st, t), st.s_m - ep.route_s_m)),
            RobotKind::Delivery => ep
                .route
                .crossings
                .iter()
                .find(|x| x.signalled && x.s_end_m >= ep.route_s_m && x.s_start_m - ep.route_s_m <= 50.0)
                .map(|x| (rules.crossing_state(x, t), (x.s_start_m - ep.route_s_m).max(0.0))),
        };
        let others = &ep.history.back().expect("history is never empty").others;
        let r2 = c.neighbour_radius_m * c.neighbour_radius_m;
        let mut near: Vec<(f64, &TrajectoryRecord)> = others
            .iter()
            .map(|r| ((r.x_m - s.point_enu[0]).powi(2) + (r.y_m - s.point_enu[1]).powi(2), r))
            .filter(|(d2, _)| *d2 <= r2)
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.agent_id.cmp(&b.1.agent_id)));
        let (sin, cos) = s.heading_rad.sin_cos();
        let neighbours = near
            .iter()
            .take(c.max_neighbours)
            .map(|(_, r)| {
                let (vx, vy) = (r.speed_mps * r.heading_rad.cos(), r.speed_mps * r.heading_rad.sin());
                Neighbour {
                    agent_id: r.agent_id,
                    kind: r.kind,
                    point_robot_m: to_robot_frame(&s, [r.x_m, r.y_m]),
                    heading_robot_rad: wrap_angle(r.heading_rad - s.heading_rad),
                    velocity_robot_mps: [cos * vx + sin * vy, -sin * vx + cos * vy],
                    length_m: f64::from(r.length_m),
                    width_m: f64::from(r.width_m),
                }
            })
            .collect();
        let bev = match c.bev {
            None => None,
            Some(b) => Some(self.bev(&s, others, b)?),
        };
        let lidar_ranges_m = match c.lidar {
            None => None,
            Some(l) => Some(self.lidar(&s, others, l, u64::from(ep.steps))?),
        };
        Ok(Observation {
            time_s: t,
            state: s,
            goal_robot_m: to_robot_frame(&s, ep.goal),
            route_remaining_m: (ep.route.length_m() - ep.route_s_m).max(0.0),
            route_ahead_robot_m,
            signal_ahead,
            neighbours,
            bev,
            lidar_ranges_m,
        })
    }

    fn lidar(
        &self,
        s: &RobotState,
        others: &[TrajectoryRecord],
        l: LidarSpec,
        scan_index: u64,
    ) -> Result<Vec<f32>, RobotError> {
        let z = self.scene.twin.terrain.elevation_at(s.point_enu);
        let boxes: Vec<swm_sensors::AgentBox> = others
            .iter()
            .filter(|r| (r.x_m - s.point_enu[0]).hypot(r.y_m - s.point_enu[1]) < l.range_max_m + 20.0)
            .map(|r| swm_sensors::AgentBox {
                id: r.agent_id,
                base_center_enu: [r.x_m, r.y_m, r.z_m],
                yaw_rad: r.heading_rad,
                length_m: f64::from(r.length_m),
                width_m: f64::from(r.width_m),
                height_m: if r.kind.is_vehicle() { 1.6 } else { 1.7 },
            })
            .collect();
        let pose = swm_sensors::SensorPose::level([s.point_enu[0], s.point_enu[1], z + l.height_m], s.heading_rad);
        let scan = self
            .scene
            .lidar_scene()
            .scan(&l.config(), &pose, &boxes, self.seed, scan_index)
            .map_err(|e| RobotError::InvalidParameter { name: "lidar", reason: ErrorChain(&e).to_string() })?;
        Ok(scan.ranges_m.iter().map(|r| if r.is_finite() { *r as f32 } else { l.range_max_m as f32 }).collect())
    }

    fn bev(&self, s: &RobotState, others: &[TrajectoryRecord], b: BevSpec) -> Result<BevObservation, RobotError> {
        // The raster's "up" is its heading; robot-forward up.
        let raster = self
            .scene
            .index
            .bev_raster(s.point_enu, s.heading_rad, b.size_px, b.size_px, b.resolution_m)
            .map_err(|e| RobotError::InvalidParameter { name: "bev", reason: ErrorChain(&e).to_string() })?;
        let n = b.size_px as usize;
        let mut agents = vec![0u8; n * n];
        let half = 0.5 * n as f64 * b.resolution_m;
        let (sin, cos) = s.heading_rad.sin_cos();
        for r in others {
            let ob = record_box(r);
            let rel = to_robot_frame(s, ob.center);
            let rad = ob.bounding_radius_m();
            if rel[0].abs() > half + rad || rel[1].abs() > half + rad {
                continue;
            }
            for row in 0..n {
                // Row 0 is ahead (x = +half), columns go left (y = +half) to right.
                let x = half - (row as f64 + 0.5) * b.resolution_m;
                if (x - rel[0]).abs() > rad {
                    continue;
                }
                for col in 0..n {
                    let y = half - (col as f64 + 0.5) * b.resolution_m;
                    if (y - rel[1]).abs() > rad {
                        continue;
                    }
                    let p = [s.point_enu[0] + cos * x - sin * y, s.point_enu[1] + sin * x + cos * y];
                    if ob.disc_depth_m(p, 0.0) >= 0.0 {
                        agents[row * n + col] = 1;
                    }
                }
            }
        }
        Ok(BevObservation { size_px: b.size_px, resolution_m: b.resolution_m, classes: raster.classes, agents })
    }
}

/// Brings one's own controller: anything that maps what the environment exposes to an
/// action. The planners of [`crate::planner`] implement it; so can a learned policy (use
/// only `obs`), or a privileged one (read `env`: route, history, rules).
pub trait Controller: Send {
    /// A short name for logs and tables.
    fn name(&self) -> String;
    /// Called after every `reset`.
    fn reset(&mut self, _env: &Env) {}
    /// The action for this step.
    fn act(&mut self, env: &Env, obs: &Observation) -> Action;
}

/// Summary of one episode run by [`run_episode`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeSummary {
    pub seed: u64,
    pub outcome: Outcome,
    pub contact: Option<Contact>,
    pub struck: bool,
    /// Episode time at the end (s).
    pub time_s: f64,
    pub return_sum: f64,
    pub route_length_m: f64,
    pub red_violations: u32,
    /// Mean distance outside the walkable area (delivery robot, m).
    pub mean_off_walk_m: f64,
    /// Wall time spent in the controller (s).
    pub controller_wall_s: f64,
    pub steps: u32,
}

/// Runs one episode of `env` with `controller` from `reset(seed)` to its end, calling
/// `on_step` after every step.
pub fn run_episode(
    env: &mut Env,
    controller: &mut dyn Controller,
    seed: u64,
    on_step: &mut dyn FnMut(&Env, &Action, &Step),
) -> Result<EpisodeSummary, RobotError> {
    let mut obs = env.reset(seed)?;
    controller.reset(env);
    let route_length_m = env.route()?.0.length_m();
    let (mut ret, mut red, mut off, mut wall) = (0.0, 0u32, 0.0, 0.0);
    loop {
        let t0 = std::time::Instant::now();
        let a = controller.act(env, &obs);
        wall += t0.elapsed().as_secs_f64();
        let st = env.step(&a)?;
        ret += st.reward;
        red += u32::from(st.info.red_violation);
        off += st.info.off_walk_m;
        on_step(env, &a, &st);
        if st.done {
            let steps = (env.episode_time_s() / DT_S).round() as u32;
            return Ok(EpisodeSummary {
                seed,
                outcome: st.info.outcome.expect("done steps have an outcome"),
                contact: st.info.contact,
                struck: st.info.struck,
                time_s: env.episode_time_s(),
                return_sum: ret,
                route_length_m,
                red_violations: red,
                mean_off_walk_m: off / f64::from(steps.max(1)),
                controller_wall_s: wall,
                steps,
            });
        }
        obs = st.observation;
    }
}

/// Many environments stepped together (rayon), results in environment order: the same
/// bytes whatever the thread count. An environment whose episode ended is reset by
/// [`VecEnv::step`] with the next seed of its sequence (`seed_base + index + k · len`), and
/// its step reports the final observation of the ended episode with `done = true`, as gym's
/// auto-reset does.
pub struct VecEnv {
    envs: Vec<Env>,
    seed_base: u64,
    episodes: Vec<u64>,
}

impl VecEnv {
    /// `n` environments on `scene` with the same configuration.
    pub fn new(scene: Arc<Scene>, config: EnvConfig, n: usize) -> Result<VecEnv, RobotError> {
        let envs = (0..n).map(|_| Env::new(scene.clone(), config.clone())).collect::<Result<Vec<_>, _>>()?;
        Ok(VecEnv { envs, seed_base: 0, episodes: vec![0; n] })
    }

    pub fn len(&self) -> usize {
        self.envs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }
    pub fn envs(&self) -> &[Env] {
        &self.envs
    }

    fn seed_of(&self, i: usize) -> u64 {
        self.seed_base.wrapping_add(i as u64).wrapping_add(self.episodes[i].wrapping_mul(self.envs.len() as u64))
    }

    /// Resets every environment: environment `i` gets seed `seed + i`.
    pub fn reset(&mut self, seed: u64) -> Result<Vec<Observation>, RobotError> {
        self.seed_base = seed;
        self.episodes.iter_mut().for_each(|e| *e = 0);
        let seeds: Vec<u64> = (0..self.envs.len()).map(|i| self.seed_of(i)).collect();
        self.envs.par_iter_mut().zip(seeds).map(|(e, s)| e.reset(s)).collect()
    }

    /// Steps environment `i` with `actions[i]` (auto-reset: type docs).
    pub fn step(&mut self, actions: &[Action]) -> Result<Vec<Step>, RobotError> {
        if actions.len() != self.envs.len() {
            return Err(RobotError::InvalidParameter {
                name: "actions",
                reason: format!("{} actions for {} environments", actions.len(), self.envs.len()),
            });
        }
        let next: Vec<u64> = (0..self.envs.len())
            .map(|i| {
                self.seed_base
                    .wrapping_add(i as u64)
                    .wrapping_add((self.episodes[i] + 1).wrapping_mul(self.envs.len() as u64))
            })
            .collect();
        let out: Vec<Result<Step, RobotError>> = self
            .envs
            .par_iter_mut()
            .zip(actions)
            .zip(next)
            .map(|((e, a), seed)| {
                let st = e.step(a)?;
                if st.done {
                    e.reset(seed)?;
                }
                Ok(st)
            })
            .collect();
        let out: Vec<Step> = out.into_iter().collect::<Result<_, _>>()?;
        for (i, st) in out.iter().enumerate() {
            if st.done {
                self.episodes[i] += 1;
            }
        }
        Ok(out)
    }

    /// Every environment's observation now.
    pub fn observe(&self) -> Result<Vec<Observation>, RobotError> {
        self.envs.iter().map(|e| e.observe()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car(x_m: f64, heading_rad: f64, speed_mps: f64) -> TrajectoryRecord {
        TrajectoryRecord {
            agent_id: 1,
            kind: swm_sim::AgentKind::Car,
            length_m: 4.5,
            width_m: 1.8,
            step: 0,
            time_s: 0.0,
            x_m,
            y_m: 0.0,
            z_m: 0.0,
            heading_rad,
            speed_mps,
            accel_mps2: 0.0,
            lane: None,
            signal: None,
        }
    }

    /// A start is blocked by an agent that would reach it before stopping at 3 m/s², not by
    /// one that can stop short, stands, or drives away.
    #[test]
    fn a_start_is_clear_only_of_agents_that_can_stop_short_of_it() {
        let fp = OrientedBox { center: [0.0, 0.0], heading_rad: 0.0, length_m: 5.5, width_m: 2.8 };
        // 12 m/s needs 24 m at 3 m/s²: from 20 m behind it would reach the start.
        assert!(would_reach(&car(-20.0, 0.0, 12.0), &fp));
        assert!(!would_reach(&car(-40.0, 0.0, 12.0), &fp));
        assert!(!would_reach(&car(-8.0, 0.0, 0.0), &fp));
        assert!(!would_reach(&car(-8.0, std::f64::consts::PI, 12.0), &fp));
        assert!(would_reach(&car(-3.0, 0.0, 0.0), &fp), "overlapping already");
    }
}
