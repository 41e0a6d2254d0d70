//! Global routes: A* on the twin's walk graph (delivery robot) and lane graph (car).
//!
//! * [`astar`]: A* over nodes `0..n` with non-negative edge costs and an admissible
//!   heuristic; ties are broken by the lower `f`, then the lower node index, so the route is
//!   a pure function of the graph (no hash-map order).
//! * **Walk graph** ([`WalkGraph`]): nodes are `Twin::walk_nodes`, edges the undirected
//!   `Twin::walk_edges` with their `length_m`; heuristic: the straight-line distance.
//! * **Lane graph** ([`LaneGraph`]): nodes are lanes; from a lane one may go, at its end,
//!   through a `LaneConnection` to its `to_lane`; the cost of entering a lane is the
//!   connection's length plus the lane's length; heuristic: the straight-line distance from
//!   the lane's end to the goal lane's end (admissible: no path is shorter). Lane changes are
//!   not routed (the route stays on connected lanes; the car keeps its lane).
//! * A [`Route`] is the polyline the robot follows with arc lengths `s_m`, plus what rules
//!   need along it: the crossings (delivery robot) and the signalled junction entries
//!   (car) at their arc lengths.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use swm_twin::{P2, Twin, WalkKind};

use crate::RobotError;

#[derive(Clone, Copy, PartialEq)]
struct Open {
    f: f64,
    g: f64,
    node: usize,
}
impl Eq for Open {}
impl Ord for Open {
    fn cmp(&self, o: &Self) -> Ordering {
        // Min-heap on f, then on node index.
        o.f.total_cmp(&self.f).then(o.node.cmp(&self.node))
    }
}
impl PartialOrd for Open {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// A* from `start` to `goal` over nodes `0..n`: `neighbours(v, out)` pushes `(w, cost ≥ 0)`,
/// `heuristic(v)` must not overestimate the remaining cost. Returns the nodes from start to
/// goal and the total cost, or `None` when the goal is unreachable.
pub fn astar(
    n: usize,
    start: usize,
    goal: usize,
    mut neighbours: impl FnMut(usize, &mut Vec<(usize, f64)>),
    heuristic: impl Fn(usize) -> f64,
) -> Option<(Vec<usize>, f64)> {
    if start >= n || goal >= n {
        return None;
    }
    let mut g = vec![f64::INFINITY; n];
    let mut parent = vec![usize::MAX; n];
    let mut closed = vec![false; n];
    let mut heap = BinaryHeap::new();
    g[start] = 0.0;
    heap.push(Open { f: heuristic(start), g: 0.0, node: start });
    let mut buf = Vec::new();
    while let Some(Open { g: gv, node: v, .. }) = heap.pop() {
        if closed[v] || gv > g[v] {
            continue;
        }
        if v == goal {
            let mut path = vec![goal];
            let mut u = goal;
            while u != start {
                u = parent[u];
                path.push(u);
            }
            path.reverse();
            return Some((path, gv));
        }
        closed[v] = true;
        buf.clear();
        neighbours(v, &mut buf);
        for &(w, c) in &buf {
            if w >= n || closed[w] || !c.is_finite() || c < 0.0 {
                continue;
            }
            let ng = gv + c;
            if ng < g[w] || (ng == g[w] && v < parent[w]) {
                g[w] = ng;
                parent[w] = v;
                heap.push(Open { f: ng + heuristic(w), g: ng, node: w });
            }
        }
    }
    None
}

/// Every node reachable from `start` at a cost of at most `max_cost`, with that cost,
/// ordered by node index (Dijkstra, stopped at `max_cost`).
pub fn reachable_within(
    n: usize,
    start: usize,
    max_cost: f64,
    mut neighbours: impl FnMut(usize, &mut Vec<(usize, f64)>),
) -> Vec<(usize, f64)> {
    if start >= n {
        return Vec::new();
    }
    let mut g = vec![f64::INFINITY; n];
    let mut heap = BinaryHeap::new();
    g[start] = 0.0;
    heap.push(Open { f: 0.0, g: 0.0, node: start });
    let mut buf = Vec::new();
    while let Some(Open { g: gv, node: v, .. }) = heap.pop() {
        if gv > g[v] {
            continue;
        }
        buf.clear();
        neighbours(v, &mut buf);
        for &(w, c) in &buf {
            let ng = gv + c;
            if w < n && c.is_finite() && c >= 0.0 && ng <= max_cost && ng < g[w] {
                g[w] = ng;
                heap.push(Open { f: ng, g: ng, node: w });
            }
        }
    }
    g.iter().enumerate().filter(|(_, c)| c.is_finite()).map(|(i, &c)| (i, c)).collect()
}

/// A stretch of a route on a crossing (delivery robot).
#[derive(Clone, Debug, PartialEq)]
pub struct RouteCrossing {
    /// Arc length where the crossing starts and ends on the route (m).
    pub s_start_m: f64,
    pub s_end_m: f64,
    /// The walk edge.
    pub walk_edge: u32,
    /// Whether a pedestrian signal controls it.
    pub signalled: bool,
}

/// Where a car's route enters a junction through a connection (car).
#[derive(Clone, Debug, PartialEq)]
pub struct RouteStop {
    /// Arc length of the stop line (or the lane's end) on the route (m).
    pub s_m: f64,
    /// The lane that ends there.
    pub lane: u32,
    /// Index into `Twin::lane_connections` of the movement taken.
    pub connection: u32,
}

/// A route the robot follows (module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// The polyline (twin frame, m), without repeated points.
    pub points: Vec<P2>,
    /// Arc length at each point (m), from 0.
    pub s_m: Vec<f64>,
    pub crossings: Vec<RouteCrossing>,
    pub stops: Vec<RouteStop>,
    /// The graph nodes A* returned (walk nodes or lanes).
    pub nodes: Vec<u32>,
    /// Height of each point (m, twin frame) where the route knows it: a car's route on the
    /// lane graph, raised [`swm_twin::LEVEL_HEIGHT_M`] per level as the teacher simulator
    /// raises its vehicles (connections ramp); empty otherwise (the terrain's then).
    pub z_m: Vec<f64>,
}

impl Route {
    fn from_points(raw: Vec<P2>) -> Route {
        Route::from_points_z(raw, None)
    }

    /// [`Route::from_points`] with a height per raw point (kept for the points kept).
    fn from_points_z(raw: Vec<P2>, raw_z: Option<Vec<f64>>) -> Route {
        let mut points: Vec<P2> = Vec::with_capacity(raw.len());
        let mut z_m = Vec::new();
        for (i, p) in raw.into_iter().enumerate() {
            if points.last().is_none_or(|q: &P2| (q[0] - p[0]).hypot(q[1] - p[1]) > 1e-3) {
                points.push(p);
                if let Some(z) = raw_z.as_ref().and_then(|z| z.get(i)) {
                    z_m.push(*z);
                }
            }
        }
        if z_m.len() != points.len() {
            z_m.clear();
        }
        let mut s_m = Vec::with_capacity(points.len());
        let mut acc = 0.0;
        for (i, p) in points.iter().enumerate() {
            if i > 0 {
                acc += (p[0] - points[i - 1][0]).hypot(p[1] - points[i - 1][1]);
            }
            s_m.push(acc);
        }
        Route { points, s_m, crossings: Vec::new(), stops: Vec::new(), nodes: Vec::new(), z_m }
    }

    /// The height at arc length `s_m` (clamped to the route), where the route knows it.
    pub fn z_at(&self, s_m: f64) -> Option<f64> {
        if self.z_m.len() != self.points.len() || self.points.is_empty() {
            return None;
        }
        if self.points.len() == 1 {
            return Some(self.z_m[0]);
        }
        let s = s_m.clamp(0.0, self.length_m());
        let i = self.s_m.partition_point(|&v| v <= s).clamp(1, self.points.len() - 1) - 1;
        let len = (self.s_m[i + 1] - self.s_m[i]).max(1e-9);
        let u = ((s - self.s_m[i]) / len).clamp(0.0, 1.0);
        Some(self.z_m[i] + u * (self.z_m[i + 1] - self.z_m[i]))
    }

    /// Total length (m).
    pub fn length_m(&self) -> f64 {
        self.s_m.last().copied().unwrap_or(0.0)
    }

    /// The point at arc length `s_m` (clamped to the route) and the unit tangent there.
    pub fn point_at(&self, s_m: f64) -> (P2, P2) {
        if self.points.len() < 2 {
            return (self.points.first().copied().unwrap_or([0.0, 0.0]), [1.0, 0.0]);
        }
        let s = s_m.clamp(0.0, self.length_m());
        let i = self.s_m.partition_point(|&v| v <= s).clamp(1, self.points.len() - 1) - 1;
        let (a, b) = (self.points[i], self.points[i + 1]);
        let len = (self.s_m[i + 1] - self.s_m[i]).max(1e-9);
        let u = ((s - self.s_m[i]) / len).clamp(0.0, 1.0);
        ([a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1])], [(b[0] - a[0]) / len, (b[1] - a[1]) / len])
    }

    /// Projects `p` on the stretch of the route between arc lengths `s_lo_m` and `s_hi_m`:
    /// `(s_m, distance_m)` of the closest point of that stretch (the lowest `s` on ties).
    pub fn project(&self, p: P2, s_lo_m: f64, s_hi_m: f64) -> (f64, f64) {
        let mut best = (0.0, f64::INFINITY);
        for i in 0..self.points.len().saturating_sub(1) {
            if self.s_m[i + 1] < s_lo_m || self.s_m[i] > s_hi_m {
                continue;
            }
            let (a, b) = (self.points[i], self.points[i + 1]);
            let d = [b[0] - a[0], b[1] - a[1]];
            let l2 = (d[0] * d[0] + d[1] * d[1]).max(1e-12);
            let seg_len = self.s_m[i + 1] - self.s_m[i];
            let (u_lo, u_hi) = if seg_len > 0.0 {
                (((s_lo_m - self.s_m[i]) / seg_len).max(0.0), ((s_hi_m - self.s_m[i]) / seg_len).min(1.0))
            } else {
                (0.0, 1.0)
            };
            let u = (((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / l2).clamp(u_lo, u_hi.max(u_lo));
            let q = [a[0] + u * d[0], a[1] + u * d[1]];
            let dist = (p[0] - q[0]).hypot(p[1] - q[1]);
            if dist < best.1 {
                best = (self.s_m[i] + u * (self.s_m[i + 1] - self.s_m[i]), dist);
            }
        }
        if best.1.is_infinite() && !self.points.is_empty() {
            let q = self.points[0];
            best = (0.0, (p[0] - q[0]).hypot(p[1] - q[1]));
        }
        best
    }
}

/// A route along a polyline (no graph): for synthetic scenes and tests.
pub fn straight_route(points: &[P2]) -> Route {
    Route::from_points(points.to_vec())
}

fn dist(a: P2, b: P2) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

fn flat(p: &[f64; 3]) -> P2 {
    [p[0], p[1]]
}

/// The walk graph as adjacency lists (module docs).
#[derive(Clone, Debug)]
pub struct WalkGraph {
    /// `adjacency[node]`: `(other node, walk edge)`, in edge order.
    pub adjacency: Vec<Vec<(u32, u32)>>,
}

impl WalkGraph {
    /// The walk graph of `twin` (edges with an endpoint out of range are skipped).
    pub fn new(twin: &Twin) -> WalkGraph {
        let n = twin.walk_nodes.len();
        let mut adjacency = vec![Vec::new(); n];
        for (ei, e) in twin.walk_edges.iter().enumerate() {
            let (a, b) = (e.from as usize, e.to as usize);
            if a < n && b < n && a != b && e.length_m.is_finite() {
                adjacency[a].push((e.to, ei as u32));
                adjacency[b].push((e.from, ei as u32));
            }
        }
        WalkGraph { adjacency }
    }

    /// Walk nodes whose shortest walk from `start` is `lo_m..=hi_m` long, by index.
    pub fn nodes_within(&self, twin: &Twin, start: u32, lo_m: f64, hi_m: f64) -> Vec<u32> {
        reachable_within(twin.walk_nodes.len(), start as usize, hi_m, |v, out| {
            for &(w, e) in &self.adjacency[v] {
                out.push((w as usize, twin.walk_edges[e as usize].length_m));
            }
        })
        .into_iter()
        .filter(|&(_, c)| c >= lo_m)
        .map(|(v, _)| v as u32)
        .collect()
    }

    /// The shortest walk from node `start` to node `goal` as a [`Route`].
    pub fn route(&self, twin: &Twin, start: u32, goal: u32) -> Result<Route, RobotError> {
        let pos = |v: usize| flat(&twin.walk_nodes[v].position);
        let target = pos(goal as usize).to_owned();
        let (nodes, _) = astar(
            twin.walk_nodes.len(),
            start as usize,
            goal as usize,
            |v, out| {
                for &(w, e) in &self.adjacency[v] {
                    out.push((w as usize, twin.walk_edges[e as usize].length_m));
                }
            },
            |v| dist(pos(v), target),
        )
        .ok_or(RobotError::NoRoute { graph: "walk", from: start, to: goal })?;
        let mut pts: Vec<P2> = vec![pos(nodes[0])];
        let mut spans = Vec::new();
        for w in nodes.windows(2) {
            // The shortest edge between the two nodes (A* used the same).
            let e = self.adjacency[w[0]]
                .iter()
                .filter(|(o, _)| *o as usize == w[1])
                .map(|&(_, e)| e)
                .min_by(|a, b| twin.walk_edges[*a as usize].length_m.total_cmp(&twin.walk_edges[*b as usize].length_m))
                .expect("A* follows edges");
            let edge = &twin.walk_edges[e as usize];
            let mut poly: Vec<P2> = edge.polyline.iter().map(flat).collect();
            if edge.from as usize != w[0] {
                poly.reverse();
            }
            let before = pts.len();
            pts.extend(poly);
            spans.push((before, e));
        }
        let raw_len = pts.len();
        let mut route = Route::from_points(pts.clone());
        // Arc lengths of the crossing spans, measured on the raw points.
        let mut raw_s = vec![0.0; raw_len];
        for i in 1..raw_len {
            raw_s[i] = raw_s[i - 1] + dist(pts[i - 1], pts[i]);
        }
        for (k, &(start_i, e)) in spans.iter().enumerate() {
            let edge = &twin.walk_edges[e as usize];
            if edge.kind != WalkKind::Crossing {
                continue;
            }
            let end_i = spans.get(k + 1).map_or(raw_len, |s| s.0) - 1;
            route.crossings.push(RouteCrossing {
                s_start_m: raw_s[start_i.saturating_sub(1)],
                s_end_m: raw_s[end_i],
                walk_edge: e,
                signalled: edge.signalled,
            });
        }
        route.nodes = nodes.iter().map(|&v| v as u32).collect();
        Ok(route)
    }
}

/// The lane graph as successor lists (module docs).
#[derive(Clone, Debug)]
pub struct LaneGraph {
    /// `successors[lane]`: `(to lane, connection)`, in connection order.
    pub successors: Vec<Vec<(u32, u32)>>,
}

impl LaneGraph {
    /// The lane graph of `twin` (connections with a lane out of range are skipped).
    pub fn new(twin: &Twin) -> LaneGraph {
        let n = twin.lanes.len();
        let mut successors = vec![Vec::new(); n];
        for (ci, c) in twin.lane_connections.iter().enumerate() {
            if (c.from_lane as usize) < n && (c.to_lane as usize) < n && c.length_m.is_finite() {
                successors[c.from_lane as usize].push((c.to_lane, ci as u32));
            }
        }
        LaneGraph { successors }
    }

    /// Lanes whose end is `lo_m..=hi_m` from the start of lane `start` by the shortest drive,
    /// by index.
    pub fn lanes_within(&self, twin: &Twin, start: u32, lo_m: f64, hi_m: f64) -> Vec<u32> {
        let first = twin.lanes.get(start as usize).map_or(0.0, |l| l.length_m);
        reachable_within(twin.lanes.len(), start as usize, (hi_m - first).max(0.0), |v, out| {
            for &(w, c) in &self.successors[v] {
                out.push((w as usize, twin.lane_connections[c as usize].length_m + twin.lanes[w as usize].length_m));
            }
        })
        .into_iter()
        .filter(|&(_, c)| c + first >= lo_m)
        .map(|(v, _)| v as u32)
        .collect()
    }

    /// The shortest drive from lane `start` (its start) to the end of lane `goal`.
    pub fn route(&self, twin: &Twin, start: u32, goal: u32) -> Result<Route, RobotError> {
        let end = |l: usize| flat(twin.lanes[l].centerline.last().expect("lanes have points"));
        let target = end(goal as usize);
        let mut conn_of: HashMap<(usize, usize), u32> = HashMap::new();
        let (nodes, _) = astar(
            twin.lanes.len(),
            start as usize,
            goal as usize,
            |v, out| {
                for &(w, c) in &self.successors[v] {
                    let cost = twin.lane_connections[c as usize].length_m + twin.lanes[w as usize].length_m;
                    // The cheapest connection between two lanes is the one A* can take.
                    let e = conn_of.entry((v, w as usize)).or_insert(c);
                    if twin.lane_connections[*e as usize].length_m > twin.lane_connections[c as usize].length_m {
                        *e = c;
                    }
                    out.push((w as usize, cost));
                }
            },
            |v| dist(end(v), target),
        )
        .ok_or(RobotError::NoRoute { graph: "lane", from: start, to: goal })?;
        let mut pts: Vec<P2> = Vec::new();
        let mut zs: Vec<f64> = Vec::new();
        let mut stops_raw = Vec::new();
        let level_z = |l: u32| f64::from(twin.lanes[l as usize].level) * swm_twin::LEVEL_HEIGHT_M;
        for (k, &l) in nodes.iter().enumerate() {
            let lane = &twin.lanes[l];
            pts.extend(lane.centerline.iter().map(flat));
            zs.extend(lane.centerline.iter().map(|p| p[2] + level_z(l as u32)));
            if let Some(&next) = nodes.get(k + 1) {
                let c = conn_of[&(l, next)];
                let stop_s = lane.stop_line.as_ref().map_or(lane.length_m, |s| s.s_m);
                stops_raw.push((pts.len(), lane.length_m - stop_s, l as u32, c));
                let path = &twin.lane_connections[c as usize].path;
                let (z0, z1) = (level_z(l as u32), level_z(next as u32));
                // The connection ramps between its lanes' levels along its length.
                let mut cum = vec![0.0; path.len()];
                for i in 1..path.len() {
                    cum[i] = cum[i - 1] + dist(flat(&path[i - 1]), flat(&path[i]));
                }
                let total = cum.last().copied().unwrap_or(0.0).max(1e-9);
                pts.extend(path.iter().map(flat));
                zs.extend(path.iter().zip(&cum).map(|(p, c)| p[2] + z0 + (z1 - z0) * (c / total)));
            }
        }
        let mut route = Route::from_points_z(pts.clone(), Some(zs));
        let mut raw_s = vec![0.0; pts.len()];
        for i in 1..pts.len() {
            raw_s[i] = raw_s[i - 1] + dist(pts[i - 1], pts[i]);
        }
        for (end_i, back_m, lane, connection) in stops_raw {
            route.stops.push(RouteStop { s_m: (raw_s[end_i - 1] - back_m).max(0.0), lane, connection });
        }
        route.nodes = nodes.iter().map(|&v| v as u32).collect();
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dijkstra by brute force (Bellman–Ford) for comparison.
    fn bellman_ford(n: usize, edges: &[(usize, usize, f64)], s: usize) -> Vec<f64> {
        let mut d = vec![f64::INFINITY; n];
        d[s] = 0.0;
        for _ in 0..n {
            for &(a, b, c) in edges {
                if d[a] + c < d[b] {
                    d[b] = d[a] + c;
                }
                if d[b] + c < d[a] {
                    d[a] = d[b] + c;
                }
            }
        }
        d
    }

    #[test]
    fn astar_is_optimal_on_random_small_graphs() {
        let mut rng = swm_core::rng::CounterRng::new(7, 1);
        for _ in 0..200 {
            let n = 2 + (rng.next_u32() % 12) as usize;
            let pos: Vec<P2> = (0..n).map(|_| [rng.range_f64(0.0, 100.0), rng.range_f64(0.0, 100.0)]).collect();
            let mut edges = Vec::new();
            for a in 0..n {
                for b in a + 1..n {
                    if rng.chance(0.35) {
                        // Edge cost at least the straight line: the heuristic stays admissible.
                        edges.push((a, b, dist(pos[a], pos[b]) * rng.range_f64(1.0, 2.0)));
                    }
                }
            }
            let (s, t) = (0, n - 1);
            let truth = bellman_ford(n, &edges, s)[t];
            let got = astar(
                n,
                s,
                t,
                |v, out| {
                    for &(a, b, c) in &edges {
                        if a == v {
                            out.push((b, c));
                        } else if b == v {
                            out.push((a, c));
                        }
                    }
                },
                |v| dist(pos[v], pos[t]),
            );
            match got {
                None => assert!(truth.is_infinite()),
                Some((path, cost)) => {
                    assert!((cost - truth).abs() < 1e-9, "A* {cost} vs {truth}");
                    assert_eq!((path[0], *path.last().unwrap()), (s, t));
                    // The path's own cost is the reported cost.
                    let mut c = 0.0;
                    for w in path.windows(2) {
                        c += edges
                            .iter()
                            .filter(|e| (e.0 == w[0] && e.1 == w[1]) || (e.1 == w[0] && e.0 == w[1]))
                            .map(|e| e.2)
                            .fold(f64::INFINITY, f64::min);
                    }
                    assert!((c - cost).abs() < 1e-9);
                }
            }
        }
    }

    #[test]
    fn route_projection_and_points() {
        let r = Route::from_points(vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]);
        assert_eq!(r.length_m(), 20.0);
        let (p, t) = r.point_at(15.0);
        assert!((p[0] - 10.0).abs() < 1e-12 && (p[1] - 5.0).abs() < 1e-12 && (t[1] - 1.0).abs() < 1e-12);
        let (s, d) = r.project([12.0, 4.0], 0.0, 100.0);
        assert!((s - 14.0).abs() < 1e-12 && (d - 2.0).abs() < 1e-12);
        // A window excludes the closer leg.
        let (s, _) = r.project([9.0, 1.0], 0.0, 8.0);
        assert!(s <= 8.0);
    }
}
