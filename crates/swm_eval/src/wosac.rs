//! The WOSAC metric configuration (2025 sim-agents values) and its likelihood estimators.
//!
//! Values are those of `challenge_2025_sim_agents_config.textproto` in
//! `waymo-research/waymo-open-dataset` (`src/waymo_open_dataset/wdl_limited/sim_agents_metrics/`),
//! the file `metrics.load_metrics_config(SIM_AGENTS)` loads; the Bernoulli pseudocount is the
//! proto default (`BernoulliEstimate.additive_smoothing_pseudocount = 0.001`, unset in that
//! file). See the crate docs for what each feature means here.

use serde::{Deserialize, Serialize};

/// A histogram estimator: `num_bins` equal bins over `[min_val, max_val]`; values outside are
/// clipped into the first or last bin; every bin gets `pseudocount` added (Laplace smoothing).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramConfig {
    pub min_val: f64,
    pub max_val: f64,
    pub num_bins: u32,
    pub pseudocount: f64,
}

impl HistogramConfig {
    /// The bin of `v` (clipped to the range; the upper edge belongs to the last bin).
    pub fn bin(&self, v: f64) -> usize {
        let n = self.num_bins.max(1) as usize;
        let span = self.max_val - self.min_val;
        if span.is_nan() || span <= 0.0 {
            return 0;
        }
        let f = ((v.clamp(self.min_val, self.max_val) - self.min_val) / span * n as f64).floor();
        (f.max(0.0) as usize).min(n - 1)
    }
}

/// One time-series feature: its histogram, whether sampled steps are pooled over time
/// (`independent_timesteps`) and its weight in the meta-metric.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramFeature {
    pub histogram: HistogramConfig,
    /// Pool the sampled values of all steps into one distribution per agent (true for every
    /// 2025 histogram feature); false scores each step against that step's samples only.
    pub independent_timesteps: bool,
    pub weight: f64,
}

/// One boolean per-agent feature (any over the future), scored with a smoothed Bernoulli.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BernoulliFeature {
    pub pseudocount: f64,
    pub weight: f64,
}

/// The ten WOSAC features with their estimators and meta-metric weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WosacConfig {
    pub linear_speed: HistogramFeature,
    pub linear_acceleration: HistogramFeature,
    pub angular_speed: HistogramFeature,
    pub angular_acceleration: HistogramFeature,
    pub distance_to_nearest_object: HistogramFeature,
    pub collision_indication: BernoulliFeature,
    pub time_to_collision: HistogramFeature,
    pub distance_to_road_edge: HistogramFeature,
    pub offroad_indication: BernoulliFeature,
    pub traffic_light_violation: BernoulliFeature,
}

const fn hist(min_val: f64, max_val: f64, num_bins: u32, weight: f64) -> HistogramFeature {
    HistogramFeature {
        histogram: HistogramConfig { min_val, max_val, num_bins, pseudocount: 0.1 },
        independent_timesteps: true,
        weight,
    }
}

const fn bernoulli(weight: f64) -> BernoulliFeature {
    BernoulliFeature { pseudocount: 0.001, weight }
}

impl WosacConfig {
    /// The Waymo Open Sim Agents Challenge 2025 configuration (weights sum to 1). The
    /// angular acceleration range is the published ±3.14, not ±pi.
    #[allow(clippy::approx_constant)]
    pub const CHALLENGE_2025: WosacConfig = WosacConfig {
        linear_speed: hist(0.0, 25.0, 10, 0.05),
        linear_acceleration: hist(-12.0, 12.0, 11, 0.05),
        angular_speed: hist(-0.628, 0.628, 11, 0.05),
        angular_acceleration: hist(-3.14, 3.14, 11, 0.05),
        distance_to_nearest_object: hist(-5.0, 40.0, 10, 0.10),
        collision_indication: bernoulli(0.25),
        time_to_collision: hist(0.0, 5.0, 10, 0.10),
        distance_to_road_edge: hist(-20.0, 40.0, 10, 0.05),
        offroad_indication: bernoulli(0.25),
        traffic_light_violation: bernoulli(0.05),
    };

    /// The weights in [`Component`] order.
    pub fn weights(&self) -> [f64; Component::COUNT] {
        [
            self.linear_speed.weight,
            self.linear_acceleration.weight,
            self.angular_speed.weight,
            self.angular_acceleration.weight,
            self.distance_to_nearest_object.weight,
            self.collision_indication.weight,
            self.time_to_collision.weight,
            self.distance_to_road_edge.weight,
            self.offroad_indication.weight,
            self.traffic_light_violation.weight,
        ]
    }
}

impl Default for WosacConfig {
    fn default() -> Self {
        WosacConfig::CHALLENGE_2025
    }
}

/// The meta-metric's components, in the order WOSAC lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    LinearSpeed,
    LinearAcceleration,
    AngularSpeed,
    AngularAcceleration,
    DistanceToNearestObject,
    CollisionIndication,
    TimeToCollision,
    DistanceToRoadEdge,
    OffroadIndication,
    TrafficLightViolation,
}

/// Which bucket (WOSAC's `kinematic`, `interactive`, `map_based`) a component belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Kinematic,
    Interactive,
    MapBased,
}

impl Component {
    pub const COUNT: usize = 10;
    pub const ALL: [Component; Component::COUNT] = [
        Component::LinearSpeed,
        Component::LinearAcceleration,
        Component::AngularSpeed,
        Component::AngularAcceleration,
        Component::DistanceToNearestObject,
        Component::CollisionIndication,
        Component::TimeToCollision,
        Component::DistanceToRoadEdge,
        Component::OffroadIndication,
        Component::TrafficLightViolation,
    ];

    /// WOSAC's field name.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::LinearSpeed => "linear_speed",
            Component::LinearAcceleration => "linear_acceleration",
            Component::AngularSpeed => "angular_speed",
            Component::AngularAcceleration => "angular_acceleration",
            Component::DistanceToNearestObject => "distance_to_nearest_object",
            Component::CollisionIndication => "collision_indication",
            Component::TimeToCollision => "time_to_collision",
            Component::DistanceToRoadEdge => "distance_to_road_edge",
            Component::OffroadIndication => "offroad_indication",
            Component::TrafficLightViolation => "traffic_light_violation",
        }
    }

    /// A short upper-case label for plots.
    pub fn short_label(self) -> &'static str {
        match self {
            Component::LinearSpeed => "SPEED",
            Component::LinearAcceleration => "ACCEL",
            Component::AngularSpeed => "YAW RATE",
            Component::AngularAcceleration => "YAW ACC",
            Component::DistanceToNearestObject => "DIST OBJ",
            Component::CollisionIndication => "COLLISION",
            Component::TimeToCollision => "TTC",
            Component::DistanceToRoadEdge => "DIST EDGE",
            Component::OffroadIndication => "OFFROAD",
            Component::TrafficLightViolation => "RED LIGHT",
        }
    }

    pub fn bucket(self) -> Bucket {
        match self as usize {
            0..=3 => Bucket::Kinematic,
            4..=6 => Bucket::Interactive,
            _ => Bucket::MapBased,
        }
    }
}

/// Log-likelihoods of the logged values `log` under the histogram of the sampled values
/// `sim` (smoothed, normalised): one per logged value.
pub fn histogram_log_likelihoods(cfg: &HistogramConfig, sim: &[f64], log: &[f64]) -> Vec<f64> {
    let n = cfg.num_bins.max(1) as usize;
    let mut counts = vec![cfg.pseudocount; n];
    let mut total = cfg.pseudocount * n as f64;
    for &v in sim.iter().filter(|v| !v.is_nan()) {
        counts[cfg.bin(v)] += 1.0;
        total += 1.0;
    }
    log.iter().map(|&v| (counts[cfg.bin(v)] / total).ln()).collect()
}

/// Log-probability of the logged boolean `log` under a Bernoulli fitted to `sim` (each of the
/// two outcomes smoothed by `pseudocount`).
pub fn bernoulli_log_likelihood(pseudocount: f64, sim: &[bool], log: bool) -> f64 {
    let hits = sim.iter().filter(|&&b| b).count() as f64;
    let n = sim.len() as f64;
    let count = if log { hits } else { n - hits };
    ((count + pseudocount) / (n + 2.0 * pseudocount)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one() {
        let s: f64 = WosacConfig::CHALLENGE_2025.weights().iter().sum();
        assert!((s - 1.0).abs() < 1e-12, "{s}");
    }

    #[test]
    fn bins_clip_and_split_evenly() {
        let h = HistogramConfig { min_val: 0.0, max_val: 25.0, num_bins: 10, pseudocount: 0.1 };
        assert_eq!(h.bin(-3.0), 0);
        assert_eq!(h.bin(0.0), 0);
        assert_eq!(h.bin(2.49), 0);
        assert_eq!(h.bin(2.5), 1);
        assert_eq!(h.bin(25.0), 9);
        assert_eq!(h.bin(99.0), 9);
    }

    #[test]
    fn histogram_likelihood_prefers_matching_values() {
        let h = HistogramConfig { min_val: 0.0, max_val: 10.0, num_bins: 10, pseudocount: 0.1 };
        let sim = vec![5.5; 32];
        let ll = histogram_log_likelihoods(&h, &sim, &[5.2, 1.0]);
        // (32 + 0.1) / (32 + 1.0) for the matching bin, 0.1 / 33 for an empty one.
        assert!((ll[0] - (32.1f64 / 33.0).ln()).abs() < 1e-12);
        assert!((ll[1] - (0.1f64 / 33.0).ln()).abs() < 1e-12);
    }

    #[test]
    fn bernoulli_likelihood() {
        let sim = [false; 32];
        assert!(bernoulli_log_likelihood(0.001, &sim, false).exp() > 0.9999);
        assert!(bernoulli_log_likelihood(0.001, &sim, true).exp() < 1e-4);
        let half = [true, false];
        assert!((bernoulli_log_likelihood(0.001, &half, true).exp() - 0.5).abs() < 1e-9);
    }
}
