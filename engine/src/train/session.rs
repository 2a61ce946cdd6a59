//! The training session the CLI and the plugin both drive: captures in (WAV files or audio in
//! memory), the profile header, its latency and causality margin, effect defaults and
//! fine-tuning settled in one place, improved checkpoints reported as they happen, stop /
//! pause / more data through a [`SessionControl`], a validated [`Profile`] out.
//!
//! Threads: [`Session::run`] blocks its caller and trains on a worker pool of its own
//! ([`TrainConfig::threads`] workers; events are delivered on one of them). A
//! [`SessionControl`] is shared with any other thread (GUI, signal handler); it never touches
//! the audio thread, which hands captures over through its own lock-free queue.

use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;

mod control;

pub use control::SessionControl;

use super::runner::{Hooks, Trainer};
use super::{check_config, run_in, worker_pool, EffectKind, Objective, TrainConfig, TrainProgress};
use crate::dataset::{
    build_dataset, CaptureAudio, CapturePair, CaptureSpec, Dataset, KnobRangeSpec, LoadOptions, MarginPolicy,
};
use crate::model::{ModelConfig, Size};
use crate::profile::{
    Accuracy, KnobDescriptor, Profile, ProfileMeta, TrainingSummary, Weights, FORMAT_VERSION, MAX_LATENCY_SAMPLES,
};

/// Largest causality margin a measurement may choose, in samples at 48 kHz (scaled with the
/// sample rate): 0.67 ms, about what a linear-phase 4x oversampler rings ahead of its peak.
pub const DEFAULT_MAX_MARGIN_SAMPLES: usize = 32;
/// Fine-tuning starts at this fraction of the architecture's peak learning rate: the weights
/// are already good and a full-size step would throw part of that away.
const FINE_TUNE_LEARNING_RATE_FRACTION: f64 = 0.25;

/// A capture for a session.
#[derive(Clone, Debug)]
pub enum CaptureInput {
    /// Two WAV files on disk (read when the session starts, or when fed).
    Files(CaptureSpec),
    /// Audio already in memory (what the plugin records).
    Memory(CaptureAudio),
}

impl CaptureInput {
    fn into_audio(self, keep_stereo: bool) -> Result<CaptureAudio> {
        match self {
            CaptureInput::Files(spec) => CaptureAudio::read(&spec, keep_stereo),
            CaptureInput::Memory(audio) => Ok(audio),
        }
    }
}

/// What to train. `None` fields take the architecture's or effect's defaults.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// `wavenet`, `lstm` or `gru` (ignored when fine-tuning: the profile's model is kept).
    pub architecture: String,
    /// Size preset.
    pub size: Size,
    /// Kind of effect: picks the loss weights.
    pub effect: EffectKind,
    /// Loss weight overrides, `(term, weight)`.
    pub loss_weights: Vec<(String, f32)>,
    /// Recurrent models without the input-to-output skip (NAM's LSTM shape).
    pub no_skip: bool,
    /// Profile display name.
    pub name: String,
    /// Device latency in samples for every capture, instead of measuring it.
    pub latency_override: Option<i64>,
    /// Causality margin in samples (the profile's latency). `None`: measured from the
    /// device's pre-ringing for WaveNets, 0 for recurrent models (which model a delay poorly).
    pub margin_samples: Option<i64>,
    /// Knob ranges, by name.
    pub knob_ranges: BTreeMap<String, KnobRangeSpec>,
    /// Seed for initialisation and batch sampling.
    pub seed: u64,
    /// Step budget.
    pub max_steps: Option<u64>,
    /// Wall-time budget in seconds (paused time excluded).
    pub max_seconds: Option<f32>,
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// Segments per batch.
    pub batch_size: Option<usize>,
    /// Scored samples per segment.
    pub segment_samples: Option<usize>,
    /// Peak learning rate.
    pub learning_rate: Option<f64>,
    /// Fraction of the peak learning rate reached at the end of the budget.
    pub final_learning_rate_fraction: Option<f64>,
    /// Report a [`SessionEvent::Snapshot`] every this many seconds (0: never).
    pub snapshot_every_seconds: f32,
    /// Fine-tune this profile's weights instead of starting from scratch.
    pub start_from: Option<Profile>,
    /// Run the workers at a lower OS priority (the plugin, which trains beside audio).
    pub lower_priority: bool,
}

impl SessionConfig {
    /// A WaveNet feather amp profile named `name`, three minutes, all defaults.
    pub fn new(name: impl Into<String>) -> Self {
        SessionConfig {
            architecture: "wavenet".into(),
            size: Size::Feather,
            effect: EffectKind::AmpCab,
            loss_weights: Vec::new(),
            no_skip: false,
            name: name.into(),
            latency_override: None,
            margin_samples: None,
            knob_ranges: BTreeMap::new(),
            seed: 0,
            max_steps: None,
            max_seconds: Some(180.0),
            threads: None,
            batch_size: None,
            segment_samples: None,
            learning_rate: None,
            final_learning_rate_fraction: None,
            snapshot_every_seconds: 0.0,
            start_from: None,
            lower_priority: false,
        }
    }
}

/// Weights worth keeping, as a ready-to-save profile.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Optimiser steps taken.
    pub step: u64,
    /// Training seconds so far (paused time excluded).
    pub seconds: f32,
    /// Validation ESR of these weights.
    pub validation_esr: f32,
    /// The profile: the final header, a training summary with the data, latencies, steps and
    /// seconds so far (no curves), no accuracy block.
    pub profile: Profile,
}

/// What a running session reports, on its training thread.
#[derive(Debug)]
pub enum SessionEvent<'a> {
    /// After every step.
    Progress(&'a TrainProgress),
    /// Validation found better weights than any before.
    Checkpoint(&'a Checkpoint),
    /// The best weights at a `snapshot_every_seconds` mark.
    Snapshot(&'a Checkpoint),
    /// Captures fed through [`SessionControl::feed`] joined the data.
    DataAdded {
        /// How many.
        captures: usize,
        /// Their aligned length, in seconds.
        seconds: f32,
    },
    /// Something the user should read (a fed capture that was refused, say).
    Note(&'a str),
}

/// The end of a session.
#[derive(Clone, Debug)]
pub struct SessionOutcome {
    /// The best weights, validated, header complete.
    pub profile: Profile,
    /// Divergences caught and rolled back.
    pub rollbacks: u32,
    /// Whether [`SessionControl::stop`] ended it (rather than its budget or convergence).
    pub stopped: bool,
}

/// A training session, ready to run.
pub struct Session {
    config: TrainConfig,
    dataset: Dataset,
    /// The header every checkpoint and the final profile carry (summary and accuracy filled in).
    meta: ProfileMeta,
    start: Option<Weights>,
    load_options: LoadOptions,
    control: SessionControl,
    lower_priority: bool,
}

impl Session {
    /// Reads, checks and aligns `captures` and settles the model, header and budget.
    pub fn new(settings: SessionConfig, captures: Vec<CaptureInput>) -> Result<Self> {
        // A compressor model learns a stereo capture as a linked pair; the others downmix.
        let keep_stereo = match &settings.start_from {
            Some(profile) => profile.meta.model.channels() == 2,
            None => settings.architecture == "compressor",
        };
        let captures = captures
            .into_iter()
            .map(|capture| capture.into_audio(keep_stereo))
            .collect::<Result<Vec<_>>>()?;
        ensure!(!captures.is_empty(), "no captures given");
        let sample_rate = captures[0].input.sample_rate;
        let recurrent = settings.architecture != "wavenet";
        let margin = match (&settings.start_from, settings.margin_samples) {
            // Fine-tuning keeps the alignment the weights learned.
            (Some(profile), _) => MarginPolicy::Fixed(profile.meta.latency_samples as i64),
            (None, Some(samples)) => MarginPolicy::Fixed(samples),
            (None, None) if recurrent => MarginPolicy::Fixed(0),
            (None, None) => MarginPolicy::Measured {
                max_samples: (DEFAULT_MAX_MARGIN_SAMPLES as u64 * sample_rate as u64 / 48_000) as usize,
            },
        };
        if let MarginPolicy::Fixed(samples) = margin {
            ensure!(
                (0..=MAX_LATENCY_SAMPLES as i64).contains(&samples),
                "the causality margin must lie in 0..={MAX_LATENCY_SAMPLES} samples (got {samples})"
            );
        }
        let load_options = LoadOptions {
            latency_override: settings.latency_override,
            margin,
            keep_stereo,
            ..LoadOptions::default()
        };
        let mut dataset = build_dataset(&captures, &settings.knob_ranges, &load_options)?;
        let (model, start, calibration) = match &settings.start_from {
            Some(profile) => {
                adopt_profile_knobs(&mut dataset, profile)?;
                (
                    profile.meta.model.clone(),
                    Some(profile.weights.clone()),
                    profile.meta.calibration.clone(),
                )
            }
            None => {
                let mut model = ModelConfig::preset(&settings.architecture, settings.size, dataset.knobs.len())?;
                if let ModelConfig::Compressor(c) = &mut model {
                    // Its time constants are learned at the captures' rate; knobs whose names
                    // give a control and unit anchor it.
                    c.sample_rate_hz = sample_rate as f32;
                    c.channels = dataset.channels();
                    let knobs: Vec<_> = dataset.knobs.iter().map(|k| (k.name.clone(), k.min, k.max)).collect();
                    c.anchor_knobs(&knobs);
                }
                if settings.no_skip {
                    match &mut model {
                        ModelConfig::Lstm(c) => c.skip = false,
                        ModelConfig::Gru(c) => c.skip = false,
                        ModelConfig::Wavenet(_) | ModelConfig::Compressor(_) => {
                            bail!("--no-skip applies to lstm and gru models only")
                        }
                    }
                }
                (model, None, None)
            }
        };
        if model.channels() == 2 && dataset.channels() == 1 {
            dataset.notes.push(
                "mono captures for a stereo-linked profile: each plays as both channels, so how the detector joins two different channels is not trained on them".into(),
            );
        }
        let config = train_config(&settings, model.clone(), start.is_some())?;
        check_config(&config, &dataset)?;
        let latency_samples = u32::try_from(dataset.alignment_margin_samples).context("margin out of range")?;
        let meta = ProfileMeta {
            format_version: FORMAT_VERSION,
            name: settings.name.clone(),
            notes: String::new(),
            model,
            sample_rate: dataset.sample_rate,
            knobs: dataset.knobs.clone(),
            latency_samples,
            training: None,
            accuracy: None,
            calibration,
        };
        Ok(Session {
            config,
            dataset,
            meta,
            start,
            load_options,
            control: SessionControl::default(),
            lower_priority: settings.lower_priority,
        })
    }

    /// The aligned data (its notes, latencies and margin are worth showing the user).
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// The hyperparameters it will train with.
    pub fn train_config(&self) -> &TrainConfig {
        &self.config
    }

    /// The header the profile will carry (without training summary and accuracy).
    pub fn meta(&self) -> &ProfileMeta {
        &self.meta
    }

    /// A handle to stop, pause, resume or feed the run from another thread.
    pub fn control(&self) -> SessionControl {
        self.control.clone()
    }

    /// Trains until the budget is spent, validation stops improving, or a stop is asked for;
    /// `events` sees progress, checkpoints, snapshots and notes as they happen.
    pub fn run(self, events: &mut (dyn FnMut(SessionEvent) + Send)) -> Result<SessionOutcome> {
        let Session {
            config,
            dataset,
            meta,
            start,
            load_options,
            control,
            lower_priority,
        } = self;
        let summary = dataset.training_summary(config.validation_fraction, config.seed);
        let template = Dataset {
            pairs: Vec::new(),
            notes: Vec::new(),
            ..dataset.clone()
        };
        let mut hooks = SessionHooks {
            control: &control,
            template,
            load_options,
            meta: &meta,
            summary,
            validation_fraction: config.validation_fraction,
            events,
        };
        let pool = worker_pool(config.threads, &config.model, lower_priority)?;
        let outcome = run_in(&pool, || {
            Trainer::new(&config, dataset, start.as_ref())?.run(&mut hooks)
        })?;
        let meta = ProfileMeta {
            training: Some(outcome.summary),
            accuracy: Some(outcome.accuracy),
            ..meta
        };
        let profile = Profile::new(meta, outcome.weights).context("training produced an invalid profile")?;
        Ok(SessionOutcome {
            profile,
            rollbacks: outcome.rollbacks,
            stopped: control.is_stopped(),
        })
    }
}

/// The budget and hyperparameters for `model` with the session's overrides.
fn train_config(settings: &SessionConfig, model: ModelConfig, fine_tuning: bool) -> Result<TrainConfig> {
    let mut config = TrainConfig::new(model);
    let mut objective = Objective::for_effect(settings.effect);
    config.effect = settings.effect;
    if settings.effect == EffectKind::Compressor && matches!(config.model, ModelConfig::Lstm(_) | ModelConfig::Gru(_)) {
        // A recurrent model learning dynamics needs segments that hold a release: 170 ms
        // scored after 85 ms of warm-up (at 48 kHz), not the amp's 43 ms.
        config.segment_samples = 8192;
        config.warmup_samples = 4096;
    }
    for (term, weight) in &settings.loss_weights {
        objective.set_weight(term, *weight)?;
    }
    config.objective = objective;
    config.seed = settings.seed;
    config.max_steps = settings.max_steps;
    config.max_seconds = settings.max_seconds;
    if fine_tuning {
        config.learning_rate *= FINE_TUNE_LEARNING_RATE_FRACTION;
    }
    if let Some(threads) = settings.threads {
        config.threads = threads.max(1);
    }
    if let Some(batch) = settings.batch_size {
        config.batch_size = batch;
    }
    if let Some(segment) = settings.segment_samples {
        config.segment_samples = segment;
    }
    if let Some(learning_rate) = settings.learning_rate {
        ensure!(
            learning_rate.is_finite() && learning_rate > 0.0,
            "the learning rate must be positive"
        );
        config.learning_rate = learning_rate;
    }
    if let Some(fraction) = settings.final_learning_rate_fraction {
        config.final_learning_rate_fraction = fraction.clamp(1e-6, 1.0);
    }
    config.snapshot_every_seconds = settings.snapshot_every_seconds.max(0.0);
    Ok(config)
}

/// Fine-tuning trains the profile's own knobs: the same names (put in the profile's order)
/// and the profile's ranges.
fn adopt_profile_knobs(dataset: &mut Dataset, profile: &Profile) -> Result<()> {
    ensure!(
        dataset.sample_rate == profile.meta.sample_rate,
        "the captures are {} Hz but profile '{}' was trained at {} Hz",
        dataset.sample_rate,
        profile.meta.name,
        profile.meta.sample_rate
    );
    let names = |knobs: &[KnobDescriptor]| knobs.iter().map(|k| k.name.clone()).collect::<Vec<_>>();
    let (ours, theirs) = (names(&dataset.knobs), names(&profile.meta.knobs));
    let mut sorted = theirs.clone();
    sorted.sort();
    ensure!(
        ours == sorted,
        "fine-tuning '{}' needs captures with its knobs {theirs:?}, got {ours:?}",
        profile.meta.name
    );
    // The dataset holds knob values in sorted-name order; the model takes the profile's order.
    let order: Vec<usize> = theirs
        .iter()
        .map(|name| ours.iter().position(|n| n == name).expect("same names"))
        .collect();
    for pair in &mut dataset.pairs {
        pair.knob_values = order.iter().map(|&i| pair.knob_values[i]).collect();
    }
    dataset.knobs = profile.meta.knobs.clone();
    for (i, pair) in dataset.pairs.iter().enumerate() {
        dataset.check_knob_values(
            &pair.knob_values,
            &format!("{} of profile '{}'", i + 1, profile.meta.name),
        )?;
    }
    Ok(())
}

/// The session's side of the training loop's hooks.
struct SessionHooks<'a, 'e> {
    control: &'a SessionControl,
    /// The dataset's settings (rate, knobs, margin) without its audio, to align fed captures.
    template: Dataset,
    load_options: LoadOptions,
    meta: &'a ProfileMeta,
    /// The summary for checkpoints' headers: the start's, with fed captures' latencies added.
    summary: TrainingSummary,
    /// Fraction of each capture held out for validation.
    validation_fraction: f32,
    events: &'e mut (dyn FnMut(SessionEvent) + Send),
}

impl SessionHooks<'_, '_> {
    fn checkpoint(&self, progress: &TrainProgress, weights: &Weights) -> Result<Checkpoint> {
        let meta = ProfileMeta {
            training: Some(TrainingSummary {
                steps: progress.step,
                wall_seconds: progress.elapsed_seconds,
                ..self.summary.clone()
            }),
            accuracy: None::<Accuracy>,
            ..self.meta.clone()
        };
        Ok(Checkpoint {
            step: progress.step,
            seconds: progress.elapsed_seconds,
            validation_esr: progress.best_validation_esr,
            profile: Profile::new(meta, weights.clone())?,
        })
    }
}

impl Hooks for SessionHooks<'_, '_> {
    fn stop_requested(&mut self) -> bool {
        self.control.is_stopped()
    }

    fn paused(&mut self) -> bool {
        self.control.is_paused()
    }

    fn new_pairs(&mut self) -> Vec<CapturePair> {
        let mut pairs = Vec::new();
        for capture in self.control.take_pending() {
            let aligned = capture
                .into_audio(self.load_options.keep_stereo)
                .and_then(|audio| self.template.align_more(&audio, &self.load_options));
            match aligned {
                Ok(pair) => pairs.push(pair),
                Err(err) => self.refused(&format!("{err:#}")),
            }
        }
        pairs
    }

    fn added(&mut self, pairs: &[CapturePair]) {
        let samples: usize = pairs.iter().map(|p| p.input.len()).sum();
        for pair in pairs {
            self.summary.device_latency_samples.push(pair.latency_samples);
        }
        self.summary.data_seconds +=
            samples as f32 * (1.0 - self.validation_fraction) / self.template.sample_rate as f32;
        (self.events)(SessionEvent::DataAdded {
            captures: pairs.len(),
            seconds: samples as f32 / self.template.sample_rate as f32,
        });
    }

    fn refused(&mut self, reason: &str) {
        (self.events)(SessionEvent::Note(&format!("capture not added: {reason}")));
    }

    fn progress(&mut self, progress: &TrainProgress) {
        (self.events)(SessionEvent::Progress(progress));
    }

    fn improved(&mut self, progress: &TrainProgress, weights: &Weights) {
        match self.checkpoint(progress, weights) {
            Ok(checkpoint) => (self.events)(SessionEvent::Checkpoint(&checkpoint)),
            Err(err) => (self.events)(SessionEvent::Note(&format!("checkpoint not reported: {err:#}"))),
        }
    }

    fn snapshot(&mut self, progress: &TrainProgress, weights: &Weights) {
        match self.checkpoint(progress, weights) {
            Ok(checkpoint) => (self.events)(SessionEvent::Snapshot(&checkpoint)),
            Err(err) => (self.events)(SessionEvent::Note(&format!("snapshot not taken: {err:#}"))),
        }
    }
}

#[cfg(test)]
mod tests;
