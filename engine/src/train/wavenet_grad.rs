//! Hand-derived forward and backward pass of the WaveNet for training, over plain `f32`
//! slices with the dense products done by `gemm`. Trainer thread only.
//!
//! Candle builds a graph and allocates on every op; for these small networks that overhead
//! dominates a training step. This pass computes exactly what [`crate::model::WavenetModel`]
//! computes (same activation formulas, same "valid" convolutions shrinking the time axis),
//! keeps every intermediate it needs in a [`Workspace`] allocated once, and derives the
//! gradient by hand. `wavenet_grad_tests.rs` checks both against candle's autograd.
//!
//! Layout: every signal is channel-major, `[channels][length]`. A segment's input is the
//! audio of `receptive_field - 1 + segment` samples; each layer shortens it by
//! `(kernel_size - 1) * dilation`; the head only matters over the last `segment` samples, so
//! head sums are kept at that length.

use super::dense::{matmul, matmul_strided, View};
use super::params::ParamLayout;
use crate::kernel::activation::{sigmoid, tanh};
use crate::model::{ModelConfig, WavenetConfig};

/// Offsets of one layer's tensors in the flat parameter vector.
struct LayerParams {
    dilation: usize,
    conv: usize,
    conv_bias: usize,
    mixin: usize,
    layer1x1: usize,
    layer1x1_bias: usize,
}

/// Offsets and sizes of one layer array.
struct ArrayParams {
    input_size: usize,
    channels: usize,
    head_size: usize,
    kernel_size: usize,
    gated: bool,
    rechannel: usize,
    layers: Vec<LayerParams>,
    head: usize,
    head_bias: Option<usize>,
}

impl ArrayParams {
    fn conv_out(&self) -> usize {
        if self.gated {
            2 * self.channels
        } else {
            self.channels
        }
    }
}

/// The WaveNet's training pass: parameter offsets and sizes, no state.
pub(crate) struct WavenetGrad {
    arrays: Vec<ArrayParams>,
    condition_size: usize,
    head_scale: f32,
    receptive_field: usize,
    parameter_count: usize,
}

/// One array's forward intermediates.
struct ArrayBuffers {
    /// Per layer its input `X_j`, `[channels][length_j]`, then the array's residual output.
    inputs: Vec<Vec<f32>>,
    /// Per layer its activation `[channels][out_length]`; gated layers append the tanh and
    /// sigmoid halves (`[3 * channels][out_length]`).
    activations: Vec<Vec<f32>>,
    /// Sum of the activations (plus the previous head) over the segment, `[channels][segment]`.
    head_sum: Vec<f32>,
    /// Head output over the segment, `[head_size][segment]`.
    head_out: Vec<f32>,
}

/// Everything one segment's forward and backward pass needs, allocated once per segment
/// length. Fill [`Self::audio`] and [`Self::knobs`], run forward, then backward.
pub(crate) struct Workspace {
    segment: usize,
    /// Input audio, `receptive_field - 1 + segment` samples.
    pub audio: Vec<f32>,
    /// Normalised knob values.
    pub knobs: Vec<f32>,
    /// Prediction over the segment.
    pub output: Vec<f32>,
    arrays: Vec<ArrayBuffers>,
    z: Vec<f32>,
    d_next: Vec<f32>,
    d_current: Vec<f32>,
    d_activation: Vec<f32>,
    d_head_out: Vec<f32>,
    d_head_sum: Vec<f32>,
}

impl WavenetGrad {
    /// The pass for `config`, with offsets into the flat vector of `layout`.
    pub fn new(config: &WavenetConfig, layout: &ParamLayout) -> Self {
        let arrays = config
            .layer_arrays
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let p = format!("layer_arrays.{i}");
                ArrayParams {
                    input_size: a.input_size,
                    channels: a.channels,
                    head_size: a.head_size,
                    kernel_size: a.kernel_size,
                    gated: a.gated,
                    rechannel: layout.offset(&format!("{p}.rechannel.weight")),
                    layers: a
                        .dilations
                        .iter()
                        .enumerate()
                        .map(|(j, &dilation)| {
                            let l = format!("{p}.layers.{j}");
                            LayerParams {
                                dilation,
                                conv: layout.offset(&format!("{l}.conv.weight")),
                                conv_bias: layout.offset(&format!("{l}.conv.bias")),
                                mixin: layout.offset(&format!("{l}.input_mixin.weight")),
                                layer1x1: layout.offset(&format!("{l}.layer1x1.weight")),
                                layer1x1_bias: layout.offset(&format!("{l}.layer1x1.bias")),
                            }
                        })
                        .collect(),
                    head: layout.offset(&format!("{p}.head_rechannel.weight")),
                    head_bias: a.head_bias.then(|| layout.offset(&format!("{p}.head_rechannel.bias"))),
                }
            })
            .collect();
        WavenetGrad {
            arrays,
            condition_size: 1 + config.num_knobs,
            head_scale: config.head_scale,
            receptive_field: config.receptive_field(),
            parameter_count: ModelConfig::Wavenet(config.clone()).parameter_count(),
        }
    }

    /// Input samples a segment of `segment` outputs needs.
    pub fn input_samples(&self, segment: usize) -> usize {
        self.receptive_field - 1 + segment
    }

    /// A workspace for segments of `segment` output samples.
    pub fn workspace(&self, segment: usize) -> Workspace {
        let mut length = self.input_samples(segment);
        let (mut max_rows, mut max_length) = (1, length);
        let arrays = self
            .arrays
            .iter()
            .map(|a| {
                max_rows = max_rows.max(a.conv_out()).max(a.input_size).max(a.head_size);
                max_length = max_length.max(length);
                let mut inputs = vec![vec![0.0; a.channels * length]];
                let mut activations = Vec::with_capacity(a.layers.len());
                for layer in &a.layers {
                    length -= (a.kernel_size - 1) * layer.dilation;
                    inputs.push(vec![0.0; a.channels * length]);
                    let rows = if a.gated { 3 * a.channels } else { a.channels };
                    activations.push(vec![0.0; rows * length]);
                }
                ArrayBuffers {
                    inputs,
                    activations,
                    head_sum: vec![0.0; a.channels * segment],
                    head_out: vec![0.0; a.head_size * segment],
                }
            })
            .collect();
        Workspace {
            segment,
            audio: vec![0.0; self.input_samples(segment)],
            knobs: vec![0.0; self.condition_size - 1],
            output: vec![0.0; segment],
            arrays,
            z: vec![0.0; max_rows * max_length],
            d_next: vec![0.0; max_rows * max_length],
            d_current: vec![0.0; max_rows * max_length],
            d_activation: vec![0.0; max_rows * max_length],
            d_head_out: vec![0.0; max_rows * segment],
            d_head_sum: vec![0.0; max_rows * segment],
        }
    }

    /// Runs the network over `ws.audio` with `ws.knobs`, leaving the prediction in
    /// `ws.output` and the intermediates for [`Self::backward`].
    pub fn forward(&self, params: &[f32], ws: &mut Workspace) {
        assert_eq!(params.len(), self.parameter_count, "parameter vector size");
        let segment = ws.segment;
        let total = ws.audio.len();
        let last_array = self.arrays.len() - 1;
        for (array_index, a) in self.arrays.iter().enumerate() {
            let (done, rest) = ws.arrays.split_at_mut(array_index);
            let buffers = &mut rest[0];
            let channels = a.channels;
            // Rechannel the array input into the first layer's input.
            let length = buffers.inputs[0].len() / channels;
            let source = match done.last() {
                None => View::rows(&ws.audio, 0, 1, length, length),
                Some(previous) => {
                    let residual = previous.inputs.last().expect("array has an output");
                    View::rows(residual, 0, a.input_size, length, length)
                }
            };
            let rechannel = View::rows(params, a.rechannel, channels, a.input_size, a.input_size);
            matmul(&mut buffers.inputs[0], 0, length, rechannel, source, false);
            match done.last() {
                None => buffers.head_sum.fill(0.0),
                Some(previous) => buffers.head_sum.copy_from_slice(&previous.head_out),
            }
            let mut length = length;
            for (j, layer) in a.layers.iter().enumerate() {
                let out_length = length - (a.kernel_size - 1) * layer.dilation;
                let conv_out = a.conv_out();
                let audio = &ws.audio[total - out_length..];
                // z = conv bias + knob mixin + audio mixin + dilated convolution.
                for o in 0..conv_out {
                    let mixin = &params[layer.mixin + o * self.condition_size..][..self.condition_size];
                    let bias =
                        params[layer.conv_bias + o] + mixin[1..].iter().zip(&ws.knobs).map(|(w, k)| w * k).sum::<f32>();
                    for (z, &x) in ws.z[o * out_length..(o + 1) * out_length].iter_mut().zip(audio) {
                        *z = bias + mixin[0] * x;
                    }
                }
                let (inputs, outputs) = buffers.inputs.split_at_mut(j + 1);
                let input = &inputs[j];
                for tap in 0..a.kernel_size {
                    let weight = conv_tap(params, layer.conv + tap, conv_out, channels, a.kernel_size);
                    let shifted = View::rows(input, tap * layer.dilation, channels, out_length, length);
                    matmul(&mut ws.z, 0, out_length, weight, shifted, true);
                }
                let activation = &mut buffers.activations[j];
                let n = channels * out_length;
                if a.gated {
                    let (act, halves) = activation.split_at_mut(n);
                    let (filter, gate) = halves.split_at_mut(n);
                    for i in 0..n {
                        filter[i] = tanh(ws.z[i]);
                        gate[i] = sigmoid(ws.z[n + i]);
                        act[i] = filter[i] * gate[i];
                    }
                } else {
                    for (y, &z) in activation.iter_mut().zip(&ws.z[..n]) {
                        *y = tanh(z);
                    }
                }
                for c in 0..channels {
                    let act = &activation[c * out_length + out_length - segment..][..segment];
                    for (h, &y) in buffers.head_sum[c * segment..][..segment].iter_mut().zip(act) {
                        *h += y;
                    }
                }
                let output = &mut outputs[0];
                if array_index == last_array && j + 1 == a.layers.len() {
                    // The very last residual update feeds nothing.
                    output.fill(0.0);
                } else {
                    let skip = (a.kernel_size - 1) * layer.dilation;
                    for c in 0..channels {
                        let bias = params[layer.layer1x1_bias + c];
                        let from = &input[c * length + skip..][..out_length];
                        for (y, &x) in output[c * out_length..][..out_length].iter_mut().zip(from) {
                            *y = x + bias;
                        }
                    }
                    let weight = View::rows(params, layer.layer1x1, channels, channels, channels);
                    let act = View::rows(activation, 0, channels, out_length, out_length);
                    matmul(output, 0, out_length, weight, act, true);
                }
                length = out_length;
            }
            debug_assert!(array_index != last_array || length == segment);
            for h in 0..a.head_size {
                let bias = a.head_bias.map_or(0.0, |b| params[b + h]);
                buffers.head_out[h * segment..][..segment].fill(bias);
            }
            let head = View::rows(params, a.head, a.head_size, channels, channels);
            let sum = View::rows(&buffers.head_sum, 0, channels, segment, segment);
            matmul(&mut buffers.head_out, 0, segment, head, sum, true);
        }
        let last = &ws.arrays[last_array].head_out;
        for (y, &h) in ws.output.iter_mut().zip(last) {
            *y = self.head_scale * h;
        }
    }

    /// Adds to `gradient` (the flat layout's size) the gradient of a loss whose derivative
    /// with respect to `ws.output` is `d_output`, using the intermediates of the last
    /// [`Self::forward`] on `ws`.
    pub fn backward(&self, params: &[f32], ws: &mut Workspace, d_output: &[f32], gradient: &mut [f32]) {
        assert_eq!(gradient.len(), self.parameter_count, "gradient vector size");
        let segment = ws.segment;
        let total = ws.audio.len();
        let last_array = self.arrays.len() - 1;
        for (d, &g) in ws.d_head_out[..segment].iter_mut().zip(d_output) {
            *d = self.head_scale * g;
        }
        for (array_index, a) in self.arrays.iter().enumerate().rev() {
            let (before, rest) = ws.arrays.split_at(array_index);
            let buffers = &rest[0];
            let channels = a.channels;
            // Head: head_out = W_h head_sum + b_h.
            let d_head_out = View::rows(&ws.d_head_out, 0, a.head_size, segment, segment);
            let sum_t = View::rows(&buffers.head_sum, 0, channels, segment, segment).t();
            matmul(gradient, a.head, channels, d_head_out, sum_t, true);
            if let Some(b) = a.head_bias {
                for h in 0..a.head_size {
                    gradient[b + h] += ws.d_head_out[h * segment..][..segment].iter().sum::<f32>();
                }
            }
            let head_t = View::rows(params, a.head, a.head_size, channels, channels).t();
            matmul(&mut ws.d_head_sum, 0, segment, head_t, d_head_out, false);
            // Gradient with respect to the array's residual output (zero for the last array,
            // else left in d_next by the next array's rechannel).
            let mut length = buffers.inputs.last().expect("array has an output").len() / channels;
            if array_index == last_array {
                ws.d_next[..channels * length].fill(0.0);
            }
            for (j, layer) in a.layers.iter().enumerate().rev() {
                let out_length = length;
                let in_length = buffers.inputs[j].len() / channels;
                let skip = (a.kernel_size - 1) * layer.dilation;
                let has_update = !(array_index == last_array && j + 1 == a.layers.len());
                let n = channels * out_length;
                let activation = &buffers.activations[j];
                // d activation = W_1^T d_next (residual) + d head sum (last `segment` samples).
                if has_update {
                    let w1_t = View::rows(params, layer.layer1x1, channels, channels, channels).t();
                    let d_next = View::rows(&ws.d_next, 0, channels, out_length, out_length);
                    matmul(&mut ws.d_activation, 0, out_length, w1_t, d_next, false);
                    let act_t = View::rows(activation, 0, channels, out_length, out_length).t();
                    matmul(gradient, layer.layer1x1, channels, d_next, act_t, true);
                    for c in 0..channels {
                        gradient[layer.layer1x1_bias + c] +=
                            ws.d_next[c * out_length..][..out_length].iter().sum::<f32>();
                    }
                } else {
                    ws.d_activation[..n].fill(0.0);
                }
                for c in 0..channels {
                    let d_act = &mut ws.d_activation[c * out_length + out_length - segment..][..segment];
                    for (d, &h) in d_act.iter_mut().zip(&ws.d_head_sum[c * segment..][..segment]) {
                        *d += h;
                    }
                }
                // d z through the activation (derivatives as the candle op's backward).
                let conv_out = a.conv_out();
                let (d_filter, d_gate) = ws.z.split_at_mut(n);
                if a.gated {
                    let (filter, gate) = activation[n..].split_at(n);
                    for (i, (df, dg)) in d_filter.iter_mut().zip(&mut d_gate[..n]).enumerate() {
                        let (d, f, g) = (ws.d_activation[i], filter[i], gate[i]);
                        *df = d * g * (1.0 - f * f);
                        *dg = d * f * g * (1.0 - g);
                    }
                } else {
                    for ((dz, &d), &y) in d_filter.iter_mut().zip(&ws.d_activation[..n]).zip(&activation[..n]) {
                        *dz = d * (1.0 - y * y);
                    }
                }
                let d_z = View::rows(&ws.z, 0, conv_out, out_length, out_length);
                let audio = &ws.audio[total - out_length..];
                for o in 0..conv_out {
                    let row = &ws.z[o * out_length..][..out_length];
                    let sum: f32 = row.iter().sum();
                    gradient[layer.conv_bias + o] += sum;
                    let mixin = layer.mixin + o * self.condition_size;
                    gradient[mixin] += row.iter().zip(audio).map(|(d, x)| d * x).sum::<f32>();
                    for (k, &knob) in ws.knobs.iter().enumerate() {
                        gradient[mixin + 1 + k] += sum * knob;
                    }
                }
                // Convolution weights and the input's gradient.
                let input = &buffers.inputs[j];
                let d_current = &mut ws.d_current[..channels * in_length];
                d_current.fill(0.0);
                if has_update {
                    for c in 0..channels {
                        let from = &ws.d_next[c * out_length..][..out_length];
                        d_current[c * in_length + skip..][..out_length].copy_from_slice(from);
                    }
                }
                for tap in 0..a.kernel_size {
                    let shifted_t = View::rows(input, tap * layer.dilation, channels, out_length, in_length).t();
                    let k = a.kernel_size;
                    matmul_strided(gradient, layer.conv + tap, channels * k, k, d_z, shifted_t, true);
                    let weight_t = conv_tap(params, layer.conv + tap, conv_out, channels, k).t();
                    matmul(d_current, tap * layer.dilation, in_length, weight_t, d_z, true);
                }
                std::mem::swap(&mut ws.d_next, &mut ws.d_current);
                length = in_length;
            }
            // Rechannel: X_0 = W_r R_0, where R_0 is the audio or the previous array's output.
            let d_x0 = View::rows(&ws.d_next, 0, channels, length, length);
            let source = match before.last() {
                None => View::rows(&ws.audio, 0, 1, length, length),
                Some(previous) => View::rows(
                    previous.inputs.last().expect("array has an output"),
                    0,
                    a.input_size,
                    length,
                    length,
                ),
            };
            matmul(gradient, a.rechannel, a.input_size, d_x0, source.t(), true);
            if array_index > 0 {
                let rechannel_t = View::rows(params, a.rechannel, channels, a.input_size, a.input_size).t();
                matmul(&mut ws.d_current, 0, length, rechannel_t, d_x0, false);
                std::mem::swap(&mut ws.d_next, &mut ws.d_current);
                // head_sum = previous head_out + ..., so its gradient passes straight through.
                let rows = a.channels * segment;
                ws.d_head_out[..rows].copy_from_slice(&ws.d_head_sum[..rows]);
            }
        }
    }
}

/// Tap `tap` of a conv weight `[conv_out, channels, kernel_size]` stored at `offset - tap`,
/// as a `[conv_out, channels]` view (pass `offset = conv + tap`).
fn conv_tap(params: &[f32], offset: usize, conv_out: usize, channels: usize, kernel_size: usize) -> View<'_> {
    View {
        data: params,
        offset,
        rows: conv_out,
        cols: channels,
        row_stride: channels * kernel_size,
        col_stride: kernel_size,
    }
}

#[cfg(test)]
#[path = "wavenet_grad_tests.rs"]
mod tests;
