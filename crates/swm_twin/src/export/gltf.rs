//! Binary glTF 2.0 (`.glb`) export, written by hand.
//!
//! The scene has one root node named after the twin and one child node per class, each with
//! one mesh: `terrain`, `water`, `green` (parks, grass, forest), `paved` (parking, plazas),
//! `rail`, `roads` (lane ribbons and the paths through junctions), `sidewalks` (footways,
//! sidewalks, pedestrian streets, steps), `crossings` and `buildings` (two primitives: walls
//! and roofs). Classes with nothing in them are left out. Each class has a named PBR
//! material with its own colour.
//!
//! Geometry is flat-shaded (every face has its own vertices and normal), indexed with
//! `u32`, in metres. glTF is Y-up: the twin's `(x east, y north, z up)` becomes
//! `(x, z, -y)`, so north is glTF's `-Z` and elevations stay above sea level. Buildings
//! whose parts replace their outline (`parts_replace_outline`) are drawn as their parts.
//! Roads sit [`ROAD_LIFT_M`] above the ground so they do not flicker against the terrain.

use super::geometry::{MeshBuilder, clean_polygon, clean_polyline3, ribbon_edges};
use super::roof::add_building;
use crate::{LandGeometry, LandKind, P2, P3, Terrain, Twin, TwinError, WalkKind};
use serde_json::{Value, json};
use std::path::Path;

/// Height of lane ribbons above their centre line (m).
pub const ROAD_LIFT_M: f64 = 0.12;
/// Height of paths through junctions above their centre line (m): just under the lanes.
pub(super) const CONNECTION_LIFT_M: f64 = 0.11;
pub(super) const SIDEWALK_LIFT_M: f64 = 0.15;
pub(super) const CROSSING_LIFT_M: f64 = 0.16;
pub(super) const WATER_LIFT_M: f64 = 0.04;
pub(super) const GREEN_LIFT_M: f64 = 0.05;
pub(super) const PAVED_LIFT_M: f64 = 0.06;
pub(super) const RAIL_LIFT_M: f64 = 0.1;
/// Width of walk edges without a usable width (m).
pub(super) const DEFAULT_WALK_WIDTH_M: f64 = 2.0;
/// Width of lanes without a usable width (m).
pub(super) const DEFAULT_LANE_WIDTH_M: f64 = 3.2;
/// The flat terrain quad reaches this far beyond the twin's extent (m, at least).
const FLAT_TERRAIN_MARGIN_M: f64 = 50.0;
/// Terrain grids are subsampled to at most this many cells along each axis.
const MAX_TERRAIN_CELLS_PER_AXIS: usize = 384;

const GLB_MAGIC: u32 = 0x4654_6C67;
const CHUNK_JSON: u32 = 0x4E4F_534A;
const CHUNK_BIN: u32 = 0x004E_4942;
const TARGET_ARRAY_BUFFER: u32 = 34962;
const TARGET_ELEMENT_ARRAY_BUFFER: u32 = 34963;
const COMPONENT_FLOAT: u32 = 5126;
const COMPONENT_UNSIGNED_INT: u32 = 5125;
const MODE_TRIANGLES: u32 = 4;

/// A named material: sRGB base colour, roughness, whether both sides are drawn.
struct Material {
    name: &'static str,
    srgb: [u8; 3],
    roughness: f64,
    double_sided: bool,
}

const MATERIALS: [Material; 10] = [
    Material { name: "terrain", srgb: [196, 190, 172], roughness: 1.0, double_sided: false },
    Material { name: "water", srgb: [92, 148, 196], roughness: 0.15, double_sided: true },
    Material { name: "green", srgb: [126, 176, 96], roughness: 0.95, double_sided: true },
    Material { name: "paved", srgb: [182, 180, 176], roughness: 0.9, double_sided: true },
    Material { name: "rail", srgb: [122, 110, 104], roughness: 0.8, double_sided: true },
    Material { name: "road", srgb: [72, 74, 80], roughness: 0.85, double_sided: true },
    Material { name: "sidewalk", srgb: [214, 204, 184], roughness: 0.9, double_sided: true },
    Material { name: "crossing", srgb: [236, 236, 232], roughness: 0.8, double_sided: true },
    Material { name: "building_wall", srgb: [226, 220, 210], roughness: 0.8, double_sided: false },
    Material { name: "building_roof", srgb: [150, 112, 98], roughness: 0.7, double_sided: false },
];

/// Index of a material in [`MATERIALS`].
#[derive(Clone, Copy)]
enum Mat {
    Terrain = 0,
    Water,
    Green,
    Paved,
    Rail,
    Road,
    Sidewalk,
    Crossing,
    Wall,
    Roof,
}

/// The twin as a `.glb` file's bytes (see the module docs).
pub fn to_glb_bytes(twin: &Twin) -> Result<Vec<u8>, TwinError> {
    let scene = build_scene(twin);
    encode_glb(twin, &scene, "(in memory)")
}

/// Writes [`to_glb_bytes`] to `path`.
pub fn write_glb(twin: &Twin, path: &Path) -> Result<(), TwinError> {
    let scene = build_scene(twin);
    let bytes = encode_glb(twin, &scene, &path.display().to_string())?;
    super::write_bytes(path, &bytes)?;
    tracing::debug!(path = %path.display(), bytes = bytes.len(), "wrote glTF");
    Ok(())
}

/// One mesh of the scene: a name and its primitives (a builder and a material each).
struct SceneMesh {
    name: &'static str,
    primitives: Vec<(MeshBuilder, Mat)>,
}

fn build_scene(twin: &Twin) -> Vec<SceneMesh> {
    let terrain = &twin.terrain;
    let ground = |p: P2| terrain.elevation_at(p);
    let flat_ground = matches!(terrain, Terrain::Flat { .. });

    let mut terrain_mesh = MeshBuilder::default();
    add_terrain(&mut terrain_mesh, twin);

    let (mut water, mut green, mut paved, mut rail) =
        (MeshBuilder::default(), MeshBuilder::default(), MeshBuilder::default(), MeshBuilder::default());
    for lc in &twin.land_cover {
        let (mesh, lift) = match lc.kind {
            LandKind::Water => (&mut water, WATER_LIFT_M),
            LandKind::Park | LandKind::Grass | LandKind::Forest => (&mut green, GREEN_LIFT_M),
            LandKind::Parking | LandKind::Plaza => (&mut paved, PAVED_LIFT_M),
            LandKind::Rail => (&mut rail, RAIL_LIFT_M),
        };
        match &lc.geometry {
            LandGeometry::Area(poly) => {
                let Some(clean) = clean_polygon(poly) else { continue };
                let verts = clean.vertices();
                let pts: Vec<P3> = verts.iter().map(|p| [p[0], p[1], ground(*p) + lift]).collect();
                let tris = clean.triangulate();
                if flat_ground {
                    mesh.add_face(&pts, &tris, [0.0, 0.0, 1.0]);
                } else {
                    for t in tris {
                        mesh.add_triangle(pts[t[0]], pts[t[1]], pts[t[2]], [0.0, 0.0, 1.0]);
                    }
                }
            }
            LandGeometry::Line { points, width_m } => {
                let p3: Vec<P3> = points.iter().map(|p| [p[0], p[1], ground(*p) + lift]).collect();
                let (l, r) = ribbon_edges(&p3, *width_m);
                mesh.add_strip(&l, &r);
            }
        }
    }

    let mut roads = MeshBuilder::default();
    for lane in &twin.lanes {
        let width = usable_width(lane.width_m, DEFAULT_LANE_WIDTH_M);
        add_ribbon(&mut roads, &lane.centerline, width, ROAD_LIFT_M);
    }
    for c in &twin.lane_connections {
        let width = twin
            .lanes
            .get(c.from_lane as usize)
            .map_or(DEFAULT_LANE_WIDTH_M, |l| usable_width(l.width_m, DEFAULT_LANE_WIDTH_M));
        add_ribbon(&mut roads, &c.path, width, CONNECTION_LIFT_M);
    }

    let (mut sidewalks, mut crossings) = (MeshBuilder::default(), MeshBuilder::default());
    for e in &twin.walk_edges {
        let width = usable_width(e.width_m, DEFAULT_WALK_WIDTH_M);
        match e.kind {
            // Shared roads are drawn as roads already.
            WalkKind::SharedRoad => {}
            WalkKind::Crossing => add_ribbon(&mut crossings, &e.polyline, width, CROSSING_LIFT_M),
            WalkKind::Footway | WalkKind::Sidewalk | WalkKind::Pedestrian | WalkKind::Steps => {
                add_ribbon(&mut sidewalks, &e.polyline, width, SIDEWALK_LIFT_M)
            }
        }
    }

    let (mut walls, mut roofs) = (MeshBuilder::default(), MeshBuilder::default());
    let mut skipped = 0usize;
    for b in &twin.buildings {
        if b.parts_replace_outline && !b.parts.is_empty() {
            continue;
        }
        if add_building(&mut walls, &mut roofs, b).is_none() {
            skipped += 1;
        }
    }
    for b in &twin.building_parts {
        if add_building(&mut walls, &mut roofs, b).is_none() {
            skipped += 1;
        }
    }
    if skipped > 0 {
        tracing::warn!(skipped, "buildings or parts without a usable footprint or height left out of the glTF");
    }

    let meshes = vec![
        SceneMesh { name: "terrain", primitives: vec![(terrain_mesh, Mat::Terrain)] },
        SceneMesh { name: "water", primitives: vec![(water, Mat::Water)] },
        SceneMesh { name: "green", primitives: vec![(green, Mat::Green)] },
        SceneMesh { name: "paved", primitives: vec![(paved, Mat::Paved)] },
        SceneMesh { name: "rail", primitives: vec![(rail, Mat::Rail)] },
        SceneMesh { name: "roads", primitives: vec![(roads, Mat::Road)] },
        SceneMesh { name: "sidewalks", primitives: vec![(sidewalks, Mat::Sidewalk)] },
        SceneMesh { name: "crossings", primitives: vec![(crossings, Mat::Crossing)] },
        SceneMesh { name: "buildings", primitives: vec![(walls, Mat::Wall), (roofs, Mat::Roof)] },
    ];
    meshes
        .into_iter()
        .map(|m| SceneMesh {
            name: m.name,
            primitives: m.primitives.into_iter().filter(|(b, _)| !b.indices.is_empty()).collect(),
        })
        .filter(|m| !m.primitives.is_empty())
        .collect()
}

/// Triangles per mesh of the glTF scene, by mesh name (tests of [`super::mesh`]).
#[cfg(test)]
pub(super) fn build_scene_for_tests(twin: &Twin) -> std::collections::BTreeMap<&'static str, usize> {
    build_scene(twin).iter().map(|m| (m.name, m.primitives.iter().map(|(b, _)| b.indices.len() / 3).sum())).collect()
}

pub(super) fn usable_width(width_m: f64, default_m: f64) -> f64 {
    if width_m.is_finite() && width_m > 0.05 { width_m } else { default_m }
}

pub(super) fn add_ribbon(mesh: &mut MeshBuilder, centerline: &[P3], width_m: f64, lift_m: f64) {
    let lifted: Vec<P3> = clean_polyline3(centerline).iter().map(|p| [p[0], p[1], p[2] + lift_m]).collect();
    let (l, r) = ribbon_edges(&lifted, width_m);
    mesh.add_strip(&l, &r);
}

pub(super) fn add_terrain(mesh: &mut MeshBuilder, twin: &Twin) {
    const UP: P3 = [0.0, 0.0, 1.0];
    match &twin.terrain {
        Terrain::Flat { elevation_m } => {
            let Some(b) = super::extent_m(twin) else { return };
            let z = if elevation_m.is_finite() { *elevation_m } else { 0.0 };
            let m = (0.1 * (b[2] - b[0]).max(b[3] - b[1])).max(FLAT_TERRAIN_MARGIN_M);
            let (x0, y0, x1, y1) = (b[0] - m, b[1] - m, b[2] + m, b[3] + m);
            mesh.add_face(&[[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], &[[0, 1, 2], [0, 2, 3]], UP);
        }
        Terrain::Grid { origin_m, cell_m, nx, ny, elevation_m, .. } => {
            let (nx, ny) = (*nx as usize, *ny as usize);
            if nx < 2 || ny < 2 || elevation_m.len() < nx * ny || !(cell_m.is_finite() && *cell_m > 0.0) {
                tracing::warn!(nx, ny, samples = elevation_m.len(), "unusable terrain grid left out of the glTF");
                return;
            }
            let step = (nx.max(ny) - 1).div_ceil(MAX_TERRAIN_CELLS_PER_AXIS).max(1);
            let cols: Vec<usize> = axis_samples(nx, step);
            let rows: Vec<usize> = axis_samples(ny, step);
            let at = |i: usize, j: usize| -> P3 {
                let z = elevation_m[j * nx + i] as f64;
                [origin_m[0] + i as f64 * cell_m, origin_m[1] + j as f64 * cell_m, if z.is_finite() { z } else { 0.0 }]
            };
            for w in rows.windows(2) {
                for v in cols.windows(2) {
                    let (a, b, c, d) = (at(v[0], w[0]), at(v[1], w[0]), at(v[1], w[1]), at(v[0], w[1]));
                    mesh.add_triangle(a, b, c, UP);
                    mesh.add_triangle(a, c, d, UP);
                }
            }
        }
    }
}

/// Sample indices `0, step, 2 step, ..., n - 1` (the last one always included).
fn axis_samples(n: usize, step: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).step_by(step).collect();
    if v.last() != Some(&(n - 1)) {
        v.push(n - 1);
    }
    v
}

fn srgb_to_linear(c: u8) -> f64 {
    let c = c as f64 / 255.0;
    if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
}

fn export_err(path: &str, message: impl Into<String>) -> TwinError {
    TwinError::Export { path: path.to_string(), message: message.into() }
}

fn encode_glb(twin: &Twin, scene: &[SceneMesh], path: &str) -> Result<Vec<u8>, TwinError> {
    let mut bin: Vec<u8> = Vec::new();
    let mut buffer_views: Vec<Value> = Vec::new();
    let mut accessors: Vec<Value> = Vec::new();
    let mut meshes: Vec<Value> = Vec::new();
    let mut nodes: Vec<Value> = vec![Value::Null];
    let mut used_materials: Vec<usize> = Vec::new();
    let mut material_index = |m: Mat| -> usize {
        let m = m as usize;
        match used_materials.iter().position(|&u| u == m) {
            Some(i) => i,
            None => {
                used_materials.push(m);
                used_materials.len() - 1
            }
        }
    };
    let mut push_view = |bin: &mut Vec<u8>, bytes: &[u8], target: u32| -> usize {
        // Everything written is 4-byte sized; keep the alignment explicit anyway.
        while !bin.len().is_multiple_of(4) {
            bin.push(0);
        }
        let offset = bin.len();
        bin.extend_from_slice(bytes);
        buffer_views.push(json!({ "buffer": 0, "byteOffset": offset, "byteLength": bytes.len(), "target": target }));
        buffer_views.len() - 1
    };
    for mesh in scene {
        let mut primitives = Vec::new();
        for (b, mat) in &mesh.primitives {
            let count = b.positions.len();
            let (mut min, mut max) = ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]);
            for p in &b.positions {
                if !p.iter().all(|v| v.is_finite()) {
                    return Err(export_err(path, format!("non-finite vertex in mesh {}", mesh.name)));
                }
                for k in 0..3 {
                    min[k] = min[k].min(p[k]);
                    max[k] = max[k].max(p[k]);
                }
            }
            let pos_bytes: Vec<u8> = b.positions.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
            let nrm_bytes: Vec<u8> = b.normals.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
            let idx_bytes: Vec<u8> = b.indices.iter().flat_map(|v| v.to_le_bytes()).collect();
            let pos_view = push_view(&mut bin, &pos_bytes, TARGET_ARRAY_BUFFER);
            let nrm_view = push_view(&mut bin, &nrm_bytes, TARGET_ARRAY_BUFFER);
            let idx_view = push_view(&mut bin, &idx_bytes, TARGET_ELEMENT_ARRAY_BUFFER);
            accessors.push(json!({
                "bufferView": pos_view, "componentType": COMPONENT_FLOAT, "count": count, "type": "VEC3",
                "min": min, "max": max,
            }));
            accessors.push(
                json!({ "bufferView": nrm_view, "componentType": COMPONENT_FLOAT, "count": count, "type": "VEC3" }),
            );
            accessors.push(json!({
                "bufferView": idx_view, "componentType": COMPONENT_UNSIGNED_INT, "count": b.indices.len(), "type": "SCALAR",
            }));
            let a = accessors.len();
            primitives.push(json!({
                "attributes": { "POSITION": a - 3, "NORMAL": a - 2 },
                "indices": a - 1,
                "material": material_index(*mat),
                "mode": MODE_TRIANGLES,
            }));
        }
        meshes.push(json!({ "name": mesh.name, "primitives": primitives }));
        nodes.push(json!({ "name": mesh.name, "mesh": meshes.len() - 1 }));
    }
    let children: Vec<usize> = (1..nodes.len()).collect();
    let root_name = if twin.meta.name.is_empty() { "swm twin" } else { twin.meta.name.as_str() };
    nodes[0] = if children.is_empty() {
        json!({ "name": root_name })
    } else {
        json!({ "name": root_name, "children": children })
    };
    let materials: Vec<Value> = used_materials
        .iter()
        .map(|&m| {
            let m = &MATERIALS[m];
            json!({
                "name": m.name,
                "pbrMetallicRoughness": {
                    "baseColorFactor": [srgb_to_linear(m.srgb[0]), srgb_to_linear(m.srgb[1]), srgb_to_linear(m.srgb[2]), 1.0],
                    "metallicFactor": 0.0,
                    "roughnessFactor": m.roughness,
                },
                "doubleSided": m.double_sided,
            })
        })
        .collect();
    let mut root = json!({
        "asset": { "version": "2.0", "generator": concat!("swm_twin ", env!("CARGO_PKG_VERSION")) },
        "scene": 0,
        "scenes": [{ "name": root_name, "nodes": [0] }],
        "nodes": nodes,
    });
    if let Value::Object(o) = &mut root {
        if !meshes.is_empty() {
            o.insert("meshes".into(), Value::Array(meshes));
            o.insert("materials".into(), Value::Array(materials));
            o.insert("accessors".into(), Value::Array(accessors));
            o.insert("bufferViews".into(), Value::Array(buffer_views));
            o.insert("buffers".into(), json!([{ "byteLength": bin.len() }]));
        }
        if let Some(origin) = twin.meta.origin_wgs84 {
            o.insert(
                "extras".into(),
                json!({ "origin_lat_deg": origin.lat_deg, "origin_lon_deg": origin.lon_deg, "axes": "x east, y up, -z north; metres" }),
            );
        }
    }
    let mut json_bytes = serde_json::to_vec(&root).map_err(|e| export_err(path, e.to_string()))?;
    while !json_bytes.len().is_multiple_of(4) {
        json_bytes.push(b' ');
    }
    while !bin.len().is_multiple_of(4) {
        bin.push(0);
    }
    let total = 12 + 8 + json_bytes.len() + if bin.is_empty() { 0 } else { 8 + bin.len() };
    let total_u32 = u32::try_from(total)
        .map_err(|_| export_err(path, format!("the scene needs {total} bytes, beyond glTF's 4 GiB limit")))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&GLB_MAGIC.to_le_bytes());
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&total_u32.to_le_bytes());
    out.extend_from_slice(&(json_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&CHUNK_JSON.to_le_bytes());
    out.extend_from_slice(&json_bytes);
    if !bin.is_empty() {
        out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
        out.extend_from_slice(&CHUNK_BIN.to_le_bytes());
        out.extend_from_slice(&bin);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_twin::{GROUND_M, test_twin};

    struct Parsed {
        mesh_names: Vec<String>,
        material_names: Vec<String>,
        /// Per mesh name: all positions.
        positions: Vec<(String, Vec<[f32; 3]>)>,
    }

    fn parse(bytes: &[u8]) -> Parsed {
        let gltf = ::gltf::Gltf::from_slice(bytes).expect("valid glTF");
        let blob = gltf.blob.as_deref();
        let mut positions = Vec::new();
        for mesh in gltf.meshes() {
            let mut all = Vec::new();
            for prim in mesh.primitives() {
                assert_eq!(prim.mode(), ::gltf::mesh::Mode::Triangles);
                let pos = prim.get(&::gltf::Semantic::Positions).expect("positions");
                assert!(pos.min().is_some() && pos.max().is_some(), "POSITION needs min/max");
                let reader = prim.reader(|_| blob);
                let p: Vec<[f32; 3]> = reader.read_positions().expect("positions").collect();
                let n: Vec<[f32; 3]> = reader.read_normals().expect("normals").collect();
                assert_eq!(p.len(), n.len());
                let idx: Vec<u32> = reader.read_indices().expect("indices").into_u32().collect();
                assert!(!idx.is_empty() && idx.len().is_multiple_of(3));
                assert!(idx.iter().all(|&i| (i as usize) < p.len()));
                let (mn, mx) = (pos.min().unwrap(), pos.max().unwrap());
                for q in &p {
                    for k in 0..3 {
                        let (lo, hi) = (mn[k].as_f64().unwrap() as f32, mx[k].as_f64().unwrap() as f32);
                        assert!(q[k] >= lo && q[k] <= hi, "min/max must bound the data");
                    }
                }
                for v in &n {
                    assert!(((v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt() - 1.0).abs() < 1e-4);
                }
                all.extend(p);
            }
            positions.push((mesh.name().unwrap_or("").to_string(), all));
        }
        // Buffer views lie inside the buffer and are 4-byte aligned.
        let blob_len = blob.map_or(0, <[u8]>::len);
        for v in gltf.views() {
            assert_eq!(v.offset() % 4, 0);
            assert!(v.offset() + v.length() <= blob_len);
        }
        Parsed {
            mesh_names: gltf.meshes().map(|m| m.name().unwrap_or("").to_string()).collect(),
            material_names: gltf.materials().map(|m| m.name().unwrap_or("").to_string()).collect(),
            positions,
        }
    }

    #[test]
    fn glb_validates_with_named_meshes_and_bounded_positions() {
        let twin = test_twin();
        let bytes = to_glb_bytes(&twin).expect("glb");
        assert_eq!(&bytes[..4], b"glTF");
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, bytes.len());
        assert_eq!(bytes.len() % 4, 0);
        let parsed = parse(&bytes);
        for name in ["terrain", "water", "green", "paved", "rail", "roads", "sidewalks", "crossings", "buildings"] {
            assert!(parsed.mesh_names.iter().any(|n| n == name), "mesh {name} missing: {:?}", parsed.mesh_names);
        }
        let mut mats = parsed.material_names.clone();
        mats.sort();
        mats.dedup();
        assert_eq!(mats.len(), parsed.material_names.len(), "distinct materials");
        let top = twin.buildings.iter().map(|b| b.top_elevation_m()).fold(0.0, f64::max) as f32;
        for (name, ps) in &parsed.positions {
            for p in ps {
                assert!(p.iter().all(|v| v.is_finite()));
                // x east within the extent (+ terrain margin), y up between ground and the tallest top.
                assert!(p[0].abs() <= 200.0 && p[2].abs() <= 200.0, "{name}: {p:?}");
                assert!(p[1] >= GROUND_M as f32 - 1e-3 && p[1] <= top + 1e-3, "{name}: {p:?}");
            }
        }
        // North is -Z: the water (north of the road) has negative z.
        let water = &parsed.positions.iter().find(|(n, _)| n == "water").unwrap().1;
        assert!(water.iter().all(|p| p[2] < -50.0));
        // Roads sit slightly above the ground.
        let roads = &parsed.positions.iter().find(|(n, _)| n == "roads").unwrap().1;
        assert!(roads.iter().all(|p| (p[1] as f64 - GROUND_M - ROAD_LIFT_M).abs() < 0.02));
        // The tallest building reaches its height.
        let bmax =
            parsed.positions.iter().find(|(n, _)| n == "buildings").unwrap().1.iter().map(|p| p[1]).fold(0.0, f32::max);
        assert!((bmax - top).abs() < 1e-3);
        // Deterministic.
        assert_eq!(bytes, to_glb_bytes(&twin).unwrap());
    }

    #[test]
    fn parts_replace_their_outline() {
        let mut twin = test_twin();
        let with_parts = to_glb_bytes(&twin).unwrap();
        let count =
            |bytes: &[u8]| parse(bytes).positions.iter().find(|(n, _)| n == "buildings").map_or(0, |(_, p)| p.len());
        let n_parts = count(&with_parts);
        // Without parts replacing it, the outline is drawn too: more vertices.
        twin.buildings[8].parts_replace_outline = false;
        assert!(count(&to_glb_bytes(&twin).unwrap()) > n_parts);
        // The 12 m gabled part reaches 12 m above ground somewhere inside the outline.
        let bytes = to_glb_bytes(&test_twin()).unwrap();
        let b = parse(&bytes).positions.into_iter().find(|(n, _)| n == "buildings").unwrap().1;
        assert!(b.iter().any(|p| p[0] > -20.5 && p[0] < -4.5 && -p[2] > 50.0 && (p[1] - 22.0).abs() < 1e-3));
    }

    #[test]
    fn grid_terrain_and_empty_twins() {
        let mut twin = test_twin();
        let (nx, ny) = (21u32, 18u32);
        let elevation_m: Vec<f32> =
            (0..nx * ny).map(|k| 10.0 + 0.1 * (k % nx) as f32 + 0.05 * (k / nx) as f32).collect();
        twin.terrain =
            Terrain::Grid { origin_m: [-100.0, -72.0], cell_m: 10.0, nx, ny, elevation_m, source: "test".into() };
        let parsed = parse(&to_glb_bytes(&twin).unwrap());
        let terrain = &parsed.positions.iter().find(|(n, _)| n == "terrain").unwrap().1;
        assert_eq!(terrain.len(), ((nx - 1) * (ny - 1) * 6) as usize);
        assert!(terrain.iter().all(|p| p[1] >= 10.0 && p[1] <= 14.0));
        // An empty twin still gives a valid file.
        let empty = Twin::default();
        let bytes = to_glb_bytes(&empty).unwrap();
        let parsed = parse(&bytes);
        assert!(parsed.mesh_names.is_empty());
        // write_glb writes the same bytes (the file is kept for a look in a viewer).
        let path = std::env::temp_dir().join("swm_export_test_scene.glb");
        let twin = test_twin();
        write_glb(&twin, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), to_glb_bytes(&twin).unwrap());
    }
}
