//! Exports of a [`Twin`] to formats other tools read.
//!
//! * [`geojson`]: one WGS84 `FeatureCollection` of every object (QGIS, geojson.io, kepler.gl);
//! * [`gltf`]: a binary glTF 2.0 (`.glb`) scene of extruded buildings with roofs, roads,
//!   sidewalks, land cover and terrain (Blender, three.js, any glTF viewer);
//! * [`map`]: a top-down PNG map, the first thing a person looks at;
//! * [`mesh`]: the glTF export's triangles, object by object, for renderers (the viewer);
//! * [`font`]: the small pixel font of labels on rendered images (maps, plots).
//!
//! Every export is deterministic: the same twin gives byte-identical output.

pub mod font;
pub mod geojson;
pub mod gltf;
pub mod map;
pub mod mesh;

mod geometry;
mod roof;

#[cfg(test)]
mod test_twin;

use crate::{LandGeometry, Twin, TwinError};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path`, mapping failures to [`TwinError::Io`].
fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), TwinError> {
    let io_err = |source| TwinError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::create(path).map_err(io_err)?;
    let mut writer = std::io::BufWriter::new(file);
    writer.write_all(bytes).map_err(io_err)?;
    writer.flush().map_err(io_err)?;
    Ok(())
}

/// `[min_x_m, min_y_m, max_x_m, max_y_m]` of everything drawable in the twin: the union of
/// `meta.bbox_m` (when it is a valid box) and the extent of the geometry itself. `None` when
/// the twin holds nothing with finite coordinates. The terrain grid is left out: a DEM often
/// reaches well beyond the district.
pub(crate) fn extent_m(twin: &Twin) -> Option<[f64; 4]> {
    let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    let mut add = |x: f64, y: f64| {
        if x.is_finite() && y.is_finite() {
            b[0] = b[0].min(x);
            b[1] = b[1].min(y);
            b[2] = b[2].max(x);
            b[3] = b[3].max(y);
        }
    };
    let m = twin.meta.bbox_m;
    if m.iter().all(|v| v.is_finite()) && m[2] > m[0] && m[3] > m[1] {
        add(m[0], m[1]);
        add(m[2], m[3]);
    }
    for b in twin.buildings.iter().chain(&twin.building_parts) {
        for p in &b.footprint.exterior {
            add(p[0], p[1]);
        }
    }
    for l in &twin.lanes {
        for p in &l.centerline {
            add(p[0], p[1]);
        }
    }
    for e in &twin.walk_edges {
        for p in &e.polyline {
            add(p[0], p[1]);
        }
    }
    for lc in &twin.land_cover {
        match &lc.geometry {
            LandGeometry::Area(poly) => poly.exterior.iter().for_each(|p| add(p[0], p[1])),
            LandGeometry::Line { points, .. } => points.iter().for_each(|p| add(p[0], p[1])),
        }
    }
    for j in &twin.junctions {
        add(j.center[0], j.center[1]);
    }
    for s in &twin.signals {
        add(s.position[0], s.position[1]);
    }
    (b[0] <= b[2] && b[1] <= b[3]).then_some(b)
}
