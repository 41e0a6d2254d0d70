//! Benchmark of the CPU world model: the network's forward pass on batches of agents (one
//! thread), this machine's measured single-thread f32 matmul peak (the best rate of the
//! `gemm` crate and swm's packed kernel (AVX-512 or AVX2) on a 1024³ product and of each of the
//! network's layers alone at a rollout group's rows; `scripts/bench-model.sh` adds
//! PyTorch's 1024³), one closed-loop step's features and network on 64 scenarios × 48 agents
//! of a synthetic district (one thread), and whole closed-loop rollouts (features, network,
//! sampling, feasibility masks, kinematics; one thread and all threads). Writes the feature
//! batches and the step's world state for `scripts/bench_model_torch.py`, which runs the
//! same network, and the same features computed from that state, in PyTorch.
//!
//! ```sh
//! cargo run --release -p swm_model --example bench_model -- [MODEL] [OUT_DIR]
//! ```
//!
//! With `SWM_BENCH_ROLLOUT_ONLY=N` it runs only the masked rollouts of the first `N`
//! scenarios on one thread (`SWM_BENCH_UNMASKED=1`: without the masks) and prints their
//! fingerprint: `scripts/count-rollout-instructions.sh` counts their instructions.

use std::hash::{Hash, Hasher};
use std::time::Instant;

use swm_model::features::{AgentView, agent_features};
use swm_model::features::{EGO_DIM, FEATURE_DIM, NEIGHBOUR_DIM, NEIGHBOUR_RADIUS_M, NEIGHBOURS};
use swm_model::map::{MapContext, make_path};
use swm_model::matmul::PackedDense;
use swm_model::net::{Dense, Scratch};
use swm_model::rollout::{RolloutAgent, start_agents};
use swm_model::tokens::AgentClass;
use swm_model::{Network, RolloutConfig, SamplingConfig};
use swm_sim::{AgentKind, SignalState, TrajectoryRecord};
use swm_twin::query::BevClass;

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

/// This machine's single-thread f32 matmul peak (GFLOP/s) on a 1024³ product: the best of
/// the `gemm` crate and of swm's packed kernel (AVX-512 or AVX2, where the CPU has one), each the
/// best of 5 runs. Returns (best, gemm, kernel).
fn matmul_peak_gflops() -> (f64, f64, Option<f64>) {
    let n = 1024;
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let gflops = |t: Instant| 2.0 * (n * n * n) as f64 / t.elapsed().as_secs_f64() / 1e9;
    let mut gemm_best = 0.0f64;
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
        gemm_best = gemm_best.max(gflops(t));
    }
    let kernel_best = swm_model::matmul::packed_kernel_available().then(|| {
        let layer = Dense { weight: b.clone(), bias: vec![0.0; n], n_in: n, n_out: n };
        let packed = PackedDense::new(&layer);
        let mut best = 0.0f64;
        for _ in 0..5 {
            let t = Instant::now();
            swm_model::matmul::linear(&a, n, &layer, Some(&packed), &mut c, false);
            best = best.max(gflops(t));
        }
        best
    });
    (gemm_best.max(kernel_best.unwrap_or(0.0)), gemm_best, kernel_best)
}

/// Each layer of `net` alone (`linear`, the packed kernel where the CPU has it, ReLU as the
/// forward pass applies it), on random rows as many as a rollout group's pass gives it (about
/// 290 agents, 3.3 present neighbour slots each, 7 of 8 agents cars): the best GFLOP/s of
/// five timed repeats, printed and returned for the JSON with the best of them all.
fn layer_rates(net: &Network) -> (serde_json::Value, f64) {
    layer_rates_with(net, true)
}

/// [`layer_rates`], printing each layer's rate when `print`.
fn layer_rates_with(net: &Network, print: bool) -> (serde_json::Value, f64) {
    let names = net.config.layers();
    let mut rows_out = Vec::new();
    for (l, (name, _)) in net.layers().iter().zip(names) {
        let rows = match name {
            "nbr.0" | "nbr.1" => 950,
            "head_pedestrian" => 36,
            "head_vehicle" => 254,
            _ => 290,
        };
        let mut rng = swm_core::rng::CounterRng::new(5, rows as u64);
        let a: Vec<f32> = (0..rows * l.n_in).map(|_| rng.range_f64(-1.0, 1.0) as f32).collect();
        let packed = swm_model::matmul::packed_kernel_available().then(|| PackedDense::new(l));
        let relu = !name.starts_with("head");
        let mut dst = Vec::new();
        let flop = 2.0 * (rows * l.n_in * l.n_out) as f64;
        let reps = ((5e8 / flop) as usize).max(3);
        let mut best = 0.0f64;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                swm_model::matmul::linear(&a, rows, l, packed.as_ref(), &mut dst, relu);
            }
            best = best.max(flop * reps as f64 / t.elapsed().as_secs_f64() / 1e9);
        }
        if print {
            println!("layer {name} ({} -> {}) on {rows} rows alone: {best:.1} GFLOP/s", l.n_in, l.n_out);
        }
        rows_out
            .push(serde_json::json!({"layer": name, "n_in": l.n_in, "n_out": l.n_out, "rows": rows, "gflops": best}));
    }
    let best = rows_out.iter().filter_map(|r| r["gflops"].as_f64()).fold(0.0, f64::max);
    (serde_json::Value::Array(rows_out), best)
}

/// [`layer_rates`]' best rate, printing nothing.
fn layer_rates_quiet(net: &Network) -> f64 {
    layer_rates_with(net, false).1
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let model = args.get(1).map(std::path::PathBuf::from).unwrap_or_else(swm_model::default_model_path);
    let out_dir = std::path::PathBuf::from(args.get(2).map(String::as_str).unwrap_or("bench-out"));
    std::fs::create_dir_all(&out_dir)?;
    let net = Network::load(&model)?;
    if let Ok(n) = std::env::var("SWM_BENCH_ROLLOUT_ONLY") {
        let n = n.parse().map_err(|e| format!("SWM_BENCH_ROLLOUT_ONLY={n:?}: not a number of scenarios ({e})"))?;
        return rollout_only(&net, n);
    }
    let flops = net.flops_per_agent_step(AgentClass::Vehicle) as f64;
    let (peak_1024, gemm_peak, kernel_peak) = matmul_peak_gflops();
    println!("model {} ({} parameters, {:.3} MFLOP per vehicle step)", model.display(), net.parameters(), flops / 1e6);
    let kernel = kernel_peak.map_or("none on this CPU".to_string(), |g| format!("{g:.1}"));
    println!(
        "f32 matmul, 1 thread, 1024^3: {peak_1024:.1} GFLOP/s (gemm crate {gemm_peak:.1}, swm packed kernel {kernel})"
    );
    // The network's own layers run faster than a 1024³ product (their weights stay in the
    // caches), so the peak is the best matmul rate measured here of either.
    let (layers, layer_best) = layer_rates(&net);
    let peak = peak_1024.max(layer_best);
    println!("f32 matmul peak (1 thread, the best of the above): {peak:.1} GFLOP/s");
    let mut json = serde_json::json!({
        "peak_gflops_1thread": peak, "peak_1024_gflops": peak_1024, "gemm_peak_gflops": gemm_peak,
        "kernel_peak_gflops": kernel_peak, "mflop_per_vehicle_step": flops / 1e6, "forward": [], "layers": layers
    });
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

    let (map, scenarios) = district(64);

    // One closed-loop step's features and network, like for like with PyTorch: the state
    // every rollout starts from (sample 0), written for `bench_model_torch.py`, which
    // computes the same features from it and checks them against these.
    let starts: Vec<Vec<RolloutAgent>> = scenarios.iter().map(|sc| start_agents(sc, &map, 1, 0)).collect();
    let time_s = scenarios[0].current_time_s;
    write_world(&out_dir, &map, &starts, time_s)?;
    let mut feats = Vec::new();
    let mut classes = Vec::new();
    let mut row = vec![0.0f32; FEATURE_DIM];
    for agents in &starts {
        let views: Vec<AgentView> = agents.iter().map(RolloutAgent::view).collect();
        for (i, a) in agents.iter().enumerate() {
            agent_features(&map, &views, i, time_s, &mut row);
            feats.extend_from_slice(&row);
            classes.push(a.class);
        }
    }
    std::fs::write(out_dir.join("step-features.f32"), feats.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
    let mut scratch = Scratch::default();
    let mut logits = Vec::new();
    net.forward(&feats, &classes, &mut scratch, &mut logits);
    std::fs::write(out_dir.join("step-logits.f32"), logits.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
    let agent_steps: usize = starts.iter().map(Vec::len).sum();
    let (mut feat_s, mut net_s) = (0.0, 0.0);
    let reps = 20;
    for _ in 0..reps {
        // Per scenario, as the rollouts do: features of its agents, then one forward pass.
        for agents in &starts {
            let t = Instant::now();
            let views: Vec<AgentView> = agents.iter().map(RolloutAgent::view).collect();
            let mut batch = Vec::with_capacity(agents.len() * FEATURE_DIM);
            let mut cls = Vec::with_capacity(agents.len());
            for (i, a) in agents.iter().enumerate() {
                agent_features(&map, &views, i, time_s, &mut row);
                batch.extend_from_slice(&row);
                cls.push(a.class);
            }
            let t1 = Instant::now();
            net.forward(&batch, &cls, &mut scratch, &mut logits);
            feat_s += (t1 - t).as_secs_f64();
            net_s += t1.elapsed().as_secs_f64();
        }
    }
    let n = (reps * agent_steps) as f64;
    println!(
        "one step, features + network (1 thread, {} scenarios x {} agents): {:.0} agent-steps/s (features {:.0}, network {:.0})",
        starts.len(),
        starts[0].len(),
        n / (feat_s + net_s),
        n / feat_s,
        n / net_s
    );
    // The FLOPs the forward pass does on this batch: the neighbour MLP runs on the present
    // slots only, and each agent's head is its class's (the counted FLOPs,
    // `mflop_per_vehicle_step`, are a vehicle's with every slot).
    let slots_present: Vec<usize> = (0..classes.len())
        .map(|r| {
            (0..NEIGHBOURS)
                .filter(|k| feats[r * FEATURE_DIM + EGO_DIM + k * NEIGHBOUR_DIM + NEIGHBOUR_DIM - 1] > 0.0)
                .count()
        })
        .collect();
    let (present, done) = mean_work(&net, classes.iter().copied().zip(slots_present));
    println!("present neighbour slots per agent: {present:.2} of {NEIGHBOURS}: {done:.3} MFLOP done per agent step");
    json["step"] = serde_json::json!({
        "scenarios": starts.len(), "agents": agent_steps,
        "present_neighbours": present, "mflop_done_per_agent_step": done,
        "features_network_agent_steps_per_s": n / (feat_s + net_s),
        "features_agent_steps_per_s": n / feat_s, "network_agent_steps_per_s": n / net_s
    });

    // Whole closed-loop rollouts (features, network, sampling, feasibility masks,
    // kinematics), on one thread and on all of them.
    let cfg = RolloutConfig { steps: 80, samples: 2, seed: 1, sampling: SamplingConfig::default() };
    let mut rollouts = Vec::new();
    for threads in [1, rayon::current_num_threads()] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        // This VM's speed moves by tens of per cent from minute to minute: the one-thread
        // rollout is also compared with the peak measured right before and right after it
        // (the network's layers alone, the better of the two), not only with the run's
        // first measurement.
        let peak_before = (threads == 1).then(|| layer_rates_quiet(&net));
        let t = Instant::now();
        let r = pool.install(|| swm_model::rollout_scenarios(&net, &map, &scenarios, &cfg));
        let s = t.elapsed().as_secs_f64();
        let peak_beside = peak_before.map(|before| before.max(layer_rates_quiet(&net)));
        if let Some(p) = peak_beside {
            println!(
                "f32 matmul peak right before and after the 1-thread rollout (its layers alone, the better): {p:.1} GFLOP/s"
            );
        }
        let steps: usize = r.iter().flat_map(|x| x.samples.iter()).map(|x| x.len()).sum();
        println!(
            "closed-loop rollout ({threads} threads): {steps} agent-steps in {s:.2} s = {:.0} agent-steps/s, fingerprint {:016x}",
            steps as f64 / s,
            fingerprint(&r)
        );
        let (present, done) = rollout_work(&net, &map, &scenarios, &r);
        rollouts.push(serde_json::json!({
            "threads": threads, "agent_steps": steps, "seconds": s, "agent_steps_per_s": steps as f64 / s,
            "present_neighbours": present, "mflop_done_per_agent_step": done,
            "peak_beside_gflops": peak_beside
        }));
    }
    json["rollout"] = serde_json::Value::Array(rollouts);
    // The same rollouts without the feasibility masks (`FeasibilityMask::NONE`: the
    // network's own distribution), one thread: features, network, sampling and kinematics,
    // the work PyTorch's features + network do plus the sampling and the step.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let t = Instant::now();
    let r = pool.install(|| {
        swm_model::rollout::rollout_scenarios_masked(
            &net,
            &map,
            &scenarios,
            &cfg,
            None,
            swm_model::FeasibilityMask::NONE,
        )
    });
    let s = t.elapsed().as_secs_f64();
    let steps: usize = r.iter().flat_map(|x| x.samples.iter()).map(|x| x.len()).sum();
    println!(
        "closed-loop rollout without masks (1 thread): {steps} agent-steps in {s:.2} s = {:.0} agent-steps/s",
        steps as f64 / s
    );
    let (present, done) = rollout_work(&net, &map, &scenarios, &r);
    json["rollout_unmasked"] = serde_json::json!({
        "threads": 1, "agent_steps": steps, "seconds": s, "agent_steps_per_s": steps as f64 / s,
        "present_neighbours": present, "mflop_done_per_agent_step": done
    });
    std::fs::write(out_dir.join("bench-rust.json"), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

/// The mean present neighbour slots, and the mean MFLOP the forward pass does, over agent
/// steps given as (class, present slots): each agent's head, the neighbour MLP on its
/// present slots only.
fn mean_work(net: &Network, steps: impl Iterator<Item = (AgentClass, usize)>) -> (f64, f64) {
    let (mut slots, mut flops, mut n) = (0usize, 0usize, 0usize);
    for (class, present) in steps {
        slots += present;
        flops += net.flops_per_agent_step(class) - (NEIGHBOURS - present) * net.flops_per_neighbour_slot();
        n += 1;
    }
    (slots as f64 / n.max(1) as f64, flops as f64 / n.max(1) as f64 / 1e6)
}

/// [`mean_work`] of the rollouts' agent steps: the features of frame `f` see the agents at
/// frame `f - 1` (frame 0: the scenario's start), and an agent's neighbours are the others
/// within `NEIGHBOUR_RADIUS_M`, at most `NEIGHBOURS` of them.
fn rollout_work(
    net: &Network,
    map: &swm_model::MapContext,
    scenarios: &[swm_dataset::Scenario],
    r: &[swm_model::ScenarioRollout],
) -> (f64, f64) {
    let r2 = NEIGHBOUR_RADIUS_M * NEIGHBOUR_RADIUS_M;
    let mut steps: Vec<(AgentClass, usize)> = Vec::new();
    for (sc, ro) in scenarios.iter().zip(r) {
        let start: Vec<([f64; 2], AgentClass)> =
            start_agents(sc, map, 1, 0).iter().map(|a| (a.view().now().point_enu, a.class)).collect();
        for sample in &ro.samples {
            let mut frames: Vec<Vec<([f64; 2], AgentClass)>> = vec![start.clone()];
            for (frame, rec) in sample {
                let f = *frame as usize;
                if frames.len() <= f {
                    frames.resize(f + 1, Vec::new());
                }
                frames[f].push(([rec.x_m, rec.y_m], AgentClass::of(rec.kind)));
            }
            // Frames 0..N-1 are what frames 1..=N were computed from.
            for pts in &frames[..frames.len() - 1] {
                for (i, (p, class)) in pts.iter().enumerate() {
                    let near = pts
                        .iter()
                        .enumerate()
                        .filter(|&(j, (q, _))| j != i && (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2) <= r2)
                        .count();
                    steps.push((*class, near.min(NEIGHBOURS)));
                }
            }
        }
    }
    mean_work(net, steps.into_iter())
}

/// A fingerprint of every output record: the same whatever the thread count, and
/// unchanged by optimisations that keep the rollouts bit for bit.
fn fingerprint(r: &[swm_model::ScenarioRollout]) -> u64 {
    let mut fp = std::collections::hash_map::DefaultHasher::new();
    for (f, rec) in r.iter().flat_map(|x| x.samples.iter()).flatten() {
        (f, rec.agent_id, rec.x_m.to_bits(), rec.y_m.to_bits(), rec.heading_rad.to_bits(), rec.speed_mps.to_bits())
            .hash(&mut fp);
    }
    fp.finish()
}

/// `SWM_BENCH_ROLLOUT_ONLY=N`: the masked rollouts of the first `n_scenarios` scenarios
/// alone, on one thread (`SWM_BENCH_UNMASKED=1`: without the masks), with their
/// fingerprint; `scripts/count-rollout-instructions.sh` counts their instructions.
fn rollout_only(net: &Network, n_scenarios: u64) -> Result<(), Box<dyn std::error::Error>> {
    let (map, scenarios) = district(n_scenarios);
    let mask = match std::env::var("SWM_BENCH_UNMASKED").as_deref() {
        Ok("1") => swm_model::FeasibilityMask::NONE,
        _ => swm_model::FeasibilityMask::default(),
    };
    let cfg = RolloutConfig { steps: 80, samples: 2, seed: 1, sampling: SamplingConfig::default() };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let t = Instant::now();
    let r = pool.install(|| swm_model::rollout::rollout_scenarios_masked(net, &map, &scenarios, &cfg, None, mask));
    let s = t.elapsed().as_secs_f64();
    let steps: usize = r.iter().flat_map(|x| x.samples.iter()).map(|x| x.len()).sum();
    println!(
        "closed-loop rollout ({mask:?}, 1 thread, {n_scenarios} scenarios): {steps} agent-steps in {s:.4} s, fingerprint {:016x}",
        fingerprint(&r)
    );
    Ok(())
}

/// The synthetic district and `n_scenarios` scenarios of 48 agents on it.
fn district(n_scenarios: u64) -> (MapContext, Vec<swm_dataset::Scenario>) {
    // 6 two-way roads joined at both ends by
    // connections (a U-turn and a turn onto the next road), stop lines 5 m before every
    // lane's end, building blocks and sidewalks between the roads.
    let mut paths = Vec::new();
    for i in 0..6u32 {
        let y = 40.0 * f64::from(i);
        paths.push(make_path((0..=50).map(|k| [10.0 * k as f64, y]).collect(), 13.9, Some(2 * i), Some(495.0), vec![]));
        paths.push(make_path(
            (0..=50).map(|k| [500.0 - 10.0 * k as f64, y + 3.5]).collect(),
            13.9,
            Some(2 * i + 1),
            Some(495.0),
            vec![],
        ));
    }
    for i in 0..6u32 {
        let y = 40.0 * f64::from(i);
        let up = 40.0 * f64::from((i + 1) % 6);
        // East end: eastbound lane 2i U-turns onto 2i+1, or turns onto the next road's 2(i+1)+1.
        let east = [
            (2 * i, 2 * i + 1, vec![[500.0, y], [506.0, y + 1.75], [500.0, y + 3.5]]),
            (2 * i, 2 * ((i + 1) % 6) + 1, vec![[500.0, y], [508.0, 0.5 * (y + up)], [500.0, up + 3.5]]),
            (2 * i + 1, 2 * i, vec![[0.0, y + 3.5], [-6.0, y + 1.75], [0.0, y]]),
            (2 * i + 1, 2 * ((i + 1) % 6), vec![[0.0, y + 3.5], [-8.0, 0.5 * (y + up)], [0.0, up]]),
        ];
        for (from, to, pts) in east {
            let c = paths.len() as u32;
            paths.push(make_path(pts, 8.0, None, None, vec![to]));
            paths[from as usize].successors.push(c);
        }
    }
    let mut map = MapContext::from_paths(paths, 1.75);
    paint_blocks(&mut map);
    let scenarios: Vec<swm_dataset::Scenario> = (0..n_scenarios)
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
                            signal: [None, Some(SignalState::Red), Some(SignalState::Green), Some(SignalState::Amber)]
                                [(a % 4) as usize],
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
    (map, scenarios)
}

/// Building blocks and sidewalks between the synthetic roads (rows of 40 m).
fn paint_blocks(map: &mut MapContext) {
    for row in 0..map.height {
        for col in 0..map.width {
            let x = map.origin_m[0] + col as f64 + 0.5;
            let y = map.origin_m[1] + row as f64 + 0.5;
            let width = map.width;
            if !(10.0..490.0).contains(&x) || map.classes()[row * width + col] != BevClass::Ground as u8 {
                continue;
            }
            let in_row = y.rem_euclid(40.0);
            let class = if (12.0..28.0).contains(&in_row) && x.rem_euclid(30.0) < 20.0 {
                BevClass::Building
            } else if (6.0..9.0).contains(&in_row) || (31.0..36.0).contains(&in_row) {
                BevClass::Sidewalk
            } else {
                continue;
            };
            map.classes_mut()[row * width + col] = class as u8;
        }
    }
}

/// The state every rollout starts from, for `scripts/bench_model_torch.py`: `world.json`
/// (paths, raster geometry, agents with their histories) and `raster.u8` (row 0 south).
fn write_world(
    dir: &std::path::Path,
    map: &MapContext,
    starts: &[Vec<RolloutAgent>],
    time_s: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let kind = |k: AgentKind| match k {
        AgentKind::Car => 0,
        AgentKind::Bus => 1,
        AgentKind::Truck => 2,
        AgentKind::Pedestrian => 3,
    };
    let signal = |s: Option<SignalState>| match s {
        Some(SignalState::Red) => 0,
        Some(SignalState::Amber) => 1,
        Some(SignalState::Green) => 2,
        None => 3,
    };
    let paths: Vec<_> = map
        .paths
        .iter()
        .map(|p| {
            serde_json::json!({
                "points": p.points, "s_m": p.s_m, "length_m": p.length_m, "speed_limit_mps": p.speed_limit_mps,
                "is_lane": p.lane.is_some(), "stop_s_m": p.stop_s_m, "successors": p.successors,
            })
        })
        .collect();
    let scenarios: Vec<_> = starts
        .iter()
        .map(|agents| {
            agents
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "kind": kind(a.kind), "length_m": a.length_m, "width_m": a.width_m,
                        "history": a.history.iter().map(|k| [k.point_enu[0], k.point_enu[1], k.heading_rad, k.speed_mps]).collect::<Vec<_>>(),
                        "signal": signal(a.signal), "intent": a.intent, "deck_m": a.deck_m,
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let world = serde_json::json!({
        "time_s": time_s,
        "raster": { "width": map.width, "height": map.height, "origin_m": map.origin_m, "res_m": map.res_m },
        "paths": paths,
        "scenarios": scenarios,
    });
    std::fs::write(dir.join("world.json"), serde_json::to_string(&world)?)?;
    std::fs::write(dir.join("raster.u8"), map.classes())?;
    Ok(())
}
