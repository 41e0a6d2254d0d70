//! Evaluation on hand-made scenarios: replay against wrong rollouts, collisions, off-road,
//! red lights, occupancy, the constant-velocity baseline, plots.

mod common;

use common::*;
use swm_eval::{
    EvalConfig, EvalError, Evaluator, ScenarioRollout, constant_velocity, evaluate, frozen, log_replay, plot_reports,
};
use swm_sim::{AgentKind, SignalState, TrajectoryRecord};

const H: i32 = 10;
const F: i32 = 40;

/// Traffic on the straight road: a platoon eastbound, a braking car, a westbound car, a
/// pedestrian on the verge.
fn traffic(twin: &swm_twin::Twin) -> swm_dataset::Scenario {
    let (y, m) = (eastbound_lane_y(twin), mid_x(twin));
    let mut braking: Vec<(i32, TrajectoryRecord)> = Vec::new();
    let (mut x, mut v) = (m - 60.0, 12.0);
    for f in -H..=F {
        braking.push((f, rec(0, AgentKind::Car, f, x, y, 0.0, v)));
        x += v * 0.1;
        v = (v - 0.25).max(0.0);
    }
    scenario(
        7,
        vec![
            straight_track(AgentKind::Car, m, y, 11.0, H, F),
            straight_track(AgentKind::Car, m + 20.0, y, 11.0, H, F),
            straight_track(AgentKind::Bus, m - 25.0, y, 11.0, H, F),
            braking,
            straight_track(AgentKind::Car, m + 60.0, -y, -8.0, H, F),
            straight_track(AgentKind::Pedestrian, m + 10.0, y - 12.0, 1.4, H, F),
        ],
    )
}

/// Every sample rotated by 90 degrees about the centre agent's frame-0 position.
fn rotated(scn: &swm_dataset::Scenario, samples: u32) -> ScenarioRollout {
    let c = scn.rows.iter().find(|(f, r)| *f == 0 && r.agent_id == 0).map(|(_, r)| (r.x_m, r.y_m)).unwrap();
    let mut out = log_replay(scn, samples);
    for s in &mut out.samples {
        for (_, r) in s.iter_mut() {
            let (dx, dy) = (r.x_m - c.0, r.y_m - c.1);
            r.x_m = c.0 - dy;
            r.y_m = c.1 + dx;
            r.heading_rad += std::f64::consts::FRAC_PI_2;
        }
    }
    out
}

#[test]
fn replay_beats_wrong_rollouts() {
    let twin = straight_road();
    let scn = traffic(&twin);
    let ev = Evaluator::new(&twin, &EvalConfig::default()).unwrap();
    let scns = [scn.clone()];
    let replay = ev.evaluate(&scns, &[log_replay(&scn, 4)]).unwrap();
    let stopped = ev.evaluate(&scns, &[frozen(&scn, F as u32, 4)]).unwrap();
    let turned = ev.evaluate(&scns, &[rotated(&scn, 4)]).unwrap();
    assert_eq!((replay.scenarios, replay.agents, replay.vehicles, replay.samples), (1, 6, 5, 4));
    assert_eq!(replay.missing_sample_rows, 0);
    assert_eq!(replay.min_ade_m, 0.0);
    assert_eq!(replay.collision_rate, 0.0);
    assert_eq!(replay.offroad_rate, 0.0, "the log drives on the road");
    // Replay scores at least as well as the wrong rollouts on every component (not 1: with
    // values pooled over time, a braking car's speeds spread over several bins).
    for wrong in [&stopped, &turned] {
        for (c, (r, w)) in
            swm_eval::Component::ALL.iter().zip(replay.likelihoods.as_array().iter().zip(wrong.likelihoods.as_array()))
        {
            assert!(*r >= w - 1e-12, "{c:?}: replay {r} < {w}");
        }
    }
    assert!(replay.likelihoods.collision_indication > 0.999 && replay.likelihoods.offroad_indication > 0.999);
    assert!(replay.meta_metric > 0.9, "{}", replay.meta_metric);
    assert!(stopped.meta_metric < replay.meta_metric - 0.05, "{} vs {}", stopped.meta_metric, replay.meta_metric);
    assert!(stopped.likelihoods.linear_speed < 0.5, "{:?}", stopped.likelihoods);
    assert!(stopped.min_ade_m > 5.0);
    assert!(turned.meta_metric < replay.meta_metric - 0.2, "{} vs {}", turned.meta_metric, replay.meta_metric);
    assert_eq!(turned.offroad_rate, 1.0, "turned across the road, vehicles leave it");
    assert!(turned.likelihoods.offroad_indication < 0.01);
    // Occupancy: replay is exact; copying frame 0 is not, for moving agents.
    for iou in [replay.occupancy_iou_1s, replay.occupancy_iou_2s, replay.occupancy_iou_3s] {
        assert_eq!(iou, 1.0);
    }
    assert_eq!(replay.occupancy_soft_iou_3s, 1.0);
    for iou in [replay.copy_last_occupancy_iou_1s, replay.copy_last_occupancy_iou_2s, replay.copy_last_occupancy_iou_3s]
    {
        assert!(iou < 0.8, "{iou}");
    }
    assert!(stopped.occupancy_iou_3s < 1.0);
    assert_eq!(stopped.occupancy_iou_3s, stopped.copy_last_occupancy_iou_3s, "frozen is copy-last");
    // The report serialises with the fields the CLI prints.
    let v = serde_json::to_value(&replay).unwrap();
    for k in ["meta_metric", "min_ade_m", "collision_rate", "offroad_rate", "occupancy_iou_1s", "occupancy_iou_3s"] {
        assert!(v[k].is_number(), "{k}");
    }
}

#[test]
fn constant_velocity_is_exact_on_constant_velocity_traffic() {
    let twin = straight_road();
    let (y, m) = (eastbound_lane_y(&twin), mid_x(&twin));
    let scn = scenario(
        1,
        vec![
            straight_track(AgentKind::Car, m, y, 11.0, H, F),
            straight_track(AgentKind::Car, m + 60.0, -y, -8.0, H, F),
            straight_track(AgentKind::Truck, m - 40.0, y, 13.0, H, F),
        ],
    );
    let cv = constant_velocity(&scn, F as u32, 3);
    assert_eq!(cv.samples.len(), 3);
    assert_eq!(cv.samples[0], cv.samples[2], "deterministic");
    assert_eq!(cv.samples[0].len(), 3 * F as usize);
    let r = evaluate(&twin, std::slice::from_ref(&scn), &[cv], &EvalConfig::default()).unwrap();
    assert!(r.min_ade_m < 1e-9, "{}", r.min_ade_m);
    let replay = evaluate(&twin, std::slice::from_ref(&scn), &[log_replay(&scn, 3)], &EvalConfig::default()).unwrap();
    assert!((r.meta_metric - replay.meta_metric).abs() < 1e-9, "{} vs {}", r.meta_metric, replay.meta_metric);
    // Box edges fall on cell centres here, so rounding flips a few cells.
    assert!(r.occupancy_iou_3s > 0.9, "{}", r.occupancy_iou_3s);
}

#[test]
fn collisions_of_overlapping_boxes_count_rotated_too() {
    let twin = straight_road();
    let (y, m) = (eastbound_lane_y(&twin), mid_x(&twin));
    let scn = scenario(
        3,
        vec![straight_track(AgentKind::Car, m, y, 11.0, H, F), straight_track(AgentKind::Car, m + 15.0, y, 11.0, H, F)],
    );
    let cfg = EvalConfig::default();
    // Sample where agent 1 is replaced by a box at `dy` beside agent 0, heading `h`.
    let beside = |dy: f64, h: f64| {
        let mut r = log_replay(&scn, 1);
        for (_, rr) in r.samples[0].iter_mut() {
            if rr.agent_id == 1 {
                rr.x_m -= 15.0;
                rr.y_m += dy;
                rr.heading_rad = h;
            }
        }
        r
    };
    let ok = evaluate(&twin, std::slice::from_ref(&scn), &[log_replay(&scn, 1)], &cfg).unwrap();
    assert_eq!((ok.collision_rate, ok.log_collision_rate), (0.0, 0.0));
    // Same heading, 1.5 m apart laterally (widths 1.8): overlap, both agents collide.
    let hit = evaluate(&twin, std::slice::from_ref(&scn), &[beside(1.5, 0.0)], &cfg).unwrap();
    assert_eq!(hit.collision_rate, 1.0);
    assert!(hit.likelihoods.collision_indication < 0.01);
    assert!(hit.meta_metric < ok.meta_metric - 0.2);
    // Rotated 90 degrees, 3 m beside: its half length (2.25) reaches within 0.75 m, the
    // other's half width is 0.9: overlap. 3.5 m beside: 1.25 m, no overlap.
    let rot = std::f64::consts::FRAC_PI_2;
    let hit = evaluate(&twin, std::slice::from_ref(&scn), &[beside(3.0, rot)], &cfg).unwrap();
    assert_eq!(hit.collision_rate, 1.0);
    let miss = evaluate(&twin, std::slice::from_ref(&scn), &[beside(3.5, rot)], &cfg).unwrap();
    assert_eq!(miss.collision_rate, 0.0);
}

#[test]
fn off_road_on_a_straight_road() {
    let twin = straight_road();
    let (y, m) = (eastbound_lane_y(&twin), mid_x(&twin));
    let ev = Evaluator::new(&twin, &EvalConfig::default()).unwrap();
    let road = ev.road();
    // Four lanes of 3.25 m: the carriageway's edges are 6.5 m either side of the axis.
    let half = 2.0 * twin.lanes[0].width_m;
    for (y_m, want) in [(0.0, -half), (y, y.abs() - half), (3.0, 3.0 - half), (-30.0, 30.0 - half), (half, 0.0)] {
        let got = road.signed_distance([m, y_m]);
        assert!((got - want).abs() < 0.3, "at y {y_m}: {got} (want {want})");
    }
    // Beyond the road's end, and far away.
    assert!(road.signed_distance([m + 1000.0, 0.0]) > 40.0);
    // A car 30 m off the road, another on its lane.
    let scn = scenario(
        4,
        vec![straight_track(AgentKind::Car, m, y, 11.0, H, F), straight_track(AgentKind::Car, m, 30.0, 11.0, H, F)],
    );
    let r = ev.evaluate(std::slice::from_ref(&scn), &[log_replay(&scn, 2)]).unwrap();
    assert_eq!(r.offroad_rate, 0.5);
    assert_eq!(r.log_offroad_rate, 0.5);
    assert!(r.likelihoods.offroad_indication > 0.99, "replay matches the log's off-road car");
    // Driving the on-road car off the road makes both off-road.
    let mut off = log_replay(&scn, 2);
    for s in &mut off.samples {
        for (_, rr) in s.iter_mut() {
            if rr.agent_id == 0 {
                rr.y_m += 25.0;
            }
        }
    }
    let r = ev.evaluate(std::slice::from_ref(&scn), &[off]).unwrap();
    assert_eq!(r.offroad_rate, 1.0);
    assert!(r.likelihoods.offroad_indication < 0.1);
}

#[test]
fn red_light_violations() {
    let twin = crossroads();
    let lane = twin.lanes.iter().position(|l| l.stop_line.is_some()).expect("a lane with a stop line") as u32;
    let cfg = EvalConfig::default();
    let run = |signal: SignalState| {
        let scn = scenario(5, vec![car_through_stop_line(&twin, lane, signal)]);
        let replay = evaluate(&twin, std::slice::from_ref(&scn), &[log_replay(&scn, 2)], &cfg).unwrap();
        let stopped = evaluate(&twin, std::slice::from_ref(&scn), &[frozen(&scn, 30, 2)], &cfg).unwrap();
        (replay, stopped)
    };
    let (replay, stopped) = run(SignalState::Red);
    assert_eq!(replay.log_traffic_light_violation_rate, 1.0);
    assert_eq!(replay.traffic_light_violation_rate, 1.0);
    assert!(replay.likelihoods.traffic_light_violation > 0.99);
    assert_eq!(stopped.traffic_light_violation_rate, 0.0);
    assert!(stopped.likelihoods.traffic_light_violation < 0.01);
    for s in [SignalState::Green, SignalState::Amber] {
        let (replay, _) = run(s);
        assert_eq!(replay.log_traffic_light_violation_rate, 0.0, "{s:?}");
        assert_eq!(replay.traffic_light_violation_rate, 0.0, "{s:?}");
    }
}

#[test]
fn deterministic_and_order_independent() {
    let twin = straight_road();
    let a = traffic(&twin);
    let mut b = traffic(&twin);
    b.scenario_id = 8;
    let scns = [a.clone(), b.clone()];
    let rolls = [constant_velocity(&b, F as u32, 2), rotated(&a, 3)];
    let cfg = EvalConfig::default();
    let r1 = evaluate(&twin, &scns, &rolls, &cfg).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let r2 = pool.install(|| evaluate(&twin, &scns, &rolls, &cfg).unwrap());
    assert_eq!(serde_json::to_string(&r1).unwrap(), serde_json::to_string(&r2).unwrap());
    // The whole-twin raster and the one around the scenarios agree.
    let r3 = Evaluator::new(&twin, &cfg).unwrap().evaluate(&scns, &rolls).unwrap();
    assert_eq!(serde_json::to_string(&r1).unwrap(), serde_json::to_string(&r3).unwrap());
    assert_eq!(r1.samples, 5);
}

#[test]
fn errors() {
    let twin = straight_road();
    let scn = traffic(&twin);
    let cfg = EvalConfig::default();
    let one = std::slice::from_ref(&scn);
    assert!(matches!(evaluate(&twin, &[], &[], &cfg), Err(EvalError::NoScenarios)));
    assert!(matches!(evaluate(&twin, one, &[], &cfg), Err(EvalError::MissingRollout { scenario_id: 7 })));
    let empty = ScenarioRollout { scenario_id: 7, samples: vec![] };
    assert!(matches!(evaluate(&twin, one, &[empty], &cfg), Err(EvalError::EmptyRollout { .. })));
    let mut bad = log_replay(&scn, 1);
    bad.samples[0][0].1.agent_id = 99;
    assert!(matches!(evaluate(&twin, one, &[bad], &cfg), Err(EvalError::UnknownAgent { agent_id: 99, .. })));
    let dup = [log_replay(&scn, 1), log_replay(&scn, 1)];
    assert!(matches!(evaluate(&twin, one, &dup, &cfg), Err(EvalError::DuplicateRollout { .. })));
    // Missing rows are counted, not fatal.
    let mut short = log_replay(&scn, 1);
    short.samples[0].retain(|(f, r)| !(r.agent_id == 1 && *f > 20));
    let r = evaluate(&twin, one, &[short], &cfg).unwrap();
    assert_eq!(r.missing_sample_rows, 20);
}

#[test]
fn plots_are_written() {
    let twin = straight_road();
    let scn = traffic(&twin);
    let ev = Evaluator::new(&twin, &EvalConfig::default()).unwrap();
    let one = std::slice::from_ref(&scn);
    let methods = vec![
        ("teacher_replay".to_string(), ev.evaluate(one, &[log_replay(&scn, 2)]).unwrap()),
        ("constant_velocity".to_string(), ev.evaluate(one, &[constant_velocity(&scn, F as u32, 2)]).unwrap()),
        ("frozen".to_string(), ev.evaluate(one, &[frozen(&scn, F as u32, 2)]).unwrap()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = std::env::var_os("SWM_EVAL_PLOT_DIR").map_or_else(|| dir.path().join("plots"), Into::into);
    let files = plot_reports(&methods, &out).unwrap();
    assert_eq!(files.len(), 5);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{}", f.display());
        assert!(bytes.len() > 2000);
    }
    assert!(plot_reports(&[], dir.path()).is_err());
    // An output directory that cannot be created (a file is in the way): an I/O error
    // naming it, whose OS cause is its source and shows once in the chain.
    let blocked = dir.path().join("a-file");
    std::fs::write(&blocked, b"x").unwrap();
    let err = plot_reports(&methods, &blocked.join("plots")).unwrap_err();
    assert!(matches!(err, EvalError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("a-file"), "{err}");
    let os = std::error::Error::source(&err).expect("the I/O error is the source").to_string();
    assert!(!err.to_string().contains(&os), "{err}");
    let mut chain = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        chain = format!("{chain}: {c}");
        cause = c.source();
    }
    assert_eq!(chain.matches(&os).count(), 1, "{chain}");
}
