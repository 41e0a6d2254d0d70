//! An autonomous car making an unprotected left turn: the car starts on a lane that ends at
//! a junction without signals (priority, all-way stop or uncontrolled), its route turns left
//! across the oncoming lanes, and MPPI plans through world-model futures in which the
//! oncoming traffic reacts to the car. The example prints, per seeded traffic, how long the
//! car waited before the junction, the closest it came to another agent and the outcome.
//!
//! ```sh
//! cargo run --example unprotected_left_turn                     # the embedded default district
//! cargo run --example unprotected_left_turn -- jamsil.osm.pbf   # a twin (.swt) or an OSM file
//! ```
//!
//! The traffic is the teacher simulator's (the ground truth), which does not see the robot
//! car (see `swm_robots::env`): the figures count every contact against the car.

use std::sync::Arc;

use anyhow::{Context, Result};
use swm::model::{MapContext, Network};
use swm::robots::env::{Controller, Env, EnvConfig};
use swm::robots::planner::{MppiPlanner, PlannerConfig, WorldModel};
use swm::robots::route::straight_route;
use swm::robots::{RobotKind, Scene, load_twin};
use swm::twin::{Control, Turn};

fn main() -> Result<()> {
    let path = std::env::args().nth(1);
    let twin = load_twin(path.as_deref().map(std::path::Path::new))?;
    let scene = Arc::new(Scene::new(Arc::new(twin)));
    let twin = scene.twin.clone();
    // A left turn from a minor road at an unsignalled junction (the major road's traffic has
    // priority; otherwise any unsignalled left), with room before and after it; among those
    // the junction with the most incoming lanes (the busiest crossing traffic).
    let candidates: Vec<(usize, &swm::twin::LaneConnection)> = twin
        .lane_connections
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            let j = &twin.junctions[c.junction as usize];
            matches!(c.turn, Turn::Left | Turn::SharpLeft)
                && !j.control.is_signalized()
                && twin.lanes[c.from_lane as usize].length_m > 30.0
                && twin.lanes[c.to_lane as usize].length_m > 25.0
        })
        .collect();
    let score = |c: &swm::twin::LaneConnection| {
        let j = &twin.junctions[c.junction as usize];
        (usize::from(j.control == Control::Priority && !c.major), j.incoming_lanes.len())
    };
    let (ci, conn) = candidates
        .iter()
        .copied()
        .max_by(|a, b| score(a.1).cmp(&score(b.1)).then(b.0.cmp(&a.0)))
        .context("no unsignalled left turn in this twin")?;
    let (from, to) = (&twin.lanes[conn.from_lane as usize], &twin.lanes[conn.to_lane as usize]);
    // The route: the last 40 m of the incoming lane, the turn ...
    let mut pts: Vec<[f64; 2]> = Vec::new();
    let lane_route = straight_route(&from.centerline.iter().map(|p| [p[0], p[1]]).collect::<Vec<_>>());
    let s0 = (from.length_m - 40.0).max(0.0);
    let mut s = s0;
    while s < from.length_m {
        pts.push(lane_route.point_at(s).0);
        s += 2.0;
    }
    pts.extend(conn.path.iter().map(|p| [p[0], p[1]]));
    // ... and the first 40 m of the outgoing lane.
    let out_route = straight_route(&to.centerline.iter().map(|p| [p[0], p[1]]).collect::<Vec<_>>());
    let mut s = 0.0;
    while s <= to.length_m.min(40.0) {
        pts.push(out_route.point_at(s).0);
        s += 2.0;
    }
    let mut route = straight_route(&pts);
    route.stops.push(swm::robots::route::RouteStop {
        s_m: from.length_m - s0 - from.stop_line.as_ref().map_or(0.0, |l| from.length_m - l.s_m),
        lane: conn.from_lane,
        connection: ci as u32,
    });
    let junction = &twin.junctions[conn.junction as usize];
    println!(
        "left turn at junction {} ({:?}): lane {} -> lane {}, route {:.0} m",
        conn.junction,
        junction.control,
        conn.from_lane,
        conn.to_lane,
        route.length_m()
    );
    let net = Arc::new(Network::load(&swm::model::default_model_path())?);
    let map = Arc::new(MapContext::new(&twin, None)?);
    let config = EnvConfig { max_episode_s: 25.0, vehicles: 160, ..EnvConfig::car() };
    let mut env = Env::new(scene, config)?;
    let mut planner = MppiPlanner::new(PlannerConfig::of(RobotKind::Car), Box::new(WorldModel::new(net, map)));
    let turn_s = route.stops[0].s_m;
    for seed in 1..=2 {
        let mut obs = env.reset_on_route(seed, route.clone())?;
        planner.reset(&env);
        let (mut waited_s, mut closest_m, mut max_p) = (0.0, f64::INFINITY, 0.0f64);
        let outcome = loop {
            let a = planner.act(&env, &obs);
            max_p = max_p.max(planner.report().go_collision_probability);
            let st = env.step(&a)?;
            let (_, s_now) = env.route()?;
            if s_now < turn_s && st.observation.state.speed_mps < 0.5 && s_now > turn_s - 25.0 {
                waited_s += 0.1;
            }
            for n in &st.observation.neighbours {
                closest_m = closest_m.min(n.point_robot_m[0].hypot(n.point_robot_m[1]));
            }
            if env.episode_time_s() % 2.0 < 0.05 {
                println!(
                    "  t {:>4.1} s: {:>5.1} m along the route (turn at {turn_s:.0} m), {:>4.1} m/s",
                    env.episode_time_s(),
                    s_now,
                    st.observation.state.speed_mps
                );
            }
            if st.done {
                break st.info;
            }
            obs = st.observation;
        };
        println!(
            "seed {seed}: {:?} after {:.1} s; waited {waited_s:.1} s before the junction; closest agent centre {closest_m:.1} m; \
             the naive go plan collided in up to {:.0}% of imagined futures",
            outcome.outcome.expect("done"),
            env.episode_time_s(),
            100.0 * max_p
        );
    }
    Ok(())
}
