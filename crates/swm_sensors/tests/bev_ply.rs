//! BEV crops with agents, and point clouds through PLY files.

use swm_core::SourceRef;
use swm_sensors::bev::{AGENT_CLASS, BevClass};
use swm_sensors::ply::{read_ply, write_ply};
use swm_sensors::{AgentBox, BevConfig, LidarConfig, LidarScene, SensorPose, bev_crop};
use swm_twin::{Building, Polygon, Twin, TwinIndex};

fn twin_with_a_building() -> Twin {
    let mut twin = Twin::default();
    twin.meta.bbox_m = [-100.0, -100.0, 100.0, 100.0];
    twin.buildings.push(Building::flat(
        SourceRef::way(1),
        Polygon { exterior: vec![[10.0, -5.0], [20.0, -5.0], [20.0, 5.0], [10.0, 5.0]], holes: vec![] },
        0.0,
        12.0,
    ));
    twin
}

#[test]
fn bev_crop_paints_buildings_and_agents_in_the_robot_frame() {
    let twin = twin_with_a_building();
    let index = TwinIndex::new(&twin);
    let car =
        AgentBox { id: 9, base_center_enu: [0.0, 8.0, 0.0], yaw_rad: 0.0, length_m: 4.0, width_m: 2.0, height_m: 1.5 };
    let config = BevConfig { width_px: 80, height_px: 80, resolution_m: 0.5 };
    // The robot at the origin faces north: the building (east) is to its right, the car ahead.
    let crop = bev_crop(&index, [0.0, 0.0, 0.0], std::f64::consts::FRAC_PI_2, &config, &[car]).unwrap();
    let (w, h) = (config.width_px, config.height_px);
    // Ahead 8 m: column w/2 + 16, row h/2.
    let ahead = crop.raster.index(w / 2 + 16, h / 2).unwrap();
    assert_eq!(crop.classes[ahead], AGENT_CLASS);
    assert_eq!(crop.agent_id[ahead], Some(9));
    // 15 m to the right: row h/2 + 30.
    let right = crop.raster.index(w / 2, h / 2 + 30).unwrap();
    assert_eq!(crop.classes[right], BevClass::Building as u8);
    assert!(crop.occupied(w / 2, h / 2 + 30) && crop.occupied(w / 2 + 16, h / 2));
    assert!(!crop.occupied(w / 2, h / 2));
    let agent_px = crop.classes.iter().filter(|c| **c == AGENT_CLASS).count();
    assert!((agent_px as f64 - 8.0 / 0.25).abs() <= 8.0, "a 4 m × 2 m car covers about 32 pixels: {agent_px}");
    // Too large a crop is an error, not a panic.
    let huge = BevConfig { width_px: 100_000, height_px: 100_000, resolution_m: 0.1 };
    assert!(bev_crop(&index, [0.0; 3], 0.0, &huge, &[]).is_err());
}

#[test]
fn a_scan_survives_a_ply_round_trip() {
    let scene = LidarScene::from_twin(&twin_with_a_building());
    let scan = scene.scan(&LidarConfig::lidar_16(), &SensorPose::level([0.0, 0.0, 3.0], 0.0), &[], 4, 0).unwrap();
    assert!(scan.return_count() > 500);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.ply");
    write_ply(&path, &scan.points_enu, None).unwrap();
    assert_eq!(read_ply(&path).unwrap(), scan.points_enu);
}
