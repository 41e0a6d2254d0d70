//! Point clouds as PLY files (binary little-endian).
//!
//! [`write_ply`] writes one `vertex` element with `double x, y, z` (the twin frame keeps its
//! full precision) and optionally `uchar label` (for example the [`crate::Hit`] kind).
//! [`read_ply`] reads `x`, `y`, `z` back from any binary little-endian PLY whose vertex
//! properties are scalars (`float`/`double`/integers, skipping the others) and whose
//! `vertex` element comes first; other formats are an error naming the file and the line.

use crate::error::SensorError;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Writes `points` (and `labels`, when given, one per point) to `path`.
pub fn write_ply(path: &Path, points: &[[f64; 3]], labels: Option<&[u8]>) -> Result<(), SensorError> {
    let io = |source| SensorError::Io { path: path.to_path_buf(), source };
    if let Some(l) = labels
        && l.len() != points.len()
    {
        return Err(SensorError::InvalidConfig {
            name: "labels",
            reason: format!("{} labels for {} points", l.len(), points.len()),
        });
    }
    let mut w = BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let mut header = format!(
        "ply\nformat binary_little_endian 1.0\ncomment swm_sensors point cloud, twin frame (x east, y north, z up, metres)\nelement vertex {}\nproperty double x\nproperty double y\nproperty double z\n",
        points.len()
    );
    if labels.is_some() {
        header.push_str("property uchar label\n");
    }
    header.push_str("end_header\n");
    w.write_all(header.as_bytes()).map_err(io)?;
    for (i, p) in points.iter().enumerate() {
        for v in p {
            w.write_all(&v.to_le_bytes()).map_err(io)?;
        }
        if let Some(l) = labels {
            w.write_all(&[l[i]]).map_err(io)?;
        }
    }
    w.flush().map_err(io)?;
    Ok(())
}

/// A scalar PLY property type and its size in bytes.
fn scalar_size(ty: &str) -> Option<usize> {
    Some(match ty {
        "char" | "uchar" | "int8" | "uint8" => 1,
        "short" | "ushort" | "int16" | "uint16" => 2,
        "int" | "uint" | "float" | "int32" | "uint32" | "float32" => 4,
        "double" | "float64" => 8,
        _ => return None,
    })
}

fn read_scalar(ty: &str, b: &[u8]) -> f64 {
    match ty {
        "float" | "float32" => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        "double" | "float64" => f64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])),
        "char" | "int8" => b[0] as i8 as f64,
        "uchar" | "uint8" => b[0] as f64,
        "short" | "int16" => i16::from_le_bytes([b[0], b[1]]) as f64,
        "ushort" | "uint16" => u16::from_le_bytes([b[0], b[1]]) as f64,
        "int" | "int32" => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
    }
}

/// Reads the vertex positions of a binary little-endian PLY file.
pub fn read_ply(path: &Path) -> Result<Vec<[f64; 3]>, SensorError> {
    let io = |source| SensorError::Io { path: path.to_path_buf(), source };
    let bad = |line: usize, message: String| SensorError::Ply {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    };
    let mut r = BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut count: Option<usize> = None;
    let mut props: Vec<(String, String)> = Vec::new();
    let mut in_vertex = false;
    let mut line_no = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(io)? == 0 {
            return Err(bad(line_no, "end of file before end_header".into()));
        }
        line_no += 1;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ply"] if line_no == 1 => {}
            _ if line_no == 1 => return Err(bad(1, "not a PLY file (no `ply` magic)".into())),
            ["format", "binary_little_endian", _] => {}
            ["format", f, ..] => {
                return Err(bad(line_no, format!("format {f} is not supported (binary_little_endian only)")));
            }
            ["comment", ..] | ["obj_info", ..] | [] => {}
            ["element", name, n] => {
                if count.is_some() {
                    // Elements after the vertices are not needed.
                    in_vertex = false;
                    continue;
                }
                if *name != "vertex" {
                    return Err(bad(line_no, format!("the first element is `{name}`, expected `vertex`")));
                }
                count = Some(n.parse().map_err(|_| bad(line_no, format!("bad vertex count `{n}`")))?);
                in_vertex = true;
            }
            ["property", "list", ..] if in_vertex => {
                return Err(bad(line_no, "list properties on vertices are not supported".into()));
            }
            ["property", ty, name] if in_vertex => {
                if scalar_size(ty).is_none() {
                    return Err(bad(line_no, format!("unknown property type `{ty}`")));
                }
                props.push((ty.to_string(), name.to_string()));
            }
            ["property", ..] => {}
            ["end_header"] => break,
            _ => return Err(bad(line_no, format!("unexpected header line `{}`", line.trim()))),
        }
    }
    let n = count.ok_or_else(|| bad(line_no, "no vertex element".into()))?;
    let pos = |axis: &str| {
        props.iter().position(|(_, name)| name == axis).ok_or_else(|| bad(line_no, format!("no `{axis}` property")))
    };
    let (ix, iy, iz) = (pos("x")?, pos("y")?, pos("z")?);
    let offsets: Vec<usize> = props
        .iter()
        .scan(0, |o, (ty, _)| {
            let here = *o;
            *o += scalar_size(ty).unwrap_or(0);
            Some(here)
        })
        .collect();
    let stride: usize = props.iter().map(|(ty, _)| scalar_size(ty).unwrap_or(0)).sum();
    let mut buf = vec![0u8; stride];
    let mut out = Vec::with_capacity(n.min(1 << 24));
    for i in 0..n {
        r.read_exact(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => bad(line_no, format!("truncated: {n} vertices declared, {i} present")),
            _ => io(e),
        })?;
        let get = |k: usize| read_scalar(&props[k].0, &buf[offsets[k]..]);
        out.push([get(ix), get(iy), get(iz)]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloud.ply");
        let pts = vec![[1.0, 2.0, 3.0], [-4.5, 1e6 + 0.125, -0.001]];
        write_ply(&path, &pts, Some(&[1, 2])).unwrap();
        assert_eq!(read_ply(&path).unwrap(), pts);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = read_ply(&path).unwrap_err().to_string();
        assert!(err.contains("truncated") && err.contains("cloud.ply"), "{err}");
        std::fs::write(&path, "ply\nformat ascii 1.0\nend_header\n").unwrap();
        assert!(read_ply(&path).unwrap_err().to_string().contains("line 2"));
        // A missing file: the OS error is the source, shown once in the chain.
        let err = read_ply(&dir.path().join("none.ply")).unwrap_err();
        let os = std::error::Error::source(&err).expect("the I/O error is the source").to_string();
        assert!(!err.to_string().contains(&os), "{err}");
        let chain = swm_core::ErrorChain(&err).to_string();
        assert!(chain.contains("none.ply"), "{chain}");
        assert_eq!(chain.matches(&os).count(), 1, "{chain}");
    }
}
