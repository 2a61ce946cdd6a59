//! Profiling set-ups beyond one capture, headless: takes tagged with the knobs of several
//! device settings train one knob-conditioned profile under the capture cap; a compressor is
//! captured with the dynamics signal along the proposed capture plan and trains the dynamics
//! model; Learn on a split (the DI goes to the device directly) measures its delay once from
//! the playing; Mode and Monitor changes crossfade instead of clicking. Test thread stands in
//! for the audio thread.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::device::{
    block_with, capture, device, device_at, rig, wait_for_message, wait_until, Feed, Reamped, ReampedCompressor, BLOCK,
    SR,
};
use common::nano_profile;
use doppel::dsp::Controls;
use doppel::params::{CaptureSetup, Mode, Monitor, TaggedKnob};
use doppel::rig::ProfilingControls;
use doppel::trainer::{Command, TrainerPhase};
use doppel_engine::dataset::{load_dataset, CapturesFile, LoadOptions};
use doppel_engine::signal::test_phrase;
use doppel_engine::train::EffectKind;

/// Plugin knob 1 set to `normalized` (the others at their defaults).
fn knob_at(normalized: f32) -> Controls {
    let mut controls = Controls::default();
    controls.knobs[0] = normalized;
    controls
}

/// Waits until the trainer has judged `judged` takes in all, and checks every one was good.
fn expect_good_take(rig: &mut doppel::rig::Rig, device: &mut impl Reamped, judged: u64) {
    let status = rig.trainer().status().clone();
    wait_until(rig, device, Duration::from_secs(30), |_| {
        status.takes_accepted.load(Ordering::Relaxed) + status.takes_refused.load(Ordering::Relaxed) == judged
    });
    assert_eq!(
        status.takes_accepted.load(Ordering::Relaxed),
        judged,
        "{}",
        status.take_verdict()
    );
}

#[test]
fn takes_at_tagged_knob_settings_train_one_conditioned_profile_under_the_cap() {
    let mut knobs: [Option<TaggedKnob>; 4] = Default::default();
    knobs[0] = Some(TaggedKnob {
        name: "drive".into(),
        min: 0.0,
        max: 10.0,
        unit: String::new(),
    });
    let setup = CaptureSetup {
        knobs,
        capture_seconds: 10.0,
        // Room for two 10 s takes (each also records the round-trip tail), not three.
        max_capture_seconds: 25.0,
        model_size: "nano".into(),
        threads: 1,
        train_steps: 40,
        train_seconds: 60.0,
        ..CaptureSetup::default()
    };
    let mut rig = rig(setup);
    let status = rig.trainer().status().clone();
    let profiling = ProfilingControls {
        mode: Mode::Capture,
        capture_level_db: -6.0,
        ..ProfilingControls::default()
    };
    // The device set to drive 3, 5.5 and 8 in turn, the plugin knob tagged to match.
    for (take, drive) in [3.0f32, 5.5, 8.0].into_iter().enumerate() {
        let mut device = device_at(drive, 1e-5);
        capture(&mut rig, &mut device, &knob_at(drive / 10.0), &profiling);
        expect_good_take(&mut rig, &mut device, take as u64 + 1);
    }
    assert_eq!(
        status.captures_dropped.load(Ordering::Relaxed),
        1,
        "{}",
        status.message()
    );
    assert_eq!(status.captures.load(Ordering::Relaxed), 2);
    let held = status.held_seconds.load(Ordering::Relaxed);
    assert!((20.0..=21.0).contains(&held), "{held} s held");

    let mut device = device(0.0);
    wait_until(&mut rig, &mut device, Duration::from_secs(120), |_| {
        status.phase() == TrainerPhase::Ready || status.message().starts_with("Training failed")
    });
    assert_eq!(status.phase(), TrainerPhase::Ready, "{}", status.message());
    let profile = rig.hub.profile().expect("a trained profile plays");
    let knob = &profile.meta.knobs[..];
    assert_eq!(knob.len(), 1, "{knob:?}");
    assert_eq!((knob[0].name.as_str(), knob[0].min, knob[0].max), ("drive", 0.0, 10.0));

    // The export keeps each take's tag and round trip, in the format `doppel train` reads.
    let dir = std::env::temp_dir().join(format!("doppel-tagged-export-{}", std::process::id()));
    rig.trainer().send(Command::ExportCaptures(dir.clone()));
    wait_for_message(&mut rig, &mut device, "Exported 2 captures");
    let file = CapturesFile::load(&dir.join("captures.toml")).expect("captures.toml reads");
    let drives: Vec<f32> = file.capture.iter().map(|c| c.knobs["drive"]).collect();
    assert_eq!(drives, [5.5, 8.0]);
    let dataset = load_dataset(&file.capture, &file.knobs, &LoadOptions::default()).expect("the export loads");
    let expected = device.latency_samples();
    for (spec, pair) in file.capture.iter().zip(&dataset.pairs) {
        let written = spec.latency_samples.expect("each capture records its round trip");
        assert!((written as f64 - expected).abs() <= 1.0, "{written} for {expected}");
        assert_eq!(pair.latency_samples, written);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_compressor_captured_along_the_plan_trains_the_dynamics_model() {
    let mut knobs: [Option<TaggedKnob>; 4] = Default::default();
    knobs[0] = Some(TaggedKnob {
        name: "threshold_db".into(),
        min: -40.0,
        max: -10.0,
        unit: "dB".into(),
    });
    let setup = CaptureSetup {
        knobs,
        capture_seconds: 12.0,
        model_size: "nano".into(),
        threads: 1,
        train_steps: 150,
        train_seconds: 60.0,
        effect: EffectKind::Compressor,
        ..CaptureSetup::default()
    };
    let mut rig = rig(setup);
    let status = rig.trainer().status().clone();
    let profiling = ProfilingControls {
        mode: Mode::Capture,
        capture_level_db: -3.0,
        ..ProfilingControls::default()
    };
    // The plan for one knob: its centre, then both ends.
    let mut device = ReampedCompressor::new(-25.0, 4.0);
    wait_until(&mut rig, &mut device, Duration::from_secs(10), |_| {
        status.plan_hint().contains("0 of 3")
    });
    assert!(
        status.plan_hint().contains("threshold_db -25"),
        "{}",
        status.plan_hint()
    );
    for (take, threshold_db) in [-25.0f32, -40.0].into_iter().enumerate() {
        let mut device = ReampedCompressor::new(threshold_db, 4.0);
        capture(
            &mut rig,
            &mut device,
            &knob_at((threshold_db + 40.0) / 30.0),
            &profiling,
        );
        expect_good_take(&mut rig, &mut device, take as u64 + 1);
    }
    let mut device = ReampedCompressor::new(-25.0, 4.0);
    wait_until(&mut rig, &mut device, Duration::from_secs(10), |_| {
        status.plan_hint().contains("2 of 3")
    });
    assert!(
        status.plan_hint().contains("threshold_db -10"),
        "{}",
        status.plan_hint()
    );
    // The second take restarted training on both: wait for that session's end.
    wait_until(&mut rig, &mut device, Duration::from_secs(120), |_| {
        let message = status.message();
        message.starts_with("Training done") || message.starts_with("Training failed")
    });
    assert_eq!(status.phase(), TrainerPhase::Ready, "{}", status.message());
    let profile = rig.hub.profile().expect("a trained profile plays");
    assert_eq!(status.steps.load(Ordering::Relaxed), 150, "{}", status.message());
    let captures = profile.meta.training.as_ref().map(|t| t.device_latency_samples.len());
    assert_eq!(captures, Some(2), "trained on both takes");
    assert_eq!(profile.meta.model.architecture(), "compressor");
    assert_eq!(
        profile.meta.training.as_ref().map(|t| t.effect.as_str()),
        Some("compressor")
    );
    assert_eq!(profile.meta.latency_samples, 0, "the compressor adds no latency");
    let knob = &profile.meta.knobs[0];
    assert_eq!((knob.name.as_str(), knob.min, knob.max), ("threshold_db", -40.0, -10.0));
}

#[test]
fn learn_on_a_split_measures_the_delay_once_from_the_playing() {
    let setup = CaptureSetup {
        model_size: "nano".into(),
        threads: 1,
        train_steps: 20,
        train_seconds: 60.0,
        ..CaptureSetup::default()
    };
    let mut rig = rig(setup);
    rig.hub
        .load_profile(&nano_profile("wavenet", "unrelated", 5), "test")
        .unwrap();
    let status = rig.trainer().status().clone();
    let mut device = device(1e-5);
    let learn = ProfilingControls {
        mode: Mode::Learn,
        ..ProfilingControls::default()
    };
    // Twelve seconds of playing: the first 10 s buffer is handed to training.
    let playing = test_phrase(SR as u32, 12.0, 7);
    for chunk in playing.chunks(BLOCK) {
        block_with(&mut rig, &mut device, chunk, &Controls::default(), &learn, Feed::Input);
    }
    wait_for_message(&mut rig, &mut device, "measured from your playing");
    let found = status.latency_samples.load(Ordering::Relaxed);
    let expected = device.latency_samples();
    assert!(
        (found as f64 - expected).abs() <= 1.0,
        "found {found} for {expected:.1}"
    );
    wait_until(&mut rig, &mut device, Duration::from_secs(120), |_| {
        status.phase() == TrainerPhase::Ready || status.message().starts_with("Training failed")
    });
    assert_eq!(status.phase(), TrainerPhase::Ready, "{}", status.message());
    assert_eq!(status.captures.load(Ordering::Relaxed), 1);
}

/// Largest sample-to-sample step in `x`.
fn largest_step(x: &[f32]) -> f32 {
    x.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max)
}

#[test]
fn mode_and_monitor_changes_crossfade_instead_of_clicking() {
    let mut rig = rig(CaptureSetup::default());
    rig.hub
        .load_profile(&nano_profile("wavenet", "unrelated", 9), "test")
        .unwrap();
    // The device hears the DI (a split), so monitoring it makes no feedback loop; the model
    // and the device sound different, so a hard switch would step.
    let mut device = device(0.0);
    let sine: Vec<f32> = (0..(SR as usize) * 3)
        .map(|t| 0.3 * (std::f32::consts::TAU * 220.0 * t as f32 / SR).sin())
        .collect();
    let at = |mode, monitor| ProfilingControls {
        mode,
        monitor,
        ..ProfilingControls::default()
    };
    // Half a second per setting: Play on the model, the device, Learn on the device, Learn on
    // the model, Play again.
    let settings = [
        at(Mode::Play, Monitor::Model),
        at(Mode::Play, Monitor::Device),
        at(Mode::Learn, Monitor::Device),
        at(Mode::Learn, Monitor::Model),
        at(Mode::Play, Monitor::Model),
        at(Mode::Play, Monitor::Device),
    ];
    let per_setting = SR as usize / 2;
    let mut output = Vec::new();
    for (i, chunk) in sine.chunks(BLOCK).enumerate() {
        let setting = &settings[(i * BLOCK / per_setting).min(settings.len() - 1)];
        output.extend(block_with(
            &mut rig,
            &mut device,
            chunk,
            &Controls::default(),
            setting,
            Feed::Input,
        ));
    }
    // What each source steps by on its own, in the steady part of its first half second.
    let model_alone = largest_step(&output[per_setting / 2..per_setting]);
    let device_alone = largest_step(&output[3 * per_setting / 2..2 * per_setting]);
    let modes_differ = output[per_setting / 2..per_setting]
        .iter()
        .zip(&output[3 * per_setting / 2..2 * per_setting])
        .any(|(a, b)| (a - b).abs() > 0.05);
    assert!(
        modes_differ,
        "the model and the device sound alike: the test proves nothing"
    );
    let bound = 1.05 * model_alone.max(device_alone) + 1e-4;
    for change in 1..settings.len() {
        let around = &output[change * per_setting - 2_000..change * per_setting + 2_000];
        let step = largest_step(around);
        assert!(
            step <= bound,
            "change {change} steps by {step}, the sources alone by {model_alone} and {device_alone}"
        );
    }
}
