//! Model architectures and their hyperparameters (`*Config`), shared by training and playback.
//!
//! Each architecture exists twice: a candle module here (training, trainer thread) and a
//! streaming kernel in [`crate::kernel`] (audio thread). Both fetch the same tensors by the
//! names listed in [`ModelConfig::tensor_shapes`], which is the single source of truth for
//! what a profile file must contain.

pub mod compressor;
pub mod gru;
pub mod lstm;
pub mod wavenet;

use serde::{Deserialize, Serialize};

pub use compressor::CompressorConfig;
pub use gru::{GruConfig, GruModel};
pub use lstm::{LstmConfig, LstmModel};
pub use wavenet::{LayerArrayConfig, WavenetConfig, WavenetModel};

/// Most conditioning knobs a model can take (the plugin has four knob parameters).
pub const MAX_KNOBS: usize = 4;

/// Model size presets, smallest to largest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// Smallest: cheapest to run and train.
    Nano,
    /// Small.
    Feather,
    /// Medium.
    Lite,
    /// Full size.
    Standard,
}

impl Size {
    /// All presets, smallest first.
    pub const ALL: [Size; 4] = [Size::Nano, Size::Feather, Size::Lite, Size::Standard];

    /// The preset's lowercase name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Size::Nano => "nano",
            Size::Feather => "feather",
            Size::Lite => "lite",
            Size::Standard => "standard",
        }
    }

    /// Parses a preset name (`nano`, `feather`, `lite`, `standard`).
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Size::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| anyhow::anyhow!("unknown size '{name}' (expected nano, feather, lite or standard)"))
    }
}

/// An architecture name plus its hyperparameters. Serialised into the profile header as
/// `{"architecture": "wavenet", "config": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "architecture", content = "config", rename_all = "lowercase")]
pub enum ModelConfig {
    /// NAM-style dilated causal convolution stack.
    Wavenet(WavenetConfig),
    /// Conditioned LSTM with a linear head and skip connection.
    Lstm(LstmConfig),
    /// Conditioned GRU with a linear head and optional skip connection (AIDA-X style).
    Gru(GruConfig),
    /// Grey-box feed-forward compressor with a learned knob-to-control map (dynamics).
    Compressor(CompressorConfig),
}

/// The architecture names a profile may name.
pub const ARCHITECTURES: [&str; 4] = ["wavenet", "lstm", "gru", "compressor"];

impl ModelConfig {
    /// A preset of the named architecture (`wavenet`, `lstm`, `gru` or `compressor`) for
    /// `num_knobs` knobs.
    pub fn preset(architecture: &str, size: Size, num_knobs: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            num_knobs <= MAX_KNOBS,
            "at most {MAX_KNOBS} knobs are supported, got {num_knobs}"
        );
        match architecture {
            "wavenet" => Ok(ModelConfig::Wavenet(WavenetConfig::preset(size, num_knobs))),
            "lstm" => Ok(ModelConfig::Lstm(LstmConfig::preset(size, num_knobs))),
            "gru" => Ok(ModelConfig::Gru(GruConfig::preset(size, num_knobs))),
            "compressor" => Ok(ModelConfig::Compressor(CompressorConfig::preset(size, num_knobs))),
            other => anyhow::bail!("unknown architecture '{other}' (expected one of {ARCHITECTURES:?})"),
        }
    }

    /// The architecture's name as stored in profiles.
    pub fn architecture(&self) -> &'static str {
        match self {
            ModelConfig::Wavenet(_) => "wavenet",
            ModelConfig::Lstm(_) => "lstm",
            ModelConfig::Gru(_) => "gru",
            ModelConfig::Compressor(_) => "compressor",
        }
    }

    /// The size preset whose tensor shapes this configuration has, if any (custom layer
    /// arrays have none).
    pub fn size(&self) -> Option<Size> {
        Size::ALL.into_iter().find(|&size| {
            // Shapes decide the size: an imported model's output scale or skip flag may differ.
            ModelConfig::preset(self.architecture(), size, self.num_knobs()).is_ok_and(|mut preset| {
                // A stereo-linked compressor is its mono preset plus the link.
                if let (ModelConfig::Compressor(p), ModelConfig::Compressor(c)) = (&mut preset, self) {
                    p.channels = c.channels;
                }
                preset.tensor_shapes() == self.tensor_shapes()
            })
        })
    }

    /// Audio channels one instance of the model plays: 2 for a stereo-linked compressor (one
    /// detector, one gain for both), 1 for every other model (a stereo track runs one per
    /// channel).
    pub fn channels(&self) -> usize {
        match self {
            ModelConfig::Compressor(c) => c.channels,
            _ => 1,
        }
    }

    /// Number of conditioning knobs the model takes as extra input channels.
    pub fn num_knobs(&self) -> usize {
        match self {
            ModelConfig::Wavenet(c) => c.num_knobs,
            ModelConfig::Lstm(c) => c.num_knobs,
            ModelConfig::Gru(c) => c.num_knobs,
            ModelConfig::Compressor(c) => c.num_knobs,
        }
    }

    /// Input samples the model looks back over, including the current one (1 = memoryless;
    /// an LSTM reports 1 since its memory is carried in state, not in a window).
    pub fn receptive_field(&self) -> usize {
        match self {
            ModelConfig::Wavenet(c) => c.receptive_field(),
            ModelConfig::Lstm(_) | ModelConfig::Gru(_) | ModelConfig::Compressor(_) => 1,
        }
    }

    /// Samples of input a model needs after a reset before its output is representative
    /// (state settled): what validation and evaluation play ahead of a scored region. A
    /// compressor's release can take seconds.
    pub fn settle_samples(&self) -> usize {
        match self {
            ModelConfig::Compressor(c) => (2.0 * c.sample_rate_hz) as usize,
            _ => self.receptive_field() - 1 + 4096,
        }
    }

    /// Every tensor the model needs, by name, with its shape.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        match self {
            ModelConfig::Wavenet(c) => c.tensor_shapes(),
            ModelConfig::Lstm(c) => c.tensor_shapes(),
            ModelConfig::Gru(c) => c.tensor_shapes(),
            ModelConfig::Compressor(c) => c.tensor_shapes(),
        }
    }

    /// Tensors a profile may add to [`Self::tensor_shapes`], by name with shape: an LSTM's
    /// learned initial state (`lstm.{l}.initial_hidden` / `initial_cell`, from NAM files).
    /// When absent the model starts from zero state.
    pub fn optional_tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        match self {
            ModelConfig::Lstm(c) => c.optional_tensor_shapes(),
            ModelConfig::Wavenet(_) | ModelConfig::Gru(_) | ModelConfig::Compressor(_) => Vec::new(),
        }
    }

    /// Total number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.tensor_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Checks the hyperparameters are self-consistent (used when loading a profile).
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.num_knobs() <= MAX_KNOBS,
            "model takes {} knobs, at most {MAX_KNOBS} are supported",
            self.num_knobs()
        );
        match self {
            ModelConfig::Wavenet(c) => c.validate(),
            ModelConfig::Lstm(c) => c.validate(),
            ModelConfig::Gru(c) => c.validate(),
            ModelConfig::Compressor(c) => c.validate(),
        }
    }
}

/// A candle model of either architecture, for training and reference output.
pub enum Model {
    /// See [`WavenetModel`].
    Wavenet(WavenetModel),
    /// See [`LstmModel`].
    Lstm(LstmModel),
    /// See [`GruModel`].
    Gru(GruModel),
}

impl Model {
    /// Builds the model for `config`, fetching (or creating, with a `VarMap`-backed builder)
    /// its variables by the names in [`ModelConfig::tensor_shapes`].
    pub fn new(config: &ModelConfig, vb: candle_nn::VarBuilder) -> candle_core::Result<Self> {
        Ok(match config {
            ModelConfig::Wavenet(c) => Model::Wavenet(WavenetModel::new(c, vb)?),
            ModelConfig::Lstm(c) => Model::Lstm(LstmModel::new(c, vb)?),
            ModelConfig::Gru(c) => Model::Gru(GruModel::new(c, vb)?),
            ModelConfig::Compressor(_) => {
                candle_core::bail!("the compressor trains through its hand-derived pass, not a candle module")
            }
        })
    }

    /// Runs the model over `x` of shape `[batch, 1 + num_knobs, time]` (channel 0 audio, the
    /// others the normalised knob values) and returns `[batch, time - receptive_field + 1]`:
    /// output sample `j` is the model's response at input sample `j + receptive_field - 1`.
    pub fn forward(&self, x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        match self {
            Model::Wavenet(m) => candle_core::Module::forward(m, x),
            Model::Lstm(m) => candle_core::Module::forward(m, x),
            Model::Gru(m) => candle_core::Module::forward(m, x),
        }
    }
}
