//! Small vector helpers shared by the recurrent kernels (LSTM, GRU): weight layout at build
//! time (off the audio thread) and the per-sample multiply-add (audio thread, no allocation).

/// `[rows, cols]` row-major to `[cols, rows]` row-major. Allocates: build time only.
pub(super) fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// `acc += w * x`, elementwise.
#[inline(always)]
pub(super) fn axpy(acc: &mut [f32], w: &[f32], x: f32) {
    for (a, w) in acc.iter_mut().zip(w) {
        *a += w * x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_rows_and_columns_and_axpy_accumulates() {
        let t = transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3);
        assert_eq!(t, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let mut acc = [1.0, 1.0];
        axpy(&mut acc, &[2.0, -3.0], 0.5);
        assert_eq!(acc, [2.0, -0.5]);
    }
}
