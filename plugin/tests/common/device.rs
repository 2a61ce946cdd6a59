//! A simulated device on the Capture Return for the profiling tests: the built-in amp (or the
//! built-in compressor) behind a round trip with a little noise, fed either from the plugin's
//! own output (re-amping, as for Mode = Capture) or from the DI (a split, as for Mode =
//! Learn). Test thread only.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use doppel::capture::DeckPhase;
use doppel::dsp::Controls;
use doppel::params::{CaptureSetup, KnobLabels};
use doppel::rig::{ProfilingControls, Rig};
use doppel_engine::reference::{CompressorSettings, ReampedAmp as SimulatedDevice, ReferenceCompressor};
use nice_assert_no_alloc::assert_no_alloc;

pub const SR: f32 = 48_000.0;
pub const BLOCK: usize = 64;
pub const ROUND_TRIP: usize = 300;

/// The built-in amp (gain 6, tone 5) behind the round trip, with noise of `noise` peak.
pub fn device(noise: f32) -> SimulatedDevice {
    device_at(6.0, noise)
}

/// The built-in amp at `gain` (tone 5) behind the round trip, with noise of `noise` peak.
pub fn device_at(gain: f32, noise: f32) -> SimulatedDevice {
    SimulatedDevice::new(SR, gain, 5.0, ROUND_TRIP, noise)
}

/// A device behind a round trip: what comes back, and what is sent in.
pub trait Reamped {
    /// What comes back during the next `out.len()` samples.
    fn receive(&mut self, out: &mut [f32]);
    /// Sends `output` into the device.
    fn send(&mut self, output: &[f32]);
}

impl Reamped for SimulatedDevice {
    fn receive(&mut self, out: &mut [f32]) {
        SimulatedDevice::receive(self, out);
    }
    fn send(&mut self, output: &[f32]) {
        SimulatedDevice::send(self, output);
    }
}

/// The built-in compressor behind [`ROUND_TRIP`] samples (no noise).
pub struct ReampedCompressor {
    compressor: ReferenceCompressor,
    in_flight: std::collections::VecDeque<f32>,
}

impl ReampedCompressor {
    /// The compressor at `threshold_db` and `ratio` (attack 5 ms, release 100 ms).
    pub fn new(threshold_db: f32, ratio: f32) -> Self {
        let settings = CompressorSettings {
            threshold_db,
            ratio,
            attack_ms: 5.0,
            release_ms: 100.0,
            ..CompressorSettings::default()
        };
        ReampedCompressor {
            compressor: ReferenceCompressor::new(SR, settings),
            in_flight: std::iter::repeat_n(0.0, ROUND_TRIP).collect(),
        }
    }
}

impl Reamped for ReampedCompressor {
    fn receive(&mut self, out: &mut [f32]) {
        for y in out.iter_mut() {
            *y = self.in_flight.pop_front().unwrap_or(0.0);
        }
    }
    fn send(&mut self, output: &[f32]) {
        let mut processed = vec![0.0; output.len()];
        self.compressor.process(output, &mut processed);
        self.in_flight.extend(processed);
    }
}

/// A rig activated at [`SR`] with `setup`.
pub fn rig(setup: CaptureSetup) -> Rig {
    let labels = Arc::new(ArcSwap::from_pointee(KnobLabels::default()));
    let mut rig = Rig::new(labels, Arc::new(RwLock::new(setup)));
    rig.activate(SR, &Controls::default());
    rig
}

/// What the device hears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// The plugin's output (re-amping).
    Output,
    /// The DI on the main input (a splitter).
    Input,
}

/// One block through the rig (stereo, both channels `input`) with the device on the return,
/// without allocating on the audio thread; returns the left output.
pub fn block_with(
    rig: &mut Rig,
    device: &mut impl Reamped,
    input: &[f32],
    controls: &Controls,
    profiling: &ProfilingControls,
    feed: Feed,
) -> Vec<f32> {
    let mut left = input.to_vec();
    let mut right = input.to_vec();
    let mut back = vec![0.0; input.len()];
    device.receive(&mut back);
    {
        let mut channels: [&mut [f32]; 2] = [&mut left, &mut right];
        let returned: [&[f32]; 2] = [&back, &back];
        assert_no_alloc(|| rig.process(&mut channels, &returned, controls, profiling));
    }
    device.send(if feed == Feed::Output { &left } else { input });
    left
}

/// [`block_with`] at default controls, re-amping.
pub fn block(rig: &mut Rig, device: &mut impl Reamped, input: &[f32], profiling: &ProfilingControls) -> Vec<f32> {
    block_with(rig, device, input, &Controls::default(), profiling, Feed::Output)
}

/// Plays `input` through the rig in Play mode; returns the left output.
pub fn play(rig: &mut Rig, device: &mut impl Reamped, input: &[f32]) -> Vec<f32> {
    let profiling = ProfilingControls::default();
    input
        .chunks(BLOCK)
        .flat_map(|chunk| block(rig, device, chunk, &profiling))
        .collect()
}

/// Keeps the audio running (silence in Play) until `done`, failing after `timeout`.
pub fn wait_until(rig: &mut Rig, device: &mut impl Reamped, timeout: Duration, done: impl Fn(&Rig) -> bool) {
    let start = Instant::now();
    let silence = [0.0f32; BLOCK];
    while !done(rig) {
        let status = rig.trainer().status();
        assert!(
            start.elapsed() < timeout,
            "timed out: {:?}, step {}, loss {}, message {:?}",
            status.phase(),
            status.steps.load(Ordering::Relaxed),
            status.loss.load(Ordering::Relaxed),
            status.message()
        );
        // Keep the audio running (swaps happen at block boundaries).
        play(rig, device, &silence);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the trainer's message to contain `needle`.
pub fn wait_for_message(rig: &mut Rig, device: &mut impl Reamped, needle: &str) {
    let status = rig.trainer().status().clone();
    wait_until(rig, device, Duration::from_secs(30), |_| {
        status.message().contains(needle)
    });
}

/// Runs a whole capture from Play (only a change to Capture starts one) with `controls`
/// (the knobs the take is tagged with) until the deck holds; returns the samples played.
pub fn capture(rig: &mut Rig, device: &mut impl Reamped, controls: &Controls, profiling: &ProfilingControls) -> usize {
    let silence = [0.0f32; BLOCK];
    let play_mode = ProfilingControls::default();
    block_with(rig, device, &silence, controls, &play_mode, Feed::Output);
    let start = Instant::now();
    let mut played = 0;
    while rig.deck_status().phase() != DeckPhase::Captured {
        assert!(start.elapsed() < Duration::from_secs(120), "the capture never ended");
        let out = block_with(rig, device, &silence, controls, profiling, Feed::Output);
        if rig.deck_status().phase() == DeckPhase::Preparing {
            std::thread::sleep(Duration::from_millis(2));
        } else {
            played += out.len();
        }
    }
    block_with(rig, device, &silence, controls, &play_mode, Feed::Output);
    played
}
