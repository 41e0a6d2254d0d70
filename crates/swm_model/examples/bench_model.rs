//! Benchmark of the CPU world model: the network's forward pass on batches of agents (one
//! thread), this machine's measured single-thread f32 matmul peak (the `gemm` crate on a
//! 1024³ product), and whole closed-loop rollouts (features + network + sampling +
//! kinematics, all threads). Writes the feature batches for `scripts/bench_model_torch.py`.
//!
//! ```sh
//! cargo run --release -p swm_model --example bench_model -- [MODEL] [OUT_DIR]
//! ```

use std::time::Instant;

use swm_model::features::{EGO_DIM, FEATURE_DIM, NEIGHBOUR_DIM};
use swm_model::map::{MapContext, make_path};
use swm_model::net::Scratch;
use swm_model::tokens::AgentClass;
use swm_model::{Network, RolloutConfig, SamplingConfig};
use swm_sim::{AgentKind, TrajectoryRecord};

fn features(n: usize) -> Vec<f32> {
    let mut rng = swm_core::rng::CounterRng::new(7, 1);
    let mut x = Vec::with_capacity(n * FEATURE_DIM);
    for r in 0..n {
        let mut row: Vec<f32> = (0..FEATURE_DIM).map(|_| rng.range_f64(-1.0, 1.0) as f32).collect();
        for k in 0..8 {
            let m = &mut row[EGO_DIM + k * NEIGHBOUR_DIM..EGO_DIM + (k + 1) * NEIGHBOUR_DIM];
            if k < 3 + r % 6 {
                m[NEIGHBOUR_DIM - 1] = 1.0;
            } else {
                m.fill(0.0);
            }
        }
        x.extend(row);
    }
    x
}

fn matmul_peak_gflops() -> f64 {
    let n = 1024;
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let mut best = 0.0f64;
    for _ in 0..5 {
        let t = Instant::now();
        // SAFETY: three n×n row-major matrices.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        best = best.max(2.0 * (n * n * n) as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let model = args.get(1).map(std::path::PathBuf::from).unwrap_or_else(swm_model::default_model_path);
    let out_dir = std::path::PathBuf::from(args.get(2).map(String::as_str).unwrap_or("bench-out"));
    std::fs::create_dir_all(&out_dir)?;
    let net = Network::load(&model)?;
    let flops = net.flops_per_agent_step(AgentClass::Vehicle) as f64;
    let peak = matmul_peak_gflops();
    println!("model {} ({} parameters, {:.3} MFLOP per vehicle step)", model.display(), net.parameters(), flops / 1e6);
    println!("f32 matmul peak (gemm, 1 thread, 1024^3): {peak:.1} GFLOP/s");
    let mut json =
        serde_json::json!({ "peak_gflops_1thread": peak, "mflop_per_vehicle_step": flops / 1e6, "forward": [] });
    for batch in [64usize, 256, 1024] {
        let x = features(batch);
        std::fs::write(
            out_dir.join(format!("features-{batch}.f32")),
            x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        )?;
        let classes = vec![AgentClass::Vehicle; batch];
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        net.forward(&x, &classes, &mut scratch, &mut out);
        std::fs::write(
            out_dir.join(format!("logits-{batch}.f32")),
            out.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        )?;
        let iters = (200_000 / batch).max(20);
        let t = Instant::now();
        for _ in 0..iters {
            net.forward(&x, &classes, &mut scratch, &mut out);
        }
        let s = t.elapsed().as_secs_f64();
        let rate = (iters * batch) as f64 / s;
        let gflops = rate * flops / 1e9;
        println!(
            "forward batch {batch:>5}: {rate:>10.0} agent-steps/s (1 thread), {gflops:.1} GFLOP/s = {:.0} % of peak",
            100.0 * gflops / peak
        );
        json["forward"].as_array_mut().expect("array").push(serde_json::json!({
            "batch": batch, "agent_steps_per_s": rate, "gflops": gflops, "fraction_of_peak": gflops / peak
        }));
    }

    // Whole rollouts on a synthetic grid of roads: 64 scenarios of 48 agents, 80 steps.
    let mut paths = Vec::new();
    for i in 0..6 {
        let y = 40.0 * i as f64;
        paths.push(make_path((0..=50).map(|k| [10.0 * k as f64, y]).collect(), 13.9, Some(2 * i), None, vec![]));
        paths.push(make_path(
            (0..=50).map(|k| [500.0 - 10.0 * k as f64, y + 3.5]).collect(),
            13.9,
            Some(2 * i + 1),
            None,
            vec![],
        ));
    }
    let map = MapContext::from_paths(paths, 1.75);
    let scenarios: Vec<swm_dataset::Scenario> = (0..64u64)
        .map(|s| {
            let mut rows = Vec::new();
            for f in -10..=0i32 {
                for a in 0..48u64 {
                    let lane = (a % 12) as f64;
                    let (y, h) = if a % 2 == 0 {
                        (40.0 * (lane / 2.0).floor(), 0.0)
                    } else {
                        (40.0 * (lane / 2.0).floor() + 3.5, std::f64::consts::PI)
                    };
                    let v = 8.0 + (a % 5) as f64;
                    let x0 = 60.0 + 30.0 * (a / 12) as f64 + (s % 7) as f64;
                    let x = x0 + h.cos() * v * 0.1 * f64::from(f);
                    let kind = if a % 8 == 7 { AgentKind::Pedestrian } else { AgentKind::Car };
                    rows.push((
                        f,
                        TrajectoryRecord {
                            agent_id: a,
                            kind,
                            length_m: 4.5,
                            width_m: 1.8,
                            step: (100 + f) as u32,
                            time_s: 10.0 + 0.1 * f64::from(f),
                            x_m: x,
                            y_m: if kind == AgentKind::Pedestrian { y - 6.0 } else { y },
                            z_m: 0.0,
                            heading_rad: h,
                            speed_mps: if kind == AgentKind::Pedestrian { 1.3 } else { v },
                            accel_mps2: 0.0,
                            lane: None,
                            signal: None,
                        },
                    ));
                }
            }
            swm_dataset::Scenario {
                scenario_id: s,
                center_agent_id: 0,
                current_time_s: 10.0,
                current_step: 100,
                agents: (0..48).collect(),
                rows,
            }
        })
        .collect();
    let cfg = RolloutConfig { steps: 80, samples: 2, seed: 1, sampling: SamplingConfig::default() };
    let t = Instant::now();
    let r = swm_model::rollout_scenarios(&net, &map, &scenarios, &cfg);
    let s = t.elapsed().as_secs_f64();
    let steps: usize = r.iter().flat_map(|x| x.samples.iter()).map(|x| x.len()).sum();
    println!(
        "closed-loop rollout (features + network + sampling, {} threads): {steps} agent-steps in {s:.2} s = {:.0} agent-steps/s",
        rayon::current_num_threads(),
        steps as f64 / s
    );
    json["rollout"] = serde_json::json!({ "threads": rayon::current_num_threads(), "agent_steps": steps, "seconds": s, "agent_steps_per_s": steps as f64 / s });
    std::fs::write(out_dir.join("bench-rust.json"), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}
