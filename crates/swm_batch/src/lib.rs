//! `swm_batch`: headless batch rollouts at scale.
//!
//! A batch is described by one TOML file ([`BatchConfig`]): the twins, the model, where the
//! scenarios come from (a directory of teacher scenarios, or fresh ones sampled by running
//! the teacher simulator on the twin), samples per scenario, horizon, backend, seed, chunk
//! size and output directory. [`BatchPlan::prepare`] loads all of it; [`run_batch`] rolls
//! out the chunks of one shard and commits each as a Parquet file; [`verify`] and [`merge()`]
//! check and summarise a finished output directory.
//!
//! * [`config`]: the TOML file, its defaults and validation;
//! * [`plan`]: twins, scenarios, derived seeds, the chunk table and the configuration hash;
//! * [`shard`]: `I/N` from the command line, Slurm array jobs or Kubernetes Indexed Jobs;
//! * [`backend`]: the rollout engines ([`Backend::Cpu`], [`Backend::Gpu`] through `swm_gpu`);
//! * [`chunk`]: the `swm-batch/1` Parquet schema, chunk sidecars and the atomic commit;
//! * [`run`]: one shard's run: skip what is done, redo what is damaged, write the rest;
//! * [`mod@merge`]: `verify` (checksums and row counts) and `merge` (`_manifest.json`, optional
//!   one Parquet file per twin).
//!
//! # Work decomposition
//! The work units are (twin, scenario) pairs, in the order of the configuration's twins and
//! each twin's scenarios. Each twin's scenarios are cut into chunks of `chunk_size`
//! consecutive scenarios (a chunk never spans twins); chunks are numbered globally, twin by
//! twin. Chunk `c` belongs to shard `c mod N`. The table depends on the configuration only,
//! never on `N`, and a chunk's bytes are a pure function of the configuration, so the union of
//! the files written by N shards is byte for byte the output of one process.
//!
//! # Output directory
//! ```text
//! OUT/_batch.json                       what the batch is (config, hash, chunk table); written by every shard
//! OUT/twin=NAME/chunk-000000.parquet    one chunk: schema swm-batch/1 (see `chunk`)
//! OUT/twin=NAME/_chunk-000000.json      its commit record: rows, bytes, SHA-256, configuration hash
//! OUT/_manifest.json                    after `merge`: everything, with row counts and checksums
//! ```
//! Files whose name starts with `_` or `.` are skipped by Spark, Hive and pyarrow dataset
//! discovery, so `OUT` reads as one table (with a `twin` column from the hive partition) in
//! DuckDB (`read_parquet('OUT/**/*.parquet', hive_partitioning = true)`), Polars
//! (`pl.scan_parquet('OUT/**/*.parquet', hive_partitioning=True)`), pandas/pyarrow
//! (`pd.read_parquet('OUT')`) and Spark (`spark.read.parquet('OUT')`).
//!
//! # Commit protocol
//! A chunk is written to `.chunk-XXXXXX.parquet.tmp-PID` in its final directory, fsync'd,
//! renamed to `chunk-XXXXXX.parquet`, and the directory fsync'd; then the sidecar
//! `_chunk-XXXXXX.json` goes through the same steps. **The sidecar is the commit**: a chunk is
//! done when its sidecar exists, names this batch's configuration hash and matches the
//! Parquet file's size and SHA-256. On start a shard removes its stray temporary files,
//! skips done chunks, and redoes every other chunk of its own (a Parquet file without a
//! sidecar is a run killed between the two renames; a mismatch is reported as damage).
//!
//! **Determinism**: one `u64` seed decides everything (teacher runs and rollout seeds are
//! derived from it per twin, see [`plan`]); files are the same bytes whatever the thread
//! count, the shard count or the number of interruptions.

pub mod backend;
pub mod chunk;
pub mod config;
pub mod merge;
pub mod plan;
pub mod run;
pub mod shard;

pub use backend::{Backend, CpuEngine, RolloutEngine};
pub use chunk::{BATCH_SCHEMA, ChunkRecord};
pub use config::{BatchConfig, TeacherConfig, TwinSpec};
pub use merge::{BatchManifest, ChunkProblem, VerifyReport, merge, verify};
pub use plan::{BatchPlan, BatchState, ChunkSpec, PreparedTwin};
pub use run::{BatchEvent, BatchSummary, CommitStage, RunOptions, run_batch, thread_pool};
pub use shard::{Shard, ShardSource};

use std::path::PathBuf;

/// The code version written into `_batch.json` and manifests: the crate version, plus `git
/// describe` when the build had it (`SWM_GIT_DESCRIBE`, set by the build script).
pub fn code_version() -> String {
    match option_env!("SWM_GIT_DESCRIBE") {
        Some(d) if !d.is_empty() => format!("{} ({d})", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Errors of batch rollouts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A file system operation failed (`op` says which: "writing", "renaming to", ...); the
    /// cause is the error's source (print the chain: `{:#}` with anyhow).
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid batch configuration: {0}")]
    Config(String),
    #[error("{path}: {message}")]
    ConfigFile { path: PathBuf, message: String },
    #[error("invalid shard {0:?}: {1}")]
    Shard(String, String),
    #[error("backend `{backend}` is not available in this build: {reason}")]
    BackendUnavailable { backend: &'static str, reason: String },
    #[error("twin `{twin}`: {message}")]
    Twin { twin: String, message: String },
    #[error("model {path}")]
    Model {
        path: PathBuf,
        #[source]
        source: swm_model::ModelError,
    },
    #[error("Parquet error on {path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("{path}: bad JSON: {message}")]
    Json { path: PathBuf, message: String },
    /// The output directory holds chunks of another configuration.
    #[error(
        "{path} holds a batch with configuration hash {found}, this configuration's is {expected}: use a fresh output directory (or the original configuration to resume)"
    )]
    ForeignBatch { path: PathBuf, found: String, expected: String },
    #[error("{path}: not a batch output directory (no _batch.json)")]
    NotABatch { path: PathBuf },
    /// `merge` found missing or damaged chunks.
    #[error("{count} chunk(s) missing or damaged, first: {first}")]
    Incomplete { count: usize, first: String },
}

impl BatchError {
    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> BatchError + 'a {
        move |source| BatchError::Io { op, path: path.to_path_buf(), source }
    }
}
