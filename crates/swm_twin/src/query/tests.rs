use super::*;
use proptest::prelude::*;
use swm_core::SourceRef;

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<P2> {
    vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
}

fn building(footprint: Polygon, base_m: f64, height_m: f64) -> Building {
    Building::flat(SourceRef::way(1), footprint, base_m, height_m)
}

fn lane(points: Vec<P3>, width_m: f64) -> Lane {
    Lane {
        source: SourceRef::way(2),
        road_class: RoadClass::Residential,
        name: None,
        length_m: polyline_length_m(&points),
        centerline: points,
        width_m,
        speed_limit_mps: 8.0,
        speed_limit_tagged: false,
        forward: true,
        index_from_right: 0,
        lanes_in_direction: 1,
        from_junction: None,
        to_junction: None,
        left: None,
        right: None,
        turns: vec![],
        stop_line: None,
        signal: None,
        level: 0,
    }
}

fn walk(points: Vec<P3>, kind: WalkKind, width_m: f64) -> WalkEdge {
    WalkEdge {
        source: SourceRef::Derived,
        from: 0,
        to: 1,
        kind,
        signalled: false,
        length_m: polyline_length_m(&points),
        polyline: points,
        width_m,
    }
}

/// A flat town at 5 m: a box, a courtyard building, an outline replaced by two parts,
/// two lanes, a sidewalk, a crossing, water and a park.
fn town() -> Twin {
    let mut outline = building(Polygon { exterior: rect(100.0, 0.0, 120.0, 10.0), holes: vec![] }, 5.0, 30.0);
    outline.parts = vec![0, 1];
    outline.parts_replace_outline = true;
    let mut part_a = building(Polygon { exterior: rect(100.0, 0.0, 110.0, 10.0), holes: vec![] }, 5.0, 50.0);
    part_a.parent = Some(2);
    let mut part_b = building(Polygon { exterior: rect(110.0, 0.0, 120.0, 10.0), holes: vec![] }, 5.0, 10.0);
    part_b.parent = Some(2);
    let courtyard = Polygon {
        exterior: rect(40.0, 0.0, 80.0, 40.0),
        // Clockwise hole.
        holes: vec![vec![[50.0, 10.0], [50.0, 30.0], [70.0, 30.0], [70.0, 10.0]]],
    };
    Twin {
        terrain: Terrain::Flat { elevation_m: 5.0 },
        buildings: vec![
            building(Polygon { exterior: rect(10.0, 10.0, 20.0, 20.0), holes: vec![] }, 5.0, 30.0),
            building(courtyard, 5.0, 20.0),
            outline,
        ],
        building_parts: vec![part_a, part_b],
        lanes: vec![
            lane(vec![[-50.0, 0.0, 5.0], [50.0, 0.0, 5.0]], 4.0),
            // A ramp: 30 m east, 40 m up.
            lane(vec![[0.0, 200.0, 0.0], [30.0, 200.0, 40.0]], 3.0),
        ],
        walk_edges: vec![
            walk(vec![[-50.0, 4.0, 5.0], [50.0, 4.0, 5.0]], WalkKind::Sidewalk, 2.0),
            walk(vec![[0.0, -2.0, 5.0], [0.0, 2.0, 5.0]], WalkKind::Crossing, 3.0),
        ],
        land_cover: vec![
            LandCover {
                source: SourceRef::way(3),
                kind: LandKind::Water,
                name: None,
                geometry: LandGeometry::Area(Polygon { exterior: rect(-30.0, 10.0, -20.0, 20.0), holes: vec![] }),
            },
            LandCover {
                source: SourceRef::way(4),
                kind: LandKind::Park,
                name: None,
                geometry: LandGeometry::Area(Polygon { exterior: rect(-20.0, -20.0, -10.0, -10.0), holes: vec![] }),
            },
        ],
        ..Twin::default()
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn close3(a: P3, b: P3, tol: f64) -> bool {
    (0..3).all(|k| close(a[k], b[k], tol))
}

#[test]
fn nearest_lane_on_a_straight_lane() {
    let index = TwinIndex::new(&town());
    let hit = index.nearest_lane([30.0, 4.0]).unwrap();
    assert_eq!(hit.lane, 0);
    assert!(close(hit.s_m, 80.0, 1e-9), "{hit:?}");
    assert!(close(hit.distance_m, 4.0, 1e-9));
    assert!(close3(hit.point, [30.0, 0.0, 5.0], 1e-9));
    // Beyond the end: clamps to the end point.
    let end = index.nearest_lane([53.0, 4.0]).unwrap();
    assert!(close(end.s_m, 100.0, 1e-9) && close(end.distance_m, 5.0, 1e-9));
    // s is measured along the 3D centre line (the ramp is 50 m long).
    let ramp = index.nearest_lane([15.0, 203.0]).unwrap();
    assert_eq!(ramp.lane, 1);
    assert!(close(ramp.s_m, 25.0, 1e-9) && close(ramp.distance_m, 3.0, 1e-9));
    assert!(close3(ramp.point, [15.0, 200.0, 20.0], 1e-9));

    assert_eq!(index.lanes_within([30.0, 4.0], 5.0), vec![0]);
    assert_eq!(index.lanes_within([30.0, 4.0], 3.9), Vec::<u32>::new());
    assert_eq!(index.lanes_within([30.0, 100.0], 200.0), vec![0, 1]);
    assert!(index.lanes_within([0.0, 0.0], f64::NAN).is_empty());
    assert!(index.nearest_lane([f64::NAN, 0.0]).is_none());
    assert!(TwinIndex::new(&Twin::default()).nearest_lane([0.0, 0.0]).is_none());
}

#[test]
fn buildings_within_and_building_at() {
    let index = TwinIndex::new(&town());
    assert_eq!(index.buildings_within([15.0, 15.0], 0.0), vec![0]);
    // 5 m west of the box, 15 m west of the courtyard building.
    assert_eq!(index.buildings_within([5.0, 15.0], 5.0), vec![0]);
    assert_eq!(index.buildings_within([5.0, 15.0], 4.99), Vec::<u32>::new());
    assert_eq!(index.buildings_within([30.0, 15.0], 10.0), vec![0, 1]);
    // In the courtyard: 10 m from the hole's walls.
    assert_eq!(index.buildings_within([60.0, 20.0], 9.9), Vec::<u32>::new());
    assert_eq!(index.buildings_within([60.0, 20.0], 10.0), vec![1]);
    assert_eq!(index.building_at([15.0, 15.0]), Some(0));
    assert_eq!(index.building_at([45.0, 20.0]), Some(1));
    assert_eq!(index.building_at([60.0, 20.0]), None, "courtyard");
    assert_eq!(index.building_at([115.0, 5.0]), Some(2));
    assert_eq!(index.building_at([0.0, 0.0]), None);
}

#[test]
fn ray_hits_box_wall_top_and_ground() {
    let index = TwinIndex::new(&town());
    // Horizontal ray eastwards at 10 m elevation: the west wall of the box at x = 10.
    let hit = index.raycast([0.0, 15.0, 10.0], [2.0, 0.0, 0.0], 100.0).unwrap();
    assert_eq!(hit.target, HitTarget::Building(0));
    assert!(close(hit.t_m, 10.0, 1e-9), "{hit:?}");
    assert!(close3(hit.point, [10.0, 15.0, 10.0], 1e-9));
    assert!(close3(hit.normal, [-1.0, 0.0, 0.0], 1e-12));
    // Too short.
    assert!(index.raycast([0.0, 15.0, 10.0], [1.0, 0.0, 0.0], 9.0).is_none());
    // Diagonal from the south-west, hitting the south wall (y = 10) at x = 15.
    let hit = index.raycast([5.0, 0.0, 10.0], [1.0, 1.0, 0.0], 100.0).unwrap();
    assert!(close(hit.t_m, 200f64.sqrt(), 1e-9) && close3(hit.normal, [0.0, -1.0, 0.0], 1e-12), "{hit:?}");
    // Straight down onto the roof (top at 5 + 30 m).
    let hit = index.raycast([15.0, 15.0, 100.0], [0.0, 0.0, -1.0], 1000.0).unwrap();
    assert_eq!(hit.target, HitTarget::Building(0));
    assert!(close(hit.t_m, 65.0, 1e-9) && close3(hit.normal, [0.0, 0.0, 1.0], 0.0));
    // Straight down onto the flat ground at 5 m.
    let hit = index.raycast([-5.0, -5.0, 20.0], [0.0, 0.0, -3.0], 1000.0).unwrap();
    assert_eq!(hit.target, HitTarget::Terrain);
    assert!(close(hit.t_m, 15.0, 1e-12) && close3(hit.point, [-5.0, -5.0, 5.0], 1e-12));
    assert!(close3(hit.normal, [0.0, 0.0, 1.0], 0.0));
    // Slanted onto the ground before reaching the box.
    let hit = index.raycast([0.0, 15.0, 7.0], [1.0, 0.0, -0.5], 100.0).unwrap();
    assert_eq!(hit.target, HitTarget::Terrain);
    assert!(close3(hit.point, [4.0, 15.0, 5.0], 1e-9));
    // Above everything, horizontal: nothing.
    assert!(index.raycast([0.0, 15.0, 100.0], [1.0, 0.0, 0.0], f64::INFINITY).is_none());
    // Degenerate rays.
    assert!(index.raycast([0.0, 15.0, 10.0], [0.0, 0.0, 0.0], 100.0).is_none());
    assert!(index.raycast([0.0, 15.0, 10.0], [f64::NAN, 0.0, 0.0], 100.0).is_none());
    assert!(index.raycast([0.0, 15.0, 10.0], [1.0, 0.0, 0.0], -1.0).is_none());
}

#[test]
fn ray_from_inside_a_courtyard() {
    let index = TwinIndex::new(&town());
    // From the courtyard's centre eastwards: the hole's east wall at x = 70.
    let hit = index.raycast([60.0, 20.0, 8.0], [1.0, 0.0, 0.0], 100.0).unwrap();
    assert_eq!(hit.target, HitTarget::Building(1));
    assert!(close(hit.t_m, 10.0, 1e-9) && close3(hit.normal, [-1.0, 0.0, 0.0], 1e-12), "{hit:?}");
    // Northwards: the hole's north wall at y = 30, normal facing the courtyard.
    let hit = index.raycast([60.0, 20.0, 8.0], [0.0, 1.0, 0.0], 100.0).unwrap();
    assert!(close(hit.t_m, 10.0, 1e-9) && close3(hit.normal, [0.0, -1.0, 0.0], 1e-12), "{hit:?}");
    // Up out of the courtyard: nothing (no roof over the hole).
    assert!(index.raycast([60.0, 20.0, 8.0], [0.0, 0.0, 1.0], 1000.0).is_none());
    // Down onto the roof of the ring, not into the courtyard.
    let hit = index.raycast([45.0, 20.0, 50.0], [0.0, 0.0, -1.0], 1000.0).unwrap();
    assert_eq!(hit.target, HitTarget::Building(1));
    assert!(close(hit.t_m, 25.0, 1e-9));
    // Down into the courtyard from above it: onto the ground inside.
    let hit = index.raycast([51.0, 20.0, 30.0], [1.0, 0.0, -2.0], 1000.0).unwrap();
    assert_eq!(hit.target, HitTarget::Terrain, "{hit:?}");
    assert!(close3(hit.point, [63.5, 20.0, 5.0], 1e-9), "{hit:?}");
    // Less steep: into the hole's east wall at x = 70, z = 11.
    let hit = index.raycast([51.0, 20.0, 30.0], [1.0, 0.0, -1.0], 1000.0).unwrap();
    assert_eq!(hit.target, HitTarget::Building(1));
    assert!(close3(hit.point, [70.0, 20.0, 11.0], 1e-9) && close3(hit.normal, [-1.0, 0.0, 0.0], 1e-12), "{hit:?}");
}

#[test]
fn ray_hits_parts_instead_of_replaced_outline() {
    let index = TwinIndex::new(&town());
    // At 20 m: over part B (top 15 m), into part A's east wall at x = 110. The outline
    // (top 35 m) would have been hit at x = 120 were it not replaced.
    let hit = index.raycast([130.0, 5.0, 20.0], [-1.0, 0.0, 0.0], 100.0).unwrap();
    assert_eq!(hit.target, HitTarget::BuildingPart(0));
    assert!(close(hit.t_m, 20.0, 1e-9) && close3(hit.normal, [1.0, 0.0, 0.0], 1e-12));
    let hit = index.raycast([130.0, 5.0, 10.0], [-1.0, 0.0, 0.0], 100.0).unwrap();
    assert_eq!(hit.target, HitTarget::BuildingPart(1));
    assert!(close(hit.t_m, 10.0, 1e-9));
}

#[test]
fn raycast_with_min_height_passes_under() {
    let mut twin = Twin::default();
    let mut bridge = building(Polygon { exterior: rect(0.0, -5.0, 10.0, 5.0), holes: vec![] }, 0.0, 12.0);
    bridge.min_height_m = 8.0;
    twin.buildings.push(bridge);
    let index = TwinIndex::new(&twin);
    // Under the overhang: onto the ground beyond it.
    let hit = index.raycast([-10.0, 0.0, 4.0], [1.0, 0.0, 0.0], 100.0);
    assert!(hit.is_none(), "{hit:?}");
    // Up into its bottom face.
    let hit = index.raycast([5.0, 0.0, 1.0], [0.0, 0.0, 1.0], 100.0).unwrap();
    assert!(close(hit.t_m, 7.0, 1e-12) && close3(hit.normal, [0.0, 0.0, -1.0], 0.0));
}

fn sloped_grid() -> Terrain {
    // z = 0.1 x over x in [0, 30], y in [0, 20]: bilinear interpolation reproduces the plane.
    let (nx, ny) = (4u32, 3u32);
    let elevation_m = (0..ny).flat_map(|_| (0..nx).map(|i| i as f32)).collect();
    Terrain::Grid { origin_m: [0.0, 0.0], cell_m: 10.0, nx, ny, elevation_m, source: "test".into() }
}

#[test]
fn ray_hits_grid_terrain() {
    let twin = Twin { terrain: sloped_grid(), ..Twin::default() };
    let index = TwinIndex::new(&twin);
    let hit = index.raycast([13.0, 7.0, 100.0], [0.0, 0.0, -1.0], 1000.0).unwrap();
    assert_eq!(hit.target, HitTarget::Terrain);
    assert!(close(hit.point[2], 1.3, 1e-9), "{hit:?}");
    let n = (1.0f64 + 0.01).sqrt();
    assert!(close3(hit.normal, [-0.1 / n, 0.0, 1.0 / n], 1e-9));
    // Horizontal at 2 m from the west, outside the grid: meets the slope at x = 20.
    let hit = index.raycast([-50.0, 5.0, 2.0], [1.0, 0.0, 0.0], f64::INFINITY).unwrap();
    assert!(close(hit.t_m, 70.0, 1e-9), "{hit:?}");
    // Beyond the east edge the ground is clamped at 3 m.
    let hit = index.raycast([100.0, 5.0, 10.0], [0.0, 0.0, -1.0], 1000.0).unwrap();
    assert!(close(hit.t_m, 7.0, 1e-9) && close3(hit.normal, [0.0, 0.0, 1.0], 1e-12), "{hit:?}");
    // Horizontal above the highest sample: nothing.
    assert!(index.raycast([-50.0, 5.0, 3.5], [1.0, 0.2, 0.0], f64::INFINITY).is_none());
    // From below the ground: hits it from underneath, normal facing down.
    let hit = index.raycast([15.0, 5.0, -5.0], [0.0, 0.0, 1.0], 100.0).unwrap();
    assert!(close(hit.point[2], 1.5, 1e-9) && hit.normal[2] < 0.0);
    // An invalid grid (wrong sample count) is ignored, not a panic.
    let bad = Twin {
        terrain: Terrain::Grid {
            origin_m: [0.0, 0.0],
            cell_m: 1.0,
            nx: 5,
            ny: 5,
            elevation_m: vec![0.0; 3],
            source: String::new(),
        },
        ..Twin::default()
    };
    assert!(TwinIndex::new(&bad).raycast([0.0, 0.0, 10.0], [0.0, 0.0, -1.0], 100.0).is_none());
}

fn bumpy_grid() -> Terrain {
    let (nx, ny) = (7u32, 6u32);
    let elevation_m = (0..ny).flat_map(|j| (0..nx).map(move |i| ((i * 7 + j * 13) % 5) as f32 * 2.0 - 3.0)).collect();
    Terrain::Grid { origin_m: [-20.0, -10.0], cell_m: 8.0, nx, ny, elevation_m, source: "test".into() }
}

proptest! {
    #[test]
    fn grid_hits_lie_on_the_surface_and_are_first(
        ox in -60.0f64..60.0, oy in -50.0f64..60.0, oz in 6.0f64..30.0,
        dx in -1.0f64..1.0, dy in -1.0f64..1.0, dz in -1.0f64..-0.01,
    ) {
        let terrain = bumpy_grid();
        let index = TwinIndex::new(&Twin { terrain: terrain.clone(), ..Twin::default() });
        let hit = index.raycast([ox, oy, oz], [dx, dy, dz], f64::INFINITY);
        let hit = hit.expect("a downward ray always meets the terrain");
        let ground = terrain.elevation_at([hit.point[0], hit.point[1]]);
        prop_assert!((hit.point[2] - ground).abs() < 1e-6, "{hit:?} ground {ground}");
        // No earlier crossing: every sample before the hit is above the ground.
        let len = (dx * dx + dy * dy + dz * dz).sqrt();
        for k in 0..200 {
            let t = hit.t_m * k as f64 / 200.0;
            let p = [ox + t * dx / len, oy + t * dy / len, oz + t * dz / len];
            prop_assert!(p[2] >= terrain.elevation_at([p[0], p[1]]) - 1e-6);
        }
    }

    #[test]
    fn raycast_matches_brute_force(
        ox in -20.0f64..140.0, oy in -20.0f64..60.0, oz in 0.0f64..60.0,
        dx in -1.0f64..1.0, dy in -1.0f64..1.0, dz in -1.0f64..1.0,
    ) {
        let index = TwinIndex::new(&town());
        let o = [ox, oy, oz];
        let hit = index.raycast(o, [dx, dy, dz], 500.0);
        let len = (dx * dx + dy * dy + dz * dz).sqrt();
        prop_assume!(len > 1e-3);
        let d = [dx / len, dy / len, dz / len];
        let mut best = geom::ray_plane_z(o, d, 5.0, 500.0).map(|(t, _)| (t, HitTarget::Terrain));
        for s in &index.volumes {
            if let Some((t, _)) = geom::ray_prism(o, d, 500.0, &s.footprint, s.bottom_m, s.top_m)
                && best.is_none_or(|(bt, _)| t <= bt)
            {
                best = Some((t, s.target));
            }
        }
        match (hit, best) {
            (None, None) => {}
            (Some(h), Some((t, _))) => prop_assert!((h.t_m - t).abs() < 1e-9, "{h:?} vs {t}"),
            (h, b) => prop_assert!(false, "index {h:?} vs brute force {b:?}"),
        }
    }

    #[test]
    fn building_at_agrees_with_polygon_contains(x in -10.0f64..130.0, y in -10.0f64..50.0) {
        let twin = town();
        let index = TwinIndex::new(&twin);
        let expected = twin.buildings.iter().position(|b| b.footprint.contains([x, y])).map(|i| i as u32);
        prop_assert_eq!(index.building_at([x, y]), expected);
    }

    #[test]
    fn building_at_agrees_on_random_polygons(
        pts in proptest::collection::vec((-20.0f64..20.0, -20.0f64..20.0), 3..12),
        qx in -25.0f64..25.0, qy in -25.0f64..25.0,
    ) {
        let exterior: Vec<P2> = pts.iter().map(|&(x, y)| [x, y]).collect();
        let poly = Polygon { exterior, holes: vec![rect(-2.0, -2.0, 2.0, 2.0)] };
        let twin = Twin { buildings: vec![building(poly.clone(), 0.0, 10.0)], ..Twin::default() };
        let index = TwinIndex::new(&twin);
        prop_assert_eq!(index.building_at([qx, qy]).is_some(), poly.contains([qx, qy]));
    }
}

/// Signed distance to the union of disjoint axis-aligned boxes `[x0, y0, x1, y1]`.
fn boxes_signed_distance(boxes: &[[f64; 4]], p: P2) -> f64 {
    for b in boxes {
        if p[0] >= b[0] && p[0] <= b[2] && p[1] >= b[1] && p[1] <= b[3] {
            return -(p[0] - b[0]).min(b[2] - p[0]).min(p[1] - b[1]).min(b[3] - p[1]);
        }
    }
    boxes
        .iter()
        .map(|b| {
            let dx = (b[0] - p[0]).max(p[0] - b[2]).max(0.0);
            let dy = (b[1] - p[1]).max(p[1] - b[3]).max(0.0);
            (dx * dx + dy * dy).sqrt()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn bev_classes_and_signed_distance() {
    let mut twin = town();
    // A building just outside the crop's east edge (x = 25).
    twin.buildings.push(building(Polygon { exterior: rect(26.0, -5.0, 30.0, 5.0), holes: vec![] }, 5.0, 10.0));
    let index = TwinIndex::new(&twin);
    let res = 0.5;
    let bev = index.bev_raster([0.0, 0.0], 0.0, 100, 100, res).unwrap();
    assert_eq!((bev.width, bev.height, bev.classes.len(), bev.signed_distance_m.len()), (100, 100, 10_000, 10_000));
    let class_at = |p: P2| {
        let (c, r) = bev.pixel_at(p).unwrap();
        bev.class_at(c, r).unwrap()
    };
    assert_eq!(class_at([-10.1, 0.1]), BevClass::Road);
    assert_eq!(class_at([-10.1, 1.9]), BevClass::Road);
    assert_eq!(class_at([-10.1, -2.4]), BevClass::Ground);
    assert_eq!(class_at([0.1, 0.1]), BevClass::Crossing);
    assert_eq!(class_at([-10.1, 4.1]), BevClass::Sidewalk);
    assert_eq!(class_at([15.1, 15.1]), BevClass::Building);
    assert_eq!(class_at([-24.9, 15.1]), BevClass::Water);
    assert_eq!(class_at([-15.1, -15.1]), BevClass::Green);
    assert_eq!(class_at([-5.1, -15.1]), BevClass::Ground);
    // Convention: heading 0 is a north-up map; (15, 15) is right of and above the centre.
    assert_eq!(bev.pixel_at([15.1, 15.1]), Some((80, 19)));
    assert_eq!(bev.class_at(80, 20), Some(BevClass::Building));
    let c = bev.pixel_center_m(80, 20);
    assert!(close(c[0], 15.25, 1e-12) && close(c[1], 14.75, 1e-12), "{c:?}");
    // Heading north: the image's x axis points north, its "up" points west.
    let north = index.bev_raster([0.0, 0.0], std::f64::consts::FRAC_PI_2, 100, 100, res).unwrap();
    assert_eq!(north.pixel_at([14.9, 15.1]), Some((80, 79)));
    assert_eq!(north.class_at(80, 79), Some(BevClass::Building));
    assert_eq!(north.class_at(80, 20), Some(BevClass::Ground));
    // The road runs east-west: vertical in the rotated image, through column 50.
    assert_eq!(north.class_at(49, 10), Some(BevClass::Road));
    assert_eq!(north.class_at(49, 90), Some(BevClass::Road));

    // Signed distance within one pixel of the analytic one, everywhere.
    let boxes = [[10.0, 10.0, 20.0, 20.0], [40.0, 0.0, 80.0, 40.0], [26.0, -5.0, 30.0, 5.0]];
    for row in 0..100 {
        for col in 0..100 {
            let p = bev.pixel_center_m(col, row);
            let analytic = boxes_signed_distance(&boxes, p).min(bev.max_distance_m as f64);
            let sd = bev.signed_distance_at(col, row).unwrap() as f64;
            assert!((sd - analytic).abs() <= res, "({col}, {row}) at {p:?}: {sd} vs {analytic}");
            assert_eq!(sd < 0.0, bev.class_at(col, row) == Some(BevClass::Building));
        }
    }
    // Just inside the crop's east edge, 1.25 m from the building outside the crop.
    let (c, r) = bev.pixel_at([24.9, 0.0]).unwrap();
    assert!(close(bev.signed_distance_at(c, r).unwrap() as f64, 1.25, 1e-6));

    // Same checks on a rotated raster with a resolution that does not divide the walls.
    let res = 0.37;
    let rot = index.bev_raster([12.0, 8.0], 0.5, 64, 48, res).unwrap();
    for row in 0..48 {
        for col in 0..64 {
            let p = rot.pixel_center_m(col, row);
            let analytic = boxes_signed_distance(&boxes, p).min(rot.max_distance_m as f64);
            let sd = rot.signed_distance_at(col, row).unwrap() as f64;
            assert!((sd - analytic).abs() <= res, "({col}, {row}) at {p:?}: {sd} vs {analytic}");
        }
    }
}

#[test]
fn bev_rejects_invalid_requests_and_clamps_far_distances() {
    let index = TwinIndex::new(&town());
    for bad in [
        index.bev_raster([0.0, 0.0], 0.0, 0, 10, 1.0),
        index.bev_raster([0.0, 0.0], 0.0, 10, 10, 0.0),
        index.bev_raster([0.0, 0.0], 0.0, 10, 10, f64::NAN),
        index.bev_raster([f64::INFINITY, 0.0], 0.0, 10, 10, 1.0),
        index.bev_raster([0.0, 0.0], 0.0, 100_000, 100_000, 1.0),
    ] {
        assert!(matches!(bad, Err(TwinError::InvalidQuery(_))), "{bad:?}");
    }
    // Far from every building: distances clamp to the margin.
    let far = index.bev_raster([-500.0, -500.0], 0.0, 8, 8, 1.0).unwrap();
    assert!(far.signed_distance_m.iter().all(|&d| d == far.max_distance_m));
    assert!(far.classes.iter().all(|&c| c == BevClass::Ground as u8));
    // Deep inside a big building: clamps to minus the margin.
    let mut twin = Twin::default();
    twin.buildings.push(building(Polygon { exterior: rect(-500.0, -500.0, 500.0, 500.0), holes: vec![] }, 0.0, 5.0));
    let inside = TwinIndex::new(&twin).bev_raster([0.0, 0.0], 0.0, 8, 8, 1.0).unwrap();
    assert!(inside.signed_distance_m.iter().all(|&d| d == -inside.max_distance_m));
}
