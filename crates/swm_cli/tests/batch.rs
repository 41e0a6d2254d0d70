//! `swm batch` end to end: crashes at every commit stage (abort hook) and real SIGKILLs at
//! random times, then resume; thread counts; scheduler variables; verify and merge.
//!
//! The batch is tiny (a 700 m procedural district as a .swt file, 6 teacher scenarios in a
//! scenario directory, 2 samples, 20 frames, one scenario per chunk) and the model has
//! random weights, so every `swm batch` run takes about a second.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::s;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    reference: PathBuf,
}

/// The twin, scenarios, model and configuration, and one uninterrupted reference run.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let model = root.join("random.safetensors");
        swm_model::Network::init(swm_model::NetConfig::default(), 3).save(&model).unwrap();
        // A small procedural district (a small map is quick to prepare in a debug build) and
        // its teacher scenarios, made once through the library.
        let params = swm_procgen::DistrictParams {
            size_m: [700.0, 700.0],
            name: "small".to_string(),
            ..swm_procgen::DistrictParams::embedded_default()
        };
        let (twin, _) = swm_procgen::build_district(&params).unwrap();
        let swt = root.join("district.swt");
        swm_twin::file::write_swt(&twin, &swt).unwrap();
        let teacher = swm_batch::BatchConfig::from_toml_str(&format!(
            "seed = 9\noutput = \"x\"\nmodel = {model:?}\ntwins = [{swt:?}]\nscenarios_per_twin = 6\n\
             [teacher]\nvehicles = 30\npedestrians = 10\nwarmup_s = 6.0\nduration_s = 2.5\n"
        ))
        .unwrap();
        let plan = swm_batch::BatchPlan::prepare(&teacher).unwrap();
        let t = &plan.twins[0];
        assert_eq!(t.scenarios.len(), 6);
        let scen = root.join("scenarios");
        swm_dataset::write_scenarios(&scen, &t.scenarios, &Default::default(), 4, None).unwrap();
        let config = root.join("batch.toml");
        std::fs::write(
            &config,
            format!(
                "seed = 11\noutput = {:?}\nmodel = {model:?}\nsamples = 2\nhorizon = 20\nchunk_size = 1\n\
                 twins = [{{ path = {swt:?}, name = \"district\", scenarios = {scen:?}, signal_seed = {} }}]\n",
                root.join("unused").display().to_string(),
                t.signal_seed.unwrap()
            ),
        )
        .unwrap();
        let reference = root.join("reference");
        batch_ok(&config, &reference, &[]);
        Fixture { _dir: dir, root, config, reference }
    })
}

fn swm_batch_cmd(config: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_swm"));
    c.args(["batch", s(config), "-o", s(out), "--quiet"]).args(extra);
    // Scheduler variables of the environment running the tests must not leak in.
    for v in ["SWM_SHARD", "SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "SWM_BATCH_TEST_ABORT"] {
        c.env_remove(v);
    }
    c
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn batch_ok(config: &Path, out: &Path, extra: &[&str]) -> String {
    let o = swm_batch_cmd(config, out, extra).output().unwrap();
    assert!(o.status.success(), "swm batch failed: {}", text(&o));
    text(&o)
}

/// Every file under `dir` (relative path -> bytes).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_same_as_reference(out: &Path, what: &str) {
    let (a, b) = (tree(&fixture().reference), tree(out));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{what}: file sets differ");
    for (k, v) in &a {
        assert!(v == &b[k], "{what}: {k} differs from the uninterrupted run");
    }
}

/// A small deterministic generator for the test's random choices (seed printed on failure).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn test_seed() -> u64 {
    std::env::var("SWM_TEST_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261129)
}

#[test]
fn the_reference_run_is_complete_and_verifies() {
    let f = fixture();
    let files = tree(&f.reference);
    let chunks = files.keys().filter(|k| k.ends_with(".parquet")).count();
    assert_eq!(chunks, 6, "{:?}", files.keys().collect::<Vec<_>>());
    assert!(files.contains_key("twin=district/_chunk-000005.json"));
    assert!(files.contains_key("_batch.json"));
    let o = Command::new(env!("CARGO_BIN_EXE_swm")).args(["batch", "--verify", s(&f.reference)]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("6 of 6 chunks verified"), "{}", text(&o));
}

#[test]
fn aborts_at_random_commit_stages_then_resume_give_the_uninterrupted_bytes() {
    let f = fixture();
    let mut rng = Lcg(test_seed());
    let stages = swm_batch::CommitStage::ALL;
    let mut aborts = 0;
    for trial in 0..5 {
        let out = f.root.join(format!("abort-{trial}"));
        // Up to three crashes per trial, each at a random stage of a random chunk, then a
        // clean run; trial 4 runs as two shards.
        let shards: &[&str] = if trial == 4 { &["0/2", "1/2"] } else { &["0/1"] };
        for shard in shards {
            for _ in 0..3 {
                let stage = stages[rng.below(stages.len() as u64) as usize];
                let k = 1 + rng.below(3);
                let at = format!("{}:{k}", stage.name());
                let o = swm_batch_cmd(&f.config, &out, &["--shard", shard])
                    .env("SWM_BATCH_TEST_ABORT", &at)
                    .output()
                    .unwrap();
                if o.status.success() {
                    break; // Fewer than k chunks were left to write.
                }
                aborts += 1;
                assert!(o.status.code().is_none(), "{at}: expected an abort, got {:?}: {}", o.status, text(&o));
            }
            let log = batch_ok(&f.config, &out, &["--shard", shard]);
            assert!(!log.contains("is damaged"), "a crash is not damage: {log}");
        }
        assert_same_as_reference(&out, &format!("trial {trial} (seed {})", test_seed()));
    }
    assert!(aborts >= 8, "only {aborts} aborts happened");
}

#[test]
fn sigkill_at_random_times_then_resume_gives_the_uninterrupted_bytes() {
    let f = fixture();
    let mut rng = Lcg(test_seed() ^ 0x9E37);
    // How long an uninterrupted run takes here.
    let t = Instant::now();
    batch_ok(&f.config, &f.root.join("timing"), &[]);
    let full_ms = t.elapsed().as_millis() as u64;
    let out = f.root.join("sigkill");
    let mut killed = 0;
    for _ in 0..4 {
        let mut child = swm_batch_cmd(&f.config, &out, &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(full_ms.max(2))));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    batch_ok(&f.config, &out, &[]);
    assert_same_as_reference(&out, &format!("after {killed} SIGKILLs (seed {})", test_seed()));
}

#[test]
fn one_and_two_threads_write_the_same_bytes() {
    let f = fixture();
    let out = f.root.join("threads-1");
    batch_ok(&f.config, &out, &["--threads", "1"]);
    assert_same_as_reference(&out, "--threads 1");
    let out = f.root.join("threads-2");
    batch_ok(&f.config, &out, &["--threads", "2"]);
    assert_same_as_reference(&out, "--threads 2");
}

#[test]
fn shards_come_from_slurm_and_kubernetes_variables() {
    let f = fixture();
    let out = f.root.join("slurm");
    for id in 1..=3 {
        let o = swm_batch_cmd(&f.config, &out, &[])
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", "1")
            .env("SLURM_ARRAY_TASK_MAX", "3")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains(&format!("shard {}/3 (from SLURM_ARRAY_TASK_ID)", id - 1)), "{}", text(&o));
    }
    assert_same_as_reference(&out, "3 Slurm array tasks");
    let out = f.root.join("k8s");
    for i in 0..2 {
        let o = swm_batch_cmd(&f.config, &out, &[])
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .env("SWM_SHARDS", "2")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    assert_same_as_reference(&out, "2 Kubernetes indexed pods");
    // deploy/slurm/swm-batch.sbatch itself, as two array tasks (1-based: --array=1-2).
    let out = f.root.join("sbatch");
    let config = f.root.join("sbatch.toml");
    let text_cfg = std::fs::read_to_string(&f.config).unwrap();
    let unused = format!("{:?}", f.root.join("unused").display().to_string());
    std::fs::write(&config, text_cfg.replace(&unused, &format!("{:?}", out.display().to_string()))).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/slurm/swm-batch.sbatch");
    for id in ["1", "2"] {
        let o = Command::new("bash")
            .arg(&script)
            .arg(&config)
            .env("SWM", env!("CARGO_BIN_EXE_swm"))
            .env("SLURM_ARRAY_TASK_ID", id)
            .env("SLURM_ARRAY_TASK_MIN", "1")
            .env("SLURM_ARRAY_TASK_MAX", "2")
            .env("SLURM_CPUS_PER_TASK", "1")
            .env_remove("SWM_SHARD")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    assert_same_as_reference(&out, "deploy/slurm/swm-batch.sbatch as 2 array tasks");
    let o = swm_batch_cmd(&f.config, &f.root.join("k8s-bad"), &[]).env("JOB_COMPLETION_INDEX", "0").output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("SWM_SHARDS"), "{}", text(&o));
}

#[test]
fn verify_names_a_flipped_byte_and_a_rerun_repairs_it() {
    let f = fixture();
    let out = f.root.join("flip");
    batch_ok(&f.config, &out, &[]);
    let victim = out.join("twin=district/chunk-000003.parquet");
    let mut b = std::fs::read(&victim).unwrap();
    let i = b.len() / 2;
    b[i] ^= 1;
    std::fs::write(&victim, b).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_swm")).args(["batch", "--verify", s(&out)]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("chunk 3: SHA-256") && text(&o).contains("chunk-000003.parquet"), "{}", text(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_swm")).args(["batch", "--merge", s(&out)]).output().unwrap();
    assert!(!o.status.success(), "merge must refuse a damaged batch");
    let log = batch_ok(&f.config, &out, &[]);
    assert!(log.contains("chunk 3 is damaged"), "{log}");
    assert_same_as_reference(&out, "after repair");
    let o = Command::new(env!("CARGO_BIN_EXE_swm")).args(["batch", "--merge", s(&out)]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("_manifest.json").is_file());
}

#[test]
fn unwritable_output_is_a_clear_error_not_a_panic() {
    let f = fixture();
    let file = f.root.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let o = swm_batch_cmd(&f.config, &file.join("out"), &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("creating the output directory") && t.contains("not-a-dir"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    let o = Command::new(env!("CARGO_BIN_EXE_swm")).args(["batch", "--verify", s(&f.root)]).output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("not a batch output directory"), "{}", text(&o));
}

#[test]
fn a_full_disk_is_a_clear_error_and_committed_chunks_stay() {
    let f = fixture();
    // A tmpfs with room for about half of the batch (4 KiB pages per file).
    let pages: u64 = tree(&f.reference).values().map(|b| (b.len() as u64).div_ceil(4096)).sum();
    let mnt = f.root.join("full-disk");
    std::fs::create_dir_all(&mnt).unwrap();
    let size = format!("size={}k", pages / 2 * 4);
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs", s(&mnt)]).output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root and mount rights)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let out = mnt.join("out");
    let o = swm_batch_cmd(&f.config, &out, &[]).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("No space left on device") && t.contains(s(&out)), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    // What was committed verifies; nothing else (no temporary file) is left.
    let files = tree(&out);
    assert!(files.keys().all(|k| !k.contains("/.")), "temporary files left: {:?}", files.keys());
    let v = Command::new(env!("CARGO_BIN_EXE_swm")).args(["batch", "--verify", s(&out)]).output().unwrap();
    let vt = text(&v);
    assert!(!vt.contains("BAD"), "{vt}");
    assert!(vt.contains("MISSING"), "{vt}");
    let committed = files.keys().filter(|k| k.contains("/_chunk-")).count();
    assert!(committed >= 1, "{vt}");
    for (k, b) in &files {
        if k.ends_with(".parquet") && files.contains_key(&k.replace("chunk-", "_chunk-").replace(".parquet", ".json")) {
            assert!(&fixture_file(k) == b, "{k} differs from the reference");
        }
    }
}

fn fixture_file(rel: &str) -> Vec<u8> {
    std::fs::read(fixture().reference.join(rel)).unwrap()
}
