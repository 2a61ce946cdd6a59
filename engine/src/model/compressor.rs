//! The dynamics architecture: a grey-box feed-forward compressor (level detector, soft-knee
//! gain computer, attack/release ballistics on the gain, makeup) whose seven controls come
//! from the knobs through a small learned map. Its memory is the detector and ballistics
//! state, so release times of seconds cost nothing, and it adds no latency.
//!
//! This module holds the configuration, the tensor names and the control map shared by the
//! two paths: the hand-derived training pass (`crate::train::compressor_grad`) and the
//! streaming kernel (`crate::kernel::compressor`). Trainer thread and (the map only, when
//! knobs move, without allocating) the audio thread.

use std::f64::consts::{LN_10, LN_2};

use serde::{Deserialize, Serialize};

use super::Size;

/// Number of controls the map produces: see [`Control`].
pub const CONTROLS: usize = 7;

/// The controls of the compressor core, in the order the map produces them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Control {
    /// Threshold, dB.
    Threshold = 0,
    /// Ratio, `1 + softplus`.
    Ratio = 1,
    /// Knee width, dB, `softplus + MIN_KNEE_DB`.
    Knee = 2,
    /// Attack time constant of the gain, ms, `exp`.
    Attack = 3,
    /// Release time constant of the gain, ms, `exp`.
    Release = 4,
    /// Makeup gain, dB.
    Makeup = 5,
    /// Averaging time of the mean-square level detector, ms, `exp`.
    Detector = 6,
}

/// Each control's pre-activation is `OFFSET + SCALE · raw`, `raw` the map's output: the
/// offsets put an untrained model at a plausible compressor (-20 dB, 3:1, 6 dB knee, 10 ms
/// attack, 100 ms release, no makeup, 2 ms detector), the scales let one optimiser step
/// size move dB and log-times alike.
pub const CONTROL_OFFSET: [f64; CONTROLS] = [-20.0, 1.854_586_7, 5.897_27, LN_10, 2.0 * LN_10, 0.0, LN_2];
/// See [`CONTROL_OFFSET`].
pub const CONTROL_SCALE: [f64; CONTROLS] = [10.0, 1.0, 3.0, 1.0, 1.0, 6.0, 1.0];
/// Narrowest knee, dB (keeps the gain computer's derivative bounded).
pub const MIN_KNEE_DB: f64 = 0.1;
/// Floor added to the mean square before taking its level, so silence reads -100 dBFS.
pub const LEVEL_FLOOR: f64 = 1e-10;
/// Longest time constant the map may produce, ms (keeps `exp` finite for any weights).
pub const MAX_TIME_MS: f64 = 20_000.0;
/// Shortest time constant, ms.
pub const MIN_TIME_MS: f64 = 0.01;

/// A knob whose name says which control it sets and in what unit (`threshold_db`, `ratio`,
/// `attack_ms`, `release_ms`, `makeup_db`, `knee_db`): the map starts that control at the
/// knob's own value and learns only a correction, so settings between and beyond the
/// captured ones follow the knob's meaning instead of the map's guess.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlAnchor {
    /// The knob's index among the model's knobs.
    pub knob: usize,
    /// The control it sets.
    pub control: Control,
    /// The knob's value at normalised 0, in the control's unit.
    pub min: f32,
    /// Its value at normalised 1.
    pub max: f32,
}

impl ControlAnchor {
    /// The anchor a knob named `name` with range `min..max` gives, if its name is one of the
    /// recognised ones (case-insensitive).
    pub fn for_knob(knob: usize, name: &str, min: f32, max: f32) -> Option<Self> {
        let control = match name.to_ascii_lowercase().as_str() {
            "threshold_db" | "threshold" => Control::Threshold,
            "ratio" => Control::Ratio,
            "attack_ms" => Control::Attack,
            "release_ms" => Control::Release,
            "makeup_db" | "makeup" => Control::Makeup,
            "knee_db" | "knee" => Control::Knee,
            _ => return None,
        };
        Some(ControlAnchor {
            knob,
            control,
            min,
            max,
        })
    }

    /// The control's pre-activation the knob's value stands for (the inverse of
    /// [`settings_from_pre`] for that control) at normalised value `normalized`.
    pub fn prior(&self, normalized: f64) -> f64 {
        let value = self.min as f64 + (self.max - self.min) as f64 * normalized.clamp(0.0, 1.0);
        let softplus_inverse = |y: f64| {
            let y = y.max(1e-3);
            if y > 30.0 {
                y
            } else {
                y.exp_m1().ln()
            }
        };
        match self.control {
            Control::Threshold | Control::Makeup => value,
            Control::Ratio => softplus_inverse(value - 1.0),
            Control::Knee => softplus_inverse(value - MIN_KNEE_DB),
            Control::Attack | Control::Release | Control::Detector => value.clamp(MIN_TIME_MS, MAX_TIME_MS).ln(),
        }
    }
}

/// Hyperparameters of the dynamics model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompressorConfig {
    /// Audio channels: 1, or 2 for a stereo-linked compressor (one detector fed by both
    /// channels, one gain applied to both).
    #[serde(default = "one_channel")]
    pub channels: usize,
    /// Conditioning knobs (the map's inputs).
    pub num_knobs: usize,
    /// Width of the map's hidden layer.
    pub hidden_size: usize,
    /// Sample rate the time constants apply at, in Hz (the captures' rate).
    pub sample_rate_hz: f32,
    /// Knobs that set a control directly, by their names and units (see [`ControlAnchor`]).
    #[serde(default)]
    pub anchors: Vec<ControlAnchor>,
}

impl CompressorConfig {
    /// The preset for `size` and `num_knobs` at 48 kHz (the session sets the captures' rate).
    pub fn preset(size: Size, num_knobs: usize) -> Self {
        let hidden_size = match size {
            Size::Nano => 8,
            Size::Feather => 16,
            Size::Lite => 24,
            Size::Standard => 32,
        };
        CompressorConfig {
            channels: 1,
            num_knobs,
            hidden_size,
            sample_rate_hz: 48_000.0,
            anchors: Vec::new(),
        }
    }

    /// Anchors every knob whose name says what it sets (`names[i]` with range `ranges[i]`).
    pub fn anchor_knobs(&mut self, knobs: &[(String, f32, f32)]) {
        self.anchors.clear();
        for (i, (name, min, max)) in knobs.iter().enumerate() {
            // The first knob naming a control anchors it (`threshold` and `threshold_db` both
            // present would otherwise add two priors).
            if let Some(anchor) = ControlAnchor::for_knob(i, name, *min, *max) {
                if self.anchors.iter().all(|a| a.control != anchor.control) {
                    self.anchors.push(anchor);
                }
            }
        }
    }

    /// Whether one detector serves two channels.
    pub fn linked(&self) -> bool {
        self.channels == 2
    }

    /// Every tensor by name with its shape. A stereo-linked model adds `detector.link`: how
    /// the detector combines the channels (see [`detector_input`]).
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (k, h) = (self.num_knobs, self.hidden_size);
        let mut shapes: Vec<(String, Vec<usize>)> = vec![
            ("control.linear.weight".into(), vec![CONTROLS, k]),
            ("control.hidden.weight".into(), vec![h, k]),
            ("control.hidden.bias".into(), vec![h]),
            ("control.out.weight".into(), vec![CONTROLS, h]),
            ("control.out.bias".into(), vec![CONTROLS]),
        ];
        if self.linked() {
            shapes.push((LINK_TENSOR.into(), vec![1]));
        }
        shapes
    }

    /// Checks the hyperparameters.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=2).contains(&self.channels),
            "compressor channels must be 1 (mono) or 2 (stereo-linked), not {}",
            self.channels
        );
        anyhow::ensure!(
            (1..=256).contains(&self.hidden_size),
            "compressor hidden size must be 1..=256"
        );
        anyhow::ensure!(
            self.sample_rate_hz.is_finite() && (8_000.0..=384_000.0).contains(&self.sample_rate_hz),
            "compressor sample rate must lie in 8..384 kHz"
        );
        for anchor in &self.anchors {
            anyhow::ensure!(
                anchor.knob < self.num_knobs && anchor.min.is_finite() && anchor.max.is_finite(),
                "compressor anchor on knob {} is out of range",
                anchor.knob
            );
        }
        Ok(())
    }
}

fn one_channel() -> usize {
    1
}

/// Name of the stereo link's one weight: `sigmoid` of it is the share of the louder channel
/// in the detector's input, the rest the channels' mean.
pub const LINK_TENSOR: &str = "detector.link";

/// The share of the louder channel a link weight stands for, `sigmoid(link)`.
pub fn link_share(link: f32) -> f64 {
    sigmoid(link as f64)
}

/// What a stereo-linked detector averages: `(1 - share) · mean(l², r²) + share · max(l², r²)`,
/// with its derivative with respect to `share` (`max - mean`). The same as `x²` when both
/// channels carry `x`.
pub fn detector_input(left: f64, right: f64, share: f64) -> (f64, f64) {
    let (l2, r2) = (left * left, right * right);
    let mean = 0.5 * (l2 + r2);
    let spread = l2.max(r2) - mean;
    (mean + share * spread, spread)
}

/// The map's weights, borrowed from a flat slice or a profile, by tensor name.
pub struct ControlMapWeights<'a> {
    /// `[CONTROLS][num_knobs]`.
    pub linear: &'a [f32],
    /// `[hidden][num_knobs]`.
    pub hidden_weight: &'a [f32],
    /// `[hidden]`.
    pub hidden_bias: &'a [f32],
    /// `[CONTROLS][hidden]`.
    pub out_weight: &'a [f32],
    /// `[CONTROLS]`.
    pub out_bias: &'a [f32],
}

/// The compressor core's settings for one knob setting, in real units.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CoreSettings {
    /// dBFS.
    pub threshold_db: f64,
    /// Input dB per output dB above the threshold (>= 1).
    pub ratio: f64,
    /// dB.
    pub knee_db: f64,
    /// ms.
    pub attack_ms: f64,
    /// ms.
    pub release_ms: f64,
    /// dB.
    pub makeup_db: f64,
    /// ms.
    pub detector_ms: f64,
}

/// What the map computed on the way, for its backward pass.
#[derive(Clone, Debug, Default)]
pub struct MapTrace {
    /// Centred knobs, `2k - 1`.
    pub centred: Vec<f64>,
    /// Hidden activations, `tanh`.
    pub hidden: Vec<f64>,
    /// Pre-activations `OFFSET + SCALE · raw`.
    pub pre: [f64; CONTROLS],
}

fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Runs the control map for normalised `knobs` (0..1), writing its trace into `trace`
/// (whose vectors are resized once, then reused), and returns the core settings. An
/// anchored control starts from its knob's value instead of [`CONTROL_OFFSET`].
pub fn control_map(
    weights: &ControlMapWeights,
    anchors: &[ControlAnchor],
    knobs: &[f32],
    trace: &mut MapTrace,
) -> CoreSettings {
    let k = knobs.len();
    let h = weights.hidden_bias.len();
    trace.centred.resize(k, 0.0);
    trace.hidden.resize(h, 0.0);
    for (c, &v) in trace.centred.iter_mut().zip(knobs) {
        *c = 2.0 * v.clamp(0.0, 1.0) as f64 - 1.0;
    }
    for j in 0..h {
        let mut sum = weights.hidden_bias[j] as f64;
        for (i, &c) in trace.centred.iter().enumerate() {
            sum += weights.hidden_weight[j * k + i] as f64 * c;
        }
        trace.hidden[j] = sum.tanh();
    }
    for c in 0..CONTROLS {
        let mut raw = weights.out_bias[c] as f64;
        for (j, &a) in trace.hidden.iter().enumerate() {
            raw += weights.out_weight[c * h + j] as f64 * a;
        }
        for (i, &v) in trace.centred.iter().enumerate() {
            raw += weights.linear[c * k + i] as f64 * v;
        }
        trace.pre[c] = CONTROL_OFFSET[c] + CONTROL_SCALE[c] * raw;
    }
    for anchor in anchors {
        let c = anchor.control as usize;
        let knob = knobs.get(anchor.knob).copied().unwrap_or(0.5) as f64;
        trace.pre[c] += anchor.prior(knob) - CONTROL_OFFSET[c];
    }
    settings_from_pre(&trace.pre)
}

/// The core settings for pre-activations `pre`.
pub fn settings_from_pre(pre: &[f64; CONTROLS]) -> CoreSettings {
    let time = |z: f64| z.exp().clamp(MIN_TIME_MS, MAX_TIME_MS);
    CoreSettings {
        threshold_db: pre[Control::Threshold as usize],
        ratio: 1.0 + softplus(pre[Control::Ratio as usize]),
        knee_db: softplus(pre[Control::Knee as usize]) + MIN_KNEE_DB,
        attack_ms: time(pre[Control::Attack as usize]),
        release_ms: time(pre[Control::Release as usize]),
        makeup_db: pre[Control::Makeup as usize],
        detector_ms: time(pre[Control::Detector as usize]),
    }
}

/// d(setting)/d(pre-activation) of each control, in [`Control`] order (0 where a time
/// constant sits at its clamp).
pub fn settings_derivative(pre: &[f64; CONTROLS]) -> [f64; CONTROLS] {
    let time = |z: f64| {
        let t = z.exp();
        if (MIN_TIME_MS..=MAX_TIME_MS).contains(&t) {
            t
        } else {
            0.0
        }
    };
    [
        1.0,
        sigmoid(pre[Control::Ratio as usize]),
        sigmoid(pre[Control::Knee as usize]),
        time(pre[Control::Attack as usize]),
        time(pre[Control::Release as usize]),
        1.0,
        time(pre[Control::Detector as usize]),
    ]
}

/// Backward through the map: given d(loss)/d(settings) in [`Control`] order, adds the
/// weights' gradients into the five slices (same layout as [`ControlMapWeights`]).
pub fn control_map_backward(
    weights: &ControlMapWeights,
    trace: &MapTrace,
    d_settings: &[f64; CONTROLS],
    gradient: [&mut [f32]; 5],
) {
    let [g_linear, g_hidden_weight, g_hidden_bias, g_out_weight, g_out_bias] = gradient;
    let k = trace.centred.len();
    let h = trace.hidden.len();
    let slope = settings_derivative(&trace.pre);
    let mut d_hidden = vec![0.0f64; h];
    for c in 0..CONTROLS {
        let d_raw = d_settings[c] * slope[c] * CONTROL_SCALE[c];
        g_out_bias[c] += d_raw as f32;
        for j in 0..h {
            g_out_weight[c * h + j] += (d_raw * trace.hidden[j]) as f32;
            d_hidden[j] += d_raw * weights.out_weight[c * h + j] as f64;
        }
        for i in 0..k {
            g_linear[c * k + i] += (d_raw * trace.centred[i]) as f32;
        }
    }
    for j in 0..h {
        let d_sum = d_hidden[j] * (1.0 - trace.hidden[j] * trace.hidden[j]);
        g_hidden_bias[j] += d_sum as f32;
        for i in 0..k {
            g_hidden_weight[j * k + i] += (d_sum * trace.centred[i]) as f32;
        }
    }
}

/// One-pole smoothing coefficient for time constant `ms` at `sample_rate_hz`:
/// `1 - exp(-1000 / (ms · rate))`, and its derivative with respect to `ms`.
pub fn one_pole(ms: f64, sample_rate_hz: f64) -> (f64, f64) {
    let k = 1000.0 / sample_rate_hz;
    let decay = (-k / ms).exp();
    (1.0 - decay, -decay * k / (ms * ms))
}

/// The soft-knee static curve: gain in dB (<= 0) for a level `level_db`, with its partial
/// derivatives `(gain, d/dlevel, d/dthreshold, d/dratio, d/dknee)`.
pub fn gain_computer(level_db: f64, s: &CoreSettings) -> (f64, f64, f64, f64, f64) {
    let over = level_db - s.threshold_db;
    let slope = 1.0 / s.ratio - 1.0;
    let d_slope = -1.0 / (s.ratio * s.ratio);
    let w = s.knee_db;
    if 2.0 * over <= -w {
        (0.0, 0.0, 0.0, 0.0, 0.0)
    } else if 2.0 * over < w {
        let u = over + 0.5 * w;
        let gain = slope * u * u / (2.0 * w);
        let d_level = slope * u / w;
        (
            gain,
            d_level,
            -d_level,
            d_slope * u * u / (2.0 * w),
            slope * u * (w - u) / (2.0 * w * w),
        )
    } else {
        (slope * over, slope, -slope, d_slope * over, 0.0)
    }
}
