//! Building volumes for the glTF export: walls from `min_height_m` up to the eaves and a
//! roof occupying the top `roof.height_m` of the volume, shaped by `roof.shape`.
//!
//! Shapes map to a few families: flat; skillion (one plane); gabled (two planes meeting at
//! a ridge along `direction_rad` or the footprint's long axis; also gambrel and saltbox);
//! hipped (the straight skeleton of a convex footprint, computed exactly as the region of
//! each edge; also half-hipped and mansard); pyramidal (apex over the centroid); dome and
//! round (rings scaled toward the centroid on a quarter circle); onion (rings on an onion
//! profile). A shape that the footprint cannot carry cleanly falls back: hipped to pyramidal,
//! gabled to pyramidal on footprints far from a rectangle, pyramidal and domes to flat when
//! the footprint is not star-shaped around its centroid (or has holes).

use super::geometry::{CleanPolygon, MeshBuilder, clean_polygon, cross, dot, norm, sub};
use crate::{Building, P2, P3, RoofShape};

/// The thinnest volume drawn (m).
const MIN_VOLUME_M: f64 = 0.1;
/// Roofs lower than this are drawn flat (m).
const MIN_ROOF_M: f64 = 0.05;
/// Gabled roofs need a footprint that fills this much of its minimum bounding rectangle.
const GABLE_MIN_RECTANGULARITY: f64 = 0.7;
const UP: P3 = [0.0, 0.0, 1.0];

/// The roof family actually built (after fallbacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BuiltRoof {
    Flat,
    Skillion,
    Gabled,
    Hipped,
    Pyramidal,
    Dome,
    Onion,
}

/// Adds a building's walls to `walls` and its roof (and underside, for raised volumes) to
/// `roofs`. Returns the roof family built, or `None` when the building has no usable
/// footprint or non-finite heights (it is then skipped).
pub(crate) fn add_building(walls: &mut MeshBuilder, roofs: &mut MeshBuilder, b: &Building) -> Option<BuiltRoof> {
    let poly = clean_polygon(&b.footprint)?;
    if !(b.base_elevation_m.is_finite() && b.height_m.is_finite()) {
        tracing::debug!(source = %b.source, "building with non-finite elevation or height skipped");
        return None;
    }
    let min_h = if b.min_height_m.is_finite() { b.min_height_m.max(0.0) } else { 0.0 };
    let z_bottom = b.base_elevation_m + min_h;
    let z_top = (b.base_elevation_m + b.height_m).max(z_bottom + MIN_VOLUME_M);
    let roof_h = if b.roof.height_m.is_finite() { b.roof.height_m.clamp(0.0, z_top - z_bottom) } else { 0.0 };
    let shape = choose_shape(&poly, b, roof_h);
    let v = Volume { z_bottom, z_top, roof_h: if shape == BuiltRoof::Flat { 0.0 } else { roof_h } };
    match shape {
        BuiltRoof::Flat => {
            add_walls(walls, &poly, |_| v.z_top, v.z_bottom);
            add_cap(roofs, &poly, |_| v.z_top, UP);
        }
        BuiltRoof::Skillion => build_skillion(walls, roofs, &poly, b, v),
        BuiltRoof::Gabled => build_gabled(walls, roofs, &poly, b, v),
        BuiltRoof::Hipped => {
            if !build_hipped(walls, roofs, &poly, v) {
                // Degenerate skeleton: flat is always possible.
                add_walls(walls, &poly, |_| v.z_top, v.z_bottom);
                add_cap(roofs, &poly, |_| v.z_top, UP);
                return Some(BuiltRoof::Flat);
            }
        }
        BuiltRoof::Pyramidal => build_rings(walls, roofs, &poly, v, &[(1.0, 0.0), (0.0, 1.0)]),
        BuiltRoof::Dome => {
            let profile: Vec<(f64, f64)> = (0..=8)
                .map(|k| {
                    let a = std::f64::consts::FRAC_PI_2 * k as f64 / 8.0;
                    (a.cos(), a.sin())
                })
                .collect();
            build_rings(walls, roofs, &poly, v, &profile)
        }
        BuiltRoof::Onion => build_rings(
            walls,
            roofs,
            &poly,
            v,
            &[
                (1.0, 0.0),
                (1.12, 0.12),
                (1.15, 0.25),
                (1.05, 0.4),
                (0.8, 0.55),
                (0.5, 0.7),
                (0.25, 0.82),
                (0.08, 0.92),
                (0.0, 1.0),
            ],
        ),
    }
    if min_h > 0.01 {
        add_cap(roofs, &poly, |_| z_bottom, [0.0, 0.0, -1.0]);
    }
    Some(shape)
}

#[derive(Clone, Copy, Debug)]
struct Volume {
    z_bottom: f64,
    z_top: f64,
    /// Height of the roof part; the walls end at `z_top - roof_h` (the eaves).
    roof_h: f64,
}

impl Volume {
    fn z_eaves(&self) -> f64 {
        self.z_top - self.roof_h
    }
}

fn choose_shape(poly: &CleanPolygon, b: &Building, roof_h: f64) -> BuiltRoof {
    if roof_h < MIN_ROOF_M {
        return BuiltRoof::Flat;
    }
    let wanted = match b.roof.shape {
        RoofShape::Flat => BuiltRoof::Flat,
        RoofShape::Skillion => BuiltRoof::Skillion,
        RoofShape::Gabled | RoofShape::Gambrel | RoofShape::Saltbox => BuiltRoof::Gabled,
        RoofShape::Hipped | RoofShape::HalfHipped | RoofShape::Mansard => BuiltRoof::Hipped,
        RoofShape::Pyramidal => BuiltRoof::Pyramidal,
        RoofShape::Dome | RoofShape::Round => BuiltRoof::Dome,
        RoofShape::Onion => BuiltRoof::Onion,
    };
    let star = || poly.is_star_shaped_from(poly.centroid());
    let pyramid_or_flat = || if star() { BuiltRoof::Pyramidal } else { BuiltRoof::Flat };
    let chosen = match wanted {
        BuiltRoof::Flat | BuiltRoof::Skillion => wanted,
        BuiltRoof::Gabled => {
            let (_, len, wid) = poly.long_axis();
            let rectangular = poly.holes.is_empty() && poly.area_m2() >= GABLE_MIN_RECTANGULARITY * len * wid;
            if rectangular { wanted } else { pyramid_or_flat() }
        }
        BuiltRoof::Hipped => {
            if poly.is_convex() {
                wanted
            } else {
                pyramid_or_flat()
            }
        }
        BuiltRoof::Pyramidal | BuiltRoof::Dome | BuiltRoof::Onion => {
            if star() {
                wanted
            } else {
                BuiltRoof::Flat
            }
        }
    };
    if chosen != wanted {
        tracing::debug!(source = %b.source, ?wanted, ?chosen, "roof shape fell back for a complex footprint");
    }
    chosen
}

/// Walls along every ring edge, from `z_bottom` up to `top(p)` (linear along each edge).
fn add_walls(mesh: &mut MeshBuilder, poly: &CleanPolygon, top: impl Fn(P2) -> f64, z_bottom: f64) {
    for ring in poly.rings() {
        add_ring_walls(mesh, ring, &top, z_bottom);
    }
}

fn add_ring_walls(mesh: &mut MeshBuilder, ring: &[P2], top: &impl Fn(P2) -> f64, z_bottom: f64) {
    let n = ring.len();
    for i in 0..n {
        let (a, b) = (ring[i], ring[(i + 1) % n]);
        let (ta, tb) = (top(a), top(b));
        if ta <= z_bottom + 1e-6 && tb <= z_bottom + 1e-6 {
            continue;
        }
        let d = sub(b, a);
        // Rings are oriented (exterior CCW, holes CW): the material is on the left.
        let outward = [d[1], -d[0], 0.0];
        let pts = [[a[0], a[1], z_bottom], [b[0], b[1], z_bottom], [b[0], b[1], tb], [a[0], a[1], ta]];
        mesh.add_face(&pts, &[[0, 1, 2], [0, 2, 3]], outward);
    }
}

/// A cap over the polygon (earcut), lifted by `z(p)`, one face per triangle unless `z` is
/// constant.
fn add_cap(mesh: &mut MeshBuilder, poly: &CleanPolygon, z: impl Fn(P2) -> f64, outward: P3) {
    let verts = poly.vertices();
    let tris = poly.triangulate();
    let pts: Vec<P3> = verts.iter().map(|p| [p[0], p[1], z(*p)]).collect();
    let z0 = pts.first().map_or(0.0, |p| p[2]);
    if pts.iter().all(|p| (p[2] - z0).abs() < 1e-9) {
        mesh.add_face(&pts, &tris, outward);
    } else {
        for t in tris {
            mesh.add_triangle(pts[t[0]], pts[t[1]], pts[t[2]], outward);
        }
    }
}

/// The unit vector at `angle_rad` counter-clockwise from east.
fn unit(angle_rad: f64) -> P2 {
    [angle_rad.cos(), angle_rad.sin()]
}

fn build_skillion(walls: &mut MeshBuilder, roofs: &mut MeshBuilder, poly: &CleanPolygon, b: &Building, v: Volume) {
    // The roof faces (slopes down toward) `dir`; by default across the long axis.
    let dir = match b.roof.direction_rad.filter(|a| a.is_finite()) {
        Some(a) => unit(a),
        None => {
            let (axis, _, _) = poly.long_axis();
            [-axis[1], axis[0]]
        }
    };
    let (smin, smax) = extent_along(&poly.exterior, dir);
    let span = smax - smin;
    if span.is_nan() || span <= 1e-6 {
        add_walls(walls, poly, |_| v.z_top, v.z_bottom);
        add_cap(roofs, poly, |_| v.z_top, UP);
        return;
    }
    let top = |p: P2| v.z_top - v.roof_h * ((dot(p, dir) - smin) / span).clamp(0.0, 1.0);
    add_walls(walls, poly, top, v.z_bottom);
    add_cap(roofs, poly, top, UP);
}

fn extent_along(points: &[P2], dir: P2) -> (f64, f64) {
    points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        let s = dot(*p, dir);
        (lo.min(s), hi.max(s))
    })
}

fn build_gabled(walls: &mut MeshBuilder, roofs: &mut MeshBuilder, poly: &CleanPolygon, b: &Building, v: Volume) {
    let ridge = match b.roof.direction_rad.filter(|a| a.is_finite()) {
        Some(a) => unit(a),
        None => poly.long_axis().0,
    };
    let across = [-ridge[1], ridge[0]];
    let (tmin, tmax) = extent_along(&poly.exterior, across);
    let half = 0.5 * (tmax - tmin);
    if half.is_nan() || half <= 1e-6 {
        add_walls(walls, poly, |_| v.z_top, v.z_bottom);
        add_cap(roofs, poly, |_| v.z_top, UP);
        return;
    }
    let tc = 0.5 * (tmin + tmax);
    let side = |p: P2| dot(p, across) - tc;
    let top = |p: P2| v.z_top - v.roof_h * (side(p).abs() / half).min(1.0);
    // Insert the ridge crossings into the rings so that walls and roof follow the kink.
    let split_ring = |ring: &[P2]| -> Vec<P2> {
        let n = ring.len();
        let mut out = Vec::with_capacity(n + 2);
        for i in 0..n {
            let (a, c) = (ring[i], ring[(i + 1) % n]);
            out.push(a);
            let (sa, sc) = (side(a), side(c));
            if (sa > 1e-9 && sc < -1e-9) || (sa < -1e-9 && sc > 1e-9) {
                let t = sa / (sa - sc);
                out.push([a[0] + (c[0] - a[0]) * t, a[1] + (c[1] - a[1]) * t]);
            }
        }
        out
    };
    let split = CleanPolygon {
        exterior: split_ring(&poly.exterior),
        holes: poly.holes.iter().map(|h| split_ring(h)).collect(),
    };
    add_walls(walls, &split, top, v.z_bottom);
    // Roof: triangulate, cut every triangle along the ridge line, lift each piece.
    let verts = split.vertices();
    for t in split.triangulate() {
        let tri = [verts[t[0]], verts[t[1]], verts[t[2]]];
        for piece in clip_by_line(&tri, side) {
            let pts: Vec<P3> = piece.iter().map(|p| [p[0], p[1], top(*p)]).collect();
            let fan: Vec<[usize; 3]> = (1..pts.len().saturating_sub(1)).map(|k| [0, k, k + 1]).collect();
            roofs.add_face(&pts, &fan, UP);
        }
    }
}

/// Splits a convex polygon by the line `f(p) = 0` (`f` affine) into the parts where `f >= 0`
/// and `f <= 0` (empty parts are dropped).
fn clip_by_line(poly: &[P2], f: impl Fn(P2) -> f64) -> Vec<Vec<P2>> {
    let pos = clip_half_plane(poly, &f);
    let neg = clip_half_plane(poly, |p| -f(p));
    [pos, neg].into_iter().filter(|p| p.len() >= 3).collect()
}

/// Sutherland-Hodgman: the part of a convex polygon where `f(p) >= 0` (`f` affine).
fn clip_half_plane(poly: &[P2], f: impl Fn(P2) -> f64) -> Vec<P2> {
    let n = poly.len();
    let mut out = Vec::with_capacity(n + 1);
    for i in 0..n {
        let (a, c) = (poly[i], poly[(i + 1) % n]);
        let (fa, fc) = (f(a), f(c));
        if fa >= 0.0 {
            out.push(a);
        }
        if (fa > 0.0 && fc < 0.0) || (fa < 0.0 && fc > 0.0) {
            let t = fa / (fa - fc);
            out.push([a[0] + (c[0] - a[0]) * t, a[1] + (c[1] - a[1]) * t]);
        }
    }
    out
}

/// Drops vertices on a straight line between their neighbours.
fn drop_collinear(ring: &[P2]) -> Vec<P2> {
    let n = ring.len();
    (0..n)
        .filter(|&i| {
            let (a, b, c) = (ring[(i + n - 1) % n], ring[i], ring[(i + 1) % n]);
            let (u, w) = (sub(b, a), sub(c, b));
            cross(u, w).abs() > 1e-9 * (norm(u) * norm(w)).max(1e-12)
        })
        .map(|i| ring[i])
        .collect()
}

/// Hipped roof of a convex footprint: the face of edge `i` is where the distance to edge `i`
/// is the smallest (the straight skeleton of a convex polygon), its height proportional to
/// that distance. Returns false when the skeleton is degenerate.
fn build_hipped(walls: &mut MeshBuilder, roofs: &mut MeshBuilder, poly: &CleanPolygon, v: Volume) -> bool {
    let ring = drop_collinear(&poly.exterior);
    let n = ring.len();
    if n < 3 {
        return false;
    }
    // Inward unit normals (left of each CCW edge) and the edges' start points.
    let mut normals = Vec::with_capacity(n);
    for i in 0..n {
        let d = sub(ring[(i + 1) % n], ring[i]);
        let l = norm(d);
        if l.is_nan() || l <= 1e-9 {
            return false;
        }
        normals.push([-d[1] / l, d[0] / l]);
    }
    let dist = |i: usize, p: P2| dot(sub(p, ring[i]), normals[i]);
    let faces: Vec<Vec<P2>> = (0..n)
        .map(|i| {
            let mut face = ring.clone();
            for j in (0..n).filter(|&j| j != i) {
                face = clip_half_plane(&face, |p| dist(j, p) - dist(i, p));
                if face.len() < 3 {
                    break;
                }
            }
            face
        })
        .collect();
    let d_max = faces
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.iter().map(move |p| (i, *p)))
        .map(|(i, p)| dist(i, p))
        .fold(0.0f64, f64::max);
    if d_max.is_nan() || d_max <= 1e-6 {
        return false;
    }
    let z_eaves = v.z_eaves();
    add_walls(walls, poly, |_| z_eaves, v.z_bottom);
    for (i, face) in faces.iter().enumerate() {
        if face.len() < 3 {
            continue;
        }
        let pts: Vec<P3> =
            face.iter().map(|p| [p[0], p[1], z_eaves + v.roof_h * (dist(i, *p) / d_max).clamp(0.0, 1.0)]).collect();
        let fan: Vec<[usize; 3]> = (1..pts.len() - 1).map(|k| [0, k, k + 1]).collect();
        roofs.add_face(&pts, &fan, UP);
    }
    true
}

/// Roofs made of rings scaled toward the centroid: `profile` lists `(scale, height fraction)`
/// from the eaves `(1, 0)` to the apex `(0, 1)`. Pyramidal is `[(1, 0), (0, 1)]`.
fn build_rings(
    walls: &mut MeshBuilder,
    roofs: &mut MeshBuilder,
    poly: &CleanPolygon,
    v: Volume,
    profile: &[(f64, f64)],
) {
    let c = poly.centroid();
    let z_eaves = v.z_eaves();
    add_walls(walls, poly, |_| z_eaves, v.z_bottom);
    let ring = &poly.exterior;
    let n = ring.len();
    let at = |p: P2, (s, h): (f64, f64)| -> P3 {
        [c[0] + (p[0] - c[0]) * s, c[1] + (p[1] - c[1]) * s, z_eaves + v.roof_h * h]
    };
    for k in 0..profile.len().saturating_sub(1) {
        let (lo, hi) = (profile[k], profile[k + 1]);
        for i in 0..n {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            let (a0, b0, b1, a1) = (at(a, lo), at(b, lo), at(b, hi), at(a, hi));
            // Outward: away from the centroid, blended with up.
            let mid = [0.5 * (a[0] + b[0]) - c[0], 0.5 * (a[1] + b[1]) - c[1]];
            let outward = [mid[0], mid[1], norm(mid).max(1e-3)];
            if hi.0 <= 1e-12 {
                roofs.add_triangle(a0, b0, b1, outward);
            } else {
                roofs.add_face(&[a0, b0, b1, a1], &[[0, 1, 2], [0, 2, 3]], outward);
            }
        }
    }
    // A ring profile that ends below the apex gets a flat cap.
    if let Some(&(s, h)) = profile.last()
        && s > 1e-12
    {
        let top = CleanPolygon {
            exterior: ring.iter().map(|p| [c[0] + (p[0] - c[0]) * s, c[1] + (p[1] - c[1]) * s]).collect(),
            holes: Vec::new(),
        };
        add_cap(roofs, &top, |_| z_eaves + v.roof_h * h, UP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_twin::{GROUND_M, test_twin};
    use crate::{HeightSource, Polygon, Roof};

    /// Positions in twin axes and per-triangle (projected signed area, normal z).
    fn triangles(m: &MeshBuilder) -> Vec<([P3; 3], f64)> {
        m.indices
            .chunks_exact(3)
            .map(|t| {
                let p = |i: u32| {
                    let q = m.positions[i as usize];
                    [q[0] as f64, -q[2] as f64, q[1] as f64]
                };
                let (a, b, c) = (p(t[0]), p(t[1]), p(t[2]));
                let area = 0.5 * cross([b[0] - a[0], b[1] - a[1]], [c[0] - a[0], c[1] - a[1]]);
                ([a, b, c], area)
            })
            .collect()
    }

    fn build(b: &Building) -> (MeshBuilder, MeshBuilder, Option<BuiltRoof>) {
        let (mut walls, mut roofs) = (MeshBuilder::default(), MeshBuilder::default());
        let shape = add_building(&mut walls, &mut roofs, b);
        (walls, roofs, shape)
    }

    #[test]
    fn roofs_cover_the_footprint_once_and_reach_the_top() {
        let twin = test_twin();
        let expect = [
            BuiltRoof::Flat,
            BuiltRoof::Gabled,
            BuiltRoof::Hipped,
            BuiltRoof::Pyramidal,
            BuiltRoof::Dome,
            BuiltRoof::Skillion,
            BuiltRoof::Flat, // L-shaped hipped: not convex, not star-shaped from its centroid.
            BuiltRoof::Flat,
            BuiltRoof::Flat,
            BuiltRoof::Onion,
        ];
        for (b, want) in twin.buildings.iter().zip(expect) {
            let (walls, roofs, shape) = build(b);
            assert_eq!(shape, Some(want), "{}", b.source);
            let tris = triangles(&roofs);
            assert!(!tris.is_empty() && walls.triangle_count() > 0);
            for (pts, area) in &tris {
                assert!(pts.iter().flatten().all(|v| v.is_finite()));
                // An onion bulges out beyond its walls: its lower band faces down.
                assert!(*area >= -1e-3 || want == BuiltRoof::Onion, "{}: roof triangle facing down", b.source);
            }
            let top = tris.iter().flat_map(|(p, _)| p.iter().map(|q| q[2])).fold(f64::MIN, f64::max);
            assert!((top - b.top_elevation_m()).abs() < 1e-3, "{}: top {top}", b.source);
            let all_z = walls.positions.iter().chain(&roofs.positions).map(|p| p[1] as f64);
            assert!(all_z.clone().all(|z| z >= GROUND_M - 1e-3 && z <= b.top_elevation_m() + 1e-3));
            if want != BuiltRoof::Onion {
                let covered: f64 = tris.iter().map(|(_, a)| a).sum();
                let area = b.footprint.area_m2();
                assert!((covered - area).abs() < 1e-3 * area, "{}: roof covers {covered} of {area}", b.source);
            }
            for n in walls.normals.iter().chain(&roofs.normals) {
                let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
                assert!((len - 1.0).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn walls_face_outward() {
        let twin = test_twin();
        // The courtyard building: walls of the hole face into the courtyard.
        let b = &twin.buildings[7];
        let (walls, _, _) = build(b);
        let c = [75.0, -35.0];
        let mut toward_courtyard = 0;
        for t in walls.indices.chunks_exact(3) {
            let p = walls.positions[t[0] as usize];
            let n = walls.normals[t[0] as usize];
            let (x, y) = (p[0] as f64, -p[2] as f64);
            let (nx, ny) = (n[0] as f64, -n[2] as f64);
            let inside_hole = (70.0..=80.0).contains(&x) && (-40.0..=-30.0).contains(&y);
            if inside_hole {
                // A hole wall: its normal points toward the courtyard centre.
                assert!(nx * (c[0] - x) + ny * (c[1] - y) > 0.0);
                toward_courtyard += 1;
            } else {
                assert!(nx * (x - 75.0) + ny * (y + 35.0) > 0.0, "exterior wall faces out");
            }
        }
        assert_eq!(toward_courtyard, 8);
    }

    #[test]
    fn degenerate_and_odd_inputs_never_produce_nans() {
        let base = test_twin().buildings[1].clone();
        let cases: Vec<Building> = vec![
            Building { height_m: f64::NAN, ..base.clone() },
            Building { footprint: Polygon { exterior: vec![[0.0, 0.0], [1.0, 0.0]], holes: vec![] }, ..base.clone() },
            Building { height_m: 0.0, roof: Roof { height_m: 5.0, ..base.roof.clone() }, ..base.clone() },
            Building { min_height_m: 5.0, height_m: 3.0, ..base.clone() },
            Building {
                roof: Roof { height_m: 100.0, direction_rad: Some(f64::NAN), ..base.roof.clone() },
                ..base.clone()
            },
            Building {
                footprint: Polygon {
                    exterior: vec![[0.0, 0.0], [10.0, 0.0], [10.0, 1e-9], [0.0, 1e-9]],
                    holes: vec![],
                },
                ..base.clone()
            },
            Building {
                height_source: HeightSource::Estimated,
                roof: Roof { shape: RoofShape::Hipped, ..base.roof.clone() },
                footprint: Polygon {
                    exterior: vec![
                        [0.0, 0.0],
                        [5.0, 0.0],
                        [5.0, 5.0],
                        [10.0, 5.0],
                        [10.0, 10.0],
                        [0.0, 10.0],
                        [0.0, 5.0],
                    ],
                    holes: vec![],
                },
                ..base.clone()
            },
        ];
        for b in &cases {
            let (walls, roofs, _) = build(b);
            for p in walls.positions.iter().chain(&roofs.positions).chain(&walls.normals).chain(&roofs.normals) {
                assert!(p.iter().all(|v| v.is_finite()), "{b:?}");
            }
        }
        let (w, r, s) = build(&cases[0]);
        assert!(s.is_none() && w.positions.is_empty() && r.positions.is_empty());
        // A raised volume gets an underside.
        let (_, r, _) = build(&cases[3]);
        assert!(r.normals.iter().any(|n| n[1] < -0.99));
    }
}
