//! `swm batch`: headless batch rollouts (`swm_batch`) with a progress bar, plus `--merge`
//! and `--verify` of an output directory.
//!
//! Test hook: `SWM_BATCH_TEST_ABORT=STAGE:K` aborts the process (`std::process::abort`, no
//! clean-up) when the K-th chunk this run writes reaches STAGE (`parquet-partial`,
//! `parquet-written`, `parquet-renamed`, `record-partial`, `record-written`, `committed`;
//! see `swm_batch::CommitStage`). The crash tests in `tests/batch.rs` use it.

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args};
use indicatif::ProgressBar;

use crate::commands::bar_style;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use swm_batch::{BatchConfig, BatchEvent, BatchPlan, CommitStage, RunOptions, Shard, ShardSource};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("what").required(true).args(["config", "merge", "verify"])))]
pub struct BatchArgs {
    /// The batch configuration (TOML; every key is shown in deploy/example-batch.toml).
    pub config: Option<PathBuf>,
    /// This process's shard, I/N (0-based): it writes the chunks c with c mod N = I.
    /// Default: SWM_SHARD, else a Slurm array task (SLURM_ARRAY_TASK_ID), else a Kubernetes
    /// Indexed Job (JOB_COMPLETION_INDEX with SWM_SHARDS), else 0/1.
    #[arg(long, requires = "config")]
    pub shard: Option<Shard>,
    /// Worker threads (default: one per core). The output does not depend on it.
    #[arg(long, requires = "config")]
    pub threads: Option<usize>,
    /// Output directory, overriding the configuration's `output`.
    #[arg(short, long, requires = "config")]
    pub output: Option<PathBuf>,
    /// Check a finished batch and write OUT/_manifest.json (row counts, checksums, config,
    /// model and code versions).
    #[arg(long, value_name = "OUT")]
    pub merge: Option<PathBuf>,
    /// With --merge: also write one Parquet file per twin into DIR (keep DIR outside OUT).
    #[arg(long, value_name = "DIR", requires = "merge")]
    pub merged_dir: Option<PathBuf>,
    /// Re-check every chunk's SHA-256 and row count; exit status 1 on any problem.
    #[arg(long, value_name = "OUT")]
    pub verify: Option<PathBuf>,
    /// Roll out this shard's chunks but write nothing (benchmarks: the bare rollout).
    #[arg(long, requires = "config")]
    pub dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn abort_hook() -> Result<Option<(CommitStage, u64)>> {
    let Ok(v) = std::env::var("SWM_BATCH_TEST_ABORT") else { return Ok(None) };
    let (stage, k) = v.split_once(':').context("SWM_BATCH_TEST_ABORT must be STAGE:K")?;
    let stage =
        CommitStage::from_name(stage).with_context(|| format!("SWM_BATCH_TEST_ABORT: unknown stage {stage:?}"))?;
    Ok(Some((stage, k.parse().context("SWM_BATCH_TEST_ABORT: K is not a number")?)))
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}

pub fn batch_cmd(a: BatchArgs, quiet: bool) -> Result<()> {
    if let Some(out) = &a.verify {
        return verify_cmd(out, a.json);
    }
    if let Some(out) = &a.merge {
        let m = swm_batch::merge(out, a.merged_dir.as_deref())?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&m)?);
        } else {
            println!(
                "merged {} chunks of {} twin(s): {} rollouts, {} rows, {} (configuration {})",
                m.chunks,
                m.twins.len(),
                m.rollouts,
                m.rows,
                human_bytes(m.bytes),
                m.config_hash
            );
            for f in &m.merged {
                println!("wrote {} ({} rows)", f.path, f.rows);
            }
            println!("wrote {}", out.join(swm_batch::merge::MANIFEST_FILE).display());
        }
        return Ok(());
    }
    let config_path = a.config.as_ref().expect("clap requires one of config, --merge, --verify");
    let mut config = BatchConfig::load(config_path)?;
    if let Some(o) = &a.output {
        config.output = o.clone();
    }
    let (shard, source) = match a.shard {
        Some(s) => (s, ShardSource::CommandLine),
        None => Shard::from_env()?,
    };
    let abort_at = abort_hook()?;
    let pool = swm_batch::thread_pool(a.threads)?;

    let pb = if quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    pb.enable_steady_tick(Duration::from_millis(200));
    pb.set_message(format!("preparing {} twin(s): model, scenarios", config.twins.len()));
    let plan = pool.install(|| BatchPlan::prepare(&config))?;
    pb.set_message("checking existing chunks");

    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let hook = move |stage: CommitStage, nth: u64| {
        if abort_at == Some((stage, nth)) {
            std::process::abort();
        }
    };
    let say = |line: String| if pb.is_hidden() { eprintln!("{line}") } else { pb.println(line) };
    let summary = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                pb.set_position(done.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut on_event = |e: BatchEvent| match e {
            BatchEvent::Planned { shard, chunks_total, chunks_mine, chunks_done, chunks_todo, rollouts_todo } => {
                if !quiet {
                    pb.set_style(bar_style("{spinner} [{bar:30}] {pos}/{len} rollouts {rate} ETA {eta} {msg}"));
                    pb.set_length(rollouts_todo);
                    pb.set_message(String::new());
                    pb.reset_eta();
                }
                say(format!(
                    "shard {shard} (from {source}): {chunks_mine} of {chunks_total} chunks, {chunks_done} already done, {chunks_todo} to write ({rollouts_todo} rollouts)"
                ));
            }
            BatchEvent::StrayRemoved { path } => say(format!("removed a stray temporary file {}", path.display())),
            BatchEvent::Damaged { chunk, path, reason } => {
                say(format!("chunk {chunk} is damaged ({reason}), redoing it: {}", path.display()))
            }
            BatchEvent::ChunkWritten { chunk, .. } => pb.set_message(format!("chunk {chunk}")),
        };
        let opts =
            RunOptions { shard: Some(shard), progress: Some(&done), commit_hook: Some(&hook), dry_run: a.dry_run };
        let r = pool.install(|| swm_batch::run_batch(&plan, &config.output, opts, &mut on_event));
        stop.store(true, Ordering::Relaxed);
        r
    })?;
    pb.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let rate = summary.rollouts_written as f64 / summary.wall_s.max(1e-9);
    println!(
        "shard {}: {} chunks {} ({} rollouts, {} rows, {}), {} already done, {} damaged and redone, in {:.1} s: {:.1} rollouts/s ({:.0}/h); map {:.1} s, rollout {:.1} s, writing {:.2} s ({:.1} % of rollout)",
        summary.shard,
        summary.chunks_written,
        if a.dry_run { "rolled out, nothing written (--dry-run)" } else { "written" },
        summary.rollouts_written,
        summary.rows_written,
        human_bytes(summary.bytes_written),
        summary.chunks_skipped,
        summary.chunks_damaged,
        summary.wall_s,
        rate,
        rate * 3600.0,
        summary.map_s,
        summary.rollout_s,
        summary.write_s,
        100.0 * summary.write_s / summary.rollout_s.max(1e-9)
    );
    println!("output: {}", config.output.display());
    Ok(())
}

fn verify_cmd(out: &std::path::Path, json: bool) -> Result<()> {
    let r = swm_batch::verify(out)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for p in &r.problems {
            println!("BAD {p}");
        }
        let list = |v: &[u64]| {
            let l: Vec<String> = v.iter().take(20).map(u64::to_string).collect();
            format!("{}{}", l.join(", "), if v.len() > 20 { ", ..." } else { "" })
        };
        if !r.uncommitted.is_empty() {
            println!(
                "UNCOMMITTED {} chunk(s) without a commit record (an interrupted writer: run the batch again): {}",
                r.uncommitted.len(),
                list(&r.uncommitted)
            );
        }
        if !r.missing.is_empty() {
            println!("MISSING {} chunk(s) not written yet: {}", r.missing.len(), list(&r.missing));
        }
        println!("{} of {} chunks verified ({} rows)", r.chunks_ok, r.chunks, r.rows);
    }
    if !r.is_ok() {
        bail!(
            "{}: {} chunk(s) damaged, {} uncommitted, {} missing",
            out.display(),
            r.problems.len(),
            r.uncommitted.len(),
            r.missing.len()
        );
    }
    Ok(())
}
