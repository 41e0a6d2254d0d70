//! Small planar geometry in the generator's frame (metres).

/// A point or vector `[x_m, y_m]`.
pub type P = [f64; 2];

pub fn add(a: P, b: P) -> P {
    [a[0] + b[0], a[1] + b[1]]
}
pub fn sub(a: P, b: P) -> P {
    [a[0] - b[0], a[1] - b[1]]
}
pub fn scale(a: P, k: f64) -> P {
    [a[0] * k, a[1] * k]
}
/// `a + d * k`.
pub fn along(a: P, d: P, k: f64) -> P {
    [a[0] + d[0] * k, a[1] + d[1] * k]
}
pub fn dot(a: P, b: P) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}
pub fn cross(a: P, b: P) -> f64 {
    a[0] * b[1] - a[1] * b[0]
}
pub fn norm(a: P) -> f64 {
    a[0].hypot(a[1])
}
pub fn dist(a: P, b: P) -> f64 {
    norm(sub(a, b))
}
pub fn unit(a: P) -> P {
    let n = norm(a);
    if n > 0.0 { [a[0] / n, a[1] / n] } else { [1.0, 0.0] }
}
/// The vector turned 90° counter-clockwise.
pub fn left(a: P) -> P {
    [-a[1], a[0]]
}
pub fn lerp(a: P, b: P, t: f64) -> P {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}
pub fn rotate(a: P, angle_rad: f64) -> P {
    let (s, c) = angle_rad.sin_cos();
    [c * a[0] - s * a[1], s * a[0] + c * a[1]]
}

/// The rectangle with corner `p`, side `w` along the unit vector `ea` and side `d`
/// along `left(ea)`, counter-clockwise.
pub fn rect(p: P, ea: P, w: f64, d: f64) -> [P; 4] {
    let eb = left(ea);
    [p, along(p, ea, w), along(along(p, ea, w), eb, d), along(p, eb, d)]
}

/// Signed area of a ring (positive counter-clockwise).
pub fn signed_area(ring: &[P]) -> f64 {
    swm_twin::Polygon::ring_signed_area_m2(ring)
}

pub fn centroid(ring: &[P]) -> P {
    let k = ring.len().max(1) as f64;
    [ring.iter().map(|p| p[0]).sum::<f64>() / k, ring.iter().map(|p| p[1]).sum::<f64>() / k]
}

/// Distance from `p` to the segment `ab`.
pub fn point_seg_dist(p: P, a: P, b: P) -> f64 {
    let ab = sub(b, a);
    let l2 = dot(ab, ab);
    let t = if l2 > 0.0 { (dot(sub(p, a), ab) / l2).clamp(0.0, 1.0) } else { 0.0 };
    dist(p, along(a, ab, t))
}

/// Whether the closed segments `ab` and `cd` intersect (touching included).
pub fn segs_intersect(a: P, b: P, c: P, d: P) -> bool {
    let d1 = cross(sub(b, a), sub(c, a));
    let d2 = cross(sub(b, a), sub(d, a));
    let d3 = cross(sub(d, c), sub(a, c));
    let d4 = cross(sub(d, c), sub(b, c));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0)) && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0)) {
        return true;
    }
    let on = |p: P, q: P, r: P, c: f64| {
        c == 0.0 && r[0] >= p[0].min(q[0]) && r[0] <= p[0].max(q[0]) && r[1] >= p[1].min(q[1]) && r[1] <= p[1].max(q[1])
    };
    on(a, b, c, d1) || on(a, b, d, d2) || on(c, d, a, d3) || on(c, d, b, d4)
}

/// Distance between the segments `ab` and `cd`.
pub fn seg_seg_dist(a: P, b: P, c: P, d: P) -> f64 {
    if segs_intersect(a, b, c, d) {
        return 0.0;
    }
    point_seg_dist(a, c, d).min(point_seg_dist(b, c, d)).min(point_seg_dist(c, a, b)).min(point_seg_dist(d, a, b))
}

/// Even-odd point in ring (the twin's own test).
pub fn point_in_ring(p: P, ring: &[P]) -> bool {
    swm_twin::ring_contains(ring, p)
}

/// Distance from a ring (its area included) to the segment `ab`: 0 when they touch.
pub fn ring_seg_dist(ring: &[P], a: P, b: P) -> f64 {
    if point_in_ring(a, ring) || point_in_ring(b, ring) {
        return 0.0;
    }
    let n = ring.len();
    (0..n).map(|i| seg_seg_dist(ring[i], ring[(i + 1) % n], a, b)).fold(f64::INFINITY, f64::min)
}

/// Whether two convex polygons overlap (separating axis test).
pub fn convex_overlap(a: &[P], b: &[P]) -> bool {
    for poly in [a, b] {
        let n = poly.len();
        for i in 0..n {
            let axis = left(sub(poly[(i + 1) % n], poly[i]));
            let (mut amin, mut amax) = (f64::INFINITY, f64::NEG_INFINITY);
            for p in a {
                let v = dot(*p, axis);
                amin = amin.min(v);
                amax = amax.max(v);
            }
            let (mut bmin, mut bmax) = (f64::INFINITY, f64::NEG_INFINITY);
            for p in b {
                let v = dot(*p, axis);
                bmin = bmin.min(v);
                bmax = bmax.max(v);
            }
            if amax <= bmin || bmax <= amin {
                return false;
            }
        }
    }
    true
}

/// A rectangle grown by `margin` on every side (corners in the same order).
pub fn grow_rect(r: &[P; 4], margin: f64) -> [P; 4] {
    let ea = unit(sub(r[1], r[0]));
    let eb = unit(sub(r[3], r[0]));
    let (da, db) = (scale(ea, margin), scale(eb, margin));
    [sub(sub(r[0], da), db), sub(add(r[1], da), db), add(add(r[2], da), db), add(sub(r[3], da), db)]
}

/// Whether a simple polygon's edges cross each other (non-adjacent edges meeting).
pub fn ring_self_intersects(ring: &[P]) -> bool {
    let n = ring.len();
    for i in 0..n {
        for j in i + 1..n {
            if j == i + 1 || (i == 0 && j == n - 1) {
                continue;
            }
            if segs_intersect(ring[i], ring[(i + 1) % n], ring[j], ring[(j + 1) % n]) {
                return true;
            }
        }
    }
    false
}

/// Intersection of the lines `p + s*d` and `q + t*e` (None when parallel).
pub fn line_intersection(p: P, d: P, q: P, e: P) -> Option<P> {
    let den = cross(d, e);
    if den.abs() < 1e-12 {
        return None;
    }
    let s = cross(sub(q, p), e) / den;
    Some(along(p, d, s))
}

/// A convex counter-clockwise polygon moved inwards by `dist[k]` along each side `k`
/// (side `k` runs from corner `k` to corner `k + 1`).
pub fn inset_convex(corners: &[P], dist_m: &[f64]) -> Vec<P> {
    let n = corners.len();
    let lines: Vec<(P, P)> = (0..n)
        .map(|k| {
            let d = unit(sub(corners[(k + 1) % n], corners[k]));
            (along(corners[k], left(d), dist_m[k]), d)
        })
        .collect();
    (0..n)
        .map(|k| {
            let (p, d) = lines[(k + n - 1) % n];
            let (q, e) = lines[k];
            line_intersection(p, d, q, e).unwrap_or(q)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rect_is_ccw_and_overlaps() {
        let a = rect([0.0, 0.0], [1.0, 0.0], 10.0, 5.0);
        assert!((signed_area(&a) - 50.0).abs() < 1e-9);
        let b = rect([9.0, 4.0], unit([1.0, 1.0]), 3.0, 3.0);
        assert!(convex_overlap(&a, &b));
        let c = rect([10.5, 0.0], [1.0, 0.0], 3.0, 3.0);
        assert!(!convex_overlap(&a, &c));
        assert!(convex_overlap(&grow_rect(&a, 1.0), &c));
    }

    #[test]
    fn segments_and_rings() {
        assert!(segs_intersect([0.0, 0.0], [2.0, 2.0], [0.0, 2.0], [2.0, 0.0]));
        assert!(!segs_intersect([0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]));
        assert!((seg_seg_dist([0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]) - 1.0).abs() < 1e-12);
        let bowtie = [[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0]];
        assert!(ring_self_intersects(&bowtie));
        assert!(!ring_self_intersects(&rect([0.0, 0.0], [1.0, 0.0], 2.0, 2.0)));
        let sq = rect([0.0, 0.0], [1.0, 0.0], 10.0, 10.0);
        assert_eq!(ring_seg_dist(&sq, [5.0, 5.0], [6.0, 6.0]), 0.0);
        assert!((ring_seg_dist(&sq, [12.0, 0.0], [12.0, 10.0]) - 2.0).abs() < 1e-12);
        let inner = inset_convex(&sq, &[1.0, 2.0, 1.0, 2.0]);
        assert!((inner[0][0] - 2.0).abs() < 1e-9 && (inner[0][1] - 1.0).abs() < 1e-9, "{inner:?}");
    }
}
