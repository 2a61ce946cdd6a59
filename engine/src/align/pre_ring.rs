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
//! [`pre_ring_samples`] asks the question directly, in least squares: how much of the target
//! does a linear filter explain that may look up to `max` samples ahead of the latency, more
//! than one that may look `m` samples ahead? It fits the Wiener filter over lags `-m..C` for
//! every `m` at once (one Cholesky factorisation of the input's autocorrelation with the
//! look-ahead lags ordered last, so each `m` is a leading block) and returns the smallest
//! margin whose loss stays under [`PRE_RING_ENERGY_FRACTION`] of the target's energy. Noise
//! and distortion products of a causal device are uncorrelated with the input's future, so
//! they raise every fit's residual alike and ask for no margin; a regularised deconvolution
//! smeared the response's peak ahead of it and read 32 samples on a memoryless saturator.
//! That holds for Gaussian-like input (Bussgang): on structured audio a causal clipper's
//! output does correlate with the input's future, so training measures on the capture
//! signal's noise bursts ([`crate::signal::noise_range`]) and on other audio whole.

use realfft::num_complex::Complex;
use realfft::RealFftPlanner;

use super::sample;

/// Energy of the target, as a fraction of all of it, that input ahead of the margin may
/// explain: a causal model misses it, so it bounds the achievable ESR from below (1e-4 is a
/// tenth of the 0.001 ESR of an excellent profile).
pub const PRE_RING_ENERGY_FRACTION: f64 = 1e-4;
/// Lags at and after the latency in every fit (the device's causal response).
const CAUSAL_TAPS: usize = 256;
/// Most look-ahead lags measured.
const MAX_AHEAD_TAPS: usize = 128;
/// Samples per block of the correlation sums, and their FFT length.
const BLOCK_SAMPLES: usize = 8192;
const FFT_SAMPLES: usize = 2 * BLOCK_SAMPLES;
/// Diagonal loading of the autocorrelation, relative to the input's energy: frequencies the
/// input leaves out cannot be measured and are not fitted.
const LOADING: f64 = 1e-7;

/// What [`pre_ring_samples`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreRing {
    /// Smallest margin, in samples, that loses under [`PRE_RING_ENERGY_FRACTION`] of the
    /// target's energy to input beyond it (capped at the `max_samples` asked for).
    pub margin_samples: usize,
    /// Fraction of the target's energy that only input ahead of the latency explains: what a
    /// margin of 0 would lose.
    pub energy_ahead_fraction: f64,
}

/// Estimates how many samples before `latency_samples` the target's response to `input`
/// reaches (see the module docs), searching margins up to `max_samples`. `None` when the
/// audio is too short or silent to tell.
pub fn pre_ring_samples(input: &[f32], target: &[f32], latency_samples: i64, max_samples: usize) -> Option<PreRing> {
    let ahead = max_samples.min(MAX_AHEAD_TAPS);
    let (auto, cross, target_energy) = correlations(input, target, latency_samples, ahead)?;
    let samples = input.len().min(target.len()) as f64;
    if auto[0] <= 0.0 || target_energy <= 0.0 || !target_energy.is_finite() {
        return None;
    }
    // Unknowns: lags 0..C, then -1, -2, .., -ahead, so a margin m fits the leading C + m.
    let lag_of = |i: usize| -> i64 {
        if i < CAUSAL_TAPS {
            i as i64
        } else {
            -((i - CAUSAL_TAPS + 1) as i64)
        }
    };
    let n = CAUSAL_TAPS + ahead;
    let mut matrix = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            matrix[i * n + j] = auto[(lag_of(i) - lag_of(j)).unsigned_abs() as usize];
        }
        matrix[i * n + i] += LOADING * auto[0];
    }
    let rhs: Vec<f64> = (0..n).map(|i| cross[(lag_of(i) + ahead as i64) as usize]).collect();
    let explained = explained_by_leading_blocks(&mut matrix, &rhs, n)?;
    // Residual energy of the fit with margin m, as a fraction of the target's.
    let residual = |m: usize| (target_energy - explained[CAUSAL_TAPS + m]) / target_energy;
    // Each extra tap also fits noise, lowering the residual by about residual / samples even
    // where the device has no response: that much is expected and not a pre-ring.
    let overfit = |m: usize| (ahead - m) as f64 * residual(ahead) / samples;
    let lost = |m: usize| (residual(m) - residual(ahead) - overfit(m)).max(0.0);
    let margin_samples = (0..=ahead)
        .find(|&m| lost(m) < PRE_RING_ENERGY_FRACTION)
        .unwrap_or(ahead);
    Some(PreRing {
        margin_samples,
        energy_ahead_fraction: lost(0),
    })
}

/// Cholesky-factors the symmetric positive-definite `matrix` (lower triangle, row-major,
/// `n`×`n`) in place and returns, for every k in 0..=n, the energy the least-squares fit on
/// the first k unknowns explains (`p_kᵀ R_k⁻¹ p_k`, from forward substitution).
fn explained_by_leading_blocks(matrix: &mut [f64], rhs: &[f64], n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let mut diagonal = matrix[j * n + j];
        for k in 0..j {
            diagonal -= matrix[j * n + k] * matrix[j * n + k];
        }
        if diagonal <= 0.0 || !diagonal.is_finite() {
            return None;
        }
        let diagonal = diagonal.sqrt();
        matrix[j * n + j] = diagonal;
        for i in j + 1..n {
            let mut value = matrix[i * n + j];
            for k in 0..j {
                value -= matrix[i * n + k] * matrix[j * n + k];
            }
            matrix[i * n + j] = value / diagonal;
        }
    }
    let mut z = vec![0.0f64; n];
    let mut explained = vec![0.0f64; n + 1];
    for i in 0..n {
        let mut value = rhs[i];
        for k in 0..i {
            value -= matrix[i * n + k] * z[k];
        }
        z[i] = value / matrix[i * n + i];
        explained[i + 1] = explained[i] + z[i] * z[i];
    }
    Some(explained)
}

/// Exact correlation sums over the whole pair, with `y[n] = target[n + latency]`:
/// the input's autocorrelation `Σ x[n]·x[n+d]` for `d` in `0..C + ahead`, the cross
/// correlation `Σ y[n]·x[n-k]` for `k` in `-ahead..C` (index `k + ahead`), and `Σ y²`.
fn correlations(
    input: &[f32],
    target: &[f32],
    latency_samples: i64,
    ahead: usize,
) -> Option<(Vec<f64>, Vec<f64>, f64)> {
    let length = input.len().min(target.len());
    let lags = CAUSAL_TAPS + ahead;
    if length < BLOCK_SAMPLES || lags + BLOCK_SAMPLES > FFT_SAMPLES {
        return None;
    }
    let mut planner = RealFftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(FFT_SAMPLES);
    let inverse = planner.plan_fft_inverse(FFT_SAMPLES);
    let mut time = forward.make_input_vec();
    let (mut block, mut window) = (forward.make_output_vec(), forward.make_output_vec());
    let mut auto_spectrum = vec![Complex::new(0.0f64, 0.0); block.len()];
    let mut cross_spectrum = auto_spectrum.clone();
    let mut transform = |fill: &dyn Fn(usize) -> f64, out: &mut Vec<Complex<f64>>| -> Option<()> {
        time.iter_mut().enumerate().for_each(|(i, v)| *v = fill(i));
        forward.process(&mut time, out).ok()
    };
    let x = |index: i64| sample(input, index);
    let y = |index: i64| sample(target, index + latency_samples);
    let mut target_energy = 0.0;
    let mut start = 0i64;
    while start < length as i64 {
        let end = (start + BLOCK_SAMPLES as i64).min(length as i64);
        let within = |i: usize, limit: i64| start + (i as i64) < limit;
        // Autocorrelation: this block of x against x from the block on, `lags` further.
        transform(&|i| if within(i, end) { x(start + i as i64) } else { 0.0 }, &mut block)?;
        transform(
            &|i| {
                if within(i, end + lags as i64) {
                    x(start + i as i64)
                } else {
                    0.0
                }
            },
            &mut window,
        )?;
        for ((a, b), w) in auto_spectrum.iter_mut().zip(&block).zip(&window) {
            *a += b.conj() * w;
        }
        // Cross correlation: this block of y against x from C - 1 samples earlier.
        let offset = start - (CAUSAL_TAPS as i64 - 1);
        transform(&|i| if within(i, end) { y(start + i as i64) } else { 0.0 }, &mut block)?;
        transform(
            &|i| {
                if offset + (i as i64) < end + ahead as i64 {
                    x(offset + i as i64)
                } else {
                    0.0
                }
            },
            &mut window,
        )?;
        for ((c, b), w) in cross_spectrum.iter_mut().zip(&block).zip(&window) {
            *c += b.conj() * w;
        }
        target_energy += (start..end).map(|n| y(n) * y(n)).sum::<f64>();
        start = end;
    }
    let back = |spectrum: &mut Vec<Complex<f64>>| -> Option<Vec<f64>> {
        spectrum[0].im = 0.0;
        if let Some(last) = spectrum.last_mut() {
            last.im = 0.0;
        }
        let mut out = inverse.make_output_vec();
        inverse.process(spectrum, &mut out).ok()?;
        Some(out.iter().map(|v| v / FFT_SAMPLES as f64).collect())
    };
    let auto_lags = back(&mut auto_spectrum)?;
    let cross_lags = back(&mut cross_spectrum)?;
    let auto = auto_lags[..lags].to_vec();
    // Index j of the cross sum holds Σ y[n]·x[n + j - (C - 1)], i.e. k = C - 1 - j.
    let cross = (0..lags)
        .map(|index| {
            let k = index as i64 - ahead as i64;
            cross_lags[(CAUSAL_TAPS as i64 - 1 - k) as usize]
        })
        .collect();
    Some((auto, cross, target_energy))
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

    /// `x` through a one-pole low-pass into `tanh(drive · ..)`, `delay` samples late.
    fn saturate(x: &[f32], drive: f32, delay: usize) -> Vec<f32> {
        let mut state = 0.0f32;
        let mut y = vec![0.0f32; delay];
        y.extend(x.iter().map(|v| {
            state += 0.5 * (v - state);
            (drive * state).tanh()
        }));
        y
    }

    #[test]
    fn a_saturator_needs_no_margin() {
        // Its distortion products are not a pre-ring: on noise however hard it clips, and so
        // on the capture signal's noise bursts (training measures there).
        let found = pre_ring_samples(&noise(96_000, 5), &saturate(&noise(96_000, 5), 6.0, 12), 12, 32).unwrap();
        assert_eq!(found.margin_samples, 0, "noise, drive 6: {found:?}");
        let capture = crate::signal::capture_signal(48_000, 30.0);
        let noise_bursts = crate::signal::noise_range(48_000, &capture).unwrap();
        for drive in [1.0f32, 6.0] {
            let y = saturate(&capture, drive, 12);
            let found = pre_ring_samples(&capture[noise_bursts.clone()], &y[noise_bursts.start..], 12, 32).unwrap();
            assert_eq!(
                found.margin_samples, 0,
                "capture's noise bursts, drive {drive}: {found:?}"
            );
        }
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
