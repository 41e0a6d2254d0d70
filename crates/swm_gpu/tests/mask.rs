//! The feasibility masks on the GPU (`shaders/mask.wgsl`) against the CPU's
//! `swm_model::rollout::FeasibilityFilter` on the same sampled tokens, logits and states:
//! dense teacher scenarios of the procedural default district, sampled hot enough that the
//! masks often act.

mod common;

use swm_gpu::features::{GpuFeatures, GpuMap};
use swm_gpu::layout::{AgentKey, AgentState};
use swm_gpu::network::LOGIT_STRIDE;
use swm_gpu::sample::{GpuMasks, GpuSampler, SampleRows, class_code};
use swm_gpu::{GpuContext, GpuNetwork};
use swm_model::net::logit_offsets;
use swm_model::rollout::{FeasibilityFilter, world_of};
use swm_model::sampling::{STREAM_TOKEN, keyed_u32x4};
use swm_model::tokens::AgentClass;
use swm_model::{FeasibilityMask, MapContext, Network, SamplingConfig};
use swm_sim::AgentKind;

/// (rows, rows the CPU's masks changed, rows where GPU and CPU keep different tokens).
fn compare(
    ctx: &GpuContext,
    map: &MapContext,
    scenarios: &[swm_dataset::Scenario],
    cfg: &SamplingConfig,
    mask: FeasibilityMask,
) -> (usize, usize, usize) {
    let seed = 21u64;
    let (groups, rows) = common::groups(scenarios, map, seed);
    let n = rows.info.len();
    let gmap = GpuMap::new(ctx, map).unwrap();
    let features = GpuFeatures::new(ctx).unwrap().compute(ctx, &gmap, &rows, 0, 1).unwrap();
    let mut classes = vec![AgentClass::Vehicle; n];
    let mut keys = vec![AgentKey::default(); n];
    let mut states = vec![AgentState::default(); n];
    for g in &groups {
        for (i, (a, &r)) in g.agents.iter().zip(&g.rows).enumerate() {
            classes[r] = a.class;
            keys[r] = AgentKey {
                scenario: g.scenario_id as u32,
                agent: i as u32,
                sample: 0,
                agent_class: class_code(a.class),
            };
            states[r] = AgentState::from_kinematics(a.history.last().unwrap());
        }
    }
    let net = Network::load(&swm_model::default_model_path()).expect("the shipped model");
    let gnet = GpuNetwork::new(ctx, &net).unwrap();
    let ragged = gnet.forward(ctx, &features, &classes).unwrap();
    let offs = logit_offsets(&classes);
    let mut logits = vec![0.0f32; n * LOGIT_STRIDE];
    for r in 0..n {
        let v = classes[r].vocab();
        logits[r * LOGIT_STRIDE..r * LOGIT_STRIDE + v].copy_from_slice(&ragged[offs[r]..offs[r] + v]);
    }
    let sample_rows = SampleRows { logits: &logits, keys: &keys, states: &states };
    let (tok0, next0) = GpuSampler::new(ctx).unwrap().sample_step(ctx, &sample_rows, 1, seed, cfg).unwrap();
    let (tok1, next1) = GpuMasks::new(ctx)
        .unwrap()
        .apply(ctx, &gmap, &rows, &sample_rows, (&tok0, &next0), 1, seed, cfg, mask)
        .unwrap();
    let (mut changed, mut differ) = (0, 0);
    for g in &groups {
        let (id, rws) = (&g.scenario_id, &g.rows);
        let world = world_of(&g.agents);
        let mut filter = FeasibilityFilter::default();
        filter.new_frame(&world);
        for (i, &r) in rws.iter().enumerate() {
            let v = classes[r].vocab();
            let mut l = logits[r * LOGIT_STRIDE..r * LOGIT_STRIDE + v].to_vec();
            let u = swm_core::rng::unit_f32(keyed_u32x4(seed, *id, i as u32, 1, 0, STREAM_TOKEN)[1]);
            let want = filter.filter(mask, map, &world, i, tok0[r], &mut l, cfg, u);
            changed += usize::from(want != tok0[r]);
            if want != tok1[r] {
                differ += 1;
                println!("  row {r} ({:?}): sampled {} cpu keeps {want} gpu keeps {}", classes[r], tok0[r], tok1[r]);
            }
            if tok1[r] == tok0[r] {
                assert_eq!(next1[r], next0[r], "row {r}: a kept token keeps the sampler's state");
            }
        }
    }
    (n, changed, differ)
}

#[test]
fn gpu_masks_keep_the_cpu_filters_tokens() {
    let Some(ctx) = common::ctx() else { return };
    // 48 scenarios: enough rows that the masks act on a few dozen.
    let (_twin, set, map) = common::dense_district_with(48);
    let (mut all_rows, mut all_changed, mut all_differ) = (0, 0, 0);
    for (cfg, mask) in [
        (SamplingConfig::default(), FeasibilityMask::default()),
        (SamplingConfig { temperature: 2.5, top_k: 0, top_p: 1.0 }, FeasibilityMask::default()),
        (
            SamplingConfig { temperature: 2.5, top_k: 0, top_p: 1.0 },
            FeasibilityMask { collision: true, offroad: false },
        ),
        (
            SamplingConfig { temperature: 2.5, top_k: 20, top_p: 0.9 },
            FeasibilityMask { collision: false, offroad: true },
        ),
    ] {
        let (n, changed, differ) = compare(&ctx, &map, &set.scenarios, &cfg, mask);
        println!("{cfg:?} {mask:?}: {n} rows, the CPU's masks changed {changed}, GPU and CPU differ on {differ}");
        assert!(n >= 300);
        (all_rows, all_changed, all_differ) = (all_rows + n, all_changed + changed, all_differ + differ);
    }
    // Decisions agree except where an f32 box test sits on an edge: at most 1 row in 200.
    assert!(all_differ * 200 <= all_rows, "{all_differ} of {all_rows} rows differ");
    assert!(all_changed >= 15, "the masks acted on only {all_changed} rows: the test would not see them");
}

/// Three lanes 3.5 m apart turning left (radii 60, 63.5 and 67 m over 1.2 rad after 100 m
/// straight on), the road 1.75 m either side of them.
fn three_lane_bend() -> MapContext {
    use swm_model::map::make_path;
    let lane = |i: u32| {
        let r = 60.0 + 3.5 * f64::from(i);
        let mut pts: Vec<[f64; 2]> = (0..=10).map(|k| [-100.0 + 10.0 * f64::from(k), 60.0 - r]).collect();
        pts.extend((1..=40).map(|k| 0.03 * f64::from(k)).map(|a| [r * a.sin(), 60.0 - r * a.cos()]));
        make_path(pts, 16.7, Some(i), None, vec![])
    };
    MapContext::from_paths((0..3).map(lane).collect(), 1.75)
}

/// `n` scenarios of six cars on [`three_lane_bend`], two abreast per lane, each up to
/// 0.3 m off its lane and 0.08 rad off its heading, at 10–17 m/s.
fn bend_scenarios(n: u64) -> Vec<swm_dataset::Scenario> {
    let mut rng = common::Rng(5);
    (0..n)
        .map(|id| {
            let cars: Vec<_> = (0..6)
                .map(|c| {
                    let lane = c % 3;
                    let r = 60.0 + 3.5 * f64::from(lane) + f64::from(rng.f32(-0.3, 0.3));
                    let a = 0.12 * f64::from(c / 3) + 0.3 + f64::from(rng.f32(-0.04, 0.04));
                    let heading = a + f64::from(rng.f32(-0.08, 0.08));
                    (AgentKind::Car, r * a.sin(), 60.0 - r * a.cos(), heading, f64::from(rng.f32(10.0, 17.0)))
                })
                .collect();
            common::scenario(id, &cars)
        })
        .collect()
}

/// Other vehicles brake along their lanes in the GPU's masks as in the CPU's: cars abreast
/// and staggered on a three-lane bend, each up to 0.3 m off its lane and 0.08 rad off its
/// heading, sampled hot so that the masks act. (With every other vehicle braking straight
/// on in the GPU's masks, 233 rows of 360 differed; with `path_segment`'s early-exit loop
/// that lavapipe ran once only, 37: the test sees both.)
#[test]
fn gpu_masks_follow_the_others_lanes_round_a_bend() {
    let Some(ctx) = common::ctx() else { return };
    let map = three_lane_bend();
    let scenarios = bend_scenarios(60);
    let cfg = SamplingConfig { temperature: 2.5, top_k: 0, top_p: 1.0 };
    let (n, changed, differ) = compare(&ctx, &map, &scenarios, &cfg, FeasibilityMask::default());
    println!("bend: {n} rows, the CPU's masks changed {changed}, GPU and CPU differ on {differ}");
    assert_eq!(n, 360);
    assert!(changed >= 20, "the masks acted on only {changed} rows");
    assert!(differ * 200 <= n, "{differ} of {n} rows differ");
}

/// The device's routes of the others' braking (`make_ghosts`) put every vehicle where the
/// CPU's `assumed_braking_states` does, to within f32 rounding: the bend's cars.
#[test]
fn gpu_ghosts_brake_where_the_cpus_do() {
    let Some(ctx) = common::ctx() else { return };
    let map = three_lane_bend();
    let scenarios = bend_scenarios(4);
    let (groups, rows) = common::groups(&scenarios, &map, 21);
    let mut states = vec![AgentState::default(); rows.info.len()];
    for g in &groups {
        for (a, &r) in g.agents.iter().zip(&g.rows) {
            states[r] = AgentState::from_kinematics(a.history.last().unwrap());
        }
    }
    let gmap = GpuMap::new(&ctx, &map).unwrap();
    let ghosts = GpuMasks::new(&ctx).unwrap().ghosts(&ctx, &gmap, &rows, &states).unwrap();
    let mut worst_m = 0.0f64;
    for g in &groups {
        let world = world_of(&g.agents);
        for (w, &r) in world.iter().zip(&g.rows) {
            let cpu = swm_model::rollout::assumed_braking_states(&map, w, 30);
            let gh = &ghosts[r];
            assert_eq!(gh.n, 1, "row {r}: a car on its lane follows it");
            // The device's state i, as `their_box` places it: s_i on at the heading error from
            // the line, s_i·cos e along the route and s_i·sin e across it (at most s_i away).
            let v = w.state.speed_mps;
            let (f, d0) = ([w.state.heading_rad.cos(), w.state.heading_rad.sin()], [gh.d0_x, gh.d0_y].map(f64::from));
            let (cos_e, sin_e) = (d0[0] * f[0] + d0[1] * f[1], d0[0] * f[1] - d0[1] * f[0]);
            for (i, want) in cpu.iter().enumerate().skip(1) {
                let t_s = (i as f64 * 0.1).min(v / 6.0);
                let s = v * t_s - 3.0 * t_s * t_s;
                let (q, d) = map.paths[gh.paths[0] as usize].at(s * cos_e - f64::from(gh.starts_m[0]));
                let mut moved = [
                    q[0] - f64::from(gh.q0_x_m) - w.state.point_enu[0] - s * sin_e * d[1],
                    q[1] - f64::from(gh.q0_y_m) - w.state.point_enu[1] + s * sin_e * d[0],
                ];
                let len = moved[0].hypot(moved[1]);
                if len > s {
                    moved = [moved[0] * s / len, moved[1] * s / len];
                }
                let got = [w.state.point_enu[0] + moved[0], w.state.point_enu[1] + moved[1]];
                let d = (got[0] - want.point_enu[0]).hypot(got[1] - want.point_enu[1]);
                worst_m = worst_m.max(d);
            }
        }
    }
    println!("worst {worst_m}");
    assert!(worst_m < 1e-3, "the device's ghosts are {worst_m} m from the CPU's");
}
