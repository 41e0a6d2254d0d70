//! Ingest of small hand-written fixtures (`tests/fixtures/`): exact checks of the builder's
//! rules, and a snapshot of the whole result (`tests/snapshots/`). Run with
//! `SWM_UPDATE_SNAPSHOTS=1` to accept a deliberate change, then review the diff.

use serde_json::json;
use std::path::{Path, PathBuf};
use swm::ingest::{IngestOptions, ingest_paths};
use swm::twin::{Control, HeightSource, StopKind, Turn, Twin, WalkKind};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn junction_twin() -> Twin {
    let (twin, report) = ingest_paths(&[fixture("junction.osm.xml")], &IngestOptions::default()).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    twin
}

fn lane_by(twin: &Twin, way: &str, forward: bool, index_from_right: u8) -> u32 {
    twin.lanes
        .iter()
        .position(|l| l.source.to_string() == way && l.forward == forward && l.index_from_right == index_from_right)
        .unwrap_or_else(|| panic!("no lane {way} forward={forward} r{index_from_right}")) as u32
}

#[test]
fn buildings_heights_parts_and_courtyards() {
    let t = junction_twin();
    assert_eq!(t.buildings.len(), 5);
    let by = |src: &str| t.buildings.iter().find(|b| b.source.to_string() == src).unwrap();
    assert_eq!(by("way/20").height_m, 45.0);
    assert_eq!(by("way/20").height_source, HeightSource::Tagged);
    let apartments = by("way/21");
    assert_eq!(apartments.height_source, HeightSource::Levels);
    // Calibration: only two buildings carry height or levels, fewer than the minimum
    // samples, so the fallback of 3.5 m per level applies.
    assert!((apartments.height_m - 35.0).abs() < 1e-9, "{}", apartments.height_m);
    assert_eq!(by("way/22").height_source, HeightSource::Estimated);
    let outline = by("way/23");
    assert_eq!(outline.parts.len(), 1);
    assert!(outline.parts_replace_outline);
    // Parts replace the outline in 3D, so an outline without a measured height takes the
    // tallest part's (its own 3 levels describe the podium, not the tower).
    assert_eq!(outline.height_source, HeightSource::Parts);
    assert!((outline.height_m - 70.0).abs() < 1e-9);
    let part = &t.building_parts[outline.parts[0] as usize];
    assert_eq!(part.parent, Some(t.buildings.iter().position(|b| b.source.to_string() == "way/23").unwrap() as u32));
    assert!((part.height_m - 70.0).abs() < 1e-9);
    let school = by("relation/30");
    assert_eq!(school.footprint.holes.len(), 1, "courtyard");
    assert!((school.footprint.area_m2() - (1600.0 - 400.0)).abs() < 15.0, "{}", school.footprint.area_m2());
    assert_eq!(school.height_m, 16.0);
}

#[test]
fn lanes_connections_restrictions_and_control() {
    let t = junction_twin();
    // Primary: 2 + 2 lanes on each side of the junction; residential: 1 + 1 south, 1 north.
    assert_eq!(t.lanes.len(), 11);
    let east_in = lane_by(&t, "way/10", true, 1);
    assert_eq!(t.lanes[east_in as usize].turns, vec![Turn::Left], "turn:lanes left|through;right");
    assert_eq!(t.lanes[lane_by(&t, "way/10", true, 0) as usize].turns, vec![Turn::Straight, Turn::Right]);
    assert!((t.lanes[lane_by(&t, "way/11", true, 0) as usize].speed_limit_mps - 60.0 / 3.6).abs() < 1e-9);
    assert!((t.lanes[lane_by(&t, "way/12", true, 0) as usize].speed_limit_mps - 30.0 / 3.6).abs() < 1e-9);
    let centre = t.junctions.iter().position(|j| j.source.to_string() == "node/1").unwrap();
    assert_eq!(t.junctions[centre].control, Control::SignalTagged);
    // The left-turning lane goes left (north); the right lane goes straight and right.
    let from = |l: u32| t.lane_connections.iter().filter(move |c| c.from_lane == l);
    assert!(from(east_in).all(|c| matches!(c.turn, Turn::Left | Turn::SlightLeft | Turn::SharpLeft)));
    assert!(from(east_in).any(|c| t.lanes[c.to_lane as usize].source.to_string() == "way/13"));
    // No left turn from the residential road (northbound) into the primary westbound.
    let north_in = lane_by(&t, "way/12", true, 0);
    assert!(!from(north_in).any(|c| t.lanes[c.to_lane as usize].source.to_string() == "way/10"), "restriction");
    assert!(from(north_in).any(|c| t.lanes[c.to_lane as usize].source.to_string() == "way/11"), "right turn allowed");
    // Nobody drives against the one-way.
    assert!(!t.lane_connections.iter().any(|c| {
        let l = &t.lanes[c.to_lane as usize];
        l.source.to_string() == "way/13" && !l.forward
    }));
    // Stop lines at the signal on every approach.
    for &l in &t.junctions[centre].incoming_lanes {
        let lane = &t.lanes[l as usize];
        assert_eq!(lane.stop_line.as_ref().map(|s| s.kind), Some(StopKind::Signal));
        assert!(lane.signal.is_some());
    }
    assert_eq!(t.signals.len(), 1);
    assert!(!t.signals[0].guessed);
}

#[test]
fn walk_graph_sidewalks_and_crossings() {
    let t = junction_twin();
    let count = |k: WalkKind| t.walk_edges.iter().filter(|e| e.kind == k).count();
    assert!(count(WalkKind::Sidewalk) >= 4, "primary roads get sidewalks on both sides");
    assert!(count(WalkKind::SharedRoad) >= 2, "residential streets are walked on");
    // Two signalled crossings across the primary's arms at the junction, plus the mapped one.
    assert_eq!(t.walk_edges.iter().filter(|e| e.kind == WalkKind::Crossing && e.signalled).count(), 2);
    let mapped = t.walk_edges.iter().filter(|e| e.kind == WalkKind::Crossing && e.source.to_string() == "way/14");
    assert_eq!(mapped.count(), 2, "the mapped crossing way, split at the road");
    // The mapped crossing's ends are joined to the sidewalks on both sides.
    let ends: Vec<u32> = t
        .walk_nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.source.to_string().as_str(), "node/7" | "node/8"))
        .map(|(i, _)| i as u32)
        .collect();
    assert_eq!(ends.len(), 2);
    for e in ends {
        let degree = t.walk_edges.iter().filter(|w| w.from == e || w.to == e).count();
        assert_eq!(degree, 2, "crossing end joined to a sidewalk");
    }
}

/// A summary of everything the builder decided, compared with a committed snapshot.
fn summary(t: &Twin) -> serde_json::Value {
    let r = |x: f64| (x * 100.0).round() / 100.0;
    json!({
        "buildings": t.buildings.iter().map(|b| json!({
            "source": b.source.to_string(), "kind": b.kind, "height_m": r(b.height_m),
            "height_source": b.height_source.as_str(), "area_m2": r(b.footprint.area_m2()),
            "parts": b.parts.len(), "parts_replace_outline": b.parts_replace_outline,
        })).collect::<Vec<_>>(),
        "lanes": t.lanes.iter().map(|l| json!({
            "source": l.source.to_string(), "forward": l.forward, "r": l.index_from_right,
            "length_m": r(l.length_m), "width_m": l.width_m, "speed_kmh": r(l.speed_limit_mps * 3.6),
            "turns": l.turns.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "stop": l.stop_line.as_ref().map(|s| format!("{:?}", s.kind)),
        })).collect::<Vec<_>>(),
        "connections": t.lane_connections.iter().map(|c| format!("{}->{} {}", c.from_lane, c.to_lane, c.turn.as_str())).collect::<Vec<_>>(),
        "junctions": t.junctions.iter().map(|j| format!("{} {}", j.source, j.control.as_str())).collect::<Vec<_>>(),
        "walk_edges": t.walk_edges.iter().map(|e| format!("{} {}-{} {} {:.1}m", e.kind.as_str(), e.from, e.to, e.source, e.length_m)).collect::<Vec<_>>(),
        "land_cover": t.land_cover.iter().map(|l| format!("{} {}", l.kind.as_str(), l.source)).collect::<Vec<_>>(),
    })
}

#[test]
fn junction_fixture_snapshot() {
    let got = serde_json::to_string_pretty(&summary(&junction_twin())).unwrap() + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/junction.json");
    if std::env::var("SWM_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing snapshot {}; run with SWM_UPDATE_SNAPSHOTS=1", path.display()));
    if got != want {
        let first = got.lines().zip(want.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "ingest of junction.osm.xml changed at line {}:\n  got:  {}\n  want: {}\n(SWM_UPDATE_SNAPSHOTS=1 accepts it)",
            first + 1,
            got.lines().nth(first).unwrap_or(""),
            want.lines().nth(first).unwrap_or("")
        );
    }
}

/// Where four lanes carry on as one (a straight one-way road), the lanes are cut back so
/// that every connection tapers: it runs at least `TAPER_LENGTH_PER_SHIFT` metres along per
/// metre of sideways shift and never turns more than a lane change would. (Before, the lanes
/// ended at the node and the outer connections jumped 5 m sideways within a metre.)
#[test]
fn lanes_that_do_not_line_up_taper_into_each_other() {
    let (twin, report) = ingest_paths(&[fixture("lane_drop.osm.xml")], &IngestOptions::default()).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let four: Vec<u32> = (0..4).map(|r| lane_by(&twin, "way/10", true, r)).collect();
    let one = lane_by(&twin, "way/11", true, 0);
    let conns: Vec<_> = twin.lane_connections.iter().filter(|c| c.to_lane == one).collect();
    assert_eq!(conns.len(), 4, "every lane carries on into the one");
    for c in conns {
        assert!(four.contains(&c.from_lane));
        let (p0, p1) = (c.path[0], c.path[c.path.len() - 1]);
        let shift_m = (p1[1] - p0[1]).abs();
        let along_m = p1[0] - p0[0];
        assert!(
            along_m >= swm::ingest::build::roads::TAPER_LENGTH_PER_SHIFT * shift_m * 0.99,
            "lane {}: {along_m:.1} m along for {shift_m:.2} m sideways",
            c.from_lane
        );
        for w in c.path.windows(2) {
            let heading = (w[1][1] - w[0][1]).atan2(w[1][0] - w[0][0]);
            assert!(heading.abs() < 0.25, "lane {}: heading {heading:.2} rad on the connection", c.from_lane);
        }
    }
}
