//! Geometry kernels of the spatial queries: segment distances, ray/box, ray/prism and
//! ray/terrain intersections.

use crate::model::{P2, P3, Polygon};

pub(super) fn dist3(a: P3, b: P3) -> f64 {
    norm3([b[0] - a[0], b[1] - a[1], b[2] - a[2]])
}

pub(super) fn norm3(v: P3) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

pub(super) fn lerp3(a: P3, b: P3, u: f64) -> P3 {
    [a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1]), a[2] + u * (b[2] - a[2])]
}

/// Parameter in `[0, 1]` of the point of segment `ab` closest to `p`.
pub(super) fn segment_param(a: P2, b: P2, p: P2) -> f64 {
    let e = [b[0] - a[0], b[1] - a[1]];
    let len2 = e[0] * e[0] + e[1] * e[1];
    if len2 > 0.0 { (((p[0] - a[0]) * e[0] + (p[1] - a[1]) * e[1]) / len2).clamp(0.0, 1.0) } else { 0.0 }
}

/// Squared distance from `p` to segment `ab`.
pub(super) fn segment_distance_2(a: P2, b: P2, p: P2) -> f64 {
    let u = segment_param(a, b, p);
    let q = [a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1])];
    (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)
}

/// Parameter interval `[t_enter, t_exit]` within `[0, t_max]` where the ray `o + t d`
/// is inside the box `[lo, hi]`.
pub(super) fn ray_box(o: P3, d: P3, t_max: f64, lo: P3, hi: P3) -> Option<(f64, f64)> {
    let (mut t0, mut t1) = (0.0f64, t_max);
    for k in 0..3 {
        if d[k] == 0.0 {
            if o[k] < lo[k] || o[k] > hi[k] {
                return None;
            }
        } else {
            let (mut a, mut b) = ((lo[k] - o[k]) / d[k], (hi[k] - o[k]) / d[k]);
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            t0 = t0.max(a);
            t1 = t1.min(b);
            if t0.partial_cmp(&t1).is_none_or(|o| o.is_gt()) {
                return None;
            }
        }
    }
    Some((t0, t1))
}

/// A unit normal facing the ray (opposite to `d`).
fn facing(n: P3, d: P3) -> P3 {
    if n[0] * d[0] + n[1] * d[1] + n[2] * d[2] > 0.0 { [-n[0], -n[1], -n[2]] } else { n }
}

/// First intersection in `[0, t_max]` of the unit-direction ray `o + t d` with the prism
/// of `poly` between elevations `bottom_m` and `top_m`: `(t, normal facing the ray)`.
pub(super) fn ray_prism(o: P3, d: P3, t_max: f64, poly: &Polygon, bottom_m: f64, top_m: f64) -> Option<(f64, P3)> {
    let mut best: Option<(f64, P3)> = None;
    let mut t_best = t_max;
    // Walls.
    for ring in std::iter::once(&poly.exterior).chain(poly.holes.iter()) {
        let n = ring.len();
        if n < 2 {
            continue;
        }
        for i in 0..n {
            let a = ring[i];
            let b = ring[(i + 1) % n];
            let e = [b[0] - a[0], b[1] - a[1]];
            let denom = d[0] * e[1] - d[1] * e[0];
            if denom == 0.0 {
                continue; // Parallel to the wall (or a degenerate edge): grazing, no hit.
            }
            let w = [a[0] - o[0], a[1] - o[1]];
            let t = (w[0] * e[1] - w[1] * e[0]) / denom;
            let u = (w[0] * d[1] - w[1] * d[0]) / denom;
            if !(0.0..=1.0).contains(&u) || !(0.0..=t_best).contains(&t) {
                continue;
            }
            let z = o[2] + t * d[2];
            if z < bottom_m || z > top_m {
                continue;
            }
            let len = (e[0] * e[0] + e[1] * e[1]).sqrt();
            t_best = t;
            best = Some((t, facing([e[1] / len, -e[0] / len, 0.0], d)));
        }
    }
    // Top and bottom faces.
    if d[2] != 0.0 {
        for z in [top_m, bottom_m] {
            let t = (z - o[2]) / d[2];
            if t >= 0.0 && t <= t_best && poly.contains([o[0] + t * d[0], o[1] + t * d[1]]) {
                t_best = t;
                best = Some((t, facing([0.0, 0.0, 1.0], d)));
            }
        }
    }
    best
}

/// Intersection in `[0, t_max]` of the ray with the horizontal plane at elevation `z_m`.
pub(super) fn ray_plane_z(o: P3, d: P3, z_m: f64, t_max: f64) -> Option<(f64, P3)> {
    if d[2] == 0.0 {
        return None;
    }
    let t = (z_m - o[2]) / d[2];
    (t >= 0.0 && t <= t_max).then(|| (t, facing([0.0, 0.0, 1.0], d)))
}

/// A terrain grid (see [`crate::Terrain::Grid`]), already validated: `nx, ny >= 1`,
/// `z.len() == nx * ny`, `cell_m > 0`.
pub(super) struct GridView<'a> {
    pub origin_m: P2,
    pub cell_m: f64,
    pub nx: usize,
    pub ny: usize,
    pub z: &'a [f32],
}

impl GridView<'_> {
    fn frac(&self, p: P2) -> (f64, f64) {
        (
            ((p[0] - self.origin_m[0]) / self.cell_m).clamp(0.0, (self.nx - 1) as f64),
            ((p[1] - self.origin_m[1]) / self.cell_m).clamp(0.0, (self.ny - 1) as f64),
        )
    }

    fn at(&self, i: usize, j: usize) -> f64 {
        self.z[j * self.nx + i] as f64
    }

    /// Bilinear elevation, clamped at the edges (as [`crate::Terrain::elevation_at`]).
    pub fn elevation(&self, p: P2) -> f64 {
        let (fx, fy) = self.frac(p);
        if !(fx.is_finite() && fy.is_finite()) {
            return f64::NAN;
        }
        let (i0, j0) = (fx.floor() as usize, fy.floor() as usize);
        let (i1, j1) = ((i0 + 1).min(self.nx - 1), (j0 + 1).min(self.ny - 1));
        let (tx, ty) = (fx - i0 as f64, fy - j0 as f64);
        let a = self.at(i0, j0) * (1.0 - tx) + self.at(i1, j0) * tx;
        let b = self.at(i0, j1) * (1.0 - tx) + self.at(i1, j1) * tx;
        a * (1.0 - ty) + b * ty
    }

    /// Gradient `(dz/dx, dz/dy)` at `p` of the bilinear patch of the cell holding `cell_ref`.
    pub fn gradient(&self, cell_ref: P2, p: P2) -> (f64, f64) {
        let raw_x = (cell_ref[0] - self.origin_m[0]) / self.cell_m;
        let raw_y = (cell_ref[1] - self.origin_m[1]) / self.cell_m;
        let (fx, fy) = self.frac(cell_ref);
        if !(fx.is_finite() && fy.is_finite()) {
            return (0.0, 0.0);
        }
        let (i0, j0) = (fx.floor() as usize, fy.floor() as usize);
        let (i1, j1) = ((i0 + 1).min(self.nx - 1), (j0 + 1).min(self.ny - 1));
        let (px, py) = self.frac(p);
        let tx = (px - i0 as f64).clamp(0.0, 1.0);
        let ty = (py - j0 as f64).clamp(0.0, 1.0);
        let x_active = raw_x > 0.0 && raw_x < (self.nx - 1) as f64 && i1 > i0;
        let y_active = raw_y > 0.0 && raw_y < (self.ny - 1) as f64 && j1 > j0;
        let gx = if x_active {
            ((self.at(i1, j0) - self.at(i0, j0)) * (1.0 - ty) + (self.at(i1, j1) - self.at(i0, j1)) * ty) / self.cell_m
        } else {
            0.0
        };
        let gy = if y_active {
            ((self.at(i0, j1) - self.at(i0, j0)) * (1.0 - tx) + (self.at(i1, j1) - self.at(i1, j0)) * tx) / self.cell_m
        } else {
            0.0
        };
        (gx, gy)
    }
}

/// Smallest root in `[0, 1]` of the quadratic through `h(0) = h0`, `h(1/2) = hm`, `h(1) = h1`.
fn first_root_unit(h0: f64, hm: f64, h1: f64) -> Option<f64> {
    const TOL: f64 = 1e-9;
    let a = 2.0 * h1 + 2.0 * h0 - 4.0 * hm;
    let b = 4.0 * hm - 3.0 * h0 - h1;
    let c = h0;
    let mut roots = [f64::NAN; 2];
    if a == 0.0 {
        if b != 0.0 {
            roots[0] = -c / b;
        }
    } else {
        let disc = b * b - 4.0 * a * c;
        if disc < 0.0 {
            return None;
        }
        let q = -0.5 * (b + b.signum() * disc.sqrt());
        roots[0] = q / a;
        if q != 0.0 {
            roots[1] = c / q;
        }
    }
    roots.into_iter().filter(|s| (-TOL..=1.0 + TOL).contains(s)).map(|s| s.clamp(0.0, 1.0)).reduce(f64::min)
}

/// First intersection in `[0, t_max]` of the unit-direction ray with the bilinear terrain
/// grid. Exact: between consecutive crossings of grid lines the height of the ray above
/// the terrain is a quadratic in `t`, solved in closed form (bisection as a fallback).
pub(super) fn ray_grid(g: &GridView, o: P3, d: P3, t_max: f64, z_min_m: f64, z_max_m: f64) -> Option<(f64, P3)> {
    // The ray can only meet the terrain while its elevation is within the grid's range.
    let (mut ta, mut tb) = (0.0f64, t_max);
    if d[2] == 0.0 {
        if o[2] < z_min_m || o[2] > z_max_m {
            return None;
        }
    } else {
        let (t1, t2) = ((z_min_m - o[2]) / d[2], (z_max_m - o[2]) / d[2]);
        ta = ta.max(t1.min(t2));
        tb = tb.min(t1.max(t2));
    }
    if ta.partial_cmp(&tb).is_none_or(|o| o.is_gt()) {
        return None;
    }
    // Break points: where the ray crosses grid lines.
    let mut ts = vec![ta];
    for (axis, n) in [(0usize, g.nx), (1usize, g.ny)] {
        if d[axis] == 0.0 || n < 2 {
            continue;
        }
        let ca = (o[axis] + ta * d[axis] - g.origin_m[axis]) / g.cell_m;
        let cb = (o[axis] + tb * d[axis] - g.origin_m[axis]) / g.cell_m;
        let lo = ca.min(cb).ceil().clamp(0.0, (n - 1) as f64) as usize;
        let hi = ca.max(cb).floor().clamp(0.0, (n - 1) as f64) as usize;
        for k in lo..=hi {
            let t = (g.origin_m[axis] + k as f64 * g.cell_m - o[axis]) / d[axis];
            if t > ta && t < tb {
                ts.push(t);
            }
        }
    }
    ts.sort_unstable_by(f64::total_cmp);
    // Past the last break point the terrain under the ray is constant; with an unbounded
    // ray (then horizontal) the height above it is constant too: one more unit suffices.
    let last = ts[ts.len() - 1];
    ts.push(if tb.is_finite() { tb } else { last + 1.0 });

    let h = |t: f64| {
        let p = [o[0] + t * d[0], o[1] + t * d[1]];
        o[2] + t * d[2] - g.elevation(p)
    };
    for w in ts.windows(2) {
        let (t0, t1) = (w[0], w[1]);
        if t1.partial_cmp(&t0).is_none_or(|o| o.is_lt()) {
            continue;
        }
        let h0 = h(t0);
        let span = t1 - t0;
        let t_hit = if h0 == 0.0 {
            Some(t0)
        } else if span > 0.0 {
            let (hm, h1) = (h(t0 + 0.5 * span), h(t1));
            first_root_unit(h0, hm, h1).map(|s| t0 + s * span).or_else(|| {
                // Numerical fallback: a sign change the closed form missed.
                (h0 * h1 < 0.0).then(|| {
                    let (mut lo, mut hi) = (t0, t1);
                    for _ in 0..100 {
                        let mid = 0.5 * (lo + hi);
                        if (h(mid) < 0.0) == (h0 < 0.0) { lo = mid } else { hi = mid }
                    }
                    0.5 * (lo + hi)
                })
            })
        } else {
            None
        };
        if let Some(t) = t_hit {
            let tm = t0 + 0.5 * span;
            let cell_ref = [o[0] + tm * d[0], o[1] + tm * d[1]];
            let (gx, gy) = g.gradient(cell_ref, [o[0] + t * d[0], o[1] + t * d[1]]);
            let n = norm3([-gx, -gy, 1.0]);
            return Some((t, facing([-gx / n, -gy / n, 1.0 / n], d)));
        }
    }
    None
}
