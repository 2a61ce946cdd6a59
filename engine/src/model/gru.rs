//! Conditioned GRU (AIDA-X / Automated-GuitarAmpModelling style): stacked GRU layers over
//! audio + normalised knobs, a linear head, plus optionally the input audio as a skip
//! connection. Config and candle module (trainer thread / CLI); the streaming twin is
//! [`crate::kernel::gru`].
//!
//! The maths is PyTorch's `nn.GRU` (the cell AIDA-X trains and RTNeural plays with Keras'
//! `reset_after=True` convention): with gate rows ordered reset, update, new within the
//! `3 * hidden_size` rows and separate input and recurrent biases,
//!
//! ```text
//! r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//! z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//! n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//! h' = (1 - z) * n + z * h
//! ```
//!
//! The recurrent bias of the new gate sits inside the reset product, so the two biases
//! cannot be summed into one (unlike the LSTM's).

use candle_core::{IndexOp, Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};

use super::Size;

/// Hyperparameters of a GRU model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GruConfig {
    /// Conditioning knobs, fed with the audio as input features.
    pub num_knobs: usize,
    /// Hidden units per layer.
    pub hidden_size: usize,
    /// Stacked GRU layers.
    pub num_layers: usize,
    /// Add the input audio to the head output.
    pub skip: bool,
}

impl GruConfig {
    /// Presets matching the AIDA-X trainer's GRU sizes: one layer of 8 (nano), 12 (feather),
    /// 16 (lite) or 20 (standard) hidden units, with skip connection.
    pub fn preset(size: Size, num_knobs: usize) -> Self {
        let hidden_size = match size {
            Size::Nano => 8,
            Size::Feather => 12,
            Size::Lite => 16,
            Size::Standard => 20,
        };
        GruConfig {
            num_knobs,
            hidden_size,
            num_layers: 1,
            skip: true,
        }
    }

    /// Every tensor by name and shape: per layer `gru.{l}.weight_ih` `[3H, in]`,
    /// `gru.{l}.weight_hh` `[3H, H]`, `gru.{l}.bias_ih` `[3H]` and `gru.{l}.bias_hh` `[3H]`
    /// (gate rows reset, update, new); then `head.weight` `[1, H]` and `head.bias` `[1]`.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let h = self.hidden_size;
        let mut shapes = Vec::new();
        for l in 0..self.num_layers {
            let input = if l == 0 { 1 + self.num_knobs } else { h };
            shapes.push((format!("gru.{l}.weight_ih"), vec![3 * h, input]));
            shapes.push((format!("gru.{l}.weight_hh"), vec![3 * h, h]));
            shapes.push((format!("gru.{l}.bias_ih"), vec![3 * h]));
            shapes.push((format!("gru.{l}.bias_hh"), vec![3 * h]));
        }
        shapes.push(("head.weight".to_string(), vec![1, h]));
        shapes.push(("head.bias".to_string(), vec![1]));
        shapes
    }

    /// Checks the sizes are usable.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=256).contains(&self.hidden_size),
            "gru hidden size {} out of range 1..=256",
            self.hidden_size
        );
        anyhow::ensure!(
            (1..=4).contains(&self.num_layers),
            "gru layer count {} out of range 1..=4",
            self.num_layers
        );
        Ok(())
    }
}

/// One GRU layer's variables.
struct GruLayer {
    /// `[W_ih, b_ih]` transposed: `[in + 1, 3H]`, multiplied by `[x, 1]`.
    input_t: Tensor,
    /// `[W_hh, b_hh]` transposed: `[H + 1, 3H]`, multiplied by `[h, 1]`.
    recurrent_t: Tensor,
    hidden: usize,
}

impl GruLayer {
    fn new(input_size: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        let init = uniform_init(hidden);
        let weight_ih = vb.get_with_hints((3 * hidden, input_size), "weight_ih", init)?;
        let weight_hh = vb.get_with_hints((3 * hidden, hidden), "weight_hh", init)?;
        let bias_ih = vb.get_with_hints(3 * hidden, "bias_ih", init)?;
        let bias_hh = vb.get_with_hints(3 * hidden, "bias_hh", init)?;
        let input_t = Tensor::cat(&[&weight_ih, &bias_ih.unsqueeze(1)?], 1)?
            .t()?
            .contiguous()?;
        let recurrent_t = Tensor::cat(&[&weight_hh, &bias_hh.unsqueeze(1)?], 1)?
            .t()?
            .contiguous()?;
        Ok(GruLayer {
            input_t,
            recurrent_t,
            hidden,
        })
    }

    /// Runs the layer over per-step inputs (`[batch, in]` each) from zero state and returns
    /// the per-step hidden states (`[batch, H]` each). Steps stay separate tensors so the
    /// backward pass stays linear in time (see [`super::lstm`]).
    fn forward(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let Some(first) = inputs.first() else {
            return Ok(Vec::new());
        };
        let batch = first.dim(0)?;
        let hd = self.hidden;
        let ones = Tensor::ones((batch, 1), first.dtype(), first.device())?;
        let mut h = Tensor::zeros((batch, hd), first.dtype(), first.device())?;
        let mut outputs = Vec::with_capacity(inputs.len());
        for x in inputs {
            let gi = Tensor::cat(&[x, &ones], 1)?.matmul(&self.input_t)?;
            let gh = Tensor::cat(&[&h, &ones], 1)?.matmul(&self.recurrent_t)?;
            let rz = candle_nn::ops::sigmoid(&(gi.narrow(1, 0, 2 * hd)? + gh.narrow(1, 0, 2 * hd)?)?)?;
            let r = rz.narrow(1, 0, hd)?;
            let z = rz.narrow(1, hd, hd)?;
            let n = (gi.narrow(1, 2 * hd, hd)? + (r * gh.narrow(1, 2 * hd, hd)?)?)?.tanh()?;
            // h' = (1 - z) n + z h = n + z (h - n)
            h = (&n + (z * (&h - &n)?)?)?;
            outputs.push(h.clone());
        }
        Ok(outputs)
    }
}

/// PyTorch's GRU and Linear initialisation: uniform in `±1/sqrt(hidden_size)`.
fn uniform_init(hidden_size: usize) -> Init {
    let bound = 1.0 / (hidden_size as f64).sqrt();
    Init::Uniform { lo: -bound, up: bound }
}

/// The conditioned GRU as a candle module, for training and reference output.
///
/// Input `[batch, 1 + num_knobs, time]` (channel 0 audio, the others normalised knob
/// values), output `[batch, time]`: `head(h_t)` plus the input audio when `skip` is set,
/// from zero initial state.
pub struct GruModel {
    layers: Vec<GruLayer>,
    /// `[1, H]`.
    head_weight: Tensor,
    /// `[1]`.
    head_bias: Tensor,
    num_knobs: usize,
    skip: bool,
}

impl GruModel {
    /// Builds the model, fetching (or creating, with a `VarMap`-backed builder) exactly the
    /// tensors of [`GruConfig::tensor_shapes`]. New variables are uniform in
    /// `±1/sqrt(hidden_size)`, as in PyTorch.
    pub fn new(config: &GruConfig, vb: VarBuilder) -> Result<Self> {
        let hidden = config.hidden_size;
        let gru_vb = vb.pp("gru");
        let layers = (0..config.num_layers)
            .map(|l| {
                let input_size = if l == 0 { 1 + config.num_knobs } else { hidden };
                GruLayer::new(input_size, hidden, gru_vb.pp(l.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let head_vb = vb.pp("head");
        let init = uniform_init(hidden);
        Ok(GruModel {
            layers,
            head_weight: head_vb.get_with_hints((1, hidden), "weight", init)?,
            head_bias: head_vb.get_with_hints(1, "bias", init)?,
            num_knobs: config.num_knobs,
            skip: config.skip,
        })
    }
}

impl Module for GruModel {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, channels, time) = x.dims3()?;
        if channels != 1 + self.num_knobs {
            candle_core::bail!(
                "gru expects {} input channels (audio + knobs), got {channels}",
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
