//! Graph analysis of a twin: connectivity of the lane graph.

use crate::Twin;

/// Strongly connected components of the lane graph (lanes as nodes; lane connections and
/// lane changes to the left and right neighbour as edges): where a vehicle can drive from
/// any lane to any other and back.
#[derive(Clone, Debug, PartialEq)]
pub struct LaneComponents {
    /// Component index of every lane.
    pub component_of: Vec<u32>,
    /// Lanes per component, largest first.
    pub sizes: Vec<usize>,
    /// Share of all lanes in the largest component (0 when there are no lanes).
    pub largest_share: f64,
    /// Share of the lane length (m) in the largest component.
    pub largest_length_share: f64,
    /// Share of all lanes in the largest *weakly* connected component: lanes joined to the
    /// main network at all, including one-way approaches from and exits to the district's
    /// edge (where traffic enters and leaves).
    pub largest_weak_share: f64,
}

/// Kosaraju's algorithm, iterative (districts have tens of thousands of lanes).
pub fn lane_components(twin: &Twin) -> LaneComponents {
    let n = twin.lanes.len();
    let mut fwd: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut rev: Vec<Vec<u32>> = vec![Vec::new(); n];
    for c in &twin.lane_connections {
        let (a, b) = (c.from_lane as usize, c.to_lane as usize);
        if a < n && b < n {
            fwd[a].push(b as u32);
            rev[b].push(a as u32);
        }
    }
    for (a, lane) in twin.lanes.iter().enumerate() {
        for b in [lane.left, lane.right].into_iter().flatten() {
            if (b as usize) < n {
                fwd[a].push(b);
                rev[b as usize].push(a as u32);
            }
        }
    }
    // First pass: finishing order.
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for s in 0..n {
        if seen[s] {
            continue;
        }
        seen[s] = true;
        let mut stack = vec![(s, 0usize)];
        while let Some((v, i)) = stack.pop() {
            if i < fwd[v].len() {
                stack.push((v, i + 1));
                let w = fwd[v][i] as usize;
                if !seen[w] {
                    seen[w] = true;
                    stack.push((w, 0));
                }
            } else {
                order.push(v);
            }
        }
    }
    // Second pass on the reversed graph in reverse finishing order.
    let mut comp = vec![u32::MAX; n];
    let mut raw_sizes = Vec::new();
    for &s in order.iter().rev() {
        if comp[s] != u32::MAX {
            continue;
        }
        let c = raw_sizes.len() as u32;
        let mut size = 0;
        let mut stack = vec![s];
        comp[s] = c;
        while let Some(v) = stack.pop() {
            size += 1;
            for &w in &rev[v] {
                if comp[w as usize] == u32::MAX {
                    comp[w as usize] = c;
                    stack.push(w as usize);
                }
            }
        }
        raw_sizes.push(size);
    }
    // Renumber: largest first, ties by first lane, for a stable order.
    let mut ids: Vec<usize> = (0..raw_sizes.len()).collect();
    let first_lane: Vec<usize> = {
        let mut f = vec![usize::MAX; raw_sizes.len()];
        for (l, &c) in comp.iter().enumerate() {
            f[c as usize] = f[c as usize].min(l);
        }
        f
    };
    ids.sort_by(|&a, &b| raw_sizes[b].cmp(&raw_sizes[a]).then(first_lane[a].cmp(&first_lane[b])));
    let mut new_id = vec![0u32; raw_sizes.len()];
    for (k, &c) in ids.iter().enumerate() {
        new_id[c] = k as u32;
    }
    let component_of: Vec<u32> = comp.iter().map(|&c| new_id[c as usize]).collect();
    let sizes: Vec<usize> = ids.iter().map(|&c| raw_sizes[c]).collect();
    let total_len: f64 = twin.lanes.iter().map(|l| l.length_m).sum();
    let largest_len: f64 =
        twin.lanes.iter().zip(&component_of).filter(|(_, c)| **c == 0).map(|(l, _)| l.length_m).sum();
    // Weak components: union-find over the same edges, undirected.
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for (a, outs) in fwd.iter().enumerate() {
        for &b in outs {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b as usize));
            if ra != rb {
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut weak_sizes = vec![0usize; n];
    for v in 0..n {
        weak_sizes[root(&mut parent, v)] += 1;
    }
    let largest_weak = weak_sizes.iter().copied().max().unwrap_or(0);
    LaneComponents {
        largest_weak_share: if n == 0 { 0.0 } else { largest_weak as f64 / n as f64 },
        largest_share: if n == 0 { 0.0 } else { sizes[0] as f64 / n as f64 },
        largest_length_share: if total_len > 0.0 { largest_len / total_len } else { 0.0 },
        component_of,
        sizes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Lane, LaneConnection, RoadClass, Turn};
    use swm_core::SourceRef;

    fn lane() -> Lane {
        Lane {
            source: SourceRef::Derived,
            road_class: RoadClass::Residential,
            name: None,
            centerline: vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]],
            length_m: 1.0,
            width_m: 3.0,
            speed_limit_mps: 8.0,
            speed_limit_tagged: false,
            forward: true,
            index_from_right: 0,
            lanes_in_direction: 1,
            from_junction: None,
            to_junction: None,
            left: None,
            right: None,
            turns: vec![],
            stop_line: None,
            signal: None,
            level: 0,
        }
    }

    fn conn(a: u32, b: u32) -> LaneConnection {
        LaneConnection {
            from_lane: a,
            to_lane: b,
            junction: 0,
            turn: Turn::Straight,
            path: vec![],
            length_m: 0.0,
            major: true,
        }
    }

    #[test]
    fn cycle_and_tail() {
        // 0 -> 1 -> 2 -> 0 is a cycle; 3 only feeds in.
        let t = Twin {
            lanes: vec![lane(), lane(), lane(), lane()],
            lane_connections: vec![conn(0, 1), conn(1, 2), conn(2, 0), conn(3, 0)],
            ..Default::default()
        };
        let c = lane_components(&t);
        assert_eq!(c.sizes, vec![3, 1]);
        assert_eq!(c.component_of, vec![0, 0, 0, 1]);
        assert!((c.largest_share - 0.75).abs() < 1e-12);
        assert!((c.largest_weak_share - 1.0).abs() < 1e-12);
    }
}
