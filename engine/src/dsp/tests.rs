//! Tests for the DSP primitives: frequency responses measured by running sines.

use super::*;
use crate::metrics::sine_amplitude;

const SAMPLE_RATE_HZ: f32 = 48_000.0;

fn sine(frequency_hz: f32, samples: usize, amplitude: f32) -> Vec<f32> {
    (0..samples)
        .map(|n| {
            amplitude
                * (2.0 * std::f64::consts::PI * frequency_hz as f64 * n as f64 / SAMPLE_RATE_HZ as f64).sin() as f32
        })
        .collect()
}

/// Gain of `filter` at `frequency_hz`, measured on a sine after a settling second, in dB.
fn measured_gain_db(filter: &mut Biquad, frequency_hz: f32) -> f32 {
    filter.reset();
    let mut x = sine(frequency_hz, 96_000, 0.5);
    filter.process_in_place(&mut x);
    gain_to_db(sine_amplitude(&x[48_000..], SAMPLE_RATE_HZ, frequency_hz) / 0.5)
}

#[test]
fn biquads_match_cookbook_responses_within_half_a_db() {
    // (filter, frequency, expected gain in dB)
    let cases: Vec<(Biquad, f32, f32)> = vec![
        (
            Biquad::lowpass(SAMPLE_RATE_HZ, 1_000.0, std::f32::consts::FRAC_1_SQRT_2),
            100.0,
            0.0,
        ),
        (
            Biquad::lowpass(SAMPLE_RATE_HZ, 1_000.0, std::f32::consts::FRAC_1_SQRT_2),
            1_000.0,
            -3.01,
        ),
        // Bilinear warping adds 2.3 dB to the analog -40.4 dB a decade up.
        (
            Biquad::lowpass(SAMPLE_RATE_HZ, 1_000.0, std::f32::consts::FRAC_1_SQRT_2),
            10_000.0,
            -42.7,
        ),
        (
            Biquad::highpass(SAMPLE_RATE_HZ, 100.0, std::f32::consts::FRAC_1_SQRT_2),
            100.0,
            -3.01,
        ),
        (
            Biquad::highpass(SAMPLE_RATE_HZ, 100.0, std::f32::consts::FRAC_1_SQRT_2),
            10.0,
            -40.0,
        ),
        (
            Biquad::highpass(SAMPLE_RATE_HZ, 100.0, std::f32::consts::FRAC_1_SQRT_2),
            2_000.0,
            0.0,
        ),
        (Biquad::peaking(SAMPLE_RATE_HZ, 2_500.0, 1.0, 6.0), 2_500.0, 6.0),
        (Biquad::peaking(SAMPLE_RATE_HZ, 2_500.0, 1.0, -9.0), 2_500.0, -9.0),
        (Biquad::peaking(SAMPLE_RATE_HZ, 2_500.0, 1.0, 6.0), 100.0, 0.0),
        (Biquad::low_shelf(SAMPLE_RATE_HZ, 200.0, 0.707, 8.0), 20.0, 8.0),
        (Biquad::low_shelf(SAMPLE_RATE_HZ, 200.0, 0.707, 8.0), 200.0, 4.0),
        (Biquad::low_shelf(SAMPLE_RATE_HZ, 200.0, 0.707, 8.0), 5_000.0, 0.0),
        (Biquad::high_shelf(SAMPLE_RATE_HZ, 3_000.0, 0.707, -6.0), 15_000.0, -6.0),
        (Biquad::high_shelf(SAMPLE_RATE_HZ, 3_000.0, 0.707, -6.0), 3_000.0, -3.0),
        (Biquad::high_shelf(SAMPLE_RATE_HZ, 3_000.0, 0.707, -6.0), 100.0, 0.0),
    ];
    for (mut filter, frequency_hz, expected_db) in cases {
        let measured_db = measured_gain_db(&mut filter, frequency_hz);
        let analytic_db = filter.coefficients().magnitude_db(SAMPLE_RATE_HZ, frequency_hz);
        assert!(
            (measured_db - expected_db).abs() < 0.5,
            "{:?} at {frequency_hz} Hz: measured {measured_db:.2} dB, expected {expected_db} dB",
            filter.coefficients()
        );
        assert!(
            (measured_db - analytic_db).abs() < 0.05,
            "measured {measured_db} vs analytic {analytic_db}"
        );
    }
}

#[test]
fn one_pole_corners_are_3_db_down() {
    for kind in [OnePoleKind::Lowpass, OnePoleKind::Highpass] {
        let mut filter = OnePole::new(kind, SAMPLE_RATE_HZ, 500.0);
        let mut x = sine(500.0, 96_000, 0.5);
        for v in &mut x {
            *v = filter.process_sample(*v);
        }
        // The matched-pole design is within 0.1 dB of the analog -3 dB at 1 % of the rate.
        let gain_db = gain_to_db(sine_amplitude(&x[48_000..], SAMPLE_RATE_HZ, 500.0) / 0.5);
        assert!((gain_db + 3.0).abs() < 0.3, "{kind:?}: {gain_db} dB at the corner");
    }
}

#[test]
fn pre_emphasis_is_first_difference() {
    let mut filter = PreEmphasis::new(0.95);
    let mut x = vec![1.0, 0.0, 0.0, 2.0];
    filter.process_in_place(&mut x);
    assert_eq!(x, vec![1.0, -0.95, 0.0, 2.0]);
    filter.reset();
    assert_eq!(filter.process_sample(1.0), 1.0);
}

#[test]
fn oversampler_passes_1_khz_at_unity_with_stated_latency() {
    for factor in [2, 4] {
        let mut oversampler = Oversampler::new(factor);
        let x = sine(1_000.0, 48_000, 0.8);
        let mut y = vec![0.0; x.len()];
        oversampler.process(&x, &mut y, |v| v);
        let gain_db = gain_to_db(sine_amplitude(&y[4_800..], SAMPLE_RATE_HZ, 1_000.0) / 0.8);
        assert!(gain_db.abs() < 0.1, "{factor}x: {gain_db} dB at 1 kHz");
        // Linear phase: the output is the input delayed by the stated latency.
        let latency = oversampler.latency_samples();
        let worst = (4_800..x.len())
            .map(|n| (y[n] - x[n - latency]).abs())
            .fold(0.0, f32::max);
        assert!(
            worst < 2e-3,
            "{factor}x: worst deviation from a {latency}-sample delay is {worst}"
        );
    }
}

#[test]
fn oversampler_keeps_harmonics_from_aliasing() {
    // A cubic on a 15 kHz sine makes 45 kHz, which at 1x would fold to 3 kHz with the
    // amplitude of the third harmonic (0.5^3 / 12 = 0.0104). At 4x it lies below the high
    // Nyquist and the decimation filter must remove it.
    let mut oversampler = Oversampler::new(4);
    let x = sine(15_000.0, 48_000, 0.5);
    let mut y = vec![0.0; x.len()];
    oversampler.process(&x, &mut y, |v| v - v * v * v / 3.0);
    let alias = sine_amplitude(&y[4_800..], SAMPLE_RATE_HZ, 3_000.0);
    let fundamental = sine_amplitude(&y[4_800..], SAMPLE_RATE_HZ, 15_000.0);
    assert!(alias < 1e-4, "alias at 3 kHz: {alias}");
    assert!(fundamental > 0.45, "fundamental {fundamental}");
}

#[test]
fn helpers_clean_up_bad_values() {
    assert_eq!(sanitize(f32::NAN), 0.0);
    assert_eq!(sanitize(f32::INFINITY), 0.0);
    assert_eq!(sanitize(0.25), 0.25);
    assert_eq!(flush_denormal(1e-35), 0.0);
    assert_eq!(flush_denormal(1e-3), 1e-3);
    assert!((db_to_gain(-6.0206) - 0.5).abs() < 1e-4);
}
