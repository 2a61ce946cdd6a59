//! The hand-derived WaveNet pass against candle's forward and autograd (test thread).

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::*;
use crate::model::{LayerArrayConfig, Model, Size};
use crate::profile::Weights;

/// Deterministic noise-plus-tone test signal peaking around 0.7.
fn test_signal(samples: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..samples)
        .map(|i| 0.5 * (i as f32 * 0.031).sin() + 0.2 * rng.random_range(-1.0f32..1.0))
        .collect()
}

/// A small gated two-array config with knobs, kernel sizes 2 and 3.
fn gated_config() -> WavenetConfig {
    WavenetConfig {
        num_knobs: 2,
        layer_arrays: vec![
            LayerArrayConfig {
                input_size: 1,
                condition_size: 3,
                channels: 5,
                head_size: 3,
                kernel_size: 2,
                dilations: vec![1, 2, 4, 8],
                gated: true,
                head_bias: false,
            },
            LayerArrayConfig {
                input_size: 5,
                condition_size: 3,
                channels: 3,
                head_size: 1,
                kernel_size: 3,
                dilations: vec![1, 3, 9],
                gated: false,
                head_bias: true,
            },
        ],
        head_scale: 0.3,
    }
}

/// Forward outputs and gradients of `sum(prediction * d_output)` from candle, per tensor.
fn candle_pass(
    config: &WavenetConfig,
    weights: &Weights,
    inputs: &[Vec<f32>],
    knobs: &[Vec<f32>],
    d_output: &[Vec<f32>],
) -> (Vec<Vec<f32>>, Weights) {
    let device = Device::Cpu;
    let model_config = ModelConfig::Wavenet(config.clone());
    let varmap = VarMap::new();
    let model = Model::new(&model_config, VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
    {
        let data = varmap.data().lock().unwrap();
        for (name, tensor) in weights.to_candle(&device).unwrap() {
            data.get(&name).unwrap().set(&tensor).unwrap();
        }
    }
    let (batch, length) = (inputs.len(), inputs[0].len());
    let mut x = Vec::new();
    for (input, knobs) in inputs.iter().zip(knobs) {
        x.extend_from_slice(input);
        for &k in knobs {
            x.extend(std::iter::repeat_n(k, length));
        }
    }
    let x = Tensor::from_vec(x, (batch, 1 + config.num_knobs, length), &device).unwrap();
    let y = model.forward(&x).unwrap();
    let segment = y.dim(1).unwrap();
    let g = Tensor::from_vec(d_output.concat(), (batch, segment), &device).unwrap();
    let grads = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
    let outputs = (0..batch)
        .map(|b| y.get(b).unwrap().to_vec1::<f32>().unwrap())
        .collect();
    let mut gradient = Weights::default();
    let data = varmap.data().lock().unwrap();
    for (name, shape) in model_config.tensor_shapes() {
        let var = data.get(&name).unwrap();
        let count = shape.iter().product();
        let values = match grads.get(var.as_tensor()) {
            Some(t) => t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            None => vec![0.0; count],
        };
        gradient.insert(name, shape, values);
    }
    (outputs, gradient)
}

fn check_against_candle(config: &WavenetConfig, segment: usize) {
    let model_config = ModelConfig::Wavenet(config.clone());
    let weights = Weights::random(&model_config, 11, 0.4);
    let layout = ParamLayout::new(&model_config);
    let params = layout.flatten(&weights).unwrap();
    let pass = WavenetGrad::new(config, &layout);
    let length = pass.input_samples(segment);
    let inputs: Vec<Vec<f32>> = (0..2).map(|b| test_signal(length, 5 + b)).collect();
    let knobs: Vec<Vec<f32>> = (0..2)
        .map(|b| (0..config.num_knobs).map(|k| 0.2 + 0.3 * (b + k) as f32).collect())
        .collect();
    let d_output: Vec<Vec<f32>> = (0..2).map(|b| test_signal(segment, 50 + b)).collect();
    let (expected_outputs, expected_gradient) = candle_pass(config, &weights, &inputs, &knobs, &d_output);

    let mut ws = pass.workspace(segment);
    let mut gradient = vec![0.0; layout.len()];
    for b in 0..2 {
        ws.audio.copy_from_slice(&inputs[b]);
        ws.knobs.copy_from_slice(&knobs[b]);
        pass.forward(&params, &mut ws);
        let error = ws
            .output
            .iter()
            .zip(&expected_outputs[b])
            .map(|(a, e)| (a - e).abs())
            .fold(0.0f32, f32::max);
        assert!(error < 1e-5, "forward differs from candle by {error}");
        pass.backward(&params, &mut ws, &d_output[b], &mut gradient);
    }
    let expected = layout.flatten(&expected_gradient).unwrap();
    for (name, shape, offset) in layout.entries() {
        let count: usize = shape.iter().product();
        let (ours, theirs) = (&gradient[offset..offset + count], &expected[offset..offset + count]);
        let scale = theirs.iter().map(|v| v.abs()).fold(1e-3f32, f32::max);
        let error = ours
            .iter()
            .zip(theirs)
            .map(|(a, e)| (a - e).abs())
            .fold(0.0f32, f32::max);
        assert!(
            error <= 1e-4 * scale,
            "gradient of {name} differs from candle's autograd: max error {error}, scale {scale}"
        );
    }
}

#[test]
fn gated_config_with_knobs_matches_candle_autograd() {
    check_against_candle(&gated_config(), 48);
}

#[test]
fn nano_preset_matches_candle_autograd() {
    let config = match ModelConfig::preset("wavenet", Size::Nano, 1).unwrap() {
        ModelConfig::Wavenet(c) => c,
        _ => unreachable!(),
    };
    check_against_candle(&config, 64);
}
