//! Shared fixtures for the plugin's integration tests: small deterministic profiles and a
//! processor wired to a fresh hub (test thread only).

#![allow(dead_code)]

use std::sync::Arc;

use arc_swap::ArcSwap;
use doppel::dsp::{Meters, Processor};
use doppel::hub::ModelHub;
use doppel::params::KnobLabels;
use doppel_engine::{Profile, Size};

/// A nano `architecture` profile with two knobs ("gain" 0..10, "level" -12..0 dB) and
/// deterministic random weights in -0.2..0.2.
pub fn nano_profile(architecture: &str, name: &str, seed: u64) -> Profile {
    Profile::fixture(architecture, Size::Nano, name, seed).expect("valid fixture profile")
}

/// A hub, its processor (at 48 kHz, default controls) and the meters they share.
pub fn rig() -> (Arc<ModelHub>, Processor, Arc<Meters>) {
    let labels = Arc::new(ArcSwap::from_pointee(KnobLabels::default()));
    let (hub, player) = ModelHub::new(labels);
    let meters = Arc::new(Meters::default());
    let processor = Processor::new(player, meters.clone());
    (hub, processor, meters)
}

/// Deterministic test input: a 220 Hz sine at -6 dBFS plus a little pseudo-random noise.
pub fn test_signal(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32 - 0.5) * 0.05;
            0.5 * (std::f32::consts::TAU * 220.0 * i as f32 / 48_000.0).sin() + noise
        })
        .collect()
}

/// True for values a host may receive: finite and not subnormal.
pub fn is_clean(x: f32) -> bool {
    x.is_finite() && (x == 0.0 || x.abs() >= f32::MIN_POSITIVE)
}

/// A device on the Capture Return for headless tests: the built-in amp behind an interface's
/// round trip of `round_trip_samples` and a little noise, fed from the plugin's own output.
pub struct SimulatedDevice {
    amp: doppel_engine::reference::TubeAmp,
    /// The return still to come back, oldest first.
    in_flight: std::collections::VecDeque<f32>,
    noise_state: u32,
    noise_level: f32,
}

impl SimulatedDevice {
    /// The amp at 48 kHz (gain 0.6, tone 0.5) with `round_trip_samples` of delay (at least one
    /// block) and uniform noise of `noise_level` peak.
    pub fn new(round_trip_samples: usize, noise_level: f32) -> Self {
        SimulatedDevice {
            amp: doppel_engine::reference::TubeAmp::new(48_000.0, 0.6, 0.5),
            in_flight: std::iter::repeat_n(0.0, round_trip_samples).collect(),
            noise_state: 12_345,
            noise_level,
        }
    }

    /// The whole device's latency as alignment sees it: the round trip plus the amp's own.
    pub fn latency_samples(&self, round_trip_samples: usize) -> f64 {
        round_trip_samples as f64 + self.amp.apparent_latency_samples()
    }

    /// What comes back during the next `len` samples (sent earlier).
    pub fn receive(&mut self, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| {
                self.noise_state ^= self.noise_state << 13;
                self.noise_state ^= self.noise_state >> 17;
                self.noise_state ^= self.noise_state << 5;
                let noise = (self.noise_state as f32 / u32::MAX as f32 * 2.0 - 1.0) * self.noise_level;
                self.in_flight.pop_front().unwrap_or(0.0) + noise
            })
            .collect()
    }

    /// Sends the plugin's output into the device.
    pub fn send(&mut self, output: &[f32]) {
        let mut processed = vec![0.0; output.len()];
        self.amp.process(output, &mut processed);
        self.in_flight.extend(processed);
    }
}
