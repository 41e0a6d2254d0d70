//! The one error type of `swm_sensors`.

use std::path::PathBuf;

/// Everything that can go wrong in `swm_sensors`.
///
/// A variant with a cause returns it from `source()` and leaves it out of its own message:
/// print the chain (anyhow's `{:#}`, or `swm_core::ErrorChain`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SensorError {
    /// A sensor parameter outside its documented range.
    #[error("invalid sensor parameter {name}: {reason}")]
    InvalidConfig {
        /// The parameter's name.
        name: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// A query of the twin failed (for example an oversized BEV crop).
    #[error("twin query failed")]
    Twin(#[from] swm_twin::TwinError),
    /// Reading or writing a file failed.
    #[error("I/O error on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A PLY file this crate cannot read.
    #[error("{path}: bad PLY file: {message}")]
    Ply {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}
