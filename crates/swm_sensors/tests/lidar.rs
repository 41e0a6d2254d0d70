//! Lidar against analytic scenes, brute force, the twin's own ray cast and real Yeouido.

use proptest::prelude::*;
use swm_core::SourceRef;
use swm_sensors::mesh::Surface;
use swm_sensors::{AgentBox, Hit, LidarConfig, LidarScene, SensorPose, StaticMesh};
use swm_twin::{Building, P2, Polygon, Roof, RoofShape, Terrain, Twin, TwinIndex};

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<P2> {
    vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
}

fn building(footprint: Vec<P2>, base_m: f64, height_m: f64) -> Building {
    Building::flat(SourceRef::way(1), Polygon { exterior: footprint, holes: vec![] }, base_m, height_m)
}

/// Flat ground at 0 m and one 10 m × 10 m box, 15 m tall, 20 m east of the origin.
fn box_twin() -> Twin {
    let mut twin = Twin::default();
    twin.meta.bbox_m = [-100.0, -100.0, 100.0, 100.0];
    twin.terrain = Terrain::Flat { elevation_m: 0.0 };
    twin.buildings.push(building(rect(20.0, -5.0, 30.0, 5.0), 0.0, 15.0));
    twin
}

fn planar(range_max_m: f64) -> LidarConfig {
    LidarConfig { range_noise_std_m: 0.0, dropout_prob: 0.0, range_max_m, ..LidarConfig::planar_2d() }
}

#[test]
fn a_box_building_at_a_known_distance() {
    let scene = LidarScene::from_twin(&box_twin());
    let hit = scene.cast_ray([0.0, 0.0, 2.0], [1.0, 0.0, 0.0], 100.0).expect("hits the wall");
    assert!((hit.t_m - 20.0).abs() < 1e-4, "{hit:?}");
    assert_eq!(hit.hit, Hit::Building(0));
    assert!((hit.normal_enu[0] + 1.0).abs() < 1e-9, "the wall faces the sensor: {:?}", hit.normal_enu);
    // The same answer as the twin's own prism ray cast, from several directions.
    let twin = box_twin();
    let index = TwinIndex::new(&twin);
    for k in 0..64 {
        let a = -0.4 + 0.8 * k as f64 / 63.0;
        let d = [a.cos(), a.sin(), -0.05];
        let mine = scene.cast_ray([0.0, 0.0, 2.0], d, 200.0).map(|h| h.t_m);
        let theirs = index.raycast([0.0, 0.0, 2.0], d, 200.0).map(|h| h.t_m);
        match (mine, theirs) {
            (Some(m), Some(t)) => assert!((m - t).abs() < 1e-3, "direction {d:?}: {m} vs {t}"),
            other => panic!("direction {d:?}: {other:?}"),
        }
    }
    // A planar scan at 2 m sees the box in the +x sector only, at 20 m straight ahead.
    let scan = scene.scan(&planar(30.0), &SensorPose::level([0.0, 0.0, 2.0], 0.0), &[], 1, 0).unwrap();
    assert!(scan.return_count() > 0);
    for (k, p) in scan.return_beam.iter().zip(&scan.points_sensor) {
        assert_eq!(scan.hit[*k as usize], Hit::Building(0));
        assert!((p[0] - 20.0).abs() < 1e-3 && p[1].abs() <= 5.0 + 1e-6, "{p:?}");
    }
}

#[test]
fn max_range_means_no_return() {
    let scene = LidarScene::from_twin(&box_twin());
    let pose = SensorPose::level([0.0, 0.0, 2.0], 0.0);
    let near = scene.scan(&planar(15.0), &pose, &[], 1, 0).unwrap();
    assert_eq!(near.return_count(), 0, "the box is 20 m away and the ground is never hit by level beams");
    assert!(near.ranges_m.iter().all(|r| r.is_infinite()) && near.hit.iter().all(|h| *h == Hit::None));
    assert!(scene.cast_ray([0.0, 0.0, 2.0], [1.0, 0.0, 0.0], 19.9).is_none());
    let far = scene.scan(&planar(30.0), &pose, &[], 1, 0).unwrap();
    assert!(far.return_count() >= 50, "{} returns", far.return_count());
    // Within the minimum range: nothing either.
    let blind = LidarConfig { range_min_m: 25.0, ..planar(30.0) };
    assert_eq!(scene.scan(&blind, &pose, &[], 1, 0).unwrap().return_count(), 0);
}

#[test]
fn a_ray_straight_down_hits_the_dem() {
    // A 6 × 5 grid at 10 m: a tilted plane plus a bump at one sample.
    let (nx, ny, cell) = (6u32, 5u32, 10.0);
    let mut z = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            z.push((30.0 + 0.5 * i as f64 - 0.25 * j as f64) as f32);
        }
    }
    z[(2 * nx + 3) as usize] += 4.0;
    let mut twin = Twin::default();
    twin.meta.bbox_m = [0.0, 0.0, 50.0, 40.0];
    twin.terrain =
        Terrain::Grid { origin_m: [0.0, 0.0], cell_m: cell, nx, ny, elevation_m: z.clone(), source: "test".into() };
    let scene = LidarScene::from_twin(&twin);
    for j in 0..ny {
        for i in 0..nx {
            let (x, y) = (i as f64 * cell, j as f64 * cell);
            // Nudged inside the grid (the last row and column are its edge).
            let (ex, ey) = (if i + 1 < nx { 1e-3 } else { -1e-3 }, if j + 1 < ny { 1e-3 } else { -1e-3 });
            let h = scene.cast_ray([x + ex, y + ey, 100.0], [0.0, 0.0, -1.0], 500.0).expect("terrain below");
            assert_eq!(h.hit, Hit::Terrain);
            assert!((h.point_enu[2] - twin.terrain.elevation_at([x, y])).abs() < 2e-3, "sample ({i}, {j}): {h:?}");
        }
    }
    // Away from the bump the grid is a plane, where triangles and bilinear agree everywhere.
    for (x, y) in [(3.3, 4.4), (41.0, 7.5), (12.5, 36.0)] {
        let h = scene.cast_ray([x, y, 100.0], [0.0, 0.0, -1.0], 500.0).unwrap();
        assert!((h.point_enu[2] - twin.terrain.elevation_at([x, y])).abs() < 1e-3, "({x}, {y}): {h:?}");
    }
}

#[test]
fn pyramidal_roofs_and_raised_volumes() {
    let mut twin = box_twin();
    let b = &mut twin.buildings[0];
    b.roof = Roof { shape: RoofShape::Pyramidal, height_m: 5.0, direction_rad: None, colour: None };
    let mut bridge = building(rect(-30.0, -5.0, -20.0, 5.0), 0.0, 12.0);
    bridge.min_height_m = 8.0;
    twin.buildings.push(bridge);
    let scene = LidarScene::from_twin(&twin);
    let apex = scene.cast_ray([25.0, 0.0, 100.0], [0.0, 0.0, -1.0], 500.0).unwrap();
    assert!((apex.point_enu[2] - 15.0).abs() < 1e-3, "apex at the top: {apex:?}");
    let slope = scene.cast_ray([29.0, 0.0, 100.0], [0.0, 0.0, -1.0], 500.0).unwrap();
    assert!((slope.point_enu[2] - 11.0).abs() < 1e-3, "a fifth of the way from the eave: {slope:?}");
    // Under the raised volume a level ray passes; a ray going up hits its underside at 8 m.
    assert!(scene.cast_ray([-25.0, 20.0, 4.0], [0.0, -1.0, 0.0], 40.0).is_none());
    let under = scene.cast_ray([-25.0, 0.0, 4.0], [0.0, 0.0, 1.0], 40.0).unwrap();
    assert!((under.t_m - 4.0).abs() < 1e-3 && under.hit == Hit::Building(1), "{under:?}");
}

#[test]
fn an_agent_box_occludes_the_building() {
    let scene = LidarScene::from_twin(&box_twin());
    let car = AgentBox {
        id: 42,
        base_center_enu: [10.0, 0.0, 0.0],
        yaw_rad: 0.3,
        length_m: 4.5,
        width_m: 1.8,
        height_m: 1.5,
    };
    let hit = scene.cast_ray_with_agents([0.0, 0.0, 1.0], [1.0, 0.0, 0.0], 100.0, &[car]).unwrap();
    assert_eq!(hit.hit, Hit::Agent(42));
    assert!(hit.t_m > 7.0 && hit.t_m < 10.0, "{hit:?}");
    // Over the car's roof, the building again.
    let over = scene.cast_ray_with_agents([0.0, 0.0, 2.0], [1.0, 0.0, 0.0], 100.0, &[car]).unwrap();
    assert_eq!(over.hit, Hit::Building(0));
    // In a scan at 1 m, the beams straight ahead see the car, not the wall.
    let scan = scene.scan(&planar(30.0), &SensorPose::level([0.0, 0.0, 1.0], 0.0), &[car], 3, 0).unwrap();
    let ahead = scan.hit.len() / 2; // azimuth just left of 0
    assert_eq!(scan.hit[ahead], Hit::Agent(42));
    assert!(scan.hit.contains(&Hit::Building(0)), "the wall is still seen beside the car");
    // The robot's own box around the sensor does not blind it.
    let me =
        AgentBox { id: 1, base_center_enu: [0.0, 0.0, 0.0], yaw_rad: 0.0, length_m: 1.0, width_m: 1.0, height_m: 2.0 };
    let own = scene.scan(&planar(30.0), &SensorPose::level([0.0, 0.0, 1.0], 0.0), &[car, me], 3, 0).unwrap();
    assert_eq!(own, scan);
}

/// A room: four walls around the origin, 50 m away, so every level beam hits a wall.
fn room() -> LidarScene {
    let mut twin = Twin::default();
    twin.meta.bbox_m = [-100.0, -100.0, 100.0, 100.0];
    twin.buildings.push(building(rect(50.0, -60.0, 60.0, 60.0), 0.0, 20.0));
    twin.buildings.push(building(rect(-60.0, -60.0, -50.0, 60.0), 0.0, 20.0));
    twin.buildings.push(building(rect(-50.0, 50.0, 50.0, 60.0), 0.0, 20.0));
    twin.buildings.push(building(rect(-50.0, -60.0, 50.0, -50.0), 0.0, 20.0));
    LidarScene::from_twin(&twin)
}

#[test]
fn range_noise_and_dropout_have_the_configured_statistics() {
    let scene = room();
    let clean = LidarConfig {
        channels: 4,
        beams_per_channel: 2000,
        vertical_fov_min_rad: -0.05,
        vertical_fov_max_rad: 0.05,
        ..planar(100.0)
    };
    let noisy = LidarConfig { range_noise_std_m: 0.05, dropout_prob: 0.1, ..clean.clone() };
    let pose = SensorPose::level([0.0, 0.0, 5.0], 0.2);
    let truth = scene.scan(&clean, &pose, &[], 9, 0).unwrap();
    assert_eq!(truth.return_count(), clean.beam_count(), "every beam hits a wall");
    let mut errors = Vec::new();
    let mut dropped = 0usize;
    for scan_index in 0..5 {
        let scan = scene.scan(&noisy, &pose, &[], 9, scan_index).unwrap();
        for (r, t) in scan.ranges_m.iter().zip(&truth.ranges_m) {
            if r.is_infinite() {
                dropped += 1;
            } else {
                errors.push(r - t);
            }
        }
    }
    let n = errors.len() as f64;
    let mean = errors.iter().sum::<f64>() / n;
    let std = (errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    assert!(mean.abs() < 4.0 * 0.05 / n.sqrt(), "mean {mean}");
    assert!((std - 0.05).abs() < 0.05 * 0.03, "std {std}");
    let total = 5.0 * clean.beam_count() as f64;
    let sigma = (total * 0.1 * 0.9).sqrt();
    assert!((dropped as f64 - 0.1 * total).abs() < 4.0 * sigma, "{dropped} of {total} dropped");
    // Points lie along their beams at the measured range.
    let scan = scene.scan(&noisy, &pose, &[], 9, 0).unwrap();
    for (k, p) in scan.return_beam.iter().zip(&scan.points_sensor) {
        let r = scan.ranges_m[*k as usize];
        assert!(((p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() - r).abs() < 1e-9);
    }
    // Different scans draw different noise; the same scan the same.
    assert_ne!(scene.scan(&noisy, &pose, &[], 9, 1).unwrap().ranges_m, scan.ranges_m);
    assert_eq!(scene.scan(&noisy, &pose, &[], 9, 0).unwrap(), scan);
}

fn scan_bytes(scan: &swm_sensors::LidarScan) -> Vec<u8> {
    let mut out = Vec::new();
    for r in &scan.ranges_m {
        out.extend_from_slice(&r.to_le_bytes());
    }
    for p in scan.points_enu.iter().chain(&scan.points_sensor) {
        for v in p {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.extend(scan.hit.iter().flat_map(|h| format!("{h:?}").into_bytes()));
    out
}

#[test]
fn scans_are_identical_on_one_and_two_threads() {
    let scene = room();
    let config = LidarConfig::lidar_32();
    let pose = SensorPose { position_enu: [3.0, -2.0, 5.0], yaw_rad: 0.4, pitch_rad: 0.05, roll_rad: -0.02 };
    let agents = [AgentBox {
        id: 5,
        base_center_enu: [10.0, 3.0, 0.0],
        yaw_rad: 1.0,
        length_m: 4.0,
        width_m: 2.0,
        height_m: 1.6,
    }];
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| scan_bytes(&scene.scan(&config, &pose, &agents, 77, 12).unwrap()))
    };
    let one = run(1);
    assert!(one.len() > 1000);
    assert_eq!(one, run(2));
}

/// Möller–Trumbore in f64 over every triangle: the reference.
fn brute_force(mesh: &StaticMesh, o: [f64; 3], d: [f64; 3], max_m: f64) -> Option<(f64, usize)> {
    let mut best: Option<(f64, usize)> = None;
    for i in 0..mesh.len() {
        let [a, b, c] = mesh.triangle(i);
        let e1 = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
        let e2 = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
        let p = cross(d, e2);
        let det = dot(e1, p);
        if det.abs() < 1e-12 {
            continue;
        }
        let s = [o[0] - a[0], o[1] - a[1], o[2] - a[2]];
        let u = dot(s, p) / det;
        let q = cross(s, e1);
        let v = dot(d, q) / det;
        let t = dot(e2, q) / det;
        if (0.0..=1.0).contains(&u)
            && v >= 0.0
            && u + v <= 1.0
            && t >= 0.0
            && t <= max_m
            && best.is_none_or(|(bt, _)| t < bt)
        {
            best = Some((t, i));
        }
    }
    best
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Distance from `p` to the nearest edge of triangle `t`.
fn edge_distance(p: [f64; 3], t: [[f64; 3]; 3]) -> f64 {
    (0..3)
        .map(|k| {
            let (a, b) = (t[k], t[(k + 1) % 3]);
            let ab = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
            let ap = [p[0] - a[0], p[1] - a[1], p[2] - a[2]];
            let s = (dot(ap, ab) / dot(ab, ab)).clamp(0.0, 1.0);
            let q = [a[0] + s * ab[0] - p[0], a[1] + s * ab[1] - p[1], a[2] + s * ab[2] - p[2]];
            dot(q, q).sqrt()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Distance from `p` to triangle `t` (for "the hit lies on the reported triangle").
fn on_triangle(p: [f64; 3], t: [[f64; 3]; 3]) -> f64 {
    let [a, b, c] = t;
    let n = cross([b[0] - a[0], b[1] - a[1], b[2] - a[2]], [c[0] - a[0], c[1] - a[1], c[2] - a[2]]);
    let nn = dot(n, n).sqrt();
    let plane = dot(n, [p[0] - a[0], p[1] - a[1], p[2] - a[2]]).abs() / nn;
    // Inside test by barycentric areas (with slack).
    let area = |x: [f64; 3], y: [f64; 3], z: [f64; 3]| {
        dot(cross([y[0] - x[0], y[1] - x[1], y[2] - x[2]], [z[0] - x[0], z[1] - x[1], z[2] - x[2]]), n) / nn
    };
    let outside = [area(p, b, c), area(a, p, c), area(a, b, p)].iter().map(|w| (-w).max(0.0)).fold(0.0, f64::max);
    plane + outside / nn.sqrt().max(1e-9)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn bvh_agrees_with_brute_force(
        tris in prop::collection::vec(prop::array::uniform3(prop::array::uniform3(-20.0f64..20.0)), 1..60),
        rays in prop::collection::vec((prop::array::uniform3(-25.0f64..25.0), prop::array::uniform3(-1.0f64..1.0)), 40),
    ) {
        let mut mesh = StaticMesh::default();
        for t in &tris {
            mesh.push_triangle(*t, Surface::Terrain);
        }
        let scene = LidarScene::from_mesh(mesh.clone());
        for (o, d) in rays {
            let len = dot(d, d).sqrt();
            if len < 1e-3 {
                continue;
            }
            let d = [d[0] / len, d[1] / len, d[2] / len];
            let reference = brute_force(&mesh, o, d, 80.0);
            let got = scene.cast_ray(o, d, 80.0);
            match (got, reference) {
                (Some(h), Some((t_ref, _))) => {
                    // The hit lies on the triangle it names, and nothing is closer.
                    let tri = mesh.triangle(h.triangle.unwrap() as usize);
                    prop_assert!(on_triangle(h.point_enu, tri) < 2e-3, "{:?} not on {:?}", h, tri);
                    prop_assert!(h.t_m <= t_ref + 2e-3, "bvh {} vs brute force {}", h.t_m, t_ref);
                    prop_assert!(h.t_m >= t_ref - 2e-3, "bvh {} closer than brute force {}", h.t_m, t_ref);
                }
                (None, Some((t_ref, i))) => {
                    // f32 may only miss rays that graze an edge.
                    let p = [o[0] + t_ref * d[0], o[1] + t_ref * d[1], o[2] + t_ref * d[2]];
                    let edge = edge_distance(p, mesh.triangle(i));
                    prop_assert!(edge < 1e-3 || (80.0 - t_ref).abs() < 1e-3, "missed a hit at {} ({} m from an edge)", t_ref, edge);
                }
                (Some(h), None) => {
                    // Only a graze of an edge (f32 rounding) or the range's end may differ.
                    let tri = mesh.triangle(h.triangle.unwrap() as usize);
                    let near_edge = edge_distance(h.point_enu, tri) < 1e-3 || (80.0 - h.t_m).abs() < 1e-3;
                    prop_assert!(near_edge, "hit {:?} where brute force sees nothing", h);
                }
                (None, None) => {}
            }
        }
    }
}

#[test]
fn yeouido_walls_agree_with_the_twin_ray_cast() {
    let Some(path) = swm_ingest::shared_data::require_shared_data("seoul/yeouido.osm.pbf") else { return };
    let options =
        swm_ingest::IngestOptions { bbox_wgs84: Some([126.915, 37.515, 126.945, 37.535]), ..Default::default() };
    let (twin, _) = swm_ingest::ingest_paths(&[path], &options).expect("ingest Yeouido");
    let scene = LidarScene::from_twin(&twin);
    let index = TwinIndex::new(&twin);
    assert!(scene.mesh().len() > 10_000, "{} triangles", scene.mesh().len());
    assert!(scene.bvh().depth() < 60);
    // Level rays at 2 m from a street grid: walls only (roof shapes do not matter).
    let b = twin.meta.bbox_m;
    let (mut agree, mut total, mut hits) = (0, 0, 0);
    for k in 0..4000u32 {
        let x = b[0] + (b[2] - b[0]) * ((k * 37 % 101) as f64 + 0.5) / 101.0;
        let y = b[1] + (b[3] - b[1]) * ((k * 53 % 97) as f64 + 0.5) / 97.0;
        let origin = [x, y, twin.terrain.elevation_at([x, y]) + 2.0];
        if index.building_at([x, y]).is_some() {
            continue;
        }
        let a = k as f64 * 2.399;
        let d = [a.cos(), a.sin(), 0.0];
        let mine = scene.cast_ray(origin, d, 200.0).filter(|h| h.hit != Hit::Terrain).map(|h| h.t_m);
        let theirs =
            index.raycast(origin, d, 200.0).filter(|h| h.target != swm_twin::query::HitTarget::Terrain).map(|h| h.t_m);
        total += 1;
        hits += usize::from(theirs.is_some());
        match (mine, theirs) {
            (Some(m), Some(t)) if (m - t).abs() < 0.01 => agree += 1,
            (None, None) => agree += 1,
            _ => {}
        }
    }
    eprintln!("Yeouido: {agree} of {total} level rays agree with TwinIndex::raycast ({hits} hit buildings)");
    // Much of the box is the Han river and parks.
    assert!(hits >= 300, "{hits} of {total} rays hit buildings");
    assert!(agree as f64 >= 0.995 * total as f64, "{agree} of {total} agree");
    // A 32-channel scan from a street returns thousands of points.
    let o = [0.0, 0.0, twin.terrain.elevation_at([0.0, 0.0]) + 2.0];
    let scan = scene.scan(&LidarConfig::lidar_32(), &SensorPose::level(o, 0.0), &[], 1, 0).unwrap();
    assert!(scan.return_count() > 10_000, "{} returns", scan.return_count());
}

/// Position of `p` in the box's frame: (along, across, up from the base).
fn box_local(a: &AgentBox, p: [f64; 3]) -> [f64; 3] {
    let (s, c) = a.yaw_rad.sin_cos();
    let r = [p[0] - a.base_center_enu[0], p[1] - a.base_center_enu[1], p[2] - a.base_center_enu[2]];
    [c * r[0] + s * r[1], -s * r[0] + c * r[1], r[2]]
}

fn inside(a: &AgentBox, p: [f64; 3], slack: f64) -> bool {
    let q = box_local(a, p);
    q[0].abs() <= 0.5 * a.length_m + slack
        && q[1].abs() <= 0.5 * a.width_m + slack
        && q[2] >= -slack
        && q[2] <= a.height_m + slack
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn agent_box_hits_lie_on_the_box_and_nothing_is_closer(
        centre in prop::array::uniform3(-10.0f64..10.0),
        yaw in -3.2f64..3.2,
        size in prop::array::uniform3(0.3f64..6.0),
        rays in prop::collection::vec((prop::array::uniform3(-20.0f64..20.0), prop::array::uniform3(-1.0f64..1.0)), 30),
    ) {
        let a = AgentBox { id: 1, base_center_enu: centre, yaw_rad: yaw, length_m: size[0], width_m: size[1], height_m: size[2] };
        for (o, d) in rays {
            let len = dot(d, d).sqrt();
            if len < 1e-3 || inside(&a, o, 0.0) {
                continue;
            }
            let d = [d[0] / len, d[1] / len, d[2] / len];
            let at = |t: f64| [o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]];
            // Brute force: the first of 4000 samples along the ray inside the box.
            let first_inside = (0..4000).map(|k| k as f64 * 0.015).find(|t| inside(&a, at(*t), 0.0));
            match a.ray_hit(o, d, 60.0) {
                Some((t, n)) => {
                    let q = box_local(&a, at(t));
                    let on_face = [(q[0].abs() - 0.5 * a.length_m).abs(), (q[1].abs() - 0.5 * a.width_m).abs(), q[2].abs(), (q[2] - a.height_m).abs()]
                        .iter()
                        .any(|e| *e < 1e-6);
                    prop_assert!(inside(&a, at(t), 1e-6) && on_face, "hit {:?} is not on the box surface", q);
                    prop_assert!(dot(n, d) <= 0.0, "the normal faces the ray");
                    // No sample before the hit is inside the box.
                    prop_assert!(first_inside.is_none_or(|s| s >= t - 1e-9), "inside at {:?} before the hit at {}", first_inside, t);
                }
                None => prop_assert!(first_inside.is_none(), "missed a box the ray enters at {:?}", first_inside),
            }
        }
    }
}
