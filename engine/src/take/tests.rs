use super::*;
use crate::reference::TubeAmp;
use crate::signal::capture_signal;

const SR: u32 = 48_000;
const ROUND_TRIP: usize = 300;
const MAX_LATENCY: usize = 12_000;
/// An interface's noise floor: about -105 dBFS RMS.
const QUIET_NOISE: f32 = 1e-5;

/// Uniform noise in -level..level from a fixed linear congruential sequence.
fn noise(len: usize, level: f32, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            level * (((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0)
        })
        .collect()
}

/// The capture signal at -6 dB, and what the built-in amp sends back after `delay` samples
/// (a delay that becomes `delay + jump` from sample `jump_at` on), with noise at `noise_level`.
fn take(delay: usize, jump: usize, jump_at: usize, noise_level: f32) -> (Vec<f32>, Vec<f32>, usize) {
    let played: Vec<f32> = capture_signal(SR, 20.0).iter().map(|v| 0.5 * v).collect();
    let mut amp = TubeAmp::new(SR as f32, 0.6, 0.5);
    let mut wet = vec![0.0; played.len()];
    amp.process(&played, &mut wet);
    let mut returned = noise(played.len() + MAX_LATENCY, noise_level, 3);
    for (i, y) in wet.iter().enumerate() {
        let at = i + delay + if i >= jump_at { jump } else { 0 };
        if let Some(r) = returned.get_mut(at) {
            *r += 0.5 * y;
        }
    }
    (played, returned, delay + amp.latency_samples())
}

#[test]
fn a_good_take_passes_with_the_round_trip_latency() {
    let (played, returned, expected) = take(ROUND_TRIP, 0, usize::MAX, QUIET_NOISE);
    let report = check_take(&played, &returned, SR, MAX_LATENCY).expect("a good take");
    assert!(
        (report.latency_samples - expected as i64).abs() <= 1,
        "latency {} for {expected}",
        report.latency_samples
    );
    assert!(report.snr_db > MIN_SNR_DB, "{report:?}");
    assert!(report.replicate_esr.unwrap() < REPLICATE_ESR_LIMIT, "{report:?}");
}

#[test]
fn silence_is_no_return() {
    let (played, returned, _) = take(ROUND_TRIP, 0, usize::MAX, 0.0);
    let silent = vec![0.0; returned.len()];
    let problem = check_take(&played, &silent, SR, MAX_LATENCY).unwrap_err();
    assert!(matches!(problem, TakeProblem::NoReturn { .. }), "{problem}");
    assert!(problem.to_string().starts_with("No return"));
}

#[test]
fn a_hot_return_is_clipping() {
    let (played, returned, _) = take(ROUND_TRIP, 0, usize::MAX, QUIET_NOISE);
    let hot: Vec<f32> = returned.iter().map(|v| (8.0 * v).clamp(-1.0, 1.0)).collect();
    let problem = check_take(&played, &hot, SR, MAX_LATENCY).unwrap_err();
    assert!(matches!(problem, TakeProblem::Clipping { .. }), "{problem}");
    assert!(problem.to_string().contains("clips"));
}

#[test]
fn a_faint_return_is_too_quiet() {
    let (played, returned, _) = take(ROUND_TRIP, 0, usize::MAX, QUIET_NOISE);
    let faint: Vec<f32> = returned.iter().map(|v| 0.003 * v).collect();
    let problem = check_take(&played, &faint, SR, MAX_LATENCY).unwrap_err();
    assert!(matches!(problem, TakeProblem::TooQuiet { .. }), "{problem}");
}

#[test]
fn a_return_unrelated_to_the_signal_has_no_latency() {
    let (played, returned, _) = take(ROUND_TRIP, 0, usize::MAX, QUIET_NOISE);
    // Quiet through the intro, then loud noise that has nothing to do with the signal.
    let intro = capture_layout(SR, 20.0)[0].1.end;
    let mut unrelated = returned.clone();
    for (r, v) in unrelated[intro..].iter_mut().zip(noise(returned.len(), 0.3, 11)) {
        *r = v;
    }
    let problem = check_take(&played, &unrelated, SR, MAX_LATENCY).unwrap_err();
    assert!(matches!(problem, TakeProblem::LatencyNotFound { .. }), "{problem}");
}

#[test]
fn a_round_trip_that_jumps_between_clicks_is_caught() {
    let clicks = click_positions(SR, (20.0 * SR as f32) as usize);
    let (played, returned, _) = take(ROUND_TRIP, 24, clicks[1] - 100, QUIET_NOISE);
    let problem = check_take(&played, &returned, SR, MAX_LATENCY).unwrap_err();
    match &problem {
        TakeProblem::ClicksDisagree { offsets_samples, .. } => {
            assert_eq!(offsets_samples[0], 0);
            assert!(offsets_samples[1..].iter().all(|&o| o == 24), "{offsets_samples:?}");
        }
        other => panic!("expected ClicksDisagree, got {other}"),
    }
}

#[test]
fn hiss_close_to_the_signal_is_too_noisy() {
    let (played, returned, _) = take(ROUND_TRIP, 0, usize::MAX, 0.003);
    let problem = check_take(&played, &returned, SR, MAX_LATENCY).unwrap_err();
    assert!(matches!(problem, TakeProblem::TooNoisy { .. }), "{problem}");
}

#[test]
fn a_knob_moving_during_the_take_fails_the_replicate() {
    let (played, returned, _) = take(ROUND_TRIP, 0, usize::MAX, QUIET_NOISE);
    let n = returned.len() as f32;
    // The device's level drifts up 6 dB over the take.
    let drifting: Vec<f32> = returned
        .iter()
        .enumerate()
        .map(|(i, v)| v * 10f32.powf(6.0 * i as f32 / n / 20.0))
        .collect();
    let problem = check_take(&played, &drifting, SR, MAX_LATENCY).unwrap_err();
    assert!(matches!(problem, TakeProblem::ReplicateMismatch { .. }), "{problem}");
}

#[test]
fn host_problems_read_as_one_line() {
    for problem in [
        TakeProblem::SampleRateChanged {
            from_hz: 48_000.0,
            to_hz: 44_100.0,
        },
        TakeProblem::LayoutChanged,
        TakeProblem::Interrupted { recorded_seconds: 3.0 },
    ] {
        let text = problem.to_string();
        assert!(!text.contains('\n') && text.len() > 20, "{text}");
    }
}

#[test]
fn a_dynamics_take_through_a_compressor_passes_with_its_round_trip() {
    // The plugin's compressor take: the capture signal's clicks, then the dynamics signal,
    // through the reference compressor (hard at work: -30 dB, 8:1) and the round trip.
    use crate::reference::{CompressorSettings, ReferenceCompressor};
    // 40 s (the plugin's default length): long enough that the capture layout has a
    // replicate section, which must find no repeat in the dynamics signal.
    let played: Vec<f32> = crate::signal::dynamics_take_signal(SR, 40.0)
        .iter()
        .map(|v| 0.5 * v)
        .collect();
    assert_eq!(played.len(), 40 * SR as usize);
    let clicks = crate::signal::click_positions(SR, played.len());
    assert!(
        clicks.iter().all(|&c| played[c] > 0.4),
        "the intro's clicks are in place"
    );
    let settings = CompressorSettings {
        threshold_db: -30.0,
        ratio: 8.0,
        ..CompressorSettings::default()
    };
    let mut compressor = ReferenceCompressor::new(SR as f32, settings);
    let mut wet = vec![0.0; played.len()];
    compressor.process(&played, &mut wet);
    let mut returned = noise(played.len() + MAX_LATENCY, QUIET_NOISE, 5);
    for (i, y) in wet.iter().enumerate() {
        returned[i + ROUND_TRIP] += y;
    }
    let report = check_take(&played, &returned, SR, MAX_LATENCY).expect("a good take");
    assert_eq!(report.latency_samples, ROUND_TRIP as i64, "{report:?}");
    assert!(report.replicate_esr.is_none(), "the dynamics signal holds no replicate");
}
