//! GPU rollouts against the CPU backend (`swm_model::rollout_scenarios_with`) on a synthetic
//! road: same shape and records, trajectories equal while the same tokens are drawn.

mod common;

use common::{road, scenarios};
use swm_gpu::layout::AgentState;
use swm_gpu::{GpuNetwork, GpuRolloutEngine, ScriptedAgent, rollout_scenarios_gpu, rollout_scenarios_gpu_masked};
use swm_model::tokens::Kinematics;
use swm_model::{FeasibilityMask, NetConfig, Network, RolloutConfig, SamplingConfig, WorldAgent};

fn model() -> Network {
    Network::load(&swm_model::default_model_path()).unwrap_or_else(|_| Network::init(NetConfig::default(), 3))
}

#[test]
fn gpu_rollouts_follow_the_cpu_backend() {
    // Default masks: features on the GPU, the masks on the CPU every frame.
    follow_the_cpu(FeasibilityMask::default(), 20);
}

#[test]
fn resident_gpu_rollouts_follow_the_cpu_backend() {
    // No masks, no driver: nothing comes back until the end (record chunks).
    follow_the_cpu(FeasibilityMask::NONE, 30);
}

fn follow_the_cpu(mask: FeasibilityMask, steps: u32) {
    let Some(ctx) = common::ctx() else { return };
    let (angle, shift) = (0.3, [2_500.0, -1_800.0]);
    let map = road(angle, shift);
    let scs = scenarios(angle, shift);
    let net = model();
    let gnet = GpuNetwork::new(&ctx, &net).unwrap();
    let cfg = RolloutConfig { steps, samples: 3, seed: 11, sampling: SamplingConfig::default() };
    let cpu = swm_model::rollout::rollout_scenarios_masked(&net, &map, &scs, &cfg, None, mask);
    let gpu = rollout_scenarios_gpu_masked(&ctx, &gnet, &map, &scs, &cfg, None, mask).unwrap();
    assert_eq!(gpu.len(), cpu.len());
    let (mut tracks, mut same_tracks, mut worst_same) = (0usize, 0usize, 0.0f64);
    for (g, c) in gpu.iter().zip(&cpu) {
        assert_eq!(g.scenario_id, c.scenario_id);
        assert_eq!(g.samples.len(), c.samples.len());
        for (gs, cs) in g.samples.iter().zip(&c.samples) {
            assert_eq!(gs.len(), cs.len(), "scenario {}", g.scenario_id);
            // Rows pair up: same frame, agent, step, time.
            for ((gf, gr), (cf, cr)) in gs.iter().zip(cs) {
                assert_eq!((gf, gr.agent_id, gr.kind, gr.step), (cf, cr.agent_id, cr.kind, cr.step));
                assert!((gr.time_s - cr.time_s).abs() < 1e-9);
                assert!(gr.x_m.is_finite() && gr.speed_mps >= 0.0);
            }
            // Per agent: is the whole track within 1e-4 m of the CPU's (same tokens drawn)?
            let agents: std::collections::BTreeSet<u64> = cs.iter().map(|(_, r)| r.agent_id).collect();
            for id in agents {
                tracks += 1;
                let d = gs
                    .iter()
                    .zip(cs)
                    .filter(|(_, (_, r))| r.agent_id == id)
                    .map(|((_, a), (_, b))| (a.x_m - b.x_m).hypot(a.y_m - b.y_m))
                    .fold(0.0, f64::max);
                if d < 1e-4 {
                    same_tracks += 1;
                    worst_same = worst_same.max(d);
                }
            }
        }
    }
    println!(
        "{mask:?}: {same_tracks} of {tracks} agent tracks within 1e-4 m of the CPU's over {steps} steps (max {worst_same:.1e} m)"
    );
    // A track leaves only when a draw flips: logits agree to ~1e-5, so that is rare.
    assert!(same_tracks * 10 >= tracks * 9, "{same_tracks} of {tracks} tracks agree");
}

/// A tunnel 6 m under a road, 1.5 m to its side in plan, and a ramp from the tunnel's end
/// up to the road's level: the decks the GPU's `decks` pass keeps (each vehicle's path
/// match on its level, the ramp's deck rising along it) and the neighbours it gives the
/// features (those on the agent's level) are the CPU's. Tracks drawn with the same tokens
/// agree within 1e-4 m and their recorded heights within 1e-3 m; with the decks flattened,
/// the same scenes roll out otherwise.
#[test]
fn gpu_rollouts_keep_to_their_levels_as_the_cpu() {
    let Some(ctx) = common::ctx() else { return };
    let line = |y: f64| (0..=30).map(|i| [10.0 * i as f64, y]).collect::<Vec<[f64; 2]>>();
    let ramp: Vec<[f64; 2]> = (0..=20).map(|i| [300.0 + 3.0 * i as f64, 0.075 * i as f64]).collect();
    let paths = || {
        vec![
            swm_model::map::make_path(line(0.0), 13.9, Some(0), None, vec![2]),
            swm_model::map::make_path(line(1.5), 13.9, Some(1), None, vec![]),
            swm_model::map::make_path(ramp.clone(), 13.9, None, None, vec![]),
        ]
    };
    let flat = swm_model::MapContext::from_paths(paths(), 2.0);
    let map = swm_model::MapContext::from_paths(paths(), 2.0)
        .with_path_decks(vec![[-6.0; 2], [0.0; 2], [-6.0, 0.0]])
        .unwrap();
    assert!(map.has_levels());
    // Cars in the tunnel, some reaching the ramp within the run, and cars on the road above
    // beside and ahead of them.
    let mut cars = Vec::new();
    for k in 0..6 {
        cars.push((swm_sim::AgentKind::Car, 200.0 + 16.0 * k as f64, 0.0, 0.0, 8.0 + k as f64));
        cars.push((swm_sim::AgentKind::Car, 206.0 + 16.0 * k as f64, 1.5, 0.0, 9.0));
    }
    // Ids are the cars' indices (scenario 2 starts from the third car): even in the tunnel.
    let mut scs = vec![common::scenario(1, &cars), common::scenario(2, &cars[2..])];
    for (_, r) in scs.iter_mut().flat_map(|sc| sc.rows.iter_mut()) {
        if r.agent_id % 2 == 0 {
            r.z_m = -6.0;
        }
    }
    let net = model();
    let gnet = GpuNetwork::new(&ctx, &net).unwrap();
    let cfg = RolloutConfig { steps: 30, samples: 2, seed: 7, sampling: SamplingConfig::default() };
    for mask in [FeasibilityMask::NONE, FeasibilityMask::default()] {
        let cpu = swm_model::rollout::rollout_scenarios_masked(&net, &map, &scs, &cfg, None, mask);
        let gpu = rollout_scenarios_gpu_masked(&ctx, &gnet, &map, &scs, &cfg, None, mask).unwrap();
        let (mut tracks, mut same, mut ramped, mut worst_z) = (0, 0, 0, 0.0f64);
        for (g, c) in gpu.iter().zip(&cpu) {
            for (gs, cs) in g.samples.iter().zip(&c.samples) {
                assert_eq!(gs.len(), cs.len());
                let ids: std::collections::BTreeSet<u64> = cs.iter().map(|(_, r)| r.agent_id).collect();
                for id in ids {
                    tracks += 1;
                    let pairs: Vec<_> = gs.iter().zip(cs).filter(|(_, (_, r))| r.agent_id == id).collect();
                    let d =
                        pairs.iter().map(|((_, a), (_, b))| (a.x_m - b.x_m).hypot(a.y_m - b.y_m)).fold(0.0, f64::max);
                    if d < 1e-4 {
                        same += 1;
                        let dz = pairs.iter().map(|((_, a), (_, b))| (a.z_m - b.z_m).abs()).fold(0.0, f64::max);
                        worst_z = worst_z.max(dz);
                        let zs: Vec<f64> = pairs.iter().map(|(_, (_, b))| b.z_m).collect();
                        ramped += usize::from(zs.iter().any(|&z| z > -5.9 && z < -0.1));
                    }
                }
            }
        }
        println!(
            "{mask:?}: {same} of {tracks} tracks within 1e-4 m, {ramped} of them up the ramp; worst |dz| {worst_z:.1e} m"
        );
        assert!(same * 10 >= tracks * 9, "{same} of {tracks} tracks agree");
        assert!(worst_z < 1e-3, "recorded heights differ by {worst_z} m");
        assert!(ramped >= 2, "{ramped} tracks climbed the ramp");
        // The decks matter here: on a flat map (every deck 0) the same scenes roll out otherwise.
        let mut flat_scs = scs.clone();
        for (_, r) in flat_scs.iter_mut().flat_map(|sc| sc.rows.iter_mut()) {
            r.z_m = 0.0;
        }
        let flat_cpu = swm_model::rollout::rollout_scenarios_masked(&net, &flat, &flat_scs, &cfg, None, mask);
        let xy = |v: &[swm_model::ScenarioRollout]| -> Vec<u64> {
            v.iter().flat_map(|s| s.samples.iter().flatten().map(|(_, r)| r.x_m.to_bits() ^ r.y_m.to_bits())).collect()
        };
        assert!(xy(&flat_cpu) != xy(&cpu), "{mask:?}: the levels changed nothing");
    }
}

#[test]
fn driven_agents_take_the_drivers_states() {
    let Some(ctx) = common::ctx() else { return };
    let map = road(0.0, [0.0, 0.0]);
    let scs = scenarios(0.0, [0.0, 0.0]);
    let net = Network::init(NetConfig::default(), 4);
    let gnet = GpuNetwork::new(&ctx, &net).unwrap();
    let cfg = RolloutConfig { steps: 5, samples: 2, seed: 3, sampling: SamplingConfig::default() };
    // Agent 2 (the bus) stands still wherever it is.
    let driver = |_s: u64, _sample: u32, id: u64, _f: i32, world: &[WorldAgent]| -> Option<Kinematics> {
        (id == 2).then(|| {
            let w = world.iter().find(|w| w.agent_id == 2).unwrap();
            Kinematics { speed_mps: 0.0, ..w.state }
        })
    };
    let gpu = rollout_scenarios_gpu(&ctx, &gnet, &map, &scs, &cfg, Some(&driver)).unwrap();
    let cpu = swm_model::rollout_scenarios_with(&net, &map, &scs, &cfg, Some(&driver));
    for (g, c) in gpu.iter().zip(&cpu) {
        for (gs, cs) in g.samples.iter().zip(&c.samples) {
            for ((_, a), (_, b)) in gs.iter().zip(cs).filter(|((_, a), _)| a.agent_id == 2) {
                assert_eq!((a.x_m, a.y_m, a.speed_mps), (b.x_m, b.y_m, 0.0));
            }
        }
    }
}

#[test]
fn rollouts_do_not_depend_on_the_dispatch_grid() {
    // Batches past one dispatch dimension are spread over a 2-D grid; forcing tiny grid
    // dimensions must give the same records, byte for byte (and a rollout is deterministic).
    let Some(mut ctx) = common::ctx() else { return };
    let (angle, shift) = (0.3, [2_500.0, -1_800.0]);
    let map = road(angle, shift);
    let scs = scenarios(angle, shift);
    let net = model();
    let gnet = GpuNetwork::new(&ctx, &net).unwrap();
    let cfg = RolloutConfig { steps: 12, samples: 3, seed: 5, sampling: SamplingConfig::default() };
    let wide = rollout_scenarios_gpu(&ctx, &gnet, &map, &scs, &cfg, None).unwrap();
    let again = rollout_scenarios_gpu(&ctx, &gnet, &map, &scs, &cfg, None).unwrap();
    ctx.set_max_workgroups_per_dim(3);
    let narrow = rollout_scenarios_gpu(&ctx, &gnet, &map, &scs, &cfg, None).unwrap();
    assert_eq!(wide, again);
    assert_eq!(wide, narrow);
}

#[test]
fn scripted_agents_move_as_a_driver_would_without_read_back() {
    // A robot's plan as a script (on the device) against the same plan as a driver (read
    // back every frame): every other agent's records are identical, the scripted agent's
    // states are the plan's (to the device's f32 offsets).
    let Some(ctx) = common::ctx() else { return };
    let map = road(0.2, [300.0, 700.0]);
    let scs = scenarios(0.2, [300.0, 700.0]);
    let net = model();
    let gnet = GpuNetwork::new(&ctx, &net).unwrap();
    let cfg = RolloutConfig { steps: 15, samples: 2, seed: 9, sampling: SamplingConfig::default() };
    // Agent 1 of every scenario brakes to a stop along its heading.
    let plan = |sc: &swm_dataset::Scenario| -> Vec<Kinematics> {
        let r = sc.rows.iter().find(|(f, r)| *f == 0 && r.agent_id == 1).map(|(_, r)| r.clone()).unwrap();
        let mut k = Kinematics { point_enu: [r.x_m, r.y_m], heading_rad: r.heading_rad, speed_mps: r.speed_mps };
        (0..10)
            .map(|_| {
                k = swm_model::tokens::vehicle_step_with(&k, -3.0, 0.02);
                k
            })
            .collect()
    };
    let scripts: Vec<ScriptedAgent> = scs
        .iter()
        .enumerate()
        .filter(|(_, sc)| sc.rows.iter().any(|(f, r)| *f == 0 && r.agent_id == 1))
        .map(|(i, sc)| ScriptedAgent { scenario: i, agent_id: 1, states: plan(sc) })
        .collect();
    assert!(scripts.len() >= 3);
    let engine = GpuRolloutEngine::new(&ctx, &map).unwrap();
    let (scripted, _) =
        engine.rollout(&ctx, &gnet, &map, &scs, &cfg, None, &scripts, FeasibilityMask::default()).unwrap();
    let driver = |sid: u64, _s: u32, id: u64, frame: i32, _w: &[WorldAgent]| -> Option<Kinematics> {
        let sa = scripts.iter().find(|sa| scs[sa.scenario].scenario_id == sid && sa.agent_id == id)?;
        let k = sa.states.get((frame - 1) as usize).or(sa.states.last())?;
        Some(AgentState::from_kinematics(k).to_kinematics())
    };
    let (driven, _) =
        engine.rollout(&ctx, &gnet, &map, &scs, &cfg, Some(&driver), &[], FeasibilityMask::default()).unwrap();
    let mut scripted_rows = 0;
    for (a, b) in scripted.iter().zip(&driven) {
        for (sa, sb) in a.samples.iter().zip(&b.samples) {
            assert_eq!(sa.len(), sb.len());
            for ((fa, ra), (fb, rb)) in sa.iter().zip(sb) {
                assert_eq!((fa, ra.agent_id), (fb, rb.agent_id));
                if ra.agent_id == 1 {
                    scripted_rows += 1;
                    assert!((ra.x_m - rb.x_m).abs() < 1e-6 && (ra.y_m - rb.y_m).abs() < 1e-6);
                } else {
                    assert_eq!(ra, rb, "frame {fa}");
                }
            }
        }
    }
    assert!(scripted_rows >= 3 * 2 * 15);
    // Bad scripts are errors, not panics.
    let bad = [ScriptedAgent {
        scenario: 99,
        agent_id: 1,
        states: vec![Kinematics { point_enu: [0.0, 0.0], heading_rad: 0.0, speed_mps: 0.0 }],
    }];
    assert!(engine.rollout(&ctx, &gnet, &map, &scs, &cfg, None, &bad, FeasibilityMask::default()).is_err());
    let bad = [ScriptedAgent {
        scenario: 0,
        agent_id: 1234,
        states: vec![Kinematics { point_enu: [0.0, 0.0], heading_rad: 0.0, speed_mps: 0.0 }],
    }];
    assert!(engine.rollout(&ctx, &gnet, &map, &scs, &cfg, None, &bad, FeasibilityMask::default()).is_err());
}
