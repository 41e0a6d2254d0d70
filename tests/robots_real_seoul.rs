//! Robots on the real Yeouido twin (`../shared/data/seoul/yeouido.osm.pbf`): episodes start
//! on the real walk and lane graphs, routes respect the configured lengths, and both robots
//! step through the gym API with the world-model planner and a plain route follower.
//!
//! Under `CI=true` the test fails when the data is missing; elsewhere it prints why it
//! skips. `SWM_SHARED_DATA` overrides where the data is looked for.

use std::sync::Arc;

use swm::ingest::shared_data::require_shared_data;
use swm::robots::env::{Controller, Env, EnvConfig, Outcome};
use swm::robots::planner::{MppiPlanner, PlannerConfig, RouteFollower, WorldModel};
use swm::robots::{RobotKind, Scene, load_twin};

#[test]
fn robots_drive_and_walk_on_real_yeouido() -> anyhow::Result<()> {
    let Some(pbf) = require_shared_data("seoul/yeouido.osm.pbf") else { return Ok(()) };
    let scene = Arc::new(Scene::new(Arc::new(load_twin(Some(&pbf))?)));
    let net = Arc::new(swm::model::Network::load(&swm::model::default_model_path())?);
    let map = Arc::new(swm::model::MapContext::new(&scene.twin, None)?);
    for kind in [RobotKind::Delivery, RobotKind::Car] {
        let config = EnvConfig { vehicles: 80, pedestrians: 80, warmup_s: 5.0, ..EnvConfig::of(kind) };
        let (lo, hi) = (config.min_route_m, config.max_route_m);
        let mut env = Env::new(scene.clone(), config)?;
        for seed in 1..=3 {
            let mut obs = env.reset(seed)?;
            let len = env.route()?.0.length_m();
            assert!(len >= lo && len <= hi, "{kind:?} seed {seed}: route {len} m");
            // The start is on the graph the robot belongs to.
            let start = obs.state.point_enu;
            match kind {
                RobotKind::Delivery => assert!(scene.off_walk_m(start) < 0.5, "start {start:?} off the walk graph"),
                RobotKind::Car => {
                    let hit = scene.index.nearest_lane(start).expect("lanes");
                    assert!(hit.distance_m < 1.0, "start {start:?} off the lanes");
                }
            }
            let mut planner: Box<dyn Controller> = if seed == 1 {
                Box::new(MppiPlanner::new(PlannerConfig::of(kind), Box::new(WorldModel::new(net.clone(), map.clone()))))
            } else {
                Box::new(RouteFollower::default())
            };
            planner.reset(&env);
            let mut moved = 0.0;
            for _ in 0..60 {
                let a = planner.act(&env, &obs);
                let st = env.step(&a)?;
                moved += st.info.progress_m;
                if st.done {
                    assert!(st.info.outcome.is_some());
                    if st.info.outcome == Some(Outcome::Collision) {
                        assert!(st.info.contact.is_some());
                    }
                    break;
                }
                obs = st.observation;
            }
            assert!(moved > 1.0, "{kind:?} seed {seed} ({}): the robot makes progress ({moved} m)", planner.name());
        }
    }
    Ok(())
}

/// A start that traffic keeps blocked is given up for another. On Jamsil at rush hour the
/// delivery robot's first start for seed 772 stays blocked for the whole 30 s the warm-up
/// may wait (seed 112 until session 43, whose rounded bends and curve speeds changed the
/// traffic; 772 is the only seed of 100-772 that blocks now); before, the episode began there anyway
/// and a walker struck the robot in its first step, whatever it did.
#[test]
fn a_start_blocked_by_traffic_is_given_up_for_a_clear_one() -> anyhow::Result<()> {
    let Some(pbf) = require_shared_data("seoul/jamsil.osm.pbf") else { return Ok(()) };
    let scene = Arc::new(Scene::new(Arc::new(load_twin(Some(&pbf))?)));
    let config = EnvConfig::of(RobotKind::Delivery).rush_hour();
    let longest_wait_s = config.warmup_s + 30.0;
    let mut env = Env::new(scene, config)?;
    let obs = env.reset(772)?;
    assert!(
        obs.time_s > longest_wait_s + 0.05,
        "seed 772 no longer meets a blocked start (it began at {} s): this test needs another seed",
        obs.time_s
    );
    // Standing still for 2 s: nothing was about to strike the robot where it starts.
    for k in 0..20 {
        let st = env.step(&swm::robots::Action { accel_mps2: -1.0, turn: 0.0 })?;
        assert_ne!(st.info.outcome, Some(Outcome::Collision), "struck at step {} ({:?})", k + 1, st.info.contact);
        if st.done {
            break;
        }
    }
    Ok(())
}
