//! Training on CPU: random segment batches, a weighted objective (ESR, pre-emphasised and
//! A-weighted ESR, multi-resolution STFT, DC), AdamW with warm-up and decay, gradient
//! clipping, periodic validation through the streaming kernel, best-checkpoint keeping,
//! divergence roll-back and early stopping. WaveNets train through a hand-derived pass split
//! over worker threads; recurrent models through candle's autograd. [`Session`] is what the
//! CLI and the plugin drive: captures in (files or memory), checkpoints out as they improve,
//! stop, pause and more data while it runs, a [`Profile`](crate::Profile) at the end.
//!
//! Threads: every run owns a worker pool of [`TrainConfig::threads`] threads (large stacks,
//! since candle's backward pass recurses) and runs inside it, so neither the hand-derived pass
//! nor candle's kernels touch rayon's global pool, and no thread is spawned per step.

mod adam;
mod backend;
mod compressor_grad;
mod dense;
pub mod objective;
mod params;
mod runner;
mod session;
mod validate;
mod wavenet_grad;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{ensure, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dataset::Dataset;
use crate::model::ModelConfig;
use crate::profile::{Accuracy, TrainingSummary, Weights};

pub use objective::{EffectKind, Objective};
pub use session::{
    CaptureInput, Checkpoint, Session, SessionConfig, SessionControl, SessionEvent, SessionOutcome,
    DEFAULT_MAX_MARGIN_SAMPLES,
};

/// Stack size of each training worker of a recurrent model, in bytes: candle's backward pass
/// recurses once per graph node, tens of thousands deep for a few thousand time steps (address
/// space, committed only as used).
const CANDLE_WORKER_STACK_BYTES: usize = 512 << 20;
/// Stack size of each training worker of a WaveNet (the hand-derived pass does not recurse).
const HAND_WORKER_STACK_BYTES: usize = 8 << 20;

/// Hyperparameters of a training run.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Architecture and size to train.
    pub model: ModelConfig,
    /// Stop after this many optimiser steps.
    pub max_steps: Option<u64>,
    /// Stop after this much wall time, in seconds (validation included, paused time not).
    pub max_seconds: Option<f32>,
    /// Seed for initialisation and batch sampling.
    pub seed: u64,
    /// Segments per batch.
    pub batch_size: usize,
    /// Output samples per segment that the loss sees.
    pub segment_samples: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// The learning rate decays exponentially from the peak to this fraction of it at the
    /// end of the budget.
    pub final_learning_rate_fraction: f64,
    /// Fraction of each capture's tail held out for validation.
    pub validation_fraction: f32,
    /// Validate every this many steps.
    pub validate_every_steps: u64,
    /// Stop early after this many validations without improvement.
    pub patience_validations: u32,
    /// Global gradient-norm clip.
    pub gradient_clip: f32,
    /// Loss terms and their weights.
    pub objective: Objective,
    /// Worker threads of the run's own pool (the gradient, the objective and candle's kernels);
    /// all cores by default.
    pub threads: usize,
    /// Report a snapshot of the best weights so far each time this much wall time passes, in
    /// seconds (none when 0): the accuracy-versus-time curve of one run ([`Session`] reports
    /// them as [`SessionEvent::Snapshot`]; [`train`] has nowhere to and ignores it).
    pub snapshot_every_seconds: f32,
    /// Unscored samples ahead of each segment that warm a stateful model up (recurrent and
    /// compressor models; 0 for a WaveNet, whose context is its receptive field).
    pub warmup_samples: usize,
    /// The effect kind (recorded in the profile; the objective already reflects it).
    pub effect: EffectKind,
}

impl TrainConfig {
    /// Defaults suited to the architecture: a few minutes of CPU training.
    pub fn new(model: ModelConfig) -> Self {
        let (learning_rate, segment_samples) = match &model {
            ModelConfig::Wavenet(_) => (2e-2, 4096),
            ModelConfig::Lstm(_) | ModelConfig::Gru(_) => (5e-3, 2048),
            // A second scored per segment: long enough to hear a release.
            ModelConfig::Compressor(c) => (1e-2, c.sample_rate_hz as usize),
        };
        TrainConfig {
            warmup_samples: Self::default_warmup_samples(&model),
            effect: EffectKind::AmpCab,
            model,
            max_steps: None,
            max_seconds: Some(180.0),
            seed: 0,
            batch_size: 8,
            segment_samples,
            learning_rate,
            final_learning_rate_fraction: 0.02,
            validation_fraction: 0.1,
            validate_every_steps: 50,
            patience_validations: 20,
            gradient_clip: 1.0,
            objective: Objective::for_effect(EffectKind::AmpCab),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            snapshot_every_seconds: 0.0,
        }
    }

    /// The architecture's default unscored warm-up ahead of each segment.
    fn default_warmup_samples(model: &ModelConfig) -> usize {
        match model {
            ModelConfig::Wavenet(_) => 0,
            ModelConfig::Lstm(_) | ModelConfig::Gru(_) => 256,
            // Half a second settles the detector and most releases (the state starts steady).
            ModelConfig::Compressor(c) => c.sample_rate_hz as usize / 2,
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
    /// Seconds since training started, paused time excluded.
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

/// Trains `config.model` on `dataset` from seeded initial weights. `progress` is called after
/// every step; setting `stop` ends the run early (the best checkpoint so far is returned).
/// Runs on a worker pool of its own and returns when done. [`Session`] is the full-featured
/// driver; this is the bare loop.
pub fn train(
    config: &TrainConfig,
    dataset: &Dataset,
    stop: Option<&AtomicBool>,
    progress: &mut (dyn FnMut(&TrainProgress) + Send),
) -> Result<TrainOutcome> {
    struct Plain<'a, 'b> {
        stop: Option<&'a AtomicBool>,
        progress: &'b mut (dyn FnMut(&TrainProgress) + Send),
    }
    impl runner::Hooks for Plain<'_, '_> {
        fn stop_requested(&mut self) -> bool {
            self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
        }
        fn progress(&mut self, progress: &TrainProgress) {
            (self.progress)(progress);
        }
    }
    check_config(config, dataset)?;
    let pool = worker_pool(config.threads, &config.model, false)?;
    let mut hooks = Plain { stop, progress };
    run_in(&pool, || {
        runner::Trainer::new(config, dataset.clone(), None)?.run(&mut hooks)
    })
}

/// A pool of `threads` training workers (at least one) for `model` that a run installs itself
/// in. Dropping it lets its workers finish and exit.
/// The session's own pool of `threads` training workers (never rayon's global pool), at a
/// lower OS priority when `lower_priority` (a plugin trains beside the host's audio).
fn worker_pool(threads: usize, model: &ModelConfig, lower_priority: bool) -> Result<rayon::ThreadPool> {
    let stack_bytes = match model {
        ModelConfig::Wavenet(_) | ModelConfig::Compressor(_) => HAND_WORKER_STACK_BYTES,
        ModelConfig::Lstm(_) | ModelConfig::Gru(_) => CANDLE_WORKER_STACK_BYTES,
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .stack_size(stack_bytes)
        .thread_name(|i| format!("doppel-train-{i}"))
        .start_handler(move |_| {
            if lower_priority {
                lower_thread_priority();
            }
        })
        .build()
        .context("cannot start the training workers")
}

/// Nice value the plugin's training workers run at (Linux; 0 is normal, 19 the lowest).
pub const WORKER_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority: on Linux the nice value is per thread,
/// so this touches only the worker; on macOS the thread is put in the background band.
/// Elsewhere it does nothing. Failure is harmless (training just competes at normal priority).
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread's own id.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WORKER_NICE);
    }
    #[cfg(target_os = "macos")]
    // SAFETY: sets the calling thread's own priority band.
    unsafe {
        libc::setpriority(libc::PRIO_DARWIN_THREAD, 0, libc::PRIO_DARWIN_BG);
    }
}

/// Runs `work` on `pool` (so every parallel loop inside it uses the pool's workers), turning a
/// panic into an error instead of unwinding into the caller (the CLI, or the plugin's host).
fn run_in<T: Send>(pool: &rayon::ThreadPool, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.install(work)))
        .map_err(|_| anyhow::anyhow!("the training thread panicked"))?
}

/// Checks that `config` can train on `dataset`.
fn check_config(config: &TrainConfig, dataset: &Dataset) -> Result<()> {
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
    Ok(())
}

/// Deterministic starting weights: biases (and a compressor's stereo link) zero, every other
/// tensor uniform in `±1/sqrt(fan_in)` (fan-in = all dimensions but the first), from `seed`.
pub fn initial_weights(model: &ModelConfig, seed: u64) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_1417);
    let mut weights = Weights::default();
    for (name, shape) in model.tensor_shapes() {
        let count: usize = shape.iter().product();
        // The stereo link starts at an even blend of the channels' mean and louder one.
        let data = if name.ends_with("bias") || name == crate::model::compressor::LINK_TENSOR {
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
