//! Model hot swap: a [`LoadedModel`] is built off the audio thread (GUI, host state restore,
//! later the trainer), posted to a single-slot [`Mailbox`], taken by the audio thread's
//! [`ModelPlayer`] at the start of a block, and the model it replaces goes back through an
//! `rtrb` queue so that it is dropped off the audio thread.
//!
//! Threads: `LoadedModel::build`/`passthrough` and `Mailbox::post` anywhere but the audio
//! thread; `ModelPlayer::poll` and everything reached from it on the audio thread only.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Result};
use doppel_engine::interop::calibration_gains_db;
use doppel_engine::{Profile, ProfileMeta, StreamingModel};

/// Most samples processed per model call; the processor splits host blocks into sub-blocks of
/// at most this length, so kernels are built for it (knob changes land within one sub-block).
pub const SUB_BLOCK_SAMPLES: usize = 64;
/// Most audio channels processed (one kernel each).
pub const MAX_CHANNELS: usize = 2;
/// Largest model latency accepted, in samples (sizes the dry-path delay lines).
pub use doppel_engine::profile::MAX_LATENCY_SAMPLES;
/// Capacity of the retire queue (audio -> off-audio). One swap retires one model, and the
/// off-audio side drains the queue before every post, so a handful is plenty.
pub const RETIRE_CAPACITY: usize = 8;

/// A model ready to play: the profile header plus one streaming kernel and one dry-path delay
/// line per channel. `meta == None` is pass-through (no model loaded).
pub struct LoadedModel {
    /// Header of the profile this model came from; `None` for pass-through.
    pub meta: Option<Arc<ProfileMeta>>,
    /// One kernel per channel (`MAX_CHANNELS` of them; empty for pass-through).
    pub(crate) kernels: Vec<StreamingModel>,
    /// One dry-path delay per channel, matching the model's latency.
    pub(crate) dry_delays: Vec<DelayLine>,
    /// Linear gain into the model from the profile's input-level calibration (1 when unknown).
    pub(crate) input_calibration_gain: f32,
    /// Linear gain on the model's output normalising its loudness (1 when unknown).
    pub(crate) output_calibration_gain: f32,
}

impl LoadedModel {
    /// Builds kernels for every channel from a validated profile. Not real-time safe.
    pub fn build(profile: &Profile) -> Result<Self> {
        let meta = &profile.meta;
        ensure!(
            meta.latency_samples <= MAX_LATENCY_SAMPLES,
            "profile latency of {} samples exceeds the supported {MAX_LATENCY_SAMPLES}",
            meta.latency_samples
        );
        let kernels = (0..MAX_CHANNELS)
            .map(|_| StreamingModel::new(&meta.model, &profile.weights, SUB_BLOCK_SAMPLES))
            .collect::<Result<Vec<_>>>()?;
        let dry_delays = (0..MAX_CHANNELS)
            .map(|_| DelayLine::new(meta.latency_samples as usize))
            .collect();
        let (input_db, output_db) = calibration_gains_db(meta);
        Ok(LoadedModel {
            meta: Some(Arc::new(meta.clone())),
            kernels,
            dry_delays,
            input_calibration_gain: 10f32.powf(input_db / 20.0),
            output_calibration_gain: 10f32.powf(output_db / 20.0),
        })
    }

    /// The "no model" state: audio passes through (gains and mix still apply).
    pub fn passthrough() -> Self {
        LoadedModel {
            meta: None,
            kernels: Vec::new(),
            dry_delays: (0..MAX_CHANNELS).map(|_| DelayLine::new(0)).collect(),
            input_calibration_gain: 1.0,
            output_calibration_gain: 1.0,
        }
    }

    /// Number of knobs the model takes (0 for pass-through).
    pub fn num_knobs(&self) -> usize {
        self.meta.as_ref().map_or(0, |m| m.knobs.len())
    }

    /// Latency the model adds, in samples.
    pub fn latency_samples(&self) -> u32 {
        self.meta.as_ref().map_or(0, |m| m.latency_samples)
    }

    /// Clears kernel history (prewarming with `knobs`) and the dry delays. Real-time safe.
    pub fn reset(&mut self, knobs: &[f32]) {
        let knobs = &knobs[..self.num_knobs().min(knobs.len())];
        for kernel in &mut self.kernels {
            kernel.reset(knobs);
        }
        for delay in &mut self.dry_delays {
            delay.clear();
        }
    }
}

/// A fixed delay of `len` samples (the seam that keeps dry and wet aligned once a model reports
/// latency; `len == 0` is a wire). Sized off the audio thread, used on it.
pub struct DelayLine {
    buffer: Vec<f32>,
    position: usize,
}

impl DelayLine {
    /// A delay of `len_samples` samples, initially silent.
    pub fn new(len_samples: usize) -> Self {
        DelayLine {
            buffer: vec![0.0; len_samples],
            position: 0,
        }
    }

    /// Pushes `x` and returns the sample from `len` samples ago. Real-time safe.
    #[inline]
    pub fn process(&mut self, x: f32) -> f32 {
        if self.buffer.is_empty() {
            return x;
        }
        let out = std::mem::replace(&mut self.buffer[self.position], x);
        self.position = (self.position + 1) % self.buffer.len();
        out
    }

    /// Silences the delay. Real-time safe.
    pub fn clear(&mut self) {
        self.buffer.fill(0.0);
        self.position = 0;
    }
}

/// A lock-free single-slot mailbox: the newest posted value wins. Posting off the audio thread
/// hands back a value the audio thread never took, so it is dropped by the poster; taking on the
/// audio thread is one atomic swap and never allocates or frees.
pub struct Mailbox<T> {
    slot: AtomicPtr<T>,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox {
            slot: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

impl<T> Mailbox<T> {
    /// Puts `value` in the slot; returns the previous value if it was never taken.
    pub fn post(&self, value: Box<T>) -> Option<Box<T>> {
        let old = self.slot.swap(Box::into_raw(value), Ordering::AcqRel);
        // SAFETY: every non-null pointer in the slot came from `Box::into_raw`, and the swap
        // transferred its ownership to us alone.
        (!old.is_null()).then(|| unsafe { Box::from_raw(old) })
    }

    /// Takes the posted value, if any. Real-time safe.
    pub fn take(&self) -> Option<Box<T>> {
        let value = self.slot.swap(ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: as in `post`.
        (!value.is_null()).then(|| unsafe { Box::from_raw(value) })
    }
}

impl<T> Drop for Mailbox<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

// SAFETY: the mailbox only moves owned `Box<T>`s between threads.
unsafe impl<T: Send> Send for Mailbox<T> {}
// SAFETY: all shared access goes through atomic swaps that transfer ownership.
unsafe impl<T: Send> Sync for Mailbox<T> {}

/// The audio thread's end of the swap: the model playing now, the mailbox it polls and the queue
/// that takes retired models away.
pub struct ModelPlayer {
    current: Box<LoadedModel>,
    mailbox: Arc<Mailbox<LoadedModel>>,
    retire: rtrb::Producer<Box<LoadedModel>>,
    /// A retired model the queue had no room for; no new model is taken until it is gone.
    parked: Option<Box<LoadedModel>>,
}

impl ModelPlayer {
    /// A player starting in pass-through, plus the consumer end of its retire queue.
    pub fn new(mailbox: Arc<Mailbox<LoadedModel>>) -> (Self, rtrb::Consumer<Box<LoadedModel>>) {
        let (retire, retired) = rtrb::RingBuffer::new(RETIRE_CAPACITY);
        let player = ModelPlayer {
            current: Box::new(LoadedModel::passthrough()),
            mailbox,
            retire,
            parked: None,
        };
        (player, retired)
    }

    /// Swaps in a newly posted model, if any, resetting it with `knobs` (normalised 0..1).
    /// Returns true when a swap happened. Real-time safe: no allocation or deallocation.
    pub fn poll(&mut self, knobs: &[f32]) -> bool {
        if let Some(parked) = self.parked.take() {
            if let Err(rtrb::PushError::Full(parked)) = self.retire.push(parked) {
                self.parked = Some(parked);
                return false;
            }
        }
        let Some(mut next) = self.mailbox.take() else {
            return false;
        };
        next.reset(knobs);
        let old = std::mem::replace(&mut self.current, next);
        if let Err(rtrb::PushError::Full(old)) = self.retire.push(old) {
            self.parked = Some(old);
        }
        true
    }

    /// The model playing now.
    pub fn current(&self) -> &LoadedModel {
        &self.current
    }

    /// The model playing now, mutably (audio thread).
    pub fn current_mut(&mut self) -> &mut LoadedModel {
        &mut self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_keeps_the_newest_and_returns_the_untaken() {
        let mailbox = Mailbox::default();
        assert!(mailbox.take().is_none());
        assert!(mailbox.post(Box::new(1)).is_none());
        assert_eq!(mailbox.post(Box::new(2)).as_deref(), Some(&1));
        assert_eq!(mailbox.take().as_deref(), Some(&2));
        assert!(mailbox.take().is_none());
    }

    #[test]
    fn delay_line_delays_by_its_length() {
        let mut wire = DelayLine::new(0);
        assert_eq!(wire.process(0.5), 0.5);
        let mut delay = DelayLine::new(3);
        let out: Vec<f32> = (1..=6).map(|i| delay.process(i as f32)).collect();
        assert_eq!(out, [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
        delay.clear();
        assert_eq!(delay.process(9.0), 0.0);
    }

    #[test]
    fn player_retires_the_replaced_model_and_parks_when_full() {
        let mailbox = Arc::new(Mailbox::default());
        let (mut player, mut retired) = ModelPlayer::new(mailbox.clone());
        assert!(!player.poll(&[]));
        for _ in 0..RETIRE_CAPACITY + 1 {
            mailbox.post(Box::new(LoadedModel::passthrough()));
            assert!(player.poll(&[]));
        }
        // The queue is full and one model is parked: no new model is taken until it drains.
        assert_eq!(retired.slots(), RETIRE_CAPACITY);
        mailbox.post(Box::new(LoadedModel::passthrough()));
        assert!(!player.poll(&[]));
        while retired.pop().is_ok() {}
        assert!(player.poll(&[]));
        assert_eq!(retired.slots(), 2, "the parked model and the one just replaced");
    }
}
