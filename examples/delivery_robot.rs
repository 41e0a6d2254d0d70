//! A sidewalk delivery robot crossing the district at rush hour (twice the default traffic),
//! planning in imagination: every 0.1 s MPPI scores its candidate plans against futures the
//! world model samples with the robot in them (the pedestrians and cars react to its plan),
//! and the run is written as an MCAP log with Foxglove schemas (robot pose, planned path,
//! the route, the other agents' boxes, a planar lidar scan) for Foxglove Studio.
//!
//! ```sh
//! cargo run --example delivery_robot                             # the embedded default district
//! cargo run --example delivery_robot -- yeouido.osm.pbf 3 out.mcap   # twin/OSM, seed, log
//! ```
//!
//! The other agents are the teacher simulator's (the ground truth); they see the robot and
//! react to it (see `swm_robots::env`), and every contact counts against the robot.

use std::sync::Arc;

use anyhow::Result;
use swm::model::{MapContext, Network};
use swm::record::{AgentRecord, McapLog, Pose3};
use swm::robots::env::{Controller, Env, EnvConfig};
use swm::robots::planner::{MppiPlanner, PlannerConfig, WorldModel};
use swm::robots::{RobotKind, Scene, load_twin};
use swm::sensors::lidar::{AgentBox, LidarConfig, LidarScene, SensorPose};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().filter(|a| a != "-");
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let out = args.next().unwrap_or_else(|| "delivery_robot.mcap".to_string());
    let twin = load_twin(path.as_deref().map(std::path::Path::new))?;
    let scene = Arc::new(Scene::new(Arc::new(twin)));
    let net = Arc::new(Network::load(&swm::model::default_model_path())?);
    let map = Arc::new(MapContext::new(&scene.twin, None)?);
    let lidar_scene = LidarScene::from_twin(&scene.twin);
    let lidar = LidarConfig::planar_2d();
    let config = EnvConfig { max_route_m: 70.0, max_episode_s: 60.0, ..EnvConfig::delivery().rush_hour() };
    let mut env = Env::new(scene.clone(), config)?;
    let mut planner = MppiPlanner::new(PlannerConfig::of(RobotKind::Delivery), Box::new(WorldModel::new(net, map)));
    let mut obs = env.reset(seed)?;
    planner.reset(&env);
    let mut log = McapLog::create(out.as_ref())?;
    let route: Vec<[f64; 3]> = env.route()?.0.points.iter().map(|p| [p[0], p[1], 0.3]).collect();
    log.log_path(0, "/route", &route)?;
    println!(
        "{}: delivery robot, rush hour ({} vehicles, {} pedestrians), route {:.0} m, seed {seed}",
        scene.name(),
        env.config().vehicles,
        env.config().pedestrians,
        env.route()?.0.length_m()
    );
    let (mut plan_s, mut steps, mut max_p) = (0.0, 0u32, 0.0f64);
    let info = loop {
        let t0 = std::time::Instant::now();
        let a = planner.act(&env, &obs);
        plan_s += t0.elapsed().as_secs_f64();
        max_p = max_p.max(planner.report().collision_probability);
        let st = env.step(&a)?;
        steps += 1;
        let t_ns = u64::from(steps) * 100_000_000;
        let s = st.observation.state;
        let z = scene.twin.terrain.elevation_at(s.point_enu);
        log.log_pose(t_ns, "robot", &Pose3::level([s.point_enu[0], s.point_enu[1], z], s.heading_rad))?;
        let plan: Vec<[f64; 3]> =
            planner.report().plan.iter().map(|p| [p.point_enu[0], p.point_enu[1], z + 0.3]).collect();
        log.log_path(t_ns, "/plan", &plan)?;
        let others = &env.history()?.back().expect("history").others;
        let agents: Vec<AgentRecord> = others
            .iter()
            .filter(|r| (r.x_m - s.point_enu[0]).hypot(r.y_m - s.point_enu[1]) < 40.0)
            .map(|r| AgentRecord {
                id: r.agent_id,
                kind: r.kind.as_str().to_string(),
                base_center_enu: [r.x_m, r.y_m, r.z_m],
                yaw_rad: r.heading_rad,
                length_m: f64::from(r.length_m),
                width_m: f64::from(r.width_m),
                height_m: if r.kind.is_vehicle() { 1.6 } else { 1.7 },
            })
            .collect();
        log.log_agents(t_ns, &agents)?;
        if steps % 5 == 0 {
            let pose = SensorPose::level([s.point_enu[0], s.point_enu[1], z + 0.5], s.heading_rad);
            let boxes: Vec<AgentBox> = agents
                .iter()
                .map(|a| AgentBox {
                    id: a.id,
                    base_center_enu: a.base_center_enu,
                    yaw_rad: a.yaw_rad,
                    length_m: a.length_m,
                    width_m: a.width_m,
                    height_m: a.height_m,
                })
                .collect();
            let scan = lidar_scene.scan(&lidar, &pose, &boxes, seed, u64::from(steps))?;
            log.log_lidar(t_ns, &scan.points_enu)?;
        }
        if st.done {
            break st.info;
        }
        obs = st.observation;
    };
    let summary = log.finish()?;
    println!(
        "{:?} after {:.1} s ({} steps); planning {:.1} ms per step on average; highest planned collision probability {:.2}",
        info.outcome.expect("done"),
        env.episode_time_s(),
        steps,
        1e3 * plan_s / f64::from(steps),
        max_p
    );
    if let Some(c) = info.contact {
        println!("contact: {c:?} (robot struck while stopped or from behind: {})", info.struck);
    }
    println!("wrote {out}: {} messages; open it in Foxglove Studio", summary.messages);
    for (topic, (schema, n)) in &summary.channels {
        println!("  {topic:<12} {schema:<24} {n}");
    }
    Ok(())
}
