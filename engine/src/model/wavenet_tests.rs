//! Tests of the candle WaveNet (test thread).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Optimizer, VarBuilder, VarMap};

use super::*;

#[test]
fn variables_match_tensor_shapes_and_output_is_valid_length() {
    let config = WavenetConfig::preset(Size::Nano, 2);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = WavenetModel::new(&config, vb).expect("model");
    let mut expected = config.tensor_shapes();
    expected.sort();
    let data = varmap.data().lock().expect("varmap");
    let mut got: Vec<(String, Vec<usize>)> = data.iter().map(|(n, v)| (n.clone(), v.dims().to_vec())).collect();
    drop(data);
    got.sort();
    assert_eq!(got, expected);
    let time = config.receptive_field() + 99;
    let x = Tensor::zeros((2, 3, time), DType::F32, &Device::Cpu).expect("input");
    let y = model.forward(&x).expect("forward");
    assert_eq!(y.dims(), &[2, 100]);
}

/// Deterministic uniform noise `[batch, 1 + num_knobs, time]`, knob channels constant per item.
fn noise_input(batch: usize, num_knobs: usize, time: usize, seed: u64) -> Tensor {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(batch * (1 + num_knobs) * time);
    for _ in 0..batch {
        data.extend((0..time).map(|_| rng.random_range(-0.5f32..0.5)));
        for _ in 0..num_knobs {
            let knob = rng.random_range(0.0f32..1.0);
            data.extend(std::iter::repeat_n(knob, time));
        }
    }
    Tensor::from_vec(data, (batch, 1 + num_knobs, time), &Device::Cpu).expect("input")
}

#[test]
fn adamw_reduces_loss_on_a_toy_target() {
    let config = WavenetConfig {
        num_knobs: 1,
        layer_arrays: vec![LayerArrayConfig {
            input_size: 1,
            condition_size: 2,
            channels: 4,
            head_size: 1,
            kernel_size: 2,
            dilations: vec![1, 2, 4],
            gated: false,
            head_bias: true,
        }],
        head_scale: 1.0,
    };
    let rf = config.receptive_field();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = WavenetModel::new(&config, vb).expect("model");
    let x = noise_input(4, 1, 512, 7);
    // Target: a knob-dependent soft clipper plus a one-sample echo, aligned to the output.
    let audio = x.narrow(1, 0, 1).and_then(|a| a.squeeze(1)).expect("audio");
    let knob = x.narrow(1, 1, 1).and_then(|a| a.squeeze(1)).expect("knob");
    let now = audio.narrow(1, rf - 1, 512 - rf + 1).expect("now");
    let before = audio.narrow(1, rf - 2, 512 - rf + 1).expect("before");
    let drive = knob
        .narrow(1, rf - 1, 512 - rf + 1)
        .and_then(|k| k.affine(2.0, 1.0))
        .expect("drive");
    let clipped = (now * drive)
        .and_then(|v| v.tanh())
        .and_then(|v| v * 0.5)
        .expect("clip");
    let target = (clipped + (before * 0.3).expect("echo")).expect("target");
    let mut optimizer = candle_nn::AdamW::new(
        varmap.all_vars(),
        candle_nn::ParamsAdamW {
            lr: 1e-2,
            ..Default::default()
        },
    )
    .expect("optimizer");
    let mut losses = Vec::new();
    for _ in 0..30 {
        let loss = candle_nn::loss::mse(&model.forward(&x).expect("forward"), &target).expect("loss");
        losses.push(loss.to_scalar::<f32>().expect("scalar"));
        optimizer.backward_step(&loss).expect("step");
    }
    let ratio = losses[29] / losses[0];
    eprintln!("toy target: loss {} -> {} (ratio {ratio:.3})", losses[0], losses[29]);
    assert!(
        ratio < 0.3,
        "30 AdamW steps only took the loss from {} to {} (ratio {ratio})",
        losses[0],
        losses[29]
    );
}

/// Candle forward and training-step times for batch 16 x 8192 (run with `--release --ignored`).
#[test]
#[ignore = "timing, run manually in release"]
fn candle_timing() {
    for size in [Size::Nano, Size::Standard] {
        let config = WavenetConfig::preset(size, 0);
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = WavenetModel::new(&config, vb).expect("model");
        let x = noise_input(16, 0, 8192, 3);
        let target =
            Tensor::zeros((16, 8192 - config.receptive_field() + 1), DType::F32, &Device::Cpu).expect("target");
        let mut optimizer = candle_nn::AdamW::new_lr(varmap.all_vars(), 1e-3).expect("optimizer");
        let _ = model.forward(&x).expect("warm-up");
        let runs = 3;
        let start = std::time::Instant::now();
        for _ in 0..runs {
            let _ = model.forward(&x).expect("forward");
        }
        let forward_ms = start.elapsed().as_secs_f64() * 1e3 / runs as f64;
        let start = std::time::Instant::now();
        for _ in 0..runs {
            let loss = candle_nn::loss::mse(&model.forward(&x).expect("forward"), &target).expect("loss");
            optimizer.backward_step(&loss).expect("step");
        }
        let step_ms = start.elapsed().as_secs_f64() * 1e3 / runs as f64;
        eprintln!(
            "{}: forward {forward_ms:.0} ms, training step {step_ms:.0} ms (batch 16 x 8192)",
            size.name()
        );
    }
}

/// Forward output and every gradient are bitwise identical from run to run (the custom
/// activation ops split work over threads by index, never by timing).
#[test]
fn forward_and_gradients_are_reproducible() {
    let config = WavenetConfig::preset(Size::Nano, 1);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = WavenetModel::new(&config, vb).expect("model");
    let x = noise_input(2, 1, 6000, 3);
    let run = || {
        let y = model.forward(&x).unwrap();
        let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let mut out = vec![y.flatten_all().unwrap().to_vec1::<f32>().unwrap()];
        for v in varmap.all_vars() {
            if let Some(t) = g.get(&v) {
                out.push(t.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            }
        }
        out
    };
    let first = run();
    // The output, plus a gradient for every variable but the unused last layer1x1 (2 tensors).
    assert_eq!(first.len(), 1 + varmap.all_vars().len() - 2);
    for attempt in 0..3 {
        let again = run();
        for (index, (a, b)) in first.iter().zip(&again).enumerate() {
            assert!(a == b, "attempt {attempt}: tensor {index} differs");
        }
    }
}
