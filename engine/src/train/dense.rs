//! Bounds-checked strided matrix views and a product over them, backed by the `gemm` crate.
//! Trainer thread only (the audio thread never multiplies through here).

/// A read-only strided matrix inside a slice: element `(r, c)` is
/// `data[offset + r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A row-major `[rows, cols]` block whose rows are `row_stride` apart, from `offset`.
    pub fn rows(data: &'a [f32], offset: usize, rows: usize, cols: usize, row_stride: usize) -> Self {
        View {
            data,
            offset,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Index one past the last element, checked against the slice.
    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = self.offset + (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst[offset + r * row_stride + c] (+)= sum_k lhs(r, k) * rhs(k, c)`, where `dst` is a
/// row-major `[lhs.rows, rhs.cols]` block; adds to it when `accumulate`, else overwrites.
pub(crate) fn matmul(dst: &mut [f32], offset: usize, row_stride: usize, lhs: View, rhs: View, accumulate: bool) {
    matmul_strided(dst, offset, row_stride, 1, lhs, rhs, accumulate);
}

/// [`matmul`] into a destination whose columns are `col_stride` apart.
pub(crate) fn matmul_strided(
    dst: &mut [f32],
    offset: usize,
    row_stride: usize,
    col_stride: usize,
    lhs: View,
    rhs: View,
    accumulate: bool,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(k, rhs.rows, "inner dimensions differ");
    lhs.check();
    rhs.check();
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        offset + (m - 1) * row_stride + (n - 1) * col_stride < dst.len(),
        "matmul destination out of bounds"
    );
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    dst[offset + r * row_stride + c * col_stride] = 0.0;
                }
            }
        }
        return;
    }
    // SAFETY: every element the product reads or writes was bounds-checked above against its
    // slice; `dst` is borrowed mutably, so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(offset),
            col_stride as isize,
            row_stride as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_products_match_naive_sums() {
        let data: Vec<f32> = (0..1000).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (8, 3, 33), (16, 48, 20)] {
            let lhs = View::rows(&data, 3, m, k, k + 1);
            let rhs = View::rows(&data, 1, n, k, k).t();
            let mut dst = vec![1.0f32; m * (n + 2)];
            matmul(&mut dst, 0, n + 2, lhs, rhs, true);
            for r in 0..m {
                for c in 0..n {
                    let expected: f32 = 1.0
                        + (0..k)
                            .map(|i| data[3 + r * (k + 1) + i] * data[1 + c * k + i])
                            .sum::<f32>();
                    assert_eq!(dst[r * (n + 2) + c], expected, "{m}x{k}x{n} at ({r}, {c})");
                }
            }
            matmul(&mut dst, 0, n + 2, lhs, rhs, false);
            assert_eq!(dst[0], (0..k).map(|i| data[3 + i] * data[1 + i]).sum::<f32>());
        }
    }
}
