//! Agent-centric features: one fixed-size `f32` vector per agent per step, computed from
//! the current world (every agent's recent states, the map, the signals).
//!
//! Every geometric quantity is in the **agent frame**: origin at the agent, `+x` along its
//! heading, `+y` to its left; so features are invariant to a rotation and translation of
//! the whole scene (tested), except for the raster lookups, which are pixel-exact only up
//! to the raster's 1 m grid.
//!
//! # Layout version 1 ([`FEATURE_LAYOUT_VERSION`]), [`FEATURE_DIM`] = 202
//!
//! The vector is `[ego (90) | neighbours (8 × 14)]`; the network embeds each neighbour
//! slot with a shared MLP.
//!
//! | offset | len | name | meaning (scale) |
//! |---:|---:|---|---|
//! | 0 | 1 | speed | speed (m/s ÷ 10) |
//! | 1 | 1 | accel | speed change over the last step (m/s² ÷ 3) |
//! | 2 | 1 | yaw_rate | heading change over the last step (rad/s ÷ 0.5) |
//! | 3 | 1 | length | m ÷ 5 |
//! | 4 | 1 | width | m ÷ 2 |
//! | 5 | 4 | kind | one-hot car, bus, truck, pedestrian |
//! | 9 | 1 | history_len | recorded past steps available (÷ 10, at most 1) |
//! | 10 | 15 | history | poses 0.2, 0.4, 0.6, 0.8, 1.0 s ago: x, y (m ÷ 10), heading − current (rad) |
//! | 25 | 1 | lane_valid | 1 when a path was matched (vehicles within 6 m, heading within 90°) |
//! | 26 | 1 | in_junction | 1 when the matched path is a connection through a junction |
//! | 27 | 30 | lane_ahead | 15 points every 4 m along the route (4..60 m): x, y (m ÷ 30) |
//! | 57 | 1 | lateral | signed offset from the path (m ÷ 2, left positive) |
//! | 58 | 2 | heading_error | sin, cos of path heading − agent heading |
//! | 60 | 1 | speed_limit | of the matched path (m/s ÷ 15) |
//! | 61 | 1 | stop_distance | along the route to the next stop line within 60 m (m ÷ 60; 1 if none) |
//! | 62 | 1 | stop_ahead | 1 when a stop line is within 60 m |
//! | 63 | 4 | signal | one-hot red, amber, green, none: the signal of that stop line's lane |
//! | 67 | 16 | rays | 8 directions (0°, 45°, ... CCW from the heading): distance to the first building pixel, then to the first pixel whose road-ness differs from the agent's pixel (road edge), marched at 1 m to 24 m (m ÷ 24) |
//! | 83 | 4 | ground | one-hot class under the agent: road, crossing, sidewalk, other |
//! | 87 | 1 | leader_present | 1 when a neighbour (below) is ahead in the agent's corridor (local x > 0, \|local y\| < half widths + 0.5 m) |
//! | 88 | 1 | leader_gap | bumper-to-bumper gap to it (m ÷ 40; 1 if none) |
//! | 89 | 1 | leader_speed | its speed along the agent's heading minus the agent's speed (m/s ÷ 10) |
//! | 90 | 8 × 14 | neighbours | K = 8 nearest agents within 40 m on the agent's level (nearest first, ties by index): x, y (m ÷ 20), cos, sin of relative heading, relative velocity x, y (m/s ÷ 10), length ÷ 5, width ÷ 2, kind one-hot (4), distance ÷ 40, mask (1 present, 0: the slot is all zeros) |
//!
//! **Route ahead.** From the matched path the lane-ahead points follow successors at every
//! path end; which successor is an [`Intent`]: the straightest, a per-agent choice (rollouts
//! draw it once per agent from the keyed generator), or, when training, the one the
//! recorded future actually takes (hindsight).
//!
//! **Signals.** For vehicles, with [`crate::map::SignalSource::Plans`] the state is the
//! teacher plan's state of the stop line's lane at the current time; with `Recorded` it is
//! the `signal` field of the agent's record (rollouts hold the last recorded value). For
//! pedestrians it is always the recorded `signal` (their crossing's), held in rollouts.
//!
//! **Levels.** Neighbours (and so the leader) are the agents on the agent's level: decks
//! ([`AgentView::deck_m`]) less than [`LEVEL_SEPARATION_M`] apart (a NaN deck counts as
//! the same level), as the collision masks and the evaluation's interaction metrics count
//! them: a car on a bridge does not see the traffic on the road below it. (Until session
//! 42 neighbours were level-blind; on a map on one level nothing changes.)
//!
//! Pedestrians get no lane features (zeros, `lane_valid` 0): they walk on the walk graph,
//! which version 1 does not encode; the rays and ground class tell them where roads are.

use swm_sim::{AgentKind, SignalState};
use swm_twin::P2;
use swm_twin::query::BevClass;

use crate::cells::{CELL_INDEX_MIN_AGENTS, CellIndex};
use crate::map::{MapContext, PathMatch};
use crate::tokens::{Kinematics, wrap_angle};
pub use swm_sim::metrics::LEVEL_SEPARATION_M;

/// Version of the feature layout (stored in model files).
pub const FEATURE_LAYOUT_VERSION: u32 = 1;
/// Ego (non-neighbour) features.
pub const EGO_DIM: usize = 90;
/// Neighbour slots.
pub const NEIGHBOURS: usize = 8;
/// Features per neighbour slot.
pub const NEIGHBOUR_DIM: usize = 14;
/// The whole vector.
pub const FEATURE_DIM: usize = EGO_DIM + NEIGHBOURS * NEIGHBOUR_DIM;
/// Where the history block starts and ends in the vector (noise is injected there in training).
pub const HISTORY_RANGE: std::ops::Range<usize> = 10..25;
/// Neighbour search radius (m).
pub const NEIGHBOUR_RADIUS_M: f64 = 40.0;
/// History kept per agent (steps, 1 s).
pub const HISTORY_STEPS: usize = 10;

const LANE_POINTS: usize = 15;
const LANE_SPACING_M: f64 = 4.0;
const STOP_HORIZON_M: f64 = 60.0;
const RAY_MAX_M: f64 = 24.0;
/// How far from a path a vehicle's lane features take it (m).
pub const FEATURE_MATCH_RADIUS_M: f64 = 6.0;

// The features' scales as reciprocals: a product instead of a division per value (the
// layout's "÷ 10" is "× 0.1" here, the same to well within an f32's rounding).
const INV_10: f64 = 1.0 / 10.0;
const INV_20: f64 = 1.0 / 20.0;
const INV_30: f64 = 1.0 / 30.0;
const INV_RAY_MAX: f64 = 1.0 / RAY_MAX_M;
const INV_NEIGHBOUR_RADIUS: f64 = 1.0 / NEIGHBOUR_RADIUS_M;

/// Which successor the route follows at a path's end.
#[derive(Clone, Copy, Debug)]
pub enum Intent<'a> {
    Straightest,
    /// A per-agent choice, mixed with the path index at every branching.
    Choice(u32),
    /// The successor passing closest to these future positions (training).
    Hindsight(&'a [P2]),
}

/// One agent as features see it.
#[derive(Clone, Copy, Debug)]
pub struct AgentView<'a> {
    pub kind: AgentKind,
    pub length_m: f32,
    pub width_m: f32,
    /// Past states, oldest first, the current state last (at most [`HISTORY_STEPS`] + 1 used).
    pub history: &'a [Kinematics],
    /// The signal state its record gave (used with recorded signals).
    pub recorded_signal: Option<SignalState>,
    pub intent: Intent<'a>,
    /// Height of the road deck it is on above the ground (m; [`MapContext::deck_at`]): its
    /// path match is among the paths on that level ([`MapContext::on_level`]).
    pub deck_m: f64,
}

impl AgentView<'_> {
    pub fn now(&self) -> &Kinematics {
        self.history.last().expect("an agent view has at least its current state")
    }
}

fn kind_index(k: AgentKind) -> usize {
    match k {
        AgentKind::Car => 0,
        AgentKind::Bus => 1,
        AgentKind::Truck => 2,
        AgentKind::Pedestrian => 3,
    }
}

/// Mixes an intent with a path index (a 32-bit finaliser).
fn mix(a: u32, b: u32) -> u32 {
    let mut x = a ^ b.wrapping_mul(0x9E37_79B9);
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// The frame transform of an agent.
#[derive(Clone, Copy)]
struct Frame {
    o: P2,
    c: f64,
    s: f64,
}

impl Frame {
    fn local(&self, p: P2) -> P2 {
        let (dx, dy) = (p[0] - self.o[0], p[1] - self.o[1]);
        [self.c * dx + self.s * dy, -self.s * dx + self.c * dy]
    }
    fn local_vec(&self, v: P2) -> P2 {
        [self.c * v[0] + self.s * v[1], -self.s * v[0] + self.c * v[1]]
    }
}

/// The unit vector of `k`'s heading: (cos, sin).
fn heading_vec(k: &Kinematics) -> P2 {
    let (s, c) = k.heading_rad.sin_cos();
    [c, s]
}

/// The velocity of `k` from its heading's unit vector `u` ([`heading_vec`]).
fn velocity_along(k: &Kinematics, u: P2) -> P2 {
    [k.speed_mps * u[0], k.speed_mps * u[1]]
}

/// The cosine and sine of the heading `b` relative to `a`, from their unit vectors
/// ([`heading_vec`]): `cos(b − a)` and `sin(b − a)` by the angle-difference identities (no
/// call to libm per neighbour).
fn relative_heading(a: P2, b: P2) -> (f64, f64) {
    (b[0] * a[0] + b[1] * a[1], b[1] * a[0] - b[0] * a[1])
}

/// The unit directions (sine, cosine) of the eight rays, 0°, 45°, ... counter-clockwise from
/// the heading whose cosine and sine are `c`, `s`: the heading's vector turned by quarter
/// turns (exact) and by eighth turns (`(s ± c) / √2`), without a call to libm per ray.
fn ray_dirs(c: f64, s: f64) -> [(f64, f64); 8] {
    let r = std::f64::consts::FRAC_1_SQRT_2;
    let (p, m) = ((s + c) * r, (c - s) * r);
    [(s, c), (p, m), (c, -s), (m, -p), (-s, -c), (-p, -m), (-c, s), (-m, p)]
}

fn choose_successor(map: &MapContext, path: u32, intent: &Intent) -> Option<u32> {
    match intent {
        Intent::Straightest => map.straightest_successor(path),
        Intent::Choice(c) => map.successor(path, mix(*c, path)),
        Intent::Hindsight(future) => {
            let succ = &map.paths[path as usize].successors;
            if succ.len() <= 1 || future.is_empty() {
                return succ.first().copied();
            }
            succ.iter().copied().min_by(|&a, &b| {
                let score = |p: u32| {
                    let path = &map.paths[p as usize];
                    (0..5)
                        .map(|i| {
                            let (q, _) = path.at(path.length_m * (i as f64 + 1.0) / 5.0);
                            future
                                .iter()
                                .map(|f| (f[0] - q[0]).powi(2) + (f[1] - q[1]).powi(2))
                                .fold(f64::INFINITY, f64::min)
                        })
                        .sum::<f64>()
                };
                score(a).total_cmp(&score(b)).then(a.cmp(&b))
            })
        }
    }
}

/// The most paths a [`Route`] follows.
const ROUTE_MAX_PATHS: usize = 8;

/// The route ahead of a matched pose: the paths followed, for lookups, each with the
/// distance along the route at which it starts, relative to the agent (at most
/// [`ROUTE_MAX_PATHS`], held in place: a route per agent and step allocates nothing).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Route {
    paths: [(u32, f64); ROUTE_MAX_PATHS],
    len: usize,
}

impl std::ops::Deref for Route {
    type Target = [(u32, f64)];
    fn deref(&self) -> &[(u32, f64)] {
        &self.paths[..self.len]
    }
}

/// The route ahead of a matched pose (on `path` at `s_m`) up to `horizon_m`.
pub(crate) fn route(map: &MapContext, path: u32, s_m: f64, intent: &Intent, horizon_m: f64) -> Route {
    let mut out = Route { paths: [(0, 0.0); ROUTE_MAX_PATHS], len: 1 };
    out.paths[0] = (path, -s_m);
    let mut end = map.paths[path as usize].length_m - s_m;
    let mut cur = path;
    while end < horizon_m && out.len < ROUTE_MAX_PATHS {
        let Some(next) = choose_successor(map, cur, intent) else { break };
        out.paths[out.len] = (next, end);
        out.len += 1;
        end += map.paths[next as usize].length_m;
        cur = next;
    }
    out
}

/// Where the last lookup along a route landed ([`route_at`]): its path and the place on it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RouteCursor {
    path: u32,
    at: crate::map::PathCursor,
}

impl Default for RouteCursor {
    fn default() -> RouteCursor {
        RouteCursor { path: u32::MAX, at: crate::map::PathCursor::default() }
    }
}

/// The point, unit direction and heading `s_m` along `route` (distances from where it was
/// matched; [`route`]): on the last of its paths starting at or before `s_m` (the first when
/// none does), clamped to that path. Lookups that move forward along the route start their
/// search where the last one on the same path ended (`cursor`); the values are
/// [`crate::map::Path::at`]'s whatever the cursor.
pub(crate) fn route_at(map: &MapContext, route: &[(u32, f64)], s_m: f64, cursor: &mut RouteCursor) -> (P2, P2, f64) {
    let (pi, start) = route.iter().rev().find(|(_, st)| *st <= s_m).copied().unwrap_or(route[0]);
    if cursor.path != pi {
        *cursor = RouteCursor { path: pi, ..RouteCursor::default() };
    }
    map.paths[pi as usize].at_from(s_m - start, &mut cursor.at)
}

/// Computes the features of `agents[i]` at `time_s` into `out` (length [`FEATURE_DIM`]).
pub fn agent_features(map: &MapContext, agents: &[AgentView], i: usize, time_s: f64, out: &mut [f32]) {
    out.fill(0.0);
    agent_features_with(map, agents, i, time_s, out, None, &FeatureScratch::default(), &mut Vec::new());
}

/// What a caller computing the features of many agents of one frame keeps between them
/// ([`agent_features_with`]): every agent's heading and the agents by cell (frames of
/// [`CELL_INDEX_MIN_AGENTS`] agents or more). Read-only once the frame has started, so
/// threads computing different agents' features share it.
#[derive(Debug, Default)]
pub(crate) struct FeatureScratch {
    /// Every agent's heading now as a unit vector ([`heading_vec`]; empty: computed when
    /// asked for).
    headings: Vec<P2>,
    /// Every agent's position now, side by side, for the neighbour scan (empty: read from
    /// the agents).
    points: Vec<P2>,
    /// Every agent's deck, beside `points`: empty when every deck is on one level (the
    /// finite ones span less than [`LEVEL_SEPARATION_M`]; a NaN deck is on every level), so
    /// that every pair of agents is on the same level and the scan skips the test.
    decks: Vec<f64>,
    /// Every agent's position now, by cell, when `indexed`.
    cells: CellIndex,
    /// Whether this frame's agents are indexed (`cells`).
    pub(crate) indexed: bool,
    /// Never index (tests: the scan to compare with).
    pub(crate) scan_only: bool,
}

impl FeatureScratch {
    /// Every agent's heading now as a unit vector (cos, sin; `f64::sin_cos`'s values), as
    /// the last [`FeatureScratch::new_frame`] took them.
    pub(crate) fn headings(&self) -> &[P2] {
        &self.headings
    }

    /// Starts a frame: the headings of `agents` now, and their cells when they are many.
    pub(crate) fn new_frame(&mut self, agents: &[AgentView]) {
        self.headings.clear();
        self.headings.extend(agents.iter().map(|a| heading_vec(a.now())));
        self.points.clear();
        self.points.extend(agents.iter().map(|a| a.now().point_enu));
        self.decks.clear();
        let finite = agents.iter().map(|a| a.deck_m).filter(|d| !d.is_nan());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| (lo.min(d), hi.max(d)));
        if !(hi - lo < LEVEL_SEPARATION_M || lo > hi) {
            self.decks.extend(agents.iter().map(|a| a.deck_m));
        }
        self.indexed = !self.scan_only && agents.len() >= CELL_INDEX_MIN_AGENTS;
        if self.indexed {
            self.cells.rebuild(agents.iter().map(|a| a.now().point_enu), NEIGHBOUR_RADIUS_M);
        }
    }
}

/// [`agent_features`], with the vehicle's path match within [`FEATURE_MATCH_RADIUS_M`] at
/// its current pose when the caller has it already (`matched`; `None`: matched here), and
/// the frame's headings and cells from `scratch` (the same values), and `near` a buffer.
/// `out` must be all zeros (it writes only the features that are not; a frame's rows are
/// zeroed once when the batch is sized).
#[allow(clippy::too_many_arguments)]
pub(crate) fn agent_features_with(
    map: &MapContext,
    agents: &[AgentView],
    i: usize,
    time_s: f64,
    out: &mut [f32],
    matched: Option<Option<PathMatch>>,
    scratch: &FeatureScratch,
    near: &mut Vec<(f64, usize)>,
) {
    debug_assert_eq!(out.len(), FEATURE_DIM);
    debug_assert!(out.iter().all(|&v| v == 0.0), "a row to fill starts at zero");
    let a = &agents[i];
    let now = a.now();
    let own_heading = scratch.headings.get(i).copied().unwrap_or_else(|| heading_vec(now));
    let fr = Frame { o: now.point_enu, c: own_heading[0], s: own_heading[1] };
    let h = a.history;
    let n = h.len();

    // Ego kinematics.
    out[0] = (now.speed_mps * INV_10) as f32;
    if n >= 2 {
        let prev = &h[n - 2];
        out[1] = ((now.speed_mps - prev.speed_mps) / crate::tokens::DT_S / 3.0) as f32;
        out[2] = (wrap_angle(now.heading_rad - prev.heading_rad) / crate::tokens::DT_S / 0.5) as f32;
    }
    out[3] = a.length_m / 5.0;
    out[4] = a.width_m / 2.0;
    out[5 + kind_index(a.kind)] = 1.0;
    let past = (n - 1).min(HISTORY_STEPS);
    out[9] = past as f32 / HISTORY_STEPS as f32;
    for j in 0..5 {
        let back = 2 * (j + 1);
        let k = &h[n - 1 - back.min(past)];
        let p = fr.local(k.point_enu);
        out[10 + 3 * j] = (p[0] * INV_10) as f32;
        out[11 + 3 * j] = (p[1] * INV_10) as f32;
        out[12 + 3 * j] = wrap_angle(k.heading_rad - now.heading_rad) as f32;
    }

    // Lane ahead.
    let mut signal: Option<SignalState> = None;
    if a.kind.is_vehicle()
        && let Some(m) = matched.unwrap_or_else(|| {
            map.match_path_on(now.point_enu, now.heading_rad, FEATURE_MATCH_RADIUS_M, Some(a.deck_m))
        })
    {
        out[25] = 1.0;
        out[26] = if map.paths[m.path as usize].lane.is_none() { 1.0 } else { 0.0 };
        let r = route(map, m.path, m.s_m, &a.intent, LANE_POINTS as f64 * LANE_SPACING_M + 1.0);
        let mut cursor = RouteCursor::default();
        for k in 0..LANE_POINTS {
            let (q, _, _) = route_at(map, &r, (k + 1) as f64 * LANE_SPACING_M, &mut cursor);
            let l = fr.local(q);
            out[27 + 2 * k] = (l[0] * INV_30) as f32;
            out[28 + 2 * k] = (l[1] * INV_30) as f32;
        }
        out[57] = (m.lateral_m / 2.0) as f32;
        out[58] = m.heading_error_rad.sin() as f32;
        out[59] = m.heading_error_rad.cos() as f32;
        out[60] = (map.paths[m.path as usize].speed_limit_mps / 15.0) as f32;
        out[61] = 1.0;
        for (pi, start) in r.iter() {
            let p = &map.paths[*pi as usize];
            if let Some(stop) = p.stop_s_m {
                let d = start + stop;
                if (-1.0..=STOP_HORIZON_M).contains(&d) {
                    out[61] = (d.max(0.0) / STOP_HORIZON_M) as f32;
                    out[62] = 1.0;
                    signal = if map.has_plans() {
                        p.lane.and_then(|l| map.plan_state(l, time_s))
                    } else {
                        a.recorded_signal
                    };
                    break;
                }
            }
        }
    }
    if a.kind == AgentKind::Pedestrian {
        // The crossing's pedestrian signal, as recorded (held during rollouts).
        signal = a.recorded_signal;
    }
    let sig = match signal {
        Some(SignalState::Red) => 0,
        Some(SignalState::Amber) => 1,
        Some(SignalState::Green) => 2,
        None => 3,
    };
    out[63 + sig] = 1.0;

    // Static context.
    let here = map.class_at(now.point_enu);
    let dirs = ray_dirs(fr.c, fr.s);
    let here_is_road = matches!(here, BevClass::Road | BevClass::Crossing);
    let hits = map.march_rays(now.point_enu, &dirs, here_is_road, RAY_MAX_M);
    for (d, (building, edge)) in hits.into_iter().enumerate() {
        out[67 + 2 * d] = (building * INV_RAY_MAX) as f32;
        out[68 + 2 * d] = (edge * INV_RAY_MAX) as f32;
    }
    let g = match here {
        BevClass::Road => 0,
        BevClass::Crossing => 1,
        BevClass::Sidewalk => 2,
        _ => 3,
    };
    out[83 + g] = 1.0;

    // Neighbours.
    let r2 = NEIGHBOUR_RADIUS_M * NEIGHBOUR_RADIUS_M;
    let FeatureScratch { headings, points, decks, cells, indexed, .. } = scratch;
    let heading_of = |j: usize| headings.get(j).copied().unwrap_or_else(|| heading_vec(agents[j].now()));
    let velocity_of = |j: usize| velocity_along(agents[j].now(), heading_of(j));
    near.clear();
    // The frame's agents all on one level (the scratch has their points but no decks):
    // every pair on the same level, no deck to compare.
    let one_level = !points.is_empty() && decks.is_empty();
    let within = |j: usize| {
        let p = agents[j].now().point_enu;
        let d2 = (p[0] - now.point_enu[0]).powi(2) + (p[1] - now.point_enu[1]).powi(2);
        (j != i && d2 <= r2 && (one_level || same_level(agents[j].deck_m - a.deck_m))).then_some((d2, j))
    };
    // By cell or by scan, the same set (`crate::cells`), sorted into the same order.
    if *indexed && cells.points() == agents.len() && CellIndex::answers(now.point_enu, NEIGHBOUR_RADIUS_M) {
        cells.near(now.point_enu, NEIGHBOUR_RADIUS_M, |j| near.extend(within(j)));
    } else if points.len() == agents.len() && (one_level || decks.len() == agents.len()) {
        // The same test over the positions side by side, without a branch per agent (which
        // is within reach is a coin toss): every pair is written, the length moves only for
        // those kept.
        near.resize(points.len(), (0.0, 0));
        let mut len = 0;
        let at = now.point_enu;
        if one_level {
            for (j, p) in points.iter().enumerate() {
                let d2 = (p[0] - at[0]).powi(2) + (p[1] - at[1]).powi(2);
                near[len] = (d2, j);
                len += usize::from((j != i) & (d2 <= r2));
            }
        } else {
            for (j, (p, &deck_m)) in points.iter().zip(decks).enumerate() {
                let d2 = (p[0] - at[0]).powi(2) + (p[1] - at[1]).powi(2);
                near[len] = (d2, j);
                len += usize::from((j != i) & (d2 <= r2) & same_level(deck_m - a.deck_m));
            }
        }
        near.truncate(len);
    } else {
        near.extend((0..agents.len()).filter_map(within));
    }
    near.sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let v_own = velocity_of(i);
    out[88] = 1.0;
    let mut best_gap = f64::INFINITY;
    for (_, j) in near.iter() {
        let b = &agents[*j];
        let bn = b.now();
        let p = fr.local(bn.point_enu);
        let half = 0.5 * f64::from(a.width_m + b.width_m) + 0.5;
        if p[0] > 0.0 && p[1].abs() < half {
            let gap = (p[0] - 0.5 * f64::from(a.length_m + b.length_m)).max(0.0);
            if gap < best_gap {
                best_gap = gap;
                let vb = fr.local_vec(velocity_of(*j));
                out[87] = 1.0;
                out[88] = (gap * INV_NEIGHBOUR_RADIUS) as f32;
                out[89] = ((vb[0] - now.speed_mps) * INV_10) as f32;
            }
        }
    }
    for (slot, (d2, j)) in near.iter().take(NEIGHBOURS).enumerate() {
        let b = &agents[*j];
        let bn = b.now();
        let o = &mut out[EGO_DIM + slot * NEIGHBOUR_DIM..EGO_DIM + (slot + 1) * NEIGHBOUR_DIM];
        let p = fr.local(bn.point_enu);
        let (cos_dh, sin_dh) = relative_heading(own_heading, heading_of(*j));
        let vb = velocity_of(*j);
        let dv = fr.local_vec([vb[0] - v_own[0], vb[1] - v_own[1]]);
        o[0] = (p[0] * INV_20) as f32;
        o[1] = (p[1] * INV_20) as f32;
        o[2] = cos_dh as f32;
        o[3] = sin_dh as f32;
        o[4] = (dv[0] * INV_10) as f32;
        o[5] = (dv[1] * INV_10) as f32;
        o[6] = b.length_m / 5.0;
        o[7] = b.width_m / 2.0;
        o[8 + kind_index(b.kind)] = 1.0;
        o[12] = (d2.sqrt() * INV_NEIGHBOUR_RADIUS) as f32;
        o[13] = 1.0;
    }
}

/// Whether two agents whose decks differ by `dz_m` are on the same level (module docs,
/// "Levels"): not [`LEVEL_SEPARATION_M`] or more apart, so a NaN deck keeps the agent. The
/// collision mask's candidates are found by the same test.
#[inline(always)]
pub fn same_level(dz_m: f64) -> bool {
    let dz_m = dz_m.abs();
    // `|`, not `||`: no branch in the scans that call it.
    (dz_m < LEVEL_SEPARATION_M) | dz_m.is_nan()
}

/// Features of every agent into a row-major `[agents.len(), FEATURE_DIM]` buffer.
pub fn all_features(map: &MapContext, agents: &[AgentView], time_s: f64, out: &mut Vec<f32>) {
    out.clear();
    out.resize(agents.len() * FEATURE_DIM, 0.0);
    for (i, row) in out.chunks_mut(FEATURE_DIM).enumerate() {
        agent_features(map, agents, i, time_s, row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rays' directions turned from the heading's vector, and the neighbours' relative
    /// headings from their vectors, are libm's `sin_cos` of the angles to within a few
    /// units in the last place of an `f64` (far below the features' `f32`).
    #[test]
    fn turned_vectors_are_the_angles_sines_and_cosines() {
        let mut rng = swm_core::rng::CounterRng::new(4, 2);
        for _ in 0..100_000 {
            let (h, g) = (rng.range_f64(-7.0, 7.0), rng.range_f64(-7.0, 7.0));
            let (s, c) = h.sin_cos();
            for (d, &(ds, dc)) in ray_dirs(c, s).iter().enumerate() {
                let (ws, wc) = (h + d as f64 * std::f64::consts::FRAC_PI_4).sin_cos();
                assert!((ds - ws).abs() < 4e-15 && (dc - wc).abs() < 4e-15, "{h} ray {d}");
            }
            let (gs, gc) = g.sin_cos();
            let (cos_dh, sin_dh) = relative_heading([c, s], [gc, gs]);
            let dh = wrap_angle(g - h);
            assert!((cos_dh - dh.cos()).abs() < 4e-15 && (sin_dh - dh.sin()).abs() < 4e-15, "{h} {g}");
        }
    }

    /// The neighbour search by cell, by the side-by-side scan (with decks, or skipping
    /// them when every deck is on one level) and agent by agent give the same rows, with
    /// agents on two levels (and NaN decks), on levels within one span, and all on deck 0.
    #[test]
    fn neighbour_searches_agree_on_levels() {
        let line: Vec<P2> = (0..=40).map(|i| [-200.0 + 10.0 * i as f64, 0.0]).collect();
        let map = MapContext::from_paths(vec![crate::map::make_path(line, 13.9, Some(0), None, vec![])], 2.0);
        let mut rng = swm_core::rng::CounterRng::new(42, 1);
        let n = CELL_INDEX_MIN_AGENTS.max(80);
        let hist: Vec<Vec<Kinematics>> = (0..n)
            .map(|_| {
                let k = Kinematics {
                    point_enu: [rng.range_f64(-60.0, 60.0), rng.range_f64(-20.0, 20.0)],
                    heading_rad: rng.range_f64(-3.0, 3.0),
                    speed_mps: rng.range_f64(0.0, 10.0),
                };
                vec![k]
            })
            .collect();
        for decks in [[0.0, 6.0, f64::NAN, 2.9], [0.0, 1.0, f64::NAN, 2.9], [0.0; 4]] {
            let views: Vec<AgentView> = (0..n)
                .map(|j| AgentView {
                    kind: if j % 5 == 0 { AgentKind::Pedestrian } else { AgentKind::Car },
                    length_m: 4.5,
                    width_m: 1.8,
                    history: &hist[j],
                    recorded_signal: None,
                    intent: Intent::Straightest,
                    deck_m: decks[j % 4],
                })
                .collect();
            let rows = |scratch: Option<&FeatureScratch>| -> Vec<Vec<f32>> {
                (0..n)
                    .map(|i| {
                        let mut row = vec![0.0f32; FEATURE_DIM];
                        match scratch {
                            Some(sc) => agent_features_with(&map, &views, i, 1.0, &mut row, None, sc, &mut Vec::new()),
                            None => agent_features(&map, &views, i, 1.0, &mut row),
                        }
                        row
                    })
                    .collect()
            };
            let mut by_cell = FeatureScratch::default();
            by_cell.new_frame(&views);
            assert!(by_cell.indexed);
            let mut scan = FeatureScratch { scan_only: true, ..Default::default() };
            scan.new_frame(&views);
            assert_eq!(scan.decks.is_empty(), decks[1] != 6.0, "{decks:?}: the decks kept for the scan");
            let one_by_one = rows(None);
            let bits = |r: &[Vec<f32>]| r.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert!(bits(&rows(Some(&by_cell))) == bits(&one_by_one), "{decks:?}: by cell");
            assert!(bits(&rows(Some(&scan))) == bits(&one_by_one), "{decks:?}: by scan");
            // Crowded enough that the searches had neighbours to find.
            let present = one_by_one
                .iter()
                .map(|r| (0..NEIGHBOURS).filter(|&k| r[EGO_DIM + k * NEIGHBOUR_DIM + 13] == 1.0).count());
            assert!(present.sum::<usize>() > n, "{decks:?}: few neighbours");
        }
    }

    /// The scales taken as products by reciprocals give the `f32` the divisions give: every
    /// ray distance exactly, and values over the features' ranges.
    #[test]
    fn reciprocal_scales_round_to_the_quotients_f32() {
        for t in 1..=RAY_MAX_M as u32 {
            let t = f64::from(t);
            assert_eq!((t * INV_RAY_MAX) as f32, (t / RAY_MAX_M) as f32, "ray {t}");
        }
        let mut rng = swm_core::rng::CounterRng::new(4, 3);
        for _ in 0..200_000 {
            let x = rng.range_f64(-120.0, 120.0);
            for (inv, d) in [(INV_10, 10.0), (INV_20, 20.0), (INV_30, 30.0), (INV_NEIGHBOUR_RADIUS, NEIGHBOUR_RADIUS_M)]
            {
                assert_eq!((x * inv) as f32, (x / d) as f32, "{x} / {d}");
            }
        }
    }
}
