//! How far a device's response reaches ahead of its measured latency: the causality margin a
//! causal model needs. Trainer/CLI thread, off the audio thread.
//!
//! The correlation peak that [`super::estimate_latency`] finds is where a device's response is
//! strongest, not where it starts. A linear-phase filter (an oversampler's anti-aliasing
//! filter, a linear-phase EQ) rings symmetrically around its peak, so part of its response
//! comes *before* the latency: a causal model aligned at the peak can never produce it and
//! loses that energy as error. A minimum-phase device (most analog gear, most plugins) has
//! nothing there, and any margin only adds latency.
//!
//! [`pre_ring_samples`] estimates the device's linear impulse response around the latency by
//! averaged cross-spectral deconvolution (`H = Σ X*·Y / Σ |X|²` over windowed segments), takes
//! the noise floor from lags far ahead of the peak (distortion products and noise spread there
//! evenly), and returns the smallest margin that leaves less than [`PRE_RING_ENERGY_FRACTION`]
//! of the response's energy ahead of the aligned target.

use realfft::num_complex::Complex;
use realfft::RealFftPlanner;

use super::{hann, sample};

/// Energy of the response, as a fraction of all of it, that may lie ahead of the margin: a
/// causal model misses it, so it bounds the achievable ESR from below (1e-4 is a tenth of
/// the 0.001 ESR of an excellent profile).
pub const PRE_RING_ENERGY_FRACTION: f64 = 1e-4;
/// Lags on each side of the latency over which the response is estimated.
const HALF_WIDTH_SAMPLES: usize = 256;
/// Segment (FFT) length of the cross-spectral average.
const SEGMENT_SAMPLES: usize = 8192;

/// What [`pre_ring_samples`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreRing {
    /// Smallest margin, in samples, leaving under [`PRE_RING_ENERGY_FRACTION`] of the
    /// response's energy ahead of it (capped at the `max_samples` asked for).
    pub margin_samples: usize,
    /// Fraction of the response's energy that lies ahead of the latency itself (margin 0).
    pub energy_ahead_fraction: f64,
}

/// Estimates how many samples before `latency_samples` the response of `target` to `input`
/// carries energy (see the module docs), searching margins up to `max_samples`. `None` when
/// the audio is too short or silent to tell.
pub fn pre_ring_samples(input: &[f32], target: &[f32], latency_samples: i64, max_samples: usize) -> Option<PreRing> {
    let response = impulse_response(input, target, latency_samples)?;
    // response[HALF_WIDTH + k] is the response at lag latency + k.
    let power: Vec<f64> = response.iter().map(|h| h * h).collect();
    let far_ahead = &power[..HALF_WIDTH_SAMPLES / 2];
    let floor = far_ahead.iter().sum::<f64>() / far_ahead.len() as f64;
    // Not clamped at zero: summed over many lags, the floor's fluctuations cancel instead of
    // piling up into a false pre-ring.
    let excess: Vec<f64> = power.iter().map(|p| p - floor).collect();
    let total: f64 = excess[HALF_WIDTH_SAMPLES / 2..].iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    // Energy strictly ahead of lag -m, from the end of the noise-floor region on.
    let ahead = |margin: usize| -> f64 {
        let end = HALF_WIDTH_SAMPLES - margin.min(HALF_WIDTH_SAMPLES / 2);
        excess[HALF_WIDTH_SAMPLES / 2..end].iter().sum::<f64>().max(0.0) / total
    };
    let max_samples = max_samples.min(HALF_WIDTH_SAMPLES / 2);
    let margin_samples = (0..=max_samples)
        .find(|&m| ahead(m) < PRE_RING_ENERGY_FRACTION)
        .unwrap_or(max_samples);
    Some(PreRing {
        margin_samples,
        energy_ahead_fraction: ahead(0),
    })
}

/// The linear impulse response at lags `latency - HALF_WIDTH ..= latency + HALF_WIDTH - 1`.
fn impulse_response(input: &[f32], target: &[f32], latency_samples: i64) -> Option<Vec<f64>> {
    let length = input.len().min(target.len());
    if length < SEGMENT_SAMPLES {
        return None;
    }
    let mut planner = RealFftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(SEGMENT_SAMPLES);
    let inverse = planner.plan_fft_inverse(SEGMENT_SAMPLES);
    let window = hann(SEGMENT_SAMPLES);
    let (mut x_time, mut y_time) = (forward.make_input_vec(), forward.make_input_vec());
    let (mut x_freq, mut y_freq) = (forward.make_output_vec(), forward.make_output_vec());
    let mut cross = vec![Complex::new(0.0f64, 0.0); x_freq.len()];
    let mut input_power = vec![0.0f64; x_freq.len()];
    let mut start = 0usize;
    while start + SEGMENT_SAMPLES <= length {
        for (i, w) in window.iter().enumerate() {
            x_time[i] = w * sample(input, (start + i) as i64);
            y_time[i] = w * sample(target, (start + i) as i64 + latency_samples);
        }
        forward.process(&mut x_time, &mut x_freq).ok()?;
        forward.process(&mut y_time, &mut y_freq).ok()?;
        for (((c, p), x), y) in cross.iter_mut().zip(&mut input_power).zip(&x_freq).zip(&y_freq) {
            *c += x.conj() * y;
            *p += x.norm_sqr();
        }
        start += SEGMENT_SAMPLES / 2;
    }
    let peak_power = input_power.iter().copied().fold(0.0, f64::max);
    if peak_power <= 0.0 {
        return None;
    }
    // Bins the input barely excites are regularised towards zero instead of amplified.
    let regulariser = 1e-3 * peak_power;
    for (c, p) in cross.iter_mut().zip(&input_power) {
        *c /= p + regulariser;
    }
    // The DC and Nyquist bins of a real inverse transform must be real.
    cross[0].im = 0.0;
    if let Some(last) = cross.last_mut() {
        last.im = 0.0;
    }
    let mut response = inverse.make_output_vec();
    inverse.process(&mut cross, &mut response).ok()?;
    let scale = 1.0 / SEGMENT_SAMPLES as f64;
    Some(
        (0..2 * HALF_WIDTH_SAMPLES)
            .map(|i| response[(i + SEGMENT_SAMPLES - HALF_WIDTH_SAMPLES) % SEGMENT_SAMPLES] * scale)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn noise(samples: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..samples).map(|_| rng.random_range(-0.5f32..0.5)).collect()
    }

    fn convolve(x: &[f32], h: &[f32]) -> Vec<f32> {
        (0..x.len())
            .map(|n| {
                h.iter()
                    .enumerate()
                    .filter(|(k, _)| *k <= n)
                    .map(|(k, c)| c * x[n - k])
                    .sum()
            })
            .collect()
    }

    #[test]
    fn a_minimum_phase_device_needs_no_margin() {
        let x = noise(96_000, 3);
        // One-pole low-pass delayed by 30 samples: nothing before the peak.
        let mut h = vec![0.0f32; 30];
        h.extend((0..200).map(|k| 0.3 * 0.7f32.powi(k)));
        let y = convolve(&x, &h);
        let found = pre_ring_samples(&x, &y, 30, 64).unwrap();
        assert_eq!(found.margin_samples, 0, "{found:?}");
        assert!(found.energy_ahead_fraction < 1e-5, "{found:?}");
    }

    #[test]
    fn a_linear_phase_filter_needs_the_samples_it_rings_ahead() {
        let x = noise(96_000, 4);
        // Symmetric windowed-sinc low-pass, 41 taps: it rings 20 samples either side of its peak.
        let taps = 41;
        let h: Vec<f32> = (0..taps)
            .map(|k| {
                let t = k as f32 - 20.0;
                let sinc = if t == 0.0 {
                    1.0
                } else {
                    (0.4 * std::f32::consts::PI * t).sin() / (std::f32::consts::PI * t)
                };
                let w = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * (k as f32 + 0.5) / taps as f32).cos();
                if t == 0.0 {
                    0.4 * w
                } else {
                    sinc * w
                }
            })
            .collect();
        let y = convolve(&x, &h);
        let found = pre_ring_samples(&x, &y, 20, 64).unwrap();
        assert!((4..=20).contains(&found.margin_samples), "{found:?}");
        assert!(found.energy_ahead_fraction > 1e-3, "{found:?}");
    }
}
