//! `swm_core`: the vocabulary every other Seoul World Model crate shares.
//!
//! * [`frame`]: WGS84 coordinates and the twin's local metric frame (ENU).
//! * [`crs`]: projected coordinate systems users bring (EPSG:4326, 5186, 5179, UTM 52N).
//! * [`id`]: stable references to source objects (`way/123`).
//! * [`rng`]: the counter-based random generator (Philox4x32-10) shared with WGSL.
//!
//! # Units
//! Metres, seconds, radians; degrees only in names that say `_deg`.

pub mod crs;
pub mod frame;
pub mod id;
pub mod rng;

pub use crs::Crs;
pub use frame::{LatLon, LocalFrame};
pub use id::{OsmType, SourceRef};

/// Errors of the core crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// An EPSG code this build does not know.
    #[error("unsupported coordinate reference system EPSG:{0} (supported: 4326, 5186, 5179, 32652)")]
    UnsupportedCrs(u32),
    /// A coordinate outside the valid domain (latitude beyond ±90°, NaN...).
    #[error("invalid coordinate: {0}")]
    InvalidCoordinate(String),
}
