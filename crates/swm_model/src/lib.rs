//! `swm_model`: the generative world model of Seoul World Model.
//!
//! A learned, stochastic, action-conditioned model of how a city's agents move. Every step
//! (0.1 s), for every agent, features are computed from the current world (`features`), a
//! small network (`net`) gives a distribution over **motion tokens** (`tokens`), one token
//! is sampled with keyed counter-based randomness (`sampling`) and the agent's kinematics
//! advance. Rollouts (`rollout`) run on the CPU with a pure-Rust forward pass; training
//! (`train`) uses candle; training data (`data`) come from teacher runs on procedurally
//! generated districts or from scenario files.
//!
//! * [`tokens`]: vocabularies (vehicles: 13 accelerations × 11 yaw rates; pedestrians:
//!   9 × 9 velocity changes), kinematic steps, closed-loop tokenisation;
//! * [`map`]: the twin precomputed for the model (paths with successors, class raster,
//!   signal plans);
//! * [`features`]: the agent-centric feature vector (layout table there);
//! * [`net`]: the network, its FLOPs, the `swm-model/1` safetensors layout, the CPU forward;
//! * [`matmul`]: the dense layers' products (an AVX-512 or AVX2 kernel on packed weights,
//!   `gemm` elsewhere, the same bits);
//! * [`sampling`]: keyed Philox draws `(seed, scenario, agent, step, sample)`, temperature,
//!   top-k, top-p;
//! * [`rollout`]: closed-loop rollouts (with collision and off-road feasibility masks),
//!   external drivers, rollout files;
//! * `cells`: the agents of a frame by square cell, for the neighbour and collision
//!   candidate searches of frames with many agents (the same results as a scan);
//! * [`data`]: episodes, training pairs, procedural teacher data, scenario directories;
//! * [`train`]: behaviour cloning with candle;
//! * [`finetune`]: rollout fine-tuning (DAgger with the feasibility masks as the expert).
//!
//! **Determinism**: training and rollouts draw every random number from `CounterRng` /
//! Philox keyed by seeds; rollouts give the same bytes whatever the thread count.

mod cells;
pub mod data;
pub mod expf;
pub mod features;
pub mod finetune;
pub mod map;
pub mod matmul;
pub mod net;
pub mod rollout;
pub mod sampling;
pub mod tokens;
pub mod train;

pub use map::MapContext;
pub use net::{MODEL_FORMAT, NetConfig, Network};
pub use rollout::{
    AgentDriver, FeasibilityMask, LiveRollout, RolloutConfig, ScenarioRollout, WorldAgent, rollout_scenarios,
    rollout_scenarios_masked, rollout_scenarios_with, scenario_from_history,
};
pub use sampling::SamplingConfig;

use std::path::PathBuf;

/// Errors of the world model.
///
/// A variant with a cause returns it from `source()` and leaves it out of its own message:
/// print the chain (anyhow's `{:#}`, or `swm_core::ErrorChain`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A model file whose safetensors layout is wrong (`tensor` empty: the header).
    #[error("{path}: bad model file (tensor `{tensor}`): {message}")]
    File { path: PathBuf, tensor: String, message: String },
    /// Model bytes with a wrong layout (`tensor` empty: the header).
    #[error("bad model layout (tensor `{tensor}`): {message}")]
    Layout { tensor: String, message: String },
    #[error("map: {0}")]
    Map(String),
    #[error("training data: {0}")]
    Data(String),
    #[error("dataset")]
    Dataset(#[source] Box<swm_dataset::DatasetError>),
    #[error("training: {0}")]
    Train(String),
}

/// Where the shipped default model lives in the repository (`assets/model/default.safetensors`).
pub fn default_model_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/model/default.safetensors")
}
