//! One plugin instance's working parts without the plugin framework: the model hub, the
//! processor, the capture deck and the training thread, wired together. The nice-plug
//! `Plugin` drives it; tests drive it directly. `process` and `reset` run on the audio
//! thread, the rest on the host's main thread.

use std::ops::Range;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;

use crate::capture::{CaptureDeck, DeckControls, DeckLink, DeckStatus};
use crate::dsp::{Controls, Meters, Processor};
use crate::hub::ModelHub;
use crate::params::{CaptureSetup, KnobLabels, Mode, Monitor};
use crate::swap::{MAX_CHANNELS, SUB_BLOCK_SAMPLES};
use crate::trainer::{Command, Trainer};

/// The profiling controls of one block.
#[derive(Clone, Copy, Debug)]
pub struct ProfilingControls {
    /// Play, Capture or Learn.
    pub mode: Mode,
    /// Model or Device.
    pub monitor: Monitor,
    /// Capture signal peak level, in dBFS.
    pub capture_level_db: f32,
    /// Whether the host renders offline.
    pub offline: bool,
}

impl Default for ProfilingControls {
    fn default() -> Self {
        ProfilingControls {
            mode: Mode::Play,
            monitor: Monitor::Model,
            capture_level_db: crate::params::DEFAULT_CAPTURE_LEVEL_DB,
            offline: false,
        }
    }
}

/// An instance's working parts.
pub struct Rig {
    /// Model loading, shared with the editor and the trainer.
    pub hub: Arc<ModelHub>,
    /// Levels for the editor.
    pub meters: Arc<Meters>,
    /// Tagged knobs and capture settings (the persisted `capture_setup` field).
    pub setup: Arc<RwLock<CaptureSetup>>,
    processor: Processor,
    deck: CaptureDeck,
    deck_status: Arc<DeckStatus>,
    /// The deck's far ends, until the trainer starts and takes them.
    link: Option<DeckLink>,
    trainer: Trainer,
    /// The main input (mono) of the current sub-block, before the model.
    dry: [f32; SUB_BLOCK_SAMPLES],
}

impl Rig {
    /// A rig with nothing loaded and no training thread yet.
    pub fn new(labels: Arc<ArcSwap<KnobLabels>>, setup: Arc<RwLock<CaptureSetup>>) -> Self {
        let (hub, player) = ModelHub::new(labels);
        let meters = Arc::new(Meters::default());
        let (deck, link) = CaptureDeck::new();
        let mut processor = Processor::new(player, meters.clone());
        // The deck may replace the model's output (capture signal, device): the rig meters
        // what leaves the plugin.
        processor.set_output_metering(false);
        Rig {
            hub,
            processor,
            meters,
            setup,
            deck_status: link.status.clone(),
            deck,
            link: Some(link),
            trainer: Trainer::new(),
            dry: [0.0; SUB_BLOCK_SAMPLES],
        }
    }

    /// Starts the training thread if it is not running (host main thread).
    pub fn start_trainer(&mut self) {
        if let Some(link) = self.link.take() {
            if let Err(err) = self.trainer.start(self.hub.clone(), self.setup.clone(), link) {
                nice_plug::nice_warn!("cannot start the training thread: {err}");
            }
        }
    }

    /// The training thread's handle (its thread may not be running yet).
    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// The deck's status (capture progress, Learn chunks).
    pub fn deck_status(&self) -> &Arc<DeckStatus> {
        &self.deck_status
    }

    /// The processor (its model, latency).
    pub fn processor(&self) -> &Processor {
        &self.processor
    }

    /// The host activated at `sample_rate_hz`: prepares the processor and the deck, starts
    /// the training thread and has it prepare a take. Host main thread.
    pub fn activate(&mut self, sample_rate_hz: f32, controls: &Controls) {
        self.processor.prepare(sample_rate_hz, controls);
        self.deck.prepare(sample_rate_hz);
        self.start_trainer();
        self.trainer.send(Command::Activate { sample_rate_hz });
    }

    /// A host reset. Audio thread; real-time safe.
    pub fn reset(&mut self, controls: &Controls) {
        self.processor.reset(controls);
        self.deck.reset();
    }

    /// Processes `channels` in place with the Capture Return `capture_return` (empty when the
    /// host gives none). Audio thread; real-time safe.
    pub fn process(
        &mut self,
        channels: &mut [&mut [f32]],
        capture_return: &[&[f32]],
        controls: &Controls,
        profiling: &ProfilingControls,
    ) {
        self.processor.observe_capture_return(capture_return);
        let samples = channels.iter().map(|c| c.len()).min().unwrap_or(0);
        let deck_controls = DeckControls {
            mode: profiling.mode,
            monitor: profiling.monitor,
            capture_level_db: profiling.capture_level_db,
            knobs: controls.knobs,
            offline: profiling.offline,
        };
        let mut start = 0;
        while start < samples {
            let len = (samples - start).min(SUB_BLOCK_SAMPLES);
            let range = start..start + len;
            let count = channels.len().clamp(1, MAX_CHANNELS) as f32;
            for (i, d) in self.dry[..len].iter_mut().enumerate() {
                let sum: f32 = channels
                    .iter()
                    .take(MAX_CHANNELS)
                    .map(|c| crate::dsp::sanitize(c[start + i]))
                    .sum();
                *d = sum / count;
            }
            let (mut outputs, used) = sub_slices(channels, range.clone());
            self.processor.process(&mut outputs[..used], controls);
            let (returned, returned_used) = sub_slices_ref(capture_return, range);
            self.deck.process(
                &mut outputs[..used],
                &self.dry[..len],
                &returned[..returned_used],
                &deck_controls,
            );
            self.processor.meter_output(&outputs[..used]);
            start += len;
        }
    }
}

/// The first [`MAX_CHANNELS`] of `channels`, each cut to `range`, and how many there are.
fn sub_slices<'a>(channels: &'a mut [&mut [f32]], range: Range<usize>) -> ([&'a mut [f32]; MAX_CHANNELS], usize) {
    let mut out: [&'a mut [f32]; MAX_CHANNELS] = [&mut [], &mut []];
    let mut used = 0;
    for (slot, channel) in out.iter_mut().zip(channels.iter_mut()) {
        *slot = &mut channel[range.clone()];
        used += 1;
    }
    (out, used)
}

/// [`sub_slices`] for read-only channels, which may be shorter than `range` (cut to fit).
fn sub_slices_ref<'a>(channels: &[&'a [f32]], range: Range<usize>) -> ([&'a [f32]; MAX_CHANNELS], usize) {
    let mut out: [&'a [f32]; MAX_CHANNELS] = [&[], &[]];
    let mut used = 0;
    for (slot, channel) in out.iter_mut().zip(channels) {
        let end = range.end.min(channel.len());
        *slot = &channel[range.start.min(end)..end];
        used += 1;
    }
    (out, used)
}
