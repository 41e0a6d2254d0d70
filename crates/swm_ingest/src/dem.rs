//! Digital elevation models: GeoTIFF and SRTM `.hgt`, read in pure Rust.

use crate::IngestError;
use std::path::Path;
use swm_core::{Crs, LatLon};

/// A north-up elevation raster in a supported CRS.
#[derive(Clone, Debug, PartialEq)]
pub struct Dem {
    /// Where it came from (file name), for reports and errors.
    pub source: String,
    pub crs: Crs,
    /// CRS coordinates of the *centre* of pixel (0, 0) (top-left).
    pub origin: [f64; 2],
    /// Pixel size in CRS units: `[dx, dy]`, `dy` negative for north-up rasters.
    pub pixel_size: [f64; 2],
    pub width: usize,
    pub height: usize,
    /// Row-major elevations in metres above sea level, top row first.
    pub elevation_m: Vec<f32>,
    pub nodata: Option<f32>,
}

impl Dem {
    /// Reads a GeoTIFF (`.tif`, `.tiff`) or SRTM (`.hgt`) DEM.
    pub fn read(path: &Path) -> Result<Dem, IngestError> {
        Err(IngestError::UnknownFormat { path: path.to_path_buf() })
    }

    /// Elevation at a WGS84 point (bilinear), `None` outside the raster or on no-data.
    pub fn elevation_at(&self, _ll: LatLon) -> Option<f64> {
        None
    }
}
