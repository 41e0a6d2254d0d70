//! The twin builder: OSM model (+ DEMs) to [`Twin`].

use crate::{IngestError, Report, dem::Dem, osm::OsmData};
use swm_core::LatLon;
use swm_twin::Twin;

/// Options of [`build_twin`].
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub name: String,
    pub origin: Option<LatLon>,
    pub bbox_wgs84: Option<[f64; 4]>,
    pub sources: Vec<String>,
}

/// Builds a twin from OSM data and DEMs.
pub fn build_twin(
    _data: &OsmData,
    _dems: &[Dem],
    options: &BuildOptions,
    _report: &mut Report,
) -> Result<Twin, IngestError> {
    let mut twin = Twin::default();
    twin.meta.name = options.name.clone();
    Ok(twin)
}
