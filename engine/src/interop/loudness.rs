//! NAM-style loudness and gain metadata, and the default gain staging a profile's
//! calibration implies. Measurement runs off the audio thread (CLI, GUI); the gain-staging
//! function is pure and cheap (any thread).
//!
//! NAM measures a model's loudness as the RMS, in dB re full scale, of its output for one
//! second of a standard guitar input played from a cleared state at nominal settings; its
//! "gain" compares the loudness at 11 input scalings (0, 0.1 .. 1) with a straight line
//! (no compression, 0) and a flat line (full compression, 1). Doppel measures the same way
//! with its own standard input: a one-second held-out test phrase ([`crate::signal`])
//! scaled to NAM's input level of about -15 dBFS RMS, so values agree with NAM's to within
//! about a dB for typical amps (the tests report the difference on a NAM fixture).

use anyhow::{Context, Result};

use crate::profile::{Profile, ProfileMeta};
use crate::signal;
use crate::StreamingModel;

/// Output loudness the default gain staging normalises to, in dB re full scale (NAM's
/// plug-in normalises to the same level).
pub const OUTPUT_LOUDNESS_TARGET_DB: f32 = -18.0;
/// Analog level in dBu of a full-scale signal on a typical audio interface's instrument
/// input, assumed when calibrating a model's input to its recorded `input_level_dbu`.
pub const REFERENCE_INTERFACE_LEVEL_DBU: f32 = 12.0;
/// Largest correction either default gain may apply, in dB.
pub const MAX_CALIBRATION_GAIN_DB: f32 = 24.0;
/// RMS level of the standard loudness input, in dB re full scale (NAM's input is -15.0).
const STANDARD_INPUT_RMS_DB: f32 = -15.0;
/// Seed of the test phrase used as the standard input.
const STANDARD_INPUT_SEED: u64 = 0x10da_0e55;

/// One second of Doppel's standard loudness input at `sample_rate`.
pub fn standard_input(sample_rate: u32) -> Vec<f32> {
    let mut x = signal::test_phrase(sample_rate, 1.0, STANDARD_INPUT_SEED);
    let rms = rms(&x).max(1e-9);
    let scale = 10f32.powf(STANDARD_INPUT_RMS_DB / 20.0) / rms;
    x.iter_mut().for_each(|v| *v *= scale);
    x
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / x.len().max(1) as f64).sqrt() as f32
}

/// RMS of the profile's output for `input` scaled by `gain`, from reset, knobs at defaults.
fn output_rms(profile: &Profile, input: &[f32], gain: f32) -> Result<f32> {
    let knobs: Vec<f32> = profile.meta.knobs.iter().map(|k| k.normalize(k.default)).collect();
    let mut model = StreamingModel::new(&profile.meta.model, &profile.weights, 4096)
        .context("cannot build the model's kernel to measure loudness")?;
    model.reset(&knobs);
    let scaled: Vec<f32> = input.iter().map(|v| v * gain).collect();
    let mut output = vec![0.0; input.len()];
    model.process(&scaled, &knobs, &mut output);
    Ok(rms(&output))
}

/// The profile's loudness as NAM defines it: output RMS in dB re full scale for the
/// standard input at nominal settings (knobs at their defaults). Silence reads -200 dB.
pub fn measure_loudness_db(profile: &Profile) -> Result<f32> {
    let input = standard_input(profile.meta.sample_rate);
    let level = output_rms(profile, &input, 1.0)?;
    Ok(20.0 * level.max(1e-10).log10())
}

/// NAM's gain / compression metric, 0 (output grows in proportion to the input) to 1
/// (output level independent of the input), from the standard input at 11 scalings.
pub fn measure_gain(profile: &Profile) -> Result<f32> {
    let input = standard_input(profile.meta.sample_rate);
    let levels = (0..=10)
        .map(|i| output_rms(profile, &input, i as f32 / 10.0))
        .collect::<Result<Vec<f32>>>()?;
    let full = levels[10] * levels.len() as f32; // area under a flat line at the top level
    let linear = 0.5 * full; // area under a straight line from zero
    let range = full - linear;
    if range.is_nan() || range <= 0.0 {
        return Ok(0.0);
    }
    Ok(((levels.iter().sum::<f32>() - linear) / range).clamp(0.0, 1.0))
}

/// Default gain staging from a profile's calibration: `(input_gain_db, output_gain_db)`.
///
/// - Input: when the profile records `input_level_dbu` (the analog level of its 0 dBFS
///   input), `REFERENCE_INTERFACE_LEVEL_DBU - input_level_dbu`, so a guitar hits the model
///   as hard as it hit the captured device through an interface whose full scale is
///   [`REFERENCE_INTERFACE_LEVEL_DBU`]; else 0.
/// - Output: when the profile records its loudness, `OUTPUT_LOUDNESS_TARGET_DB -
///   loudness_db`, normalising every profile to the same playing level; else 0.
///
/// Both are clamped to ±[`MAX_CALIBRATION_GAIN_DB`]; non-finite values count as unknown.
pub fn calibration_gains_db(meta: &ProfileMeta) -> (f32, f32) {
    let Some(calibration) = &meta.calibration else {
        return (0.0, 0.0);
    };
    let bounded = |v: f32| {
        if v.is_finite() {
            v.clamp(-MAX_CALIBRATION_GAIN_DB, MAX_CALIBRATION_GAIN_DB)
        } else {
            0.0
        }
    };
    let input = calibration
        .input_level_dbu
        .map_or(0.0, |level| bounded(REFERENCE_INTERFACE_LEVEL_DBU - level));
    let output = calibration
        .loudness_db
        .map_or(0.0, |loudness| bounded(OUTPUT_LOUDNESS_TARGET_DB - loudness));
    (input, output)
}
