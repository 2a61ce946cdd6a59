//! Offline playback of a profile through its streaming kernel: the stream as the plugin plays
//! it, and the same with the profile's reported latency removed, as a host's delay
//! compensation hears it. CLI, trainer and tests (it allocates: never the audio thread).

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
