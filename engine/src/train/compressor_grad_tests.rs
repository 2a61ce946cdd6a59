//! The compressor's hand-derived pass against candle's autograd of the same recursion, and
//! against the streaming kernel (golden test). Test thread.

use candle_core::{Device, Tensor, Var};

use super::*;
use crate::kernel::StreamingModel;
use crate::model::compressor::{CONTROL_OFFSET, CONTROL_SCALE, MIN_KNEE_DB};
use crate::model::ModelConfig;
use crate::profile::Weights;

const NAMES: [&str; 5] = [
    "control.linear.weight",
    "control.hidden.weight",
    "control.hidden.bias",
    "control.out.weight",
    "control.out.bias",
];

fn config(sample_rate_hz: f32) -> CompressorConfig {
    config_with(sample_rate_hz, 2)
}

fn config_with(sample_rate_hz: f32, num_knobs: usize) -> CompressorConfig {
    CompressorConfig {
        num_knobs,
        hidden_size: 4,
        sample_rate_hz,
        anchors: Vec::new(),
    }
}

/// Silence (so both paths start from an empty detector), then a tone stepping between
/// levels that cross the threshold and the knee both ways, so attack, release and all three
/// regions of the curve are exercised.
fn stepped_tone(samples: usize, silence: usize) -> Vec<f32> {
    let levels = [0.02f32, 0.5, 0.9, 0.08, 0.3, 0.01, 0.7];
    let part = (samples - silence).div_ceil(levels.len());
    (0..samples)
        .map(|n| {
            if n < silence {
                return 0.0;
            }
            let level = levels[(n - silence) / part];
            level * (n as f32 * 0.37).sin()
        })
        .collect()
}

fn flat(config: &CompressorConfig, weights: &Weights) -> (ParamLayout, Vec<f32>) {
    let layout = ParamLayout::new(&ModelConfig::Compressor(config.clone()));
    let params = layout.flatten(weights).unwrap();
    (layout, params)
}

/// The same forward recursion in candle ops (one scalar tensor per state, branch decisions
/// taken on the values like the hand pass); returns `sum(prediction · d_output)`'s gradient
/// per tensor, in [`NAMES`] order.
fn candle_gradient(
    config: &CompressorConfig,
    weights: &Weights,
    audio: &[f32],
    knobs: &[f32],
    warmup: usize,
    d_output: &[f32],
) -> Vec<Vec<f32>> {
    let device = Device::Cpu;
    let shapes = config.tensor_shapes();
    let vars: Vec<Var> = NAMES
        .iter()
        .map(|name| {
            let shape = &shapes.iter().find(|(n, _)| n == name).unwrap().1;
            let data = weights.get(name, shape).unwrap().to_vec();
            let data: Vec<f64> = data.into_iter().map(f64::from).collect();
            Var::from_tensor(&Tensor::from_vec(data, shape.as_slice(), &device).unwrap()).unwrap()
        })
        .collect();
    let centred: Vec<f64> = knobs.iter().map(|&k| 2.0 * k as f64 - 1.0).collect();
    let centred = Tensor::from_vec(centred, (config.num_knobs, 1), &device).unwrap();
    let hidden = (vars[1].matmul(&centred).unwrap() + vars[2].unsqueeze(1).unwrap())
        .unwrap()
        .tanh()
        .unwrap();
    let raw = ((vars[3].matmul(&hidden).unwrap() + vars[0].matmul(&centred).unwrap()).unwrap()
        + vars[4].unsqueeze(1).unwrap())
    .unwrap()
    .flatten_all()
    .unwrap();
    let pre = |c: usize| ((raw.get(c).unwrap() * CONTROL_SCALE[c]).unwrap() + CONTROL_OFFSET[c]).unwrap();
    let softplus = |t: Tensor| (t.exp().unwrap() + 1.0).unwrap().log().unwrap();
    let coefficient = |t: Tensor| {
        // 1 - exp(-1000 / (ms · rate)), ms = exp(t).
        let ms = t.exp().unwrap();
        let k = 1000.0 / config.sample_rate_hz as f64;
        let decay = (ms.recip().unwrap() * -k).unwrap().exp().unwrap();
        decay.affine(-1.0, 1.0).unwrap()
    };
    let threshold = pre(0);
    let ratio = (softplus(pre(1)) + 1.0).unwrap();
    let knee = (softplus(pre(2)) + MIN_KNEE_DB).unwrap();
    let a_attack = coefficient(pre(3));
    let a_release = coefficient(pre(4));
    let makeup = pre(5);
    let a_detector = coefficient(pre(6));
    let value = |t: &Tensor| t.to_scalar::<f64>().unwrap();
    let slope = (ratio.recip().unwrap() - 1.0).unwrap();
    // The soft-knee curve, its region chosen on the values.
    let curve = |mean_square: &Tensor| {
        let level = ((mean_square + LEVEL_FLOOR).unwrap().log().unwrap() * (10.0 / LN10)).unwrap();
        let over = (&level - &threshold).unwrap();
        let (o, w) = (value(&over), value(&knee));
        if 2.0 * o <= -w {
            Tensor::new(0.0f64, &device).unwrap()
        } else if 2.0 * o < w {
            let u = (&over + (&knee * 0.5).unwrap()).unwrap();
            ((&slope * u.sqr().unwrap()).unwrap() / (&knee * 2.0).unwrap()).unwrap()
        } else {
            (&slope * &over).unwrap()
        }
    };
    // The start: the mean square of the first 10 ms (a constant) and the curve's gain for it.
    let head = audio.len().min((0.01 * config.sample_rate_hz) as usize).max(1);
    let start = audio[..head].iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / head as f64;
    let mut mean_square = Tensor::new(start, &device).unwrap();
    let mut gain = curve(&mean_square);
    let mut loss = Tensor::new(0.0f64, &device).unwrap();
    for (n, &x) in audio.iter().enumerate() {
        let x = x as f64;
        let pulled = (&a_detector * (x * x))
            .unwrap()
            .sub(&a_detector.mul(&mean_square).unwrap())
            .unwrap();
        mean_square = mean_square.add(&pulled).unwrap();
        let target = curve(&mean_square);
        let a = if value(&target) < value(&gain) {
            &a_attack
        } else {
            &a_release
        };
        let step = a.mul(&target.sub(&gain).unwrap()).unwrap();
        gain = gain.add(&step).unwrap();
        let y = (((&gain + &makeup).unwrap() * (LN10 / 20.0)).unwrap().exp().unwrap() * x).unwrap();
        if n >= warmup {
            loss = (loss + (y * d_output[n - warmup] as f64).unwrap()).unwrap();
        }
    }
    let grads = loss.backward().unwrap();
    vars.iter()
        .map(|v| {
            let g = grads.get(v.as_tensor()).unwrap();
            g.flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
                .into_iter()
                .map(|v| v as f32)
                .collect()
        })
        .collect()
}

#[test]
fn hand_gradient_matches_candle_autograd() {
    // From silence, and from the middle of loud audio (the starting gain is then the curve's
    // answer to the starting level, and its gradient counts too).
    for silence in [100, 0] {
        gradients_agree(silence);
    }
}

fn gradients_agree(silence: usize) {
    let config = config(8_000.0);
    let weights = Weights::random(&ModelConfig::Compressor(config.clone()), 11, 0.4);
    let (layout, params) = flat(&config, &weights);
    let (warmup, segment) = (150, 450);
    let mut audio = stepped_tone(warmup + segment, silence);
    if silence == 0 {
        // Start loud, well over the threshold.
        audio.rotate_left((warmup + segment) * 2 / 7);
    }
    let knobs = [0.3f32, 0.8];
    let d_output: Vec<f32> = (0..segment).map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4).collect();

    let pass = CompressorGrad::new(&config, &layout, warmup);
    let mut ws = pass.workspace(segment, 2);
    ws.audio.copy_from_slice(&audio);
    ws.knobs.copy_from_slice(&knobs);
    pass.forward(&params, &mut ws);
    let mut gradient = vec![0.0; layout.len()];
    pass.backward(&params, &ws, &d_output, &mut gradient);

    let expected = candle_gradient(&config, &weights, &audio, &knobs, warmup, &d_output);
    let mut compared = 0;
    for (name, want) in NAMES.iter().zip(&expected) {
        let offset = layout.offset(name);
        let got = &gradient[offset..offset + want.len()];
        let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-3 * scale,
                "{name}: hand {g}, candle {w} (scale {scale})"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, layout.len());
    assert!(
        gradient.iter().any(|g| g.abs() > 1e-3),
        "the test signal exercised nothing"
    );
}

#[test]
fn streaming_kernel_plays_what_training_predicts() {
    // Golden test: the hand pass's forward and the kernel, same weights, same input (from
    // silence, so both start from an empty detector), any block size.
    for num_knobs in [2, 0] {
        kernel_matches_training(num_knobs);
    }
}

fn kernel_matches_training(num_knobs: usize) {
    let mut config = config_with(48_000.0, num_knobs);
    // Knob 0 (when there is one) is a threshold in dB: the anchored path plays the same too.
    config.anchor_knobs(&[("threshold_db".into(), -40.0, 0.0), ("tone".into(), 0.0, 10.0)][..num_knobs]);
    let model = ModelConfig::Compressor(config.clone());
    let weights = Weights::random(&model, 5, 0.5);
    let (layout, params) = flat(&config, &weights);
    let samples = 48_000;
    let audio = stepped_tone(samples, 600);
    let knobs = &[0.7f32, 0.2][..num_knobs];
    let pass = CompressorGrad::new(&config, &layout, 0);
    let mut ws = pass.workspace(samples, num_knobs);
    ws.audio.copy_from_slice(&audio);
    ws.knobs.copy_from_slice(knobs);
    pass.forward(&params, &mut ws);

    for block in [1usize, 64, 1000] {
        let mut kernel = StreamingModel::new(&model, &weights, block).unwrap();
        kernel.reset(knobs);
        let mut output = vec![0.0; samples];
        for (input, out) in audio.chunks(block).zip(output.chunks_mut(block)) {
            kernel.process(input, knobs, out);
        }
        let worst = output
            .iter()
            .zip(&ws.output)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-6,
            "{num_knobs} knobs, block {block}: kernel and training differ by {worst}"
        );
    }
    // And the model compresses: the loud steps come out quieter relative to the quiet ones.
    let peak = |range: std::ops::Range<usize>| ws.output[range].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let part = (samples - 600) / 7;
    let quiet = peak(600 + 5 * part + part / 2..600 + 6 * part);
    let loud = peak(600 + 2 * part + part / 2..600 + 3 * part);
    assert!(loud / quiet < 0.9 / 0.01, "no gain reduction: {loud} vs {quiet}");
}
