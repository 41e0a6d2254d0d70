//! One twin from a mix of inputs: GeoJSON in a Korean CRS with building-register attributes,
//! GeoJSON roads, hand-written OSM XML, and an SRTM DEM. Heights sit on the terrain.

use std::path::{Path, PathBuf};
use swm::ingest::{IngestOptions, VectorMapping, ingest_paths};
use swm::twin::{HeightSource, Terrain};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A synthetic 3-arc-second SRTM tile N37E126 with a 100 m hill at 37.5250 N, 126.9260 E on
/// a 20 m plain.
fn write_hgt(dir: &Path) -> PathBuf {
    let n = 1201usize;
    let mut bytes = Vec::with_capacity(n * n * 2);
    for row in 0..n {
        let lat = 38.0 - row as f64 / (n - 1) as f64;
        for col in 0..n {
            let lon = 126.0 + col as f64 / (n - 1) as f64;
            let d2 = ((lat - 37.525) / 0.004).powi(2) + ((lon - 126.926) / 0.005).powi(2);
            let h = (20.0 + 100.0 * (-d2).exp()).round() as i16;
            bytes.extend_from_slice(&h.to_be_bytes());
        }
    }
    let path = dir.join("N37E126.hgt");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn geojson_in_epsg5186_with_register_attributes_osm_and_a_dem_make_one_twin() {
    let dir = tempfile::tempdir().unwrap();
    let hgt = write_hgt(dir.path());
    let options = IngestOptions {
        dems: vec![hgt],
        vector: VectorMapping {
            height_attributes: vec!["HEIGHT".into()],
            levels_attributes: vec!["GRND_FLR".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let inputs = [fixture("buildings_5186.geojson"), fixture("roads.geojson"), fixture("junction.osm.xml")];
    let (twin, report) = ingest_paths(&inputs, &options).unwrap();
    assert_eq!(report.inputs.len(), 4, "three inputs and the DEM: {:?}", report.inputs);

    // GeoJSON buildings: named by feature, heights from HEIGHT, else GRND_FLR.
    let from_register: Vec<_> =
        twin.buildings.iter().filter(|b| b.source.to_string().starts_with("feature/0/")).collect();
    assert_eq!(from_register.len(), 3);
    let tower = from_register.iter().find(|b| b.name.as_deref() == Some("여의도 타워")).unwrap();
    assert_eq!((tower.height_m, tower.height_source), (32.5, HeightSource::Tagged));
    let shops = from_register.iter().find(|b| b.name.as_deref() == Some("상가")).unwrap();
    assert_eq!(shops.height_source, HeightSource::Levels, "HEIGHT 0 means unknown: GRND_FLR decides");
    assert_eq!(shops.levels, Some(3.0));
    let court = from_register.iter().find(|b| b.footprint.holes.len() == 1).expect("courtyard from EPSG:5186");
    assert!((court.footprint.area_m2() - 3200.0).abs() < 5.0, "{}", court.footprint.area_m2());
    // The OSM fixture's buildings are there too, and the GeoJSON roads became lanes.
    assert!(twin.buildings.iter().any(|b| b.source.to_string() == "way/20"));
    assert!(twin.lanes.iter().any(|l| l.name.as_deref() == Some("여의대로") && l.speed_limit_mps > 16.0));

    // Terrain from the DEM; everything sits on it, heights relative to sea level.
    let Terrain::Grid { .. } = &twin.terrain else { panic!("the DEM gives a terrain grid") };
    let peak = twin.terrain.elevation_at(twin.meta.frame().enu_from_wgs84(swm::core::LatLon::new(37.525, 126.926)));
    assert!(peak > 100.0, "hill top {peak}");
    for b in &twin.buildings {
        let lowest = twin.terrain.min_elevation_under(&b.footprint.exterior);
        assert!(
            (b.base_elevation_m - lowest).abs() < 1e-9,
            "{} base {} ground {}",
            b.source,
            b.base_elevation_m,
            lowest
        );
        assert!(b.base_elevation_m > 19.0);
    }
    for l in &twin.lanes {
        for p in &l.centerline {
            assert!((p[2] - twin.terrain.elevation_at([p[0], p[1]])).abs() < 1e-6, "lanes lie on the ground");
        }
    }
}

#[test]
fn without_a_dem_the_ground_is_flat_at_sea_level() {
    let (twin, _) = ingest_paths(&[fixture("junction.osm.xml")], &IngestOptions::default()).unwrap();
    assert_eq!(twin.terrain, Terrain::Flat { elevation_m: 0.0 });
    assert!(twin.buildings.iter().all(|b| b.base_elevation_m == 0.0));
}

#[test]
fn a_broken_dem_is_a_clear_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("N37E126.hgt");
    std::fs::write(&bad, vec![0u8; 1000]).unwrap();
    let options = IngestOptions { dems: vec![bad.clone()], ..Default::default() };
    let err = ingest_paths(&[fixture("junction.osm.xml")], &options).unwrap_err().to_string();
    assert!(err.contains("N37E126.hgt"), "{err}");
}
