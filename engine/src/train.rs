//! Training on CPU with candle: random segment batches, ESR losses, AdamW with warm-up and
//! decay, gradient clipping, periodic validation through the streaming kernel, best
//! checkpoint keeping and divergence roll-back. Trainer thread only (spawns its own thread
//! with a large stack, since candle's backward pass recurses over the graph).

mod loss;
mod validate;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dataset::Dataset;
use crate::model::{Model, ModelConfig};
use crate::profile::{Accuracy, TrainingSummary, Weights};

pub use loss::LossWeights;

/// Hyperparameters of a training run.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Architecture and size to train.
    pub model: ModelConfig,
    /// Stop after this many optimiser steps.
    pub max_steps: Option<u64>,
    /// Stop after this much wall time, in seconds (validation included).
    pub max_seconds: Option<f32>,
    /// Seed for initialisation and batch sampling.
    pub seed: u64,
    /// Segments per batch.
    pub batch_size: usize,
    /// Output samples per segment that the loss sees.
    pub segment_samples: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Fraction of each capture's tail held out for validation.
    pub validation_fraction: f32,
    /// Validate every this many steps.
    pub validate_every_steps: u64,
    /// Stop early after this many validations without improvement.
    pub patience_validations: u32,
    /// Global gradient-norm clip.
    pub gradient_clip: f32,
    /// Loss term weights.
    pub loss: LossWeights,
}

impl TrainConfig {
    /// Defaults suited to the architecture: a few minutes of CPU training.
    pub fn new(model: ModelConfig) -> Self {
        let (learning_rate, segment_samples) = match model {
            ModelConfig::Wavenet(_) => (2e-2, 4096),
            ModelConfig::Lstm(_) => (5e-3, 2048),
        };
        TrainConfig {
            model,
            max_steps: None,
            max_seconds: Some(180.0),
            seed: 0,
            batch_size: 8,
            segment_samples,
            learning_rate,
            validation_fraction: 0.1,
            validate_every_steps: 50,
            patience_validations: 12,
            gradient_clip: 1.0,
            loss: LossWeights::default(),
        }
    }

    /// Samples at the start of an LSTM segment that warm its state up without being scored.
    fn warmup_samples(&self) -> usize {
        match self.model {
            ModelConfig::Wavenet(_) => 0,
            ModelConfig::Lstm(_) => 256,
        }
    }
}

/// A progress report, sent after every step.
#[derive(Clone, Debug)]
pub struct TrainProgress {
    /// Steps taken so far.
    pub step: u64,
    /// Training loss of the last step.
    pub loss: f32,
    /// Best validation ESR so far (infinite before the first validation).
    pub best_validation_esr: f32,
    /// Seconds since training started.
    pub elapsed_seconds: f32,
    /// Fraction of the budget used, 0..1.
    pub fraction_done: f32,
}

/// What a run produced: the best weights and how good they are.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// Weights of the best validation checkpoint.
    pub weights: Weights,
    /// Accuracy of those weights on the held-out validation tails.
    pub accuracy: Accuracy,
    /// How the run went.
    pub summary: TrainingSummary,
    /// Divergences caught and rolled back.
    pub rollbacks: u32,
}

/// Trains `config.model` on `dataset`. `progress` is called after every step; setting
/// `stop` ends the run early (the best checkpoint so far is returned). Runs on a thread of
/// its own with a 512 MiB stack and returns when done.
pub fn train(
    config: &TrainConfig,
    dataset: &Dataset,
    stop: Option<&AtomicBool>,
    progress: &mut (dyn FnMut(&TrainProgress) + Send),
) -> Result<TrainOutcome> {
    ensure!(
        config.max_steps.is_some() || config.max_seconds.is_some(),
        "training needs a step or time budget"
    );
    ensure!(
        config.batch_size > 0 && config.segment_samples > 0,
        "batch and segment sizes must be positive"
    );
    ensure!(
        dataset.knobs.len() == config.model.num_knobs(),
        "the data has {} knobs but the model takes {}",
        dataset.knobs.len(),
        config.model.num_knobs()
    );
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("doppel-train".into())
            .stack_size(512 << 20)
            .spawn_scoped(scope, || Trainer::new(config, dataset)?.run(stop, progress))
            .context("cannot start the training thread")?
            .join()
            .map_err(|_| anyhow::anyhow!("the training thread panicked"))?
    })
}

struct Trainer<'a> {
    config: &'a TrainConfig,
    dataset: &'a Dataset,
    /// Per capture: where its held-out tail starts (training uses what lies before) and its knobs.
    splits: Vec<validate::Region>,
    varmap: VarMap,
    model: Model,
    device: Device,
    rng: ChaCha8Rng,
}

impl<'a> Trainer<'a> {
    fn new(config: &'a TrainConfig, dataset: &'a Dataset) -> Result<Self> {
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let model = Model::new(&config.model, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
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
                Ok(validate::Region {
                    start: train_end,
                    knobs: dataset.normalized_knobs(i),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let trainer = Trainer {
            config,
            dataset,
            splits,
            varmap,
            model,
            device,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
        };
        // candle's CPU initialisers draw from an unseeded RNG; overwrite them so a seed
        // reproduces a run.
        trainer.restore(&initial_weights(&config.model, config.seed))?;
        Ok(trainer)
    }

    /// One random batch: input `[batch, 1 + knobs, context + segment]`, target `[batch, segment]`.
    fn batch(&mut self) -> Result<(Tensor, Tensor)> {
        let config = self.config;
        let channels = 1 + config.model.num_knobs();
        let context = config.model.receptive_field() - 1;
        let length = context + config.warmup_samples() + config.segment_samples;
        let lengths: Vec<usize> = self.splits.iter().map(|s| s.start - length).collect();
        let total: usize = lengths.iter().sum();
        let mut inputs = Vec::with_capacity(config.batch_size * channels * length);
        let mut targets = Vec::with_capacity(config.batch_size * config.segment_samples);
        for _ in 0..config.batch_size {
            let mut position = self.rng.random_range(0..total.max(1));
            let mut pair = 0;
            while position >= lengths[pair] && pair + 1 < lengths.len() {
                position -= lengths[pair];
                pair += 1;
            }
            let capture = &self.dataset.pairs[pair];
            inputs.extend_from_slice(&capture.input[position..position + length]);
            for &knob in &self.splits[pair].knobs {
                inputs.extend(std::iter::repeat_n(knob, length));
            }
            let target_start = position + length - config.segment_samples;
            targets.extend_from_slice(&capture.target[target_start..position + length]);
        }
        let input = Tensor::from_vec(inputs, (config.batch_size, channels, length), &self.device)?;
        let target = Tensor::from_vec(targets, (config.batch_size, config.segment_samples), &self.device)?;
        Ok((input, target))
    }

    fn learning_rate(&self, step: u64, fraction_done: f32) -> f64 {
        const WARMUP_STEPS: u64 = 20;
        let warmup = ((step + 1) as f64 / WARMUP_STEPS as f64).min(1.0);
        // Exponential decay to a tenth of the peak over the budget.
        warmup * self.config.learning_rate * 0.1f64.powf(fraction_done.clamp(0.0, 1.0) as f64)
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

    fn restore(&self, weights: &Weights) -> Result<()> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("variable map lock poisoned"))?;
        for (name, tensor) in weights.to_candle(&self.device)? {
            data.get(&name)
                .with_context(|| format!("no variable '{name}'"))?
                .set(&tensor)?;
        }
        Ok(())
    }

    fn run(
        mut self,
        stop: Option<&AtomicBool>,
        progress: &mut (dyn FnMut(&TrainProgress) + Send),
    ) -> Result<TrainOutcome> {
        let config = self.config;
        let start = Instant::now();
        let params = ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: 0.0,
            ..Default::default()
        };
        let mut optimizer = candle_nn::AdamW::new(self.varmap.all_vars(), params.clone())?;
        let mut lr_scale = 1.0;
        let mut best = Weights::from_varmap(&self.varmap)?;
        let mut best_esr = validate::validation_esr(&config.model, &best, self.dataset, &self.splits)?.esr;
        let mut summary = TrainingSummary {
            data_seconds: self.dataset.seconds() * (1.0 - config.validation_fraction),
            device_latency_samples: self.dataset.pairs.iter().map(|p| p.latency_samples).collect(),
            alignment_margin_samples: self.dataset.alignment_margin_samples,
            seed: config.seed,
            ..Default::default()
        };
        summary.validation_curve.push((0, best_esr));
        let (mut step, mut rollbacks, mut stale_validations) = (0u64, 0u32, 0u32);
        let mut recent_loss = f32::INFINITY;
        let mut loss_points = Vec::new();
        loop {
            let fraction = self.fraction_done(step, start);
            if fraction >= 1.0
                || stop.is_some_and(|s| s.load(Ordering::Relaxed))
                || stale_validations >= config.patience_validations
            {
                break;
            }
            optimizer.set_learning_rate(self.learning_rate(step, fraction) * lr_scale);
            let (input, target) = self.batch()?;
            let prediction = self.model.forward(&input)?;
            let prediction = prediction.narrow(1, config.warmup_samples(), config.segment_samples)?;
            let loss = config.loss.loss(&prediction, &target)?;
            let loss_value = loss.to_scalar::<f32>()?;
            let mut diverged =
                !loss_value.is_finite() || (recent_loss.is_finite() && loss_value > 50.0 * recent_loss.max(1e-4));
            if !diverged {
                let mut grads = loss.backward()?;
                let norm = loss::clip_gradients(&mut grads, &self.varmap.all_vars(), config.gradient_clip)?;
                diverged = !norm.is_finite();
                if !diverged {
                    optimizer.step(&grads)?;
                }
            }
            if diverged {
                // Roll back to the best weights, halve the learning rate, start Adam afresh.
                self.restore(&best)?;
                lr_scale *= 0.5;
                optimizer = candle_nn::AdamW::new(self.varmap.all_vars(), params.clone())?;
                rollbacks += 1;
                recent_loss = f32::INFINITY;
                ensure!(
                    rollbacks <= 20,
                    "training keeps diverging; giving up after {rollbacks} roll-backs"
                );
                continue;
            }
            step += 1;
            recent_loss = if recent_loss.is_finite() {
                0.9 * recent_loss + 0.1 * loss_value
            } else {
                loss_value
            };
            loss_points.push((step, loss_value));
            if step % config.validate_every_steps == 0 {
                let weights = Weights::from_varmap(&self.varmap)?;
                let esr = validate::validation_esr(&config.model, &weights, self.dataset, &self.splits)?.esr;
                summary.validation_curve.push((step, esr));
                if esr.is_finite() && esr < best_esr {
                    (best, best_esr, stale_validations) = (weights, esr, 0);
                } else {
                    stale_validations += 1;
                }
            }
            progress(&TrainProgress {
                step,
                loss: loss_value,
                best_validation_esr: best_esr,
                elapsed_seconds: start.elapsed().as_secs_f32(),
                fraction_done: self.fraction_done(step, start),
            });
        }
        // Score the latest weights too, in case the run ended between validations.
        let last = Weights::from_varmap(&self.varmap)?;
        if step % config.validate_every_steps != 0 {
            let esr = validate::validation_esr(&config.model, &last, self.dataset, &self.splits)?.esr;
            summary.validation_curve.push((step, esr));
            if esr.is_finite() && esr < best_esr {
                best = last;
            }
        }
        let accuracy = validate::validation_esr(&config.model, &best, self.dataset, &self.splits)?;
        summary.steps = step;
        summary.wall_seconds = start.elapsed().as_secs_f32();
        summary.loss_curve = thin(&loss_points, 48);
        Ok(TrainOutcome {
            weights: best,
            accuracy,
            summary,
            rollbacks,
        })
    }
}

/// Deterministic starting weights: biases zero, every other tensor uniform in
/// `±1/sqrt(fan_in)` (fan-in = all dimensions but the first), from `seed`.
pub fn initial_weights(model: &ModelConfig, seed: u64) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_1417);
    let mut weights = Weights::default();
    for (name, shape) in model.tensor_shapes() {
        let count: usize = shape.iter().product();
        let data = if name.ends_with("bias") {
            vec![0.0; count]
        } else {
            let fan_in = shape[1..].iter().product::<usize>().max(1);
            let bound = 1.0 / (fan_in as f32).sqrt();
            (0..count).map(|_| rng.random_range(-bound..bound)).collect()
        };
        weights.insert(name, shape, data);
    }
    weights
}

/// At most `points` evenly spread entries of `curve`, keeping the last.
fn thin(curve: &[(u64, f32)], points: usize) -> Vec<(u64, f32)> {
    if curve.len() <= points {
        return curve.to_vec();
    }
    let mut thinned: Vec<_> = (0..points - 1).map(|i| curve[i * curve.len() / (points - 1)]).collect();
    thinned.push(*curve.last().expect("curve is not empty"));
    thinned
}

#[cfg(test)]
mod tests;
