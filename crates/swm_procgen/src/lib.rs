//! Procedurally generated Seoul-like districts: the embedded default twin of Seoul World
//! Model, and the training ground of its learned traffic model.
//!
//! [`generate`] turns [`DistrictParams`] (a `u64` seed and a few means and switches)
//! into OpenStreetMap data tagged the way Seoul is mapped, plus a DEM; both go through
//! the same twin builder as real data ([`build_district`]). The same parameters always
//! give the same data, object for object; different seeds give different districts
//! (grid spacing and rotation, river side, density, apartment complex layouts...).
//!
//! What a district holds:
//! * an arterial grid of superblocks (`primary`/`secondary`, 4-8 lanes, signals at
//!   most intersections, zebra crossings near them, some sidewalks mapped separately,
//!   a few `turn:lanes` and `no_left_turn` restrictions), tertiary collectors,
//!   residential street grids (some one-way, some dead ends) and service roads;
//! * bends (`bend_share`): arterials curving away at the district's edge, doglegs in
//!   apartment complexes' roads, a road winding round the hill. The twin builder rounds
//!   them into arcs, which the teacher slows for: the learned model's training needs
//!   curves as real cities have them;
//! * apartment complexes (danji) of slabs and towers, commercial strips along the
//!   arterials (some podium + tower `building:part`s, courtyard multipolygons), low-rise
//!   houses and villas (some with `roof:shape`), schools, parks, plazas, parking;
//! * optionally a river along one edge (water multipolygon, centre line, bridges,
//!   riverside park and paths, an 80 km/h expressway with an exit and an entry ramp), a
//!   forested hill, a subway line and a railway;
//! * `height` on about 40 % of buildings and `building:levels` on about 70 %.
//!
//! ```
//! let params = swm_procgen::DistrictParams::embedded_default();
//! let generated = swm_procgen::generate(&params);
//! assert!(generated.osm.ways.len() > 1000);
//! ```

mod district;
mod draft;
mod geom;
mod names;
mod params;
mod terrain;

pub use params::DistrictParams;

use std::path::PathBuf;
use swm_core::{LatLon, LocalFrame};
use swm_ingest::osm::OsmData;
use swm_ingest::{BuildOptions, Dem, IngestError, Report};
use swm_twin::Twin;

/// Errors of the generator: bad parameters, or a failed twin build.
///
/// A variant with a cause returns it from `source()` and leaves it out of its own message:
/// print the chain (anyhow's `{:#}`, or `swm_core::ErrorChain`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcgenError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid district parameters")]
    Toml(#[source] Box<toml::de::Error>),
    #[error("{path}: invalid district parameters")]
    TomlFile {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("district parameter `{field}`: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("building the generated district")]
    Build(#[from] IngestError),
}

/// A generated district: OSM data and a DEM (EPSG:4326).
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    pub osm: OsmData,
    pub dem: Dem,
}

/// The origin of the twin frame for `params` (the district's centre).
pub fn origin(params: &DistrictParams) -> LatLon {
    LatLon::new(params.origin_lat_deg, params.origin_lon_deg)
}

/// Generates the district's OSM data and DEM. Deterministic in `params`.
pub fn generate(params: &DistrictParams) -> Generated {
    let _span = tracing::info_span!("procgen", seed = params.seed).entered();
    let frame = LocalFrame::new(origin(params));
    let out = district::generate(params);
    let layout = out.layout;
    let osm = out.draft.into_osm(|p| frame.wgs84_from_enu(layout.to_local(p)));
    let bbox = osm.bbox_wgs84().unwrap_or([
        params.origin_lon_deg,
        params.origin_lat_deg,
        params.origin_lon_deg,
        params.origin_lat_deg,
    ]);
    let dem = terrain::make_dem(&layout, &frame, bbox, params.dem_cell_m, 200.0);
    tracing::info!(
        nodes = osm.nodes.len(),
        ways = osm.ways.len(),
        relations = osm.relations.len(),
        dem_cells = dem.width * dem.height,
        "generated district"
    );
    Generated { osm, dem }
}

/// Generates the district and builds its twin with [`swm_ingest::build_twin`].
pub fn build_district(params: &DistrictParams) -> Result<(Twin, Report), ProcgenError> {
    params.validate()?;
    let generated = generate(params);
    let mut report = Report {
        inputs: vec![format!("procgen seed={}", params.seed)],
        nodes_read: generated.osm.nodes.len(),
        ways_read: generated.osm.ways.len(),
        relations_read: generated.osm.relations.len(),
        ..Report::default()
    };
    let options = BuildOptions {
        name: params.name.clone(),
        origin: Some(origin(params)),
        bbox_wgs84: None,
        sources: vec![format!("procgen seed={}", params.seed)],
    };
    let twin = swm_ingest::build_twin(&generated.osm, &[generated.dem], &options, &mut report)?;
    Ok((twin, report))
}
