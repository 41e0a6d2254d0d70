//! Rollout engines.
//!
//! [`Backend`] is what a configuration asks for; [`Backend::engine`] gives the
//! [`RolloutEngine`] that runs it, or [`BatchError::BackendUnavailable`] when this build
//! has none. An engine must give, for every (scenario, sample), exactly the records of
//! [`swm_model::rollout::rollout_one`] (the reference), whatever its thread count, so that
//! chunks are the same bytes on every backend that claims it.

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
    /// The wgpu engine (`swm_gpu`): not wired into this build yet.
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
            Backend::Gpu => Err(BatchError::BackendUnavailable {
                backend: "gpu",
                reason: "swm_batch is not yet linked to the GPU engine (swm_gpu); use backend = \"cpu\"".to_string(),
            }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_says_it_is_not_in_this_build() {
        let e = Backend::Gpu.engine().err().expect("no GPU engine yet").to_string();
        assert!(e.contains("`gpu` is not available in this build"), "{e}");
        assert_eq!(Backend::Cpu.engine().unwrap().backend(), Backend::Cpu);
    }
}
