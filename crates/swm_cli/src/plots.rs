//! PNG plots of a run's metrics (drawn with tiny-skia and the twin maps' pixel font).

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use swm_sim::metrics::{RunMetrics, SPEED_BIN_MPS, TRAVEL_BIN_S};
use swm_twin::export::font::{draw_text, text_height, text_width};
use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

const W_PX: u32 = 800;
const H_PX: u32 = 480;
const LEFT_PX: f32 = 80.0;
const RIGHT_PX: f32 = 24.0;
const TOP_PX: f32 = 44.0;
const BOTTOM_PX: f32 = 56.0;
const FONT_PX: f32 = 2.0;
const INK: [u8; 3] = [40, 40, 44];
const GRID: [u8; 3] = [220, 220, 224];
const KIND_RGB: [(&str, [u8; 3]); 4] =
    [("car", [52, 120, 200]), ("bus", [230, 140, 30]), ("truck", [120, 80, 160]), ("pedestrian", [40, 160, 80])];

fn paint(rgb: [u8; 3], alpha: u8) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(Color::from_rgba8(rgb[0], rgb[1], rgb[2], alpha));
    p.anti_alias = true;
    p
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about five ticks up to `max`.
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

fn label(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A chart: axes from 0 to `x_max` and 0 to `y_max`.
struct Chart {
    pm: Pixmap,
    x_max: f64,
    y_max: f64,
}

impl Chart {
    fn new(title: &str, x_label: &str, y_label: &str, x_max: f64, y_max: f64) -> Result<Chart> {
        let mut pm = Pixmap::new(W_PX, H_PX).context("allocating a plot")?;
        pm.fill(Color::WHITE);
        let (x_max, y_max) = (x_max.max(1e-9), y_max.max(1e-9));
        let mut c = Chart { pm, x_max, y_max };
        let (pw, ph) = c.plot_size();
        // Grid and tick labels.
        let grid = paint(GRID, 255);
        let stroke = Stroke { width: 1.0, ..Default::default() };
        let ys = tick_step(y_max);
        let mut v = 0.0;
        while v <= y_max + 1e-9 {
            let (_, y) = c.px(0.0, v);
            c.line(LEFT_PX, y, LEFT_PX + pw, y, &grid, &stroke);
            let l = label(v);
            draw_text(
                &mut c.pm,
                &l,
                LEFT_PX - 8.0 - text_width(&l, FONT_PX),
                y - text_height(FONT_PX) / 2.0,
                FONT_PX,
                INK,
            );
            v += ys;
        }
        let xs = tick_step(x_max);
        let mut v = 0.0;
        while v <= x_max + 1e-9 {
            let (x, _) = c.px(v, 0.0);
            c.line(x, TOP_PX, x, TOP_PX + ph, &grid, &stroke);
            let l = label(v);
            draw_text(&mut c.pm, &l, x - text_width(&l, FONT_PX) / 2.0, TOP_PX + ph + 8.0, FONT_PX, INK);
            v += xs;
        }
        let ink = paint(INK, 255);
        c.line(LEFT_PX, TOP_PX + ph, LEFT_PX + pw, TOP_PX + ph, &ink, &stroke);
        c.line(LEFT_PX, TOP_PX, LEFT_PX, TOP_PX + ph, &ink, &stroke);
        draw_text(&mut c.pm, title, LEFT_PX, 14.0, 3.0, INK);
        let xw = text_width(x_label, FONT_PX);
        draw_text(&mut c.pm, x_label, LEFT_PX + (pw - xw) / 2.0, H_PX as f32 - 24.0, FONT_PX, INK);
        let yw = text_width(y_label, FONT_PX);
        draw_text(&mut c.pm, y_label, (W_PX as f32 - RIGHT_PX - yw).max(0.0), 20.0, FONT_PX, INK);
        Ok(c)
    }

    fn plot_size(&self) -> (f32, f32) {
        (W_PX as f32 - LEFT_PX - RIGHT_PX, H_PX as f32 - TOP_PX - BOTTOM_PX)
    }

    fn px(&self, x: f64, y: f64) -> (f32, f32) {
        let (pw, ph) = self.plot_size();
        (LEFT_PX + (x / self.x_max) as f32 * pw, TOP_PX + ph - (y / self.y_max) as f32 * ph)
    }

    fn line(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, p: &Paint, s: &Stroke) {
        let mut pb = PathBuilder::new();
        pb.move_to(x0, y0);
        pb.line_to(x1, y1);
        if let Some(path) = pb.finish() {
            self.pm.stroke_path(&path, p, s, Transform::identity(), None);
        }
    }

    fn bar(&mut self, x_lo: f64, x_hi: f64, y: f64, rgb: [u8; 3], alpha: u8) {
        if y.is_nan() || y <= 0.0 {
            return;
        }
        let (x0, y0) = self.px(x_lo, y);
        let (x1, y1) = self.px(x_hi, 0.0);
        if let Some(r) = Rect::from_ltrb(x0 + 1.0, y0, (x1 - 1.0).max(x0 + 1.5), y1) {
            self.pm.fill_path(
                &PathBuilder::from_rect(r),
                &paint(rgb, alpha),
                FillRule::Winding,
                Transform::identity(),
                None,
            );
        }
    }

    fn polyline(&mut self, pts: &[(f64, f64)], rgb: [u8; 3]) {
        let mut pb = PathBuilder::new();
        for (i, &(x, y)) in pts.iter().enumerate() {
            let (px, py) = self.px(x, y);
            if i == 0 { pb.move_to(px, py) } else { pb.line_to(px, py) }
        }
        if let Some(path) = pb.finish() {
            let s = Stroke { width: 2.0, ..Default::default() };
            self.pm.stroke_path(&path, &paint(rgb, 255), &s, Transform::identity(), None);
        }
    }

    fn legend(&mut self, entries: &[(String, [u8; 3])]) {
        let mut y = TOP_PX + 8.0;
        for (name, rgb) in entries {
            let x = W_PX as f32 - RIGHT_PX - 150.0;
            if let Some(r) = Rect::from_xywh(x, y, 14.0, 14.0) {
                self.pm.fill_path(
                    &PathBuilder::from_rect(r),
                    &paint(*rgb, 255),
                    FillRule::Winding,
                    Transform::identity(),
                    None,
                );
            }
            draw_text(&mut self.pm, name, x + 20.0, y, FONT_PX, INK);
            y += 22.0;
        }
    }

    fn save(self, path: &Path) -> Result<PathBuf> {
        let png = self.pm.encode_png().with_context(|| format!("encoding {}", path.display()))?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.to_path_buf())
    }
}

/// Writes `speed_histogram.png`, `vehicles_over_time.png` and `travel_times.png` into `dir`.
pub fn write_plots(dir: &Path, m: &RunMetrics) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();

    // Speeds: share of vehicle-steps per bin, up to the last non-empty bin.
    let total = m.speed_histogram.iter().sum::<u64>().max(1) as f64;
    let bins = m.speed_histogram.iter().rposition(|&c| c > 0).map_or(1, |i| i + 1);
    let share: Vec<f64> =
        m.speed_histogram[..bins.min(m.speed_histogram.len())].iter().map(|&c| 100.0 * c as f64 / total).collect();
    let y_max = share.iter().copied().fold(1.0, f64::max) * 1.1;
    let mut c = Chart::new("VEHICLE SPEEDS", "SPEED (M/S)", "% OF VEHICLE-STEPS", bins as f64 * SPEED_BIN_MPS, y_max)?;
    for (i, s) in share.iter().enumerate() {
        c.bar(i as f64 * SPEED_BIN_MPS, (i + 1) as f64 * SPEED_BIN_MPS, *s, KIND_RGB[0].1, 255);
    }
    out.push(c.save(&dir.join("speed_histogram.png"))?);

    // Vehicles in the district over time.
    let t_max = m.vehicles_over_time.last().map_or(1.0, |p| p.0).max(1.0);
    let n_max = m.vehicles_over_time.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut c = Chart::new("VEHICLES IN THE DISTRICT", "TIME (S)", "VEHICLES", t_max, n_max)?;
    let pts: Vec<(f64, f64)> = m.vehicles_over_time.iter().map(|&(t, n)| (t, f64::from(n))).collect();
    c.polyline(&pts, KIND_RGB[0].1);
    out.push(c.save(&dir.join("vehicles_over_time.png"))?);

    // Travel times per kind (arrivals per bin), drawn over each other.
    let bins = m.travel_time_s.values().map(|t| t.histogram.len()).max().unwrap_or(0).max(1);
    let y_max =
        m.travel_time_s.values().flat_map(|t| t.histogram.iter().copied()).max().unwrap_or(0).max(1) as f64 * 1.1;
    let title = if m.travel_time_s.is_empty() { "TRAVEL TIMES (NO ARRIVALS)" } else { "TRAVEL TIMES" };
    let mut c = Chart::new(title, "TRAVEL TIME (S)", "ARRIVALS", bins as f64 * TRAVEL_BIN_S, y_max)?;
    let mut legend = Vec::new();
    for (kind, rgb) in KIND_RGB {
        if let Some(t) = m.travel_time_s.get(kind) {
            for (i, &n) in t.histogram.iter().enumerate() {
                c.bar(i as f64 * TRAVEL_BIN_S, (i + 1) as f64 * TRAVEL_BIN_S, n as f64, rgb, 170);
            }
            legend.push((kind.to_uppercase(), rgb));
        }
    }
    c.legend(&legend);
    out.push(c.save(&dir.join("travel_times.png"))?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert_eq!(tick_step(100.0), 20.0);
        assert_eq!(tick_step(7.0), 2.0);
        assert_eq!(tick_step(0.9), 0.2);
        assert_eq!(label(20000.0), "20k");
        assert_eq!(label(2.5), "2.5");
    }
}
