//! The audio thread's side of profiling: plays the capture signal into the device and records
//! the Capture Return into a take prepared off the audio thread (Mode = Capture), streams the
//! main input and the return as training pairs in fixed chunks (Mode = Learn), and crossfades
//! the output between the model, the capture signal and the device (Monitor).
//!
//! Threads: [`CaptureDeck`] lives on the audio thread; the trainer thread prepares [`Take`]s
//! (through a [`Mailbox`]) and receives finished takes and [`LearnChunk`]s through `rtrb`
//! queues; [`DeckStatus`] is read by the GUI. Nothing here allocates, locks or waits, except
//! that an offline render waits for the trainer when the learn queue is full.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atomic_float::AtomicF32;
use doppel_engine::model::MAX_KNOBS;
use doppel_engine::take::TakeProblem;
use doppel_engine::train::EffectKind;
use nice_plug::util::db_to_gain;

use crate::dsp::sanitize;
use crate::params::{Mode, Monitor};
use crate::swap::{Mailbox, MAX_CHANNELS};

/// Samples per learn chunk.
pub const LEARN_CHUNK_SAMPLES: usize = 512;
/// Chunks the learn queue holds (about 5.5 s at 48 kHz).
pub const LEARN_QUEUE_CHUNKS: usize = 512;
/// Finished takes the queue to the trainer holds.
pub const TAKE_QUEUE: usize = 4;
/// Length of the output crossfades between model, capture signal and device, in ms.
pub const OUTPUT_FADE_MS: f32 = 10.0;
/// Longest an offline render waits for the trainer to make room in the learn queue.
pub const OFFLINE_WAIT: Duration = Duration::from_secs(30);
/// Longest round trip (interface plus device) a take allows for, in seconds; it is also
/// recorded after the signal ends, and the latency search window of training.
pub const MAX_ROUND_TRIP_SECONDS: f32 = 0.25;

/// A capture take: the signal to play and room for what comes back. Allocated by the trainer
/// thread, filled by the audio thread, checked by the trainer thread.
pub struct Take {
    /// The capture signal at unit level.
    pub signal: Vec<f32>,
    /// The return, mono, `signal.len()` plus the tail.
    pub returned: Vec<f32>,
    /// Samples recorded so far.
    pub recorded: usize,
    /// Host sample rate the take was prepared for, in Hz.
    pub sample_rate_hz: f32,
    /// Peak level the signal played at, in dBFS (set when the take starts).
    pub level_db: f32,
    /// Plugin knob values (normalised) when the take started: the knob tags.
    pub knobs: [f32; MAX_KNOBS],
    /// What the audio thread saw go wrong during the take, if anything.
    pub problem: Option<TakeProblem>,
    /// The kind of device the signal was made for (the capture signal for an amp, the
    /// dynamics signal for a compressor): what the take trains.
    pub effect: EffectKind,
}

impl Take {
    /// A take of `signal` at `sample_rate_hz`, of the amp capture signal (see [`Take::effect`]).
    /// Not real-time safe: allocates the return.
    pub fn new(signal: Vec<f32>, sample_rate_hz: f32) -> Self {
        let tail = (MAX_ROUND_TRIP_SECONDS * sample_rate_hz) as usize;
        Take {
            returned: vec![0.0; signal.len() + tail],
            signal,
            recorded: 0,
            sample_rate_hz,
            level_db: 0.0,
            knobs: [0.0; MAX_KNOBS],
            problem: None,
            effect: EffectKind::AmpCab,
        }
    }

    /// The signal as it was played (level applied).
    pub fn played(&self) -> Vec<f32> {
        let gain = db_to_gain(self.level_db);
        self.signal.iter().map(|v| v * gain).collect()
    }
}

/// One chunk of Learn data: the main input (dry, mono) and the return on the same clock.
#[derive(Clone, Copy)]
pub struct LearnChunk {
    /// Main input, mono.
    pub input: [f32; LEARN_CHUNK_SAMPLES],
    /// Capture Return, mono.
    pub returned: [f32; LEARN_CHUNK_SAMPLES],
    /// Plugin knob values (normalised) while it was recorded.
    pub knobs: [f32; MAX_KNOBS],
    /// Host sample rate, in Hz.
    pub sample_rate_hz: f32,
}

impl Default for LearnChunk {
    fn default() -> Self {
        LearnChunk {
            input: [0.0; LEARN_CHUNK_SAMPLES],
            returned: [0.0; LEARN_CHUNK_SAMPLES],
            knobs: [0.0; MAX_KNOBS],
            sample_rate_hz: 0.0,
        }
    }
}

/// What the deck is doing, for the GUI and the trainer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DeckPhase {
    /// Playing (Play or Learn).
    Idle = 0,
    /// Mode = Capture, waiting for the trainer to prepare a take.
    Preparing = 1,
    /// Playing the capture signal.
    Capturing = 2,
    /// The take is done; Mode is still Capture.
    Captured = 3,
}

/// Audio-thread state the GUI and the trainer read.
#[derive(Debug, Default)]
pub struct DeckStatus {
    phase: AtomicU8,
    /// Fraction of the take recorded, 0..1.
    pub capture_progress: AtomicF32,
    /// Learn chunks handed to the trainer.
    pub learn_chunks_sent: AtomicU64,
    /// Learn chunks dropped because the trainer fell behind (real-time rendering only).
    pub learn_chunks_dropped: AtomicU64,
    /// Set when the audio thread wants a take prepared (Mode = Capture and none armed).
    pub wants_take: AtomicBool,
}

impl DeckStatus {
    /// The deck's phase.
    pub fn phase(&self) -> DeckPhase {
        match self.phase.load(Ordering::Relaxed) {
            1 => DeckPhase::Preparing,
            2 => DeckPhase::Capturing,
            3 => DeckPhase::Captured,
            _ => DeckPhase::Idle,
        }
    }

    fn set_phase(&self, phase: DeckPhase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }
}

/// The ends of the deck's queues the trainer thread holds.
pub struct DeckLink {
    /// Where the trainer posts a prepared take.
    pub armed: Arc<Mailbox<Take>>,
    /// Finished (or interrupted) takes.
    pub takes: rtrb::Consumer<Box<Take>>,
    /// Learn data.
    pub learn: rtrb::Consumer<LearnChunk>,
    /// Shared status.
    pub status: Arc<DeckStatus>,
}

/// Per-block inputs of the deck.
#[derive(Clone, Copy, Debug)]
pub struct DeckControls {
    /// Play, Capture or Learn.
    pub mode: Mode,
    /// Model or Device.
    pub monitor: Monitor,
    /// Capture signal peak level, in dBFS.
    pub capture_level_db: f32,
    /// Plugin knobs (normalised).
    pub knobs: [f32; MAX_KNOBS],
    /// Whether the host renders offline (no deadline: the learn queue is waited on).
    pub offline: bool,
}

/// Audio-thread profiling state. Everything is allocated at construction.
pub struct CaptureDeck {
    armed: Arc<Mailbox<Take>>,
    take: Option<Box<Take>>,
    takes: rtrb::Producer<Box<Take>>,
    learn: rtrb::Producer<LearnChunk>,
    chunk: LearnChunk,
    chunk_fill: usize,
    status: Arc<DeckStatus>,
    sample_rate_hz: f32,
    /// Output source gains now: model, capture signal, device.
    gains: [f32; 3],
    /// The capture ended (or failed); stays until Mode leaves Capture.
    captured: bool,
    /// Mode in the last block (`None` before the first).
    last_mode: Option<Mode>,
}

impl CaptureDeck {
    /// A deck and the trainer's ends of its queues.
    pub fn new() -> (Self, DeckLink) {
        let armed = Arc::new(Mailbox::default());
        let (takes, take_consumer) = rtrb::RingBuffer::new(TAKE_QUEUE);
        let (learn, learn_consumer) = rtrb::RingBuffer::new(LEARN_QUEUE_CHUNKS);
        let status = Arc::new(DeckStatus::default());
        let deck = CaptureDeck {
            armed: armed.clone(),
            take: None,
            takes,
            learn,
            chunk: LearnChunk::default(),
            chunk_fill: 0,
            status: status.clone(),
            sample_rate_hz: 48_000.0,
            gains: [1.0, 0.0, 0.0],
            captured: false,
            last_mode: None,
        };
        let link = DeckLink {
            armed,
            takes: take_consumer,
            learn: learn_consumer,
            status,
        };
        (deck, link)
    }

    /// The host (re)activated at `sample_rate_hz`: a take in progress fails (its rate or
    /// layout may have changed). Real-time safe.
    pub fn prepare(&mut self, sample_rate_hz: f32) {
        if let Some(take) = &mut self.take {
            if take.recorded > 0 {
                take.problem = Some(if (take.sample_rate_hz - sample_rate_hz).abs() > 0.5 {
                    TakeProblem::SampleRateChanged {
                        from_hz: take.sample_rate_hz,
                        to_hz: sample_rate_hz,
                    }
                } else {
                    TakeProblem::LayoutChanged
                });
                self.finish_take();
            }
        }
        self.sample_rate_hz = sample_rate_hz;
        self.chunk_fill = 0;
    }

    /// The host reset the plugin: a take in progress fails. Real-time safe.
    pub fn reset(&mut self) {
        self.prepare(self.sample_rate_hz);
    }

    /// Runs one block: `outputs` hold the model's output on entry and the chosen mix on
    /// return; `dry` is the main input (mono) before the model; `returned` the Capture
    /// Return's channels (empty when the host gives none). At most [`MAX_CHANNELS`] outputs
    /// are mixed; `dry.len()` samples. Real-time safe.
    pub fn process(&mut self, outputs: &mut [&mut [f32]], dry: &[f32], returned: &[&[f32]], controls: &DeckControls) {
        let len = dry.len();
        if self.last_mode.is_none() && controls.mode == Mode::Capture {
            // A capture starts when Mode changes to Capture. An instance whose very first block
            // is already in Capture (a project reopened as it was saved) does not blast the
            // test signal: it waits for Mode to leave Capture and come back.
            self.captured = true;
        } else if self.last_mode.is_some_and(|last| last != controls.mode) {
            if self.last_mode == Some(Mode::Capture) {
                if let Some(take) = &mut self.take {
                    if take.recorded > 0 {
                        take.problem = Some(TakeProblem::Interrupted {
                            recorded_seconds: take.recorded as f32 / take.sample_rate_hz,
                        });
                        self.finish_take();
                    }
                }
                self.captured = false;
            }
            if controls.mode == Mode::Learn {
                self.chunk_fill = 0;
            }
        }
        self.last_mode = Some(controls.mode);
        let capturing = controls.mode == Mode::Capture && !self.captured;
        if capturing && self.take.is_none() {
            self.take = self.armed.take();
            if let Some(take) = &mut self.take {
                take.recorded = 0;
                take.level_db = controls.capture_level_db.clamp(-60.0, 0.0);
                take.knobs = controls.knobs;
                take.problem = None;
            }
        }
        if capturing && self.take.is_none() {
            self.status.wants_take.store(true, Ordering::Relaxed);
        }
        if capturing && returned.is_empty() {
            if let Some(take) = &mut self.take {
                if take.recorded > 0 {
                    take.problem = Some(TakeProblem::LayoutChanged);
                    self.finish_take();
                }
            }
        }
        let phase = match (&self.take, controls.mode, self.captured) {
            (Some(_), Mode::Capture, false) => DeckPhase::Capturing,
            (None, Mode::Capture, false) => DeckPhase::Preparing,
            (_, Mode::Capture, true) => DeckPhase::Captured,
            _ => DeckPhase::Idle,
        };
        self.status.set_phase(phase);

        // Output sources: the model, the capture signal, the device.
        let targets = match (controls.mode, controls.monitor) {
            (Mode::Capture, _) => [0.0, 1.0, 0.0],
            (_, Monitor::Model) => [1.0, 0.0, 0.0],
            (_, Monitor::Device) => [0.0, 0.0, 1.0],
        };
        let step = 1.0 / (OUTPUT_FADE_MS * 0.001 * self.sample_rate_hz).max(1.0);
        let level = db_to_gain(self.take.as_ref().map_or(-120.0, |t| t.level_db));
        let channels = outputs.len().min(MAX_CHANNELS);
        for i in 0..len {
            for (gain, target) in self.gains.iter_mut().zip(targets) {
                *gain += (target - *gain).clamp(-step, step);
            }
            let back = mono_at(returned, i);
            let signal = match &mut self.take {
                Some(take) if capturing && take.recorded < take.returned.len() => {
                    let position = take.recorded;
                    take.returned[position] = back;
                    take.recorded += 1;
                    take.signal.get(position).copied().unwrap_or(0.0) * level
                }
                _ => 0.0,
            };
            for (c, out) in outputs.iter_mut().enumerate().take(channels) {
                let device = returned
                    .get(c)
                    .or(returned.first())
                    .map_or(0.0, |r| sanitize(r.get(i).copied().unwrap_or(0.0)));
                let model = out[i];
                out[i] = sanitize(self.gains[0] * model + self.gains[1] * signal + self.gains[2] * device);
            }
            if controls.mode == Mode::Learn && !returned.is_empty() {
                self.learn_sample(dry[i], back, controls);
            }
        }
        if let Some(take) = &self.take {
            let progress = take.recorded as f32 / take.returned.len().max(1) as f32;
            self.status.capture_progress.store(progress, Ordering::Relaxed);
            if take.recorded >= take.returned.len() {
                self.finish_take();
                self.captured = true;
            }
        }
    }

    fn learn_sample(&mut self, input: f32, returned: f32, controls: &DeckControls) {
        if self.chunk_fill == 0 {
            self.chunk.knobs = controls.knobs;
            self.chunk.sample_rate_hz = self.sample_rate_hz;
        }
        self.chunk.input[self.chunk_fill] = sanitize(input);
        self.chunk.returned[self.chunk_fill] = returned;
        self.chunk_fill += 1;
        if self.chunk_fill < LEARN_CHUNK_SAMPLES {
            return;
        }
        self.chunk_fill = 0;
        if self.learn.is_full() && controls.offline {
            // Offline rendering has no deadline: wait for the trainer rather than drop.
            let start = std::time::Instant::now();
            while self.learn.is_full() && start.elapsed() < OFFLINE_WAIT {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        match self.learn.push(self.chunk) {
            Ok(()) => self.status.learn_chunks_sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.status.learn_chunks_dropped.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Hands the take to the trainer (a full queue keeps it here until the next call).
    fn finish_take(&mut self) {
        if let Some(take) = self.take.take() {
            if let Err(rtrb::PushError::Full(take)) = self.takes.push(take) {
                self.take = Some(take);
            }
        }
    }
}

/// The mean of `channels` at sample `i`, sanitised (0 without channels).
fn mono_at(channels: &[&[f32]], i: usize) -> f32 {
    if channels.is_empty() {
        return 0.0;
    }
    let sum: f32 = channels
        .iter()
        .map(|c| sanitize(c.get(i).copied().unwrap_or(0.0)))
        .sum();
    sanitize(sum / channels.len() as f32)
}
