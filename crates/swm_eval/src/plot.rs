//! PNG bar charts comparing methods (tiny-skia and the twin maps' pixel font).

use std::path::{Path, PathBuf};

use swm_twin::export::font::{draw_text, text_height, text_width};
use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

use crate::wosac::Component;
use crate::{EvalError, MethodReport};

const W_PX: u32 = 1000;
const H_PX: u32 = 520;
const LEFT_PX: f32 = 80.0;
const RIGHT_PX: f32 = 24.0;
const TOP_PX: f32 = 96.0;
const BOTTOM_PX: f32 = 56.0;
const FONT_PX: f32 = 2.0;
const INK: [u8; 3] = [40, 40, 44];
const GRID: [u8; 3] = [220, 220, 224];
const PALETTE: [[u8; 3]; 8] = [
    [52, 120, 200],
    [230, 140, 30],
    [40, 160, 80],
    [200, 60, 60],
    [120, 80, 160],
    [140, 100, 60],
    [220, 110, 180],
    [120, 120, 120],
];

fn paint(rgb: [u8; 3]) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(Color::from_rgba8(rgb[0], rgb[1], rgb[2], 255));
    p.anti_alias = true;
    p
}

fn tick_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn tick_label(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else if step >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn line(pm: &mut Pixmap, x0: f32, y0: f32, x1: f32, y1: f32, rgb: [u8; 3]) {
    let mut pb = PathBuilder::new();
    pb.move_to(x0, y0);
    pb.line_to(x1, y1);
    if let Some(path) = pb.finish() {
        pm.stroke_path(&path, &paint(rgb), &Stroke { width: 1.0, ..Default::default() }, Transform::identity(), None);
    }
}

fn rect(pm: &mut Pixmap, x: f32, y: f32, w: f32, h: f32, rgb: [u8; 3]) {
    // A zero-height bar (a zero value) draws nothing.
    if w < 0.5 || h < 0.5 {
        return;
    }
    if let Some(r) = Rect::from_xywh(x, y, w, h) {
        pm.fill_path(&PathBuilder::from_rect(r), &paint(rgb), FillRule::Winding, Transform::identity(), None);
    }
}

/// A grouped bar chart: one group per label, one bar per series in each group. `NaN`
/// values leave a gap.
fn grouped_bars(
    title: &str,
    y_label: &str,
    groups: &[&str],
    series: &[(String, Vec<f64>)],
    y_max: Option<f64>,
    path: &Path,
) -> Result<PathBuf, EvalError> {
    let mut pm = Pixmap::new(W_PX, H_PX).ok_or_else(|| EvalError::Plot("cannot allocate a plot".into()))?;
    pm.fill(Color::WHITE);
    let data_max = series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let y_max = y_max.unwrap_or(data_max * 1.15).max(1e-9);
    let (pw, ph) = (W_PX as f32 - LEFT_PX - RIGHT_PX, H_PX as f32 - TOP_PX - BOTTOM_PX);
    let py = |v: f64| TOP_PX + ph - (v / y_max).clamp(0.0, 1.0) as f32 * ph;
    let step = tick_step(y_max);
    let mut v = 0.0;
    while v <= y_max + 1e-9 {
        let y = py(v);
        line(&mut pm, LEFT_PX, y, LEFT_PX + pw, y, GRID);
        let l = tick_label(v, step);
        draw_text(&mut pm, &l, LEFT_PX - 8.0 - text_width(&l, FONT_PX), y - text_height(FONT_PX) / 2.0, FONT_PX, INK);
        v += step;
    }
    line(&mut pm, LEFT_PX, TOP_PX + ph, LEFT_PX + pw, TOP_PX + ph, INK);
    line(&mut pm, LEFT_PX, TOP_PX, LEFT_PX, TOP_PX + ph, INK);
    draw_text(&mut pm, title, LEFT_PX, 12.0, 3.0, INK);
    draw_text(&mut pm, y_label, 8.0, TOP_PX - 28.0, FONT_PX, INK);
    // Legend: one row under the title.
    let mut x = LEFT_PX;
    for (i, (name, _)) in series.iter().enumerate() {
        rect(&mut pm, x, 42.0, 12.0, 12.0, PALETTE[i % PALETTE.len()]);
        draw_text(&mut pm, name, x + 18.0, 43.0, FONT_PX, INK);
        x += 18.0 + text_width(name, FONT_PX) + 24.0;
    }
    let ng = groups.len().max(1) as f32;
    let gw = pw / ng;
    let ns = series.len().max(1) as f32;
    let bw = (gw * 0.8 / ns).max(1.0);
    for (g, label) in groups.iter().enumerate() {
        let gx = LEFT_PX + g as f32 * gw;
        let lw = text_width(label, FONT_PX);
        let scale = if lw > gw - 4.0 { 1.0 } else { FONT_PX };
        let lw = text_width(label, scale);
        draw_text(&mut pm, label, gx + (gw - lw) / 2.0, TOP_PX + ph + 10.0, scale, INK);
        for (s, (_, vals)) in series.iter().enumerate() {
            let Some(&v) = vals.get(g) else { continue };
            if !v.is_finite() {
                continue;
            }
            let x = gx + gw * 0.1 + s as f32 * bw;
            let y = py(v.max(0.0));
            rect(&mut pm, x + 1.0, y, (bw - 2.0).max(1.0), TOP_PX + ph - y, PALETTE[s % PALETTE.len()]);
            let txt = if v.abs() >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") };
            if text_width(&txt, 1.0) + 4.0 <= bw {
                draw_text(&mut pm, &txt, x + (bw - text_width(&txt, 1.0)) / 2.0, y - 10.0, 1.0, INK);
            }
        }
    }
    let png = pm.encode_png().map_err(|e| EvalError::Plot(format!("encoding {}: {e}", path.display())))?;
    std::fs::write(path, png).map_err(|source| EvalError::Io { path: path.to_path_buf(), source })?;
    Ok(path.to_path_buf())
}

/// Writes bar charts comparing `methods` into `out_dir` (created if missing):
/// `meta_metric.png` (meta-metric and its three buckets), `likelihoods.png` (the ten
/// component likelihoods), `min_ade.png` (minADE and ADE), `occupancy_iou.png` (IoU at
/// 1, 2, 3 s with copy-last, taken from the first method) and `rates.png` (collision,
/// off-road and red-light rates, with the log's from the first method). Returns the paths.
pub fn plot_reports(methods: &[(String, MethodReport)], out_dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    if methods.is_empty() {
        return Err(EvalError::Plot("no methods to plot".into()));
    }
    std::fs::create_dir_all(out_dir).map_err(|source| EvalError::Io { path: out_dir.to_path_buf(), source })?;
    let name = |n: &str| n.replace('_', " ").to_uppercase();
    let series = |f: &dyn Fn(&MethodReport) -> Vec<f64>| -> Vec<(String, Vec<f64>)> {
        methods.iter().map(|(n, r)| (name(n), f(r))).collect()
    };
    let mut out = Vec::new();
    out.push(grouped_bars(
        "REALISM META-METRIC (WOSAC 2025 WEIGHTS)",
        "LIKELIHOOD",
        &["META-METRIC", "KINEMATIC", "INTERACTIVE", "MAP"],
        &series(&|r| vec![r.meta_metric, r.kinematic_metrics, r.interactive_metrics, r.map_based_metrics]),
        Some(1.0),
        &out_dir.join("meta_metric.png"),
    )?);
    let labels: Vec<&str> = Component::ALL.iter().map(|c| c.short_label()).collect();
    out.push(grouped_bars(
        "COMPONENT LIKELIHOODS",
        "LIKELIHOOD",
        &labels,
        &series(&|r| r.likelihoods.as_array().to_vec()),
        Some(1.0),
        &out_dir.join("likelihoods.png"),
    )?);
    out.push(grouped_bars(
        "DISPLACEMENT ERROR",
        "M",
        &["MINADE", "ADE", "SCENE MINADE"],
        &series(&|r| vec![r.min_ade_m, r.ade_m, r.scene_min_ade_m]),
        None,
        &out_dir.join("min_ade.png"),
    )?);
    let mut occ = series(&|r| vec![r.occupancy_iou_1s, r.occupancy_iou_2s, r.occupancy_iou_3s]);
    let first = &methods[0].1;
    occ.push((
        "COPY LAST".into(),
        vec![first.copy_last_occupancy_iou_1s, first.copy_last_occupancy_iou_2s, first.copy_last_occupancy_iou_3s],
    ));
    out.push(grouped_bars(
        "OCCUPANCY IOU",
        "IOU",
        &["1 S", "2 S", "3 S"],
        &occ,
        Some(1.0),
        &out_dir.join("occupancy_iou.png"),
    )?);
    let mut rates = series(&|r| vec![r.collision_rate, r.offroad_rate, r.traffic_light_violation_rate]);
    rates.push((
        "LOG".into(),
        vec![first.log_collision_rate, first.log_offroad_rate, first.log_traffic_light_violation_rate],
    ));
    out.push(grouped_bars(
        "RATES (SHARE OF AGENT-SAMPLES)",
        "RATE",
        &["COLLISION", "OFFROAD", "RED LIGHT"],
        &rates,
        None,
        &out_dir.join("rates.png"),
    )?);
    Ok(out)
}
