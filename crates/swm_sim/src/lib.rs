//! `swm_sim`: the teacher simulator.
//!
//! Rule-based traffic (vehicles on the lane graph: routes, car following, lane changes,
//! junction rules, signals) and pedestrians (on the walk graph: routes, social forces,
//! crossings) on a [`swm_twin::Twin`], at a fixed step of [`DT_S`]. It makes the
//! ground-truth trajectories the world model learns from, and it is a traffic simulator in
//! its own right.
//!
//! * [`signal`]: fixed-time signal plans for every signalised intersection;
//! * [`vehicle`]: vehicles: routes, IDM car following, MOBIL lane changes, junctions;
//! * [`pedestrian`]: pedestrians: routes on the walk graph, social forces, crossings;
//! * [`simulation`]: the world that steps both, spawning and despawning at the edges;
//! * [`metrics`]: safety and quality metrics of a run.
//!
//! **Determinism**: one `u64` seed decides a run; all randomness is
//! `swm_core::rng::CounterRng` keyed by (seed, stream); no hash-map iteration reaches the
//! output; one scenario runs single-threaded, many run in parallel with identical bytes.

pub mod crossing;
pub mod metrics;
pub mod pedestrian;
pub mod record;
pub mod signal;
pub mod simulation;
pub mod vehicle;

pub use record::{AgentKind, SignalState, TrajectoryRecord};
pub use simulation::{SimConfig, Simulation};

/// A vehicle as pedestrians (and metrics) see it: an oriented box, with where it is on the
/// lane graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VehicleBox {
    pub agent_id: u64,
    pub center: swm_twin::P2,
    pub heading_rad: f64,
    pub length_m: f64,
    pub width_m: f64,
    pub speed_mps: f64,
    /// The lane it is on and how far along it (`None` inside a junction).
    pub lane: Option<(u32, f64)>,
}

/// An agent the simulation does not move (a robot driven from outside), as the teacher's
/// agents see it for one step ([`Simulation::set_external_agents`]): vehicles brake for it
/// when it is on their path and never drive into it, pedestrians keep clear of it like of a
/// vehicle, and a crossing it stands on is occupied (vehicles yield).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExternalAgent {
    /// Centre of its box (m, twin frame).
    pub center: swm_twin::P2,
    /// Height of its base (m): vehicles on other levels (bridges) ignore it.
    pub z_m: f64,
    pub heading_rad: f64,
    pub length_m: f64,
    pub width_m: f64,
    pub speed_mps: f64,
}

/// The simulation step (s).
pub const DT_S: f64 = 0.1;

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    #[error("the twin has no lanes to drive on")]
    NoLanes,
    #[error("the twin has no walk graph to walk on")]
    NoWalkGraph,
    #[error("invalid configuration: {0}")]
    Config(String),
}
