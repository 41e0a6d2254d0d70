//! Per-world metric features: one "world" is the log or one sample, as a table of records
//! by agent and frame, with the logged history in front of the sampled future.

use swm_sim::{SignalState, TrajectoryRecord};

use crate::geometry::{AgentBox, wrap_angle};
use crate::road::RoadMap;

/// Seconds between frames.
pub const DT_S: f64 = 0.1;

/// WOSAC's time-to-collision constants (`interaction_features.py`).
pub const MAX_TTC_S: f64 = 5.0;
const MAX_HEADING_DIFF_RAD: f64 = 75.0 * std::f64::consts::PI / 180.0;
const MAX_HEADING_DIFF_SMALL_OVERLAP_RAD: f64 = 10.0 * std::f64::consts::PI / 180.0;
const SMALL_OVERLAP_M: f64 = 0.5;

/// Records by agent, then frame index (`frame + history`).
pub type World<'a> = Vec<Vec<Option<&'a TrajectoryRecord>>>;

/// The features of the evaluated agents in one world, over the future frames `1..=F`
/// (index `t - 1`). Undefined values are `NaN` (or `false`).
#[derive(Clone, Debug, Default)]
pub struct WorldFeatures {
    pub linear_speed: Vec<Vec<f64>>,
    pub linear_acceleration: Vec<Vec<f64>>,
    pub angular_speed: Vec<Vec<f64>>,
    pub angular_acceleration: Vec<Vec<f64>>,
    pub distance_to_nearest_object: Vec<Vec<f64>>,
    pub collision: Vec<Vec<bool>>,
    pub time_to_collision: Vec<Vec<f64>>,
    pub distance_to_road_edge: Vec<Vec<f64>>,
    pub offroad: Vec<Vec<bool>>,
    pub red_light: Vec<Vec<bool>>,
}

/// What the feature computation needs to know about the scenario.
pub struct Frame<'a> {
    pub history: usize,
    pub future: usize,
    /// Evaluated agents (ids).
    pub evaluated: &'a [usize],
    pub is_vehicle: &'a [bool],
    /// Distances to the nearest object are capped here (any value at or above the last
    /// histogram edge scores the same).
    pub distance_cap_m: f64,
}

fn central(v: &[f64], i: usize) -> f64 {
    if i == 0 || i + 1 >= v.len() { f64::NAN } else { (v[i + 1] - v[i - 1]) / 2.0 }
}

/// Agents whose recorded elevations differ by this much (m, half a level:
/// [`swm_twin::LEVEL_HEIGHT_M`]) are on different levels: neither the nearest object, nor a
/// collision, nor a time to collision of each other (WOSAC's plan-view boxes would call a car
/// on a bridge and one on the road under it a collision).
pub const OTHER_LEVEL_DZ_M: f64 = 0.5 * swm_twin::LEVEL_HEIGHT_M;

/// WOSAC's kinematic features of one trajectory (central differences; angles wrapped with
/// the doubled-step trick of `trajectory_features.py`).
fn kinematics(track: &[Option<&TrajectoryRecord>]) -> [Vec<f64>; 4] {
    let n = track.len();
    let get = |i: usize, f: fn(&TrajectoryRecord) -> f64| track[i].map_or(f64::NAN, f);
    let x: Vec<f64> = (0..n).map(|i| get(i, |r| r.x_m)).collect();
    let y: Vec<f64> = (0..n).map(|i| get(i, |r| r.y_m)).collect();
    let z: Vec<f64> = (0..n).map(|i| get(i, |r| r.z_m)).collect();
    let h: Vec<f64> = (0..n).map(|i| get(i, |r| r.heading_rad)).collect();
    let speed: Vec<f64> = (0..n)
        .map(|i| {
            let (dx, dy, dz) = (central(&x, i), central(&y, i), central(&z, i));
            (dx * dx + dy * dy + dz * dz).sqrt() / DT_S
        })
        .collect();
    let accel: Vec<f64> = (0..n).map(|i| central(&speed, i) / DT_S).collect();
    let dh_step: Vec<f64> = (0..n).map(|i| wrap_angle(central(&h, i) * 2.0) / 2.0).collect();
    let yaw_rate: Vec<f64> = dh_step.iter().map(|d| d / DT_S).collect();
    let yaw_acc: Vec<f64> = (0..n).map(|i| wrap_angle(central(&dh_step, i) * 2.0) / 2.0 / (DT_S * DT_S)).collect();
    [speed, accel, yaw_rate, yaw_acc]
}

/// Speed of an agent at every frame for time-to-collision: the central difference where
/// defined, else a one-sided difference, else the record's `speed_mps`.
fn ttc_speeds(track: &[Option<&TrajectoryRecord>]) -> Vec<f64> {
    let n = track.len();
    let dist = |a: &TrajectoryRecord, b: &TrajectoryRecord| (a.x_m - b.x_m).hypot(a.y_m - b.y_m);
    (0..n)
        .map(|i| {
            let Some(r) = track[i] else { return f64::NAN };
            let prev = i.checked_sub(1).and_then(|j| track[j]);
            let next = track.get(i + 1).copied().flatten();
            match (prev, next) {
                (Some(p), Some(q)) => dist(q, p) / (2.0 * DT_S),
                (Some(p), None) => dist(r, p) / DT_S,
                (None, Some(q)) => dist(q, r) / DT_S,
                (None, None) => r.speed_mps,
            }
        })
        .collect()
}

/// Time to collision of `ego` with the object it follows (WOSAC's definition).
fn time_to_collision(ego: &AgentBox, ego_speed: f64, others: &[(AgentBox, f64)]) -> f64 {
    let [f, l] = ego.axes();
    let mut best: Option<(f64, f64)> = None; // (longitudinal distance, speed)
    let reach = MAX_TTC_S * ego_speed.max(0.0);
    for (o, o_speed) in others {
        let d = [o.center[0] - ego.center[0], o.center[1] - ego.center[1]];
        let long = d[0] * f[0] + d[1] * f[1];
        // Cheap rejection: the object cannot be within `reach` ahead.
        if long + o.radius_m() < 0.0 || d[0].hypot(d[1]) - o.radius_m() - ego.radius_m() > reach {
            continue;
        }
        let lat = d[0] * l[0] + d[1] * l[1];
        let yaw_diff = wrap_angle(o.heading_rad - ego.heading_rad).abs();
        let (c, s) = (yaw_diff.cos().abs(), yaw_diff.sin().abs());
        let other_long = 0.5 * o.length_m * c + 0.5 * o.width_m * s;
        let other_lat = 0.5 * o.length_m * s + 0.5 * o.width_m * c;
        let long_distance = long - 0.5 * ego.length_m - other_long;
        let lat_overlap = lat.abs() - 0.5 * ego.width_m - other_lat;
        let following = long_distance > 0.0
            && yaw_diff <= MAX_HEADING_DIFF_RAD
            && lat_overlap < 0.0
            && (lat_overlap < -SMALL_OVERLAP_M || yaw_diff <= MAX_HEADING_DIFF_SMALL_OVERLAP_RAD);
        if following && best.is_none_or(|(bd, _)| long_distance < bd) {
            best = Some((long_distance, *o_speed));
        }
    }
    match best {
        Some((d, v)) if ego_speed - v > 0.0 => (d / (ego_speed - v)).min(MAX_TTC_S),
        _ => MAX_TTC_S,
    }
}

/// Whether the agent crossed a red stop line between frame indices `i - 1` and `i`: the
/// earlier record is on a lane with a stop line, its projection on that lane is before the
/// line and the later one's after it, and the signal is red (the later record's state while
/// it is still on that lane, else the earlier one's).
fn crossed_red(road: &RoadMap, prev: &TrajectoryRecord, cur: &TrajectoryRecord) -> bool {
    let Some(lane) = prev.lane else { return false };
    let Some(stop) = road.stop_s(lane) else { return false };
    let state = if cur.lane == Some(lane) { cur.signal } else { prev.signal };
    if state != Some(SignalState::Red) {
        return false;
    }
    let (Some(s0), Some(s1)) = (road.project(lane, [prev.x_m, prev.y_m]), road.project(lane, [cur.x_m, cur.y_m]))
    else {
        return false;
    };
    s0 < stop && s1 > stop
}

/// Computes every feature of the evaluated agents in `world`.
pub fn world_features(world: &World<'_>, fr: &Frame<'_>, road: &RoadMap) -> WorldFeatures {
    let (h, fut) = (fr.history, fr.future);
    let ne = fr.evaluated.len();
    let nan = || vec![vec![f64::NAN; fut]; ne];
    let no = || vec![vec![false; fut]; ne];
    let mut out = WorldFeatures {
        linear_speed: nan(),
        linear_acceleration: nan(),
        angular_speed: nan(),
        angular_acceleration: nan(),
        distance_to_nearest_object: nan(),
        collision: no(),
        time_to_collision: nan(),
        distance_to_road_edge: nan(),
        offroad: no(),
        red_light: no(),
    };
    for (e, &a) in fr.evaluated.iter().enumerate() {
        let [s, acc, w, wa] = kinematics(&world[a]);
        for t in 0..fut {
            let i = h + 1 + t;
            out.linear_speed[e][t] = s[i];
            out.linear_acceleration[e][t] = acc[i];
            out.angular_speed[e][t] = w[i];
            out.angular_acceleration[e][t] = wa[i];
        }
    }
    let speeds: Vec<Vec<f64>> = world.iter().map(|tr| ttc_speeds(tr)).collect();
    let mut present: Vec<(usize, AgentBox, f64, f64)> = Vec::new();
    let mut others: Vec<(AgentBox, f64)> = Vec::new();
    for t in 0..fut {
        let i = h + 1 + t;
        present.clear();
        present.extend(
            world
                .iter()
                .enumerate()
                .filter_map(|(a, tr)| tr[i].map(|r| (a, AgentBox::of_record(r), speeds[a][i], r.z_m))),
        );
        for (e, &a) in fr.evaluated.iter().enumerate() {
            let Some(rec) = world[a][i] else { continue };
            let ego = AgentBox::of_record(rec);
            // Distance to the nearest object (capped), collision.
            let mut best = fr.distance_cap_m;
            // Agents on another level (a bridge over the road) are not objects here.
            let same_level = |z: f64| (z - rec.z_m).abs() < OTHER_LEVEL_DZ_M;
            for (b, bx, _, z) in &present {
                if *b == a || !same_level(*z) {
                    continue;
                }
                let lower =
                    (bx.center[0] - ego.center[0]).hypot(bx.center[1] - ego.center[1]) - bx.radius_m() - ego.radius_m();
                if lower < best {
                    best = best.min(ego.signed_distance(bx));
                }
            }
            out.distance_to_nearest_object[e][t] = best;
            out.collision[e][t] = best < 0.0;
            if fr.is_vehicle[a] {
                others.clear();
                others.extend(
                    present.iter().filter(|(b, _, _, z)| *b != a && same_level(*z)).map(|(_, bx, v, _)| (*bx, *v)),
                );
                out.time_to_collision[e][t] = time_to_collision(&ego, speeds[a][i], &others);
                let d = road.box_distance(&ego);
                out.distance_to_road_edge[e][t] = d;
                out.offroad[e][t] = d > 0.0;
                if let Some(prev) = world[a][i - 1] {
                    out.red_light[e][t] = crossed_red(road, prev, rec);
                }
            }
        }
    }
    out
}

/// WOSAC's validity of central differences: both neighbours valid.
pub fn central_validity(valid: &[bool]) -> Vec<bool> {
    (0..valid.len()).map(|i| i > 0 && i + 1 < valid.len() && valid[i - 1] && valid[i + 1]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x: f64, y: f64, h: f64) -> AgentBox {
        AgentBox { center: [x, y], heading_rad: h, length_m: 4.0, width_m: 2.0 }
    }

    /// Two cars whose plan-view boxes overlap collide on one level and not when one is on
    /// a bridge over the other.
    #[test]
    fn agents_on_other_levels_do_not_collide() {
        let rec = |id: u64, x: f64, z: f64| TrajectoryRecord {
            agent_id: id,
            kind: swm_sim::AgentKind::Car,
            length_m: 4.5,
            width_m: 1.8,
            step: 0,
            time_s: 0.0,
            x_m: x,
            y_m: 0.0,
            z_m: z,
            heading_rad: 0.0,
            speed_mps: 5.0,
            accel_mps2: 0.0,
            lane: None,
            signal: None,
        };
        let road = RoadMap::new(&swm_twin::Twin::default(), 1.0).unwrap();
        let fr = Frame { history: 0, future: 1, evaluated: &[0, 1], is_vehicle: &[true, true], distance_cap_m: 100.0 };
        for (z_other, collide) in [(0.5, true), (swm_twin::LEVEL_HEIGHT_M, false)] {
            let (a, b) = (rec(0, 0.0, 0.0), rec(1, 2.0, z_other));
            let world: World<'_> = vec![vec![Some(&a), Some(&a)], vec![Some(&b), Some(&b)]];
            let f = world_features(&world, &fr, &road);
            assert_eq!(f.collision[0][0], collide, "other at z {z_other}");
            assert_eq!(f.collision[1][0], collide, "other at z {z_other}");
            assert_eq!(f.distance_to_nearest_object[0][0] < 100.0, collide, "other at z {z_other}");
        }
    }

    #[test]
    fn ttc_of_a_follower() {
        // 10 m gap between the boxes, closing at 5 m/s: 2 s.
        let ttc = time_to_collision(&bx(0.0, 0.0, 0.0), 10.0, &[(bx(14.0, 0.0, 0.0), 5.0)]);
        assert!((ttc - 2.0).abs() < 1e-12, "{ttc}");
        // Leader faster: no collision ahead.
        assert_eq!(time_to_collision(&bx(0.0, 0.0, 0.0), 10.0, &[(bx(14.0, 0.0, 0.0), 12.0)]), MAX_TTC_S);
        // Behind, beside (no lateral overlap) or opposite: ignored.
        for o in [bx(-14.0, 0.0, 0.0), bx(14.0, 3.5, 0.0), bx(14.0, 0.0, std::f64::consts::PI)] {
            assert_eq!(time_to_collision(&bx(0.0, 0.0, 0.0), 10.0, &[(o, 0.0)]), MAX_TTC_S);
        }
        // The nearer of two leaders counts.
        let ttc = time_to_collision(&bx(0.0, 0.0, 0.0), 10.0, &[(bx(30.0, 0.0, 0.0), 0.0), (bx(9.0, 0.5, 0.0), 0.0)]);
        assert!((ttc - 0.5).abs() < 1e-12, "{ttc}");
    }
}
