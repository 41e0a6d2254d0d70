//! Hand-built twins and scenarios for the evaluation tests.
#![allow(dead_code)]

use swm_dataset::Scenario;
use swm_sim::{AgentKind, SignalState, TrajectoryRecord};
use swm_twin::Twin;

use swm_ingest::osm_xml::FixtureTags as Tags;

/// Builds a twin from OSM XML nodes `(id, x_m, y_m, tags)` and ways `(node ids, tags)`.
pub fn twin_from_osm(name: &str, nodes: &[(i64, f64, f64, Tags)], ways: &[(&[i64], Tags)]) -> Twin {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.osm"));
    std::fs::write(&path, swm_ingest::osm_xml::document_from_local_m(nodes, ways)).unwrap();
    swm_ingest::ingest_paths(&[path], &Default::default()).unwrap().0
}

/// An 800 m east-west road with two lanes each way, centred on y = 0.
pub fn straight_road() -> Twin {
    twin_from_osm(
        "straight",
        &[(1, -400.0, 0.0, &[]), (2, 400.0, 0.0, &[])],
        &[(&[1, 2], &[("highway", "secondary"), ("lanes", "4"), ("maxspeed", "50")])],
    )
}

/// The x of the middle of [`straight_road`] (the twin's origin is not at its middle).
pub fn mid_x(twin: &Twin) -> f64 {
    let xs = twin.lanes.iter().flat_map(|l| l.centerline.iter().map(|p| p[0]));
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    (lo + hi) / 2.0
}

/// A signalised crossroads of two four-lane roads.
pub fn crossroads() -> Twin {
    let road: Tags = &[("highway", "secondary"), ("lanes", "4"), ("maxspeed", "50")];
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

/// The y of the centre line of the rightmost eastbound lane of [`straight_road`].
pub fn eastbound_lane_y(twin: &Twin) -> f64 {
    let l = twin
        .lanes
        .iter()
        .find(|l| l.centerline.last().unwrap()[0] > l.centerline[0][0] && l.index_from_right == 0)
        .expect("an eastbound lane");
    l.centerline[0][1]
}

pub fn rec(agent_id: u64, kind: AgentKind, frame: i32, x: f64, y: f64, heading: f64, speed: f64) -> TrajectoryRecord {
    let (length_m, width_m) = match kind {
        AgentKind::Pedestrian => (0.5, 0.5),
        AgentKind::Bus => (12.0, 2.5),
        AgentKind::Truck => (9.0, 2.5),
        AgentKind::Car => (4.5, 1.8),
    };
    TrajectoryRecord {
        agent_id,
        kind,
        length_m,
        width_m,
        step: (100 + frame) as u32,
        time_s: 10.0 + f64::from(frame) * 0.1,
        x_m: x,
        y_m: y,
        z_m: 0.0,
        heading_rad: heading,
        speed_mps: speed,
        accel_mps2: 0.0,
        lane: None,
        signal: None,
    }
}

/// A scenario from per-agent tracks of `(frame, record)` (agent ids are the track index).
pub fn scenario(id: u64, tracks: Vec<Vec<(i32, TrajectoryRecord)>>) -> Scenario {
    let mut rows: Vec<(i32, TrajectoryRecord)> = tracks
        .into_iter()
        .enumerate()
        .flat_map(|(a, t)| {
            t.into_iter().map(move |(f, mut r)| {
                r.agent_id = a as u64;
                (f, r)
            })
        })
        .collect();
    rows.sort_by_key(|(f, r)| (*f, r.agent_id));
    let agents: Vec<u64> = (0..=rows.iter().map(|(_, r)| r.agent_id).max().unwrap_or(0)).collect();
    Scenario { scenario_id: id, center_agent_id: 0, current_time_s: 10.0, current_step: 100, agents, rows }
}

/// A track moving from `(x0, y)` along x at `v` m/s (negative: westbound), frames `-h..=f`.
pub fn straight_track(kind: AgentKind, x0: f64, y: f64, v: f64, h: i32, f: i32) -> Vec<(i32, TrajectoryRecord)> {
    let heading = if v < 0.0 { std::f64::consts::PI } else { 0.0 };
    (-h..=f).map(|k| (k, rec(0, kind, k, x0 + v * 0.1 * f64::from(k), y, heading, v.abs()))).collect()
}

/// A point at arc length `s` along a polyline, extended straight past its ends.
pub fn point_at(line: &[[f64; 3]], s: f64) -> ([f64; 2], f64) {
    let mut acc = 0.0;
    for (i, w) in line.windows(2).enumerate() {
        let len = (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]);
        if s <= acc + len || i == line.len() - 2 {
            let t = (s - acc) / len;
            let h = (w[1][1] - w[0][1]).atan2(w[1][0] - w[0][0]);
            return ([w[0][0] + t * (w[1][0] - w[0][0]), w[0][1] + t * (w[1][1] - w[0][1])], h);
        }
        acc += len;
    }
    panic!("degenerate line");
}

/// A car driving along `lane` of `twin` at 10 m/s, crossing the stop line between frames 5
/// and 6, with `signal` on every record while on the lane.
pub fn car_through_stop_line(twin: &Twin, lane: u32, signal: SignalState) -> Vec<(i32, TrajectoryRecord)> {
    let l = &twin.lanes[lane as usize];
    let stop = l.stop_line.as_ref().expect("stop line").s_m;
    (-10..=30)
        .map(|f| {
            let s = stop - 5.25 + f64::from(f);
            let (p, h) = point_at(&l.centerline, s);
            let mut r = rec(0, AgentKind::Car, f, p[0], p[1], h, 10.0);
            if s <= l.length_m {
                r.lane = Some(lane);
                r.signal = Some(signal);
            }
            (f, r)
        })
        .collect()
}
