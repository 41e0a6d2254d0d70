//! Vehicle simulator tests: hand-built twins (straight road, signalised crossroads,
//! priority T-junction), the procedural default district and, when present, Seoul data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use swm_sim::metrics::{MetricsAccumulator, OrientedBox, overlapping_pairs};
use swm_sim::record::SimEvent;
use swm_sim::simulation::run_many;
use swm_sim::{SimConfig, Simulation, TrajectoryRecord};
use swm_twin::Twin;

use swm_ingest::osm_xml::FixtureTags as Tags;

/// Builds a twin from OSM XML nodes `(id, x_m, y_m, tags)` and ways `(node ids, tags)`.
fn twin_from_osm(name: &str, nodes: &[(i64, f64, f64, Tags)], ways: &[(&[i64], Tags)]) -> Twin {
    let dir = std::env::temp_dir().join(format!("swm_sim_test_{}_{}", std::process::id(), name));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.osm"));
    std::fs::write(&path, swm_ingest::osm_xml::document_from_local_m(nodes, ways)).unwrap();
    let (twin, _) = swm_ingest::ingest_paths(&[path], &Default::default()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    twin
}

fn straight_road() -> Twin {
    twin_from_osm(
        "straight",
        &[(1, -400.0, 0.0, &[]), (2, 400.0, 0.0, &[])],
        &[(&[1, 2], &[("highway", "secondary"), ("lanes", "4"), ("maxspeed", "50")])],
    )
}

fn crossroads() -> Twin {
    let road: &[(&str, &str)] = &[("highway", "secondary"), ("lanes", "4"), ("maxspeed", "50")];
    twin_from_osm(
        "cross",
        &[
            (1, 0.0, 0.0, &[("highway", "traffic_signals")]),
            (2, -300.0, 0.0, &[]),
            (3, 300.0, 0.0, &[]),
            (4, 0.0, -300.0, &[]),
            (5, 0.0, 300.0, &[]),
        ],
        &[(&[2, 1], road), (&[1, 3], road), (&[4, 1], road), (&[1, 5], road)],
    )
}

/// Two signalled crossroads 44 m apart on one road (one intersection mapped with two signal
/// nodes: ingest groups signal nodes less than 40 m apart, but the lanes between these two,
/// cut back at both junctions, are shorter than 40 m), and a third 250 m further on.
/// Where a narrow road meets a wide one end to end at a right angle (a bend node, as where
/// Jamsil's 토성로 becomes 올림픽로), both are cut back at the node: the narrow road's lane
/// ends before the wide road's carriageway, so the wide road's outer lane does not start on
/// the narrow road's lane (vehicles followed a hairpin path there and locked).
#[test]
fn a_bend_between_a_wide_and_a_narrow_road_is_cut_back() {
    let twin = twin_from_osm(
        "bend",
        &[(1, -200.0, 0.0, &[]), (2, 0.0, 0.0, &[]), (3, 0.0, -200.0, &[])],
        &[(&[1, 2], &[("highway", "tertiary"), ("lanes", "2")]), (&[2, 3], &[("highway", "primary"), ("lanes", "8")])],
    );
    let primary_half_width_m: f64 =
        twin.lanes.iter().filter(|l| l.road_class == swm_twin::RoadClass::Primary).map(|l| l.width_m).sum::<f64>()
            / 2.0;
    assert!(primary_half_width_m > 8.0, "half width {primary_half_width_m}");
    let mut checked = 0;
    for l in twin.lanes.iter().filter(|l| l.road_class == swm_twin::RoadClass::Tertiary) {
        // The end of the eastbound lane (into the bend) stays west of the wide road's edge.
        let (a, b) = (l.centerline[0], l.centerline[l.centerline.len() - 1]);
        if b[0] > a[0] {
            assert!(b[0] < -primary_half_width_m + 0.5, "tertiary lane ends at x = {:.1}", b[0]);
            checked += 1;
        }
    }
    assert_eq!(checked, 1);
    // Every path through the bend goes forward: no connection turns back more than 135°.
    for c in &twin.lane_connections {
        let h = |p: [f64; 3], q: [f64; 3]| (q[1] - p[1]).atan2(q[0] - p[0]);
        let from = &twin.lanes[c.from_lane as usize].centerline;
        let to = &twin.lanes[c.to_lane as usize].centerline;
        let (h0, h1) = (h(from[from.len() - 2], from[from.len() - 1]), h(to[0], to[1]));
        let dir = (c.path[c.path.len() - 1][0] - c.path[0][0], c.path[c.path.len() - 1][1] - c.path[0][1]);
        let along = dir.0 * (h0.cos() + h1.cos()) + dir.1 * (h0.sin() + h1.sin());
        assert!(along > -0.5, "connection {} -> {} runs backwards", c.from_lane, c.to_lane);
    }
}

/// Through a junction, vehicles in adjacent lanes drive side by side: the straight paths of
/// two adjacent 2.8 m lanes (centre lines closer than the 3 m conflict distance) do not
/// conflict, while two paths into the same lane do.
#[test]
fn side_by_side_paths_through_a_junction_do_not_conflict() {
    let road: &[(&str, &str)] = &[("highway", "secondary"), ("lanes", "4"), ("width", "11.2")];
    let twin = Arc::new(twin_from_osm(
        "narrow_cross",
        &[(1, 0.0, 0.0, &[]), (2, -300.0, 0.0, &[]), (3, 300.0, 0.0, &[]), (4, 0.0, -300.0, &[]), (5, 0.0, 300.0, &[])],
        &[(&[2, 1], road), (&[1, 3], road), (&[4, 1], road), (&[1, 5], road)],
    ));
    assert!(twin.lanes.iter().all(|l| (l.width_m - 2.8).abs() < 1e-6));
    let sim = Simulation::new(twin.clone(), cfg(1, 1, 0.0)).unwrap();
    let net = &sim.vehicle_sim().net;
    let straight: Vec<u32> = (0..twin.lane_connections.len() as u32)
        .filter(|&c| twin.lane_connections[c as usize].turn == swm_twin::Turn::Straight)
        .collect();
    let mut side_by_side = 0;
    for &a in &straight {
        for &b in &straight {
            let (ca, cb) = (&twin.lane_connections[a as usize], &twin.lane_connections[b as usize]);
            let heading = |c: &swm_twin::LaneConnection| {
                let p = &c.path;
                (p[p.len() - 1][1] - p[0][1]).atan2(p[p.len() - 1][0] - p[0][0])
            };
            if a == b || ca.junction != cb.junction || (heading(ca) - heading(cb)).abs() > 0.1 {
                continue;
            }
            let conflict = net.conflicts[a as usize].iter().any(|cf| cf.other == b);
            assert_eq!(conflict, ca.to_lane == cb.to_lane, "{a} and {b}");
            side_by_side += usize::from(ca.to_lane != cb.to_lane);
        }
    }
    assert!(side_by_side >= 4, "{side_by_side} side-by-side pairs");
}

fn double_crossroads() -> Twin {
    let road: &[(&str, &str)] = &[("highway", "secondary"), ("lanes", "2"), ("maxspeed", "50")];
    let sig: &[(&str, &str)] = &[("highway", "traffic_signals")];
    twin_from_osm(
        "double",
        &[
            (1, 0.0, 0.0, sig),
            (2, 44.0, 0.0, sig),
            (3, 280.0, 0.0, sig),
            (10, -300.0, 0.0, &[]),
            (11, 530.0, 0.0, &[]),
            (20, 0.0, -300.0, &[]),
            (21, 0.0, 300.0, &[]),
            (22, 44.0, -300.0, &[]),
            (23, 44.0, 300.0, &[]),
            (24, 280.0, -300.0, &[]),
            (25, 280.0, 300.0, &[]),
        ],
        &[
            (&[10, 1], road),
            (&[1, 2], road),
            (&[2, 3], road),
            (&[3, 11], road),
            (&[20, 1], road),
            (&[1, 21], road),
            (&[22, 2], road),
            (&[2, 23], road),
            (&[24, 3], road),
            (&[3, 25], road),
        ],
    )
}

fn t_junction() -> Twin {
    let major: &[(&str, &str)] = &[("highway", "primary"), ("lanes", "2"), ("maxspeed", "50")];
    let minor: &[(&str, &str)] = &[("highway", "residential")];
    twin_from_osm(
        "tee",
        &[(1, 0.0, 0.0, &[]), (2, -300.0, 0.0, &[]), (3, 300.0, 0.0, &[]), (4, 0.0, -250.0, &[])],
        &[(&[2, 1], major), (&[1, 3], major), (&[4, 1], minor)],
    )
}

#[derive(Debug, Default)]
struct Check {
    /// Vehicle-vehicle collisions by the metrics definition (oriented-box SAT overlap,
    /// once per pair per contact episode, every step).
    collisions: u64,
    first_collisions: Vec<(u32, TrajectoryRecord, TrajectoryRecord)>,
    gridlocked: u64,
    /// Vehicles stopped longer than `LONG_STOP_S` at some time.
    long_stopped: u64,
    max_stopped_s: f64,
    speed_sum: f64,
    speed_n: u64,
    over_limit: u64,
    spawned: usize,
    arrived: usize,
    violations: usize,
    deadlocks: usize,
}

/// Runs `steps` steps feeding every step to the metrics accumulator.
fn run_checked(twin: Arc<Twin>, cfg: SimConfig, steps: u32) -> (Check, Simulation) {
    let limits: Vec<f64> = twin.lanes.iter().map(|l| l.speed_limit_mps).collect();
    let mut acc = MetricsAccumulator::new(&twin);
    let mut sim = Simulation::new(twin, cfg).unwrap();
    let mut ck = Check::default();
    let mut stopped: BTreeMap<u64, f64> = BTreeMap::new();
    let mut contacts: BTreeSet<(u64, u64)> = BTreeSet::new();
    sim.run(steps, &mut |step, recs| {
        acc.push_step(step, recs);
        let vs: Vec<&TrajectoryRecord> = recs.iter().filter(|r| r.kind.is_vehicle()).collect();
        for r in &vs {
            ck.speed_sum += r.speed_mps.abs();
            ck.speed_n += 1;
            if let Some(l) = r.lane
                && r.speed_mps > limits[l as usize] + 0.5
            {
                ck.over_limit += 1;
            }
            let e = stopped.entry(r.agent_id).or_insert(0.0);
            *e = if r.speed_mps.abs() < 0.1 { *e + 0.1 } else { 0.0 };
            ck.max_stopped_s = ck.max_stopped_s.max(*e);
        }
        // The first contacts, for the failure message (the count comes from the metrics).
        if ck.first_collisions.len() < 4 {
            let boxes: Vec<OrientedBox> = vs.iter().map(|r| OrientedBox::of_record(r)).collect();
            let now: BTreeSet<(u64, u64)> = overlapping_pairs(&boxes)
                .into_iter()
                .filter(|&(i, j)| (vs[i].z_m - vs[j].z_m).abs() < swm_sim::metrics::LEVEL_SEPARATION_M)
                .map(|(i, j)| (vs[i].agent_id.min(vs[j].agent_id), vs[i].agent_id.max(vs[j].agent_id)))
                .collect();
            for &(a, b) in now.difference(&contacts) {
                let ra = vs.iter().find(|r| r.agent_id == a).unwrap();
                let rb = vs.iter().find(|r| r.agent_id == b).unwrap();
                if ck.first_collisions.len() < 4 {
                    ck.first_collisions.push((step, (*ra).clone(), (*rb).clone()));
                }
            }
            contacts = now;
        }
    });
    let m = acc.finish(sim.events());
    ck.collisions = m.vehicle_collisions;
    ck.gridlocked = m.gridlocked_vehicles;
    ck.long_stopped = m.long_stopped_vehicles;
    ck.violations = m.red_light_violations as usize;
    ck.deadlocks = m.deadlocks_resolved as usize;
    for e in sim.events() {
        match e {
            SimEvent::Spawned { .. } => ck.spawned += 1,
            SimEvent::Arrived { .. } => ck.arrived += 1,
            _ => {}
        }
    }
    (ck, sim)
}

fn assert_no_collisions(ck: &Check) {
    assert_eq!(ck.collisions, 0, "collisions; first: {:#?}", ck.first_collisions);
}

fn cfg(seed: u64, vehicles: u32, duration_s: f64) -> SimConfig {
    SimConfig { seed, vehicles, pedestrians: 0, duration_s, record_every_steps: 1, density: 1.0 }
}

fn mean_speed(c: &Check) -> f64 {
    c.speed_sum / c.speed_n.max(1) as f64
}

#[test]
fn straight_road_flows() {
    let twin = Arc::new(straight_road());
    let (ck, sim) = run_checked(twin, cfg(1, 40, 0.0), 1800);
    assert_no_collisions(&ck);
    assert!(mean_speed(&ck) > 5.0, "mean speed {}", mean_speed(&ck));
    assert_eq!(ck.over_limit, 0);
    assert!(ck.arrived > 10, "arrived {}", ck.arrived);
    assert!(sim.counts().vehicles > 20);
}

/// A bend mapped as one corner node (as OSM draws most bends): the ingest rounds it to an
/// arc, and vehicles slow to its curve speed before it, so the recorded motion turns with
/// a lateral acceleration near [`A_LAT_MPS2`] (the pose's heading is the chord of the
/// body, so a little over it as the body enters and leaves the arc), not the ~50 m/s² of
/// a car snapping round the corner at the speed limit (Jamsil, session 42). Elsewhere
/// the road is driven at its limit.
#[test]
fn vehicles_slow_for_a_bend_and_turn_smoothly() {
    use swm_sim::vehicle::A_LAT_MPS2;
    let road: &[(&str, &str)] = &[("highway", "secondary"), ("lanes", "2"), ("maxspeed", "50")];
    let twin = twin_from_osm(
        "corner",
        &[(1, -300.0, 0.0, &[]), (2, 0.0, 0.0, &[]), (3, 0.0, 300.0, &[])],
        &[(&[1, 2, 3], road)],
    );
    // The corner is an arc: no lane point turns by more than the arc step.
    for l in &twin.lanes {
        for w in l.centerline.windows(3) {
            let h0 = (w[1][1] - w[0][1]).atan2(w[1][0] - w[0][0]);
            let h1 = (w[2][1] - w[1][1]).atan2(w[2][0] - w[1][0]);
            let turn = (h1 - h0 + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
            assert!(turn.abs() <= 0.1 + 1e-9, "a lane turns by {turn} rad at one point");
        }
    }
    let mut sim = Simulation::new(Arc::new(twin), cfg(3, 30, 0.0)).unwrap();
    let mut last: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let (mut worst_lat_mps2, mut fastest_mps, mut turning_steps) = (0.0f64, 0.0f64, 0);
    sim.run(1800, &mut |_, recs| {
        for r in recs.iter().filter(|r| r.kind.is_vehicle()) {
            fastest_mps = fastest_mps.max(r.speed_mps);
            if let Some(&(h, v)) = last.get(&r.agent_id) {
                let dh =
                    (r.heading_rad - h + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
                let lat = dh.abs() / swm_sim::DT_S * v.max(r.speed_mps);
                worst_lat_mps2 = worst_lat_mps2.max(lat);
                turning_steps += (dh.abs() > 0.01) as usize;
            }
            last.insert(r.agent_id, (r.heading_rad, r.speed_mps));
        }
    });
    eprintln!(
        "worst lateral acceleration {worst_lat_mps2:.2} m/s², fastest {fastest_mps:.1} m/s, {turning_steps} turning steps"
    );
    assert!(turning_steps > 100, "too few vehicles took the bend ({turning_steps} turning steps)");
    assert!(worst_lat_mps2 < 1.5 * A_LAT_MPS2, "lateral acceleration {worst_lat_mps2} m/s²");
    assert!(fastest_mps > 12.0, "the straights are driven at the limit (fastest {fastest_mps} m/s)");
}

#[test]
fn idm_follower_keeps_gap() {
    use swm_sim::vehicle::{Params, idm_accel};
    let p = Params::of(swm_sim::AgentKind::Car);
    // Leader stopped 30 m ahead: simulate the follower alone with the IDM.
    let (mut s, mut v) = (0.0f64, 13.0f64);
    let leader = 100.0;
    for _ in 0..1200 {
        let a = idm_accel(&p, v, 13.9, leader - s, v).max(-9.0);
        let vn = (v + a * 0.1).max(0.0);
        s += (v + vn) * 0.05;
        v = vn;
        assert!(leader - s > 0.5, "gap closed: {}", leader - s);
    }
    assert!(v < 0.05 && leader - s < 4.0 && leader - s > 1.0, "v {v} gap {}", leader - s);
}

#[test]
fn signalised_crossroads_safe_and_flowing() {
    let twin = Arc::new(crossroads());
    assert_eq!(twin.signals.len(), 1);
    let steps = if cfg!(debug_assertions) { 3000 } else { 6000 };
    let (ck, _) = run_checked(twin, cfg(2, 60, 0.0), steps);
    assert_no_collisions(&ck);
    assert_eq!(ck.violations, 0);
    assert!(ck.max_stopped_s < 120.0, "stopped {}", ck.max_stopped_s);
    assert!(ck.arrived * 2 > ck.spawned.saturating_sub(60), "arrived {} of {}", ck.arrived, ck.spawned);
    assert!(mean_speed(&ck) > 3.0, "mean speed {}", mean_speed(&ck));
}

#[test]
fn vehicle_stops_at_red_and_goes_on_green() {
    let twin = Arc::new(crossroads());
    let mut sim = Simulation::new(twin.clone(), cfg(3, 30, 0.0)).unwrap();
    // Find some vehicle that stood at a signalled lane end while red and later moved on.
    let mut waited_red: BTreeMap<u64, bool> = BTreeMap::new();
    let mut went_green = 0;
    sim.run(2400, &mut |_, recs| {
        for r in recs {
            if let (Some(l), Some(sig)) = (r.lane, r.signal) {
                let lane = &twin.lanes[l as usize];
                if lane.signal.is_some() && sig == swm_sim::SignalState::Red && r.speed_mps < 0.1 {
                    waited_red.insert(r.agent_id, true);
                }
            }
            if r.lane.is_none() && waited_red.remove(&r.agent_id).is_some() {
                went_green += 1;
            }
        }
    });
    assert!(went_green > 3, "vehicles that waited at red and went on: {went_green}");
    assert!(!sim.events().iter().any(|e| matches!(e, SimEvent::RedLightViolation { .. })));
}

#[test]
fn signals_linked_by_a_short_lane_share_one_plan() {
    let twin = Arc::new(double_crossroads());
    let pos: Vec<_> =
        twin.signals.iter().map(|s| (s.position[0].round(), s.position[1].round(), s.lanes.len())).collect();
    // Ingest groups the two nodes 44 m apart (their links are shorter than 40 m) into one
    // signal with the incoming lanes of both; the node 250 m away keeps its own.
    assert_eq!(twin.signals.len(), 2, "one signal for the pair, one for the third node: {pos:?}");
    let x0 =
        twin.junctions.iter().filter(|j| j.control.is_signalized()).map(|j| j.center[0]).fold(f64::INFINITY, f64::min);
    let junction_at =
        |x: f64| twin.junctions.iter().position(|j| (j.center[0] - x).abs() < 3.0 && j.center[1].abs() < 3.0).unwrap();
    let signal_of = |j: usize| twin.lanes[twin.junctions[j].incoming_lanes[0] as usize].signal.unwrap();
    let (a, b, c) = (signal_of(junction_at(x0)), signal_of(junction_at(x0 + 44.0)), signal_of(junction_at(x0 + 280.0)));
    assert_eq!(a, b, "the two nodes 44 m apart are one signal");
    assert_ne!(a, c, "the node 250 m away is another");
    let sim = Simulation::new(twin.clone(), cfg(5, 10, 0.0)).unwrap();
    let signals = sim.signals();
    assert_ne!(signals.plans[a as usize], signals.plans[c as usize], "the node 250 m away runs its own plan");
    // The links between the two nodes are clearance lanes: always green, in both directions.
    let links: Vec<u32> = (0..twin.lanes.len() as u32)
        .filter(|&l| {
            let lane = &twin.lanes[l as usize];
            lane.length_m < 40.0
                && lane.centerline.iter().all(|p| p[1].abs() < 8.0 && p[0] > x0 - 1.0 && p[0] < x0 + 45.0)
        })
        .collect();
    assert!(links.len() >= 2, "links between the nodes: {links:?}");
    for l in links {
        for t in 0..200 {
            assert_eq!(signals.lane_state(l, t as f64), Some(swm_sim::SignalState::Green), "link lane {l} at {t} s");
        }
    }
    // Vehicles cross the pair without collisions or red-light violations.
    let (ck, _) = run_checked(twin, cfg(5, 40, 0.0), 3000);
    assert_no_collisions(&ck);
    assert_eq!(ck.violations, 0);
    assert!(ck.arrived > 20, "arrived {}", ck.arrived);
}

#[test]
fn priority_t_junction_safe() {
    let twin = Arc::new(t_junction());
    let (ck, sim) = run_checked(twin, cfg(4, 40, 0.0), 3000);
    for line in sim.vehicle_sim().stuck_report(60.0) {
        eprintln!("tee: {line}");
    }
    assert_no_collisions(&ck);
    assert!(ck.max_stopped_s < 150.0, "stopped {}", ck.max_stopped_s);
    assert!(ck.arrived > 20, "arrived {}", ck.arrived);
}

/// No vehicle spawns within its braking distance of an agent driven from outside: a robot
/// standing where a lane enters the district would be run into by a vehicle spawned
/// behind it at speed (the spawn checks the gaps to vehicles only, before).
#[test]
fn no_vehicle_spawns_next_to_an_external_agent() {
    let twin = straight_road();
    // 10 m into a lane that enters the district at its west end, where vehicles spawn.
    let lane = twin.lanes.iter().find(|l| l.centerline[0][0] < -790.0).expect("an eastbound lane");
    let (a, b) = (lane.centerline[0], lane.centerline[1]);
    let h = (b[1] - a[1]).atan2(b[0] - a[0]);
    let robot = swm_sim::ExternalAgent {
        center: [a[0] + 10.0 * h.cos(), a[1] + 10.0 * h.sin()],
        z_m: a[2],
        heading_rad: h,
        length_m: 4.5,
        width_m: 1.8,
        speed_mps: 0.0,
    };
    let mut sim = Simulation::new(Arc::new(twin), cfg(9, 60, 0.0)).unwrap();
    sim.set_external_agents(&[robot]);
    sim.step();
    let mut seen: std::collections::HashSet<u64> = sim.records().iter().map(|r| r.agent_id).collect();
    let (mut spawned, mut near) = (0, Vec::new());
    for _ in 0..1200 {
        sim.step();
        for r in sim.records() {
            if r.kind.is_vehicle() && seen.insert(r.agent_id) {
                spawned += 1;
                let d = (r.x_m - robot.center[0]).hypot(r.y_m - robot.center[1]);
                if d < 8.0 {
                    near.push((r.agent_id, d));
                }
            }
        }
    }
    assert!(spawned > 20, "vehicles keep spawning: {spawned}");
    assert!(near.is_empty(), "spawned within 8 m of the robot: {near:?}");
}

#[test]
fn vehicles_stop_for_an_external_agent_and_go_on_when_it_leaves() {
    let twin = Arc::new(straight_road());
    let mut sim = Simulation::new(twin, cfg(3, 16, 0.0)).unwrap();
    // A barrier across the road (a robot crossing it, in the extreme) half-way along it (the
    // twin's road runs from x = -801 m to 0).
    const X_M: f64 = -400.0;
    let barrier = swm_sim::ExternalAgent {
        center: [X_M, 0.0],
        z_m: 0.0,
        heading_rad: std::f64::consts::FRAC_PI_2,
        length_m: 16.0,
        width_m: 1.0,
        speed_mps: 0.0,
    };
    let b = OrientedBox {
        center: barrier.center,
        heading_rad: barrier.heading_rad,
        length_m: barrier.length_m,
        width_m: barrier.width_m,
    };
    let mut waiting = 0;
    let mut before: Vec<(u64, f64)> = Vec::new();
    for step in 0..1200 {
        if step == 900 {
            before = sim.records().iter().map(|r| (r.agent_id, r.x_m)).collect();
            sim.set_external_agents(&[]);
        } else if step == 0 {
            sim.set_external_agents(&[barrier]);
        }
        sim.step();
        for r in sim.records().iter().filter(|r| r.kind.is_vehicle()) {
            let vb = OrientedBox::of_record(r);
            if step < 900 {
                assert!(vb.overlap_depth_m(&b) <= 1e-3, "step {step}: vehicle {} drove into the barrier", r.agent_id);
                if (r.x_m - X_M).abs() < 15.0 && r.speed_mps < 0.1 {
                    waiting += 1;
                }
            }
        }
    }
    assert!(waiting > 100, "vehicles waited at the barrier for {waiting} vehicle-steps");
    // Once it has gone, traffic passes it again.
    let crossed = sim
        .records()
        .iter()
        .filter(|r| before.iter().any(|(id, x)| *id == r.agent_id && (x - X_M).signum() != (r.x_m - X_M).signum()))
        .count();
    assert!(crossed > 0, "no vehicle passed where the barrier stood after it left");
}

#[test]
fn deterministic_and_thread_independent() {
    let twin = Arc::new(crossroads());
    let cfgs = vec![cfg(7, 30, 30.0), cfg(8, 30, 30.0)];
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| run_many(twin.clone(), &cfgs));
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap().install(|| run_many(twin.clone(), &cfgs));
    let a: Vec<_> = one.into_iter().map(|r| r.unwrap()).collect();
    let b: Vec<_> = two.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(a, b);
    assert_ne!(a[0].records, a[1].records);
    assert!(!a[0].records.is_empty());
}

fn seoul(name: &str, bbox_wgs84: Option<[f64; 4]>) -> Option<Twin> {
    let path: PathBuf = swm_ingest::shared_data::require_shared_data(name)?;
    let opts = swm_ingest::IngestOptions { bbox_wgs84, ..Default::default() };
    Some(swm_ingest::ingest_paths(&[path], &opts).unwrap().0)
}

/// The quality bar, over ten seeds on every district: in 10 simulated minutes with 300
/// vehicles (400 on the procedural default district) no vehicle-vehicle collision (the
/// metrics' oriented-box definition), no red-light violation, no gridlock (no vehicle stopped
/// longer than `GRIDLOCK_S`, SUMO's jam criterion), a plausible mean speed, and most
/// vehicles that left the start arriving; and four seeds that once failed. Wider sweeps
/// (seeds 11-110, `diag_sweep`) are in BENCHMARKS.md with the runs that still have a long
/// stop.
#[test]
fn districts_meet_the_quality_bar() {
    let mut districts: Vec<(&str, Twin, u32)> = vec![(
        "default",
        swm_procgen::build_district(&swm_procgen::DistrictParams::embedded_default()).unwrap().0,
        400,
    )];
    for (name, path, bbox) in
        [("jamsil", "seoul/jamsil.osm.pbf", None), ("yeouido", "seoul/yeouido.osm.pbf", Some(YEOUIDO_CORE_WGS84))]
    {
        if let Some(t) = seoul(path, bbox) {
            districts.push((name, t, 300));
        }
    }
    let runs: Vec<(&str, Arc<Twin>, SimConfig, u32)> = districts
        .into_iter()
        .flat_map(|(name, twin, n)| {
            let twin = Arc::new(twin);
            // Seeds that once failed: Yeouido 27 and 55 held a body lock at a fork behind a
            // line of claimants for 450-550 s (see `DEADLOCK_ESCALATE_S`); Yeouido 50, a
            // truck's claim and an overlap zone held by the stream it claims against, each
            // waiting for the other (with `CLAIM_GREEN_S`, before the zone rule); Jamsil 24, a
            // head at a signal that lost its short green and waited a whole cycle again, its
            // queue spilling back (see `CLAIM_GREEN_S`).
            let extra: &[u64] = match name {
                "yeouido" => &[27, 50, 55],
                "jamsil" => &[24],
                _ => &[],
            };
            (11..=20).chain(extra.iter().copied()).map(move |seed| (name, twin.clone(), cfg(seed, n, 0.0), n))
        })
        .collect();
    let results: Vec<(String, Check, u32)> = runs
        .into_par_iter()
        .map(|(name, twin, c, n)| {
            let label = format!("{name} seed {}", c.seed);
            let (ck, sim) = run_checked(twin, c, 6000);
            if ck.gridlocked > 0 {
                for line in sim.vehicle_sim().stuck_report(240.0).iter().take(20) {
                    eprintln!("{label}: {line}");
                }
            }
            (label, ck, n)
        })
        .collect();
    for (label, ck, _) in &results {
        eprintln!(
            "{label}: collisions {} violations {} gridlocked {} longest stop {:.0} s mean speed {:.2} m/s",
            ck.collisions,
            ck.violations,
            ck.gridlocked,
            ck.max_stopped_s,
            mean_speed(ck)
        );
    }
    for (label, ck, n) in &results {
        assert_eq!(ck.collisions, 0, "{label}: collisions; first: {:#?}", ck.first_collisions);
        assert_eq!(ck.violations, 0, "{label}: red-light violations");
        assert_eq!(ck.gridlocked, 0, "{label}: gridlock (longest stop {:.0} s)", ck.max_stopped_s);
        assert!(mean_speed(ck) > 3.0, "{label}: mean speed {}", mean_speed(ck));
        let left = ck.spawned.saturating_sub(*n as usize);
        assert!(ck.arrived * 2 > left, "{label}: arrived {} of {left} spawned after the start", ck.arrived);
    }
}

/// Pedestrians and vehicles keep apart on the real districts: vehicles stop for pedestrians
/// on their own lane ahead (Korean side streets have no sidewalks: pedestrians walk on the
/// road) and for walking ones beyond it, and pass others close by at walking pace;
/// pedestrians keep out of vehicle bodies and of the road a vehicle covers in the next
/// second. Before these rules a 300 s run (seed 11, 300 vehicles, 200 pedestrians) had 104
/// contacts on Jamsil and 86 on Yeouido's core (the metrics' disc-in-box definition); now
/// 13 and 7 remain (mostly pedestrians standing at kerbs that junction paths pass over), so
/// the bar is a regression guard, not zero.
#[test]
fn pedestrians_and_vehicles_keep_apart_on_real_districts() {
    for (name, path, bbox) in
        [("jamsil", "seoul/jamsil.osm.pbf", None), ("yeouido", "seoul/yeouido.osm.pbf", Some(YEOUIDO_CORE_WGS84))]
    {
        let Some(twin) = seoul(path, bbox) else { return };
        let mut c = cfg(11, 300, 0.0);
        c.pedestrians = 200;
        let mut acc = MetricsAccumulator::new(&twin);
        let mut sim = Simulation::new(Arc::new(twin), c).unwrap();
        sim.run(3000, &mut |step, recs| acc.push_step(step, recs));
        let m = acc.finish(sim.events());
        eprintln!(
            "{name}: {} pedestrian collisions, {} vehicle collisions",
            m.pedestrian_collisions, m.vehicle_collisions
        );
        assert_eq!(m.vehicle_collisions, 0, "{name}");
        assert!(m.pedestrian_collisions <= 20, "{name}: {} pedestrian collisions", m.pedestrian_collisions);
    }
}

/// Buses and trucks take no turn-back (`swm_sim::vehicle::TURN_BACK_RAD`: a hairpin inside
/// a junction no long body follows, such as the 169° turn in 3.5 m from 여의동로 on
/// Yeouido's core, whose pivoting bus `swm eval`'s model could not follow on the road);
/// cars still do, so the test sees the turn-backs in use.
#[test]
fn buses_and_trucks_take_no_turn_back() {
    let Some(twin) = seoul("seoul/yeouido.osm.pbf", Some(YEOUIDO_CORE_WGS84)) else { return };
    let mut sim = Simulation::new(Arc::new(twin), cfg(1, 300, 0.0)).unwrap();
    let vs = sim.vehicle_sim();
    let nl = vs.net.n_lanes as u32;
    let turn_backs = vs.net.turn_back.iter().filter(|t| **t).count();
    assert!(turn_backs >= 5, "{turn_backs} turn-backs");
    let (mut long_steps, mut car_steps) = (0u64, 0u64);
    for _ in 0..3000 {
        sim.step();
        let vs = sim.vehicle_sim();
        for (slot, v) in vs.vehicles.iter().enumerate() {
            if vs.alive(slot) && v.piece >= nl && vs.net.turn_back[(v.piece - nl) as usize] {
                if swm_sim::vehicle::is_long(v.p.length_m) {
                    long_steps += 1;
                } else {
                    car_steps += 1;
                }
            }
        }
    }
    eprintln!("{turn_backs} turn-backs; steps on them: {car_steps} by cars, {long_steps} by buses and trucks");
    assert_eq!(long_steps, 0);
    assert!(car_steps > 0);
}

/// A lock of bodies is untied by backing away, never through another body: on Yeouido's
/// core (seed 7, within 300 s; seed 24 until session 43, when rounded bends and curve
/// speeds changed the traffic; seeds 7, 22, 29, 40, 49 and 74 of 1-80 back within 300 s
/// now; seed 2 until session 16, when claims for exit room removed
/// that lock, then seed 16 until session 21, when a claimant waiting for exit room stopped
/// holding up the vehicles crossing its path and buses and trucks stopped routing through
/// turn-backs; no seed of 1-80 backs within 150 s now, seed 24 is the first within 300 s)
/// vehicles whose bodies conflict
/// wait for each other, and a
/// member backs away (a `DeadlockResolved` saying so, negative recorded speeds no faster
/// than the 1 m/s reversing speed), with no collision. (Until session 14 the case was Jamsil,
/// seed 20: a bus and a truck at the ends of two neighbouring lanes that ended side by side
/// where the road narrowed; the ingest's lane tapers removed that kind of lock, and no
/// Jamsil seed of 1-40 locks within 120 s since.)
#[test]
fn locks_of_bodies_are_untied_by_backing_away() {
    let Some(twin) = seoul("seoul/yeouido.osm.pbf", Some(YEOUIDO_CORE_WGS84)) else { return };
    let mut acc = MetricsAccumulator::new(&twin);
    let mut sim = Simulation::new(Arc::new(twin), cfg(7, 300, 0.0)).unwrap();
    let mut slowest = 0.0f64;
    sim.run(3000, &mut |step, recs| {
        acc.push_step(step, recs);
        for r in recs {
            slowest = slowest.min(r.speed_mps);
        }
    });
    let m = acc.finish(sim.events());
    let backs = sim
        .events()
        .iter()
        .filter(|e| matches!(e, SimEvent::DeadlockResolved { how, .. } if how.contains("backs away")))
        .count();
    assert!(backs > 0, "no vehicle backed away");
    assert!(slowest < -0.05, "no negative speed recorded (slowest {slowest})");
    assert!(slowest >= -1.0 - 1e-9, "backed faster than 1 m/s ({slowest})");
    assert_eq!(m.vehicle_collisions, 0);
}

/// A car standing within the guard's margin of another's body may drive on away from it:
/// on the default district (seed 21) a truck turning right on a tight corner swung its rear
/// to 0.14 m of a car waiting beside it in the next lane; the truck's guard stopped it (its
/// rear would swing into the car) and the car waited for the truck (its path came "within
/// the margin" of the truck, though no closer than it stood). The two waited 345 s. Now the
/// car drives on, and the district has no gridlock in that run.
#[test]
fn a_vehicle_beside_a_body_drives_on_away_from_it() {
    let twin = swm_procgen::build_district(&swm_procgen::DistrictParams::embedded_default()).unwrap().0;
    assert_clean_ten_minutes(twin, 21, 400);
}

/// 600 s of `vehicles` on `twin` with `seed`: no collision, no red-light violation, no
/// vehicle stopped longer than `GRIDLOCK_S`.
fn assert_clean_ten_minutes(twin: Twin, seed: u64, vehicles: u32) {
    let (ck, _) = run_checked(Arc::new(twin), cfg(seed, vehicles, 0.0), 6000);
    assert_eq!(ck.collisions, 0, "collisions; first: {:#?}", ck.first_collisions);
    assert_eq!(ck.violations, 0);
    assert_eq!(ck.gridlocked, 0, "gridlock (longest stop {:.0} s)", ck.max_stopped_s);
}

/// A left turn whose short protected green is eaten by a stream that reserved the conflict
/// before the green began is not starved: on Jamsil (seed 19) the left turn off lane 712
/// (12 s of green in 80 s) must merge with a slow ramp just beyond the junction; each
/// green, a ramp vehicle that had reserved the merge 40 m before it held it until the
/// green was nearly gone, and the turner (with two cars behind it) waited 444 s. Now it
/// claims the merge again shortly before its next green (`CLAIM_LEAD_S`) and goes.
#[test]
fn a_left_turn_starved_through_its_green_claims_before_the_next() {
    let Some(twin) = seoul("seoul/jamsil.osm.pbf", None) else { return };
    assert_clean_ten_minutes(twin, 19, 300);
}

/// Streams merging into a queued lane take turns: on Jamsil (seed 14) the four lanes of one
/// approach merge pairwise into two exit lanes that queue back from the next signal. Before
/// a first car kept 30 s by the queue on its exit could claim its way (as one kept by a
/// crossing stream does), the cars at the four stop lines waited on each other's claims and
/// on the exits' queues, and five cars stood there 387 s.
#[test]
fn streams_merging_into_a_queue_take_turns() {
    let Some(twin) = seoul("seoul/jamsil.osm.pbf", None) else { return };
    assert_clean_ten_minutes(twin, 14, 300);
}

/// The island core of the Yeouido extract (west, south, east, north): the full extract is
/// fragmented (bridge and expressway stubs cut by the extract's edge).
const YEOUIDO_CORE_WGS84: [f64; 4] = [126.915, 37.515, 126.945, 37.535];

#[test]
#[ignore]
fn dump_straight() {
    let t = straight_road();
    for (i, l) in t.lanes.iter().enumerate() {
        eprintln!(
            "lane {i} len {:.1} pts {:?} from {:?} to {:?} stop {:?}",
            l.length_m,
            l.centerline.iter().map(|p| (p[0].round(), p[1].round())).collect::<Vec<_>>(),
            l.from_junction,
            l.to_junction,
            l.stop_line.as_ref().map(|s| s.s_m)
        );
    }
    for c in &t.lane_connections {
        eprintln!("conn {} -> {} {:?} len {:.1}", c.from_lane, c.to_lane, c.turn, c.length_m);
    }
}

/// The district the diagnostics run on (`SWM_DIAG=default|jamsil|yeouido`); `None` when
/// its shared data is missing.
fn diag_district() -> Option<(String, Twin)> {
    let name = std::env::var("SWM_DIAG").unwrap_or_else(|_| "default".into());
    let twin = match name.as_str() {
        "jamsil" => seoul("seoul/jamsil.osm.pbf", None),
        "yeouido" => seoul("seoul/yeouido.osm.pbf", Some(YEOUIDO_CORE_WGS84)),
        _ => Some(swm_procgen::build_district(&swm_procgen::DistrictParams::embedded_default()).unwrap().0),
    }?;
    Some((name, twin))
}

/// The diagnostics' seed range (`SWM_SEEDS=a..b`, both included; default 11..14).
fn diag_seeds() -> (u64, u64) {
    let seeds = std::env::var("SWM_SEEDS").unwrap_or_else(|_| "11..14".into());
    let (a, b) = seeds.split_once("..").expect("SWM_SEEDS=a..b");
    (a.parse().expect("SWM_SEEDS start"), b.parse().expect("SWM_SEEDS end"))
}

/// Vehicles of the district quality-bar runs.
fn diag_vehicles(name: &str) -> u32 {
    if name == "default" { 400 } else { 300 }
}

/// Diagnostics: the pieces of the vehicles in each new contact on a district
/// (`SWM_DIAG=default|jamsil|yeouido`).
#[test]
#[ignore]
fn diag_district_contacts() {
    let Some((name, twin)) = diag_district() else { return };
    let n = diag_vehicles(&name);
    let seed: u64 = std::env::var("SWM_SEED").ok().and_then(|x| x.parse().ok()).unwrap_or(11);
    let mut sim = Simulation::new(Arc::new(twin), cfg(seed, n, 0.0)).unwrap();
    let mut contacts: BTreeSet<(u64, u64)> = BTreeSet::new();
    for _ in 0..6000 {
        sim.step();
        let recs = sim.records();
        let vs: Vec<&TrajectoryRecord> = recs.iter().filter(|r| r.kind.is_vehicle()).collect();
        let boxes: Vec<OrientedBox> = vs.iter().map(|r| OrientedBox::of_record(r)).collect();
        let now: BTreeSet<(u64, u64)> = overlapping_pairs(&boxes)
            .into_iter()
            .filter(|&(i, j)| (vs[i].z_m - vs[j].z_m).abs() < swm_sim::metrics::LEVEL_SEPARATION_M)
            .map(|(i, j)| (vs[i].agent_id.min(vs[j].agent_id), vs[i].agent_id.max(vs[j].agent_id)))
            .collect();
        let vsim = sim.vehicle_sim();
        let nl = vsim.net.n_lanes as u32;
        let desc = |id: u64| {
            let v = vsim.vehicles.iter().find(|v| v.id == id).unwrap();
            let p = if v.piece < nl { format!("lane {}", v.piece) } else { format!("conn {}", v.piece - nl) };
            let len = vsim.net.len[v.piece as usize];
            format!("{id} {:?} {p} s {:.1}/{len:.1} v {:.1} why {:?}", v.kind, v.s_m, v.v_mps, v.why)
        };
        for &(a, b) in now.difference(&contacts) {
            eprintln!("step {} contact: [{}] [{}]", sim.step_index(), desc(a), desc(b));
        }
        contacts = now;
    }
}

/// Diagnostics: geometry of lane pairs (`SWM_DIAG` district, `SWM_LANES=a,b;c,d`).
#[test]
#[ignore]
fn diag_lane_pairs() {
    let Some((_, twin)) = diag_district() else { return };
    let sim = Simulation::new(Arc::new(twin.clone()), cfg(11, 0, 0.0)).unwrap();
    let net = &sim.vehicle_sim().net;
    let nl = net.n_lanes;
    for pair in std::env::var("SWM_LANES").unwrap_or_default().split(';').filter(|s| !s.is_empty()) {
        let ids: Vec<usize> = pair.split(',').map(|x| x.parse().unwrap()).collect();
        for &l in &ids {
            let ln = &twin.lanes[l];
            eprintln!(
                "lane {l}: len {:.1} hold {:.1} clear {:.1} width {:.2} from_j {:?} to_j {:?} gate {:?} first {:?} last {:?} \
                 in {:?} out {:?}",
                net.len[l],
                net.hold_s[l],
                net.clear_s[l],
                ln.width_m,
                ln.from_junction,
                ln.to_junction,
                net.gate[l],
                net.points(l as u32).first(),
                net.points(l as u32).last(),
                net.lane_in[l],
                net.lane_out[l]
            );
            eprintln!("  source {:?} class {:?} intrusions {:?}", ln.source, ln.road_class, net.intrusions[l]);
            for &(z, side) in &net.lane_zones[l] {
                let zz = net.zones[z as usize];
                let o = zz[1 - side as usize];
                let op =
                    if (o.0 as usize) < nl { format!("lane {}", o.0) } else { format!("conn {}", o.0 as usize - nl) };
                eprintln!(
                    "  zone {z} side {side} here [{:.1}, {:.1}] other {op} [{:.1}, {:.1}]",
                    zz[side as usize].1, zz[side as usize].2, o.1, o.2
                );
            }
            for &c in &net.lane_out[l] {
                let st: Vec<String> = (0..24)
                    .map(|k| {
                        format!("{:?}", sim.signals().connection_state(c, k as f64 * 10.0)).chars().take(6).collect()
                    })
                    .collect();
                let lc = &twin.lane_connections[c as usize];
                eprintln!("  out conn {c} to {} j {} {:?} states {st:?}", lc.to_lane, lc.junction, lc.turn);
            }
            for &c in &net.lane_in[l] {
                let p = &net.points(nl as u32 + c);
                let lc = &twin.lane_connections[c as usize];
                eprintln!(
                    "  in conn {c} from {} j {} {:?} pts {:?}",
                    lc.from_lane,
                    lc.junction,
                    lc.turn,
                    p.iter().map(|q| [q[0] as i64, q[1] as i64]).collect::<Vec<_>>()
                );
            }
        }
    }
}

#[test]
fn fork_resamples_intents_deterministically() {
    let twin = Arc::new(crossroads());
    let mut sim = Simulation::new(twin, cfg(5, 40, 0.0)).unwrap();
    for _ in 0..300 {
        sim.step();
    }
    // Poses only: the `signal` column follows the (resampled) route.
    let poses = |recs: Vec<TrajectoryRecord>| -> Vec<(u64, f64, f64, f64)> {
        recs.into_iter().map(|r| (r.agent_id, r.x_m, r.y_m, r.speed_mps)).collect()
    };
    let run = |seed: u64| {
        let mut f = sim.fork(seed);
        assert_eq!(f.step_index(), sim.step_index());
        assert_eq!(poses(f.records()), poses(sim.records()), "a fork starts from the same state");
        let mut out = Vec::new();
        for _ in 0..300 {
            f.step();
            out.extend(poses(f.records()));
        }
        out
    };
    let (a, b, c) = (run(1), run(1), run(2));
    assert_eq!(a, b, "same fork seed, same future");
    assert_ne!(a, c, "another fork seed, another future");
}

/// Diagnostics: totals over seeds (`SWM_DIAG=default|jamsil|yeouido`, `SWM_SEEDS=11..14`).
#[test]
#[ignore]
fn diag_sweep() {
    let Some((name, twin)) = diag_district() else { return };
    let twin = Arc::new(twin);
    let (a, b) = diag_seeds();
    let n = diag_vehicles(&name);
    let lane_km: f64 = twin.lanes.iter().map(|l| l.length_m).sum::<f64>() / 1000.0;
    eprintln!(
        "{name}: {} lanes, {lane_km:.1} lane-km, {:.1} vehicles per lane-km",
        twin.lanes.len(),
        n as f64 / lane_km
    );
    let cfgs: Vec<SimConfig> = (a..=b).map(|s| cfg(s, n, 0.0)).collect();
    let results: Vec<(u64, Check)> = cfgs
        .par_iter()
        .map(|c| {
            let (ck, _) = run_checked(twin.clone(), c.clone(), 6000);
            (c.seed, ck)
        })
        .collect();
    let (mut col, mut grid, mut long, mut viol, mut speed) = (0, 0, 0, 0, 0.0);
    for (s, ck) in &results {
        eprintln!(
            "{name} seed {s}: collisions {} violations {} gridlocked {} stopped > 120 s {} max stopped {:.0} s mean speed {:.2} arrived {}",
            ck.collisions,
            ck.violations,
            ck.gridlocked,
            ck.long_stopped,
            ck.max_stopped_s,
            mean_speed(ck),
            ck.arrived
        );
        col += ck.collisions;
        grid += ck.gridlocked;
        long += ck.long_stopped;
        viol += ck.violations;
        speed += mean_speed(ck);
    }
    eprintln!(
        "{name} TOTAL seeds {a}..={b}: collisions {col} violations {viol} gridlocked {grid} stopped > 120 s {long} mean speed {:.2}",
        speed / results.len() as f64
    );
}

/// Diagnostics: the heads of the wait-for chains of vehicles stopped > 120 s, sampled every
/// 30 s (`SWM_DIAG=default|jamsil|yeouido`, `SWM_SEEDS=11..14`).
#[test]
#[ignore]
fn diag_wait_heads() {
    let Some((name, twin)) = diag_district() else { return };
    let twin = Arc::new(twin);
    let (a, b) = diag_seeds();
    let n = diag_vehicles(&name);
    let mut hist: BTreeMap<String, usize> = BTreeMap::new();
    let mut heads: BTreeMap<String, usize> = BTreeMap::new();
    let mut all: BTreeMap<String, usize> = BTreeMap::new();
    let mut head_lanes: BTreeMap<String, usize> = BTreeMap::new();
    for seed in a..=b {
        let mut sim = Simulation::new(twin.clone(), cfg(seed, n, 0.0)).unwrap();
        for step in 1..=6000 {
            sim.step();
            if step % 10 == 0 {
                let follow = std::env::var("SWM_FOLLOW").is_ok();
                for (_, why, gate, _, cyc) in sim.vehicle_sim().wait_heads(0.5, follow) {
                    *all.entry(format!("{why:?} {gate:?} cycle {cyc}")).or_default() += 1;
                }
            }
            if step % 300 == 0 {
                for (id, why, gate, st, cyc) in sim.vehicle_sim().wait_heads(120.0, std::env::var("SWM_FOLLOW").is_ok())
                {
                    *hist.entry(format!("{why:?} {gate:?} cycle {cyc}")).or_default() += 1;
                    *heads.entry(format!("seed {seed} head {id} {why:?} {gate:?} {st:.0}s")).or_default() += 1;
                    let vs = sim.vehicle_sim();
                    if let Some(h) = vs.vehicles.iter().find(|v| v.id == id && v.piece < vs.net.n_lanes as u32) {
                        let p = vs.net.point_at(h.piece, h.s_m).0;
                        *head_lanes
                            .entry(format!("lane {} at ({:.0}, {:.0}) {why:?}", h.piece, p[0], p[1]))
                            .or_default() += 1;
                    }
                }
            }
        }
    }
    for (k, c) in &hist {
        eprintln!("{name} reason {k}: {c}");
    }
    let total: usize = all.values().sum();
    for (k, c) in &all {
        eprintln!("{name} all stopped > 0.5 s, head {k}: {:.1} %", 100.0 * *c as f64 / total as f64);
    }
    let mut hv: Vec<_> = heads.into_iter().collect();
    let mut lv: Vec<_> = head_lanes.into_iter().collect();
    lv.sort_by_key(|x| std::cmp::Reverse(x.1));
    for (k, c) in lv.iter().take(15) {
        eprintln!("{name} head place {k}: {c}");
    }
    hv.sort_by_key(|x| std::cmp::Reverse(x.1));
    for (k, c) in hv.iter().take(25) {
        eprintln!("{name} {k}: {c}");
    }
}

/// Diagnostics: the boxes of two vehicles around a step (`SWM_DIAG`, `SWM_SEED`,
/// `SWM_PAIR=a,b`, `SWM_STEP=k`).
#[test]
#[ignore]
fn diag_pair() {
    let Some((name, twin)) = diag_district() else { return };
    let seed: u64 = std::env::var("SWM_SEED").ok().and_then(|x| x.parse().ok()).unwrap_or(11);
    let pair: Vec<u64> = std::env::var("SWM_PAIR").unwrap().split(',').map(|x| x.parse().unwrap()).collect();
    let at: u32 = std::env::var("SWM_STEP").unwrap().parse().unwrap();
    let n = diag_vehicles(&name);
    let mut sim = Simulation::new(Arc::new(twin), cfg(seed, n, 0.0)).unwrap();
    for _ in 0..at + 3 {
        sim.step();
        if sim.step_index() + 8 < at {
            continue;
        }
        let recs = sim.records();
        let rs: Vec<&TrajectoryRecord> = pair.iter().filter_map(|id| recs.iter().find(|r| r.agent_id == *id)).collect();
        if rs.len() == 2 {
            let (a, b) = (OrientedBox::of_record(rs[0]), OrientedBox::of_record(rs[1]));
            let vs = sim.vehicle_sim();
            let d = |id: u64| {
                let v = vs.vehicles.iter().find(|v| v.id == id).unwrap();
                format!("piece {} s {:.2} v {:.2} why {:?}", v.piece, v.s_m, v.v_mps, v.why)
            };
            eprintln!(
                "step {} depth {:.3} | {} {:?} | {} {:?}",
                sim.step_index(),
                a.overlap_depth_m(&b),
                d(pair[0]),
                a,
                d(pair[1]),
                b
            );
        }
    }
}

/// Diagnostics: the state of some vehicles over a span of steps (`SWM_DIAG`, `SWM_SEED`,
/// `SWM_AGENTS=a,b,..`, `SWM_FROM=k`, `SWM_TO=m`, `SWM_EVERY=n`): each one's line of
/// [`VehicleSim::stuck_report`].
#[test]
#[ignore]
fn diag_trace() {
    let Some((name, twin)) = diag_district() else { return };
    let env = |k: &str, d: u32| std::env::var(k).ok().and_then(|x| x.parse().ok()).unwrap_or(d);
    let seed = u64::from(env("SWM_SEED", 11));
    let agents: Vec<String> =
        std::env::var("SWM_AGENTS").unwrap_or_default().split(',').map(|a| format!("veh {a} ")).collect();
    let (from, to, every) = (env("SWM_FROM", 0), env("SWM_TO", 6000), env("SWM_EVERY", 10).max(1));
    let mut sim = Simulation::new(Arc::new(twin), cfg(seed, diag_vehicles(&name), 0.0)).unwrap();
    for _ in 0..to {
        sim.step();
        let k = sim.step_index();
        if k >= from && (k - from).is_multiple_of(every) {
            for line in sim.vehicle_sim().stuck_report(-1.0) {
                if agents.iter().any(|a| line.starts_with(a.as_str())) {
                    eprintln!("step {k}: {line}");
                }
            }
        }
    }
}

/// Diagnostics: lanes and their connections' signal control (`SWM_DIAG`, `SWM_LANES=a,b`).
#[test]
#[ignore]
fn diag_lane_info() {
    let Some((_, twin)) = diag_district() else { return };
    let twin = Arc::new(twin);
    let sim = Simulation::new(twin.clone(), cfg(11, 10, 0.0)).unwrap();
    let net = &sim.vehicle_sim().net;
    let plans = &sim.signals().plans;
    let mut distinct: Vec<&swm_sim::signal::Plan> = Vec::new();
    for p in plans {
        if !distinct.contains(&p) {
            distinct.push(p);
        }
    }
    eprintln!("{} signals, {} distinct plans", plans.len(), distinct.len());
    let all: usize = net.conflicts.iter().map(Vec::len).sum();
    let long: usize = net.conflicts.iter().flatten().filter(|c| c.long_only).count();
    eprintln!("{all} conflict entries, {long} of them for long vehicles only");
    let mut lanes = std::env::var("SWM_LANES").unwrap_or_default();
    // Pieces (`SWM_PIECES`, as the diagnostics print them): their lanes, or connections'
    // approach lanes.
    for pc in std::env::var("SWM_PIECES").unwrap_or_default().split(',').filter_map(|x| x.parse::<u32>().ok()) {
        let nl = net.n_lanes as u32;
        let l = if pc < nl { pc } else { twin.lane_connections[(pc - nl) as usize].from_lane };
        if pc >= nl {
            eprintln!("piece {pc} is connection {}", pc - nl);
        }
        lanes.push_str(&format!(",{l}"));
    }
    for l in lanes.split(',').filter_map(|x| x.parse::<u32>().ok()) {
        let lane = &twin.lanes[l as usize];
        eprintln!(
            "lane {l}: {:?} {:?} lvl {} len {:.1} from_j {:?} to_j {:?} gate {:?} hold {:.1} clear {:.1}",
            lane.road_class,
            lane.name,
            lane.level,
            lane.length_m,
            lane.from_junction,
            lane.to_junction,
            net.gate[l as usize],
            net.hold_s[l as usize],
            net.clear_s[l as usize]
        );
        for (ci, c) in twin.lane_connections.iter().enumerate().filter(|(_, c)| c.from_lane == l) {
            let st: String = (0..120)
                .map(|t| match sim.signals().connection_state(ci as u32, t as f64) {
                    Some(swm_sim::SignalState::Green) => 'G',
                    Some(swm_sim::SignalState::Amber) => 'A',
                    Some(swm_sim::SignalState::Red) => '.',
                    None => '-',
                })
                .collect();
            eprintln!("  conn {ci} -> {} {:?} {st}", c.to_lane, c.turn);
            let pts: Vec<(i64, i64)> = net
                .points(net.n_lanes as u32 + ci as u32)
                .iter()
                .map(|p| (p[0].round() as i64, p[1].round() as i64))
                .collect();
            eprintln!("    path {pts:?}");
            for cf in &net.conflicts[ci] {
                let o = &twin.lane_connections[cf.other as usize];
                eprintln!(
                    "    conflict conn {} ({} -> {} {:?} j {}) here to {:.1} there to {:.1} yield {}",
                    cf.other,
                    o.from_lane,
                    o.to_lane,
                    o.turn,
                    o.junction,
                    cf.my_end_m,
                    cf.other_end_m,
                    cf.yield_to_other
                );
            }
        }
        let pts: Vec<(i64, i64)> = net.points(l).iter().map(|p| (p[0].round() as i64, p[1].round() as i64)).collect();
        eprintln!("  centre line {pts:?}");
        for j in [lane.from_junction, lane.to_junction].into_iter().flatten() {
            let c = twin.junctions[j as usize].center;
            eprintln!("  junction {j} at ({:.0}, {:.0})", c[0], c[1]);
        }
    }
}

/// The wait-for chain of the vehicle in `slot`, one entry per member: id, reason, piece,
/// position, where, stopped s, speed, kind, length, claims.
fn chain_text(vs: &swm_sim::vehicle::VehicleSim, slot: usize) -> Vec<String> {
    vs.wait_chain(slot)
        .into_iter()
        .map(|k| {
            let c = &vs.vehicles[k];
            let pt = vs.net.point_at(c.piece, c.s_m).0;
            format!(
                "#{} {:?} p{} s{:.1} ({:.0},{:.0}) st{:.0} v{:.2} {:?} len{:.1} cl{:?}",
                c.id,
                c.why,
                c.piece,
                c.s_m,
                pt[0],
                pt[1],
                c.stopped_s,
                c.v_mps,
                c.kind,
                c.p.length_m,
                vs.claimed(k)
            )
        })
        .collect()
}

/// Diagnostics: the wait chains of vehicles stopped longer than `SWM_MIN_STOP` s (default
/// 300) at the end of 600 s (`SWM_DIAG`, `SWM_SEEDS`); `SWM_EVENTS=1` lists the run's
/// deadlock resolutions.
#[test]
#[ignore]
fn diag_stuck() {
    let Some((name, twin)) = diag_district() else { return };
    let twin = Arc::new(twin);
    let (a, b) = diag_seeds();
    let n = diag_vehicles(&name);
    let min: f64 = std::env::var("SWM_MIN_STOP").ok().and_then(|x| x.parse().ok()).unwrap_or(300.0);
    let peds: u32 = std::env::var("SWM_PEDS").ok().and_then(|x| x.parse().ok()).unwrap_or(0);
    for seed in a..=b {
        let mut c = cfg(seed, n, 0.0);
        c.pedestrians = peds;
        let mut sim = Simulation::new(twin.clone(), c).unwrap();
        let mut hist: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let env_u32 = |k: &str, d: u32| std::env::var(k).ok().and_then(|x| x.parse().ok()).unwrap_or(d);
        let (from, every) = (env_u32("SWM_FROM", 4000), env_u32("SWM_EVERY", 50));
        let mut reported: std::collections::BTreeSet<u64> = Default::default();
        for step in 1..=6000 {
            sim.step();
            if std::env::var("SWM_AT").is_ok() {
                // The wait chain of every vehicle at the step it passes `min` s stopped.
                let vs = sim.vehicle_sim();
                for (slot, v) in vs.vehicles.iter().enumerate() {
                    if vs.alive(slot) && v.stopped_s >= min && reported.insert(v.id) {
                        let parts = chain_text(vs, slot);
                        eprintln!("{name} seed {seed} step {step}: {}", parts.join("  ->  "));
                    }
                }
            }
            if step % every == 0 && step > from {
                let vs = sim.vehicle_sim();
                for (slot, v) in vs.vehicles.iter().enumerate() {
                    if vs.alive(slot) {
                        let by = vs.wait_chain(slot).get(1).map(|&b| vs.vehicles[b].id as i64).unwrap_or(-1);
                        hist.entry(v.id).or_default().push(format!(
                            "{:?}/p{}/{:.1}/{:.2}/by{by}/cl{:?}",
                            v.why,
                            v.piece,
                            v.s_m,
                            v.v_mps,
                            vs.claimed(slot)
                        ));
                    }
                }
            }
        }
        if std::env::var("SWM_EVENTS").is_ok() {
            for e in sim.events() {
                if let SimEvent::DeadlockResolved { step, agents, how } = e {
                    eprintln!("deadlock step {step} {agents:?} {how}");
                }
            }
        }
        let vs = sim.vehicle_sim();
        let show: Vec<u64> =
            std::env::var("SWM_SHOW").unwrap_or_default().split(',').filter_map(|x| x.parse().ok()).collect();
        for id in show {
            eprintln!("history #{id}: {}", hist.get(&id).map(|h| h.join(" ")).unwrap_or_default());
        }
        for (slot, v) in vs.vehicles.iter().enumerate() {
            if v.stopped_s < min || !vs.alive(slot) {
                continue;
            }
            let parts = chain_text(vs, slot);
            eprintln!("{name} seed {seed}: {}", parts.join("  ->  "));
        }
    }
}

/// Diagnostics: red-light violations of one run with the state of the violator before and
/// after (`SWM_DIAG`, `SWM_SEED`).
#[test]
#[ignore]
fn diag_violations() {
    let Some((name, twin)) = diag_district() else { return };
    let n = diag_vehicles(&name);
    let seed: u64 = std::env::var("SWM_SEED").ok().and_then(|x| x.parse().ok()).unwrap_or(11);
    let mut sim = Simulation::new(Arc::new(twin), cfg(seed, n, 0.0)).unwrap();
    let mut prev: BTreeMap<u64, String> = BTreeMap::new();
    for _ in 0..6000 {
        sim.step();
        let vs = sim.vehicle_sim();
        for e in sim.events() {
            if let SimEvent::RedLightViolation { agent_id, step, lane } = e
                && *step == sim.step_index()
            {
                let v = vs.vehicles.iter().find(|v| v.id == *agent_id).unwrap();
                eprintln!(
                    "step {step} t {:.1} states {:?} #{agent_id} lane {lane} before [{}] now [{:?} p{} s{:.1} v{:.2} hold {:.1}]",
                    sim.time_s(),
                    [-0.1, 0.0, 0.1].map(|d| sim.signals().lane_state(*lane, sim.time_s() + d)),
                    prev.get(agent_id).cloned().unwrap_or_default(),
                    v.why,
                    v.piece,
                    v.s_m,
                    v.v_mps,
                    vs.net.hold_s[*lane as usize]
                );
            }
        }
        prev.clear();
        for (slot, v) in vs.vehicles.iter().enumerate() {
            if vs.alive(slot) {
                prev.insert(v.id, format!("{:?} p{} s{:.1} v{:.2}", v.why, v.piece, v.s_m, v.v_mps));
            }
        }
    }
}

/// Diagnostics: vehicle updates per second of the step loop on one thread, as `swm simulate`
/// measures them (records built, the callback's own time excluded), and a fingerprint of every
/// record, so that a pure speed-up can be checked to change nothing
/// (`SWM_DIAG=default|jamsil|yeouido`, `SWM_SEEDS=11..14`; `SWM_METRICS=1` also feeds a
/// [`MetricsAccumulator`] in the callback, as `swm simulate` does: its time is excluded, its
/// use of the caches is not).
#[test]
#[ignore]
fn diag_speed() {
    use std::hash::{Hash, Hasher};
    use std::time::Instant;
    let Some((name, twin)) = diag_district() else { return };
    let twin = Arc::new(twin);
    let (a, b) = diag_seeds();
    let n = diag_vehicles(&name);
    let (mut updates, mut loop_s) = (0u64, 0.0);
    let mut fp = std::collections::hash_map::DefaultHasher::new();
    for seed in a..=b {
        let mut sim = Simulation::new(twin.clone(), cfg(seed, n, 0.0)).unwrap();
        let mut metrics = std::env::var_os("SWM_METRICS").map(|_| MetricsAccumulator::new(&twin));
        let mut cb_s = 0.0;
        let t0 = Instant::now();
        sim.run(6000, &mut |step, recs| {
            let tc = Instant::now();
            if let Some(m) = metrics.as_mut() {
                m.push_step(step, recs);
            }
            for r in recs {
                updates += u64::from(r.kind.is_vehicle());
                (r.agent_id, r.x_m.to_bits(), r.y_m.to_bits(), r.heading_rad.to_bits(), r.speed_mps.to_bits())
                    .hash(&mut fp);
            }
            cb_s += tc.elapsed().as_secs_f64();
        });
        loop_s += t0.elapsed().as_secs_f64() - cb_s;
    }
    eprintln!(
        "{name} SPEED seeds {a}..={b}: {:.0} vehicle updates/s, fingerprint {:016x}",
        updates as f64 / loop_s,
        fp.finish()
    );
}

/// Diagnostics: every new pedestrian-vehicle contact of one run with both agents' state
/// (`SWM_DIAG`, `SWM_SEED`, `SWM_PEDS` pedestrians, 300 s).
#[test]
#[ignore]
fn diag_ped_contacts() {
    let Some((name, twin)) = diag_district() else { return };
    let n = diag_vehicles(&name);
    let seed: u64 = std::env::var("SWM_SEED").ok().and_then(|x| x.parse().ok()).unwrap_or(11);
    let peds: u32 = std::env::var("SWM_PEDS").ok().and_then(|x| x.parse().ok()).unwrap_or(200);
    let mut c = cfg(seed, n, 0.0);
    c.pedestrians = peds;
    let mut sim = Simulation::new(Arc::new(twin), c).unwrap();
    let mut prev: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for step in 1..=3000 {
        sim.step();
        let recs = sim.records();
        let mut now = BTreeSet::new();
        for p in recs.iter().filter(|r| !r.kind.is_vehicle()) {
            for v in recs.iter().filter(|r| r.kind.is_vehicle()) {
                if (v.x_m - p.x_m).hypot(v.y_m - p.y_m) > 10.0 {
                    continue;
                }
                let b = OrientedBox::of_record(v);
                if b.disc_depth_m([p.x_m, p.y_m], swm_sim::metrics::PEDESTRIAN_RADIUS_M) > 1e-3 {
                    now.insert((p.agent_id, v.agent_id));
                    if !prev.contains(&(p.agent_id, v.agent_id)) {
                        let on_crossing = !sim.vehicle_sim().crossings_near(&[[p.x_m, p.y_m]], 1.5).is_empty();
                        let key = format!(
                            "vehicle {} ped {} on crossing {on_crossing}",
                            if v.speed_mps > 0.5 { "moving" } else { "standing" },
                            if p.speed_mps > 0.2 { "walking" } else { "standing" }
                        );
                        *kinds.entry(key.clone()).or_default() += 1;
                        eprintln!(
                            "step {step}: {key}: ped #{} ({:.1}, {:.1}) v {:.1} h {:.2}; vehicle #{} ({:.1}, {:.1}) v {:.1} lane {:?} signal {:?}",
                            p.agent_id,
                            p.x_m,
                            p.y_m,
                            p.speed_mps,
                            p.heading_rad,
                            v.agent_id,
                            v.x_m,
                            v.y_m,
                            v.speed_mps,
                            v.lane,
                            p.signal
                        );
                    }
                }
            }
        }
        prev = now;
    }
    for (k, n) in kinds {
        eprintln!("{name} TOTAL {k}: {n}");
    }
}

/// Diagnostics: metrics of 600 s runs with pedestrians (`SWM_DIAG`, `SWM_SEEDS`, `SWM_PEDS`).
#[test]
#[ignore]
fn diag_ped_metrics() {
    let Some((name, twin)) = diag_district() else { return };
    let twin = Arc::new(twin);
    let n = diag_vehicles(&name);
    let (a, b) = diag_seeds();
    let peds: u32 = std::env::var("SWM_PEDS").ok().and_then(|x| x.parse().ok()).unwrap_or(200);
    let out: Vec<String> = (a..=b)
        .into_par_iter()
        .map(|seed| {
            let mut c = cfg(seed, n, 0.0);
            c.pedestrians = peds;
            let mut acc = MetricsAccumulator::new(&twin);
            let mut sim = Simulation::new(twin.clone(), c).unwrap();
            let mut why: BTreeMap<String, usize> = BTreeMap::new();
            for step in 1..=6000 {
                sim.step();
                acc.push_step(step, &sim.records());
                if step % 100 == 0 {
                    let vs = sim.vehicle_sim();
                    for (slot, v) in vs.vehicles.iter().enumerate() {
                        if vs.alive(slot) && v.stopped_s > 60.0 {
                            *why.entry(format!("{:?}", v.why)).or_default() += 1;
                        }
                    }
                }
            }
            let m = acc.finish(sim.events());
            format!(
                "{name} seed {seed}: ped collisions {} vehicle collisions {} gridlocked {} stopped > 120 s {} mean speed {:.2} arrivals {}; stopped > 60 s by reason {why:?}",
                m.pedestrian_collisions, m.vehicle_collisions, m.gridlocked_vehicles, m.long_stopped_vehicles, m.mean_speed_mps, m.arrivals
            )
        })
        .collect();
    for l in out {
        eprintln!("{l}");
    }
}

/// Diagnostics: vehicles waiting long for a pedestrian, with the pedestrians near them
/// (`SWM_DIAG`, `SWM_SEED`).
#[test]
#[ignore]
fn diag_ped_waits() {
    let Some((name, twin)) = diag_district() else { return };
    let twin = Arc::new(twin);
    let n = diag_vehicles(&name);
    let seed: u64 = std::env::var("SWM_SEED").ok().and_then(|x| x.parse().ok()).unwrap_or(11);
    let mut c = cfg(seed, n, 0.0);
    c.pedestrians = 200;
    let mut sim = Simulation::new(twin.clone(), c).unwrap();
    for step in 1..=6000 {
        sim.step();
        if step % 1000 != 0 {
            continue;
        }
        let recs = sim.records();
        let vs = sim.vehicle_sim();
        for r in recs.iter().filter(|r| r.kind.is_vehicle()) {
            let Some((slot, v)) = vs.vehicles.iter().enumerate().find(|(s, v)| vs.alive(*s) && v.id == r.agent_id)
            else {
                continue;
            };
            let _ = slot;
            if v.why != swm_sim::vehicle::Wait::Pedestrian || v.stopped_s < 60.0 {
                continue;
            }
            let peds: Vec<String> = recs
                .iter()
                .filter(|p| !p.kind.is_vehicle() && (p.x_m - r.x_m).hypot(p.y_m - r.y_m) < 12.0)
                .map(|p| {
                    let near_crossing = !vs.crossings_near(&[[p.x_m, p.y_m]], 3.0).is_empty();
                    format!(
                        "#{} ({:.1},{:.1}) v {:.2} crossing {near_crossing} signal {:?}",
                        p.agent_id, p.x_m, p.y_m, p.speed_mps, p.signal
                    )
                })
                .collect();
            eprintln!(
                "step {step}: vehicle #{} ({:.1},{:.1}) h {:.2} lane {:?} stopped {:.0} s; peds: {}",
                v.id,
                r.x_m,
                r.y_m,
                r.heading_rad,
                r.lane,
                v.stopped_s,
                peds.join("; ")
            );
        }
    }
}

/// Diagnostics: the deadlock resolutions of one run (`SWM_DIAG`, `SWM_SEEDS`), with each
/// member's state when resolved (`SWM_AGENT` filters by agent).
#[test]
#[ignore]
fn diag_deadlocks() {
    let Some((name, twin)) = diag_district() else { return };
    let twin = Arc::new(twin);
    let (a, _) = diag_seeds();
    let n = diag_vehicles(&name);
    let agent: Option<u64> = std::env::var("SWM_AGENT").ok().and_then(|x| x.parse().ok());
    let mut sim = Simulation::new(twin.clone(), cfg(a, n, 0.0)).unwrap();
    let mut seen = 0;
    for _ in 1..=6000 {
        sim.step();
        let evs = sim.events();
        for e in &evs[seen..] {
            if let SimEvent::DeadlockResolved { step, agents, how } = e {
                if agent.is_some_and(|x| !agents.contains(&x)) {
                    continue;
                }
                let vs = sim.vehicle_sim();
                let states: Vec<String> = agents
                    .iter()
                    .filter_map(|id| vs.vehicles.iter().enumerate().find(|(s, v)| v.id == *id && vs.alive(*s)))
                    .map(|(s, v)| {
                        let by = vs.wait_chain(s).get(1).map(|&b| vs.vehicles[b].id as i64).unwrap_or(-1);
                        format!(
                            "#{} {:?} p{} s{:.1} v{:.1} by{by} cl{:?}",
                            v.id,
                            v.why,
                            v.piece,
                            v.s_m,
                            v.v_mps,
                            vs.claimed(s)
                        )
                    })
                    .collect();
                eprintln!("{name} step {step}: {how}: {}", states.join(" | "));
            }
        }
        seen = evs.len();
    }
}

/// A two-lane road dropping to one lane: both lanes merge into the one.
fn lane_drop() -> Twin {
    let two: &[(&str, &str)] = &[("highway", "primary"), ("lanes", "2"), ("oneway", "yes"), ("maxspeed", "50")];
    let one: &[(&str, &str)] = &[("highway", "primary"), ("lanes", "1"), ("oneway", "yes"), ("maxspeed", "50")];
    twin_from_osm(
        "lanedrop",
        &[(1, -400.0, 0.0, &[]), (2, 0.0, 0.0, &[]), (3, 400.0, 0.0, &[])],
        &[(&[1, 2], two), (&[2, 3], one)],
    )
}

/// At a lane drop under more demand than the single lane carries, neither lane is
/// starved: a vehicle kept at the merge by the other lane's stream claims its way (see
/// `CLAIM_AFTER_S`), so no vehicle stands for minutes while the other lane flows.
#[test]
fn a_lane_drop_starves_neither_lane() {
    let twin = Arc::new(lane_drop());
    let (ck, sim) = run_checked(twin, cfg(6, 60, 0.0), 4000);
    for line in sim.vehicle_sim().stuck_report(45.0) {
        eprintln!("lane drop: {line}");
    }
    eprintln!("lane drop: max stopped {:.0} s, arrived {}", ck.max_stopped_s, ck.arrived);
    assert_no_collisions(&ck);
    assert!(ck.max_stopped_s < 90.0, "stopped {}", ck.max_stopped_s);
    assert!(ck.arrived > 40, "arrived {}", ck.arrived);
}

/// Diagnostics: every lane into or out of the junctions `SWM_JUNCTIONS=a,b` (`SWM_DIAG`).
#[test]
#[ignore]
fn diag_junction_lanes() {
    let Some((_, twin)) = diag_district() else { return };
    let js: Vec<u32> =
        std::env::var("SWM_JUNCTIONS").unwrap_or_default().split(',').filter_map(|x| x.parse().ok()).collect();
    for j in js {
        eprintln!("junction {j} at {:?}", twin.junctions[j as usize].center);
        for (i, l) in twin.lanes.iter().enumerate() {
            if l.from_junction == Some(j) || l.to_junction == Some(j) {
                let conns: Vec<(u32, String)> = twin
                    .lane_connections
                    .iter()
                    .filter(|c| c.from_lane == i as u32)
                    .map(|c| (c.to_lane, format!("{:?}", c.turn)))
                    .collect();
                eprintln!(
                    "  lane {i} {} {:?} {:?} idx {}/{} len {:.0} from {:?} to {:?} src {:?} -> {conns:?}",
                    if l.to_junction == Some(j) { "IN " } else { "OUT" },
                    l.name,
                    l.road_class,
                    l.index_from_right,
                    l.lanes_in_direction,
                    l.length_m,
                    l.from_junction,
                    l.to_junction,
                    l.source
                );
            }
        }
    }
}
