//! Reference amp: distortion grows with gain, tone tilts the spectrum, output stays sane.

use super::*;
use crate::metrics::{sine_amplitude, thd};

const SR: u32 = 48_000;

/// 1 s of a 200 Hz sine (a whole number of periods) at `amplitude`.
fn sine_200(amplitude: f32) -> Vec<f32> {
    (0..SR as usize)
        .map(|n| amplitude * (std::f32::consts::TAU * 200.0 * n as f32 / SR as f32).sin())
        .collect()
}

fn amp_thd(gain: f32, amplitude: f32) -> f32 {
    let y = run_reference_amp(&sine_200(amplitude), SR, gain, 5.0);
    // Skip the first half second (filters and envelopes settle); 24 000 samples = 100 periods.
    thd(&y[24_000..], SR as f32, 200.0, 20)
}

#[test]
fn gain_turns_a_clean_amp_into_a_distortion() {
    let clean = amp_thd(0.0, 0.5);
    let mid = amp_thd(5.0, 0.5);
    let high = amp_thd(10.0, 0.5);
    eprintln!("THD at 200 Hz, 0.5 peak: gain 0 {clean:.4}, gain 5 {mid:.4}, gain 10 {high:.4}");
    assert!(clean < 0.03, "gain 0 THD {clean}");
    assert!(mid > 2.0 * clean, "gain 5 THD {mid} vs gain 0 {clean}");
    assert!(high > 0.3, "gain 10 THD {high}");
    assert!(high > 10.0 * clean);
    // Even at a quiet input level, gain 10 still distorts heavily.
    assert!(amp_thd(10.0, 0.05) > 0.2);
}

#[test]
fn tone_tilts_treble() {
    let input = crate::signal::capture_signal(SR, 4.0);
    let treble = |tone: f32| {
        let y = run_reference_amp(&input, SR, 2.0, tone);
        sine_amplitude(&y, SR as f32, 3_000.0) / sine_amplitude(&y, SR as f32, 300.0).max(1e-9)
    };
    let (dark, bright) = (treble(0.0), treble(10.0));
    assert!(bright > 3.0 * dark, "treble ratio dark {dark}, bright {bright}");
}

#[test]
fn output_is_finite_and_bounded_for_full_scale_and_bad_input() {
    let mut input = crate::signal::capture_signal(SR, 6.0);
    input.iter_mut().for_each(|v| *v /= 0.9);
    for gain in [0.0, 5.0, 10.0] {
        for tone in [0.0, 10.0] {
            let y = run_reference_amp(&input, SR, gain, tone);
            let peak = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(y.iter().all(|v| v.is_finite()));
            assert!(peak < 1.2 && peak > 0.1, "gain {gain} tone {tone}: peak {peak}");
        }
    }
    let mut amp = TubeAmp::new(SR as f32, 10.0, 5.0);
    let bad = [f32::NAN, f32::INFINITY, -f32::INFINITY, 1e30, 0.5];
    let mut out = [0.0; 5];
    amp.process(&bad, &mut out);
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn delay_reset_and_block_independence() {
    let input = sine_200(0.3);
    let whole = run_reference_amp(&input, SR, 7.0, 3.0);
    let mut amp = TubeAmp::new(SR as f32, 7.0, 3.0);
    let mut blocks = vec![0.0; input.len()];
    for (x, y) in input.chunks(37).zip(blocks.chunks_mut(37)) {
        amp.process(x, y);
    }
    amp.reset();
    let mut again = vec![0.0; input.len()];
    amp.process(&input, &mut again);
    assert_eq!(blocks, again);
    // The added delay: silence, then the amp's output delayed by the padding.
    let pad = REFERENCE_DEVICE_LATENCY_SAMPLES as f64 - amp.apparent_latency_samples();
    let offset = pad.floor() as usize;
    assert!(whole[..offset].iter().all(|v| *v == 0.0));
    let fraction = (pad - pad.floor()) as f32;
    for n in offset + 1..input.len() {
        let expected = (1.0 - fraction) * blocks[n - offset] + fraction * blocks[n - offset - 1];
        assert!((whole[n] - expected).abs() < 1e-6);
    }
    assert_eq!(
        reference_amp_knobs()
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
        ["gain", "tone"]
    );
}
