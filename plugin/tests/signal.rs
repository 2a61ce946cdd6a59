//! The signal path's arithmetic without a model: gains, mix, smoothing, bypass crossfade, the
//! model-input limit and the capture-return meter. Test thread stands in for the audio thread.

mod common;

use std::sync::atomic::Ordering;

use common::{rig, test_signal};
use doppel::dsp::{Controls, Processor, MODEL_INPUT_LIMIT};

const SAMPLE_RATE_HZ: f32 = 48_000.0;

fn db(gain_db: f32) -> f32 {
    10f32.powf(gain_db / 20.0)
}

/// Processes a mono `input` in blocks of `block` with fixed `controls`.
fn process(processor: &mut Processor, input: &[f32], block: usize, controls: &Controls) -> Vec<f32> {
    let mut samples = input.to_vec();
    for chunk in samples.chunks_mut(block) {
        processor.process(&mut [chunk], controls);
    }
    samples
}

fn prepared(controls: &Controls) -> Processor {
    let (_hub, mut processor, _meters) = rig();
    processor.prepare(SAMPLE_RATE_HZ, controls);
    processor
}

#[test]
fn unity_settings_pass_audio_bit_exact() {
    let controls = Controls::default();
    let input = test_signal(1000, 1);
    for block in [1, 17, 64, 1000] {
        let output = process(&mut prepared(&controls), &input, block, &controls);
        assert_eq!(output, input, "block {block}");
    }
}

#[test]
fn gains_and_mix_follow_the_documented_flow() {
    let input = test_signal(2000, 2);
    // y = out_gain * ((1 - mix) * x + mix * in_gain * x), no model, no latency.
    for (in_db, out_db, mix) in [(6.0, 0.0, 1.0), (0.0, -12.0, 1.0), (12.0, 0.0, 0.0), (6.0, -6.0, 0.25)] {
        let controls = Controls {
            input_gain_db: in_db,
            output_gain_db: out_db,
            mix,
            ..Controls::default()
        };
        let output = process(&mut prepared(&controls), &input, 64, &controls);
        let factor = db(out_db) * ((1.0 - mix) + mix * db(in_db));
        for (x, y) in input.iter().zip(&output) {
            assert!(
                (y - x * factor).abs() <= 1e-5,
                "in {in_db} dB, out {out_db} dB, mix {mix}: {y} vs {}",
                x * factor
            );
        }
    }
}

#[test]
fn gain_changes_ramp_instead_of_jumping() {
    let start = Controls::default();
    let mut processor = prepared(&start);
    let ones = vec![1.0f32; 4800];
    let target = Controls {
        output_gain_db: -12.0,
        ..start
    };
    let output = process(&mut processor, &ones, 64, &target);
    // 30 ms of smoothing at 48 kHz: 1440 samples, monotonic from 1 down to -12 dB.
    assert!(output[0] < 1.0 && output[0] > 0.99, "first sample {}", output[0]);
    assert!(output.windows(2).all(|w| w[1] <= w[0] + 1e-7), "not monotonic");
    assert!(
        (output[720] - db(-6.0)).abs() < 0.01,
        "halfway (log ramp) {}",
        output[720]
    );
    for y in &output[1440..] {
        assert!((y - db(-12.0)).abs() < 1e-5, "settled at {y}");
    }
}

#[test]
fn bypass_crossfades_to_the_dry_input() {
    let start = Controls {
        input_gain_db: 12.0,
        ..Controls::default()
    };
    let mut processor = prepared(&start);
    let ones = vec![1.0f32; 2000];
    let output = process(&mut processor, &ones, 17, &Controls { bypass: true, ..start });
    let wet = db(12.0);
    // 10 ms fade = 480 samples, linear from wet to dry.
    assert!((output[0] - wet).abs() < 0.02 * wet, "starts wet: {}", output[0]);
    assert!(
        (output[239] - (wet + 1.0) / 2.0).abs() < 0.02 * wet,
        "midway: {}",
        output[239]
    );
    for y in &output[480..] {
        assert_eq!(*y, 1.0, "fully bypassed output is the input");
    }
    let back = process(&mut processor, &ones, 17, &start);
    assert!(
        back[0] < 1.1 && back[479] > wet * 0.99,
        "fades back: {} .. {}",
        back[0],
        back[479]
    );
}

#[test]
fn model_input_is_limited_and_silence_stays_silent() {
    let controls = Controls::default();
    let mut processor = prepared(&controls);
    let output = process(&mut processor, &[100.0, -100.0, 0.5], 64, &controls);
    assert_eq!(output, [MODEL_INPUT_LIMIT, -MODEL_INPUT_LIMIT, 0.5]);
    let silence = process(&mut processor, &[0.0; 300], 64, &controls);
    assert!(silence.iter().all(|x| *x == 0.0));
    // A dry path is not limited: mix 0 passes the loud input unchanged.
    let dry = Controls { mix: 0.0, ..controls };
    let mut processor = prepared(&dry);
    assert_eq!(process(&mut processor, &[100.0], 64, &dry), [100.0]);
}

#[test]
fn meters_report_peaks_including_the_capture_return() {
    let (_hub, mut processor, meters) = rig();
    processor.observe_capture_return(&[vec![0.0f32, -0.25, 0.5], vec![0.1, f32::NAN, 0.0]]);
    let controls = Controls {
        output_gain_db: -6.0,
        ..Controls::default()
    };
    processor.prepare(SAMPLE_RATE_HZ, &controls);
    process(&mut processor, &[0.0, 0.8, -0.4], 64, &controls);
    assert_eq!(meters.capture_return_peak.load(Ordering::Relaxed), 0.5);
    assert_eq!(meters.input_peak.load(Ordering::Relaxed), 0.8);
    assert!((meters.output_peak.load(Ordering::Relaxed) - 0.8 * db(-6.0)).abs() < 1e-6);
    assert_eq!(doppel::dsp::Meters::take(&meters.input_peak), 0.8);
    assert_eq!(meters.input_peak.load(Ordering::Relaxed), 0.0, "taking clears the peak");
}
