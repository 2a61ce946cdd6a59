//! Latency estimation on plain delays and through the reference amp.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::reference::{run_reference_amp, REFERENCE_DEVICE_LATENCY_SAMPLES};
use crate::signal::{capture_signal, test_phrase};

fn noise(samples: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..samples).map(|_| rng.random_range(-0.5f32..0.5)).collect()
}

/// `x` delayed by `lag` samples (negative: advanced), same length, zero-filled.
fn shifted(x: &[f32], lag: i64) -> Vec<f32> {
    (0..x.len() as i64)
        .map(|n| {
            usize::try_from(n - lag)
                .ok()
                .and_then(|i| x.get(i))
                .copied()
                .unwrap_or(0.0)
        })
        .collect()
}

#[test]
fn finds_positive_zero_and_negative_lags_on_plain_delays() {
    let x = noise(20_000, 1);
    for lag in [0i64, 1, 25, 300, -13, -999, 1_000] {
        let alignment = estimate_latency(&x, &shifted(&x, lag), 1_000).unwrap();
        assert_eq!(alignment.latency_samples, lag);
        assert!(
            alignment.confidence > 10.0,
            "lag {lag}: confidence {}",
            alignment.confidence
        );
    }
    // A capture longer than one segment, with guitar material.
    let phrase = test_phrase(48_000, 3.0, 5);
    let alignment = estimate_latency(&phrase, &shifted(&phrase, 480), 2_400).unwrap();
    assert_eq!(alignment.latency_samples, 480);
}

#[test]
fn finds_the_reference_device_latency_through_the_amp() {
    let sr = 48_000;
    let input = capture_signal(sr, 12.0);
    for gain in [0.0, 5.0, 10.0] {
        let output = run_reference_amp(&input, sr, gain, 5.0);
        let alignment = estimate_latency(&input, &output, 4_800).unwrap();
        assert_eq!(
            alignment.latency_samples, REFERENCE_DEVICE_LATENCY_SAMPLES as i64,
            "gain {gain}: {alignment:?}"
        );
        assert!(alignment.confidence > 3.0, "gain {gain}: {alignment:?}");
    }
}

#[test]
fn silent_or_empty_signals_are_errors() {
    let x = noise(1_000, 2);
    let silent = vec![0.0; 1_000];
    let message = estimate_latency(&silent, &x, 100).unwrap_err().to_string();
    assert!(message.contains("input is silent"), "{message}");
    let message = estimate_latency(&x, &silent, 100).unwrap_err().to_string();
    assert!(message.contains("target is silent"), "{message}");
    assert!(estimate_latency(&[], &x, 100).is_err());
}

#[test]
fn align_pair_lines_samples_up_and_trims() {
    let input: Vec<f32> = (0..10).map(|v| v as f32).collect();
    let late = shifted(&input, 3);
    let (a, b) = align_pair(&input, &late, 3);
    assert_eq!(a, (0..7).map(|v| v as f32).collect::<Vec<_>>());
    assert_eq!(a, b);
    let early = shifted(&input, -2);
    let (a, b) = align_pair(&input, &early, -2);
    assert_eq!(a.len(), 8);
    assert_eq!(a, b[..8].to_vec());
    assert_eq!(align_pair(&input, &late, 0), (input.clone(), late.clone()));
    let (a, b) = align_pair(&input, &late, 50);
    assert!(a.is_empty() && b.is_empty());
}
