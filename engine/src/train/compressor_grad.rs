//! The compressor's training pass, derived by hand: the forward recursion over a segment
//! (mean-square detector, soft-knee gain computer, attack/release ballistics on the gain in
//! dB, makeup) keeps its per-sample state, and the backward pass runs the recursion in
//! reverse (backpropagation through time over the whole segment, warm-up included), then
//! through the control map. A stereo-linked model takes its segment planar (the left
//! channel's samples, then the right's) and predicts both from one detector. Checked against
//! candle's autograd in the tests. Trainer thread and the session pool's workers (one
//! workspace per segment).

use super::params::ParamLayout;
use crate::model::compressor::{
    control_map, control_map_backward, detector_input, gain_computer, link_share, one_pole, CompressorConfig, Control,
    ControlAnchor, ControlMapWeights, CoreSettings, MapTrace, CONTROLS, LEVEL_FLOOR, LINK_TENSOR,
};

const LN10: f64 = std::f64::consts::LN_10;

/// Offsets of the control map's tensors in the flat parameter vector.
pub(crate) struct CompressorGrad {
    anchors: Vec<ControlAnchor>,
    offsets: [usize; 5],
    sizes: [usize; 5],
    /// Offset of `detector.link` (stereo-linked models only).
    link_offset: Option<usize>,
    channels: usize,
    sample_rate_hz: f64,
    warmup_samples: usize,
    parameter_count: usize,
}

/// One segment's forward state, kept for the backward pass.
pub(crate) struct CompressorWorkspace {
    /// Input audio: the warm-up, then the scored segment (per channel, one after another).
    pub audio: Vec<f32>,
    /// Normalised knob values.
    pub knobs: Vec<f32>,
    /// Prediction over the scored segment (per channel, one after another).
    pub output: Vec<f32>,
    trace: MapTrace,
    settings: CoreSettings,
    /// The stereo link's share of the louder channel (0 when mono).
    share: f64,
    /// Per sample: what the detector averaged (`x²`, or the linked channels' blend).
    detected: Vec<f64>,
    /// Per sample: `max - mean` of the channels' squares (stereo only).
    spread: Vec<f64>,
    /// Samples the starting level was measured over, and the mean spread over them.
    head: usize,
    head_spread: f64,
    /// Per sample: the mean square before this sample's update.
    mean_square_before: Vec<f64>,
    /// Per sample: the mean square after it.
    mean_square: Vec<f64>,
    /// Per sample: the smoothed gain (dB) before this sample's update.
    gain_before: Vec<f64>,
    /// Per sample: the static curve's gain and its partials (level, threshold, ratio, knee).
    curve: Vec<[f64; 5]>,
    /// Per sample: whether the attack coefficient applied.
    attacking: Vec<bool>,
    /// The static curve and its partials at the starting level (the initial gain).
    initial_curve: [f64; 5],
    /// Per channel and sample: the output (warm-up included).
    output_all: Vec<f64>,
}

impl CompressorGrad {
    /// The pass for `config`, with `warmup_samples` unscored samples ahead of each segment.
    pub fn new(config: &CompressorConfig, layout: &ParamLayout, warmup_samples: usize) -> Self {
        let names = [
            "control.linear.weight",
            "control.hidden.weight",
            "control.hidden.bias",
            "control.out.weight",
            "control.out.bias",
        ];
        let shapes = config.tensor_shapes();
        let sizes = names.map(|name| {
            shapes
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, s)| s.iter().product())
        });
        let offsets = names.map(|name| layout.offset(name));
        let link_offset = config.linked().then(|| layout.offset(LINK_TENSOR));
        for i in 1..offsets.len() {
            assert_eq!(
                offsets[i],
                offsets[i - 1] + sizes[i - 1],
                "control map tensors out of order"
            );
        }
        CompressorGrad {
            anchors: config.anchors.clone(),
            offsets,
            sizes,
            link_offset,
            channels: config.channels,
            sample_rate_hz: config.sample_rate_hz as f64,
            warmup_samples,
            parameter_count: layout.len(),
        }
    }

    /// A workspace for segments of `segment` scored samples (per channel) and `num_knobs`
    /// knobs.
    pub fn workspace(&self, segment: usize, num_knobs: usize) -> CompressorWorkspace {
        let length = self.warmup_samples + segment;
        let channels = self.channels;
        CompressorWorkspace {
            audio: vec![0.0; channels * length],
            knobs: vec![0.0; num_knobs],
            output: vec![0.0; channels * segment],
            trace: MapTrace::default(),
            settings: CoreSettings::default(),
            share: 0.0,
            detected: vec![0.0; length],
            spread: vec![0.0; if channels == 2 { length } else { 0 }],
            head: 1,
            head_spread: 0.0,
            mean_square_before: vec![0.0; length],
            mean_square: vec![0.0; length],
            gain_before: vec![0.0; length],
            curve: vec![[0.0; 5]; length],
            attacking: vec![false; length],
            initial_curve: [0.0; 5],
            output_all: vec![0.0; channels * length],
        }
    }

    fn weights<'a>(&self, params: &'a [f32]) -> ControlMapWeights<'a> {
        let slice = |i: usize| &params[self.offsets[i]..self.offsets[i] + self.sizes[i]];
        ControlMapWeights {
            linear: slice(0),
            hidden_weight: slice(1),
            hidden_bias: slice(2),
            out_weight: slice(3),
            out_bias: slice(4),
        }
    }

    /// Runs the compressor over `ws.audio` with `ws.knobs`, leaving the scored prediction in
    /// `ws.output` and the state for [`Self::backward`]. The detector starts at the mean
    /// square of the first 10 ms and the gain at the static curve's answer to it (a steady
    /// state, so a short warm-up settles).
    pub fn forward(&self, params: &[f32], ws: &mut CompressorWorkspace) {
        assert_eq!(params.len(), self.parameter_count, "parameter vector size");
        let s = control_map(&self.weights(params), &self.anchors, &ws.knobs, &mut ws.trace);
        ws.settings = s;
        let length = ws.detected.len();
        if let Some(offset) = self.link_offset {
            ws.share = link_share(params[offset]);
            let (left, right) = ws.audio.split_at(length);
            for n in 0..length {
                let (d, spread) = detector_input(left[n] as f64, right[n] as f64, ws.share);
                ws.detected[n] = d;
                ws.spread[n] = spread;
            }
        } else {
            for (d, &x) in ws.detected.iter_mut().zip(&ws.audio) {
                *d = (x as f64) * (x as f64);
            }
        }
        let rate = self.sample_rate_hz;
        let (a_detector, _) = one_pole(s.detector_ms, rate);
        let (a_attack, _) = one_pole(s.attack_ms, rate);
        let (a_release, _) = one_pole(s.release_ms, rate);
        ws.head = length.min((0.01 * rate) as usize).max(1);
        let mut mean_square = ws.detected[..ws.head].iter().sum::<f64>() / ws.head as f64;
        ws.head_spread = ws
            .spread
            .get(..ws.head)
            .map_or(0.0, |s| s.iter().sum::<f64>() / ws.head as f64);
        let (gain0, d_level0, d_threshold0, d_ratio0, d_knee0) =
            gain_computer(10.0 * (mean_square + LEVEL_FLOOR).log10(), &s);
        ws.initial_curve = [gain0, d_level0, d_threshold0, d_ratio0, d_knee0];
        let mut gain = gain0;
        for n in 0..length {
            ws.mean_square_before[n] = mean_square;
            mean_square += a_detector * (ws.detected[n] - mean_square);
            ws.mean_square[n] = mean_square;
            let level_db = 10.0 * (mean_square + LEVEL_FLOOR).log10();
            let (target, d_level, d_threshold, d_ratio, d_knee) = gain_computer(level_db, &s);
            ws.curve[n] = [target, d_level, d_threshold, d_ratio, d_knee];
            ws.gain_before[n] = gain;
            let attacking = target < gain;
            ws.attacking[n] = attacking;
            gain += if attacking { a_attack } else { a_release } * (target - gain);
            let linear = 10f64.powf((gain + s.makeup_db) / 20.0);
            for c in 0..self.channels {
                ws.output_all[c * length + n] = ws.audio[c * length + n] as f64 * linear;
            }
        }
        let segment = length - self.warmup_samples;
        for c in 0..self.channels {
            let scored = &ws.output_all[c * length + self.warmup_samples..(c + 1) * length];
            for (out, &y) in ws.output[c * segment..(c + 1) * segment].iter_mut().zip(scored) {
                *out = y as f32;
            }
        }
    }

    /// Adds into `gradient` the gradient of a loss whose derivative with respect to the last
    /// forward's scored prediction is `d_output`.
    pub fn backward(&self, params: &[f32], ws: &CompressorWorkspace, d_output: &[f32], gradient: &mut [f32]) {
        let s = &ws.settings;
        let rate = self.sample_rate_hz;
        let (a_detector, da_detector) = one_pole(s.detector_ms, rate);
        let (a_attack, da_attack) = one_pole(s.attack_ms, rate);
        let (a_release, da_release) = one_pole(s.release_ms, rate);
        let mut d = [0.0f64; CONTROLS];
        let (mut d_a_attack, mut d_a_release, mut d_a_detector) = (0.0, 0.0, 0.0);
        // d(loss)/d(share) of the stereo link.
        let mut d_share = 0.0f64;
        let length = ws.detected.len();
        let segment = length - self.warmup_samples;
        // Adjoints carried back from sample n + 1 to the state after sample n.
        let (mut d_gain_next, mut d_mean_square_next) = (0.0f64, 0.0f64);
        for n in (0..length).rev() {
            // d(loss)/d(gain in dB) through this sample's outputs, every channel's.
            let mut d_output_gain = 0.0;
            if let Some(i) = n.checked_sub(self.warmup_samples) {
                for c in 0..self.channels {
                    d_output_gain += d_output[c * segment + i] as f64 * ws.output_all[c * length + n] * LN10 / 20.0;
                }
            }
            let d_gain = d_gain_next + d_output_gain;
            d[Control::Makeup as usize] += d_output_gain;
            let [target, d_level, d_threshold, d_ratio, d_knee] = ws.curve[n];
            let before = ws.gain_before[n];
            let a = if ws.attacking[n] { a_attack } else { a_release };
            let d_target = a * d_gain;
            if ws.attacking[n] {
                d_a_attack += (target - before) * d_gain;
            } else {
                d_a_release += (target - before) * d_gain;
            }
            d_gain_next = (1.0 - a) * d_gain;
            d[Control::Threshold as usize] += d_target * d_threshold;
            d[Control::Ratio as usize] += d_target * d_ratio;
            d[Control::Knee as usize] += d_target * d_knee;
            let d_mean_square =
                d_mean_square_next + d_target * d_level * 10.0 / (LN10 * (ws.mean_square[n] + LEVEL_FLOOR));
            d_a_detector += (ws.detected[n] - ws.mean_square_before[n]) * d_mean_square;
            if let Some(spread) = ws.spread.get(n) {
                d_share += a_detector * d_mean_square * spread;
            }
            d_mean_square_next = (1.0 - a_detector) * d_mean_square;
        }
        // The starting gain is the static curve's answer to the starting level (which depends
        // on the audio alone), so its adjoint reaches the curve's controls too.
        let [_, d_level0, d_threshold0, d_ratio0, d_knee0] = ws.initial_curve;
        if let Some(offset) = self.link_offset {
            // The starting level (the mean of the first samples' detector input) moves with
            // the link's share too: directly, and through the starting gain.
            let start = ws.mean_square_before[0];
            let d_start = d_mean_square_next + d_gain_next * d_level0 * 10.0 / (LN10 * (start + LEVEL_FLOOR));
            d_share += d_start * ws.head_spread;
            gradient[offset] += (d_share * ws.share * (1.0 - ws.share)) as f32;
        }
        d[Control::Threshold as usize] += d_gain_next * d_threshold0;
        d[Control::Ratio as usize] += d_gain_next * d_ratio0;
        d[Control::Knee as usize] += d_gain_next * d_knee0;
        d[Control::Attack as usize] = d_a_attack * da_attack;
        d[Control::Release as usize] = d_a_release * da_release;
        d[Control::Detector as usize] = d_a_detector * da_detector;
        // The map's tensors lie one after another in the layout (tensor_shapes order).
        let mut rest = &mut gradient[self.offsets[0]..];
        let gradient = self.sizes.map(|size| {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(size);
            rest = tail;
            part
        });
        control_map_backward(&self.weights(params), &ws.trace, &d, gradient);
    }
}

#[cfg(test)]
#[path = "compressor_grad_tests.rs"]
mod tests;
