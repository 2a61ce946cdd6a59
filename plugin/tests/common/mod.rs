//! Shared fixtures for the plugin's integration tests: small deterministic profiles and a
//! processor wired to a fresh hub (test thread only).

#![allow(dead_code)]

pub mod device;

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
