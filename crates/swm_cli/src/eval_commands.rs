//! `swm eval`: realism of the world model against held-out teacher scenarios, with the
//! baselines in the same table (see `swm_eval` for the metrics).
//!
//! The teacher runs on the twin (one seed), scenarios are cut out of its log after a
//! warm-up, and every method samples the same number of futures of every scenario:
//! * `model`: the world model (`swm_model`), closed loop, every agent, with its rollout
//!   feasibility masks (collision, off-road; `--masks` picks them);
//! * `constant_velocity`: every agent keeps its last velocity;
//! * `random`: the world model's rollout loop with uniformly random motion tokens
//!   (sampling temperature 10⁶, no top-k/top-p cut, no masks);
//! * `teacher_other_seed`: the teacher itself from the same state under other seeds
//!   (`swm_eval::teacher`).
//!
//! Writes `eval.json` (one object per method) and PNG plots into the output directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use swm_dataset::ScenarioOptions;
use swm_eval::{EvalConfig, Evaluator, MethodReport, TeacherEvalOptions, constant_velocity, teacher_eval_set};
use swm_model::rollout::{FeasibilityMask, rollout_scenarios_masked};
use swm_model::{MapContext, Network, RolloutConfig, SamplingConfig};
use swm_sim::SimConfig;
use swm_twin::Twin;

use crate::commands::load;

/// The methods `swm eval` knows, in table order.
pub const METHODS: [&str; 4] = ["model", "constant_velocity", "random", "teacher_other_seed"];

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The twin (.swt) to evaluate on; `default` for the embedded procedural district.
    pub twin: String,
    /// A model file (.safetensors); default: the shipped assets/model/default.safetensors.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Sampled futures per scenario and method.
    #[arg(long, default_value_t = 8)]
    pub samples: u32,
    /// Seed of the teacher run (the held-out log).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seed of the model's and the random baseline's token draws.
    #[arg(long, default_value_t = 7)]
    pub rollout_seed: u64,
    /// Teacher demand: vehicles and pedestrians kept in the district.
    #[arg(long, default_value_t = 300)]
    pub vehicles: u32,
    #[arg(long, default_value_t = 100)]
    pub pedestrians: u32,
    /// Seconds of teacher traffic before the first scenario.
    #[arg(long, default_value_t = 60.0)]
    pub warmup: f64,
    /// Seconds over which scenario start times are taken (one every --stride).
    #[arg(long, default_value_t = 60.0)]
    pub window: f64,
    #[arg(long, default_value_t = 5.0)]
    pub stride: f64,
    /// Scenario future (s) and radius (m) around the centre vehicle.
    #[arg(long, default_value_t = 8.0)]
    pub future: f64,
    #[arg(long, default_value_t = 50.0)]
    pub radius: f64,
    /// At most this many scenarios (evenly spaced).
    #[arg(long, default_value_t = 100)]
    pub max_scenarios: usize,
    /// Only these methods (comma-separated; default: all).
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
    /// Where the model's and the random baseline's rollouts run: `cpu` (the reference) or
    /// `gpu` (swm_gpu: a real GPU, else Mesa's lavapipe; equal in distribution).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    pub backend: String,
    /// The model's feasibility masks, as in `swm rollout`: `all` (the default), `collision`,
    /// `offroad`, or `none` (the network alone).
    #[arg(long, default_value = "all", value_parser = ["all", "collision", "offroad", "none"])]
    pub masks: String,
    /// Print one JSON object, keyed by method, instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Output directory (eval.json and plots).
    #[arg(short, long)]
    pub output: PathBuf,
}

fn twin_of(arg: &str) -> Result<Twin> {
    if arg == "default" {
        let (twin, _) = swm_procgen::build_district(&swm_procgen::DistrictParams::embedded_default())
            .context("building the embedded default district")?;
        Ok(twin)
    } else {
        load(std::path::Path::new(arg))
    }
}

fn to_eval(r: swm_model::ScenarioRollout) -> swm_eval::ScenarioRollout {
    swm_eval::ScenarioRollout { scenario_id: r.scenario_id, samples: r.samples }
}

pub fn eval_cmd(a: EvalArgs, quiet: bool) -> Result<()> {
    let methods: Vec<String> = if a.methods.is_empty() {
        METHODS.iter().map(|s| s.to_string()).collect()
    } else {
        for m in &a.methods {
            if !METHODS.contains(&m.as_str()) {
                bail!("unknown method {m:?}; known: {}", METHODS.join(", "));
            }
        }
        a.methods.clone()
    };
    if a.samples == 0 {
        bail!("--samples must be at least 1");
    }
    let needs_model = methods.iter().any(|m| m == "model" || m == "random");
    let model_path = a.model.clone().unwrap_or_else(swm_model::default_model_path);
    let net = if needs_model { Some(Network::load(&model_path)?) } else { None };
    let twin = Arc::new(twin_of(&a.twin)?);
    let steps = 3 + methods.len() as u64;
    let pb = crate::commands::progress(quiet, steps, "teacher run and scenarios");
    let t0 = Instant::now();
    let opts = TeacherEvalOptions {
        sim: SimConfig {
            seed: a.seed,
            vehicles: a.vehicles,
            pedestrians: a.pedestrians,
            duration_s: a.warmup + a.window + a.future,
            ..Default::default()
        },
        warmup_s: a.warmup,
        window_s: a.window,
        scenarios: ScenarioOptions { future_s: a.future, radius_m: a.radius, stride_s: a.stride, ..Default::default() },
        max_scenarios: a.max_scenarios,
        samples: a.samples,
    };
    let set = teacher_eval_set(twin.clone(), &opts)?;
    let scenarios = &set.scenarios;
    let future_frames = (a.future * 10.0).round() as u32;
    pb.inc(1);
    pb.set_message("road raster");
    let ev = Evaluator::for_scenarios(&twin, scenarios, &EvalConfig::default())?;
    pb.inc(1);
    let map = if needs_model {
        pb.set_message("model map");
        Some(MapContext::new(&twin, Some(a.seed))?)
    } else {
        None
    };
    pb.inc(1);
    let gpu = match (a.backend.as_str(), net.as_ref()) {
        ("gpu", Some(net)) => {
            let ctx = swm_gpu::GpuContext::new(swm_gpu::AdapterPreference::Auto)?;
            tracing::info!(adapter = %ctx.adapter(), "GPU rollouts");
            let gnet = swm_gpu::GpuNetwork::new(&ctx, net)?;
            Some((ctx, gnet))
        }
        _ => None,
    };
    let mut reports: Vec<(String, MethodReport)> = Vec::new();
    let mut teacher = Some(set.teacher_other_seed.clone());
    for m in &methods {
        pb.set_message(format!("rollouts: {m}"));
        let rollouts: Vec<swm_eval::ScenarioRollout> = match m.as_str() {
            "constant_velocity" => scenarios.iter().map(|s| constant_velocity(s, future_frames, a.samples)).collect(),
            "teacher_other_seed" => teacher.take().unwrap_or_default(),
            "model" | "random" => {
                let sampling = if m == "model" {
                    SamplingConfig::default()
                } else {
                    SamplingConfig { temperature: 1e6, top_k: 0, top_p: 1.0 }
                };
                let cfg = RolloutConfig { steps: future_frames, samples: a.samples, seed: a.rollout_seed, sampling };
                let (net, map) = (net.as_ref().expect("loaded"), map.as_ref().expect("built"));
                // The model with its rollout feasibility masks (--masks); random tokens without them.
                let mask = if m == "model" {
                    crate::model_commands::feasibility_mask(&a.masks)
                } else {
                    FeasibilityMask::NONE
                };
                let out = match &gpu {
                    Some((ctx, gnet)) => {
                        swm_gpu::rollout_scenarios_gpu_masked(ctx, gnet, map, scenarios, &cfg, None, mask)?
                    }
                    None => rollout_scenarios_masked(net, map, scenarios, &cfg, None, mask),
                };
                out.into_iter().map(to_eval).collect()
            }
            _ => unreachable!("checked above"),
        };
        let report = ev.evaluate(scenarios, &rollouts).with_context(|| format!("evaluating {m}"))?;
        reports.push((m.clone(), report));
        pb.inc(1);
    }
    pb.finish_and_clear();
    std::fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let obj: serde_json::Map<String, serde_json::Value> =
        reports.iter().map(|(m, r)| (m.clone(), serde_json::to_value(r).expect("serialisable"))).collect();
    let mut doc = serde_json::Map::new();
    doc.insert("twin".into(), serde_json::Value::String(a.twin.clone()));
    doc.insert("model".into(), serde_json::Value::String(model_path.display().to_string()));
    doc.insert("teacher".into(), serde_json::to_value(&opts)?);
    doc.insert("rollout_seed".into(), a.rollout_seed.into());
    doc.insert("backend".into(), serde_json::Value::String(a.backend.clone()));
    doc.insert("masks".into(), serde_json::Value::String(a.masks.clone()));
    doc.insert("methods".into(), serde_json::Value::Object(obj.clone()));
    let json_path = a.output.join("eval.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&serde_json::Value::Object(doc))?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let plots = swm_eval::plot_reports(&reports, &a.output)?;
    if a.json {
        println!("{}", serde_json::Value::Object(obj));
        return Ok(());
    }
    println!(
        "{} scenarios ({} agents) x {} samples on {} in {:.1} s",
        scenarios.len(),
        reports.first().map(|r| r.1.agents).unwrap_or(0),
        a.samples,
        a.twin,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "{:<20} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7}",
        "method", "meta", "kinem.", "inter.", "map", "minADE m", "coll.", "offroad", "IoU 1s", "IoU 3s"
    );
    for (m, r) in &reports {
        println!(
            "{:<20} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>8.2} {:>7.3} {:>7.3} {:>7.3} {:>7.3}",
            m,
            r.meta_metric,
            r.kinematic_metrics,
            r.interactive_metrics,
            r.map_based_metrics,
            r.min_ade_m,
            r.collision_rate,
            r.offroad_rate,
            r.occupancy_iou_1s,
            r.occupancy_iou_3s
        );
    }
    if let Some((_, r)) = reports.first() {
        println!(
            "log: collision rate {:.3}, off-road rate {:.3}; copy-last occupancy IoU 1 s {:.3}, 3 s {:.3}",
            r.log_collision_rate, r.log_offroad_rate, r.copy_last_occupancy_iou_1s, r.copy_last_occupancy_iou_3s
        );
    }
    println!("wrote {} and {} plots into {}", json_path.display(), plots.len(), a.output.display());
    Ok(())
}
