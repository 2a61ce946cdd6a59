//! The built-in reference "hardware": a deterministic digital tube amp and 4x12 cabinet (and,
//! in [`ReferenceCompressor`], a feed-forward compressor) used as the devices to capture in
//! the demo and the tests. Runs on any thread; `process`
//! does not allocate, so it could run on the audio thread too.
//!
//! Signal path (knobs `gain` and `tone` on 0..10):
//! 1. input coupling highpass (25 Hz);
//! 2. at 4x oversampling: three asymmetric triode-like gain stages. Each adds a bias that
//!    drifts with grid conduction (an envelope of the positive excursion shifts the
//!    operating point, so heavy playing "blocks" a little), and is followed by coupling
//!    highpass / Miller lowpass filtering. The first interstage highpass (110 Hz) tightens
//!    the bass before the heavy stages, as high-gain amps do. Makeup gain keeps low gain
//!    settings at unity level;
//! 3. passive-style tone stack: fixed mid scoop, bass and treble shelves tilted by `tone`;
//! 4. power amp: supply sag (an envelope lowers the drive) into a soft clipper;
//! 5. cabinet: 80 Hz highpass, ~110 Hz resonance, 400 Hz dip, 2.5 kHz presence bump and a
//!    4th-order lowpass at 5 kHz plus a 9 kHz notch-like rolloff.
//!
//! The amp itself is [`TubeAmp::latency_samples`] late as alignment sees it: the
//! oversampler's linear-phase delay plus the phase-aligned delay of its minimum-phase
//! filters. [`run_reference_amp`] pads that to [`REFERENCE_DEVICE_LATENCY_SAMPLES`].

mod compressor;

pub use compressor::{reference_compressor_knobs, CompressorSettings, Detector, ReferenceCompressor};

use crate::align::correlation_band_weight;
use crate::dsp::{db_to_gain, sanitize, Biquad, OnePole, OnePoleKind, Oversampler};
use crate::profile::KnobDescriptor;

/// Total latency of [`run_reference_amp`] ("the device as captured"), in samples.
pub const REFERENCE_DEVICE_LATENCY_SAMPLES: usize = 37;
/// Longest filter delay searched by [`TubeAmp::latency_samples`], in samples.
const MAX_FILTER_DELAY_SAMPLES: usize = 64;
/// Oversampling factor of the preamp.
const OVERSAMPLING: usize = 4;
/// Output level after the cabinet (keeps full-scale high-gain peaks around 0.9).
const OUTPUT_GAIN_DB: f32 = -7.0;

/// Triode-like transfer curve with unit slope at 0: hard-ish limit at +1 (grid conduction),
/// softer and later on the negative side (cutoff), which makes even harmonics.
#[inline]
fn triode(v: f32) -> f32 {
    if v >= 0.0 {
        v.tanh()
    } else {
        (0.7 * v).tanh() / 0.7
    }
}

/// Slope of [`triode`] at `v` (for makeup gain).
fn triode_slope(v: f32) -> f32 {
    let k = if v >= 0.0 { 1.0 } else { 0.7 };
    1.0 - (k * v).tanh().powi(2)
}

/// One oversampled preamp stage: drive, biased waveshaper with drifting bias, filters.
#[derive(Clone, Debug)]
struct GainStage {
    drive: f32,
    bias: f32,
    /// Grid-conduction envelope (positive excursion), and its attack/release coefficients.
    envelope: f32,
    attack: f32,
    release: f32,
    coupling: OnePole,
    miller: OnePole,
}

/// Bias shift per unit of grid-conduction envelope.
const BIAS_SHIFT: f32 = 0.35;

impl GainStage {
    fn new(rate_hz: f32, drive_db: f32, bias: f32, highpass_hz: f32, lowpass_hz: f32) -> Self {
        let coefficient = |ms: f32| 1.0 - (-1000.0 / (ms * rate_hz)).exp();
        Self {
            drive: db_to_gain(drive_db),
            bias,
            envelope: 0.0,
            attack: coefficient(3.0),
            release: coefficient(60.0),
            coupling: OnePole::new(OnePoleKind::Highpass, rate_hz, highpass_hz),
            miller: OnePole::new(OnePoleKind::Lowpass, rate_hz, lowpass_hz),
        }
    }

    /// Phase of the stage's filters at `frequency_hz`, in radians.
    fn phase_rad(&self, rate_hz: f32, frequency_hz: f32) -> f64 {
        self.coupling.phase_rad(rate_hz, frequency_hz) + self.miller.phase_rad(rate_hz, frequency_hz)
    }

    /// Small-signal gain at rest.
    fn small_signal_gain(&self) -> f32 {
        self.drive * triode_slope(self.bias)
    }

    #[inline]
    fn process_sample(&mut self, x: f32) -> f32 {
        let operating_point = self.bias - BIAS_SHIFT * self.envelope;
        let v = self.drive * x + operating_point;
        let conduction = v.max(0.0);
        let rate = if conduction > self.envelope {
            self.attack
        } else {
            self.release
        };
        self.envelope += rate * (conduction - self.envelope);
        let y = triode(v) - triode(self.bias);
        self.miller.process_sample(self.coupling.process_sample(y))
    }

    fn reset(&mut self) {
        self.envelope = 0.0;
        self.coupling.reset();
        self.miller.reset();
    }
}

/// The reference tube amp and cabinet (see the module docs for the signal path).
#[derive(Clone, Debug)]
pub struct TubeAmp {
    input_highpass: Biquad,
    oversampler: Oversampler,
    stages: [GainStage; 3],
    makeup: f32,
    tone_stack: [Biquad; 3],
    sag_envelope: f32,
    sag_attack: f32,
    sag_release: f32,
    cabinet: [Biquad; 7],
    output_gain: f32,
    /// Latency as alignment sees it, in (fractional) samples.
    apparent_latency_samples: f64,
}

impl TubeAmp {
    /// An amp at `sample_rate` Hz with `gain` and `tone` knobs on 0..10 (clamped): gain 0 is
    /// nearly clean, 10 is high-gain distortion; tone 0 is dark, 10 bright.
    pub fn new(sample_rate: f32, gain: f32, tone: f32) -> Self {
        let gain = if gain.is_finite() { gain.clamp(0.0, 10.0) } else { 5.0 };
        let tone = if tone.is_finite() { tone.clamp(0.0, 10.0) } else { 5.0 };
        let sr = sample_rate;
        let os = sr * OVERSAMPLING as f32;
        let stages = [
            GainStage::new(os, -14.0 + 3.0 * gain, 0.1, 110.0, 12_000.0),
            GainStage::new(os, -10.0 + 2.8 * gain, -0.15, 40.0, 8_000.0),
            GainStage::new(os, -8.0 + 1.8 * gain, 0.2, 30.0, 6_500.0),
        ];
        let chain_gain: f32 = stages.iter().map(GainStage::small_signal_gain).product();
        let makeup = 1.0 / chain_gain.min(1.0);
        let tilt = (tone - 5.0) / 5.0;
        let tone_stack = [
            Biquad::low_shelf(sr, 150.0, 0.7, -4.0 * tilt + 1.0),
            Biquad::peaking(sr, 650.0, 0.8, -4.0 - 1.5 * tilt.abs()),
            Biquad::high_shelf(sr, 2_200.0, 0.7, 8.0 * tilt + 1.0),
        ];
        let coefficient = |ms: f32| 1.0 - (-1000.0 / (ms * sr)).exp();
        let cabinet = [
            Biquad::highpass(sr, 80.0, 0.8),
            Biquad::peaking(sr, 110.0, 1.6, 5.0),
            Biquad::peaking(sr, 400.0, 1.0, -3.0),
            Biquad::peaking(sr, 2_500.0, 1.4, 4.0),
            Biquad::lowpass(sr, 5_000.0, 0.54),
            Biquad::lowpass(sr, 5_000.0, 1.31),
            Biquad::peaking(sr, 9_000.0, 0.7, -12.0),
        ];
        let mut amp = Self {
            input_highpass: Biquad::highpass(sr, 25.0, 0.707),
            oversampler: Oversampler::new(OVERSAMPLING),
            stages,
            makeup,
            tone_stack,
            sag_envelope: 0.0,
            sag_attack: coefficient(8.0),
            sag_release: coefficient(150.0),
            cabinet,
            output_gain: db_to_gain(OUTPUT_GAIN_DB),
            apparent_latency_samples: 0.0,
        };
        amp.apparent_latency_samples = amp.oversampler.latency_samples() as f64 + amp.filter_delay_samples(sr);
        amp
    }

    /// Phase of the amp's small-signal (linear) path at `frequency_hz`, excluding the
    /// oversampler's pure delay, in radians (sum of the filter phases, not unwrapped).
    fn filter_phase_rad(&self, sample_rate: f32, frequency_hz: f32) -> f64 {
        let os = sample_rate * OVERSAMPLING as f32;
        self.input_highpass.coefficients().phase_rad(sample_rate, frequency_hz)
            + self.stages.iter().map(|s| s.phase_rad(os, frequency_hz)).sum::<f64>()
            + self
                .tone_stack
                .iter()
                .chain(&self.cabinet)
                .map(|b| b.coefficients().phase_rad(sample_rate, frequency_hz))
                .sum::<f64>()
    }

    /// The delay (to 0.01 sample) that best lines up the filters' phase over the band that
    /// [`estimate_latency`](crate::align::estimate_latency) correlates, weighted the same way:
    /// the delay alignment sees on top of the oversampler's.
    fn filter_delay_samples(&self, sample_rate: f32) -> f64 {
        const GRID: usize = 4_096;
        let bins: Vec<(f64, f64, f64)> = (1..GRID / 2)
            .map(|k| k as f64 / GRID as f64)
            .map(|fraction| (fraction, correlation_band_weight(fraction)))
            .filter(|(_, weight)| *weight > 0.0)
            .map(|(fraction, weight)| {
                (
                    fraction,
                    weight,
                    self.filter_phase_rad(sample_rate, (fraction * sample_rate as f64) as f32),
                )
            })
            .collect();
        let score = |lag: f64| -> f64 {
            bins.iter()
                .map(|(fraction, weight, phase)| weight * (phase + std::f64::consts::TAU * fraction * lag).cos())
                .sum()
        };
        let best = |candidates: &mut dyn Iterator<Item = f64>| {
            candidates
                .map(|lag| (lag, score(lag)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0.0, |(lag, _)| lag)
        };
        let coarse = best(&mut (0..=MAX_FILTER_DELAY_SAMPLES).map(|lag| lag as f64));
        best(&mut (-100..=100).map(|step| coarse + step as f64 * 0.01)).max(0.0)
    }

    /// Latency of the amp as alignment sees it, in (fractional) samples: the oversampler's
    /// pure delay plus the phase-aligned delay of its minimum-phase filters (depends on
    /// sample rate and tone; about 27 at 48 kHz).
    pub fn apparent_latency_samples(&self) -> f64 {
        self.apparent_latency_samples
    }

    /// [`Self::apparent_latency_samples`] rounded to whole samples.
    pub fn latency_samples(&self) -> usize {
        self.apparent_latency_samples.round() as usize
    }

    /// Processes `input` into `output` (same length). NaN/Inf input samples count as 0.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) {
        debug_assert_eq!(input.len(), output.len());
        for (x, y) in input.iter().zip(output.iter_mut()) {
            let x = self.input_highpass.process_sample(sanitize(*x));
            let stages = &mut self.stages;
            let pre = self
                .oversampler
                .process_sample(x, |v| stages.iter_mut().fold(v, |s, st| st.process_sample(s)));
            let mut s = pre * self.makeup;
            for filter in &mut self.tone_stack {
                s = filter.process_sample(s);
            }
            // Power amp: sag lowers the drive as the envelope rises, then a soft clip.
            let level = s.abs();
            let rate = if level > self.sag_envelope {
                self.sag_attack
            } else {
                self.sag_release
            };
            self.sag_envelope += rate * (level - self.sag_envelope);
            let drive = 0.6 / (1.0 + 0.3 * self.sag_envelope);
            s = triode(drive * s) / 0.6;
            for filter in &mut self.cabinet {
                s = filter.process_sample(s);
            }
            *y = sanitize(s * self.output_gain);
        }
    }

    /// Clears all state (filters, envelopes, oversampler history).
    pub fn reset(&mut self) {
        self.input_highpass.reset();
        self.oversampler.reset();
        self.stages.iter_mut().for_each(GainStage::reset);
        self.tone_stack.iter_mut().for_each(Biquad::reset);
        self.cabinet.iter_mut().for_each(Biquad::reset);
        self.sag_envelope = 0.0;
    }
}

/// The reference amp's knobs, in model input order: gain and tone, both 0..10, default 5.
pub fn reference_amp_knobs() -> Vec<KnobDescriptor> {
    ["gain", "tone"]
        .into_iter()
        .map(|name| KnobDescriptor {
            name: name.into(),
            min: 0.0,
            max: 10.0,
            default: 5.0,
            unit: String::new(),
        })
        .collect()
}

/// Runs the reference device on `input`: a fresh [`TubeAmp`] followed by a pure delay, so
/// that the whole device is [`REFERENCE_DEVICE_LATENCY_SAMPLES`] late: the amp's own
/// latency as alignment sees it ([`TubeAmp::apparent_latency_samples`], about 27 samples at
/// 48 kHz) plus the rest as an interface-like delay (whole samples plus a linearly
/// interpolated fraction). Same length as `input`.
pub fn run_reference_amp(input: &[f32], sample_rate: u32, gain: f32, tone: f32) -> Vec<f32> {
    let mut amp = TubeAmp::new(sample_rate as f32, gain, tone);
    let mut processed = vec![0.0; input.len()];
    amp.process(input, &mut processed);
    // Pad to exactly the stated latency: a whole-sample delay plus a linear-interpolation
    // fraction (linear phase, 0.9 dB droop at 7 kHz for half a sample at 48 kHz).
    let pad = (REFERENCE_DEVICE_LATENCY_SAMPLES as f64 - amp.apparent_latency_samples()).max(0.0);
    let (whole, fraction) = (pad.floor() as usize, (pad - pad.floor()) as f32);
    (0..input.len())
        .map(|n| {
            let at = |k: usize| n.checked_sub(k).map_or(0.0, |i| processed[i]);
            (1.0 - fraction) * at(whole) + fraction * at(whole + 1)
        })
        .collect()
}

#[cfg(test)]
mod tests;

/// The reference amp behind an audio interface's round trip, for profiling tests and
/// benchmarks: what a plugin sends out comes back `round_trip_samples` later through a
/// [`TubeAmp`], plus uniform noise (an interface's floor). Send before receiving: a block's
/// return holds what was sent at least a round trip earlier.
pub struct ReampedAmp {
    amp: TubeAmp,
    /// The return still to come back, oldest first.
    in_flight: std::collections::VecDeque<f32>,
    noise_state: u32,
    noise_level: f32,
    round_trip_samples: usize,
}

impl ReampedAmp {
    /// The amp at `sample_rate` Hz with `gain` and `tone` (0..10), a round trip of
    /// `round_trip_samples` (at least one block) and noise of `noise_level` peak.
    pub fn new(sample_rate: f32, gain: f32, tone: f32, round_trip_samples: usize, noise_level: f32) -> Self {
        ReampedAmp {
            amp: TubeAmp::new(sample_rate, gain, tone),
            in_flight: std::iter::repeat_n(0.0, round_trip_samples).collect(),
            noise_state: 12_345,
            noise_level,
            round_trip_samples,
        }
    }

    /// The whole chain's latency as alignment sees it: the round trip plus the amp's own.
    pub fn latency_samples(&self) -> f64 {
        self.round_trip_samples as f64 + self.amp.apparent_latency_samples()
    }

    /// The amp alone (no round trip, no noise), fresh: what the chain stands for.
    pub fn device(&self) -> TubeAmp {
        let mut amp = self.amp.clone();
        amp.reset();
        amp
    }

    /// What comes back during the next `len` samples into `out`.
    pub fn receive(&mut self, out: &mut [f32]) {
        for y in out.iter_mut() {
            self.noise_state ^= self.noise_state << 13;
            self.noise_state ^= self.noise_state >> 17;
            self.noise_state ^= self.noise_state << 5;
            let noise = (self.noise_state as f32 / u32::MAX as f32 * 2.0 - 1.0) * self.noise_level;
            *y = self.in_flight.pop_front().unwrap_or(0.0) + noise;
        }
    }

    /// Sends `output` into the amp.
    pub fn send(&mut self, output: &[f32]) {
        let mut processed = vec![0.0; output.len()];
        self.amp.process(output, &mut processed);
        self.in_flight.extend(processed);
    }
}
