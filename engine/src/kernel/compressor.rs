//! The compressor's streaming kernel: the same detector, gain computer and ballistics as the
//! training pass, sample by sample in f64 state, with the control map re-run only when the
//! knobs change (its buffers are sized at build time). Audio thread: no allocation, no work
//! that grows with time.

use anyhow::{ensure, Result};

use crate::model::compressor::{
    control_map, gain_computer, one_pole, CompressorConfig, ControlAnchor, ControlMapWeights, CoreSettings, MapTrace,
    LEVEL_FLOOR,
};
use crate::model::MAX_KNOBS;
use crate::profile::Weights;

/// Streaming state and weights of one channel's compressor.
#[derive(Clone)]
pub struct CompressorKernel {
    linear: Vec<f32>,
    hidden_weight: Vec<f32>,
    hidden_bias: Vec<f32>,
    out_weight: Vec<f32>,
    out_bias: Vec<f32>,
    num_knobs: usize,
    anchors: Vec<ControlAnchor>,
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
        let mut kernel = CompressorKernel {
            linear: fetch("control.linear.weight")?,
            hidden_weight: fetch("control.hidden.weight")?,
            hidden_bias: fetch("control.hidden.bias")?,
            out_weight: fetch("control.out.weight")?,
            out_bias: fetch("control.out.bias")?,
            num_knobs: config.num_knobs,
            anchors: config.anchors.clone(),
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

    /// Processes `input` into `output` with normalised `knobs`. Real-time safe.
    pub fn process(&mut self, input: &[f32], knobs: &[f32], output: &mut [f32]) {
        self.set_knobs(knobs);
        for (out, &x) in output.iter_mut().zip(input) {
            let x = if x.is_finite() { x as f64 } else { 0.0 };
            self.mean_square += self.a_detector * (x * x - self.mean_square);
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
            let y = (x * 10f64.powf((self.gain_db + self.makeup_db) / 20.0)) as f32;
            *out = if y.is_finite() { y } else { 0.0 };
        }
    }

    /// Back to silence: an empty detector and no gain reduction. Real-time safe.
    pub fn reset(&mut self, knobs: &[f32]) {
        self.set_knobs(knobs);
        self.mean_square = 0.0;
        self.gain_db = 0.0;
    }
}
