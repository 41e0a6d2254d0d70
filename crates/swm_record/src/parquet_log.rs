//! The same records as [`crate::McapLog`], as plain Parquet tables in one directory.
//!
//! Files (schema tag `swm-robot-log/1` in each file's key-value metadata; Snappy; row groups
//! of at most [`ROW_GROUP_ROWS`] rows):
//!
//! | file | columns |
//! | --- | --- |
//! | `poses.parquet` | `t_ns: u64, frame: utf8, x_m, y_m, z_m, yaw_rad, pitch_rad, roll_rad: f64` |
//! | `points.parquet` | `t_ns: u64, topic: utf8, x_m, y_m, z_m: f64` (one row per lidar return) |
//! | `paths.parquet` | `t_ns: u64, topic: utf8, path: u32, point: u32, x_m, y_m, z_m: f64` |
//! | `agents.parquet` | `t_ns: u64, id: u64, kind: utf8, x_m, y_m, z_m (base centre), yaw_rad, length_m, width_m, height_m: f64` |
//!
//! Rows are in call order. The same calls give byte-identical files.

use crate::error::RecordError;
use crate::records::{AgentRecord, Pose3, points_finite};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The schema tag written in every table's metadata.
pub const SCHEMA_TAG: &str = "swm-robot-log/1";
/// Rows buffered before a row group is written.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// A column buffer.
enum Col {
    U64(Vec<u64>),
    U32(Vec<u32>),
    F64(Vec<f64>),
    Str(Vec<String>),
}

impl Col {
    fn take(&mut self) -> ArrayRef {
        match self {
            Col::U64(v) => Arc::new(UInt64Array::from(std::mem::take(v))),
            Col::U32(v) => Arc::new(UInt32Array::from(std::mem::take(v))),
            Col::F64(v) => Arc::new(Float64Array::from(std::mem::take(v))),
            Col::Str(v) => Arc::new(StringArray::from(std::mem::take(v))),
        }
    }
}

/// One table being written.
struct Table {
    path: PathBuf,
    schema: SchemaRef,
    cols: Vec<Col>,
    rows: usize,
    written: u64,
    writer: Option<ArrowWriter<BufWriter<File>>>,
}

impl Table {
    fn create(dir: &Path, name: &str, fields: &[(&str, DataType)]) -> Result<Self, RecordError> {
        let path = dir.join(format!("{name}.parquet"));
        let schema: SchemaRef =
            Arc::new(Schema::new(fields.iter().map(|(n, t)| Field::new(*n, t.clone(), false)).collect::<Vec<_>>()));
        let cols = fields
            .iter()
            .map(|(_, t)| match t {
                DataType::UInt64 => Col::U64(Vec::new()),
                DataType::UInt32 => Col::U32(Vec::new()),
                DataType::Utf8 => Col::Str(Vec::new()),
                _ => Col::F64(Vec::new()),
            })
            .collect();
        let file = File::create(&path).map_err(|source| RecordError::Io { path: path.clone(), source })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("swm_record {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![KeyValue::new("swm.schema".to_string(), SCHEMA_TAG.to_string())]))
            .set_max_row_group_row_count(None)
            .build();
        let writer = ArrowWriter::try_new(BufWriter::new(file), schema.clone(), Some(props))
            .map_err(|e| RecordError::Parquet { path: path.clone(), message: e.to_string() })?;
        Ok(Self { path, schema, cols, rows: 0, written: 0, writer: Some(writer) })
    }

    fn u64(&mut self, i: usize, v: u64) {
        if let Col::U64(c) = &mut self.cols[i] {
            c.push(v);
        }
    }
    fn u32(&mut self, i: usize, v: u32) {
        if let Col::U32(c) = &mut self.cols[i] {
            c.push(v);
        }
    }
    fn f64(&mut self, i: usize, v: f64) {
        if let Col::F64(c) = &mut self.cols[i] {
            c.push(v);
        }
    }
    fn str(&mut self, i: usize, v: &str) {
        if let Col::Str(c) = &mut self.cols[i] {
            c.push(v.to_string());
        }
    }

    /// Counts a finished row and writes a row group when enough are buffered.
    fn end_row(&mut self) -> Result<(), RecordError> {
        self.rows += 1;
        if self.rows >= ROW_GROUP_ROWS { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), RecordError> {
        if self.rows == 0 {
            return Ok(());
        }
        let err = |path: &Path, e: &dyn std::fmt::Display| RecordError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::take).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| err(&self.path, &e))?;
        let Some(w) = self.writer.as_mut() else { return Err(err(&self.path, &"table already closed")) };
        w.write(&batch).map_err(|e| err(&self.path, &e))?;
        w.flush().map_err(|e| err(&self.path, &e))?;
        self.written += self.rows as u64;
        self.rows = 0;
        Ok(())
    }

    fn close(&mut self) -> Result<u64, RecordError> {
        self.flush()?;
        if let Some(w) = self.writer.take() {
            w.close().map_err(|e| RecordError::Parquet { path: self.path.clone(), message: e.to_string() })?;
        }
        Ok(self.written)
    }
}

/// Rows written per table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ParquetSummary {
    /// Rows of `poses.parquet`.
    pub poses: u64,
    /// Rows of `points.parquet`.
    pub points: u64,
    /// Rows of `paths.parquet`.
    pub paths: u64,
    /// Rows of `agents.parquet`.
    pub agents: u64,
}

/// A Parquet log directory being written; see the module docs. Call
/// [`ParquetLog::finish`]: files are only valid once closed.
pub struct ParquetLog {
    poses: Table,
    points: Table,
    paths: Table,
    agents: Table,
}

impl std::fmt::Debug for ParquetLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetLog").field("dir", &self.poses.path.parent()).finish_non_exhaustive()
    }
}

impl ParquetLog {
    /// Creates the directory (if needed) and the four tables in it.
    pub fn create(dir: &Path) -> Result<Self, RecordError> {
        std::fs::create_dir_all(dir).map_err(|source| RecordError::Io { path: dir.to_path_buf(), source })?;
        use DataType::{Float64 as F, UInt32, UInt64, Utf8};
        let xyz = [("x_m", F), ("y_m", F), ("z_m", F)];
        let mut pose_fields = vec![("t_ns", UInt64), ("frame", Utf8)];
        pose_fields.extend(xyz.clone());
        pose_fields.extend([("yaw_rad", F), ("pitch_rad", F), ("roll_rad", F)]);
        let mut point_fields = vec![("t_ns", UInt64), ("topic", Utf8)];
        point_fields.extend(xyz.clone());
        let mut path_fields = vec![("t_ns", UInt64), ("topic", Utf8), ("path", UInt32), ("point", UInt32)];
        path_fields.extend(xyz.clone());
        let mut agent_fields = vec![("t_ns", UInt64), ("id", UInt64), ("kind", Utf8)];
        agent_fields.extend(xyz);
        agent_fields.extend([("yaw_rad", F), ("length_m", F), ("width_m", F), ("height_m", F)]);
        Ok(Self {
            poses: Table::create(dir, "poses", &pose_fields)?,
            points: Table::create(dir, "points", &point_fields)?,
            paths: Table::create(dir, "paths", &path_fields)?,
            agents: Table::create(dir, "agents", &agent_fields)?,
        })
    }

    /// The pose of body frame `frame` in the map.
    pub fn log_pose(&mut self, t_ns: u64, frame: &str, pose: &Pose3) -> Result<(), RecordError> {
        if !pose.is_finite() {
            return Err(RecordError::InvalidRecord {
                topic: "poses".into(),
                reason: format!("{pose:?} is not finite"),
            });
        }
        let t = &mut self.poses;
        t.u64(0, t_ns);
        t.str(1, frame);
        for (k, v) in pose.position_enu.iter().chain([&pose.yaw_rad, &pose.pitch_rad, &pose.roll_rad]).enumerate() {
            t.f64(2 + k, *v);
        }
        t.end_row()
    }

    /// Lidar returns on topic `/lidar`.
    pub fn log_lidar(&mut self, t_ns: u64, points_enu: &[[f64; 3]]) -> Result<(), RecordError> {
        self.log_point_cloud(t_ns, "/lidar", points_enu)
    }

    /// A point cloud on `topic`.
    pub fn log_point_cloud(&mut self, t_ns: u64, topic: &str, points_enu: &[[f64; 3]]) -> Result<(), RecordError> {
        if !points_finite(points_enu) {
            return Err(RecordError::InvalidRecord { topic: topic.into(), reason: "a point is not finite".into() });
        }
        for p in points_enu {
            let t = &mut self.points;
            t.u64(0, t_ns);
            t.str(1, topic);
            for (k, v) in p.iter().enumerate() {
                t.f64(2 + k, *v);
            }
            t.end_row()?;
        }
        Ok(())
    }

    /// One path on `topic` (path index 0).
    pub fn log_path(&mut self, t_ns: u64, topic: &str, points_enu: &[[f64; 3]]) -> Result<(), RecordError> {
        self.log_paths(t_ns, topic, &[points_enu.to_vec()])
    }

    /// Several paths on `topic`, numbered in order.
    pub fn log_paths(&mut self, t_ns: u64, topic: &str, paths: &[Vec<[f64; 3]>]) -> Result<(), RecordError> {
        if paths.iter().any(|p| !points_finite(p)) {
            return Err(RecordError::InvalidRecord { topic: topic.into(), reason: "a point is not finite".into() });
        }
        for (pi, path) in paths.iter().enumerate() {
            for (k, p) in path.iter().enumerate() {
                let t = &mut self.paths;
                t.u64(0, t_ns);
                t.str(1, topic);
                t.u32(2, pi as u32);
                t.u32(3, k as u32);
                for (a, v) in p.iter().enumerate() {
                    t.f64(4 + a, *v);
                }
                t.end_row()?;
            }
        }
        Ok(())
    }

    /// The other agents.
    pub fn log_agents(&mut self, t_ns: u64, agents: &[AgentRecord]) -> Result<(), RecordError> {
        if let Some(a) = agents.iter().find(|a| !a.is_finite()) {
            return Err(RecordError::InvalidRecord {
                topic: "agents".into(),
                reason: format!("agent {} is not finite", a.id),
            });
        }
        for a in agents {
            let t = &mut self.agents;
            t.u64(0, t_ns);
            t.u64(1, a.id);
            t.str(2, &a.kind);
            let vals = [
                a.base_center_enu[0],
                a.base_center_enu[1],
                a.base_center_enu[2],
                a.yaw_rad,
                a.length_m,
                a.width_m,
                a.height_m,
            ];
            for (k, v) in vals.iter().enumerate() {
                t.f64(3 + k, *v);
            }
            t.end_row()?;
        }
        Ok(())
    }

    /// Writes the buffered rows and closes every table.
    pub fn finish(mut self) -> Result<ParquetSummary, RecordError> {
        Ok(ParquetSummary {
            poses: self.poses.close()?,
            points: self.points.close()?,
            paths: self.paths.close()?,
            agents: self.agents.close()?,
        })
    }
}
