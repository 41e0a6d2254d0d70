//! The quadrotor drone: 3-D dynamics, altitude limits and clearance above the twin's buildings.
//!
//! # Dynamics
//!
//! A point mass with yaw ([`Drone::step`]): the action commands an acceleration in the twin
//! frame (what a quadrotor's attitude controller delivers by tilting) and a yaw rate. Each
//! step clamps the acceleration's norm to `max_accel_mps2`, integrates the velocity
//! (semi-implicit Euler), clamps the horizontal and vertical speeds separately, integrates the
//! position and the yaw (rate clamped to `max_yaw_rate_radps`). The altitude above the
//! terrain is kept within `[min_agl_m, max_agl_m]` like a flight controller's geofence: at a
//! limit the position is held there and the vertical speed into the limit is zeroed (the
//! step reports it). Drag, wind and rotor dynamics are not modelled.
//!
//! # Clearance
//!
//! A point is **clear** of a building when it is farther than `clearance_m` from the
//! building's footprint horizontally, or at least `clearance_m` above its top
//! (`base_elevation_m + height_m`). Every building outline and every `building:part` counts.
//!
//! # The airspace map and A*
//!
//! [`Airspace::from_twin`] rasterises the twin into square columns of `cell_m`. Each column
//! has a **floor**, the lowest safe altitude: the highest of `terrain + min_agl_m` and, for
//! every building whose footprint comes within `clearance_m + margin_m + half a cell diagonal`
//! of the column's centre, `top + clearance_m + margin_m`; and a **ceiling**
//! `terrain + max_agl_m − margin_m` (terrain sampled at the centre and the corners, the
//! highest for the floor and the lowest for the ceiling). Because of the half diagonal, any
//! point of a column at or above its floor is clear of every building (by `margin_m` more than
//! required); `margin_m` absorbs the controller's tracking error.
//!
//! [`Airspace::plan_route`] runs A* over voxels (`cell_m` across, `layer_m` up) in a window
//! around the start and the goal: a voxel is free when its altitude lies between its column's
//! floor and ceiling; moves go to the 26 neighbours, allowed when every column they touch (both
//! ends, and the two side columns of a diagonal) is free at both ends' altitudes; the cost is
//! the Euclidean length with vertical metres weighted by `climb_cost` (≥ 1, so the Euclidean
//! heuristic stays admissible). Ties break on the voxel index, so routes are deterministic. The
//! voxel path is then shortened greedily: from each kept waypoint, the farthest later one
//! reachable by a straight segment that [`Airspace::segment_is_free`] accepts (an exact grid
//! traversal of the columns the segment crosses, checking the altitudes it has in each).
//!
//! # Following a route
//!
//! [`WaypointFollower`] tracks the route segment by segment: a velocity along the segment
//! (cruise speed, slowing so that it reaches `corner_speed_mps` at each waypoint and stops at
//! the last), a correction toward the closest point of the segment, and an acceleration
//! proportional to the velocity error. Yaw turns toward a given target (a façade to scan) or
//! the direction of travel.
//!
//! Twin frame throughout: `x` east, `y` north, `z` elevation above sea level, metres, radians.

use crate::error::RobotError;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use swm_twin::{P2, P3, Polygon, Terrain, Twin};

/// A drone's limits.
#[derive(Clone, Debug, PartialEq)]
pub struct DroneLimits {
    /// Horizontal speed limit (m/s).
    pub max_speed_xy_mps: f64,
    /// Vertical speed limit (m/s).
    pub max_speed_z_mps: f64,
    /// Acceleration limit, any direction (m/s²).
    pub max_accel_mps2: f64,
    /// Yaw rate limit (rad/s).
    pub max_yaw_rate_radps: f64,
    /// Lowest altitude above the terrain (m).
    pub min_agl_m: f64,
    /// Highest altitude above the terrain (m; 150 m is Korea's limit without a permit).
    pub max_agl_m: f64,
    /// Required clearance from buildings (m); see the module docs.
    pub clearance_m: f64,
}

impl Default for DroneLimits {
    /// A survey quadrotor: 12 m/s across, 4 m/s up or down, 4 m/s², 90°/s, 10–150 m above
    /// ground, 10 m from buildings.
    fn default() -> Self {
        Self {
            max_speed_xy_mps: 12.0,
            max_speed_z_mps: 4.0,
            max_accel_mps2: 4.0,
            max_yaw_rate_radps: std::f64::consts::FRAC_PI_2,
            min_agl_m: 10.0,
            max_agl_m: 150.0,
            clearance_m: 10.0,
        }
    }
}

impl DroneLimits {
    /// Checks every limit.
    pub fn validate(&self) -> Result<(), RobotError> {
        let positive = [
            ("max_speed_xy_mps", self.max_speed_xy_mps),
            ("max_speed_z_mps", self.max_speed_z_mps),
            ("max_accel_mps2", self.max_accel_mps2),
            ("max_yaw_rate_radps", self.max_yaw_rate_radps),
            ("max_agl_m", self.max_agl_m),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(RobotError::InvalidParameter { name, reason: format!("{v} is not a finite value > 0") });
            }
        }
        for (name, v) in [("min_agl_m", self.min_agl_m), ("clearance_m", self.clearance_m)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(RobotError::InvalidParameter { name, reason: format!("{v} is not a finite value >= 0") });
            }
        }
        if self.min_agl_m >= self.max_agl_m {
            return Err(RobotError::InvalidParameter {
                name: "min_agl_m",
                reason: format!("min_agl_m {} must be below max_agl_m {}", self.min_agl_m, self.max_agl_m),
            });
        }
        Ok(())
    }
}

/// The drone's state.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct DroneState {
    /// Position (ENU, m).
    pub position_enu: P3,
    /// Velocity (ENU, m/s).
    pub velocity_enu: P3,
    /// Heading, counter-clockwise from east (rad, in `(-π, π]`).
    pub yaw_rad: f64,
}

/// A command: acceleration and yaw rate.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct DroneAction {
    /// Commanded acceleration (ENU, m/s²); clamped to the limit.
    pub accel_enu: P3,
    /// Commanded yaw rate (rad/s, counter-clockwise); clamped to the limit.
    pub yaw_rate_radps: f64,
}

/// What a step did besides moving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DroneStep {
    /// The altitude was held at `min_agl_m` or `max_agl_m` above the terrain.
    pub altitude_limited: bool,
}

/// A drone: limits and state; see the module docs for the dynamics.
#[derive(Clone, Debug, PartialEq)]
pub struct Drone {
    /// Limits (validated at construction).
    pub limits: DroneLimits,
    /// Current state.
    pub state: DroneState,
}

fn wrap_angle(a: f64) -> f64 {
    let w = (a + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
    if w <= -std::f64::consts::PI { w + std::f64::consts::TAU } else { w }
}

fn norm3(v: P3) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

impl Drone {
    /// A drone with validated limits at `state`.
    pub fn new(limits: DroneLimits, state: DroneState) -> Result<Self, RobotError> {
        limits.validate()?;
        let finite =
            state.position_enu.iter().chain(&state.velocity_enu).chain([&state.yaw_rad]).all(|v| v.is_finite());
        if !finite {
            return Err(RobotError::InvalidParameter { name: "state", reason: format!("{state:?} is not finite") });
        }
        Ok(Self { limits, state })
    }

    /// Advances by `dt_s` seconds under `action` over `terrain`; see the module docs.
    /// A non-finite action counts as zero; a non-positive or non-finite `dt_s` does nothing.
    pub fn step(&mut self, action: &DroneAction, dt_s: f64, terrain: &Terrain) -> DroneStep {
        if !(dt_s.is_finite() && dt_s > 0.0) {
            return DroneStep::default();
        }
        let l = &self.limits;
        let mut a = if action.accel_enu.iter().all(|v| v.is_finite()) { action.accel_enu } else { [0.0; 3] };
        let an = norm3(a);
        if an > l.max_accel_mps2 {
            a = a.map(|v| v * l.max_accel_mps2 / an);
        }
        let s = &mut self.state;
        for (v, a) in s.velocity_enu.iter_mut().zip(a) {
            *v += a * dt_s;
        }
        let vxy = s.velocity_enu[0].hypot(s.velocity_enu[1]);
        if vxy > l.max_speed_xy_mps {
            s.velocity_enu[0] *= l.max_speed_xy_mps / vxy;
            s.velocity_enu[1] *= l.max_speed_xy_mps / vxy;
        }
        s.velocity_enu[2] = s.velocity_enu[2].clamp(-l.max_speed_z_mps, l.max_speed_z_mps);
        for k in 0..3 {
            s.position_enu[k] += s.velocity_enu[k] * dt_s;
        }
        let ground = terrain.elevation_at([s.position_enu[0], s.position_enu[1]]);
        let (lo, hi) = (ground + l.min_agl_m, ground + l.max_agl_m);
        let mut out = DroneStep::default();
        if s.position_enu[2] < lo {
            s.position_enu[2] = lo;
            s.velocity_enu[2] = s.velocity_enu[2].max(0.0);
            out.altitude_limited = true;
        } else if s.position_enu[2] > hi {
            s.position_enu[2] = hi;
            s.velocity_enu[2] = s.velocity_enu[2].min(0.0);
            out.altitude_limited = true;
        }
        let rate = if action.yaw_rate_radps.is_finite() { action.yaw_rate_radps } else { 0.0 };
        s.yaw_rad = wrap_angle(s.yaw_rad + rate.clamp(-l.max_yaw_rate_radps, l.max_yaw_rate_radps) * dt_s);
        out
    }
}

/// Options of [`Airspace::plan_route`].
#[derive(Clone, Debug, PartialEq)]
pub struct RouteConfig {
    /// Voxel height (m).
    pub layer_m: f64,
    /// Weight of vertical metres in the cost (≥ 1).
    pub climb_cost: f64,
    /// The search window reaches this far beyond the start and goal horizontally (m).
    pub search_margin_m: f64,
    /// Most voxels expanded before giving up.
    pub max_expansions: usize,
}

impl Default for RouteConfig {
    /// 5 m layers, climbing costs 1.5× flying level, a 300 m window, 4 million expansions.
    fn default() -> Self {
        Self { layer_m: 5.0, climb_cost: 1.5, search_margin_m: 300.0, max_expansions: 4_000_000 }
    }
}

/// The 2.5-D airspace map of a twin; see the module docs.
#[derive(Clone, Debug)]
pub struct Airspace {
    limits: DroneLimits,
    margin_m: f64,
    origin_m: P2,
    cell_m: f64,
    nx: usize,
    ny: usize,
    floor_m: Vec<f64>,
    ceiling_m: Vec<f64>,
    terrain: Terrain,
}

/// Largest airspace map (columns).
pub const MAX_AIRSPACE_COLUMNS: usize = 16_000_000;

fn segment_distance_2(a: P2, b: P2, p: P2) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (qx, qy) = (a[0] + t * dx - p[0], a[1] + t * dy - p[1]);
    qx * qx + qy * qy
}

/// Horizontal distance from `p` to a footprint (0 inside).
pub fn footprint_distance_m(poly: &Polygon, p: P2) -> f64 {
    if poly.contains(p) {
        return 0.0;
    }
    std::iter::once(&poly.exterior)
        .chain(poly.holes.iter())
        .filter(|r| !r.is_empty())
        .flat_map(|r| (0..r.len()).map(move |i| (r[i], r[(i + 1) % r.len()])))
        .map(|(a, b)| segment_distance_2(a, b, p))
        .fold(f64::INFINITY, f64::min)
        .sqrt()
}

impl Airspace {
    /// Rasterises `twin` at `cell_m` with the tracking margin `margin_m`; see the module docs.
    /// The map covers the twin's bounding box and its buildings.
    pub fn from_twin(twin: &Twin, limits: &DroneLimits, cell_m: f64, margin_m: f64) -> Result<Self, RobotError> {
        limits.validate()?;
        if !(cell_m.is_finite() && cell_m > 0.0) {
            return Err(RobotError::InvalidParameter { name: "cell_m", reason: format!("{cell_m} is not > 0") });
        }
        if !(margin_m.is_finite() && margin_m >= 0.0) {
            return Err(RobotError::InvalidParameter { name: "margin_m", reason: format!("{margin_m} is not >= 0") });
        }
        let all: Vec<&swm_twin::Building> = twin.buildings.iter().chain(twin.building_parts.iter()).collect();
        let mut b = twin.meta.bbox_m;
        if !(b.iter().all(|v| v.is_finite()) && b[0] <= b[2] && b[1] <= b[3]) {
            b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        }
        for bld in &all {
            let fb = bld.footprint.bbox();
            if fb.iter().all(|v| v.is_finite()) {
                b = [b[0].min(fb[0]), b[1].min(fb[1]), b[2].max(fb[2]), b[3].max(fb[3])];
            }
        }
        if !(b[0] <= b[2] && b[1] <= b[3]) {
            return Err(RobotError::InvalidParameter {
                name: "twin",
                reason: format!("twin {} has no extent (no bounding box, no buildings)", twin.meta.name),
            });
        }
        let nx = ((b[2] - b[0]) / cell_m).ceil() as usize + 1;
        let ny = ((b[3] - b[1]) / cell_m).ceil() as usize + 1;
        if nx.saturating_mul(ny) > MAX_AIRSPACE_COLUMNS {
            return Err(RobotError::InvalidParameter {
                name: "cell_m",
                reason: format!("{nx} × {ny} columns at {cell_m} m exceed {MAX_AIRSPACE_COLUMNS}; use larger cells"),
            });
        }
        let origin_m = [b[0], b[1]];
        let centre =
            |i: usize, j: usize| [origin_m[0] + (i as f64 + 0.5) * cell_m, origin_m[1] + (j as f64 + 0.5) * cell_m];
        let mut floor_m = vec![0.0; nx * ny];
        let mut ceiling_m = vec![0.0; nx * ny];
        for j in 0..ny {
            for i in 0..nx {
                let c = centre(i, j);
                let h = 0.5 * cell_m;
                let samples =
                    [c, [c[0] - h, c[1] - h], [c[0] + h, c[1] - h], [c[0] + h, c[1] + h], [c[0] - h, c[1] + h]];
                let z: Vec<f64> = samples.iter().map(|p| twin.terrain.elevation_at(*p)).collect();
                let (zmin, zmax) =
                    z.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
                floor_m[j * nx + i] = zmax + limits.min_agl_m + margin_m;
                ceiling_m[j * nx + i] = zmin + limits.max_agl_m - margin_m;
            }
        }
        let reach = limits.clearance_m + margin_m + 0.5 * std::f64::consts::SQRT_2 * cell_m;
        let mut skipped = 0usize;
        for bld in &all {
            let top = bld.base_elevation_m + bld.height_m;
            let fb = bld.footprint.bbox();
            if !(top.is_finite() && fb.iter().all(|v| v.is_finite()) && bld.footprint.exterior.len() >= 3) {
                skipped += 1;
                continue;
            }
            let need = top + limits.clearance_m + margin_m;
            let cell_range = |lo: f64, hi: f64, o: f64, n: usize| {
                let a = (((lo - reach - o) / cell_m).floor().max(0.0) as usize).min(n - 1);
                let z = (((hi + reach - o) / cell_m).floor().max(0.0) as usize).min(n - 1);
                a..=z
            };
            for j in cell_range(fb[1], fb[3], origin_m[1], ny) {
                for i in cell_range(fb[0], fb[2], origin_m[0], nx) {
                    let k = j * nx + i;
                    if floor_m[k] < need && footprint_distance_m(&bld.footprint, centre(i, j)) <= reach {
                        floor_m[k] = need;
                    }
                }
            }
        }
        if skipped > 0 {
            tracing::warn!(skipped, "buildings without a usable footprint or height were left out of the airspace");
        }
        tracing::debug!(nx, ny, cell_m, "airspace map built");
        Ok(Self {
            limits: limits.clone(),
            margin_m,
            origin_m,
            cell_m,
            nx,
            ny,
            floor_m,
            ceiling_m,
            terrain: twin.terrain.clone(),
        })
    }

    /// The limits the map was built for.
    pub fn limits(&self) -> &DroneLimits {
        &self.limits
    }

    /// The tracking margin (m).
    pub fn margin_m(&self) -> f64 {
        self.margin_m
    }

    /// The column size (m).
    pub fn cell_m(&self) -> f64 {
        self.cell_m
    }

    /// The twin's terrain (for [`Drone::step`]).
    pub fn terrain(&self) -> &Terrain {
        &self.terrain
    }

    fn column(&self, p: P2) -> Option<usize> {
        let gx = (p[0] - self.origin_m[0]) / self.cell_m;
        let gy = (p[1] - self.origin_m[1]) / self.cell_m;
        (gx >= 0.0 && gy >= 0.0 && (gx as usize) < self.nx && (gy as usize) < self.ny)
            .then(|| gy as usize * self.nx + gx as usize)
    }

    /// The lowest safe altitude at `p` (m above sea level), `None` outside the map.
    pub fn floor_at(&self, p: P2) -> Option<f64> {
        self.column(p).map(|k| self.floor_m[k])
    }

    /// The highest allowed altitude at `p`, `None` outside the map.
    pub fn ceiling_at(&self, p: P2) -> Option<f64> {
        self.column(p).map(|k| self.ceiling_m[k])
    }

    /// True when `p` is inside the map, between its column's floor and ceiling.
    pub fn is_free(&self, p: P3) -> bool {
        self.column([p[0], p[1]]).is_some_and(|k| self.floor_m[k] <= p[2] && p[2] <= self.ceiling_m[k])
    }

    /// True when every point of the segment `a`–`b` is free (exact traversal of the columns
    /// it crosses).
    pub fn segment_is_free(&self, a: P3, b: P3) -> bool {
        if !(a.iter().chain(&b).all(|v| v.is_finite())) {
            return false;
        }
        let g = |p: P3| [(p[0] - self.origin_m[0]) / self.cell_m, (p[1] - self.origin_m[1]) / self.cell_m];
        let (ga, gb) = (g(a), g(b));
        let d = [gb[0] - ga[0], gb[1] - ga[1]];
        let mut cell = [ga[0].floor() as i64, ga[1].floor() as i64];
        let end = [gb[0].floor() as i64, gb[1].floor() as i64];
        let step = [d[0].signum() as i64, d[1].signum() as i64];
        let t_delta = [
            if d[0] != 0.0 { 1.0 / d[0].abs() } else { f64::INFINITY },
            if d[1] != 0.0 { 1.0 / d[1].abs() } else { f64::INFINITY },
        ];
        let first = |k: usize| {
            if d[k] > 0.0 {
                ((cell[k] + 1) as f64 - ga[k]) / d[k]
            } else if d[k] < 0.0 {
                (cell[k] as f64 - ga[k]) / d[k]
            } else {
                f64::INFINITY
            }
        };
        let mut t_max = [first(0), first(1)];
        let mut s0 = 0.0f64;
        let z = |s: f64| a[2] + (b[2] - a[2]) * s;
        let limit = (end[0] - cell[0]).abs() + (end[1] - cell[1]).abs() + 2;
        for _ in 0..=limit {
            let s1 = t_max[0].min(t_max[1]).min(1.0);
            if cell[0] < 0 || cell[1] < 0 || cell[0] as usize >= self.nx || cell[1] as usize >= self.ny {
                return false;
            }
            let k = cell[1] as usize * self.nx + cell[0] as usize;
            let (z0, z1) = (z(s0), z(s1));
            if z0.min(z1) < self.floor_m[k] || z0.max(z1) > self.ceiling_m[k] {
                return false;
            }
            if cell == end || s1 >= 1.0 {
                return true;
            }
            s0 = s1;
            if t_max[0] < t_max[1] {
                cell[0] += step[0];
                t_max[0] += t_delta[0];
            } else {
                cell[1] += step[1];
                t_max[1] += t_delta[1];
            }
        }
        true
    }

    /// A route from `start` to `goal` (both must be free): the shortened A* voxel path,
    /// starting at `start` and ending at `goal`; see the module docs.
    pub fn plan_route(&self, start: P3, goal: P3, config: &RouteConfig) -> Result<Vec<P3>, RobotError> {
        if !(config.layer_m.is_finite() && config.layer_m > 0.0) {
            return Err(RobotError::InvalidParameter {
                name: "layer_m",
                reason: format!("{} is not > 0", config.layer_m),
            });
        }
        if !(config.climb_cost.is_finite() && config.climb_cost >= 1.0) {
            return Err(RobotError::InvalidParameter {
                name: "climb_cost",
                reason: format!("{} is not >= 1", config.climb_cost),
            });
        }
        for (what, p) in [("start", start), ("goal", goal)] {
            if !self.is_free(p) {
                let floor = self.floor_at([p[0], p[1]]);
                return Err(RobotError::NoAirRoute {
                    from: start,
                    to: goal,
                    reason: match floor {
                        Some(f) => format!(
                            "the {what} {p:?} is not in free airspace (floor {f:.1} m, ceiling {:.1} m)",
                            self.ceiling_at([p[0], p[1]]).unwrap_or(f64::NAN)
                        ),
                        None => format!("the {what} {p:?} is outside the map"),
                    },
                });
            }
        }
        if self.segment_is_free(start, goal) {
            return Ok(vec![start, goal]);
        }
        // The search window.
        let m = config.search_margin_m.max(0.0);
        let to_i = |x: f64, o: f64, n: usize| ((((x - o) / self.cell_m).floor()).max(0.0) as usize).min(n - 1);
        let i0 = to_i(start[0].min(goal[0]) - m, self.origin_m[0], self.nx);
        let i1 = to_i(start[0].max(goal[0]) + m, self.origin_m[0], self.nx);
        let j0 = to_i(start[1].min(goal[1]) - m, self.origin_m[1], self.ny);
        let j1 = to_i(start[1].max(goal[1]) + m, self.origin_m[1], self.ny);
        let (wx, wy) = (i1 - i0 + 1, j1 - j0 + 1);
        let (mut zlo, mut zhi) = (f64::INFINITY, f64::NEG_INFINITY);
        for j in j0..=j1 {
            for i in i0..=i1 {
                zlo = zlo.min(self.floor_m[j * self.nx + i]);
                zhi = zhi.max(self.ceiling_m[j * self.nx + i]);
            }
        }
        let nz = (((zhi - zlo) / config.layer_m).floor().max(0.0) as usize + 1).min(4096);
        let total = wx * wy * nz;
        if total > 64_000_000 {
            return Err(RobotError::NoAirRoute {
                from: start,
                to: goal,
                reason: format!("search window of {total} voxels is too large"),
            });
        }
        let vz = |k: usize| zlo + k as f64 * config.layer_m;
        let vxy = |i: usize, j: usize| {
            [self.origin_m[0] + (i as f64 + 0.5) * self.cell_m, self.origin_m[1] + (j as f64 + 0.5) * self.cell_m]
        };
        let col_free = |i: usize, j: usize, za: f64, zb: f64| {
            let k = j * self.nx + i;
            self.floor_m[k] <= za.min(zb) && za.max(zb) <= self.ceiling_m[k]
        };
        let index = |i: usize, j: usize, k: usize| ((k * wy + (j - j0)) * wx + (i - i0)) as u32;
        let unindex = |v: u32| {
            let v = v as usize;
            (v % wx + i0, (v / wx) % wy + j0, v / (wx * wy))
        };
        let voxel = |v: u32| {
            let (i, j, k) = unindex(v);
            let p = vxy(i, j);
            [p[0], p[1], vz(k)]
        };
        // Attach the start and goal to nearby voxels reachable in a straight line.
        let attach = |p: P3| -> Option<u32> {
            let (ci, cj) = (to_i(p[0], self.origin_m[0], self.nx), to_i(p[1], self.origin_m[1], self.ny));
            let mut best: Option<(f64, u32)> = None;
            for j in cj.saturating_sub(1).max(j0)..=(cj + 1).min(j1) {
                for i in ci.saturating_sub(1).max(i0)..=(ci + 1).min(i1) {
                    let kc = (((p[2] - zlo) / config.layer_m).round().max(0.0) as usize).min(nz - 1);
                    for k in kc.saturating_sub(2)..=(kc + 2).min(nz - 1) {
                        let v = index(i, j, k);
                        let q = voxel(v);
                        let d = norm3([q[0] - p[0], q[1] - p[1], q[2] - p[2]]);
                        if best.is_none_or(|(bd, _)| d < bd) && self.segment_is_free(p, q) {
                            best = Some((d, v));
                        }
                    }
                }
            }
            best.map(|(_, v)| v)
        };
        let no_route = |reason: String| RobotError::NoAirRoute { from: start, to: goal, reason };
        let s = attach(start).ok_or_else(|| no_route("no free voxel next to the start".into()))?;
        let g = attach(goal).ok_or_else(|| no_route("no free voxel next to the goal".into()))?;
        let goal_p = voxel(g);
        let h = |p: P3| norm3([p[0] - goal_p[0], p[1] - goal_p[1], p[2] - goal_p[2]]);
        let mut cost = vec![f64::INFINITY; total];
        let mut parent = vec![u32::MAX; total];
        let mut closed = vec![false; total];
        let mut heap = BinaryHeap::new();
        cost[s as usize] = 0.0;
        heap.push(Reverse((h(voxel(s)).to_bits(), s)));
        let mut expansions = 0usize;
        let mut found = false;
        while let Some(Reverse((_, v))) = heap.pop() {
            if closed[v as usize] {
                continue;
            }
            closed[v as usize] = true;
            if v == g {
                found = true;
                break;
            }
            expansions += 1;
            if expansions > config.max_expansions {
                return Err(no_route(format!("gave up after {} expansions", config.max_expansions)));
            }
            let (i, j, k) = unindex(v);
            let za = vz(k);
            for dk in -1i64..=1 {
                for dj in -1i64..=1 {
                    for di in -1i64..=1 {
                        if di == 0 && dj == 0 && dk == 0 {
                            continue;
                        }
                        let (ni, nj, nk) = (i as i64 + di, j as i64 + dj, k as i64 + dk);
                        if ni < i0 as i64
                            || ni > i1 as i64
                            || nj < j0 as i64
                            || nj > j1 as i64
                            || nk < 0
                            || nk >= nz as i64
                        {
                            continue;
                        }
                        let (ni, nj, nk) = (ni as usize, nj as usize, nk as usize);
                        let zb = vz(nk);
                        let ok = col_free(ni, nj, za, zb)
                            && col_free(i, j, za, zb)
                            && (di == 0 || dj == 0 || (col_free(ni, j, za, zb) && col_free(i, nj, za, zb)));
                        if !ok {
                            continue;
                        }
                        let n = index(ni, nj, nk);
                        if closed[n as usize] {
                            continue;
                        }
                        let hxy = self.cell_m * ((di * di + dj * dj) as f64).sqrt();
                        let dz = config.climb_cost * config.layer_m * dk.abs() as f64;
                        let c = cost[v as usize] + hxy.hypot(dz);
                        if c < cost[n as usize] {
                            cost[n as usize] = c;
                            parent[n as usize] = v;
                            heap.push(Reverse(((c + h(voxel(n))).to_bits(), n)));
                        }
                    }
                }
            }
        }
        if !found {
            return Err(no_route(format!("no free path within the search window ({expansions} voxels expanded)")));
        }
        let mut path = vec![goal];
        let mut v = g;
        loop {
            path.push(voxel(v));
            if v == s {
                break;
            }
            v = parent[v as usize];
        }
        path.push(start);
        path.reverse();
        tracing::debug!(expansions, voxels = path.len(), "drone A* route found");
        Ok(self.shorten(&path))
    }

    /// Greedy line-of-sight shortening of a free polyline.
    fn shorten(&self, path: &[P3]) -> Vec<P3> {
        let mut out = vec![path[0]];
        let mut i = 0;
        while i + 1 < path.len() {
            let mut j = path.len() - 1;
            while j > i + 1 && !self.segment_is_free(path[i], path[j]) {
                j -= 1;
            }
            out.push(path[j]);
            i = j;
        }
        out
    }
}

/// Tracks a route; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct WaypointFollower {
    /// The route (at least one point).
    pub waypoints: Vec<P3>,
    /// Speed along straight segments (m/s).
    pub cruise_speed_mps: f64,
    /// Speed at intermediate waypoints (m/s).
    pub corner_speed_mps: f64,
    /// Gain of the correction toward the segment (1/s).
    pub position_gain: f64,
    /// Gain from velocity error to acceleration (1/s).
    pub velocity_gain: f64,
    /// Gain from yaw error to yaw rate (1/s).
    pub yaw_gain: f64,
    segment: usize,
}

impl WaypointFollower {
    /// A follower at 6 m/s cruise, 1 m/s at corners.
    pub fn new(waypoints: Vec<P3>) -> Self {
        Self {
            waypoints,
            cruise_speed_mps: 6.0,
            corner_speed_mps: 1.0,
            position_gain: 1.0,
            velocity_gain: 2.0,
            yaw_gain: 2.0,
            segment: 0,
        }
    }

    /// The index of the segment being flown (`waypoints[i]` to `waypoints[i + 1]`).
    pub fn segment(&self) -> usize {
        self.segment
    }

    /// True when the drone is at the last waypoint (within 0.5 m) and almost still.
    pub fn done(&self, state: &DroneState) -> bool {
        let Some(last) = self.waypoints.last() else { return true };
        let d = [state.position_enu[0] - last[0], state.position_enu[1] - last[1], state.position_enu[2] - last[2]];
        self.segment + 2 >= self.waypoints.len() && norm3(d) < 0.5 && norm3(state.velocity_enu) < 0.3
    }

    /// The command for `state`; yaw turns toward `yaw_target_rad` when given, else along the
    /// direction of travel.
    pub fn action(&mut self, state: &DroneState, limits: &DroneLimits, yaw_target_rad: Option<f64>) -> DroneAction {
        let p = state.position_enu;
        let n = self.waypoints.len();
        if n == 0 {
            return DroneAction { accel_enu: state.velocity_enu.map(|v| -self.velocity_gain * v), yaw_rate_radps: 0.0 };
        }
        let (mut a, mut b) = (self.waypoints[0], self.waypoints[0]);
        let (mut u, mut len, mut along) = ([0.0; 3], 0.0, 0.0);
        while self.segment + 1 < n {
            a = self.waypoints[self.segment];
            b = self.waypoints[self.segment + 1];
            let d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
            len = norm3(d);
            u = if len > 0.0 { d.map(|v| v / len) } else { [0.0; 3] };
            along = (0..3).map(|k| (p[k] - a[k]) * u[k]).sum::<f64>();
            if along >= len - 0.3 && self.segment + 2 < n {
                self.segment += 1;
                continue;
            }
            break;
        }
        if n == 1 {
            b = self.waypoints[0];
            a = b;
        }
        let last = self.segment + 2 >= n;
        let to_end = (len - along).max(0.0);
        let end_speed = if last { 0.0 } else { self.corner_speed_mps };
        let brake = 0.5 * limits.max_accel_mps2;
        let mut speed = self.cruise_speed_mps.min((end_speed * end_speed + 2.0 * brake * to_end).sqrt());
        let (uxy, uz) = (u[0].hypot(u[1]), u[2].abs());
        if uxy > 0.0 {
            speed = speed.min(limits.max_speed_xy_mps / uxy);
        }
        if uz > 0.0 {
            speed = speed.min(limits.max_speed_z_mps / uz);
        }
        let c = [
            a[0] + u[0] * along.clamp(0.0, len),
            a[1] + u[1] * along.clamp(0.0, len),
            a[2] + u[2] * along.clamp(0.0, len),
        ];
        let target = if last && to_end <= 0.0 { b } else { c };
        let v_des: Vec<f64> = (0..3).map(|k| u[k] * speed + self.position_gain * (target[k] - p[k])).collect();
        let accel = [0, 1, 2].map(|k| self.velocity_gain * (v_des[k] - state.velocity_enu[k]));
        let yaw_target = yaw_target_rad.or_else(|| (uxy > 0.1).then(|| u[1].atan2(u[0])));
        let yaw_rate = yaw_target.map_or(0.0, |t| self.yaw_gain * wrap_angle(t - state.yaw_rad));
        DroneAction { accel_enu: accel, yaw_rate_radps: yaw_rate }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_clamps_speed_accel_and_altitude() {
        let terrain = Terrain::Flat { elevation_m: 5.0 };
        let limits = DroneLimits::default();
        let mut d =
            Drone::new(limits.clone(), DroneState { position_enu: [0.0, 0.0, 50.0], ..Default::default() }).unwrap();
        for _ in 0..200 {
            d.step(&DroneAction { accel_enu: [100.0, 0.0, -100.0], yaw_rate_radps: 10.0 }, 0.1, &terrain);
            assert!(d.state.velocity_enu[0] <= limits.max_speed_xy_mps + 1e-9);
            assert!(d.state.velocity_enu[2] >= -limits.max_speed_z_mps - 1e-9);
            assert!(d.state.position_enu[2] >= 5.0 + limits.min_agl_m - 1e-9);
        }
        assert_eq!(d.state.position_enu[2], 15.0, "held at the minimum altitude");
        let r = d.step(&DroneAction { accel_enu: [0.0, 0.0, -1.0], yaw_rate_radps: 0.0 }, 0.1, &terrain);
        assert!(r.altitude_limited);
        assert!(wrap_angle(4.0 * std::f64::consts::PI + 0.5) - 0.5 < 1e-12);
        assert!(Drone::new(DroneLimits { min_agl_m: 200.0, ..Default::default() }, DroneState::default()).is_err());
    }

    #[test]
    fn footprint_distance() {
        let sq = Polygon { exterior: vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]], holes: vec![] };
        assert_eq!(footprint_distance_m(&sq, [5.0, 5.0]), 0.0);
        assert!((footprint_distance_m(&sq, [13.0, 14.0]) - 5.0).abs() < 1e-12);
    }
}
