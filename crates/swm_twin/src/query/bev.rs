//! Bird's-eye-view rasters: semantic classes and a signed distance field to buildings.

use super::{PaintShape, TwinIndex};
use crate::TwinError;
use crate::model::{LandKind, P2, Polygon};
use rstar::AABB;

/// Largest raster [`TwinIndex::bev_raster`] renders, in pixels, distance margin included.
pub const MAX_BEV_PIXELS: u64 = 1 << 26;
/// Margin around the raster, in metres, inside which obstacles count for the signed
/// distance (converted to pixels and clamped to `[MIN_MARGIN_PX, MAX_MARGIN_PX]`).
pub const SDF_MARGIN_M: f64 = 20.0;
const MIN_MARGIN_PX: u32 = 8;
const MAX_MARGIN_PX: u32 = 512;

/// Semantic classes of BEV pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum BevClass {
    Ground = 0,
    Road = 1,
    Sidewalk = 2,
    Crossing = 3,
    Building = 4,
    Water = 5,
    Green = 6,
    Rail = 7,
    Parking = 8,
}

impl BevClass {
    /// Every class, in `u8` order.
    pub const ALL: [BevClass; 9] = [
        BevClass::Ground,
        BevClass::Road,
        BevClass::Sidewalk,
        BevClass::Crossing,
        BevClass::Building,
        BevClass::Water,
        BevClass::Green,
        BevClass::Rail,
        BevClass::Parking,
    ];

    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(v as usize).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BevClass::Ground => "ground",
            BevClass::Road => "road",
            BevClass::Sidewalk => "sidewalk",
            BevClass::Crossing => "crossing",
            BevClass::Building => "building",
            BevClass::Water => "water",
            BevClass::Green => "green",
            BevClass::Rail => "rail",
            BevClass::Parking => "parking",
        }
    }

    /// The class land cover paints (plazas are paved pedestrian areas: sidewalk).
    pub fn from_land(kind: LandKind) -> Self {
        match kind {
            LandKind::Water => BevClass::Water,
            LandKind::Park | LandKind::Grass | LandKind::Forest => BevClass::Green,
            LandKind::Rail => BevClass::Rail,
            LandKind::Parking => BevClass::Parking,
            LandKind::Plaza => BevClass::Sidewalk,
        }
    }
}

/// A bird's-eye-view raster of the twin around a pose.
///
/// # Pixel convention
///
/// Pixel `(col, row)` is stored at `row * width + col`; row 0 is the top of the image.
/// With `f = (cos heading, sin heading)` (forward) and `l = (-sin heading, cos heading)`
/// (left), the image's `+x` (increasing column) points along `f` and image "up"
/// (decreasing row) along `l`. The centre of pixel `(col, row)` is at
///
/// ```text
/// center_m + ((col + 0.5) - width / 2) * resolution_m * f
///          + (height / 2 - (row + 0.5)) * resolution_m * l
/// ```
///
/// so `center_m` sits at the middle of the image (a pixel corner for even sizes), and at
/// heading 0 the image is a north-up map with east to the right.
///
/// # Classes
///
/// [`BevClass`] as `u8`, painted in this order, later ones overwriting earlier ones:
/// ground; land cover areas, then land cover lines (with their width); walk edges
/// (footways, sidewalks, pedestrian streets, steps: sidewalk; shared roads are left to
/// their lanes); lanes and the paths through junctions (road, with the lane's `width_m`); crossings; buildings (outlines and
/// parts). Within a layer, features paint in twin order. A pixel takes a class when its
/// centre lies inside the area, or within half the width of the line (lines are at least
/// one pixel wide).
///
/// # Signed distance
///
/// `signed_distance_m` is the Euclidean distance from the pixel's centre to the nearest
/// building boundary: positive outside buildings, negative inside. It is computed by an
/// exact Euclidean distance transform (Felzenszwalb–Huttenlocher) between pixel centres
/// over the raster grown by a margin on every side (so buildings just outside the crop
/// count), minus half a pixel (the boundary lies between pixel centres), and clamped to
/// `±max_distance_m` (the margin's width, beyond which buildings are not looked at).
#[derive(Clone, Debug, PartialEq)]
pub struct BevRaster {
    pub width: u32,
    pub height: u32,
    pub resolution_m: f64,
    pub center_m: P2,
    pub heading_rad: f64,
    /// Distances are clamped to `[-max_distance_m, max_distance_m]`.
    pub max_distance_m: f32,
    pub classes: Vec<u8>,
    pub signed_distance_m: Vec<f32>,
}

impl BevRaster {
    /// Index of pixel `(col, row)` in [`BevRaster::classes`], `None` outside the raster.
    pub fn index(&self, col: u32, row: u32) -> Option<usize> {
        (col < self.width && row < self.height).then(|| row as usize * self.width as usize + col as usize)
    }

    pub fn class_at(&self, col: u32, row: u32) -> Option<BevClass> {
        self.index(col, row).and_then(|i| BevClass::from_u8(self.classes[i]))
    }

    pub fn signed_distance_at(&self, col: u32, row: u32) -> Option<f32> {
        self.index(col, row).map(|i| self.signed_distance_m[i])
    }

    fn frame(&self) -> PixelFrame {
        PixelFrame::new(self.center_m, self.heading_rad, self.resolution_m, self.width, self.height, 0)
    }

    /// Twin-frame position of the centre of pixel `(col, row)`.
    pub fn pixel_center_m(&self, col: u32, row: u32) -> P2 {
        self.frame().to_world(col as f64 + 0.5, row as f64 + 0.5)
    }

    /// The pixel `(col, row)` that contains `p`, `None` outside the raster.
    pub fn pixel_at(&self, p: P2) -> Option<(u32, u32)> {
        let (x, y) = self.frame().to_px(p);
        (x >= 0.0 && y >= 0.0 && x < self.width as f64 && y < self.height as f64).then_some((x as u32, y as u32))
    }
}

/// Continuous pixel coordinates of a raster: pixel `(c, r)` covers `[c, c+1) x [r, r+1)`.
#[derive(Clone, Copy, Debug)]
struct PixelFrame {
    center: P2,
    cos: f64,
    sin: f64,
    res: f64,
    col0: f64,
    row0: f64,
}

impl PixelFrame {
    /// The frame of a `width x height` raster grown by `margin` pixels on each side.
    fn new(center: P2, heading_rad: f64, res: f64, width: u32, height: u32, margin: u32) -> Self {
        let (sin, cos) = heading_rad.sin_cos();
        PixelFrame {
            center,
            cos,
            sin,
            res,
            col0: width as f64 / 2.0 + margin as f64,
            row0: height as f64 / 2.0 + margin as f64,
        }
    }

    fn to_px(self, p: P2) -> (f64, f64) {
        let (dx, dy) = (p[0] - self.center[0], p[1] - self.center[1]);
        let u = dx * self.cos + dy * self.sin;
        let v = -dx * self.sin + dy * self.cos;
        (u / self.res + self.col0, self.row0 - v / self.res)
    }

    fn to_world(self, x: f64, y: f64) -> P2 {
        let u = (x - self.col0) * self.res;
        let v = (self.row0 - y) * self.res;
        [self.center[0] + u * self.cos - v * self.sin, self.center[1] + u * self.sin + v * self.cos]
    }

    /// World bounding box of the `gw x gh` pixel grid, grown by `pad_m`.
    fn world_bbox(self, gw: usize, gh: usize, pad_m: f64) -> AABB<[f64; 2]> {
        let corners = [(0.0, 0.0), (gw as f64, 0.0), (0.0, gh as f64), (gw as f64, gh as f64)];
        let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for (x, y) in corners {
            let p = self.to_world(x, y);
            b = [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])];
        }
        AABB::from_corners([b[0] - pad_m, b[1] - pad_m], [b[2] + pad_m, b[3] + pad_m])
    }
}

/// A `u8` pixel grid.
struct Grid<'a> {
    data: &'a mut [u8],
    w: usize,
    h: usize,
}

/// Pixel index range `[lo, hi)` whose centres `i + 0.5` lie in `[a, b]` (or `[a, b)` when
/// `half_open`), clamped to `[0, n)`.
fn center_range(a: f64, b: f64, n: usize, half_open: bool) -> (usize, usize) {
    let lo = (a - 0.5).ceil().clamp(0.0, n as f64);
    let hi = if half_open { (b - 0.5).ceil() } else { (b - 0.5).floor() + 1.0 }.clamp(0.0, n as f64);
    if lo < hi { (lo as usize, hi as usize) } else { (0, 0) }
}

impl Grid<'_> {
    /// Sets pixels whose centre is inside the polygon (even-odd over all rings).
    fn fill_polygon(&mut self, frame: &PixelFrame, poly: &Polygon, value: u8) {
        let rings: Vec<Vec<(f64, f64)>> = std::iter::once(&poly.exterior)
            .chain(poly.holes.iter())
            .filter(|r| r.len() >= 3)
            .map(|r| r.iter().map(|p| frame.to_px(*p)).collect())
            .collect();
        let (ymin, ymax) =
            rings.iter().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        let (r0, r1) = center_range(ymin, ymax, self.h, false);
        let mut xs: Vec<f64> = Vec::new();
        for r in r0..r1 {
            let yc = r as f64 + 0.5;
            xs.clear();
            for ring in &rings {
                let n = ring.len();
                for i in 0..n {
                    let (a, b) = (ring[i], ring[(i + 1) % n]);
                    if (a.1 > yc) != (b.1 > yc) {
                        xs.push(a.0 + (yc - a.1) * (b.0 - a.0) / (b.1 - a.1));
                    }
                }
            }
            xs.sort_unstable_by(f64::total_cmp);
            let row = &mut self.data[r * self.w..(r + 1) * self.w];
            for pair in xs.chunks_exact(2) {
                let (c0, c1) = center_range(pair[0], pair[1], self.w, true);
                row[c0..c1].fill(value);
            }
        }
    }

    /// Sets pixels whose centre is within `radius_px` (at least half a pixel) of the
    /// segment `ab` (pixel coordinates).
    fn fill_capsule(&mut self, a: (f64, f64), b: (f64, f64), radius_px: f64, value: u8) {
        let r = radius_px.max(0.5);
        let (r0, r1) = center_range(a.1.min(b.1) - r, a.1.max(b.1) + r, self.h, false);
        for row in r0..r1 {
            if let Some((x0, x1)) = capsule_row(a, b, r, row as f64 + 0.5) {
                let (c0, c1) = center_range(x0, x1, self.w, false);
                self.data[row * self.w + c0..row * self.w + c1].fill(value);
            }
        }
    }
}

/// The interval of `x` where the line `y = yc` meets the capsule of radius `r` around the
/// segment `ab`: the union of its two end disks and its rectangle (it is convex).
fn capsule_row(a: (f64, f64), b: (f64, f64), r: f64, yc: f64) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in [a, b] {
        let s = r * r - (yc - p.1) * (yc - p.1);
        if s >= 0.0 {
            lo = lo.min(p.0 - s.sqrt());
            hi = hi.max(p.0 + s.sqrt());
        }
    }
    let e = (b.0 - a.0, b.1 - a.1);
    let len2 = e.0 * e.0 + e.1 * e.1;
    if len2 > 0.0 {
        // The rectangle: 0 <= (q - a).e <= |e|^2 and |(q - a) x e| <= r |e|, q = (x, yc),
        // each of the form lo_c <= k x + m <= hi_c.
        let (mut x0, mut x1) = (f64::NEG_INFINITY, f64::INFINITY);
        let mut clip = |k: f64, m: f64, lo_c: f64, hi_c: f64| {
            if k == 0.0 {
                return (lo_c..=hi_c).contains(&m);
            }
            let (p, q) = ((lo_c - m) / k, (hi_c - m) / k);
            x0 = x0.max(p.min(q));
            x1 = x1.min(p.max(q));
            true
        };
        let dy = yc - a.1;
        let half_m = r * len2.sqrt();
        let inside = clip(e.0, -a.0 * e.0 + dy * e.1, 0.0, len2) && clip(e.1, -a.0 * e.1 - dy * e.0, -half_m, half_m);
        if inside && x0 <= x1 {
            lo = lo.min(x0);
            hi = hi.max(x1);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// One-dimensional squared Euclidean distance transform (Felzenszwalb & Huttenlocher 2012)
/// of `f` (infinite where there is no feature) into `out`.
fn edt_1d(f: &[f64], out: &mut [f64], v: &mut Vec<usize>, z: &mut Vec<f64>) {
    v.clear();
    z.clear();
    for (q, &fq) in f.iter().enumerate() {
        if !fq.is_finite() {
            continue;
        }
        let qf = q as f64;
        while let Some(&p) = v.last() {
            let pf = p as f64;
            let s = ((fq + qf * qf) - (f[p] + pf * pf)) / (2.0 * qf - 2.0 * pf);
            if s <= z[z.len() - 1] {
                v.pop();
                z.pop();
            } else {
                v.push(q);
                z.push(s);
                break;
            }
        }
        if v.is_empty() {
            v.push(q);
            z.push(f64::NEG_INFINITY);
        }
    }
    if v.is_empty() {
        out.fill(f64::INFINITY);
        return;
    }
    let mut k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        let qf = q as f64;
        while k + 1 < v.len() && z[k + 1] < qf {
            k += 1;
        }
        let p = v[k] as f64;
        *o = (qf - p) * (qf - p) + f[v[k]];
    }
}

/// Squared distance (pixels²) from every pixel centre to the nearest pixel where
/// `feature` is true; infinite when there is none.
fn edt_2d(feature: impl Fn(usize) -> bool, w: usize, h: usize) -> Vec<f64> {
    let mut g: Vec<f64> = (0..w * h).map(|i| if feature(i) { 0.0 } else { f64::INFINITY }).collect();
    let (mut v, mut z) = (Vec::new(), Vec::new());
    let mut col = vec![0.0; h];
    let mut out = vec![0.0; h.max(w)];
    for x in 0..w {
        for y in 0..h {
            col[y] = g[y * w + x];
        }
        edt_1d(&col, &mut out[..h], &mut v, &mut z);
        for y in 0..h {
            g[y * w + x] = out[y];
        }
    }
    for y in 0..h {
        let row = &mut g[y * w..(y + 1) * w];
        edt_1d(row, &mut out[..w], &mut v, &mut z);
        row.copy_from_slice(&out[..w]);
    }
    g
}

pub(super) fn render(
    index: &TwinIndex,
    center: P2,
    heading_rad: f64,
    width_px: u32,
    height_px: u32,
    resolution_m: f64,
) -> Result<BevRaster, TwinError> {
    if !(center[0].is_finite() && center[1].is_finite() && heading_rad.is_finite()) {
        return Err(TwinError::InvalidQuery(format!(
            "BEV raster pose must be finite (center {center:?}, heading {heading_rad} rad)"
        )));
    }
    if !(resolution_m.is_finite() && resolution_m > 0.0) {
        return Err(TwinError::InvalidQuery(format!("BEV resolution must be positive, got {resolution_m} m")));
    }
    if width_px == 0 || height_px == 0 {
        return Err(TwinError::InvalidQuery(format!("BEV raster is empty ({width_px} x {height_px} px)")));
    }
    let margin = ((SDF_MARGIN_M / resolution_m).ceil().min(MAX_MARGIN_PX as f64) as u32).max(MIN_MARGIN_PX);
    let (gw, gh) = (width_px as u64 + 2 * margin as u64, height_px as u64 + 2 * margin as u64);
    if gw * gh > MAX_BEV_PIXELS {
        return Err(TwinError::InvalidQuery(format!(
            "BEV raster of {width_px} x {height_px} px (plus a {margin} px distance margin) exceeds {MAX_BEV_PIXELS} pixels"
        )));
    }
    let (w, h, gw, gh, m) = (width_px as usize, height_px as usize, gw as usize, gh as usize, margin as usize);

    // Classes, on the crop.
    let frame = PixelFrame::new(center, heading_rad, resolution_m, width_px, height_px, 0);
    let mut classes = vec![BevClass::Ground as u8; w * h];
    let mut grid = Grid { data: &mut classes, w, h };
    let crop_box = frame.world_bbox(w, h, 0.0);
    let mut items: Vec<(u8, u32)> = index
        .paint_tree
        .locate_in_envelope_intersecting(&crop_box)
        .map(|b| (index.paints[b.idx as usize].layer, b.idx))
        .collect();
    items.sort_unstable();
    for (_, idx) in items {
        let paint = &index.paints[idx as usize];
        let value = paint.class as u8;
        match &paint.shape {
            PaintShape::Area(poly) => grid.fill_polygon(&frame, poly, value),
            PaintShape::Line { points, half_width_m } => {
                let r_px = half_width_m / resolution_m;
                let px: Vec<(f64, f64)> = points.iter().map(|p| frame.to_px(*p)).collect();
                if px.len() == 1 {
                    grid.fill_capsule(px[0], px[0], r_px, value);
                }
                for s in px.windows(2) {
                    grid.fill_capsule(s[0], s[1], r_px, value);
                }
            }
        }
    }

    // Buildings, on the crop grown by the margin.
    let ext = PixelFrame::new(center, heading_rad, resolution_m, width_px, height_px, margin);
    let ext_box = ext.world_bbox(gw, gh, 0.0);
    let mut mask = vec![0u8; gw * gh];
    let mut mgrid = Grid { data: &mut mask, w: gw, h: gh };
    for b in index.outline_tree.locate_in_envelope_intersecting(&ext_box) {
        mgrid.fill_polygon(&ext, &index.outlines[b.idx as usize], 1);
    }
    for b in index.part_tree.locate_in_envelope_intersecting(&ext_box) {
        mgrid.fill_polygon(&ext, &index.parts[b.idx as usize], 1);
    }
    let to_obstacle = edt_2d(|i| mask[i] != 0, gw, gh);
    let to_free = edt_2d(|i| mask[i] == 0, gw, gh);
    let max_distance_m = (margin as f64 * resolution_m) as f32;
    let half_px_m = 0.5 * resolution_m;
    let mut signed_distance_m = vec![0.0f32; w * h];
    for row in 0..h {
        for col in 0..w {
            let e = (row + m) * gw + col + m;
            let i = row * w + col;
            let sd = if mask[e] != 0 {
                classes[i] = BevClass::Building as u8;
                -(to_free[e].sqrt() * resolution_m - half_px_m)
            } else {
                to_obstacle[e].sqrt() * resolution_m - half_px_m
            };
            signed_distance_m[i] = (sd as f32).clamp(-max_distance_m, max_distance_m);
        }
    }
    tracing::trace!(width_px, height_px, resolution_m, margin, "rendered BEV raster");
    Ok(BevRaster {
        width: width_px,
        height: height_px,
        resolution_m,
        center_m: center,
        heading_rad,
        max_distance_m,
        classes,
        signed_distance_m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edt_1d_matches_brute_force() {
        let f = [f64::INFINITY, 0.0, f64::INFINITY, f64::INFINITY, f64::INFINITY, 0.0, f64::INFINITY, 4.0];
        let mut out = [0.0; 8];
        edt_1d(&f, &mut out, &mut Vec::new(), &mut Vec::new());
        for (q, o) in out.iter().enumerate() {
            let brute = f
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(p, v)| (q as f64 - p as f64).powi(2) + v)
                .fold(f64::INFINITY, f64::min);
            assert_eq!(*o, brute, "q = {q}");
        }
        let mut none = [0.0; 3];
        edt_1d(&[f64::INFINITY; 3], &mut none, &mut Vec::new(), &mut Vec::new());
        assert!(none.iter().all(|v| v.is_infinite()));
    }

    #[test]
    fn edt_2d_matches_brute_force() {
        let (w, h) = (13, 9);
        let feature = |i: usize| i % 17 == 3 || i == 50;
        let d = edt_2d(feature, w, h);
        for (i, di) in d.iter().enumerate() {
            let (x, y) = ((i % w) as f64, (i / w) as f64);
            let brute = (0..w * h)
                .filter(|&j| feature(j))
                .map(|j| (x - (j % w) as f64).powi(2) + (y - (j / w) as f64).powi(2))
                .fold(f64::INFINITY, f64::min);
            assert_eq!(*di, brute);
        }
    }

    #[test]
    fn capsule_rows_match_point_distances() {
        let cases = [((3.2, 4.7), (20.9, 11.3), 2.3), ((10.0, 3.0), (10.0, 17.5), 0.5), ((5.5, 5.5), (5.5, 5.5), 3.1)];
        for (a, b, r) in cases {
            let mut data = vec![0u8; 24 * 20];
            Grid { data: &mut data, w: 24, h: 20 }.fill_capsule(a, b, r, 1);
            for (i, v) in data.iter().enumerate() {
                let q = [(i % 24) as f64 + 0.5, (i / 24) as f64 + 0.5];
                let d2 = geom_segment_distance_2([a.0, a.1], [b.0, b.1], q);
                // Away from the boundary (rounding), inside iff within the radius.
                if (d2.sqrt() - r).abs() > 1e-9 {
                    assert_eq!(*v == 1, d2 <= r * r, "{a:?} {b:?} {r} at {q:?}");
                }
            }
        }
    }

    fn geom_segment_distance_2(a: P2, b: P2, p: P2) -> f64 {
        super::super::geom::segment_distance_2(a, b, p)
    }

    #[test]
    fn pixel_frame_round_trips() {
        let f = PixelFrame::new([10.0, -5.0], 0.7, 0.25, 40, 30, 3);
        let (x, y) = f.to_px([12.0, -3.0]);
        let p = f.to_world(x, y);
        assert!((p[0] - 12.0).abs() < 1e-9 && (p[1] + 3.0).abs() < 1e-9);
    }
}
