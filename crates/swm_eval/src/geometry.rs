//! Oriented boxes: corners, signed distance between boxes, point containment.

use swm_sim::TrajectoryRecord;

type P2 = [f64; 2];

/// An agent's footprint: a rectangle centred on its position, `length_m` along its heading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgentBox {
    pub center: P2,
    pub heading_rad: f64,
    pub length_m: f64,
    pub width_m: f64,
}

fn dot(a: P2, b: P2) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

fn sub(a: P2, b: P2) -> P2 {
    [a[0] - b[0], a[1] - b[1]]
}

impl AgentBox {
    pub fn of_record(r: &TrajectoryRecord) -> AgentBox {
        AgentBox {
            center: [r.x_m, r.y_m],
            heading_rad: r.heading_rad,
            length_m: f64::from(r.length_m),
            width_m: f64::from(r.width_m),
        }
    }

    /// Unit vectors forward (along the length) and left (along the width).
    pub fn axes(&self) -> [P2; 2] {
        let (s, c) = self.heading_rad.sin_cos();
        [[c, s], [-s, c]]
    }

    /// The four corners, counter-clockwise from front-left.
    pub fn corners(&self) -> [P2; 4] {
        let [f, l] = self.axes();
        let (hl, hw) = (self.length_m / 2.0, self.width_m / 2.0);
        let c = self.center;
        let at = |a: f64, b: f64| [c[0] + a * f[0] + b * l[0], c[1] + a * f[1] + b * l[1]];
        [at(hl, hw), at(-hl, hw), at(-hl, -hw), at(hl, -hw)]
    }

    /// Half the diagonal: no point of the box is farther from the centre.
    pub fn radius_m(&self) -> f64 {
        0.5 * self.length_m.hypot(self.width_m)
    }

    fn projected_radius(&self, axis: P2) -> f64 {
        let [f, l] = self.axes();
        0.5 * self.length_m * dot(f, axis).abs() + 0.5 * self.width_m * dot(l, axis).abs()
    }

    /// Whether `p` lies inside the box (boundary included).
    pub fn contains(&self, p: P2) -> bool {
        let [f, l] = self.axes();
        let d = sub(p, self.center);
        dot(d, f).abs() <= 0.5 * self.length_m && dot(d, l).abs() <= 0.5 * self.width_m
    }

    /// Signed distance to `other`: the distance between the two rectangles when they are
    /// apart, minus the penetration depth (the smallest translation that separates them)
    /// when they overlap. This is WOSAC's distance from the origin to the Minkowski
    /// difference of the two boxes.
    pub fn signed_distance(&self, other: &AgentBox) -> f64 {
        let d = sub(other.center, self.center);
        let mut depth = f64::INFINITY;
        for axis in self.axes().into_iter().chain(other.axes()) {
            let overlap = self.projected_radius(axis) + other.projected_radius(axis) - dot(d, axis).abs();
            depth = depth.min(overlap);
        }
        if depth > 0.0 {
            return -depth;
        }
        // Apart (or touching): the closest points are a corner of one and an edge of the other.
        let (a, b) = (self.corners(), other.corners());
        let mut best = f64::INFINITY;
        for (ps, qs) in [(&a, &b), (&b, &a)] {
            for &p in ps.iter() {
                for i in 0..4 {
                    best = best.min(segment_distance(qs[i], qs[(i + 1) % 4], p));
                }
            }
        }
        best
    }
}

/// Distance from `p` to the segment `a`-`b`.
pub fn segment_distance(a: P2, b: P2, p: P2) -> f64 {
    let ab = sub(b, a);
    let ap = sub(p, a);
    let l2 = dot(ab, ab);
    let t = if l2 > 0.0 { (dot(ap, ab) / l2).clamp(0.0, 1.0) } else { 0.0 };
    (ap[0] - t * ab[0]).hypot(ap[1] - t * ab[1])
}

/// Wraps an angle into `[-pi, pi)`.
pub fn wrap_angle(a: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    (a + PI).rem_euclid(TAU) - PI
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x: f64, y: f64, h: f64) -> AgentBox {
        AgentBox { center: [x, y], heading_rad: h, length_m: 4.0, width_m: 2.0 }
    }

    #[test]
    fn distances_between_axis_aligned_boxes() {
        // Side by side along x, 1 m gap between the boxes.
        assert!((bx(0.0, 0.0, 0.0).signed_distance(&bx(5.0, 0.0, 0.0)) - 1.0).abs() < 1e-12);
        // Overlapping by 0.5 m along x.
        assert!((bx(0.0, 0.0, 0.0).signed_distance(&bx(3.5, 0.0, 0.0)) + 0.5).abs() < 1e-12);
        // Diagonal gap: corner to corner.
        let d = bx(0.0, 0.0, 0.0).signed_distance(&bx(7.0, 6.0, 0.0));
        assert!((d - 3f64.hypot(4.0)).abs() < 1e-12, "{d}");
    }

    #[test]
    fn rotated_boxes() {
        // A box rotated 90 degrees 2.5 m to the side: its half-length (2) reaches 0.5 m,
        // the other's half-width is 1: they overlap by 1 + 2 - 2.5 = 0.5 m along y.
        let d = bx(0.0, 0.0, 0.0).signed_distance(&bx(0.0, 2.5, std::f64::consts::FRAC_PI_2));
        assert!((d + 0.5).abs() < 1e-9, "{d}");
        // Rotated 45 degrees: it reaches 2 cos 45 + 1 sin 45 = 2.1213 m along x, with its
        // corner at y = -0.7071 (within the other's width).
        let a = bx(0.0, 0.0, 0.0);
        let reach = 1.5 * std::f64::consts::SQRT_2;
        let b = bx(4.0, 0.0, std::f64::consts::FRAC_PI_4);
        assert!((a.signed_distance(&b) + (2.0 + reach - 4.0)).abs() < 1e-9, "{}", a.signed_distance(&b));
        assert!(b.corners().iter().any(|&c| a.contains(c)));
        let c = bx(4.3, 0.0, std::f64::consts::FRAC_PI_4);
        assert!((a.signed_distance(&c) - (4.3 - reach - 2.0)).abs() < 1e-9, "{}", a.signed_distance(&c));
        assert!(!c.corners().iter().any(|&p| a.contains(p)));
        // Symmetric.
        assert!((a.signed_distance(&b) - b.signed_distance(&a)).abs() < 1e-9);
    }

    #[test]
    fn wraps() {
        assert!((wrap_angle(3.0 * std::f64::consts::PI) + std::f64::consts::PI).abs() < 1e-12);
        assert!((wrap_angle(0.5) - 0.5).abs() < 1e-12);
        assert!((wrap_angle(-7.0) - (-7.0 + std::f64::consts::TAU)).abs() < 1e-12);
    }
}
