//! The teacher simulation driving the agents on screen.
//!
//! The simulation (`swm_sim::Simulation`) steps at a fixed [`DT_S`] = 0.1 s. The viewer
//! keeps a clock ([`SimClock`]): every frame adds the frame's duration times the speed-up
//! to an accumulator and runs as many whole steps as fit (at most
//! [`MAX_STEPS_PER_FRAME`], so a slow frame does not snowball). Agents are drawn between
//! the last two steps: `alpha = accumulator / DT_S` interpolates position linearly and
//! heading along the shorter arc ([`interpolate`]), so motion is smooth at any frame rate.
//! (Drawing runs one step, 0.1 s, behind the simulation so that it always has two steps to
//! blend.)
//!
//! Frames: the twin frame is `x` east, `y` north, `z` up; bevy's is `x` east, `y` up,
//! `z` south ([`bevy_from_twin`]). A heading `θ` (radians counter-clockwise from east)
//! is a rotation of `θ` about bevy's `+y`.
//!
//! Headless runs use a fixed simulated time per frame ([`FrameDt::Fixed`]) so that a
//! screenshot after `n` frames is the same whatever the machine's speed: one seed and one
//! frame count decide the picture.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bevy::prelude::*;
use swm_sim::{AgentKind, DT_S, SimConfig, Simulation, TrajectoryRecord};
use swm_twin::Twin;

/// Most simulation steps run in one frame.
pub const MAX_STEPS_PER_FRAME: u32 = 20;
/// Frames of history kept for the world model (1.1 s at 10 Hz).
pub const HISTORY_STEPS: usize = 11;

/// Twin frame to bevy world (`(x, y, z)` → `(x, z, -y)`).
pub fn bevy_from_twin(x_m: f64, y_m: f64, z_m: f64) -> Vec3 {
    Vec3::new(x_m as f32, z_m as f32, -y_m as f32)
}

/// Bevy world to twin frame: `(x, y)` east and north, and `z` up.
pub fn twin_from_bevy(p: Vec3) -> [f64; 3] {
    [p.x as f64, -p.z as f64, p.y as f64]
}

/// The twin we look at.
#[derive(Resource, Clone)]
pub struct TwinResource(pub Arc<Twin>);

/// How much simulated time a frame covers before the speed-up.
#[derive(Resource, Clone, Copy, Debug, PartialEq)]
pub enum FrameDt {
    /// The real duration of the frame (`Time<Real>`), capped at 0.25 s.
    Real,
    /// A fixed duration per frame (s): headless, reproducible screenshots.
    Fixed(f64),
}

/// Simulation parameters the panel can change (a change restarts the simulation).
#[derive(Clone, Debug, PartialEq)]
pub struct SimParams {
    /// The run's seed.
    pub seed: u64,
    /// Vehicles kept in the district at density 1.
    pub vehicles: u32,
    /// Pedestrians at density 1.
    pub pedestrians: u32,
    /// Scales vehicles and pedestrians.
    pub density: f64,
    /// Simulated seconds run before the first frame (traffic already flowing).
    pub preroll_s: f64,
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams { seed: 1, vehicles: 300, pedestrians: 200, density: 1.0, preroll_s: 20.0 }
    }
}

/// Play, pause, step and speed-up of simulated time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimClock {
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Whether time stands still.
    pub paused: bool,
    /// Steps requested while paused (the step key).
    pub pending_steps: u32,
    /// Simulated time not yet stepped (s, in `[0, DT_S)` after `advance`).
    pub accumulator_s: f64,
}

impl Default for SimClock {
    fn default() -> Self {
        SimClock { speed: 1.0, paused: false, pending_steps: 0, accumulator_s: 0.0 }
    }
}

impl SimClock {
    /// Adds a frame of `frame_s` seconds; returns the whole steps to run now.
    pub fn advance(&mut self, frame_s: f64) -> u32 {
        let mut steps = std::mem::take(&mut self.pending_steps);
        if !self.paused && frame_s.is_finite() && frame_s > 0.0 {
            self.accumulator_s += frame_s * self.speed.max(0.0);
            let whole = (self.accumulator_s / DT_S + 1e-9).floor();
            self.accumulator_s = (self.accumulator_s - whole * DT_S).max(0.0);
            steps += whole as u32;
        }
        if steps > MAX_STEPS_PER_FRAME {
            // Drop the backlog rather than fall further behind.
            self.accumulator_s = 0.0;
            steps = MAX_STEPS_PER_FRAME;
        }
        steps
    }

    /// Interpolation weight between the last two steps.
    pub fn alpha(&self) -> f32 {
        (self.accumulator_s / DT_S).clamp(0.0, 1.0) as f32
    }
}

/// An agent's pose and attributes at one step (twin frame).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgentState {
    /// Car, bus, truck or pedestrian.
    pub kind: AgentKind,
    /// Length along the heading (m).
    pub length_m: f32,
    /// Width (m).
    pub width_m: f32,
    /// Position, twin frame (m).
    pub position_m: [f64; 3],
    /// Radians counter-clockwise from east.
    pub heading_rad: f64,
    /// Speed (m/s).
    pub speed_mps: f64,
    /// Lane index, `None` in junctions and for pedestrians.
    pub lane: Option<u32>,
}

impl From<&TrajectoryRecord> for AgentState {
    fn from(r: &TrajectoryRecord) -> Self {
        AgentState {
            kind: r.kind,
            length_m: r.length_m,
            width_m: r.width_m,
            position_m: [r.x_m, r.y_m, r.z_m],
            heading_rad: r.heading_rad,
            speed_mps: r.speed_mps,
            lane: r.lane,
        }
    }
}

/// Height drawn for each kind (m).
pub fn height_m(kind: AgentKind) -> f32 {
    match kind {
        AgentKind::Car => 1.5,
        AgentKind::Bus => 3.2,
        AgentKind::Truck => 3.0,
        AgentKind::Pedestrian => 1.75,
    }
}

/// The pose between `prev` and `curr` at `alpha` in `[0, 1]`: position linearly, heading
/// along the shorter arc. Returns the twin-frame position and heading.
pub fn interpolate(prev: &AgentState, curr: &AgentState, alpha: f32) -> ([f64; 3], f64) {
    let a = alpha.clamp(0.0, 1.0) as f64;
    let p = std::array::from_fn(|k| prev.position_m[k] + (curr.position_m[k] - prev.position_m[k]) * a);
    let mut d = (curr.heading_rad - prev.heading_rad).rem_euclid(std::f64::consts::TAU);
    if d > std::f64::consts::PI {
        d -= std::f64::consts::TAU;
    }
    (p, prev.heading_rad + d * a)
}

/// The bevy transform of an agent at a twin-frame pose: a unit box (vehicles) or the
/// 1 m × 2 m capsule (pedestrians) scaled to the agent's size, standing on the ground.
pub fn agent_transform(state: &AgentState, position_m: [f64; 3], heading_rad: f64) -> Transform {
    let h = height_m(state.kind);
    let centre = bevy_from_twin(position_m[0], position_m[1], position_m[2]) + Vec3::Y * (0.5 * h + 0.02);
    let scale = if state.kind == AgentKind::Pedestrian {
        // The capsule mesh is 1 m across and 2 m tall.
        Vec3::new(state.width_m.max(0.3), 0.5 * h, state.width_m.max(0.3))
    } else {
        Vec3::new(state.length_m.max(0.5), h, state.width_m.max(0.5))
    };
    Transform { translation: centre, rotation: Quat::from_rotation_y(heading_rad as f32), scale }
}

/// The teacher's next step, computed on a worker thread while the frames of the current
/// one are drawn: the simulation and that step's records, and its wall time (s).
type Ahead = std::thread::JoinHandle<(Simulation, Vec<TrajectoryRecord>, f64)>;

/// The running simulation and the agents' last two steps.
///
/// Without a robot, the teacher runs one step ahead of what is drawn, on a worker thread
/// ([`SimResource::prefetch`]): a step (tens of milliseconds with thousands of agents) then
/// overlaps the frames drawn before it is due instead of stalling the frame it falls in. The
/// steps are the same ones, in the same order: only when they are computed changes. (Under
/// the world model's traffic the teacher still steps, for the clock and the signal phases,
/// and so also on the worker.) [`SimResource::simulation`] waits for a step in flight and
/// takes it in, so whoever touches the simulation finds it at the step drawn.
#[derive(Resource)]
pub struct SimResource {
    /// The teacher (`None` while its next step runs on the worker).
    sim: Option<Simulation>,
    /// The step in flight, if any.
    ahead: Option<Ahead>,
    /// The simulated time of the step drawn (s) and its index.
    time_s: f64,
    step_index: u32,
    /// The signal plans (fixed for the run; kept apart so they can be read while a step runs).
    signals: Arc<swm_sim::signal::SignalController>,
    /// The parameters it was started with.
    pub params: SimParams,
    /// Agents at the step before the last.
    pub prev: BTreeMap<u64, AgentState>,
    /// Agents at the last step.
    pub curr: BTreeMap<u64, AgentState>,
    /// The last [`HISTORY_STEPS`] steps' records, oldest first (the world model's input).
    pub history: VecDeque<Vec<TrajectoryRecord>>,
    /// Play, pause, speed.
    pub clock: SimClock,
    /// Total steps run since the start (for the panel).
    pub steps_run: u64,
    /// Mean wall time of one simulation step over the last frames (s).
    pub step_wall_s: f64,
    /// Who moves the agents drawn.
    pub traffic: Traffic,
    /// Where the world model runs when it drives the traffic.
    pub model_backend: crate::gpu_traffic::ModelBackend,
    /// The GPU engine made for the model the last time it drove (kept for the next time).
    pub gpu_engine: Option<Arc<crate::gpu_traffic::GpuTrafficEngine>>,
}

/// Who moves the agents the viewer draws.
pub enum Traffic {
    /// The teacher simulation.
    Teacher,
    /// The world model (CPU, feasibility masks on), taking over from the teacher's last
    /// second; the teacher keeps running underneath for the clock and the signal phases.
    Model(Box<ModelTraffic>),
    /// The same on the GPU engine, a chunk of steps ahead on a worker thread
    /// ([`crate::gpu_traffic`]).
    ModelGpu(Box<crate::gpu_traffic::GpuTraffic>),
}

/// The world model driving every agent, frame by frame.
pub struct ModelTraffic {
    live: swm_model::LiveRollout<'static>,
    model: Arc<crate::imagination::LoadedModel>,
    /// Agents farther than this outside the twin's bounding box are dropped (m).
    bbox_m: [f64; 4],
}

impl SimResource {
    /// Starts the simulation on `twin` and runs the preroll.
    pub fn start(twin: Arc<Twin>, params: SimParams) -> Result<Self, crate::ViewerError> {
        let config = SimConfig {
            seed: params.seed,
            vehicles: params.vehicles,
            pedestrians: params.pedestrians,
            duration_s: 0.0,
            record_every_steps: 1,
            density: params.density,
        };
        let sim = Simulation::new(twin, config).map_err(crate::ViewerError::Sim)?;
        let signals = Arc::new(sim.signals().clone());
        let mut me = SimResource {
            time_s: sim.time_s(),
            step_index: sim.step_index(),
            sim: Some(sim),
            ahead: None,
            signals,
            params,
            prev: BTreeMap::new(),
            curr: BTreeMap::new(),
            history: VecDeque::new(),
            clock: SimClock::default(),
            steps_run: 0,
            step_wall_s: 0.0,
            traffic: Traffic::Teacher,
            model_backend: crate::gpu_traffic::ModelBackend::Auto,
            gpu_engine: None,
        };
        let preroll = (me.params.preroll_s.max(0.0) / DT_S).round() as u32;
        for _ in 0..preroll {
            me.step();
        }
        if preroll == 0 {
            me.snapshot();
        }
        Ok(me)
    }

    /// One simulation step; the last two states move along. With model traffic the model
    /// advances every agent one frame (the teacher steps too, unseen).
    pub fn step(&mut self) {
        let t0 = std::time::Instant::now();
        // The teacher's step: computed ahead on the worker, or here.
        let (teacher, teacher_wall_s) = match self.ahead.take() {
            Some(ahead) => {
                let (sim, records, wall_s) = ahead.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                self.sim = Some(sim);
                (records, wall_s)
            }
            None => {
                let sim = self.sim.as_mut().expect("the simulation is here when no step is in flight");
                sim.step();
                (sim.records(), t0.elapsed().as_secs_f64())
            }
        };
        match &mut self.traffic {
            Traffic::Teacher => self.took_step(teacher, teacher_wall_s),
            Traffic::Model(m) => {
                let mut out = Vec::new();
                m.live.step(&m.model.net, &m.model.map, None, &mut out);
                let b = m.bbox_m;
                m.live.agents.retain(|a| {
                    let p = a.history.last().map_or([0.0, 0.0], |k| k.point_enu);
                    p[0] >= b[0] && p[0] <= b[2] && p[1] >= b[1] && p[1] <= b[3]
                });
                let kept: std::collections::BTreeSet<u64> = m.live.agents.iter().map(|a| a.id).collect();
                let records = out.into_iter().map(|(_, r)| r).filter(|r| kept.contains(&r.agent_id)).collect();
                self.took_step(records, t0.elapsed().as_secs_f64());
            }
            Traffic::ModelGpu(g) => match g.next_frame() {
                Ok(records) => self.took_step(records, t0.elapsed().as_secs_f64()),
                Err(e) => {
                    tracing::error!(error = %e, "the GPU traffic failed: the teacher drives again");
                    self.traffic = Traffic::Teacher;
                    self.took_step(teacher, teacher_wall_s);
                }
            },
        }
    }

    /// Bookkeeping of a step taken in: its records become the drawn step.
    fn took_step(&mut self, records: Vec<TrajectoryRecord>, wall_s: f64) {
        self.steps_run += 1;
        if let Some(sim) = &self.sim {
            (self.time_s, self.step_index) = (sim.time_s(), sim.step_index());
        }
        self.snapshot_records(records);
        self.step_wall_s = if self.step_wall_s == 0.0 { wall_s } else { 0.9 * self.step_wall_s + 0.1 * wall_s };
    }

    /// Starts the teacher's next step on a worker thread (nothing when one is already in
    /// flight). The next [`SimResource::step`] takes it in: as the step drawn with teacher
    /// traffic, as the clock and the signal phases under the world model's.
    pub fn prefetch(&mut self) {
        if self.ahead.is_some() {
            return;
        }
        let Some(mut sim) = self.sim.take() else { return };
        let spawned = std::thread::Builder::new().name("swm-teacher-step".into()).spawn(move || {
            let t0 = std::time::Instant::now();
            sim.step();
            let records = sim.records();
            (sim, records, t0.elapsed().as_secs_f64())
        });
        match spawned {
            Ok(h) => self.ahead = Some(h),
            // No thread to be had: the simulation went with the closure; this cannot be
            // recovered, so say so plainly.
            Err(e) => panic!("could not start the simulation's worker thread: {e}"),
        }
    }

    /// The simulation, at the step drawn: a step in flight is waited for and taken in first
    /// (under the world model's traffic the teacher's step alone: the model's frames are
    /// not advanced).
    pub fn simulation(&mut self) -> &mut Simulation {
        if let Some(ahead) = self.ahead.take() {
            let (sim, records, wall_s) = ahead.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            self.sim = Some(sim);
            if matches!(self.traffic, Traffic::Teacher) {
                self.took_step(records, wall_s);
            } else if let Some(sim) = &self.sim {
                (self.time_s, self.step_index) = (sim.time_s(), sim.step_index());
            }
        }
        self.sim.as_mut().expect("the simulation is here when no step is in flight")
    }

    /// Whether the teacher's next step is running on the worker now.
    pub fn step_in_flight(&self) -> bool {
        self.ahead.is_some()
    }

    /// Simulated time of the step drawn (s).
    pub fn time_s(&self) -> f64 {
        self.time_s
    }

    /// Index of the step drawn.
    pub fn step_index(&self) -> u32 {
        self.step_index
    }

    /// The run's signal plans.
    pub fn signals(&self) -> &swm_sim::signal::SignalController {
        &self.signals
    }

    /// The signal plans, shared.
    pub fn signals_arc(&self) -> Arc<swm_sim::signal::SignalController> {
        self.signals.clone()
    }

    /// Hands the agents to the world model: it continues from the last second of records
    /// (the run's seed keys its draws), on the processor [`SimResource::model_backend`]
    /// chooses. Agents farther than 20 m outside `twin`'s bounding box are dropped as they
    /// leave. Fails only when the GPU was asked for and there is none.
    pub fn drive_with_model(&mut self, model: Arc<crate::imagination::LoadedModel>, twin: &Twin) -> Result<(), String> {
        use crate::gpu_traffic::{GpuTraffic, GpuTrafficEngine, ModelBackend};
        self.simulation();
        let history: Vec<Vec<TrajectoryRecord>> = self.history.iter().cloned().collect();
        let b = twin.meta.bbox_m;
        let bbox_m = [b[0] - 20.0, b[1] - 20.0, b[2] + 20.0, b[3] + 20.0];
        let pref = match self.model_backend {
            ModelBackend::Cpu => None,
            ModelBackend::Auto => Some(swm_gpu::AdapterPreference::Hardware),
            ModelBackend::Gpu => Some(swm_gpu::AdapterPreference::Auto),
        };
        if let Some(pref) = pref {
            let engine = match &self.gpu_engine {
                Some(e) if e.serves(&model) => Ok(e.clone()),
                _ => GpuTrafficEngine::new(model.clone(), pref).map(Arc::new),
            };
            match engine {
                Ok(engine) => {
                    tracing::info!(adapter = engine.adapter_name(), "the world model drives the traffic on the GPU");
                    self.gpu_engine = Some(engine.clone());
                    self.traffic =
                        Traffic::ModelGpu(Box::new(GpuTraffic::start(engine, &history, self.params.seed, bbox_m)));
                    return Ok(());
                }
                Err(e) if self.model_backend == ModelBackend::Gpu => return Err(format!("GPU model traffic: {e}")),
                Err(e) => tracing::info!(reason = %e, "no hardware GPU for the model traffic: it runs on the CPU"),
            }
        }
        let live = swm_model::LiveRollout::from_history(
            &history,
            &model.map,
            self.params.seed,
            swm_model::SamplingConfig::default(),
        );
        self.traffic = Traffic::Model(Box::new(ModelTraffic { live, model, bbox_m }));
        Ok(())
    }

    /// Hands the agents back to the teacher (they jump to where the teacher has them now).
    pub fn drive_with_teacher(&mut self) {
        self.simulation();
        self.traffic = Traffic::Teacher;
        self.snapshot();
    }

    /// Who drives, for the panel.
    pub fn traffic_label(&self) -> String {
        match &self.traffic {
            Traffic::Teacher => "teacher simulation".into(),
            Traffic::Model(_) => "world model (CPU)".into(),
            Traffic::ModelGpu(g) => format!("world model (GPU: {})", g.adapter_name()),
        }
    }

    /// (vehicles, pedestrians) drawn now.
    pub fn counts(&self) -> (usize, usize) {
        let peds = self.curr.values().filter(|a| a.kind == AgentKind::Pedestrian).count();
        (self.curr.len() - peds, peds)
    }

    fn snapshot(&mut self) {
        let records = self.simulation().records();
        self.snapshot_records(records);
    }

    fn snapshot_records(&mut self, records: Vec<TrajectoryRecord>) {
        self.prev = std::mem::take(&mut self.curr);
        self.curr = records.iter().map(|r| (r.agent_id, AgentState::from(r))).collect();
        self.history.push_back(records);
        while self.history.len() > HISTORY_STEPS {
            self.history.pop_front();
        }
    }

    /// The agent's pose now (interpolated), if it exists.
    pub fn pose(&self, id: u64) -> Option<(AgentState, [f64; 3], f64)> {
        let curr = self.curr.get(&id)?;
        let prev = self.prev.get(&id).unwrap_or(curr);
        let (p, h) = interpolate(prev, curr, self.clock.alpha());
        Some((*curr, p, h))
    }
}

/// Marks the entity drawing agent `0`.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentMarker(pub u64);

/// Shared meshes and materials of agents.
#[derive(Resource, Clone)]
pub struct AgentAssets {
    /// Unit cube (vehicles).
    pub cuboid: Handle<Mesh>,
    /// Capsule 1 m across, 2 m tall (pedestrians).
    pub capsule: Handle<Mesh>,
    /// Materials by kind: car, bus, truck, pedestrian.
    pub materials: [Handle<StandardMaterial>; 4],
    /// The selected agent's material.
    pub selected: Handle<StandardMaterial>,
}

fn kind_index(kind: AgentKind) -> usize {
    match kind {
        AgentKind::Car => 0,
        AgentKind::Bus => 1,
        AgentKind::Truck => 2,
        AgentKind::Pedestrian => 3,
    }
}

/// The agent the user selected (clicked), if any.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selection(pub Option<u64>);

/// Creates the agents' meshes and materials. With `highlight`, every agent is drawn in one
/// unlit magenta (tests find agents by colour).
pub fn make_agent_assets(
    meshes: &mut Assets<Mesh>,
    materials: &mut Assets<StandardMaterial>,
    highlight: bool,
) -> AgentAssets {
    let make = |materials: &mut Assets<StandardMaterial>, srgb: [f32; 3]| {
        let color = if highlight { Color::srgb(1.0, 0.0, 1.0) } else { Color::srgb(srgb[0], srgb[1], srgb[2]) };
        materials.add(StandardMaterial { base_color: color, perceptual_roughness: 0.5, unlit: highlight, ..default() })
    };
    AgentAssets {
        cuboid: meshes.add(Cuboid::new(1.0, 1.0, 1.0)),
        capsule: meshes.add(Capsule3d::new(0.5, 1.0)),
        materials: [
            make(materials, [0.85, 0.12, 0.12]),
            make(materials, [0.1, 0.45, 0.85]),
            make(materials, [0.35, 0.25, 0.6]),
            make(materials, [0.2, 0.75, 0.3]),
        ],
        selected: materials.add(StandardMaterial {
            base_color: Color::srgb(1.0, 0.85, 0.0),
            emissive: LinearRgba::rgb(0.6, 0.5, 0.0),
            ..default()
        }),
    }
}

/// Runs the steps due this frame.
/// A robot, when there is one, steps with the simulation
/// ([`Robots::step_with`](crate::robot::Robots::step_with)).
pub fn advance_sim(
    mut sim: ResMut<SimResource>,
    frame_dt: Res<FrameDt>,
    time: Res<Time<Real>>,
    robots: Option<ResMut<crate::robot::Robots>>,
    twin: Res<TwinResource>,
) {
    let frame_s = match *frame_dt {
        FrameDt::Real => time.delta_secs_f64().min(0.25),
        FrameDt::Fixed(s) => s,
    };
    let steps = sim.clock.advance(frame_s);
    // A robot steps with the teacher's traffic only (it stands still while the model drives).
    let teacher = matches!(sim.traffic, Traffic::Teacher);
    let mut robots = robots.filter(|r| r.robot.is_some() && teacher);
    for _ in 0..steps {
        match robots.as_deref_mut() {
            Some(r) => r.step_with(&mut sim, &twin.0),
            None => sim.step(),
        }
    }
    // Without a robot, the teacher's next step runs while the frames before it are drawn.
    // (A robot's step needs its action first, so it stays in step with the frame.)
    if robots.is_none() {
        sim.prefetch();
    }
}

/// Spawns, moves and despawns the agents' entities to match the simulation.
pub fn sync_agents(
    mut commands: Commands,
    sim: Res<SimResource>,
    assets: Res<AgentAssets>,
    selection: Res<Selection>,
    mut existing: Query<(Entity, &AgentMarker, &mut Transform, &mut MeshMaterial3d<StandardMaterial>)>,
) {
    let alpha = sim.clock.alpha();
    let mut seen = std::collections::BTreeSet::new();
    for (entity, marker, mut transform, mut material) in &mut existing {
        match sim.curr.get(&marker.0) {
            Some(curr) => {
                let prev = sim.prev.get(&marker.0).unwrap_or(curr);
                let (p, h) = interpolate(prev, curr, alpha);
                *transform = agent_transform(curr, p, h);
                let want = if selection.0 == Some(marker.0) {
                    &assets.selected
                } else {
                    &assets.materials[kind_index(curr.kind)]
                };
                if material.0 != *want {
                    material.0 = want.clone();
                }
                seen.insert(marker.0);
            }
            None => commands.entity(entity).despawn(),
        }
    }
    for (id, curr) in &sim.curr {
        if seen.contains(id) {
            continue;
        }
        let prev = sim.prev.get(id).unwrap_or(curr);
        let (p, h) = interpolate(prev, curr, alpha);
        let mesh = if curr.kind == AgentKind::Pedestrian { &assets.capsule } else { &assets.cuboid };
        commands.spawn((
            AgentMarker(*id),
            Mesh3d(mesh.clone()),
            MeshMaterial3d(assets.materials[kind_index(curr.kind)].clone()),
            agent_transform(curr, p, h),
        ));
    }
}

/// Ray against an oriented box: the distance along the (unit) ray to the first hit, if any.
/// The box is `half_extents` around `centre`, rotated by `rotation`.
pub fn ray_box(origin: Vec3, dir: Vec3, centre: Vec3, half_extents: Vec3, rotation: Quat) -> Option<f32> {
    let inv = rotation.inverse();
    let o = inv * (origin - centre);
    let d = inv * dir;
    let (mut t_min, mut t_max) = (f32::NEG_INFINITY, f32::INFINITY);
    for k in 0..3 {
        let (ok, dk, hk) = (o[k], d[k], half_extents[k]);
        if dk.abs() < 1e-9 {
            if ok.abs() > hk {
                return None;
            }
        } else {
            let (a, b) = ((-hk - ok) / dk, (hk - ok) / dk);
            t_min = t_min.max(a.min(b));
            t_max = t_max.min(a.max(b));
            if t_min > t_max {
                return None;
            }
        }
    }
    if t_max < 0.0 {
        return None;
    }
    Some(t_min.max(0.0))
}

/// The agent whose box the ray hits first (with a little slack around small agents so
/// pedestrians can be clicked), among `(id, transform)` pairs of unit-box agents.
pub fn pick_agent<'a>(origin: Vec3, dir: Vec3, agents: impl IntoIterator<Item = (u64, &'a Transform)>) -> Option<u64> {
    let dir = dir.normalize_or_zero();
    if dir == Vec3::ZERO {
        return None;
    }
    let mut best: Option<(f32, u64)> = None;
    for (id, t) in agents {
        let half = (0.5 * t.scale).max(Vec3::splat(0.6));
        if let Some(d) = ray_box(origin, dir, t.translation, half, t.rotation)
            && best.is_none_or(|(bd, bid)| d < bd || (d == bd && id < bid))
        {
            best = Some((d, id));
        }
    }
    best.map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(x: f64, heading: f64) -> AgentState {
        AgentState {
            kind: AgentKind::Car,
            length_m: 4.5,
            width_m: 1.8,
            position_m: [x, 0.0, 0.0],
            heading_rad: heading,
            speed_mps: 10.0,
            lane: Some(3),
        }
    }

    #[test]
    fn interpolation_takes_the_short_way_round() {
        let (p, h) = interpolate(&state(0.0, 3.0), &state(10.0, -3.0), 0.5);
        assert!((p[0] - 5.0).abs() < 1e-12);
        // From 3.0 to -3.0 rad the short way passes through pi.
        assert!((h.rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI).abs() < 1e-9, "{h}");
        let (p0, h0) = interpolate(&state(0.0, 1.0), &state(10.0, 1.2), 0.0);
        assert_eq!((p0[0], h0), (0.0, 1.0));
        let (p1, h1) = interpolate(&state(0.0, 1.0), &state(10.0, 1.2), 1.0);
        assert!((p1[0] - 10.0).abs() < 1e-12 && (h1 - 1.2).abs() < 1e-12);
    }

    #[test]
    fn clock_runs_whole_steps_and_keeps_the_rest() {
        let mut c = SimClock::default();
        assert_eq!(c.advance(0.25), 2);
        assert!((c.accumulator_s - 0.05).abs() < 1e-9);
        assert!((c.alpha() - 0.5).abs() < 1e-6);
        c.speed = 4.0;
        assert_eq!(c.advance(0.1), 4);
        c.paused = true;
        assert_eq!(c.advance(1.0), 0);
        c.pending_steps = 1;
        assert_eq!(c.advance(1.0), 1);
        c.paused = false;
        c.speed = 1000.0;
        assert_eq!(c.advance(1.0), MAX_STEPS_PER_FRAME);
    }

    #[test]
    fn heading_is_a_rotation_about_up() {
        let s = state(0.0, std::f64::consts::FRAC_PI_2);
        let t = agent_transform(&s, [0.0, 0.0, 0.0], s.heading_rad);
        // Facing north: bevy's forward (+x of the box) points to -z.
        let fwd = t.rotation * Vec3::X;
        assert!((fwd - Vec3::new(0.0, 0.0, -1.0)).length() < 1e-5, "{fwd}");
        assert_eq!(t.scale, Vec3::new(4.5, 1.5, 1.8));
        let back = twin_from_bevy(bevy_from_twin(3.0, 4.0, 5.0));
        assert_eq!(back, [3.0, 4.0, 5.0]);
    }

    #[test]
    fn rays_hit_the_nearest_oriented_box() {
        let a = Transform {
            translation: Vec3::new(0.0, 0.75, 0.0),
            rotation: Quat::from_rotation_y(0.7),
            scale: Vec3::new(4.5, 1.5, 1.8),
        };
        let b = Transform { translation: Vec3::new(0.0, 0.75, 10.0), ..a };
        let from_above = Vec3::new(0.0, 50.0, 0.0);
        assert_eq!(pick_agent(from_above, -Vec3::Y, [(7, &a), (8, &b)]), Some(7));
        assert_eq!(pick_agent(Vec3::new(0.0, 50.0, 10.0), -Vec3::Y, [(7, &a), (8, &b)]), Some(8));
        // Along +z through both: the nearer one.
        assert_eq!(pick_agent(Vec3::new(0.0, 0.75, -20.0), Vec3::Z, [(8, &b), (7, &a)]), Some(7));
        assert_eq!(pick_agent(Vec3::new(30.0, 50.0, 0.0), -Vec3::Y, [(7, &a)]), None);
        // A point inside the rotated box's corner region but outside an axis-aligned reading.
        let d = ray_box(Vec3::new(1.8, 50.0, -1.2), -Vec3::Y, a.translation, 0.5 * a.scale, a.rotation);
        assert!(d.is_some());
    }
}
