//! Area geometry from OSM: closed ways and multipolygon relations assembled by the OSM
//! rules (<https://wiki.openstreetmap.org/wiki/Relation:multipolygon/Algorithm>): member
//! ways are joined end to end into closed rings whatever their roles; rings are nested by
//! containment (even depth: outer, odd depth: inner). Ways that do not close into rings
//! make the relation broken: a warning names it, and the rings that did close are kept.

use super::{Ctx, geom};
use crate::{Report, osm::Relation};
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
    let (rings, open) = join_rings(pieces);
    if open > 0 {
        report.warn(&subject, format!("broken multipolygon: {open} member way chain(s) do not close into rings"));
    }
    let polys = nest_rings(rings);
    if polys.is_empty() && open == 0 && missing.is_empty() {
        report.warn(&subject, "multipolygon has no valid outer ring");
    }
    polys
}

/// Joins polylines end to end into closed rings; returns the rings and how many chains
/// stayed open.
pub fn join_rings(pieces: Vec<Vec<P2>>) -> (Vec<Vec<P2>>, usize) {
    let mut used = vec![false; pieces.len()];
    let mut rings = Vec::new();
    let mut open = 0;
    for start in 0..pieces.len() {
        if used[start] {
            continue;
        }
        used[start] = true;
        let mut ring = pieces[start].clone();
        loop {
            if ring.len() >= 3 && key(ring[0]) == key(ring[ring.len() - 1]) {
                break;
            }
            let end = key(ring[ring.len() - 1]);
            let next = (0..pieces.len())
                .find(|&j| !used[j] && (key(pieces[j][0]) == end || key(pieces[j][pieces[j].len() - 1]) == end));
            match next {
                Some(j) => {
                    used[j] = true;
                    let mut p = pieces[j].clone();
                    if key(p[0]) != end {
                        p.reverse();
                    }
                    ring.extend_from_slice(&p[1..]);
                }
                None => break,
            }
        }
        if ring.len() >= 4 && key(ring[0]) == key(ring[ring.len() - 1]) {
            rings.push(ring);
        } else {
            open += 1;
        }
    }
    (rings, open)
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
        assert_eq!(open, 0);
        assert_eq!(rings.len(), 1);
        assert_eq!(rings[0].len(), 5);
    }

    #[test]
    fn open_chain_is_counted() {
        let (rings, open) = join_rings(vec![vec![[0.0, 0.0], [1.0, 0.0]], square(5.0, 5.0, 1.0)]);
        assert_eq!((rings.len(), open), (1, 1));
    }

    #[test]
    fn nesting_gives_holes_and_islands() {
        let polys = nest_rings(vec![square(2.0, 2.0, 6.0), square(0.0, 0.0, 10.0), square(4.0, 4.0, 2.0)]);
        assert_eq!(polys.len(), 2, "outer with hole, plus island inside the hole");
        let big = polys.iter().find(|p| p.area_m2() > 50.0).unwrap();
        assert_eq!(big.holes.len(), 1);
        assert!((big.area_m2() - 64.0).abs() < 1e-9);
    }
}
