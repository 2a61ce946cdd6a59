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

use anyhow::{ensure, Result};
use doppel_engine::wav::{read_wav_channels, read_wav_mono, WavAudio, WavChannels};
use doppel_engine::{playback, Profile};

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
    check_rate(profile, path, audio.sample_rate)?;
    Ok(audio)
}

/// Reads a WAV keeping its channels, for a stereo-linked `profile` (checked: sample rate,
/// one or two channels).
pub fn read_channels_for(profile: &Profile, path: &Path) -> Result<WavChannels> {
    let audio = read_wav_channels(path)?;
    check_rate(profile, path, audio.sample_rate)?;
    ensure!(
        audio.channels.len() <= 2,
        "{} has {} channels; a stereo-linked profile plays one or two",
        path.display(),
        audio.channels.len()
    );
    Ok(audio)
}

/// The file at `path` must be at the rate `profile` was trained at.
fn check_rate(profile: &Profile, path: &Path, sample_rate: u32) -> Result<()> {
    ensure!(
        sample_rate == profile.meta.sample_rate,
        "sample rate mismatch: {} is {sample_rate} Hz but the profile was trained at {} Hz",
        path.display(),
        profile.meta.sample_rate
    );
    Ok(())
}

/// Whether `profile` plays a stereo pair with one linked detector.
pub fn is_linked(profile: &Profile) -> bool {
    profile.meta.model.channels() == 2
}

/// [`play_compensated`] by channel (see [`playback::play_channels_compensated`]).
pub fn play_channels_compensated(
    profile: &Profile,
    inputs: &[&[f32]],
    knobs: &[(String, f32)],
) -> Result<Vec<Vec<f32>>> {
    playback::play_channels_compensated(profile, inputs, &profile.normalized_knobs(knobs)?)
}

/// [`play`] by channel (see [`playback::play_channels`]).
pub fn play_channels(profile: &Profile, inputs: &[&[f32]], knobs: &[(String, f32)]) -> Result<Vec<Vec<f32>>> {
    playback::play_channels(profile, inputs, &profile.normalized_knobs(knobs)?)
}

/// Plays `input` through `profile` with knobs given by name: the plugin's stream, the
/// profile's latency left in.
pub fn play(profile: &Profile, input: &[f32], knobs: &[(String, f32)]) -> Result<Vec<f32>> {
    playback::play(profile, input, &profile.normalized_knobs(knobs)?)
}

/// [`play`] with the profile's reported latency removed, as a DAW's delay compensation does.
pub fn play_compensated(profile: &Profile, input: &[f32], knobs: &[(String, f32)]) -> Result<Vec<f32>> {
    playback::play_compensated(profile, input, &profile.normalized_knobs(knobs)?)
}

/// The profile's architecture and size preset (or "custom"), e.g. "wavenet/nano".
pub fn model_label(profile: &Profile) -> (String, String) {
    let model = &profile.meta.model;
    (
        model.architecture().to_string(),
        model.size().map_or("custom", |s| s.name()).to_string(),
    )
}
