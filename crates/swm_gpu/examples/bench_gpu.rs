//! Network-forward throughput on the GPU vs the CPU forward of `swm_model`, across batch
//! sizes (agent-steps per second: one agent's features → logits is one agent-step), plus the
//! forward fused with sampling and the kinematic step. Features stay on the device (uploaded
//! once); times are wall-clock from submit to the device being idle, read-back excluded.
//!
//! ```text
//! cargo run --release -p swm_gpu --example bench_gpu -- [MODEL] [--batches 1,64,1024] [--min-time-s 1]
//! ```
//! Prints a Markdown table (BENCHMARKS.md) and `bench-gpu.json` in the current directory.

use std::time::Instant;

use swm_gpu::layout::{AgentKey, AgentState};
use swm_gpu::sample::{GpuSampler, class_code, sample_params};
use swm_gpu::{AdapterPreference, GpuContext, GpuNetwork};
use swm_model::features::{EGO_DIM, FEATURE_DIM, NEIGHBOUR_DIM, NEIGHBOURS};
use swm_model::net::Scratch;
use swm_model::tokens::AgentClass;
use swm_model::{NetConfig, Network, SamplingConfig};

fn features(rows: usize) -> (Vec<f32>, Vec<AgentClass>) {
    let mut rng = swm_core::rng::CounterRng::new(1, 2);
    let mut f = vec![0.0f32; rows * FEATURE_DIM];
    let mut classes = Vec::with_capacity(rows);
    for (r, row) in f.chunks_exact_mut(FEATURE_DIM).enumerate() {
        for v in &mut row[..EGO_DIM] {
            *v = rng.range_f64(-2.0, 2.0) as f32;
        }
        for k in 0..NEIGHBOURS {
            let slot = &mut row[EGO_DIM + k * NEIGHBOUR_DIM..EGO_DIM + (k + 1) * NEIGHBOUR_DIM];
            for v in &mut slot[..NEIGHBOUR_DIM - 1] {
                *v = rng.range_f64(-1.0, 1.0) as f32;
            }
            slot[NEIGHBOUR_DIM - 1] = 1.0;
        }
        // Two vehicles for every pedestrian, vehicles first (the GPU batch is class-sorted).
        classes.push(if r < rows * 2 / 3 { AgentClass::Vehicle } else { AgentClass::Pedestrian });
    }
    (f, classes)
}

/// Runs `f` until `min_s` has passed (at least twice after one warm-up); seconds per call.
fn time(min_s: f64, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    let mut n = 0u32;
    while n < 2 || t.elapsed().as_secs_f64() < min_s {
        f();
        n += 1;
    }
    t.elapsed().as_secs_f64() / f64::from(n)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut model = None;
    let mut batches = vec![1usize, 64, 1024, 8192, 65536];
    let mut min_s = 1.0;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--batches" => {
                batches = args[i + 1].split(',').map(|s| s.parse()).collect::<Result<_, _>>()?;
                i += 1;
            }
            "--min-time-s" => {
                min_s = args[i + 1].parse()?;
                i += 1;
            }
            other => model = Some(other.to_string()),
        }
        i += 1;
    }
    let net = match model {
        Some(p) => Network::load(std::path::Path::new(&p))?,
        None => {
            Network::load(&swm_model::default_model_path()).unwrap_or_else(|_| Network::init(NetConfig::default(), 1))
        }
    };
    let ctx = GpuContext::new(AdapterPreference::Auto)?;
    let gnet = GpuNetwork::new(&ctx, &net)?;
    let sampler = GpuSampler::new(&ctx)?;
    let flops_v = net.flops_per_agent_step(AgentClass::Vehicle) as f64;
    let flops_p = net.flops_per_agent_step(AgentClass::Pedestrian) as f64;
    println!("adapter: {}", ctx.adapter());
    println!(
        "| batch | CPU forward agent-steps/s (1 thread) | GPU forward agent-steps/s | GPU / CPU | GPU GFLOP/s | GPU forward + sample + step agent-steps/s |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut json = Vec::new();
    for &b in &batches {
        let (f, classes) = features(b);
        let vehicles = classes.iter().filter(|c| **c == AgentClass::Vehicle).count();
        let flops = vehicles as f64 * flops_v + (b - vehicles) as f64 * flops_p;
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        let cpu_s = time(min_s, || net.forward(&f, &classes, &mut scratch, &mut out));
        let batch = gnet.batch(&ctx, b as u32, vehicles as u32)?;
        ctx.queue.write_buffer(&batch.features, 0, bytemuck::cast_slice(&f));
        let keys: Vec<AgentKey> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| AgentKey {
                scenario: (i / 64) as u32,
                agent: (i % 64) as u32,
                sample: 0,
                agent_class: class_code(*c),
            })
            .collect();
        let keys_b = ctx.storage_init("keys", &keys)?;
        let states = ctx.storage_init("states", &vec![AgentState { speed_mps: 5.0, ..Default::default() }; b])?;
        let next = ctx.storage("next", (b * std::mem::size_of::<AgentState>()) as u64)?;
        let tokens = ctx.storage("tokens", b as u64 * 4)?;
        let params = ctx.uniform("params", &sample_params(b as u32, 1, 7, &SamplingConfig::default()));
        let bind = sampler.bind(&ctx, [&params, &batch.logits, &keys_b, &states, &next, &tokens]);
        let mut err = None;
        let gpu_s = time(min_s, || {
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            gnet.encode(&ctx, &mut enc, &batch);
            if let Err(e) = ctx.submit_and_wait(enc) {
                err = Some(e);
            }
        });
        let step_s = time(min_s, || {
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            gnet.encode(&ctx, &mut enc, &batch);
            sampler.encode(&ctx, &mut enc, &bind, b as u32);
            if let Err(e) = ctx.submit_and_wait(enc) {
                err = Some(e);
            }
        });
        let mut per_pass = Vec::new();
        for (i, name) in batch.pass_names().into_iter().enumerate() {
            let s = time(min_s / 4.0, || {
                let mut enc = ctx.device.create_command_encoder(&Default::default());
                gnet.encode_pass(&ctx, &mut enc, &batch, i);
                if let Err(e) = ctx.submit_and_wait(enc) {
                    err = Some(e);
                }
            });
            per_pass.push(format!("{name} {:.2} ms", s * 1e3));
        }
        if let Some(e) = err {
            return Err(e.into());
        }
        eprintln!("batch {b}: {}", per_pass.join(", "));
        let (cpu, gpu, step) = (b as f64 / cpu_s, b as f64 / gpu_s, b as f64 / step_s);
        println!("| {b} | {cpu:.0} | {gpu:.0} | {:.2}x | {:.1} | {step:.0} |", gpu / cpu, flops / gpu_s / 1e9);
        json.push(format!(
            "{{\"batch\":{b},\"cpu_agent_steps_per_s\":{cpu:.1},\"gpu_forward_agent_steps_per_s\":{gpu:.1},\"gpu_gflops\":{:.3},\"gpu_step_agent_steps_per_s\":{step:.1}}}",
            flops / gpu_s / 1e9
        ));
    }
    std::fs::write(
        "bench-gpu.json",
        format!("{{\"adapter\":{:?},\"results\":[{}]}}\n", ctx.adapter().to_string(), json.join(",")),
    )?;
    Ok(())
}
