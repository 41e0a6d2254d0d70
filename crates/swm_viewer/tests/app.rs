//! Headless `App` tests of the viewer's systems (no window, no GPU): spawning a twin's
//! chunks, agents and signals; stepping and interpolation; selection; recolouring; a
//! delivery robot planning in imagination and its plan overlay.

use std::sync::{Arc, OnceLock};

use bevy::prelude::*;
use swm_twin::Twin;
use swm_viewer::agents::{AgentAssets, AgentMarker, Selection, interpolate, pick_agent};
use swm_viewer::scene::{BuildingColouring, Layer};
use swm_viewer::spawn::{SceneChunk, SceneData, SignalHead};
use swm_viewer::{FrameDt, SimParams, SimResource, ViewerConfig, ViewerCorePlugin, insert_prepared, prepare};

/// A small procedural district (600 m × 600 m), built once.
fn small_twin() -> Arc<Twin> {
    static TWIN: OnceLock<Arc<Twin>> = OnceLock::new();
    TWIN.get_or_init(|| {
        let params =
            swm_procgen::DistrictParams { size_m: [600.0, 600.0], ..swm_procgen::DistrictParams::embedded_default() };
        Arc::new(swm_procgen::build_district(&params).expect("small district").0)
    })
    .clone()
}

/// The small simulation of these tests: 40 vehicles and 20 pedestrians after 5 s.
const SIM: SimParams = SimParams { seed: 3, vehicles: 40, pedestrians: 20, density: 1.0, preroll_s: 5.0 };

fn app(frame_dt: FrameDt) -> App {
    let config = ViewerConfig { sim: SIM, ..ViewerConfig::default() };
    let prepared = prepare(small_twin(), &config).expect("prepare");
    app_of(prepared, &config, frame_dt)
}

/// A headless app (no window, no GPU) of the viewer's core systems around `prepared`.
fn app_of(prepared: swm_viewer::Prepared, config: &ViewerConfig, frame_dt: FrameDt) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, AssetPlugin::default()))
        .init_asset::<Mesh>()
        .init_asset::<Image>()
        .init_asset::<StandardMaterial>();
    insert_prepared(&mut app, prepared, config, frame_dt);
    app.add_plugins(ViewerCorePlugin { highlight_agents: false });
    app
}

#[test]
fn spawning_makes_one_entity_per_chunk_and_layer() {
    let mut app = app(FrameDt::Fixed(0.0));
    app.update();
    let world = app.world_mut();
    let scene = world.resource::<SceneData>().meshes.clone();
    let mut chunks: Vec<([i32; 2], Layer)> =
        world.query::<&SceneChunk>().iter(world).map(|c| (c.chunk, c.layer)).collect();
    assert_eq!(chunks.len(), scene.chunks.len());
    chunks.sort();
    let n = chunks.len();
    chunks.dedup();
    assert_eq!(chunks.len(), n, "one mesh per (chunk, layer)");
    // Buildings are merged: far fewer meshes than buildings.
    let building_meshes = chunks.iter().filter(|(_, l)| *l == Layer::BuildingWall).count();
    assert!(scene.buildings > 50, "the district has buildings: {}", scene.buildings);
    assert!(building_meshes * 5 < scene.buildings, "{building_meshes} wall meshes for {} buildings", scene.buildings);
    // 600 m at 250 m chunks: at most 4 x 4 chunks (+ the terrain's).
    assert!(scene.chunk_count() <= 17, "{} chunks", scene.chunk_count());
    for layer in [Layer::Terrain, Layer::Road, Layer::BuildingWall, Layer::BuildingRoof, Layer::MarkingWhite] {
        assert!(chunks.iter().any(|(_, l)| *l == layer), "no {layer:?} mesh");
    }
    let twin = small_twin();
    let signalled = twin.lanes.iter().filter(|l| l.signal.is_some() && l.stop_line.is_some()).count();
    assert_eq!(world.query::<&SignalHead>().iter(world).count(), signalled);
    let sim_agents = world.resource::<SimResource>().curr.len();
    assert!(sim_agents > 0);
    assert_eq!(world.query::<&AgentMarker>().iter(world).count(), sim_agents);
}

#[test]
fn agents_follow_the_simulation_and_are_interpolated() {
    // 0.05 s per frame: every other frame steps, the others sit halfway between steps.
    let mut app = app(FrameDt::Fixed(0.05));
    app.update();
    let steps0 = app.world().resource::<SimResource>().steps_run;
    for _ in 0..8 {
        app.update();
    }
    let world = app.world_mut();
    let on_screen: std::collections::BTreeMap<u64, Transform> =
        world.query::<(&AgentMarker, &Transform)>().iter(world).map(|(m, t)| (m.0, *t)).collect();
    let sim = world.resource::<SimResource>();
    assert_eq!(sim.steps_run - steps0, 4, "8 frames of 0.05 s after the first: 4 steps");
    assert!((sim.clock.alpha() - 0.5).abs() < 1e-4, "alpha {}", sim.clock.alpha());
    let mut moving = 0;
    for (id, curr) in &sim.curr {
        let prev = sim.prev.get(id).unwrap_or(curr);
        let (p, h) = interpolate(prev, curr, 0.5);
        let want = swm_viewer::agents::agent_transform(curr, p, h);
        let got = on_screen.get(id).expect("an entity for every agent");
        assert!((got.translation - want.translation).length() < 1e-3, "agent {id} halfway");
        assert!(got.rotation.angle_between(want.rotation) < 1e-3, "agent {id} heading");
        if prev.position_m != curr.position_m {
            moving += 1;
            let at_curr = swm_viewer::agents::agent_transform(curr, curr.position_m, curr.heading_rad);
            assert!((got.translation - at_curr.translation).length() > 1e-4, "agent {id} is not at its newest step");
        }
    }
    assert!(moving > 0, "some agents move");
    app.update();
    let world = app.world_mut();
    let on_screen: std::collections::BTreeMap<u64, Transform> =
        world.query::<(&AgentMarker, &Transform)>().iter(world).map(|(m, t)| (m.0, *t)).collect();
    let sim = world.resource::<SimResource>();
    assert!(sim.clock.alpha() < 1e-4);
    // Right after a step (alpha 0) agents sit exactly on the step before the newest: drawing
    // runs one step behind the simulation so that it always has two steps to blend.
    for (id, curr) in &sim.curr {
        let t = on_screen.get(id).expect("an entity for every agent");
        let prev = sim.prev.get(id).unwrap_or(curr);
        let want = swm_viewer::agents::agent_transform(curr, prev.position_m, prev.heading_rad);
        assert!((t.translation - want.translation).length() < 1e-3, "agent {id}");
    }
    assert_eq!(on_screen.len(), sim.curr.len(), "agents that left are despawned");
}

#[test]
fn clicking_an_agent_selects_it_and_highlights_it() {
    let mut app = app(FrameDt::Fixed(0.0));
    app.update();
    let world = app.world_mut();
    let agents: Vec<(u64, Transform)> =
        world.query::<(&AgentMarker, &Transform)>().iter(world).map(|(m, t)| (m.0, *t)).collect();
    let (id, t) = agents.iter().max_by_key(|(id, _)| *id).copied().expect("agents");
    // A ray straight down through the agent's centre picks it (or an agent stacked exactly
    // above, which cannot happen on the ground).
    let picked = pick_agent(t.translation + Vec3::Y * 100.0, -Vec3::Y, agents.iter().map(|(i, t)| (*i, t)));
    assert_eq!(picked, Some(id));
    world.resource_mut::<Selection>().0 = picked;
    app.update();
    let world = app.world_mut();
    let selected = world.resource::<AgentAssets>().selected.clone();
    let mat = world
        .query::<(&AgentMarker, &MeshMaterial3d<StandardMaterial>)>()
        .iter(world)
        .find(|(m, _)| m.0 == id)
        .map(|(_, m)| m.0.clone())
        .expect("the agent still exists");
    assert_eq!(mat, selected);
}

#[test]
fn recolouring_rewrites_building_vertex_colours() {
    let mut app = app(FrameDt::Fixed(0.0));
    app.update();
    app.world_mut().resource_mut::<SceneData>().colouring = BuildingColouring::Mask;
    app.update();
    let world = app.world_mut();
    let handles: Vec<Handle<Mesh>> = world
        .query::<(&SceneChunk, &Mesh3d)>()
        .iter(world)
        .filter(|(c, _)| c.layer == Layer::BuildingWall)
        .map(|(_, m)| m.0.clone())
        .collect();
    assert!(!handles.is_empty());
    let meshes = world.resource::<Assets<Mesh>>();
    for h in handles {
        let mesh = meshes.get(&h).expect("mesh");
        let Some(bevy::mesh::VertexAttributeValues::Float32x4(colours)) = mesh.attribute(Mesh::ATTRIBUTE_COLOR) else {
            panic!("building meshes carry vertex colours")
        };
        let red = swm_viewer::scene::linear_rgba([225, 20, 20], 1.0);
        assert!(colours.iter().all(|c| (c[0] - red[0]).abs() < 1e-6 && (c[1] - red[1]).abs() < 1e-6), "all walls red");
    }
}

#[test]
fn a_placed_robot_plans_in_imagination_and_drives_towards_its_goal() {
    use swm_viewer::robot::{CANDIDATES_DRAWN, RobotMarker, RobotOverlay, Robots, robot_transform};
    let twin = small_twin();
    let walk = swm_robots::route::WalkGraph::new(&twin);
    // A start with a goal 40-70 m of walking away (the first such node in index order).
    let (start, goal) = (0..twin.walk_nodes.len() as u32)
        .filter(|&v| !walk.adjacency[v as usize].is_empty())
        .find_map(|v| walk.nodes_within(&twin, v, 40.0, 70.0).first().map(|&g| (v, g)))
        .expect("a walk route of 40-70 m");
    let mut app = app(FrameDt::Fixed(0.1));
    app.update();
    app.world_mut().resource_scope(|world, mut robots: Mut<Robots>| {
        robots.blocking = true;
        robots.spawn_at_nodes(&twin, world.resource::<SimResource>(), start, goal).expect("robot placed");
    });
    let (d0, route_m) = {
        let r = app.world().resource::<Robots>().robot.as_ref().expect("robot");
        assert_eq!((r.start_node, r.goal_node), (start, goal));
        assert_eq!(r.history().len(), swm_robots::env::HISTORY_FRAMES, "a second of history from the start");
        (r.remaining_m(), r.route.length_m())
    };
    assert!((40.0..=70.0 + 1e-6).contains(&route_m), "route {route_m} m");
    // 40 frames of 0.1 s: 40 steps, each replanned with the world model.
    for _ in 0..40 {
        app.update();
    }
    let world = app.world_mut();
    let robots = world.resource::<Robots>();
    let r = robots.robot.as_ref().expect("robot");
    assert!(robots.error.is_none(), "{:?}", robots.error);
    assert_eq!(r.steps, 40);
    assert!(r.replans >= 39, "a replan for every step: {}", r.replans);
    let d1 = r.remaining_m();
    // 4 s at up to 1.6 m/s after starting from rest: several metres along the route.
    assert!(d1 < d0 - 2.0, "the robot moved towards its goal: {d0:.2} m -> {d1:.2} m");
    assert!(r.state.speed_mps > 0.2, "moving: {} m/s", r.state.speed_mps);
    let plan = r.plan.as_ref().expect("a plan");
    assert!(plan.candidates_total >= 3 && plan.plan_wall_s > 0.0);
    // The overlay: candidates (a subset) and the chosen plan, from the robot on.
    let overlay = world.resource::<RobotOverlay>().clone();
    let chosen = overlay.chosen.as_ref().expect("chosen plan polyline");
    assert!(chosen.points_m.len() >= 10, "{} points", chosen.points_m.len());
    assert!((3..=CANDIDATES_DRAWN).contains(&overlay.candidates.len()), "{} candidates", overlay.candidates.len());
    assert!(overlay.candidates.iter().all(|c| c.points_m.len() >= 2));
    assert!(overlay.candidates.iter().any(|c| c.points_m != chosen.points_m), "candidates differ from the plan");
    assert!(overlay.route.as_ref().is_some_and(|l| l.points_m.len() >= 2), "the route ahead");
    let p0 = chosen.points_m[0];
    assert!((p0[0] - r.state.point_enu[0]).hypot(p0[1] - r.state.point_enu[1]) < 1e-9, "the plan starts at the robot");
    // Its box: the robot's size, at its heading.
    let params = r.params;
    let state = r.prev_state;
    let boxes: Vec<Transform> = world.query_filtered::<&Transform, With<RobotMarker>>().iter(world).copied().collect();
    assert_eq!(boxes.len(), 1);
    let want = robot_transform(&params, &state, twin.terrain.elevation_at(state.point_enu));
    assert_eq!(boxes[0].scale, want.scale);
    assert!((boxes[0].translation - want.translation).length() < 1e-3, "drawn one step behind, like the agents");
    assert!(boxes[0].rotation.angle_between(want.rotation) < 1e-3);
}

#[test]
fn an_interactive_robot_never_waits_for_its_planner() {
    use swm_viewer::robot::{PlaceMode, Robots};
    let twin = small_twin();
    let mut app = app(FrameDt::Fixed(0.1));
    app.update();
    // As the panel and two clicks would: the placing mode, then start and goal near points.
    let (a, b) = {
        let walk = swm_robots::route::WalkGraph::new(&twin);
        let (start, goal) = (0..twin.walk_nodes.len() as u32)
            .filter(|&v| !walk.adjacency[v as usize].is_empty())
            .find_map(|v| walk.nodes_within(&twin, v, 40.0, 70.0).first().map(|&g| (v, g)))
            .expect("a walk route");
        let p = |v: u32| [twin.walk_nodes[v as usize].position[0] + 0.4, twin.walk_nodes[v as usize].position[1] - 0.3];
        (p(start), p(goal))
    };
    app.world_mut().resource_scope(|world, mut robots: Mut<Robots>| {
        assert!(!robots.blocking, "interactive by default");
        robots.mode = PlaceMode::Start;
        let start = robots.snap(&twin, a).expect("snaps to a walk node");
        let goal = robots.snap(&twin, b).expect("snaps to a walk node");
        robots.spawn_at_nodes(&twin, world.resource::<SimResource>(), start, goal).expect("robot placed");
        robots.mode = PlaceMode::Off;
    });
    let d0 = app.world().resource::<Robots>().robot.as_ref().expect("robot").remaining_m();
    // Frames do not wait: the robot brakes until the first plan (model loading) is back,
    // then follows its latest plan between replans.
    let t0 = std::time::Instant::now();
    let mut frames = 0;
    while frames < 400 {
        app.update();
        frames += 1;
        let r = app.world().resource::<Robots>().robot.as_ref().expect("robot");
        if r.replans >= 20 && d0 - r.remaining_m() > 2.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let robots = app.world().resource::<Robots>();
    let r = robots.robot.as_ref().expect("robot");
    assert!(robots.error.is_none(), "{:?}", robots.error);
    assert_eq!(r.steps, frames, "one step per frame, none skipped for the planner");
    assert!(r.replans >= 20 && r.replans <= r.steps, "{} replans in {} steps", r.replans, r.steps);
    assert!(d0 - r.remaining_m() > 2.0, "moved {:.2} m in {frames} frames ({:?})", d0 - r.remaining_m(), t0.elapsed());
}

#[test]
fn the_world_model_takes_over_the_traffic_and_moves_it() {
    // The teacher's last second goes to the world model, which then moves every agent;
    // the teacher keeps the clock underneath; handing back restores the teacher's agents.
    let config = ViewerConfig {
        sim: SIM,
        model_traffic: true,
        model_backend: swm_viewer::gpu_traffic::ModelBackend::Cpu,
        ..ViewerConfig::default()
    };
    let prepared = prepare(small_twin(), &config).expect("prepare with model traffic");
    let before = prepared.sim.curr.clone();
    assert!(matches!(prepared.sim.traffic, swm_viewer::agents::Traffic::Model(_)));
    let mut app = app_of(prepared, &config, FrameDt::Fixed(0.1));
    for _ in 0..21 {
        app.update();
    }
    let world = app.world_mut();
    let drawn = world.query::<&AgentMarker>().iter(world).count();
    let sim = world.resource::<SimResource>();
    assert!(sim.steps_run >= 20, "{} steps", sim.steps_run);
    assert_eq!(sim.traffic_label(), "world model (CPU)");
    assert_eq!(drawn, sim.curr.len());
    // The same agents (none appear; a few may leave the district), moved by the model.
    assert_moved_by_the_model(&before, &sim.curr);
    let teacher_positions: std::collections::BTreeMap<u64, [f64; 3]> = world
        .resource_mut::<SimResource>()
        .simulation()
        .records()
        .iter()
        .map(|r| (r.agent_id, [r.x_m, r.y_m, r.z_m]))
        .collect();
    let mut sim = world.resource_mut::<SimResource>();
    sim.drive_with_teacher();
    assert_eq!(sim.traffic_label(), "teacher simulation");
    assert!(sim.curr.iter().all(|(id, a)| teacher_positions.get(id).is_some_and(|p| p[..2] == a.position_m[..2])));
}

#[test]
fn the_teachers_next_step_runs_on_a_worker_and_the_same_steps_are_drawn() {
    // Teacher traffic, no robot: each frame's due step was computed on a worker thread
    // while the frame before it was drawn. What is drawn after n frames is what n
    // synchronous steps give, and touching the simulation takes a step in flight in.
    let mut app = app(FrameDt::Fixed(0.1));
    for _ in 0..12 {
        app.update();
    }
    let mut reference = SimResource::start(small_twin(), SIM).expect("reference simulation");
    let mut sim = app.world_mut().resource_mut::<SimResource>();
    assert!(sim.step_in_flight(), "the next step is computed ahead");
    assert_eq!(sim.steps_run, reference.steps_run + 12);
    for _ in 0..12 {
        reference.step();
    }
    assert_eq!(sim.time_s(), reference.time_s());
    assert_eq!(sim.step_index(), reference.step_index());
    assert_eq!(sim.curr, reference.curr);
    assert_eq!(sim.prev, reference.prev);
    assert!(sim.step_wall_s > 0.0);
    // Reaching for the simulation takes the step in flight in: it is then at the step drawn.
    let at = sim.simulation().step_index();
    assert!(!sim.step_in_flight());
    assert_eq!(at, sim.step_index());
    assert_eq!(at, reference.step_index() + 1);
    reference.step();
    assert_eq!(sim.curr, reference.curr);
}

/// The viewer's traffic driven by the world model on the GPU engine (lavapipe here): `n`
/// frames, checking every frame that no agent jumps (chunk boundaries included). Returns
/// the agents drawn at the end, or `None` when there is no Vulkan adapter outside CI.
fn gpu_traffic_run(frames: u32) -> Option<std::collections::BTreeMap<u64, swm_viewer::agents::AgentState>> {
    let config = ViewerConfig {
        sim: SIM,
        model_traffic: true,
        model_backend: swm_viewer::gpu_traffic::ModelBackend::Gpu,
        ..ViewerConfig::default()
    };
    let prepared = match prepare(small_twin(), &config) {
        Ok(p) => p,
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but no GPU model traffic: {e}");
            eprintln!("skipped: {e}");
            return None;
        }
    };
    let before = prepared.sim.curr.clone();
    assert!(matches!(prepared.sim.traffic, swm_viewer::agents::Traffic::ModelGpu(_)));
    let mut app = app_of(prepared, &config, FrameDt::Fixed(0.1));
    for _ in 0..frames {
        app.update();
        let sim = app.world().resource::<SimResource>();
        for (id, a) in &sim.curr {
            if let Some(p) = sim.prev.get(id) {
                let d = (a.position_m[0] - p.position_m[0]).hypot(a.position_m[1] - p.position_m[1]);
                assert!(d < 4.0, "agent {id} moved {d:.2} m in one step (frame {})", sim.steps_run);
            }
        }
    }
    let sim = app.world().resource::<SimResource>();
    assert!(sim.traffic_label().starts_with("world model (GPU: "), "{}", sim.traffic_label());
    assert!(sim.steps_run >= u64::from(frames));
    assert_moved_by_the_model(&before, &sim.curr);
    Some(sim.curr.clone())
}

#[test]
fn the_world_model_drives_the_traffic_on_the_gpu_a_chunk_ahead() {
    // 25 frames: two whole chunks of 10 steps and part of a third, each computed on the
    // worker while the one before it was played; one seed gives the same traffic.
    let Some(a) = gpu_traffic_run(25) else { return };
    let b = gpu_traffic_run(25).expect("the adapter was there a moment ago");
    assert_eq!(a, b);
}

/// The agents `after` a hand-over to the world model are the same as `before` (none
/// appears; at most a tenth left the district), and at least a third moved over 1 m.
fn assert_moved_by_the_model(
    before: &std::collections::BTreeMap<u64, swm_viewer::agents::AgentState>,
    after: &std::collections::BTreeMap<u64, swm_viewer::agents::AgentState>,
) {
    assert!(after.keys().all(|id| before.contains_key(id)), "no agent appears");
    assert!(after.len() * 10 >= before.len() * 9, "{} of {} agents left", before.len() - after.len(), before.len());
    let moved = after
        .iter()
        .filter(|(id, a)| {
            let b = &before[id];
            (a.position_m[0] - b.position_m[0]).hypot(a.position_m[1] - b.position_m[1]) > 1.0
        })
        .count();
    assert!(moved * 3 >= after.len(), "{moved} of {} agents moved more than 1 m", after.len());
}

#[test]
fn a_drone_flies_its_route_over_the_district_within_the_airspace() {
    // A drone across the small district (about 420 m): one step per simulation step, above
    // the airspace floor (ground or roofs plus the clearance) all the way, to its goal.
    let mut app = app(FrameDt::Fixed(0.1));
    let spawn = swm_viewer::drone::DroneSpawn { start: [-150.0, -140.0], goal: [150.0, 160.0] };
    app.world_mut().resource_scope(|world, mut drones: Mut<swm_viewer::drone::Drones>| {
        drones.spawn(&small_twin(), world.resource::<SimResource>(), spawn).expect("drone placed and routed");
    });
    let mut frames = 0u64;
    loop {
        app.update();
        frames += 1;
        let drones = app.world().resource::<swm_viewer::drone::Drones>();
        let d = drones.drone.as_ref().expect("drone");
        let v = d.drone.state.velocity_enu;
        assert!(v[0].hypot(v[1]) <= d.drone.limits.max_speed_xy_mps + 1e-6, "{v:?}");
        if d.arrived || frames > 900 {
            break;
        }
    }
    let world = app.world_mut();
    let drawn: Vec<Transform> =
        world.query_filtered::<&Transform, With<swm_viewer::drone::DroneMarker>>().iter(world).copied().collect();
    let drones = world.resource::<swm_viewer::drone::Drones>();
    let d = drones.drone.as_ref().expect("drone");
    assert!(d.arrived, "not at its goal after {frames} frames: {:?}", d.drone.state.position_enu);
    // One simulation step per frame here, and one drone step per simulation step.
    assert_eq!(d.steps, frames, "one drone step per simulation step");
    let p = d.drone.state.position_enu;
    assert!((p[0] - 150.0).hypot(p[1] - 160.0) < 5.0, "ended at {p:?}");
    assert!(d.worst_below_floor_m < 1.0, "{:.2} m below the airspace floor", d.worst_below_floor_m);
    assert!(d.route.len() >= 2 && d.route.iter().all(|w| w[2] > 0.0));
    assert_eq!(drawn.len(), 1, "one drone box");
    assert!(drawn[0].translation.y > 5.0, "drawn in the air: {:?}", drawn[0].translation);
}
