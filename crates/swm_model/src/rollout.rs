//! Closed-loop rollouts on the CPU: every agent of a scenario moved by the model (or from
//! outside) for N steps, S samples per scenario.
//!
//! * **Start**: the agents with a record at frame 0, with their recorded frames −10..=0 as
//!   history (kinematics from the records). Agents that appear later are not simulated.
//! * **Each step** (frame 1..=N): every externally driven agent ([`AgentDriver`]) gets the
//!   state its driver gives; every other agent's features are computed from the state of
//!   all agents at the previous frame (the driven ones included, so the model reacts to
//!   them), the network runs once on the batch of all model-driven agents, a token is
//!   sampled per agent with the keyed generator ([`crate::sampling`], counter `(frame,
//!   agent index, scenario id, sample)`) and the agents advance by the token's kinematics.
//! * **Route intents**: one draw per agent and sample (`STREAM_INTENT`, frame 0), mixed with
//!   the path index at every branching.
//! * **Determinism**: one (scenario, sample) is a pure function of its inputs and runs on
//!   one thread; [`rollout_scenarios`] runs them in parallel with rayon and returns them in
//!   (scenario, sample) order, so the bytes are the same whatever the thread count.
//! * **Output records**: `agent_id` is the scenario's agent id, `step` is the scenario's
//!   current step + frame, `time_s` its current time + 0.1·frame, `z_m` the terrain's
//!   elevation, `accel_mps2` the last step's speed change, `lane` the matched lane
//!   (vehicles; `None` in junctions), `signal` the state features used.
//!
//! # Files ([`write_rollouts`])
//! A rollout directory holds `sample-00000.parquet` ... (one per sample, schema
//! `swm-scenarios/1`: `scenario_id`, `frame` 1..=N, then the trajectory columns; ordered by
//! scenario, frame, agent) and `manifest.json` ([`RolloutManifest`]).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use swm_dataset::Scenario;
use swm_sim::{AgentKind, SignalState, TrajectoryRecord};

use crate::ModelError;
use crate::data::kinematics;
use crate::features::{AgentView, FEATURE_DIM, HISTORY_STEPS, Intent, agent_features};
use crate::map::MapContext;
use crate::net::{Network, Scratch, logit_offsets};
use crate::sampling::{STREAM_INTENT, STREAM_TOKEN, SamplingConfig, keyed_u32x4, keyed_unit, sample_token};
use crate::tokens::{AgentClass, DT_S, Kinematics, step};

/// Rollout settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RolloutConfig {
    /// Frames to produce (80 = 8 s).
    pub steps: u32,
    pub samples: u32,
    /// Seed of the keyed generator.
    pub seed: u64,
    pub sampling: SamplingConfig,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig { steps: 80, samples: 1, seed: 0, sampling: SamplingConfig::default() }
    }
}

/// The rollouts of one scenario: `samples[s]` holds `(frame 1..=N, record)` rows ordered by
/// frame then agent.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioRollout {
    pub scenario_id: u64,
    pub samples: Vec<Vec<(i32, TrajectoryRecord)>>,
}

/// An agent in the world as drivers see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorldAgent {
    /// Scenario agent id.
    pub agent_id: u64,
    pub kind: AgentKind,
    pub length_m: f32,
    pub width_m: f32,
    pub state: Kinematics,
}

/// Drives agents from outside (a robot, an ego car under test).
pub trait AgentDriver: Sync {
    /// The state of `agent_id` at `frame`, given every agent at `frame - 1`; `None` lets the
    /// model drive it this step.
    fn next_state(
        &self,
        scenario_id: u64,
        sample: u32,
        agent_id: u64,
        frame: i32,
        world: &[WorldAgent],
    ) -> Option<Kinematics>;
}

impl<F> AgentDriver for F
where
    F: Fn(u64, u32, u64, i32, &[WorldAgent]) -> Option<Kinematics> + Sync,
{
    fn next_state(
        &self,
        scenario_id: u64,
        sample: u32,
        agent_id: u64,
        frame: i32,
        world: &[WorldAgent],
    ) -> Option<Kinematics> {
        self(scenario_id, sample, agent_id, frame, world)
    }
}

struct Agent {
    id: u64,
    kind: AgentKind,
    class: AgentClass,
    length_m: f32,
    width_m: f32,
    history: Vec<Kinematics>,
    signal: Option<SignalState>,
    intent: u32,
}

/// Rolls out one sample of one scenario (module docs).
pub fn rollout_one(
    net: &Network,
    map: &MapContext,
    scenario: &Scenario,
    cfg: &RolloutConfig,
    sample: u32,
    driver: Option<&dyn AgentDriver>,
) -> Vec<(i32, TrajectoryRecord)> {
    // Agents at frame 0 with their history.
    let mut agents: Vec<Agent> = Vec::new();
    for (f, r) in &scenario.rows {
        if *f != 0 {
            continue;
        }
        let mut hist: Vec<(i32, Kinematics)> = scenario
            .rows
            .iter()
            .filter(|(g, q)| *g < 0 && *g >= -(HISTORY_STEPS as i32) && q.agent_id == r.agent_id)
            .map(|(g, q)| (*g, kinematics(q)))
            .collect();
        hist.sort_by_key(|x| x.0);
        // Keep the contiguous run ending at -1.
        let mut keep = Vec::new();
        let mut want = -1;
        for (g, k) in hist.iter().rev() {
            if *g != want {
                break;
            }
            keep.push(*k);
            want -= 1;
        }
        keep.reverse();
        keep.push(kinematics(r));
        agents.push(Agent {
            id: r.agent_id,
            kind: r.kind,
            class: AgentClass::of(r.kind),
            length_m: r.length_m,
            width_m: r.width_m,
            history: keep,
            signal: r.signal,
            intent: 0,
        });
    }
    agents.sort_by_key(|a| a.id);
    agents.dedup_by_key(|a| a.id);
    for (i, a) in agents.iter_mut().enumerate() {
        a.intent = keyed_u32x4(cfg.seed, scenario.scenario_id, i as u32, 0, sample, STREAM_INTENT)[0];
    }
    let t0 = scenario.current_time_s;
    let mut out = Vec::with_capacity(agents.len() * cfg.steps as usize);
    let mut scratch = Scratch::default();
    let mut feats: Vec<f32> = Vec::new();
    let mut classes: Vec<AgentClass> = Vec::new();
    let mut model_rows: Vec<usize> = Vec::new();
    let mut logits = Vec::new();
    let mut sort_buf = Vec::new();
    let mut next: Vec<Kinematics> = Vec::with_capacity(agents.len());
    let mut world: Vec<WorldAgent> = Vec::with_capacity(agents.len());
    let mut row = vec![0.0f32; FEATURE_DIM];
    for frame in 1..=cfg.steps as i32 {
        let time_s = t0 + DT_S * f64::from(frame - 1);
        world.clear();
        world.extend(agents.iter().map(|a| WorldAgent {
            agent_id: a.id,
            kind: a.kind,
            length_m: a.length_m,
            width_m: a.width_m,
            state: *a.history.last().expect("agents have a state"),
        }));
        next.clear();
        next.extend(world.iter().map(|w| w.state));
        let mut external = vec![false; agents.len()];
        if let Some(d) = driver {
            for (i, a) in agents.iter().enumerate() {
                if let Some(k) = d.next_state(scenario.scenario_id, sample, a.id, frame, &world) {
                    next[i] = k;
                    external[i] = true;
                }
            }
        }
        let views: Vec<AgentView> = agents
            .iter()
            .map(|a| AgentView {
                kind: a.kind,
                length_m: a.length_m,
                width_m: a.width_m,
                history: &a.history,
                recorded_signal: a.signal,
                intent: Intent::Choice(a.intent),
            })
            .collect();
        feats.clear();
        classes.clear();
        model_rows.clear();
        for (i, a) in agents.iter().enumerate() {
            if external[i] {
                continue;
            }
            agent_features(map, &views, i, time_s, &mut row);
            feats.extend_from_slice(&row);
            classes.push(a.class);
            model_rows.push(i);
        }
        if !model_rows.is_empty() {
            net.forward(&feats, &classes, &mut scratch, &mut logits);
            let offs = logit_offsets(&classes);
            for (j, &i) in model_rows.iter().enumerate() {
                let u = keyed_unit(cfg.seed, scenario.scenario_id, i as u32, frame as u32, sample, STREAM_TOKEN);
                let tok = sample_token(&logits[offs[j]..offs[j + 1]], &cfg.sampling, u, &mut sort_buf);
                next[i] = step(agents[i].class, &world[i].state, tok);
            }
        }
        drop(views);
        for (i, a) in agents.iter_mut().enumerate() {
            let prev = world[i].state;
            let k = next[i];
            a.history.push(k);
            if a.history.len() > HISTORY_STEPS + 1 {
                a.history.remove(0);
            }
            let (lane, signal) = if a.kind.is_vehicle() {
                let lane =
                    map.match_path(k.point_enu, k.heading_rad, 3.0).and_then(|m| map.paths[m.path as usize].lane);
                let sig = if map.has_plans() { lane.and_then(|l| map.plan_state(l, time_s + DT_S)) } else { a.signal };
                (lane, sig)
            } else {
                (None, a.signal)
            };
            out.push((
                frame,
                TrajectoryRecord {
                    agent_id: a.id,
                    kind: a.kind,
                    length_m: a.length_m,
                    width_m: a.width_m,
                    step: scenario.current_step.wrapping_add(frame as u32),
                    time_s: t0 + DT_S * f64::from(frame),
                    x_m: k.point_enu[0],
                    y_m: k.point_enu[1],
                    z_m: map.elevation_at(k.point_enu),
                    heading_rad: k.heading_rad,
                    speed_mps: k.speed_mps,
                    accel_mps2: (k.speed_mps - prev.speed_mps) / DT_S,
                    lane,
                    signal,
                },
            ));
        }
    }
    out
}

/// Rolls out `cfg.samples` samples of every scenario (rayon over scenarios × samples;
/// module docs), with `driver` moving the agents it claims.
pub fn rollout_scenarios_with(
    net: &Network,
    map: &MapContext,
    scenarios: &[Scenario],
    cfg: &RolloutConfig,
    driver: Option<&dyn AgentDriver>,
) -> Vec<ScenarioRollout> {
    let s = cfg.samples as usize;
    let flat: Vec<Vec<(i32, TrajectoryRecord)>> = (0..scenarios.len() * s)
        .into_par_iter()
        .map(|k| rollout_one(net, map, &scenarios[k / s], cfg, (k % s) as u32, driver))
        .collect();
    let mut it = flat.into_iter();
    scenarios
        .iter()
        .map(|sc| ScenarioRollout { scenario_id: sc.scenario_id, samples: it.by_ref().take(s).collect() })
        .collect()
}

/// Rolls out `cfg.samples` samples of every scenario with the model driving every agent.
pub fn rollout_scenarios(
    net: &Network,
    map: &MapContext,
    scenarios: &[Scenario],
    cfg: &RolloutConfig,
) -> Vec<ScenarioRollout> {
    rollout_scenarios_with(net, map, scenarios, cfg, None)
}

/// What a rollout directory holds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RolloutManifest {
    /// `swm-rollouts/1`.
    pub format: String,
    pub model: String,
    pub twin: String,
    pub config: RolloutConfig,
    /// Seed of the signal plans, when known.
    pub signal_seed: Option<u64>,
    pub scenarios: u64,
    /// `(file, rows)` per sample.
    pub files: Vec<(String, u64)>,
}

/// Writes one Parquet file per sample and `manifest.json` into `dir` (module docs).
pub fn write_rollouts(
    dir: &Path,
    rollouts: &[ScenarioRollout],
    mut manifest: RolloutManifest,
) -> Result<Vec<PathBuf>, ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io { path: dir.to_path_buf(), source })?;
    let samples = rollouts.iter().map(|r| r.samples.len()).max().unwrap_or(0);
    let mut paths = Vec::new();
    manifest.files.clear();
    for s in 0..samples {
        let name = format!("sample-{s:05}.parquet");
        let path = dir.join(&name);
        let dse = |e| ModelError::Dataset(Box::new(e));
        let mut w = swm_dataset::TrajectoryWriter::create_scenarios(&path).map_err(dse)?;
        for r in rollouts {
            if let Some(rows) = r.samples.get(s) {
                w.write_scenario_rows(r.scenario_id, rows).map_err(dse)?;
            }
        }
        let rows = w.finish().map_err(dse)?;
        manifest.files.push((name, rows));
        paths.push(path);
    }
    manifest.format = "swm-rollouts/1".to_string();
    manifest.scenarios = rollouts.len() as u64;
    swm_dataset::manifest::write_json(&dir.join("manifest.json"), &manifest)
        .map_err(|e| ModelError::Dataset(Box::new(e)))?;
    Ok(paths)
}
