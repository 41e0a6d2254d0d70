//! Spatial queries over a twin: nearest lane, lanes and buildings within a radius, point
//! in building, ray casts against building volumes and terrain, and bird's-eye-view (BEV)
//! rasters of semantic classes with a signed distance field.
//!
//! [`TwinIndex::new`] copies the geometry it needs out of the [`Twin`] (so the index owns
//! its data and can live independently of the twin) and builds `rstar` R-trees over lane
//! segments, building footprints, building volumes (3D boxes) and the BEV paint layers.
//! Geometry with non-finite coordinates is skipped (with a `tracing` warning) so that no
//! query can misbehave on it.
//!
//! All coordinates are in the twin frame: `x` east, `y` north, `z` elevation above sea
//! level, metres.

mod bev;
mod geom;

pub use bev::{BevClass, BevRaster, MAX_BEV_PIXELS, SDF_MARGIN_M};

use crate::TwinError;
use crate::model::*;
use geom::*;
use rstar::{AABB, PointDistance, RTree, RTreeObject, SelectionFunction};

/// The lane nearest to a query point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LaneHit {
    /// Index into [`Twin::lanes`].
    pub lane: u32,
    /// Distance along the lane's centre line (3D polyline length, as [`Lane::length_m`])
    /// from its start to `point`.
    pub s_m: f64,
    /// Horizontal distance from the query point to `point`.
    pub distance_m: f64,
    /// The closest point of the centre line (horizontally), with its elevation.
    pub point: P3,
}

/// What a ray hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HitTarget {
    /// Index into [`Twin::buildings`] (an outline's own volume).
    Building(u32),
    /// Index into [`Twin::building_parts`].
    BuildingPart(u32),
    /// The ground.
    Terrain,
}

/// The first surface a ray hit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RayHit {
    /// Distance from the ray's origin to `point` (metres; the direction is normalised).
    pub t_m: f64,
    pub point: P3,
    /// Unit surface normal facing the ray's origin (surfaces are two-sided).
    pub normal: P3,
    pub target: HitTarget,
}

/// A lane centre-line segment in the lane R-tree.
#[derive(Clone, Debug)]
struct LaneSeg {
    lane: u32,
    a: P3,
    b: P3,
    /// Distance along the centre line of `a`.
    s0_m: f64,
    /// 3D length of the segment.
    len_m: f64,
}

impl LaneSeg {
    /// Parameter in `[0, 1]` of the horizontally closest point to `p`.
    fn project(&self, p: P2) -> f64 {
        segment_param([self.a[0], self.a[1]], [self.b[0], self.b[1]], p)
    }
}

impl RTreeObject for LaneSeg {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_corners([self.a[0], self.a[1]], [self.b[0], self.b[1]])
    }
}

impl PointDistance for LaneSeg {
    fn distance_2(&self, p: &[f64; 2]) -> f64 {
        segment_distance_2([self.a[0], self.a[1]], [self.b[0], self.b[1]], *p)
    }
}

/// A 2D bounding box with an index, for footprints and paint items.
#[derive(Clone, Debug)]
struct Boxed2 {
    idx: u32,
    env: AABB<[f64; 2]>,
}

impl RTreeObject for Boxed2 {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

/// A building volume's 3D bounding box.
#[derive(Clone, Debug)]
struct VolumeBox {
    /// Index into [`TwinIndex::volumes`].
    idx: u32,
    env: AABB<[f64; 3]>,
}

impl RTreeObject for VolumeBox {
    type Envelope = AABB<[f64; 3]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

/// Selects the R-tree nodes whose box the ray segment `[0, t_max]` crosses.
struct RaySelection {
    origin: P3,
    dir: P3,
    t_max: f64,
}

impl SelectionFunction<VolumeBox> for RaySelection {
    fn should_unpack_parent(&self, envelope: &AABB<[f64; 3]>) -> bool {
        ray_box(self.origin, self.dir, self.t_max, envelope.lower(), envelope.upper()).is_some()
    }
    fn should_unpack_leaf(&self, leaf: &VolumeBox) -> bool {
        self.should_unpack_parent(&leaf.env)
    }
}

/// An extruded footprint: a prism between two elevations above sea level.
#[derive(Clone, Debug)]
struct Solid {
    footprint: Polygon,
    bottom_m: f64,
    top_m: f64,
    target: HitTarget,
}

/// The terrain as the index sees it.
#[derive(Clone, Debug)]
enum TerrainGeom {
    /// An invalid grid (inconsistent sizes): no terrain surface.
    None,
    Flat(f64),
    Grid {
        origin_m: P2,
        cell_m: f64,
        nx: usize,
        ny: usize,
        elevation_m: Vec<f32>,
        min_m: f64,
        max_m: f64,
    },
}

/// Something painted into BEV rasters.
#[derive(Clone, Debug)]
struct Paint {
    /// Paint order: lower layers first, then by index.
    layer: u8,
    class: BevClass,
    shape: PaintShape,
}

#[derive(Clone, Debug)]
enum PaintShape {
    Area(Polygon),
    /// A polyline painted with round caps and joins.
    Line {
        points: Vec<P2>,
        half_width_m: f64,
    },
}

/// Paint layers, painted in this order (later layers overwrite earlier ones).
const LAYER_LAND_AREA: u8 = 0;
const LAYER_LAND_LINE: u8 = 1;
const LAYER_WALK: u8 = 2;
const LAYER_ROAD: u8 = 3;
const LAYER_CROSSING: u8 = 4;

/// Spatial index over a twin; see the module docs.
#[derive(Clone, Debug)]
pub struct TwinIndex {
    lane_segments: RTree<LaneSeg>,
    /// Building outlines' footprints (as in [`Twin::buildings`]), and their boxes.
    outlines: Vec<Polygon>,
    outline_tree: RTree<Boxed2>,
    /// Building parts' footprints (as in [`Twin::building_parts`]), and their boxes.
    parts: Vec<Polygon>,
    part_tree: RTree<Boxed2>,
    /// Volumes that rays hit.
    volumes: Vec<Solid>,
    volume_tree: RTree<VolumeBox>,
    terrain: TerrainGeom,
    paints: Vec<Paint>,
    paint_tree: RTree<Boxed2>,
}

fn finite2(p: &P2) -> bool {
    p[0].is_finite() && p[1].is_finite()
}

fn finite3(p: &P3) -> bool {
    p[0].is_finite() && p[1].is_finite() && p[2].is_finite()
}

fn polygon_is_finite(poly: &Polygon) -> bool {
    poly.exterior.iter().all(finite2) && poly.holes.iter().flatten().all(finite2)
}

fn bbox_env(b: [f64; 4]) -> Option<AABB<[f64; 2]>> {
    (b.iter().all(|v| v.is_finite()) && b[0] <= b[2] && b[1] <= b[3])
        .then(|| AABB::from_corners([b[0], b[1]], [b[2], b[3]]))
}

fn points_bbox(points: &[P2], pad_m: f64) -> [f64; 4] {
    let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for p in points {
        b[0] = b[0].min(p[0] - pad_m);
        b[1] = b[1].min(p[1] - pad_m);
        b[2] = b[2].max(p[0] + pad_m);
        b[3] = b[3].max(p[1] + pad_m);
    }
    b
}

fn line_half_width(width_m: f64) -> f64 {
    if width_m.is_finite() && width_m > 0.0 { 0.5 * width_m } else { 0.0 }
}

fn to_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl TwinIndex {
    /// Builds the index (copies the geometry it needs; `O(n log n)`).
    pub fn new(twin: &Twin) -> Self {
        let mut skipped = 0usize;

        // Lanes.
        let mut segs = Vec::new();
        for (li, lane) in twin.lanes.iter().enumerate() {
            if !lane.centerline.iter().all(finite3) {
                skipped += 1;
                continue;
            }
            let mut s = 0.0;
            for w in lane.centerline.windows(2) {
                let len_m = dist3(w[0], w[1]);
                segs.push(LaneSeg { lane: to_u32(li), a: w[0], b: w[1], s0_m: s, len_m });
                s += len_m;
            }
            if lane.centerline.len() == 1 {
                let p = lane.centerline[0];
                segs.push(LaneSeg { lane: to_u32(li), a: p, b: p, s0_m: 0.0, len_m: 0.0 });
            }
        }

        // Building footprints (2D) and volumes (3D).
        let footprint_index = |list: &[Building], skipped: &mut usize| {
            let mut polys = Vec::with_capacity(list.len());
            let mut boxes = Vec::new();
            for (i, b) in list.iter().enumerate() {
                let ok = polygon_is_finite(&b.footprint) && b.footprint.exterior.len() >= 3;
                match bbox_env(b.footprint.bbox()).filter(|_| ok) {
                    Some(env) => boxes.push(Boxed2 { idx: to_u32(i), env }),
                    None => *skipped += 1,
                }
                polys.push(if ok { b.footprint.clone() } else { Polygon::default() });
            }
            (polys, RTree::bulk_load(boxes))
        };
        let (outlines, outline_tree) = footprint_index(&twin.buildings, &mut skipped);
        let (parts, part_tree) = footprint_index(&twin.building_parts, &mut skipped);

        let mut volumes = Vec::new();
        let mut add_volume = |b: &Building, poly: &Polygon, target: HitTarget| {
            let bottom_m = b.base_elevation_m + b.min_height_m;
            let top_m = b.base_elevation_m + b.height_m;
            if poly.exterior.len() >= 3 && bottom_m.is_finite() && top_m.is_finite() && top_m > bottom_m {
                volumes.push(Solid { footprint: poly.clone(), bottom_m, top_m, target });
            }
        };
        for (i, b) in twin.buildings.iter().enumerate() {
            let replaced = b.parts_replace_outline && b.parts.iter().any(|&p| (p as usize) < twin.building_parts.len());
            if !replaced {
                add_volume(b, &outlines[i], HitTarget::Building(to_u32(i)));
            }
        }
        for (i, b) in twin.building_parts.iter().enumerate() {
            add_volume(b, &parts[i], HitTarget::BuildingPart(to_u32(i)));
        }
        let volume_boxes = volumes
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let b = v.footprint.bbox();
                // Padded so that rounding never culls a hit on the box's faces.
                let pad = 1e-6 * (1.0 + b.iter().chain([&v.bottom_m, &v.top_m]).fold(0.0f64, |m, x| m.max(x.abs())));
                VolumeBox {
                    idx: to_u32(i),
                    env: AABB::from_corners(
                        [b[0] - pad, b[1] - pad, v.bottom_m - pad],
                        [b[2] + pad, b[3] + pad, v.top_m + pad],
                    ),
                }
            })
            .collect();

        // Terrain.
        let terrain = match &twin.terrain {
            Terrain::Flat { elevation_m } if elevation_m.is_finite() => TerrainGeom::Flat(*elevation_m),
            Terrain::Flat { .. } => {
                tracing::warn!("flat terrain with a non-finite elevation: ray casts ignore the terrain");
                TerrainGeom::None
            }
            Terrain::Grid { origin_m, cell_m, nx, ny, elevation_m, .. } => {
                let (nx, ny) = (*nx as usize, *ny as usize);
                let valid = nx >= 1
                    && ny >= 1
                    && nx.checked_mul(ny) == Some(elevation_m.len())
                    && cell_m.is_finite()
                    && *cell_m > 0.0
                    && finite2(origin_m);
                let (min_m, max_m) = elevation_m
                    .iter()
                    .filter(|z| z.is_finite())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &z| (lo.min(z as f64), hi.max(z as f64)));
                if valid && min_m <= max_m {
                    TerrainGeom::Grid {
                        origin_m: *origin_m,
                        cell_m: *cell_m,
                        nx,
                        ny,
                        elevation_m: elevation_m.clone(),
                        min_m,
                        max_m,
                    }
                } else {
                    tracing::warn!(
                        nx,
                        ny,
                        samples = elevation_m.len(),
                        "invalid terrain grid: ray casts ignore the terrain"
                    );
                    TerrainGeom::None
                }
            }
        };

        // BEV paint layers.
        let mut paints = Vec::new();
        for lc in &twin.land_cover {
            let class = BevClass::from_land(lc.kind);
            match &lc.geometry {
                LandGeometry::Area(poly) if polygon_is_finite(poly) && poly.exterior.len() >= 3 => {
                    paints.push(Paint { layer: LAYER_LAND_AREA, class, shape: PaintShape::Area(poly.clone()) })
                }
                LandGeometry::Line { points, width_m } if points.iter().all(finite2) && !points.is_empty() => paints
                    .push(Paint {
                        layer: LAYER_LAND_LINE,
                        class,
                        shape: PaintShape::Line { points: points.clone(), half_width_m: line_half_width(*width_m) },
                    }),
                _ => skipped += 1,
            }
        }
        for e in &twin.walk_edges {
            let (layer, class) = match e.kind {
                WalkKind::Crossing => (LAYER_CROSSING, BevClass::Crossing),
                // Shared roads are painted by their lanes.
                WalkKind::SharedRoad => continue,
                WalkKind::Footway | WalkKind::Sidewalk | WalkKind::Pedestrian | WalkKind::Steps => {
                    (LAYER_WALK, BevClass::Sidewalk)
                }
            };
            if e.polyline.is_empty() || !e.polyline.iter().all(finite3) {
                skipped += 1;
                continue;
            }
            let points = e.polyline.iter().map(|p| [p[0], p[1]]).collect();
            paints.push(Paint {
                layer,
                class,
                shape: PaintShape::Line { points, half_width_m: line_half_width(e.width_m) },
            });
        }
        for lane in &twin.lanes {
            if lane.centerline.is_empty() || !lane.centerline.iter().all(finite3) {
                continue; // Counted above.
            }
            let points = lane.centerline.iter().map(|p| [p[0], p[1]]).collect();
            paints.push(Paint {
                layer: LAYER_ROAD,
                class: BevClass::Road,
                shape: PaintShape::Line { points, half_width_m: line_half_width(lane.width_m) },
            });
        }
        // Paths through junctions are road too (the lanes stop at the junction's edge).
        for c in &twin.lane_connections {
            let Some(lane) = twin.lanes.get(c.from_lane as usize) else { continue };
            if c.path.len() < 2 || !c.path.iter().all(finite3) {
                continue;
            }
            let points = c.path.iter().map(|p| [p[0], p[1]]).collect();
            paints.push(Paint {
                layer: LAYER_ROAD,
                class: BevClass::Road,
                shape: PaintShape::Line { points, half_width_m: line_half_width(lane.width_m) },
            });
        }
        let paint_boxes = paints
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let b = match &p.shape {
                    PaintShape::Area(poly) => poly.bbox(),
                    PaintShape::Line { points, half_width_m } => points_bbox(points, *half_width_m),
                };
                bbox_env(b).map(|env| Boxed2 { idx: to_u32(i), env })
            })
            .collect();

        if skipped > 0 {
            tracing::warn!(skipped, "twin features with invalid geometry were left out of the spatial index");
        }
        TwinIndex {
            lane_segments: RTree::bulk_load(segs),
            outlines,
            outline_tree,
            parts,
            part_tree,
            volumes,
            volume_tree: RTree::bulk_load(volume_boxes),
            terrain,
            paints,
            paint_tree: RTree::bulk_load(paint_boxes),
        }
    }

    /// The lane whose centre line passes horizontally closest to `p` (ties: lowest index).
    pub fn nearest_lane(&self, p: P2) -> Option<LaneHit> {
        if !finite2(&p) {
            return None;
        }
        let mut best: Option<(&LaneSeg, f64)> = None;
        for (seg, d2) in self.lane_segments.nearest_neighbor_iter_with_distance_2(&p) {
            match best {
                Some((b, bd2)) => {
                    if d2 > bd2 {
                        break;
                    }
                    if seg.lane < b.lane || (seg.lane == b.lane && seg.s0_m < b.s0_m) {
                        best = Some((seg, d2));
                    }
                }
                None => best = Some((seg, d2)),
            }
        }
        let (seg, d2) = best?;
        let u = seg.project(p);
        let point = lerp3(seg.a, seg.b, u);
        Some(LaneHit { lane: seg.lane, s_m: seg.s0_m + u * seg.len_m, distance_m: d2.sqrt(), point })
    }

    /// Lanes whose centre line passes within `radius_m` of `p` (horizontally), sorted by index.
    pub fn lanes_within(&self, p: P2, radius_m: f64) -> Vec<u32> {
        if !finite2(&p) || !radius_m.is_finite() || radius_m < 0.0 {
            return Vec::new();
        }
        let mut out: Vec<u32> =
            self.lane_segments.locate_within_distance(p, radius_m * radius_m).map(|s| s.lane).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Building outlines whose footprint is within `radius_m` of `p` (0 inside it), sorted
    /// by index.
    pub fn buildings_within(&self, p: P2, radius_m: f64) -> Vec<u32> {
        if !finite2(&p) || !radius_m.is_finite() || radius_m < 0.0 {
            return Vec::new();
        }
        let query = AABB::from_corners([p[0] - radius_m, p[1] - radius_m], [p[0] + radius_m, p[1] + radius_m]);
        let r2 = radius_m * radius_m;
        let mut out: Vec<u32> = self
            .outline_tree
            .locate_in_envelope_intersecting(&query)
            .filter(|b| polygon_distance_2(&self.outlines[b.idx as usize], p) <= r2)
            .map(|b| b.idx)
            .collect();
        out.sort_unstable();
        out
    }

    /// The building outline whose footprint contains `p` (holes excluded); the lowest index
    /// when outlines overlap.
    pub fn building_at(&self, p: P2) -> Option<u32> {
        if !finite2(&p) {
            return None;
        }
        self.outline_tree
            .locate_in_envelope_intersecting(&AABB::from_point(p))
            .filter(|b| self.outlines[b.idx as usize].contains(p))
            .map(|b| b.idx)
            .min()
    }

    /// Casts a ray from `origin` along `dir` (any length, normalised here) up to `max_m`
    /// metres and returns the first surface hit: building volumes (prisms of the footprint,
    /// holes included, from `base_elevation_m + min_height_m` to `base_elevation_m +
    /// height_m`: walls, flat top and bottom; the parts instead of the outline where
    /// `parts_replace_outline`) and the terrain (the flat plane, or the bilinear grid
    /// surface as [`Terrain::elevation_at`], solved exactly cell by cell).
    ///
    /// Surfaces are two-sided, hits at `t_m = 0` count, and buildings win ties with the
    /// terrain. Returns `None` for a zero or non-finite direction or a negative `max_m`.
    pub fn raycast(&self, origin: P3, dir: P3, max_m: f64) -> Option<RayHit> {
        let len = norm3(dir);
        if !finite3(&origin) || !len.is_finite() || len <= 0.0 || max_m.is_nan() || max_m < 0.0 {
            return None;
        }
        let d = [dir[0] / len, dir[1] / len, dir[2] / len];
        let mut best: Option<(f64, P3, HitTarget)> = None;
        let mut t_best = max_m;

        // Buildings: candidates in order of where the ray enters their box.
        let selection = RaySelection { origin, dir: d, t_max: max_m };
        let mut candidates: Vec<(f64, u32)> = self
            .volume_tree
            .locate_with_selection_function(selection)
            .filter_map(|v| ray_box(origin, d, max_m, v.env.lower(), v.env.upper()).map(|(t0, _)| (t0, v.idx)))
            .collect();
        candidates.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (t_enter, idx) in candidates {
            if t_enter > t_best {
                break;
            }
            let solid = &self.volumes[idx as usize];
            if let Some((t, n)) = ray_prism(origin, d, t_best, &solid.footprint, solid.bottom_m, solid.top_m)
                && (t < t_best || best.is_none())
            {
                t_best = t;
                best = Some((t, n, solid.target));
            }
        }

        // Terrain, strictly nearer than any building hit.
        let terrain_hit = match &self.terrain {
            TerrainGeom::None => None,
            TerrainGeom::Flat(z) => ray_plane_z(origin, d, *z, t_best),
            TerrainGeom::Grid { origin_m, cell_m, nx, ny, elevation_m, min_m, max_m: zmax } => {
                let grid = GridView { origin_m: *origin_m, cell_m: *cell_m, nx: *nx, ny: *ny, z: elevation_m };
                ray_grid(&grid, origin, d, t_best, *min_m, *zmax)
            }
        };
        if let Some((t, n)) = terrain_hit
            && (best.is_none() || t < t_best)
        {
            best = Some((t, n, HitTarget::Terrain));
        }

        best.map(|(t, normal, target)| RayHit {
            t_m: t,
            point: [origin[0] + t * d[0], origin[1] + t * d[1], origin[2] + t * d[2]],
            normal,
            target,
        })
    }

    /// A bird's-eye-view raster centred on `center`, rotated by `heading_rad`; see
    /// [`BevRaster`] for the pixel convention, classes and signed distance.
    ///
    /// Errors with [`TwinError::InvalidQuery`] for an empty or oversized raster
    /// (more than [`MAX_BEV_PIXELS`] pixels with the distance margin), a non-positive
    /// resolution or non-finite arguments.
    pub fn bev_raster(
        &self,
        center: P2,
        heading_rad: f64,
        width_px: u32,
        height_px: u32,
        resolution_m: f64,
    ) -> Result<BevRaster, TwinError> {
        bev::render(self, center, heading_rad, width_px, height_px, resolution_m)
    }
}

/// Distance squared from `p` to a polygon's area (0 inside).
fn polygon_distance_2(poly: &Polygon, p: P2) -> f64 {
    if poly.contains(p) {
        return 0.0;
    }
    std::iter::once(&poly.exterior)
        .chain(poly.holes.iter())
        .flat_map(|ring| (0..ring.len()).map(move |i| (ring[i], ring[(i + 1) % ring.len()])))
        .map(|(a, b)| segment_distance_2(a, b, p))
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests;
