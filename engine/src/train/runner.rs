//! The training loop: batches, objective, optimiser, validation, roll-back and early
//! stopping over a flat parameter vector, with hooks through which a driver (the engine's
//! [`super::Session`], or [`super::train`]) watches, pauses, stops and feeds it. Trainer
//! thread (a worker of the session's own pool).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::adam::{clip_gradient, AdamW};
use super::backend::{Backend, Batch};
use super::objective::ObjectiveEvaluator;
use super::params::ParamLayout;
use super::validate::{self, Region};
use super::{initial_weights, thin, TrainConfig, TrainOutcome, TrainProgress};
use crate::dataset::{CapturePair, Dataset};
use crate::profile::{TrainingSummary, Weights};

/// How long a paused run sleeps between looks at its hooks.
const PAUSE_POLL: Duration = Duration::from_millis(20);

/// What the loop asks of whoever drives it, between steps. Called on the trainer thread.
pub(crate) trait Hooks {
    /// Whether to end the run now (the best checkpoint so far is returned).
    fn stop_requested(&mut self) -> bool;
    /// Whether to hold still (paused time does not count against a time budget).
    fn paused(&mut self) -> bool {
        false
    }
    /// Aligned captures to add to the data while running (their tails join validation).
    fn new_pairs(&mut self) -> Vec<CapturePair> {
        Vec::new()
    }
    /// After captures from [`Hooks::new_pairs`] joined the data (those that fit).
    fn added(&mut self, _pairs: &[CapturePair]) {}
    /// A capture from [`Hooks::new_pairs`] that could not join, and why.
    fn refused(&mut self, _reason: &str) {}
    /// After every step.
    fn progress(&mut self, _progress: &TrainProgress) {}
    /// Each time validation finds better weights than any before.
    fn improved(&mut self, _progress: &TrainProgress, _weights: &Weights) {}
    /// Every `snapshot_every_seconds`, with the best weights by then (`elapsed_seconds` is
    /// the mark).
    fn snapshot(&mut self, _progress: &TrainProgress, _weights: &Weights) {}
}

/// Wall time that stands still while the run is paused.
struct ActiveClock {
    start: Instant,
    paused: Duration,
}

impl ActiveClock {
    fn new() -> Self {
        ActiveClock {
            start: Instant::now(),
            paused: Duration::ZERO,
        }
    }

    fn seconds(&self) -> f32 {
        self.start.elapsed().saturating_sub(self.paused).as_secs_f32()
    }
}

/// Steps over which the learning rate ramps up from zero.
const WARMUP_STEPS: u64 = 20;
/// A batch whose loss exceeds this multiple of the recent average is an outlier: skipped, not
/// stepped on.
const DIVERGENCE_FACTOR: f32 = 50.0;
/// Outlier batches in a row that count as divergence (the weights, not the batch, went bad).
const OUTLIER_STREAK: u32 = 3;
/// Fraction of the budget before which early stopping is not considered.
const EARLY_STOP_FRACTION: f32 = 0.75;
/// Roll-backs after which training gives up.
const MAX_ROLLBACKS: u32 = 20;

/// What one training step did.
enum Step {
    /// Stepped on a batch with this loss.
    Stepped(f32),
    /// Skipped a batch whose loss was far above the recent average.
    Outlier,
    /// The loss or the gradient was not finite.
    Diverged,
}

pub(super) struct Trainer<'a> {
    config: &'a TrainConfig,
    dataset: Dataset,
    /// Per capture: where its held-out tail starts (training uses what lies before) and its knobs.
    splits: Vec<Region>,
    layout: ParamLayout,
    params: Vec<f32>,
    backend: Backend,
    evaluator: ObjectiveEvaluator,
    batch: Batch,
    prediction: Vec<f32>,
    d_prediction: Vec<f32>,
    gradient: Vec<f32>,
    rng: ChaCha8Rng,
}

impl<'a> Trainer<'a> {
    /// A trainer of `config.model` on `dataset`, starting from `start` (fine-tuning) or from
    /// seeded initial weights.
    pub fn new(config: &'a TrainConfig, dataset: Dataset, start: Option<&Weights>) -> Result<Self> {
        let splits = (0..dataset.pairs.len())
            .map(|i| split(config, &dataset, i))
            .collect::<Result<Vec<_>>>()?;
        let context = config.model.receptive_field() - 1 + config.warmup_samples;
        let layout = ParamLayout::new(&config.model);
        // candle's CPU initialisers draw from an unseeded RNG; seeded weights reproduce a run.
        let params = match start {
            Some(weights) => layout.flatten(weights)?,
            None => layout.flatten(&initial_weights(&config.model, config.seed))?,
        };
        let (rows, segment) = (config.batch_size, config.segment_samples);
        let backend = Backend::new(
            &config.model,
            &layout,
            rows,
            segment,
            config.warmup_samples,
            config.threads,
        )?;
        let input_samples = context + segment;
        // A stereo-linked model takes each segment's channels one after another.
        let channels = config.model.channels();
        let sample_rate_hz = dataset.sample_rate as f32;
        Ok(Trainer {
            config,
            dataset,
            splits,
            gradient: vec![0.0; layout.len()],
            layout,
            params,
            backend,
            evaluator: ObjectiveEvaluator::new(&config.objective, sample_rate_hz, segment),
            batch: Batch {
                rows,
                input_samples: channels * input_samples,
                inputs: vec![0.0; rows * channels * input_samples],
                knobs: vec![0.0; rows * config.model.num_knobs()],
                targets: vec![0.0; rows * channels * segment],
            },
            prediction: vec![0.0; rows * channels * segment],
            d_prediction: vec![0.0; rows * channels * segment],
            rng: ChaCha8Rng::seed_from_u64(config.seed),
        })
    }

    /// Fills `self.batch` with random segments from the training part of the captures (each
    /// channel's samples one after another for a stereo-linked model; a mono capture plays as
    /// both channels).
    fn sample_batch(&mut self) {
        let channels = self.config.model.channels();
        let segment = self.config.segment_samples;
        let length = self.batch.input_samples / channels;
        let num_knobs = self.config.model.num_knobs();
        let lengths: Vec<usize> = self.splits.iter().map(|s| s.start - length).collect();
        let total: usize = lengths.iter().sum();
        for row in 0..self.batch.rows {
            let mut position = self.rng.random_range(0..total.max(1));
            let mut pair = 0;
            while position >= lengths[pair] && pair + 1 < lengths.len() {
                position -= lengths[pair];
                pair += 1;
            }
            let sources = self.dataset.pairs[pair].channels();
            let inputs = &mut self.batch.inputs[row * channels * length..][..channels * length];
            let targets = &mut self.batch.targets[row * channels * segment..][..channels * segment];
            for c in 0..channels {
                let (input, target) = sources[c.min(sources.len() - 1)];
                inputs[c * length..][..length].copy_from_slice(&input[position..position + length]);
                let target_start = position + length - segment;
                targets[c * segment..][..segment].copy_from_slice(&target[target_start..position + length]);
            }
            self.batch.knobs[row * num_knobs..][..num_knobs].copy_from_slice(&self.splits[pair].knobs);
        }
    }

    fn learning_rate(&self, step: u64, fraction_done: f32) -> f32 {
        let warmup = ((step + 1) as f32 / WARMUP_STEPS as f32).min(1.0);
        let decay = (self.config.final_learning_rate_fraction as f32).powf(fraction_done.clamp(0.0, 1.0));
        warmup * self.config.learning_rate as f32 * decay
    }

    fn fraction_done(&self, step: u64, clock: &ActiveClock) -> f32 {
        let by_steps = self.config.max_steps.map(|n| step as f32 / n.max(1) as f32);
        let by_time = self.config.max_seconds.map(|s| clock.seconds() / s.max(1e-3));
        match (by_steps, by_time) {
            // With a step budget, the schedule follows steps so fixed seeds reproduce.
            (Some(steps), _) => steps,
            (None, Some(time)) => time,
            (None, None) => 1.0,
        }
    }

    /// One optimiser step; returns the batch loss, or `None` when the step diverged (the
    /// weights are then untouched).
    fn step(&mut self, adam: &mut AdamW, learning_rate: f32, recent_loss: f32) -> Result<Step> {
        self.sample_batch();
        self.backend.forward(&self.params, &self.batch, &mut self.prediction)?;
        let value = self
            .evaluator
            .evaluate(&self.prediction, &self.batch.targets, &mut self.d_prediction);
        let loss = value.total;
        if !loss.is_finite() {
            return Ok(Step::Diverged);
        }
        if recent_loss.is_finite() && loss > DIVERGENCE_FACTOR * recent_loss.max(1e-4) {
            return Ok(Step::Outlier);
        }
        self.backend
            .backward(&self.params, &self.d_prediction, &mut self.gradient)?;
        if !clip_gradient(&mut self.gradient, self.config.gradient_clip).is_finite() {
            return Ok(Step::Diverged);
        }
        adam.step(&mut self.params, &self.gradient, learning_rate);
        Ok(Step::Stepped(loss))
    }

    fn validate(&self, weights: &Weights) -> Result<f32> {
        Ok(validate::validation_esr(&self.config.model, weights, &self.dataset, &self.splits)?.esr)
    }

    /// Adds the captures fed in while running that are long enough to train on (the others
    /// are refused through `hooks`); returns how many were added.
    fn add_pairs(&mut self, pairs: Vec<CapturePair>, summary: &mut TrainingSummary, hooks: &mut dyn Hooks) -> usize {
        let first = self.dataset.pairs.len();
        for pair in pairs {
            self.dataset.pairs.push(pair);
            let index = self.dataset.pairs.len() - 1;
            match split(self.config, &self.dataset, index) {
                Ok(region) => self.splits.push(region),
                Err(err) => {
                    self.dataset.pairs.pop();
                    hooks.refused(&format!("{err:#}"));
                }
            }
        }
        let added = &self.dataset.pairs[first..];
        for pair in added {
            summary.device_latency_samples.push(pair.latency_samples);
        }
        summary.data_seconds = self.dataset.training_seconds(self.config.validation_fraction);
        if !added.is_empty() {
            hooks.added(added);
        }
        added.len()
    }

    pub fn run(mut self, hooks: &mut dyn Hooks) -> Result<TrainOutcome> {
        let config = self.config;
        let mut clock = ActiveClock::new();
        let mut adam = AdamW::new(self.layout.len(), 0.0);
        let mut lr_scale = 1.0;
        let mut best = self.params.clone();
        let mut best_esr = self.validate(&self.layout.to_weights(&best))?;
        let mut summary = self.dataset.training_summary(config.validation_fraction, config.seed);
        summary.effect = config.effect.name().to_owned();
        summary.segment_samples = config.segment_samples;
        summary.warmup_samples = config.warmup_samples;
        summary.loss_weights = config.objective.weights();
        summary.validation_curve.push((0, best_esr));
        summary.validation_seconds.push(clock.seconds());
        let (mut step, mut rollbacks, mut stale_validations) = (0u64, 0u32, 0u32);
        let mut outliers_in_a_row = 0u32;
        let mut recent_loss = f32::INFINITY;
        let mut loss_points = Vec::new();
        let mut snapshots_taken = 0usize;
        loop {
            if hooks.paused() {
                let since = Instant::now();
                while hooks.paused() && !hooks.stop_requested() {
                    std::thread::sleep(PAUSE_POLL);
                }
                clock.paused += since.elapsed();
            }
            let fed = hooks.new_pairs();
            if !fed.is_empty() && self.add_pairs(fed, &mut summary, hooks) > 0 {
                // The validation set grew: re-score the best weights on it, so only weights
                // that are better on all the data so far count as an improvement.
                best_esr = self.validate(&self.layout.to_weights(&best))?;
                stale_validations = 0;
            }
            let elapsed = clock.seconds();
            let every = config.snapshot_every_seconds;
            if every > 0.0 && elapsed >= every * (snapshots_taken + 1) as f32 {
                snapshots_taken += 1;
                let mark = TrainProgress {
                    step,
                    loss: recent_loss,
                    best_validation_esr: best_esr,
                    elapsed_seconds: every * snapshots_taken as f32,
                    fraction_done: self.fraction_done(step, &clock),
                };
                hooks.snapshot(&mark, &self.layout.to_weights(&best));
            }
            let fraction = self.fraction_done(step, &clock);
            // Early stopping only once the learning rate has decayed: at the peak rate the
            // validation error is noisy and a long plateau is no sign of convergence.
            let converged = stale_validations >= config.patience_validations && fraction >= EARLY_STOP_FRACTION;
            if fraction >= 1.0 || hooks.stop_requested() || converged {
                break;
            }
            let learning_rate = self.learning_rate(step, fraction) * lr_scale;
            let outcome = self.step(&mut adam, learning_rate, recent_loss)?;
            // One batch far worse than the recent ones is skipped: a stretch of the capture
            // the model fits badly, not divergence. A few in a row, or a non-finite loss, are.
            outliers_in_a_row = if let Step::Outlier = outcome {
                outliers_in_a_row + 1
            } else {
                0
            };
            if outliers_in_a_row > 0 && outliers_in_a_row < OUTLIER_STREAK {
                continue;
            }
            let Step::Stepped(loss) = outcome else {
                outliers_in_a_row = 0;
                // Roll back to the best weights, halve the learning rate, start Adam afresh.
                self.params.copy_from_slice(&best);
                lr_scale *= 0.5;
                adam.reset();
                rollbacks += 1;
                recent_loss = f32::INFINITY;
                ensure!(
                    rollbacks <= MAX_ROLLBACKS,
                    "training keeps diverging; giving up after {rollbacks} roll-backs"
                );
                continue;
            };
            step += 1;
            recent_loss = if recent_loss.is_finite() {
                0.9 * recent_loss + 0.1 * loss
            } else {
                loss
            };
            loss_points.push((step, loss));
            let validate_now = step % config.validate_every_steps == 0;
            let mut improved = false;
            if validate_now {
                let weights = self.layout.to_weights(&self.params);
                let esr = self.validate(&weights)?;
                summary.validation_curve.push((step, esr));
                summary.validation_seconds.push(clock.seconds());
                if esr.is_finite() && esr < best_esr {
                    best.copy_from_slice(&self.params);
                    (best_esr, stale_validations, improved) = (esr, 0, true);
                } else {
                    stale_validations += 1;
                }
            }
            let report = TrainProgress {
                step,
                loss,
                best_validation_esr: best_esr,
                elapsed_seconds: clock.seconds(),
                fraction_done: self.fraction_done(step, &clock),
            };
            if improved {
                hooks.improved(&report, &self.layout.to_weights(&best));
            }
            hooks.progress(&report);
        }
        // Score the latest weights too, in case the run ended between validations.
        if step % config.validate_every_steps != 0 {
            let esr = self.validate(&self.layout.to_weights(&self.params))?;
            summary.validation_curve.push((step, esr));
            summary.validation_seconds.push(clock.seconds());
            if esr.is_finite() && esr < best_esr {
                best.copy_from_slice(&self.params);
                best_esr = esr;
                let report = TrainProgress {
                    step,
                    loss: recent_loss,
                    best_validation_esr: best_esr,
                    elapsed_seconds: clock.seconds(),
                    fraction_done: self.fraction_done(step, &clock),
                };
                hooks.improved(&report, &self.layout.to_weights(&best));
            }
        }
        let weights = self.layout.to_weights(&best);
        let accuracy = validate::validation_esr(&config.model, &weights, &self.dataset, &self.splits)?;
        summary.steps = step;
        summary.wall_seconds = clock.seconds();
        summary.loss_curve = thin(&loss_points, 48);
        Ok(TrainOutcome {
            weights,
            accuracy,
            summary,
            rollbacks,
        })
    }
}

/// Where capture `index`'s held-out tail starts (training uses what lies before), checked to
/// leave enough to train on.
fn split(config: &TrainConfig, dataset: &Dataset, index: usize) -> Result<Region> {
    let context = config.model.receptive_field() - 1 + config.warmup_samples;
    let len = dataset.pairs[index].input.len();
    let train_end = ((len as f32) * (1.0 - config.validation_fraction)) as usize;
    ensure!(
        train_end > context + config.segment_samples,
        "capture {index} is too short to train on: {len} samples, need more than {} before validation",
        context + config.segment_samples
    );
    Ok(Region {
        start: train_end,
        knobs: dataset.normalized_knobs(index),
    })
}
