//! Lidar ray-casting benchmark, the Rust half of `scripts/bench-lidar.sh`.
//!
//! Builds the static mesh of a twin (the Yeouido core from the shared data by default, or the
//! embedded default district with `--default-twin`), makes a batch of realistic lidar rays
//! (32-channel scans from street-level poses on a grid), times `LidarScene::cast_ray` on 1
//! and 2 threads, and writes the mesh, the rays and the distances as raw little-endian files
//! for `scripts/bench_lidar_open3d.py`, which times Open3D's `RaycastingScene` on the same
//! data and compares the distances.
//!
//! ```text
//! cargo run --release -p swm_sensors --example bench_lidar -- OUT_DIR [--default-twin]
//! ```
//!
//! Files in `OUT_DIR`: `vertices.f32` (n × 3), `triangles.u32` (m × 3), `rays.f32` (k × 6:
//! origin, unit direction), `swm_t.f32` (k distances, `inf` for a miss), `meta.json`. Every
//! coordinate is relative to `origin_m` (in `meta.json`), the centre of the mesh's bounding
//! box, so that `f32` keeps millimetres for both libraries.

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use swm_sensors::{LidarConfig, LidarScene, SensorPose};

/// Rays travel this far (m): effectively unbounded, as Open3D's rays are.
const MAX_M: f64 = 1.0e4;
/// Repetitions of each timing (the best is kept).
const REPEATS: usize = 3;

fn write_f32(path: &Path, values: impl Iterator<Item = f32>) -> Result<()> {
    let mut w =
        std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    for v in values {
        w.write_all(&v.to_le_bytes())?;
    }
    w.flush()?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.iter().find(|a| !a.starts_with("--")).map(PathBuf::from) else {
        bail!("usage: bench_lidar OUT_DIR [--default-twin]");
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let t0 = Instant::now();
    let (twin, twin_name) = if args.iter().any(|a| a == "--default-twin") {
        let (twin, _) = swm_procgen::build_district(&swm_procgen::DistrictParams::embedded_default())?;
        (twin, "embedded default district".to_string())
    } else {
        let Some(path) = swm_ingest::shared_data::require_shared_data("seoul/yeouido.osm.pbf") else {
            bail!(
                "the Yeouido extract is missing (see the message above); pass --default-twin to use the embedded district"
            );
        };
        let options =
            swm_ingest::IngestOptions { bbox_wgs84: Some([126.915, 37.515, 126.945, 37.535]), ..Default::default() };
        let (twin, _) = swm_ingest::ingest_paths(&[path], &options)?;
        (twin, "Yeouido core (seoul/yeouido.osm.pbf)".to_string())
    };
    eprintln!("twin: {twin_name}, {} buildings, loaded in {:.1} s", twin.buildings.len(), t0.elapsed().as_secs_f64());

    let t_build = Instant::now();
    let scene = LidarScene::from_twin(&twin);
    let build_s = t_build.elapsed().as_secs_f64();
    let mesh = scene.mesh();
    eprintln!(
        "mesh: {} triangles; BVH {} nodes, depth {}, built in {:.3} s",
        mesh.len(),
        scene.bvh().node_count(),
        scene.bvh().depth(),
        build_s
    );

    // The origin: the centre of the mesh's bounding box.
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for v in &mesh.vertices {
        for k in 0..3 {
            lo[k] = lo[k].min(v[k]);
            hi[k] = hi[k].max(v[k]);
        }
    }
    let origin = [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2])];

    // Rays: 32-channel scans from a 5 × 4 grid of street-level poses (1.15 million rays).
    let config = LidarConfig::lidar_32();
    let b = twin.meta.bbox_m;
    let mut rays: Vec<([f64; 3], [f64; 3])> = Vec::new();
    for j in 0..4 {
        for i in 0..5 {
            let x = b[0] + (b[2] - b[0]) * (0.2 + 0.15 * i as f64);
            let y = b[1] + (b[3] - b[1]) * (0.2 + 0.2 * j as f64);
            let o = [x, y, twin.terrain.elevation_at([x, y]) + 2.0];
            let pose = SensorPose::level(o, 0.3 * (i + j) as f64);
            let rot = pose.enu_from_sensor();
            for k in 0..config.beam_count() {
                let d = config.beam_direction_sensor(k);
                let de = [0, 1, 2].map(|r| rot[r][0] * d[0] + rot[r][1] * d[1] + rot[r][2] * d[2]);
                rays.push((o, de));
            }
        }
    }
    // Both libraries see the same f32 rays: round-trip them through f32 here too.
    let rays: Vec<([f64; 3], [f64; 3])> = rays
        .into_iter()
        .map(|(o, d)| {
            let o32 = [0, 1, 2].map(|k| (o[k] - origin[k]) as f32 as f64 + origin[k]);
            let d32 = d.map(|v| v as f32 as f64);
            (o32, d32)
        })
        .collect();
    eprintln!("rays: {}", rays.len());

    let mut results = Vec::new();
    let mut distances: Vec<f32> = Vec::new();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        let mut best = f64::INFINITY;
        for _ in 0..REPEATS {
            let t = Instant::now();
            let d: Vec<f32> = pool.install(|| {
                rays.par_iter()
                    .with_min_len(1024)
                    .map(|(o, dir)| scene.cast_ray(*o, *dir, MAX_M).map_or(f32::INFINITY, |h| h.t_m as f32))
                    .collect()
            });
            best = best.min(t.elapsed().as_secs_f64());
            distances = d;
        }
        let rate = rays.len() as f64 / best;
        eprintln!(
            "swm_sensors, {threads} thread(s): {:.3} s for {} rays = {:.2} M rays/s",
            best,
            rays.len(),
            rate / 1e6
        );
        results.push((threads, best, rate));
    }
    let hits = distances.iter().filter(|d| d.is_finite()).count();

    write_f32(
        &out.join("vertices.f32"),
        mesh.vertices.iter().flat_map(|v| [0, 1, 2].map(|k| (v[k] - origin[k]) as f32)),
    )?;
    {
        let path = out.join("triangles.u32");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for t in &mesh.triangles {
            for i in t {
                w.write_all(&i.to_le_bytes())?;
            }
        }
        w.flush()?;
    }
    write_f32(
        &out.join("rays.f32"),
        rays.iter().flat_map(|(o, d)| {
            [
                (o[0] - origin[0]) as f32,
                (o[1] - origin[1]) as f32,
                (o[2] - origin[2]) as f32,
                d[0] as f32,
                d[1] as f32,
                d[2] as f32,
            ]
        }),
    )?;
    write_f32(&out.join("swm_t.f32"), distances.iter().copied())?;
    let meta = serde_json::json!({
        "twin": twin_name,
        "origin_m": origin,
        "vertices": mesh.vertices.len(),
        "triangles": mesh.len(),
        "rays": rays.len(),
        "swm_hits": hits,
        "swm_build_s": build_s,
        "swm_threads": results.iter().map(|(t, s, r)| serde_json::json!({"threads": t, "seconds": s, "rays_per_s": r})).collect::<Vec<_>>(),
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
    });
    std::fs::write(out.join("meta.json"), serde_json::to_string_pretty(&meta)?)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
