//! Streaming conditioned-GRU kernel: the audio-thread twin of [`crate::model::gru`].
//!
//! Built off the audio thread; [`GruKernel::process`] and [`GruKernel::reset`] run on the
//! audio thread without allocating. The kernel steps sample by sample; every vector is
//! sized by the hidden size in [`GruKernel::new`].
//!
//! Per sample and layer it forms the input projection `gi = b_ih + W_ih x` and the
//! recurrent projection `gh = b_hh + W_hh h` (both `[3H]`, gate rows reset, update, new),
//! then `r, z = sigmoid(gi + gh)`, `n = tanh(gi_n + r * gh_n)`, `h = n + z * (h - n)`. For
//! the first layer the knob part of `gi` is computed once per call. Weights are stored
//! transposed (`[input][3H]`) so every multiply-add runs along the contiguous gate axis.

use super::activation::{sigmoid, tanh};
use super::recurrent::{axpy, transpose};
use crate::model::GruConfig;
use crate::profile::Weights;

/// Input samples are clamped to this (+60 dBFS) before they reach the gates.
const INPUT_LIMIT: f32 = 1000.0;

/// One layer's weights, laid out for the inner loop, and its state.
#[derive(Clone)]
struct LayerState {
    /// Input weights transposed, `[in][3H]` row-major (for layer 0 row 0 is the audio
    /// column, rows `1..` the knob columns).
    weight_ih_t: Vec<f32>,
    /// Recurrent weights transposed, `[H][3H]` row-major.
    weight_hh_t: Vec<f32>,
    /// Input bias, `[3H]`.
    bias_ih: Vec<f32>,
    /// Recurrent bias, `[3H]`.
    bias_hh: Vec<f32>,
    /// Hidden state, `[H]`; always within [-1, 1] (a blend of tanh outputs).
    h: Vec<f32>,
}

impl LayerState {
    fn new(weights: &Weights, layer: usize, input_size: usize, hidden: usize) -> anyhow::Result<Self> {
        let rows = 3 * hidden;
        let weight_ih = weights.get(&format!("gru.{layer}.weight_ih"), &[rows, input_size])?;
        let weight_hh = weights.get(&format!("gru.{layer}.weight_hh"), &[rows, hidden])?;
        Ok(LayerState {
            weight_ih_t: transpose(weight_ih, rows, input_size),
            weight_hh_t: transpose(weight_hh, rows, hidden),
            bias_ih: weights.get(&format!("gru.{layer}.bias_ih"), &[rows])?.to_vec(),
            bias_hh: weights.get(&format!("gru.{layer}.bias_hh"), &[rows])?.to_vec(),
            h: vec![0.0; hidden],
        })
    }
}

/// Streaming GRU for one audio channel.
#[derive(Clone)]
pub struct GruKernel {
    layers: Vec<LayerState>,
    /// Head weights, `[H]`.
    head_weight: Vec<f32>,
    head_bias: f32,
    skip: bool,
    num_knobs: usize,
    /// First layer's `b_ih + W_ih[:, 1..] knobs` for the current call, `[3H]`.
    knob_base: Vec<f32>,
    /// Input projection of the layer being stepped, `[3H]`.
    gi: Vec<f32>,
    /// Recurrent projection of the layer being stepped, `[3H]`.
    gh: Vec<f32>,
}

impl GruKernel {
    /// Builds the kernel from `weights`, looked up by the names of
    /// [`GruConfig::tensor_shapes`] with shapes checked. `max_block_samples` is accepted for
    /// interface symmetry; the kernel works sample by sample and processes any block
    /// length. Not real-time safe: allocates.
    pub fn new(config: &GruConfig, weights: &Weights, max_block_samples: usize) -> anyhow::Result<Self> {
        config.validate()?;
        let _ = max_block_samples;
        let hidden = config.hidden_size;
        let layers = (0..config.num_layers)
            .map(|l| {
                let input_size = if l == 0 { 1 + config.num_knobs } else { hidden };
                LayerState::new(weights, l, input_size, hidden)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(GruKernel {
            layers,
            head_weight: weights.get("head.weight", &[1, hidden])?.to_vec(),
            head_bias: weights.get("head.bias", &[1])?[0],
            skip: config.skip,
            num_knobs: config.num_knobs,
            knob_base: vec![0.0; 3 * hidden],
            gi: vec![0.0; 3 * hidden],
            gh: vec![0.0; 3 * hidden],
        })
    }

    /// Processes `input` into `output` (same length, any length; extra output samples are
    /// left untouched). `knobs` are the normalised knob values, constant over this call;
    /// missing or non-finite knobs count as 0, extra ones are ignored. Non-finite input
    /// samples are treated as 0. Real-time safe: no allocation, locking or I/O.
    pub fn process(&mut self, input: &[f32], knobs: &[f32], output: &mut [f32]) {
        self.update_knob_base(knobs);
        let rows = self.knob_base.len();
        for (x, y) in input.iter().zip(output.iter_mut()) {
            let x = if x.is_finite() {
                x.clamp(-INPUT_LIMIT, INPUT_LIMIT)
            } else {
                0.0
            };
            for l in 0..self.layers.len() {
                let (before, rest) = self.layers.split_at_mut(l);
                let layer = &mut rest[0];
                match before.last() {
                    None => {
                        self.gi.copy_from_slice(&self.knob_base);
                        axpy(&mut self.gi, &layer.weight_ih_t[..rows], x);
                    }
                    Some(below) => {
                        self.gi.copy_from_slice(&layer.bias_ih);
                        for (w, &v) in layer.weight_ih_t.chunks_exact(rows).zip(&below.h) {
                            axpy(&mut self.gi, w, v);
                        }
                    }
                }
                self.gh.copy_from_slice(&layer.bias_hh);
                for (w, &v) in layer.weight_hh_t.chunks_exact(rows).zip(&layer.h) {
                    axpy(&mut self.gh, w, v);
                }
                step_cell(&mut self.gi, &self.gh, &mut layer.h);
            }
            let last = &self.layers[self.layers.len() - 1].h;
            let head: f32 = self.head_weight.iter().zip(last).map(|(w, h)| w * h).sum();
            *y = head + self.head_bias + if self.skip { x } else { 0.0 };
        }
    }

    /// Zeroes the hidden state of every layer (the candle model's initial state). `knobs`
    /// is unused: a GRU's reset state does not depend on them. Real-time safe.
    pub fn reset(&mut self, knobs: &[f32]) {
        let _ = knobs;
        for layer in &mut self.layers {
            layer.h.fill(0.0);
        }
    }

    /// Recomputes the first layer's knob-dependent, sample-independent input term.
    fn update_knob_base(&mut self, knobs: &[f32]) {
        let layer = &self.layers[0];
        let rows = self.knob_base.len();
        self.knob_base.copy_from_slice(&layer.bias_ih);
        for k in 0..self.num_knobs {
            let value = knobs.get(k).copied().filter(|v| v.is_finite()).unwrap_or(0.0);
            axpy(
                &mut self.knob_base,
                &layer.weight_ih_t[(1 + k) * rows..(2 + k) * rows],
                value,
            );
        }
    }
}

/// Applies the gates to the projections (`gi` is overwritten) and advances `h` in place.
#[inline(always)]
fn step_cell(gi: &mut [f32], gh: &[f32], h: &mut [f32]) {
    let hidden = h.len();
    let (rz, n) = gi.split_at_mut(2 * hidden);
    for (v, g) in rz.iter_mut().zip(&gh[..2 * hidden]) {
        *v = sigmoid(*v + g);
    }
    let (r, z) = rz.split_at(hidden);
    for ((n, r), g) in n.iter_mut().zip(r).zip(&gh[2 * hidden..]) {
        *n = tanh(*n + r * g);
    }
    for ((h, z), n) in h.iter_mut().zip(z.iter()).zip(n.iter()) {
        *h = n + z * (*h - n);
    }
}

#[cfg(test)]
#[path = "gru_tests.rs"]
mod tests;
