//! Latency estimation and alignment of a capture pair (clean input, device output).
//! Used by the trainer and the CLI, off the audio thread.
//!
//! The estimate is a generalised cross-correlation with phase transform (GCC-PHAT): the
//! cross-spectrum of the two signals is averaged over overlapping segments, every bin in
//! the band from 0.2 % to 15 % of the sample rate (about 100 Hz to 7 kHz at 48 kHz) is
//! normalised to unit magnitude (with tapered band edges, see [`correlation_band_weight`])
//! and the rest dropped, and the inverse FFT peaks at the lag.
//! Whitening makes the peak sharp through a device's filtering (the correlation of plain
//! low-passed guitar audio is broad), and averaging the cross-spectrum makes distortion
//! products, which are not coherent with the input at their own frequency, average out.

mod pre_ring;

use anyhow::{bail, Result};
use realfft::RealFftPlanner;

pub use pre_ring::{pre_ring_samples, PreRing, PRE_RING_ENERGY_FRACTION};

/// The result of [`estimate_latency`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alignment {
    /// Delay of the target relative to the input, in samples (positive: the target is late).
    pub latency_samples: i64,
    /// Height of the correlation peak divided by the highest value more than
    /// [`PEAK_EXCLUSION_SAMPLES`] away from it (capped at [`MAX_CONFIDENCE`]). Clean delays
    /// give tens to hundreds; below about 2 the estimate should not be trusted.
    pub confidence: f32,
}

/// Half-width around the peak ignored when looking for the runner-up, in samples.
pub const PEAK_EXCLUSION_SAMPLES: usize = 16;
/// Confidence reported when there is no runner-up to compare with.
pub const MAX_CONFIDENCE: f32 = 1_000.0;
/// Correlated band as fractions of the sample rate: raised-cosine ramps from 0.2 % to 0.6 %
/// and from 10 % down to 15 % (tapering keeps the correlation's sidelobes low).
const BAND: [f64; 4] = [0.002, 0.006, 0.10, 0.15];

/// Weight (0..1) of the frequency `fraction` (of the sample rate) in the latency estimate.
/// Public so a device model can predict the delay the estimate will see in its phase.
pub fn correlation_band_weight(fraction: f64) -> f64 {
    let ramp = |x: f64| 0.5 - 0.5 * (std::f64::consts::PI * x.clamp(0.0, 1.0)).cos();
    if fraction <= BAND[0] || fraction >= BAND[3] {
        0.0
    } else if fraction < BAND[1] {
        ramp((fraction - BAND[0]) / (BAND[1] - BAND[0]))
    } else if fraction > BAND[2] {
        ramp((BAND[3] - fraction) / (BAND[3] - BAND[2]))
    } else {
        1.0
    }
}
/// Peak magnitude below which a signal counts as silent.
const SILENCE_PEAK: f32 = 1e-6;

/// Estimates how many samples `target` lags `input`, searching `-max..=max` samples.
///
/// Works through filtering and nonlinear devices (it is tested through the reference amp at
/// full gain). Errors when either signal is empty or silent.
pub fn estimate_latency(input: &[f32], target: &[f32], max_latency_samples: usize) -> Result<Alignment> {
    for (name, signal) in [("input", input), ("target", target)] {
        let peak = signal
            .iter()
            .fold(0.0f32, |m, v| if v.is_finite() { m.max(v.abs()) } else { m });
        if peak < SILENCE_PEAK {
            bail!(
                "cannot estimate latency: the {name} is silent or empty ({} samples, peak {peak:.1e})",
                signal.len()
            );
        }
    }
    let max_lag = max_latency_samples;
    let fft_size = (4 * max_lag + 4).max(8_192).next_power_of_two();
    // Input segments are `segment` long and the target segments `fft_size` long, starting
    // `max_lag` earlier, so every lag in range is an exact (non-circular) correlation.
    let segment = fft_size - 2 * max_lag;
    let hop = (segment / 2).max(1);
    let length = input.len().min(target.len());

    let mut planner = RealFftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(fft_size);
    let inverse = planner.plan_fft_inverse(fft_size);
    let window = hann(segment);
    let (mut x_time, mut y_time) = (forward.make_input_vec(), forward.make_input_vec());
    let (mut x_freq, mut y_freq) = (forward.make_output_vec(), forward.make_output_vec());
    let mut cross = vec![realfft::num_complex::Complex::new(0.0f64, 0.0); x_freq.len()];

    let mut start = 0usize;
    loop {
        x_time.fill(0.0);
        for (i, w) in window.iter().enumerate() {
            x_time[i] = w * sample(input, (start + i) as i64);
        }
        for (j, slot) in y_time.iter_mut().enumerate() {
            *slot = sample(target, start as i64 - max_lag as i64 + j as i64);
        }
        forward
            .process(&mut x_time, &mut x_freq)
            .expect("sizes come from the plan");
        forward
            .process(&mut y_time, &mut y_freq)
            .expect("sizes come from the plan");
        for ((c, x), y) in cross.iter_mut().zip(&x_freq).zip(&y_freq) {
            *c += x.conj() * y;
        }
        start += hop;
        if start >= length {
            break;
        }
    }

    let floor = 1e-9 * cross.iter().map(|c| c.norm()).fold(0.0, f64::max);
    for (bin, c) in cross.iter_mut().enumerate() {
        *c *= correlation_band_weight(bin as f64 / fft_size as f64) / (c.norm() + floor);
    }
    let mut correlation = inverse.make_output_vec();
    inverse
        .process(&mut cross, &mut correlation)
        .expect("sizes come from the plan");

    // correlation[k] holds lag k - max_lag for k in 0..=2·max_lag; polarity is ignored.
    let lags = &correlation[..=2 * max_lag];
    let (best, peak) = lags.iter().enumerate().fold(
        (0, 0.0f64),
        |(bi, bv), (i, v)| {
            if v.abs() > bv {
                (i, v.abs())
            } else {
                (bi, bv)
            }
        },
    );
    let runner_up = lags
        .iter()
        .enumerate()
        .filter(|(i, _)| i.abs_diff(best) > PEAK_EXCLUSION_SAMPLES)
        .map(|(_, v)| v.abs())
        .fold(0.0f64, f64::max);
    let confidence = if runner_up > 0.0 {
        ((peak / runner_up) as f32).min(MAX_CONFIDENCE)
    } else {
        MAX_CONFIDENCE
    };
    Ok(Alignment {
        latency_samples: best as i64 - max_lag as i64,
        confidence,
    })
}

/// A Hann window of `length` samples, sampled at the centres of the samples.
fn hann(length: usize) -> Vec<f64> {
    (0..length)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * (i as f64 + 0.5) / length as f64).cos())
        .collect()
}

/// `signal[index]` as `f64`: 0 outside the signal and for a non-finite sample.
fn sample(signal: &[f32], index: i64) -> f64 {
    usize::try_from(index)
        .ok()
        .and_then(|i| signal.get(i))
        .map_or(0.0, |&v| if v.is_finite() { v as f64 } else { 0.0 })
}

/// Shifts the pair so that `target[n]` lines up with `input[n]` given the target's
/// `latency_samples` (as found by [`estimate_latency`]) and trims both to their common
/// length. Returns `(input, target)`; both empty when the shift exceeds the audio.
pub fn align_pair(input: &[f32], target: &[f32], latency_samples: i64) -> (Vec<f32>, Vec<f32>) {
    let shift = latency_samples.unsigned_abs() as usize;
    let (input, target) = if latency_samples >= 0 {
        (input, target.get(shift..).unwrap_or(&[]))
    } else {
        (input.get(shift..).unwrap_or(&[]), target)
    };
    let length = input.len().min(target.len());
    (input[..length].to_vec(), target[..length].to_vec())
}

#[cfg(test)]
mod tests;
