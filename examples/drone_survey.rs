//! A drone surveys a building's façades with a 3-D lidar and writes the point cloud.
//!
//! What it shows: `swm_robots::drone` (a quadrotor with speed, acceleration, yaw-rate and
//! altitude limits; the airspace map of the twin with a clearance above and around every
//! building; 3-D A* routes; a waypoint follower), `swm_sensors` (a 32-channel lidar cast
//! against the twin's buildings, roofs and terrain) and `swm_record` (an MCAP log that
//! Foxglove Studio opens: the drone's pose and `/tf`, lidar clouds, the planned route, the
//! outlines of nearby buildings).
//!
//! The drone picks a building near the middle of the twin (20–100 m tall), flies an orbit of
//! twelve waypoints around it at 60% of its height (each leg routed by A*, over or around
//! the neighbours, never closer than the clearance), keeps the lidar facing the building,
//! scans five times a second, and writes:
//!
//! * `OUT/survey.ply`: every return, thinned to one point per 0.2 m voxel, with a label
//!   (1 the surveyed building, 2 other buildings, 3 terrain);
//! * `OUT/survey.mcap`: the log.
//!
//! It prints the route, the flight time, the closest approach to any building and the share
//! of the building's façade (cells of 5° around its centre × 2 m, ground to eaves) the lidar saw.
//!
//! ```text
//! cargo run --example drone_survey                       # the embedded default district
//! cargo run --example drone_survey -- path/to/twin.swt   # or an .osm.pbf / .osm file
//! cargo run --example drone_survey -- --out out/survey
//! ```
//!
//! Finishes in well under a minute on the default district in the dev profile.

use anyhow::{Context, Result, bail};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;
use swm_record::{McapLog, Pose3};
use swm_robots::drone::{
    Airspace, Drone, DroneLimits, DroneState, RouteConfig, WaypointFollower, footprint_distance_m,
};
use swm_sensors::{Hit, LidarConfig, LidarScene, SensorPose};

/// Control and simulation step (s).
const DT_S: f64 = 0.1;
/// Scan every this many steps (5 Hz).
const SCAN_EVERY: u64 = 2;
/// Log a lidar cloud every this many scans (1 Hz), thinned to 0.5 m voxels.
const LOG_CLOUD_EVERY: u64 = 5;
/// Orbit waypoints.
const ORBIT_POINTS: usize = 12;

fn voxel_key(p: [f64; 3], size_m: f64) -> (i64, i64, i64) {
    ((p[0] / size_m).floor() as i64, (p[1] / size_m).floor() as i64, (p[2] / size_m).floor() as i64)
}

fn main() -> Result<()> {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut twin_path: Option<PathBuf> = None;
    let mut out = PathBuf::from("out/drone_survey");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(it.next().context("--out needs a directory")?),
            other if other.starts_with("--") => bail!("unknown option {other}"),
            other => twin_path = Some(PathBuf::from(other)),
        }
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let twin = swm_robots::load_twin(twin_path.as_deref())?;
    println!("twin {}: {} buildings", twin.meta.name, twin.buildings.len());

    let limits = DroneLimits::default();
    let airspace = Airspace::from_twin(&twin, &limits, 5.0, 1.5)?;
    let scene = LidarScene::from_twin(&twin);

    // The building: 20–100 m tall, its orbit inside the ceiling, nearest the middle.
    let b = twin.meta.bbox_m;
    let middle = [0.5 * (b[0] + b[2]), 0.5 * (b[1] + b[3])];
    let (target, building) = twin
        .buildings
        .iter()
        .enumerate()
        .filter(|(_, x)| (20.0..=100.0).contains(&x.height_m) && x.footprint.exterior.len() >= 3)
        .min_by(|(ia, x), (ib, y)| {
            let d = |c: [f64; 2]| (c[0] - middle[0]).hypot(c[1] - middle[1]);
            d(x.footprint.centroid()).total_cmp(&d(y.footprint.centroid())).then(ia.cmp(ib))
        })
        .context("no building 20–100 m tall in this twin")?;
    let centre = building.footprint.centroid();
    let reach =
        building.footprint.exterior.iter().map(|p| (p[0] - centre[0]).hypot(p[1] - centre[1])).fold(0.0, f64::max);
    let radius_m = reach + limits.clearance_m + 12.0;
    let survey_z = building.base_elevation_m + 0.6 * building.height_m;
    // The façade: from the ground to the eaves, in cells of 5° around the centre × 2 m.
    let wall_m = (building.height_m - building.roof.height_m.max(0.0)).max(0.5);
    println!(
        "surveying building {target} ({}, {:.0} m tall) from an orbit of radius {radius_m:.0} m at {survey_z:.0} m",
        building.source, building.height_m
    );

    // Orbit waypoints, each lifted into free airspace where a neighbour is in the way.
    let mut orbit = Vec::new();
    for k in 0..ORBIT_POINTS {
        let a = std::f64::consts::TAU * k as f64 / ORBIT_POINTS as f64;
        let (x, y) = (centre[0] + radius_m * a.cos(), centre[1] + radius_m * a.sin());
        let (Some(floor), Some(ceiling)) = (airspace.floor_at([x, y]), airspace.ceiling_at([x, y])) else {
            bail!("orbit point ({x:.0}, {y:.0}) is outside the twin");
        };
        let z = survey_z.max(floor + 1.0);
        if z > ceiling {
            bail!("orbit point ({x:.0}, {y:.0}): no free altitude (floor {floor:.0} m, ceiling {ceiling:.0} m)");
        }
        orbit.push([x, y, z]);
    }
    orbit.push(orbit[0]);
    let mut route = vec![orbit[0]];
    for leg in orbit.windows(2) {
        let path = airspace.plan_route(leg[0], leg[1], &RouteConfig::default())?;
        route.extend_from_slice(&path[1..]);
    }
    println!("route: {} waypoints (A* legs between {} orbit points)", route.len(), ORBIT_POINTS);

    // Lidar: 32 channels, ±30°, 0.4° across, 100 m, facing the building.
    let lidar = LidarConfig {
        channels: 32,
        beams_per_channel: 900,
        vertical_fov_min_rad: -30f64.to_radians(),
        vertical_fov_max_rad: 30f64.to_radians(),
        range_max_m: 100.0,
        ..LidarConfig::lidar_32()
    };
    let mut log = McapLog::create(&out.join("survey.mcap"))?;
    log.log_path(0, "/plan", &route)?;
    let outlines: Vec<Vec<[f64; 3]>> = twin
        .buildings
        .iter()
        .filter(|x| footprint_distance_m(&x.footprint, centre) < 250.0)
        .map(|x| x.footprint.exterior.iter().map(|p| [p[0], p[1], x.base_elevation_m + x.height_m]).collect())
        .collect();
    log.log_outlines(0, "/twin/buildings", &outlines, [0.6, 0.6, 0.7, 1.0])?;

    let mut drone =
        Drone::new(limits.clone(), DroneState { position_enu: route[0], velocity_enu: [0.0; 3], yaw_rad: 0.0 })?;
    let mut follower = WaypointFollower::new(route.clone());
    follower.cruise_speed_mps = 5.0;
    let mut kept: HashSet<(i64, i64, i64)> = HashSet::new();
    let (mut cloud, mut labels) = (Vec::new(), Vec::new());
    let mut facade: HashSet<(i64, i64)> = HashSet::new();
    let mut closest_m = f64::INFINITY;
    let mut violations = 0usize;
    let (mut step, mut scans, mut rays) = (0u64, 0u64, 0u64);
    let mut cast_s = 0.0;
    while !follower.done(&drone.state) {
        if step > 20_000 {
            bail!("the drone did not finish its orbit");
        }
        let p = drone.state.position_enu;
        let face = (centre[1] - p[1]).atan2(centre[0] - p[0]);
        let action = follower.action(&drone.state, &limits, Some(face));
        drone.step(&action, DT_S, airspace.terrain());
        step += 1;
        let s = drone.state;
        let t_ns = step * (DT_S * 1e9) as u64;
        let pose = Pose3::level(s.position_enu, s.yaw_rad);
        log.log_pose(t_ns, "drone", &pose)?;
        // Clearance from every building near the drone (the rule of swm_robots::drone).
        for x in twin.buildings.iter().chain(&twin.building_parts) {
            let d = footprint_distance_m(&x.footprint, [s.position_enu[0], s.position_enu[1]]);
            let above = s.position_enu[2] - (x.base_elevation_m + x.height_m);
            if d <= limits.clearance_m && above < limits.clearance_m {
                violations += 1;
            }
            closest_m = closest_m.min(d.hypot(above.max(0.0)));
        }
        if step % SCAN_EVERY != 0 {
            continue;
        }
        let t = Instant::now();
        let scan = scene.scan(&lidar, &SensorPose::level(s.position_enu, s.yaw_rad), &[], 7, scans)?;
        cast_s += t.elapsed().as_secs_f64();
        rays += lidar.beam_count() as u64;
        let mut logged = Vec::new();
        let mut logged_keys = HashSet::new();
        for (k, q) in scan.return_beam.iter().zip(&scan.points_enu) {
            let label = match scan.hit[*k as usize] {
                Hit::Building(i) if i as usize == target => 1u8,
                Hit::Building(_) | Hit::BuildingPart(_) => 2,
                Hit::Terrain => 3,
                _ => 0,
            };
            if label == 1 {
                let a = (q[1] - centre[1]).atan2(q[0] - centre[0]);
                let h = q[2] - building.base_elevation_m;
                if (0.0..wall_m).contains(&h) {
                    facade.insert(((a.to_degrees() / 5.0).floor() as i64, (h / 2.0).floor() as i64));
                }
            }
            if kept.insert(voxel_key(*q, 0.2)) {
                cloud.push(*q);
                labels.push(label);
            }
            if scans % LOG_CLOUD_EVERY == 0 && logged_keys.insert(voxel_key(*q, 0.5)) {
                logged.push(*q);
            }
        }
        if scans % LOG_CLOUD_EVERY == 0 {
            log.log_lidar(t_ns, &logged)?;
        }
        scans += 1;
    }
    let summary = log.finish()?;
    swm_sensors::ply::write_ply(&out.join("survey.ply"), &cloud, Some(&labels))?;

    let cells_total = 72 * (wall_m / 2.0).ceil() as usize;
    let on_target = labels.iter().filter(|l| **l == 1).count();
    println!(
        "flight: {:.1} s simulated, {scans} scans ({rays} rays, {:.2} M rays/s)",
        step as f64 * DT_S,
        rays as f64 / cast_s / 1e6
    );
    println!(
        "clearance: {violations} violations; closest approach to any building {closest_m:.1} m (required {:.0} m)",
        limits.clearance_m
    );
    println!(
        "point cloud: {} points (0.2 m voxels), {on_target} on the surveyed building; façade coverage {:.0}% of 5° × 2 m cells",
        cloud.len(),
        100.0 * facade.len() as f64 / cells_total.max(1) as f64
    );
    println!(
        "wrote {} and {} ({} messages)",
        out.join("survey.ply").display(),
        out.join("survey.mcap").display(),
        summary.messages
    );
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    if violations > 0 {
        bail!("the drone came closer than the clearance {violations} times");
    }
    Ok(())
}
