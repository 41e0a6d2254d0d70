//! The record types both logs take.

/// A pose in the twin frame; see the crate docs for the angle conventions.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Pose3 {
    /// Position (ENU, m).
    pub position_enu: [f64; 3],
    /// Counter-clockwise from east (rad).
    pub yaw_rad: f64,
    /// About the body's left axis, positive nose down (rad).
    pub pitch_rad: f64,
    /// About the body's forward axis, positive raises the left side (rad).
    pub roll_rad: f64,
}

impl Pose3 {
    /// A level pose.
    pub fn level(position_enu: [f64; 3], yaw_rad: f64) -> Self {
        Self { position_enu, yaw_rad, pitch_rad: 0.0, roll_rad: 0.0 }
    }

    /// The orientation `Rz(yaw)·Ry(pitch)·Rx(roll)` as a unit quaternion `[x, y, z, w]`.
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

    pub(crate) fn is_finite(&self) -> bool {
        self.position_enu.iter().chain([&self.yaw_rad, &self.pitch_rad, &self.roll_rad]).all(|v| v.is_finite())
    }
}

/// Another agent as an oriented box standing on its base.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AgentRecord {
    /// The agent's id.
    pub id: u64,
    /// A short kind (`"car"`, `"pedestrian"`, ...); shown in Foxglove's entity metadata.
    pub kind: String,
    /// Centre of the box's bottom face (ENU, m).
    pub base_center_enu: [f64; 3],
    /// Heading of the length axis, counter-clockwise from east (rad).
    pub yaw_rad: f64,
    /// Along the heading (m).
    pub length_m: f64,
    /// Across the heading (m).
    pub width_m: f64,
    /// Up (m).
    pub height_m: f64,
}

impl AgentRecord {
    pub(crate) fn is_finite(&self) -> bool {
        self.base_center_enu
            .iter()
            .chain([&self.yaw_rad, &self.length_m, &self.width_m, &self.height_m])
            .all(|v| v.is_finite())
    }
}

/// Checks that every coordinate is finite.
pub(crate) fn points_finite(points: &[[f64; 3]]) -> bool {
    points.iter().flatten().all(|v| v.is_finite())
}
