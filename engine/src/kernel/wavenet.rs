//! Streaming WaveNet kernel: the audio-thread twin of [`crate::model::wavenet`].
//!
//! Built off the audio thread; [`WavenetKernel::process`] and [`WavenetKernel::reset`] run on
//! the audio thread without allocating. A block of samples goes through the network layer by
//! layer as small dense products over `[channels x samples]` buffers (see
//! [`matrix::PackedMatrix`]), so each weight is loaded once per block, not once per sample.
//!
//! Each layer keeps the history of its input channel-major, `[channel][capacity]`: the last
//! `(kernel_size - 1) * dilation` samples before the write position, then the current block.
//! When a block would run past the end, the history is copied back to the start (a rewind);
//! the spare room is at least four histories long, so rewinds cost little. Knobs are constant
//! over a call, so each layer's conv bias and the knob part of its input mixin are folded into
//! one per-call bias and only the audio column of the mixin is applied per sample.

mod matrix;
mod stage;

#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};
use super::simd::{Isa, Portable, Simd};
use matrix::PackedMatrix;
use stage::{Conv, Residual, Store};

use crate::model::{WavenetConfig, MAX_KNOBS};
use crate::profile::Weights;

/// Input samples are clamped to +-this (+60 dBFS) so no input can overflow the network.
const INPUT_LIMIT: f32 = 1000.0;

/// One dilated layer: weights laid out for the block products, and its input history.
#[derive(Clone)]
struct Layer {
    /// `(kernel_size - 1) * dilation`: past input samples the convolution reads.
    history_samples: usize,
    /// Tap spacing, in samples.
    dilation: usize,
    /// Convolution `[conv_out, kernel_size * channels]`, column `tap * channels + channel`.
    conv: PackedMatrix,
    /// `[conv_out]`.
    conv_bias: Vec<f32>,
    /// Input mixin `[conv_out][condition_size]` row-major.
    mixin: Vec<f32>,
    /// Audio column of the input mixin, `[conv_out]`.
    mixin_audio: Vec<f32>,
    /// `conv_bias + mixin[:, 1..] . knobs` for the current call, `[conv_out]`.
    call_bias: Vec<f32>,
    /// `[channels, channels]`.
    layer1x1: PackedMatrix,
    /// `[channels]`.
    layer1x1_bias: Vec<f32>,
    /// Input history, `[channels][capacity]`.
    input: Vec<f32>,
    /// Samples per channel row of `input`.
    capacity: usize,
    /// Where the current block starts in each row of `input`.
    write: usize,
}

/// One layer array.
#[derive(Clone)]
struct Array {
    channels: usize,
    kernel_size: usize,
    gated: bool,
    /// `[channels, input_size]`.
    rechannel: PackedMatrix,
    layers: Vec<Layer>,
    /// `[head_size, channels]`.
    head: PackedMatrix,
    /// `[head_size]` (zeros when the array's head has no bias).
    head_bias: Vec<f32>,
}

/// Streaming WaveNet for one audio channel.
#[derive(Clone)]
pub struct WavenetKernel {
    /// Instruction set the block products run on, detected once in [`Self::new`].
    isa: Isa,
    arrays: Vec<Array>,
    num_knobs: usize,
    head_scale: f32,
    /// Input samples each output depends on, including the current one.
    receptive_field: usize,
    /// Largest block processed at once, in samples; also the row stride of every scratch.
    max_block_samples: usize,
    /// Sanitised input block, `[max_block]`.
    audio: Vec<f32>,
    /// Activations, `[max channels][max_block]`.
    activation: Vec<f32>,
    /// Head accumulator of the current array, `[max channels][max_block]`.
    head_sum: Vec<f32>,
    /// Head output of the last array processed, `[max head_size][max_block]`.
    head_out: Vec<f32>,
    /// Residual stream leaving an array, `[max channels][max_block]`.
    array_out: Vec<f32>,
    /// Start index of each source row for the block products.
    row_starts: Vec<usize>,
    /// Every layer's input history right after a full reset with `warm_knobs`, layer by
    /// layer, `[channels][history_samples]` each; empty until [`Self::store_warm_state`].
    warm_history: Vec<f32>,
}

impl WavenetKernel {
    /// Builds the kernel from `weights` (looked up by the names of
    /// [`WavenetConfig::tensor_shapes`], shapes checked) with buffers for blocks of up to
    /// `max_block_samples`, in the reset state for knobs at 0. Not real-time safe: allocates.
    pub fn new(config: &WavenetConfig, weights: &Weights, max_block_samples: usize) -> anyhow::Result<Self> {
        config.validate()?;
        let max_block = max_block_samples.max(1);
        let mut arrays = Vec::with_capacity(config.layer_arrays.len());
        let (mut max_rows, mut max_cols) = (1, 1);
        for (i, a) in config.layer_arrays.iter().enumerate() {
            let p = format!("layer_arrays.{i}");
            let (channels, k) = (a.channels, a.kernel_size);
            let conv_out = if a.gated { 2 * channels } else { channels };
            max_rows = max_rows.max(conv_out).max(a.head_size);
            max_cols = max_cols.max(k * channels).max(a.input_size);
            let rechannel = weights.get(&format!("{p}.rechannel.weight"), &[channels, a.input_size])?;
            let rechannel = PackedMatrix::new(channels, a.input_size, |r, c| rechannel[r * a.input_size + c]);
            let mut layers = Vec::with_capacity(a.dilations.len());
            for (j, &dilation) in a.dilations.iter().enumerate() {
                let l = format!("{p}.layers.{j}");
                let conv = weights.get(&format!("{l}.conv.weight"), &[conv_out, channels, k])?;
                let conv_bias = weights.get(&format!("{l}.conv.bias"), &[conv_out])?;
                let mixin = weights.get(&format!("{l}.input_mixin.weight"), &[conv_out, a.condition_size])?;
                let layer1x1 = weights.get(&format!("{l}.layer1x1.weight"), &[channels, channels])?;
                let layer1x1_bias = weights.get(&format!("{l}.layer1x1.bias"), &[channels])?;
                let history_samples = (k - 1) * dilation;
                let conv_element = |o: usize, col: usize| {
                    let (tap, channel) = (col / channels, col % channels);
                    conv[(o * channels + channel) * k + tap]
                };
                let capacity = history_samples + max_block.max(4 * history_samples).max(256);
                layers.push(Layer {
                    history_samples,
                    dilation,
                    conv: if a.gated {
                        PackedMatrix::new_gated(channels, k * channels, conv_element)
                    } else {
                        PackedMatrix::new(conv_out, k * channels, conv_element)
                    },
                    conv_bias: conv_bias.to_vec(),
                    mixin: mixin.to_vec(),
                    mixin_audio: mixin.chunks_exact(a.condition_size).map(|row| row[0]).collect(),
                    call_bias: conv_bias.to_vec(),
                    layer1x1: PackedMatrix::new(channels, channels, |r, c| layer1x1[r * channels + c]),
                    layer1x1_bias: layer1x1_bias.to_vec(),
                    input: vec![0.0; channels * capacity],
                    capacity,
                    write: history_samples,
                });
            }
            let head = weights.get(&format!("{p}.head_rechannel.weight"), &[a.head_size, channels])?;
            let head_bias = if a.head_bias {
                weights
                    .get(&format!("{p}.head_rechannel.bias"), &[a.head_size])?
                    .to_vec()
            } else {
                vec![0.0; a.head_size]
            };
            arrays.push(Array {
                channels,
                kernel_size: k,
                gated: a.gated,
                rechannel,
                layers,
                head: PackedMatrix::new(a.head_size, channels, |r, c| head[r * channels + c]),
                head_bias,
            });
        }
        let mut kernel = WavenetKernel {
            isa: Isa::detect(),
            arrays,
            num_knobs: config.num_knobs,
            head_scale: config.head_scale,
            receptive_field: config.receptive_field(),
            max_block_samples: max_block,
            audio: vec![0.0; max_block],
            activation: vec![0.0; max_rows * max_block],
            head_sum: vec![0.0; max_rows * max_block],
            head_out: vec![0.0; max_rows * max_block],
            array_out: vec![0.0; max_rows * max_block],
            row_starts: vec![0; max_cols.max(max_rows)],
            warm_history: Vec::new(),
        };
        kernel.reset(&[]);
        Ok(kernel)
    }

    /// Processes `input` into `output` (same length, any length; longer than the maximum
    /// block is split internally). `knobs` are the normalised knob values, constant over the
    /// call; missing ones count as 0, extra ones are ignored. Non-finite input samples count
    /// as 0 (so do subnormal ones). Real-time safe: no allocation.
    pub fn process(&mut self, input: &[f32], knobs: &[f32], output: &mut [f32]) {
        let samples = input.len().min(output.len());
        self.set_knobs(knobs);
        let max_block = self.max_block_samples;
        for (block_in, block_out) in input[..samples]
            .chunks(max_block)
            .zip(output[..samples].chunks_mut(max_block))
        {
            for (a, &x) in self.audio.iter_mut().zip(block_in) {
                // Subnormal input would only slow the arithmetic down: it counts as 0 too.
                *a = if x.is_finite() && x.abs() >= f32::MIN_POSITIVE {
                    x.clamp(-INPUT_LIMIT, INPUT_LIMIT)
                } else {
                    0.0
                };
            }
            self.process_block(block_in.len());
            for (y, &h) in block_out.iter_mut().zip(&self.head_out) {
                *y = self.head_scale * h;
            }
        }
        output[samples..].fill(0.0);
    }

    /// Clears all history, then runs `receptive_field - 1` zero samples with `knobs` so the
    /// next output equals the candle model's on input preceded by that many zeros.
    /// Real-time safe: no allocation; costs one receptive field of processing.
    pub fn reset(&mut self, knobs: &[f32]) {
        for array in &mut self.arrays {
            for layer in &mut array.layers {
                for row in layer.input.chunks_exact_mut(layer.capacity) {
                    row[..layer.history_samples].fill(0.0);
                }
                layer.write = layer.history_samples;
            }
        }
        self.set_knobs(knobs);
        self.audio.fill(0.0);
        let mut remaining = self.receptive_field - 1;
        while remaining > 0 {
            let block = remaining.min(self.max_block_samples);
            self.process_block(block);
            remaining -= block;
        }
    }

    /// Runs a full [`Self::reset`] with `knobs` and keeps the resulting history, so that
    /// [`Self::reset_warm`] can later return to it by copying instead of computing. Not
    /// real-time safe: allocates the snapshot (once; later calls reuse it).
    pub fn store_warm_state(&mut self, knobs: &[f32]) {
        self.reset(knobs);
        let total: usize = self
            .arrays
            .iter()
            .flat_map(|a| a.layers.iter().map(move |l| a.channels * l.history_samples))
            .sum();
        let mut snapshot = std::mem::take(&mut self.warm_history);
        snapshot.clear();
        snapshot.reserve_exact(total);
        for layer in self.arrays.iter().flat_map(|a| a.layers.iter()) {
            let start = layer.write - layer.history_samples;
            for row in layer.input.chunks_exact(layer.capacity) {
                snapshot.extend_from_slice(&row[start..layer.write]);
            }
        }
        self.warm_history = snapshot;
    }

    /// Returns to the state [`Self::store_warm_state`] kept (a copy of every layer's history,
    /// no network evaluation), with `knobs` for the calls that follow. When the knobs differ
    /// from the stored ones, the history still holds the old knobs' idle state, which the
    /// network forgets within one receptive field. Without a stored state it is a full
    /// [`Self::reset`]. Real-time safe: no allocation; costs a copy of the history.
    pub fn reset_warm(&mut self, knobs: &[f32]) {
        if self.warm_history.is_empty() {
            self.reset(knobs);
            return;
        }
        let mut offset = 0;
        for layer in self.arrays.iter_mut().flat_map(|a| a.layers.iter_mut()) {
            let history = layer.history_samples;
            for row in layer.input.chunks_exact_mut(layer.capacity) {
                row[..history].copy_from_slice(&self.warm_history[offset..offset + history]);
                offset += history;
            }
            layer.write = history;
        }
        self.set_knobs(knobs);
        self.audio.fill(0.0);
    }

    /// Folds the knob values into every layer's per-call bias.
    fn set_knobs(&mut self, knobs: &[f32]) {
        let mut values = [0.0f32; MAX_KNOBS];
        for (v, &k) in values.iter_mut().zip(knobs).take(self.num_knobs) {
            *v = if k.is_finite() { k } else { 0.0 };
        }
        let condition_size = 1 + self.num_knobs;
        for layer in self.arrays.iter_mut().flat_map(|a| a.layers.iter_mut()) {
            for ((bias, &conv_bias), mixin) in layer
                .call_bias
                .iter_mut()
                .zip(&layer.conv_bias)
                .zip(layer.mixin.chunks_exact(condition_size))
            {
                *bias = conv_bias + mixin[1..].iter().zip(&values).map(|(w, v)| w * v).sum::<f32>();
            }
        }
    }

    /// Runs `samples` (at most the maximum block) from `self.audio` through the network,
    /// leaving the last head output in `self.head_out`, on the kernel's instruction set.
    fn process_block(&mut self, samples: usize) {
        match self.isa {
            // SAFETY: `isa` is only ever set to an instruction set the CPU supports.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.process_block_avx512(samples) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.process_block_avx2(samples) },
            // SAFETY: the portable lanes run anywhere.
            _ => unsafe { self.process_block_with::<Portable, 1>(samples) },
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn process_block_avx512(&mut self, samples: usize) {
        self.process_block_with::<Avx512, 4>(samples);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn process_block_avx2(&mut self, samples: usize) {
        self.process_block_with::<Avx2, 2>(samples);
    }

    /// [`Self::process_block`] with lanes `S`, tiles `T` vectors wide.
    ///
    /// # Safety
    /// `S` must be usable on this CPU; `samples <= max_block_samples`.
    #[inline(always)]
    unsafe fn process_block_with<S: Simd, const T: usize>(&mut self, samples: usize) {
        debug_assert!(samples <= self.max_block_samples);
        let WavenetKernel {
            arrays,
            max_block_samples,
            audio,
            activation,
            head_sum,
            head_out,
            array_out,
            row_starts,
            ..
        } = self;
        let stride = *max_block_samples;
        let last_array = arrays.len() - 1;
        for layer in arrays.iter_mut().flat_map(|a| a.layers.iter_mut()) {
            if layer.write + samples > layer.capacity {
                let (from, history) = (layer.write - layer.history_samples, layer.history_samples);
                for row in layer.input.chunks_exact_mut(layer.capacity) {
                    row.copy_within(from..from + history, 0);
                }
                layer.write = history;
            }
        }
        for (array_index, array) in arrays.iter_mut().enumerate() {
            let channels = array.channels;
            // Rechannel the array input (audio, or the previous array's residual stream).
            let source = if array_index == 0 {
                audio.as_ptr()
            } else {
                array_out.as_ptr()
            };
            for (r, start) in row_starts.iter_mut().take(array.rechannel.cols()).enumerate() {
                *start = r * stride;
            }
            {
                let first = &mut array.layers[0];
                let mut stage = Store {
                    bias: std::ptr::null(),
                    dst: first.input.as_mut_ptr().add(first.write),
                    dst_stride: first.capacity,
                };
                array.rechannel.run::<S, T, _>(source, row_starts, &mut stage, samples);
            }
            // The head sum starts from the previous array's head output (or zero).
            for c in 0..channels {
                let row = &mut head_sum[c * stride..c * stride + samples];
                if array_index == 0 {
                    row.fill(0.0);
                } else {
                    row.copy_from_slice(&head_out[c * stride..c * stride + samples]);
                }
            }
            let layer_count = array.layers.len();
            for layer_index in 0..layer_count {
                let (current, rest) = array.layers.split_at_mut(layer_index + 1);
                let layer = &mut current[layer_index];
                // act = activation(call bias + audio mixin + dilated convolution); head += act.
                let k = array.kernel_size;
                for tap in 0..k {
                    let offset = layer.write - (k - 1 - tap) * layer.dilation;
                    for c in 0..channels {
                        row_starts[tap * channels + c] = c * layer.capacity + offset;
                    }
                }
                let mut conv = Conv {
                    bias: layer.call_bias.as_ptr(),
                    audio_weight: layer.mixin_audio.as_ptr(),
                    audio: audio.as_ptr(),
                    gated: array.gated,
                    act: activation.as_mut_ptr(),
                    head_sum: head_sum.as_mut_ptr(),
                    stride,
                };
                layer
                    .conv
                    .run::<S, T, _>(layer.input.as_ptr(), row_starts, &mut conv, samples);
                // Residual: next input = input + layer1x1 bias + layer1x1 . activation.
                let last_layer = layer_index + 1 == layer_count;
                if !(last_layer && array_index == last_array) {
                    let (dst, dst_stride) = if last_layer {
                        (array_out.as_mut_ptr(), stride)
                    } else {
                        let next = &mut rest[0];
                        (next.input.as_mut_ptr().add(next.write), next.capacity)
                    };
                    for (c, start) in row_starts.iter_mut().take(channels).enumerate() {
                        *start = c * stride;
                    }
                    let mut residual = Residual {
                        input: layer.input.as_ptr().add(layer.write),
                        input_stride: layer.capacity,
                        bias: layer.layer1x1_bias.as_ptr(),
                        dst,
                        dst_stride,
                    };
                    layer
                        .layer1x1
                        .run::<S, T, _>(activation.as_ptr(), row_starts, &mut residual, samples);
                }
                layer.write += samples;
            }
            // Head output = head bias + head_rechannel . head sum.
            for (c, start) in row_starts.iter_mut().take(channels).enumerate() {
                *start = c * stride;
            }
            let mut stage = Store {
                bias: array.head_bias.as_ptr(),
                dst: head_out.as_mut_ptr(),
                dst_stride: stride,
            };
            array
                .head
                .run::<S, T, _>(head_sum.as_ptr(), row_starts, &mut stage, samples);
        }
    }

    /// Runs on `isa` instead of the detected instruction set (tests compare the paths).
    #[cfg(test)]
    pub(crate) fn set_isa(&mut self, isa: Isa) {
        self.isa = isa;
    }
}

#[cfg(test)]
#[path = "wavenet_tests.rs"]
mod tests;
