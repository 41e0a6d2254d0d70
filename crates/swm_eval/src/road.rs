//! The map side of the metrics: a signed distance field to the road edge, and lanes' stop
//! lines for red-light violations.
//!
//! **Drivable area**: the union of every lane and every junction connection swept by its
//! width (a point is drivable when it lies within `width_m / 2` of the lane's centre line or
//! the connection's path; a connection takes the width of the lane it leaves). It is
//! rasterised once per twin on a grid of [`EvalConfig::road_raster_m`](crate::EvalConfig)
//! covering every lane plus [`ROAD_MARGIN_M`], and an exact Euclidean distance transform
//! (Felzenszwalb–Huttenlocher, between cell centres) gives the signed distance to the road
//! edge: negative inside the drivable area, positive outside (WOSAC's sign), read with
//! bilinear interpolation. Points off the raster are [`ROAD_MARGIN_M`] off-road.
//!
//! **Exact near the edge**: a raster of 0.5 m cells (0.78 m on a district as large as
//! Jamsil) misplaces the edge by up to a cell, enough to call a vehicle centred in its lane
//! off the road. Where the raster reads within [`EXACT_BAND_M`] (plus two cells) of the
//! edge, the distance comes from [`swm_twin::drivable::StripIndex`] instead: the least
//! (distance to a centre line − half width) over the strips, exact outside the area, and
//! inside never above it (the raster's value when that is deeper). Off-road is therefore
//! exact: a corner is off when it lies outside every strip.

use swm_twin::Twin;
use swm_twin::drivable::{StripIndex, drivable_strips};
use swm_twin::model::P3;

use crate::EvalError;
use crate::geometry::AgentBox;

/// How far beyond the lanes the raster reaches (m); farther points read as this far off-road.
/// Larger than the last edge of WOSAC's road-edge histogram (40 m).
pub const ROAD_MARGIN_M: f64 = 45.0;
/// Largest raster (cells; about 9 bytes each while it is built, 4 after); a coarser
/// resolution is used for twins that would need more.
pub const MAX_ROAD_CELLS: usize = 1 << 25;
/// Longest piece lanes are cut into when rasterised (m).
const PIECE_M: f64 = 4.0;
/// Raster distances within this band of the edge (m, plus two cells) are replaced by the
/// exact distance to the strips ([`StripIndex`]).
pub const EXACT_BAND_M: f64 = 2.0;
/// Side of the buckets of the exact index (m).
const EDGE_BUCKET_M: f64 = 4.0;

/// A lane as the red-light check needs it: its plan-view centre line and stop line.
#[derive(Clone, Debug)]
struct LaneLine {
    points: Vec<[f64; 2]>,
    /// Arc length at each point.
    s: Vec<f64>,
    stop_s_m: Option<f64>,
}

impl LaneLine {
    /// Arc length of the projection of `p` on the centre line, extended straight beyond both
    /// ends (so a vehicle past the lane's end projects past its length).
    fn project(&self, p: [f64; 2]) -> f64 {
        let n = self.points.len();
        if n < 2 {
            return 0.0;
        }
        let (mut best_d2, mut best_s) = (f64::INFINITY, 0.0);
        for i in 0..n - 1 {
            let (a, b) = (self.points[i], self.points[i + 1]);
            let ab = [b[0] - a[0], b[1] - a[1]];
            let l2 = ab[0] * ab[0] + ab[1] * ab[1];
            if l2 <= 0.0 {
                continue;
            }
            let mut t = ((p[0] - a[0]) * ab[0] + (p[1] - a[1]) * ab[1]) / l2;
            let lo = if i == 0 { f64::NEG_INFINITY } else { 0.0 };
            let hi = if i == n - 2 { f64::INFINITY } else { 1.0 };
            t = t.clamp(lo, hi);
            let q = [a[0] + t * ab[0] - p[0], a[1] + t * ab[1] - p[1]];
            let d2 = q[0] * q[0] + q[1] * q[1];
            if d2 < best_d2 {
                best_d2 = d2;
                best_s = self.s[i] + t * l2.sqrt();
            }
        }
        best_s
    }
}

/// The drivable area's signed distance field and the lanes' stop lines of one twin.
#[derive(Clone, Debug)]
pub struct RoadMap {
    origin_m: [f64; 2],
    cell_m: f64,
    nx: usize,
    ny: usize,
    /// Signed distance at cell centres (m), row-major from `origin_m` (y up).
    sdf_m: Vec<f32>,
    lanes: Vec<LaneLine>,
    edges: StripIndex,
}

fn xy(p: &P3) -> [f64; 2] {
    [p[0], p[1]]
}

impl RoadMap {
    /// Rasterises the twin's drivable area at `cell_m` (coarser if the twin needs more than
    /// [`MAX_ROAD_CELLS`] cells).
    pub fn new(twin: &Twin, cell_m: f64) -> Result<RoadMap, EvalError> {
        RoadMap::new_within(twin, cell_m, None)
    }

    /// Like [`RoadMap::new`], with the raster limited to `area_m` (`[min x, min y, max x,
    /// max y]`) when given: points outside it read as [`ROAD_MARGIN_M`] off-road.
    pub fn new_within(twin: &Twin, cell_m: f64, area_m: Option<[f64; 4]>) -> Result<RoadMap, EvalError> {
        if !(cell_m.is_finite() && cell_m > 0.0) {
            return Err(EvalError::Config(format!("road_raster_m must be > 0, got {cell_m}")));
        }
        let lanes: Vec<LaneLine> = twin
            .lanes
            .iter()
            .map(|l| {
                let points: Vec<[f64; 2]> = l.centerline.iter().map(xy).collect();
                let mut s = vec![0.0; points.len()];
                for i in 1..points.len() {
                    s[i] = s[i - 1] + (points[i][0] - points[i - 1][0]).hypot(points[i][1] - points[i - 1][1]);
                }
                LaneLine { points, s, stop_s_m: l.stop_line.as_ref().map(|sl| sl.s_m) }
            })
            .collect();
        // Polylines with their half widths: lanes, then connections.
        let strips = drivable_strips(twin);
        let mut bb = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for (pts, hw) in &strips {
            for p in pts {
                bb = [bb[0].min(p[0] - hw), bb[1].min(p[1] - hw), bb[2].max(p[0] + hw), bb[3].max(p[1] + hw)];
            }
        }
        if let Some(a) = area_m {
            // Lanes outside the area only matter within the margin.
            let m = ROAD_MARGIN_M;
            bb = [bb[0].max(a[0] - m), bb[1].max(a[1] - m), bb[2].min(a[2] + m), bb[3].min(a[3] + m)];
            if bb[0] > bb[2] || bb[1] > bb[3] {
                bb = [f64::INFINITY; 4];
            }
        }
        if !bb[0].is_finite() {
            tracing::warn!("the twin has no lanes: every position counts as off-road");
            return Ok(RoadMap {
                origin_m: [0.0, 0.0],
                cell_m,
                nx: 0,
                ny: 0,
                sdf_m: Vec::new(),
                lanes,
                edges: StripIndex::default(),
            });
        }
        let (w_m, h_m) = (bb[2] - bb[0] + 2.0 * ROAD_MARGIN_M, bb[3] - bb[1] + 2.0 * ROAD_MARGIN_M);
        let mut cell = cell_m;
        while (w_m / cell).ceil() * (h_m / cell).ceil() > MAX_ROAD_CELLS as f64 {
            cell *= 1.25;
        }
        if cell != cell_m {
            tracing::warn!(cell_m, used_m = cell, "road raster too large: coarser cells");
        }
        let (nx, ny) = ((w_m / cell).ceil() as usize, (h_m / cell).ceil() as usize);
        let origin = [bb[0] - ROAD_MARGIN_M, bb[1] - ROAD_MARGIN_M];
        let mut inside = vec![false; nx * ny];
        for (pts, hw) in &strips {
            for w in pts.windows(2) {
                let len = (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]);
                let pieces = (len / PIECE_M).ceil().max(1.0) as usize;
                for k in 0..pieces {
                    let t0 = k as f64 / pieces as f64;
                    let t1 = (k + 1) as f64 / pieces as f64;
                    let a = [w[0][0] + t0 * (w[1][0] - w[0][0]), w[0][1] + t0 * (w[1][1] - w[0][1])];
                    let b = [w[0][0] + t1 * (w[1][0] - w[0][0]), w[0][1] + t1 * (w[1][1] - w[0][1])];
                    paint_capsule(&mut inside, origin, cell, nx, ny, a, b, *hw);
                }
            }
        }
        let sdf_m = signed_distance_field(&inside, nx, ny, cell);
        let area = [origin[0], origin[1], origin[0] + nx as f64 * cell, origin[1] + ny as f64 * cell];
        let edges = StripIndex::new(&strips, area, EDGE_BUCKET_M, EXACT_BAND_M + 4.0 * cell);
        tracing::debug!(nx, ny, cell_m = cell, "road raster ready");
        Ok(RoadMap { origin_m: origin, cell_m: cell, nx, ny, sdf_m, lanes, edges })
    }

    /// Signed distance from `p` to the road edge (m): negative on the road. Within
    /// [`EXACT_BAND_M`] (plus two cells) of the raster's edge the sign is exact and so is the
    /// distance outside: the exact distance to the strips replaces the raster's where it is
    /// positive, and caps it where it is not (module docs).
    pub fn signed_distance(&self, p: [f64; 2]) -> f64 {
        let r = self.raster_distance(p);
        if r.abs() > EXACT_BAND_M + 2.0 * self.cell_m {
            return r;
        }
        match self.edges.outside_distance(p) {
            Some(e) if e > 0.0 => e,
            Some(e) => r.min(e),
            None => r.max(self.edges.reach_m),
        }
    }

    /// The raster's signed distance at `p` (bilinear between cell centres).
    fn raster_distance(&self, p: [f64; 2]) -> f64 {
        if self.nx < 2 || self.ny < 2 {
            return ROAD_MARGIN_M;
        }
        let fx = (p[0] - self.origin_m[0]) / self.cell_m - 0.5;
        let fy = (p[1] - self.origin_m[1]) / self.cell_m - 0.5;
        if !(fx >= 0.0 && fy >= 0.0 && fx <= (self.nx - 1) as f64 && fy <= (self.ny - 1) as f64) {
            return ROAD_MARGIN_M;
        }
        let (i, j) = ((fx as usize).min(self.nx - 2), (fy as usize).min(self.ny - 2));
        let (tx, ty) = (fx - i as f64, fy - j as f64);
        let at = |i: usize, j: usize| f64::from(self.sdf_m[j * self.nx + i]);
        let lo = at(i, j) * (1.0 - tx) + at(i + 1, j) * tx;
        let hi = at(i, j + 1) * (1.0 - tx) + at(i + 1, j + 1) * tx;
        lo * (1.0 - ty) + hi * ty
    }

    /// WOSAC's distance to road edge of a box: the signed distance of its most off-road
    /// corner.
    pub fn box_distance(&self, b: &AgentBox) -> f64 {
        b.corners().iter().map(|&c| self.signed_distance(c)).fold(f64::NEG_INFINITY, f64::max)
    }

    /// The stop line's arc length on `lane`, if it has one.
    pub fn stop_s(&self, lane: u32) -> Option<f64> {
        self.lanes.get(lane as usize).and_then(|l| l.stop_s_m)
    }

    /// Arc length of `p` projected on `lane` (extended beyond its ends); `None` for an
    /// unknown lane.
    pub fn project(&self, lane: u32, p: [f64; 2]) -> Option<f64> {
        self.lanes.get(lane as usize).map(|l| l.project(p))
    }
}

#[allow(clippy::too_many_arguments)]
fn paint_capsule(
    inside: &mut [bool],
    origin: [f64; 2],
    cell: f64,
    nx: usize,
    ny: usize,
    a: [f64; 2],
    b: [f64; 2],
    hw: f64,
) {
    let to_i = |v: f64, o: f64, n: usize| (((v - o) / cell - 0.5).max(0.0) as usize).min(n - 1);
    let (i0, i1) = (to_i(a[0].min(b[0]) - hw, origin[0], nx), to_i(a[0].max(b[0]) + hw + cell, origin[0], nx));
    let (j0, j1) = (to_i(a[1].min(b[1]) - hw, origin[1], ny), to_i(a[1].max(b[1]) + hw + cell, origin[1], ny));
    for j in j0..=j1 {
        let y = origin[1] + (j as f64 + 0.5) * cell;
        for i in i0..=i1 {
            let x = origin[0] + (i as f64 + 0.5) * cell;
            if crate::geometry::segment_distance(a, b, [x, y]) <= hw {
                inside[j * nx + i] = true;
            }
        }
    }
}

const FAR: f32 = 1e20;

/// Squared distance transform of one line (Felzenszwalb–Huttenlocher), in place: `f[q]`
/// becomes `min_p (q - p)² + f[p]` over the finite `f[p]` (all stay [`FAR`] without one).
fn edt_1d(f: &mut [f64], v: &mut [usize], z: &mut [f64], d: &mut [f64]) {
    let n = f.len();
    let mut k: Option<usize> = None;
    for q in 0..n {
        if f[q] >= FAR as f64 {
            continue;
        }
        let fq = f[q] + (q * q) as f64;
        match k {
            None => {
                k = Some(0);
                v[0] = q;
                z[0] = f64::NEG_INFINITY;
                z[1] = f64::INFINITY;
            }
            Some(mut kk) => {
                let mut s;
                loop {
                    let p = v[kk];
                    s = (fq - (f[p] + (p * p) as f64)) / (2.0 * (q - p) as f64);
                    // z[0] is -inf, so this stops at kk == 0.
                    if s <= z[kk] {
                        kk -= 1;
                    } else {
                        break;
                    }
                }
                kk += 1;
                v[kk] = q;
                z[kk] = s;
                z[kk + 1] = f64::INFINITY;
                k = Some(kk);
            }
        }
    }
    if k.is_none() {
        return;
    }
    let mut k = 0usize;
    for (q, dq) in d.iter_mut().enumerate().take(n) {
        while z[k + 1] < q as f64 {
            k += 1;
        }
        let p = v[k];
        let dx = q as f64 - p as f64;
        *dq = dx * dx + f[p];
    }
    f.copy_from_slice(&d[..n]);
}

/// Squared Euclidean distance (in cells²) from every cell to the nearest cell whose `seed`
/// equals `want` ([`FAR`] when there is none).
fn edt_2d(seed: &[bool], want: bool, nx: usize, ny: usize) -> Vec<f32> {
    let mut g: Vec<f32> = seed.iter().map(|&s| if s == want { 0.0 } else { FAR }).collect();
    let m = nx.max(ny);
    let (mut v, mut z, mut d, mut line) = (vec![0usize; m], vec![0f64; m + 1], vec![0f64; m], vec![0f64; m]);
    for i in 0..nx {
        for j in 0..ny {
            line[j] = f64::from(g[j * nx + i]);
        }
        edt_1d(&mut line[..ny], &mut v, &mut z, &mut d);
        for j in 0..ny {
            g[j * nx + i] = line[j].min(FAR as f64) as f32;
        }
    }
    for row in g.chunks_mut(nx) {
        for (l, &x) in line.iter_mut().zip(row.iter()) {
            *l = f64::from(x);
        }
        edt_1d(&mut line[..nx], &mut v, &mut z, &mut d);
        for (x, &l) in row.iter_mut().zip(line.iter()) {
            *x = l.min(FAR as f64) as f32;
        }
    }
    g
}

/// Signed distance (m) at cell centres: distance to the nearest cell of the other kind,
/// minus half a cell (the edge lies between cell centres), negative inside.
fn signed_distance_field(inside: &[bool], nx: usize, ny: usize, cell: f64) -> Vec<f32> {
    let mut sdf = edt_2d(inside, true, nx, ny);
    let to_off = edt_2d(inside, false, nx, ny);
    let (c, half) = (cell as f32, 0.5 * cell as f32);
    let cap = (2.0 * ROAD_MARGIN_M) as f32;
    for ((d, &ins), &doff) in sdf.iter_mut().zip(inside).zip(&to_off) {
        *d = if ins {
            if doff >= FAR { -cap } else { -(doff.sqrt() * c - half) }
        } else if *d >= FAR {
            cap
        } else {
            d.sqrt() * c - half
        };
    }
    sdf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edt_matches_brute_force() {
        let (nx, ny) = (23, 17);
        let seed: Vec<bool> = (0..nx * ny).map(|k| (k * 7919 % 13) == 0).collect();
        let g = edt_2d(&seed, true, nx, ny);
        for j in 0..ny {
            for i in 0..nx {
                let mut best = f32::INFINITY;
                for jj in 0..ny {
                    for ii in 0..nx {
                        if seed[jj * nx + ii] {
                            let (dx, dy) = (i as f32 - ii as f32, j as f32 - jj as f32);
                            best = best.min(dx * dx + dy * dy);
                        }
                    }
                }
                assert_eq!(g[j * nx + i], best, "cell {i},{j}");
            }
        }
    }

    /// Brute force: the minimum over strips of the distance to the centre line minus the
    /// half width.
    fn exact(strips: &[(Vec<[f64; 2]>, f64)], p: [f64; 2]) -> f64 {
        strips
            .iter()
            .flat_map(|(pts, hw)| pts.windows(2).map(move |w| crate::geometry::segment_distance(w[0], w[1], p) - hw))
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn the_sign_near_the_edge_is_exact() {
        // A bend and a crossing strip, rasterised coarsely (0.8 m cells).
        let strips = vec![
            (vec![[0.0, 0.0], [30.0, 0.0], [45.0, 12.0], [50.0, 40.0]], 1.7),
            (vec![[20.0, -25.0], [21.0, 25.0]], 1.5),
        ];
        let bb = [-60.0, -60.0, 110.0, 110.0];
        let cell = 0.8;
        let (nx, ny) = (((bb[2] - bb[0]) / cell) as usize, ((bb[3] - bb[1]) / cell) as usize);
        let mut inside = vec![false; nx * ny];
        for (pts, hw) in &strips {
            for w in pts.windows(2) {
                paint_capsule(&mut inside, [bb[0], bb[1]], cell, nx, ny, w[0], w[1], *hw);
            }
        }
        let road = RoadMap {
            origin_m: [bb[0], bb[1]],
            cell_m: cell,
            nx,
            ny,
            sdf_m: signed_distance_field(&inside, nx, ny, cell),
            lanes: Vec::new(),
            edges: StripIndex::new(&strips, bb, EDGE_BUCKET_M, EXACT_BAND_M + 4.0 * cell),
        };
        let mut raster_wrong = 0;
        let mut k = 0u64;
        for j in 0..200 {
            for i in 0..200 {
                k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let jitter = (k >> 40) as f64 / (1u64 << 24) as f64;
                let p = [-5.0 + 0.3 * i as f64 + 0.1 * jitter, -30.0 + 0.35 * j as f64];
                let e = exact(&strips, p);
                let d = road.signed_distance(p);
                assert_eq!(d > 0.0, e > 0.0, "sign at {p:?}: {d} vs exact {e}");
                if e > 0.0 && e < EXACT_BAND_M {
                    assert!((d - e).abs() < 1e-9, "outside at {p:?}: {d} vs exact {e}");
                } else if e <= 0.0 {
                    assert!(d <= e + 1e-9, "inside at {p:?}: {d} above the single-strip bound {e}");
                }
                raster_wrong += usize::from((road.raster_distance(p) > 0.0) != (e > 0.0));
            }
        }
        // The raster alone gets some signs wrong at this resolution: the test exercises the band.
        assert!(raster_wrong > 50, "{raster_wrong}");
    }

    #[test]
    fn lane_projection_extends_past_the_end() {
        let l =
            LaneLine { points: vec![[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]], s: vec![0.0, 10.0, 20.0], stop_s_m: None };
        assert!((l.project([5.0, 3.0]) - 5.0).abs() < 1e-12);
        assert!((l.project([23.0, 0.5]) - 23.0).abs() < 1e-12);
        assert!((l.project([-2.0, 0.0]) + 2.0).abs() < 1e-12);
    }
}
