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

use super::activation;
use matrix::PackedMatrix;

use crate::model::{WavenetConfig, MAX_KNOBS};
use crate::profile::Weights;

/// Input samples are clamped to +-this (+60 dBFS) so no input can overflow the network.
const INPUT_LIMIT: f32 = 1000.0;

/// One dilated layer: weights laid out for the block products, and its input history.
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
pub struct WavenetKernel {
    arrays: Vec<Array>,
    num_knobs: usize,
    head_scale: f32,
    /// Input samples each output depends on, including the current one.
    receptive_field: usize,
    /// Largest block processed at once, in samples; also the row stride of every scratch.
    max_block_samples: usize,
    /// Sanitised input block, `[max_block]`.
    audio: Vec<f32>,
    /// Convolution outputs, `[max conv_out][max_block]`.
    z: Vec<f32>,
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
                let capacity = history_samples + max_block.max(4 * history_samples).max(256);
                layers.push(Layer {
                    history_samples,
                    dilation,
                    conv: PackedMatrix::new(conv_out, k * channels, |o, col| {
                        let (tap, channel) = (col / channels, col % channels);
                        conv[(o * channels + channel) * k + tap]
                    }),
                    conv_bias: conv_bias.to_vec(),
                    mixin: mixin.to_vec(),
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
            arrays,
            num_knobs: config.num_knobs,
            head_scale: config.head_scale,
            receptive_field: config.receptive_field(),
            max_block_samples: max_block,
            audio: vec![0.0; max_block],
            z: vec![0.0; max_rows * max_block],
            activation: vec![0.0; max_rows * max_block],
            head_sum: vec![0.0; max_rows * max_block],
            head_out: vec![0.0; max_rows * max_block],
            array_out: vec![0.0; max_rows * max_block],
            row_starts: vec![0; max_cols.max(max_rows)],
        };
        kernel.reset(&[]);
        Ok(kernel)
    }

    /// Processes `input` into `output` (same length, any length; longer than the maximum
    /// block is split internally). `knobs` are the normalised knob values, constant over the
    /// call; missing ones count as 0, extra ones are ignored. Non-finite input samples count
    /// as 0. Real-time safe: no allocation.
    pub fn process(&mut self, input: &[f32], knobs: &[f32], output: &mut [f32]) {
        let samples = input.len().min(output.len());
        self.set_knobs(knobs);
        let max_block = self.max_block_samples;
        for (block_in, block_out) in input[..samples]
            .chunks(max_block)
            .zip(output[..samples].chunks_mut(max_block))
        {
            for (a, &x) in self.audio.iter_mut().zip(block_in) {
                *a = if x.is_finite() {
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
    /// leaving the last head output in `self.head_out`. Uses AVX2 code where the CPU has it
    /// (same operations in the same order, so bitwise the same results).
    fn process_block(&mut self, samples: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { self.process_block_avx2(samples) };
            return;
        }
        self.process_block_portable(samples);
    }

    /// [`Self::process_block`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn process_block_avx2(&mut self, samples: usize) {
        self.process_block_portable(samples);
    }

    #[inline(always)]
    fn process_block_portable(&mut self, samples: usize) {
        let WavenetKernel {
            arrays,
            max_block_samples,
            audio,
            z,
            activation,
            head_sum,
            head_out,
            array_out,
            row_starts,
            ..
        } = self;
        let stride = *max_block_samples;
        let condition_size = 1 + self.num_knobs;
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
            let (source, source_rows): (&[f32], usize) = if array_index == 0 {
                (audio, 1)
            } else {
                (array_out, array.rechannel_cols())
            };
            for (r, start) in row_starts.iter_mut().take(source_rows).enumerate() {
                *start = r * stride;
            }
            {
                let first = &mut array.layers[0];
                for row in first.input.chunks_exact_mut(first.capacity) {
                    row[first.write..first.write + samples].fill(0.0);
                }
                array.rechannel.accumulate(
                    source,
                    row_starts,
                    &mut first.input,
                    first.write,
                    first.capacity,
                    samples,
                );
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
                // z = call bias + audio mixin + dilated convolution.
                for (o, (&bias, mixin)) in layer
                    .call_bias
                    .iter()
                    .zip(layer.mixin.chunks_exact(condition_size))
                    .enumerate()
                {
                    let w_audio = mixin[0];
                    for (zv, &x) in z[o * stride..o * stride + samples].iter_mut().zip(&audio[..samples]) {
                        *zv = bias + w_audio * x;
                    }
                }
                let k = array.kernel_size;
                for tap in 0..k {
                    let offset = layer.write - (k - 1 - tap) * layer.dilation;
                    for c in 0..channels {
                        row_starts[tap * channels + c] = c * layer.capacity + offset;
                    }
                }
                layer.conv.accumulate(&layer.input, row_starts, z, 0, stride, samples);
                // Activation, summed into the head.
                for c in 0..channels {
                    let act = &mut activation[c * stride..c * stride + samples];
                    let filter = &z[c * stride..c * stride + samples];
                    if array.gated {
                        let gate = &z[(channels + c) * stride..(channels + c) * stride + samples];
                        for ((a, &f), &g) in act.iter_mut().zip(filter).zip(gate) {
                            *a = activation::tanh(f) * activation::sigmoid(g);
                        }
                    } else {
                        for (a, &f) in act.iter_mut().zip(filter) {
                            *a = activation::tanh(f);
                        }
                    }
                    for (h, &a) in head_sum[c * stride..c * stride + samples].iter_mut().zip(act.iter()) {
                        *h += a;
                    }
                }
                // Residual: next input = input + layer1x1 bias + layer1x1 . activation.
                let last_layer = layer_index + 1 == layer_count;
                if !(last_layer && array_index == last_array) {
                    let (dst, dst_start, dst_stride): (&mut [f32], usize, usize) = if last_layer {
                        (&mut array_out[..], 0, stride)
                    } else {
                        let next = &mut rest[0];
                        (&mut next.input[..], next.write, next.capacity)
                    };
                    for c in 0..channels {
                        let x = &layer.input[c * layer.capacity + layer.write..][..samples];
                        let bias = layer.layer1x1_bias[c];
                        let at = dst_start + c * dst_stride;
                        for (d, &xv) in dst[at..at + samples].iter_mut().zip(x) {
                            *d = xv + bias;
                        }
                    }
                    for (c, start) in row_starts.iter_mut().take(channels).enumerate() {
                        *start = c * stride;
                    }
                    layer
                        .layer1x1
                        .accumulate(activation, row_starts, dst, dst_start, dst_stride, samples);
                }
                layer.write += samples;
            }
            // Head output = head bias + head_rechannel . head sum.
            for (h, &bias) in array.head_bias.iter().enumerate() {
                head_out[h * stride..h * stride + samples].fill(bias);
            }
            for (c, start) in row_starts.iter_mut().take(channels).enumerate() {
                *start = c * stride;
            }
            array
                .head
                .accumulate(head_sum, row_starts, head_out, 0, stride, samples);
        }
    }
}

impl Array {
    /// Channels the array takes in.
    fn rechannel_cols(&self) -> usize {
        self.rechannel.cols()
    }
}

#[cfg(test)]
#[path = "wavenet_tests.rs"]
mod tests;
