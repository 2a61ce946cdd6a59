//! The compressor's streaming kernel: the same detector, gain computer and ballistics as the
//! training pass, sample by sample in f64 state, with the control map re-run only when the
//! knobs change (its buffers are sized at build time). A stereo-linked model runs one
//! detector on both channels and hands out the gain it applies to both. Audio thread: no
//! allocation, no work that grows with time.

use anyhow::{ensure, Result};

use crate::model::compressor::{
    control_map, detector_input, gain_computer, link_share, one_pole, CompressorConfig, ControlAnchor,
    ControlMapWeights, CoreSettings, MapTrace, LEVEL_FLOOR, LINK_TENSOR,
};
use crate::model::MAX_KNOBS;
use crate::profile::Weights;

/// Streaming state and weights of one compressor: one channel's, or a linked pair's.
#[derive(Clone)]
pub struct CompressorKernel {
    linear: Vec<f32>,
    hidden_weight: Vec<f32>,
    hidden_bias: Vec<f32>,
    out_weight: Vec<f32>,
    out_bias: Vec<f32>,
    num_knobs: usize,
    anchors: Vec<ControlAnchor>,
    /// Share of the louder channel in a linked detector's input (`None`: mono model).
    link_share: Option<f64>,
    sample_rate_hz: f64,
    trace: MapTrace,
    /// Knobs the coefficients below were computed for (`None` before the first).
    knobs: Option<[f32; MAX_KNOBS]>,
    settings: CoreSettings,
    a_detector: f64,
    a_attack: f64,
    a_release: f64,
    makeup_db: f64,
    mean_square: f64,
    gain_db: f64,
}

impl CompressorKernel {
    /// Builds the kernel for `config` from `weights` (checked by name and shape). Not
    /// real-time safe.
    pub fn new(config: &CompressorConfig, weights: &Weights) -> Result<Self> {
        config.validate()?;
        let fetch = |name: &str| -> Result<Vec<f32>> {
            let shape = config
                .tensor_shapes()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s)
                .expect("known tensor");
            Ok(weights.get(name, &shape)?.to_vec())
        };
        ensure!(config.num_knobs <= MAX_KNOBS, "too many knobs");
        let link_share = match config.linked() {
            true => Some(link_share(weights.get(LINK_TENSOR, &[1])?[0])),
            false => None,
        };
        let mut kernel = CompressorKernel {
            linear: fetch("control.linear.weight")?,
            hidden_weight: fetch("control.hidden.weight")?,
            hidden_bias: fetch("control.hidden.bias")?,
            out_weight: fetch("control.out.weight")?,
            out_bias: fetch("control.out.bias")?,
            num_knobs: config.num_knobs,
            anchors: config.anchors.clone(),
            link_share,
            sample_rate_hz: config.sample_rate_hz as f64,
            trace: MapTrace {
                centred: vec![0.0; config.num_knobs],
                hidden: vec![0.0; config.hidden_size],
                pre: Default::default(),
            },
            knobs: None,
            settings: CoreSettings::default(),
            a_detector: 0.0,
            a_attack: 0.0,
            a_release: 0.0,
            makeup_db: 0.0,
            mean_square: 0.0,
            gain_db: 0.0,
        };
        kernel.set_knobs(&[0.5; MAX_KNOBS][..config.num_knobs]);
        Ok(kernel)
    }

    /// Recomputes the coefficients when `knobs` differ from the last ones. Real-time safe.
    fn set_knobs(&mut self, knobs: &[f32]) {
        let n = self.num_knobs.min(knobs.len());
        let mut current = [0.5f32; MAX_KNOBS];
        current[..n].copy_from_slice(&knobs[..n]);
        for v in &mut current {
            if !v.is_finite() {
                *v = 0.5;
            }
        }
        if self.knobs == Some(current) {
            return;
        }
        self.knobs = Some(current);
        let weights = ControlMapWeights {
            linear: &self.linear,
            hidden_weight: &self.hidden_weight,
            hidden_bias: &self.hidden_bias,
            out_weight: &self.out_weight,
            out_bias: &self.out_bias,
        };
        self.settings = control_map(&weights, &self.anchors, &current[..self.num_knobs], &mut self.trace);
        self.a_detector = one_pole(self.settings.detector_ms, self.sample_rate_hz).0;
        self.a_attack = one_pole(self.settings.attack_ms, self.sample_rate_hz).0;
        self.a_release = one_pole(self.settings.release_ms, self.sample_rate_hz).0;
        self.makeup_db = self.settings.makeup_db;
    }

    /// Whether one detector serves two channels (see [`Self::process_linked`]).
    pub fn is_linked(&self) -> bool {
        self.link_share.is_some()
    }

    /// One sample of the side chain: the detector takes `detected` (a mean-square input), the
    /// gain follows; returns the linear gain to apply, makeup included.
    fn step(&mut self, detected: f64) -> f64 {
        self.mean_square += self.a_detector * (detected - self.mean_square);
        let level_db = 10.0 * (self.mean_square + LEVEL_FLOOR).log10();
        let target = gain_computer(level_db, &self.settings).0;
        let a = if target < self.gain_db {
            self.a_attack
        } else {
            self.a_release
        };
        self.gain_db += a * (target - self.gain_db);
        // Quiet input decays both states towards zero: flush them long before they could
        // go denormal (far below anything audible: 1e-30 is -300 dB).
        if self.mean_square < 1e-30 {
            self.mean_square = 0.0;
        }
        if self.gain_db.abs() < 1e-30 {
            self.gain_db = 0.0;
        }
        // Input is finite, but should a state ever not be, start over from silence rather
        // than stay muted.
        if !(self.mean_square.is_finite() && self.gain_db.is_finite()) {
            self.mean_square = 0.0;
            self.gain_db = 0.0;
        }
        10f64.powf((self.gain_db + self.makeup_db) / 20.0)
    }

    /// Processes `input` into `output` with normalised `knobs`. A linked model plays a mono
    /// input as both of its channels. Real-time safe.
    pub fn process(&mut self, input: &[f32], knobs: &[f32], output: &mut [f32]) {
        self.set_knobs(knobs);
        for (out, &x) in output.iter_mut().zip(input) {
            let x = finite(x);
            let y = (x * self.step(x * x)) as f32;
            *out = if y.is_finite() { y } else { 0.0 };
        }
    }

    /// The linked side chain: from both channels' inputs, the linear gain (makeup included)
    /// the model applies to each sample of both, into `gain`. A mono model detects their
    /// mean. Real-time safe.
    pub fn linked_gain(&mut self, left: &[f32], right: &[f32], knobs: &[f32], gain: &mut [f32]) {
        self.set_knobs(knobs);
        let share = self.link_share.unwrap_or(0.0);
        for ((g, &l), &r) in gain.iter_mut().zip(left).zip(right) {
            let (detected, _) = detector_input(finite(l), finite(r), share);
            let linear = self.step(detected) as f32;
            *g = if linear.is_finite() { linear } else { 0.0 };
        }
    }

    /// Processes a stereo pair with one detector and one gain. Real-time safe.
    pub fn process_linked(&mut self, inputs: [&[f32]; 2], knobs: &[f32], outputs: [&mut [f32]; 2]) {
        self.set_knobs(knobs);
        let share = self.link_share.unwrap_or(0.0);
        let [out_left, out_right] = outputs;
        let frames = inputs[0]
            .len()
            .min(inputs[1].len())
            .min(out_left.len())
            .min(out_right.len());
        for n in 0..frames {
            let (l, r) = (finite(inputs[0][n]), finite(inputs[1][n]));
            let linear = self.step(detector_input(l, r, share).0);
            let (yl, yr) = ((l * linear) as f32, (r * linear) as f32);
            out_left[n] = if yl.is_finite() { yl } else { 0.0 };
            out_right[n] = if yr.is_finite() { yr } else { 0.0 };
        }
    }

    /// Back to silence: an empty detector and no gain reduction. Real-time safe.
    pub fn reset(&mut self, knobs: &[f32]) {
        self.set_knobs(knobs);
        self.mean_square = 0.0;
        self.gain_db = 0.0;
    }
}

/// A sample as the detector takes it: non-finite input counts as silence.
fn finite(x: f32) -> f64 {
    if x.is_finite() {
        x as f64
    } else {
        0.0
    }
}
