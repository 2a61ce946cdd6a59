//! A profile with nonzero latency through the processor: the reported latency, the dry path
//! delayed by exactly that, and Mix below 100 % without a comb filter. Test thread stands in
//! for the audio thread.

mod common;

use common::{rig, test_signal};
use doppel::dsp::Controls;
use doppel_engine::Profile;

const LATENCY_SAMPLES: u32 = 16;
/// Input level at which the delay fixture's tanh is the identity within 5e-7 (-40 dBFS).
const QUIET: f32 = 0.02;

/// The shared test signal at -40 dBFS.
fn quiet_signal(len: usize, seed: u32) -> Vec<f32> {
    test_signal(len, seed).iter().map(|x| x * QUIET).collect()
}

/// Loads a `LATENCY_SAMPLES`-late delay model and processes `input` in blocks of `block`.
fn play(input: &[f32], block: usize, controls: &Controls) -> (Vec<f32>, u32) {
    let (hub, mut processor, _meters) = rig();
    let profile = Profile::delay_fixture(LATENCY_SAMPLES).unwrap();
    hub.load_bytes(&profile.to_bytes().unwrap(), "delay.doppel").unwrap();
    processor.prepare(48_000.0, controls);
    // The first process call swaps the model in; a silent block keeps the start clean.
    processor.process(&mut [&mut [0.0f32; 1][..]], controls);
    processor.reset(controls);
    let latency = processor.model().latency_samples();
    let mut samples = input.to_vec();
    for chunk in samples.chunks_mut(block) {
        processor.process(&mut [chunk], controls);
    }
    (samples, latency)
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// `x` delayed by `latency` samples.
fn delayed(x: &[f32], latency: usize) -> Vec<f32> {
    (0..x.len())
        .map(|n| if n >= latency { x[n - latency] } else { 0.0 })
        .collect()
}

#[test]
fn the_processor_reports_the_profiles_latency() {
    let (_, latency) = play(&[0.0; 64], 64, &Controls::default());
    assert_eq!(latency, LATENCY_SAMPLES);
}

#[test]
fn dry_and_wet_null_at_half_mix_with_no_comb_filter() {
    let input = quiet_signal(9_600, 3);
    let half = Controls {
        mix: 0.5,
        ..Controls::default()
    };
    for block in [1, 17, 64, 4096] {
        let (output, _) = play(&input, block, &half);
        // Wet (the model) and dry (delayed by the reported latency) are the same signal, so
        // half and half is that signal again: no notches, no doubled transients.
        let expected = delayed(&input, LATENCY_SAMPLES as usize);
        let error = max_difference(&output, &expected);
        assert!(error <= 1e-6, "block {block}: dry and wet differ by {error}");
    }
    // Without the dry delay the same mix would comb-filter: a 16-sample offset at 48 kHz puts
    // a notch at 1.5 kHz. Check the test would see it.
    let undelayed_mix: Vec<f32> = delayed(&input, LATENCY_SAMPLES as usize)
        .iter()
        .zip(&input)
        .map(|(w, d)| 0.5 * w + 0.5 * d)
        .collect();
    assert!(max_difference(&undelayed_mix, &delayed(&input, LATENCY_SAMPLES as usize)) > 1e-3);
}

#[test]
fn bypass_plays_the_dry_signal_delayed_by_the_same_latency() {
    let input = quiet_signal(4_800, 4);
    let bypassed = Controls {
        bypass: true,
        ..Controls::default()
    };
    let (output, _) = play(&input, 64, &bypassed);
    let error = max_difference(&output, &delayed(&input, LATENCY_SAMPLES as usize));
    assert!(
        error <= 1e-6,
        "bypass must keep the host's delay compensation right: {error}"
    );
}
