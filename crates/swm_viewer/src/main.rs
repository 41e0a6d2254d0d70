//! `swm-viewer`: the desktop viewer. `swm-viewer [CITY.swt]` opens a window on the twin
//! (the embedded default district without an argument) with traffic moving;
//! `--screenshot out.png` renders without a window and exits. Where there is no display,
//! it writes a screenshot instead of failing and says so.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use bevy::prelude::*;
use clap::Parser;
use swm_viewer::headless::{HeadlessOptions, render_frames, save_png};
use swm_viewer::overlay::Overlays;
use swm_viewer::{BuildingColouring, CameraStart, FrameDt, SimParams, ViewerConfig, ViewerPlugin};

/// Seoul World Model viewer: a twin in 3D with its traffic, the model's imagined futures and
/// overlays.
///
/// Keys: Space play/pause, N step, +/- speed, [ ] seed, , . density, C colours, 1-4
/// overlays, I imagination, 9 0 fewer/more imagined samples, R place a delivery robot (click its start, then its goal),
/// L lidar, M model traffic (the world model drives every agent), T top-down, F follow,
/// Esc deselect; mouse: left drag orbit, right drag pan,
/// wheel zoom, click an agent to inspect it.
#[derive(Parser, Debug)]
#[command(name = "swm-viewer", version, verbatim_doc_comment)]
struct Args {
    /// The twin (.swt); default: the embedded default district.
    city: Option<PathBuf>,
    /// Instead of a twin file, generate a procedural district from these parameters (TOML,
    /// as data/default-district.toml): e.g. a large synthetic city for benchmarks.
    #[arg(long, conflicts_with = "city")]
    district: Option<PathBuf>,
    /// Render without a window into this PNG and exit.
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Frames rendered before the screenshot.
    #[arg(long, default_value_t = 3)]
    frames: u32,
    /// Also capture after these frames (written as OUT.frameN.png).
    #[arg(long, value_delimiter = ',')]
    also_capture: Vec<u32>,
    /// Camera: orbit, top, or x,y,z,tx,ty,tz (eye and target in the twin frame: east, north,
    /// up; metres).
    #[arg(long, default_value = "orbit")]
    camera: String,
    /// Image width (headless) or window width (px).
    #[arg(long, default_value_t = 1280)]
    width: u32,
    /// Image height (headless) or window height (px).
    #[arg(long, default_value_t = 720)]
    height: u32,
    /// Simulation seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Vehicles in the district (at density 1).
    #[arg(long, default_value_t = 300)]
    vehicles: u32,
    /// Pedestrians (at density 1).
    #[arg(long, default_value_t = 200)]
    pedestrians: u32,
    /// Scales vehicles and pedestrians.
    #[arg(long, default_value_t = 1.0)]
    density: f64,
    /// Simulated seconds before the first frame.
    #[arg(long, default_value_t = 20.0)]
    preroll: f64,
    /// Simulated seconds per headless frame.
    #[arg(long, default_value_t = 0.1)]
    sim_per_frame: f64,
    /// Building colours: use, height, source (measured vs estimated height), mask (one red).
    #[arg(long, default_value = "use")]
    colour: String,
    /// Overlays on at start: lanes, walk, bev, distance (comma-separated).
    #[arg(long, value_delimiter = ',')]
    overlay: Vec<String>,
    /// Select the vehicle nearest the view's centre and show the model's imagined futures.
    #[arg(long)]
    imagine: bool,
    /// Place a delivery robot at the walk node nearest X,Y (twin frame: east, north; metres);
    /// it plans in imagination towards --robot-goal. With the orbit camera, the view frames it.
    #[arg(long, requires = "robot_goal", allow_hyphen_values = true)]
    robot: Option<String>,
    /// The robot's goal: the walk node nearest X,Y (twin frame, metres).
    #[arg(long, requires = "robot", allow_hyphen_values = true)]
    robot_goal: Option<String>,
    /// Place a quadrotor drone above X,Y (twin frame, metres) at the lowest altitude the
    /// airspace allows; it flies a 3-D A* route to --drone-goal.
    #[arg(long, requires = "drone_goal", allow_hyphen_values = true)]
    drone: Option<String>,
    /// The drone's goal X,Y (twin frame, metres).
    #[arg(long, requires = "drone", allow_hyphen_values = true)]
    drone_goal: Option<String>,
    /// Cast and draw the robot's lidar.
    #[arg(long)]
    lidar: bool,
    /// After the preroll, hand the traffic to the world model (CPU): it moves every agent
    /// from the teacher's last second on (M toggles it in the window).
    #[arg(long)]
    model_traffic: bool,
    /// Where the world model runs when it drives the traffic: auto (a hardware GPU when
    /// there is one, else the CPU), cpu, or gpu (any adapter, Mesa's lavapipe too).
    #[arg(long, default_value = "auto")]
    model_backend: swm_viewer::gpu_traffic::ModelBackend,
    /// Draw agents unlit magenta (tests find them by colour).
    #[arg(long)]
    highlight_agents: bool,
    /// Print frame statistics (JSON) after a headless run.
    #[arg(long)]
    stats: bool,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,wgpu=error,naga=warn,bevy_render=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = config_of(&args)?;
    let twin = match &args.district {
        Some(p) => {
            let params = swm_procgen::DistrictParams::load(p).with_context(|| format!("reading {}", p.display()))?;
            swm_procgen::build_district(&params)
                .with_context(|| format!("generating the district of {}", p.display()))?
                .0
        }
        None => swm_viewer::load_twin(args.city.as_deref()).with_context(|| match &args.city {
            Some(p) => format!("loading {}", p.display()),
            None => "building the embedded default district".into(),
        })?,
    };
    let twin = Arc::new(twin);

    let has_display = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let screenshot = match (&args.screenshot, has_display) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => None,
        (None, false) => {
            let p = PathBuf::from("swm-viewer.png");
            println!(
                "no display (DISPLAY and WAYLAND_DISPLAY unset): rendering headlessly to {} instead of opening a window",
                p.display()
            );
            Some(p)
        }
    };
    match screenshot {
        Some(out) => headless(twin, &config, &args, &out),
        None => interactive(twin, config, &args),
    }
}

fn config_of(args: &Args) -> anyhow::Result<ViewerConfig> {
    let camera = match args.camera.as_str() {
        "orbit" => CameraStart::Orbit,
        "top" => CameraStart::TopDown,
        spec => match swm_viewer::camera::parse_camera_spec(spec) {
            Some((eye, target)) => CameraStart::Look { eye, target },
            None => bail!("--camera {spec:?}: expected orbit, top, or six numbers x,y,z,tx,ty,tz"),
        },
    };
    let colouring = match args.colour.as_str() {
        "use" => BuildingColouring::Use,
        "height" => BuildingColouring::Height,
        "source" => BuildingColouring::HeightSource,
        "mask" => BuildingColouring::Mask,
        other => bail!("--colour {other:?}: expected use, height, source or mask"),
    };
    let mut overlays = Overlays::default();
    for o in &args.overlay {
        match o.as_str() {
            "lanes" => overlays.lane_graph = true,
            "walk" => overlays.walk_graph = true,
            "bev" => overlays.bev_classes = true,
            "distance" => overlays.distance_field = true,
            other => bail!("--overlay {other:?}: expected lanes, walk, bev or distance"),
        }
    }
    let robot = match (&args.robot, &args.robot_goal) {
        (Some(a), Some(b)) => Some(swm_viewer::robot::RobotSpawn {
            start_enu: parse_xy(a).with_context(|| format!("--robot {a:?}"))?,
            goal_enu: parse_xy(b).with_context(|| format!("--robot-goal {b:?}"))?,
        }),
        _ => None,
    };
    let drone = match (&args.drone, &args.drone_goal) {
        (Some(a), Some(b)) => Some(swm_viewer::drone::DroneSpawn {
            start: parse_xy(a).with_context(|| format!("--drone {a:?}"))?,
            goal: parse_xy(b).with_context(|| format!("--drone-goal {b:?}"))?,
        }),
        _ => None,
    };
    if !(args.density.is_finite() && args.density >= 0.0) {
        bail!("--density {}: must be a number >= 0", args.density);
    }
    if !(args.sim_per_frame.is_finite() && args.sim_per_frame >= 0.0) {
        bail!("--sim-per-frame {}: must be a number >= 0", args.sim_per_frame);
    }
    Ok(ViewerConfig {
        sim: SimParams {
            seed: args.seed,
            vehicles: args.vehicles,
            pedestrians: args.pedestrians,
            density: args.density,
            preroll_s: args.preroll.max(0.0),
        },
        colouring,
        overlays,
        highlight_agents: args.highlight_agents,
        camera,
        imagine: args.imagine,
        robot,
        drone,
        lidar: args.lidar,
        model_traffic: args.model_traffic,
        model_backend: args.model_backend,
        ..ViewerConfig::default()
    })
}

/// `X,Y` as two finite numbers.
fn parse_xy(s: &str) -> anyhow::Result<[f64; 2]> {
    let v: Vec<f64> = s.split(',').map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>()?;
    match v.as_slice() {
        [x, y] if x.is_finite() && y.is_finite() => Ok([*x, *y]),
        _ => bail!("expected two numbers X,Y (metres east and north in the twin frame)"),
    }
}

fn headless(
    twin: Arc<swm_twin::Twin>,
    config: &ViewerConfig,
    args: &Args,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let frames = args.frames.max(1);
    let mut capture_frames = args.also_capture.clone();
    capture_frames.push(frames);
    let opts = HeadlessOptions {
        width: args.width,
        height: args.height,
        capture_frames,
        sim_s_per_frame: args.sim_per_frame,
        ..HeadlessOptions::default()
    };
    let (images, stats) = render_frames(twin, config, &opts)?;
    for (frame, image) in &images {
        let path = if *frame == frames {
            out.to_path_buf()
        } else {
            let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("screenshot");
            out.with_file_name(format!("{stem}.frame{frame}.png"))
        };
        save_png(image, &path)?;
        println!("wrote {} ({}x{}, frame {frame})", path.display(), image.width(), image.height());
    }
    if args.stats {
        let mut sorted = stats.frame_s.clone();
        // The first frames compile pipelines: leave them out of the steady-state figures.
        let steady: Vec<f64> = sorted.iter().skip(2).copied().collect();
        sorted = steady.clone();
        sorted.sort_by(f64::total_cmp);
        let mean = if steady.is_empty() { f64::NAN } else { steady.iter().sum::<f64>() / steady.len() as f64 };
        let p95 =
            sorted.get(((sorted.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
        println!(
            "{{\"frames\": {}, \"steady_frames\": {}, \"frame_mean_ms\": {:.1}, \"frame_p95_ms\": {:.1}, \"scene_triangles\": {}, \"scene_meshes\": {}, \"agents\": {}, \"signal_heads\": {}, \"buildings\": {}, \"mesh_entities\": {}, \"draw_batches\": {}, \"sim_step_ms\": {:.1}, \"traffic\": {:?}}}",
            stats.frame_s.len(),
            steady.len(),
            mean * 1e3,
            p95 * 1e3,
            stats.scene_triangles,
            stats.scene_meshes,
            stats.agents,
            stats.signal_heads,
            stats.buildings,
            stats.mesh_entities,
            stats.draw_batches,
            stats.sim_step_s * 1e3,
            stats.traffic,
        );
        if let Some((steps, arrived, left_m, z_m, below_m)) = stats.drone {
            println!(
                "{{\"drone_steps\": {steps}, \"drone_arrived\": {arrived}, \"drone_remaining_m\": {left_m:.2}, \"drone_z_m\": {z_m:.2}, \"drone_below_floor_m\": {below_m:.2}}}"
            );
        }
        if let Some(r) = &stats.robot {
            println!(
                "{{\"robot_steps\": {}, \"robot_replans\": {}, \"robot_plan_mean_ms\": {:.1}, \"robot_plan_last_ms\": {:.1}, \"robot_driven_m\": {:.2}, \"robot_remaining_m\": {:.2}, \"robot_collisions\": {}, \"robot_x_m\": {:.2}, \"robot_y_m\": {:.2}}}",
                r.steps,
                r.replans,
                r.plan_mean_s * 1e3,
                r.plan_last_s * 1e3,
                r.driven_m,
                r.remaining_m,
                r.collisions,
                r.position_enu[0],
                r.position_enu[1]
            );
        }
    }
    Ok(())
}

fn interactive(twin: Arc<swm_twin::Twin>, config: ViewerConfig, args: &Args) -> anyhow::Result<()> {
    let prepared = swm_viewer::prepare(twin.clone(), &config)?;
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.build().disable::<bevy::log::LogPlugin>().set(WindowPlugin {
        primary_window: Some(Window {
            title: format!("swm viewer: {}", twin.meta.name),
            resolution: (args.width, args.height).into(),
            ..default()
        }),
        ..default()
    }));
    swm_viewer::insert_prepared(&mut app, prepared, &config, FrameDt::Real);
    app.add_plugins(ViewerPlugin { config, interactive: true, target: None });
    app.run();
    Ok(())
}
