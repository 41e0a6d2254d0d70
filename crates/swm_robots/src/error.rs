//! The one error type of `swm_robots`.

/// Everything that can go wrong in `swm_robots`.
///
/// A variant with a cause returns it from `source()` and leaves it out of its own message:
/// print the chain (anyhow's `{:#}`, or `swm_core::ErrorChain`) to see it.
#[derive(Debug, thiserror::Error)]
pub enum RobotError {
    /// The GPU engine (feature `gpu`) could not start or run.
    #[cfg(feature = "gpu")]
    #[error("GPU engine")]
    Gpu(#[from] swm_gpu::GpuError),
    /// A parameter outside its documented range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The drone's A* found no route through free airspace.
    #[error("no drone route from {from:?} to {to:?}: {reason}")]
    NoAirRoute {
        /// Start (twin frame, m).
        from: [f64; 3],
        /// Goal (twin frame, m).
        to: [f64; 3],
        /// Why.
        reason: String,
    },
    /// No route between two nodes of a graph.
    #[error("no route on the {graph} graph from node {from} to node {to}")]
    NoRoute {
        /// `walk` or `lane`.
        graph: &'static str,
        /// Start node (walk node or lane index).
        from: u32,
        /// Goal node.
        to: u32,
    },
    /// The twin cannot host this robot (no walk graph, no lanes, no route long enough).
    #[error("twin {twin}: {reason}")]
    Scene {
        /// The twin's name.
        twin: String,
        /// What is missing.
        reason: String,
    },
    /// The simulator refused the configuration.
    #[error("teacher simulator")]
    Sim(#[from] swm_sim::SimError),
    /// The world model failed (loading the model, building its map).
    #[error("world model")]
    Model(#[from] swm_model::ModelError),
    /// Loading a twin failed (`.swt`, OSM, procedural district).
    #[error("loading twin {path}: {reason}")]
    Load {
        /// The file (or `<default district>`).
        path: String,
        /// The underlying error, in words.
        reason: String,
    },
    /// The environment was stepped before `reset` or after its episode ended.
    #[error("environment: {0}")]
    EnvState(&'static str),
}
