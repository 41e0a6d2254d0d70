//! Safety and quality metrics of a run, computed while it goes.
//!
//! Feed a [`MetricsAccumulator`] the records of every step ([`MetricsAccumulator::push_step`],
//! in step order), then hand it the run's events ([`MetricsAccumulator::finish`]) to get the
//! [`RunMetrics`]. The same accumulator works on imported trajectories (SUMO FCD) without
//! events.
//!
//! # Definitions
//! * **vehicle_collisions**: two vehicle boxes (oriented rectangles `length_m x width_m`
//!   centred on `(x_m, y_m)`, rotated by `heading_rad`) that overlap at the same step by more
//!   than [`CONTACT_EPS_M`] on every separating axis (separating axis theorem). A pair in
//!   contact over consecutive recorded steps is one collision (one *contact episode*); it
//!   counts again only after the boxes separated. Boxes whose `z_m` differ by
//!   [`LEVEL_SEPARATION_M`] or more are on different levels (a bridge over a road) and do
//!   not collide.
//! * **pedestrian_collisions**: a pedestrian disc of radius [`PEDESTRIAN_RADIUS_M`] that
//!   reaches into a vehicle box by more than [`CONTACT_EPS_M`], counted per episode likewise.
//! * **gridlocked_vehicles**: vehicles that stood still (speed below [`STOPPED_MPS`]) for
//!   longer than [`GRIDLOCK_S`] without interruption at any time of the run: SUMO's jam
//!   criterion (its default `--time-to-teleport`, after which SUMO would teleport them).
//! * **long_stopped_vehicles**: the same over [`LONG_STOP_S`]: waits longer than a signal
//!   cycle, as in an oversaturated queue that misses a green; **max_stopped_s**: the longest
//!   such wait of the run.
//! * **mean_speed_mps**: the mean of vehicle speeds over all recorded vehicle-steps (a time
//!   average when steps are evenly spaced).
//! * **off_road_time_s**: vehicle-seconds spent farther than [`OFF_ROAD_M`] from every lane
//!   centre line and junction connection path of the twin.
//! * **travel times**: from `Arrived` events, per agent kind: count, mean, median, p95 and a
//!   histogram.
//! * **red_light_violations**, **pedestrian_off_walk_graph**, **deadlocks_resolved**: counts
//!   of the matching [`SimEvent`]s.
//! * **vehicle_updates_per_s**: vehicle-steps simulated per wall-clock second; the caller
//!   fills it in (the accumulator never reads a clock, so metrics stay deterministic).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use rstar::RTree;
use rstar::primitives::Line;
use serde::{Deserialize, Serialize};
use swm_twin::Twin;

use crate::record::SimEvent;
use crate::{DT_S, TrajectoryRecord};

/// Vehicles whose recorded heights differ by this much (m) are on different levels.
pub const LEVEL_SEPARATION_M: f64 = 3.0;
/// Radius of a pedestrian's disc in collision tests (m).
pub const PEDESTRIAN_RADIUS_M: f64 = 0.25;
/// Overlap below this depth is contact, not collision (m): touching boxes do not collide.
pub const CONTACT_EPS_M: f64 = 1e-3;
/// A vehicle slower than this is stopped (m/s).
pub const STOPPED_MPS: f64 = 0.1;
/// A vehicle stopped longer than this without interruption is gridlocked (s): SUMO's
/// default `--time-to-teleport`.
pub const GRIDLOCK_S: f64 = 300.0;
/// A vehicle stopped longer than this without interruption waited longer than a signal
/// cycle (s).
pub const LONG_STOP_S: f64 = 120.0;
/// A vehicle farther than this from every lane and connection is off the road (m).
pub const OFF_ROAD_M: f64 = 3.0;
/// Bin width of the speed histogram (m/s).
pub const SPEED_BIN_MPS: f64 = 1.0;
/// Bins of the speed histogram (the last one takes everything faster).
pub const SPEED_BINS: usize = 40;
/// Bin width of the travel-time histograms (s).
pub const TRAVEL_BIN_S: f64 = 10.0;
/// Sampling interval of the vehicles-in-district series (s of simulated time).
pub const SERIES_INTERVAL_S: f64 = 1.0;

/// Travel-time statistics of one agent kind (from `Arrived` events).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TravelTimeStats {
    pub count: u64,
    pub mean_s: f64,
    pub median_s: f64,
    pub p95_s: f64,
    pub max_s: f64,
    /// Arrivals per [`TRAVEL_BIN_S`] bin, from 0 s.
    pub histogram: Vec<u64>,
}

/// Metrics of one run (the `metrics.json` of a run directory).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// Distinct vehicles seen.
    pub vehicles: u64,
    /// Distinct pedestrians seen.
    pub pedestrians: u64,
    /// Steps recorded.
    pub steps: u64,
    /// Simulated time covered by the records (s).
    pub sim_seconds: f64,
    pub vehicle_collisions: u64,
    pub pedestrian_collisions: u64,
    pub red_light_violations: u64,
    pub gridlocked_vehicles: u64,
    /// Vehicles stopped longer than [`LONG_STOP_S`] at some time.
    #[serde(default)]
    pub long_stopped_vehicles: u64,
    /// The longest uninterrupted stop of a vehicle (s).
    #[serde(default)]
    pub max_stopped_s: f64,
    pub mean_speed_mps: f64,
    pub max_speed_mps: f64,
    /// Vehicle-seconds off the road (see the module docs).
    pub off_road_time_s: f64,
    /// Distinct vehicles that were off the road at some step.
    pub off_road_vehicles: u64,
    pub pedestrian_off_walk_graph: u64,
    pub deadlocks_resolved: u64,
    /// Agents that arrived (all kinds).
    pub arrivals: u64,
    /// Per agent kind (`car`, `bus`, `truck`, `pedestrian`).
    pub travel_time_s: BTreeMap<String, TravelTimeStats>,
    /// Vehicle-steps recorded.
    pub vehicle_updates: u64,
    /// Vehicle-steps per wall-clock second (filled by the caller; 0 when unknown).
    pub vehicle_updates_per_s: f64,
    /// Vehicle-steps per [`SPEED_BIN_MPS`] speed bin, from 0 m/s.
    pub speed_histogram: Vec<u64>,
    /// `(time_s, vehicles)` once every [`SERIES_INTERVAL_S`] of simulated time.
    pub vehicles_over_time: Vec<(f64, u32)>,
}

/// An oriented box in the plane.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrientedBox {
    pub center: [f64; 2],
    pub heading_rad: f64,
    pub length_m: f64,
    pub width_m: f64,
}

impl OrientedBox {
    pub fn of_record(r: &TrajectoryRecord) -> Self {
        OrientedBox {
            center: [r.x_m, r.y_m],
            heading_rad: r.heading_rad,
            length_m: f64::from(r.length_m),
            width_m: f64::from(r.width_m),
        }
    }

    /// Unit vectors along the length and the width.
    fn axes(&self) -> [[f64; 2]; 2] {
        let (s, c) = self.heading_rad.sin_cos();
        [[c, s], [-s, c]]
    }

    fn half_extents(&self) -> [f64; 2] {
        [self.length_m / 2.0, self.width_m / 2.0]
    }

    /// Half the diagonal: no point of the box is farther from the centre.
    pub fn bounding_radius_m(&self) -> f64 {
        0.5 * self.length_m.hypot(self.width_m)
    }

    /// Half the extent of a box with `axes` and `half_extents` projected on unit `axis`.
    fn projected_radius(axes: [[f64; 2]; 2], [hl, hw]: [f64; 2], axis: [f64; 2]) -> f64 {
        hl * dot(axes[0], axis).abs() + hw * dot(axes[1], axis).abs()
    }

    /// Penetration depth along the least-overlapping of the four candidate axes
    /// (separating axis theorem); negative or zero when the boxes are separated or touch.
    pub fn overlap_depth_m(&self, other: &OrientedBox) -> f64 {
        let d = [other.center[0] - self.center[0], other.center[1] - self.center[1]];
        let (mine, theirs) = (self.axes(), other.axes());
        let (my_half, their_half) = (self.half_extents(), other.half_extents());
        let mut depth = f64::INFINITY;
        for axis in mine.into_iter().chain(theirs) {
            let dist = dot(d, axis).abs();
            let overlap =
                Self::projected_radius(mine, my_half, axis) + Self::projected_radius(theirs, their_half, axis) - dist;
            depth = depth.min(overlap);
        }
        depth
    }

    /// How far a disc of radius `r_m` centred at `p` reaches into the box (negative: apart).
    pub fn disc_depth_m(&self, p: [f64; 2], r_m: f64) -> f64 {
        let [a, b] = self.axes();
        let [hl, hw] = self.half_extents();
        let d = [p[0] - self.center[0], p[1] - self.center[1]];
        let (u, v) = (dot(d, a), dot(d, b));
        let (cu, cv) = (u.clamp(-hl, hl), v.clamp(-hw, hw));
        let outside = (u - cu).hypot(v - cv);
        if outside > 0.0 {
            r_m - outside
        } else {
            // Centre inside the box: depth to the nearest side plus the radius.
            r_m + (hl - u.abs()).min(hw - v.abs())
        }
    }
}

fn dot(a: [f64; 2], b: [f64; 2]) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

/// Squared distance from `p` to the segment `a`-`b`.
fn segment_distance2(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let ab = [b[0] - a[0], b[1] - a[1]];
    let ap = [p[0] - a[0], p[1] - a[1]];
    let len2 = dot(ab, ab);
    let t = if len2 > 0.0 { (dot(ap, ab) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let d = [ap[0] - ab[0] * t, ap[1] - ab[1] * t];
    dot(d, d)
}

/// Pairs `(i, j)`, `i < j` in `boxes` order, whose boxes overlap by more than
/// [`CONTACT_EPS_M`] (sweep and prune on x, then the separating axis test).
pub fn overlapping_pairs(boxes: &[OrientedBox]) -> Vec<(usize, usize)> {
    overlapping_pairs_with(boxes, &mut Vec::new())
}

/// [`overlapping_pairs`] with the sweep order of the previous call: when the boxes are
/// the same agents in the same order as then, moved a little (the steps of a run), the
/// order is nearly sorted already and an insertion sort restores it in about linear time.
fn overlapping_pairs_with(boxes: &[OrientedBox], order: &mut Vec<(f64, f64, usize)>) -> Vec<(usize, usize)> {
    if order.len() != boxes.len() {
        order.clear();
        order.extend((0..boxes.len()).map(|i| (0.0, 0.0, i)));
    }
    for e in order.iter_mut() {
        let r = boxes[e.2].bounding_radius_m();
        *e = (boxes[e.2].center[0] - r, r, e.2);
    }
    let before = |a: &(f64, f64, usize), b: &(f64, f64, usize)| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)).is_lt();
    for i in 1..order.len() {
        let mut j = i;
        while j > 0 && before(&order[j], &order[j - 1]) {
            order.swap(j, j - 1);
            j -= 1;
        }
    }
    let order = &order[..];
    let mut out = Vec::new();
    for (k, &(lo_i, r_i, i)) in order.iter().enumerate() {
        let hi_i = lo_i + 2.0 * r_i;
        for &(lo_j, r_j, j) in &order[k + 1..] {
            if lo_j > hi_i {
                break;
            }
            let (bi, bj) = (&boxes[i], &boxes[j]);
            let (dx, dy) = (bi.center[0] - bj.center[0], bi.center[1] - bj.center[1]);
            // Bounding discs apart (with a hair of slack: the separating axis test decides).
            if dx * dx + dy * dy > (r_i + r_j) * (r_i + r_j) * (1.0 + 1e-9) {
                continue;
            }
            if bi.overlap_depth_m(bj) > CONTACT_EPS_M {
                out.push((i.min(j), i.max(j)));
            }
        }
    }
    out.sort_unstable();
    out
}

/// What the accumulator keeps of a vehicle between steps: where its current standstill
/// began, the last step it was seen, the road segment it was last near.
#[derive(Clone, Copy, Debug, Default)]
struct Tracked {
    stopped_since_s: Option<f64>,
    /// The accumulator's step count when this vehicle was last recorded.
    seen_step: u64,
    /// The road segment it was last found near (checked first: vehicles move little
    /// between steps).
    near_segment: Option<[[f64; 2]; 2]>,
}

/// Drop the standstills of vehicles not seen for this many steps (memory only: a vehicle
/// that comes back after missing a step starts afresh whether or not it was dropped).
const STOPS_PRUNE_STEPS: u64 = 256;

/// Hashes the `u64` agent ids of the per-vehicle map (a multiply and a fold: ids are
/// trusted integers, and the map is read once per vehicle and step).
#[derive(Default)]
struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, id: u64) {
        let m = u128::from(id ^ self.0) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Streams the records of a run into [`RunMetrics`].
pub struct MetricsAccumulator {
    road: RTree<Line<[f64; 2]>>,
    has_road: bool,
    /// Lane centre lines by lane index (a record's own lane is checked before the tree).
    lanes: Vec<Vec<[f64; 2]>>,
    vehicles: BTreeSet<u64>,
    pedestrians: BTreeSet<u64>,
    steps: u64,
    first_time_s: Option<f64>,
    last_time_s: Option<f64>,
    last_interval_s: f64,
    vehicle_contacts: BTreeSet<(u64, u64)>,
    pedestrian_contacts: BTreeSet<(u64, u64)>,
    vehicle_collisions: u64,
    pedestrian_collisions: u64,
    stops: IdMap<Tracked>,
    gridlocked: BTreeSet<u64>,
    long_stopped: BTreeSet<u64>,
    max_stopped_s: f64,
    speed_sum: f64,
    max_speed_mps: f64,
    vehicle_updates: u64,
    off_road_time_s: f64,
    off_road_vehicles: BTreeSet<u64>,
    speed_histogram: Vec<u64>,
    vehicles_over_time: Vec<(f64, u32)>,
    next_sample_s: f64,
    /// Per-step buffers, kept to spare the allocations.
    vboxes: Vec<OrientedBox>,
    vids: Vec<u64>,
    vz: Vec<f64>,
    /// The sweep order of the last step's vehicle boxes (see `overlapping_pairs_with`).
    sweep_order: Vec<(f64, f64, usize)>,
}

impl MetricsAccumulator {
    /// An accumulator for runs on `twin` (its lanes and connections decide what is off-road).
    pub fn new(twin: &Twin) -> Self {
        let mut segments = Vec::new();
        let polylines = twin
            .lanes
            .iter()
            .map(|l| l.centerline.as_slice())
            .chain(twin.lane_connections.iter().map(|c| c.path.as_slice()));
        for pl in polylines {
            for w in pl.windows(2) {
                let (a, b) = ([w[0][0], w[0][1]], [w[1][0], w[1][1]]);
                if a.iter().chain(&b).all(|v| v.is_finite()) {
                    segments.push(Line::new(a, b));
                }
            }
        }
        let has_road = !segments.is_empty();
        let lanes = twin.lanes.iter().map(|l| l.centerline.iter().map(|p| [p[0], p[1]]).collect()).collect();
        MetricsAccumulator {
            road: RTree::bulk_load(segments),
            has_road,
            lanes,
            vehicles: BTreeSet::new(),
            pedestrians: BTreeSet::new(),
            steps: 0,
            first_time_s: None,
            last_time_s: None,
            last_interval_s: DT_S,
            vehicle_contacts: BTreeSet::new(),
            pedestrian_contacts: BTreeSet::new(),
            vehicle_collisions: 0,
            pedestrian_collisions: 0,
            stops: IdMap::default(),
            gridlocked: BTreeSet::new(),
            long_stopped: BTreeSet::new(),
            max_stopped_s: 0.0,
            speed_sum: 0.0,
            max_speed_mps: 0.0,
            vehicle_updates: 0,
            off_road_time_s: 0.0,
            off_road_vehicles: BTreeSet::new(),
            speed_histogram: vec![0; SPEED_BINS],
            vehicles_over_time: Vec::new(),
            next_sample_s: f64::NEG_INFINITY,
            vboxes: Vec::new(),
            vids: Vec::new(),
            vz: Vec::new(),
            sweep_order: Vec::new(),
        }
    }

    /// Adds the records of one step (all agents present at that step). Steps must come in
    /// increasing order; `step` is the simulator's step number (for logs only).
    pub fn push_step(&mut self, step: u32, records: &[TrajectoryRecord]) {
        let Some(time_s) = records.first().map(|r| r.time_s) else {
            self.steps += 1;
            return;
        };
        let interval_s = match self.last_time_s {
            Some(t) if time_s > t => time_s - t,
            Some(_) => self.last_interval_s,
            None => DT_S,
        };
        self.last_interval_s = interval_s;
        self.first_time_s.get_or_insert(time_s);
        self.last_time_s = Some(time_s);
        self.steps += 1;

        let (mut vboxes, mut vids, mut vz) =
            (std::mem::take(&mut self.vboxes), std::mem::take(&mut self.vids), std::mem::take(&mut self.vz));
        vboxes.clear();
        vids.clear();
        vz.clear();
        let mut peds = Vec::new();
        for r in records {
            if r.kind.is_vehicle() {
                vboxes.push(OrientedBox::of_record(r));
                vids.push(r.agent_id);
                vz.push(r.z_m);
                self.vehicle(r, time_s, interval_s);
            } else {
                self.pedestrians.insert(r.agent_id);
                peds.push(r);
            }
        }
        // Vehicles that left stop being tracked (a vehicle missing from a step starts its
        // standstill afresh when it comes back: see `vehicle`).
        if self.steps.is_multiple_of(STOPS_PRUNE_STEPS) {
            let now = self.steps;
            self.stops.retain(|_, st| st.seen_step == now);
        }

        if time_s >= self.next_sample_s {
            self.vehicles_over_time.push((time_s, vids.len() as u32));
            self.next_sample_s = (time_s / SERIES_INTERVAL_S).floor() * SERIES_INTERVAL_S + SERIES_INTERVAL_S;
        }

        // Vehicle-vehicle contacts.
        let mut contacts = BTreeSet::new();
        for (i, j) in overlapping_pairs_with(&vboxes, &mut self.sweep_order) {
            if (vz[i] - vz[j]).abs() >= LEVEL_SEPARATION_M {
                continue;
            }
            let (a, b) = (vids[i].min(vids[j]), vids[i].max(vids[j]));
            contacts.insert((a, b));
        }
        let new = contacts.difference(&self.vehicle_contacts).count() as u64;
        if new > 0 {
            tracing::debug!(step, new, "vehicle collisions");
        }
        self.vehicle_collisions += new;
        self.vehicle_contacts = contacts;
        let near_vehicles = !peds.is_empty() && !vboxes.is_empty();

        // Pedestrian-vehicle contacts (vehicles near each pedestrian via a sorted sweep).
        let mut contacts = BTreeSet::new();
        if near_vehicles {
            let mut order: Vec<(f64, usize)> = vboxes.iter().enumerate().map(|(i, b)| (b.center[0], i)).collect();
            order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let reach_m = vboxes.iter().map(OrientedBox::bounding_radius_m).fold(0.0, f64::max) + PEDESTRIAN_RADIUS_M;
            for p in &peds {
                let lo = order.partition_point(|(x, _)| *x < p.x_m - reach_m);
                for &(x, i) in &order[lo..] {
                    if x > p.x_m + reach_m {
                        break;
                    }
                    if vboxes[i].disc_depth_m([p.x_m, p.y_m], PEDESTRIAN_RADIUS_M) > CONTACT_EPS_M {
                        contacts.insert((p.agent_id, vids[i]));
                    }
                }
            }
        }
        let new = contacts.difference(&self.pedestrian_contacts).count() as u64;
        if new > 0 {
            tracing::debug!(step, new, "pedestrian collisions");
        }
        self.pedestrian_collisions += new;
        self.pedestrian_contacts = contacts;
        (self.vboxes, self.vids, self.vz) = (vboxes, vids, vz);
    }

    /// Whether `p` is within [`OFF_ROAD_M`] of a lane centre line or connection path: the
    /// segment it was last near, the record's own lane, then the whole road. Updates
    /// `near_segment` to a segment it is near.
    fn on_road(
        road: &RTree<Line<[f64; 2]>>,
        lanes: &[Vec<[f64; 2]>],
        p: [f64; 2],
        lane: Option<u32>,
        near_segment: &mut Option<[[f64; 2]; 2]>,
    ) -> bool {
        let r2 = OFF_ROAD_M * OFF_ROAD_M;
        if let Some([a, b]) = *near_segment
            && segment_distance2(p, a, b) <= r2
        {
            return true;
        }
        if let Some(line) = lane.and_then(|l| lanes.get(l as usize))
            && let Some(w) = line.windows(2).find(|w| segment_distance2(p, w[0], w[1]) <= r2)
        {
            *near_segment = Some([w[0], w[1]]);
            return true;
        }
        *near_segment = road.locate_within_distance(p, r2).next().map(|l| [l.from, l.to]);
        near_segment.is_some()
    }

    fn vehicle(&mut self, r: &TrajectoryRecord, time_s: f64, interval_s: f64) {
        let speed = r.speed_mps.abs();
        self.vehicle_updates += 1;
        self.speed_sum += speed;
        self.max_speed_mps = self.max_speed_mps.max(speed);
        let bin = ((speed / SPEED_BIN_MPS) as usize).min(SPEED_BINS - 1);
        self.speed_histogram[bin] += 1;

        let now = self.steps;
        let st = self.stops.entry(r.agent_id).or_insert_with(|| {
            self.vehicles.insert(r.agent_id);
            Tracked { stopped_since_s: None, seen_step: now, near_segment: None }
        });
        if st.seen_step + 1 < now {
            // Missing from a step in between: a new standstill.
            st.stopped_since_s = None;
        }
        st.seen_step = now;
        if speed < STOPPED_MPS {
            let since = *st.stopped_since_s.get_or_insert(time_s);
            let stopped_s = time_s - since;
            self.max_stopped_s = self.max_stopped_s.max(stopped_s);
            if stopped_s > LONG_STOP_S {
                self.long_stopped.insert(r.agent_id);
            }
            if stopped_s > GRIDLOCK_S {
                self.gridlocked.insert(r.agent_id);
            }
        } else {
            st.stopped_since_s = None;
        }

        if self.has_road && !Self::on_road(&self.road, &self.lanes, [r.x_m, r.y_m], r.lane, &mut st.near_segment) {
            self.off_road_time_s += interval_s;
            self.off_road_vehicles.insert(r.agent_id);
        }
    }

    /// The metrics, with the run's events.
    pub fn finish(self, events: &[SimEvent]) -> RunMetrics {
        let mut travel: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let (mut red, mut off_walk, mut deadlocks, mut arrivals) = (0, 0, 0, 0);
        for e in events {
            match e {
                SimEvent::RedLightViolation { .. } => red += 1,
                SimEvent::PedestrianOffWalkGraph { .. } => off_walk += 1,
                SimEvent::DeadlockResolved { .. } => deadlocks += 1,
                SimEvent::Arrived { kind, travel_time_s, .. } => {
                    arrivals += 1;
                    if travel_time_s.is_finite() {
                        travel.entry(kind.as_str().to_string()).or_default().push(*travel_time_s);
                    }
                }
                SimEvent::Spawned { .. } => {}
            }
        }
        let sim_seconds = match (self.first_time_s, self.last_time_s) {
            (Some(a), Some(b)) => b - a + self.last_interval_s,
            _ => 0.0,
        };
        RunMetrics {
            vehicles: self.vehicles.len() as u64,
            pedestrians: self.pedestrians.len() as u64,
            steps: self.steps,
            sim_seconds,
            vehicle_collisions: self.vehicle_collisions,
            pedestrian_collisions: self.pedestrian_collisions,
            red_light_violations: red,
            gridlocked_vehicles: self.gridlocked.len() as u64,
            long_stopped_vehicles: self.long_stopped.len() as u64,
            max_stopped_s: self.max_stopped_s,
            mean_speed_mps: if self.vehicle_updates > 0 { self.speed_sum / self.vehicle_updates as f64 } else { 0.0 },
            max_speed_mps: self.max_speed_mps,
            off_road_time_s: self.off_road_time_s,
            off_road_vehicles: self.off_road_vehicles.len() as u64,
            pedestrian_off_walk_graph: off_walk,
            deadlocks_resolved: deadlocks,
            arrivals,
            travel_time_s: travel.into_iter().map(|(k, v)| (k, travel_stats(v))).collect(),
            vehicle_updates: self.vehicle_updates,
            vehicle_updates_per_s: 0.0,
            speed_histogram: self.speed_histogram,
            vehicles_over_time: self.vehicles_over_time,
        }
    }
}

/// Travel-time statistics of a sample (percentiles by the nearest-rank method).
pub fn travel_stats(mut v: Vec<f64>) -> TravelTimeStats {
    if v.is_empty() {
        return TravelTimeStats::default();
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let rank = |q: f64| v[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    let max_s = v[n - 1];
    let mut histogram = vec![0u64; (max_s / TRAVEL_BIN_S).floor() as usize + 1];
    let last = histogram.len() - 1;
    for t in &v {
        histogram[((t.max(0.0) / TRAVEL_BIN_S).floor() as usize).min(last)] += 1;
    }
    TravelTimeStats {
        count: n as u64,
        mean_s: v.iter().sum::<f64>() / n as f64,
        median_s: if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) },
        p95_s: rank(0.95),
        max_s,
        histogram,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentKind, SignalState};

    fn rec(id: u64, kind: AgentKind, step: u32, x: f64, y: f64, heading: f64, speed: f64) -> TrajectoryRecord {
        let (l, w) = if kind.is_vehicle() { (4.5, 1.8) } else { (0.5, 0.5) };
        TrajectoryRecord {
            agent_id: id,
            kind,
            length_m: l,
            width_m: w,
            step,
            time_s: f64::from(step) * DT_S,
            x_m: x,
            y_m: y,
            z_m: 0.0,
            heading_rad: heading,
            speed_mps: speed,
            accel_mps2: 0.0,
            lane: None,
            signal: Some(SignalState::Green),
        }
    }

    fn empty_twin() -> Twin {
        Twin::default()
    }

    /// A small deterministic generator for the tests below.
    struct XorShift(u64);
    impl XorShift {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// The sweep order kept from step to step (and reset when the count changes) finds
    /// exactly the pairs a test of every pair finds.
    #[test]
    fn sweep_order_kept_between_steps_finds_every_overlapping_pair() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut boxes: Vec<OrientedBox> = (0..120)
            .map(|_| OrientedBox {
                center: [rng.unit() * 120.0, rng.unit() * 60.0],
                heading_rad: rng.unit() * 6.3,
                length_m: 4.0 + rng.unit() * 8.0,
                width_m: 1.8 + rng.unit() * 0.7,
            })
            .collect();
        let mut order = Vec::new();
        let mut found = 0;
        for step in 0..60 {
            for b in &mut boxes {
                b.center[0] += (rng.unit() - 0.3) * 2.0;
                b.center[1] += (rng.unit() - 0.5) * 1.0;
                b.heading_rad += (rng.unit() - 0.5) * 0.2;
            }
            if step % 17 == 16 {
                boxes.pop();
            }
            let mut want = Vec::new();
            for i in 0..boxes.len() {
                for j in i + 1..boxes.len() {
                    if boxes[i].overlap_depth_m(&boxes[j]) > CONTACT_EPS_M {
                        want.push((i, j));
                    }
                }
            }
            assert_eq!(overlapping_pairs_with(&boxes, &mut order), want, "step {step}");
            found += want.len();
        }
        assert!(found > 50, "the boxes should meet often enough to test something ({found})");
    }

    /// The off-road test with the last segment and the own lane checked first agrees with
    /// the R-tree of every segment, point by point along random walks.
    #[test]
    fn the_near_segment_cache_agrees_with_the_tree() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let lanes: Vec<Vec<[f64; 2]>> = (0..6)
            .map(|k| {
                (0..8).map(|i| [f64::from(i) * 10.0, f64::from(k) * 7.0 + (f64::from(i) * 0.7).sin() * 2.0]).collect()
            })
            .collect();
        let segments: Vec<Line<[f64; 2]>> =
            lanes.iter().flat_map(|l| l.windows(2).map(|w| Line::new(w[0], w[1])).collect::<Vec<_>>()).collect();
        let brute =
            |p: [f64; 2]| segments.iter().any(|l| segment_distance2(p, l.from, l.to) <= OFF_ROAD_M * OFF_ROAD_M);
        let road = RTree::bulk_load(segments.clone());
        let (mut on, mut off) = (0, 0);
        for walk in 0..40 {
            let mut p = [rng.unit() * 70.0, rng.unit() * 40.0 - 3.0];
            let lane = (walk % 3 != 0).then_some((walk % 6) as u32);
            let mut near = None;
            for _ in 0..100 {
                p[0] += (rng.unit() - 0.5) * 3.0;
                p[1] += (rng.unit() - 0.5) * 3.0;
                let got = MetricsAccumulator::on_road(&road, &lanes, p, lane, &mut near);
                assert_eq!(got, brute(p), "walk {walk} at {p:?}");
                if got { on += 1 } else { off += 1 }
            }
        }
        assert!(on > 500 && off > 500, "both answers should be tested ({on} on, {off} off)");
    }

    #[test]
    fn boxes_at_an_angle_overlap_once() {
        let mut acc = MetricsAccumulator::new(&empty_twin());
        // Crossing at 60 degrees, centres 2 m apart: overlapping for three steps.
        for step in 0..3 {
            let recs = [
                rec(1, AgentKind::Car, step, 0.0, 0.0, 0.0, 0.0),
                rec(2, AgentKind::Car, step, 2.0, 0.5, 60f64.to_radians(), 0.0),
            ];
            acc.push_step(step, &recs);
        }
        // Apart, then in contact again: a second episode.
        acc.push_step(
            3,
            &[rec(1, AgentKind::Car, 3, 0.0, 0.0, 0.0, 1.0), rec(2, AgentKind::Car, 3, 20.0, 0.0, 0.0, 1.0)],
        );
        let m = acc.finish(&[]);
        assert_eq!(m.vehicle_collisions, 1);
        assert_eq!(m.vehicles, 2);
        let mut acc = MetricsAccumulator::new(&empty_twin());
        acc.push_step(
            0,
            &[rec(1, AgentKind::Car, 0, 0.0, 0.0, 0.0, 0.0), rec(2, AgentKind::Car, 0, 2.0, 0.5, 1.0, 0.0)],
        );
        acc.push_step(
            1,
            &[rec(1, AgentKind::Car, 1, 0.0, 0.0, 0.0, 0.0), rec(2, AgentKind::Car, 1, 20.0, 0.5, 1.0, 0.0)],
        );
        acc.push_step(
            2,
            &[rec(1, AgentKind::Car, 2, 0.0, 0.0, 0.0, 0.0), rec(2, AgentKind::Car, 2, 2.0, 0.5, 1.0, 0.0)],
        );
        assert_eq!(acc.finish(&[]).vehicle_collisions, 2);
    }

    #[test]
    fn touching_but_separated_boxes_do_not_collide() {
        let mut acc = MetricsAccumulator::new(&empty_twin());
        // Bumper to bumper (4.5 m apart, length 4.5 m), and side by side (1.8 m apart).
        acc.push_step(
            0,
            &[
                rec(1, AgentKind::Car, 0, 0.0, 0.0, 0.0, 0.0),
                rec(2, AgentKind::Car, 0, 4.5, 0.0, 0.0, 0.0),
                rec(3, AgentKind::Car, 0, 0.0, 1.8, 0.0, 0.0),
            ],
        );
        // Rotated 45 degrees, bounding circles overlap but the boxes do not (SAT separates).
        let b = OrientedBox { center: [0.0, 0.0], heading_rad: 0.0, length_m: 4.5, width_m: 1.8 };
        let c =
            OrientedBox { center: [3.92, 2.57], heading_rad: std::f64::consts::FRAC_PI_4, length_m: 4.5, width_m: 1.8 };
        assert!(b.overlap_depth_m(&c) <= 0.0, "{}", b.overlap_depth_m(&c));
        assert!(c.center[0].hypot(c.center[1]) < b.bounding_radius_m() + c.bounding_radius_m());
        assert!(overlapping_pairs(&[b, c]).is_empty());
        assert_eq!(acc.finish(&[]).vehicle_collisions, 0);
    }

    #[test]
    fn pedestrian_disc_against_box() {
        let b = OrientedBox { center: [0.0, 0.0], heading_rad: 0.0, length_m: 4.0, width_m: 2.0 };
        assert!(b.disc_depth_m([2.2, 0.0], 0.25) > 0.0);
        assert!(b.disc_depth_m([2.3, 0.0], 0.25) < 0.0);
        assert!(b.disc_depth_m([0.0, 0.0], 0.25) > 1.0);
        let mut acc = MetricsAccumulator::new(&empty_twin());
        acc.push_step(
            0,
            &[rec(1, AgentKind::Car, 0, 0.0, 0.0, 0.0, 0.0), rec(9, AgentKind::Pedestrian, 0, 2.3, 0.0, 0.0, 1.0)],
        );
        acc.push_step(
            1,
            &[rec(1, AgentKind::Car, 1, 0.0, 0.0, 0.0, 0.0), rec(9, AgentKind::Pedestrian, 1, 2.0, 0.0, 0.0, 1.0)],
        );
        acc.push_step(
            2,
            &[rec(1, AgentKind::Car, 2, 0.0, 0.0, 0.0, 0.0), rec(9, AgentKind::Pedestrian, 2, 1.9, 0.0, 0.0, 1.0)],
        );
        let m = acc.finish(&[]);
        assert_eq!(m.pedestrian_collisions, 1);
        assert_eq!((m.vehicles, m.pedestrians), (1, 1));
    }

    #[test]
    fn a_vehicle_stopped_130_s_waited_long_and_one_stopped_310_s_is_gridlocked() {
        let mut acc = MetricsAccumulator::new(&empty_twin());
        for step in 0..=1300 {
            let moving = rec(2, AgentKind::Bus, step, 100.0 + f64::from(step), 0.0, 0.0, 10.0);
            acc.push_step(step, &[rec(1, AgentKind::Car, step, 0.0, 0.0, 0.0, 0.0), moving]);
        }
        let m = acc.finish(&[]);
        assert_eq!(m.gridlocked_vehicles, 0);
        assert_eq!(m.long_stopped_vehicles, 1);
        assert!((m.max_stopped_s - 130.0).abs() < 1e-6, "{}", m.max_stopped_s);
        let mut longer = MetricsAccumulator::new(&empty_twin());
        for step in 0..=3100 {
            longer.push_step(step, &[rec(1, AgentKind::Car, step, 0.0, 0.0, 0.0, 0.0)]);
        }
        let l = longer.finish(&[]);
        assert_eq!((l.gridlocked_vehicles, l.long_stopped_vehicles), (1, 1));
        assert!((l.max_stopped_s - 310.0).abs() < 1e-6, "{}", l.max_stopped_s);
        assert!((m.sim_seconds - 130.1).abs() < 1e-6, "{}", m.sim_seconds);
        assert!((m.mean_speed_mps - 5.0).abs() < 1e-9);
        assert_eq!(m.vehicle_updates, 2602);
        assert_eq!(m.speed_histogram[0], 1301);
        assert_eq!(m.speed_histogram[10], 1301);
        assert_eq!(m.vehicles_over_time.len(), 131);
        // Off-road is not judged without a road network.
        assert_eq!(m.off_road_time_s, 0.0);
    }

    #[test]
    fn events_are_counted_and_travel_times_summarised() {
        let arrived = |id, t| SimEvent::Arrived {
            agent_id: id,
            step: 10,
            kind: AgentKind::Car,
            travel_time_s: t,
            distance_m: 100.0,
        };
        let events = vec![
            SimEvent::RedLightViolation { agent_id: 1, step: 3, lane: 0 },
            SimEvent::PedestrianOffWalkGraph { agent_id: 5, step: 4 },
            arrived(1, 10.0),
            arrived(2, 20.0),
            arrived(3, 30.0),
            arrived(4, 100.0),
        ];
        let m = MetricsAccumulator::new(&empty_twin()).finish(&events);
        assert_eq!((m.red_light_violations, m.pedestrian_off_walk_graph, m.arrivals), (1, 1, 4));
        let car = &m.travel_time_s["car"];
        assert_eq!(car.count, 4);
        assert_eq!(car.mean_s, 40.0);
        assert_eq!(car.median_s, 25.0);
        assert_eq!(car.p95_s, 100.0);
        assert_eq!(car.histogram.iter().sum::<u64>(), 4);
    }

    #[test]
    fn off_road_time_against_lanes() {
        let mut twin = empty_twin();
        twin.lanes.push(swm_twin::Lane {
            centerline: vec![[0.0, 0.0, 0.0], [100.0, 0.0, 0.0]],
            length_m: 100.0,
            ..test_lane()
        });
        let mut acc = MetricsAccumulator::new(&twin);
        for step in 0..10 {
            acc.push_step(
                step,
                &[
                    rec(1, AgentKind::Car, step, 50.0, 1.0, 0.0, 5.0),
                    rec(2, AgentKind::Car, step, 50.0, 10.0, 0.0, 5.0),
                ],
            );
        }
        let m = acc.finish(&[]);
        assert_eq!(m.off_road_vehicles, 1);
        assert!((m.off_road_time_s - 1.0).abs() < 1e-9, "{}", m.off_road_time_s);
    }

    fn test_lane() -> swm_twin::Lane {
        swm_twin::Lane {
            source: swm_core::SourceRef::Derived,
            road_class: swm_twin::RoadClass::Residential,
            name: None,
            centerline: Vec::new(),
            length_m: 0.0,
            width_m: 3.2,
            speed_limit_mps: 13.9,
            speed_limit_tagged: false,
            forward: true,
            index_from_right: 0,
            lanes_in_direction: 1,
            from_junction: None,
            to_junction: None,
            left: None,
            right: None,
            turns: Vec::new(),
            stop_line: None,
            signal: None,
            level: 0,
        }
    }
}
