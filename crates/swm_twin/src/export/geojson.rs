//! GeoJSON export: one RFC 7946 `FeatureCollection` in WGS84.
//!
//! Features come in a fixed order: buildings, building parts, lanes, lane connections,
//! junctions, signals, walk edges, land cover; within a class, in the twin's order. Every
//! feature has a `kind` property naming its class and an `index` into the twin's list of
//! that class (lane connections, signals and parts refer to other objects by these indices).
//! Coordinates are `[lon, lat]` rounded to 7 decimals (about a centimetre); polygons have
//! closed rings, exteriors counter-clockwise and holes clockwise. Elevations are in the
//! properties, never in the coordinates (RFC 7946 altitudes are ellipsoidal; the twin's are
//! above sea level). A geometry that cannot be written (fewer than two distinct points,
//! a degenerate ring) is `null`, so feature counts always match the twin.

use super::geometry::{clean_polygon, clean_polyline3};
use crate::{Building, LandGeometry, P2, P3, Polygon, Twin, TwinError};
use serde_json::{Map, Value, json};
use std::path::Path;
use swm_core::{Crs, LocalFrame};

/// Decimal places kept in coordinates (1e-7 deg is about 1 cm).
const COORD_DECIMALS: i32 = 7;

/// Where coordinates go: WGS84 (RFC 7946) or a projected CRS.
struct Out {
    frame: LocalFrame,
    crs: Crs,
}

impl Out {
    fn wgs84_from_enu(&self, p: P2) -> swm_core::LatLon {
        self.frame.wgs84_from_enu(p)
    }
}

/// The whole twin as one GeoJSON `FeatureCollection` (see the module docs).
pub fn to_geojson(twin: &Twin) -> Value {
    to_geojson_in(twin, Crs::Wgs84)
}

/// The twin as a `FeatureCollection` in `crs`. For EPSG:4326 this is [`to_geojson`]; for a
/// projected CRS (EPSG:5186, 5179, 32652) coordinates are `[easting, northing]` in metres
/// rounded to the millimetre, and the collection carries the legacy (GeoJSON 2008) `crs`
/// member naming it, which GDAL and QGIS read.
pub fn to_geojson_in(twin: &Twin, crs: Crs) -> Value {
    let frame = Out { frame: twin.meta.frame(), crs };
    let mut features = Vec::new();
    for (i, b) in twin.buildings.iter().enumerate() {
        let mut props = building_props(b, "building", i);
        props.insert("parts".into(), json!(b.parts));
        props.insert("parts_replace_outline".into(), json!(b.parts_replace_outline));
        features.push(feature(polygon_geometry(&frame, &b.footprint), props));
    }
    for (i, b) in twin.building_parts.iter().enumerate() {
        let mut props = building_props(b, "building_part", i);
        props.insert("parent".into(), json!(b.parent));
        features.push(feature(polygon_geometry(&frame, &b.footprint), props));
    }
    for (i, l) in twin.lanes.iter().enumerate() {
        let props = obj(json!({
            "kind": "lane",
            "index": i,
            "osm_id": l.source.to_string(),
            "name": l.name,
            "road_class": l.road_class.as_str(),
            "speed_limit_mps": l.speed_limit_mps,
            "speed_limit_tagged": l.speed_limit_tagged,
            "width_m": l.width_m,
            "length_m": l.length_m,
            "forward": l.forward,
            "lane_index": l.index_from_right,
            "lanes_in_direction": l.lanes_in_direction,
            "from_junction": l.from_junction,
            "to_junction": l.to_junction,
            "left": l.left,
            "right": l.right,
            "turns": l.turns.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "stop_line": l.stop_line.as_ref().map(|s| json!({
                "s_m": s.s_m,
                "kind": match s.kind {
                    crate::StopKind::Signal => "signal",
                    crate::StopKind::Stop => "stop",
                    crate::StopKind::Yield => "yield",
                },
            })),
            "signal": l.signal,
        }));
        features.push(feature(line_geometry(&frame, &l.centerline), props));
    }
    for (i, c) in twin.lane_connections.iter().enumerate() {
        let props = obj(json!({
            "kind": "lane_connection",
            "index": i,
            "from_lane": c.from_lane,
            "to_lane": c.to_lane,
            "junction": c.junction,
            "turn": c.turn.as_str(),
            "length_m": c.length_m,
            "major": c.major,
        }));
        features.push(feature(line_geometry(&frame, &c.path), props));
    }
    for (i, j) in twin.junctions.iter().enumerate() {
        let props = obj(json!({
            "kind": "junction",
            "index": i,
            "osm_id": j.source.to_string(),
            "control": j.control.as_str(),
            "elevation_m": j.center[2],
            "incoming_lanes": j.incoming_lanes,
            "outgoing_lanes": j.outgoing_lanes,
        }));
        features.push(feature(point_geometry(&frame, j.center), props));
    }
    for (i, s) in twin.signals.iter().enumerate() {
        let props = obj(json!({
            "kind": "signal",
            "index": i,
            "osm_id": s.source.to_string(),
            "junction": s.junction,
            "guessed": s.guessed,
            "elevation_m": s.position[2],
            "lanes": s.lanes,
        }));
        features.push(feature(point_geometry(&frame, s.position), props));
    }
    for (i, e) in twin.walk_edges.iter().enumerate() {
        let props = obj(json!({
            "kind": "walk_edge",
            "index": i,
            "osm_id": e.source.to_string(),
            "walk_kind": e.kind.as_str(),
            "signalled": e.signalled,
            "from": e.from,
            "to": e.to,
            "width_m": e.width_m,
            "length_m": e.length_m,
        }));
        features.push(feature(line_geometry(&frame, &e.polyline), props));
    }
    for (i, lc) in twin.land_cover.iter().enumerate() {
        let mut props = obj(json!({
            "kind": "land_cover",
            "index": i,
            "osm_id": lc.source.to_string(),
            "class": lc.kind.as_str(),
            "name": lc.name,
        }));
        let geometry = match &lc.geometry {
            LandGeometry::Area(poly) => polygon_geometry(&frame, poly),
            LandGeometry::Line { points, width_m } => {
                props.insert("width_m".into(), json!(width_m));
                let p3: Vec<P3> = points.iter().map(|p| [p[0], p[1], 0.0]).collect();
                line_geometry(&frame, &p3)
            }
        };
        features.push(feature(geometry, props));
    }
    let mut fc = json!({
        "type": "FeatureCollection",
        "name": twin.meta.name,
        "features": features,
    });
    if frame.crs != Crs::Wgs84 {
        fc["crs"] =
            json!({ "type": "name", "properties": { "name": format!("urn:ogc:def:crs:EPSG::{}", frame.crs.epsg()) } });
    }
    fc
}

/// Writes [`to_geojson`] to `path`.
pub fn write_geojson(twin: &Twin, path: &Path) -> Result<(), TwinError> {
    write_geojson_in(twin, Crs::Wgs84, path)
}

/// Writes [`to_geojson_in`] to `path`.
pub fn write_geojson_in(twin: &Twin, crs: Crs, path: &Path) -> Result<(), TwinError> {
    let bytes = serde_json::to_vec(&to_geojson_in(twin, crs))
        .map_err(|e| TwinError::Export { path: path.display().to_string(), message: e.to_string() })?;
    super::write_bytes(path, &bytes)?;
    tracing::debug!(path = %path.display(), bytes = bytes.len(), "wrote GeoJSON");
    Ok(())
}

fn building_props(b: &Building, kind: &str, index: usize) -> Map<String, Value> {
    obj(json!({
        "kind": kind,
        "index": index,
        "osm_id": b.source.to_string(),
        "building": b.kind,
        "name": b.name,
        "height_m": b.height_m,
        "min_height_m": b.min_height_m,
        "height_source": b.height_source.as_str(),
        "levels": b.levels,
        "roof_shape": b.roof.shape.as_str(),
        "roof_height_m": b.roof.height_m,
        "base_elevation_m": b.base_elevation_m,
        "colour": b.colour,
    }))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn feature(geometry: Value, properties: Map<String, Value>) -> Value {
    json!({ "type": "Feature", "geometry": geometry, "properties": properties })
}

fn round_deg(v: f64) -> f64 {
    let k = 10f64.powi(COORD_DECIMALS);
    (v * k).round() / k
}

fn lon_lat(out: &Out, p: P2) -> Value {
    let ll = out.wgs84_from_enu(p);
    match out.crs {
        Crs::Wgs84 => json!([round_deg(ll.lon_deg), round_deg(ll.lat_deg)]),
        crs => {
            let xy = crs.from_wgs84(ll);
            json!([(xy[0] * 1000.0).round() / 1000.0, (xy[1] * 1000.0).round() / 1000.0])
        }
    }
}

fn point_geometry(frame: &Out, p: P3) -> Value {
    if p.iter().all(|v| v.is_finite()) {
        json!({ "type": "Point", "coordinates": lon_lat(frame, [p[0], p[1]]) })
    } else {
        Value::Null
    }
}

fn line_geometry(frame: &Out, points: &[P3]) -> Value {
    let pts = clean_polyline3(points);
    if pts.len() < 2 {
        return Value::Null;
    }
    let coords: Vec<Value> = pts.iter().map(|p| lon_lat(frame, [p[0], p[1]])).collect();
    json!({ "type": "LineString", "coordinates": coords })
}

fn polygon_geometry(frame: &Out, poly: &Polygon) -> Value {
    let Some(clean) = clean_polygon(poly) else {
        return Value::Null;
    };
    let rings: Vec<Value> = clean
        .rings()
        .map(|r| {
            let mut coords: Vec<Value> = r.iter().map(|p| lon_lat(frame, *p)).collect();
            coords.push(lon_lat(frame, r[0]));
            Value::Array(coords)
        })
        .collect();
    json!({ "type": "Polygon", "coordinates": rings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_twin::test_twin;
    use swm_core::LatLon;

    fn features_of_kind<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
        v["features"].as_array().expect("features").iter().filter(|f| f["properties"]["kind"] == kind).collect()
    }

    fn ring_signed_area_deg2(ring: &[Value]) -> f64 {
        let pts: Vec<P2> = ring.iter().map(|c| [c[0].as_f64().expect("lon"), c[1].as_f64().expect("lat")]).collect();
        Polygon::ring_signed_area_m2(&pts[..pts.len() - 1])
    }

    #[test]
    fn feature_collection_has_every_object_in_order() {
        let twin = test_twin();
        let v = to_geojson(&twin);
        assert_eq!(v["type"], "FeatureCollection");
        let kinds: Vec<&str> =
            v["features"].as_array().unwrap().iter().map(|f| f["properties"]["kind"].as_str().unwrap()).collect();
        let expected: Vec<&str> = std::iter::empty()
            .chain(std::iter::repeat_n("building", twin.buildings.len()))
            .chain(std::iter::repeat_n("building_part", twin.building_parts.len()))
            .chain(std::iter::repeat_n("lane", twin.lanes.len()))
            .chain(std::iter::repeat_n("lane_connection", twin.lane_connections.len()))
            .chain(std::iter::repeat_n("junction", twin.junctions.len()))
            .chain(std::iter::repeat_n("signal", twin.signals.len()))
            .chain(std::iter::repeat_n("walk_edge", twin.walk_edges.len()))
            .chain(std::iter::repeat_n("land_cover", twin.land_cover.len()))
            .collect();
        assert_eq!(kinds, expected);
        assert!(twin.lane_connections.len() + twin.signals.len() + twin.building_parts.len() > 0);
        // Deterministic.
        assert_eq!(serde_json::to_string(&v).unwrap(), serde_json::to_string(&to_geojson(&twin)).unwrap());
    }

    #[test]
    fn building_properties() {
        let twin = test_twin();
        let v = to_geojson(&twin);
        let buildings = features_of_kind(&v, "building");
        for (f, b) in buildings.iter().zip(&twin.buildings) {
            let p = &f["properties"];
            assert_eq!(p["osm_id"], b.source.to_string());
            assert_eq!(p["building"], b.kind.as_str());
            assert_eq!(p["height_m"].as_f64(), Some(b.height_m));
            assert_eq!(p["min_height_m"].as_f64(), Some(b.min_height_m));
            assert_eq!(p["height_source"], b.height_source.as_str());
            assert_eq!(p["roof_shape"], b.roof.shape.as_str());
            assert_eq!(p["base_elevation_m"].as_f64(), Some(b.base_elevation_m));
            assert_eq!(p["levels"].as_f64(), b.levels.map(f64::from));
            assert_eq!(p["name"].as_str(), b.name.as_deref());
            assert_eq!(f["geometry"]["type"], "Polygon");
        }
        let first = &buildings[0]["properties"];
        assert_eq!(first["osm_id"], "way/1001");
        assert_eq!(first["height_source"], "tagged");
        let rel = buildings.iter().find(|f| f["properties"]["osm_id"] == "relation/2001").expect("relation");
        assert_eq!(rel["geometry"]["coordinates"].as_array().unwrap().len(), 2, "exterior and one hole");
        let parts = features_of_kind(&v, "building_part");
        assert_eq!(parts.len(), twin.building_parts.len());
        for (f, b) in parts.iter().zip(&twin.building_parts) {
            assert_eq!(f["properties"]["parent"].as_u64(), b.parent.map(u64::from));
            assert_eq!(f["properties"]["kind"], "building_part");
        }
    }

    #[test]
    fn other_properties() {
        let twin = test_twin();
        let v = to_geojson(&twin);
        let lanes = features_of_kind(&v, "lane");
        let l0 = &lanes[0]["properties"];
        assert_eq!(l0["road_class"], twin.lanes[0].road_class.as_str());
        assert_eq!(l0["speed_limit_mps"].as_f64(), Some(twin.lanes[0].speed_limit_mps));
        assert_eq!(l0["width_m"].as_f64(), Some(twin.lanes[0].width_m));
        assert_eq!(l0["lane_index"].as_u64(), Some(u64::from(twin.lanes[0].index_from_right)));
        assert_eq!(l0["osm_id"], twin.lanes[0].source.to_string());
        assert!(lanes.iter().any(|f| !f["properties"]["turns"].as_array().unwrap().is_empty()));
        assert_eq!(lanes[0]["geometry"]["type"], "LineString");
        let junctions = features_of_kind(&v, "junction");
        assert_eq!(junctions[0]["geometry"]["type"], "Point");
        assert_eq!(junctions[0]["properties"]["control"], twin.junctions[0].control.as_str());
        let signals = features_of_kind(&v, "signal");
        assert_eq!(signals[0]["properties"]["guessed"].as_bool(), Some(twin.signals[0].guessed));
        let walks = features_of_kind(&v, "walk_edge");
        assert!(walks.iter().any(
            |f| f["properties"]["walk_kind"] == "crossing" && f["properties"]["signalled"].as_bool() == Some(true)
        ));
        let lc = features_of_kind(&v, "land_cover");
        let classes: Vec<&str> = lc.iter().map(|f| f["properties"]["class"].as_str().unwrap()).collect();
        assert!(classes.contains(&"water") && classes.contains(&"park") && classes.contains(&"rail"));
        let conns = features_of_kind(&v, "lane_connection");
        assert_eq!(conns[0]["properties"]["turn"], twin.lane_connections[0].turn.as_str());
    }

    #[test]
    fn polygons_follow_rfc7946_winding_and_are_closed() {
        let mut twin = test_twin();
        // A clockwise exterior in the input must still come out counter-clockwise.
        twin.buildings[0].footprint.exterior.reverse();
        let v = to_geojson(&twin);
        for f in v["features"].as_array().unwrap() {
            if f["geometry"]["type"] != "Polygon" {
                continue;
            }
            let rings = f["geometry"]["coordinates"].as_array().unwrap();
            for (k, ring) in rings.iter().enumerate() {
                let ring = ring.as_array().unwrap();
                assert!(ring.len() >= 4);
                assert_eq!(ring.first(), ring.last(), "closed ring");
                let a = ring_signed_area_deg2(ring);
                if k == 0 {
                    assert!(a > 0.0, "exterior counter-clockwise");
                } else {
                    assert!(a < 0.0, "hole clockwise");
                }
            }
        }
    }

    #[test]
    fn coordinates_round_trip_through_the_frame() {
        let twin = test_twin();
        let frame = twin.meta.frame();
        let v = to_geojson(&twin);
        let buildings = features_of_kind(&v, "building");
        for (f, b) in buildings.iter().zip(&twin.buildings) {
            let ext = f["geometry"]["coordinates"][0].as_array().unwrap();
            // Every input vertex has an output vertex within 1e-6 deg, and back.
            for p in &b.footprint.exterior {
                let ll = frame.wgs84_from_enu(*p);
                assert!(ext.iter().any(|c| (c[0].as_f64().unwrap() - ll.lon_deg).abs() < 1e-6
                    && (c[1].as_f64().unwrap() - ll.lat_deg).abs() < 1e-6));
            }
            for c in ext {
                let en = frame.enu_from_wgs84(LatLon::new(c[1].as_f64().unwrap(), c[0].as_f64().unwrap()));
                assert!(
                    b.footprint.exterior.iter().any(|p| (p[0] - en[0]).abs() < 0.05 && (p[1] - en[1]).abs() < 0.05)
                );
            }
        }
        let lanes = features_of_kind(&v, "lane");
        let c0 = &lanes[0]["geometry"]["coordinates"][0];
        let ll = frame.wgs84_from_enu([twin.lanes[0].centerline[0][0], twin.lanes[0].centerline[0][1]]);
        assert!((c0[0].as_f64().unwrap() - ll.lon_deg).abs() < 1e-6);
        assert!((c0[1].as_f64().unwrap() - ll.lat_deg).abs() < 1e-6);
        // The origin maps to the origin.
        assert!((ll.lat_deg - 37.525).abs() < 0.01 && (ll.lon_deg - 126.925).abs() < 0.01);
    }

    #[test]
    fn projected_output_round_trips_through_the_crs() {
        let twin = test_twin();
        let frame = twin.meta.frame();
        let v = to_geojson_in(&twin, Crs::Korea2000CentralBelt2010);
        assert_eq!(v["crs"]["properties"]["name"], "urn:ogc:def:crs:EPSG::5186");
        let b = &features_of_kind(&v, "building")[0];
        let c = &b["geometry"]["coordinates"][0][0];
        let xy = [c[0].as_f64().unwrap(), c[1].as_f64().unwrap()];
        let ll = Crs::Korea2000CentralBelt2010.to_wgs84(xy).unwrap();
        let en = frame.enu_from_wgs84(ll);
        let p = twin.buildings[0]
            .footprint
            .exterior
            .iter()
            .map(|p| ((p[0] - en[0]).powi(2) + (p[1] - en[1]).powi(2)).sqrt());
        assert!(p.fold(f64::INFINITY, f64::min) < 2e-3, "a vertex within 2 mm after EPSG:5186 and back");
        assert!(to_geojson(&twin).get("crs").is_none(), "RFC 7946 output has no crs member");
    }

    #[test]
    fn degenerate_geometry_is_null_and_file_is_written() {
        let mut twin = test_twin();
        twin.lanes[0].centerline.truncate(1);
        twin.buildings[0].footprint.exterior = vec![[0.0, 0.0], [f64::NAN, 1.0]];
        let v = to_geojson(&twin);
        assert!(features_of_kind(&v, "lane")[0]["geometry"].is_null());
        assert!(features_of_kind(&v, "building")[0]["geometry"].is_null());
        let path = std::env::temp_dir().join(format!("swm_export_test_{}.geojson", std::process::id()));
        write_geojson(&twin, &path).expect("write");
        let back: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back["features"].as_array().map(Vec::len), v["features"].as_array().map(Vec::len));
        assert_eq!(back["features"][1]["properties"], v["features"][1]["properties"]);
        let _ = std::fs::remove_file(&path);
        let bad = std::env::temp_dir().join("swm_no_such_dir_xyz").join("a.geojson");
        assert!(matches!(write_geojson(&twin, &bad), Err(TwinError::Io { .. })));
    }
}
