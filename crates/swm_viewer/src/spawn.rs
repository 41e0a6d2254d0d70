//! Spawning the twin's chunks, the signal heads and the sun; recolouring buildings; signal
//! phases each frame.
//!
//! One entity per [`ChunkMesh`] (one mesh, one material per
//! layer). Signal heads are one small box per signalised lane, at the right end of its
//! stop line 4.5 m up, drawn in the colour of the lane's current phase
//! (`SignalController::lane_state` at the simulation's time).

use bevy::asset::RenderAssetUsages;
use bevy::light::CascadeShadowConfigBuilder;
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use swm_sim::SignalState;

use crate::agents::{SimResource, TwinResource, bevy_from_twin};
use crate::scene::{BuildingColouring, ChunkMesh, Layer, SceneMeshes};

/// One merged chunk mesh on screen.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SceneChunk {
    /// Chunk column and row.
    pub chunk: [i32; 2],
    /// What it draws.
    pub layer: Layer,
    /// Index into [`SceneData::meshes`]`.chunks`.
    pub index: usize,
}

/// The scene's meshes as built (kept for recolouring and statistics).
#[derive(Resource, Clone, Default)]
pub struct SceneData {
    /// What [`crate::scene::build_scene`] returned.
    pub meshes: std::sync::Arc<SceneMeshes>,
    /// How buildings are coloured now.
    pub colouring: BuildingColouring,
}

/// A signal head: the lane whose signal it shows.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalHead {
    /// Lane index.
    pub lane: u32,
}

/// Materials of signal heads: red, amber, green, dark (no plan).
#[derive(Resource, Clone)]
pub struct SignalMaterials(pub [Handle<StandardMaterial>; 4]);

/// A bevy mesh from a chunk (positions, normals, optional vertex colours, `u32` indices).
pub fn bevy_mesh(chunk: &ChunkMesh, colours: Option<Vec<[f32; 4]>>) -> Mesh {
    let mut mesh = Mesh::new(PrimitiveTopology::TriangleList, RenderAssetUsages::default());
    mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, chunk.mesh.positions.clone());
    mesh.insert_attribute(Mesh::ATTRIBUTE_NORMAL, chunk.mesh.normals.clone());
    if let Some(c) = colours {
        mesh.insert_attribute(Mesh::ATTRIBUTE_COLOR, c);
    }
    mesh.insert_indices(Indices::U32(chunk.mesh.indices.clone()));
    mesh
}

/// Spawns every chunk of [`SceneData`], the signal heads and the sun.
pub fn spawn_scene(
    mut commands: Commands,
    twin: Res<TwinResource>,
    data: Res<SceneData>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let mut layer_materials = std::collections::BTreeMap::new();
    for layer in Layer::ALL {
        let [r, g, b] = layer.srgb();
        let mat = materials.add(StandardMaterial {
            base_color: Color::srgb_u8(r, g, b),
            perceptual_roughness: layer.roughness(),
            double_sided: !layer.is_building(),
            cull_mode: if layer.is_building() { Some(bevy::render::render_resource::Face::Back) } else { None },
            ..default()
        });
        layer_materials.insert(layer, mat);
    }
    for (index, chunk) in data.meshes.chunks.iter().enumerate() {
        let colours = chunk.layer.is_building().then(|| chunk.vertex_colours(&twin.0, data.colouring));
        let mesh = meshes.add(bevy_mesh(chunk, colours));
        let mut e = commands.spawn((
            SceneChunk { chunk: chunk.chunk, layer: chunk.layer, index },
            Mesh3d(mesh),
            MeshMaterial3d(layer_materials[&chunk.layer].clone()),
            Transform::IDENTITY,
        ));
        if !matches!(chunk.layer, Layer::BuildingWall | Layer::BuildingRoof | Layer::Terrain) {
            // Flat ground layers cast no useful shadow.
            e.insert(bevy::light::NotShadowCaster);
        }
    }

    // Signal heads.
    let signal_materials = SignalMaterials([
        materials.add(StandardMaterial {
            base_color: Color::srgb(0.9, 0.1, 0.1),
            emissive: LinearRgba::rgb(2.0, 0.1, 0.1),
            ..default()
        }),
        materials.add(StandardMaterial {
            base_color: Color::srgb(0.95, 0.7, 0.1),
            emissive: LinearRgba::rgb(2.0, 1.4, 0.1),
            ..default()
        }),
        materials.add(StandardMaterial {
            base_color: Color::srgb(0.1, 0.85, 0.3),
            emissive: LinearRgba::rgb(0.1, 2.0, 0.5),
            ..default()
        }),
        materials.add(StandardMaterial { base_color: Color::srgb(0.15, 0.15, 0.15), ..default() }),
    ]);
    let head = meshes.add(Cuboid::new(0.6, 0.6, 0.6));
    let pole = meshes.add(Cuboid::new(0.15, 4.5, 0.15));
    let pole_material = materials.add(StandardMaterial { base_color: Color::srgb(0.3, 0.3, 0.32), ..default() });
    for (i, lane) in twin.0.lanes.iter().enumerate() {
        let (Some(_), Some(stop)) = (lane.signal, &lane.stop_line) else { continue };
        let p = stop.segment[1];
        let base = bevy_from_twin(p[0], p[1], p[2]);
        commands.spawn((
            SignalHead { lane: i as u32 },
            Mesh3d(head.clone()),
            MeshMaterial3d(signal_materials.0[3].clone()),
            Transform::from_translation(base + Vec3::Y * 4.8),
            bevy::light::NotShadowCaster,
        ));
        commands.spawn((
            Mesh3d(pole.clone()),
            MeshMaterial3d(pole_material.clone()),
            Transform::from_translation(base + Vec3::Y * 2.25),
            bevy::light::NotShadowCaster,
        ));
    }
    commands.insert_resource(signal_materials);
}

/// The sun: a directional light with cascaded shadows sized to the district, and ambient
/// light.
pub fn spawn_sun(mut commands: Commands, data: Res<SceneData>) {
    let extent = scene_extent_m(&data.meshes);
    commands.spawn((
        DirectionalLight { illuminance: 9_000.0, shadow_maps_enabled: true, ..default() },
        Transform::from_rotation(Quat::from_euler(EulerRot::YXZ, 0.6, -0.9, 0.0)),
        CascadeShadowConfigBuilder {
            num_cascades: 3,
            minimum_distance: 1.0,
            first_cascade_far_bound: 150.0,
            maximum_distance: (1.5 * extent).clamp(300.0, 6000.0),
            ..default()
        }
        .build(),
    ));
    commands.insert_resource(GlobalAmbientLight { color: Color::srgb(0.85, 0.9, 1.0), brightness: 450.0, ..default() });
}

/// Largest horizontal side of the scene's bounding box (m).
pub fn scene_extent_m(meshes: &SceneMeshes) -> f32 {
    let (lo, hi) = scene_bounds(meshes);
    (hi - lo).x.max((hi - lo).z).max(100.0)
}

/// Bounding box of the buildings and roads (land cover, rail and terrain may reach far
/// beyond a district: a river, a railway cut by the extract's edge), bevy axes; of
/// everything but the terrain when there are neither.
pub fn scene_bounds(meshes: &SceneMeshes) -> (Vec3, Vec3) {
    let core = |l: Layer| matches!(l, Layer::BuildingWall | Layer::Road);
    let any_core = meshes.chunks.iter().any(|c| core(c.layer));
    let (mut lo, mut hi) = (Vec3::splat(f32::INFINITY), Vec3::splat(f32::NEG_INFINITY));
    for c in meshes.chunks.iter().filter(|c| if any_core { core(c.layer) } else { c.layer != Layer::Terrain }) {
        for p in &c.mesh.positions {
            let v = Vec3::from_array(*p);
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if lo.x > hi.x {
        return (Vec3::splat(-100.0), Vec3::splat(100.0));
    }
    (lo, hi)
}

/// Colours each signal head by its lane's phase now.
pub fn update_signals(
    sim: Option<Res<SimResource>>,
    materials: Option<Res<SignalMaterials>>,
    mut heads: Query<(&SignalHead, &mut MeshMaterial3d<StandardMaterial>)>,
) {
    let (Some(sim), Some(materials)) = (sim, materials) else { return };
    let t = sim.time_s();
    for (head, mut material) in &mut heads {
        let idx = match sim.signals().lane_state(head.lane, t) {
            Some(SignalState::Red) => 0,
            Some(SignalState::Amber) => 1,
            Some(SignalState::Green) => 2,
            None => 3,
        };
        if material.0 != materials.0[idx] {
            material.0 = materials.0[idx].clone();
        }
    }
}

/// Rewrites the vertex colours of building chunks when the colouring changes.
pub fn recolour_buildings(
    twin: Res<TwinResource>,
    data: Res<SceneData>,
    mut last: Local<Option<BuildingColouring>>,
    chunks: Query<(&SceneChunk, &Mesh3d)>,
    mut meshes: ResMut<Assets<Mesh>>,
) {
    if *last == Some(data.colouring) {
        return;
    }
    let first = last.is_none();
    *last = Some(data.colouring);
    if first {
        // Spawned with these colours already.
        return;
    }
    for (chunk, handle) in &chunks {
        if !chunk.layer.is_building() {
            continue;
        }
        let Some(source) = data.meshes.chunks.get(chunk.index) else { continue };
        if let Some(mut mesh) = meshes.get_mut(&handle.0) {
            mesh.insert_attribute(Mesh::ATTRIBUTE_COLOR, source.vertex_colours(&twin.0, data.colouring));
        }
    }
    tracing::info!(colouring = data.colouring.label(), "buildings recoloured");
}
