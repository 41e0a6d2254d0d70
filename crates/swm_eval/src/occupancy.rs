//! Bird's-eye-view occupancy grids and their IoU.

use crate::geometry::AgentBox;

/// A square, axis-aligned grid of `n x n` cells of `cell_m`, centred on `center`.
#[derive(Clone, Debug)]
pub struct OccupancyGrid {
    pub center: [f64; 2],
    pub cell_m: f64,
    pub n: usize,
    /// How many of the painted layers cover each cell.
    pub counts: Vec<u16>,
    stamp: Vec<u32>,
    layer: u32,
}

impl OccupancyGrid {
    pub fn new(center: [f64; 2], window_m: f64, cell_m: f64) -> OccupancyGrid {
        let n = (window_m / cell_m).round().max(1.0) as usize;
        OccupancyGrid { center, cell_m, n, counts: vec![0; n * n], stamp: vec![0; n * n], layer: 0 }
    }

    /// Starts a new layer: a cell counts at most once per layer however many boxes cover it.
    pub fn next_layer(&mut self) {
        self.layer += 1;
    }

    /// Adds one to every cell whose centre lies inside `b` and that no box of this layer has
    /// covered yet.
    pub fn paint(&mut self, b: &AgentBox) {
        let half = self.n as f64 * self.cell_m / 2.0;
        let (x0, y0) = (self.center[0] - half, self.center[1] - half);
        let cs = b.corners();
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for c in cs {
            for k in 0..2 {
                lo[k] = lo[k].min(c[k]);
                hi[k] = hi[k].max(c[k]);
            }
        }
        let n = self.n as f64;
        let range = |lo: f64, hi: f64, o: f64| {
            let a = ((lo - o) / self.cell_m - 0.5).ceil().max(0.0);
            let b = ((hi - o) / self.cell_m - 0.5).floor().min(n - 1.0);
            (a as i64, b as i64)
        };
        let (i0, i1) = range(lo[0], hi[0], x0);
        let (j0, j1) = range(lo[1], hi[1], y0);
        for j in j0..=j1 {
            for i in i0..=i1 {
                let p = [x0 + (i as f64 + 0.5) * self.cell_m, y0 + (j as f64 + 0.5) * self.cell_m];
                let k = j as usize * self.n + i as usize;
                if self.stamp[k] != self.layer && b.contains(p) {
                    self.stamp[k] = self.layer;
                    self.counts[k] += 1;
                }
            }
        }
    }
}

/// IoUs of one predicted occupancy against the truth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ious {
    /// Predicted cells (probability >= threshold) against true cells; `None` when both are
    /// empty.
    pub iou: Option<f64>,
    /// `sum(p g) / sum(p + g - p g)` over cells; `None` when both are empty.
    pub soft_iou: Option<f64>,
}

/// IoUs of `pred` (counts out of `layers`) against `truth` (any count > 0 is occupied).
pub fn ious(pred: &OccupancyGrid, layers: u32, truth: &OccupancyGrid, threshold: f64) -> Ious {
    let (mut inter, mut union, mut soft_i, mut soft_u) = (0u64, 0u64, 0.0, 0.0);
    let layers = f64::from(layers.max(1));
    for (&c, &g) in pred.counts.iter().zip(&truth.counts) {
        let p = f64::from(c) / layers;
        let g = g > 0;
        let pb = p >= threshold;
        inter += u64::from(pb && g);
        union += u64::from(pb || g);
        let gf = if g { 1.0 } else { 0.0 };
        soft_i += p * gf;
        soft_u += p + gf - p * gf;
    }
    Ious { iou: (union > 0).then(|| inter as f64 / union as f64), soft_iou: (soft_u > 0.0).then(|| soft_i / soft_u) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paints_cells_inside_a_box_once_per_layer() {
        let mut g = OccupancyGrid::new([0.0, 0.0], 20.0, 0.5);
        let b = AgentBox { center: [0.0, 0.0], heading_rad: 0.0, length_m: 4.0, width_m: 2.0 };
        g.next_layer();
        g.paint(&b);
        g.paint(&b);
        // 4 m x 2 m at 0.5 m: 8 x 4 cells (centres inside, edges aligned with cell edges).
        assert_eq!(g.counts.iter().filter(|&&c| c == 1).count(), 32);
        assert!(g.counts.iter().all(|&c| c <= 1));
        let r = ious(&g, 1, &g, 0.5);
        assert_eq!(r.iou, Some(1.0));
        assert_eq!(r.soft_iou, Some(1.0));
        let mut h = OccupancyGrid::new([0.0, 0.0], 20.0, 0.5);
        h.next_layer();
        h.paint(&AgentBox { center: [2.0, 0.0], ..b });
        // Half of each box overlaps the other: 16 / 48.
        assert!((ious(&h, 1, &g, 0.5).iou.unwrap() - 16.0 / 48.0).abs() < 1e-12);
    }
}
