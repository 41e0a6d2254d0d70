//! Properties of generated districts: determinism, variety, validity of the OSM data,
//! Seoul-like tag coverage, and the DEM.

use std::collections::{BTreeMap, BTreeSet};
use swm_core::{LatLon, LocalFrame, OsmType};
use swm_ingest::osm::{OsmData, Tags, Way};
use swm_procgen::{DistrictParams, Generated, ProcgenError, generate};

type P = [f64; 2];

const VEHICLE: &[&str] =
    &["motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential", "service"];

fn is_road(t: &Tags) -> bool {
    t.get("highway").is_some_and(|h| VEHICLE.contains(&h)) && !t.is("area", "yes")
}

fn is_building(t: &Tags) -> bool {
    t.has("building")
}

/// Node positions in the district's local frame (metres).
fn local(osm: &OsmData, params: &DistrictParams) -> BTreeMap<i64, P> {
    let frame = LocalFrame::new(LatLon::new(params.origin_lat_deg, params.origin_lon_deg));
    osm.nodes.iter().map(|(id, n)| (*id, frame.enu_from_wgs84(n.pos))).collect()
}

fn ring(xy: &BTreeMap<i64, P>, w: &Way) -> Vec<P> {
    w.nodes[..w.nodes.len() - 1].iter().map(|n| xy[n]).collect()
}

fn cross(o: P, a: P, b: P) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Whether the segments `ab` and `cd` properly cross or touch.
fn segments_meet(a: P, b: P, c: P, d: P) -> bool {
    let (d1, d2, d3, d4) = (cross(a, b, c), cross(a, b, d), cross(c, d, a), cross(c, d, b));
    if d1 * d2 < 0.0 && d3 * d4 < 0.0 {
        return true;
    }
    let within = |p: P, q: P, r: P| {
        r[0] >= p[0].min(q[0]) && r[0] <= p[0].max(q[0]) && r[1] >= p[1].min(q[1]) && r[1] <= p[1].max(q[1])
    };
    (d1 == 0.0 && within(a, b, c))
        || (d2 == 0.0 && within(a, b, d))
        || (d3 == 0.0 && within(c, d, a))
        || (d4 == 0.0 && within(c, d, b))
}

fn point_in_ring(p: P, ring: &[P]) -> bool {
    let mut inside = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let (a, b) = (ring[i], ring[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn self_intersects(ring: &[P]) -> bool {
    let n = ring.len();
    (0..n).any(|i| {
        (i + 1..n).any(|j| {
            j != i + 1
                && !(i == 0 && j == n - 1)
                && segments_meet(ring[i], ring[(i + 1) % n], ring[j], ring[(j + 1) % n])
        })
    })
}

/// A uniform-grid index of segments (cell 50 m).
/// A segment and the id of what it belongs to.
type Seg = (P, P, i64);

struct SegIndex {
    cells: BTreeMap<(i64, i64), Vec<Seg>>,
}

const CELL_M: f64 = 50.0;

fn cell_range(a: P, b: P) -> impl Iterator<Item = (i64, i64)> {
    let (x0, x1) = ((a[0].min(b[0]) / CELL_M).floor() as i64, (a[0].max(b[0]) / CELL_M).floor() as i64);
    let (y0, y1) = ((a[1].min(b[1]) / CELL_M).floor() as i64, (a[1].max(b[1]) / CELL_M).floor() as i64);
    (x0..=x1).flat_map(move |x| (y0..=y1).map(move |y| (x, y)))
}

impl SegIndex {
    fn new() -> Self {
        Self { cells: BTreeMap::new() }
    }
    fn add(&mut self, a: P, b: P, id: i64) {
        for c in cell_range(a, b) {
            self.cells.entry(c).or_default().push((a, b, id));
        }
    }
    /// The id of an indexed segment that meets the ring (crosses it or lies inside it).
    fn hits_ring(&self, ring: &[P]) -> Option<i64> {
        let n = ring.len();
        let mut lo = [f64::INFINITY; 2];
        let mut hi = [f64::NEG_INFINITY; 2];
        for p in ring {
            lo = [lo[0].min(p[0]), lo[1].min(p[1])];
            hi = [hi[0].max(p[0]), hi[1].max(p[1])];
        }
        for c in cell_range(lo, hi) {
            for &(a, b, id) in self.cells.get(&c).into_iter().flatten() {
                if point_in_ring(a, ring) || point_in_ring(b, ring) {
                    return Some(id);
                }
                if (0..n).any(|i| segments_meet(ring[i], ring[(i + 1) % n], a, b)) {
                    return Some(id);
                }
            }
        }
        None
    }
}

/// Outer rings of every building (ways and multipolygon relations), with their tags.
fn building_outers(osm: &OsmData) -> Vec<(&Way, &Tags)> {
    let mut out: Vec<(&Way, &Tags)> =
        osm.ways.values().filter(|w| is_building(&w.tags)).map(|w| (w, &w.tags)).collect();
    for r in osm.relations.values().filter(|r| is_building(&r.tags)) {
        for m in r.members.iter().filter(|m| m.role == "outer") {
            out.push((&osm.ways[&m.id], &r.tags));
        }
    }
    out
}

fn count_buildings(osm: &OsmData) -> usize {
    osm.ways.values().filter(|w| is_building(&w.tags)).count()
        + osm.relations.values().filter(|r| is_building(&r.tags)).count()
}

/// Structural checks that must hold for every seed and every parameter set.
fn check_valid(g: &Generated, params: &DistrictParams) {
    let osm = &g.osm;
    for (id, w) in &osm.ways {
        assert!(w.nodes.len() >= 2, "way {id} has {} nodes", w.nodes.len());
        for n in &w.nodes {
            assert!(osm.nodes.contains_key(n), "way {id} references missing node {n}");
        }
        assert!(w.nodes.windows(2).all(|p| p[0] != p[1]), "way {id} repeats a node");
    }
    for (id, r) in &osm.relations {
        for m in &r.members {
            let ok = match m.ty {
                OsmType::Node => osm.nodes.contains_key(&m.id),
                OsmType::Way => osm.ways.contains_key(&m.id),
                OsmType::Relation => osm.relations.contains_key(&m.id),
            };
            assert!(ok, "relation {id} references missing {:?} {}", m.ty, m.id);
        }
    }
    for n in osm.nodes.values() {
        assert!(n.pos.is_valid());
    }
    let xy = local(osm, params);
    // Closed areas: buildings, parts, and multipolygon members are valid rings.
    let mut rings: Vec<(i64, &Way)> = osm
        .ways
        .iter()
        .filter(|(_, w)| w.tags.has("building") || w.tags.has("building:part") || w.tags.has("landuse"))
        .map(|(id, w)| (*id, w))
        .collect();
    for r in osm.relations.values().filter(|r| r.tags.is("type", "multipolygon")) {
        rings.extend(r.members.iter().map(|m| (m.id, &osm.ways[&m.id])));
    }
    for (id, w) in rings {
        assert!(w.nodes.len() >= 4, "area way {id} has {} nodes", w.nodes.len());
        assert_eq!(w.nodes.first(), w.nodes.last(), "area way {id} is not closed");
        let rg = ring(&xy, w);
        assert!(!self_intersects(&rg), "area way {id} intersects itself");
    }
    // Buildings stay off road centre lines (bridges and tunnels excepted) and off each other.
    let mut roads = SegIndex::new();
    for (id, w) in osm.ways.iter().filter(|(_, w)| is_road(&w.tags) && !w.tags.has("tunnel")) {
        for p in w.nodes.windows(2) {
            roads.add(xy[&p[0]], xy[&p[1]], *id);
        }
    }
    let mut outlines = SegIndex::new();
    for (w, t) in building_outers(osm) {
        let rg = ring(&xy, w);
        if let Some(road) = roads.hits_ring(&rg) {
            panic!("building {t:?} at {:?} overlaps road {:?}", rg[0], osm.ways[&road].tags);
        }
        if let Some(other) = outlines.hits_ring(&rg) {
            panic!("building {t:?} at {:?} overlaps building with node {other}", rg[0]);
        }
        for i in 0..rg.len() {
            outlines.add(rg[i], rg[(i + 1) % rg.len()], w.nodes[0]);
        }
    }
    // The DEM covers every node.
    let b = osm.bbox_wgs84().expect("nodes");
    let dem = &g.dem;
    let (west, north) = (dem.origin[0], dem.origin[1]);
    let east = west + dem.pixel_size[0] * (dem.width - 1) as f64;
    let south = north + dem.pixel_size[1] * (dem.height - 1) as f64;
    assert!(
        west <= b[0] && east >= b[2] && south <= b[1] && north >= b[3],
        "DEM {west} {south} {east} {north} vs {b:?}"
    );
    assert_eq!(dem.elevation_m.len(), dem.width * dem.height);
    assert!(dem.elevation_m.iter().all(|z| z.is_finite() && (0.0..300.0).contains(z)));
}

fn default_generated() -> (DistrictParams, Generated) {
    let params = DistrictParams::embedded_default();
    let g = generate(&params);
    (params, g)
}

#[test]
fn same_seed_same_data() {
    let params = DistrictParams::embedded_default();
    let a = generate(&params);
    let b = generate(&params);
    assert_eq!(a.osm, b.osm);
    assert_eq!(a.dem, b.dem);
}

#[test]
fn different_seeds_differ() {
    let params = DistrictParams::embedded_default();
    let a = generate(&params.with_seed(1));
    let b = generate(&params.with_seed(2));
    assert_ne!(a.osm, b.osm);
    assert_ne!(a.dem, b.dem);
    // Not just shifted: the districts' make-up differs.
    let counts: Vec<(usize, usize)> = (10..16)
        .map(|s| {
            let g = generate(&params.with_seed(s));
            (count_buildings(&g.osm), g.osm.ways.values().filter(|w| is_road(&w.tags)).count())
        })
        .collect();
    let distinct: BTreeSet<_> = counts.iter().collect();
    assert!(distinct.len() >= 5, "{counts:?}");
}

#[test]
fn default_district_is_valid_and_plausible() {
    let (params, g) = default_generated();
    check_valid(&g, &params);
    let osm = &g.osm;
    let buildings = count_buildings(osm);
    assert!((500..6000).contains(&buildings), "{buildings} buildings");
    // Junctions: nodes where three or more road branches meet.
    let mut degree: BTreeMap<i64, usize> = BTreeMap::new();
    for w in osm.ways.values().filter(|w| is_road(&w.tags)) {
        for (k, n) in w.nodes.iter().enumerate() {
            let branches = if k == 0 || k + 1 == w.nodes.len() { 1 } else { 2 };
            *degree.entry(*n).or_default() += branches;
        }
    }
    let junctions = degree.values().filter(|d| **d >= 3).count();
    assert!(junctions >= 40, "{junctions} junctions");
    let dead_ends = degree.values().filter(|d| **d == 1).count();
    assert!(dead_ends >= 5, "{dead_ends} dead ends");
    let signals = osm.nodes.values().filter(|n| n.tags.is("highway", "traffic_signals")).count();
    assert!(signals >= 10, "{signals} signals");
    let crossing_nodes = osm.nodes.values().filter(|n| n.tags.is("highway", "crossing")).count();
    assert!(crossing_nodes >= 30, "{crossing_nodes} crossing nodes");
    let has = |f: &dyn Fn(&Tags) -> bool| osm.ways.values().filter(|w| f(&w.tags)).count();
    for (hw, min) in [("primary", 5), ("secondary", 1), ("tertiary", 1), ("residential", 20), ("service", 3)] {
        let n = has(&|t| t.is("highway", hw));
        assert!(n >= min, "{n} highway={hw} ways");
    }
    assert!(has(&|t| t.is("oneway", "yes")) >= 1);
    assert!(has(&|t| t.is("highway", "pedestrian") && t.is("area", "yes")) >= 1);
    assert!(has(&|t| t.is("footway", "sidewalk")) >= 2);
    assert!(has(&|t| t.has("turn:lanes:forward")) >= 1);
    assert!(has(&|t| t.has("lanes:forward")) >= 1);
    assert!(has(&|t| t.is("bridge", "yes") && t.is("layer", "1") && t.is("highway", "primary")) >= 1);
    assert!(has(&|t| t.is("waterway", "river")) == 1);
    assert!(has(&|t| t.is("leisure", "park")) >= 2);
    assert!(has(&|t| t.is("natural", "wood") || t.is("landuse", "forest")) == 1);
    assert!(has(&|t| t.is("railway", "subway") && t.is("tunnel", "yes")) == 1);
    assert!(has(&|t| t.is("amenity", "school")) >= 1);
    assert!(has(&|t| t.has("building:part")) >= 2);
    assert!(has(&|t| t.has("roof:shape") && t.has("building")) >= 5);
    assert!(has(&|t| t.is("building", "apartments")) >= 50);
    assert!(osm.relations.values().any(|r| r.tags.is("natural", "water") && r.tags.is("type", "multipolygon")));
    let courtyards =
        osm.relations.values().filter(|r| is_building(&r.tags) && r.members.iter().any(|m| m.role == "inner")).count();
    assert!(courtyards >= 1);
}

#[test]
fn crossings_and_sidewalks_are_connected() {
    let (_, g) = default_generated();
    let osm = &g.osm;
    let road_nodes: BTreeSet<i64> =
        osm.ways.values().filter(|w| is_road(&w.tags)).flat_map(|w| w.nodes.iter().copied()).collect();
    let sidewalk_nodes: BTreeSet<i64> =
        osm.ways.values().filter(|w| w.tags.is("footway", "sidewalk")).flat_map(|w| w.nodes.iter().copied()).collect();
    let mut crossings = 0;
    let mut joined_to_sidewalks = 0;
    for w in osm.ways.values().filter(|w| w.tags.is("footway", "crossing")) {
        crossings += 1;
        assert_eq!(w.nodes.len(), 3);
        let mid = w.nodes[1];
        assert!(road_nodes.contains(&mid), "crossing way not on a road");
        assert!(osm.nodes[&mid].tags.is("highway", "crossing"));
        if sidewalk_nodes.contains(&w.nodes[0]) && sidewalk_nodes.contains(&w.nodes[2]) {
            joined_to_sidewalks += 1;
        }
    }
    assert!(crossings >= 30, "{crossings}");
    assert!(joined_to_sidewalks >= 2, "{joined_to_sidewalks}");
    let signalled = osm.ways.values().filter(|w| w.tags.is("crossing", "traffic_signals")).count();
    let marked = osm.ways.values().filter(|w| w.tags.is("crossing", "marked")).count();
    assert!(signalled > 0 && marked > 0, "{signalled} {marked}");
}

#[test]
fn restrictions_are_well_formed() {
    let (_, g) = default_generated();
    let osm = &g.osm;
    let restrictions: Vec<_> = osm.relations.values().filter(|r| r.tags.is("type", "restriction")).collect();
    assert!(!restrictions.is_empty());
    for r in restrictions {
        assert!(r.tags.is("restriction", "no_left_turn"));
        let get = |role: &str| r.members.iter().find(|m| m.role == role).expect(role);
        let (from, via, to) = (get("from"), get("via"), get("to"));
        assert_eq!((from.ty, via.ty, to.ty), (OsmType::Way, OsmType::Node, OsmType::Way));
        let fw = &osm.ways[&from.id];
        let tw = &osm.ways[&to.id];
        assert_eq!(fw.nodes.last(), Some(&via.id));
        assert!(tw.nodes.first() == Some(&via.id) || tw.nodes.last() == Some(&via.id));
        assert!(is_road(&fw.tags) && is_road(&tw.tags));
    }
}

#[test]
fn tag_coverage_is_seoul_like() {
    for seed in [1, 7] {
        let params = DistrictParams::embedded_default().with_seed(seed);
        let g = generate(&params);
        let outlines: Vec<&Tags> = g
            .osm
            .ways
            .values()
            .map(|w| &w.tags)
            .chain(g.osm.relations.values().map(|r| &r.tags))
            .filter(|t| is_building(t))
            .collect();
        let n = outlines.len() as f64;
        let height = outlines.iter().filter(|t| t.has("height")).count() as f64 / n;
        let levels = outlines.iter().filter(|t| t.has("building:levels")).count() as f64 / n;
        let none = outlines.iter().filter(|t| !t.has("height") && !t.has("building:levels")).count() as f64 / n;
        assert!((0.33..0.47).contains(&height), "height share {height}");
        assert!((0.63..0.77).contains(&levels), "levels share {levels}");
        assert!((0.18..0.32).contains(&none), "untagged share {none}");
        for t in &outlines {
            if let (Some(h), Some(l)) = (t.get("height"), t.get("building:levels")) {
                let per_level = h.parse::<f64>().unwrap() / l.parse::<f64>().unwrap();
                assert!((2.8..4.2).contains(&per_level), "{per_level} m per level: {t:?}");
            }
        }
        let kinds: BTreeSet<&str> = outlines.iter().filter_map(|t| t.get("building")).collect();
        for k in ["apartments", "commercial", "retail", "office", "house", "residential"] {
            assert!(kinds.contains(k), "no building={k} in seed {seed}: {kinds:?}");
        }
    }
}

#[test]
fn many_seeds_and_variants_are_valid() {
    let base = DistrictParams::embedded_default();
    for seed in 100..106 {
        let params = base.with_seed(seed);
        let g = generate(&params);
        check_valid(&g, &params);
        assert!(count_buildings(&g.osm) > 300, "seed {seed}");
    }
    let variants = [
        DistrictParams { river: false, hill: false, rail: false, ..base.with_seed(3) },
        DistrictParams { size_m: [900.0, 700.0], superblock_m: 350.0, ..base.with_seed(4) },
        DistrictParams { apartment_share: 1.0, collector_share: 1.0, density: 1.6, ..base.with_seed(5) },
        DistrictParams { apartment_share: 0.0, max_grid_rotation_deg: 0.0, density: 0.5, ..base.with_seed(6) },
        DistrictParams { size_m: [3000.0, 2500.0], superblock_m: 700.0, ..base.with_seed(8) },
    ];
    for params in variants {
        params.validate().unwrap();
        let g = generate(&params);
        check_valid(&g, &params);
        assert!(count_buildings(&g.osm) > 50, "{params:?}");
    }
}

#[test]
fn dem_has_river_plain_and_hill() {
    let (params, g) = default_generated();
    let dem = &g.dem;
    assert_eq!(dem.crs, swm_core::Crs::Wgs84);
    assert!(dem.pixel_size[0] > 0.0 && dem.pixel_size[1] < 0.0);
    let cell_m = dem.pixel_size[0] * 111_320.0 * params.origin_lat_deg.to_radians().cos();
    assert!((10.0..20.0).contains(&cell_m), "{cell_m} m cells");
    let min = dem.elevation_m.iter().copied().fold(f32::INFINITY, f32::min);
    let max = dem.elevation_m.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert!((3.0..6.0).contains(&min), "river surface {min}");
    assert!((70.0..150.0).contains(&max), "hill top {max}");
    let mut sorted = dem.elevation_m.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!((8.0..25.0).contains(&median), "plain {median}");
    // The peak node sits on the hill.
    let peak = g.osm.nodes.values().find(|n| n.tags.is("natural", "peak")).expect("peak");
    let col = ((peak.pos.lon_deg - dem.origin[0]) / dem.pixel_size[0]).round() as usize;
    let row = ((peak.pos.lat_deg - dem.origin[1]) / dem.pixel_size[1]).round() as usize;
    let z = dem.elevation_m[row * dem.width + col];
    assert!(z > max - 5.0, "peak at {z}, max {max}");
}

#[test]
fn generation_is_fast() {
    let params = DistrictParams::embedded_default();
    let start = std::time::Instant::now();
    let g = generate(&params);
    let elapsed = start.elapsed();
    // Under a second optimised; allow for unoptimised test builds.
    let limit_s = if cfg!(debug_assertions) { 8.0 } else { 1.0 };
    assert!(elapsed.as_secs_f64() < limit_s, "{elapsed:?} for {} ways", g.osm.ways.len());
}

#[test]
fn params_from_toml() {
    let embedded = DistrictParams::embedded_default();
    assert_eq!(embedded, DistrictParams::default(), "data/default-district.toml and Default agree");
    let p = DistrictParams::from_toml_str("seed = 42\nriver = false\nsize_m = [1200.0, 900.0]\n").unwrap();
    assert_eq!(p.seed, 42);
    assert!(!p.river);
    assert_eq!(p.superblock_m, DistrictParams::default().superblock_m);
    let round_trip = DistrictParams::from_toml_str(&toml::to_string(&p).unwrap()).unwrap();
    assert_eq!(round_trip, p);
    assert!(matches!(DistrictParams::from_toml_str("sede = 1"), Err(ProcgenError::Toml(_))));
    assert!(matches!(
        DistrictParams::from_toml_str("apartment_share = 1.5"),
        Err(ProcgenError::Invalid { field: "apartment_share", .. })
    ));
    assert!(matches!(
        DistrictParams::load(std::path::Path::new("/nonexistent/district.toml")),
        Err(ProcgenError::Io { .. })
    ));
    let dir = std::env::temp_dir().join(format!("swm_procgen_test_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "seed = \"one\"").unwrap();
    let err = DistrictParams::load(&path).unwrap_err();
    assert!(matches!(err, ProcgenError::TomlFile { .. }));
    assert!(err.to_string().contains("bad.toml"), "{err}");
    // The TOML error is the source, not part of the message: the chain shows it once.
    let cause = std::error::Error::source(&err).expect("the TOML error is the source").to_string();
    assert!(!err.to_string().contains(&cause), "{err}");
    let chain = swm_core::ErrorChain(&err).to_string();
    assert_eq!(chain.matches(&cause).count(), 1, "{chain}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The embedded default through the real twin builder: what `swm` shows first.
#[test]
fn default_district_builds_a_full_twin() {
    use swm_twin::{Control, LandKind, WalkKind};
    let params = DistrictParams::embedded_default();
    let (twin, report) = swm_procgen::build_district(&params).expect("builds");
    let warnings: Vec<String> = report.warnings.iter().map(|w| format!("{}: {}", w.subject, w.message)).collect();
    assert!(warnings.is_empty(), "generated data should build without warnings: {warnings:#?}");
    assert_eq!(twin.meta.name, params.name);
    assert_eq!(twin.meta.sources, vec![format!("procgen seed={}", params.seed)]);
    assert!(twin.buildings.len() > 300, "{} buildings", twin.buildings.len());
    assert!(twin.building_parts.len() >= 2, "{} parts", twin.building_parts.len());
    assert!(twin.buildings.iter().any(|b| !b.footprint.holes.is_empty()), "no courtyard building");
    let measured = twin.buildings_with_measured_height() as f64 / twin.buildings.len() as f64;
    assert!((0.3..0.5).contains(&measured), "{measured} measured heights");
    let per_level = twin.height_model.overall.m_per_level;
    assert!((3.0..4.0).contains(&per_level), "{per_level} m per level");
    assert!(twin.lanes.len() > 100, "{} lanes", twin.lanes.len());
    assert!(twin.lane_connections.len() > twin.lanes.len() / 2, "{} connections", twin.lane_connections.len());
    assert!(twin.lanes.iter().any(|l| !l.turns.is_empty()), "no lane with turn:lanes");
    assert!(twin.junctions.len() > 40, "{} junctions", twin.junctions.len());
    let tagged = twin.junctions.iter().filter(|j| j.control == Control::SignalTagged).count();
    assert!(tagged >= 10, "{tagged} junctions with tagged signals");
    assert!(twin.signals.len() >= 10, "{} signals", twin.signals.len());
    assert!(twin.crossings() > 30, "{} crossings", twin.crossings());
    assert!(twin.walk_edges.iter().any(|e| e.kind == WalkKind::Crossing && e.signalled));
    assert!(twin.walk_edges.iter().any(|e| e.kind == WalkKind::Sidewalk));
    for kind in [LandKind::Water, LandKind::Park, LandKind::Forest, LandKind::Plaza] {
        assert!(twin.land_cover.iter().any(|l| l.kind == kind), "no {kind:?} land cover");
    }
    // The DEM made it into the terrain: the hill stands out of the plain.
    let top = twin.buildings.iter().map(|b| b.base_elevation_m).fold(f64::NEG_INFINITY, f64::max);
    let low = twin.buildings.iter().map(|b| b.base_elevation_m).fold(f64::INFINITY, f64::min);
    assert!(low > 5.0 && top - low > 10.0, "building bases from {low} to {top} m");
}

/// Total heading change along a polyline, radians.
fn total_turn_rad(points: &[[f64; 3]]) -> f64 {
    points
        .windows(3)
        .map(|w| {
            let h0 = (w[1][1] - w[0][1]).atan2(w[1][0] - w[0][0]);
            let h1 = (w[2][1] - w[1][1]).atan2(w[2][0] - w[1][0]);
            (h1 - h0 + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI
        })
        .map(f64::abs)
        .sum()
}

/// `bend_share` decides the bends (stubs curving away at the edge, doglegs in complex
/// roads, the road round the hill), and the twin builder rounds them into lanes that
/// curve: with 0 every lane is straight, with 1 many lanes turn and the hill road's
/// lanes turn by at least the half circle it rounds.
#[test]
fn bends_make_curved_lanes() {
    // The expressway follows the river bank's swing and its ramps bend: off here too.
    let straight = DistrictParams { bend_share: 0.0, expressway: false, ..DistrictParams::embedded_default() };
    let (twin, _) = swm_procgen::build_district(&straight).expect("builds");
    let turns: Vec<f64> = twin.lanes.iter().map(|l| total_turn_rad(&l.centerline).to_degrees()).collect();
    let worst = turns.iter().copied().fold(0.0, f64::max);
    assert!(worst < 5.0, "a lane turns {worst:.1}° with bend_share = 0");

    let bendy = DistrictParams { bend_share: 1.0, expressway: true, ..straight };
    let (twin, report) = swm_procgen::build_district(&bendy).expect("builds");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings.iter().map(|w| &w.message).collect::<Vec<_>>());
    let turns: Vec<f64> = twin.lanes.iter().map(|l| total_turn_rad(&l.centerline).to_degrees()).collect();
    let curved = turns.iter().filter(|&&t| t >= 15.0).count();
    assert!(curved >= 40, "{curved} lanes turn by 15° or more");
    let worst = turns.iter().copied().fold(0.0, f64::max);
    assert!(worst >= 180.0, "no lane rounds the hill (the most any lane turns is {worst:.0}°)");
}

/// The riverside expressway: two one-way carriageways at 80 km/h through the district,
/// and (the training district of seed 1 has no railway beside it) an exit and an entry ramp that
/// join the riverside arterial and the city-side carriageway.
#[test]
fn riverside_expressway_has_ramps() {
    let params = DistrictParams::training_default();
    let g = generate(&params);
    let trunks: Vec<&Way> = g.osm.ways.values().filter(|w| w.tags.is("highway", "trunk")).collect();
    assert_eq!(trunks.len(), 2, "carriageways");
    assert!(trunks.iter().all(|w| w.tags.is("oneway", "yes") && w.tags.is("maxspeed", "80")));
    let ramps: Vec<&Way> = g.osm.ways.values().filter(|w| w.tags.is("highway", "secondary_link")).collect();
    assert_eq!(ramps.len(), 2, "ramps");
    let trunk_nodes: BTreeSet<i64> = trunks.iter().flat_map(|w| w.nodes.iter().copied()).collect();
    for ramp in &ramps {
        let ends = [ramp.nodes[0], *ramp.nodes.last().expect("nodes")];
        let on_trunk = ends.iter().filter(|n| trunk_nodes.contains(n)).count();
        assert_eq!(on_trunk, 1, "a ramp joins the expressway at exactly one end");
        let on_arterial =
            ends.iter().any(|n| g.osm.ways.values().any(|w| w.tags.is("highway", "primary") && w.nodes.contains(n)));
        assert!(on_arterial, "a ramp's other end is on the riverside arterial");
    }
    let off = DistrictParams { expressway: false, ..params };
    let g = generate(&off);
    assert!(!g.osm.ways.values().any(|w| w.tags.is("highway", "trunk") || w.tags.is("highway", "secondary_link")));
}

/// The training districts are the embedded default with bends and the expressway on; the
/// embedded default has both off, as `DistrictParams::default()` (what a missing TOML key
/// takes) does.
#[test]
fn training_district_is_the_default_with_bends_and_expressway() {
    let default = DistrictParams::embedded_default();
    assert_eq!(default, DistrictParams::default());
    assert_eq!((default.bend_share, default.expressway), (0.0, false));
    let training = DistrictParams::training_default();
    let expected =
        DistrictParams { name: "procgen-training".to_string(), bend_share: 0.6, expressway: true, ..default };
    assert_eq!(training, expected);
}
