//! Checking and summarising a batch output directory.
//!
//! [`verify`] re-reads every chunk the batch should have (from `_batch.json`): its commit
//! record must exist and name this batch, the Parquet file must have the recorded size and
//! SHA-256, and its footer the recorded row count; Parquet files the batch does not know
//! are reported too. [`merge`] runs the same checks, refuses an incomplete or damaged
//! batch, and writes `OUT/_manifest.json` ([`BatchManifest`]) and, when asked, one Parquet
//! file per twin (outside `OUT`, so that `OUT/**/*.parquet` does not read rows twice).

use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use swm_core::ErrorChain;

use crate::BatchError;
use crate::chunk::{self, ChunkRecord, chunk_file_name, record_file_name, twin_dir};
use crate::plan::{BatchState, TwinState};

/// Something wrong with one chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChunkProblem {
    /// `None`: a file that belongs to no chunk of the batch.
    pub chunk: Option<u64>,
    pub path: PathBuf,
    pub problem: String,
}

impl std::fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.chunk {
            Some(c) => write!(f, "chunk {c}: {}: {}", self.problem, self.path.display()),
            None => write!(f, "{}: {}", self.problem, self.path.display()),
        }
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    pub chunks: u64,
    pub chunks_ok: u64,
    pub rows: u64,
    /// Chunks not written yet (no commit record and no file).
    pub missing: Vec<u64>,
    /// Chunks whose Parquet file is in place without a commit record: the writer stopped
    /// between the two (killed, disk full); running the batch again redoes them.
    pub uncommitted: Vec<u64>,
    pub problems: Vec<ChunkProblem>,
    /// The good chunks' records, by chunk.
    #[serde(skip)]
    pub records: Vec<ChunkRecord>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.uncommitted.is_empty() && self.problems.is_empty()
    }
}

/// Why a chunk is not good.
enum NotOk {
    Missing,
    Uncommitted,
    Problem(ChunkProblem),
}

fn check(out: &Path, state: &BatchState, twin: &TwinState, c: u64) -> Result<ChunkRecord, NotOk> {
    let dir = twin_dir(out, &twin.name);
    let rec_path = dir.join(record_file_name(c));
    let pq_path = dir.join(chunk_file_name(c));
    let problem = |path: &Path, problem: String| {
        NotOk::Problem(ChunkProblem { chunk: Some(c), path: path.to_path_buf(), problem })
    };
    if !rec_path.exists() {
        return Err(if pq_path.exists() { NotOk::Uncommitted } else { NotOk::Missing });
    }
    let rec: ChunkRecord = chunk::read_json(&rec_path).map_err(|e| problem(&rec_path, ErrorChain(&e).to_string()))?;
    if rec.config_hash != state.config_hash || rec.chunk != c || rec.twin != twin.name {
        return Err(problem(
            &rec_path,
            format!("record of chunk {} of {} under configuration {}", rec.chunk, rec.twin, rec.config_hash),
        ));
    }
    let bytes = std::fs::read(&pq_path).map_err(|e| problem(&pq_path, format!("unreadable: {e}")))?;
    if bytes.len() as u64 != rec.bytes {
        return Err(problem(&pq_path, format!("{} bytes, the record says {}", bytes.len(), rec.bytes)));
    }
    let sha = chunk::sha256_hex(&bytes);
    if sha != rec.sha256 {
        return Err(problem(&pq_path, format!("SHA-256 {sha}, the record says {}", rec.sha256)));
    }
    let rows = chunk::parquet_rows(bytes, &pq_path).map_err(|e| problem(&pq_path, ErrorChain(&e).to_string()))?;
    if rows != rec.rows {
        return Err(problem(&pq_path, format!("{rows} rows, the record says {}", rec.rows)));
    }
    Ok(rec)
}

/// Checks every chunk of the batch in `out` (module docs). `Err` only when `out` is not a
/// batch directory; damage is in the report.
pub fn verify(out: &Path) -> Result<VerifyReport, BatchError> {
    let state = BatchState::read(out)?;
    let jobs: Vec<(&TwinState, u64)> =
        state.twins.iter().flat_map(|t| (t.first_chunk..t.first_chunk + t.chunks).map(move |c| (t, c))).collect();
    let results: Vec<(u64, Result<ChunkRecord, NotOk>)> =
        jobs.par_iter().map(|(t, c)| (*c, check(out, &state, t, *c))).collect();
    let mut report = VerifyReport { chunks: state.chunks, ..VerifyReport::default() };
    for (c, r) in results {
        match r {
            Ok(rec) => {
                report.chunks_ok += 1;
                report.rows += rec.rows;
                report.records.push(rec);
            }
            Err(NotOk::Missing) => report.missing.push(c),
            Err(NotOk::Uncommitted) => report.uncommitted.push(c),
            Err(NotOk::Problem(p)) => report.problems.push(p),
        }
    }
    // Parquet files that belong to no chunk of this batch.
    let rd = std::fs::read_dir(out).map_err(BatchError::io("listing", out))?;
    let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for dir in dirs {
        let dname = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let twin = dname.strip_prefix("twin=").and_then(|n| state.twins.iter().find(|t| t.name == n));
        let rd = std::fs::read_dir(&dir).map_err(BatchError::io("listing", &dir))?;
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !name.ends_with(".parquet") || name.starts_with(['.', '_']) {
                continue;
            }
            let known =
                twin.is_some_and(|t| (t.first_chunk..t.first_chunk + t.chunks).any(|c| chunk_file_name(c) == name));
            if !known {
                report.problems.push(ChunkProblem {
                    chunk: None,
                    path: f,
                    problem: "a Parquet file that is no chunk of this batch (remove it)".into(),
                });
            }
        }
    }
    Ok(report)
}

/// `_manifest.json`: a finished batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchManifest {
    /// `swm-batch-manifest/1`.
    pub format: String,
    /// Schema of the chunk files (`swm-batch/1`).
    pub schema: String,
    pub config_hash: String,
    pub seed: u64,
    /// The configuration without `output`.
    pub config: serde_json::Value,
    /// Code version of the shard that started the batch, and of the merge.
    pub code_version: String,
    pub merged_by: String,
    pub model: String,
    pub model_sha256: String,
    pub twins: Vec<ManifestTwin>,
    pub chunks: u64,
    pub rollouts: u64,
    pub rows: u64,
    pub bytes: u64,
    pub files: Vec<ManifestFile>,
    /// Merged per-twin files, when written.
    pub merged: Vec<ManifestFile>,
}

/// One twin in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestTwin {
    #[serde(flatten)]
    pub state: TwinState,
    pub rollouts: u64,
    pub rows: u64,
}

/// One file in the manifest (paths relative to the output directory, or absolute for
/// merged files).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Streams a twin's chunks, in order, into `mdir/NAME.parquet` (a temporary file, fsync,
/// rename: the same commit as chunks).
fn merge_twin<'r>(
    out: &Path,
    mdir: &Path,
    twin: &str,
    records: impl Iterator<Item = &'r ChunkRecord>,
) -> Result<ManifestFile, BatchError> {
    use std::io::{BufWriter, Write};
    let name = format!("{twin}.parquet");
    let path = mdir.join(&name);
    let tmp = mdir.join(chunk::temp_name(&name));
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(BatchError::io("creating", &tmp))?;
        let tmp_err = |e: &dyn std::fmt::Display| BatchError::Parquet { path: tmp.clone(), message: e.to_string() };
        let mut writer =
            ArrowWriter::try_new(BufWriter::new(file), chunk::schema(), Some(chunk::writer_properties(twin, None)))
                .map_err(|e| tmp_err(&e))?;
        let mut rows = 0u64;
        for r in records {
            let p = twin_dir(out, twin).join(&r.file);
            let perr = |e: &dyn std::fmt::Display| BatchError::Parquet { path: p.clone(), message: e.to_string() };
            let f = std::fs::File::open(&p).map_err(BatchError::io("reading", &p))?;
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| perr(&e))?.build().map_err(|e| perr(&e))?;
            for batch in reader {
                let batch = batch.map_err(|e| perr(&e))?;
                rows += batch.num_rows() as u64;
                writer.write(&batch).map_err(|e| tmp_err(&e))?;
            }
        }
        let mut buf = writer.into_inner().map_err(|e| tmp_err(&e))?;
        buf.flush().map_err(BatchError::io("writing", &tmp))?;
        let file = buf.into_inner().map_err(|e| BatchError::Io {
            op: "writing",
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(BatchError::io("syncing", &tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(BatchError::io("renaming a finished temporary file to", &path))?;
        chunk::sync_dir(mdir)?;
        Ok(rows)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let rows = result?;
    let (bytes, sha256) = sha256_of_path(&path)?;
    Ok(ManifestFile { path: path.display().to_string(), rows, bytes, sha256 })
}

/// Size and SHA-256 of a file, streamed.
fn sha256_of_path(path: &Path) -> Result<(u64, String), BatchError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(BatchError::io("reading", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(BatchError::io("reading", path))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((n, chunk::hex(&h.finalize())))
}

/// Name of the manifest in the output directory.
pub const MANIFEST_FILE: &str = "_manifest.json";

/// Verifies `out`, then writes `out/_manifest.json` and, with `merged_dir`, one Parquet file
/// per twin `merged_dir/NAME.parquet` (chunks in order, same schema and writer settings).
pub fn merge(out: &Path, merged_dir: Option<&Path>) -> Result<BatchManifest, BatchError> {
    let state = BatchState::read(out)?;
    let report = verify(out)?;
    if !report.is_ok() {
        let first = if let Some(p) = report.problems.first() {
            p.to_string()
        } else if let Some(c) = report.uncommitted.first() {
            format!("chunk {c} has no commit record (an interrupted writer: run the batch again)")
        } else {
            format!("chunk {} not written yet", report.missing.first().copied().unwrap_or_default())
        };
        let count = report.problems.len() + report.uncommitted.len() + report.missing.len();
        return Err(BatchError::Incomplete { count, first });
    }
    let mut records = report.records;
    records.sort_by_key(|r| r.chunk);
    let twins = state
        .twins
        .iter()
        .map(|t| {
            let of = records.iter().filter(|r| r.twin == t.name);
            ManifestTwin {
                state: t.clone(),
                rollouts: of.clone().map(|r| r.rollouts).sum(),
                rows: of.map(|r| r.rows).sum(),
            }
        })
        .collect();
    let files = records
        .iter()
        .map(|r| ManifestFile {
            path: format!("twin={}/{}", r.twin, r.file),
            rows: r.rows,
            bytes: r.bytes,
            sha256: r.sha256.clone(),
        })
        .collect();
    let mut merged = Vec::new();
    if let Some(mdir) = merged_dir {
        std::fs::create_dir_all(mdir).map_err(BatchError::io("creating", mdir))?;
        for t in &state.twins {
            merged.push(merge_twin(out, mdir, &t.name, records.iter().filter(|r| r.twin == t.name))?);
        }
    }
    let manifest = BatchManifest {
        format: "swm-batch-manifest/1".to_string(),
        schema: chunk::BATCH_SCHEMA.to_string(),
        config_hash: state.config_hash.clone(),
        seed: state.seed,
        config: state.config.clone(),
        code_version: state.code_version.clone(),
        merged_by: crate::code_version(),
        model: state.model.clone(),
        model_sha256: state.model_sha256.clone(),
        twins,
        chunks: state.chunks,
        rollouts: records.iter().map(|r| r.rollouts).sum(),
        rows: records.iter().map(|r| r.rows).sum(),
        bytes: records.iter().map(|r| r.bytes).sum(),
        files,
        merged,
    };
    chunk::commit_json(out, MANIFEST_FILE, &manifest, &mut |_| {})?;
    Ok(manifest)
}
