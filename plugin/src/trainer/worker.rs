//! The body of the training thread: commands, takes, Learn data, sessions. Training thread
//! only (its session's event callback runs on one of the session's workers, with the same
//! exclusive access).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use doppel_engine::dataset::CaptureAudio;
use doppel_engine::plan::{capture_plan, describe_setting, next_in_plan};
use doppel_engine::signal::{capture_signal, dynamics_take_signal};
use doppel_engine::take::check_take;
use doppel_engine::train::EffectKind;
use doppel_engine::train::{CaptureInput, Session, SessionConfig, SessionControl, SessionEvent};
use doppel_engine::wav::{write_wav_mono, WavAudio};
use doppel_engine::Profile;

use super::{Command, TrainerPhase, TrainerStatus};
use crate::capture::{DeckLink, LearnChunk, Take, MAX_ROUND_TRIP_SECONDS};
use crate::hub::ModelHub;
use crate::params::CaptureSetup;

/// Learn audio gathered before it is handed to training, in seconds.
pub const LEARN_FEED_SECONDS: f32 = 10.0;
/// Lowest cross-correlation confidence (peak over runner-up) Learn trusts for its delay.
const LEARN_LATENCY_CONFIDENCE: f32 = 3.0;
/// How often the thread looks at its queues while idle.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// How often a running session's callback looks at commands and queues.
const BUSY_POLL: Duration = Duration::from_millis(10);

/// A capture held in memory: the clean signal that went to the device and what came back.
#[derive(Clone, Debug)]
pub struct StoredCapture {
    /// Clean input (the played capture signal, or the main input in Learn).
    pub input: Vec<f32>,
    /// The Capture Return on the same clock.
    pub target: Vec<f32>,
    /// Sample rate, in Hz.
    pub sample_rate: u32,
    /// Knob tags, by name, in the knobs' units.
    pub knobs: BTreeMap<String, f32>,
    /// "take 3", "learn 2".
    pub label: String,
    /// Recorded in Learn (the user's playing) rather than from the capture signal.
    pub learned: bool,
    /// Round trip found for this capture, in samples: from the capture signal's clicks for a
    /// take, measured once from the playing for Learn pairs.
    pub latency_samples: i64,
    /// The kind of device captured (a take's signal; for Learn, the profile playing).
    pub effect: EffectKind,
}

impl StoredCapture {
    fn seconds(&self) -> f32 {
        self.input.len() as f32 / self.sample_rate.max(1) as f32
    }

    fn audio(&self) -> CaptureAudio {
        let wav = |samples: &Vec<f32>| WavAudio {
            samples: samples.clone(),
            sample_rate: self.sample_rate,
            source_channels: 1,
        };
        CaptureAudio {
            input: wav(&self.input),
            target: wav(&self.target),
            input_label: PathBuf::from(format!("{} (input)", self.label)),
            target_label: PathBuf::from(&self.label),
            knobs: self.knobs.clone(),
            latency_samples: Some(self.latency_samples),
            stereo: None,
        }
    }
}

/// Learn audio gathered since the last hand-over, all at one knob setting.
#[derive(Default)]
struct LearnBuffer {
    input: Vec<f32>,
    returned: Vec<f32>,
    knobs: [f32; doppel_engine::model::MAX_KNOBS],
    sample_rate_hz: f32,
}

/// The training thread's state.
pub(super) struct Worker {
    hub: Arc<ModelHub>,
    setup: Arc<RwLock<CaptureSetup>>,
    link: DeckLink,
    status: Arc<TrainerStatus>,
    commands: Receiver<Command>,
    sample_rate_hz: f32,
    /// The capture signal at unit level, and the rate, length and effect it was made for.
    signal: Option<((f32, f32, EffectKind), Vec<f32>)>,
    captures: VecDeque<StoredCapture>,
    learn: LearnBuffer,
    /// The round trip from the last good take, in samples.
    latency_samples: Option<i64>,
    /// Main input to return delay of Learn pairs, measured once (see `learn_latency`).
    learn_latency_samples: Option<i64>,
    /// What played before training began (Revert's target).
    revert_to: Option<Arc<Profile>>,
    takes_seen: usize,
    learned_seen: usize,
    start_requested: bool,
    /// Training must start over (a new take changed the data), after this session ends.
    restart: bool,
    /// The running session was reverted: its final model is not posted.
    reverted: bool,
    /// The running session was kept (stopped by Keep).
    kept: bool,
    shutdown: bool,
    last_poll: Instant,
}

impl Worker {
    pub(super) fn new(
        hub: Arc<ModelHub>,
        setup: Arc<RwLock<CaptureSetup>>,
        link: DeckLink,
        status: Arc<TrainerStatus>,
        commands: Receiver<Command>,
    ) -> Self {
        Worker {
            hub,
            setup,
            link,
            status,
            commands,
            sample_rate_hz: 0.0,
            signal: None,
            captures: VecDeque::new(),
            learn: LearnBuffer::default(),
            latency_samples: None,
            learn_latency_samples: None,
            revert_to: None,
            takes_seen: 0,
            learned_seen: 0,
            start_requested: false,
            restart: false,
            reverted: false,
            kept: false,
            shutdown: false,
            last_poll: Instant::now(),
        }
    }

    /// The thread's loop: until Shutdown or the handle is dropped.
    pub(super) fn run(mut self) {
        while !self.shutdown {
            match self.commands.recv_timeout(IDLE_POLL) {
                Ok(command) => self.handle(command, None),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.poll_deck(None);
            if std::mem::take(&mut self.start_requested) && !self.shutdown {
                self.train();
            }
        }
    }

    fn setup(&self) -> CaptureSetup {
        self.setup.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn handle(&mut self, command: Command, control: Option<&SessionControl>) {
        match command {
            Command::Activate { sample_rate_hz } => {
                // The signal is made when a capture is asked for (the deck's `wants_take`);
                // one already made for another rate is remade now.
                if self.sample_rate_hz > 0.0 && (self.sample_rate_hz - sample_rate_hz).abs() > 0.5 {
                    // Delays in samples at the old rate mean nothing at the new one.
                    self.latency_samples = None;
                    self.learn_latency_samples = None;
                    self.status.latency_samples.store(-1, Ordering::Relaxed);
                }
                self.sample_rate_hz = sample_rate_hz;
                if self
                    .signal
                    .as_ref()
                    .is_some_and(|((rate, _, _), _)| *rate != sample_rate_hz)
                {
                    self.arm_take();
                }
            }
            Command::Start => {
                if control.is_none() {
                    if self.captures.is_empty() {
                        self.status
                            .say("Nothing to train on yet: capture the device or play in Learn mode.");
                    } else {
                        self.start_requested = true;
                    }
                }
            }
            Command::Pause => control.iter().for_each(|c| c.pause()),
            Command::Resume => control.iter().for_each(|c| c.resume()),
            Command::Stop => control.iter().for_each(|c| c.stop()),
            Command::Keep => {
                control.iter().for_each(|c| c.stop());
                self.revert_to = None;
                self.kept = control.is_some();
                self.status.say("Kept: this model is saved with the project.");
            }
            Command::Revert => {
                control.iter().for_each(|c| c.stop());
                self.reverted = control.is_some();
                match self.revert_to.take() {
                    Some(profile) => {
                        let _ = self
                            .hub
                            .load_profile(&profile, "reverted to the profile before training");
                        self.status.say("Reverted to the profile that played before training.");
                    }
                    None => self.status.say("Nothing to revert to."),
                }
                self.status.set_phase(TrainerPhase::Idle);
            }
            Command::Reset => {
                control.iter().for_each(|c| c.stop());
                self.captures.clear();
                self.learn = LearnBuffer::default();
                self.latency_samples = None;
                self.learn_latency_samples = None;
                self.status.latency_samples.store(-1, Ordering::Relaxed);
                self.publish_held();
                self.status.clear_take_verdict();
                self.status.say("Captures and learned audio cleared.");
            }
            Command::ExportCaptures(dir) => match self.export_captures(&dir) {
                Ok(count) => self.status.say(format!(
                    "Exported {count} captures and captures.toml to {}",
                    dir.display()
                )),
                Err(err) => self.status.say(format!("Export failed: {err:#}")),
            },
            Command::ExportProfile(path) => {
                let result = match self.hub.profile() {
                    Some(profile) => profile.save(&path),
                    None => Err(anyhow::anyhow!("no profile is loaded")),
                };
                match result {
                    Ok(()) => self.status.say(format!("Saved the profile to {}", path.display())),
                    Err(err) => self.status.say(format!("Export failed: {err:#}")),
                }
            }
            Command::Shutdown => {
                control.iter().for_each(|c| c.stop());
                self.shutdown = true;
            }
        }
    }

    /// The rate, length and kind the next take's signal must have.
    fn signal_key(&self) -> (f32, f32, EffectKind) {
        let setup = self.setup();
        (
            self.sample_rate_hz,
            setup.capture_seconds.clamp(10.0, 600.0),
            setup.effect,
        )
    }

    /// Prepares a take for the host's rate and posts it to the deck (replacing one never used).
    fn arm_take(&mut self) {
        if self.sample_rate_hz <= 0.0 {
            return;
        }
        let key = self.signal_key();
        let (seconds, effect) = (key.1, key.2);
        let fresh = !matches!(&self.signal, Some((made, _)) if *made == key);
        if fresh {
            let rate = self.sample_rate_hz.round() as u32;
            // A compressor is captured with the dynamics signal (behind the same clicks).
            let signal = match effect {
                EffectKind::Compressor => dynamics_take_signal(rate, seconds),
                EffectKind::AmpCab | EffectKind::Denoiser => capture_signal(rate, seconds),
            };
            self.signal = Some((key, signal));
        }
        if let Some(((rate, _, effect), signal)) = &self.signal {
            let mut take = Take::new(signal.clone(), *rate);
            take.effect = *effect;
            drop(self.link.armed.post(Box::new(take)));
        }
    }

    /// Takes finished takes and Learn chunks off the deck's queues.
    fn poll_deck(&mut self, control: Option<&SessionControl>) {
        while let Ok(take) = self.link.takes.pop() {
            self.check_and_store(*take, control);
            self.arm_take();
        }
        if self.link.status.wants_take.swap(false, Ordering::Relaxed) {
            self.arm_take();
        }
        while let Ok(chunk) = self.link.learn.pop() {
            self.gather(&chunk, control);
        }
        // The editor changed the device kind or the length: the armed take (not yet used;
        // one playing keeps its own signal) is replaced with the right signal.
        if matches!(&self.signal, Some((key, _)) if *key != self.signal_key()) {
            self.arm_take();
        }
        self.update_plan_hint();
        let pending = self.learn.input.len() as f32 / self.learn.sample_rate_hz.max(1.0);
        self.status.learn_pending_seconds.store(pending, Ordering::Relaxed);
    }

    /// Publishes where the capture plan for the tagged knobs stands: how many of its settings
    /// the held takes cover, and which to capture next.
    fn update_plan_hint(&self) {
        let knobs = self.setup().plan_knobs();
        if knobs.is_empty() {
            self.status.set_plan_hint(String::new());
            return;
        }
        let plan = capture_plan(&knobs);
        let captured: Vec<Vec<f32>> = self
            .captures
            .iter()
            .filter(|c| !c.learned)
            .map(|c| {
                knobs
                    .iter()
                    .map(|k| c.knobs.get(&k.name).copied().unwrap_or(f32::NAN))
                    .collect()
            })
            .collect();
        let done = doppel_engine::plan::plan_progress(&knobs, &plan, &captured);
        let count = done.iter().filter(|d| **d).count();
        let text = match next_in_plan(&knobs, &plan, &captured) {
            Some(next) => format!(
                "Capture plan: {count} of {} settings captured. Next: set the device and the plugin's knobs to {}, then Capture.",
                plan.len(),
                describe_setting(&knobs, &plan[next])
            ),
            None => format!(
                "Capture plan complete: all {} settings captured (more between them sharpen the knobs further).",
                plan.len()
            ),
        };
        self.status.set_plan_hint(text);
    }

    fn check_and_store(&mut self, take: Take, control: Option<&SessionControl>) {
        let phase = self.status.phase();
        self.status.set_phase(TrainerPhase::Checking);
        let sample_rate = take.sample_rate_hz.round() as u32;
        let played = take.played();
        let max_latency = (MAX_ROUND_TRIP_SECONDS * take.sample_rate_hz) as usize;
        let checked = match take.problem.clone() {
            Some(problem) => Err(problem),
            None => check_take(&played, &take.returned, sample_rate, max_latency),
        };
        let report = match checked {
            Ok(report) => report,
            Err(problem) => {
                self.status.takes_refused.fetch_add(1, Ordering::Relaxed);
                self.status.judge_take(problem.to_string());
                self.status.set_phase(phase);
                return;
            }
        };
        self.latency_samples = Some(report.latency_samples);
        self.status
            .latency_samples
            .store(report.latency_samples, Ordering::Relaxed);
        let setup = self.setup();
        let knobs = setup
            .knobs
            .iter()
            .zip(take.knobs)
            .filter_map(|(tag, value)| tag.as_ref().map(|t| (t.name.clone(), t.value_at(value))))
            .collect();
        self.takes_seen += 1;
        self.status.takes_accepted.fetch_add(1, Ordering::Relaxed);
        let dropped = self.store(StoredCapture {
            input: played,
            target: take.returned,
            sample_rate,
            knobs,
            label: format!("take {}", self.takes_seen),
            learned: false,
            latency_samples: report.latency_samples,
            effect: take.effect,
        });
        self.status.judge_take(format!(
            "Take {} is good: round trip {} samples ({:.2} ms), signal {:.0} dB above the noise{}. Training.{}",
            self.takes_seen,
            report.latency_samples,
            report.latency_samples as f32 * 1000.0 / take.sample_rate_hz,
            report.snr_db,
            report
                .replicate_esr
                .map_or(String::new(), |e| format!(", replicate ESR {e:.1e}")),
            dropped.map_or(String::new(), |notice| format!(" {notice}"))
        ));
        match control {
            // The data changed shape (maybe a new knob setting): start over on all of it.
            Some(control) => {
                self.restart = true;
                control.stop();
            }
            None => self.start_requested = true,
        }
        self.status.set_phase(if control.is_some() {
            TrainerPhase::Training
        } else {
            phase
        });
    }

    /// Adds a capture, dropping the oldest while the total is over the cap; returns the
    /// notice naming what was dropped, if anything was.
    fn store(&mut self, capture: StoredCapture) -> Option<String> {
        let cap = self.setup().max_capture_seconds.max(1.0);
        self.captures.push_back(capture);
        let mut dropped = Vec::new();
        while self.captures.len() > 1 && self.captures.iter().map(StoredCapture::seconds).sum::<f32>() > cap {
            if let Some(old) = self.captures.pop_front() {
                dropped.push(old.label);
            }
        }
        self.publish_held();
        self.status
            .captures_dropped
            .fetch_add(dropped.len() as u64, Ordering::Relaxed);
        (!dropped.is_empty()).then(|| {
            format!(
                "Dropped {} to stay under {:.1} minutes of captured audio.",
                dropped.join(", "),
                cap / 60.0
            )
        })
    }

    fn publish_held(&self) {
        self.status.captures.store(self.captures.len(), Ordering::Relaxed);
        let seconds = self.captures.iter().map(StoredCapture::seconds).sum();
        self.status.held_seconds.store(seconds, Ordering::Relaxed);
    }

    /// Appends a Learn chunk; a knob change or a full buffer hands the buffer over.
    fn gather(&mut self, chunk: &LearnChunk, control: Option<&SessionControl>) {
        if !self.learn.input.is_empty()
            && (chunk.knobs != self.learn.knobs || chunk.sample_rate_hz != self.learn.sample_rate_hz)
        {
            self.hand_over_learn(control);
        }
        if self.learn.input.is_empty() {
            self.learn.knobs = chunk.knobs;
            self.learn.sample_rate_hz = chunk.sample_rate_hz;
        }
        self.learn.input.extend_from_slice(&chunk.input);
        self.learn.returned.extend_from_slice(&chunk.returned);
        if self.learn.input.len() as f32 >= LEARN_FEED_SECONDS * self.learn.sample_rate_hz {
            self.hand_over_learn(control);
        }
    }

    /// Turns the Learn buffer into a capture: fed to the running session, or the start of one
    /// that fine-tunes the profile playing.
    fn hand_over_learn(&mut self, control: Option<&SessionControl>) {
        let buffer = std::mem::take(&mut self.learn);
        if (buffer.input.len() as f32) < 2.0 * buffer.sample_rate_hz {
            return; // too short to align or learn from
        }
        let Some(latency_samples) = self.learn_latency(&buffer) else {
            return;
        };
        // Learn pairs carry the playing profile's knobs (what fine-tuning trains).
        let knobs = self
            .hub
            .profile()
            .map(|p| {
                p.meta
                    .knobs
                    .iter()
                    .zip(buffer.knobs)
                    .map(|(k, v)| (k.name.clone(), k.denormalize(v)))
                    .collect()
            })
            .unwrap_or_default();
        self.learned_seen += 1;
        let capture = StoredCapture {
            input: buffer.input,
            target: buffer.returned,
            sample_rate: buffer.sample_rate_hz.round() as u32,
            knobs,
            label: format!("learn {}", self.learned_seen),
            learned: true,
            latency_samples,
            effect: self.hub.profile().map_or(EffectKind::AmpCab, |p| profile_effect(&p)),
        };
        let audio = capture.audio();
        if let Some(notice) = self.store(capture) {
            self.status.say(notice);
        }
        match control {
            Some(control) => control.feed(CaptureInput::Memory(audio)),
            None => self.start_requested = true,
        }
    }

    /// The delay from the main input to the return for Learn pairs, measured once from the
    /// first buffer of playing (cross-correlation of the DI with the return; a guitar's
    /// plucks are as impulsive as the capture signal's clicks) and kept until Reset. Learn
    /// measures its own: with the DI split to the device, the path differs from a capture's
    /// re-amp round trip, which is the fallback while the playing gives no clear peak. `None`
    /// (with a message; the buffer is dropped) when neither is known.
    fn learn_latency(&mut self, buffer: &LearnBuffer) -> Option<i64> {
        if let Some(latency) = self.learn_latency_samples {
            return Some(latency);
        }
        let max_latency = (MAX_ROUND_TRIP_SECONDS * buffer.sample_rate_hz) as usize;
        match doppel_engine::align::estimate_latency(&buffer.input, &buffer.returned, max_latency) {
            Ok(found) if found.confidence >= LEARN_LATENCY_CONFIDENCE => {
                self.learn_latency_samples = Some(found.latency_samples);
                self.status
                    .latency_samples
                    .store(found.latency_samples, Ordering::Relaxed);
                self.status.say(format!(
                    "Learn: round trip {} samples ({:.2} ms), measured from your playing.",
                    found.latency_samples,
                    found.latency_samples as f32 * 1000.0 / buffer.sample_rate_hz
                ));
                Some(found.latency_samples)
            }
            _ if self.latency_samples.is_some() => self.latency_samples,
            Ok(_) | Err(_) => {
                self.status.say(
                    "Learn: cannot find the round trip in this playing yet (is the device's return on the Capture Return?).",
                );
                None
            }
        }
    }

    /// Runs one session on the captures held, posting improved checkpoints as they come.
    fn train(&mut self) {
        let setup = self.setup();
        let fine_tune = self.captures.iter().all(|c| c.learned);
        let start_from = if fine_tune { self.hub.profile() } else { None };
        let mut config = SessionConfig::new(if fine_tune {
            "Doppel (learned)"
        } else {
            "Doppel capture"
        });
        config.max_seconds = Some(setup.train_seconds.max(1.0));
        config.max_steps = (setup.train_steps > 0).then_some(setup.train_steps);
        match doppel_engine::Size::parse(&setup.model_size) {
            Ok(size) => config.size = size,
            Err(err) => self.status.say(format!("{err:#}: training a feather")),
        }
        config.threads = Some(setup.worker_threads());
        config.lower_priority = true;
        // The kind the captures were taken for (a fine-tune: the profile's own kind) picks the
        // architecture and recipe; amp and compressor takes do not train together.
        let effect = match &start_from {
            Some(profile) => profile_effect(profile),
            None => {
                let first = self.captures.front().map_or(EffectKind::AmpCab, |c| c.effect);
                if self.captures.iter().any(|c| c.effect != first) {
                    self.status.say(
                        "Cannot train: the captures held mix amp and compressor takes. Reset, then capture one kind.",
                    );
                    return;
                }
                first
            }
        };
        config.effect = effect;
        config.architecture = effect.default_architecture().into();
        config.start_from = start_from.as_deref().cloned();
        if !fine_tune {
            for tag in setup.knobs.iter().flatten() {
                let used = self.captures.iter().any(|c| c.knobs.contains_key(&tag.name));
                if used {
                    let range = doppel_engine::dataset::KnobRangeSpec {
                        min: Some(tag.min.min(tag.max)),
                        max: Some(tag.max.max(tag.min)),
                        default: None,
                        unit: Some(tag.unit.clone()),
                    };
                    config.knob_ranges.insert(tag.name.clone(), range);
                }
            }
        }
        if self.revert_to.is_none() {
            self.revert_to = self.hub.profile();
        }
        let captures = self.captures.iter().map(|c| CaptureInput::Memory(c.audio())).collect();
        let session = match Session::new(config, captures) {
            Ok(session) => session,
            Err(err) => {
                self.status.say(format!("Cannot train: {err:#}"));
                return;
            }
        };
        self.status.clear_curves();
        self.status.steps.store(0, Ordering::Relaxed);
        self.status.best_esr.store(0.0, Ordering::Relaxed);
        self.status.set_phase(TrainerPhase::Training);
        self.reverted = false;
        self.kept = false;
        let control = session.control();
        let result = session.run(&mut |event| self.on_event(event, &control));
        match result {
            Ok(outcome) if !self.reverted => {
                let esr = outcome.profile.meta.accuracy.as_ref().map_or(f32::NAN, |a| a.esr);
                let _ = self.hub.load_profile(&outcome.profile, "trained in the plugin");
                self.status.set_phase(TrainerPhase::Ready);
                if self.kept {
                    self.status.say(format!(
                        "Kept: validation ESR {esr:.4}; this model is saved with the project."
                    ));
                } else if !self.restart {
                    self.status.say(format!(
                        "Training done: validation ESR {esr:.4}. Keep it, or Revert to the profile before."
                    ));
                }
            }
            Ok(_) => {}
            Err(err) => {
                self.status.set_phase(TrainerPhase::Idle);
                self.status.say(format!("Training failed: {err:#}"));
            }
        }
        if std::mem::take(&mut self.restart) && !self.shutdown {
            self.start_requested = true;
        }
    }

    fn on_event(&mut self, event: SessionEvent, control: &SessionControl) {
        match event {
            SessionEvent::Progress(progress) => {
                self.status.steps.store(progress.step, Ordering::Relaxed);
                self.status.loss.store(progress.loss, Ordering::Relaxed);
                self.status
                    .elapsed_seconds
                    .store(progress.elapsed_seconds, Ordering::Relaxed);
                if progress.loss.is_finite() {
                    self.status.push_loss(progress.step, progress.loss);
                }
                if self.last_poll.elapsed() >= BUSY_POLL {
                    self.last_poll = Instant::now();
                    loop {
                        match self.commands.try_recv() {
                            Ok(command) => self.handle(command, Some(control)),
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => {
                                self.shutdown = true;
                                control.stop();
                                break;
                            }
                        }
                    }
                    self.poll_deck(Some(control));
                }
            }
            SessionEvent::Checkpoint(checkpoint) => {
                let source = format!(
                    "training: step {}, validation ESR {:.4}",
                    checkpoint.step, checkpoint.validation_esr
                );
                if self.hub.load_profile(&checkpoint.profile, &source).is_ok() {
                    self.status.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                self.status.best_esr.store(checkpoint.validation_esr, Ordering::Relaxed);
                self.status.push_validation(checkpoint.step, checkpoint.validation_esr);
            }
            SessionEvent::Snapshot(_) | SessionEvent::DataAdded { .. } => {}
            SessionEvent::Note(note) => self.status.say(note),
        }
    }

    /// Writes every capture as `NAME-input.wav` / `NAME-target.wav` plus a `captures.toml`
    /// that `doppel train --captures` reads. Returns how many.
    fn export_captures(&self, dir: &Path) -> Result<usize> {
        anyhow::ensure!(!self.captures.is_empty(), "there are no captures to export");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut toml = String::from("# Captures recorded by the Doppel plugin.\n");
        if self
            .captures
            .iter()
            .any(|c| c.effect == EffectKind::Compressor && !c.learned)
        {
            toml.push_str("# Compressor takes (the dynamics signal): train with --effect compressor.\n");
        }
        for capture in &self.captures {
            let stem = capture.label.replace(' ', "-");
            let (input, target) = (format!("{stem}-input.wav"), format!("{stem}-target.wav"));
            write_wav_mono(&dir.join(&input), &capture.input, capture.sample_rate)?;
            write_wav_mono(&dir.join(&target), &capture.target, capture.sample_rate)?;
            let _ = write!(
                toml,
                "\n[[capture]]\ninput = {}\ntarget = {}\n",
                quote(&input),
                quote(&target)
            );
            let _ = writeln!(toml, "latency_samples = {}", capture.latency_samples);
            if !capture.knobs.is_empty() {
                let values: Vec<String> = capture
                    .knobs
                    .iter()
                    .map(|(name, value)| format!("{} = {value}", quote(name)))
                    .collect();
                let _ = writeln!(toml, "knobs = {{ {} }}", values.join(", "));
            }
        }
        for tag in self.setup().knobs.iter().flatten() {
            if self.captures.iter().any(|c| c.knobs.contains_key(&tag.name)) {
                let _ = write!(
                    toml,
                    "\n[knobs.{}]\nmin = {}\nmax = {}\nunit = {}\n",
                    quote(&tag.name),
                    tag.min.min(tag.max),
                    tag.max.max(tag.min),
                    quote(&tag.unit)
                );
            }
        }
        let path = dir.join("captures.toml");
        std::fs::write(&path, toml).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(self.captures.len())
    }
}

/// The kind of device a profile models: its training's effect, else a compressor for the
/// dynamics architecture and an amp otherwise.
fn profile_effect(profile: &Profile) -> EffectKind {
    profile
        .meta
        .training
        .as_ref()
        .and_then(|t| EffectKind::parse(&t.effect).ok())
        .unwrap_or(match profile.meta.model.architecture() {
            "compressor" => EffectKind::Compressor,
            _ => EffectKind::AmpCab,
        })
}

/// A TOML basic string (JSON's escapes are a subset of TOML's).
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}
