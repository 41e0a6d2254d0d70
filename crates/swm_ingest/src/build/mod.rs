//! The twin builder: the OSM model (+ DEMs) to a [`Twin`].
//!
//! Stages, in order (each one a module): the frame and terrain ([`build_twin`]),
//! buildings and their heights ([`buildings`]), the lane graph ([`roads`]), the walk graph
//! ([`walk`]) and land cover ([`landcover`]). Every stage iterates the OSM maps in id
//! order and appends to the twin's vectors, so the same input gives the same bytes.

pub mod buildings;
pub mod geom;
pub mod landcover;
pub mod multipolygon;
pub mod roads;
pub mod tags;
pub mod walk;

use crate::{IngestError, Report, dem::Dem, osm::OsmData};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use swm_core::{LatLon, LocalFrame};
use swm_twin::{P2, P3, Terrain, Twin};

/// Options of [`build_twin`].
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub name: String,
    /// Origin of the twin frame; default: the median position of the data's nodes.
    pub origin: Option<LatLon>,
    /// Keep only objects that reach into `[west, south, east, north]` (degrees).
    pub bbox_wgs84: Option<[f64; 4]>,
    /// Labels of the inputs, recorded in the twin.
    pub sources: Vec<String>,
}

/// Shared state of one build: the frame, projected node positions, the terrain.
pub struct Ctx<'a> {
    pub data: &'a OsmData,
    pub frame: LocalFrame,
    pub terrain: Terrain,
    /// Twin-frame positions of every node, by id.
    pub node_xy: HashMap<i64, P2>,
    /// Twin-frame bbox of the kept area (`[min_x, min_y, max_x, max_y]`), if clipped.
    pub clip_m: Option<[f64; 4]>,
    /// Twin-frame box of the area the input covers completely, computed on first use.
    data_box: OnceLock<Option<[f64; 4]>>,
    /// Nodes of buildings, roads and railways (no bridges or tunnels), computed on first use.
    land_evidence: OnceLock<Vec<P2>>,
}

impl Ctx<'_> {
    pub fn xy(&self, node: i64) -> Option<P2> {
        self.node_xy.get(&node).copied()
    }
    pub fn ground(&self, p: P2) -> P3 {
        [p[0], p[1], self.terrain.elevation_at(p)]
    }
    pub fn project(&self, ll: LatLon) -> P2 {
        self.frame.enu_from_wgs84(ll)
    }
    /// Whether a bbox (`[min_x, min_y, max_x, max_y]`) reaches into the clip area.
    pub fn keeps_bbox(&self, b: [f64; 4]) -> bool {
        match self.clip_m {
            None => true,
            Some(c) => b[0] <= c[2] && b[2] >= c[0] && b[1] <= c[3] && b[3] >= c[1],
        }
    }
    pub fn keeps_point(&self, p: P2) -> bool {
        self.keeps_bbox([p[0], p[1], p[0], p[1]])
    }

    /// Twin-frame box of the area the input covers completely (see [`data_box_m`]): where
    /// multipolygons cut by the extract are closed.
    pub fn data_box_m(&self) -> Option<[f64; 4]> {
        *self.data_box.get_or_init(|| data_box_m(self.data, &self.frame, &self.node_xy))
    }

    /// Twin-frame positions of the nodes of buildings, roads and railways that are neither
    /// bridges nor tunnels: places that are land, not inside water, parks or forests. Used to
    /// tell which side of an area cut by the extract is the area.
    pub fn land_evidence(&self) -> &[P2] {
        self.land_evidence.get_or_init(|| {
            let road = |v: &str| {
                matches!(
                    v.trim_end_matches("_link"),
                    "motorway" | "trunk" | "primary" | "secondary" | "tertiary" | "unclassified" | "residential"
                )
            };
            let off = |t: &crate::osm::Tags, k: &str| t.get(k).is_none_or(|v| v == "no");
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for w in self.data.ways.values() {
                let t = &w.tags;
                let land = t.get("building").is_some_and(|v| v != "no")
                    || t.get("highway").is_some_and(road)
                    || t.get("railway").is_some_and(|v| matches!(v, "rail" | "subway" | "light_rail" | "tram"));
                if land && off(t, "bridge") && off(t, "tunnel") && t.get("layer").is_none_or(|l| l == "0") {
                    out.extend(w.nodes.iter().filter(|n| seen.insert(**n)).filter_map(|n| self.xy(*n)));
                }
            }
            out
        })
    }
}

/// The twin-frame box of the area an extract covers completely, `[min_x, min_y, max_x,
/// max_y]`: the file's bounds when it states them (shrunk to the axis-aligned box inside
/// their projection); else the bbox of the nodes no way references (an extract keeps a node
/// only inside its area, while ways reaching into the area come with all their nodes, far
/// outside); else the bbox of all nodes.
pub fn data_box_m(data: &OsmData, frame: &LocalFrame, node_xy: &HashMap<i64, P2>) -> Option<[f64; 4]> {
    if let Some(b) = data.bounds_wgs84 {
        let c = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]]
            .map(|c| frame.enu_from_wgs84(LatLon::new(c[1], c[0])));
        let inner = [c[0][0].max(c[3][0]), c[0][1].max(c[1][1]), c[1][0].min(c[2][0]), c[2][1].min(c[3][1])];
        if inner[0] < inner[2] && inner[1] < inner[3] {
            return Some(inner);
        }
    }
    let bbox = |points: &mut dyn Iterator<Item = P2>| {
        let b = points.fold([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], |m, p| {
            [m[0].min(p[0]), m[1].min(p[1]), m[2].max(p[0]), m[3].max(p[1])]
        });
        (b[0] < b[2] && b[1] < b[3]).then_some(b)
    };
    let in_ways: HashSet<i64> = data.ways.values().flat_map(|w| w.nodes.iter().copied()).collect();
    let mut standalone = node_xy.iter().filter(|(id, _)| !in_ways.contains(id)).map(|(_, p)| *p);
    bbox(&mut standalone).or_else(|| bbox(&mut node_xy.values().copied()))
}

/// Median of the nodes' latitudes and longitudes: robust to relations whose members
/// reach far outside an extract.
fn median_origin(data: &OsmData) -> Option<LatLon> {
    if data.nodes.is_empty() {
        return None;
    }
    let mut lats: Vec<f64> = data.nodes.values().map(|n| n.pos.lat_deg).collect();
    let mut lons: Vec<f64> = data.nodes.values().map(|n| n.pos.lon_deg).collect();
    lats.sort_by(f64::total_cmp);
    lons.sort_by(f64::total_cmp);
    let round = |v: f64| (v * 1e6).round() / 1e6;
    Some(LatLon::new(round(lats[lats.len() / 2]), round(lons[lons.len() / 2])))
}

/// Builds a twin from OSM data and DEMs.
pub fn build_twin(
    data: &OsmData,
    dems: &[Dem],
    options: &BuildOptions,
    report: &mut Report,
) -> Result<Twin, IngestError> {
    let origin = match options.origin.or_else(|| median_origin(data)) {
        Some(o) => o,
        None => return Err(IngestError::NothingToBuild("the input holds no nodes".into())),
    };
    let frame = LocalFrame::new(origin);
    let node_xy: HashMap<i64, P2> = data.nodes.iter().map(|(id, n)| (*id, frame.enu_from_wgs84(n.pos))).collect();
    let clip_m = match options.bbox_wgs84 {
        None => None,
        Some(b) => {
            if !(b[0] < b[2] && b[1] < b[3]) {
                return Err(IngestError::EmptyBbox { bbox: b });
            }
            let corners = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]]
                .map(|c| frame.enu_from_wgs84(LatLon::new(c[1], c[0])));
            let mut m = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
            for c in corners {
                m = [m[0].min(c[0]), m[1].min(c[1]), m[2].max(c[0]), m[3].max(c[1])];
            }
            let inside = node_xy.values().any(|p| p[0] >= m[0] && p[0] <= m[2] && p[1] >= m[1] && p[1] <= m[3]);
            if !inside {
                return Err(IngestError::NothingToBuild(format!(
                    "no node of the input lies inside the bounding box {b:?} (west, south, east, north)"
                )));
            }
            Some(m)
        }
    };
    let mut ctx = Ctx {
        data,
        frame,
        terrain: Terrain::default(),
        node_xy,
        clip_m,
        data_box: OnceLock::new(),
        land_evidence: OnceLock::new(),
    };

    // Terrain covers the data's extent (or the clip area).
    let data_bbox = ctx.clip_m.unwrap_or_else(|| {
        let mut m = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for p in ctx.node_xy.values() {
            m = [m[0].min(p[0]), m[1].min(p[1]), m[2].max(p[0]), m[3].max(p[1])];
        }
        m
    });
    if !dems.is_empty() {
        // The DEM's own resolution (clamped), with a margin so buildings at the edge sit on data.
        let cell_m = crate::dem::terrain_cell_m(dems);
        let margin = 2.0 * cell_m;
        let grid_bbox = [data_bbox[0] - margin, data_bbox[1] - margin, data_bbox[2] + margin, data_bbox[3] + margin];
        match crate::dem::to_terrain_grid(dems, &ctx.frame, grid_bbox, cell_m) {
            Some(t) => ctx.terrain = t,
            None => report.warn(
                dems.iter().map(|d| d.source.as_str()).collect::<Vec<_>>().join(", "),
                "no DEM covers the data's area: the ground is flat at 0 m",
            ),
        }
    }

    let mut twin = Twin::default();
    twin.meta.name = options.name.clone();
    twin.meta.origin_wgs84 = Some(origin);
    twin.meta.sources = options.sources.clone();
    twin.meta.built_by = format!("swm {}", env!("CARGO_PKG_VERSION"));

    {
        let _s = tracing::info_span!("buildings").entered();
        buildings::build(&ctx, &mut twin, report);
    }
    {
        let _s = tracing::info_span!("roads").entered();
        let net = roads::build(&ctx, &mut twin, report);
        let _w = tracing::info_span!("walk").entered();
        walk::build(&ctx, &net, &mut twin);
    }
    {
        let _s = tracing::info_span!("landcover").entered();
        landcover::build(&ctx, &mut twin, report);
    }
    twin.terrain = ctx.terrain;
    finish_bbox(&mut twin);
    tracing::info!(
        buildings = twin.buildings.len(),
        lanes = twin.lanes.len(),
        walk_edges = twin.walk_edges.len(),
        warnings = report.warnings.len(),
        "twin built"
    );
    Ok(twin)
}

/// Computes the twin's bounding boxes from everything it holds.
fn finish_bbox(twin: &mut Twin) {
    let mut m = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    let mut add = |p: &[f64]| {
        m = [m[0].min(p[0]), m[1].min(p[1]), m[2].max(p[0]), m[3].max(p[1])];
    };
    for b in twin.buildings.iter().chain(&twin.building_parts) {
        b.footprint.exterior.iter().for_each(|p| add(p));
    }
    twin.lanes.iter().flat_map(|l| &l.centerline).for_each(|p| add(p));
    twin.walk_edges.iter().flat_map(|e| &e.polyline).for_each(|p| add(p));
    for lc in &twin.land_cover {
        match &lc.geometry {
            swm_twin::LandGeometry::Area(poly) => poly.exterior.iter().for_each(|p| add(p)),
            swm_twin::LandGeometry::Line { points, .. } => points.iter().for_each(|p| add(p)),
        }
    }
    if !m[0].is_finite() {
        m = [0.0; 4];
    }
    twin.meta.bbox_m = m;
    let frame = twin.meta.frame();
    let corners = [[m[0], m[1]], [m[2], m[1]], [m[2], m[3]], [m[0], m[3]]].map(|c| frame.wgs84_from_enu(c));
    let mut w = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for c in corners {
        w = [w[0].min(c.lon_deg), w[1].min(c.lat_deg), w[2].max(c.lon_deg), w[3].max(c.lat_deg)];
    }
    twin.meta.bbox_wgs84 = w;
}
