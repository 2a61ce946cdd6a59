//! Training tests on a small synthetic device (a soft clipper into a one-pole lowpass),
//! with models small enough to train in seconds.

use std::sync::atomic::Ordering;

use super::*;
use crate::dataset::CapturePair;
use crate::model::{LayerArrayConfig, LstmConfig, WavenetConfig};
use crate::profile::KnobDescriptor;

const SAMPLE_RATE: u32 = 16_000;

fn device(input: &[f32], drive: f32) -> Vec<f32> {
    let mut state = 0.0;
    input
        .iter()
        .map(|&x| {
            state += 0.3 * ((drive * x).tanh() - state);
            state
        })
        .collect()
}

fn input_signal(seconds: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = (seconds * SAMPLE_RATE as f32) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / SAMPLE_RATE as f32;
            let envelope = 0.2 + 0.6 * (0.5 + 0.5 * (t * 1.3).sin());
            envelope * (0.5 * (t * 2.0 * std::f32::consts::PI * 220.0).sin() + 0.3 * rng.random_range(-1.0f32..1.0))
        })
        .collect()
}

fn dataset(drives: &[f32]) -> Dataset {
    let pairs = drives
        .iter()
        .enumerate()
        .map(|(i, &drive)| {
            let input = input_signal(6.0, i as u64);
            let target = device(&input, drive);
            let knob_values = if drives.len() > 1 { vec![drive] } else { vec![] };
            CapturePair {
                input,
                target,
                knob_values,
                latency_samples: 0,
                right: None,
            }
        })
        .collect();
    let knobs = if drives.len() > 1 {
        vec![KnobDescriptor {
            name: "drive".into(),
            min: 1.0,
            max: 4.0,
            default: 2.0,
            unit: String::new(),
        }]
    } else {
        vec![]
    };
    Dataset {
        sample_rate: SAMPLE_RATE,
        knobs,
        pairs,
        notes: vec![],
        alignment_margin_samples: 0,
        stereo: false,
    }
}

fn tiny_wavenet(num_knobs: usize) -> ModelConfig {
    let array = |input_size, channels, head_size, dilations: &[usize], head_bias| LayerArrayConfig {
        input_size,
        condition_size: 1 + num_knobs,
        channels,
        head_size,
        kernel_size: 3,
        dilations: dilations.to_vec(),
        gated: false,
        head_bias,
    };
    ModelConfig::Wavenet(WavenetConfig {
        num_knobs,
        layer_arrays: vec![array(1, 6, 3, &[1, 2, 4, 8], false), array(6, 3, 1, &[16, 1, 2], true)],
        head_scale: 0.1,
    })
}

fn quick_config(model: ModelConfig, steps: u64) -> TrainConfig {
    let mut config = TrainConfig::new(model);
    config.max_steps = Some(steps);
    config.max_seconds = None;
    config.batch_size = 4;
    config.segment_samples = 1024;
    config.validate_every_steps = 20;
    config.learning_rate = 1e-2;
    // Runs of a few dozen steps: a gentle decay keeps the rate useful to the end.
    config.final_learning_rate_fraction = 0.1;
    config
}

fn all_finite(weights: &Weights) -> bool {
    weights.iter().all(|(_, t)| t.data.iter().all(|v| v.is_finite()))
}

#[test]
fn wavenet_training_lowers_validation_esr_and_is_reproducible() {
    let data = dataset(&[2.5]);
    let config = quick_config(tiny_wavenet(0), 60);
    let first = train(&config, &data, None, &mut |_| {}).unwrap();
    let initial_esr = first.summary.validation_curve[0].1;
    assert_eq!(first.summary.steps, 60);
    assert!(
        first.accuracy.esr < 0.3 * initial_esr,
        "validation ESR {} should fall below 30% of the untrained {initial_esr}",
        first.accuracy.esr
    );
    let second = train(&config, &data, None, &mut |_| {}).unwrap();
    // candle's multi-threaded reductions sum in a varying order, so runs agree to float
    // rounding rather than bit for bit.
    let max_difference = first
        .weights
        .iter()
        .zip(second.weights.iter())
        .flat_map(|((name_a, a), (name_b, b))| {
            assert_eq!((name_a, &a.shape), (name_b, &b.shape));
            a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0f32, f32::max);
    assert!(
        max_difference < 1e-4,
        "same seed and step budget differ by {max_difference} in some weight"
    );
    assert!(all_finite(&first.weights));
}

#[test]
fn conditioned_wavenet_trains_on_two_captures() {
    let data = dataset(&[1.0, 4.0]);
    let config = quick_config(tiny_wavenet(1), 60);
    let outcome = train(&config, &data, None, &mut |_| {}).unwrap();
    let initial_esr = outcome.summary.validation_curve[0].1;
    assert!(
        outcome.accuracy.esr < 0.5 * initial_esr,
        "ESR {} vs untrained {initial_esr}",
        outcome.accuracy.esr
    );
    outcome.weights.validate(&config.model).unwrap();
}

#[test]
fn lstm_training_lowers_validation_esr() {
    let data = dataset(&[2.5]);
    let model = ModelConfig::Lstm(LstmConfig {
        num_knobs: 0,
        hidden_size: 8,
        num_layers: 1,
        skip: true,
    });
    let mut config = quick_config(model, 40);
    config.segment_samples = 512;
    let outcome = train(&config, &data, None, &mut |_| {}).unwrap();
    let initial_esr = outcome.summary.validation_curve[0].1;
    assert!(
        outcome.accuracy.esr < 0.7 * initial_esr,
        "ESR {} vs untrained {initial_esr}",
        outcome.accuracy.esr
    );
}

#[test]
fn divergence_rolls_back_and_never_yields_non_finite_weights() {
    let data = dataset(&[2.5]);
    let mut config = quick_config(tiny_wavenet(0), 30);
    config.learning_rate = 1e4;
    config.gradient_clip = 1e9;
    let outcome = train(&config, &data, None, &mut |_| {}).unwrap();
    assert!(
        outcome.rollbacks > 0,
        "a learning rate of 1e4 should diverge and be rolled back"
    );
    assert!(all_finite(&outcome.weights));
    assert!(outcome.accuracy.esr.is_finite());
}

#[test]
fn stop_flag_ends_the_run_with_valid_weights() {
    let data = dataset(&[2.5]);
    let config = quick_config(tiny_wavenet(0), 1_000_000);
    let stop = AtomicBool::new(false);
    let mut steps_seen = 0;
    let outcome = train(&config, &data, Some(&stop), &mut |p| {
        steps_seen = p.step;
        if p.step >= 5 {
            stop.store(true, Ordering::Relaxed);
        }
    })
    .unwrap();
    assert_eq!(outcome.summary.steps, 5);
    assert_eq!(steps_seen, 5);
    outcome.weights.validate(&config.model).unwrap();
}

#[test]
fn thinning_keeps_the_ends_and_bounds_the_length() {
    let curve: Vec<(u64, f32)> = (0..1000).map(|i| (i, i as f32)).collect();
    let thinned = thin(&curve, 48);
    assert_eq!(thinned.len(), 48);
    assert_eq!(thinned[0], (0, 0.0));
    assert_eq!(*thinned.last().unwrap(), (999, 999.0));
}
