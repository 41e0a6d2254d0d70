//! The drivable area, exactly: the union of every lane swept by its width and every junction
//! connection swept by the width of the lane it leaves ([`drivable_strips`]), and a bucketed
//! index of its segments ([`StripIndex`]) that answers "how far is this point from the
//! drivable area" exactly for points near it.
//!
//! A point is drivable when it lies within a strip's half width of the strip's centre line
//! (touching counts). The distance [`StripIndex::outside_distance`] returns is the minimum
//! over strips of (distance to the centre line − half width): exactly the distance to the
//! area for points outside it (the distance to a union is the least distance to its parts),
//! and, inside, minus the depth within the deepest single strip (at most the depth within
//! the union). `swm_eval` scores off-road with it and `swm_model`'s rollout mask tests
//! points near the edge with it, so both agree on what is on the road.

use crate::model::Twin;
use crate::{P2, P3};

/// Centre lines (plan view) with their half widths (m): every lane, then every connection
/// (the width of the lane it leaves; 3 m when that lane is unknown).
pub fn drivable_strips(twin: &Twin) -> Vec<(Vec<P2>, f64)> {
    let flat = |pts: &[P3]| pts.iter().map(|p| [p[0], p[1]]).collect::<Vec<P2>>();
    let mut strips: Vec<(Vec<P2>, f64)> = twin.lanes.iter().map(|l| (flat(&l.centerline), 0.5 * l.width_m)).collect();
    for c in &twin.lane_connections {
        let w = twin.lanes.get(c.from_lane as usize).map_or(3.0, |l| l.width_m);
        strips.push((flat(&c.path), 0.5 * w));
    }
    strips
}

/// One strip segment: its ends and half width (m).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StripSegment {
    pub a: P2,
    pub b: P2,
    pub half_width_m: f64,
}

impl StripSegment {
    /// Distance from `p` to the centre line minus the half width (m).
    pub fn outside_distance(&self, p: P2) -> f64 {
        let ab = [self.b[0] - self.a[0], self.b[1] - self.a[1]];
        let ap = [p[0] - self.a[0], p[1] - self.a[1]];
        let l2 = ab[0] * ab[0] + ab[1] * ab[1];
        let t = if l2 > 0.0 { ((ap[0] * ab[0] + ap[1] * ab[1]) / l2).clamp(0.0, 1.0) } else { 0.0 };
        (ap[0] - t * ab[0]).hypot(ap[1] - t * ab[1]) - self.half_width_m
    }
}

/// Strip segments bucketed on a square grid over an area: bucket `k` lists every segment
/// whose strip comes within `reach_m` of the bucket, so for a point whose distance to the
/// drivable area is at most `reach_m` the minimum over its bucket's list is exact.
#[derive(Clone, Debug, Default)]
pub struct StripIndex {
    /// South-west corner of bucket 0 (m).
    pub origin_m: P2,
    pub bucket_m: f64,
    pub nx: usize,
    pub ny: usize,
    pub reach_m: f64,
    /// Bucket `k` (row-major from the south-west, `k = row * nx + col`) lists
    /// `items[start[k]..start[k + 1]]`.
    pub start: Vec<u32>,
    pub items: Vec<u32>,
    pub segments: Vec<StripSegment>,
}

impl StripIndex {
    /// Buckets of `bucket_m` over `area_m` (`[min x, min y, max x, max y]`; the origin is
    /// rounded down to whole metres), holding the segments of `strips` that come within
    /// `reach_m` of it. Segments with non-finite ends or half widths are skipped.
    pub fn new(strips: &[(Vec<P2>, f64)], area_m: [f64; 4], bucket_m: f64, reach_m: f64) -> StripIndex {
        let origin_m = [area_m[0].floor(), area_m[1].floor()];
        let nx = (((area_m[2] - origin_m[0]) / bucket_m).ceil().max(1.0)) as usize;
        let ny = (((area_m[3] - origin_m[1]) / bucket_m).ceil().max(1.0)) as usize;
        let top = [origin_m[0] + nx as f64 * bucket_m, origin_m[1] + ny as f64 * bucket_m];
        let segments: Vec<StripSegment> = strips
            .iter()
            .filter(|(_, hw)| hw.is_finite() && *hw > 0.0)
            .flat_map(|(pts, hw)| pts.windows(2).map(move |w| StripSegment { a: w[0], b: w[1], half_width_m: *hw }))
            .filter(|s| s.a.iter().chain(&s.b).all(|v| v.is_finite()))
            .filter(|s| {
                let r = s.half_width_m + reach_m;
                s.a[0].max(s.b[0]) + r >= origin_m[0]
                    && s.a[0].min(s.b[0]) - r <= top[0]
                    && s.a[1].max(s.b[1]) + r >= origin_m[1]
                    && s.a[1].min(s.b[1]) - r <= top[1]
            })
            .collect();
        let range = |s: &StripSegment| {
            let r = s.half_width_m + reach_m;
            let to = |v: f64, o: f64, n: usize| (((v - o) / bucket_m).floor().max(0.0) as usize).min(n - 1);
            (
                to(s.a[0].min(s.b[0]) - r, origin_m[0], nx),
                to(s.a[0].max(s.b[0]) + r, origin_m[0], nx),
                to(s.a[1].min(s.b[1]) - r, origin_m[1], ny),
                to(s.a[1].max(s.b[1]) + r, origin_m[1], ny),
            )
        };
        // Counting sort into buckets (CSR).
        let mut next = vec![0u32; nx * ny + 1];
        for s in &segments {
            let (i0, i1, j0, j1) = range(s);
            for j in j0..=j1 {
                for i in i0..=i1 {
                    next[j * nx + i + 1] += 1;
                }
            }
        }
        for k in 1..next.len() {
            next[k] += next[k - 1];
        }
        let start = next.clone();
        let mut items = vec![0u32; *start.last().unwrap_or(&0) as usize];
        for (n, s) in segments.iter().enumerate() {
            let (i0, i1, j0, j1) = range(s);
            for j in j0..=j1 {
                for i in i0..=i1 {
                    let k = j * nx + i;
                    items[next[k] as usize] = n as u32;
                    next[k] += 1;
                }
            }
        }
        StripIndex { origin_m, bucket_m, nx, ny, reach_m, start, items, segments }
    }

    /// The bucket holding `p`, if it is on the grid.
    pub fn bucket(&self, p: P2) -> Option<usize> {
        let i = ((p[0] - self.origin_m[0]) / self.bucket_m).floor();
        let j = ((p[1] - self.origin_m[1]) / self.bucket_m).floor();
        (i >= 0.0 && j >= 0.0 && i < self.nx as f64 && j < self.ny as f64).then(|| j as usize * self.nx + i as usize)
    }

    /// The segments listed in bucket `k`.
    pub fn bucket_segments(&self, k: usize) -> impl Iterator<Item = &StripSegment> {
        self.items[self.start[k] as usize..self.start[k + 1] as usize].iter().map(|&n| &self.segments[n as usize])
    }

    /// The minimum over strips of (distance to the centre line − half width) at `p` (module
    /// docs), or `None` when it is above `reach_m` or `p` is off the grid.
    pub fn outside_distance(&self, p: P2) -> Option<f64> {
        let k = self.bucket(p)?;
        let best = self.bucket_segments(k).map(|s| s.outside_distance(p)).fold(f64::INFINITY, f64::min);
        (best <= self.reach_m).then_some(best)
    }

    /// The minimum over strips of (distance to the centre line − half width) at `p`, exact
    /// when it is at most one bucket side (the strips of the 3 × 3 buckets around `p`'s are
    /// searched), else at least that; infinite where no strip is listed there.
    pub fn outside_distance_near(&self, p: P2) -> f64 {
        let i = ((p[0] - self.origin_m[0]) / self.bucket_m).floor();
        let j = ((p[1] - self.origin_m[1]) / self.bucket_m).floor();
        let mut best = f64::INFINITY;
        for dj in [-1.0, 0.0, 1.0] {
            for di in [-1.0, 0.0, 1.0] {
                let (ci, cj) = (i + di, j + dj);
                if ci >= 0.0 && cj >= 0.0 && ci < self.nx as f64 && cj < self.ny as f64 {
                    let k = cj as usize * self.nx + ci as usize;
                    best = self.bucket_segments(k).map(|s| s.outside_distance(p)).fold(best, f64::min);
                }
            }
        }
        best
    }

    /// Whether `p` is drivable (within a strip's half width of its centre line); false off
    /// the grid.
    pub fn contains(&self, p: P2) -> bool {
        self.bucket(p).is_some_and(|k| self.bucket_segments(k).any(|s| s.outside_distance(p) <= 0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(strips: &[(Vec<P2>, f64)], p: P2) -> f64 {
        strips
            .iter()
            .flat_map(|(pts, hw)| {
                pts.windows(2).map(move |w| StripSegment { a: w[0], b: w[1], half_width_m: *hw }.outside_distance(p))
            })
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn the_index_matches_brute_force_within_reach() {
        let strips = vec![
            (vec![[0.0, 0.0], [30.0, 0.0], [45.0, 12.0], [50.0, 40.0]], 1.7),
            (vec![[20.0, -25.0], [21.0, 25.0]], 1.5),
            (vec![[-500.0, -500.0], [-499.0, -500.0]], 1.5),
        ];
        let index = StripIndex::new(&strips, [-10.0, -30.0, 60.0, 50.0], 4.0, 2.5);
        // The far strip is left out.
        assert_eq!(index.segments.len(), 4);
        let mut state = 7u64;
        for _ in 0..20_000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let x = -10.0 + 70.0 * ((state >> 11) as f64 / (1u64 << 53) as f64);
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let y = -30.0 + 80.0 * ((state >> 11) as f64 / (1u64 << 53) as f64);
            let e = brute(&strips, [x, y]);
            match index.outside_distance([x, y]) {
                Some(d) => assert!((d - e).abs() < 1e-12, "({x}, {y}): {d} vs {e}"),
                None => assert!(e > index.reach_m, "({x}, {y}): missed {e}"),
            }
            assert_eq!(index.contains([x, y]), e <= 0.0, "({x}, {y})");
            let near = index.outside_distance_near([x, y]);
            if e <= index.bucket_m {
                assert!((near - e).abs() < 1e-12, "({x}, {y}): near {near} vs {e}");
            } else {
                assert!(near >= index.bucket_m, "({x}, {y}): near {near} vs {e}");
            }
        }
        assert!(!index.contains([-100.0, 0.0]));
        assert_eq!(index.outside_distance([1e9, 0.0]), None);
    }
}
