//! WGS84 coordinates and the twin's local metric frame.
//!
//! The twin's frame is a local tangent plane anchored at an origin on the WGS84
//! ellipsoid: `x` east and `y` north in metres (exact ENU coordinates of the point's
//! foot on the ellipsoid, computed through ECEF in `f64`), and `z` the elevation above
//! sea level in metres (from the DEM; 0 where there is none). Horizontal round trips
//! `wgs84 -> enu -> wgs84` are exact to well below a millimetre across a city.

use serde::{Deserialize, Serialize};

/// WGS84 semi-major axis (m).
pub const WGS84_A: f64 = 6_378_137.0;
/// WGS84 flattening.
pub const WGS84_F: f64 = 1.0 / 298.257_223_563;

/// A WGS84 latitude/longitude pair in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatLon {
    pub lat_deg: f64,
    pub lon_deg: f64,
}

impl LatLon {
    pub const fn new(lat_deg: f64, lon_deg: f64) -> Self {
        Self { lat_deg, lon_deg }
    }

    /// Whether the coordinate is finite and inside ±90° latitude, ±180° longitude.
    pub fn is_valid(&self) -> bool {
        self.lat_deg.is_finite()
            && self.lon_deg.is_finite()
            && self.lat_deg.abs() <= 90.0
            && self.lon_deg.abs() <= 180.0
    }
}

/// Earth-centred, earth-fixed coordinates of a geodetic point (WGS84).
pub fn ecef_from_geodetic(ll: LatLon, h_m: f64) -> [f64; 3] {
    let e2 = WGS84_F * (2.0 - WGS84_F);
    let (sin_lat, cos_lat) = ll.lat_deg.to_radians().sin_cos();
    let (sin_lon, cos_lon) = ll.lon_deg.to_radians().sin_cos();
    let n = WGS84_A / (1.0 - e2 * sin_lat * sin_lat).sqrt();
    [(n + h_m) * cos_lat * cos_lon, (n + h_m) * cos_lat * sin_lon, (n * (1.0 - e2) + h_m) * sin_lat]
}

/// Geodetic coordinates of an ECEF point (WGS84), by Bowring's method refined to
/// sub-micrometre precision.
pub fn geodetic_from_ecef(p: [f64; 3]) -> (LatLon, f64) {
    let e2 = WGS84_F * (2.0 - WGS84_F);
    let lon = p[1].atan2(p[0]);
    let r = (p[0] * p[0] + p[1] * p[1]).sqrt();
    let mut lat = p[2].atan2(r * (1.0 - e2));
    let mut h = 0.0;
    for _ in 0..6 {
        let sin_lat = lat.sin();
        let n = WGS84_A / (1.0 - e2 * sin_lat * sin_lat).sqrt();
        h = if lat.cos().abs() > 1e-9 { r / lat.cos() - n } else { p[2].abs() / sin_lat.abs() - n * (1.0 - e2) };
        lat = p[2].atan2(r * (1.0 - e2 * n / (n + h)));
    }
    (LatLon::new(lat.to_degrees(), lon.to_degrees()), h)
}

/// The twin's local frame: ENU axes at `origin` (see the module docs for `z`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalFrame {
    origin: LatLon,
    origin_ecef: [f64; 3],
    /// Rows: east, north, up unit vectors in ECEF.
    enu_from_ecef_rot: [[f64; 3]; 3],
}

impl LocalFrame {
    pub fn new(origin: LatLon) -> Self {
        let (sl, cl) = origin.lat_deg.to_radians().sin_cos();
        let (so, co) = origin.lon_deg.to_radians().sin_cos();
        Self {
            origin,
            origin_ecef: ecef_from_geodetic(origin, 0.0),
            enu_from_ecef_rot: [[-so, co, 0.0], [-sl * co, -sl * so, cl], [cl * co, cl * so, sl]],
        }
    }

    pub fn origin(&self) -> LatLon {
        self.origin
    }

    /// True ENU coordinates (east, north, up) of a geodetic point at ellipsoidal height `h_m`.
    pub fn enu3_from_geodetic(&self, ll: LatLon, h_m: f64) -> [f64; 3] {
        let p = ecef_from_geodetic(ll, h_m);
        let d = [p[0] - self.origin_ecef[0], p[1] - self.origin_ecef[1], p[2] - self.origin_ecef[2]];
        let r = &self.enu_from_ecef_rot;
        [
            r[0][0] * d[0] + r[0][1] * d[1] + r[0][2] * d[2],
            r[1][0] * d[0] + r[1][1] * d[1] + r[1][2] * d[2],
            r[2][0] * d[0] + r[2][1] * d[1] + r[2][2] * d[2],
        ]
    }

    /// Geodetic point and ellipsoidal height of true ENU coordinates.
    pub fn geodetic_from_enu3(&self, enu: [f64; 3]) -> (LatLon, f64) {
        let r = &self.enu_from_ecef_rot;
        let p = [
            self.origin_ecef[0] + r[0][0] * enu[0] + r[1][0] * enu[1] + r[2][0] * enu[2],
            self.origin_ecef[1] + r[0][1] * enu[0] + r[1][1] * enu[1] + r[2][1] * enu[2],
            self.origin_ecef[2] + r[0][2] * enu[0] + r[1][2] * enu[1] + r[2][2] * enu[2],
        ];
        geodetic_from_ecef(p)
    }

    /// Twin-frame horizontal coordinates `[east_m, north_m]` of a WGS84 point.
    pub fn enu_from_wgs84(&self, ll: LatLon) -> [f64; 2] {
        let p = self.enu3_from_geodetic(ll, 0.0);
        [p[0], p[1]]
    }

    /// The WGS84 point whose twin-frame horizontal coordinates are `en`: the foot on the
    /// ellipsoid of the tangent-plane normal through `(east, north)`.
    pub fn wgs84_from_enu(&self, en: [f64; 2]) -> LatLon {
        // Solve for the up component u such that the point lies on the ellipsoid (h = 0).
        // h(u) has slope ~1, so a few Newton steps converge to nanometres.
        let mut u = -(en[0] * en[0] + en[1] * en[1]) / (2.0 * WGS84_A);
        let mut ll = self.origin;
        for _ in 0..5 {
            let (p, h) = self.geodetic_from_enu3([en[0], en[1], u]);
            ll = p;
            if h.abs() < 1e-9 {
                break;
            }
            u -= h;
        }
        ll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const YEOUIDO: LatLon = LatLon::new(37.5250, 126.9250);

    #[test]
    fn origin_maps_to_zero() {
        let f = LocalFrame::new(YEOUIDO);
        let p = f.enu_from_wgs84(YEOUIDO);
        assert!(p[0].abs() < 1e-9 && p[1].abs() < 1e-9);
    }

    #[test]
    fn one_millidegree_north_is_about_111_m() {
        let f = LocalFrame::new(YEOUIDO);
        let p = f.enu_from_wgs84(LatLon::new(37.526, 126.925));
        // Meridional radius at 37.5 deg: 6.3597e6 m -> 1e-3 deg = 110.996 m.
        assert!((p[1] - 110.996).abs() < 0.01, "{p:?}");
        assert!(p[0].abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn wgs84_enu_round_trip_sub_millimetre(dlat in -0.2f64..0.2, dlon in -0.2f64..0.2) {
            let f = LocalFrame::new(YEOUIDO);
            let ll = LatLon::new(YEOUIDO.lat_deg + dlat, YEOUIDO.lon_deg + dlon);
            let en = f.enu_from_wgs84(ll);
            let back = f.wgs84_from_enu(en);
            let again = f.enu_from_wgs84(back);
            prop_assert!((again[0] - en[0]).abs() < 1e-6 && (again[1] - en[1]).abs() < 1e-6);
            prop_assert!((back.lat_deg - ll.lat_deg).abs() < 1e-9 && (back.lon_deg - ll.lon_deg).abs() < 1e-9);
        }

        #[test]
        fn ecef_round_trip(lat in -89.0f64..89.0, lon in -180.0f64..180.0, h in -500.0f64..9000.0) {
            let (ll, h2) = geodetic_from_ecef(ecef_from_geodetic(LatLon::new(lat, lon), h));
            prop_assert!((ll.lat_deg - lat).abs() < 1e-10);
            prop_assert!((ll.lon_deg - lon).abs() < 1e-10);
            prop_assert!((h2 - h).abs() < 1e-6);
        }
    }
}
