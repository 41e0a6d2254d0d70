//! Planar geometry shared by the exports: ring clean-up, triangulation, ribbons.

use crate::{P2, P3, Polygon};
use geo::TriangulateEarcut;

/// Points closer than this are merged (m).
const MERGE_EPS_M: f64 = 1e-4;
/// Rings smaller than this are dropped (m²).
const MIN_RING_AREA_M2: f64 = 1e-4;

/// A polygon whose rings are finite, free of repeated points, with at least three vertices,
/// the exterior counter-clockwise and the holes clockwise.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CleanPolygon {
    pub exterior: Vec<P2>,
    pub holes: Vec<Vec<P2>>,
}

/// Drops non-finite and repeated points (including a repeated closing point).
fn clean_ring(ring: &[P2]) -> Vec<P2> {
    let mut out: Vec<P2> = Vec::with_capacity(ring.len());
    for p in ring {
        if !(p[0].is_finite() && p[1].is_finite()) {
            continue;
        }
        if out.last().is_some_and(|q| dist2(*q, *p) < MERGE_EPS_M * MERGE_EPS_M) {
            continue;
        }
        out.push(*p);
    }
    while out.len() > 1 && dist2(out[0], out[out.len() - 1]) < MERGE_EPS_M * MERGE_EPS_M {
        out.pop();
    }
    out
}

/// Cleans and orients a polygon; `None` when its exterior is degenerate.
pub(crate) fn clean_polygon(poly: &Polygon) -> Option<CleanPolygon> {
    let mut exterior = clean_ring(&poly.exterior);
    let area = Polygon::ring_signed_area_m2(&exterior);
    if exterior.len() < 3 || area.abs() < MIN_RING_AREA_M2 || !area.is_finite() {
        return None;
    }
    if area < 0.0 {
        exterior.reverse();
    }
    let holes = poly
        .holes
        .iter()
        .filter_map(|h| {
            let mut h = clean_ring(h);
            let a = Polygon::ring_signed_area_m2(&h);
            if h.len() < 3 || a.abs() < MIN_RING_AREA_M2 || !a.is_finite() {
                return None;
            }
            if a > 0.0 {
                h.reverse();
            }
            Some(h)
        })
        .collect();
    Some(CleanPolygon { exterior, holes })
}

impl CleanPolygon {
    /// All vertices, exterior first then the holes in order (the order of [`Self::triangulate`]).
    pub fn vertices(&self) -> Vec<P2> {
        let mut v = self.exterior.clone();
        for h in &self.holes {
            v.extend_from_slice(h);
        }
        v
    }

    /// The rings, exterior first.
    pub fn rings(&self) -> impl Iterator<Item = &Vec<P2>> {
        std::iter::once(&self.exterior).chain(self.holes.iter())
    }

    /// Earcut triangulation: triangles as indices into [`Self::vertices`], counter-clockwise.
    pub fn triangulate(&self) -> Vec<[usize; 3]> {
        let ring = |r: &[P2]| {
            let mut coords: Vec<geo::Coord<f64>> = r.iter().map(|p| geo::coord! { x: p[0], y: p[1] }).collect();
            coords.push(coords[0]);
            geo::LineString::new(coords)
        };
        let poly = geo::Polygon::new(ring(&self.exterior), self.holes.iter().map(|h| ring(h)).collect());
        let raw = poly.earcut_triangles_raw();
        let verts = self.vertices();
        if raw.vertices.len() != verts.len() {
            tracing::debug!(
                expected = verts.len(),
                found = raw.vertices.len(),
                "earcut returned an unexpected vertex count; skipping the cap"
            );
            return Vec::new();
        }
        raw.triangle_indices
            .chunks_exact(3)
            .filter_map(|t| {
                let (a, b, c) = (t[0], t[1], t[2]);
                let area = cross(sub(verts[b], verts[a]), sub(verts[c], verts[a]));
                if area.abs() < 1e-12 {
                    None
                } else if area > 0.0 {
                    Some([a, b, c])
                } else {
                    Some([a, c, b])
                }
            })
            .collect()
    }

    /// Whether the polygon has no holes and every corner turns left (within a tolerance).
    pub fn is_convex(&self) -> bool {
        if !self.holes.is_empty() {
            return false;
        }
        let r = &self.exterior;
        let n = r.len();
        (0..n).all(|i| {
            let a = r[(i + n - 1) % n];
            let b = r[i];
            let c = r[(i + 1) % n];
            let (u, v) = (sub(b, a), sub(c, b));
            cross(u, v) >= -1e-6 * (norm(u) * norm(v)).max(1e-12)
        })
    }

    /// Whether every exterior edge is seen counter-clockwise from `c` (the polygon is
    /// star-shaped around `c`, so a fan of triangles to `c` covers it without overlaps).
    pub fn is_star_shaped_from(&self, c: P2) -> bool {
        if !self.holes.is_empty() {
            return false;
        }
        let r = &self.exterior;
        let n = r.len();
        (0..n).all(|i| {
            let (a, b) = (sub(r[i], c), sub(r[(i + 1) % n], c));
            cross(a, b) > 1e-9 * (norm(a) * norm(b)).max(1e-12)
        })
    }

    /// Area-weighted centroid of the exterior.
    pub fn centroid(&self) -> P2 {
        Polygon { exterior: self.exterior.clone(), holes: Vec::new() }.centroid()
    }

    /// Area of the exterior minus the holes (m²).
    pub fn area_m2(&self) -> f64 {
        Polygon::ring_signed_area_m2(&self.exterior).abs()
            - self.holes.iter().map(|h| Polygon::ring_signed_area_m2(h).abs()).sum::<f64>()
    }

    /// The minimum-area bounding rectangle's long axis: `(unit direction, length_m, width_m)`.
    pub fn long_axis(&self) -> (P2, f64, f64) {
        let r = &self.exterior;
        let n = r.len();
        let mut best: Option<(f64, P2, f64, f64)> = None;
        // Every edge direction is a candidate (the optimal rectangle has a side on an edge);
        // large footprints are subsampled to stay linear-ish.
        let step = (n / 256).max(1);
        for i in (0..n).step_by(step) {
            let d = sub(r[(i + 1) % n], r[i]);
            let len = norm(d);
            if len < 1e-9 {
                continue;
            }
            let u = [d[0] / len, d[1] / len];
            let v = [-u[1], u[0]];
            let (mut umin, mut umax, mut vmin, mut vmax) =
                (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
            for p in r {
                let (pu, pv) = (dot(*p, u), dot(*p, v));
                umin = umin.min(pu);
                umax = umax.max(pu);
                vmin = vmin.min(pv);
                vmax = vmax.max(pv);
            }
            let (lu, lv) = (umax - umin, vmax - vmin);
            let area = lu * lv;
            if best.as_ref().is_none_or(|b| area < b.0 - 1e-9) {
                best = Some(if lu >= lv { (area, u, lu, lv) } else { (area, v, lv, lu) });
            }
        }
        match best {
            Some((_, dir, length, width)) => (dir, length, width),
            None => ([1.0, 0.0], 0.0, 0.0),
        }
    }
}

pub(crate) fn sub(a: P2, b: P2) -> P2 {
    [a[0] - b[0], a[1] - b[1]]
}
pub(crate) fn dot(a: P2, b: P2) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}
pub(crate) fn cross(a: P2, b: P2) -> f64 {
    a[0] * b[1] - a[1] * b[0]
}
pub(crate) fn norm(a: P2) -> f64 {
    a[0].hypot(a[1])
}
pub(crate) fn dist2(a: P2, b: P2) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// Drops non-finite and repeated points of a 3D polyline.
pub(crate) fn clean_polyline3(points: &[P3]) -> Vec<P3> {
    let mut out: Vec<P3> = Vec::with_capacity(points.len());
    for p in points {
        if !p.iter().all(|v| v.is_finite()) {
            continue;
        }
        if out.last().is_some_and(|q| dist2([q[0], q[1]], [p[0], p[1]]) < MERGE_EPS_M * MERGE_EPS_M) {
            continue;
        }
        out.push(*p);
    }
    out
}

/// The left and right edges of a ribbon of `width_m` around a polyline (mitred joins, the
/// mitre limited to twice the half width). Returns `(left, right)` with one point per input
/// point; empty when the polyline has fewer than two distinct points.
pub(crate) fn ribbon_edges(points: &[P3], width_m: f64) -> (Vec<P3>, Vec<P3>) {
    let pts = clean_polyline3(points);
    let n = pts.len();
    if n < 2 || !(width_m.is_finite() && width_m > 0.0) {
        return (Vec::new(), Vec::new());
    }
    let half = 0.5 * width_m;
    let seg_normal = |i: usize| -> P2 {
        let d = sub([pts[i + 1][0], pts[i + 1][1]], [pts[i][0], pts[i][1]]);
        let l = norm(d).max(1e-12);
        [-d[1] / l, d[0] / l]
    };
    let mut left = Vec::with_capacity(n);
    let mut right = Vec::with_capacity(n);
    for (i, p) in pts.iter().enumerate() {
        let nrm = if i == 0 {
            seg_normal(0)
        } else if i == n - 1 {
            seg_normal(n - 2)
        } else {
            let (a, b) = (seg_normal(i - 1), seg_normal(i));
            let m = [a[0] + b[0], a[1] + b[1]];
            let ml = norm(m);
            if ml < 1e-6 {
                a
            } else {
                // Scale so the offset edges stay `half` from both segments, capped at 2x.
                let mu = [m[0] / ml, m[1] / ml];
                let cos_half = dot(mu, a).max(0.5);
                [mu[0] / cos_half, mu[1] / cos_half]
            }
        };
        left.push([p[0] + nrm[0] * half, p[1] + nrm[1] * half, p[2]]);
        right.push([p[0] - nrm[0] * half, p[1] - nrm[1] * half, p[2]]);
    }
    (left, right)
}

/// Triangles for a glTF primitive: flat-shaded (each face has its own vertices and normal),
/// already in glTF axes (`x` east, `y` up, `z` south) as `f32`.
#[derive(Clone, Debug, Default)]
pub(crate) struct MeshBuilder {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    pub indices: Vec<u32>,
}

/// Twin frame (`x` east, `y` north, `z` up) to glTF (`x`, `z`, `-y`): a proper rotation, so
/// counter-clockwise seen from above stays counter-clockwise seen from above.
pub(crate) fn gltf_from_twin(p: P3) -> [f32; 3] {
    [p[0] as f32, p[2] as f32, -p[1] as f32]
}

fn sub3(a: P3, b: P3) -> P3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn cross3(a: P3, b: P3) -> P3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}
fn dot3(a: P3, b: P3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

impl MeshBuilder {
    #[cfg(test)]
    pub fn triangle_count(&self) -> usize {
        self.indices.len() / 3
    }

    /// Adds a planar face given as points in the twin frame and triangles indexing them.
    /// The face is oriented (winding and normal) to agree with `outward`; degenerate
    /// triangles and faces with non-finite points are skipped.
    pub fn add_face(&mut self, points: &[P3], tris: &[[usize; 3]], outward: P3) {
        if points.is_empty() || !points.iter().all(|p| p.iter().all(|v| v.is_finite())) {
            return;
        }
        let mut kept: Vec<[usize; 3]> = Vec::with_capacity(tris.len());
        let mut n = [0.0; 3];
        for t in tris {
            if t.iter().any(|&i| i >= points.len()) {
                continue;
            }
            let c = cross3(sub3(points[t[1]], points[t[0]]), sub3(points[t[2]], points[t[0]]));
            let len2 = dot3(c, c);
            if len2 < 1e-16 {
                continue;
            }
            n = [n[0] + c[0], n[1] + c[1], n[2] + c[2]];
            kept.push(*t);
        }
        let len = dot3(n, n).sqrt();
        if kept.is_empty() || len.is_nan() || len <= 1e-12 {
            return;
        }
        let mut n = [n[0] / len, n[1] / len, n[2] / len];
        let flip = dot3(n, outward) < 0.0;
        if flip {
            n = [-n[0], -n[1], -n[2]];
        }
        let Ok(base) = u32::try_from(self.positions.len()) else {
            return;
        };
        if u32::try_from(self.positions.len() + points.len()).is_err() {
            return;
        }
        let normal = gltf_from_twin(n);
        for p in points {
            self.positions.push(gltf_from_twin(*p));
            self.normals.push(normal);
        }
        for t in kept {
            let (a, b, c) = (t[0] as u32, t[1] as u32, t[2] as u32);
            if flip {
                self.indices.extend_from_slice(&[base + a, base + c, base + b]);
            } else {
                self.indices.extend_from_slice(&[base + a, base + b, base + c]);
            }
        }
    }

    /// Adds one triangle as its own face.
    pub fn add_triangle(&mut self, a: P3, b: P3, c: P3, outward: P3) {
        self.add_face(&[a, b, c], &[[0, 1, 2]], outward);
    }

    /// Adds a strip between two polylines of equal length (a ribbon), one face per triangle,
    /// facing up.
    pub fn add_strip(&mut self, left: &[P3], right: &[P3]) {
        const UP: P3 = [0.0, 0.0, 1.0];
        for i in 0..left.len().min(right.len()).saturating_sub(1) {
            self.add_triangle(right[i], right[i + 1], left[i + 1], UP);
            self.add_triangle(right[i], left[i + 1], left[i], UP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_polygon_orients_and_drops_degenerates() {
        let p = Polygon {
            exterior: vec![[0.0, 0.0], [0.0, 10.0], [10.0, 10.0], [10.0, 0.0], [0.0, 0.0]],
            holes: vec![vec![[2.0, 2.0], [4.0, 2.0], [4.0, 4.0], [2.0, 4.0]], vec![[1.0, 1.0], [1.0, 1.0]]],
        };
        let c = clean_polygon(&p).expect("valid");
        assert_eq!(c.exterior.len(), 4);
        assert!(Polygon::ring_signed_area_m2(&c.exterior) > 0.0);
        assert_eq!(c.holes.len(), 1);
        assert!(Polygon::ring_signed_area_m2(&c.holes[0]) < 0.0);
        let tris = c.triangulate();
        let v = c.vertices();
        let area: f64 = tris.iter().map(|t| 0.5 * cross(sub(v[t[1]], v[t[0]]), sub(v[t[2]], v[t[0]]))).sum();
        assert!((area - 96.0).abs() < 1e-9, "{area}");
        assert!(clean_polygon(&Polygon { exterior: vec![[0.0, 0.0], [1.0, 1.0]], holes: vec![] }).is_none());
    }

    #[test]
    fn long_axis_of_a_rotated_rectangle() {
        let (s, c) = 0.3f64.sin_cos();
        let rect: Vec<P2> = [[0.0, 0.0], [20.0, 0.0], [20.0, 8.0], [0.0, 8.0]]
            .iter()
            .map(|p: &P2| [c * p[0] - s * p[1], s * p[0] + c * p[1]])
            .collect();
        let poly = clean_polygon(&Polygon { exterior: rect, holes: vec![] }).expect("valid");
        let (dir, len, wid) = poly.long_axis();
        assert!((len - 20.0).abs() < 1e-9 && (wid - 8.0).abs() < 1e-9);
        assert!((dir[0].abs() - c).abs() < 1e-9 && (dir[1].abs() - s).abs() < 1e-9);
        assert!(poly.is_convex());
    }
}
