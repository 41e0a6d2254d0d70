//! Spinning lidars cast against the twin and the other agents.
//!
//! # Beam pattern
//!
//! A [`LidarConfig`] has `channels` rows of `beams_per_channel` beams. Channel `c` points at
//! elevation `vertical_fov_min_rad + c·(max − min)/(channels − 1)` (the middle of the range
//! for one channel); beam `b` at azimuth `−h/2 + (b + ½)·h/beams` with `h` the horizontal
//! field of view, counter-clockwise from the sensor's forward `x` axis. In the sensor frame
//! (FLU) the direction is `(cos el·cos az, cos el·sin az, sin el)`. Beam `k = c·beams + b`
//! is the `k`-th entry of [`LidarScan::ranges_m`] and [`LidarScan::hit`].
//!
//! # What a beam sees
//!
//! The closest of: the static mesh ([`StaticMesh`]: buildings with roofs, terrain) through the
//! BVH, and the agents' oriented boxes ([`AgentBox`], exact ray–box slabs). A beam whose first
//! surface is nearer than `range_min_m` or farther than `range_max_m` returns nothing (a real
//! sensor's near blind zone blocks the beam too). A ray that starts inside an agent's box does
//! not see that box, so the robot's own box may be passed among the agents.
//!
//! # Noise
//!
//! Each beam draws one Philox4x32-10 block keyed by the seed with the counter
//! `(beam, scan_index low, scan_index high, LIDAR_STREAM)`: two words give a standard normal
//! (Box–Muller) scaled by `range_noise_std_m` and added to the range along the beam (the
//! measured range is clamped at zero); the third drops the return with probability
//! `dropout_prob`. So a scan is the same on any thread count, and scans with different indices
//! have independent noise.

use crate::bvh::Bvh;
use crate::error::SensorError;
use crate::mesh::{StaticMesh, Surface};
use rayon::prelude::*;
use swm_core::rng::{key_from_seed, philox4x32, unit_f32};
use swm_twin::Twin;

/// The Philox counter's last word for lidar noise (keeps lidar draws apart from other users
/// of the same seed).
pub const LIDAR_STREAM: u32 = 0x4c49_4441; // "LIDA"

/// A spinning lidar; see the module docs for the beam pattern.
#[derive(Clone, Debug, PartialEq)]
pub struct LidarConfig {
    /// Rows of beams (1 for a planar lidar).
    pub channels: u32,
    /// Beams per row, spread over `horizontal_fov_rad`.
    pub beams_per_channel: u32,
    /// Elevation of the lowest channel (rad, positive up).
    pub vertical_fov_min_rad: f64,
    /// Elevation of the highest channel (rad).
    pub vertical_fov_max_rad: f64,
    /// Horizontal field of view, centred on the sensor's forward axis (rad, up to 2π).
    pub horizontal_fov_rad: f64,
    /// Surfaces nearer than this return nothing (m).
    pub range_min_m: f64,
    /// Surfaces farther than this return nothing (m).
    pub range_max_m: f64,
    /// Standard deviation of the Gaussian range noise (m).
    pub range_noise_std_m: f64,
    /// Probability that a beam that hit something returns nothing.
    pub dropout_prob: f64,
}

impl LidarConfig {
    /// A planar 360° scanner (like a SICK/Hokuyo on a delivery robot): 720 beams (0.5°),
    /// 0.1–30 m, 1 cm noise.
    pub fn planar_2d() -> Self {
        Self {
            channels: 1,
            beams_per_channel: 720,
            vertical_fov_min_rad: 0.0,
            vertical_fov_max_rad: 0.0,
            horizontal_fov_rad: std::f64::consts::TAU,
            range_min_m: 0.1,
            range_max_m: 30.0,
            range_noise_std_m: 0.01,
            dropout_prob: 0.0,
        }
    }

    /// A 16-channel 3-D lidar like a Velodyne VLP-16: ±15°, 1800 beams per channel (0.2°),
    /// 0.5–100 m, 3 cm noise, 0.5% dropout.
    pub fn lidar_16() -> Self {
        Self {
            channels: 16,
            beams_per_channel: 1800,
            vertical_fov_min_rad: -15f64.to_radians(),
            vertical_fov_max_rad: 15f64.to_radians(),
            horizontal_fov_rad: std::f64::consts::TAU,
            range_min_m: 0.5,
            range_max_m: 100.0,
            range_noise_std_m: 0.03,
            dropout_prob: 0.005,
        }
    }

    /// A 32-channel 3-D lidar like a Velodyne HDL-32E: −30.67° to +10.67°, 1800 beams per
    /// channel, 1–100 m, 2 cm noise, 0.5% dropout.
    pub fn lidar_32() -> Self {
        Self {
            channels: 32,
            beams_per_channel: 1800,
            vertical_fov_min_rad: -30.67f64.to_radians(),
            vertical_fov_max_rad: 10.67f64.to_radians(),
            horizontal_fov_rad: std::f64::consts::TAU,
            range_min_m: 1.0,
            range_max_m: 100.0,
            range_noise_std_m: 0.02,
            dropout_prob: 0.005,
        }
    }

    /// Beams per scan.
    pub fn beam_count(&self) -> usize {
        self.channels as usize * self.beams_per_channel as usize
    }

    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), SensorError> {
        let bad = |name: &'static str, reason: String| Err(SensorError::InvalidConfig { name, reason });
        if self.channels == 0 {
            return bad("channels", "must be at least 1".into());
        }
        if self.beams_per_channel == 0 {
            return bad("beams_per_channel", "must be at least 1".into());
        }
        if self.beam_count() > 50_000_000 {
            return bad("beams_per_channel", format!("{} beams per scan is more than 50 million", self.beam_count()));
        }
        let half_pi = std::f64::consts::FRAC_PI_2;
        let (lo, hi) = (self.vertical_fov_min_rad, self.vertical_fov_max_rad);
        if !(lo.is_finite() && hi.is_finite() && -half_pi <= lo && lo <= hi && hi <= half_pi) {
            return bad("vertical_fov_min_rad", format!("need -π/2 <= min ({lo}) <= max ({hi}) <= π/2"));
        }
        let h = self.horizontal_fov_rad;
        if !(h.is_finite() && h > 0.0 && h <= std::f64::consts::TAU + 1e-9) {
            return bad("horizontal_fov_rad", format!("{h} is not in (0, 2π]"));
        }
        let (rmin, rmax) = (self.range_min_m, self.range_max_m);
        if !(rmin.is_finite() && rmax.is_finite() && rmin >= 0.0 && rmin < rmax) {
            return bad("range_min_m", format!("need 0 <= range_min_m ({rmin}) < range_max_m ({rmax}), both finite"));
        }
        if !(self.range_noise_std_m.is_finite() && self.range_noise_std_m >= 0.0) {
            return bad("range_noise_std_m", format!("{} is not a finite value >= 0", self.range_noise_std_m));
        }
        if !(0.0..=1.0).contains(&self.dropout_prob) {
            return bad("dropout_prob", format!("{} is not in [0, 1]", self.dropout_prob));
        }
        Ok(())
    }

    /// Unit direction of beam `k` in the sensor frame (FLU).
    pub fn beam_direction_sensor(&self, k: usize) -> [f64; 3] {
        let beams = self.beams_per_channel as usize;
        let (c, b) = (k / beams, k % beams);
        let el = if self.channels <= 1 {
            0.5 * (self.vertical_fov_min_rad + self.vertical_fov_max_rad)
        } else {
            self.vertical_fov_min_rad
                + (self.vertical_fov_max_rad - self.vertical_fov_min_rad) * c as f64 / (self.channels - 1) as f64
        };
        let az = -0.5 * self.horizontal_fov_rad + self.horizontal_fov_rad * (b as f64 + 0.5) / beams as f64;
        let (se, ce) = el.sin_cos();
        let (sa, ca) = az.sin_cos();
        [ce * ca, ce * sa, se]
    }
}

/// Where a sensor is: position in the twin frame and orientation; see the crate docs.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct SensorPose {
    /// The sensor's origin (ENU, m).
    pub position_enu: [f64; 3],
    /// Rotation about up, counter-clockwise from east (rad).
    pub yaw_rad: f64,
    /// Rotation about the sensor's left axis; positive tilts the nose down (rad).
    pub pitch_rad: f64,
    /// Rotation about the sensor's forward axis; positive raises the left side (rad).
    pub roll_rad: f64,
}

impl SensorPose {
    /// A level sensor at `position_enu` facing `yaw_rad`.
    pub fn level(position_enu: [f64; 3], yaw_rad: f64) -> Self {
        Self { position_enu, yaw_rad, pitch_rad: 0.0, roll_rad: 0.0 }
    }

    /// The rotation `enu_from_sensor = Rz(yaw)·Ry(pitch)·Rx(roll)`, rows first.
    pub fn enu_from_sensor(&self) -> [[f64; 3]; 3] {
        let (sy, cy) = self.yaw_rad.sin_cos();
        let (sp, cp) = self.pitch_rad.sin_cos();
        let (sr, cr) = self.roll_rad.sin_cos();
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    }

    /// The orientation as a unit quaternion `[x, y, z, w]` (for logs).
    pub fn quaternion_xyzw(&self) -> [f64; 4] {
        let (sy, cy) = (0.5 * self.yaw_rad).sin_cos();
        let (sp, cp) = (0.5 * self.pitch_rad).sin_cos();
        let (sr, cr) = (0.5 * self.roll_rad).sin_cos();
        [
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
            cr * cp * cy + sr * sp * sy,
        ]
    }
}

fn mat_vec(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

/// Another agent as an oriented box standing on its base.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgentBox {
    /// The agent's id (reported in [`Hit::Agent`]).
    pub id: u64,
    /// Centre of the box's bottom face (ENU, m): where the agent stands.
    pub base_center_enu: [f64; 3],
    /// Heading of the box's length axis, counter-clockwise from east (rad).
    pub yaw_rad: f64,
    /// Along the heading (m).
    pub length_m: f64,
    /// Across the heading (m).
    pub width_m: f64,
    /// Up (m).
    pub height_m: f64,
}

impl AgentBox {
    /// Entry distance and outward normal (ENU) of the ray `origin + t·dir` (`dir` a unit
    /// vector) into the box, for `t` in `[0, t_max]`. `None` when it misses, when the box is
    /// degenerate, or when the origin is inside the box.
    pub fn ray_hit(&self, origin: [f64; 3], dir: [f64; 3], t_max: f64) -> Option<(f64, [f64; 3])> {
        let half = [0.5 * self.length_m, 0.5 * self.width_m];
        if !(half[0] > 0.0 && half[1] > 0.0 && self.height_m > 0.0) {
            return None;
        }
        let (s, c) = self.yaw_rad.sin_cos();
        let r = [
            origin[0] - self.base_center_enu[0],
            origin[1] - self.base_center_enu[1],
            origin[2] - self.base_center_enu[2],
        ];
        let o = [c * r[0] + s * r[1], -s * r[0] + c * r[1], r[2]];
        let d = [c * dir[0] + s * dir[1], -s * dir[0] + c * dir[1], dir[2]];
        let lo = [-half[0], -half[1], 0.0];
        let hi = [half[0], half[1], self.height_m];
        if (0..3).all(|k| o[k] > lo[k] && o[k] < hi[k]) {
            return None;
        }
        let (mut t0, mut t1, mut axis) = (f64::NEG_INFINITY, f64::INFINITY, 0usize);
        for k in 0..3 {
            if d[k] == 0.0 {
                if o[k] < lo[k] || o[k] > hi[k] {
                    return None;
                }
                continue;
            }
            let (a, b) = ((lo[k] - o[k]) / d[k], (hi[k] - o[k]) / d[k]);
            let (near, far) = if a < b { (a, b) } else { (b, a) };
            if near > t0 {
                t0 = near;
                axis = k;
            }
            t1 = t1.min(far);
        }
        if !(t0 <= t1 && t0 >= 0.0 && t0 <= t_max) {
            return None;
        }
        let mut n_local = [0.0; 3];
        n_local[axis] = -d[axis].signum();
        let n = [c * n_local[0] - s * n_local[1], s * n_local[0] + c * n_local[1], n_local[2]];
        Some((t0, n))
    }

    /// Radius of the sphere around the box's centre that holds it (m).
    fn bounding_radius_m(&self) -> f64 {
        0.5 * (self.length_m.powi(2) + self.width_m.powi(2) + self.height_m.powi(2)).sqrt()
    }
}

/// What a beam or ray hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Hit {
    /// Nothing within range (or the return was dropped).
    #[default]
    None,
    /// Index into [`Twin::buildings`].
    Building(u32),
    /// Index into [`Twin::building_parts`].
    BuildingPart(u32),
    /// The ground.
    Terrain,
    /// The agent with this [`AgentBox::id`].
    Agent(u64),
}

impl From<Surface> for Hit {
    fn from(s: Surface) -> Self {
        match s {
            Surface::Building(i) => Hit::Building(i),
            Surface::BuildingPart(i) => Hit::BuildingPart(i),
            Surface::Terrain => Hit::Terrain,
        }
    }
}

/// The first surface along a ray.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RayHit {
    /// Distance from the origin (m).
    pub t_m: f64,
    /// The hit point (ENU, m).
    pub point_enu: [f64; 3],
    /// Unit normal of the surface, facing the ray's origin.
    pub normal_enu: [f64; 3],
    /// What was hit (never [`Hit::None`]).
    pub hit: Hit,
    /// The mesh triangle hit (index into [`StaticMesh::triangles`]), `None` for agents.
    pub triangle: Option<u32>,
}

/// One lidar scan; see the module docs for the beam order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LidarScan {
    /// Rows of beams.
    pub channels: u32,
    /// Beams per row.
    pub beams_per_channel: u32,
    /// The pose the scan was taken from.
    pub pose: SensorPose,
    /// Measured range per beam (m, noise included); `f64::INFINITY` where nothing returned.
    pub ranges_m: Vec<f64>,
    /// What each beam hit; [`Hit::None`] where nothing returned.
    pub hit: Vec<Hit>,
    /// The returns (beams that hit something), in beam order, in the sensor frame (FLU, m).
    pub points_sensor: Vec<[f64; 3]>,
    /// The same returns in the twin frame (ENU, m).
    pub points_enu: Vec<[f64; 3]>,
    /// The beam index of each return.
    pub return_beam: Vec<u32>,
}

impl LidarScan {
    /// Number of returns.
    pub fn return_count(&self) -> usize {
        self.points_enu.len()
    }
}

/// The static scene (the twin's mesh and its BVH), built once and shared by every scan.
#[derive(Clone, Debug)]
pub struct LidarScene {
    mesh: StaticMesh,
    bvh: Bvh,
}

impl LidarScene {
    /// Meshes the twin ([`StaticMesh::from_twin`]) and builds the BVH.
    pub fn from_twin(twin: &Twin) -> Self {
        Self::from_mesh(StaticMesh::from_twin(twin))
    }

    /// A scene over any mesh.
    pub fn from_mesh(mesh: StaticMesh) -> Self {
        let tris: Vec<[[f64; 3]; 3]> = (0..mesh.len()).map(|i| mesh.triangle(i)).collect();
        let bvh = Bvh::build(&tris);
        tracing::debug!(triangles = mesh.len(), nodes = bvh.node_count(), depth = bvh.depth(), "lidar BVH built");
        Self { mesh, bvh }
    }

    /// The static mesh.
    pub fn mesh(&self) -> &StaticMesh {
        &self.mesh
    }

    /// The BVH over the mesh.
    pub fn bvh(&self) -> &Bvh {
        &self.bvh
    }

    /// The first static surface along `origin + t·dir` for `t` in `[0, max_m]` (`dir` need
    /// not be normalised). `None` for a miss, a zero or non-finite direction, or a bad origin.
    pub fn cast_ray(&self, origin_enu: [f64; 3], dir_enu: [f64; 3], max_m: f64) -> Option<RayHit> {
        self.cast_ray_with_agents(origin_enu, dir_enu, max_m, &[])
    }

    /// As [`LidarScene::cast_ray`], also against the agents' boxes.
    pub fn cast_ray_with_agents(
        &self,
        origin_enu: [f64; 3],
        dir_enu: [f64; 3],
        max_m: f64,
        agents: &[AgentBox],
    ) -> Option<RayHit> {
        let len = (dir_enu[0].powi(2) + dir_enu[1].powi(2) + dir_enu[2].powi(2)).sqrt();
        if !(len.is_finite() && len > 0.0 && origin_enu.iter().all(|v| v.is_finite()) && max_m >= 0.0) {
            return None;
        }
        let d = [dir_enu[0] / len, dir_enu[1] / len, dir_enu[2] / len];
        let refs: Vec<&AgentBox> = agents.iter().collect();
        self.cast_unit(origin_enu, d, max_m, &refs)
    }

    fn cast_unit(&self, o: [f64; 3], d: [f64; 3], max_m: f64, agents: &[&AgentBox]) -> Option<RayHit> {
        let mut best: Option<RayHit> = None;
        let mut t_best = max_m;
        if let Some(h) = self.bvh.cast(o, d, max_m) {
            let [a, b, c] = self.mesh.triangle(h.triangle as usize);
            let n = normalize(cross3(sub3(b, a), sub3(c, a)));
            let n = if dot3(n, d) > 0.0 { [-n[0], -n[1], -n[2]] } else { n };
            t_best = h.t_m;
            best = Some(RayHit {
                t_m: h.t_m,
                point_enu: along(o, d, h.t_m),
                normal_enu: n,
                hit: self.mesh.surfaces[h.triangle as usize].into(),
                triangle: Some(h.triangle),
            });
        }
        for a in agents {
            if let Some((t, n)) = a.ray_hit(o, d, t_best)
                && (best.is_none() || t < t_best)
            {
                t_best = t;
                best = Some(RayHit {
                    t_m: t,
                    point_enu: along(o, d, t),
                    normal_enu: n,
                    hit: Hit::Agent(a.id),
                    triangle: None,
                });
            }
        }
        best
    }

    /// One scan from `pose` with the given agents; noise keyed by `(seed, scan_index, beam)`.
    /// Errors when the configuration is invalid ([`LidarConfig::validate`]) or the pose is
    /// not finite.
    pub fn scan(
        &self,
        config: &LidarConfig,
        pose: &SensorPose,
        agents: &[AgentBox],
        seed: u64,
        scan_index: u64,
    ) -> Result<LidarScan, SensorError> {
        config.validate()?;
        let finite =
            pose.position_enu.iter().chain([&pose.yaw_rad, &pose.pitch_rad, &pose.roll_rad]).all(|v| v.is_finite());
        if !finite {
            return Err(SensorError::InvalidConfig { name: "pose", reason: format!("{pose:?} is not finite") });
        }
        let rot = pose.enu_from_sensor();
        let o = pose.position_enu;
        // Only agents that can be within range.
        let near: Vec<&AgentBox> = agents
            .iter()
            .filter(|a| {
                let c = [a.base_center_enu[0], a.base_center_enu[1], a.base_center_enu[2] + 0.5 * a.height_m];
                let r = a.bounding_radius_m();
                r.is_finite() && c.iter().all(|v| v.is_finite()) && dist3(c, o) <= config.range_max_m + r
            })
            .collect();
        let key = key_from_seed(seed);
        let beams: Vec<(f64, Hit)> = (0..config.beam_count())
            .into_par_iter()
            .with_min_len(256)
            .map(|k| {
                let d = mat_vec(&rot, config.beam_direction_sensor(k));
                let Some(h) = self.cast_unit(o, d, config.range_max_m, &near) else {
                    return (f64::INFINITY, Hit::None);
                };
                if h.t_m < config.range_min_m {
                    return (f64::INFINITY, Hit::None);
                }
                let r = philox4x32([k as u32, scan_index as u32, (scan_index >> 32) as u32, LIDAR_STREAM], key);
                if config.dropout_prob > 0.0 && (unit_f32(r[2]) as f64) < config.dropout_prob {
                    return (f64::INFINITY, Hit::None);
                }
                let noise = config.range_noise_std_m * standard_normal(r[0], r[1]);
                ((h.t_m + noise).max(0.0), h.hit)
            })
            .collect();
        let mut scan = LidarScan {
            channels: config.channels,
            beams_per_channel: config.beams_per_channel,
            pose: *pose,
            ranges_m: Vec::with_capacity(beams.len()),
            hit: Vec::with_capacity(beams.len()),
            ..Default::default()
        };
        for (k, (range_m, hit)) in beams.into_iter().enumerate() {
            scan.ranges_m.push(range_m);
            scan.hit.push(hit);
            if hit != Hit::None {
                let ds = config.beam_direction_sensor(k);
                let ps = [ds[0] * range_m, ds[1] * range_m, ds[2] * range_m];
                let pe = mat_vec(&rot, ps);
                scan.points_sensor.push(ps);
                scan.points_enu.push([o[0] + pe[0], o[1] + pe[1], o[2] + pe[2]]);
                scan.return_beam.push(k as u32);
            }
        }
        Ok(scan)
    }
}

/// A standard normal from two random words (Box–Muller, `u1` in `(0, 1]`).
pub fn standard_normal(a: u32, b: u32) -> f64 {
    let u1 = ((a >> 8) as f64 + 1.0) / 16_777_216.0;
    let u2 = unit_f32(b) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn along(o: [f64; 3], d: [f64; 3], t: f64) -> [f64; 3] {
    [o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]]
}

fn sub3(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross3(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn dot3(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn dist3(a: [f64; 3], b: [f64; 3]) -> f64 {
    dot3(sub3(a, b), sub3(a, b)).sqrt()
}

fn normalize(v: [f64; 3]) -> [f64; 3] {
    let n = dot3(v, v).sqrt();
    if n > 0.0 { [v[0] / n, v[1] / n, v[2] / n] } else { [0.0, 0.0, 1.0] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_matches_the_quaternion_and_pitch_tilts_down() {
        let pose = SensorPose { position_enu: [0.0; 3], yaw_rad: 0.7, pitch_rad: 0.3, roll_rad: -0.2 };
        let m = pose.enu_from_sensor();
        let [x, y, z, w] = pose.quaternion_xyzw();
        let q = [
            [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - z * w), 2.0 * (x * z + y * w)],
            [2.0 * (x * y + z * w), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - x * w)],
            [2.0 * (x * z - y * w), 2.0 * (y * z + x * w), 1.0 - 2.0 * (x * x + y * y)],
        ];
        for r in 0..3 {
            for c in 0..3 {
                assert!((m[r][c] - q[r][c]).abs() < 1e-12, "{m:?} vs {q:?}");
            }
        }
        let down = SensorPose { pitch_rad: 0.5, ..Default::default() };
        assert!(mat_vec(&down.enu_from_sensor(), [1.0, 0.0, 0.0])[2] < 0.0);
    }

    #[test]
    fn beam_pattern_spans_the_fields_of_view() {
        let c = LidarConfig::lidar_16();
        let first = c.beam_direction_sensor(0);
        let last = c.beam_direction_sensor(c.beam_count() - 1);
        assert!((first[2].asin() + 15f64.to_radians()).abs() < 1e-12);
        assert!((last[2].asin() - 15f64.to_radians()).abs() < 1e-12);
        let p = LidarConfig::planar_2d();
        assert!(p.validate().is_ok());
        for k in 0..p.beam_count() {
            assert_eq!(p.beam_direction_sensor(k)[2], 0.0);
        }
        let mut bad = p.clone();
        bad.range_min_m = 40.0;
        assert!(matches!(bad.validate(), Err(SensorError::InvalidConfig { name: "range_min_m", .. })));
    }

    #[test]
    fn agent_box_faces_and_inside_origin() {
        let a = AgentBox {
            id: 7,
            base_center_enu: [10.0, 0.0, 0.0],
            yaw_rad: 0.0,
            length_m: 4.0,
            width_m: 2.0,
            height_m: 1.5,
        };
        let (t, n) = a.ray_hit([0.0, 0.0, 1.0], [1.0, 0.0, 0.0], 100.0).unwrap();
        assert!((t - 8.0).abs() < 1e-12);
        assert_eq!(n, [-1.0, 0.0, 0.0]);
        assert!(a.ray_hit([10.0, 0.0, 1.0], [1.0, 0.0, 0.0], 100.0).is_none(), "origin inside");
        assert!(a.ray_hit([0.0, 0.0, 2.0], [1.0, 0.0, 0.0], 100.0).is_none(), "over the roof");
        let turned = AgentBox { yaw_rad: std::f64::consts::FRAC_PI_2, ..a };
        let (t, _) = turned.ray_hit([0.0, 0.0, 1.0], [1.0, 0.0, 0.0], 100.0).unwrap();
        assert!((t - 9.0).abs() < 1e-12, "turned 90°, the width faces the ray: {t}");
    }
}
