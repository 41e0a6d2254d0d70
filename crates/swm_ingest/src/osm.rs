//! The in-memory OpenStreetMap model every source is read into.
//!
//! OSM files (PBF, XML, Overpass) fill it directly; GeoJSON and GDAL features and the
//! procedural generator become OSM-like objects with synthetic (negative) ids and
//! OSM tags, so that one twin builder serves every source. Maps are ordered by id, so
//! everything downstream iterates deterministically.

use std::collections::BTreeMap;
use swm_core::{LatLon, OsmType, SourceRef};

/// Ordered key/value tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags(pub Vec<(String, String)>);

impl Tags {
    pub fn new() -> Self {
        Self(Vec::new())
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    /// True when `key` is present with one of `values`.
    pub fn is(&self, key: &str, value: &str) -> bool {
        self.get(key) == Some(value)
    }
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.0.push((key, value));
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut t = Tags::new();
        for (k, v) in iter {
            t.insert(k, v);
        }
        t
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: LatLon,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Way {
    pub nodes: Vec<i64>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub ty: OsmType,
    pub id: i64,
    pub role: String,
    /// Inline geometry from Overpass `out geom` (used when the way itself is absent).
    pub geometry: Option<Vec<LatLon>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    pub members: Vec<Member>,
    pub tags: Tags,
}

/// A set of OSM objects, possibly merged from several inputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OsmData {
    pub nodes: BTreeMap<i64, Node>,
    pub ways: BTreeMap<i64, Way>,
    pub relations: BTreeMap<i64, Relation>,
    /// Objects that stand for features of vector files: what to call them in the twin.
    pub origins: BTreeMap<(OsmType, i64), SourceRef>,
    /// The area the input covers (`[west, south, east, north]`, degrees) when the file says
    /// so (a PBF header's bbox): an extract holds every object reaching into it.
    pub bounds_wgs84: Option<[f64; 4]>,
    /// The next synthetic id to hand out (negative, decreasing).
    next_synthetic_id: i64,
}

/// Synthetic ids start here, far below anything editors hand out.
const FIRST_SYNTHETIC_ID: i64 = -1_000_000_000_000;

impl OsmData {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh negative id, unique within this data set.
    pub fn synthetic_id(&mut self) -> i64 {
        if self.next_synthetic_id == 0 {
            self.next_synthetic_id = FIRST_SYNTHETIC_ID;
        }
        let id = self.next_synthetic_id;
        self.next_synthetic_id -= 1;
        id
    }

    /// Adds a node at `pos` with a synthetic id and returns the id.
    pub fn add_synthetic_node(&mut self, pos: LatLon, tags: Tags) -> i64 {
        let id = self.synthetic_id();
        self.nodes.insert(id, Node { pos, tags });
        id
    }

    /// Adds a way through new synthetic nodes at `points` and returns the way's id.
    pub fn add_synthetic_way(&mut self, points: &[LatLon], tags: Tags) -> i64 {
        let nodes: Vec<i64> = points.iter().map(|p| self.add_synthetic_node(*p, Tags::new())).collect();
        let id = self.synthetic_id();
        self.ways.insert(id, Way { nodes, tags });
        id
    }

    /// What a twin object made from this OSM object should name as its source.
    pub fn source_ref(&self, ty: OsmType, id: i64) -> SourceRef {
        self.origins.get(&(ty, id)).copied().unwrap_or(SourceRef::Osm { ty, id })
    }

    /// Adds everything in `other`; objects with the same id are replaced by `other`'s
    /// (overlapping extracts carry the same objects). Synthetic ids of `other` are
    /// renumbered so they stay unique.
    /// Bounds: the union of both sides' bounds, `None` if a non-empty side has none.
    pub fn merge(&mut self, mut other: OsmData) {
        self.bounds_wgs84 = match (self.bounds_wgs84, other.bounds_wgs84) {
            (_, o) if self.is_empty() => o,
            (s, _) if other.is_empty() => s,
            (Some(s), Some(o)) => Some([s[0].min(o[0]), s[1].min(o[1]), s[2].max(o[2]), s[3].max(o[3])]),
            _ => None,
        };
        if other.next_synthetic_id != 0 && self.next_synthetic_id != 0 {
            other.renumber_synthetic(self.next_synthetic_id - FIRST_SYNTHETIC_ID);
        }
        self.next_synthetic_id = match (self.next_synthetic_id, other.next_synthetic_id) {
            (0, o) => o,
            (s, 0) => s,
            (s, o) => s.min(o),
        };
        self.nodes.extend(other.nodes);
        self.ways.extend(other.ways);
        self.relations.extend(other.relations);
        self.origins.extend(other.origins);
    }

    /// Shifts every synthetic id by `offset` (a negative number).
    fn renumber_synthetic(&mut self, offset: i64) {
        let shift = |id: i64| if id <= FIRST_SYNTHETIC_ID { id + offset } else { id };
        self.nodes = std::mem::take(&mut self.nodes).into_iter().map(|(k, v)| (shift(k), v)).collect();
        self.ways = std::mem::take(&mut self.ways)
            .into_iter()
            .map(|(k, mut w)| {
                w.nodes.iter_mut().for_each(|n| *n = shift(*n));
                (shift(k), w)
            })
            .collect();
        self.relations = std::mem::take(&mut self.relations)
            .into_iter()
            .map(|(k, mut r)| {
                r.members.iter_mut().for_each(|m| m.id = shift(m.id));
                (shift(k), r)
            })
            .collect();
        self.origins = std::mem::take(&mut self.origins).into_iter().map(|((t, k), v)| ((t, shift(k)), v)).collect();
        self.next_synthetic_id += offset;
    }

    /// Positions of a way's nodes; `None` for nodes missing from the data (extract edges).
    pub fn way_positions(&self, way: &Way) -> Vec<Option<LatLon>> {
        way.nodes.iter().map(|n| self.nodes.get(n).map(|n| n.pos)).collect()
    }

    /// Bounding box `[west, south, east, north]` of all nodes, if any.
    pub fn bbox_wgs84(&self) -> Option<[f64; 4]> {
        let mut it = self.nodes.values();
        let first = it.next()?.pos;
        let mut b = [first.lon_deg, first.lat_deg, first.lon_deg, first.lat_deg];
        for n in it {
            b[0] = b[0].min(n.pos.lon_deg);
            b[1] = b[1].min(n.pos.lat_deg);
            b[2] = b[2].max(n.pos.lon_deg);
            b[3] = b[3].max(n.pos.lat_deg);
        }
        Some(b)
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.ways.is_empty() && self.relations.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_synthetic_ids_unique() {
        let mut a = OsmData::new();
        let wa = a.add_synthetic_way(&[LatLon::new(37.0, 127.0), LatLon::new(37.1, 127.0)], Tags::new());
        let mut b = OsmData::new();
        let wb = b.add_synthetic_way(&[LatLon::new(36.0, 127.0), LatLon::new(36.1, 127.0)], Tags::new());
        assert_eq!(wa, wb, "both start at the same synthetic id");
        a.merge(b);
        assert_eq!(a.ways.len(), 2);
        assert_eq!(a.nodes.len(), 4);
        for w in a.ways.values() {
            for n in &w.nodes {
                assert!(a.nodes.contains_key(n));
            }
        }
        let fresh = a.synthetic_id();
        assert!(!a.nodes.contains_key(&fresh) && !a.ways.contains_key(&fresh));
    }

    #[test]
    fn tags_lookup_and_replace() {
        let mut t: Tags = [("building", "yes"), ("height", "12")].into_iter().collect();
        assert_eq!(t.get("height"), Some("12"));
        t.insert("height", "15");
        assert_eq!(t.get("height"), Some("15"));
        assert!(t.is("building", "yes"));
        assert!(!t.has("name"));
    }
}
