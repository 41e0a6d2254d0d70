//! `swm_ingest`: open geodata into a Seoul World Model twin.
//!
//! Readers turn each input into the common OpenStreetMap model ([`osm::OsmData`]) or a
//! DEM ([`dem::Dem`]); [`build::build_twin`] turns that into a [`swm_twin::Twin`] plus a
//! [`Report`] of what was read and what was wrong with it. Bad source *data* (a broken
//! multipolygon, a way with missing nodes) is a warning in the report; a bad *file*
//! (truncated, malformed, wrong types, unknown projection) is an [`IngestError`] that
//! names the file and the place.
//!
//! ```no_run
//! use swm_ingest::{ingest_paths, IngestOptions};
//! let (twin, report) = ingest_paths(&["yeouido.osm.pbf".into()], &IngestOptions::default())?;
//! println!("{} buildings, {} warnings", twin.buildings.len(), report.warnings.len());
//! # Ok::<(), swm_ingest::IngestError>(())
//! ```

pub mod build;
pub mod dem;
#[cfg(feature = "gdal")]
pub mod gdal_source;
pub mod osm;
pub mod osm_pbf;
pub mod osm_xml;
pub mod shared_data;
pub mod vector;

use std::path::{Path, PathBuf};
use swm_core::LatLon;
use swm_twin::Twin;

pub use build::{BuildOptions, build_twin};
pub use dem::Dem;
pub use osm::OsmData;
pub use vector::VectorMapping;

/// Errors that stop an ingest. Each names the file and, where it can, the place in it.
///
/// A variant with a cause returns it from `source()` and leaves it out of its own message:
/// print the chain (anyhow's `{:#}`, or `swm_core::ErrorChain`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is malformed; `location` says where (line and column, byte offset, blob,
    /// feature index...).
    #[error("{path}: {location}: {message}")]
    Parse { path: PathBuf, location: String, message: String },
    #[error("{path}: unknown input format (expected .osm.pbf, .pbf, .osm, .xml, .geojson, .json, .tif, .tiff or .hgt{gdal})", gdal = if cfg!(feature = "gdal") { ", or any format GDAL reads" } else { "; build with --features gdal for other formats" })]
    UnknownFormat { path: PathBuf },
    #[error("{path}: {message}")]
    UnsupportedCrs { path: PathBuf, message: String },
    #[error("the bounding box {bbox:?} (west, south, east, north) is empty or inverted")]
    EmptyBbox { bbox: [f64; 4] },
    #[error("nothing to build: {0}")]
    NothingToBuild(String),
    #[error("{path}: GDAL: {message}")]
    Gdal { path: PathBuf, message: String },
    #[error(transparent)]
    Twin(#[from] swm_twin::TwinError),
}

impl IngestError {
    pub(crate) fn parse(path: &Path, location: impl Into<String>, message: impl Into<String>) -> Self {
        IngestError::Parse { path: path.to_path_buf(), location: location.into(), message: message.into() }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        IngestError::Io { path: path.to_path_buf(), source }
    }
}

/// A problem in the source data that did not stop the build.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// The object or file concerned (`way/123`, `relation/4`, `jamsil.osm`).
    pub subject: String,
    pub message: String,
}

/// What an ingest read and built, and what it warned about.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub inputs: Vec<String>,
    pub nodes_read: usize,
    pub ways_read: usize,
    pub relations_read: usize,
    pub warnings: Vec<Warning>,
}

impl Report {
    pub fn warn(&mut self, subject: impl Into<String>, message: impl Into<String>) {
        let w = Warning { subject: subject.into(), message: message.into() };
        tracing::debug!(subject = %w.subject, "{}", w.message);
        self.warnings.push(w);
    }
}

/// Options for [`ingest_paths`].
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// The twin's name (default: the first input's file stem).
    pub name: Option<String>,
    /// Origin of the twin frame (default: the centre of the data's bounding box).
    pub origin: Option<LatLon>,
    /// Keep only what lies in `[west, south, east, north]` (degrees).
    pub bbox_wgs84: Option<[f64; 4]>,
    /// Digital elevation models (GeoTIFF, SRTM `.hgt`, or GDAL rasters).
    pub dems: Vec<PathBuf>,
    /// How attributes of vector files (GeoJSON, GDAL layers) map to twin properties.
    pub vector: VectorMapping,
}

/// What one input file holds.
#[derive(Debug)]
pub enum SourceKind {
    OsmPbf,
    OsmXml,
    GeoJson,
    Dem,
    #[cfg(feature = "gdal")]
    GdalVector,
}

/// Raster formats GDAL reads that are taken as DEMs (with the `gdal` feature); any other
/// unknown extension is read as a GDAL vector (`.shp`, `.gpkg`, `.gml`, `.kml`, `.fgb`, `.sqlite`...).
const GDAL_RASTER_EXTENSIONS: [&str; 5] = [".asc", ".img", ".vrt", ".dem", ".bil"];

/// Guesses an input's kind from its name (and, for XML vs JSON, its first bytes).
pub fn detect_kind(path: &Path) -> Result<SourceKind, IngestError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
    let kind = if name.ends_with(".pbf") {
        SourceKind::OsmPbf
    } else if name.ends_with(".osm") || name.ends_with(".xml") || name.ends_with(".osm.xml") {
        SourceKind::OsmXml
    } else if name.ends_with(".geojson") || name.ends_with(".json") {
        SourceKind::GeoJson
    } else if name.ends_with(".tif")
        || name.ends_with(".tiff")
        || name.ends_with(".hgt")
        || (cfg!(feature = "gdal") && GDAL_RASTER_EXTENSIONS.iter().any(|ext| name.ends_with(ext)))
    {
        SourceKind::Dem
    } else {
        #[cfg(feature = "gdal")]
        {
            return Ok(SourceKind::GdalVector);
        }
        #[cfg(not(feature = "gdal"))]
        return Err(IngestError::UnknownFormat { path: path.to_path_buf() });
    };
    Ok(kind)
}

/// Reads every input (any mix of OSM, vector files and DEMs) and builds one twin.
pub fn ingest_paths(inputs: &[PathBuf], options: &IngestOptions) -> Result<(Twin, Report), IngestError> {
    ingest_paths_with_progress(inputs, options, &mut |_, _| {})
}

/// [`ingest_paths`] calling `progress(done, total)` after each input and build stage.
pub fn ingest_paths_with_progress(
    inputs: &[PathBuf],
    options: &IngestOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Twin, Report), IngestError> {
    if let Some(b) = options.bbox_wgs84
        && !(b[0] < b[2] && b[1] < b[3])
    {
        return Err(IngestError::EmptyBbox { bbox: b });
    }
    let total = inputs.len() + options.dems.len() + 1;
    let mut report = Report::default();
    let mut data = OsmData::new();
    let mut dems = Vec::new();
    for (i, path) in inputs.iter().enumerate() {
        let _span = tracing::info_span!("read", path = %path.display()).entered();
        report.inputs.push(file_label(path));
        match detect_kind(path)? {
            SourceKind::OsmPbf => data.merge(osm_pbf::read_pbf(path)?),
            SourceKind::OsmXml => data.merge(osm_xml::read_xml(path)?),
            SourceKind::GeoJson => {
                let source_index = i as u32;
                data.merge(vector::read_geojson(path, source_index, &options.vector, &mut report)?)
            }
            SourceKind::Dem => dems.push(Dem::read(path)?),
            #[cfg(feature = "gdal")]
            SourceKind::GdalVector => {
                let source_index = i as u32;
                data.merge(gdal_source::read_vector(path, source_index, &options.vector, &mut report)?)
            }
        }
        progress(i + 1, total);
    }
    for (i, path) in options.dems.iter().enumerate() {
        report.inputs.push(file_label(path));
        dems.push(Dem::read(path)?);
        progress(inputs.len() + i + 1, total);
    }
    report.nodes_read = data.nodes.len();
    report.ways_read = data.ways.len();
    report.relations_read = data.relations.len();
    if data.is_empty() {
        return Err(IngestError::NothingToBuild(format!(
            "no OpenStreetMap objects or vector features in {}",
            report.inputs.join(", ")
        )));
    }
    let build_options = BuildOptions {
        name: options
            .name
            .clone()
            .unwrap_or_else(|| inputs.first().map(|p| file_stem(p)).unwrap_or_else(|| "twin".to_string())),
        origin: options.origin,
        bbox_wgs84: options.bbox_wgs84,
        sources: report.inputs.clone(),
    };
    let twin = build_twin(&data, &dems, &build_options, &mut report)?;
    progress(total, total);
    Ok((twin, report))
}

fn file_label(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn file_stem(path: &Path) -> String {
    let name = file_label(path);
    name.split('.').next().unwrap_or(&name).to_string()
}
