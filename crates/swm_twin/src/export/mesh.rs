//! The glTF export's triangles, object by object, for renderers.
//!
//! The viewer (`swm_viewer`) merges objects into spatial chunks itself, so it needs the
//! geometry of each building, lane, walk edge and land-cover area separately rather than
//! one mesh per class. The functions here return exactly what [`super::gltf`] writes for
//! that object: flat-shaded triangles (each face has its own vertices and normal), `f32`,
//! in glTF axes, which are also bevy's: `x` east, `y` up, `z` south (the twin's
//! `(x, y, z)` becomes `(x, z, -y)`), counter-clockwise front faces. Ribbons and areas are
//! lifted above the ground by the same amounts as in the glTF export, so they layer the
//! same way (land cover < roads < sidewalks < crossings).

use super::geometry::{MeshBuilder, clean_polygon};
use super::gltf::{
    CONNECTION_LIFT_M, CROSSING_LIFT_M, DEFAULT_LANE_WIDTH_M, DEFAULT_WALK_WIDTH_M, GREEN_LIFT_M, PAVED_LIFT_M,
    RAIL_LIFT_M, ROAD_LIFT_M, SIDEWALK_LIFT_M, WATER_LIFT_M, add_ribbon, add_terrain, usable_width,
};
use crate::{Building, LandCover, LandGeometry, LandKind, P3, Terrain, Twin, WalkEdge, WalkKind};

/// Flat-shaded triangles in glTF/bevy axes (`x` east, `y` up, `z` south), metres.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TriangleMesh {
    /// Vertex positions.
    pub positions: Vec<[f32; 3]>,
    /// One unit normal per vertex (the face's).
    pub normals: Vec<[f32; 3]>,
    /// Three indices into `positions` per triangle, counter-clockwise seen from the front.
    pub indices: Vec<u32>,
}

impl TriangleMesh {
    /// Number of triangles.
    pub fn triangle_count(&self) -> usize {
        self.indices.len() / 3
    }

    /// Whether there is no triangle.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Appends `other`'s triangles (indices are shifted). Returns `false`, leaving `self`
    /// unchanged, when the result would exceed `u32` indices.
    pub fn append(&mut self, other: &TriangleMesh) -> bool {
        let Ok(base) = u32::try_from(self.positions.len()) else { return false };
        if u32::try_from(self.positions.len() + other.positions.len()).is_err() {
            return false;
        }
        self.positions.extend_from_slice(&other.positions);
        self.normals.extend_from_slice(&other.normals);
        self.indices.extend(other.indices.iter().map(|i| base + i));
        true
    }
}

impl From<MeshBuilder> for TriangleMesh {
    fn from(b: MeshBuilder) -> Self {
        TriangleMesh { positions: b.positions, normals: b.normals, indices: b.indices }
    }
}

/// A building's volume: walls and roof (with the underside of raised volumes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildingMesh {
    /// Walls from `min_height_m` up to the eaves.
    pub walls: TriangleMesh,
    /// The roof, shaped by `roof.shape` (with the glTF export's fallbacks).
    pub roof: TriangleMesh,
}

/// The building's walls and roof, or `None` when it has no usable footprint or height (the
/// glTF export skips it too).
pub fn building(b: &Building) -> Option<BuildingMesh> {
    let (mut walls, mut roof) = (MeshBuilder::default(), MeshBuilder::default());
    super::roof::add_building(&mut walls, &mut roof, b)?;
    Some(BuildingMesh { walls: walls.into(), roof: roof.into() })
}

/// A ribbon `width_m` wide along `centerline` (twin frame), lifted by `lift_m`, facing up.
/// Used for lanes, walk edges and the viewer's lane markings.
pub fn ribbon(centerline: &[P3], width_m: f64, lift_m: f64) -> TriangleMesh {
    let mut m = MeshBuilder::default();
    add_ribbon(&mut m, centerline, width_m, lift_m);
    m.into()
}

/// The ribbon of lane `lane` of `twin` (as the glTF export draws it); empty for an index out
/// of range.
pub fn lane(twin: &Twin, lane: usize) -> TriangleMesh {
    let Some(l) = twin.lanes.get(lane) else { return TriangleMesh::default() };
    let lift = ROAD_LIFT_M + f64::from(l.level) * crate::LEVEL_HEIGHT_M;
    ribbon(&l.centerline, usable_width(l.width_m, DEFAULT_LANE_WIDTH_M), lift)
}

/// The height of a lane connection's deck over its path at each of its points (m): it ramps
/// from the level of the lane it leaves to the level of the lane it enters.
pub fn connection_level_lift_m(twin: &Twin, c: &crate::LaneConnection) -> Vec<f64> {
    let level = |l: u32| twin.lanes.get(l as usize).map_or(0.0, |l| f64::from(l.level)) * crate::LEVEL_HEIGHT_M;
    let (z0, z1) = (level(c.from_lane), level(c.to_lane));
    let mut cum = vec![0.0];
    for w in c.path.windows(2) {
        let d = ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt();
        cum.push(cum.last().copied().unwrap_or(0.0) + d);
    }
    let total = cum.last().copied().unwrap_or(0.0).max(1e-9);
    cum.iter().map(|s| z0 + (z1 - z0) * s / total).collect()
}

/// The ribbon of lane connection `connection` (a path through a junction), as wide as the
/// lane it leaves; empty for an index out of range.
pub fn lane_connection(twin: &Twin, connection: usize) -> TriangleMesh {
    let Some(c) = twin.lane_connections.get(connection) else { return TriangleMesh::default() };
    let width = twin
        .lanes
        .get(c.from_lane as usize)
        .map_or(DEFAULT_LANE_WIDTH_M, |l| usable_width(l.width_m, DEFAULT_LANE_WIDTH_M));
    let lifted: Vec<P3> =
        c.path.iter().zip(connection_level_lift_m(twin, c)).map(|(p, dz)| [p[0], p[1], p[2] + dz]).collect();
    ribbon(&lifted, width, CONNECTION_LIFT_M)
}

/// The ribbon of a walk edge: `Some((true, mesh))` for a crossing, `Some((false, mesh))`
/// for sidewalks, footways, pedestrian streets and steps, `None` for shared roads (drawn
/// as roads already).
pub fn walk_edge(e: &WalkEdge) -> Option<(bool, TriangleMesh)> {
    let width = usable_width(e.width_m, DEFAULT_WALK_WIDTH_M);
    match e.kind {
        WalkKind::SharedRoad => None,
        WalkKind::Crossing => Some((true, ribbon(&e.polyline, width, CROSSING_LIFT_M))),
        WalkKind::Footway | WalkKind::Sidewalk | WalkKind::Pedestrian | WalkKind::Steps => {
            Some((false, ribbon(&e.polyline, width, SIDEWALK_LIFT_M)))
        }
    }
}

/// A land-cover object draped on the terrain (areas triangulated, lines as ribbons).
pub fn land_cover(terrain: &Terrain, lc: &LandCover) -> TriangleMesh {
    const UP: P3 = [0.0, 0.0, 1.0];
    let lift = match lc.kind {
        LandKind::Water => WATER_LIFT_M,
        LandKind::Park | LandKind::Grass | LandKind::Forest => GREEN_LIFT_M,
        LandKind::Parking | LandKind::Plaza => PAVED_LIFT_M,
        LandKind::Rail => RAIL_LIFT_M,
    };
    let mut mesh = MeshBuilder::default();
    match &lc.geometry {
        LandGeometry::Area(poly) => {
            if let Some(clean) = clean_polygon(poly) {
                let verts = clean.vertices();
                let pts: Vec<P3> = verts.iter().map(|p| [p[0], p[1], terrain.elevation_at(*p) + lift]).collect();
                let tris = clean.triangulate();
                if matches!(terrain, Terrain::Flat { .. }) {
                    mesh.add_face(&pts, &tris, UP);
                } else {
                    for t in tris {
                        mesh.add_triangle(pts[t[0]], pts[t[1]], pts[t[2]], UP);
                    }
                }
            }
        }
        LandGeometry::Line { points, width_m } => {
            let p3: Vec<P3> = points.iter().map(|p| [p[0], p[1], terrain.elevation_at(*p)]).collect();
            add_ribbon(&mut mesh, &p3, *width_m, lift);
        }
    }
    mesh.into()
}

/// The terrain: the DEM grid (subsampled to at most 384 cells per axis) or, for flat
/// terrain, one quad reaching beyond the twin's extent.
pub fn terrain(twin: &Twin) -> TriangleMesh {
    let mut m = MeshBuilder::default();
    add_terrain(&mut m, twin);
    m.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_twin::test_twin;

    #[test]
    fn objects_add_up_to_the_gltf_scene() {
        let twin = test_twin();
        let walls_and_roofs: usize = twin
            .buildings
            .iter()
            .filter(|b| !b.parts_replace_outline || b.parts.is_empty())
            .chain(&twin.building_parts)
            .filter_map(building)
            .map(|m| m.walls.triangle_count() + m.roof.triangle_count())
            .sum();
        let scene = super::super::gltf::build_scene_for_tests(&twin);
        assert_eq!(walls_and_roofs, scene["buildings"], "building triangles");
        let roads: usize = (0..twin.lanes.len()).map(|i| lane(&twin, i).triangle_count()).sum::<usize>()
            + (0..twin.lane_connections.len()).map(|i| lane_connection(&twin, i).triangle_count()).sum::<usize>();
        assert_eq!(roads, scene["roads"], "road triangles");
        assert!(walls_and_roofs > 0 && roads > 0);
        let t = terrain(&twin);
        assert_eq!(t.triangle_count(), scene["terrain"]);
        let mut merged = TriangleMesh::default();
        for i in 0..twin.lanes.len() {
            assert!(merged.append(&lane(&twin, i)));
        }
        assert_eq!(merged.triangle_count() * 3, merged.indices.len());
        assert!(merged.indices.iter().all(|&i| (i as usize) < merged.positions.len()));
    }
}
