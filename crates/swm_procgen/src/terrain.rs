//! The generated DEM: a plain gently rising from the river, the river's water surface
//! and embankment, and a gaussian hill under the forest.

use crate::district::Layout;
use swm_core::{Crs, LatLon, LocalFrame};
use swm_ingest::Dem;

/// Elevation above sea level (m) at a canonical point.
pub fn elevation_m(layout: &Layout, p: [f64; 2]) -> f64 {
    let [u, v] = p;
    let ph = layout.relief_phase_rad;
    let plain = |v: f64| {
        let v0 = layout.river.as_ref().map_or(0.0, |r| r.v0_m);
        14.0 + 6.0 * ((v - v0) / layout.lv_m).clamp(0.0, 1.0)
            + 1.5 * (u / 310.0 + ph[0]).sin() * (v / 270.0 + ph[1]).cos()
    };
    let mut z = match &layout.river {
        Some(r) => {
            let bank = r.bank_v(u);
            let top = r.v0_m - 10.0;
            if v < bank {
                4.5
            } else if v < top {
                let f = ((v - bank) / (top - bank).max(1.0)).clamp(0.0, 1.0);
                7.0 + (plain(top) - 7.0) * f
            } else {
                plain(v)
            }
        }
        None => plain(v),
    };
    if let Some(h) = &layout.hill {
        let d2 = (u - h.center[0]).powi(2) + (v - h.center[1]).powi(2);
        let sigma = h.radius_m / 1.6;
        z += h.height_m * (-d2 / (2.0 * sigma * sigma)).exp();
    }
    z
}

/// A north-up EPSG:4326 raster covering `bbox_wgs84` (west, south, east, north) plus
/// `margin_m`, with cells of about `cell_m`.
pub fn make_dem(layout: &Layout, frame: &LocalFrame, bbox_wgs84: [f64; 4], cell_m: f64, margin_m: f64) -> Dem {
    let o = frame.origin();
    let dlat = frame.wgs84_from_enu([0.0, cell_m]).lat_deg - o.lat_deg;
    let dlon = frame.wgs84_from_enu([cell_m, 0.0]).lon_deg - o.lon_deg;
    let (mlat, mlon) = (dlat * margin_m / cell_m, dlon * margin_m / cell_m);
    let west = bbox_wgs84[0] - mlon;
    let north = bbox_wgs84[3] + mlat;
    let width = ((bbox_wgs84[2] + mlon - west) / dlon).ceil() as usize + 1;
    let height = ((north - (bbox_wgs84[1] - mlat)) / dlat).ceil() as usize + 1;
    let mut elevation_m_grid = Vec::with_capacity(width * height);
    for r in 0..height {
        let lat = north - r as f64 * dlat;
        for c in 0..width {
            let lon = west + c as f64 * dlon;
            let local = frame.enu_from_wgs84(LatLon::new(lat, lon));
            let z = elevation_m(layout, layout.to_canonical(local));
            elevation_m_grid.push(((z * 10.0).round() / 10.0) as f32);
        }
    }
    Dem {
        source: "procgen".to_string(),
        crs: Crs::Wgs84,
        origin: [west, north],
        pixel_size: [dlon, -dlat],
        width,
        height,
        elevation_m: elevation_m_grid,
        nodata: None,
    }
}
