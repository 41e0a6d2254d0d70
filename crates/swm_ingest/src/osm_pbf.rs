//! OSM PBF (`.osm.pbf`) reader.
//!
//! A PBF file is a sequence of blobs, each a 4-byte big-endian header length, a
//! `BlobHeader` and a `Blob` (raw or zlib-compressed protobuf). The first data-bearing
//! blob is an `OSMHeader`; the rest are `OSMData` primitive blocks holding nodes (plain
//! or dense), ways and relations.
//!
//! The file is split into blobs first (cheap: only the framing is read), then the blobs
//! are decompressed and decoded in parallel with rayon and merged in blob order, so the
//! result does not depend on the thread count. When the same id appears twice the later
//! one in the file wins, as with sequential reading.
//!
//! The protobuf messages are decoded by a small checked decoder in this module rather
//! than through `osmpbf`'s element iterators: those panic on some malformed input
//! (an unknown relation member type is `unwrap`ped, delta sums overflow) and their
//! protobuf structures are private, so they cannot be validated first. Here every
//! index, delta and length is checked and a bad file is an [`IngestError::Parse`] that
//! names the blob index and its byte offset. (`osmpbf` is still used by the tests, as an
//! independent decoder to compare against.)

use crate::IngestError;
use crate::osm::{Member, Node, OsmData, Relation, Tags, Way};
use rayon::prelude::*;
use std::io::Read;
use std::path::Path;
use swm_core::{LatLon, OsmType};

/// Largest `BlobHeader` the format allows.
const MAX_BLOB_HEADER_BYTES: usize = 64 * 1024;
/// Largest (compressed or uncompressed) blob the format allows.
const MAX_BLOB_BYTES: usize = 32 * 1024 * 1024;
/// Features of the `OSMHeader` this reader understands.
const SUPPORTED_FEATURES: [&str; 2] = ["OsmSchema-V0.6", "DenseNodes"];

/// Reads an OSM PBF file.
pub fn read_pbf(path: &Path) -> Result<OsmData, IngestError> {
    let bytes = std::fs::read(path).map_err(|e| IngestError::io(path, e))?;
    parse_pbf(&bytes, path)
}

/// Parses the bytes of an OSM PBF file; `label` names the file in errors.
pub fn parse_pbf(bytes: &[u8], label: &Path) -> Result<OsmData, IngestError> {
    let frames = split_blobs(bytes, label)?;
    let header_count = frames.iter().filter(|f| f.kind == BlobKind::Header).count();
    let data_count = frames.iter().filter(|f| f.kind == BlobKind::Data).count();
    tracing::debug!(path = %label.display(), header_count, data_count, bytes_len = bytes.len(), "PBF blobs");
    match frames.iter().find(|f| f.kind != BlobKind::Unknown) {
        None => return Err(IngestError::parse(label, "byte 0", "no OSMHeader blob: empty or not an OSM PBF file")),
        Some(first) if first.kind != BlobKind::Header => {
            return Err(first.error(label, "the first blob is OSMData; an OSM PBF file starts with an OSMHeader blob"));
        }
        Some(_) => {}
    }

    // Decode every blob (in parallel), then report the first error in file order.
    let decoded: Vec<Result<Block, IngestError>> = frames
        .par_iter()
        .map(|frame| {
            let raw = frame.decompress().map_err(|m| frame.error(label, m))?;
            match frame.kind {
                BlobKind::Header => check_header_block(&raw).map(|bbox_wgs84| Block { bbox_wgs84, ..Block::default() }),
                BlobKind::Data => decode_primitive_block(&raw),
                BlobKind::Unknown => Ok(Block::default()),
            }
            .map_err(|m| frame.error(label, m))
        })
        .collect();
    let mut blocks = Vec::with_capacity(decoded.len());
    for block in decoded {
        blocks.push(block?);
    }

    // Merge in blob order. `BTreeMap::from_iter` sorts stably and keeps the last of equal
    // keys, which is what inserting one by one in file order would give.
    let node_count: usize = blocks.iter().map(|b| b.nodes.len()).sum();
    let way_count: usize = blocks.iter().map(|b| b.ways.len()).sum();
    let relation_count: usize = blocks.iter().map(|b| b.relations.len()).sum();
    let mut nodes = Vec::with_capacity(node_count);
    let mut ways = Vec::with_capacity(way_count);
    let mut relations = Vec::with_capacity(relation_count);
    let bounds_wgs84 = blocks.iter().find_map(|b| b.bbox_wgs84);
    for block in blocks {
        nodes.extend(block.nodes);
        ways.extend(block.ways);
        relations.extend(block.relations);
    }
    let mut data = OsmData::new();
    data.nodes = nodes.into_iter().collect();
    data.ways = ways.into_iter().collect();
    data.relations = relations.into_iter().collect();
    data.bounds_wgs84 = bounds_wgs84;
    Ok(data)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlobKind {
    Header,
    Data,
    Unknown,
}

/// One blob of the file, not yet decoded.
struct Frame<'a> {
    index: usize,
    /// Offset of the blob's 4-byte length prefix from the start of the file.
    offset_bytes: usize,
    kind: BlobKind,
    /// The serialized `Blob` message.
    blob: &'a [u8],
}

impl Frame<'_> {
    fn error(&self, label: &Path, message: impl Into<String>) -> IngestError {
        IngestError::parse(label, blob_location(self.index, self.offset_bytes), message)
    }

    /// The blob's content, decompressed.
    fn decompress(&self) -> Result<Vec<u8>, String> {
        let mut raw: Option<&[u8]> = None;
        let mut zlib: Option<&[u8]> = None;
        let mut raw_size: Option<i64> = None;
        let mut other: Option<&'static str> = None;
        let mut msg = Pb::new(self.blob);
        while let Some((field, value)) = msg.next_field()? {
            match (field, value) {
                (1, Value::Bytes(b)) => raw = Some(b),
                (2, Value::Varint(v)) => raw_size = Some(v as i32 as i64),
                (3, Value::Bytes(b)) => zlib = Some(b),
                (4, Value::Bytes(_)) => other = Some("LZMA"),
                (5, Value::Bytes(_)) => other = Some("bzip2"),
                (6, Value::Bytes(_)) => other = Some("LZ4"),
                (7, Value::Bytes(_)) => other = Some("Zstandard"),
                (1..=7, v) => return Err(format!("Blob field {field} has the wrong wire type ({})", v.wire_name())),
                _ => {}
            }
        }
        if let Some(raw) = raw {
            return Ok(raw.to_vec());
        }
        if let Some(zlib) = zlib {
            let raw_size = raw_size.ok_or("zlib-compressed blob without raw_size")?;
            let raw_size = usize::try_from(raw_size)
                .ok()
                .filter(|&s| s <= MAX_BLOB_BYTES)
                .ok_or_else(|| format!("blob raw_size {raw_size} is negative or over the 32 MiB limit"))?;
            let mut out = Vec::with_capacity(raw_size);
            let mut decoder = flate2::read::ZlibDecoder::new(zlib).take(raw_size as u64 + 1);
            decoder.read_to_end(&mut out).map_err(|e| format!("corrupt zlib data: {e}"))?;
            if out.len() != raw_size {
                return Err(format!(
                    "corrupt blob: zlib data inflates to {}{} bytes, raw_size says {raw_size}",
                    if out.len() > raw_size { "more than " } else { "" },
                    out.len().min(raw_size)
                ));
            }
            return Ok(out);
        }
        match other {
            Some(name) => Err(format!("{name}-compressed blobs are not supported (recompress with zlib)")),
            None => Err("empty blob: neither raw nor zlib data".to_string()),
        }
    }
}

fn blob_location(index: usize, offset_bytes: usize) -> String {
    format!("blob {index} at byte offset {offset_bytes}")
}

/// Splits the file into blobs, reading only each `BlobHeader`.
fn split_blobs<'a>(bytes: &'a [u8], label: &Path) -> Result<Vec<Frame<'a>>, IngestError> {
    let mut frames = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let index = frames.len();
        let err = |message: String| IngestError::parse(label, blob_location(index, pos), message);
        let rest = &bytes[pos..];
        let Some(len_prefix) = rest.first_chunk::<4>() else {
            return Err(err(format!(
                "truncated file: {} trailing bytes where a 4-byte blob header length should be",
                rest.len()
            )));
        };
        let header_len = u32::from_be_bytes(*len_prefix) as usize;
        if header_len > MAX_BLOB_HEADER_BYTES {
            return Err(err(format!(
                "blob header length {header_len} bytes exceeds the 64 KiB limit (not an OSM PBF file, or corrupt)"
            )));
        }
        let Some(header) = rest.get(4..4 + header_len) else {
            return Err(err(format!(
                "truncated file: the blob header needs {header_len} bytes, only {} left",
                rest.len() - 4
            )));
        };
        let (blob_type, data_size) = parse_blob_header(header).map_err(|m| err(format!("bad blob header: {m}")))?;
        let data_size = usize::try_from(data_size)
            .ok()
            .filter(|&s| s <= MAX_BLOB_BYTES)
            .ok_or_else(|| err(format!("bad blob header: blob size {data_size} is negative or over 32 MiB")))?;
        let start = 4 + header_len;
        let Some(blob) = rest.get(start..start + data_size) else {
            return Err(err(format!(
                "truncated file: the {blob_type} blob needs {data_size} bytes, only {} left",
                rest.len() - start
            )));
        };
        let kind = match blob_type {
            "OSMHeader" => BlobKind::Header,
            "OSMData" => BlobKind::Data,
            other => {
                tracing::debug!(blob = index, blob_type = other, "skipping PBF blob of unknown type");
                BlobKind::Unknown
            }
        };
        frames.push(Frame { index, offset_bytes: pos, kind, blob });
        pos += start + data_size;
    }
    Ok(frames)
}

/// `(type, datasize)` of a `BlobHeader`.
fn parse_blob_header(header: &[u8]) -> Result<(&str, i64), String> {
    let mut blob_type = None;
    let mut data_size = None;
    let mut msg = Pb::new(header);
    while let Some((field, value)) = msg.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => blob_type = Some(std::str::from_utf8(b).map_err(|_| "blob type is not UTF-8")?),
            (3, Value::Varint(v)) => data_size = Some(v as i32 as i64),
            (1 | 3, v) => return Err(format!("BlobHeader field {field} has the wrong wire type ({})", v.wire_name())),
            _ => {}
        }
    }
    Ok((blob_type.ok_or("no blob type")?, data_size.ok_or("no blob size")?))
}

/// Rejects files needing features this reader does not implement (history, ...); returns
/// the header's bounding box (`[west, south, east, north]`, degrees) when it has a valid one.
fn check_header_block(raw: &[u8]) -> Result<Option<[f64; 4]>, String> {
    let mut msg = Pb::new(raw);
    let mut bbox = None;
    while let Some((field, value)) = msg.next_field()? {
        if field == 1
            && let Value::Bytes(b) = value
        {
            bbox = header_bbox(b)?;
        }
        if field == 4 {
            let Value::Bytes(b) = value else {
                return Err("HeaderBlock required_features has the wrong wire type".into());
            };
            let feature = String::from_utf8_lossy(b);
            if !SUPPORTED_FEATURES.contains(&feature.as_ref()) {
                return Err(if feature == "HistoricalInformation" {
                    "OSM history files are not supported (extract a snapshot first, e.g. `osmium time-filter`)"
                        .to_string()
                } else {
                    format!("the file requires the unsupported PBF feature {feature:?}")
                });
            }
        }
    }
    Ok(bbox)
}

/// A `HeaderBBox` (left, right, top, bottom in nanodegrees) as `[west, south, east, north]`;
/// `None` when a side is missing or the box is empty or off the globe (the box is a hint).
fn header_bbox(raw: &[u8]) -> Result<Option<[f64; 4]>, String> {
    let mut sides = [None; 4];
    let mut msg = Pb::new(raw);
    while let Some((field, value)) = msg.next_field()? {
        if let (1..=4, Value::Varint(v)) = (field, value) {
            sides[field as usize - 1] = Some(zigzag(v) as f64 * 1e-9);
        }
    }
    let [Some(left), Some(right), Some(top), Some(bottom)] = sides else { return Ok(None) };
    let ok = (-180.0..=180.0).contains(&left)
        && (-180.0..=180.0).contains(&right)
        && (-90.0..=90.0).contains(&bottom)
        && (-90.0..=90.0).contains(&top)
        && left < right
        && bottom < top;
    Ok(ok.then_some([left, bottom, right, top]))
}

/// The objects of one `PrimitiveBlock`, in file order.
#[derive(Default)]
struct Block {
    /// The `OSMHeader`'s bounding box (header blocks only).
    bbox_wgs84: Option<[f64; 4]>,
    nodes: Vec<(i64, Node)>,
    ways: Vec<(i64, Way)>,
    relations: Vec<(i64, Relation)>,
}

/// Coordinate decoding parameters of a block (nanodegrees).
struct Grid {
    granularity_nanodeg: i64,
    lat_offset_nanodeg: i64,
    lon_offset_nanodeg: i64,
}

impl Grid {
    fn pos(&self, lat: i64, lon: i64) -> Option<LatLon> {
        let nano = |offset: i64, v: i64| offset as i128 + self.granularity_nanodeg as i128 * v as i128;
        // Dividing the exact integer by 1e9 rounds once, to the same f64 as parsing the
        // decimal text of an OSM XML file.
        let pos = LatLon::new(
            nano(self.lat_offset_nanodeg, lat) as f64 / 1e9,
            nano(self.lon_offset_nanodeg, lon) as f64 / 1e9,
        );
        pos.is_valid().then_some(pos)
    }
}

fn decode_primitive_block(raw: &[u8]) -> Result<Block, String> {
    let mut strings: Vec<&str> = Vec::new();
    let mut groups: Vec<&[u8]> = Vec::new();
    let mut grid = Grid { granularity_nanodeg: 100, lat_offset_nanodeg: 0, lon_offset_nanodeg: 0 };
    let mut msg = Pb::new(raw);
    while let Some((field, value)) = msg.next_field()? {
        match (field, value) {
            (1, Value::Bytes(table)) => {
                let mut t = Pb::new(table);
                while let Some((f, v)) = t.next_field()? {
                    if f == 1 {
                        let Value::Bytes(s) = v else {
                            return Err("string table entry has the wrong wire type".into());
                        };
                        let s = std::str::from_utf8(s)
                            .map_err(|_| format!("string table entry {} is not UTF-8", strings.len()))?;
                        strings.push(s);
                    }
                }
            }
            (2, Value::Bytes(g)) => groups.push(g),
            (17, Value::Varint(v)) => grid.granularity_nanodeg = v as i32 as i64,
            (19, Value::Varint(v)) => grid.lat_offset_nanodeg = v as i64,
            (20, Value::Varint(v)) => grid.lon_offset_nanodeg = v as i64,
            (1 | 2 | 17 | 19 | 20, v) => {
                return Err(format!("PrimitiveBlock field {field} has the wrong wire type ({})", v.wire_name()));
            }
            _ => {}
        }
    }
    if grid.granularity_nanodeg <= 0 {
        return Err(format!("granularity {} nanodegrees is not positive", grid.granularity_nanodeg));
    }
    let mut block = Block::default();
    for group in groups {
        let mut g = Pb::new(group);
        while let Some((field, value)) = g.next_field()? {
            match (field, value) {
                (1, Value::Bytes(b)) => block.nodes.push(decode_node(b, &strings, &grid)?),
                (2, Value::Bytes(b)) => decode_dense_nodes(b, &strings, &grid, &mut block.nodes)?,
                (3, Value::Bytes(b)) => block.ways.push(decode_way(b, &strings)?),
                (4, Value::Bytes(b)) => block.relations.push(decode_relation(b, &strings)?),
                (1..=4, v) => {
                    return Err(format!("PrimitiveGroup field {field} has the wrong wire type ({})", v.wire_name()));
                }
                _ => {}
            }
        }
    }
    Ok(block)
}

/// String table entry `index` (a `uint32`, or an `int32` read as a sign-extended `u64`).
fn string_at<'a>(strings: &[&'a str], index: u64, what: impl Fn() -> String) -> Result<&'a str, String> {
    usize::try_from(index).ok().and_then(|i| strings.get(i).copied()).ok_or_else(|| {
        format!("{}: string index {index} is outside the string table ({} entries)", what(), strings.len())
    })
}

fn tags_from(keys: &[u64], vals: &[u64], strings: &[&str], what: &dyn Fn() -> String) -> Result<Tags, String> {
    if keys.len() != vals.len() {
        return Err(format!("{}: {} tag keys but {} values", what(), keys.len(), vals.len()));
    }
    let mut tags = Tags(Vec::with_capacity(keys.len()));
    for (&k, &v) in keys.iter().zip(vals) {
        let k = string_at(strings, k, what)?;
        let v = string_at(strings, v, what)?;
        tags.insert(k, v);
    }
    Ok(tags)
}

fn decode_node(b: &[u8], strings: &[&str], grid: &Grid) -> Result<(i64, Node), String> {
    let (mut id, mut lat, mut lon) = (None, None, None);
    let (mut keys, mut vals) = (Vec::new(), Vec::new());
    let mut msg = Pb::new(b);
    while let Some((field, value)) = msg.next_field()? {
        match field {
            1 => id = Some(zigzag(value.varint("node id")?)),
            2 => value.append_varints(&mut keys, "node keys")?,
            3 => value.append_varints(&mut vals, "node vals")?,
            8 => lat = Some(zigzag(value.varint("node lat")?)),
            9 => lon = Some(zigzag(value.varint("node lon")?)),
            _ => {}
        }
    }
    let id = id.ok_or("node without id")?;
    let what = || format!("node {id}");
    let (Some(lat), Some(lon)) = (lat, lon) else { return Err(format!("node {id} has no coordinates")) };
    let pos = grid.pos(lat, lon).ok_or_else(|| format!("node {id}: coordinates out of range"))?;
    Ok((id, Node { pos, tags: tags_from(&keys, &vals, strings, &what)? }))
}

fn decode_dense_nodes(b: &[u8], strings: &[&str], grid: &Grid, out: &mut Vec<(i64, Node)>) -> Result<(), String> {
    let (mut ids, mut lats, mut lons, mut keys_vals) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut msg = Pb::new(b);
    while let Some((field, value)) = msg.next_field()? {
        match field {
            1 => value.append_varints(&mut ids, "dense node ids")?,
            8 => value.append_varints(&mut lats, "dense node lats")?,
            9 => value.append_varints(&mut lons, "dense node lons")?,
            10 => value.append_varints(&mut keys_vals, "dense node keys_vals")?,
            _ => {}
        }
    }
    if lats.len() != ids.len() || lons.len() != ids.len() {
        return Err(format!("dense nodes: {} ids but {} lats and {} lons", ids.len(), lats.len(), lons.len()));
    }
    out.reserve(ids.len());
    let (mut id, mut lat, mut lon) = (0i64, 0i64, 0i64);
    let mut kv = keys_vals.iter().copied();
    for i in 0..ids.len() {
        let overflow = || format!("dense node {i} of the group: id or coordinate delta overflows");
        id = id.checked_add(zigzag(ids[i])).ok_or_else(overflow)?;
        lat = lat.checked_add(zigzag(lats[i])).ok_or_else(overflow)?;
        lon = lon.checked_add(zigzag(lons[i])).ok_or_else(overflow)?;
        let what = || format!("node {id}");
        let pos = grid.pos(lat, lon).ok_or_else(|| format!("node {id}: coordinates out of range"))?;
        let mut tags = Tags::new();
        if !keys_vals.is_empty() {
            loop {
                let Some(k) = kv.next() else {
                    return Err(format!("node {id}: dense keys_vals end before the node's 0 terminator"));
                };
                if k == 0 {
                    break;
                }
                let Some(v) = kv.next() else { return Err(format!("node {id}: dense tag key without value")) };
                tags.insert(string_at(strings, k, what)?, string_at(strings, v, what)?);
            }
        }
        out.push((id, Node { pos, tags }));
    }
    Ok(())
}

fn decode_way(b: &[u8], strings: &[&str]) -> Result<(i64, Way), String> {
    let mut id = None;
    let (mut keys, mut vals, mut refs) = (Vec::new(), Vec::new(), Vec::new());
    let mut msg = Pb::new(b);
    while let Some((field, value)) = msg.next_field()? {
        match field {
            1 => id = Some(value.varint("way id")? as i64),
            2 => value.append_varints(&mut keys, "way keys")?,
            3 => value.append_varints(&mut vals, "way vals")?,
            8 => value.append_varints(&mut refs, "way refs")?,
            _ => {}
        }
    }
    let id = id.ok_or("way without id")?;
    let what = || format!("way {id}");
    let mut nodes = Vec::with_capacity(refs.len());
    let mut node = 0i64;
    for r in refs {
        node = node.checked_add(zigzag(r)).ok_or_else(|| format!("way {id}: node reference delta overflows"))?;
        nodes.push(node);
    }
    Ok((id, Way { nodes, tags: tags_from(&keys, &vals, strings, &what)? }))
}

fn decode_relation(b: &[u8], strings: &[&str]) -> Result<(i64, Relation), String> {
    let mut id = None;
    let (mut keys, mut vals, mut roles, mut memids, mut types) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut msg = Pb::new(b);
    while let Some((field, value)) = msg.next_field()? {
        match field {
            1 => id = Some(value.varint("relation id")? as i64),
            2 => value.append_varints(&mut keys, "relation keys")?,
            3 => value.append_varints(&mut vals, "relation vals")?,
            8 => value.append_varints(&mut roles, "relation roles")?,
            9 => value.append_varints(&mut memids, "relation member ids")?,
            10 => value.append_varints(&mut types, "relation member types")?,
            _ => {}
        }
    }
    let id = id.ok_or("relation without id")?;
    let what = || format!("relation {id}");
    if roles.len() != memids.len() || types.len() != memids.len() {
        return Err(format!(
            "relation {id}: {} member ids but {} roles and {} types",
            memids.len(),
            roles.len(),
            types.len()
        ));
    }
    let mut members = Vec::with_capacity(memids.len());
    let mut member_id = 0i64;
    for ((&role, &delta), &ty) in roles.iter().zip(&memids).zip(&types) {
        member_id =
            member_id.checked_add(zigzag(delta)).ok_or_else(|| format!("relation {id}: member id delta overflows"))?;
        let ty = match ty {
            0 => OsmType::Node,
            1 => OsmType::Way,
            2 => OsmType::Relation,
            other => return Err(format!("relation {id}: unknown member type {other}")),
        };
        let role = string_at(strings, role, what)?.to_string();
        members.push(Member { ty, id: member_id, role, geometry: None });
    }
    Ok((id, Relation { members, tags: tags_from(&keys, &vals, strings, &what)? }))
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A protobuf field value.
#[derive(Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32,
}

impl<'a> Value<'a> {
    fn wire_name(&self) -> &'static str {
        match self {
            Value::Varint(_) => "varint",
            Value::Fixed64 => "64-bit",
            Value::Bytes(_) => "length-delimited",
            Value::Fixed32 => "32-bit",
        }
    }

    fn varint(self, what: &str) -> Result<u64, String> {
        match self {
            Value::Varint(v) => Ok(v),
            other => Err(format!("{what}: expected a varint, found a {} field", other.wire_name())),
        }
    }

    /// Appends a repeated varint field, packed or not.
    fn append_varints(self, out: &mut Vec<u64>, what: &str) -> Result<(), String> {
        match self {
            Value::Varint(v) => out.push(v),
            Value::Bytes(b) => {
                // Every varint takes at least one byte.
                out.reserve(b.len());
                let mut p = Pb::new(b);
                while !p.at_end() {
                    out.push(p.varint().map_err(|e| format!("{what}: {e}"))?);
                }
            }
            other => return Err(format!("{what}: expected varints, found a {} field", other.wire_name())),
        }
        Ok(())
    }
}

/// A cursor over a serialized protobuf message.
struct Pb<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Pb<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else { return Err("truncated varint".into()) };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err("varint longer than 64 bits".into());
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len()).ok_or_else(|| {
            format!("truncated message: a field needs {len} bytes, {} left", self.buf.len() - self.pos)
        })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, String> {
        if self.at_end() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| format!("field number {} too large", key >> 3))?;
        if field == 0 {
            return Err("field number 0".into());
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| format!("field length {len} too large"))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed32
            }
            wire => return Err(format!("unsupported protobuf wire type {wire} (field {field})")),
        };
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_data::require_shared_data;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field_bytes(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(field) << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn field_varint(field: u32, v: u64, out: &mut Vec<u8>) {
        varint(u64::from(field) << 3, out);
        varint(v, out);
    }

    fn packed(values: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        for &v in values {
            varint(v, &mut out);
        }
        out
    }

    fn zz(v: i64) -> u64 {
        ((v << 1) ^ (v >> 63)) as u64
    }

    /// One framed blob with raw (uncompressed) content.
    fn frame(blob_type: &str, content: &[u8], out: &mut Vec<u8>) {
        let mut blob = Vec::new();
        field_bytes(1, content, &mut blob);
        field_varint(2, content.len() as u64, &mut blob);
        let mut header = Vec::new();
        field_bytes(1, blob_type.as_bytes(), &mut header);
        field_varint(3, blob.len() as u64, &mut header);
        out.extend_from_slice(&(header.len() as u32).to_be_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&blob);
    }

    fn header_block() -> Vec<u8> {
        let mut h = Vec::new();
        field_bytes(4, b"OsmSchema-V0.6", &mut h);
        field_bytes(4, b"DenseNodes", &mut h);
        h
    }

    fn string_table(strings: &[&str]) -> Vec<u8> {
        let mut t = Vec::new();
        for s in strings {
            field_bytes(1, s.as_bytes(), &mut t);
        }
        t
    }

    /// A small hand-made file: two dense nodes (one tagged), a way, a relation.
    fn small_file(member_type: u64) -> Vec<u8> {
        let mut block = Vec::new();
        field_bytes(1, &string_table(&["", "name", "Hangang", "highway", "path", "outer"]), &mut block);
        let mut dense = Vec::new();
        field_bytes(1, &packed(&[zz(10), zz(1)]), &mut dense);
        field_bytes(8, &packed(&[zz(375_000_000), zz(10)]), &mut dense);
        field_bytes(9, &packed(&[zz(1_270_000_000), zz(-10)]), &mut dense);
        field_bytes(10, &packed(&[1, 2, 0, 0]), &mut dense);
        let mut group = Vec::new();
        field_bytes(2, &dense, &mut group);
        let mut way = Vec::new();
        field_varint(1, 7, &mut way);
        field_bytes(2, &packed(&[3]), &mut way);
        field_bytes(3, &packed(&[4]), &mut way);
        field_bytes(8, &packed(&[zz(10), zz(1)]), &mut way);
        field_bytes(3, &way, &mut group);
        let mut rel = Vec::new();
        field_varint(1, 3, &mut rel);
        field_bytes(8, &packed(&[5]), &mut rel);
        field_bytes(9, &packed(&[zz(7)]), &mut rel);
        field_bytes(10, &packed(&[member_type]), &mut rel);
        field_bytes(4, &rel, &mut group);
        field_bytes(2, &group, &mut block);
        let mut file = Vec::new();
        frame("OSMHeader", &header_block(), &mut file);
        frame("OSMData", &block, &mut file);
        file
    }

    #[test]
    fn osm_pbf_decodes_hand_made_file() {
        let data = parse_pbf(&small_file(1), Path::new("small.osm.pbf")).unwrap();
        assert_eq!(data.nodes.len(), 2);
        let n10 = &data.nodes[&10];
        assert_eq!(n10.pos, LatLon::new(37.5, 127.0));
        assert_eq!(n10.tags.get("name"), Some("Hangang"));
        let n11 = &data.nodes[&11];
        assert_eq!(n11.pos, LatLon::new(37.500001, 126.999999));
        assert!(n11.tags.is_empty());
        assert_eq!(data.ways[&7].nodes, vec![10, 11]);
        assert!(data.ways[&7].tags.is("highway", "path"));
        let m = &data.relations[&3].members[0];
        assert_eq!((m.ty, m.id, m.role.as_str()), (OsmType::Way, 7, "outer"));
    }

    #[test]
    fn osm_pbf_rejects_unknown_member_type() {
        let err = parse_pbf(&small_file(9), Path::new("bad.osm.pbf")).unwrap_err().to_string();
        assert!(
            err.contains("bad.osm.pbf") && err.contains("blob 1 at byte offset") && err.contains("member type 9"),
            "{err}"
        );
    }

    #[test]
    fn osm_pbf_rejects_overflowing_deltas() {
        let mut block = Vec::new();
        field_bytes(1, &string_table(&[""]), &mut block);
        let mut dense = Vec::new();
        field_bytes(1, &packed(&[zz(i64::MAX), zz(1)]), &mut dense);
        field_bytes(8, &packed(&[0, 0]), &mut dense);
        field_bytes(9, &packed(&[0, 0]), &mut dense);
        let mut group = Vec::new();
        field_bytes(2, &dense, &mut group);
        field_bytes(2, &group, &mut block);
        let mut file = Vec::new();
        frame("OSMHeader", &header_block(), &mut file);
        frame("OSMData", &block, &mut file);
        let err = parse_pbf(&file, Path::new("x.pbf")).unwrap_err().to_string();
        assert!(err.contains("overflows"), "{err}");
    }

    #[test]
    fn osm_pbf_rejects_non_pbf_and_empty_input() {
        let err = parse_pbf(b"<?xml version='1.0'?><osm/>", Path::new("a.osm.pbf")).unwrap_err().to_string();
        assert!(err.contains("a.osm.pbf: blob 0 at byte offset 0") && err.contains("64 KiB"), "{err}");
        let err = parse_pbf(b"", Path::new("empty.pbf")).unwrap_err().to_string();
        assert!(err.contains("no OSMHeader"), "{err}");
        let mut only_data = Vec::new();
        frame("OSMData", &string_table(&[]), &mut only_data);
        let err = parse_pbf(&only_data, Path::new("d.pbf")).unwrap_err().to_string();
        assert!(err.contains("first blob"), "{err}");
    }

    #[test]
    fn osm_pbf_reads_the_header_bbox() {
        let file = small_file(1);
        assert_eq!(parse_pbf(&file, Path::new("a.pbf")).unwrap().bounds_wgs84, None, "no bbox in the header");
        let with_bbox = |left: i64, right: i64, top: i64, bottom: i64| {
            let mut bbox = Vec::new();
            for (field, v) in [(1, left), (2, right), (3, top), (4, bottom)] {
                field_varint(field, zz(v), &mut bbox);
            }
            let mut h = header_block();
            field_bytes(1, &bbox, &mut h);
            let mut file = Vec::new();
            frame("OSMHeader", &h, &mut file);
            parse_pbf(&file, Path::new("b.pbf")).unwrap().bounds_wgs84
        };
        let b = with_bbox(126_900_000_000, 126_950_000_000, 37_540_000_000, 37_510_000_000).unwrap();
        for (got, want) in b.iter().zip([126.9, 37.51, 126.95, 37.54]) {
            assert!((got - want).abs() < 1e-9, "{b:?}");
        }
        assert_eq!(with_bbox(126_950_000_000, 126_900_000_000, 37_540_000_000, 37_510_000_000), None, "empty box");
    }

    #[test]
    fn osm_pbf_rejects_history_files() {
        let mut h = header_block();
        field_bytes(4, b"HistoricalInformation", &mut h);
        let mut file = Vec::new();
        frame("OSMHeader", &h, &mut file);
        let err = parse_pbf(&file, Path::new("h.osh.pbf")).unwrap_err().to_string();
        assert!(err.contains("history"), "{err}");
    }

    #[test]
    fn osm_pbf_yeouido_counts() {
        let Some(path) = require_shared_data("seoul/yeouido.osm.pbf") else { return };
        let data = read_pbf(&path).unwrap();
        assert_eq!((data.nodes.len(), data.ways.len(), data.relations.len()), (20_177, 1_858, 301));
        for way in data.ways.values() {
            assert!(way.nodes.len() >= 2);
        }
    }

    fn collect_tags<'a>(it: impl Iterator<Item = (&'a str, &'a str)>) -> Tags {
        it.collect()
    }

    /// Compares with `osmpbf`'s own element decoder, object by object.
    #[test]
    fn osm_pbf_matches_osmpbf_crate() {
        for name in ["seoul/yeouido.osm.pbf", "seoul/jamsil.osm.pbf"] {
            let Some(path) = require_shared_data(name) else { return };
            let ours = read_pbf(&path).unwrap();
            let mut theirs = OsmData::new();
            let reader = osmpbf::ElementReader::from_path(&path).unwrap();
            reader
                .for_each(|e| match e {
                    osmpbf::Element::DenseNode(n) => {
                        let node = Node { pos: LatLon::new(n.lat(), n.lon()), tags: collect_tags(n.tags()) };
                        theirs.nodes.insert(n.id(), node);
                    }
                    osmpbf::Element::Node(n) => {
                        let node = Node { pos: LatLon::new(n.lat(), n.lon()), tags: collect_tags(n.tags()) };
                        theirs.nodes.insert(n.id(), node);
                    }
                    osmpbf::Element::Way(w) => {
                        theirs.ways.insert(w.id(), Way { nodes: w.refs().collect(), tags: collect_tags(w.tags()) });
                    }
                    osmpbf::Element::Relation(r) => {
                        let members = r
                            .members()
                            .map(|m| Member {
                                ty: match m.member_type {
                                    osmpbf::RelMemberType::Node => OsmType::Node,
                                    osmpbf::RelMemberType::Way => OsmType::Way,
                                    osmpbf::RelMemberType::Relation => OsmType::Relation,
                                },
                                id: m.member_id,
                                role: m.role().unwrap().to_string(),
                                geometry: None,
                            })
                            .collect();
                        theirs.relations.insert(r.id(), Relation { members, tags: collect_tags(r.tags()) });
                    }
                })
                .unwrap();
            assert_eq!(ours.ways, theirs.ways, "{name}");
            assert_eq!(ours.relations, theirs.relations, "{name}");
            assert_eq!(ours.nodes.len(), theirs.nodes.len(), "{name}");
            for ((id, a), (tid, b)) in ours.nodes.iter().zip(&theirs.nodes) {
                assert_eq!(id, tid);
                assert_eq!(a.tags, b.tags, "node {id}");
                assert!((a.pos.lat_deg - b.pos.lat_deg).abs() < 1e-9 && (a.pos.lon_deg - b.pos.lon_deg).abs() < 1e-9);
            }
        }
    }

    /// The hand-written junction fixture (`tests/fixtures/junction.osm.xml`) written by
    /// osmium as PBF with dense and with plain nodes, both with uncompressed blobs (these
    /// files are also the fuzzer's seeds; no shared OpenStreetMap data is copied in).
    #[test]
    fn osm_pbf_plain_nodes_equal_dense_nodes() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/osm_pbf");
        let dense = read_pbf(&seeds.join("junction-dense-raw.osm.pbf")).unwrap();
        let sparse = read_pbf(&seeds.join("junction-plain-raw.osm.pbf")).unwrap();
        assert_eq!((dense.nodes.len(), dense.ways.len(), dense.relations.len()), (40, 13, 2));
        assert_eq!(dense, sparse);
        let xml = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/junction.osm.xml");
        assert_eq!(dense, crate::osm_xml::read_xml(&xml).unwrap(), "PBF and XML of the same data agree");
        assert!(dense.nodes.values().any(|n| !n.tags.is_empty()));
    }

    #[test]
    fn osm_pbf_truncated_and_corrupt_files_name_the_blob() {
        let Some(path) = require_shared_data("seoul/jamsil.osm.pbf") else { return };
        let bytes = std::fs::read(&path).unwrap();
        let label = Path::new("jamsil.osm.pbf");
        // Every truncation point must give an error, never a panic or a silent short read.
        let step = (bytes.len() / 97).max(1);
        for cut in (1..bytes.len()).step_by(step) {
            let err = parse_pbf(&bytes[..cut], label).expect_err("truncated file must fail").to_string();
            assert!(err.starts_with("jamsil.osm.pbf: "), "{err}");
            assert!(err.contains("blob ") && err.contains("at byte offset"), "{err}");
        }
        let err = parse_pbf(&bytes[..bytes.len() - 10], label).unwrap_err().to_string();
        assert!(err.contains("truncated file"), "{err}");
        // Flip bytes in the middle of the second blob's data.
        let frames = split_blobs(&bytes, label).unwrap();
        let second = &frames[1];
        let start = second.offset_bytes + (bytes.len() - second.offset_bytes) / 3;
        let mut corrupt = bytes.clone();
        for b in &mut corrupt[start..start + 64] {
            *b ^= 0x5a;
        }
        match parse_pbf(&corrupt, label) {
            Err(e) => assert!(e.to_string().contains("blob "), "{e}"),
            Ok(_) => panic!("corrupt zlib data was accepted"),
        }
    }
}
