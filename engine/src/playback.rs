//! Offline playback of a profile through its streaming kernel: the stream as the plugin plays
//! it, and the same with the profile's reported latency removed, as a host's delay
//! compensation hears it; mono, or by channel as a stereo track plays it (a stereo-linked
//! model on both channels at once). CLI, trainer and tests (it allocates: never the audio
//! thread).

use anyhow::{Context, Result};

use crate::kernel::StreamingModel;
use crate::profile::Profile;

/// Block size the kernel is built for here, in samples.
const BLOCK_SAMPLES: usize = 4096;

/// Plays `input` through a fresh kernel of `profile` with normalised `knobs` (model input
/// order): the plugin's stream, `latency_samples` late.
pub fn play(profile: &Profile, input: &[f32], knobs: &[f32]) -> Result<Vec<f32>> {
    let mut model = StreamingModel::new(&profile.meta.model, &profile.weights, BLOCK_SAMPLES)
        .context("cannot build the model's kernel")?;
    model.reset(knobs);
    let mut output = vec![0.0; input.len()];
    model.process(input, knobs, &mut output);
    Ok(output)
}

/// [`play`] with the latency the profile reports removed: `output[n]` lines up with
/// `input[n]`. The last samples are the model's response to silence after the input (the tail
/// a host plays out).
pub fn play_compensated(profile: &Profile, input: &[f32], knobs: &[f32]) -> Result<Vec<f32>> {
    let latency = profile.meta.latency_samples as usize;
    let mut padded = Vec::with_capacity(input.len() + latency);
    padded.extend_from_slice(input);
    padded.resize(input.len() + latency, 0.0);
    let mut output = play(profile, &padded, knobs)?;
    output.drain(..latency);
    Ok(output)
}

/// Plays `inputs` (channels of equal length) as a track of that many channels plays them:
/// a stereo-linked model takes a pair at once (one detector, one gain), any other model plays
/// each channel through its own kernel. The plugin's stream, `latency_samples` late.
pub fn play_channels(profile: &Profile, inputs: &[&[f32]], knobs: &[f32]) -> Result<Vec<Vec<f32>>> {
    let mut model = StreamingModel::new(&profile.meta.model, &profile.weights, BLOCK_SAMPLES)
        .context("cannot build the model's kernel")?;
    model.reset(knobs);
    if let (Some(linked), [left, right]) = (model.linked_mut(), inputs) {
        let (mut out_left, mut out_right) = (vec![0.0; left.len()], vec![0.0; right.len()]);
        linked.process_linked([left, right], knobs, [&mut out_left, &mut out_right]);
        return Ok(vec![out_left, out_right]);
    }
    let fresh = model;
    Ok(inputs
        .iter()
        .map(|input| {
            let mut kernel = fresh.clone();
            let mut output = vec![0.0; input.len()];
            kernel.process(input, knobs, &mut output);
            output
        })
        .collect())
}

/// [`play_channels`] with the reported latency removed from every channel (see
/// [`play_compensated`]).
pub fn play_channels_compensated(profile: &Profile, inputs: &[&[f32]], knobs: &[f32]) -> Result<Vec<Vec<f32>>> {
    let latency = profile.meta.latency_samples as usize;
    let padded: Vec<Vec<f32>> = inputs
        .iter()
        .map(|input| {
            let mut padded = input.to_vec();
            padded.resize(input.len() + latency, 0.0);
            padded
        })
        .collect();
    let views: Vec<&[f32]> = padded.iter().map(Vec::as_slice).collect();
    let mut outputs = play_channels(profile, &views, knobs)?;
    for output in &mut outputs {
        output.drain(..latency);
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensation_removes_exactly_the_reported_latency() {
        let profile = Profile::delay_fixture(9).unwrap();
        let input: Vec<f32> = (0..500)
            .map(|n| 0.005 * ((n * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let raw = play(&profile, &input, &[]).unwrap();
        let aligned = play_compensated(&profile, &input, &[]).unwrap();
        assert_eq!(aligned.len(), input.len());
        assert_eq!(&raw[9..], &aligned[..input.len() - 9]);
        let worst = input
            .iter()
            .zip(&aligned)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "the delay fixture played back in time: {worst}");
    }
}
