//! Local planning in imagination: MPPI over the robot's action sequences, each candidate
//! scored against futures of the other agents sampled from the world model *conditioned on
//! the robot's plan*, or (baseline) extrapolated at constant velocity.
//!
//! # Candidates
//! A candidate is a sequence of `horizon_steps` pairs (longitudinal acceleration, lateral
//! offset from the route). Its actions follow by rolling the robot's own dynamics
//! ([`RobotParams::step`]) forward: the turn command is pure pursuit towards the route point
//! `lookahead_m` ahead, shifted sideways by the offset. So every candidate is a feasible
//! action sequence that respects the robot's limits, and MPPI explores speed (wait, creep,
//! go) and small swerves. The mean sequence is shifted by one step after each replan; the
//! noise is Gaussian (`CounterRng` keyed by the episode seed and the replan index, Box–Muller)
//! low-passed over time. Three candidates are always present: the mean, a full stop, and
//! "go" (full acceleration on the route, the naive straight plan).
//!
//! # Futures: how the world model is conditioned, and the budget
//! Rolling the world model once per candidate would cost candidates × samples rollouts per
//! replan: far beyond real time on 2 cores. Instead the planner rolls out a few **families**
//! of robot plans: the current mean, a stop, and (with 3 families) "go"; each family's plan
//! drives the robot as an external agent (`swm_model::AgentDriver`) in `samples` world-model
//! rollouts of the agents on the robot's level within `radius_m` or [`meeting_reach_m`]
//! (whichever is larger: at speed, whoever could meet the robot within the horizon), built
//! as a `swm_dataset::Scenario` from the last second of the world (the robot is agent 0).
//! The constant-velocity baseline picks its agents the same way. Each candidate is scored against the futures
//! of the family whose plan is closest to it (sum of squared position differences at the
//! middle and the end of the horizon). The other agents therefore react to a plan *like* the
//! candidate: that is the trade-off — families × samples rollouts per prediction instead of
//! candidates × samples, exact conditioning only for the family plans. Futures are refreshed
//! every `predict_every_steps` replans (each prediction covers the horizon plus that many
//! steps) while MPPI itself replans every step (10 Hz). The budget of one prediction is
//! `families × samples × (horizon_steps + predict_every_steps) × agents` model agent-steps;
//! of one replan `candidates × horizon_steps × samples × agents` box tests.
//!
//! # Costs (per candidate; weights in [`CostWeights`])
//! * **collision**: the fraction of the family's samples in which the robot's box (grown by
//!   `safety_margin_m`) overlaps another agent's box at the same step, each hit discounted by
//!   `1 − 0.5·t/H` (early hits are surer) and by half when the robot stands still at the
//!   hit ([`HIT_FULL_SPEED_MPS`]: if every candidate is hit, the robot stops rather than
//!   drives into it). An agent (where it is at that step) already within the margin of
//!   where the robot stands now is a hit only where it overlaps the bare footprint: else
//!   every candidate, the stop included, would hit it, the collision cost would no longer
//!   tell them apart, and the robot would drive on into a walker standing just inside its
//!   margin (Yeouido, car seed 38). Plus **proximity**: the squared shortfall of the
//!   bounding-circle clearance below `clearance_m`, averaged over samples; plus **imposed
//!   braking** (world model only): per sample the hardest braking beyond
//!   [`IMPOSED_BRAKE_FREE_MPS2`] of a vehicle within [`IMPOSED_RADIUS_M`] of the robot, the
//!   courtesy of not cutting in front of others (the imagined others brake for the robot;
//!   the real ones may not);
//! * **progress**: minus the route metres gained over the horizon;
//! * **the goal**: a plan that reaches the goal (within `goal_radius_m` of the route's end,
//!   as the environment judges success) is judged only up to the step it reaches it: the
//!   episode ends there, and what the plan would do after (drive past the route's end, off
//!   the lane, into a wall) cannot happen. It gains the rest of the route, plus
//!   `max_speed_mps` per second it arrives before the horizon's end. Without this, a robot
//!   a few metres short of the goal saw every plan that moves on pay for running past the
//!   route's end, and stopped there until the episode timed out (Jamsil car seeds 101 and
//!   103);
//! * **comfort**: squared acceleration, jerk, yaw rate and lateral acceleration;
//! * **rules**: metres outside the walkable area (delivery robot; [`Rules::off_area_m`]),
//!   squared distance from the route (car; lane keeping), a building under the footprint
//!   (any of [`crate::env::footprint_probes`] at any step: the environment's contact test),
//!   and, for the car, passing a red stop line unless even its hardest braking could not
//!   stop before it now (an amber one when it could stop at 0.7 of that), or ending the
//!   horizon short of a red line too fast to stop there at half its hardest braking (else
//!   plans hold their speed and defer braking to the horizon's end until it is too late);
//!   for the delivery robot, entering a signalled crossing on red; with the signal states
//!   of now held over the horizon.
//!
//! MPPI weights are `exp(−(c − c_min)/λ)`; the new mean is the weighted mean of the
//! candidates; if the mean's own cost exceeds the best candidate's by more than `λ`, the best
//! candidate replaces it (a hard-cost safeguard). The action is the mean's first step.
//!
//! # Baseline
//! [`ConstantVelocity`] predicts every agent moving on with its current speed and heading:
//! one future, the same for every candidate; everything else (candidates, costs, MPPI) is the
//! same planner.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use swm_core::rng::CounterRng;
use swm_dataset::Scenario;
use swm_model::rollout::rollout_scenarios_masked;
use swm_model::tokens::Kinematics;
use swm_model::{FeasibilityMask, MapContext, Network, RolloutConfig, SamplingConfig};
use swm_sim::metrics::OrientedBox;
use swm_sim::{SignalState, TrajectoryRecord};

use crate::env::{Controller, Env, Frame, Observation, Rules};
use crate::robot::{Action, DT_S, RobotKind, RobotParams, RobotState};
use crate::route::Route;

/// Random stream of the MPPI noise.
pub const STREAM_MPPI: u64 = 0x70B0_0002;

/// The bounding-circle radius of a box (m).
fn radius_m(b: &OrientedBox) -> f64 {
    0.5 * b.length_m.hypot(b.width_m)
}

/// Predicted futures: `boxes[family][sample][step]` holds the other agents' boxes at
/// `start_time_s + (step + 1)·DT_S`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Futures {
    pub start_time_s: f64,
    pub boxes: Vec<Vec<Vec<Vec<OrientedBox>>>>,
    /// The longitudinal acceleration of each box's agent (m/s², same shape as `boxes`; 0 for
    /// pedestrians), where the predictor knows it (the world model); empty otherwise.
    pub accel_mps2: Vec<Vec<Vec<Vec<f64>>>>,
    /// The robot plan each family was conditioned on (empty when not conditioned).
    pub plans: Vec<Vec<RobotState>>,
}

/// One family's futures from a step on: per sample and step the boxes, and their agents'
/// accelerations (empty where unknown), and the step to start at.
type FamilyFutures<'a> = (&'a [Vec<Vec<OrientedBox>>], &'a [Vec<Vec<f64>>], usize);

impl Futures {
    /// Family `f`'s boxes and accelerations (empty where unknown), from step `offset`.
    fn family(&self, f: usize, offset: usize) -> Option<FamilyFutures<'_>> {
        let boxes = self.boxes.get(f)?;
        let accel = self.accel_mps2.get(f).map_or(&[][..], |a| a.as_slice());
        Some((boxes.as_slice(), accel, offset))
    }
}

/// What a planner (and a predictor) gets to see.
pub struct PlanInput<'a> {
    pub params: &'a RobotParams,
    pub time_s: f64,
    pub state: RobotState,
    pub route: &'a Route,
    pub route_s_m: f64,
    /// The last frames of the world (oldest first; the newest is now).
    pub history: &'a VecDeque<Frame>,
    pub rules: &'a dyn Rules,
    /// The episode seed (keys the noise and the world-model draws).
    pub seed: u64,
    /// The robot has arrived within this distance of the route's end (m; the
    /// environment's `goal_radius_m`; see [`goal_reached`]).
    pub goal_radius_m: f64,
}

/// Whether a robot at `point_enu`, `s_m` along `route`, has reached its goal: within
/// `goal_radius_m` of the route's end, and no more than twice that short of it along the
/// route (a route that doubles back passes near its end early). The environment's success
/// test ([`crate::env::Env::step`]).
pub fn goal_reached(route: &Route, point_enu: [f64; 2], s_m: f64, goal_radius_m: f64) -> bool {
    let Some(goal) = route.points.last() else { return false };
    (point_enu[0] - goal[0]).hypot(point_enu[1] - goal[1]) <= goal_radius_m
        && s_m >= route.length_m() - 2.0 * goal_radius_m
}

/// Predicts the other agents over `steps` steps, given robot plans (families).
pub trait Predictor: Send {
    /// A short name (`world-model`, `constant-velocity`).
    fn name(&self) -> &'static str;
    /// Futures for each family plan (`plans[f][t]` is the robot at step `t + 1`), or one
    /// unconditioned family.
    fn predict(&mut self, input: &PlanInput, plans: &[Vec<RobotState>], steps: usize, call: u64) -> Futures;
}

/// A speed other agents are assumed to reach the robot at, for choosing whom to predict
/// (m/s: 50 km/h).
pub const OTHERS_MPS: f64 = 14.0;

/// How far (m) an agent may be and still meet the robot within `steps` steps: both closing
/// in, the robot at its current speed, the other at [`OTHERS_MPS`]. Predictors consider the
/// agents within the larger of this and their own radius: at speed a fixed radius leaves
/// out a car that will cross the robot's path within the horizon.
pub fn meeting_reach_m(input: &PlanInput, steps: usize) -> f64 {
    (input.state.speed_mps.max(0.0) + OTHERS_MPS) * steps as f64 * DT_S
}

fn nearby(frame: &Frame, p: [f64; 2], radius_m: f64, max_agents: usize) -> Vec<&TrajectoryRecord> {
    let mut v: Vec<(f64, &TrajectoryRecord)> = frame
        .others
        .iter()
        .filter(|r| frame.robot_z_m.is_none_or(|z| crate::env::same_level(r.z_m, z)))
        .map(|r| ((r.x_m - p[0]).powi(2) + (r.y_m - p[1]).powi(2), r))
        .filter(|(d2, _)| *d2 <= radius_m * radius_m)
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.agent_id.cmp(&b.1.agent_id)));
    v.into_iter().take(max_agents).map(|x| x.1).collect()
}

/// The constant-velocity baseline (module docs, "Baseline").
#[derive(Clone, Debug)]
pub struct ConstantVelocity {
    pub radius_m: f64,
    pub max_agents: usize,
}

impl Default for ConstantVelocity {
    fn default() -> Self {
        ConstantVelocity { radius_m: 40.0, max_agents: 48 }
    }
}

impl Predictor for ConstantVelocity {
    fn name(&self) -> &'static str {
        "constant-velocity"
    }
    fn predict(&mut self, input: &PlanInput, _plans: &[Vec<RobotState>], steps: usize, _call: u64) -> Futures {
        let now = input.history.back().expect("history is never empty");
        let radius_m = self.radius_m.max(meeting_reach_m(input, steps));
        let agents = nearby(now, input.state.point_enu, radius_m, self.max_agents);
        let per_step = (1..=steps)
            .map(|t| {
                let dt = t as f64 * DT_S;
                agents
                    .iter()
                    .map(|r| {
                        let mut b = OrientedBox::of_record(r);
                        b.center[0] += r.speed_mps * r.heading_rad.cos() * dt;
                        b.center[1] += r.speed_mps * r.heading_rad.sin() * dt;
                        b
                    })
                    .collect()
            })
            .collect();
        Futures { start_time_s: input.time_s, boxes: vec![vec![per_step]], accel_mps2: Vec::new(), plans: Vec::new() }
    }
}

/// World-model futures conditioned on the robot's plans (module docs, "Futures").
pub struct WorldModel {
    pub net: Arc<Network>,
    pub map: Arc<MapContext>,
    /// Samples per family.
    pub samples: usize,
    /// Agents within this radius of the robot are rolled out (m).
    pub radius_m: f64,
    /// At most this many (the nearest).
    pub max_agents: usize,
    pub sampling: SamplingConfig,
    pub mask: FeasibilityMask,
}

impl WorldModel {
    /// The model and map with the default budget: 4 samples, 30 m, 24 agents, the default
    /// sampling and masks.
    pub fn new(net: Arc<Network>, map: Arc<MapContext>) -> WorldModel {
        WorldModel {
            net,
            map,
            samples: 4,
            radius_m: 30.0,
            max_agents: 24,
            sampling: SamplingConfig::default(),
            mask: FeasibilityMask::default(),
        }
    }

    /// The rollout settings of prediction call `call` (its seed from the input's and the call's).
    pub fn rollout_config(&self, input: &PlanInput, steps: usize, call: u64) -> RolloutConfig {
        let seed = input.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ call;
        RolloutConfig { steps: steps as u32, samples: self.samples as u32, seed, sampling: self.sampling }
    }

    /// The scenario of the last second around the robot for a prediction of `steps` steps:
    /// the robot is agent 0, the `max_agents` nearest others within `radius_m` (or
    /// [`meeting_reach_m`], the larger) follow, nearest first.
    pub fn scenario(&self, input: &PlanInput, scenario_id: u64, steps: usize) -> Scenario {
        let now = input.history.back().expect("history is never empty");
        let radius_m = self.radius_m.max(meeting_reach_m(input, steps));
        let chosen = nearby(now, input.state.point_enu, radius_m, self.max_agents);
        let ids: Vec<u64> = chosen.iter().map(|r| r.agent_id).collect();
        let n = input.history.len();
        let mut rows = Vec::new();
        let kind = input.params.kind.agent_kind();
        for (k, fr) in input.history.iter().enumerate() {
            let frame = k as i32 - (n as i32 - 1);
            let rb = &fr.robot;
            rows.push((
                frame,
                TrajectoryRecord {
                    agent_id: 0,
                    kind,
                    length_m: input.params.length_m as f32,
                    width_m: input.params.width_m as f32,
                    step: fr.step,
                    time_s: fr.time_s,
                    x_m: rb.point_enu[0],
                    y_m: rb.point_enu[1],
                    z_m: 0.0,
                    heading_rad: rb.heading_rad,
                    speed_mps: rb.speed_mps,
                    accel_mps2: rb.accel_mps2,
                    lane: None,
                    signal: None,
                },
            ));
            for (j, id) in ids.iter().enumerate() {
                if let Some(r) = fr.others.iter().find(|r| r.agent_id == *id) {
                    let mut q = r.clone();
                    q.agent_id = j as u64 + 1;
                    rows.push((frame, q));
                }
            }
        }
        let mut agents = vec![u64::MAX];
        agents.extend(&ids);
        Scenario {
            scenario_id,
            center_agent_id: u64::MAX,
            current_time_s: now.time_s,
            current_step: now.step,
            agents,
            rows,
        }
    }
}

impl Predictor for WorldModel {
    fn name(&self) -> &'static str {
        "world-model"
    }
    fn predict(&mut self, input: &PlanInput, plans: &[Vec<RobotState>], steps: usize, call: u64) -> Futures {
        let scenarios: Vec<Scenario> = (0..plans.len()).map(|f| self.scenario(input, f as u64, steps)).collect();
        let driver = |scenario_id: u64, _sample: u32, agent_id: u64, frame: i32, _w: &[swm_model::WorldAgent]| {
            if agent_id != 0 {
                return None;
            }
            let plan = &plans[scenario_id as usize];
            let s = plan.get((frame - 1).max(0) as usize).or(plan.last())?;
            Some(Kinematics { point_enu: s.point_enu, heading_rad: s.heading_rad, speed_mps: s.speed_mps })
        };
        let cfg = self.rollout_config(input, steps, call);
        let out = rollout_scenarios_masked(&self.net, &self.map, &scenarios, &cfg, Some(&driver), self.mask);
        futures_of(&out, input, plans, steps)
    }
}

/// The futures of world-model rollouts whose agent 0 is the robot (one scenario per plan).
pub(crate) fn futures_of(
    out: &[swm_model::ScenarioRollout],
    input: &PlanInput,
    plans: &[Vec<RobotState>],
    steps: usize,
) -> Futures {
    let mut boxes = Vec::with_capacity(out.len());
    let mut accel_mps2 = Vec::with_capacity(out.len());
    for sr in out {
        let (mut fam_boxes, mut fam_accel) = (Vec::new(), Vec::new());
        for rows in &sr.samples {
            let mut per: Vec<Vec<OrientedBox>> = vec![Vec::new(); steps];
            let mut acc: Vec<Vec<f64>> = vec![Vec::new(); steps];
            for (f, r) in rows {
                if r.agent_id != 0 && *f >= 1 && (*f as usize) <= steps {
                    per[*f as usize - 1].push(OrientedBox::of_record(r));
                    // Vehicles' braking only: a pedestrian stepping aside is no harm done.
                    acc[*f as usize - 1].push(if r.kind.is_vehicle() { r.accel_mps2 } else { 0.0 });
                }
            }
            fam_boxes.push(per);
            fam_accel.push(acc);
        }
        boxes.push(fam_boxes);
        accel_mps2.push(fam_accel);
    }
    Futures { start_time_s: input.time_s, boxes, accel_mps2, plans: plans.to_vec() }
}

/// Cost weights (module docs, "Costs").
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostWeights {
    pub collision: f64,
    pub proximity: f64,
    pub progress: f64,
    pub accel: f64,
    pub jerk: f64,
    pub yaw_rate: f64,
    /// On the squared lateral acceleration `(v·ω)²`.
    pub lateral_accel: f64,
    pub off_area: f64,
    pub lateral: f64,
    pub building: f64,
    pub red: f64,
    /// On the braking the robot imposes: per sample, the largest deceleration beyond
    /// [`IMPOSED_BRAKE_FREE_MPS2`] of a vehicle within [`IMPOSED_RADIUS_M`] of the robot (m/s²),
    /// averaged over samples. Only predictors that know the others' reactions (the world
    /// model) give it.
    #[serde(default)]
    pub imposed_brake: f64,
}

/// A predicted hit counts fully when the robot moves at least this fast (m/s), half when it
/// stands still: where every candidate is hit (another agent predicted to walk or drive
/// into the robot whatever it does), the robot stops rather than drives into the hit.
pub const HIT_FULL_SPEED_MPS: f64 = 1.0;

/// Braking up to this hard (m/s²) by an agent near the robot costs nothing: anyone brakes so.
pub const IMPOSED_BRAKE_FREE_MPS2: f64 = 1.0;
/// Agents whose bounding circle comes within this distance of the robot's (m) count for the
/// imposed-braking cost.
pub const IMPOSED_RADIUS_M: f64 = 8.0;

impl CostWeights {
    /// The defaults of `kind`.
    pub fn of(kind: RobotKind) -> CostWeights {
        match kind {
            RobotKind::Delivery => CostWeights {
                collision: 60.0,
                proximity: 3.0,
                progress: 1.0,
                accel: 0.02,
                jerk: 0.0005,
                yaw_rate: 0.01,
                lateral_accel: 0.02,
                off_area: 0.5,
                lateral: 0.0,
                building: 100.0,
                red: 40.0,
                imposed_brake: 10.0,
            },
            RobotKind::Car => CostWeights {
                collision: 300.0,
                proximity: 5.0,
                progress: 0.4,
                accel: 0.01,
                jerk: 0.0005,
                yaw_rate: 0.05,
                lateral_accel: 0.0,
                off_area: 0.0,
                lateral: 0.2,
                building: 300.0,
                red: 200.0,
                imposed_brake: 20.0,
            },
        }
    }
}

/// MPPI settings and budget (module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannerConfig {
    pub candidates: usize,
    pub horizon_steps: usize,
    /// Plans the futures are conditioned on (1..=3: mean, stop, go).
    pub families: usize,
    /// Replans between two predictions.
    pub predict_every_steps: usize,
    /// MPPI temperature.
    pub lambda: f64,
    pub sigma_accel_mps2: f64,
    pub sigma_lateral_m: f64,
    /// Largest lateral offset from the route (m).
    pub max_lateral_m: f64,
    /// Pure-pursuit lookahead (m).
    pub lookahead_m: f64,
    /// Growth of the robot's box in the collision cost (m).
    pub safety_margin_m: f64,
    /// Bounding-circle clearance below which proximity costs (m).
    pub clearance_m: f64,
    pub weights: CostWeights,
}

impl PlannerConfig {
    /// The default budget of `kind`, which runs in real time on 2 CPU cores
    /// (`BENCHMARKS.md`, "Robots: planning in imagination").
    pub fn of(kind: RobotKind) -> PlannerConfig {
        match kind {
            RobotKind::Delivery => PlannerConfig {
                candidates: 96,
                horizon_steps: 25,
                families: 2,
                predict_every_steps: 2,
                lambda: 0.5,
                sigma_accel_mps2: 0.8,
                sigma_lateral_m: 0.3,
                max_lateral_m: 1.0,
                lookahead_m: 1.5,
                safety_margin_m: 0.15,
                clearance_m: 0.6,
                weights: CostWeights::of(kind),
            },
            RobotKind::Car => PlannerConfig {
                candidates: 96,
                horizon_steps: 30,
                families: 2,
                predict_every_steps: 2,
                lambda: 1.0,
                sigma_accel_mps2: 2.0,
                sigma_lateral_m: 0.2,
                max_lateral_m: 0.8,
                lookahead_m: 6.0,
                safety_margin_m: 0.3,
                clearance_m: 1.0,
                weights: CostWeights::of(kind),
            },
        }
    }
}

/// What the last replan decided, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanReport {
    /// The chosen plan's states (steps 1..=H).
    pub plan: Vec<RobotState>,
    /// Collision probability of the chosen plan under its futures.
    pub collision_probability: f64,
    /// Collision probability of the "go" candidate (the naive straight plan).
    pub go_collision_probability: f64,
    pub cost: f64,
    /// Wall time of the prediction in this replan (0 when reused) and of the whole replan (s).
    pub predict_wall_s: f64,
    pub plan_wall_s: f64,
    /// Every candidate's positions at steps 1..=H (twin frame), in candidate order: the
    /// previous mean, the stop, the "go", then the noisy ones (for viewers and logs).
    pub candidates: Vec<Vec<[f64; 2]>>,
    /// Each candidate's cost, in the order of `candidates`.
    pub candidate_costs: Vec<f64>,
}

/// The MPPI planner (module docs) with a predictor.
pub struct MppiPlanner {
    pub config: PlannerConfig,
    predictor: Box<dyn Predictor>,
    mean_a: Vec<f64>,
    mean_d: Vec<f64>,
    futures: Option<Futures>,
    futures_age: usize,
    calls: u64,
    report: PlanReport,
}

struct Rolled {
    states: Vec<RobotState>,
    s_m: Vec<f64>,
    lateral_m: Vec<f64>,
}

fn normal(rng: &mut CounterRng) -> f64 {
    let u1 = rng.next_f64().max(1e-12);
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl MppiPlanner {
    /// A planner with `config` and `predictor`.
    pub fn new(config: PlannerConfig, predictor: Box<dyn Predictor>) -> MppiPlanner {
        let h = config.horizon_steps.max(1);
        MppiPlanner {
            config: PlannerConfig { horizon_steps: h, ..config },
            predictor,
            mean_a: vec![0.0; h],
            mean_d: vec![0.0; h],
            futures: None,
            futures_age: 0,
            calls: 0,
            report: PlanReport::default(),
        }
    }

    /// The predictor's name.
    pub fn predictor_name(&self) -> &'static str {
        self.predictor.name()
    }

    /// What the last replan decided.
    pub fn report(&self) -> &PlanReport {
        &self.report
    }

    /// Forgets the mean and the futures (a new episode).
    pub fn clear(&mut self) {
        self.mean_a.iter_mut().for_each(|v| *v = 0.0);
        self.mean_d.iter_mut().for_each(|v| *v = 0.0);
        self.futures = None;
        self.futures_age = 0;
        self.calls = 0;
    }

    fn roll(&self, input: &PlanInput, a: &[f64], d: &[f64]) -> Rolled {
        let p = input.params;
        let mut s = input.state;
        let mut sm = input.route_s_m;
        let mut out = Rolled {
            states: Vec::with_capacity(a.len()),
            s_m: Vec::with_capacity(a.len()),
            lateral_m: Vec::with_capacity(a.len()),
        };
        for (&ak, &dk) in a.iter().zip(d) {
            let (c, t) = input.route.point_at(sm + self.config.lookahead_m + 0.5 * p.length_m);
            let target = [c[0] - t[1] * dk, c[1] + t[0] * dk];
            let turn = p.pursuit_turn(&s, target);
            s = p.step(&s, &Action { accel_mps2: ak, turn });
            let (ns, lat) = input.route.project(s.point_enu, sm - 1.0, sm + 1.0 + 2.0 * s.speed_mps * DT_S);
            sm = ns;
            out.states.push(s);
            out.s_m.push(sm);
            out.lateral_m.push(lat);
        }
        out
    }

    /// Cost of a rolled candidate against `futures` family `fam` from step `offset`;
    /// returns (cost, collision probability).
    fn cost(&self, input: &PlanInput, r: &Rolled, fut: Option<FamilyFutures<'_>>, buildings_near: bool) -> (f64, f64) {
        let p = input.params;
        let w = &self.config.weights;
        let h = r.states.len();
        let mut c = 0.0;
        let end = input.route.length_m();
        // The plan is judged up to the step it reaches the goal, if it does (module docs).
        let arrival = (0..h).find(|&k| goal_reached(input.route, r.states[k].point_enu, r.s_m[k], input.goal_radius_m));
        let n = arrival.map_or(h, |k| k + 1);
        let (states, s_m) = (&r.states[..n], &r.s_m[..n]);
        // Progress (capped at the route's end).
        match arrival {
            Some(k) => {
                let early_s = (h - 1 - k) as f64 * DT_S;
                c -= w.progress * ((end - input.route_s_m.min(end)) + early_s * p.max_speed_mps);
            }
            None => {
                c -= w.progress * (s_m.last().copied().unwrap_or(input.route_s_m).min(end) - input.route_s_m.min(end))
            }
        }
        // Comfort.
        let mut prev_a = input.state.accel_mps2;
        for s in states {
            let a_lat = s.speed_mps * s.yaw_rate_radps;
            c += w.accel * s.accel_mps2 * s.accel_mps2
                + w.yaw_rate * s.yaw_rate_radps * s.yaw_rate_radps
                + w.lateral_accel * a_lat * a_lat;
            let j = (s.accel_mps2 - prev_a) / DT_S;
            c += w.jerk * j * j;
            prev_a = s.accel_mps2;
        }
        // Rules.
        let mut in_building = false;
        for (k, s) in states.iter().enumerate() {
            if w.off_area > 0.0 {
                c += w.off_area * input.rules.off_area_m(s.point_enu);
            }
            if w.lateral > 0.0 {
                c += w.lateral * r.lateral_m[k] * r.lateral_m[k];
            }
            // The footprint as the environment checks contacts (every step: a corner clips
            // a wall between two sampled steps), where a building is within reach at all.
            if buildings_near && !in_building {
                let fp = p.footprint(s, 0.0);
                in_building = crate::env::footprint_probes(&fp).iter().any(|&q| input.rules.in_building(q));
            }
        }
        if in_building {
            c += w.building;
        }
        let s_end = s_m.last().copied().unwrap_or(input.route_s_m);
        let front_end = s_end + 0.5 * p.length_m;
        let front_now = input.route_s_m + 0.5 * p.length_m;
        match p.kind {
            RobotKind::Car => {
                let v_end = states.last().map_or(input.state.speed_mps, |s| s.speed_mps);
                for st in &input.route.stops {
                    if st.s_m < front_now - 0.5 {
                        continue;
                    }
                    let state = input.rules.stop_state(st, input.time_s);
                    let dist = st.s_m - front_now;
                    let v = input.state.speed_mps;
                    let can_stop = v * v / (2.0 * 0.7 * p.max_brake_mps2) < dist;
                    // Red is exempt only where even the hardest braking cannot stop before
                    // the line (plans brake that hard; amber keeps the dilemma zone of 0.7).
                    let can_stop_hard = v * v / (2.0 * p.max_brake_mps2) < dist;
                    if front_end < st.s_m {
                        // A plan that ends short of a red line must end able to stop there
                        // braking at half the hardest (module docs).
                        let room = st.s_m - front_end;
                        if state == Some(SignalState::Red)
                            && can_stop_hard
                            && v_end * v_end / (2.0 * 0.5 * p.max_brake_mps2) > room
                        {
                            c += w.red;
                        }
                        continue;
                    }
                    let blocked = match state {
                        Some(SignalState::Red) => dist > -0.5 && (can_stop_hard || v < 1.0),
                        Some(SignalState::Amber) => can_stop,
                        _ => false,
                    };
                    if blocked {
                        c += w.red;
                    }
                }
            }
            RobotKind::Delivery => {
                for x in &input.route.crossings {
                    if front_now > x.s_start_m || front_end < x.s_start_m {
                        continue;
                    }
                    if input.rules.crossing_state(x, input.time_s) == Some(SignalState::Red) {
                        c += w.red;
                    }
                }
            }
        }
        // Collisions against the futures.
        let mut p_coll = 0.0;
        if let Some((samples, accels, offset)) = fut
            && !samples.is_empty()
        {
            let rr = 0.5
                * (p.length_m + 2.0 * self.config.safety_margin_m).hypot(p.width_m + 2.0 * self.config.safety_margin_m);
            let mut hit_sum = 0.0;
            let mut prox_sum = 0.0;
            let mut imposed_sum = 0.0;
            // Where the robot stands now, grown by the margin: an agent within it is judged
            // against the bare footprint (module docs).
            let fp_now = p.footprint(&input.state, self.config.safety_margin_m);
            for (si, sample) in samples.iter().enumerate() {
                let mut hit = 0.0;
                let mut imposed: f64 = 0.0;
                for (k, s) in states.iter().enumerate() {
                    let Some(others) = sample.get(k + offset) else { break };
                    let acc = accels.get(si).and_then(|a| a.get(k + offset));
                    let fp = p.footprint(s, self.config.safety_margin_m);
                    for (j, o) in others.iter().enumerate() {
                        let d = (o.center[0] - s.point_enu[0]).hypot(o.center[1] - s.point_enu[1]);
                        let gap = d - rr - radius_m(o);
                        if gap < IMPOSED_RADIUS_M
                            && let Some(&a) = acc.and_then(|a| a.get(j))
                        {
                            imposed = imposed.max(-a - IMPOSED_BRAKE_FREE_MPS2);
                        }
                        if gap < self.config.clearance_m {
                            let short = self.config.clearance_m - gap.max(0.0);
                            prox_sum += short * short;
                            if gap <= 0.0
                                && hit == 0.0
                                && fp.overlap_depth_m(o) > 0.0
                                && (fp_now.overlap_depth_m(o) <= 0.0 || p.footprint(s, 0.0).overlap_depth_m(o) > 0.0)
                            {
                                let moving = (s.speed_mps / HIT_FULL_SPEED_MPS).clamp(0.0, 1.0);
                                hit = (1.0 - 0.5 * k as f64 / h as f64) * (0.5 + 0.5 * moving);
                            }
                        }
                    }
                }
                if hit > 0.0 {
                    p_coll += 1.0;
                }
                hit_sum += hit;
                imposed_sum += imposed;
            }
            let n = samples.len() as f64;
            p_coll /= n;
            c += w.collision * hit_sum / n + w.proximity * prox_sum / n + w.imposed_brake * imposed_sum / n;
        }
        (c, p_coll)
    }

    fn family_plans(&self, input: &PlanInput) -> Vec<Vec<RobotState>> {
        let h = self.config.horizon_steps + self.config.predict_every_steps;
        let ext = |v: &[f64], last: f64| -> Vec<f64> {
            let mut x = v.to_vec();
            x.resize(h, last);
            x
        };
        let d = ext(&self.mean_d, self.mean_d.last().copied().unwrap_or(0.0));
        let mut plans =
            vec![self.roll(input, &ext(&self.mean_a, self.mean_a.last().copied().unwrap_or(0.0)), &d).states];
        if self.config.families >= 2 {
            plans.push(self.roll(input, &vec![-input.params.max_brake_mps2; h], &d).states);
        }
        if self.config.families >= 3 {
            plans.push(self.roll(input, &vec![input.params.max_accel_mps2; h], &vec![0.0; h]).states);
        }
        plans
    }

    /// One replan (module docs): the action for this step.
    pub fn plan(&mut self, input: &PlanInput) -> Action {
        let t0 = std::time::Instant::now();
        let cfg = self.config.clone();
        let (h, k_n) = (cfg.horizon_steps, cfg.candidates.max(3));
        let p = input.params;
        // Futures.
        let mut predict_wall_s = 0.0;
        if self.futures.is_none() || self.futures_age >= cfg.predict_every_steps.max(1) {
            let t = std::time::Instant::now();
            let plans = self.family_plans(input);
            self.futures = Some(self.predictor.predict(input, &plans, h + cfg.predict_every_steps, self.calls));
            self.futures_age = 0;
            predict_wall_s = t.elapsed().as_secs_f64();
        }
        let futures = self.futures.as_ref().expect("futures were just made");
        let offset = self.futures_age;
        // Candidates.
        let mut rng = CounterRng::new(input.seed ^ self.calls.wrapping_mul(0xD1B5_4A32_D192_ED03), STREAM_MPPI);
        let mut cand_a: Vec<Vec<f64>> = Vec::with_capacity(k_n);
        let mut cand_d: Vec<Vec<f64>> = Vec::with_capacity(k_n);
        cand_a.push(self.mean_a.clone());
        cand_d.push(self.mean_d.clone());
        cand_a.push(vec![-p.max_brake_mps2; h]);
        cand_d.push(self.mean_d.clone());
        cand_a.push(vec![p.max_accel_mps2; h]);
        cand_d.push(vec![0.0; h]);
        while cand_a.len() < k_n {
            let (mut na, mut nd) = (0.0, 0.0);
            let mut a = Vec::with_capacity(h);
            let mut d = Vec::with_capacity(h);
            for t in 0..h {
                na = 0.7 * na + 0.3f64.sqrt() * 1.8 * normal(&mut rng) * cfg.sigma_accel_mps2;
                nd = 0.8 * nd + 0.6 * normal(&mut rng) * cfg.sigma_lateral_m;
                a.push((self.mean_a[t] + na).clamp(-p.max_brake_mps2, p.max_accel_mps2));
                d.push((self.mean_d[t] + nd).clamp(-cfg.max_lateral_m, cfg.max_lateral_m));
            }
            cand_a.push(a);
            cand_d.push(d);
        }
        let rolled: Vec<Rolled> = cand_a.iter().zip(&cand_d).map(|(a, d)| self.roll(input, a, d)).collect();
        // Family of each candidate.
        let fam_of = |r: &Rolled| -> usize {
            if futures.plans.is_empty() || futures.boxes.len() <= 1 {
                return 0;
            }
            let idx = [h / 2, h - 1];
            let mut best = (0, f64::INFINITY);
            for (f, plan) in futures.plans.iter().enumerate() {
                let mut e = 0.0;
                for &i in &idx {
                    let (Some(a), Some(b)) = (r.states.get(i), plan.get(i + offset)) else { continue };
                    e += (a.point_enu[0] - b.point_enu[0]).powi(2) + (a.point_enu[1] - b.point_enu[1]).powi(2);
                }
                if e < best.1 {
                    best = (f, e);
                }
            }
            best.0
        };
        // Buildings within the farthest reach of any candidate (one query per replan).
        let reach_m = 0.5 * p.length_m.hypot(p.width_m)
            + cfg.max_lateral_m
            + p.max_speed_mps.max(input.state.speed_mps) * DT_S * h as f64
            + 1.0;
        let buildings_near = input.rules.building_near(input.state.point_enu, reach_m);
        let costs: Vec<(f64, f64)> = rolled
            .iter()
            .map(|r| {
                let f = fam_of(r);
                self.cost(input, r, futures.family(f, offset), buildings_near)
            })
            .collect();
        let c_min = costs.iter().map(|c| c.0).fold(f64::INFINITY, f64::min);
        let lambda = cfg.lambda.max(1e-6);
        let weights: Vec<f64> = costs.iter().map(|c| (-(c.0 - c_min) / lambda).exp()).collect();
        let wsum: f64 = weights.iter().sum();
        let mut new_a = vec![0.0; h];
        let mut new_d = vec![0.0; h];
        for (k, wk) in weights.iter().enumerate() {
            for t in 0..h {
                new_a[t] += wk * cand_a[k][t] / wsum;
                new_d[t] += wk * cand_d[k][t] / wsum;
            }
        }
        let mean_roll = self.roll(input, &new_a, &new_d);
        let f = fam_of(&mean_roll);
        let mut chosen = (self.cost(input, &mean_roll, futures.family(f, offset), buildings_near), mean_roll);
        let best_k = (0..costs.len()).min_by(|&a, &b| costs[a].0.total_cmp(&costs[b].0)).expect("candidates exist");
        if chosen.0.0 > costs[best_k].0 + lambda {
            new_a = cand_a[best_k].clone();
            new_d = cand_d[best_k].clone();
            let r = self.roll(input, &new_a, &new_d);
            chosen = (costs[best_k], r);
        }
        let go_p = costs[2].1;
        // The action: the first step of the mean.
        let (c, t) = input.route.point_at(input.route_s_m + cfg.lookahead_m + 0.5 * p.length_m);
        let target = [c[0] - t[1] * new_d[0], c[1] + t[0] * new_d[0]];
        let action = Action { accel_mps2: new_a[0], turn: p.pursuit_turn(&input.state, target) };
        // Shift for the next replan.
        self.mean_a = new_a[1..].to_vec();
        self.mean_a.push(*new_a.last().expect("horizon >= 1"));
        self.mean_d = new_d[1..].to_vec();
        self.mean_d.push(*new_d.last().expect("horizon >= 1"));
        self.futures_age += 1;
        self.calls += 1;
        self.report = PlanReport {
            plan: chosen.1.states,
            collision_probability: chosen.0.1,
            go_collision_probability: go_p,
            cost: chosen.0.0,
            predict_wall_s,
            plan_wall_s: t0.elapsed().as_secs_f64(),
            candidates: rolled.iter().map(|r| r.states.iter().map(|s| s.point_enu).collect()).collect(),
            candidate_costs: costs.iter().map(|c| c.0).collect(),
        };
        action
    }
}

impl Controller for MppiPlanner {
    fn name(&self) -> String {
        format!("mppi+{}", self.predictor.name())
    }
    fn reset(&mut self, _env: &Env) {
        self.clear();
    }
    fn act(&mut self, env: &Env, _obs: &Observation) -> Action {
        let (Ok((route, route_s_m)), Ok(history), Ok(rules), Ok(state), Ok(time_s)) =
            (env.route(), env.history(), env.rules(), env.robot(), env.time_s())
        else {
            return Action { accel_mps2: -env.config().robot.max_brake_mps2, turn: 0.0 };
        };
        let params = env.config().robot;
        let input = PlanInput {
            params: &params,
            time_s,
            state,
            route,
            route_s_m,
            history,
            rules: &rules,
            seed: env.seed(),
            goal_radius_m: env.config().goal_radius_m,
        };
        self.plan(&input)
    }
}

/// A route follower with no prediction at all: full speed along the route (the naive
/// straight plan, for comparisons and tests).
#[derive(Clone, Debug, Default)]
pub struct RouteFollower {
    /// Target speed as a fraction of the robot's top speed (0 → 1).
    pub speed_fraction: f64,
}

impl Controller for RouteFollower {
    fn name(&self) -> String {
        "route-follower".to_string()
    }
    fn act(&mut self, env: &Env, _obs: &Observation) -> Action {
        let p = env.config().robot;
        let (Ok((route, s)), Ok(state)) = (env.route(), env.robot()) else { return Action::default() };
        let frac = if self.speed_fraction > 0.0 { self.speed_fraction.min(1.0) } else { 1.0 };
        let look = if p.kind == RobotKind::Car { 6.0 } else { 1.5 };
        let (target, _) = route.point_at(s + look + 0.5 * p.length_m);
        let dv = frac * p.max_speed_mps - state.speed_mps;
        Action { accel_mps2: dv / 0.5, turn: p.pursuit_turn(&state, target) }
    }
}
