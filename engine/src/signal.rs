//! The profiling signal played through a device to capture it, and held-out guitar
//! phrases to evaluate a trained model. Generated offline (CLI, trainer, tests; any thread).
//!
//! Both are deterministic: the capture signal depends only on sample rate and length, a
//! test phrase only on sample rate, length and seed.
//!
//! # Capture signal layout
//! For a length of `seconds`, sections follow in this order (see [`capture_layout`]); the
//! fractions apply to what remains after the intro, and every section ends in a short gap
//! of silence:
//! 1. **Intro** (min(1.5 s, 15 %)): silence for a third, then three single-sample clicks at
//!    0.9 spaced evenly (sharp broadband latency markers, one after the silence).
//! 2. **Sweeps** (6 %): four exponential sine sweeps 20 Hz to min(20 kHz, 0.45·rate) at
//!    -30, -18, -9 and -1 dBFS.
//! 3. **Noise** (14 %): six bursts of 60 Hz - 8 kHz noise peaking at -30, -24, -18, -12, -6
//!    and 0 dBFS (0 dBFS = the 0.9 peak).
//! 4. **Dynamics** (14 %): 60 % enveloped bursts (noise or harmonic tones; attacks 1-80 ms,
//!    decays 50-800 ms, -30..-1 dBFS), then 40 % a chord-like tone ramping -40 dB to -1 dB
//!    and back.
//! 5. **Plucks** (the rest, about 62 %): played phrases of Karplus-Strong strings, each a few
//!    bars at its own tempo through a pickup-like resonant lowpass: lead lines, strummed
//!    chords, palm-muted chugs, bass lines from E1, arpeggios and bends with vibrato, at five
//!    phrase levels (-20..-2 dBFS peak). Like a DI track, most of it sits between -40 and
//!    -12 dBFS ([`phrases`]).
//! 6. **Replicate** (min(3 s, 4 %)): the loudest stretch of the plucks again, sample for sample.
//!    A device that is time-invariant answers it as it answered the first time; a difference
//!    (NAM's replicate check, [`replicate_ranges`]) means noise, a time-based effect or a knob
//!    moved during the capture.
//!
//! Peaks never exceed [`PEAK_LIMIT`].

mod dynamics;
mod phrases;
mod synth;

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dsp::db_to_gain;
pub use dynamics::{dynamics_signal, dynamics_signal_stereo, DEFAULT_DYNAMICS_SECONDS};
pub use synth::midi_to_hz;
use synth::{apply_fades, band_noise, log_sweep, mix_into, normalize_peak, pluck, strum, PluckStyle};

/// Length of the capture signal the demo and CLI use by default, in seconds.
pub const DEFAULT_CAPTURE_SECONDS: f32 = 180.0;
/// Highest sample magnitude in the generated signals.
pub const PEAK_LIMIT: f32 = 0.9;
/// Seed of the capture signal's random generator (fixed: the signal is a constant).
const CAPTURE_SEED: u64 = 0xD0_99E1;
/// Random stream used by test phrases (the capture uses stream 0), so they never share noise.
const TEST_PHRASE_STREAM: u64 = 7;

/// The sections of the capture signal, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureSection {
    /// Silence then clicks.
    Intro,
    /// Exponential sine sweeps at several levels.
    Sweeps,
    /// Band-limited noise bursts at several levels.
    Noise,
    /// Enveloped bursts and level ramps.
    Dynamics,
    /// Plucked notes, chords and palm mutes.
    Plucks,
    /// A repeat of the plucks' loudest stretch.
    Replicate,
}

/// Where each section of a `seconds`-long capture signal lies, in samples.
pub fn capture_layout(sample_rate: u32, seconds: f32) -> Vec<(CaptureSection, Range<usize>)> {
    let total = (seconds.max(0.0) * sample_rate as f32).round() as usize;
    layout_of(sample_rate, total)
}

/// [`capture_layout`] for a signal `total` samples long.
fn layout_of(sample_rate: u32, total: usize) -> Vec<(CaptureSection, Range<usize>)> {
    // 1.5 s spaces the clicks a third of a second apart, more than the longest round trip
    // searched (0.25 s), so no click's answer can pass for another's.
    let intro = ((1.5 * sample_rate as f32) as usize).min(total * 15 / 100);
    let rest = total - intro;
    let shares = [
        (CaptureSection::Sweeps, 6),
        (CaptureSection::Noise, 14),
        (CaptureSection::Dynamics, 14),
    ];
    let mut layout = vec![(CaptureSection::Intro, 0..intro)];
    let mut start = intro;
    for (section, percent) in shares {
        let length = rest * percent / 100;
        layout.push((section, start..start + length));
        start += length;
    }
    let replicate = ((3.0 * sample_rate as f32) as usize).min(rest * 4 / 100);
    // Too short to check anything: the plucks keep the time.
    let replicate = if (replicate as f32) < MIN_REPLICATE_SECONDS * sample_rate as f32 / 0.97 {
        0
    } else {
        replicate
    };
    layout.push((CaptureSection::Plucks, start..total - replicate));
    layout.push((CaptureSection::Replicate, total - replicate..total));
    layout
}

/// Samples of silence that end a section `length` long.
fn section_gap(sample_rate: f32, length: usize) -> usize {
    ((0.25 * sample_rate) as usize).min(length * 3 / 100)
}

/// Shortest replicate worth checking, in seconds.
const MIN_REPLICATE_SECONDS: f32 = 0.5;
/// Samples at the start of the repeat that [`replicate_ranges`] looks for in the plucks.
const REPLICATE_PROBE_SAMPLES: usize = 1024;

/// The replicate's sounding part (its trailing silence left out) and the plucks it copies
/// from, for a signal `total` samples long; `None` when too short to be worth checking.
fn replicate_layout(sample_rate: u32, total: usize) -> Option<(Range<usize>, Range<usize>)> {
    let layout = layout_of(sample_rate, total);
    let plucks = layout.iter().find(|(s, _)| *s == CaptureSection::Plucks)?.1.clone();
    let repeat = layout.iter().find(|(s, _)| *s == CaptureSection::Replicate)?.1.clone();
    let length = repeat.len() - section_gap(sample_rate as f32, repeat.len());
    let plucks_sounding = plucks.start..plucks.end - section_gap(sample_rate as f32, plucks.len());
    if (length as f32) < MIN_REPLICATE_SECONDS * sample_rate as f32 || length > plucks_sounding.len() {
        return None;
    }
    Some((repeat.start..repeat.start + length, plucks_sounding))
}

/// For Doppel's capture signal (`signal`, at `sample_rate`), the two stretches that hold the
/// same audio: `(original, repeat)`. `None` when the signal is too short to hold a replicate
/// worth checking, or is not the capture signal (nothing in its plucks matches the repeat).
pub fn replicate_ranges(sample_rate: u32, signal: &[f32]) -> Option<(Range<usize>, Range<usize>)> {
    let (repeat, plucks) = replicate_layout(sample_rate, signal.len())?;
    let probe = &signal[repeat.start..repeat.start + REPLICATE_PROBE_SAMPLES.min(repeat.len())];
    if probe.iter().all(|v| *v == 0.0) {
        return None;
    }
    let last_start = plucks.end.checked_sub(repeat.len())?;
    let start = (plucks.start..=last_start).find(|&o| signal[o..o + probe.len()] == *probe)?;
    Some((start..start + repeat.len(), repeat))
}

/// The noise bursts of Doppel's capture signal (`signal`, at `sample_rate`): band noise at six
/// levels, input close enough to Gaussian that a linear fit tells a device's pre-ringing from
/// its distortion ([`crate::align::pre_ring_samples`]). `None` when `signal` is not the
/// capture signal (it holds no replicate of its plucks).
pub fn noise_range(sample_rate: u32, signal: &[f32]) -> Option<Range<usize>> {
    replicate_ranges(sample_rate, signal)?;
    layout_of(sample_rate, signal.len())
        .into_iter()
        .find(|(section, _)| *section == CaptureSection::Noise)
        .map(|(_, range)| range)
}

/// Copies the loudest (by RMS) stretch of the plucks, on half-second steps, into the
/// replicate: every pluck dynamic up to the loudest is in it.
fn fill_replicate(sample_rate: u32, signal: &mut [f32]) {
    let Some((repeat, plucks)) = replicate_layout(sample_rate, signal.len()) else {
        return;
    };
    let step = (sample_rate / 2).max(1) as usize;
    let energy = |start: usize| signal[start..start + repeat.len()].iter().map(|v| v * v).sum::<f32>();
    let mut best = (plucks.start, f32::NEG_INFINITY);
    let mut start = plucks.start;
    while start + repeat.len() <= plucks.end {
        let e = energy(start);
        if e > best.1 {
            best = (start, e);
        }
        start += step;
    }
    signal.copy_within(best.0..best.0 + repeat.len(), repeat.start);
}

/// The deterministic profiling signal, exactly `round(seconds · sample_rate)` samples long
/// (layout in the module docs).
pub fn capture_signal(sample_rate: u32, seconds: f32) -> Vec<f32> {
    let sr = sample_rate as f32;
    let layout = capture_layout(sample_rate, seconds);
    let mut out = vec![0.0f32; layout.last().map_or(0, |(_, r)| r.end)];
    let mut rng = ChaCha8Rng::seed_from_u64(CAPTURE_SEED);
    for (section, range) in layout {
        let slice = &mut out[range];
        let gap = section_gap(sr, slice.len());
        let body_len = slice.len() - gap;
        let body = &mut slice[..body_len];
        match section {
            CaptureSection::Intro => intro(body),
            CaptureSection::Sweeps => sweeps(sr, body),
            CaptureSection::Noise => noise_bursts(sr, body, &mut rng),
            CaptureSection::Dynamics => dynamics(sr, body, &mut rng),
            CaptureSection::Plucks => plucks(sr, body, &mut rng),
            // Copied from the plucks below, once they exist.
            CaptureSection::Replicate => {}
        }
    }
    fill_replicate(sample_rate, &mut out);
    limit(&mut out);
    out
}

/// The dynamics signal as a take in the plugin plays it, `round(seconds · sample_rate)`
/// samples: the capture signal's intro (the same clicks at the same places, so a take is
/// checked and its round trip found the same way), then [`dynamics_signal`] for the rest.
pub fn dynamics_take_signal(sample_rate: u32, seconds: f32) -> Vec<f32> {
    let total = (seconds.max(0.0) * sample_rate as f32).round() as usize;
    let mut out = vec![0.0f32; total];
    let intro = layout_of(sample_rate, total)[0].1.clone();
    let body = intro.len() - section_gap(sample_rate as f32, intro.len());
    self::intro(&mut out[intro.start..intro.start + body]);
    let rest = (total - intro.end) as f32 / sample_rate as f32;
    let dynamics = dynamics_signal(sample_rate, rest);
    let end = (intro.end + dynamics.len()).min(total);
    out[intro.end..end].copy_from_slice(&dynamics[..end - intro.end]);
    out
}

/// Scales down (never up) so the peak is at most [`PEAK_LIMIT`].
fn limit(signal: &mut [f32]) {
    let peak = signal.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if peak > PEAK_LIMIT {
        normalize_peak(signal, PEAK_LIMIT);
    }
}

/// Offsets of the intro's clicks in an intro body `body_len` samples long: silence for a
/// third, then three clicks spaced evenly.
fn click_offsets(body_len: usize) -> impl Iterator<Item = usize> {
    let silence = body_len / 3;
    let spacing = (body_len - silence) / 3;
    (0..3)
        .map(move |k| silence + k * spacing)
        .filter(move |&i| i < body_len)
}

/// Where the intro's single-sample clicks lie in a capture signal `total` samples long (the
/// round-trip latency markers), in order.
pub fn click_positions(sample_rate: u32, total: usize) -> Vec<usize> {
    let layout = layout_of(sample_rate, total);
    let intro = layout[0].1.clone();
    let body_len = intro.len() - section_gap(sample_rate as f32, intro.len());
    click_offsets(body_len).map(|i| intro.start + i).collect()
}

fn intro(body: &mut [f32]) {
    for i in click_offsets(body.len()).collect::<Vec<_>>() {
        body[i] = PEAK_LIMIT;
    }
}

fn sweeps(sr: f32, body: &mut [f32]) {
    let levels_db = [-30.0, -18.0, -9.0, -1.0];
    let part = body.len() / levels_db.len();
    let gap = ((0.1 * sr) as usize).min(part / 10);
    for (k, level_db) in levels_db.into_iter().enumerate() {
        let sweep = log_sweep(sr, 20.0, (0.45 * sr).min(20_000.0), part - gap, level_db);
        mix_into(body, k * part, &sweep);
    }
}

fn noise_bursts(sr: f32, body: &mut [f32], rng: &mut ChaCha8Rng) {
    let levels_db = [-30.0, -24.0, -18.0, -12.0, -6.0, 0.0];
    let part = body.len() / levels_db.len();
    let gap = ((0.1 * sr) as usize).min(part / 10);
    for (k, level_db) in levels_db.into_iter().enumerate() {
        let level_db = level_db + 20.0 * PEAK_LIMIT.log10();
        let burst = band_noise(sr, 60.0, (0.45 * sr).min(8_000.0), part - gap, level_db, rng);
        mix_into(body, k * part, &burst);
    }
}

/// Sum of harmonics of `fundamental_hz` with 1/k amplitudes and random phases, peak 1.
fn harmonic_tone(sr: f32, fundamental_hz: f32, length: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let partials: Vec<(f32, f32)> = (1..=12)
        .map(|k| (k as f32 * fundamental_hz, rng.random_range(0.0..std::f32::consts::TAU)))
        .filter(|(f, _)| *f < 0.4 * sr)
        .collect();
    let mut tone: Vec<f32> = (0..length)
        .map(|n| {
            let t = n as f32 / sr;
            partials
                .iter()
                .enumerate()
                .map(|(k, (f, phase))| (std::f32::consts::TAU * f * t + phase).sin() / (k + 1) as f32)
                .sum()
        })
        .collect();
    normalize_peak(&mut tone, 1.0);
    tone
}

fn dynamics(sr: f32, body: &mut [f32], rng: &mut ChaCha8Rng) {
    let bursts_end = body.len() * 6 / 10;
    let mut start = 0;
    while start < bursts_end {
        let attack = (rng.random_range(0.001f32..0.08) * sr) as usize;
        let decay_seconds = rng.random_range(0.05f32..0.8);
        let length = (attack + (decay_seconds * sr) as usize).min(bursts_end - start);
        let level = db_to_gain(rng.random_range(-30.0..-1.0)) * PEAK_LIMIT;
        let mut burst = if rng.random_bool(0.5) {
            band_noise(sr, 60.0, (0.45 * sr).min(8_000.0), length, 0.0, rng)
        } else {
            harmonic_tone(sr, midi_to_hz(rng.random_range(40.0..76.0)), length, rng)
        };
        for (n, v) in burst.iter_mut().enumerate() {
            let envelope = if n < attack {
                n as f32 / attack as f32
            } else {
                // 60 dB down at the end of the decay.
                0.001f32.powf((n - attack) as f32 / (length - attack).max(1) as f32)
            };
            *v *= envelope * level;
        }
        mix_into(body, start, &burst);
        start += length + (rng.random_range(0.03f32..0.2) * sr) as usize;
    }
    let ramp = &mut body[bursts_end..];
    let tone = harmonic_tone(sr, midi_to_hz(rng.random_range(40.0..52.0)), ramp.len(), rng);
    let half = (ramp.len() / 2).max(1) as f32;
    for (n, (v, t)) in ramp.iter_mut().zip(tone).enumerate() {
        let position = 1.0 - (n as f32 - half).abs() / half;
        *v = t * db_to_gain(-40.0 + 39.0 * position) * PEAK_LIMIT;
    }
    apply_fades(ramp, (0.01 * sr) as usize);
}

/// Open and barre chord voicings (MIDI notes, low string first) for the capture.
const CAPTURE_CHORDS: [&[f32]; 6] = [
    &[40.0, 47.0, 52.0, 56.0, 59.0, 64.0],
    &[45.0, 52.0, 57.0, 61.0, 64.0],
    &[50.0, 57.0, 62.0, 66.0],
    &[43.0, 47.0, 50.0, 55.0, 59.0, 67.0],
    &[48.0, 52.0, 55.0, 60.0, 64.0],
    &[40.0, 47.0, 52.0, 55.0, 59.0, 64.0],
];

fn plucks(sr: f32, body: &mut [f32], rng: &mut ChaCha8Rng) {
    phrases::played_phrases(sr, body, rng);
    limit(body);
    apply_fades(body, (0.01 * sr) as usize);
}

/// A held-out guitar phrase of `round(seconds · sample_rate)` samples for evaluation:
/// palm-muted riffs, pentatonic lead lines, ringing and stabbed chords and rests, in a key,
/// tempo and dynamic arc drawn from `seed`. Deterministic per seed; uses its own random
/// stream, voicings and patterns, so it shares no material with [`capture_signal`].
pub fn test_phrase(sample_rate: u32, seconds: f32, seed: u64) -> Vec<f32> {
    let sr = sample_rate as f32;
    let total = (seconds.max(0.0) * sr).round() as usize;
    let mut out = vec![0.0f32; total];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(TEST_PHRASE_STREAM);
    let root = rng.random_range(40..47) as f32;
    let scale = [0.0, 3.0, 5.0, 7.0, 10.0, 12.0, 15.0, 17.0, 19.0, 22.0, 24.0];
    let beat = (60.0 / rng.random_range(84.0f32..150.0) * sr) as usize;
    let bar = 4 * beat;
    let mut start = 0usize;
    let mut bar_index = 0usize;
    while start < total {
        // A dynamic arc over eight bars plus a random accent per bar.
        let arc = (bar_index % 8) as f32 / 7.0;
        let level_db = -22.0 + 16.0 * arc + rng.random_range(-3.0..3.0);
        let brightness = 0.3 + 0.6 * arc;
        let style = PluckStyle {
            level_db,
            decay_seconds: 1.5,
            brightness,
            position: rng.random_range(0.12..0.3),
        };
        let room = total - start;
        match rng.random_range(0..5) {
            0 => {
                // Palm-muted eighths on the root, accented power chord on beat 3.
                for k in 0..8 {
                    let at = start + k * beat / 2;
                    let muted = PluckStyle {
                        decay_seconds: 0.12,
                        brightness: 0.25,
                        level_db: level_db - 4.0,
                        ..style
                    };
                    let length = (beat / 2).min(total.saturating_sub(at));
                    if k == 4 {
                        let chord = [root, root + 7.0, root + 12.0];
                        mix_into(
                            &mut out,
                            at,
                            &strum(
                                sr,
                                &chord,
                                (beat * 2).min(room),
                                (0.006 * sr) as usize,
                                true,
                                style,
                                &mut rng,
                            ),
                        );
                    } else {
                        mix_into(&mut out, at, &pluck(sr, midi_to_hz(root), length, muted, &mut rng));
                    }
                }
            }
            1 | 2 => {
                // Lead line: eighths and sixteenths from the minor pentatonic, an octave up.
                let mut at = start;
                while at < start + bar {
                    let step = if rng.random_bool(0.6) { beat / 2 } else { beat / 4 };
                    let note = root + 12.0 + scale[rng.random_range(0..scale.len())];
                    let length = (step * 2).min(total.saturating_sub(at));
                    let lead = PluckStyle {
                        level_db: level_db + rng.random_range(-4.0..0.0),
                        ..style
                    };
                    mix_into(&mut out, at, &pluck(sr, midi_to_hz(note), length, lead, &mut rng));
                    at += step;
                }
            }
            3 => {
                // Minor-seventh and sus voicings: one ringing strum, or stabs on 1 and 3.
                let voicing = if rng.random_bool(0.5) {
                    vec![root + 5.0, root + 12.0, root + 15.0, root + 19.0, root + 22.0]
                } else {
                    vec![root, root + 7.0, root + 12.0, root + 17.0, root + 19.0]
                };
                let stabs = rng.random_bool(0.5);
                for k in 0..if stabs { 2 } else { 1 } {
                    let length = if stabs { beat / 2 } else { bar }.min(total.saturating_sub(start + 2 * k * beat));
                    let decay_seconds = if stabs { 0.3 } else { 2.5 };
                    let chord = strum(
                        sr,
                        &voicing,
                        length,
                        (0.012 * sr) as usize,
                        k == 0,
                        PluckStyle { decay_seconds, ..style },
                        &mut rng,
                    );
                    mix_into(&mut out, start + 2 * k * beat, &chord);
                }
            }
            _ => {
                // Half a bar of rest, then a single low note left to ring.
                let note = root + scale[rng.random_range(0..4)];
                let length = (2 * beat).min(total.saturating_sub(start + 2 * beat));
                mix_into(
                    &mut out,
                    start + 2 * beat,
                    &pluck(sr, midi_to_hz(note), length, style, &mut rng),
                );
            }
        }
        start += bar;
        bar_index += 1;
    }
    limit(&mut out);
    apply_fades(&mut out, (0.005 * sr) as usize);
    out
}

#[cfg(test)]
mod tests;
