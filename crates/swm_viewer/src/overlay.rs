//! Overlays: the lane graph and the walk graph (gizmo lines), BEV classes and the distance
//! field to buildings (a textured quad over the district), and a hook for other crates'
//! drawings ([`ExternalOverlay`]).
//!
//! The BEV raster is `swm_twin`'s (`TwinIndex::bev_raster`, heading 0: north-up, east to
//! the right), computed once on first use at the coarsest resolution that keeps its longer
//! side within [`OVERLAY_MAX_PX`] pixels. Classes use fixed colours; the signed distance
//! runs from red (inside buildings) through white (on a wall) to blue (20 m and more away).
//!
//! **Hook for other crates.** [`ExternalOverlay`] is a plain resource of polylines and point
//! sets in the twin frame; whoever wants something drawn (another planner's paths, another
//! sensor's rays and hits) writes it each frame (or when it changes) and the viewer draws it
//! with gizmos. The viewer's own delivery robot draws through
//! [`RobotOverlay`](crate::robot::RobotOverlay), with the same types.

use bevy::asset::RenderAssetUsages;
use bevy::image::Image;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use swm_twin::query::BevClass;
use swm_twin::{Terrain, Twin, TwinIndex};

use crate::agents::{TwinResource, bevy_from_twin};

/// Longest side of the BEV overlay textures (px).
pub const OVERLAY_MAX_PX: u32 = 1024;

/// Which overlays are on.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overlays {
    /// Lane centre lines and paths through junctions.
    pub lane_graph: bool,
    /// Walk edges.
    pub walk_graph: bool,
    /// BEV semantic classes.
    pub bev_classes: bool,
    /// Signed distance to buildings.
    pub distance_field: bool,
}

/// A polyline to draw (twin frame, metres; sRGB colour with alpha).
#[derive(Clone, Debug, PartialEq)]
pub struct OverlayPolyline {
    /// Points, twin frame.
    pub points_m: Vec<[f64; 3]>,
    /// sRGBA, each in `[0, 1]`.
    pub srgba: [f32; 4],
}

/// Points to draw as small circles (twin frame).
#[derive(Clone, Debug, PartialEq)]
pub struct OverlayPoints {
    /// Points, twin frame.
    pub points_m: Vec<[f64; 3]>,
    /// Circle radius (m).
    pub radius_m: f32,
    /// sRGBA, each in `[0, 1]`.
    pub srgba: [f32; 4],
}

/// Drawings handed in from outside (robot plans, lidar rays): drawn every frame until
/// replaced.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct ExternalOverlay {
    /// Polylines (plans, rays as two-point lines).
    pub polylines: Vec<OverlayPolyline>,
    /// Point sets (lidar hits, goals).
    pub points: Vec<OverlayPoints>,
}

/// The BEV textures, once computed.
#[derive(Resource, Default)]
pub struct BevOverlay {
    classes: Option<Entity>,
    distance: Option<Entity>,
}

/// Colour of a BEV class (sRGBA bytes).
pub fn bev_class_rgba(class: u8) -> [u8; 4] {
    match BevClass::from_u8(class) {
        Some(BevClass::Ground) => [0, 0, 0, 0],
        Some(BevClass::Road) => [60, 60, 200, 170],
        Some(BevClass::Sidewalk) => [230, 200, 60, 170],
        Some(BevClass::Crossing) => [255, 255, 255, 200],
        Some(BevClass::Building) => [200, 60, 60, 170],
        Some(BevClass::Water) => [40, 160, 230, 170],
        Some(BevClass::Green) => [40, 190, 70, 170],
        Some(BevClass::Rail) => [120, 80, 60, 170],
        Some(BevClass::Parking) => [160, 120, 200, 170],
        None => [255, 0, 255, 255],
    }
}

/// Colour of a signed distance (m): red inside, white on the wall, blue far away.
pub fn distance_rgba(d_m: f32, max_m: f32) -> [u8; 4] {
    let t = (d_m / max_m.max(1e-3)).clamp(-1.0, 1.0);
    if t < 0.0 {
        let k = (-t).sqrt();
        [255, (255.0 * (1.0 - k)) as u8, (255.0 * (1.0 - k)) as u8, 190]
    } else {
        let k = t.sqrt();
        [(255.0 * (1.0 - k)) as u8, (255.0 * (1.0 - 0.6 * k)) as u8, 255, 150]
    }
}

/// Lane and walk graphs, and the external overlay, as gizmos.
pub fn draw_overlays(
    overlays: Res<Overlays>,
    external: Res<ExternalOverlay>,
    twin: Res<TwinResource>,
    mut gizmos: Gizmos,
) {
    let lift = |p: &[f64; 3]| bevy_from_twin(p[0], p[1], p[2] + 0.5);
    if overlays.lane_graph {
        for l in &twin.0.lanes {
            gizmos.linestrip(l.centerline.iter().map(lift), Color::srgb(0.2, 0.9, 1.0));
            if let (Some(a), Some(b)) =
                (l.centerline.len().checked_sub(2).map(|i| l.centerline[i]), l.centerline.last())
            {
                // An arrow head at the lane's end.
                let (pa, pb) = (lift(&a), lift(b));
                let d = (pb - pa).normalize_or_zero();
                let side = Vec3::new(-d.z, 0.0, d.x);
                gizmos.line(pb, pb - d * 1.5 + side * 0.7, Color::srgb(0.2, 0.9, 1.0));
                gizmos.line(pb, pb - d * 1.5 - side * 0.7, Color::srgb(0.2, 0.9, 1.0));
            }
        }
        for c in &twin.0.lane_connections {
            gizmos.linestrip(c.path.iter().map(lift), Color::srgb(1.0, 0.6, 0.1));
        }
    }
    if overlays.walk_graph {
        for e in &twin.0.walk_edges {
            gizmos.linestrip(e.polyline.iter().map(lift), Color::srgb(0.9, 0.3, 0.9));
        }
    }
    for p in &external.polylines {
        let [r, g, b, a] = p.srgba;
        gizmos.linestrip(p.points_m.iter().map(lift), Color::srgba(r, g, b, a));
    }
    for set in &external.points {
        let [r, g, b, a] = set.srgba;
        for p in &set.points_m {
            let iso = Isometry3d::new(lift(p), Quat::from_rotation_x(-std::f32::consts::FRAC_PI_2));
            gizmos.circle(iso, set.radius_m, Color::srgba(r, g, b, a));
        }
    }
}

/// An RGBA8 sRGB image from bytes.
pub fn rgba_image(width: u32, height: u32, data: Vec<u8>) -> Image {
    Image::new(
        Extent3d { width, height, depth_or_array_layers: 1 },
        TextureDimension::D2,
        data,
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::default(),
    )
}

/// A horizontal quad `size_m` (east, north) centred on twin point `centre_m` at height
/// `z_m`, with UV (0, 0) at the north-west corner (image row 0 at the top, north-up).
pub fn ground_quad(size_m: [f32; 2]) -> Mesh {
    Plane3d::new(Vec3::Y, Vec2::new(0.5 * size_m[0], 0.5 * size_m[1])).mesh().build()
}

/// The highest terrain elevation of the twin (m); overlays float above it.
fn top_of_terrain(twin: &Twin) -> f64 {
    match &twin.terrain {
        Terrain::Flat { elevation_m } => {
            if elevation_m.is_finite() {
                *elevation_m
            } else {
                0.0
            }
        }
        Terrain::Grid { elevation_m, .. } => {
            elevation_m.iter().copied().filter(|v| v.is_finite()).fold(f32::NEG_INFINITY, f32::max).max(0.0) as f64
        }
    }
}

/// Creates the BEV textures on first use and shows or hides them.
#[allow(clippy::too_many_arguments)]
pub fn update_bev_overlay(
    mut commands: Commands,
    overlays: Res<Overlays>,
    twin: Res<TwinResource>,
    mut state: ResMut<BevOverlay>,
    mut images: ResMut<Assets<Image>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut visibility: Query<&mut Visibility>,
) {
    if !overlays.is_changed() {
        return;
    }
    let wanted = overlays.bev_classes || overlays.distance_field;
    if wanted && state.classes.is_none() {
        let Some(b) = twin_bbox(&twin.0) else { return };
        let (w_m, h_m) = (b[2] - b[0], b[3] - b[1]);
        let res = (w_m.max(h_m) / OVERLAY_MAX_PX as f64).max(0.5);
        let (w_px, h_px) = ((w_m / res).ceil().max(1.0) as u32, (h_m / res).ceil().max(1.0) as u32);
        let centre = [0.5 * (b[0] + b[2]), 0.5 * (b[1] + b[3])];
        let t0 = std::time::Instant::now();
        let index = TwinIndex::new(&twin.0);
        let raster = match index.bev_raster(centre, 0.0, w_px, h_px, res) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "BEV overlay");
                return;
            }
        };
        tracing::info!(w_px, h_px, res, ms = t0.elapsed().as_millis() as u64, "BEV overlay computed");
        let classes: Vec<u8> = raster.classes.iter().flat_map(|c| bev_class_rgba(*c)).collect();
        let dist: Vec<u8> =
            raster.signed_distance_m.iter().flat_map(|d| distance_rgba(*d, raster.max_distance_m)).collect();
        let size = [(w_px as f64 * res) as f32, (h_px as f64 * res) as f32];
        let z = top_of_terrain(&twin.0) + 0.6;
        let quad = meshes.add(ground_quad(size));
        let mut spawn = |data: Vec<u8>, lift: f64| {
            let image = images.add(rgba_image(w_px, h_px, data));
            let material = materials.add(StandardMaterial {
                base_color_texture: Some(image),
                alpha_mode: AlphaMode::Blend,
                unlit: true,
                double_sided: true,
                cull_mode: None,
                ..default()
            });
            commands
                .spawn((
                    Mesh3d(quad.clone()),
                    MeshMaterial3d(material),
                    Transform::from_translation(bevy_from_twin(centre[0], centre[1], z + lift)),
                    Visibility::Hidden,
                    bevy::light::NotShadowCaster,
                ))
                .id()
        };
        state.classes = Some(spawn(classes, 0.0));
        state.distance = Some(spawn(dist, 0.05));
    }
    for (entity, on) in [(state.classes, overlays.bev_classes), (state.distance, overlays.distance_field)] {
        if let Some(e) = entity
            && let Ok(mut v) = visibility.get_mut(e)
        {
            *v = if on { Visibility::Visible } else { Visibility::Hidden };
        }
    }
}

/// The twin's drawable extent `[min_x, min_y, max_x, max_y]` (m) from its lanes,
/// buildings and walk edges (falling back to `meta.bbox_m`).
pub fn twin_bbox(twin: &Twin) -> Option<[f64; 4]> {
    let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    let mut add = |p: [f64; 2]| {
        if p[0].is_finite() && p[1].is_finite() {
            b = [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])];
        }
    };
    for l in &twin.lanes {
        l.centerline.iter().for_each(|p| add([p[0], p[1]]));
    }
    for x in twin.buildings.iter() {
        x.footprint.exterior.iter().for_each(|p| add(*p));
    }
    for e in &twin.walk_edges {
        e.polyline.iter().for_each(|p| add([p[0], p[1]]));
    }
    if b[0] > b[2] {
        let m = twin.meta.bbox_m;
        if m.iter().all(|v| v.is_finite()) && m[2] > m[0] && m[3] > m[1] {
            return Some(m);
        }
        return None;
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_colours_run_red_white_blue() {
        assert_eq!(distance_rgba(-20.0, 20.0)[..3], [255, 0, 0]);
        assert_eq!(distance_rgba(0.0, 20.0)[..3], [255, 255, 255]);
        let far = distance_rgba(20.0, 20.0);
        assert_eq!(far[2], 255);
        assert!(far[0] < 10);
        assert_eq!(bev_class_rgba(0)[3], 0, "ground is transparent");
    }
}
