//! Chunk files: the Parquet schema, the commit record and the atomic commit.
//!
//! # Schema `swm-batch/1`
//! One row per agent per frame per sample, ordered by scenario (as in the chunk), sample,
//! frame, agent:
//!
//! | column | type | null | meaning |
//! |---|---|---|---|
//! | `scenario_id` | UInt64 | no | the scenario's id in its source (teacher cut or scenario directory) |
//! | `sample` | UInt32 | no | rollout sample, 0..samples |
//! | `frame` | Int32 | no | 1..=horizon (0.1 s each after the scenario's current time) |
//! | `agent_id` ... `signal` | | | the `swm-trajectories/1` columns (`swm_dataset::trajectories`) |
//!
//! The twin is the hive partition (`twin=NAME/` directory), not a column of the file.
//! Key-value metadata: `swm.schema = swm-batch/1`, `swm.twin`, `swm.chunk`. Snappy
//! compression, one row group per chunk up to 2^20 rows, `created_by` fixed to this crate's
//! name and version: the same rollouts give the same bytes.
//!
//! # Commit record `_chunk-XXXXXX.json` ([`ChunkRecord`])
//! Written after the Parquet file is in place (crate docs: the sidecar is the commit).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float32Array, Float64Array, Int32Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use swm_model::ScenarioRollout;
use swm_sim::SignalState;

use crate::BatchError;

/// Schema tag of chunk files.
pub const BATCH_SCHEMA: &str = "swm-batch/1";
/// Format tag of commit records.
pub const CHUNK_RECORD_FORMAT: &str = "swm-batch-chunk/1";
/// Rows per row group at most.
pub const MAX_ROW_GROUP_ROWS: usize = 1 << 20;

/// The Arrow schema of `swm-batch/1`.
pub fn schema() -> SchemaRef {
    let mut fields =
        vec![Field::new("scenario_id", DataType::UInt64, false), Field::new("sample", DataType::UInt32, false)];
    // `frame` and the trajectory columns exactly as scenario files have them.
    let scenario = swm_dataset::trajectories::schema(true);
    fields.extend(scenario.fields().iter().skip(1).map(|f| f.as_ref().clone()));
    Arc::new(Schema::new(fields))
}

/// The writer properties of chunk files (fixed: no timestamps).
pub fn writer_properties(twin: &str, chunk: Option<u64>) -> WriterProperties {
    let mut kv = vec![
        KeyValue::new("swm.schema".to_string(), BATCH_SCHEMA.to_string()),
        KeyValue::new("swm.twin".to_string(), twin.to_string()),
    ];
    if let Some(c) = chunk {
        kv.push(KeyValue::new("swm.chunk".to_string(), c.to_string()));
    }
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("swm_batch {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(kv))
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .build()
}

/// File name of chunk `c`.
pub fn chunk_file_name(c: u64) -> String {
    format!("chunk-{c:06}.parquet")
}

/// File name of chunk `c`'s commit record.
pub fn record_file_name(c: u64) -> String {
    format!("_chunk-{c:06}.json")
}

/// Directory of a twin's chunks.
pub fn twin_dir(out: &Path, twin: &str) -> PathBuf {
    out.join(format!("twin={twin}"))
}

/// Encodes the rollouts of one chunk as `swm-batch/1` Parquet bytes; returns them with the
/// number of rows.
pub fn encode_chunk(
    twin: &str,
    chunk: u64,
    rollouts: &[ScenarioRollout],
    path_for_errors: &Path,
) -> Result<(Vec<u8>, u64), BatchError> {
    let perr =
        |e: &dyn std::fmt::Display| BatchError::Parquet { path: path_for_errors.to_path_buf(), message: e.to_string() };
    let schema = schema();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(writer_properties(twin, Some(chunk))))
        .map_err(|e| perr(&e))?;
    let mut rows = 0u64;
    for r in rollouts {
        for (sample, recs) in r.samples.iter().enumerate() {
            if recs.is_empty() {
                continue;
            }
            let n = recs.len();
            let cols: Vec<ArrayRef> = vec![
                Arc::new(UInt64Array::from(vec![r.scenario_id; n])),
                Arc::new(UInt32Array::from(vec![sample as u32; n])),
                Arc::new(Int32Array::from_iter_values(recs.iter().map(|(f, _)| *f))),
                Arc::new(UInt64Array::from_iter_values(recs.iter().map(|(_, q)| q.agent_id))),
                Arc::new(StringArray::from_iter_values(recs.iter().map(|(_, q)| q.kind.as_str()))),
                Arc::new(Float32Array::from_iter_values(recs.iter().map(|(_, q)| q.length_m))),
                Arc::new(Float32Array::from_iter_values(recs.iter().map(|(_, q)| q.width_m))),
                Arc::new(UInt32Array::from_iter_values(recs.iter().map(|(_, q)| q.step))),
                Arc::new(Float64Array::from_iter_values(recs.iter().map(|(_, q)| q.time_s))),
                Arc::new(Float64Array::from_iter_values(recs.iter().map(|(_, q)| q.x_m))),
                Arc::new(Float64Array::from_iter_values(recs.iter().map(|(_, q)| q.y_m))),
                Arc::new(Float64Array::from_iter_values(recs.iter().map(|(_, q)| q.z_m))),
                Arc::new(Float64Array::from_iter_values(recs.iter().map(|(_, q)| q.heading_rad))),
                Arc::new(Float64Array::from_iter_values(recs.iter().map(|(_, q)| q.speed_mps))),
                Arc::new(Float64Array::from_iter_values(recs.iter().map(|(_, q)| q.accel_mps2))),
                Arc::new(UInt32Array::from_iter(recs.iter().map(|(_, q)| q.lane))),
                Arc::new(StringArray::from_iter(recs.iter().map(|(_, q)| q.signal.map(SignalState::as_str)))),
            ];
            let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| perr(&e))?;
            writer.write(&batch).map_err(|e| perr(&e))?;
            rows += n as u64;
        }
    }
    let bytes = writer.into_inner().map_err(|e| perr(&e))?;
    Ok((bytes, rows))
}

/// Rows of a Parquet file, from its footer.
pub fn parquet_rows(bytes: Vec<u8>, path: &Path) -> Result<u64, BatchError> {
    use parquet::file::reader::FileReader;
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(bytes))
        .map_err(|e| BatchError::Parquet { path: path.to_path_buf(), message: e.to_string() })?;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The commit record of one chunk (`_chunk-XXXXXX.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// [`CHUNK_RECORD_FORMAT`].
    pub format: String,
    /// The batch's configuration hash ([`crate::BatchPlan::config_hash`]).
    pub config_hash: String,
    pub twin: String,
    pub chunk: u64,
    /// The Parquet file's name (in the same directory).
    pub file: String,
    /// Scenario ids of the chunk, first and last (inclusive), and how many.
    pub first_scenario_id: u64,
    pub last_scenario_id: u64,
    pub scenarios: u64,
    /// Scenarios × samples.
    pub rollouts: u64,
    pub rows: u64,
    pub bytes: u64,
    /// SHA-256 of the Parquet file, lowercase hex.
    pub sha256: String,
}

impl ChunkRecord {
    /// Whether `bytes` are the file this record commits (size and SHA-256).
    pub fn matches(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.bytes && sha256_hex(bytes) == self.sha256
    }
}

/// Stages of [`commit_file`], for crash tests (`RunOptions::commit_hook`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStage {
    /// Half of the temporary file written (not synced).
    PartialTemp,
    /// The temporary file written and synced, not renamed.
    TempWritten,
    /// Renamed into place and the directory synced.
    Renamed,
}

/// The temporary name of `final_name` for this process: `.NAME.tmp-PID` (hidden: skipped
/// by dataset readers and globs).
pub fn temp_name(final_name: &str) -> String {
    format!(".{final_name}.tmp-{}", std::process::id())
}

/// If `name` is a temporary file of this crate, the final name it was for.
pub fn temp_target(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?;
    let (target, pid) = rest.rsplit_once(".tmp-")?;
    pid.chars().all(|c| c.is_ascii_digit()).then_some(target)
}

/// Writes `bytes` to `dir/final_name` atomically: a temporary file in `dir`, fsync, rename,
/// fsync of `dir`. On failure the temporary file is removed (best effort) and the error
/// names the path that failed; an existing `final_name` is untouched until the rename.
pub fn commit_file(
    dir: &Path,
    final_name: &str,
    bytes: &[u8],
    hook: &mut dyn FnMut(WriteStage),
) -> Result<PathBuf, BatchError> {
    let tmp = dir.join(temp_name(final_name));
    let path = dir.join(final_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(BatchError::io("creating", &tmp))?;
        let half = bytes.len() / 2;
        f.write_all(&bytes[..half]).map_err(BatchError::io("writing", &tmp))?;
        hook(WriteStage::PartialTemp);
        f.write_all(&bytes[half..]).map_err(BatchError::io("writing", &tmp))?;
        f.sync_all().map_err(BatchError::io("syncing", &tmp))?;
        drop(f);
        hook(WriteStage::TempWritten);
        std::fs::rename(&tmp, &path).map_err(BatchError::io("renaming a finished temporary file to", &path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    hook(WriteStage::Renamed);
    Ok(path)
}

/// fsync of a directory (makes renames in it durable).
pub fn sync_dir(dir: &Path) -> Result<(), BatchError> {
    let d = std::fs::File::open(dir).map_err(BatchError::io("opening", dir))?;
    d.sync_all().map_err(BatchError::io("syncing", dir))
}

/// Writes a JSON value atomically ([`commit_file`]) with a trailing newline.
pub fn commit_json<T: Serialize>(
    dir: &Path,
    final_name: &str,
    value: &T,
    hook: &mut dyn FnMut(WriteStage),
) -> Result<PathBuf, BatchError> {
    let mut text = serde_json::to_vec_pretty(value)
        .map_err(|e| BatchError::Json { path: dir.join(final_name), message: e.to_string() })?;
    text.push(b'\n');
    commit_file(dir, final_name, &text, hook)
}

/// Reads a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, BatchError> {
    let bytes = std::fs::read(path).map_err(BatchError::io("reading", path))?;
    serde_json::from_slice(&bytes).map_err(|e| BatchError::Json { path: path.to_path_buf(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_hidden_and_parsed_back() {
        let t = temp_name("chunk-000003.parquet");
        assert!(t.starts_with(".chunk-000003.parquet.tmp-"));
        assert_eq!(temp_target(&t), Some("chunk-000003.parquet"));
        assert_eq!(temp_target("chunk-000003.parquet"), None);
        assert_eq!(temp_target(".x.tmp-12a"), None);
    }

    #[test]
    fn schema_is_scenario_id_sample_frame_then_trajectories() {
        let s = schema();
        let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(&names[..4], ["scenario_id", "sample", "frame", "agent_id"]);
        assert_eq!(names.len(), 17);
    }

    #[test]
    fn commit_replaces_atomically_and_cleans_up_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let p = commit_file(dir.path(), "a.bin", b"hello", &mut |_| {}).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello");
        // A directory in the way of the rename: an error naming the path, no temp left.
        std::fs::create_dir_all(dir.path().join("b.bin/x")).unwrap();
        let e = commit_file(dir.path(), "b.bin", b"x", &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("b.bin"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
