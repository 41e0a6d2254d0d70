//! Token sampling fused with the kinematic step (`shaders/sample.wgsl`): the rule of
//! [`swm_model::sampling::sample_token`] with the uniform of the keyed Philox draw
//! (`STREAM_TOKEN`), then [`swm_model::tokens::step`] in f32 with positions as whole metres + an f32 offset.

use swm_model::SamplingConfig;
use swm_model::tokens::AgentClass;

use crate::context::dispatch;
use crate::layout::{AgentKey, AgentState, MaskGhost, MaskParams, SampleParams};
use crate::network::LOGIT_STRIDE;
use crate::{GpuContext, GpuError, shaders};

/// The class code of [`AgentKey::agent_class`](crate::layout::AgentKey::agent_class).
pub fn class_code(class: AgentClass) -> u32 {
    match class {
        AgentClass::Vehicle => 0,
        AgentClass::Pedestrian => 1,
    }
}

/// The sampling kernel's parameters for `agents` rows producing frame `step`.
pub fn sample_params(agents: u32, step: u32, seed: u64, cfg: &SamplingConfig) -> SampleParams {
    SampleParams {
        agents,
        step,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        temperature: cfg.temperature,
        top_p: cfg.top_p,
        top_k: cfg.top_k.min(u32::MAX as usize) as u32,
        logit_stride: LOGIT_STRIDE as u32,
    }
}

/// Host-side inputs of [`GpuSampler::sample_step`], one entry per row.
#[derive(Clone, Copy, Debug)]
pub struct SampleRows<'a> {
    /// `[rows, LOGIT_STRIDE]`.
    pub logits: &'a [f32],
    pub keys: &'a [AgentKey],
    pub states: &'a [AgentState],
}

/// The sampling pipeline.
pub struct GpuSampler {
    pipeline: wgpu::ComputePipeline,
}

impl GpuSampler {
    pub fn new(ctx: &GpuContext) -> Result<GpuSampler, GpuError> {
        Ok(GpuSampler { pipeline: ctx.pipeline("sample", shaders::SAMPLE, "main")? })
    }

    /// A bind group over the kernel's buffers (params uniform, logits, keys, states in and
    /// out, tokens).
    pub fn bind(&self, ctx: &GpuContext, buffers: [&wgpu::Buffer; 6]) -> wgpu::BindGroup {
        ctx.bind(&self.pipeline, &buffers)
    }

    /// Records sampling and stepping of `agents` rows.
    pub fn encode(&self, ctx: &GpuContext, enc: &mut wgpu::CommandEncoder, bind: &wgpu::BindGroup, agents: u32) {
        dispatch(ctx, enc, &self.pipeline, bind, agents);
    }

    /// Samples a token per row of `rows.logits` (`[rows, LOGIT_STRIDE]`, a row's class in
    /// its key) and steps its state, producing frame `step` of the rollout seeded `seed`:
    /// returns (tokens, next states). One upload and read-back; for tests and one-off use.
    pub fn sample_step(
        &self,
        ctx: &GpuContext,
        rows: &SampleRows,
        step: u32,
        seed: u64,
        cfg: &SamplingConfig,
    ) -> Result<(Vec<u16>, Vec<AgentState>), GpuError> {
        let SampleRows { logits, keys, states } = *rows;
        let n = keys.len();
        if logits.len() != n * LOGIT_STRIDE || states.len() != n {
            return Err(GpuError::Input(format!(
                "{} logits and {} states for {n} keys (stride {LOGIT_STRIDE})",
                logits.len(),
                states.len()
            )));
        }
        if let Some(k) = keys.iter().find(|k| k.agent_class > 1) {
            return Err(GpuError::Input(format!("agent class code {} (0 vehicle, 1 pedestrian)", k.agent_class)));
        }
        if n == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let params = ctx.uniform("sample params", &sample_params(n as u32, step, seed, cfg));
        let logits_b = ctx.storage_init("logits", logits)?;
        let keys_b = ctx.storage_init("keys", keys)?;
        let state_in = ctx.storage_init("state in", states)?;
        let state_out = ctx.storage("state out", (n * std::mem::size_of::<AgentState>()) as u64)?;
        let tokens = ctx.storage("tokens", n as u64 * 4)?;
        let bind = self.bind(ctx, [&params, &logits_b, &keys_b, &state_in, &state_out, &tokens]);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.encode(ctx, &mut enc, &bind, n as u32);
        ctx.submit_and_wait(enc)?;
        let toks: Vec<u32> = ctx.read(&tokens, n)?;
        let next: Vec<AgentState> = ctx.read(&state_out, n)?;
        Ok((toks.into_iter().map(|t| t as u16).collect(), next))
    }
}

/// The rollout feasibility masks on the device (`shaders/mask.wgsl`), run after the sampler
/// on its tokens and states: the rule of `swm_model::rollout::FeasibilityFilter`.
pub struct GpuMasks {
    pipeline: wgpu::ComputePipeline,
    /// `make_ghosts`: every agent's braking as the others' masks assume it, first.
    ghosts: wgpu::ComputePipeline,
}

/// The bind groups of [`GpuMasks`]' two passes.
pub struct MaskBindings {
    main: wgpu::BindGroup,
    ghosts: wgpu::BindGroup,
}

impl GpuMasks {
    pub fn new(ctx: &GpuContext) -> Result<GpuMasks, GpuError> {
        Ok(GpuMasks {
            pipeline: ctx.pipeline("mask", shaders::MASK, "main")?,
            ghosts: ctx.pipeline("mask ghosts", shaders::MASK, "make_ghosts")?,
        })
    }

    /// A buffer for the agents' braking in the masks ([`MaskGhost`], one per row).
    pub fn ghost_buffer(ctx: &GpuContext, rows: usize) -> Result<wgpu::Buffer, GpuError> {
        ctx.storage("mask ghosts", (rows.max(1) * std::mem::size_of::<MaskGhost>()) as u64)
    }

    /// The kernel's parameters for `mask`.
    pub fn params(mask: swm_model::FeasibilityMask) -> MaskParams {
        MaskParams { collision: u32::from(mask.collision), offroad: u32::from(mask.offroad), _pad0: 0, _pad1: 0 }
    }

    /// The bind groups: sample params, map words, agent info, members, keys, logits, states
    /// in, states out, tokens, mask params, and the ghosts ([`GpuMasks::ghost_buffer`]).
    pub fn bind(&self, ctx: &GpuContext, buffers: [&wgpu::Buffer; 11]) -> MaskBindings {
        let ghosts = [0, 1, 2, 6, 9, 10].map(|i| (i as u32, buffers[i]));
        MaskBindings { main: ctx.bind(&self.pipeline, &buffers), ghosts: ctx.bind_at(&self.ghosts, &ghosts) }
    }

    /// Records the masks of `agents` rows: their ghosts (64 rows a workgroup), then the
    /// masks (one workgroup a row).
    pub fn encode(&self, ctx: &GpuContext, enc: &mut wgpu::CommandEncoder, bind: &MaskBindings, agents: u32) {
        dispatch(ctx, enc, &self.ghosts, &bind.ghosts, agents.div_ceil(64));
        dispatch(ctx, enc, &self.pipeline, &bind.main, agents);
    }

    /// Every row's braking as the other agents' masks assume it (`make_ghosts` alone, the
    /// collision mask on): for tests.
    pub fn ghosts(
        &self,
        ctx: &GpuContext,
        map: &crate::features::GpuMap,
        agents: &crate::features::FeatureRows,
        states: &[AgentState],
    ) -> Result<Vec<MaskGhost>, GpuError> {
        let n = states.len();
        if agents.info.len() != n {
            return Err(GpuError::Input(format!("{} agents for {n} states", agents.info.len())));
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let cfg = SamplingConfig::default();
        let params = ctx.uniform("sample params", &sample_params(n as u32, 1, 0, &cfg));
        let mparams = ctx.uniform("mask params", &GpuMasks::params(swm_model::FeasibilityMask::default()));
        let info = ctx.storage_init("agent info", &agents.info)?;
        let state_in = ctx.storage_init("state in", states)?;
        let ghosts = GpuMasks::ghost_buffer(ctx, n)?;
        let bind = ctx.bind_at(
            &self.ghosts,
            &[(0, &params), (1, &map.words), (2, &info), (6, &state_in), (9, &mparams), (10, &ghosts)],
        );
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        dispatch(ctx, &mut enc, &self.ghosts, &bind, (n as u32).div_ceil(64));
        ctx.submit_and_wait(enc)?;
        ctx.read(&ghosts, n)
    }

    /// The masks around sampled tokens (`sampled`: the sampler's tokens and next states for
    /// `rows.states`, frame `step` of the rollout seeded `seed`): returns the tokens kept
    /// and the states after them. One upload and read-back; for tests and one-off use.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        ctx: &GpuContext,
        map: &crate::features::GpuMap,
        agents: &crate::features::FeatureRows,
        rows: &SampleRows,
        sampled: (&[u16], &[AgentState]),
        step: u32,
        seed: u64,
        cfg: &SamplingConfig,
        mask: swm_model::FeasibilityMask,
    ) -> Result<(Vec<u16>, Vec<AgentState>), GpuError> {
        let SampleRows { logits, keys, states } = *rows;
        let n = keys.len();
        if logits.len() != n * LOGIT_STRIDE
            || states.len() != n
            || agents.info.len() != n
            || sampled.0.len() != n
            || sampled.1.len() != n
        {
            return Err(GpuError::Input(format!("mask inputs of different lengths for {n} keys")));
        }
        if n == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let params = ctx.uniform("sample params", &sample_params(n as u32, step, seed, cfg));
        let mparams = ctx.uniform("mask params", &GpuMasks::params(mask));
        let info = ctx.storage_init("agent info", &agents.info)?;
        let members = ctx.storage_init("members", &agents.members)?;
        let keys_b = ctx.storage_init("keys", keys)?;
        let logits_b = ctx.storage_init("logits", logits)?;
        let state_in = ctx.storage_init("state in", states)?;
        let state_out = ctx.storage_init("state out", sampled.1)?;
        let toks: Vec<u32> = sampled.0.iter().map(|&t| u32::from(t)).collect();
        let tokens = ctx.storage_init("tokens", &toks)?;
        let ghosts = GpuMasks::ghost_buffer(ctx, n)?;
        let bind = self.bind(
            ctx,
            [
                &params, &map.words, &info, &members, &keys_b, &logits_b, &state_in, &state_out, &tokens, &mparams,
                &ghosts,
            ],
        );
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.encode(ctx, &mut enc, &bind, n as u32);
        ctx.submit_and_wait(enc)?;
        let toks: Vec<u32> = ctx.read(&tokens, n)?;
        let next: Vec<AgentState> = ctx.read(&state_out, n)?;
        Ok((toks.into_iter().map(|t| t as u16).collect(), next))
    }
}
