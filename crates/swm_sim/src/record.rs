//! What a run records: one row per agent per recorded step (the dataset schema).

use serde::{Deserialize, Serialize};

/// Kinds of agents, with their typical sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AgentKind {
    Car,
    Bus,
    Truck,
    Pedestrian,
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Car => "car",
            AgentKind::Bus => "bus",
            AgentKind::Truck => "truck",
            AgentKind::Pedestrian => "pedestrian",
        }
    }
    pub fn is_vehicle(self) -> bool {
        !matches!(self, AgentKind::Pedestrian)
    }
}

/// The state of the signal that controls an agent's lane (or crossing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignalState {
    Red,
    Amber,
    Green,
}

impl SignalState {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalState::Red => "red",
            SignalState::Amber => "amber",
            SignalState::Green => "green",
        }
    }
}

/// One agent at one step, in the twin frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryRecord {
    /// Unique within a run, never reused.
    pub agent_id: u64,
    pub kind: AgentKind,
    pub length_m: f32,
    pub width_m: f32,
    pub step: u32,
    pub time_s: f64,
    pub x_m: f64,
    pub y_m: f64,
    pub z_m: f64,
    /// Radians counter-clockwise from east.
    pub heading_rad: f64,
    pub speed_mps: f64,
    pub accel_mps2: f64,
    /// The lane a vehicle is on (index into `Twin::lanes`), `None` inside a junction or for
    /// pedestrians.
    pub lane: Option<u32>,
    /// The state of the signal ahead on the agent's lane or crossing, if one controls it.
    pub signal: Option<SignalState>,
}

/// Something that happened during a run that metrics count (emitted by the simulator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SimEvent {
    /// A vehicle crossed a stop line while its signal was red.
    RedLightViolation { agent_id: u64, step: u32, lane: u32 },
    /// A vehicle entered the district (at its edge or at a spawn point).
    Spawned { agent_id: u64, step: u32, kind: AgentKind },
    /// A vehicle or pedestrian reached its destination or left the district.
    Arrived { agent_id: u64, step: u32, kind: AgentKind, travel_time_s: f64, distance_m: f64 },
    /// A deadlock was detected and resolved (how, in words), without teleporting.
    DeadlockResolved { step: u32, agents: Vec<u64>, how: String },
    /// A pedestrian stepped onto a road outside a crossing (off the walk graph).
    PedestrianOffWalkGraph { agent_id: u64, step: u32 },
}
