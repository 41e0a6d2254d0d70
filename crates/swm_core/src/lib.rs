//! `swm_core`: the vocabulary every other Seoul World Model crate shares.
//!
//! * [`frame`]: WGS84 coordinates and the twin's local metric frame (ENU).
//! * [`crs`]: projected coordinate systems users bring (EPSG:4326, 5186, 5179, UTM 52N).
//! * [`id`]: stable references to source objects (`way/123`).
//! * [`rng`]: the counter-based random generator (Philox4x32-10) shared with WGSL.
//! * [`ErrorChain`]: an error and its causes in one line.
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

/// Displays an error followed by its [`source`](std::error::Error::source) chain, joined
/// with `": "` (what anyhow's `{:#}` prints).
///
/// The workspace's errors follow the Rust API guideline: a variant with a cause returns it
/// from `source()` and leaves it out of its own message, so `{e}` alone does not show it.
/// Where such an error becomes a string (a message field, a log line), format it with
/// `ErrorChain(&e)` so the cause is kept, once.
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
/// #[derive(Debug, thiserror::Error)]
/// #[error("reading x.swt")]
/// struct Read(#[source] std::io::Error);
/// assert_eq!(swm_core::ErrorChain(&Read(io)).to_string(), "reading x.swt: gone");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}
