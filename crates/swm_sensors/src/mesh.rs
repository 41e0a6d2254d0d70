//! The twin's static surfaces as a triangle mesh, for ray casting.
//!
//! # Buildings
//!
//! The same volumes as [`swm_twin::TwinIndex::raycast`]: every building outline, except those
//! whose `building:part`s replace it (`parts_replace_outline` with at least one valid part),
//! and every part. A volume spans `base_elevation_m + min_height_m` to
//! `base_elevation_m + height_m`. Its roof takes the top `roof.height_m`:
//!
//! * flat roofs (and any roof lower than [`MIN_ROOF_M`]) are a cap at the top, triangulated by
//!   ear cutting (holes kept);
//! * every other `roof:shape` is built as a **pyramid** with its apex over the footprint's
//!   centroid at the top and walls up to the eaves, when the footprint has no holes and is
//!   star-shaped around its centroid; otherwise flat. This is coarser than the glTF export's
//!   gabled and hipped roofs, but it keeps the roof's volume and height, which is what a lidar
//!   sees from the street or from a drone a few tens of metres away.
//! * raised volumes (`min_height_m > 0`: bridges between towers, canopies) get an underside.
//!
//! Footprints are cleaned first: non-finite and repeated points are dropped; rings with fewer
//! than three points or no area are skipped (with a `tracing` debug line).
//!
//! # Terrain
//!
//! A DEM grid becomes two triangles per cell (split along the south-west–north-east diagonal),
//! exact at the grid samples; [`swm_twin::Terrain::elevation_at`] interpolates bilinearly, so
//! inside a cell the two differ by at most a quarter of the cell's twist. Flat terrain is a
//! square of two triangles reaching [`FLAT_TERRAIN_MARGIN_M`] beyond the twin's extent.

use swm_twin::{Building, P2, P3, Polygon, Terrain, Twin};

/// Roofs lower than this are built flat (m).
pub const MIN_ROOF_M: f64 = 0.05;
/// How far the flat ground plane reaches beyond the twin's buildings and bounding box (m).
pub const FLAT_TERRAIN_MARGIN_M: f64 = 2000.0;

/// What a triangle belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Surface {
    /// Index into [`Twin::buildings`].
    Building(u32),
    /// Index into [`Twin::building_parts`].
    BuildingPart(u32),
    /// The ground.
    Terrain,
}

/// Triangles in the twin frame (ENU, metres) with the surface each belongs to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StaticMesh {
    /// Vertex positions.
    pub vertices: Vec<P3>,
    /// Vertex indices, three per triangle.
    pub triangles: Vec<[u32; 3]>,
    /// The surface of each triangle (same length as `triangles`).
    pub surfaces: Vec<Surface>,
}

impl StaticMesh {
    /// Builds the mesh of every building volume and the terrain; see the module docs.
    pub fn from_twin(twin: &Twin) -> Self {
        let mut mesh = StaticMesh::default();
        let mut skipped = 0usize;
        for (i, b) in twin.buildings.iter().enumerate() {
            let replaced = b.parts_replace_outline && b.parts.iter().any(|&p| (p as usize) < twin.building_parts.len());
            if !replaced && !mesh.add_building(b, Surface::Building(i as u32)) {
                skipped += 1;
            }
        }
        for (i, b) in twin.building_parts.iter().enumerate() {
            if !mesh.add_building(b, Surface::BuildingPart(i as u32)) {
                skipped += 1;
            }
        }
        if skipped > 0 {
            tracing::debug!(skipped, "building volumes without a usable footprint or height were left out of the mesh");
        }
        mesh.add_terrain(twin);
        tracing::debug!(triangles = mesh.triangles.len(), vertices = mesh.vertices.len(), "static mesh built");
        mesh
    }

    /// Number of triangles.
    pub fn len(&self) -> usize {
        self.triangles.len()
    }

    /// True when the mesh has no triangles.
    pub fn is_empty(&self) -> bool {
        self.triangles.is_empty()
    }

    /// The three corners of triangle `i`.
    pub fn triangle(&self, i: usize) -> [P3; 3] {
        let t = self.triangles[i];
        [self.vertices[t[0] as usize], self.vertices[t[1] as usize], self.vertices[t[2] as usize]]
    }

    /// Appends a triangle.
    pub fn push_triangle(&mut self, corners: [P3; 3], surface: Surface) {
        let base = self.vertices.len() as u32;
        self.vertices.extend_from_slice(&corners);
        self.triangles.push([base, base + 1, base + 2]);
        self.surfaces.push(surface);
    }

    /// Adds one building volume; false when it has no usable footprint or height.
    pub fn add_building(&mut self, b: &Building, surface: Surface) -> bool {
        let Some(poly) = clean_polygon(&b.footprint) else { return false };
        if !(b.base_elevation_m.is_finite() && b.height_m.is_finite()) {
            return false;
        }
        let min_h = if b.min_height_m.is_finite() { b.min_height_m.max(0.0) } else { 0.0 };
        let z_bottom = b.base_elevation_m + min_h;
        let z_top = b.base_elevation_m + b.height_m;
        if z_top <= z_bottom {
            return false;
        }
        let roof_h = if b.roof.height_m.is_finite() { b.roof.height_m.clamp(0.0, z_top - z_bottom) } else { 0.0 };
        let centroid = ring_centroid(&poly.exterior);
        let pyramid = b.roof.shape != swm_twin::RoofShape::Flat
            && roof_h >= MIN_ROOF_M
            && poly.holes.is_empty()
            && star_shaped_from(&poly.exterior, centroid);
        let z_eave = if pyramid { z_top - roof_h } else { z_top };
        for ring in std::iter::once(&poly.exterior).chain(poly.holes.iter()) {
            for k in 0..ring.len() {
                let (a, c) = (ring[k], ring[(k + 1) % ring.len()]);
                let (a0, c0) = ([a[0], a[1], z_bottom], [c[0], c[1], z_bottom]);
                let (a1, c1) = ([a[0], a[1], z_eave], [c[0], c[1], z_eave]);
                self.push_triangle([a0, c0, c1], surface);
                self.push_triangle([a0, c1, a1], surface);
            }
        }
        if pyramid {
            let apex = [centroid[0], centroid[1], z_top];
            let ring = &poly.exterior;
            for k in 0..ring.len() {
                let (a, c) = (ring[k], ring[(k + 1) % ring.len()]);
                self.push_triangle([[a[0], a[1], z_eave], [c[0], c[1], z_eave], apex], surface);
            }
        } else {
            self.add_cap(&poly, z_top, surface);
        }
        if min_h > 0.0 {
            self.add_cap(&poly, z_bottom, surface);
        }
        true
    }

    fn add_cap(&mut self, poly: &CleanPolygon, z_m: f64, surface: Surface) {
        use geo::TriangulateEarcut;
        let ring = |r: &Vec<P2>| geo::LineString::from(r.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
        let gp = geo::Polygon::new(ring(&poly.exterior), poly.holes.iter().map(ring).collect());
        let raw = gp.earcut_triangles_raw();
        for t in raw.triangle_indices.chunks_exact(3) {
            let v = |i: usize| [raw.vertices[i][0], raw.vertices[i][1], z_m];
            self.push_triangle([v(t[0]), v(t[1]), v(t[2])], surface);
        }
    }

    fn add_terrain(&mut self, twin: &Twin) {
        match &twin.terrain {
            Terrain::Flat { elevation_m } => {
                if !elevation_m.is_finite() {
                    tracing::warn!("flat terrain with a non-finite elevation: the lidar mesh has no ground");
                    return;
                }
                let mut b = twin.meta.bbox_m;
                if !b.iter().all(|v| v.is_finite()) || b[0] > b[2] || b[1] > b[3] {
                    b = [0.0; 4];
                }
                for v in &self.vertices {
                    b = [b[0].min(v[0]), b[1].min(v[1]), b[2].max(v[0]), b[3].max(v[1])];
                }
                let m = FLAT_TERRAIN_MARGIN_M;
                let (x0, y0, x1, y1, z) = (b[0] - m, b[1] - m, b[2] + m, b[3] + m, *elevation_m);
                self.push_triangle([[x0, y0, z], [x1, y0, z], [x1, y1, z]], Surface::Terrain);
                self.push_triangle([[x0, y0, z], [x1, y1, z], [x0, y1, z]], Surface::Terrain);
            }
            Terrain::Grid { origin_m, cell_m, nx, ny, elevation_m, source } => {
                let (nx, ny) = (*nx as usize, *ny as usize);
                let valid = nx >= 2
                    && ny >= 2
                    && nx.checked_mul(ny) == Some(elevation_m.len())
                    && cell_m.is_finite()
                    && *cell_m > 0.0
                    && origin_m.iter().all(|v| v.is_finite())
                    && elevation_m.iter().all(|v| v.is_finite());
                if !valid {
                    tracing::warn!(source = %source, nx, ny, "invalid terrain grid: the lidar mesh has no ground");
                    return;
                }
                let base = self.vertices.len() as u32;
                for j in 0..ny {
                    for i in 0..nx {
                        let z = elevation_m[j * nx + i] as f64;
                        self.vertices.push([origin_m[0] + i as f64 * cell_m, origin_m[1] + j as f64 * cell_m, z]);
                    }
                }
                let id = |i: usize, j: usize| base + (j * nx + i) as u32;
                for j in 0..ny - 1 {
                    for i in 0..nx - 1 {
                        self.triangles.push([id(i, j), id(i + 1, j), id(i + 1, j + 1)]);
                        self.triangles.push([id(i, j), id(i + 1, j + 1), id(i, j + 1)]);
                        self.surfaces.push(Surface::Terrain);
                        self.surfaces.push(Surface::Terrain);
                    }
                }
            }
        }
    }
}

/// A footprint with finite, de-duplicated rings of at least three points.
#[derive(Clone, Debug)]
struct CleanPolygon {
    exterior: Vec<P2>,
    holes: Vec<Vec<P2>>,
}

fn clean_ring(ring: &[P2]) -> Option<Vec<P2>> {
    const MERGE_EPS_M: f64 = 1e-4;
    let close = |a: P2, b: P2| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) < MERGE_EPS_M * MERGE_EPS_M;
    let mut out: Vec<P2> = Vec::with_capacity(ring.len());
    for p in ring.iter().filter(|p| p[0].is_finite() && p[1].is_finite()) {
        if out.last().is_some_and(|q| close(*q, *p)) {
            continue;
        }
        out.push(*p);
    }
    while out.len() > 1 && close(out[0], out[out.len() - 1]) {
        out.pop();
    }
    (out.len() >= 3 && Polygon::ring_signed_area_m2(&out).abs() > 1e-4).then_some(out)
}

fn clean_polygon(poly: &Polygon) -> Option<CleanPolygon> {
    let exterior = clean_ring(&poly.exterior)?;
    let holes = poly.holes.iter().filter_map(|h| clean_ring(h)).collect();
    Some(CleanPolygon { exterior, holes })
}

/// Area centroid of a ring (the vertex mean for a degenerate one).
fn ring_centroid(ring: &[P2]) -> P2 {
    let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
    let o = ring[0];
    for k in 0..ring.len() {
        let p = [ring[k][0] - o[0], ring[k][1] - o[1]];
        let q = [ring[(k + 1) % ring.len()][0] - o[0], ring[(k + 1) % ring.len()][1] - o[1]];
        let w = p[0] * q[1] - q[0] * p[1];
        a += w;
        cx += (p[0] + q[0]) * w;
        cy += (p[1] + q[1]) * w;
    }
    if a.abs() < 1e-12 {
        let n = ring.len() as f64;
        return [ring.iter().map(|p| p[0]).sum::<f64>() / n, ring.iter().map(|p| p[1]).sum::<f64>() / n];
    }
    [o[0] + cx / (3.0 * a), o[1] + cy / (3.0 * a)]
}

/// True when every edge of the ring is seen from `c` with the same orientation (so the fan of
/// triangles from `c` covers the footprint without overlaps).
fn star_shaped_from(ring: &[P2], c: P2) -> bool {
    let sign = Polygon::ring_signed_area_m2(ring).signum();
    (0..ring.len()).all(|k| {
        let (a, b) = (ring[k], ring[(k + 1) % ring.len()]);
        let w = (a[0] - c[0]) * (b[1] - c[1]) - (b[0] - c[0]) * (a[1] - c[1]);
        w * sign > 1e-9
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_shape_of_a_square_and_an_l() {
        let sq = vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert!(star_shaped_from(&sq, ring_centroid(&sq)));
        let c = ring_centroid(&sq);
        assert!((c[0] - 0.5).abs() < 1e-12 && (c[1] - 0.5).abs() < 1e-12);
        // A thin U: its centroid lies in the gap, outside the footprint.
        let u = vec![[0.0, 0.0], [3.0, 0.0], [3.0, 3.0], [2.9, 3.0], [2.9, 0.1], [0.1, 0.1], [0.1, 3.0], [0.0, 3.0]];
        assert!(!star_shaped_from(&u, ring_centroid(&u)));
    }

    #[test]
    fn repeated_and_non_finite_points_are_cleaned() {
        let p = Polygon {
            exterior: vec![[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [f64::NAN, 3.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]],
            holes: vec![vec![[0.2, 0.2], [0.3, 0.2]]],
        };
        let c = clean_polygon(&p).unwrap();
        assert_eq!(c.exterior.len(), 4);
        assert!(c.holes.is_empty());
    }
}
