//! The batch configuration: one TOML file (`deploy/example-batch.toml` shows every key).
//!
//! ```toml
//! seed = 1                       # decides everything: teacher runs, rollout draws
//! output = "batches/example"     # relative paths are relative to the current directory
//! model = "default"              # or a .safetensors file; "default": assets/model/default.safetensors
//! twins = ["default", "procgen:7", { path = "yeouido.swt", scenarios = "scenarios/yeouido" }]
//! samples = 4                    # rollouts per scenario
//! horizon = 80                   # frames per rollout (0.1 s each)
//! chunk_size = 16                # scenarios per chunk (one Parquet file)
//! backend = "cpu"                # or "gpu"
//! scenarios_per_twin = 256       # optional: at most this many scenarios per twin (evenly spread)
//!
//! [sampling]                     # optional, defaults shown
//! temperature = 1.0
//! top_k = 0
//! top_p = 0.95
//!
//! [teacher]                      # twins without a scenario directory: fresh teacher scenarios
//! vehicles = 120
//! pedestrians = 80
//! warmup_s = 20.0
//! duration_s = 30.0
//! ```
//!
//! A twin is `"default"` (the embedded procedural district), `"procgen:SEED"` (a procedural
//! district with another seed), or a `.swt` file; as a table it can also name its partition
//! (`name`, default: `default`, `procgen-SEED` or the file stem), a directory of teacher
//! scenarios from `swm scenarios` (`scenarios`) and the seed of that teacher run's signal
//! plans (`signal_seed`, default: the run's seed that `swm scenarios` recorded in the
//! directory's `index.json`, else recorded signals). A directory whose `index.json` names
//! another twin than `path` is refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use swm_model::SamplingConfig;

use crate::BatchError;
use crate::backend::Backend;

/// One twin of the batch (see the module docs for the string forms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "TwinSpecRepr")]
pub struct TwinSpec {
    /// `default`, `procgen:SEED` or a `.swt` path.
    pub path: String,
    /// Partition name (`twin=NAME`); default from `path`.
    pub name: Option<String>,
    /// A directory of teacher scenarios (`swm scenarios`); default: fresh teacher scenarios.
    pub scenarios: Option<PathBuf>,
    /// Seed of the signal plans of the run the scenarios were cut from; default: the seed
    /// recorded in the directory's `index.json`.
    pub signal_seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TwinSpecRepr {
    Path(String),
    Table(TwinTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TwinTable {
    path: String,
    name: Option<String>,
    scenarios: Option<PathBuf>,
    signal_seed: Option<u64>,
}

impl From<TwinSpecRepr> for TwinSpec {
    fn from(r: TwinSpecRepr) -> Self {
        match r {
            TwinSpecRepr::Path(path) => TwinSpec { path, name: None, scenarios: None, signal_seed: None },
            TwinSpecRepr::Table(t) => {
                TwinSpec { path: t.path, name: t.name, scenarios: t.scenarios, signal_seed: t.signal_seed }
            }
        }
    }
}

/// What a twin spec's `path` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwinSource {
    /// The embedded default district.
    Default,
    /// A procedural district with this seed (the embedded parameters otherwise).
    Procgen(u64),
    File(PathBuf),
}

impl TwinSpec {
    pub fn source(&self) -> Result<TwinSource, BatchError> {
        if self.path == "default" {
            return Ok(TwinSource::Default);
        }
        if let Some(seed) = self.path.strip_prefix("procgen:") {
            let seed = seed
                .trim()
                .parse()
                .map_err(|e| BatchError::Config(format!("twin {:?}: bad procedural seed: {e}", self.path)))?;
            return Ok(TwinSource::Procgen(seed));
        }
        Ok(TwinSource::File(PathBuf::from(&self.path)))
    }

    /// The partition name: `name`, else `default`, `procgen-SEED` or the file stem (without
    /// `.swt`).
    pub fn partition_name(&self) -> Result<String, BatchError> {
        if let Some(n) = &self.name {
            return Ok(n.clone());
        }
        Ok(match self.source()? {
            TwinSource::Default => "default".to_string(),
            TwinSource::Procgen(seed) => format!("procgen-{seed}"),
            TwinSource::File(p) => {
                p.file_name().map(|f| f.to_string_lossy().trim_end_matches(".swt").to_string()).unwrap_or_default()
            }
        })
    }
}

/// Fresh teacher scenarios: the teacher simulator runs on the twin (seed derived from the
/// batch seed and the twin's name, see [`crate::plan`]) for `warmup_s + duration_s`, and
/// scenarios are cut from the recorded `duration_s` (`swm_dataset::cut_scenarios`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeacherConfig {
    pub vehicles: u32,
    pub pedestrians: u32,
    /// Simulated before recording (traffic spreads from the spawn points).
    pub warmup_s: f64,
    /// Recorded.
    pub duration_s: f64,
    /// History of each scenario (the model uses up to 1 s).
    pub history_s: f64,
    /// Teacher future each scenario needs (0: any current time with history qualifies).
    pub future_s: f64,
    /// Time between two scenarios of the same centre agent.
    pub stride_s: f64,
    /// Agents within this radius of the centre are in the scenario.
    pub radius_m: f64,
    /// Centre scenarios on every agent, not only vehicles.
    pub all_centres: bool,
}

impl Default for TeacherConfig {
    fn default() -> Self {
        TeacherConfig {
            vehicles: 120,
            pedestrians: 80,
            warmup_s: 20.0,
            duration_s: 30.0,
            history_s: 1.0,
            future_s: 0.0,
            stride_s: 1.0,
            radius_m: 50.0,
            all_centres: false,
        }
    }
}

/// Token sampling (a table with defaults; [`SamplingConfig`] without them).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingSection {
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
}

impl Default for SamplingSection {
    fn default() -> Self {
        let s = SamplingConfig::default();
        SamplingSection { temperature: s.temperature, top_k: s.top_k, top_p: s.top_p }
    }
}

impl From<SamplingSection> for SamplingConfig {
    fn from(s: SamplingSection) -> Self {
        SamplingConfig { temperature: s.temperature, top_k: s.top_k, top_p: s.top_p }
    }
}

/// A batch (module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    pub seed: u64,
    /// Output directory.
    pub output: PathBuf,
    /// `default` or a `.safetensors` file.
    #[serde(default = "default_model")]
    pub model: String,
    pub twins: Vec<TwinSpec>,
    /// Rollouts per scenario.
    #[serde(default = "default_samples")]
    pub samples: u32,
    /// Frames per rollout (0.1 s each).
    #[serde(default = "default_horizon")]
    pub horizon: u32,
    /// Scenarios per chunk (one Parquet file).
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u32,
    #[serde(default)]
    pub backend: Backend,
    /// At most this many scenarios per twin, evenly spread over its scenarios.
    #[serde(default)]
    pub scenarios_per_twin: Option<u64>,
    #[serde(default)]
    pub sampling: SamplingSection,
    #[serde(default)]
    pub teacher: TeacherConfig,
}

fn default_model() -> String {
    "default".to_string()
}
fn default_samples() -> u32 {
    4
}
fn default_horizon() -> u32 {
    80
}
fn default_chunk_size() -> u32 {
    16
}

/// Whether `name` may be a partition directory name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['.', '_'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl BatchConfig {
    /// Parses and validates a configuration.
    pub fn from_toml_str(text: &str) -> Result<BatchConfig, BatchError> {
        let c: BatchConfig = toml::from_str(text).map_err(|e| BatchError::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads, parses and validates a configuration file (errors name the file).
    pub fn load(path: &Path) -> Result<BatchConfig, BatchError> {
        let text = std::fs::read_to_string(path).map_err(BatchError::io("reading", path))?;
        Self::from_toml_str(&text).map_err(|e| match e {
            BatchError::Config(message) => BatchError::ConfigFile { path: path.to_path_buf(), message },
            e => e,
        })
    }

    /// Checks every value's domain.
    pub fn validate(&self) -> Result<(), BatchError> {
        let bad = |m: String| Err(BatchError::Config(m));
        if self.twins.is_empty() {
            return bad("`twins` is empty: name at least one (\"default\" is the embedded district)".into());
        }
        if self.samples == 0 || self.samples >= 1 << 24 {
            return bad(format!("`samples` must be in 1..16777216 (the sampler keys 24 bits), got {}", self.samples));
        }
        if self.horizon == 0 {
            return bad("`horizon` must be at least 1 frame".into());
        }
        if self.chunk_size == 0 {
            return bad("`chunk_size` must be at least 1 scenario".into());
        }
        if self.scenarios_per_twin == Some(0) {
            return bad("`scenarios_per_twin` must be at least 1 (leave it out for all)".into());
        }
        let s = &self.sampling;
        if !(s.temperature.is_finite() && s.temperature >= 0.0) {
            return bad(format!("`sampling.temperature` must be >= 0, got {}", s.temperature));
        }
        if !(s.top_p > 0.0 && s.top_p <= 1.0) {
            return bad(format!("`sampling.top_p` must be in (0, 1], got {}", s.top_p));
        }
        let t = &self.teacher;
        for (name, v) in [
            ("warmup_s", t.warmup_s),
            ("duration_s", t.duration_s),
            ("history_s", t.history_s),
            ("future_s", t.future_s),
            ("stride_s", t.stride_s),
            ("radius_m", t.radius_m),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("`teacher.{name}` must be a finite number >= 0, got {v}"));
            }
        }
        if t.duration_s <= t.history_s + t.future_s {
            return bad(format!(
                "`teacher.duration_s` ({}) must exceed history_s + future_s ({}) to cut any scenario",
                t.duration_s,
                t.history_s + t.future_s
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for spec in &self.twins {
            spec.source()?;
            let name = spec.partition_name()?;
            if !valid_name(&name) {
                return bad(format!(
                    "twin {:?}: partition name {name:?} must be ASCII letters, digits, '-', '_' or '.' (and not start with '.' or '_'); set `name`",
                    spec.path
                ));
            }
            if !names.insert(name.clone()) {
                return bad(format!("two twins are named {name:?}: give one a `name`"));
            }
        }
        Ok(())
    }

    /// The model file this configuration names.
    pub fn model_path(&self) -> PathBuf {
        if self.model == "default" { swm_model::default_model_path() } else { PathBuf::from(&self.model) }
    }

    /// The rollout settings of twin rollouts with `seed`.
    pub fn rollout_config(&self, seed: u64) -> swm_model::RolloutConfig {
        swm_model::RolloutConfig { steps: self.horizon, samples: self.samples, seed, sampling: self.sampling.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_and_long_twins_with_defaults() {
        let c = BatchConfig::from_toml_str(
            r#"
            seed = 3
            output = "out"
            twins = ["default", "procgen:7", { path = "a/yeouido.swt", scenarios = "sc", signal_seed = 2 }]
            [teacher]
            vehicles = 10
            "#,
        )
        .unwrap();
        assert_eq!((c.samples, c.horizon, c.chunk_size, c.backend), (4, 80, 16, Backend::Cpu));
        assert_eq!(c.teacher.vehicles, 10);
        assert_eq!(c.teacher.pedestrians, 80);
        let names: Vec<String> = c.twins.iter().map(|t| t.partition_name().unwrap()).collect();
        assert_eq!(names, ["default", "procgen-7", "yeouido"]);
        assert_eq!(c.twins[1].source().unwrap(), TwinSource::Procgen(7));
        assert_eq!(c.twins[2].signal_seed, Some(2));
        assert_eq!(c.model_path(), swm_model::default_model_path());
    }

    #[test]
    fn the_deploy_examples_parse() {
        let c = BatchConfig::from_toml_str(include_str!("../../../deploy/example-batch.toml")).unwrap();
        assert_eq!((c.seed, c.samples, c.horizon, c.chunk_size), (1, 4, 80, 16));
        assert_eq!(c.teacher, TeacherConfig::default(), "the example shows the defaults");
        assert_eq!(c.sampling, SamplingSection::default());
        let k = BatchConfig::from_toml_str(include_str!("../../../deploy/k8s/batch.toml")).unwrap();
        assert!(k.output.starts_with("/data"));
        // The Indexed Job's SWM_SHARDS repeats its completions.
        let job = include_str!("../../../deploy/k8s/indexed-job.yaml");
        let value_after = |key: &str| {
            let at = job.find(key).unwrap_or_else(|| panic!("{key} in indexed-job.yaml")) + key.len();
            job[at..].split_whitespace().next().unwrap().trim_matches('"').to_string()
        };
        assert_eq!(value_after("completions:"), value_after("name: SWM_SHARDS\n              value:"));
        assert_eq!(value_after("completionMode:"), "Indexed");
    }

    #[test]
    fn refuses_bad_values_with_the_key() {
        let base = "seed = 1\noutput = \"o\"\n";
        for (extra, needle) in [
            ("twins = []", "`twins` is empty"),
            ("twins = [\"default\"]\nsamples = 0", "`samples`"),
            ("twins = [\"default\"]\nhorizon = 0", "`horizon`"),
            ("twins = [\"default\"]\nchunk_size = 0", "`chunk_size`"),
            ("twins = [\"default\", \"default\"]", "two twins are named"),
            ("twins = [\"a/b c.swt\"]", "partition name"),
            ("twins = [\"procgen:x\"]", "bad procedural seed"),
            ("twins = [\"default\"]\nbackend = \"tpu\"", "tpu"),
            ("twins = [\"default\"]\nsampels = 3", "sampels"),
            ("twins = [\"default\"]\n[teacher]\nduration_s = 0.5", "teacher.duration_s"),
            ("twins = [\"default\"]\n[sampling]\ntop_p = 0.0", "top_p"),
        ] {
            let e = BatchConfig::from_toml_str(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(e.contains(needle), "{extra:?}: {e}");
        }
    }
}
