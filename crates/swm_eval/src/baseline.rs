//! Baselines that make rollouts from a scenario's history alone, and the log replay.

use std::collections::BTreeMap;

use swm_dataset::Scenario;
use swm_sim::TrajectoryRecord;

use crate::ScenarioRollout;
use crate::features::DT_S;

/// Frame-0 and frame-(-1) records of every agent.
fn last_two(scn: &Scenario) -> BTreeMap<u64, (&TrajectoryRecord, Option<&TrajectoryRecord>)> {
    let mut m: BTreeMap<u64, (&TrajectoryRecord, Option<&TrajectoryRecord>)> = BTreeMap::new();
    for (f, r) in &scn.rows {
        if *f == 0 {
            m.entry(r.agent_id).or_insert((r, None)).0 = r;
        }
    }
    for (f, r) in &scn.rows {
        if *f == -1
            && let Some(e) = m.get_mut(&r.agent_id)
        {
            e.1 = Some(r);
        }
    }
    m
}

fn extrapolate(
    last: &BTreeMap<u64, (&TrajectoryRecord, Option<&TrajectoryRecord>)>,
    future_frames: u32,
    velocity: impl Fn(&TrajectoryRecord, Option<&TrajectoryRecord>) -> [f64; 3],
) -> Vec<(i32, TrajectoryRecord)> {
    let mut rows = Vec::with_capacity(last.len() * future_frames as usize);
    for f in 1..=future_frames as i32 {
        for (r0, r1) in last.values() {
            let v = velocity(r0, *r1);
            let step_per_frame = r1.map_or(1, |p| r0.step.saturating_sub(p.step).max(1));
            let t = f64::from(f) * DT_S;
            let mut r = (*r0).clone();
            r.x_m += v[0] * t;
            r.y_m += v[1] * t;
            r.z_m += v[2] * t;
            r.time_s += t;
            r.step = r0.step + step_per_frame * f as u32;
            r.speed_mps = v[0].hypot(v[1]);
            r.accel_mps2 = 0.0;
            rows.push((f, r));
        }
    }
    rows
}

/// Constant velocity from the last two history frames (frames -1 and 0; the frame-0 speed
/// along the heading when frame -1 is missing), for every agent present at frame 0. Heading,
/// size, lane and signal stay those of frame 0. Deterministic: the `samples` samples are
/// identical.
pub fn constant_velocity(scn: &Scenario, future_frames: u32, samples: u32) -> ScenarioRollout {
    let last = last_two(scn);
    let rows = extrapolate(&last, future_frames, |r0, r1| match r1 {
        Some(p) => [(r0.x_m - p.x_m) / DT_S, (r0.y_m - p.y_m) / DT_S, (r0.z_m - p.z_m) / DT_S],
        None => [r0.speed_mps * r0.heading_rad.cos(), r0.speed_mps * r0.heading_rad.sin(), 0.0],
    });
    ScenarioRollout { scenario_id: scn.scenario_id, samples: vec![rows; samples as usize] }
}

/// Every agent stays where it is at frame 0 (speed 0), for `samples` identical samples.
pub fn frozen(scn: &Scenario, future_frames: u32, samples: u32) -> ScenarioRollout {
    let rows = extrapolate(&last_two(scn), future_frames, |_, _| [0.0; 3]);
    ScenarioRollout { scenario_id: scn.scenario_id, samples: vec![rows; samples as usize] }
}

/// The logged future itself as `samples` identical samples (an upper bound for the
/// metrics; agents absent from the log at a frame are absent from the samples).
pub fn log_replay(scn: &Scenario, samples: u32) -> ScenarioRollout {
    let rows: Vec<(i32, TrajectoryRecord)> = scn.rows.iter().filter(|(f, _)| *f >= 1).cloned().collect();
    ScenarioRollout { scenario_id: scn.scenario_id, samples: vec![rows; samples as usize] }
}
