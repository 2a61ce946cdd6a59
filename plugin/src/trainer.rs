//! The plugin's training thread: one dedicated, named thread per instance that prepares
//! capture takes, checks finished ones, gathers Learn data, runs the engine's training session
//! on its own lower-priority worker pool, and posts every improved checkpoint to the hub
//! (built warm off the audio thread, crossfaded in there).
//!
//! Threads: [`Trainer`] (the handle) lives with the plugin on the host's main thread and is
//! used by the GUI; the thread itself owns the [`Worker`]. Commands go over a small bounded
//! channel; progress comes back through [`TrainerStatus`] (atomics, plus short-locked text and
//! curves the GUI reads). The audio thread is never touched: takes and Learn chunks arrive
//! through the deck's lock-free queues.

mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use atomic_float::AtomicF32;

use crate::capture::DeckLink;
use crate::hub::ModelHub;
use crate::params::CaptureSetup;

pub use worker::{StoredCapture, LEARN_FEED_SECONDS};

/// Commands the channel holds before `send` reports it full.
pub const COMMAND_CAPACITY: usize = 16;

/// A request to the training thread.
#[derive(Clone, Debug)]
pub enum Command {
    /// The host activated at this sample rate: prepare a take for it.
    Activate {
        /// Host sample rate, in Hz.
        sample_rate_hz: f32,
    },
    /// Train on the captures held (from scratch, or fine-tuning the loaded profile when
    /// there are only Learn pairs).
    Start,
    /// Hold training between steps.
    Pause,
    /// Let held training go on.
    Resume,
    /// End training; the best model so far keeps playing.
    Stop,
    /// Stop, and freeze the model playing into the plugin state (forget the revert point).
    Keep,
    /// Stop, and go back to the profile that played before training.
    Revert,
    /// Stop and forget every capture and Learn pair.
    Reset,
    /// Write the captures as WAV pairs and `captures.toml` into this folder.
    ExportCaptures(PathBuf),
    /// Write the profile playing as a `.doppel` file.
    ExportProfile(PathBuf),
    /// End the thread.
    Shutdown,
}

/// What the training thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TrainerPhase {
    /// Nothing to do.
    Idle = 0,
    /// Checking a take.
    Checking = 1,
    /// A session is running.
    Training = 2,
    /// Training ended; its model plays.
    Ready = 3,
}

/// Progress the GUI reads.
#[derive(Debug, Default)]
pub struct TrainerStatus {
    phase: AtomicU8,
    /// Steps taken by the running (or last) session.
    pub steps: AtomicU64,
    /// Training loss of the last step.
    pub loss: AtomicF32,
    /// Best validation ESR so far (0 before the first validation).
    pub best_esr: AtomicF32,
    /// Training seconds so far.
    pub elapsed_seconds: AtomicF32,
    /// Checkpoints posted to the hub.
    pub checkpoints: AtomicU64,
    /// Captures held (takes and Learn pairs).
    pub captures: AtomicUsize,
    /// Audio held, in seconds.
    pub held_seconds: AtomicF32,
    /// Takes that passed their checks.
    pub takes_accepted: AtomicU64,
    /// Takes refused by their checks.
    pub takes_refused: AtomicU64,
    /// Captures dropped, oldest first, to stay under the cap.
    pub captures_dropped: AtomicU64,
    /// The round-trip latency measured from the last good take, in samples (-1: none yet).
    pub latency_samples: AtomicI64,
    /// Learn audio waiting to be fed, in seconds.
    pub learn_pending_seconds: AtomicF32,
    /// Commands refused because the channel was full.
    pub commands_refused: AtomicU64,
    /// The last thing the user should read (a take's problem, a notice, an error).
    message: Mutex<String>,
    /// The last take's verdict (good, or its problem), kept until the next take: training's
    /// own messages replace `message` but must not hide why a take was refused.
    take_verdict: Mutex<String>,
    /// The capture plan for the tagged knobs: how far along it is and the setting to
    /// capture next (empty without tagged knobs).
    plan_hint: Mutex<String>,
    /// `(step, loss)` of recent steps, thinned to at most [`CURVE_POINTS`].
    loss_curve: Mutex<Vec<[f64; 2]>>,
    /// `(step, validation ESR)` at each improvement.
    validation_curve: Mutex<Vec<[f64; 2]>>,
}

/// Most points a curve keeps (older ones are thinned out by halves).
pub const CURVE_POINTS: usize = 2_000;

impl TrainerStatus {
    /// The thread's phase.
    pub fn phase(&self) -> TrainerPhase {
        match self.phase.load(Ordering::Relaxed) {
            1 => TrainerPhase::Checking,
            2 => TrainerPhase::Training,
            3 => TrainerPhase::Ready,
            _ => TrainerPhase::Idle,
        }
    }

    pub(crate) fn set_phase(&self, phase: TrainerPhase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// The last message for the user.
    pub fn message(&self) -> String {
        self.message.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn say(&self, text: impl Into<String>) {
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = text.into();
    }

    /// The last take's verdict (empty before the first take).
    pub fn take_verdict(&self) -> String {
        self.take_verdict.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The capture plan's progress and next setting (empty without tagged knobs).
    pub fn plan_hint(&self) -> String {
        self.plan_hint.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_plan_hint(&self, text: String) {
        *self.plan_hint.lock().unwrap_or_else(|e| e.into_inner()) = text;
    }

    /// Forgets the last take's verdict (Reset).
    pub(crate) fn clear_take_verdict(&self) {
        self.take_verdict.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Says `text` and keeps it as the last take's verdict.
    pub(crate) fn judge_take(&self, text: impl Into<String>) {
        let text = text.into();
        self.say(text.clone());
        *self.take_verdict.lock().unwrap_or_else(|e| e.into_inner()) = text;
    }

    /// A copy of the loss and validation curves.
    pub fn curves(&self) -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
        let loss = self.loss_curve.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let validation = self.validation_curve.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (loss, validation)
    }

    pub(crate) fn clear_curves(&self) {
        self.loss_curve.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.validation_curve.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub(crate) fn push_loss(&self, step: u64, loss: f32) {
        push_thinned(&self.loss_curve, [step as f64, loss as f64]);
    }

    pub(crate) fn push_validation(&self, step: u64, esr: f32) {
        push_thinned(&self.validation_curve, [step as f64, esr as f64]);
    }
}

fn push_thinned(curve: &Mutex<Vec<[f64; 2]>>, point: [f64; 2]) {
    let mut curve = curve.lock().unwrap_or_else(|e| e.into_inner());
    if curve.len() >= CURVE_POINTS {
        let kept: Vec<[f64; 2]> = curve.iter().step_by(2).copied().collect();
        *curve = kept;
    }
    curve.push(point);
}

/// What the GUI holds of the training thread: its command channel and its status.
#[derive(Clone)]
pub struct TrainerRemote {
    commands: SyncSender<Command>,
    status: Arc<TrainerStatus>,
}

impl TrainerRemote {
    /// Sends `command`; a full channel refuses it (counted) rather than block the caller.
    pub fn send(&self, command: Command) -> bool {
        match self.commands.try_send(command) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.status.commands_refused.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Progress and messages.
    pub fn status(&self) -> &Arc<TrainerStatus> {
        &self.status
    }
}

/// The handle to an instance's training thread: the thread starts on demand
/// ([`Self::start`]); dropping the handle stops and joins it.
pub struct Trainer {
    remote: Option<TrainerRemote>,
    receiver: Option<Receiver<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl Trainer {
    /// The channel and status, without a thread yet (commands sent now wait in the channel).
    pub fn new() -> Self {
        let (commands, receiver) = sync_channel(COMMAND_CAPACITY);
        let status = Arc::new(TrainerStatus::default());
        status.latency_samples.store(-1, Ordering::Relaxed);
        Trainer {
            remote: Some(TrainerRemote { commands, status }),
            receiver: Some(receiver),
            thread: None,
        }
    }

    /// Starts the thread (named `doppel-trainer`) if it is not running; it idles until a
    /// command or a take arrives.
    pub fn start(
        &mut self,
        hub: Arc<ModelHub>,
        setup: Arc<RwLock<CaptureSetup>>,
        link: DeckLink,
    ) -> std::io::Result<()> {
        let Some(receiver) = self.receiver.take() else {
            return Ok(());
        };
        let status = self.status().clone();
        let worker = worker::Worker::new(hub, setup, link, status, receiver);
        self.thread = Some(
            std::thread::Builder::new()
                .name("doppel-trainer".into())
                .spawn(move || worker.run())?,
        );
        Ok(())
    }

    /// Whether the thread was started.
    pub fn is_running(&self) -> bool {
        self.thread.is_some()
    }

    /// A handle for the GUI.
    pub fn remote(&self) -> TrainerRemote {
        self.remote.clone().expect("present until drop")
    }

    /// Sends `command` (see [`TrainerRemote::send`]).
    pub fn send(&self, command: Command) -> bool {
        self.remote.as_ref().is_some_and(|r| r.send(command))
    }

    /// Progress and messages.
    pub fn status(&self) -> &Arc<TrainerStatus> {
        &self.remote.as_ref().expect("present until drop").status
    }
}

impl Default for Trainer {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Trainer {
    fn drop(&mut self) {
        // Closing our end ends the thread once every GUI clone is gone too; Shutdown ends it
        // now (the thread, and a running session between steps, treat it as a stop).
        if let Some(remote) = self.remote.take() {
            let _ = remote.commands.try_send(Command::Shutdown);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
