//! A small hand-built twin for the export tests: a signalised junction of a four-lane
//! primary road and a two-lane residential street, sidewalks and a crossing, a dozen
//! buildings with every roof family, a courtyard, building parts, water, a park with a
//! hole, a rail line and a parking lot.

use crate::*;
use swm_core::{LatLon, SourceRef};

/// Ground elevation of the test twin (m above sea level).
pub(crate) const GROUND_M: f64 = 10.0;

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<P2> {
    vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
}

fn building(id: i64, kind: &str, exterior: Vec<P2>, height_m: f64, source: HeightSource, roof: Roof) -> Building {
    Building {
        source: SourceRef::way(id),
        kind: kind.into(),
        name: None,
        footprint: Polygon { exterior, holes: vec![] },
        base_elevation_m: GROUND_M,
        height_m,
        min_height_m: 0.0,
        levels: Some((height_m / 3.2).round() as f32),
        height_source: source,
        roof,
        colour: None,
        parts: vec![],
        parts_replace_outline: false,
        parent: None,
    }
}

fn roof(shape: RoofShape, height_m: f64) -> Roof {
    Roof { shape, height_m, direction_rad: None, colour: None }
}

fn lane(id: i64, class: RoadClass, pts: &[P2], index_from_right: u8, lanes_in_direction: u8) -> Lane {
    let centerline: Vec<P3> = pts.iter().map(|p| [p[0], p[1], GROUND_M]).collect();
    Lane {
        source: SourceRef::way(id),
        road_class: class,
        name: Some("Test-ro".into()),
        length_m: polyline_length_m(&centerline),
        centerline,
        width_m: 3.5,
        speed_limit_mps: 50.0 / 3.6,
        speed_limit_tagged: true,
        forward: true,
        index_from_right,
        lanes_in_direction,
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

fn walk(kind: WalkKind, pts: &[P2], width_m: f64, signalled: bool) -> WalkEdge {
    let polyline: Vec<P3> = pts.iter().map(|p| [p[0], p[1], GROUND_M]).collect();
    WalkEdge {
        source: SourceRef::Derived,
        from: 0,
        to: 1,
        kind,
        signalled,
        length_m: polyline_length_m(&polyline),
        polyline,
        width_m,
    }
}

/// The test twin (origin 37.525 N, 126.925 E; flat ground at [`GROUND_M`]).
pub(crate) fn test_twin() -> Twin {
    let mut buildings = vec![
        {
            let mut b =
                building(1001, "office", rect(-80.0, 20.0, -60.0, 40.0), 60.0, HeightSource::Tagged, Roof::default());
            b.name = Some("Test Tower".into());
            b
        },
        building(
            1002,
            "house",
            rect(-50.0, 15.0, -26.0, 25.0),
            12.0,
            HeightSource::Tagged,
            roof(RoofShape::Gabled, 4.0),
        ),
        building(
            1003,
            "apartments",
            rect(-80.0, -40.0, -60.0, -28.0),
            10.0,
            HeightSource::Levels,
            roof(RoofShape::Hipped, 3.0),
        ),
        building(
            1004,
            "yes",
            rect(-50.0, -40.0, -38.0, -28.0),
            9.0,
            HeightSource::Estimated,
            roof(RoofShape::Pyramidal, 3.0),
        ),
        {
            let octagon: Vec<P2> = (0..8)
                .map(|k| {
                    let a = std::f64::consts::PI * (0.125 + 0.25 * k as f64);
                    [30.0 + 8.0 * a.cos(), 30.0 + 8.0 * a.sin()]
                })
                .collect();
            building(1005, "church", octagon, 20.0, HeightSource::Tagged, roof(RoofShape::Dome, 8.0))
        },
        {
            let mut r = roof(RoofShape::Skillion, 2.0);
            r.direction_rad = Some(std::f64::consts::FRAC_PI_2);
            building(1006, "garage", rect(50.0, 20.0, 66.0, 30.0), 8.0, HeightSource::Tagged, r)
        },
        building(
            1007,
            "yes",
            vec![[20.0, -50.0], [44.0, -50.0], [44.0, -40.0], [30.0, -40.0], [30.0, -20.0], [20.0, -20.0]],
            15.0,
            HeightSource::Estimated,
            roof(RoofShape::Hipped, 4.0),
        ),
        {
            let mut b =
                building(2001, "school", rect(60.0, -50.0, 90.0, -20.0), 25.0, HeightSource::Tagged, Roof::default());
            b.source = SourceRef::relation(2001);
            b.footprint.holes = vec![vec![[70.0, -40.0], [70.0, -30.0], [80.0, -30.0], [80.0, -40.0]]];
            b
        },
        {
            let mut b =
                building(1009, "commercial", rect(-20.0, 40.0, -5.0, 60.0), 30.0, HeightSource::Parts, Roof::default());
            b.parts = vec![0, 1];
            b.parts_replace_outline = true;
            b
        },
        building(1010, "yes", rect(70.0, 15.0, 80.0, 25.0), 14.0, HeightSource::Tagged, roof(RoofShape::Onion, 6.0)),
    ];
    buildings[1].roof.colour = Some("brown".into());
    let part = |id: i64, y0: f64, y1: f64, h: f64, r: Roof| {
        let mut p = building(id, "yes", rect(-20.0, y0, -5.0, y1), h, HeightSource::Tagged, r);
        p.parent = Some(8);
        p
    };
    let building_parts =
        vec![part(3001, 40.0, 50.0, 30.0, Roof::default()), part(3002, 50.0, 60.0, 12.0, roof(RoofShape::Gabled, 3.0))];

    let mut lanes = vec![
        // East-west primary, two lanes each way, split at the junction (0, 0).
        lane(10, RoadClass::Primary, &[[-100.0, -5.25], [-8.0, -5.25]], 0, 2),
        lane(10, RoadClass::Primary, &[[-100.0, -1.75], [-8.0, -1.75]], 1, 2),
        lane(10, RoadClass::Primary, &[[-8.0, 5.25], [-100.0, 5.25]], 0, 2),
        lane(10, RoadClass::Primary, &[[-8.0, 1.75], [-100.0, 1.75]], 1, 2),
        lane(11, RoadClass::Primary, &[[8.0, -5.25], [100.0, -5.25]], 0, 2),
        lane(11, RoadClass::Primary, &[[8.0, -1.75], [100.0, -1.75]], 1, 2),
        lane(11, RoadClass::Primary, &[[100.0, 5.25], [8.0, 5.25]], 0, 2),
        lane(11, RoadClass::Primary, &[[100.0, 1.75], [8.0, 1.75]], 1, 2),
        // North residential street, one lane each way.
        lane(12, RoadClass::Residential, &[[1.75, 8.0], [1.75, 50.0], [3.0, 80.0]], 0, 1),
        lane(12, RoadClass::Residential, &[[3.0 - 3.5, 80.0], [-1.75, 50.0], [-1.75, 8.0]], 0, 1),
    ];
    lanes[1].turns = vec![Turn::Left, Turn::Straight];
    lanes[0].turns = vec![Turn::Straight, Turn::Right];
    for l in &mut lanes[..2] {
        l.to_junction = Some(0);
        l.signal = Some(0);
    }
    let arc: Vec<P3> = (0..=8)
        .map(|k| {
            let t = k as f64 / 8.0 * std::f64::consts::FRAC_PI_2;
            [-8.0 + 9.75 * t.sin(), 8.0 - 9.75 * t.cos(), GROUND_M]
        })
        .collect();
    let lane_connections = vec![
        LaneConnection {
            from_lane: 1,
            to_lane: 8,
            junction: 0,
            turn: Turn::Left,
            length_m: polyline_length_m(&arc),
            path: arc,
            major: true,
        },
        LaneConnection {
            from_lane: 0,
            to_lane: 4,
            junction: 0,
            turn: Turn::Straight,
            path: vec![[-8.0, -5.25, GROUND_M], [8.0, -5.25, GROUND_M]],
            length_m: 16.0,
            major: true,
        },
    ];
    let junctions = vec![Junction {
        source: SourceRef::node(500),
        center: [0.0, 0.0, GROUND_M],
        control: Control::SignalTagged,
        incoming_lanes: vec![0, 1, 6, 7, 9],
        outgoing_lanes: vec![2, 3, 4, 5, 8],
    }];
    let signals = vec![
        Signal {
            source: SourceRef::node(501),
            junction: 0,
            position: [-9.0, -8.5, GROUND_M],
            guessed: false,
            lanes: vec![0, 1],
        },
        Signal {
            source: SourceRef::Derived,
            junction: 0,
            position: [9.0, 8.5, GROUND_M],
            guessed: true,
            lanes: vec![6, 7],
        },
    ];
    let walk_nodes = vec![
        WalkNode { source: SourceRef::Derived, position: [-100.0, 9.0, GROUND_M] },
        WalkNode { source: SourceRef::Derived, position: [-8.0, 9.0, GROUND_M] },
    ];
    let walk_edges = vec![
        walk(WalkKind::Sidewalk, &[[-100.0, 9.0], [-8.0, 9.0]], 2.5, false),
        walk(WalkKind::Sidewalk, &[[-100.0, -9.0], [-8.0, -9.0]], 2.5, false),
        walk(WalkKind::Sidewalk, &[[8.0, -9.0], [100.0, -9.0]], 2.5, false),
        walk(WalkKind::Sidewalk, &[[8.0, 9.0], [100.0, 9.0]], 2.5, false),
        walk(WalkKind::Crossing, &[[-11.0, -9.0], [-11.0, 9.0]], 3.0, true),
        walk(WalkKind::Crossing, &[[11.0, -9.0], [11.0, 9.0]], 3.0, false),
        walk(WalkKind::Footway, &[[-95.0, 65.0], [-80.0, 75.0], [-50.0, 95.0]], 2.0, false),
        walk(WalkKind::Steps, &[[-30.0, 9.0], [-30.0, 14.0]], 2.0, false),
    ];
    let land = |id: i64, kind: LandKind, geometry: LandGeometry| LandCover {
        source: SourceRef::way(id),
        kind,
        name: None,
        geometry,
    };
    let land_cover = vec![
        land(
            4001,
            LandKind::Water,
            LandGeometry::Area(Polygon {
                exterior: vec![[10.0, 60.0], [100.0, 55.0], [100.0, 100.0], [15.0, 100.0]],
                holes: vec![],
            }),
        ),
        land(
            4002,
            LandKind::Park,
            LandGeometry::Area(Polygon {
                exterior: rect(-100.0, 60.0, -30.0, 100.0),
                holes: vec![vec![[-70.0, 75.0], [-70.0, 85.0], [-60.0, 85.0], [-60.0, 75.0]]],
            }),
        ),
        land(
            4003,
            LandKind::Forest,
            LandGeometry::Area(Polygon { exterior: rect(-100.0, 80.0, -85.0, 100.0), holes: vec![] }),
        ),
        land(4004, LandKind::Rail, LandGeometry::Line { points: vec![[-100.0, -70.0], [100.0, -70.0]], width_m: 4.0 }),
        land(
            4005,
            LandKind::Parking,
            LandGeometry::Area(Polygon { exterior: rect(-20.0, -40.0, -5.0, -20.0), holes: vec![] }),
        ),
        land(
            4006,
            LandKind::Grass,
            LandGeometry::Area(Polygon { exterior: rect(0.0, -62.0, 15.0, -52.0), holes: vec![] }),
        ),
    ];
    let frame = swm_core::LocalFrame::new(LatLon::new(37.525, 126.925));
    let sw = frame.wgs84_from_enu([-100.0, -72.0]);
    let ne = frame.wgs84_from_enu([100.0, 100.0]);
    Twin {
        meta: TwinMeta {
            name: "export-test".into(),
            origin_wgs84: Some(LatLon::new(37.525, 126.925)),
            bbox_wgs84: [sw.lon_deg, sw.lat_deg, ne.lon_deg, ne.lat_deg],
            bbox_m: [-100.0, -72.0, 100.0, 100.0],
            sources: vec!["hand-built".into()],
            built_by: "swm test".into(),
        },
        terrain: Terrain::Flat { elevation_m: GROUND_M },
        buildings,
        building_parts,
        lanes,
        lane_connections,
        junctions,
        signals,
        walk_nodes,
        walk_edges,
        land_cover,
        height_model: HeightModel::default(),
    }
}
