//! Tuning rollout settings on a held-out *procedural* district (never real Seoul):
//! builds the district, runs the teacher once, cuts scenarios like `swm eval`, then rolls
//! the model out under every setting given and prints the `swm eval` numbers of each.
//!
//! ```sh
//! cargo run --release -p swm_model --example tune_rollout -- SEED SCENARIOS SAMPLES \
//!     [MODEL] -- T,TOPK,TOPP,MASK ...
//! ```
//! `MASK` is `none`, `coll`, `off` or `both`. The district is the embedded default's
//! parameters with seed `SEED` (use one outside the training seeds).

use std::sync::Arc;

use swm_dataset::ScenarioOptions;
use swm_eval::{EvalConfig, Evaluator, TeacherEvalOptions, teacher_eval_set};
use swm_model::{FeasibilityMask, MapContext, Network, RolloutConfig, SamplingConfig, rollout_scenarios_masked};
use swm_sim::SimConfig;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let (head, settings) = (&args[..split], &args[(split + 1).min(args.len())..]);
    let seed: u64 = head.first().map(|s| s.parse()).transpose()?.unwrap_or(101);
    let max_scenarios: usize = head.get(1).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let samples: u32 = head.get(2).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let model = head.get(3).map(std::path::PathBuf::from).unwrap_or_else(swm_model::default_model_path);
    let net = Network::load(&model)?;
    let params = swm_procgen::DistrictParams::embedded_default().with_seed(seed);
    let (twin, _) = swm_procgen::build_district(&params)?;
    let twin = Arc::new(twin);
    let opts = TeacherEvalOptions {
        sim: SimConfig { seed: 1, vehicles: 300, pedestrians: 100, duration_s: 128.0, ..Default::default() },
        warmup_s: 60.0,
        window_s: 60.0,
        scenarios: ScenarioOptions { future_s: 8.0, radius_m: 50.0, stride_s: 5.0, ..Default::default() },
        max_scenarios,
        samples: 1,
    };
    let set = teacher_eval_set(twin.clone(), &opts)?;
    let ev = Evaluator::for_scenarios(&twin, &set.scenarios, &EvalConfig::default())?;
    let map = MapContext::new(&twin, Some(1))?;
    println!("procgen seed {seed}: {} scenarios x {samples} samples, model {}", set.scenarios.len(), model.display());
    println!(
        "{:<24} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "setting", "meta", "kin", "int", "map", "minADE", "coll", "off", "iou3", "secs"
    );
    let log = ev.evaluate(&set.scenarios, &set.teacher_other_seed)?;
    println!("log: collision {:.3}, off-road {:.3}", log.log_collision_rate, log.log_offroad_rate);
    let defaults = ["1,0,0.95,none".to_string(), "1,0,0.95,both".to_string()];
    for s in if settings.is_empty() { &defaults[..] } else { settings } {
        let p: Vec<&str> = s.split(',').collect();
        let sampling = SamplingConfig { temperature: p[0].parse()?, top_k: p[1].parse()?, top_p: p[2].parse()? };
        let mask = match p.get(3).copied().unwrap_or("both") {
            "none" => FeasibilityMask::NONE,
            "coll" => FeasibilityMask { collision: true, offroad: false },
            "off" => FeasibilityMask { collision: false, offroad: true },
            _ => FeasibilityMask::default(),
        };
        let cfg = RolloutConfig { steps: 80, samples, seed: 7, sampling };
        let t0 = std::time::Instant::now();
        let r: Vec<swm_eval::ScenarioRollout> = rollout_scenarios_masked(&net, &map, &set.scenarios, &cfg, None, mask)
            .into_iter()
            .map(|r| swm_eval::ScenarioRollout { scenario_id: r.scenario_id, samples: r.samples })
            .collect();
        let secs = t0.elapsed().as_secs_f64();
        let m = ev.evaluate(&set.scenarios, &r)?;
        println!(
            "{:<24} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.2} {:>6.3} {:>6.3} {:>6.3} {:>6.1}",
            s,
            m.meta_metric,
            m.kinematic_metrics,
            m.interactive_metrics,
            m.map_based_metrics,
            m.min_ade_m,
            m.collision_rate,
            m.offroad_rate,
            m.occupancy_iou_3s,
            secs
        );
    }
    Ok(())
}
