//! Profiling inside the plugin, headless: a simulated device (the built-in amp behind a
//! round trip, with a little noise) on the Capture Return, fed from the plugin's own output.
//! Mode = Capture finds the round trip, the training thread trains in the background and the
//! model that plays afterwards is closer to the device than the one before, all without an
//! allocation on the audio thread. Test thread stands in for the audio thread.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::device::{block, device, play, rig, wait_for_message, wait_until, BLOCK, SR};
use common::nano_profile;
use doppel::capture::DeckPhase;
use doppel::dsp::Controls;
use doppel::params::{CaptureSetup, Mode};
use doppel::rig::{ProfilingControls, Rig};
use doppel::trainer::{Command, TrainerPhase};
use doppel_engine::dataset::{load_dataset, CapturesFile, LoadOptions};
use doppel_engine::metrics::esr;
use doppel_engine::reference::ReampedAmp as SimulatedDevice;
use doppel_engine::signal::test_phrase;
use nice_assert_no_alloc::assert_no_alloc;

/// ESR of `output` against the device's own rendering of `input`, aligned as a DAW plays a
/// profile reporting `latency_samples`.
fn esr_against_device(input: &[f32], output: &[f32], latency_samples: u32) -> f32 {
    let mut amp = device(0.0).device();
    let mut expected = vec![0.0; input.len()];
    amp.process(input, &mut expected);
    // The amp's own latency is part of what the model learns; the profile's latency is extra.
    let shift = amp.latency_samples() as i64 - latency_samples as i64;
    let skip = 4_800; // past the start-up of both
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (t, &y) in output.iter().enumerate().skip(skip) {
        let s = t as i64 + shift;
        if (0..expected.len() as i64).contains(&s) {
            a.push(y);
            b.push(expected[s as usize]);
        }
    }
    esr(&a, &b)
}

#[test]
fn capture_finds_the_round_trip_and_training_gets_closer_to_the_device() {
    let setup = CaptureSetup {
        capture_seconds: 20.0,
        model_size: "nano".into(),
        threads: 1,
        train_steps: 400,
        train_seconds: 240.0,
        ..CaptureSetup::default()
    };
    let mut rig = rig(setup);
    rig.hub
        .load_profile(&nano_profile("wavenet", "unrelated", 3), "test")
        .unwrap();
    let mut device = device(1e-5);
    let held_out = test_phrase(SR as u32, 3.0, 42);
    let before = play(&mut rig, &mut device, &held_out);
    let esr_before = esr_against_device(&held_out, &before, rig.processor().model().latency_samples());

    // Capture: the deck plays the signal once a take is ready, then holds.
    let capture = ProfilingControls {
        mode: Mode::Capture,
        capture_level_db: -6.0,
        ..ProfilingControls::default()
    };
    let played = common::device::capture(&mut rig, &mut device, &Controls::default(), &capture);
    assert!(played >= (20.0 * SR) as usize, "only {played} samples played");

    let status = rig.trainer().status().clone();
    wait_until(&mut rig, &mut device, Duration::from_secs(60), |_| {
        status.latency_samples.load(Ordering::Relaxed) >= 0 || status.message().contains("Take")
    });
    let found = status.latency_samples.load(Ordering::Relaxed);
    let expected = device.latency_samples();
    assert!(
        (found as f64 - expected).abs() <= 1.0,
        "round trip found {found} for {expected:.1} ({})",
        status.message()
    );

    wait_until(&mut rig, &mut device, Duration::from_secs(90), |_| {
        status.phase() == TrainerPhase::Ready || status.message().starts_with("Training failed")
    });
    assert_eq!(status.phase(), TrainerPhase::Ready, "{}", status.message());
    assert!(status.checkpoints.load(Ordering::Relaxed) >= 1);
    // Let the last model arrive and its crossfade end.
    play(&mut rig, &mut device, &[0.0; 4 * 1024]);
    let latency = rig.processor().model().latency_samples();
    let after = play(&mut rig, &mut device, &held_out);
    let esr_after = esr_against_device(&held_out, &after, latency);
    eprintln!("held-out ESR before {esr_before:.4}, after {esr_after:.4} (latency {latency})");
    assert!(
        esr_after < 0.5 * esr_before && esr_after < 0.5,
        "before {esr_before}, after {esr_after}"
    );

    // Export: the captures as WAV pairs + captures.toml that `doppel train --captures` reads,
    // and the trained profile as a .doppel file.
    let dir = std::env::temp_dir().join(format!("doppel-capture-export-{}", std::process::id()));
    rig.trainer().send(Command::ExportCaptures(dir.clone()));
    wait_for_message(&mut rig, &mut device, "Exported 1 captures");
    let file = CapturesFile::load(&dir.join("captures.toml")).expect("captures.toml reads");
    let dataset = load_dataset(&file.capture, &file.knobs, &LoadOptions::default()).expect("the export loads");
    let exported_latency = dataset.pairs[0].latency_samples;
    assert!(
        (exported_latency - found).abs() <= 1,
        "exported take aligns at {exported_latency}, the plugin found {found}"
    );
    rig.trainer().send(Command::ExportProfile(dir.join("trained.doppel")));
    wait_for_message(&mut rig, &mut device, "Saved the profile");
    let saved = doppel_engine::Profile::load(dir.join("trained.doppel")).expect("the exported profile loads");
    assert_eq!(saved.meta.latency_samples, latency);
    std::fs::remove_dir_all(&dir).ok();
}

/// Starts a capture (from Play: only a change to Capture starts one) and plays its first
/// second.
fn start_capture(rig: &mut Rig, device: &mut SimulatedDevice, capture: &ProfilingControls) {
    let silence = [0.0f32; BLOCK];
    block(rig, device, &silence, &ProfilingControls::default());
    let start = Instant::now();
    while rig.deck_status().phase() != DeckPhase::Capturing {
        assert!(start.elapsed() < Duration::from_secs(60), "no take was prepared");
        block(rig, device, &silence, capture);
        std::thread::sleep(Duration::from_millis(2));
    }
    doppel::dsp::Meters::take(&rig.meters.output_peak);
    for _ in 0..(SR as usize / BLOCK) {
        block(rig, device, &silence, capture);
    }
    // The output meter shows what leaves the plugin: the capture signal's clicks.
    let peak = doppel::dsp::Meters::take(&rig.meters.output_peak);
    let clicks = 0.9 * 10f32.powf(capture.capture_level_db / 20.0);
    assert!(
        (peak - clicks).abs() < 0.01 * clicks,
        "output meter {peak} during a capture (clicks at {clicks})"
    );
}

#[test]
fn host_changes_during_a_capture_fail_the_take_with_their_own_message() {
    let setup = CaptureSetup {
        capture_seconds: 10.0,
        ..CaptureSetup::default()
    };
    let capture = ProfilingControls {
        mode: Mode::Capture,
        ..ProfilingControls::default()
    };
    let play_mode = ProfilingControls::default();
    let mut device = device(1e-5);

    // The mode moved away mid-take.
    let mut rig = rig(setup.clone());
    start_capture(&mut rig, &mut device, &capture);
    block(&mut rig, &mut device, &[0.0; BLOCK], &play_mode);
    wait_for_message(&mut rig, &mut device, "interrupted");

    // The Capture Return went away.
    let mut rig = self::rig(setup.clone());
    start_capture(&mut rig, &mut device, &capture);
    let (mut left, mut right) = (vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]);
    let mut channels: [&mut [f32]; 2] = [&mut left, &mut right];
    assert_no_alloc(|| rig.process(&mut channels, &[], &Controls::default(), &capture));
    wait_for_message(&mut rig, &mut device, "audio layout");

    // The host restarted the plugin at another rate.
    let mut rig = self::rig(setup);
    start_capture(&mut rig, &mut device, &capture);
    rig.activate(44_100.0, &Controls::default());
    wait_for_message(&mut rig, &mut device, "sample rate changed");

    // The host reset the plugin (transport jump).
    let mut rig = self::rig(CaptureSetup {
        capture_seconds: 10.0,
        ..CaptureSetup::default()
    });
    start_capture(&mut rig, &mut device, &capture);
    rig.reset(&Controls::default());
    wait_for_message(&mut rig, &mut device, "reset the plugin");
}

#[test]
fn an_instance_that_starts_in_capture_mode_plays_no_test_signal() {
    // A project saved in Capture mode reopens in it: nothing plays until Mode is pressed again.
    let mut rig = rig(CaptureSetup {
        capture_seconds: 10.0,
        ..CaptureSetup::default()
    });
    let mut device = device(0.0);
    let capture = ProfilingControls {
        mode: Mode::Capture,
        ..ProfilingControls::default()
    };
    let silence = [0.0f32; BLOCK];
    for _ in 0..(SR as usize / BLOCK) {
        let out = block(&mut rig, &mut device, &silence, &capture);
        assert!(out.iter().all(|x| *x == 0.0), "a reopened Capture played");
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(rig.deck_status().phase(), DeckPhase::Captured);
    start_capture(&mut rig, &mut device, &capture);
}

#[test]
fn a_capture_without_a_return_says_so_and_trains_nothing() {
    let setup = CaptureSetup {
        capture_seconds: 10.0,
        ..CaptureSetup::default()
    };
    let mut rig = rig(setup);
    let capture = ProfilingControls {
        mode: Mode::Capture,
        ..ProfilingControls::default()
    };
    // A device that never answers: silence on the return.
    let mut device = device(0.0);
    let silence = [0.0f32; BLOCK];
    block(&mut rig, &mut device, &silence, &ProfilingControls::default());
    let start = Instant::now();
    while rig.deck_status().phase() != DeckPhase::Captured {
        assert!(start.elapsed() < Duration::from_secs(120), "the capture never ended");
        let mut left = silence.to_vec();
        let mut right = silence.to_vec();
        let mut channels: [&mut [f32]; 2] = [&mut left, &mut right];
        let back = [0.0f32; BLOCK];
        let returned: [&[f32]; 2] = [&back, &back];
        assert_no_alloc(|| rig.process(&mut channels, &returned, &Controls::default(), &capture));
        if rig.deck_status().phase() == DeckPhase::Preparing {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    wait_for_message(&mut rig, &mut device, "No return");
    let status = rig.trainer().status();
    assert_eq!(status.captures.load(Ordering::Relaxed), 0, "a bad take was kept");
    assert_eq!(status.phase(), TrainerPhase::Idle);
}
