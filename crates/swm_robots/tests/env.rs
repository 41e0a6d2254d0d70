//! The gym-like API on the embedded default district: the contract of `reset`/`step`, the
//! observation spec, episodes that end, determinism (same seed → same bytes; 1 vs 2
//! threads in `VecEnv`), and routes on the real graphs.

use std::sync::{Arc, OnceLock};

use swm_ingest::osm_xml::FixtureTags as Tags;
use swm_robots::env::{Controller, Env, EnvConfig, Observation, Outcome, Step, VecEnv, run_episode};
use swm_robots::planner::{ConstantVelocity, MppiPlanner, PlannerConfig, RouteFollower};
use swm_robots::robot::{Action, RobotKind};
use swm_robots::scene::{Scene, load_twin};

fn scene() -> Arc<Scene> {
    static SCENE: OnceLock<Arc<Scene>> = OnceLock::new();
    SCENE.get_or_init(|| Arc::new(Scene::new(Arc::new(load_twin(None).expect("the default district builds"))))).clone()
}

fn light(kind: RobotKind) -> EnvConfig {
    EnvConfig { vehicles: 40, pedestrians: 40, warmup_s: 5.0, ..EnvConfig::of(kind) }
}

#[test]
fn gym_contract_and_observation_spec() {
    let mut env = Env::new(
        scene(),
        EnvConfig {
            bev: Some(swm_robots::env::BevSpec { size_px: 32, resolution_m: 0.5 }),
            lidar: Some(swm_robots::env::LidarSpec::planar()),
            ..light(RobotKind::Delivery)
        },
    )
    .unwrap();
    assert!(env.step(&Action::default()).is_err(), "stepping before reset is an error");
    let obs = env.reset(3).unwrap();
    let cfg = env.config().clone();
    assert!(obs.neighbours.len() <= cfg.max_neighbours);
    assert!(obs.neighbours.windows(2).all(|w| {
        w[0].point_robot_m[0].hypot(w[0].point_robot_m[1]) <= w[1].point_robot_m[0].hypot(w[1].point_robot_m[1]) + 1e-9
    }));
    assert_eq!(obs.flat(cfg.max_neighbours).len(), Observation::flat_len(cfg.max_neighbours));
    assert_eq!(obs.route_ahead_robot_m.len(), swm_robots::env::ROUTE_POINTS);
    let bev = obs.bev.as_ref().expect("BEV requested");
    assert_eq!((bev.classes.len(), bev.agents.len()), (32 * 32, 32 * 32));
    let lidar = obs.lidar_ranges_m.as_ref().expect("lidar requested");
    assert_eq!(lidar.len(), 360);
    assert!(lidar.iter().all(|r| r.is_finite() && *r >= 0.0 && *r <= 30.0));
    assert!(lidar.iter().any(|r| *r < 29.9), "something within 30 m of a sidewalk in the district");
    let route_len = env.route().unwrap().0.length_m();
    assert!(route_len >= cfg.min_route_m && route_len <= cfg.max_route_m, "{route_len}");
    assert!((obs.route_remaining_m - route_len).abs() < 2.0);
    // The goal is where the route ends, in the robot frame.
    let goal = env.route().unwrap().0.points.last().copied().unwrap();
    let s = obs.state;
    let d = (goal[0] - s.point_enu[0]).hypot(goal[1] - s.point_enu[1]);
    assert!((obs.goal_robot_m[0].hypot(obs.goal_robot_m[1]) - d).abs() < 1e-9);
    // An episode ends with exactly one outcome, and stepping after it is an error.
    let mut follower = RouteFollower::default();
    let mut last: Option<Step> = None;
    let mut rewards = 0.0;
    let mut obs = obs;
    for _ in 0..(cfg.max_episode_s / 0.1) as usize + 1 {
        let a = follower.act(&env, &obs);
        let st = env.step(&a).unwrap();
        rewards += st.reward;
        assert_eq!(st.done, st.info.outcome.is_some());
        obs = st.observation.clone();
        let done = st.done;
        last = Some(st);
        if done {
            break;
        }
    }
    let last = last.unwrap();
    assert!(last.done, "episodes end by the time limit");
    assert!(env.step(&Action::default()).is_err(), "stepping after the end is an error");
    assert!(rewards.is_finite());
    if last.info.outcome == Some(Outcome::Success) {
        assert!(last.reward > 5.0);
    }
    if last.info.outcome == Some(Outcome::Collision) {
        assert!(last.info.contact.is_some() && last.reward < -5.0);
    }
}

#[test]
fn bad_configurations_are_refused_by_name() {
    let bad = EnvConfig { max_route_m: 1.0, ..EnvConfig::delivery() };
    let e = Env::new(scene(), bad).err().expect("refused").to_string();
    assert!(e.contains("max_route_m"), "{e}");
    let bad = EnvConfig {
        robot: swm_robots::RobotParams { max_speed_mps: f64::NAN, ..swm_robots::RobotParams::car() },
        ..EnvConfig::car()
    };
    let e = Env::new(scene(), bad).err().expect("refused").to_string();
    assert!(e.contains("max_speed_mps"), "{e}");
}

fn episode_bytes(kind: RobotKind, seed: u64, steps: usize) -> String {
    let mut env = Env::new(scene(), light(kind)).unwrap();
    let mut planner = MppiPlanner::new(
        PlannerConfig { candidates: 24, ..PlannerConfig::of(kind) },
        Box::new(ConstantVelocity::default()),
    );
    let mut obs = env.reset(seed).unwrap();
    planner.reset(&env);
    let mut out = serde_json::to_string(&obs).unwrap();
    for _ in 0..steps {
        let a = planner.act(&env, &obs);
        let st = env.step(&a).unwrap();
        out.push_str(&serde_json::to_string(&(a, &st)).unwrap());
        if st.done {
            break;
        }
        obs = st.observation;
    }
    out
}

#[test]
fn same_seed_same_episode_bytes_other_seed_other_episode() {
    for kind in [RobotKind::Delivery, RobotKind::Car] {
        let a = episode_bytes(kind, 5, 25);
        assert_eq!(a, episode_bytes(kind, 5, 25), "{kind:?}");
        assert_ne!(a, episode_bytes(kind, 6, 25), "{kind:?}");
    }
}

fn vec_env_bytes(threads: usize) -> String {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let mut v = VecEnv::new(scene(), EnvConfig { max_episode_s: 2.0, ..light(RobotKind::Delivery) }, 2).unwrap();
        let mut out = serde_json::to_string(&v.reset(100).unwrap()).unwrap();
        for k in 0..30 {
            // A fixed open-loop policy: go, then turn a bit; episodes time out at 3 s and reset.
            let actions: Vec<Action> =
                (0..v.len()).map(|i| Action { accel_mps2: 1.0, turn: 0.1 * ((k + i) % 5) as f64 - 0.2 }).collect();
            let steps = v.step(&actions).unwrap();
            out.push_str(&serde_json::to_string(&steps).unwrap());
        }
        out
    })
}

#[test]
fn vec_env_is_the_same_on_one_and_two_threads_and_auto_resets() {
    let one = vec_env_bytes(1);
    assert_eq!(one, vec_env_bytes(2));
    // 30 steps with 2 s episodes: every environment ended (and was reset) at least once.
    assert!(
        one.matches("\"Timeout\"").count() + one.matches("\"Collision\"").count() + one.matches("\"Success\"").count()
            >= 2
    );
}

#[test]
fn runs_an_episode_with_the_world_model_planner() {
    let net = swm_model::Network::load(&swm_model::default_model_path()).unwrap();
    let sc = scene();
    let map = swm_model::MapContext::new(&sc.twin, None).unwrap();
    let wm = swm_robots::planner::WorldModel::new(Arc::new(net), Arc::new(map));
    let mut planner = MppiPlanner::new(PlannerConfig::of(RobotKind::Delivery), Box::new(wm));
    let mut env = Env::new(sc, EnvConfig { max_episode_s: 4.0, ..light(RobotKind::Delivery) }).unwrap();
    let mut plans = 0;
    let summary = run_episode(&mut env, &mut planner, 9, &mut |_, _, _| plans += 1).unwrap();
    assert_eq!(summary.steps, plans);
    assert!(planner.report().plan.len() == PlannerConfig::of(RobotKind::Delivery).horizon_steps);
    assert!(summary.route_length_m > 0.0 && summary.time_s <= 4.0 + 1e-9);
}

#[test]
fn routes_on_the_district_graphs_follow_edges_and_connections() {
    let sc = scene();
    let twin = &sc.twin;
    // Walk: consecutive route nodes share an edge, and the route starts and ends at them.
    let a = 0u32;
    let b = (twin.walk_nodes.len() / 2) as u32;
    if let Ok(r) = sc.walk.route(twin, a, b) {
        for w in r.nodes.windows(2) {
            assert!(sc.walk.adjacency[w[0] as usize].iter().any(|(o, _)| *o == w[1]));
        }
        let p0 = twin.walk_nodes[a as usize].position;
        assert!((r.points[0][0] - p0[0]).hypot(r.points[0][1] - p0[1]) < 1e-6);
    }
    // Lanes: consecutive lanes are joined by a connection, and the stops are ordered.
    let mut found = false;
    for start in (0..twin.lanes.len() as u32).step_by(7).take(20) {
        let goal = (start * 31 + 17) % twin.lanes.len() as u32;
        let Ok(r) = sc.lanes.route(twin, start, goal) else { continue };
        found = true;
        for w in r.nodes.windows(2) {
            assert!(sc.lanes.successors[w[0] as usize].iter().any(|(l, _)| *l == w[1]));
        }
        assert_eq!(r.stops.len() + 1, r.nodes.len());
        assert!(r.stops.windows(2).all(|w| w[0].s_m <= w[1].s_m));
    }
    assert!(found, "some lane routes exist in the default district");
}

#[test]
fn in_a_model_world_the_model_moves_the_others_and_sees_the_robot() {
    // After the teacher's warm-up the world model moves every other agent: the same agents
    // as the teacher's at reset, then the model's states (not the teacher's), with the
    // robot among the model's agents; two environments with one seed give the same bytes.
    let net = Arc::new(swm_model::Network::load(&swm_model::default_model_path()).unwrap());
    let sc = scene();
    let map = Arc::new(swm_model::MapContext::new(&sc.twin, None).unwrap());
    let make = || Env::new(sc.clone(), light(RobotKind::Car)).unwrap().with_model_world(net.clone(), map.clone());
    let (mut a, mut b) = (make(), make());
    let (oa, ob) = (a.reset(5).unwrap(), b.reset(5).unwrap());
    assert_eq!(oa, ob);
    let at_reset: std::collections::BTreeSet<u64> =
        a.history().unwrap().back().unwrap().others.iter().map(|r| r.agent_id).collect();
    assert!(!at_reset.is_empty());
    let mut differs_from_teacher = 0;
    for _ in 0..15 {
        let act = Action { accel_mps2: 0.5, turn: 0.0 };
        let (sa, sb) = (a.step(&act).unwrap(), b.step(&act).unwrap());
        assert_eq!(sa.observation, sb.observation);
        if sa.done {
            break;
        }
        let frame = a.history().unwrap().back().unwrap();
        assert!(
            frame
                .others
                .iter()
                .all(|r| at_reset.contains(&r.agent_id) && r.agent_id != swm_robots::env::ROBOT_AGENT_ID)
        );
        let teacher = a.sim().unwrap().records();
        differs_from_teacher += frame
            .others
            .iter()
            .filter(|r| teacher.iter().find(|t| t.agent_id == r.agent_id).is_none_or(|t| (t.x_m - r.x_m).abs() > 1e-6))
            .count();
    }
    assert!(differs_from_teacher > 0, "the others are the model's, not the teacher's");
}

/// A twin from a few OSM nodes `(id, x_m, y_m)` and ways `(nodes, tags)` (local metres,
/// `swm_ingest::osm_xml::document_from_local_m`), through the real ingest.
fn twin_from_osm(name: &str, nodes: &[(i64, f64, f64)], ways: &[(&[i64], Tags)]) -> swm_twin::Twin {
    let nodes: Vec<(i64, f64, f64, Tags)> = nodes.iter().map(|&(id, x, y)| (id, x, y, &[][..])).collect();
    let dir = std::env::temp_dir().join(format!("swm_robots_test_{}_{}", std::process::id(), name));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.osm"));
    std::fs::write(&path, swm_ingest::osm_xml::document_from_local_m(&nodes, ways)).unwrap();
    let (twin, _) = swm_ingest::ingest_paths(&[path], &Default::default()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    twin
}

/// A robot car driving over a bridge is on the bridge's level: the traffic on the road
/// below passes under it (no contact, nobody brakes for it), as the teacher and the
/// collision metric judge levels. Before the robot took its height from its route, it
/// stood at the terrain's height: the cars below stopped for it, and any that passed
/// under counted as a contact.
#[test]
fn a_robot_car_on_a_bridge_is_passed_under_not_run_into() {
    let road: Tags = &[("highway", "secondary"), ("lanes", "4"), ("maxspeed", "50")];
    let bridge: Tags =
        &[("highway", "secondary"), ("lanes", "2"), ("oneway", "yes"), ("bridge", "yes"), ("layer", "1")];
    let ramp: Tags = &[("highway", "secondary"), ("lanes", "2"), ("oneway", "yes")];
    let twin = twin_from_osm(
        "overpass",
        &[(1, -300.0, 0.0), (2, 300.0, 0.0), (3, 0.0, -200.0), (4, 0.0, -30.0), (5, 0.0, 30.0), (6, 0.0, 200.0)],
        &[(&[1, 2], road), (&[3, 4], ramp), (&[4, 5], bridge), (&[5, 6], ramp)],
    );
    let on_bridge: Vec<u32> = (0..twin.lanes.len() as u32).filter(|&l| twin.lanes[l as usize].level == 1).collect();
    assert!(!on_bridge.is_empty(), "the bridge is a level up");
    let scene = Arc::new(Scene::new(Arc::new(twin)));
    let twin = &scene.twin;
    // From the bridge's first lane onto the ramp beyond.
    let start = on_bridge[0];
    let goal = (0..twin.lanes.len() as u32)
        .find(|&l| {
            let c = &twin.lanes[l as usize].centerline;
            twin.lanes[l as usize].level == 0 && c[0][1] > 20.0 && c[c.len() - 1][1] > c[0][1]
        })
        .expect("a lane north of the bridge, going north");
    let route = scene.lanes.route(twin, start, goal).expect("over the bridge");
    let z_mid = route.z_at(30.0).expect("a lane route knows its heights");
    assert!(z_mid > swm_twin::LEVEL_HEIGHT_M - 1.0, "the bridge deck is a level up: {z_mid}");
    let config = EnvConfig {
        vehicles: 60,
        pedestrians: 0,
        warmup_s: 20.0,
        max_episode_s: 60.0,
        ..EnvConfig::of(RobotKind::Car)
    };
    let mut env = Env::new(scene.clone(), config).unwrap();
    env.reset_on_route(5, route).unwrap();
    // Creep over the bridge at 1 m/s: from its start 30 m before the middle, the robot is
    // above the road (|y| < 8 m) from about 22 s to 38 s.
    let mut passed_under = 0;
    let mut prev: std::collections::HashMap<u64, f64> = Default::default();
    for _ in 0..450 {
        let s = env.history().unwrap().back().unwrap().robot;
        let accel = if s.speed_mps < 1.0 { 1.0 } else { -1.0 };
        let st = env.step(&Action { accel_mps2: accel, turn: 0.0 }).unwrap();
        assert!(st.info.contact.is_none(), "contact with {:?} at {:?}", st.info.contact, s);
        let robot_y = s.point_enu[1];
        for r in &env.history().unwrap().back().unwrap().others {
            // A vehicle on the road below driving right under the robot (its centre line
            // within 2 m of the robot's centre as it crosses the bridge's line).
            if (r.y_m - robot_y).abs() < 2.0
                && let Some(&x0) = prev.get(&r.agent_id)
                && x0 != 0.0
                && x0.signum() != r.x_m.signum()
            {
                passed_under += 1;
            }
            prev.insert(r.agent_id, r.x_m);
        }
        if st.done {
            break;
        }
    }
    assert!(passed_under > 0, "the traffic below passes under the robot");
}
