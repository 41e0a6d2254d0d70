//! `manifest.json`: what a run directory holds and how it was made.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::DatasetError;

/// Format tag of manifests written by this version.
pub const MANIFEST_FORMAT: &str = "swm-run/1";

/// The twin a run was made on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TwinRef {
    /// `TwinMeta::name`.
    pub name: String,
    /// The `.swt` file's name (no directories: runs move between machines).
    pub file: String,
    pub bytes: u64,
    /// CRC-32 (IEEE) of the `.swt` file, 8 lowercase hex digits.
    pub crc32: String,
}

/// One file of the run directory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the run directory.
    pub path: String,
    pub bytes: u64,
    /// CRC-32 (IEEE), 8 lowercase hex digits.
    pub crc32: String,
    /// Rows (Parquet files) or entries (JSON arrays), when it has any.
    pub rows: Option<u64>,
}

/// `manifest.json` of a run directory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// What made the run: `swm_sim` or `sumo-fcd`.
    pub source: String,
    /// `swm_dataset` crate version that wrote the manifest.
    pub code_version: String,
    pub twin: TwinRef,
    /// The run's seed (simulated runs).
    pub seed: Option<u64>,
    /// The simulator configuration (simulated runs), as the simulator serialises it.
    pub sim_config: Option<serde_json::Value>,
    /// The input file of an import (file name only).
    pub input: Option<String>,
    pub steps: u64,
    pub rows: u64,
    pub vehicles: u64,
    pub pedestrians: u64,
    pub sim_seconds: f64,
    pub files: Vec<FileEntry>,
}

impl RunManifest {
    /// A manifest with the format and code version filled in.
    pub fn new(source: &str) -> Self {
        RunManifest {
            format: MANIFEST_FORMAT.to_string(),
            source: source.to_string(),
            code_version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        }
    }

    /// Adds `dir/rel` to [`RunManifest::files`] with its size and CRC-32.
    pub fn add_file(&mut self, dir: &Path, rel: &str, rows: Option<u64>) -> Result<(), DatasetError> {
        let path = dir.join(rel);
        let (bytes, crc) = file_crc32(&path)?;
        self.files.push(FileEntry { path: rel.to_string(), bytes, crc32: format!("{crc:08x}"), rows });
        Ok(())
    }

    /// Writes `dir/manifest.json` (pretty JSON, stable key order).
    pub fn write(&self, dir: &Path) -> Result<(), DatasetError> {
        write_json(&dir.join("manifest.json"), self)
    }

    /// Reads `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<RunManifest, DatasetError> {
        read_json(&dir.join("manifest.json"))
    }

    /// Checks every listed file's size and CRC-32; returns the paths that differ.
    pub fn verify(&self, dir: &Path) -> Result<Vec<String>, DatasetError> {
        let mut bad = Vec::new();
        for f in &self.files {
            let (bytes, crc) = file_crc32(&dir.join(&f.path))?;
            if bytes != f.bytes || format!("{crc:08x}") != f.crc32 {
                bad.push(f.path.clone());
            }
        }
        Ok(bad)
    }
}

/// Twin reference of a `.swt` file.
pub fn twin_ref(twin_name: &str, swt: &Path) -> Result<TwinRef, DatasetError> {
    let (bytes, crc) = file_crc32(swt)?;
    Ok(TwinRef {
        name: twin_name.to_string(),
        file: swt.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        bytes,
        crc32: format!("{crc:08x}"),
    })
}

/// Size and CRC-32 (IEEE) of a file, streamed.
pub fn file_crc32(path: &Path) -> Result<(u64, u32), DatasetError> {
    let mut f = std::fs::File::open(path).map_err(DatasetError::io(path))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(DatasetError::io(path))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        h.update(&buf[..n]);
    }
    Ok((bytes, h.finalize()))
}

/// Writes `value` as pretty JSON with a trailing newline.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DatasetError> {
    let mut s = serde_json::to_string_pretty(value)
        .map_err(|source| DatasetError::Json { path: path.to_path_buf(), source })?;
    s.push('\n');
    std::fs::write(path, s).map_err(DatasetError::io(path))
}

/// Reads a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, DatasetError> {
    let bytes = std::fs::read(path).map_err(DatasetError::io(path))?;
    serde_json::from_slice(&bytes).map_err(|source| DatasetError::Json { path: path.to_path_buf(), source })
}
