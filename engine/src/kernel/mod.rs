//! Hand-written streaming kernels: the audio-thread side of each model.
//!
//! A kernel is built off the audio thread from a [`ModelConfig`] and [`Weights`] (which it
//! looks up by name, shapes checked), preallocates every buffer for `max_block_samples`,
//! and then processes any number of samples per call without allocating, locking or
//! growing. Audio thread: [`StreamingModel::process`] and [`StreamingModel::reset`] only.

pub(crate) mod activation;
pub mod compressor;
pub mod gru;
pub mod lstm;
mod recurrent;
pub(crate) mod simd;
pub mod wavenet;

pub use compressor::CompressorKernel;
pub use gru::GruKernel;
pub use lstm::LstmKernel;
pub use wavenet::WavenetKernel;

use crate::model::ModelConfig;
use crate::profile::Weights;

/// A model's streaming kernel: one per audio channel, or one for a stereo pair when the model
/// is stereo-linked (see [`StreamingModel::linked_mut`]). A clone carries the state too (a
/// warm kernel clones warm).
#[derive(Clone)]
pub enum StreamingModel {
    /// See [`WavenetKernel`].
    Wavenet(WavenetKernel),
    /// See [`LstmKernel`].
    Lstm(LstmKernel),
    /// See [`GruKernel`].
    Gru(GruKernel),
    /// See [`CompressorKernel`].
    Compressor(CompressorKernel),
}

impl StreamingModel {
    /// Builds the kernel for `config` from `weights` (checked by name and shape), with
    /// buffers for blocks of up to `max_block_samples`. Calls to [`Self::process`] with
    /// longer slices are split internally. Not real-time safe: allocates.
    pub fn new(config: &ModelConfig, weights: &Weights, max_block_samples: usize) -> anyhow::Result<Self> {
        let max_block_samples = max_block_samples.max(1);
        Ok(match config {
            ModelConfig::Wavenet(c) => StreamingModel::Wavenet(WavenetKernel::new(c, weights, max_block_samples)?),
            ModelConfig::Lstm(c) => StreamingModel::Lstm(LstmKernel::new(c, weights, max_block_samples)?),
            ModelConfig::Gru(c) => StreamingModel::Gru(GruKernel::new(c, weights, max_block_samples)?),
            ModelConfig::Compressor(c) => StreamingModel::Compressor(CompressorKernel::new(c, weights)?),
        })
    }

    /// The kernel of a stereo-linked model (one detector for two channels), to be fed both
    /// channels at once; `None` for a model that plays each channel on its own. Real-time
    /// safe.
    pub fn linked_mut(&mut self) -> Option<&mut CompressorKernel> {
        match self {
            StreamingModel::Compressor(k) if k.is_linked() => Some(k),
            _ => None,
        }
    }

    /// Whether the model links two channels (see [`Self::linked_mut`]).
    pub fn is_linked(&self) -> bool {
        matches!(self, StreamingModel::Compressor(k) if k.is_linked())
    }

    /// Processes `input` into `output` (same length, any length). `knobs` holds the model's
    /// normalised knob values (`num_knobs` of them, each 0..1), constant over this call.
    /// Real-time safe: no allocation, locking or I/O.
    pub fn process(&mut self, input: &[f32], knobs: &[f32], output: &mut [f32]) {
        debug_assert_eq!(input.len(), output.len());
        match self {
            StreamingModel::Wavenet(k) => k.process(input, knobs, output),
            StreamingModel::Lstm(k) => k.process(input, knobs, output),
            StreamingModel::Gru(k) => k.process(input, knobs, output),
            StreamingModel::Compressor(k) => k.process(input, knobs, output),
        }
    }

    /// Clears all history. Afterwards the kernel's output equals the candle model's output
    /// on the same input preceded by zeros (a WaveNet kernel prewarms over
    /// `receptive_field - 1` zero samples with `knobs`, normalised as in [`Self::process`];
    /// an LSTM or GRU returns to its initial state: zeros, or an LSTM's learned one). A freshly
    /// built kernel is in the reset state for knobs at 0.
    /// Real-time safe: no allocation; costs about one receptive field of processing.
    pub fn reset(&mut self, knobs: &[f32]) {
        match self {
            StreamingModel::Wavenet(k) => k.reset(knobs),
            StreamingModel::Lstm(k) => k.reset(knobs),
            StreamingModel::Gru(k) => k.reset(knobs),
            StreamingModel::Compressor(k) => k.reset(knobs),
        }
    }

    /// Resets with `knobs` (as [`Self::reset`]) and keeps that state, so that
    /// [`Self::reset_warm`] returns to it without evaluating the network. Not real-time safe:
    /// a WaveNet allocates its snapshot here. Call it off the audio thread after building.
    pub fn store_warm_state(&mut self, knobs: &[f32]) {
        match self {
            StreamingModel::Wavenet(k) => k.store_warm_state(knobs),
            StreamingModel::Lstm(k) => k.reset(knobs),
            StreamingModel::Gru(k) => k.reset(knobs),
            StreamingModel::Compressor(k) => k.reset(knobs),
        }
    }

    /// Clears all history cheaply: a WaveNet copies back the state [`Self::store_warm_state`]
    /// kept (its idle state for the stored knobs; other knobs take over within a receptive
    /// field), recurrent kernels reset as usual. The audio thread's reset: it costs a copy,
    /// not a receptive field of processing. Real-time safe.
    pub fn reset_warm(&mut self, knobs: &[f32]) {
        match self {
            StreamingModel::Wavenet(k) => k.reset_warm(knobs),
            StreamingModel::Lstm(k) => k.reset(knobs),
            StreamingModel::Gru(k) => k.reset(knobs),
            StreamingModel::Compressor(k) => k.reset(knobs),
        }
    }
}
