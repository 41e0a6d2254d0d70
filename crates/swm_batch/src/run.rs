//! One shard's run (crate docs: work decomposition, commit protocol).
//!
//! 1. `OUT/_batch.json` is written if absent (atomically; every shard writes the same
//!    bytes) or checked: another configuration hash is [`BatchError::ForeignBatch`].
//! 2. Stray temporary files of this shard's chunks (a killed run's) are removed.
//! 3. Every chunk of this shard is checked (in parallel): done (commit record matches the
//!    Parquet file), to do, or damaged (record unreadable, file missing, size or SHA-256
//!    mismatch: reported with [`BatchEvent::Damaged`] and redone).
//! 4. The chunks to do are rolled out in chunk order (rayon inside a chunk, on the current
//!    pool: run inside `ThreadPool::install` to choose the thread count) and committed.
//!
//! Rollouts and files do not depend on the thread count; an error stops the run at once
//! with the path that failed, and leaves every committed chunk as it was.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use rayon::prelude::*;
use swm_core::ErrorChain;

use crate::chunk::{
    self, ChunkRecord, WriteStage, chunk_file_name, commit_file, commit_json, record_file_name, temp_target, twin_dir,
};
use crate::plan::{BatchPlan, BatchState, ChunkSpec, STATE_FILE};
use crate::shard::Shard;
use crate::{BatchError, RolloutEngine};

/// Points of a chunk's commit, for crash tests ([`RunOptions::commit_hook`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitStage {
    /// Half of the Parquet temporary file written.
    ParquetPartial,
    /// The Parquet temporary file complete and synced, not renamed.
    ParquetWritten,
    /// The Parquet file in place, no commit record yet.
    ParquetRenamed,
    /// Half of the record's temporary file written.
    RecordPartial,
    /// The record's temporary file complete, not renamed.
    RecordWritten,
    /// The commit record in place: the chunk is done.
    Committed,
}

impl CommitStage {
    pub const ALL: [CommitStage; 6] = [
        CommitStage::ParquetPartial,
        CommitStage::ParquetWritten,
        CommitStage::ParquetRenamed,
        CommitStage::RecordPartial,
        CommitStage::RecordWritten,
        CommitStage::Committed,
    ];

    /// `parquet-partial`, `parquet-written`, ..., `committed`.
    pub fn name(self) -> &'static str {
        match self {
            CommitStage::ParquetPartial => "parquet-partial",
            CommitStage::ParquetWritten => "parquet-written",
            CommitStage::ParquetRenamed => "parquet-renamed",
            CommitStage::RecordPartial => "record-partial",
            CommitStage::RecordWritten => "record-written",
            CommitStage::Committed => "committed",
        }
    }

    pub fn from_name(s: &str) -> Option<CommitStage> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// How to run a shard.
#[derive(Clone, Copy, Default)]
pub struct RunOptions<'a> {
    pub shard: Option<Shard>,
    /// Incremented after each rollout (scenario × sample) for progress bars.
    pub progress: Option<&'a AtomicU64>,
    /// Called at every commit stage with the number of chunks this run has started writing
    /// (1 for the first): crash tests abort the process there.
    pub commit_hook: Option<&'a (dyn Fn(CommitStage, u64) + Sync)>,
    /// Roll out this shard's chunks but write nothing, not even the output directory (for
    /// benchmarks: the bare rollout against which writing is measured).
    pub dry_run: bool,
}

/// What happens during a run.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchEvent {
    /// The state of this shard's chunks, before any rollout.
    Planned {
        shard: Shard,
        chunks_total: u64,
        chunks_mine: u64,
        chunks_done: u64,
        chunks_todo: u64,
        rollouts_todo: u64,
    },
    /// A temporary file left by a killed run, removed.
    StrayRemoved { path: PathBuf },
    /// A chunk whose committed files do not match: it is redone.
    Damaged { chunk: u64, path: PathBuf, reason: String },
    /// A chunk committed.
    ChunkWritten { chunk: u64, twin: String, rollouts: u64, rows: u64, bytes: u64 },
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct BatchSummary {
    pub shard: String,
    pub config_hash: String,
    pub chunks_total: u64,
    pub chunks_mine: u64,
    /// Found done and verified.
    pub chunks_skipped: u64,
    pub chunks_written: u64,
    /// Found damaged (and rewritten).
    pub chunks_damaged: u64,
    pub strays_removed: u64,
    pub rollouts_written: u64,
    pub rows_written: u64,
    pub bytes_written: u64,
    /// Seconds checking existing chunks.
    pub check_s: f64,
    /// Seconds preparing the model's maps of this shard's twins.
    pub map_s: f64,
    /// Seconds in the rollout engine.
    pub rollout_s: f64,
    /// Seconds encoding Parquet and committing files.
    pub write_s: f64,
    pub wall_s: f64,
}

enum Status {
    Done,
    Todo,
    /// A Parquet file without a record: killed between the two renames.
    Unrecorded,
    Damaged(String),
}

fn check_chunk(plan: &BatchPlan, out: &Path, c: &ChunkSpec) -> Status {
    let name = &plan.twins[c.twin].name;
    let dir = twin_dir(out, name);
    let rec_path = dir.join(record_file_name(c.index));
    let pq_path = dir.join(chunk_file_name(c.index));
    if !rec_path.exists() {
        return if pq_path.exists() { Status::Unrecorded } else { Status::Todo };
    }
    let rec: ChunkRecord = match chunk::read_json(&rec_path) {
        Ok(r) => r,
        Err(e) => return Status::Damaged(format!("unreadable commit record: {}", ErrorChain(&e))),
    };
    if rec.config_hash != plan.config_hash || rec.chunk != c.index || &rec.twin != name {
        return Status::Damaged(format!(
            "commit record is for chunk {} of twin {} under configuration {}",
            rec.chunk, rec.twin, rec.config_hash
        ));
    }
    match std::fs::read(&pq_path) {
        Err(e) => Status::Damaged(format!("Parquet file unreadable: {e}")),
        Ok(bytes) if !rec.matches(&bytes) => Status::Damaged(format!(
            "checksum mismatch: {} bytes, SHA-256 {}, the record says {} bytes, {}",
            bytes.len(),
            chunk::sha256_hex(&bytes),
            rec.bytes,
            rec.sha256
        )),
        Ok(_) => Status::Done,
    }
}

/// Writes `_batch.json` if absent, or checks that it is this configuration's.
fn claim_output(plan: &BatchPlan, out: &Path) -> Result<(), BatchError> {
    std::fs::create_dir_all(out).map_err(BatchError::io("creating the output directory", out))?;
    let p = out.join(STATE_FILE);
    if p.exists() {
        let found = BatchState::read(out)?;
        if found.config_hash != plan.config_hash {
            return Err(BatchError::ForeignBatch {
                path: out.to_path_buf(),
                found: found.config_hash,
                expected: plan.config_hash.clone(),
            });
        }
        return Ok(());
    }
    commit_json(out, STATE_FILE, &plan.state()?, &mut |_| {})?;
    Ok(())
}

/// Removes temporary files of this shard's chunks in `dir`.
fn remove_strays(dir: &Path, shard: Shard, on_event: &mut dyn FnMut(BatchEvent)) -> Result<u64, BatchError> {
    let mut n = 0;
    for e in std::fs::read_dir(dir).map_err(BatchError::io("listing", dir))? {
        let e = e.map_err(BatchError::io("listing", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(target) = temp_target(&name) else { continue };
        let digits = target.trim_start_matches('_').trim_start_matches("chunk-");
        let Some(c) = digits.split('.').next().and_then(|d| d.parse::<u64>().ok()) else { continue };
        if shard.owns(c) {
            let path = e.path();
            std::fs::remove_file(&path).map_err(BatchError::io("removing the stray temporary file", &path))?;
            on_event(BatchEvent::StrayRemoved { path });
            n += 1;
        }
    }
    Ok(n)
}

/// A rayon pool of `threads` workers (default: one per core) to run [`BatchPlan::prepare`]
/// and [`run_batch`] in (`pool.install(|| ...)`); the output does not depend on it.
pub fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, BatchError> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(BatchError::Config("the thread count must be at least 1".to_string()));
        }
        b = b.num_threads(t);
    }
    b.build().map_err(|e| BatchError::Config(format!("starting {threads:?} worker threads: {e}")))
}

/// Runs this shard's part of the batch into `out` (module docs).
pub fn run_batch(
    plan: &BatchPlan,
    out: &Path,
    opts: RunOptions<'_>,
    on_event: &mut dyn FnMut(BatchEvent),
) -> Result<BatchSummary, BatchError> {
    let t_wall = Instant::now();
    let shard = opts.shard.unwrap_or(Shard::ALL);
    let engine: Box<dyn RolloutEngine> = plan.config.backend.engine()?;
    if !opts.dry_run {
        claim_output(plan, out)?;
    }
    let mine: Vec<&ChunkSpec> = plan.chunks.iter().filter(|c| shard.owns(c.index)).collect();
    let mut summary = BatchSummary {
        shard: shard.to_string(),
        config_hash: plan.config_hash.clone(),
        chunks_total: plan.chunks.len() as u64,
        chunks_mine: mine.len() as u64,
        ..BatchSummary::default()
    };
    let mut twins_mine: Vec<usize> = mine.iter().map(|c| c.twin).collect();
    twins_mine.dedup();
    if opts.dry_run {
        twins_mine.clear();
    }
    for &t in &twins_mine {
        let dir = twin_dir(out, &plan.twins[t].name);
        std::fs::create_dir_all(&dir).map_err(BatchError::io("creating", &dir))?;
        summary.strays_removed += remove_strays(&dir, shard, on_event)?;
    }
    let t_check = Instant::now();
    let status: Vec<Status> = if opts.dry_run {
        mine.iter().map(|_| Status::Todo).collect()
    } else {
        mine.par_iter().map(|c| check_chunk(plan, out, c)).collect()
    };
    summary.check_s = t_check.elapsed().as_secs_f64();
    let mut todo = Vec::new();
    for (c, st) in mine.iter().zip(status) {
        match st {
            Status::Done => summary.chunks_skipped += 1,
            Status::Todo | Status::Unrecorded => todo.push(*c),
            Status::Damaged(reason) => {
                let path = twin_dir(out, &plan.twins[c.twin].name).join(chunk_file_name(c.index));
                tracing::warn!(chunk = c.index, path = %path.display(), %reason, "damaged chunk, redoing it");
                on_event(BatchEvent::Damaged { chunk: c.index, path, reason });
                summary.chunks_damaged += 1;
                todo.push(*c);
            }
        }
    }
    on_event(BatchEvent::Planned {
        shard,
        chunks_total: summary.chunks_total,
        chunks_mine: summary.chunks_mine,
        chunks_done: summary.chunks_skipped,
        chunks_todo: todo.len() as u64,
        rollouts_todo: todo.iter().map(|c| plan.rollouts_of(c)).sum(),
    });
    let local = AtomicU64::new(0);
    let progress = opts.progress.unwrap_or(&local);
    for (n, c) in todo.iter().enumerate() {
        let nth = n as u64 + 1;
        let hook = |stage: CommitStage| {
            if let Some(h) = opts.commit_hook {
                h(stage, nth)
            }
        };
        let tw = &plan.twins[c.twin];
        let dir = twin_dir(out, &tw.name);
        let rec_path = dir.join(record_file_name(c.index));
        if !opts.dry_run && rec_path.exists() {
            // A damaged chunk: its record goes first, so no crash can leave a record beside
            // a file it does not describe.
            std::fs::remove_file(&rec_path).map_err(BatchError::io("removing the damaged commit record", &rec_path))?;
            chunk::sync_dir(&dir)?;
        }
        let scenarios = plan.scenarios_of(c);
        let t_map = Instant::now();
        let map = tw.map()?;
        summary.map_s += t_map.elapsed().as_secs_f64();
        let cfg = plan.config.rollout_config(tw.rollout_seed);
        let t0 = Instant::now();
        let rollouts = engine.rollout(&plan.network, map, scenarios, &cfg, progress)?;
        summary.rollout_s += t0.elapsed().as_secs_f64();
        if opts.dry_run {
            summary.chunks_written += 1;
            summary.rollouts_written += plan.rollouts_of(c);
            summary.rows_written += rollouts.iter().flat_map(|r| &r.samples).map(|s| s.len() as u64).sum::<u64>();
            continue;
        }
        let t1 = Instant::now();
        let file = chunk_file_name(c.index);
        let (bytes, rows) = chunk::encode_chunk(&tw.name, c.index, &rollouts, &dir.join(&file))?;
        drop(rollouts);
        commit_file(&dir, &file, &bytes, &mut |s| {
            hook(match s {
                WriteStage::PartialTemp => CommitStage::ParquetPartial,
                WriteStage::TempWritten => CommitStage::ParquetWritten,
                WriteStage::Renamed => CommitStage::ParquetRenamed,
            })
        })?;
        let record = ChunkRecord {
            format: chunk::CHUNK_RECORD_FORMAT.to_string(),
            config_hash: plan.config_hash.clone(),
            twin: tw.name.clone(),
            chunk: c.index,
            file,
            first_scenario_id: scenarios.first().map(|s| s.scenario_id).unwrap_or(0),
            last_scenario_id: scenarios.last().map(|s| s.scenario_id).unwrap_or(0),
            scenarios: scenarios.len() as u64,
            rollouts: plan.rollouts_of(c),
            rows,
            bytes: bytes.len() as u64,
            sha256: chunk::sha256_hex(&bytes),
        };
        commit_json(&dir, &record_file_name(c.index), &record, &mut |s| {
            hook(match s {
                WriteStage::PartialTemp => CommitStage::RecordPartial,
                WriteStage::TempWritten => CommitStage::RecordWritten,
                WriteStage::Renamed => CommitStage::Committed,
            })
        })?;
        summary.write_s += t1.elapsed().as_secs_f64();
        summary.chunks_written += 1;
        summary.rollouts_written += record.rollouts;
        summary.rows_written += rows;
        summary.bytes_written += record.bytes;
        tracing::debug!(chunk = c.index, twin = %tw.name, rows, "chunk committed");
        on_event(BatchEvent::ChunkWritten {
            chunk: c.index,
            twin: tw.name.clone(),
            rollouts: record.rollouts,
            rows,
            bytes: record.bytes,
        });
    }
    summary.wall_s = t_wall.elapsed().as_secs_f64();
    Ok(summary)
}
