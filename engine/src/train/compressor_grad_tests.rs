//! The compressor's hand-derived pass against candle's autograd of the same recursion, and
//! against the streaming kernel (golden test). Test thread.

use candle_core::{Device, Tensor, Var};

use super::*;
use crate::kernel::StreamingModel;
use crate::model::compressor::{CONTROL_OFFSET, CONTROL_SCALE, LINK_TENSOR, MIN_KNEE_DB};
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
        channels: 1,
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
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..NAMES.len()], NAMES);
    let vars: Vec<Var> = names
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
    // Planar channels; the detector's input is x² (mono) or the linked blend of both
    // channels' squares, its share sigmoid(link) (a tensor, so the link learns too).
    let channels = config.channels;
    let length = audio.len() / channels;
    let share = (channels == 2).then(|| {
        let link = vars[5].flatten_all().unwrap().get(0).unwrap();
        (link.neg().unwrap().exp().unwrap() + 1.0).unwrap().recip().unwrap()
    });
    let detected: Vec<Tensor> = (0..length)
        .map(|n| {
            if channels == 1 {
                return Tensor::new((audio[n] as f64).powi(2), &device).unwrap();
            }
            let (l2, r2) = ((audio[n] as f64).powi(2), (audio[length + n] as f64).powi(2));
            let (mean, spread) = (0.5 * (l2 + r2), l2.max(r2) - 0.5 * (l2 + r2));
            ((share.as_ref().unwrap() * spread).unwrap() + mean).unwrap()
        })
        .collect();
    // The start: the mean of the first 10 ms of the detector's input and the curve's gain.
    let head = length.min((0.01 * config.sample_rate_hz) as usize).max(1);
    let start = Tensor::stack(&detected[..head], 0).unwrap().mean_all().unwrap();
    let mut mean_square = start;
    let mut gain = curve(&mean_square);
    let mut loss = Tensor::new(0.0f64, &device).unwrap();
    let segment = length - warmup;
    for (n, d) in detected.iter().enumerate() {
        let pulled = (&a_detector * d)
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
        let linear = ((&gain + &makeup).unwrap() * (LN10 / 20.0)).unwrap().exp().unwrap();
        if n >= warmup {
            for c in 0..channels {
                let y = (&linear * audio[c * length + n] as f64).unwrap();
                loss = (loss + (y * d_output[c * segment + n - warmup] as f64).unwrap()).unwrap();
            }
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
        gradients_agree(silence, 1);
    }
}

#[test]
fn linked_stereo_gradient_matches_candle_autograd() {
    // Two different channels (the louder one changes), the link's weight included.
    for silence in [100, 0] {
        gradients_agree(silence, 2);
    }
}

/// Planar test audio for `channels`: the stepped tone, and for a second channel the same
/// steps in another order and pitch, so either channel is sometimes the louder.
fn test_audio(samples: usize, silence: usize, channels: usize) -> Vec<f32> {
    let mut audio = stepped_tone(samples, silence);
    if channels == 2 {
        let mut right = stepped_tone(samples, silence);
        right.rotate_left((samples - silence) * 3 / 7);
        right[..silence].fill(0.0);
        audio.extend(
            right
                .iter()
                .enumerate()
                .map(|(n, v)| v * (0.5 + 0.5 * (n as f32 * 0.01).cos())),
        );
    }
    audio
}

fn gradients_agree(silence: usize, channels: usize) {
    let mut config = config(8_000.0);
    config.channels = channels;
    let weights = Weights::random(&ModelConfig::Compressor(config.clone()), 11, 0.4);
    let (layout, params) = flat(&config, &weights);
    let (warmup, segment) = (150, 450);
    let mut audio = test_audio(warmup + segment, silence, channels);
    if silence == 0 {
        // Start loud, well over the threshold.
        for channel in audio.chunks_mut(warmup + segment) {
            channel.rotate_left((warmup + segment) * 2 / 7);
        }
    }
    let knobs = [0.3f32, 0.8];
    let d_output: Vec<f32> = (0..channels * segment)
        .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4)
        .collect();

    let pass = CompressorGrad::new(&config, &layout, warmup);
    let mut ws = pass.workspace(segment, 2);
    ws.audio.copy_from_slice(&audio);
    ws.knobs.copy_from_slice(&knobs);
    pass.forward(&params, &mut ws);
    let mut gradient = vec![0.0; layout.len()];
    pass.backward(&params, &ws, &d_output, &mut gradient);

    let expected = candle_gradient(&config, &weights, &audio, &knobs, warmup, &d_output);
    let mut compared = 0;
    for ((name, _), want) in config.tensor_shapes().iter().zip(&expected) {
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
    if channels == 2 {
        let link = gradient[layout.offset(LINK_TENSOR)];
        assert!(link.abs() > 1e-6, "the link's gradient vanished: {link}");
    }
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

#[test]
fn linked_kernel_plays_what_training_predicts() {
    // Golden test for the stereo link: both channels from one detector, any block size, and
    // the side chain alone (the gain the plugin applies to each channel) agrees too.
    let mut config = config_with(48_000.0, 2);
    config.channels = 2;
    config.anchor_knobs(&[("threshold_db".into(), -40.0, 0.0), ("ratio".into(), 1.0, 20.0)]);
    let model = ModelConfig::Compressor(config.clone());
    let weights = Weights::random(&model, 9, 0.5);
    let (layout, params) = flat(&config, &weights);
    let samples = 24_000;
    let audio = test_audio(samples, 600, 2);
    let (left, right) = audio.split_at(samples);
    let knobs = [0.0f32, 0.5];
    let pass = CompressorGrad::new(&config, &layout, 0);
    let mut ws = pass.workspace(samples, 2);
    ws.audio.copy_from_slice(&audio);
    ws.knobs.copy_from_slice(&knobs);
    pass.forward(&params, &mut ws);
    let (want_left, want_right) = ws.output.split_at(samples);
    let worst = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);

    for block in [1usize, 64, 1000] {
        let mut kernel = StreamingModel::new(&model, &weights, block).unwrap();
        assert!(kernel.is_linked());
        kernel.reset(&knobs);
        let linked = kernel.linked_mut().unwrap();
        let (mut out_left, mut out_right) = (vec![0.0; samples], vec![0.0; samples]);
        for start in (0..samples).step_by(block) {
            let end = (start + block).min(samples);
            let (l, r) = (&mut out_left[start..end], &mut out_right[start..end]);
            linked.process_linked([&left[start..end], &right[start..end]], &knobs, [l, r]);
        }
        let (dl, dr) = (worst(&out_left, want_left), worst(&out_right, want_right));
        assert!(
            dl < 1e-6 && dr < 1e-6,
            "block {block}: kernel and training differ by {dl}, {dr}"
        );
    }
    let mut kernel = StreamingModel::new(&model, &weights, 64).unwrap();
    kernel.reset(&knobs);
    let mut gain = vec![0.0; samples];
    kernel.linked_mut().unwrap().linked_gain(left, right, &knobs, &mut gain);
    let applied: Vec<f32> = right.iter().zip(&gain).map(|(x, g)| x * g).collect();
    assert!(worst(&applied, want_right) < 1e-5, "the side chain's gain differs");
    // One gain for both: where the left channel is loud and the right quiet, the right is
    // reduced as much as the left.
    let ratio = |out: &[f32], input: &[f32], n: usize| out[n] / input[n];
    // The middle of the left's 0.9 step, where the right plays its 0.01 one.
    let n = 600 + (samples - 600) / 7 * 5 / 2;
    assert!(left[n - 200..n].iter().any(|v| v.abs() > 0.5) && right[n - 200..n].iter().all(|v| v.abs() < 0.02));
    assert!((ratio(want_left, left, n) - ratio(want_right, right, n)).abs() < 1e-5);
    // ... and more than the right channel would get on its own.
    let mut solo = vec![0.0; samples];
    kernel.reset(&knobs);
    kernel
        .linked_mut()
        .unwrap()
        .linked_gain(right, right, &knobs, &mut solo);
    assert!(
        gain[n] < 0.95 * solo[n],
        "the loud left does not reduce the right: {} vs {} alone",
        gain[n],
        solo[n]
    );
}
