//! The twin as renderable meshes, merged in spatial chunks.
//!
//! A district has tens of thousands of buildings and lanes; one entity each would cost one
//! draw call each. Instead every object is assigned to a square chunk of [`CHUNK_M`] by a
//! representative point (a building's footprint centroid, a lane's first point, an area's
//! centroid) and the objects of one chunk and one [`Layer`] are merged into one mesh: a
//! district of `n` chunks costs at most `n × layers` draw calls, and chunks outside the view
//! are culled by their bounding boxes.
//!
//! Geometry comes from `swm_twin::export::mesh` (the glTF export's triangles, in bevy's
//! axes: `x` east, `y` up, `z` south). Buildings carry vertex colours so that the colouring
//! ([`BuildingColouring`]: by use, by height, or measured vs estimated height) can change
//! without rebuilding geometry: [`ChunkMesh::buildings`] records which vertices belong to
//! which building. Lane markings are drawn here (the twin has none): dashed white lines
//! between same-direction lanes, a yellow line at the left edge of two-way roads, white
//! stop lines.
//!
//! Everything is deterministic: chunks are ordered by `(chunk, layer)`, objects in twin
//! order.

use std::collections::BTreeMap;

use swm_twin::export::mesh::{self as twin_mesh, TriangleMesh};
use swm_twin::{Building, HeightSource, LandCover, LandGeometry, LandKind, P3, Twin};

/// Side of a square chunk (m).
pub const CHUNK_M: f64 = 250.0;
/// Lane markings sit this far above the lane ribbons (m).
const MARKING_LIFT_M: f64 = 0.14;
/// Width of lane lines (m).
const LANE_LINE_WIDTH_M: f64 = 0.15;
/// Width of stop lines (m).
const STOP_LINE_WIDTH_M: f64 = 0.45;
/// Dashes of lane lines between same-direction lanes: painted, then gap (m).
const DASH_M: f64 = 3.0;
const GAP_M: f64 = 5.0;

/// What a chunk mesh draws; one material each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// The DEM (or a flat quad).
    #[default]
    Terrain,
    /// Rivers, lakes.
    Water,
    /// Parks, grass, forest.
    Green,
    /// Parking, plazas.
    Paved,
    /// Railways.
    Rail,
    /// Lanes and the paths through junctions.
    Road,
    /// Sidewalks, footways, pedestrian streets, steps.
    Sidewalk,
    /// Pedestrian crossings.
    Crossing,
    /// White lane lines and stop lines.
    MarkingWhite,
    /// Yellow centre lines of two-way roads.
    MarkingYellow,
    /// Building walls (vertex-coloured).
    BuildingWall,
    /// Building roofs (vertex-coloured).
    BuildingRoof,
}

impl Layer {
    /// Every layer, in drawing order.
    pub const ALL: [Layer; 12] = [
        Layer::Terrain,
        Layer::Water,
        Layer::Green,
        Layer::Paved,
        Layer::Rail,
        Layer::Road,
        Layer::Sidewalk,
        Layer::Crossing,
        Layer::MarkingWhite,
        Layer::MarkingYellow,
        Layer::BuildingWall,
        Layer::BuildingRoof,
    ];

    /// Base colour (sRGB). Building layers are white: their vertex colours decide.
    pub fn srgb(self) -> [u8; 3] {
        match self {
            Layer::Terrain => [196, 190, 172],
            Layer::Water => [92, 148, 196],
            Layer::Green => [126, 176, 96],
            Layer::Paved => [182, 180, 176],
            Layer::Rail => [122, 110, 104],
            Layer::Road => [72, 74, 80],
            Layer::Sidewalk => [214, 204, 184],
            Layer::Crossing => [236, 236, 232],
            Layer::MarkingWhite => [245, 245, 240],
            Layer::MarkingYellow => [240, 190, 40],
            Layer::BuildingWall | Layer::BuildingRoof => [255, 255, 255],
        }
    }

    /// Perceptual roughness of the material.
    pub fn roughness(self) -> f32 {
        match self {
            Layer::Water => 0.15,
            Layer::BuildingRoof => 0.7,
            Layer::BuildingWall | Layer::Rail => 0.8,
            _ => 0.9,
        }
    }

    /// Whether the layer's meshes carry per-vertex colours.
    pub fn is_building(self) -> bool {
        matches!(self, Layer::BuildingWall | Layer::BuildingRoof)
    }
}

/// How buildings are coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BuildingColouring {
    /// By use (`building=*`): housing, commerce, industry, public, other.
    #[default]
    Use,
    /// By height: light (low) to dark blue (150 m and more).
    Height,
    /// Measured heights (tagged, levels, parts) blue, estimated ones orange.
    HeightSource,
    /// Every building one saturated red that nothing else in the scene uses (tests measure
    /// the share of the frame buildings cover; figures where buildings must stand out).
    Mask,
}

impl BuildingColouring {
    /// The next mode (the colour key cycles through them).
    pub fn next(self) -> Self {
        match self {
            BuildingColouring::Use => BuildingColouring::Height,
            BuildingColouring::Height => BuildingColouring::HeightSource,
            BuildingColouring::HeightSource | BuildingColouring::Mask => BuildingColouring::Use,
        }
    }

    /// A short label for the panel.
    pub fn label(self) -> &'static str {
        match self {
            BuildingColouring::Use => "use",
            BuildingColouring::Height => "height",
            BuildingColouring::HeightSource => "measured/estimated height",
            BuildingColouring::Mask => "mask (red)",
        }
    }
}

/// A building of the twin: an outline (`Twin::buildings`) or a part (`Twin::building_parts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BuildingRef {
    /// True for `building_parts`.
    pub part: bool,
    /// Index into the list.
    pub index: u32,
}

impl BuildingRef {
    /// The building in `twin`, if the index is valid.
    pub fn get(self, twin: &Twin) -> Option<&Building> {
        let list = if self.part { &twin.building_parts } else { &twin.buildings };
        list.get(self.index as usize)
    }
}

/// The sRGB colour of a building under `mode`. Roofs are drawn a little darker.
pub fn building_srgb(b: &Building, mode: BuildingColouring) -> [u8; 3] {
    match mode {
        BuildingColouring::Use => match b.kind.as_str() {
            "apartments" | "residential" | "house" | "detached" | "terrace" | "dormitory" | "semidetached_house" => {
                [232, 214, 186]
            }
            "commercial" | "retail" | "office" | "hotel" | "supermarket" | "kiosk" => [170, 190, 214],
            "industrial" | "warehouse" | "factory" | "garage" | "garages" | "shed" => [190, 178, 160],
            "school" | "university" | "college" | "kindergarten" | "hospital" | "public" | "civic" | "government"
            | "church" | "temple" | "train_station" | "transportation" => [222, 160, 140],
            _ => [214, 214, 208],
        },
        BuildingColouring::Height => {
            let h = if b.height_m.is_finite() { b.height_m } else { 0.0 };
            let t = (h / 150.0).clamp(0.0, 1.0).sqrt();
            let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
            [lerp(250.0, 40.0), lerp(236.0, 70.0), lerp(200.0, 160.0)]
        }
        BuildingColouring::HeightSource => match b.height_source {
            HeightSource::Estimated => [236, 150, 60],
            HeightSource::Tagged | HeightSource::Levels | HeightSource::Parts => [80, 130, 210],
        },
        BuildingColouring::Mask => [225, 20, 20],
    }
}

/// Linear RGBA from sRGB bytes (vertex colours are linear).
pub fn linear_rgba(srgb: [u8; 3], scale: f32) -> [f32; 4] {
    let f = |c: u8| {
        let c = c as f32 / 255.0;
        let l = if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) };
        l * scale
    };
    [f(srgb[0]), f(srgb[1]), f(srgb[2]), 1.0]
}

/// One merged mesh: the objects of one layer in one chunk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChunkMesh {
    /// Chunk column and row: `floor(x / CHUNK_M)`, `floor(y / CHUNK_M)` in the twin frame.
    pub chunk: [i32; 2],
    /// What it draws.
    pub layer: Layer,
    /// Its triangles (bevy axes).
    pub mesh: TriangleMesh,
    /// For building layers: which vertices belong to which building, in vertex order.
    pub buildings: Vec<(BuildingRef, std::ops::Range<u32>)>,
}

impl ChunkMesh {
    /// Per-vertex linear colours of a building chunk under `mode` (white elsewhere).
    pub fn vertex_colours(&self, twin: &Twin, mode: BuildingColouring) -> Vec<[f32; 4]> {
        let mut out = vec![[1.0; 4]; self.mesh.positions.len()];
        let scale = if self.layer == Layer::BuildingRoof { 0.78 } else { 1.0 };
        for (r, range) in &self.buildings {
            let Some(b) = r.get(twin) else { continue };
            let c = linear_rgba(building_srgb(b, mode), scale);
            for v in &mut out[range.start as usize..range.end as usize] {
                *v = c;
            }
        }
        out
    }
}

/// The twin's meshes, and what was left out.
#[derive(Clone, Debug, Default)]
pub struct SceneMeshes {
    /// Merged meshes, ordered by `(chunk, layer)`; the terrain is one mesh in chunk `[0, 0]`.
    pub chunks: Vec<ChunkMesh>,
    /// Buildings (or parts) without a usable footprint or height.
    pub skipped_buildings: usize,
    /// Buildings drawn (outlines and parts).
    pub buildings: usize,
}

impl SceneMeshes {
    /// Total triangles.
    pub fn triangle_count(&self) -> usize {
        self.chunks.iter().map(|c| c.mesh.triangle_count()).sum()
    }

    /// Number of distinct chunks holding something.
    pub fn chunk_count(&self) -> usize {
        let mut keys: Vec<[i32; 2]> = self.chunks.iter().map(|c| c.chunk).collect();
        keys.dedup();
        keys.len()
    }
}

/// The chunk holding twin-frame point `(x, y)`.
pub fn chunk_of(x: f64, y: f64, chunk_m: f64) -> [i32; 2] {
    let c =
        |v: f64| if v.is_finite() { (v / chunk_m).floor().clamp(i32::MIN as f64, i32::MAX as f64) as i32 } else { 0 };
    [c(x), c(y)]
}

#[derive(Default)]
struct Acc {
    meshes: BTreeMap<([i32; 2], Layer), ChunkMesh>,
}

impl Acc {
    fn add(&mut self, chunk: [i32; 2], layer: Layer, mesh: &TriangleMesh, building: Option<BuildingRef>) {
        if mesh.is_empty() {
            return;
        }
        let entry =
            self.meshes.entry((chunk, layer)).or_insert_with(|| ChunkMesh { chunk, layer, ..Default::default() });
        let start = entry.mesh.positions.len() as u32;
        if !entry.mesh.append(mesh) {
            tracing::warn!(?chunk, ?layer, "chunk mesh over 4 billion vertices; object left out");
            return;
        }
        if let Some(b) = building {
            entry.buildings.push((b, start..entry.mesh.positions.len() as u32));
        }
    }
}

/// Builds the merged meshes of `twin` in chunks of `chunk_m` metres.
pub fn build_scene(twin: &Twin, chunk_m: f64) -> SceneMeshes {
    let chunk_m = if chunk_m.is_finite() && chunk_m > 1.0 { chunk_m } else { CHUNK_M };
    let mut acc = Acc::default();
    let terrain = twin_mesh::terrain(twin);
    acc.add([0, 0], Layer::Terrain, &terrain, None);

    for lc in &twin.land_cover {
        let layer = match lc.kind {
            LandKind::Water => Layer::Water,
            LandKind::Park | LandKind::Grass | LandKind::Forest => Layer::Green,
            LandKind::Parking | LandKind::Plaza => Layer::Paved,
            LandKind::Rail => Layer::Rail,
        };
        let at = land_cover_anchor(lc);
        acc.add(chunk_of(at[0], at[1], chunk_m), layer, &twin_mesh::land_cover(&twin.terrain, lc), None);
    }
    for (i, lane) in twin.lanes.iter().enumerate() {
        let Some(p) = lane.centerline.first() else { continue };
        let chunk = chunk_of(p[0], p[1], chunk_m);
        acc.add(chunk, Layer::Road, &twin_mesh::lane(twin, i), None);
        for (layer, m) in lane_markings(twin, i) {
            acc.add(chunk, layer, &m, None);
        }
    }
    for (i, c) in twin.lane_connections.iter().enumerate() {
        let Some(p) = c.path.first() else { continue };
        acc.add(chunk_of(p[0], p[1], chunk_m), Layer::Road, &twin_mesh::lane_connection(twin, i), None);
    }
    for e in &twin.walk_edges {
        let Some(p) = e.polyline.first() else { continue };
        if let Some((crossing, m)) = twin_mesh::walk_edge(e) {
            let layer = if crossing { Layer::Crossing } else { Layer::Sidewalk };
            acc.add(chunk_of(p[0], p[1], chunk_m), layer, &m, None);
        }
    }
    let (mut skipped, mut drawn) = (0usize, 0usize);
    let outlines = twin
        .buildings
        .iter()
        .enumerate()
        .filter(|(_, b)| !b.parts_replace_outline || b.parts.is_empty())
        .map(|(i, b)| (BuildingRef { part: false, index: i as u32 }, b));
    let parts = twin.building_parts.iter().enumerate().map(|(i, b)| (BuildingRef { part: true, index: i as u32 }, b));
    for (r, b) in outlines.chain(parts) {
        let Some(m) = twin_mesh::building(b) else {
            skipped += 1;
            continue;
        };
        let c = b.footprint.centroid();
        let chunk = chunk_of(c[0], c[1], chunk_m);
        acc.add(chunk, Layer::BuildingWall, &m.walls, Some(r));
        acc.add(chunk, Layer::BuildingRoof, &m.roof, Some(r));
        drawn += 1;
    }
    if skipped > 0 {
        tracing::warn!(skipped, "buildings or parts without a usable footprint or height left out of the scene");
    }
    SceneMeshes { chunks: acc.meshes.into_values().collect(), skipped_buildings: skipped, buildings: drawn }
}

fn land_cover_anchor(lc: &LandCover) -> [f64; 2] {
    match &lc.geometry {
        LandGeometry::Area(poly) => poly.centroid(),
        LandGeometry::Line { points, .. } => points.first().copied().unwrap_or([0.0, 0.0]),
    }
}

/// The polyline `points` moved `offset_m` to the left of its direction (z kept).
fn offset_left(points: &[P3], offset_m: f64) -> Vec<P3> {
    let n = points.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let a = points[i.saturating_sub(1)];
        let b = points[(i + 1).min(n - 1)];
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len = (dx * dx + dy * dy).sqrt();
        if len.is_nan() || len <= 1e-9 {
            out.push(points[i]);
            continue;
        }
        let (lx, ly) = (-dy / len, dx / len);
        out.push([points[i][0] + lx * offset_m, points[i][1] + ly * offset_m, points[i][2]]);
    }
    out
}

/// Pieces `[start, end)` of arc length along `points`, cut into dashes.
fn dashes(points: &[P3], dash_m: f64, gap_m: f64) -> Vec<Vec<P3>> {
    let mut out = Vec::new();
    let mut current: Vec<P3> = Vec::new();
    let period = dash_m + gap_m;
    let mut s = 0.0f64;
    let phase = |s: f64| s.rem_euclid(period) < dash_m;
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        if len.is_nan() || len <= 1e-9 {
            continue;
        }
        let at = |t: f64| [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
        let mut t0 = 0.0;
        while t0 < 1.0 {
            let s0 = s + t0 * len;
            let on = phase(s0);
            if on && current.is_empty() {
                current.push(at(t0));
            }
            // Next boundary of the pattern.
            let within = s0.rem_euclid(period);
            let to_boundary = if within < dash_m { dash_m - within } else { period - within };
            let t1 = (t0 + to_boundary.max(1e-6) / len).min(1.0);
            if on {
                current.push(at(t1));
                if t1 < 1.0 {
                    out.push(std::mem::take(&mut current));
                }
            }
            t0 = t1;
        }
        s += len;
    }
    if current.len() >= 2 {
        out.push(current);
    }
    out
}

/// The markings painted on lane `i`: a dashed white line on its left edge when it has a
/// same-direction neighbour there; a yellow line on its left edge when it is the leftmost
/// lane of a two-way road (another lane of the same way runs the other way); a white stop
/// line.
fn lane_markings(twin: &Twin, i: usize) -> Vec<(Layer, TriangleMesh)> {
    let lane = &twin.lanes[i];
    let mut out = Vec::new();
    // On the deck of a bridge (or the floor of a tunnel), like the lane's ribbon.
    let deck = f64::from(lane.level) * swm_twin::LEVEL_HEIGHT_M;
    let lift = |pts: &[P3]| -> Vec<P3> { pts.iter().map(|p| [p[0], p[1], p[2] + deck]).collect() };
    let lane = &swm_twin::Lane { centerline: lift(&lane.centerline), ..lane.clone() };
    let width = if lane.width_m.is_finite() && lane.width_m > 0.05 { lane.width_m } else { 3.2 };
    if lane.centerline.len() >= 2 {
        if lane.left.is_some() {
            let edge = offset_left(&lane.centerline, 0.5 * width);
            let mut m = TriangleMesh::default();
            for d in dashes(&edge, DASH_M, GAP_M) {
                m.append(&twin_mesh::ribbon(&d, LANE_LINE_WIDTH_M, MARKING_LIFT_M));
            }
            out.push((Layer::MarkingWhite, m));
        } else if lane.index_from_right + 1 >= lane.lanes_in_direction && two_way(twin, i) {
            let edge = offset_left(&lane.centerline, 0.5 * width - 0.12);
            out.push((Layer::MarkingYellow, twin_mesh::ribbon(&edge, LANE_LINE_WIDTH_M, MARKING_LIFT_M)));
        }
    }
    if let Some(stop) = &lane.stop_line {
        out.push((Layer::MarkingWhite, twin_mesh::ribbon(&lift(&stop.segment), STOP_LINE_WIDTH_M, MARKING_LIFT_M)));
    }
    out
}

/// Whether another lane from the same OSM way runs in the other direction.
fn two_way(twin: &Twin, i: usize) -> bool {
    let lane = &twin.lanes[i];
    // Lanes of one way are built next to each other: look at a small window first.
    let lo = i.saturating_sub(16);
    let hi = (i + 17).min(twin.lanes.len());
    twin.lanes[lo..hi].iter().any(|l| l.source == lane.source && l.forward != lane.forward)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashes_follow_the_pattern() {
        let line = [[0.0, 0.0, 0.0], [20.0, 0.0, 0.0]];
        let d = dashes(&line, 3.0, 5.0);
        // 0-3, 8-11, 16-19
        assert_eq!(d.len(), 3, "{d:?}");
        assert!((d[1][0][0] - 8.0).abs() < 1e-6 && (d[1].last().unwrap()[0] - 11.0).abs() < 1e-6);
        let bent = [[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 6.0, 0.0]];
        let d = dashes(&bent, 3.0, 5.0);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].len(), 3, "a dash around the corner keeps the corner: {d:?}");
    }

    #[test]
    fn offset_goes_left() {
        let o = offset_left(&[[0.0, 0.0, 1.0], [10.0, 0.0, 1.0]], 2.0);
        assert_eq!(o[0], [0.0, 2.0, 1.0]);
        assert_eq!(o[1], [10.0, 2.0, 1.0]);
    }

    #[test]
    fn chunks_of_points() {
        assert_eq!(chunk_of(0.0, 0.0, 250.0), [0, 0]);
        assert_eq!(chunk_of(-1.0, 251.0, 250.0), [-1, 1]);
        assert_eq!(chunk_of(f64::NAN, 10.0, 250.0), [0, 0]);
    }
}
