//! Sampling and the kinematic step on the GPU against `swm_model::sampling::sample_token`
//! and `swm_model::tokens::step`.

mod common;

use swm_gpu::layout::{AgentKey, AgentState};
use swm_gpu::network::LOGIT_STRIDE;
use swm_gpu::sample::{GpuSampler, SampleRows, class_code};
use swm_model::SamplingConfig;
use swm_model::sampling::{STREAM_TOKEN, keyed_unit, sample_token};
use swm_model::tokens::{AgentClass, Kinematics, step, wrap_angle};

/// Kinematics agree within this (m, rad, m/s): f32 with metre-cell positions vs f64.
const STATE_TOLERANCE: f64 = 1e-5;
/// Tokens may differ only where the GPU's `exp` differs from the CPU's in the last bits and
/// the uniform falls on that boundary (measured: 0 in these tests; the bound allows a few).
const MAX_TOKEN_MISMATCH_RATE: f64 = 1e-4;

struct Case {
    logits: Vec<f32>,
    keys: Vec<AgentKey>,
    states: Vec<Kinematics>,
    classes: Vec<AgentClass>,
}

fn case(n: usize, seed: u64) -> Case {
    let mut rng = common::Rng(seed);
    let mut logits = vec![0.0f32; n * LOGIT_STRIDE];
    let mut keys = Vec::with_capacity(n);
    let mut states = Vec::with_capacity(n);
    let mut classes = Vec::with_capacity(n);
    for i in 0..n {
        let class = if rng.next_u32().is_multiple_of(3) { AgentClass::Pedestrian } else { AgentClass::Vehicle };
        // Logit shapes: flat, peaked (one token dominates), and with exact ties.
        let shape = rng.next_u32() % 4;
        let row = &mut logits[i * LOGIT_STRIDE..i * LOGIT_STRIDE + class.vocab()];
        for (t, v) in row.iter_mut().enumerate() {
            *v = match shape {
                0 => rng.f32(-1.0, 1.0),
                1 => rng.f32(-8.0, 8.0),
                2 => ((t % 5) as f32) * 0.5,
                _ => rng.f32(-4.0, 0.0),
            };
        }
        if shape == 3 {
            let t = rng.next_u32() as usize % class.vocab();
            row[t] = 6.0;
        }
        let speed = match (class, rng.next_u32() % 5) {
            (_, 0) => 0.0,
            (AgentClass::Vehicle, _) => rng.f32(0.0, 20.0),
            (AgentClass::Pedestrian, _) => rng.f32(0.0, 3.0),
        };
        states.push(Kinematics {
            point_enu: [f64::from(rng.f32(-3000.0, 3000.0)) + 0.123_456_789, f64::from(rng.f32(-3000.0, 3000.0))],
            heading_rad: f64::from(rng.f32(-std::f32::consts::PI, std::f32::consts::PI)),
            speed_mps: f64::from(speed),
        });
        keys.push(AgentKey {
            scenario: rng.next_u32(),
            agent: (i % 300) as u32,
            sample: rng.next_u32() % 64,
            agent_class: class_code(class),
        });
        classes.push(class);
    }
    Case { logits, keys, states, classes }
}

/// Returns (token mismatches, largest state difference).
fn run(n: usize, seed: u64, frame: u32, cfg: SamplingConfig, grid_limit: Option<u32>) -> (usize, f64) {
    let Some(mut ctx) = common::ctx() else { return (0, 0.0) };
    if let Some(l) = grid_limit {
        ctx.set_max_workgroups_per_dim(l);
    }
    let sampler = GpuSampler::new(&ctx).unwrap();
    let c = case(n, seed);
    let rollout_seed = 0xDEAD_BEEF_0000_0042u64 ^ seed;
    let gpu_states: Vec<AgentState> = c.states.iter().map(AgentState::from_kinematics).collect();
    let (tokens, next) = sampler
        .sample_step(
            &ctx,
            &SampleRows { logits: &c.logits, keys: &c.keys, states: &gpu_states },
            frame,
            rollout_seed,
            &cfg,
        )
        .unwrap();
    assert_eq!(tokens.len(), n);
    let mut scratch = Vec::new();
    let mut mismatches = 0;
    let mut worst = 0.0f64;
    for i in 0..n {
        let k = &c.keys[i];
        let v = c.classes[i].vocab();
        let u = keyed_unit(rollout_seed, u64::from(k.scenario), k.agent, frame, k.sample, STREAM_TOKEN);
        let want = sample_token(&c.logits[i * LOGIT_STRIDE..i * LOGIT_STRIDE + v], &cfg, u, &mut scratch);
        assert!((tokens[i] as usize) < v, "token {} out of the vocabulary", tokens[i]);
        if tokens[i] != want {
            mismatches += 1;
        }
        // The step from the GPU's token, so kinematics are checked even on a mismatch.
        let cpu = step(c.classes[i], &c.states[i], tokens[i]);
        let gpu = next[i].to_kinematics();
        let d = [
            (cpu.point_enu[0] - gpu.point_enu[0]).abs(),
            (cpu.point_enu[1] - gpu.point_enu[1]).abs(),
            wrap_angle(cpu.heading_rad - gpu.heading_rad).abs(),
            (cpu.speed_mps - gpu.speed_mps).abs(),
        ]
        .into_iter()
        .fold(0.0, f64::max);
        assert!(d <= STATE_TOLERANCE, "agent {i} ({:?}, token {}): CPU {cpu:?}, GPU {gpu:?}", c.classes[i], tokens[i]);
        worst = worst.max(d);
    }
    println!("{n} draws {cfg:?}: {mismatches} token mismatches, max state difference {worst:.2e}");
    assert!(
        mismatches as f64 <= MAX_TOKEN_MISMATCH_RATE * n as f64,
        "{mismatches} of {n} tokens differ from the CPU's"
    );
    (mismatches, worst)
}

/// 70,000 agents, one workgroup each: past the real 65,535-workgroup dispatch dimension.
#[test]
fn default_sampling_matches_the_cpu_past_one_dispatch() {
    run(70_000, 1, 17, SamplingConfig::default(), None);
}

#[test]
fn temperature_top_k_top_p_and_greedy_match_the_cpu() {
    for (i, cfg) in [
        SamplingConfig { temperature: 0.7, top_k: 10, top_p: 1.0 },
        SamplingConfig { temperature: 1.3, top_k: 0, top_p: 1.0 },
        SamplingConfig { temperature: 1.0, top_k: 3, top_p: 0.5 },
        SamplingConfig { temperature: 0.0, top_k: 0, top_p: 0.95 },
    ]
    .into_iter()
    .enumerate()
    {
        run(8_000, 10 + i as u64, 1 + i as u32, cfg, Some(100));
    }
}

#[test]
fn empty_and_bad_inputs() {
    let Some(ctx) = common::ctx() else { return };
    let s = GpuSampler::new(&ctx).unwrap();
    let cfg = SamplingConfig::default();
    let (t, n) = s.sample_step(&ctx, &SampleRows { logits: &[], keys: &[], states: &[] }, 1, 0, &cfg).unwrap();
    assert!(t.is_empty() && n.is_empty());
    let key = AgentKey { agent_class: 7, ..Default::default() };
    assert!(
        s.sample_step(
            &ctx,
            &SampleRows { logits: &[0.0; LOGIT_STRIDE], keys: &[key], states: &[AgentState::default()] },
            1,
            0,
            &cfg
        )
        .is_err()
    );
    assert!(
        s.sample_step(
            &ctx,
            &SampleRows { logits: &[0.0; 3], keys: &[AgentKey::default()], states: &[AgentState::default()] },
            1,
            0,
            &cfg
        )
        .is_err()
    );
}

/// Twelve kilometres from the origin an f32 position has a 1 mm grid, so 50 steps could drift
/// centimetres; the metre-cell position keeps 50 straight steps within 1e-5 m of the f64
/// CPU (the heading is held, so only position accumulation is measured).
#[test]
fn positions_stay_exact_far_from_the_origin_over_many_steps() {
    let Some(ctx) = common::ctx() else { return };
    let sampler = GpuSampler::new(&ctx).unwrap();
    let mut cpu = Kinematics { point_enu: [12_345.678_9, -9_876.543_21], heading_rad: 0.3, speed_mps: 13.7 };
    let mut gpu = AgentState::from_kinematics(&cpu);
    let key = AgentKey { agent_class: 0, ..Default::default() };
    // Greedy on a one-hot logit row picks the keep token (no acceleration, no turn).
    let keep = AgentClass::Vehicle.keep_token();
    let mut logits = vec![0.0f32; LOGIT_STRIDE];
    logits[keep as usize] = 10.0;
    let cfg = SamplingConfig { temperature: 0.0, ..Default::default() };
    for frame in 1..=50 {
        let (t, n) = sampler
            .sample_step(&ctx, &SampleRows { logits: &logits, keys: &[key], states: &[gpu] }, frame, 1, &cfg)
            .unwrap();
        assert_eq!(t[0], keep);
        cpu = step(AgentClass::Vehicle, &cpu, t[0]);
        gpu = n[0];
    }
    let g = gpu.to_kinematics();
    let err = (cpu.point_enu[0] - g.point_enu[0]).hypot(cpu.point_enu[1] - g.point_enu[1]);
    println!("after 50 steps: position error {err:.2e} m");
    assert!(err < 1e-5, "position drifted {err} m: CPU {cpu:?}, GPU {g:?}");
}
