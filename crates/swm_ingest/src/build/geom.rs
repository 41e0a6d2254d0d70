//! Plane geometry used by the builder (twin frame, metres).

use swm_twin::{P2, Polygon};

pub fn dist(a: P2, b: P2) -> f64 {
    ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt()
}

pub fn polyline_len(points: &[P2]) -> f64 {
    points.windows(2).map(|w| dist(w[0], w[1])).sum()
}

/// Removes consecutive duplicate points (closer than 1 mm).
pub fn dedup(points: &mut Vec<P2>) {
    points.dedup_by(|b, a| dist(*a, *b) < 1e-3);
}

/// Builds a polygon with the twin's orientation rules (exterior CCW, holes CW, no closing
/// vertex); `None` when the exterior is degenerate.
pub fn make_polygon(mut exterior: Vec<P2>, holes: Vec<Vec<P2>>) -> Option<Polygon> {
    let fix = |ring: &mut Vec<P2>, ccw: bool| -> bool {
        dedup(ring);
        if ring.len() > 1 && dist(ring[0], ring[ring.len() - 1]) < 1e-3 {
            ring.pop();
        }
        if ring.len() < 3 {
            return false;
        }
        let a = Polygon::ring_signed_area_m2(ring);
        if a.abs() < 1e-4 {
            return false;
        }
        if (a > 0.0) != ccw {
            ring.reverse();
        }
        true
    };
    if !fix(&mut exterior, true) {
        return None;
    }
    let holes = holes.into_iter().filter_map(|mut h| if fix(&mut h, false) { Some(h) } else { None }).collect();
    Some(Polygon { exterior, holes })
}

/// Offsets a polyline sideways by `offset_m` (positive: to the right of the direction of
/// travel), with mitred joins limited to 3x the offset at sharp bends.
pub fn offset_polyline(points: &[P2], offset_m: f64) -> Vec<P2> {
    let n = points.len();
    if n < 2 || offset_m == 0.0 {
        return points.to_vec();
    }
    let normal = |a: P2, b: P2| -> P2 {
        let d = dist(a, b).max(1e-9);
        // Right-hand normal of (dx, dy) is (dy, -dx).
        [(b[1] - a[1]) / d, -(b[0] - a[0]) / d]
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let p = points[i];
        let nrm = if i == 0 {
            normal(points[0], points[1])
        } else if i == n - 1 {
            normal(points[n - 2], points[n - 1])
        } else {
            let n0 = normal(points[i - 1], p);
            let n1 = normal(p, points[i + 1]);
            let m = [n0[0] + n1[0], n0[1] + n1[1]];
            let len = (m[0] * m[0] + m[1] * m[1]).sqrt();
            if len < 1e-6 {
                n0
            } else {
                let m = [m[0] / len, m[1] / len];
                // Mitre length 1/cos(half angle), limited.
                let cos_half = (m[0] * n0[0] + m[1] * n0[1]).max(1.0 / 3.0);
                [m[0] / cos_half, m[1] / cos_half]
            }
        };
        out.push([p[0] + nrm[0] * offset_m, p[1] + nrm[1] * offset_m]);
    }
    out
}

/// Bounds on the circular arcs [`fillet_polyline`] puts at a polyline's corners.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FilletLimits {
    /// The widest radius wanted (m): a road's design radius, v² / a_lat.
    pub max_radius_m: f64,
    /// The farthest the arc may pass from the mapped corner (m): half the carriageway,
    /// so that the mapped vertex stays on the road.
    pub max_offset_m: f64,
    /// Corners whose arc would be tighter than this (m) stay sharp: lanes offset farther
    /// than the radius to the inside would fold back on themselves.
    pub min_radius_m: f64,
}

/// Corners turning by less than this (rad) are left as they are.
pub const FILLET_MIN_TURN_RAD: f64 = 0.01;
/// Largest turn (rad) between two consecutive points of an arc.
pub const FILLET_ARC_STEP_RAD: f64 = 0.1;

/// Rounds a polyline's interior corners with circular arcs tangent to both legs, so that a
/// vehicle following it turns gradually rather than all at once at a mapped vertex (OSM
/// draws bends as corners). Each corner's radius is the largest that fits within
/// `limits`: at most `max_radius_m`, at most `max_offset_m` from the vertex, and using at
/// most half of each leg (so neighbouring arcs never overlap). Corners that would need a
/// radius under `min_radius_m`, or turn back by more than 170°, stay sharp. The end points
/// and the first and last half legs are kept, so ends (junctions) and end directions do
/// not move. Arc points are at most [`FILLET_ARC_STEP_RAD`] of turn apart.
pub fn fillet_polyline(points: &[P2], limits: FilletLimits) -> Vec<P2> {
    let mut pts = points.to_vec();
    dedup(&mut pts);
    let n = pts.len();
    if n < 3 {
        return pts;
    }
    let unit = |a: P2, b: P2| -> P2 {
        let d = dist(a, b).max(1e-12);
        [(b[0] - a[0]) / d, (b[1] - a[1]) / d]
    };
    let mut out = Vec::with_capacity(n * 2);
    out.push(pts[0]);
    for i in 1..n - 1 {
        let (a, v, b) = (pts[i - 1], pts[i], pts[i + 1]);
        let (d_in, d_out) = (unit(a, v), unit(v, b));
        let turn = turn_angle(d_in, d_out);
        let abs = turn.abs();
        if abs < FILLET_MIN_TURN_RAD || abs > 170f64.to_radians() {
            out.push(v);
            continue;
        }
        let tan_half = (abs / 2.0).tan();
        let leg_m = 0.5 * dist(a, v).min(dist(v, b));
        let fit_m = leg_m / tan_half;
        let offset_m = limits.max_offset_m / (1.0 / (abs / 2.0).cos() - 1.0);
        let radius_m = limits.max_radius_m.min(fit_m).min(offset_m);
        if radius_m.is_nan() || radius_m < limits.min_radius_m {
            out.push(v);
            continue;
        }
        let t_m = radius_m * tan_half;
        let t1 = [v[0] - d_in[0] * t_m, v[1] - d_in[1] * t_m];
        // The centre lies on the inside of the turn (left of d_in for a left turn).
        let side = turn.signum();
        let c = [t1[0] - d_in[1] * radius_m * side, t1[1] + d_in[0] * radius_m * side];
        let r0 = [t1[0] - c[0], t1[1] - c[1]];
        let pieces = (abs / FILLET_ARC_STEP_RAD).ceil().max(1.0) as usize;
        out.push(t1);
        for k in 1..pieces {
            let (s, co) = (turn * k as f64 / pieces as f64).sin_cos();
            out.push([c[0] + r0[0] * co - r0[1] * s, c[1] + r0[0] * s + r0[1] * co]);
        }
        out.push([v[0] + d_out[0] * t_m, v[1] + d_out[1] * t_m]);
    }
    out.push(pts[n - 1]);
    dedup(&mut out);
    out
}

/// The part of a polyline between arc lengths `s0` and `s1` (clamped).
pub fn cut_polyline(points: &[P2], s0: f64, s1: f64) -> Vec<P2> {
    let total = polyline_len(points);
    let (s0, s1) = (s0.clamp(0.0, total), s1.clamp(0.0, total));
    if points.len() < 2 || s1 <= s0 {
        let p = point_at(points, s0);
        return vec![p, p];
    }
    let mut out = vec![point_at(points, s0)];
    let mut acc = 0.0;
    for w in points.windows(2) {
        let l = dist(w[0], w[1]);
        let next = acc + l;
        if next > s0 + 1e-9 && next < s1 - 1e-9 {
            out.push(w[1]);
        }
        acc = next;
    }
    out.push(point_at(points, s1));
    dedup(&mut out);
    if out.len() < 2 {
        let p = out[0];
        out.push(p);
    }
    out
}

/// The point at arc length `s` along a polyline (clamped to its ends).
pub fn point_at(points: &[P2], s: f64) -> P2 {
    let mut acc = 0.0;
    for w in points.windows(2) {
        let l = dist(w[0], w[1]);
        if acc + l >= s && l > 0.0 {
            let t = ((s - acc) / l).clamp(0.0, 1.0);
            return [w[0][0] + (w[1][0] - w[0][0]) * t, w[0][1] + (w[1][1] - w[0][1]) * t];
        }
        acc += l;
    }
    points.last().copied().unwrap_or([0.0, 0.0])
}

/// Unit direction of travel at the start (`at_end = false`) or the end of a polyline,
/// looking a few metres along it to ignore tiny kinks.
pub fn end_direction(points: &[P2], at_end: bool) -> P2 {
    let total = polyline_len(points);
    let look = total.min(8.0);
    let (a, b) = if at_end {
        (point_at(points, total - look), points[points.len() - 1])
    } else {
        (points[0], point_at(points, look))
    };
    let d = dist(a, b);
    if d < 1e-9 { [1.0, 0.0] } else { [(b[0] - a[0]) / d, (b[1] - a[1]) / d] }
}

/// Signed angle from direction `a` to direction `b` in radians (counter-clockwise positive).
pub fn turn_angle(a: P2, b: P2) -> f64 {
    (a[0] * b[1] - a[1] * b[0]).atan2(a[0] * b[0] + a[1] * b[1])
}

/// Shortest distance from `p` to segment `ab`, and the parameter along it.
pub fn point_segment_distance(p: P2, a: P2, b: P2) -> (f64, f64) {
    let ab = [b[0] - a[0], b[1] - a[1]];
    let l2 = ab[0] * ab[0] + ab[1] * ab[1];
    let t = if l2 < 1e-18 { 0.0 } else { (((p[0] - a[0]) * ab[0] + (p[1] - a[1]) * ab[1]) / l2).clamp(0.0, 1.0) };
    let q = [a[0] + ab[0] * t, a[1] + ab[1] * t];
    (dist(p, q), t)
}

/// Whether segments `ab` and `cd` properly intersect; returns the parameter on `ab`.
pub fn segment_intersection(a: P2, b: P2, c: P2, d: P2) -> Option<f64> {
    let r = [b[0] - a[0], b[1] - a[1]];
    let s = [d[0] - c[0], d[1] - c[1]];
    let den = r[0] * s[1] - r[1] * s[0];
    if den.abs() < 1e-12 {
        return None;
    }
    let qp = [c[0] - a[0], c[1] - a[1]];
    let t = (qp[0] * s[1] - qp[1] * s[0]) / den;
    let u = (qp[0] * r[1] - qp[1] * r[0]) / den;
    ((0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&u)).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_straight_line_to_the_right() {
        let o = offset_polyline(&[[0.0, 0.0], [10.0, 0.0]], 2.0);
        assert_eq!(o, vec![[0.0, -2.0], [10.0, -2.0]]);
    }

    #[test]
    fn offset_keeps_distance_at_right_angle() {
        let o = offset_polyline(&[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]], -1.0);
        // Left of an eastward then northward path: the corner moves to (9, 1).
        assert!((o[1][0] - 9.0).abs() < 1e-9 && (o[1][1] - 1.0).abs() < 1e-9, "{o:?}");
    }

    #[test]
    fn cut_and_point_at() {
        let pl = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]];
        let c = cut_polyline(&pl, 5.0, 15.0);
        assert_eq!(c, vec![[5.0, 0.0], [10.0, 0.0], [10.0, 5.0]]);
        assert_eq!(point_at(&pl, 100.0), [10.0, 10.0]);
    }

    #[test]
    fn polygon_orientation_is_normalised() {
        let p = make_polygon(vec![[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]], vec![]).unwrap();
        assert!(Polygon::ring_signed_area_m2(&p.exterior) > 0.0);
        assert_eq!(p.exterior.len(), 4);
        assert!(make_polygon(vec![[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], vec![]).is_none());
    }

    fn limits(max_radius_m: f64, max_offset_m: f64, min_radius_m: f64) -> FilletLimits {
        FilletLimits { max_radius_m, max_offset_m, min_radius_m }
    }

    #[test]
    fn fillet_rounds_a_right_angle_with_a_tangent_arc() {
        let pl = [[0.0, 0.0], [40.0, 0.0], [40.0, 40.0]];
        let f = fillet_polyline(&pl, limits(10.0, 100.0, 1.0));
        // Tangent points 10 m before and after the corner; every arc point 10 m from the
        // centre (30, 10); no step turns by more than the arc step.
        assert_eq!(f[0], [0.0, 0.0]);
        assert_eq!(*f.last().unwrap(), [40.0, 40.0]);
        assert!((f[1][0] - 30.0).abs() < 1e-9 && f[1][1].abs() < 1e-9, "{f:?}");
        let k = f.len() - 2;
        assert!((f[k][0] - 40.0).abs() < 1e-9 && (f[k][1] - 10.0).abs() < 1e-9, "{f:?}");
        for p in &f[1..=k] {
            assert!((dist(*p, [30.0, 10.0]) - 10.0).abs() < 1e-9, "{p:?}");
        }
        for w in f.windows(3) {
            let t = turn_angle([w[1][0] - w[0][0], w[1][1] - w[0][1]], [w[2][0] - w[1][0], w[2][1] - w[1][1]]);
            assert!((0.0..=FILLET_ARC_STEP_RAD + 1e-9).contains(&t), "{t}");
        }
    }

    #[test]
    fn fillet_radius_keeps_to_the_legs_and_the_offset() {
        // Legs of 8 m: at most 4 m of each, so the radius of a right angle is 4 m.
        let f = fillet_polyline(&[[0.0, 0.0], [8.0, 0.0], [8.0, -8.0]], limits(50.0, 100.0, 1.0));
        assert!((f[1][0] - 4.0).abs() < 1e-9, "{f:?}");
        // Within 1 m of the vertex: r (sqrt(2) - 1) <= 1.
        let f = fillet_polyline(&[[0.0, 0.0], [40.0, 0.0], [40.0, 40.0]], limits(50.0, 1.0, 1.0));
        let r = 1.0 / (std::f64::consts::SQRT_2 - 1.0);
        assert!((f[1][0] - (40.0 - r)).abs() < 1e-9, "{f:?}");
        // Too tight: the corner stays.
        let pl = [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0]];
        assert_eq!(fillet_polyline(&pl, limits(50.0, 100.0, 3.0)), pl.to_vec());
    }

    proptest::proptest! {
        #[test]
        fn fillet_keeps_ends_and_stays_near_the_line(
            raw in proptest::collection::vec((-200.0f64..200.0, -200.0f64..200.0), 2..12),
            max_offset_m in 0.5f64..6.0,
        ) {
            let pl: Vec<P2> = raw.iter().map(|&(x, y)| [x, y]).collect();
            let f = fillet_polyline(&pl, limits(80.0, max_offset_m, 2.0));
            let mut d = pl.clone();
            dedup(&mut d);
            proptest::prop_assert_eq!(f[0], d[0]);
            proptest::prop_assert_eq!(*f.last().unwrap(), *d.last().unwrap());
            proptest::prop_assert!(f.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
            proptest::prop_assert!(polyline_len(&f) <= polyline_len(&d) + 1e-6);
            // Every new point lies within max_offset_m of the mapped line.
            for p in &f {
                let near = d.windows(2).map(|w| point_segment_distance(*p, w[0], w[1]).0).fold(f64::INFINITY, f64::min);
                proptest::prop_assert!(near <= max_offset_m + 1e-6, "{:?} is {} m off", p, near);
            }
        }
    }

    #[test]
    fn turn_angles() {
        assert!((turn_angle([1.0, 0.0], [0.0, 1.0]) - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        assert!((turn_angle([1.0, 0.0], [0.0, -1.0]) + std::f64::consts::FRAC_PI_2).abs() < 1e-12);
    }
}
