//! The static driving network derived from a twin: pieces (lanes, then connections) with
//! their geometry, lane groups (a road in one direction), conflicts between connections of
//! a junction, hold points and routing.

use swm_twin::{Control, RoadClass, StopKind, Turn, Twin};

use crate::crossing::CrossingMap;
use crate::metrics::OrientedBox;

use super::route::RouteIndex;

/// Two connection paths closer than this (m) conflict (widest vehicle plus margin).
pub const CONFLICT_DIST_M: f64 = 3.0;
/// Two side-by-side connection paths (same direction at both ends, from different lanes
/// into different lanes) conflict only closer than this (m): vehicles drive side by side
/// through a junction in adjacent lanes, and narrow urban lanes put the centre lines under
/// [`CONFLICT_DIST_M`] apart. The widest vehicle (2.5 m) still fits.
pub const PARALLEL_CONFLICT_DIST_M: f64 = 2.6;
/// Largest heading difference of side-by-side paths (rad, 15°).
const PARALLEL_MAX_RAD: f64 = 0.26;
/// Lateral acceleration allowed in turns (m/s²).
pub const A_LAT_MPS2: f64 = 2.0;
/// Span (m) over which a path's curvature is measured for its curve speeds: about a car's
/// length, the chord whose turning is the recorded heading's.
pub const CURVE_WINDOW_M: f64 = 5.0;
/// Lowest curve speed (m/s): a hairpin is taken at a walking pace, not stopped at.
pub const CURVE_MIN_MPS: f64 = 3.0;

/// A stretch of a lane that its curvature limits to `v_mps` (the speed at which the turn
/// takes [`A_LAT_MPS2`] sideways), from `s0_m` to `s1_m` along it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Curve {
    pub s0_m: f64,
    pub s1_m: f64,
    pub v_mps: f64,
}

/// The curve speeds of a path (plan view points, `cum` their distances along it): at each
/// interior point, the turn of the points within [`CURVE_WINDOW_M`] / 2 of it divided by the
/// window gives the curvature κ, and `sqrt(A_LAT / κ)` (at least [`CURVE_MIN_MPS`]) the speed
/// over that window; only those under `v_limit_mps` are kept, in order along the path.
pub fn curve_speeds(pts: &[[f64; 3]], cum: &[f64], v_limit_mps: f64) -> Vec<Curve> {
    let n = pts.len();
    if n < 3 {
        return Vec::new();
    }
    // Segment headings; a zero-length segment keeps the one before it.
    let mut h = Vec::with_capacity(n - 1);
    for i in 0..n - 1 {
        let degenerate = cum[i + 1] - cum[i] < 1e-9;
        h.push(if degenerate && i > 0 { h[i - 1] } else { heading(pts[i], pts[i + 1]) });
    }
    let turn: Vec<f64> = (1..n - 1).map(|i| wrap(h[i] - h[i - 1])).collect();
    let half = CURVE_WINDOW_M / 2.0;
    let mut out = Vec::new();
    let mut lo = 0;
    for i in 1..n - 1 {
        let s = cum[i];
        while cum[lo + 1] < s - half {
            lo += 1;
        }
        let mut sum = 0.0;
        let mut j = lo.max(1);
        while cum[j] < s - half {
            j += 1;
        }
        while j < n - 1 && cum[j] <= s + half {
            sum += turn[j - 1];
            j += 1;
        }
        let kappa = sum.abs() / CURVE_WINDOW_M;
        if kappa <= 0.0 {
            continue;
        }
        let v = (A_LAT_MPS2 / kappa).sqrt().max(CURVE_MIN_MPS);
        if v < v_limit_mps {
            out.push(Curve { s0_m: s - half, s1_m: s + half, v_mps: v });
        }
    }
    out
}

/// A conflict of one connection with another of the same junction.
#[derive(Clone, Copy, Debug)]
pub struct Conflict {
    pub other: u32,
    /// Distance along this connection where the conflict zone ends (m).
    pub my_end_m: f64,
    /// Distance along the other connection where its conflict zone ends (m).
    pub other_end_m: f64,
    /// Vehicles on this connection yield to those approaching the other.
    pub yield_to_other: bool,
    /// Only a long vehicle's (bus, truck) body reaches the other's here: two cars pass
    /// (see the module rules on junctions).
    pub long_only: bool,
}

/// How a lane's end is controlled for the vehicles on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Nothing to obey but conflict-zone reservations (priority road, two-arm node).
    Free,
    /// Give way: gap acceptance against vehicles with priority.
    Yield,
    /// Stop, then go by reservation (all-way stop).
    Stop,
    /// Signalised.
    Signal,
}

/// Demand weight per metre of a road class: trips start and end on lanes in proportion to
/// length times this. Parking aisles and other service roads carry few trips; living
/// streets some.
pub fn demand_weight(class: RoadClass) -> f64 {
    match class {
        RoadClass::Service => 0.1,
        RoadClass::LivingStreet => 0.3,
        _ => 1.0,
    }
}

/// Factor on the route cost of a road class: routes use service roads (parking aisles,
/// driveways) to reach or leave them, not as short cuts.
pub fn route_penalty(class: RoadClass) -> f64 {
    match class {
        RoadClass::Service => 3.0,
        RoadClass::LivingStreet => 1.5,
        _ => 1.0,
    }
}

/// A polyline point with its distance along the piece and the heading of the segment that
/// ends at it (the first point's is unused).
#[derive(Clone, Copy, Debug)]
struct GeomPt {
    p: [f64; 3],
    heading_rad: f64,
}

/// Static network data.
#[derive(Clone, Debug)]
pub struct Net {
    pub n_lanes: usize,
    /// Every piece's polyline, flat: piece `p` is `geom[geom_off[p]..geom_off[p + 1]]`.
    geom: Vec<GeomPt>,
    /// Distance along its piece of each point of `geom`: a dense array for the searches.
    geom_cum_m: Vec<f64>,
    geom_off: Vec<u32>,
    /// Per lane: each group its connections reach, with the connection into it that keeps
    /// the lane's position (see [`Net::conn_to_group`]).
    lane_groups: LaneGroups,
    pub len: Vec<f64>,
    pub vmax: Vec<f64>,
    /// Per lane: its curves slower than its speed limit, in order (connections have theirs
    /// in `vmax`).
    pub curves: Vec<Vec<Curve>>,
    pub lane_out: Vec<Vec<u32>>,
    pub lane_in: Vec<Vec<u32>>,
    pub conflicts: Vec<Vec<Conflict>>,
    pub group_of: Vec<u32>,
    /// Lanes of each group, rightmost first.
    pub groups: Vec<Vec<u32>>,
    pub group_next: Vec<Vec<u32>>,
    pub group_cost_s: Vec<f64>,
    /// Where vehicles wait at a lane's end (before a crossing that cuts the lane there).
    pub hold_s: Vec<f64>,
    pub gate: Vec<Gate>,
    /// Lanes with no incoming / no outgoing connection.
    pub sources: Vec<u32>,
    pub sinks: Vec<u32>,
    /// Cumulative demand weights (see [`demand_weight`]) of all lanes, of `sources` and of
    /// `sinks`, for drawing origins and destinations.
    pub lane_cdf: Vec<f64>,
    pub source_cdf: Vec<f64>,
    pub sink_cdf: Vec<f64>,
    /// Per lane: crossings on it `(s_m, walk edge)`.
    pub crossings: Vec<Vec<(f64, u32)>>,
    pub conn_from: Vec<u32>,
    pub conn_to: Vec<u32>,
    /// A reservation of a connection is released when the rear passes this (m along it).
    pub release_m: Vec<f64>,
    /// Per lane: how far along it a vehicle may stop with its front clear of every foreign
    /// path (m; may be 0 on lanes that reach into another road's paths).
    pub clear_s: Vec<f64>,
    /// Overlap zones of two pieces outside the junction model (lanes of different roads, a
    /// lane and a connection of a junction the lane does not touch): per zone, the major
    /// side then the minor side, each `(piece, start_m, end_m)` along that piece.
    pub zones: Vec<[(u32, f64, f64); 2]>,
    /// Per piece: its zones `(zone, side)` (side 0 major, 1 minor).
    pub lane_zones: Vec<Vec<(u32, u8)>>,
    /// Per piece: the lowest and highest vertical level it is on ([`swm_twin::Lane::level`];
    /// a connection spans the levels of the lanes it joins).
    pub level: Vec<(i8, i8)>,
    /// Per lane: connections whose sweep (the bodies of vehicles driving through them, a
    /// bus cutting its corner) reaches a vehicle standing at the lane's hold point, with
    /// the farthest front positions clear of it for a car and for a bus or truck
    /// `(connection, safe_s car, safe_s long)`.
    pub intrusions: Vec<Vec<(u32, f64, f64)>>,
    /// Per connection: the same seen from the connection `(lane, safe_s car, safe_s long)`.
    pub intruded_by: Vec<Vec<(u32, f64, f64)>>,
    /// Routing's strongly connected components (see [`Net::route`]).
    route_index: RouteIndex,
    /// Per connection: whether it is a turn-back ([`TURN_BACK_RAD`]: no long body follows
    /// it).
    pub turn_back: Vec<bool>,
    /// The group graph, the lanes' connections into groups and the routing index for long
    /// vehicles (buses, trucks): without the turn-backs.
    group_next_long: Vec<Vec<u32>>,
    lane_groups_long: LaneGroups,
    route_index_long: RouteIndex,
}

/// A connection that turns back by more than this (rad) inside its junction, on a mean
/// radius (length over turn) under [`TURN_BACK_MAX_RADIUS_M`], is not taken by a bus or a
/// truck ([`Net::route`] with `long`): the ingest's connections start and end at the
/// lanes' ends, and such a turn-back is a hairpin a few metres across (on Yeouido's core,
/// 156-169° within 1.7-5.4 m) that no 8-12 m body can follow; the teacher's bus pivoting
/// through one was the one vehicle `swm eval`'s model could not follow on the road.
pub const TURN_BACK_RAD: f64 = 150.0 * std::f64::consts::PI / 180.0;
/// See [`TURN_BACK_RAD`] (m): the vocabulary's sharpest vehicle curvature is 0.2 m⁻¹.
pub const TURN_BACK_MAX_RADIUS_M: f64 = 5.0;

/// Whether a vehicle of this length is long (a bus or a truck) for routing and for the
/// conflicts of bodies.
pub fn is_long(length_m: f64) -> bool {
    length_m > 5.0
}

/// Height of one vertical level (m): pieces are raised by it, so recorded poses carry the
/// deck height of bridges and the depth of tunnels.
pub use swm_twin::LEVEL_HEIGHT_M;

/// Whether two level spans share a level (the pieces can meet).
#[inline]
pub fn levels_meet(a: (i8, i8), b: (i8, i8)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// Two lane centre lines closer than this (m) overlap (two of the widest vehicles side by
/// side, plus margin; opposite lanes 3 m wide stay apart).
pub const LANE_ZONE_DIST_M: f64 = 2.7;

type Zones = (Vec<[(u32, f64, f64); 2]>, Vec<Vec<(u32, u8)>>);

/// Zones where pieces overlap outside any junction model: lanes of different roads (groups;
/// lanes one or two connections apart are one path, left to car following and the junction
/// rules), and a lane with a connection of a junction the lane does not touch (nor one
/// connection before or after it). The piece of lower index (a
/// lane before any connection) is the major side.
fn overlap_zones(
    twin: &Twin,
    lane_samples: &[Vec<(f64, [f64; 2])>],
    group_of: &[u32],
    lane_out: &[Vec<u32>],
    conn_to: &[u32],
    level: &[(i8, i8)],
) -> Zones {
    let nl = group_of.len();
    let np = lane_samples.len();
    // Lanes one or two connections after `a` (one vehicle's path: car following handles it).
    let next1 = |a: usize, b: usize| lane_out[a].iter().any(|&c| conn_to[c as usize] as usize == b);
    let next2 = |a: usize, b: usize| next1(a, b) || lane_out[a].iter().any(|&c| next1(conn_to[c as usize] as usize, b));
    // Within this distance (m) of a junction both lanes touch, their overlap is the
    // junction's (conflicts and hold points).
    const JUNCTION_END_M: f64 = 15.0;
    let near_end = |l: usize, s: f64, j: u32| {
        let ln = &twin.lanes[l];
        (ln.to_junction == Some(j) && s > ln.length_m - JUNCTION_END_M)
            || (ln.from_junction == Some(j) && s < JUNCTION_END_M)
    };
    let at_shared_junction = |a: usize, sa: f64, b: usize, sb: f64| {
        let (la, lb) = (&twin.lanes[a], &twin.lanes[b]);
        [la.from_junction, la.to_junction].into_iter().flatten().any(|j| {
            (lb.from_junction == Some(j) || lb.to_junction == Some(j)) && near_end(a, sa, j) && near_end(b, sb, j)
        })
    };
    let skip = |a: usize, b: usize| -> bool {
        if !levels_meet(level[a], level[b]) {
            return true;
        }
        if b >= nl {
            // Only lane-connection pairs (connection pairs are junction conflicts).
            if a >= nl {
                return true;
            }
            let c = &twin.lane_connections[b - nl];
            let l = &twin.lanes[a];
            return c.turn == Turn::UTurn
                || l.to_junction == Some(c.junction)
                || l.from_junction == Some(c.junction)
                || c.from_lane as usize == a
                || c.to_lane as usize == a
                || next1(c.to_lane as usize, a)
                || next1(a, c.from_lane as usize);
        }
        group_of[a] == group_of[b] || next2(a, b) || next2(b, a)
    };
    const CELL_M: f64 = 3.0;
    let cell = |p: [f64; 2]| ((p[0] / CELL_M).floor() as i64, (p[1] / CELL_M).floor() as i64);
    let mut grid: std::collections::HashMap<(i64, i64), Vec<(u32, u32)>> = std::collections::HashMap::new();
    for (l, smp) in lane_samples.iter().enumerate() {
        for (k, (_, p)) in smp.iter().enumerate() {
            grid.entry(cell(*p)).or_default().push((l as u32, k as u32));
        }
    }
    let d2 = LANE_ZONE_DIST_M * LANE_ZONE_DIST_M;
    let mut spans: std::collections::BTreeMap<(u32, u32), [f64; 4]> = std::collections::BTreeMap::new();
    for la in 0..np.min(nl) {
        for (sa, p) in &lane_samples[la] {
            let (cx, cy) = cell(*p);
            for dx in -1..=1 {
                for dy in -1..=1 {
                    let Some(v) = grid.get(&(cx + dx, cy + dy)) else { continue };
                    for &(lb, k) in v {
                        if lb as usize <= la || skip(la, lb as usize) {
                            continue;
                        }
                        let (sb, q) = lane_samples[lb as usize][k as usize];
                        if (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) >= d2 {
                            continue;
                        }
                        if (lb as usize) < nl && at_shared_junction(la, *sa, lb as usize, sb) {
                            continue;
                        }
                        let e = spans.entry((la as u32, lb)).or_insert([
                            f64::INFINITY,
                            f64::NEG_INFINITY,
                            f64::INFINITY,
                            f64::NEG_INFINITY,
                        ]);
                        e[0] = e[0].min(*sa);
                        e[1] = e[1].max(*sa);
                        e[2] = e[2].min(sb);
                        e[3] = e[3].max(sb);
                    }
                }
            }
        }
    }
    let mut zones = Vec::with_capacity(spans.len());
    let mut lane_zones: Vec<Vec<(u32, u8)>> = vec![Vec::new(); np];
    for ((a, b), e) in spans {
        let z = zones.len() as u32;
        zones.push([(a, e[0] - 0.5, e[1] + 0.5), (b, e[2] - 0.5, e[3] + 0.5)]);
        lane_zones[a as usize].push((z, 0));
        lane_zones[b as usize].push((z, 1));
    }
    (zones, lane_zones)
}

/// The point `t` of the way from `a` to `b` (the height not extrapolated).
fn lerp(a: [f64; 3], b: [f64; 3], t: f64) -> [f64; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t.clamp(0.0, 1.0)]
}

fn heading(a: [f64; 3], b: [f64; 3]) -> f64 {
    (b[1] - a[1]).atan2(b[0] - a[0])
}

fn wrap(a: f64) -> f64 {
    let t = std::f64::consts::TAU;
    let mut x = a.rem_euclid(t);
    if x > std::f64::consts::PI {
        x -= t;
    }
    x
}

fn is_left(t: Turn) -> bool {
    matches!(t, Turn::Left | Turn::SharpLeft | Turn::SlightLeft | Turn::UTurn)
}

impl Net {
    pub fn new(twin: &Twin, crossings: &CrossingMap) -> Net {
        let nl = twin.lanes.len();
        let nc = twin.lane_connections.len();
        let mut pts: Vec<Vec<[f64; 3]>> = Vec::with_capacity(nl + nc);
        for l in &twin.lanes {
            pts.push(l.centerline.clone());
        }
        for c in &twin.lane_connections {
            let mut p = c.path.clone();
            if p.len() < 2 {
                let a = twin.lanes[c.from_lane as usize].centerline.last().copied().unwrap_or([0.0; 3]);
                let b = twin.lanes[c.to_lane as usize].centerline.first().copied().unwrap_or(a);
                p = vec![a, b];
            }
            pts.push(p);
        }
        for p in pts.iter_mut() {
            if p.is_empty() {
                p.push([0.0; 3]);
            }
            if p.len() < 2 {
                let q = p[0];
                p.push([q[0] + 0.01, q[1], q[2]]);
            }
        }
        let cum: Vec<Vec<f64>> = pts
            .iter()
            .map(|p| {
                let mut acc = 0.0;
                let mut v = Vec::with_capacity(p.len());
                v.push(0.0);
                for w in p.windows(2) {
                    acc += ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt();
                    v.push(acc);
                }
                v
            })
            .collect();
        let len: Vec<f64> = cum.iter().map(|c| c.last().copied().unwrap_or(0.0).max(0.05)).collect();
        let mut level: Vec<(i8, i8)> = twin.lanes.iter().map(|l| (l.level, l.level)).collect();
        for c in &twin.lane_connections {
            let (a, b) = (level[c.from_lane as usize].0, level[c.to_lane as usize].0);
            level.push((a.min(b), a.max(b)));
        }
        // Raise every piece to its level (connections ramp between their lanes' levels).
        for (i, p) in pts.iter_mut().enumerate() {
            let (z0, z1) = if i < nl {
                let z = level[i].0 as f64 * LEVEL_HEIGHT_M;
                (z, z)
            } else {
                let c = &twin.lane_connections[i - nl];
                (
                    level[c.from_lane as usize].0 as f64 * LEVEL_HEIGHT_M,
                    level[c.to_lane as usize].0 as f64 * LEVEL_HEIGHT_M,
                )
            };
            if z0 == 0.0 && z1 == 0.0 {
                continue;
            }
            for (q, s) in p.iter_mut().zip(&cum[i]) {
                q[2] += z0 + (z1 - z0) * (s / len[i]).clamp(0.0, 1.0);
            }
        }
        let mut lane_out = vec![Vec::new(); nl];
        let mut lane_in = vec![Vec::new(); nl];
        let mut conn_from = Vec::with_capacity(nc);
        let mut conn_to = Vec::with_capacity(nc);
        for (ci, c) in twin.lane_connections.iter().enumerate() {
            // U-turns exist only at dead ends (the district's cut edges): vehicles leave
            // there instead.
            if c.turn != Turn::UTurn {
                lane_out[c.from_lane as usize].push(ci as u32);
                lane_in[c.to_lane as usize].push(ci as u32);
            }
            conn_from.push(c.from_lane);
            conn_to.push(c.to_lane);
        }
        let mut vmax: Vec<f64> = twin.lanes.iter().map(|l| l.speed_limit_mps.max(2.0)).collect();
        for (ci, c) in twin.lane_connections.iter().enumerate() {
            let p = &pts[nl + ci];
            let dh = wrap(heading(p[p.len() - 2], p[p.len() - 1]) - heading(p[0], p[1])).abs();
            let lim =
                twin.lanes[c.from_lane as usize].speed_limit_mps.min(twin.lanes[c.to_lane as usize].speed_limit_mps);
            let v = if dh > 0.15 { (A_LAT_MPS2 * len[nl + ci] / dh).sqrt().max(CURVE_MIN_MPS) } else { lim };
            // The tightest bend on the way counts too (an S-curve turns little end to end).
            let v = curve_speeds(p, &cum[nl + ci], v).iter().fold(v, |m, c| m.min(c.v_mps));
            vmax.push(v.min(lim).max(2.0));
        }
        let curves: Vec<Vec<Curve>> = (0..nl).map(|l| curve_speeds(&pts[l], &cum[l], vmax[l])).collect();
        // Groups: lanes joined by left/right neighbours.
        let mut group_of = vec![u32::MAX; nl];
        let mut groups: Vec<Vec<u32>> = Vec::new();
        for l in 0..nl {
            if group_of[l] != u32::MAX {
                continue;
            }
            let mut r = l as u32;
            let mut guard = 0;
            while let Some(x) = twin.lanes[r as usize].right {
                if x as usize >= nl || guard > 16 {
                    break;
                }
                r = x;
                guard += 1;
            }
            let g = groups.len() as u32;
            let mut members = Vec::new();
            let mut cur = Some(r);
            while let Some(x) = cur {
                if x as usize >= nl || group_of[x as usize] != u32::MAX {
                    break;
                }
                group_of[x as usize] = g;
                members.push(x);
                cur = twin.lanes[x as usize].left;
            }
            if group_of[l] == u32::MAX {
                group_of[l] = g;
                members.push(l as u32);
            }
            groups.push(members);
        }
        let group_next = group_graph(twin, &group_of, groups.len(), |_| true);
        let group_cost_s: Vec<f64> = groups
            .iter()
            .map(|m| {
                let l = m[0] as usize;
                (len[l] / vmax[l] + 3.0) * route_penalty(twin.lanes[l].road_class)
            })
            .collect();
        // Crossings per lane and hold points.
        let mut lane_cross: Vec<Vec<(f64, u32)>> = vec![Vec::new(); nl];
        for (l, v) in &crossings.crossings_of_lane {
            if (*l as usize) < nl {
                lane_cross[*l as usize] = v.clone();
            }
        }
        let mut hold_s = Vec::with_capacity(nl);
        let mut gate = Vec::with_capacity(nl);
        for (li, lane) in twin.lanes.iter().enumerate() {
            let l_end = len[li];
            let mut h = l_end - 0.5;
            for &(s, _) in &lane_cross[li] {
                if s > l_end - 25.0 && s - 3.5 < h {
                    h = s - 3.5;
                }
            }
            hold_s.push(h.max(0.5 * l_end).min(l_end - 0.2).max(0.0));
            let jc = lane.to_junction.and_then(|j| twin.junctions.get(j as usize)).map(|j| j.control);
            let g = match (&lane.stop_line, jc) {
                (_, Some(Control::SignalTagged | Control::SignalGuessed)) if lane.signal.is_some() => Gate::Signal,
                (Some(sl), _) if sl.kind == StopKind::Signal && lane.signal.is_some() => Gate::Signal,
                (Some(sl), _) if sl.kind == StopKind::Stop => Gate::Stop,
                (_, Some(Control::AllWayStop)) => Gate::Stop,
                (Some(sl), _) if sl.kind == StopKind::Yield => Gate::Yield,
                (_, Some(Control::Uncontrolled)) => Gate::Yield,
                _ => Gate::Free,
            };
            gate.push(g);
        }
        // Hold points clear of the junction's other paths: a vehicle waiting there must not
        // reach into a connection or lane of another road.
        let lane_samples: Vec<Vec<(f64, [f64; 2])>> = (0..nl).map(|l| sample(&pts[l], &cum[l], 1.0)).collect();
        let conn_samples: Vec<Vec<(f64, [f64; 2])>> =
            (0..nc).map(|ci| sample(&pts[nl + ci], &cum[nl + ci], 0.5)).collect();
        // Foreign paths: every connection and the last/first 30 m of every lane, from any
        // junction (dual carriageways and close nodes make separate junctions overlap).
        // Entries: (group of the path's lane, group a connection leads into, point).
        let mut foreign: Vec<ForeignPoint> = Vec::new();
        for (ci, c) in twin.lane_connections.iter().enumerate() {
            if c.turn == Turn::UTurn {
                continue;
            }
            let (gf, gt) = (group_of[c.from_lane as usize], group_of[c.to_lane as usize]);
            let fl = c.from_lane as usize;
            let mut ext: Vec<(f64, [f64; 2])> = lane_samples[fl]
                .iter()
                .filter(|(s, _)| *s >= len[fl] - BUS_LENGTH_M)
                .map(|(s, p)| (s - len[fl], *p))
                .collect();
            ext.extend(conn_samples[ci].iter().copied());
            let tl = c.to_lane as usize;
            let lc = len[nl + ci];
            ext.extend(lane_samples[tl].iter().filter(|(s, _)| *s <= BUS_LENGTH_M).map(|(s, p)| (lc + s, *p)));
            let body = chord_points(&ext);
            let lv = level[nl + ci];
            foreign.extend(conn_samples[ci].iter().chain(body.iter()).map(|(_, p)| (gf, gt, lv, *p)));
        }
        for l in 0..nl {
            let g = group_of[l];
            let lenl = len[l];
            foreign.extend(
                lane_samples[l]
                    .iter()
                    .filter(|(s, _)| *s <= 30.0 || *s >= lenl - 30.0)
                    .map(|(_, p)| (g, g, level[l], *p)),
            );
        }
        const CELL_M: f64 = 5.0;
        let cell = |p: [f64; 2]| ((p[0] / CELL_M).floor() as i64, (p[1] / CELL_M).floor() as i64);
        let mut grid: std::collections::HashMap<(i64, i64), Vec<u32>> = std::collections::HashMap::new();
        for (i, f) in foreign.iter().enumerate() {
            grid.entry(cell(f.3)).or_default().push(i as u32);
        }
        let mut clear_s: Vec<f64> = (0..nl).map(|l| (len[l] - 0.5).max(0.0)).collect();
        for l in 0..nl {
            if lane_out[l].is_empty() {
                continue;
            }
            let g = group_of[l];
            let lenl = len[l];
            let mut hit = f64::INFINITY;
            for (s, p) in lane_samples[l].iter().filter(|(s, _)| *s >= lenl - 30.0) {
                if *s >= hit {
                    continue;
                }
                let (cx, cy) = cell(*p);
                let near = (-1..=1).any(|dx| {
                    (-1..=1).any(|dy| {
                        grid.get(&(cx + dx, cy + dy)).is_some_and(|v| {
                            v.iter().any(|&i| {
                                let (fg, ft, fl, q) = foreign[i as usize];
                                fg != g
                                    && ft != g
                                    && levels_meet(fl, level[l])
                                    && (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) < HOLD_CLEAR_M * HOLD_CLEAR_M
                            })
                        })
                    })
                });
                if near {
                    hit = *s;
                }
            }
            if hit.is_finite() {
                let h = &mut hold_s[l];
                *h = h.min((hit - 1.5).max(0.5 * lenl));
                clear_s[l] = (hit - 1.5).max(0.0);
            }
        }
        let mut piece_samples: Vec<Vec<(f64, [f64; 2])>> = lane_samples
            .iter()
            .map(|v| {
                let mut v = v.clone();
                let body = chord_points(&v);
                v.extend(body);
                v
            })
            .collect();
        for cs in &conn_samples {
            let mut v = cs.clone();
            let body = chord_points(&v);
            v.extend(body);
            piece_samples.push(v);
        }
        let (zones, lane_zones) = overlap_zones(twin, &piece_samples, &group_of, &lane_out, &conn_to, &level);
        let sources: Vec<u32> = (0..nl as u32).filter(|l| lane_in[*l as usize].is_empty()).collect();
        let sinks: Vec<u32> = (0..nl as u32).filter(|l| lane_out[*l as usize].is_empty()).collect();
        let cdf = |lanes: &mut dyn Iterator<Item = f64>| -> Vec<f64> {
            let mut acc = 0.0;
            lanes
                .map(|w| {
                    acc += w;
                    acc
                })
                .collect()
        };
        let lane_cdf = cdf(&mut twin.lanes.iter().map(|l| l.length_m.max(1.0) * demand_weight(l.road_class)));
        let source_cdf = cdf(&mut sources.iter().map(|&l| demand_weight(twin.lanes[l as usize].road_class)));
        let sink_cdf = cdf(&mut sinks.iter().map(|&l| demand_weight(twin.lanes[l as usize].road_class)));
        // Extended paths: the lane tail from the hold point, the connection, the exit head.
        let samples: Vec<Vec<(f64, [f64; 2])>> = (0..nc)
            .map(|ci| {
                let c = &twin.lane_connections[ci];
                let (fl, tl) = (c.from_lane as usize, c.to_lane as usize);
                let mut v: Vec<(f64, [f64; 2])> =
                    lane_samples[fl].iter().filter(|(s, _)| *s >= hold_s[fl]).map(|(s, p)| (s - len[fl], *p)).collect();
                v.extend(conn_samples[ci].iter().copied());
                let head = 12.0f64.min(0.5 * len[tl]);
                v.extend(lane_samples[tl].iter().filter(|(s, _)| *s <= head).map(|(s, p)| (len[nl + ci] + s, *p)));
                // Where the bodies of long vehicles cut the corners.
                let body = chord_points(&v);
                v.extend(body);
                v
            })
            .collect();
        // Candidate pairs: any two connections (of any junctions) whose extended paths come
        // closer than the conflict distance; paths of separate junctions overlap where
        // dual carriageways and close nodes make junctions share space.
        const PAIR_CELL_M: f64 = 4.0;
        let pcell = |p: [f64; 2]| ((p[0] / PAIR_CELL_M).floor() as i64, (p[1] / PAIR_CELL_M).floor() as i64);
        // (Only looked up, never iterated: a hash map keeps the result independent of its order.)
        let mut pgrid: std::collections::HashMap<(i64, i64), Vec<u32>> = std::collections::HashMap::new();
        for (ci, c) in twin.lane_connections.iter().enumerate() {
            if c.turn == Turn::UTurn {
                continue;
            }
            for (_, p) in &samples[ci] {
                let v = pgrid.entry(pcell(*p)).or_default();
                if v.last() != Some(&(ci as u32)) {
                    v.push(ci as u32);
                }
            }
        }
        // Sorted and unique, like a set.
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut partners: Vec<u32> = Vec::new();
        for (ci, c) in twin.lane_connections.iter().enumerate() {
            if c.turn == Turn::UTurn {
                continue;
            }
            let a = ci as u32;
            partners.clear();
            for (_, p) in &samples[ci] {
                let (cx, cy) = pcell(*p);
                for dx in -1..=1 {
                    for dy in -1..=1 {
                        if let Some(v) = pgrid.get(&(cx + dx, cy + dy)) {
                            for &b in v {
                                if b <= a {
                                    continue;
                                }
                                let cb = &twin.lane_connections[b as usize];
                                if !levels_meet(level[nl + a as usize], level[nl + b as usize]) {
                                    continue;
                                }
                                // Consecutive connections of one path (through a short lane).
                                if cb.junction != c.junction && (c.to_lane == cb.from_lane || cb.to_lane == c.from_lane)
                                {
                                    continue;
                                }
                                partners.push(b);
                            }
                        }
                    }
                }
            }
            partners.sort_unstable();
            partners.dedup();
            pairs.extend(partners.iter().map(|&b| (a, b)));
        }
        let mut conflicts: Vec<Vec<Conflict>> = vec![Vec::new(); nc];
        let d2 = CONFLICT_DIST_M * CONFLICT_DIST_M;
        // Each path's samples, farthest along first.
        let far_first: Vec<Vec<u32>> = samples
            .iter()
            .map(|v| {
                let mut o: Vec<u32> = (0..v.len() as u32).collect();
                o.sort_by(|&i, &j| v[j as usize].0.total_cmp(&v[i as usize].0));
                o
            })
            .collect();
        for &(a, b) in &pairs {
            let same_junction =
                twin.lane_connections[a as usize].junction == twin.lane_connections[b as usize].junction;
            let control = if same_junction {
                twin.junctions.get(twin.lane_connections[a as usize].junction as usize).map(|j| j.control)
            } else {
                // Paths of separate junctions: reservations only, no priority.
                None
            };
            {
                {
                    let (sa, sb) = (&samples[a as usize], &samples[b as usize]);
                    let (ca, cb) = (&twin.lane_connections[a as usize], &twin.lane_connections[b as usize]);
                    let (pa, pb) = (&pts[nl + a as usize], &pts[nl + b as usize]);
                    let same_dir = |x: f64, y: f64| wrap(x - y).abs() < PARALLEL_MAX_RAD;
                    let parallel = ca.from_lane != cb.from_lane
                        && ca.to_lane != cb.to_lane
                        && same_dir(heading(pa[0], pa[1]), heading(pb[0], pb[1]))
                        && same_dir(
                            heading(pa[pa.len() - 2], pa[pa.len() - 1]),
                            heading(pb[pb.len() - 2], pb[pb.len() - 1]),
                        );
                    let d2 = if parallel { PARALLEL_CONFLICT_DIST_M.powi(2) } else { d2 };
                    // The farthest sample of each path with a sample of the other closer than
                    // the conflict distance: scanned from the farthest down, so the first hit
                    // is the answer.
                    let close = |pa: &[f64; 2], pb: &[f64; 2]| (pa[0] - pb[0]).powi(2) + (pa[1] - pb[1]).powi(2) < d2;
                    let Some(end_a) = far_first[a as usize]
                        .iter()
                        .map(|&i| &sa[i as usize])
                        .find(|(_, pa)| sb.iter().any(|(_, pb)| close(pa, pb)))
                        .map(|x| x.0)
                    else {
                        continue;
                    };
                    let end_b = far_first[b as usize]
                        .iter()
                        .map(|&i| &sb[i as usize])
                        .find(|(_, pb)| sa.iter().any(|(_, pa)| close(pa, pb)))
                        .map_or(f64::NEG_INFINITY, |x| x.0);
                    let pri = |x: &swm_twin::LaneConnection,
                               y: &swm_twin::LaneConnection,
                               px: &[[f64; 3]],
                               py: &[[f64; 3]]| {
                        // Does x yield to y?
                        if x.from_lane == y.from_lane {
                            return false;
                        }
                        match control {
                            Some(Control::Priority) if x.major != y.major => y.major,
                            Some(Control::Uncontrolled) | Some(Control::Priority) => {
                                let hx = heading(px[0], px[1]);
                                let hy = heading(py[0], py[1]);
                                let rel = wrap(hy - hx);
                                if rel.abs() > 2.6 {
                                    // Opposite: left turns yield to the others.
                                    is_left(x.turn) && !is_left(y.turn)
                                } else {
                                    // Right before left: y comes from x's right.
                                    rel > 0.5
                                }
                            }
                            _ => false,
                        }
                    };
                    conflicts[a as usize].push(Conflict {
                        other: b,
                        my_end_m: end_a + 0.5,
                        other_end_m: end_b + 0.5,
                        yield_to_other: pri(ca, cb, pa, pb),
                        long_only: false,
                    });
                    conflicts[b as usize].push(Conflict {
                        other: a,
                        my_end_m: end_b + 0.5,
                        other_end_m: end_a + 0.5,
                        yield_to_other: pri(cb, ca, pb, pa),
                        long_only: false,
                    });
                }
            }
        }
        body_conflicts(twin, &lane_samples, &conn_samples, &len, &level, &mut conflicts);
        let release_m: Vec<f64> =
            (0..nc).map(|c| conflicts[c].iter().map(|x| x.my_end_m).fold(len[nl + c], f64::max)).collect();
        let (intrusions, intruded_by) = intrusions(twin, &lane_samples, &conn_samples, &len, &hold_s, &level);
        let mut geom = Vec::with_capacity(pts.iter().map(Vec::len).sum());
        let mut geom_off = Vec::with_capacity(pts.len() + 1);
        let mut geom_cum_m = Vec::with_capacity(geom.capacity());
        for (p, c) in pts.iter().zip(&cum) {
            geom_off.push(geom.len() as u32);
            for k in 0..p.len() {
                let heading_rad = if k == 0 { 0.0 } else { heading(p[k - 1], p[k]) };
                geom.push(GeomPt { p: p[k], heading_rad });
                geom_cum_m.push(c[k]);
            }
        }
        geom_off.push(geom.len() as u32);
        let lane_groups = LaneGroups::new(lane_groups_of(twin, &lane_out, &conn_to, &group_of, |_| true));
        let route_index = RouteIndex::new(&group_next);
        let turn_back: Vec<bool> = (0..nc)
            .map(|ci| {
                // From the lanes' end directions: a short connection has too few points
                // to show its turn.
                let (a, b) = (&pts[conn_from[ci] as usize], &pts[conn_to[ci] as usize]);
                if twin.lane_connections[ci].turn == Turn::UTurn || a.len() < 2 || b.len() < 2 {
                    return false;
                }
                let turn = wrap(heading(b[0], b[1]) - heading(a[a.len() - 2], a[a.len() - 1])).abs();
                turn > TURN_BACK_RAD && len[nl + ci] / turn < TURN_BACK_MAX_RADIUS_M
            })
            .collect();
        let group_next_long = group_graph(twin, &group_of, groups.len(), |c| !turn_back[c as usize]);
        let lane_groups_long =
            LaneGroups::new(lane_groups_of(twin, &lane_out, &conn_to, &group_of, |c| !turn_back[c as usize]));
        let route_index_long = RouteIndex::new(&group_next_long);
        Net {
            intrusions,
            intruded_by,
            zones,
            lane_zones,
            level,
            release_m,
            clear_s,
            n_lanes: nl,
            geom,
            geom_cum_m,
            geom_off,
            lane_groups,
            len,
            vmax,
            curves,
            lane_out,
            lane_in,
            conflicts,
            group_of,
            groups,
            group_next,
            group_cost_s,
            hold_s,
            gate,
            sources,
            sinks,
            lane_cdf,
            source_cdf,
            sink_cdf,
            crossings: lane_cross,
            conn_from,
            conn_to,
            route_index,
            turn_back,
            group_next_long,
            lane_groups_long,
            route_index_long,
        }
    }

    /// The index that `u` in `[0, 1)` picks from a cumulative weight table (`None` when
    /// the table is empty or all zero).
    pub fn pick_weighted(cdf: &[f64], u: f64) -> Option<usize> {
        let total = *cdf.last()?;
        if total <= 0.0 {
            return None;
        }
        Some(cdf.partition_point(|&c| c <= u * total).min(cdf.len() - 1))
    }

    /// How far the conflict zone of connection `c` reaches into its exit lane (m).
    pub fn zone_tail_m(&self, c: u32) -> f64 {
        (self.release_m[c as usize] - self.len[self.n_lanes + c as usize]).max(0.0)
    }

    /// The segment of piece `p` holding `s` (its two points), where `s` falls on it, and its
    /// heading.
    fn segment_at(&self, p: u32, s: f64) -> ([f64; 3], [f64; 3], f64, f64) {
        let (k, t, _) = self.locate(p, s);
        (self.geom[k - 1].p, self.geom[k].p, t, self.geom[k].heading_rad)
    }

    /// Where `s` falls along piece `p`: the index in `geom` of the end of its segment, the
    /// fraction of the segment (extrapolated beyond the piece's ends, clamped inside), and
    /// the segment's length (m).
    fn locate(&self, p: u32, s: f64) -> (usize, f64, f64) {
        let off = self.geom_off[p as usize] as usize;
        let c = &self.geom_cum_m[off..self.geom_off[p as usize + 1] as usize];
        let k = c.partition_point(|&q| q <= s).clamp(1, c.len() - 1);
        self.on_segment(off, c, k, s)
    }

    /// [`Net::locate`] of `s` on the segment ending at piece-local point `k`.
    fn on_segment(&self, off: usize, c: &[f64], k: usize, s: f64) -> (usize, f64, f64) {
        let n = c.len();
        let seg = c[k] - c[k - 1];
        let t = (s - c[k - 1]) / seg.max(1e-9);
        let t = if k == 1 || k == n - 1 { t } else { t.clamp(0.0, 1.0) };
        (off + k, t, seg)
    }

    /// The polyline of piece `p` (a lane, or `n_lanes +` a connection).
    pub fn points(&self, p: u32) -> Vec<[f64; 3]> {
        self.geom[self.geom_off[p as usize] as usize..self.geom_off[p as usize + 1] as usize]
            .iter()
            .map(|q| q.p)
            .collect()
    }

    /// Point at `s` along piece `p` (as [`Net::point_at`], without the heading).
    pub fn position_at(&self, p: u32, s: f64) -> [f64; 3] {
        let (a, b, t, _) = self.segment_at(p, s);
        lerp(a, b, t)
    }

    /// The points `s_front_m` and `s_rear_m <= s_front_m` along piece `p` (each as
    /// [`Net::position_at`]), and the segment both fall on if they share one: an index of
    /// the flat polylines, whose heading [`Net::segment_heading_rad`] gives (`None` also for
    /// a degenerate segment, shorter than 1 µm, which has none). The rear's search starts
    /// from the front's segment: a vehicle's body mostly lies on one.
    pub(crate) fn front_rear_on_piece(
        &self,
        p: u32,
        s_front_m: f64,
        s_rear_m: f64,
    ) -> ([f64; 3], [f64; 3], Option<usize>) {
        let off = self.geom_off[p as usize] as usize;
        let c = &self.geom_cum_m[off..self.geom_off[p as usize + 1] as usize];
        let kf = c.partition_point(|&q| q <= s_front_m).clamp(1, c.len() - 1);
        // The rear's partition point is at most the front's; it is the front's when the
        // segment's start is not beyond the rear (clamping included).
        let kr =
            if c[kf - 1] <= s_rear_m { kf } else { c[..kf].partition_point(|&q| q <= s_rear_m).clamp(1, c.len() - 1) };
        let (gf, tf, seg) = self.on_segment(off, c, kf, s_front_m);
        let (gr, tr, _) = self.on_segment(off, c, kr, s_rear_m);
        let f = lerp(self.geom[gf - 1].p, self.geom[gf].p, tf);
        let r = lerp(self.geom[gr - 1].p, self.geom[gr].p, tr);
        (f, r, (gf == gr && seg > 1e-6).then_some(gf))
    }

    /// Heading of a segment from [`Net::front_rear_on_piece`] (rad).
    pub(crate) fn segment_heading_rad(&self, segment: usize) -> f64 {
        self.geom[segment].heading_rad
    }

    /// Point and heading at `s` along piece `p` (clamped, extrapolated beyond the ends).
    pub fn point_at(&self, p: u32, s: f64) -> ([f64; 3], f64) {
        let (a, b, t, h) = self.segment_at(p, s);
        (lerp(a, b, t), h)
    }

    /// The connection from `lane` into group `g` (the one keeping the lane's position;
    /// the first such in `lane_out` order on a tie).
    /// A long vehicle (`long`) takes no turn-back ([`TURN_BACK_RAD`]).
    pub fn conn_to_group(&self, lane: u32, g: u32, long: bool) -> Option<u32> {
        let groups = if long { &self.lane_groups_long } else { &self.lane_groups };
        groups.of(lane).iter().find(|(gg, _)| *gg == g).map(|(_, c)| *c)
    }

    /// The cheapest route (lane groups) from `from` to `to`, both included, with `cost_s`
    /// the cost of entering each group (s): [`Net::group_cost_s`] free-flowing, or the
    /// simulator's live estimate; when `to` is `None` or unreachable, to the cheapest
    /// reachable sink group (the lower group index on a tie). Dijkstra; the graph's
    /// strongly connected components, computed once, tell an unreachable `to` at once. A
    /// long vehicle (`long`: a bus or a truck) routes without the turn-backs
    /// ([`TURN_BACK_RAD`]).
    pub fn route(
        &self,
        from: u32,
        to: Option<u32>,
        sink_group: &[bool],
        cost_s: &[f64],
        long: bool,
    ) -> Option<Vec<u32>> {
        if long {
            self.route_index_long.route(&self.group_next_long, from, to, sink_group, cost_s)
        } else {
            self.route_index.route(&self.group_next, from, to, sink_group, cost_s)
        }
    }
}

/// The lane-group graph over the connections `keep` accepts (U-turns never: vehicles leave
/// at dead ends): each group's successors, sorted.
fn group_graph(twin: &Twin, group_of: &[u32], n_groups: usize, keep: impl Fn(u32) -> bool) -> Vec<Vec<u32>> {
    let mut next: Vec<Vec<u32>> = vec![Vec::new(); n_groups];
    for (ci, c) in twin.lane_connections.iter().enumerate() {
        if c.turn != Turn::UTurn && keep(ci as u32) {
            next[group_of[c.from_lane as usize] as usize].push(group_of[c.to_lane as usize]);
        }
    }
    for v in next.iter_mut() {
        v.sort_unstable();
        v.dedup();
    }
    next
}

/// Per lane, each group its connections reach with the connection into it, flat (lane `l`'s
/// are `entries[off[l]..off[l + 1]]`): planning looks them up for every lane ahead of every
/// vehicle, and one dense offset array misses the cache less than a `Vec` per lane.
#[derive(Clone, Debug, Default)]
struct LaneGroups {
    off: Vec<u32>,
    entries: Vec<(u32, u32)>,
}

impl LaneGroups {
    fn new(per_lane: Vec<Vec<(u32, u32)>>) -> Self {
        let mut off = Vec::with_capacity(per_lane.len() + 1);
        let mut entries = Vec::new();
        for l in per_lane {
            off.push(entries.len() as u32);
            entries.extend(l);
        }
        off.push(entries.len() as u32);
        LaneGroups { off, entries }
    }

    fn of(&self, lane: u32) -> &[(u32, u32)] {
        &self.entries[self.off[lane as usize] as usize..self.off[lane as usize + 1] as usize]
    }
}

/// Per lane, each group its connections that `keep` accepts reach, with the connection into
/// it that keeps the lane's position (the first such in `lane_out` order on a tie).
fn lane_groups_of(
    twin: &Twin,
    lane_out: &[Vec<u32>],
    conn_to: &[u32],
    group_of: &[u32],
    keep: impl Fn(u32) -> bool,
) -> Vec<Vec<(u32, u32)>> {
    lane_out
        .iter()
        .enumerate()
        .map(|(l, outs)| {
            let idx = twin.lanes[l].index_from_right as i32;
            // (group, best distance in lane positions, connection), first best kept.
            let mut best: Vec<(u32, i32, u32)> = Vec::new();
            for &c in outs.iter().filter(|&&c| keep(c)) {
                let to = conn_to[c as usize];
                let g = group_of[to as usize];
                let d = (twin.lanes[to as usize].index_from_right as i32 - idx).abs();
                match best.iter_mut().find(|b| b.0 == g) {
                    Some(b) if d < b.1 => *b = (g, d, c),
                    Some(_) => {}
                    None => best.push((g, d, c)),
                }
            }
            best.into_iter().map(|(g, _, c)| (g, c)).collect()
        })
        .collect()
}

/// A vehicle waits with its front at least this far (m) from every foreign path and body
/// chord: a bus beside a car, plus margin (2.5 m already starves the minor road of a
/// priority T-junction).
const HOLD_CLEAR_M: f64 = 2.4;

/// Length of the longest vehicle (m): its body cuts the corners of curved paths.
const BUS_LENGTH_M: f64 = 12.0;

/// Points covered by the bodies of vehicles 8 and 12 m long whose front follows the samples
/// `(t, point)` (rear trailing along the same path), where they leave the path by more than
/// 0.3 m; each tagged with the front's `t` (the body clears a point once the rear passes
/// that `t`).
fn chord_points(samples: &[(f64, [f64; 2])]) -> Vec<(f64, [f64; 2])> {
    let mut out = Vec::new();
    for (i, &(t, p)) in samples.iter().enumerate().step_by(2) {
        for body_m in [8.0, BUS_LENGTH_M] {
            let j = samples[..=i].partition_point(|(tj, _)| *tj < t - body_m).min(i);
            if j == i {
                continue;
            }
            let q = samples[j].1;
            let mid = samples[(i + j) / 2].1;
            let m = [(p[0] + q[0]) * 0.5, (p[1] + q[1]) * 0.5];
            if (m[0] - mid[0]).powi(2) + (m[1] - mid[1]).powi(2) < 0.09 {
                continue;
            }
            for f in [0.25, 0.5, 0.75] {
                out.push((t, [p[0] + (q[0] - p[0]) * f, p[1] + (q[1] - p[1]) * f]));
            }
        }
    }
    out
}

fn sample(pts: &[[f64; 3]], cum: &[f64], step_m: f64) -> Vec<(f64, [f64; 2])> {
    let total = *cum.last().unwrap_or(&0.0);
    let n = ((total / step_m).ceil() as usize).max(1);
    let mut out = Vec::with_capacity(n + 1);
    let mut k = 1;
    for i in 0..=n {
        let s = total * i as f64 / n as f64;
        while k < pts.len() - 1 && cum[k] < s {
            k += 1;
        }
        let seg = (cum[k] - cum[k - 1]).max(1e-9);
        let t = ((s - cum[k - 1]) / seg).clamp(0.0, 1.0);
        let (a, b) = (pts[k - 1], pts[k]);
        out.push((s, [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]));
    }
    out
}

/// Width of the widest vehicle (m): sweeps and standing boxes are this wide.
const SWEEP_WIDTH_M: f64 = 2.5;
/// How far before a hold point intrusions are looked for (m).
const INTRUSION_REACH_M: f64 = 40.0;

/// Point at `t` along samples `(t, point)` (linear, clamped).
fn at_t(samples: &[(f64, [f64; 2])], t: f64) -> [f64; 2] {
    let k = samples.partition_point(|(ti, _)| *ti < t);
    if k == 0 {
        return samples[0].1;
    }
    if k >= samples.len() {
        return samples[samples.len() - 1].1;
    }
    let ((t0, a), (t1, b)) = (samples[k - 1], samples[k]);
    let u = ((t - t0) / (t1 - t0).max(1e-9)).clamp(0.0, 1.0);
    [a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u]
}

/// The box of a body whose front is at `t` and whose rear trails `body_m` behind along the
/// samples, as the simulator records it (as long as the body, centred between them).
fn body_box(samples: &[(f64, [f64; 2])], t: f64, body_m: f64) -> OrientedBox {
    let f = at_t(samples, t);
    let r = at_t(samples, t - body_m);
    let (dx, dy) = (f[0] - r[0], f[1] - r[1]);
    let chord = (dx * dx + dy * dy).sqrt();
    OrientedBox {
        center: [(f[0] + r[0]) * 0.5, (f[1] + r[1]) * 0.5],
        heading_rad: if chord > 1e-6 { dy.atan2(dx) } else { 0.0 },
        // Recorded boxes are as long as the vehicle, centred between front and rear.
        length_m: body_m,
        width_m: SWEEP_WIDTH_M,
    }
}

/// The path bodies follow through connection `c` (samples `conn`, `lc` long): the last
/// bus length (+ 1 m) of its approach lane, the connection, the first bus length (+ 1 m)
/// of its exit lane, as `(distance from the connection's start, point)`.
fn body_path(
    c: &swm_twin::LaneConnection,
    conn: &[(f64, [f64; 2])],
    lane_samples: &[Vec<(f64, [f64; 2])>],
    len: &[f64],
    lc: f64,
) -> Vec<(f64, [f64; 2])> {
    let (fl, tl) = (c.from_lane as usize, c.to_lane as usize);
    let mut ext: Vec<(f64, [f64; 2])> = lane_samples[fl]
        .iter()
        .filter(|(s, _)| *s >= len[fl] - BUS_LENGTH_M - 1.0)
        .map(|(s, p)| (s - len[fl], *p))
        .collect();
    ext.extend(conn.iter().copied());
    ext.extend(lane_samples[tl].iter().filter(|(s, _)| *s <= BUS_LENGTH_M + 1.0).map(|(s, p)| (lc + s, *p)));
    ext.sort_by(|a, b| a.0.total_cmp(&b.0));
    ext
}

/// Conflicts the paths' centre lines miss: two connections of one junction whose
/// vehicles' bodies (4.5 m cars, 12 m buses; fronts from the connection's start to 14 m
/// into the exit lane, rears trailing along the path from the approach lane) reach
/// each other, where the centre lines stay [`CONFLICT_DIST_M`] apart (a bus cutting its
/// corner into the mouth of a lane beside its own). Added to `conflicts` with the rear
/// positions up to which they reach, `long_only`: two cars' bodies that graze where the
/// centre lines keep apart pass (as drivers squeeze by); the clearance guard still keeps
/// them apart.
fn body_conflicts(
    twin: &Twin,
    lane_samples: &[Vec<(f64, [f64; 2])>],
    conn_samples: &[Vec<(f64, [f64; 2])>],
    len: &[f64],
    level: &[(i8, i8)],
    conflicts: &mut [Vec<Conflict>],
) {
    const CAR_M: f64 = 4.5;
    let nl = lane_samples.len();
    // Per connection: the bodies along it and their bound.
    // (front t, body length, box) per body, and a bounding circle (x, y, r) of them all.
    type Sweep = (Vec<(f64, f64, OrientedBox)>, [f64; 3]);
    let sweeps: Vec<Sweep> = twin
        .lane_connections
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            if c.turn == Turn::UTurn || conn_samples[ci].is_empty() {
                return (Vec::new(), [0.0; 3]);
            }
            let tl = c.to_lane as usize;
            let lc = len[nl + ci];
            let ext = body_path(c, &conn_samples[ci], lane_samples, len, lc);
            let mut out = Vec::new();
            for body_m in [CAR_M, BUS_LENGTH_M] {
                let mut t = 0.0;
                while t <= lc + (BUS_LENGTH_M + 2.0).min(len[tl]) {
                    out.push((t, body_m, body_box(&ext, t, body_m)));
                    t += 1.0;
                }
            }
            let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
            for (_, _, b) in &out {
                let r = b.bounding_radius_m();
                for k in 0..2 {
                    lo[k] = lo[k].min(b.center[k] - r);
                    hi[k] = hi[k].max(b.center[k] + r);
                }
            }
            let bound = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0, 0.5 * (hi[0] - lo[0]).hypot(hi[1] - lo[1])];
            (out, bound)
        })
        .collect();
    let mut by_junction: std::collections::BTreeMap<u32, Vec<u32>> = std::collections::BTreeMap::new();
    for (ci, c) in twin.lane_connections.iter().enumerate() {
        if !sweeps[ci].0.is_empty() {
            by_junction.entry(c.junction).or_default().push(ci as u32);
        }
    }
    for members in by_junction.values() {
        for (i, &a) in members.iter().enumerate() {
            for &b in &members[i + 1..] {
                let (ca, cb) = (&twin.lane_connections[a as usize], &twin.lane_connections[b as usize]);
                if ca.from_lane == cb.from_lane
                    || ca.to_lane == cb.to_lane
                    || !levels_meet(level[nl + a as usize], level[nl + b as usize])
                    || conflicts[a as usize].iter().any(|x| x.other == b)
                {
                    continue;
                }
                let ((sa, ba), (sb, bb)) = (&sweeps[a as usize], &sweeps[b as usize]);
                if (ba[0] - bb[0]).hypot(ba[1] - bb[1]) > ba[2] + bb[2] {
                    continue;
                }
                let (mut end_a, mut end_b, mut any) = (f64::NEG_INFINITY, f64::NEG_INFINITY, false);
                for (ta, la, xa) in sa {
                    let ra = xa.bounding_radius_m();
                    for (tb, lb, xb) in sb {
                        if *la == CAR_M && *lb == CAR_M {
                            continue;
                        }
                        let d2 = (xa.center[0] - xb.center[0]).powi(2) + (xa.center[1] - xb.center[1]).powi(2);
                        if d2 >= (ra + xb.bounding_radius_m()).powi(2) || xa.overlap_depth_m(xb) <= 0.0 {
                            continue;
                        }
                        any = true;
                        end_a = end_a.max(ta - la);
                        end_b = end_b.max(tb - lb);
                    }
                }
                if !any {
                    continue;
                }
                let (ea, eb) = (end_a.max(0.0) + 0.5, end_b.max(0.0) + 0.5);
                conflicts[a as usize].push(Conflict {
                    other: b,
                    my_end_m: ea,
                    other_end_m: eb,
                    yield_to_other: false,
                    long_only: true,
                });
                conflicts[b as usize].push(Conflict {
                    other: a,
                    my_end_m: eb,
                    other_end_m: ea,
                    yield_to_other: false,
                    long_only: true,
                });
            }
        }
    }
}

/// A point of a foreign path: (group of the path's lane, group it leads into, levels, point).
type ForeignPoint = (u32, u32, (i8, i8), [f64; 2]);

type Intrusions = (Vec<Vec<(u32, f64, f64)>>, Vec<Vec<(u32, f64, f64)>>);

/// Where the sweep of a connection (fronts of 4.5 and 12 m bodies from its start to 12 m
/// into its exit lane, rears trailing along the path) reaches the box of a vehicle standing
/// near the end of another lane: per lane `(connection, safe_s car, safe_s long)` with the
/// farthest front positions of a car (4.5 m) and of a bus or truck (12 m) clear of that
/// sweep, and per connection the same with the lane.
fn intrusions(
    twin: &Twin,
    lane_samples: &[Vec<(f64, [f64; 2])>],
    conn_samples: &[Vec<(f64, [f64; 2])>],
    len: &[f64],
    hold_s: &[f64],
    level: &[(i8, i8)],
) -> Intrusions {
    let nl = lane_samples.len();
    let nc = conn_samples.len();
    const CELL_M: f64 = 10.0;
    let cell = |p: [f64; 2]| ((p[0] / CELL_M).floor() as i64, (p[1] / CELL_M).floor() as i64);
    // Lane ends (the stretch where vehicles stand) by grid cell.
    let mut grid: std::collections::HashMap<(i64, i64), Vec<u32>> = std::collections::HashMap::new();
    for l in 0..nl {
        for (s, p) in &lane_samples[l] {
            if *s >= hold_s[l] - INTRUSION_REACH_M - 5.0 && *s <= hold_s[l] + 1.0 {
                let v = grid.entry(cell(*p)).or_default();
                if v.last() != Some(&(l as u32)) {
                    v.push(l as u32);
                }
            }
        }
    }
    let mut by_lane: Vec<Vec<(u32, f64, f64)>> = vec![Vec::new(); nl];
    let mut by_conn: Vec<Vec<(u32, f64, f64)>> = vec![Vec::new(); nc];
    for (ci, c) in twin.lane_connections.iter().enumerate() {
        if c.turn == Turn::UTurn || conn_samples[ci].is_empty() {
            continue;
        }
        let (fl, tl) = (c.from_lane as usize, c.to_lane as usize);
        let lc = len[nl + ci];
        let ext = body_path(c, &conn_samples[ci], lane_samples, len, lc);
        let mut sweep: Vec<OrientedBox> = Vec::new();
        let mut t = 0.0;
        while t <= lc + BUS_LENGTH_M {
            for body_m in [4.5, BUS_LENGTH_M] {
                sweep.push(body_box(&ext, t, body_m));
            }
            t += 1.0;
        }
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for b in &sweep {
            let r = b.bounding_radius_m();
            for k in 0..2 {
                lo[k] = lo[k].min(b.center[k] - r);
                hi[k] = hi[k].max(b.center[k] + r);
            }
        }
        let mut cand: Vec<u32> = Vec::new();
        let (c0, c1) = (cell([lo[0] - 3.0, lo[1] - 3.0]), cell([hi[0] + 3.0, hi[1] + 3.0]));
        for cx in c0.0..=c1.0 {
            for cy in c0.1..=c1.1 {
                if let Some(v) = grid.get(&(cx, cy)) {
                    cand.extend(v.iter().copied());
                }
            }
        }
        cand.sort_unstable();
        cand.dedup();
        for l in cand {
            let lu = l as usize;
            if lu == fl || lu == tl || !levels_meet(level[lu], level[nl + ci]) {
                continue;
            }
            let smp = &lane_samples[lu];
            if smp.len() < 2 {
                continue;
            }
            let hits = |s: f64, body_m: f64| {
                let b = body_box(smp, s, body_m);
                let rb = b.bounding_radius_m();
                sweep.iter().any(|x| {
                    let d2 = (x.center[0] - b.center[0]).powi(2) + (x.center[1] - b.center[1]).powi(2);
                    d2 < (rb + x.bounding_radius_m()).powi(2) && b.overlap_depth_m(x) > 0.0
                })
            };
            let hold = hold_s[lu];
            if !hits(hold, BUS_LENGTH_M) {
                continue;
            }
            let safe = |body_m: f64| {
                let mut s = hold;
                while s > (hold - INTRUSION_REACH_M).max(body_m) && hits(s, body_m) {
                    s -= 0.5;
                }
                s
            };
            let (car, long) = (safe(4.5), safe(BUS_LENGTH_M));
            if hits(car, 4.5) {
                // No place on the lane is clear of the sweep (a short link inside a junction
                // cluster): vehicles cross it on reservations instead.
                continue;
            }
            by_lane[lu].push((ci as u32, car, long));
            by_conn[ci].push((l, car, long));
        }
    }
    (by_lane, by_conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cum_of(pts: &[[f64; 3]]) -> Vec<f64> {
        let mut cum = vec![0.0];
        for w in pts.windows(2) {
            cum.push(cum.last().unwrap() + (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]));
        }
        cum
    }

    #[test]
    fn curve_speeds_follow_the_curvature() {
        // An arc of radius 20 m (points 0.05 rad apart, 1 m): v = sqrt(2 m/s² × 20 m).
        let arc: Vec<[f64; 3]> =
            (0..=30).map(|k| [20.0 * (k as f64 * 0.05).sin(), 20.0 - 20.0 * (k as f64 * 0.05).cos(), 0.0]).collect();
        let c = curve_speeds(&arc, &cum_of(&arc), 13.9);
        assert_eq!(c.len(), 29);
        let want = (A_LAT_MPS2 * 20.0).sqrt();
        // Inner points see 5 turns of 0.05 rad within the window (5 m of arc ~ 5 turns).
        assert!(c[5..24].iter().all(|x| (x.v_mps - want).abs() < 0.1 * want), "{c:?}");
        // Faster than the limit: nothing kept.
        assert!(curve_speeds(&arc, &cum_of(&arc), 5.0).is_empty());
        // A 90° corner between two 50 m legs: 1.57 rad over the 5 m window, at most 3 m/s.
        let corner = [[0.0, 0.0, 0.0], [50.0, 0.0, 0.0], [50.0, 50.0, 0.0]];
        let c = curve_speeds(&corner, &cum_of(&corner), 13.9);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].s0_m, c[0].s1_m), (47.5, 52.5));
        assert_eq!(c[0].v_mps, CURVE_MIN_MPS);
        // A 10° kink: sqrt(2 × 5 / 0.1745) = 7.6 m/s; a duplicate point does not add a turn.
        let kink = [[0.0, 0.0, 0.0], [50.0, 0.0, 0.0], [50.0, 0.0, 0.0], [100.0, 50.0 * 10f64.to_radians().tan(), 0.0]];
        let c = curve_speeds(&kink, &cum_of(&kink), 13.9);
        let v = (A_LAT_MPS2 * CURVE_WINDOW_M / 10f64.to_radians()).sqrt();
        assert!(!c.is_empty() && c.iter().all(|x| (x.v_mps - v).abs() < 1e-9), "{c:?} against {v}");
    }

    #[test]
    fn weighted_picks_follow_the_weights() {
        // Weights 1, 0 (never picked), 3.
        let cdf = [1.0, 1.0, 4.0];
        let mut counts = [0usize; 3];
        for k in 0..4000 {
            let u = (k as f64 + 0.5) / 4000.0;
            counts[Net::pick_weighted(&cdf, u).unwrap()] += 1;
        }
        assert_eq!(counts, [1000, 0, 3000]);
        assert_eq!(Net::pick_weighted(&[], 0.3), None);
        assert_eq!(Net::pick_weighted(&[0.0, 0.0], 0.3), None);
    }

    #[test]
    fn service_roads_carry_few_trips_and_are_no_short_cuts() {
        assert!(demand_weight(RoadClass::Service) < 0.2 * demand_weight(RoadClass::Residential));
        assert!(route_penalty(RoadClass::Service) > route_penalty(RoadClass::Primary));
    }
}
