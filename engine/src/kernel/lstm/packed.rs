//! The single-layer LSTM's SIMD path (audio thread): weights laid out along the gate axis in
//! whole vectors, state kept in registers over a whole block.
//!
//! Each gate block (i, f, g, o) is padded from `H` to `padded` hidden units, a multiple of the
//! vector lanes, so gate `q` of unit `j` sits in the same lane of its vectors for every `q` and
//! the cell update is lane-wise. Padding units have zero weights and bias: their cell stays 0
//! and their hidden output `sigmoid(0) * tanh(0) = 0`, so they never touch the real units.
//! Per sample the gates are `base + w_x * x + sum_j W_hh[:, j] * h[j]`, the recurrent sum
//! split into up to four chains (`j` modulo the chain count) where registers allow, to cut
//! its latency.

use super::{CELL_LIMIT, INPUT_LIMIT};
use crate::kernel::activation::{sigmoid_v_short as sigmoid_v, tanh_v_short as tanh_v};
use crate::kernel::simd::Simd;

/// Most vectors per gate block this path handles (`padded / lanes`).
pub(super) const MAX_VECTORS_PER_GATE: usize = 5;
/// Largest padded hidden size: 5 AVX-512 vectors.
const MAX_PADDED: usize = MAX_VECTORS_PER_GATE * 16;

/// A single LSTM layer packed for vectors of `lanes` lanes.
#[derive(Clone)]
pub(super) struct PackedLstm {
    hidden: usize,
    /// Hidden units per gate block, padded to a multiple of the lanes.
    padded: usize,
    /// Audio column of `W_ih`, `[4 * padded]`.
    weight_x: Vec<f32>,
    /// `W_hh` transposed, `[hidden][4 * padded]`: row `j` multiplies `h[j]`.
    weight_hh_t: Vec<f32>,
    /// Head weights, `[padded]`.
    head_weight: Vec<f32>,
    /// `bias + W_ih[:, 1..] knobs` for the current call, `[4 * padded]`.
    pub(super) base: Vec<f32>,
    /// Hidden state, `[padded]`.
    h: Vec<f32>,
    /// Cell state, `[padded]`.
    c: Vec<f32>,
}

impl PackedLstm {
    /// Packs a layer given `weight_ih_t` (`[in][4H]`), `weight_hh_t` (`[H][4H]`) and the head
    /// weights (`[H]`) for vectors of `lanes` lanes; `None` when `H` needs more than
    /// [`MAX_VECTORS_PER_GATE`] vectors per gate.
    pub(super) fn new(weight_ih_t: &[f32], weight_hh_t: &[f32], head_weight: &[f32], lanes: usize) -> Option<Self> {
        let hidden = head_weight.len();
        let padded = hidden.div_ceil(lanes) * lanes;
        if padded / lanes > MAX_VECTORS_PER_GATE || padded > MAX_PADDED {
            return None;
        }
        let pad_gates = |row: &[f32]| {
            let mut out = vec![0.0; 4 * padded];
            for q in 0..4 {
                out[q * padded..q * padded + hidden].copy_from_slice(&row[q * hidden..(q + 1) * hidden]);
            }
            out
        };
        let mut head = vec![0.0; padded];
        head[..hidden].copy_from_slice(head_weight);
        Some(PackedLstm {
            hidden,
            padded,
            weight_x: pad_gates(&weight_ih_t[..4 * hidden]),
            weight_hh_t: weight_hh_t.chunks_exact(4 * hidden).flat_map(pad_gates).collect(),
            head_weight: head,
            base: vec![0.0; 4 * padded],
            h: vec![0.0; padded],
            c: vec![0.0; padded],
        })
    }

    /// Sets `base = bias + sum_k W_ih[:, 1 + k] * knobs[k]` from the unpadded `[4H]` value.
    pub(super) fn set_base(&mut self, base: &[f32]) {
        let (hidden, padded) = (self.hidden, self.padded);
        for q in 0..4 {
            self.base[q * padded..q * padded + hidden].copy_from_slice(&base[q * hidden..(q + 1) * hidden]);
        }
    }

    /// Zeroes the state.
    pub(super) fn reset(&mut self) {
        self.h.fill(0.0);
        self.c.fill(0.0);
    }

    /// Vectors per gate block for lanes `S`.
    pub(super) fn vectors_per_gate<S: Simd>(&self) -> usize {
        self.padded / S::LANES
    }

    /// Runs the block: `output[t] = head . h_t + head_bias (+ x_t when skip)`.
    ///
    /// # Safety
    /// `S` must be usable on this CPU and have the lanes the layer was packed for;
    /// `NV == self.vectors_per_gate::<S>()`; `CHAINS` is 1, 2 or 4.
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // Gate and vector indices address several arrays at once.
    pub(super) unsafe fn run<S: Simd, const NV: usize, const CHAINS: usize>(
        &mut self,
        input: &[f32],
        output: &mut [f32],
        head_bias: f32,
        skip: bool,
    ) {
        debug_assert_eq!(NV * S::LANES, self.padded);
        let lanes = S::LANES;
        let stride = 4 * self.padded;
        let zero = S::splat(0.0);
        let mut base = [[zero; NV]; 4];
        let mut weight_x = [[zero; NV]; 4];
        let (mut h, mut c, mut head) = ([zero; NV], [zero; NV], [zero; NV]);
        for q in 0..4 {
            for v in 0..NV {
                base[q][v] = S::load(self.base.as_ptr().add(q * self.padded + v * lanes));
                weight_x[q][v] = S::load(self.weight_x.as_ptr().add(q * self.padded + v * lanes));
            }
        }
        for v in 0..NV {
            h[v] = S::load(self.h.as_ptr().add(v * lanes));
            c[v] = S::load(self.c.as_ptr().add(v * lanes));
            head[v] = S::load(self.head_weight.as_ptr().add(v * lanes));
        }
        // The hidden state goes through memory once per sample to be broadcast lane by lane.
        let mut h_lanes = [0.0f32; MAX_PADDED];
        let (cell_low, cell_high) = (S::splat(-CELL_LIMIT), S::splat(CELL_LIMIT));
        let weight_hh = self.weight_hh_t.as_ptr();
        for (&x, y) in input.iter().zip(output.iter_mut()) {
            let x = if x.is_finite() {
                x.clamp(-INPUT_LIMIT, INPUT_LIMIT)
            } else {
                0.0
            };
            for v in 0..NV {
                S::store(h_lanes.as_mut_ptr().add(v * lanes), h[v]);
            }
            let xs = S::splat(x);
            // `CHAINS` independent partial sums over the hidden units, the first holding the
            // input part; added up at the end.
            let mut acc = [[[zero; NV]; 4]; CHAINS];
            for q in 0..4 {
                for v in 0..NV {
                    acc[0][q][v] = S::mul_add(weight_x[q][v], xs, base[q][v]);
                }
            }
            let mut j = 0;
            while j + CHAINS <= self.hidden {
                for (chain, acc) in acc.iter_mut().enumerate() {
                    let hj = S::splat(h_lanes[j + chain]);
                    let row = weight_hh.add((j + chain) * stride);
                    for q in 0..4 {
                        for v in 0..NV {
                            let w = S::load(row.add(q * self.padded + v * lanes));
                            acc[q][v] = S::mul_add(w, hj, acc[q][v]);
                        }
                    }
                }
                j += CHAINS;
            }
            for (chain, acc) in acc.iter_mut().enumerate().take(self.hidden - j) {
                let hj = S::splat(h_lanes[j + chain]);
                let row = weight_hh.add((j + chain) * stride);
                for q in 0..4 {
                    for v in 0..NV {
                        let w = S::load(row.add(q * self.padded + v * lanes));
                        acc[q][v] = S::mul_add(w, hj, acc[q][v]);
                    }
                }
            }
            let mut width = CHAINS;
            while width > 1 {
                width /= 2;
                for chain in 0..width {
                    for q in 0..4 {
                        for v in 0..NV {
                            acc[chain][q][v] = S::add(acc[chain][q][v], acc[chain + width][q][v]);
                        }
                    }
                }
            }
            let acc = acc[0];
            let mut dot = zero;
            for v in 0..NV {
                let (i, f, g, o) = (acc[0][v], acc[1][v], acc[2][v], acc[3][v]);
                let (i, f, g, o) = (sigmoid_v::<S>(i), sigmoid_v::<S>(f), tanh_v::<S>(g), sigmoid_v::<S>(o));
                // max/min with the bound second: a NaN cell would become a bound, never stay NaN.
                let cell = S::mul_add(f, c[v], S::mul(i, g));
                c[v] = S::min(S::max(cell, cell_low), cell_high);
                // tanh saturates long before the cell bound: bounding first changes nothing,
                // so the bound stays off the recurrence's critical path.
                h[v] = S::mul(o, tanh_v::<S>(cell));
                dot = S::mul_add(h[v], head[v], dot);
            }
            *y = S::reduce_add(dot) + head_bias + if skip { x } else { 0.0 };
        }
        for v in 0..NV {
            S::store(self.h.as_mut_ptr().add(v * lanes), h[v]);
            S::store(self.c.as_mut_ptr().add(v * lanes), c[v]);
        }
    }
}
