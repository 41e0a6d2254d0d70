//! The network's forward pass on the GPU.
//!
//! The weights of a [`Network`] are uploaded once into one storage buffer
//! ([`GpuNetwork::new`]). A batch of agents ([`ForwardBatch`]) is laid out **class-sorted**:
//! rows `0..vehicles` are vehicles, the rest pedestrians, so each head is one tiled matrix
//! multiply over a contiguous range of rows. Per batch, in order:
//!
//! 1. `nbr_mlp.wgsl`: the neighbour MLP fused with the masked max-pool and the concatenation
//!    with the ego features (4 agents per workgroup, hidden activations in workgroup memory):
//!    features `[B, FEATURE_DIM]` → x `[B, EGO_DIM + 64]`;
//! 2. `linear.wgsl` (64 × 64 tiles, bias and ReLU fused): x → trunk.0 → t1 `[B, 256]` →
//!    trunk.1 → t2 `[B, 256]`;
//! 3. `linear.wgsl` per head: t2 rows of vehicles → `head_vehicle`, of pedestrians →
//!    `head_pedestrian`, into logits `[B, 143]` (pedestrian rows use their first 81).
//!
//! Every kernel linearises its workgroups over a 2-D grid, so a batch needs one dispatch per
//! layer whatever its size (up to the buffer limits: about 4 KiB of activations per agent).

use swm_model::Network;
use swm_model::features::{EGO_DIM, FEATURE_DIM, NEIGHBOUR_DIM, NEIGHBOURS};
use swm_model::net::logit_offsets;
use swm_model::tokens::{AgentClass, PEDESTRIAN_TOKENS, VEHICLE_TOKENS};

use crate::context::dispatch;
use crate::layout::{LinearParams, NbrParams};
use crate::{GpuContext, GpuError, shaders};

// The fused neighbour kernel has these sizes built in.
const _: () = assert!(NEIGHBOURS == 8 && NEIGHBOUR_DIM == 14);
/// Hidden width of the neighbour MLP the kernel supports (its workgroup size).
pub const NBR_HIDDEN: usize = 64;
/// Agents per workgroup of the neighbour kernel.
const NBR_AGENTS_PER_GROUP: u32 = 4;
/// Rows and columns of a tile of the linear kernel.
const TILE: u32 = 64;
/// Floats between rows of the logits buffer (the larger vocabulary).
pub const LOGIT_STRIDE: usize = VEHICLE_TOKENS;

/// Offsets (in floats) of every tensor in the weights buffer.
#[derive(Clone, Copy, Debug, Default)]
struct Offsets {
    nbr0_w: u32,
    nbr0_b: u32,
    /// Layer `nbr.1`'s weight transposed (`[in, out]`).
    nbr1_wt: u32,
    nbr1_b: u32,
    trunk0_w: u32,
    trunk0_b: u32,
    trunk1_w: u32,
    trunk1_b: u32,
    head_v_w: u32,
    head_v_b: u32,
    head_p_w: u32,
    head_p_b: u32,
}

/// A network's weights on the GPU and the pipelines of its forward pass.
pub struct GpuNetwork {
    trunk_hidden: usize,
    weights: wgpu::Buffer,
    off: Offsets,
    nbr: wgpu::ComputePipeline,
    linear: wgpu::ComputePipeline,
}

/// The buffers and bind groups of one batch shape: `agents` rows, the first `vehicles` of
/// them vehicles. Fill [`ForwardBatch::features`] (row-major `[agents, FEATURE_DIM]`, rows
/// class-sorted), encode with [`GpuNetwork::encode`], read [`ForwardBatch::logits`]
/// (`[agents, LOGIT_STRIDE]`).
pub struct ForwardBatch {
    pub agents: u32,
    pub vehicles: u32,
    pub features: wgpu::Buffer,
    pub logits: wgpu::Buffer,
    // Kept alive for the bind groups.
    _buffers: Vec<wgpu::Buffer>,
    /// (neighbour kernel?, bind group, workgroups) in order.
    passes: Vec<(bool, wgpu::BindGroup, u32)>,
}

impl ForwardBatch {
    /// The names of the batch's passes, in order.
    pub fn pass_names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.agents > 0 {
            v.extend(["nbr_mlp", "trunk.0", "trunk.1"]);
            if self.vehicles > 0 {
                v.push("head_vehicle");
            }
            if self.agents > self.vehicles {
                v.push("head_pedestrian");
            }
        }
        v
    }
}

impl GpuNetwork {
    /// Uploads the weights and builds the pipelines.
    pub fn new(ctx: &GpuContext, net: &Network) -> Result<GpuNetwork, GpuError> {
        if net.config.nbr_hidden != NBR_HIDDEN {
            return Err(GpuError::Unsupported(format!(
                "neighbour MLP width {} (the kernel is built for {NBR_HIDDEN})",
                net.config.nbr_hidden
            )));
        }
        let expect = net.config.layers();
        if net.layers().len() != expect.len()
            || net.layers().iter().zip(&expect).any(|(l, (_, [o, i]))| l.n_out != *o || l.n_in != *i)
        {
            return Err(GpuError::Unsupported("layer shapes differ from the network's config".into()));
        }
        let mut data: Vec<f32> = Vec::with_capacity(net.parameters());
        let mut push = |v: &[f32]| -> u32 {
            let o = data.len() as u32;
            data.extend_from_slice(v);
            o
        };
        let l = net.layers();
        let h = NBR_HIDDEN;
        let mut nbr1_t = vec![0.0f32; h * h];
        for o in 0..h {
            for i in 0..h {
                nbr1_t[i * h + o] = l[1].weight[o * h + i];
            }
        }
        let off = Offsets {
            nbr0_w: push(&l[0].weight),
            nbr0_b: push(&l[0].bias),
            nbr1_wt: push(&nbr1_t),
            nbr1_b: push(&l[1].bias),
            trunk0_w: push(&l[2].weight),
            trunk0_b: push(&l[2].bias),
            trunk1_w: push(&l[3].weight),
            trunk1_b: push(&l[3].bias),
            head_v_w: push(&l[4].weight),
            head_v_b: push(&l[4].bias),
            head_p_w: push(&l[5].weight),
            head_p_b: push(&l[5].bias),
        };
        let weights = ctx.storage_init("network weights", &data)?;
        let nbr = ctx.pipeline("nbr_mlp", shaders::NBR_MLP, "main")?;
        let linear = ctx.pipeline("linear", shaders::LINEAR, "main")?;
        Ok(GpuNetwork { trunk_hidden: net.config.trunk_hidden, weights, off, nbr, linear })
    }

    /// Allocates a batch of `agents` rows whose first `vehicles` are vehicles.
    pub fn batch(&self, ctx: &GpuContext, agents: u32, vehicles: u32) -> Result<ForwardBatch, GpuError> {
        if vehicles > agents {
            return Err(GpuError::Input(format!("{vehicles} vehicles in a batch of {agents} agents")));
        }
        let b = u64::from(agents);
        let t = self.trunk_hidden as u32;
        let x_stride = (EGO_DIM + NBR_HIDDEN) as u32;
        let features = ctx.storage("features", b * FEATURE_DIM as u64 * 4)?;
        let x = ctx.storage("x", b * u64::from(x_stride) * 4)?;
        let t1 = ctx.storage("t1", b * u64::from(t) * 4)?;
        let t2 = ctx.storage("t2", b * u64::from(t) * 4)?;
        let logits = ctx.storage("logits", b * LOGIT_STRIDE as u64 * 4)?;
        let mut buffers = Vec::new();
        let mut passes = Vec::new();
        if agents > 0 {
            let p = NbrParams {
                agents,
                feature_dim: FEATURE_DIM as u32,
                ego_dim: EGO_DIM as u32,
                x_stride,
                w0_offset: self.off.nbr0_w,
                b0_offset: self.off.nbr0_b,
                w1t_offset: self.off.nbr1_wt,
                b1_offset: self.off.nbr1_b,
            };
            let u = ctx.uniform("nbr params", &p);
            passes.push((
                true,
                ctx.bind(&self.nbr, &[&u, &features, &self.weights, &x]),
                agents.div_ceil(NBR_AGENTS_PER_GROUP),
            ));
            buffers.push(u);
        }
        // (rows, first row, n, k, input, input stride, weight, bias, output, output stride, relu)
        type Layer<'a> = (u32, u32, u32, u32, &'a wgpu::Buffer, u32, u32, u32, &'a wgpu::Buffer, u32, bool);
        let layers: [Layer; 4] = [
            (agents, 0, t, x_stride, &x, x_stride, self.off.trunk0_w, self.off.trunk0_b, &t1, t, true),
            (agents, 0, t, t, &t1, t, self.off.trunk1_w, self.off.trunk1_b, &t2, t, true),
            (
                vehicles,
                0,
                VEHICLE_TOKENS as u32,
                t,
                &t2,
                t,
                self.off.head_v_w,
                self.off.head_v_b,
                &logits,
                LOGIT_STRIDE as u32,
                false,
            ),
            (
                agents - vehicles,
                vehicles,
                PEDESTRIAN_TOKENS as u32,
                t,
                &t2,
                t,
                self.off.head_p_w,
                self.off.head_p_b,
                &logits,
                LOGIT_STRIDE as u32,
                false,
            ),
        ];
        for (m, row0, n, k, a, lda, w, bias, c, ldc, relu) in layers {
            if m == 0 {
                continue;
            }
            let tiles_n = n.div_ceil(TILE);
            let p = LinearParams {
                m,
                n,
                k,
                relu: u32::from(relu),
                a_offset: row0 * lda,
                a_group_rows: 1,
                a_group_stride: lda,
                a_row_stride: 0,
                w_offset: w,
                b_offset: bias,
                c_offset: row0 * ldc,
                c_stride: ldc,
                tiles_n,
                ..Default::default()
            };
            let u = ctx.uniform("linear params", &p);
            passes.push((false, ctx.bind(&self.linear, &[&u, a, &self.weights, c]), m.div_ceil(TILE) * tiles_n));
            buffers.push(u);
        }
        buffers.extend([x, t1, t2]);
        Ok(ForwardBatch { agents, vehicles, features, logits, _buffers: buffers, passes })
    }

    /// Records the forward pass of `batch` (reads its features, writes its logits).
    pub fn encode(&self, ctx: &GpuContext, enc: &mut wgpu::CommandEncoder, batch: &ForwardBatch) {
        for i in 0..batch.passes.len() {
            self.encode_pass(ctx, enc, batch, i);
        }
    }

    /// Records pass `i` alone (0: neighbour MLP, then trunk.0, trunk.1 and the heads that
    /// have rows), for per-layer timings; see [`ForwardBatch::pass_names`].
    pub fn encode_pass(&self, ctx: &GpuContext, enc: &mut wgpu::CommandEncoder, batch: &ForwardBatch, i: usize) {
        if let Some((is_nbr, bind, groups)) = batch.passes.get(i) {
            let pipeline = if *is_nbr { &self.nbr } else { &self.linear };
            dispatch(ctx, enc, pipeline, bind, *groups);
        }
    }

    /// The CPU forward's contract ([`Network::forward`]): logits of every feature row for
    /// its class's head, ragged in row order (see [`logit_offsets`]). Uploads, runs and
    /// reads back; rollouts use [`GpuNetwork::batch`] and [`GpuNetwork::encode`] instead.
    pub fn forward(&self, ctx: &GpuContext, features: &[f32], classes: &[AgentClass]) -> Result<Vec<f32>, GpuError> {
        if features.len() != classes.len() * FEATURE_DIM {
            return Err(GpuError::Input(format!(
                "{} feature floats for {} rows of {FEATURE_DIM}",
                features.len(),
                classes.len()
            )));
        }
        let order: Vec<usize> = (0..classes.len())
            .filter(|&r| classes[r] == AgentClass::Vehicle)
            .chain((0..classes.len()).filter(|&r| classes[r] != AgentClass::Vehicle))
            .collect();
        let vehicles = classes.iter().filter(|c| **c == AgentClass::Vehicle).count() as u32;
        let batch = self.batch(ctx, classes.len() as u32, vehicles)?;
        if !classes.is_empty() {
            let mut sorted = Vec::with_capacity(features.len());
            for &r in &order {
                sorted.extend_from_slice(&features[r * FEATURE_DIM..(r + 1) * FEATURE_DIM]);
            }
            ctx.queue.write_buffer(&batch.features, 0, bytemuck::cast_slice(&sorted));
        }
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.encode(ctx, &mut enc, &batch);
        ctx.submit_and_wait(enc)?;
        let padded: Vec<f32> = ctx.read(&batch.logits, classes.len() * LOGIT_STRIDE)?;
        let offs = logit_offsets(classes);
        let mut out = vec![0.0f32; *offs.last().unwrap_or(&0)];
        for (j, &r) in order.iter().enumerate() {
            let v = classes[r].vocab();
            out[offs[r]..offs[r] + v].copy_from_slice(&padded[j * LOGIT_STRIDE..j * LOGIT_STRIDE + v]);
        }
        Ok(out)
    }
}
