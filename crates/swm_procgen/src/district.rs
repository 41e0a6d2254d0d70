//! The district generator proper.
//!
//! Everything is laid out in a *canonical frame* `(u, v)` in metres: `u` along the
//! river, `v` away from it, the district spanning `[0, lu] x [0, lv]`. The river (if
//! any) occupies the band near `v = 0`, then the riverside park, then the riverside
//! arterial at `v = v0`, then the grid of superblocks up to `v = lv`. At the end the
//! canonical frame is rotated (by a multiple of 90° plus a small angle) and centred on
//! the origin, so that the river can lie along any edge and the grid is not north-up.

use crate::draft::{Draft, Ref, tags};
use crate::geom::*;
use crate::names::{NamePool, brand};
use crate::params::DistrictParams;
use std::collections::BTreeMap;
use swm_core::rng::CounterRng;
use swm_ingest::osm::Tags;

/// The river band and its banks, in the canonical frame.
#[derive(Clone, Debug)]
pub struct River {
    pub width_m: f64,
    pub bank_amplitude_m: f64,
    pub bank_wavelength_m: f64,
    pub bank_phase_rad: f64,
    /// `v` of the riverside arterial.
    pub v0_m: f64,
}

impl River {
    /// `v` of the water's edge at `u`.
    pub fn bank_v(&self, u: f64) -> f64 {
        self.width_m
            + self.bank_amplitude_m * (std::f64::consts::TAU * u / self.bank_wavelength_m + self.bank_phase_rad).sin()
    }
}

/// The hill, in the canonical frame.
#[derive(Clone, Debug)]
pub struct Hill {
    pub center: P,
    pub radius_m: f64,
    pub height_m: f64,
}

/// What the DEM needs to know about the layout.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Rotation of the canonical frame into the local (east, north) frame.
    pub theta_rad: f64,
    pub lu_m: f64,
    pub lv_m: f64,
    pub river: Option<River>,
    pub hill: Option<Hill>,
    /// Phases of the plain's gentle undulation.
    pub relief_phase_rad: [f64; 2],
}

impl Layout {
    /// Local `[east_m, north_m]` of a canonical point.
    pub fn to_local(&self, p: P) -> P {
        rotate([p[0] - 0.5 * self.lu_m, p[1] - 0.5 * self.lv_m], self.theta_rad)
    }
    /// Canonical point of local `[east_m, north_m]`.
    pub fn to_canonical(&self, q: P) -> P {
        let r = rotate(q, -self.theta_rad);
        [r[0] + 0.5 * self.lu_m, r[1] + 0.5 * self.lv_m]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SideKind {
    Arterial,
    Collector,
    Street,
    /// No road: an alley or a gap between lots.
    Gap,
}

/// A block side lying on a road edge, from edge parameter `t0` to `t1`.
#[derive(Clone, Copy, Debug)]
struct SideRef {
    edge: usize,
    t0: f64,
    t1: f64,
}

impl SideRef {
    fn sub(self, p0: f64, p1: f64) -> SideRef {
        let t = |p: f64| self.t0 + (self.t1 - self.t0) * p;
        SideRef { edge: self.edge, t0: t(p0), t1: t(p1) }
    }
    fn edge_t(self, p: f64) -> f64 {
        self.t0 + (self.t1 - self.t0) * p
    }
}

/// A convex counter-clockwise quadrilateral bounded by roads.
#[derive(Clone, Copy, Debug)]
struct Block {
    c: [P; 4],
    side: [SideRef; 4],
    /// Distance from each side's centre line that buildings keep.
    clear: [f64; 4],
    kind: [SideKind; 4],
    /// Index into `Gen::roads` of each side's road (for street names).
    road: [usize; 4],
}

impl Block {
    fn rotated(&self, r: usize) -> Block {
        let f = |k: usize| (k + r) % 4;
        Block {
            c: [self.c[f(0)], self.c[f(1)], self.c[f(2)], self.c[f(3)]],
            side: [self.side[f(0)], self.side[f(1)], self.side[f(2)], self.side[f(3)]],
            clear: [self.clear[f(0)], self.clear[f(1)], self.clear[f(2)], self.clear[f(3)]],
            kind: [self.kind[f(0)], self.kind[f(1)], self.kind[f(2)], self.kind[f(3)]],
            road: [self.road[f(0)], self.road[f(1)], self.road[f(2)], self.road[f(3)]],
        }
    }
    fn side_len(&self, k: usize) -> f64 {
        dist(self.c[k], self.c[(k + 1) % 4])
    }
    fn bilerp(&self, s: f64, t: f64) -> P {
        lerp(lerp(self.c[0], self.c[1], s), lerp(self.c[3], self.c[2], s), t)
    }
}

/// A cell to fill with lots: a convex quad with per-side clearance and frontage kind.
#[derive(Clone, Copy, Debug)]
struct Cell {
    c: [P; 4],
    clear: [f64; 4],
    kind: [SideKind; 4],
}

/// Whether every point lies inside the convex quad `c`, at least `clear[k]` from side `k`.
fn inside(c: &[P; 4], clear: &[f64; 4], pts: &[P]) -> bool {
    (0..4).all(|k| {
        let n = left(unit(sub(c[(k + 1) % 4], c[k])));
        pts.iter().all(|p| dot(sub(*p, c[k]), n) >= clear[k])
    })
}

/// What is already taken in a block.
#[derive(Default)]
struct Occ {
    rects: Vec<([P; 4], P, f64)>,
    caps: Vec<(P, P, f64)>,
    circles: Vec<(P, f64)>,
}

impl Occ {
    fn add(&mut self, r: [P; 4]) {
        let c = centroid(&r);
        let rad = r.iter().map(|p| dist(*p, c)).fold(0.0, f64::max);
        self.rects.push((r, c, rad));
    }
    /// Whether a road from `a` to `b` keeps `w` from every building and lot so far.
    fn seg_free(&self, a: P, b: P, w: f64) -> bool {
        self.rects.iter().all(|(r, _, _)| ring_seg_dist(r, a, b) >= w)
    }
    fn free(&self, r: &[P; 4], margin: f64) -> bool {
        let c = centroid(r);
        let rad = r.iter().map(|p| dist(*p, c)).fold(0.0, f64::max);
        let g = grow_rect(r, margin);
        self.rects.iter().all(|(o, oc, orad)| dist(c, *oc) > rad + orad + margin * 1.5 || !convex_overlap(&g, o))
            && self.caps.iter().all(|(a, b, w)| ring_seg_dist(r, *a, *b) >= *w)
            && self.circles.iter().all(|(cc, w)| !point_in_ring(*cc, r) && ring_seg_dist(r, *cc, *cc) >= *w)
    }
}

/// A building before emission.
#[derive(Clone, Debug)]
pub struct Bldg {
    pub ring: Vec<P>,
    /// The oriented rectangle that holds the ring (equal to it for plain rectangles).
    pub rect: [P; 4],
    pub kind: &'static str,
    pub levels: u32,
    pub m_per_level: f64,
    pub roof: Option<&'static str>,
    pub name: Option<String>,
}

impl Bldg {
    fn is_rect(&self) -> bool {
        self.ring.len() == 4
    }
    fn dims(&self) -> (f64, f64) {
        (dist(self.rect[0], self.rect[1]), dist(self.rect[0], self.rect[3]))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Rect,
    L,
    Plus,
}

/// A ring of the given shape inside `rect`.
fn shape_ring(rect: &[P; 4], shape: Shape, rng: &mut CounterRng) -> Vec<P> {
    let (w, d) = (dist(rect[0], rect[1]), dist(rect[0], rect[3]));
    let ea = unit(sub(rect[1], rect[0]));
    let eb = left(ea);
    let at = |a: f64, b: f64| along(along(rect[0], ea, a), eb, b);
    match shape {
        Shape::Rect => rect.to_vec(),
        Shape::L => {
            let cw = w * rng.range_f64(0.35, 0.55);
            let cd = d * rng.range_f64(0.35, 0.55);
            vec![at(0.0, 0.0), at(w, 0.0), at(w, d - cd), at(w - cw, d - cd), at(w - cw, d), at(0.0, d)]
        }
        Shape::Plus => {
            let ta = w * rng.range_f64(0.22, 0.3);
            let tb = d * rng.range_f64(0.22, 0.3);
            vec![
                at(ta, 0.0),
                at(w - ta, 0.0),
                at(w - ta, tb),
                at(w, tb),
                at(w, d - tb),
                at(w - ta, d - tb),
                at(w - ta, d),
                at(ta, d),
                at(ta, d - tb),
                at(0.0, d - tb),
                at(0.0, tb),
                at(ta, tb),
            ]
        }
    }
}

/// One arterial's cross-section and tags.
#[derive(Clone, Debug)]
struct Arterial {
    tags: Tags,
    half_width_m: f64,
    sidewalk_m: f64,
    separate_sidewalks: bool,
    road: usize,
}

impl Arterial {
    fn clear_m(&self) -> f64 {
        self.half_width_m + self.sidewalk_m + 1.0
    }
}

/// A side road meeting an arterial edge at `node` (the side edge starts there).
#[derive(Clone, Copy, Debug)]
struct Join {
    art_edge: usize,
    node: usize,
    side_edge: usize,
}

/// A grid edge of the arterial network.
#[derive(Clone, Copy, Debug)]
struct ArtEdge {
    edge: usize,
    line: usize,
    /// Arterial index of the crossing line at the edge's start and end.
    cross_at: [usize; 2],
}

struct Gen<'a> {
    p: &'a DistrictParams,
    d: Draft,
    bldgs: Vec<Bldg>,
    names: NamePool,
    /// World east in the canonical frame.
    east: P,
    density: f64,
    /// Road names `(korean, romanised)` and their next `-gil` number.
    roads: Vec<(String, String, u32)>,
    joins: Vec<Join>,
    arterials: Vec<Arterial>,
    art_edges: Vec<ArtEdge>,
    /// Arterial index of each line, by line.
    line_arterial: BTreeMap<usize, usize>,
    schools: u32,
    /// Random streams handed out so far by [`Gen::feature_rng`].
    feature_streams: u64,
}

/// What the generator produced, in the canonical frame.
pub struct Output {
    pub draft: Draft,
    pub layout: Layout,
}

/// Length of an arterial's straight stub beyond the district's boundary intersection.
const STUB_M: f64 = 60.0;

/// Depth the expressway (carriageways, ramps, verges) adds to the riverside park band.
const EXPRESSWAY_BAND_M: f64 = 50.0;

/// Length along the river of an expressway ramp, metres.
const RAMP_M: f64 = 90.0;

/// How far outside the hill's forest the road round it runs, metres.
const HILL_ROAD_GAP_M: f64 = 14.0;

/// First random stream of the bends and the expressway (streams below are the layout's
/// and the blocks').
const FEATURE_STREAM_BASE: u64 = 7_000_000;

fn fmt_m(x: f64) -> String {
    let r = (x * 2.0).round() / 2.0;
    if r.fract() == 0.0 { format!("{r:.0}") } else { format!("{r:.1}") }
}

pub fn generate(p: &DistrictParams) -> Output {
    let mut rng = CounterRng::new(p.seed, 0);
    let quarter = rng.range_i64(0, 3);
    let tilt_rad = rng.range_f64(-p.max_grid_rotation_deg, p.max_grid_rotation_deg).to_radians();
    let theta_rad = quarter as f64 * std::f64::consts::FRAC_PI_2 + tilt_rad;
    let (lu, lv) = if quarter % 2 == 0 { (p.size_m[0], p.size_m[1]) } else { (p.size_m[1], p.size_m[0]) };
    let superblock_m = p.superblock_m * rng.range_f64(0.85, 1.15);
    let density = p.density * rng.range_f64(0.85, 1.15);
    let apartment_share = (p.apartment_share + rng.range_f64(-0.15, 0.15)).clamp(0.0, 1.0);
    let relief_phase_rad = [rng.range_f64(0.0, 6.3), rng.range_f64(0.0, 6.3)];
    let river = p.river.then(|| {
        let width_m = rng.range_f64(150.0, 260.0).min(0.18 * lv);
        let park_m = rng.range_f64(85.0, 120.0);
        River {
            width_m,
            bank_amplitude_m: rng.range_f64(4.0, 12.0),
            bank_wavelength_m: rng.range_f64(500.0, 900.0),
            bank_phase_rad: rng.range_f64(0.0, 6.3),
            v0_m: width_m + park_m + if p.expressway { EXPRESSWAY_BAND_M } else { 0.0 },
        }
    });
    let v0 = river.as_ref().map_or(0.0, |r| r.v0_m);
    tracing::debug!(seed = p.seed, superblock_m, theta_deg = theta_rad.to_degrees(), "generating district");

    let mut g = Gen {
        p,
        d: Draft::default(),
        bldgs: Vec::new(),
        names: NamePool::new(&mut rng),
        east: rotate([1.0, 0.0], -theta_rad),
        density,
        roads: Vec::new(),
        joins: Vec::new(),
        arterials: Vec::new(),
        art_edges: Vec::new(),
        line_arterial: BTreeMap::new(),
        schools: 0,
        feature_streams: 0,
    };

    // --- The arterial grid -------------------------------------------------------
    let nu = ((lu / superblock_m).round() as usize).max(2);
    let nv = (((lv - v0) / superblock_m).round() as usize).max(1);
    let us: Vec<f64> = (0..=nu)
        .map(|i| {
            let base = lu * i as f64 / nu as f64;
            if i == 0 || i == nu { base } else { base + rng.range_f64(-0.12, 0.12) * lu / nu as f64 }
        })
        .collect();
    let vs: Vec<f64> = (0..=nv)
        .map(|j| {
            let base = v0 + (lv - v0) * j as f64 / nv as f64;
            if j == 0 || j == nv { base } else { base + rng.range_f64(-0.12, 0.12) * (lv - v0) / nv as f64 }
        })
        .collect();
    let angled = (nu >= 2 && rng.chance(p.angled_road_chance)).then(|| {
        let i = rng.range_i64(1, nu as i64 - 1) as usize;
        let max_slope = (0.3 * lu / nu as f64 / (0.5 * (lv - v0))).min(0.3);
        let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
        (i, sign * rng.range_f64(0.4, 1.0) * max_slope)
    });
    let v_mid = 0.5 * (v0 + lv);
    let mut inter = vec![vec![0usize; nv + 1]; nu + 1];
    for (i, &u) in us.iter().enumerate() {
        for (j, &v) in vs.iter().enumerate() {
            let off = angled.map_or(0.0, |(ai, slope)| if ai == i { slope * (v - v_mid) } else { 0.0 });
            let jit = if j == 0 && river.is_some() { 2.0 } else { 7.0 };
            let pos = [u + off + rng.range_f64(-7.0, 7.0), v + rng.range_f64(-jit, jit)];
            inter[i][j] = g.d.node(pos, Tags::new());
        }
    }
    // Arterial specs: u-lines (across the river) then v-lines (along it).
    let mut u_art = Vec::new();
    for _ in 0..=nu {
        let primary = rng.chance(0.5);
        u_art.push(g.new_arterial(&mut rng, primary));
    }
    let mut v_art = Vec::new();
    for j in 0..=nv {
        let primary = (j == 0 && river.is_some()) || rng.chance(0.5);
        v_art.push(g.new_arterial(&mut rng, primary));
    }
    let mut u_lines = Vec::new();
    for i in 0..=nu {
        let mut edges = Vec::new();
        if river.is_none() {
            let (a, b) = (g.d.pos(inter[i][0]), g.d.pos(inter[i][1]));
            edges.extend(g.stub(inter[i][0], unit(sub(a, b)), None, true));
        }
        for j in 0..nv {
            let e = g.d.edge(inter[i][j], inter[i][j + 1]);
            let cross_at = [v_art[j], v_art[j + 1]];
            g.art_edges.push(ArtEdge { edge: e, line: g.d.lines.len(), cross_at });
            edges.push(e);
        }
        let (a, b) = (g.d.pos(inter[i][nv]), g.d.pos(inter[i][nv - 1]));
        edges.extend(g.stub(inter[i][nv], unit(sub(a, b)), None, false));
        let line = g.d.line(edges, g.arterials[u_art[i]].tags.clone());
        g.line_arterial.insert(line, u_art[i]);
        u_lines.push(line);
    }
    let mut v_lines = Vec::new();
    for j in 0..=nv {
        let mut edges = Vec::new();
        // The riverside arterial's stubs curve away from the river, never into it.
        let away = (j == 0 && river.is_some()).then_some([0.0, 1.0]);
        let (a, b) = (g.d.pos(inter[0][j]), g.d.pos(inter[1][j]));
        edges.extend(g.stub(inter[0][j], unit(sub(a, b)), away, true));
        for i in 0..nu {
            let e = g.d.edge(inter[i][j], inter[i + 1][j]);
            let cross_at = [u_art[i], u_art[i + 1]];
            g.art_edges.push(ArtEdge { edge: e, line: g.d.lines.len(), cross_at });
            edges.push(e);
        }
        let (a, b) = (g.d.pos(inter[nu][j]), g.d.pos(inter[nu - 1][j]));
        edges.extend(g.stub(inter[nu][j], unit(sub(a, b)), away, false));
        let line = g.d.line(edges, g.arterials[v_art[j]].tags.clone());
        g.line_arterial.insert(line, v_art[j]);
        v_lines.push(line);
    }
    // Ways split at some intersections, as mappers do.
    for (i, row) in inter.iter().enumerate() {
        for (j, &n) in row.iter().enumerate() {
            if rng.chance(0.45) {
                g.d.lines[u_lines[i]].split_at.insert(n);
            }
            if rng.chance(0.45) {
                g.d.lines[v_lines[j]].split_at.insert(n);
            }
        }
    }

    // --- Bridges (decided before signals: they make riverside T-junctions crossings) --
    let mut bridged: Vec<usize> = Vec::new();
    if river.is_some() {
        let n_bridges = (1 + rng.range_i64(0, 2) as usize).min(nu - 1);
        let mut candidates: Vec<usize> = (1..nu).collect();
        let mut chosen = Vec::new();
        for _ in 0..n_bridges {
            let k = rng.range_i64(0, candidates.len() as i64 - 1) as usize;
            chosen.push(candidates.remove(k));
        }
        chosen.sort_unstable();
        bridged.clone_from(&chosen);
        let riverside_hw = g.arterials[v_art[0]].half_width_m;
        for i in chosen {
            let (a, b) = (g.d.pos(inter[i][0]), g.d.pos(inter[i][1]));
            let dir = unit(sub(a, b));
            let start = g.d.node(along(a, dir, riverside_hw + 3.0), Tags::new());
            let far = (a[1] + 80.0) / dir[1].abs().max(0.5);
            let end = g.d.node(along(a, dir, far), Tags::new());
            let e1 = g.d.edge(inter[i][0], start);
            let mut approach = g.arterials[u_art[i]].tags.clone();
            approach.insert("sidewalk", "both");
            g.d.line(vec![e1], approach.clone());
            let e2 = g.d.edge(start, end);
            let (ko, en) = g.names.stem();
            let mut bt = approach;
            bt.insert("bridge", "yes");
            bt.insert("layer", "1");
            bt.insert("name", format!("{ko}대교"));
            bt.insert("name:en", format!("{en} Bridge"));
            bt.insert("maxspeed", "60");
            g.d.line(vec![e2], bt);
        }
    }
    // Signals at arterial intersections.
    for (i, row) in inter.iter().enumerate() {
        for (j, &n) in row.iter().enumerate() {
            let t_junction = j == 0 && river.is_some() && !bridged.contains(&i);
            let p_signal = if t_junction { 0.75 } else { 0.92 };
            if rng.chance(p_signal) {
                g.d.tag_node(n, "highway", "traffic_signals");
            }
        }
    }

    // --- Superblocks -------------------------------------------------------------
    let mut blocks = Vec::new();
    for i in 0..nu {
        for j in 0..nv {
            let c = [
                g.d.pos(inter[i][j]),
                g.d.pos(inter[i + 1][j]),
                g.d.pos(inter[i + 1][j + 1]),
                g.d.pos(inter[i][j + 1]),
            ];
            let edge_between = |g: &Gen, a: usize, b: usize| {
                g.d.edges.iter().position(|e| (e.a == a && e.b == b) || (e.a == b && e.b == a)).expect("grid edge")
            };
            let side = [
                SideRef { edge: edge_between(&g, inter[i][j], inter[i + 1][j]), t0: 0.0, t1: 1.0 },
                SideRef { edge: edge_between(&g, inter[i + 1][j], inter[i + 1][j + 1]), t0: 0.0, t1: 1.0 },
                SideRef { edge: edge_between(&g, inter[i][j + 1], inter[i + 1][j + 1]), t0: 1.0, t1: 0.0 },
                SideRef { edge: edge_between(&g, inter[i][j], inter[i][j + 1]), t0: 1.0, t1: 0.0 },
            ];
            let arts = [v_art[j], u_art[i + 1], v_art[j + 1], u_art[i]];
            let clear = arts.map(|a| g.arterials[a].clear_m());
            let road = arts.map(|a| g.arterials[a].road);
            blocks.push(Block { c, side, clear, kind: [SideKind::Arterial; 4], road });
        }
    }
    let hill_block = p.hill.then(|| {
        let candidates: Vec<usize> = (0..blocks.len()).filter(|&b| river.is_none() || nv == 1 || b % nv != 0).collect();
        *rng.pick(&candidates)
    });
    let mut hill = None;
    for (bi, block) in blocks.iter().enumerate() {
        let mut brng = CounterRng::new(p.seed, 1000 + bi as u64);
        if Some(bi) == hill_block {
            hill = Some(g.hill_block(block, &mut brng));
            continue;
        }
        let min_dim = (0..4).map(|k| block.side_len(k)).fold(f64::INFINITY, f64::min);
        let parts = if min_dim > 300.0 && brng.chance(p.collector_share) {
            let r = if block.side_len(0) + block.side_len(2) >= block.side_len(1) + block.side_len(3) { 0 } else { 1 };
            let (a, b) = g.split_block(&block.rotated(r), &mut brng);
            vec![a, b]
        } else {
            vec![*block]
        };
        for part in parts {
            if brng.chance(apartment_share) {
                g.danji(&part, &mut brng);
            } else {
                g.fine_grain(&part, &mut brng);
            }
        }
    }

    // --- River, park, rail ---------------------------------------------------------
    let mut frng = CounterRng::new(p.seed, 3);
    let surface_rail = river.is_some() && p.rail && frng.chance(0.5);
    if let Some(r) = &river {
        g.river_features(r, lu, &inter, &v_art, surface_rail, &mut frng);
    }
    if p.rail {
        g.subway(&inter, &u_art, &v_art, &mut frng);
    }

    // --- Crossings, sidewalks, restrictions ------------------------------------------
    g.crossings_and_sidewalks(&mut frng);
    let restriction_nodes: Vec<(usize, usize)> = {
        let mut out = Vec::new();
        let n_restr = 1 + frng.range_i64(0, 1) as usize;
        for _ in 0..n_restr {
            let i = frng.range_i64(1, nu as i64 - 1) as usize;
            let j = frng.range_i64(1, nv.max(2) as i64 - 1).min(nv as i64) as usize;
            if !out.contains(&(i, j)) {
                out.push((i, j));
            }
        }
        out
    };
    for &(i, j) in &restriction_nodes {
        let n = inter[i][j];
        g.d.lines[u_lines[i]].split_at.insert(n);
        g.d.lines[v_lines[j]].split_at.insert(n);
    }
    g.d.emit_lines();
    g.turn_lanes(&mut frng);
    for &(i, j) in &restriction_nodes {
        g.restriction(inter[i][j], u_lines[i], v_lines[j]);
    }
    g.emit_buildings();

    let layout = Layout { theta_rad, lu_m: lu, lv_m: lv, river, hill, relief_phase_rad };
    Output { draft: g.d, layout }
}

impl Gen<'_> {
    fn new_arterial(&mut self, rng: &mut CounterRng, primary: bool) -> usize {
        let (ko, en) = self.names.stem();
        let (name, name_en) = if primary {
            (format!("{ko}대로"), format!("{en}-daero"))
        } else {
            (format!("{ko}로"), format!("{en}-ro"))
        };
        self.roads.push((name.clone(), name_en.clone(), 1));
        let road = self.roads.len() - 1;
        let lanes: u32 = if primary { *rng.pick(&[6, 6, 8, 8]) } else { *rng.pick(&[4, 4, 6]) };
        let mut t = tags(&[("highway", if primary { "primary" } else { "secondary" })]);
        t.insert("name", name);
        t.insert("name:en", name_en);
        let asymmetric = rng.chance(0.15);
        if asymmetric {
            let fwd = lanes / 2;
            t.insert("lanes", (lanes - 1).to_string());
            t.insert("lanes:forward", fwd.to_string());
            t.insert("lanes:backward", (lanes - 1 - fwd).to_string());
        } else {
            t.insert("lanes", lanes.to_string());
            if rng.chance(0.3) {
                t.insert("lanes:forward", (lanes / 2).to_string());
                t.insert("lanes:backward", (lanes / 2).to_string());
            }
        }
        let maxspeed = if primary && rng.chance(0.3) { "60" } else { "50" };
        t.insert("maxspeed", maxspeed);
        let separate_sidewalks = rng.chance(0.3);
        t.insert("sidewalk", if separate_sidewalks { "separate" } else { "both" });
        t.insert("surface", "asphalt");
        self.arterials.push(Arterial {
            tags: t,
            half_width_m: lanes as f64 * 3.3 / 2.0 + 1.0,
            sidewalk_m: if primary { 4.5 } else { 3.5 },
            separate_sidewalks,
            road,
        });
        self.arterials.len() - 1
    }

    /// A fresh random stream for one bend or the expressway. They draw from their own
    /// streams, so switching them off leaves everything else's random draws as they were
    /// (street names and `-gil` numbers can still shift, and the expressway widens the
    /// riverside band).
    fn feature_rng(&mut self) -> CounterRng {
        self.feature_streams += 1;
        CounterRng::new(self.p.seed, FEATURE_STREAM_BASE + self.feature_streams)
    }

    /// The edges of an arterial's stub, the stretch that leaves the district from its
    /// boundary intersection `at` along the unit vector `dir`. Ordered along the line:
    /// into `at` when `into_at`, else out of it. With chance `bend_share` the road
    /// curves away halfway out, by 15-60° (to the side of `away` when given): the twin
    /// builder rounds the corner into an arc of about 35-180 m radius, which traffic
    /// entering and leaving the district slows for.
    fn stub(&mut self, at: usize, dir: P, away: Option<P>, into_at: bool) -> Vec<usize> {
        let a = self.d.pos(at);
        let mut rng = self.feature_rng();
        let mut nodes = vec![at];
        if rng.chance(self.p.bend_share) {
            let first_m = rng.range_f64(40.0, 60.0);
            let mut turn_rad = rng.range_f64(15.0, 60.0).to_radians();
            if rng.chance(0.5) {
                turn_rad = -turn_rad;
            }
            if let Some(away) = away
                && dot(rotate(dir, turn_rad), away) < dot(dir, away)
            {
                turn_rad = -turn_rad;
            }
            let bend = along(a, dir, first_m);
            let end = along(bend, rotate(dir, turn_rad), rng.range_f64(40.0, 70.0));
            nodes.push(self.d.node(bend, Tags::new()));
            nodes.push(self.d.node(end, Tags::new()));
        } else {
            nodes.push(self.d.node(along(a, dir, STUB_M), Tags::new()));
        }
        if into_at {
            nodes.reverse();
        }
        nodes.windows(2).map(|w| self.d.edge(w[0], w[1])).collect()
    }

    fn attach_side(&mut self, side: SideRef, p: f64) -> usize {
        self.d.attach(side.edge, side.edge_t(p))
    }

    fn gil_name(&mut self, road: usize) -> (String, String) {
        let (ko, en, n) = &mut self.roads[road];
        let out = (format!("{ko}{n}길"), format!("{en} {n}-gil"));
        *n += 1;
        out
    }

    /// Splits a superblock between its sides 0 and 2 with a tertiary collector.
    fn split_block(&mut self, b: &Block, rng: &mut CounterRng) -> (Block, Block) {
        let s = 0.5 + rng.range_f64(-0.1, 0.1);
        let s2 = (s + rng.range_f64(-0.05, 0.05)).clamp(0.3, 0.7);
        let na = self.attach_side(b.side[0], s);
        let nb = self.attach_side(b.side[2], 1.0 - s2);
        let (pa, pb) = (self.d.pos(na), self.d.pos(nb));
        let e = self.d.edge(na, nb);
        let (ko, en) = self.names.stem();
        self.roads.push((format!("{ko}로"), format!("{en}-ro"), 1));
        let road = self.roads.len() - 1;
        let four = rng.chance(0.35);
        let mut t = tags(&[("highway", "tertiary"), ("lanes", if four { "4" } else { "2" })]);
        t.insert("maxspeed", if rng.chance(0.6) { "50" } else { "40" });
        t.insert("sidewalk", "both");
        t.insert("name", format!("{ko}로"));
        t.insert("name:en", format!("{en}-ro"));
        self.d.line(vec![e], t);
        for n in [na, nb] {
            if rng.chance(0.45) {
                self.d.tag_node(n, "highway", "traffic_signals");
            }
        }
        self.joins.push(Join { art_edge: b.side[0].edge, node: na, side_edge: e });
        self.joins.push(Join { art_edge: b.side[2].edge, node: nb, side_edge: e });
        let hw = if four { 7.0 } else { 4.0 };
        let clear = hw + 3.0;
        let west = Block {
            c: [b.c[0], pa, pb, b.c[3]],
            side: [
                b.side[0].sub(0.0, s),
                SideRef { edge: e, t0: 0.0, t1: 1.0 },
                b.side[2].sub(1.0 - s2, 1.0),
                b.side[3],
            ],
            clear: [b.clear[0], clear, b.clear[2], b.clear[3]],
            kind: [b.kind[0], SideKind::Collector, b.kind[2], b.kind[3]],
            road: [b.road[0], road, b.road[2], b.road[3]],
        };
        let east = Block {
            c: [pa, b.c[1], b.c[2], pb],
            side: [
                b.side[0].sub(s, 1.0),
                b.side[1],
                b.side[2].sub(0.0, 1.0 - s2),
                SideRef { edge: e, t0: 1.0, t1: 0.0 },
            ],
            clear: [b.clear[0], b.clear[1], b.clear[2], clear],
            kind: [b.kind[0], b.kind[1], b.kind[2], SideKind::Collector],
            road: [b.road[0], b.road[1], b.road[2], road],
        };
        (west, east)
    }

    /// Fine-grained low-rise housing on a grid of residential streets.
    fn fine_grain(&mut self, b: &Block, rng: &mut CounterRng) {
        let b = if rng.chance(0.5) { *b } else { b.rotated(1) };
        let len_s = 0.5 * (b.side_len(0) + b.side_len(2));
        let len_t = 0.5 * (b.side_len(1) + b.side_len(3));
        let sp_s = rng.range_f64(45.0, 65.0) / self.density.sqrt();
        let sp_t = rng.range_f64(80.0, 120.0) / self.density.sqrt();
        let ns = ((len_s / sp_s).round() as usize).saturating_sub(1);
        let nt = ((len_t / sp_t).round() as usize).saturating_sub(1);
        let ss: Vec<f64> = (0..ns).map(|a| (a as f64 + 1.0 + rng.range_f64(-0.12, 0.12)) / (ns as f64 + 1.0)).collect();
        let ts: Vec<f64> = (0..nt).map(|k| (k as f64 + 1.0 + rng.range_f64(-0.12, 0.12)) / (nt as f64 + 1.0)).collect();
        // Nodes: s-line a runs from side 0 to side 2; t-line k from side 3 to side 1.
        let s_ends: Vec<(usize, usize)> =
            ss.iter().map(|&s| (self.attach_side(b.side[0], s), self.attach_side(b.side[2], 1.0 - s))).collect();
        let t_ends: Vec<(usize, usize)> =
            ts.iter().map(|&t| (self.attach_side(b.side[3], 1.0 - t), self.attach_side(b.side[1], t))).collect();
        let inner: Vec<Vec<usize>> =
            ss.iter().map(|&s| ts.iter().map(|&t| self.d.node(b.bilerp(s, t), Tags::new())).collect()).collect();
        // Which segments exist: s-line a has nt + 1 segments, t-line k has ns + 1.
        let mut s_keep = vec![vec![true; nt + 1]; ns];
        let mut t_keep = vec![vec![true; ns + 1]; nt];
        for keep in s_keep.iter_mut() {
            if nt > 0 && rng.chance(0.12) {
                let end = if rng.chance(0.5) { 0 } else { nt };
                keep[end] = false;
            }
        }
        for keep in t_keep.iter_mut() {
            for seg in keep.iter_mut() {
                if rng.chance(0.22) {
                    *seg = false;
                }
            }
        }
        for a in 0..ns {
            let seq: Vec<usize> = std::iter::once(s_ends[a].0)
                .chain(inner[a].iter().copied())
                .chain(std::iter::once(s_ends[a].1))
                .collect();
            let road = b.road[0];
            self.emit_street(&seq, &s_keep[a], rng, road, [b.side[0].edge, b.side[2].edge]);
        }
        for k in 0..nt {
            let seq: Vec<usize> = std::iter::once(t_ends[k].0)
                .chain(inner.iter().map(|col| col[k]))
                .chain(std::iter::once(t_ends[k].1))
                .collect();
            let road = b.road[3];
            self.emit_street(&seq, &t_keep[k], rng, road, [b.side[3].edge, b.side[1].edge]);
        }
        // Cells.
        let sb: Vec<f64> = std::iter::once(0.0).chain(ss.iter().copied()).chain(std::iter::once(1.0)).collect();
        let tb: Vec<f64> = std::iter::once(0.0).chain(ts.iter().copied()).chain(std::iter::once(1.0)).collect();
        let street_clear = 4.0;
        let gap_clear = 1.5;
        let mut cells = Vec::new();
        for a in 0..=ns {
            for k in 0..=nt {
                let c = [
                    b.bilerp(sb[a], tb[k]),
                    b.bilerp(sb[a + 1], tb[k]),
                    b.bilerp(sb[a + 1], tb[k + 1]),
                    b.bilerp(sb[a], tb[k + 1]),
                ];
                let side_of = |on_block: Option<usize>, kept: bool| match on_block {
                    Some(bk) => (b.clear[bk], b.kind[bk]),
                    None if kept => (street_clear, SideKind::Street),
                    None => (gap_clear, SideKind::Gap),
                };
                let s0 = side_of((k == 0).then_some(0), k > 0 && t_keep[k - 1][a]);
                let s1 = side_of((a == ns).then_some(1), a < ns && s_keep[a][k]);
                let s2 = side_of((k == nt).then_some(2), k < nt && t_keep[k][a]);
                let s3 = side_of((a == 0).then_some(3), a > 0 && s_keep[a - 1][k]);
                cells.push(Cell { c, clear: [s0.0, s1.0, s2.0, s3.0], kind: [s0.1, s1.1, s2.1, s3.1] });
            }
        }
        let interior: Vec<usize> = (0..cells.len()).filter(|&i| !cells[i].kind.contains(&SideKind::Arterial)).collect();
        let park_cell = (!interior.is_empty() && rng.chance(0.35)).then(|| *rng.pick(&interior));
        let school_cell =
            (cells.len() > 4 && rng.chance(0.3)).then(|| rng.range_i64(0, cells.len() as i64 - 1) as usize);
        for (ci, cell) in cells.iter().enumerate() {
            let mut occ = Occ::default();
            if Some(ci) == park_cell {
                self.park_in_cell(cell, rng);
                continue;
            }
            if Some(ci) == school_cell && Some(ci) != park_cell && self.school_in_cell(cell, &mut occ, rng) {
                continue;
            }
            self.perimeter_fill(cell, &mut occ, rng);
        }
    }

    /// Emits a street through `seq` as ways over its kept segments; the first and last
    /// nodes lie on `end_edges`.
    fn residential_tags(&mut self, road: usize, rng: &mut CounterRng) -> Tags {
        let (name, name_en) = self.gil_name(road);
        let mut t = tags(&[("highway", "residential"), ("maxspeed", "30")]);
        if rng.chance(0.22) {
            t.insert("oneway", "yes");
            if rng.chance(0.5) {
                t.insert("lanes", "1");
            }
        }
        t.insert("name", name);
        t.insert("name:en", name_en);
        t
    }

    fn emit_street(&mut self, seq: &[usize], keep: &[bool], rng: &mut CounterRng, road: usize, end_edges: [usize; 2]) {
        let mut run: Vec<usize> = Vec::new();
        let last = keep.len() - 1;
        let mut runs: Vec<Vec<usize>> = Vec::new();
        for (si, &k) in keep.iter().enumerate() {
            if k {
                let e = self.d.edge(seq[si], seq[si + 1]);
                if si == 0 {
                    self.joins.push(Join { art_edge: end_edges[0], node: seq[0], side_edge: e });
                }
                if si == last {
                    // This edge ends at the join (the sidewalk code handles both ends).
                    self.joins.push(Join { art_edge: end_edges[1], node: seq[si + 1], side_edge: e });
                }
                run.push(e);
            } else if !run.is_empty() {
                runs.push(std::mem::take(&mut run));
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
        if runs.is_empty() {
            return;
        }
        let t = self.residential_tags(road, rng);
        for r in runs {
            self.d.line(r, t.clone());
        }
    }

    /// Lots along the sides of a cell, then rows inside what remains.
    fn perimeter_fill(&mut self, cell: &Cell, occ: &mut Occ, rng: &mut CounterRng) {
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by_key(|&k| match cell.kind[k] {
            SideKind::Arterial => 0,
            SideKind::Collector => 1,
            SideKind::Street => 2,
            SideKind::Gap => 3,
        });
        let gap_scale = 1.0 / self.density;
        for k in order {
            let (p0, p1) = (cell.c[k], cell.c[(k + 1) % 4]);
            let len = dist(p0, p1);
            let ea = unit(sub(p1, p0));
            let eb = left(ea);
            let mut a = rng.range_f64(0.0, 4.0);
            while a < len {
                let lot = self.lot_style(cell.kind[k], rng);
                let setback = cell.clear[k] + lot.setback_m;
                let corner = along(along(p0, ea, a), eb, setback);
                let r = rect(corner, ea, lot.w_m, lot.d_m);
                if inside(&cell.c, &cell.clear, &r) && occ.free(&r, 1.0) {
                    let ring = shape_ring(&r, lot.shape, rng);
                    occ.add(r);
                    self.bldgs.push(Bldg {
                        ring,
                        rect: r,
                        kind: lot.kind,
                        levels: lot.levels,
                        m_per_level: lot.m_per_level,
                        roof: lot.roof,
                        name: None,
                    });
                    a += lot.w_m + lot.gap_m * gap_scale;
                } else {
                    a += 3.0;
                }
            }
        }
    }

    fn lot_style(&self, kind: SideKind, rng: &mut CounterRng) -> Lot {
        let commercial = match kind {
            SideKind::Arterial => true,
            SideKind::Collector => rng.chance(0.5),
            SideKind::Street | SideKind::Gap => false,
        };
        match commercial {
            true => {
                let pick = rng.next_f64();
                let (k, lv): (&'static str, (i64, i64)) = if pick < 0.3 {
                    ("commercial", (3, 12))
                } else if pick < 0.55 {
                    ("retail", (2, 6))
                } else if pick < 0.8 {
                    ("office", (6, 20))
                } else {
                    ("officetel", (10, 20))
                };
                let levels = if kind == SideKind::Collector {
                    rng.range_i64(lv.0, lv.1.min(8))
                } else {
                    rng.range_i64(lv.0, lv.1)
                };
                let big = levels >= 8;
                Lot {
                    w_m: rng.range_f64(14.0, if big { 36.0 } else { 26.0 }),
                    d_m: rng.range_f64(14.0, if big { 30.0 } else { 22.0 }),
                    gap_m: rng.range_f64(2.0, 6.0),
                    setback_m: rng.range_f64(0.0, 2.0),
                    kind: k,
                    levels: levels as u32,
                    m_per_level: rng.range_f64(3.4, 4.0),
                    roof: None,
                    shape: if rng.chance(0.12) { Shape::L } else { Shape::Rect },
                }
            }
            false => {
                let pick = rng.next_f64();
                let (k, lv): (&'static str, (i64, i64)) = if pick < 0.4 {
                    ("house", (2, 3))
                } else if pick < 0.85 {
                    ("residential", (3, 5))
                } else if pick < 0.93 {
                    ("yes", (1, 4))
                } else {
                    ("retail", (2, 4))
                };
                let roof =
                    (k == "house" && rng.chance(0.45)).then(|| if rng.chance(0.6) { "gabled" } else { "hipped" });
                Lot {
                    w_m: rng.range_f64(9.0, 17.0),
                    d_m: rng.range_f64(10.0, 16.0),
                    gap_m: rng.range_f64(1.5, 4.0),
                    setback_m: rng.range_f64(0.5, 2.0),
                    kind: k,
                    levels: rng.range_i64(lv.0, lv.1) as u32,
                    m_per_level: rng.range_f64(3.0, 3.3),
                    roof,
                    shape: if rng.chance(0.15) { Shape::L } else { Shape::Rect },
                }
            }
        }
    }

    fn park_in_cell(&mut self, cell: &Cell, rng: &mut CounterRng) {
        let ring = inset_convex(&cell.c, &cell.clear);
        let (ko, en) = self.names.stem();
        let mut t = tags(&[("leisure", "park")]);
        t.insert("name", format!("{ko}어린이공원"));
        t.insert("name:en", format!("{en} Children's Park"));
        self.d.closed_way(&ring, t);
        // A footway loop inside, and a playground.
        let c = centroid(&ring);
        let loop_ring: Vec<P> = ring.iter().map(|p| lerp(c, *p, 0.65)).collect();
        self.d.closed_way(&loop_ring, tags(&[("highway", "footway")]));
        let play: Vec<P> = ring.iter().map(|p| lerp(c, *p, 0.25)).collect();
        self.d.closed_way(&play, tags(&[("leisure", "playground")]));
        if rng.chance(0.5) {
            self.d.node(c, tags(&[("amenity", "bench")]));
        }
    }

    /// A school lot in a cell; false when the cell is too small.
    fn school_in_cell(&mut self, cell: &Cell, occ: &mut Occ, rng: &mut CounterRng) -> bool {
        let lot = inset_convex(&cell.c, &cell.clear);
        if signed_area(&lot) < 5000.0 {
            return false;
        }
        self.school_on(&lot, occ, rng)
    }

    /// A school: lot, building and sports pitch, on a convex lot polygon.
    fn school_on(&mut self, lot: &[P], occ: &mut Occ, rng: &mut CounterRng) -> bool {
        let ea = unit(sub(lot[1], lot[0]));
        let w = dist(lot[0], lot[1]);
        let n = lot.len();
        let quad: [P; 4] = [lot[0], lot[1], lot[2 % n], lot[3 % n]];
        let zero = [2.0; 4];
        let bw = (w * 0.7).min(70.0);
        let bd = rng.range_f64(14.0, 18.0);
        let corner = along(along(lot[0], ea, 0.15 * w), left(ea), 4.0);
        let building = rect(corner, ea, bw, bd);
        if !inside(&quad, &zero, &building) {
            return false;
        }
        let (ko, en) = self.names.stem();
        let level =
            if rng.chance(0.6) { ("초등학교", "Elementary School") } else { ("중학교", "Middle School") };
        let mut t = tags(&[("amenity", "school")]);
        t.insert("name", format!("{ko}{}", level.0));
        t.insert("name:en", format!("{en} {}", level.1));
        self.d.closed_way(lot, t);
        occ.add(building);
        self.bldgs.push(Bldg {
            ring: building.to_vec(),
            rect: building,
            kind: "school",
            levels: rng.range_i64(4, 5) as u32,
            m_per_level: rng.range_f64(3.5, 3.9),
            roof: None,
            name: Some(format!("{ko}{}", level.0)),
        });
        let pitch_corner = along(corner, left(ea), bd + 12.0);
        let pitch = rect(pitch_corner, ea, bw * 0.8, (bw * 0.5).min(45.0));
        if inside(&quad, &zero, &pitch) {
            self.d.closed_way(&pitch, tags(&[("leisure", "pitch"), ("sport", "soccer")]));
            occ.add(pitch);
        }
        self.schools += 1;
        true
    }

    /// An apartment complex (danji): rows of towers or slabs, internal service roads, a
    /// park with a plaza, sometimes a school and a commercial strip on the arterials.
    fn danji(&mut self, b: &Block, rng: &mut CounterRng) {
        let mut occ = Occ::default();
        let mut clear = b.clear;
        // Axes: slabs face south, their long axis is the block axis nearest east-west.
        let d0 = unit(sub(b.c[1], b.c[0]));
        let d1 = unit(sub(b.c[2], b.c[1]));
        let mut ea = if dot(d0, self.east).abs() >= dot(d1, self.east).abs() { d0 } else { d1 };
        if dot(ea, self.east) < 0.0 {
            ea = scale(ea, -1.0);
        }
        let eb = left(ea);
        let o = b.c[0];
        let proj = |p: P| [dot(sub(p, o), ea), dot(sub(p, o), eb)];
        let pc: Vec<P> = b.c.iter().map(|p| proj(*p)).collect();
        let (amin, amax) = pc.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |m, q| (m.0.min(q[0]), m.1.max(q[0])));
        let (bmin, bmax) = pc.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |m, q| (m.0.min(q[1]), m.1.max(q[1])));
        let at = |a: f64, bb: f64| along(along(o, ea, a), eb, bb);

        // The main internal road along `ea`.
        let b_road = lerp([bmin, 0.0], [bmax, 0.0], rng.range_f64(0.4, 0.6))[0];
        // Where the line `b = bv` crosses the block's sides: (along, side, side param).
        let hits_at = |bv: f64| {
            let mut hits: Vec<(f64, usize, f64)> = Vec::new();
            for k in 0..4 {
                let (q0, q1) = (proj(b.c[k]), proj(b.c[(k + 1) % 4]));
                if (q0[1] - bv) * (q1[1] - bv) < 0.0 {
                    let t = (bv - q0[1]) / (q1[1] - q0[1]);
                    hits.push((q0[0] + (q1[0] - q0[0]) * t, k, t));
                }
            }
            hits.sort_by(|x, y| x.0.total_cmp(&y.0));
            hits
        };
        let hits = hits_at(b_road);
        let mut main_edge = None;
        if hits.len() == 2 {
            let (from, to) = if rng.chance(0.5) { (hits[0], hits[1]) } else { (hits[1], hits[0]) };
            let na = self.attach_side(b.side[from.1], from.2);
            let dead_end = rng.chance(0.35);
            // Some complex roads dogleg: two right-angle corners 15-30 m apart, part way in.
            let mut bend = self.feature_rng();
            let dogleg = bend.chance(self.p.bend_share).then(|| {
                let corner_along = from.0 + (to.0 - from.0) * bend.range_f64(0.35, 0.5);
                let jog_m = bend.range_f64(15.0, 30.0) * if bend.chance(0.5) { 1.0 } else { -1.0 };
                (corner_along, jog_m)
            });
            let b_end = b_road + dogleg.map_or(0.0, |(_, jog_m)| jog_m);
            let far = hits_at(b_end).into_iter().find(|h| h.1 == to.1);
            // Straight on when the jogged line misses the far side.
            let (dogleg, far) = match (dogleg, far) {
                (Some(jog), Some(far)) => (Some(jog), far),
                _ => (None, to),
            };
            let mut nodes = vec![na];
            if let Some((corner_along, jog_m)) = dogleg {
                nodes.push(self.d.node(at(corner_along, b_road), Tags::new()));
                nodes.push(self.d.node(at(corner_along, b_road + jog_m), Tags::new()));
            }
            nodes.push(if dead_end {
                let end_along = from.0 + (far.0 - from.0) * 0.7;
                let end_b = if dogleg.is_some() { b_end } else { dot(sub(self.d.pos(na), o), eb) };
                self.d.node(at(end_along, end_b), Tags::new())
            } else {
                self.attach_side(b.side[far.1], far.2)
            });
            let legs: Vec<usize> = nodes.windows(2).map(|w| self.d.edge(w[0], w[1])).collect();
            let mut t = tags(&[("highway", "service")]);
            if rng.chance(0.5) {
                t.insert("maxspeed", "20");
            }
            self.d.line(legs.clone(), t);
            self.joins.push(Join { art_edge: b.side[from.1].edge, node: na, side_edge: legs[0] });
            for w in nodes.windows(2) {
                occ.caps.push((self.d.pos(w[0]), self.d.pos(w[1]), 8.0));
            }
            main_edge = Some(legs[0]);
        }

        // Commercial strips along some arterial sides.
        let mut strips = 0;
        for (k, side_clear) in clear.iter_mut().enumerate() {
            if b.kind[k] == SideKind::Arterial && strips < 2 && rng.chance(0.45) {
                strips += 1;
                let cell = Cell {
                    c: b.c,
                    clear: b.clear,
                    kind: [0, 1, 2, 3].map(|j| if j == k { SideKind::Arterial } else { SideKind::Gap }),
                };
                self.strip_fill(&cell, k, &mut occ, rng);
                *side_clear += 34.0;
            }
        }
        for c in clear.iter_mut() {
            *c += 6.0;
        }
        let land = inset_convex(&b.c, &clear.map(|c| c - 3.0));
        let brand = brand(rng);
        let (ko, en) = self.names.stem();
        let danji_name = if rng.chance(0.5) { format!("{brand} {ko}") } else { format!("{ko} {brand}") };
        let mut lt = tags(&[("landuse", "residential"), ("residential", "apartments")]);
        lt.insert("name", format!("{danji_name}아파트"));
        lt.insert("name:en", format!("{en} Apartments"));
        self.d.closed_way(&land, lt);

        if let Some(e) = main_edge {
            let n_spurs = rng.range_i64(1, 3);
            for _ in 0..n_spurs {
                let t = rng.range_f64(0.25, 0.8);
                let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
                let len = rng.range_f64(35.0, 70.0);
                let start_p = self.d.edge_point(e, t);
                let end_p = along(start_p, eb, sign * len);
                if !inside(&b.c, &clear, &[end_p]) || !occ.seg_free(start_p, end_p, 6.0) {
                    continue;
                }
                let ns = self.d.attach(e, t);
                let ne = self.d.node(end_p, Tags::new());
                let se = self.d.edge(ns, ne);
                self.d.line(vec![se], tags(&[("highway", "service"), ("service", "parking_aisle")]));
                occ.caps.push((start_p, end_p, 6.0));
                // A parking lot at the end of the spur.
                let lot_corner = along(along(end_p, ea, -15.0), eb, if sign > 0.0 { 7.0 } else { -37.0 });
                let lot = rect(lot_corner, ea, 30.0, 30.0);
                if inside(&b.c, &clear, &lot) && occ.free(&lot, 2.0) {
                    self.d.closed_way(&lot, tags(&[("amenity", "parking"), ("parking", "surface")]));
                    occ.add(lot);
                }
            }
        }

        // A school in a corner.
        if rng.chance(0.5) {
            let (sw, sd) = (rng.range_f64(110.0, 140.0), rng.range_f64(85.0, 100.0));
            for corner in [[amin, bmin], [amax - sw, bmin], [amax - sw, bmax - sd], [amin, bmax - sd]] {
                let mut placed = false;
                for step in 0..12 {
                    let f = step as f64 * 10.0;
                    let ca = if corner[0] <= amin + 1.0 { corner[0] + f } else { corner[0] - f };
                    let cb = if corner[1] <= bmin + 1.0 { corner[1] + f } else { corner[1] - f };
                    let r = rect(at(ca, cb), ea, sw, sd);
                    if inside(&b.c, &clear, &r) && occ.free(&r, 4.0) {
                        let mut tmp = Occ::default();
                        if self.school_on(&r, &mut tmp, rng) {
                            occ.add(r);
                            placed = true;
                        }
                        break;
                    }
                }
                if placed {
                    break;
                }
            }
        }

        // The complex's park with a plaza, beside the main road, joined to it by a footway.
        if let Some(e) = main_edge {
            let t = rng.range_f64(0.3, 0.6);
            let rp = self.d.edge_point(e, t);
            let (pw, pd) = (rng.range_f64(45.0, 70.0), rng.range_f64(35.0, 50.0));
            let side = if rng.chance(0.5) { 1.0 } else { -1.0 };
            let corner = along(along(rp, ea, -0.5 * pw), eb, if side > 0.0 { 10.0 } else { -10.0 - pd });
            let park = rect(corner, ea, pw, pd);
            if inside(&b.c, &clear, &park) && occ.free(&park, 3.0) {
                occ.add(park);
                let mut pt = tags(&[("leisure", "park")]);
                pt.insert("name", format!("{danji_name} 중앙공원"));
                self.d.closed_way(&park, pt);
                let c = centroid(&park);
                let plaza = rect(along(along(c, ea, -12.0), eb, -9.0), ea, 24.0, 18.0);
                let pw_id = self.d.closed_way(
                    &plaza,
                    tags(&[("highway", "pedestrian"), ("area", "yes"), ("surface", "paving_stones")]),
                );
                // The plaza corner nearest the road.
                let ring_nodes = self.d.ways[pw_id].0.clone();
                let near = *ring_nodes[..4]
                    .iter()
                    .min_by(|x, y| dist(self.d.pos(**x), rp).total_cmp(&dist(self.d.pos(**y), rp)))
                    .expect("plaza has corners");
                let road_node = self.d.attach(e, t);
                self.d.way(vec![near, road_node], tags(&[("highway", "footway")]));
                // A playground corner.
                let play = rect(along(park[0], sub(park[2], park[0]), 0.05), ea, 12.0, 10.0);
                self.d.closed_way(&play, tags(&[("leisure", "playground")]));
            }
            // Grass strips along the road.
            let g_corner = along(self.d.edge_point(e, 0.1), eb, if side > 0.0 { -18.0 } else { 8.0 });
            let grass = rect(g_corner, ea, 30.0, 10.0);
            if inside(&b.c, &clear, &grass) && occ.free(&grass, 2.0) {
                occ.add(grass);
                self.d.closed_way(&grass, tags(&[("landuse", "grass")]));
            }
        }

        // The towers.
        let era = rng.next_f64();
        let (levels_lo, levels_hi, slab_share) = if era < 0.3 {
            (12, 15, 0.95)
        } else if era < 0.7 {
            (15, 25, 0.6)
        } else {
            (22, 35, 0.25)
        };
        let mut dong = 101;
        let (a_lo, a_hi) = (amin + 5.0, amax - 5.0);
        let slabs = rng.chance(slab_share);
        let (bw_lo, bw_hi, bd_lo, bd_hi) = if slabs { (45.0, 80.0, 11.0, 14.0) } else { (22.0, 30.0, 20.0, 28.0) };
        let avg_height = 0.5 * (levels_lo + levels_hi) as f64 * 3.0;
        let pitch = (0.45 * avg_height).clamp(28.0, 60.0) / self.density.sqrt() + bd_hi;
        // Rows start at the clearance of the side that runs along `ea` at the low end.
        let mut brow = bmin;
        for (k, side_clear) in clear.iter().enumerate() {
            let (q0, q1) = (proj(b.c[k]), proj(b.c[(k + 1) % 4]));
            let along_ea = dot(unit(sub(b.c[(k + 1) % 4], b.c[k])), ea).abs() > 0.9;
            if along_ea && q0[1].max(q1[1]) < 0.5 * (bmin + bmax) {
                brow = brow.max(q0[1].max(q1[1]) + side_clear + 1.0);
            }
        }
        let mut row = 0;
        while brow < bmax {
            let mut a = a_lo + if row % 2 == 1 { rng.range_f64(10.0, 25.0) } else { rng.range_f64(0.0, 8.0) };
            while a < a_hi {
                let w = rng.range_f64(bw_lo, bw_hi);
                let dd = rng.range_f64(bd_lo, bd_hi);
                let r = rect(at(a, brow), ea, w, dd);
                if inside(&b.c, &clear, &r) && occ.free(&r, 8.0) {
                    occ.add(r);
                    let shape = if slabs { Shape::Rect } else { Shape::Plus };
                    let ring = shape_ring(&r, shape, rng);
                    let name = rng.chance(0.5).then(|| format!("{dong}동"));
                    dong += 1;
                    self.bldgs.push(Bldg {
                        ring,
                        rect: r,
                        kind: "apartments",
                        levels: rng.range_i64(levels_lo, levels_hi) as u32,
                        m_per_level: rng.range_f64(3.0, 3.2),
                        roof: None,
                        name,
                    });
                    a += w + rng.range_f64(14.0, 26.0) / self.density;
                } else {
                    a += 6.0;
                }
            }
            brow += pitch * rng.range_f64(0.95, 1.1);
            row += 1;
        }
        // The complex's shopping building (sangga) near the entrance.
        if let Some(e) = main_edge {
            let rp = self.d.edge_point(e, 0.12);
            for off in [10.0, -30.0] {
                let r = rect(along(rp, eb, off), ea, 30.0, 18.0);
                if inside(&b.c, &clear, &r) && occ.free(&r, 3.0) {
                    occ.add(r);
                    self.bldgs.push(Bldg {
                        ring: r.to_vec(),
                        rect: r,
                        kind: "retail",
                        levels: rng.range_i64(2, 4) as u32,
                        m_per_level: rng.range_f64(3.5, 4.0),
                        roof: None,
                        name: Some(format!("{danji_name} 상가")),
                    });
                    break;
                }
            }
        }
    }

    /// Commercial lots along side `k` of a cell only.
    fn strip_fill(&mut self, cell: &Cell, k: usize, occ: &mut Occ, rng: &mut CounterRng) {
        let (p0, p1) = (cell.c[k], cell.c[(k + 1) % 4]);
        let len = dist(p0, p1);
        let ea = unit(sub(p1, p0));
        let eb = left(ea);
        let mut a = rng.range_f64(0.0, 6.0);
        while a < len {
            let lot = self.lot_style(SideKind::Arterial, rng);
            let d = lot.d_m.min(30.0);
            let corner = along(along(p0, ea, a), eb, cell.clear[k] + lot.setback_m);
            let r = rect(corner, ea, lot.w_m, d);
            if inside(&cell.c, &cell.clear, &r) && occ.free(&r, 1.5) {
                occ.add(r);
                let ring = shape_ring(&r, lot.shape, rng);
                self.bldgs.push(Bldg {
                    ring,
                    rect: r,
                    kind: lot.kind,
                    levels: lot.levels,
                    m_per_level: lot.m_per_level,
                    roof: None,
                    name: None,
                });
                a += lot.w_m + lot.gap_m / self.density;
            } else {
                a += 4.0;
            }
        }
    }

    /// A forested hill in the middle of the block, houses and shops around it.
    fn hill_block(&mut self, b: &Block, rng: &mut CounterRng) -> Hill {
        let center = b.bilerp(0.5, 0.5);
        let max_clear = b.clear.iter().copied().fold(0.0, f64::max);
        let half_min = (0..4).map(|k| point_seg_dist(center, b.c[k], b.c[(k + 1) % 4])).fold(f64::INFINITY, f64::min);
        // From the centre to the nearest arterial building line.
        let room_m = half_min - max_clear;
        let radius_m = (room_m - 30.0).max(60.0);
        let ring: Vec<P> = (0..24)
            .map(|i| {
                let ang = std::f64::consts::TAU * i as f64 / 24.0;
                let r = radius_m * rng.range_f64(0.88, 1.0);
                along(center, [ang.cos(), ang.sin()], r)
            })
            .collect();
        let (ko, en) = self.names.stem();
        let mut t = if rng.chance(0.5) { tags(&[("natural", "wood")]) } else { tags(&[("landuse", "forest")]) };
        t.insert("name", format!("{ko}산"));
        t.insert("name:en", format!("{en}san"));
        self.d.closed_way(&ring, t);
        let height_m = rng.range_f64(60.0, 120.0);
        let mut pk = tags(&[("natural", "peak")]);
        pk.insert("ele", format!("{:.0}", 15.0 + height_m));
        pk.insert("name", format!("{ko}산"));
        let peak = self.d.node(center, pk);
        // A hiking path from the block's side 0 up to the peak.
        let gate = self.attach_side(b.side[0], 0.5);
        let gp = self.d.pos(gate);
        let mid = along(lerp(gp, center, 0.5), left(unit(sub(center, gp))), 20.0);
        let m = self.d.node(mid, Tags::new());
        self.d.way(vec![gate, m, peak], tags(&[("highway", "path"), ("surface", "dirt")]));
        let mut occ = Occ::default();
        occ.caps.push((gp, mid, 6.0));
        occ.caps.push((mid, center, 6.0));
        occ.circles.push((center, radius_m + 8.0));
        self.hill_road(b, center, radius_m, room_m, &mut occ);
        let cell = Cell { c: b.c, clear: b.clear, kind: b.kind };
        self.perimeter_fill(&cell, &mut occ, rng);
        // A second ring of houses behind the shops.
        let inner = Cell { c: b.c, clear: b.clear.map(|c| c + 32.0), kind: [SideKind::Street; 4] };
        self.perimeter_fill(&inner, &mut occ, rng);
        Hill { center, radius_m, height_m }
    }

    /// With chance `bend_share`, a residential road across the hill's block that winds
    /// round the far side of the hill (away from the hiking path on side 0): in from
    /// side 3 towards the peak, round half a circle `HILL_ROAD_GAP_M` outside the
    /// forest, and out to side 1. Each end meets the circle at a right angle. `room_m` is
    /// the distance from `center` to the nearest arterial building line.
    fn hill_road(&mut self, b: &Block, center: P, radius_m: f64, room_m: f64, occ: &mut Occ) {
        let mut rng = self.feature_rng();
        if !rng.chance(self.p.bend_share) {
            return;
        }
        let road_r = radius_m + HILL_ROAD_GAP_M;
        // The road's outer edge stays 6 m inside the arterials' building lines.
        if road_r + 10.0 > room_m {
            return;
        }
        let (entry, exit) = (b.bilerp(0.0, 0.5), b.bilerp(1.0, 0.5));
        let dir_in = unit(sub(entry, center));
        let dir_out = unit(sub(exit, center));
        // Round the side facing side 2 (`t` = 1), away from the path.
        let toward_side2 = unit(sub(b.bilerp(0.5, 1.0), center));
        let a_in = dir_in[1].atan2(dir_in[0]);
        let mut sweep = dir_out[1].atan2(dir_out[0]) - a_in;
        sweep = sweep.rem_euclid(std::f64::consts::TAU);
        if dot(rotate(dir_in, 0.5 * sweep), toward_side2) < 0.0 {
            sweep -= std::f64::consts::TAU;
        }
        let steps = (sweep.abs() / 12f64.to_radians()).ceil() as usize;
        let na = self.attach_side(b.side[3], 0.5);
        let mut nodes = vec![na];
        for k in 0..=steps {
            let ang = a_in + sweep * k as f64 / steps as f64;
            nodes.push(self.d.node(along(center, [ang.cos(), ang.sin()], road_r), Tags::new()));
        }
        nodes.push(self.attach_side(b.side[1], 0.5));
        let legs: Vec<usize> = nodes.windows(2).map(|w| self.d.edge(w[0], w[1])).collect();
        let t = self.residential_tags(b.road[3], &mut rng);
        self.d.line(legs.clone(), t);
        self.joins.push(Join { art_edge: b.side[3].edge, node: na, side_edge: legs[0] });
        let last = *nodes.last().expect("road has nodes");
        self.joins.push(Join { art_edge: b.side[1].edge, node: last, side_edge: *legs.last().expect("legs") });
        for w in nodes.windows(2) {
            occ.caps.push((self.d.pos(w[0]), self.d.pos(w[1]), 7.0));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn river_features(
        &mut self,
        r: &River,
        lu: f64,
        inter: &[Vec<usize>],
        v_art: &[usize],
        surface_rail: bool,
        rng: &mut CounterRng,
    ) {
        let step = 40.0;
        let (u_lo, u_hi) = (-80.0, lu + 80.0);
        let n = ((u_hi - u_lo) / step).ceil() as usize;
        let us: Vec<f64> = (0..=n).map(|k| u_lo + (u_hi - u_lo) * k as f64 / n as f64).collect();
        let mut water: Vec<P> = vec![[u_lo, -80.0], [u_hi, -80.0]];
        water.extend(us.iter().rev().map(|&u| [u, r.bank_v(u)]));
        let outer = self.d.closed_way(&water, Tags::new());
        let mut members = vec![(Ref::Way(outer), "outer")];
        if rng.chance(0.5) {
            // A sandbar island: an inner ring (clockwise).
            let c = [rng.range_f64(0.3, 0.7) * lu, 0.35 * r.width_m];
            let (ra, rb) = (rng.range_f64(80.0, 160.0), rng.range_f64(15.0, 0.2 * r.width_m + 15.0));
            let island: Vec<P> = (0..16)
                .rev()
                .map(|i| {
                    let ang = std::f64::consts::TAU * i as f64 / 16.0;
                    [c[0] + ra * ang.cos(), c[1] + rb * ang.sin()]
                })
                .collect();
            let inner = self.d.closed_way(&island, Tags::new());
            members.push((Ref::Way(inner), "inner"));
        }
        let mut wt = tags(&[("type", "multipolygon"), ("natural", "water"), ("water", "river")]);
        wt.insert("name", "한강");
        wt.insert("name:en", "Hangang River");
        self.d.relation(members, wt);
        let centre: Vec<P> = us.iter().rev().map(|&u| [u, 0.5 * (r.bank_v(u) - 80.0)]).collect();
        let mut ct = tags(&[("waterway", "river")]);
        ct.insert("name", "한강");
        ct.insert("name:en", "Hangang River");
        self.d.polyline(&centre, ct);

        // The riverside park between the water and the embankment.
        let riverside = self.arterials[v_art[0]].clone();
        let rail_v = r.v0_m - riverside.half_width_m - 9.0;
        let embankment_v = if surface_rail { rail_v - 9.0 } else { r.v0_m - riverside.clear_m() - 2.0 };
        // The expressway's centre line (between its carriageways) swings with the bank.
        let exp_v = |u: f64| embankment_v - 26.0 + 0.5 * (r.bank_v(u) - r.width_m);
        let park_top = |u: f64| if self.p.expressway { exp_v(u) - 18.0 } else { embankment_v };
        let park_us: Vec<f64> = us.iter().copied().filter(|u| (-30.0..=lu + 30.0).contains(u)).collect();
        let mut park: Vec<P> = park_us.iter().map(|&u| [u, r.bank_v(u) + 3.0]).collect();
        park.extend(park_us.iter().rev().map(|&u| [u, park_top(u)]));
        let (ko, en) = self.names.stem();
        let mut pt = tags(&[("leisure", "park")]);
        pt.insert("name", format!("{ko}한강공원"));
        pt.insert("name:en", format!("{en} Hangang Park"));
        self.d.closed_way(&park, pt);
        let cy: Vec<P> = park_us.iter().map(|&u| [u, r.bank_v(u) + 10.0]).collect();
        let mut cyt = tags(&[("highway", "cycleway"), ("surface", "asphalt")]);
        cyt.insert("name", "한강자전거길");
        self.d.polyline(&cy, cyt);
        // The riverside footway, with nodes where connectors from the city arrive.
        let nu = inter.len() - 1;
        let mut connectors = Vec::new();
        for i in 0..nu {
            if rng.chance(0.5) {
                let e = self.d.edges.iter().position(|e| e.a == inter[i][0] && e.b == inter[i + 1][0]).expect("edge");
                connectors.push((e, rng.range_f64(0.4, 0.6)));
            }
        }
        let fv = |u: f64| (r.bank_v(u) + 18.0).min(park_top(u) - 3.0);
        let mut foot: Vec<(f64, usize)> = park_us.iter().map(|&u| (u, usize::MAX)).collect();
        let mut conn_nodes = Vec::new();
        for &(e, t) in &connectors {
            let u = self.d.edge_point(e, t)[0];
            let n = self.d.node([u, fv(u)], Tags::new());
            foot.push((u, n));
            conn_nodes.push(n);
        }
        foot.sort_by(|x, y| x.0.total_cmp(&y.0));
        let foot_nodes: Vec<usize> =
            foot.iter().map(|&(u, n)| if n == usize::MAX { self.d.node([u, fv(u)], Tags::new()) } else { n }).collect();
        self.d.way(foot_nodes, tags(&[("highway", "footway")]));
        let underpass_bottom = |u: f64| if self.p.expressway { exp_v(u) - 14.0 } else { rail_v - 6.0 };
        let conn_us: Vec<f64> = connectors.iter().map(|&(e, t)| self.d.edge_point(e, t)[0]).collect();
        for (&(e, t), &park_node) in connectors.iter().zip(&conn_nodes) {
            let road_node = self.d.attach(e, t);
            let rp = self.d.pos(road_node);
            if surface_rail || self.p.expressway {
                // Under the railway and the expressway through an underpass (a "nadeulmok").
                let n1 = self.d.node([rp[0], r.v0_m - riverside.half_width_m - 3.0], Tags::new());
                let n2 = self.d.node([rp[0], underpass_bottom(rp[0])], Tags::new());
                self.d.way(vec![road_node, n1], tags(&[("highway", "footway")]));
                self.d.way(vec![n1, n2], tags(&[("highway", "footway"), ("tunnel", "yes"), ("layer", "-1")]));
                self.d.way(vec![n2, park_node], tags(&[("highway", "footway")]));
            } else {
                self.d.way(vec![road_node, park_node], tags(&[("highway", "footway")]));
            }
        }
        if surface_rail {
            let pts: Vec<P> = (0..=((lu + 160.0) / 100.0).ceil() as usize)
                .map(|k| [(-80.0 + 100.0 * k as f64).min(lu + 80.0), rail_v])
                .collect();
            let mut t = tags(&[("railway", "rail"), ("usage", "main"), ("electrified", "contact_line")]);
            t.insert("voltage", "25000");
            t.insert("frequency", "60");
            t.insert("gauge", "1435");
            t.insert("name", "경의중앙선");
            t.insert("name:en", "Gyeongui-Jungang Line");
            self.d.polyline(&pts, t);
        }
        if self.p.expressway {
            let nu = inter.len() - 1;
            let edges: Vec<usize> = (0..nu)
                .map(|i| self.d.edges.iter().position(|e| e.a == inter[i][0] && e.b == inter[i + 1][0]).expect("edge"))
                .collect();
            self.expressway(lu, &exp_v, &edges, &conn_us, !surface_rail, v_art[0]);
        }
    }

    /// The riverside expressway: two one-way carriageways 14 m apart along the river
    /// (`highway=trunk`, 80 km/h), from beyond the district's west edge to beyond its
    /// east edge. Unless a railway runs between it and the riverside arterial (`ramps`
    /// false), an exit ramp leaves the city-side carriageway (which runs west, -u) to
    /// the right and meets the arterial at a T-junction, and an entry ramp leaves the
    /// arterial and merges into it; each bends where it turns towards the arterial (the
    /// twin builder rounds the corner to about 25 m radius). Ramps are `secondary_link`
    /// (50 km/h), so the twin builder gives the arterial and the expressway priority over
    /// them. They keep 15 m clear of the footway connectors, which pass under the
    /// expressway and the ramps.
    fn expressway(
        &mut self,
        lu: f64,
        exp_v: &dyn Fn(f64) -> f64,
        riverside_edges: &[usize],
        connector_us: &[f64],
        ramps: bool,
        riverside: usize,
    ) {
        let mut rng = self.feature_rng();
        let (ko, en) = self.names.stem();
        let lanes = if rng.chance(0.5) { "3" } else { "2" };
        let n = ((lu + 200.0) / 50.0).ceil() as usize;
        let us: Vec<f64> = (0..=n).map(|k| -100.0 + (lu + 200.0) * k as f64 / n as f64).collect();
        let west: Vec<usize> = us.iter().rev().map(|&u| self.d.node([u, exp_v(u) + 7.0], Tags::new())).collect();
        let east: Vec<usize> = us.iter().map(|&u| self.d.node([u, exp_v(u) - 7.0], Tags::new())).collect();
        let mut t = tags(&[("highway", "trunk"), ("oneway", "yes"), ("maxspeed", "80"), ("lanes", lanes)]);
        t.insert("name", format!("{ko}강변로"));
        t.insert("name:en", format!("{en}-gangbyeon-ro"));
        t.insert("surface", "asphalt");
        if ramps {
            let clear_m = self.arterials[riverside].clear_m();
            let k_exit = rng.range_i64(0, riverside_edges.len() as i64 - 1) as usize;
            let k_entry = rng.range_i64(0, riverside_edges.len() as i64 - 1) as usize;
            let mut used: Vec<usize> = Vec::new();
            for (is_exit, k) in [(true, k_exit), (false, k_entry)] {
                let e = riverside_edges[k];
                let t_j = if is_exit { 0.1 } else { 0.9 };
                let jp = self.d.edge_point(e, t_j);
                // The ramp's end on the expressway: upstream (east) of the junction for
                // the exit, downstream (west) for the entry.
                let u_x = if is_exit { jp[0] + RAMP_M } else { jp[0] - RAMP_M };
                let (u0, u1) = (jp[0].min(u_x), jp[0].max(u_x));
                let (ea, eb) = (self.d.edge_point(e, 0.0)[0], self.d.edge_point(e, 1.0)[0]);
                let on_edge = u0 > ea.min(eb) + 30.0 && u1 < ea.max(eb) - 30.0;
                let clear = connector_us.iter().all(|&c| c < u0 - 15.0 || c > u1 + 15.0);
                let wi = (0..west.len())
                    .min_by(|&a, &b| {
                        (self.d.pos(west[a])[0] - u_x).abs().total_cmp(&(self.d.pos(west[b])[0] - u_x).abs())
                    })
                    .expect("carriageway has nodes");
                if !on_edge || !clear || wi == 0 || wi + 1 == west.len() || used.contains(&wi) {
                    continue;
                }
                used.push(wi);
                let j = self.d.attach(e, t_j);
                let along_u = if is_exit { 18.0 } else { -18.0 };
                let bend = self.d.node([jp[0] + along_u, jp[1] - clear_m - 4.0], Tags::new());
                let nodes = if is_exit { [west[wi], bend, j] } else { [j, bend, west[wi]] };
                let legs = vec![self.d.edge(nodes[0], nodes[1]), self.d.edge(nodes[1], nodes[2])];
                let side_edge = if is_exit { legs[1] } else { legs[0] };
                let mut rt =
                    tags(&[("highway", "secondary_link"), ("oneway", "yes"), ("lanes", "1"), ("maxspeed", "50")]);
                rt.insert("surface", "asphalt");
                self.d.line(legs, rt);
                self.joins.push(Join { art_edge: e, node: j, side_edge });
            }
        }
        self.d.way(west, t.clone());
        self.d.way(east, t);
    }

    /// A subway line in tunnel under an arterial, with stations and entrances.
    fn subway(&mut self, inter: &[Vec<usize>], u_art: &[usize], v_art: &[usize], rng: &mut CounterRng) {
        let nu = inter.len() - 1;
        let nv = inter[0].len() - 1;
        let (path, art): (Vec<usize>, usize) = if nv >= 2 {
            let j = rng.range_i64(1, nv as i64 - 1) as usize;
            ((0..=nu).map(|i| inter[i][j]).collect(), v_art[j])
        } else {
            let i = rng.range_i64(1, nu as i64 - 1) as usize;
            ((0..=nv).map(|j| inter[i][j]).collect(), u_art[i])
        };
        let pts: Vec<P> = path.iter().map(|n| self.d.pos(*n)).collect();
        let first_dir = unit(sub(pts[0], pts[1]));
        let last_dir = unit(sub(pts[pts.len() - 1], pts[pts.len() - 2]));
        let line_no = rng.range_i64(2, 9);
        let mut nodes = vec![self.d.node(along(pts[0], first_dir, 80.0), Tags::new())];
        let n_stations = 1 + rng.range_i64(0, 1) as usize;
        let mut station_at: Vec<usize> = (1..pts.len() - 1).collect();
        while station_at.len() > n_stations {
            let k = rng.range_i64(0, station_at.len() as i64 - 1) as usize;
            station_at.remove(k);
        }
        let hw = self.arterials[art].half_width_m;
        for (k, p) in pts.iter().enumerate() {
            if station_at.contains(&k) {
                let (ko, en) = self.names.stem();
                let mut st = tags(&[("railway", "station"), ("station", "subway"), ("public_transport", "station")]);
                st.insert("name", format!("{ko}역"));
                st.insert("name:en", format!("{en} Station"));
                st.insert("subway", "yes");
                let dir = unit(sub(pts[(k + 1).min(pts.len() - 1)], pts[k.saturating_sub(1)]));
                nodes.push(self.d.node(along(*p, dir, -20.0), Tags::new()));
                nodes.push(self.d.node(along(*p, dir, 25.0), st));
                nodes.push(self.d.node(along(*p, dir, 70.0), Tags::new()));
                for (m, s) in [(1.0, 1.0), (-1.0, -1.0)] {
                    let q = along(along(*p, dir, m * (hw + 12.0)), left(dir), s * (hw + 2.5));
                    let mut et = tags(&[("railway", "subway_entrance")]);
                    et.insert("ref", if m > 0.0 { "1" } else { "2" });
                    self.d.node(q, et);
                }
            } else {
                nodes.push(self.d.node(*p, Tags::new()));
            }
        }
        nodes.push(self.d.node(along(pts[pts.len() - 1], last_dir, 80.0), Tags::new()));
        let mut t = tags(&[("railway", "subway"), ("tunnel", "yes"), ("layer", "-1")]);
        t.insert("name", format!("서울 지하철 {line_no}호선"));
        t.insert("name:en", format!("Seoul Subway Line {line_no}"));
        t.insert("gauge", "1435");
        t.insert("electrified", "contact_line");
        self.d.way(nodes, t);
    }

    /// Crosswalks near both ends of every arterial edge, and mapped sidewalks along
    /// arterials tagged `sidewalk=separate`.
    fn crossings_and_sidewalks(&mut self, _rng: &mut CounterRng) {
        let art_edges = self.art_edges.clone();
        for ae in art_edges {
            let len = self.d.edge_len(ae.edge);
            let art = self.arterials[self.line_arterial[&ae.line]].clone();
            let (a, b) = (self.d.edges[ae.edge].a, self.d.edges[ae.edge].b);
            let dir = unit(sub(self.d.pos(b), self.d.pos(a)));
            let nrm = left(dir);
            let off = art.half_width_m + 2.0;
            let d_a = self.arterials[ae.cross_at[0]].half_width_m + 5.0;
            let d_b = self.arterials[ae.cross_at[1]].half_width_m + 5.0;
            if len < d_a + d_b + 40.0 {
                continue;
            }
            let mut ends = Vec::new();
            for (t, junction) in [(d_a / len, a), (1.0 - d_b / len, b)] {
                let signal = self.d.nodes[junction].1.is("highway", "traffic_signals");
                let kind = if signal { "traffic_signals" } else { "marked" };
                let n = self.d.attach(ae.edge, t);
                self.d.tag_node(n, "highway", "crossing");
                self.d.tag_node(n, "crossing", kind);
                self.d.tag_node(n, "crossing:markings", "zebra");
                let p = self.d.pos(n);
                let l = self.d.node(along(p, nrm, off), Tags::new());
                let r = self.d.node(along(p, nrm, -off), Tags::new());
                let mut ct = tags(&[("highway", "footway"), ("footway", "crossing"), ("crossing", kind)]);
                ct.insert("crossing:markings", "zebra");
                self.d.way(vec![r, n, l], ct);
                ends.push((t, l, r));
            }
            if !art.separate_sidewalks {
                continue;
            }
            // Sidewalks on both sides, crossing the side roads that meet this edge.
            for side in [1.0, -1.0] {
                let mut seq: Vec<(f64, usize)> = vec![
                    (ends[0].0, if side > 0.0 { ends[0].1 } else { ends[0].2 }),
                    (ends[1].0, if side > 0.0 { ends[1].1 } else { ends[1].2 }),
                ];
                let joins: Vec<Join> = self.joins.iter().filter(|j| j.art_edge == ae.edge).copied().collect();
                for j in joins {
                    let jp = self.d.pos(j.node);
                    let t = dot(sub(jp, self.d.pos(a)), dir) / len;
                    if t <= ends[0].0 + 0.01 || t >= ends[1].0 - 0.01 {
                        continue;
                    }
                    let se = self.d.edges[j.side_edge].clone();
                    let other = if se.a == j.node { se.b } else { se.a };
                    let op = self.d.pos(other);
                    if cross(dir, sub(op, jp)) * side <= 0.0 {
                        continue;
                    }
                    let se_len = self.d.edge_len(j.side_edge);
                    let cos = dot(unit(sub(op, jp)), nrm).abs().max(0.3);
                    let dd = (off / cos) / se_len;
                    if dd >= 0.5 {
                        continue;
                    }
                    let st = if se.a == j.node { dd } else { 1.0 - dd };
                    let x = self.d.attach(j.side_edge, st);
                    self.d.tag_node(x, "highway", "crossing");
                    self.d.tag_node(x, "crossing", "unmarked");
                    seq.push((t, x));
                }
                seq.sort_by(|x, y| x.0.total_cmp(&y.0));
                let nodes: Vec<usize> = seq.into_iter().map(|(_, n)| n).collect();
                self.d
                    .way(nodes, tags(&[("highway", "footway"), ("footway", "sidewalk"), ("surface", "paving_stones")]));
            }
        }
    }

    /// `turn:lanes` on some arterial ways.
    fn turn_lanes(&mut self, rng: &mut CounterRng) {
        let pattern = |k: u32| -> String {
            match k {
                0 | 1 => "left;through;right".to_string(),
                2 => "left;through|through;right".to_string(),
                k => {
                    let mut v = vec!["left".to_string()];
                    v.extend((0..k - 2).map(|_| "through".to_string()));
                    v.push("through;right".to_string());
                    v.join("|")
                }
            }
        };
        for l in 0..self.d.lines.len() {
            if !self.line_arterial.contains_key(&l) {
                continue;
            }
            for w in self.d.lines[l].ways.clone() {
                if !rng.chance(0.25) {
                    continue;
                }
                let t = &mut self.d.ways[w].1;
                let lanes: u32 = t.get("lanes").and_then(|s| s.parse().ok()).unwrap_or(4);
                let fwd: u32 = t.get("lanes:forward").and_then(|s| s.parse().ok()).unwrap_or(lanes / 2);
                let bwd: u32 = t.get("lanes:backward").and_then(|s| s.parse().ok()).unwrap_or(lanes - fwd);
                t.insert("lanes:forward", fwd.to_string());
                t.insert("lanes:backward", bwd.to_string());
                t.insert("turn:lanes:forward", pattern(fwd));
                t.insert("turn:lanes:backward", pattern(bwd));
            }
        }
    }

    /// A `no_left_turn` restriction from the u-line into the v-line at `via`.
    fn restriction(&mut self, via: usize, u_line: usize, v_line: usize) {
        let vp = self.d.pos(via);
        let from = self.d.lines[u_line].ways.iter().copied().find(|&w| self.d.ways[w].0.last() == Some(&via));
        let Some(from) = from else { return };
        let fnodes = &self.d.ways[from].0;
        let arrive = sub(vp, self.d.pos(fnodes[fnodes.len() - 2]));
        let mut to = None;
        for &w in &self.d.lines[v_line].ways {
            let nodes = &self.d.ways[w].0;
            let depart = if nodes.first() == Some(&via) {
                sub(self.d.pos(nodes[1]), vp)
            } else if nodes.last() == Some(&via) {
                sub(self.d.pos(nodes[nodes.len() - 2]), vp)
            } else {
                continue;
            };
            if cross(arrive, depart) > 0.0 {
                to = Some(w);
            }
        }
        let Some(to) = to else { return };
        // The approach lanes say so too.
        let t = &mut self.d.ways[from].1;
        if t.has("turn:lanes:forward") {
            let fwd: usize = t.get("lanes:forward").and_then(|s| s.parse().ok()).unwrap_or(2);
            let mut v = vec!["through"; fwd.max(1)];
            let lastv = v.len() - 1;
            v[lastv] = "through;right";
            t.insert("turn:lanes:forward", v.join("|"));
        }
        self.d.relation(
            vec![(Ref::Way(from), "from"), (Ref::Node(via), "via"), (Ref::Way(to), "to")],
            tags(&[("type", "restriction"), ("restriction", "no_left_turn")]),
        );
    }

    /// Buildings to ways and relations, with tag coverage like Seoul's.
    fn emit_buildings(&mut self) {
        let mut rng = CounterRng::new(self.p.seed, 7);
        let h_share = self.p.height_tag_share;
        let l_share = self.p.levels_tag_share;
        let levels_from = (1.0 - l_share).min(h_share * 0.125);
        // Courtyard buildings: the largest rectangular commercial buildings.
        let mut big: Vec<(usize, f64)> = self
            .bldgs
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_rect() && matches!(b.kind, "commercial" | "office" | "retail"))
            .filter(|(_, b)| b.dims().0 >= 26.0 && b.dims().1 >= 24.0)
            .map(|(i, b)| (i, b.dims().0 * b.dims().1))
            .collect();
        big.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        let courtyard: Vec<usize> = big.iter().take(2).map(|x| x.0).collect();
        // Podium + tower buildings: tall offices and officetels.
        let podium: Vec<usize> = self
            .bldgs
            .iter()
            .enumerate()
            .filter(|(i, b)| {
                b.is_rect()
                    && !courtyard.contains(i)
                    && matches!(b.kind, "office" | "officetel" | "commercial")
                    && b.levels >= 10
                    && b.dims().0 >= 20.0
                    && b.dims().1 >= 18.0
            })
            .map(|(i, _)| i)
            .step_by(3)
            .take(6)
            .collect();
        let bldgs = std::mem::take(&mut self.bldgs);
        for (i, b) in bldgs.iter().enumerate() {
            debug_assert!(!ring_self_intersects(&b.ring), "building ring intersects itself");
            let roll = rng.next_f64();
            let height_m = b.levels as f64 * b.m_per_level;
            let mut t = tags(&[("building", b.kind)]);
            if roll < h_share {
                t.insert("height", fmt_m(height_m));
            }
            if roll >= levels_from && roll < levels_from + l_share {
                t.insert("building:levels", b.levels.to_string());
            }
            if let Some(shape) = b.roof {
                t.insert("roof:shape", shape);
                t.insert("roof:height", fmt_m(rng.range_f64(2.0, 3.0)));
            }
            if let Some(name) = &b.name {
                t.insert("name", name.clone());
            }
            if courtyard.contains(&i) {
                let outer = self.d.closed_way(&b.ring, Tags::new());
                let inner_rect = grow_rect(&b.rect, -8.0);
                let hole: Vec<P> = inner_rect.iter().rev().copied().collect();
                let inner = self.d.closed_way(&hole, Tags::new());
                t.insert("type", "multipolygon");
                self.d.relation(vec![(Ref::Way(outer), "outer"), (Ref::Way(inner), "inner")], t);
            } else if podium.contains(&i) {
                self.d.closed_way(&b.ring, t);
                let podium_levels = rng.range_i64(3, 5) as u32;
                let podium_h = podium_levels as f64 * b.m_per_level;
                let mut pt = tags(&[("building:part", "yes")]);
                pt.insert("building:levels", podium_levels.to_string());
                pt.insert("height", fmt_m(podium_h));
                self.d.closed_way(&b.ring, pt);
                let (w, d) = b.dims();
                let ea = unit(sub(b.rect[1], b.rect[0]));
                let tower = rect(along(along(b.rect[0], ea, 4.0), left(ea), 6.0), ea, w - 8.0, d - 10.0);
                let mut tt = tags(&[("building:part", "yes")]);
                tt.insert("building:levels", b.levels.to_string());
                tt.insert("building:min_level", podium_levels.to_string());
                tt.insert("min_height", fmt_m(podium_h));
                tt.insert("height", fmt_m(height_m));
                if rng.chance(0.5) {
                    tt.insert("roof:shape", "flat");
                }
                self.d.closed_way(&tower, tt);
            } else {
                self.d.closed_way(&b.ring, t);
            }
        }
        tracing::debug!(buildings = bldgs.len(), schools = self.schools, "buildings emitted");
    }
}

/// One lot's building.
struct Lot {
    w_m: f64,
    d_m: f64,
    gap_m: f64,
    setback_m: f64,
    kind: &'static str,
    levels: u32,
    m_per_level: f64,
    roof: Option<&'static str>,
    shape: Shape,
}
