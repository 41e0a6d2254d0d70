//! Buildings, building parts and their heights.
//!
//! # Height model
//! Heights come, in order of preference, from `height` (measured), from
//! `building:levels` (+ `roof:levels`) times a height per level, from the tallest part
//! (outlines whose parts cover them), or from an estimate. Both the height per level and
//! the estimate are *calibrated on the tagged buildings of the same input*, per building
//! type (`building=*` value):
//!
//! * metres per level: the median of `height / levels` over buildings with both tags, for
//!   the type when it has at least [`MIN_SAMPLES`] such buildings, else over all types,
//!   else 3.5 m (Seoul's median is 3-4 m per level; 2.5 m underestimates it). Clamped to
//!   2.5-6 m.
//! * estimate: the median known height (tagged, or from levels) of the type when it has at
//!   least [`MIN_SAMPLES`] known heights, else a default level count for the type (for
//!   example 15 for `apartments`, 2 for `house`) times the metres per level.
//!
//! The calibration is stored in the twin ([`swm_twin::HeightModel`]) and every building
//! records its [`HeightSource`].
//!
//! # Parts
//! `building:part` volumes are assigned to the outline that holds them (by a
//! `type=building` relation, else by the outline containing the part's centroid). When the
//! parts cover at least [`PARTS_COVER_SHARE`] of the outline's area, the parts replace the
//! outline in 3D (`parts_replace_outline`) and an outline without its own height takes the
//! tallest part's.

use super::{Ctx, multipolygon, tags};
use crate::Report;
use crate::osm::Tags;
use std::collections::{BTreeMap, HashMap};
use swm_core::{OsmType, SourceRef};
use swm_twin::{Building, HeightModel, HeightSource, HeightStats, Polygon, Roof, RoofShape, Twin};

/// Calibration needs at least this many samples for a building type.
pub const MIN_SAMPLES: usize = 5;
/// Share of an outline's area its parts must cover to replace it in 3D.
pub const PARTS_COVER_SHARE: f64 = 0.8;
/// Metres per level when the input has no building with both height and levels.
pub const FALLBACK_M_PER_LEVEL: f64 = 3.5;

struct Raw<'a> {
    source: SourceRef,
    tags: &'a Tags,
    footprint: Polygon,
    /// A further outer ring of a multipolygon building (kept as a volume of it).
    extra: bool,
}

fn is_building(t: &Tags) -> bool {
    t.get("building").is_some_and(|v| v != "no")
}
fn is_part(t: &Tags) -> bool {
    t.get("building:part").is_some_and(|v| v != "no")
}

/// Default level count of a building type with no height information at all.
pub fn default_levels(kind: &str) -> f64 {
    match kind {
        "apartments" | "officetel" => 15.0,
        "office" | "hotel" => 10.0,
        "residential" | "dormitory" | "hospital" | "government" | "public" => 5.0,
        "school" | "university" | "college" | "commercial" | "mixed_use" | "civic" => 4.0,
        "house" | "detached" | "semidetached_house" | "terrace" | "retail" | "church" | "temple" | "industrial"
        | "warehouse" | "train_station" | "parking" | "parkingbuilding" => 2.0,
        "garage" | "garages" | "shed" | "hut" | "roof" | "kiosk" | "toilets" | "carport" | "cabin" => 1.0,
        _ => 3.0,
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) })
}

fn collect<'a>(ctx: &'a Ctx, report: &mut Report, want: fn(&Tags) -> bool) -> Vec<Raw<'a>> {
    let mut out = Vec::new();
    for (id, w) in &ctx.data.ways {
        if !want(&w.tags) {
            continue;
        }
        if let Some(poly) = multipolygon::closed_way_polygon(ctx, *id, &w.nodes, report)
            && ctx.keeps_bbox(poly.bbox())
        {
            out.push(Raw {
                source: ctx.data.source_ref(OsmType::Way, *id),
                tags: &w.tags,
                footprint: poly,
                extra: false,
            });
        }
    }
    for (id, r) in &ctx.data.relations {
        // Multipolygons; and `type=building` relations tagged as buildings themselves,
        // whose outline is made of their `outline` (or role-less) way members.
        let mut polys = match r.tags.get("type") {
            Some("multipolygon") if want(&r.tags) => multipolygon::assemble(ctx, *id, r, report),
            Some("building") if want(&r.tags) => {
                multipolygon::assemble_roles(ctx, *id, r, Some(&["outline", "outer", ""]), report)
            }
            _ => continue,
        };
        // A building is one object: its largest outer is the footprint; further outers
        // (rare) become extra volumes of the same building so nothing is lost.
        polys.sort_by(|a, b| b.area_m2().total_cmp(&a.area_m2()));
        let source = ctx.data.source_ref(OsmType::Relation, *id);
        let mut polys = polys.into_iter();
        if let Some(main) = polys.next()
            && ctx.keeps_bbox(main.bbox())
        {
            out.push(Raw { source, tags: &r.tags, footprint: main, extra: false });
            for poly in polys {
                out.push(Raw { source, tags: &r.tags, footprint: poly, extra: true });
            }
        }
    }
    out
}

/// Height facts read from tags, before calibration.
struct Tagged {
    height_m: Option<f64>,
    min_height_m: Option<f64>,
    levels: Option<f64>,
    min_level: Option<f64>,
    roof_levels: Option<f64>,
    roof_height_m: Option<f64>,
}

fn read_tags(t: &Tags) -> Tagged {
    Tagged {
        height_m: t.get("height").and_then(tags::parse_length_m).filter(|h| *h > 0.0),
        min_height_m: t.get("min_height").and_then(tags::parse_length_m),
        levels: t.get("building:levels").and_then(tags::parse_levels).filter(|l| *l > 0.0),
        min_level: t.get("building:min_level").and_then(tags::parse_levels),
        roof_levels: t.get("roof:levels").and_then(tags::parse_levels),
        roof_height_m: t.get("roof:height").and_then(tags::parse_length_m),
    }
}

fn kind_of(t: &Tags, part: bool) -> String {
    let v = if part { t.get("building:part") } else { t.get("building") };
    match v {
        Some("yes") | None if part => t.get("building").filter(|b| *b != "yes").unwrap_or("yes").to_string(),
        Some(v) => v.to_string(),
        None => "yes".to_string(),
    }
}

/// Calibrates the height model on the tagged volumes of this input.
fn calibrate(raws: &[(&Raw, String, Tagged)]) -> HeightModel {
    let mut per_level: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut all_per_level = Vec::new();
    for (_, kind, t) in raws {
        if let (Some(h), Some(l)) = (t.height_m, t.levels) {
            let total_levels = l + t.roof_levels.unwrap_or(0.0);
            if total_levels >= 1.0 {
                let r = h / total_levels;
                if (1.5..15.0).contains(&r) {
                    per_level.entry(kind).or_default().push(r);
                    all_per_level.push(r);
                }
            }
        }
    }
    let overall_mpl = median(&mut all_per_level.clone()).unwrap_or(FALLBACK_M_PER_LEVEL).clamp(2.5, 6.0);
    let mpl_of = |kind: &str| -> (f64, usize) {
        match per_level.get(kind) {
            Some(v) if v.len() >= MIN_SAMPLES => {
                (median(&mut v.clone()).unwrap_or(overall_mpl).clamp(2.5, 6.0), v.len())
            }
            Some(v) => (overall_mpl, v.len()),
            None => (overall_mpl, 0),
        }
    };
    let mut heights: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut all_heights = Vec::new();
    for (_, kind, t) in raws {
        let h = t.height_m.or_else(|| t.levels.map(|l| (l + t.roof_levels.unwrap_or(0.0)) * mpl_of(kind).0));
        if let Some(h) = h {
            heights.entry(kind).or_default().push(h);
            all_heights.push(h);
        }
    }
    let mut kinds: Vec<&str> = raws.iter().map(|(_, k, _)| k.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let per_kind = kinds
        .into_iter()
        .map(|kind| {
            let (m_per_level, level_samples) = mpl_of(kind);
            let hs = heights.get(kind).cloned().unwrap_or_default();
            let median_height_m = if hs.len() >= MIN_SAMPLES {
                median(&mut hs.clone()).unwrap_or(0.0)
            } else {
                default_levels(kind) * m_per_level
            };
            HeightStats {
                kind: kind.to_string(),
                m_per_level,
                median_height_m,
                level_samples: level_samples as u32,
                height_samples: hs.len() as u32,
            }
        })
        .collect();
    HeightModel {
        overall: HeightStats {
            kind: "*".into(),
            m_per_level: overall_mpl,
            median_height_m: median(&mut all_heights.clone()).unwrap_or(default_levels("yes") * overall_mpl),
            level_samples: all_per_level.len() as u32,
            height_samples: all_heights.len() as u32,
        },
        per_kind,
    }
}

fn stats_for<'m>(model: &'m HeightModel, kind: &str) -> &'m HeightStats {
    model.per_kind.iter().find(|s| s.kind == kind).unwrap_or(&model.overall)
}

fn make_volume(ctx: &Ctx, raw: &Raw, kind: String, t: &Tagged, model: &HeightModel) -> Building {
    let stats = stats_for(model, &kind);
    let mpl = stats.m_per_level;
    let roof_levels = t.roof_levels.unwrap_or(0.0);
    let (mut height_m, source) = if let Some(h) = t.height_m {
        (h, HeightSource::Tagged)
    } else if let Some(l) = t.levels {
        ((l + roof_levels) * mpl, HeightSource::Levels)
    } else {
        (stats.median_height_m.max(2.0), HeightSource::Estimated)
    };
    let mut min_height_m = t.min_height_m.or_else(|| t.min_level.map(|l| l * mpl)).unwrap_or(0.0);
    if kind == "roof" && t.min_height_m.is_none() && t.min_level.is_none() {
        // `building=roof` is a canopy (a petrol station roof): open below.
        min_height_m = (height_m - 1.0).max(0.0);
    }
    if min_height_m >= height_m {
        height_m = min_height_m + 1.0;
    }
    let shape = raw.tags.get("roof:shape").and_then(RoofShape::parse).unwrap_or(RoofShape::Flat);
    let span = height_m - min_height_m;
    let roof_height_m = match shape {
        RoofShape::Flat => 0.0,
        _ => t
            .roof_height_m
            .or_else(|| t.roof_levels.map(|l| l * mpl))
            .unwrap_or_else(|| (0.3 * raw.footprint.area_m2().sqrt()).min(6.0)),
    }
    .min(0.6 * span)
    .max(0.0);
    let base_elevation_m = ctx.terrain.min_elevation_under(&raw.footprint.exterior);
    Building {
        source: raw.source,
        kind,
        name: raw.tags.get("name").map(str::to_string),
        footprint: raw.footprint.clone(),
        base_elevation_m,
        height_m,
        min_height_m,
        levels: t.levels.map(|l| l as f32),
        height_source: source,
        roof: Roof {
            shape,
            height_m: roof_height_m,
            direction_rad: raw.tags.get("roof:direction").and_then(tags::parse_direction_rad),
            colour: raw.tags.get("roof:colour").map(str::to_string),
        },
        colour: raw.tags.get("building:colour").map(str::to_string),
        parts: Vec::new(),
        parts_replace_outline: false,
        parent: None,
    }
}

/// A uniform grid over outline bounding boxes, for the part-to-outline search.
struct BboxGrid {
    cell_m: f64,
    cells: HashMap<(i64, i64), Vec<u32>>,
}

impl BboxGrid {
    fn new(boxes: impl Iterator<Item = [f64; 4]>) -> Self {
        let cell_m = 100.0;
        let mut cells: HashMap<(i64, i64), Vec<u32>> = HashMap::new();
        for (i, b) in boxes.enumerate() {
            let (x0, y0) = ((b[0] / cell_m).floor() as i64, (b[1] / cell_m).floor() as i64);
            let (x1, y1) = ((b[2] / cell_m).floor() as i64, (b[3] / cell_m).floor() as i64);
            for x in x0..=x1.min(x0 + 50) {
                for y in y0..=y1.min(y0 + 50) {
                    cells.entry((x, y)).or_default().push(i as u32);
                }
            }
        }
        Self { cell_m, cells }
    }
    fn candidates(&self, p: [f64; 2]) -> &[u32] {
        let k = ((p[0] / self.cell_m).floor() as i64, (p[1] / self.cell_m).floor() as i64);
        self.cells.get(&k).map(|v| v.as_slice()).unwrap_or(&[])
    }
}

pub fn build(ctx: &Ctx, twin: &mut Twin, report: &mut Report) {
    let (outlines, extra_outers): (Vec<Raw>, Vec<Raw>) =
        collect(ctx, report, is_building).into_iter().partition(|r| !r.extra);
    let mut parts = collect(ctx, report, |t| is_part(t) && !is_building(t));
    let first_extra = parts.len();
    parts.extend(extra_outers);
    let with_tags: Vec<(&Raw, String, Tagged)> = outlines
        .iter()
        .map(|r| (r, kind_of(r.tags, false), read_tags(r.tags)))
        .chain(parts.iter().map(|r| (r, kind_of(r.tags, true), read_tags(r.tags))))
        .collect();
    let model = calibrate(&with_tags);
    let mut volumes: Vec<Building> =
        with_tags.into_iter().map(|(raw, kind, t)| make_volume(ctx, raw, kind, &t, &model)).collect();
    let mut part_volumes = volumes.split_off(outlines.len());
    let mut buildings = volumes;

    // Parts to outlines: explicit `type=building` relations first, then containment.
    let index_of: HashMap<SourceRef, u32> = buildings.iter().enumerate().map(|(i, b)| (b.source, i as u32)).collect();
    let mut explicit: HashMap<SourceRef, u32> = HashMap::new();
    for (rid, r) in ctx.data.relations.iter().filter(|(_, r)| r.tags.get("type") == Some("building")) {
        let outline = r
            .members
            .iter()
            .find(|m| m.role == "outline")
            .and_then(|m| index_of.get(&ctx.data.source_ref(m.ty, m.id)).copied())
            .or_else(|| index_of.get(&ctx.data.source_ref(OsmType::Relation, *rid)).copied());
        if let Some(o) = outline {
            for m in r.members.iter().filter(|m| m.role == "part") {
                explicit.insert(ctx.data.source_ref(m.ty, m.id), o);
            }
        }
    }
    let grid = BboxGrid::new(buildings.iter().map(|b| b.footprint.bbox()));
    for (pi, part) in part_volumes.iter_mut().enumerate() {
        if pi >= first_extra {
            // An extra outer ring: a volume of its own relation's building.
            part.parent = index_of.get(&part.source).copied();
            if let Some(o) = part.parent {
                buildings[o as usize].parts.push(pi as u32);
            }
            continue;
        }
        let parent = explicit.get(&part.source).copied().or_else(|| {
            let c = part.footprint.centroid();
            grid.candidates(c).iter().copied().filter(|&o| buildings[o as usize].footprint.contains(c)).min_by(
                |&a, &b| {
                    buildings[a as usize].footprint.area_m2().total_cmp(&buildings[b as usize].footprint.area_m2())
                },
            )
        });
        if let Some(o) = parent {
            part.parent = Some(o);
            part.base_elevation_m = buildings[o as usize].base_elevation_m;
            buildings[o as usize].parts.push(pi as u32);
        }
    }
    for b in &mut buildings {
        if b.parts.is_empty() {
            continue;
        }
        let covered: f64 = b
            .parts
            .iter()
            .map(|&p| &part_volumes[p as usize])
            .filter(|p| p.source != b.source)
            .map(|p| p.footprint.area_m2())
            .sum();
        b.parts_replace_outline = covered >= PARTS_COVER_SHARE * b.footprint.area_m2();
        if b.parts_replace_outline && b.height_source != HeightSource::Tagged {
            let tallest = b.parts.iter().map(|&p| part_volumes[p as usize].height_m).fold(0.0, f64::max);
            if tallest > 0.0 {
                b.height_m = tallest;
                b.height_source = HeightSource::Parts;
            }
        }
    }
    let estimated = buildings.iter().filter(|b| b.height_source == HeightSource::Estimated).count();
    tracing::info!(
        buildings = buildings.len(),
        parts = part_volumes.len(),
        estimated,
        m_per_level = model.overall.m_per_level,
        "buildings"
    );
    twin.buildings = buildings;
    twin.building_parts = part_volumes;
    twin.height_model = model;
}
