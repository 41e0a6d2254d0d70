//! OSM XML (API 0.6, JOSM, osmium) and Overpass API output, read and written.
//!
//! The reader streams the document with quick-xml and understands:
//!
//! - `<node id lat lon>`, `<way id>` with `<nd ref>`, `<relation id>` with
//!   `<member type ref role>`, and `<tag k v>` in each; metadata attributes (`version`,
//!   `user`, `timestamp`, ...) are ignored, as are `<bounds>`, `<note>` and `<meta>`;
//! - Overpass `out geom`: `<nd ref lat lon>` in ways (the node is created when the file
//!   does not hold it), way members with nested `<nd lat lon>` (kept as
//!   [`Member::geometry`]), node members with `lat`/`lon` (a one-point geometry), and
//!   `<bounds>`/`<center>` inside objects (ignored); an Overpass `<remark>` (a server
//!   timeout or error) is logged as a warning;
//! - objects marked `visible="false"` or `action="delete"` (history and JOSM files)
//!   are skipped.
//!
//! A malformed document, a missing or invalid attribute, or an unexpected end of file
//! is an [`IngestError::Parse`] whose location is `line L, column C` (columns count
//! characters, both from 1).

use crate::IngestError;
use crate::osm::{Member, Node, OsmData, Relation, Tags, Way};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use std::borrow::Cow;
use std::io::{self, Write};
use std::path::Path;
use swm_core::{LatLon, OsmType};

/// Reads an OSM XML file (including Overpass `out geom` output).
pub fn read_xml(path: &Path) -> Result<OsmData, IngestError> {
    let bytes = std::fs::read(path).map_err(|e| IngestError::io(path, e))?;
    parse_xml(&bytes, path)
}

/// Parses an OSM XML document; `label` names the file in errors.
pub fn parse_xml(bytes: &[u8], label: &Path) -> Result<OsmData, IngestError> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    let mut parser = Parser::new(bytes, label);
    loop {
        let start = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                return Err(parser.error(at, format!("malformed XML: {e}")));
            }
        };
        match event {
            Event::Start(e) => parser.open(&e, start)?,
            Event::Empty(e) => {
                parser.open(&e, start)?;
                parser.close(start)?;
            }
            Event::End(_) => parser.close(start)?,
            Event::Text(t) if parser.stack.last().is_some_and(|o| o.ctx == Ctx::Remark) => {
                parser.remark.push_str(&String::from_utf8_lossy(&t));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    parser.finish()
}

/// What the element being read is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    Osm,
    Node,
    Way,
    Relation,
    /// A relation member (which may hold `<nd>` geometry).
    Member,
    /// An Overpass `<remark>`.
    Remark,
    /// An element whose content is skipped (`bounds`, `tag`, deleted objects, ...).
    Ignored,
}

struct Open {
    ctx: Ctx,
    /// Byte offset of the start tag.
    start: usize,
}

/// The object being read.
#[derive(Default)]
struct Current {
    id: i64,
    pos: Option<LatLon>,
    tags: Tags,
    nodes: Vec<i64>,
    members: Vec<Member>,
    /// Nested `<nd>` points of the current member.
    member_points: Vec<LatLon>,
    /// A nested `<nd>` of the current member had no coordinates.
    member_points_incomplete: bool,
}

struct Parser<'a> {
    bytes: &'a [u8],
    label: &'a Path,
    data: OsmData,
    stack: Vec<Open>,
    root_seen: bool,
    cur: Current,
    remark: String,
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8], label: &'a Path) -> Self {
        Self {
            bytes,
            label,
            data: OsmData::new(),
            stack: Vec::new(),
            root_seen: false,
            cur: Current::default(),
            remark: String::new(),
        }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> IngestError {
        let (line, column) = line_column(self.bytes, offset);
        IngestError::parse(self.label, format!("line {line}, column {column}"), message)
    }

    fn open(&mut self, e: &BytesStart, start: usize) -> Result<(), IngestError> {
        let parent = self.stack.last().map(|o| o.ctx);
        let name = e.name();
        let ctx = match (parent, name.as_ref()) {
            (None, b"osm") if !self.root_seen => {
                self.root_seen = true;
                Ctx::Osm
            }
            (None, _) => {
                let name = String::from_utf8_lossy(name.as_ref());
                return Err(self.error(
                    start,
                    if self.root_seen {
                        format!("unexpected <{name}> after the end of the <osm> element")
                    } else {
                        format!("expected the <osm> root element, found <{name}> (not an OSM XML file?)")
                    },
                ));
            }
            (Some(Ctx::Osm), b"node") => self.begin_object(e, start, OsmType::Node)?,
            (Some(Ctx::Osm), b"way") => self.begin_object(e, start, OsmType::Way)?,
            (Some(Ctx::Osm), b"relation") => self.begin_object(e, start, OsmType::Relation)?,
            (Some(Ctx::Osm), b"remark") => {
                self.remark.clear();
                Ctx::Remark
            }
            (Some(Ctx::Node | Ctx::Way | Ctx::Relation), b"tag") => {
                let [k, v] = self.attrs(e, start, "tag", [b"k", b"v"])?;
                let k = self.required(k, start, "tag", "k")?;
                let v = self.required(v, start, "tag", "v")?;
                self.cur.tags.insert(k, v);
                Ctx::Ignored
            }
            (Some(Ctx::Way), b"nd") => {
                let [r, lat, lon] = self.attrs(e, start, "nd", [b"ref", b"lat", b"lon"])?;
                let id = self.id(r, start, "nd", "ref")?;
                if let Some(pos) = self.optional_pos(lat, lon, start, "nd")? {
                    self.data.nodes.entry(id).or_insert_with(|| Node { pos, tags: Tags::new() });
                }
                self.cur.nodes.push(id);
                Ctx::Ignored
            }
            (Some(Ctx::Relation), b"member") => {
                let [ty, r, role, lat, lon] =
                    self.attrs(e, start, "member", [b"type", b"ref", b"role", b"lat", b"lon"])?;
                let ty = match self.required(ty, start, "member", "type")?.as_ref() {
                    "node" => OsmType::Node,
                    "way" => OsmType::Way,
                    "relation" => OsmType::Relation,
                    other => {
                        let message = format!("<member> type=\"{other}\" is not node, way or relation");
                        return Err(self.error(start, message));
                    }
                };
                let id = self.id(r, start, "member", "ref")?;
                let role = role.map(Cow::into_owned).unwrap_or_default();
                self.cur.member_points.clear();
                self.cur.member_points_incomplete = false;
                if let Some(pos) = self.optional_pos(lat, lon, start, "member")? {
                    self.cur.member_points.push(pos);
                }
                self.cur.members.push(Member { ty, id, role, geometry: None });
                Ctx::Member
            }
            (Some(Ctx::Member), b"nd") => {
                let [lat, lon] = self.attrs(e, start, "nd", [b"lat", b"lon"])?;
                match self.optional_pos(lat, lon, start, "nd")? {
                    Some(pos) => self.cur.member_points.push(pos),
                    None => self.cur.member_points_incomplete = true,
                }
                Ctx::Ignored
            }
            _ => Ctx::Ignored,
        };
        self.stack.push(Open { ctx, start });
        Ok(())
    }

    /// Starts a node, way or relation; `Ctx::Ignored` for deleted objects.
    fn begin_object(&mut self, e: &BytesStart, start: usize, ty: OsmType) -> Result<Ctx, IngestError> {
        let element = ty.as_str();
        let [id, lat, lon, visible, action] =
            self.attrs(e, start, element, [b"id", b"lat", b"lon", b"visible", b"action"])?;
        let id = self.id(id, start, element, "id")?;
        if visible.as_deref() == Some("false") || action.as_deref() == Some("delete") {
            return Ok(Ctx::Ignored);
        }
        self.cur.id = id;
        self.cur.tags = Tags::new();
        Ok(match ty {
            OsmType::Node => {
                let lat = self.required(lat, start, element, "lat")?;
                let lon = self.required(lon, start, element, "lon")?;
                self.cur.pos = Some(self.pos(&lat, &lon, start, element)?);
                Ctx::Node
            }
            OsmType::Way => {
                self.cur.nodes = Vec::new();
                Ctx::Way
            }
            OsmType::Relation => {
                self.cur.members = Vec::new();
                Ctx::Relation
            }
        })
    }

    fn close(&mut self, at: usize) -> Result<(), IngestError> {
        let Some(open) = self.stack.pop() else {
            return Err(self.error(at, "end tag without a start tag"));
        };
        let cur = &mut self.cur;
        match open.ctx {
            Ctx::Node => {
                let pos = cur.pos.take().unwrap_or(LatLon::new(0.0, 0.0));
                self.data.nodes.insert(cur.id, Node { pos, tags: std::mem::take(&mut cur.tags) });
            }
            Ctx::Way => {
                let way = Way { nodes: std::mem::take(&mut cur.nodes), tags: std::mem::take(&mut cur.tags) };
                self.data.ways.insert(cur.id, way);
            }
            Ctx::Relation => {
                let relation =
                    Relation { members: std::mem::take(&mut cur.members), tags: std::mem::take(&mut cur.tags) };
                self.data.relations.insert(cur.id, relation);
            }
            Ctx::Member => {
                let points = std::mem::take(&mut cur.member_points);
                if let Some(member) = cur.members.last_mut() {
                    if cur.member_points_incomplete {
                        tracing::debug!(
                            member = %format!("{} {}", member.ty.as_str(), member.id),
                            "inline member geometry has points without coordinates; dropped"
                        );
                    } else if !points.is_empty() {
                        member.geometry = Some(points);
                    }
                }
            }
            Ctx::Remark => {
                let remark = self.remark.trim();
                if !remark.is_empty() {
                    tracing::warn!(path = %self.label.display(), "Overpass remark: {remark}");
                }
            }
            Ctx::Osm | Ctx::Ignored => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<OsmData, IngestError> {
        let end = self.bytes.len();
        if let Some(open) = self.stack.last() {
            let (line, column) = line_column(self.bytes, open.start);
            let what = match open.ctx {
                Ctx::Osm => "osm",
                Ctx::Node => "node",
                Ctx::Way => "way",
                Ctx::Relation => "relation",
                Ctx::Member => "member",
                Ctx::Remark => "remark",
                Ctx::Ignored => "element",
            };
            let message = format!(
                "unexpected end of file: the <{what}> element started at line {line}, column {column} is not closed"
            );
            return Err(self.error(end, message));
        }
        if !self.root_seen {
            return Err(self.error(end, "unexpected end of file: no <osm> element (empty or not an OSM XML file)"));
        }
        Ok(self.data)
    }

    /// The values of the attributes `names` of `e` (unescaped), in that order.
    fn attrs<'e, const N: usize>(
        &self,
        e: &'e BytesStart,
        start: usize,
        element: &str,
        names: [&[u8]; N],
    ) -> Result<[Option<Cow<'e, str>>; N], IngestError> {
        let mut values: [Option<Cow<'e, str>>; N] = std::array::from_fn(|_| None);
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.error(start, format!("<{element}>: malformed attribute: {err}")))?;
            if let Some(i) = names.iter().position(|n| *n == attr.key.as_ref()) {
                let value = attr.unescape_value().map_err(|err| {
                    let key = String::from_utf8_lossy(attr.key.as_ref());
                    self.error(start, format!("<{element}> attribute {key}: {err}"))
                })?;
                values[i] = Some(value);
            }
        }
        Ok(values)
    }

    fn required<'v>(
        &self,
        value: Option<Cow<'v, str>>,
        start: usize,
        element: &str,
        attr: &str,
    ) -> Result<Cow<'v, str>, IngestError> {
        value.ok_or_else(|| self.error(start, format!("<{element}> has no {attr} attribute")))
    }

    fn id(&self, value: Option<Cow<str>>, start: usize, element: &str, attr: &str) -> Result<i64, IngestError> {
        let value = self.required(value, start, element, attr)?;
        value
            .trim()
            .parse::<i64>()
            .map_err(|_| self.error(start, format!("<{element}> attribute {attr}=\"{value}\" is not an integer id")))
    }

    fn pos(&self, lat: &str, lon: &str, start: usize, element: &str) -> Result<LatLon, IngestError> {
        let deg = |attr: &str, value: &str, limit_deg: f64| -> Result<f64, IngestError> {
            let v: f64 = value
                .trim()
                .parse()
                .map_err(|_| self.error(start, format!("<{element}> attribute {attr}=\"{value}\" is not a number")))?;
            if !v.is_finite() || v.abs() > limit_deg {
                let message = format!(
                    "<{element}> attribute {attr}=\"{value}\" is out of range (-{limit_deg} to {limit_deg} degrees)"
                );
                return Err(self.error(start, message));
            }
            Ok(v)
        };
        Ok(LatLon::new(deg("lat", lat, 90.0)?, deg("lon", lon, 180.0)?))
    }

    /// `lat`/`lon` that may both be absent, but not only one of them.
    fn optional_pos(
        &self,
        lat: Option<Cow<str>>,
        lon: Option<Cow<str>>,
        start: usize,
        element: &str,
    ) -> Result<Option<LatLon>, IngestError> {
        match (lat, lon) {
            (Some(lat), Some(lon)) => self.pos(&lat, &lon, start, element).map(Some),
            (None, None) => Ok(None),
            (Some(_), None) => Err(self.error(start, format!("<{element}> has lat but no lon attribute"))),
            (None, Some(_)) => Err(self.error(start, format!("<{element}> has lon but no lat attribute"))),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = 1 + before[line_start..].iter().filter(|&&b| b & 0xC0 != 0x80).count();
    (line, column)
}

/// Writes `data` as OSM XML 0.6 (nodes, ways, relations in id order).
///
/// Coordinates are written with the shortest decimal text that parses back to the same
/// `f64`, so [`parse_xml`] returns exactly the written data. Member geometry is written
/// Overpass-style, as `<nd lat lon/>` inside the `<member>` (an empty geometry reads
/// back as none). [`OsmData::origins`] has no XML form and is not written. Strings with
/// characters XML 1.0 cannot hold (most control characters) are an
/// [`io::ErrorKind::InvalidData`] error.
pub fn write_xml<W: Write>(data: &OsmData, writer: W) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 16, writer);
    w.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<osm version=\"0.6\" generator=\"swm\">\n")?;
    if let Some([west, south, east, north]) = data.bbox_wgs84() {
        writeln!(w, " <bounds minlat=\"{south}\" minlon=\"{west}\" maxlat=\"{north}\" maxlon=\"{east}\"/>")?;
    }
    for (id, node) in &data.nodes {
        write!(w, " <node id=\"{id}\" lat=\"{}\" lon=\"{}\"", node.pos.lat_deg, node.pos.lon_deg)?;
        if node.tags.is_empty() {
            w.write_all(b"/>\n")?;
        } else {
            w.write_all(b">\n")?;
            write_tags(&mut w, &node.tags, "node", *id)?;
            w.write_all(b" </node>\n")?;
        }
    }
    for (id, way) in &data.ways {
        writeln!(w, " <way id=\"{id}\">")?;
        for n in &way.nodes {
            writeln!(w, "  <nd ref=\"{n}\"/>")?;
        }
        write_tags(&mut w, &way.tags, "way", *id)?;
        w.write_all(b" </way>\n")?;
    }
    for (id, relation) in &data.relations {
        writeln!(w, " <relation id=\"{id}\">")?;
        for m in &relation.members {
            write!(w, "  <member type=\"{}\" ref=\"{}\" role=\"", m.ty.as_str(), m.id)?;
            write_escaped(&mut w, &m.role, "relation", *id)?;
            match m.geometry.as_deref() {
                Some(points) if !points.is_empty() => {
                    w.write_all(b"\">\n")?;
                    for p in points {
                        writeln!(w, "   <nd lat=\"{}\" lon=\"{}\"/>", p.lat_deg, p.lon_deg)?;
                    }
                    w.write_all(b"  </member>\n")?;
                }
                _ => w.write_all(b"\"/>\n")?,
            }
        }
        write_tags(&mut w, &relation.tags, "relation", *id)?;
        w.write_all(b" </relation>\n")?;
    }
    w.write_all(b"</osm>\n")?;
    w.flush()
}

fn write_tags(w: &mut impl Write, tags: &Tags, element: &str, id: i64) -> io::Result<()> {
    for (k, v) in tags.iter() {
        w.write_all(b"  <tag k=\"")?;
        write_escaped(w, k, element, id)?;
        w.write_all(b"\" v=\"")?;
        write_escaped(w, v, element, id)?;
        w.write_all(b"\"/>\n")?;
    }
    Ok(())
}

/// Writes `s` as the content of a double-quoted attribute value.
fn write_escaped(w: &mut impl Write, s: &str, element: &str, id: i64) -> io::Result<()> {
    let mut plain_from = 0;
    for (i, c) in s.char_indices() {
        let escape: Cow<'static, str> = match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            // Literal tabs and line breaks in attributes are normalised to spaces by XML
            // parsers; character references keep them.
            '\t' | '\n' | '\r' => format!("&#{};", c as u32).into(),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{element} {id}: character U+{:04X} cannot be written in XML 1.0", c as u32),
                ));
            }
            _ => continue,
        };
        w.write_all(&s.as_bytes()[plain_from..i])?;
        w.write_all(escape.as_bytes())?;
        plain_from = i + c.len_utf8();
    }
    w.write_all(&s.as_bytes()[plain_from..])
}

/// OSM tags `(key, value)` of a hand-built fixture ([`document_from_local_m`]).
pub type FixtureTags<'a> = &'a [(&'a str, &'a str)];

/// Where [`document_from_local_m`] anchors its local metres (WGS84 degrees: Seoul).
pub const LOCAL_ORIGIN_LAT_LON: (f64, f64) = (37.5, 127.0);

/// A small OSM XML document from nodes `(id, x_m, y_m, tags)` given in local metres east
/// and north of [`LOCAL_ORIGIN_LAT_LON`] (equirectangular, exact enough over a few km) and
/// ways `(node ids, tags)` numbered from 1000: hand-built fixtures for tests and examples.
/// Tag keys and values are written as given (no XML escaping).
pub fn document_from_local_m(nodes: &[(i64, f64, f64, FixtureTags)], ways: &[(&[i64], FixtureTags)]) -> String {
    let (lat0, lon0) = LOCAL_ORIGIN_LAT_LON;
    let m_per_deg_lat = 111_320.0;
    let m_per_deg_lon = 111_320.0 * lat0.to_radians().cos();
    let mut xml = String::from("<?xml version='1.0' encoding='UTF-8'?>\n<osm version='0.6'>\n");
    for (id, x, y, tags) in nodes {
        xml += &format!(
            "<node id='{id}' version='1' lat='{:.8}' lon='{:.8}'>",
            lat0 + y / m_per_deg_lat,
            lon0 + x / m_per_deg_lon
        );
        for (k, v) in tags.iter() {
            xml += &format!("<tag k='{k}' v='{v}'/>");
        }
        xml += "</node>\n";
    }
    for (i, (nds, tags)) in ways.iter().enumerate() {
        xml += &format!("<way id='{}' version='1'>", 1000 + i);
        for n in nds.iter() {
            xml += &format!("<nd ref='{n}'/>");
        }
        for (k, v) in tags.iter() {
            xml += &format!("<tag k='{k}' v='{v}'/>");
        }
        xml += "</way>\n";
    }
    xml += "</osm>\n";
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_data::require_shared_data;
    use proptest::prelude::*;

    fn parse(xml: &str) -> Result<OsmData, IngestError> {
        parse_xml(xml.as_bytes(), Path::new("fixture.osm"))
    }

    fn parse_err(xml: &str) -> String {
        match parse(xml) {
            Ok(_) => panic!("accepted bad XML: {xml}"),
            Err(e @ IngestError::Parse { .. }) => e.to_string(),
            Err(e) => panic!("wrong error kind: {e}"),
        }
    }

    const SMALL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <bounds minlat="37.5" minlon="126.9" maxlat="37.6" maxlon="127.0"/>
  <node id="1" version="3" user="kim" timestamp="2024-01-01T00:00:00Z" lat="37.5" lon="126.9"/>
  <node id="2" lat="37.6" lon="127.0"><tag k="name" v="A &amp; B &lt;&quot;&#10;"/></node>
  <node id="3" lat="10" lon="10" visible="false"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>
  <relation id="20">
    <member type="way" ref="10" role="outer"/>
    <member type="node" ref="1"/>
    <tag k="type" v="multipolygon"/>
  </relation>
</osm>
"#;

    #[test]
    fn osm_xml_reads_api_06_document() {
        let data = parse(SMALL).unwrap();
        assert_eq!(data.nodes.len(), 2, "the invisible node is skipped");
        assert_eq!(data.nodes[&1].pos, LatLon::new(37.5, 126.9));
        assert_eq!(data.nodes[&2].tags.get("name"), Some("A & B <\"\n"));
        assert_eq!(data.ways[&10].nodes, vec![1, 2]);
        assert!(data.ways[&10].tags.is("highway", "residential"));
        let r = &data.relations[&20];
        assert_eq!(r.members.len(), 2);
        assert_eq!((r.members[0].ty, r.members[0].id, r.members[0].role.as_str()), (OsmType::Way, 10, "outer"));
        assert_eq!((r.members[1].ty, r.members[1].role.as_str()), (OsmType::Node, ""));
        assert!(r.members.iter().all(|m| m.geometry.is_none()));
    }

    #[test]
    fn osm_xml_reads_overpass_out_geom() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><osm version="0.6" generator="Overpass API">
<note>ODbL</note><meta osm_base="2024-11-01T13:49:26Z"/>
<way id="5"><bounds minlat="1" minlon="2" maxlat="1.5" maxlon="2.5"/>
  <nd ref="100" lat="1.0" lon="2.0"/><nd ref="101" lat="1.5" lon="2.5"/><tag k="building" v="yes"/></way>
<relation id="6"><bounds minlat="1" minlon="2" maxlat="1.5" maxlon="2.5"/>
  <member type="node" ref="100" role="label" lat="1.0" lon="2.0"/>
  <member type="way" ref="77" role="outer"><nd lat="1" lon="2"/><nd lat="1.5" lon="2"/><nd lat="1" lon="2"/></member>
  <member type="way" ref="78" role="inner"/>
  <tag k="type" v="multipolygon"/></relation>
<remark> runtime error: Query timed out </remark>
</osm>"#;
        let data = parse(xml).unwrap();
        assert_eq!(data.nodes.len(), 2, "nodes created from the way's inline coordinates");
        assert_eq!(data.nodes[&101].pos, LatLon::new(1.5, 2.5));
        assert_eq!(data.ways[&5].nodes, vec![100, 101]);
        let m = &data.relations[&6].members;
        assert_eq!(m[0].geometry, Some(vec![LatLon::new(1.0, 2.0)]));
        assert_eq!(m[1].geometry.as_ref().map(Vec::len), Some(3));
        assert_eq!(m[2].geometry, None);
    }

    #[test]
    fn osm_xml_later_node_element_replaces_inline_node() {
        let xml = r#"<osm><way id="5"><nd ref="1" lat="1" lon="1"/></way>
            <node id="1" lat="1" lon="1"><tag k="a" v="b"/></node></osm>"#;
        assert!(parse(xml).unwrap().nodes[&1].tags.is("a", "b"));
    }

    #[test]
    fn osm_xml_errors_name_file_line_and_column() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "<osm>\n  <node id=\"1\" lat=\"abc\" lon=\"1\"/>\n</osm>",
                "line 2, column 3",
                &["lat=\"abc\"", "not a number"],
            ),
            ("<osm>\n<node id=\"1\" lat=\"95\" lon=\"1\"/></osm>", "line 2, column 1", &["out of range"]),
            ("<osm><node id=\"x1\" lat=\"1\" lon=\"1\"/></osm>", "line 1, column 6", &["id=\"x1\"", "integer"]),
            ("<osm><node id=\"1\" lon=\"1\"/></osm>", "line 1, column 6", &["<node> has no lat"]),
            ("<osm><way id=\"1\"><nd/></way></osm>", "line 1, column 18", &["<nd> has no ref"]),
            ("<osm><way id=\"1\"><nd ref=\"2\" lat=\"1\"/></way></osm>", "column 18", &["lat but no lon"]),
            ("<osm><relation id=\"1\"><member type=\"area\" ref=\"2\"/></relation></osm>", "column 23", &["area"]),
            ("<osm><node id=\"1\" lat=\"1\" lon=\"1\"><tag k=\"a\"/></node></osm>", "column 35", &["no v attribute"]),
            (
                "<osm>\n<way id=\"1\">\n<nd ref=\"1\"/>",
                "line 3, column 14",
                &["unexpected end of file", "line 2, column 1"],
            ),
            ("<osm>\n<way id=\"1\"></node></osm>", "line 2", &["malformed XML"]),
            ("<osm><node id=\"1\" lat=\"1\" lon=\"1\"", "line 1", &["malformed XML"]),
            ("<osm><node id=\"1\" id=\"2\" lat=\"1\" lon=\"1\"/></osm>", "line 1, column 6", &["malformed attribute"]),
            ("<osm><tag k=\"&bogus;\" v=\"\"/></osm>", "", &[]),
            ("<gpx></gpx>", "line 1, column 1", &["expected the <osm> root"]),
            ("", "line 1, column 1", &["no <osm> element"]),
            ("<osm/><osm/>", "column 7", &["after the end"]),
            (
                "<osm>\n  <node id=\"1\" lat=\"1\" lon=\"1\"><tag k=\"n\" v=\"가\"/>\u{ac00}<",
                "line 2",
                &["malformed XML"],
            ),
        ];
        for (xml, location, words) in cases {
            if words.is_empty() {
                // Unknown elements at the top level are skipped, whatever they hold.
                assert!(parse(xml).is_ok(), "{xml}");
                continue;
            }
            let err = parse_err(xml);
            assert!(err.starts_with("fixture.osm: line "), "{err}");
            assert!(err.contains(location), "{xml}\n-> {err}\n(expected {location})");
            for w in *words {
                assert!(err.contains(w), "{xml}\n-> {err}\n(expected {w})");
            }
        }
    }

    #[test]
    fn osm_xml_column_counts_characters() {
        assert_eq!(line_column("가나\n다라x".as_bytes(), "가나\n다라".len()), (2, 3));
        assert_eq!(line_column(b"abc", 99), (1, 4));
    }

    #[test]
    fn osm_xml_writer_rejects_control_characters() {
        let mut data = OsmData::new();
        data.nodes.insert(1, Node { pos: LatLon::new(1.0, 2.0), tags: [("a", "b\u{1}")].into_iter().collect() });
        let err = write_xml(&data, Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("node 1"), "{err}");
    }

    #[test]
    fn osm_xml_read_file_errors_name_the_path() {
        let err = read_xml(Path::new("/nonexistent/x.osm")).unwrap_err();
        assert!(matches!(err, IngestError::Io { .. }), "{err}");
        // The OS error is the source, not part of the message: the chain shows it once.
        let os = std::error::Error::source(&err).expect("the I/O error is the source").to_string();
        let chain = swm_core::ErrorChain(&err).to_string();
        assert!(chain.starts_with("cannot read /nonexistent/x.osm: "), "{chain}");
        assert_eq!(chain.matches(&os).count(), 1, "{chain}");
    }

    /// The Overpass export of Jamsil holds the same objects as the PBF osmium wrote from it.
    #[test]
    fn osm_xml_jamsil_overpass_matches_pbf() {
        let (Some(xml), Some(pbf)) =
            (require_shared_data("seoul/jamsil-overpass.osm"), require_shared_data("seoul/jamsil.osm.pbf"))
        else {
            return;
        };
        let from_xml = read_xml(&xml).unwrap();
        let from_pbf = crate::osm_pbf::read_pbf(&pbf).unwrap();
        assert_eq!(from_xml.nodes.len(), from_pbf.nodes.len());
        for ((id, a), (pid, b)) in from_xml.nodes.iter().zip(&from_pbf.nodes) {
            assert_eq!(id, pid);
            assert_eq!(a.tags, b.tags, "node {id}");
            assert!(
                (a.pos.lat_deg - b.pos.lat_deg).abs() < 1e-7 && (a.pos.lon_deg - b.pos.lon_deg).abs() < 1e-7,
                "node {id}: {:?} vs {:?}",
                a.pos,
                b.pos
            );
        }
        assert_eq!(from_xml.ways, from_pbf.ways);
        assert_eq!(from_xml.relations.len(), from_pbf.relations.len());
        let mut with_geometry = 0;
        for ((id, a), (pid, b)) in from_xml.relations.iter().zip(&from_pbf.relations) {
            assert_eq!(id, pid);
            assert_eq!(a.tags, b.tags, "relation {id}");
            let strip =
                |r: &Relation| r.members.iter().map(|m| Member { geometry: None, ..m.clone() }).collect::<Vec<_>>();
            assert_eq!(strip(a), strip(b), "relation {id}");
            with_geometry += a.members.iter().filter(|m| m.geometry.is_some()).count();
        }
        assert!(with_geometry > 0, "Overpass out geom member geometry was read");
        // And the XML written from it reads back identically.
        let mut written = Vec::new();
        write_xml(&from_xml, &mut written).unwrap();
        assert_eq!(parse_xml(&written, Path::new("written.osm")).unwrap(), from_xml);
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // Printable text plus the characters that need escaping (XML 1.0 cannot hold
        // most control characters, so they are not generated).
        prop::string::string_regex("[a-z:_ &<>\"'\t\n\r가-힣é😀]{0,12}").unwrap()
    }

    fn arb_tags() -> impl Strategy<Value = Tags> {
        prop::collection::vec((arb_text(), arb_text()), 0..4).prop_map(|kv| kv.into_iter().collect())
    }

    fn arb_pos() -> impl Strategy<Value = LatLon> {
        (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(lat, lon)| LatLon::new(lat, lon))
    }

    fn arb_type() -> impl Strategy<Value = OsmType> {
        prop_oneof![Just(OsmType::Node), Just(OsmType::Way), Just(OsmType::Relation)]
    }

    fn arb_data() -> impl Strategy<Value = OsmData> {
        let node = (arb_pos(), arb_tags()).prop_map(|(pos, tags)| Node { pos, tags });
        let way = (prop::collection::vec(any::<i64>(), 0..6), arb_tags()).prop_map(|(nodes, tags)| Way { nodes, tags });
        let member = (arb_type(), any::<i64>(), arb_text(), prop::option::of(prop::collection::vec(arb_pos(), 1..4)))
            .prop_map(|(ty, id, role, geometry)| Member { ty, id, role, geometry });
        let relation =
            (prop::collection::vec(member, 0..4), arb_tags()).prop_map(|(members, tags)| Relation { members, tags });
        (
            prop::collection::btree_map(any::<i64>(), node, 0..8),
            prop::collection::btree_map(any::<i64>(), way, 0..5),
            prop::collection::btree_map(any::<i64>(), relation, 0..4),
        )
            .prop_map(|(nodes, ways, relations)| {
                let mut data = OsmData::new();
                data.nodes = nodes;
                data.ways = ways;
                data.relations = relations;
                data
            })
    }

    proptest! {
        #[test]
        fn osm_xml_write_then_parse_round_trips(data in arb_data()) {
            let mut bytes = Vec::new();
            write_xml(&data, &mut bytes).unwrap();
            let back = parse_xml(&bytes, Path::new("roundtrip.osm")).unwrap();
            prop_assert_eq!(back, data);
        }

        #[test]
        fn osm_xml_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_xml(&bytes, Path::new("garbage.osm"));
        }
    }
}
