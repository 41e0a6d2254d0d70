//! Architecture invariants: the core, twin, ingestion, procedural and simulator crates never
//! pull in GPU, learning, windowing or dataset stacks, so they build fast and run anywhere;
//! bevy stays in the viewer, and the sensors and robot logs stay free of learning and GPUs.

use std::process::Command;

fn normal_deps(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none", "--format", "{p}", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree -p {package} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn core_twin_and_ingest_stay_light() {
    // GPU, learning and windowing stacks; and the dataset stack (arrow/parquet), which only
    // the dataset crate and above may pull in.
    const FORBIDDEN: [&str; 8] =
        ["bevy", "wgpu", "candle-core", "candle-nn", "winit", "naga", "parquet", "arrow-array"];
    for package in ["swm_core", "swm_twin", "swm_ingest", "swm_procgen", "swm_sim"] {
        let deps = normal_deps(package);
        assert!(deps.len() > 1, "cargo tree listed nothing for {package}");
        for d in &deps {
            assert!(!FORBIDDEN.iter().any(|f| d == f || d.starts_with(&format!("{f}_"))), "{package} depends on {d}");
        }
    }
}

#[test]
fn dependencies_point_down() {
    // swm_core depends on no other swm crate; swm_twin only on swm_core.
    let core = normal_deps("swm_core");
    assert!(core.iter().skip(1).all(|d| !d.starts_with("swm")), "{core:?}");
    let twin = normal_deps("swm_twin");
    assert!(twin.iter().skip(1).filter(|d| d.starts_with("swm")).all(|d| d == "swm_core"), "{twin:?}");
    let ingest = normal_deps("swm_ingest");
    assert!(!ingest.iter().any(|d| d == "swm_procgen" || d == "swm_cli"), "{ingest:?}");
}

#[test]
fn heavy_stacks_stay_in_the_crates_that_need_them() {
    // bevy (and its windowing) only in the viewer: the CLI, the robots and their sensors and
    // logs build without it; the sensors and logs need no learning or GPU stack either.
    for package in ["swm_cli", "swm_robots", "swm_sensors", "swm_record", "swm_batch"] {
        let deps = normal_deps(package);
        assert!(deps.len() > 1, "cargo tree listed nothing for {package}");
        for d in &deps {
            assert!(!(d == "bevy" || d.starts_with("bevy_") || d == "winit"), "{package} depends on {d}");
        }
    }
    for package in ["swm_sensors", "swm_record"] {
        for d in normal_deps(package) {
            assert!(
                !["wgpu", "candle-core", "candle-nn", "swm_model", "swm_sim"].contains(&d.as_str()),
                "{package} depends on {d}"
            );
        }
    }
    // swm_record depends on no other swm crate: any robot stack can log through it.
    let record = normal_deps("swm_record");
    assert!(record.iter().skip(1).all(|d| !d.starts_with("swm")), "{record:?}");
}
