//! The dense layers' matrix products on the CPU: `y = x · Wᵀ + b` for a batch of rows.
//!
//! Three paths ([`Kernel`], the best this CPU runs chosen at run time) give **the same
//! bits**:
//!
//! * On x86-64 CPUs with AVX-512F, a kernel of this module. The weights are packed once per
//!   network ([`PackedDense`]: panels of 16 output columns, each panel `k × 16` contiguous),
//!   so a forward pass packs nothing. A tile of up to 12 rows × 32 columns is accumulated in
//!   24 of the 32 vector registers.
//! * On x86-64 CPUs with AVX2 and FMA but not AVX-512F (AMD before Zen 4, Intel client
//!   CPUs), the same kernel on 256-bit registers over the same panels: a tile of up to 6
//!   rows × 16 columns (one panel, two registers a row) in 12 of the 16 registers.
//! * Elsewhere, the `gemm` crate on the weights in place.
//!
//! All compute every output as one chain of fused multiply-adds over `k` in order, starting
//! from zero, and add the bias once at the end, so that **a row's outputs never depend on
//! the batch it came in** nor on the CPU's vector width (on CPUs with FMA: x86-64 ones
//! without it, older than 2013, round every product in `gemm`). The `gemm` crate does that on the
//! network's shapes from 8 rows up (below that it takes small-matrix paths that sum in
//! another order, so smaller batches are padded with zero rows), and so does PyTorch's CPU
//! `addmm` on the benchmark's batches (`bench_model` checks the logits against it: max
//! difference 0). The unit tests check every path the CPU runs against a scalar `mul_add`
//! chain, bit for bit: the network's layer shapes at 1–64, 100, 384 and 777 rows, and for
//! the kernels also ragged shapes (partial panels and tiles).

use crate::net::Dense;

/// Output columns per panel: one 512-bit register of `f32` (two 256-bit ones).
const PANEL: usize = 16;
/// Rows per register tile of the AVX-512 kernel.
const TILE_ROWS: usize = 12;
/// Rows per register tile of the AVX2 kernel.
const TILE_ROWS_AVX2: usize = 6;

/// A dense layer's weights packed for the kernels of this module: `ceil(n / 16)` panels, panel `p`
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

/// A path of [`linear`] (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// The packed kernel on AVX-512F.
    Avx512,
    /// The packed kernel on AVX2 and FMA.
    Avx2,
    /// The `gemm` crate on the weights in place.
    Portable,
}

impl Kernel {
    /// Whether this CPU runs the path.
    pub fn runs_here(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx512 | Kernel::Avx2 => false,
            Kernel::Portable => true,
        }
    }

    /// The fastest path this CPU runs: the one [`linear`] and [`linear_rows`] take.
    pub fn best() -> Kernel {
        [Kernel::Avx512, Kernel::Avx2].into_iter().find(|k| k.runs_here()).unwrap_or(Kernel::Portable)
    }
}

/// Whether this CPU runs a packed kernel (AVX-512F, or AVX2 with FMA); otherwise [`linear`]
/// uses `gemm`.
pub fn packed_kernel_available() -> bool {
    Kernel::best() != Kernel::Portable
}

/// `dst = a · Wᵀ + b` (then ReLU if asked) for `m` rows of `a` (row-major `[m, k]`); `dst`
/// becomes row-major `[m, n]`. `packed` is `layer` packed ([`PackedDense::new`]), used when
/// this CPU has a packed kernel ([`packed_kernel_available`]).
///
/// # Panics
/// When `a` is not `m × k` values, the layer's weights and bias are not `n × k` and `n`, or
/// `packed` has another shape than `layer`.
pub fn linear(a: &[f32], m: usize, layer: &Dense, packed: Option<&PackedDense>, dst: &mut Vec<f32>, relu: bool) {
    linear_on(Kernel::best(), a, m, layer, packed, dst, relu);
}

/// [`linear`] on path `kernel` where `packed` is given (the portable path otherwise).
///
/// # Panics
/// As [`linear`], and when this CPU does not run `kernel`.
pub fn linear_on(
    kernel: Kernel,
    a: &[f32],
    m: usize,
    layer: &Dense,
    packed: Option<&PackedDense>,
    dst: &mut Vec<f32>,
    relu: bool,
) {
    let (k, n) = (layer.n_in, layer.n_out);
    assert_eq!(Some(a.len()), m.checked_mul(k), "a batch of {m} rows of {k}");
    assert!(
        layer.weight.len() == n * k && layer.bias.len() == n,
        "a {n} × {k} layer with {} weights, {} biases",
        layer.weight.len(),
        layer.bias.len()
    );
    assert!(kernel.runs_here(), "this CPU does not run the {kernel:?} kernel");
    dst.clear();
    match (packed, kernel) {
        #[cfg(target_arch = "x86_64")]
        (Some(p), Kernel::Avx512 | Kernel::Avx2) => {
            assert!(p.k == k && p.n == n, "packed weights of another shape");
            dst.reserve(m * n);
            // SAFETY: the kernel's CPU features are present (asserted above); `a` holds
            // `m × k` values, `dst` has room for `m × n`, the panels are `ceil(n/16) × k × 16`
            // and the bias `ceil(n/16) × 16` (`PackedDense::new`), which is all the kernels
            // read and write. They write every one of the `m × n` outputs (each tile stores
            // all its rows and its valid columns), so they are initialised before `set_len`.
            unsafe {
                if kernel == Kernel::Avx512 {
                    avx512::gemm(a.as_ptr(), m, p, dst.as_mut_ptr(), relu);
                } else {
                    avx2::gemm(a.as_ptr(), m, p, dst.as_mut_ptr(), relu);
                }
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
    linear_rows_on(Kernel::best(), a, a_rows, layer, packed, dst, dst_at, relu);
}

/// [`linear_rows`] on path `kernel` where `packed` is given (the portable path otherwise).
///
/// # Panics
/// As [`linear_rows`], and when this CPU does not run `kernel`.
#[allow(clippy::too_many_arguments)]
pub fn linear_rows_on(
    kernel: Kernel,
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
    assert!(kernel.runs_here(), "this CPU does not run the {kernel:?} kernel");
    let m = a_rows.len();
    match (packed, kernel) {
        #[cfg(target_arch = "x86_64")]
        (Some(p), Kernel::Avx512 | Kernel::Avx2) => {
            assert!(p.k == k && p.n == n, "packed weights of another shape");
            let (a_ptr, dst_ptr) = (a.as_ptr(), dst.as_mut_ptr());
            let a_row = |j: usize| a_ptr.wrapping_add(a_rows[j] * k);
            let dst_row = |j: usize| dst_ptr.wrapping_add(dst_at[j]);
            // SAFETY: the kernel's CPU features are present (asserted above); every row read
            // lies within `a` and every output range within `dst` (asserted above), and `a`
            // and `dst` are distinct slices.
            unsafe {
                if kernel == Kernel::Avx512 {
                    avx512::gemm_rows(m, a_row, dst_row, p, relu);
                } else {
                    avx2::gemm_rows(m, a_row, dst_row, p, relu);
                }
            }
        }
        _ => {
            let mut rows = Vec::with_capacity(m * k);
            for &r in a_rows {
                rows.extend_from_slice(&a[r * k..(r + 1) * k]);
            }
            let mut out = Vec::new();
            linear_on(Kernel::Portable, &rows, m, layer, None, &mut out, relu);
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

/// Where the kernels' tiles find their rows.
#[cfg(target_arch = "x86_64")]
mod tiles {
    use super::TILE_ROWS;

    /// Where a tile's rows are: their inputs and outputs (from column 0).
    pub(super) trait TileRows {
        /// Row `r`'s `k` inputs.
        fn a(&self, r: usize, k: usize) -> *const f32;
        /// Row `r`'s `n` outputs.
        fn dst(&self, r: usize, n: usize) -> *mut f32;
    }

    /// Rows one after the other (`k` inputs and `n` outputs apart).
    pub(super) struct Contiguous {
        pub(super) a: *const f32,
        pub(super) dst: *mut f32,
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
    pub(super) struct Gathered {
        pub(super) a: [*const f32; TILE_ROWS],
        pub(super) dst: [*mut f32; TILE_ROWS],
    }

    impl Gathered {
        /// The tile of `rows` rows (at most [`TILE_ROWS`]) from row `row`, row `j`'s inputs
        /// at `a_row(j)` and outputs at `dst_row(j)`.
        #[inline(always)]
        pub(super) fn of(
            row: usize,
            rows: usize,
            a_row: &impl Fn(usize) -> *const f32,
            dst_row: &impl Fn(usize) -> *mut f32,
        ) -> Gathered {
            let mut g = Gathered { a: [std::ptr::null(); TILE_ROWS], dst: [std::ptr::null_mut(); TILE_ROWS] };
            for r in 0..rows {
                (g.a[r], g.dst[r]) = (a_row(row + r), dst_row(row + r));
            }
            g
        }
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
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::tiles::{Contiguous, Gathered, TileRows};
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
        unsafe { gemm_over(m, p, relu, |row, rows| Gathered::of(row, rows, &a_row, &dst_row)) }
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

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::tiles::{Contiguous, Gathered, TileRows};
    use super::{PANEL, PackedDense, TILE_ROWS_AVX2};

    /// Floats in a 256-bit register: half a panel.
    const HALF: usize = PANEL / 2;

    /// `dst[m × n] = a[m × k] · Wᵀ + b` over the packed panels, one panel (16 columns, two
    /// registers) at a time, the rows in tiles of 6 under it so that the panel (`k × 16`
    /// floats, 16 KiB at k = 256) stays in L1 while the rows stream past. With `relu`, each
    /// output is `max(y, 0)` as it is stored (`_mm256_max_ps(y, 0)` gives `f32::max(y,
    /// 0.0)`'s bits: +0 for −0 and for NaN).
    ///
    /// # Safety
    /// AVX2 and FMA must be present; `a` must point at `m × p.k` floats and `dst` at
    /// `m × p.n`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemm(a: *const f32, m: usize, p: &PackedDense, dst: *mut f32, relu: bool) {
        // SAFETY: the function's contract: rows `j < m` of `a` and `dst` are in bounds.
        unsafe { gemm_over(m, p, relu, |row, _| Contiguous { a: a.add(row * p.k), dst: dst.add(row * p.n) }) }
    }

    /// [`gemm()`] with row `j` of the product read from `a_row(j)` (`p.k` floats) and written
    /// to `dst_row(j)` (`p.n` floats): rows gathered from and scattered to anywhere.
    ///
    /// # Safety
    /// AVX2 and FMA must be present; for every `j < m`, `a_row(j)` must point at `p.k`
    /// readable floats and `dst_row(j)` at `p.n` writable ones, not overlapping any `a_row`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemm_rows(
        m: usize,
        a_row: impl Fn(usize) -> *const f32,
        dst_row: impl Fn(usize) -> *mut f32,
        p: &PackedDense,
        relu: bool,
    ) {
        // SAFETY: the function's contract.
        unsafe { gemm_over(m, p, relu, |row, rows| Gathered::of(row, rows, &a_row, &dst_row)) }
    }

    /// The panels and row tiles of [`gemm()`], the tile of `rows` rows from row `row` given
    /// by `tile_rows(row, rows)`.
    ///
    /// # Safety
    /// AVX2 and FMA must be present; the rows given must be in bounds ([`gemm_rows`]).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn gemm_over<T: TileRows>(m: usize, p: &PackedDense, relu: bool, tile_rows: impl Fn(usize, usize) -> T) {
        // SAFETY: every offset stays within the panels, the bias and the rows given (the
        // function's contract and `PackedDense::new`); tiles run with AVX2 and FMA present.
        unsafe {
            let (k, n) = (p.k, p.n);
            for panel in 0..n.div_ceil(PANEL) {
                let col = panel * PANEL;
                let cols = (n - col).min(PANEL);
                let w = p.panels.as_ptr().add(panel * k * PANEL);
                let bias = p.bias.as_ptr().add(col);
                let mut row = 0;
                while row < m {
                    let rows = (m - row).min(TILE_ROWS_AVX2);
                    let t = Tile { rows: tile_rows(row, rows), k, n, col, w, bias, cols, relu };
                    match rows {
                        1 => t.run::<1>(),
                        2 => t.run::<2>(),
                        3 => t.run::<3>(),
                        4 => t.run::<4>(),
                        5 => t.run::<5>(),
                        6 => t.run::<6>(),
                        _ => unreachable!("tiles have 1 to {TILE_ROWS_AVX2} rows"),
                    }
                    row += rows;
                }
            }
        }
    }

    /// One register tile: `R` rows against one panel.
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
        /// As [`gemm()`]: the tile's rows, panel, bias and destination are in bounds.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn run<const R: usize>(&self) {
            // SAFETY: `R` rows of `k`, a panel of `k × 16`, 16 bias values and `R`
            // destination rows of `cols` valid columns are in bounds (the caller's contract);
            // stores past `cols` are masked off.
            unsafe {
                let mut acc = [[_mm256_setzero_ps(); 2]; R];
                for i in 0..self.k {
                    let w0 = _mm256_loadu_ps(self.w.add(i * PANEL));
                    let w1 = _mm256_loadu_ps(self.w.add(i * PANEL + HALF));
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let x = _mm256_set1_ps(*self.rows.a(r, self.k).add(i));
                        acc_r[0] = _mm256_fmadd_ps(x, w0, acc_r[0]);
                        acc_r[1] = _mm256_fmadd_ps(x, w1, acc_r[1]);
                    }
                }
                let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                for (r, acc_r) in acc.iter().enumerate() {
                    for (h, acc_rh) in acc_r.iter().enumerate() {
                        let mut y = _mm256_add_ps(*acc_rh, _mm256_loadu_ps(self.bias.add(h * HALF)));
                        if self.relu {
                            y = _mm256_max_ps(y, _mm256_setzero_ps());
                        }
                        let valid = self.cols.saturating_sub(h * HALF).min(HALF);
                        if valid == 0 {
                            continue;
                        }
                        let out = self.rows.dst(r, self.n).add(self.col + h * HALF);
                        if valid == HALF {
                            _mm256_storeu_ps(out, y);
                        } else {
                            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid as i32), lanes);
                            _mm256_maskstore_ps(out, mask, y);
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

    /// The packed kernels this CPU runs.
    fn packed_kernels() -> Vec<Kernel> {
        let kernels: Vec<Kernel> = [Kernel::Avx512, Kernel::Avx2].into_iter().filter(|k| k.runs_here()).collect();
        if kernels.is_empty() {
            eprintln!("this CPU runs no packed kernel (AVX-512F, or AVX2 with FMA): the portable path only");
        }
        kernels
    }

    #[test]
    fn the_best_kernel_is_one_this_cpu_runs() {
        let best = Kernel::best();
        assert!(best.runs_here());
        assert_eq!(packed_kernel_available(), best != Kernel::Portable);
        if Kernel::Avx512.runs_here() {
            assert_eq!(best, Kernel::Avx512);
        }
    }

    #[test]
    fn the_packed_kernels_give_the_reference_bits() {
        let ragged = [(3, 5), (37, 17), (1, 33), (300, 47), (9, 8), (9, 7), (9, 9), (9, 24)];
        for kernel in packed_kernels() {
            for (s, &(k, n)) in NETWORK_SHAPES.iter().chain(&ragged).enumerate() {
                let l = layer(k, n, s as u64);
                let p = PackedDense::new(&l);
                for m in (1..=64).chain([100, 384, 777]) {
                    let a = inputs(m, k, s as u64);
                    for relu in [false, true] {
                        let mut got = Vec::new();
                        linear_on(kernel, &a, m, &l, Some(&p), &mut got, relu);
                        let want = reference(&a, m, &l, relu);
                        assert!(same_bits(&got, &want), "{kernel:?}, k {k} n {n} m {m} relu {relu}");
                    }
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
                    let portable_fma = !cfg!(target_arch = "x86_64") || std::arch::is_x86_feature_detected!("fma");
                    let paths = portable_fma.then_some((Kernel::Portable, None));
                    for (kernel, packed) in paths.into_iter().chain(packed_kernels().into_iter().map(|k| (k, Some(&p))))
                    {
                        let mut dst = vec![f32::NAN; dst_len];
                        linear_rows_on(kernel, &a, &rows, &l, packed, &mut dst, &at, relu);
                        for j in 0..m {
                            assert!(
                                same_bits(&dst[at[j]..at[j] + n], &want[j * n..(j + 1) * n]),
                                "k {k} n {n} m {m} row {j} {kernel:?}"
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
        // The kernels' ReLU is fused into their stores (`_mm512_max_ps(y, 0)`, `_mm256_max_ps`); the portable
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
        for kernel in packed_kernels() {
            linear_on(kernel, &a, m, &l, Some(&PackedDense::new(&l)), &mut got, true);
            assert!(same_bits(&got, &want), "{kernel:?}");
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
