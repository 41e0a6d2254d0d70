//! The twin's data model. Everything is in the twin frame (metres): `x` east, `y` north,
//! `z` elevation above sea level. Polygons are stored without a repeated closing vertex,
//! exteriors counter-clockwise, holes clockwise.

use serde::{Deserialize, Serialize};
use swm_core::{LatLon, LocalFrame, SourceRef};

/// A horizontal point `[x_east_m, y_north_m]` in the twin frame.
pub type P2 = [f64; 2];
/// A point `[x_east_m, y_north_m, z_elevation_m]` in the twin frame.
pub type P3 = [f64; 3];

/// The whole twin of a district.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Twin {
    pub meta: TwinMeta,
    pub terrain: Terrain,
    /// Building outlines (`building=*`), the unit users count.
    pub buildings: Vec<Building>,
    /// `building:part=*` volumes; in 3D they replace their outline where they cover it.
    pub building_parts: Vec<Building>,
    pub lanes: Vec<Lane>,
    pub lane_connections: Vec<LaneConnection>,
    pub junctions: Vec<Junction>,
    pub signals: Vec<Signal>,
    pub walk_nodes: Vec<WalkNode>,
    pub walk_edges: Vec<WalkEdge>,
    pub land_cover: Vec<LandCover>,
    /// The calibrated model that estimated the heights of untagged buildings.
    pub height_model: HeightModel,
}

/// Where the twin sits on Earth and what it was made from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TwinMeta {
    pub name: String,
    /// The origin of the twin frame.
    pub origin_wgs84: Option<LatLon>,
    /// `[west_deg, south_deg, east_deg, north_deg]` of everything in the twin.
    pub bbox_wgs84: [f64; 4],
    /// `[min_x_m, min_y_m, max_x_m, max_y_m]` of everything in the twin.
    pub bbox_m: [f64; 4],
    /// File names (not paths) or generator descriptions of the inputs, in input order.
    pub sources: Vec<String>,
    /// `swm <version>` that built the twin.
    pub built_by: String,
}

impl TwinMeta {
    /// The twin frame anchored at the origin (the equator/prime meridian if unset).
    pub fn frame(&self) -> LocalFrame {
        LocalFrame::new(self.origin_wgs84.unwrap_or(LatLon::new(0.0, 0.0)))
    }
}

/// A polygon with holes, in the twin frame (see the module docs for orientation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Polygon {
    pub exterior: Vec<P2>,
    pub holes: Vec<Vec<P2>>,
}

impl Polygon {
    /// Signed area of a ring (positive when counter-clockwise).
    pub fn ring_signed_area_m2(ring: &[P2]) -> f64 {
        let n = ring.len();
        let mut s = 0.0;
        for i in 0..n {
            let a = ring[i];
            let b = ring[(i + 1) % n];
            s += a[0] * b[1] - b[0] * a[1];
        }
        0.5 * s
    }

    /// Area of the exterior minus the holes.
    pub fn area_m2(&self) -> f64 {
        Self::ring_signed_area_m2(&self.exterior).abs()
            - self.holes.iter().map(|h| Self::ring_signed_area_m2(h).abs()).sum::<f64>()
    }

    /// `[min_x, min_y, max_x, max_y]`.
    pub fn bbox(&self) -> [f64; 4] {
        let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for p in &self.exterior {
            b[0] = b[0].min(p[0]);
            b[1] = b[1].min(p[1]);
            b[2] = b[2].max(p[0]);
            b[3] = b[3].max(p[1]);
        }
        b
    }

    /// Whether `p` lies inside the exterior and outside every hole (even-odd rule).
    pub fn contains(&self, p: P2) -> bool {
        ring_contains(&self.exterior, p) && !self.holes.iter().any(|h| ring_contains(h, p))
    }

    /// Area-weighted centroid of the exterior ring.
    pub fn centroid(&self) -> P2 {
        let r = &self.exterior;
        let n = r.len();
        let (mut cx, mut cy, mut a) = (0.0, 0.0, 0.0);
        // Shift to the first vertex for numerical stability.
        let o = r.first().copied().unwrap_or([0.0, 0.0]);
        for i in 0..n {
            let p = [r[i][0] - o[0], r[i][1] - o[1]];
            let q = [r[(i + 1) % n][0] - o[0], r[(i + 1) % n][1] - o[1]];
            let c = p[0] * q[1] - q[0] * p[1];
            cx += (p[0] + q[0]) * c;
            cy += (p[1] + q[1]) * c;
            a += c;
        }
        if a.abs() < 1e-12 {
            let k = n.max(1) as f64;
            return [r.iter().map(|p| p[0]).sum::<f64>() / k, r.iter().map(|p| p[1]).sum::<f64>() / k];
        }
        [o[0] + cx / (3.0 * a), o[1] + cy / (3.0 * a)]
    }
}

/// Even-odd point-in-ring test.
pub fn ring_contains(ring: &[P2], p: P2) -> bool {
    let n = ring.len();
    let mut inside = false;
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (a, b) = (ring[i], ring[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Length of a polyline (horizontal and vertical).
pub fn polyline_length_m(points: &[P3]) -> f64 {
    points
        .windows(2)
        .map(|w| ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2) + (w[1][2] - w[0][2]).powi(2)).sqrt())
        .sum()
}

/// Ground elevation model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Terrain {
    /// No DEM: the ground is flat at this elevation above sea level.
    Flat { elevation_m: f64 },
    /// A regular grid in the twin frame. Sample `(i, j)` (column `i` east, row `j` north)
    /// sits at `origin_m + (i, j) * cell_m`; `elevation_m[j * nx + i]`.
    Grid { origin_m: P2, cell_m: f64, nx: u32, ny: u32, elevation_m: Vec<f32>, source: String },
}

impl Default for Terrain {
    fn default() -> Self {
        Terrain::Flat { elevation_m: 0.0 }
    }
}

impl Terrain {
    /// Elevation above sea level at `p`, bilinear inside the grid, clamped at its edges.
    pub fn elevation_at(&self, p: P2) -> f64 {
        match self {
            Terrain::Flat { elevation_m } => *elevation_m,
            Terrain::Grid { origin_m, cell_m, nx, ny, elevation_m, .. } => {
                let (nx, ny) = (*nx as usize, *ny as usize);
                if nx == 0 || ny == 0 {
                    return 0.0;
                }
                let fx = ((p[0] - origin_m[0]) / cell_m).clamp(0.0, (nx - 1) as f64);
                let fy = ((p[1] - origin_m[1]) / cell_m).clamp(0.0, (ny - 1) as f64);
                let (i0, j0) = (fx.floor() as usize, fy.floor() as usize);
                let (i1, j1) = ((i0 + 1).min(nx - 1), (j0 + 1).min(ny - 1));
                let (tx, ty) = (fx - i0 as f64, fy - j0 as f64);
                let z = |i: usize, j: usize| elevation_m[j * nx + i] as f64;
                let a = z(i0, j0) * (1.0 - tx) + z(i1, j0) * tx;
                let b = z(i0, j1) * (1.0 - tx) + z(i1, j1) * tx;
                a * (1.0 - ty) + b * ty
            }
        }
    }

    /// Lowest elevation under a set of points (a building's base sits there).
    pub fn min_elevation_under(&self, points: &[P2]) -> f64 {
        points.iter().map(|p| self.elevation_at(*p)).fold(f64::INFINITY, f64::min).min(f64::MAX)
    }
}

/// How a building's height was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HeightSource {
    /// Measured: a `height` tag or a height attribute of a vector source.
    Tagged,
    /// `building:levels` times the calibrated height per level.
    Levels,
    /// The tallest of the building's parts.
    Parts,
    /// No height information: the calibrated model's estimate for the building type.
    Estimated,
}

impl HeightSource {
    pub fn as_str(self) -> &'static str {
        match self {
            HeightSource::Tagged => "tagged",
            HeightSource::Levels => "levels",
            HeightSource::Parts => "parts",
            HeightSource::Estimated => "estimated",
        }
    }
    /// Whether the height comes from a measured value (`height` tag or attribute).
    pub fn is_measured(self) -> bool {
        matches!(self, HeightSource::Tagged)
    }
}

/// `roof:shape` values (OSM Simple 3D Buildings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoofShape {
    Flat,
    Skillion,
    Gabled,
    HalfHipped,
    Hipped,
    Pyramidal,
    Gambrel,
    Mansard,
    Dome,
    Onion,
    Round,
    Saltbox,
}

impl RoofShape {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "flat" => RoofShape::Flat,
            "skillion" | "lean_to" => RoofShape::Skillion,
            "gabled" => RoofShape::Gabled,
            "half-hipped" | "half_hipped" => RoofShape::HalfHipped,
            "hipped" => RoofShape::Hipped,
            "pyramidal" => RoofShape::Pyramidal,
            "gambrel" => RoofShape::Gambrel,
            "mansard" => RoofShape::Mansard,
            "dome" => RoofShape::Dome,
            "onion" => RoofShape::Onion,
            "round" => RoofShape::Round,
            "saltbox" => RoofShape::Saltbox,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RoofShape::Flat => "flat",
            RoofShape::Skillion => "skillion",
            RoofShape::Gabled => "gabled",
            RoofShape::HalfHipped => "half-hipped",
            RoofShape::Hipped => "hipped",
            RoofShape::Pyramidal => "pyramidal",
            RoofShape::Gambrel => "gambrel",
            RoofShape::Mansard => "mansard",
            RoofShape::Dome => "dome",
            RoofShape::Onion => "onion",
            RoofShape::Round => "round",
            RoofShape::Saltbox => "saltbox",
        }
    }
}

/// A roof on top of a building volume: the roof occupies the top `height_m` of the volume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roof {
    pub shape: RoofShape,
    pub height_m: f64,
    /// Direction the roof slope faces (skillion) or the ridge runs along, radians
    /// counter-clockwise from east; `None` to follow the footprint's long axis.
    pub direction_rad: Option<f64>,
    pub colour: Option<String>,
}

impl Default for Roof {
    fn default() -> Self {
        Roof { shape: RoofShape::Flat, height_m: 0.0, direction_rad: None, colour: None }
    }
}

/// A building outline or a building part: an extruded footprint with a roof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Building {
    pub source: SourceRef,
    /// The `building=*` (or `building:part=*`) value: `yes`, `apartments`, `officetel`...
    pub kind: String,
    pub name: Option<String>,
    pub footprint: Polygon,
    /// Ground elevation above sea level under the footprint (its lowest point).
    pub base_elevation_m: f64,
    /// Top of the volume (roof included) above the ground, as OSM's `height`.
    pub height_m: f64,
    /// Bottom of the volume above the ground, as OSM's `min_height` (bridges, overhangs).
    pub min_height_m: f64,
    pub levels: Option<f32>,
    pub height_source: HeightSource,
    pub roof: Roof,
    pub colour: Option<String>,
    /// For outlines: indices into [`Twin::building_parts`] of the parts inside it.
    pub parts: Vec<u32>,
    /// For outlines: true when its parts cover it, so 3D shows the parts instead.
    pub parts_replace_outline: bool,
    /// For parts: the index into [`Twin::buildings`] of the outline that holds it.
    pub parent: Option<u32>,
}

impl Building {
    /// A flat-roofed outline with a tagged height, no parts and no name: the building the
    /// tests and programmatically made twins (synthetic scenes) need most often. Every field
    /// stays public for the rest.
    pub fn flat(source: SourceRef, footprint: Polygon, base_elevation_m: f64, height_m: f64) -> Building {
        Building {
            source,
            kind: "yes".into(),
            name: None,
            footprint,
            base_elevation_m,
            height_m,
            min_height_m: 0.0,
            levels: None,
            height_source: HeightSource::Tagged,
            roof: Roof::default(),
            colour: None,
            parts: vec![],
            parts_replace_outline: false,
            parent: None,
        }
    }

    /// Elevation above sea level of the top of the volume.
    pub fn top_elevation_m(&self) -> f64 {
        self.base_elevation_m + self.height_m
    }
}

/// OSM highway classes that carry vehicles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RoadClass {
    Motorway,
    Trunk,
    Primary,
    Secondary,
    Tertiary,
    Unclassified,
    Residential,
    LivingStreet,
    Service,
}

impl RoadClass {
    /// Parses a `highway=*` value (link roads map to their class).
    pub fn parse(highway: &str) -> Option<Self> {
        Some(match highway {
            "motorway" | "motorway_link" => RoadClass::Motorway,
            "trunk" | "trunk_link" => RoadClass::Trunk,
            "primary" | "primary_link" => RoadClass::Primary,
            "secondary" | "secondary_link" => RoadClass::Secondary,
            "tertiary" | "tertiary_link" => RoadClass::Tertiary,
            "unclassified" | "road" => RoadClass::Unclassified,
            "residential" => RoadClass::Residential,
            "living_street" => RoadClass::LivingStreet,
            "service" => RoadClass::Service,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RoadClass::Motorway => "motorway",
            RoadClass::Trunk => "trunk",
            RoadClass::Primary => "primary",
            RoadClass::Secondary => "secondary",
            RoadClass::Tertiary => "tertiary",
            RoadClass::Unclassified => "unclassified",
            RoadClass::Residential => "residential",
            RoadClass::LivingStreet => "living_street",
            RoadClass::Service => "service",
        }
    }
    /// Major roads: their large junctions get guessed signals.
    pub fn is_major(self) -> bool {
        matches!(self, RoadClass::Motorway | RoadClass::Trunk | RoadClass::Primary | RoadClass::Secondary)
    }
}

/// A turn at the end of a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Turn {
    Straight,
    Left,
    Right,
    SlightLeft,
    SlightRight,
    SharpLeft,
    SharpRight,
    UTurn,
}

impl Turn {
    pub fn as_str(self) -> &'static str {
        match self {
            Turn::Straight => "straight",
            Turn::Left => "left",
            Turn::Right => "right",
            Turn::SlightLeft => "slight_left",
            Turn::SlightRight => "slight_right",
            Turn::SharpLeft => "sharp_left",
            Turn::SharpRight => "sharp_right",
            Turn::UTurn => "u_turn",
        }
    }
}

/// What makes vehicles stop at a lane's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StopKind {
    /// A traffic signal controls the lane.
    Signal,
    /// `highway=stop` or an all-way stop.
    Stop,
    /// Give way to the major road.
    Yield,
}

/// A stop line across a lane near its end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopLine {
    /// Distance along the lane's centre line (m).
    pub s_m: f64,
    pub kind: StopKind,
    /// The line's two ends, across the lane.
    pub segment: [P3; 2],
}

/// Height of one vertical level of roads (m): a lane of [`Lane::level`] `k` runs `k` times
/// this above (below, for tunnels) its centre line, which follows the ground.
pub const LEVEL_HEIGHT_M: f64 = 6.0;

/// One directed lane between two road-graph nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    pub source: SourceRef,
    pub road_class: RoadClass,
    pub name: Option<String>,
    /// Centre line in driving direction.
    pub centerline: Vec<P3>,
    pub length_m: f64,
    pub width_m: f64,
    pub speed_limit_mps: f64,
    /// True when `maxspeed` was tagged; false for the class default.
    pub speed_limit_tagged: bool,
    /// True when the lane runs along the way's node order.
    pub forward: bool,
    /// 0 is the rightmost lane (Korea drives on the right).
    pub index_from_right: u8,
    /// Lanes in this direction on this road segment.
    pub lanes_in_direction: u8,
    pub from_junction: Option<u32>,
    pub to_junction: Option<u32>,
    /// Same-direction neighbours for lane changes (indices into [`Twin::lanes`]).
    pub left: Option<u32>,
    pub right: Option<u32>,
    /// Turns allowed at the end from `turn:lanes`; empty when untagged (any turn).
    pub turns: Vec<Turn>,
    pub stop_line: Option<StopLine>,
    pub signal: Option<u32>,
    /// Vertical level of the road (OSM `layer`; a bridge without `layer` is 1, a tunnel
    /// -1, everything else 0). Lanes on different levels pass over or under each other
    /// without meeting, whatever their plan-view geometry; the deck is [`LEVEL_HEIGHT_M`]
    /// per level above the centre line.
    pub level: i8,
}

/// A connection through a junction from the end of one lane to the start of another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaneConnection {
    pub from_lane: u32,
    pub to_lane: u32,
    pub junction: u32,
    pub turn: Turn,
    /// The path through the junction (a smooth curve from lane end to lane start).
    pub path: Vec<P3>,
    pub length_m: f64,
    /// True when the incoming road has priority over the junction's other roads.
    pub major: bool,
}

/// How a junction is controlled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Control {
    /// Traffic signals, tagged in the source.
    SignalTagged,
    /// Traffic signals guessed from the junction's roads (see ARCHITECTURE.md).
    SignalGuessed,
    /// All approaches stop.
    AllWayStop,
    /// Major roads have priority, minor ones yield.
    Priority,
    /// No road dominates: right before left.
    Uncontrolled,
}

impl Control {
    pub fn is_signalized(self) -> bool {
        matches!(self, Control::SignalTagged | Control::SignalGuessed)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Control::SignalTagged => "signal",
            Control::SignalGuessed => "signal_guessed",
            Control::AllWayStop => "all_way_stop",
            Control::Priority => "priority",
            Control::Uncontrolled => "uncontrolled",
        }
    }
}

/// A node of the road graph where lanes meet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Junction {
    pub source: SourceRef,
    pub center: P3,
    pub control: Control,
    pub incoming_lanes: Vec<u32>,
    pub outgoing_lanes: Vec<u32>,
}

/// A traffic signal head controlling a junction's approaches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The tagged `highway=traffic_signals` node, or `Derived` when guessed.
    pub source: SourceRef,
    pub junction: u32,
    pub position: P3,
    pub guessed: bool,
    /// The incoming lanes it controls.
    pub lanes: Vec<u32>,
}

/// A node of the walk graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WalkNode {
    pub source: SourceRef,
    pub position: P3,
}

/// Kinds of walkable edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WalkKind {
    /// A mapped footway, path or pedestrian-accessible track.
    Footway,
    /// A sidewalk: mapped (`footway=sidewalk`) or offset from a road's `sidewalk=*`.
    Sidewalk,
    /// A pedestrian street or plaza.
    Pedestrian,
    Steps,
    /// A crossing over a road.
    Crossing,
    /// A shared road without sidewalks (residential, living street, service).
    SharedRoad,
}

impl WalkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WalkKind::Footway => "footway",
            WalkKind::Sidewalk => "sidewalk",
            WalkKind::Pedestrian => "pedestrian",
            WalkKind::Steps => "steps",
            WalkKind::Crossing => "crossing",
            WalkKind::SharedRoad => "shared_road",
        }
    }
}

/// An undirected walkable edge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WalkEdge {
    pub source: SourceRef,
    pub from: u32,
    pub to: u32,
    pub kind: WalkKind,
    /// For crossings: whether a pedestrian signal controls it.
    pub signalled: bool,
    pub polyline: Vec<P3>,
    pub length_m: f64,
    pub width_m: f64,
}

/// Land cover classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LandKind {
    Water,
    Park,
    Grass,
    Forest,
    Rail,
    Parking,
    Plaza,
}

impl LandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LandKind::Water => "water",
            LandKind::Park => "park",
            LandKind::Grass => "grass",
            LandKind::Forest => "forest",
            LandKind::Rail => "rail",
            LandKind::Parking => "parking",
            LandKind::Plaza => "plaza",
        }
    }
}

/// Geometry of a land cover feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LandGeometry {
    Area(Polygon),
    /// A linear feature (rail track, river centre line) with a width.
    Line {
        points: Vec<P2>,
        width_m: f64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LandCover {
    pub source: SourceRef,
    pub kind: LandKind,
    pub name: Option<String>,
    pub geometry: LandGeometry,
}

/// Calibration of one building type (or of all types together).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeightStats {
    pub kind: String,
    /// Median of `height / building:levels` over buildings with both.
    pub m_per_level: f64,
    /// Median height of buildings of this kind with a known height (tagged or from levels).
    pub median_height_m: f64,
    /// Buildings with both height and levels that informed `m_per_level`.
    pub level_samples: u32,
    /// Buildings with a known height that informed `median_height_m`.
    pub height_samples: u32,
}

/// The model that gives untagged buildings a height; see `ARCHITECTURE.md`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeightModel {
    pub overall: HeightStats,
    pub per_kind: Vec<HeightStats>,
}

impl Twin {
    /// Buildings whose height is measured (tagged), not derived or estimated.
    pub fn buildings_with_measured_height(&self) -> usize {
        self.buildings.iter().filter(|b| b.height_source.is_measured()).count()
    }
    /// Walk edges that are crossings.
    pub fn crossings(&self) -> usize {
        self.walk_edges.iter().filter(|e| e.kind == WalkKind::Crossing).count()
    }
}
