//! Routing on the lane-group graph: the cheapest route of groups (Dijkstra), and the
//! graph's strongly connected components, which tell whether a destination is reachable at
//! all without searching the whole graph for it.
//!
//! The graph's nodes are lane groups; entering group `h` costs `cost_s[h]` (s).
//!
//! Tried and dropped (session 15): A* with landmark bounds (ALT, 8 landmarks on the
//! free-flow costs). On Jamsil it halved the groups a search reaches (376 against 684 on
//! average) but the bound's cost per group ate the gain (the same instruction count), and
//! it changes routes between routes of exactly equal cost.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What routing precomputes on a group graph.
#[derive(Clone, Debug, Default)]
pub struct RouteIndex {
    /// Strongly connected component of each group.
    comp: Vec<u32>,
    /// The components' graph (a DAG): the components each one has an edge into.
    comp_next: Vec<Vec<u32>>,
}

impl RouteIndex {
    /// The index of the graph `next` (each group's successors).
    pub fn new(next: &[Vec<u32>]) -> Self {
        let n = next.len();
        let mut prev: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (g, hs) in next.iter().enumerate() {
            for &h in hs {
                prev[h as usize].push(g as u32);
            }
        }
        let comp = components(next, &prev);
        let n_comp = comp.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
        let mut comp_next: Vec<Vec<u32>> = vec![Vec::new(); n_comp];
        for (g, hs) in next.iter().enumerate() {
            for &h in hs {
                let (a, b) = (comp[g], comp[h as usize]);
                if a != b {
                    comp_next[a as usize].push(b);
                }
            }
        }
        for v in &mut comp_next {
            v.sort_unstable();
            v.dedup();
        }
        RouteIndex { comp, comp_next }
    }

    /// Whether some route leads from group `from` to group `to`.
    pub fn reachable(&self, from: u32, to: u32) -> bool {
        let (a, b) = (self.comp[from as usize], self.comp[to as usize]);
        if a == b {
            return true;
        }
        // Search the components' DAG (small: a road network is mostly one component).
        let mut seen = vec![false; self.comp_next.len()];
        let mut stack = vec![a];
        seen[a as usize] = true;
        while let Some(c) = stack.pop() {
            for &d in &self.comp_next[c as usize] {
                if d == b {
                    return true;
                }
                if !seen[d as usize] {
                    seen[d as usize] = true;
                    stack.push(d);
                }
            }
        }
        false
    }

    /// The cheapest route from `from` to `to`, both included, where entering group `h`
    /// costs `cost_s[h]`; when `to` is `None` or unreachable, to the cheapest reachable sink
    /// group (the lower group index on a tie). `None` when there is neither.
    pub fn route(
        &self,
        next: &[Vec<u32>],
        from: u32,
        to: Option<u32>,
        sink_group: &[bool],
        cost_s: &[f64],
    ) -> Option<Vec<u32>> {
        let to = to.filter(|&t| self.reachable(from, t));
        let n = next.len();
        let mut dist = vec![f64::INFINITY; n];
        let mut prev = vec![u32::MAX; n];
        let mut heap = BinaryHeap::new();
        dist[from as usize] = 0.0;
        heap.push(Reverse((OrdF(0.0), from)));
        let mut target = None;
        while let Some(Reverse((OrdF(d), g))) = heap.pop() {
            if d > dist[g as usize] {
                continue;
            }
            match to {
                Some(t) if g == t => {
                    target = Some(g);
                    break;
                }
                // Without a target the first sink settled is the nearest (the lowest index on
                // a tie: the heap orders by cost, then group).
                None if sink_group[g as usize] && g != from => {
                    target = Some(g);
                    break;
                }
                _ => {}
            }
            for &h in &next[g as usize] {
                let nd = d + cost_s[h as usize];
                if nd < dist[h as usize] {
                    dist[h as usize] = nd;
                    prev[h as usize] = g;
                    heap.push(Reverse((OrdF(nd), h)));
                }
            }
        }
        let target = target?;
        let mut path = vec![target];
        let mut cur = target;
        while cur != from {
            cur = prev[cur as usize];
            if cur == u32::MAX {
                return None;
            }
            path.push(cur);
        }
        path.reverse();
        Some(path)
    }
}

/// Strongly connected components (Kosaraju, iterative): a component index per node.
fn components(next: &[Vec<u32>], prev: &[Vec<u32>]) -> Vec<u32> {
    let n = next.len();
    // Pass 1: nodes in order of finishing a depth-first search of the graph.
    let mut order = Vec::with_capacity(n);
    let mut visited = vec![false; n];
    for s in 0..n {
        if visited[s] {
            continue;
        }
        visited[s] = true;
        let mut stack = vec![(s as u32, 0usize)];
        while let Some(&mut (g, ref mut i)) = stack.last_mut() {
            if let Some(&h) = next[g as usize].get(*i) {
                *i += 1;
                if !visited[h as usize] {
                    visited[h as usize] = true;
                    stack.push((h, 0));
                }
            } else {
                order.push(g);
                stack.pop();
            }
        }
    }
    // Pass 2: the reversed graph, latest finisher first; each search is one component.
    let mut comp = vec![u32::MAX; n];
    let mut c = 0;
    for &s in order.iter().rev() {
        if comp[s as usize] != u32::MAX {
            continue;
        }
        comp[s as usize] = c;
        let mut stack = vec![s];
        while let Some(g) = stack.pop() {
            for &h in &prev[g as usize] {
                if comp[h as usize] == u32::MAX {
                    comp[h as usize] = c;
                    stack.push(h);
                }
            }
        }
        c += 1;
    }
    comp
}

#[derive(Clone, Copy, PartialEq)]
struct OrdF(f64);
impl Eq for OrdF {}
impl PartialOrd for OrdF {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Costs from `source` to every group, by relaxing every edge until nothing changes
    /// (Bellman-Ford: the reference, independent of the heap search).
    fn costs_from(next: &[Vec<u32>], cost: &[f64], source: u32) -> Vec<f64> {
        let mut d = vec![f64::INFINITY; next.len()];
        d[source as usize] = 0.0;
        loop {
            let mut changed = false;
            for g in 0..next.len() {
                for &h in &next[g] {
                    let nd = d[g] + cost[h as usize];
                    if nd < d[h as usize] {
                        d[h as usize] = nd;
                        changed = true;
                    }
                }
            }
            if !changed {
                return d;
            }
        }
    }

    fn reference_cost(next: &[Vec<u32>], cost: &[f64], from: u32, to: u32) -> f64 {
        costs_from(next, cost, from)[to as usize]
    }

    fn path_cost(path: &[u32], cost: &[f64]) -> f64 {
        path.iter().skip(1).map(|&g| cost[g as usize]).sum()
    }

    /// A grid of one-way and two-way streets with a dead-end spur and a sink, in a small
    /// deterministic pseudo-random mix.
    fn graph(seed: u64) -> (Vec<Vec<u32>>, Vec<f64>) {
        let side = 9u32;
        let n = side * side + 2;
        let mut next: Vec<Vec<u32>> = vec![Vec::new(); n as usize];
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for r in 0..side {
            for c in 0..side {
                let g = r * side + c;
                for (dr, dc) in [(0i32, 1i32), (1, 0)] {
                    let (r2, c2) = (r as i32 + dr, c as i32 + dc);
                    if r2 >= side as i32 || c2 >= side as i32 {
                        continue;
                    }
                    let h = r2 as u32 * side + c2 as u32;
                    match rnd() % 4 {
                        0 => next[g as usize].push(h),
                        1 => next[h as usize].push(g),
                        _ => {
                            next[g as usize].push(h);
                            next[h as usize].push(g);
                        }
                    }
                }
            }
        }
        // A source spur into the grid and a sink out of it.
        next[(n - 2) as usize].push(0);
        next[(side * side - 1) as usize].push(n - 1);
        let cost = (0..n).map(|_| 5.0 + (rnd() % 400) as f64 / 10.0).collect();
        (next, cost)
    }

    #[test]
    fn routes_are_the_cheapest_and_reachability_matches_the_search() {
        for seed in 1..20 {
            let (next, free) = graph(seed);
            let index = RouteIndex::new(&next);
            // Live costs (congestion) as well as free-flow ones.
            let live: Vec<f64> = free.iter().enumerate().map(|(i, c)| c * (1.0 + (i % 3) as f64 * 0.7)).collect();
            let sinks = vec![false; next.len()];
            for cost in [&free, &live] {
                for from in (0..next.len() as u32).step_by(7) {
                    for to in (0..next.len() as u32).step_by(5) {
                        let want = reference_cost(&next, cost, from, to);
                        assert_eq!(index.reachable(from, to), want.is_finite(), "seed {seed} {from}->{to}");
                        let got = index.route(&next, from, Some(to), &sinks, cost);
                        match got {
                            Some(p) => {
                                assert_eq!((p[0], *p.last().unwrap()), (from, to));
                                assert!(p.windows(2).all(|w| next[w[0] as usize].contains(&w[1])));
                                let c = path_cost(&p, cost);
                                assert!(
                                    (c - want).abs() <= 1e-9 * want.max(1.0),
                                    "seed {seed} {from}->{to}: {c} vs {want}"
                                );
                            }
                            None => assert!(!want.is_finite(), "seed {seed} {from}->{to}: no route, Dijkstra {want}"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn an_unreachable_destination_routes_to_the_nearest_sink() {
        let (next, cost) = graph(3);
        let n = next.len() as u32;
        let index = RouteIndex::new(&next);
        let mut sinks = vec![false; next.len()];
        sinks[(n - 1) as usize] = true;
        // The source spur (n - 2) has no way in: unreachable from the grid's corner 0.
        assert!(!index.reachable(0, n - 2));
        let d = costs_from(&next, &cost, 0);
        let got = index.route(&next, 0, Some(n - 2), &sinks, &cost);
        if d[(n - 1) as usize].is_finite() {
            let p = got.expect("a route to the sink");
            assert_eq!(*p.last().unwrap(), n - 1);
            assert!((path_cost(&p, &cost) - d[(n - 1) as usize]).abs() < 1e-9);
        } else {
            assert!(got.is_none());
        }
    }
}
