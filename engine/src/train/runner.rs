//! The training loop: batches, objective, optimiser, validation, roll-back and early
//! stopping over a flat parameter vector. Trainer thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::adam::{clip_gradient, AdamW};
use super::backend::{Backend, Batch};
use super::objective::ObjectiveEvaluator;
use super::params::ParamLayout;
use super::validate::{self, Region};
use super::{initial_weights, thin, TrainConfig, TrainOutcome, TrainProgress};
use crate::dataset::Dataset;
use crate::profile::{TrainingSummary, Weights};

/// Steps over which the learning rate ramps up from zero.
const WARMUP_STEPS: u64 = 20;
/// A step whose loss exceeds this multiple of the recent average counts as divergence.
const DIVERGENCE_FACTOR: f32 = 50.0;
/// Fraction of the budget before which early stopping is not considered.
const EARLY_STOP_FRACTION: f32 = 0.75;
/// Roll-backs after which training gives up.
const MAX_ROLLBACKS: u32 = 20;

pub(super) struct Trainer<'a> {
    config: &'a TrainConfig,
    dataset: &'a Dataset,
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
    pub fn new(config: &'a TrainConfig, dataset: &'a Dataset) -> Result<Self> {
        let context = config.model.receptive_field() - 1 + config.warmup_samples();
        let splits = (0..dataset.pairs.len())
            .map(|i| {
                let len = dataset.pairs[i].input.len();
                let train_end = ((len as f32) * (1.0 - config.validation_fraction)) as usize;
                ensure!(
                    train_end > context + config.segment_samples,
                    "capture {i} is too short to train on: {len} samples, need more than {} before validation",
                    context + config.segment_samples
                );
                Ok(Region {
                    start: train_end,
                    knobs: dataset.normalized_knobs(i),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let layout = ParamLayout::new(&config.model);
        // candle's CPU initialisers draw from an unseeded RNG; seeded weights reproduce a run.
        let params = layout.flatten(&initial_weights(&config.model, config.seed))?;
        let (rows, segment) = (config.batch_size, config.segment_samples);
        let backend = Backend::new(
            &config.model,
            &layout,
            rows,
            segment,
            config.warmup_samples(),
            config.threads,
        )?;
        let input_samples = context + segment;
        Ok(Trainer {
            config,
            dataset,
            splits,
            gradient: vec![0.0; layout.len()],
            layout,
            params,
            backend,
            evaluator: ObjectiveEvaluator::new(&config.objective, dataset.sample_rate as f32, segment),
            batch: Batch {
                rows,
                input_samples,
                inputs: vec![0.0; rows * input_samples],
                knobs: vec![0.0; rows * config.model.num_knobs()],
                targets: vec![0.0; rows * segment],
            },
            prediction: vec![0.0; rows * segment],
            d_prediction: vec![0.0; rows * segment],
            rng: ChaCha8Rng::seed_from_u64(config.seed),
        })
    }

    /// Fills `self.batch` with random segments from the training part of the captures.
    fn sample_batch(&mut self) {
        let (length, segment) = (self.batch.input_samples, self.config.segment_samples);
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
            let capture = &self.dataset.pairs[pair];
            self.batch.inputs[row * length..][..length].copy_from_slice(&capture.input[position..position + length]);
            self.batch.knobs[row * num_knobs..][..num_knobs].copy_from_slice(&self.splits[pair].knobs);
            let target_start = position + length - segment;
            self.batch.targets[row * segment..][..segment]
                .copy_from_slice(&capture.target[target_start..position + length]);
        }
    }

    fn learning_rate(&self, step: u64, fraction_done: f32) -> f32 {
        let warmup = ((step + 1) as f32 / WARMUP_STEPS as f32).min(1.0);
        let decay = (self.config.final_learning_rate_fraction as f32).powf(fraction_done.clamp(0.0, 1.0));
        warmup * self.config.learning_rate as f32 * decay
    }

    fn fraction_done(&self, step: u64, start: Instant) -> f32 {
        let by_steps = self.config.max_steps.map(|n| step as f32 / n.max(1) as f32);
        let by_time = self
            .config
            .max_seconds
            .map(|s| start.elapsed().as_secs_f32() / s.max(1e-3));
        match (by_steps, by_time) {
            // With a step budget, the schedule follows steps so fixed seeds reproduce.
            (Some(steps), _) => steps,
            (None, Some(time)) => time,
            (None, None) => 1.0,
        }
    }

    /// One optimiser step; returns the batch loss, or `None` when the step diverged (the
    /// weights are then untouched).
    fn step(&mut self, adam: &mut AdamW, learning_rate: f32, recent_loss: f32) -> Result<Option<f32>> {
        self.sample_batch();
        self.backend.forward(&self.params, &self.batch, &mut self.prediction)?;
        let value = self
            .evaluator
            .evaluate(&self.prediction, &self.batch.targets, &mut self.d_prediction);
        let loss = value.total;
        if !loss.is_finite() || (recent_loss.is_finite() && loss > DIVERGENCE_FACTOR * recent_loss.max(1e-4)) {
            return Ok(None);
        }
        self.backend
            .backward(&self.params, &self.d_prediction, &mut self.gradient)?;
        if !clip_gradient(&mut self.gradient, self.config.gradient_clip).is_finite() {
            return Ok(None);
        }
        adam.step(&mut self.params, &self.gradient, learning_rate);
        Ok(Some(loss))
    }

    fn validate(&self, weights: &Weights) -> Result<f32> {
        Ok(validate::validation_esr(&self.config.model, weights, self.dataset, &self.splits)?.esr)
    }

    pub fn run(
        mut self,
        stop: Option<&AtomicBool>,
        progress: &mut (dyn FnMut(&TrainProgress) + Send),
    ) -> Result<TrainOutcome> {
        let config = self.config;
        let start = Instant::now();
        let mut adam = AdamW::new(self.layout.len(), 0.0);
        let mut lr_scale = 1.0;
        let mut best = self.params.clone();
        let mut best_esr = self.validate(&self.layout.to_weights(&best))?;
        let mut summary = TrainingSummary {
            data_seconds: self.dataset.seconds() * (1.0 - config.validation_fraction),
            device_latency_samples: self.dataset.pairs.iter().map(|p| p.latency_samples).collect(),
            alignment_margin_samples: self.dataset.alignment_margin_samples,
            seed: config.seed,
            ..Default::default()
        };
        summary.validation_curve.push((0, best_esr));
        summary.validation_seconds.push(start.elapsed().as_secs_f32());
        let (mut step, mut rollbacks, mut stale_validations) = (0u64, 0u32, 0u32);
        let mut recent_loss = f32::INFINITY;
        let mut loss_points = Vec::new();
        let mut snapshots = Vec::new();
        loop {
            let elapsed = start.elapsed().as_secs_f32();
            let every = config.snapshot_every_seconds;
            if every > 0.0 && elapsed >= every * (snapshots.len() + 1) as f32 {
                snapshots.push((every * (snapshots.len() + 1) as f32, self.layout.to_weights(&best)));
            }
            let fraction = self.fraction_done(step, start);
            // Early stopping only once the learning rate has decayed: at the peak rate the
            // validation error is noisy and a long plateau is no sign of convergence.
            let converged = stale_validations >= config.patience_validations && fraction >= EARLY_STOP_FRACTION;
            if fraction >= 1.0 || stop.is_some_and(|s| s.load(Ordering::Relaxed)) || converged {
                break;
            }
            let learning_rate = self.learning_rate(step, fraction) * lr_scale;
            let Some(loss) = self.step(&mut adam, learning_rate, recent_loss)? else {
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
            if step % config.validate_every_steps == 0 {
                let esr = self.validate(&self.layout.to_weights(&self.params))?;
                summary.validation_curve.push((step, esr));
                summary.validation_seconds.push(start.elapsed().as_secs_f32());
                if esr.is_finite() && esr < best_esr {
                    best.copy_from_slice(&self.params);
                    (best_esr, stale_validations) = (esr, 0);
                } else {
                    stale_validations += 1;
                }
            }
            progress(&TrainProgress {
                step,
                loss,
                best_validation_esr: best_esr,
                elapsed_seconds: start.elapsed().as_secs_f32(),
                fraction_done: self.fraction_done(step, start),
            });
        }
        // Score the latest weights too, in case the run ended between validations.
        if step % config.validate_every_steps != 0 {
            let esr = self.validate(&self.layout.to_weights(&self.params))?;
            summary.validation_curve.push((step, esr));
            summary.validation_seconds.push(start.elapsed().as_secs_f32());
            if esr.is_finite() && esr < best_esr {
                best.copy_from_slice(&self.params);
            }
        }
        let weights = self.layout.to_weights(&best);
        let accuracy = validate::validation_esr(&config.model, &weights, self.dataset, &self.splits)?;
        summary.steps = step;
        summary.wall_seconds = start.elapsed().as_secs_f32();
        summary.loss_curve = thin(&loss_points, 48);
        Ok(TrainOutcome {
            weights,
            accuracy,
            summary,
            rollbacks,
            snapshots,
        })
    }
}
