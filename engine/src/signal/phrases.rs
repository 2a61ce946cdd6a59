//! The played section of the capture signal: Karplus-Strong guitar and bass phrases with a
//! player's tempo, note density and level spread, each through a pickup-like resonant
//! lowpass. Offline (any thread, allocates).
//!
//! Why phrases and not isolated plucks: a DI track spends most of its time with several
//! strings sounding at moderate level (50 ms windows mostly between -40 and -15 dBFS), and a
//! model fits what it is shown. Isolated plucks left to decay spent half their time below
//! -40 dBFS, and a model trained on the signal they were part of scored 3-8x worse on real
//! guitar than one trained on the same length of real playing (bench/heldout/ablate.sh).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::synth::{bent_pluck, midi_to_hz, mix_into, normalize_peak, pluck, strum, PluckStyle};
use super::CAPTURE_CHORDS;
use crate::dsp::Biquad;

/// Playing styles, taken in turn so every stretch of the section holds all of them.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// Single-note lines in eighths and sixteenths, notes left to ring into the next.
    Lead,
    /// Strummed chords in a rhythm, each strum cut by the next.
    Strum,
    /// Palm-muted low chugs with power-chord accents.
    Chug,
    /// Bass-guitar lines from E1 up.
    Bass,
    /// Chord tones picked one by one, ringing over each other.
    Arpeggio,
    /// Held notes bent up and released, some with vibrato.
    Bend,
}

const STYLES: [Style; 6] = [
    Style::Lead,
    Style::Strum,
    Style::Chug,
    Style::Bass,
    Style::Arpeggio,
    Style::Bend,
];
/// Peak level of a phrase's notes, in dBFS, taken in turn (a prime count against the six
/// styles, so each style meets each level).
const PHRASE_LEVELS_DB: [f32; 5] = [-20.0, -14.0, -10.0, -6.0, -2.0];
/// Scale degrees (minor pentatonic over two octaves) of the lines.
const PENTATONIC: [f32; 11] = [0.0, 3.0, 5.0, 7.0, 10.0, 12.0, 15.0, 17.0, 19.0, 22.0, 24.0];

/// Fills `body` with phrases, one after another with short rests between them.
pub(super) fn played_phrases(sr: f32, body: &mut [f32], rng: &mut ChaCha8Rng) {
    let mut start = 0usize;
    let mut index = 0usize;
    while start < body.len() {
        let style = STYLES[index % STYLES.len()];
        let level_db = PHRASE_LEVELS_DB[index % PHRASE_LEVELS_DB.len()] + rng.random_range(-2.0..1.0);
        let bpm = rng.random_range(80.0f32..160.0);
        let beat = (60.0 / bpm * sr) as usize;
        let bars = rng.random_range(1..3usize);
        let length = (bars * 4 * beat).min(body.len() - start);
        // Notes ring half a second past the phrase, under the next one.
        let mut phrase = vec![0.0f32; length + (0.5 * sr) as usize];
        play(sr, style, level_db, beat, length, &mut phrase, rng);
        pickup(sr, style, &mut phrase, rng);
        mix_into(body, start, &phrase);
        let rest_seconds = if rng.random_bool(0.1) {
            rng.random_range(0.4f32..0.8)
        } else {
            rng.random_range(0.0f32..0.25)
        };
        start += length + (rest_seconds * sr) as usize;
        index += 1;
    }
}

/// A string's pluck style for a note at `level_db`: louder is brighter.
fn style_at(level_db: f32, decay_seconds: f32, rng: &mut ChaCha8Rng) -> PluckStyle {
    PluckStyle {
        level_db,
        decay_seconds,
        brightness: (0.25 + 0.7 * (level_db + 28.0) / 25.0 + rng.random_range(-0.1..0.1)).clamp(0.05, 1.0),
        position: rng.random_range(0.1..0.35),
    }
}

/// Writes one phrase of `style`, `length` samples of playing (notes may ring past it).
fn play(sr: f32, style: Style, level_db: f32, beat: usize, length: usize, out: &mut [f32], rng: &mut ChaCha8Rng) {
    let root = rng.random_range(40..52) as f32;
    let total = out.len();
    let room = move |at: usize, want: usize| want.min(total.saturating_sub(at));
    match style {
        Style::Lead => {
            let mut at = 0;
            while at < length {
                let step = if rng.random_bool(0.55) { beat / 2 } else { beat / 4 };
                let note = root + 12.0 + PENTATONIC[rng.random_range(0..PENTATONIC.len())];
                let ring = step * rng.random_range(1..4);
                let accent = if rng.random_bool(0.25) { 0.0 } else { -4.0 };
                let s = style_at(level_db + accent + rng.random_range(-2.0..0.0), 1.5, rng);
                let tone = pluck(sr, midi_to_hz(note), room(at, ring), s, rng);
                mix_into(out, at, &tone);
                at += step;
            }
        }
        Style::Strum => {
            let pattern = [1u8, 0, 1, 2, 0, 2, 1, 2];
            let mut at = 0;
            let mut slot = 0;
            while at < length {
                let kind = pattern[slot % pattern.len()];
                let next = (1..pattern.len())
                    .find(|k| pattern[(slot + k) % pattern.len()] != 0)
                    .unwrap_or(1);
                if kind != 0 {
                    let chord = CAPTURE_CHORDS[(slot / 8 + root as usize) % CAPTURE_CHORDS.len()];
                    let down = kind == 1;
                    // Upstrokes catch the top strings, a little softer.
                    let notes = if down {
                        chord
                    } else {
                        &chord[chord.len().saturating_sub(4)..]
                    };
                    let s = style_at(level_db - if down { 0.0 } else { 3.0 }, 2.0, rng);
                    let duration = room(at, next * beat / 2 + (0.01 * sr) as usize);
                    let strum_samples = (rng.random_range(0.006f32..0.02) * sr) as usize;
                    mix_into(out, at, &strum(sr, notes, duration, strum_samples, down, s, rng));
                }
                at += beat / 2;
                slot += 1;
            }
        }
        Style::Chug => {
            let low = rng.random_range(38..46) as f32;
            let step = if rng.random_bool(0.7) { beat / 4 } else { beat / 2 };
            let mut at = 0;
            let mut k = 0;
            while at < length {
                if k % 6 == 5 {
                    let s = style_at(level_db, 0.6, rng);
                    let chord = [low, low + 7.0, low + 12.0];
                    mix_into(
                        out,
                        at,
                        &strum(sr, &chord, room(at, 2 * step), (0.005 * sr) as usize, true, s, rng),
                    );
                } else {
                    // The palm damps the string over a few tenths of a second; the next pick cuts it.
                    let mut s = style_at(level_db - 4.0, rng.random_range(0.2..0.5), rng);
                    s.brightness *= 0.4;
                    mix_into(out, at, &pluck(sr, midi_to_hz(low), room(at, step + step / 4), s, rng));
                }
                at += step;
                k += 1;
            }
        }
        Style::Bass => {
            let low = rng.random_range(28..36) as f32;
            let shape = [0.0, 0.0, 7.0, 12.0, 0.0, 7.0, 10.0, 5.0];
            let mut at = 0;
            let mut k = 0;
            while at < length {
                let step = if rng.random_bool(0.7) { beat / 2 } else { beat };
                let mut s = style_at(level_db + rng.random_range(-3.0..0.0), rng.random_range(1.5..3.0), rng);
                s.brightness *= 0.5;
                // Legato: each note sounds until the next, staccato now and then.
                let duration = if rng.random_bool(0.25) {
                    step / 2
                } else {
                    step + step / 8
                };
                let note = low + shape[k % shape.len()] + if k % 16 >= 8 { 5.0 } else { 0.0 };
                mix_into(out, at, &pluck(sr, midi_to_hz(note), room(at, duration), s, rng));
                at += step;
                k += 1;
            }
        }
        Style::Arpeggio => {
            let chord = CAPTURE_CHORDS[rng.random_range(0..CAPTURE_CHORDS.len())];
            let order = [0usize, 2, 1, 3, 2, 4, 3, 5];
            let mut at = 0;
            let mut k = 0;
            while at < length {
                let note = chord[order[k % order.len()] % chord.len()];
                let s = style_at(level_db + rng.random_range(-3.0..0.0), 2.5, rng);
                mix_into(out, at, &pluck(sr, midi_to_hz(note), room(at, 3 * beat), s, rng));
                at += beat / 2;
                k += 1;
            }
        }
        Style::Bend => {
            let mut at = 0;
            while at < length {
                let note = root + 12.0 + PENTATONIC[rng.random_range(2..9)];
                let up = if rng.random_bool(0.6) { 2.0f32 } else { 1.0 };
                let rise = (rng.random_range(0.08f32..0.25) * sr) as usize;
                let hold = 2 * beat;
                let vibrato = rng.random_bool(0.5);
                let rate_hz = rng.random_range(4.5f32..6.5);
                let curve = move |n: usize| {
                    if n < rise / 2 {
                        0.0
                    } else if n < rise / 2 + rise {
                        up * (n - rise / 2) as f32 / rise as f32
                    } else if n < hold {
                        let wobble = if vibrato {
                            0.3 * (std::f32::consts::TAU * rate_hz * (n - rise) as f32 / sr).sin().abs()
                        } else {
                            0.0
                        };
                        up - wobble
                    } else {
                        // Released over a quarter beat.
                        (up * (1.0 - (n - hold) as f32 / (beat / 4).max(1) as f32)).max(0.0)
                    }
                };
                // Bends are played out: at least moderately loud.
                let s = style_at(level_db.max(-14.0) + rng.random_range(-2.0..0.0), 3.5, rng);
                let tone = bent_pluck(sr, midi_to_hz(note), room(at, hold + beat / 2), s, rng, curve);
                mix_into(out, at, &tone);
                at += hold + beat / 2;
            }
        }
    }
}

/// The pickup and cable: a resonant lowpass a little different for each phrase (single
/// coils bright and peaky, humbuckers darker, bass pickups lower).
fn pickup(sr: f32, style: Style, phrase: &mut [f32], rng: &mut ChaCha8Rng) {
    let (low_hz, high_hz): (f32, f32) = match style {
        Style::Bass => (500.0, 1_200.0),
        _ => (2_500.0, 6_000.0),
    };
    let cutoff_hz = rng.random_range(low_hz..high_hz).min(0.4 * sr);
    let mut filter = Biquad::lowpass(sr, cutoff_hz, rng.random_range(0.8..2.5));
    // The resonance lifts the peak: keep the phrase at the level it was played at.
    let before = phrase.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    phrase.iter_mut().for_each(|v| *v = filter.process_sample(*v));
    normalize_peak(phrase, before);
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// RMS below 60 Hz (fourth-order low-pass) over the whole RMS.
    fn share_below_60_hz(sr: f32, x: &[f32]) -> f32 {
        let mut filters = [Biquad::lowpass(sr, 60.0, 0.54), Biquad::lowpass(sr, 60.0, 1.31)];
        let low: Vec<f32> = x
            .iter()
            .map(|v| filters.iter_mut().fold(*v, |s, f| f.process_sample(s)))
            .collect();
        let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        rms(&low) / rms(x)
    }

    /// Four bars of `style` at 120 BPM through its pickup.
    fn phrase(sr: f32, style: Style, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let beat = (0.5 * sr) as usize;
        let mut out = vec![0.0f32; 16 * beat + (0.5 * sr) as usize];
        play(sr, style, -10.0, beat, 16 * beat, &mut out, &mut rng);
        pickup(sr, style, &mut out, &mut rng);
        out
    }

    #[test]
    fn bass_lines_sound_below_a_guitars_low_e() {
        // Bass from E1 (41 Hz) against the lowest guitar playing, palm mutes from D2 (73 Hz).
        let sr = 48_000.0;
        for seed in 0..3 {
            let bass = share_below_60_hz(sr, &phrase(sr, Style::Bass, seed));
            let chug = share_below_60_hz(sr, &phrase(sr, Style::Chug, seed));
            assert!(
                bass > 2.0 * chug,
                "seed {seed}: below 60 Hz, bass {bass}, palm mutes {chug}"
            );
        }
    }

    #[test]
    fn every_style_plays_through_its_phrase() {
        // No style leaves its phrase silent for long: at most a fifth of its 50 ms windows
        // more than 40 dB under its peak (bends, long notes whose moving loop delay damps
        // them a little faster than a still string, under 0.3).
        let sr = 48_000.0;
        for style in STYLES {
            let x = phrase(sr, style, 1);
            let played = &x[..x.len() - (0.5 * sr) as usize];
            let peak = played.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let windows: Vec<f32> = played
                .chunks_exact((0.05 * sr) as usize)
                .map(|w| (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt())
                .collect();
            let quiet = windows.iter().filter(|rms| **rms < 0.01 * peak).count() as f32 / windows.len() as f32;
            let limit = if let Style::Bend = style { 0.3 } else { 0.2 };
            assert!(quiet < limit, "{style:?}: {quiet} of the windows 40 dB under the peak");
        }
    }
}
