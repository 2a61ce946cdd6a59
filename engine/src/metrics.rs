//! Accuracy metrics comparing a model's output with the device's (ESR, pre-emphasised
//! ESR, SNR, multi-resolution STFT distance) plus sine measurements for tests and reports.
//! Used off the audio thread (trainer, CLI, tests).
//!
//! Every metric compares the common prefix of the two slices (the shorter length).

use std::f64::consts::PI;

use realfft::RealFftPlanner;
use serde::Serialize;

use crate::dsp::PreEmphasis;

/// Pre-emphasis coefficient used for [`esr_preemph`] in reports and validation.
pub const PREEMPH_COEFFICIENT: f32 = 0.95;

/// Keeps ratios finite when the target is silent.
const EPSILON: f64 = 1e-10;

/// FFT sizes of the multi-resolution STFT distance, in samples (hop is a quarter).
pub const MRSTFT_FFT_SIZES: [usize; 3] = [512, 1024, 2048];

/// Error-to-signal ratio `Σ(t-p)² / (Σt² + ε)`: 0 is perfect, 1 is as bad as silence.
pub fn esr(prediction: &[f32], target: &[f32]) -> f32 {
    let (error, energy) = prediction
        .iter()
        .zip(target)
        .fold((0.0f64, 0.0f64), |(e, s), (&p, &t)| {
            (e + (t as f64 - p as f64).powi(2), s + (t as f64).powi(2))
        });
    (error / (energy + EPSILON)) as f32
}

/// ESR after the first-order pre-emphasis `y[n] = x[n] - coefficient·x[n-1]` of both signals
/// (weights high frequencies, where hiss and fizz live).
pub fn esr_preemph(prediction: &[f32], target: &[f32], coefficient: f32) -> f32 {
    let emphasize = |x: &[f32]| {
        let mut filter = PreEmphasis::new(coefficient);
        x.iter().map(|&v| filter.process_sample(v)).collect::<Vec<f32>>()
    };
    let n = prediction.len().min(target.len());
    esr(&emphasize(&prediction[..n]), &emphasize(&target[..n]))
}

/// Signal-to-noise ratio of the prediction, in dB: `-10·log10(ESR)`.
pub fn snr_db(prediction: &[f32], target: &[f32]) -> f32 {
    -10.0 * esr(prediction, target).max(1e-30).log10()
}

/// Magnitude spectrogram frames of one resolution, each `fft_size / 2 + 1` bins.
fn magnitudes(
    signal: &[f32],
    fft: &dyn realfft::RealToComplex<f32>,
    window: &[f32],
    scratch: &mut (Vec<f32>, Vec<realfft::num_complex::Complex<f32>>),
) -> Vec<Vec<f32>> {
    let fft_size = window.len();
    let hop = fft_size / 4;
    let frames = if signal.len() <= fft_size {
        1
    } else {
        1 + (signal.len() - fft_size).div_ceil(hop)
    };
    let (input, spectrum) = scratch;
    (0..frames)
        .map(|frame| {
            let start = frame * hop;
            for (i, slot) in input.iter_mut().enumerate() {
                *slot = signal.get(start + i).copied().unwrap_or(0.0) * window[i];
            }
            fft.process(input, spectrum)
                .expect("buffer sizes come from the same plan");
            spectrum.iter().map(|c| c.norm()).collect()
        })
        .collect()
}

/// Multi-resolution STFT distance: for each FFT size in [`MRSTFT_FFT_SIZES`] (Hann window,
/// 75 % overlap) spectral convergence `‖|T|-|P|‖ / ‖|T|‖` plus the mean absolute difference
/// of natural-log magnitudes; the result is the mean over resolutions. 0 for identical signals.
pub fn mrstft(prediction: &[f32], target: &[f32]) -> f32 {
    let n = prediction.len().min(target.len());
    let (prediction, target) = (&prediction[..n], &target[..n]);
    let mut planner = RealFftPlanner::<f32>::new();
    let mut total = 0.0f64;
    for fft_size in MRSTFT_FFT_SIZES {
        let fft = planner.plan_fft_forward(fft_size);
        let window: Vec<f32> = (0..fft_size)
            .map(|i| (0.5 - 0.5 * (2.0 * PI * i as f64 / fft_size as f64).cos()) as f32)
            .collect();
        let mut scratch = (fft.make_input_vec(), fft.make_output_vec());
        let predicted = magnitudes(prediction, fft.as_ref(), &window, &mut scratch);
        let expected = magnitudes(target, fft.as_ref(), &window, &mut scratch);
        let (mut difference, mut energy, mut log_sum, mut bins) = (0.0f64, 0.0f64, 0.0f64, 0usize);
        for (p_frame, t_frame) in predicted.iter().zip(&expected) {
            for (&p, &t) in p_frame.iter().zip(t_frame) {
                difference += (t as f64 - p as f64).powi(2);
                energy += (t as f64).powi(2);
                log_sum += ((t as f64).max(1e-7).ln() - (p as f64).max(1e-7).ln()).abs();
                bins += 1;
            }
        }
        let convergence = (difference / (energy + EPSILON)).sqrt();
        total += convergence + log_sum / bins.max(1) as f64;
    }
    (total / MRSTFT_FFT_SIZES.len() as f64) as f32
}

/// All accuracy metrics of one prediction against its target.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Metrics {
    /// Error-to-signal ratio (see [`esr`]).
    pub esr: f32,
    /// ESR after pre-emphasis with [`PREEMPH_COEFFICIENT`].
    pub esr_preemph: f32,
    /// Signal-to-noise ratio, in dB.
    pub snr_db: f32,
    /// Multi-resolution STFT distance (see [`mrstft`]).
    pub mrstft: f32,
}

/// Computes every metric of `prediction` against `target`.
pub fn measure(prediction: &[f32], target: &[f32]) -> Metrics {
    Metrics {
        esr: esr(prediction, target),
        esr_preemph: esr_preemph(prediction, target, PREEMPH_COEFFICIENT),
        snr_db: snr_db(prediction, target),
        mrstft: mrstft(prediction, target),
    }
}

/// Window of the gain-reduction measurement, in seconds.
pub const GAIN_WINDOW_SECONDS: f32 = 0.01;
/// Input level below which a window is not scored, in dBFS (RMS).
pub const GAIN_GATE_DBFS: f32 = -60.0;

/// How far a dynamics model's gain is from the device's: over 10 ms RMS windows where the
/// input is above -60 dBFS, the RMS in dB of (model output / input) - (device output /
/// input), each a level ratio in dB. `None` when no window is loud enough. The same with a
/// model that does nothing (output = input) is [`gain_reduction_db_rms`].
pub fn gain_reduction_error_db(input: &[f32], model: &[f32], device: &[f32], sample_rate: u32) -> Option<f32> {
    windowed_gain_error(input, Some(model), device, sample_rate)
}

/// The device's gain change itself, as an RMS in dB over the windows
/// [`gain_reduction_error_db`] scores: the error of doing nothing.
pub fn gain_reduction_db_rms(input: &[f32], device: &[f32], sample_rate: u32) -> Option<f32> {
    windowed_gain_error(input, None, device, sample_rate)
}

fn windowed_gain_error(input: &[f32], model: Option<&[f32]>, device: &[f32], sample_rate: u32) -> Option<f32> {
    let window = ((GAIN_WINDOW_SECONDS * sample_rate as f32) as usize).max(1);
    let length = input
        .len()
        .min(device.len())
        .min(model.map_or(usize::MAX, <[f32]>::len));
    let mean_square = |x: &[f32]| x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / x.len() as f64;
    let gate = 10f64.powf(GAIN_GATE_DBFS as f64 / 10.0);
    let (mut sum, mut count) = (0.0f64, 0usize);
    for start in (0..length.saturating_sub(window - 1)).step_by(window) {
        let range = start..start + window;
        let dry = mean_square(&input[range.clone()]);
        if dry < gate {
            continue;
        }
        let db = |x: f64| 10.0 * (x + EPSILON).log10();
        let device_gain = db(mean_square(&device[range.clone()])) - db(dry);
        let model_gain = model.map_or(0.0, |m| db(mean_square(&m[range])) - db(dry));
        sum += (model_gain - device_gain).powi(2);
        count += 1;
    }
    (count > 0).then(|| (sum / count as f64).sqrt() as f32)
}

/// The lag within `±max_lag_samples` at which `prediction` matches `target` best, and the ESR
/// there: `(lag, esr)`, a positive lag meaning the prediction runs late (`prediction[n + lag]`
/// lines up with `target[n]`). Every lag is compared over the same span, `max_lag_samples`
/// trimmed from each end; at lag 0 the whole-length [`esr`] is returned, so a profile whose
/// timing is right gets the figure as played. A report quotes it only beside the ESR as played
/// (lag 0): it shows how much of an error is timing.
pub fn best_lag_esr(prediction: &[f32], target: &[f32], max_lag_samples: usize) -> (i64, f32) {
    let played = esr(prediction, target);
    let (length, max_lag) = (prediction.len().min(target.len()), max_lag_samples);
    if length <= 2 * max_lag {
        return (0, played);
    }
    let scored = &target[max_lag..length - max_lag];
    let at = |lag: i64| {
        let from = (max_lag as i64 + lag) as usize;
        esr(&prediction[from..from + scored.len()], scored)
    };
    let (lag, best) =
        (-(max_lag as i64)..=max_lag as i64)
            .map(|lag| (lag, at(lag)))
            .fold(
                (0, f32::INFINITY),
                |best, candidate| if candidate.1 < best.1 { candidate } else { best },
            );
    if lag == 0 {
        (0, played)
    } else {
        (lag, best)
    }
}

/// Amplitude (peak) of the `frequency_hz` component of `signal`, by correlation with a
/// sine and cosine over the whole slice (exact for whole periods, close for long slices).
pub fn sine_amplitude(signal: &[f32], sample_rate_hz: f32, frequency_hz: f32) -> f32 {
    let w = 2.0 * PI * frequency_hz as f64 / sample_rate_hz as f64;
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (n, &x) in signal.iter().enumerate() {
        let phase = w * n as f64;
        re += x as f64 * phase.cos();
        im += x as f64 * phase.sin();
    }
    (2.0 * (re * re + im * im).sqrt() / signal.len().max(1) as f64) as f32
}

/// Total harmonic distortion of `signal` for a sine at `fundamental_hz`: the RMS sum of
/// harmonics 2..=`harmonics` (those below Nyquist) over the fundamental, as a ratio (0.01 = 1 %).
pub fn thd(signal: &[f32], sample_rate_hz: f32, fundamental_hz: f32, harmonics: usize) -> f32 {
    let fundamental = sine_amplitude(signal, sample_rate_hz, fundamental_hz);
    let distortion: f32 = (2..=harmonics)
        .map(|k| k as f32 * fundamental_hz)
        .filter(|&f| f < 0.5 * sample_rate_hz)
        .map(|f| sine_amplitude(signal, sample_rate_hz, f).powi(2))
        .sum();
    distortion.sqrt() / fundamental.max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frequency_hz: f32, samples: usize) -> Vec<f32> {
        (0..samples)
            .map(|n| (2.0 * std::f32::consts::PI * frequency_hz * n as f32 / 48_000.0).sin() * 0.5)
            .collect()
    }

    #[test]
    fn best_lag_finds_a_late_prediction_and_played_esr_shows_the_cost() {
        let target: Vec<f32> = (0..4000)
            .map(|n| ((n * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.5)
            .collect();
        let late: Vec<f32> = (0..4000).map(|n| if n >= 16 { target[n - 16] } else { 0.0 }).collect();
        let (lag, best) = best_lag_esr(&late, &target, 32);
        assert_eq!(lag, 16);
        assert!(best < 1e-10, "{best}");
        assert!(
            esr(&late, &target) > 0.5,
            "played 16 samples late, the ESR must show it"
        );
    }

    #[test]
    fn esr_and_snr_known_values() {
        let target = tone(440.0, 4_800);
        let prediction: Vec<f32> = target.iter().map(|t| 0.9 * t).collect();
        assert!((esr(&prediction, &target) - 0.01).abs() < 1e-5);
        assert!((snr_db(&prediction, &target) - 20.0).abs() < 1e-3);
        assert!(esr(&target, &target) < 1e-12);
        let silence = vec![0.0; target.len()];
        assert!((esr(&silence, &target) - 1.0).abs() < 1e-6);
        assert!(snr_db(&silence, &target).abs() < 1e-4);
        // A silent target stays finite.
        assert!(esr(&target, &silence).is_finite());
    }

    #[test]
    fn preemphasis_weights_high_frequencies() {
        // Same relative error (10 %) at any frequency gives the same ESR either way...
        let target = tone(100.0, 4_800);
        let scaled: Vec<f32> = target.iter().map(|t| 0.9 * t).collect();
        assert!((esr_preemph(&scaled, &target, PREEMPH_COEFFICIENT) - 0.01).abs() < 1e-4);
        // ...but a missing 8 kHz component weighs much more after pre-emphasis.
        let treble = tone(8_000.0, 4_800);
        let with_treble: Vec<f32> = target.iter().zip(&treble).map(|(a, b)| a + 0.1 * b).collect();
        let plain = esr(&target, &with_treble);
        let emphasised = esr_preemph(&target, &with_treble, PREEMPH_COEFFICIENT);
        assert!(emphasised > 10.0 * plain, "plain {plain}, emphasised {emphasised}");
    }

    #[test]
    fn mrstft_is_zero_for_identical_and_grows_with_error() {
        let target = tone(440.0, 9_600);
        assert!(mrstft(&target, &target) < 1e-6);
        let slightly: Vec<f32> = target.iter().map(|t| 0.95 * t).collect();
        let very: Vec<f32> = target.iter().map(|t| 0.5 * t).collect();
        let (small, large) = (mrstft(&slightly, &target), mrstft(&very, &target));
        assert!(small > 0.01 && small < 0.2, "5 % error gives {small}");
        assert!(large > 3.0 * small, "50 % error gives {large}, 5 % gives {small}");
        // Shorter than one frame still works.
        assert!(mrstft(&target[..100], &target[..100]) < 1e-6);
    }

    #[test]
    fn measure_collects_all_metrics() {
        let target = tone(440.0, 9_600);
        let prediction: Vec<f32> = target.iter().map(|t| 0.9 * t).collect();
        let m = measure(&prediction, &target);
        assert!((m.esr - 0.01).abs() < 1e-5 && (m.esr_preemph - 0.01).abs() < 1e-4);
        assert!((m.snr_db - 20.0).abs() < 1e-3 && m.mrstft > 0.0);
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"esr_preemph\""));
    }

    #[test]
    fn thd_of_known_mixture() {
        let n = 48_000;
        let signal: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / 48_000.0;
                let w = 2.0 * std::f32::consts::PI * 200.0 * t;
                w.sin() + 0.03 * (2.0 * w).sin() + 0.04 * (3.0 * w).sin()
            })
            .collect();
        assert!((thd(&signal, 48_000.0, 200.0, 10) - 0.05).abs() < 1e-3);
        assert!((sine_amplitude(&signal, 48_000.0, 200.0) - 1.0).abs() < 1e-3);
    }
}
