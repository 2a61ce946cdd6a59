//! Small dense matrix times `[rows x samples]` block products for the WaveNet kernel.
//! Built off the audio thread; [`PackedMatrix::accumulate`] runs on the audio thread.

/// Output rows handled together: their weights are interleaved so one input row is loaded
/// once and applied to four accumulators.
const ROW_GROUP: usize = 4;
/// Samples per register tile.
const TILE_SAMPLES: usize = 8;

/// A `[rows, cols]` weight matrix laid out for [`Self::accumulate`]: full groups of four
/// rows interleaved as `[group][col][4]`, then the remaining rows plain as `[row][col]`.
#[derive(Clone, Debug)]
pub(crate) struct PackedMatrix {
    rows: usize,
    cols: usize,
    grouped: Vec<f32>,
    remainder: Vec<f32>,
}

impl PackedMatrix {
    /// Packs the matrix whose element `(row, col)` is `element(row, col)`.
    pub(crate) fn new(rows: usize, cols: usize, element: impl Fn(usize, usize) -> f32) -> Self {
        let full_rows = rows / ROW_GROUP * ROW_GROUP;
        let mut grouped = Vec::with_capacity(full_rows * cols);
        for group in (0..full_rows).step_by(ROW_GROUP) {
            for col in 0..cols {
                for row in group..group + ROW_GROUP {
                    grouped.push(element(row, col));
                }
            }
        }
        let mut remainder = Vec::with_capacity((rows - full_rows) * cols);
        for row in full_rows..rows {
            for col in 0..cols {
                remainder.push(element(row, col));
            }
        }
        PackedMatrix {
            rows,
            cols,
            grouped,
            remainder,
        }
    }

    /// Input columns.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// `dst[dst_start + row * dst_stride + t] += sum_col W[row][col] * src[src_starts[col] + t]`
    /// for `t < samples`. Every sample is summed in the same order (existing value, then
    /// columns ascending) whatever the block length, so results do not depend on blocking.
    #[inline(always)]
    pub(crate) fn accumulate(
        &self,
        src: &[f32],
        src_starts: &[usize],
        dst: &mut [f32],
        dst_start: usize,
        dst_stride: usize,
        samples: usize,
    ) {
        let cols = self.cols;
        let src_starts = &src_starts[..cols];
        for (group_index, weights) in self.grouped.chunks_exact(cols * ROW_GROUP).enumerate() {
            let row0 = dst_start + group_index * ROW_GROUP * dst_stride;
            let mut t = 0;
            while t + TILE_SAMPLES <= samples {
                let mut acc = [[0.0f32; TILE_SAMPLES]; ROW_GROUP];
                for (q, acc_row) in acc.iter_mut().enumerate() {
                    let at = row0 + q * dst_stride + t;
                    acc_row.copy_from_slice(&dst[at..at + TILE_SAMPLES]);
                }
                for (w, &start) in weights.chunks_exact(ROW_GROUP).zip(src_starts) {
                    let x: &[f32; TILE_SAMPLES] = src[start + t..start + t + TILE_SAMPLES].try_into().expect("tile");
                    for (acc_row, &wq) in acc.iter_mut().zip(w) {
                        for (a, &xv) in acc_row.iter_mut().zip(x) {
                            *a += wq * xv;
                        }
                    }
                }
                for (q, acc_row) in acc.iter().enumerate() {
                    let at = row0 + q * dst_stride + t;
                    dst[at..at + TILE_SAMPLES].copy_from_slice(acc_row);
                }
                t += TILE_SAMPLES;
            }
            for t in t..samples {
                for q in 0..ROW_GROUP {
                    let at = row0 + q * dst_stride + t;
                    let mut acc = dst[at];
                    for (w, &start) in weights.chunks_exact(ROW_GROUP).zip(src_starts) {
                        acc += w[q] * src[start + t];
                    }
                    dst[at] = acc;
                }
            }
        }
        let full_rows = self.rows / ROW_GROUP * ROW_GROUP;
        for (r, weights) in self.remainder.chunks_exact(cols).enumerate() {
            let row = dst_start + (full_rows + r) * dst_stride;
            let mut t = 0;
            while t + TILE_SAMPLES <= samples {
                let mut acc: [f32; TILE_SAMPLES] = dst[row + t..row + t + TILE_SAMPLES].try_into().expect("tile");
                for (&w, &start) in weights.iter().zip(src_starts) {
                    let x: &[f32; TILE_SAMPLES] = src[start + t..start + t + TILE_SAMPLES].try_into().expect("tile");
                    for (a, &xv) in acc.iter_mut().zip(x) {
                        *a += w * xv;
                    }
                }
                dst[row + t..row + t + TILE_SAMPLES].copy_from_slice(&acc);
                t += TILE_SAMPLES;
            }
            for t in t..samples {
                let mut acc = dst[row + t];
                for (&w, &start) in weights.iter().zip(src_starts) {
                    acc += w * src[start + t];
                }
                dst[row + t] = acc;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulate_matches_naive_product_for_every_shape() {
        // Values are small integers so every product and sum is exact in f32.
        for rows in [1, 3, 4, 6, 9] {
            for cols in [1, 2, 5] {
                for samples in [1, 7, 8, 13, 16] {
                    let m = PackedMatrix::new(rows, cols, |r, c| ((r * 7 + c * 3) % 5) as f32 - 2.0);
                    let stride = 20;
                    let src: Vec<f32> = (0..cols * stride).map(|i| (i % 11) as f32 - 5.0).collect();
                    let starts: Vec<usize> = (0..cols).map(|c| c * stride + 2).collect();
                    let mut dst: Vec<f32> = (0..rows * stride).map(|i| (i % 3) as f32).collect();
                    let mut expected = dst.clone();
                    for r in 0..rows {
                        for t in 0..samples {
                            for c in 0..cols {
                                let w = ((r * 7 + c * 3) % 5) as f32 - 2.0;
                                expected[1 + r * stride + t] += w * src[starts[c] + t];
                            }
                        }
                    }
                    m.accumulate(&src, &starts, &mut dst, 1, stride, samples);
                    assert_eq!(dst, expected, "rows {rows} cols {cols} samples {samples}");
                }
            }
        }
    }
}
