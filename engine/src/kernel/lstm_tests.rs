//! Golden tests: the streaming LSTM kernel against the candle model, whole-signal and in
//! blocks; reset, robustness and activation accuracy; an ignored per-block timing report.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};

use super::*;
use crate::kernel::simd::Isa;
use crate::model::{LstmModel, ModelConfig};

/// Largest block the golden tests build the kernel for, in samples.
const MAX_BLOCK_SAMPLES: usize = 512;
/// Golden tolerance: both sides are f32 and differ in summation order and in the kernel's
/// approximate exp (about 1.5e-7 relative), which the recurrence carries along; measured
/// errors are about 1.5e-7.
const GOLDEN_TOLERANCE: f32 = 1e-6;

/// A deterministic guitar-like test signal: decaying plucks plus a little noise, in ±0.9.
fn test_signal(samples: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut envelope = 0.0f32;
    (0..samples)
        .map(|n| {
            if n % 700 == 0 {
                envelope = rng.random_range(0.3..0.9);
            }
            envelope *= 0.997;
            let t = n as f32 / 48_000.0;
            let tone =
                (2.0 * std::f32::consts::PI * 196.0 * t).sin() + 0.4 * (2.0 * std::f32::consts::PI * 587.0 * t).sin();
            (envelope * tone / 1.4 + rng.random_range(-0.02..0.02)).clamp(-0.9, 0.9)
        })
        .collect()
}

/// The candle model's output for `audio` with constant `knobs`.
fn candle_output(config: &LstmConfig, weights: &Weights, audio: &[f32], knobs: &[f32]) -> Vec<f32> {
    let device = Device::Cpu;
    let tensors = weights.to_candle(&device).unwrap();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
    let model = LstmModel::new(config, vb).unwrap();
    let mut channels = audio.to_vec();
    for &k in knobs {
        channels.extend(std::iter::repeat_n(k, audio.len()));
    }
    let x = Tensor::from_vec(channels, (1, 1 + knobs.len(), audio.len()), &device).unwrap();
    model.forward(&x).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap()
}

/// The kernel's output for `audio` fed in blocks of `block` samples.
fn kernel_output(kernel: &mut LstmKernel, audio: &[f32], knobs: &[f32], block: usize) -> Vec<f32> {
    let mut out = vec![0.0; audio.len()];
    for (x, y) in audio.chunks(block).zip(out.chunks_mut(block)) {
        kernel.process(x, knobs, y);
    }
    out
}

fn max_abs_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Candle forward == kernel over the whole signal == kernel in blocks of 1, 17, 64 and the
/// maximum block size, on every instruction set and on the general path; returns the
/// largest error seen.
fn check_golden(config: &LstmConfig, weights: &Weights, knobs: &[f32]) -> f32 {
    let audio = test_signal(3000, 11);
    let reference = candle_output(config, weights, &audio, knobs);
    let rms = (reference.iter().map(|v| v * v).sum::<f32>() / reference.len() as f32).sqrt();
    assert!(
        rms > 0.05,
        "reference output is nearly silent (rms {rms}), the test would prove little"
    );
    let mut worst = 0.0f32;
    // Every instruction set's packed path (for one layer), then the general per-sample path.
    let mut kernels: Vec<(String, LstmKernel)> = Isa::available()
        .into_iter()
        .map(|isa| {
            let kernel = LstmKernel::with_isa(config, weights, MAX_BLOCK_SAMPLES, isa).unwrap();
            (format!("{isa:?}"), kernel)
        })
        .collect();
    let mut general = LstmKernel::new(config, weights, MAX_BLOCK_SAMPLES).unwrap();
    general.packed = None;
    kernels.push(("general path".to_string(), general));
    for (path, kernel) in &mut kernels {
        for block in [audio.len(), 1, 17, 64, MAX_BLOCK_SAMPLES] {
            kernel.reset(knobs);
            let streamed = kernel_output(kernel, &audio, knobs, block);
            let error = max_abs_error(&reference, &streamed);
            assert!(
                error <= GOLDEN_TOLERANCE,
                "{config:?} {path} block {block}: max abs error {error:e} > {GOLDEN_TOLERANCE:e}"
            );
            worst = worst.max(error);
        }
    }
    println!("golden {config:?} knobs {knobs:?}: max abs error {worst:e}");
    worst
}

fn random_weights(config: &LstmConfig, seed: u64, scale: f32) -> Weights {
    Weights::random(&ModelConfig::Lstm(config.clone()), seed, scale)
}

#[test]
fn golden_hidden_8_no_knobs() {
    let config = LstmConfig {
        num_knobs: 0,
        hidden_size: 8,
        num_layers: 1,
        skip: true,
    };
    check_golden(&config, &random_weights(&config, 1, 0.5), &[]);
}

#[test]
fn golden_hidden_16_three_knobs() {
    let config = LstmConfig {
        num_knobs: 3,
        hidden_size: 16,
        num_layers: 1,
        skip: true,
    };
    check_golden(&config, &random_weights(&config, 2, 0.4), &[0.2, 0.75, 1.0]);
}

#[test]
fn golden_hidden_40_one_knob() {
    let config = LstmConfig {
        num_knobs: 1,
        hidden_size: 40,
        num_layers: 1,
        skip: true,
    };
    check_golden(&config, &random_weights(&config, 4, 0.3), &[0.4]);
}

#[test]
fn golden_two_layers_no_skip() {
    let config = LstmConfig {
        num_knobs: 1,
        hidden_size: 12,
        num_layers: 2,
        skip: false,
    };
    check_golden(&config, &random_weights(&config, 3, 0.4), &[0.6]);
}

#[test]
fn golden_varmap_initialised_weights() {
    // The trainer's own initialisation, exported the way a profile is saved.
    let config = LstmConfig {
        num_knobs: 2,
        hidden_size: 40,
        num_layers: 1,
        skip: true,
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    LstmModel::new(&config, vb).unwrap();
    let weights = Weights::from_varmap(&varmap).unwrap();
    weights.validate(&ModelConfig::Lstm(config.clone())).unwrap();
    check_golden(&config, &weights, &[0.1, 0.9]);
}

#[test]
fn reset_then_rerun_is_identical() {
    let config = LstmConfig {
        num_knobs: 2,
        hidden_size: 16,
        num_layers: 2,
        skip: true,
    };
    let weights = random_weights(&config, 4, 0.5);
    let audio = test_signal(1000, 5);
    let knobs = [0.3, 0.8];
    let mut kernel = LstmKernel::new(&config, &weights, 64).unwrap();
    let first = kernel_output(&mut kernel, &audio, &knobs, 64);
    kernel.reset(&knobs);
    let second = kernel_output(&mut kernel, &audio, &knobs, 33);
    assert_eq!(first, second, "output after reset differs from a fresh kernel's");
}

#[test]
fn knobs_change_the_output_and_missing_knobs_count_as_zero() {
    let config = LstmConfig {
        num_knobs: 2,
        hidden_size: 8,
        num_layers: 1,
        skip: true,
    };
    let weights = random_weights(&config, 6, 0.5);
    let audio = test_signal(500, 7);
    let mut kernel = LstmKernel::new(&config, &weights, 64).unwrap();
    let zero = kernel_output(&mut kernel, &audio, &[0.0, 0.0], 64);
    kernel.reset(&[]);
    let missing = kernel_output(&mut kernel, &audio, &[], 64);
    kernel.reset(&[]);
    let turned = kernel_output(&mut kernel, &audio, &[1.0, 0.5], 64);
    assert_eq!(zero, missing, "missing knobs must behave as knobs at 0");
    let change = max_abs_error(&zero, &turned);
    assert!(change > 1e-3, "knobs changed the output by only {change:e}");
}

#[test]
fn non_finite_input_gives_finite_output_and_no_latched_state() {
    let config = LstmConfig {
        num_knobs: 1,
        hidden_size: 8,
        num_layers: 2,
        skip: true,
    };
    let weights = random_weights(&config, 8, 0.5);
    let mut kernel = LstmKernel::new(&config, &weights, 64).unwrap();
    let mut input = test_signal(256, 9);
    input[10] = f32::NAN;
    input[20] = f32::INFINITY;
    input[30] = f32::NEG_INFINITY;
    input[40] = f32::MAX;
    input[41] = -f32::MAX;
    let mut output = vec![0.0; input.len()];
    kernel.process(&input, &[f32::NAN], &mut output);
    assert!(
        output.iter().all(|v| v.is_finite()),
        "non-finite output for non-finite input"
    );
    // After the bad samples have passed, the kernel still responds to clean audio.
    let clean = test_signal(256, 9);
    let mut again = vec![0.0; clean.len()];
    kernel.process(&clean, &[0.5], &mut again);
    assert!(again.iter().all(|v| v.is_finite()));
    let spread = again.iter().fold(f32::MIN, |a, &b| a.max(b)) - again.iter().fold(f32::MAX, |a, &b| a.min(b));
    assert!(spread > 0.05, "output stuck after non-finite input (spread {spread})");
}

#[test]
fn wrong_shapes_and_missing_tensors_are_errors() {
    let config = LstmConfig {
        num_knobs: 1,
        hidden_size: 8,
        num_layers: 1,
        skip: true,
    };
    let mut weights = random_weights(&config, 10, 0.5);
    weights.insert("lstm.0.weight_hh", vec![32, 7], vec![0.0; 32 * 7]);
    let error = LstmKernel::new(&config, &weights, 64)
        .err()
        .expect("bad shape accepted")
        .to_string();
    assert!(error.contains("lstm.0.weight_hh"), "unhelpful error: {error}");
    let two_layers = LstmConfig {
        num_layers: 2,
        ..config.clone()
    };
    let error = LstmKernel::new(&two_layers, &random_weights(&config, 10, 0.5), 64)
        .err()
        .expect("missing layer accepted");
    assert!(
        error.to_string().contains("lstm.1.weight_ih"),
        "unhelpful error: {error}"
    );
}

#[test]
fn extreme_input_never_reaches_the_state_as_nan() {
    let config = LstmConfig {
        num_knobs: 0,
        hidden_size: 8,
        num_layers: 2,
        skip: true,
    };
    let weights = Weights::random(&ModelConfig::Lstm(config.clone()), 5, 0.5);
    let mut kernel = LstmKernel::new(&config, &weights, 64).unwrap();
    let input = [f32::MAX, -f32::MAX, f32::NAN, f32::INFINITY, 1e30, 0.1, 0.2, 0.3];
    let mut output = [0.0f32; 8];
    kernel.process(&input, &[], &mut output);
    assert!(output.iter().all(|v| v.is_finite()), "{output:?}");
    kernel.process(&[0.1; 8], &[], &mut output);
    assert!(
        output.iter().all(|v| v.is_finite() && v.abs() < 100.0),
        "state latched: {output:?}"
    );
}

/// Microseconds per 64-sample block for the presets' hidden sizes. Run with
/// `cargo test --release -p doppel-engine --lib lstm -- --ignored --nocapture`.
#[test]
#[ignore = "timing report, run in release"]
fn kernel_block_timing_report() {
    let audio = test_signal(48_000, 12);
    for hidden in [8, 12, 16, 40] {
        let config = LstmConfig {
            num_knobs: 2,
            hidden_size: hidden,
            num_layers: 1,
            skip: true,
        };
        let weights = random_weights(&config, 13, 0.3);
        let mut kernel = LstmKernel::new(&config, &weights, 64).unwrap();
        let mut out = vec![0.0; 64];
        let blocks: Vec<&[f32]> = audio.chunks_exact(64).collect();
        for block in &blocks {
            kernel.process(block, &[0.5, 0.5], &mut out);
        }
        let start = std::time::Instant::now();
        let rounds = 4;
        for _ in 0..rounds {
            for block in &blocks {
                kernel.process(block, &[0.5, 0.5], &mut out);
            }
        }
        let per_block_us = start.elapsed().as_secs_f64() * 1e6 / (rounds * blocks.len()) as f64;
        let realtime_share = per_block_us / (64.0 / 48_000.0 * 1e6);
        println!(
            "lstm kernel hidden {hidden:>2}: {per_block_us:.2} us per 64-sample block ({:.2}% of real time at 48 kHz)",
            realtime_share * 100.0
        );
        assert!(out.iter().all(|v| v.is_finite()));
    }
}
