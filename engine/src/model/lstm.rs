//! Conditioned LSTM (Wright et al. / GuitarML Proteus): stacked LSTM layers over
//! audio + normalised knobs, a linear head, plus the input audio as a skip connection.
//! Config and candle module (trainer thread / CLI); the streaming twin is
//! [`crate::kernel::lstm`].
//!
//! Gate order within the `4 * hidden_size` rows is input, forget, cell, output (as in
//! PyTorch and RTNeural), with one combined bias per layer.

use candle_core::{IndexOp, Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};

use super::Size;

/// Hyperparameters of an LSTM model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LstmConfig {
    /// Conditioning knobs, fed with the audio as input features.
    pub num_knobs: usize,
    /// Hidden units per layer.
    pub hidden_size: usize,
    /// Stacked LSTM layers.
    pub num_layers: usize,
    /// Add the input audio to the head output.
    pub skip: bool,
}

impl LstmConfig {
    /// Presets: one layer of 8 (nano), 12 (feather), 16 (lite, AIDA-X's size) or 40
    /// (standard, Proteus's size) hidden units, with skip connection.
    pub fn preset(size: Size, num_knobs: usize) -> Self {
        let hidden_size = match size {
            Size::Nano => 8,
            Size::Feather => 12,
            Size::Lite => 16,
            Size::Standard => 40,
        };
        LstmConfig {
            num_knobs,
            hidden_size,
            num_layers: 1,
            skip: true,
        }
    }

    /// Every tensor by name and shape: per layer `lstm.{l}.weight_ih` `[4H, in]`,
    /// `lstm.{l}.weight_hh` `[4H, H]`, `lstm.{l}.bias` `[4H]`; then `head.weight` `[1, H]`
    /// and `head.bias` `[1]`.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let h = self.hidden_size;
        let mut shapes = Vec::new();
        for l in 0..self.num_layers {
            let input = if l == 0 { 1 + self.num_knobs } else { h };
            shapes.push((format!("lstm.{l}.weight_ih"), vec![4 * h, input]));
            shapes.push((format!("lstm.{l}.weight_hh"), vec![4 * h, h]));
            shapes.push((format!("lstm.{l}.bias"), vec![4 * h]));
        }
        shapes.push(("head.weight".to_string(), vec![1, h]));
        shapes.push(("head.bias".to_string(), vec![1]));
        shapes
    }

    /// Optional tensors: per layer a learned initial state `lstm.{l}.initial_hidden` and
    /// `lstm.{l}.initial_cell`, both `[H]` (NAM's LSTM has them). A profile holds both for
    /// every layer or none; without them the state starts at zero.
    pub fn optional_tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        (0..self.num_layers)
            .flat_map(|l| {
                [
                    (format!("lstm.{l}.initial_hidden"), vec![self.hidden_size]),
                    (format!("lstm.{l}.initial_cell"), vec![self.hidden_size]),
                ]
            })
            .collect()
    }

    /// Checks the sizes are usable.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=256).contains(&self.hidden_size),
            "lstm hidden size {} out of range 1..=256",
            self.hidden_size
        );
        anyhow::ensure!(
            (1..=4).contains(&self.num_layers),
            "lstm layer count {} out of range 1..=4",
            self.num_layers
        );
        Ok(())
    }
}

/// One LSTM layer's variables as the candle module holds them.
struct LstmLayer {
    /// `[4H, in]`.
    weight_ih: Tensor,
    /// `[4H, H]`.
    weight_hh: Tensor,
    /// `[4H]`, the combined input and recurrent bias.
    bias: Tensor,
    /// Learned initial `(hidden, cell)` state, `[H]` each, when the weights hold one.
    initial_state: Option<(Tensor, Tensor)>,
}

impl LstmLayer {
    fn new(input_size: usize, hidden_size: usize, vb: VarBuilder) -> Result<Self> {
        let init = uniform_init(hidden_size);
        Ok(LstmLayer {
            weight_ih: vb.get_with_hints((4 * hidden_size, input_size), "weight_ih", init)?,
            weight_hh: vb.get_with_hints((4 * hidden_size, hidden_size), "weight_hh", init)?,
            bias: vb.get_with_hints(4 * hidden_size, "bias", init)?,
            initial_state: if vb.contains_tensor("initial_hidden") {
                Some((
                    vb.get(hidden_size, "initial_hidden")?,
                    vb.get(hidden_size, "initial_cell")?,
                ))
            } else {
                None
            },
        })
    }

    /// Runs the layer over per-step inputs (`[batch, in]` each) from its initial state (zero
    /// unless learned) and returns
    /// the per-step hidden states (`[batch, H]` each).
    ///
    /// The time steps stay separate tensors on purpose: slicing one `[batch, time, 4H]`
    /// projection per step would make candle's backward pass pad every step's gradient to
    /// the full sequence (quadratic in time), whereas concatenating per-step pieces has a
    /// cheap backward. So each step does a single matmul of `[x_t, 1, h]` with the stacked
    /// `[W_ih, bias, W_hh]`, which folds in the bias and the input projection.
    fn forward(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let Some(first) = inputs.first() else {
            return Ok(Vec::new());
        };
        let batch = first.dim(0)?;
        let hidden = self.weight_hh.dim(1)?;
        let bias_column = self.bias.unsqueeze(1)?;
        let weights_t = Tensor::cat(&[&self.weight_ih, &bias_column, &self.weight_hh], 1)?
            .t()?
            .contiguous()?;
        let ones = Tensor::ones((batch, 1), first.dtype(), first.device())?;
        let (mut h, mut c) = match &self.initial_state {
            Some((h0, c0)) => (
                h0.unsqueeze(0)?.broadcast_as((batch, hidden))?.contiguous()?,
                c0.unsqueeze(0)?.broadcast_as((batch, hidden))?.contiguous()?,
            ),
            None => {
                let zeros = Tensor::zeros((batch, hidden), first.dtype(), first.device())?;
                (zeros.clone(), zeros)
            }
        };
        let mut outputs = Vec::with_capacity(inputs.len());
        for x in inputs {
            let gates = Tensor::cat(&[x, &ones, &h], 1)?.matmul(&weights_t)?;
            let sig = candle_nn::ops::sigmoid(&gates)?;
            let input_gate = sig.narrow(1, 0, hidden)?;
            let forget_gate = sig.narrow(1, hidden, hidden)?;
            let cell_gate = gates.narrow(1, 2 * hidden, hidden)?.tanh()?;
            let output_gate = sig.narrow(1, 3 * hidden, hidden)?;
            c = ((forget_gate * &c)? + (input_gate * cell_gate)?)?;
            h = (output_gate * c.tanh()?)?;
            outputs.push(h.clone());
        }
        Ok(outputs)
    }
}

/// PyTorch's LSTM and Linear initialisation: uniform in `±1/sqrt(hidden_size)`.
fn uniform_init(hidden_size: usize) -> Init {
    let bound = 1.0 / (hidden_size as f64).sqrt();
    Init::Uniform { lo: -bound, up: bound }
}

/// The conditioned LSTM as a candle module, for training and reference output.
///
/// Input `[batch, 1 + num_knobs, time]` (channel 0 audio, the others normalised knob
/// values), output `[batch, time]`: `head(h_t)` plus the input audio when `skip` is set, from
/// zero initial state (or the learned one, when the weights hold
/// [`LstmConfig::optional_tensor_shapes`]). Backpropagation through time runs over the whole sequence; candle
/// walks the graph recursively when it is dropped, so long sequences need a thread with a
/// large stack (see the module tests for measured limits).
pub struct LstmModel {
    layers: Vec<LstmLayer>,
    /// `[1, H]`.
    head_weight: Tensor,
    /// `[1]`.
    head_bias: Tensor,
    num_knobs: usize,
    skip: bool,
}

impl LstmModel {
    /// Builds the model, fetching (or creating, with a `VarMap`-backed builder) exactly the
    /// tensors of [`LstmConfig::tensor_shapes`]. New variables are uniform in
    /// `±1/sqrt(hidden_size)`, as in PyTorch.
    pub fn new(config: &LstmConfig, vb: VarBuilder) -> Result<Self> {
        let hidden = config.hidden_size;
        let lstm_vb = vb.pp("lstm");
        let layers = (0..config.num_layers)
            .map(|l| {
                let input_size = if l == 0 { 1 + config.num_knobs } else { hidden };
                LstmLayer::new(input_size, hidden, lstm_vb.pp(l.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let head_vb = vb.pp("head");
        let init = uniform_init(hidden);
        Ok(LstmModel {
            layers,
            head_weight: head_vb.get_with_hints((1, hidden), "weight", init)?,
            head_bias: head_vb.get_with_hints(1, "bias", init)?,
            num_knobs: config.num_knobs,
            skip: config.skip,
        })
    }
}

impl Module for LstmModel {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, channels, time) = x.dims3()?;
        if channels != 1 + self.num_knobs {
            candle_core::bail!(
                "lstm expects {} input channels (audio + knobs), got {channels}",
                1 + self.num_knobs
            );
        }
        let hidden = self.head_weight.dim(1)?;
        if time == 0 {
            return Tensor::zeros((batch, 0), x.dtype(), x.device());
        }
        let steps = x.transpose(1, 2)?.contiguous()?;
        let mut sequence = (0..time).map(|t| steps.i((.., t, ..))).collect::<Result<Vec<_>>>()?;
        for layer in &self.layers {
            sequence = layer.forward(&sequence)?;
        }
        let hs = Tensor::stack(&sequence, 1)?.reshape((batch * time, hidden))?;
        let y = hs
            .matmul(&self.head_weight.t()?)?
            .broadcast_add(&self.head_bias)?
            .reshape((batch, time))?;
        if self.skip {
            y + x.i((.., 0, ..))?
        } else {
            Ok(y)
        }
    }
}

#[cfg(test)]
#[path = "lstm_tests.rs"]
mod tests;
