//! A delivery robot in the viewer: placed with two clicks (start, goal), routed on the walk
//! graph, driven every simulation step by `swm_robots`' MPPI planner in imagination, with
//! its candidate plans, chosen plan, route and lidar drawn.
//!
//! # Placing
//! `R` (or the panel's button) enters "place robot" mode: the next left click on the ground
//! puts a `swm_robots` delivery robot ([`RobotParams::delivery_robot`]) at the walk node
//! nearest the click (a node with at least one edge, within [`MAX_SNAP_M`]), the following
//! click sets its goal the same way. The route is A* on the walk graph
//! ([`swm_robots::route::WalkGraph::route`]). From the command line, `--robot X,Y
//! --robot-goal X,Y` (twin frame, metres) does the same ([`RobotSpawn`]).
//!
//! # Driving
//! The robot steps in lockstep with the teacher simulation (0.1 s): before each simulation
//! step the robot applies its action ([`RobotParams::step`]), after it the new frame goes
//! into the robot's history (the last [`HISTORY_FRAMES`] frames, agents within
//! [`HISTORY_RADIUS_M`]), contacts are counted and the next replan starts. The replan is
//! [`MppiPlanner::plan`] with the world-model predictor ([`WorldModel`]: the shipped model,
//! futures conditioned on the robot's plan families) and the default delivery budget
//! ([`PlannerConfig::of`]), exactly as `swm_robots::env` drives it, on bevy's
//! `AsyncComputeTaskPool` (the first task also loads the model and prepares the
//! [`Scene`]). The environment itself (`swm_robots::Env`) is not used: it owns its own
//! simulation, while here the world is the viewer's; the per-step bookkeeping (progress
//! along the route by windowed projection, contacts by oriented-box overlap beyond 1 cm and
//! building outlines, arrival within [`GOAL_RADIUS_M`]) follows `Env::step`.
//!
//! As in `swm_robots::env`, the teacher's agents see the robot (it is handed to the
//! simulator as an `swm_sim::ExternalAgent` every step), and every contact counts.
//!
//! **Budget.** With [`Robots::blocking`] (headless renders and tests) each step waits for the
//! replan of the step before, so a run is reproducible. Interactively the frame never waits:
//! while a replan is still running the robot follows the last chosen plan (the action that
//! plan gives for the step: its acceleration and yaw rate), and the next replan starts from
//! the state when the running one returns.
//!
//! # Lidar
//! With the lidar overlay on (`L`), a planar scan ([`lidar_config`]: 360 beams, 30 m,
//! mounted [`LIDAR_HEIGHT_M`] above the ground) is cast with `swm_sensors` against the
//! twin's mesh and the agents' boxes after every step (off the main thread, like the
//! planning); rays are drawn to their hits.
//!
//! # Drawn
//! The robot as a box of its size ([`ROBOT_HEIGHT_M`] tall) in its own colour; the route
//! still ahead; up to [`CANDIDATES_DRAWN`] of the MPPI candidates as thin faded lines; the
//! chosen plan as a thick bright line; the goal. All of it is first written to
//! [`RobotOverlay`] (testable without rendering), then drawn with gizmos.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, block_on, poll_once};
use swm_model::{MapContext, Network};
use swm_robots::env::{Frame, HISTORY_FRAMES, Rules, footprint_building};
use swm_robots::planner::PlanInput;
use swm_robots::route::{Route, RouteCrossing, RouteStop, WalkGraph};
use swm_robots::{Action, MppiPlanner, PlannerConfig, RobotKind, RobotParams, RobotState, Scene, WorldModel};
use swm_sim::metrics::OrientedBox;
use swm_sim::signal::SignalController;
use swm_sim::{SignalState, TrajectoryRecord};
use swm_twin::{P2, Twin};

use crate::agents::{SimParams, SimResource, TwinResource, bevy_from_twin};
use crate::overlay::{OverlayPoints, OverlayPolyline};
use crate::{ViewerError, camera};

/// Height of the robot's box (m): a sidewalk delivery robot's body.
pub const ROBOT_HEIGHT_M: f32 = 0.75;
/// A click snaps to the nearest walk node within this distance (m).
pub const MAX_SNAP_M: f64 = 60.0;
/// The robot has arrived within this distance of the goal (m; `EnvConfig::delivery`'s).
pub const GOAL_RADIUS_M: f64 = 1.5;
/// Agents kept in the robot's history frames: within this distance of the robot (m). The
/// planner's predictors look at most 40 m around it now, and an agent 1 s earlier cannot be
/// 40 m farther away.
pub const HISTORY_RADIUS_M: f64 = 80.0;
/// MPPI candidates drawn (evenly spread over the candidate list, the first three always).
pub const CANDIDATES_DRAWN: usize = 24;
/// Height of the lidar above the ground (m).
pub const LIDAR_HEIGHT_M: f64 = 0.5;
/// Drawing height of plans above the ground (m): above the lidar's plane, so rays do not hide
/// them from above.
const PLAN_LIFT_M: f64 = 0.6;
/// The chosen plan is drawn this much higher than the candidates and the route, so it stays
/// on top of them (m).
const CHOSEN_ABOVE_M: f64 = 0.1;

/// Colour of the robot's body (sRGB).
pub const ROBOT_SRGB: [f32; 3] = [1.0, 0.42, 0.0];
/// Colour of the chosen plan (sRGBA): bright cyan.
pub const CHOSEN_SRGBA: [f32; 4] = [0.0, 1.0, 1.0, 1.0];
/// Colour of the candidates (sRGBA): faded blue.
pub const CANDIDATE_SRGBA: [f32; 4] = [0.3, 0.45, 1.0, 0.55];
/// Colour of the route (sRGBA): pink.
pub const ROUTE_SRGBA: [f32; 4] = [1.0, 0.25, 0.65, 0.9];
/// Colour of lidar rays (sRGBA).
pub const RAY_SRGBA: [f32; 4] = [0.3, 1.0, 0.35, 0.35];
/// Colour of lidar hits (sRGBA).
pub const HIT_SRGBA: [f32; 4] = [1.0, 0.15, 0.1, 1.0];

/// The planar lidar drawn by the overlay: 360 beams (1°), 0.1–30 m, 1 cm noise.
pub fn lidar_config() -> swm_sensors::LidarConfig {
    swm_sensors::LidarConfig { beams_per_channel: 360, ..swm_sensors::LidarConfig::planar_2d() }
}

/// Where to place a robot at start (twin frame, metres; both snap to walk nodes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RobotSpawn {
    /// Near the start.
    pub start_enu: [f64; 2],
    /// Near the goal.
    pub goal_enu: [f64; 2],
}

/// What the next ground clicks do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlaceMode {
    /// Clicks select agents.
    #[default]
    Off,
    /// The next click places the robot.
    Start,
    /// The next click sets the goal of a robot starting at this walk node.
    Goal {
        /// The start node.
        start_node: u32,
    },
}

/// What the last replan decided, as drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanView {
    /// The robot step whose state the plan starts from.
    pub from_step: u64,
    /// The action for that step.
    pub action: Action,
    /// The chosen plan's states (steps `from_step + 1 ..`).
    pub states: Vec<RobotState>,
    /// The candidates drawn ([`CANDIDATES_DRAWN`] at most), positions at steps 1..=H.
    pub candidates: Vec<Vec<[f64; 2]>>,
    /// How many candidates the planner scored.
    pub candidates_total: usize,
    /// Collision probability of the chosen plan under its futures.
    pub collision_probability: f64,
    /// Wall time of the replan and of its prediction (s).
    pub plan_wall_s: f64,
    /// Wall time of the prediction in it (0 when futures were reused) (s).
    pub predict_wall_s: f64,
}

/// A lidar scan as drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct LidarView {
    /// The robot step of the scan.
    pub step: u64,
    /// The sensor's position (twin frame).
    pub origin_enu: [f64; 3],
    /// The returns (twin frame).
    pub hits_enu: Vec<[f64; 3]>,
    /// Beams cast.
    pub beams: usize,
}

/// One delivery robot and its state.
pub struct DeliveryRobot {
    /// Limits and size.
    pub params: RobotParams,
    /// State after the last step.
    pub state: RobotState,
    /// State one step before (drawn in between, like the agents).
    pub prev_state: RobotState,
    /// The global route (A* on the walk graph).
    pub route: Route,
    /// Arc length of the robot's projection on the route (m).
    pub route_s_m: f64,
    /// Start and goal walk nodes.
    pub start_node: u32,
    /// Goal walk node.
    pub goal_node: u32,
    /// The route's end.
    pub goal_enu: P2,
    /// Steps driven.
    pub steps: u64,
    /// Contacts with agents or buildings (each counted once, when it starts).
    pub collisions: u32,
    /// Whether the robot touches something now.
    pub in_contact: bool,
    /// Within [`GOAL_RADIUS_M`] of the goal at the route's end.
    pub arrived: bool,
    /// The last replan.
    pub plan: Option<PlanView>,
    /// Replans done.
    pub replans: u64,
    /// Mean replan wall time (s, exponential moving average).
    pub plan_wall_mean_s: f64,
    /// The episode seed (the simulation's): MPPI noise and world-model draws.
    pub seed: u64,
    history: VecDeque<Frame>,
    /// The planner between replans (out in the task during one; a mutex only so the
    /// resource is `Sync`: it is never locked, only reached through `&mut`).
    planner: Mutex<Option<Box<MppiPlanner>>>,
    sim_params: SimParams,
    signals: Arc<SignalController>,
}

impl DeliveryRobot {
    /// Route metres still ahead.
    pub fn remaining_m(&self) -> f64 {
        (self.route.length_m() - self.route_s_m).max(0.0)
    }

    /// Straight-line distance to the goal (m).
    pub fn goal_distance_m(&self) -> f64 {
        (self.state.point_enu[0] - self.goal_enu[0]).hypot(self.state.point_enu[1] - self.goal_enu[1])
    }

    /// The state drawn at interpolation weight `alpha` between the last two steps (position
    /// linearly, heading along the shorter arc), like the agents.
    pub fn drawn_state(&self, alpha: f32) -> RobotState {
        let a = f64::from(alpha.clamp(0.0, 1.0));
        let (p, q) = (self.prev_state, self.state);
        let mut d = (q.heading_rad - p.heading_rad).rem_euclid(std::f64::consts::TAU);
        if d > std::f64::consts::PI {
            d -= std::f64::consts::TAU;
        }
        RobotState {
            point_enu: [
                p.point_enu[0] + a * (q.point_enu[0] - p.point_enu[0]),
                p.point_enu[1] + a * (q.point_enu[1] - p.point_enu[1]),
            ],
            heading_rad: p.heading_rad + a * d,
            ..q
        }
    }

    /// The history frames the planner sees (oldest first).
    pub fn history(&self) -> &VecDeque<Frame> {
        &self.history
    }

    /// The action for the step starting now (module docs, "Budget").
    fn action_now(&self) -> Action {
        let brake = Action { accel_mps2: -self.params.max_brake_mps2, turn: 0.0 };
        if self.arrived {
            return brake;
        }
        match &self.plan {
            Some(p) if p.from_step == self.steps => p.action,
            Some(p) if self.steps > p.from_step => match p.states.get((self.steps - p.from_step) as usize) {
                Some(s) => Action { accel_mps2: s.accel_mps2, turn: s.yaw_rate_radps },
                None => brake,
            },
            _ => brake,
        }
    }
}

/// Scene and model shared by the replans, made by the first.
struct Shared {
    scene: Arc<Scene>,
    net: Arc<Network>,
    map: Arc<MapContext>,
}

/// What a replan task returns.
struct PlanOutcome {
    shared: Arc<Shared>,
    planner: Box<MppiPlanner>,
    view: PlanView,
}

/// The robot, the placing mode, the lidar toggle and the tasks.
#[derive(Resource, Default)]
pub struct Robots {
    /// What the next ground clicks do.
    pub mode: PlaceMode,
    /// Whether the lidar is cast and drawn.
    pub lidar: bool,
    /// Wait for each replan (and scan) before the next step (headless, tests).
    pub blocking: bool,
    /// The robot, once placed.
    pub robot: Option<DeliveryRobot>,
    /// The last lidar scan.
    pub lidar_view: Option<LidarView>,
    /// The last error (shown in the panel).
    pub error: Option<String>,
    walk: Option<WalkGraph>,
    shared: Option<Arc<Shared>>,
    plan_task: Option<Task<Result<PlanOutcome, String>>>,
    lidar_task: Option<Task<Result<LidarView, String>>>,
}

/// The rules of `swm_robots::env::SceneRules` with the simulation's signal plans held
/// apart from the simulation (so a replan can run on another thread).
struct ViewerRules {
    scene: Arc<Scene>,
    signals: Arc<SignalController>,
}

impl Rules for ViewerRules {
    fn off_area_m(&self, p: P2) -> f64 {
        self.scene.off_walk_m(p)
    }
    fn in_building(&self, p: P2) -> bool {
        self.scene.in_building(p)
    }
    fn building_near(&self, p: P2, radius_m: f64) -> bool {
        self.scene.building_near(p, radius_m)
    }
    fn stop_state(&self, stop: &RouteStop, time_s: f64) -> Option<SignalState> {
        self.signals.connection_state(stop.connection, time_s)
    }
    fn crossing_state(&self, c: &RouteCrossing, time_s: f64) -> Option<SignalState> {
        if !c.signalled {
            return None;
        }
        let lanes: Vec<u32> =
            self.scene.crossings.lanes_of_crossing.get(&c.walk_edge).map(|v| v.iter().map(|x| x.lane).collect())?;
        self.signals.pedestrian_state(&lanes, time_s)
    }
}

/// The walk node nearest `p` that has an edge, and its distance (m).
pub fn nearest_walk_node(twin: &Twin, walk: &WalkGraph, p: P2) -> Option<(u32, f64)> {
    twin.walk_nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| walk.adjacency.get(*i).is_some_and(|a| !a.is_empty()))
        .map(|(i, n)| (i as u32, (n.position[0] - p[0]).hypot(n.position[1] - p[1])))
        .filter(|(_, d)| d.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
}

/// Agents of `records` within `radius_m` of `p`.
fn near(records: &[TrajectoryRecord], p: P2, radius_m: f64) -> Vec<TrajectoryRecord> {
    records.iter().filter(|r| (r.x_m - p[0]).hypot(r.y_m - p[1]) <= radius_m).cloned().collect()
}

/// The robot's history rebuilt from the simulation's last steps, the robot standing at
/// `state` throughout (as `Env::reset`'s warm-up has it).
fn history_from_sim(sim: &SimResource, state: RobotState) -> VecDeque<Frame> {
    let n = sim.history.len();
    let now_t = sim.time_s();
    let now_step = sim.step_index();
    sim.history
        .iter()
        .enumerate()
        .map(|(k, records)| {
            let back = (n - 1 - k) as u32;
            Frame {
                time_s: now_t - f64::from(back) * swm_sim::DT_S,
                step: now_step.saturating_sub(back),
                robot: state,
                robot_z_m: None,
                others: near(records, state.point_enu, HISTORY_RADIUS_M),
            }
        })
        .collect()
}

fn load_shared(twin: &Arc<Twin>, signal_seed: u64) -> Result<Shared, String> {
    let t0 = std::time::Instant::now();
    let path = swm_model::default_model_path();
    // `{:#}`: the message with its causes (the I/O error is the model error's source).
    let net = Network::load(&path).map_err(|e| format!("loading {}: {:#}", path.display(), anyhow::Error::from(e)))?;
    let map =
        MapContext::new(twin, Some(signal_seed)).map_err(|e| format!("map context: {:#}", anyhow::Error::from(e)))?;
    let scene = Scene::new(twin.clone());
    tracing::info!(ms = t0.elapsed().as_millis() as u64, "robot planner ready (model, map context, scene)");
    Ok(Shared { scene: Arc::new(scene), net: Arc::new(net), map: Arc::new(map) })
}

impl Robots {
    /// No robot yet; the lidar overlay on or off.
    pub fn new(lidar: bool) -> Robots {
        Robots { lidar, ..Default::default() }
    }

    /// The walk graph (built on first use).
    fn walk(&mut self, twin: &Twin) -> &WalkGraph {
        self.walk.get_or_insert_with(|| WalkGraph::new(twin))
    }

    /// The walk node nearest `p` within [`MAX_SNAP_M`].
    pub fn snap(&mut self, twin: &Twin, p: P2) -> Result<u32, ViewerError> {
        let walk = self.walk(twin);
        match nearest_walk_node(twin, walk, p) {
            Some((v, d)) if d <= MAX_SNAP_M => Ok(v),
            Some((_, d)) => Err(ViewerError::Robot(format!(
                "no walk node within {MAX_SNAP_M} m of ({:.1}, {:.1}) (nearest {d:.0} m away)",
                p[0], p[1]
            ))),
            None => Err(ViewerError::Robot("the twin has no walk graph".into())),
        }
    }

    /// Places a delivery robot at walk node `start`, routed to walk node `goal`, replacing
    /// any robot there was. Its history is the simulation's last second with the robot
    /// standing at the start.
    pub fn spawn_at_nodes(&mut self, twin: &Twin, sim: &SimResource, start: u32, goal: u32) -> Result<(), ViewerError> {
        let n = twin.walk_nodes.len() as u32;
        if start >= n || goal >= n {
            return Err(ViewerError::Robot(format!("walk node {start} or {goal} out of range (0..{n})")));
        }
        if start == goal {
            return Err(ViewerError::Robot("the goal is the start".into()));
        }
        let route = self
            .walk(twin)
            .route(twin, start, goal)
            .map_err(|e| ViewerError::Robot(format!("{:#}", anyhow::Error::from(e))))?;
        if route.points.len() < 2 {
            return Err(ViewerError::Robot(format!("the route from {start} to {goal} has no length")));
        }
        let params = RobotParams::delivery_robot();
        let (p, t) = route.point_at(0.0);
        let state = RobotState::at_rest(p, t[1].atan2(t[0]));
        let goal_enu = *route.points.last().expect("two points at least");
        // Keep the planner (and its loaded model) of a previous robot, forgetting its mean.
        let planner = self.robot.take().and_then(|r| r.planner.into_inner().ok().flatten()).map(|mut pl| {
            pl.clear();
            pl
        });
        // A task still running belongs to the old robot.
        self.plan_task = None;
        self.lidar_task = None;
        self.lidar_view = None;
        tracing::info!(start, goal, route_m = route.length_m(), "robot placed");
        self.robot = Some(DeliveryRobot {
            params,
            state,
            prev_state: state,
            route_s_m: 0.0,
            route,
            start_node: start,
            goal_node: goal,
            goal_enu,
            steps: 0,
            collisions: 0,
            in_contact: false,
            arrived: false,
            plan: None,
            replans: 0,
            plan_wall_mean_s: 0.0,
            seed: sim.params.seed,
            history: history_from_sim(sim, state),
            planner: Mutex::new(planner),
            sim_params: sim.params.clone(),
            signals: sim.signals_arc(),
        });
        self.error = None;
        Ok(())
    }

    /// Places a robot near `spawn.start_enu` with its goal near `spawn.goal_enu`.
    pub fn spawn(&mut self, twin: &Twin, sim: &SimResource, spawn: RobotSpawn) -> Result<(), ViewerError> {
        let a = self.snap(twin, spawn.start_enu)?;
        let b = self.snap(twin, spawn.goal_enu)?;
        self.spawn_at_nodes(twin, sim, a, b)
    }

    /// Removes the robot.
    pub fn remove(&mut self) {
        self.robot = None;
        self.plan_task = None;
        self.lidar_task = None;
        self.lidar_view = None;
    }

    /// Whether a replan is running.
    pub fn planning(&self) -> bool {
        self.plan_task.is_some()
    }

    /// Takes a finished replan (waiting for it with `block`).
    fn collect_plan(&mut self, block: bool) {
        let Some(result) = take_finished(&mut self.plan_task, block) else { return };
        match result {
            Ok(out) => {
                self.shared = Some(out.shared);
                if let Some(r) = self.robot.as_mut() {
                    *r.planner.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(out.planner);
                    r.replans += 1;
                    let w = out.view.plan_wall_s;
                    r.plan_wall_mean_s = if r.replans == 1 { w } else { 0.9 * r.plan_wall_mean_s + 0.1 * w };
                    r.plan = Some(out.view);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "robot planner");
                self.error = Some(e);
                self.remove();
            }
        }
    }

    /// Takes a finished lidar scan (waiting for it with `block`).
    fn collect_lidar(&mut self, block: bool) {
        let result = take_finished(&mut self.lidar_task, block);
        match result {
            Some(Ok(v)) => self.lidar_view = Some(v),
            Some(Err(e)) => {
                tracing::error!(error = %e, "lidar");
                self.error = Some(e);
                self.lidar = false;
            }
            None => {}
        }
    }

    /// Starts a replan from the robot's state now, unless one runs or the plan is current.
    fn start_plan(&mut self, twin: &Arc<Twin>, sim: &SimResource) {
        if self.plan_task.is_some() {
            return;
        }
        let shared = self.shared.clone();
        let Some(r) = self.robot.as_mut() else { return };
        if r.arrived || r.plan.as_ref().is_some_and(|p| p.from_step == r.steps) || r.history.is_empty() {
            return;
        }
        let planner = r.planner.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        let (params, state, route, route_s_m, seed, step) =
            (r.params, r.state, r.route.clone(), r.route_s_m, r.seed, r.steps);
        let history = r.history.clone();
        let signals = r.signals.clone();
        let time_s = sim.time_s();
        let twin = twin.clone();
        let signal_seed = sim.params.seed;
        self.plan_task = Some(AsyncComputeTaskPool::get().spawn(async move {
            let shared = match shared {
                Some(s) => s,
                None => Arc::new(load_shared(&twin, signal_seed)?),
            };
            let mut planner = planner.unwrap_or_else(|| {
                Box::new(MppiPlanner::new(
                    PlannerConfig::of(RobotKind::Delivery),
                    Box::new(WorldModel::new(shared.net.clone(), shared.map.clone())),
                ))
            });
            let rules = ViewerRules { scene: shared.scene.clone(), signals };
            let input = PlanInput {
                params: &params,
                time_s,
                state,
                route: &route,
                route_s_m,
                history: &history,
                rules: &rules,
                seed,
                goal_radius_m: GOAL_RADIUS_M,
            };
            let action = planner.plan(&input);
            let rep = planner.report();
            let total = rep.candidates.len();
            let pick: Vec<usize> = if total <= CANDIDATES_DRAWN {
                (0..total).collect()
            } else {
                let rest = CANDIDATES_DRAWN - 3;
                (0..3).chain((0..rest).map(|k| 3 + k * (total - 3) / rest)).collect()
            };
            let view = PlanView {
                from_step: step,
                action,
                states: rep.plan.clone(),
                candidates: pick.iter().map(|&k| rep.candidates[k].clone()).collect(),
                candidates_total: total,
                collision_probability: rep.collision_probability,
                plan_wall_s: rep.plan_wall_s,
                predict_wall_s: rep.predict_wall_s,
            };
            Ok(PlanOutcome { shared, planner, view })
        }));
    }

    /// Starts a lidar scan of the robot's state now (after the scene is ready).
    fn start_lidar(&mut self, sim: &SimResource) {
        if !self.lidar || self.lidar_task.is_some() {
            return;
        }
        let (Some(r), Some(shared)) = (self.robot.as_ref(), self.shared.clone()) else { return };
        if self.lidar_view.as_ref().is_some_and(|v| v.step == r.steps) {
            return;
        }
        let config = lidar_config();
        let p = r.state.point_enu;
        let agents: Vec<swm_sensors::AgentBox> = sim
            .curr
            .iter()
            .filter(|(_, a)| (a.position_m[0] - p[0]).hypot(a.position_m[1] - p[1]) < config.range_max_m + 20.0)
            .map(|(id, a)| swm_sensors::AgentBox {
                id: *id,
                base_center_enu: a.position_m,
                yaw_rad: a.heading_rad,
                length_m: f64::from(a.length_m),
                width_m: f64::from(a.width_m),
                height_m: if a.kind.is_vehicle() { 1.6 } else { 1.7 },
            })
            .collect();
        let (heading, step, seed) = (r.state.heading_rad, r.steps, r.seed);
        self.lidar_task = Some(AsyncComputeTaskPool::get().spawn(async move {
            let z = shared.scene.twin.terrain.elevation_at(p);
            let origin = [p[0], p[1], z + LIDAR_HEIGHT_M];
            let pose = swm_sensors::SensorPose::level(origin, heading);
            let scan = shared
                .scene
                .lidar_scene()
                .scan(&config, &pose, &agents, seed, step)
                .map_err(|e| format!("lidar scan: {:#}", anyhow::Error::from(e)))?;
            Ok(LidarView { step, origin_enu: origin, hits_enu: scan.points_enu, beams: scan.ranges_m.len() })
        }));
    }

    /// One simulation step with the robot (module docs, "Driving"): the robot's action,
    /// the simulation's step, then the robot's bookkeeping and the next replan.
    pub fn step_with(&mut self, sim: &mut SimResource, twin: &Arc<Twin>) {
        self.collect_plan(self.blocking);
        self.collect_lidar(self.blocking);
        if let Some(r) = self.robot.as_mut()
            && r.sim_params != sim.params
        {
            // The simulation restarted: a new world around the robot, new signal plans (the
            // map context and the planner are made again for them).
            r.sim_params = sim.params.clone();
            r.seed = sim.params.seed;
            r.signals = sim.signals_arc();
            r.history = history_from_sim(sim, r.state);
            *r.planner.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
            r.plan = None;
            self.shared = None;
            self.plan_task = None;
        }
        if let Some(r) = self.robot.as_mut() {
            let action = r.action_now();
            r.prev_state = r.state;
            r.state = r.params.step(&r.state, &action);
            // The teacher's agents see the robot, as in `swm_robots::env`.
            let fp = r.params.footprint(&r.state, 0.0);
            sim.simulation().set_external_agents(&[swm_sim::ExternalAgent {
                center: fp.center,
                z_m: twin.terrain.elevation_at(r.state.point_enu),
                heading_rad: fp.heading_rad,
                length_m: fp.length_m,
                width_m: fp.width_m,
                speed_mps: r.state.speed_mps,
            }]);
        }
        sim.step();
        let Some(r) = self.robot.as_mut() else { return };
        r.steps += 1;
        let (s_new, _) = r.route.project(r.state.point_enu, r.route_s_m - 2.0, r.route_s_m + 5.0);
        r.route_s_m = s_new;
        let records = sim.history.back().map(Vec::as_slice).unwrap_or(&[]);
        // Contacts, as `Env::step` checks them.
        let fp = r.params.footprint(&r.state, 0.0);
        let mut touching = records.iter().any(|rec| {
            let b = OrientedBox::of_record(rec);
            let reach = b.bounding_radius_m() + fp.bounding_radius_m();
            (b.center[0] - fp.center[0]).hypot(b.center[1] - fp.center[1]) <= reach && fp.overlap_depth_m(&b) > 0.01
        });
        if !touching && let Some(shared) = &self.shared {
            touching = footprint_building(&shared.scene, &fp).is_some();
        }
        if touching && !r.in_contact {
            r.collisions += 1;
        }
        r.in_contact = touching;
        if !r.arrived && r.goal_distance_m() <= GOAL_RADIUS_M && r.route_s_m >= r.route.length_m() - 2.0 * GOAL_RADIUS_M
        {
            r.arrived = true;
            tracing::info!(steps = r.steps, collisions = r.collisions, "robot arrived");
        }
        r.history.push_back(Frame {
            time_s: sim.time_s(),
            step: sim.step_index(),
            robot: r.state,
            robot_z_m: None,
            others: near(records, r.state.point_enu, HISTORY_RADIUS_M),
        });
        while r.history.len() > HISTORY_FRAMES {
            r.history.pop_front();
        }
        self.start_plan(twin, sim);
        self.start_lidar(sim);
    }
}

/// Polls the tasks and starts a replan or a scan when one is due (every frame, before the
/// simulation steps).
pub fn robot_tasks(mut robots: ResMut<Robots>, sim: Res<SimResource>, twin: Res<TwinResource>) {
    if robots.robot.is_none() {
        return;
    }
    robots.collect_plan(false);
    robots.collect_lidar(false);
    robots.start_plan(&twin.0, &sim);
    robots.start_lidar(&sim);
}

/// The message of a robot error, without the variant's prefix.
fn message(e: ViewerError) -> String {
    match e {
        ViewerError::Robot(m) => m,
        other => format!("{:#}", anyhow::Error::from(other)),
    }
}

/// Places the robot given on the command line (startup).
pub fn spawn_configured_robot(
    start: Res<RobotStart>,
    mut robots: ResMut<Robots>,
    sim: Res<SimResource>,
    twin: Res<TwinResource>,
) {
    if let Some(spawn) = start.0
        && let Err(e) = robots.spawn(&twin.0, &sim, spawn)
    {
        tracing::error!(error = %e, "placing the robot");
        robots.error = Some(message(e));
    }
}

/// The robot to place at start, if any.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq)]
pub struct RobotStart(pub Option<RobotSpawn>);

/// Marks the robot's entity.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RobotMarker;

/// The robot's box at `state` on the ground at `z_m` (bevy transform of a unit cube).
pub fn robot_transform(params: &RobotParams, state: &RobotState, z_m: f64) -> Transform {
    let centre = bevy_from_twin(state.point_enu[0], state.point_enu[1], z_m) + Vec3::Y * (0.5 * ROBOT_HEIGHT_M + 0.02);
    Transform {
        translation: centre,
        rotation: Quat::from_rotation_y(state.heading_rad as f32),
        scale: Vec3::new(params.length_m as f32, ROBOT_HEIGHT_M, params.width_m as f32),
    }
}

/// Spawns, moves (interpolated between its last two steps, like the agents) and despawns
/// the robot's box.
#[allow(clippy::too_many_arguments)]
pub fn sync_robot(
    mut commands: Commands,
    robots: Res<Robots>,
    sim: Res<SimResource>,
    twin: Res<TwinResource>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut existing: Query<(Entity, &mut Transform), With<RobotMarker>>,
) {
    let Some(r) = robots.robot.as_ref() else {
        for (e, _) in &existing {
            commands.entity(e).despawn();
        }
        return;
    };
    let mid = r.drawn_state(sim.clock.alpha());
    let z = twin.0.terrain.elevation_at(mid.point_enu);
    let t = robot_transform(&r.params, &mid, z);
    match existing.iter_mut().next() {
        Some((_, mut tr)) => *tr = t,
        None => {
            let [cr, cg, cb] = ROBOT_SRGB;
            let material = materials.add(StandardMaterial {
                base_color: Color::srgb(cr, cg, cb),
                emissive: LinearRgba::rgb(1.2, 0.35, 0.0),
                perceptual_roughness: 0.5,
                ..default()
            });
            commands.spawn((RobotMarker, Mesh3d(meshes.add(Cuboid::new(1.0, 1.0, 1.0))), MeshMaterial3d(material), t));
        }
    }
}

/// Keeps a following camera on the robot when no agent is selected (`F`; on from the start
/// when the view was framed on a robot placed from the command line).
pub fn follow_robot(
    robots: Res<Robots>,
    sim: Res<SimResource>,
    twin: Res<TwinResource>,
    selection: Res<crate::agents::Selection>,
    mut cameras: Query<(&mut camera::OrbitCamera, &mut Transform)>,
) {
    let Some(r) = robots.robot.as_ref().filter(|_| selection.0.is_none()) else { return };
    for (mut cam, mut transform) in &mut cameras {
        if !cam.follow {
            continue;
        }
        let p = r.drawn_state(sim.clock.alpha()).point_enu;
        cam.focus = bevy_from_twin(p[0], p[1], twin.0.terrain.elevation_at(p));
        let want = cam.transform();
        if *transform != want {
            *transform = want;
        }
    }
}

/// What the robot overlay draws (twin frame), rebuilt every frame from [`Robots`].
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct RobotOverlay {
    /// The route still ahead.
    pub route: Option<OverlayPolyline>,
    /// The chosen plan from the robot (thick, bright).
    pub chosen: Option<OverlayPolyline>,
    /// MPPI candidates (thin, faded).
    pub candidates: Vec<OverlayPolyline>,
    /// The goal.
    pub goal: Option<OverlayPoints>,
    /// Lidar rays, sensor to hit (two points each).
    pub rays: Vec<OverlayPolyline>,
    /// Lidar hits.
    pub hits: Option<OverlayPoints>,
}

/// Rebuilds [`RobotOverlay`].
pub fn update_robot_overlay(robots: Res<Robots>, twin: Res<TwinResource>, mut overlay: ResMut<RobotOverlay>) {
    let Some(r) = robots.robot.as_ref() else {
        if *overlay != RobotOverlay::default() {
            *overlay = RobotOverlay::default();
        }
        return;
    };
    let terrain = &twin.0.terrain;
    let z0 = terrain.elevation_at(r.state.point_enu) + PLAN_LIFT_M;
    let lift = |p: &[f64; 2]| [p[0], p[1], z0];
    let mut route: Vec<[f64; 3]> = vec![[r.state.point_enu[0], r.state.point_enu[1], z0]];
    route.extend(
        r.route
            .points
            .iter()
            .zip(&r.route.s_m)
            .filter(|(_, s)| **s > r.route_s_m)
            .map(|(p, _)| [p[0], p[1], terrain.elevation_at(*p) + PLAN_LIFT_M]),
    );
    let mut out = RobotOverlay {
        route: (route.len() >= 2).then_some(OverlayPolyline { points_m: route, srgba: ROUTE_SRGBA }),
        goal: Some(OverlayPoints {
            points_m: vec![[r.goal_enu[0], r.goal_enu[1], terrain.elevation_at(r.goal_enu) + PLAN_LIFT_M]],
            radius_m: GOAL_RADIUS_M as f32,
            srgba: ROUTE_SRGBA,
        }),
        ..Default::default()
    };
    if let Some(p) = &r.plan {
        let start = lift(&r.state.point_enu);
        // The plan from the robot on: drop the steps already driven.
        let done = (r.steps.saturating_sub(p.from_step)) as usize;
        let above = |q: [f64; 3]| [q[0], q[1], q[2] + CHOSEN_ABOVE_M];
        let chosen: Vec<[f64; 3]> = std::iter::once(above(start))
            .chain(p.states.iter().skip(done).map(|s| above(lift(&s.point_enu))))
            .collect();
        if chosen.len() >= 2 {
            out.chosen = Some(OverlayPolyline { points_m: chosen, srgba: CHOSEN_SRGBA });
        }
        out.candidates = p
            .candidates
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| OverlayPolyline {
                points_m: std::iter::once(start).chain(c.iter().skip(done).map(lift)).collect(),
                srgba: CANDIDATE_SRGBA,
            })
            .filter(|c| c.points_m.len() >= 2)
            .collect();
    }
    if robots.lidar
        && let Some(l) = &robots.lidar_view
    {
        out.rays =
            l.hits_enu.iter().map(|h| OverlayPolyline { points_m: vec![l.origin_enu, *h], srgba: RAY_SRGBA }).collect();
        out.hits = Some(OverlayPoints { points_m: l.hits_enu.clone(), radius_m: 0.12, srgba: HIT_SRGBA });
    }
    if *overlay != out {
        *overlay = out;
    }
}

/// Thick lines: the chosen plan.
#[derive(Default, Reflect, GizmoConfigGroup)]
pub struct ThickGizmos;

/// Draws [`RobotOverlay`] with gizmos.
pub fn draw_robot_overlay(overlay: Res<RobotOverlay>, mut thin: Gizmos, mut thick: Gizmos<ThickGizmos>) {
    let at = |p: &[f64; 3]| bevy_from_twin(p[0], p[1], p[2]);
    let colour = |c: [f32; 4]| Color::srgba(c[0], c[1], c[2], c[3]);
    for c in &overlay.candidates {
        thin.linestrip(c.points_m.iter().map(at), colour(c.srgba));
    }
    for r in &overlay.rays {
        thin.linestrip(r.points_m.iter().map(at), colour(r.srgba));
    }
    for set in overlay.hits.iter().chain(overlay.goal.iter()) {
        for p in &set.points_m {
            let iso = Isometry3d::new(at(p), Quat::from_rotation_x(-std::f32::consts::FRAC_PI_2));
            thin.circle(iso, set.radius_m, colour(set.srgba));
        }
    }
    if let Some(l) = &overlay.route {
        thin.linestrip(l.points_m.iter().map(at), colour(l.srgba));
    }
    if let Some(l) = &overlay.chosen {
        thick.linestrip(l.points_m.iter().map(at), colour(l.srgba));
    }
}

/// The point where a camera ray meets the ground (twin frame), following the terrain.
pub fn ground_point(twin: &Twin, origin: Vec3, dir: Vec3) -> Option<P2> {
    if dir.y >= -1e-4 {
        return None;
    }
    let mut z = 0.0f64;
    let mut hit = None;
    for _ in 0..4 {
        let t = (z as f32 - origin.y) / dir.y;
        if t < 0.0 {
            return None;
        }
        let p = crate::agents::twin_from_bevy(origin + dir * t);
        let xy = [p[0], p[1]];
        z = twin.terrain.elevation_at(xy);
        if !z.is_finite() {
            z = 0.0;
        }
        hit = Some(xy);
    }
    hit
}

/// Left clicks on the ground in placing mode: the start, then the goal (after
/// [`camera::pick_on_click`], which ignores clicks in this mode); `Esc` cancels.
#[allow(clippy::too_many_arguments)]
pub fn place_on_click(
    keys: Res<ButtonInput<KeyCode>>,
    buttons: Res<ButtonInput<MouseButton>>,
    drag: Res<camera::DragState>,
    windows: Query<&Window, With<bevy::window::PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform), With<camera::OrbitCamera>>,
    ui_hover: Query<&Interaction>,
    mut robots: ResMut<Robots>,
    sim: Res<SimResource>,
    twin: Res<TwinResource>,
) {
    if keys.just_pressed(KeyCode::Escape) && robots.mode != PlaceMode::Off {
        robots.mode = PlaceMode::Off;
        return;
    }
    if robots.mode == PlaceMode::Off || !buttons.just_released(MouseButton::Left) || drag.dragged_px() > 4.0 {
        return;
    }
    if ui_hover.iter().any(|i| *i != Interaction::None) {
        return;
    }
    let Some(ray) = camera::cursor_ray(&windows, &cameras) else { return };
    let Some(p) = ground_point(&twin.0, ray.origin, *ray.direction) else { return };
    let node = match robots.snap(&twin.0, p) {
        Ok(v) => v,
        Err(e) => {
            robots.error = Some(message(e));
            return;
        }
    };
    match robots.mode {
        PlaceMode::Off => {}
        PlaceMode::Start => {
            robots.remove();
            robots.mode = PlaceMode::Goal { start_node: node };
            robots.error = None;
        }
        PlaceMode::Goal { start_node } => {
            robots.mode = PlaceMode::Off;
            if let Err(e) = robots.spawn_at_nodes(&twin.0, &sim, start_node, node) {
                robots.error = Some(message(e));
            }
        }
    }
}

/// Panel lines about the robot.
pub fn status_lines(robots: &Robots) -> String {
    let mut s = String::new();
    match robots.mode {
        PlaceMode::Start => s.push_str("robot: click the ground to place it (Esc cancels)\n"),
        PlaceMode::Goal { .. } => s.push_str("robot: click its goal (Esc cancels)\n"),
        PlaceMode::Off => {}
    }
    match &robots.robot {
        Some(r) => {
            let (ms, pred) = r.plan.as_ref().map_or((0.0, 0.0), |p| (p.plan_wall_s * 1e3, p.predict_wall_s * 1e3));
            s.push_str(&format!(
                "robot: {:.2} m/s  to goal {:.1} m (route {:.1} of {:.1} m){}\nplanner {:.1} ms/step (mean {:.1}, predict {:.1}){}  P(coll) {:.2}\ncollisions {}{}",
                r.state.speed_mps,
                r.goal_distance_m(),
                r.remaining_m(),
                r.route.length_m(),
                if r.arrived { "  ARRIVED" } else { "" },
                ms,
                r.plan_wall_mean_s * 1e3,
                pred,
                if r.plan.is_none() { " (loading the model)" } else { "" },
                r.plan.as_ref().map_or(0.0, |p| p.collision_probability),
                r.collisions,
                if robots.lidar {
                    robots
                        .lidar_view
                        .as_ref()
                        .map_or("  lidar: starting".to_string(), |l| format!("  lidar {}/{} returns", l.hits_enu.len(), l.beams))
                } else {
                    String::new()
                },
            ));
        }
        None if robots.mode == PlaceMode::Off => s.push_str("robot: press R to place a delivery robot"),
        None => {}
    }
    if let Some(e) = &robots.error {
        s.push_str(&format!("\nrobot error: {e}"));
    }
    s
}

/// The result of the task in `slot` once it has finished (waiting for it with `block`),
/// emptying the slot; `None` while it runs or when there is none.
fn take_finished<T>(slot: &mut Option<Task<T>>, block: bool) -> Option<T> {
    let task = slot.as_mut()?;
    if block {
        return slot.take().map(block_on);
    }
    let r = block_on(poll_once(task));
    if r.is_some() {
        *slot = None;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_robot_box_has_its_size_and_heading() {
        let p = RobotParams::delivery_robot();
        let s = RobotState::at_rest([3.0, 4.0], std::f64::consts::FRAC_PI_2);
        let t = robot_transform(&p, &s, 10.0);
        assert_eq!(t.scale, Vec3::new(0.7, ROBOT_HEIGHT_M, 0.6));
        // Facing north: the box's forward (+x) is bevy's -z.
        assert!((t.rotation * Vec3::X - Vec3::new(0.0, 0.0, -1.0)).length() < 1e-5);
        assert!((t.translation - Vec3::new(3.0, 10.0 + 0.5 * ROBOT_HEIGHT_M + 0.02, -4.0)).length() < 1e-4);
    }

    #[test]
    fn ground_clicks_meet_the_flat_ground() {
        let twin = Twin::default();
        let p = ground_point(&twin, Vec3::new(10.0, 50.0, -20.0), Vec3::new(0.0, -1.0, 0.0)).expect("hits");
        assert!((p[0] - 10.0).abs() < 1e-4 && (p[1] - 20.0).abs() < 1e-4, "{p:?}");
        assert!(ground_point(&twin, Vec3::new(0.0, 50.0, 0.0), Vec3::Y).is_none(), "looking up");
    }
}
