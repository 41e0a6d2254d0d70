//! Land cover: water, parks and green areas, forests, rail, parking, plazas.
//!
//! Areas come from closed ways and multipolygons; rail tracks (not in tunnels) and
//! waterways without mapped banks are lines with a width.

use super::{Ctx, multipolygon};
use crate::Report;
use crate::osm::Tags;
use swm_core::OsmType;
use swm_twin::{LandCover, LandGeometry, LandKind, P2, Twin};

/// The land cover class of an area's tags.
pub fn area_kind(t: &Tags) -> Option<LandKind> {
    if t.has("building") || t.has("building:part") {
        return None;
    }
    if t.is("natural", "water")
        || t.has("water")
        || t.is("waterway", "riverbank")
        || t.is("landuse", "reservoir")
        || t.is("landuse", "basin")
    {
        return Some(LandKind::Water);
    }
    match (t.get("leisure"), t.get("landuse"), t.get("natural")) {
        (Some("park" | "garden" | "playground" | "recreation_ground" | "golf_course"), _, _) => Some(LandKind::Park),
        (_, Some("recreation_ground" | "village_green"), _) => Some(LandKind::Park),
        (_, Some("grass" | "meadow" | "cemetery" | "allotments"), _)
        | (_, _, Some("grassland" | "scrub" | "heath")) => Some(LandKind::Grass),
        (_, Some("forest"), _) | (_, _, Some("wood")) => Some(LandKind::Forest),
        (_, Some("railway"), _) => Some(LandKind::Rail),
        _ if t.is("amenity", "parking") && !t.is("parking", "underground") => Some(LandKind::Parking),
        _ if t.is("place", "square") || (t.is("highway", "pedestrian") && t.is("area", "yes")) => Some(LandKind::Plaza),
        _ => None,
    }
}

fn line_kind(t: &Tags) -> Option<(LandKind, f64)> {
    if t.is("tunnel", "yes") || t.has("area") {
        return None;
    }
    match (t.get("railway"), t.get("waterway")) {
        (Some("rail" | "subway" | "light_rail" | "monorail" | "tram" | "narrow_gauge"), _) => {
            Some((LandKind::Rail, 3.5))
        }
        (_, Some("river")) => Some((LandKind::Water, 20.0)),
        (_, Some("stream" | "canal" | "drain" | "ditch")) => Some((LandKind::Water, 4.0)),
        _ => None,
    }
}

pub fn build(ctx: &Ctx, twin: &mut Twin, report: &mut Report) {
    for (id, w) in &ctx.data.ways {
        let closed = w.nodes.len() >= 4 && w.nodes.first() == w.nodes.last();
        let source = ctx.data.source_ref(OsmType::Way, *id);
        let name = w.tags.get("name").map(str::to_string);
        if let Some((kind, default_w)) = line_kind(&w.tags) {
            let pts: Vec<P2> = w.nodes.iter().filter_map(|n| ctx.xy(*n)).collect();
            if pts.len() >= 2 && ctx.keeps_bbox(bbox(&pts)) {
                let width_m = w.tags.get("width").and_then(super::tags::parse_length_m).unwrap_or(default_w);
                twin.land_cover.push(LandCover {
                    source,
                    kind,
                    name,
                    geometry: LandGeometry::Line { points: pts, width_m },
                });
            }
            continue;
        }
        if !closed {
            continue;
        }
        let Some(kind) = area_kind(&w.tags) else { continue };
        if let Some(poly) = multipolygon::closed_way_polygon(ctx, *id, &w.nodes, report)
            && ctx.keeps_bbox(poly.bbox())
        {
            twin.land_cover.push(LandCover { source, kind, name, geometry: LandGeometry::Area(poly) });
        }
    }
    for (id, r) in &ctx.data.relations {
        if r.tags.get("type") != Some("multipolygon") {
            continue;
        }
        let Some(kind) = area_kind(&r.tags) else { continue };
        let source = ctx.data.source_ref(OsmType::Relation, *id);
        for poly in multipolygon::assemble(ctx, *id, r, report) {
            if ctx.keeps_bbox(poly.bbox()) {
                let name = r.tags.get("name").map(str::to_string);
                twin.land_cover.push(LandCover { source, kind, name, geometry: LandGeometry::Area(poly) });
            }
        }
    }
}

fn bbox(pts: &[P2]) -> [f64; 4] {
    pts.iter().fold([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], |b, p| {
        [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])]
    })
}
