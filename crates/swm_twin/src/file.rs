//! The `.swt` twin file: a small fixed header followed by the [postcard] serialisation of
//! a [`Twin`].
//!
//! # Layout
//!
//! All integers are little-endian. The header is [`HEADER_LEN`] = 28 bytes:
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! |      0 |    8 | magic bytes [`MAGIC`] = `b"SWMTWIN\0"`                        |
//! |      8 |    4 | `u32` format version, [`FORMAT_VERSION`]                      |
//! |     12 |    4 | `u32` flags, always 0 in version 1 (readers reject others)    |
//! |     16 |    8 | `u64` payload length in bytes                                 |
//! |     24 |    4 | `u32` CRC-32 (IEEE, as `crc32fast`) of the payload            |
//! |     28 |    n | payload: `postcard::to_stdvec(&twin)`                         |
//!
//! The file ends exactly after the payload; trailing bytes are an error. The payload is
//! deterministic: the same twin always gives byte-identical files.
//!
//! # Reading
//!
//! Readers check, in order: the magic bytes ([`TwinError::BadMagic`], or
//! [`TwinError::Truncated`] when the file is a strict prefix of them), the version
//! ([`TwinError::NewerVersion`] / [`TwinError::OlderVersion`]), the header length and
//! the payload length ([`TwinError::Truncated`]), the flags and trailing bytes
//! ([`TwinError::Decode`]), the checksum ([`TwinError::Checksum`]), and only then decode
//! the payload ([`TwinError::Decode`]). Decoding arbitrary bytes never panics and never
//! allocates more than a small multiple of the input size: every length in the payload is
//! checked against the bytes that remain.
//!
//! # Writing
//!
//! [`write_swt`] writes to a temporary file in the destination's directory, syncs it and
//! renames it over the destination, so readers see either the old or the new file.

use crate::{Twin, TwinError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first eight bytes of every `.swt` file.
pub const MAGIC: [u8; 8] = *b"SWMTWIN\0";
/// The format version this build writes (and the newest it reads). Version 2 added
/// [`crate::Lane::level`]; files of version 1 must be ingested again.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads.
pub const MIN_FORMAT_VERSION: u32 = 2;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 28;

/// The fixed header of a `.swt` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub flags: u32,
    pub payload_len: u64,
    pub payload_crc32: u32,
}

impl Header {
    /// The header's 28 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[12..16].copy_from_slice(&self.flags.to_le_bytes());
        out[16..24].copy_from_slice(&self.payload_len.to_le_bytes());
        out[24..28].copy_from_slice(&self.payload_crc32.to_le_bytes());
        out
    }

    /// Total file length the header announces, `None` if it overflows `u64`.
    pub fn file_len(&self) -> Option<u64> {
        self.payload_len.checked_add(HEADER_LEN as u64)
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parses and validates the header of a `.swt` file (magic, version, header length).
///
/// Does not look at the payload; `path` only labels errors.
pub fn peek_header(bytes: &[u8], path: &str) -> Result<Header, TwinError> {
    let truncated = |expected: usize| TwinError::Truncated {
        path: path.to_string(),
        expected: expected as u64,
        found: bytes.len() as u64,
    };
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(TwinError::BadMagic { path: path.to_string() });
    }
    if bytes.len() < 12 {
        return Err(truncated(HEADER_LEN));
    }
    let version = le_u32(bytes, 8);
    if version > FORMAT_VERSION {
        return Err(TwinError::NewerVersion { path: path.to_string(), found: version, supported: FORMAT_VERSION });
    }
    if version < MIN_FORMAT_VERSION {
        return Err(TwinError::OlderVersion { path: path.to_string(), found: version, supported: FORMAT_VERSION });
    }
    if bytes.len() < HEADER_LEN {
        return Err(truncated(HEADER_LEN));
    }
    Ok(Header { version, flags: le_u32(bytes, 12), payload_len: le_u64(bytes, 16), payload_crc32: le_u32(bytes, 24) })
}

/// Serialises a twin into the bytes of a `.swt` file.
pub fn write_swt_bytes(twin: &Twin) -> Result<Vec<u8>, TwinError> {
    let payload = postcard::to_stdvec(twin).map_err(|e| TwinError::Encode(e.to_string()))?;
    let header = Header {
        version: FORMAT_VERSION,
        flags: 0,
        payload_len: payload.len() as u64,
        payload_crc32: crc32fast::hash(&payload),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Parses the bytes of a `.swt` file; `path` labels error messages.
pub fn read_swt_bytes(bytes: &[u8], path: &str) -> Result<Twin, TwinError> {
    let header = peek_header(bytes, path)?;
    let decode = |message: String| TwinError::Decode { path: path.to_string(), message };
    let Some(expected) = header.file_len() else {
        return Err(decode(format!("impossible payload length {}", header.payload_len)));
    };
    let found = bytes.len() as u64;
    if found < expected {
        return Err(TwinError::Truncated { path: path.to_string(), expected, found });
    }
    if header.flags != 0 {
        return Err(decode(format!("unknown header flags {:#010x}", header.flags)));
    }
    if found > expected {
        return Err(decode(format!("{} unexpected bytes after the payload", found - expected)));
    }
    let payload = &bytes[HEADER_LEN..];
    let computed = crc32fast::hash(payload);
    if computed != header.payload_crc32 {
        return Err(TwinError::Checksum { path: path.to_string(), stored: header.payload_crc32, computed });
    }
    let (twin, rest) = postcard::take_from_bytes::<Twin>(payload).map_err(|e| decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(decode(format!("{} unused bytes at the end of the payload", rest.len())));
    }
    tracing::debug!(path, bytes = bytes.len(), buildings = twin.buildings.len(), lanes = twin.lanes.len(), "read twin");
    Ok(twin)
}

/// The temporary file [`write_swt`] writes before renaming it to `path`.
fn temp_path_for(path: &Path) -> Result<PathBuf, TwinError> {
    let name = path.file_name().ok_or_else(|| TwinError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path has no file name"),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

/// Writes a twin to `path` atomically (temporary file in the same directory, then rename).
pub fn write_swt(twin: &Twin, path: &Path) -> Result<(), TwinError> {
    let bytes = write_swt_bytes(twin)?;
    let tmp = temp_path_for(path)?;
    let io_err = |p: &Path, source: std::io::Error| TwinError::Io { path: p.to_path_buf(), source };
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
    })();
    if result.is_err() {
        // Best effort: do not leave the temporary file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    tracing::debug!(path = %path.display(), bytes = bytes.len(), "wrote twin");
    Ok(())
}

/// Reads a twin from a `.swt` file.
pub fn read_swt(path: &Path) -> Result<Twin, TwinError> {
    let bytes = std::fs::read(path).map_err(|source| TwinError::Io { path: path.to_path_buf(), source })?;
    read_swt_bytes(&bytes, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use proptest::prelude::*;
    use swm_core::{LatLon, SourceRef};

    fn building(i: i64, x: f64, y: f64) -> Building {
        Building {
            source: SourceRef::way(i),
            kind: "apartments".into(),
            name: Some(format!("동 {i}")),
            footprint: Polygon {
                exterior: vec![[x, y], [x + 10.0, y], [x + 10.0, y + 8.0], [x, y + 8.0]],
                holes: vec![vec![[x + 2.0, y + 2.0], [x + 2.0, y + 4.0], [x + 4.0, y + 4.0], [x + 4.0, y + 2.0]]],
            },
            base_elevation_m: 12.5,
            height_m: 30.0,
            min_height_m: 0.0,
            levels: Some(10.0),
            height_source: HeightSource::Levels,
            roof: Roof { shape: RoofShape::Gabled, height_m: 3.0, direction_rad: Some(0.5), colour: None },
            colour: Some("#ffffff".into()),
            parts: vec![0],
            parts_replace_outline: false,
            parent: None,
        }
    }

    fn lane(i: i64) -> Lane {
        Lane {
            source: SourceRef::way(i),
            road_class: RoadClass::Primary,
            name: Some("세종대로".into()),
            centerline: vec![[0.0, 0.0, 10.0], [50.0, 0.0, 10.5], [100.0, 5.0, 11.0]],
            length_m: 100.4,
            width_m: 3.25,
            speed_limit_mps: 13.9,
            speed_limit_tagged: true,
            forward: true,
            index_from_right: 0,
            lanes_in_direction: 2,
            from_junction: Some(0),
            to_junction: Some(1),
            left: Some(1),
            right: None,
            turns: vec![Turn::Straight, Turn::Right],
            stop_line: Some(StopLine {
                s_m: 95.0,
                kind: StopKind::Signal,
                segment: [[95.0, -1.6, 11.0], [95.0, 1.6, 11.0]],
            }),
            signal: Some(0),
            level: 0,
        }
    }

    fn sample_twin() -> Twin {
        let mut part = building(99, 1.0, 1.0);
        part.parent = Some(0);
        part.parts.clear();
        Twin {
            meta: TwinMeta {
                name: "test".into(),
                origin_wgs84: Some(LatLon::new(37.525, 126.925)),
                bbox_wgs84: [126.9, 37.5, 126.95, 37.55],
                bbox_m: [-10.0, -10.0, 110.0, 50.0],
                sources: vec!["test.osm.pbf".into()],
                built_by: "swm 0.1.0".into(),
            },
            terrain: Terrain::Grid {
                origin_m: [-10.0, -10.0],
                cell_m: 30.0,
                nx: 3,
                ny: 2,
                elevation_m: vec![10.0, 11.0, 12.0, 10.5, 11.5, 12.5],
                source: "srtm".into(),
            },
            buildings: vec![building(1, 0.0, 0.0), building(2, 20.0, 20.0)],
            building_parts: vec![part],
            lanes: vec![lane(10), lane(11)],
            lane_connections: vec![LaneConnection {
                from_lane: 0,
                to_lane: 1,
                junction: 1,
                turn: Turn::Left,
                path: vec![[100.0, 5.0, 11.0], [105.0, 10.0, 11.0]],
                length_m: 7.07,
                major: true,
            }],
            junctions: vec![Junction {
                source: SourceRef::node(5),
                center: [100.0, 5.0, 11.0],
                control: Control::SignalTagged,
                incoming_lanes: vec![0],
                outgoing_lanes: vec![1],
            }],
            signals: vec![Signal {
                source: SourceRef::Derived,
                junction: 0,
                position: [98.0, 3.0, 11.0],
                guessed: true,
                lanes: vec![0],
            }],
            walk_nodes: vec![
                WalkNode { source: SourceRef::node(1), position: [0.0, 5.0, 10.0] },
                WalkNode { source: SourceRef::Feature { source: 2, index: 7 }, position: [10.0, 5.0, 10.0] },
            ],
            walk_edges: vec![WalkEdge {
                source: SourceRef::Derived,
                from: 0,
                to: 1,
                kind: WalkKind::Crossing,
                signalled: true,
                polyline: vec![[0.0, 5.0, 10.0], [10.0, 5.0, 10.0]],
                length_m: 10.0,
                width_m: 2.0,
            }],
            land_cover: vec![
                LandCover {
                    source: SourceRef::relation(3),
                    kind: LandKind::Water,
                    name: Some("한강".into()),
                    geometry: LandGeometry::Area(Polygon {
                        exterior: vec![[0.0, 30.0], [50.0, 30.0], [50.0, 40.0]],
                        holes: vec![],
                    }),
                },
                LandCover {
                    source: SourceRef::way(4),
                    kind: LandKind::Rail,
                    name: None,
                    geometry: LandGeometry::Line { points: vec![[0.0, 45.0], [100.0, 45.0]], width_m: 3.0 },
                },
            ],
            height_model: HeightModel {
                overall: HeightStats {
                    kind: "*".into(),
                    m_per_level: 3.0,
                    median_height_m: 12.0,
                    level_samples: 4,
                    height_samples: 9,
                },
                per_kind: vec![HeightStats {
                    kind: "apartments".into(),
                    m_per_level: 2.9,
                    median_height_m: 40.0,
                    level_samples: 3,
                    height_samples: 3,
                }],
            },
        }
    }

    #[test]
    fn round_trip_is_identical() {
        let twin = sample_twin();
        let bytes = write_swt_bytes(&twin).unwrap();
        assert_eq!(&bytes[..8], b"SWMTWIN\0");
        let header = peek_header(&bytes, "mem").unwrap();
        assert_eq!(header.version, FORMAT_VERSION);
        assert_eq!(header.payload_len as usize, bytes.len() - HEADER_LEN);
        let back = read_swt_bytes(&bytes, "mem").unwrap();
        assert_eq!(back, twin);
        // Deterministic bytes.
        assert_eq!(write_swt_bytes(&back).unwrap(), bytes);
        // Default twin (flat terrain, empty) too.
        let empty = Twin::default();
        assert_eq!(read_swt_bytes(&write_swt_bytes(&empty).unwrap(), "mem").unwrap(), empty);
    }

    #[test]
    fn file_round_trip_is_atomic_and_identical() {
        let dir = std::env::temp_dir().join(format!("swm_twin_file_test_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("district.swt");
        let twin = sample_twin();
        write_swt(&twin, &path).unwrap();
        // Overwrite in place.
        write_swt(&twin, &path).unwrap();
        assert_eq!(read_swt(&path).unwrap(), twin);
        assert_eq!(std::fs::read(&path).unwrap(), write_swt_bytes(&twin).unwrap());
        // Only the destination remains: no temporary files.
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("district.swt")]);
        // Missing files are I/O errors naming the file.
        let missing = dir.join("missing.swt");
        let err = read_swt(&missing).unwrap_err();
        assert!(matches!(err, TwinError::Io { .. }));
        assert!(err.to_string().contains("missing.swt"), "{err}");
        // The OS error is the source, not part of the message: the chain shows it once.
        let os = std::error::Error::source(&err).expect("the I/O error is the source").to_string();
        assert!(!err.to_string().contains(&os), "{err}");
        let chain = swm_core::ErrorChain(&err).to_string();
        assert_eq!(chain.matches(&os).count(), 1, "{chain}");
        // Writing into a missing directory fails cleanly.
        assert!(matches!(write_swt(&twin, &dir.join("nope").join("x.swt")), Err(TwinError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = write_swt_bytes(&sample_twin()).unwrap();
        for len in 0..bytes.len() {
            let err = read_swt_bytes(&bytes[..len], "cut.swt").unwrap_err();
            match &err {
                TwinError::Truncated { path, expected, found } => {
                    assert_eq!(path, "cut.swt");
                    assert_eq!(*found, len as u64);
                    assert!(*expected > *found);
                }
                TwinError::Decode { .. } => {}
                other => panic!("prefix of {len} bytes: unexpected error {other:?}"),
            }
            assert!(err.to_string().contains("cut.swt"));
        }
    }

    #[test]
    fn bit_flips_are_detected() {
        let bytes = write_swt_bytes(&sample_twin()).unwrap();
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[byte] ^= 1 << bit;
                let err = read_swt_bytes(&b, "flip.swt").unwrap_err();
                if byte >= HEADER_LEN || (24..28).contains(&byte) {
                    assert!(matches!(err, TwinError::Checksum { .. }), "byte {byte} bit {bit}: {err:?}");
                } else if byte < 8 {
                    assert!(matches!(err, TwinError::BadMagic { .. }), "byte {byte} bit {bit}: {err:?}");
                }
                assert!(err.to_string().contains("flip.swt"));
            }
        }
    }

    #[test]
    fn version_and_trailing_bytes() {
        let bytes = write_swt_bytes(&sample_twin()).unwrap();
        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let err = read_swt_bytes(&newer, "new.swt").unwrap_err();
        assert!(matches!(err, TwinError::NewerVersion { found: 3, supported: FORMAT_VERSION, .. }), "{err:?}");
        assert!(err.to_string().contains("new.swt") && err.to_string().contains("upgrade"));
        // Newer version wins over truncation: a newer file is reported as such.
        assert!(matches!(read_swt_bytes(&newer[..20], "x"), Err(TwinError::NewerVersion { .. })));
        let mut older = bytes.clone();
        older[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(read_swt_bytes(&older, "x"), Err(TwinError::OlderVersion { found: 0, .. })));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(read_swt_bytes(&longer, "x"), Err(TwinError::Decode { .. })));
        let mut flags = bytes.clone();
        flags[12] = 1;
        assert!(matches!(read_swt_bytes(&flags, "x"), Err(TwinError::Decode { .. })));
        let mut huge = bytes.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(read_swt_bytes(&huge, "x"), Err(TwinError::Decode { .. })));
        assert!(matches!(read_swt_bytes(b"PK\x03\x04 not a twin", "x"), Err(TwinError::BadMagic { .. })));
    }

    #[test]
    fn corrupt_payload_with_valid_checksum_is_a_decode_error() {
        // A payload announcing a gigantic vector must fail fast without allocating it.
        let mut payload = postcard::to_stdvec(&Twin::default()).unwrap();
        // The first field is meta.name: claim a 2^62-byte string.
        payload.splice(0..1, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f]);
        let header = Header {
            version: FORMAT_VERSION,
            flags: 0,
            payload_len: payload.len() as u64,
            payload_crc32: crc32fast::hash(&payload),
        };
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        assert!(matches!(read_swt_bytes(&bytes, "x"), Err(TwinError::Decode { .. })));
    }

    fn with_valid_header(payload: &[u8]) -> Vec<u8> {
        let header = Header {
            version: FORMAT_VERSION,
            flags: 0,
            payload_len: payload.len() as u64,
            payload_crc32: crc32fast::hash(payload),
        };
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_swt_bytes(&bytes, "fuzz");
            let _ = read_swt_bytes(&with_valid_header(&bytes), "fuzz");
        }

        #[test]
        fn mutated_twins_never_panic(pos in any::<prop::sample::Index>(), value in any::<u8>()) {
            let mut payload = postcard::to_stdvec(&sample_twin()).unwrap();
            let i = pos.index(payload.len());
            payload[i] = value;
            // Valid checksum, so the decoder itself sees the corruption.
            let _ = read_swt_bytes(&with_valid_header(&payload), "fuzz");
        }
    }
}
