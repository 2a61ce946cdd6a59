//! Golden tests: the streaming GRU kernel against the candle model, whole-signal and in
//! blocks of 1, 17, 64 and the maximum block size; reset and robustness.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};

use super::*;
use crate::model::{GruModel, ModelConfig};

/// Largest block the golden tests build the kernel for, in samples.
const MAX_BLOCK_SAMPLES: usize = 512;
/// Golden tolerance: both sides are f32 and differ in summation order and in the kernel's
/// approximate exp (below 2.5e-7 absolute per activation), which the recurrence carries.
const GOLDEN_TOLERANCE: f32 = 1e-6;

/// Decaying plucks of two partials plus a little noise, in ±0.9.
fn test_signal(samples: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut envelope = 0.0f32;
    (0..samples)
        .map(|n| {
            if n % 650 == 0 {
                envelope = rng.random_range(0.3..0.9);
            }
            envelope *= 0.997;
            let t = n as f32 / 48_000.0;
            let tone =
                (2.0 * std::f32::consts::PI * 147.0 * t).sin() + 0.5 * (2.0 * std::f32::consts::PI * 440.0 * t).sin();
            (envelope * tone / 1.5 + rng.random_range(-0.02..0.02)).clamp(-0.9, 0.9)
        })
        .collect()
}

fn candle_output(config: &GruConfig, weights: &Weights, audio: &[f32], knobs: &[f32]) -> Vec<f32> {
    let device = Device::Cpu;
    let vb = VarBuilder::from_tensors(weights.to_candle(&device).unwrap(), DType::F32, &device);
    let model = GruModel::new(config, vb).unwrap();
    let mut channels = audio.to_vec();
    for &k in knobs {
        channels.extend(std::iter::repeat_n(k, audio.len()));
    }
    let x = Tensor::from_vec(channels, (1, 1 + knobs.len(), audio.len()), &device).unwrap();
    model.forward(&x).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap()
}

fn kernel_output(kernel: &mut GruKernel, audio: &[f32], knobs: &[f32], block: usize) -> Vec<f32> {
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

fn check_golden(config: &GruConfig, seed: u64, knobs: &[f32]) -> f32 {
    let weights = Weights::random(&ModelConfig::Gru(config.clone()), seed, 0.5);
    let audio = test_signal(3000, seed + 100);
    let reference = candle_output(config, &weights, &audio, knobs);
    let rms = (reference.iter().map(|v| v * v).sum::<f32>() / reference.len() as f32).sqrt();
    assert!(rms > 0.05, "reference output is nearly silent (rms {rms})");
    let mut kernel = GruKernel::new(config, &weights, MAX_BLOCK_SAMPLES).unwrap();
    let mut worst = 0.0f32;
    for block in [audio.len(), 1, 17, 64, MAX_BLOCK_SAMPLES] {
        kernel.reset(knobs);
        let error = max_abs_error(&reference, &kernel_output(&mut kernel, &audio, knobs, block));
        assert!(
            error <= GOLDEN_TOLERANCE,
            "{config:?} block {block}: max abs error {error:e} > {GOLDEN_TOLERANCE:e}"
        );
        worst = worst.max(error);
    }
    println!("golden {config:?} knobs {knobs:?}: max abs error {worst:e}");
    worst
}

fn config(hidden_size: usize, num_layers: usize, num_knobs: usize, skip: bool) -> GruConfig {
    GruConfig {
        num_knobs,
        hidden_size,
        num_layers,
        skip,
    }
}

#[test]
fn gru_golden_hidden_8_no_knobs() {
    check_golden(&config(8, 1, 0, true), 1, &[]);
}

#[test]
fn gru_golden_hidden_16_two_knobs_no_skip() {
    check_golden(&config(16, 1, 2, false), 2, &[0.3, 0.8]);
}

#[test]
fn gru_golden_two_layers_one_knob() {
    check_golden(&config(12, 2, 1, true), 3, &[0.6]);
}

#[test]
fn gru_reset_restores_fresh_state_and_nan_input_stays_finite() {
    let config = config(8, 1, 1, true);
    let weights = Weights::random(&ModelConfig::Gru(config.clone()), 4, 0.5);
    let audio = test_signal(500, 9);
    let mut kernel = GruKernel::new(&config, &weights, 64).unwrap();
    let fresh = kernel_output(&mut kernel, &audio, &[0.5], 64);
    let mut garbage = audio.clone();
    garbage[10] = f32::NAN;
    garbage[20] = f32::INFINITY;
    garbage[30] = 1e30;
    let noisy = kernel_output(&mut kernel, &garbage, &[f32::NAN], 7);
    assert!(noisy.iter().all(|v| v.is_finite()), "non-finite output");
    kernel.reset(&[0.5]);
    let again = kernel_output(&mut kernel, &audio, &[0.5], 33);
    assert_eq!(fresh, again, "reset must restore the fresh state exactly");
}

#[test]
fn gru_presets_match_aidax_sizes_and_shapes_are_complete() {
    use crate::model::Size;
    let sizes: Vec<usize> = Size::ALL.iter().map(|&s| GruConfig::preset(s, 0).hidden_size).collect();
    assert_eq!(sizes, [8, 12, 16, 20]);
    let config = GruConfig::preset(Size::Lite, 2);
    let shapes = ModelConfig::Gru(config.clone()).tensor_shapes();
    assert_eq!(shapes.len(), 6);
    assert_eq!(shapes[0], ("gru.0.weight_ih".to_string(), vec![48, 3]));
    // The candle module creates exactly the listed tensors.
    let varmap = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    GruModel::new(&config, vb).unwrap();
    let created = Weights::from_varmap(&varmap).unwrap();
    created.validate(&ModelConfig::Gru(config)).unwrap();
}
