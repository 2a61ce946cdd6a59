//! Validation: held-out capture tails played through the streaming kernel, i.e. exactly
//! the code the plugin runs (a stereo-linked model on both channels at once). Trainer
//! thread.

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
    let mut held_out_samples = 0;
    for (pair, region) in dataset.pairs.iter().zip(regions) {
        let from = region.start.saturating_sub(warmup);
        let channels = pair.channels();
        held_out_samples += pair.input.len() - region.start;
        kernel.reset(&region.knobs);
        if let Some(linked) = kernel.linked_mut() {
            // A mono capture plays as both channels.
            let (left, right) = (channels[0], channels[channels.len() - 1]);
            let length = left.0.len() - from;
            let (mut out_left, mut out_right) = (vec![0.0; length], vec![0.0; length]);
            linked.process_linked(
                [&left.0[from..], &right.0[from..]],
                &region.knobs,
                [&mut out_left, &mut out_right],
            );
            predictions.extend_from_slice(&out_left[region.start - from..]);
            targets.extend_from_slice(&left.1[region.start..]);
            if pair.right.is_some() {
                predictions.extend_from_slice(&out_right[region.start - from..]);
                targets.extend_from_slice(&right.1[region.start..]);
            }
        } else {
            let input = &pair.input[from..];
            let mut output = vec![0.0; input.len()];
            kernel.process(input, &region.knobs, &mut output);
            predictions.extend_from_slice(&output[region.start - from..]);
            targets.extend_from_slice(&pair.target[region.start..]);
        }
    }
    Ok(Accuracy {
        esr: esr(&predictions, &targets),
        esr_preemph: esr_preemph(&predictions, &targets, PREEMPH_COEFFICIENT),
        seconds: held_out_samples as f32 / dataset.sample_rate as f32,
    })
}
