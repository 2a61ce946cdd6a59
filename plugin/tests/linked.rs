//! A stereo-linked compressor profile in the plugin's signal path: one detector hears both
//! channels and one gain lands on both, exactly as the engine's offline playback plays it,
//! a mono track feeds its channel as both, and it swaps in without allocating. Test thread
//! stands in for the audio thread.

mod common;

use common::{is_clean, rig};
use doppel::dsp::{Controls, Processor};
use doppel_engine::playback::play_channels;
use doppel_engine::Profile;
use nice_assert_no_alloc::assert_no_alloc;

const SAMPLES: usize = 48_000;

/// A loud left channel (a 0.8 sine that steps down to 0.005 halfway) and a quiet right one.
fn stereo_input() -> [Vec<f32>; 2] {
    let tone = |n: usize, hz: f32| (std::f32::consts::TAU * hz * n as f32 / 48_000.0).sin();
    let left = (0..SAMPLES)
        .map(|n| if n < SAMPLES / 2 { 0.8 } else { 0.005 } * tone(n, 220.0))
        .collect();
    let right = (0..SAMPLES).map(|n| 0.02 * tone(n, 330.0)).collect();
    [left, right]
}

fn loaded(profile: &Profile) -> Processor {
    let (hub, mut processor, _meters) = rig();
    hub.load_profile(profile, "fixture").expect("fixture loads");
    let controls = controls(profile);
    processor.prepare(48_000.0, &controls);
    // Play a little silence so the posted model is swapped in and its crossfade is over.
    let mut silence = vec![[0.0f32; 64]; 2];
    for _ in 0..200 {
        let [l, r] = &mut silence[..] else { unreachable!() };
        processor.process(&mut [&mut l[..], &mut r[..]], &controls);
    }
    processor.reset(&controls);
    processor
}

fn controls(profile: &Profile) -> Controls {
    let mut controls = Controls::default();
    for (i, knob) in profile.meta.knobs.iter().enumerate() {
        controls.knobs[i] = knob.normalize(knob.default);
    }
    controls
}

#[test]
fn one_gain_on_both_channels_as_offline_playback_plays_it() {
    let profile = Profile::linked_compressor_fixture("linked").unwrap();
    let controls = controls(&profile);
    let [mut left, mut right] = stereo_input();
    let [in_left, in_right] = stereo_input();
    for block in [1usize, 17, 64, 500] {
        let [mut l, mut r] = stereo_input();
        let mut processor = loaded(&profile);
        for start in (0..SAMPLES).step_by(block) {
            let end = (start + block).min(SAMPLES);
            let mut slices: [&mut [f32]; 2] = [&mut l[start..end], &mut r[start..end]];
            assert_no_alloc(|| processor.process(&mut slices, &controls));
        }
        if block == 64 {
            left = l;
            right = r;
        } else {
            assert!(l.iter().chain(&r).all(|x| is_clean(*x)));
        }
    }
    let knobs: Vec<f32> = controls.knobs[..2].to_vec();
    let want = play_channels(&profile, &[&in_left, &in_right], &knobs).unwrap();
    let worst = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst(&left, &want[0]) < 1e-5, "left differs from playback");
    assert!(worst(&right, &want[1]) < 1e-5, "right differs from playback");
    // The quiet right channel is turned down by the loud left (its own level, -34 dBFS,
    // sits below the -30 dB threshold), and recovers once the left steps down.
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    let loud = SAMPLES / 4..SAMPLES / 2;
    let gain_db = |out: &[f32], input: &[f32], range: std::ops::Range<usize>| {
        20.0 * (rms(&out[range.clone()]) / rms(&input[range])).log10()
    };
    let right_loud = gain_db(&right, &in_right, loud.clone());
    let left_loud = gain_db(&left, &in_left, loud);
    assert!(
        right_loud < -10.0,
        "the right channel is not reduced: {right_loud:.1} dB"
    );
    assert!(
        (right_loud - left_loud).abs() < 0.1,
        "gains differ: {left_loud:.2} vs {right_loud:.2} dB"
    );
    let recovered = gain_db(&right, &in_right, SAMPLES * 7 / 8..SAMPLES);
    assert!(
        recovered > -1.0,
        "no recovery after the left steps down: {recovered:.1} dB"
    );
    // A processor on a mono track plays its channel as both of the pair.
    let mut mono = loaded(&profile);
    let mut samples = in_left.clone();
    for chunk in samples.chunks_mut(64) {
        let mut slices: [&mut [f32]; 1] = [chunk];
        assert_no_alloc(|| mono.process(&mut slices, &controls));
    }
    let dual = play_channels(&profile, &[&in_left, &in_left], &knobs).unwrap();
    assert!(worst(&samples, &dual[0]) < 1e-5, "mono track differs from dual mono");
}
