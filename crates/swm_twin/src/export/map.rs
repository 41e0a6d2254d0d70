//! Top-down PNG map of the twin (north up, anti-aliased), drawn with `tiny-skia`.
//!
//! Layers, bottom to top: background; land cover (parking and plazas, grass, parks, forest,
//! water, rail as a grey line with light dashes); roads (each lane as a dark ribbon of its
//! width with a casing, a light dashed centre line per lane on multi-lane roads, stop lines);
//! walk edges (sidewalks and footways beige, steps dashed, crossings as white zebra stripes,
//! signalled crossings with green edges); buildings filled by a colour ramp of their height
//! (light cream for low, orange and red to dark purple for tall; estimated heights are paler
//! and hatched), building parts that replace their outline on top; signals as red-over-green
//! dots (guessed ones with a white ring); then a scale bar, a north arrow and a legend of the
//! height ramp.

use super::extent_m;
use super::font::{draw_text, text_height, text_width};
use crate::{HeightSource, LandGeometry, LandKind, P2, P3, Polygon, RoadClass, Twin, TwinError, WalkKind};
use std::path::Path;
use tiny_skia::{
    Color, FillRule, FilterQuality, GradientStop, LineCap, LineJoin, LinearGradient, Paint, PathBuilder, Pattern,
    Pixmap, Point, Rect, SpreadMode, Stroke, StrokeDash, Transform,
};

/// Options of [`render_map`].
#[derive(Clone, Debug, PartialEq)]
pub struct MapOptions {
    /// Image width (px); the height follows the aspect ratio of the twin's extent.
    pub width_px: u32,
    /// Empty border around the twin (px).
    pub margin_px: u32,
    /// The tallest image allowed (px); very tall (north-south) twins are drawn smaller.
    pub max_height_px: u32,
    /// Height at the dark end of the building colour ramp (m); taller buildings get its colour.
    pub height_ramp_max_m: f64,
    /// Whether to draw the scale bar, the north arrow and the legend.
    pub overlays: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions { width_px: 2048, margin_px: 48, max_height_px: 8192, height_ramp_max_m: 120.0, overlays: true }
    }
}

/// The largest image side accepted (px).
const MAX_SIDE_PX: u32 = 16_384;

/// Colour stops of the building height ramp over `sqrt(height / max)`.
const RAMP: [(f32, [u8; 3]); 6] = [
    (0.0, [252, 243, 214]),
    (0.25, [250, 210, 140]),
    (0.45, [242, 160, 90]),
    (0.65, [220, 95, 75]),
    (0.82, [170, 50, 95]),
    (1.0, [95, 30, 100]),
];

const BACKGROUND: [u8; 3] = [242, 239, 233];
/// Fill colour of water areas.
pub const WATER_RGB: [u8; 3] = [170, 211, 223];
const PARK: [u8; 3] = [200, 235, 190];
const GRASS: [u8; 3] = [214, 238, 186];
const FOREST: [u8; 3] = [173, 209, 158];
const PARKING: [u8; 3] = [230, 229, 226];
const PLAZA: [u8; 3] = [222, 220, 228];
const RAIL: [u8; 3] = [150, 146, 142];
const ROAD_CASING: [u8; 3] = [58, 61, 66];
const ROAD: [u8; 3] = [98, 102, 108];
const ROAD_MAJOR: [u8; 3] = [86, 90, 97];
const LANE_LINE: [u8; 3] = [178, 182, 188];
const SIDEWALK: [u8; 3] = [228, 214, 188];
const FOOTWAY: [u8; 3] = [210, 186, 146];
const PEDESTRIAN: [u8; 3] = [234, 228, 214];
const STEPS: [u8; 3] = [176, 140, 100];
const SIGNAL_RED: [u8; 3] = [226, 48, 40];
const SIGNAL_GREEN: [u8; 3] = [40, 176, 70];
const INK: [u8; 3] = [40, 40, 44];

/// The colour of a building of `height_m` on the ramp that ends at `ramp_max_m`.
pub fn height_ramp_rgb(height_m: f64, ramp_max_m: f64) -> [u8; 3] {
    let max = if ramp_max_m.is_finite() && ramp_max_m > 0.0 { ramp_max_m } else { 120.0 };
    let h = if height_m.is_finite() { height_m.max(0.0) } else { 0.0 };
    let t = (h / max).min(1.0).sqrt() as f32;
    for w in RAMP.windows(2) {
        let ((t0, c0), (t1, c1)) = (w[0], w[1]);
        if t <= t1 {
            let f = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
            return std::array::from_fn(|k| (c0[k] as f32 + (c1[k] as f32 - c0[k] as f32) * f).round() as u8);
        }
    }
    RAMP[RAMP.len() - 1].1
}

/// Renders the map as PNG bytes.
pub fn render_map(twin: &Twin, opts: &MapOptions) -> Result<Vec<u8>, TwinError> {
    render_pixmap(twin, opts, "(in memory)")?
        .encode_png()
        .map_err(|e| TwinError::Export { path: "(in memory)".into(), message: format!("PNG encoding failed: {e}") })
}

/// Renders the map and writes it to `path` as PNG.
pub fn write_map_png(twin: &Twin, opts: &MapOptions, path: &Path) -> Result<(), TwinError> {
    let name = path.display().to_string();
    let png = render_pixmap(twin, opts, &name)?
        .encode_png()
        .map_err(|e| TwinError::Export { path: name.clone(), message: format!("PNG encoding failed: {e}") })?;
    super::write_bytes(path, &png)?;
    tracing::debug!(path = %name, bytes = png.len(), "wrote map");
    Ok(())
}

/// Where the twin lands in the image.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    pub width_px: u32,
    pub height_px: u32,
    min_x_m: f64,
    max_y_m: f64,
    /// Pixels per metre.
    pub scale: f64,
    off_x_px: f64,
    off_y_px: f64,
}

impl View {
    pub(crate) fn new(twin: &Twin, opts: &MapOptions, path: &str) -> Result<Self, TwinError> {
        let err = |message: String| TwinError::Export { path: path.to_string(), message };
        let margin = opts.margin_px as f64;
        if opts.width_px > MAX_SIDE_PX || (opts.width_px as f64) < 2.0 * margin + 16.0 {
            return Err(err(format!(
                "map width {} px must be at most {MAX_SIDE_PX} px and leave room inside a margin of {} px",
                opts.width_px, opts.margin_px
            )));
        }
        let max_h = opts.max_height_px.min(MAX_SIDE_PX) as f64;
        if max_h < 2.0 * margin + 16.0 {
            return Err(err(format!("maximum map height {} px leaves no room inside the margin", opts.max_height_px)));
        }
        let b = extent_m(twin).unwrap_or([-50.0, -50.0, 50.0, 50.0]);
        // Give a degenerate extent (a single point or line) some room.
        let (cx, cy) = (0.5 * (b[0] + b[2]), 0.5 * (b[1] + b[3]));
        let w_m = (b[2] - b[0]).max(10.0);
        let h_m = (b[3] - b[1]).max(10.0);
        let (min_x_m, max_y_m) = (cx - 0.5 * w_m, cy + 0.5 * h_m);
        let avail_w = opts.width_px as f64 - 2.0 * margin;
        let mut scale = avail_w / w_m;
        let mut height_px = (h_m * scale + 2.0 * margin).ceil();
        if height_px > max_h {
            scale = (max_h - 2.0 * margin) / h_m;
            height_px = max_h;
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(err("the twin's extent is not finite".into()));
        }
        Ok(View {
            width_px: opts.width_px,
            height_px: height_px as u32,
            min_x_m,
            max_y_m,
            scale,
            off_x_px: 0.5 * (opts.width_px as f64 - w_m * scale),
            off_y_px: 0.5 * (height_px - h_m * scale),
        })
    }

    /// Pixel coordinates of a twin-frame point.
    pub(crate) fn px(&self, p: P2) -> (f32, f32) {
        (
            (self.off_x_px + (p[0] - self.min_x_m) * self.scale) as f32,
            (self.off_y_px + (self.max_y_m - p[1]) * self.scale) as f32,
        )
    }

    /// A length in metres as pixels, at least `min_px`.
    fn len_px(&self, m: f64, min_px: f32) -> f32 {
        let v = (m * self.scale) as f32;
        if v.is_finite() { v.max(min_px) } else { min_px }
    }
}

fn colour(rgb: [u8; 3], alpha: u8) -> Color {
    Color::from_rgba8(rgb[0], rgb[1], rgb[2], alpha)
}

fn paint(rgb: [u8; 3], alpha: u8) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(colour(rgb, alpha));
    p.anti_alias = true;
    p
}

fn shade(rgb: [u8; 3], f: f32) -> [u8; 3] {
    rgb.map(|c| (c as f32 * f).round().clamp(0.0, 255.0) as u8)
}

fn tint(rgb: [u8; 3], toward_white: f32) -> [u8; 3] {
    rgb.map(|c| (c as f32 + (255.0 - c as f32) * toward_white).round().clamp(0.0, 255.0) as u8)
}

fn stroke(width_px: f32, cap: LineCap) -> Stroke {
    Stroke { width: width_px, line_cap: cap, line_join: LineJoin::Round, ..Stroke::default() }
}

fn dashed(mut s: Stroke, on_px: f32, off_px: f32) -> Stroke {
    s.dash = StrokeDash::new(vec![on_px.max(0.5), off_px.max(0.5)], 0.0);
    s
}

/// A closed path of a polygon with holes (draw with the even-odd rule).
fn polygon_path(view: &View, poly: &Polygon) -> Option<tiny_skia::Path> {
    let mut pb = PathBuilder::new();
    for ring in std::iter::once(&poly.exterior).chain(&poly.holes) {
        let mut pts = ring.iter().filter(|p| p[0].is_finite() && p[1].is_finite());
        let Some(first) = pts.next() else { continue };
        let (x, y) = view.px(*first);
        pb.move_to(x, y);
        for p in pts {
            let (x, y) = view.px(*p);
            pb.line_to(x, y);
        }
        pb.close();
    }
    pb.finish()
}

fn polyline_path<'a>(view: &View, points: impl IntoIterator<Item = &'a P2>) -> Option<tiny_skia::Path> {
    let mut pb = PathBuilder::new();
    let mut started = false;
    for p in points {
        if !(p[0].is_finite() && p[1].is_finite()) {
            continue;
        }
        let (x, y) = view.px(*p);
        if started {
            pb.line_to(x, y);
        } else {
            pb.move_to(x, y);
            started = true;
        }
    }
    pb.finish()
}

fn polyline3_path(view: &View, points: &[P3]) -> Option<tiny_skia::Path> {
    let p2: Vec<P2> = points.iter().map(|p| [p[0], p[1]]).collect();
    polyline_path(view, &p2)
}

fn render_pixmap(twin: &Twin, opts: &MapOptions, path: &str) -> Result<Pixmap, TwinError> {
    let view = View::new(twin, opts, path)?;
    let mut pm = Pixmap::new(view.width_px, view.height_px).ok_or_else(|| TwinError::Export {
        path: path.to_string(),
        message: format!("cannot allocate a {} x {} px image", view.width_px, view.height_px),
    })?;
    pm.fill(colour(BACKGROUND, 255));
    draw_land_cover(&mut pm, &view, twin);
    draw_roads(&mut pm, &view, twin);
    draw_walks(&mut pm, &view, twin);
    draw_buildings(&mut pm, &view, twin, opts);
    draw_signals(&mut pm, &view, twin);
    if opts.overlays {
        let s = ui_scale(view.width_px);
        draw_scale_bar(&mut pm, &view, s);
        draw_north_arrow(&mut pm, &view, s);
        draw_legend(&mut pm, &view, opts, s);
    }
    Ok(pm)
}

fn draw_land_cover(pm: &mut Pixmap, view: &View, twin: &Twin) {
    let id = Transform::identity();
    let order = |k: LandKind| match k {
        LandKind::Plaza => 0,
        LandKind::Parking => 1,
        LandKind::Grass => 2,
        LandKind::Park => 3,
        LandKind::Forest => 4,
        LandKind::Water => 5,
        LandKind::Rail => 6,
    };
    let mut items: Vec<usize> = (0..twin.land_cover.len()).collect();
    items.sort_by_key(|&i| (order(twin.land_cover[i].kind), i));
    for i in items {
        let lc = &twin.land_cover[i];
        let fill = match lc.kind {
            LandKind::Water => WATER_RGB,
            LandKind::Park => PARK,
            LandKind::Grass => GRASS,
            LandKind::Forest => FOREST,
            LandKind::Rail => RAIL,
            LandKind::Parking => PARKING,
            LandKind::Plaza => PLAZA,
        };
        match &lc.geometry {
            LandGeometry::Area(poly) => {
                let Some(p) = polygon_path(view, poly) else { continue };
                if lc.kind == LandKind::Rail {
                    // A rail yard: light grey with a dashed grey edge.
                    pm.fill_path(&p, &paint(tint(RAIL, 0.7), 255), FillRule::EvenOdd, id, None);
                    pm.stroke_path(&p, &paint(RAIL, 255), &dashed(stroke(1.5, LineCap::Butt), 6.0, 4.0), id, None);
                    continue;
                }
                pm.fill_path(&p, &paint(fill, 255), FillRule::EvenOdd, id, None);
                let edge = if lc.kind == LandKind::Water { shade(fill, 0.85) } else { shade(fill, 0.9) };
                pm.stroke_path(&p, &paint(edge, 255), &stroke(1.0, LineCap::Butt), id, None);
            }
            LandGeometry::Line { points, width_m } => {
                let Some(p) = polyline_path(view, points) else { continue };
                let w = view.len_px(if width_m.is_finite() { *width_m } else { 2.0 }, 2.0);
                if lc.kind == LandKind::Rail {
                    pm.stroke_path(&p, &paint(RAIL, 255), &stroke(w.clamp(2.5, 8.0), LineCap::Butt), id, None);
                    let dash = (w * 2.5).max(5.0);
                    let inner = dashed(stroke((w.min(8.0) * 0.45).max(1.0), LineCap::Butt), dash, dash);
                    pm.stroke_path(&p, &paint([248, 248, 246], 255), &inner, id, None);
                } else {
                    pm.stroke_path(&p, &paint(fill, 255), &stroke(w, LineCap::Round), id, None);
                }
            }
        }
    }
}

fn draw_roads(pm: &mut Pixmap, view: &View, twin: &Twin) {
    let id = Transform::identity();
    let casing_px = (0.35 * view.scale as f32).clamp(0.6, 2.0);
    let lane_w = |w: f64| view.len_px(if w.is_finite() && w > 0.0 { w } else { 3.2 }, 1.2);
    // Paths of lanes and of the connections through junctions, with their widths.
    let mut ribbons: Vec<(tiny_skia::Path, f32, bool, LineCap)> = Vec::new();
    for l in &twin.lanes {
        if let Some(p) = polyline3_path(view, &l.centerline) {
            ribbons.push((p, lane_w(l.width_m), l.road_class.is_major(), LineCap::Butt));
        }
    }
    for c in &twin.lane_connections {
        let lane = twin.lanes.get(c.from_lane as usize);
        let w = lane.map_or(3.2, |l| l.width_m);
        let major = lane.is_some_and(|l| l.road_class.is_major());
        if let Some(p) = polyline3_path(view, &c.path) {
            ribbons.push((p, lane_w(w), major, LineCap::Round));
        }
    }
    for (p, w, _, cap) in &ribbons {
        pm.stroke_path(p, &paint(ROAD_CASING, 255), &stroke(w + 2.0 * casing_px, *cap), id, None);
    }
    for (p, w, major, cap) in &ribbons {
        let fill = if *major { ROAD_MAJOR } else { ROAD };
        pm.stroke_path(p, &paint(fill, 255), &stroke(*w, *cap), id, None);
    }
    // Lane centre lines on multi-lane roads, where lanes are wide enough to show them.
    for l in twin.lanes.iter().filter(|l| l.lanes_in_direction > 1 && l.road_class != RoadClass::Service) {
        let w = lane_w(l.width_m);
        if w < 5.0 {
            continue;
        }
        if let Some(p) = polyline3_path(view, &l.centerline) {
            let dash = view.len_px(3.0, 3.0);
            let s = dashed(stroke((0.12 * w).clamp(0.6, 2.0), LineCap::Butt), dash, dash);
            pm.stroke_path(&p, &paint(LANE_LINE, 200), &s, id, None);
        }
    }
    for l in &twin.lanes {
        if let Some(sl) = &l.stop_line
            && let Some(p) = polyline3_path(view, &sl.segment)
        {
            pm.stroke_path(&p, &paint([250, 250, 250], 230), &stroke(view.len_px(0.4, 1.0), LineCap::Butt), id, None);
        }
    }
}

fn draw_walks(pm: &mut Pixmap, view: &View, twin: &Twin) {
    let id = Transform::identity();
    let width =
        |e: &crate::WalkEdge| view.len_px(if e.width_m.is_finite() && e.width_m > 0.0 { e.width_m } else { 2.0 }, 1.0);
    // Sidewalks and pedestrian areas first, footways and steps on top, crossings last.
    let rank = |k: WalkKind| match k {
        WalkKind::Pedestrian => 0,
        WalkKind::Sidewalk => 1,
        WalkKind::Footway => 2,
        WalkKind::Steps => 3,
        WalkKind::Crossing => 4,
        WalkKind::SharedRoad => 5,
    };
    let mut items: Vec<usize> = (0..twin.walk_edges.len()).collect();
    items.sort_by_key(|&i| (rank(twin.walk_edges[i].kind), i));
    for i in items {
        let e = &twin.walk_edges[i];
        let Some(p) = polyline3_path(view, &e.polyline) else { continue };
        let w = width(e);
        match e.kind {
            WalkKind::SharedRoad => {}
            WalkKind::Sidewalk => pm.stroke_path(&p, &paint(SIDEWALK, 255), &stroke(w, LineCap::Round), id, None),
            WalkKind::Pedestrian => pm.stroke_path(&p, &paint(PEDESTRIAN, 255), &stroke(w, LineCap::Round), id, None),
            WalkKind::Footway => {
                let w = w.min(view.len_px(1.5, 1.0));
                pm.stroke_path(&p, &paint(FOOTWAY, 255), &stroke(w, LineCap::Round), id, None)
            }
            WalkKind::Steps => {
                pm.stroke_path(&p, &paint(SIDEWALK, 255), &stroke(w, LineCap::Butt), id, None);
                let d = view.len_px(0.3, 1.0);
                pm.stroke_path(&p, &paint(STEPS, 255), &dashed(stroke(w, LineCap::Butt), d, d), id, None);
            }
            WalkKind::Crossing => {
                // Zebra: a wide dashed stroke draws bars across the crossing's direction.
                let bar = view.len_px(0.5, 1.0);
                if e.signalled {
                    let edge = stroke(w + view.len_px(0.5, 1.0), LineCap::Butt);
                    pm.stroke_path(&p, &paint(SIGNAL_GREEN, 200), &edge, id, None);
                    pm.stroke_path(&p, &paint(ROAD, 255), &stroke(w, LineCap::Butt), id, None);
                }
                if bar >= 1.5 {
                    pm.stroke_path(
                        &p,
                        &paint([252, 252, 252], 255),
                        &dashed(stroke(w, LineCap::Butt), bar, bar),
                        id,
                        None,
                    );
                } else {
                    pm.stroke_path(&p, &paint([240, 240, 240], 200), &stroke(w, LineCap::Butt), id, None);
                }
            }
        }
    }
}

/// A small tile of diagonal lines for hatching estimated buildings.
fn hatch_tile(rgb: [u8; 3]) -> Option<Pixmap> {
    const N: f32 = 6.0;
    let mut tile = Pixmap::new(N as u32, N as u32)?;
    let mut pb = PathBuilder::new();
    for k in [-1.0f32, 0.0, 1.0] {
        pb.move_to(k * N - 1.0, N + 1.0);
        pb.line_to(k * N + N + 1.0, -1.0);
    }
    let path = pb.finish()?;
    tile.stroke_path(&path, &paint(rgb, 150), &stroke(1.2, LineCap::Butt), Transform::identity(), None);
    Some(tile)
}

fn draw_buildings(pm: &mut Pixmap, view: &View, twin: &Twin, opts: &MapOptions) {
    let id = Transform::identity();
    let outline_px = (0.25 * view.scale as f32).clamp(0.5, 1.5);
    let hatch = hatch_tile(INK);
    let mut draw = |b: &crate::Building| {
        let Some(p) = polygon_path(view, &b.footprint) else { return };
        let ramp = height_ramp_rgb(b.height_m, opts.height_ramp_max_m);
        let estimated = b.height_source == HeightSource::Estimated;
        let fill = if estimated { tint(ramp, 0.45) } else { ramp };
        pm.fill_path(&p, &paint(fill, 255), FillRule::EvenOdd, id, None);
        if estimated && let Some(tile) = &hatch {
            let shader = Pattern::new(tile.as_ref(), SpreadMode::Repeat, FilterQuality::Nearest, 0.5, id);
            let hp = Paint { shader, anti_alias: true, ..Paint::default() };
            pm.fill_path(&p, &hp, FillRule::EvenOdd, id, None);
        }
        pm.stroke_path(&p, &paint(shade(ramp, 0.62), 255), &stroke(outline_px, LineCap::Butt), id, None);
    };
    // Low buildings first so that tall ones (and their outlines) stay on top.
    let by_height = |list: &[crate::Building], keep: &dyn Fn(&crate::Building) -> bool| {
        let mut idx: Vec<usize> = (0..list.len()).filter(|&i| keep(&list[i])).collect();
        idx.sort_by(|&a, &b| list[a].height_m.total_cmp(&list[b].height_m).then(a.cmp(&b)));
        idx
    };
    for i in by_height(&twin.buildings, &|_| true) {
        draw(&twin.buildings[i]);
    }
    // Parts replacing their outline show the heights inside it.
    let replaced = |p: &crate::Building| {
        p.parent.and_then(|i| twin.buildings.get(i as usize)).is_some_and(|o| o.parts_replace_outline)
    };
    for i in by_height(&twin.building_parts, &replaced) {
        draw(&twin.building_parts[i]);
    }
}

fn draw_signals(pm: &mut Pixmap, view: &View, twin: &Twin) {
    let id = Transform::identity();
    let r = view.len_px(1.2, 3.0).min(8.0);
    for s in &twin.signals {
        if !(s.position[0].is_finite() && s.position[1].is_finite()) {
            continue;
        }
        let (x, y) = view.px([s.position[0], s.position[1]]);
        // A dark ring (white with a dark edge for guessed signals) around a dot that is red
        // in its upper half and green in its lower half.
        let ring = if s.guessed { [255, 255, 255] } else { INK };
        if let Some(c) = PathBuilder::from_circle(x, y, r + 1.2) {
            pm.fill_path(&c, &paint(ring, 255), FillRule::Winding, id, None);
            if s.guessed {
                pm.stroke_path(&c, &paint(INK, 255), &stroke(0.8, LineCap::Butt), id, None);
            }
        }
        if let Some(c) = PathBuilder::from_circle(x, y, r) {
            pm.fill_path(&c, &paint(SIGNAL_GREEN, 255), FillRule::Winding, id, None);
        }
        // The upper half circle as one cubic (control points at 4/3 r).
        let mut top = PathBuilder::new();
        top.move_to(x - r, y);
        top.cubic_to(x - r, y - 4.0 / 3.0 * r, x + r, y - 4.0 / 3.0 * r, x + r, y);
        top.close();
        if let Some(t) = top.finish() {
            pm.fill_path(&t, &paint(SIGNAL_RED, 255), FillRule::Winding, id, None);
        }
    }
}

/// Size of one pixel of the overlay font (px).
fn ui_scale(width_px: u32) -> f32 {
    (width_px as f32 / 800.0).round().clamp(1.0, 6.0)
}

/// Fills a rectangle as a path (tiny-skia's anti-aliased `fill_rect` trips a debug assertion
/// on rectangles narrower than a pixel's fraction).
fn fill_rect(pm: &mut Pixmap, r: Rect, p: &Paint) {
    pm.fill_path(&PathBuilder::from_rect(r), p, FillRule::Winding, Transform::identity(), None);
}

/// A panel with rounded corners behind an overlay.
fn panel(pm: &mut Pixmap, x: f32, y: f32, w: f32, h: f32, r: f32) {
    let mut pb = PathBuilder::new();
    pb.move_to(x + r, y);
    pb.line_to(x + w - r, y);
    pb.quad_to(x + w, y, x + w, y + r);
    pb.line_to(x + w, y + h - r);
    pb.quad_to(x + w, y + h, x + w - r, y + h);
    pb.line_to(x + r, y + h);
    pb.quad_to(x, y + h, x, y + h - r);
    pb.line_to(x, y + r);
    pb.quad_to(x, y, x + r, y);
    pb.close();
    if let Some(p) = pb.finish() {
        pm.fill_path(&p, &paint([255, 255, 255], 220), FillRule::Winding, Transform::identity(), None);
        pm.stroke_path(&p, &paint([150, 150, 150], 255), &stroke(1.0, LineCap::Butt), Transform::identity(), None);
    }
}

/// A length that is 1, 2 or 5 times a power of ten, at most `max_m`.
fn nice_length_m(max_m: f64) -> f64 {
    if !(max_m.is_finite() && max_m > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(max_m.log10().floor());
    [5.0, 2.0, 1.0].into_iter().map(|k| k * p).find(|&v| v <= max_m).unwrap_or(p)
}

fn format_length(m: f64) -> String {
    if m >= 1000.0 {
        format!("{} km", m / 1000.0)
    } else if m >= 1.0 {
        format!("{} m", m.round())
    } else {
        format!("{m} m")
    }
}

fn draw_scale_bar(pm: &mut Pixmap, view: &View, s: f32) {
    let len_m = nice_length_m(0.2 * view.width_px as f64 / view.scale);
    let bar_w = (len_m * view.scale) as f32;
    let label = format_length(len_m);
    let pad = 6.0 * s;
    let bar_h = 4.0 * s;
    let text_w = text_width(&label, s);
    let w = bar_w + text_w + 3.0 * pad;
    let h = bar_h + text_height(s) + 3.0 * pad;
    let x = pad + 4.0 * s;
    let y = view.height_px as f32 - h - pad - 4.0 * s;
    panel(pm, x, y, w, h, 3.0 * s);
    let (bx, by) = (x + pad, y + 2.0 * pad + text_height(s));
    for k in 0..4 {
        let seg = bar_w / 4.0;
        if let Some(r) = Rect::from_xywh(bx + k as f32 * seg, by, seg, bar_h) {
            let c = if k % 2 == 0 { INK } else { [255, 255, 255] };
            fill_rect(pm, r, &paint(c, 255));
        }
    }
    if let Some(r) = Rect::from_xywh(bx, by, bar_w, bar_h) {
        let p = PathBuilder::from_rect(r);
        pm.stroke_path(&p, &paint(INK, 255), &stroke(1.0, LineCap::Butt), Transform::identity(), None);
    }
    draw_text(pm, "0", bx, y + pad, s, INK);
    draw_text(pm, &label, bx + bar_w - 0.5 * text_w.min(bar_w), y + pad, s, INK);
}

fn draw_north_arrow(pm: &mut Pixmap, view: &View, s: f32) {
    let size = 18.0 * s;
    let pad = 6.0 * s;
    let w = size + 2.0 * pad;
    let h = size * 1.3 + text_height(s) + 3.0 * pad;
    let x = view.width_px as f32 - w - pad - 4.0 * s;
    let y = pad + 4.0 * s;
    panel(pm, x, y, w, h, 3.0 * s);
    let cx = x + w / 2.0;
    draw_text(pm, "N", cx - text_width("N", s) / 2.0, y + pad, s, INK);
    let top = y + 2.0 * pad + text_height(s);
    let bottom = top + size * 1.3;
    let mid = top + size;
    let id = Transform::identity();
    let tri = |pts: [(f32, f32); 3]| {
        let mut pb = PathBuilder::new();
        pb.move_to(pts[0].0, pts[0].1);
        pb.line_to(pts[1].0, pts[1].1);
        pb.line_to(pts[2].0, pts[2].1);
        pb.close();
        pb.finish()
    };
    if let Some(p) = tri([(cx, top), (cx - size * 0.4, bottom), (cx, mid)]) {
        pm.fill_path(&p, &paint(INK, 255), FillRule::Winding, id, None);
    }
    if let Some(p) = tri([(cx, top), (cx + size * 0.4, bottom), (cx, mid)]) {
        pm.fill_path(&p, &paint([255, 255, 255], 255), FillRule::Winding, id, None);
        pm.stroke_path(&p, &paint(INK, 255), &stroke(1.0, LineCap::Butt), id, None);
    }
}

fn draw_legend(pm: &mut Pixmap, view: &View, opts: &MapOptions, s: f32) {
    let max_m =
        if opts.height_ramp_max_m.is_finite() && opts.height_ramp_max_m > 0.0 { opts.height_ramp_max_m } else { 120.0 };
    let pad = 6.0 * s;
    let bar_w = 140.0 * s;
    let bar_h = 7.0 * s;
    let title = "BUILDING HEIGHT M";
    let w = bar_w.max(text_width(title, s)) + 2.0 * pad + 4.0 * s;
    let th = text_height(s);
    let h = th + bar_h + th + 2.0 * bar_h + 6.0 * pad;
    let x = view.width_px as f32 - w - pad - 4.0 * s;
    let y = view.height_px as f32 - h - pad - 4.0 * s;
    panel(pm, x, y, w, h, 3.0 * s);
    draw_text(pm, title, x + pad, y + pad, s, INK);
    let (bx, by) = (x + pad + 2.0 * s, y + 2.0 * pad + th);
    let stops: Vec<GradientStop> = RAMP.iter().map(|(t, c)| GradientStop::new(*t, colour(*c, 255))).collect();
    if let (Some(shader), Some(r)) = (
        LinearGradient::new(
            Point::from_xy(bx, by),
            Point::from_xy(bx + bar_w, by),
            stops,
            SpreadMode::Pad,
            Transform::identity(),
        ),
        Rect::from_xywh(bx, by, bar_w, bar_h),
    ) {
        let p = Paint { shader, anti_alias: true, ..Paint::default() };
        fill_rect(pm, r, &p);
        pm.stroke_path(
            &PathBuilder::from_rect(r),
            &paint(INK, 255),
            &stroke(1.0, LineCap::Butt),
            Transform::identity(),
            None,
        );
    }
    // Ticks at round heights, placed on the ramp's square-root scale.
    let ticks: Vec<f64> = [0.0, 0.1, 0.25, 0.5, 1.0].iter().map(|f| (f * max_m).round()).collect();
    let mut last_end = f32::NEG_INFINITY;
    for (k, v) in ticks.iter().enumerate() {
        let tx = bx + bar_w * (v / max_m).sqrt() as f32;
        let label = if k + 1 == ticks.len() { format!("{v}+") } else { format!("{v}") };
        let lw = text_width(&label, s);
        let lx = (tx - lw / 2.0).clamp(bx - 2.0 * s, bx + bar_w - lw + 2.0 * s);
        if let Some(r) = Rect::from_xywh(tx - 0.5, by + bar_h, 1.0, 2.0 * s) {
            fill_rect(pm, r, &paint(INK, 255));
        }
        if lx > last_end + 2.0 * s {
            draw_text(pm, &label, lx, by + bar_h + 3.0 * s, s, INK);
            last_end = lx + lw;
        }
    }
    // Estimated heights: hatched swatch.
    let sy = by + bar_h + th + 2.0 * pad;
    if let Some(r) = Rect::from_xywh(bx, sy, 3.0 * bar_h, 2.0 * bar_h) {
        let rgb = tint(height_ramp_rgb(0.25 * max_m, max_m), 0.45);
        fill_rect(pm, r, &paint(rgb, 255));
        if let Some(tile) = hatch_tile(INK) {
            let shader =
                Pattern::new(tile.as_ref(), SpreadMode::Repeat, FilterQuality::Nearest, 0.5, Transform::identity());
            let p = Paint { shader, ..Paint::default() };
            fill_rect(pm, r, &p);
        }
        pm.stroke_path(
            &PathBuilder::from_rect(r),
            &paint(INK, 255),
            &stroke(1.0, LineCap::Butt),
            Transform::identity(),
            None,
        );
        draw_text(pm, "ESTIMATED", bx + 3.0 * bar_h + pad, sy + bar_h - th / 2.0, s, INK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_twin::test_twin;

    fn rgb_at(pm: &Pixmap, view: &View, p: P2) -> [u8; 3] {
        let (x, y) = view.px(p);
        let c = pm.pixel(x as u32, y as u32).expect("inside").demultiply();
        [c.red(), c.green(), c.blue()]
    }

    fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
        a.iter().zip(&b).all(|(x, y)| (*x as i32 - *y as i32).abs() <= tol)
    }

    #[test]
    fn ramp_runs_from_light_to_dark() {
        let lum = |c: [u8; 3]| 0.3 * c[0] as f64 + 0.59 * c[1] as f64 + 0.11 * c[2] as f64;
        let mut last = f64::INFINITY;
        for h in [0.0, 5.0, 10.0, 20.0, 40.0, 60.0, 90.0, 120.0] {
            let l = lum(height_ramp_rgb(h, 120.0));
            assert!(l < last, "{h}");
            last = l;
        }
        assert_eq!(height_ramp_rgb(500.0, 120.0), height_ramp_rgb(120.0, 120.0));
        assert_eq!(height_ramp_rgb(f64::NAN, 120.0), height_ramp_rgb(0.0, 120.0));
    }

    #[test]
    fn map_shows_buildings_by_height_and_water_in_blue() {
        let twin = test_twin();
        let opts = MapOptions { width_px: 1024, ..MapOptions::default() };
        let png = render_map(&twin, &opts).expect("render");
        let pm = Pixmap::decode_png(&png).expect("decode");
        let view = View::new(&twin, &opts, "test").unwrap();
        assert_eq!((pm.width(), pm.height()), (view.width_px, view.height_px));
        assert_eq!(pm.width(), 1024);
        // Height follows the aspect ratio: 200 m x 172 m plus margins.
        let expect_h = (172.0 * (1024.0 - 96.0) / 200.0 + 96.0f64).ceil() as u32;
        assert_eq!(pm.height(), expect_h);

        // The 60 m tower (tagged): the ramp colour.
        let tower = rgb_at(&pm, &view, [-70.0, 30.0]);
        assert_eq!(tower, height_ramp_rgb(60.0, opts.height_ramp_max_m));
        // A 12 m building is lighter than the tower.
        let house = rgb_at(&pm, &view, [-38.0, 20.0]);
        assert!(close(house, height_ramp_rgb(12.0, opts.height_ramp_max_m), 1));
        assert!(house.iter().map(|&c| c as u32).sum::<u32>() > tower.iter().map(|&c| c as u32).sum::<u32>());
        // Water is blue.
        let water = rgb_at(&pm, &view, [60.0, 85.0]);
        assert!(close(water, WATER_RGB, 2), "{water:?}");
        assert!(water[2] > water[0] + 30);
        // Estimated heights are not drawn in the plain ramp colour.
        let est = rgb_at(&pm, &view, [-44.0, -34.0]);
        assert!(!close(est, height_ramp_rgb(9.0, opts.height_ramp_max_m), 3));
        // Roads are dark, parks green.
        let road = rgb_at(&pm, &view, [-50.0, -3.5]);
        assert!(road.iter().all(|&c| c < 130), "{road:?}");
        let park = rgb_at(&pm, &view, [-40.0, 70.0]);
        assert!(park[1] > park[0] && park[1] > park[2], "{park:?}");
        // The park's hole shows the background.
        assert!(close(rgb_at(&pm, &view, [-65.0, 80.0]), BACKGROUND, 2));
        // Not uniform: many distinct colours.
        let mut colours: Vec<u32> =
            pm.pixels().iter().map(|c| u32::from_le_bytes([c.red(), c.green(), c.blue(), 0])).collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(colours.len() > 50, "{} colours", colours.len());

        // Deterministic, and write_map_png writes the same bytes.
        assert_eq!(png, render_map(&twin, &opts).unwrap());
        let path = std::env::temp_dir().join("swm_export_test_map.png");
        write_map_png(&twin, &MapOptions::default(), &path).expect("write");
        let big = Pixmap::decode_png(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(big.width(), 2048);
    }

    #[test]
    fn bad_options_and_empty_twins() {
        let twin = test_twin();
        let bad = MapOptions { width_px: 40, margin_px: 30, ..MapOptions::default() };
        assert!(matches!(render_map(&twin, &bad), Err(TwinError::Export { .. })));
        let too_big = MapOptions { width_px: 100_000, ..MapOptions::default() };
        assert!(matches!(render_map(&twin, &too_big), Err(TwinError::Export { .. })));
        // A very tall twin is limited to max_height_px.
        let mut tall = test_twin();
        tall.meta.bbox_m = [-10.0, -5000.0, 10.0, 5000.0];
        let opts = MapOptions { width_px: 512, max_height_px: 1024, ..MapOptions::default() };
        let pm = Pixmap::decode_png(&render_map(&tall, &opts).unwrap()).unwrap();
        assert_eq!((pm.width(), pm.height()), (512, 1024));
        // An empty twin still renders.
        let png = render_map(&Twin::default(), &MapOptions { width_px: 256, ..MapOptions::default() }).unwrap();
        assert!(Pixmap::decode_png(&png).is_ok());
    }

    #[test]
    fn scale_bar_lengths_are_round() {
        assert_eq!(nice_length_m(37.0), 20.0);
        assert_eq!(nice_length_m(60.0), 50.0);
        assert_eq!(nice_length_m(1.0), 1.0);
        assert_eq!(nice_length_m(1999.0), 1000.0);
        assert_eq!(format_length(2000.0), "2 km");
        assert_eq!(format_length(50.0), "50 m");
    }
}
