//! Determinism, length, peak and content checks for the generated signals.

use super::*;
use crate::metrics::sine_amplitude;

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

#[test]
fn capture_signal_is_deterministic_bounded_and_exact_length() {
    let a = capture_signal(48_000, 20.0);
    let b = capture_signal(48_000, 20.0);
    assert_eq!(a.len(), 960_000);
    assert_eq!(a, b);
    assert!(a.iter().all(|v| v.is_finite()));
    let p = peak(&a);
    assert!(p <= PEAK_LIMIT + 1e-6 && p > 0.85, "peak {p}");
    for (sr, seconds) in [(44_100, 3.3), (96_000, 1.0), (48_000, 0.01), (48_000, 0.0)] {
        let x = capture_signal(sr, seconds);
        assert_eq!(x.len(), (seconds * sr as f32).round() as usize);
        assert!(peak(&x) <= PEAK_LIMIT + 1e-6);
    }
}

#[test]
fn the_replicate_repeats_the_plucks_sample_for_sample() {
    for (sr, seconds) in [(48_000, 75.0), (44_100, 30.0), (96_000, 20.0)] {
        let x = capture_signal(sr, seconds);
        let (original, repeat) = replicate_ranges(sr, &x).expect("long enough for a replicate");
        assert!(repeat.start > original.end, "the repeat comes later");
        assert!(repeat.len() as f32 >= 0.5 * sr as f32);
        assert_eq!(&x[original.clone()], &x[repeat.clone()]);
        assert!(rms(&x[repeat.clone()]) > 0.01, "the repeat holds sound");
        if seconds >= 75.0 {
            // Three seconds of the loudest plucks.
            assert!(
                peak(&x[repeat.clone()]) > 0.5,
                "the repeat reaches loud notes: peak {}",
                peak(&x[repeat])
            );
        }
    }
    assert!(
        replicate_ranges(48_000, &capture_signal(48_000, 1.0)).is_none(),
        "a 1 s signal has none worth checking"
    );
    let phrase = test_phrase(48_000, 75.0, 3);
    assert!(
        replicate_ranges(48_000, &phrase).is_none(),
        "other audio has no replicate"
    );
}

#[test]
fn capture_sections_have_their_content() {
    let sr = 48_000;
    let x = capture_signal(sr, 30.0);
    let layout = capture_layout(sr, 30.0);
    assert_eq!(layout.len(), 6);
    assert_eq!(layout.last().unwrap().1.end, x.len());
    for (section, range) in layout {
        let part = &x[range.clone()];
        match section {
            CaptureSection::Intro => {
                // Silence then exactly three clicks at the peak limit.
                let clicks: Vec<usize> = part
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0.0)
                    .map(|(i, _)| i)
                    .collect();
                assert_eq!(clicks.len(), 3, "{clicks:?}");
                assert!(clicks[0] >= part.len() / 4 && part[clicks[0]] == PEAK_LIMIT);
            }
            CaptureSection::Sweeps => {
                // Four sweeps from -30 to -1 dBFS (windows inside the first and last).
                let ratio = peak(&part[3 * part.len() / 4..]) / peak(&part[..part.len() / 5]);
                assert!((20.0 * ratio.log10() - 29.0).abs() < 0.1, "ratio {ratio}");
            }
            CaptureSection::Noise => {
                // Bursts peaking at -30 and 0 dBFS (windows inside the first and last).
                let (quiet, loud) = (peak(&part[..part.len() / 8]), peak(&part[5 * part.len() / 6..]));
                let expected_quiet = 0.9 * 10f32.powf(-1.5);
                assert!(
                    quiet <= expected_quiet + 1e-5 && quiet > 0.6 * expected_quiet,
                    "quietest burst peak {quiet}"
                );
                assert!((loud - 0.9).abs() < 1e-3, "loudest burst peak {loud}");
            }
            CaptureSection::Dynamics | CaptureSection::Plucks => {
                assert!(rms(part) > 0.01, "{section:?} rms {}", rms(part));
                assert!(peak(part) > 0.3, "{section:?} peak {}", peak(part));
            }
            // The plucks' loudest stretch again.
            CaptureSection::Replicate => assert!(rms(part) > 0.01, "replicate rms {}", rms(part)),
        }
    }
}

#[test]
fn plucks_are_pitched_at_their_note() {
    let sr = 48_000.0;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let style = PluckStyle {
        level_db: -6.0,
        decay_seconds: 2.0,
        brightness: 0.5,
        position: 0.2,
    };
    let a2 = pluck(sr, 110.0, 24_000, style, &mut rng);
    assert!((peak(&a2) - db_to_gain(-6.0)).abs() < 1e-4);
    // The fundamental dominates a semitone away on either side.
    let on = sine_amplitude(&a2[2_400..], sr, 110.0);
    let off = sine_amplitude(&a2[2_400..], sr, 116.5).max(sine_amplitude(&a2[2_400..], sr, 103.8));
    assert!(on > 4.0 * off, "on {on}, off {off}");
}

#[test]
fn test_phrase_is_deterministic_per_seed_and_unlike_the_capture() {
    let sr = 48_000;
    let a = test_phrase(sr, 8.0, 1);
    assert_eq!(a, test_phrase(sr, 8.0, 1));
    assert_eq!(a.len(), 384_000);
    let b = test_phrase(sr, 8.0, 2);
    assert_ne!(a, b);
    assert!(
        peak(&a) <= PEAK_LIMIT + 1e-6 && rms(&a) > 0.01,
        "peak {}, rms {}",
        peak(&a),
        rms(&a)
    );
    // No stretch of the phrase matches the capture: normalised correlation at zero lag
    // over the whole capture length and over its plucked section stays small.
    let capture = capture_signal(sr, 8.0);
    let correlation = |x: &[f32], y: &[f32]| {
        let dot: f32 = x.iter().zip(y).map(|(a, b)| a * b).sum();
        dot / (rms(x) * rms(y) * x.len().min(y.len()) as f32)
    };
    assert!(correlation(&a, &capture).abs() < 0.05);
    let (_, plucks) = capture_layout(sr, 8.0)
        .into_iter()
        .find(|(s, _)| *s == CaptureSection::Plucks)
        .unwrap();
    assert!(correlation(&a[plucks.clone()], &capture[plucks]).abs() < 0.05);
    assert!(test_phrase(sr, 0.0, 1).is_empty());
}

/// Share of the 50 ms windows of `x` whose RMS lies in `low_db..high_db` (dBFS).
fn window_share(sr: u32, x: &[f32], low_db: f32, high_db: f32) -> f32 {
    let windows: Vec<f32> = x
        .chunks_exact(sr as usize / 20)
        .map(|w| 20.0 * rms(w).max(1e-9).log10())
        .collect();
    windows.iter().filter(|db| (low_db..high_db).contains(*db)).count() as f32 / windows.len() as f32
}

#[test]
fn the_played_section_spends_its_time_at_playing_levels() {
    // A DI track sits mostly between -40 and -12 dBFS (50 ms windows); isolated plucks left to
    // ring out spent half their time below -40 dBFS, where a model learns nothing.
    let sr = 48_000;
    let x = capture_signal(sr, DEFAULT_CAPTURE_SECONDS);
    let (_, plucks) = capture_layout(sr, DEFAULT_CAPTURE_SECONDS)
        .into_iter()
        .find(|(s, _)| *s == CaptureSection::Plucks)
        .unwrap();
    let part = &x[plucks];
    let playing = window_share(sr, part, -40.0, -12.0);
    let quiet = window_share(sr, part, -200.0, -40.0);
    // Isolated plucks had 0.44 of their windows at playing level and 0.56 below it; DI take A
    // of the held-out yardstick has 0.78 and 0.22.
    assert!(playing > 0.55, "{playing} of the windows at playing level");
    assert!(quiet < 0.4, "{quiet} of the windows below -40 dBFS");
    // Loud enough somewhere to drive a device hard.
    assert!(peak(part) > 0.7, "peak {}", peak(part));
}

#[test]
fn a_bent_pluck_sounds_at_its_bent_pitch() {
    let sr = 48_000.0;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let style = PluckStyle {
        level_db: -6.0,
        decay_seconds: 3.0,
        brightness: 0.5,
        position: 0.2,
    };
    // Bent up a whole step after 0.1 s and held.
    let bent = synth::bent_pluck(
        sr,
        220.0,
        48_000,
        style,
        &mut rng,
        |n| if n < 4_800 { 0.0 } else { 2.0 },
    );
    let held = &bent[9_600..];
    let target = sine_amplitude(held, sr, 246.94);
    let unbent = sine_amplitude(held, sr, 220.0);
    assert!(
        target > 4.0 * unbent,
        "at the bent pitch {target}, at the open pitch {unbent}"
    );
}
