//! The simulation: a twin, its signal plans, its crossings, the vehicles and the
//! pedestrians, stepped together at [`DT_S`].
//!
//! Each step: signals are a pure function of time; pedestrians step first (seeing the
//! vehicle boxes of the previous step), then vehicles (seeing which crossings pedestrians
//! occupy). The step counter and time advance after both. A run is a pure function of the
//! twin and the [`SimConfig`]; [`run_many`] runs scenarios in parallel with identical
//! results whatever the thread count.

use std::sync::Arc;

use rayon::prelude::*;
use swm_twin::Twin;

use crate::crossing::CrossingMap;
use crate::pedestrian::PedestrianSim;
use crate::record::SimEvent;
use crate::signal::SignalController;
use crate::vehicle::{StepCtx, VehicleSim};
use crate::{DT_S, ExternalAgent, SimError, TrajectoryRecord, VehicleBox};

fn one() -> u32 {
    1
}
fn unit() -> f64 {
    1.0
}

/// Configuration of a run. The step is fixed at [`DT_S`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SimConfig {
    pub seed: u64,
    /// Vehicles kept in the district (spawned at the edges as others leave).
    pub vehicles: u32,
    pub pedestrians: u32,
    pub duration_s: f64,
    /// Record every n-th step (default 1; 0 is taken as 1).
    #[serde(default = "one")]
    pub record_every_steps: u32,
    /// Scales `vehicles` and `pedestrians` (default 1; 0 is taken as 1).
    #[serde(default = "unit")]
    pub density: f64,
}

impl SimConfig {
    /// Steps in `duration_s`.
    pub fn steps(&self) -> u32 {
        (self.duration_s / DT_S).round().max(0.0) as u32
    }
    fn scaled(&self, n: u32) -> u32 {
        let d = if self.density > 0.0 { self.density } else { 1.0 };
        (n as f64 * d).round() as u32
    }
}

/// Counts of agents now in the simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub vehicles: u32,
    pub pedestrians: u32,
}

/// A running simulation.
#[derive(Clone)]
pub struct Simulation {
    twin: Arc<Twin>,
    config: SimConfig,
    signals: SignalController,
    crossings: CrossingMap,
    vehicles: VehicleSim,
    pedestrians: Option<PedestrianSim>,
    events: Vec<SimEvent>,
    step: u32,
    /// Agents moved from outside, as of the next step.
    external: Vec<ExternalAgent>,
}

impl Simulation {
    pub fn new(twin: Arc<Twin>, config: SimConfig) -> Result<Simulation, SimError> {
        if twin.lanes.is_empty() && config.vehicles > 0 {
            return Err(SimError::NoLanes);
        }
        if !config.duration_s.is_finite() || config.duration_s < 0.0 {
            return Err(SimError::Config(format!("duration_s must be >= 0, got {}", config.duration_s)));
        }
        if !config.density.is_finite() || config.density < 0.0 {
            return Err(SimError::Config(format!("density must be >= 0, got {}", config.density)));
        }
        let signals = SignalController::with_seed(&twin, config.seed);
        let crossings = CrossingMap::new(&twin);
        let n_veh = config.scaled(config.vehicles);
        let n_ped = config.scaled(config.pedestrians);
        let vehicles = VehicleSim::new(&twin, &crossings, config.seed, n_veh);
        let pedestrians = if n_ped > 0 {
            Some(PedestrianSim::new(&twin, &crossings, config.seed ^ 0x9ED0_0000_0000_0001, n_ped)?)
        } else {
            None
        };
        tracing::info!(
            lanes = twin.lanes.len(),
            signals = signals.plans.len(),
            vehicles = vehicles.count(),
            "simulation ready"
        );
        Ok(Simulation {
            twin,
            config,
            signals,
            crossings,
            vehicles,
            pedestrians,
            events: Vec::new(),
            step: 0,
            external: Vec::new(),
        })
    }

    /// A copy of this simulation, from now on driven by another random stream: new
    /// spawns, and every vehicle not yet committed to its next junction movement draws a
    /// new destination (route), as at spawn, and every driver a new desired speed;
    /// pedestrians keep their plans and draw later
    /// choices from the new stream. Signals keep their plans. The fork's events start
    /// empty. Used for the "teacher with another seed" baseline: the same state, other
    /// plausible futures.
    pub fn fork(&self, seed: u64) -> Simulation {
        let mut sim = self.clone();
        sim.config.seed = seed;
        sim.events.clear();
        sim.vehicles.resample_intents(seed);
        if let Some(p) = sim.pedestrians.as_mut() {
            p.reseed(seed ^ 0x9ED0_0000_0000_0001);
        }
        sim
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }
    pub fn signals(&self) -> &SignalController {
        &self.signals
    }
    pub fn crossings(&self) -> &CrossingMap {
        &self.crossings
    }
    pub fn vehicle_sim(&self) -> &VehicleSim {
        &self.vehicles
    }
    pub fn twin(&self) -> &Twin {
        &self.twin
    }

    /// Steps done.
    pub fn step_index(&self) -> u32 {
        self.step
    }

    /// Simulated time (s).
    pub fn time_s(&self) -> f64 {
        self.step as f64 * DT_S
    }

    pub fn counts(&self) -> Counts {
        Counts {
            vehicles: self.vehicles.count(),
            pedestrians: self.pedestrians.as_ref().map(|p| p.count() as u32).unwrap_or(0),
        }
    }

    /// The agents driven from outside (robots) as they stand now: the teacher's vehicles and
    /// pedestrians react to them in the following steps ([`ExternalAgent`]), until the next
    /// call replaces them (an empty slice removes them).
    pub fn set_external_agents(&mut self, agents: &[ExternalAgent]) {
        self.external.clear();
        self.external.extend_from_slice(agents);
        self.vehicles.set_external(agents);
    }

    /// Advances everything by [`DT_S`].
    pub fn step(&mut self) {
        let t_end = (self.step + 1) as f64 * DT_S;
        let twin = &*self.twin;
        if let Some(peds) = self.pedestrians.as_mut() {
            let mut boxes = self.vehicles.boxes();
            boxes.extend(self.external.iter().map(|e| VehicleBox {
                agent_id: u64::MAX,
                center: e.center,
                heading_rad: e.heading_rad,
                length_m: e.length_m,
                width_m: e.width_m,
                speed_mps: e.speed_mps,
                lane: None,
            }));
            peds.step(twin, self.step + 1, t_end, &self.signals, &boxes, &mut self.events);
        }
        let peds = self.pedestrians.as_ref();
        // Crossings an external agent stands on (within 3 m of where the crossing cuts a lane).
        let ext_crossings: Vec<u32> = if self.external.is_empty() {
            Vec::new()
        } else {
            self.vehicles.crossings_near(&self.external.iter().map(|e| e.center).collect::<Vec<_>>(), 3.0)
        };
        let occupied = |edge: u32| peds.is_some_and(|p| p.crossing_occupied(edge)) || ext_crossings.contains(&edge);
        let pedestrians = peds.map(PedestrianSim::positions).unwrap_or_default();
        let ctx = StepCtx {
            twin,
            signals: &self.signals,
            step: self.step + 1,
            time_s: self.time_s(),
            occupied: &occupied,
            pedestrians: &pedestrians,
        };
        self.vehicles.step(&ctx, &mut self.events);
        self.vehicles.update_headings();
        self.step += 1;
    }

    /// Runs `steps` steps, calling `on_step(step, records)` at every recorded step with the
    /// records of every agent.
    pub fn run(&mut self, steps: u32, on_step: &mut dyn FnMut(u32, &[TrajectoryRecord])) {
        let every = self.config.record_every_steps.max(1);
        let mut buf = Vec::new();
        for _ in 0..steps {
            self.step();
            if self.step.is_multiple_of(every) {
                buf.clear();
                self.records_into(&mut buf);
                on_step(self.step, &buf);
            }
        }
    }

    fn records_into(&self, out: &mut Vec<TrajectoryRecord>) {
        let t = self.time_s();
        self.vehicles.records(&self.signals, self.step, t, out);
        if let Some(p) = &self.pedestrians {
            p.records(self.step, t, out);
        }
    }

    /// Records of every agent now (vehicles in slot order, then pedestrians).
    pub fn records(&self) -> Vec<TrajectoryRecord> {
        let mut v = Vec::new();
        self.records_into(&mut v);
        v
    }

    /// Everything that happened so far.
    pub fn events(&self) -> &[SimEvent] {
        &self.events
    }

    /// The vehicles as oriented boxes.
    pub fn vehicle_boxes(&self) -> Vec<VehicleBox> {
        self.vehicles.boxes()
    }
}

/// What one scenario of [`run_many`] produced.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioResult {
    pub config: SimConfig,
    /// Every recorded step's records, in step order.
    pub records: Vec<TrajectoryRecord>,
    pub events: Vec<SimEvent>,
    pub vehicle_updates: u64,
}

/// Runs every configuration for its `duration_s`, in parallel (rayon), each scenario
/// single-threaded: results are identical whatever the thread count.
pub fn run_many(twin: Arc<Twin>, configs: &[SimConfig]) -> Vec<Result<ScenarioResult, SimError>> {
    configs
        .par_iter()
        .map(|c| {
            let mut sim = Simulation::new(twin.clone(), c.clone())?;
            let mut records = Vec::new();
            sim.run(c.steps(), &mut |_, r| records.extend_from_slice(r));
            Ok(ScenarioResult {
                config: c.clone(),
                records,
                events: sim.events.clone(),
                vehicle_updates: sim.vehicles.updates,
            })
        })
        .collect()
}
