//! # Seoul World Model
//!
//! An open-source Rust toolkit for physical AI in cities: open geodata becomes a
//! **digital twin** of a district, on which traffic, pedestrians and robots move.
//!
//! This root crate re-exports the workspace's crates:
//!
//! | module | crate | job |
//! | --- | --- | --- |
//! | [`core`] | `swm_core` | frames (WGS84, ENU, Korean TMs, UTM), ids, the counter-based RNG |
//! | [`twin`] | `swm_twin` | the twin model, `.swt` files, spatial queries, exports |
//! | [`ingest`] | `swm_ingest` | OSM PBF/XML/Overpass, GeoJSON, DEMs, GDAL into a twin |
//! | [`procgen`] | `swm_procgen` | procedurally generated Seoul-like districts |
//! | [`sim`] | `swm_sim` | the teacher traffic simulator |
//! | [`model`] | `swm_model` | the generative world model (CPU rollouts) |
//! | [`robots`] | `swm_robots` | robots that plan in imagination, the gym-like API |
//! | [`sensors`] | `swm_sensors` | lidar against the twin, BEV crops, PLY |
//! | [`record`] | `swm_record` | robot logs: MCAP with Foxglove schemas, Parquet |
//!
//! ```no_run
//! let (twin, report) = swm::ingest::ingest_paths(&["yeouido.osm.pbf".into()], &Default::default())?;
//! swm::twin::write_swt(&twin, "yeouido.swt".as_ref())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `ARCHITECTURE.md` for the map of the code.

pub use swm_core as core;
pub use swm_ingest as ingest;
pub use swm_model as model;
pub use swm_procgen as procgen;
pub use swm_record as record;
pub use swm_robots as robots;
pub use swm_sensors as sensors;
pub use swm_sim as sim;
pub use swm_twin as twin;
