//! Tests of the training objective: every term's analytic gradient against central finite
//! differences of an independent `f64` reference, zero at a perfect prediction, the total
//! as the weighted sum, agreement with the candle losses, the A-weighting curve.

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::stft::{ln_positive, LOG_FLOOR};
use super::*;

const SAMPLE_RATE_HZ: f32 = 48_000.0;
const ROWS: usize = 2;
const SAMPLES_PER_ROW: usize = 600;
/// Small resolutions so 600-sample rows hold several frames (the last zero-padded); 1024
/// does not fit and must be skipped.
const TEST_FFT_SIZES: [usize; 4] = [64, 128, 256, 1024];

/// A target with tones and noise per row, and a prediction a little off it.
fn signals(seed: u64, rows: usize, samples_per_row: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rows * samples_per_row;
    let target: Vec<f32> = (0..n)
        .map(|i| {
            let t = (i % samples_per_row) as f32 / SAMPLE_RATE_HZ;
            0.4 * (2.0 * std::f32::consts::PI * 330.0 * t).sin() + 0.2 * rng.random_range(-1.0f32..1.0) + 0.01
        })
        .collect();
    let prediction = target
        .iter()
        .map(|&t| 0.9 * t + 0.05 * rng.random_range(-1.0f32..1.0) + 0.02)
        .collect();
    (prediction, target)
}

/// An objective with only one term switched on.
fn only(term: &str) -> Objective {
    let mut objective = Objective {
        esr: 0.0,
        esr_preemph: 0.0,
        preemph_coefficient: 0.85,
        esr_a_weighted: 0.0,
        mrstft: 0.0,
        mrstft_fft_sizes: TEST_FFT_SIZES.to_vec(),
        dc: 0.0,
    };
    match term {
        "esr" => objective.esr = 1.0,
        "esr_preemph" => objective.esr_preemph = 1.0,
        "esr_a_weighted" => objective.esr_a_weighted = 1.0,
        "mrstft" => objective.mrstft = 1.0,
        "dc" => objective.dc = 1.0,
        _ => unreachable!("unknown term {term}"),
    }
    objective
}

fn ratio(error: f64, energy: f64) -> f64 {
    error / (energy + EPSILON)
}

fn rows_of(x: &[f64]) -> std::slice::ChunksExact<'_, f64> {
    x.chunks_exact(SAMPLES_PER_ROW)
}

fn reference_esr(p: &[f64], t: &[f64]) -> f64 {
    let error: f64 = p.iter().zip(t).map(|(p, t)| (p - t).powi(2)).sum();
    ratio(error, t.iter().map(|t| t * t).sum())
}

fn reference_esr_preemph(p: &[f64], t: &[f64], c: f64) -> f64 {
    let emphasise = |x: &[f64]| -> Vec<f64> {
        rows_of(x)
            .flat_map(|row| (1..row.len()).map(move |n| row[n] - c * row[n - 1]))
            .collect()
    };
    reference_esr(&emphasise(p), &emphasise(t))
}

fn reference_dc(p: &[f64], t: &[f64]) -> f64 {
    let n = p.len() as f64;
    let mean_error = p.iter().zip(t).map(|(p, t)| p - t).sum::<f64>() / n;
    mean_error * mean_error / (t.iter().map(|t| t * t).sum::<f64>() / n + EPSILON)
}

/// The A-weighting filter's impulse response over one row (computed once, then convolved
/// in `f64`, so the reference shares only the filter's coefficients with the code under test).
fn a_weighting_impulse_response() -> Vec<f64> {
    let mut impulse = vec![0.0f32; SAMPLES_PER_ROW];
    impulse[0] = 1.0;
    AWeighting::new(SAMPLE_RATE_HZ).filter_in_place(&mut impulse);
    impulse.iter().map(|&h| h as f64).collect()
}

fn reference_esr_a_weighted(p: &[f64], t: &[f64], h: &[f64]) -> f64 {
    let filter = |x: &[f64]| -> Vec<f64> {
        rows_of(x)
            .flat_map(|row| (0..row.len()).map(move |n| (0..=n).map(|m| h[m] * row[n - m]).sum::<f64>()))
            .collect()
    };
    reference_esr(&filter(p), &filter(t))
}

/// Multi-resolution STFT distance by direct DFT in `f64`, framed as the evaluator frames.
fn reference_mrstft(p: &[f64], t: &[f64], fft_sizes: &[usize]) -> f64 {
    let floor = LOG_FLOOR as f64;
    let mut total = 0.0;
    let mut active = 0;
    for &size in fft_sizes.iter().filter(|&&size| size <= SAMPLES_PER_ROW) {
        active += 1;
        let hop = size / 4;
        let frames = 1 + (SAMPLES_PER_ROW - size).div_ceil(hop);
        let hann: Vec<f64> = (0..size)
            .map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / size as f64).cos())
            .collect();
        let window_sum: f64 = hann.iter().sum();
        let twiddles: Vec<(f64, f64)> = (0..size)
            .map(|m| {
                let angle = -2.0 * PI * m as f64 / size as f64;
                (angle.cos(), angle.sin())
            })
            .collect();
        let magnitudes = |row: &[f64], frame: usize| -> Vec<f64> {
            (0..=size / 2)
                .map(|k| {
                    let (mut re, mut im) = (0.0, 0.0);
                    for (n, w) in hann.iter().enumerate() {
                        let x = row.get(frame * hop + n).copied().unwrap_or(0.0) * w / window_sum;
                        let (cos, sin) = twiddles[(k * n) % size];
                        re += x * cos;
                        im += x * sin;
                    }
                    (re * re + im * im).sqrt()
                })
                .collect()
        };
        let (mut difference, mut energy, mut log_distance, mut bins) = (0.0, 0.0, 0.0, 0.0);
        for (p_row, t_row) in rows_of(p).zip(rows_of(t)) {
            for frame in 0..frames {
                for (mp, mt) in magnitudes(p_row, frame).into_iter().zip(magnitudes(t_row, frame)) {
                    difference += (mt - mp).powi(2);
                    energy += mt * mt;
                    log_distance += ((mt + floor) / (mp + floor)).ln().abs();
                    bins += 1.0;
                }
            }
        }
        total += difference.sqrt() / (energy + EPSILON).sqrt() + log_distance / bins;
    }
    total / active as f64
}

/// Checks one term: the evaluator's value against the reference, and its gradient against
/// central differences of the reference at a few dozen coordinates (edges of both rows
/// included). Returns the largest relative gradient error seen.
fn check_term(term: &str, reference: &dyn Fn(&[f64], &[f64]) -> f64) -> f64 {
    let (prediction, target) = signals(7, ROWS, SAMPLES_PER_ROW);
    let mut evaluator = ObjectiveEvaluator::new(&only(term), SAMPLE_RATE_HZ, SAMPLES_PER_ROW);
    let mut gradient = vec![f32::NAN; prediction.len()];
    let value = evaluator.evaluate(&prediction, &target, &mut gradient);
    let p: Vec<f64> = prediction.iter().map(|&x| x as f64).collect();
    let t: Vec<f64> = target.iter().map(|&x| x as f64).collect();
    let expected = reference(&p, &t);
    assert!(
        ((value.total as f64) - expected).abs() <= 1e-4 * expected.abs(),
        "{term}: value {} vs reference {expected}",
        value.total
    );
    let largest = gradient.iter().fold(0.0f32, |m, g| m.max(g.abs())) as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut coordinates = vec![0, 1, SAMPLES_PER_ROW - 1, SAMPLES_PER_ROW, prediction.len() - 1];
    coordinates.extend((0..35).map(|_| rng.random_range(0..prediction.len())));
    let step = 1e-6;
    let mut worst = 0.0f64;
    for &i in &coordinates {
        let mut shifted = p.clone();
        shifted[i] = p[i] + step;
        let up = reference(&shifted, &t);
        shifted[i] = p[i] - step;
        let down = reference(&shifted, &t);
        let numeric = (up - down) / (2.0 * step);
        let analytic = gradient[i] as f64;
        let error = (analytic - numeric).abs();
        // Relative to the coordinate's own size, floored at 1e-3 of the largest component
        // so near-zero components are held to an absolute bound.
        let relative = error / numeric.abs().max(1e-3 * largest);
        assert!(
            relative < 1e-2,
            "{term}[{i}]: analytic {analytic:e}, numeric {numeric:e}"
        );
        worst = worst.max(relative);
    }
    eprintln!("{term}: value {expected:.6}, worst relative gradient error {worst:.2e}");
    worst
}

#[test]
fn esr_gradient_matches_finite_differences() {
    check_term("esr", &reference_esr);
}

#[test]
fn preemph_esr_gradient_matches_finite_differences() {
    check_term("esr_preemph", &|p, t| reference_esr_preemph(p, t, 0.85));
}

#[test]
fn a_weighted_esr_gradient_matches_finite_differences() {
    let h = a_weighting_impulse_response();
    check_term("esr_a_weighted", &|p, t| reference_esr_a_weighted(p, t, &h));
}

#[test]
fn mrstft_gradient_matches_finite_differences() {
    check_term("mrstft", &|p, t| reference_mrstft(p, t, &TEST_FFT_SIZES));
}

#[test]
fn dc_gradient_matches_finite_differences() {
    check_term("dc", &reference_dc);
}

fn all_terms() -> Objective {
    Objective {
        esr: 1.0,
        esr_preemph: 0.7,
        preemph_coefficient: 0.85,
        esr_a_weighted: 0.3,
        mrstft: 0.2,
        mrstft_fft_sizes: TEST_FFT_SIZES.to_vec(),
        dc: 0.5,
    }
}

#[test]
fn a_perfect_prediction_scores_zero_with_zero_gradient() {
    let (_, target) = signals(3, ROWS, SAMPLES_PER_ROW);
    let mut evaluator = ObjectiveEvaluator::new(&all_terms(), SAMPLE_RATE_HZ, SAMPLES_PER_ROW);
    let mut gradient = vec![f32::NAN; target.len()];
    let value = evaluator.evaluate(&target, &target, &mut gradient);
    assert_eq!(
        value,
        ObjectiveValue::default(),
        "every term of a perfect prediction is 0"
    );
    assert!(
        gradient.iter().all(|&g| g == 0.0),
        "gradient of a perfect prediction is 0"
    );
}

#[test]
fn total_and_gradient_are_the_weighted_sums_of_the_terms() {
    let (prediction, target) = signals(5, ROWS, SAMPLES_PER_ROW);
    let objective = all_terms();
    let mut gradient = vec![0.0; prediction.len()];
    let value = ObjectiveEvaluator::new(&objective, SAMPLE_RATE_HZ, SAMPLES_PER_ROW).evaluate(
        &prediction,
        &target,
        &mut gradient,
    );
    let terms = [
        ("esr", objective.esr, value.esr),
        ("esr_preemph", objective.esr_preemph, value.esr_preemph),
        ("esr_a_weighted", objective.esr_a_weighted, value.esr_a_weighted),
        ("mrstft", objective.mrstft, value.mrstft),
        ("dc", objective.dc, value.dc),
    ];
    let mut expected_total = 0.0;
    let mut expected_gradient = vec![0.0f32; prediction.len()];
    for (term, weight, term_value) in terms {
        let mut term_gradient = vec![0.0; prediction.len()];
        let alone = ObjectiveEvaluator::new(&only(term), SAMPLE_RATE_HZ, SAMPLES_PER_ROW).evaluate(
            &prediction,
            &target,
            &mut term_gradient,
        );
        assert!(term_value > 0.0, "{term} is positive off target");
        assert!((alone.total - term_value).abs() <= 1e-6 * term_value, "{term} alone");
        expected_total += weight * term_value;
        for (e, g) in expected_gradient.iter_mut().zip(&term_gradient) {
            *e += weight * g;
        }
    }
    assert!(
        (value.total - expected_total).abs() <= 1e-6 * expected_total,
        "total {value:?}"
    );
    let scale = expected_gradient.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    for (i, (g, e)) in gradient.iter().zip(&expected_gradient).enumerate() {
        assert!((g - e).abs() <= 1e-5 * scale, "gradient[{i}] {g} vs {e}");
    }
}

#[test]
fn waveform_terms_match_the_evaluation_metrics() {
    // One row, so pre-emphasis never crosses a row boundary and the metrics see the same data.
    // Both start at 0: the metric's filter starts from rest where the objective drops sample 0.
    let (mut prediction, mut target) = signals(9, 1, ROWS * SAMPLES_PER_ROW);
    (prediction[0], target[0]) = (0.0, 0.0);
    let c = 0.85;
    let mut objective = all_terms();
    objective.preemph_coefficient = c;
    let mut gradient = vec![0.0; prediction.len()];
    let value = ObjectiveEvaluator::new(&objective, SAMPLE_RATE_HZ, prediction.len()).evaluate(
        &prediction,
        &target,
        &mut gradient,
    );
    for (name, ours, theirs) in [
        ("esr", value.esr, crate::metrics::esr(&prediction, &target)),
        (
            "esr_preemph",
            value.esr_preemph,
            crate::metrics::esr_preemph(&prediction, &target, c),
        ),
    ] {
        assert!(
            (ours - theirs).abs() <= 1e-5 * theirs,
            "{name}: {ours} here, {theirs} in metrics"
        );
    }
}

#[test]
fn a_weighting_follows_the_standard_curve() {
    let curve = [
        (20.0, -50.5),
        (100.0, -19.1),
        (1000.0, 0.0),
        (2000.0, 1.2),
        (4000.0, 1.0),
        (10_000.0, -2.5),
    ];
    for (frequency_hz, table_db) in curve {
        let db = a_weighting_db(frequency_hz);
        assert!(
            (db - table_db).abs() < 0.15, // the standard table is rounded to 0.1 dB
            "analytic curve at {frequency_hz} Hz: {db} dB"
        );
    }
    for sample_rate_hz in [44_100.0, 48_000.0, 96_000.0] {
        let filter = AWeighting::new(sample_rate_hz);
        for frequency_hz in [
            10.0, 20.0, 31.5, 63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0,
        ] {
            let error_db = filter.magnitude_db(sample_rate_hz, frequency_hz) - a_weighting_db(frequency_hz as f64);
            let tolerance_db = if frequency_hz <= 4000.0 { 0.1 } else { 0.7 };
            assert!(
                error_db.abs() < tolerance_db,
                "{frequency_hz} Hz at {sample_rate_hz} Hz: {error_db:+.3} dB off the curve"
            );
        }
    }
}

#[test]
fn fast_log_matches_the_library_log() {
    let mut worst = 0.0f64;
    for i in 0..100_000 {
        // Ratios the STFT term meets: about 1e-6 to 1e6, log-spaced.
        let x = 10f64.powf(-6.0 + 12.0 * i as f64 / 100_000.0) as f32;
        worst = worst.max((ln_positive(x) as f64 - (x as f64).ln()).abs());
    }
    assert!(worst < 2e-6, "largest error {worst:e}");
}

#[test]
fn rows_shorter_than_every_fft_size_skip_the_stft_term() {
    let (prediction, target) = signals(13, 3, 48);
    let objective = Objective {
        mrstft: 1.0,
        ..only("esr")
    };
    let mut with_stft = vec![0.0; prediction.len()];
    let value = ObjectiveEvaluator::new(&objective, SAMPLE_RATE_HZ, 48).evaluate(&prediction, &target, &mut with_stft);
    let mut esr_only = vec![0.0; prediction.len()];
    ObjectiveEvaluator::new(&only("esr"), SAMPLE_RATE_HZ, 48).evaluate(&prediction, &target, &mut esr_only);
    assert_eq!(value.mrstft, 0.0);
    assert_eq!(with_stft, esr_only, "a skipped STFT term adds no gradient");
}

#[test]
fn batches_of_different_sizes_reuse_one_evaluator() {
    let (prediction, target) = signals(17, 3, SAMPLES_PER_ROW);
    let mut evaluator = ObjectiveEvaluator::new(&all_terms(), SAMPLE_RATE_HZ, SAMPLES_PER_ROW);
    let mut gradient = vec![0.0; prediction.len()];
    let one_row = evaluator.evaluate(
        &prediction[..SAMPLES_PER_ROW],
        &target[..SAMPLES_PER_ROW],
        &mut gradient[..SAMPLES_PER_ROW],
    );
    let three_rows = evaluator.evaluate(&prediction, &target, &mut gradient);
    let mut fresh_gradient = vec![0.0; prediction.len()];
    let fresh = ObjectiveEvaluator::new(&all_terms(), SAMPLE_RATE_HZ, SAMPLES_PER_ROW).evaluate(
        &prediction,
        &target,
        &mut fresh_gradient,
    );
    assert_eq!(three_rows, fresh, "state left by a smaller batch does not leak");
    assert_eq!(gradient, fresh_gradient);
    assert!(
        one_row.total > 0.0 && (one_row.total - fresh.total).abs() > 1e-6,
        "rows differ"
    );
}

#[test]
fn objectives_round_trip_through_json_and_fill_missing_fields() {
    assert_eq!(serde_json::to_string(&EffectKind::AmpCab).unwrap(), "\"ampcab\"");
    let kind: EffectKind = serde_json::from_str("\"denoiser\"").unwrap();
    assert_eq!(kind, EffectKind::Denoiser);
    for kind in [EffectKind::AmpCab, EffectKind::Compressor, EffectKind::Denoiser] {
        let objective = Objective::for_effect(kind);
        let json = serde_json::to_string(&objective).unwrap();
        assert_eq!(serde_json::from_str::<Objective>(&json).unwrap(), objective);
    }
    let partial: Objective = serde_json::from_str(r#"{"mrstft": 0.5}"#).unwrap();
    assert_eq!(
        partial,
        Objective {
            mrstft: 0.5,
            ..Objective::default()
        }
    );
}
