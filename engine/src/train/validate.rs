//! Validation: held-out capture tails played through the streaming kernel, i.e. exactly
//! the code the plugin runs. Trainer thread.

use anyhow::Result;

use crate::dataset::Dataset;
use crate::kernel::StreamingModel;
use crate::metrics::{esr, esr_preemph, PREEMPH_COEFFICIENT};
use crate::model::ModelConfig;
use crate::profile::{Accuracy, Weights};

/// Block size the kernel is built for during validation.
const BLOCK_SAMPLES: usize = 4096;

/// A held-out region: from `start` to the end of its capture, with normalised knobs.
pub struct Region {
    /// First held-out sample.
    pub start: usize,
    /// Normalised knob values of the capture.
    pub knobs: Vec<f32>,
}

/// Plays `weights` over every capture's held-out region (preceded by enough of the
/// capture to fill the receptive field and settle state) and scores the result.
pub fn validation_esr(
    model: &ModelConfig,
    weights: &Weights,
    dataset: &Dataset,
    regions: &[Region],
) -> Result<Accuracy> {
    let mut kernel = StreamingModel::new(model, weights, BLOCK_SAMPLES)?;
    let warmup = model.settle_samples();
    let (mut predictions, mut targets) = (Vec::new(), Vec::new());
    for (pair, region) in dataset.pairs.iter().zip(regions) {
        let from = region.start.saturating_sub(warmup);
        let input = &pair.input[from..];
        let mut output = vec![0.0; input.len()];
        kernel.reset(&region.knobs);
        kernel.process(input, &region.knobs, &mut output);
        predictions.extend_from_slice(&output[region.start - from..]);
        targets.extend_from_slice(&pair.target[region.start..]);
    }
    Ok(Accuracy {
        esr: esr(&predictions, &targets),
        esr_preemph: esr_preemph(&predictions, &targets, PREEMPH_COEFFICIENT),
        seconds: targets.len() as f32 / dataset.sample_rate as f32,
    })
}
