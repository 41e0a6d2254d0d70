//! Coordinate reference systems that users' data comes in, and the conversions between
//! them and WGS84.
//!
//! Transverse Mercator is computed with Krüger's series to sixth order in the third
//! flattening (Karney 2011, "Transverse Mercator with an accuracy of a few nanometers"),
//! which is exact to well under a millimetre within 4,000 km of the central meridian.
//! Korea 2000 (EPSG:5186, 5179) is realised on GRS80 and coincides with WGS84 to
//! centimetres (PROJ uses a null datum shift), so only the ellipsoid differs.

use crate::{CoreError, LatLon};
use serde::{Deserialize, Serialize};

const GRS80_F: f64 = 1.0 / 298.257_222_101;

/// A supported coordinate reference system, named by its EPSG code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Crs {
    /// EPSG:4326, WGS84 geographic; coordinates are (longitude, latitude) in degrees.
    Wgs84,
    /// EPSG:5186, Korea 2000 / Central Belt 2010 (metres).
    Korea2000CentralBelt2010,
    /// EPSG:5179, Korea 2000 / Unified CS, "UTM-K" (metres).
    Korea2000Unified,
    /// EPSG:32652, WGS 84 / UTM zone 52N (metres).
    Utm52N,
}

impl Crs {
    pub const ALL: [Crs; 4] = [Crs::Wgs84, Crs::Korea2000CentralBelt2010, Crs::Korea2000Unified, Crs::Utm52N];

    pub fn from_epsg(code: u32) -> Result<Self, CoreError> {
        match code {
            4326 => Ok(Crs::Wgs84),
            5186 => Ok(Crs::Korea2000CentralBelt2010),
            5179 => Ok(Crs::Korea2000Unified),
            32652 => Ok(Crs::Utm52N),
            other => Err(CoreError::UnsupportedCrs(other)),
        }
    }

    /// Parses `EPSG:5186`, `epsg:5186` or `5186`.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let t = s.trim();
        let code = t.strip_prefix("EPSG:").or_else(|| t.strip_prefix("epsg:")).unwrap_or(t);
        code.parse::<u32>()
            .map_err(|_| CoreError::InvalidCoordinate(format!("not an EPSG code: {s:?}")))
            .and_then(Crs::from_epsg)
    }

    pub fn epsg(self) -> u32 {
        match self {
            Crs::Wgs84 => 4326,
            Crs::Korea2000CentralBelt2010 => 5186,
            Crs::Korea2000Unified => 5179,
            Crs::Utm52N => 32652,
        }
    }

    fn tm(self) -> Option<TransverseMercator> {
        match self {
            Crs::Wgs84 => None,
            Crs::Korea2000CentralBelt2010 => {
                Some(TransverseMercator::new(GRS80_F, 38.0, 127.0, 1.0, 200_000.0, 600_000.0))
            }
            Crs::Korea2000Unified => {
                Some(TransverseMercator::new(GRS80_F, 38.0, 127.5, 0.9996, 1_000_000.0, 2_000_000.0))
            }
            Crs::Utm52N => Some(TransverseMercator::new(crate::frame::WGS84_F, 0.0, 129.0, 0.9996, 500_000.0, 0.0)),
        }
    }

    /// WGS84 point of a coordinate pair in this CRS: `(x, y)` is `(lon, lat)` for
    /// EPSG:4326 and `(easting, northing)` otherwise.
    pub fn to_wgs84(self, xy: [f64; 2]) -> Result<LatLon, CoreError> {
        let ll = match self.tm() {
            None => LatLon::new(xy[1], xy[0]),
            Some(tm) => tm.inverse(xy[0], xy[1]),
        };
        if ll.is_valid() {
            Ok(ll)
        } else {
            Err(CoreError::InvalidCoordinate(format!("{xy:?} in EPSG:{}", self.epsg())))
        }
    }

    /// Coordinate pair in this CRS of a WGS84 point (see [`Crs::to_wgs84`] for the order).
    pub fn from_wgs84(self, ll: LatLon) -> [f64; 2] {
        match self.tm() {
            None => [ll.lon_deg, ll.lat_deg],
            Some(tm) => tm.forward(ll),
        }
    }
}

impl std::fmt::Display for Crs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EPSG:{}", self.epsg())
    }
}

/// A transverse Mercator projection on an ellipsoid with `a` = 6,378,137 m.
#[derive(Clone, Copy, Debug)]
pub struct TransverseMercator {
    e: f64,
    lon0_rad: f64,
    k0: f64,
    false_easting_m: f64,
    false_northing_m: f64,
    /// Rectifying radius A.
    a_rect: f64,
    alpha: [f64; 6],
    beta: [f64; 6],
    /// k0 * A * xi at the latitude of origin on the central meridian.
    y0_m: f64,
}

impl TransverseMercator {
    pub fn new(f: f64, lat0_deg: f64, lon0_deg: f64, k0: f64, false_easting_m: f64, false_northing_m: f64) -> Self {
        let a = crate::frame::WGS84_A;
        let n = f / (2.0 - f);
        let (n2, n3) = (n * n, n * n * n);
        let (n4, n5, n6) = (n3 * n, n3 * n2, n3 * n3);
        let a_rect = a / (1.0 + n) * (1.0 + n2 / 4.0 + n4 / 64.0 + n6 / 256.0);
        let alpha = [
            n / 2.0 - 2.0 * n2 / 3.0 + 5.0 * n3 / 16.0 + 41.0 * n4 / 180.0 - 127.0 * n5 / 288.0 + 7891.0 * n6 / 37800.0,
            13.0 * n2 / 48.0 - 3.0 * n3 / 5.0 + 557.0 * n4 / 1440.0 + 281.0 * n5 / 630.0
                - 1_983_433.0 * n6 / 1_935_360.0,
            61.0 * n3 / 240.0 - 103.0 * n4 / 140.0 + 15061.0 * n5 / 26880.0 + 167_603.0 * n6 / 181_440.0,
            49561.0 * n4 / 161_280.0 - 179.0 * n5 / 168.0 + 6_601_661.0 * n6 / 7_257_600.0,
            34729.0 * n5 / 80640.0 - 3_418_889.0 * n6 / 1_995_840.0,
            212_378_941.0 * n6 / 319_334_400.0,
        ];
        let beta = [
            n / 2.0 - 2.0 * n2 / 3.0 + 37.0 * n3 / 96.0 - n4 / 360.0 - 81.0 * n5 / 512.0 + 96199.0 * n6 / 604_800.0,
            n2 / 48.0 + n3 / 15.0 - 437.0 * n4 / 1440.0 + 46.0 * n5 / 105.0 - 1_118_711.0 * n6 / 3_870_720.0,
            17.0 * n3 / 480.0 - 37.0 * n4 / 840.0 - 209.0 * n5 / 4480.0 + 5569.0 * n6 / 90720.0,
            4397.0 * n4 / 161_280.0 - 11.0 * n5 / 504.0 - 830_251.0 * n6 / 7_257_600.0,
            4583.0 * n5 / 161_280.0 - 108_847.0 * n6 / 3_991_680.0,
            20_648_693.0 * n6 / 638_668_800.0,
        ];
        let mut tm = Self {
            e: (f * (2.0 - f)).sqrt(),
            lon0_rad: lon0_deg.to_radians(),
            k0,
            false_easting_m,
            false_northing_m,
            a_rect,
            alpha,
            beta,
            y0_m: 0.0,
        };
        let (xi0, _) = tm.xi_eta(lat0_deg.to_radians(), 0.0);
        tm.y0_m = k0 * a_rect * xi0;
        tm
    }

    fn tau_prime(&self, tau: f64) -> f64 {
        let sigma = (self.e * (self.e * tau / (1.0 + tau * tau).sqrt()).atanh()).sinh();
        tau * (1.0 + sigma * sigma).sqrt() - sigma * (1.0 + tau * tau).sqrt()
    }

    fn xi_eta(&self, lat_rad: f64, dlon_rad: f64) -> (f64, f64) {
        let tp = self.tau_prime(lat_rad.tan());
        let xi_p = tp.atan2(dlon_rad.cos());
        let eta_p = (dlon_rad.sin() / (tp * tp + dlon_rad.cos().powi(2)).sqrt()).asinh();
        let mut xi = xi_p;
        let mut eta = eta_p;
        for (j, a) in self.alpha.iter().enumerate() {
            let k = 2.0 * (j as f64 + 1.0);
            xi += a * (k * xi_p).sin() * (k * eta_p).cosh();
            eta += a * (k * xi_p).cos() * (k * eta_p).sinh();
        }
        (xi, eta)
    }

    /// `[easting, northing]` in metres.
    pub fn forward(&self, ll: LatLon) -> [f64; 2] {
        let dlon = ll.lon_deg.to_radians() - self.lon0_rad;
        let (xi, eta) = self.xi_eta(ll.lat_deg.to_radians(), dlon);
        [
            self.false_easting_m + self.k0 * self.a_rect * eta,
            self.false_northing_m + self.k0 * self.a_rect * xi - self.y0_m,
        ]
    }

    pub fn inverse(&self, easting_m: f64, northing_m: f64) -> LatLon {
        let xi = (northing_m - self.false_northing_m + self.y0_m) / (self.k0 * self.a_rect);
        let eta = (easting_m - self.false_easting_m) / (self.k0 * self.a_rect);
        let mut xi_p = xi;
        let mut eta_p = eta;
        for (j, b) in self.beta.iter().enumerate() {
            let k = 2.0 * (j as f64 + 1.0);
            xi_p -= b * (k * xi).sin() * (k * eta).cosh();
            eta_p -= b * (k * xi).cos() * (k * eta).sinh();
        }
        let tp = xi_p.sin() / (eta_p.sinh().powi(2) + xi_p.cos().powi(2)).sqrt();
        let dlon = eta_p.sinh().atan2(xi_p.cos());
        // Newton's method for tau from tau' (Karney 2011, eqs. 19-21).
        let e2m = 1.0 - self.e * self.e;
        let mut tau = tp;
        for _ in 0..6 {
            let tpi = self.tau_prime(tau);
            let dtau =
                (tp - tpi) / (1.0 + tpi * tpi).sqrt() * (1.0 + e2m * tau * tau) / (e2m * (1.0 + tau * tau).sqrt());
            tau += dtau;
            if dtau.abs() < 1e-14 {
                break;
            }
        }
        LatLon::new(tau.atan().to_degrees(), (self.lon0_rad + dlon).to_degrees())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference values computed with PROJ 9 (pyproj `Transformer.from_crs("EPSG:4326", ...)`).
    #[test]
    fn matches_proj_reference_points() {
        let cases: &[(Crs, LatLon, [f64; 2])] = &REFERENCE;
        for (crs, ll, expected) in cases {
            let got = crs.from_wgs84(*ll);
            assert!(
                (got[0] - expected[0]).abs() < 1e-3 && (got[1] - expected[1]).abs() < 1e-3,
                "{crs}: {ll:?} -> {got:?}, PROJ says {expected:?}"
            );
        }
    }

    pub(crate) const REFERENCE: [(Crs, LatLon, [f64; 2]); 15] = [
        (Crs::Korea2000CentralBelt2010, LatLon::new(37.525, 126.925), [193370.3029, 547281.4483]),
        (Crs::Korea2000CentralBelt2010, LatLon::new(37.512, 127.1), [208841.1303, 545840.6674]),
        (Crs::Korea2000CentralBelt2010, LatLon::new(38.0, 127.0), [200000.0000, 600000.0000]),
        (Crs::Korea2000CentralBelt2010, LatLon::new(35.1796, 129.0756), [389076.8036, 288993.7560]),
        (Crs::Korea2000CentralBelt2010, LatLon::new(33.4996, 126.5312), [156437.5196, 100758.4815]),
        (Crs::Korea2000Unified, LatLon::new(37.525, 126.925), [949192.4346, 1947455.1846]),
        (Crs::Korea2000Unified, LatLon::new(37.512, 127.1), [964649.5542, 1945932.7750]),
        (Crs::Korea2000Unified, LatLon::new(38.0, 127.0), [956101.1997, 2000117.9284]),
        (Crs::Korea2000Unified, LatLon::new(35.1796, 129.0756), [1143467.3797, 1688281.9821]),
        (Crs::Korea2000Unified, LatLon::new(33.4996, 126.5312), [910010.5457, 1501279.7889]),
        (Crs::Utm52N, LatLon::new(37.525, 126.925), [316641.3212, 4155137.7885]),
        (Crs::Utm52N, LatLon::new(37.512, 127.1), [332077.7075, 4153368.4196]),
        (Crs::Utm52N, LatLon::new(38.0, 127.0), [324396.6292, 4207702.3675]),
        (Crs::Utm52N, LatLon::new(35.1796, 129.0756), [506883.5183, 3892962.9336]),
        (Crs::Utm52N, LatLon::new(33.4996, 126.5312), [270655.5828, 3709403.0251]),
    ];

    #[test]
    fn parses_epsg_codes() {
        assert_eq!(Crs::parse("EPSG:5186").unwrap(), Crs::Korea2000CentralBelt2010);
        assert_eq!(Crs::parse("5179").unwrap(), Crs::Korea2000Unified);
        assert!(matches!(Crs::parse("EPSG:3857"), Err(CoreError::UnsupportedCrs(3857))));
        assert!(Crs::parse("banana").is_err());
    }

    #[test]
    fn origin_of_central_belt_is_false_origin() {
        let p = Crs::Korea2000CentralBelt2010.from_wgs84(LatLon::new(38.0, 127.0));
        assert!((p[0] - 200_000.0).abs() < 1e-6 && (p[1] - 600_000.0).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn round_trips_within_a_millimetre(lat in 33.0f64..39.0, lon in 124.0f64..132.0, which in 1usize..4) {
            let crs = Crs::ALL[which];
            let xy = crs.from_wgs84(LatLon::new(lat, lon));
            let back = crs.to_wgs84(xy).unwrap();
            let xy2 = crs.from_wgs84(back);
            prop_assert!((xy2[0] - xy[0]).abs() < 1e-3 && (xy2[1] - xy[1]).abs() < 1e-3);
            // 1 mm is about 9e-9 degrees.
            prop_assert!((back.lat_deg - lat).abs() < 9e-9 && (back.lon_deg - lon).abs() < 9e-9);
        }
    }
}
