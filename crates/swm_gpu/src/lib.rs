//! `swm_gpu`: the world model's rollout engine on the GPU (wgpu compute shaders, issue 5).
//!
//! * [`context`]: adapter selection (a hardware GPU, else Mesa's lavapipe, else a clear
//!   [`GpuError::NoAdapter`]), buffers, pipelines, read-back;
//! * [`shaders`]: the WGSL sources in the top-level `shaders/` directory and the modules
//!   kernels are composed from;
//! * [`layout`]: the `#[repr(C)]` structs shared with WGSL (checked against naga's layouts);
//! * [`features`]: the agent features (feature layout 1) from a history ring kept on the
//!   device and the model's map packed once;
//! * [`philox`]: Philox4x32-10 and the keyed draws of `swm_model::sampling` on the GPU,
//!   bit-identical to the CPU;
//! * [`network`]: the network's forward pass (weights uploaded once; a fused neighbour MLP
//!   with masked max-pool, tiled linear layers for the trunk and the heads);
//! * [`sample`]: token sampling with the CPU's rule and generator, fused with the token
//!   kinematics, and the rollout feasibility masks ([`sample::GpuMasks`]);
//! * [`rollout`]: closed-loop rollouts with features, network, sampling, masks and
//!   kinematics all on the device ([`GpuRolloutEngine`] keeps the map and pipelines for
//!   repeated calls; [`ScriptedAgent`]s move robots along their plans from a buffer).
//!
//! Libraries do not print: adapter choice and wgpu errors go to `tracing`.

pub mod context;
pub mod features;
pub mod layout;
pub mod network;
pub mod philox;
pub mod rollout;
pub mod sample;
pub mod shaders;

pub use context::{AdapterKind, AdapterPreference, AdapterSummary, GpuContext};
pub use features::{GpuFeatures, GpuMap};
pub use network::GpuNetwork;
pub use rollout::{
    GpuRolloutEngine, GpuRolloutTimes, ScriptedAgent, rollout_scenarios_gpu, rollout_scenarios_gpu_masked,
    rollout_scenarios_gpu_timed,
};

/// Errors of the GPU engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No adapter fits the preference; `tried` lists every backend and adapter seen.
    #[error("no GPU adapter for preference {preference}; tried: {tried}")]
    NoAdapter { preference: String, tried: String },
    #[error("could not open a device on {adapter}: {message}")]
    Device { adapter: String, message: String },
    /// A WGSL module the device refused.
    #[error("shader `{shader}`: {message}")]
    Shader { shader: String, message: String },
    /// A validation, out-of-memory or device-lost error wgpu reported.
    #[error("wgpu: {0}")]
    Wgpu(String),
    #[error("{what} needs {bytes} bytes, more than the device's {limit}-byte buffer limit")]
    TooLarge { what: String, bytes: u64, limit: u64 },
    /// A network this engine cannot run (its sizes differ from the kernels').
    #[error("unsupported network: {0}")]
    Unsupported(String),
    /// Inputs of the wrong length or kind.
    #[error("bad input: {0}")]
    Input(String),
}
