//! A prepared batch: model, twins, scenarios, derived seeds, the chunk table and the
//! configuration hash.
//!
//! # Derived seeds
//! From the batch seed `S` and a twin's partition name `NAME`, with `h = crc32(NAME)`:
//!
//! ```text
//! teacher run seed  = CounterRng::new(S, 1 << 32 | h).next_u64()   (also its signal plans)
//! rollout seed      = CounterRng::new(S, 2 << 32 | h).next_u64()   (keys every token draw)
//! ```
//!
//! so adding or reordering twins changes no other twin's data (only chunk numbers).
//!
//! # Configuration hash
//! SHA-256 (first 16 hex digits) of the JSON of: the format tag, this crate's version, the
//! configuration without `output`, the model file's SHA-256, and per twin its name, the
//! SHA-256 of its `.swt` bytes (of the built twin for procedural ones) and of its scenario
//! directory's files. Everything that decides a chunk's bytes is in it; paths to the same
//! bytes elsewhere are not (the output directory may move, shards may mount it anywhere).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use swm_core::ErrorChain;
use swm_core::rng::CounterRng;
use swm_dataset::{CenterSelector, Scenario, ScenarioOptions};
use swm_model::{MapContext, Network};
use swm_sim::{SimConfig, Simulation};
use swm_twin::Twin;

use crate::chunk::{hex, sha256_hex};
use crate::config::{BatchConfig, TwinSource, TwinSpec};
use crate::{BatchError, chunk};

/// Stream of teacher run seeds.
pub const STREAM_TEACHER: u64 = 1;
/// Stream of rollout seeds.
pub const STREAM_ROLLOUT: u64 = 2;

/// Seed of `stream` for twin `name` under batch seed `seed` (module docs).
pub fn derive_seed(seed: u64, stream: u64, name: &str) -> u64 {
    let h = crc32fast::hash(name.as_bytes());
    CounterRng::new(seed, (stream << 32) | u64::from(h)).next_u64()
}

/// One twin, loaded, with its scenarios.
pub struct PreparedTwin {
    pub name: String,
    pub spec: TwinSpec,
    pub twin: Arc<Twin>,
    /// SHA-256 of the `.swt` bytes.
    pub twin_sha256: String,
    /// SHA-256 over the scenario directory's files (names and bytes), when scenarios come
    /// from one.
    pub scenarios_sha256: Option<String>,
    /// Seed of the teacher run (fresh scenarios).
    pub teacher_seed: Option<u64>,
    /// Seed of the signal plans the model sees (`None`: recorded signal states).
    pub signal_seed: Option<u64>,
    pub rollout_seed: u64,
    pub scenarios: Vec<Scenario>,
    map: OnceLock<MapContext>,
}

impl PreparedTwin {
    /// The model's view of the twin (built on first use: only shards with chunks of this
    /// twin pay for it).
    pub fn map(&self) -> Result<&MapContext, BatchError> {
        if let Some(m) = self.map.get() {
            return Ok(m);
        }
        let m = MapContext::new(&self.twin, self.signal_seed).map_err(|e| BatchError::Twin {
            twin: self.name.clone(),
            message: format!("preparing the map: {}", ErrorChain(&e)),
        })?;
        let _ = self.map.set(m);
        Ok(self.map.get().expect("set above"))
    }
}

/// One chunk: consecutive scenarios of one twin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkSpec {
    /// Global chunk number.
    pub index: u64,
    /// Index into [`BatchPlan::twins`].
    pub twin: usize,
    /// Indices into the twin's scenarios.
    pub scenarios: Range<usize>,
}

/// A batch ready to run.
pub struct BatchPlan {
    pub config: BatchConfig,
    pub model_path: PathBuf,
    pub model_sha256: String,
    pub network: Network,
    pub twins: Vec<PreparedTwin>,
    pub chunks: Vec<ChunkSpec>,
    /// Module docs.
    pub config_hash: String,
}

/// `_batch.json`: what a batch output directory is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchState {
    /// `swm-batch/1`.
    pub format: String,
    pub config_hash: String,
    /// [`crate::code_version`] of the shard that wrote this file first.
    pub code_version: String,
    pub seed: u64,
    /// The configuration, without `output`.
    pub config: serde_json::Value,
    /// The configuration's `model` (`default` or the path as given) and its SHA-256.
    pub model: String,
    pub model_sha256: String,
    pub twins: Vec<TwinState>,
    /// Chunks in all (numbered 0..chunks).
    pub chunks: u64,
    pub chunk_size: u32,
    pub samples: u32,
    pub horizon: u32,
}

/// One twin in `_batch.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TwinState {
    pub name: String,
    /// The configuration's `path`.
    pub path: String,
    pub twin_sha256: String,
    pub scenarios_dir: Option<PathBuf>,
    pub scenarios_sha256: Option<String>,
    pub teacher_seed: Option<u64>,
    pub signal_seed: Option<u64>,
    pub rollout_seed: u64,
    pub scenarios: u64,
    /// Its chunks are `first_chunk..first_chunk + chunks`.
    pub first_chunk: u64,
    pub chunks: u64,
}

impl BatchState {
    /// The twin and the index within it of global chunk `c`.
    pub fn twin_of(&self, c: u64) -> Option<&TwinState> {
        self.twins.iter().find(|t| (t.first_chunk..t.first_chunk + t.chunks).contains(&c))
    }

    /// Reads `OUT/_batch.json`.
    pub fn read(out: &Path) -> Result<BatchState, BatchError> {
        let p = out.join(STATE_FILE);
        if !p.is_file() {
            return Err(BatchError::NotABatch { path: out.to_path_buf() });
        }
        chunk::read_json(&p)
    }
}

/// Name of the batch state file in the output directory.
pub const STATE_FILE: &str = "_batch.json";

fn config_value(config: &BatchConfig) -> Result<serde_json::Value, BatchError> {
    let mut v = serde_json::to_value(config).map_err(|e| BatchError::Config(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("output");
    }
    Ok(v)
}

fn sha256_of_file(path: &Path) -> Result<(Vec<u8>, String), BatchError> {
    let bytes = std::fs::read(path).map_err(BatchError::io("reading", path))?;
    let h = sha256_hex(&bytes);
    Ok((bytes, h))
}

/// SHA-256 over a scenario directory's regular files (sorted names, each name then bytes).
fn sha256_of_dir(dir: &Path) -> Result<String, BatchError> {
    use sha2::{Digest, Sha256};
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(BatchError::io("listing", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet" || x == "json"))
        .collect();
    names.sort();
    let mut h = Sha256::new();
    for p in names {
        let bytes = std::fs::read(&p).map_err(BatchError::io("reading", &p))?;
        h.update(p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default().as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(hex(&h.finalize()))
}

/// Evenly spread pick of `limit` of `n` items (all when `n <= limit`).
fn spread(n: usize, limit: Option<u64>) -> Vec<usize> {
    match limit {
        Some(l) if (l as usize) < n => (0..l as usize).map(|i| i * n / l as usize).collect(),
        _ => (0..n).collect(),
    }
}

fn prepare_twin(config: &BatchConfig, spec: &TwinSpec) -> Result<PreparedTwin, BatchError> {
    let name = spec.partition_name()?;
    let terr = |message: String| BatchError::Twin { twin: name.clone(), message };
    // The twin, its SHA-256, and its size and CRC-32 (as run manifests record twins).
    let (twin, twin_sha256, twin_size_crc) = match spec.source()? {
        TwinSource::File(path) => {
            let (bytes, h) = sha256_of_file(&path)?;
            let twin = swm_twin::file::read_swt_bytes(&bytes, &path.display().to_string())
                .map_err(|e| terr(format!("{}: {}", path.display(), ErrorChain(&e))))?;
            (twin, h, (bytes.len() as u64, crc32fast::hash(&bytes)))
        }
        src => {
            let mut params = swm_procgen::DistrictParams::embedded_default();
            if let TwinSource::Procgen(seed) = src {
                params = params.with_seed(seed);
                params.name = format!("procgen-{seed}");
            }
            let (twin, _) = swm_procgen::build_district(&params).map_err(|e| terr(ErrorChain(&e).to_string()))?;
            let bytes = swm_twin::file::write_swt_bytes(&twin).map_err(|e| terr(ErrorChain(&e).to_string()))?;
            (twin, sha256_hex(&bytes), (bytes.len() as u64, crc32fast::hash(&bytes)))
        }
    };
    let twin = Arc::new(twin);
    let rollout_seed = derive_seed(config.seed, STREAM_ROLLOUT, &name);
    let (scenarios, scenarios_sha256, teacher_seed, signal_seed) = match &spec.scenarios {
        Some(dir) => {
            let h = sha256_of_dir(dir)?;
            let sc = swm_model::data::read_scenario_dir(dir)
                .map_err(|e| terr(format!("{}: {}", dir.display(), ErrorChain(&e))))?;
            // The run the directory was cut from (its index.json): its twin must be this
            // one, and its seed gives the signal plans.
            let source = swm_dataset::scenario::scenario_source(dir)
                .map_err(|e| terr(format!("{}: {}", dir.display(), ErrorChain(&e))))?;
            if let Some(src) = &source {
                src.check_twin_bytes(dir, Path::new(&spec.path), twin_size_crc.0, twin_size_crc.1)
                    .map_err(|e| terr(ErrorChain(&e).to_string()))?;
            }
            let signal_seed = spec.signal_seed.or(source.and_then(|s| s.seed));
            if signal_seed.is_none() {
                tracing::warn!(twin = %name, "no signal seed (`signal_seed`, or the run's in index.json): recorded signal states");
            }
            (sc, Some(h), None, signal_seed)
        }
        None => {
            let t = &config.teacher;
            let seed = derive_seed(config.seed, STREAM_TEACHER, &name);
            let sim_config = SimConfig {
                seed,
                vehicles: t.vehicles,
                pedestrians: t.pedestrians,
                duration_s: t.warmup_s + t.duration_s,
                record_every_steps: 1,
                density: 1.0,
            };
            let mut sim =
                Simulation::new(twin.clone(), sim_config).map_err(|e| terr(format!("setting up the teacher: {e}")))?;
            for _ in 0..(t.warmup_s / swm_sim::DT_S).round() as u32 {
                sim.step();
            }
            let mut records = sim.records();
            sim.run((t.duration_s / swm_sim::DT_S).round() as u32, &mut |_, r| records.extend_from_slice(r));
            let opts = ScenarioOptions {
                centers: if t.all_centres { CenterSelector::All } else { CenterSelector::Vehicles },
                history_s: t.history_s,
                future_s: t.future_s,
                radius_m: t.radius_m,
                stride_s: t.stride_s,
            };
            let sc = swm_dataset::cut_scenarios(&records, &opts)
                .map_err(|e| terr(format!("cutting scenarios: {}", ErrorChain(&e))))?;
            tracing::info!(twin = %name, records = records.len(), scenarios = sc.len(), "teacher scenarios");
            (sc, None, Some(seed), Some(seed))
        }
    };
    let pick = spread(scenarios.len(), config.scenarios_per_twin);
    let scenarios = if pick.len() == scenarios.len() {
        scenarios
    } else {
        let mut all: Vec<Option<Scenario>> = scenarios.into_iter().map(Some).collect();
        pick.iter().filter_map(|&i| all[i].take()).collect()
    };
    if scenarios.is_empty() {
        tracing::warn!(twin = %name, "no scenarios: the twin contributes no chunk");
    }
    Ok(PreparedTwin {
        name,
        spec: spec.clone(),
        twin,
        twin_sha256,
        scenarios_sha256,
        teacher_seed,
        signal_seed,
        rollout_seed,
        scenarios,
        map: OnceLock::new(),
    })
}

impl BatchPlan {
    /// Loads the model and every twin, makes or reads the scenarios (twins in parallel on
    /// the current rayon pool), and lays out the chunks. Fails early on a backend this build
    /// lacks.
    pub fn prepare(config: &BatchConfig) -> Result<BatchPlan, BatchError> {
        config.validate()?;
        config.backend.engine()?;
        let model_path = config.model_path();
        let (model_bytes, model_sha256) = sha256_of_file(&model_path)?;
        let network = Network::from_safetensors(&model_bytes)
            .map_err(|source| BatchError::Model { path: model_path.clone(), source })?;
        let twins: Vec<PreparedTwin> =
            config.twins.par_iter().map(|spec| prepare_twin(config, spec)).collect::<Result<_, _>>()?;
        let mut chunks = Vec::new();
        let k = config.chunk_size as usize;
        for (t, tw) in twins.iter().enumerate() {
            for lo in (0..tw.scenarios.len()).step_by(k) {
                let hi = (lo + k).min(tw.scenarios.len());
                chunks.push(ChunkSpec { index: chunks.len() as u64, twin: t, scenarios: lo..hi });
            }
        }
        let fingerprint = serde_json::json!({
            "format": chunk::BATCH_SCHEMA,
            "version": env!("CARGO_PKG_VERSION"),
            "config": config_value(config)?,
            "model_sha256": model_sha256,
            "twins": twins.iter().map(|t| serde_json::json!({
                "name": t.name,
                "twin_sha256": t.twin_sha256,
                "scenarios_sha256": t.scenarios_sha256,
            })).collect::<Vec<_>>(),
        });
        let config_hash = sha256_hex(fingerprint.to_string().as_bytes())[..16].to_string();
        tracing::info!(chunks = chunks.len(), %config_hash, "batch prepared");
        Ok(BatchPlan { config: config.clone(), model_path, model_sha256, network, twins, chunks, config_hash })
    }

    /// The scenarios of a chunk.
    pub fn scenarios_of(&self, c: &ChunkSpec) -> &[Scenario] {
        &self.twins[c.twin].scenarios[c.scenarios.clone()]
    }

    /// Rollouts (scenarios × samples) of a chunk.
    pub fn rollouts_of(&self, c: &ChunkSpec) -> u64 {
        c.scenarios.len() as u64 * u64::from(self.config.samples)
    }

    /// `_batch.json` of this plan.
    pub fn state(&self) -> Result<BatchState, BatchError> {
        let mut first = 0u64;
        let twins = self
            .twins
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let chunks = self.chunks.iter().filter(|c| c.twin == i).count() as u64;
                let s = TwinState {
                    name: t.name.clone(),
                    path: t.spec.path.clone(),
                    twin_sha256: t.twin_sha256.clone(),
                    scenarios_dir: t.spec.scenarios.clone(),
                    scenarios_sha256: t.scenarios_sha256.clone(),
                    teacher_seed: t.teacher_seed,
                    signal_seed: t.signal_seed,
                    rollout_seed: t.rollout_seed,
                    scenarios: t.scenarios.len() as u64,
                    first_chunk: first,
                    chunks,
                };
                first += chunks;
                s
            })
            .collect();
        Ok(BatchState {
            format: chunk::BATCH_SCHEMA.to_string(),
            config_hash: self.config_hash.clone(),
            code_version: crate::code_version(),
            seed: self.config.seed,
            config: config_value(&self.config)?,
            model: self.config.model.clone(),
            model_sha256: self.model_sha256.clone(),
            twins,
            chunks: self.chunks.len() as u64,
            chunk_size: self.config.chunk_size,
            samples: self.config.samples,
            horizon: self.config.horizon,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_by_stream_and_name() {
        let a = derive_seed(1, STREAM_ROLLOUT, "default");
        assert_eq!(a, derive_seed(1, STREAM_ROLLOUT, "default"));
        assert_ne!(a, derive_seed(1, STREAM_TEACHER, "default"));
        assert_ne!(a, derive_seed(1, STREAM_ROLLOUT, "other"));
        assert_ne!(a, derive_seed(2, STREAM_ROLLOUT, "default"));
    }

    #[test]
    fn spread_picks_evenly() {
        assert_eq!(spread(10, Some(3)), [0, 3, 6]);
        assert_eq!(spread(3, Some(5)), [0, 1, 2]);
        assert_eq!(spread(4, None), [0, 1, 2, 3]);
    }
}
