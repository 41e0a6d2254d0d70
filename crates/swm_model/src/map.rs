//! What the model knows about a twin, precomputed once per twin: the drivable paths
//! (lanes and the connections through junctions, with their successors) in an R-tree, a
//! bird's-eye-view class raster of the whole twin for ray marching, and the signal plans.
//!
//! * **Paths**: every [`swm_twin::Lane`] and every [`swm_twin::LaneConnection`] path is a
//!   [`Path`] (a 2D polyline with cumulative lengths); a lane's successors are the
//!   connections leaving its end (in twin order), a connection's successor is its
//!   `to_lane`. Vehicles inside junctions (the teacher records `lane: None` there) match
//!   connection paths, so the lane-ahead features stay continuous through turns.
//! * **Raster**: [`swm_twin::query::TwinIndex::bev_raster`] of the twin's bounding box
//!   (plus 50 m), heading 0, at [`RASTER_RES_M`] (coarser when the twin is large so that the
//!   raster stays under 16 M pixels), computed once. Features march rays through it.
//! * **Drivable area** ([`Drivable`]): the union of every lane swept by its width and every
//!   connection swept by the width of the lane it leaves, as a bitmap at
//!   [`DRIVABLE_RES_M`] (coarser when the twin is large so that it stays under 256 M cells,
//!   32 MB) marking the cells that lie **wholly** within the half width of a centre line
//!   (their centre within the half width less half the cell's diagonal), and for points in
//!   the other cells the exact test of [`swm_twin::drivable::StripIndex`]: a point is
//!   drivable exactly when `swm_eval` scores it on the road.
//!   The rollouts' off-road feasibility mask reads it; maps made with
//!   [`MapContext::from_paths`] have none and the mask reads the class raster instead.
//! * **Signals**: [`SignalSource::Plans`] recomputes lane states from the
//!   [`swm_sim::signal::SignalController`] seeded like the teacher run;
//!   [`SignalSource::Recorded`] holds what the records said (see `features`).

use rstar::{AABB, PointDistance, RTree, RTreeObject};
use swm_sim::SignalState;
use swm_sim::signal::SignalController;
use swm_twin::drivable::StripIndex;
use swm_twin::query::{BevClass, TwinIndex};
use swm_twin::{P2, Twin};

use crate::ModelError;

/// Resolution of the twin raster (m per pixel) when it fits.
pub const RASTER_RES_M: f64 = 1.0;
const MAX_RASTER_PIXELS: f64 = 16.0e6;
/// Resolution of the drivable-area bitmap (m per cell) when it fits.
pub const DRIVABLE_RES_M: f64 = 0.25;
const MAX_DRIVABLE_CELLS: f64 = 256.0e6;
/// Side of the buckets of the exact test ([`StripIndex`], m).
pub const EXACT_BUCKET_M: f64 = 4.0;
/// Strips are listed in the buckets they come within this distance of (m): a little more
/// than touching, so that a point a rounding error across a bucket's edge (the GPU's f32)
/// still finds them.
const EXACT_REACH_M: f64 = 0.05;

/// The (column, row) of the cell of a `nx` × `ny` raster (south-west corner `origin`, cells
/// of `res` m) holding `p`; `None` outside it (and for a point that is not finite). The same
/// cell as `floor` of the offsets divided by `res`, without a call to libm's `floor` (no
/// SSE4.1 on the baseline target): an offset that is not negative floors to its truncation.
/// Where `res` is a power of two (the default resolutions), the offsets are multiplied by
/// its reciprocal instead, which gives the same bits as the division (both round the same
/// real number once) in a fraction of its time.
#[inline]
fn raster_cell(p: P2, origin: P2, res: f64, nx: usize, ny: usize) -> Option<(usize, usize)> {
    Grid::new(origin, res, nx, ny).cell(p)
}

/// [`raster_cell`]'s raster, with what it derives from it (the reciprocal of the resolution,
/// the cell counts as `f64`) derived once, for many points.
#[derive(Clone, Copy)]
struct Grid {
    origin: P2,
    res: f64,
    inv: Option<f64>,
    nx: usize,
    nx_f: f64,
    ny_f: f64,
}

impl Grid {
    #[inline]
    fn new(origin: P2, res: f64, nx: usize, ny: usize) -> Grid {
        Grid { origin, res, inv: power_of_two_reciprocal(res), nx, nx_f: nx as f64, ny_f: ny as f64 }
    }

    /// [`raster_cell`].
    #[inline]
    fn cell(&self, p: P2) -> Option<(usize, usize)> {
        let (dx, dy) = (p[0] - self.origin[0], p[1] - self.origin[1]);
        let (x, y) = match self.inv {
            Some(inv) => (dx * inv, dy * inv),
            None => (dx / self.res, dy / self.res),
        };
        // For x ≥ 0 and a whole number n, trunc(x) < n exactly when x < n (n below 2^53:
        // the cell counts are, so `as f64` is exact).
        if !(x >= 0.0 && y >= 0.0 && x < self.nx_f && y < self.ny_f) {
            return None;
        }
        // SAFETY: 0 ≤ x < nx and 0 ≤ y < ny (NaN fails the tests above), so both truncate to
        // a whole number in range of `i64` (cell counts are far below 2^63), and that number
        // is the cell's index. (A conversion to `i64` is one instruction on x86-64; one to
        // `u64` needs two and a fix-up.)
        Some(unsafe { (x.to_int_unchecked::<i64>() as usize, y.to_int_unchecked::<i64>() as usize) })
    }
}

/// `1 / res` when `res` is a power of two whose reciprocal is a normal number (then
/// `x * (1 / res)` and `x / res` are the same bits for every `x`), from the exponent alone.
#[inline]
fn power_of_two_reciprocal(res: f64) -> Option<f64> {
    const MANTISSA: u64 = (1 << 52) - 1;
    let bits = res.to_bits();
    let biased = bits >> 52;
    // Positive, normal, mantissa 0; 2 - 1023 ≤ exponent ≤ 1022, so that 1 / res is normal.
    (bits & MANTISSA == 0 && (2..=2045).contains(&biased)).then(|| f64::from_bits((2046 - biased) << 52))
}

/// The drivable area as a bitmap (module docs).
#[derive(Clone, Debug)]
pub struct Drivable {
    pub origin_m: P2,
    pub res_m: f64,
    pub nx: usize,
    pub ny: usize,
    /// Bit `row * nx + col` (row 0 south): the cell is wholly drivable.
    pub bits: Vec<u64>,
    /// The strips' segments, for the exact test of points in cells not wholly drivable.
    pub exact: StripIndex,
}

impl Drivable {
    /// Paints `strips` (centre line, half width) over their bounding box.
    pub fn from_strips(strips: &[(Vec<P2>, f64)]) -> Option<Drivable> {
        let mut bb = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for (pts, hw) in strips {
            for p in pts.iter().filter(|p| p[0].is_finite() && p[1].is_finite()) {
                bb = [bb[0].min(p[0] - hw), bb[1].min(p[1] - hw), bb[2].max(p[0] + hw), bb[3].max(p[1] + hw)];
            }
        }
        if !bb[0].is_finite() {
            return None;
        }
        let (w_m, h_m) = (bb[2] - bb[0] + 2.0, bb[3] - bb[1] + 2.0);
        let res = DRIVABLE_RES_M.max((w_m * h_m / MAX_DRIVABLE_CELLS).sqrt());
        let (nx, ny) = ((w_m / res).ceil() as usize, (h_m / res).ceil() as usize);
        let origin = [bb[0] - 1.0, bb[1] - 1.0];
        let mut bits = vec![0u64; (nx * ny).div_ceil(64)];
        // A cell lies wholly within `hw` of a segment when its centre lies within `hw` less
        // half its diagonal.
        let shrink = res * std::f64::consts::FRAC_1_SQRT_2;
        for (pts, hw) in strips {
            if !(hw.is_finite() && *hw > shrink) {
                continue;
            }
            let inner = hw - shrink;
            for w in pts.windows(2) {
                let (a, b) = (w[0], w[1]);
                if !(a.iter().chain(&b).all(|v| v.is_finite())) {
                    continue;
                }
                let c0 = (((a[0].min(b[0]) - hw - origin[0]) / res).floor().max(0.0)) as usize;
                let c1 = (((a[0].max(b[0]) + hw - origin[0]) / res).ceil() as usize).min(nx);
                let r0 = (((a[1].min(b[1]) - hw - origin[1]) / res).floor().max(0.0)) as usize;
                let r1 = (((a[1].max(b[1]) + hw - origin[1]) / res).ceil() as usize).min(ny);
                for r in r0..r1 {
                    for c in c0..c1 {
                        let p = [origin[0] + (c as f64 + 0.5) * res, origin[1] + (r as f64 + 0.5) * res];
                        let (q, _) = project(a, b, p);
                        if (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2) <= inner * inner {
                            let k = r * nx + c;
                            bits[k / 64] |= 1 << (k % 64);
                        }
                    }
                }
            }
        }
        let top = [origin[0] + nx as f64 * res, origin[1] + ny as f64 * res];
        let exact = StripIndex::new(strips, [origin[0], origin[1], top[0], top[1]], EXACT_BUCKET_M, EXACT_REACH_M);
        Some(Drivable { origin_m: origin, res_m: res, nx, ny, bits, exact })
    }

    /// Whether `p` is drivable, exactly: in a wholly drivable cell, or within a strip's half
    /// width of its centre line ([`StripIndex::contains`]); false off the bitmap.
    #[inline]
    pub fn contains(&self, p: P2) -> bool {
        let Some((c, r)) = raster_cell(p, self.origin_m, self.res_m, self.nx, self.ny) else {
            return false;
        };
        self.contains_at(r * self.nx + c, p)
    }

    /// Whether `p`, in cell `k` (row-major), is drivable: the cell is wholly drivable or `p`
    /// is within a strip ([`Drivable::contains`] once the cell is found).
    #[inline]
    fn contains_at(&self, k: usize, p: P2) -> bool {
        self.bits[k / 64] >> (k % 64) & 1 == 1 || self.exact.contains(p)
    }
}

/// A drivable path: a lane or a connection through a junction. Made by [`make_path`], which
/// also caches every segment's direction (the fields are read-only in practice: a path
/// whose points change needs a new [`make_path`]).
#[derive(Clone, Debug)]
pub struct Path {
    pub points: Vec<P2>,
    /// Distance along the path of every point (m).
    pub s_m: Vec<f64>,
    pub length_m: f64,
    pub speed_limit_mps: f64,
    /// The lane index for lanes, `None` for connections.
    pub lane: Option<u32>,
    /// The lane whose signal/stop line governs the path's end (lanes only).
    pub stop_s_m: Option<f64>,
    pub successors: Vec<u32>,
    /// Per segment: its unit direction and that direction's heading (rad), as
    /// [`Path::at`] computes them.
    dirs: Vec<(P2, f64)>,
}

/// Where along a path a lookup of [`Path::at_from`] last landed: the next lookup, a little
/// further along, starts there instead of searching the whole path.
#[derive(Clone, Copy, Debug, Default)]
pub struct PathCursor {
    segment: usize,
}

impl Path {
    /// The point and unit direction at distance `s_m` along the path (clamped).
    pub fn at(&self, s_m: f64) -> (P2, P2) {
        let (q, d, _) = self.at_from(s_m, &mut PathCursor::default());
        (q, d)
    }

    /// [`Path::at`] and the direction's heading (rad), starting the search at `cursor` and
    /// leaving it at the segment found. The same values as [`Path::at`] whatever the cursor:
    /// a walk forward from it that lands strictly inside a segment finds the segment the
    /// binary search would; on a vertex (where zero-length segments could make the two
    /// disagree) the binary search decides.
    pub fn at_from(&self, s_m: f64, cursor: &mut PathCursor) -> (P2, P2, f64) {
        let n = self.points.len();
        if n == 1 {
            return (self.points[0], [1.0, 0.0], 0.0);
        }
        let s = s_m.clamp(0.0, self.length_m);
        let mut i = cursor.segment.min(n - 2);
        // A short walk forward (lookups move on by a few metres).
        for _ in 0..4 {
            if self.s_m[i + 1] < s && i + 2 < n {
                i += 1;
            } else {
                break;
            }
        }
        if !(self.s_m[i] < s && s < self.s_m[i + 1]) {
            i = match self.s_m.binary_search_by(|v| v.total_cmp(&s)) {
                Ok(i) => i.min(n - 2),
                Err(i) => i.saturating_sub(1).min(n - 2),
            };
        }
        cursor.segment = i;
        let a = self.points[i];
        let seg = self.s_m[i + 1] - self.s_m[i];
        let u = if seg > 1e-9 { (s - self.s_m[i]) / seg } else { 0.0 };
        let b = self.points[i + 1];
        let d = [b[0] - a[0], b[1] - a[1]];
        let (dir, heading_rad) = self.dirs[i];
        ([a[0] + u * d[0], a[1] + u * d[1]], dir, heading_rad)
    }

    /// Heading at the path's start and end (rad).
    fn end_headings(&self) -> (f64, f64) {
        let (_, d0) = self.at(0.0);
        let (_, d1) = self.at(self.length_m);
        (d0[1].atan2(d0[0]), d1[1].atan2(d1[0]))
    }
}

#[derive(Clone, Debug)]
struct Seg {
    path: u32,
    i: u32,
    a: P2,
    b: P2,
    /// `|b − a|` (`hypot`), made once here for every query of [`MapContext::match_path_two`].
    len: f64,
    /// The bounding box's corners (south-west, north-east).
    lo: P2,
    hi: P2,
}

impl Seg {
    fn new(path: usize, i: usize, a: P2, b: P2) -> Seg {
        let (lo, hi) = ([a[0].min(b[0]), a[1].min(b[1])], [a[0].max(b[0]), a[1].max(b[1])]);
        Seg { path: path as u32, i: i as u32, a, b, len: (b[0] - a[0]).hypot(b[1] - a[1]), lo, hi }
    }
}

impl RTreeObject for Seg {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_corners(self.a, self.b)
    }
}

impl PointDistance for Seg {
    fn distance_2(&self, p: &[f64; 2]) -> f64 {
        let (q, _) = project(self.a, self.b, *p);
        (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2)
    }
}

/// The largest radius [`SegGrid`] answers (m): the path matches' radii are 3 and 6 m.
const SEG_GRID_REACH_M: f64 = 8.0;
/// Side of [`SegGrid`]'s cells (m).
const SEG_GRID_CELL_M: f64 = 8.0;
/// The most cells [`SegGrid`] makes (larger maps get larger cells).
const SEG_GRID_MAX_CELLS: f64 = 4.0e6;

/// The path segments of a [`MapContext`]'s tree by square cell: each cell lists every
/// segment whose bounding box comes within [`SEG_GRID_REACH_M`] (and a margin) of it, in the
/// order the tree's searches give them (`RTree::iter`'s depth-first order, which
/// `locate_within_distance` keeps, only pruning subtrees). So the segments of a point's cell
/// within a radius up to the reach, tested as the tree tests its leaves
/// ([`PointDistance::distance_2`] ≤ r²), are the tree's answer in the tree's order, from one
/// cell instead of a walk down the tree: the path matches ([`MapContext::match_path_two`],
/// once per agent and frame) pick the same segment.
#[derive(Clone, Debug, Default)]
struct SegGrid {
    origin: P2,
    cell_m: f64,
    nx: usize,
    ny: usize,
    /// Cell `row * nx + col` lists `items[starts[c]..starts[c + 1]]`.
    starts: Vec<u32>,
    /// Indices into `segs`.
    items: Vec<u32>,
    /// The tree's segments in its order.
    segs: Vec<Seg>,
}

impl SegGrid {
    fn new(tree: &RTree<Seg>) -> SegGrid {
        let segs: Vec<Seg> = tree.iter().cloned().collect();
        // Every segment of the tree is finite (`MapContext::new` leaves the others out).
        let reach = SEG_GRID_REACH_M + 1.0;
        let mut bb = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for s in &segs {
            bb = [bb[0].min(s.lo[0]), bb[1].min(s.lo[1]), bb[2].max(s.hi[0]), bb[3].max(s.hi[1])];
        }
        if segs.is_empty() || !bb.iter().all(|v| v.is_finite()) || segs.len() >= u32::MAX as usize {
            return SegGrid::default();
        }
        let origin = [bb[0] - reach, bb[1] - reach];
        let (w_m, h_m) = (bb[2] - bb[0] + 2.0 * reach, bb[3] - bb[1] + 2.0 * reach);
        let cell_m = SEG_GRID_CELL_M.max((w_m * h_m / SEG_GRID_MAX_CELLS).sqrt());
        let (nx, ny) = ((w_m / cell_m).ceil() as usize + 1, (h_m / cell_m).ceil() as usize + 1);
        let span = |s: &Seg| {
            let c = |v: f64, o: f64, n: usize| (((v - o) / cell_m).floor().max(0.0) as usize).min(n - 1);
            (
                c(s.lo[0] - reach, origin[0], nx)..=c(s.hi[0] + reach, origin[0], nx),
                c(s.lo[1] - reach, origin[1], ny)..=c(s.hi[1] + reach, origin[1], ny),
            )
        };
        let mut starts = vec![0u32; nx * ny + 1];
        for s in &segs {
            let (cols, rows) = span(s);
            for r in rows {
                for c in cols.clone() {
                    starts[r * nx + c + 1] += 1;
                }
            }
        }
        for c in 0..nx * ny {
            starts[c + 1] += starts[c];
        }
        let mut next = starts.clone();
        let mut items = vec![0u32; starts[nx * ny] as usize];
        for (k, s) in segs.iter().enumerate() {
            let (cols, rows) = span(s);
            for r in rows {
                for c in cols.clone() {
                    items[next[r * nx + c] as usize] = k as u32;
                    next[r * nx + c] += 1;
                }
            }
        }
        SegGrid { origin, cell_m, nx, ny, starts, items, segs }
    }

    /// The segments within `radius_m` of `p` (`distance_2` ≤ `radius_m²`, the tree's test)
    /// in the tree's order, when the grid answers the search: `radius_m` up to the reach and
    /// `p` on the grid.
    fn within(&self, p: P2, radius_m: f64) -> Option<impl Iterator<Item = &Seg>> {
        let r2 = radius_m * radius_m;
        // The box test first (no division): a segment within the radius has its box within
        // it too (the slack covers rounding).
        let box2 = r2 * (1.0 + 1e-9) + 1e-9;
        let list = self.cell_of(p, radius_m)?;
        Some(list.filter(move |s| {
            let dx = (s.lo[0] - p[0]).max(p[0] - s.hi[0]).max(0.0);
            let dy = (s.lo[1] - p[1]).max(p[1] - s.hi[1]).max(0.0);
            dx * dx + dy * dy <= box2 && s.distance_2(&p) <= r2
        }))
    }

    /// The segments listed for `p`'s cell, in the tree's order, when the grid answers a
    /// search of `radius_m` around `p` (a radius up to the reach, `p` on the grid).
    fn cell_of(&self, p: P2, radius_m: f64) -> Option<impl Iterator<Item = &Seg>> {
        if radius_m.is_nan() || radius_m > SEG_GRID_REACH_M || self.nx == 0 {
            return None;
        }
        let (x, y) = ((p[0] - self.origin[0]) / self.cell_m, (p[1] - self.origin[1]) / self.cell_m);
        if !(x >= 0.0 && y >= 0.0 && x < self.nx as f64 && y < self.ny as f64) {
            return None;
        }
        let c = y as usize * self.nx + x as usize;
        let list = &self.items[self.starts[c] as usize..self.starts[c + 1] as usize];
        Some(list.iter().map(|&k| &self.segs[k as usize]))
    }
}

fn project(a: P2, b: P2, p: P2) -> (P2, f64) {
    let d = [b[0] - a[0], b[1] - a[1]];
    let l2 = d[0] * d[0] + d[1] * d[1];
    let u = if l2 > 0.0 { (((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / l2).clamp(0.0, 1.0) } else { 0.0 };
    ([a[0] + u * d[0], a[1] + u * d[1]], u)
}

/// A match of an agent to a path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathMatch {
    pub path: u32,
    pub s_m: f64,
    /// Signed lateral offset of the agent from the path (m, left positive).
    pub lateral_m: f64,
    /// Path heading minus agent heading, wrapped (rad).
    pub heading_error_rad: f64,
}

/// Where signal states come from in features.
#[derive(Clone, Debug)]
pub enum SignalSource {
    /// The teacher's fixed-time plans seeded like the run (`SignalController::with_seed`).
    Plans(Box<SignalController>),
    /// No plans: the state each agent's record gave (held during rollouts).
    Recorded,
}

/// The twin as the model sees it; see the module docs.
pub struct MapContext {
    pub paths: Vec<Path>,
    tree: RTree<Seg>,
    /// The tree's segments by cell, for the path matches ([`SegGrid`]).
    grid: SegGrid,
    /// Class raster: `classes[row * width + col]`, row 0 at `origin_m[1]` (south), going north
    /// ([`MapContext::classes`], [`MapContext::classes_mut`]).
    classes: Vec<u8>,
    /// The class raster in tiles for the rays ([`ClassTiles`]), made from `classes` when
    /// first needed and dropped whenever they may change ([`MapContext::classes_mut`]).
    class_tiles: std::sync::OnceLock<ClassTiles>,
    pub width: usize,
    pub height: usize,
    pub origin_m: P2,
    pub res_m: f64,
    pub signals: SignalSource,
    /// The drivable area (lanes and connections swept by their widths), when built from a twin.
    pub drivable: Option<Drivable>,
    /// Ground elevation for output records.
    twin_terrain: swm_twin::Terrain,
    /// Each path's deck height above the ground at its start and at its end (m: its level ×
    /// [`swm_twin::LEVEL_HEIGHT_M`], as the teacher records it; a connection ramps from its
    /// lane's level to the next one's); empty when every deck is 0 (maps of bare paths, twins
    /// on one level).
    path_deck_m: Vec<[f64; 2]>,
}

/// Side of a [`ClassTiles`] tile (cells).
const CLASS_TILE: usize = 8;

/// One tile of [`ClassTiles`]: 8 × 8 cells, row-major, in one 64-byte cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct ClassTile([u8; CLASS_TILE * CLASS_TILE]);

/// The class raster in tiles of 8 × 8 cells, each one cache line, tiles row-major: cell
/// (col, row) is byte `(row % 8) · 8 + col % 8` of tile `(row / 8) · tiles_x + col / 8`. A ray
/// marched at one cell per step through a row-major raster reads a new cache line at every
/// step unless it runs east or west; through tiles, a new one every eight steps or so (the
/// rays' first-level cache misses halved, in valgrind's model of this machine's caches).
struct ClassTiles {
    /// The raster's size the tiles were made for (cells).
    width: usize,
    height: usize,
    tiles_x: usize,
    /// The tiles, and one more of zeros past the end.
    tiles: Vec<ClassTile>,
}

impl ClassTiles {
    fn new(classes: &[u8], width: usize, height: usize) -> ClassTiles {
        let tiles_x = width.div_ceil(CLASS_TILE);
        let mut tiles = vec![ClassTile([0; CLASS_TILE * CLASS_TILE]); tiles_x * height.div_ceil(CLASS_TILE) + 1];
        for (row, line) in classes.chunks_exact(width.max(1)).take(height).enumerate() {
            for (col, &c) in line.iter().enumerate() {
                tiles[row / CLASS_TILE * tiles_x + col / CLASS_TILE].0
                    [row % CLASS_TILE * CLASS_TILE + col % CLASS_TILE] = c;
            }
        }
        ClassTiles { width, height, tiles_x, tiles }
    }
}

impl MapContext {
    /// The class raster, row-major: `classes()[row * width + col]`, row 0 south.
    pub fn classes(&self) -> &[u8] {
        &self.classes
    }

    /// The class raster to change (`width × height` bytes, as [`MapContext::classes`]).
    pub fn classes_mut(&mut self) -> &mut Vec<u8> {
        self.class_tiles = std::sync::OnceLock::new();
        &mut self.classes
    }

    /// The class raster in tiles ([`ClassTiles`]), made on first use.
    fn class_tiles(&self) -> &ClassTiles {
        self.class_tiles.get_or_init(|| ClassTiles::new(&self.classes, self.width, self.height))
    }
}

impl std::fmt::Debug for MapContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapContext")
            .field("paths", &self.paths.len())
            .field("raster", &(self.width, self.height, self.res_m))
            .finish()
    }
}

impl MapContext {
    /// Precomputes paths and the raster of `twin`; `signal_seed`: the teacher run's seed
    /// when known (signal plans), else states are held from the records.
    pub fn new(twin: &Twin, signal_seed: Option<u64>) -> Result<MapContext, ModelError> {
        MapContext::with_resolution(twin, signal_seed, RASTER_RES_M)
    }

    /// As [`MapContext::new`] with a raster resolution other than [`RASTER_RES_M`] (the
    /// model was trained at 1 m; coarser rasters are for quick tests).
    pub fn with_resolution(twin: &Twin, signal_seed: Option<u64>, res_m: f64) -> Result<MapContext, ModelError> {
        let mut paths = Vec::with_capacity(twin.lanes.len() + twin.lane_connections.len());
        let flat = |pts: &[swm_twin::P3]| pts.iter().map(|p| [p[0], p[1]]).collect::<Vec<P2>>();
        let mut lane_out: Vec<Vec<u32>> = vec![Vec::new(); twin.lanes.len()];
        let n_lanes = twin.lanes.len() as u32;
        for (ci, c) in twin.lane_connections.iter().enumerate() {
            if let Some(v) = lane_out.get_mut(c.from_lane as usize) {
                v.push(n_lanes + ci as u32);
            }
        }
        for (li, lane) in twin.lanes.iter().enumerate() {
            paths.push(make_path(
                flat(&lane.centerline),
                lane.speed_limit_mps,
                Some(li as u32),
                lane.stop_line.as_ref().map(|s| s.s_m),
                std::mem::take(&mut lane_out[li]),
            ));
        }
        for c in &twin.lane_connections {
            let speed = twin.lanes.get(c.to_lane as usize).map(|l| l.speed_limit_mps).unwrap_or(8.0);
            let succ = if (c.to_lane as usize) < twin.lanes.len() { vec![c.to_lane] } else { Vec::new() };
            paths.push(make_path(flat(&c.path), speed, None, None, succ));
        }
        let lane_deck =
            |l: u32| twin.lanes.get(l as usize).map_or(0.0, |l| f64::from(l.level) * swm_twin::LEVEL_HEIGHT_M);
        let path_deck_m: Vec<[f64; 2]> = (0..n_lanes)
            .map(|l| [lane_deck(l); 2])
            .chain(twin.lane_connections.iter().map(|c| [lane_deck(c.from_lane), lane_deck(c.to_lane)]))
            .collect();
        // A twin on one level keeps none: every deck is 0, and no match needs the level.
        let path_deck_m = if path_deck_m.iter().all(|d| *d == [0.0; 2]) { Vec::new() } else { path_deck_m };
        let mut segs = Vec::new();
        for (pi, p) in paths.iter().enumerate() {
            if !p.points.iter().all(|q| q[0].is_finite() && q[1].is_finite()) {
                continue;
            }
            for i in 0..p.points.len().saturating_sub(1) {
                segs.push(Seg::new(pi, i, p.points[i], p.points[i + 1]));
            }
        }
        let tree = RTree::bulk_load(segs);
        let grid = SegGrid::new(&tree);
        let drivable = Drivable::from_strips(&swm_twin::drivable::drivable_strips(twin));

        // The raster.
        let b = twin.meta.bbox_m;
        let bbox = if b.iter().all(|v| v.is_finite()) && b[2] > b[0] && b[3] > b[1] {
            b
        } else {
            [-500.0, -500.0, 500.0, 500.0]
        };
        let (w_m, h_m) = (bbox[2] - bbox[0] + 100.0, bbox[3] - bbox[1] + 100.0);
        let res_m = res_m.max(0.1).max((w_m * h_m / MAX_RASTER_PIXELS).sqrt());
        let (width, height) = ((w_m / res_m).ceil() as usize, (h_m / res_m).ceil() as usize);
        let center = [0.5 * (bbox[0] + bbox[2]), 0.5 * (bbox[1] + bbox[3])];
        let index = TwinIndex::new(twin);
        let raster = index
            .bev_raster(center, 0.0, width as u32, height as u32, res_m)
            .map_err(|e| ModelError::Map(format!("twin raster: {}", swm_core::ErrorChain(&e))))?;
        // BEV rows go top (north) to bottom; store south-up for simple indexing.
        let mut classes = vec![0u8; width * height];
        for row in 0..height {
            let src = (height - 1 - row) * width;
            classes[row * width..(row + 1) * width].copy_from_slice(&raster.classes[src..src + width]);
        }
        let origin_m = [center[0] - 0.5 * width as f64 * res_m, center[1] - 0.5 * height as f64 * res_m];
        let signals = match signal_seed {
            Some(seed) => SignalSource::Plans(Box::new(SignalController::with_seed(twin, seed))),
            None => SignalSource::Recorded,
        };
        tracing::debug!(paths = paths.len(), width, height, res_m, "map context ready");
        Ok(MapContext {
            paths,
            tree,
            grid,
            classes,
            width,
            height,
            origin_m,
            res_m,
            signals,
            drivable,
            twin_terrain: twin.terrain.clone(),
            path_deck_m,
            class_tiles: Default::default(),
        })
    }

    /// A map of bare paths, for tests and synthetic scenes: the raster (1 m, the paths'
    /// bounding box plus 30 m) paints every pixel within `road_half_width_m` (> 0) of a path
    /// as road, the rest as ground; signals are recorded ones. Paths with a point that is not
    /// finite are kept in `paths` but never matched (as in [`MapContext::new`]).
    pub fn from_paths(paths: Vec<Path>, road_half_width_m: f64) -> MapContext {
        let mut segs = Vec::new();
        let mut bb = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for (pi, p) in paths.iter().enumerate() {
            // As `MapContext::new`: a path with a point that is not finite is never matched
            // (the tree cannot order its boxes, nor the raster hold it).
            if !p.points.iter().all(|q| q[0].is_finite() && q[1].is_finite()) {
                continue;
            }
            for q in &p.points {
                bb = [bb[0].min(q[0]), bb[1].min(q[1]), bb[2].max(q[0]), bb[3].max(q[1])];
            }
            for i in 0..p.points.len().saturating_sub(1) {
                segs.push(Seg::new(pi, i, p.points[i], p.points[i + 1]));
            }
        }
        let tree = RTree::bulk_load(segs);
        let (origin_m, width, height) = if bb[0].is_finite() {
            let o = [(bb[0] - 30.0).floor(), (bb[1] - 30.0).floor()];
            (o, (bb[2] + 30.0 - o[0]).ceil() as usize, (bb[3] + 30.0 - o[1]).ceil() as usize)
        } else {
            ([0.0, 0.0], 0, 0)
        };
        let mut classes = vec![BevClass::Ground as u8; width * height];
        let r2 = road_half_width_m * road_half_width_m;
        for row in 0..if road_half_width_m > 0.0 { height } else { 0 } {
            for col in 0..width {
                let p = [origin_m[0] + col as f64 + 0.5, origin_m[1] + row as f64 + 0.5];
                if tree.locate_within_distance(p, r2).next().is_some() {
                    classes[row * width + col] = BevClass::Road as u8;
                }
            }
        }
        MapContext {
            paths,
            grid: SegGrid::new(&tree),
            tree,
            classes,
            width,
            height,
            origin_m,
            res_m: 1.0,
            signals: SignalSource::Recorded,
            drivable: None,
            twin_terrain: swm_twin::Terrain::Flat { elevation_m: 0.0 },
            path_deck_m: Vec::new(),
            class_tiles: Default::default(),
        }
    }

    /// The same map with each path's deck at its start and at its end (m above the ground;
    /// one pair per path, as [`MapContext::new`] takes them from a twin's levels): synthetic
    /// scenes with bridges and tunnels.
    pub fn with_path_decks(mut self, decks_m: Vec<[f64; 2]>) -> Result<MapContext, ModelError> {
        if decks_m.len() != self.paths.len() || decks_m.iter().flatten().any(|d| !d.is_finite()) {
            return Err(ModelError::Map(format!(
                "{} path decks for {} paths (each finite)",
                decks_m.len(),
                self.paths.len()
            )));
        }
        self.path_deck_m = if decks_m.iter().all(|d| *d == [0.0; 2]) { Vec::new() } else { decks_m };
        Ok(self)
    }

    /// The raster class at a point (`Ground` outside).
    #[inline]
    pub fn class_at(&self, p: P2) -> BevClass {
        let Some((c, r)) = raster_cell(p, self.origin_m, self.res_m, self.width, self.height) else {
            return BevClass::Ground;
        };
        BevClass::from_u8(self.classes[r * self.width + c]).unwrap_or(BevClass::Ground)
    }

    /// Marches eight rays from `from` along the unit directions `dirs` (`(sin, cos)` of each
    /// ray's angle), sampling the class raster at `from + t · dir` for `t` = 1, 2, ...
    /// `max_m` m: for each ray, the first `t` whose pixel is a building, and the first whose
    /// road-ness (road or crossing) differs from `here_is_road`; `max_m` where none is.
    ///
    /// On a CPU with AVX-512F and AVX-512VL, or with AVX2, the eight rays march side by side
    /// (`ray_march`'s vector forms); they give the same values as the one-ray-at-a-time
    /// loop, which is tested.
    pub fn march_rays(&self, from: P2, dirs: &[(f64, f64); 8], here_is_road: bool, max_m: f64) -> [(f64, f64); 8] {
        #[cfg(target_arch = "x86_64")]
        if ray_march::raster_fits(self) && ray_march::avx512_available() {
            // SAFETY: AVX-512F and AVX-512VL are present (checked above), and the raster's
            // bytes cover `width × height` cells, at least 4 and fewer than 2^31 (`raster_fits`).
            return unsafe { ray_march::avx512(self, from, dirs, here_is_road, max_m) };
        }
        #[cfg(target_arch = "x86_64")]
        if ray_march::avx2_available() && ray_march::tiles_fit(self) {
            // SAFETY: AVX2 is present and the tiles fit (checked above).
            return unsafe { ray_march::avx2(self, from, dirs, here_is_road, max_m) };
        }
        self.march_rays_one_by_one(from, dirs, here_is_road, max_m)
    }

    /// [`MapContext::march_rays`], one ray after another.
    pub(crate) fn march_rays_one_by_one(
        &self,
        from: P2,
        dirs: &[(f64, f64); 8],
        here_is_road: bool,
        max_m: f64,
    ) -> [(f64, f64); 8] {
        let is_road = |c: BevClass| matches!(c, BevClass::Road | BevClass::Crossing);
        dirs.map(|(s, c)| {
            let (mut building, mut edge) = (max_m, max_m);
            let mut t = 1.0;
            while t <= max_m && (building == max_m || edge == max_m) {
                let cl = self.class_at([from[0] + t * c, from[1] + t * s]);
                if building == max_m && cl == BevClass::Building {
                    building = t;
                }
                if edge == max_m && is_road(cl) != here_is_road {
                    edge = t;
                }
                t += 1.0;
            }
            (building, edge)
        })
    }

    /// Whether `p` is on the drivable area ([`Drivable`]; without one: a road or crossing
    /// pixel of the class raster).
    #[inline]
    pub fn is_drivable(&self, p: P2) -> bool {
        match &self.drivable {
            Some(d) => d.contains(p),
            None => matches!(self.class_at(p), BevClass::Road | BevClass::Crossing),
        }
    }

    /// Which corners of a box are drivable ([`MapContext::is_drivable`] of each): bit `k` for
    /// corner `k` of `[(hl, hw), (−hl, hw), (−hl, −hw), (hl, −hw)]`, each `c + a · f + b · l`
    /// (summed in that order) with `f` the box's unit forward and `l = (−f₁, f₀)` its left.
    /// With AVX2 the four corners and their cells are computed side by side, in the same
    /// IEEE operations as one at a time (so the same cells: tested).
    #[inline]
    pub fn drivable_corners(&self, c: P2, f: P2, hl: f64, hw: f64) -> u8 {
        #[cfg(target_arch = "x86_64")]
        if ray_march::avx2_available() && corners::fits(self) {
            // SAFETY: AVX2 is present (checked above) and the raster's cell indices fit
            // `i32` (`fits`).
            return unsafe { corners::avx2(self, c, f, hl, hw) };
        }
        self.drivable_corners_one_by_one(c, f, hl, hw)
    }

    /// [`MapContext::drivable_corners`], one corner after another.
    pub(crate) fn drivable_corners_one_by_one(&self, c: P2, f: P2, hl: f64, hw: f64) -> u8 {
        let l = [-f[1], f[0]];
        let at = |a: f64, b: f64| [c[0] + a * f[0] + b * l[0], c[1] + a * f[1] + b * l[1]];
        let pts = [at(hl, hw), at(-hl, hw), at(-hl, -hw), at(hl, -hw)];
        (0..4).filter(|&k| self.is_drivable(pts[k])).fold(0, |m, k| m | 1 << k)
    }

    /// How far `p` lies off the drivable area (m; 0 on it): the distance to it, capped at
    /// [`EXACT_BUCKET_M`] (without a [`Drivable`]: that cap off the road raster).
    pub fn off_road_depth(&self, p: P2) -> f64 {
        if self.is_drivable(p) {
            return 0.0;
        }
        match &self.drivable {
            Some(d) => d.exact.outside_distance_near(p).clamp(0.0, EXACT_BUCKET_M),
            None => EXACT_BUCKET_M,
        }
    }

    /// Ground elevation (m).
    pub fn elevation_at(&self, p: P2) -> f64 {
        self.twin_terrain.elevation_at(p)
    }

    /// The deck height above the ground (m) at distance `s_m` along `path`: its lane's level ×
    /// [`swm_twin::LEVEL_HEIGHT_M`] on a lane; on a connection, the ramp from its lane's deck
    /// to the next lane's, linear in `s_m` (as the teacher raises its poses); 0 on maps of
    /// bare paths.
    pub fn deck_at(&self, path: u32, s_m: f64) -> f64 {
        let Some(&[d0, d1]) = self.path_deck_m.get(path as usize) else {
            return 0.0;
        };
        if d0 == d1 {
            return d0;
        }
        let len = self.paths[path as usize].length_m.max(0.05);
        d0 + (d1 - d0) * (s_m / len).clamp(0.0, 1.0)
    }

    /// Whether some path's deck is not 0 (bridges, tunnels): only then do path matches keep
    /// to a level.
    pub fn has_levels(&self) -> bool {
        !self.path_deck_m.is_empty()
    }

    /// The deck of `path` at its start and at its end (m above the ground; 0 on maps on one
    /// level).
    pub fn path_deck_m(&self, path: u32) -> [f64; 2] {
        self.path_deck_m.get(path as usize).copied().unwrap_or([0.0; 2])
    }

    /// Whether `path` is on the level of an agent whose deck is `deck_m` high (m): some part
    /// of it (its deck at the start, at the end, or on the ramp between) lies within
    /// [`swm_sim::metrics::LEVEL_SEPARATION_M`] of it. A car in a tunnel never matches the
    /// road above it, however close in plan; a connection ramping between levels is on
    /// both.
    pub fn on_level(&self, path: u32, deck_m: f64) -> bool {
        let Some(&[d0, d1]) = self.path_deck_m.get(path as usize) else {
            return true;
        };
        let sep = swm_sim::metrics::LEVEL_SEPARATION_M;
        deck_m > d0.min(d1) - sep && deck_m < d0.max(d1) + sep
    }

    /// The elevation of an agent at `p` whose deck is `deck_m` above the ground (m): the
    /// ground plus the deck, so that agents on a bridge and on the road under it are recorded
    /// apart (as the teacher records them).
    pub fn elevation_on(&self, p: P2, deck_m: f64) -> f64 {
        self.elevation_at(p) + deck_m
    }

    /// The path best matching a pose: among path segments within `radius_m`, the one
    /// minimising `distance + 4 m · (1 - cos(heading error))`, heading errors above 90°
    /// excluded; ties by path index.
    pub fn match_path(&self, p: P2, heading_rad: f64, radius_m: f64) -> Option<PathMatch> {
        self.match_path_two(p, heading_rad, radius_m, radius_m).1
    }

    /// [`MapContext::match_path`] among the paths on the level of an agent whose deck is
    /// `deck_m` high ([`MapContext::on_level`]); `None` takes every path.
    pub fn match_path_on(&self, p: P2, heading_rad: f64, radius_m: f64, deck_m: Option<f64>) -> Option<PathMatch> {
        self.match_path_two_on(p, heading_rad, radius_m, radius_m, deck_m).1
    }

    /// [`MapContext::match_path`] within `near_m` and within `far_m` (`near_m` ≤ `far_m`):
    /// the same two matches as two calls, from one search of the larger radius. The
    /// segments within the smaller radius are those the tree's own test keeps
    /// ([`PointDistance::distance_2`] ≤ `near_m`²), and they come in the same order (a
    /// smaller radius only prunes subtrees of the same depth-first walk).
    pub fn match_path_two(
        &self,
        p: P2,
        heading_rad: f64,
        near_m: f64,
        far_m: f64,
    ) -> (Option<PathMatch>, Option<PathMatch>) {
        self.match_path_two_on(p, heading_rad, near_m, far_m, None)
    }

    /// [`MapContext::match_path_two`] among the paths on the level of an agent whose deck is
    /// `deck_m` high ([`MapContext::on_level`]); `None` takes every path.
    pub fn match_path_two_on(
        &self,
        p: P2,
        heading_rad: f64,
        near_m: f64,
        far_m: f64,
        deck_m: Option<f64>,
    ) -> (Option<PathMatch>, Option<PathMatch>) {
        debug_assert!(near_m <= far_m, "the near radius {near_m} is beyond the far one {far_m}");
        let far2 = far_m * far_m;
        // Only where some path is on another level does the level narrow the search.
        let deck_m = deck_m.filter(|_| !self.path_deck_m.is_empty());
        let on_level = |s: &&Seg| deck_m.is_none_or(|d| self.on_level(s.path, d));
        // The grid's segments or the tree's: the same ones in the same order (`SegGrid`).
        match self.grid.within(p, far_m) {
            Some(segs) => self.best_matches(segs.filter(on_level), p, heading_rad, near_m, far_m),
            None => self.best_matches(
                self.tree.locate_within_distance(p, far2).filter(on_level),
                p,
                heading_rad,
                near_m,
                far_m,
            ),
        }
    }

    /// [`MapContext::match_path_two`] among `segs`, the segments within `far_m` of `p` in
    /// the tree's order.
    fn best_matches<'a>(
        &self,
        segs: impl Iterator<Item = &'a Seg>,
        p: P2,
        heading_rad: f64,
        near_m: f64,
        far_m: f64,
    ) -> (Option<PathMatch>, Option<PathMatch>) {
        let (hs, hc) = heading_rad.sin_cos();
        let (near2, far2) = (near_m * near_m, far_m * far_m);
        let mut best: [Option<(f64, PathMatch)>; 2] = [None, None];
        for seg in segs {
            let d = [seg.b[0] - seg.a[0], seg.b[1] - seg.a[1]];
            let len = seg.len;
            if len < 1e-6 {
                continue;
            }
            let cos_e = (d[0] * hc + d[1] * hs) / len;
            if cos_e < 0.0 {
                continue;
            }
            let (q, u) = project(seg.a, seg.b, p);
            let dist = (q[0] - p[0]).hypot(q[1] - p[1]);
            let score = dist + 4.0 * (1.0 - cos_e);
            let better = |b: &Option<(f64, PathMatch)>| match b {
                None => true,
                Some((bs, bm)) => score < *bs - 1e-12 || ((score - *bs).abs() <= 1e-12 && seg.path < bm.path),
            };
            // `seg.distance_2(&p)`, the tree's own test, from the same projection.
            let near = near2 == far2 || (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2) <= near2;
            let (better_near, better_far) = (near && better(&best[0]), better(&best[1]));
            if better_near || better_far {
                let path = &self.paths[seg.path as usize];
                let s_m = path.s_m[seg.i as usize] + u * len;
                let cross = d[0] * (p[1] - seg.a[1]) - d[1] * (p[0] - seg.a[0]);
                let lateral_m = cross.signum() * dist;
                let path_heading = d[1].atan2(d[0]);
                let heading_error_rad = crate::tokens::wrap_angle(path_heading - heading_rad);
                let m = Some((score, PathMatch { path: seg.path, s_m, lateral_m, heading_error_rad }));
                if better_near {
                    best[0] = m;
                }
                if better_far {
                    best[1] = m;
                }
            }
        }
        (best[0].map(|(_, m)| m), best[1].map(|(_, m)| m))
    }

    /// The successor of `path` to follow: `choice` picks among several (taken modulo their
    /// count); `None` when the path has none.
    pub fn successor(&self, path: u32, choice: u32) -> Option<u32> {
        let s = &self.paths[path as usize].successors;
        (!s.is_empty()).then(|| s[choice as usize % s.len()])
    }

    /// The straightest successor (smallest heading change from the path's end).
    pub fn straightest_successor(&self, path: u32) -> Option<u32> {
        let (_, h_end) = self.paths[path as usize].end_headings();
        self.paths[path as usize].successors.iter().copied().min_by(|&a, &b| {
            let da = crate::tokens::wrap_angle(self.paths[a as usize].end_headings().0 - h_end).abs();
            let db = crate::tokens::wrap_angle(self.paths[b as usize].end_headings().0 - h_end).abs();
            da.total_cmp(&db).then(a.cmp(&b))
        })
    }

    /// The state of the signal governing `lane` at `time_s` from the plans (`None` with
    /// recorded signals or an unsignalled lane).
    pub fn plan_state(&self, lane: u32, time_s: f64) -> Option<SignalState> {
        match &self.signals {
            SignalSource::Plans(c) => c.lane_state(lane, time_s),
            SignalSource::Recorded => None,
        }
    }

    pub fn has_plans(&self) -> bool {
        matches!(self.signals, SignalSource::Plans(_))
    }
}

/// A path from its polyline (used by [`MapContext::new`] and tests).
pub fn make_path(
    points: Vec<P2>,
    speed_limit_mps: f64,
    lane: Option<u32>,
    stop_s_m: Option<f64>,
    successors: Vec<u32>,
) -> Path {
    let mut s_m = Vec::with_capacity(points.len());
    let mut s = 0.0;
    for i in 0..points.len() {
        if i > 0 {
            s += (points[i][0] - points[i - 1][0]).hypot(points[i][1] - points[i - 1][1]);
        }
        s_m.push(s);
    }
    let points = if points.is_empty() { vec![[0.0, 0.0]] } else { points };
    if s_m.is_empty() {
        s_m.push(0.0);
    }
    let speed_limit_mps = if speed_limit_mps.is_finite() && speed_limit_mps > 0.0 { speed_limit_mps } else { 8.0 };
    let dirs = points
        .windows(2)
        .map(|w| {
            let d = [w[1][0] - w[0][0], w[1][1] - w[0][1]];
            let len = d[0].hypot(d[1]).max(1e-9);
            let dir = [d[0] / len, d[1] / len];
            (dir, dir[1].atan2(dir[0]))
        })
        .collect();
    Path { points, s_m, length_m: s, speed_limit_mps, lane, stop_s_m, successors, dirs }
}

/// [`MapContext::drivable_corners`]'s four corners side by side in AVX2 lanes.
#[cfg(target_arch = "x86_64")]
mod corners {
    use std::arch::x86_64::*;

    use super::{BevClass, Grid, MapContext, P2};

    /// Whether the raster the corners are looked up in (the drivable area's, else the
    /// class raster) has fewer than 2^31 cells, so that `i32` lanes hold every index.
    #[inline]
    pub(super) fn fits(map: &MapContext) -> bool {
        let (nx, ny) = match &map.drivable {
            Some(d) => (d.nx, d.ny),
            None => (map.width, map.height),
        };
        nx.checked_mul(ny).is_some_and(|n| n <= i32::MAX as usize)
    }

    /// The corners of [`MapContext::drivable_corners`]: each lane computes one corner and its
    /// cell in the scalar code's IEEE operations (`c + a · f + b · l`, the offset from the
    /// origin times the reciprocal or divided by the resolution, the range test,
    /// truncation); the cells are then read one by one.
    ///
    /// # Safety
    /// AVX2 must be available and [`fits`] must hold.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2(map: &MapContext, c: P2, f: P2, hl: f64, hw: f64) -> u8 {
        let g = match &map.drivable {
            Some(d) => Grid::new(d.origin_m, d.res_m, d.nx, d.ny),
            None => Grid::new(map.origin_m, map.res_m, map.width, map.height),
        };
        let (mut xs, mut ys, mut cells) = ([0.0f64; 4], [0.0f64; 4], [0i32; 4]);
        let inside;
        // SAFETY: vector arithmetic on locals, stores into local arrays of the lanes' size.
        unsafe {
            let a = _mm256_setr_pd(hl, -hl, -hl, hl);
            let b = _mm256_setr_pd(hw, hw, -hw, -hw);
            let x = _mm256_add_pd(
                _mm256_add_pd(_mm256_set1_pd(c[0]), _mm256_mul_pd(a, _mm256_set1_pd(f[0]))),
                _mm256_mul_pd(b, _mm256_set1_pd(-f[1])),
            );
            let y = _mm256_add_pd(
                _mm256_add_pd(_mm256_set1_pd(c[1]), _mm256_mul_pd(a, _mm256_set1_pd(f[1]))),
                _mm256_mul_pd(b, _mm256_set1_pd(f[0])),
            );
            let (dx, dy) =
                (_mm256_sub_pd(x, _mm256_set1_pd(g.origin[0])), _mm256_sub_pd(y, _mm256_set1_pd(g.origin[1])));
            let (cx, cy) = match g.inv {
                Some(inv) => (_mm256_mul_pd(dx, _mm256_set1_pd(inv)), _mm256_mul_pd(dy, _mm256_set1_pd(inv))),
                None => (_mm256_div_pd(dx, _mm256_set1_pd(g.res)), _mm256_div_pd(dy, _mm256_set1_pd(g.res))),
            };
            let zero = _mm256_setzero_pd();
            // Ordered compares: false for NaN, as in `Grid::cell`.
            let ok = _mm256_and_pd(
                _mm256_and_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(cx, zero), _mm256_cmp_pd::<_CMP_GE_OQ>(cy, zero)),
                _mm256_and_pd(
                    _mm256_cmp_pd::<_CMP_LT_OQ>(cx, _mm256_set1_pd(g.nx_f)),
                    _mm256_cmp_pd::<_CMP_LT_OQ>(cy, _mm256_set1_pd(g.ny_f)),
                ),
            );
            inside = _mm256_movemask_pd(ok) as u32;
            // Truncations (exact in range: below nx, ny < 2^31); other lanes are unused.
            let (col, row) = (_mm256_cvttpd_epi32(cx), _mm256_cvttpd_epi32(cy));
            let index = _mm_add_epi32(_mm_mullo_epi32(row, _mm_set1_epi32(g.nx as i32)), col);
            _mm_storeu_si128(cells.as_mut_ptr().cast(), index);
            _mm256_storeu_pd(xs.as_mut_ptr(), x);
            _mm256_storeu_pd(ys.as_mut_ptr(), y);
        }
        let mut mask = 0u8;
        match &map.drivable {
            Some(d) => {
                for k in 0..4 {
                    if inside >> k & 1 == 0 {
                        continue;
                    }
                    // In range: 0 ≤ col < nx and 0 ≤ row < ny, so 0 ≤ index < nx · ny.
                    mask |= u8::from(d.contains_at(cells[k] as usize, [xs[k], ys[k]])) << k;
                }
            }
            None => {
                // Without a branch per corner (which corners are on the road is a coin toss
                // for a box at the road's edge): a corner outside the raster reads cell 0
                // and is masked off.
                for (k, &cell_k) in cells.iter().enumerate() {
                    let inside_k = (inside >> k & 1) as u8;
                    let cell = if inside_k == 1 { cell_k as usize } else { 0 };
                    let class = map.classes.get(cell).copied().unwrap_or(BevClass::Ground as u8);
                    let road = u8::from(class == BevClass::Road as u8) | u8::from(class == BevClass::Crossing as u8);
                    mask |= (road & inside_k) << k;
                }
            }
        }
        mask
    }
}

/// [`MapContext::march_rays`]'s eight rays side by side in AVX-512 or AVX2 lanes.
#[cfg(target_arch = "x86_64")]
mod ray_march {
    use std::arch::x86_64::*;

    use super::{BevClass, Grid, MapContext, P2};

    pub(super) fn avx512_available() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
    }

    pub(super) fn avx2_available() -> bool {
        std::is_x86_feature_detected!("avx2")
    }

    /// Whether the raster can be read by 32-bit gathers: its bytes cover its cells, which
    /// number at least 4 (a gather reads 4 bytes) and fewer than 2^31 (`i32` indices).
    pub(super) fn raster_fits(map: &MapContext) -> bool {
        map.width
            .checked_mul(map.height)
            .is_some_and(|n| (4..=i32::MAX as usize).contains(&n) && n <= map.classes.len())
    }

    /// The rays of [`MapContext::march_rays`]. Each lane does what the scalar loop does to
    /// one ray, in the same IEEE operations (`from + t · dir`, the offset from the origin,
    /// times the reciprocal or divided by the resolution, the range test, truncation), so
    /// every lane reads the same cell; lanes whose two hits are found keep them and the
    /// loop ends when every lane's are (or `t` passes `max_m`).
    ///
    /// # Safety
    /// AVX-512F and AVX-512VL must be available and [`raster_fits`] must hold.
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) unsafe fn avx512(
        map: &MapContext,
        from: P2,
        dirs: &[(f64, f64); 8],
        here_is_road: bool,
        max_m: f64,
    ) -> [(f64, f64); 8] {
        let g = Grid::new(map.origin_m, map.res_m, map.width, map.height);
        let (sin, cos): ([f64; 8], [f64; 8]) = (dirs.map(|d| d.0), dirs.map(|d| d.1));
        let n_cells = (map.width * map.height) as i32;
        // SAFETY (whole body): plain vector arithmetic on locals; the gather reads 4 bytes at
        // `min(index, n_cells - 4)`, within the raster's `n_cells ≤ classes.len()` bytes, only
        // in lanes whose point is inside the raster (so `0 ≤ index < n_cells`).
        unsafe {
            let (s, c) = (_mm512_loadu_pd(sin.as_ptr()), _mm512_loadu_pd(cos.as_ptr()));
            let (fx, fy) = (_mm512_set1_pd(from[0]), _mm512_set1_pd(from[1]));
            let (ox, oy) = (_mm512_set1_pd(g.origin[0]), _mm512_set1_pd(g.origin[1]));
            let (nx_f, ny_f) = (_mm512_set1_pd(g.nx_f), _mm512_set1_pd(g.ny_f));
            let zero = _mm512_setzero_pd();
            // The cells' lanes: eight `i32` in a 256-bit register (AVX-512VL), one per ray.
            let nx = _mm256_set1_epi32(g.nx as i32);
            let last_word = _mm256_set1_epi32(n_cells - 4);
            let byte = _mm256_set1_epi32(0xFF);
            let building_class = _mm256_set1_epi32(BevClass::Building as i32);
            let road_class = _mm256_set1_epi32(BevClass::Road as i32);
            let crossing_class = _mm256_set1_epi32(BevClass::Crossing as i32);
            let mut building = _mm512_set1_pd(max_m);
            let mut edge = _mm512_set1_pd(max_m);
            // Lanes whose hit is found (a bit per ray).
            let (mut building_found, mut edge_found): (__mmask8, __mmask8) = (0, 0);
            let mut t = 1.0;
            while t <= max_m && (building_found & edge_found) != 0xFF {
                let tv = _mm512_set1_pd(t);
                let x = _mm512_add_pd(fx, _mm512_mul_pd(tv, c));
                let y = _mm512_add_pd(fy, _mm512_mul_pd(tv, s));
                let (dx, dy) = (_mm512_sub_pd(x, ox), _mm512_sub_pd(y, oy));
                let (cx, cy) = match g.inv {
                    Some(inv) => {
                        let inv = _mm512_set1_pd(inv);
                        (_mm512_mul_pd(dx, inv), _mm512_mul_pd(dy, inv))
                    }
                    None => {
                        let res = _mm512_set1_pd(g.res);
                        (_mm512_div_pd(dx, res), _mm512_div_pd(dy, res))
                    }
                };
                // Ordered compares: false for NaN, as in `Grid::cell`.
                let mut inside = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(cx, zero);
                inside = _mm512_mask_cmp_pd_mask::<_CMP_GE_OQ>(inside, cy, zero);
                inside = _mm512_mask_cmp_pd_mask::<_CMP_LT_OQ>(inside, cx, nx_f);
                inside = _mm512_mask_cmp_pd_mask::<_CMP_LT_OQ>(inside, cy, ny_f);
                // Truncations (exact in range: below nx, ny < 2^31): one lane per ray.
                let col = _mm512_cvttpd_epi32(cx);
                let row = _mm512_cvttpd_epi32(cy);
                let index = _mm256_add_epi32(_mm256_mullo_epi32(row, nx), col);
                let word = _mm256_min_epi32(index, last_word);
                let shift = _mm256_slli_epi32::<3>(_mm256_sub_epi32(index, word));
                // An eight-lane gather: a sixteen-lane one with half its lanes masked off
                // costs as much as a full one on some CPUs.
                let words = _mm256_mmask_i32gather_epi32::<1>(
                    _mm256_setzero_si256(),
                    inside,
                    word,
                    map.classes.as_ptr().cast(),
                );
                // Outside lanes read 0: Ground, as `class_at` gives there.
                let class = _mm256_and_si256(_mm256_srlv_epi32(words, shift), byte);
                let is_building = _mm256_cmpeq_epi32_mask(class, building_class);
                let is_road =
                    _mm256_cmpeq_epi32_mask(class, road_class) | _mm256_cmpeq_epi32_mask(class, crossing_class);
                let is_edge = if here_is_road { !is_road } else { is_road };
                let new_building = is_building & !building_found;
                let new_edge = is_edge & !edge_found;
                building = _mm512_mask_mov_pd(building, new_building, tv);
                edge = _mm512_mask_mov_pd(edge, new_edge, tv);
                building_found |= new_building;
                edge_found |= new_edge;
                t += 1.0;
            }
            let (mut b, mut e) = ([0.0; 8], [0.0; 8]);
            _mm512_storeu_pd(b.as_mut_ptr(), building);
            _mm512_storeu_pd(e.as_mut_ptr(), edge);
            std::array::from_fn(|k| (b[k], e[k]))
        }
    }

    /// Whether the class raster's tiles ([`super::ClassTiles`]) are of its present size
    /// (`width` and `height` are public: changed without [`MapContext::classes_mut`], the
    /// tiles no longer match and the rays march one by one), made from bytes covering every
    /// cell, and can be addressed by `i32` byte offsets. Makes the tiles if they are not
    /// made yet.
    pub(super) fn tiles_fit(map: &MapContext) -> bool {
        let t = map.class_tiles();
        let tiles = t.width.div_ceil(super::CLASS_TILE) * t.height.div_ceil(super::CLASS_TILE);
        (t.width, t.height) == (map.width, map.height)
            && map.width.checked_mul(map.height).is_some_and(|n| n <= map.classes.len())
            && t.tiles.len() > tiles
            && tiles.checked_mul(64).is_some_and(|b| b <= i32::MAX as usize)
    }

    /// [`avx512`] on AVX2: the eight rays in two registers of four `f64` lanes for the
    /// points and one of eight `i32` lanes for the cells, the same IEEE operations per lane,
    /// the hits kept in scalars as their lanes find them. The cells are read from the class
    /// raster's tiles ([`super::ClassTiles`]: the same bytes) by plain loads.
    ///
    /// # Safety
    /// AVX2 must be available and [`tiles_fit`] must hold.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2(
        map: &MapContext,
        from: P2,
        dirs: &[(f64, f64); 8],
        here_is_road: bool,
        max_m: f64,
    ) -> [(f64, f64); 8] {
        let g = Grid::new(map.origin_m, map.res_m, map.width, map.height);
        let (sin, cos): ([f64; 8], [f64; 8]) = (dirs.map(|d| d.0), dirs.map(|d| d.1));
        let class_tiles = map.class_tiles();
        let tiles: *const u8 = class_tiles.tiles.as_ptr().cast();
        // SAFETY (whole body): plain vector arithmetic on locals; a byte is read only in lanes
        // whose point is inside the raster (0 ≤ col < width, 0 ≤ row < height), at its
        // offset in the tiles, below `tiles.len() · 64` (and below 2^31: `tiles_fit`).
        unsafe {
            let (s_lo, c_lo) = (_mm256_loadu_pd(sin.as_ptr()), _mm256_loadu_pd(cos.as_ptr()));
            let (s_hi, c_hi) = (_mm256_loadu_pd(sin.as_ptr().add(4)), _mm256_loadu_pd(cos.as_ptr().add(4)));
            let (fx, fy) = (_mm256_set1_pd(from[0]), _mm256_set1_pd(from[1]));
            let (ox, oy) = (_mm256_set1_pd(g.origin[0]), _mm256_set1_pd(g.origin[1]));
            let (nx_f, ny_f) = (_mm256_set1_pd(g.nx_f), _mm256_set1_pd(g.ny_f));
            let zero = _mm256_setzero_pd();
            let tiles_x = _mm256_set1_epi32(class_tiles.tiles_x as i32);
            let seven = _mm256_set1_epi32(7);
            let building_class = _mm256_set1_epi32(BevClass::Building as i32);
            let road_class = _mm256_set1_epi32(BevClass::Road as i32);
            let crossing_class = _mm256_set1_epi32(BevClass::Crossing as i32);
            let (mut building, mut edge) = ([max_m; 8], [max_m; 8]);
            // Lanes whose hit is found (bit k: ray k).
            let (mut building_found, mut edge_found) = (0u32, 0u32);
            let mut t = 1.0;
            while t <= max_m && (building_found & edge_found) != 0xFF {
                let tv = _mm256_set1_pd(t);
                // One half's rays: the mask of those inside the raster and their cells.
                macro_rules! half {
                    ($s:expr, $c:expr) => {{
                        let x = _mm256_add_pd(fx, _mm256_mul_pd(tv, $c));
                        let y = _mm256_add_pd(fy, _mm256_mul_pd(tv, $s));
                        let (dx, dy) = (_mm256_sub_pd(x, ox), _mm256_sub_pd(y, oy));
                        let (cx, cy) = match g.inv {
                            Some(inv) => {
                                let inv = _mm256_set1_pd(inv);
                                (_mm256_mul_pd(dx, inv), _mm256_mul_pd(dy, inv))
                            }
                            None => {
                                let res = _mm256_set1_pd(g.res);
                                (_mm256_div_pd(dx, res), _mm256_div_pd(dy, res))
                            }
                        };
                        // Ordered compares: false for NaN, as in `Grid::cell`.
                        let inside = _mm256_and_pd(
                            _mm256_and_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(cx, zero), _mm256_cmp_pd::<_CMP_GE_OQ>(cy, zero)),
                            _mm256_and_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(cx, nx_f), _mm256_cmp_pd::<_CMP_LT_OQ>(cy, ny_f)),
                        );
                        // Truncations (exact in range: below nx, ny < 2^31); other lanes are unused.
                        let (col, row) = (_mm256_cvttpd_epi32(cx), _mm256_cvttpd_epi32(cy));
                        (_mm256_movemask_pd(inside) as u32, col, row)
                    }};
                }
                let (inside_lo, col_lo, row_lo) = half!(s_lo, c_lo);
                let (inside_hi, col_hi, row_hi) = half!(s_hi, c_hi);
                let inside = inside_lo | inside_hi << 4;
                let (col, row) = (_mm256_set_m128i(col_hi, col_lo), _mm256_set_m128i(row_hi, row_lo));
                // The cells' bytes in the tiles (`ClassTiles`).
                let tile = _mm256_add_epi32(
                    _mm256_mullo_epi32(_mm256_srli_epi32::<3>(row), tiles_x),
                    _mm256_srli_epi32::<3>(col),
                );
                let within =
                    _mm256_or_si256(_mm256_slli_epi32::<3>(_mm256_and_si256(row, seven)), _mm256_and_si256(col, seven));
                let mut at = [0i32; 8];
                _mm256_storeu_si256(at.as_mut_ptr().cast(), _mm256_or_si256(_mm256_slli_epi32::<6>(tile), within));
                // Plain loads, not a gather (slower on some CPUs, AMD's Zen 3 among them).
                let byte_at = |k: usize| if inside >> k & 1 == 1 { i32::from(*tiles.add(at[k] as usize)) } else { 0 };
                let class = _mm256_setr_epi32(
                    byte_at(0),
                    byte_at(1),
                    byte_at(2),
                    byte_at(3),
                    byte_at(4),
                    byte_at(5),
                    byte_at(6),
                    byte_at(7),
                );
                // Outside lanes read 0: Ground, as `class_at` gives there.
                let is_building =
                    _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(class, building_class))) as u32;
                let road =
                    _mm256_or_si256(_mm256_cmpeq_epi32(class, road_class), _mm256_cmpeq_epi32(class, crossing_class));
                let is_road = _mm256_movemask_ps(_mm256_castsi256_ps(road)) as u32;
                let is_edge = if here_is_road { !is_road & 0xFF } else { is_road };
                let (mut new_building, mut new_edge) = (is_building & !building_found, is_edge & !edge_found);
                building_found |= new_building;
                edge_found |= new_edge;
                while new_building != 0 {
                    building[new_building.trailing_zeros() as usize] = t;
                    new_building &= new_building - 1;
                }
                while new_edge != 0 {
                    edge[new_edge.trailing_zeros() as usize] = t;
                    new_edge &= new_edge - 1;
                }
                t += 1.0;
            }
            std::array::from_fn(|k| (building[k], edge[k]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reciprocal is taken only for powers of two, and multiplying by it gives the same
    /// bits as dividing, so the cells are the same as `floor` of the quotient.
    #[test]
    fn power_of_two_resolutions_multiply_to_the_same_cells_as_dividing() {
        let mut rng = swm_core::rng::CounterRng::new(5, 0);
        for e in -40..=40 {
            let res = 2f64.powi(e);
            let inv = power_of_two_reciprocal(res).expect("a power of two");
            assert_eq!(inv, 1.0 / res);
            for _ in 0..200 {
                let x = rng.range_f64(-1e6, 1e6) * 2f64.powi((rng.range_f64(-30.0, 30.0)) as i32);
                assert_eq!((x * inv).to_bits(), (x / res).to_bits(), "x {x} res {res}");
            }
        }
        for res in
            [0.3, 1.5, 0.1, 3.0, 0.0, -0.25, -1.0, f64::NAN, f64::INFINITY, f64::MIN_POSITIVE / 4.0, 2f64.powi(1023)]
        {
            assert_eq!(power_of_two_reciprocal(res), None, "res {res}");
        }
        let origin = [-123.4, 56.7];
        for res in [0.25, 1.0, 0.3] {
            for _ in 0..10_000 {
                let p = [rng.range_f64(-200.0, 200.0), rng.range_f64(-100.0, 300.0)];
                let (x, y) = ((p[0] - origin[0]) / res, (p[1] - origin[1]) / res);
                let want = (x >= 0.0 && y >= 0.0)
                    .then(|| (x.floor() as usize, y.floor() as usize))
                    .filter(|&(c, r)| c < 700 && r < 900);
                assert_eq!(raster_cell(p, origin, res, 700, 900), want, "p {p:?} res {res}");
            }
        }
    }

    /// The lookup as it was before the cursor and the cached directions: a binary search,
    /// then the direction from the segment.
    fn at_by_search(path: &Path, s_m: f64) -> (P2, P2) {
        let n = path.points.len();
        if n == 1 {
            return (path.points[0], [1.0, 0.0]);
        }
        let s = s_m.clamp(0.0, path.length_m);
        let i = match path.s_m.binary_search_by(|v| v.total_cmp(&s)) {
            Ok(i) => i.min(n - 2),
            Err(i) => i.saturating_sub(1).min(n - 2),
        };
        let (a, b) = (path.points[i], path.points[i + 1]);
        let seg = path.s_m[i + 1] - path.s_m[i];
        let u = if seg > 1e-9 { (s - path.s_m[i]) / seg } else { 0.0 };
        let d = [b[0] - a[0], b[1] - a[1]];
        let len = d[0].hypot(d[1]).max(1e-9);
        ([a[0] + u * d[0], a[1] + u * d[1]], [d[0] / len, d[1] / len])
    }

    /// Paths with short and long segments and repeated points (zero-length segments), one
    /// point alone; lookups forward in small and large steps, backwards, on the vertices
    /// and past both ends, each from the cursor the last one left: the same bits as the
    /// binary search, and the heading of the direction returned.
    #[test]
    fn lookups_from_a_cursor_find_what_a_search_finds() {
        let mut rng = swm_core::rng::CounterRng::new(17, 2);
        for case in 0..300 {
            let n = 1 + case % 12;
            let mut pts = vec![[rng.range_f64(-50.0, 50.0), rng.range_f64(-50.0, 50.0)]];
            while pts.len() < n {
                let last = *pts.last().expect("a point");
                let step = if rng.range_f64(0.0, 1.0) < 0.2 { 0.0 } else { rng.range_f64(0.01, 15.0) };
                let ang = rng.range_f64(-3.2, 3.2);
                pts.push([last[0] + step * ang.cos(), last[1] + step * ang.sin()]);
            }
            let path = make_path(pts, 10.0, None, None, Vec::new());
            let mut cursor = PathCursor::default();
            let mut s = rng.range_f64(-2.0, 1.0);
            for k in 0..60 {
                s = match k % 5 {
                    0 | 1 => s + rng.range_f64(0.0, 3.0),
                    2 => s + rng.range_f64(0.0, 30.0),
                    3 => s - rng.range_f64(0.0, 10.0),
                    _ => path.s_m[(rng.range_f64(0.0, 1.0) * path.s_m.len() as f64) as usize % path.s_m.len()],
                };
                let (q, d, h) = path.at_from(s, &mut cursor);
                let (want_q, want_d) = at_by_search(&path, s);
                let bits = |v: P2| [v[0].to_bits(), v[1].to_bits()];
                assert_eq!((bits(q), bits(d)), (bits(want_q), bits(want_d)), "case {case} s {s}");
                assert_eq!((bits(q), bits(d)), (bits(path.at(s).0), bits(path.at(s).1)));
                if n > 1 {
                    assert_eq!(h.to_bits(), d[1].atan2(d[0]).to_bits());
                }
            }
        }
    }

    /// One search within two radii gives the two matches two searches give, on a grid of
    /// crossing paths, both directions, at poses all around them.
    #[test]
    fn one_search_within_two_radii_matches_two_searches() {
        let mut paths = Vec::new();
        for k in 0..6 {
            let y = 7.0 * k as f64;
            paths.push(make_path(vec![[0.0, y], [40.0, y + 1.0], [80.0, y]], 10.0, Some(k), None, Vec::new()));
            paths.push(make_path(vec![[80.0, y + 3.5], [0.0, y + 3.5]], 10.0, None, None, Vec::new()));
            let x = 13.0 * k as f64;
            paths.push(make_path(vec![[x, -5.0], [x + 2.0, 20.0], [x, 45.0]], 10.0, None, None, Vec::new()));
        }
        let map = MapContext::from_paths(paths, 1.75);
        let mut rng = swm_core::rng::CounterRng::new(3, 9);
        let mut both = 0;
        for _ in 0..5000 {
            let p = [rng.range_f64(-10.0, 90.0), rng.range_f64(-10.0, 50.0)];
            let h = rng.range_f64(-4.0, 4.0);
            let (near, far) = (rng.range_f64(0.5, 4.0), rng.range_f64(4.0, 9.0));
            let got = map.match_path_two(p, h, near, far);
            assert_eq!(got, (map.match_path(p, h, near), map.match_path(p, h, far)), "p {p:?} h {h}");
            both += usize::from(got.0.is_some() && got.0 != got.1);
        }
        // The two radii do give different matches.
        assert!(both > 50, "{both}");
    }

    /// The grid's segments within a radius are the tree's, in the tree's order, for points
    /// on and off the paths, radii up to the grid's reach and a little past it (where the
    /// tree answers), and points off the grid; so the path matches are the tree's.
    #[test]
    fn the_segment_grid_answers_as_the_tree() {
        let mut rng = swm_core::rng::CounterRng::new(8, 1);
        let mut paths = Vec::new();
        for k in 0..40u32 {
            let mut q = [rng.range_f64(0.0, 300.0), rng.range_f64(0.0, 200.0)];
            let mut pts = vec![q];
            for _ in 0..rng.range_f64(1.0, 8.0) as usize {
                // Segments from a few centimetres to 60 m, some repeated points.
                let len = if rng.range_f64(0.0, 1.0) < 0.1 { 0.0 } else { rng.range_f64(0.02, 60.0) };
                let h = rng.range_f64(-4.0, 4.0);
                q = [q[0] + len * h.cos(), q[1] + len * h.sin()];
                pts.push(q);
            }
            paths.push(make_path(pts, 10.0, Some(k), None, Vec::new()));
        }
        let map = MapContext::from_paths(paths, 1.75);
        let key = |s: &Seg| (s.path, s.i);
        let mut found = 0;
        for n in 0..20_000 {
            let p = if n % 2 == 0 {
                [rng.range_f64(-30.0, 330.0), rng.range_f64(-30.0, 230.0)]
            } else {
                // On or beside a path's point.
                let path = &map.paths[n % map.paths.len()];
                let q = path.points[n % path.points.len()];
                [q[0] + rng.range_f64(-3.0, 3.0), q[1] + rng.range_f64(-3.0, 3.0)]
            };
            let r = rng.range_f64(0.0, SEG_GRID_REACH_M + 2.0);
            let tree: Vec<_> = map.tree.locate_within_distance(p, r * r).map(key).collect();
            if let Some(list) = map.grid.within(p, r) {
                let grid: Vec<_> = list.map(key).collect();
                assert_eq!(grid, tree, "p {p:?} r {r}");
                found += grid.len();
            } else {
                assert!(r > SEG_GRID_REACH_M || tree.is_empty(), "p {p:?} r {r}: off the grid but near a path");
            }
            let h = rng.range_f64(-4.0, 4.0);
            assert_eq!(
                map.match_path_two(p, h, r.min(3.0), r),
                map.best_matches(map.tree.locate_within_distance(p, r * r), p, h, r.min(3.0), r),
                "p {p:?} r {r}"
            );
        }
        assert!(found > 10_000, "{found}");
    }

    /// `drivable_corners` (the AVX2 form where this CPU has it, and the one-by-one form)
    /// answers as `is_drivable` asked of each corner of `MaskBox::corners`' order, with a
    /// drivable area and without (the class raster, at a resolution that is a power of two
    /// and one that is not), on and off the road, with corners on cell edges, off the
    /// raster, and NaN.
    #[test]
    fn drivable_corners_are_the_corners_drivable_one_by_one() {
        let paths = vec![
            make_path(vec![[0.0, 0.0], [60.0, 0.0], [90.0, 30.0]], 10.0, Some(0), None, Vec::new()),
            make_path(vec![[60.0, 0.0], [60.0, -40.0]], 10.0, Some(1), None, Vec::new()),
        ];
        let mut map = MapContext::from_paths(paths, 1.75);
        let mut rng = swm_core::rng::CounterRng::new(8, 8);
        for case in ["raster", "raster at 0.7 m", "drivable area"] {
            match case {
                "raster at 0.7 m" => map.res_m = 0.7,
                "drivable area" => {
                    map.res_m = 1.0;
                    let strips: Vec<(Vec<P2>, f64)> = map.paths.iter().map(|p| (p.points.clone(), 1.75)).collect();
                    map.drivable = Drivable::from_strips(&strips);
                    assert!(map.drivable.is_some());
                }
                _ => {}
            }
            let mut mixed = 0;
            for n in 0..20_000 {
                let mut c = [rng.range_f64(-45.0, 110.0), rng.range_f64(-75.0, 55.0)];
                let h = rng.range_f64(-4.0, 4.0);
                let (mut f, mut hl, mut hw) = ([h.cos(), h.sin()], rng.range_f64(0.2, 3.0), rng.range_f64(0.2, 1.5));
                if n % 5 == 0 {
                    // Corners on cell edges: a box along an axis at whole and quarter metres.
                    c = [c[0].round(), (c[1] * 4.0).round() / 4.0];
                    (f, hl, hw) = ([1.0, 0.0], (hl * 4.0).round() / 4.0, (hw * 4.0).round() / 4.0);
                }
                if n == 7 {
                    c = [f64::NAN, 0.0];
                }
                let l = [-f[1], f[0]];
                let at = |a: f64, b: f64| [c[0] + a * f[0] + b * l[0], c[1] + a * f[1] + b * l[1]];
                let pts = [at(hl, hw), at(-hl, hw), at(-hl, -hw), at(hl, -hw)];
                let want = (0..4).filter(|&k| map.is_drivable(pts[k])).fold(0u8, |m, k| m | 1 << k);
                assert_eq!(map.drivable_corners(c, f, hl, hw), want, "{c:?} {f:?} {hl} {hw} ({case})");
                assert_eq!(map.drivable_corners_one_by_one(c, f, hl, hw), want, "{c:?} {f:?} {hl} {hw} ({case})");
                mixed += usize::from(want != 0 && want != 0b1111);
            }
            assert!(mixed > 100, "{mixed} ({case})");
        }
    }

    /// The eight rays marched side by side (AVX-512 and AVX2, where this CPU has them) hit where the
    /// one-ray-at-a-time loop does: on rasters of random classes (every byte value, so
    /// invalid ones too), at resolutions that are and are not powers of two, from points
    /// inside, near the edges of and outside the raster, from cell corners, and from NaN;
    /// and on rasters too small for the gathers (the loop itself then).
    #[test]
    fn rays_marched_side_by_side_hit_where_one_by_one_does() {
        let paths = vec![make_path(vec![[0.0, 0.0], [60.0, 0.0], [90.0, 30.0]], 10.0, Some(0), None, Vec::new())];
        let mut map = MapContext::from_paths(paths, 1.75);
        let mut rng = swm_core::rng::CounterRng::new(29, 1);
        let (mut hits, mut short) = (0usize, 0usize);
        for (res_m, density, width, height) in
            [(1.0, 0.02, 150, 90), (0.25, 0.005, 150, 90), (0.3, 0.01, 150, 90), (1.5, 0.2, 37, 11), (1.0, 0.5, 1, 3)]
        {
            map.res_m = res_m;
            (map.width, map.height) = (width, height);
            *map.classes_mut() = (0..width * height)
                .map(|_| if rng.chance(density) { rng.range_i64(0, 256) as u8 } else { rng.range_i64(0, 4) as u8 })
                .collect();
            let extent = [width as f64 * res_m, height as f64 * res_m];
            for k in 0..4_000 {
                let mut from = [
                    map.origin_m[0] + rng.range_f64(-30.0, extent[0] + 30.0),
                    map.origin_m[1] + rng.range_f64(-30.0, extent[1] + 30.0),
                ];
                if k % 7 == 0 {
                    from = [map.origin_m[0] + (from[0] - map.origin_m[0]).round(), from[1].round()];
                }
                if k == 0 {
                    from[1] = f64::NAN;
                }
                let heading = rng.range_f64(-4.0, 4.0);
                let dirs: [(f64, f64); 8] =
                    std::array::from_fn(|d| (heading + d as f64 * std::f64::consts::FRAC_PI_4).sin_cos());
                let max_m = if k % 5 == 0 { rng.range_f64(0.0, 30.0) } else { 24.0 };
                for here_is_road in [false, true] {
                    let want = map.march_rays_one_by_one(from, &dirs, here_is_road, max_m);
                    let mut paths = vec![("best", map.march_rays(from, &dirs, here_is_road, max_m))];
                    #[cfg(target_arch = "x86_64")]
                    if ray_march::raster_fits(&map) && ray_march::avx512_available() {
                        // SAFETY: AVX-512F and AVX-512VL are present and the raster fits (checked).
                        paths.push(("avx512", unsafe { ray_march::avx512(&map, from, &dirs, here_is_road, max_m) }));
                    }
                    #[cfg(target_arch = "x86_64")]
                    if ray_march::tiles_fit(&map) && ray_march::avx2_available() {
                        // SAFETY: AVX2 is present and the tiles fit (checked).
                        paths.push(("avx2", unsafe { ray_march::avx2(&map, from, &dirs, here_is_road, max_m) }));
                    }
                    for (name, got) in &paths {
                        for (g, w) in got.iter().zip(&want) {
                            let (g, w) = ((g.0.to_bits(), g.1.to_bits()), (w.0.to_bits(), w.1.to_bits()));
                            assert_eq!(g, w, "{name}: {from:?} {res_m}");
                        }
                    }
                    hits += want.iter().filter(|w| w.0 < max_m).count();
                    short += want.iter().filter(|w| w.1 < max_m).count();
                }
            }
        }
        // Both kinds of hit were met, often.
        assert!(hits > 5_000 && short > 20_000, "{hits} {short}");
    }

    /// A path with a point that is not finite is left out of the searches and the raster
    /// (it made the tree's bulk load panic, and an infinite one the raster's size).
    #[test]
    fn paths_with_points_that_are_not_finite_are_never_matched() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let paths = vec![
                make_path(vec![[0.0, 0.0], [50.0, 0.0]], 10.0, None, None, Vec::new()),
                make_path(vec![[0.0, 1.0], [bad, 1.0], [50.0, 1.0]], 10.0, None, None, Vec::new()),
                make_path(vec![[0.0, 2.0], [25.0, 2.0], [50.0, bad]], 10.0, None, None, Vec::new()),
            ];
            let map = MapContext::from_paths(paths, 2.0);
            assert_eq!(map.paths.len(), 3);
            assert!(map.width < 200 && map.height < 100, "{} × {}", map.width, map.height);
            for y in [0.0, 1.0, 2.0, 3.0] {
                let m = map.match_path([20.0, y], 0.0, 6.0).expect("the finite path is near");
                assert_eq!(m.path, 0, "{bad} at y {y}");
            }
            assert_eq!(map.class_at([20.0, 1.0]), BevClass::Road);
        }
    }
}
