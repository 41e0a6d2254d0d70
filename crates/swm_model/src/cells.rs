//! The agents of one frame sorted by square cell, so that "which agents could be within
//! `r` of this point" costs a few binary searches instead of a scan of every agent.
//!
//! Features' neighbour search and the collision mask's candidates scan every agent of a
//! frame for every agent: nothing for a 48-agent scenario, but most of a frame's time when
//! the model drives a whole district (the viewer's model traffic: thousands of agents).
//! With [`CellIndex`] they visit only the agents in the cells a query square meets, then
//! apply the very test the scan applied, and sort what passes as the scan's results were
//! ordered; so their results are the same, bit for bit.
//!
//! **Invariant:** [`CellIndex::near`] visits a superset of the indexed agents within `r_m`
//! of the query point (every agent `q` with `|q − p|∞ ≤ r_m`, and `r_m` is padded by
//! [`QUERY_MARGIN_M`] against the rounding of the callers' own distance tests). Points that
//! are not finite are not indexed: no distance test of theirs can pass where `r_m²` is
//! finite ([`CellIndex::answers`]; `NaN` and `∞` compare false with `≤` a finite number).

use swm_twin::P2;

/// Frames with fewer agents than this are scanned: below it the index costs more than it
/// saves (a 48-agent scenario's scan is a few hundred nanoseconds).
pub(crate) const CELL_INDEX_MIN_AGENTS: usize = 128;

/// Added to every query's reach (m): far more than the rounding of a distance test, so that
/// every point the caller's test accepts lies within the padded square.
pub(crate) const QUERY_MARGIN_M: f64 = 1.0;

/// Indexed points by cell (module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct CellIndex {
    /// South-west corner of cell (0, 0): the smallest indexed coordinates.
    origin: P2,
    cell_m: f64,
    /// (row, column, point index), sorted.
    entries: Vec<(i64, i64, u32)>,
    /// Points given to the last [`CellIndex::rebuild`], finite or not.
    points: usize,
}

impl CellIndex {
    /// Indexes the finite ones of `points` (by their position in the iterator) in cells of
    /// `cell_m` m.
    pub(crate) fn rebuild(&mut self, points: impl Iterator<Item = P2> + Clone, cell_m: f64) {
        debug_assert!(cell_m > 0.0 && cell_m.is_finite());
        let finite = |p: &P2| p[0].is_finite() && p[1].is_finite();
        let origin =
            points.clone().filter(finite).fold([f64::INFINITY, f64::INFINITY], |o, p| [o[0].min(p[0]), o[1].min(p[1])]);
        (self.origin, self.cell_m) = (origin, cell_m);
        self.entries.clear();
        self.points = 0;
        for (k, p) in points.enumerate() {
            self.points += 1;
            if finite(&p) {
                let (row, col) = self.cell(p);
                self.entries.push((row, col, k as u32));
            }
        }
        self.entries.sort_unstable();
    }

    /// The (row, column) of `p`: `floor` of its offsets in cells, saturated to `i64`. A
    /// monotone function of each coordinate (every step rounds monotonically), which is what
    /// the invariant rests on.
    #[inline]
    fn cell(&self, p: P2) -> (i64, i64) {
        let f = |v: f64, o: f64| ((v - o) / self.cell_m).floor() as i64;
        (f(p[1], self.origin[1]), f(p[0], self.origin[0]))
    }

    /// Calls `visit` with the index of every indexed point whose cell meets the square of
    /// half side `r_m` + [`QUERY_MARGIN_M`] around `p` (module docs), in no useful order.
    /// Nothing for a `p` or `r_m` that is not finite: callers fall back to a scan there.
    pub(crate) fn near(&self, p: P2, r_m: f64, mut visit: impl FnMut(usize)) {
        let r = r_m.abs() + QUERY_MARGIN_M;
        let lo = self.cell([p[0] - r, p[1] - r]);
        let hi = self.cell([p[0] + r, p[1] + r]);
        if (hi.0.saturating_sub(lo.0) as u64) >= self.entries.len() as u64 {
            // More rows than points (a reach of the index's size or more): one pass.
            for e in self.entries.iter().filter(|e| (lo.0..=hi.0).contains(&e.0) && (lo.1..=hi.1).contains(&e.1)) {
                visit(e.2 as usize);
            }
            return;
        }
        for row in lo.0..=hi.0 {
            let start = self.entries.partition_point(|e| (e.0, e.1) < (row, lo.1));
            for e in self.entries[start..].iter().take_while(|e| e.0 == row && e.1 <= hi.1) {
                visit(e.2 as usize);
            }
        }
    }

    /// How many points the last [`CellIndex::rebuild`] was given (finite or not).
    pub(crate) fn points(&self) -> usize {
        self.points
    }

    /// Whether a query of [`CellIndex::near`] at `p` with reach `r_m` is answered: `p` and
    /// `r_m²` finite (then no distance test `dx² + dy² ≤ r_m²` passes for a point that is
    /// not finite, which is not indexed); otherwise the caller scans.
    pub(crate) fn answers(p: P2, r_m: f64) -> bool {
        p[0].is_finite() && p[1].is_finite() && (r_m * r_m).is_finite()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every point within the reach (by the callers' kind of test, `dx² + dy² ≤ r²`) is
    /// visited, each at most once, for points spread over a district, clustered in one cell,
    /// on cell edges, far apart, and not finite.
    #[test]
    fn near_visits_every_point_within_reach() {
        let mut rng = swm_core::rng::CounterRng::new(29, 2);
        let mut idx = CellIndex::default();
        for case in 0..6 {
            let n = [300, 1, 50, 400, 200, 64][case];
            let spread = [2_000.0, 10.0, 5.0, 3e6, 500.0, 80.0][case];
            let mut pts: Vec<P2> =
                (0..n).map(|_| [rng.range_f64(-spread, spread) + 1e4, rng.range_f64(-spread, spread) - 3e5]).collect();
            if case == 4 {
                // On cell edges and exactly at the reach.
                for p in &mut pts {
                    *p = [(p[0] / 40.0).round() * 40.0, (p[1] / 40.0).round() * 40.0];
                }
            }
            if case == 5 {
                pts[3] = [f64::NAN, 0.0];
                pts[9] = [f64::INFINITY, 1e4];
                pts[11] = [1e4, f64::NEG_INFINITY];
            }
            let cell_m = [40.0, 40.0, 0.5, 1_000.0, 40.0, 7.0][case];
            idx.rebuild(pts.iter().copied(), cell_m);
            let mut seen = vec![0u32; n];
            for (i, &p) in pts.iter().enumerate() {
                for r in [0.0, 3.0, 40.0, 130.0, 1e7, 1e300] {
                    seen.fill(0);
                    if CellIndex::answers(p, r) {
                        idx.near(p, r, |j| seen[j] += 1);
                    } else {
                        seen.fill(1);
                    }
                    if r == 1e300 && CellIndex::answers(p, 0.0) {
                        // A reach beyond any cell count: every indexed point.
                        seen.fill(0);
                        idx.near(p, r, |j| seen[j] += 1);
                        for (j, q) in pts.iter().enumerate() {
                            assert_eq!(seen[j], u32::from(q[0].is_finite() && q[1].is_finite()), "case {case}");
                        }
                        continue;
                    }
                    for (j, &q) in pts.iter().enumerate() {
                        assert!(seen[j] <= 1, "case {case}: {j} visited twice");
                        let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
                        if dx * dx + dy * dy <= r * r {
                            assert_eq!(seen[j], 1, "case {case}: point {j} {q:?} within {r} of {i} {p:?} not visited");
                        }
                    }
                }
            }
        }
    }
}
