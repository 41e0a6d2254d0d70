//! The dense layers' matrix products on the CPU: `y = x · Wᵀ + b` for a batch of rows.
//!
//! Two paths give **the same bits**:
//!
//! * On x86-64 CPUs with AVX-512F (checked at run time), a kernel of this module. The
//!   weights are packed once per network ([`PackedDense`]: panels of 16 output columns, each
//!   panel `k × 16` contiguous), so a forward pass packs nothing. A tile of up to 12 rows ×
//!   32 columns is accumulated in 24 of the 32 vector registers.
//! * Elsewhere, the `gemm` crate on the weights in place.
//!
//! Both compute every output as one chain of fused multiply-adds over `k` in order, starting
//! from zero, and add the bias once at the end, so that **a row's outputs never depend on
//! the batch it came in** nor on the CPU's vector width (on CPUs with FMA: x86-64 ones
//! without it, older than 2013, round every product in `gemm`). The `gemm` crate does that on the
//! network's shapes from 8 rows up (below that it takes small-matrix paths that sum in
//! another order, so smaller batches are padded with zero rows), and so does PyTorch's CPU
//! `addmm` on the benchmark's batches (`bench_model` checks the logits against it: max
//! difference 0). The unit tests check both paths against a scalar `mul_add` chain, bit
//! for bit: the network's layer shapes at 1–64, 100, 384 and 777 rows, and for the kernel
//! also ragged shapes (partial panels and tiles).

use crate::net::Dense;

/// Output columns per panel: one 512-bit register of `f32`.
const PANEL: usize = 16;
/// Rows per register tile.
const TILE_ROWS: usize = 12;

/// A dense layer's weights packed for the AVX-512 kernel: `ceil(n / 16)` panels, panel `p`
/// holding `W[16p + c][i]` at `(p · k + i) · 16 + c` (zero past `n`), and the bias padded
/// to whole panels.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedDense {
    panels: Vec<f32>,
    bias: Vec<f32>,
    k: usize,
    n: usize,
}

impl PackedDense {
    /// `layer`'s weights and bias, packed.
    pub fn new(layer: &Dense) -> PackedDense {
        let (k, n) = (layer.n_in, layer.n_out);
        let count = n.div_ceil(PANEL);
        let mut panels = vec![0.0f32; count * k * PANEL];
        for col in 0..n {
            let (p, c) = (col / PANEL, col % PANEL);
            for (i, &w) in layer.weight[col * k..(col + 1) * k].iter().enumerate() {
                panels[(p * k + i) * PANEL + c] = w;
            }
        }
        let mut bias = layer.bias.clone();
        bias.resize(count * PANEL, 0.0);
        PackedDense { panels, bias, k, n }
    }
}

/// Whether this CPU runs the packed kernel (AVX-512F); otherwise [`linear`] uses `gemm`.
pub fn packed_kernel_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `dst = a · Wᵀ + b` (then ReLU if asked) for `m` rows of `a` (row-major `[m, k]`); `dst`
/// becomes row-major `[m, n]`. `packed` is `layer` packed ([`PackedDense::new`]), used when
/// this CPU has the kernel ([`packed_kernel_available`]).
///
/// # Panics
/// When `a` is not `m × k` values, the layer's weights and bias are not `n × k` and `n`, or
/// `packed` has another shape than `layer`.
pub fn linear(a: &[f32], m: usize, layer: &Dense, packed: Option<&PackedDense>, dst: &mut Vec<f32>, relu: bool) {
    let (k, n) = (layer.n_in, layer.n_out);
    assert_eq!(Some(a.len()), m.checked_mul(k), "a batch of {m} rows of {k}");
    assert!(
        layer.weight.len() == n * k && layer.bias.len() == n,
        "a {n} × {k} layer with {} weights, {} biases",
        layer.weight.len(),
        layer.bias.len()
    );
    dst.clear();
    match packed {
        #[cfg(target_arch = "x86_64")]
        Some(p) if packed_kernel_available() => {
            assert!(p.k == k && p.n == n, "packed weights of another shape");
            dst.reserve(m * n);
            // SAFETY: AVX-512F is present (checked above); `a` holds `m × k` values, `dst`
            // has room for `m × n`, the panels are `ceil(n/16) × k × 16` and the bias
            // `ceil(n/16) × 16` (`PackedDense::new`), which is all the kernel reads and
            // writes. The kernel writes every one of the `m × n` outputs (each tile stores
            // all its rows and its valid columns), so they are initialised before `set_len`.
            unsafe {
                avx512::gemm(a.as_ptr(), m, p, dst.as_mut_ptr(), relu);
                dst.set_len(m * n);
            }
        }
        _ => {
            gemm_crate(a, m, layer, dst);
            if relu {
                for v in dst.iter_mut() {
                    *v = v.max(0.0);
                }
            }
        }
    }
}

/// [`linear`] of the rows `a_rows` of `a` (row-major, `layer.n_in` values a row), row `j`'s
/// outputs written to `dst[dst_at[j]..dst_at[j] + layer.n_out]`: the heads of a batch of
/// mixed classes, each reading its class's rows of the trunk and writing them where the
/// ragged logits hold them, with no copy in between. The same bits as gathering the rows,
/// [`linear`] and scattering the outputs (a row's outputs never depend on the batch).
///
/// # Panics
/// When the layer's shapes are wrong (as [`linear`]), the lists' lengths differ, a row is
/// outside `a` or an output range outside `dst`.
pub fn linear_rows(
    a: &[f32],
    a_rows: &[usize],
    layer: &Dense,
    packed: Option<&PackedDense>,
    dst: &mut [f32],
    dst_at: &[usize],
    relu: bool,
) {
    let (k, n) = (layer.n_in, layer.n_out);
    assert!(
        layer.weight.len() == n * k && layer.bias.len() == n,
        "a {n} × {k} layer with {} weights, {} biases",
        layer.weight.len(),
        layer.bias.len()
    );
    assert_eq!(a_rows.len(), dst_at.len(), "one output place per row");
    // (Checked: the kernel reads and writes what these allow.)
    let end = |start: usize, len: usize| start.checked_add(len);
    assert!(
        a_rows.iter().all(|&r| r.checked_mul(k).and_then(|s| end(s, k)).is_some_and(|e| e <= a.len())),
        "rows within the {} inputs",
        a.len()
    );
    assert!(
        dst_at.iter().all(|&d| end(d, n).is_some_and(|e| e <= dst.len())),
        "outputs within the {} of dst",
        dst.len()
    );
    let m = a_rows.len();
    match packed {
        #[cfg(target_arch = "x86_64")]
        Some(p) if packed_kernel_available() => {
            assert!(p.k == k && p.n == n, "packed weights of another shape");
            let (a_ptr, dst_ptr) = (a.as_ptr(), dst.as_mut_ptr());
            // SAFETY: AVX-512F is present (checked above); every row read lies within `a`
            // and every output range within `dst` (asserted above), and `a` and `dst` are
            // distinct slices.
            unsafe {
                avx512::gemm_rows(m, |j| a_ptr.add(a_rows[j] * k), |j| dst_ptr.add(dst_at[j]), p, relu);
            }
        }
        _ => {
            let mut rows = Vec::with_capacity(m * k);
            for &r in a_rows {
                rows.extend_from_slice(&a[r * k..(r + 1) * k]);
            }
            let mut out = Vec::new();
            linear(&rows, m, layer, packed, &mut out, relu);
            for (j, &d) in dst_at.iter().enumerate() {
                dst[d..d + n].copy_from_slice(&out[j * n..(j + 1) * n]);
            }
        }
    }
}

/// Below about this many rows the `gemm` crate switches to small-matrix paths that sum in
/// another order (seen up to 4 rows on the network's shapes); smaller batches are padded
/// with zero rows so that a row's outputs never depend on the batch's size.
const GEMM_MIN_ROWS: usize = 8;

/// The portable path: the `gemm` crate reading the weights in place.
fn gemm_crate(a: &[f32], m: usize, layer: &Dense, dst: &mut Vec<f32>) {
    let (k, n) = (layer.n_in, layer.n_out);
    if m > 0 && m < GEMM_MIN_ROWS {
        let mut padded = a.to_vec();
        padded.resize(GEMM_MIN_ROWS * k, 0.0);
        gemm_crate(&padded, GEMM_MIN_ROWS, layer, dst);
        dst.truncate(m * n);
        return;
    }
    dst.reserve(m * n);
    for _ in 0..m {
        dst.extend_from_slice(&layer.bias);
    }
    if m > 0 {
        // SAFETY: the pointers cover `m*n`, `m*k` and `n*k` valid f32s with the strides
        // given (dst and a row-major; weight `[n, k]` row-major read as a `[k, n]` matrix
        // with column stride k); dst does not alias the inputs.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                true,
                a.as_ptr(),
                1,
                k as isize,
                layer.weight.as_ptr(),
                k as isize,
                1,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{PANEL, PackedDense, TILE_ROWS};

    /// `dst[m × n] = a[m × k] · Wᵀ + b` over the packed panels, two panels (32 columns)
    /// at a time, the rows in tiles of 12 under each pair so that the pair's panels
    /// (`k × 32` floats, 32 KiB at k = 256) stay in L1 while the rows stream past. With
    /// `relu`, each output is `max(y, 0)` as it is stored (`_mm512_max_ps(y, 0)` gives
    /// `f32::max(y, 0.0)`'s bits: +0 for −0 and for NaN).
    ///
    /// # Safety
    /// AVX-512F must be present; `a` must point at `m × p.k` floats and `dst` at `m × p.n`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm(a: *const f32, m: usize, p: &PackedDense, dst: *mut f32, relu: bool) {
        // SAFETY: the function's contract: rows `j < m` of `a` and `dst` are in bounds.
        unsafe { gemm_over(m, p, relu, |row, _| Contiguous { a: a.add(row * p.k), dst: dst.add(row * p.n) }) }
    }

    /// [`gemm()`] with row `j` of the product read from `a_row(j)` (`p.k` floats) and written
    /// to `dst_row(j)` (`p.n` floats): rows gathered from and scattered to anywhere.
    ///
    /// # Safety
    /// AVX-512F must be present; for every `j < m`, `a_row(j)` must point at `p.k` readable
    /// floats and `dst_row(j)` at `p.n` writable ones, not overlapping any `a_row`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm_rows(
        m: usize,
        a_row: impl Fn(usize) -> *const f32,
        dst_row: impl Fn(usize) -> *mut f32,
        p: &PackedDense,
        relu: bool,
    ) {
        // SAFETY: the function's contract.
        unsafe {
            gemm_over(m, p, relu, |row, rows| {
                let mut g = Gathered { a: [std::ptr::null(); TILE_ROWS], dst: [std::ptr::null_mut(); TILE_ROWS] };
                for r in 0..rows {
                    (g.a[r], g.dst[r]) = (a_row(row + r), dst_row(row + r));
                }
                g
            })
        }
    }

    /// Where a tile's rows are: their inputs and outputs (from column 0).
    trait TileRows {
        /// Row `r`'s `k` inputs.
        fn a(&self, r: usize, k: usize) -> *const f32;
        /// Row `r`'s `n` outputs.
        fn dst(&self, r: usize, n: usize) -> *mut f32;
    }

    /// Rows one after the other (`k` inputs and `n` outputs apart).
    struct Contiguous {
        a: *const f32,
        dst: *mut f32,
    }

    impl TileRows for Contiguous {
        #[inline(always)]
        fn a(&self, r: usize, k: usize) -> *const f32 {
            self.a.wrapping_add(r * k)
        }
        #[inline(always)]
        fn dst(&self, r: usize, n: usize) -> *mut f32 {
            self.dst.wrapping_add(r * n)
        }
    }

    /// Rows anywhere (the tile's first rows are set).
    struct Gathered {
        a: [*const f32; TILE_ROWS],
        dst: [*mut f32; TILE_ROWS],
    }

    impl TileRows for Gathered {
        #[inline(always)]
        fn a(&self, r: usize, _: usize) -> *const f32 {
            self.a[r]
        }
        #[inline(always)]
        fn dst(&self, r: usize, _: usize) -> *mut f32 {
            self.dst[r]
        }
    }

    /// The panels and row tiles of [`gemm()`], the tile of `rows` rows from row `row` given
    /// by `tile_rows(row, rows)`.
    ///
    /// # Safety
    /// AVX-512F must be present; the rows given must be in bounds ([`gemm_rows`]).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn gemm_over<T: TileRows>(m: usize, p: &PackedDense, relu: bool, tile_rows: impl Fn(usize, usize) -> T) {
        // SAFETY: every offset stays within the panels, the bias and the rows given (the
        // function's contract and `PackedDense::new`); tiles run with AVX-512F present.
        unsafe {
            let (k, n) = (p.k, p.n);
            let count = n.div_ceil(PANEL);
            let mut panel = 0;
            while panel < count {
                let pair = if count - panel >= 2 { 2 } else { 1 };
                let col = panel * PANEL;
                let cols = (n - col).min(pair * PANEL);
                let w = p.panels.as_ptr().add(panel * k * PANEL);
                let bias = p.bias.as_ptr().add(col);
                let mut row = 0;
                while row < m {
                    let rows = (m - row).min(TILE_ROWS);
                    let t = Tile { rows: tile_rows(row, rows), k, n, col, w, bias, cols, relu };
                    macro_rules! dispatch {
                        ($($r:literal)*) => {
                            match (rows, pair) {
                                $(($r, 2) => t.run::<$r, 2>(), ($r, _) => t.run::<$r, 1>(),)*
                                _ => unreachable!("tiles have 1 to {TILE_ROWS} rows"),
                            }
                        };
                    }
                    dispatch!(1 2 3 4 5 6 7 8 9 10 11 12);
                    row += rows;
                }
                panel += pair;
            }
        }
    }

    /// One register tile: `R` rows against `P` panels.
    struct Tile<T> {
        rows: T,
        k: usize,
        /// The layer's outputs per row, and the tile's first column.
        n: usize,
        col: usize,
        w: *const f32,
        bias: *const f32,
        /// Valid output columns of the tile (the last panel of a layer may be partial).
        cols: usize,
        /// Store `max(y, 0)`.
        relu: bool,
    }

    impl<T: TileRows> Tile<T> {
        /// # Safety
        /// As [`gemm()`]: the tile's rows, panels, bias and destination are in bounds.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn run<const R: usize, const P: usize>(&self) {
            // SAFETY: `R` rows of `k`, `P` panels of `k × 16`, `P × 16` bias values and
            // `R` destination rows of `cols` valid columns are in bounds (the caller's
            // contract); stores past `cols` are masked off.
            unsafe {
                let mut acc = [[_mm512_setzero_ps(); P]; R];
                for i in 0..self.k {
                    let mut w = [_mm512_setzero_ps(); P];
                    for (q, wq) in w.iter_mut().enumerate() {
                        *wq = _mm512_loadu_ps(self.w.add((q * self.k + i) * PANEL));
                    }
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let x = _mm512_set1_ps(*self.rows.a(r, self.k).add(i));
                        for (acc_rq, wq) in acc_r.iter_mut().zip(&w) {
                            *acc_rq = _mm512_fmadd_ps(x, *wq, *acc_rq);
                        }
                    }
                }
                for (r, acc_r) in acc.iter().enumerate() {
                    for (q, acc_rq) in acc_r.iter().enumerate() {
                        let mut y = _mm512_add_ps(*acc_rq, _mm512_loadu_ps(self.bias.add(q * PANEL)));
                        if self.relu {
                            y = _mm512_max_ps(y, _mm512_setzero_ps());
                        }
                        let out = self.rows.dst(r, self.n).add(self.col + q * PANEL);
                        let valid = self.cols.saturating_sub(q * PANEL).min(PANEL);
                        if valid == PANEL {
                            _mm512_storeu_ps(out, y);
                        } else {
                            _mm512_mask_storeu_ps(out, ((1u32 << valid) - 1) as __mmask16, y);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(k: usize, n: usize, seed: u64) -> Dense {
        let mut rng = swm_core::rng::CounterRng::new(seed, 3);
        let weight = (0..n * k).map(|_| rng.range_f64(-1.0, 1.0) as f32).collect();
        let bias = (0..n).map(|_| rng.range_f64(-1.0, 1.0) as f32).collect();
        Dense { weight, bias, n_in: k, n_out: n }
    }

    /// The definition both paths must meet bit for bit: per output, one chain of fused
    /// multiply-adds over `k` in order from zero, then the bias.
    fn reference(a: &[f32], m: usize, l: &Dense, relu: bool) -> Vec<f32> {
        let (k, n) = (l.n_in, l.n_out);
        let mut out = Vec::with_capacity(m * n);
        for r in 0..m {
            for c in 0..n {
                let acc = (0..k).fold(0.0f32, |acc, i| a[r * k + i].mul_add(l.weight[c * k + i], acc));
                let y = acc + l.bias[c];
                out.push(if relu { y.max(0.0) } else { y });
            }
        }
        out
    }

    fn inputs(m: usize, k: usize, seed: u64) -> Vec<f32> {
        let mut rng = swm_core::rng::CounterRng::new(seed, m as u64);
        // Some exact zeros and negatives, as ReLU outputs and empty neighbour slots give.
        (0..m * k).map(|_| (rng.range_f64(-1.5, 2.0) as f32).max(0.0) - 0.25).collect()
    }

    fn same_bits(x: &[f32], y: &[f32]) -> bool {
        x.len() == y.len() && x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    /// The network's layer shapes (neighbour MLP, trunk, both heads).
    const NETWORK_SHAPES: [(usize, usize); 6] = [(14, 64), (64, 64), (154, 256), (256, 256), (256, 143), (256, 81)];

    #[test]
    fn the_portable_path_gives_the_reference_bits_on_the_networks_shapes() {
        #[cfg(target_arch = "x86_64")]
        if !std::is_x86_feature_detected!("fma") {
            eprintln!("skipped: without FMA the `gemm` crate rounds every product, so it is not the reference chain");
            return;
        }
        for (s, &(k, n)) in NETWORK_SHAPES.iter().enumerate() {
            let l = layer(k, n, s as u64);
            for m in (1..=64).chain([100, 384, 777]) {
                let a = inputs(m, k, s as u64);
                for relu in [false, true] {
                    let mut got = Vec::new();
                    linear(&a, m, &l, None, &mut got, relu);
                    assert!(same_bits(&got, &reference(&a, m, &l, relu)), "gemm path, k {k} n {n} m {m} relu {relu}");
                }
            }
        }
    }

    #[test]
    fn the_packed_kernel_gives_the_reference_bits() {
        if !packed_kernel_available() {
            eprintln!("skipped: this CPU has no AVX-512F, so `linear` runs the portable path only");
            return;
        }
        let ragged = [(3, 5), (37, 17), (1, 33), (300, 47)];
        for (s, &(k, n)) in NETWORK_SHAPES.iter().chain(&ragged).enumerate() {
            let l = layer(k, n, s as u64);
            let p = PackedDense::new(&l);
            for m in (1..=64).chain([100, 384, 777]) {
                let a = inputs(m, k, s as u64);
                for relu in [false, true] {
                    let mut got = Vec::new();
                    linear(&a, m, &l, Some(&p), &mut got, relu);
                    assert!(same_bits(&got, &reference(&a, m, &l, relu)), "kernel, k {k} n {n} m {m} relu {relu}");
                }
            }
        }
    }

    /// Rows gathered and outputs scattered give the bits of the rows in a batch of their
    /// own, on both paths, for every tile size and with rows repeated and out of order.
    #[test]
    fn gathered_rows_give_the_bits_of_a_batch_of_their_own() {
        let mut rng = swm_core::rng::CounterRng::new(31, 0);
        for (s, &(k, n)) in NETWORK_SHAPES.iter().enumerate() {
            let l = layer(k, n, s as u64);
            let p = PackedDense::new(&l);
            let total = 40;
            let a = inputs(total, k, s as u64);
            for m in (0..=26).chain([40, 77]) {
                let rows: Vec<usize> = (0..m).map(|_| rng.next_u32() as usize % total).collect();
                // Each output `n` wide, with gaps between them, in a shuffled order.
                let mut at: Vec<usize> = (0..m).map(|j| j * (n + 3) + 1).collect();
                at.reverse();
                let dst_len = m * (n + 3) + 5;
                let picked: Vec<f32> = rows.iter().flat_map(|&r| a[r * k..(r + 1) * k].iter().copied()).collect();
                for relu in [false, true] {
                    let want = reference(&picked, m, &l, relu);
                    for packed in [None, Some(&p)] {
                        if packed.is_none()
                            && cfg!(target_arch = "x86_64")
                            && !std::arch::is_x86_feature_detected!("fma")
                        {
                            continue;
                        }
                        let mut dst = vec![f32::NAN; dst_len];
                        linear_rows(&a, &rows, &l, packed, &mut dst, &at, relu);
                        for j in 0..m {
                            assert!(
                                same_bits(&dst[at[j]..at[j] + n], &want[j * n..(j + 1) * n]),
                                "k {k} n {n} m {m} row {j} packed {}",
                                packed.is_some()
                            );
                        }
                        // Nothing else is written.
                        let written: usize = (0..dst_len).filter(|d| !dst[*d].is_nan()).count();
                        assert_eq!(written, m * n - want.iter().filter(|v| v.is_nan()).count());
                    }
                }
            }
        }
    }

    #[test]
    fn relu_maps_nan_outputs_to_zero_as_f32_max_does() {
        // The kernel's ReLU is fused into its stores (`_mm512_max_ps(y, 0)`); the portable
        // path applies `f32::max(y, 0.0)` afterwards. Both give 0 for a NaN output.
        let (k, n, m) = (14, 64, 13);
        let l = layer(k, n, 7);
        let mut a = inputs(m, k, 7);
        a[3 * k + 5] = f32::NAN;
        a[7 * k] = f32::INFINITY;
        let want = reference(&a, m, &l, true);
        assert!(want[3 * n..4 * n].iter().all(|&v| v.to_bits() == 0), "a NaN row is all +0 after ReLU");
        #[cfg(target_arch = "x86_64")]
        let fma = std::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let fma = true;
        let mut got = Vec::new();
        if fma {
            linear(&a, m, &l, None, &mut got, true);
            assert!(same_bits(&got, &want), "portable path");
        }
        if packed_kernel_available() {
            linear(&a, m, &l, Some(&PackedDense::new(&l)), &mut got, true);
            assert!(same_bits(&got, &want), "kernel");
        }
    }

    #[test]
    #[should_panic(expected = "rows within the 6 inputs")]
    fn a_gathered_row_past_the_inputs_is_refused() {
        let l = layer(3, 4, 1);
        linear_rows(&[0.0; 6], &[0, usize::MAX / 2], &l, Some(&PackedDense::new(&l)), &mut [0.0; 8], &[0, 4], false);
    }

    #[test]
    #[should_panic(expected = "outputs within the 8 of dst")]
    fn a_scattered_output_past_dst_is_refused() {
        let l = layer(3, 4, 1);
        linear_rows(&[0.0; 6], &[0, 1], &l, None, &mut [0.0; 8], &[0, usize::MAX - 2], false);
    }

    #[test]
    #[should_panic(expected = "a 4 × 3 layer with 11 weights")]
    fn a_layer_short_of_weights_is_refused() {
        let mut l = layer(3, 4, 1);
        l.weight.pop();
        linear(&[0.0; 6], 2, &l, None, &mut Vec::new(), false);
    }

    #[test]
    fn packing_puts_each_weight_in_its_panel() {
        let l = layer(5, 20, 9);
        let p = PackedDense::new(&l);
        assert_eq!(p.panels.len(), 2 * 5 * PANEL);
        assert_eq!(p.bias.len(), 2 * PANEL);
        for col in 0..20 {
            for i in 0..5 {
                assert_eq!(p.panels[((col / PANEL) * 5 + i) * PANEL + col % PANEL], l.weight[col * 5 + i]);
            }
        }
        // Padding past the last column is zero.
        for i in 0..5 {
            let row = &p.panels[(5 + i) * PANEL..(5 + i + 1) * PANEL];
            assert!(row[4..].iter().all(|&w| w == 0.0), "panel 1, input {i}: {row:?}");
        }
        assert_eq!(&p.bias[..20], &l.bias[..]);
    }
}
