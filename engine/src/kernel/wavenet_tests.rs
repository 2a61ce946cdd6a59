//! Golden tests: the streaming WaveNet kernel against the candle model (test thread).

use candle_core::{DType, Device, Module, Tensor};

use super::WavenetKernel;
use crate::kernel::simd::Isa;
use crate::model::{LayerArrayConfig, ModelConfig, Size, WavenetConfig, WavenetModel};
use crate::profile::Weights;

/// Largest difference allowed between candle and the kernel. Both sum the same f32 products
/// in different orders (candle's gemm vs the kernel's tiles) and the kernel's tanh differs
/// from libm's by < 1e-7; over ~30 layers that leaves errors around 1e-7..1e-6.
const GOLDEN_TOLERANCE: f32 = 1e-5;
/// Random weight range: large enough that the activations leave tanh's linear part, small
/// enough that they do not all saturate.
const WEIGHT_SCALE: f32 = 0.3;

/// Deterministic guitar-like test signal: decaying plucked partials plus a little noise,
/// peaking around 0.6.
pub(crate) fn test_signal(samples: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..samples)
        .map(|i| {
            let t = i as f32 / 48_000.0;
            let pluck = (-3.0 * (t % 0.25)).exp();
            let tone = 0.35 * (2.0 * std::f32::consts::PI * 110.0 * t).sin()
                + 0.15 * (2.0 * std::f32::consts::PI * 331.0 * t).sin()
                + 0.08 * (2.0 * std::f32::consts::PI * 1_250.0 * t).sin();
            pluck * tone + 0.02 * rng.random_range(-1.0f32..1.0)
        })
        .collect()
}

/// The candle model's output for `signal` preceded by `receptive_field - 1` zeros, with
/// the knob channels held at `knobs`.
pub(crate) fn candle_reference(config: &WavenetConfig, weights: &Weights, signal: &[f32], knobs: &[f32]) -> Vec<f32> {
    let device = Device::Cpu;
    let vb = candle_nn::VarBuilder::from_tensors(weights.to_candle(&device).expect("tensors"), DType::F32, &device);
    let model = WavenetModel::new(config, vb).expect("model");
    let padded_len = config.receptive_field() - 1 + signal.len();
    let mut input = vec![0.0f32; (1 + config.num_knobs) * padded_len];
    input[config.receptive_field() - 1..padded_len].copy_from_slice(signal);
    for (k, &value) in knobs.iter().enumerate() {
        input[(1 + k) * padded_len..(2 + k) * padded_len].fill(value);
    }
    let x = Tensor::from_vec(input, (1, 1 + config.num_knobs, padded_len), &device).expect("input");
    let y = model.forward(&x).expect("forward");
    assert_eq!(y.dims(), &[1, signal.len()]);
    y.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("output")
}

/// Runs a kernel built with `max_block_samples`, reset with `knobs`, over `signal` in calls
/// of `call_samples`.
fn run_kernel(
    config: &WavenetConfig,
    weights: &Weights,
    signal: &[f32],
    knobs: &[f32],
    max_block_samples: usize,
    call_samples: usize,
    isa: Isa,
) -> Vec<f32> {
    let mut kernel = WavenetKernel::new(config, weights, max_block_samples).expect("kernel");
    kernel.set_isa(isa);
    if knobs.iter().any(|&k| k != 0.0) {
        kernel.reset(knobs);
    }
    let mut output = vec![0.0; signal.len()];
    for (block_in, block_out) in signal.chunks(call_samples).zip(output.chunks_mut(call_samples)) {
        kernel.process(block_in, knobs, block_out);
    }
    output
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn rms(a: &[f32]) -> f32 {
    (a.iter().map(|x| x * x).sum::<f32>() / a.len() as f32).sqrt()
}

/// Candle == kernel over the whole signal == kernel in blocks of 1, 17, 64 and a 512
/// maximum block (fed whole and split internally), on every instruction set the CPU has;
/// all runs on one instruction set agree exactly.
fn assert_golden(name: &str, config: &WavenetConfig, knobs: &[f32], seed: u64) {
    let weights = Weights::random(&ModelConfig::Wavenet(config.clone()), seed, WEIGHT_SCALE);
    let signal = test_signal(3_000, seed + 1);
    let reference = candle_reference(config, &weights, &signal, knobs);
    let reference_rms = rms(&reference);
    assert!(
        reference_rms > 1e-2,
        "{name}: reference output is nearly silent (rms {reference_rms})"
    );
    let mut portable = Vec::new();
    for isa in Isa::available() {
        let whole = run_kernel(config, &weights, &signal, knobs, signal.len(), signal.len(), isa);
        let error = max_abs_diff(&whole, &reference);
        eprintln!("{name} ({isa:?}): max abs error {error:e}, output rms {reference_rms:.4}");
        assert!(
            error <= GOLDEN_TOLERANCE,
            "{name} ({isa:?}): kernel vs candle max abs error {error:e} (rms {reference_rms})"
        );
        if isa == Isa::Portable {
            portable = whole.clone();
        }
        // The SIMD paths differ from the portable one by rounding only (fused multiply-adds).
        let versus_portable = max_abs_diff(&whole, &portable);
        assert!(
            versus_portable <= GOLDEN_TOLERANCE,
            "{name} ({isa:?}): differs from the portable path by {versus_portable:e}"
        );
        for (max_block, call) in [(1, 1), (17, 17), (64, 64), (512, signal.len()), (64, 100)] {
            let blocked = run_kernel(config, &weights, &signal, knobs, max_block, call, isa);
            let diff = max_abs_diff(&blocked, &whole);
            assert!(
                diff == 0.0,
                "{name} ({isa:?}): max block {max_block}, calls of {call}: differs from the whole-signal run by {diff:e}"
            );
        }
    }
}

/// A small gated config: two arrays, kernel sizes 2 and 3, head bias on and off, channel
/// counts that are not multiples of the kernel's row groups.
fn small_gated_config() -> WavenetConfig {
    WavenetConfig {
        num_knobs: 1,
        layer_arrays: vec![
            LayerArrayConfig {
                input_size: 1,
                condition_size: 2,
                channels: 3,
                head_size: 5,
                kernel_size: 2,
                dilations: vec![1, 2, 4, 8],
                gated: true,
                head_bias: true,
            },
            LayerArrayConfig {
                input_size: 3,
                condition_size: 2,
                channels: 5,
                head_size: 1,
                kernel_size: 3,
                dilations: vec![1, 3, 9],
                gated: true,
                head_bias: false,
            },
        ],
        head_scale: 0.5,
    }
}

/// The nano preset with head scale 1 instead of 0.02: with random weights the preset's
/// scale leaves an output so small that an absolute tolerance would prove little.
fn nano_unscaled(num_knobs: usize) -> WavenetConfig {
    WavenetConfig {
        head_scale: 1.0,
        ..WavenetConfig::preset(Size::Nano, num_knobs)
    }
}

#[test]
fn nano_without_knobs_matches_candle_in_any_blocking() {
    assert_golden("nano, 0 knobs", &nano_unscaled(0), &[], 11);
}

#[test]
fn nano_with_two_knobs_matches_candle_in_any_blocking() {
    assert_golden("nano, 2 knobs", &nano_unscaled(2), &[0.3, 0.8], 12);
}

/// Lite's 12 and 6 channels exercise several four-row groups plus a two-row remainder.
#[test]
fn lite_with_one_knob_matches_candle_in_any_blocking() {
    let config = WavenetConfig {
        head_scale: 1.0,
        ..WavenetConfig::preset(Size::Lite, 1)
    };
    assert_golden("lite, 1 knob", &config, &[0.6], 13);
}

#[test]
fn small_gated_matches_candle_in_any_blocking() {
    let mut config = small_gated_config();
    assert_golden("gated, head bias on/off", &config, &[0.7], 13);
    config.layer_arrays[0].head_bias = false;
    config.layer_arrays[1].head_bias = true;
    assert_golden("gated, head bias off/on", &config, &[0.7], 14);
}

#[test]
fn reset_then_rerun_gives_identical_output() {
    let config = small_gated_config();
    let weights = Weights::random(&ModelConfig::Wavenet(config.clone()), 21, WEIGHT_SCALE);
    let signal = test_signal(1_000, 22);
    let mut kernel = WavenetKernel::new(&config, &weights, 64).expect("kernel");
    let mut first = vec![0.0; signal.len()];
    kernel.reset(&[0.4]);
    kernel.process(&signal, &[0.4], &mut first);
    // Disturb the state with other knobs and audio, then reset to the same knobs.
    let mut scratch = vec![0.0; 333];
    kernel.process(&signal[..333], &[0.9], &mut scratch);
    kernel.reset(&[0.4]);
    let mut second = vec![0.0; signal.len()];
    kernel.process(&signal, &[0.4], &mut second);
    assert_eq!(max_abs_diff(&first, &second), 0.0, "output after reset differs");
    // And a fresh kernel is in the reset state for knobs at 0.
    let mut fresh = WavenetKernel::new(&config, &weights, 64).expect("kernel");
    let mut fresh_out = vec![0.0; signal.len()];
    fresh.process(&signal, &[], &mut fresh_out);
    kernel.reset(&[0.0]);
    kernel.process(&signal, &[0.0], &mut second);
    assert_eq!(
        max_abs_diff(&fresh_out, &second),
        0.0,
        "fresh kernel differs from reset(0)"
    );
}

#[test]
fn warm_reset_equals_a_full_reset_with_the_stored_knobs() {
    let config = small_gated_config();
    let weights = Weights::random(&ModelConfig::Wavenet(config.clone()), 23, WEIGHT_SCALE);
    let signal = test_signal(1_500, 24);
    let mut kernel = WavenetKernel::new(&config, &weights, 64).expect("kernel");
    // Without a stored state, a warm reset is a full one.
    kernel.reset_warm(&[0.3]);
    let mut full = vec![0.0; signal.len()];
    kernel.process(&signal, &[0.3], &mut full);
    kernel.store_warm_state(&[0.3]);
    for round in 0..2 {
        // Disturb the state (a long block forces history rewinds), then return to it.
        let mut scratch = vec![0.0; 1_111];
        kernel.process(&test_signal(1_111, 25 + round), &[0.8], &mut scratch);
        kernel.reset_warm(&[0.3]);
        let mut warm = vec![0.0; signal.len()];
        kernel.process(&signal, &[0.3], &mut warm);
        assert_eq!(max_abs_diff(&full, &warm), 0.0, "round {round}: warm reset differs");
    }
    // With other knobs the history is the stored knobs' idle state: once the receptive field
    // has passed the output is the full reset's for those knobs.
    let rf = config.receptive_field();
    let long = test_signal(rf + 600, 26);
    let mut exact = WavenetKernel::new(&config, &weights, 64).expect("kernel");
    exact.reset(&[0.9]);
    let mut expected = vec![0.0; long.len()];
    exact.process(&long, &[0.9], &mut expected);
    kernel.reset_warm(&[0.9]);
    let mut got = vec![0.0; long.len()];
    kernel.process(&long, &[0.9], &mut got);
    assert_eq!(
        max_abs_diff(&expected[rf..], &got[rf..]),
        0.0,
        "other knobs never converge"
    );
}

#[test]
fn non_finite_input_is_treated_as_silence() {
    let config = WavenetConfig::preset(Size::Nano, 1);
    let weights = Weights::random(&ModelConfig::Wavenet(config.clone()), 31, WEIGHT_SCALE);
    let mut signal = test_signal(500, 32);
    let mut cleaned = signal.clone();
    for (i, bad) in [(10, f32::NAN), (100, f32::INFINITY), (101, f32::NEG_INFINITY)] {
        signal[i] = bad;
        cleaned[i] = 0.0;
    }
    let expected = run_kernel(&config, &weights, &cleaned, &[0.5], 64, 64, Isa::detect());
    let got = run_kernel(&config, &weights, &signal, &[0.5, f32::NAN], 64, 64, Isa::detect());
    assert!(got.iter().all(|v| v.is_finite()), "non-finite output");
    assert_eq!(max_abs_diff(&got, &expected), 0.0, "NaN/Inf input not treated as 0");
}

#[test]
fn wrong_weights_are_a_clear_error() {
    let config = WavenetConfig::preset(Size::Nano, 0);
    let other = WavenetConfig::preset(Size::Feather, 0);
    let weights = Weights::random(&ModelConfig::Wavenet(other), 1, WEIGHT_SCALE);
    let error = WavenetKernel::new(&config, &weights, 64)
        .err()
        .expect("shape mismatch must fail");
    assert!(
        format!("{error:#}").contains("layer_arrays.0.rechannel.weight"),
        "unexpected error: {error:#}"
    );
}

/// Kernel speed per 64-sample block for every preset (run with `--release --ignored`).
#[test]
#[ignore = "timing, run manually in release"]
fn kernel_block_timing() {
    const BLOCK: usize = 64;
    for size in Size::ALL {
        let config = WavenetConfig::preset(size, 0);
        let weights = Weights::random(&ModelConfig::Wavenet(config.clone()), 5, WEIGHT_SCALE);
        let mut kernel = WavenetKernel::new(&config, &weights, BLOCK).expect("kernel");
        let signal = test_signal(48_000, 6);
        let mut out = vec![0.0; BLOCK];
        let blocks = signal.len() / BLOCK;
        let start = std::time::Instant::now();
        for _ in 0..3 {
            for block in signal.chunks_exact(BLOCK) {
                kernel.process(block, &[], &mut out);
            }
        }
        let per_block_us = start.elapsed().as_secs_f64() * 1e6 / (3 * blocks) as f64;
        let budget_us = BLOCK as f64 / 48_000.0 * 1e6;
        eprintln!(
            "{}: {per_block_us:.1} us per {BLOCK}-sample block ({:.1}x real time at 48 kHz)",
            size.name(),
            budget_us / per_block_us
        );
        assert!(out.iter().all(|v| v.is_finite()));
    }
}
