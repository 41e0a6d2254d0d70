//! Headless rendering on the GPU (Mesa's lavapipe in CI): the `swm-viewer` binary renders
//! the embedded default district and the real Yeouido twin to PNG; the tests check the
//! pixels. Skipped, with the reason printed, where no Vulkan driver is installed; under
//! `CI=true` that is a failure.
//!
//! The reference image `tests/reference/default-top.png` (the embedded default, top-down,
//! 160 × 120, no agents, buildings in the mask colour) is compared with a tolerance, since
//! drivers differ in the last bits. Regenerate it after an intended visual change with
//! `SWM_UPDATE_REFERENCE=1 cargo test -p swm_viewer --test render reference`.

use std::path::{Path, PathBuf};
use std::process::Command;

use image::RgbImage;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether the GPU tests can run; prints why not, and panics under CI.
fn gpu_or_skip(test: &str) -> bool {
    if swm_viewer::headless::vulkan_available() {
        return true;
    }
    let msg = format!("{test}: skipped: no Vulkan driver (install mesa-vulkan-drivers for lavapipe)");
    assert!(!in_ci(), "{msg} (CI=true)");
    println!("{msg}");
    false
}

fn runtime_dir() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("swm-viewer-xdg");
        let _ = std::fs::create_dir_all(&dir);
        // SAFETY: set before any thread of this test process reads the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

/// Runs the viewer binary headlessly; returns stdout.
fn viewer(args: &[&str]) -> String {
    runtime_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_swm-viewer"))
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run swm-viewer");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "swm-viewer {args:?} failed: {}\n{stdout}\n{stderr}", out.status);
    stdout
}

/// Renders one headless screenshot `name` of `width` x `height` pixels with the viewer's
/// further `args` into a new temporary folder; returns the folder (kept alive while the
/// picture is read), the picture's path and the viewer's stdout.
fn screenshot(name: &str, width: u32, height: u32, args: &[&str]) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    let (w, h) = (width.to_string(), height.to_string());
    let mut all = vec!["--screenshot", out.to_str().unwrap(), "--width", w.as_str(), "--height", h.as_str()];
    all.extend_from_slice(args);
    let stdout = viewer(&all);
    (dir, out, stdout)
}

fn load(path: &Path) -> RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
}

/// Pixels of the building mask colour (saturated red, lit or shaded).
fn is_building(p: &image::Rgb<u8>) -> bool {
    let [r, g, b] = p.0;
    r > 60 && (r as u32) > 2 * g as u32 + 20 && (r as u32) > 2 * b as u32 + 20
}

/// Pixels of highlighted agents (unlit magenta).
fn is_agent(p: &image::Rgb<u8>) -> bool {
    let [r, g, b] = p.0;
    r > 150 && b > 150 && g < 100
}

fn share(img: &RgbImage, f: impl Fn(&image::Rgb<u8>) -> bool) -> f64 {
    img.pixels().filter(|p| f(p)).count() as f64 / (img.width() * img.height()) as f64
}

/// Standard deviation of luminance: a blank (one-colour) frame has none.
fn luminance_std(img: &RgbImage) -> f64 {
    let l: Vec<f64> =
        img.pixels().map(|p| 0.2126 * p.0[0] as f64 + 0.7152 * p.0[1] as f64 + 0.0722 * p.0[2] as f64).collect();
    let m = l.iter().sum::<f64>() / l.len() as f64;
    (l.iter().map(|v| (v - m).powi(2)).sum::<f64>() / l.len() as f64).sqrt()
}

#[test]
fn default_district_renders_buildings_and_moving_agents() {
    if !gpu_or_skip("default_district_renders_buildings_and_moving_agents") {
        return;
    }
    // Nearly top-down over the district's centre, 250 m up: about 0.6 m per pixel.
    let (dir, out, stdout) = screenshot(
        "default.png",
        400,
        300,
        &[
            "--camera",
            "0,-20,250,0,0,0",
            "--colour",
            "mask",
            "--highlight-agents",
            "--density",
            "3",
            "--frames",
            "16",
            "--also-capture",
            "2",
            "--sim-per-frame",
            "0.3",
        ],
    );
    assert!(stdout.contains("wrote"), "{stdout}");
    let late = load(&out);
    let early = load(&dir.path().join("default.frame2.png"));
    assert_eq!((late.width(), late.height()), (400, 300));
    for img in [&early, &late] {
        assert!(luminance_std(img) > 10.0, "the frame is not blank");
    }
    let buildings = share(&late, is_building);
    assert!((0.03..0.7).contains(&buildings), "buildings cover {:.1} % of the frame", 100.0 * buildings);
    let (a0, a1) = (share(&early, is_agent), share(&late, is_agent));
    assert!(a0 > 0.0005 && a1 > 0.0005, "agents visible: {a0} {a1}");
    // 14 frames x 0.3 s = 4.2 s later the agents' pixels moved.
    let changed = early.pixels().zip(late.pixels()).filter(|(p, q)| is_agent(p) != is_agent(q)).count();
    let either = early.pixels().zip(late.pixels()).filter(|(p, q)| is_agent(p) || is_agent(q)).count();
    assert!(changed as f64 > 0.3 * either as f64, "agent masks changed in {changed} of {either} pixels");
}

#[test]
fn yeouido_renders_its_towers() {
    if !gpu_or_skip("yeouido_renders_its_towers") {
        return;
    }
    let Some(path) = swm_ingest::shared_data::require_shared_data("seoul/yeouido.osm.pbf") else { return };
    let opts = swm_ingest::IngestOptions { bbox_wgs84: Some([126.915, 37.515, 126.945, 37.535]), ..Default::default() };
    let (twin, _) = swm_ingest::ingest_paths(&[path], &opts).expect("ingest Yeouido");
    let dir = tempfile::tempdir().unwrap();
    let swt = dir.path().join("yeouido.swt");
    swm_twin::write_swt(&twin, &swt).expect("write twin");
    let out = dir.path().join("yeouido.png");
    viewer(&[
        swt.to_str().unwrap(),
        "--screenshot",
        out.to_str().unwrap(),
        "--width",
        "320",
        "--height",
        "240",
        "--camera",
        "top",
        "--colour",
        "mask",
        "--vehicles",
        "100",
        "--pedestrians",
        "50",
        "--preroll",
        "2",
        "--frames",
        "2",
    ]);
    let img = load(&out);
    assert!(luminance_std(&img) > 10.0, "the frame is not blank");
    let buildings = share(&img, is_building);
    // Yeouido's core is dense: towers cover a good part of the island seen from above.
    assert!((0.02..0.6).contains(&buildings), "buildings cover {:.1} % of the frame", 100.0 * buildings);
    // The Han River north-east of the island (the extract cuts its multipolygon; ingest closes
    // it along the extract's edge): about 12 % of this frame, none without it.
    let water = share(&img, is_water);
    assert!(water > 0.05, "water covers {:.1} % of the frame", 100.0 * water);
}

/// Pixels of water (blue-dominant).
fn is_water(p: &image::Rgb<u8>) -> bool {
    let [r, g, b] = p.0;
    b as u32 > r as u32 + 40 && b as u32 > g as u32 + 10
}

/// Centroid and count of the pixels matching `f`.
fn blob(img: &RgbImage, f: impl Fn(&image::Rgb<u8>) -> bool) -> (usize, [f64; 2]) {
    let (mut n, mut sx, mut sy) = (0usize, 0.0, 0.0);
    for (x, y, p) in img.enumerate_pixels() {
        if f(p) {
            n += 1;
            sx += x as f64;
            sy += y as f64;
        }
    }
    (n, if n > 0 { [sx / n as f64, sy / n as f64] } else { [f64::NAN; 2] })
}

#[test]
fn a_robot_its_chosen_plan_and_its_lidar_are_drawn() {
    if !gpu_or_skip("a_robot_its_chosen_plan_and_its_lidar_are_drawn") {
        return;
    }
    // A delivery robot on the default district's walk graph (both points snap to the nearest
    // walk node); the orbit camera frames it, 28 m away.
    let (_dir, out, stdout) = screenshot(
        "robot.png",
        320,
        240,
        &["--colour", "mask", "--robot", "19,25", "--robot-goal", "45,-45", "--lidar", "--frames", "8", "--stats"],
    );
    let stats = stdout.lines().find(|l| l.contains("robot_replans")).unwrap_or_else(|| panic!("no robot: {stdout}"));
    assert!(!stats.contains("\"robot_replans\": 0,"), "the robot planned: {stats}");
    // Frame statistics: every scene chunk is a draw of its own; agents, signals and the
    // robot share a few (mesh, material) pairs.
    let frame = stdout.lines().find(|l| l.contains("draw_batches")).unwrap_or_else(|| panic!("no stats: {stdout}"));
    let field = |name: &str| -> usize {
        let at = frame.find(&format!("\"{name}\": ")).unwrap_or_else(|| panic!("{name} in {frame}")) + name.len() + 4;
        frame[at..].split(|c: char| !c.is_ascii_digit()).next().and_then(|v| v.parse().ok()).expect(name)
    };
    let (chunks, entities, batches) = (field("scene_meshes"), field("mesh_entities"), field("draw_batches"));
    assert!(batches >= chunks && batches < chunks + 40 && batches < entities, "{frame}");
    let img = load(&out);
    let centre = [img.width() as f64 / 2.0, img.height() as f64 / 2.0];
    let near_centre = |c: [f64; 2], r: f64| (c[0] - centre[0]).hypot(c[1] - centre[1]) < r;
    // The chosen plan: unlit cyan, thick, from the robot on.
    let (plan_px, plan_at) = blob(&img, |p| p.0[0] < 90 && p.0[1] > 200 && p.0[2] > 200);
    assert!(plan_px >= 15, "{plan_px} pixels of the chosen plan");
    assert!(near_centre(plan_at, 50.0), "the plan is at the robot (centre of the view): {plan_at:?}");
    // The robot: its orange box at the centre of the view.
    let (robot_px, robot_at) = blob(&img, |p| {
        let [r, g, b] = p.0.map(i32::from);
        r > 200 && r - g > 45 && g - b > 30
    });
    assert!(robot_px >= 8, "{robot_px} pixels of the robot");
    assert!(near_centre(robot_at, 30.0), "the robot is framed: {robot_at:?}");
    // Lidar rays: translucent green fanning out from the robot to the walls.
    let rays =
        share(&img, |p| p.0[1] > 150 && p.0[1] as i32 > p.0[0] as i32 + 40 && p.0[1] as i32 > p.0[2] as i32 + 40);
    assert!(rays > 0.01, "lidar rays cover {:.2} % of the frame", 100.0 * rays);
}

fn reference_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference/default-top.png")
}

#[test]
fn a_drone_and_its_route_are_drawn_in_the_air() {
    if !gpu_or_skip("a_drone_and_its_route_are_drawn_in_the_air") {
        return;
    }
    // Across the default district; the orbit camera frames the drone at its start, 45 m away.
    let (_dir, out, stdout) = screenshot(
        "drone.png",
        320,
        180,
        &["--drone", "-300,-200", "--drone-goal", "300,250", "--frames", "6", "--stats"],
    );
    let stats = stdout.lines().find(|l| l.contains("drone_steps")).unwrap_or_else(|| panic!("no drone: {stdout}"));
    assert!(!stats.contains("\"drone_steps\": 0,"), "the drone flew: {stats}");
    assert!(stats.contains("\"drone_below_floor_m\": 0.00"), "above the airspace floor: {stats}");
    // The drone (emissive yellow, about 6 px across here) at the centre of the view, where
    // the camera was aimed at it, its route (a yellow line) leaving it.
    let img = load(&out);
    let (cx, cy) = (img.width() as i64 / 2, img.height() as i64 / 2);
    let yellow = img
        .enumerate_pixels()
        .filter(|(x, y, p)| {
            (*x as i64 - cx).abs() <= 12 && (*y as i64 - cy).abs() <= 12 && p[0] > 180 && p[1] > 160 && p[2] < 110
        })
        .count();
    assert!(yellow >= 4, "{yellow} yellow pixels at the centre");
}

#[test]
fn a_drone_outside_the_twin_is_refused_with_the_reason() {
    if !gpu_or_skip("a_drone_outside_the_twin_is_refused_with_the_reason") {
        return;
    }
    runtime_dir();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swm-viewer"))
        .args(["--screenshot", dir.path().join("d.png").to_str().unwrap(), "--width", "64", "--height", "48"])
        .args(["--frames", "2", "--drone", "99999,0", "--drone-goal", "0,0"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_LOG", "off")
        .output()
        .expect("run swm-viewer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "placed a drone 100 km away");
    assert!(stderr.contains("drone: the start (99999.0, 0.0) is outside the twin's airspace"), "{stderr}");
    assert!(!dir.path().join("d.png").exists(), "no picture without the drone");
}

#[test]
fn reference_image_of_the_default_district() {
    if !gpu_or_skip("reference_image_of_the_default_district") {
        return;
    }
    let (_dir, out, _) = screenshot(
        "ref.png",
        160,
        120,
        &[
            "--camera",
            "top",
            "--colour",
            "mask",
            "--vehicles",
            "0",
            "--pedestrians",
            "0",
            "--preroll",
            "0",
            "--frames",
            "2",
        ],
    );
    let img = load(&out);
    let reference = reference_path();
    if std::env::var_os("SWM_UPDATE_REFERENCE").is_some() {
        std::fs::create_dir_all(reference.parent().unwrap()).unwrap();
        std::fs::copy(&out, &reference).unwrap();
        println!("updated {}", reference.display());
        return;
    }
    let want = load(&reference);
    assert_eq!(img.dimensions(), want.dimensions());
    let diffs: Vec<u32> = img
        .pixels()
        .zip(want.pixels())
        .map(|(a, b)| (0..3).map(|k| (a.0[k] as i32 - b.0[k] as i32).unsigned_abs()).max().unwrap_or(0))
        .collect();
    let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
    let off = diffs.iter().filter(|&&d| d > 48).count() as f64 / diffs.len() as f64;
    assert!(
        mean < 6.0 && off < 0.02,
        "differs from {}: mean {mean:.2}, {:.2} % of pixels off by > 48",
        reference.display(),
        100.0 * off
    );
}
