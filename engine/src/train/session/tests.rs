//! The training session: captures from memory, checkpoints as they improve, stop, pause, data
//! fed while running, fine-tuning, and the profile's latency (test thread and the session's
//! workers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::wav::WavAudio;

const SAMPLE_RATE: u32 = 16_000;
/// The test device's own delay, in samples.
const DEVICE_DELAY: usize = 7;

/// A soft clipper into a one-pole low-pass, `DEVICE_DELAY` samples late.
fn device(input: &[f32], drive: f32) -> Vec<f32> {
    let mut state = 0.0;
    let mut output = vec![0.0; DEVICE_DELAY];
    output.extend(input.iter().map(|&x| {
        state += 0.3 * ((drive * x).tanh() - state);
        state
    }));
    output.truncate(input.len());
    output
}

fn input_signal(seconds: f32, seed: u64) -> Vec<f32> {
    let mut noise = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..(seconds * SAMPLE_RATE as f32) as usize)
        .map(|i| {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let t = i as f32 / SAMPLE_RATE as f32;
            let envelope = 0.2 + 0.6 * (0.5 + 0.5 * (t * 1.3).sin());
            let random = (noise % 2001) as f32 / 1000.0 - 1.0;
            envelope * (0.5 * (t * 2.0 * std::f32::consts::PI * 220.0).sin() + 0.3 * random)
        })
        .collect()
}

fn capture(seed: u64, label: &str) -> CaptureInput {
    capture_of(6.0, seed, label)
}

fn capture_of(seconds: f32, seed: u64, label: &str) -> CaptureInput {
    let input = input_signal(seconds, seed);
    let target = device(&input, 2.5);
    let audio = |samples| WavAudio {
        samples,
        sample_rate: SAMPLE_RATE,
        source_channels: 1,
    };
    CaptureInput::Memory(CaptureAudio {
        input: audio(input),
        target: audio(target),
        input_label: format!("{label} in").into(),
        target_label: format!("{label} out").into(),
        knobs: BTreeMap::new(),
        latency_samples: None,
        stereo: None,
    })
}

fn quick(steps: u64) -> SessionConfig {
    let mut config = SessionConfig::new("session test");
    config.size = Size::Nano;
    config.max_steps = Some(steps);
    config.max_seconds = None;
    config.batch_size = Some(4);
    config.segment_samples = Some(1024);
    config.learning_rate = Some(1e-2);
    config.final_learning_rate_fraction = Some(0.1);
    config.threads = Some(2);
    config
}

#[test]
fn trains_from_memory_reports_improving_checkpoints_and_its_latency() {
    let mut config = quick(60);
    config.margin_samples = Some(3);
    let session = Session::new(config, vec![capture(1, "take")]).unwrap();
    // Cross-correlation puts the low-passed device a sample or so after its first tap.
    let latency = session.dataset().pairs[0].latency_samples;
    assert!(
        (DEVICE_DELAY as i64..=DEVICE_DELAY as i64 + 2).contains(&latency),
        "{latency}"
    );
    assert_eq!(session.meta().latency_samples, 3);
    let mut checkpoints = Vec::new();
    let mut worker_names = Vec::new();
    let outcome = session
        .run(&mut |event| match event {
            SessionEvent::Checkpoint(c) => checkpoints.push((c.step, c.validation_esr, c.profile.clone())),
            SessionEvent::Progress(_) if worker_names.is_empty() => {
                worker_names.push(std::thread::current().name().unwrap_or("").to_string());
            }
            _ => {}
        })
        .unwrap();
    assert!(!outcome.stopped);
    assert!(worker_names[0].starts_with("doppel-train-"), "ran on {worker_names:?}");
    let profile = &outcome.profile;
    assert_eq!(profile.meta.latency_samples, 3);
    let training = profile.meta.training.as_ref().unwrap();
    assert_eq!(training.alignment_margin_samples, 3);
    assert_eq!(training.steps, 60);
    assert!(
        !checkpoints.is_empty(),
        "60 steps of a fresh model must improve at least once"
    );
    for pair in checkpoints.windows(2) {
        assert!(
            pair[1].0 > pair[0].0 && pair[1].1 < pair[0].1,
            "checkpoints must improve: {:?} then {:?}",
            (pair[0].0, pair[0].1),
            (pair[1].0, pair[1].1)
        );
    }
    let (_, last_esr, last_profile) = checkpoints.last().unwrap();
    assert_eq!(last_profile.meta.latency_samples, 3);
    assert!(
        (profile.meta.accuracy.as_ref().unwrap().esr - last_esr).abs() <= 1e-6 * last_esr.max(1.0),
        "the profile is the last checkpoint"
    );
}

#[test]
fn the_measured_margin_reaches_back_to_the_devices_first_tap_and_no_further() {
    let session = Session::new(quick(1), vec![capture(2, "take")]).unwrap();
    let notes = &session.dataset().notes;
    let margin = session.meta().latency_samples as i64;
    let latency = session.dataset().pairs[0].latency_samples;
    // The device responds from DEVICE_DELAY on: the aligned target must start there (or at
    // most a sample earlier), whatever the correlation peak said.
    assert!(
        (DEVICE_DELAY as i64 - 1..=DEVICE_DELAY as i64).contains(&(latency - margin)),
        "latency {latency}, margin {margin}, notes {notes:?}"
    );
    let mut lstm = quick(1);
    lstm.architecture = "lstm".into();
    assert_eq!(
        Session::new(lstm, vec![capture(2, "take")])
            .unwrap()
            .meta()
            .latency_samples,
        0
    );
}

#[test]
fn stop_ends_the_run_with_a_valid_profile() {
    let mut endless = quick(1);
    // Two minutes, in case stopping ever breaks: the test then fails instead of hanging.
    endless.max_steps = None;
    endless.max_seconds = Some(120.0);
    let session = Session::new(endless, vec![capture(3, "take")]).unwrap();
    let control = session.control();
    let outcome = session
        .run(&mut |event| {
            if let SessionEvent::Progress(p) = event {
                if p.step >= 5 {
                    control.stop();
                }
            }
        })
        .unwrap();
    assert!(outcome.stopped);
    assert_eq!(outcome.profile.meta.training.as_ref().unwrap().steps, 5);
}

#[test]
fn data_fed_while_running_joins_training_and_validation() {
    let session = Session::new(quick(40), vec![capture(4, "first")]).unwrap();
    let control = session.control();
    let mut added = Vec::new();
    let mut notes = Vec::new();
    let outcome = session
        .run(&mut |event| match event {
            SessionEvent::Progress(p) if p.step == 3 => {
                control.feed(capture(5, "second"));
                // A capture at another sample rate is refused with a note, not an error.
                let CaptureInput::Memory(mut odd) = capture(6, "odd") else {
                    unreachable!()
                };
                odd.input.sample_rate = 22_050;
                odd.target.sample_rate = 22_050;
                control.feed(CaptureInput::Memory(odd));
            }
            SessionEvent::DataAdded { captures, seconds } => added.push((captures, seconds)),
            SessionEvent::Note(note) => notes.push(note.to_string()),
            _ => {}
        })
        .unwrap();
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(added[0].0, 1);
    assert!((added[0].1 - 6.0).abs() < 0.1, "{added:?}");
    assert!(notes.iter().any(|n| n.contains("22050 Hz")), "{notes:?}");
    let training = outcome.profile.meta.training.as_ref().unwrap();
    let latencies = &training.device_latency_samples;
    assert_eq!(latencies.len(), 2);
    assert_eq!(latencies[0], latencies[1], "the same device, the same latency");
    // Validation now covers both captures' tails.
    let accuracy = outcome.profile.meta.accuracy.as_ref().unwrap();
    assert!((accuracy.seconds - 1.2).abs() < 0.05, "{accuracy:?}");
}

#[test]
fn a_fed_capture_too_short_to_train_on_is_refused_and_the_run_goes_on() {
    let mut config = quick(8);
    // Segments of a second: a 1.2 s capture aligns but leaves too little before its tail.
    config.segment_samples = Some(16_000);
    let session = Session::new(config, vec![capture(9, "first")]).unwrap();
    let control = session.control();
    let (mut added, mut notes) = (0, Vec::new());
    let outcome = session
        .run(&mut |event| match event {
            SessionEvent::Progress(p) if p.step == 2 => control.feed(capture_of(1.2, 10, "short")),
            SessionEvent::DataAdded { .. } => added += 1,
            SessionEvent::Note(note) => notes.push(note.to_string()),
            _ => {}
        })
        .unwrap();
    assert_eq!(added, 0);
    assert!(notes.iter().any(|n| n.contains("too short")), "{notes:?}");
    let training = outcome.profile.meta.training.as_ref().unwrap();
    assert_eq!(training.steps, 8);
    assert_eq!(
        training.device_latency_samples.len(),
        1,
        "the refused capture left no trace"
    );
}

#[test]
fn fine_tuning_starts_from_the_profile_and_keeps_its_latency() {
    let mut config = quick(40);
    config.margin_samples = Some(2);
    let first = Session::new(config, vec![capture(7, "take")])
        .unwrap()
        .run(&mut |_| {})
        .unwrap();
    let start_esr = first.profile.meta.accuracy.as_ref().unwrap().esr;
    let mut tune = quick(20);
    tune.start_from = Some(first.profile.clone());
    // Fine-tuning ignores architecture and margin settings: the profile's model and latency stay.
    tune.architecture = "lstm".into();
    tune.margin_samples = Some(9);
    let session = Session::new(tune, vec![capture(7, "take")]).unwrap();
    assert_eq!(session.meta().latency_samples, 2);
    assert_eq!(session.meta().model, first.profile.meta.model);
    let second = session.run(&mut |_| {}).unwrap();
    let curve = &second.profile.meta.training.as_ref().unwrap().validation_curve;
    assert!(
        (curve[0].1 - start_esr).abs() <= 1e-5 * start_esr.max(1e-3),
        "fine-tuning starts where the profile left off: {} vs {start_esr}",
        curve[0].1
    );
    assert!(second.profile.meta.accuracy.as_ref().unwrap().esr <= start_esr);
}

#[test]
fn pause_holds_the_run_and_its_clock() {
    let session = Session::new(quick(12), vec![capture(8, "take")]).unwrap();
    let control = session.control();
    let started = Instant::now();
    let resumed_at = AtomicU64::new(0);
    let hold = Duration::from_millis(1_000);
    let outcome = std::thread::scope(|scope| {
        let resumer = control.clone();
        let mut paused_once = false;
        let run = session.run(&mut |event| {
            if let SessionEvent::Progress(p) = event {
                if p.step == 4 && !paused_once {
                    paused_once = true;
                    control.pause();
                    let resumer = resumer.clone();
                    let resumed_at = &resumed_at;
                    scope.spawn(move || {
                        std::thread::sleep(hold);
                        resumed_at.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                        resumer.resume();
                    });
                }
                if p.step == 5 {
                    let resumed = resumed_at.load(Ordering::Relaxed);
                    assert!(resumed > 0, "step 5 ran before the run was resumed");
                }
            }
        });
        run.unwrap()
    });
    let wall = started.elapsed().as_secs_f32();
    let training = outcome.profile.meta.training.as_ref().unwrap();
    assert_eq!(training.steps, 12);
    assert!(
        training.wall_seconds < wall - 0.5,
        "paused time must not count: {} s of training in {wall} s",
        training.wall_seconds
    );
}
