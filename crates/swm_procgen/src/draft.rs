//! An OSM data set under construction, in the generator's frame, plus the road network
//! whose straight edges collect the nodes that other roads attach to (so that roads
//! meeting share a node, as OSM requires).

use crate::geom::{P, dist, lerp};
use std::collections::BTreeSet;
use swm_core::{LatLon, OsmType};
use swm_ingest::osm::{Member, OsmData, Relation, Tags, Way};

/// A relation member, by index into the draft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ref {
    Node(usize),
    Way(usize),
}

/// A straight road segment between two nodes; other nodes sit on it at `attach`.
#[derive(Clone, Debug)]
pub struct Edge {
    pub a: usize,
    pub b: usize,
    /// `(t, node)`: a node at `lerp(a, b, t)`, `0 < t < 1`.
    pub attach: Vec<(f64, usize)>,
}

/// A road made of consecutive edges, emitted as one or more ways.
#[derive(Clone, Debug)]
pub struct Line {
    pub edges: Vec<usize>,
    pub tags: Tags,
    /// Nodes at which the line is split into separate ways.
    pub split_at: BTreeSet<usize>,
    /// The ways emitted (filled by [`Draft::emit_lines`]).
    pub ways: Vec<usize>,
}

#[derive(Clone, Debug, Default)]
pub struct Draft {
    pub nodes: Vec<(P, Tags)>,
    pub ways: Vec<(Vec<usize>, Tags)>,
    pub relations: Vec<(Vec<(Ref, &'static str)>, Tags)>,
    pub edges: Vec<Edge>,
    pub lines: Vec<Line>,
}

/// Tags from string pairs.
pub fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

impl Draft {
    pub fn node(&mut self, p: P, tags: Tags) -> usize {
        self.nodes.push((p, tags));
        self.nodes.len() - 1
    }

    pub fn pos(&self, node: usize) -> P {
        self.nodes[node].0
    }

    pub fn tag_node(&mut self, node: usize, key: &str, value: &str) {
        self.nodes[node].1.insert(key, value);
    }

    pub fn way(&mut self, nodes: Vec<usize>, tags: Tags) -> usize {
        self.ways.push((nodes, tags));
        self.ways.len() - 1
    }

    /// A way through new nodes at `points`.
    pub fn polyline(&mut self, points: &[P], tags: Tags) -> usize {
        let nodes = points.iter().map(|p| self.node(*p, Tags::new())).collect();
        self.way(nodes, tags)
    }

    /// A closed way through new nodes at `ring` (given without the closing vertex).
    pub fn closed_way(&mut self, ring: &[P], tags: Tags) -> usize {
        let mut nodes: Vec<usize> = ring.iter().map(|p| self.node(*p, Tags::new())).collect();
        nodes.push(nodes[0]);
        self.way(nodes, tags)
    }

    pub fn relation(&mut self, members: Vec<(Ref, &'static str)>, tags: Tags) -> usize {
        self.relations.push((members, tags));
        self.relations.len() - 1
    }

    pub fn edge(&mut self, a: usize, b: usize) -> usize {
        self.edges.push(Edge { a, b, attach: Vec::new() });
        self.edges.len() - 1
    }

    pub fn edge_point(&self, edge: usize, t: f64) -> P {
        let e = &self.edges[edge];
        lerp(self.pos(e.a), self.pos(e.b), t)
    }

    pub fn edge_len(&self, edge: usize) -> f64 {
        let e = &self.edges[edge];
        dist(self.pos(e.a), self.pos(e.b))
    }

    /// The node at parameter `t` on `edge`: an existing one within 1.5 m, else a new one.
    pub fn attach(&mut self, edge: usize, t: f64) -> usize {
        let len = self.edge_len(edge).max(1e-9);
        let e = &self.edges[edge];
        if t * len < 1.5 {
            return e.a;
        }
        if (1.0 - t) * len < 1.5 {
            return e.b;
        }
        if let Some(&(_, n)) = e.attach.iter().find(|(s, _)| (s - t).abs() * len < 1.5) {
            return n;
        }
        let p = self.edge_point(edge, t);
        let n = self.node(p, Tags::new());
        self.edges[edge].attach.push((t, n));
        n
    }

    pub fn line(&mut self, edges: Vec<usize>, tags: Tags) -> usize {
        self.lines.push(Line { edges, tags, split_at: BTreeSet::new(), ways: Vec::new() });
        self.lines.len() - 1
    }

    /// The node sequence of a line: edge ends and attached nodes in order.
    pub fn line_nodes(&self, line: usize) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for &e in &self.lines[line].edges {
            let edge = &self.edges[e];
            let mut att = edge.attach.clone();
            att.sort_by(|x, y| x.0.total_cmp(&y.0));
            for n in std::iter::once(edge.a).chain(att.into_iter().map(|(_, n)| n)).chain(std::iter::once(edge.b)) {
                if out.last() != Some(&n) {
                    out.push(n);
                }
            }
        }
        out
    }

    /// Turns every line into ways, split at its `split_at` nodes.
    pub fn emit_lines(&mut self) {
        for l in 0..self.lines.len() {
            let nodes = self.line_nodes(l);
            let mut ways = Vec::new();
            let mut current: Vec<usize> = Vec::new();
            for (i, &n) in nodes.iter().enumerate() {
                current.push(n);
                let last = i + 1 == nodes.len();
                if current.len() >= 2 && (last || self.lines[l].split_at.contains(&n)) {
                    let tags = self.lines[l].tags.clone();
                    ways.push(self.way(std::mem::take(&mut current), tags));
                    current.push(n);
                }
            }
            self.lines[l].ways = ways;
        }
    }

    /// Converts to OSM data with synthetic ids; `to_wgs84` maps the generator's frame.
    pub fn into_osm(self, to_wgs84: impl Fn(P) -> LatLon) -> OsmData {
        let mut osm = OsmData::new();
        let node_ids: Vec<i64> =
            self.nodes.into_iter().map(|(p, tags)| osm.add_synthetic_node(to_wgs84(p), tags)).collect();
        let mut way_ids = Vec::with_capacity(self.ways.len());
        for (nodes, tags) in self.ways {
            let id = osm.synthetic_id();
            osm.ways.insert(id, Way { nodes: nodes.into_iter().map(|n| node_ids[n]).collect(), tags });
            way_ids.push(id);
        }
        for (members, tags) in self.relations {
            let id = osm.synthetic_id();
            let members = members
                .into_iter()
                .map(|(r, role)| {
                    let (ty, id) = match r {
                        Ref::Node(n) => (OsmType::Node, node_ids[n]),
                        Ref::Way(w) => (OsmType::Way, way_ids[w]),
                    };
                    Member { ty, id, role: role.to_string(), geometry: None }
                })
                .collect();
            osm.relations.insert(id, Relation { members, tags });
        }
        osm
    }
}
