//! OSM XML and Overpass output.

use crate::{IngestError, osm::OsmData};
use std::path::Path;

/// Reads an OSM XML file (including Overpass `out geom` output).
pub fn read_xml(path: &Path) -> Result<OsmData, IngestError> {
    Err(IngestError::UnknownFormat { path: path.to_path_buf() })
}
