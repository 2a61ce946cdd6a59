//! The first and last steps of the WaveNet kernel's block products ([`Stage`]s): plain stores,
//! residual adds, and the dilated convolution's bias, audio mixin, activation and head sum.
//! Audio thread only. Buffers are `[row][stride]` with samples contiguous; the stages hold
//! raw pointers set up by [`super::WavenetKernel`] for one product at a time. No closures
//! here: they would not inherit the caller's target features (see `matrix::load_tile`).

use super::matrix::{load_tile, store_tile, Stage};
use crate::kernel::activation::{sigmoid_v, tanh_v};
use crate::kernel::simd::Simd;

/// `dst[row] = bias[row] (or 0) + product`.
pub(super) struct Store {
    /// `[rows]`, or null for no bias.
    pub bias: *const f32,
    /// Row 0, sample 0 of the destination.
    pub dst: *mut f32,
    /// Distance between destination rows, in samples.
    pub dst_stride: usize,
}

impl<S: Simd> Stage<S> for Store {
    #[inline(always)]
    unsafe fn init<const T: usize, const M: bool>(&self, row: usize, _t: usize, _n: usize) -> [S::V; T] {
        let bias = if self.bias.is_null() { 0.0 } else { *self.bias.add(row) };
        [S::splat(bias); T]
    }

    #[inline(always)]
    unsafe fn finish<const R: usize, const T: usize, const M: bool>(
        &mut self,
        rows: &[usize],
        acc: &[[S::V; T]; R],
        t: usize,
        n: usize,
    ) {
        for (&row, acc_row) in rows.iter().zip(acc) {
            store_tile::<S, T, M>(self.dst.add(row * self.dst_stride + t), acc_row, n);
        }
    }
}

/// `dst[row] = input[row] + bias[row] + product`: a layer's residual output.
pub(super) struct Residual {
    /// The layer input at the current block's first sample, row 0.
    pub input: *const f32,
    pub input_stride: usize,
    /// `[channels]`.
    pub bias: *const f32,
    pub dst: *mut f32,
    pub dst_stride: usize,
}

impl<S: Simd> Stage<S> for Residual {
    #[inline(always)]
    unsafe fn init<const T: usize, const M: bool>(&self, row: usize, t: usize, n: usize) -> [S::V; T] {
        let x = load_tile::<S, T, M>(self.input.add(row * self.input_stride + t), n);
        let bias = S::splat(*self.bias.add(row));
        let mut acc = x;
        for a in acc.iter_mut() {
            *a = S::add(*a, bias);
        }
        acc
    }

    #[inline(always)]
    unsafe fn finish<const R: usize, const T: usize, const M: bool>(
        &mut self,
        rows: &[usize],
        acc: &[[S::V; T]; R],
        t: usize,
        n: usize,
    ) {
        for (&row, acc_row) in rows.iter().zip(acc) {
            store_tile::<S, T, M>(self.dst.add(row * self.dst_stride + t), acc_row, n);
        }
    }
}

/// The dilated convolution: `z[row] = bias[row] + audio_weight[row] * audio + product`, then
/// `act = tanh(z)` (or `tanh(z_filter) * sigmoid(z_gate)` when gated) stored to `act` and
/// added to `head_sum`.
pub(super) struct Conv {
    /// Per-call bias (conv bias + knob mixin), `[conv_out]`.
    pub bias: *const f32,
    /// Audio column of the input mixin, `[conv_out]`.
    pub audio_weight: *const f32,
    /// Sanitised audio block.
    pub audio: *const f32,
    pub gated: bool,
    /// `[channels][stride]`.
    pub act: *mut f32,
    /// `[channels][stride]`.
    pub head_sum: *mut f32,
    pub stride: usize,
}

impl Conv {
    #[inline(always)]
    unsafe fn emit<S: Simd, const T: usize, const M: bool>(
        &mut self,
        channel: usize,
        a: [S::V; T],
        t: usize,
        n: usize,
    ) {
        let at = channel * self.stride + t;
        store_tile::<S, T, M>(self.act.add(at), &a, n);
        let h = load_tile::<S, T, M>(self.head_sum.add(at), n);
        let mut sum = h;
        for (s, &a) in sum.iter_mut().zip(&a) {
            *s = S::add(*s, a);
        }
        store_tile::<S, T, M>(self.head_sum.add(at), &sum, n);
    }
}

impl<S: Simd> Stage<S> for Conv {
    #[inline(always)]
    unsafe fn init<const T: usize, const M: bool>(&self, row: usize, t: usize, n: usize) -> [S::V; T] {
        let x = load_tile::<S, T, M>(self.audio.add(t), n);
        let (w, b) = (S::splat(*self.audio_weight.add(row)), S::splat(*self.bias.add(row)));
        let mut acc = x;
        for a in acc.iter_mut() {
            *a = S::mul_add(w, *a, b);
        }
        acc
    }

    #[inline(always)]
    unsafe fn finish<const R: usize, const T: usize, const M: bool>(
        &mut self,
        rows: &[usize],
        acc: &[[S::V; T]; R],
        t: usize,
        n: usize,
    ) {
        if self.gated {
            // Rows are the filter rows of R / 2 channels, then their gate rows.
            for u in 0..R / 2 {
                let mut a = acc[u];
                for (a, &gate) in a.iter_mut().zip(&acc[R / 2 + u]) {
                    *a = S::mul(tanh_v::<S>(*a), sigmoid_v::<S>(gate));
                }
                self.emit::<S, T, M>(rows[u], a, t, n);
            }
        } else {
            for (&row, acc_row) in rows.iter().zip(acc) {
                let mut a = *acc_row;
                for a in a.iter_mut() {
                    *a = tanh_v::<S>(*a);
                }
                self.emit::<S, T, M>(row, a, t, n);
            }
        }
    }
}
