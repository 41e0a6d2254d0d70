//! Shared test helpers.
#![allow(dead_code)]

use std::sync::Arc;

use swm_dataset::{Scenario, ScenarioOptions};
use swm_eval::{TeacherEvalOptions, TeacherEvalSet, teacher_eval_set};
use swm_gpu::{AdapterPreference, GpuContext, GpuError};
use swm_model::map::{MapContext, make_path};
use swm_sim::{AgentKind, SimConfig, TrajectoryRecord};

/// A context on the best adapter. Without any adapter: fails under `CI=true` (CI installs
/// Mesa's lavapipe), otherwise prints why and returns `None` so the test is skipped.
pub fn ctx() -> Option<GpuContext> {
    match GpuContext::new(AdapterPreference::Auto) {
        Ok(c) => Some(c),
        Err(e @ GpuError::NoAdapter { .. }) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but no GPU adapter: {e} (install mesa-vulkan-drivers)");
            }
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// A small deterministic generator for test inputs (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// Uniform in [lo, hi).
    pub fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

pub fn transform(p: [f64; 2], angle: f64, shift: [f64; 2]) -> [f64; 2] {
    let (s, c) = angle.sin_cos();
    [c * p[0] - s * p[1] + shift[0], s * p[0] + c * p[1] + shift[1]]
}

/// Two-way road with a curve (the swm_model tests' fixture), rotated and shifted far from
/// the origin so f32 positions would not do.
pub fn road(angle: f64, shift: [f64; 2]) -> MapContext {
    let t = |p: [f64; 2]| transform(p, angle, shift);
    let east: Vec<[f64; 2]> = (0..=60).map(|i| t([-200.0 + 10.0 * i as f64, 0.0])).collect();
    let west: Vec<[f64; 2]> = (0..=60).map(|i| t([400.0 - 10.0 * i as f64, 3.5])).collect();
    let curve: Vec<[f64; 2]> =
        (0..=10).map(|i| i as f64 * 0.15).map(|a| t([400.0 + 20.0 * a.sin(), 20.0 - 20.0 * a.cos()])).collect();
    MapContext::from_paths(
        vec![
            make_path(east, 13.9, Some(0), Some(590.0), vec![2]),
            make_path(west, 13.9, Some(1), None, vec![]),
            make_path(curve, 8.0, None, None, vec![]),
        ],
        1.75,
    )
}

pub fn scenario(id: u64, agents: &[(AgentKind, f64, f64, f64, f64)]) -> Scenario {
    let mut rows = Vec::new();
    for f in -10..=0 {
        for (i, &(kind, x, y, h, v)) in agents.iter().enumerate() {
            let t = 0.1 * f64::from(f);
            let (l, w) = if kind.is_vehicle() { (4.5, 1.8) } else { (0.5, 0.5) };
            rows.push((
                f,
                TrajectoryRecord {
                    agent_id: i as u64,
                    kind,
                    length_m: l,
                    width_m: w,
                    step: (100 + f) as u32,
                    time_s: 10.0 + t,
                    x_m: x + v * t * h.cos(),
                    y_m: y + v * t * h.sin(),
                    z_m: 0.0,
                    heading_rad: h,
                    speed_mps: v,
                    accel_mps2: 0.0,
                    lane: None,
                    signal: None,
                },
            ));
        }
    }
    Scenario {
        scenario_id: id,
        center_agent_id: 0,
        current_time_s: 10.0,
        current_step: 100,
        agents: (0..agents.len() as u64).collect(),
        rows,
    }
}

pub fn scenarios(angle: f64, shift: [f64; 2]) -> Vec<Scenario> {
    let scene = [
        (AgentKind::Car, 0.0, 0.2, 0.02, 9.0),
        (AgentKind::Car, 25.0, -0.1, 0.0, 11.0),
        (AgentKind::Bus, 60.0, 0.0, 0.0, 8.0),
        (AgentKind::Car, 30.0, 3.5, std::f64::consts::PI, 10.0),
        (AgentKind::Truck, -30.0, 0.0, 0.0, 12.0),
        (AgentKind::Pedestrian, 10.0, -6.0, 0.3, 1.3),
        (AgentKind::Pedestrian, 12.0, 8.0, -1.2, 1.1),
    ];
    let mut v: Vec<Scenario> = (0..3)
        .map(|i| {
            let s: Vec<_> = scene
                .iter()
                .map(|&(k, x, y, h, v)| {
                    let p = transform([x + 5.0 * i as f64, y], angle, shift);
                    (k, p[0], p[1], h + angle, v)
                })
                .collect();
            scenario(i, &s)
        })
        .collect();
    // An empty scenario and a single agent.
    v.push(scenario(7, &[]));
    let p = transform([100.0, 0.0], angle, shift);
    v.push(scenario(8, &[(AgentKind::Car, p[0], p[1], angle, 10.0)]));
    v
}

/// Dense teacher scenarios (120 m radius, 500 vehicles and 300 pedestrians) of the
/// procedural default district, and its map with the teacher run's signal plans.
pub fn dense_district() -> (Arc<swm_twin::Twin>, TeacherEvalSet, MapContext) {
    dense_district_with(24)
}

/// [`dense_district`] with `max_scenarios` scenarios.
pub fn dense_district_with(max_scenarios: usize) -> (Arc<swm_twin::Twin>, TeacherEvalSet, MapContext) {
    let (twin, _) = swm_procgen::build_district(&swm_procgen::DistrictParams::embedded_default()).unwrap();
    let twin = Arc::new(twin);
    let opts = TeacherEvalOptions {
        sim: SimConfig { seed: 4, vehicles: 500, pedestrians: 300, ..Default::default() },
        warmup_s: 30.0,
        window_s: 20.0,
        scenarios: ScenarioOptions { stride_s: 2.0, future_s: 1.0, radius_m: 120.0, ..Default::default() },
        max_scenarios,
        samples: 1,
    };
    let set = teacher_eval_set(twin.clone(), &opts).unwrap();
    let map = MapContext::new(&twin, Some(opts.sim.seed)).unwrap();
    (twin, set, map)
}

/// One (scenario, sample 0) as the GPU sees it: its agents (states rounded to the device's
/// f32 offsets, so both backends read the same inputs) and their batch rows.
pub struct Group {
    pub scenario_id: u64,
    pub agents: Vec<swm_model::rollout::RolloutAgent>,
    pub rows: Vec<usize>,
    pub time0_s: f64,
}

/// Sample 0 of every scenario (intents keyed by `seed`), rows numbered in order, and the
/// device's rows of them.
pub fn groups(
    scenarios: &[Scenario],
    map: &swm_model::MapContext,
    seed: u64,
) -> (Vec<Group>, swm_gpu::features::FeatureRows) {
    let mut out = Vec::new();
    let mut n = 0usize;
    for sc in scenarios {
        let mut agents = swm_model::rollout::start_agents(sc, map, seed, 0);
        for a in &mut agents {
            for k in &mut a.history {
                *k = swm_gpu::layout::AgentState::from_kinematics(k).to_kinematics();
            }
        }
        let rows: Vec<usize> = (n..n + agents.len()).collect();
        n += agents.len();
        out.push(Group { scenario_id: sc.scenario_id, agents, rows, time0_s: sc.current_time_s });
    }
    let refs: Vec<(&[swm_model::rollout::RolloutAgent], &[usize], f64)> =
        out.iter().map(|g| (g.agents.as_slice(), g.rows.as_slice(), g.time0_s)).collect();
    let rows = swm_gpu::features::FeatureRows::new(&refs, n);
    (out, rows)
}
