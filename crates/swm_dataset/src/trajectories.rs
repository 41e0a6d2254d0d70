//! Trajectories as Parquet.
//!
//! # Schema `swm-trajectories/1`
//! One row per agent per recorded step, rows ordered by step then as the simulator listed
//! the agents (by `agent_id`):
//!
//! | column        | type              | null | meaning                                          |
//! |---------------|-------------------|------|--------------------------------------------------|
//! | `agent_id`    | UInt64            | no   | unique within the run, never reused              |
//! | `kind`        | Utf8 (dictionary-encoded pages) | no | `car`, `bus`, `truck`, `pedestrian` |
//! | `length_m`    | Float32           | no   | box length along the heading (> 0)               |
//! | `width_m`     | Float32           | no   | box width (> 0)                                  |
//! | `step`        | UInt32            | no   | simulator step (0.1 s each)                      |
//! | `time_s`      | Float64           | no   | simulated time                                   |
//! | `x_m`, `y_m`, `z_m` | Float64     | no   | twin frame: east, north, elevation               |
//! | `heading_rad` | Float64           | no   | counter-clockwise from east                      |
//! | `speed_mps`   | Float64           | no   | along the heading, ≥ 0                           |
//! | `accel_mps2`  | Float64           | no   | along the heading                                |
//! | `lane`        | UInt32            | yes  | index into `Twin::lanes`; null in junctions, for pedestrians and imports |
//! | `signal`      | Utf8              | yes  | `red`, `amber`, `green`: the signal ahead        |
//!
//! Every number is finite, coordinates within 10⁷ m of the twin's origin, sizes and speeds
//! within 10³ (m, m/s, m/s²); readers refuse a row that breaks the table's rules, naming
//! it (`MAX_COORDINATE_M` and the constants beside it).
//!
//! Scenario files ([`crate::scenario`]) put two columns first: `scenario_id` (UInt64) and
//! `frame` (Int32, the step relative to the scenario's current time: negative is history).
//!
//! The file's key-value metadata holds `swm.schema = swm-trajectories/1` (or
//! `swm-scenarios/1`), and `swm.data_bytes` and `swm.data_crc32`: the CRC-32 (hex) of the
//! file's first `data_bytes` bytes: the magic number and every row group's pages (what follows,
//! the page indexes and the footer, is written after the checksum; swm's reader does not use
//! the page indexes, and a damaged footer fails to parse or to match). Parquet pages carry no
//! checksum of their own, and a changed byte in a Snappy page often decodes to other values
//! without a word; readers check the CRC before decoding when a file has one (files of other
//! writers may not), and the pages' own checksums where another writer put them (pyarrow's
//! `write_page_checksum=True`). Compression is Snappy; `created_by` is fixed to this crate's name and
//! version, so the same records give the same bytes.
//!
//! [`TrajectoryWriter`] encodes and writes its row groups on a thread of its own, one row
//! group behind the caller, so a simulation that records every step keeps its own core (and
//! its caches) to itself; the bytes are those of writing in line.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, UInt32Type, UInt64Type};
use arrow_array::{
    ArrayRef, Float32Array, Float64Array, Int32Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use swm_sim::{AgentKind, SignalState, TrajectoryRecord};

use crate::DatasetError;

/// Schema tag of trajectory files.
pub const TRAJECTORY_SCHEMA: &str = "swm-trajectories/1";
/// Schema tag of scenario files.
pub const SCENARIO_SCHEMA: &str = "swm-scenarios/1";
/// Rows buffered before a row group is written (at the end of the step that reaches it).
pub const ROW_GROUP_ROWS: usize = 65_536;

/// The Arrow schema of trajectory files (`scenario`: with `scenario_id` and `frame` first).
pub fn schema(scenario: bool) -> SchemaRef {
    let mut fields = Vec::new();
    if scenario {
        fields.push(Field::new("scenario_id", DataType::UInt64, false));
        fields.push(Field::new("frame", DataType::Int32, false));
    }
    fields.extend([
        Field::new("agent_id", DataType::UInt64, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("length_m", DataType::Float32, false),
        Field::new("width_m", DataType::Float32, false),
        Field::new("step", DataType::UInt32, false),
        Field::new("time_s", DataType::Float64, false),
        Field::new("x_m", DataType::Float64, false),
        Field::new("y_m", DataType::Float64, false),
        Field::new("z_m", DataType::Float64, false),
        Field::new("heading_rad", DataType::Float64, false),
        Field::new("speed_mps", DataType::Float64, false),
        Field::new("accel_mps2", DataType::Float64, false),
        Field::new("lane", DataType::UInt32, true),
        Field::new("signal", DataType::Utf8, true),
    ]);
    Arc::new(Schema::new(fields))
}

fn writer_properties(tag: &str) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("swm_dataset {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![KeyValue::new("swm.schema".to_string(), tag.to_string())]))
        // Row groups are cut by `TrajectoryWriter` at step boundaries, never inside a step.
        .set_max_row_group_row_count(None)
        .build()
}

/// Column buffers of one row group.
#[derive(Default)]
struct Columns {
    scenario_id: Vec<u64>,
    frame: Vec<i32>,
    agent_id: Vec<u64>,
    kind: Vec<&'static str>,
    length_m: Vec<f32>,
    width_m: Vec<f32>,
    step: Vec<u32>,
    time_s: Vec<f64>,
    x_m: Vec<f64>,
    y_m: Vec<f64>,
    z_m: Vec<f64>,
    heading_rad: Vec<f64>,
    speed_mps: Vec<f64>,
    accel_mps2: Vec<f64>,
    lane: Vec<Option<u32>>,
    signal: Vec<Option<&'static str>>,
}

impl Columns {
    fn push(&mut self, r: &TrajectoryRecord) {
        self.agent_id.push(r.agent_id);
        self.kind.push(r.kind.as_str());
        self.length_m.push(r.length_m);
        self.width_m.push(r.width_m);
        self.step.push(r.step);
        self.time_s.push(r.time_s);
        self.x_m.push(r.x_m);
        self.y_m.push(r.y_m);
        self.z_m.push(r.z_m);
        self.heading_rad.push(r.heading_rad);
        self.speed_mps.push(r.speed_mps);
        self.accel_mps2.push(r.accel_mps2);
        self.lane.push(r.lane);
        self.signal.push(r.signal.map(SignalState::as_str));
    }

    fn len(&self) -> usize {
        self.agent_id.len()
    }

    fn take_batch(&mut self, schema: &SchemaRef, scenario: bool) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let c = std::mem::take(self);
        let mut cols: Vec<ArrayRef> = Vec::new();
        if scenario {
            cols.push(Arc::new(UInt64Array::from(c.scenario_id)));
            cols.push(Arc::new(Int32Array::from(c.frame)));
        }
        cols.extend([
            Arc::new(UInt64Array::from(c.agent_id)) as ArrayRef,
            Arc::new(StringArray::from(c.kind)),
            Arc::new(Float32Array::from(c.length_m)),
            Arc::new(Float32Array::from(c.width_m)),
            Arc::new(UInt32Array::from(c.step)),
            Arc::new(Float64Array::from(c.time_s)),
            Arc::new(Float64Array::from(c.x_m)),
            Arc::new(Float64Array::from(c.y_m)),
            Arc::new(Float64Array::from(c.z_m)),
            Arc::new(Float64Array::from(c.heading_rad)),
            Arc::new(Float64Array::from(c.speed_mps)),
            Arc::new(Float64Array::from(c.accel_mps2)),
            Arc::new(UInt32Array::from(c.lane)),
            Arc::new(StringArray::from(c.signal)),
        ]);
        RecordBatch::try_new(schema.clone(), cols)
    }
}

/// What the caller hands the encoding thread.
enum Job {
    RowGroup(RecordBatch),
    /// Write the footer and stop. A writer dropped without [`TrajectoryWriter::finish`]
    /// disconnects instead, and its file is left without a footer (unreadable, as a file
    /// cut short should be).
    Close,
}

/// The bytes on their way to the file, and the CRC-32 of all of them so far.
struct Crc32Write<W> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for Crc32Write<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

type FileWriter = ArrowWriter<Crc32Write<BufWriter<File>>>;

/// Key-value metadata keys of the data checksum (module docs).
const DATA_BYTES_KEY: &str = "swm.data_bytes";
const DATA_CRC32_KEY: &str = "swm.data_crc32";

/// The encoding thread: writes row groups until told to close.
fn encode(mut writer: FileWriter, jobs: Receiver<Job>, path: PathBuf) -> Result<(), DatasetError> {
    let perr = |source| DatasetError::Parquet { path: path.clone(), source };
    let mut rows = 0;
    for job in jobs {
        match job {
            Job::RowGroup(batch) => {
                writer.write(&batch).map_err(perr)?;
                writer.flush().map_err(perr)?;
                rows += batch.num_rows();
                tracing::debug!(path = %path.display(), rows, "row group written");
            }
            Job::Close => {
                // Every row group's bytes have reached the checksum once synced (the page
                // indexes and the footer come after, in `close`).
                writer.flush().map_err(perr)?;
                writer.sync().map_err(DatasetError::io(&path))?;
                let (bytes, crc) = (writer.inner().bytes, writer.inner().crc.clone().finalize());
                writer.append_key_value_metadata(KeyValue::new(DATA_BYTES_KEY.to_string(), bytes.to_string()));
                writer.append_key_value_metadata(KeyValue::new(DATA_CRC32_KEY.to_string(), format!("{crc:08x}")));
                writer.close().map_err(perr)?;
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Writes records to a Parquet file in row groups of [`ROW_GROUP_ROWS`] as they come
/// (encoded on a thread of its own; see the module docs).
pub struct TrajectoryWriter {
    path: PathBuf,
    schema: SchemaRef,
    scenario: bool,
    /// To the encoding thread (bounded: at most one row group waits while one is written).
    jobs: Option<SyncSender<Job>>,
    encoder: Option<JoinHandle<Result<(), DatasetError>>>,
    buffer: Columns,
    rows: u64,
}

impl TrajectoryWriter {
    /// A trajectory file at `path` (schema [`TRAJECTORY_SCHEMA`]).
    pub fn create(path: &Path) -> Result<Self, DatasetError> {
        Self::create_with(path, false)
    }

    /// A scenario file at `path` (schema [`SCENARIO_SCHEMA`]): write with
    /// [`TrajectoryWriter::write_scenario_rows`].
    pub fn create_scenarios(path: &Path) -> Result<Self, DatasetError> {
        Self::create_with(path, true)
    }

    fn create_with(path: &Path, scenario: bool) -> Result<Self, DatasetError> {
        let file = File::create(path).map_err(DatasetError::io(path))?;
        let schema = schema(scenario);
        let tag = if scenario { SCENARIO_SCHEMA } else { TRAJECTORY_SCHEMA };
        let sink = Crc32Write { inner: BufWriter::new(file), crc: crc32fast::Hasher::new(), bytes: 0 };
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some(writer_properties(tag)))
            .map_err(|source| DatasetError::Parquet { path: path.to_path_buf(), source })?;
        let (jobs, rx) = sync_channel(1);
        let thread_path = path.to_path_buf();
        let encoder = std::thread::Builder::new()
            .name("swm-parquet".to_string())
            .spawn(move || encode(writer, rx, thread_path))
            .map_err(DatasetError::io(path))?;
        Ok(TrajectoryWriter {
            path: path.to_path_buf(),
            schema,
            scenario,
            jobs: Some(jobs),
            encoder: Some(encoder),
            buffer: Columns::default(),
            rows: 0,
        })
    }

    /// Hands `job` to the encoding thread; if that thread has stopped on an error, the error.
    fn send(&mut self, job: Job) -> Result<(), DatasetError> {
        let sent = self.jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if sent {
            return Ok(());
        }
        // The thread hung up: it failed (or a previous error already stopped it).
        self.jobs = None;
        match self.encoder.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(DatasetError::Writer {
                path: self.path.clone(),
                message: "the Parquet encoding thread panicked".to_string(),
            }),
            Some(Ok(Ok(()))) | None => Err(DatasetError::Writer {
                path: self.path.clone(),
                message: "the writer stopped after an earlier error".to_string(),
            }),
        }
    }

    /// Appends the records of one step.
    pub fn write_step(&mut self, records: &[TrajectoryRecord]) -> Result<(), DatasetError> {
        if self.scenario {
            return Err(DatasetError::Schema {
                path: self.path.clone(),
                message: "a scenario file takes write_scenario_rows".to_string(),
            });
        }
        for r in records {
            self.buffer.push(r);
        }
        self.maybe_flush()
    }

    /// Appends rows of scenario `scenario_id`, each with its frame.
    pub fn write_scenario_rows(
        &mut self,
        scenario_id: u64,
        rows: &[(i32, TrajectoryRecord)],
    ) -> Result<(), DatasetError> {
        if !self.scenario {
            return Err(DatasetError::Schema {
                path: self.path.clone(),
                message: "a trajectory file takes write_step".to_string(),
            });
        }
        for (frame, r) in rows {
            self.buffer.scenario_id.push(scenario_id);
            self.buffer.frame.push(*frame);
            self.buffer.push(r);
        }
        self.maybe_flush()
    }

    fn maybe_flush(&mut self) -> Result<(), DatasetError> {
        if self.buffer.len() >= ROW_GROUP_ROWS { self.flush_row_group() } else { Ok(()) }
    }

    fn flush_row_group(&mut self) -> Result<(), DatasetError> {
        if self.buffer.len() == 0 {
            return Ok(());
        }
        let n = self.buffer.len() as u64;
        let batch = self
            .buffer
            .take_batch(&self.schema, self.scenario)
            .map_err(|source| DatasetError::Arrow { path: self.path.clone(), source })?;
        self.send(Job::RowGroup(batch))?;
        self.rows += n;
        Ok(())
    }

    /// Rows written so far (including buffered ones).
    pub fn rows(&self) -> u64 {
        self.rows + self.buffer.len() as u64
    }

    /// Writes the last row group and the footer; returns the number of rows.
    pub fn finish(mut self) -> Result<u64, DatasetError> {
        self.flush_row_group()?;
        self.send(Job::Close)?;
        self.jobs = None;
        match self.encoder.take().map(JoinHandle::join) {
            Some(Ok(result)) => result.map(|()| self.rows),
            _ => Err(DatasetError::Writer {
                path: self.path.clone(),
                message: "the Parquet encoding thread panicked".to_string(),
            }),
        }
    }
}

impl Drop for TrajectoryWriter {
    /// Without [`TrajectoryWriter::finish`]: stops the encoding thread (after the row groups
    /// handed to it) and leaves the file without a footer.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(encoder) = self.encoder.take() {
            let _ = encoder.join();
        }
    }
}

fn parse_kind(s: &str) -> Option<AgentKind> {
    match s {
        "car" => Some(AgentKind::Car),
        "bus" => Some(AgentKind::Bus),
        "truck" => Some(AgentKind::Truck),
        "pedestrian" => Some(AgentKind::Pedestrian),
        _ => None,
    }
}

fn parse_signal(s: &str) -> Option<SignalState> {
    match s {
        "red" => Some(SignalState::Red),
        "amber" => Some(SignalState::Amber),
        "green" => Some(SignalState::Green),
        _ => None,
    }
}

/// One row of a scenario file.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioRow {
    pub scenario_id: u64,
    pub frame: i32,
    pub record: TrajectoryRecord,
}

/// Reads every record of a trajectory file.
pub fn read_trajectories(path: &Path) -> Result<Vec<TrajectoryRecord>, DatasetError> {
    Ok(read_rows(path, false)?.into_iter().map(|r| r.record).collect())
}

/// Reads every row of a scenario file.
pub fn read_scenario_rows(path: &Path) -> Result<Vec<ScenarioRow>, DatasetError> {
    read_rows(path, true)
}

fn read_rows(path: &Path, scenario: bool) -> Result<Vec<ScenarioRow>, DatasetError> {
    let file = File::open(path).map_err(DatasetError::io(path))?;
    // The Parquet decoder panics on some damaged pages (a page in an encoding its column
    // chunk has no dictionary for, ...): such a file is an error naming it, like any other
    // damage, not a crash of the run reading it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_rows(file, path, scenario))).unwrap_or_else(
        |payload| {
            let cause = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the decoder stopped".to_string());
            Err(DatasetError::Damaged { path: path.to_path_buf(), message: cause })
        },
    )
}

fn decode_rows(file: File, path: &Path, scenario: bool) -> Result<Vec<ScenarioRow>, DatasetError> {
    let file_len = file.metadata().map_err(DatasetError::io(path))?.len();
    let perr = |source| DatasetError::Parquet { path: path.to_path_buf(), source };
    let schema_err = |message: String| DatasetError::Schema { path: path.to_path_buf(), message };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(perr)?;
    let damaged = |message: String| DatasetError::Damaged { path: path.to_path_buf(), message };
    check_column_chunks(builder.metadata(), file_len).map_err(damaged)?;
    if let Some((bytes, crc)) = data_checksum(builder.metadata()).map_err(damaged)? {
        let found =
            File::open(path).and_then(|mut f| crc32_of_prefix(&mut f, bytes)).map_err(DatasetError::io(path))?;
        if found != Some(crc) {
            return Err(damaged(match found {
                Some(found) => {
                    format!("the CRC-32 of its first {bytes} bytes is {found:08x}, its footer says {crc:08x}")
                }
                None => format!("{file_len} bytes, its footer says the data alone is {bytes}"),
            }));
        }
    }
    let reader = builder.build().map_err(perr)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| DatasetError::Arrow { path: path.to_path_buf(), source })?;
        let col = |name: &str| batch.column_by_name(name).ok_or_else(|| schema_err(format!("no column {name:?}")));
        let wrong = |name: &str| schema_err(format!("column {name:?} has the wrong type"));
        macro_rules! prim {
            ($name:literal, $ty:ty) => {
                col($name)?.as_primitive_opt::<$ty>().ok_or_else(|| wrong($name))?
            };
        }
        let agent_id = prim!("agent_id", UInt64Type);
        let kind = col("kind")?.as_string_opt::<i32>().ok_or_else(|| wrong("kind"))?;
        let length_m = prim!("length_m", Float32Type);
        let width_m = prim!("width_m", Float32Type);
        let step = prim!("step", UInt32Type);
        let time_s = prim!("time_s", Float64Type);
        let x_m = prim!("x_m", Float64Type);
        let y_m = prim!("y_m", Float64Type);
        let z_m = prim!("z_m", Float64Type);
        let heading_rad = prim!("heading_rad", Float64Type);
        let speed_mps = prim!("speed_mps", Float64Type);
        let accel_mps2 = prim!("accel_mps2", Float64Type);
        let lane = prim!("lane", UInt32Type);
        let signal = col("signal")?.as_string_opt::<i32>().ok_or_else(|| wrong("signal"))?;
        let ids = if scenario { Some((prim!("scenario_id", UInt64Type), prim!("frame", Int32Type))) } else { None };
        for i in 0..batch.num_rows() {
            let k = kind.value(i);
            let kind = parse_kind(k).ok_or_else(|| schema_err(format!("unknown agent kind {k:?}")))?;
            let signal = if signal.is_null(i) {
                None
            } else {
                let s = signal.value(i);
                Some(parse_signal(s).ok_or_else(|| schema_err(format!("unknown signal state {s:?}")))?)
            };
            let record = TrajectoryRecord {
                agent_id: agent_id.value(i),
                kind,
                length_m: length_m.value(i),
                width_m: width_m.value(i),
                step: step.value(i),
                time_s: time_s.value(i),
                x_m: x_m.value(i),
                y_m: y_m.value(i),
                z_m: z_m.value(i),
                heading_rad: heading_rad.value(i),
                speed_mps: speed_mps.value(i),
                accel_mps2: accel_mps2.value(i),
                lane: (!lane.is_null(i)).then(|| lane.value(i)),
                signal,
            };
            check_record(&record).map_err(|m| {
                schema_err(format!(
                    "row {} (from 0): agent {} at step {}: {m}",
                    out.len(),
                    record.agent_id,
                    record.step
                ))
            })?;
            let (scenario_id, frame) = ids.map(|(s, f)| (s.value(i), f.value(i))).unwrap_or((0, 0));
            out.push(ScenarioRow { scenario_id, frame, record });
        }
    }
    Ok(out)
}

/// The largest |coordinate| a record may have: 10,000 km from the twin's origin.
pub const MAX_COORDINATE_M: f64 = 1e7;
/// The largest speed a record may have (beyond any road user's).
pub const MAX_SPEED_MPS: f64 = 1e3;
/// The largest |acceleration| a record may have (beyond any road user's).
pub const MAX_ACCEL_MPS2: f64 = 1e3;
/// The largest box length or width a record may have.
pub const MAX_SIZE_M: f32 = 1e3;

/// What a record must hold to be read (the schema's rules): finite numbers, coordinates
/// within [`MAX_COORDINATE_M`], a box of positive size up to [`MAX_SIZE_M`], a speed of 0
/// to [`MAX_SPEED_MPS`] (a magnitude, like the simulator's) and an acceleration within
/// [`MAX_ACCEL_MPS2`].
pub(crate) fn check_record(r: &TrajectoryRecord) -> Result<(), String> {
    let numbers = [
        ("time_s", r.time_s, f64::MAX),
        ("x_m", r.x_m, MAX_COORDINATE_M),
        ("y_m", r.y_m, MAX_COORDINATE_M),
        ("z_m", r.z_m, MAX_COORDINATE_M),
        ("heading_rad", r.heading_rad, f64::MAX),
        ("speed_mps", r.speed_mps, MAX_SPEED_MPS),
        ("accel_mps2", r.accel_mps2, MAX_ACCEL_MPS2),
    ];
    for (name, v, max) in numbers {
        if !v.is_finite() {
            return Err(format!("{name} is {v}"));
        }
        if v.abs() > max {
            return Err(format!("{name} is {v}, beyond ±{max}"));
        }
    }
    for (name, v) in [("length_m", r.length_m), ("width_m", r.width_m)] {
        if !(v.is_finite() && v > 0.0 && v <= MAX_SIZE_M) {
            return Err(format!("{name} is {v}; a box is more than 0 and at most {MAX_SIZE_M} m"));
        }
    }
    if r.speed_mps < 0.0 {
        return Err(format!("speed_mps is {}; speeds are magnitudes", r.speed_mps));
    }
    Ok(())
}

/// The data checksum the footer holds (`swm.data_bytes`, `swm.data_crc32`), if any.
fn data_checksum(metadata: &parquet::file::metadata::ParquetMetaData) -> Result<Option<(u64, u32)>, String> {
    let kv = metadata.file_metadata().key_value_metadata();
    let get = |key: &str| kv.and_then(|kv| kv.iter().find(|e| e.key == key)).map(|e| e.value.as_deref().unwrap_or(""));
    match (get(DATA_BYTES_KEY), get(DATA_CRC32_KEY)) {
        (None, None) => Ok(None),
        (Some(bytes), Some(crc)) => {
            let bytes = bytes.parse::<u64>().map_err(|_| format!("footer: {DATA_BYTES_KEY} = {bytes:?}"))?;
            let crc = u32::from_str_radix(crc, 16).map_err(|_| format!("footer: {DATA_CRC32_KEY} = {crc:?}"))?;
            Ok(Some((bytes, crc)))
        }
        _ => Err(format!("footer: one of {DATA_BYTES_KEY} and {DATA_CRC32_KEY} without the other")),
    }
}

/// The CRC-32 of the first `bytes` bytes of `file` (`None` when it is shorter).
fn crc32_of_prefix(file: &mut File, bytes: u64) -> std::io::Result<Option<u32>> {
    file.rewind()?;
    let mut crc = crc32fast::Hasher::new();
    let mut left = bytes;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Ok(None);
        }
        crc.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(Some(crc.finalize()))
}

/// Whether every column chunk the footer lists lies inside the file. The Parquet reader
/// asserts that a chunk's start and length are not negative (it panics on a damaged
/// footer that says otherwise), so they are checked here first.
fn check_column_chunks(metadata: &parquet::file::metadata::ParquetMetaData, file_len: u64) -> Result<(), String> {
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for c in group.columns() {
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            let len = c.compressed_size();
            if start < 0 || len < 0 || (start as u64).saturating_add(len as u64) > file_len {
                return Err(format!(
                    "footer: row group {g}, column {}: {len} bytes from byte {start}, in a file of {file_len}",
                    c.column_path()
                ));
            }
        }
    }
    Ok(())
}

/// Groups records by step (records must be ordered by step, as files are).
pub fn by_step(records: &[TrajectoryRecord]) -> Vec<&[TrajectoryRecord]> {
    records.chunk_by(|a, b| a.step == b.step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rec(id: u64, step: u32, x: f64) -> TrajectoryRecord {
        TrajectoryRecord {
            agent_id: id,
            kind: if id.is_multiple_of(2) { AgentKind::Car } else { AgentKind::Pedestrian },
            length_m: 4.5,
            width_m: 1.8,
            step,
            time_s: f64::from(step) * 0.1,
            x_m: x,
            y_m: -x,
            z_m: 12.5,
            heading_rad: 0.25,
            speed_mps: 3.0,
            accel_mps2: -0.5,
            lane: id.is_multiple_of(2).then_some(7),
            signal: if id.is_multiple_of(3) { Some(SignalState::Amber) } else { None },
        }
    }

    #[test]
    fn round_trip_in_several_row_groups_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<TrajectoryRecord> =
            (0..700u32).flat_map(|s| (0..100u64).map(move |id| rec(id, s, f64::from(s) + id as f64))).collect();
        let write = |name: &str| {
            let p = dir.path().join(name);
            let mut w = TrajectoryWriter::create(&p).unwrap();
            for step in by_step(&records) {
                w.write_step(step).unwrap();
            }
            assert_eq!(w.finish().unwrap(), records.len() as u64);
            p
        };
        let (a, b) = (write("a.parquet"), write("b.parquet"));
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let meta = parquet::file::reader::SerializedFileReader::new(File::open(&a).unwrap()).unwrap();
        use parquet::file::reader::FileReader;
        assert_eq!(meta.metadata().num_row_groups(), 2);
        assert_eq!(read_trajectories(&a).unwrap(), records);
    }

    #[test]
    fn a_writer_dropped_unfinished_leaves_an_unreadable_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cut.parquet");
        let mut w = TrajectoryWriter::create(&p).unwrap();
        // More than a row group: one goes to the encoding thread before the drop.
        for s in 0..(ROW_GROUP_ROWS as u32 / 50 + 10) {
            let step: Vec<_> = (0..50u64).map(|id| rec(id, s, 1.0)).collect();
            w.write_step(&step).unwrap();
        }
        drop(w);
        assert!(std::fs::metadata(&p).unwrap().len() > 0, "the first row group was written");
        let e = read_trajectories(&p).unwrap_err().to_string();
        assert!(e.contains("cut.parquet"), "{e}");
    }

    #[test]
    fn scenario_rows_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.parquet");
        let mut w = TrajectoryWriter::create_scenarios(&p).unwrap();
        assert!(w.write_step(&[rec(0, 0, 0.0)]).is_err());
        w.write_scenario_rows(3, &[(-1, rec(0, 0, 1.0)), (0, rec(1, 1, 2.0))]).unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        let rows = read_scenario_rows(&p).unwrap();
        assert_eq!((rows[0].scenario_id, rows[0].frame, rows[1].frame), (3, -1, 0));
        assert_eq!(rows[1].record, rec(1, 1, 2.0));
        // Not a trajectory file.
        let junk = dir.path().join("junk.parquet");
        std::fs::write(&junk, b"not parquet").unwrap();
        let e = read_trajectories(&junk).unwrap_err().to_string();
        assert!(e.contains("junk.parquet"), "{e}");
        // A missing file: the OS error is the source, shown once in the chain.
        let e = read_trajectories(&dir.path().join("none.parquet")).unwrap_err();
        assert!(matches!(e, DatasetError::Io { .. }), "{e:?}");
        let os = std::error::Error::source(&e).expect("the I/O error is the source").to_string();
        assert!(!e.to_string().contains(&os), "{e}");
        let chain = swm_core::ErrorChain(&e).to_string();
        assert!(chain.contains("none.parquet"), "{chain}");
        assert_eq!(chain.matches(&os).count(), 1, "{chain}");
    }

    #[test]
    fn rows_that_break_the_schema_rules_are_refused_by_number() {
        let dir = tempfile::tempdir().unwrap();
        type Spoil = fn(&mut TrajectoryRecord);
        let bad: [(&str, Spoil); 5] = [
            ("x_m is NaN", |r| r.x_m = f64::NAN),
            ("y_m is 20000000, beyond ±10000000", |r| r.y_m = 2e7),
            ("speed_mps is -0.5; speeds are magnitudes", |r| r.speed_mps = -0.5),
            ("width_m is 0; a box is more than 0", |r| r.width_m = 0.0),
            ("accel_mps2 is inf", |r| r.accel_mps2 = f64::INFINITY),
        ];
        for (message, spoil) in bad {
            let p = dir.path().join("t.parquet");
            let mut w = TrajectoryWriter::create(&p).unwrap();
            let mut step: Vec<_> = (0..4u64).map(|id| rec(id, 7, 1.0)).collect();
            spoil(&mut step[2]);
            w.write_step(&step).unwrap();
            w.finish().unwrap();
            let e = read_trajectories(&p).unwrap_err().to_string();
            assert!(e.contains("t.parquet: not a swm trajectory file: row 2 (from 0): agent 2 at step 7: "), "{e}");
            assert!(e.contains(message), "{e}");
        }
    }

    /// Other writers' page checksums are checked (parquet's `crc` feature): a file pyarrow
    /// wrote with them (`tests/fixtures/make-page-crc.py`) reads, and with a byte of a data
    /// page changed it is an error naming the file.
    #[test]
    fn page_checksums_of_other_writers_are_checked() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/page-crc.parquet");
        let rows = read_scenario_rows(&fixture).unwrap();
        assert_eq!(rows.len(), 24);
        let r = &rows[1];
        assert_eq!((r.scenario_id, r.frame, r.record.agent_id, r.record.kind), (0, -3, 1, AgentKind::Car));
        assert!((r.record.x_m - 7.3).abs() < 1e-12, "{}", r.record.x_m);
        // The last byte of the x_m column chunk: inside its data page.
        let meta = parquet::file::reader::SerializedFileReader::new(File::open(&fixture).unwrap()).unwrap();
        use parquet::file::reader::FileReader;
        let c = meta.metadata().row_group(0).columns().iter().find(|c| c.column_path().string() == "x_m").unwrap();
        let end = (c.dictionary_page_offset().unwrap_or(c.data_page_offset()) + c.compressed_size()) as usize;
        let mut bytes = std::fs::read(&fixture).unwrap();
        bytes[end - 1] ^= 0x01;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("flipped.parquet");
        std::fs::write(&p, bytes).unwrap();
        let e = swm_core::ErrorChain(&read_scenario_rows(&p).unwrap_err()).to_string();
        assert!(e.contains("flipped.parquet") && e.contains("CRC checksum mismatch"), "{e}");
    }

    /// A scenario file of two scenarios, its bytes.
    fn small_scenario_file() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.parquet");
        let mut w = TrajectoryWriter::create_scenarios(&p).unwrap();
        for s in 0..2u64 {
            let rows: Vec<_> =
                (-3..=0).flat_map(|f| (0..3u64).map(move |id| (f, rec(id, (f + 3) as u32, 0.5)))).collect();
            w.write_scenario_rows(s, &rows).unwrap();
        }
        w.finish().unwrap();
        std::fs::read(&p).unwrap()
    }

    /// The same file as other writers make it: the same pages, no data checksum.
    fn without_checksum(bytes: Vec<u8>) -> Vec<u8> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        let mut w = ArrowWriter::try_new(Vec::new(), schema(true), Some(writer_properties(SCENARIO_SCHEMA))).unwrap();
        for batch in reader {
            w.write(&batch.unwrap()).unwrap();
            w.flush().unwrap();
        }
        w.into_inner().unwrap()
    }

    /// `bytes` with `edits` (half of them in the footer, the last 40 %) and cut at `cut`.
    fn damage(
        mut bytes: Vec<u8>,
        edits: &[(proptest::sample::Index, u8, bool)],
        cut: Option<proptest::sample::Index>,
    ) -> Vec<u8> {
        let n = bytes.len();
        for (at, value, in_footer) in edits {
            let i = if *in_footer { n - 1 - at.index(n * 2 / 5) } else { at.index(n) };
            bytes[i] = *value;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(n));
        }
        bytes
    }

    fn edits() -> impl proptest::strategy::Strategy<Value = Vec<(proptest::sample::Index, u8, bool)>> {
        use proptest::prelude::*;
        proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), proptest::bool::weighted(0.5)), 1..6)
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 300, ..Default::default() })]

        /// Files without the data checksum (other writers'), damaged: an error naming the
        /// file or some rows, never a panic (the decoder's panics on damaged pages are
        /// caught).
        #[test]
        fn damaged_files_of_other_writers_never_panic(
            edits in edits(),
            cut in proptest::option::weighted(0.2, proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            let bytes = damage(without_checksum(small_scenario_file()), &edits, cut);
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("other.parquet");
            std::fs::write(&p, &bytes).unwrap();
            if let Err(e) = read_scenario_rows(&p) {
                proptest::prop_assert!(e.to_string().contains("other.parquet"), "{e}");
            }
        }

        /// Damaged scenario files (bytes changed, files cut short) give the rows written or
        /// an error naming the file: never other rows, never a panic.
        #[test]
        fn damaged_scenario_files_read_or_name_the_file(
            edits in edits(),
            cut in proptest::option::weighted(0.2, proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            let bytes = damage(small_scenario_file(), &edits, cut);
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("damaged.parquet");
            std::fs::write(&p, &bytes).unwrap();
            match read_scenario_rows(&p) {
                Err(e) => proptest::prop_assert!(e.to_string().contains("damaged.parquet"), "{e}"),
                Ok(rows) => {
                    let clean = dir.path().join("clean.parquet");
                    std::fs::write(&clean, small_scenario_file()).unwrap();
                    proptest::prop_assert_eq!(rows, read_scenario_rows(&clean).unwrap());
                }
            }
        }
    }
}
