//! The camera: orbit, pan, zoom, a top-down mode and following the selected agent; and
//! picking agents with the mouse.
//!
//! The camera looks at a focus point on the ground from `distance_m` away, `yaw_rad`
//! around the vertical (0: looking north) and `pitch_rad` above the horizon. Controls:
//! left drag orbits, right or middle drag pans (in the ground plane), the wheel zooms
//! (exponentially), `W A S D` / arrows pan, `Q E` rotate, `T` toggles top-down, `F` follows
//! the selected agent (or, with none selected, the robot: [`crate::robot::follow_robot`]), a
//! left click (without dragging) selects the agent under the cursor (ray against each
//! agent's oriented box, [`crate::agents::pick_agent`]) unless it is placing a robot
//! ([`crate::robot::place_on_click`]), and `Esc` clears the selection.

use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll, MouseScrollUnit};
use bevy::prelude::*;
use bevy::window::PrimaryWindow;

use crate::agents::{AgentMarker, Selection, SimResource, bevy_from_twin};

/// Where the camera looks from.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct OrbitCamera {
    /// The point looked at (bevy world).
    pub focus: Vec3,
    /// Rotation around the vertical; 0 looks north (bevy `-z`).
    pub yaw_rad: f32,
    /// Angle above the horizon, in `(0, π/2]`.
    pub pitch_rad: f32,
    /// Distance from the focus (m).
    pub distance_m: f32,
    /// Looking straight down (pitch fixed at 90°, north up).
    pub top_down: bool,
    /// Following the selected agent.
    pub follow: bool,
}

impl OrbitCamera {
    /// A view of a district `extent_m` wide centred on `focus`.
    pub fn overview(focus: Vec3, extent_m: f32) -> Self {
        OrbitCamera {
            focus,
            yaw_rad: 0.35,
            pitch_rad: 0.75,
            distance_m: (0.75 * extent_m).clamp(60.0, 20_000.0),
            top_down: false,
            follow: false,
        }
    }

    /// The camera transform for this state.
    pub fn transform(&self) -> Transform {
        let pitch = if self.top_down { std::f32::consts::FRAC_PI_2 - 1e-3 } else { self.pitch_rad };
        let yaw = if self.top_down { 0.0 } else { self.yaw_rad };
        // Looking along yaw: 0 looks north (-z); the camera sits behind and above the focus.
        let back = Vec3::new(-yaw.sin() * pitch.cos(), pitch.sin(), yaw.cos() * pitch.cos());
        let eye = self.focus + back * self.distance_m;
        Transform::from_translation(eye).looking_at(self.focus, Vec3::Y)
    }
}

/// Parses `x,y,z,tx,ty,tz` (twin frame: east, north, up; metres) into an eye and a target.
pub fn parse_camera_spec(spec: &str) -> Option<(Vec3, Vec3)> {
    let v: Vec<f64> = spec.split(',').map(|s| s.trim().parse::<f64>()).collect::<Result<_, _>>().ok()?;
    if v.len() != 6 || !v.iter().all(|x| x.is_finite()) {
        return None;
    }
    Some((bevy_from_twin(v[0], v[1], v[2]), bevy_from_twin(v[3], v[4], v[5])))
}

/// Mouse state between frames (a click is a press and release without dragging).
#[derive(Resource, Default)]
pub struct DragState {
    dragged_px: f32,
}

impl DragState {
    /// How far the mouse moved (px) while a button was held since the last left press.
    pub fn dragged_px(&self) -> f32 {
        self.dragged_px
    }
}

/// Orbit, pan, zoom, top-down and follow from the keyboard and mouse.
#[allow(clippy::too_many_arguments)]
pub fn camera_controls(
    keys: Res<ButtonInput<KeyCode>>,
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    time: Res<Time<Real>>,
    sim: Option<Res<SimResource>>,
    selection: Res<Selection>,
    mut drag: ResMut<DragState>,
    mut cameras: Query<(&mut OrbitCamera, &mut Transform)>,
    robots: Option<Res<crate::robot::Robots>>,
) {
    let dt = time.delta_secs().min(0.1);
    for (mut cam, mut transform) in &mut cameras {
        if keys.just_pressed(KeyCode::KeyT) {
            cam.top_down = !cam.top_down;
        }
        if keys.just_pressed(KeyCode::KeyF) {
            // Follow the selected agent, or else the robot (`robot::follow_robot`).
            let robot = robots.as_ref().is_some_and(|r| r.robot.is_some());
            cam.follow = !cam.follow && (selection.0.is_some() || robot);
        }
        let delta = motion.delta;
        if buttons.pressed(MouseButton::Left)
            || buttons.pressed(MouseButton::Right)
            || buttons.pressed(MouseButton::Middle)
        {
            drag.dragged_px += delta.length();
        }
        if buttons.just_pressed(MouseButton::Left) {
            drag.dragged_px = 0.0;
        }
        if buttons.pressed(MouseButton::Left) && !cam.top_down {
            cam.yaw_rad -= delta.x * 0.005;
            cam.pitch_rad = (cam.pitch_rad - delta.y * 0.005).clamp(0.08, std::f32::consts::FRAC_PI_2 - 0.01);
        }
        let yaw = if cam.top_down { 0.0 } else { cam.yaw_rad };
        let forward = Vec3::new(yaw.sin(), 0.0, -yaw.cos());
        let right = Vec3::new(yaw.cos(), 0.0, yaw.sin());
        let pan_scale = cam.distance_m * 0.0015;
        if buttons.pressed(MouseButton::Right) || buttons.pressed(MouseButton::Middle) {
            cam.focus += (-right * delta.x + forward * delta.y) * pan_scale;
            cam.follow = false;
        }
        let mut key_pan = Vec3::ZERO;
        for (k, d) in [
            (KeyCode::KeyW, forward),
            (KeyCode::ArrowUp, forward),
            (KeyCode::KeyS, -forward),
            (KeyCode::ArrowDown, -forward),
            (KeyCode::KeyA, -right),
            (KeyCode::ArrowLeft, -right),
            (KeyCode::KeyD, right),
            (KeyCode::ArrowRight, right),
        ] {
            if keys.pressed(k) {
                key_pan += d;
            }
        }
        if key_pan != Vec3::ZERO {
            let step_m = cam.distance_m * 0.8 * dt;
            cam.focus += key_pan.normalize() * step_m;
            cam.follow = false;
        }
        if keys.pressed(KeyCode::KeyQ) {
            cam.yaw_rad += 1.2 * dt;
        }
        if keys.pressed(KeyCode::KeyE) {
            cam.yaw_rad -= 1.2 * dt;
        }
        let lines = match scroll.unit {
            MouseScrollUnit::Line => scroll.delta.y,
            MouseScrollUnit::Pixel => scroll.delta.y / 40.0,
        };
        if lines != 0.0 {
            cam.distance_m = (cam.distance_m * (-0.12 * lines).exp()).clamp(5.0, 30_000.0);
        }
        if cam.follow
            && let (Some(id), Some(sim)) = (selection.0, sim.as_ref())
            && let Some((_, p, _)) = sim.pose(id)
        {
            cam.focus = bevy_from_twin(p[0], p[1], p[2]);
        }
        let want = cam.transform();
        if *transform != want {
            *transform = want;
        }
    }
}

/// The ray from the orbit camera through the mouse cursor (`None` without a window,
/// cursor or camera).
pub fn cursor_ray(
    windows: &Query<&Window, With<PrimaryWindow>>,
    cameras: &Query<(&Camera, &GlobalTransform), With<OrbitCamera>>,
) -> Option<Ray3d> {
    let window = windows.single().ok()?;
    let cursor = window.cursor_position()?;
    let (camera, cam_transform) = cameras.single().ok()?;
    camera.viewport_to_world(cam_transform, cursor).ok()
}

/// Selects the agent under the cursor on a left click; `Esc` clears.
#[allow(clippy::too_many_arguments)]
pub fn pick_on_click(
    buttons: Res<ButtonInput<MouseButton>>,
    keys: Res<ButtonInput<KeyCode>>,
    drag: Res<DragState>,
    windows: Query<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform), With<OrbitCamera>>,
    agents: Query<(&AgentMarker, &Transform)>,
    ui_hover: Query<&Interaction>,
    mut selection: ResMut<Selection>,
    mut orbit: Query<&mut OrbitCamera>,
    robots: Option<Res<crate::robot::Robots>>,
) {
    if keys.just_pressed(KeyCode::Escape) {
        selection.0 = None;
        for mut o in &mut orbit {
            o.follow = false;
        }
    }
    if !buttons.just_released(MouseButton::Left) || drag.dragged_px > 4.0 {
        return;
    }
    if robots.is_some_and(|r| r.mode != crate::robot::PlaceMode::Off) {
        // The click places a robot (`robot::place_on_click`).
        return;
    }
    if ui_hover.iter().any(|i| *i != Interaction::None) {
        return;
    }
    let Some(ray) = cursor_ray(&windows, &cameras) else { return };
    let picked = crate::agents::pick_agent(ray.origin, *ray.direction, agents.iter().map(|(m, t)| (m.0, t)));
    selection.0 = picked;
    tracing::debug!(?picked, "pick");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_down_looks_straight_down_with_north_up() {
        let cam = OrbitCamera { top_down: true, ..OrbitCamera::overview(Vec3::ZERO, 1000.0) };
        let t = cam.transform();
        let look = t.forward();
        assert!(look.y < -0.999, "{look:?}");
        // Screen up is north (-z).
        let up = t.up();
        assert!(up.z < -0.99, "{up:?}");
    }

    #[test]
    fn orbit_keeps_its_distance() {
        let cam = OrbitCamera::overview(Vec3::new(10.0, 0.0, 5.0), 1000.0);
        let t = cam.transform();
        assert!(((t.translation - cam.focus).length() - cam.distance_m).abs() < 1e-2);
        assert!(t.translation.y > 0.0);
    }

    #[test]
    fn camera_specs_parse_in_the_twin_frame() {
        let (eye, target) = parse_camera_spec("10, 20, 30, 0,0,0").expect("valid");
        assert_eq!(eye, Vec3::new(10.0, 30.0, -20.0));
        assert_eq!(target, Vec3::ZERO);
        assert!(parse_camera_spec("1,2,3").is_none());
        assert!(parse_camera_spec("1,2,3,a,b,c").is_none());
    }
}
