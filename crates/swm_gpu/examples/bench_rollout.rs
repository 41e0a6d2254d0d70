//! Whole closed-loop rollouts on the GPU (`swm_gpu::rollout_scenarios_gpu`: features,
//! network, sampling, the feasibility masks and the kinematics on the device) against the
//! CPU backend (`swm_model::rollout_scenarios`, rayon over every core) on the same batch:
//! dense teacher scenarios of the procedural default district, the shipped model, default
//! sampling and masks, across sample counts (the batch is scenarios × samples × agents).
//!
//! ```text
//! cargo run --release -p swm_gpu --example bench_rollout -- [--samples 1,4,16] [--steps 40] [--scenarios 32] [--cpu-max-samples 64]
//! ```
//! Agent-steps per second = agents × samples × steps / wall time of the whole call (the GPU's
//! includes packing and uploading the map, building pipelines, reading the states back and
//! building the output records on the CPU); the device-loop column divides by the frame
//! loop alone (`swm_gpu::GpuRolloutTimes::device_s`, the chunked read-back included).

use std::sync::Arc;
use std::time::Instant;

use swm_dataset::ScenarioOptions;
use swm_eval::{TeacherEvalOptions, teacher_eval_set};
use swm_gpu::{AdapterPreference, GpuContext, GpuNetwork, rollout_scenarios_gpu_timed};
use swm_model::{MapContext, Network, RolloutConfig, SamplingConfig};
use swm_sim::SimConfig;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut samples = vec![1u32, 4, 16];
    let (mut steps, mut max_scenarios, mut cpu_max_samples) = (40u32, 32usize, 64u32);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--samples" => {
                samples = args[i + 1].split(',').map(|s| s.parse()).collect::<Result<_, _>>()?;
                i += 1;
            }
            "--steps" => {
                steps = args[i + 1].parse()?;
                i += 1;
            }
            "--scenarios" => {
                max_scenarios = args[i + 1].parse()?;
                i += 1;
            }
            "--cpu-max-samples" => {
                cpu_max_samples = args[i + 1].parse()?;
                i += 1;
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
        i += 1;
    }
    let ctx = GpuContext::new(AdapterPreference::Auto)?;
    eprintln!("adapter: {}", ctx.adapter());
    let (twin, _) = swm_procgen::build_district(&swm_procgen::DistrictParams::embedded_default())?;
    let twin = Arc::new(twin);
    let opts = TeacherEvalOptions {
        sim: SimConfig { seed: 4, vehicles: 500, pedestrians: 300, ..Default::default() },
        warmup_s: 30.0,
        window_s: 2.0 * max_scenarios as f64,
        scenarios: ScenarioOptions { stride_s: 2.0, future_s: 1.0, radius_m: 120.0, ..Default::default() },
        max_scenarios,
        samples: 1,
    };
    let set = teacher_eval_set(twin.clone(), &opts)?;
    let agents: usize = set.scenarios.iter().map(|s| s.rows.iter().filter(|(f, _)| *f == 0).count()).sum();
    let net = Network::load(&swm_model::default_model_path())?;
    let map = MapContext::new(&twin, Some(opts.sim.seed))?;
    let gnet = GpuNetwork::new(&ctx, &net)?;
    let threads = rayon::current_num_threads();
    println!(
        "{} scenarios, {agents} agents, {steps} steps; CPU: rayon, {threads} threads; GPU: {}\n",
        set.scenarios.len(),
        ctx.adapter()
    );
    println!(
        "| samples | agents in the batch | CPU agent-steps/s ({threads} threads) | GPU agent-steps/s | GPU / CPU | \
         GPU device loop agent-steps/s | GPU setup / device / records (s) |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &s in &samples {
        let cfg = RolloutConfig { steps, samples: s, seed: 7, sampling: SamplingConfig::default() };
        let work = (agents * s as usize * steps as usize) as f64;
        let cpu_rate = if s <= cpu_max_samples {
            let t = Instant::now();
            let out = swm_model::rollout_scenarios(&net, &map, &set.scenarios, &cfg);
            let r = work / t.elapsed().as_secs_f64();
            drop(out);
            Some(r)
        } else {
            None
        };
        let t = Instant::now();
        let (out, times) = rollout_scenarios_gpu_timed(
            &ctx,
            &gnet,
            &map,
            &set.scenarios,
            &cfg,
            None,
            swm_model::FeasibilityMask::default(),
        )?;
        let gpu_rate = work / t.elapsed().as_secs_f64();
        let rows: usize = out.iter().flat_map(|r| &r.samples).map(|v| v.len()).sum();
        anyhow::ensure!(rows as f64 == work, "{rows} records for {work} agent-steps");
        let fmt = |v: f64| format!("{:.0}", v);
        println!(
            "| {s} | {} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} |",
            agents * s as usize,
            cpu_rate.map_or("–".into(), fmt),
            fmt(gpu_rate),
            cpu_rate.map_or("–".into(), |c| format!("{:.2}×", gpu_rate / c)),
            fmt(work / times.device_s),
            times.setup_s,
            times.device_s,
            times.records_s
        );
    }
    Ok(())
}
