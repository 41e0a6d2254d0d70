//! The panel (bevy's own UI): buttons for the simulation and the overlays, a status text
//! with the frame time, and the inspector of the selected agent. Every button has a key.
//!
//! | key | action |
//! | --- | --- |
//! | `Space` | play / pause |
//! | `N` | one step (while paused) |
//! | `+` / `-` | speed ×2 / ÷2 |
//! | `]` / `[` | seed + 1 / − 1 (restarts) |
//! | `.` / `,` | density + 0.25 / − 0.25 (restarts) |
//! | `C` | building colours: use → height → measured/estimated height |
//! | `1`–`4` | overlays: lane graph, walk graph, BEV classes, distance field |
//! | `I` | imagination (the model's sampled futures) of the selected agent |
//! | `R` | place a delivery robot: click its start, then its goal; `Esc` cancels (see [`crate::robot`]) |
//! | `L` | the robot's lidar rays |
//! | `T` / `F` / `Esc` | top-down, follow, clear selection (see [`crate::camera`]) |

use bevy::prelude::*;

use crate::agents::{Selection, SimParams, SimResource, TwinResource};
use crate::imagination::Imagination;
use crate::overlay::Overlays;
use crate::robot::{PlaceMode, Robots};
use crate::spawn::SceneData;

/// Something the panel or a key asks for.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PanelAction {
    /// Play / pause.
    PlayPause,
    /// One step.
    Step,
    /// Speed ×2.
    Faster,
    /// Speed ÷2.
    Slower,
    /// Seed + 1.
    SeedUp,
    /// Seed − 1.
    SeedDown,
    /// Density + 0.25.
    DensityUp,
    /// Density − 0.25.
    DensityDown,
    /// Next building colouring.
    Colouring,
    /// Overlay toggles.
    LaneGraph,
    /// Walk graph overlay.
    WalkGraph,
    /// BEV classes overlay.
    BevClasses,
    /// Distance field overlay.
    DistanceField,
    /// Imagination of the selected agent.
    Imagination,
    /// Imagined samples ÷2.
    SamplesDown,
    /// Imagined samples ×2.
    SamplesUp,
    /// Place a delivery robot (the next two ground clicks: start, goal).
    PlaceRobot,
    /// The robot's lidar overlay.
    Lidar,
    Traffic,
}

impl PanelAction {
    const ALL: [(PanelAction, &'static str); 19] = [
        (PanelAction::PlayPause, "Play/Pause [Space]"),
        (PanelAction::Step, "Step [N]"),
        (PanelAction::Slower, "Slower [-]"),
        (PanelAction::Faster, "Faster [+]"),
        (PanelAction::SeedDown, "Seed- [[]"),
        (PanelAction::SeedUp, "Seed+ []]"),
        (PanelAction::DensityDown, "Density- [,]"),
        (PanelAction::DensityUp, "Density+ [.]"),
        (PanelAction::Colouring, "Colours [C]"),
        (PanelAction::LaneGraph, "Lanes [1]"),
        (PanelAction::WalkGraph, "Walk [2]"),
        (PanelAction::BevClasses, "BEV [3]"),
        (PanelAction::DistanceField, "Distance [4]"),
        (PanelAction::Imagination, "Imagine [I]"),
        (PanelAction::SamplesDown, "Samples- [9]"),
        (PanelAction::SamplesUp, "Samples+ [0]"),
        (PanelAction::PlaceRobot, "Robot [R]"),
        (PanelAction::Lidar, "Lidar [L]"),
        (PanelAction::Traffic, "Model traffic [M]"),
    ];

    fn key(self) -> KeyCode {
        match self {
            PanelAction::PlayPause => KeyCode::Space,
            PanelAction::Step => KeyCode::KeyN,
            PanelAction::Faster => KeyCode::Equal,
            PanelAction::Slower => KeyCode::Minus,
            PanelAction::SeedUp => KeyCode::BracketRight,
            PanelAction::SeedDown => KeyCode::BracketLeft,
            PanelAction::DensityUp => KeyCode::Period,
            PanelAction::DensityDown => KeyCode::Comma,
            PanelAction::Colouring => KeyCode::KeyC,
            PanelAction::LaneGraph => KeyCode::Digit1,
            PanelAction::WalkGraph => KeyCode::Digit2,
            PanelAction::BevClasses => KeyCode::Digit3,
            PanelAction::DistanceField => KeyCode::Digit4,
            PanelAction::Imagination => KeyCode::KeyI,
            PanelAction::SamplesDown => KeyCode::Digit9,
            PanelAction::SamplesUp => KeyCode::Digit0,
            PanelAction::PlaceRobot => KeyCode::KeyR,
            PanelAction::Lidar => KeyCode::KeyL,
            PanelAction::Traffic => KeyCode::KeyM,
        }
    }
}

/// The status text.
#[derive(Component)]
pub struct StatusText;

/// Smoothed frame time (s) for the readout.
#[derive(Resource, Default)]
pub struct FrameTime {
    /// Exponential moving average of the frame time (s).
    pub mean_s: f64,
}

/// Spawns the panel: a column of buttons and the status text, top left.
pub fn spawn_panel(mut commands: Commands) {
    commands
        .spawn((
            Node {
                position_type: PositionType::Absolute,
                left: Val::Px(8.0),
                top: Val::Px(8.0),
                flex_direction: FlexDirection::Column,
                row_gap: Val::Px(4.0),
                padding: UiRect::all(Val::Px(6.0)),
                max_width: Val::Px(330.0),
                ..default()
            },
            BackgroundColor(Color::srgba(0.05, 0.06, 0.08, 0.72)),
        ))
        .with_children(|panel| {
            panel
                .spawn(Node {
                    flex_direction: FlexDirection::Row,
                    flex_wrap: FlexWrap::Wrap,
                    column_gap: Val::Px(4.0),
                    row_gap: Val::Px(4.0),
                    ..default()
                })
                .with_children(|row| {
                    for (action, label) in PanelAction::ALL {
                        row.spawn((
                            Button,
                            action,
                            Node { padding: UiRect::axes(Val::Px(5.0), Val::Px(2.0)), ..default() },
                            BackgroundColor(Color::srgb(0.2, 0.22, 0.27)),
                        ))
                        .with_child((
                            Text::new(label),
                            TextFont { font_size: FontSize::Px(11.0), ..default() },
                            TextColor(Color::WHITE),
                        ));
                    }
                });
            panel.spawn((
                StatusText,
                Text::new(""),
                TextFont { font_size: FontSize::Px(12.0), ..default() },
                TextColor(Color::srgb(0.92, 0.94, 0.96)),
            ));
        });
}

/// Applies one action.
#[allow(clippy::too_many_arguments)]
fn apply(
    action: PanelAction,
    twin: &TwinResource,
    sim: &mut SimResource,
    restart: &mut Option<SimParams>,
    scene: &mut SceneData,
    overlays: &mut Overlays,
    imagination: &mut Imagination,
    robots: &mut Robots,
) {
    let c = &mut sim.clock;
    match action {
        PanelAction::PlayPause => c.paused = !c.paused,
        PanelAction::Step => {
            c.paused = true;
            c.pending_steps += 1;
        }
        PanelAction::Faster => c.speed = (c.speed * 2.0).min(64.0),
        PanelAction::Slower => c.speed = (c.speed * 0.5).max(1.0 / 16.0),
        PanelAction::SeedUp | PanelAction::SeedDown | PanelAction::DensityUp | PanelAction::DensityDown => {
            let mut p = sim.params.clone();
            match action {
                PanelAction::SeedUp => p.seed = p.seed.wrapping_add(1),
                PanelAction::SeedDown => p.seed = p.seed.wrapping_sub(1),
                PanelAction::DensityUp => p.density = (p.density + 0.25).min(4.0),
                _ => p.density = (p.density - 0.25).max(0.0),
            }
            *restart = Some(p);
        }
        PanelAction::Colouring => scene.colouring = scene.colouring.next(),
        PanelAction::LaneGraph => overlays.lane_graph = !overlays.lane_graph,
        PanelAction::WalkGraph => overlays.walk_graph = !overlays.walk_graph,
        PanelAction::BevClasses => overlays.bev_classes = !overlays.bev_classes,
        PanelAction::DistanceField => overlays.distance_field = !overlays.distance_field,
        PanelAction::Imagination => imagination.enabled = !imagination.enabled,
        PanelAction::SamplesDown => imagination.change_samples(false),
        PanelAction::SamplesUp => imagination.change_samples(true),
        PanelAction::PlaceRobot => {
            // Pressed again while placing: cancel.
            robots.mode = if robots.mode == PlaceMode::Off { PlaceMode::Start } else { PlaceMode::Off };
        }
        PanelAction::Lidar => robots.lidar = !robots.lidar,
        PanelAction::Traffic => match sim.traffic {
            crate::agents::Traffic::Teacher => match toggle_model_traffic(sim, &twin.0, imagination) {
                Ok(()) => tracing::info!("the world model drives the traffic"),
                Err(e) => tracing::error!(error = %e, "could not hand the traffic to the model"),
            },
            crate::agents::Traffic::Model(_) | crate::agents::Traffic::ModelGpu(_) => sim.drive_with_teacher(),
        },
    }
}

/// Hands the traffic to the world model, loading it (and its map) unless imagination has.
pub fn toggle_model_traffic(
    sim: &mut SimResource,
    twin: &std::sync::Arc<swm_twin::Twin>,
    imagination: &Imagination,
) -> Result<(), String> {
    let model = match imagination.model() {
        Some(m) => m,
        None => std::sync::Arc::new(crate::imagination::load_model(twin, sim.params.seed)?),
    };
    sim.drive_with_model(model, twin)
}

/// Keys and buttons → actions; restarts the simulation when seed or density changed.
#[allow(clippy::too_many_arguments)]
pub fn panel_input(
    keys: Res<ButtonInput<KeyCode>>,
    mut buttons: Query<(&Interaction, &PanelAction, &mut BackgroundColor), Changed<Interaction>>,
    twin: Res<TwinResource>,
    mut sim: ResMut<SimResource>,
    mut scene: ResMut<SceneData>,
    mut overlays: ResMut<Overlays>,
    mut imagination: ResMut<Imagination>,
    mut robots: ResMut<Robots>,
) {
    let mut actions: Vec<PanelAction> =
        PanelAction::ALL.iter().map(|(a, _)| *a).filter(|a| keys.just_pressed(a.key())).collect();
    if keys.just_pressed(KeyCode::NumpadAdd) {
        actions.push(PanelAction::Faster);
    }
    if keys.just_pressed(KeyCode::NumpadSubtract) {
        actions.push(PanelAction::Slower);
    }
    for (interaction, action, mut bg) in &mut buttons {
        match interaction {
            Interaction::Pressed => {
                actions.push(*action);
                bg.0 = Color::srgb(0.35, 0.4, 0.5);
            }
            Interaction::Hovered => bg.0 = Color::srgb(0.28, 0.3, 0.36),
            Interaction::None => bg.0 = Color::srgb(0.2, 0.22, 0.27),
        }
    }
    let mut restart = None;
    for a in actions {
        apply(a, &twin, &mut sim, &mut restart, &mut scene, &mut overlays, &mut imagination, &mut robots);
    }
    if let Some(params) = restart {
        let clock = sim.clock;
        match SimResource::start(twin.0.clone(), params.clone()) {
            Ok(mut fresh) => {
                fresh.clock = SimClock { accumulator_s: 0.0, pending_steps: 0, ..clock };
                fresh.model_backend = sim.model_backend;
                fresh.gpu_engine = sim.gpu_engine.take();
                *sim = fresh;
                tracing::info!(seed = params.seed, density = params.density, "simulation restarted");
            }
            Err(e) => tracing::error!(error = %e, "could not restart the simulation"),
        }
    }
}

use crate::agents::SimClock;

/// Writes the status text: time, agents, speed, seed, density, frame time, colouring,
/// overlays and the inspector of the selected agent.
#[allow(clippy::too_many_arguments)]
pub fn update_status(
    time: Res<Time<Real>>,
    mut frame: ResMut<FrameTime>,
    sim: Res<SimResource>,
    scene: Res<SceneData>,
    overlays: Res<Overlays>,
    selection: Res<Selection>,
    imagination: Res<Imagination>,
    robots: Res<Robots>,
    twin: Res<TwinResource>,
    mut texts: Query<&mut Text, With<StatusText>>,
) {
    let dt = time.delta_secs_f64();
    frame.mean_s = if frame.mean_s == 0.0 { dt } else { 0.95 * frame.mean_s + 0.05 * dt };
    let counts = sim.counts();
    let mut s = format!(
        "{}  t = {:.1} s  {}\ntraffic: {}\nvehicles {}  pedestrians {}  speed x{}\nseed {}  density {:.2}  imagined samples {}\nframe {:.1} ms ({:.0} fps)  step {:.2} ms\nbuildings by {}  triangles {}\noverlays:{}{}{}{}",
        twin.0.meta.name,
        sim.time_s(),
        if sim.clock.paused { "[paused]" } else { "" },
        sim.traffic_label(),
        counts.0,
        counts.1,
        sim.clock.speed,
        sim.params.seed,
        sim.params.density,
        imagination.samples,
        frame.mean_s * 1e3,
        if frame.mean_s > 0.0 { 1.0 / frame.mean_s } else { 0.0 },
        sim.step_wall_s * 1e3,
        scene.colouring.label(),
        scene.meshes.triangle_count(),
        if overlays.lane_graph { " lanes" } else { "" },
        if overlays.walk_graph { " walk" } else { "" },
        if overlays.bev_classes { " bev" } else { "" },
        if overlays.distance_field { " distance" } else { "" },
    );
    match selection.0.and_then(|id| sim.curr.get(&id).map(|a| (id, a))) {
        Some((id, a)) => {
            let lane = a.lane.map_or("junction / walkway".to_string(), |l| {
                let name = twin.0.lanes.get(l as usize).and_then(|x| x.name.clone()).unwrap_or_default();
                format!("{l} {name}")
            });
            s.push_str(&format!(
                "\n\nagent {id}: {}\n{:.1} m x {:.1} m  speed {:.1} m/s ({:.0} km/h)\nlane {lane}\n{}",
                a.kind.as_str(),
                a.length_m,
                a.width_m,
                a.speed_mps,
                a.speed_mps * 3.6,
                imagination.summary(id),
            ));
        }
        None => s.push_str("\n\nclick an agent to inspect it"),
    }
    s.push_str("\n\n");
    s.push_str(&crate::robot::status_lines(&robots));
    for mut t in &mut texts {
        if t.0 != s {
            t.0 = s.clone();
        }
    }
}
