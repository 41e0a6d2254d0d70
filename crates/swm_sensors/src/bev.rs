//! A robot-centred bird's-eye-view crop: the twin's semantic classes around a pose, with the
//! other agents' boxes painted in.
//!
//! The static layers come from [`swm_twin::TwinIndex::bev_raster`] (same pixel convention:
//! the image's `+x` along the robot's heading, image "up" to its left, the robot at the
//! middle; classes are [`BevClass`] values; a signed distance to the nearest building).
//! Agents are painted on top as [`AGENT_CLASS`] in `classes` and recorded in `agent_id`: a
//! pixel belongs to an agent when its centre lies inside the agent's footprint.

use crate::error::SensorError;
use crate::lidar::AgentBox;
use swm_twin::TwinIndex;
pub use swm_twin::query::{BevClass, BevRaster};

/// The class value of pixels covered by an agent (one past the twin's classes).
pub const AGENT_CLASS: u8 = BevClass::ALL.len() as u8;

/// Size and resolution of a crop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BevConfig {
    /// Pixels along the heading.
    pub width_px: u32,
    /// Pixels across the heading.
    pub height_px: u32,
    /// Metres per pixel.
    pub resolution_m: f64,
}

impl Default for BevConfig {
    /// 64 m × 64 m at 0.5 m (128 × 128 pixels).
    fn default() -> Self {
        Self { width_px: 128, height_px: 128, resolution_m: 0.5 }
    }
}

/// A crop; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct BevCrop {
    /// The static raster (classes before agents were painted, signed distance to buildings).
    pub raster: BevRaster,
    /// Classes with agents painted in ([`AGENT_CLASS`]), row-major, `width × height`.
    pub classes: Vec<u8>,
    /// The agent covering each pixel, if any.
    pub agent_id: Vec<Option<u64>>,
}

impl BevCrop {
    /// True when pixel `(col, row)` is a building or an agent (the occupancy a planner avoids).
    pub fn occupied(&self, col: u32, row: u32) -> bool {
        self.raster
            .index(col, row)
            .is_some_and(|i| self.classes[i] == BevClass::Building as u8 || self.classes[i] == AGENT_CLASS)
    }
}

/// The crop centred on `center_enu` (only `x`, `y` are used) rotated by `heading_rad`.
/// Errors as [`TwinIndex::bev_raster`] (an empty or oversized crop, bad numbers).
pub fn bev_crop(
    index: &TwinIndex,
    center_enu: [f64; 3],
    heading_rad: f64,
    config: &BevConfig,
    agents: &[AgentBox],
) -> Result<BevCrop, SensorError> {
    let raster = index.bev_raster(
        [center_enu[0], center_enu[1]],
        heading_rad,
        config.width_px,
        config.height_px,
        config.resolution_m,
    )?;
    let mut classes = raster.classes.clone();
    let mut agent_id = vec![None; classes.len()];
    let half_diag = 0.5 * std::f64::consts::SQRT_2 * config.resolution_m * config.width_px.max(config.height_px) as f64;
    for a in agents {
        let (s, c) = a.yaw_rad.sin_cos();
        let (hl, hw) = (0.5 * a.length_m, 0.5 * a.width_m);
        let dx = a.base_center_enu[0] - center_enu[0];
        let dy = a.base_center_enu[1] - center_enu[1];
        let in_reach = dx.hypot(dy) <= half_diag + hl.hypot(hw);
        if !(hl > 0.0 && hw > 0.0 && in_reach) {
            continue;
        }
        // Pixel box of the agent's footprint corners, then an exact test per pixel centre.
        let corners = [[hl, hw], [hl, -hw], [-hl, -hw], [-hl, hw]]
            .map(|[u, v]| [a.base_center_enu[0] + c * u - s * v, a.base_center_enu[1] + s * u + c * v]);
        let (mut c0, mut c1, mut r0, mut r1) = (u32::MAX, 0u32, u32::MAX, 0u32);
        let mut any = false;
        for p in corners {
            let (x, y) = pixel_coords(&raster, p);
            let (cx, ry) = (
                x.floor().clamp(0.0, raster.width as f64 - 1.0) as u32,
                y.floor().clamp(0.0, raster.height as f64 - 1.0) as u32,
            );
            c0 = c0.min(cx);
            c1 = c1.max(cx);
            r0 = r0.min(ry);
            r1 = r1.max(ry);
            any = true;
        }
        if !any {
            continue;
        }
        for row in r0..=r1 {
            for col in c0..=c1 {
                let p = raster.pixel_center_m(col, row);
                let (px, py) = (p[0] - a.base_center_enu[0], p[1] - a.base_center_enu[1]);
                let (u, v) = (c * px + s * py, -s * px + c * py);
                if u.abs() <= hl && v.abs() <= hw {
                    let i = row as usize * raster.width as usize + col as usize;
                    classes[i] = AGENT_CLASS;
                    agent_id[i] = Some(a.id);
                }
            }
        }
    }
    Ok(BevCrop { raster, classes, agent_id })
}

/// Continuous pixel coordinates (column, row) of a twin point in the raster (may be outside).
fn pixel_coords(r: &BevRaster, p: [f64; 2]) -> (f64, f64) {
    let (s, c) = r.heading_rad.sin_cos();
    let (dx, dy) = (p[0] - r.center_m[0], p[1] - r.center_m[1]);
    let along = c * dx + s * dy;
    let left = -s * dx + c * dy;
    (along / r.resolution_m + 0.5 * r.width as f64, 0.5 * r.height as f64 - left / r.resolution_m)
}
