//! `swm_twin`: the city twin and everything that reads it.
//!
//! A [`Twin`] is plain data in the local metric frame of [`swm_core::LocalFrame`]:
//! `x` east, `y` north, `z` elevation above sea level, all in metres. It is built by
//! `swm_ingest` (from OpenStreetMap, GeoJSON, DEMs, or the procedural generator) and
//! read by everything downstream. This crate adds:
//!
//! * [`mod@file`]: the `.swt` file (versioned, checksummed, fast to load);
//! * [`query`]: spatial index, nearest lane, buildings within a radius, point in building,
//!   ray casts, BEV rasters of semantic classes and signed distance;
//! * [`export`]: GeoJSON, glTF (`.glb`) and a top-down PNG map.
//!
//! **Architecture invariant**: this crate knows nothing about GPUs, learning or windows;
//! it never depends on wgpu, bevy or candle.

pub mod analysis;
pub mod drivable;
pub mod export;
pub mod file;
pub mod model;
pub mod query;

pub use file::{read_swt, read_swt_bytes, write_swt, write_swt_bytes};
pub use model::*;
pub use query::TwinIndex;

/// Errors of the twin crate.
///
/// A variant with a cause returns it from `source()` and leaves it out of its own message:
/// print the chain (anyhow's `{:#}`, or `swm_core::ErrorChain`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TwinError {
    #[error("I/O error on {path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a swm twin file (bad magic bytes)")]
    BadMagic { path: String },
    #[error("{path}: twin file format version {found} is newer than this build supports ({supported}); upgrade swm")]
    NewerVersion { path: String, found: u32, supported: u32 },
    #[error(
        "{path}: twin file format version {found} is no longer supported (this build reads {supported}); \
         build it again from its sources with `swm ingest`"
    )]
    OlderVersion { path: String, found: u32, supported: u32 },
    #[error("{path}: truncated twin file: expected {expected} bytes, found {found}")]
    Truncated { path: String, expected: u64, found: u64 },
    #[error("{path}: twin file is corrupt: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { path: String, stored: u32, computed: u32 },
    #[error("{path}: twin file is corrupt: {message}")]
    Decode { path: String, message: String },
    #[error("could not encode the twin: {0}")]
    Encode(String),
    #[error("export to {path} failed: {message}")]
    Export { path: String, message: String },
    #[error("invalid query: {0}")]
    InvalidQuery(String),
}
