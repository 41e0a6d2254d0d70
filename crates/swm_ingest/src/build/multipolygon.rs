//! Area geometry from OSM: closed ways and multipolygon relations assembled by the OSM
//! rules (<https://wiki.openstreetmap.org/wiki/Relation:multipolygon/Algorithm>): member
//! ways are joined end to end into closed rings whatever their roles; rings are nested by
//! containment (even depth: outer, odd depth: inner). Ways that do not close into rings
//! make the relation broken: a warning names it, and the rings that did close are kept.
//!
//! Extracts cut large multipolygons (a river, a forest) at their edge: members entirely
//! outside the extract are missing, and the chains of the members that are there stay open.
//! Such a relation is closed along the data's box ([`super::data_box_m`]), the way coastline
//! tools close land polygons along the clip boundary, and keeps only its part inside the
//! box ([`close_along_box`]): every chain and ring is clipped to the box, so each clipped
//! piece has both ends on the box's boundary; walking round the boundary, the area and the
//! rest alternate at each piece end, so of the two ways to join consecutive ends by the
//! boundary the one whose area holds fewer buildings, roads and railways (no bridges or
//! tunnels: [`super::Ctx::land_evidence`]) is taken, the smaller area on a tie. A chain that
//! ends inside the box cannot be closed this way: the open chains are dropped, as before.

use super::{Ctx, geom};
use crate::{Report, osm::Relation};
use std::collections::HashMap;
use swm_core::{OsmType, SourceRef};
use swm_twin::{P2, Polygon};

/// Twin-frame coordinates of a way's nodes; `None` if any node is missing.
pub fn way_points(ctx: &Ctx, nodes: &[i64]) -> Option<Vec<P2>> {
    nodes.iter().map(|n| ctx.xy(*n)).collect()
}

/// The polygon of a closed way, `None` (with a warning) when it is not closed or degenerate.
pub fn closed_way_polygon(ctx: &Ctx, id: i64, nodes: &[i64], report: &mut Report) -> Option<Polygon> {
    let subject = ctx.data.source_ref(OsmType::Way, id).to_string();
    let Some(points) = way_points(ctx, nodes) else {
        report.warn(subject, "way references nodes missing from the input (cut by the extract?); skipped");
        return None;
    };
    if nodes.len() < 4 || nodes.first() != nodes.last() {
        report.warn(subject, "area way is not closed; skipped");
        return None;
    }
    let poly = geom::make_polygon(points, vec![]);
    if poly.is_none() {
        report.warn(subject, "area way is degenerate (no area); skipped");
    }
    poly
}

/// Key for joining ring pieces: the point quantised to a millimetre.
fn key(p: P2) -> (i64, i64) {
    ((p[0] * 1000.0).round() as i64, (p[1] * 1000.0).round() as i64)
}

/// Assembles a multipolygon relation into polygons (possibly several outers).
pub fn assemble(ctx: &Ctx, id: i64, rel: &Relation, report: &mut Report) -> Vec<Polygon> {
    assemble_roles(ctx, id, rel, None, report)
}

/// [`assemble`] using only the way members whose role is one of `roles` (all when `None`).
pub fn assemble_roles(ctx: &Ctx, id: i64, rel: &Relation, roles: Option<&[&str]>, report: &mut Report) -> Vec<Polygon> {
    let subject = ctx.data.source_ref(OsmType::Relation, id).to_string();
    let mut pieces: Vec<Vec<P2>> = Vec::new();
    let mut missing = Vec::new();
    let wanted = |role: &str| roles.is_none_or(|r| r.contains(&role));
    for m in rel.members.iter().filter(|m| m.ty == OsmType::Way && wanted(&m.role)) {
        let pts = match ctx.data.ways.get(&m.id) {
            Some(w) => way_points(ctx, &w.nodes),
            None => m.geometry.as_ref().map(|g| g.iter().map(|ll| ctx.project(*ll)).collect()),
        };
        match pts {
            Some(p) if p.len() >= 2 => pieces.push(p),
            _ => missing.push(SourceRef::way(m.id).to_string()),
        }
    }
    if !missing.is_empty() {
        report.warn(
            &subject,
            format!("multipolygon members missing from the input: {} (incomplete extract)", missing.join(", ")),
        );
    }
    let (mut rings, open) = join_rings(pieces);
    if !open.is_empty() {
        let n = open.len();
        let name = ["name", "name:en", "name:ko"]
            .iter()
            .find_map(|k| rel.tags.get(k))
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let closed = match ctx.data_box_m() {
            Some(b) if !missing.is_empty() => close_along_box(&rings, &open, b, ctx.land_evidence()),
            _ => None,
        };
        match closed {
            Some(r) => {
                rings = r;
                report.warn(
                    &subject,
                    format!(
                        "multipolygon {subject}{name} cut by the extract: {n} open member way chain(s) closed \
                         along the extract's edge; only its part inside the extract is kept"
                    ),
                );
            }
            None if !missing.is_empty() => report.warn(
                &subject,
                format!(
                    "broken multipolygon {subject}{name}: {n} member way chain(s) do not close into rings and \
                     cannot be closed along the extract's edge (a chain ends inside the data's area); dropped"
                ),
            ),
            None => report.warn(
                &subject,
                format!("broken multipolygon: {n} member way chain(s) do not close into rings; dropped"),
            ),
        }
    }
    let no_open = open.is_empty();
    let polys = nest_rings(rings);
    if polys.is_empty() && no_open && missing.is_empty() {
        report.warn(&subject, "multipolygon has no valid outer ring");
    }
    polys
}

/// Joins polylines end to end (at either end, in either direction) into closed rings;
/// returns the rings and the chains that stayed open (each as long as joining makes it).
pub fn join_rings(pieces: Vec<Vec<P2>>) -> (Vec<Vec<P2>>, Vec<Vec<P2>>) {
    let mut by_end: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    for (i, p) in pieces.iter().enumerate() {
        by_end.entry(key(p[0])).or_default().push(i);
        by_end.entry(key(p[p.len() - 1])).or_default().push(i);
    }
    let mut used = vec![false; pieces.len()];
    // The unused piece with the lowest index that ends at `k`.
    let next = |used: &[bool], k: (i64, i64)| by_end.get(&k).and_then(|v| v.iter().copied().find(|&j| !used[j]));
    let closed = |first: P2, last: P2, len: usize| len >= 4 && key(first) == key(last);
    let mut rings = Vec::new();
    let mut open = Vec::new();
    for start in 0..pieces.len() {
        if used[start] {
            continue;
        }
        used[start] = true;
        let mut ring = pieces[start].clone();
        // Forward from the end, then backward from the start (collected, then prepended).
        while !closed(ring[0], ring[ring.len() - 1], ring.len()) {
            let end = key(ring[ring.len() - 1]);
            let Some(j) = next(&used, end) else { break };
            used[j] = true;
            let mut p = pieces[j].clone();
            if key(p[0]) != end {
                p.reverse();
            }
            ring.extend_from_slice(&p[1..]);
        }
        let mut front: Vec<P2> = Vec::new();
        let mut first = ring[0];
        while !closed(first, ring[ring.len() - 1], ring.len() + front.len()) {
            let k = key(first);
            let Some(j) = next(&used, k) else { break };
            used[j] = true;
            let mut p = pieces[j].clone();
            if key(p[p.len() - 1]) != k {
                p.reverse();
            }
            // p ends where the chain starts: it goes before what is collected so far.
            p.pop();
            first = p[0];
            p.extend(front);
            front = p;
        }
        if !front.is_empty() {
            front.extend(ring);
            ring = front;
        }
        if closed(ring[0], ring[ring.len() - 1], ring.len()) {
            rings.push(ring);
        } else {
            open.push(ring);
        }
    }
    (rings, open)
}

/// How close to the data's box (m) an open chain's end counts as on it.
const BOX_TOL_M: f64 = 1e-3;

/// Closes a multipolygon cut by the extract along the data's box `b` (`[min_x, min_y,
/// max_x, max_y]`), keeping its part inside the box (see the module docs): returns the
/// closed rings (the complete rings inside the box, and the clipped chains and rings joined
/// by the box's boundary) for [`nest_rings`], or `None` when an open chain ends inside the
/// box. `land` holds points that are not in the area (see [`Ctx::land_evidence`]).
pub fn close_along_box(rings: &[Vec<P2>], open: &[Vec<P2>], b: [f64; 4], land: &[P2]) -> Option<Vec<Vec<P2>>> {
    let strictly_inside = |p: P2| {
        p[0] > b[0] + BOX_TOL_M && p[0] < b[2] - BOX_TOL_M && p[1] > b[1] + BOX_TOL_M && p[1] < b[3] - BOX_TOL_M
    };
    if open.iter().any(|c| strictly_inside(c[0]) || strictly_inside(c[c.len() - 1])) {
        return None;
    }
    let within = |p: P2| p[0] >= b[0] && p[0] <= b[2] && p[1] >= b[1] && p[1] <= b[3];
    let mut kept: Vec<Vec<P2>> = Vec::new();
    let mut pieces: Vec<Vec<P2>> = Vec::new();
    for r in rings {
        if r.iter().all(|p| within(*p)) {
            kept.push(r.clone());
        } else if let Some(out) = r.iter().position(|p| !within(*p)) {
            // Start the ring at a vertex outside, so that clipping it as a chain cuts it
            // only where it crosses the boundary.
            let mut chain: Vec<P2> = r[out..r.len() - 1].to_vec();
            chain.extend_from_slice(&r[..=out]);
            pieces.extend(clip_chain(&chain, b));
        }
    }
    for c in open {
        pieces.extend(clip_chain(c, b));
    }
    if pieces.is_empty() {
        // Nothing of the cut parts reaches into the box.
        return Some(kept);
    }
    // Land evidence inside the box, at most a few thousand points (evenly strided).
    let inside: Vec<P2> = land.iter().copied().filter(|p| within(*p)).collect();
    let stride = inside.len().div_ceil(4096).max(1);
    let evidence: Vec<P2> = inside.into_iter().step_by(stride).collect();
    let mut best: Option<(usize, f64, Vec<Vec<P2>>)> = None;
    for k in 0..2 {
        let closed = boundary_rings(&pieces, b, k);
        let area: f64 = closed.iter().map(|r| Polygon::ring_signed_area_m2(r).abs()).sum();
        let all: Vec<&Vec<P2>> = closed.iter().chain(&kept).collect();
        let land_inside =
            evidence.iter().filter(|p| all.iter().filter(|r| swm_twin::ring_contains(r, **p)).count() % 2 == 1).count();
        if best.as_ref().is_none_or(|(n, a, _)| land_inside < *n || (land_inside == *n && area < *a)) {
            best = Some((land_inside, area, closed));
        }
    }
    let (_, _, closed) = best?;
    kept.extend(closed);
    Some(kept)
}

/// The parts of a polyline inside the (closed) box `b`, each with its ends where the
/// polyline crosses the boundary (or ends); parts of a single point are left out.
pub fn clip_chain(chain: &[P2], b: [f64; 4]) -> Vec<Vec<P2>> {
    let mut out = Vec::new();
    let mut cur: Vec<P2> = Vec::new();
    let mut flush = |cur: &mut Vec<P2>| {
        geom::dedup(cur);
        if cur.len() >= 2 {
            out.push(std::mem::take(cur));
        }
        cur.clear();
    };
    for w in chain.windows(2) {
        let (a, c) = (w[0], w[1]);
        let Some((t0, t1)) = clip_segment(a, c, b) else {
            flush(&mut cur);
            continue;
        };
        let at = |t: f64| -> P2 {
            let p = [a[0] + t * (c[0] - a[0]), a[1] + t * (c[1] - a[1])];
            [p[0].clamp(b[0], b[2]), p[1].clamp(b[1], b[3])]
        };
        if t0 > 0.0 || cur.is_empty() {
            flush(&mut cur);
            cur.push(if t0 > 0.0 { at(t0) } else { a });
        }
        cur.push(if t1 < 1.0 { at(t1) } else { c });
        if t1 < 1.0 {
            flush(&mut cur);
        }
    }
    flush(&mut cur);
    out
}

/// Liang–Barsky: the parameter range `[t0, t1]` of the segment `a`–`c` inside the closed
/// box `b`, `None` when it misses the box.
fn clip_segment(a: P2, c: P2, b: [f64; 4]) -> Option<(f64, f64)> {
    let d = [c[0] - a[0], c[1] - a[1]];
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-d[0], a[0] - b[0]), (d[0], b[2] - a[0]), (-d[1], a[1] - b[1]), (d[1], b[3] - a[1])] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some((t0, t1))
}

/// Position of a point on (or next to) the box's boundary: metres along the boundary,
/// counter-clockwise from the south-west corner, measured on the nearest side.
fn perimeter_pos(p: P2, b: [f64; 4]) -> f64 {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let d = [p[1] - b[1], b[2] - p[0], b[3] - p[1], p[0] - b[0]];
    let side = (0..4).min_by(|i, j| d[*i].abs().total_cmp(&d[*j].abs())).unwrap_or(0);
    match side {
        0 => (p[0] - b[0]).clamp(0.0, w),
        1 => w + (p[1] - b[1]).clamp(0.0, h),
        2 => w + h + (b[2] - p[0]).clamp(0.0, w),
        _ => 2.0 * w + h + (b[3] - p[1]).clamp(0.0, h),
    }
}

/// The corners met going counter-clockwise along the boundary from `t_from` to `t_to`.
fn corners_ccw(t_from: f64, t_to: f64, b: [f64; 4]) -> Vec<P2> {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let corners = [(0.0, [b[0], b[1]]), (w, [b[2], b[1]]), (w + h, [b[2], b[3]]), (2.0 * w + h, [b[0], b[3]])];
    if t_from <= t_to {
        corners.iter().filter(|(t, _)| *t > t_from && *t < t_to).map(|(_, p)| *p).collect()
    } else {
        let after = corners.iter().filter(|(t, _)| *t > t_from);
        let before = corners.iter().filter(|(t, _)| *t < t_to);
        after.chain(before).map(|(_, p)| *p).collect()
    }
}

/// Closed rings of pieces whose ends lie on the box's boundary, joined by the boundary:
/// the ends sorted along the boundary are paired `(k, k+1), (k+2, k+3), ...` (wrapping),
/// each pair joined counter-clockwise. `k` is 0 or 1, the two ways that give non-crossing
/// rings; their areas are complementary within the box.
fn boundary_rings(pieces: &[Vec<P2>], b: [f64; 4], k: usize) -> Vec<Vec<P2>> {
    // (position along the boundary, piece, whether the piece's end (not start)).
    let mut ends: Vec<(f64, usize, bool)> = Vec::with_capacity(2 * pieces.len());
    for (i, p) in pieces.iter().enumerate() {
        ends.push((perimeter_pos(p[0], b), i, false));
        ends.push((perimeter_pos(p[p.len() - 1], b), i, true));
    }
    ends.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let m = ends.len();
    let mut slot = HashMap::new();
    for (s, e) in ends.iter().enumerate() {
        slot.insert((e.1, e.2), s);
    }
    // The slot paired with slot s, and whether the join runs counter-clockwise from s.
    let partner = |s: usize| -> (usize, bool) {
        if (s + m - k).is_multiple_of(2) { ((s + 1) % m, true) } else { ((s + m - 1) % m, false) }
    };
    let mut visited = vec![false; pieces.len()];
    let mut rings = Vec::new();
    for start in 0..pieces.len() {
        if visited[start] {
            continue;
        }
        let mut ring: Vec<P2> = Vec::new();
        let (mut cur, mut forward) = (start, true);
        for _ in 0..=pieces.len() {
            visited[cur] = true;
            let p = &pieces[cur];
            if forward {
                ring.extend_from_slice(p);
            } else {
                ring.extend(p.iter().rev());
            }
            let s = slot[&(cur, forward)];
            let (q, ccw) = partner(s);
            let corners = if ccw { corners_ccw(ends[s].0, ends[q].0, b) } else { corners_ccw(ends[q].0, ends[s].0, b) };
            if ccw {
                ring.extend(corners);
            } else {
                ring.extend(corners.into_iter().rev());
            }
            let (next, at_end) = (ends[q].1, ends[q].2);
            if next == start {
                break;
            }
            // Entering a piece at its start means walking it forward.
            (cur, forward) = (next, !at_end);
        }
        ring.push(ring[0]);
        rings.push(ring);
    }
    rings
}

/// Nests closed rings by containment into polygons.
pub fn nest_rings(rings: Vec<Vec<P2>>) -> Vec<Polygon> {
    let mut rings: Vec<(f64, Vec<P2>)> =
        rings.into_iter().map(|r| (Polygon::ring_signed_area_m2(&r).abs(), r)).filter(|(a, _)| *a > 1e-4).collect();
    // Largest first, ties by first vertex for determinism.
    rings.sort_by(|a, b| {
        b.0.total_cmp(&a.0).then(a.1[0][0].total_cmp(&b.1[0][0])).then(a.1[0][1].total_cmp(&b.1[0][1]))
    });
    let n = rings.len();
    let inside = |inner: &[P2], outer: &[P2]| -> bool {
        let hits = inner.iter().filter(|p| swm_twin::ring_contains(outer, **p)).count();
        hits * 2 > inner.len()
    };
    let mut parent = vec![None; n];
    let mut depth = vec![0usize; n];
    for i in 0..n {
        // The smallest larger ring containing ring i is its parent.
        for j in (0..i).rev() {
            if inside(&rings[i].1, &rings[j].1) {
                parent[i] = Some(j);
                depth[i] = depth[j] + 1;
                break;
            }
        }
    }
    let mut polys: Vec<(usize, Vec<Vec<P2>>)> = Vec::new();
    let mut poly_of = vec![usize::MAX; n];
    for i in 0..n {
        if depth[i].is_multiple_of(2) {
            poly_of[i] = polys.len();
            polys.push((i, Vec::new()));
        } else if let Some(p) = parent[i] {
            polys[poly_of[p]].1.push(rings[i].1.clone());
        }
    }
    polys.into_iter().filter_map(|(i, holes)| geom::make_polygon(rings[i].1.clone(), holes)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: f64, y0: f64, s: f64) -> Vec<P2> {
        vec![[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s], [x0, y0]]
    }

    #[test]
    fn joins_split_ring_in_any_direction() {
        let a = vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]];
        let mut b = vec![[10.0, 10.0], [0.0, 10.0], [0.0, 0.0]];
        b.reverse();
        let (rings, open) = join_rings(vec![a, b]);
        assert!(open.is_empty());
        assert_eq!(rings.len(), 1);
        assert_eq!(rings[0].len(), 5);
    }

    #[test]
    fn open_chain_is_counted() {
        let (rings, open) = join_rings(vec![vec![[0.0, 0.0], [1.0, 0.0]], square(5.0, 5.0, 1.0)]);
        assert_eq!((rings.len(), open.len()), (1, 1));
    }

    #[test]
    fn nesting_gives_holes_and_islands() {
        let polys = nest_rings(vec![square(2.0, 2.0, 6.0), square(0.0, 0.0, 10.0), square(4.0, 4.0, 2.0)]);
        assert_eq!(polys.len(), 2, "outer with hole, plus island inside the hole");
        let big = polys.iter().find(|p| p.area_m2() > 50.0).unwrap();
        assert_eq!(big.holes.len(), 1);
        assert!((big.area_m2() - 64.0).abs() < 1e-9);
    }

    fn total_area(rings: Vec<Vec<P2>>) -> (usize, usize, f64) {
        let polys = nest_rings(rings);
        let holes = polys.iter().map(|p| p.holes.len()).sum();
        (polys.len(), holes, polys.iter().map(|p| p.area_m2()).sum())
    }

    const BOX: [f64; 4] = [0.0, 0.0, 100.0, 100.0];

    #[test]
    fn join_extends_chains_at_both_ends() {
        let middle = vec![[10.0, 0.0], [20.0, 0.0]];
        let first = vec![[10.0, 0.0], [0.0, 0.0]];
        let last = vec![[30.0, 0.0], [20.0, 0.0]];
        let (rings, open) = join_rings(vec![middle, first, last]);
        assert!(rings.is_empty());
        assert_eq!(open, vec![vec![[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0]]]);
    }

    #[test]
    fn river_band_crossing_the_box_closes_between_its_banks() {
        // Two banks from the west edge to the east edge (running on beyond the box, where
        // the extract lost the members that close the river), drawn in opposite directions.
        let north = vec![[-20.0, 60.0], [0.0, 60.0], [50.0, 65.0], [100.0, 60.0], [120.0, 60.0]];
        let south = vec![[130.0, 40.0], [100.0, 40.0], [50.0, 35.0], [0.0, 40.0], [-10.0, 40.0]];
        // Between the banks: 100 m x 20 m plus two triangles of 250 m2.
        let houses = [[50.0, 90.0], [50.0, 10.0], [10.0, 95.0]];
        for land in [&houses[..], &[]] {
            let (rings, open) = join_rings(vec![north.clone(), south.clone()]);
            assert_eq!((rings.len(), open.len()), (0, 2));
            let closed = close_along_box(&rings, &open, BOX, land).expect("closes");
            let (polys, holes, area) = total_area(closed);
            assert_eq!((polys, holes), (1, 0));
            assert!((area - 2500.0).abs() < 1e-9, "{area}");
        }
        // An island (a complete inner ring) in the river becomes a hole.
        let island = vec![[40.0, 45.0], [60.0, 45.0], [60.0, 55.0], [40.0, 55.0], [40.0, 45.0]];
        let (rings, open) = join_rings(vec![north, island, south]);
        let (polys, holes, area) = total_area(close_along_box(&rings, &open, BOX, &houses).unwrap());
        assert_eq!((polys, holes), (1, 1));
        assert!((area - 2300.0).abs() < 1e-9, "{area}");
    }

    #[test]
    fn lake_cut_by_one_edge_is_closed_along_it() {
        let small = vec![[130.0, 30.0], [60.0, 30.0], [60.0, 70.0], [130.0, 70.0]];
        let (_, _, area) = total_area(close_along_box(&[], &[small], BOX, &[[20.0, 50.0]]).unwrap());
        assert!((area - 1600.0).abs() < 1e-9, "{area}");
        // A lake covering most of the box: the smaller side would be the land strip, the
        // houses on it say which side is water.
        let big = vec![[130.0, 10.0], [10.0, 10.0], [10.0, 90.0], [130.0, 90.0]];
        let (_, _, area) = total_area(close_along_box(&[], std::slice::from_ref(&big), BOX, &[]).unwrap());
        assert!((area - 2800.0).abs() < 1e-9, "no evidence: the smaller side ({area})");
        let (polys, _, area) = total_area(close_along_box(&[], &[big], BOX, &[[5.0, 50.0], [50.0, 95.0]]).unwrap());
        assert_eq!(polys, 1);
        assert!((area - 7200.0).abs() < 1e-9, "{area}");
    }

    #[test]
    fn chains_that_do_not_reach_the_boundary_are_still_dropped() {
        let dangling = vec![[130.0, 30.0], [60.0, 30.0], [60.0, 70.0]];
        assert!(close_along_box(&[], &[dangling], BOX, &[]).is_none());
        // Chains wholly outside the box leave nothing, and complete rings inside stay.
        let outside = vec![[130.0, 30.0], [160.0, 30.0], [160.0, 70.0], [130.0, 70.0]];
        let pond = square(10.0, 10.0, 5.0);
        let closed = close_along_box(std::slice::from_ref(&pond), &[outside], BOX, &[]).unwrap();
        assert_eq!(closed, vec![pond]);
    }

    #[test]
    fn clipping_a_chain_gives_pieces_ending_on_the_boundary() {
        let zigzag = vec![[-10.0, 50.0], [50.0, 50.0], [50.0, 150.0], [60.0, 150.0], [60.0, 50.0], [110.0, 50.0]];
        let pieces = clip_chain(&zigzag, BOX);
        assert_eq!(
            pieces,
            vec![vec![[0.0, 50.0], [50.0, 50.0], [50.0, 100.0]], vec![[60.0, 100.0], [60.0, 50.0], [100.0, 50.0]]]
        );
    }

    #[test]
    fn a_river_cut_by_the_extract_is_closed_along_the_data_box() {
        use crate::osm::{Member, Node, OsmData, Tags, Way};
        use swm_core::LatLon;
        let tags = |kv: &[(&str, &str)]| -> Tags { kv.iter().copied().collect() };
        let mut d = OsmData::new();
        let mut node = |id: i64, lat: f64, lon: f64, t: Tags| {
            d.nodes.insert(id, Node { pos: LatLon::new(lat, lon), tags: t });
        };
        // Benches (nodes of no way) mark the extract's area: lat 37.500-37.502, lon 127.000-127.002.
        for (i, (lat, lon)) in
            [(37.5, 127.0), (37.502, 127.002), (37.5, 127.002), (37.502, 127.0)].into_iter().enumerate()
        {
            node(100 + i as i64, lat, lon, tags(&[("amenity", "bench")]));
        }
        // The banks run on beyond the area; the members closing the river are not in the input.
        node(1, 37.501, 126.999, Tags::new());
        node(2, 37.501, 127.003, Tags::new());
        node(3, 37.5005, 127.003, Tags::new());
        node(4, 37.5005, 126.999, Tags::new());
        // A house on the south bank.
        for (i, (lat, lon)) in
            [(37.5002, 127.0005), (37.5002, 127.0006), (37.5003, 127.0006), (37.5003, 127.0005)].into_iter().enumerate()
        {
            node(20 + i as i64, lat, lon, Tags::new());
        }
        d.ways.insert(10, Way { nodes: vec![1, 2], tags: Tags::new() });
        d.ways.insert(11, Way { nodes: vec![3, 4], tags: Tags::new() });
        d.ways.insert(30, Way { nodes: vec![20, 21, 22, 23, 20], tags: tags(&[("building", "yes")]) });
        let member = |id: i64| Member { ty: OsmType::Way, id, role: "outer".into(), geometry: None };
        d.relations.insert(
            7,
            Relation {
                members: vec![member(10), member(12), member(11), member(13)],
                tags: tags(&[("type", "multipolygon"), ("natural", "water"), ("name", "Test River")]),
            },
        );
        let mut report = Report::default();
        let twin = crate::build_twin(&d, &[], &crate::BuildOptions::default(), &mut report).unwrap();
        let water: Vec<&Polygon> = twin
            .land_cover
            .iter()
            .filter(|l| l.source.to_string() == "relation/7")
            .filter_map(|l| match &l.geometry {
                swm_twin::LandGeometry::Area(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(water.len(), 1, "{:?}", report.warnings);
        let f = twin.meta.frame();
        let sw = f.enu_from_wgs84(LatLon::new(37.5005, 127.0));
        let ne = f.enu_from_wgs84(LatLon::new(37.501, 127.002));
        let expected = (ne[0] - sw[0]) * (ne[1] - sw[1]);
        assert!((water[0].area_m2() / expected - 1.0).abs() < 0.005, "{} vs {expected}", water[0].area_m2());
        let messages: Vec<&str> = report.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.contains("way/12, way/13 (incomplete extract)")), "{messages:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("relation/7 (Test River)") && m.contains("closed along the extract's edge")),
            "{messages:?}"
        );
    }

    /// Whether two segments intersect other than at a shared end.
    fn segments_cross(a: P2, b: P2, c: P2, d: P2) -> bool {
        let orient = |p: P2, q: P2, r: P2| (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]);
        let (d1, d2, d3, d4) = (orient(c, d, a), orient(c, d, b), orient(a, b, c), orient(a, b, d));
        d1 * d2 < 0.0 && d3 * d4 < 0.0
    }

    fn is_simple(ring: &[P2]) -> bool {
        let n = ring.len();
        (0..n).all(|i| {
            (i + 2..n).all(|j| {
                (i == 0 && j == n - 1) || !segments_cross(ring[i], ring[(i + 1) % n], ring[j], ring[(j + 1) % n])
            })
        })
    }

    fn convex_hull(mut pts: Vec<P2>) -> Vec<P2> {
        pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
        let cross = |o: P2, a: P2, b: P2| (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
        let mut hull: Vec<P2> = Vec::new();
        for pass in 0..2 {
            let start = hull.len();
            let iter: Box<dyn Iterator<Item = &P2>> =
                if pass == 0 { Box::new(pts.iter()) } else { Box::new(pts.iter().rev()) };
            for &p in iter {
                while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
                    hull.pop();
                }
                hull.push(p);
            }
            hull.pop();
        }
        hull // counter-clockwise, not closed
    }

    /// Sutherland–Hodgman: a convex polygon (CCW, not closed) clipped to a box.
    fn clip_convex(poly: &[P2], b: [f64; 4]) -> Vec<P2> {
        let mut out = poly.to_vec();
        let sides: [(usize, f64, bool); 4] = [(0, b[0], true), (0, b[2], false), (1, b[1], true), (1, b[3], false)];
        for (axis, v, keep_above) in sides {
            let inside = |p: &P2| if keep_above { p[axis] >= v } else { p[axis] <= v };
            let input = std::mem::take(&mut out);
            for i in 0..input.len() {
                let (p, q) = (input[i], input[(i + 1) % input.len()]);
                if inside(&p) {
                    out.push(p);
                }
                if inside(&p) != inside(&q) {
                    let t = (v - p[axis]) / (q[axis] - p[axis]);
                    out.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
                }
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// A convex area whose members outside a box are missing from the extract, closed
        /// along the box, is the area inside the box.
        #[test]
        fn closing_a_clipped_convex_polygon_gives_its_part_in_the_box(
            pts in proptest::collection::vec((-100.0f64..100.0, -100.0f64..100.0), 3..12),
            x0 in -100.0f64..80.0, y0 in -100.0f64..80.0, w in 5.0f64..150.0, h in 5.0f64..150.0,
            flips in proptest::collection::vec(proptest::bool::ANY, 12),
            rotate in 0usize..12,
        ) {
            let hull = convex_hull(pts.into_iter().map(|(x, y)| [x, y]).collect());
            proptest::prop_assume!(hull.len() >= 3 && Polygon::ring_signed_area_m2(&hull) > 1.0);
            let b = [x0, y0, x0 + w, y0 + h];
            let n = hull.len();
            let hull: Vec<P2> = (0..n).map(|i| hull[(i + rotate) % n]).collect();
            // Edges that miss the box are the members the extract lost.
            let lost: Vec<bool> = (0..n).map(|i| clip_segment(hull[i], hull[(i + 1) % n], b).is_none()).collect();
            let mut members: Vec<Vec<P2>> = Vec::new();
            match lost.iter().position(|l| *l) {
                None => {
                    let mut ring = hull.clone();
                    ring.push(hull[0]);
                    members.push(ring);
                }
                Some(first) => {
                    let mut cur: Vec<P2> = Vec::new();
                    for step in 1..=n {
                        let i = (first + step) % n;
                        if lost[i] {
                            if cur.len() >= 2 {
                                members.push(std::mem::take(&mut cur));
                            }
                            cur.clear();
                        } else {
                            if cur.is_empty() {
                                cur.push(hull[i]);
                            }
                            cur.push(hull[(i + 1) % n]);
                        }
                    }
                }
            }
            for (m, flip) in members.iter_mut().zip(&flips) {
                if *flip {
                    m.reverse();
                }
            }
            // Houses: a grid over the box, those outside the area.
            let hull_contains = |p: P2| (0..n).all(|i| {
                let (a, c) = (hull[i], hull[(i + 1) % n]);
                (c[0] - a[0]) * (p[1] - a[1]) - (c[1] - a[1]) * (p[0] - a[0]) > 1e-9
            });
            let land: Vec<P2> = (0..15 * 15)
                .map(|k| [b[0] + w * ((k % 15) as f64 + 0.5) / 15.0, b[1] + h * ((k / 15) as f64 + 0.5) / 15.0])
                .filter(|p| !hull_contains(*p))
                .collect();
            proptest::prop_assume!(!land.is_empty());
            let expected = Polygon::ring_signed_area_m2(&clip_convex(&hull, b)).abs();
            let (rings, open) = join_rings(members);
            let closed = close_along_box(&rings, &open, b, &land).expect("every chain ends outside the box");
            let polys = nest_rings(closed);
            let area: f64 = polys.iter().map(|p| p.area_m2()).sum();
            // Within the box tolerance along the boundary: an edge through a corner of the box
            // (to 1e-4 m) left a 5e-4 m² sliver out of a 5 m box.
            let tol = 1e-6 * expected + BOX_TOL_M * (w + h);
            proptest::prop_assert!((area - expected).abs() <= tol, "{area} vs {expected}");
            for p in &polys {
                proptest::prop_assert!(is_simple(&p.exterior), "self-intersecting {:?}", p.exterior);
            }
        }
    }
}
