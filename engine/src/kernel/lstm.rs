//! Streaming conditioned-LSTM kernel: the audio-thread twin of [`crate::model::lstm`].
//!
//! Built off the audio thread; [`LstmKernel::process`] and [`LstmKernel::reset`] run on the
//! audio thread without allocating. The kernel steps sample by sample, so it needs no block
//! buffers at all: every vector is sized by the hidden size in [`LstmKernel::new`].
//!
//! Per sample and layer the gate pre-activations are `base + W_ih x + W_hh h`, where for the
//! first layer `base = bias + W_ih[:, 1..] knobs` is computed once per call (knobs are
//! constant over a call) and `W_ih x` is a single column times the audio sample. Weights are
//! stored transposed (`[input][4H]`) so every multiply-add runs along the contiguous `4H`
//! gate axis and vectorises. A single-layer model (every preset) instead runs the SIMD path
//! of [`packed`], with its state in registers over the block; the per-sample loop here is the
//! general path for deeper models.

mod packed;

use super::activation::{sigmoid, tanh};
use super::recurrent::{axpy, transpose};
#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};
use super::simd::{Isa, Portable, Simd};
use crate::model::LstmConfig;
use crate::profile::Weights;
use packed::PackedLstm;

/// Bound on the cell state's magnitude. Far beyond anything a trained model reaches (tanh
/// saturates past about 9), it only guarantees that state can never become infinite or NaN.
const CELL_LIMIT: f32 = 1.0e4;
/// Input samples are clamped to this (+60 dBFS) before they reach the gates.
const INPUT_LIMIT: f32 = 1000.0;

/// One layer's weights, laid out for the inner loop, and its state.
#[derive(Clone)]
struct LayerState {
    /// Input weights transposed, `[in][4H]` row-major (for layer 0 row 0 is the audio column,
    /// rows `1..` the knob columns).
    weight_ih_t: Vec<f32>,
    /// Recurrent weights transposed, `[H][4H]` row-major.
    weight_hh_t: Vec<f32>,
    /// Combined bias, `[4H]`.
    bias: Vec<f32>,
    /// Hidden state, `[H]`.
    h: Vec<f32>,
    /// Cell state, `[H]`.
    c: Vec<f32>,
    /// State [`LstmKernel::reset`] returns to: the learned initial `(hidden, cell)` state
    /// when the weights hold one (NAM's LSTM), else zeros; `[H]` each.
    initial_h: Vec<f32>,
    initial_c: Vec<f32>,
}

impl LayerState {
    fn new(weights: &Weights, layer: usize, input_size: usize, hidden: usize) -> anyhow::Result<Self> {
        let weight_ih = weights.get(&format!("lstm.{layer}.weight_ih"), &[4 * hidden, input_size])?;
        let weight_hh = weights.get(&format!("lstm.{layer}.weight_hh"), &[4 * hidden, hidden])?;
        let bias = weights.get(&format!("lstm.{layer}.bias"), &[4 * hidden])?;
        let initial = |name: &str| -> anyhow::Result<Vec<f32>> {
            let data = weights.get_optional(&format!("lstm.{layer}.{name}"), &[hidden])?;
            Ok(data.map_or_else(|| vec![0.0; hidden], <[f32]>::to_vec))
        };
        let (initial_h, initial_c) = (initial("initial_hidden")?, initial("initial_cell")?);
        Ok(LayerState {
            weight_ih_t: transpose(weight_ih, 4 * hidden, input_size),
            weight_hh_t: transpose(weight_hh, 4 * hidden, hidden),
            bias: bias.to_vec(),
            h: initial_h.clone(),
            c: initial_c.clone(),
            initial_h,
            initial_c,
        })
    }
}

/// Streaming LSTM for one audio channel.
#[derive(Clone)]
pub struct LstmKernel {
    /// Instruction set of the SIMD path, detected once in [`Self::new`].
    isa: Isa,
    /// The single layer packed for `isa`'s vectors, when the model has one layer of a
    /// supported size; then `layers` holds its weights but not its state.
    packed: Option<PackedLstm>,
    layers: Vec<LayerState>,
    /// Head weights, `[H]`.
    head_weight: Vec<f32>,
    head_bias: f32,
    skip: bool,
    num_knobs: usize,
    /// First layer's `bias + W_ih[:, 1..] knobs` for the current call, `[4H]`.
    knob_base: Vec<f32>,
    /// Gate pre-activations / activations of the layer being stepped, `[4H]`.
    gates: Vec<f32>,
}

impl LstmKernel {
    /// Builds the kernel from `weights`, looked up by the names of
    /// [`LstmConfig::tensor_shapes`] with shapes checked. `max_block_samples` is accepted
    /// for interface symmetry; the kernel works sample by sample and needs no block buffers,
    /// so any block length is processed. Not real-time safe: allocates.
    pub fn new(config: &LstmConfig, weights: &Weights, max_block_samples: usize) -> anyhow::Result<Self> {
        Self::with_isa(config, weights, max_block_samples, Isa::detect())
    }

    /// [`Self::new`] on a given instruction set, which the CPU must support.
    pub(crate) fn with_isa(
        config: &LstmConfig,
        weights: &Weights,
        max_block_samples: usize,
        isa: Isa,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let _ = max_block_samples;
        let hidden = config.hidden_size;
        let layers = (0..config.num_layers)
            .map(|l| {
                let input_size = if l == 0 { 1 + config.num_knobs } else { hidden };
                LayerState::new(weights, l, input_size, hidden)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let head_weight = weights.get("head.weight", &[1, hidden])?.to_vec();
        let head_bias = weights.get("head.bias", &[1])?[0];
        let lanes = match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Avx512::LANES,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Avx2::LANES,
            _ => Portable::LANES,
        };
        let packed = match &layers[..] {
            [layer] => PackedLstm::new(&layer.weight_ih_t, &layer.weight_hh_t, &head_weight, lanes),
            _ => None,
        };
        Ok(LstmKernel {
            isa,
            packed,
            layers,
            head_weight,
            head_bias,
            skip: config.skip,
            num_knobs: config.num_knobs,
            knob_base: vec![0.0; 4 * hidden],
            gates: vec![0.0; 4 * hidden],
        })
    }

    /// Processes `input` into `output` (same length, any length; extra output samples are
    /// left untouched). `knobs` are the normalised knob values, constant over this call;
    /// missing or non-finite knobs count as 0, extra ones are ignored. Non-finite input
    /// samples are treated as 0. Real-time safe: no allocation, locking or I/O.
    pub fn process(&mut self, input: &[f32], knobs: &[f32], output: &mut [f32]) {
        self.update_knob_base(knobs);
        if let Some(packed) = &mut self.packed {
            packed.set_base(&self.knob_base);
            let samples = input.len().min(output.len());
            let (input, output) = (&input[..samples], &mut output[..samples]);
            let (bias, skip) = (self.head_bias, self.skip);
            match self.isa {
                // SAFETY: `isa` is supported by this CPU and `packed` was laid out for it.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { run_avx512(packed, input, output, bias, skip) },
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { run_avx2(packed, input, output, bias, skip) },
                // SAFETY: the portable lanes run anywhere.
                _ => unsafe { run_with::<Portable>(packed, input, output, bias, skip) },
            }
            return;
        }
        let hidden = self.head_weight.len();
        for (x, y) in input.iter().zip(output.iter_mut()) {
            // Bounded input keeps every pre-activation finite, so NaN can never enter the state.
            let x = if x.is_finite() {
                x.clamp(-INPUT_LIMIT, INPUT_LIMIT)
            } else {
                0.0
            };
            for l in 0..self.layers.len() {
                let (before, rest) = self.layers.split_at_mut(l);
                let layer = &mut rest[0];
                let gates = &mut self.gates[..];
                match before.last() {
                    None => {
                        gates.copy_from_slice(&self.knob_base);
                        axpy(gates, &layer.weight_ih_t[..4 * hidden], x);
                    }
                    Some(below) => {
                        gates.copy_from_slice(&layer.bias);
                        for (w, &v) in layer.weight_ih_t.chunks_exact(4 * hidden).zip(&below.h) {
                            axpy(gates, w, v);
                        }
                    }
                }
                for (w, &v) in layer.weight_hh_t.chunks_exact(4 * hidden).zip(&layer.h) {
                    axpy(gates, w, v);
                }
                step_cell(gates, &mut layer.h, &mut layer.c);
            }
            let last = &self.layers[self.layers.len() - 1].h;
            let head: f32 = self.head_weight.iter().zip(last).map(|(w, h)| w * h).sum();
            *y = head + self.head_bias + if self.skip { x } else { 0.0 };
        }
    }

    /// Returns every layer's hidden and cell state to the candle model's initial state
    /// (zeros, or the learned initial state when the weights hold one). `knobs` is unused:
    /// an LSTM's reset state does not depend on them. Real-time safe.
    pub fn reset(&mut self, knobs: &[f32]) {
        let _ = knobs;
        if let Some(packed) = &mut self.packed {
            packed.reset();
        }
        for layer in &mut self.layers {
            layer.h.copy_from_slice(&layer.initial_h);
            layer.c.copy_from_slice(&layer.initial_c);
        }
    }

    /// Recomputes the first layer's knob-dependent, sample-independent gate term.
    fn update_knob_base(&mut self, knobs: &[f32]) {
        let layer = &self.layers[0];
        let rows = self.knob_base.len();
        self.knob_base.copy_from_slice(&layer.bias);
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

/// Runs the packed single layer on lanes `S`, state in registers for `1..=5` vectors per gate.
///
/// # Safety
/// `S` must be usable on this CPU and be the lanes `packed` was laid out for.
#[inline(always)]
unsafe fn run_with<S: Simd>(packed: &mut PackedLstm, input: &[f32], output: &mut [f32], bias: f32, skip: bool) {
    // Several recurrent chains only where the registers hold them (32 with 16 lanes).
    let wide = S::LANES >= 16;
    match (packed.vectors_per_gate::<S>(), wide) {
        (1, true) => packed.run::<S, 1, 4>(input, output, bias, skip),
        (1, false) => packed.run::<S, 1, 2>(input, output, bias, skip),
        (2, true) => packed.run::<S, 2, 2>(input, output, bias, skip),
        (2, false) => packed.run::<S, 2, 1>(input, output, bias, skip),
        (3, _) => packed.run::<S, 3, 1>(input, output, bias, skip),
        (4, _) => packed.run::<S, 4, 1>(input, output, bias, skip),
        _ => packed.run::<S, 5, 1>(input, output, bias, skip),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(packed: &mut PackedLstm, input: &[f32], output: &mut [f32], bias: f32, skip: bool) {
    run_with::<Avx512>(packed, input, output, bias, skip);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(packed: &mut PackedLstm, input: &[f32], output: &mut [f32], bias: f32, skip: bool) {
    run_with::<Avx2>(packed, input, output, bias, skip);
}

/// Applies the gate activations to the pre-activations in `gates` (order i, f, g, o) and
/// advances `c` and `h` in place. Plain loops over slices so that each one vectorises.
#[inline(always)]
#[allow(clippy::manual_clamp)] // `max`/`min` map NaN to a bound; `clamp` would keep it.
fn step_cell(gates: &mut [f32], h: &mut [f32], c: &mut [f32]) {
    let hidden = h.len();
    let (ifg, o) = gates.split_at_mut(3 * hidden);
    let (i_f, g) = ifg.split_at_mut(2 * hidden);
    for v in i_f.iter_mut() {
        *v = sigmoid(*v);
    }
    for v in o.iter_mut() {
        *v = sigmoid(*v);
    }
    for v in g.iter_mut() {
        *v = tanh(*v);
    }
    let (i, f) = i_f.split_at(hidden);
    for ((((c, h), i), f), (g, o)) in c.iter_mut().zip(h.iter_mut()).zip(i).zip(f).zip(g.iter().zip(o.iter())) {
        let cell = (f * *c + i * g).max(-CELL_LIMIT).min(CELL_LIMIT);
        *c = cell;
        *h = o * tanh(cell);
    }
}

#[cfg(test)]
#[path = "lstm_tests.rs"]
mod tests;
