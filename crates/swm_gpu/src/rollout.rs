//! Closed-loop rollouts with the features, network, sampling and kinematics on the GPU.
//!
//! [`rollout_scenarios_gpu`] has the contract of `swm_model::rollout_scenarios_with`: the
//! same agents, histories, route intents, keyed draws (counter `(frame, agent index,
//! scenario id, sample)`), drivers and output records. It batches **every (scenario, sample)
//! at once**: the map is packed and uploaded once ([`crate::features::GpuMap`]), every
//! agent's recent states live in a history ring on the device, and per frame one command
//! buffer computes the features of all agents (`shaders/features.wgsl`), runs the forward
//! pass, samples a token and steps the kinematics.
//!
//! * **The feasibility masks** (`swm_model::rollout` docs; on by default) run on the device
//!   after the sampler (`shaders/mask.wgsl`, the rule of
//!   `swm_model::rollout::FeasibilityFilter`): a sampled token that is infeasible is
//!   redrawn among the feasible ones with word 1 of the same keyed draw.
//! * **Without a driver** nothing comes back per frame: a commit kernel moves the new states
//!   into the ring and a record buffer, which is read back in chunks of frames (as many as
//!   fit 256 MB) for the output records.
//! * **Scripted agents** ([`ScriptedAgent`]: a robot's candidate plan, an ego car's
//!   trajectory) take their given states on the device (the commit kernel reads them from a
//!   buffer uploaded once), so planning in imagination needs no read-back per frame either.
//! * **With a driver** (an `AgentDriver` that reacts to the world) the new states are read
//!   back each frame, the driver moves the agents it claims, and the settled states (32
//!   bytes an agent) are written into the ring.
//!
//! [`GpuRolloutEngine`] keeps the packed map and the pipelines for repeated calls (a
//! planner's 10 Hz replans); the free functions build one per call.
//!
//! Differences from the CPU backend, by design: states are f32 (positions as whole metres +
//! an f32 offset) on the GPU and features are computed in f32 (`crate::features` states
//! their tolerance), so trajectories agree with the CPU's to about 1e-6 m per step while the
//! same tokens are drawn, and diverge once a logit difference (≤ 1e-3) flips a draw;
//! rollouts are therefore equal in distribution, not in bytes. Agents claimed by a driver
//! are still run through the network (their rows are discarded), which keeps the batch
//! shape fixed.
//!
//! [`rollout_scenarios_gpu`] applies the default masks (as `rollout_scenarios_with`),
//! [`rollout_scenarios_gpu_masked`] takes them as a parameter.

use rayon::prelude::*;
use swm_dataset::Scenario;
use swm_model::map::MapContext;
use swm_model::rollout::{
    AgentDriver, FeasibilityMask, RolloutAgent, RolloutConfig, ScenarioRollout, WorldAgent, push_frame, start_agents,
    world_of,
};
use swm_model::tokens::{AgentClass, Kinematics};
use swm_sim::TrajectoryRecord;

use crate::features::{FeatureRows, GpuCommit, GpuFeatures, GpuMap, history_slot};
use crate::layout::{AgentKey, AgentState, FeatureParams};
use crate::network::LOGIT_STRIDE;
use crate::sample::{GpuMasks, GpuSampler, class_code, sample_params};
use crate::{GpuContext, GpuError, GpuNetwork};

/// One (scenario, sample).
struct Instance {
    scenario: usize,
    sample: u32,
    agents: Vec<RolloutAgent>,
    /// Global batch row of each agent.
    rows: Vec<usize>,
    out: Vec<(i32, TrajectoryRecord)>,
}

/// Rolls out `cfg.samples` samples of every scenario on the GPU (module docs), with
/// `driver` moving the agents it claims. Returns scenarios in order, samples in order, rows
/// `(frame 1..=N, record)` ordered by frame then agent, as `swm_model::rollout_scenarios_with`.
pub fn rollout_scenarios_gpu(
    ctx: &GpuContext,
    net: &GpuNetwork,
    map: &MapContext,
    scenarios: &[Scenario],
    cfg: &RolloutConfig,
    driver: Option<&dyn AgentDriver>,
) -> Result<Vec<ScenarioRollout>, GpuError> {
    rollout_scenarios_gpu_masked(ctx, net, map, scenarios, cfg, driver, FeasibilityMask::default())
}

/// [`rollout_scenarios_gpu`] with the feasibility masks given (`FeasibilityMask::NONE`: the
/// network's distribution as it is, as `swm_model::rollout::rollout_scenarios_masked`).
pub fn rollout_scenarios_gpu_masked(
    ctx: &GpuContext,
    net: &GpuNetwork,
    map: &MapContext,
    scenarios: &[Scenario],
    cfg: &RolloutConfig,
    driver: Option<&dyn AgentDriver>,
    mask: FeasibilityMask,
) -> Result<Vec<ScenarioRollout>, GpuError> {
    rollout_scenarios_gpu_timed(ctx, net, map, scenarios, cfg, driver, mask).map(|(r, _)| r)
}

/// Where a GPU rollout's wall time went ([`rollout_scenarios_gpu_timed`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GpuRolloutTimes {
    /// Agents, batch rows and pipelines; packing and uploading the map and the histories.
    pub setup_s: f64,
    /// The frame loop on the device, with the chunked read-back of states (and, with a
    /// driver, the per-frame read-back and the driver).
    pub device_s: f64,
    /// Turning the states read back into output records on the CPU (lane matching,
    /// elevation, signals), rayon over (scenario, sample).
    pub records_s: f64,
}

/// [`rollout_scenarios_gpu_masked`], also returning where the time went.
pub fn rollout_scenarios_gpu_timed(
    ctx: &GpuContext,
    net: &GpuNetwork,
    map: &MapContext,
    scenarios: &[Scenario],
    cfg: &RolloutConfig,
    driver: Option<&dyn AgentDriver>,
    mask: FeasibilityMask,
) -> Result<(Vec<ScenarioRollout>, GpuRolloutTimes), GpuError> {
    let started = std::time::Instant::now();
    let engine = GpuRolloutEngine::new(ctx, map)?;
    let setup_s = started.elapsed().as_secs_f64();
    let (out, mut times) = engine.rollout(ctx, net, map, scenarios, cfg, driver, &[], mask)?;
    times.setup_s += setup_s;
    Ok((out, times))
}

/// An agent moved along given states instead of by the model (a robot's candidate plan):
/// in every sample of `scenarios[scenario]`, agent `agent_id` takes `states[f − 1]` at
/// frame `f` (the last one after the end). Scripts go to the device once; no read-back per
/// frame (the "actions through a buffer" of planning in imagination).
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptedAgent {
    /// Index into the scenarios of the call.
    pub scenario: usize,
    pub agent_id: u64,
    pub states: Vec<Kinematics>,
}

/// The GPU engine's state for one twin: the packed map and the pipelines, built once and
/// reused by every [`GpuRolloutEngine::rollout`] (a planner calls it at 10 Hz). It owns no
/// borrowed data, so planners and viewers can keep it next to their context and network.
pub struct GpuRolloutEngine {
    /// What the map was packed from (paths, raster size and origin), checked on each call.
    map_key: (usize, usize, usize, u64, u64),
    gmap: GpuMap,
    sampler: GpuSampler,
    feats: GpuFeatures,
    commit: GpuCommit,
    masks: GpuMasks,
}

fn map_key(map: &MapContext) -> (usize, usize, usize, u64, u64) {
    (map.paths.len(), map.width, map.height, map.origin_m[0].to_bits(), map.origin_m[1].to_bits())
}

impl GpuRolloutEngine {
    /// Packs and uploads `map`, builds the pipelines.
    pub fn new(ctx: &GpuContext, map: &MapContext) -> Result<GpuRolloutEngine, GpuError> {
        Ok(GpuRolloutEngine {
            map_key: map_key(map),
            gmap: GpuMap::new(ctx, map)?,
            sampler: GpuSampler::new(ctx)?,
            feats: GpuFeatures::new(ctx)?,
            commit: GpuCommit::new(ctx)?,
            masks: GpuMasks::new(ctx)?,
        })
    }

    /// Rolls out `cfg.samples` samples of every scenario (module docs) on `ctx` (the
    /// context the engine was built on) with `net`, over `map` (the one it was built from),
    /// `driver` moving the agents it claims (states read back every frame) and `scripts`
    /// moving theirs on the device; a driver and scripts together are refused. Returns the
    /// rollouts as [`rollout_scenarios_gpu`] and where the time went (`setup_s`: this
    /// call's buffers).
    #[allow(clippy::too_many_arguments)]
    pub fn rollout(
        &self,
        ctx: &GpuContext,
        net: &GpuNetwork,
        map: &MapContext,
        scenarios: &[Scenario],
        cfg: &RolloutConfig,
        driver: Option<&dyn AgentDriver>,
        scripts: &[ScriptedAgent],
        mask: FeasibilityMask,
    ) -> Result<(Vec<ScenarioRollout>, GpuRolloutTimes), GpuError> {
        if map_key(map) != self.map_key {
            return Err(GpuError::Input("the map differs from the one the engine was built from".into()));
        }
        if driver.is_some() && !scripts.is_empty() {
            return Err(GpuError::Input("a driver and scripted agents in one rollout".into()));
        }
        if let Some(sa) = scripts.iter().find(|sa| sa.scenario >= scenarios.len() || sa.states.is_empty()) {
            return Err(GpuError::Input(format!(
                "scripted agent {} of scenario index {}: {} states, {} scenarios",
                sa.agent_id,
                sa.scenario,
                sa.states.len(),
                scenarios.len()
            )));
        }
        let started = std::time::Instant::now();
        let mut times = GpuRolloutTimes::default();
        let mut inst: Vec<Instance> = (0..scenarios.len() * cfg.samples as usize)
            .into_par_iter()
            .map(|k| {
                let s = cfg.samples as usize;
                let (scenario, sample) = (k / s, (k % s) as u32);
                let agents = start_agents(&scenarios[scenario], map, cfg.seed, sample);
                Instance { scenario, sample, rows: vec![0; agents.len()], agents, out: Vec::new() }
            })
            .collect();
        // Class-sorted global rows: all vehicles, then all pedestrians.
        let mut n_rows = 0usize;
        for want in [AgentClass::Vehicle, AgentClass::Pedestrian] {
            for it in &mut inst {
                for (a, row) in it.agents.iter().zip(it.rows.iter_mut()) {
                    if a.class == want {
                        *row = n_rows;
                        n_rows += 1;
                    }
                }
            }
        }
        let vehicles = inst.iter().flat_map(|it| &it.agents).filter(|a| a.class == AgentClass::Vehicle).count();
        let mut keys = vec![AgentKey::default(); n_rows];
        for it in &inst {
            for (i, (a, &row)) in it.agents.iter().zip(&it.rows).enumerate() {
                keys[row] = AgentKey {
                    scenario: scenarios[it.scenario].scenario_id as u32,
                    agent: i as u32,
                    sample: it.sample,
                    agent_class: class_code(a.class),
                };
            }
        }
        let batch = net.batch(ctx, n_rows as u32, vehicles as u32)?;
        let groups: Vec<(&[RolloutAgent], &[usize], f64)> = inst
            .iter()
            .map(|it| (it.agents.as_slice(), it.rows.as_slice(), scenarios[it.scenario].current_time_s))
            .collect();
        let mut rows_in = FeatureRows::new(&groups, n_rows);
        // Scripted agents: their states once (shared by the samples of a scenario).
        let mut script_states: Vec<AgentState> = Vec::new();
        let mut script_at: Vec<(usize, u64, u32, u32)> = Vec::new();
        for sa in scripts {
            script_at.push((sa.scenario, sa.agent_id, script_states.len() as u32, sa.states.len() as u32));
            script_states.extend(sa.states.iter().map(AgentState::from_kinematics));
        }
        for &(sc, id, off, len) in &script_at {
            let mut found = cfg.samples == 0;
            for it in inst.iter().filter(|it| it.scenario == sc) {
                if let Some(i) = it.agents.iter().position(|a| a.id == id) {
                    let info = &mut rows_in.info[it.rows[i]];
                    (info.script_off, info.script_len) = (off, len);
                    found = true;
                }
            }
            if !found {
                return Err(GpuError::Input(format!(
                    "scripted agent {id}: scenario {} (index {sc}) has no agent with that id at frame 0",
                    scenarios[sc].scenario_id
                )));
            }
        }
        if script_states.is_empty() {
            script_states.push(AgentState::default());
        }
        let scripts_b = ctx.storage_init("scripted states", &script_states)?;
        let state_size = std::mem::size_of::<AgentState>();
        let keys_b = ctx.storage_init("agent keys", &keys)?;
        let info_b = ctx.storage_init("agent info", &rows_in.info)?;
        let members_b = ctx.storage_init("members", &rows_in.members)?;
        let hist_b = ctx.storage_init("history ring", &rows_in.history)?;
        let state_in = ctx.storage("states in", (n_rows * state_size) as u64)?;
        let state_out = ctx.storage("states out", (n_rows * state_size) as u64)?;
        let tokens = ctx.storage("tokens", n_rows as u64 * 4)?;
        // The CPU steps in every frame when a driver moves agents; otherwise states stay on the
        // device and come back in chunks of frames.
        let cpu_step = driver.is_some() && n_rows > 0;
        let masks = (mask != FeasibilityMask::NONE).then_some(&self.masks);
        let chunk = if cpu_step || n_rows == 0 {
            1
        } else {
            let limit = ctx.limits().max_storage_buffer_binding_size.min(ctx.limits().max_buffer_size).min(256 << 20);
            ((limit / (n_rows * state_size) as u64).max(1) as usize).min(cfg.steps.max(1) as usize)
        };
        let records = ctx.storage("records", (if cpu_step { 1 } else { chunk * n_rows.max(1) } * state_size) as u64)?;
        let fparams = ctx.uniform("feature params", &FeatureParams::new(n_rows as u32, 0, 1));
        let params = ctx.uniform("sample params", &sample_params(n_rows as u32, 1, cfg.seed, &cfg.sampling));
        let (sampler, feats, commit, gmap) = (&self.sampler, &self.feats, &self.commit, &self.gmap);
        let bind = sampler.bind(ctx, [&params, &batch.logits, &keys_b, &state_in, &state_out, &tokens]);
        let fbind = feats.bind(ctx, [&fparams, &gmap.words, &info_b, &members_b, &hist_b, &batch.features, &state_in]);
        let cbind = commit.bind(ctx, [&fparams, &state_out, &hist_b, &records, &info_b, &scripts_b]);
        let mparams = ctx.uniform("mask params", &GpuMasks::params(mask));
        let ghosts = GpuMasks::ghost_buffer(ctx, n_rows)?;
        let mbind = masks.as_ref().map(|m| {
            m.bind(
                ctx,
                [
                    &params,
                    &gmap.words,
                    &info_b,
                    &members_b,
                    &keys_b,
                    &batch.logits,
                    &state_in,
                    &state_out,
                    &tokens,
                    &mparams,
                    &ghosts,
                ],
            )
        });
        debug_assert_eq!(LOGIT_STRIDE, swm_model::tokens::VEHICLE_TOKENS);

        let mut pending = 0usize;
        times.setup_s = started.elapsed().as_secs_f64();
        let loop_started = std::time::Instant::now();
        for frame in 1..=cfg.steps as i32 {
            if n_rows == 0 {
                break;
            }
            let mut fp = FeatureParams::new(n_rows as u32, frame as u32 - 1, frame as u32);
            if !cpu_step {
                fp.record_slot = pending as u32;
            }
            ctx.queue.write_buffer(&fparams, 0, bytemuck::bytes_of(&fp));
            ctx.queue.write_buffer(
                &params,
                0,
                bytemuck::bytes_of(&sample_params(n_rows as u32, frame as u32, cfg.seed, &cfg.sampling)),
            );
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            feats.encode(ctx, &mut enc, &fbind, n_rows as u32);
            net.encode(ctx, &mut enc, &batch);
            sampler.encode(ctx, &mut enc, &bind, n_rows as u32);
            if let (Some(m), Some(mb)) = (&masks, &mbind) {
                m.encode(ctx, &mut enc, mb, n_rows as u32);
            }
            if let (true, Some(driver)) = (cpu_step, driver) {
                ctx.submit_and_wait(enc)?;
                let next: Vec<AgentState> = ctx.read(&state_out, n_rows)?;
                inst.par_iter_mut().for_each(|it| drive(it, &scenarios[it.scenario], map, &next, frame, driver));
                // The states the CPU settled on become the ring's newest slot.
                let mut settled = vec![AgentState::default(); n_rows];
                for it in &inst {
                    for (a, &row) in it.agents.iter().zip(&it.rows) {
                        settled[row] = AgentState::from_kinematics(a.history.last().expect("agents have a state"))
                            .on_deck(a.deck_m);
                    }
                }
                let slot = history_slot(frame as u32, 0) as usize;
                ctx.queue.write_buffer(&hist_b, (slot * n_rows * state_size) as u64, bytemuck::cast_slice(&settled));
            } else {
                commit.encode(ctx, &mut enc, &cbind, n_rows as u32);
                ctx.queue.submit([enc.finish()]);
                pending += 1;
                if pending == chunk || frame == cfg.steps as i32 {
                    let states: Vec<AgentState> = ctx.read(&records, pending * n_rows)?;
                    let first = frame - pending as i32 + 1;
                    let records_started = std::time::Instant::now();
                    inst.par_iter_mut().for_each(|it| {
                        for (k, f) in (first..=frame).enumerate() {
                            let next: Vec<Kinematics> =
                                it.rows.iter().map(|&r| states[k * n_rows + r].to_kinematics()).collect();
                            push_frame(&mut it.agents, &next, map, &scenarios[it.scenario], f, &mut it.out);
                        }
                    });
                    times.records_s += records_started.elapsed().as_secs_f64();
                    pending = 0;
                }
            }
        }
        times.device_s = loop_started.elapsed().as_secs_f64() - times.records_s;
        let s = cfg.samples as usize;
        let mut it = inst.into_iter();
        let out = scenarios
            .iter()
            .map(|sc| ScenarioRollout {
                scenario_id: sc.scenario_id,
                samples: it.by_ref().take(s).map(|i| i.out).collect(),
            })
            .collect();
        Ok((out, times))
    }
}

/// Applies the GPU's states and then the driver's to one instance and appends its records.
fn drive(
    it: &mut Instance,
    scenario: &Scenario,
    map: &MapContext,
    next: &[AgentState],
    frame: i32,
    driver: &dyn AgentDriver,
) {
    let world: Vec<WorldAgent> = world_of(&it.agents);
    let mut new_states: Vec<Kinematics> = it.rows.iter().map(|&r| next[r].to_kinematics()).collect();
    for (i, a) in it.agents.iter().enumerate() {
        if let Some(k) = driver.next_state(scenario.scenario_id, it.sample, a.id, frame, &world) {
            new_states[i] = k;
        }
    }
    push_frame(&mut it.agents, &new_states, map, scenario, frame, &mut it.out);
}
