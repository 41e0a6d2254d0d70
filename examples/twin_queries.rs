//! Query a city twin the way a robot or a world model will: the nearest lane to a point,
//! buildings around it, a lidar-like fan of rays against buildings and terrain, and a
//! bird's-eye raster of semantic classes with the signed distance to the nearest building.
//!
//! ```sh
//! cargo run --release --example twin_queries                    # the embedded default district
//! cargo run --release --example twin_queries -- yeouido.swt     # any twin (from `swm ingest`)
//! ```
//!
//! It writes the BEV raster as `bev-classes.ppm` and `bev-distance.pgm` (open them with
//! any image viewer) in the current directory.

use anyhow::{Context, Result};
use std::io::Write;
use swm::twin::query::BevClass;
use swm::twin::{TwinIndex, query::HitTarget};

fn main() -> Result<()> {
    let twin = match std::env::args().nth(1) {
        Some(path) => swm::twin::read_swt(path.as_ref()).with_context(|| format!("loading {path}"))?,
        None => swm::procgen::build_district(&swm::procgen::DistrictParams::embedded_default())?.0,
    };
    let index = TwinIndex::new(&twin);
    let b = twin.meta.bbox_m;
    let centre = [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0];
    println!("twin {:?}: {} buildings, {} lanes", twin.meta.name, twin.buildings.len(), twin.lanes.len());

    if let Some(hit) = index.nearest_lane(centre) {
        let lane = &twin.lanes[hit.lane as usize];
        println!(
            "nearest lane to the centre: #{} ({} {}, {:.0} km/h), {:.1} m away, {:.1} m along it",
            hit.lane,
            lane.road_class.as_str(),
            lane.name.as_deref().unwrap_or("unnamed"),
            lane.speed_limit_mps * 3.6,
            hit.distance_m,
            hit.s_m
        );
        // Stand on that lane, 1.8 m above the road, and cast 36 horizontal rays.
        let eye = [hit.point[0], hit.point[1], hit.point[2] + 1.8];
        let mut hits = 0;
        let mut nearest = f64::INFINITY;
        for k in 0..36 {
            let a = k as f64 * std::f64::consts::TAU / 36.0;
            if let Some(r) = index.raycast(eye, [a.cos(), a.sin(), 0.0], 200.0)
                && matches!(r.target, HitTarget::Building(_) | HitTarget::BuildingPart(_))
            {
                hits += 1;
                nearest = nearest.min(r.t_m);
            }
        }
        println!("lidar fan from the lane: {hits}/36 rays hit a building within 200 m, nearest at {nearest:.1} m");
    }
    let around = index.buildings_within(centre, 150.0);
    let tallest = around.iter().map(|&i| &twin.buildings[i as usize]).max_by(|a, b| a.height_m.total_cmp(&b.height_m));
    println!(
        "{} buildings within 150 m; tallest {:.1} m ({})",
        around.len(),
        tallest.map(|b| b.height_m).unwrap_or(0.0),
        tallest.map(|b| b.height_source.as_str()).unwrap_or("-")
    );

    let bev = index.bev_raster(centre, 0.0, 256, 256, 0.5)?;
    let mut counts = [0usize; 9];
    for c in &bev.classes {
        counts[(*c as usize).min(8)] += 1;
    }
    println!("BEV 128 x 128 m at 0.5 m: class shares {:?}", {
        let n = bev.classes.len() as f64;
        (0..9u8)
            .filter_map(|c| {
                BevClass::from_u8(c).map(|k| format!("{} {:.0}%", k.as_str(), 100.0 * counts[c as usize] as f64 / n))
            })
            .collect::<Vec<_>>()
    });
    write_bev(&bev)?;
    println!("wrote bev-classes.ppm and bev-distance.pgm");
    Ok(())
}

/// Writes the raster as binary PPM (classes) and PGM (signed distance, 0-20 m to black-white).
fn write_bev(bev: &swm::twin::query::BevRaster) -> Result<()> {
    const RGB: [[u8; 3]; 9] = [
        [235, 230, 220], // ground
        [70, 70, 75],    // road
        [200, 190, 170], // sidewalk
        [250, 250, 250], // crossing
        [180, 80, 60],   // building
        [120, 170, 220], // water
        [130, 190, 110], // green
        [120, 110, 100], // rail
        [190, 190, 195], // parking
    ];
    let mut ppm = std::io::BufWriter::new(std::fs::File::create("bev-classes.ppm")?);
    write!(ppm, "P6\n{} {}\n255\n", bev.width, bev.height)?;
    for c in &bev.classes {
        ppm.write_all(&RGB[(*c as usize).min(8)])?;
    }
    let mut pgm = std::io::BufWriter::new(std::fs::File::create("bev-distance.pgm")?);
    write!(pgm, "P5\n{} {}\n255\n", bev.width, bev.height)?;
    for d in &bev.signed_distance_m {
        pgm.write_all(&[((d.clamp(0.0, 20.0) / 20.0) * 255.0) as u8])?;
    }
    Ok(())
}
