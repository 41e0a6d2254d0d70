//! The one error type of `swm_record`.

use std::path::PathBuf;

/// Everything that can go wrong in `swm_record`.
///
/// A variant with a cause returns it from `source()` and leaves it out of its own message:
/// print the chain (anyhow's `{:#}`, or `swm_core::ErrorChain`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Creating or writing a file failed.
    #[error("I/O error on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The MCAP writer refused a record.
    #[error("{path}: MCAP write failed: {message}")]
    Mcap {
        /// The log file.
        path: PathBuf,
        /// The writer's message.
        message: String,
    },
    /// The Parquet writer refused a batch.
    #[error("{path}: Parquet write failed: {message}")]
    Parquet {
        /// The table file.
        path: PathBuf,
        /// The writer's message.
        message: String,
    },
    /// A record that cannot be logged (a non-finite coordinate, an empty topic).
    #[error("invalid record for {topic}: {reason}")]
    InvalidRecord {
        /// The topic or table.
        topic: String,
        /// Why it is refused.
        reason: String,
    },
}
