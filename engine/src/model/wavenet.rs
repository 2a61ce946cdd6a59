//! NAM-style WaveNet: dilated causal convolution layer arrays with a summed head.
//! Config and candle module (trainer thread / CLI); the streaming twin is
//! [`crate::kernel::wavenet`].
//!
//! Per layer array: a 1x1 `rechannel` from the array input to `channels`; per layer a
//! dilated causal `conv` (`channels` -> `channels`, or `2 * channels` when gated), plus a
//! bias-free 1x1 `input_mixin` of the condition (audio + normalised knobs), an activation
//! (tanh, or tanh * sigmoid when gated), a 1x1 `layer1x1` added back to the residual
//! stream, and the activation summed into the head. A 1x1 `head_rechannel` maps the summed
//! activations to `head_size`. The next array takes the residual stream as input and adds
//! its head sum onto the previous head output. Output = `head_scale` * last head output.

mod activation_op;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::Size;

/// One layer array of a WaveNet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerArrayConfig {
    /// Channels coming in (1 for the first array: the audio).
    pub input_size: usize,
    /// Channels of the condition fed to every layer's input mixin (1 + number of knobs).
    pub condition_size: usize,
    /// Residual channels.
    pub channels: usize,
    /// Channels of this array's head output.
    pub head_size: usize,
    /// Taps of each dilated convolution.
    pub kernel_size: usize,
    /// One dilation per layer, in samples.
    pub dilations: Vec<usize>,
    /// Gated activation (tanh * sigmoid) instead of plain tanh.
    pub gated: bool,
    /// Whether `head_rechannel` has a bias.
    pub head_bias: bool,
}

/// Hyperparameters of a WaveNet model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WavenetConfig {
    /// Conditioning knobs, fed with the audio into every layer's input mixin.
    pub num_knobs: usize,
    /// The layer arrays, input to output.
    pub layer_arrays: Vec<LayerArrayConfig>,
    /// Scale applied to the last head output.
    pub head_scale: f32,
}

impl WavenetConfig {
    /// NAM's published presets (two layer arrays, kernel 3, tanh, head scale 0.02):
    /// standard 16/8 channels over dilations 1..512 twice; lite, feather and nano use
    /// 12/6, 8/4 and 4/2 channels over dilations 1..64 then 128..512, 1..512.
    pub fn preset(size: Size, num_knobs: usize) -> Self {
        let powers = |from: u32, to: u32| (from..=to).map(|p| 1usize << p).collect::<Vec<_>>();
        let (channels, dilations_a, dilations_b) = match size {
            Size::Standard => ([16, 8], powers(0, 9), powers(0, 9)),
            Size::Lite => ([12, 6], powers(0, 6), [powers(7, 9), powers(0, 9)].concat()),
            Size::Feather => ([8, 4], powers(0, 6), [powers(7, 9), powers(0, 9)].concat()),
            Size::Nano => ([4, 2], powers(0, 6), [powers(7, 9), powers(0, 9)].concat()),
        };
        let condition_size = 1 + num_knobs;
        WavenetConfig {
            num_knobs,
            layer_arrays: vec![
                LayerArrayConfig {
                    input_size: 1,
                    condition_size,
                    channels: channels[0],
                    head_size: channels[1],
                    kernel_size: 3,
                    dilations: dilations_a,
                    gated: false,
                    head_bias: false,
                },
                LayerArrayConfig {
                    input_size: channels[0],
                    condition_size,
                    channels: channels[1],
                    head_size: 1,
                    kernel_size: 3,
                    dilations: dilations_b,
                    gated: false,
                    head_bias: true,
                },
            ],
            head_scale: 0.02,
        }
    }

    /// Input samples each output depends on, including the current one.
    pub fn receptive_field(&self) -> usize {
        1 + self
            .layer_arrays
            .iter()
            .flat_map(|a| a.dilations.iter().map(move |d| (a.kernel_size - 1) * d))
            .sum::<usize>()
    }

    /// Every tensor by name and shape. Convolution weights are `[out, in, kernel_size]`,
    /// 1x1 weights `[out, in]`, biases `[out]`.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut shapes = Vec::new();
        for (i, a) in self.layer_arrays.iter().enumerate() {
            let p = format!("layer_arrays.{i}");
            let conv_out = if a.gated { 2 * a.channels } else { a.channels };
            shapes.push((format!("{p}.rechannel.weight"), vec![a.channels, a.input_size]));
            for j in 0..a.dilations.len() {
                let l = format!("{p}.layers.{j}");
                shapes.push((format!("{l}.conv.weight"), vec![conv_out, a.channels, a.kernel_size]));
                shapes.push((format!("{l}.conv.bias"), vec![conv_out]));
                shapes.push((format!("{l}.input_mixin.weight"), vec![conv_out, a.condition_size]));
                shapes.push((format!("{l}.layer1x1.weight"), vec![a.channels, a.channels]));
                shapes.push((format!("{l}.layer1x1.bias"), vec![a.channels]));
            }
            shapes.push((format!("{p}.head_rechannel.weight"), vec![a.head_size, a.channels]));
            if a.head_bias {
                shapes.push((format!("{p}.head_rechannel.bias"), vec![a.head_size]));
            }
        }
        shapes
    }

    /// Checks that the arrays chain: sizes positive, each array's input is the previous
    /// array's channels, its head size matches the next array's head input, the condition
    /// is audio + knobs, and the last head outputs one channel.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.layer_arrays.is_empty(), "wavenet has no layer arrays");
        anyhow::ensure!(self.head_scale.is_finite(), "wavenet head_scale is not finite");
        for (i, a) in self.layer_arrays.iter().enumerate() {
            anyhow::ensure!(
                a.channels > 0 && a.head_size > 0 && a.kernel_size > 0 && !a.dilations.is_empty(),
                "wavenet layer array {i} has an empty dimension"
            );
            anyhow::ensure!(
                a.dilations.iter().all(|&d| d > 0 && d <= 1 << 16),
                "wavenet layer array {i} has a dilation out of range"
            );
            anyhow::ensure!(
                a.condition_size == 1 + self.num_knobs,
                "wavenet layer array {i} has condition size {}, expected 1 + {} knobs",
                a.condition_size,
                self.num_knobs
            );
            let expected_input = if i == 0 { 1 } else { self.layer_arrays[i - 1].channels };
            anyhow::ensure!(
                a.input_size == expected_input,
                "wavenet layer array {i} takes {} inputs, expected {expected_input}",
                a.input_size
            );
            if i > 0 {
                let previous_head = self.layer_arrays[i - 1].head_size;
                anyhow::ensure!(
                    previous_head == a.channels,
                    "wavenet layer array {} head size {previous_head} must equal array {i}'s channels {}",
                    i - 1,
                    a.channels
                );
            }
        }
        anyhow::ensure!(
            self.layer_arrays.last().is_some_and(|a| a.head_size == 1),
            "wavenet's last head must output 1 channel"
        );
        Ok(())
    }
}

/// Uniform init bound for a weight whose output sums `fan_in` inputs (PyTorch's default
/// `1 / sqrt(fan_in)`), so activations start in tanh's linear range.
fn weight_init(fan_in: usize) -> candle_nn::Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    candle_nn::Init::Uniform { lo: -bound, up: bound }
}

/// One dilated layer's variables.
struct WavenetLayer {
    /// `[conv_out, channels, kernel_size]`.
    conv_weight: Tensor,
    /// `[conv_out]`.
    conv_bias: Tensor,
    /// `[conv_out, condition_size]`.
    input_mixin: Tensor,
    /// `[channels, channels]`.
    layer1x1_weight: Tensor,
    /// `[channels]`.
    layer1x1_bias: Tensor,
    /// Spacing of the convolution taps, in samples.
    dilation: usize,
}

/// One layer array's variables.
struct WavenetArray {
    config: LayerArrayConfig,
    /// `[channels, input_size]`.
    rechannel: Tensor,
    layers: Vec<WavenetLayer>,
    /// `[head_size, channels]`.
    head_weight: Tensor,
    /// `[head_size]`, when the array's head has a bias.
    head_bias: Option<Tensor>,
}

/// The candle WaveNet (training and reference output). Built from a [`candle_nn::VarBuilder`]
/// with exactly the names of [`WavenetConfig::tensor_shapes`]; [`candle_core::Module::forward`]
/// maps `[batch, 1 + num_knobs, time]` to `[batch, time - receptive_field + 1]` with valid
/// (unpadded) causal convolutions.
///
/// Internally activations are laid out `[channels, batch, time]` so that every convolution,
/// mixin and bias of a layer is a single matrix product over all batch items: the kernel's
/// taps are `narrow`ed time shifts stacked along channels together with a row of ones
/// (bias) and the condition. The last array's last `layer1x1` feeds nothing and is not
/// evaluated, so those two variables get no gradient (optimisers skip them).
pub struct WavenetModel {
    arrays: Vec<WavenetArray>,
    head_scale: f64,
}

impl WavenetModel {
    /// Fetches (or, from a `VarMap`-backed builder, creates with fan-in scaled uniform
    /// weights and zero biases) every tensor of `config`.
    pub fn new(config: &WavenetConfig, vb: candle_nn::VarBuilder) -> candle_core::Result<Self> {
        config
            .validate()
            .map_err(|e| candle_core::Error::Msg(format!("invalid wavenet config: {e:#}")))?;
        let zeros = candle_nn::Init::Const(0.0);
        let mut arrays = Vec::with_capacity(config.layer_arrays.len());
        for (i, a) in config.layer_arrays.iter().enumerate() {
            let vb_array = vb.pp("layer_arrays").pp(i);
            let conv_out = if a.gated { 2 * a.channels } else { a.channels };
            let rechannel = vb_array.pp("rechannel").get_with_hints(
                (a.channels, a.input_size),
                "weight",
                weight_init(a.input_size),
            )?;
            let mut layers = Vec::with_capacity(a.dilations.len());
            for (j, &dilation) in a.dilations.iter().enumerate() {
                let vb_layer = vb_array.pp("layers").pp(j);
                let conv = vb_layer.pp("conv");
                let mixin = vb_layer.pp("input_mixin");
                let layer1x1 = vb_layer.pp("layer1x1");
                layers.push(WavenetLayer {
                    conv_weight: conv.get_with_hints(
                        (conv_out, a.channels, a.kernel_size),
                        "weight",
                        weight_init(a.channels * a.kernel_size),
                    )?,
                    conv_bias: conv.get_with_hints(conv_out, "bias", zeros)?,
                    input_mixin: mixin.get_with_hints(
                        (conv_out, a.condition_size),
                        "weight",
                        weight_init(a.condition_size),
                    )?,
                    layer1x1_weight: layer1x1.get_with_hints(
                        (a.channels, a.channels),
                        "weight",
                        weight_init(a.channels),
                    )?,
                    layer1x1_bias: layer1x1.get_with_hints(a.channels, "bias", zeros)?,
                    dilation,
                });
            }
            let head = vb_array.pp("head_rechannel");
            let head_weight = head.get_with_hints((a.head_size, a.channels), "weight", weight_init(a.channels))?;
            let head_bias = if a.head_bias {
                Some(head.get_with_hints(a.head_size, "bias", zeros)?)
            } else {
                None
            };
            arrays.push(WavenetArray {
                config: a.clone(),
                rechannel,
                layers,
                head_weight,
                head_bias,
            });
        }
        Ok(WavenetModel {
            arrays,
            head_scale: f64::from(config.head_scale),
        })
    }
}

/// `weight [out, in] x [in, batch * time] (+ bias [out])`.
fn pointwise(weight: &Tensor, bias: Option<&Tensor>, x: &Tensor) -> candle_core::Result<Tensor> {
    let y = weight.matmul(x)?;
    match bias {
        Some(b) => y.broadcast_add(&b.unsqueeze(1)?),
        None => Ok(y),
    }
}

impl candle_core::Module for WavenetModel {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, channels_in, time) = x.dims3()?;
        let condition_size = self.arrays[0].config.condition_size;
        if channels_in != condition_size {
            candle_core::bail!(
                "wavenet input has {channels_in} channels, expected 1 audio + {} knobs",
                condition_size - 1
            );
        }
        let receptive_field = 1 + self
            .arrays
            .iter()
            .flat_map(|a| a.layers.iter().map(move |l| (a.config.kernel_size - 1) * l.dilation))
            .sum::<usize>();
        if time < receptive_field {
            candle_core::bail!("wavenet input has {time} samples, fewer than the receptive field {receptive_field}");
        }
        // [1 + condition, batch, time]: a row of ones (carries the conv bias) and the condition.
        let condition = x.transpose(0, 1)?.contiguous()?;
        let ones = Tensor::ones((1, batch, time), x.dtype(), x.device())?;
        let ones_condition = Tensor::cat(&[&ones, &condition], 0)?;
        let mut residual = condition.narrow(0, 0, 1)?; // [input_size, batch, length]
        let mut head: Option<Tensor> = None; // [channels, batch, length]
        let last_array = self.arrays.len() - 1;
        for (array_index, array) in self.arrays.iter().enumerate() {
            let a = &array.config;
            let mut length = residual.dim(2)?;
            residual = pointwise(
                &array.rechannel,
                None,
                &residual.reshape((a.input_size, batch * length))?,
            )?
            .reshape((a.channels, batch, length))?;
            for (layer_index, layer) in array.layers.iter().enumerate() {
                let out_length = length - (a.kernel_size - 1) * layer.dilation;
                let mut stacked = Vec::with_capacity(a.kernel_size + 1);
                for tap in 0..a.kernel_size {
                    stacked.push(residual.narrow(2, tap * layer.dilation, out_length)?);
                }
                stacked.push(ones_condition.narrow(2, time - out_length, out_length)?);
                let rows = a.kernel_size * a.channels + 1 + a.condition_size;
                let stacked = Tensor::cat(&stacked, 0)?.reshape((rows, batch * out_length))?;
                let conv_out = layer.conv_weight.dim(0)?;
                // Columns ordered as the stacked rows: tap-major conv weights, bias, mixin.
                let conv = layer
                    .conv_weight
                    .transpose(1, 2)?
                    .reshape((conv_out, a.kernel_size * a.channels))?;
                let weight = Tensor::cat(&[&conv, &layer.conv_bias.unsqueeze(1)?, &layer.input_mixin], 1)?;
                let z = weight.matmul(&stacked)?;
                let activation = if a.gated {
                    let filter = activation_op::tanh(&z.narrow(0, 0, a.channels)?)?;
                    let gate = activation_op::sigmoid(&z.narrow(0, a.channels, a.channels)?)?;
                    (filter * gate)?
                } else {
                    activation_op::tanh(&z)?
                };
                let activation_3d = activation.reshape((a.channels, batch, out_length))?;
                head = Some(match head {
                    Some(h) => {
                        let h_length = h.dim(2)?;
                        (h.narrow(2, h_length - out_length, out_length)? + &activation_3d)?
                    }
                    None => activation_3d,
                });
                let last_layer = array_index == last_array && layer_index + 1 == array.layers.len();
                if !last_layer {
                    // The very last residual update feeds nothing; skip it.
                    let update = pointwise(&layer.layer1x1_weight, Some(&layer.layer1x1_bias), &activation)?
                        .reshape((a.channels, batch, out_length))?;
                    residual = (residual.narrow(2, length - out_length, out_length)? + update)?;
                }
                length = out_length;
            }
            let h = head.take().expect("every array has at least one layer");
            let h_out = pointwise(
                &array.head_weight,
                array.head_bias.as_ref(),
                &h.reshape((a.channels, batch * length))?,
            )?
            .reshape((a.head_size, batch, length))?;
            head = Some(h_out);
        }
        let out = head.expect("wavenet has layer arrays");
        let out_length = out.dim(2)?;
        out.reshape((batch, out_length))? * self.head_scale
    }
}

#[cfg(test)]
#[path = "wavenet_tests.rs"]
mod tests;
