//! Pedestrians on the walk graph: routes, social forces, crossings.
//!
//! # Model
//! * **Trips**: every pedestrian walks an A* route (cost = length, steps × [`STEPS_COST_FACTOR`])
//!   between two nodes of the walk graph's largest connected component. New pedestrians
//!   mostly enter at the district's edge nodes ([`SPAWN_AT_EDGE_P`]); a trip leaves the
//!   district at an edge node ([`LEAVE_AT_EDGE_P`]) or goes to a node 60-600 m away. The
//!   population is placed along the walk graph at the start and topped up to `target_count`
//!   as others arrive ([`SimEvent::Spawned`], [`SimEvent::Arrived`] with the travel time and
//!   the distance actually walked). Ids start at [`PEDESTRIAN_ID_BASE`].
//! * **Speed**: a desired walking speed per pedestrian, N(1.34, 0.26) m/s clamped to
//!   0.6..2.0 m/s; at most 1.3 × that when pushed.
//! * **Social forces** (Helbing & Molnár 1995), per unit mass: a driving force
//!   `(v0 e - v) / τ` towards a waypoint [`LOOKAHEAD_M`] ahead along the route (the edge's
//!   polyline, shifted to the right so that people keep right; on shared roads, along the
//!   road's right edge, `width/2 - 0.5 m` from its centre line); repulsion from other
//!   pedestrians through the elliptical potential `V0 exp(-b/σ)` whose semi-minor axis `b`
//!   accounts for the other's next step, weighted by the field of view (anisotropy), with a
//!   sideways push to the right against oncoming people (passing on the right) and a body
//!   contact term; repulsion from the boundaries of the walkable band (`width/2` either side
//!   of the edge's polyline). Positions are finally kept inside the band of the route's
//!   current (or neighbouring) walk edge, so nobody ever leaves the walk graph, and roads
//!   are only ever crossed on `Crossing` edges.
//! * **Neighbours** come from a uniform grid of [`INTERACTION_RANGE_M`] cells (a sorted
//!   cell list, no hashing), so a step is O(n).
//! * **Crossings**: a pedestrian whose next edge is a crossing that cuts lanes decides when
//!   within [`DECIDE_DISTANCE_M`] of the kerb-side node, every step until it may go
//!   ([`may_cross`]): on a signalled crossing when the controller shows pedestrians
//!   green (it guarantees enough green left) and no vehicle is about to arrive; on an
//!   unsignalled one (or a signalled one no lane signal controls) when every approaching
//!   vehicle on the crossed lanes is more than [`GAP_ACCEPTANCE_S`] away. Until then it waits
//!   at the node. From the moment it commits until it steps off the crossing,
//!   [`PedestrianSim::crossing_occupied`] is true for that crossing (vehicles yield).
//!
//! **Determinism**: all randomness is [`CounterRng`] keyed by the seed; pedestrians are
//! kept in id order, forces are computed from the state at the start of the step (Jacobi),
//! neighbours are visited in a fixed order; no hash map is iterated.

use crate::crossing::{CrossingMap, LaneCut};
use crate::metrics::OrientedBox;
use crate::record::{AgentKind, SignalState, SimEvent, TrajectoryRecord};
use crate::{DT_S, SimError, VehicleBox};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use swm_core::rng::CounterRng;
use swm_twin::{P2, Twin, WalkKind};

/// Pedestrian agent ids start here (vehicles use the ids below), in spawn order.
pub const PEDESTRIAN_ID_BASE: u64 = 1 << 40;
/// Length and width of a pedestrian's record box (m).
pub const PEDESTRIAN_SIZE_M: f64 = 0.5;
/// Body radius used by the social forces (m).
pub const BODY_RADIUS_M: f64 = 0.25;
/// Mean desired walking speed (m/s).
pub const SPEED_MEAN_MPS: f64 = 1.34;
/// Standard deviation of the desired walking speed (m/s).
pub const SPEED_SD_MPS: f64 = 0.26;
/// Slowest desired walking speed (m/s).
pub const SPEED_MIN_MPS: f64 = 0.6;
/// Fastest desired walking speed (m/s).
pub const SPEED_MAX_MPS: f64 = 2.0;
/// A pedestrian moves at most this many times its desired speed.
pub const MAX_SPEED_FACTOR: f64 = 1.3;
/// Relaxation time of the driving force (s).
pub const RELAXATION_S: f64 = 0.5;
/// Strength of the pedestrian-pedestrian potential `V0` (m²/s²).
pub const SOCIAL_V0_M2PS2: f64 = 2.1;
/// Range of the pedestrian-pedestrian potential `σ` (m).
pub const SOCIAL_SIGMA_M: f64 = 0.3;
/// Step horizon of the elliptical potential (s).
pub const SOCIAL_HORIZON_S: f64 = 2.0;
/// Weight of interactions outside the field of view.
pub const OUT_OF_VIEW_WEIGHT: f64 = 0.5;
/// Cosine of half the field of view (200°).
pub const VIEW_COS: f64 = -0.173_648_177_666_930_4;
/// Sideways push to the right against oncoming pedestrians, relative to the repulsion.
pub const PASS_RIGHT_GAIN: f64 = 0.6;
/// Body contact stiffness (1/s²).
pub const CONTACT_STIFFNESS_PER_S2: f64 = 50.0;
/// Strength of the boundary repulsion (m/s²).
pub const WALL_A_MPS2: f64 = 3.0;
/// Range of the boundary repulsion (m).
pub const WALL_B_M: f64 = 0.2;
/// Neighbours farther than this are ignored; also the grid's cell size (m).
pub const INTERACTION_RANGE_M: f64 = 4.0;
/// Distance of the steering waypoint ahead along the route (m).
pub const LOOKAHEAD_M: f64 = 2.0;
/// Keep-right offset of the walking line, as a fraction of the edge's width...
pub const KEEP_RIGHT_FRACTION: f64 = 0.15;
/// ...and at most this (m).
pub const KEEP_RIGHT_MAX_M: f64 = 0.4;
/// On shared roads people walk this far inside the road's edge (m).
pub const SHARED_ROAD_INSET_M: f64 = 0.5;
/// How far a pedestrian may leave its walk edge to step round a standing vehicle (m).
pub const PED_DETOUR_M: f64 = 2.5;
/// Strength of a vehicle body's repulsion (m/s² at contact).
pub const VEHICLE_A_MPS2: f64 = 8.0;
/// Range of a vehicle body's repulsion (m, exponential decay).
pub const VEHICLE_B_M: f64 = 0.3;
/// Pedestrians feel vehicle bodies within this distance (m).
pub const VEHICLE_RANGE_M: f64 = 2.0;
/// Pedestrians keep out of the road a vehicle covers in this time (s): its box is
/// lengthened ahead by its speed times this.
pub const VEHICLE_AHEAD_S: f64 = 1.0;
/// Cell of the vehicles' grid the pedestrians query (m): the largest vehicle's half
/// diagonal (lengthened ahead by [`VEHICLE_AHEAD_S`] at 20 m/s) plus [`VEHICLE_RANGE_M`]
/// and a body fits in one cell.
const VEHICLE_CELL_M: f64 = 20.0;
/// Route cost factor of steps.
pub const STEPS_COST_FACTOR: f64 = 2.0;
/// Pedestrians decide about a crossing within this distance of its start (m).
pub const DECIDE_DISTANCE_M: f64 = 4.0;
/// Unsignalled crossings: the smallest accepted time to arrival of a vehicle (s).
pub const GAP_ACCEPTANCE_S: f64 = 4.0;
/// Signalled crossings on green: the smallest accepted time to arrival of a vehicle (s).
pub const GREEN_GAP_S: f64 = 1.5;
/// A vehicle slower than this stands (m/s): it does not approach a crossing.
pub const STANDING_MPS: f64 = 0.2;
/// A pedestrian kept this long at a kerb by a vehicle standing on the crossing walks round
/// it (s): the vehicle may be waiting for the pedestrian.
pub const STANDOFF_S: f64 = 20.0;
/// Half the width of the strip of a lane a crossing occupies (m).
pub const CROSSING_HALF_STRIP_M: f64 = 2.0;
/// Vehicles farther than this from a cut are not considered by gap acceptance (m).
pub const GAP_RANGE_M: f64 = 80.0;
/// Walk nodes this close to the edge of the walk graph's bounding box are edge nodes (m).
pub const EDGE_BAND_M: f64 = 40.0;
/// Probability that a new pedestrian enters at an edge node.
pub const SPAWN_AT_EDGE_P: f64 = 0.8;
/// Probability that a trip ends at an edge node (leaves the district).
pub const LEAVE_AT_EDGE_P: f64 = 0.35;
/// Other trips go to a node up to this far in a straight line (m).
pub const LOCAL_TRIP_MAX_M: f64 = 600.0;
/// Shortest straight-line trip (m), when the district allows it.
pub const MIN_TRIP_M: f64 = 60.0;
/// No spawn within this distance of another pedestrian (m).
pub const SPAWN_CLEARANCE_M: f64 = 1.0;

const RNG_STREAM: u64 = 0x5045_4453_0000_0001;
const EPS: f64 = 1e-9;

/// Whether a pedestrian waiting at a crossing may step onto it.
///
/// `state` is the crossing's pedestrian signal (`None` for an unsignalled crossing or one no
/// lane signal controls), `min_time_to_arrival_s` the smallest time to arrival of a vehicle
/// on the crossed lanes (`f64::INFINITY` when none approaches).
pub fn may_cross(state: Option<SignalState>, min_time_to_arrival_s: f64) -> bool {
    match state {
        Some(SignalState::Green) => min_time_to_arrival_s > GREEN_GAP_S,
        Some(SignalState::Red | SignalState::Amber) => false,
        None => min_time_to_arrival_s > GAP_ACCEPTANCE_S,
    }
}

/// The smallest time until a vehicle reaches the strip of a crossed lane (s): vehicles on
/// a crossed lane by their lane position, others (in junctions, on the lanes before) by
/// their heading; 0 for one on the strip, `f64::INFINITY` when none approaches. A standing
/// vehicle (slower than [`STANDING_MPS`]) before the strip does not approach: it waits for
/// the pedestrian. With `past_standoff` (the pedestrian has waited [`STANDOFF_S`]) neither
/// does one standing on the strip: it may be waiting for the pedestrian too, who walks round
/// its body rather than wait for it for good.
pub fn min_time_to_arrival_s(cuts: &[LaneCut], cut_points: &[P2], vehicles: &[VehicleBox], past_standoff: bool) -> f64 {
    let mut best = f64::INFINITY;
    for v in vehicles {
        let speed = v.speed_mps.max(0.1);
        let half_len = 0.5 * v.length_m;
        for (cut, p) in cuts.iter().zip(cut_points) {
            let tta = match v.lane {
                Some((lane, s)) if lane == cut.lane => {
                    if s - half_len > cut.s_m + CROSSING_HALF_STRIP_M {
                        continue; // past the crossing
                    }
                    let gap = cut.s_m - CROSSING_HALF_STRIP_M - (s + half_len);
                    if v.speed_mps < STANDING_MPS && (gap > 0.0 || past_standoff) {
                        continue;
                    }
                    if gap <= 0.0 { 0.0 } else { gap / speed }
                }
                _ => {
                    let d = sub(*p, v.center);
                    if norm(d) > GAP_RANGE_M {
                        continue;
                    }
                    let h = [v.heading_rad.cos(), v.heading_rad.sin()];
                    let along = dot(d, h);
                    let lateral = cross(h, d).abs();
                    if lateral > 0.5 * v.width_m + 1.0 || along < -half_len - CROSSING_HALF_STRIP_M {
                        continue; // not driving over this cut
                    }
                    let gap = along - half_len - CROSSING_HALF_STRIP_M;
                    if v.speed_mps < STANDING_MPS && (gap > 0.0 || past_standoff) {
                        continue;
                    }
                    if gap <= 0.0 { 0.0 } else { gap / speed }
                }
            };
            best = best.min(tta);
        }
    }
    best
}

// ---------------------------------------------------------------------------------------
// Geometry.

fn sub(a: P2, b: P2) -> P2 {
    [a[0] - b[0], a[1] - b[1]]
}
fn add(a: P2, b: P2) -> P2 {
    [a[0] + b[0], a[1] + b[1]]
}
fn scale(a: P2, k: f64) -> P2 {
    [a[0] * k, a[1] * k]
}
fn dot(a: P2, b: P2) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}
fn cross(a: P2, b: P2) -> f64 {
    a[0] * b[1] - a[1] * b[0]
}
fn norm(a: P2) -> f64 {
    a[0].hypot(a[1])
}
fn dist(a: P2, b: P2) -> f64 {
    norm(sub(a, b))
}
/// The unit vector to the right of `e`.
fn right_of(e: P2) -> P2 {
    [e[1], -e[0]]
}

/// A polyline with its cumulative lengths.
#[derive(Clone, Debug)]
struct Line {
    pts: Vec<P2>,
    cum_m: Vec<f64>,
}

/// The nearest point of a [`Line`] to a point.
#[derive(Clone, Copy, Debug)]
struct Proj {
    s_m: f64,
    dist_m: f64,
    point: P2,
    seg: usize,
}

impl Line {
    fn new(points: impl IntoIterator<Item = P2>) -> Self {
        let mut pts: Vec<P2> = Vec::new();
        for p in points {
            if pts.last().is_none_or(|q| dist(*q, p) > 1e-6) {
                pts.push(p);
            }
        }
        let mut cum_m = Vec::with_capacity(pts.len());
        let mut acc = 0.0;
        for (i, p) in pts.iter().enumerate() {
            if i > 0 {
                acc += dist(pts[i - 1], *p);
            }
            cum_m.push(acc);
        }
        Line { pts, cum_m }
    }
    fn len_m(&self) -> f64 {
        self.cum_m.last().copied().unwrap_or(0.0)
    }
    fn start(&self) -> P2 {
        self.pts[0]
    }
    fn end(&self) -> P2 {
        self.pts[self.pts.len() - 1]
    }
    fn point_at(&self, s_m: f64) -> P2 {
        let n = self.pts.len();
        if n == 1 || s_m <= 0.0 {
            return self.pts[0];
        }
        if s_m >= self.len_m() {
            return self.pts[n - 1];
        }
        let k = self.cum_m.partition_point(|c| *c <= s_m).clamp(1, n - 1);
        let (a, b) = (self.pts[k - 1], self.pts[k]);
        let l = self.cum_m[k] - self.cum_m[k - 1];
        let t = if l > EPS { (s_m - self.cum_m[k - 1]) / l } else { 0.0 };
        add(a, scale(sub(b, a), t))
    }
    /// Nearest point over segments `lo..hi` (clamped to the line).
    fn project_range(&self, p: P2, lo: usize, hi: usize) -> Proj {
        let n = self.pts.len();
        if n == 1 {
            return Proj { s_m: 0.0, dist_m: dist(p, self.pts[0]), point: self.pts[0], seg: 0 };
        }
        let hi = hi.min(n - 1);
        let lo = lo.min(hi.saturating_sub(1));
        let mut best = Proj { s_m: 0.0, dist_m: f64::INFINITY, point: self.pts[0], seg: 0 };
        for k in lo..hi {
            let (a, b) = (self.pts[k], self.pts[k + 1]);
            let ab = sub(b, a);
            let l2 = dot(ab, ab);
            let t = if l2 > EPS { (dot(sub(p, a), ab) / l2).clamp(0.0, 1.0) } else { 0.0 };
            let q = add(a, scale(ab, t));
            let d = dist(p, q);
            if d < best.dist_m {
                best = Proj { s_m: self.cum_m[k] + t * l2.sqrt(), dist_m: d, point: q, seg: k };
            }
        }
        best
    }
    fn project(&self, p: P2) -> Proj {
        self.project_range(p, 0, self.pts.len())
    }
    /// The line shifted sideways by `left_m` (negative: to the right), mitred at vertices.
    fn offset(&self, left_m: f64) -> Line {
        let n = self.pts.len();
        if n < 2 || left_m.abs() < EPS {
            return self.clone();
        }
        let normals: Vec<P2> = self
            .pts
            .windows(2)
            .map(|w| {
                let d = sub(w[1], w[0]);
                let l = norm(d).max(EPS);
                [-d[1] / l, d[0] / l]
            })
            .collect();
        let pts = (0..n).map(|i| {
            let nv = if i == 0 {
                normals[0]
            } else if i == n - 1 {
                normals[n - 2]
            } else {
                let (a, b) = (normals[i - 1], normals[i]);
                let m = add(a, b);
                let ml = norm(m);
                if ml < 1e-6 {
                    a
                } else {
                    // Mitre: 1 / cos(half the turn), at most 2.
                    let m = scale(m, 1.0 / ml);
                    scale(m, 1.0 / dot(m, a).max(0.5))
                }
            };
            add(self.pts[i], scale(nv, left_m))
        });
        let pts: Vec<P2> = pts.collect();
        // Inside sharp bends the offset folds back on itself: drop the vertices where it
        // runs against the original direction.
        let mut kept: Vec<usize> = vec![0];
        for i in 1..n {
            let back = self.pts[i];
            let prev = kept[kept.len() - 1];
            let along = dot(sub(pts[i], pts[prev]), sub(back, self.pts[prev]));
            if along > 0.0 || i == n - 1 {
                if i == n - 1 && along <= 0.0 && kept.len() > 1 {
                    kept.pop();
                }
                kept.push(i);
            }
        }
        // Keep the walking line inside the walkable band of the original line.
        let limit = left_m.abs();
        let out = kept.into_iter().map(|i| {
            let q = pts[i];
            let pr = self.project(q);
            if pr.dist_m > limit + 1e-9 { add(pr.point, scale(sub(q, pr.point), limit / pr.dist_m)) } else { q }
        });
        Line::new(out.collect::<Vec<_>>())
    }
}

// ---------------------------------------------------------------------------------------
// The walk graph as pedestrians use it.

#[derive(Clone, Debug)]
struct EdgeGeom {
    line: Line,
    /// Elevation at each point of `line`.
    z_m: Vec<f64>,
    half_width_m: f64,
    kind: WalkKind,
    signalled: bool,
    cost: f64,
}

impl EdgeGeom {
    fn z_at(&self, s_m: f64) -> f64 {
        let c = &self.line.cum_m;
        let n = c.len();
        if n == 1 || s_m <= 0.0 {
            return self.z_m[0];
        }
        if s_m >= c[n - 1] {
            return self.z_m[n - 1];
        }
        let k = c.partition_point(|x| *x <= s_m).clamp(1, n - 1);
        let l = c[k] - c[k - 1];
        let t = if l > EPS { (s_m - c[k - 1]) / l } else { 0.0 };
        self.z_m[k - 1] + (self.z_m[k] - self.z_m[k - 1]) * t
    }
}

/// What pedestrians need of a crossing that cuts lanes.
#[derive(Clone, Debug)]
struct CrossInfo {
    lanes: Vec<u32>,
    cuts: Vec<LaneCut>,
    cut_points: Vec<P2>,
}

/// One edge of a route, in walking direction.
#[derive(Clone, Debug)]
struct Leg {
    edge: u32,
    kind: WalkKind,
    /// The walking line (keep-right offset applied).
    guide: Line,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CrossState {
    /// No crossing ahead, or not yet deciding.
    Free,
    /// Waiting at the kerb for the next leg's crossing.
    Waiting,
    /// Committed to (or on) the crossing.
    Committed,
}

#[derive(Clone, Debug)]
struct Pedestrian {
    id: u64,
    pos: P2,
    vel: P2,
    z_m: f64,
    heading_rad: f64,
    speed_mps: f64,
    accel_mps2: f64,
    desired_speed_mps: f64,
    route: Vec<Leg>,
    leg: usize,
    s_m: f64,
    seg: usize,
    cross: CrossState,
    signal: Option<SignalState>,
    spawn_time_s: f64,
    distance_m: f64,
    /// How long it has waited at the kerb for the next crossing (s).
    waited_s: f64,
}

impl Pedestrian {
    fn next_is_blocked_crossing(&self, crossings: &[Option<CrossInfo>]) -> bool {
        self.cross != CrossState::Committed
            && self.route.get(self.leg + 1).is_some_and(|l| crossings[l.edge as usize].is_some())
            && self.route[self.leg].kind != WalkKind::Crossing
    }
}

/// Sorted cell list of pedestrian positions.
struct Grid {
    cells: Vec<(u64, u32)>,
}

fn cell_of(p: P2) -> (i64, i64) {
    ((p[0] / INTERACTION_RANGE_M).floor() as i64, (p[1] / INTERACTION_RANGE_M).floor() as i64)
}
fn cell_key(c: (i64, i64)) -> u64 {
    ((c.0 as u32 as u64) << 32) | (c.1 as u32 as u64)
}

impl Grid {
    fn new(positions: impl Iterator<Item = P2>) -> Self {
        let mut cells: Vec<(u64, u32)> = positions.enumerate().map(|(i, p)| (cell_key(cell_of(p)), i as u32)).collect();
        cells.sort_unstable();
        Grid { cells }
    }
    /// Calls `f` with every index in the 3 × 3 cells around `p`, in a fixed order.
    fn for_near(&self, p: P2, mut f: impl FnMut(usize)) {
        let (cx, cy) = cell_of(p);
        for dx in -1..=1 {
            for dy in -1..=1 {
                let key = cell_key((cx + dx, cy + dy));
                let mut k = self.cells.partition_point(|c| c.0 < key);
                while k < self.cells.len() && self.cells[k].0 == key {
                    f(self.cells[k].1 as usize);
                    k += 1;
                }
            }
        }
    }
}

/// Pedestrians walking the walk graph of a twin.
#[derive(Clone)]
pub struct PedestrianSim {
    edges: Vec<EdgeGeom>,
    node_pos: Vec<P2>,
    /// Per walk edge: the nodes at the start and at the end of its polyline.
    edge_ends: Vec<(u32, u32)>,
    /// Node -> (edge, other node), by edge index.
    adj: Vec<Vec<(u32, u32)>>,
    /// Per walk edge: the lanes a crossing cuts (`None` for other edges and crossings that
    /// cut no lane).
    crossings: Vec<Option<CrossInfo>>,
    /// Nodes of the largest connected component, ascending.
    nodes: Vec<u32>,
    /// Those of them near the edge of the district, ascending.
    edge_nodes: Vec<u32>,
    peds: Vec<Pedestrian>,
    /// Committed pedestrians per walk edge.
    occupied: Vec<u32>,
    target_count: u32,
    next_id: u64,
    rng: CounterRng,
    pending: Vec<SimEvent>,
}

impl PedestrianSim {
    /// Replaces the random stream (forks of a simulation, [`crate::Simulation::fork`]).
    pub(crate) fn reseed(&mut self, seed: u64) {
        self.rng = CounterRng::new(seed, RNG_STREAM);
    }
}

impl PedestrianSim {
    /// Pedestrians on `twin`'s walk graph, `target_count` of them placed along its edges now
    /// and kept at about that number; all randomness from `seed`.
    pub fn new(twin: &Twin, crossings: &CrossingMap, seed: u64, target_count: u32) -> Result<Self, SimError> {
        if twin.walk_edges.is_empty() || twin.walk_nodes.len() < 2 {
            return Err(SimError::NoWalkGraph);
        }
        let node_pos: Vec<P2> = twin.walk_nodes.iter().map(|n| [n.position[0], n.position[1]]).collect();
        let mut adj: Vec<Vec<(u32, u32)>> = vec![Vec::new(); node_pos.len()];
        let mut edges = Vec::with_capacity(twin.walk_edges.len());
        let mut infos = Vec::with_capacity(twin.walk_edges.len());
        let mut edge_ends = Vec::with_capacity(twin.walk_edges.len());
        for (ei, e) in twin.walk_edges.iter().enumerate() {
            let mut pts: Vec<P2> = Vec::new();
            let mut z_m: Vec<f64> = Vec::new();
            for p in &e.polyline {
                if pts.last().is_none_or(|q: &P2| dist(*q, [p[0], p[1]]) > 1e-6) {
                    pts.push([p[0], p[1]]);
                    z_m.push(p[2]);
                }
            }
            let valid_nodes = (e.from as usize) < node_pos.len() && (e.to as usize) < node_pos.len();
            if pts.is_empty() && valid_nodes {
                pts = vec![node_pos[e.from as usize], node_pos[e.to as usize]];
                let z = |n: u32| twin.walk_nodes[n as usize].position[2];
                z_m = vec![z(e.from), z(e.to)];
            }
            if pts.is_empty() {
                pts.push([0.0, 0.0]);
                z_m.push(0.0);
            }
            let line = Line::new(pts);
            let length = if e.length_m.is_finite() && e.length_m > 0.0 { e.length_m } else { line.len_m() };
            let cost = length.max(line.len_m()) * if e.kind == WalkKind::Steps { STEPS_COST_FACTOR } else { 1.0 };
            let half_width_m = 0.5 * if e.width_m.is_finite() && e.width_m > 0.0 { e.width_m } else { 2.0 };
            let info = if e.kind == WalkKind::Crossing {
                crossings.lanes_of_crossing.get(&(ei as u32)).filter(|c| !c.is_empty()).map(|cuts| CrossInfo {
                    lanes: cuts.iter().map(|c| c.lane).collect(),
                    cuts: cuts.clone(),
                    cut_points: cuts.iter().map(|c| line.point_at(c.t_m)).collect(),
                })
            } else {
                None
            };
            // Polylines run from `from` to `to`; trust the geometry if it says otherwise.
            let reversed = valid_nodes
                && dist(line.start(), node_pos[e.to as usize]) + dist(line.end(), node_pos[e.from as usize])
                    < dist(line.start(), node_pos[e.from as usize]) + dist(line.end(), node_pos[e.to as usize]);
            edge_ends.push(if reversed { (e.to, e.from) } else { (e.from, e.to) });
            if valid_nodes && e.from != e.to {
                adj[e.from as usize].push((ei as u32, e.to));
                adj[e.to as usize].push((ei as u32, e.from));
            }
            edges.push(EdgeGeom { line, z_m, half_width_m, kind: e.kind, signalled: e.signalled, cost });
            infos.push(info);
        }

        // The largest connected component (lowest first node on ties).
        let mut comp = vec![u32::MAX; node_pos.len()];
        let mut best: Vec<u32> = Vec::new();
        for start in 0..node_pos.len() {
            if comp[start] != u32::MAX || adj[start].is_empty() {
                continue;
            }
            comp[start] = start as u32;
            let mut members = vec![start as u32];
            let mut k = 0;
            while k < members.len() {
                let n = members[k] as usize;
                k += 1;
                for &(_, o) in &adj[n] {
                    if comp[o as usize] == u32::MAX {
                        comp[o as usize] = start as u32;
                        members.push(o);
                    }
                }
            }
            if members.len() > best.len() {
                best = members;
            }
        }
        best.sort_unstable();
        if best.len() < 2 {
            return Err(SimError::NoWalkGraph);
        }
        let mut bbox = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for &n in &best {
            let p = node_pos[n as usize];
            bbox = [bbox[0].min(p[0]), bbox[1].min(p[1]), bbox[2].max(p[0]), bbox[3].max(p[1])];
        }
        let edge_nodes: Vec<u32> = best
            .iter()
            .copied()
            .filter(|&n| {
                let p = node_pos[n as usize];
                let d = (p[0] - bbox[0]).min(bbox[2] - p[0]).min(p[1] - bbox[1]).min(bbox[3] - p[1]);
                // Not the kerb-side end of a crossing: nobody appears waiting to cross.
                d <= EDGE_BAND_M && adj[n as usize].iter().all(|(e, _)| infos[*e as usize].is_none())
            })
            .collect();

        let occupied = vec![0; edges.len()];
        let mut sim = PedestrianSim {
            edges,
            node_pos,
            edge_ends,
            adj,
            crossings: infos,
            nodes: best,
            edge_nodes,
            peds: Vec::new(),
            occupied,
            target_count,
            next_id: PEDESTRIAN_ID_BASE,
            rng: CounterRng::new(seed, RNG_STREAM),
            pending: Vec::new(),
        };
        sim.place_initial(target_count);
        sim.update_occupancy();
        tracing::debug!(
            pedestrians = sim.peds.len(),
            nodes = sim.nodes.len(),
            edge_nodes = sim.edge_nodes.len(),
            "pedestrians placed"
        );
        Ok(sim)
    }

    /// Advances every pedestrian by [`DT_S`]; `time_s` is the time at the end of the step.
    pub fn step(
        &mut self,
        twin: &Twin,
        step: u32,
        time_s: f64,
        signals: &crate::signal::SignalController,
        vehicles: &[VehicleBox],
        events: &mut Vec<SimEvent>,
    ) {
        self.step_with(
            twin,
            step,
            time_s,
            &|lanes: &[u32], t: f64| signals.pedestrian_state(lanes, t),
            vehicles,
            events,
        );
    }

    /// True when a pedestrian is on this crossing walk edge or about to step onto it
    /// (vehicles must yield).
    pub fn crossing_occupied(&self, walk_edge: u32) -> bool {
        self.occupied.get(walk_edge as usize).is_some_and(|n| *n > 0)
    }

    /// Where every pedestrian stands and how fast it walks: `[x, y, z, speed]` (m ENU, m/s),
    /// in id order.
    pub fn positions(&self) -> Vec<[f64; 4]> {
        self.peds.iter().map(|p| [p.pos[0], p.pos[1], p.z_m, p.speed_mps]).collect()
    }

    /// One record per pedestrian, in id order.
    pub fn records(&self, step: u32, time_s: f64, out: &mut Vec<TrajectoryRecord>) {
        out.extend(self.peds.iter().map(|p| TrajectoryRecord {
            agent_id: p.id,
            kind: AgentKind::Pedestrian,
            length_m: PEDESTRIAN_SIZE_M as f32,
            width_m: PEDESTRIAN_SIZE_M as f32,
            step,
            time_s,
            x_m: p.pos[0],
            y_m: p.pos[1],
            z_m: p.z_m,
            heading_rad: p.heading_rad,
            speed_mps: p.speed_mps,
            accel_mps2: p.accel_mps2,
            lane: None,
            signal: p.signal,
        }));
    }

    /// Pedestrians now in the district.
    pub fn count(&self) -> usize {
        self.peds.len()
    }

    /// [`Self::step`] with the pedestrian signal given as a function of the crossed lanes and
    /// the time.
    pub(crate) fn step_with(
        &mut self,
        twin: &Twin,
        step: u32,
        time_s: f64,
        signal_of: &dyn Fn(&[u32], f64) -> Option<SignalState>,
        vehicles: &[VehicleBox],
        events: &mut Vec<SimEvent>,
    ) {
        debug_assert_eq!(twin.walk_edges.len(), self.edges.len(), "the twin the pedestrians were made for");
        for e in self.pending.drain(..) {
            events.push(match e {
                SimEvent::Spawned { agent_id, kind, .. } => SimEvent::Spawned { agent_id, step, kind },
                other => other,
            });
        }

        // 1. Crossing decisions and signals (independent of other pedestrians).
        let mut signal_cache: BTreeMap<u32, Option<SignalState>> = BTreeMap::new();
        let mut state_of = |edge: u32, info: &CrossInfo, signalled: bool| -> Option<SignalState> {
            if !signalled {
                return None;
            }
            *signal_cache.entry(edge).or_insert_with(|| signal_of(&info.lanes, time_s))
        };
        for p in &mut self.peds {
            p.signal = None;
            let waited_s = std::mem::take(&mut p.waited_s);
            let leg = &p.route[p.leg];
            if leg.kind == WalkKind::Crossing {
                if let Some(info) = &self.crossings[leg.edge as usize] {
                    p.signal = state_of(leg.edge, info, self.edges[leg.edge as usize].signalled);
                }
                continue;
            }
            let Some(next) = p.route.get(p.leg + 1) else { continue };
            let Some(info) = &self.crossings[next.edge as usize] else { continue };
            let remaining_m = leg.guide.len_m() - p.s_m;
            if remaining_m > DECIDE_DISTANCE_M && dist(p.pos, leg.guide.end()) > DECIDE_DISTANCE_M {
                continue;
            }
            let state = state_of(next.edge, info, self.edges[next.edge as usize].signalled);
            p.signal = state;
            if p.cross != CrossState::Committed {
                let tta = min_time_to_arrival_s(&info.cuts, &info.cut_points, vehicles, waited_s > STANDOFF_S);
                p.cross = if may_cross(state, tta) { CrossState::Committed } else { CrossState::Waiting };
                if p.cross == CrossState::Waiting {
                    p.waited_s = waited_s + DT_S;
                }
            }
        }

        // 2. Social forces (from the state at the start of the step).
        let grid = Grid::new(self.peds.iter().map(|p| p.pos));
        let vgrid = VehicleGrid::new(vehicles);
        let mut new_vel: Vec<P2> = Vec::with_capacity(self.peds.len());
        for (i, p) in self.peds.iter().enumerate() {
            let (target, speed_factor) = self.waypoint(p);
            let to = sub(target, p.pos);
            let d = norm(to);
            let e = if d > 1e-6 { scale(to, 1.0 / d) } else { [0.0, 0.0] };
            let desired = scale(e, p.desired_speed_mps * speed_factor);
            let mut f = scale(sub(desired, p.vel), 1.0 / RELAXATION_S);
            // Direction of motion for the field of view: desired, else velocity.
            let facing = if d > 1e-6 {
                e
            } else if norm(p.vel) > 1e-6 {
                scale(p.vel, 1.0 / norm(p.vel))
            } else {
                [p.heading_rad.cos(), p.heading_rad.sin()]
            };
            grid.for_near(p.pos, |j| {
                if j != i {
                    f = add(f, social_force(p, &self.peds[j], facing));
                }
            });
            f = add(f, self.wall_force(p));
            f = add(f, vehicle_force(&vgrid, p.pos, facing));
            let mut v = add(p.vel, scale(f, DT_S));
            let vmax = MAX_SPEED_FACTOR * p.desired_speed_mps;
            let speed = norm(v);
            if speed > vmax {
                v = scale(v, vmax / speed);
            }
            new_vel.push(v);
        }

        // 3. Move, keep on the walk graph, follow the route.
        let mut arrived: Vec<usize> = Vec::new();
        for (i, v) in new_vel.into_iter().enumerate() {
            let old = self.peds[i].pos;
            let wanted = add(old, scale(v, DT_S));
            // A vehicle body standing in the way: step round it, off the edge if need be.
            let facing = [self.peds[i].heading_rad.cos(), self.peds[i].heading_rad.sin()];
            let mut blocked = false;
            vgrid.for_near(old, |b| {
                let (d, n) = box_distance(b, old);
                if d < 1.0 && b.speed_mps < 0.5 && dot(n, facing) < -0.3 {
                    blocked = true;
                }
            });
            let mut pos = self.keep_on_graph(&self.peds[i], wanted, if blocked { PED_DETOUR_M } else { 0.0 });
            // Never a step into a vehicle's body (deeper than the pedestrian stands now).
            let mut into_vehicle = false;
            vgrid.for_near(pos, |b| {
                let depth = vehicle_depth(b, pos);
                if depth > 1e-3 && depth > vehicle_depth(b, old) + 1e-4 {
                    into_vehicle = true;
                }
            });
            if into_vehicle {
                pos = old;
            }
            let p = &mut self.peds[i];
            let moved = sub(pos, old);
            p.pos = pos;
            p.vel = scale(moved, 1.0 / DT_S);
            let speed = norm(p.vel);
            p.accel_mps2 = (speed - p.speed_mps) / DT_S;
            p.speed_mps = speed;
            if speed > 0.05 {
                p.heading_rad = p.vel[1].atan2(p.vel[0]);
            }
            p.distance_m += norm(moved);
            if self.advance(i) {
                arrived.push(i);
            }
        }

        // 4. Arrivals and departures, then new pedestrians.
        if !arrived.is_empty() {
            let mut k = 0;
            let mut idx = 0;
            self.peds.retain(|p| {
                let gone = arrived.get(k) == Some(&idx);
                idx += 1;
                if gone {
                    k += 1;
                    events.push(SimEvent::Arrived {
                        agent_id: p.id,
                        step,
                        kind: AgentKind::Pedestrian,
                        travel_time_s: time_s - p.spawn_time_s,
                        distance_m: p.distance_m,
                    });
                }
                !gone
            });
        }
        let missing = (self.target_count as usize).saturating_sub(self.peds.len());
        for _ in 0..missing {
            if let Some(id) = self.spawn_at_node(time_s) {
                events.push(SimEvent::Spawned { agent_id: id, step, kind: AgentKind::Pedestrian });
            }
        }
        self.update_occupancy();
        for p in &self.peds {
            if self.off_graph_m(p, p.pos) > 0.5 {
                events.push(SimEvent::PedestrianOffWalkGraph { agent_id: p.id, step });
            }
        }
    }

    /// The steering waypoint and the factor on the desired speed.
    fn waypoint(&self, p: &Pedestrian) -> (P2, f64) {
        let leg = &p.route[p.leg];
        let len = leg.guide.len_m();
        let ahead = p.s_m + LOOKAHEAD_M;
        if p.next_is_blocked_crossing(&self.crossings) {
            let stop = leg.guide.end();
            let d = dist(p.pos, stop);
            let factor = if len - p.s_m < LOOKAHEAD_M + 1.0 { ((d - 0.3) / 2.0).clamp(0.0, 1.0) } else { 1.0 };
            return (leg.guide.point_at(ahead.min(len)), factor);
        }
        if ahead <= len {
            return (leg.guide.point_at(ahead), 1.0);
        }
        match p.route.get(p.leg + 1) {
            Some(next) => (next.guide.point_at((ahead - len).min(next.guide.len_m())), 1.0),
            None => (leg.guide.end(), 1.0),
        }
    }

    /// The walkable band of `p` now: its leg, the previous one unless a crossing, the next
    /// unless a crossing it has not committed to.
    fn region(&self, p: &Pedestrian) -> [Option<u32>; 3] {
        let prev = p.leg.checked_sub(1).map(|k| &p.route[k]).filter(|l| l.kind != WalkKind::Crossing);
        let blocked = p.next_is_blocked_crossing(&self.crossings);
        let next = p.route.get(p.leg + 1).filter(|_| !blocked);
        [prev.map(|l| l.edge), Some(p.route[p.leg].edge), next.map(|l| l.edge)]
    }

    /// How far `pos` lies outside the band of `p`'s region (m; negative inside), and the
    /// edge it is closest to inside.
    fn region_excess(&self, p: &Pedestrian, pos: P2) -> (f64, u32, Proj) {
        let mut best: Option<(f64, u32, Proj)> = None;
        for e in self.region(p).into_iter().flatten() {
            let g = &self.edges[e as usize];
            let pr = g.line.project(pos);
            let excess = pr.dist_m - g.half_width_m;
            if best.as_ref().is_none_or(|b| excess < b.0) {
                best = Some((excess, e, pr));
            }
        }
        best.unwrap_or((0.0, p.route[p.leg].edge, Proj { s_m: 0.0, dist_m: 0.0, point: pos, seg: 0 }))
    }

    fn off_graph_m(&self, p: &Pedestrian, pos: P2) -> f64 {
        self.region_excess(p, pos).0
    }

    /// Repulsion from the boundaries of the walkable band.
    fn wall_force(&self, p: &Pedestrian) -> P2 {
        let (_, e, pr) = self.region_excess(p, p.pos);
        let half = self.edges[e as usize].half_width_m;
        if pr.dist_m < 1e-6 {
            return [0.0, 0.0];
        }
        let inward = scale(sub(pr.point, p.pos), 1.0 / pr.dist_m);
        let near = WALL_A_MPS2 * ((BODY_RADIUS_M - (half - pr.dist_m)) / WALL_B_M).exp();
        let far = WALL_A_MPS2 * ((BODY_RADIUS_M - (half + pr.dist_m)) / WALL_B_M).exp();
        scale(inward, near - far)
    }

    /// `wanted` moved back inside the walkable band if it left it.
    fn keep_on_graph(&self, p: &Pedestrian, wanted: P2, detour_m: f64) -> P2 {
        let (excess, e, pr) = self.region_excess(p, wanted);
        if excess <= detour_m || pr.dist_m < EPS {
            return wanted;
        }
        let half = self.edges[e as usize].half_width_m + detour_m;
        add(pr.point, scale(sub(wanted, pr.point), half / pr.dist_m))
    }

    /// Updates the route progress of pedestrian `i`; true when it arrived.
    fn advance(&mut self, i: usize) -> bool {
        let crossings = &self.crossings;
        let edges = &self.edges;
        let p = &mut self.peds[i];
        loop {
            let leg = &p.route[p.leg];
            let pr = leg.guide.project_range(p.pos, p.seg.saturating_sub(1), p.seg + 3);
            p.s_m = pr.s_m;
            p.seg = pr.seg;
            let g = &edges[leg.edge as usize];
            let pe = g.line.project(p.pos);
            p.z_m = g.z_at(pe.s_m);
            let len = leg.guide.len_m();
            let last = p.leg + 1 == p.route.len();
            if last {
                return len - p.s_m <= 0.5 || dist(p.pos, leg.guide.end()) <= 0.8;
            }
            if p.next_is_blocked_crossing(crossings) {
                return false;
            }
            let switch_m = (0.5 * len).min(1.0);
            if len - p.s_m > switch_m && dist(p.pos, leg.guide.end()) > switch_m {
                return false;
            }
            p.leg += 1;
            p.seg = 0;
            // Stepping onto a crossing (committed, or one that cuts no lane), or off one.
            p.cross = if p.route[p.leg].kind == WalkKind::Crossing { CrossState::Committed } else { CrossState::Free };
        }
    }

    fn update_occupancy(&mut self) {
        self.occupied.iter_mut().for_each(|n| *n = 0);
        for p in &self.peds {
            let leg = &p.route[p.leg];
            if leg.kind == WalkKind::Crossing {
                self.occupied[leg.edge as usize] += 1;
            } else if p.cross == CrossState::Committed
                && let Some(next) = p.route.get(p.leg + 1)
                && next.kind == WalkKind::Crossing
            {
                self.occupied[next.edge as usize] += 1;
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Trips.

    /// A* by cost from `from` to `to`: (edge, walked from its `from` node) in order.
    fn plan(&self, from: u32, to: u32) -> Option<Vec<(u32, bool)>> {
        let n = self.node_pos.len();
        let goal = self.node_pos[to as usize];
        let h = |k: u32| dist(self.node_pos[k as usize], goal);
        let mut g = vec![f64::INFINITY; n];
        let mut prev: Vec<Option<(u32, u32)>> = vec![None; n];
        let mut closed = vec![false; n];
        let mut heap: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
        g[from as usize] = 0.0;
        heap.push(Reverse((h(from).to_bits(), from)));
        while let Some(Reverse((_, k))) = heap.pop() {
            if closed[k as usize] {
                continue;
            }
            closed[k as usize] = true;
            if k == to {
                break;
            }
            for &(e, o) in &self.adj[k as usize] {
                let ng = g[k as usize] + self.edges[e as usize].cost;
                if ng < g[o as usize] {
                    g[o as usize] = ng;
                    prev[o as usize] = Some((e, k));
                    heap.push(Reverse(((ng + h(o)).to_bits(), o)));
                }
            }
        }
        if !closed[to as usize] || from == to {
            return None;
        }
        let mut out = Vec::new();
        let mut k = to;
        while let Some((e, pk)) = prev[k as usize] {
            out.push((e, self.edge_ends[e as usize].0 == pk));
            k = pk;
        }
        out.reverse();
        Some(out)
    }

    fn leg(&self, edge: u32, forward: bool) -> Leg {
        let g = &self.edges[edge as usize];
        let mut pts = g.line.pts.clone();
        if !forward {
            pts.reverse();
        }
        let width = 2.0 * g.half_width_m;
        let right_m = match g.kind {
            WalkKind::SharedRoad => (0.5 * width - SHARED_ROAD_INSET_M).max(0.0),
            _ => (KEEP_RIGHT_FRACTION * width).min(KEEP_RIGHT_MAX_M),
        };
        Leg { edge, kind: g.kind, guide: Line::new(pts).offset(-right_m) }
    }

    fn draw_speed(&mut self) -> f64 {
        // Box-Muller.
        let u1 = self.rng.next_f64().max(1e-12);
        let u2 = self.rng.next_f64();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (SPEED_MEAN_MPS + SPEED_SD_MPS * z).clamp(SPEED_MIN_MPS, SPEED_MAX_MPS)
    }

    fn pick_node(&mut self, at_edge: bool) -> u32 {
        if at_edge && !self.edge_nodes.is_empty() {
            *self.rng.pick(&self.edge_nodes)
        } else {
            *self.rng.pick(&self.nodes)
        }
    }

    /// A destination for a trip from `origin`: an edge node (leaving the district), or a
    /// node about a drawn trip length away (U([`MIN_TRIP_M`], [`LOCAL_TRIP_MAX_M`]) straight
    /// line, the best of a few candidates).
    fn pick_destination(&mut self, origin: P2) -> u32 {
        if self.rng.chance(LEAVE_AT_EDGE_P) {
            let mut d = self.pick_node(true);
            for _ in 0..8 {
                if dist(self.node_pos[d as usize], origin) >= MIN_TRIP_M {
                    break;
                }
                d = self.pick_node(true);
            }
            return d;
        }
        let want_m = self.rng.range_f64(MIN_TRIP_M, LOCAL_TRIP_MAX_M);
        let mut best = (f64::INFINITY, self.nodes[0]);
        for _ in 0..24 {
            let d = self.pick_node(false);
            let off = (dist(self.node_pos[d as usize], origin) - want_m).abs();
            if off < best.0 {
                best = (off, d);
            }
        }
        best.1
    }

    fn clear_of_others(&self, p: P2) -> bool {
        self.peds.iter().all(|q| dist(q.pos, p) >= SPAWN_CLEARANCE_M)
    }

    fn new_pedestrian(&mut self, route: Vec<Leg>, s_m: f64, time_s: f64, speed: f64) -> u64 {
        let pos = route[0].guide.point_at(s_m);
        let dir = sub(route[0].guide.point_at(s_m + 0.5), pos);
        let heading_rad = if norm(dir) > 1e-9 { dir[1].atan2(dir[0]) } else { 0.0 };
        let id = self.next_id;
        self.next_id += 1;
        let g = &self.edges[route[0].edge as usize];
        let z_m = g.z_at(g.line.project(pos).s_m);
        let mut p = Pedestrian {
            id,
            pos,
            vel: [0.0, 0.0],
            z_m,
            heading_rad,
            speed_mps: 0.0,
            accel_mps2: 0.0,
            desired_speed_mps: speed,
            route,
            leg: 0,
            s_m,
            seg: 0,
            cross: CrossState::Free,
            signal: None,
            spawn_time_s: time_s,
            waited_s: 0.0,
            distance_m: 0.0,
        };
        p.seg = p.route[0].guide.project(pos).seg;
        self.peds.push(p);
        id
    }

    /// A trip between two nodes, starting now at `from`; its id.
    fn spawn_trip(&mut self, from: u32, to: u32, time_s: f64, speed: f64) -> Option<u64> {
        let plan = self.plan(from, to)?;
        if self.crossings[plan[0].0 as usize].is_some() {
            return None; // nobody appears on the kerb of a crossing
        }
        let route: Vec<Leg> = plan.iter().map(|&(e, f)| self.leg(e, f)).collect();
        if !self.clear_of_others(route[0].guide.start()) {
            return None;
        }
        Some(self.new_pedestrian(route, 0.0, time_s, speed))
    }

    /// A new pedestrian at a node (mostly at the district's edge); its id.
    fn spawn_at_node(&mut self, time_s: f64) -> Option<u64> {
        for _ in 0..4 {
            let at_edge = self.rng.chance(SPAWN_AT_EDGE_P);
            let from = self.pick_node(at_edge);
            let to = self.pick_destination(self.node_pos[from as usize]);
            let speed = self.draw_speed();
            if let Some(id) = self.spawn_trip(from, to, time_s, speed) {
                return Some(id);
            }
        }
        None
    }

    /// `count` pedestrians spread along the walk graph (by length), mid-trip.
    fn place_initial(&mut self, count: u32) {
        let mut cands: Vec<(u32, f64)> = Vec::new();
        let mut total = 0.0;
        for &n in &self.nodes {
            for &(e, o) in &self.adj[n as usize] {
                let g = &self.edges[e as usize];
                // Each edge once (from its lower node), not crossings.
                if n < o && g.kind != WalkKind::Crossing && g.line.len_m() >= 2.0 {
                    total += g.line.len_m();
                    cands.push((e, total));
                }
            }
        }
        if cands.is_empty() {
            return;
        }
        let mut taken: BTreeMap<(i64, i64), Vec<P2>> = BTreeMap::new();
        let mut attempts = 0u32;
        while self.peds.len() < count as usize && attempts < 20 * count + 100 {
            attempts += 1;
            let x = self.rng.range_f64(0.0, total);
            let k = cands.partition_point(|c| c.1 <= x).min(cands.len() - 1);
            let e = cands[k].0;
            let forward = self.rng.chance(0.5);
            let u = self.rng.range_f64(0.05, 0.95);
            let speed = self.draw_speed();
            let first = self.leg(e, forward);
            let s_m = u * first.guide.len_m();
            let pos = first.guide.point_at(s_m);
            let c = cell_of(pos);
            let crowded = (-1..=1).any(|dx| {
                (-1..=1).any(|dy| {
                    taken
                        .get(&(c.0 + dx, c.1 + dy))
                        .is_some_and(|v| v.iter().any(|q| dist(*q, pos) < SPAWN_CLEARANCE_M))
                })
            });
            if crowded {
                continue;
            }
            let (start_node, end_node) = self.edge_ends[e as usize];
            let end_node = if forward { end_node } else { start_node };
            let to = self.pick_destination(self.node_pos[end_node as usize]);
            let mut route = vec![first];
            if to != end_node {
                let Some(plan) = self.plan(end_node, to) else { continue };
                route.extend(plan.iter().map(|&(pe, f)| self.leg(pe, f)));
            }
            taken.entry(c).or_default().push(pos);
            let id = self.new_pedestrian(route, s_m, 0.0, speed);
            self.pending.push(SimEvent::Spawned { agent_id: id, step: 0, kind: AgentKind::Pedestrian });
        }
    }
}

/// The Helbing-Molnár repulsion of `b` on `a` (m/s²), with anisotropy, passing on the
/// right and body contact.
/// Vehicle boxes, each lengthened ahead over the road it covers in [`VEHICLE_AHEAD_S`], by
/// grid cell, for the pedestrians' queries.
struct VehicleGrid {
    boxes: Vec<VehicleBox>,
    cells: BTreeMap<(i64, i64), Vec<usize>>,
}

impl VehicleGrid {
    fn new(boxes: &[VehicleBox]) -> Self {
        let mut cells: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
        let mut ahead = Vec::with_capacity(boxes.len());
        for (i, b) in boxes.iter().enumerate() {
            // The box and the road it covers in the next VEHICLE_AHEAD_S.
            let reach_m = b.speed_mps.clamp(0.0, 20.0) * VEHICLE_AHEAD_S;
            let (c, s) = (b.heading_rad.cos(), b.heading_rad.sin());
            let center = [b.center[0] + c * reach_m / 2.0, b.center[1] + s * reach_m / 2.0];
            ahead.push(VehicleBox { center, length_m: b.length_m + reach_m, lane: None, ..*b });
            cells.entry(Self::cell(center)).or_default().push(i);
        }
        VehicleGrid { boxes: ahead, cells }
    }

    fn cell(p: P2) -> (i64, i64) {
        ((p[0] / VEHICLE_CELL_M).floor() as i64, (p[1] / VEHICLE_CELL_M).floor() as i64)
    }

    /// Every box whose centre is in the 3 x 3 cells around `p`.
    fn for_near(&self, p: P2, mut f: impl FnMut(&VehicleBox)) {
        if self.boxes.is_empty() {
            return;
        }
        let (cx, cy) = Self::cell(p);
        for dx in -1..=1 {
            for dy in -1..=1 {
                if let Some(v) = self.cells.get(&(cx + dx, cy + dy)) {
                    for &i in v {
                        f(&self.boxes[i]);
                    }
                }
            }
        }
    }
}

/// Distance from `p` to the box of `b` (0 inside) and the unit direction from the box's
/// nearest point to `p` (outwards through the nearest side when inside).
fn box_distance(b: &VehicleBox, p: P2) -> (f64, P2) {
    let (c, s) = (b.heading_rad.cos(), b.heading_rad.sin());
    let d = sub(p, b.center);
    let (lx, ly) = (d[0] * c + d[1] * s, -d[0] * s + d[1] * c);
    let (hx, hy) = (b.length_m / 2.0, b.width_m / 2.0);
    let (qx, qy) = (lx.clamp(-hx, hx), ly.clamp(-hy, hy));
    let (ex, ey) = (lx - qx, ly - qy);
    let dist_m = (ex * ex + ey * ey).sqrt();
    let local = if dist_m > 1e-9 {
        [ex / dist_m, ey / dist_m]
    } else if hx - lx.abs() < hy - ly.abs() {
        [lx.signum(), 0.0]
    } else {
        [0.0, if ly >= 0.0 { 1.0 } else { -1.0 }]
    };
    (dist_m, [local[0] * c - local[1] * s, local[0] * s + local[1] * c])
}

/// How deep a pedestrian's body at `p` reaches into the box of `b` (m; negative: apart), as
/// the collision metric measures it.
fn vehicle_depth(b: &VehicleBox, p: P2) -> f64 {
    let body = OrientedBox { center: b.center, heading_rad: b.heading_rad, length_m: b.length_m, width_m: b.width_m };
    body.disc_depth_m(p, BODY_RADIUS_M)
}

/// Repulsion of vehicle bodies near a pedestrian walking towards `desired` (unit): away
/// from each body, and around it (to the walker's right) when the body stands in the way.
fn vehicle_force(grid: &VehicleGrid, pos: P2, desired: P2) -> P2 {
    let mut f = [0.0, 0.0];
    grid.for_near(pos, |b| {
        let (d, n) = box_distance(b, pos);
        if d > VEHICLE_RANGE_M {
            return;
        }
        let k = VEHICLE_A_MPS2 * ((BODY_RADIUS_M - d) / VEHICLE_B_M).exp().min(10.0);
        f = add(f, scale(n, k));
        if dot(n, desired) < -0.5 {
            f = add(f, scale([desired[1], -desired[0]], 0.8 * k));
        }
    });
    f
}

fn social_force(a: &Pedestrian, b: &Pedestrian, facing: P2) -> P2 {
    let d = sub(a.pos, b.pos);
    let dn = norm(d);
    if dn > INTERACTION_RANGE_M {
        return [0.0, 0.0];
    }
    if dn < 1e-6 {
        // Exactly on top of each other: the younger steps aside to the right.
        return if a.id > b.id {
            scale(right_of(facing), CONTACT_STIFFNESS_PER_S2 * BODY_RADIUS_M)
        } else {
            [0.0, 0.0]
        };
    }
    // Elliptical potential: b's next step y = v_b Δt.
    let y = scale(b.vel, SOCIAL_HORIZON_S);
    let dy = sub(d, y);
    let dyn_ = norm(dy);
    let sum = dn + dyn_;
    let bb = 0.5 * (sum * sum - dot(y, y)).max(0.0).sqrt();
    let mut grad = scale(d, 1.0 / dn);
    if bb > 1e-6 && dyn_ > 1e-9 {
        grad = scale(add(scale(d, 1.0 / dn), scale(dy, 1.0 / dyn_)), sum / (4.0 * bb));
    }
    let magnitude = SOCIAL_V0_M2PS2 / SOCIAL_SIGMA_M * (-bb / SOCIAL_SIGMA_M).exp();
    let mut f = scale(grad, magnitude);
    // Field of view: b ahead of a (seen along -d) counts fully.
    let toward_b = scale(d, -1.0 / dn);
    let cos_view = dot(facing, toward_b);
    let w = if cos_view >= VIEW_COS { 1.0 } else { OUT_OF_VIEW_WEIGHT };
    f = scale(f, w);
    // Oncoming and ahead: step to the right.
    if cos_view > 0.5 && dot(a.vel, b.vel) < 0.0 {
        f = add(f, scale(right_of(facing), PASS_RIGHT_GAIN * norm(f)));
    }
    // Body contact.
    let overlap = 2.0 * BODY_RADIUS_M - dn;
    if overlap > 0.0 {
        f = add(f, scale(d, CONTACT_STIFFNESS_PER_S2 * overlap / dn));
    }
    f
}

#[cfg(test)]
mod tests;
