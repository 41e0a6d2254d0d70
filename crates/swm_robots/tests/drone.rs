//! The drone: A* over and around buildings, and flights that keep the clearance and the
//! altitude limits (checked against every building by brute force).

use swm_core::SourceRef;
use swm_robots::drone::{
    Airspace, Drone, DroneLimits, DroneState, RouteConfig, WaypointFollower, footprint_distance_m,
};
use swm_twin::{Building, P2, P3, Polygon, Terrain, Twin};

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<P2> {
    vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
}

fn building(footprint: Vec<P2>, base_m: f64, height_m: f64) -> Building {
    Building::flat(SourceRef::way(1), Polygon { exterior: footprint, holes: vec![] }, base_m, height_m)
}

fn twin_with(buildings: Vec<Building>, elevation_m: f64) -> Twin {
    let mut twin = Twin::default();
    twin.meta.bbox_m = [-500.0, -500.0, 500.0, 500.0];
    twin.terrain = Terrain::Flat { elevation_m };
    twin.buildings = buildings;
    twin
}

/// The clearance rule of the module docs, against every building and part.
fn clearance_violation(twin: &Twin, p: P3, clearance_m: f64) -> Option<String> {
    for (i, b) in twin.buildings.iter().chain(&twin.building_parts).enumerate() {
        let top = b.base_elevation_m + b.height_m;
        let d = footprint_distance_m(&b.footprint, [p[0], p[1]]);
        if d <= clearance_m && p[2] < top + clearance_m {
            return Some(format!("{p:?} is {d:.2} m from building {i} and {:.2} m above its top", p[2] - top));
        }
    }
    None
}

fn check_polyline(twin: &Twin, route: &[P3], limits: &DroneLimits) {
    for w in route.windows(2) {
        let n = 200;
        for s in 0..=n {
            let t = s as f64 / n as f64;
            let p = [0, 1, 2].map(|k| w[0][k] + t * (w[1][k] - w[0][k]));
            if let Some(why) = clearance_violation(twin, p, limits.clearance_m) {
                panic!("route segment {w:?}: {why}");
            }
            let agl = p[2] - twin.terrain.elevation_at([p[0], p[1]]);
            assert!(agl >= limits.min_agl_m - 1e-9 && agl <= limits.max_agl_m + 1e-9, "{p:?}: {agl} m above ground");
        }
    }
}

/// Flies the route and checks every state; returns the trajectory.
fn fly(twin: &Twin, airspace: &Airspace, route: &[P3], limits: &DroneLimits) -> Vec<P3> {
    let start = route[0];
    let mut drone = Drone::new(limits.clone(), DroneState { position_enu: start, ..Default::default() }).unwrap();
    let mut follower = WaypointFollower::new(route.to_vec());
    let dt = 0.05;
    let mut track = vec![start];
    for _ in 0..40_000 {
        let action = follower.action(&drone.state, limits, None);
        drone.step(&action, dt, airspace.terrain());
        let p = drone.state.position_enu;
        track.push(p);
        if let Some(why) = clearance_violation(twin, p, limits.clearance_m) {
            panic!("flight: {why}");
        }
        let agl = p[2] - twin.terrain.elevation_at([p[0], p[1]]);
        assert!(agl >= limits.min_agl_m - 1e-9 && agl <= limits.max_agl_m + 1e-9, "{p:?}: {agl} m above ground");
        let v = drone.state.velocity_enu;
        assert!(v[0].hypot(v[1]) <= limits.max_speed_xy_mps + 1e-9 && v[2].abs() <= limits.max_speed_z_mps + 1e-9);
        if follower.done(&drone.state) {
            return track;
        }
    }
    panic!("the drone did not reach {:?}; it is at {:?}", route.last(), drone.state.position_enu);
}

#[test]
fn a_star_goes_around_a_tower_taller_than_the_ceiling() {
    // A 300 m tower on ground at 12 m: the 150 m ceiling forbids flying over it.
    let twin = twin_with(vec![building(rect(-10.0, -10.0, 10.0, 10.0), 12.0, 300.0)], 12.0);
    let limits = DroneLimits::default();
    let airspace = Airspace::from_twin(&twin, &limits, 5.0, 1.5).unwrap();
    let (start, goal) = ([-150.0, 0.0, 52.0], [150.0, 0.0, 52.0]);
    let route = airspace.plan_route(start, goal, &RouteConfig::default()).unwrap();
    assert_eq!((route[0], *route.last().unwrap()), (start, goal));
    let side = route.iter().map(|p| p[1].abs()).fold(0.0, f64::max);
    assert!(side >= 10.0 + limits.clearance_m, "the route passes beside the tower: {route:?}");
    assert!(route.iter().all(|p| p[2] < 12.0 + 150.0));
    assert!(route.len() <= 6, "the voxel path is shortened: {} waypoints", route.len());
    let length: f64 = route.windows(2).map(|w| (0..3).map(|k| (w[1][k] - w[0][k]).powi(2)).sum::<f64>().sqrt()).sum();
    assert!(length < 300.0 * 1.15, "a short detour: {length} m");
    check_polyline(&twin, &route, &limits);
    let track = fly(&twin, &airspace, &route, &limits);
    let end = track.last().unwrap();
    assert!((0..3).all(|k| (end[k] - goal[k]).abs() < 0.5), "{end:?}");
}

#[test]
fn a_star_climbs_over_a_long_low_block() {
    // A 30 m block 800 m long across the way: over is far shorter than around.
    let twin = twin_with(vec![building(rect(-20.0, -400.0, 20.0, 400.0), 0.0, 30.0)], 0.0);
    let limits = DroneLimits::default();
    let airspace = Airspace::from_twin(&twin, &limits, 5.0, 1.5).unwrap();
    let (start, goal) = ([-120.0, 0.0, 20.0], [120.0, 0.0, 20.0]);
    assert!(!airspace.segment_is_free(start, goal));
    let route = airspace.plan_route(start, goal, &RouteConfig::default()).unwrap();
    let top = route.iter().map(|p| p[2]).fold(f64::NEG_INFINITY, f64::max);
    assert!(top >= 30.0 + limits.clearance_m, "climbs over the block: {route:?}");
    assert!(route.iter().all(|p| p[1].abs() < 100.0), "does not go around: {route:?}");
    check_polyline(&twin, &route, &limits);
    fly(&twin, &airspace, &route, &limits);
    // A start inside the clearance zone is refused with a reason.
    let err = airspace.plan_route([0.0, 0.0, 35.0], goal, &RouteConfig::default()).unwrap_err();
    assert!(err.to_string().contains("not in free airspace"), "{err}");
}

#[test]
fn flights_across_the_default_district_keep_the_clearance() {
    let (twin, _) = swm_procgen::build_district(&swm_procgen::DistrictParams::embedded_default()).unwrap();
    assert!(twin.buildings.len() > 50);
    let limits = DroneLimits::default();
    let airspace = Airspace::from_twin(&twin, &limits, 5.0, 1.5).unwrap();
    let b = twin.meta.bbox_m;
    let at = |fx: f64, fy: f64| {
        let (x, y) = (b[0] + fx * (b[2] - b[0]), b[1] + fy * (b[3] - b[1]));
        // The lowest free altitude there, a few metres up.
        let z = airspace.floor_at([x, y]).unwrap() + 3.0;
        [x, y, z]
    };
    let config = RouteConfig { search_margin_m: 200.0, ..Default::default() };
    let mut flown = 0;
    for (from, to) in [((0.3, 0.35), (0.65, 0.6)), ((0.7, 0.3), (0.35, 0.7))] {
        let (start, goal) = (at(from.0, from.1), at(to.0, to.1));
        let route = airspace.plan_route(start, goal, &config).unwrap();
        check_polyline(&twin, &route, &limits);
        fly(&twin, &airspace, &route, &limits);
        flown += 1;
    }
    assert_eq!(flown, 2);
}

#[test]
fn free_segments_are_clear_of_random_buildings() {
    // Random towers and random segments: every segment the map calls free keeps the clearance
    // at 400 points along it (the map is exact up to its conservative rasterisation).
    let mut rng = swm_core::rng::CounterRng::new(11, 0);
    let mut buildings = Vec::new();
    for _ in 0..25 {
        let (x, y) = (rng.range_f64(-300.0, 300.0), rng.range_f64(-300.0, 300.0));
        let (w, d) = (rng.range_f64(8.0, 40.0), rng.range_f64(8.0, 40.0));
        buildings.push(building(rect(x, y, x + w, y + d), 3.0, rng.range_f64(10.0, 120.0)));
    }
    let twin = twin_with(buildings, 3.0);
    let limits = DroneLimits { clearance_m: 8.0, ..Default::default() };
    let airspace = Airspace::from_twin(&twin, &limits, 4.0, 0.0).unwrap();
    let (mut free, mut blocked) = (0, 0);
    for _ in 0..3000 {
        let a = [rng.range_f64(-350.0, 350.0), rng.range_f64(-350.0, 350.0), rng.range_f64(10.0, 160.0)];
        let b = [
            a[0] + rng.range_f64(-150.0, 150.0),
            a[1] + rng.range_f64(-150.0, 150.0),
            (a[2] + rng.range_f64(-40.0, 40.0)).max(0.0),
        ];
        if !airspace.segment_is_free(a, b) {
            blocked += 1;
            continue;
        }
        free += 1;
        for s in 0..=400 {
            let t = s as f64 / 400.0;
            let p = [0, 1, 2].map(|k| a[k] + t * (b[k] - a[k]));
            if let Some(why) = clearance_violation(&twin, p, limits.clearance_m) {
                panic!("segment {a:?} → {b:?} called free: {why}");
            }
            let agl = p[2] - 3.0;
            assert!(agl >= limits.min_agl_m - 1e-9 && agl <= limits.max_agl_m + 1e-9, "{p:?}");
        }
    }
    assert!(free > 300 && blocked > 300, "{free} free, {blocked} blocked");
}
