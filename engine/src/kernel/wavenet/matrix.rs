//! Small dense matrix times `[rows x samples]` block products for the WaveNet kernel, with
//! pluggable first and last steps ([`Stage`]) so that biases, activations, head sums and
//! residual adds happen while the results are still in registers.
//! Built off the audio thread; [`PackedMatrix::run`] runs on the audio thread.
//!
//! A register tile is `R` output rows (a [`RowGroup`], `R` = 4, 2 or 1) by `T` vectors of
//! samples: one input row's `T` vectors are loaded once per column and applied to all `R`
//! rows, keeping `R * T` independent accumulators in flight (16 with AVX-512 at 4 x 4).
//! Samples that do not fill a whole tile go through one-vector tiles, then one masked
//! vector, with the same operations in the same order, so a sample's result never depends
//! on where it falls in a block.

use crate::kernel::simd::Simd;

/// Most output rows in one register tile.
pub(crate) const MAX_GROUP_ROWS: usize = 4;

/// Output rows computed together, and where their weights start.
#[derive(Clone, Debug)]
pub(crate) struct RowGroup {
    /// Original row indices; the first `len` are used.
    rows: [usize; MAX_GROUP_ROWS],
    len: usize,
    /// Offset of the group's weights, laid out `[col][len]`.
    offset: usize,
}

/// A `[rows, cols]` weight matrix laid out for [`Self::run`]: row groups, each `[col][rows]`.
#[derive(Clone, Debug)]
pub(crate) struct PackedMatrix {
    cols: usize,
    groups: Vec<RowGroup>,
    weights: Vec<f32>,
}

/// What a block product does around the dot products of one register tile.
pub(crate) trait Stage<S: Simd> {
    /// Starting value of the accumulators of original row `row` for the samples from `t`
    /// (`T` whole vectors, or when `M` one vector of which the first `n` lanes count).
    unsafe fn init<const T: usize, const M: bool>(&self, row: usize, t: usize, n: usize) -> [S::V; T];
    /// Consumes the finished tile of the original rows `rows` (one per accumulator row).
    unsafe fn finish<const R: usize, const T: usize, const M: bool>(
        &mut self,
        rows: &[usize],
        acc: &[[S::V; T]; R],
        t: usize,
        n: usize,
    );
}

/// Loads `T` vectors from `p` (or, when `M`, the first `n` lanes of one).
#[inline(always)]
pub(crate) unsafe fn load_tile<S: Simd, const T: usize, const M: bool>(p: *const f32, n: usize) -> [S::V; T] {
    // Plain loops, no closures: a closure would be a separate function without the
    // caller's target features, so the intrinsics could not be inlined into it.
    let mut v = [S::splat(0.0); T];
    for (j, v) in v.iter_mut().enumerate() {
        *v = if M {
            S::load_n(p, n)
        } else {
            S::load(p.add(j * S::LANES))
        };
    }
    v
}

/// Stores `T` vectors to `p` (or, when `M`, the first `n` lanes of one).
#[inline(always)]
pub(crate) unsafe fn store_tile<S: Simd, const T: usize, const M: bool>(p: *mut f32, v: &[S::V; T], n: usize) {
    for (j, &v) in v.iter().enumerate() {
        if M {
            S::store_n(p, v, n);
        } else {
            S::store(p.add(j * S::LANES), v);
        }
    }
}

impl PackedMatrix {
    /// Packs the matrix whose element `(row, col)` is `element(row, col)`, rows grouped in
    /// order by four, then two, then one.
    pub(crate) fn new(rows: usize, cols: usize, element: impl Fn(usize, usize) -> f32) -> Self {
        let mut sizes = Vec::new();
        let mut first = 0;
        for size in [4, 2, 1] {
            while rows - first >= size {
                let mut group = [0; MAX_GROUP_ROWS];
                for (i, g) in group.iter_mut().take(size).enumerate() {
                    *g = first + i;
                }
                sizes.push((group, size));
                first += size;
            }
        }
        Self::from_groups(cols, sizes, element)
    }

    /// Packs a gated convolution of `channels` outputs (rows `0..channels` filter, then
    /// `channels..2 * channels` gate): each group holds the filter rows of one or two
    /// channels followed by their gate rows, so a tile yields whole activations.
    pub(crate) fn new_gated(channels: usize, cols: usize, element: impl Fn(usize, usize) -> f32) -> Self {
        let mut sizes = Vec::new();
        let mut first = 0;
        for units in [2, 1] {
            while channels - first >= units {
                let mut group = [0; MAX_GROUP_ROWS];
                for u in 0..units {
                    group[u] = first + u;
                    group[units + u] = channels + first + u;
                }
                sizes.push((group, 2 * units));
                first += units;
            }
        }
        Self::from_groups(cols, sizes, element)
    }

    fn from_groups(
        cols: usize,
        sizes: Vec<([usize; MAX_GROUP_ROWS], usize)>,
        element: impl Fn(usize, usize) -> f32,
    ) -> Self {
        let mut weights = Vec::new();
        let mut groups = Vec::with_capacity(sizes.len());
        for (rows, len) in sizes {
            groups.push(RowGroup {
                rows,
                len,
                offset: weights.len(),
            });
            for col in 0..cols {
                weights.extend(rows[..len].iter().map(|&row| element(row, col)));
            }
        }
        PackedMatrix { cols, groups, weights }
    }

    /// Input columns.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// For every row and every sample `t < samples`:
    /// `acc = stage.init(row); acc += W[row][col] * src[src_starts[col] + t]` for the columns
    /// in ascending order; then `stage.finish`.
    ///
    /// # Safety
    /// `S` must be usable on this CPU; `src` must be valid for reads at
    /// `src_starts[col] + t` for every column and `t < samples`, and the stage's pointers
    /// valid for the rows and samples it is handed.
    #[inline(always)]
    pub(crate) unsafe fn run<S: Simd, const T: usize, St: Stage<S>>(
        &self,
        src: *const f32,
        src_starts: &[usize],
        stage: &mut St,
        samples: usize,
    ) {
        let starts = &src_starts[..self.cols];
        for group in &self.groups {
            let weights = self.weights.as_ptr().add(group.offset);
            match group.len {
                4 => group_tiles::<S, T, St, 4>(weights, &group.rows[..4], src, starts, stage, samples),
                2 => group_tiles::<S, T, St, 2>(weights, &group.rows[..2], src, starts, stage, samples),
                _ => group_tiles::<S, T, St, 1>(weights, &group.rows[..1], src, starts, stage, samples),
            }
        }
    }
}

/// All sample tiles of one row group.
#[inline(always)]
unsafe fn group_tiles<S: Simd, const T: usize, St: Stage<S>, const R: usize>(
    weights: *const f32,
    rows: &[usize],
    src: *const f32,
    starts: &[usize],
    stage: &mut St,
    samples: usize,
) {
    let lanes = S::LANES;
    let mut t = 0;
    while t + T * lanes <= samples {
        tile::<S, T, false, St, R>(weights, rows, src, starts, stage, t, lanes);
        t += T * lanes;
    }
    if T > 1 {
        while t + lanes <= samples {
            tile::<S, 1, false, St, R>(weights, rows, src, starts, stage, t, lanes);
            t += lanes;
        }
    }
    if t < samples {
        tile::<S, 1, true, St, R>(weights, rows, src, starts, stage, t, samples - t);
    }
}

/// One register tile: `R` rows by `T` vectors of samples from `t` (or one masked vector).
#[inline(always)]
unsafe fn tile<S: Simd, const T: usize, const M: bool, St: Stage<S>, const R: usize>(
    weights: *const f32,
    rows: &[usize],
    src: *const f32,
    starts: &[usize],
    stage: &mut St,
    t: usize,
    n: usize,
) {
    let mut acc = [[S::splat(0.0); T]; R];
    for (acc_row, &row) in acc.iter_mut().zip(rows) {
        *acc_row = stage.init::<T, M>(row, t, n);
    }
    for (col, &start) in starts.iter().enumerate() {
        let x = load_tile::<S, T, M>(src.add(start + t), n);
        let w = weights.add(col * R);
        for (r, acc_row) in acc.iter_mut().enumerate() {
            let wv = S::splat(*w.add(r));
            for (a, &xv) in acc_row.iter_mut().zip(&x) {
                *a = S::mul_add(wv, xv, *a);
            }
        }
    }
    stage.finish::<R, T, M>(rows, &acc, t, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::simd::Portable;

    /// Stores `init = 0.5 * row` plus the product into `dst[row * stride + t]`.
    struct StoreStage {
        dst: *mut f32,
        stride: usize,
    }

    impl<S: Simd> Stage<S> for StoreStage {
        unsafe fn init<const T: usize, const M: bool>(&self, row: usize, _t: usize, _n: usize) -> [S::V; T] {
            [S::splat(0.5 * row as f32); T]
        }
        unsafe fn finish<const R: usize, const T: usize, const M: bool>(
            &mut self,
            rows: &[usize],
            acc: &[[S::V; T]; R],
            t: usize,
            n: usize,
        ) {
            for (&row, acc_row) in rows.iter().zip(acc) {
                store_tile::<S, T, M>(self.dst.add(row * self.stride + t), acc_row, n);
            }
        }
    }

    #[test]
    fn run_matches_naive_product_for_every_shape() {
        // Small integers and halves: every product and sum is exact in f32.
        for gated in [false, true] {
            for rows in [1, 2, 3, 4, 6, 9] {
                let rows = if gated { 2 * rows } else { rows };
                for cols in [1, 2, 5] {
                    for samples in [1, 7, 8, 13, 16, 40] {
                        let element = |r: usize, c: usize| ((r * 7 + c * 3) % 5) as f32 - 2.0;
                        let m = if gated {
                            PackedMatrix::new_gated(rows / 2, cols, element)
                        } else {
                            PackedMatrix::new(rows, cols, element)
                        };
                        let stride = 48;
                        let src: Vec<f32> = (0..cols * stride).map(|i| (i % 11) as f32 - 5.0).collect();
                        let starts: Vec<usize> = (0..cols).map(|c| c * stride + 2).collect();
                        let mut dst = vec![f32::NAN; rows * stride];
                        let mut expected = dst.clone();
                        for r in 0..rows {
                            for t in 0..samples {
                                expected[r * stride + t] =
                                    0.5 * r as f32 + (0..cols).map(|c| element(r, c) * src[starts[c] + t]).sum::<f32>();
                            }
                        }
                        let mut stage = StoreStage {
                            dst: dst.as_mut_ptr(),
                            stride,
                        };
                        // SAFETY: the portable lanes run anywhere; every index is in bounds.
                        unsafe { m.run::<Portable, 2, _>(src.as_ptr(), &starts, &mut stage, samples) };
                        for (i, (d, e)) in dst.iter().zip(&expected).enumerate() {
                            assert!(
                                d == e || (d.is_nan() && e.is_nan()),
                                "gated {gated} rows {rows} cols {cols} samples {samples} at {i}: {d} vs {e}"
                            );
                        }
                    }
                }
            }
        }
    }
}
