//! The twin built from real Seoul OpenStreetMap extracts (`../shared/data/seoul/`).
//!
//! These tests need the shared data: under `CI=true` they fail when it is missing,
//! elsewhere they print why they skip. `SWM_SHARED_DATA` overrides where it is looked for.

use std::collections::BTreeSet;
use swm::ingest::{IngestOptions, ingest_paths, shared_data::require_shared_data};
use swm::twin::{HeightSource, Twin, analysis::lane_components};

fn build(name: &str, options: &IngestOptions) -> Option<Twin> {
    let path = require_shared_data(&format!("seoul/{name}"))?;
    let (twin, _report) = ingest_paths(&[path], options).expect("ingest succeeds");
    Some(twin)
}

fn yeouido_core() -> IngestOptions {
    // The dense core of the island (see the data's MANIFEST).
    IngestOptions { bbox_wgs84: Some([126.915, 37.515, 126.945, 37.535]), ..Default::default() }
}

#[test]
fn yeouido_has_every_building_and_parc1_at_322_m() {
    let Some(twin) = build("yeouido.osm.pbf", &IngestOptions::default()) else { return };
    let sources: BTreeSet<String> = twin.buildings.iter().map(|b| b.source.to_string()).collect();
    assert_eq!(sources.len(), twin.buildings.len(), "one twin building per OSM building");
    assert_eq!(twin.buildings.len(), 592, "all 592 Yeouido buildings");
    assert_eq!(twin.buildings_with_measured_height(), 462, "462 buildings carry a height tag");
    let parc1 = twin.buildings.iter().find(|b| b.name.as_deref() == Some("파크원 타워1")).expect("Parc.1 Tower 1");
    assert_eq!(parc1.height_m, 322.0);
    assert_eq!(parc1.height_source, HeightSource::Tagged);
    let ifc3 = twin.buildings.iter().map(|b| b.height_m).filter(|h| (*h - 283.0).abs() < 0.5).count();
    assert!(ifc3 >= 1, "Three IFC at 283 m");
    // building:part volumes: 126 parts in the file; each becomes a part volume.
    assert!(twin.building_parts.len() >= 126, "{} parts", twin.building_parts.len());
    // The height model is calibrated on Yeouido's tagged buildings: 4 m per level.
    assert!((twin.height_model.overall.m_per_level - 4.0).abs() < 0.25, "{:?}", twin.height_model.overall);
    // Every untagged building got an estimate and says so.
    let estimated = twin.buildings.iter().filter(|b| b.height_source == HeightSource::Estimated).count();
    let no_info = twin.buildings.len()
        - 462
        - twin
            .buildings
            .iter()
            .filter(|b| b.height_source != HeightSource::Tagged && b.height_source != HeightSource::Estimated)
            .count();
    assert_eq!(estimated, no_info);
    assert!(twin.buildings.iter().all(|b| b.height_m > 0.0 && b.height_m.is_finite()));
}

#[test]
fn yeouido_core_has_lanes_walks_signals_and_water() {
    let Some(twin) = build("yeouido.osm.pbf", &yeouido_core()) else { return };
    assert!(twin.lanes.len() > 500, "{} lanes", twin.lanes.len());
    assert!(twin.lane_connections.len() > twin.lanes.len() / 2);
    assert!(twin.signals.iter().any(|s| !s.guessed), "tagged signals are used");
    assert!(twin.signals.iter().any(|s| s.guessed), "large junctions of major roads get guessed signals");
    assert!(twin.crossings() >= 50, "{} crossings", twin.crossings());
    assert!(twin.walk_edges.iter().any(|e| e.signalled), "signalled crossings");
    assert!(twin.land_cover.iter().any(|l| l.kind == swm::twin::LandKind::Water), "the Han river");
    assert!(twin.land_cover.iter().any(|l| l.kind == swm::twin::LandKind::Park), "Yeouido park");
    // Lanes are metric and consistent.
    for l in &twin.lanes {
        assert!(l.length_m >= 0.0 && l.width_m >= 2.5 && l.speed_limit_mps > 0.0);
        assert!(l.centerline.len() >= 2);
    }
    // Every crossing joins two distinct walk nodes.
    for e in twin.walk_edges.iter().filter(|e| e.kind == swm::twin::WalkKind::Crossing) {
        assert_ne!(e.from, e.to);
    }
}

/// The Han River multipolygon (relation/152336) is cut by the extract: 22 of its 25 member
/// ways are missing, so its chains stay open. Closed along the extract's edge, it covers the
/// river north of the island inside the extract (lat up to 37.535), not the island.
#[test]
fn yeouido_han_river_is_closed_along_the_extract_edge() {
    use swm::twin::{LandGeometry, LandKind};
    let Some(twin) = build("yeouido.osm.pbf", &IngestOptions::default()) else { return };
    let water: Vec<(String, &swm::twin::Polygon)> = twin
        .land_cover
        .iter()
        .filter(|l| l.kind == LandKind::Water)
        .filter_map(|l| match &l.geometry {
            LandGeometry::Area(p) => Some((l.source.to_string(), p)),
            LandGeometry::Line { .. } => None,
        })
        .collect();
    let han_m2: f64 = water.iter().filter(|(s, _)| s == "relation/152336").map(|(_, p)| p.area_m2()).sum();
    let total_m2: f64 = water.iter().map(|(_, p)| p.area_m2()).sum();
    assert!(han_m2 > 0.9e6, "the Han inside the extract: {han_m2:.0} m2");
    assert!(total_m2 > 1.0e6, "water polygons: {total_m2:.0} m2");
    let frame = twin.meta.frame();
    let in_water = |lat: f64, lon: f64| {
        let p = frame.enu_from_wgs84(swm::core::LatLon::new(lat, lon));
        water.iter().any(|(_, w)| w.contains(p))
    };
    assert!(in_water(37.532, 126.935), "the river between Yeouido and Mapo");
    assert!(!in_water(37.5255, 126.925), "Yeouido's centre is land");
    assert!(!in_water(37.5215, 126.924), "Yeouido park is land");
}

#[test]
fn jamsil_xml_from_overpass_and_pbf_give_the_same_twin() {
    let options = IngestOptions { name: Some("jamsil".into()), ..Default::default() };
    let (Some(mut xml), Some(mut pbf)) = (build("jamsil-overpass.osm", &options), build("jamsil.osm.pbf", &options))
    else {
        return;
    };
    xml.meta.sources.clear();
    pbf.meta.sources.clear();
    let (a, b) = (swm::twin::write_swt_bytes(&xml).unwrap(), swm::twin::write_swt_bytes(&pbf).unwrap());
    assert!(a == b, "the Overpass XML and the PBF of Jamsil build byte-identical twins");
}

#[test]
fn jamsil_lane_graph_is_one_network_and_lotte_tower_is_555_m() {
    let Some(twin) = build("jamsil.osm.pbf", &IngestOptions::default()) else { return };
    assert_eq!(twin.buildings.len(), 1358);
    assert_eq!(twin.buildings_with_measured_height(), 646);
    let lotte = twin.buildings.iter().max_by(|a, b| a.height_m.total_cmp(&b.height_m)).unwrap();
    assert_eq!(lotte.height_m, 555.0, "Lotte World Tower");
    assert_eq!(lotte.source.to_string(), "relation/8824257");
    let c = lane_components(&twin);
    assert!(c.largest_share > 0.8, "main strongly connected component holds most lanes: {}", c.largest_share);
    assert!(c.largest_weak_share > 0.98, "{}", c.largest_weak_share);
    assert!((twin.height_model.overall.m_per_level - 3.0).abs() < 0.25, "Jamsil: 3 m per level");
    assert!(twin.signals.len() >= 20, "{} signals", twin.signals.len());
}

#[test]
fn ingesting_twice_gives_byte_identical_files() {
    let Some(a) = build("yeouido.osm.pbf", &IngestOptions::default()) else { return };
    let Some(b) = build("yeouido.osm.pbf", &IngestOptions::default()) else { return };
    assert!(swm::twin::write_swt_bytes(&a).unwrap() == swm::twin::write_swt_bytes(&b).unwrap());
}

#[test]
fn twin_file_round_trips_real_data() {
    let Some(twin) = build("jamsil.osm.pbf", &IngestOptions::default()) else { return };
    let bytes = swm::twin::write_swt_bytes(&twin).unwrap();
    let back = swm::twin::read_swt_bytes(&bytes, "jamsil.swt").unwrap();
    assert_eq!(back, twin);
}
