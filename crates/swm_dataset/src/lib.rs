//! `swm_dataset`: trajectory datasets.
//!
//! * [`trajectories`]: runs as Parquet files (one row per agent per step, written in row
//!   groups while the run goes; see the schema there) and the reader;
//! * [`manifest`]: `manifest.json`, what a run directory holds and how it was made (twin,
//!   seed, configuration, code version, row counts, CRC-32 of every file);
//! * [`fcd`]: import of SUMO `--fcd-output` XML (net or geo coordinates) as trajectories in
//!   a twin's frame;
//! * [`scenario`]: scenario extraction (all agents around a centre agent, with history and
//!   future at 10 Hz, ids remapped per scenario) and sharded scenario files.
//!
//! A run directory (as `swm simulate` writes it) holds `trajectories.parquet`,
//! `manifest.json`, `metrics.json` and `events.json`.
//!
//! **Determinism**: the same records give byte-identical files (fixed writer properties,
//! no timestamps, no hash-map iteration).

pub mod fcd;
pub mod manifest;
pub mod scenario;
pub mod trajectories;

pub use fcd::{FcdCoordinates, FcdTrajectories, read_sumo_fcd};
pub use manifest::{FileEntry, RunManifest, TwinRef, file_crc32};
pub use scenario::{
    CenterSelector, Scenario, ScenarioIndex, ScenarioOptions, ScenarioSource, cut_scenarios, write_scenarios,
};
pub use trajectories::{TrajectoryWriter, read_trajectories};

use std::path::PathBuf;

/// Errors of the dataset crate.
///
/// A variant with a cause returns it from `source()` and leaves it out of its own message:
/// print the chain (anyhow's `{:#}`, or `swm_core::ErrorChain`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Parquet error on {path}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("Arrow error on {path}")]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error("{path}: not a swm trajectory file: {message}")]
    Schema { path: PathBuf, message: String },
    /// A Parquet file whose bytes do not decode (changed or lost on the way).
    #[error("{path}: damaged Parquet file: {message}")]
    Damaged { path: PathBuf, message: String },
    /// The thread writing a Parquet file stopped (it panicked, or an error already
    /// returned stopped it).
    #[error("{path}: {message}")]
    Writer { path: PathBuf, message: String },
    #[error("JSON error on {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}:{line}: {message}")]
    Fcd { path: PathBuf, line: u64, message: String },
    #[error("coordinate conversion: {0}")]
    Frame(String),
    #[error("invalid scenario options: {0}")]
    Options(String),
    /// A scenario directory used with a twin other than the one its run was made on.
    #[error(
        "{scenarios} was cut from a run on twin {expected}, but {twin} is {found}: give the twin the scenarios were cut on"
    )]
    TwinMismatch { scenarios: PathBuf, twin: PathBuf, expected: String, found: String },
}

impl DatasetError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
        move |source| DatasetError::Io { path: path.to_path_buf(), source }
    }
}
