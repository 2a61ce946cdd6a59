//! The `.doppel` profile file: safetensors weights plus a JSON header in the safetensors
//! metadata. Loaded and saved off the audio thread (GUI, trainer, CLI).
//!
//! The loader validates everything before a profile can reach a kernel: format version
//! range, a known architecture with consistent hyperparameters, every tensor present by
//! name with the right shape, finite values, and sane knob descriptors.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::{ModelConfig, MAX_KNOBS};

mod fixtures;
mod write;

pub use write::{ensure_writable, write_atomically};

/// Current profile format version, written into every new profile.
pub const FORMAT_VERSION: u32 = 1;
/// Oldest profile format version this build still reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Key of the JSON header in the safetensors metadata.
const HEADER_KEY: &str = "doppel";
/// Largest latency a profile may report, in samples (about 1.4 s at 48 kHz; a host sizes its
/// delay compensation by it, and the plugin its dry-path delay lines).
pub const MAX_LATENCY_SAMPLES: u32 = 1 << 16;

/// One conditioning knob as the profile defines it: what it means and its range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnobDescriptor {
    /// Display name, e.g. "gain".
    pub name: String,
    /// Lowest value, in `unit`.
    pub min: f32,
    /// Highest value, in `unit`.
    pub max: f32,
    /// Value a new instance starts at, in `unit`.
    pub default: f32,
    /// Unit shown after the value (may be empty).
    #[serde(default)]
    pub unit: String,
}

impl KnobDescriptor {
    /// Maps a value in the knob's unit to the model's 0..1 input, clamped to the range.
    pub fn normalize(&self, value: f32) -> f32 {
        let span = self.max - self.min;
        if span.abs() < f32::EPSILON {
            return 0.0;
        }
        ((value - self.min) / span).clamp(0.0, 1.0)
    }

    /// Maps a model input in 0..1 back to the knob's unit.
    pub fn denormalize(&self, normalized: f32) -> f32 {
        self.min + normalized.clamp(0.0, 1.0) * (self.max - self.min)
    }

    fn validate(&self) -> Result<()> {
        ensure!(!self.name.trim().is_empty(), "a knob has an empty name");
        ensure!(
            self.min.is_finite() && self.max.is_finite() && self.default.is_finite(),
            "knob '{}' has a non-finite range or default",
            self.name
        );
        ensure!(
            self.min < self.max,
            "knob '{}' has min {} not below max {}",
            self.name,
            self.min,
            self.max
        );
        ensure!(
            (self.min..=self.max).contains(&self.default),
            "knob '{}' default {} lies outside {}..{}",
            self.name,
            self.default,
            self.min,
            self.max
        );
        Ok(())
    }
}

/// How a profile was trained.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Seconds of aligned training audio (all captures together, validation excluded).
    pub data_seconds: f32,
    /// Optimiser steps taken.
    pub steps: u64,
    /// Wall-clock training time in seconds (paused time excluded).
    pub wall_seconds: f32,
    /// Device latency found by alignment (or given), in samples, per capture.
    pub device_latency_samples: Vec<i64>,
    /// Samples the targets were left late of their measured latency (the model's output
    /// is that much later than the device's): the profile's `latency_samples`.
    #[serde(default)]
    pub alignment_margin_samples: i64,
    /// Seed of the run.
    pub seed: u64,
    /// `(step, training loss)` pairs, thinned to a few dozen points.
    pub loss_curve: Vec<(u64, f32)>,
    /// `(step, validation ESR)` pairs, one per validation.
    pub validation_curve: Vec<(u64, f32)>,
    /// Seconds since training started at each entry of `validation_curve`.
    #[serde(default)]
    pub validation_seconds: Vec<f32>,
    /// The effect kind it was trained as (`amp`, `compressor`, `denoiser`; empty in older
    /// profiles): it chose the loss weights below.
    #[serde(default)]
    pub effect: String,
    /// Scored samples per training segment.
    #[serde(default)]
    pub segment_samples: usize,
    /// Unscored samples ahead of each segment that settle the model's state.
    #[serde(default)]
    pub warmup_samples: usize,
    /// The objective's non-zero loss weights, by term name.
    #[serde(default)]
    pub loss_weights: Vec<(String, f32)>,
}

impl TrainingSummary {
    /// The device latency training measured, when every capture agreed on one: what a
    /// profile's output is scored against.
    pub fn device_latency(&self) -> Option<i64> {
        let first = *self.device_latency_samples.first()?;
        self.device_latency_samples.iter().all(|&l| l == first).then_some(first)
    }
}

/// Accuracy measured on held-out audio the model never trained on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Error-to-signal ratio (0 = perfect, 1 = as bad as silence).
    pub esr: f32,
    /// ESR after first-order pre-emphasis of both signals.
    pub esr_preemph: f32,
    /// Seconds of held-out audio measured.
    pub seconds: f32,
}

/// Gain-staging calibration and provenance, as NAM files carry it in their metadata. Every
/// field is optional; imported files fill what they know, `doppel export` writes them back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Output loudness in dB (RMS, re full scale) for a standard guitar input at nominal
    /// settings; NAM's `loudness`. The plugin normalises output with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness_db: Option<f32>,
    /// How much gain / compression the model shows, 0 (clean) to 1 (squashed); NAM's `gain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gain: Option<f32>,
    /// Analog input level, in dBu, that corresponds to 0 dBFS into the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_level_dbu: Option<f32>,
    /// Analog output level, in dBu, that corresponds to 0 dBFS out of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_level_dbu: Option<f32>,
    /// Who captured the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modeled_by: Option<String>,
    /// Kind of gear (NAM's values: amp, pedal, pedal_amp, amp_cab, amp_pedal_cab, preamp, studio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gear_type: Option<String>,
    /// Manufacturer of the gear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gear_make: Option<String>,
    /// Model name of the gear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gear_model: Option<String>,
    /// Character of the tone (NAM's values: clean, overdrive, crunch, hi_gain, fuzz).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tone_type: Option<String>,
}

impl Calibration {
    fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("loudness_db", self.loudness_db),
            ("gain", self.gain),
            ("input_level_dbu", self.input_level_dbu),
            ("output_level_dbu", self.output_level_dbu),
        ] {
            if let Some(v) = value {
                ensure!(v.is_finite(), "calibration {name} is not finite");
            }
        }
        Ok(())
    }
}

/// The JSON header of a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileMeta {
    /// Format version the file was written with.
    pub format_version: u32,
    /// Free-form display name.
    pub name: String,
    /// Free-form notes.
    #[serde(default)]
    pub notes: String,
    /// Architecture name and hyperparameters.
    pub model: ModelConfig,
    /// Sample rate the model was trained at, in Hz.
    pub sample_rate: u32,
    /// Conditioning knobs, in model input order.
    pub knobs: Vec<KnobDescriptor>,
    /// How many samples late the model's output is (the causality margin it was trained
    /// with); hosts are told, and playback and evaluation remove it.
    pub latency_samples: u32,
    /// How it was trained, if it was trained by Doppel.
    #[serde(default)]
    pub training: Option<TrainingSummary>,
    /// Measured accuracy on held-out audio.
    #[serde(default)]
    pub accuracy: Option<Accuracy>,
    /// Loudness, calibration levels and gear description (imported from or exported to
    /// NAM files); absent in profiles written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// A named tensor: shape and row-major `f32` data.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightTensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// A model's tensors by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights {
    tensors: BTreeMap<String, WeightTensor>,
}

impl Weights {
    /// Adds or replaces a tensor.
    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        self.tensors.insert(name.into(), WeightTensor { shape, data });
    }

    /// The tensor called `name`, checked to have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        let tensor = self
            .tensors
            .get(name)
            .with_context(|| format!("missing tensor '{name}'"))?;
        ensure!(
            tensor.shape == shape,
            "tensor '{name}' has shape {:?}, expected {shape:?}",
            tensor.shape
        );
        Ok(&tensor.data)
    }

    /// The tensor called `name` if present, checked to have `shape`; `None` when absent
    /// (for the optional tensors of [`ModelConfig::optional_tensor_shapes`]).
    pub fn get_optional(&self, name: &str, shape: &[usize]) -> Result<Option<&[f32]>> {
        if self.tensors.contains_key(name) {
            self.get(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Iterates over `(name, tensor)` in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &WeightTensor)> {
        self.tensors.iter()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Every tensor `config` needs, filled with deterministic uniform values in
    /// `-scale..scale` (biases included). For tests and fixtures, not for training.
    pub fn random(config: &ModelConfig, seed: u64, scale: f32) -> Self {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut weights = Weights::default();
        for (name, shape) in config.tensor_shapes() {
            let n = shape.iter().product();
            let data = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
            weights.insert(name, shape, data);
        }
        weights
    }

    /// Copies every variable of a candle `VarMap` (as f32).
    pub fn from_varmap(varmap: &candle_nn::VarMap) -> Result<Self> {
        let mut weights = Weights::default();
        let data = varmap
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("variable map lock poisoned"))?;
        for (name, var) in data.iter() {
            let tensor = var.as_tensor().to_dtype(candle_core::DType::F32)?;
            let shape = tensor.dims().to_vec();
            let values = tensor.flatten_all()?.to_vec1::<f32>()?;
            weights.insert(name.clone(), shape, values);
        }
        Ok(weights)
    }

    /// The tensors as candle tensors on `device`, e.g. for `VarBuilder::from_tensors`.
    pub fn to_candle(
        &self,
        device: &candle_core::Device,
    ) -> Result<std::collections::HashMap<String, candle_core::Tensor>> {
        self.tensors
            .iter()
            .map(|(name, t)| {
                let tensor = candle_core::Tensor::from_slice(&t.data, t.shape.as_slice(), device)?;
                Ok((name.clone(), tensor))
            })
            .collect()
    }

    /// Checks that exactly the tensors `config` needs are present with the right shapes
    /// and only finite values; optional tensors ([`ModelConfig::optional_tensor_shapes`])
    /// may be present too, with the same checks.
    pub fn validate(&self, config: &ModelConfig) -> Result<()> {
        let mut expected = config.tensor_shapes();
        for (name, shape) in config.optional_tensor_shapes() {
            if self.tensors.contains_key(&name) {
                expected.push((name, shape));
            }
        }
        for (name, shape) in &expected {
            let data = self.get(name, shape)?;
            ensure!(
                data.len() == shape.iter().product::<usize>(),
                "tensor '{name}' holds {} values for shape {shape:?}",
                data.len()
            );
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                bail!("tensor '{name}' has a non-finite value ({}) at index {i}", data[i]);
            }
        }
        if let Some(extra) = self.tensors.keys().find(|k| !expected.iter().any(|(n, _)| n == *k)) {
            bail!("unexpected tensor '{extra}' for a {} model", config.architecture());
        }
        Ok(())
    }
}

/// A loaded, validated profile: header plus weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// The JSON header.
    pub meta: ProfileMeta,
    /// The model's tensors.
    pub weights: Weights,
}

impl Profile {
    /// Validates and wraps a header and weights.
    pub fn new(meta: ProfileMeta, weights: Weights) -> Result<Self> {
        let profile = Profile { meta, weights };
        profile.validate()?;
        Ok(profile)
    }

    /// Checks everything a kernel relies on; see the module docs.
    pub fn validate(&self) -> Result<()> {
        let meta = &self.meta;
        ensure!(
            (MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&meta.format_version),
            "profile format version {} is not supported (this build reads {MIN_FORMAT_VERSION}..={FORMAT_VERSION})",
            meta.format_version
        );
        ensure!(
            (8_000..=384_000).contains(&meta.sample_rate),
            "profile sample rate {} Hz is out of range",
            meta.sample_rate
        );
        meta.model.validate().context("invalid model configuration")?;
        ensure!(
            meta.latency_samples <= MAX_LATENCY_SAMPLES,
            "profile latency of {} samples exceeds the supported {MAX_LATENCY_SAMPLES}",
            meta.latency_samples
        );
        ensure!(
            meta.knobs.len() <= MAX_KNOBS,
            "profile defines {} knobs, at most {MAX_KNOBS} are supported",
            meta.knobs.len()
        );
        ensure!(
            meta.knobs.len() == meta.model.num_knobs(),
            "profile defines {} knobs but its model takes {}",
            meta.knobs.len(),
            meta.model.num_knobs()
        );
        for knob in &meta.knobs {
            knob.validate()?;
        }
        if let Some(calibration) = &meta.calibration {
            calibration.validate()?;
        }
        self.weights.validate(&meta.model)
    }

    /// Parses and validates a profile from its file bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).context("not a safetensors file")?;
        let header = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(HEADER_KEY))
            .context("no Doppel header in the file's metadata (not a .doppel profile?)")?;
        let mut meta: ProfileMeta = serde_json::from_str(header).context("unreadable profile header")?;
        // Profiles trained before the header told the truth say 0 but play their training
        // margin late: read them as what they are.
        if let Some(margin) = meta.training.as_ref().map(|t| t.alignment_margin_samples) {
            if meta.latency_samples == 0 && margin > 0 {
                meta.latency_samples = u32::try_from(margin).context("training margin out of range")?;
            }
        }
        let tensors = safetensors::SafeTensors::deserialize(bytes).context("unreadable tensors")?;
        let mut weights = Weights::default();
        for (name, view) in tensors.tensors() {
            ensure!(
                view.dtype() == safetensors::Dtype::F32,
                "tensor '{name}' is {:?}, expected F32",
                view.dtype()
            );
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            weights.insert(name, view.shape().to_vec(), data);
        }
        Profile::new(meta, weights)
    }

    /// Serialises the profile to file bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = serde_json::to_string(&self.meta)?;
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .weights
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    t.shape.clone(),
                    t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views = raw
            .iter()
            .map(|(name, shape, bytes)| {
                Ok((
                    name.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = std::collections::HashMap::from([(HEADER_KEY.to_string(), header)]);
        Ok(safetensors::serialize(views, Some(metadata))?)
    }

    /// Loads and validates a profile file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).with_context(|| format!("cannot read profile {}", path.display()))?;
        Profile::from_bytes(&bytes).with_context(|| format!("bad profile {}", path.display()))
    }

    /// Writes the profile to `path` atomically (see [`write_atomically`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        write_atomically(path, &self.to_bytes()?).with_context(|| format!("cannot write profile {}", path.display()))
    }

    /// The knob named `name` (case-insensitive) and its index.
    pub fn knob_index(&self, name: &str) -> Result<usize> {
        self.meta
            .knobs
            .iter()
            .position(|k| k.name.eq_ignore_ascii_case(name))
            .with_context(|| {
                let names: Vec<&str> = self.meta.knobs.iter().map(|k| k.name.as_str()).collect();
                format!("unknown knob '{name}' (this profile has {names:?})")
            })
    }

    /// Normalised model inputs for knob values given by name (`(name, value)` in the knob's
    /// unit); knobs not named take their defaults.
    pub fn normalized_knobs(&self, values: &[(String, f32)]) -> Result<Vec<f32>> {
        let mut plain: Vec<f32> = self.meta.knobs.iter().map(|k| k.default).collect();
        for (name, value) in values {
            plain[self.knob_index(name)?] = *value;
        }
        Ok(self.meta.knobs.iter().zip(plain).map(|(k, v)| k.normalize(v)).collect())
    }
}

#[cfg(test)]
mod tests;
