//! The walk graph: mapped footways, sidewalks (mapped, or offset from roads' `sidewalk=*`),
//! shared streets, and crossings linking the two sides of roads.
//!
//! # Rules
//! * Mapped ways: `highway` = footway, path, pedestrian, steps, cycleway, track,
//!   bridleway, corridor (unless `foot=no`); `footway=sidewalk` is a sidewalk,
//!   `footway=crossing` a crossing (signalled with `crossing=traffic_signals`).
//! * Roads: `sidewalk`, `sidewalk:both|left|right` = yes/both/left/right give sidewalk
//!   edges offset [`SIDEWALK_OFFSET_M`] beyond the carriageway's edge; `separate` means they
//!   are mapped as their own ways. Untagged primary, secondary and tertiary roads get
//!   sidewalks on both sides (Seoul's arterials have them); untagged residential,
//!   unclassified, living and service streets are walked on (`shared_road`); motorways,
//!   trunk roads and links carry no pedestrians.
//! * Sidewalks meet around junctions: walking round a junction, the sidewalk on the left
//!   of one arm joins the one on the right of the next arm.
//! * Crossings: mapped `footway=crossing` ways are joined to the nearest sidewalks; tagged
//!   `highway=crossing` nodes without a mapped way get a crossing edge across the road;
//!   every arm of a signalled junction with sidewalks on both sides gets a signalled
//!   crossing.
//! * Dangling ends of mapped footways within [`ATTACH_M`] of a derived sidewalk are joined
//!   to it.

use super::roads::RoadNetwork;
use super::{Ctx, geom};
use crate::osm::Tags;
use std::collections::{BTreeMap, HashMap};
use swm_core::{OsmType, SourceRef};
use swm_twin::{P2, P3, RoadClass, Twin, WalkEdge, WalkKind, WalkNode};

/// Distance from the carriageway's edge to a derived sidewalk's centre line (m).
pub const SIDEWALK_OFFSET_M: f64 = 1.5;
/// Width of derived sidewalks (m).
pub const SIDEWALK_WIDTH_M: f64 = 2.5;
/// Dangling footway ends this close to a derived sidewalk are joined to it (m).
pub const ATTACH_M: f64 = 10.0;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Key {
    Osm(i64),
    /// (segment, side: 0 right / 1 left, 0 start / 1 end)
    SidewalkEnd(usize, u8, u8),
    Attach(u32),
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Sidewalks { right: bool, left: bool },
    Shared,
    None,
}

fn road_mode(t: &Tags, class: RoadClass, is_link: bool) -> Mode {
    if t.is("foot", "no") || matches!(class, RoadClass::Motorway | RoadClass::Trunk) || is_link {
        return if t.is("foot", "yes") { Mode::Shared } else { Mode::None };
    }
    let side = |k: &str| t.get(k).map(|v| matches!(v, "yes"));
    let (mut right, mut left) =
        match t.get("sidewalk").or_else(|| t.get("sidewalk:both").map(|v| if v == "yes" { "both" } else { v })) {
            Some("both") | Some("yes") => (true, true),
            Some("right") => (true, false),
            Some("left") => (false, true),
            Some("no" | "none" | "separate") => (false, false),
            _ => {
                let tagged_sides = side("sidewalk:left").is_some() || side("sidewalk:right").is_some();
                if tagged_sides {
                    (false, false)
                } else if matches!(class, RoadClass::Primary | RoadClass::Secondary | RoadClass::Tertiary) {
                    (true, true)
                } else {
                    return Mode::Shared;
                }
            }
        };
    right |= side("sidewalk:right").unwrap_or(false);
    left |= side("sidewalk:left").unwrap_or(false);
    if right || left {
        Mode::Sidewalks { right, left }
    } else if matches!(t.get("sidewalk"), Some("no" | "none"))
        && !matches!(class, RoadClass::Primary | RoadClass::Secondary | RoadClass::Tertiary)
    {
        Mode::Shared
    } else {
        Mode::None
    }
}

fn mapped_kind(t: &Tags) -> Option<WalkKind> {
    let hw = t.get("highway")?;
    if t.is("foot", "no") || t.is("area", "yes") && hw != "pedestrian" {
        return None;
    }
    Some(match hw {
        "footway" | "path" | "cycleway" | "track" | "bridleway" | "corridor" => match t.get("footway") {
            Some("sidewalk") => WalkKind::Sidewalk,
            Some("crossing") => WalkKind::Crossing,
            _ if t.has("crossing") && hw == "footway" => WalkKind::Crossing,
            _ => WalkKind::Footway,
        },
        "pedestrian" => WalkKind::Pedestrian,
        "steps" => WalkKind::Steps,
        _ => return None,
    })
}

struct Graph<'c, 'a> {
    ctx: &'c Ctx<'a>,
    nodes: BTreeMap<Key, u32>,
    twin_nodes: Vec<WalkNode>,
    edges: Vec<WalkEdge>,
}

impl Graph<'_, '_> {
    fn node(&mut self, key: Key, p: P2, source: SourceRef) -> u32 {
        if let Some(i) = self.nodes.get(&key) {
            return *i;
        }
        let i = self.twin_nodes.len() as u32;
        self.twin_nodes.push(WalkNode { source, position: self.ctx.ground(p) });
        self.nodes.insert(key, i);
        i
    }
    fn edge(
        &mut self,
        source: SourceRef,
        (from, to): (u32, u32),
        kind: WalkKind,
        signalled: bool,
        pts: &[P2],
        width_m: f64,
    ) {
        if from == to {
            return;
        }
        let polyline: Vec<P3> = pts.iter().map(|p| self.ctx.ground(*p)).collect();
        let length_m = swm_twin::polyline_length_m(&polyline);
        self.edges.push(WalkEdge { source, from, to, kind, signalled, polyline, length_m, width_m });
    }
    fn pos(&self, i: u32) -> P2 {
        let p = self.twin_nodes[i as usize].position;
        [p[0], p[1]]
    }
}

struct Sidewalk {
    seg: usize,
    side: u8,
    points: Vec<P2>,
    /// (arc length, walk node) where something attaches.
    attach: Vec<(f64, u32)>,
}

fn project(points: &[P2], p: P2) -> (f64, f64, P2) {
    let mut best = (f64::INFINITY, 0.0, p);
    let mut acc = 0.0;
    for w in points.windows(2) {
        let (d, t) = geom::point_segment_distance(p, w[0], w[1]);
        let l = geom::dist(w[0], w[1]);
        if d < best.0 {
            best = (d, acc + t * l, [w[0][0] + (w[1][0] - w[0][0]) * t, w[0][1] + (w[1][1] - w[0][1]) * t]);
        }
        acc += l;
    }
    best
}

/// A sidewalk corner around a junction or a dead end: from `from` counter-clockwise around
/// `center` to `to`, along an arc (radius blending between the two ends), so that it keeps
/// off the carriageway at bends instead of cutting the corner. `gap_rad` is the angle
/// between the two roads the corner lies between: a sweep wider than it means the two
/// sidewalks cross (the inside of a bend), and the corner is a straight link.
fn corner_arc(center: P2, from: P2, to: P2, gap_rad: f64) -> Vec<P2> {
    let a0 = (from[1] - center[1]).atan2(from[0] - center[0]);
    let a1 = (to[1] - center[1]).atan2(to[0] - center[0]);
    let sweep = (a1 - a0).rem_euclid(std::f64::consts::TAU);
    let (r0, r1) = (geom::dist(center, from), geom::dist(center, to));
    if sweep < 20f64.to_radians() || sweep > gap_rad {
        return vec![from, to];
    }
    let steps = (sweep / 15f64.to_radians()).ceil() as usize;
    let mut pts = vec![from];
    for i in 1..steps {
        let t = i as f64 / steps as f64;
        let (a, r) = (a0 + sweep * t, r0 + (r1 - r0) * t);
        pts.push([center[0] + r * a.cos(), center[1] + r * a.sin()]);
    }
    pts.push(to);
    pts
}

pub fn build(ctx: &Ctx, net: &RoadNetwork, twin: &mut Twin) {
    let mut g = Graph { ctx, nodes: BTreeMap::new(), twin_nodes: Vec::new(), edges: Vec::new() };
    let way_tags = |w: i64| &ctx.data.ways[&w].tags;
    let modes: Vec<Mode> = net.segments.iter().map(|s| road_mode(way_tags(s.way), s.class, s.is_link)).collect();

    // Importance of nodes on mapped walk ways: ends, shared with other ways or roads.
    let mut uses: HashMap<i64, u32> = HashMap::new();
    let walk_ways: Vec<(i64, WalkKind, &Tags, &Vec<i64>)> =
        ctx.data.ways.iter().filter_map(|(id, w)| mapped_kind(&w.tags).map(|k| (*id, k, &w.tags, &w.nodes))).collect();
    for (_, _, _, nodes) in &walk_ways {
        for n in nodes.iter() {
            *uses.entry(*n).or_default() += 1;
        }
    }
    for s in &net.segments {
        for n in &s.nodes {
            *uses.entry(*n).or_default() += 1;
        }
    }

    // 1. Mapped ways, split at important nodes.
    for (id, kind, tags, nodes) in &walk_ways {
        let source = ctx.data.source_ref(OsmType::Way, *id);
        let signalled = tags.is("crossing", "traffic_signals")
            || nodes.iter().any(|n| ctx.data.nodes.get(n).is_some_and(|n| n.tags.is("crossing", "traffic_signals")));
        let width = tags.get("width").and_then(super::tags::parse_length_m).unwrap_or(2.0);
        let mut run: Vec<(i64, P2)> = Vec::new();
        let flush = |g: &mut Graph, run: &mut Vec<(i64, P2)>| {
            if run.len() >= 2 {
                let (a, b) = (run[0], run[run.len() - 1]);
                let na = g.node(Key::Osm(a.0), a.1, SourceRef::node(a.0));
                let nb = g.node(Key::Osm(b.0), b.1, SourceRef::node(b.0));
                let pts: Vec<P2> = run.iter().map(|r| r.1).collect();
                g.edge(source, (na, nb), *kind, *kind == WalkKind::Crossing && signalled, &pts, width);
            }
            run.clear();
        };
        for (i, n) in nodes.iter().enumerate() {
            match ctx.xy(*n).filter(|p| ctx.keeps_point(*p)) {
                None => flush(&mut g, &mut run),
                Some(p) => {
                    run.push((*n, p));
                    let split = i + 1 == nodes.len() || uses.get(n).copied().unwrap_or(0) >= 2;
                    if split && run.len() >= 2 {
                        let last = run[run.len() - 1];
                        flush(&mut g, &mut run);
                        run.push(last);
                    }
                }
            }
        }
        flush(&mut g, &mut run);
    }

    // 2. Shared roads on their centre lines; derived sidewalks.
    let mut sidewalks: Vec<Sidewalk> = Vec::new();
    let mut sidewalk_of: HashMap<(usize, u8), usize> = HashMap::new();
    for (si, s) in net.segments.iter().enumerate() {
        match modes[si] {
            Mode::None => {}
            Mode::Shared => {
                let (a, b) = (s.from(), s.to());
                let na = g.node(Key::Osm(a), s.points[0], SourceRef::node(a));
                let nb = g.node(Key::Osm(b), s.points[s.points.len() - 1], SourceRef::node(b));
                let source = ctx.data.source_ref(OsmType::Way, s.way);
                g.edge(source, (na, nb), WalkKind::SharedRoad, false, &s.points, s.width_m());
            }
            Mode::Sidewalks { right, left } => {
                let len = geom::polyline_len(&s.points);
                let trim_at = |node: i64| -> f64 {
                    let arms = net.arms.get(&node).map(|a| a.len()).unwrap_or(0);
                    if arms >= 3 {
                        let r =
                            net.arms[&node].iter().map(|(x, _)| net.segments[*x].width_m() / 2.0).fold(0.0, f64::max);
                        (r + SIDEWALK_OFFSET_M + 1.5).min(0.45 * len)
                    } else {
                        0.0
                    }
                };
                let core = geom::cut_polyline(&s.points, trim_at(s.from()), len - trim_at(s.to()));
                for (side, on) in [(0u8, right), (1u8, left)] {
                    if !on {
                        continue;
                    }
                    let off = (s.width_m() / 2.0 + SIDEWALK_OFFSET_M) * if side == 0 { 1.0 } else { -1.0 };
                    let points = geom::offset_polyline(&core, off);
                    sidewalk_of.insert((si, side), sidewalks.len());
                    sidewalks.push(Sidewalk { seg: si, side, points, attach: Vec::new() });
                }
            }
        }
    }
    let mut next_attach = 0u32;
    let mut attach = |g: &mut Graph, sw: &mut Sidewalk, p: P2| -> u32 {
        let (_, s, q) = project(&sw.points, p);
        if let Some((_, n)) = sw.attach.iter().find(|(t, _)| (t - s).abs() < 0.5) {
            return *n;
        }
        next_attach += 1;
        let n = g.node(Key::Attach(next_attach), q, SourceRef::Derived);
        sw.attach.push((s, n));
        n
    };

    // 3. Corners and junction crossings at graph nodes.
    for (node, arms) in &net.arms {
        let Some(c) = ctx.xy(*node) else { continue };
        let j = net.junction_of[node] as usize;
        let signalled = twin.junctions[j].control.is_signalized();
        // Leaving direction of each arm, its right and left sidewalk end.
        let mut legs: Vec<(f64, Option<u32>, Option<u32>, usize)> = Vec::new();
        for &(si, at_end) in arms {
            let s = &net.segments[si];
            let d = if at_end {
                let mut r = s.points.clone();
                r.reverse();
                geom::end_direction(&r, false)
            } else {
                geom::end_direction(&s.points, false)
            };
            let end_idx = at_end as u8;
            let end_node = |g: &mut Graph, side: u8| -> Option<u32> {
                let sw = &sidewalks[*sidewalk_of.get(&(si, side))?];
                let p = if at_end { sw.points[sw.points.len() - 1] } else { sw.points[0] };
                Some(g.node(Key::SidewalkEnd(si, side, end_idx), p, SourceRef::Derived))
            };
            // Leaving along the segment: its right side is on the right; against it: its left.
            let (right, left) = if at_end {
                (end_node(&mut g, 1), end_node(&mut g, 0))
            } else {
                (end_node(&mut g, 0), end_node(&mut g, 1))
            };
            let shared =
                if modes[si] == Mode::Shared { Some(g.node(Key::Osm(*node), c, SourceRef::node(*node))) } else { None };
            legs.push((d[1].atan2(d[0]), right.or(shared), left.or(shared), si));
            // Signalled junction: a crossing across each arm with sidewalks on both sides.
            if signalled
                && arms.len() >= 2
                && let (Some(r), Some(l)) = (right, left)
            {
                let (pr, pl) = (g.pos(r), g.pos(l));
                g.edge(SourceRef::Derived, (r, l), WalkKind::Crossing, true, &[pr, pl], 4.0);
            }
        }
        legs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.3.cmp(&b.3)));
        let n = legs.len();
        if n == 1 {
            // Round the dead end, away from the road.
            if let (Some(r), Some(l)) = (legs[0].1, legs[0].2) {
                let (pr, pl) = (g.pos(r), g.pos(l));
                g.edge(
                    SourceRef::Derived,
                    (l, r),
                    WalkKind::Sidewalk,
                    false,
                    &corner_arc(c, pl, pr, std::f64::consts::TAU),
                    SIDEWALK_WIDTH_M,
                );
            }
            continue;
        }
        for k in 0..n {
            let (a, b) = (&legs[k], &legs[(k + 1) % n]);
            if let (Some(l), Some(r)) = (a.2, b.1) {
                let (pl, pr) = (g.pos(l), g.pos(r));
                // Shared-road arms end at the junction's centre: a straight link.
                let gap_rad = (b.0 - a.0).rem_euclid(std::f64::consts::TAU);
                let path = if pl == c || pr == c { vec![pl, pr] } else { corner_arc(c, pl, pr, gap_rad) };
                g.edge(SourceRef::Derived, (l, r), WalkKind::Sidewalk, false, &path, SIDEWALK_WIDTH_M);
            }
        }
    }

    // 4. Tagged crossing nodes on roads with sidewalks.
    let crossing_way_nodes: HashMap<i64, ()> = walk_ways
        .iter()
        .filter(|(_, k, _, _)| *k == WalkKind::Crossing)
        .flat_map(|(_, _, _, nodes)| nodes.iter().map(|n| (*n, ())))
        .collect();
    for (si, s) in net.segments.iter().enumerate() {
        let (Some(&r), Some(&l)) = (sidewalk_of.get(&(si, 0)), sidewalk_of.get(&(si, 1))) else { continue };
        for n in &s.nodes[1..s.nodes.len() - 1] {
            let Some(node) = ctx.data.nodes.get(n) else { continue };
            if !node.tags.is("highway", "crossing") || crossing_way_nodes.contains_key(n) {
                continue;
            }
            let Some(p) = ctx.xy(*n) else { continue };
            let signalled = node.tags.is("crossing", "traffic_signals");
            let (nr, nl) = {
                let (a, b) = if r < l {
                    let (x, y) = sidewalks.split_at_mut(l);
                    (&mut x[r], &mut y[0])
                } else {
                    let (x, y) = sidewalks.split_at_mut(r);
                    (&mut y[0], &mut x[l])
                };
                (attach(&mut g, a, p), attach(&mut g, b, p))
            };
            let (pr, pl) = (g.pos(nr), g.pos(nl));
            g.edge(SourceRef::node(*n), (nr, nl), WalkKind::Crossing, signalled, &[pr, p, pl], 4.0);
        }
    }

    // 5. Dangling mapped ends (crossing ways included) join the nearest derived sidewalk.
    let mut degree: HashMap<u32, u32> = HashMap::new();
    for e in &g.edges {
        *degree.entry(e.from).or_default() += 1;
        *degree.entry(e.to).or_default() += 1;
    }
    let dangling: Vec<(Key, u32)> = g
        .nodes
        .iter()
        .filter(|(k, i)| matches!(k, Key::Osm(_)) && degree.get(i).copied().unwrap_or(0) == 1)
        .map(|(k, i)| (*k, *i))
        .collect();
    if !sidewalks.is_empty() {
        // Grid of sidewalk segments for the nearest search.
        let cell = 50.0;
        let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        for (i, sw) in sidewalks.iter().enumerate() {
            for p in &sw.points {
                grid.entry(((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64)).or_default().push(i);
            }
        }
        for (_, node) in dangling {
            let p = g.pos(node);
            let (cx, cy) = ((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64);
            let mut cands: Vec<usize> = (-1..=1)
                .flat_map(|dx| (-1..=1).map(move |dy| (cx + dx, cy + dy)))
                .filter_map(|k| grid.get(&k))
                .flatten()
                .copied()
                .collect();
            cands.sort_unstable();
            cands.dedup();
            let best = cands
                .into_iter()
                .map(|i| (project(&sidewalks[i].points, p).0, i))
                .filter(|(d, _)| *d <= ATTACH_M)
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            if let Some((d, i)) = best {
                let a = attach(&mut g, &mut sidewalks[i], p);
                if d > 0.01 {
                    let q = g.pos(a);
                    g.edge(SourceRef::Derived, (node, a), WalkKind::Footway, false, &[p, q], 2.0);
                }
            }
        }
    }

    // 6. Derived sidewalks, split where things attach.
    for sw in &mut sidewalks {
        let s = &net.segments[sw.seg];
        let source = ctx.data.source_ref(OsmType::Way, s.way);
        let len = geom::polyline_len(&sw.points);
        let start = g.node(Key::SidewalkEnd(sw.seg, sw.side, 0), sw.points[0], SourceRef::Derived);
        let end = g.node(Key::SidewalkEnd(sw.seg, sw.side, 1), sw.points[sw.points.len() - 1], SourceRef::Derived);
        sw.attach.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut stops: Vec<(f64, u32)> = vec![(0.0, start)];
        stops.extend(sw.attach.iter().copied());
        stops.push((len, end));
        for w in stops.windows(2) {
            let pts = geom::cut_polyline(&sw.points, w[0].0, w[1].0);
            g.edge(source, (w[0].1, w[1].1), WalkKind::Sidewalk, false, &pts, SIDEWALK_WIDTH_M);
        }
    }

    twin.walk_nodes = g.twin_nodes;
    twin.walk_edges = g.edges;
    tracing::info!(
        nodes = twin.walk_nodes.len(),
        edges = twin.walk_edges.len(),
        crossings = twin.crossings(),
        "walk graph"
    );
}
