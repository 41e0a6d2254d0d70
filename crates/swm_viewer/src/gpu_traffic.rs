//! The world model driving the viewer's traffic on the GPU (`swm_gpu`'s rollout engine).
//!
//! The engine rolls out whole scenarios on the device, so the live world advances in chunks
//! of [`CHUNK_STEPS`] steps: each chunk is a scenario cut from the last [`HISTORY_STEPS`] + 1
//! frames ([`swm_model::scenario_from_history`]) — the teacher's at the hand-over, then the
//! model's own — rolled out with the feasibility masks, one sample. A chunk is computed on a
//! worker thread while the one before it is played, one frame per simulation step, so the
//! frames never wait for the device unless it falls a whole chunk behind. Chunk `n` is
//! scenario `n` of the run's seed: the draws are keyed as in any rollout, and one seed
//! gives the same traffic.
//!
//! Agents farther than the margin outside the twin's bounding box leave, as with the CPU's
//! model traffic.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use swm_gpu::{AdapterPreference, GpuContext, GpuNetwork, GpuRolloutEngine};
use swm_model::features::HISTORY_STEPS;
use swm_model::{FeasibilityMask, RolloutConfig, SamplingConfig};
use swm_sim::TrajectoryRecord;

use crate::imagination::LoadedModel;

/// Steps per chunk (1 s).
pub const CHUNK_STEPS: u32 = 10;

/// Which processor runs the world model when it drives the traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelBackend {
    /// A hardware GPU when there is one, else the CPU.
    #[default]
    Auto,
    /// The CPU (`swm_model::LiveRollout`, frame by frame).
    Cpu,
    /// The GPU engine on any adapter (Mesa's lavapipe too); an error when there is none.
    Gpu,
}

impl std::str::FromStr for ModelBackend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ModelBackend::Auto),
            "cpu" => Ok(ModelBackend::Cpu),
            "gpu" => Ok(ModelBackend::Gpu),
            _ => Err(format!("model backend {s:?}: expected auto, cpu or gpu")),
        }
    }
}

/// The device, the network and the rollout engine for one model and map (made once, shared
/// by the chunks' worker threads).
pub struct GpuTrafficEngine {
    ctx: GpuContext,
    net: GpuNetwork,
    engine: GpuRolloutEngine,
    model: Arc<LoadedModel>,
}

impl GpuTrafficEngine {
    /// Chooses an adapter (`pref`), uploads the network and packs the model's map.
    pub fn new(model: Arc<LoadedModel>, pref: AdapterPreference) -> Result<GpuTrafficEngine, String> {
        let ctx = GpuContext::new(pref).map_err(|e| e.to_string())?;
        let net = GpuNetwork::new(&ctx, &model.net).map_err(|e| e.to_string())?;
        let engine = GpuRolloutEngine::new(&ctx, &model.map).map_err(|e| e.to_string())?;
        Ok(GpuTrafficEngine { ctx, net, engine, model })
    }

    /// The adapter's name.
    pub fn adapter_name(&self) -> &str {
        &self.ctx.adapter().name
    }

    /// Whether this engine was made for `model`.
    pub fn serves(&self, model: &Arc<LoadedModel>) -> bool {
        Arc::ptr_eq(&self.model, model)
    }

    /// The next [`CHUNK_STEPS`] frames after `history` (chunk `chunk` of the run `seed`).
    fn chunk(
        &self,
        history: &[Vec<TrajectoryRecord>],
        chunk: u64,
        seed: u64,
    ) -> Result<Vec<Vec<TrajectoryRecord>>, String> {
        let scenario = swm_model::scenario_from_history(history, chunk);
        let cfg = RolloutConfig { steps: CHUNK_STEPS, samples: 1, seed, sampling: SamplingConfig::default() };
        let started = std::time::Instant::now();
        let (out, times) = self
            .engine
            .rollout(
                &self.ctx,
                &self.net,
                &self.model.map,
                std::slice::from_ref(&scenario),
                &cfg,
                None,
                &[],
                FeasibilityMask::default(),
            )
            .map_err(|e| e.to_string())?;
        tracing::debug!(
            chunk,
            agents = scenario.agents.len(),
            setup_s = times.setup_s,
            device_s = times.device_s,
            records_s = times.records_s,
            wall_s = started.elapsed().as_secs_f64(),
            "GPU traffic chunk"
        );
        let mut frames = vec![Vec::new(); CHUNK_STEPS as usize];
        for (frame, record) in out.into_iter().flat_map(|r| r.samples).flatten() {
            if let Some(f) = usize::try_from(frame - 1).ok().and_then(|i| frames.get_mut(i)) {
                f.push(record);
            }
        }
        Ok(frames)
    }
}

type Chunk = JoinHandle<Result<Vec<Vec<TrajectoryRecord>>, String>>;

/// The world model moving every agent on the GPU, a chunk ahead of what is drawn.
pub struct GpuTraffic {
    engine: Arc<GpuTrafficEngine>,
    /// The last frames up to the end of the frames computed (played or not), oldest first.
    history: VecDeque<Vec<TrajectoryRecord>>,
    /// Frames computed, not yet played.
    ready: VecDeque<Vec<TrajectoryRecord>>,
    /// The chunk being computed.
    task: Option<Chunk>,
    next_chunk: u64,
    seed: u64,
    bbox_m: [f64; 4],
}

impl GpuTraffic {
    /// Takes over from `history` (the teacher's last frames, oldest first) and starts the
    /// first chunk. Agents outside `bbox_m` are dropped as they leave.
    pub fn start(
        engine: Arc<GpuTrafficEngine>,
        history: &[Vec<TrajectoryRecord>],
        seed: u64,
        bbox_m: [f64; 4],
    ) -> GpuTraffic {
        let keep = history.len().min(HISTORY_STEPS + 1);
        let mut me = GpuTraffic {
            engine,
            history: history[history.len() - keep..].iter().cloned().collect(),
            ready: VecDeque::new(),
            task: None,
            next_chunk: 0,
            seed,
            bbox_m,
        };
        me.spawn_next();
        me
    }

    /// The adapter's name (for the panel).
    pub fn adapter_name(&self) -> &str {
        self.engine.adapter_name()
    }

    fn spawn_next(&mut self) {
        if self.task.is_some() {
            return;
        }
        let engine = self.engine.clone();
        let history: Vec<Vec<TrajectoryRecord>> = self.history.iter().cloned().collect();
        let (chunk, seed) = (self.next_chunk, self.seed);
        self.next_chunk += 1;
        let spawned = std::thread::Builder::new()
            .name("swm-gpu-traffic".into())
            .spawn(move || engine.chunk(&history, chunk, seed));
        match spawned {
            Ok(h) => self.task = Some(h),
            Err(e) => tracing::error!(error = %e, "could not start the GPU traffic's worker thread"),
        }
    }

    /// The next frame's records (waiting for the chunk in flight when none is ready), and
    /// the chunk after it started once this one is being played.
    pub fn next_frame(&mut self) -> Result<Vec<TrajectoryRecord>, String> {
        if self.ready.is_empty() {
            let task = self.task.take().ok_or("the GPU traffic has no chunk in flight")?;
            let frames = task.join().map_err(|_| "the GPU traffic's worker panicked".to_string())??;
            let b = self.bbox_m;
            for mut f in frames {
                f.retain(|r| r.x_m >= b[0] && r.x_m <= b[2] && r.y_m >= b[1] && r.y_m <= b[3]);
                self.history.push_back(f.clone());
                self.ready.push_back(f);
            }
            while self.history.len() > HISTORY_STEPS + 1 {
                self.history.pop_front();
            }
            self.spawn_next();
        }
        self.ready.pop_front().ok_or_else(|| "the GPU rollout returned no frames".to_string())
    }
}
