//! Rendering without a window: screenshots for documentation, CI and reports.
//!
//! The app runs bevy's default plugins without `WinitPlugin` and without a primary window,
//! renders the camera into an image, and is updated frame by frame by [`render_frames`]
//! itself (no runner): after frame `k` of [`HeadlessOptions::capture_frames`] it requests a
//! screenshot of the image (`Screenshot::image`) and keeps updating until every requested
//! screenshot has come back. Pipelines are compiled synchronously (otherwise the first
//! frames are blank) and the Vulkan backend is forced (bevy's shadow shaders do not compile
//! on llvmpipe's GL), and rendering is not pipelined (each `update` renders its own frame).
//! Each frame advances the simulation by a fixed simulated time
//! ([`HeadlessOptions::sim_s_per_frame`]), so pictures do not depend on the machine's speed.
//!
//! Without a Vulkan adapter bevy cannot start; [`render_frames`] reports that as
//! [`ViewerError::NoGpu`] by probing first (`vulkaninfo`-free: it checks for a Vulkan ICD
//! manifest, see [`vulkan_available`]).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy::app::PluginsState;
use bevy::image::Image;
use bevy::prelude::*;
use bevy::render::RenderPlugin;
use bevy::render::render_resource::{TextureFormat, TextureUsages};
use bevy::render::settings::{Backends, RenderCreation, WgpuSettings};
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::window::ExitCondition;
use image::RgbaImage;
use swm_twin::Twin;

use crate::{FrameDt, ViewerConfig, ViewerError, ViewerPlugin, imagination::Imagination, insert_prepared, prepare};

/// What to render.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadlessOptions {
    /// Image width (px).
    pub width: u32,
    /// Image height (px).
    pub height: u32,
    /// Frames after which a screenshot is taken (1-based: `1` is after the first frame).
    pub capture_frames: Vec<u32>,
    /// Simulated seconds per frame.
    pub sim_s_per_frame: f64,
    /// Give up after this long (s).
    pub timeout_s: f64,
}

impl Default for HeadlessOptions {
    fn default() -> Self {
        HeadlessOptions { width: 1280, height: 720, capture_frames: vec![3], sim_s_per_frame: 0.1, timeout_s: 600.0 }
    }
}

/// Frame statistics of a headless run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameStats {
    /// Wall time of each `App::update` (s), in order.
    pub frame_s: Vec<f64>,
    /// Triangles in the scene meshes.
    pub scene_triangles: usize,
    /// Scene mesh entities (one draw each; agents and signals come on top).
    pub scene_meshes: usize,
    /// Agent entities at the end.
    pub agents: usize,
    /// Signal heads.
    pub signal_heads: usize,
    /// Buildings and parts drawn.
    pub buildings: usize,
    /// The robot at the end, if one was placed.
    pub robot: Option<RobotStats>,
    /// The drone at the end, if one was placed: steps flown, arrived, metres left to its
    /// goal, altitude (m) and the most it was below the airspace floor (m).
    pub drone: Option<(u64, bool, f64, f64, f64)>,
    /// Wall time of one simulation step at the end (s, moving average; with teacher traffic
    /// it runs on a worker thread, overlapping the frames).
    pub sim_step_s: f64,
    /// Who drove the agents at the end ([`crate::SimResource::traffic_label`]).
    pub traffic: String,
    /// Mesh entities at the end (scene chunks, agents, signal heads and poles, overlays).
    pub mesh_entities: usize,
    /// Distinct (mesh, material) pairs among them: bevy batches the entities of a pair into
    /// one instanced draw, so this is the number of draws of a view pass that sees every
    /// entity (each shadow cascade draws again). bevy 0.19 counts no draw calls itself.
    pub draw_batches: usize,
}

/// A robot's figures at the end of a headless run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RobotStats {
    /// Steps driven.
    pub steps: u64,
    /// Replans done.
    pub replans: u64,
    /// Mean replan wall time (s, moving average) and the last one's.
    pub plan_mean_s: f64,
    /// The last replan's wall time (s).
    pub plan_last_s: f64,
    /// Route metres driven and still ahead.
    pub driven_m: f64,
    /// Route metres still ahead.
    pub remaining_m: f64,
    /// Contacts.
    pub collisions: u32,
    /// Where it is (twin frame, m).
    pub position_enu: [f64; 2],
}

/// Whether a Vulkan driver seems installed (an ICD manifest in the standard places or
/// `VK_ICD_FILENAMES` / `VK_DRIVER_FILES` set).
pub fn vulkan_available() -> bool {
    if std::env::var_os("VK_ICD_FILENAMES").is_some() || std::env::var_os("VK_DRIVER_FILES").is_some() {
        return true;
    }
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"].iter().any(|d| {
        std::fs::read_dir(d)
            .is_ok_and(|mut it| it.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))))
    })
}

#[derive(Resource, Clone, Default)]
struct Captures(Arc<Mutex<Vec<(u32, RgbaImage)>>>);

/// Renders `twin` headlessly and returns the requested screenshots (in frame order) and
/// frame statistics.
pub fn render_frames(
    twin: Arc<Twin>,
    config: &ViewerConfig,
    opts: &HeadlessOptions,
) -> Result<(Vec<(u32, RgbaImage)>, FrameStats), ViewerError> {
    if opts.width == 0 || opts.height == 0 || opts.width > 8192 || opts.height > 8192 {
        return Err(ViewerError::Option(format!("image size {}x{} out of 1..=8192", opts.width, opts.height)));
    }
    if !vulkan_available() {
        return Err(ViewerError::NoGpu(
            "no Vulkan ICD manifest in /usr/share/vulkan/icd.d or /etc/vulkan/icd.d".into(),
        ));
    }
    let mut captures: Vec<u32> = opts.capture_frames.iter().copied().filter(|f| *f > 0).collect();
    captures.sort_unstable();
    captures.dedup();
    if captures.is_empty() {
        return Err(ViewerError::Option("no frame to capture (frames are counted from 1)".into()));
    }
    let prepared = prepare(twin, config)?;
    let scene_triangles = prepared.scene.triangle_count();
    let scene_meshes = prepared.scene.chunks.len();
    let buildings = prepared.scene.buildings;

    let mut app = App::new();
    app.add_plugins(
        DefaultPlugins
            .build()
            .disable::<bevy::winit::WinitPlugin>()
            .disable::<bevy::log::LogPlugin>()
            // Render each frame within its `update`: with pipelined rendering the image lags
            // the world by a frame and early screenshots can come back blank.
            .disable::<bevy::render::pipelined_rendering::PipelinedRenderingPlugin>()
            .set(WindowPlugin { primary_window: None, exit_condition: ExitCondition::DontExit, ..default() })
            .set(RenderPlugin {
                render_creation: RenderCreation::Automatic(Box::new(WgpuSettings {
                    backends: Some(Backends::VULKAN),
                    ..default()
                })),
                synchronous_pipeline_compilation: true,
                ..default()
            }),
    );
    let mut target = Image::new_target_texture(opts.width, opts.height, TextureFormat::Rgba8UnormSrgb, None);
    target.texture_descriptor.usage |= TextureUsages::COPY_SRC;
    let handle = app.world_mut().resource_mut::<Assets<Image>>().add(target);
    insert_prepared(&mut app, prepared, config, FrameDt::Fixed(opts.sim_s_per_frame));
    app.add_plugins(ViewerPlugin { config: config.clone(), interactive: false, target: Some(handle.clone()) });
    // A robot waits for each replan: one seed and one frame count decide the picture.
    app.world_mut().resource_mut::<crate::robot::Robots>().blocking = true;
    let store = Captures::default();
    app.insert_resource(store.clone());

    let start = Instant::now();
    while app.plugins_state() == PluginsState::Adding {
        bevy::tasks::tick_global_task_pools_on_main_thread();
        if start.elapsed().as_secs_f64() > opts.timeout_s {
            return Err(ViewerError::Render("the renderer did not start in time".into()));
        }
    }
    app.finish();
    app.cleanup();

    let mut stats = FrameStats { scene_triangles, scene_meshes, buildings, ..default() };
    let last = *captures.last().expect("not empty");
    let mut frame = 0u32;
    let mut pending = captures.iter().copied().peekable();
    loop {
        if start.elapsed().as_secs_f64() > opts.timeout_s {
            return Err(ViewerError::Render(format!(
                "timed out after {:.0} s at frame {frame} with {} of {} screenshots",
                opts.timeout_s,
                store.0.lock().map(|v| v.len()).unwrap_or(0),
                captures.len()
            )));
        }
        if config.imagine && app.world().resource::<Imagination>().futures.is_none() && frame >= 1 {
            // Wait (simulation paused) for the first imagined futures.
            app.world_mut().resource_mut::<crate::SimResource>().clock.paused = true;
            app.update();
            std::thread::sleep(Duration::from_millis(20));
            if app.world().resource::<Imagination>().error.is_some() {
                let e = app.world().resource::<Imagination>().error.clone().unwrap_or_default();
                return Err(ViewerError::Render(format!("imagination failed: {e}")));
            }
            continue;
        }
        if config.imagine {
            app.world_mut().resource_mut::<crate::SimResource>().clock.paused = false;
        }
        let t0 = Instant::now();
        app.update();
        frame += 1;
        if config.robot.is_some() {
            // The robot could not be placed, or its planner failed: say so rather than draw
            // a picture without it.
            let robots = app.world().resource::<crate::robot::Robots>();
            if robots.robot.is_none() {
                return Err(ViewerError::Robot(robots.error.clone().unwrap_or_else(|| "not placed".into())));
            }
        }
        if config.drone.is_some() {
            // Likewise for a drone that could not be placed or routed.
            let drones = app.world().resource::<crate::drone::Drones>();
            if drones.drone.is_none() {
                return Err(ViewerError::Drone(drones.error.clone().unwrap_or_else(|| "not placed".into())));
            }
        }
        if frame <= last {
            stats.frame_s.push(t0.elapsed().as_secs_f64());
        }
        if pending.peek() == Some(&frame) {
            pending.next();
            let store = store.clone();
            let at = frame;
            app.world_mut().spawn(Screenshot::image(handle.clone())).observe(
                move |ev: On<ScreenshotCaptured>| match ev.image.clone().try_into_dynamic() {
                    Ok(img) => {
                        if let Ok(mut v) = store.0.lock() {
                            v.push((at, img.to_rgba8()));
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "screenshot conversion"),
                },
            );
        }
        let done = store.0.lock().map(|v| v.len()).unwrap_or(0);
        if done == captures.len() {
            break;
        }
        if frame > last + 200 {
            return Err(ViewerError::Render(format!("only {done} of {} screenshots came back", captures.len())));
        }
    }
    let world = app.world_mut();
    stats.sim_step_s = world.resource::<crate::SimResource>().step_wall_s;
    stats.traffic = world.resource::<crate::SimResource>().traffic_label();
    let pairs: std::collections::BTreeSet<(AssetId<Mesh>, AssetId<StandardMaterial>)> = world
        .query::<(&Mesh3d, &MeshMaterial3d<StandardMaterial>)>()
        .iter(world)
        .map(|(m, mat)| (m.0.id(), mat.0.id()))
        .collect();
    stats.mesh_entities = world.query::<&Mesh3d>().iter(world).count();
    stats.drone = world.resource::<crate::drone::Drones>().drone.as_ref().map(|d| {
        let p = d.drone.state.position_enu;
        let g = d.route.last().copied().unwrap_or(p);
        let left = (g[0] - p[0]).hypot(g[1] - p[1]).hypot(g[2] - p[2]);
        (d.steps, d.arrived, left, p[2], d.worst_below_floor_m)
    });
    stats.draw_batches = pairs.len();
    stats.agents = world.query::<&crate::agents::AgentMarker>().iter(world).count();
    stats.signal_heads = world.query::<&crate::spawn::SignalHead>().iter(world).count();
    stats.robot = world.resource::<crate::robot::Robots>().robot.as_ref().map(|r| RobotStats {
        steps: r.steps,
        replans: r.replans,
        plan_mean_s: r.plan_wall_mean_s,
        plan_last_s: r.plan.as_ref().map_or(0.0, |p| p.plan_wall_s),
        driven_m: r.route_s_m,
        remaining_m: r.remaining_m(),
        collisions: r.collisions,
        position_enu: r.state.point_enu,
    });
    let mut images = store.0.lock().map(|v| v.clone()).unwrap_or_default();
    images.sort_by_key(|(f, _)| *f);
    Ok((images, stats))
}

/// Saves an image as PNG (RGB: the alpha channel of HDR targets is not opacity).
pub fn save_png(image: &RgbaImage, path: &Path) -> Result<(), ViewerError> {
    let rgb = image::DynamicImage::ImageRgba8(image.clone()).to_rgb8();
    rgb.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| ViewerError::Write { path: path.display().to_string(), message: e.to_string() })
}
