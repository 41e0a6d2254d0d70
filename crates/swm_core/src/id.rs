//! Stable references from twin objects back to the source data they came from.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The three OpenStreetMap element types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OsmType {
    Node,
    Way,
    Relation,
}

impl OsmType {
    pub fn as_str(self) -> &'static str {
        match self {
            OsmType::Node => "node",
            OsmType::Way => "way",
            OsmType::Relation => "relation",
        }
    }
}

/// Where a twin object came from.
///
/// Displayed as `way/123`, `relation/456`, `node/7` for OpenStreetMap objects and as
/// `feature/<source>/<index>` for features of a vector file (GeoJSON, GDAL layers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SourceRef {
    Osm {
        ty: OsmType,
        id: i64,
    },
    Feature {
        source: u32,
        index: u64,
    },
    /// Made by the twin builder itself (for example a sidewalk offset from a road).
    Derived,
}

impl SourceRef {
    pub fn way(id: i64) -> Self {
        SourceRef::Osm { ty: OsmType::Way, id }
    }
    pub fn relation(id: i64) -> Self {
        SourceRef::Osm { ty: OsmType::Relation, id }
    }
    pub fn node(id: i64) -> Self {
        SourceRef::Osm { ty: OsmType::Node, id }
    }
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceRef::Osm { ty, id } => write!(f, "{}/{}", ty.as_str(), id),
            SourceRef::Feature { source, index } => write!(f, "feature/{source}/{index}"),
            SourceRef::Derived => write!(f, "derived"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn display_matches_osm_convention() {
        assert_eq!(SourceRef::way(123).to_string(), "way/123");
        assert_eq!(SourceRef::relation(456).to_string(), "relation/456");
        assert_eq!(SourceRef::node(-7).to_string(), "node/-7");
    }
}
