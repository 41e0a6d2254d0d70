//! Rollout engines.
//!
//! [`Backend`] is what a configuration asks for; [`Backend::engine`] gives the
//! [`RolloutEngine`] that runs it, or [`BatchError::BackendUnavailable`] when this build
//! has none (no GPU adapter: the error names what was tried). The CPU engine gives, for
//! every (scenario, sample), exactly the records of [`swm_model::rollout::rollout_one`]
//! (the reference), whatever its thread count. The GPU engine
//! ([`swm_gpu::rollout_scenarios_gpu`]) agrees with it within the GPU crate's stated
//! tolerances (positions within 1e-4 m while the same tokens are drawn), not bit for bit,
//! so the backend is part of the
//! configuration a batch output is bound to; on one backend and device a chunk is always the
//! same bytes (each chunk is one fixed batch).

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use swm_dataset::Scenario;
use swm_model::{MapContext, Network, RolloutConfig, ScenarioRollout};

use crate::BatchError;

/// Which engine rolls the model out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The pure-Rust CPU forward pass, rayon over (scenario, sample).
    #[default]
    Cpu,
    /// The wgpu engine (`swm_gpu`): a real GPU when there is one, else Mesa's lavapipe.
    Gpu,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        }
    }

    /// The engine of this backend.
    pub fn engine(self) -> Result<Box<dyn RolloutEngine>, BatchError> {
        match self {
            Backend::Cpu => Ok(Box::new(CpuEngine)),
            Backend::Gpu => match swm_gpu::GpuContext::new(swm_gpu::AdapterPreference::Auto) {
                Ok(ctx) => Ok(Box::new(GpuEngine { ctx })),
                Err(e) => Err(BatchError::BackendUnavailable { backend: "gpu", reason: e.to_string() }),
            },
        }
    }
}

/// Rolls out scenarios.
pub trait RolloutEngine: Send + Sync {
    fn backend(&self) -> Backend;

    /// `cfg.samples` samples of every scenario, in (scenario, sample) order; adds 1 to
    /// `done` after each (scenario, sample) (for progress bars).
    fn rollout(
        &self,
        net: &Network,
        map: &MapContext,
        scenarios: &[Scenario],
        cfg: &RolloutConfig,
        done: &AtomicU64,
    ) -> Result<Vec<ScenarioRollout>, BatchError>;
}

/// The CPU engine: [`swm_model::rollout::rollout_one`] per (scenario, sample), in parallel
/// on the current rayon pool, collected in order.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuEngine;

impl RolloutEngine for CpuEngine {
    fn backend(&self) -> Backend {
        Backend::Cpu
    }

    fn rollout(
        &self,
        net: &Network,
        map: &MapContext,
        scenarios: &[Scenario],
        cfg: &RolloutConfig,
        done: &AtomicU64,
    ) -> Result<Vec<ScenarioRollout>, BatchError> {
        let s = cfg.samples as usize;
        let flat: Vec<_> = (0..scenarios.len() * s)
            .into_par_iter()
            .map(|k| {
                let r = swm_model::rollout::rollout_one(net, map, &scenarios[k / s], cfg, (k % s) as u32, None);
                done.fetch_add(1, Ordering::Relaxed);
                r
            })
            .collect();
        let mut it = flat.into_iter();
        Ok(scenarios
            .iter()
            .map(|sc| ScenarioRollout { scenario_id: sc.scenario_id, samples: it.by_ref().take(s).collect() })
            .collect())
    }
}

/// The GPU engine: [`swm_gpu::rollout_scenarios_gpu`] over the whole chunk at once (the
/// network's weights are uploaded once per call).
pub struct GpuEngine {
    ctx: swm_gpu::GpuContext,
}

impl RolloutEngine for GpuEngine {
    fn backend(&self) -> Backend {
        Backend::Gpu
    }

    fn rollout(
        &self,
        net: &Network,
        map: &MapContext,
        scenarios: &[Scenario],
        cfg: &RolloutConfig,
        done: &AtomicU64,
    ) -> Result<Vec<ScenarioRollout>, BatchError> {
        let gpu_err = |e: swm_gpu::GpuError| BatchError::BackendUnavailable { backend: "gpu", reason: e.to_string() };
        let gnet = swm_gpu::GpuNetwork::new(&self.ctx, net).map_err(gpu_err)?;
        let out = swm_gpu::rollout_scenarios_gpu(&self.ctx, &gnet, map, scenarios, cfg, None).map_err(gpu_err)?;
        done.fetch_add(scenarios.len() as u64 * cfg.samples as u64, Ordering::Relaxed);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_say_what_they_are() {
        assert_eq!(Backend::Cpu.engine().unwrap().backend(), Backend::Cpu);
        // With an adapter (lavapipe in CI) the GPU engine exists; without one the error
        // says why.
        match Backend::Gpu.engine() {
            Ok(e) => assert_eq!(e.backend(), Backend::Gpu),
            Err(e) => assert!(e.to_string().contains("`gpu` is not available"), "{e}"),
        }
    }
}
