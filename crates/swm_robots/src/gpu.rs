//! World-model futures on the GPU engine (feature `gpu`): [`GpuWorldModel`] predicts what
//! [`WorldModel`] predicts, with the rollouts on `swm_gpu` (a real GPU, else Mesa's
//! lavapipe). The robot's candidate plans go to the device as scripted agents
//! (`swm_gpu::ScriptedAgent`), so a prediction reads nothing back until its futures; the
//! packed map and the pipelines are built once, at construction.

use std::sync::Arc;

use swm_gpu::{GpuContext, GpuNetwork, GpuRolloutEngine, ScriptedAgent};
use swm_model::tokens::Kinematics;

use crate::RobotError;
use crate::planner::{Futures, PlanInput, Predictor, WorldModel, futures_of};
use crate::robot::RobotState;

/// [`WorldModel`]'s predictor on the GPU engine (module docs).
pub struct GpuWorldModel {
    /// The settings (samples, radius, agents, sampling, masks), the model and the map.
    pub model: WorldModel,
    ctx: Arc<GpuContext>,
    net: GpuNetwork,
    engine: GpuRolloutEngine,
}

impl GpuWorldModel {
    /// Uploads the model's network and map to `ctx`'s device.
    pub fn new(ctx: Arc<GpuContext>, model: WorldModel) -> Result<GpuWorldModel, RobotError> {
        let net = GpuNetwork::new(&ctx, &model.net)?;
        let engine = GpuRolloutEngine::new(&ctx, &model.map)?;
        Ok(GpuWorldModel { model, ctx, net, engine })
    }
}

impl Predictor for GpuWorldModel {
    fn name(&self) -> &'static str {
        "world-model-gpu"
    }

    /// As [`WorldModel`]'s; should the device fail, the CPU predicts (logged as a warning).
    fn predict(&mut self, input: &PlanInput, plans: &[Vec<RobotState>], steps: usize, call: u64) -> Futures {
        let m = &self.model;
        let scenarios: Vec<_> = (0..plans.len()).map(|f| m.scenario(input, f as u64, steps)).collect();
        let scripts: Vec<ScriptedAgent> = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .map(|(f, p)| ScriptedAgent {
                scenario: f,
                agent_id: 0,
                states: p
                    .iter()
                    .map(|s| Kinematics { point_enu: s.point_enu, heading_rad: s.heading_rad, speed_mps: s.speed_mps })
                    .collect(),
            })
            .collect();
        let cfg = m.rollout_config(input, steps, call);
        match self.engine.rollout(&self.ctx, &self.net, &m.map, &scenarios, &cfg, None, &scripts, m.mask) {
            Ok((out, _)) => futures_of(&out, input, plans, steps),
            Err(e) => {
                tracing::warn!(error = %e, "GPU prediction failed; predicting on the CPU");
                self.model.predict(input, plans, steps, call)
            }
        }
    }
}
