//! `swm_eval`: realism of sampled multi-agent rollouts against logged (teacher) scenarios.
//!
//! Given a twin, logged [`Scenario`]s (history frames `-H..=0`, future `1..=F` at 10 Hz) and,
//! per scenario, a [`ScenarioRollout`] of `S` sampled futures of every agent, [`evaluate`]
//! computes the Waymo Open Sim Agents Challenge (WOSAC) realism meta-metric with its 2025
//! weights, plus minADE, collision / off-road / red-light rates and BEV occupancy IoU, in one
//! [`MethodReport`]. [`plot_reports`] draws several methods side by side; [`baseline`] makes
//! constant-velocity (and frozen / log-replay) rollouts.
//!
//! # The WOSAC likelihood metrics
//!
//! As in `waymo-open-dataset` (`wdl_limited/sim_agents_metrics/metrics.py`,
//! `metric_features.py`, `estimators.py`; read for this crate at commit `508fb261`):
//! for every **evaluated agent** (present at frame 0 and logged at least once in the future)
//! each feature is computed as a time series over frames `1..=F` in the log and in every
//! sample (the sample's future appended to the *logged* history, so that the first future
//! frames have finite differences). For a histogram feature, the sampled values of that
//! agent, pooled over all samples and all future frames (`independent_timesteps`), fill a
//! histogram (values clipped into the range, every bin plus a pseudocount); each *valid*
//! logged value is scored by the log of its bin's probability. A scenario's likelihood for
//! the feature is `exp(mean log-probability)` over its valid (agent, frame) pairs. Boolean
//! features are reduced per agent to "any over the logged future frames" and scored with a
//! Bernoulli fitted to the samples; the scenario's likelihood is `exp(mean over agents)`.
//! Each component is averaged over scenarios (those where it was scored at all), and the
//! **meta-metric** is `sum(weight * component)`. The bucket scores (`kinematic`,
//! `interactive`, `map_based`) are the weighted means within each bucket, as WOSAC reports.
//!
//! | component | definition here | estimator (2025) | weight |
//! |---|---|---|---|
//! | linear speed | `|p(t+1) - p(t-1)| / 2dt`, 3D | 10 bins on [0, 25] m/s | 0.05 |
//! | linear acceleration | central difference of linear speed | 11 bins on [-12, 12] m/s² | 0.05 |
//! | angular speed | `wrap(h(t+1) - h(t-1)) / 2dt` | 11 bins on [-0.628, 0.628] rad/s | 0.05 |
//! | angular acceleration | `wrap(w'(t+1) - w'(t-1)) / 2 dt²` (per-step rates) | 11 bins on [-3.14, 3.14] rad/s² | 0.05 |
//! | distance to nearest object | signed distance between oriented boxes (negative = penetration depth) to the nearest other agent | 10 bins on [-5, 40] m | 0.10 |
//! | collision indication | distance to nearest object < 0 at any logged future frame | Bernoulli | 0.25 |
//! | time to collision | to the agent followed (WOSAC's rule: ahead, heading within 75°, lateral overlap, within 10° when the overlap is under 0.5 m), constant speeds, capped at 5 s; vehicles only | 10 bins on [0, 5] s | 0.10 |
//! | distance to road edge | signed distance of the box's most off-road corner to the drivable area's edge (negative on the road); vehicles only | 10 bins on [-20, 40] m | 0.05 |
//! | off-road indication | distance to road edge > 0 at any logged future frame; vehicles only | Bernoulli | 0.25 |
//! | traffic-light violation | crossed a red stop line (below) at any logged future frame; vehicles only | Bernoulli | 0.05 |
//!
//! Histogram pseudocount 0.1, Bernoulli pseudocount 0.001 (the proto default); every
//! histogram feature has `independent_timesteps: true`. The numbers are those of
//! `challenge_2025_sim_agents_config.textproto` (the config WOSAC 2025 loads for the
//! sim-agents challenge); the weights sum to 1. [`wosac::WosacConfig`] holds them and can be
//! changed through [`EvalConfig::wosac`].
//!
//! **Validity** follows WOSAC: speeds need the log valid at `t - 1` and `t + 1`,
//! accelerations need speeds valid at `t - 1` and `t + 1` (so with a 1 s history every
//! future frame but the last one or two is scored); the other features need the log valid at
//! `t`. Sampled values are pooled wherever the sample defines them.
//!
//! **Interactive features** look at every agent present in the same world (log or sample) at
//! the frame, evaluated or not, on the same level: agents whose recorded elevations differ
//! by [`features::OTHER_LEVEL_DZ_M`] or more (a bridge over a road; the teacher and the model
//! record decks [`swm_twin::LEVEL_HEIGHT_M`] per level up) are neither each other's nearest
//! object, nor a collision, nor a time to collision (a departure from WOSAC, whose
//! plan-view boxes would count them). Time to collision uses speeds from central differences of
//! positions (one-sided at the ends, the record's `speed_mps` for a lone frame).
//!
//! **Map features**: the drivable area is the union of every lane and junction connection
//! swept by its width: exact near the edge, a signed distance field rasterised at
//! [`EvalConfig::road_raster_m`] elsewhere ([`road`]). A red-light violation at frame `t`: the record at `t - 1` is on a lane
//! with a stop line (`Twin::lanes[l].stop_line`), its position projects (on the lane's
//! centre line, extended past its ends) before the line's `s_m` and the position at `t` after
//! it, and the signal is `Red` (the record's `signal` at `t` while it is still on that lane,
//! else at `t - 1`). Lanes and signal states are the ones the records carry.
//!
//! # Other metrics
//!
//! * `min_ade_m`: per evaluated agent, the mean plan-view (x, y) distance to the log over
//!   its logged future frames, minimum over samples; averaged over all agents of all
//!   scenarios. `ade_m` averages over samples instead; `scene_min_ade_m` is WOSAC's
//!   `min_average_displacement_error` (minimum over samples of the mean over agents, per
//!   scenario, averaged over scenarios).
//! * `collision_rate`: share of (evaluated agent, sample) pairs with a collision at any
//!   logged future frame (WOSAC's `simulated_collision_rate`, pooled over scenarios);
//!   `offroad_rate` and `traffic_light_violation_rate`: the same over vehicles. The `log_*`
//!   rates are the log's own (one "sample").
//! * Occupancy: an axis-aligned grid of [`OccupancyConfig::cell_m`] cells over a
//!   [`OccupancyConfig::window_m`] square centred on the centre agent's frame-0 position;
//!   a cell is occupied when its centre lies inside an agent's box. At a horizon (1, 2, 3 s)
//!   the agents logged at that frame count (in the log and in the samples alike); the
//!   predicted probability of a cell is the share of samples occupying it; `occupancy_iou`
//!   is the IoU of cells with probability >= [`OccupancyConfig::threshold`] (0.5) against the
//!   logged occupancy, `occupancy_soft_iou` is `sum(p g) / sum(p + g - p g)`, and
//!   `copy_last_occupancy_iou` scores the frame-0 boxes of the same agents. Averaged over
//!   scenarios (skipping empty ones, and horizons beyond a scenario's future).
//!
//! # Deviations from WOSAC
//!
//! * Our logs are the teacher simulator's, not WOMD: every agent present at frame 0 is
//!   evaluated (WOSAC evaluates a chosen subset); scenarios have the history and future the
//!   dataset cut (1 s and 8 s by default, WOSAC 1.1 s and 8 s).
//! * The road edge is the boundary of the union of lanes and connections swept by their
//!   widths, not mapped road-edge polylines; kerbs, parking and plazas are not drivable.
//!   Within 2 m of the edge the distance is exact (off-road exactly when a corner lies
//!   outside every strip), farther in or out it is read from a raster (0.5 m cells,
//!   bilinear). Pedestrians are left out of distance to road edge and off-road (WOSAC
//!   scores every evaluated object there; our pedestrians walk off the road by design), and,
//!   like WOSAC, out of time to collision and red-light violations.
//! * Red-light violations use the lane and signal state the records carry instead of the
//!   nearest lane and the logged signal states: the state ahead depends on the vehicle's
//!   turn (protected lefts), which only the record knows.
//! * Yaw differences in time to collision are wrapped to `[0, pi]` (WOSAC takes the raw
//!   absolute difference).
//! * Displacement errors are planar (WOSAC: 3D); distances to the nearest object are capped
//!   at the histogram's upper edge plus 1 m (same bin, so the same score).
//! * A component nobody was scored on in a scenario (no vehicles, say) is skipped in that
//!   scenario's average rather than giving `NaN`; if it is never scored it is `NaN` (`null`
//!   in JSON) and so is the meta-metric.
//!
//! # Reading the numbers
//!
//! Collisions and off-road weigh half the meta-metric, and a rollout that never moves
//! never leaves the road nor hits anyone: on the default district (`tests/district.rs`) a
//! frozen world scores 0.83 against constant velocity's 0.80 (the log replay: 0.93), because
//! constant velocity carries vehicles caught mid-turn off the road. Constant velocity wins on
//! kinematics, displacement and occupancy. Read the meta-metric with its buckets and rates.
//! Even the log replay scores below 1: pooled over time, a varying speed spreads over
//! several bins.
//!
//! # Determinism
//!
//! Scenarios are scored in parallel (rayon) and reduced in scenario order: the report does
//! not depend on the thread count.

pub mod baseline;
mod evaluate;
pub mod features;
pub mod geometry;
pub mod occupancy;
mod plot;
pub mod road;
pub mod teacher;
pub mod wosac;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use swm_dataset::Scenario;
use swm_sim::TrajectoryRecord;
use swm_twin::Twin;

pub use baseline::{constant_velocity, frozen, log_replay};
pub use evaluate::{Evaluator, OCCUPANCY_HORIZONS_S, SCENARIO_MARGIN_M};
pub use plot::plot_reports;
pub use teacher::{TeacherEvalOptions, TeacherEvalSet, fork_seed, teacher_eval_set};
pub use wosac::{Component, WosacConfig};

/// Sampled futures of one scenario: each sample holds `(frame, record)` rows for frames
/// `1..=F` of every agent, with the scenario's agent ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRollout {
    pub scenario_id: u64,
    pub samples: Vec<Vec<(i32, TrajectoryRecord)>>,
}

/// The occupancy forecast's grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OccupancyConfig {
    /// Cell size (m).
    pub cell_m: f64,
    /// Side of the square window around the centre agent (m).
    pub window_m: f64,
    /// A cell is predicted occupied when at least this share of samples occupies it.
    pub threshold: f64,
}

impl Default for OccupancyConfig {
    fn default() -> Self {
        OccupancyConfig { cell_m: 0.5, window_m: 100.0, threshold: 0.5 }
    }
}

/// How to evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Feature estimators and meta-metric weights (default: WOSAC 2025).
    pub wosac: WosacConfig,
    /// Cell size of the road raster (m).
    pub road_raster_m: f64,
    pub occupancy: OccupancyConfig,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig { wosac: WosacConfig::CHALLENGE_2025, road_raster_m: 0.5, occupancy: OccupancyConfig::default() }
    }
}

impl EvalConfig {
    fn validate(&self) -> Result<(), EvalError> {
        let o = &self.occupancy;
        if !(o.cell_m > 0.0 && o.window_m >= o.cell_m && o.window_m / o.cell_m <= 8192.0) {
            return Err(EvalError::Config(format!(
                "occupancy needs 0 < cell_m <= window_m and at most 8192 cells a side, got cell_m {} window_m {}",
                o.cell_m, o.window_m
            )));
        }
        if !(0.0..=1.0).contains(&o.threshold) {
            return Err(EvalError::Config(format!("occupancy threshold must be in [0, 1], got {}", o.threshold)));
        }
        Ok(())
    }
}

/// The ten component likelihoods (each in `[0, 1]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Likelihoods {
    pub linear_speed: f64,
    pub linear_acceleration: f64,
    pub angular_speed: f64,
    pub angular_acceleration: f64,
    pub distance_to_nearest_object: f64,
    pub collision_indication: f64,
    pub time_to_collision: f64,
    pub distance_to_road_edge: f64,
    pub offroad_indication: f64,
    pub traffic_light_violation: f64,
}

impl Likelihoods {
    /// In [`Component`] order.
    pub fn as_array(&self) -> [f64; Component::COUNT] {
        [
            self.linear_speed,
            self.linear_acceleration,
            self.angular_speed,
            self.angular_acceleration,
            self.distance_to_nearest_object,
            self.collision_indication,
            self.time_to_collision,
            self.distance_to_road_edge,
            self.offroad_indication,
            self.traffic_light_violation,
        ]
    }
}

/// The evaluation of one method (see the crate docs for every definition). Undefined
/// values are `NaN` (`null` in JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodReport {
    /// WOSAC realism meta-metric (2025 weights).
    pub meta_metric: f64,
    pub kinematic_metrics: f64,
    pub interactive_metrics: f64,
    pub map_based_metrics: f64,
    pub likelihoods: Likelihoods,
    pub min_ade_m: f64,
    pub ade_m: f64,
    pub scene_min_ade_m: f64,
    pub collision_rate: f64,
    pub offroad_rate: f64,
    pub traffic_light_violation_rate: f64,
    pub log_collision_rate: f64,
    pub log_offroad_rate: f64,
    pub log_traffic_light_violation_rate: f64,
    pub occupancy_iou_1s: f64,
    pub occupancy_iou_2s: f64,
    pub occupancy_iou_3s: f64,
    pub occupancy_soft_iou_1s: f64,
    pub occupancy_soft_iou_2s: f64,
    pub occupancy_soft_iou_3s: f64,
    pub copy_last_occupancy_iou_1s: f64,
    pub copy_last_occupancy_iou_2s: f64,
    pub copy_last_occupancy_iou_3s: f64,
    pub scenarios: u64,
    /// Evaluated agents, all scenarios.
    pub agents: u64,
    /// Evaluated vehicles, all scenarios.
    pub vehicles: u64,
    /// Samples, all scenarios.
    pub samples: u64,
    /// (evaluated agent, future frame, sample) triples the log has and the rollouts left out.
    pub missing_sample_rows: u64,
}

/// Errors of the evaluation.
///
/// A variant with a cause returns it from `source()` and leaves it out of its own message:
/// print the chain (anyhow's `{:#}`, or `swm_core::ErrorChain`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    #[error("no scenarios to evaluate")]
    NoScenarios,
    #[error("scenario {scenario_id} has no rollout")]
    MissingRollout { scenario_id: u64 },
    #[error("scenario {scenario_id} has more than one rollout")]
    DuplicateRollout { scenario_id: u64 },
    #[error("scenario {scenario_id} appears more than once")]
    DuplicateScenario { scenario_id: u64 },
    #[error("the rollout of scenario {scenario_id} has no samples")]
    EmptyRollout { scenario_id: u64 },
    #[error("the rollout of scenario {scenario_id} has agent {agent_id}, which the scenario does not")]
    UnknownAgent { scenario_id: u64, agent_id: u64 },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("plot: {0}")]
    Plot(String),
    #[error("teacher simulator: {0}")]
    Sim(String),
    #[error("I/O error on {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Scores `rollouts` against `scenarios` on `twin` (see the crate docs), with the road
/// raster limited to the scenarios' surroundings ([`Evaluator::for_scenarios`]). To score
/// several methods on the same scenarios, build an [`Evaluator`] once.
pub fn evaluate(
    twin: &Twin,
    scenarios: &[Scenario],
    rollouts: &[ScenarioRollout],
    cfg: &EvalConfig,
) -> Result<MethodReport, EvalError> {
    Evaluator::for_scenarios(twin, scenarios, cfg)?.evaluate(scenarios, rollouts)
}
