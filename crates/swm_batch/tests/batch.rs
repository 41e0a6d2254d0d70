//! Batch runs on a tiny batch: the embedded default district, fresh teacher scenarios, 2
//! samples, 20 frames, chunks of 2 scenarios.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use swm_batch::{BatchConfig, BatchError, BatchEvent, BatchPlan, RunOptions, Shard, merge, run_batch, verify};

const TINY: &str = r#"
seed = 5
output = "unused"
twins = ["default"]
samples = 2
horizon = 20
chunk_size = 2
scenarios_per_twin = 9

[teacher]
vehicles = 40
pedestrians = 10
warmup_s = 6.0
duration_s = 2.5
"#;

/// A model file with random weights (the tests do not depend on the shipped model's
/// training, only on the layout of this build).
fn model_file() -> &'static Path {
    static MODEL: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &MODEL
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("random.safetensors");
            swm_model::Network::init(swm_model::NetConfig::default(), 3).save(&p).unwrap();
            (dir, p)
        })
        .1
}

fn tiny_config() -> BatchConfig {
    let mut c = BatchConfig::from_toml_str(TINY).unwrap();
    c.model = model_file().display().to_string();
    c
}

/// The tiny plan, prepared once for every test of this file.
fn plan() -> &'static BatchPlan {
    static PLAN: OnceLock<BatchPlan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let t = std::time::Instant::now();
        let p = BatchPlan::prepare(&tiny_config()).expect("the tiny batch prepares");
        eprintln!("prepared in {:.1} s: {} chunks", t.elapsed().as_secs_f64(), p.chunks.len());
        p
    })
}

fn run(plan: &BatchPlan, out: &Path, shard: Shard) -> Result<(swm_batch::BatchSummary, Vec<BatchEvent>), BatchError> {
    let mut events = Vec::new();
    let s = run_batch(plan, out, RunOptions { shard: Some(shard), ..RunOptions::default() }, &mut |e| events.push(e))?;
    Ok((s, events))
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

/// Every file under `dir` (relative path -> bytes).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (tree(a), tree(b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>(), "file sets differ");
    for (k, v) in &ta {
        assert!(v == &tb[k], "{k} differs");
    }
}

fn reference() -> &'static PathBuf {
    // One single-process run on one thread, shared by the tests that compare with it.
    static REF: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &REF.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ref");
        let (s, _) = pool(1).install(|| run(plan(), &out, Shard::ALL)).unwrap();
        assert_eq!(s.chunks_written, plan().chunks.len() as u64);
        (dir, out)
    })
    .1
}

#[test]
fn the_union_of_shards_is_the_single_process_output_whatever_the_thread_count() {
    let p = plan();
    assert_eq!(p.chunks.len(), 5, "9 scenarios in chunks of 2");
    let single = reference();
    let tmp = tempfile::tempdir().unwrap();
    for n in [3u32, 7] {
        let out = tmp.path().join(format!("n{n}"));
        let mut written = 0;
        for i in 0..n {
            let (s, _) = pool(2).install(|| run(p, &out, Shard::new(i, n).unwrap())).unwrap();
            written += s.chunks_written;
        }
        assert_eq!(written, 5);
        assert_same_tree(single, &out);
    }
    // The comparison has teeth: another seed gives other bytes.
    let mut other = tiny_config();
    other.seed = 6;
    let q = BatchPlan::prepare(&other).unwrap();
    let out = tmp.path().join("other");
    run(&q, &out, Shard::ALL).unwrap();
    let (a, b) = (tree(single), tree(&out));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert_ne!(a["twin=default/chunk-000000.parquet"], b["twin=default/chunk-000000.parquet"]);
}

#[test]
fn chunks_hold_every_rollout_row_in_order() {
    let out = reference();
    let p = plan();
    let report = verify(out).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.chunks_ok, 5);
    // Rows per chunk = sum over its scenarios of agents at frame 0 × samples × horizon.
    let rows = swm_dataset::trajectories::read_scenario_rows;
    let _ = rows; // the batch schema has a `sample` column: read it with parquet directly
    let file = std::fs::File::open(out.join("twin=default/chunk-000000.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut keys = Vec::new();
    for b in reader {
        let b = b.unwrap();
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Int32Type, UInt32Type, UInt64Type};
        let sid = b.column_by_name("scenario_id").unwrap().as_primitive::<UInt64Type>();
        let sample = b.column_by_name("sample").unwrap().as_primitive::<UInt32Type>();
        let frame = b.column_by_name("frame").unwrap().as_primitive::<Int32Type>();
        let agent = b.column_by_name("agent_id").unwrap().as_primitive::<UInt64Type>();
        for i in 0..b.num_rows() {
            keys.push((sid.value(i), sample.value(i), frame.value(i), agent.value(i)));
        }
    }
    let c0 = &p.chunks[0];
    let expect: usize =
        p.scenarios_of(c0).iter().map(|s| s.rows.iter().filter(|(f, _)| *f == 0).count() * 2 * 20).sum();
    assert!(expect > 0);
    assert_eq!(keys.len(), expect);
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "no duplicated rows");
    // Ordered by scenario (chunk order = id order here), sample, frame, agent.
    assert_eq!(sorted, keys);
    assert_eq!(keys.first().map(|k| (k.1, k.2)), Some((0, 1)));
    assert_eq!(keys.last().map(|k| (k.1, k.2)), Some((1, 20)));
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x5A;
    std::fs::write(path, b).unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

#[test]
fn verify_names_damage_and_a_rerun_repairs_exactly_that() {
    let p = plan();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    copy_tree(reference(), &out);
    let dir = out.join("twin=default");
    // Chunk 2: a flipped byte. Chunk 3: killed between the renames (no record).
    // Chunk 4: never written, with a stray temporary file. Chunk 1: a corrupt record.
    flip_byte(&dir.join("chunk-000002.parquet"), 100);
    std::fs::remove_file(dir.join("_chunk-000003.json")).unwrap();
    std::fs::remove_file(dir.join("_chunk-000004.json")).unwrap();
    std::fs::remove_file(dir.join("chunk-000004.parquet")).unwrap();
    std::fs::write(dir.join(".chunk-000004.parquet.tmp-99999"), b"half a file").unwrap();
    std::fs::write(dir.join("_chunk-000001.json"), b"{ not json").unwrap();
    let report = verify(&out).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.missing, [4]);
    assert_eq!(report.uncommitted, [3]);
    let bad: Vec<Option<u64>> = report.problems.iter().map(|p| p.chunk).collect();
    assert_eq!(bad, [Some(1), Some(2)], "{:?}", report.problems);
    assert!(report.problems[1].to_string().contains("SHA-256"), "{}", report.problems[1]);
    assert!(report.problems[1].to_string().contains("chunk-000002.parquet"));
    let e = merge(&out, None).unwrap_err().to_string();
    assert!(e.contains("4 chunk(s) missing or damaged"), "{e}");

    let (s, events) = run(p, &out, Shard::ALL).unwrap();
    let damaged: Vec<u64> = events
        .iter()
        .filter_map(|e| if let BatchEvent::Damaged { chunk, .. } = e { Some(*chunk) } else { None })
        .collect();
    assert_eq!(damaged, [1, 2]);
    assert_eq!((s.chunks_skipped, s.chunks_written, s.strays_removed), (1, 4, 1));
    assert_same_tree(reference(), &out);
    assert!(verify(&out).unwrap().is_ok());
}

#[test]
fn another_configuration_is_refused_in_the_same_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    copy_tree(reference(), &out);
    let mut other = tiny_config();
    other.samples = 3;
    let q = BatchPlan::prepare(&other).unwrap();
    assert_ne!(q.config_hash, plan().config_hash);
    let e = run(&q, &out, Shard::ALL).unwrap_err();
    assert!(matches!(e, BatchError::ForeignBatch { .. }), "{e}");
    assert!(e.to_string().contains(&q.config_hash));
}

#[test]
fn unwritable_output_is_a_clear_error_and_committed_chunks_stay() {
    let p = plan();
    let tmp = tempfile::tempdir().unwrap();
    // The output directory cannot be created: a file is in the way.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let e = run(p, &file.join("out"), Shard::ALL).unwrap_err().to_string();
    assert!(e.contains("creating the output directory") && e.contains("a-file"), "{e}");
    // A chunk cannot be put in place (a directory where it goes): the error names it, the
    // chunks before it are committed and verified, and nothing else is left behind.
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("twin=default/chunk-000002.parquet/blocker")).unwrap();
    let e = run(p, &out, Shard::ALL).unwrap_err().to_string();
    assert!(e.contains("chunk-000002.parquet"), "{e}");
    let r = verify(&out).unwrap();
    assert_eq!(r.chunks_ok, 2, "{r:?}");
    let hidden: Vec<String> = tree(&out).into_keys().filter(|k| k.contains("/.")).collect();
    assert!(hidden.is_empty(), "temporary files left: {hidden:?}");
    // Once the obstacle is gone, a rerun finishes the batch as if nothing happened.
    std::fs::remove_dir_all(out.join("twin=default/chunk-000002.parquet")).unwrap();
    let (s, _) = run(p, &out, Shard::ALL).unwrap();
    assert_eq!((s.chunks_skipped, s.chunks_written), (2, 3));
    assert_same_tree(reference(), &out);
}

#[test]
fn merge_writes_a_manifest_and_per_twin_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    copy_tree(reference(), &out);
    let merged = tmp.path().join("merged");
    let m = merge(&out, Some(&merged)).unwrap();
    let report = verify(&out).unwrap();
    assert!(report.is_ok(), "the manifest is no chunk: {report:?}");
    assert_eq!(m.rows, report.rows);
    assert_eq!(m.rollouts, 9 * 2);
    assert_eq!(m.files.len(), 5);
    assert_eq!(m.twins[0].rows, m.rows);
    assert_eq!(m.merged.len(), 1);
    assert_eq!(m.merged[0].rows, m.rows);
    let back: swm_batch::BatchManifest =
        serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(back, m);
}

#[test]
fn a_dry_run_rolls_out_everything_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("never");
    let opts = RunOptions { dry_run: true, ..RunOptions::default() };
    let s = run_batch(plan(), &out, opts, &mut |_| {}).unwrap();
    assert!(!out.exists());
    assert_eq!((s.chunks_written, s.rollouts_written), (5, 18));
    assert_eq!(s.rows_written, verify(reference()).unwrap().rows);
}

/// The GPU backend (lavapipe here and in CI) writes the same chunks, with the same rows
/// (scenario, sample, frame, agent) as the CPU and positions within the GPU engine's
/// tolerance while the same tokens are drawn (f32 states may flip a rare draw), and the
/// same bytes when run again.
#[test]
fn the_gpu_backend_follows_the_cpu_and_is_deterministic() {
    let mut c = tiny_config();
    c.backend = swm_batch::Backend::Gpu;
    let q = match BatchPlan::prepare(&c) {
        Ok(q) => q,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true but no GPU backend: {e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gpu");
    let (s, _) = run(&q, &out, Shard::ALL).unwrap();
    assert_eq!(s.chunks_written, 5);
    // (scenario, sample, frame, agent, x, y) of every row of every chunk.
    let rows = |dir: &Path| {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Float64Type, Int32Type, UInt32Type, UInt64Type};
        let mut v = Vec::new();
        for c in 0..5 {
            let file = std::fs::File::open(dir.join(format!("twin=default/chunk-{c:06}.parquet"))).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
            for b in reader {
                let b = b.unwrap();
                let col = |n: &str| b.column_by_name(n).unwrap().clone();
                let (sid, sample, frame, agent, x, y) =
                    (col("scenario_id"), col("sample"), col("frame"), col("agent_id"), col("x_m"), col("y_m"));
                for i in 0..b.num_rows() {
                    v.push((
                        (
                            sid.as_primitive::<UInt64Type>().value(i),
                            sample.as_primitive::<UInt32Type>().value(i),
                            frame.as_primitive::<Int32Type>().value(i),
                            agent.as_primitive::<UInt64Type>().value(i),
                        ),
                        x.as_primitive::<Float64Type>().value(i),
                        y.as_primitive::<Float64Type>().value(i),
                    ));
                }
            }
        }
        v
    };
    let (cpu, gpu) = (rows(reference()), rows(&out));
    assert_eq!(cpu.len(), gpu.len());
    let mut close = 0;
    for (a, b) in cpu.iter().zip(&gpu) {
        assert_eq!(a.0, b.0);
        close += ((a.1 - b.1).hypot(a.2 - b.2) < 1e-3) as usize;
    }
    eprintln!("GPU vs CPU: {close} of {} rows within 1 mm", cpu.len());
    assert!(close * 10 >= cpu.len() * 9, "{close} of {} rows within 1 mm", cpu.len());
    let again = tmp.path().join("gpu-again");
    run(&q, &again, Shard::ALL).unwrap();
    assert_same_tree(&out, &again);
}
