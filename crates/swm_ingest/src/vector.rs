//! GeoJSON (and, through `gdal_source`, GDAL) features as OSM-like objects.

use crate::{IngestError, Report, osm::OsmData};
use std::path::Path;

/// How vector attributes map to twin properties. Names are tried in order.
#[derive(Clone, Debug)]
pub struct VectorMapping {
    pub height_attributes: Vec<String>,
    pub levels_attributes: Vec<String>,
}

impl Default for VectorMapping {
    fn default() -> Self {
        Self {
            height_attributes: vec!["height".into(), "HEIGHT".into()],
            levels_attributes: vec!["building:levels".into(), "levels".into(), "GRND_FLR".into()],
        }
    }
}

/// Reads a GeoJSON file into OSM-like objects.
pub fn read_geojson(
    path: &Path,
    _source_index: u32,
    _mapping: &VectorMapping,
    _report: &mut Report,
) -> Result<OsmData, IngestError> {
    Err(IngestError::UnknownFormat { path: path.to_path_buf() })
}
