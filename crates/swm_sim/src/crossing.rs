//! Where the walk graph's crossings cut the lane graph: the shared geometry that vehicles
//! (who yield to pedestrians on crossings) and pedestrians (who cross when signals and gaps
//! allow) both need.

use std::collections::HashMap;
use swm_twin::{P2, Twin, WalkKind};

/// One place where a crossing cuts a lane.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LaneCut {
    pub lane: u32,
    /// Distance along the lane's centre line to the cut (m).
    pub s_m: f64,
    /// Distance along the crossing's polyline to the cut (m).
    pub t_m: f64,
}

/// For every crossing (walk edge of kind `Crossing`), the lanes it cuts; and for every lane,
/// the crossings on it.
#[derive(Clone, Debug, Default)]
pub struct CrossingMap {
    /// Walk edge index -> cuts, ordered by `t_m`.
    pub lanes_of_crossing: HashMap<u32, Vec<LaneCut>>,
    /// Lane index -> (s_m, walk edge index), ordered by `s_m`.
    pub crossings_of_lane: HashMap<u32, Vec<(f64, u32)>>,
}

fn seg_intersect(a: P2, b: P2, c: P2, d: P2) -> Option<(f64, f64)> {
    let r = [b[0] - a[0], b[1] - a[1]];
    let s = [d[0] - c[0], d[1] - c[1]];
    let den = r[0] * s[1] - r[1] * s[0];
    if den.abs() < 1e-12 {
        return None;
    }
    let q = [c[0] - a[0], c[1] - a[1]];
    let t = (q[0] * s[1] - q[1] * s[0]) / den;
    let u = (q[0] * r[1] - q[1] * r[0]) / den;
    ((0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&u)).then_some((t, u))
}

impl CrossingMap {
    pub fn new(twin: &Twin) -> Self {
        // Grid of lane segments (50 m cells).
        const CELL: f64 = 50.0;
        let key = |p: P2| ((p[0] / CELL).floor() as i64, (p[1] / CELL).floor() as i64);
        let mut grid: HashMap<(i64, i64), Vec<(u32, usize)>> = HashMap::new();
        for (li, lane) in twin.lanes.iter().enumerate() {
            for (k, w) in lane.centerline.windows(2).enumerate() {
                let (a, b) = (key([w[0][0], w[0][1]]), key([w[1][0], w[1][1]]));
                for x in a.0.min(b.0)..=a.0.max(b.0) {
                    for y in a.1.min(b.1)..=a.1.max(b.1) {
                        grid.entry((x, y)).or_default().push((li as u32, k));
                    }
                }
            }
        }
        let mut map = CrossingMap::default();
        for (ei, e) in twin.walk_edges.iter().enumerate() {
            if e.kind != WalkKind::Crossing {
                continue;
            }
            let mut cuts: Vec<LaneCut> = Vec::new();
            let mut t_acc = 0.0;
            for w in e.polyline.windows(2) {
                let (c, d) = ([w[0][0], w[0][1]], [w[1][0], w[1][1]]);
                let seg_len = ((d[0] - c[0]).powi(2) + (d[1] - c[1]).powi(2)).sqrt();
                let (kc, kd) = (key(c), key(d));
                let mut cands: Vec<(u32, usize)> = Vec::new();
                for x in kc.0.min(kd.0)..=kc.0.max(kd.0) {
                    for y in kc.1.min(kd.1)..=kc.1.max(kd.1) {
                        if let Some(v) = grid.get(&(x, y)) {
                            cands.extend_from_slice(v);
                        }
                    }
                }
                cands.sort_unstable();
                cands.dedup();
                for (li, k) in cands {
                    let cl = &twin.lanes[li as usize].centerline;
                    let (a, b) = ([cl[k][0], cl[k][1]], [cl[k + 1][0], cl[k + 1][1]]);
                    if let Some((t, u)) = seg_intersect(a, b, c, d) {
                        let s_before: f64 = cl[..=k]
                            .windows(2)
                            .map(|q| ((q[1][0] - q[0][0]).powi(2) + (q[1][1] - q[0][1]).powi(2)).sqrt())
                            .sum();
                        let seg = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
                        let cut = LaneCut { lane: li, s_m: s_before + t * seg, t_m: t_acc + u * seg_len };
                        if !cuts.iter().any(|x| x.lane == li) {
                            cuts.push(cut);
                        }
                    }
                }
                t_acc += seg_len;
            }
            cuts.sort_by(|a, b| a.t_m.total_cmp(&b.t_m).then(a.lane.cmp(&b.lane)));
            for c in &cuts {
                map.crossings_of_lane.entry(c.lane).or_default().push((c.s_m, ei as u32));
            }
            if !cuts.is_empty() {
                map.lanes_of_crossing.insert(ei as u32, cuts);
            }
        }
        for v in map.crossings_of_lane.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        map
    }
}
