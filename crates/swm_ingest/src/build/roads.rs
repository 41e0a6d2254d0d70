//! The lane graph: drivable ways split at shared nodes into segments, each segment into
//! directed lanes; junctions with lane-to-lane connections, control, stop lines, signals.
//!
//! # Rules (documented defaults, as a user would look them up)
//! * Drivable: `highway` of [`RoadClass`] (links included), not `area=yes`, not
//!   `access`/`vehicle`/`motor_vehicle` = `no`.
//! * Lanes: `lanes:forward`/`lanes:backward`, else `lanes` (split, the extra lane going
//!   forward), else, for a one-way piece shorter than [`LANES_INHERIT_MAX_M`] without any
//!   lane tag, the count of the one-way road of the same class and name (or `ref`) it
//!   continues (the fewer of the two when both ends continue one: the short pieces inside
//!   a dual carriageway's junction are often mapped without `lanes`), else per class
//!   ([`default_lanes_per_direction`]); `oneway=yes/-1`, motorways, motorway links and
//!   roundabouts are one-way.
//! * Speed limits: `maxspeed`, else Korean urban defaults (Safe Speed 5030): 50 km/h on
//!   arterials and collectors, 30 km/h on residential streets, 20 km/h on service roads,
//!   80 km/h on trunk roads (urban expressways), 100 km/h on motorways.
//! * Junctions: every node where segments meet (and every dead end). Lanes are trimmed
//!   back from junctions of three or more arms by the widest arm's half width plus 1 m.
//! * Connections: between every approach and every exit except U-turns (allowed only at
//!   dead ends; also across a dual carriageway's median: a connection out of a lane
//!   shorter than [`MEDIAN_LINK_M`] between two junctions that turns back against every
//!   lane feeding it, unless it is that lane's only way out) and those forbidden by `type=restriction` relations (`no_*`, `only_*`,
//!   via a node). `turn:lanes` decides which lanes may turn where; untagged, right turns
//!   leave from the rightmost lane, left turns and U-turns from the leftmost, straight from
//!   all.
//! * Control: tagged `highway=traffic_signals` (or `crossing=traffic_signals`) on the
//!   junction node or within [`SIGNAL_SNAP_M`] of it along a road; *guessed* signals at
//!   junctions where at least three arms are major non-link roads (motorway, trunk,
//!   primary, secondary) — Seoul maps few signals, and such junctions are signalled in
//!   practice; `highway=stop` + `stop=all` makes an all-way stop; otherwise the arms of
//!   the highest class have priority and the others yield, or right-before-left when all
//!   arms are equal.
//! * Signals: one [`Signal`] per intersection; signalized junctions joined by a road
//!   segment or a lane shorter than [`SIGNAL_CLUSTER_M`] are one intersection.

use super::{Ctx, geom};
use crate::Report;
use crate::osm::Tags;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use swm_core::{OsmType, SourceRef};
use swm_twin::{Control, Junction, Lane, LaneConnection, P2, P3, RoadClass, Signal, StopKind, StopLine, Turn, Twin};

/// A signal node this close (along the road) to a junction belongs to the junction.
pub const SIGNAL_SNAP_M: f64 = 30.0;

/// A lane between two junctions shorter than this (m) is a link inside one intersection
/// (a dual carriageway's median): a connection out of it that turns back against every
/// lane feeding it is a U-turn over the median and is not made.
pub const MEDIAN_LINK_M: f64 = 30.0;

/// Drops the U-turns over a dual carriageway's median (see [`MEDIAN_LINK_M`]).
fn drop_median_u_turns(twin: &mut Twin) {
    let nl = twin.lanes.len();
    let mut feeders: Vec<Vec<u32>> = vec![Vec::new(); nl];
    let mut outs: Vec<usize> = vec![0; nl];
    for c in &twin.lane_connections {
        feeders[c.to_lane as usize].push(c.from_lane);
        outs[c.from_lane as usize] += 1;
    }
    let dir = |l: u32, at_end: bool| geom::end_direction(&twin_lane_xy(twin, l), at_end);
    let mut drop = vec![false; twin.lane_connections.len()];
    for (ci, c) in twin.lane_connections.iter().enumerate() {
        let link = &twin.lanes[c.from_lane as usize];
        if link.length_m >= MEDIAN_LINK_M || link.from_junction.is_none() || outs[c.from_lane as usize] < 2 {
            continue;
        }
        let out = dir(c.to_lane, false);
        let back = |f: &u32| {
            let d = dir(*f, true);
            d[0] * out[0] + d[1] * out[1] < -0.85
        };
        let fs = &feeders[c.from_lane as usize];
        if !fs.is_empty() && fs.iter().all(back) {
            drop[ci] = true;
            outs[c.from_lane as usize] -= 1;
        }
    }
    let n = drop.iter().filter(|d| **d).count();
    if n > 0 {
        let mut k = 0;
        twin.lane_connections.retain(|_| {
            k += 1;
            !drop[k - 1]
        });
        tracing::debug!(connections = n, "U-turns over medians dropped");
    }
}

/// An untagged one-way piece at most this long inherits the lane count of the road it
/// continues (see the module's rules).
pub const LANES_INHERIT_MAX_M: f64 = 80.0;

/// One road between two graph nodes, as the walk graph also needs it.
#[derive(Clone, Debug)]
pub struct Segment {
    pub way: i64,
    pub class: RoadClass,
    pub is_link: bool,
    /// OSM node ids along the segment; the first and last are graph nodes.
    pub nodes: Vec<i64>,
    /// Untrimmed centre line.
    pub points: Vec<P2>,
    pub lanes_forward: u8,
    pub lanes_backward: u8,
    pub lane_width_m: f64,
    pub oneway: bool,
    /// Lanes built on this segment, rightmost first, per direction.
    pub forward_lanes: Vec<u32>,
    pub backward_lanes: Vec<u32>,
}

impl Segment {
    pub fn width_m(&self) -> f64 {
        (self.lanes_forward + self.lanes_backward) as f64 * self.lane_width_m
    }
    pub fn from(&self) -> i64 {
        self.nodes[0]
    }
    pub fn to(&self) -> i64 {
        self.nodes[self.nodes.len() - 1]
    }
}

/// The road network as the walk graph needs it.
#[derive(Debug, Default)]
pub struct RoadNetwork {
    pub segments: Vec<Segment>,
    /// Graph node -> junction index.
    pub junction_of: BTreeMap<i64, u32>,
    /// Graph node -> segment ends meeting there: (segment, at the segment's end).
    pub arms: BTreeMap<i64, Vec<(usize, bool)>>,
}

/// Two roads meeting end to end at a node are cut back there when the angle between them
/// is below this (rad, 135°: a bend sharper than 45°).
const BEND_TRIM_MAX_RAD: f64 = 2.356;

/// Where two roads meet end to end and their lanes do not line up (a lane count or layout
/// change), the lanes are cut back so that each connection runs at least this many metres
/// along per metre of sideways shift (about 7°, a lane taper a car follows at speed).
pub const TAPER_LENGTH_PER_SHIFT: f64 = 8.0;
/// Sideways shifts below this (m) get no taper.
const TAPER_MIN_SHIFT_M: f64 = 0.5;

/// Sideways position (m, right of the road's centre line, in the direction of travel) of
/// lane `r` (0 = rightmost) of the `n` lanes of width `w_m` in one direction: a one-way
/// road centres its lanes, a two-way road keeps each direction on its own side.
fn lane_offset_m(oneway: bool, n: u8, r: u8, w_m: f64) -> f64 {
    let from_edge = (n - 1 - r) as f64 * w_m + 0.5 * w_m;
    if oneway { from_edge - n as f64 * w_m / 2.0 } else { from_edge }
}

/// The lane (0 = rightmost) of `ne` that lane `r` of `na` arriving lanes continues into when
/// a road carries on through a node.
fn through_lane(r: usize, na: usize, ne: usize) -> usize {
    let e = if na == ne || na <= 1 {
        r.min(ne - 1)
    } else {
        ((r as f64) * (ne - 1) as f64 / (na - 1) as f64).round() as usize
    };
    e.min(ne - 1)
}

/// The largest sideways shift (m) between a lane arriving at a node on `a` (at its end when
/// `a_end`) and the lane of `b` it continues into, over both directions of travel.
fn through_shift_m(a: &Segment, a_end: bool, b: &Segment, b_end: bool) -> f64 {
    let arriving = |s: &Segment, at_end: bool| if at_end { s.lanes_forward } else { s.lanes_backward };
    let leaving = |s: &Segment, at_end: bool| if at_end { s.lanes_backward } else { s.lanes_forward };
    let mut shift: f64 = 0.0;
    for (from, from_end, to, to_end) in [(a, a_end, b, b_end), (b, b_end, a, a_end)] {
        let (na, ne) = (arriving(from, from_end), leaving(to, to_end));
        if na == 0 || ne == 0 {
            continue;
        }
        for r in 0..na {
            let e = through_lane(r as usize, na as usize, ne as usize) as u8;
            let d =
                lane_offset_m(from.oneway, na, r, from.lane_width_m) - lane_offset_m(to.oneway, ne, e, to.lane_width_m);
            shift = shift.max(d.abs());
        }
    }
    shift
}

fn class_rank(c: RoadClass) -> u8 {
    match c {
        RoadClass::Motorway => 8,
        RoadClass::Trunk => 7,
        RoadClass::Primary => 6,
        RoadClass::Secondary => 5,
        RoadClass::Tertiary => 4,
        RoadClass::Unclassified => 3,
        RoadClass::Residential => 2,
        RoadClass::LivingStreet => 1,
        RoadClass::Service => 0,
    }
}

/// Lanes per direction when untagged.
pub fn default_lanes_per_direction(class: RoadClass, oneway: bool, is_link: bool) -> u8 {
    if is_link {
        return 1;
    }
    match (class, oneway) {
        (RoadClass::Motorway | RoadClass::Trunk, _) => 3,
        (RoadClass::Primary, false) => 3,
        (RoadClass::Primary | RoadClass::Secondary, _) => 2,
        _ => 1,
    }
}

/// Default lane width (m) when `width` is not tagged.
pub fn default_lane_width_m(class: RoadClass) -> f64 {
    match class {
        RoadClass::Motorway | RoadClass::Trunk => 3.5,
        RoadClass::Primary | RoadClass::Secondary => 3.25,
        RoadClass::Service => 2.75,
        _ => 3.0,
    }
}

/// Lateral acceleration (m/s²) of a road's design radius: a bend is rounded to at most
/// v² / this, v its speed limit.
pub const FILLET_LATERAL_MPS2: f64 = 2.0;

/// Default speed limit (m/s) when `maxspeed` is not tagged.
pub fn default_speed_mps(class: RoadClass) -> f64 {
    let kmh = match class {
        RoadClass::Motorway => 100.0,
        RoadClass::Trunk => 80.0,
        RoadClass::Primary | RoadClass::Secondary | RoadClass::Tertiary | RoadClass::Unclassified => 50.0,
        RoadClass::Residential => 30.0,
        RoadClass::LivingStreet => 20.0,
        RoadClass::Service => 20.0,
    };
    kmh / 3.6
}

fn drivable(t: &Tags) -> Option<RoadClass> {
    let class = RoadClass::parse(t.get("highway")?)?;
    if t.is("area", "yes") || ["access", "vehicle", "motor_vehicle"].iter().any(|k| t.is(k, "no")) {
        return None;
    }
    Some(class)
}

/// Direction of a one-way road: `Some(true)` along the way, `Some(false)` against it.
fn oneway_dir(t: &Tags) -> Option<bool> {
    match t.get("oneway") {
        Some("yes" | "true" | "1") => Some(true),
        Some("-1" | "reverse") => Some(false),
        Some("no" | "false" | "0") => None,
        _ => {
            let implied = matches!(t.get("highway"), Some("motorway" | "motorway_link"))
                || matches!(t.get("junction"), Some("roundabout" | "circular"));
            implied.then_some(true)
        }
    }
}

/// The lane counts short untagged one-way ways inherit from the one-way roads they
/// continue: `runs` are `(way, tags, class, nodes)`, `len_m` a run's length. A way inherits
/// only from a continuation that is unambiguous at its node (exactly one matching way ends
/// where it starts, or starts where it ends), of the same class and name (or `ref`);
/// chains of such pieces fill from both ends over a few passes.
fn inherited_lanes(runs: &[(i64, &Tags, RoadClass, &[i64])], len_m: impl Fn(usize) -> f64) -> HashMap<i64, u8> {
    let has_lane_tag = |t: &Tags| ["lanes", "lanes:forward", "lanes:backward"].iter().any(|k| t.get(k).is_some());
    let road_key = |t: &Tags, class: RoadClass| {
        let name = t.get("name").or_else(|| t.get("ref")).filter(|n| !n.is_empty())?;
        Some((class, name.to_string()))
    };
    // One-way runs: (entry node, exit node) in the direction of travel.
    let ends: Vec<Option<(i64, i64)>> = runs
        .iter()
        .map(|(_, t, _, nodes)| {
            let (a, b) = (*nodes.first()?, *nodes.last()?);
            match oneway_dir(t)? {
                true => Some((a, b)),
                false => Some((b, a)),
            }
        })
        .collect();
    let mut by_entry: HashMap<(i64, (RoadClass, String)), Vec<usize>> = HashMap::new();
    let mut by_exit: HashMap<(i64, (RoadClass, String)), Vec<usize>> = HashMap::new();
    for (i, (_, t, class, _)) in runs.iter().enumerate() {
        let (Some((a, b)), Some(key)) = (ends[i], road_key(t, *class)) else { continue };
        by_entry.entry((a, key.clone())).or_default().push(i);
        by_exit.entry((b, key)).or_default().push(i);
    }
    let mut lanes: Vec<Option<u8>> =
        runs.iter().map(|(_, t, _, _)| if oneway_dir(t).is_some() { parse_u8(t.get("lanes")) } else { None }).collect();
    let mut out = HashMap::new();
    for _pass in 0..4 {
        let mut changed = false;
        for (i, (way, t, class, _)) in runs.iter().enumerate() {
            if lanes[i].is_some() || has_lane_tag(t) || len_m(i) > LANES_INHERIT_MAX_M {
                continue;
            }
            let (Some((a, b)), Some(key)) = (ends[i], road_key(t, *class)) else { continue };
            let only = |m: Option<&Vec<usize>>| match m.map(|v| v.as_slice()) {
                Some([j]) => lanes[*j],
                _ => None,
            };
            let before = only(by_exit.get(&(a, key.clone())));
            let after = only(by_entry.get(&(b, key)));
            let n = match (before, after) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
            if let Some(n) = n {
                lanes[i] = Some(n);
                out.insert(*way, n);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    out
}

fn parse_u8(v: Option<&str>) -> Option<u8> {
    v.and_then(|s| s.trim().parse::<u8>().ok()).filter(|n| *n > 0).map(|n| n.min(8))
}

/// Lanes (forward, backward) of a way.
fn lane_counts(t: &Tags, class: RoadClass, is_link: bool) -> (u8, u8, bool) {
    let total = parse_u8(t.get("lanes"));
    match oneway_dir(t) {
        Some(along) => {
            let n = total.unwrap_or_else(|| default_lanes_per_direction(class, true, is_link));
            if along { (n, 0, true) } else { (0, n, true) }
        }
        None => {
            let fwd = parse_u8(t.get("lanes:forward"));
            let bwd = parse_u8(t.get("lanes:backward"));
            let def = default_lanes_per_direction(class, false, is_link);
            match (fwd, bwd, total) {
                (Some(f), Some(b), _) => (f, b, false),
                (Some(f), None, Some(n)) => (f, n.saturating_sub(f).max(1), false),
                (None, Some(b), Some(n)) => (n.saturating_sub(b).max(1), b, false),
                (Some(f), None, None) => (f, def, false),
                (None, Some(b), None) => (def, b, false),
                (None, None, Some(n)) => {
                    let f = n.div_ceil(2).max(1);
                    (f, (n - n.div_ceil(2)).max(1), false)
                }
                (None, None, None) => (def, def, false),
            }
        }
    }
}

/// Parses `turn:lanes` (left to right) into per-lane turn sets, rightmost first.
fn parse_turn_lanes(v: &str, n: u8) -> Option<Vec<Vec<Turn>>> {
    let lanes: Vec<&str> = v.split('|').collect();
    if lanes.len() != n as usize {
        return None;
    }
    let mut out: Vec<Vec<Turn>> = lanes
        .iter()
        .map(|l| {
            let mut ts: Vec<Turn> = l
                .split(';')
                .filter_map(|t| match t.trim() {
                    "left" => Some(Turn::Left),
                    "slight_left" => Some(Turn::SlightLeft),
                    "sharp_left" => Some(Turn::SharpLeft),
                    "through" | "merge_to_left" | "merge_to_right" => Some(Turn::Straight),
                    "right" => Some(Turn::Right),
                    "slight_right" => Some(Turn::SlightRight),
                    "sharp_right" => Some(Turn::SharpRight),
                    "reverse" => Some(Turn::UTurn),
                    _ => None,
                })
                .collect();
            ts.sort();
            ts.dedup();
            ts
        })
        .collect();
    out.reverse();
    Some(out)
}

fn classify_turn(angle_rad: f64) -> Turn {
    let d = angle_rad.to_degrees();
    match d {
        d if d.abs() <= 30.0 => Turn::Straight,
        d if d > 30.0 && d <= 60.0 => Turn::SlightLeft,
        d if d > 60.0 && d <= 135.0 => Turn::Left,
        d if d > 135.0 && d <= 170.0 => Turn::SharpLeft,
        d if (-60.0..-30.0).contains(&d) => Turn::SlightRight,
        d if (-135.0..-60.0).contains(&d) => Turn::Right,
        d if (-170.0..-135.0).contains(&d) => Turn::SharpRight,
        _ => Turn::UTurn,
    }
}

/// Whether a lane tagged with `turns` may make `turn`.
fn lane_allows(turns: &[Turn], turn: Turn) -> bool {
    if turns.is_empty() {
        return true;
    }
    turns.iter().any(|t| match t {
        Turn::Left => matches!(turn, Turn::Left | Turn::SharpLeft | Turn::SlightLeft | Turn::UTurn),
        Turn::Right => matches!(turn, Turn::Right | Turn::SharpRight | Turn::SlightRight),
        Turn::Straight => matches!(turn, Turn::Straight | Turn::SlightLeft | Turn::SlightRight),
        other => *other == turn,
    })
}

struct Restriction {
    from_way: i64,
    to_way: i64,
    only: bool,
}

fn restrictions(ctx: &Ctx, report: &mut Report) -> HashMap<i64, Vec<Restriction>> {
    let mut by_via: HashMap<i64, Vec<Restriction>> = HashMap::new();
    for (id, r) in &ctx.data.relations {
        if r.tags.get("type") != Some("restriction") {
            continue;
        }
        let Some(kind) = r.tags.get("restriction").or_else(|| r.tags.get("restriction:motorcar")) else {
            continue;
        };
        let find = |role: &str, ty: OsmType| r.members.iter().find(|m| m.role == role && m.ty == ty).map(|m| m.id);
        let (Some(from_way), Some(to_way)) = (find("from", OsmType::Way), find("to", OsmType::Way)) else {
            report.warn(SourceRef::relation(*id).to_string(), "turn restriction without from/to ways; ignored");
            continue;
        };
        let Some(via) = find("via", OsmType::Node) else {
            // Via-way restrictions need path matching across segments; not modelled.
            tracing::debug!(relation = id, "via-way restriction ignored");
            continue;
        };
        let only = kind.starts_with("only_");
        if !only && !kind.starts_with("no_") {
            continue;
        }
        by_via.entry(via).or_default().push(Restriction { from_way, to_way, only });
    }
    by_via
}

fn is_signal_node(t: &Tags) -> bool {
    t.is("highway", "traffic_signals") || (t.is("highway", "crossing") && t.is("crossing", "traffic_signals"))
}

/// Cubic Bézier path from `p0` heading `d0` to `p1` heading `d1`.
fn connection_path(p0: P2, d0: P2, p1: P2, d1: P2) -> Vec<P2> {
    let d = geom::dist(p0, p1);
    if d < 0.05 {
        return vec![p0, p1];
    }
    let k = d / 3.0;
    let c0 = [p0[0] + d0[0] * k, p0[1] + d0[1] * k];
    let c1 = [p1[0] - d1[0] * k, p1[1] - d1[1] * k];
    let n = ((d / 2.0).ceil() as usize).clamp(2, 16);
    (0..=n)
        .map(|i| {
            let t = i as f64 / n as f64;
            let u = 1.0 - t;
            let (a, b, c, e) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
            [a * p0[0] + b * c0[0] + c * c1[0] + e * p1[0], a * p0[1] + b * c0[1] + c * c1[1] + e * p1[1]]
        })
        .collect()
}

pub fn build(ctx: &Ctx, twin: &mut Twin, report: &mut Report) -> RoadNetwork {
    // 1. Drivable runs: contiguous nodes that exist and lie in the clip area.
    struct Run<'a> {
        way: i64,
        tags: &'a Tags,
        class: RoadClass,
        nodes: Vec<i64>,
    }
    let mut runs = Vec::new();
    for (id, w) in &ctx.data.ways {
        let Some(class) = drivable(&w.tags) else { continue };
        let mut cur: Vec<i64> = Vec::new();
        let mut cut = false;
        for n in &w.nodes {
            match ctx.xy(*n) {
                Some(p) if ctx.keeps_point(p) => {
                    if cur.last() != Some(n) {
                        cur.push(*n)
                    }
                }
                _ => {
                    cut = true;
                    if cur.len() >= 2 {
                        runs.push(Run { way: *id, tags: &w.tags, class, nodes: std::mem::take(&mut cur) });
                    }
                    cur.clear();
                }
            }
        }
        if cur.len() >= 2 {
            runs.push(Run { way: *id, tags: &w.tags, class, nodes: cur });
        }
        if cut && ctx.clip_m.is_none() {
            report.warn(SourceRef::way(*id).to_string(), "road references nodes missing from the input; cut there");
        }
    }

    // 2. Graph nodes: run ends, nodes shared by roads, mid-block signals.
    let mut uses: HashMap<i64, u32> = HashMap::new();
    for r in &runs {
        for n in &r.nodes {
            *uses.entry(*n).or_default() += 1;
        }
        // Closed ways (roundabouts) visit their first node twice.
        if r.nodes.first() == r.nodes.last() {
            *uses.entry(r.nodes[0]).or_default() += 1;
        }
    }
    let mut graph_node: BTreeSet<i64> = BTreeSet::new();
    for r in &runs {
        graph_node.insert(r.nodes[0]);
        graph_node.insert(r.nodes[r.nodes.len() - 1]);
        for n in &r.nodes {
            if uses.get(n).copied().unwrap_or(0) >= 2 {
                graph_node.insert(*n);
            }
        }
    }
    // Signal nodes: snap to a junction within SIGNAL_SNAP_M along the road, else split.
    let mut signal_at: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in &runs {
        for (i, n) in r.nodes.iter().enumerate() {
            let Some(node) = ctx.data.nodes.get(n) else { continue };
            if !is_signal_node(&node.tags) {
                continue;
            }
            if uses.get(n).copied().unwrap_or(0) >= 3
                || graph_node.contains(n) && uses.get(n).copied().unwrap_or(0) >= 2
            {
                signal_at.entry(*n).or_default().push(*n);
                continue;
            }
            let mut best: Option<(f64, i64)> = None;
            for dir in [-1i64, 1] {
                let mut s = 0.0;
                let mut j = i as i64;
                loop {
                    let k = j + dir;
                    if k < 0 || k as usize >= r.nodes.len() {
                        break;
                    }
                    let (a, b) = (ctx.xy(r.nodes[j as usize]), ctx.xy(r.nodes[k as usize]));
                    let (Some(a), Some(b)) = (a, b) else { break };
                    s += geom::dist(a, b);
                    if s > SIGNAL_SNAP_M {
                        break;
                    }
                    let m = r.nodes[k as usize];
                    if uses.get(&m).copied().unwrap_or(0) >= 3 || (graph_node.contains(&m) && uses[&m] >= 2) {
                        if best.is_none_or(|(bs, _)| s < bs) {
                            best = Some((s, m));
                        }
                        break;
                    }
                    j = k;
                }
            }
            match best {
                Some((_, m)) => signal_at.entry(m).or_default().push(*n),
                None => {
                    graph_node.insert(*n);
                    signal_at.entry(*n).or_default().push(*n);
                }
            }
        }
    }

    // 3. Segments.
    let mut net = RoadNetwork::default();
    // Per segment: turn sets of its forward and backward lanes (rightmost first), if tagged.
    type LaneTurns = Option<Vec<Vec<Turn>>>;
    let mut way_turns: Vec<(LaneTurns, LaneTurns)> = Vec::new();
    let mut seg_tags: Vec<&Tags> = Vec::new();
    let inherited = {
        let rs: Vec<(i64, &Tags, RoadClass, &[i64])> =
            runs.iter().map(|r| (r.way, r.tags, r.class, r.nodes.as_slice())).collect();
        let len_m = |i: usize| {
            let pts: Vec<P2> = runs[i].nodes.iter().filter_map(|n| ctx.xy(*n)).collect();
            geom::polyline_len(&pts)
        };
        inherited_lanes(&rs, len_m)
    };
    if !inherited.is_empty() {
        tracing::debug!(ways = inherited.len(), "lane counts inherited by short untagged one-way pieces");
    }
    for r in &runs {
        let is_link = r.tags.get("highway").is_some_and(|h| h.ends_with("_link"));
        let (mut fwd, mut bwd, oneway) = lane_counts(r.tags, r.class, is_link);
        if let Some(&n) = inherited.get(&r.way) {
            if fwd > 0 {
                fwd = n;
            } else {
                bwd = n;
            }
        }
        let width_tag = r.tags.get("width").and_then(super::tags::parse_length_m);
        let lane_width_m = width_tag
            .map(|w| (w / (fwd + bwd).max(1) as f64).clamp(2.5, 4.0))
            .unwrap_or_else(|| default_lane_width_m(r.class));
        let turns_fwd = r
            .tags
            .get(if oneway { "turn:lanes" } else { "turn:lanes:forward" })
            .or_else(|| if oneway { r.tags.get("turn:lanes:forward") } else { None })
            .and_then(|v| parse_turn_lanes(v, fwd.max(bwd)));
        let turns_bwd = r
            .tags
            .get(if oneway { "turn:lanes" } else { "turn:lanes:backward" })
            .and_then(|v| parse_turn_lanes(v, fwd.max(bwd)));
        let mut start = 0;
        for i in 1..r.nodes.len() {
            if graph_node.contains(&r.nodes[i]) || i == r.nodes.len() - 1 {
                let nodes = r.nodes[start..=i].to_vec();
                let points: Vec<P2> = nodes.iter().filter_map(|n| ctx.xy(*n)).collect();
                if geom::polyline_len(&points) > 0.05 {
                    net.segments.push(Segment {
                        way: r.way,
                        class: r.class,
                        is_link,
                        nodes,
                        points,
                        lanes_forward: fwd,
                        lanes_backward: bwd,
                        lane_width_m,
                        oneway,
                        forward_lanes: Vec::new(),
                        backward_lanes: Vec::new(),
                    });
                    way_turns.push((turns_fwd.clone(), turns_bwd.clone()));
                    seg_tags.push(r.tags);
                }
                start = i;
            }
        }
    }
    // Bends drawn as corners become arcs (see `geom::fillet_polyline`): lanes, sidewalks
    // and the drivable area then follow a curve a vehicle can drive at the road's speed.
    let mut filleted = 0usize;
    for (seg, tags) in net.segments.iter_mut().zip(&seg_tags) {
        let speed_mps =
            tags.get("maxspeed").and_then(super::tags::parse_speed_mps).unwrap_or(default_speed_mps(seg.class));
        let half_width_m = seg.width_m() / 2.0;
        let limits = geom::FilletLimits {
            max_radius_m: speed_mps * speed_mps / FILLET_LATERAL_MPS2,
            max_offset_m: half_width_m,
            min_radius_m: half_width_m + 0.5,
        };
        let points = geom::fillet_polyline(&seg.points, limits);
        if points.len() != seg.points.len() {
            filleted += 1;
        }
        seg.points = points;
    }
    tracing::debug!(segments = filleted, "segments with corners rounded to arcs");
    for (si, s) in net.segments.iter().enumerate() {
        net.arms.entry(s.from()).or_default().push((si, false));
        net.arms.entry(s.to()).or_default().push((si, true));
    }

    // 4. Junctions (one per graph node with arms), trims.
    let mut trim: Vec<[f64; 2]> = vec![[0.0, 0.0]; net.segments.len()];
    for (node, arms) in &net.arms {
        let j = twin.junctions.len() as u32;
        net.junction_of.insert(*node, j);
        let Some(p) = ctx.xy(*node) else { continue };
        twin.junctions.push(Junction {
            source: ctx.data.source_ref(OsmType::Node, *node),
            center: ctx.ground(p),
            control: Control::Priority,
            incoming_lanes: Vec::new(),
            outgoing_lanes: Vec::new(),
        });
        if arms.len() >= 3 {
            let r = arms.iter().map(|(s, _)| net.segments[*s].width_m() / 2.0).fold(0.0, f64::max) + 1.0;
            for (s, at_end) in arms {
                let len = geom::polyline_len(&net.segments[*s].points);
                trim[*s][*at_end as usize] = r.min(0.4 * len);
            }
        } else if let [(sa, ea), (sb, eb)] = arms[..]
            && sa != sb
        {
            // A bend where two roads meet end to end: each is cut back to where its centre
            // line leaves the other's carriageway, so that at a sharp corner the outer lanes
            // of a wide road do not start on the narrow road's lanes (as in netconvert's
            // junction shapes).
            let (a, b) = (&net.segments[sa], &net.segments[sb]);
            let away = |seg: &Segment, at_end: bool| {
                let d = geom::end_direction(&seg.points, at_end);
                if at_end { [-d[0], -d[1]] } else { d }
            };
            let (da, db) = (away(a, ea), away(b, eb));
            let cos = da[0] * db[0] + da[1] * db[1];
            let angle = cos.clamp(-1.0, 1.0).acos();
            let (la, lb) = (geom::polyline_len(&a.points), geom::polyline_len(&b.points));
            let (mut ta, mut tb) = (0.0, 0.0);
            if angle < BEND_TRIM_MAX_RAD {
                let sin = angle.sin().max(0.3);
                let (ha, hb) = (a.width_m() / 2.0, b.width_m() / 2.0);
                (ta, tb) = ((hb + ha * cos) / sin + 1.0, (ha + hb * cos) / sin + 1.0);
            }
            // Lanes that do not line up (four lanes into one, say) are cut back so that the
            // connections between them taper instead of jumping sideways at the node.
            let shift = through_shift_m(a, ea, b, eb);
            if shift > TAPER_MIN_SHIFT_M {
                let half_taper = 0.5 * TAPER_LENGTH_PER_SHIFT * shift;
                (ta, tb) = (f64::max(ta, half_taper), f64::max(tb, half_taper));
            }
            trim[sa][ea as usize] = ta.clamp(0.0, 0.4 * la);
            trim[sb][eb as usize] = tb.clamp(0.0, 0.4 * lb);
        }
    }

    // 5. Lanes.
    for (si, seg) in net.segments.iter_mut().enumerate() {
        let len = geom::polyline_len(&seg.points);
        let core = geom::cut_polyline(&seg.points, trim[si][0], len - trim[si][1]);
        let bridge = seg_tags[si].get("bridge").is_some_and(|b| b != "no");
        let (z0, z1) =
            (ctx.terrain.elevation_at(seg.points[0]), ctx.terrain.elevation_at(seg.points[seg.points.len() - 1]));
        let lift = |pts: &[P2]| -> Vec<P3> {
            if !bridge {
                return pts.iter().map(|p| ctx.ground(*p)).collect();
            }
            // Bridge decks span between the ground at their ends.
            let total = geom::polyline_len(pts).max(1e-9);
            let mut s = 0.0;
            pts.iter()
                .enumerate()
                .map(|(i, p)| {
                    if i > 0 {
                        s += geom::dist(pts[i - 1], *p);
                    }
                    let t = s / total;
                    [p[0], p[1], (z0 * (1.0 - t) + z1 * t).max(ctx.terrain.elevation_at(*p))]
                })
                .collect()
        };
        let (from_j, to_j) = (net.junction_of.get(&seg.from()).copied(), net.junction_of.get(&seg.to()).copied());
        let level = road_level(seg_tags[si]);
        let name = seg_tags[si].get("name").map(str::to_string);
        let speed = seg_tags[si].get("maxspeed").and_then(super::tags::parse_speed_mps);
        let mut reversed = core.clone();
        reversed.reverse();
        let w = seg.lane_width_m;
        for (forward, n, path, (fj, tj)) in
            [(true, seg.lanes_forward, &core, (from_j, to_j)), (false, seg.lanes_backward, &reversed, (to_j, from_j))]
        {
            let first = twin.lanes.len() as u32;
            let turns = if forward { &way_turns[si].0 } else { &way_turns[si].1 };
            for r in 0..n {
                let offset = lane_offset_m(seg.oneway, n, r, w);
                let centerline = lift(&geom::offset_polyline(path, offset));
                let length_m = swm_twin::polyline_length_m(&centerline);
                twin.lanes.push(Lane {
                    source: ctx.data.source_ref(OsmType::Way, seg.way),
                    road_class: seg.class,
                    name: name.clone(),
                    centerline,
                    length_m,
                    width_m: w,
                    speed_limit_mps: speed.unwrap_or_else(|| default_speed_mps(seg.class)),
                    speed_limit_tagged: speed.is_some(),
                    forward,
                    index_from_right: r,
                    lanes_in_direction: n,
                    from_junction: fj,
                    to_junction: tj,
                    left: (r + 1 < n).then_some(first + r as u32 + 1),
                    right: (r > 0).then(|| first + r as u32 - 1),
                    turns: turns.as_ref().map(|t| t[r as usize].clone()).unwrap_or_default(),
                    stop_line: None,
                    signal: None,
                    level,
                });
            }
            let ids: Vec<u32> = (first..first + n as u32).collect();
            if forward {
                seg.forward_lanes = ids;
            } else {
                seg.backward_lanes = ids;
            }
        }
    }

    // 6. Control, connections, stop lines, signals.
    let restr = restrictions(ctx, report);
    for (node, arms) in &net.arms {
        let j = net.junction_of[node];
        // Approaches (lanes arriving) and exits (lanes leaving), per segment end.
        let approaches: Vec<(usize, &[u32])> = arms
            .iter()
            .map(|&(s, at_end)| {
                let seg = &net.segments[s];
                (s, if at_end { seg.forward_lanes.as_slice() } else { seg.backward_lanes.as_slice() })
            })
            .filter(|(_, l)| !l.is_empty())
            .collect();
        let exits: Vec<(usize, &[u32])> = arms
            .iter()
            .map(|&(s, at_end)| {
                let seg = &net.segments[s];
                (s, if at_end { seg.backward_lanes.as_slice() } else { seg.forward_lanes.as_slice() })
            })
            .filter(|(_, l)| !l.is_empty())
            .collect();
        let node_tags = ctx.data.nodes.get(node).map(|n| &n.tags);
        let max_rank = arms.iter().map(|(s, _)| class_rank(net.segments[*s].class)).max().unwrap_or(0);
        let all_equal = arms.iter().all(|(s, _)| class_rank(net.segments[*s].class) == max_rank);
        let major_arms =
            arms.iter().filter(|(s, _)| net.segments[*s].class.is_major() && !net.segments[*s].is_link).count();
        let control = if signal_at.contains_key(node) {
            Control::SignalTagged
        } else if arms.len() >= 3 && major_arms >= 3 {
            Control::SignalGuessed
        } else if node_tags.is_some_and(|t| t.is("highway", "stop") && t.is("stop", "all")) {
            Control::AllWayStop
        } else if arms.len() >= 3 && all_equal {
            Control::Uncontrolled
        } else {
            Control::Priority
        };
        twin.junctions[j as usize].control = control;
        let dead_end = arms.len() == 1;
        let here = restr.get(node);
        for &(sa, in_lanes) in &approaches {
            let a_seg = &net.segments[sa];
            let in_dir = geom::end_direction(&twin_lane_xy(twin, in_lanes[0]), true);
            for &(se, out_lanes) in &exits {
                if se == sa && !dead_end {
                    continue;
                }
                let e_seg = &net.segments[se];
                let out_dir = geom::end_direction(&twin_lane_xy(twin, out_lanes[0]), false);
                let turn = if se == sa { Turn::UTurn } else { classify_turn(geom::turn_angle(in_dir, out_dir)) };
                if let Some(rs) = here {
                    // A restriction names ways; when from and to are the same way (no_u_turn)
                    // it is about turning back onto it, not about driving on along it.
                    let hits = |r: &&Restriction| {
                        r.from_way == a_seg.way
                            && r.to_way == e_seg.way
                            && (r.from_way != r.to_way || turn == Turn::UTurn || se == sa)
                    };
                    let from_here: Vec<&Restriction> = rs.iter().filter(|r| r.from_way == a_seg.way).collect();
                    let forbidden = from_here.iter().any(|r| !r.only && hits(r));
                    let not_the_only = from_here.iter().any(|r| r.only) && !from_here.iter().any(|r| r.only && hits(r));
                    if forbidden || not_the_only {
                        continue;
                    }
                }
                let through = arms.len() <= 2;
                // Candidate approach lanes (indices from the right).
                let na = in_lanes.len();
                let ne = out_lanes.len();
                let tagged = in_lanes.iter().any(|l| !twin.lanes[*l as usize].turns.is_empty());
                let cands: Vec<usize> = if through {
                    (0..na).collect()
                } else if tagged {
                    (0..na).filter(|&r| lane_allows(&twin.lanes[in_lanes[r] as usize].turns, turn)).collect()
                } else {
                    match turn {
                        Turn::Right | Turn::SharpRight | Turn::SlightRight => vec![0],
                        Turn::Left | Turn::SharpLeft | Turn::SlightLeft | Turn::UTurn => vec![na - 1],
                        Turn::Straight => (0..na).collect(),
                    }
                };
                let pairs: Vec<(usize, usize)> = match turn {
                    Turn::Right | Turn::SharpRight | Turn::SlightRight if !through => {
                        cands.iter().enumerate().map(|(k, &r)| (r, k.min(ne - 1))).collect()
                    }
                    Turn::Left | Turn::SharpLeft | Turn::SlightLeft | Turn::UTurn if !through => {
                        cands.iter().rev().enumerate().map(|(k, &r)| (r, ne - 1 - k.min(ne - 1))).collect()
                    }
                    _ => cands.iter().map(|&r| (r, through_lane(r, na, ne))).collect(),
                };
                let major = !all_equal && class_rank(a_seg.class) == max_rank;
                for (r, e) in pairs {
                    let (from_lane, to_lane) = (in_lanes[r], out_lanes[e]);
                    let fl = &twin.lanes[from_lane as usize];
                    let tl = &twin.lanes[to_lane as usize];
                    let p0 = fl.centerline[fl.centerline.len() - 1];
                    let p1 = tl.centerline[0];
                    let xy0 = twin_lane_xy(twin, from_lane);
                    let xy1 = twin_lane_xy(twin, to_lane);
                    let path2 = connection_path(
                        [p0[0], p0[1]],
                        geom::end_direction(&xy0, true),
                        [p1[0], p1[1]],
                        geom::end_direction(&xy1, false),
                    );
                    let n = path2.len().max(2) - 1;
                    let path: Vec<P3> = path2
                        .iter()
                        .enumerate()
                        .map(|(i, q)| {
                            let t = i as f64 / n as f64;
                            [q[0], q[1], p0[2] * (1.0 - t) + p1[2] * t]
                        })
                        .collect();
                    let length_m = swm_twin::polyline_length_m(&path);
                    twin.lane_connections.push(LaneConnection {
                        from_lane,
                        to_lane,
                        junction: j,
                        turn,
                        path,
                        length_m,
                        major,
                    });
                }
            }
        }
        let incoming: Vec<u32> = approaches.iter().flat_map(|(_, l)| l.iter().copied()).collect();
        let outgoing: Vec<u32> = exits.iter().flat_map(|(_, l)| l.iter().copied()).collect();
        let junction_like = arms.len() >= 3 || control.is_signalized() || control == Control::AllWayStop;
        for &(sa, lanes) in &approaches {
            let kind = match control {
                Control::SignalTagged | Control::SignalGuessed => Some(StopKind::Signal),
                Control::AllWayStop => Some(StopKind::Stop),
                Control::Uncontrolled if junction_like => Some(StopKind::Yield),
                Control::Priority if junction_like && class_rank(net.segments[sa].class) < max_rank => {
                    Some(StopKind::Yield)
                }
                _ => None,
            };
            for &l in lanes {
                let lane = &mut twin.lanes[l as usize];
                if let Some(kind) = kind {
                    let c = &lane.centerline;
                    let end = c[c.len() - 1];
                    let xy: Vec<P2> = c.iter().map(|p| [p[0], p[1]]).collect();
                    let d = geom::end_direction(&xy, true);
                    let h = lane.width_m / 2.0;
                    let (nx, ny) = (d[1] * h, -d[0] * h);
                    lane.stop_line = Some(StopLine {
                        s_m: lane.length_m,
                        kind,
                        segment: [[end[0] - nx, end[1] - ny, end[2]], [end[0] + nx, end[1] + ny, end[2]]],
                    });
                }
            }
        }
        let jn = &mut twin.junctions[j as usize];
        jn.incoming_lanes = incoming;
        jn.outgoing_lanes = outgoing;
    }
    drop_median_u_turns(twin);
    make_signals(ctx, &net, &signal_at, twin);
    tracing::info!(
        segments = net.segments.len(),
        lanes = twin.lanes.len(),
        connections = twin.lane_connections.len(),
        junctions = twin.junctions.len(),
        signals = twin.signals.len(),
        "lane graph"
    );
    net
}

/// Signalized junction nodes closer than this along a road, or joined by a lane shorter
/// than this once cut back at both junctions, belong to one intersection (the nodes where
/// the carriageways of dual roads cross) and share one signal (like netconvert's
/// `--tls.join`): no vehicle can wait between them clear of both.
pub const SIGNAL_CLUSTER_M: f64 = 40.0;

/// One [`Signal`] per signalized intersection: signalized junctions joined by short road
/// segments or short lanes are grouped (dual carriageways make up to four junction nodes
/// per crossing), and every incoming lane of the group points to the group's signal.
fn make_signals(ctx: &Ctx, net: &RoadNetwork, signal_at: &BTreeMap<i64, Vec<i64>>, twin: &mut Twin) {
    let n = twin.junctions.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let short_segments = net
        .segments
        .iter()
        .filter(|seg| geom::polyline_len(&seg.points) < SIGNAL_CLUSTER_M)
        .map(|seg| (net.junction_of[&seg.from()] as usize, net.junction_of[&seg.to()] as usize));
    let short_lanes = twin
        .lanes
        .iter()
        .filter(|l| l.length_m < SIGNAL_CLUSTER_M)
        .filter_map(|l| Some((l.from_junction? as usize, l.to_junction? as usize)));
    let links: Vec<(usize, usize)> = short_segments.chain(short_lanes).collect();
    for (a, b) in links {
        if twin.junctions[a].control.is_signalized() && twin.junctions[b].control.is_signalized() {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            if ra != rb {
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let node_of: BTreeMap<u32, i64> = net.junction_of.iter().map(|(node, j)| (*j, *node)).collect();
    let mut signal_of_root: BTreeMap<usize, u32> = BTreeMap::new();
    for j in 0..n {
        if !twin.junctions[j].control.is_signalized() {
            continue;
        }
        let r = root(&mut parent, j);
        let sid = *signal_of_root.entry(r).or_insert_with(|| {
            twin.signals.push(Signal {
                source: SourceRef::Derived,
                junction: r as u32,
                position: twin.junctions[r].center,
                guessed: true,
                lanes: Vec::new(),
            });
            (twin.signals.len() - 1) as u32
        });
        let tagged = node_of.get(&(j as u32)).and_then(|node| signal_at.get(node)).and_then(|v| v.first());
        let signal = &mut twin.signals[sid as usize];
        if let Some(s) = tagged
            && signal.guessed
        {
            signal.source = ctx.data.source_ref(OsmType::Node, *s);
            signal.position = ctx.xy(*s).map(|p| ctx.ground(p)).unwrap_or(twin.junctions[j].center);
            signal.guessed = false;
        }
        let incoming = twin.junctions[j].incoming_lanes.clone();
        for l in &incoming {
            twin.lanes[*l as usize].signal = Some(sid);
        }
        twin.signals[sid as usize].lanes.extend(incoming);
    }
}

fn twin_lane_xy(twin: &Twin, lane: u32) -> Vec<P2> {
    twin.lanes[lane as usize].centerline.iter().map(|p| [p[0], p[1]]).collect()
}

/// The vertical level of a road way: its `layer` (clamped to -5..=5), else 1 for a bridge
/// and -1 for a tunnel, else 0.
fn road_level(tags: &Tags) -> i8 {
    if let Some(l) = tags.get("layer").and_then(|v| v.trim().parse::<i32>().ok()) {
        return l.clamp(-5, 5) as i8;
    }
    let yes = |k: &str| tags.get(k).is_some_and(|v| v != "no");
    if yes("bridge") {
        1
    } else if yes("tunnel") {
        -1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(kv: &[(&str, &str)]) -> Tags {
        kv.iter().copied().collect()
    }

    /// A dual carriageway's 6-lane approach, two short untagged pieces inside its junctions,
    /// the 6-lane road beyond (as Songpa-daero is mapped in Jamsil), a long untagged one-way
    /// road and a short piece of another name: only the short pieces of the same road
    /// inherit, from both ends through the chain.
    #[test]
    fn short_untagged_one_way_pieces_inherit_the_lane_count() {
        let six = tags(&[("highway", "primary"), ("oneway", "yes"), ("name", "A"), ("lanes", "6")]);
        let bare = tags(&[("highway", "primary"), ("oneway", "yes"), ("name", "A")]);
        let other = tags(&[("highway", "primary"), ("oneway", "yes"), ("name", "B")]);
        let p = RoadClass::Primary;
        let (n1, n2, n3, n4, n5, n6) = ([1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [4, 7]);
        let runs: Vec<(i64, &Tags, RoadClass, &[i64])> = vec![
            (10, &six, p, &n1),
            (11, &bare, p, &n2),
            (12, &bare, p, &n3),
            (13, &six, p, &n4),
            (14, &bare, p, &n5),
            (15, &other, p, &n6),
        ];
        let len = |i: usize| if i == 4 { 300.0 } else { 10.0 };
        let got = inherited_lanes(&runs, len);
        assert_eq!(got.get(&11), Some(&6));
        assert_eq!(got.get(&12), Some(&6));
        assert_eq!(got.get(&14), None, "a long untagged road keeps the class default");
        assert_eq!(got.get(&15), None, "another road does not inherit");
        assert!(!got.contains_key(&10) && !got.contains_key(&13), "tagged ways keep their tags");
    }

    #[test]
    fn road_levels_from_layer_bridge_tunnel() {
        assert_eq!(road_level(&tags(&[("highway", "primary")])), 0);
        assert_eq!(road_level(&tags(&[("bridge", "yes")])), 1);
        assert_eq!(road_level(&tags(&[("bridge", "yes"), ("layer", "2")])), 2);
        assert_eq!(road_level(&tags(&[("tunnel", "yes")])), -1);
        assert_eq!(road_level(&tags(&[("tunnel", "yes"), ("layer", "-3")])), -3);
        assert_eq!(road_level(&tags(&[("bridge", "no")])), 0);
        assert_eq!(road_level(&tags(&[("layer", "99")])), 5);
        assert_eq!(road_level(&tags(&[("layer", "x"), ("bridge", "viaduct")])), 1);
    }

    #[test]
    fn lane_count_rules() {
        let p = RoadClass::Primary;
        assert_eq!(lane_counts(&tags(&[("lanes", "6")]), p, false), (3, 3, false));
        assert_eq!(lane_counts(&tags(&[("lanes", "5")]), p, false), (3, 2, false));
        assert_eq!(lane_counts(&tags(&[("lanes", "3"), ("oneway", "yes")]), p, false), (3, 0, true));
        assert_eq!(lane_counts(&tags(&[("oneway", "-1")]), RoadClass::Residential, false), (0, 1, true));
        assert_eq!(lane_counts(&tags(&[("lanes", "4"), ("lanes:forward", "3")]), p, false), (3, 1, false));
        assert_eq!(lane_counts(&tags(&[]), RoadClass::Secondary, false), (2, 2, false));
        assert_eq!(lane_counts(&tags(&[("highway", "motorway")]), RoadClass::Motorway, false), (3, 0, true));
    }

    #[test]
    fn turn_lanes_rightmost_first() {
        let t = parse_turn_lanes("left|through|through;right", 3).unwrap();
        assert_eq!(t[0], vec![Turn::Straight, Turn::Right]);
        assert_eq!(t[2], vec![Turn::Left]);
        assert!(parse_turn_lanes("left|through", 3).is_none());
    }

    #[test]
    fn turn_classification() {
        assert_eq!(classify_turn(0.1), Turn::Straight);
        assert_eq!(classify_turn(std::f64::consts::FRAC_PI_2), Turn::Left);
        assert_eq!(classify_turn(-std::f64::consts::FRAC_PI_2), Turn::Right);
        assert_eq!(classify_turn(3.1), Turn::UTurn);
    }
}
