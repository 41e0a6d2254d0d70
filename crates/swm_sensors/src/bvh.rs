//! A bounding-volume hierarchy over triangles for fast ray casts.
//!
//! # Build
//!
//! Top-down with the **binned surface-area heuristic** (Wald 2007): at each node the
//! triangles' centroids are sorted into [`SAH_BINS`] bins along the axis where the centroids
//! spread most, every bin boundary is costed as `area(L)·n(L) + area(R)·n(R)` (relative to
//! the parent's area, with a traversal cost of one triangle test), and the node becomes a leaf
//! when no split beats testing its triangles, or at most [`MAX_LEAF_TRIANGLES`] remain. Nodes
//! are stored depth-first in one array, the two children of an inner node next to each other.
//!
//! # Precision
//!
//! Geometry is stored in `f32` relative to the centre of the mesh's bounding box (`origin`),
//! which keeps about a tenth of a millimetre of resolution across a 5 km twin. Ray–triangle
//! tests are Möller–Trumbore with two-sided triangles; rays that graze a shared edge may
//! occasionally pass between two triangles (the test is not watertight), which a lidar sees
//! as a rare dropout.
//!
//! # Traversal
//!
//! A stack of node indices; the nearer child (by its box's entry distance) is visited first
//! and subtrees entered beyond the current closest hit are skipped.

/// Bins of the SAH sweep.
pub const SAH_BINS: usize = 16;
/// Largest leaf (unless the depth limit is reached).
pub const MAX_LEAF_TRIANGLES: usize = 4;
/// Deepest node: nodes this deep become leaves, so the traversal stack (one entry per
/// level) never overflows.
pub const MAX_DEPTH: usize = 60;

#[derive(Clone, Copy, Debug)]
struct Aabb {
    min: [f32; 3],
    max: [f32; 3],
}

impl Aabb {
    const EMPTY: Aabb = Aabb { min: [f32::INFINITY; 3], max: [f32::NEG_INFINITY; 3] };

    fn grow(&mut self, p: [f32; 3]) {
        for k in 0..3 {
            self.min[k] = self.min[k].min(p[k]);
            self.max[k] = self.max[k].max(p[k]);
        }
    }

    fn union(&mut self, o: &Aabb) {
        for k in 0..3 {
            self.min[k] = self.min[k].min(o.min[k]);
            self.max[k] = self.max[k].max(o.max[k]);
        }
    }

    fn area(&self) -> f32 {
        let d = [self.max[0] - self.min[0], self.max[1] - self.min[1], self.max[2] - self.min[2]];
        if d.iter().any(|v| *v < 0.0) {
            return 0.0;
        }
        2.0 * (d[0] * d[1] + d[1] * d[2] + d[2] * d[0])
    }
}

/// A node: a leaf when `count > 0` (triangles `first..first + count`), else an inner node
/// whose children are `first` and `first + 1`.
#[derive(Clone, Copy, Debug)]
struct Node {
    bounds: Aabb,
    first: u32,
    count: u32,
}

/// A triangle ready for Möller–Trumbore: a corner and two edges, relative to the origin.
#[derive(Clone, Copy, Debug)]
struct Tri {
    v0: [f32; 3],
    e1: [f32; 3],
    e2: [f32; 3],
}

/// The BVH; see the module docs.
#[derive(Clone, Debug)]
pub struct Bvh {
    origin: [f64; 3],
    nodes: Vec<Node>,
    tris: Vec<Tri>,
    /// Original index of each stored triangle.
    tri_index: Vec<u32>,
}

/// The closest triangle a ray hit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TriangleHit {
    /// Distance along the (unit) direction, metres.
    pub t_m: f64,
    /// Index of the triangle in the slice the BVH was built from.
    pub triangle: u32,
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

impl Bvh {
    /// Builds the hierarchy over `triangles` (corners in the twin frame). Triangles with a
    /// non-finite corner are left out.
    pub fn build(triangles: &[[[f64; 3]; 3]]) -> Self {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        let finite = |t: &[[f64; 3]; 3]| t.iter().flatten().all(|v| v.is_finite());
        for t in triangles.iter().filter(|t| finite(t)) {
            for p in t {
                for k in 0..3 {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
        }
        let origin = if lo[0].is_finite() {
            [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2])]
        } else {
            [0.0; 3]
        };
        let rel = |p: [f64; 3]| [(p[0] - origin[0]) as f32, (p[1] - origin[1]) as f32, (p[2] - origin[2]) as f32];
        let mut items: Vec<u32> = Vec::with_capacity(triangles.len());
        let mut boxes = Vec::with_capacity(triangles.len());
        let mut centroids = Vec::with_capacity(triangles.len());
        for (i, t) in triangles.iter().enumerate() {
            let mut b = Aabb::EMPTY;
            let c = if finite(t) {
                items.push(i as u32);
                for p in t {
                    b.grow(rel(*p));
                }
                [0.5 * (b.min[0] + b.max[0]), 0.5 * (b.min[1] + b.max[1]), 0.5 * (b.min[2] + b.max[2])]
            } else {
                [0.0; 3]
            };
            boxes.push(b);
            centroids.push(c);
        }
        let mut nodes = Vec::with_capacity(2 * items.len() / MAX_LEAF_TRIANGLES + 1);
        let mut root = Aabb::EMPTY;
        for &i in &items {
            root.union(&boxes[i as usize]);
        }
        nodes.push(Node { bounds: root, first: 0, count: items.len() as u32 });
        let n = items.len();
        if n > 0 {
            let mut builder = Builder { boxes: &boxes, centroids: &centroids, items: &mut items, nodes: &mut nodes };
            builder.subdivide(0, 0, n, 0);
        }
        let tris = items
            .iter()
            .map(|&i| {
                let t = &triangles[i as usize];
                let (a, b, c) = (rel(t[0]), rel(t[1]), rel(t[2]));
                Tri { v0: a, e1: sub(b, a), e2: sub(c, a) }
            })
            .collect();
        Bvh { origin, nodes, tris, tri_index: items }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of triangles stored (the finite ones).
    pub fn triangle_count(&self) -> usize {
        self.tris.len()
    }

    /// Depth of the deepest leaf (the root has depth 0).
    pub fn depth(&self) -> usize {
        let mut stack = vec![(0usize, 0usize)];
        let mut deepest = 0;
        while let Some((i, d)) = stack.pop() {
            deepest = deepest.max(d);
            let n = &self.nodes[i];
            if n.count == 0 && !self.tris.is_empty() {
                stack.push((n.first as usize, d + 1));
                stack.push((n.first as usize + 1, d + 1));
            }
        }
        deepest
    }

    /// The closest triangle hit by the ray `origin + t·dir`, `t` in `[0, max_m]`. `dir` must
    /// be a unit vector (so `t` is in metres).
    pub fn cast(&self, origin: [f64; 3], dir: [f64; 3], max_m: f64) -> Option<TriangleHit> {
        if self.tris.is_empty() {
            return None;
        }
        let o = [
            (origin[0] - self.origin[0]) as f32,
            (origin[1] - self.origin[1]) as f32,
            (origin[2] - self.origin[2]) as f32,
        ];
        let d = [dir[0] as f32, dir[1] as f32, dir[2] as f32];
        let inv = [1.0 / d[0], 1.0 / d[1], 1.0 / d[2]];
        let mut t_best = max_m as f32;
        let mut best: Option<u32> = None;
        // Far children waiting, with the distance where the ray enters their box.
        let mut stack = [(0u32, 0.0f32); 64];
        let mut sp = 0usize;
        let mut node = 0usize;
        slab(&self.nodes[0].bounds, o, inv, t_best)?;
        loop {
            let n = self.nodes[node];
            if n.count > 0 {
                for k in n.first..n.first + n.count {
                    if let Some(t) = intersect(&self.tris[k as usize], o, d, t_best) {
                        t_best = t;
                        best = Some(k);
                    }
                }
            } else {
                let (a, b) = (n.first as usize, n.first as usize + 1);
                let ta = slab(&self.nodes[a].bounds, o, inv, t_best);
                let tb = slab(&self.nodes[b].bounds, o, inv, t_best);
                match (ta, tb) {
                    (Some(ta), Some(tb)) => {
                        let (near, far, t_far) = if ta <= tb { (a, b, tb) } else { (b, a, ta) };
                        // Depth is at most MAX_DEPTH < 64, so the stack never overflows.
                        stack[sp] = (far as u32, t_far);
                        sp += 1;
                        node = near;
                        continue;
                    }
                    (Some(_), None) => {
                        node = a;
                        continue;
                    }
                    (None, Some(_)) => {
                        node = b;
                        continue;
                    }
                    (None, None) => {}
                }
            }
            // Pop the next subtree that can still hold a closer hit.
            loop {
                if sp == 0 {
                    return best.map(|k| TriangleHit { t_m: t_best as f64, triangle: self.tri_index[k as usize] });
                }
                sp -= 1;
                let (cand, t_enter) = stack[sp];
                // The ray enters that box at t_enter: skip it once a hit is nearer.
                if t_enter <= t_best {
                    node = cand as usize;
                    break;
                }
            }
        }
    }
}

/// Entry distance of the ray into the box when it enters before `t_max`.
#[inline]
fn slab(b: &Aabb, o: [f32; 3], inv: [f32; 3], t_max: f32) -> Option<f32> {
    let mut t0 = 0.0f32;
    let mut t1 = t_max;
    for k in 0..3 {
        let a = (b.min[k] - o[k]) * inv[k];
        let c = (b.max[k] - o[k]) * inv[k];
        // NaN (a zero direction on the box's face) is ignored by min/max.
        t0 = t0.max(a.min(c));
        t1 = t1.min(a.max(c));
    }
    (t0 <= t1).then_some(t0)
}

/// Möller–Trumbore, two-sided; `t` in `[0, t_max)`.
#[inline]
fn intersect(tri: &Tri, o: [f32; 3], d: [f32; 3], t_max: f32) -> Option<f32> {
    let p = cross(d, tri.e2);
    let det = dot(tri.e1, p);
    if det.abs() < 1e-12 {
        return None;
    }
    let inv_det = 1.0 / det;
    let s = sub(o, tri.v0);
    let u = dot(s, p) * inv_det;
    if !(0.0..=1.0).contains(&u) {
        return None;
    }
    let q = cross(s, tri.e1);
    let v = dot(d, q) * inv_det;
    if v < 0.0 || u + v > 1.0 {
        return None;
    }
    let t = dot(tri.e2, q) * inv_det;
    (t >= 0.0 && t < t_max).then_some(t)
}

struct Builder<'a> {
    boxes: &'a [Aabb],
    centroids: &'a [[f32; 3]],
    items: &'a mut Vec<u32>,
    nodes: &'a mut Vec<Node>,
}

impl Builder<'_> {
    /// Splits node `node` holding `items[start..end]` (recursively).
    fn subdivide(&mut self, node: usize, start: usize, end: usize, depth: usize) {
        let n = end - start;
        if n <= MAX_LEAF_TRIANGLES || depth >= MAX_DEPTH {
            return;
        }
        let mut cb = Aabb::EMPTY;
        for &i in &self.items[start..end] {
            cb.grow(self.centroids[i as usize]);
        }
        let ext = [cb.max[0] - cb.min[0], cb.max[1] - cb.min[1], cb.max[2] - cb.min[2]];
        let axis = if ext[0] >= ext[1] && ext[0] >= ext[2] {
            0
        } else if ext[1] >= ext[2] {
            1
        } else {
            2
        };
        if ext[axis].is_nan() || ext[axis] <= 0.0 {
            // All centroids coincide: no split separates them.
            return;
        }
        let scale = SAH_BINS as f32 / ext[axis];
        let bin_of = |c: [f32; 3]| (((c[axis] - cb.min[axis]) * scale) as usize).min(SAH_BINS - 1);
        let mut bins = [(Aabb::EMPTY, 0u32); SAH_BINS];
        for &i in &self.items[start..end] {
            let b = &mut bins[bin_of(self.centroids[i as usize])];
            b.0.union(&self.boxes[i as usize]);
            b.1 += 1;
        }
        // Sweep: cost of splitting after bin k (left = bins 0..=k).
        let mut left_area = [0.0f32; SAH_BINS - 1];
        let mut left_count = [0u32; SAH_BINS - 1];
        let mut acc = Aabb::EMPTY;
        let mut cnt = 0;
        for k in 0..SAH_BINS - 1 {
            acc.union(&bins[k].0);
            cnt += bins[k].1;
            left_area[k] = acc.area();
            left_count[k] = cnt;
        }
        let mut best = (f32::INFINITY, 0usize);
        let mut acc = Aabb::EMPTY;
        let mut cnt = 0;
        for k in (0..SAH_BINS - 1).rev() {
            acc.union(&bins[k + 1].0);
            cnt += bins[k + 1].1;
            if left_count[k] == 0 || cnt == 0 {
                continue;
            }
            let cost = left_area[k] * left_count[k] as f32 + acc.area() * cnt as f32;
            if cost < best.0 {
                best = (cost, k);
            }
        }
        let parent_area = self.nodes[node].bounds.area();
        let leaf_cost = n as f32;
        let split_cost = 1.0 + if parent_area > 0.0 { best.0 / parent_area } else { f32::INFINITY };
        if !best.0.is_finite() || split_cost >= leaf_cost {
            return;
        }
        // Partition in place.
        let split_bin = best.1;
        let (mut i, mut j) = (start, end);
        while i < j {
            if bin_of(self.centroids[self.items[i] as usize]) <= split_bin {
                i += 1;
            } else {
                j -= 1;
                self.items.swap(i, j);
            }
        }
        let mid = i;
        if mid == start || mid == end {
            return;
        }
        let bounds_of = |items: &[u32]| {
            let mut b = Aabb::EMPTY;
            for &k in items {
                b.union(&self.boxes[k as usize]);
            }
            b
        };
        let lb = bounds_of(&self.items[start..mid]);
        let rb = bounds_of(&self.items[mid..end]);
        let left = self.nodes.len();
        self.nodes.push(Node { bounds: lb, first: start as u32, count: (mid - start) as u32 });
        self.nodes.push(Node { bounds: rb, first: mid as u32, count: (end - mid) as u32 });
        self.nodes[node].first = left as u32;
        self.nodes[node].count = 0;
        self.subdivide(left, start, mid, depth + 1);
        self.subdivide(left + 1, mid, end, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_triangle_hit_and_miss() {
        let bvh = Bvh::build(&[[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]);
        let hit = bvh.cast([0.2, 0.2, 5.0], [0.0, 0.0, -1.0], 100.0).unwrap();
        assert!((hit.t_m - 5.0).abs() < 1e-5);
        assert!(bvh.cast([0.8, 0.8, 5.0], [0.0, 0.0, -1.0], 100.0).is_none());
        assert!(bvh.cast([0.2, 0.2, 5.0], [0.0, 0.0, -1.0], 4.0).is_none(), "beyond max range");
        assert!(bvh.cast([0.2, 0.2, 5.0], [0.0, 0.0, 1.0], 100.0).is_none(), "behind the origin");
    }

    #[test]
    fn many_triangles_split_into_a_tree() {
        let mut tris = Vec::new();
        for i in 0..100 {
            let x = i as f64 * 2.0;
            tris.push([[x, 0.0, 0.0], [x + 1.0, 0.0, 0.0], [x, 1.0, 0.0]]);
        }
        let bvh = Bvh::build(&tris);
        assert!(bvh.node_count() > 25);
        assert!(bvh.depth() >= 5);
        let hit = bvh.cast([50.2, 0.2, 3.0], [0.0, 0.0, -1.0], 10.0).unwrap();
        assert_eq!(hit.triangle, 25);
    }
}
