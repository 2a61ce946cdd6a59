//! Multi-resolution STFT distance with its exact gradient with respect to the time-domain
//! prediction. Trainer thread; its per-row loops fan out over the training run's own worker
//! pool (the one installed around the run).
//!
//! Per resolution (FFT size `N`, periodic Hann window scaled to unit sum, hop `N/4`, the last
//! frame zero-padded as in [`crate::metrics::mrstft`]), over every frame of every row:
//! spectral convergence `‖|T|-|P|‖ / ‖|T|‖` plus the mean of `|ln((|T|+f)/(|P|+f))|` with a
//! floor `f`; the distance is the mean over resolutions that fit in a row.
//!
//! The gradient runs the chain rule backward: `d/d|P_k|` per bin, times `P_k/|P_k|` for the
//! complex bin, then the adjoint of the real FFT (an unnormalised inverse real FFT of the
//! bins with interior bins halved, since each interior bin stands for two conjugate bins of
//! the full spectrum while DC and Nyquist stand for one), then the window, overlap-added.
//! Each frame's backward pass runs right after its forward transforms, while the bins are
//! in cache: the log-magnitude part directly, the spectral-convergence part into a buffer
//! per resolution that is scaled once the whole batch's norms are known.

use std::f64::consts::PI;
use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::EPSILON;

/// Floor added to unit-sum-window magnitudes before taking logs (about -100 dB re a
/// full-scale sine's bin, so noise far below audibility is not chased).
pub(super) const LOG_FLOOR: f32 = 1e-5;

/// One STFT resolution: its plans and window.
struct Resolution {
    fft_size: usize,
    hop: usize,
    /// Frames per row; 0 when a row is shorter than the FFT size (resolution skipped).
    frames: usize,
    /// Periodic Hann window divided by its sum.
    window: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl Resolution {
    fn bins(&self) -> usize {
        self.fft_size / 2 + 1
    }
}

/// What the backward pass needs of one bin of the prediction's spectrum.
#[derive(Clone, Copy, Debug, Default)]
struct BinRecord {
    /// `P_k / |P_k|` (0 when `|P_k|` is 0).
    direction: Complex<f32>,
    /// `|T_k| - |P_k|`.
    difference: f32,
    /// `d |ln((|T_k|+f)/(|P_k|+f))| / d|P_k|`.
    log_slope: f32,
}

/// Per-row, per-resolution partial sums.
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    difference_squared: f64,
    target_squared: f64,
    log_distance: f64,
}

impl Sums {
    fn add(self, other: Sums) -> Sums {
        Sums {
            difference_squared: self.difference_squared + other.difference_squared,
            target_squared: self.target_squared + other.target_squared,
            log_distance: self.log_distance + other.log_distance,
        }
    }
}

/// Scratch and partial results of one row; rows are independent until the sums are combined.
struct RowState {
    sums: Vec<Sums>,
    /// Per resolution, the gradient of `Σ|P_k|·(|T_k|-|P_k|)` over the row's samples: the
    /// spectral-convergence gradient before its batch-wide scale.
    convergence_gradient: Vec<Vec<f32>>,
    /// The log-magnitude part of the gradient, summed over resolutions, fully scaled.
    log_gradient: Vec<f32>,
    /// One frame's records.
    records: Vec<BinRecord>,
    frame: Vec<f32>,
    prediction_spectrum: Vec<Complex<f32>>,
    target_spectrum: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
}

impl RowState {
    fn new(resolutions: &[Resolution], samples_per_row: usize) -> Self {
        let max_size = resolutions.iter().map(|r| r.fft_size).max().unwrap_or(0);
        let scratch_len = resolutions
            .iter()
            .map(|r| r.forward.get_scratch_len().max(r.inverse.get_scratch_len()))
            .max()
            .unwrap_or(0);
        let zero = Complex::new(0.0, 0.0);
        RowState {
            sums: vec![Sums::default(); resolutions.len()],
            convergence_gradient: vec![vec![0.0; samples_per_row]; resolutions.len()],
            log_gradient: vec![0.0; samples_per_row],
            records: vec![BinRecord::default(); max_size / 2 + 1],
            frame: vec![0.0; max_size],
            prediction_spectrum: vec![zero; max_size / 2 + 1],
            target_spectrum: vec![zero; max_size / 2 + 1],
            fft_scratch: vec![zero; scratch_len],
        }
    }

    /// One row, forward and backward: fills the sums of every resolution, its unscaled
    /// spectral-convergence gradients and its log-magnitude gradient (`log_scales[r]` is
    /// resolution `r`'s factor on `d|ln ...|/d|P_k|`).
    fn evaluate(&mut self, resolutions: &[Resolution], log_scales: &[f32], prediction: &[f32], target: &[f32]) {
        self.log_gradient.fill(0.0);
        for (r, resolution) in resolutions.iter().enumerate() {
            let (size, bins) = (resolution.fft_size, resolution.bins());
            let convergence_gradient = &mut self.convergence_gradient[r];
            convergence_gradient.fill(0.0);
            let mut totals = [0.0f64; 3];
            for index in 0..resolution.frames {
                let start = index * resolution.hop;
                let frame = &mut self.frame[..size];
                let records = &mut self.records[..bins];
                let prediction_spectrum = &mut self.prediction_spectrum[..bins];
                let target_spectrum = &mut self.target_spectrum[..bins];
                for (signal, spectrum) in [(prediction, &mut *prediction_spectrum), (target, &mut *target_spectrum)] {
                    windowed_frame(signal, start, &resolution.window, frame);
                    resolution
                        .forward
                        .process_with_scratch(frame, spectrum, &mut self.fft_scratch)
                        .expect("buffer sizes come from the same plan");
                }
                let frame_sums = analyse_frame(prediction_spectrum, target_spectrum, records);
                for (total, sum) in totals.iter_mut().zip(frame_sums) {
                    *total += sum;
                }
                // Backward through the inverse FFT, the window and the overlap-add, once
                // for each part of the gradient.
                let log_scale = log_scales[r];
                let mut backward = |gradient: &mut [f32], slope: &dyn Fn(&BinRecord) -> f32| {
                    add_frame_gradient(
                        resolution,
                        records,
                        prediction_spectrum,
                        frame,
                        &mut self.fft_scratch,
                        &mut gradient[start..],
                        slope,
                    )
                };
                backward(convergence_gradient, &|b| b.difference);
                backward(&mut self.log_gradient, &|b| log_scale * b.log_slope);
            }
            self.sums[r] = Sums {
                difference_squared: totals[0],
                target_squared: totals[1],
                log_distance: totals[2],
            };
        }
    }

    /// Adds this row's gradient to `gradient`: the log part plus each resolution's
    /// convergence part times `convergence_scales[r]`.
    fn add_gradient(&self, convergence_scales: &[f32], gradient: &mut [f32]) {
        for (g, &log) in gradient.iter_mut().zip(&self.log_gradient) {
            *g += log;
        }
        for (&scale, part) in convergence_scales.iter().zip(&self.convergence_gradient) {
            if scale != 0.0 {
                for (g, &c) in gradient.iter_mut().zip(part) {
                    *g += scale * c;
                }
            }
        }
    }
}

/// Adds to `gradient` (starting at the frame's first sample) the frame's contribution to
/// the gradient of `Σ_k slope(record_k)·|P_k|`. `spectrum` and `frame` are scratch.
#[inline(always)]
fn add_frame_gradient(
    resolution: &Resolution,
    records: &[BinRecord],
    spectrum: &mut [Complex<f32>],
    frame: &mut [f32],
    fft_scratch: &mut [Complex<f32>],
    gradient: &mut [f32],
    slope: &dyn Fn(&BinRecord) -> f32,
) {
    let bins = spectrum.len();
    for (k, (bin, record)) in spectrum.iter_mut().zip(records).enumerate() {
        let fold = if k == 0 || k == bins - 1 { 1.0 } else { 0.5 };
        *bin = record.direction * (slope(record) * fold);
    }
    // DC and Nyquist bins of a real signal are real; their imaginary parts carry no gradient.
    spectrum[0].im = 0.0;
    spectrum[bins - 1].im = 0.0;
    resolution
        .inverse
        .process_with_scratch(spectrum, frame, fft_scratch)
        .expect("buffer sizes come from the same plan");
    for ((g, &y), &w) in gradient.iter_mut().zip(&*frame).zip(&resolution.window) {
        *g += w * y;
    }
}

/// Records and the sums `[Σ(|T|-|P|)², Σ|T|², Σ|ln((|T|+f)/(|P|+f))|]` of one frame.
fn analyse_frame(prediction: &[Complex<f32>], target: &[Complex<f32>], records: &mut [BinRecord]) -> [f64; 3] {
    // Independent f32 partial sums per lane (so the loop vectorises), folded into f64.
    let mut lanes = [[0.0f32; LANES]; 3];
    let mut record_chunks = records.chunks_exact_mut(LANES);
    let mut p_chunks = prediction.chunks_exact(LANES);
    let mut t_chunks = target.chunks_exact(LANES);
    for ((r, p), t) in (&mut record_chunks).zip(&mut p_chunks).zip(&mut t_chunks) {
        for lane in 0..LANES {
            let (record, terms) = analyse_bin(p[lane], t[lane]);
            r[lane] = record;
            for (sum, term) in lanes.iter_mut().zip(terms) {
                sum[lane] += term;
            }
        }
    }
    let remainder = record_chunks.into_remainder().iter_mut();
    for ((r, &p), &t) in remainder.zip(p_chunks.remainder()).zip(t_chunks.remainder()) {
        let (record, terms) = analyse_bin(p, t);
        *r = record;
        for (sum, term) in lanes.iter_mut().zip(terms) {
            sum[0] += term;
        }
    }
    lanes.map(|lane| lane.iter().map(|&x| x as f64).sum())
}

/// Lanes of the partial sums in [`analyse_frame`].
const LANES: usize = 8;

/// One bin: its record and its contributions `[(|T|-|P|)², |T|², |ln((|T|+f)/(|P|+f))|]`.
#[inline(always)]
fn analyse_bin(p: Complex<f32>, t: Complex<f32>) -> (BinRecord, [f32; 3]) {
    let p_magnitude = p.norm_sqr().sqrt();
    let t_magnitude = t.norm_sqr().sqrt();
    let difference = t_magnitude - p_magnitude;
    let log_distance = ln_positive((t_magnitude + LOG_FLOOR) / (p_magnitude + LOG_FLOOR)).abs();
    let inverse_magnitude = if p_magnitude > 0.0 { 1.0 / p_magnitude } else { 0.0 };
    // d|ln(t+f) - ln(p+f)|/dp = -sign(t - p) / (p + f).
    let log_slope = -sign(difference) / (p_magnitude + LOG_FLOOR);
    let record = BinRecord {
        direction: p * inverse_magnitude,
        difference,
        log_slope,
    };
    (
        record,
        [difference * difference, t_magnitude * t_magnitude, log_distance],
    )
}

/// `-1`, `0` or `1` by the sign of `x` (0 for 0, unlike `f32::signum`).
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Natural log of a positive normal `x`, to about 1e-7 (the libm call dominated the STFT
/// time and blocks vectorisation). Splits `x = m·2^e` with `m` in [√½, √2) and sums the
/// series `ln m = 2·atanh(s)`, `s = (m-1)/(m+1)`, `|s| ≤ 0.172`, to the `s⁹` term.
pub(super) fn ln_positive(x: f32) -> f32 {
    const SQRT_HALF_BITS: u32 = 0x3f35_04f3;
    let bits = x.to_bits();
    let exponent = (bits.wrapping_sub(SQRT_HALF_BITS) as i32) >> 23;
    let mantissa = f32::from_bits(bits.wrapping_sub((exponent as u32) << 23));
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s2 = s * s;
    let series = s * (2.0 + s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0)))));
    exponent as f32 * std::f32::consts::LN_2 + series
}

/// Copies `signal[start..start + window.len()]` times the window into `frame`, zero-padding
/// past the end of the signal.
fn windowed_frame(signal: &[f32], start: usize, window: &[f32], frame: &mut [f32]) {
    let available = signal.len().saturating_sub(start).min(window.len());
    for ((slot, &x), &w) in frame.iter_mut().zip(&signal[start..start + available]).zip(window) {
        *slot = x * w;
    }
    frame[available..].fill(0.0);
}

/// The multi-resolution STFT term: plans made once, per-row state reused across calls.
pub(super) struct MultiResolutionStft {
    resolutions: Vec<Resolution>,
    rows: Vec<RowState>,
    /// Per resolution, the factor on `d|ln ...|/d|P_k|` (known from the batch shape).
    log_scales: Vec<f32>,
    /// Per resolution, the factor on the unscaled convergence gradient (known once the
    /// batch's norms are).
    convergence_scales: Vec<f32>,
    samples_per_row: usize,
}

impl MultiResolutionStft {
    /// Plans every FFT size for rows of `samples_per_row` samples.
    ///
    /// # Panics
    /// If an FFT size is smaller than 4 (the hop would be 0).
    pub(super) fn new(fft_sizes: &[usize], samples_per_row: usize) -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let resolutions = fft_sizes
            .iter()
            .map(|&fft_size| {
                assert!(fft_size >= 4, "STFT size {fft_size} is too small");
                let hop = fft_size / 4;
                let frames = if samples_per_row < fft_size {
                    0
                } else {
                    1 + (samples_per_row - fft_size).div_ceil(hop)
                };
                let hann: Vec<f64> = (0..fft_size)
                    .map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / fft_size as f64).cos())
                    .collect();
                let sum: f64 = hann.iter().sum();
                Resolution {
                    fft_size,
                    hop,
                    frames,
                    window: hann.iter().map(|w| (w / sum) as f32).collect(),
                    forward: planner.plan_fft_forward(fft_size),
                    inverse: planner.plan_fft_inverse(fft_size),
                }
            })
            .collect();
        MultiResolutionStft {
            resolutions,
            rows: Vec::new(),
            log_scales: vec![0.0; fft_sizes.len()],
            convergence_scales: vec![0.0; fft_sizes.len()],
            samples_per_row,
        }
    }

    /// Returns the distance of `prediction` from `target` (whole rows) and adds `weight *
    /// d distance / d prediction` to `gradient`. Rows run in parallel.
    pub(super) fn evaluate(&mut self, prediction: &[f32], target: &[f32], weight: f32, gradient: &mut [f32]) -> f32 {
        let samples_per_row = self.samples_per_row;
        let rows = prediction.len() / samples_per_row;
        let active = self.resolutions.iter().filter(|r| r.frames > 0).count();
        if rows == 0 || active == 0 {
            return 0.0;
        }
        while self.rows.len() < rows {
            self.rows.push(RowState::new(&self.resolutions, samples_per_row));
        }
        // Each active resolution counts 1/active of the distance.
        let term_weight = weight as f64 / active as f64;
        for (scale, resolution) in self.log_scales.iter_mut().zip(&self.resolutions) {
            let bins = (rows * resolution.frames * resolution.bins()) as f64;
            *scale = if resolution.frames > 0 {
                (term_weight / bins) as f32
            } else {
                0.0
            };
        }
        let (resolutions, log_scales) = (&self.resolutions, &self.log_scales);
        let states = &mut self.rows[..rows];
        states
            .par_iter_mut()
            .zip(prediction.par_chunks_exact(samples_per_row))
            .zip(target.par_chunks_exact(samples_per_row))
            .for_each(|((state, p_row), t_row)| state.evaluate(resolutions, log_scales, p_row, t_row));
        let mut distance = 0.0f64;
        for (r, (resolution, scale)) in resolutions.iter().zip(&mut self.convergence_scales).enumerate() {
            *scale = 0.0;
            if resolution.frames == 0 {
                continue;
            }
            let total = states.iter().fold(Sums::default(), |acc, state| acc.add(state.sums[r]));
            let bins = (rows * resolution.frames * resolution.bins()) as f64;
            let difference_norm = total.difference_squared.sqrt();
            let target_norm = (total.target_squared + EPSILON).sqrt();
            distance += difference_norm / target_norm + total.log_distance / bins;
            // d‖|T|-|P|‖/d|P_k| = -(|T_k|-|P_k|) / ‖|T|-|P|‖.
            if difference_norm > 0.0 {
                *scale = (-term_weight / (difference_norm * target_norm)) as f32;
            }
        }
        let convergence_scales = &self.convergence_scales;
        states
            .par_iter()
            .zip(gradient.par_chunks_exact_mut(samples_per_row))
            .for_each(|(state, g_row)| state.add_gradient(convergence_scales, g_row));
        (distance / active as f64) as f32
    }
}
