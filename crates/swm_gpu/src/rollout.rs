//! Closed-loop rollouts with the network, sampling and kinematics on the GPU.
//!
//! [`rollout_scenarios_gpu`] has the contract of `swm_model::rollout_scenarios_with`: the
//! same agents, histories, route intents, keyed draws (counter `(frame, agent index,
//! scenario id, sample)`), drivers and output records. It batches **every (scenario, sample)
//! at once**: per frame, features are computed on the CPU (rayon over scenarios × samples,
//! `swm_model::features::agent_features`), uploaded, and one command buffer runs the
//! forward pass of all agents, the sampling and the kinematic step; the new states (32 bytes
//! an agent) come back for the next frame's features and the records.
//!
//! Differences from the CPU backend, by design: states are f32 (positions as whole metres + an f32 offset) on
//! the GPU, so trajectories agree with the CPU's to about 1e-6 m per step while the same
//! tokens are drawn, and diverge once a logit difference (≤ 1e-3) flips a draw; rollouts are
//! therefore equal in distribution, not in bytes. Agents claimed by a driver are still run
//! through the network (their rows are discarded), which keeps the batch shape fixed.
//!
//! **Feasibility masks** (`swm_model::rollout` docs): the sampled tokens and the logits are
//! read back each frame and every model-driven agent's token goes through
//! `swm_model::rollout::FeasibilityFilter` on the CPU, exactly as the CPU backend does; an
//! agent whose token is replaced advances by the CPU's kinematic step.
//! [`rollout_scenarios_gpu`] applies the default masks (as `rollout_scenarios_with`),
//! [`rollout_scenarios_gpu_masked`] takes them as a parameter.
//!
//! Not yet on the GPU: features (neighbour search, lane look-ahead, raster look-ups) and
//! the masks, so there is a per-frame upload and read-back; see `shaders/README.md` for the
//! plan.

use rayon::prelude::*;
use swm_core::rng::unit_f32;
use swm_dataset::Scenario;
use swm_model::features::{AgentView, FEATURE_DIM, agent_features};
use swm_model::map::MapContext;
use swm_model::rollout::{
    AgentDriver, FeasibilityFilter, FeasibilityMask, RolloutAgent, RolloutConfig, ScenarioRollout, WorldAgent,
    push_frame, start_agents, world_of,
};
use swm_model::sampling::{STREAM_TOKEN, keyed_u32x4};
use swm_model::tokens::{AgentClass, DT_S, Kinematics};
use swm_sim::TrajectoryRecord;

use crate::layout::{AgentKey, AgentState};
use crate::network::LOGIT_STRIDE;
use crate::sample::{GpuSampler, class_code, sample_params};
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
    let mut inst: Vec<Instance> = (0..scenarios.len() * cfg.samples as usize)
        .into_par_iter()
        .map(|k| {
            let s = cfg.samples as usize;
            let (scenario, sample) = (k / s, (k % s) as u32);
            let agents = start_agents(&scenarios[scenario], cfg.seed, sample);
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
    let sampler = GpuSampler::new(ctx)?;
    let keys_b = ctx.storage_init("agent keys", &keys)?;
    let state_size = std::mem::size_of::<AgentState>() as u64;
    let state_in = ctx.storage("states in", n_rows as u64 * state_size)?;
    let state_out = ctx.storage("states out", n_rows as u64 * state_size)?;
    let tokens = ctx.storage("tokens", n_rows as u64 * 4)?;
    let params = ctx.uniform("sample params", &sample_params(n_rows as u32, 1, cfg.seed, &cfg.sampling));
    let bind = sampler.bind(ctx, [&params, &batch.logits, &keys_b, &state_in, &state_out, &tokens]);
    debug_assert_eq!(LOGIT_STRIDE, swm_model::tokens::VEHICLE_TOKENS);

    let mut features = vec![0.0f32; n_rows * FEATURE_DIM];
    let mut states = vec![AgentState::default(); n_rows];
    for frame in 1..=cfg.steps as i32 {
        // Features of every agent from the previous frame's states (CPU, in parallel).
        let rows: Vec<Vec<(usize, Vec<f32>)>> = inst
            .par_iter()
            .map(|it| {
                let time_s = scenarios[it.scenario].current_time_s + DT_S * f64::from(frame - 1);
                let views: Vec<AgentView> = it.agents.iter().map(RolloutAgent::view).collect();
                (0..it.agents.len())
                    .map(|i| {
                        let mut row = vec![0.0f32; FEATURE_DIM];
                        agent_features(map, &views, i, time_s, &mut row);
                        (it.rows[i], row)
                    })
                    .collect()
            })
            .collect();
        for (row, f) in rows.into_iter().flatten() {
            features[row * FEATURE_DIM..(row + 1) * FEATURE_DIM].copy_from_slice(&f);
        }
        for it in &inst {
            for (a, &row) in it.agents.iter().zip(&it.rows) {
                states[row] = AgentState::from_kinematics(a.history.last().expect("agents have a state"));
            }
        }
        if n_rows > 0 {
            ctx.queue.write_buffer(&batch.features, 0, bytemuck::cast_slice(&features));
            ctx.queue.write_buffer(&state_in, 0, bytemuck::cast_slice(&states));
            ctx.queue.write_buffer(
                &params,
                0,
                bytemuck::bytes_of(&sample_params(n_rows as u32, frame as u32, cfg.seed, &cfg.sampling)),
            );
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            net.encode(ctx, &mut enc, &batch);
            sampler.encode(ctx, &mut enc, &bind, n_rows as u32);
            ctx.submit_and_wait(enc)?;
        }
        let next: Vec<AgentState> = ctx.read(&state_out, n_rows)?;
        let masked = if mask != FeasibilityMask::NONE && n_rows > 0 {
            Some((ctx.read::<u32>(&tokens, n_rows)?, ctx.read::<f32>(&batch.logits, n_rows * LOGIT_STRIDE)?))
        } else {
            None
        };
        let step_ctx = StepInputs { next: &next, masked: masked.as_ref(), mask, cfg };
        inst.par_iter_mut().for_each(|it| advance(it, &scenarios[it.scenario], map, &step_ctx, frame, driver));
    }
    let s = cfg.samples as usize;
    let mut it = inst.into_iter();
    Ok(scenarios
        .iter()
        .map(|sc| ScenarioRollout {
            scenario_id: sc.scenario_id,
            samples: it.by_ref().take(s).map(|i| i.out).collect(),
        })
        .collect())
}

/// What one frame's [`advance`] reads from the GPU.
struct StepInputs<'a> {
    next: &'a [AgentState],
    /// Sampled tokens and logits (`[rows, LOGIT_STRIDE]`) when masks apply.
    masked: Option<&'a (Vec<u32>, Vec<f32>)>,
    mask: FeasibilityMask,
    cfg: &'a RolloutConfig,
}

/// Applies the GPU's states (after the masks; and the driver's) to one instance and
/// appends its records.
fn advance(
    it: &mut Instance,
    scenario: &Scenario,
    map: &MapContext,
    inputs: &StepInputs,
    frame: i32,
    driver: Option<&dyn AgentDriver>,
) {
    let next = inputs.next;
    let world: Vec<WorldAgent> = world_of(&it.agents);
    let mut new_states: Vec<Kinematics> = it.rows.iter().map(|&r| next[r].to_kinematics()).collect();
    if let Some((tokens, logits)) = inputs.masked {
        let mut filter = FeasibilityFilter::default();
        filter.new_frame(&world);
        for (i, (a, &row)) in it.agents.iter().zip(&it.rows).enumerate() {
            let vocab = match a.class {
                AgentClass::Vehicle => swm_model::tokens::VEHICLE_TOKENS,
                AgentClass::Pedestrian => swm_model::tokens::PEDESTRIAN_TOKENS,
            };
            let mut l = logits[row * LOGIT_STRIDE..row * LOGIT_STRIDE + vocab].to_vec();
            let tok = tokens[row] as u16;
            let r = keyed_u32x4(inputs.cfg.seed, scenario.scenario_id, i as u32, frame as u32, it.sample, STREAM_TOKEN);
            let kept = filter.filter(inputs.mask, map, &world, i, tok, &mut l, &inputs.cfg.sampling, unit_f32(r[1]));
            if kept != tok {
                new_states[i] = swm_model::tokens::step(a.class, &world[i].state, kept);
            }
        }
    }
    if let Some(d) = driver {
        for (i, a) in it.agents.iter().enumerate() {
            if let Some(k) = d.next_state(scenario.scenario_id, it.sample, a.id, frame, &world) {
                new_states[i] = k;
            }
        }
    }
    push_frame(&mut it.agents, &new_states, map, scenario, frame, &mut it.out);
}
