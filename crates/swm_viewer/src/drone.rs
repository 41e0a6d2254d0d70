//! A quadrotor drone flying over the twin (`swm_robots::drone`).
//!
//! `--drone X,Y --drone-goal X,Y` (twin frame, metres) places a drone hovering at the lowest
//! altitude the airspace allows above X,Y (`Airspace::floor_at`: the ground or a roof plus
//! the clearance) and routes it by 3-D A* through the airspace of the twin (5 m cells, over
//! or around the buildings, never nearer than the clearance) to the same altitude above the
//! goal. A waypoint follower flies the route within the drone's limits (speed,
//! acceleration, yaw rate, altitude above the ground), one step per simulation step, so it
//! pauses and speeds up with the traffic. The drone is drawn as a flat box of its size,
//! interpolated between its last two steps like the agents, its route as a line.

use bevy::prelude::*;
use swm_robots::drone::{Airspace, Drone, DroneLimits, DroneState, RouteConfig, WaypointFollower};
use swm_sim::DT_S;
use swm_twin::{P3, Twin};

use crate::ViewerError;
use crate::agents::{SimResource, TwinResource, bevy_from_twin};

/// The drawn size of the drone: across, tall, across (m).
pub const DRONE_SIZE_M: [f32; 3] = [0.9, 0.3, 0.9];
/// Airspace cells (m) and the margin kept around the twin's extent (m).
const AIRSPACE_CELL_M: f64 = 5.0;
const AIRSPACE_MARGIN_M: f64 = 1.5;
/// Most drone steps run in one frame (as for the simulation).
const MAX_STEPS_PER_FRAME: u64 = crate::agents::MAX_STEPS_PER_FRAME as u64;

/// Where to place a drone and where it flies (twin frame, metres).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DroneSpawn {
    /// Start (east, north).
    pub start: [f64; 2],
    /// Goal (east, north).
    pub goal: [f64; 2],
}

/// A drone flying its route.
pub struct ViewerDrone {
    /// The vehicle (limits and state now).
    pub drone: Drone,
    /// Its state one step before.
    pub prev: DroneState,
    /// The 3-D route (twin frame, metres), start to goal.
    pub route: Vec<P3>,
    /// Steps flown.
    pub steps: u64,
    /// Whether it reached its goal.
    pub arrived: bool,
    /// The most it was ever below the airspace's floor (m; 0 when never).
    pub worst_below_floor_m: f64,
    follower: WaypointFollower,
    airspace: Airspace,
}

/// The drone, if one was placed.
#[derive(Resource, Default)]
pub struct Drones {
    /// The drone.
    pub drone: Option<ViewerDrone>,
    /// Why the last placement failed.
    pub error: Option<String>,
    /// The simulation steps already matched by drone steps.
    steps_seen: u64,
}

impl Drones {
    /// Places a drone at `spawn.start` and routes it to `spawn.goal` (replacing any drone).
    pub fn spawn(&mut self, twin: &Twin, sim: &SimResource, spawn: DroneSpawn) -> Result<(), ViewerError> {
        let limits = DroneLimits::default();
        let err = |e: swm_robots::RobotError| ViewerError::Drone(e.to_string());
        let airspace = Airspace::from_twin(twin, &limits, AIRSPACE_CELL_M, AIRSPACE_MARGIN_M).map_err(err)?;
        let at = |p: [f64; 2], what: &str| -> Result<P3, ViewerError> {
            let z = airspace.floor_at(p).ok_or_else(|| {
                ViewerError::Drone(format!("the {what} ({:.1}, {:.1}) is outside the twin's airspace", p[0], p[1]))
            })?;
            Ok([p[0], p[1], z])
        };
        let (start, goal) = (at(spawn.start, "start")?, at(spawn.goal, "goal")?);
        let route = airspace.plan_route(start, goal, &RouteConfig::default()).map_err(err)?;
        let state = DroneState { position_enu: start, ..Default::default() };
        let drone = Drone::new(limits, state).map_err(err)?;
        tracing::info!(waypoints = route.len(), "drone placed");
        self.drone = Some(ViewerDrone {
            drone,
            prev: state,
            follower: WaypointFollower::new(route.clone()),
            route,
            steps: 0,
            arrived: false,
            worst_below_floor_m: 0.0,
            airspace,
        });
        self.steps_seen = sim.steps_run;
        self.error = None;
        Ok(())
    }
}

impl ViewerDrone {
    /// One step of `DT_S`.
    fn step(&mut self, twin: &Twin) {
        self.prev = self.drone.state;
        if self.arrived {
            return;
        }
        let action = self.follower.action(&self.drone.state, &self.drone.limits, None);
        self.drone.step(&action, DT_S, &twin.terrain);
        self.steps += 1;
        let p = self.drone.state.position_enu;
        if let Some(floor) = self.airspace.floor_at([p[0], p[1]]) {
            self.worst_below_floor_m = self.worst_below_floor_m.max(floor - p[2]);
        }
        self.arrived = self.follower.done(&self.drone.state);
    }

    /// The drawn pose between the last two steps (twin frame position, yaw).
    pub fn drawn(&self, alpha: f32) -> (P3, f64) {
        let a = f64::from(alpha.clamp(0.0, 1.0));
        let (p0, p1) = (self.prev.position_enu, self.drone.state.position_enu);
        let mut d = (self.drone.state.yaw_rad - self.prev.yaw_rad).rem_euclid(std::f64::consts::TAU);
        if d > std::f64::consts::PI {
            d -= std::f64::consts::TAU;
        }
        (std::array::from_fn(|k| p0[k] + (p1[k] - p0[k]) * a), self.prev.yaw_rad + d * a)
    }
}

/// The drone given on the command line, placed at startup.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq)]
pub struct DroneStart(pub Option<DroneSpawn>);

/// Places the drone given on the command line (startup).
pub fn spawn_configured_drone(
    start: Res<DroneStart>,
    mut drones: ResMut<Drones>,
    sim: Res<SimResource>,
    twin: Res<TwinResource>,
) {
    if let Some(spawn) = start.0
        && let Err(e) = drones.spawn(&twin.0, &sim, spawn)
    {
        tracing::error!(error = %e, "placing the drone");
        drones.error = Some(match e {
            ViewerError::Drone(m) => m,
            other => other.to_string(),
        });
    }
}

/// Flies the drone one step per simulation step run since the last frame.
pub fn step_drones(mut drones: ResMut<Drones>, sim: Res<SimResource>, twin: Res<TwinResource>) {
    let due = sim.steps_run.saturating_sub(drones.steps_seen).min(MAX_STEPS_PER_FRAME);
    drones.steps_seen = sim.steps_run;
    if let Some(d) = drones.drone.as_mut() {
        for _ in 0..due {
            d.step(&twin.0);
        }
    }
}

/// Marks the drone's entity.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DroneMarker;

/// The bevy transform of the drone at a twin-frame position and yaw.
pub fn drone_transform(position_m: P3, yaw_rad: f64) -> Transform {
    let [x, y, z] = DRONE_SIZE_M;
    Transform {
        translation: bevy_from_twin(position_m[0], position_m[1], position_m[2]),
        rotation: Quat::from_rotation_y(yaw_rad as f32),
        scale: Vec3::new(x, y, z),
    }
}

/// Spawns, moves and despawns the drone's box.
pub fn sync_drone(
    mut commands: Commands,
    drones: Res<Drones>,
    sim: Res<SimResource>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut existing: Query<(Entity, &mut Transform), With<DroneMarker>>,
) {
    let Some(d) = drones.drone.as_ref() else {
        for (e, _) in &existing {
            commands.entity(e).despawn();
        }
        return;
    };
    let (p, yaw) = d.drawn(sim.clock.alpha());
    let t = drone_transform(p, yaw);
    match existing.iter_mut().next() {
        Some((_, mut tr)) => *tr = t,
        None => {
            let material = materials.add(StandardMaterial {
                base_color: Color::srgb(0.95, 0.95, 0.1),
                emissive: LinearRgba::rgb(0.9, 0.9, 0.0),
                ..default()
            });
            commands.spawn((DroneMarker, Mesh3d(meshes.add(Cuboid::new(1.0, 1.0, 1.0))), MeshMaterial3d(material), t));
        }
    }
}

/// Draws the drone's route.
pub fn draw_drone_route(drones: Res<Drones>, mut gizmos: Gizmos) {
    if let Some(d) = drones.drone.as_ref() {
        gizmos.linestrip(d.route.iter().map(|p| bevy_from_twin(p[0], p[1], p[2])), Color::srgb(1.0, 0.9, 0.2));
    }
}
