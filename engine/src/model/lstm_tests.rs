//! Tests of the candle LSTM: tensor names, shapes, a training sanity run, and ignored
//! reports of backprop stack limits and training-step times.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};

use super::*;

/// A `VarMap`-backed model whose variables are then overwritten with seeded values in the
/// same `±1/sqrt(H)` range (candle cannot seed its CPU generator, so the builder's own
/// initialisation differs run to run).
fn new_model(config: &LstmConfig) -> (VarMap, LstmModel) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = LstmModel::new(config, vb).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let bound = 1.0 / (config.hidden_size as f32).sqrt();
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let values: Vec<f32> = (0..var.elem_count()).map(|_| rng.random_range(-bound..bound)).collect();
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    drop(data);
    (varmap, model)
}

/// `[batch, 1 + knobs.len(), time]` noise-burst audio in ±0.8 with per-item knob values.
fn batch_input(batch: usize, time: usize, num_knobs: usize, seed: u64) -> (Vec<f32>, Tensor) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(batch * (1 + num_knobs) * time);
    for _ in 0..batch {
        let mut level = 0.0f32;
        for n in 0..time {
            if n % 64 == 0 {
                level = rng.random_range(0.05..0.8);
            }
            data.push(level * rng.random_range(-1.0f32..1.0));
        }
        for _ in 0..num_knobs {
            let knob = rng.random_range(0.0f32..1.0);
            data.extend(std::iter::repeat_n(knob, time));
        }
    }
    let tensor = Tensor::from_vec(data.clone(), (batch, 1 + num_knobs, time), &Device::Cpu).unwrap();
    (data, tensor)
}

#[test]
fn variables_are_exactly_the_configured_tensors() {
    let config = LstmConfig {
        num_knobs: 3,
        hidden_size: 12,
        num_layers: 2,
        skip: true,
    };
    let (varmap, _) = new_model(&config);
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<(String, Vec<usize>)> = data
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().dims().to_vec()))
        .collect();
    names.sort();
    let mut expected = config.tensor_shapes();
    expected.sort();
    assert_eq!(names, expected);
    let bound = 1.0 / 12f32.sqrt();
    for (name, var) in data.iter() {
        let values = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            values.iter().all(|v| v.abs() <= bound),
            "{name} initialised outside ±{bound}"
        );
    }
}

#[test]
fn forward_shape_skip_and_channel_check() {
    let config = LstmConfig {
        num_knobs: 1,
        hidden_size: 8,
        num_layers: 1,
        skip: true,
    };
    let (_, model) = new_model(&config);
    let (data, x) = batch_input(3, 50, 1, 1);
    let y = model.forward(&x).unwrap();
    assert_eq!(y.dims(), &[3, 50]);
    // With the head zeroed the output is exactly the input audio (skip connection).
    let zeros = |shape: &[usize]| Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
    let tensors = config
        .tensor_shapes()
        .into_iter()
        .map(|(name, shape)| (name, zeros(&shape)))
        .collect();
    let silent = LstmModel::new(&config, VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu)).unwrap();
    let y = silent.forward(&x).unwrap().to_vec2::<f32>().unwrap();
    for (b, row) in y.iter().enumerate() {
        assert_eq!(row.as_slice(), &data[b * 100..b * 100 + 50]);
    }
    let (_, wrong) = batch_input(1, 10, 2, 2);
    assert!(
        model.forward(&wrong).is_err(),
        "a 3-channel input was accepted by a 2-channel model"
    );
}

/// Soft clipper (drive set by the knob) into a one-pole lowpass: the toy device to learn.
fn toy_target(data: &[f32], batch: usize, time: usize) -> Tensor {
    let mut target = Vec::with_capacity(batch * time);
    for b in 0..batch {
        let audio = &data[b * 2 * time..b * 2 * time + time];
        let drive = 1.0 + 4.0 * data[b * 2 * time + time];
        let mut state = 0.0f32;
        for &x in audio {
            state += 0.3 * ((drive * x).tanh() - state);
            target.push(state);
        }
    }
    Tensor::from_vec(target, (batch, time), &Device::Cpu).unwrap()
}

#[test]
fn training_reduces_the_loss() {
    let config = LstmConfig {
        num_knobs: 1,
        hidden_size: 8,
        num_layers: 1,
        skip: true,
    };
    let (varmap, model) = new_model(&config);
    let (batch, time) = (8, 256);
    let (data, x) = batch_input(batch, time, 1, 3);
    let target = toy_target(&data, batch, time);
    let params = ParamsAdamW {
        lr: 2e-2,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut optimizer = AdamW::new(varmap.all_vars(), params).unwrap();
    let loss_of = |model: &LstmModel| {
        (model.forward(&x).unwrap() - &target)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap()
    };
    let initial = loss_of(&model).to_scalar::<f32>().unwrap();
    for _ in 0..30 {
        optimizer.backward_step(&loss_of(&model)).unwrap();
    }
    let last = loss_of(&model).to_scalar::<f32>().unwrap();
    println!(
        "lstm training sanity: loss {initial} -> {last} ({:.3}x)",
        last / initial
    );
    assert!(
        last.is_finite() && last < 0.5 * initial,
        "loss went from {initial} to {last}, expected below 50%"
    );
}

/// One forward + backward + AdamW step at `batch x time`; returns (forward s, total s).
fn training_step_seconds(hidden: usize, batch: usize, time: usize) -> (f64, f64) {
    let config = LstmConfig {
        num_knobs: 1,
        hidden_size: hidden,
        num_layers: 1,
        skip: true,
    };
    let (varmap, model) = new_model(&config);
    let (data, x) = batch_input(batch, time, 1, 4);
    let target = toy_target(&data, batch, time);
    let mut optimizer = AdamW::new(varmap.all_vars(), ParamsAdamW::default()).unwrap();
    let start = std::time::Instant::now();
    let loss = (model.forward(&x).unwrap() - &target)
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let forward = start.elapsed().as_secs_f64();
    optimizer.backward_step(&loss).unwrap();
    drop(loss);
    let total = start.elapsed().as_secs_f64();
    assert!(varmap
        .all_vars()
        .iter()
        .all(|v| v.as_tensor().sum_all().unwrap().to_scalar::<f32>().unwrap().is_finite()));
    (forward, total)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Backprop stack probe: one training step of `DOPPEL_LSTM_PROBE_STEPS` samples (default
/// 2048) at batch 16 on a thread with `DOPPEL_LSTM_PROBE_STACK_MIB` MiB of stack (default
/// 256). A stack overflow aborts the process, so run one size per process.
#[test]
#[ignore = "stack probe, configured through environment variables"]
fn backprop_stack_probe() {
    let steps = env_usize("DOPPEL_LSTM_PROBE_STEPS", 2048);
    let stack_mib = env_usize("DOPPEL_LSTM_PROBE_STACK_MIB", 256);
    let hidden = env_usize("DOPPEL_LSTM_PROBE_HIDDEN", 16);
    let handle = std::thread::Builder::new()
        .stack_size(stack_mib << 20)
        .spawn(move || training_step_seconds(hidden, 16, steps))
        .unwrap();
    let (forward, total) = handle.join().unwrap();
    println!("lstm probe: hidden {hidden}, 16 x {steps}, {stack_mib} MiB stack: ok, forward {forward:.3} s, step {total:.3} s");
}

/// Training-step times at batch 16 x 2048 for hidden 16 and 40. Run with
/// `cargo test --release -p doppel-engine --lib lstm -- --ignored --nocapture`.
#[test]
#[ignore = "timing report, run in release"]
fn training_step_timing_report() {
    let handle = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            for hidden in [16, 40] {
                training_step_seconds(hidden, 16, 256);
                let (forward, total) = training_step_seconds(hidden, 16, 2048);
                println!("lstm training step, hidden {hidden}, batch 16 x 2048: forward {forward:.3} s, forward+backward+AdamW {total:.3} s");
            }
        })
        .unwrap();
    handle.join().unwrap();
}
