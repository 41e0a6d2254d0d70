//! `swm_viewer`: the desktop viewer of Seoul World Model, in bevy.
//!
//! It shows a twin in 3D (extruded buildings with roofs coloured by use or height, roads
//! with lane markings, sidewalks, crossings, water, parks, terrain, signals in their
//! current phase, a sun with shadows), the agents moving live (interpolated between 10 Hz
//! steps) as the teacher simulation or the world model moves them, the world model's sampled futures of a selected
//! agent, a delivery robot planning in imagination with its candidate and chosen plans and
//! its lidar, and overlays (lane graph, walk graph, BEV classes, distance field, and
//! whatever other crates hand in through [`overlay::ExternalOverlay`]).
//!
//! # Structure
//! * [`scene`]: the twin as meshes merged in spatial chunks (pure; no ECS);
//! * [`spawn`]: chunks, signal heads and the sun as entities; recolouring; signal phases;
//! * [`agents`]: the simulation clock, stepping, interpolation, agent entities, picking;
//! * [`camera`]: orbit / pan / zoom / top-down / follow, click to select;
//! * [`ui`]: the panel (bevy UI) and its keys; [`overlay`]: overlays; [`imagination`]: the
//!   model's futures off the main thread;
//! * [`robot`]: a `swm_robots` delivery robot placed by two clicks, planning in imagination
//!   (MPPI through world-model futures) off the main thread, its plans and lidar drawn;
//! * [`headless`]: rendering to PNG without a window (documentation, CI, reports).
//!
//! [`ViewerCorePlugin`] holds what needs no window or GPU (scene entities, the simulation,
//! agents, signals, the robot and its overlay data) so it can be tested in a headless `App` with `MinimalPlugins`;
//! [`ViewerPlugin`] adds the camera, light, panel, overlays and imagination.
//!
//! # Frames and units
//! The twin frame is `x` east, `y` north, `z` up (metres); bevy's world is `x` east, `y`
//! up, `z` south ([`agents::bevy_from_twin`]), the same axes as the glTF export. Headings
//! are radians counter-clockwise from east.
//!
//! **Invariant:** one seed and one frame count decide a headless picture: the simulation
//! is stepped by a fixed simulated time per frame and the scene is built in twin order.

pub mod agents;
pub mod camera;
pub mod drone;
pub mod gpu_traffic;
pub mod headless;
pub mod imagination;
pub mod overlay;
pub mod robot;
pub mod scene;
pub mod spawn;
pub mod ui;

use std::path::Path;
use std::sync::Arc;

use bevy::prelude::*;
use swm_twin::Twin;

pub use agents::{FrameDt, SimParams, SimResource, TwinResource};
pub use scene::{BuildingColouring, build_scene};

/// Errors of the viewer.
///
/// A variant with a cause returns it from `source()` and leaves it out of its own message:
/// print the chain (anyhow's `{:#}`, or `swm_core::ErrorChain`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewerError {
    /// The twin file could not be read.
    #[error("reading the twin")]
    Twin(#[from] swm_twin::TwinError),
    /// The embedded default district could not be generated.
    #[error("generating the embedded default district")]
    Procgen(#[from] swm_procgen::ProcgenError),
    /// The simulation refused the twin or the parameters.
    #[error("starting the simulation: {0}")]
    Sim(swm_sim::SimError),
    /// A bad option (named).
    #[error("{0}")]
    Option(String),
    /// No GPU adapter (no Vulkan driver): headless rendering is impossible here.
    #[error("no GPU adapter found (install Mesa's lavapipe: mesa-vulkan-drivers): {0}")]
    NoGpu(String),
    /// A robot could not be placed or planned for.
    #[error("robot: {0}")]
    Robot(String),
    /// A drone could not be placed or routed.
    #[error("drone: {0}")]
    Drone(String),
    /// Rendering did not produce the requested screenshots.
    #[error("rendering: {0}")]
    Render(String),
    /// The world model (for model traffic) could not be loaded.
    #[error("world model: {0}")]
    Model(String),
    /// Writing an image failed.
    #[error("writing {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Loads a `.swt` twin, or builds the embedded default district when `path` is `None`
/// (the same district as `swm demo`: `swm_procgen` with `data/default-district.toml`).
pub fn load_twin(path: Option<&Path>) -> Result<Twin, ViewerError> {
    match path {
        Some(p) => Ok(swm_twin::read_swt(p)?),
        None => {
            let params = swm_procgen::DistrictParams::embedded_default();
            let (twin, report) = swm_procgen::build_district(&params)?;
            tracing::info!(
                warnings = report.warnings.len(),
                buildings = twin.buildings.len(),
                "embedded default district built"
            );
            Ok(twin)
        }
    }
}

/// How the camera starts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum CameraStart {
    /// Oblique view of the whole district.
    #[default]
    Orbit,
    /// Straight down, north up, the whole district in view.
    TopDown,
    /// From an eye point towards a target (bevy world).
    Look {
        /// Eye.
        eye: Vec3,
        /// Target.
        target: Vec3,
    },
}

/// Everything the viewer starts with.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewerConfig {
    /// Simulation parameters.
    pub sim: SimParams,
    /// Building colours.
    pub colouring: BuildingColouring,
    /// Overlays on at start.
    pub overlays: overlay::Overlays,
    /// Draw every agent unlit magenta (tests find them by colour).
    pub highlight_agents: bool,
    /// Chunk side (m).
    pub chunk_m: f64,
    /// The camera at start.
    pub camera: CameraStart,
    /// Select the moving vehicle nearest the view's centre, show its imagined futures and
    /// frame the camera on it (at most 110 m away).
    pub imagine: bool,
    /// Place a delivery robot at start (and, with the orbit camera, frame it).
    pub robot: Option<robot::RobotSpawn>,
    /// Place a drone at start, flying to its goal (and, with the orbit camera and no robot,
    /// frame it).
    pub drone: Option<drone::DroneSpawn>,
    /// Cast and draw the robot's lidar.
    pub lidar: bool,
    /// Hand the traffic to the world model after the preroll (`M` toggles it).
    pub model_traffic: bool,
    /// Where the world model runs when it drives the traffic.
    pub model_backend: gpu_traffic::ModelBackend,
}

impl Default for ViewerConfig {
    fn default() -> Self {
        ViewerConfig {
            sim: SimParams::default(),
            colouring: BuildingColouring::Use,
            overlays: overlay::Overlays::default(),
            highlight_agents: false,
            chunk_m: scene::CHUNK_M,
            camera: CameraStart::Orbit,
            imagine: false,
            robot: None,
            drone: None,
            lidar: false,
            model_traffic: false,
            model_backend: gpu_traffic::ModelBackend::Auto,
        }
    }
}

/// The viewer's state before the app starts: the twin, its meshes, the running simulation.
pub struct Prepared {
    /// The twin.
    pub twin: Arc<Twin>,
    /// Its merged meshes.
    pub scene: Arc<scene::SceneMeshes>,
    /// The simulation after its preroll.
    pub sim: SimResource,
}

/// Builds the meshes and starts the simulation (the slow part before the first frame).
pub fn prepare(twin: Arc<Twin>, config: &ViewerConfig) -> Result<Prepared, ViewerError> {
    let t0 = std::time::Instant::now();
    let scene = Arc::new(build_scene(&twin, config.chunk_m));
    tracing::info!(
        chunks = scene.chunk_count(),
        meshes = scene.chunks.len(),
        triangles = scene.triangle_count(),
        ms = t0.elapsed().as_millis() as u64,
        "scene built"
    );
    let mut sim = SimResource::start(twin.clone(), config.sim.clone())?;
    sim.model_backend = config.model_backend;
    if config.model_traffic {
        let model = imagination::load_model(&twin, config.sim.seed).map_err(ViewerError::Model)?;
        sim.drive_with_model(Arc::new(model), &twin).map_err(ViewerError::Model)?;
    }
    Ok(Prepared { twin, scene, sim })
}

/// Scene entities, the simulation and the agents: everything that needs no window. Insert
/// the resources of [`Prepared`] with [`insert_prepared`] first.
pub struct ViewerCorePlugin {
    /// Draw agents unlit magenta.
    pub highlight_agents: bool,
}

impl Plugin for ViewerCorePlugin {
    fn build(&self, app: &mut App) {
        let highlight = self.highlight_agents;
        app.init_resource::<agents::Selection>()
            .init_resource::<robot::Robots>()
            .init_resource::<drone::Drones>()
            .init_resource::<robot::RobotOverlay>()
            .add_systems(
                Startup,
                (
                    spawn::spawn_scene,
                    move |mut commands: Commands,
                          mut meshes: ResMut<Assets<Mesh>>,
                          mut materials: ResMut<Assets<StandardMaterial>>| {
                        commands.insert_resource(agents::make_agent_assets(&mut meshes, &mut materials, highlight));
                    },
                ),
            )
            .add_systems(
                Update,
                (
                    robot::robot_tasks,
                    agents::advance_sim,
                    agents::sync_agents,
                    robot::sync_robot,
                    drone::step_drones,
                    drone::sync_drone,
                    robot::update_robot_overlay,
                    spawn::update_signals,
                    spawn::recolour_buildings,
                )
                    .chain(),
            );
    }
}

/// Inserts the twin, the scene and the simulation as resources.
pub fn insert_prepared(app: &mut App, prepared: Prepared, config: &ViewerConfig, frame_dt: FrameDt) {
    app.insert_resource(TwinResource(prepared.twin))
        .insert_resource(spawn::SceneData { meshes: prepared.scene, colouring: config.colouring })
        .insert_resource(prepared.sim)
        .insert_resource(frame_dt);
}

/// The camera, the sun, overlays, imagination; with `interactive`, also the panel, camera
/// controls and picking (they need a window and input).
pub struct ViewerPlugin {
    /// The start configuration.
    pub config: ViewerConfig,
    /// A window with input (false: headless).
    pub interactive: bool,
    /// Render into this image instead of the window.
    pub target: Option<Handle<Image>>,
}

/// Camera start and target, for the setup system.
#[derive(Resource, Clone)]
struct CameraSetup {
    start: CameraStart,
    target: Option<Handle<Image>>,
    imagine: bool,
}

impl Plugin for ViewerPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins(ViewerCorePlugin { highlight_agents: self.config.highlight_agents })
            .insert_resource(self.config.overlays)
            .insert_resource(ClearColor(Color::srgb(0.62, 0.74, 0.86)))
            .init_resource::<overlay::ExternalOverlay>()
            .init_resource::<overlay::BevOverlay>()
            .insert_resource(imagination::Imagination::new(self.config.imagine))
            .insert_resource(robot::Robots::new(self.config.lidar))
            .insert_resource(robot::RobotStart(self.config.robot))
            .insert_resource(drone::DroneStart(self.config.drone))
            .insert_gizmo_config(
                robot::ThickGizmos,
                GizmoConfig { line: GizmoLineConfig { width: 6.0, ..default() }, ..default() },
            )
            .insert_resource(CameraSetup {
                start: self.config.camera,
                target: self.target.clone(),
                imagine: self.config.imagine,
            })
            .add_systems(
                Startup,
                (
                    spawn::spawn_sun,
                    robot::spawn_configured_robot,
                    drone::spawn_configured_drone,
                    setup_camera.after(robot::spawn_configured_robot).after(drone::spawn_configured_drone),
                ),
            )
            .add_systems(
                Update,
                (
                    overlay::draw_overlays,
                    overlay::update_bev_overlay,
                    imagination::imagination_tasks.after(agents::advance_sim),
                    imagination::draw_imagination.after(imagination::imagination_tasks),
                    robot::draw_robot_overlay.after(robot::update_robot_overlay),
                    drone::draw_drone_route,
                    robot::follow_robot.after(robot::sync_robot).after(camera::camera_controls),
                ),
            );
        if self.interactive {
            app.init_resource::<camera::DragState>()
                .init_resource::<ui::FrameTime>()
                .add_systems(Startup, ui::spawn_panel)
                .add_systems(
                    Update,
                    (
                        ui::panel_input.before(agents::advance_sim),
                        camera::camera_controls.after(agents::sync_agents),
                        camera::pick_on_click.after(camera::camera_controls),
                        robot::place_on_click.after(camera::pick_on_click),
                        ui::update_status.after(robot::place_on_click),
                    ),
                );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn setup_camera(
    mut commands: Commands,
    setup: Res<CameraSetup>,
    data: Res<spawn::SceneData>,
    sim: Res<SimResource>,
    mut selection: ResMut<agents::Selection>,
    robots: Res<robot::Robots>,
    drones: Res<drone::Drones>,
    twin: Res<TwinResource>,
) {
    let (lo, hi) = spawn::scene_bounds(&data.meshes);
    let centre = Vec3::new(0.5 * (lo.x + hi.x), lo.y.max(0.0).min(hi.y), 0.5 * (lo.z + hi.z));
    let extent = spawn::scene_extent_m(&data.meshes);
    let mut orbit = camera::OrbitCamera::overview(centre, extent);
    let transform = match setup.start {
        CameraStart::Orbit => orbit.transform(),
        CameraStart::TopDown => {
            orbit.top_down = true;
            orbit.distance_m = 1.1 * extent;
            orbit.transform()
        }
        CameraStart::Look { eye, target } => {
            orbit.focus = target;
            orbit.distance_m = (eye - target).length().max(1.0);
            let d = (eye - target).normalize_or(Vec3::Y);
            orbit.pitch_rad = d.y.clamp(-1.0, 1.0).asin().max(0.05);
            orbit.yaw_rad = (-d.x).atan2(d.z);
            Transform::from_translation(eye).looking_at(target, Vec3::Y)
        }
    };
    if setup.imagine {
        // The vehicle nearest the view's focus.
        let focus = super_twin(orbit.focus);
        selection.0 = sim
            .curr
            .iter()
            .filter(|(_, a)| a.kind.is_vehicle() && a.speed_mps > 1.0)
            .min_by(|(ia, a), (ib, b)| {
                let da = (a.position_m[0] - focus[0]).hypot(a.position_m[1] - focus[1]);
                let db = (b.position_m[0] - focus[0]).hypot(b.position_m[1] - focus[1]);
                da.total_cmp(&db).then(ia.cmp(ib))
            })
            .map(|(id, _)| *id);
    }
    let mut transform = transform;
    if let Some((_, p, _)) = setup.imagine.then_some(selection.0).flatten().and_then(|id| sim.pose(id)) {
        // Frame the chosen agent and its futures (3 s ahead: up to about 50 m).
        orbit.focus = agents::bevy_from_twin(p[0], p[1], p[2]);
        orbit.distance_m = orbit.distance_m.min(110.0);
        orbit.top_down = false;
        orbit.pitch_rad = orbit.pitch_rad.max(0.6);
        transform = orbit.transform();
    }
    if let Some(r) = robots.robot.as_ref().filter(|_| setup.start == CameraStart::Orbit && !setup.imagine) {
        // Frame the robot, its route ahead and its plans, and follow it.
        let p = r.state.point_enu;
        let z = twin.0.terrain.elevation_at(p);
        orbit.focus = agents::bevy_from_twin(p[0], p[1], z);
        orbit.distance_m = 28.0;
        orbit.pitch_rad = 1.05;
        orbit.follow = true;
        transform = orbit.transform();
    }
    if let Some(d) =
        drones.drone.as_ref().filter(|_| setup.start == CameraStart::Orbit && !setup.imagine && robots.robot.is_none())
    {
        // Frame the drone at its start, its route leaving it.
        let p = d.drone.state.position_enu;
        orbit.focus = agents::bevy_from_twin(p[0], p[1], p[2]);
        orbit.distance_m = 45.0;
        orbit.pitch_rad = 0.6;
        orbit.top_down = false;
        transform = orbit.transform();
    }
    let mut e = commands.spawn((Camera3d::default(), transform, orbit));
    if let Some(image) = &setup.target {
        e.insert(bevy::camera::RenderTarget::Image(image.clone().into()));
    }
}

fn super_twin(p: Vec3) -> [f64; 3] {
    agents::twin_from_bevy(p)
}
