//! Digital elevation models: GeoTIFF and SRTM `.hgt`, read in pure Rust (and, with the
//! `gdal` feature, any raster GDAL reads).
//!
//! A [`Dem`] keeps the raster in its own CRS; [`Dem::elevation_at`] projects the query
//! point into it and interpolates bilinearly. [`to_terrain_grid`] resamples one or more
//! DEMs onto a regular grid in the twin frame ([`Terrain::Grid`]).

use crate::IngestError;
use std::path::Path;
use swm_core::{Crs, LatLon, LocalFrame};
use swm_twin::Terrain;

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

/// Metres per degree of latitude (mean), for resolution estimates only.
const M_PER_DEG_LAT: f64 = 111_320.0;

impl Dem {
    /// Reads a GeoTIFF (`.tif`, `.tiff`) or SRTM (`.hgt`) DEM; with the `gdal` feature,
    /// any other raster GDAL reads (`.asc`, `.img`, `.vrt`...).
    pub fn read(path: &Path) -> Result<Dem, IngestError> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
        if name.ends_with(".tif") || name.ends_with(".tiff") {
            read_geotiff(path)
        } else if name.ends_with(".hgt") {
            read_hgt(path)
        } else {
            #[cfg(feature = "gdal")]
            {
                crate::gdal_source::read_raster_dem(path)
            }
            #[cfg(not(feature = "gdal"))]
            Err(IngestError::UnknownFormat { path: path.to_path_buf() })
        }
    }

    /// True when `z` is a real elevation (not no-data, not NaN).
    fn valid(&self, z: f32) -> bool {
        z.is_finite() && self.nodata.is_none_or(|nd| z != nd)
    }

    fn sample(&self, i: usize, j: usize) -> Option<f32> {
        let z = *self.elevation_m.get(j * self.width + i)?;
        self.valid(z).then_some(z)
    }

    /// Elevation at a WGS84 point (bilinear), `None` outside the raster or on no-data.
    ///
    /// The raster covers its pixels' full area (half a pixel beyond the outer pixel
    /// centres). Where some of the four neighbours are no-data, the valid ones are
    /// weighted; where the nearest pixel is no-data, there is no elevation.
    pub fn elevation_at(&self, ll: LatLon) -> Option<f64> {
        if self.width == 0 || self.height == 0 || !ll.is_valid() {
            return None;
        }
        let xy = self.crs.from_wgs84(ll);
        let fx = (xy[0] - self.origin[0]) / self.pixel_size[0];
        let fy = (xy[1] - self.origin[1]) / self.pixel_size[1];
        let (w, h) = (self.width as f64, self.height as f64);
        if !(fx >= -0.5 && fx <= w - 0.5 && fy >= -0.5 && fy <= h - 0.5) {
            return None;
        }
        let fx = fx.clamp(0.0, w - 1.0);
        let fy = fy.clamp(0.0, h - 1.0);
        let nearest = (fx.round() as usize, fy.round() as usize);
        self.sample(nearest.0, nearest.1)?;
        let (i0, j0) = (fx.floor() as usize, fy.floor() as usize);
        let (i1, j1) = ((i0 + 1).min(self.width - 1), (j0 + 1).min(self.height - 1));
        let (tx, ty) = (fx - i0 as f64, fy - j0 as f64);
        let mut sum = 0.0;
        let mut weight = 0.0;
        for (i, j, wgt) in
            [(i0, j0, (1.0 - tx) * (1.0 - ty)), (i1, j0, tx * (1.0 - ty)), (i0, j1, (1.0 - tx) * ty), (i1, j1, tx * ty)]
        {
            if wgt > 0.0
                && let Some(z) = self.sample(i, j)
            {
                sum += wgt * z as f64;
                weight += wgt;
            }
        }
        (weight > 0.0).then(|| sum / weight)
    }

    /// The size of a pixel on the ground in metres (the larger of its two sides).
    pub fn resolution_m(&self) -> f64 {
        let [dx, dy] = self.pixel_size.map(f64::abs);
        match self.crs {
            Crs::Wgs84 => {
                let lat_deg = self.origin[1] + self.pixel_size[1] * (self.height as f64 / 2.0);
                let cos = lat_deg.to_radians().cos().abs().max(0.01);
                (dx * M_PER_DEG_LAT * cos).max(dy * M_PER_DEG_LAT)
            }
            _ => dx.max(dy),
        }
    }

    /// `[west, south, east, north]` of the area covered, in the DEM's CRS.
    pub fn bounds(&self) -> [f64; 4] {
        let x0 = self.origin[0] - self.pixel_size[0] / 2.0;
        let x1 = x0 + self.pixel_size[0] * self.width as f64;
        let y0 = self.origin[1] - self.pixel_size[1] / 2.0;
        let y1 = y0 + self.pixel_size[1] * self.height as f64;
        [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)]
    }

    /// Checks the invariants every reader guarantees.
    pub(crate) fn validated(self, path: &Path) -> Result<Dem, IngestError> {
        let bad = |m: String| IngestError::parse(path, "georeferencing", m);
        if self.width == 0 || self.height == 0 {
            return Err(IngestError::parse(path, "raster", "the raster has no pixels"));
        }
        if self.elevation_m.len() != self.width * self.height {
            return Err(IngestError::parse(
                path,
                "raster",
                format!("{} samples for {}x{} pixels", self.elevation_m.len(), self.width, self.height),
            ));
        }
        if !self.pixel_size.iter().all(|d| d.is_finite() && *d != 0.0) {
            return Err(bad(format!("pixel size {:?} must be finite and non-zero", self.pixel_size)));
        }
        if !self.origin.iter().all(|o| o.is_finite()) {
            return Err(bad(format!("origin {:?} is not finite", self.origin)));
        }
        Ok(self)
    }
}

/// A sensible twin terrain cell size for these DEMs: the finest DEM's resolution,
/// clamped to 5..50 m (25 m without DEMs).
pub fn terrain_cell_m(dems: &[Dem]) -> f64 {
    dems.iter()
        .map(Dem::resolution_m)
        .filter(|r| r.is_finite() && *r > 0.0)
        .fold(None, |a: Option<f64>, r| Some(a.map_or(r, |a| a.min(r))))
        .unwrap_or(25.0)
        .clamp(5.0, 50.0)
}

/// The most samples [`to_terrain_grid`] makes; coarser cells are used beyond it.
pub const MAX_TERRAIN_SAMPLES: usize = 16 * 1024 * 1024;

/// Resamples `dems` onto a regular grid in the twin frame covering
/// `bbox_m = [min_x, min_y, max_x, max_y]` with `cell_m` spacing (enlarged if the grid
/// would exceed [`MAX_TERRAIN_SAMPLES`]). Each sample takes the first DEM that has data
/// there; samples no DEM covers take the value of the nearest covered sample. `None`
/// when no DEM covers any sample (or the box or cell size is invalid).
pub fn to_terrain_grid(dems: &[Dem], frame: &LocalFrame, bbox_m: [f64; 4], cell_m: f64) -> Option<Terrain> {
    if dems.is_empty()
        || !bbox_m.iter().all(|v| v.is_finite())
        || bbox_m[2] < bbox_m[0]
        || bbox_m[3] < bbox_m[1]
        || !(cell_m.is_finite() && cell_m > 0.0)
    {
        return None;
    }
    let (span_x, span_y) = (bbox_m[2] - bbox_m[0], bbox_m[3] - bbox_m[1]);
    let mut cell_m = cell_m;
    let count = |span: f64, cell: f64| ((span / cell).ceil() as usize).saturating_add(1);
    let dims = |cell: f64| (count(span_x, cell), count(span_y, cell));
    let (mut nx, mut ny) = dims(cell_m);
    while nx.saturating_mul(ny) > MAX_TERRAIN_SAMPLES {
        cell_m *= 1.5;
        (nx, ny) = dims(cell_m);
    }
    let origin_m = [bbox_m[0], bbox_m[1]];
    let mut used = vec![false; dems.len()];
    let mut grid: Vec<Option<f32>> = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            let p = [origin_m[0] + i as f64 * cell_m, origin_m[1] + j as f64 * cell_m];
            let ll = frame.wgs84_from_enu(p);
            let z = dems.iter().enumerate().find_map(|(k, d)| d.elevation_at(ll).map(|z| (k, z)));
            grid.push(z.map(|(k, z)| {
                used[k] = true;
                z as f32
            }));
        }
    }
    let elevation_m = fill_from_nearest(&grid, nx, ny)?;
    let source = dems.iter().zip(&used).filter(|(_, u)| **u).map(|(d, _)| d.source.as_str()).collect::<Vec<_>>();
    Some(Terrain::Grid {
        origin_m,
        cell_m,
        nx: u32::try_from(nx).ok()?,
        ny: u32::try_from(ny).ok()?,
        elevation_m,
        source: source.join(", "),
    })
}

/// Fills `None` cells with the value of the nearest filled cell (breadth-first over the
/// 8-neighbourhood, i.e. by chessboard distance). `None` when no cell is filled.
fn fill_from_nearest(grid: &[Option<f32>], nx: usize, ny: usize) -> Option<Vec<f32>> {
    let mut out: Vec<f32> = grid.iter().map(|z| z.unwrap_or(f32::NAN)).collect();
    let mut queue: std::collections::VecDeque<usize> =
        grid.iter().enumerate().filter(|(_, z)| z.is_some()).map(|(k, _)| k).collect();
    if queue.is_empty() {
        return None;
    }
    let mut done: Vec<bool> = grid.iter().map(Option::is_some).collect();
    while let Some(k) = queue.pop_front() {
        let (i, j) = ((k % nx) as isize, (k / nx) as isize);
        for (di, dj) in [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, -1), (-1, 1), (1, 1)] {
            let (a, b) = (i + di, j + dj);
            if a < 0 || b < 0 || a >= nx as isize || b >= ny as isize {
                continue;
            }
            let n = b as usize * nx + a as usize;
            if !done[n] {
                done[n] = true;
                out[n] = out[k];
                queue.push_back(n);
            }
        }
    }
    Some(out)
}

fn file_label(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

// ---------------------------------------------------------------------------------------
// SRTM .hgt
// ---------------------------------------------------------------------------------------

/// The south-west corner `(lat_deg, lon_deg)` from an SRTM tile name like `N37E126.hgt`.
fn hgt_corner(name: &str) -> Option<(f64, f64)> {
    let b = name.as_bytes();
    if b.len() < 7 {
        return None;
    }
    let lat_sign = match b[0].to_ascii_uppercase() {
        b'N' => 1.0,
        b'S' => -1.0,
        _ => return None,
    };
    let lon_sign = match b[3].to_ascii_uppercase() {
        b'E' => 1.0,
        b'W' => -1.0,
        _ => return None,
    };
    let digits = |s: &[u8]| -> Option<f64> {
        s.iter().all(u8::is_ascii_digit).then(|| std::str::from_utf8(s).ok()?.parse::<f64>().ok())?
    };
    let lat = digits(&b[1..3])?;
    let lon = digits(&b[4..7])?;
    (lat <= 89.0 && lon <= 180.0).then_some((lat_sign * lat, lon_sign * lon))
}

/// Reads an SRTM `.hgt` tile: 1201² (3") or 3601² (1") big-endian `i16`, -32768 = void.
pub fn read_hgt(path: &Path) -> Result<Dem, IngestError> {
    let name = file_label(path);
    let Some((lat_deg, lon_deg)) = hgt_corner(&name) else {
        return Err(IngestError::parse(
            path,
            "file name",
            "an SRTM tile's name must start with its south-west corner, like N37E126.hgt",
        ));
    };
    let bytes = std::fs::read(path).map_err(|e| IngestError::io(path, e))?;
    hgt_from_bytes(&bytes, path, lat_deg, lon_deg)
}

fn hgt_from_bytes(bytes: &[u8], path: &Path, lat_deg: f64, lon_deg: f64) -> Result<Dem, IngestError> {
    let n = match bytes.len() {
        l if l == 1201 * 1201 * 2 => 1201,
        l if l == 3601 * 3601 * 2 => 3601,
        l => {
            return Err(IngestError::parse(
                path,
                "file size",
                format!(
                    "{l} bytes; an SRTM tile has {} (1201x1201, 3\") or {} (3601x3601, 1\")",
                    1201 * 1201 * 2,
                    3601 * 3601 * 2
                ),
            ));
        }
    };
    let elevation_m: Vec<f32> = bytes.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]]) as f32).collect();
    let step = 1.0 / (n - 1) as f64;
    Dem {
        source: file_label(path),
        crs: Crs::Wgs84,
        // Samples lie on whole-degree lines: the first row is the northern edge.
        origin: [lon_deg, lat_deg + 1.0],
        pixel_size: [step, -step],
        width: n,
        height: n,
        elevation_m,
        nodata: Some(-32768.0),
    }
    .validated(path)
}

// ---------------------------------------------------------------------------------------
// GeoTIFF
// ---------------------------------------------------------------------------------------

mod geokey {
    pub const MODEL_TYPE: u16 = 1024;
    pub const RASTER_TYPE: u16 = 1025;
    pub const GEOGRAPHIC_TYPE: u16 = 2048;
    pub const PROJECTED_CS_TYPE: u16 = 3072;
    pub const USER_DEFINED: u16 = 32767;
    pub const PIXEL_IS_POINT: u16 = 2;
}

/// The GeoKeys we use, from GeoKeyDirectoryTag (34735).
#[derive(Debug, Default)]
struct GeoKeys {
    model_type: Option<u16>,
    raster_type: Option<u16>,
    geographic_type: Option<u16>,
    projected_type: Option<u16>,
}

fn parse_geokeys(dir: &[u16]) -> Result<GeoKeys, String> {
    if dir.len() < 4 {
        return Err(format!("GeoKeyDirectoryTag has {} values; the header alone has 4", dir.len()));
    }
    let count = dir[3] as usize;
    if dir.len() < 4 + 4 * count {
        return Err(format!("GeoKeyDirectoryTag announces {count} keys but holds {} values", dir.len()));
    }
    let mut keys = GeoKeys::default();
    for k in dir[4..4 + 4 * count].chunks_exact(4) {
        let (id, location, value) = (k[0], k[1], k[3]);
        // Only SHORT values stored in the directory itself (location 0) matter here.
        if location != 0 {
            continue;
        }
        match id {
            geokey::MODEL_TYPE => keys.model_type = Some(value),
            geokey::RASTER_TYPE => keys.raster_type = Some(value),
            geokey::GEOGRAPHIC_TYPE => keys.geographic_type = Some(value),
            geokey::PROJECTED_CS_TYPE => keys.projected_type = Some(value),
            _ => {}
        }
    }
    Ok(keys)
}

/// The CRS the GeoKeys name, or a description of what was found.
fn crs_from_geokeys(keys: &GeoKeys) -> Result<Crs, String> {
    let projected = keys.model_type == Some(1) || (keys.model_type.is_none() && keys.projected_type.is_some());
    let code = if projected {
        match keys.projected_type {
            Some(geokey::USER_DEFINED) => {
                return Err("a user-defined projection (ProjectedCSTypeGeoKey 3072 = 32767)".into());
            }
            Some(c) => c,
            None => return Err("a projected model without ProjectedCSTypeGeoKey (3072)".into()),
        }
    } else if keys.model_type.is_none_or(|m| m == 2) {
        match keys.geographic_type {
            Some(geokey::USER_DEFINED) => {
                return Err("a user-defined geographic CRS (GeographicTypeGeoKey 2048 = 32767)".into());
            }
            // Korea 2000 geographic: GRS80 on ITRF2000, WGS84 to centimetres.
            Some(4737) => 4326,
            Some(c) => c,
            None => return Err("no ProjectedCSTypeGeoKey (3072) or GeographicTypeGeoKey (2048)".into()),
        }
    } else {
        return Err(format!("GTModelTypeGeoKey (1024) = {:?}, neither projected nor geographic", keys.model_type));
    };
    Crs::from_epsg(code as u32).map_err(|_| format!("EPSG:{code}"))
}

fn tiff_err(path: &Path, location: &str, e: tiff::TiffError) -> IngestError {
    match e {
        tiff::TiffError::IoError(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => IngestError::io(path, io),
        tiff::TiffError::IoError(_) => IngestError::parse(path, location, "the file is truncated"),
        other => IngestError::parse(path, location, other.to_string()),
    }
}

/// The largest raster (in bytes of 64-bit samples) a GeoTIFF DEM may decode to: 4 GiB.
const MAX_DEM_BYTES: usize = 4 << 30;

/// Reads a single-band GeoTIFF DEM (integer or floating-point samples, strips or tiles).
pub fn read_geotiff(path: &Path) -> Result<Dem, IngestError> {
    let file = std::fs::File::open(path).map_err(|e| IngestError::io(path, e))?;
    geotiff_from_reader(std::io::BufReader::new(file), path)
}

fn geotiff_from_reader<R: std::io::Read + std::io::Seek>(reader: R, path: &Path) -> Result<Dem, IngestError> {
    use tiff::decoder::{Decoder, DecodingResult, Limits};
    use tiff::tags::Tag;
    // Tags are read under the default limits; the image buffer's limit is raised to what
    // the raster needs just before decoding it.
    let mut dec = Decoder::new(reader).map_err(|e| tiff_err(path, "TIFF header", e))?;
    let (width, height) = dec.dimensions().map_err(|e| tiff_err(path, "TIFF directory", e))?;
    let (width, height) = (width as usize, height as usize);
    let samples: u16 =
        dec.find_tag_unsigned(Tag::SamplesPerPixel).map_err(|e| tiff_err(path, "TIFF directory", e))?.unwrap_or(1);
    if samples != 1 {
        return Err(IngestError::parse(
            path,
            "TIFF directory",
            format!("{samples} samples per pixel; a DEM has a single band of elevations"),
        ));
    }

    // Georeferencing.
    let f64s = |dec: &mut Decoder<R>, tag: Tag, name: &str| -> Result<Option<Vec<f64>>, IngestError> {
        match dec.find_tag(tag).map_err(|e| tiff_err(path, name, e))? {
            None => Ok(None),
            Some(v) => v.into_f64_vec().map(Some).map_err(|e| tiff_err(path, name, e)),
        }
    };
    let scale = f64s(&mut dec, Tag::ModelPixelScaleTag, "ModelPixelScaleTag (33550)")?;
    let tiepoint = f64s(&mut dec, Tag::ModelTiepointTag, "ModelTiepointTag (33922)")?;
    let transform = f64s(&mut dec, Tag::ModelTransformationTag, "ModelTransformationTag (34264)")?;
    let geokeys = match dec.find_tag(Tag::GeoKeyDirectoryTag).map_err(|e| tiff_err(path, "GeoKeyDirectoryTag", e))? {
        None => None,
        Some(v) => {
            let dir = v.into_u16_vec().map_err(|e| tiff_err(path, "GeoKeyDirectoryTag (34735)", e))?;
            Some(parse_geokeys(&dir).map_err(|m| IngestError::parse(path, "GeoKeyDirectoryTag (34735)", m))?)
        }
    };
    let Some(geokeys) = geokeys else {
        return Err(IngestError::UnsupportedCrs {
            path: path.to_path_buf(),
            message: "no GeoKeyDirectoryTag (34735): the DEM's coordinate reference system is unknown".into(),
        });
    };
    let crs = crs_from_geokeys(&geokeys).map_err(|found| IngestError::UnsupportedCrs {
        path: path.to_path_buf(),
        message: format!(
            "the DEM's coordinate reference system is {found}; supported: EPSG:4326, 5186, 5179, 32652 \
             (reproject it, e.g. with gdalwarp -t_srs EPSG:5186)"
        ),
    })?;
    // Raster space (i, j) of pixel (0, 0)'s centre: (0.5, 0.5) for PixelIsArea, (0, 0) for PixelIsPoint.
    let centre = if geokeys.raster_type == Some(geokey::PIXEL_IS_POINT) { 0.0 } else { 0.5 };
    let (origin, pixel_size) = match (transform, scale, tiepoint) {
        (Some(m), _, _) => {
            if m.len() < 16 {
                return Err(IngestError::parse(
                    path,
                    "ModelTransformationTag (34264)",
                    format!("{} values; expected 16", m.len()),
                ));
            }
            if m[1] != 0.0 || m[4] != 0.0 {
                return Err(IngestError::parse(
                    path,
                    "ModelTransformationTag (34264)",
                    "the raster is rotated or sheared; only north-up rasters are supported",
                ));
            }
            ([m[3] + m[0] * centre, m[7] + m[5] * centre], [m[0], m[5]])
        }
        (None, Some(s), Some(t)) => {
            if s.len() < 2 || t.len() < 6 {
                return Err(IngestError::parse(
                    path,
                    "ModelPixelScaleTag / ModelTiepointTag",
                    format!("{} scale and {} tiepoint values; expected at least 2 and 6", s.len(), t.len()),
                ));
            }
            let (i, j, x, y) = (t[0], t[1], t[3], t[4]);
            ([x + (centre - i) * s[0], y - (centre - j) * s[1]], [s[0], -s[1]])
        }
        _ => {
            return Err(IngestError::parse(
                path,
                "georeferencing",
                "no ModelPixelScaleTag + ModelTiepointTag or ModelTransformationTag: the raster is not georeferenced",
            ));
        }
    };
    let nodata = match dec.find_tag(Tag::GdalNodata).map_err(|e| tiff_err(path, "GDAL_NODATA (42113)", e))? {
        None => None,
        Some(v) => {
            let s = v.into_string().map_err(|e| tiff_err(path, "GDAL_NODATA (42113)", e))?;
            let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            let parsed =
                s.parse::<f64>().or_else(|_| if s.eq_ignore_ascii_case("nan") { Ok(f64::NAN) } else { Err(()) });
            match parsed {
                Ok(v) => Some(v as f32),
                Err(()) => {
                    return Err(IngestError::parse(path, "GDAL_NODATA (42113)", format!("{s:?} is not a number")));
                }
            }
        }
    };

    let image_bytes = width.saturating_mul(height).saturating_mul(8);
    if image_bytes > MAX_DEM_BYTES {
        return Err(IngestError::parse(
            path,
            "TIFF directory",
            format!("{width}x{height} pixels is too large for one DEM; cut it into tiles (gdal_retile.py)"),
        ));
    }
    let mut limits = Limits::default();
    limits.decoding_buffer_size = limits.decoding_buffer_size.max(image_bytes);
    limits.intermediate_buffer_size = limits.intermediate_buffer_size.max(image_bytes);
    let mut dec = dec.with_limits(limits);
    let data = dec.read_image().map_err(|e| tiff_err(path, "image data", e))?;
    let elevation_m: Vec<f32> = match data {
        DecodingResult::U8(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::I8(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::U16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::I16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::U32(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I32(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::U64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::F16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::F32(v) => v,
        DecodingResult::F64(v) => v.into_iter().map(|x| x as f32).collect(),
    };
    Dem { source: file_label(path), crs, origin, pixel_size, width, height, elevation_m, nodata }.validated(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;
    use tiff::encoder::{TiffEncoder, colortype};
    use tiff::tags::Tag;

    /// A fresh temporary directory for one test.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("swm_ingest_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// GeoTIFF georeferencing for a test file.
    struct Geo {
        epsg: Option<(u16, u16)>, // (key id, code)
        tiepoint_xy: [f64; 2],
        scale: [f64; 2],
        pixel_is_point: bool,
        nodata: Option<&'static str>,
        transform: bool,
    }

    fn geo_4326() -> Geo {
        Geo {
            epsg: Some((geokey::GEOGRAPHIC_TYPE, 4326)),
            tiepoint_xy: [126.9, 37.6],
            scale: [0.01, 0.01],
            pixel_is_point: false,
            nodata: Some("-9999"),
            transform: false,
        }
    }

    fn write_tags<W: std::io::Write + std::io::Seek, K: tiff::encoder::TiffKind>(
        enc: &mut tiff::encoder::DirectoryEncoder<'_, W, K>,
        geo: &Geo,
    ) {
        if geo.transform {
            let m = [
                geo.scale[0],
                0.0,
                0.0,
                geo.tiepoint_xy[0],
                0.0,
                -geo.scale[1],
                0.0,
                geo.tiepoint_xy[1],
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                1.0,
            ];
            enc.write_tag(Tag::ModelTransformationTag, &m[..]).unwrap();
        } else {
            enc.write_tag(Tag::ModelPixelScaleTag, &[geo.scale[0], geo.scale[1], 0.0][..]).unwrap();
            enc.write_tag(Tag::ModelTiepointTag, &[0.0, 0.0, 0.0, geo.tiepoint_xy[0], geo.tiepoint_xy[1], 0.0][..])
                .unwrap();
        }
        if let Some((key, code)) = geo.epsg {
            let model = if key == geokey::PROJECTED_CS_TYPE { 1 } else { 2 };
            let raster = if geo.pixel_is_point { 2 } else { 1 };
            let dir: Vec<u16> = vec![1, 1, 0, 3, 1024, 0, 1, model, 1025, 0, 1, raster, key, 0, 1, code];
            enc.write_tag(Tag::GeoKeyDirectoryTag, &dir[..]).unwrap();
        }
        if let Some(nd) = geo.nodata {
            enc.write_tag(Tag::GdalNodata, nd).unwrap();
        }
    }

    fn write_f32(path: &Path, w: u32, h: u32, data: &[f32], geo: &Geo) {
        let file = std::fs::File::create(path).unwrap();
        let mut tiff = TiffEncoder::new(std::io::BufWriter::new(file)).unwrap();
        let mut image = tiff.new_image::<colortype::Gray32Float>(w, h).unwrap();
        write_tags(image.encoder(), geo);
        image.rows_per_strip(2).unwrap();
        image.write_data(data).unwrap();
    }

    fn write_i16(path: &Path, w: u32, h: u32, data: &[i16], geo: &Geo) {
        let file = std::fs::File::create(path).unwrap();
        let mut tiff = TiffEncoder::new(std::io::BufWriter::new(file)).unwrap();
        let mut image = tiff.new_image::<colortype::GrayI16>(w, h).unwrap();
        write_tags(image.encoder(), geo);
        image.write_data(data).unwrap();
    }

    /// 4x3 ramp: z = 10 * column + 100 * row.
    fn ramp(w: usize, h: usize) -> Vec<f32> {
        (0..h).flat_map(|j| (0..w).map(move |i| (10 * i + 100 * j) as f32)).collect()
    }

    #[test]
    fn geotiff_4326_bilinear_and_nodata() {
        let dir = temp_dir("tif4326");
        let path = dir.join("dem_4326.tif");
        let mut data = ramp(4, 3);
        data[11] = -9999.0; // bottom-right pixel is no-data
        write_f32(&path, 4, 3, &data, &geo_4326());
        let dem = Dem::read(&path).unwrap();
        assert_eq!((dem.width, dem.height, dem.crs), (4, 3, Crs::Wgs84));
        assert_eq!(dem.nodata, Some(-9999.0));
        assert!((dem.origin[0] - 126.905).abs() < 1e-12 && (dem.origin[1] - 37.595).abs() < 1e-12, "{:?}", dem.origin);
        assert_eq!(dem.pixel_size, [0.01, -0.01]);
        // Pixel centres.
        let at = |lat: f64, lon: f64| dem.elevation_at(LatLon::new(lat, lon));
        assert!((at(37.595, 126.905).unwrap() - 0.0).abs() < 1e-6);
        assert!((at(37.585, 126.915).unwrap() - 110.0).abs() < 1e-6);
        // Halfway between columns 1 and 2 of row 0, and between rows 0 and 1.
        assert!((at(37.59, 126.92).unwrap() - 65.0).abs() < 1e-6);
        // Inside the first pixel but outside the centres: clamped.
        assert!((at(37.599, 126.901).unwrap() - 0.0).abs() < 1e-6);
        // Outside.
        assert_eq!(at(37.61, 126.95), None);
        assert_eq!(at(37.55, 126.905), None);
        // No-data pixel centre, and a point whose nearest pixel is valid next to it.
        assert_eq!(at(37.575, 126.935), None);
        let near = at(37.575, 126.9275).unwrap(); // between (2,2)=220 and no-data (3,2)
        assert!((near - 220.0).abs() < 1e-6, "{near}");
        assert!((dem.resolution_m() - 1113.2).abs() < 1.0, "{}", dem.resolution_m());
    }

    #[test]
    fn geotiff_5186_i16_pixel_is_point_and_transform() {
        let dir = temp_dir("tif5186");
        let corner = Crs::Korea2000CentralBelt2010.from_wgs84(LatLon::new(37.52, 126.92));
        let geo = Geo {
            epsg: Some((geokey::PROJECTED_CS_TYPE, 5186)),
            tiepoint_xy: corner,
            scale: [30.0, 30.0],
            pixel_is_point: true,
            nodata: None,
            transform: false,
        };
        let data: Vec<i16> = (0..25).map(|k| k as i16 * 2).collect();
        let path = dir.join("dem_5186.tiff");
        write_i16(&path, 5, 5, &data, &geo);
        let dem = Dem::read(&path).unwrap();
        assert_eq!(dem.crs, Crs::Korea2000CentralBelt2010);
        assert_eq!(dem.origin, corner, "PixelIsPoint: the tie point is pixel (0,0)'s centre");
        assert_eq!(dem.pixel_size, [30.0, -30.0]);
        let ll = Crs::Korea2000CentralBelt2010.to_wgs84([corner[0] + 60.0, corner[1] - 30.0]).unwrap();
        assert!((dem.elevation_at(ll).unwrap() - 14.0).abs() < 1e-6); // pixel (2,1) = 7 * 2
        let ll = Crs::Korea2000CentralBelt2010.to_wgs84([corner[0] + 45.0, corner[1] - 15.0]).unwrap();
        assert!((dem.elevation_at(ll).unwrap() - 8.0).abs() < 1e-6); // mean of pixels (1,0), (2,0), (1,1), (2,1)
        assert!((dem.resolution_m() - 30.0).abs() < 1e-9);

        // The same raster through ModelTransformationTag, PixelIsArea.
        let path = dir.join("dem_5186_transform.tif");
        write_i16(&path, 5, 5, &data, &Geo { transform: true, pixel_is_point: false, ..geo });
        let dem = Dem::read(&path).unwrap();
        assert_eq!(dem.origin, [corner[0] + 15.0, corner[1] - 15.0]);
    }

    #[test]
    fn geotiff_without_known_crs_is_unsupported() {
        let dir = temp_dir("tifcrs");
        for (name, epsg, expect) in [
            ("none.tif", None, "no GeoKeyDirectoryTag"),
            ("mercator.tif", Some((geokey::PROJECTED_CS_TYPE, 3857)), "EPSG:3857"),
            ("user.tif", Some((geokey::PROJECTED_CS_TYPE, 32767)), "user-defined"),
            ("usergeo.tif", Some((geokey::GEOGRAPHIC_TYPE, 32767)), "user-defined"),
        ] {
            let path = dir.join(name);
            write_f32(&path, 2, 2, &[1.0; 4], &Geo { epsg, ..geo_4326() });
            let err = Dem::read(&path).unwrap_err();
            let IngestError::UnsupportedCrs { path: p, message } = &err else { panic!("{name}: {err:?}") };
            assert_eq!(p, &path);
            assert!(message.contains(expect), "{name}: {message}");
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn truncated_and_garbage_tiffs_are_parse_errors() {
        let dir = temp_dir("tiftrunc");
        let path = dir.join("full.tif");
        write_f32(&path, 8, 8, &ramp(8, 8), &geo_4326());
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 10] {
            let p = dir.join(format!("cut{cut}.tif"));
            std::fs::write(&p, &bytes[..cut]).unwrap();
            match Dem::read(&p) {
                Err(IngestError::Parse { path, .. }) => assert_eq!(path, p),
                Err(IngestError::UnsupportedCrs { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        let p = dir.join("garbage.tif");
        std::fs::write(&p, b"this is not a tiff at all").unwrap();
        assert!(matches!(Dem::read(&p), Err(IngestError::Parse { .. })));
        assert!(matches!(Dem::read(&dir.join("missing.tif")), Err(IngestError::Io { .. })));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let dir = temp_dir("tiffuzz");
        let path = dir.join("f.tif");
        write_f32(&path, 4, 4, &ramp(4, 4), &geo_4326());
        let original = std::fs::read(&path).unwrap();
        for round in 0..300 {
            let mut bytes = original.clone();
            for _ in 0..(1 + round % 8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let k = (state as usize) % bytes.len();
                bytes[k] = (state >> 32) as u8;
            }
            let _ = geotiff_from_reader(std::io::Cursor::new(bytes), &path);
        }
    }

    #[test]
    fn srtm_hgt_tile() {
        let dir = temp_dir("hgt");
        let n = 1201usize;
        let mut bytes = Vec::with_capacity(n * n * 2);
        for j in 0..n {
            for i in 0..n {
                let z: i16 = if (i, j) == (600, 600) { -32768 } else { (i as i16) - (j as i16) / 2 };
                bytes.extend_from_slice(&z.to_be_bytes());
            }
        }
        let path = dir.join("N37E126.hgt");
        std::fs::write(&path, &bytes).unwrap();
        let dem = Dem::read(&path).unwrap();
        assert_eq!((dem.width, dem.height, dem.crs), (1201, 1201, Crs::Wgs84));
        // North-west corner sample (0,0) = 0; south-east corner (1200,1200) = 600.
        assert!((dem.elevation_at(LatLon::new(38.0, 126.0)).unwrap() - 0.0).abs() < 1e-6);
        assert!((dem.elevation_at(LatLon::new(37.0, 127.0)).unwrap() - 600.0).abs() < 1e-6);
        // Column 300 (lon 126.25), row 400 (lat 38 - 1/3).
        let z = dem.elevation_at(LatLon::new(38.0 - 400.0 / 1200.0, 126.25)).unwrap();
        assert!((z - 100.0).abs() < 1e-3, "{z}");
        assert_eq!(dem.elevation_at(LatLon::new(37.5, 126.5)), None, "void");
        assert_eq!(dem.elevation_at(LatLon::new(36.5, 126.5)), None, "outside");
        assert!((dem.resolution_m() - 92.8).abs() < 1.0, "{}", dem.resolution_m());

        let south = dir.join("s01w002.hgt");
        std::fs::write(&south, &bytes).unwrap();
        let dem = Dem::read(&south).unwrap();
        assert_eq!(dem.origin, [-2.0, 0.0]);

        let wrong = dir.join("N37E127.hgt");
        std::fs::write(&wrong, &bytes[..1000]).unwrap();
        let err = Dem::read(&wrong).unwrap_err();
        let IngestError::Parse { location, message, .. } = &err else { panic!("{err:?}") };
        assert_eq!(location, "file size");
        assert!(message.contains("1000 bytes"), "{message}");
        let badname = dir.join("tile.hgt");
        std::fs::write(&badname, &bytes).unwrap();
        assert!(matches!(Dem::read(&badname), Err(IngestError::Parse { .. })));
    }

    fn flat_dem(crs: Crs, origin: [f64; 2], pixel: f64, w: usize, h: usize, z: f32) -> Dem {
        Dem {
            source: format!("flat{z}"),
            crs,
            origin,
            pixel_size: [pixel, -pixel],
            width: w,
            height: h,
            elevation_m: vec![z; w * h],
            nodata: Some(-9999.0),
        }
    }

    #[test]
    fn terrain_grid_first_dem_wins_and_holes_are_filled() {
        let origin = LatLon::new(37.5, 127.0);
        let frame = LocalFrame::new(origin);
        let c = Crs::Korea2000CentralBelt2010.from_wgs84(origin);
        // DEM a covers x in [-150, 150] m around the origin at 10 m; DEM b covers more at 50 m.
        let mut a = flat_dem(Crs::Korea2000CentralBelt2010, [c[0] - 145.0, c[1] + 145.0], 10.0, 30, 30, 5.0);
        a.elevation_m[0] = -9999.0; // a hole in `a`, covered by `b`
        let b = flat_dem(Crs::Korea2000CentralBelt2010, [c[0] - 475.0, c[1] + 475.0], 50.0, 20, 20, 9.0);
        let bbox = [-100.0, -100.0, 100.0, 100.0];
        let Some(Terrain::Grid { origin_m, cell_m, nx, ny, elevation_m, source }) =
            to_terrain_grid(&[a.clone(), b.clone()], &frame, bbox, 10.0)
        else {
            panic!("no grid")
        };
        assert_eq!((origin_m, cell_m, nx, ny), ([-100.0, -100.0], 10.0, 21, 21));
        assert!(elevation_m.iter().all(|z| *z == 5.0), "a wins everywhere inside its coverage");
        assert_eq!(source, "flat5");
        // Larger box: b fills the rim a doesn't cover; far outside both, nearest fill.
        let t = to_terrain_grid(&[a.clone(), b.clone()], &frame, [-400.0, -400.0, 800.0, 400.0], 25.0).unwrap();
        assert!((t.elevation_at([0.0, 0.0]) - 5.0).abs() < 1e-6);
        assert!((t.elevation_at([-300.0, 0.0]) - 9.0).abs() < 1e-6);
        assert!((t.elevation_at([790.0, 0.0]) - 9.0).abs() < 1e-6, "filled from nearest");
        let Terrain::Grid { source, .. } = &t else { unreachable!() };
        assert_eq!(source, "flat5, flat9");
        // Nothing covers a box far away.
        assert!(to_terrain_grid(&[a.clone()], &frame, [5e4, 5e4, 6e4, 6e4], 25.0).is_none());
        assert!(to_terrain_grid(&[], &frame, bbox, 25.0).is_none());
        assert!(to_terrain_grid(&[a.clone()], &frame, bbox, 0.0).is_none());
        // Cell size suggestion.
        assert_eq!(terrain_cell_m(&[a.clone(), b]), 10.0);
        assert_eq!(terrain_cell_m(&[]), 25.0);
        let fine = flat_dem(Crs::Utm52N, [0.0, 0.0], 1.0, 2, 2, 0.0);
        assert_eq!(terrain_cell_m(&[fine]), 5.0);
    }

    #[test]
    fn hole_filling_uses_nearest() {
        let g = vec![Some(1.0), None, None, None, None, Some(7.0)];
        assert_eq!(fill_from_nearest(&g, 6, 1).unwrap(), vec![1.0, 1.0, 1.0, 7.0, 7.0, 7.0]);
        assert!(fill_from_nearest(&[None, None], 2, 1).is_none());
    }
}
