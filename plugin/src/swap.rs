//! Model hot swap: a [`LoadedModel`] is built and pre-warmed off the audio thread (GUI, host
//! state restore, the trainer), posted to a single-slot [`Mailbox`], taken by the audio
//! thread's [`ModelPlayer`] at a block boundary and crossfaded in over [`SWAP_FADE_MS`] (both
//! models play during the fade), and the model it replaces goes back through an `rtrb` queue
//! so that it is dropped off the audio thread. Nothing here evaluates a model's receptive
//! field on the audio thread: a swapped-in model arrives warm, and a reset copies back the
//! warm state kept at build time ([`StreamingModel::reset_warm`]).
//!
//! Threads: `LoadedModel::build`/`passthrough` and `Mailbox::post` anywhere but the audio
//! thread; `ModelPlayer::poll` and everything reached from it on the audio thread only.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;

use atomic_float::AtomicF32;
use doppel_engine::model::MAX_KNOBS;

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
/// Length of the crossfade from one model to the next, in ms.
pub const SWAP_FADE_MS: f32 = 20.0;
/// The knob values playing now (normalised), published by the audio thread every block so
/// that a model built elsewhere starts warm for them.
#[derive(Debug, Default)]
pub struct KnobsNow {
    values: [AtomicF32; MAX_KNOBS],
    /// Whether audio has published any yet.
    published: AtomicBool,
}

impl KnobsNow {
    /// The knobs playing, or `None` before audio has run.
    pub fn get(&self) -> Option<[f32; MAX_KNOBS]> {
        self.published
            .load(Ordering::Acquire)
            .then(|| std::array::from_fn(|i| self.values[i].load(Ordering::Relaxed)))
    }
}

/// Capacity of the retire queue (audio -> off-audio). One swap retires one model, and the
/// off-audio side drains the queue before every post, so a handful is plenty.
pub const RETIRE_CAPACITY: usize = 8;

/// A model ready to play: the profile header plus one streaming kernel per channel (or one
/// linked kernel for the pair) and one dry-path delay line per channel. `meta == None` is
/// pass-through (no model loaded).
pub struct LoadedModel {
    /// Header of the profile this model came from; `None` for pass-through.
    pub meta: Option<Arc<ProfileMeta>>,
    /// One kernel per channel (`MAX_CHANNELS` of them; empty for pass-through), or for a
    /// stereo-linked model one kernel for the pair.
    pub(crate) kernels: Vec<StreamingModel>,
    /// A stereo-linked model's gain over the current sub-block, the same for both channels
    /// (computed from both before either is processed; empty for other models).
    pub(crate) linked_gain: Vec<f32>,
    /// One dry-path delay per channel, matching the model's latency.
    pub(crate) dry_delays: Vec<DelayLine>,
    /// Linear gain into the model from the profile's input-level calibration (1 when unknown).
    pub(crate) input_calibration_gain: f32,
    /// Linear gain on the model's output normalising its loudness (1 when unknown).
    pub(crate) output_calibration_gain: f32,
}

impl LoadedModel {
    /// Builds kernels for every channel (one for the pair, when the model is stereo-linked)
    /// from a validated profile, warm for `knobs` (normalised 0..1, the knobs playing now):
    /// they start as if they had played silence with those knobs, and keep that state for
    /// [`Self::reset`]. Not real-time safe.
    pub fn build(profile: &Profile, knobs: &[f32]) -> Result<Self> {
        let meta = &profile.meta;
        ensure!(
            meta.latency_samples <= MAX_LATENCY_SAMPLES,
            "profile latency of {} samples exceeds the supported {MAX_LATENCY_SAMPLES}",
            meta.latency_samples
        );
        let knobs = &knobs[..meta.knobs.len().min(knobs.len())];
        // Warmed once; the other channels clone the warm kernel (its state and stored warm
        // state come along), so a stereo build costs one warm-up, not two.
        let mut first = StreamingModel::new(&meta.model, &profile.weights, SUB_BLOCK_SAMPLES)?;
        first.store_warm_state(knobs);
        let (kernels, linked_gain) = if first.is_linked() {
            (vec![first], vec![1.0; SUB_BLOCK_SAMPLES])
        } else {
            (vec![first; MAX_CHANNELS], Vec::new())
        };
        let dry_delays = (0..MAX_CHANNELS)
            .map(|_| DelayLine::new(meta.latency_samples as usize))
            .collect();
        let (input_db, output_db) = calibration_gains_db(meta);
        Ok(LoadedModel {
            meta: Some(Arc::new(meta.clone())),
            kernels,
            linked_gain,
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
            linked_gain: Vec::new(),
            dry_delays: (0..MAX_CHANNELS).map(|_| DelayLine::new(0)).collect(),
            input_calibration_gain: 1.0,
            output_calibration_gain: 1.0,
        }
    }

    /// Whether one linked kernel plays both channels (a stereo-linked compressor).
    pub fn is_linked(&self) -> bool {
        !self.linked_gain.is_empty()
    }

    /// Number of knobs the model takes (0 for pass-through).
    pub fn num_knobs(&self) -> usize {
        self.meta.as_ref().map_or(0, |m| m.knobs.len())
    }

    /// Latency the model adds, in samples.
    pub fn latency_samples(&self) -> u32 {
        self.meta.as_ref().map_or(0, |m| m.latency_samples)
    }

    /// Returns the kernels to their warm state (copied, not computed: see
    /// [`StreamingModel::reset_warm`]) with `knobs`, and clears the dry delays. Real-time safe.
    pub fn reset(&mut self, knobs: &[f32]) {
        let knobs = &knobs[..self.num_knobs().min(knobs.len())];
        for kernel in &mut self.kernels {
            kernel.reset_warm(knobs);
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

/// The audio thread's end of the swap: the model playing now, the one fading out, the mailbox
/// it polls and the queue that takes retired models away.
pub struct ModelPlayer {
    current: Box<LoadedModel>,
    /// The model being faded out, and the samples of the fade played so far.
    fading: Option<(Box<LoadedModel>, usize)>,
    mailbox: Arc<Mailbox<LoadedModel>>,
    retire: rtrb::Producer<Box<LoadedModel>>,
    /// A retired model the queue had no room for; no new model is taken until it is gone.
    parked: Option<Box<LoadedModel>>,
    knobs_now: Arc<KnobsNow>,
    /// Nothing played since the last reset (see [`Self::mark_fresh`]).
    fresh: bool,
}

impl ModelPlayer {
    /// A player starting in pass-through, plus the consumer end of its retire queue.
    /// `knobs_now` is where it publishes the knobs playing.
    pub fn new(
        mailbox: Arc<Mailbox<LoadedModel>>,
        knobs_now: Arc<KnobsNow>,
    ) -> (Self, rtrb::Consumer<Box<LoadedModel>>) {
        let (retire, retired) = rtrb::RingBuffer::new(RETIRE_CAPACITY);
        let player = ModelPlayer {
            current: Box::new(LoadedModel::passthrough()),
            fading: None,
            mailbox,
            retire,
            parked: None,
            knobs_now,
            fresh: true,
        };
        (player, retired)
    }

    /// Publishes the knob values playing now. Real-time safe (relaxed atomic stores).
    pub fn publish_knobs(&self, knobs: &[f32; MAX_KNOBS]) {
        for (slot, &value) in self.knobs_now.values.iter().zip(knobs) {
            slot.store(value, Ordering::Relaxed);
        }
        self.knobs_now.published.store(true, Ordering::Release);
    }

    /// Nothing has played since the last reset: the next swap is immediate (there is no
    /// sound to fade from, and a fresh render stays bit-exact). Real-time safe.
    pub fn mark_fresh(&mut self) {
        self.fresh = true;
    }

    /// Audio has played since the last reset. Real-time safe.
    pub fn mark_played(&mut self) {
        self.fresh = false;
    }

    /// Takes a newly posted model, if any, and starts crossfading to it (it arrives warm: no
    /// reset here). While a fade runs, the next model waits in the mailbox. Returns true when
    /// a new model was taken. Real-time safe: no allocation or deallocation.
    pub fn poll(&mut self) -> bool {
        if let Some(parked) = self.parked.take() {
            if let Err(rtrb::PushError::Full(parked)) = self.retire.push(parked) {
                self.parked = Some(parked);
                return false;
            }
        }
        if self.fading.is_some() {
            return false;
        }
        let Some(next) = self.mailbox.take() else {
            return false;
        };
        let old = std::mem::replace(&mut self.current, next);
        if self.fresh {
            self.retire_model(old);
        } else {
            self.fading = Some((old, 0));
        }
        true
    }

    /// Advances the crossfade by `samples` of a fade `fade_samples` long; once it is
    /// complete, the old model is retired. Real-time safe.
    pub fn advance_fade(&mut self, samples: usize, fade_samples: usize) {
        let Some((_, position)) = &mut self.fading else {
            return;
        };
        *position += samples;
        if *position < fade_samples {
            return;
        }
        if let Some((old, _)) = self.fading.take() {
            self.retire_model(old);
        }
    }

    /// Ends a running crossfade at once (a host reset: there is no past to fade from).
    /// Real-time safe.
    pub fn finish_fade(&mut self) {
        if let Some((old, _)) = self.fading.take() {
            self.retire_model(old);
        }
    }

    fn retire_model(&mut self, old: Box<LoadedModel>) {
        if let Err(rtrb::PushError::Full(old)) = self.retire.push(old) {
            // Only one model is ever parked: `poll` takes no new one while one is.
            self.parked = Some(old);
        }
    }

    /// The model playing now.
    pub fn current(&self) -> &LoadedModel {
        &self.current
    }

    /// The model playing now, mutably (audio thread).
    pub fn current_mut(&mut self) -> &mut LoadedModel {
        &mut self.current
    }

    /// The model playing now and, during a crossfade, the one fading out with the samples
    /// of the fade played so far, mutably (audio thread).
    pub fn models_mut(&mut self) -> (&mut LoadedModel, Option<(&mut LoadedModel, usize)>) {
        let fading = self.fading.as_mut().map(|(m, p)| (&mut **m, *p));
        (&mut self.current, fading)
    }

    /// Whether a crossfade is running.
    pub fn is_fading(&self) -> bool {
        self.fading.is_some()
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
    fn player_fades_then_retires_the_replaced_model_and_parks_when_full() {
        let mailbox = Arc::new(Mailbox::default());
        let (mut player, mut retired) = ModelPlayer::new(mailbox.clone(), Arc::default());
        assert!(!player.poll());
        // Before anything played, a swap is immediate.
        mailbox.post(Box::new(LoadedModel::passthrough()));
        assert!(player.poll() && !player.is_fading());
        while retired.pop().is_ok() {}
        player.mark_played();
        mailbox.post(Box::new(LoadedModel::passthrough()));
        assert!(player.poll());
        assert!(player.is_fading());
        // A model posted during the fade waits for it to end.
        mailbox.post(Box::new(LoadedModel::passthrough()));
        assert!(!player.poll());
        player.advance_fade(5, 10);
        assert!(player.is_fading() && retired.slots() == 0);
        player.advance_fade(5, 10);
        assert!(!player.is_fading());
        assert_eq!(retired.slots(), 1, "the faded-out model is retired");
        for _ in 0..RETIRE_CAPACITY {
            assert!(player.poll());
            player.finish_fade();
            mailbox.post(Box::new(LoadedModel::passthrough()));
        }
        // The queue is full and one model is parked: no new model is taken until it drains.
        assert_eq!(retired.slots(), RETIRE_CAPACITY);
        assert!(!player.poll());
        while retired.pop().is_ok() {}
        assert!(player.poll());
        player.finish_fade();
        assert_eq!(retired.slots(), 2, "the parked model and the one just replaced");
    }
}
