//! The static world a robot lives in: a twin with what robots need precomputed (spatial
//! index, walk and lane graphs, the walkable area, where crossings cut lanes), and loading
//! a twin from an `.swt` file, an OSM file or the embedded default district.
//!
//! **Walkable area**: the union of the walk edges swept by half their width (at least
//! [`MIN_WALK_HALF_WIDTH_M`]); [`Scene::off_walk_m`] is how far a point lies outside it
//! (0 inside). Looked up in a 10 m grid of edge segments.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use swm_core::ErrorChain;
use swm_sim::crossing::CrossingMap;
use swm_twin::{P2, Twin, TwinIndex};

use crate::RobotError;
use crate::route::{LaneGraph, WalkGraph};

/// Smallest half width of a walk edge in the walkable area (m).
pub const MIN_WALK_HALF_WIDTH_M: f64 = 1.0;
const GRID_M: f64 = 10.0;

/// A walk-edge segment in the grid: start, end, half width.
type WalkSeg = (P2, P2, f64);

/// A twin prepared for robots (module docs). Shared by environments through an `Arc`.
pub struct Scene {
    pub twin: Arc<Twin>,
    pub index: TwinIndex,
    pub walk: WalkGraph,
    pub lanes: LaneGraph,
    pub crossings: CrossingMap,
    /// The twin's mesh and BVH for lidar, built on first use.
    lidar: OnceLock<swm_sensors::LidarScene>,
    /// 10 m cells → (segment start, end, half width).
    walk_grid: HashMap<(i64, i64), Vec<WalkSeg>>,
}

impl std::fmt::Debug for Scene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scene").field("twin", &self.twin.meta.name).finish()
    }
}

fn cell(p: P2) -> (i64, i64) {
    ((p[0] / GRID_M).floor() as i64, (p[1] / GRID_M).floor() as i64)
}

fn seg_dist(a: P2, b: P2, p: P2) -> f64 {
    let d = [b[0] - a[0], b[1] - a[1]];
    let l2 = d[0] * d[0] + d[1] * d[1];
    let u = if l2 > 0.0 { (((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / l2).clamp(0.0, 1.0) } else { 0.0 };
    (p[0] - a[0] - u * d[0]).hypot(p[1] - a[1] - u * d[1])
}

impl Scene {
    /// Prepares `twin` for robots.
    pub fn new(twin: Arc<Twin>) -> Scene {
        let index = TwinIndex::new(&twin);
        let walk = WalkGraph::new(&twin);
        let lanes = LaneGraph::new(&twin);
        let crossings = CrossingMap::new(&twin);
        let mut walk_grid: HashMap<(i64, i64), Vec<WalkSeg>> = HashMap::new();
        for e in &twin.walk_edges {
            let hw = (0.5 * e.width_m).max(MIN_WALK_HALF_WIDTH_M);
            for w in e.polyline.windows(2) {
                let (a, b) = ([w[0][0], w[0][1]], [w[1][0], w[1][1]]);
                if !(a[0].is_finite() && a[1].is_finite() && b[0].is_finite() && b[1].is_finite()) {
                    continue;
                }
                let (ca, cb) = (
                    cell([a[0].min(b[0]) - hw, a[1].min(b[1]) - hw]),
                    cell([a[0].max(b[0]) + hw, a[1].max(b[1]) + hw]),
                );
                if (cb.0 - ca.0) * (cb.1 - ca.1) > 10_000 {
                    continue;
                }
                for x in ca.0..=cb.0 {
                    for y in ca.1..=cb.1 {
                        walk_grid.entry((x, y)).or_default().push((a, b, hw));
                    }
                }
            }
        }
        Scene { twin, index, walk, lanes, crossings, lidar: OnceLock::new(), walk_grid }
    }

    /// The twin's name.
    pub fn name(&self) -> &str {
        &self.twin.meta.name
    }

    /// How far `p` lies outside the walkable area (m; 0 inside, 10 m when no walk edge
    /// is within one grid cell).
    pub fn off_walk_m(&self, p: P2) -> f64 {
        let Some(segs) = self.walk_grid.get(&cell(p)) else { return GRID_M };
        segs.iter().map(|&(a, b, hw)| (seg_dist(a, b, p) - hw).max(0.0)).fold(GRID_M, f64::min)
    }

    /// The lidar scene (`swm_sensors`: the twin's buildings, roofs and terrain in a BVH),
    /// built on the first call.
    pub fn lidar_scene(&self) -> &swm_sensors::LidarScene {
        self.lidar.get_or_init(|| swm_sensors::LidarScene::from_twin(&self.twin))
    }

    /// Whether `p` lies inside a building outline.
    pub fn in_building(&self, p: P2) -> bool {
        self.index.building_at(p).is_some()
    }

    /// Whether a building outline lies within `radius_m` of `p`.
    pub fn building_near(&self, p: P2, radius_m: f64) -> bool {
        !self.index.buildings_within(p, radius_m).is_empty()
    }
}

/// Loads a twin: `None` → the embedded default district (`swm_procgen`,
/// `data/default-district.toml`); a path ending in `.swt` → the twin file; anything else →
/// an OSM file (PBF or XML) ingested with the default options.
pub fn load_twin(path: Option<&Path>) -> Result<Twin, RobotError> {
    match path {
        None => {
            let params = swm_procgen::DistrictParams::embedded_default();
            let (twin, _) = swm_procgen::build_district(&params).map_err(|e| RobotError::Load {
                path: "<default district>".into(),
                reason: ErrorChain(&e).to_string(),
            })?;
            Ok(twin)
        }
        Some(p) if p.extension().is_some_and(|e| e == "swt") => swm_twin::read_swt(p)
            .map_err(|e| RobotError::Load { path: p.display().to_string(), reason: ErrorChain(&e).to_string() }),
        Some(p) => {
            let (twin, _) = swm_ingest::ingest_paths(&[p.to_path_buf()], &Default::default())
                .map_err(|e| RobotError::Load { path: p.display().to_string(), reason: ErrorChain(&e).to_string() })?;
            Ok(twin)
        }
    }
}
