//! GeoJSON (and, through `gdal_source`, GDAL) features as OSM-like objects.
//!
//! Every feature of a vector file becomes OSM objects with synthetic ids, so that the one
//! twin builder serves every source:
//!
//! | geometry | OSM objects |
//! | --- | --- |
//! | `Point` / `MultiPoint` | a tagged node per point |
//! | `LineString` / `MultiLineString` | a tagged (open) way per line |
//! | `Polygon` without holes | a tagged closed way |
//! | `Polygon` with holes, `MultiPolygon` | a `type=multipolygon` relation of untagged `outer` / `inner` ways |
//! | `GeometryCollection` | each member as above, all with the feature's tags |
//!
//! Properties become tags (strings as they are, numbers without trailing `.0`, booleans
//! `yes`/`no`, lists of scalars joined with `;`; nested objects are skipped). A
//! [`VectorMapping`] adds the OSM keys the builder understands (`height`,
//! `building:levels`, `min_height`, `building=yes` for building layers...). Every object
//! that stands for a feature is recorded in [`OsmData::origins`] as
//! [`SourceRef::Feature`], so twin objects name the feature they came from.
//!
//! [`add_feature`] is the conversion shared by the GeoJSON reader here and the GDAL reader.

use crate::{
    IngestError, Report,
    osm::{Member, OsmData, Relation, Tags, Way},
};
use geo::{Coord, Geometry, LineString, MapCoords, MultiPolygon, Point, Polygon};
use serde_json::{Map, Value};
use std::path::Path;
use swm_core::{Crs, LatLon, OsmType, SourceRef};

/// What a whole vector layer holds, for layers whose features lack the OSM key that says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FeatureKind {
    /// Polygons are buildings: `building=yes` where a feature has no `building` or
    /// `building:part` tag.
    Buildings,
    /// Lines are roads: `highway=road` (OSM's "road of unknown class") where a feature has
    /// no `highway` tag.
    Roads,
}

/// How vector attributes map to twin properties. Attribute names are tried in order; the
/// first one with a usable value wins.
#[derive(Clone, Debug)]
pub struct VectorMapping {
    /// Attributes holding the height in metres (tag `height`), e.g. the Korean building
    /// register's `HEIGHT`. Zero means "unknown" and is skipped.
    pub height_attributes: Vec<String>,
    /// Attributes holding the number of storeys above ground (tag `building:levels`),
    /// e.g. `GRND_FLR`. Zero means "unknown" and is skipped.
    pub levels_attributes: Vec<String>,
    /// Attributes holding the height of the bottom of the volume in metres (tag `min_height`).
    pub min_height_attributes: Vec<String>,
    /// Attributes holding the feature's name (tag `name`), e.g. the register's `BLD_NM`.
    pub name_attributes: Vec<String>,
    /// What the layer holds. `None` detects buildings per feature: a polygon with a height
    /// or levels attribute and no primary OSM key (`building`, `highway`, `landuse`...)
    /// becomes `building=yes`.
    pub feature_kind: Option<FeatureKind>,
    /// Tags added to every feature that lacks the key (e.g. `("source", "building register")`).
    pub default_tags: Vec<(String, String)>,
    /// The CRS of the coordinates, overriding what the file says (GeoJSON's legacy `crs`
    /// member, a layer's spatial reference). Without either, GeoJSON is EPSG:4326.
    pub crs: Option<Crs>,
}

impl Default for VectorMapping {
    fn default() -> Self {
        Self {
            height_attributes: vec!["height".into(), "HEIGHT".into()],
            levels_attributes: vec!["building:levels".into(), "levels".into(), "GRND_FLR".into()],
            min_height_attributes: vec!["min_height".into(), "MIN_HEIGHT".into()],
            name_attributes: vec!["name".into(), "NAME".into(), "BLD_NM".into(), "BULD_NM".into()],
            feature_kind: None,
            default_tags: Vec::new(),
            crs: None,
        }
    }
}

/// One attribute value of a feature, as the sources hand it over.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    Null,
    Bool(bool),
    Integer(i64),
    Real(f64),
    Text(String),
}

impl AttributeValue {
    /// The OSM tag value: numbers without trailing-zero noise, booleans as `yes`/`no`,
    /// `None` for null.
    pub fn to_tag_value(&self) -> Option<String> {
        match self {
            AttributeValue::Null => None,
            AttributeValue::Bool(b) => Some(if *b { "yes" } else { "no" }.to_string()),
            AttributeValue::Integer(i) => Some(i.to_string()),
            AttributeValue::Real(x) => Some(format_number(*x)),
            AttributeValue::Text(s) => Some(s.clone()),
        }
    }

    /// The value as a number: numbers as they are, text parsed (a trailing unit `m` is
    /// allowed, as in OSM's `height=12 m`). `None` for null, booleans and other text.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            AttributeValue::Integer(i) => Some(*i as f64),
            AttributeValue::Real(x) => Some(*x).filter(|x| x.is_finite()),
            AttributeValue::Text(s) => {
                let t = s.trim();
                let t = t.strip_suffix('m').unwrap_or(t).trim_end();
                t.parse::<f64>().ok().filter(|x| x.is_finite())
            }
            AttributeValue::Null | AttributeValue::Bool(_) => None,
        }
    }
}

/// Formats a number for a tag: integers without a fractional part (`12`, not `12.0`),
/// other values in the shortest form that reads back exactly (`12.5`).
pub fn format_number(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x}") }
}

/// Where features come from, for the objects' [`SourceRef`]s and the report's warnings.
#[derive(Clone, Copy, Debug)]
pub struct FeatureSource<'a> {
    /// The file name (`buildings.geojson`), for warnings.
    pub label: &'a str,
    /// The input's index, as in [`SourceRef::Feature::source`].
    pub source_index: u32,
    pub mapping: &'a VectorMapping,
}

/// Converts a geometry's coordinates from `crs` to WGS84 (`x` = longitude, `y` = latitude,
/// degrees), checking that every point is a valid WGS84 position.
pub fn geometry_to_wgs84(geometry: &Geometry<f64>, crs: Crs) -> Result<Geometry<f64>, String> {
    geometry.try_map_coords(|c: Coord<f64>| match crs.to_wgs84([c.x, c.y]) {
        Ok(ll) => Ok(Coord { x: ll.lon_deg, y: ll.lat_deg }),
        Err(_) if crs == Crs::Wgs84 => Err(format!(
            "coordinate ({}, {}) is not a longitude/latitude in degrees (EPSG:4326); if the data is \
             projected (e.g. EPSG:5186), name its CRS in the file or in the vector mapping",
            c.x, c.y
        )),
        Err(_) => Err(format!("coordinate ({}, {}) is outside the valid area of {crs}", c.x, c.y)),
    })
}

/// Adds one feature (geometry in WGS84: `x` = longitude, `y` = latitude) to `data` as
/// OSM-like objects tagged from `attributes` and `source.mapping`, and records
/// [`SourceRef::Feature`] for each object standing for it. Degenerate parts (a ring with
/// fewer than three distinct points, an empty geometry) are dropped with a warning in
/// `report`. Returns how many objects stand for the feature (0 if it was dropped).
pub fn add_feature(
    data: &mut OsmData,
    source: &FeatureSource<'_>,
    feature_index: u64,
    geometry: &Geometry<f64>,
    attributes: &[(String, AttributeValue)],
    report: &mut Report,
) -> usize {
    let subject = format!("{} feature {feature_index}", source.label);
    let tags = feature_tags(attributes, geometry, source.mapping, &subject, report);
    let origin = SourceRef::Feature { source: source.source_index, index: feature_index };
    let mut emitter = Emitter { data, tags: &tags, origin, subject: &subject, report, objects: 0 };
    emitter.geometry(geometry);
    if emitter.objects == 0 {
        let what = geometry_name(geometry);
        emitter.report.warn(subject.as_str(), format!("{what} has no usable geometry; feature dropped"));
    }
    emitter.objects
}

/// OSM keys that say what a feature is; a feature with one of them is not guessed to be a
/// building.
const PRIMARY_KEYS: [&str; 14] = [
    "building",
    "building:part",
    "highway",
    "railway",
    "waterway",
    "landuse",
    "natural",
    "leisure",
    "amenity",
    "man_made",
    "area:highway",
    "barrier",
    "water",
    "type",
];

fn feature_tags(
    attributes: &[(String, AttributeValue)],
    geometry: &Geometry<f64>,
    mapping: &VectorMapping,
    subject: &str,
    report: &mut Report,
) -> Tags {
    let mut tags = Tags::new();
    for (key, value) in attributes {
        if let Some(v) = value.to_tag_value() {
            tags.insert(key.as_str(), v);
        }
    }
    let find = |name: &str| attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let mut map_measure = |names: &[String], target: &str, zero_is_unknown: bool, tags: &mut Tags| {
        for name in names {
            let Some(value) = find(name) else { continue };
            if *value == AttributeValue::Null {
                continue;
            }
            match value.as_number() {
                Some(x) if x == 0.0 && zero_is_unknown => continue,
                Some(x) if x >= 0.0 => {
                    tags.insert(target, format_number(x));
                    return true;
                }
                _ => {
                    let shown = value.to_tag_value().unwrap_or_default();
                    report.warn(subject, format!("attribute {name} = {shown:?} is not a usable {target}; ignored"));
                }
            }
        }
        false
    };
    let has_height = map_measure(&mapping.height_attributes, "height", true, &mut tags);
    let has_levels = map_measure(&mapping.levels_attributes, "building:levels", true, &mut tags);
    map_measure(&mapping.min_height_attributes, "min_height", false, &mut tags);
    if let Some(name) = mapping
        .name_attributes
        .iter()
        .filter_map(|n| find(n).and_then(AttributeValue::to_tag_value))
        .find(|v| !v.trim().is_empty())
    {
        tags.insert("name", name);
    }

    let polygonal = is_polygonal(geometry);
    let linear = is_linear(geometry);
    match mapping.feature_kind {
        Some(FeatureKind::Buildings) => {
            if polygonal && !tags.has("building") && !tags.has("building:part") {
                tags.insert("building", "yes");
            }
        }
        Some(FeatureKind::Roads) => {
            if linear && !tags.has("highway") {
                tags.insert("highway", "road");
            }
        }
        None => {
            if polygonal && (has_height || has_levels) && !PRIMARY_KEYS.iter().any(|k| tags.has(k)) {
                tags.insert("building", "yes");
            }
        }
    }
    for (k, v) in &mapping.default_tags {
        if !tags.has(k) {
            tags.insert(k.as_str(), v.as_str());
        }
    }
    tags
}

fn is_polygonal(g: &Geometry<f64>) -> bool {
    match g {
        Geometry::Polygon(_) | Geometry::MultiPolygon(_) | Geometry::Rect(_) | Geometry::Triangle(_) => true,
        Geometry::GeometryCollection(c) => !c.0.is_empty() && c.0.iter().all(is_polygonal),
        _ => false,
    }
}

fn is_linear(g: &Geometry<f64>) -> bool {
    match g {
        Geometry::Line(_) | Geometry::LineString(_) | Geometry::MultiLineString(_) => true,
        Geometry::GeometryCollection(c) => !c.0.is_empty() && c.0.iter().all(is_linear),
        _ => false,
    }
}

fn geometry_name(g: &Geometry<f64>) -> &'static str {
    match g {
        Geometry::Point(_) => "Point",
        Geometry::Line(_) => "Line",
        Geometry::LineString(_) => "LineString",
        Geometry::Polygon(_) => "Polygon",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        Geometry::GeometryCollection(_) => "GeometryCollection",
        Geometry::Rect(_) => "Rect",
        Geometry::Triangle(_) => "Triangle",
    }
}

/// Writes the OSM objects of one feature.
struct Emitter<'a> {
    data: &'a mut OsmData,
    tags: &'a Tags,
    origin: SourceRef,
    subject: &'a str,
    report: &'a mut Report,
    objects: usize,
}

impl Emitter<'_> {
    fn geometry(&mut self, g: &Geometry<f64>) {
        match g {
            Geometry::Point(p) => self.point(*p),
            Geometry::MultiPoint(mp) => mp.0.iter().for_each(|p| self.point(*p)),
            Geometry::Line(l) => self.line(&LineString::from(vec![l.start, l.end])),
            Geometry::LineString(ls) => self.line(ls),
            Geometry::MultiLineString(mls) => mls.0.iter().for_each(|ls| self.line(ls)),
            Geometry::Polygon(p) => self.polygon(p),
            Geometry::MultiPolygon(mp) => self.multipolygon(mp),
            Geometry::Rect(r) => self.polygon(&r.to_polygon()),
            Geometry::Triangle(t) => self.polygon(&t.to_polygon()),
            Geometry::GeometryCollection(c) => c.0.iter().for_each(|g| self.geometry(g)),
        }
    }

    fn stands_for_feature(&mut self, ty: OsmType, id: i64) {
        self.data.origins.insert((ty, id), self.origin);
        self.objects += 1;
    }

    fn point(&mut self, p: Point<f64>) {
        let id = self.data.add_synthetic_node(LatLon::new(p.y(), p.x()), self.tags.clone());
        self.stands_for_feature(OsmType::Node, id);
    }

    fn line(&mut self, ls: &LineString<f64>) {
        let mut points: Vec<LatLon> = Vec::with_capacity(ls.0.len());
        for c in &ls.0 {
            let ll = LatLon::new(c.y, c.x);
            if points.last() != Some(&ll) {
                points.push(ll);
            }
        }
        if points.len() < 2 {
            self.report.warn(self.subject, "a line with fewer than two distinct points; dropped");
            return;
        }
        let id = self.data.add_synthetic_way(&points, self.tags.clone());
        self.stands_for_feature(OsmType::Way, id);
    }

    /// A closed way through the ring's distinct points, or `None` (with a warning) when
    /// fewer than three remain.
    fn ring(&mut self, ring: &LineString<f64>, what: &str, tags: Tags) -> Option<i64> {
        let mut points: Vec<LatLon> = Vec::with_capacity(ring.0.len());
        for c in &ring.0 {
            let ll = LatLon::new(c.y, c.x);
            if points.last() != Some(&ll) {
                points.push(ll);
            }
        }
        if points.len() > 1 && points.first() == points.last() {
            points.pop();
        }
        if points.len() < 3 {
            self.report.warn(self.subject, format!("{what} has fewer than three distinct points; dropped"));
            return None;
        }
        let mut nodes: Vec<i64> = points.iter().map(|p| self.data.add_synthetic_node(*p, Tags::new())).collect();
        nodes.push(nodes[0]);
        let id = self.data.synthetic_id();
        self.data.ways.insert(id, Way { nodes, tags });
        Some(id)
    }

    fn polygon(&mut self, p: &Polygon<f64>) {
        if p.interiors().is_empty() {
            if let Some(id) = self.ring(p.exterior(), "the polygon's outer ring", self.tags.clone()) {
                self.stands_for_feature(OsmType::Way, id);
            }
        } else {
            self.multipolygon(&MultiPolygon(vec![p.clone()]));
        }
    }

    fn multipolygon(&mut self, mp: &MultiPolygon<f64>) {
        let mut members = Vec::new();
        for (k, p) in mp.0.iter().enumerate() {
            let Some(outer) = self.ring(p.exterior(), &format!("outer ring of polygon {k}"), Tags::new()) else {
                continue;
            };
            members.push(Member { ty: OsmType::Way, id: outer, role: "outer".into(), geometry: None });
            for (h, hole) in p.interiors().iter().enumerate() {
                if let Some(inner) = self.ring(hole, &format!("inner ring {h} of polygon {k}"), Tags::new()) {
                    members.push(Member { ty: OsmType::Way, id: inner, role: "inner".into(), geometry: None });
                }
            }
        }
        if members.is_empty() {
            return;
        }
        let mut tags = self.tags.clone();
        tags.insert("type", "multipolygon");
        let id = self.data.synthetic_id();
        self.data.relations.insert(id, Relation { members, tags });
        self.stands_for_feature(OsmType::Relation, id);
    }
}

// ---------------------------------------------------------------------------------------
// GeoJSON
// ---------------------------------------------------------------------------------------

/// Reads a GeoJSON file into OSM-like objects (see [`parse_geojson`]).
pub fn read_geojson(
    path: &Path,
    source_index: u32,
    mapping: &VectorMapping,
    report: &mut Report,
) -> Result<OsmData, IngestError> {
    let bytes = std::fs::read(path).map_err(|e| IngestError::io(path, e))?;
    parse_geojson(&bytes, path, source_index, mapping, report)
}

/// Parses GeoJSON (a `FeatureCollection`, a `Feature` or a bare geometry) into OSM-like
/// objects. `label` names the file in errors and warnings.
///
/// The coordinates' CRS is, in order: `mapping.crs`, the legacy `"crs"` member
/// (`urn:ogc:def:crs:EPSG::5186`, `EPSG:5186`, `...CRS84`), EPSG:4326.
pub fn parse_geojson(
    bytes: &[u8],
    label: &Path,
    source_index: u32,
    mapping: &VectorMapping,
    report: &mut Report,
) -> Result<OsmData, IngestError> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full);
        IngestError::parse(
            label,
            format!("line {}, column {}", e.line(), e.column()),
            format!("invalid JSON: {message}"),
        )
    })?;
    let Value::Object(root) = root else {
        return Err(IngestError::parse(
            label,
            "top level",
            format!("expected a GeoJSON object, found {}", json_kind(&root)),
        ));
    };
    let crs = match mapping.crs {
        Some(crs) => crs,
        None => legacy_crs(&root, label)?.unwrap_or(Crs::Wgs84),
    };
    let name = file_label(label);
    let source = FeatureSource { label: &name, source_index, mapping };
    let mut data = OsmData::new();
    let ty = root.get("type").and_then(Value::as_str).unwrap_or("");
    match ty {
        "FeatureCollection" => {
            let features = match root.get("features") {
                Some(Value::Array(a)) => a,
                Some(other) => {
                    return Err(IngestError::parse(
                        label,
                        "FeatureCollection",
                        format!("\"features\" must be an array, found {}", json_kind(other)),
                    ));
                }
                None => return Err(IngestError::parse(label, "FeatureCollection", "has no \"features\" member")),
            };
            for (i, f) in features.iter().enumerate() {
                geojson_feature(&mut data, &source, i as u64, f, crs, label, report)?;
            }
        }
        "Feature" => geojson_feature(&mut data, &source, 0, &Value::Object(root.clone()), crs, label, report)?,
        "Point" | "MultiPoint" | "LineString" | "MultiLineString" | "Polygon" | "MultiPolygon"
        | "GeometryCollection" => {
            let location = "geometry";
            let geometry = parse_geometry(&Value::Object(root.clone()), "geometry")
                .and_then(|g| g.map(|g| geometry_to_wgs84(&g, crs)).transpose())
                .map_err(|m| IngestError::parse(label, location, m))?;
            match geometry {
                Some(g) => {
                    add_feature(&mut data, &source, 0, &g, &[], report);
                }
                None => report.warn(name.as_str(), format!("the {ty} is empty; nothing read")),
            }
        }
        "" => {
            return Err(IngestError::parse(label, "top level", "not GeoJSON: the object has no \"type\" string"));
        }
        other => return Err(IngestError::parse(label, "top level", format!("unknown GeoJSON type {other:?}"))),
    }
    Ok(data)
}

fn file_label(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn geojson_feature(
    data: &mut OsmData,
    source: &FeatureSource<'_>,
    index: u64,
    value: &Value,
    crs: Crs,
    label: &Path,
    report: &mut Report,
) -> Result<(), IngestError> {
    let location = format!("feature {index}");
    let err = |m: String| IngestError::parse(label, location.as_str(), m);
    let Value::Object(f) = value else {
        return Err(err(format!("expected a Feature object, found {}", json_kind(value))));
    };
    match f.get("type") {
        Some(Value::String(t)) if t == "Feature" => {}
        Some(Value::String(t)) => return Err(err(format!("expected \"type\": \"Feature\", found {t:?}"))),
        Some(other) => return Err(err(format!("\"type\" must be the string \"Feature\", found {}", json_kind(other)))),
        None => return Err(err("has no \"type\" member (expected \"Feature\")".into())),
    }
    let attributes = match f.get("properties") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(props)) => json_attributes(props),
        Some(other) => {
            return Err(err(format!("\"properties\" must be an object or null, found {}", json_kind(other))));
        }
    };
    let geometry = match f.get("geometry") {
        None => return Err(err("has no \"geometry\" member (use null for a feature without geometry)".into())),
        Some(Value::Null) => None,
        Some(g @ Value::Object(_)) => parse_geometry(g, "geometry").map_err(&err)?,
        Some(other) => return Err(err(format!("\"geometry\" must be an object or null, found {}", json_kind(other)))),
    };
    let Some(geometry) = geometry else {
        report.warn(format!("{} feature {index}", source.label), "the feature has no geometry; dropped");
        return Ok(());
    };
    let geometry = geometry_to_wgs84(&geometry, crs).map_err(&err)?;
    add_feature(data, source, index, &geometry, &attributes, report);
    Ok(())
}

fn json_attributes(props: &Map<String, Value>) -> Vec<(String, AttributeValue)> {
    props.iter().filter_map(|(k, v)| json_attribute(v).map(|a| (k.clone(), a))).collect()
}

/// A property as an attribute; `None` for what has no tag form (nested objects, lists of
/// non-scalars).
fn json_attribute(v: &Value) -> Option<AttributeValue> {
    Some(match v {
        Value::Null => AttributeValue::Null,
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                AttributeValue::Integer(i)
            } else if let Some(u) = n.as_u64() {
                AttributeValue::Text(u.to_string())
            } else {
                AttributeValue::Real(n.as_f64()?)
            }
        }
        Value::String(s) => AttributeValue::Text(s.clone()),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|i| match json_attribute(i) {
                    Some(AttributeValue::Null) | None => None,
                    Some(a) => a.to_tag_value(),
                })
                .collect();
            AttributeValue::Text(parts?.join(";"))
        }
        Value::Object(_) => return None,
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The CRS named by GeoJSON's legacy (2008) `"crs"` member, if any.
fn legacy_crs(root: &Map<String, Value>, label: &Path) -> Result<Option<Crs>, IngestError> {
    let Some(member) = root.get("crs") else { return Ok(None) };
    let unsupported = |message: String| IngestError::UnsupportedCrs { path: label.to_path_buf(), message };
    let shown = || {
        let mut s = member.to_string();
        if s.len() > 200 {
            let mut cut = 200;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push('…');
        }
        s
    };
    let props = member.get("properties");
    match member.get("type").and_then(Value::as_str) {
        _ if member.is_null() => Ok(None),
        Some("name") => {
            let Some(name) = props.and_then(|p| p.get("name")).and_then(Value::as_str) else {
                return Err(unsupported(format!("the \"crs\" member has no properties.name: {}", shown())));
            };
            crs_from_name(name).map(Some).map_err(unsupported)
        }
        Some("EPSG") | Some("epsg") => {
            let code = props.and_then(|p| p.get("code")).and_then(Value::as_u64).and_then(|c| u32::try_from(c).ok());
            let Some(code) = code else {
                return Err(unsupported(format!("the \"crs\" member has no numeric properties.code: {}", shown())));
            };
            Crs::from_epsg(code).map(Some).map_err(|e| unsupported(format!("CRS EPSG:{code}: {e}")))
        }
        _ => Err(unsupported(format!("unsupported \"crs\" member {} (expected a named EPSG CRS)", shown()))),
    }
}

/// Parses the CRS names GeoJSON files carry: `urn:ogc:def:crs:EPSG::5186`,
/// `urn:ogc:def:crs:OGC:1.3:CRS84`, `EPSG:5186`, `http://www.opengis.net/def/crs/EPSG/0/5186`.
pub fn crs_from_name(name: &str) -> Result<Crs, String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper.ends_with("CRS84") || upper.ends_with("CRS:84") {
        return Ok(Crs::Wgs84);
    }
    let digits_start = upper.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let code = &upper[digits_start..];
    let prefix = &upper[..digits_start];
    let is_epsg = prefix.is_empty() || prefix.contains("EPSG");
    match code.parse::<u32>() {
        Ok(code) if is_epsg => Crs::from_epsg(code).map_err(|e| format!("CRS {name:?}: {e}")),
        _ => {
            Err(format!("CRS {name:?} is not an EPSG code this build knows (supported: EPSG:4326, 5186, 5179, 32652)"))
        }
    }
}

// ----- GeoJSON geometry --------------------------------------------------------------------

/// A GeoJSON geometry object as a geo geometry in the file's CRS; `Ok(None)` for an empty
/// one. Errors name the place in the geometry (`geometry.coordinates[0][2]`).
fn parse_geometry(v: &Value, path: &str) -> Result<Option<Geometry<f64>>, String> {
    let Value::Object(g) = v else {
        return Err(format!("{path}: expected a geometry object, found {}", json_kind(v)));
    };
    let ty = match g.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(other) => return Err(format!("{path}: \"type\" must be a string, found {}", json_kind(other))),
        None => return Err(format!("{path}: has no \"type\" member")),
    };
    if ty == "GeometryCollection" {
        let items = match g.get("geometries") {
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(format!("{path}: \"geometries\" must be an array, found {}", json_kind(other)));
            }
            None => return Err(format!("{path}: a GeometryCollection has no \"geometries\" member")),
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(g) = parse_geometry(item, &format!("{path}.geometries[{i}]"))? {
                out.push(g);
            }
        }
        return Ok((!out.is_empty()).then_some(Geometry::GeometryCollection(geo::GeometryCollection(out))));
    }
    let cpath = format!("{path}.coordinates");
    let Some(coords) = g.get("coordinates") else {
        return Err(format!("{path}: a {ty} has no \"coordinates\" member"));
    };
    let geometry = match ty {
        "Point" => {
            if matches!(coords, Value::Array(a) if a.is_empty()) {
                return Ok(None);
            }
            Geometry::Point(Point(position(coords, &cpath)?))
        }
        "MultiPoint" => {
            let points: Vec<Point<f64>> = positions(coords, &cpath)?.into_iter().map(Point).collect();
            if points.is_empty() {
                return Ok(None);
            }
            Geometry::MultiPoint(geo::MultiPoint(points))
        }
        "LineString" => match line_string(coords, &cpath)? {
            Some(ls) => Geometry::LineString(ls),
            None => return Ok(None),
        },
        "MultiLineString" => {
            let mut lines = Vec::new();
            for (i, l) in array(coords, &cpath)?.iter().enumerate() {
                lines.extend(line_string(l, &format!("{cpath}[{i}]"))?);
            }
            if lines.is_empty() {
                return Ok(None);
            }
            Geometry::MultiLineString(geo::MultiLineString(lines))
        }
        "Polygon" => match polygon(coords, &cpath)? {
            Some(p) => Geometry::Polygon(p),
            None => return Ok(None),
        },
        "MultiPolygon" => {
            let mut polygons = Vec::new();
            for (i, p) in array(coords, &cpath)?.iter().enumerate() {
                polygons.extend(polygon(p, &format!("{cpath}[{i}]"))?);
            }
            if polygons.is_empty() {
                return Ok(None);
            }
            Geometry::MultiPolygon(MultiPolygon(polygons))
        }
        other => return Err(format!("{path}: unknown geometry type {other:?}")),
    };
    Ok(Some(geometry))
}

fn array<'v>(v: &'v Value, path: &str) -> Result<&'v Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(format!("{path}: expected an array, found {}", json_kind(other))),
    }
}

/// `[x, y]` or `[x, y, z]` (further elements ignored).
fn position(v: &Value, path: &str) -> Result<Coord<f64>, String> {
    let a = array(v, path)?;
    if a.len() < 2 {
        return Err(format!("{path}: a position needs at least 2 numbers, found {}", a.len()));
    }
    let number = |i: usize| match &a[i] {
        Value::Number(n) => {
            n.as_f64().filter(|x| x.is_finite()).ok_or_else(|| format!("{path}[{i}]: not a finite number"))
        }
        other => Err(format!("{path}[{i}]: coordinates must be numbers, found {}", json_kind(other))),
    };
    Ok(Coord { x: number(0)?, y: number(1)? })
}

fn positions(v: &Value, path: &str) -> Result<Vec<Coord<f64>>, String> {
    array(v, path)?.iter().enumerate().map(|(i, p)| position(p, &format!("{path}[{i}]"))).collect()
}

fn line_string(v: &Value, path: &str) -> Result<Option<LineString<f64>>, String> {
    let coords = positions(v, path)?;
    match coords.len() {
        0 => Ok(None),
        1 => Err(format!("{path}: a LineString needs at least 2 positions, found 1")),
        _ => Ok(Some(LineString(coords))),
    }
}

fn polygon(v: &Value, path: &str) -> Result<Option<Polygon<f64>>, String> {
    let rings = array(v, path)?;
    let mut out = Vec::with_capacity(rings.len());
    for (i, r) in rings.iter().enumerate() {
        let ring = positions(r, &format!("{path}[{i}]"))?;
        if ring.len() < 4 {
            return Err(format!(
                "{path}[{i}]: a polygon ring needs at least 4 positions (first = last), found {}",
                ring.len()
            ));
        }
        out.push(LineString(ring));
    }
    let mut it = out.into_iter();
    Ok(it.next().map(|exterior| Polygon::new(exterior, it.collect())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(json: &str) -> Result<(OsmData, Report), IngestError> {
        parse_with(json, &VectorMapping::default())
    }

    fn parse_with(json: &str, mapping: &VectorMapping) -> Result<(OsmData, Report), IngestError> {
        let mut report = Report::default();
        let data = parse_geojson(json.as_bytes(), Path::new("test.geojson"), 3, mapping, &mut report)?;
        Ok((data, report))
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
    }

    fn parse_error(json: &str) -> (String, String) {
        match parse(json) {
            Err(IngestError::Parse { location, message, .. }) => (location, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    fn the_way(data: &OsmData) -> (&i64, &Way) {
        assert_eq!(data.ways.len(), 1, "{data:?}");
        data.ways.iter().next().unwrap()
    }

    #[test]
    fn polygon_becomes_closed_way_with_tags_and_origin() {
        let (data, report) = parse(
            r#"{"type":"FeatureCollection","features":[{"type":"Feature",
                "properties":{"building":"yes","name":"63 Building","height":249.6,"levels":60.0,"open":true,"nested":{"a":1},"none":null},
                "geometry":{"type":"Polygon","coordinates":[[[126.94,37.52],[126.941,37.52],[126.941,37.521],[126.94,37.521],[126.94,37.52]]]}}]}"#,
        )
        .unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let (id, way) = the_way(&data);
        assert_eq!(way.nodes.len(), 5);
        assert_eq!(way.nodes.first(), way.nodes.last(), "closed way");
        assert_eq!(data.nodes.len(), 4);
        assert_eq!(way.tags.get("name"), Some("63 Building"));
        assert_eq!(way.tags.get("height"), Some("249.6"));
        assert_eq!(way.tags.get("levels"), Some("60"));
        assert_eq!(way.tags.get("building:levels"), Some("60"));
        assert_eq!(way.tags.get("open"), Some("yes"));
        assert!(!way.tags.has("nested") && !way.tags.has("none"));
        assert_eq!(data.origins.get(&(OsmType::Way, *id)), Some(&SourceRef::Feature { source: 3, index: 0 }));
        let first = data.nodes[&way.nodes[0]].pos;
        assert_eq!((first.lat_deg, first.lon_deg), (37.52, 126.94));
    }

    #[test]
    fn polygon_with_hole_and_multipolygon_become_relations() {
        let (data, report) = parse(
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"building":"yes"},"geometry":{"type":"Polygon","coordinates":[
                [[127.0,37.5],[127.01,37.5],[127.01,37.51],[127.0,37.51],[127.0,37.5]],
                [[127.002,37.502],[127.004,37.502],[127.004,37.504],[127.002,37.502]]]}},
              {"type":"Feature","properties":{"landuse":"grass"},"geometry":{"type":"MultiPolygon","coordinates":[
                [[[127.1,37.5],[127.11,37.5],[127.11,37.51],[127.1,37.5]]],
                [[[127.2,37.5],[127.21,37.5],[127.21,37.51],[127.2,37.5]]]]}}]}"#,
        )
        .unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(data.relations.len(), 2);
        let roles: Vec<Vec<&str>> =
            data.relations.values().rev().map(|r| r.members.iter().map(|m| m.role.as_str()).collect()).collect();
        assert_eq!(roles, vec![vec!["outer", "inner"], vec!["outer", "outer"]]);
        for (id, r) in &data.relations {
            assert!(r.tags.is("type", "multipolygon"));
            assert!(matches!(data.origins.get(&(OsmType::Relation, *id)), Some(SourceRef::Feature { source: 3, .. })));
            for m in &r.members {
                let w = &data.ways[&m.id];
                assert!(w.tags.is_empty());
                assert_eq!(w.nodes.first(), w.nodes.last());
            }
        }
        let building = data.relations.values().find(|r| r.tags.has("building")).unwrap();
        assert_eq!(building.members.len(), 2);
    }

    #[test]
    fn lines_points_and_bare_geometry() {
        let (data, _) = parse(
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"highway":"primary","lanes":4},"geometry":{"type":"LineString","coordinates":[[127.0,37.5],[127.01,37.5,12.0]]}},
              {"type":"Feature","properties":{"highway":"service"},"geometry":{"type":"MultiLineString","coordinates":[[[127.0,37.6],[127.01,37.6]],[[127.0,37.7],[127.01,37.7]]]}},
              {"type":"Feature","properties":{"highway":"traffic_signals"},"geometry":{"type":"Point","coordinates":[127.0,37.5]}}]}"#,
        )
        .unwrap();
        assert_eq!(data.ways.len(), 3);
        assert!(data.ways.values().all(|w| w.nodes.len() == 2 && w.nodes[0] != w.nodes[1]));
        assert!(data.ways.values().any(|w| w.tags.is("lanes", "4")));
        let signal = data.nodes.iter().find(|(_, n)| n.tags.is("highway", "traffic_signals")).unwrap();
        assert_eq!(data.origins[&(OsmType::Node, *signal.0)], SourceRef::Feature { source: 3, index: 2 });
        let service: Vec<_> = data.ways.iter().filter(|(_, w)| w.tags.is("highway", "service")).collect();
        assert_eq!(service.len(), 2);
        for (id, _) in service {
            assert_eq!(data.origins[&(OsmType::Way, *id)], SourceRef::Feature { source: 3, index: 1 });
        }

        let (bare, _) = parse(r#"{"type":"LineString","coordinates":[[127.0,37.5],[127.01,37.5]]}"#).unwrap();
        assert_eq!(bare.ways.len(), 1);
        let (single, _) =
            parse(r#"{"type":"Feature","properties":null,"geometry":{"type":"Point","coordinates":[127,37]}}"#)
                .unwrap();
        assert_eq!(single.nodes.len(), 1);
    }

    #[test]
    fn numbers_are_formatted_without_noise() {
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(12.5), "12.5");
        assert_eq!(format_number(0.1), "0.1");
        assert_eq!(format_number(1e300), format!("{}", 1e300));
        assert_eq!(AttributeValue::Text(" 12 m".into()).as_number(), Some(12.0));
        assert_eq!(AttributeValue::Bool(false).to_tag_value().as_deref(), Some("no"));
        let (data, _) = parse(
            r#"{"type":"Feature","properties":{"a":3.0,"b":1e2,"c":18446744073709551615,"d":[1,"x",true],"e":[{"x":1}]},
                "geometry":{"type":"Point","coordinates":[127,37]}}"#,
        )
        .unwrap();
        let tags = &data.nodes.values().next().unwrap().tags;
        assert_eq!(tags.get("a"), Some("3"));
        assert_eq!(tags.get("b"), Some("100"));
        assert_eq!(tags.get("c"), Some("18446744073709551615"));
        assert_eq!(tags.get("d"), Some("1;x;yes"));
        assert!(!tags.has("e"));
    }

    #[test]
    fn korean_building_register_fixture_in_epsg_5186() {
        let mut report = Report::default();
        let path = fixture("buildings_5186.geojson");
        let data = read_geojson(&path, 0, &VectorMapping::default(), &mut report).unwrap();
        assert_eq!(data.origins.len(), 3, "{:?}", report.warnings);
        assert_eq!((data.ways.len(), data.relations.len()), (4, 1));
        // Feature 0: HEIGHT 32.5, GRND_FLR 9, no building attribute -> building=yes.
        let (id, way) = data
            .ways
            .iter()
            .find(|(id, _)| {
                data.origins.get(&(OsmType::Way, **id)) == Some(&SourceRef::Feature { source: 0, index: 0 })
            })
            .unwrap();
        assert!(way.tags.is("building", "yes"), "{:?}", way.tags);
        assert_eq!(way.tags.get("height"), Some("32.5"));
        assert_eq!(way.tags.get("building:levels"), Some("9"));
        assert_eq!(way.tags.get("HEIGHT"), Some("32.5"));
        let _ = id;
        // First vertex (193370.3029, 547281.4483) is PROJ's image of (37.525, 126.925).
        let p = data.nodes[&way.nodes[0]].pos;
        let expected = Crs::Korea2000CentralBelt2010.to_wgs84([193370.3029, 547281.4483]).unwrap();
        assert_eq!(p, expected);
        assert!((p.lat_deg - 37.525).abs() < 1e-7 && (p.lon_deg - 126.925).abs() < 1e-7, "{p:?}");
        // Feature 1: HEIGHT 0 (unknown) but GRND_FLR 3.
        let w1 = data
            .ways
            .iter()
            .find(|(id, _)| {
                data.origins.get(&(OsmType::Way, **id)) == Some(&SourceRef::Feature { source: 0, index: 1 })
            })
            .unwrap()
            .1;
        assert!(!w1.tags.has("height"));
        assert_eq!(w1.tags.get("building:levels"), Some("3"));
        assert!(w1.tags.is("building", "yes"));
        // Feature 2 has a courtyard -> multipolygon relation.
        let r = data.relations.values().next().unwrap();
        assert!(r.tags.is("building", "yes") && r.tags.is("type", "multipolygon"));
        assert_eq!(r.members.len(), 2);
    }

    #[test]
    fn roads_fixture() {
        let mut report = Report::default();
        let data = read_geojson(&fixture("roads.geojson"), 1, &VectorMapping::default(), &mut report).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(data.ways.len(), 3);
        assert!(data.ways.values().any(|w| w.tags.is("highway", "primary") && w.tags.is("lanes", "6")));
        assert!(data.ways.values().all(|w| !w.tags.has("building")));
    }

    #[test]
    fn mapping_overrides_kind_defaults_and_crs() {
        let xy = Crs::Korea2000Unified.from_wgs84(LatLon::new(37.5, 127.0));
        let json = format!(
            r#"{{"type":"FeatureCollection","features":[
              {{"type":"Feature","properties":{{"H":"20","MINH":3}},"geometry":{{"type":"Polygon","coordinates":[[[{x},{y}],[{x2},{y}],[{x2},{y2}],[{x},{y}]]]}}}},
              {{"type":"Feature","properties":{{"RN":"Olympic-daero"}},"geometry":{{"type":"LineString","coordinates":[[{x},{y}],[{x2},{y2}]]}}}}]}}"#,
            x = xy[0],
            y = xy[1],
            x2 = xy[0] + 10.0,
            y2 = xy[1] + 10.0
        );
        let mapping = VectorMapping {
            height_attributes: vec!["H".into()],
            min_height_attributes: vec!["MINH".into()],
            feature_kind: Some(FeatureKind::Buildings),
            default_tags: vec![("source".into(), "test".into())],
            crs: Some(Crs::Korea2000Unified),
            ..VectorMapping::default()
        };
        let (data, _) = parse_with(&json, &mapping).unwrap();
        let poly = data.ways.values().find(|w| w.nodes.len() == 4).unwrap();
        assert!(poly.tags.is("building", "yes") && poly.tags.is("height", "20") && poly.tags.is("min_height", "3"));
        assert!(poly.tags.is("source", "test"));
        let p = data.nodes[&poly.nodes[0]].pos;
        assert!((p.lat_deg - 37.5).abs() < 1e-9 && (p.lon_deg - 127.0).abs() < 1e-9);
        let road = data.ways.values().find(|w| w.nodes.len() == 2).unwrap();
        assert!(!road.tags.has("building") && !road.tags.has("highway"));

        let roads =
            VectorMapping { feature_kind: Some(FeatureKind::Roads), crs: Some(Crs::Korea2000Unified), ..mapping };
        let (data, _) = parse_with(&json, &roads).unwrap();
        let road = data.ways.values().find(|w| w.nodes.len() == 2).unwrap();
        assert!(road.tags.is("highway", "road"));
    }

    #[test]
    fn auto_detection_leaves_osm_features_alone() {
        let (data, _) = parse(
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"man_made":"tower","height":50},"geometry":{"type":"Polygon","coordinates":[[[127.0,37.5],[127.01,37.5],[127.01,37.51],[127.0,37.5]]]}},
              {"type":"Feature","properties":{"HEIGHT":"abc"},"geometry":{"type":"Polygon","coordinates":[[[127.1,37.5],[127.11,37.5],[127.11,37.51],[127.1,37.5]]]}}]}"#,
        )
        .unwrap();
        assert!(data.ways.values().all(|w| !w.tags.has("building")));
    }

    #[test]
    fn legacy_crs_member_is_honoured() {
        let xy = Crs::Korea2000CentralBelt2010.from_wgs84(LatLon::new(37.5, 127.0));
        for name in ["urn:ogc:def:crs:EPSG::5186", "EPSG:5186", "http://www.opengis.net/def/crs/EPSG/0/5186"] {
            let json = format!(
                r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"{name}"}}}},
                   "features":[{{"type":"Feature","properties":{{}},"geometry":{{"type":"Point","coordinates":[{},{}]}}}}]}}"#,
                xy[0], xy[1]
            );
            let (data, _) = parse(&json).unwrap();
            let p = data.nodes.values().next().unwrap().pos;
            assert!((p.lat_deg - 37.5).abs() < 1e-9 && (p.lon_deg - 127.0).abs() < 1e-9, "{name}: {p:?}");
        }
        let (data, _) = parse(
            r#"{"type":"Point","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:OGC:1.3:CRS84"}},"coordinates":[127,37]}"#,
        )
        .unwrap();
        assert_eq!(data.nodes.len(), 1);
        let (data, _) =
            parse(r#"{"type":"Point","crs":{"type":"EPSG","properties":{"code":4326}},"coordinates":[127,37]}"#)
                .unwrap();
        assert_eq!(data.nodes.len(), 1);
    }

    #[test]
    fn unsupported_crs_names_file_and_crs() {
        let err = parse(
            r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::3857"}},"features":[]}"#,
        )
        .unwrap_err();
        let IngestError::UnsupportedCrs { path, message } = &err else { panic!("{err:?}") };
        assert_eq!(path, Path::new("test.geojson"));
        assert!(message.contains("3857"), "{message}");
        assert!(err.to_string().contains("test.geojson"));
        let err =
            parse(r#"{"type":"FeatureCollection","crs":{"type":"link","properties":{"href":"x"}},"features":[]}"#)
                .unwrap_err();
        assert!(matches!(err, IngestError::UnsupportedCrs { .. }));
        let err = parse(
            r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"Korea 2000 Central"}},"features":[]}"#,
        )
        .unwrap_err();
        assert!(matches!(err, IngestError::UnsupportedCrs { .. }));
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        let err = parse("{\n  \"type\": \"FeatureCollection\",\n  \"features\": [ }").unwrap_err();
        let IngestError::Parse { path, location, message } = &err else { panic!("{err:?}") };
        assert_eq!(path, Path::new("test.geojson"));
        assert_eq!(location, "line 3, column 17");
        assert!(message.starts_with("invalid JSON"), "{message}");
        assert!(!message.contains("at line"), "{message}");
    }

    #[test]
    fn wrong_types_name_the_feature() {
        let f = |g: &str| {
            format!(
                r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{}},"geometry":{{"type":"Point","coordinates":[1,2]}}}},{g}]}}"#
            )
        };
        let (loc, msg) = parse_error(&f(r#"{"type":"Feature","properties":{},"geometry":42}"#));
        assert_eq!(loc, "feature 1");
        assert!(msg.contains("geometry") && msg.contains("a number"), "{msg}");
        let (loc, msg) = parse_error(&f(
            r#"{"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[1,2],["3",4]]}}"#,
        ));
        assert_eq!(loc, "feature 1");
        assert!(msg.contains("geometry.coordinates[1][0]") && msg.contains("must be numbers"), "{msg}");
        let (loc, msg) = parse_error(&f(
            r#"{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[1,2],[3,4],[1,2]]]}}"#,
        ));
        assert_eq!(loc, "feature 1");
        assert!(msg.contains("at least 4 positions") && msg.contains("found 3"), "{msg}");
        let (loc, msg) = parse_error(&f(r#"{"type":"Feature","properties":{}}"#));
        assert_eq!(loc, "feature 1");
        assert!(msg.contains("no \"geometry\""), "{msg}");
        let (_, msg) = parse_error(&f(r#"{"type":"Feature","properties":[],"geometry":null}"#));
        assert!(msg.contains("properties"), "{msg}");
        let (_, msg) = parse_error(&f(r#"[1,2]"#));
        assert!(msg.contains("an array"), "{msg}");
        let (_, msg) = parse_error(&f(r#"{"type":"Feature","geometry":{"type":"Circle","coordinates":[1,2]}}"#));
        assert!(msg.contains("Circle"), "{msg}");
        let (loc, _) = parse_error(r#"{"type":"Topology"}"#);
        assert_eq!(loc, "top level");
        let (loc, _) = parse_error(r#"[]"#);
        assert_eq!(loc, "top level");
        let (_, msg) = parse_error(r#"{"type":"FeatureCollection"}"#);
        assert!(msg.contains("features"), "{msg}");
    }

    #[test]
    fn projected_coordinates_without_crs_are_an_error_with_a_hint() {
        let (loc, msg) = parse_error(
            r#"{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[193370.3,547281.4]}}"#,
        );
        assert_eq!(loc, "feature 0");
        assert!(msg.contains("EPSG:4326") && msg.contains("projected"), "{msg}");
    }

    #[test]
    fn null_and_degenerate_geometries_are_warned_about() {
        let (data, report) = parse(
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"name":"a"},"geometry":null},
              {"type":"Feature","properties":{"name":"b"},"geometry":{"type":"Polygon","coordinates":[[[127,37],[127,37],[127,37],[127,37]]]}},
              {"type":"Feature","properties":{"name":"c"},"geometry":{"type":"LineString","coordinates":[]}},
              {"type":"Feature","properties":{"name":"d"},"geometry":{"type":"Point","coordinates":[127,37]}}]}"#,
        )
        .unwrap();
        assert_eq!(data.nodes.len(), 1);
        assert!(data.ways.is_empty());
        let subjects: Vec<&str> = report.warnings.iter().map(|w| w.subject.as_str()).collect();
        assert!(subjects.contains(&"test.geojson feature 0"), "{subjects:?}");
        assert!(subjects.contains(&"test.geojson feature 1"), "{subjects:?}");
        assert!(subjects.contains(&"test.geojson feature 2"), "{subjects:?}");
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let mut report = Report::default();
        let err = read_geojson(Path::new("/nonexistent/x.geojson"), 0, &VectorMapping::default(), &mut report);
        assert!(matches!(err, Err(IngestError::Io { .. })));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            (-1e7f64..1e7).prop_map(Value::from),
            prop_oneof![
                Just("Feature"),
                Just("FeatureCollection"),
                Just("Polygon"),
                Just("MultiPolygon"),
                Just("LineString"),
                Just("Point"),
                Just("GeometryCollection"),
                Just("x")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("type".to_string()),
                            Just("features".to_string()),
                            Just("geometry".to_string()),
                            Just("geometries".to_string()),
                            Just("coordinates".to_string()),
                            Just("properties".to_string()),
                            Just("crs".to_string()),
                            Just("HEIGHT".to_string()),
                            "[a-z]{1,3}",
                        ],
                        inner
                    ),
                    0..5
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut report = Report::default();
            let _ = parse_geojson(&bytes, Path::new("fuzz.geojson"), 0, &VectorMapping::default(), &mut report);
        }

        #[test]
        fn random_json_never_panics(v in arb_json()) {
            let mut report = Report::default();
            let bytes = serde_json::to_vec(&v).unwrap();
            let _ = parse_geojson(&bytes, Path::new("fuzz.geojson"), 0, &VectorMapping::default(), &mut report);
        }

        #[test]
        fn random_geometries_never_panic(
            ty in prop_oneof![Just("Point"), Just("MultiPoint"), Just("LineString"), Just("MultiLineString"), Just("Polygon"), Just("MultiPolygon")],
            coords in arb_json(),
            projected in any::<bool>(),
        ) {
            let mut report = Report::default();
            let doc = serde_json::json!({"type":"FeatureCollection","features":[{"type":"Feature","properties":{"HEIGHT":1},"geometry":{"type":ty,"coordinates":coords}}]});
            let mapping = VectorMapping { crs: projected.then_some(Crs::Korea2000CentralBelt2010), ..VectorMapping::default() };
            let _ = parse_geojson(&serde_json::to_vec(&doc).unwrap(), Path::new("fuzz.geojson"), 0, &mapping, &mut report);
        }

        #[test]
        fn random_rings_make_closed_ways_or_warnings(
            ring in prop::collection::vec((126.9f64..127.1, 37.4f64..37.6), 3..12)
        ) {
            let mut coords: Vec<Value> = ring.iter().map(|(x, y)| serde_json::json!([x, y])).collect();
            coords.push(coords[0].clone());
            let doc = serde_json::json!({"type":"Feature","properties":{"building":"yes"},"geometry":{"type":"Polygon","coordinates":[coords]}});
            let mut report = Report::default();
            let data = parse_geojson(&serde_json::to_vec(&doc).unwrap(), Path::new("r.geojson"), 0, &VectorMapping::default(), &mut report).unwrap();
            prop_assert_eq!(data.ways.len() + report.warnings.len(), 1);
            for w in data.ways.values() {
                prop_assert_eq!(w.nodes.first(), w.nodes.last());
                prop_assert!(w.nodes.iter().all(|n| data.nodes.contains_key(n)));
            }
        }
    }
}
