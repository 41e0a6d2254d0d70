//! Import of SUMO floating car data (`sumo --fcd-output FILE.xml`) as trajectories.
//!
//! ```xml
//! <fcd-export>
//!   <timestep time="0.00">
//!     <vehicle id="veh0" x="100.00" y="50.00" angle="90.00" type="passenger" speed="13.89"
//!              pos="5.10" lane="e1_0" slope="0.00"/>
//!     <person id="p0" x="120.00" y="42.00" angle="180.00" speed="1.20" pos="3.0" edge="e2"/>
//!   </timestep>
//! </fcd-export>
//! ```
//!
//! * **Coordinates** ([`FcdCoordinates`]): SUMO net coordinates are projected coordinates
//!   plus the net's `netOffset`; with `--fcd-output.geo` `x`/`y` are longitude/latitude.
//!   Both are converted into the twin's frame (which needs `TwinMeta::origin_wgs84`).
//! * **Heading**: SUMO's `angle` is degrees clockwise from north; records hold radians
//!   counter-clockwise from east: `heading = 90° - angle`, wrapped to (-π, π].
//! * **Ids**: SUMO ids are strings; agents get run ids 0, 1, 2, ... in order of first
//!   appearance ([`FcdTrajectories::agent_names`] maps them back).
//! * **Kinds**: `<person>` is a pedestrian; a vehicle `type` containing `bus` is a bus,
//!   `truck`, `trailer`, `lorry` or `delivery` a truck, anything else a car. `<container>`
//!   elements are skipped.
//! * **Sizes**: `length`/`width` attributes when the FCD has them, else the kind's typical
//!   size ([`typical_size_m`]).
//! * **Elevation**: the `z` attribute of 3D nets, else 0. **Acceleration**: the
//!   `acceleration` attribute when present, else the speed difference to the agent's
//!   previous record over the time between them (0 at its first record).
//! * `lane` and `signal` are left empty: SUMO's lane ids do not name twin lanes.
//! * `step` is `round(time / 0.1 s)`, the simulator's step at that time.

use std::collections::BTreeMap;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use swm_core::{Crs, LatLon, LocalFrame};
use swm_sim::{AgentKind, DT_S, TrajectoryRecord};
use swm_twin::Twin;

use crate::DatasetError;

/// How the `x`/`y` of an FCD file relate to the twin frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum FcdCoordinates {
    /// Already in the twin frame (a SUMO net built from the twin, without offset).
    #[default]
    Twin,
    /// Longitude/latitude in degrees (`--fcd-output.geo`).
    Geo,
    /// SUMO net coordinates: `x - net_offset_m` is in `projection` (`None`: the twin frame).
    Net { net_offset_m: [f64; 2], projection: Option<Crs> },
}

impl FcdCoordinates {
    /// Reads `<location netOffset="X,Y" projParameter="..."/>` from a SUMO `.net.xml`.
    pub fn from_net_file(path: &Path) -> Result<FcdCoordinates, DatasetError> {
        let text = std::fs::read_to_string(path).map_err(DatasetError::io(path))?;
        let lines = LineIndex::new(&text);
        let mut reader = quick_xml::Reader::from_str(&text);
        loop {
            let pos = reader.buffer_position() as usize;
            let ev = reader.read_event().map_err(|e| DatasetError::Fcd {
                path: path.to_path_buf(),
                line: lines.line(reader.error_position() as usize),
                message: format!("XML error: {e}"),
            })?;
            match ev {
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"location" => {
                    let line = lines.line(pos);
                    let attrs = Attrs::of(&e, path, line)?;
                    let fail = |message: String| DatasetError::Fcd { path: path.to_path_buf(), line, message };
                    let off = attrs.get("netOffset").unwrap_or("0,0");
                    let v: Vec<f64> = off.split(',').filter_map(|s| s.trim().parse().ok()).collect();
                    let [ox, oy] = v[..] else { return Err(fail(format!("netOffset {off:?} is not X,Y"))) };
                    let projection = parse_proj(attrs.get("projParameter").unwrap_or("!")).map_err(fail)?;
                    return Ok(FcdCoordinates::Net { net_offset_m: [ox, oy], projection });
                }
                Event::Eof => {
                    return Err(DatasetError::Fcd {
                        path: path.to_path_buf(),
                        line: lines.line(text.len()),
                        message: "no <location> element (is this a SUMO .net.xml?)".to_string(),
                    });
                }
                _ => {}
            }
        }
    }
}

/// The CRS of a SUMO `projParameter` (`!` is none: net coordinates are local).
pub fn parse_proj(p: &str) -> Result<Option<Crs>, String> {
    let p = p.trim();
    if p == "!" || p.is_empty() {
        return Ok(None);
    }
    if let Ok(c) = Crs::parse(p) {
        return Ok(Some(c));
    }
    let has = |k: &str| p.split_whitespace().any(|t| t == k);
    let value = |k: &str| p.split_whitespace().find_map(|t| t.strip_prefix(k)).and_then(|v| v.parse::<f64>().ok());
    if has("+proj=utm") && value("+zone=") == Some(52.0) && !has("+south") {
        return Ok(Some(Crs::Utm52N));
    }
    if has("+proj=tmerc") {
        match (value("+lon_0="), value("+lat_0="), value("+y_0=")) {
            (Some(127.0), Some(38.0), Some(600000.0)) => return Ok(Some(Crs::Korea2000CentralBelt2010)),
            (Some(127.5), Some(38.0), Some(2000000.0)) => return Ok(Some(Crs::Korea2000Unified)),
            _ => {}
        }
    }
    Err(format!("unsupported projParameter {p:?} (supported: UTM zone 52N, EPSG:5186, EPSG:5179, or \"!\" for none)"))
}

/// Typical `(length_m, width_m)` of an agent kind.
pub fn typical_size_m(kind: AgentKind) -> (f32, f32) {
    match kind {
        AgentKind::Car => (4.5, 1.8),
        AgentKind::Bus => (12.0, 2.5),
        AgentKind::Truck => (8.0, 2.5),
        AgentKind::Pedestrian => (0.5, 0.5),
    }
}

fn kind_of_type(ty: &str) -> AgentKind {
    let t = ty.to_ascii_lowercase();
    if t.contains("bus") {
        AgentKind::Bus
    } else if ["truck", "trailer", "lorry", "delivery"].iter().any(|k| t.contains(k)) {
        AgentKind::Truck
    } else {
        AgentKind::Car
    }
}

/// Trajectories read from an FCD file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FcdTrajectories {
    /// Ordered by step, then run id.
    pub records: Vec<TrajectoryRecord>,
    /// SUMO id of every run id (position = run id).
    pub agent_names: Vec<String>,
    pub timesteps: u64,
}

/// Byte offset -> 1-based line number.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        LineIndex(std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }
    fn line(&self, pos: usize) -> u64 {
        self.0.partition_point(|&s| s <= pos) as u64
    }
}

/// The attributes of one element, unescaped.
struct Attrs(BTreeMap<String, String>);

impl Attrs {
    fn of(e: &BytesStart, path: &Path, line: u64) -> Result<Attrs, DatasetError> {
        let mut m = BTreeMap::new();
        for a in e.attributes() {
            let a = a.map_err(|err| DatasetError::Fcd {
                path: path.to_path_buf(),
                line,
                message: format!("bad attribute: {err}"),
            })?;
            let v = a.unescape_value().map_err(|err| DatasetError::Fcd {
                path: path.to_path_buf(),
                line,
                message: format!("bad attribute value: {err}"),
            })?;
            m.insert(String::from_utf8_lossy(a.key.as_ref()).into_owned(), v.into_owned());
        }
        Ok(Attrs(m))
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
}

/// Reads a SUMO FCD file into records in `twin`'s frame.
pub fn read_sumo_fcd(path: &Path, coords: FcdCoordinates, twin: &Twin) -> Result<FcdTrajectories, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(DatasetError::io(path))?;
    parse_sumo_fcd(&text, path, coords, twin)
}

/// Parses FCD XML text (`path` names it in errors).
pub fn parse_sumo_fcd(
    text: &str,
    path: &Path,
    coords: FcdCoordinates,
    twin: &Twin,
) -> Result<FcdTrajectories, DatasetError> {
    let frame = twin.meta.origin_wgs84.map(LocalFrame::new);
    let needs_frame = match coords {
        FcdCoordinates::Geo | FcdCoordinates::Net { projection: Some(_), .. } => true,
        FcdCoordinates::Twin | FcdCoordinates::Net { projection: None, .. } => false,
    };
    if needs_frame && frame.is_none() {
        return Err(DatasetError::Frame(format!(
            "{}: geographic FCD coordinates need a twin with a WGS84 origin; twin {:?} has none",
            path.display(),
            twin.meta.name
        )));
    }
    let lines = LineIndex::new(text);
    let mut reader = quick_xml::Reader::from_str(text);
    let mut ids: BTreeMap<String, u64> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut last: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let mut time: Option<f64> = None;
    let mut step_records: Vec<TrajectoryRecord> = Vec::new();
    let mut out = FcdTrajectories::default();
    let mut seen_root = false;
    let flush = |step_records: &mut Vec<TrajectoryRecord>, out: &mut FcdTrajectories| {
        step_records.sort_by_key(|r| r.agent_id);
        out.records.append(step_records);
    };
    loop {
        let pos = reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(|e| DatasetError::Fcd {
            path: path.to_path_buf(),
            line: lines.line(reader.error_position() as usize),
            message: format!("XML error: {e}"),
        })?;
        let line = lines.line(pos + 1);
        let fail = |message: String| DatasetError::Fcd { path: path.to_path_buf(), line, message };
        match ev {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name().as_ref().to_vec();
                match name.as_slice() {
                    b"fcd-export" => seen_root = true,
                    b"timestep" => {
                        let a = Attrs::of(&e, path, line)?;
                        let t = num(&a, "time", &fail)?;
                        if let Some(prev) = time
                            && t < prev
                        {
                            return Err(fail(format!("timestep time {t} goes back (previous {prev})")));
                        }
                        flush(&mut step_records, &mut out);
                        time = Some(t);
                        out.timesteps += 1;
                    }
                    b"vehicle" | b"person" => {
                        let Some(t) = time else {
                            return Err(fail(format!("<{}> outside a <timestep>", String::from_utf8_lossy(&name))));
                        };
                        let a = Attrs::of(&e, path, line)?;
                        let sumo_id = a.get("id").ok_or_else(|| fail("missing attribute \"id\"".to_string()))?;
                        let kind = if name == b"person" {
                            AgentKind::Pedestrian
                        } else {
                            kind_of_type(a.get("type").unwrap_or(""))
                        };
                        let id = match ids.get(sumo_id) {
                            Some(id) => *id,
                            None => {
                                let id = names.len() as u64;
                                ids.insert(sumo_id.to_string(), id);
                                names.push(sumo_id.to_string());
                                id
                            }
                        };
                        let (x, y) = (num(&a, "x", &fail)?, num(&a, "y", &fail)?);
                        let xy = convert(coords, frame.as_ref(), x, y).map_err(fail)?;
                        let angle_deg = num(&a, "angle", &fail)?;
                        let speed = opt_num(&a, "speed", &fail)?.unwrap_or(0.0);
                        let accel = match opt_num(&a, "acceleration", &fail)? {
                            Some(v) => v,
                            None => match last.get(&id) {
                                Some((pt, pv)) if t > *pt => (speed - pv) / (t - pt),
                                _ => 0.0,
                            },
                        };
                        last.insert(id, (t, speed));
                        let (dl, dw) = typical_size_m(kind);
                        let length_m = opt_num(&a, "length", &fail)?.map_or(dl, |v| v as f32);
                        let width_m = opt_num(&a, "width", &fail)?.map_or(dw, |v| v as f32);
                        let heading = (90.0 - angle_deg).to_radians();
                        let heading_rad = heading.sin().atan2(heading.cos());
                        let record = TrajectoryRecord {
                            agent_id: id,
                            kind,
                            length_m,
                            width_m,
                            step: (t / DT_S).round().max(0.0) as u32,
                            time_s: t,
                            x_m: xy[0],
                            y_m: xy[1],
                            z_m: opt_num(&a, "z", &fail)?.unwrap_or(0.0),
                            heading_rad,
                            speed_mps: speed,
                            accel_mps2: accel,
                            lane: None,
                            signal: None,
                        };
                        // What the Parquet readers would refuse is refused here, at its line.
                        crate::trajectories::check_record(&record).map_err(|m| fail(format!("{sumo_id}: {m}")))?;
                        step_records.push(record);
                    }
                    _ => {}
                }
            }
            Event::End(e) if e.name().as_ref() == b"timestep" => {
                flush(&mut step_records, &mut out);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    flush(&mut step_records, &mut out);
    if !seen_root {
        return Err(DatasetError::Fcd {
            path: path.to_path_buf(),
            line: 1,
            message: "no <fcd-export> element (is this a SUMO --fcd-output file?)".to_string(),
        });
    }
    out.agent_names = names;
    tracing::debug!(path = %path.display(), records = out.records.len(), agents = out.agent_names.len(), "FCD read");
    Ok(out)
}

fn opt_num(a: &Attrs, k: &str, fail: &dyn Fn(String) -> DatasetError) -> Result<Option<f64>, DatasetError> {
    match a.get(k) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(fail(format!("attribute {k}={v:?} is not a number"))),
        },
    }
}

fn num(a: &Attrs, k: &str, fail: &dyn Fn(String) -> DatasetError) -> Result<f64, DatasetError> {
    opt_num(a, k, fail)?.ok_or_else(|| fail(format!("missing attribute {k:?}")))
}

fn convert(coords: FcdCoordinates, frame: Option<&LocalFrame>, x: f64, y: f64) -> Result<[f64; 2], String> {
    match coords {
        FcdCoordinates::Twin => Ok([x, y]),
        FcdCoordinates::Net { net_offset_m, projection: None } => Ok([x - net_offset_m[0], y - net_offset_m[1]]),
        FcdCoordinates::Net { net_offset_m, projection: Some(crs) } => {
            let ll = crs.to_wgs84([x - net_offset_m[0], y - net_offset_m[1]]).map_err(|e| e.to_string())?;
            Ok(frame.ok_or("no twin frame")?.enu_from_wgs84(ll))
        }
        FcdCoordinates::Geo => {
            let ll = LatLon::new(y, x);
            if !ll.is_valid() {
                return Err(format!("({x}, {y}) is not a longitude/latitude"));
            }
            Ok(frame.ok_or("no twin frame")?.enu_from_wgs84(ll))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FCD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<fcd-export xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
    <timestep time="0.00">
        <vehicle id="veh1" x="110.00" y="50.00" angle="90.00" type="passenger" speed="10.00" pos="5.10" lane="e1_0" slope="0.00"/>
        <vehicle id="bus&amp;1" x="100.00" y="60.00" angle="0.00" type="city_bus" speed="5.00" pos="5.10" lane="e2_0" slope="0.00"/>
    </timestep>
    <timestep time="1.00">
        <vehicle id="veh1" x="120.00" y="50.00" angle="90.00" type="passenger" speed="12.00" pos="15.10" lane="e1_0" slope="0.00"/>
        <person id="p0" x="95.00" y="40.00" angle="225.00" speed="1.20" pos="3.0" edge="e3" slope="0.00"/>
    </timestep>
    <timestep time="2.00"/>
</fcd-export>
"#;

    fn twin() -> Twin {
        let mut t = Twin::default();
        t.meta.origin_wgs84 = Some(LatLon::new(37.5265, 126.9255));
        t
    }

    #[test]
    fn net_coordinates_with_offset() {
        let coords = FcdCoordinates::Net { net_offset_m: [100.0, 50.0], projection: None };
        let t = parse_sumo_fcd(FCD, Path::new("f.xml"), coords, &twin()).unwrap();
        assert_eq!(t.agent_names, vec!["veh1", "bus&1", "p0"]);
        assert_eq!(t.timesteps, 3);
        assert_eq!(t.records.len(), 4);
        let r = &t.records[0];
        assert_eq!((r.agent_id, r.kind, r.x_m, r.y_m), (0, AgentKind::Car, 10.0, 0.0));
        assert!(r.heading_rad.abs() < 1e-12, "east: {}", r.heading_rad);
        let bus = &t.records[1];
        assert_eq!(bus.kind, AgentKind::Bus);
        assert!((bus.heading_rad - std::f64::consts::FRAC_PI_2).abs() < 1e-12, "north");
        let r1 = &t.records[2];
        assert_eq!((r1.step, r1.accel_mps2), (10, 2.0));
        let p = &t.records[3];
        assert_eq!(p.kind, AgentKind::Pedestrian);
        // 225° clockwise from north is south-west: -135° from east.
        assert!((p.heading_rad + 0.75 * std::f64::consts::PI).abs() < 1e-12, "{}", p.heading_rad);
    }

    #[test]
    fn geo_coordinates_convert_with_the_twin_frame() {
        let xml = r#"<fcd-export><timestep time="0.5"><vehicle id="a" x="126.9255" y="37.5265" angle="0" speed="1"/></timestep></fcd-export>"#;
        let t = parse_sumo_fcd(xml, Path::new("g.xml"), FcdCoordinates::Geo, &twin()).unwrap();
        assert!(t.records[0].x_m.abs() < 1e-6 && t.records[0].y_m.abs() < 1e-6);
        let e = parse_sumo_fcd(xml, Path::new("g.xml"), FcdCoordinates::Geo, &Twin::default()).unwrap_err();
        assert!(e.to_string().contains("origin"), "{e}");
    }

    #[test]
    fn errors_name_file_and_line() {
        let xml = "<fcd-export>\n<timestep time=\"0\">\n<vehicle id=\"a\" x=\"oops\" y=\"1\" angle=\"0\"/>\n</timestep>\n</fcd-export>\n";
        let e = parse_sumo_fcd(xml, Path::new("bad.xml"), FcdCoordinates::Twin, &twin()).unwrap_err().to_string();
        assert!(e.starts_with("bad.xml:3:") && e.contains("x=\"oops\""), "{e}");
        let xml = "<fcd-export>\n<vehicle id=\"a\" x=\"0\" y=\"1\" angle=\"0\"/>\n</fcd-export>";
        let e = parse_sumo_fcd(xml, Path::new("bad.xml"), FcdCoordinates::Twin, &twin()).unwrap_err().to_string();
        assert!(e.starts_with("bad.xml:2:") && e.contains("outside"), "{e}");
        let e = parse_sumo_fcd("<net/>", Path::new("n.xml"), FcdCoordinates::Twin, &twin()).unwrap_err().to_string();
        assert!(e.contains("fcd-export"), "{e}");
        // A vehicle of no length, and one reversing: the rules every trajectory file keeps.
        let xml = "<fcd-export>\n<timestep time=\"0\">\n<vehicle id=\"a\" x=\"0\" y=\"1\" angle=\"0\" length=\"0\"/>\n</timestep>\n</fcd-export>";
        let e = parse_sumo_fcd(xml, Path::new("z.xml"), FcdCoordinates::Twin, &twin()).unwrap_err().to_string();
        assert!(e.starts_with("z.xml:3:") && e.contains("a: length_m is 0"), "{e}");
        let xml = "<fcd-export>\n<timestep time=\"0\">\n<vehicle id=\"b\" x=\"0\" y=\"1\" angle=\"0\" speed=\"-2\"/>\n</timestep>\n</fcd-export>";
        let e = parse_sumo_fcd(xml, Path::new("r.xml"), FcdCoordinates::Twin, &twin()).unwrap_err().to_string();
        assert!(e.starts_with("r.xml:3:") && e.contains("b: speed_mps is -2"), "{e}");
        let xml = "<fcd-export>\n<timestep time=\"0\">\n<vehicle id=\"a\" x=\"0\" y=\"1\" angle=\"0\">\n</timestep>";
        let e = parse_sumo_fcd(xml, Path::new("trunc.xml"), FcdCoordinates::Twin, &twin()).unwrap_err().to_string();
        assert!(e.starts_with("trunc.xml:"), "{e}");
    }

    #[test]
    fn projections_of_sumo_nets() {
        assert_eq!(parse_proj("!"), Ok(None));
        assert_eq!(parse_proj("+proj=utm +zone=52 +ellps=WGS84 +datum=WGS84 +units=m +no_defs"), Ok(Some(Crs::Utm52N)));
        assert_eq!(
            parse_proj("+proj=tmerc +lat_0=38 +lon_0=127 +k=1 +x_0=200000 +y_0=600000 +ellps=GRS80 +units=m"),
            Ok(Some(Crs::Korea2000CentralBelt2010))
        );
        assert!(parse_proj("+proj=utm +zone=33").is_err());
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("x.net.xml");
        std::fs::write(
            &net,
            "<net>\n<location netOffset=\"-321000.00,-4155000.00\" convBoundary=\"0,0,1,1\" projParameter=\"+proj=utm +zone=52 +ellps=WGS84 +datum=WGS84 +units=m +no_defs\"/>\n</net>",
        )
        .unwrap();
        let c = FcdCoordinates::from_net_file(&net).unwrap();
        assert_eq!(c, FcdCoordinates::Net { net_offset_m: [-321000.0, -4155000.0], projection: Some(Crs::Utm52N) });
        // A point of the net maps back near the twin origin.
        let en = Crs::Utm52N.from_wgs84(LatLon::new(37.5265, 126.9255));
        let xml = format!(
            "<fcd-export><timestep time=\"0\"><vehicle id=\"a\" x=\"{}\" y=\"{}\" angle=\"0\"/></timestep></fcd-export>",
            en[0] - 321000.0,
            en[1] - 4155000.0
        );
        let t = parse_sumo_fcd(&xml, Path::new("u.xml"), c, &twin()).unwrap();
        assert!(t.records[0].x_m.abs() < 1e-3 && t.records[0].y_m.abs() < 1e-3, "{:?}", t.records[0]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 400, ..Default::default() })]

        /// FCD text with characters changed (to XML's own, digits, signs, letters), cut
        /// short or given odd numbers, in every coordinate mode: records or an error naming
        /// the file, never a panic; every record read keeps the trajectory schema's rules.
        #[test]
        fn damaged_fcd_reads_or_names_the_file(
            edits in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), proptest::sample::select(b"<>/\"=&;.-+e0159 xNaIf".to_vec())),
                0..6,
            ),
            number in proptest::sample::select(vec!["1e308", "-1e308", "nan", "inf", "-0", "1e-320", "99999999", "0x10", ""]),
            field in proptest::sample::select(vec!["x=\"110.00\"", "time=\"1.00\"", "angle=\"0.00\"", "speed=\"5.00\"", "y=\"40.00\""]),
            cut in proptest::option::weighted(0.2, proptest::prelude::any::<proptest::sample::Index>()),
            mode in 0usize..3,
        ) {
            let name = field.split('=').next().unwrap();
            let mut text = FCD.replacen(field, &format!("{name}=\"{number}\""), 1).into_bytes();
            for (at, c) in edits {
                let i = at.index(text.len());
                text[i] = c;
            }
            if let Some(c) = cut {
                text.truncate(c.index(text.len()));
            }
            let text = String::from_utf8(text).unwrap();
            let coords = [
                FcdCoordinates::Twin,
                FcdCoordinates::Net { net_offset_m: [100.0, 50.0], projection: Some(Crs::Utm52N) },
                FcdCoordinates::Geo,
            ][mode];
            match parse_sumo_fcd(&text, Path::new("p.xml"), coords, &twin()) {
                Err(e) => proptest::prop_assert!(e.to_string().starts_with("p.xml"), "{e}"),
                Ok(t) => {
                    for r in &t.records {
                        proptest::prop_assert!(crate::trajectories::check_record(r).is_ok(), "{r:?}");
                    }
                }
            }
        }
    }
}
