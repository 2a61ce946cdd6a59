//! The built-in reference compressor: a feed-forward design for tests and the demo, built the
//! way many analogue-modelled plugins are rather than the way Doppel's dynamics model is, so
//! the model has something to learn. Runs on any thread; `process` does not allocate.
//!
//! Signal path (knobs `threshold_db`, `ratio`, `attack_ms`, `release_ms`):
//! 1. detector: RMS (the mean square over a fixed 5 ms one-pole window, square-rooted) or
//!    peak (|x|), taken over the louder channel when stereo-linked;
//! 2. envelope ballistics on that linear level (attack while it rises, release while it
//!    falls), not on the gain;
//! 3. soft-knee static curve in dB on the envelope (knee 6 dB by default);
//! 4. the same gain, plus makeup, on every channel.

use crate::dsp::db_to_gain;
use crate::profile::KnobDescriptor;

/// What the detector measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detector {
    /// Root mean square over a 5 ms window.
    Rms,
    /// Instantaneous absolute value.
    Peak,
}

/// Settings of [`ReferenceCompressor`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompressorSettings {
    /// dBFS.
    pub threshold_db: f32,
    /// >= 1.
    pub ratio: f32,
    /// Envelope attack time constant, ms.
    pub attack_ms: f32,
    /// Envelope release time constant, ms.
    pub release_ms: f32,
    /// Knee width, dB.
    pub knee_db: f32,
    /// Gain after compression, dB.
    pub makeup_db: f32,
    /// See [`Detector`].
    pub detector: Detector,
}

impl Default for CompressorSettings {
    fn default() -> Self {
        CompressorSettings {
            threshold_db: -20.0,
            ratio: 4.0,
            attack_ms: 10.0,
            release_ms: 200.0,
            knee_db: 6.0,
            makeup_db: 0.0,
            detector: Detector::Rms,
        }
    }
}

/// RMS window of the detector, ms.
const RMS_WINDOW_MS: f32 = 5.0;

/// The reference compressor; one detector shared by all channels (stereo link).
#[derive(Clone, Debug)]
pub struct ReferenceCompressor {
    settings: CompressorSettings,
    a_rms: f32,
    a_attack: f32,
    a_release: f32,
    mean_square: f32,
    envelope: f32,
}

fn coefficient(ms: f32, sample_rate: f32) -> f32 {
    1.0 - (-1000.0 / (ms.max(0.001) * sample_rate)).exp()
}

impl ReferenceCompressor {
    /// A compressor at `sample_rate` Hz with `settings`.
    pub fn new(sample_rate: f32, settings: CompressorSettings) -> Self {
        ReferenceCompressor {
            a_rms: coefficient(RMS_WINDOW_MS, sample_rate),
            a_attack: coefficient(settings.attack_ms, sample_rate),
            a_release: coefficient(settings.release_ms, sample_rate),
            settings,
            mean_square: 0.0,
            envelope: 0.0,
        }
    }

    /// The gain in dB the static curve gives a level of `level_db`.
    pub fn static_gain_db(&self, level_db: f32) -> f32 {
        let s = &self.settings;
        let over = level_db - s.threshold_db;
        let slope = 1.0 / s.ratio.max(1.0) - 1.0;
        let w = s.knee_db.max(0.0);
        if 2.0 * over <= -w {
            0.0
        } else if 2.0 * over < w {
            slope * (over + 0.5 * w).powi(2) / (2.0 * w)
        } else {
            slope * over
        }
    }

    /// The linear gain for the next sample, whose detector input is `level` (the sample's
    /// absolute value, the largest over linked channels).
    fn next_gain(&mut self, level: f32) -> f32 {
        let detected = match self.settings.detector {
            Detector::Rms => {
                self.mean_square += self.a_rms * (level * level - self.mean_square);
                if self.mean_square < 1e-30 {
                    self.mean_square = 0.0;
                }
                self.mean_square.sqrt()
            }
            Detector::Peak => level,
        };
        let a = if detected > self.envelope {
            self.a_attack
        } else {
            self.a_release
        };
        self.envelope += a * (detected - self.envelope);
        if self.envelope < 1e-20 {
            self.envelope = 0.0;
        }
        let level_db = 20.0 * (self.envelope + 1e-10).log10();
        db_to_gain(self.static_gain_db(level_db) + self.settings.makeup_db)
    }

    /// Compresses mono `input` into `output`.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) {
        for (out, &x) in output.iter_mut().zip(input) {
            *out = x * self.next_gain(x.abs());
        }
    }

    /// Compresses a stereo pair in place with one linked detector (the louder channel).
    pub fn process_stereo(&mut self, left: &mut [f32], right: &mut [f32]) {
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let gain = self.next_gain(l.abs().max(r.abs()));
            *l *= gain;
            *r *= gain;
        }
    }
}

/// The reference compressor's knobs, in the units captures tag them with.
pub fn reference_compressor_knobs() -> Vec<KnobDescriptor> {
    let knob = |name: &str, min: f32, max: f32, default: f32, unit: &str| KnobDescriptor {
        name: name.into(),
        min,
        max,
        default,
        unit: unit.into(),
    };
    vec![
        knob("threshold_db", -40.0, 0.0, -20.0, "dB"),
        knob("ratio", 1.0, 20.0, 4.0, ":1"),
        knob("attack_ms", 0.1, 100.0, 10.0, "ms"),
        knob("release_ms", 20.0, 2000.0, 200.0, "ms"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(level: f32, samples: usize) -> Vec<f32> {
        (0..samples).map(|n| level * (n as f32 * 0.05).sin()).collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn steady_tone_above_threshold_is_reduced_by_the_ratio() {
        let settings = CompressorSettings {
            knee_db: 0.0,
            ..CompressorSettings::default()
        };
        let mut comp = ReferenceCompressor::new(48_000.0, settings);
        // A sine at -6 dB RMS (re full scale sine: peak 0.707): 14 dB over a -20 dB threshold.
        let input = tone(0.707, 96_000);
        let mut output = vec![0.0; input.len()];
        comp.process(&input, &mut output);
        let (a, b) = (rms(&input[48_000..]), rms(&output[48_000..]));
        let reduction_db = 20.0 * (b / a).log10();
        let level_db = 20.0 * a.log10();
        let expected = (1.0 / 4.0 - 1.0) * (level_db + 20.0);
        // The 5 ms RMS window ripples a little at this frequency.
        assert!(
            (reduction_db - expected).abs() < 0.5,
            "{reduction_db} dB for {expected}"
        );
    }

    #[test]
    fn release_recovers_with_its_time_constant_and_quiet_input_passes() {
        let settings = CompressorSettings {
            release_ms: 500.0,
            ..CompressorSettings::default()
        };
        let mut comp = ReferenceCompressor::new(48_000.0, settings);
        let mut input = tone(0.9, 48_000);
        input.extend(tone(0.01, 96_000));
        let mut output = vec![0.0; input.len()];
        comp.process(&input, &mut output);
        let gain = |range: std::ops::Range<usize>| rms(&output[range.clone()]) / rms(&input[range]);
        // Just after the drop the gain is still down; two seconds later it is back to unity.
        assert!(gain(48_000..49_000) < 0.5);
        assert!((gain(130_000..144_000) - 1.0).abs() < 0.01);
    }

    #[test]
    fn stereo_link_applies_one_gain_to_both_channels() {
        let mut comp = ReferenceCompressor::new(48_000.0, CompressorSettings::default());
        let mut left = tone(0.9, 4_800);
        let mut right = tone(0.05, 4_800);
        let (left_in, right_in) = (left.clone(), right.clone());
        comp.process_stereo(&mut left, &mut right);
        for i in (100..4_800).step_by(97) {
            if left_in[i].abs() > 1e-3 && right_in[i].abs() > 1e-4 {
                let (gl, gr) = (left[i] / left_in[i], right[i] / right_in[i]);
                assert!((gl - gr).abs() < 1e-5, "{gl} vs {gr} at {i}");
            }
        }
    }
}
