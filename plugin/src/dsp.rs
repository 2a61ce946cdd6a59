//! The per-block signal path, on plain slices: input gain, the model (one kernel per channel,
//! or a stereo-linked one whose gain, found from both channels first, applies to each; in
//! sub-blocks), dry/wet mix against the latency-aligned dry signal, output gain, bypass
//! crossfade and sanitising. Audio thread (`prepare` on the host's main thread).
//!
//! Signal flow per channel, with `x` the sanitised input and `d` it delayed by the model's
//! latency: `y = out_gain * ((1 - mix) * d + mix * model(in_gain * x))`, then
//! `out = (1 - b) * y + b * d` with `b` the bypass crossfade (0..1). Without a model,
//! `model(v) = v`. Every output sample is finite and never subnormal.

use std::sync::atomic::Ordering;

use atomic_float::AtomicF32;
use doppel_engine::model::MAX_KNOBS;
use nice_plug::prelude::{Smoother, SmoothingStyle};
use nice_plug::util::db_to_gain;

use crate::params::{BYPASS_FADE_MS, GAIN_SMOOTHING_MS, MIX_SMOOTHING_MS};
use crate::swap::{LoadedModel, ModelPlayer, MAX_CHANNELS, SUB_BLOCK_SAMPLES, SWAP_FADE_MS};

/// Largest magnitude fed to a model (+24 dBFS); louder (finite) input is clipped there.
pub const MODEL_INPUT_LIMIT: f32 = 16.0;

/// Target values for one block, in plain units (the processor smooths towards them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Controls {
    /// Gain before the model, in dB.
    pub input_gain_db: f32,
    /// Gain after the mix, in dB.
    pub output_gain_db: f32,
    /// Dry/wet mix, 0 (dry) ..1 (wet).
    pub mix: f32,
    /// Bypass engaged.
    pub bypass: bool,
    /// Normalised model knobs, 0..1, in model input order.
    pub knobs: [f32; MAX_KNOBS],
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            input_gain_db: 0.0,
            output_gain_db: 0.0,
            mix: 1.0,
            bypass: false,
            knobs: [0.5; MAX_KNOBS],
        }
    }
}

/// Peak levels (linear amplitude) since the GUI last read them. Written by the audio thread,
/// read and cleared by the GUI.
#[derive(Debug, Default)]
pub struct Meters {
    /// Main input, before the input gain.
    pub input_peak: AtomicF32,
    /// Main output.
    pub output_peak: AtomicF32,
    /// The "Capture Return" sidechain (the captured device's output, not used by the effect yet).
    pub capture_return_peak: AtomicF32,
    /// The host's sample rate in Hz as of the last activation (0 before the first).
    pub host_sample_rate_hz: AtomicF32,
}

impl Meters {
    /// Reads and clears a peak (GUI thread).
    pub fn take(peak: &AtomicF32) -> f32 {
        peak.swap(0.0, Ordering::Relaxed)
    }
}

/// Zero for NaN, infinities and subnormals; the value otherwise.
#[inline]
pub fn sanitize(x: f32) -> f32 {
    if x.is_finite() && x.abs() >= f32::MIN_POSITIVE {
        x
    } else {
        0.0
    }
}

/// Peak magnitude of `samples` (0 for an empty slice), ignoring non-finite values.
fn peak(samples: &[f32]) -> f32 {
    samples.iter().map(|x| sanitize(*x).abs()).fold(0.0, f32::max)
}

/// Doppel's signal path. Everything is sized at construction; `process` never allocates.
pub struct Processor {
    player: ModelPlayer,
    meters: std::sync::Arc<Meters>,
    sample_rate_hz: f32,
    input_gain: Smoother<f32>,
    output_gain: Smoother<f32>,
    mix: Smoother<f32>,
    knobs: [Smoother<f32>; MAX_KNOBS],
    /// Current knob values handed to the model (normalised).
    knob_values: [f32; MAX_KNOBS],
    /// Targets last given to the smoothers (a ramp restarts only when a target changes).
    targets: Controls,
    bypass_amount: f32,
    /// Whether `process` meters its output.
    own_output_metering: bool,
    /// Per-sample control curves of the current sub-block.
    input_gain_curve: [f32; SUB_BLOCK_SAMPLES],
    output_gain_curve: [f32; SUB_BLOCK_SAMPLES],
    mix_curve: [f32; SUB_BLOCK_SAMPLES],
    bypass_curve: [f32; SUB_BLOCK_SAMPLES],
    /// Per-channel scratch: sanitised input, delayed dry input, input after the gain, model
    /// input, model output, and the output of a model fading out.
    input: [f32; SUB_BLOCK_SAMPLES],
    dry: [f32; SUB_BLOCK_SAMPLES],
    gained: [f32; SUB_BLOCK_SAMPLES],
    model_in: [f32; SUB_BLOCK_SAMPLES],
    model_out: [f32; SUB_BLOCK_SAMPLES],
    fade_out: [f32; SUB_BLOCK_SAMPLES],
    /// A linked model's inputs, both channels, for its side chain.
    link_in: [[f32; SUB_BLOCK_SAMPLES]; 2],
}

impl Processor {
    /// A processor playing whatever `player` plays, reporting levels to `meters`.
    pub fn new(player: ModelPlayer, meters: std::sync::Arc<Meters>) -> Self {
        let mut processor = Processor {
            player,
            meters,
            sample_rate_hz: 48_000.0,
            input_gain: Smoother::new(SmoothingStyle::Logarithmic(GAIN_SMOOTHING_MS)),
            output_gain: Smoother::new(SmoothingStyle::Logarithmic(GAIN_SMOOTHING_MS)),
            mix: Smoother::new(SmoothingStyle::Linear(MIX_SMOOTHING_MS)),
            knobs: std::array::from_fn(|_| Smoother::new(SmoothingStyle::Linear(MIX_SMOOTHING_MS))),
            knob_values: [0.5; MAX_KNOBS],
            targets: Controls::default(),
            bypass_amount: 0.0,
            own_output_metering: true,
            input_gain_curve: [1.0; SUB_BLOCK_SAMPLES],
            output_gain_curve: [1.0; SUB_BLOCK_SAMPLES],
            mix_curve: [1.0; SUB_BLOCK_SAMPLES],
            bypass_curve: [0.0; SUB_BLOCK_SAMPLES],
            input: [0.0; SUB_BLOCK_SAMPLES],
            dry: [0.0; SUB_BLOCK_SAMPLES],
            gained: [0.0; SUB_BLOCK_SAMPLES],
            model_in: [0.0; SUB_BLOCK_SAMPLES],
            model_out: [0.0; SUB_BLOCK_SAMPLES],
            fade_out: [0.0; SUB_BLOCK_SAMPLES],
            link_in: [[0.0; SUB_BLOCK_SAMPLES]; 2],
        };
        processor.prepare(48_000.0, &Controls::default());
        processor
    }

    /// Sets the sample rate and jumps every smoothed value to `controls` (no ramp). Real-time
    /// safe (it only stores values).
    pub fn prepare(&mut self, sample_rate_hz: f32, controls: &Controls) {
        self.sample_rate_hz = sample_rate_hz.max(1.0);
        self.meters
            .host_sample_rate_hz
            .store(self.sample_rate_hz, Ordering::Relaxed);
        self.input_gain.reset(db_to_gain(sanitize_db(controls.input_gain_db)));
        self.output_gain.reset(db_to_gain(sanitize_db(controls.output_gain_db)));
        self.mix.reset(sanitize_unit(controls.mix));
        self.knob_values = controls.knobs.map(sanitize_unit);
        for (smoother, value) in self.knobs.iter().zip(self.knob_values) {
            smoother.reset(value);
        }
        self.targets = *controls;
        self.bypass_amount = if controls.bypass { 1.0 } else { 0.0 };
        self.player.mark_fresh();
    }

    /// Jumps every smoothed value to `controls` (bypass included), ends a model crossfade,
    /// then returns the model to its warm state (a copy, see [`LoadedModel::reset`]) and
    /// clears the dry delays. Real-time safe; costs no model evaluation.
    pub fn reset(&mut self, controls: &Controls) {
        self.prepare(self.sample_rate_hz, controls);
        let knobs = self.knob_values;
        self.player.finish_fade();
        self.player.current_mut().reset(&knobs);
        self.player.publish_knobs(&knobs);
    }

    /// The knob values handed to the model now (normalised), e.g. to warm the next one.
    pub fn knob_values(&self) -> [f32; MAX_KNOBS] {
        self.knob_values
    }

    /// The model playing now (pass-through when its `meta` is `None`).
    pub fn model(&self) -> &LoadedModel {
        self.player.current()
    }

    /// Processes `channels` (each the same length, any length, in place) towards `controls`.
    /// Channels past [`crate::swap::MAX_CHANNELS`] pass through the gains without a model. Swaps in a newly
    /// posted model first. Real-time safe.
    pub fn process(&mut self, channels: &mut [&mut [f32]], controls: &Controls) {
        self.player.poll();
        self.player.publish_knobs(&self.knob_values);
        let num_samples = channels.iter().map(|c| c.len()).min().unwrap_or(0);
        let input_peak = channels.iter().map(|c| peak(c)).fold(0.0, f32::max);
        self.meters.input_peak.fetch_max(input_peak, Ordering::Relaxed);

        self.set_targets(controls);
        let bypass_target = if controls.bypass { 1.0 } else { 0.0 };
        let bypass_step = 1.0 / (BYPASS_FADE_MS * 0.001 * self.sample_rate_hz).max(1.0);

        let mut start = 0;
        while start < num_samples {
            let len = (num_samples - start).min(SUB_BLOCK_SAMPLES);
            self.fill_curves(len, bypass_target, bypass_step);
            for knob in 0..MAX_KNOBS {
                self.knob_values[knob] = self.knobs[knob].next_step(len as u32);
            }
            self.run_links(channels, start, len);
            for (index, channel) in channels.iter_mut().enumerate() {
                self.process_channel(index, &mut channel[start..start + len]);
            }
            self.player.advance_fade(len, self.swap_fade_samples());
            start += len;
        }
        if num_samples > 0 {
            self.player.mark_played();
        }

        if self.own_output_metering {
            self.meter_output(channels);
        }
    }

    /// Meters `channels` as the plugin's output. Real-time safe.
    pub fn meter_output(&self, channels: &[&mut [f32]]) {
        let output_peak = channels.iter().map(|c| peak(c)).fold(0.0, f32::max);
        self.meters.output_peak.fetch_max(output_peak, Ordering::Relaxed);
    }

    /// Whether `process` meters its own output (the default); a caller that changes the output
    /// afterwards (the capture deck) turns it off and meters the final output itself.
    pub fn set_output_metering(&mut self, on: bool) {
        self.own_output_metering = on;
    }

    /// Looks at the "Capture Return" sidechain: the seam where a captured device's output will
    /// feed capture and training. For now it is only metered; the effect does not use it.
    /// Real-time safe.
    pub fn observe_capture_return<S: AsRef<[f32]>>(&mut self, channels: &[S]) {
        let level = channels.iter().map(|c| peak(c.as_ref())).fold(0.0, f32::max);
        self.meters.capture_return_peak.fetch_max(level, Ordering::Relaxed);
    }

    fn set_targets(&mut self, controls: &Controls) {
        let sr = self.sample_rate_hz;
        let old = std::mem::replace(&mut self.targets, *controls);
        // `!=` is also true for NaN, which then sanitises to a safe target.
        if controls.input_gain_db != old.input_gain_db {
            self.input_gain
                .set_target(sr, db_to_gain(sanitize_db(controls.input_gain_db)));
        }
        if controls.output_gain_db != old.output_gain_db {
            self.output_gain
                .set_target(sr, db_to_gain(sanitize_db(controls.output_gain_db)));
        }
        if controls.mix != old.mix {
            self.mix.set_target(sr, sanitize_unit(controls.mix));
        }
        for (knob, smoother) in self.knobs.iter().enumerate() {
            if controls.knobs[knob] != old.knobs[knob] {
                smoother.set_target(sr, sanitize_unit(controls.knobs[knob]));
            }
        }
    }

    fn fill_curves(&mut self, len: usize, bypass_target: f32, bypass_step: f32) {
        for i in 0..len {
            self.input_gain_curve[i] = self.input_gain.next();
            self.output_gain_curve[i] = self.output_gain.next();
            self.mix_curve[i] = self.mix.next();
            let delta = (bypass_target - self.bypass_amount).clamp(-bypass_step, bypass_step);
            self.bypass_amount += delta;
            self.bypass_curve[i] = self.bypass_amount;
        }
    }

    /// Length of a model crossfade, in samples.
    fn swap_fade_samples(&self) -> usize {
        ((SWAP_FADE_MS * 0.001 * self.sample_rate_hz) as usize).max(1)
    }

    /// A stereo-linked model (playing, or fading out) hears both channels before either is
    /// processed: its side chain turns the sub-block's two model inputs into one gain curve,
    /// which [`run_model`] then applies to each channel. A mono track feeds its channel as
    /// both. Real-time safe.
    fn run_links(&mut self, channels: &[&mut [f32]], start: usize, len: usize) {
        let fully_bypassed = self.bypass_amount >= 1.0 && self.bypass_curve[0] >= 1.0;
        if fully_bypassed || channels.is_empty() {
            return;
        }
        let (current, fading) = self.player.models_mut();
        let knobs = &self.knob_values;
        for model in std::iter::once(current).chain(fading.map(|(old, _)| old)) {
            if !model.is_linked() {
                continue;
            }
            for (c, side) in self.link_in.iter_mut().enumerate() {
                let source = &channels[c.min(channels.len() - 1)][start..start + len];
                for ((m, &x), &g) in side.iter_mut().zip(source).zip(&self.input_gain_curve) {
                    *m = (sanitize(x) * g * model.input_calibration_gain).clamp(-MODEL_INPUT_LIMIT, MODEL_INPUT_LIMIT);
                }
            }
            let num_knobs = model.num_knobs();
            let [left, right] = &self.link_in;
            let gain = &mut model.linked_gain[..len];
            if let Some(linked) = model.kernels.first_mut().and_then(|k| k.linked_mut()) {
                linked.linked_gain(&left[..len], &right[..len], &knobs[..num_knobs], gain);
            }
        }
    }

    fn process_channel(&mut self, index: usize, samples: &mut [f32]) {
        let len = samples.len();
        let fade_samples = self.swap_fade_samples();
        for (i, x) in samples.iter().enumerate() {
            let x = sanitize(*x);
            self.input[i] = x;
            self.gained[i] = x * self.input_gain_curve[i];
        }
        let fully_bypassed = self.bypass_amount >= 1.0 && self.bypass_curve[0] >= 1.0;
        let (current, fading) = self.player.models_mut();
        for i in 0..len {
            self.dry[i] = match current.dry_delays.get_mut(index) {
                Some(delay) => delay.process(self.input[i]),
                None => self.input[i],
            };
        }
        let knobs = &self.knob_values;
        let (gained, model_in) = (&self.gained[..len], &mut self.model_in[..len]);
        run_model(
            current,
            index,
            gained,
            knobs,
            fully_bypassed,
            model_in,
            &mut self.model_out[..len],
        );
        if let Some((old, position)) = fading {
            // Both models play through the fade, each in its own time: the old one's dry delay
            // advances too, so that it is in step should it be faded back in.
            if let Some(delay) = old.dry_delays.get_mut(index) {
                for &x in &self.input[..len] {
                    delay.process(x);
                }
            }
            run_model(
                old,
                index,
                gained,
                knobs,
                fully_bypassed,
                model_in,
                &mut self.fade_out[..len],
            );
            for (i, (new, old)) in self.model_out[..len].iter_mut().zip(&self.fade_out[..len]).enumerate() {
                let done = position + i + 1;
                if done < fade_samples {
                    let a = done as f32 / fade_samples as f32;
                    *new = old + a * (*new - old);
                }
            }
        }
        for (i, out) in samples.iter_mut().enumerate() {
            let dry = self.dry[i];
            let wet = sanitize(self.model_out[i]);
            let mix = self.mix_curve[i];
            let y = self.output_gain_curve[i] * ((1.0 - mix) * dry + mix * wet);
            let b = self.bypass_curve[i];
            *out = sanitize((1.0 - b) * y + b * dry);
        }
    }
}

/// Runs channel `index` of `model` on `gained` (the input after the input gain) into `out`,
/// with its calibration gains: the model's kernel, or the input itself without one or when
/// bypassed. A kernel whose output turns non-finite is reset to its warm state (a copy).
/// Real-time safe.
fn run_model(
    model: &mut LoadedModel,
    index: usize,
    gained: &[f32],
    knobs: &[f32; MAX_KNOBS],
    bypassed: bool,
    model_in: &mut [f32],
    out: &mut [f32],
) {
    let num_knobs = model.num_knobs();
    let (input_calibration, output_calibration) = (model.input_calibration_gain, model.output_calibration_gain);
    if model.is_linked() && index < MAX_CHANNELS && !bypassed {
        // The gain [`Processor::run_links`] found from both channels.
        for ((o, g), &gain) in out.iter_mut().zip(gained).zip(&model.linked_gain) {
            *o = (g * input_calibration).clamp(-MODEL_INPUT_LIMIT, MODEL_INPUT_LIMIT) * gain * output_calibration;
        }
        return;
    }
    if model.is_linked() {
        // Channels past the pair pass through.
        for (o, g) in out.iter_mut().zip(gained) {
            *o = (g * input_calibration).clamp(-MODEL_INPUT_LIMIT, MODEL_INPUT_LIMIT);
        }
        return;
    }
    match model.kernels.get_mut(index) {
        Some(kernel) if !bypassed => {
            for (m, g) in model_in.iter_mut().zip(gained) {
                *m = (g * input_calibration).clamp(-MODEL_INPUT_LIMIT, MODEL_INPUT_LIMIT);
            }
            kernel.process(model_in, &knobs[..num_knobs], out);
            if out.iter().any(|v| !v.is_finite()) {
                // A diverged state would stay diverged: start the kernel over.
                kernel.reset_warm(&knobs[..num_knobs]);
            }
            for y in out.iter_mut() {
                *y *= output_calibration;
            }
        }
        _ => {
            for (o, g) in out.iter_mut().zip(gained) {
                *o = (g * input_calibration).clamp(-MODEL_INPUT_LIMIT, MODEL_INPUT_LIMIT);
            }
        }
    }
}

/// A finite dB value (non-finite: 0 dB), clamped to ±96 dB.
fn sanitize_db(db: f32) -> f32 {
    if db.is_finite() {
        db.clamp(-96.0, 96.0)
    } else {
        0.0
    }
}

/// A finite 0..1 value (non-finite: 0).
fn sanitize_unit(x: f32) -> f32 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}
