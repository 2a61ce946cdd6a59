//! One module per subcommand, plus argument helpers they share.

pub mod bench;
pub mod eval;
pub mod export;
pub mod import;
pub mod info;
pub mod process;
pub mod reference;
pub mod signal;
pub mod train;

use std::path::Path;

use anyhow::{ensure, Context, Result};
use doppel_engine::wav::{read_wav_mono, WavAudio};
use doppel_engine::Profile;

/// Parses `NAME=VALUE` (a knob setting in the knob's unit).
pub fn parse_knob(text: &str) -> Result<(String, f32), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got '{text}'"))?;
    let value: f32 = value
        .trim()
        .parse()
        .map_err(|_| format!("knob '{name}' value '{value}' is not a number"))?;
    if !value.is_finite() {
        return Err(format!("knob '{name}' value is not finite"));
    }
    Ok((name.trim().to_string(), value))
}

/// Reads a WAV that will be played through `profile`, checking its sample rate.
pub fn read_input_for(profile: &Profile, path: &Path) -> Result<WavAudio> {
    let audio = read_wav_mono(path)?;
    ensure!(
        audio.sample_rate == profile.meta.sample_rate,
        "sample rate mismatch: {} is {} Hz but the profile was trained at {} Hz",
        path.display(),
        audio.sample_rate,
        profile.meta.sample_rate
    );
    Ok(audio)
}

/// Plays `input` through a fresh kernel of `profile` with knobs given by name.
pub fn play(profile: &Profile, input: &[f32], knobs: &[(String, f32)]) -> Result<Vec<f32>> {
    let knobs = profile.normalized_knobs(knobs)?;
    let mut model = doppel_engine::StreamingModel::new(&profile.meta.model, &profile.weights, 4096)
        .context("cannot build the model's kernel")?;
    model.reset(&knobs);
    let mut output = vec![0.0; input.len()];
    model.process(input, &knobs, &mut output);
    Ok(output)
}

/// Plays `input` through `profile` and removes the latency the profile reports, as a host's
/// delay compensation does: `output[n]` lines up with `input[n]`. The last samples are the
/// model's response to silence after the input (the tail a host plays out).
pub fn play_compensated(profile: &Profile, input: &[f32], knobs: &[(String, f32)]) -> Result<Vec<f32>> {
    let latency = profile.meta.latency_samples as usize;
    let mut padded = Vec::with_capacity(input.len() + latency);
    padded.extend_from_slice(input);
    padded.resize(input.len() + latency, 0.0);
    let mut output = play(profile, &padded, knobs)?;
    output.drain(..latency);
    Ok(output)
}

/// The profile's architecture and size preset (or "custom"), e.g. "wavenet/nano".
pub fn model_label(profile: &Profile) -> (String, String) {
    let model = &profile.meta.model;
    (
        model.architecture().to_string(),
        model.size().map_or("custom", |s| s.name()).to_string(),
    )
}
