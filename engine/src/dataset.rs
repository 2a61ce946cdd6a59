//! Training data: capture pairs (clean input, device output) read from WAV files, checked,
//! aligned for the device's latency and tagged with knob values. Trainer/CLI thread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

use crate::align::{align_pair, estimate_latency, pre_ring_samples};
use crate::model::MAX_KNOBS;
use crate::profile::{KnobDescriptor, TrainingSummary};
use crate::signal::noise_range;
use crate::signal::replicate_ranges;
use crate::wav::{read_wav_channels, WavAudio};

mod replicate;

pub use replicate::{replicate_esr, replicate_note, REPLICATE_ESR_LIMIT};

/// RMS below this (about -100 dBFS) counts as silence.
const SILENCE_RMS: f32 = 1e-5;

/// One aligned capture: `target[n]` is the device's response to `input[n]`.
#[derive(Clone, Debug)]
pub struct CapturePair {
    /// Clean signal that went into the device.
    pub input: Vec<f32>,
    /// What came back, shifted so it lines up with `input`.
    pub target: Vec<f32>,
    /// Knob values in the knobs' own units, in [`Dataset::knobs`] order.
    pub knob_values: Vec<f32>,
    /// Device latency removed by alignment, in samples (positive: target was late).
    pub latency_samples: i64,
    /// A stereo capture's right channel, aligned the same way (`input` and `target` then
    /// hold the left channel); `None` for mono.
    pub right: Option<ChannelPair>,
}

/// One more channel of a capture pair.
#[derive(Clone, Debug)]
pub struct ChannelPair {
    /// Clean signal that went into the device.
    pub input: Vec<f32>,
    /// What came back, aligned.
    pub target: Vec<f32>,
}

impl CapturePair {
    /// The pair's channels: `(input, target)` per channel, left first.
    pub fn channels(&self) -> Vec<(&[f32], &[f32])> {
        let mut channels = vec![(self.input.as_slice(), self.target.as_slice())];
        if let Some(right) = &self.right {
            channels.push((&right.input, &right.target));
        }
        channels
    }
}

/// A set of aligned captures at one sample rate with the knobs they vary.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Sample rate of every capture, in Hz.
    pub sample_rate: u32,
    /// The knobs, in model input order.
    pub knobs: Vec<KnobDescriptor>,
    /// The captures.
    pub pairs: Vec<CapturePair>,
    /// Notes worth showing the user (downmixes, inferred ranges).
    pub notes: Vec<String>,
    /// Samples by which each target was left late of its measured latency (see
    /// [`LoadOptions::margin`]): the latency of a profile trained on it.
    pub alignment_margin_samples: i64,
    /// Whether the captures are kept as stereo pairs (see [`LoadOptions::keep_stereo`]):
    /// every pair then has its right channel, and captures fed later are aligned the same way.
    pub stereo: bool,
}

impl Dataset {
    /// Audio channels of every capture: 2 when stereo captures were kept apart (see
    /// [`LoadOptions::keep_stereo`]), else 1.
    pub fn channels(&self) -> usize {
        if self.stereo {
            2
        } else {
            1
        }
    }

    /// Knob values of pair `i`, normalised to the model's 0..1 inputs.
    pub fn normalized_knobs(&self, i: usize) -> Vec<f32> {
        self.knobs
            .iter()
            .zip(&self.pairs[i].knob_values)
            .map(|(k, &v)| k.normalize(v))
            .collect()
    }

    /// Total aligned audio, in seconds.
    pub fn seconds(&self) -> f32 {
        self.pairs.iter().map(|p| p.input.len()).sum::<usize>() as f32 / self.sample_rate as f32
    }

    /// Aligned audio that trains (each capture's held-out tail excluded), in seconds.
    pub fn training_seconds(&self, validation_fraction: f32) -> f32 {
        self.seconds() * (1.0 - validation_fraction)
    }

    /// The training summary of a run on this data before its first step: data, latencies,
    /// margin and seed.
    pub fn training_summary(&self, validation_fraction: f32, seed: u64) -> TrainingSummary {
        TrainingSummary {
            data_seconds: self.training_seconds(validation_fraction),
            device_latency_samples: self.pairs.iter().map(|p| p.latency_samples).collect(),
            alignment_margin_samples: self.alignment_margin_samples,
            seed,
            ..Default::default()
        }
    }

    /// Checks that `values` (in [`Dataset::knobs`] order) lie within the knobs' ranges;
    /// `label` names the capture in the error.
    pub fn check_knob_values(&self, values: &[f32], label: &str) -> Result<()> {
        for (knob, &value) in self.knobs.iter().zip(values) {
            ensure!(
                (knob.min..=knob.max).contains(&value),
                "capture {label} sets knob '{}' to {value}, outside its range {}..{}",
                knob.name,
                knob.min,
                knob.max
            );
        }
        Ok(())
    }
}

/// A capture to load: WAV paths plus knob values by name.
#[derive(Clone, Debug, Deserialize)]
pub struct CaptureSpec {
    /// Path of the clean input WAV.
    pub input: PathBuf,
    /// Path of the device output WAV.
    pub target: PathBuf,
    /// Knob values by name, in the knobs' units.
    #[serde(default)]
    pub knobs: BTreeMap<String, f32>,
    /// This capture's device latency in samples, when already measured (the plugin writes the
    /// round trip it found from the capture signal's clicks); estimated when absent.
    #[serde(default)]
    pub latency_samples: Option<i64>,
}

/// A knob's range as `captures.toml` may give it; missing fields are inferred.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnobRangeSpec {
    /// Lowest value.
    pub min: Option<f32>,
    /// Highest value.
    pub max: Option<f32>,
    /// Starting value.
    pub default: Option<f32>,
    /// Unit text.
    pub unit: Option<String>,
}

/// The contents of a `captures.toml`: `[[capture]]` entries and optional `[knobs.NAME]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturesFile {
    /// The captures.
    pub capture: Vec<CaptureSpec>,
    /// Optional knob ranges by name.
    #[serde(default)]
    pub knobs: BTreeMap<String, KnobRangeSpec>,
}

impl CapturesFile {
    /// Reads a `captures.toml`; relative WAV paths are taken from the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut file: CapturesFile =
            toml::from_str(&text).with_context(|| format!("bad captures file {}", path.display()))?;
        ensure!(
            !file.capture.is_empty(),
            "{} lists no [[capture]] entries",
            path.display()
        );
        let base = path.parent().unwrap_or(Path::new("."));
        for spec in &mut file.capture {
            spec.input = base.join(&spec.input);
            spec.target = base.join(&spec.target);
        }
        Ok(file)
    }
}

/// How far each target is aligned later than its measured latency (the profile's latency).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MarginPolicy {
    /// Exactly this many samples.
    Fixed(i64),
    /// What the device's pre-ringing needs ([`crate::align::pre_ring_samples`]), the largest
    /// over the captures, at most `max_samples`.
    Measured {
        /// Upper bound, in samples.
        max_samples: usize,
    },
}

/// How to load captures.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Use this device latency instead of estimating it, in samples.
    pub latency_override: Option<i64>,
    /// Largest latency searched for, in seconds.
    pub max_latency_seconds: f32,
    /// The causality margin. A device's filters can put part of its response ahead of the
    /// correlation peak that alignment finds; a causal model, which cannot look ahead,
    /// predicts that part only if the target is left late by a margin, which then becomes
    /// the profile's latency.
    pub margin: MarginPolicy,
    /// Keep stereo captures' two channels apart (a stereo-linked compressor learns from both)
    /// instead of downmixing them; mono captures among stereo ones then play as both channels.
    pub keep_stereo: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            latency_override: None,
            max_latency_seconds: 0.25,
            margin: MarginPolicy::Fixed(0),
            keep_stereo: false,
        }
    }
}

/// A capture in memory: what the plugin records, or a WAV pair once read.
#[derive(Clone, Debug)]
pub struct CaptureAudio {
    /// Clean signal that went into the device.
    pub input: WavAudio,
    /// What came back.
    pub target: WavAudio,
    /// Names of the two (file paths, or a label such as "capture 3"), for messages.
    pub input_label: PathBuf,
    /// See `input_label`.
    pub target_label: PathBuf,
    /// Knob values by name, in the knobs' units.
    pub knobs: BTreeMap<String, f32>,
    /// This capture's device latency in samples when already measured; estimated when `None`.
    pub latency_samples: Option<i64>,
    /// A stereo capture's channels kept apart, when read to keep them (`input` and `target`
    /// then hold their mono mix, which checks and alignment use).
    pub stereo: Option<StereoCapture>,
}

/// Both channels of a stereo capture.
#[derive(Clone, Debug)]
pub struct StereoCapture {
    /// The clean input's left and right channels.
    pub input: [Vec<f32>; 2],
    /// The device output's left and right channels.
    pub target: [Vec<f32>; 2],
}

impl CaptureAudio {
    /// The device latency of this capture, checked and measured: `options`' override first,
    /// then the capture's own measured latency, else estimated by cross-correlation.
    pub fn latency(&self, options: &LoadOptions) -> Result<i64> {
        measure_capture(
            (&self.input, &self.input_label),
            (&self.target, &self.target_label),
            options.latency_override.or(self.latency_samples),
            options.max_latency_seconds,
        )
    }

    /// Reads a capture's two WAV files, downmixed to mono unless `keep_stereo` and the
    /// device's output is stereo with two different channels (a mono input then plays as
    /// both; a stereo input into a mono output, or two identical channels, is downmixed).
    pub fn read(spec: &CaptureSpec, keep_stereo: bool) -> Result<Self> {
        let (input, target) = (read_wav_channels(&spec.input)?, read_wav_channels(&spec.target)?);
        let pair = |audio: &crate::wav::WavChannels| -> Option<[Vec<f32>; 2]> {
            match audio.channels.as_slice() {
                [mono] => Some([mono.clone(), mono.clone()]),
                [left, right] => Some([left.clone(), right.clone()]),
                _ => None,
            }
        };
        let dual_mono = |audio: &crate::wav::WavChannels| audio.channels.windows(2).all(|w| w[0] == w[1]);
        let stereo = match (keep_stereo, target.channels.len() == 2 && !dual_mono(&target)) {
            (true, true) => pair(&input)
                .zip(pair(&target))
                .map(|(input, target)| StereoCapture { input, target }),
            _ => None,
        };
        Ok(CaptureAudio {
            input: input.to_mono(),
            target: target.to_mono(),
            input_label: spec.input.clone(),
            target_label: spec.target.clone(),
            knobs: spec.knobs.clone(),
            latency_samples: spec.latency_samples,
            stereo,
        })
    }
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// Checks one clean-input / device-output pair (same sample rate, neither silent, lengths
/// within the latency window) and finds the device latency by cross-correlation unless
/// `latency_override` gives it. Paths only name the files in errors. Returns the latency in
/// samples (positive: the target is late).
pub fn measure_capture(
    (input, input_path): (&WavAudio, &Path),
    (target, target_path): (&WavAudio, &Path),
    latency_override: Option<i64>,
    max_latency_seconds: f32,
) -> Result<i64> {
    ensure!(
        input.sample_rate == target.sample_rate,
        "sample rate mismatch: input {} is {} Hz but target {} is {} Hz",
        input_path.display(),
        input.sample_rate,
        target_path.display(),
        target.sample_rate
    );
    ensure!(
        rms(&input.samples) > SILENCE_RMS,
        "input {} is silent",
        input_path.display()
    );
    ensure!(
        rms(&target.samples) > SILENCE_RMS,
        "target {} is silent",
        target_path.display()
    );
    let max_latency = (max_latency_seconds * input.sample_rate as f32) as usize;
    let length_difference = input.samples.len().abs_diff(target.samples.len());
    ensure!(
        length_difference <= max_latency,
        "length mismatch: input {} has {} samples, target {} has {} ({length_difference} apart, more than the {max_latency}-sample latency window)",
        input_path.display(),
        input.samples.len(),
        target_path.display(),
        target.samples.len()
    );
    Ok(match latency_override {
        Some(latency) => latency,
        None => {
            estimate_latency(&input.samples, &target.samples, max_latency)
                .with_context(|| format!("cannot find the latency of {}", target_path.display()))?
                .latency_samples
        }
    })
}

/// [`measure_capture`], then the pair aligned with the target left `margin_samples` late of
/// the latency. Returns the aligned input, the aligned target and the latency (without the
/// margin), in samples.
pub fn align_capture(
    input: (&WavAudio, &Path),
    target: (&WavAudio, &Path),
    latency_override: Option<i64>,
    max_latency_seconds: f32,
    margin_samples: i64,
) -> Result<(Vec<f32>, Vec<f32>, i64)> {
    let latency_samples = measure_capture(input, target, latency_override, max_latency_seconds)?;
    let (input, target) = align_pair(&input.0.samples, &target.0.samples, latency_samples - margin_samples);
    Ok((input, target, latency_samples))
}

/// Reads, checks and aligns every capture, and settles the knob descriptors.
pub fn load_dataset(
    specs: &[CaptureSpec],
    ranges: &BTreeMap<String, KnobRangeSpec>,
    options: &LoadOptions,
) -> Result<Dataset> {
    let captures = specs
        .iter()
        .map(|spec| CaptureAudio::read(spec, options.keep_stereo))
        .collect::<Result<Vec<_>>>()?;
    build_dataset(&captures, ranges, options)
}

/// Checks and aligns captures held in memory, and settles the knob descriptors.
pub fn build_dataset(
    captures: &[CaptureAudio],
    ranges: &BTreeMap<String, KnobRangeSpec>,
    options: &LoadOptions,
) -> Result<Dataset> {
    ensure!(!captures.is_empty(), "no captures given");
    let knob_names: Vec<String> = {
        let mut names: Vec<String> = captures.iter().flat_map(|s| s.knobs.keys().cloned()).collect();
        names.sort();
        names.dedup();
        names
    };
    ensure!(
        knob_names.len() <= MAX_KNOBS,
        "captures use {} knobs, at most {MAX_KNOBS} are supported",
        knob_names.len()
    );
    if let Some(unknown) = ranges.keys().find(|k| !knob_names.contains(k)) {
        bail!("[knobs.{unknown}] is defined but no capture sets knob '{unknown}'");
    }
    let mut notes = Vec::new();
    let sample_rate = captures[0].input.sample_rate;
    let stereo = options.keep_stereo && captures.iter().any(|c| c.stereo.is_some());
    if stereo {
        let mono = captures.iter().filter(|c| c.stereo.is_none()).count();
        notes.push(match mono {
            0 => "stereo captures: training a stereo-linked model".to_owned(),
            n => format!("stereo captures: training a stereo-linked model ({n} mono captures play as both channels)"),
        });
    }
    let mut latencies = Vec::new();
    for capture in captures {
        for name in &knob_names {
            ensure!(
                capture.knobs.contains_key(name),
                "capture {} does not set knob '{name}'",
                capture.target_label.display()
            );
        }
        for (audio, path) in [
            (&capture.input, &capture.input_label),
            (&capture.target, &capture.target_label),
        ] {
            if audio.source_channels > 1 && !(stereo && capture.stereo.is_some()) {
                notes.push(format!(
                    "{}: {} channels downmixed to mono",
                    path.display(),
                    audio.source_channels
                ));
            }
        }
        ensure!(
            sample_rate == capture.input.sample_rate,
            "captures mix sample rates ({sample_rate} Hz and {} Hz)",
            capture.input.sample_rate
        );
        let latency = capture.latency(options)?;
        if let Some(self_esr) = replicate_esr(&capture.input.samples, &capture.target.samples, latency, sample_rate) {
            notes.push(replicate_note(&capture.target_label.display().to_string(), self_esr));
        }
        latencies.push(latency);
    }
    let alignment_margin_samples = match options.margin {
        MarginPolicy::Fixed(samples) => samples,
        MarginPolicy::Measured { max_samples } => {
            let mut margin = 0;
            let mut measured = false;
            for (capture, &latency) in captures.iter().zip(&latencies) {
                let (input, target) = (&capture.input.samples, &capture.target.samples);
                // On the capture signal, its noise bursts (distortion of structured audio reads
                // as a pre-ring to a linear fit); other audio whole.
                let found = match noise_range(sample_rate, input) {
                    Some(noise) if latency + (noise.start as i64) >= 0 => {
                        pre_ring_samples(&input[noise.clone()], &target[noise.start..], latency, max_samples)
                    }
                    _ => pre_ring_samples(input, target, latency, max_samples),
                };
                if let Some(found) = found {
                    notes.push(format!(
                        "{}: input ahead of the latency explains {:.2e} of the output; margin {} samples",
                        capture.target_label.display(),
                        found.energy_ahead_fraction,
                        found.margin_samples
                    ));
                    margin = margin.max(found.margin_samples as i64);
                    measured = true;
                }
            }
            if !measured {
                notes.push("the captures are too short or quiet to measure the device's pre-ringing: margin 0 (set one with --margin)".into());
            }
            margin
        }
    };
    let mut pairs = Vec::new();
    for (capture, &latency_samples) in captures.iter().zip(&latencies) {
        pairs.push(align_measured(
            capture,
            &knob_names,
            latency_samples,
            alignment_margin_samples,
            stereo,
        )?);
    }
    let knobs = knob_names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            settle_knob(
                name,
                pairs.iter().map(|p| p.knob_values[i]),
                ranges.get(name),
                &mut notes,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Dataset {
        sample_rate,
        knobs,
        pairs,
        notes,
        alignment_margin_samples,
        stereo,
    })
}

impl Dataset {
    /// Checks and aligns one more capture the way this dataset's were (same sample rate, the
    /// same knobs within their ranges, the same margin), latency found unless given.
    pub fn align_more(&self, capture: &CaptureAudio, options: &LoadOptions) -> Result<CapturePair> {
        ensure!(
            capture.input.sample_rate == self.sample_rate,
            "capture {} is {} Hz but the session trains at {} Hz",
            capture.target_label.display(),
            capture.input.sample_rate,
            self.sample_rate
        );
        let names: Vec<String> = self.knobs.iter().map(|k| k.name.clone()).collect();
        if let Some(unknown) = capture.knobs.keys().find(|k| !names.contains(k)) {
            bail!(
                "capture {} sets knob '{unknown}', which the session does not train",
                capture.target_label.display()
            );
        }
        let latency = capture.latency(options)?;
        let pair = align_measured(
            capture,
            &names,
            latency,
            self.alignment_margin_samples,
            self.channels() == 2,
        )?;
        self.check_knob_values(&pair.knob_values, &capture.target_label.display().to_string())?;
        Ok(pair)
    }
}

/// Aligns a checked capture whose latency is known.
fn align_measured(
    capture: &CaptureAudio,
    knob_names: &[String],
    latency_samples: i64,
    margin_samples: i64,
    stereo: bool,
) -> Result<CapturePair> {
    let shift = latency_samples - margin_samples;
    // Stereo: both channels shifted by the latency found on their mix; a mono capture in a
    // stereo dataset plays as both channels.
    let (left, right) = match (&capture.stereo, stereo) {
        (Some(st), true) => {
            let (input, target) = align_pair(&st.input[0], &st.target[0], shift);
            let right = align_pair(&st.input[1], &st.target[1], shift);
            ((input, target), Some(right))
        }
        (None, true) => {
            let pair = align_pair(&capture.input.samples, &capture.target.samples, shift);
            (pair.clone(), Some(pair))
        }
        (_, false) => (align_pair(&capture.input.samples, &capture.target.samples, shift), None),
    };
    let ((mut input, mut target), mut right) = (left, right);
    // The capture signal's replicate repeats audio from its training part: it checks the
    // device, and must neither train nor sit in the validation tail (which it would flatter).
    if let Some((_, repeat)) = replicate_ranges(capture.input.sample_rate, &capture.input.samples) {
        let keep = repeat.start.saturating_sub((-shift).max(0) as usize);
        input.truncate(keep);
        target.truncate(keep);
        if let Some((input, target)) = &mut right {
            input.truncate(keep);
            target.truncate(keep);
        }
    }
    ensure!(
        input.len() >= capture.input.sample_rate as usize,
        "capture {} is shorter than one second after alignment",
        capture.target_label.display()
    );
    let knob_values = knob_names
        .iter()
        .map(|n| {
            capture
                .knobs
                .get(n)
                .copied()
                .with_context(|| format!("capture {} does not set knob '{n}'", capture.target_label.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(CapturePair {
        input,
        target,
        knob_values,
        latency_samples,
        right: right.map(|(input, target)| ChannelPair { input, target }),
    })
}

/// A knob's descriptor from its explicit range where given, else from the values seen.
fn settle_knob(
    name: &str,
    values: impl Iterator<Item = f32>,
    range: Option<&KnobRangeSpec>,
    notes: &mut Vec<String>,
) -> Result<KnobDescriptor> {
    let values: Vec<f32> = values.collect();
    let lowest = values.iter().copied().fold(f32::INFINITY, f32::min);
    let highest = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let range = range.cloned().unwrap_or_default();
    let (mut min, mut max) = (range.min.unwrap_or(lowest), range.max.unwrap_or(highest));
    if range.min.is_none() && range.max.is_none() && min == max {
        // One value only: the model cannot learn the knob's effect; give it a usable range.
        min = min.min(0.0);
        max = if max > 0.0 { max * 2.0 } else { min + 1.0 };
        notes.push(format!(
            "knob '{name}' has one value ({lowest}); range set to {min}..{max} (set [knobs.{name}] min/max in a captures file)"
        ));
    }
    ensure!(min < max, "knob '{name}' has min {min} not below max {max}");
    ensure!(
        lowest >= min && highest <= max,
        "knob '{name}' values {lowest}..{highest} fall outside its range {min}..{max}"
    );
    let default = range
        .default
        .unwrap_or_else(|| values.first().copied().unwrap_or(min))
        .clamp(min, max);
    Ok(KnobDescriptor {
        name: name.to_string(),
        min,
        max,
        default,
        unit: range.unit.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
