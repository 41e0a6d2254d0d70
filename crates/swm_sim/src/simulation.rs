//! The simulation (placeholder: being written).

/// Configuration of a run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SimConfig {
    pub seed: u64,
    /// Vehicles kept in the district (spawned at the edges as others leave).
    pub vehicles: u32,
    pub pedestrians: u32,
    pub duration_s: f64,
}

/// A running simulation.
pub struct Simulation;
