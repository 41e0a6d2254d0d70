//! OSM PBF.

use crate::{IngestError, osm::OsmData};
use std::path::Path;

/// Reads an OSM PBF file.
pub fn read_pbf(path: &Path) -> Result<OsmData, IngestError> {
    Err(IngestError::UnknownFormat { path: path.to_path_buf() })
}
