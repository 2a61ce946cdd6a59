//! The dynamics capture signal (`doppel signal --kind dynamics`): what a compressor must be
//! heard doing, in about three minutes per knob setting. Any thread.
//!
//! Layout for `seconds` (each part ends in silence):
//! 1. **Steps** (25 %): a steady chord-plus-noise carrier whose level jumps up and down by
//!    6-30 dB and holds 0.1-1.5 s: the static curve, attack on the way up, release down.
//! 2. **Bursts** (25 %): tone and noise bursts of 5-300 ms at -30..-1 dBFS separated by gaps
//!    from 5 ms to 2 s, log-spaced and shuffled: release seen at every depth of recovery.
//! 3. **Program** (50 %): a drum machine (kick, snare, hats), a bass line and a pad, alone and
//!    mixed, at several tempos with slow level rides of +-12 dB: realistic crest factors.
//!
//! Deterministic; peaks never exceed [`super::PEAK_LIMIT`].
//!
//! The stereo version ([`dynamics_signal_stereo`]) pans that signal slowly from side to side
//! and adds a second, independent one panned against it, so either channel is at times the
//! louder and the two differ in content: a linked detector's way of joining them shows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::synth::{apply_fades, band_noise, midi_to_hz, mix_into, normalize_peak};
use super::{limit, PEAK_LIMIT};
use crate::dsp::{db_to_gain, Biquad};

/// Length `doppel signal --kind dynamics` writes by default, in seconds.
pub const DEFAULT_DYNAMICS_SECONDS: f32 = 180.0;
/// Seed of the dynamics signal (fixed: the signal is a constant, like the capture signal).
const DYNAMICS_SEED: u64 = 0xD1_7A35;

/// The dynamics capture signal, `seconds` long at `sample_rate` Hz.
pub fn dynamics_signal(sample_rate: u32, seconds: f32) -> Vec<f32> {
    dynamics_with_seed(sample_rate, seconds, DYNAMICS_SEED)
}

/// Level of the second signal in the stereo version, relative to the first, in dB.
const SECOND_VOICE_DB: f32 = -6.0;
/// Period of the stereo version's pan sweep, in seconds.
const PAN_PERIOD_SECONDS: f32 = 7.0;

/// The stereo dynamics capture signal: `[left, right]`, each `seconds` long. The mono signal
/// sweeps between the channels (constant power, a 7 s period) and a second signal, 6 dB down,
/// sweeps against it.
pub fn dynamics_signal_stereo(sample_rate: u32, seconds: f32) -> [Vec<f32>; 2] {
    let main = dynamics_signal(sample_rate, seconds);
    let second = dynamics_with_seed(sample_rate, seconds, DYNAMICS_SEED + 1);
    let sr = sample_rate as f32;
    let second_gain = db_to_gain(SECOND_VOICE_DB);
    let (mut left, mut right) = (vec![0.0f32; main.len()], vec![0.0f32; main.len()]);
    for n in 0..main.len() {
        // Pan angle 0..pi/2: from hard left to hard right and back, dwelling near the centre
        // no longer than at the sides.
        let sweep = (std::f32::consts::TAU * n as f32 / (PAN_PERIOD_SECONDS * sr)).sin();
        let angle = std::f32::consts::FRAC_PI_4 * (1.0 + 0.9 * sweep);
        let (l, r) = (angle.cos(), angle.sin());
        left[n] = main[n] * l + second_gain * second[n] * r;
        right[n] = main[n] * r + second_gain * second[n] * l;
    }
    // One gain for both channels, so their balance stays as panned.
    let peak = left.iter().chain(&right).fold(0.0f32, |m, v| m.max(v.abs()));
    if peak > PEAK_LIMIT {
        let gain = PEAK_LIMIT / peak;
        left.iter_mut().chain(right.iter_mut()).for_each(|v| *v *= gain);
    }
    [left, right]
}

fn dynamics_with_seed(sample_rate: u32, seconds: f32, seed: u64) -> Vec<f32> {
    let sr = sample_rate as f32;
    let total = (seconds.max(0.0) * sr).round() as usize;
    let mut signal = vec![0.0f32; total];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let quarter = total / 4;
    let gap = ((0.25 * sr) as usize).min(total / 40);
    level_steps(sr, &mut signal[..quarter.saturating_sub(gap)], &mut rng);
    bursts(sr, &mut signal[quarter..(2 * quarter).saturating_sub(gap)], &mut rng);
    program(sr, &mut signal[2 * quarter..total.saturating_sub(gap)], &mut rng);
    limit(&mut signal);
    signal
}

/// A chord of detuned saw-like partials plus a little noise, peak 1.
fn carrier(sr: f32, length: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let root = rng.random_range(40.0f32..52.0);
    let notes = [root, root + 7.0, root + 12.0, root + 16.0];
    let mut out = band_noise(sr, 200.0, 6_000.0, length, -18.0, rng);
    for note in notes {
        let hz = midi_to_hz(note) * rng.random_range(0.997f32..1.003);
        for (n, v) in out.iter_mut().enumerate() {
            let phase = n as f32 * hz / sr;
            // Three harmonics with falling amplitude: bright enough, not a square wave.
            *v += (0..3)
                .map(|h| (std::f32::consts::TAU * phase * (h + 1) as f32).sin() / (h + 1) as f32)
                .sum::<f32>()
                * 0.25;
        }
    }
    normalize_peak(&mut out, 1.0);
    out
}

fn level_steps(sr: f32, body: &mut [f32], rng: &mut ChaCha8Rng) {
    let carrier = carrier(sr, body.len(), rng);
    let mut level_db = -24.0f32;
    let mut n = 0;
    let mut gain = vec![0.0f32; body.len()];
    while n < body.len() {
        let hold = (rng.random_range(0.1f32..1.5) * sr) as usize;
        let step = rng.random_range(6.0f32..30.0);
        // Down when up would pass -1 dBFS, else up or down at random (down only to -50 dBFS
        // unless up is ruled out): levels stay within about -55..-1 dBFS.
        level_db = if (level_db + step > -1.0) || (level_db - step >= -50.0 && rng.random_bool(0.5)) {
            level_db - step
        } else {
            level_db + step
        };
        let g = db_to_gain(level_db);
        for v in gain.iter_mut().skip(n).take(hold) {
            *v = g;
        }
        n += hold;
    }
    for ((out, &c), &g) in body.iter_mut().zip(&carrier).zip(&gain) {
        *out = c * g * PEAK_LIMIT;
    }
    apply_fades(body, (0.01 * sr) as usize);
}

fn bursts(sr: f32, body: &mut [f32], rng: &mut ChaCha8Rng) {
    // Gaps log-spaced from 5 ms to 2 s, each used a few times, in a shuffled order.
    let mut gaps: Vec<f32> = (0..24).map(|i| 0.005 * (400.0f32).powf(i as f32 / 23.0)).collect();
    gaps.extend(gaps.clone());
    for i in (1..gaps.len()).rev() {
        gaps.swap(i, rng.random_range(0..=i));
    }
    let mut n = (0.05 * sr) as usize;
    let mut k = 0;
    while n < body.len() {
        let length = (rng.random_range(0.005f32..0.3) * sr) as usize;
        let level_db = rng.random_range(-30.0f32..-1.0);
        let mut burst = if rng.random_bool(0.5) {
            band_noise(sr, 80.0, 8_000.0, length.max(8), level_db, rng)
        } else {
            let hz = midi_to_hz(rng.random_range(36.0f32..72.0));
            let mut tone: Vec<f32> = (0..length.max(8))
                .map(|t| (std::f32::consts::TAU * hz * t as f32 / sr).sin())
                .collect();
            normalize_peak(&mut tone, db_to_gain(level_db));
            tone
        };
        apply_fades(&mut burst, (0.0005 * sr) as usize + 1);
        mix_into(body, n, &burst);
        n += burst.len() + (gaps[k % gaps.len()] * sr) as usize;
        k += 1;
    }
}

/// Drum machine, bass and pad in bars at a tempo, with level rides.
fn program(sr: f32, body: &mut [f32], rng: &mut ChaCha8Rng) {
    let mut n = 0;
    while n < body.len() {
        let bpm = rng.random_range(80.0f32..150.0);
        let beat = (60.0 / bpm * sr) as usize;
        let bars = rng.random_range(2..5);
        let length = (4 * beat * bars).min(body.len() - n);
        // 0: drums, 1: bass, 2: drums and bass, 3: full mix.
        let arrangement = rng.random_range(0..4);
        let mut part = vec![0.0f32; length];
        if arrangement != 1 {
            drums(sr, &mut part, beat, rng);
        }
        if arrangement != 0 {
            bass(sr, &mut part, beat, rng);
        }
        if arrangement == 3 {
            let mut pad = carrier(sr, length, rng);
            normalize_peak(&mut pad, 0.15);
            mix_into(&mut part, 0, &pad);
        }
        normalize_peak(&mut part, db_to_gain(rng.random_range(-14.0f32..-1.0)) * PEAK_LIMIT);
        // A slow ride of up to +-12 dB across the part.
        let ride = rng.random_range(-12.0f32..12.0);
        for (t, v) in part.iter_mut().enumerate() {
            *v *= db_to_gain(ride * (t as f32 / length as f32 - 0.5));
        }
        apply_fades(&mut part, (0.005 * sr) as usize);
        mix_into(body, n, &part);
        n += length;
    }
}

fn drums(sr: f32, part: &mut [f32], beat: usize, rng: &mut ChaCha8Rng) {
    let sixteenth = beat / 4;
    let steps = part.len() / sixteenth.max(1);
    let mut hat_filter = Biquad::highpass(sr, 7_000.0, 0.7);
    for step in 0..steps {
        let at = step * sixteenth;
        let accent = rng.random_range(0.6f32..1.0);
        if step % 8 == 0 || (step % 16 == 10 && rng.random_bool(0.5)) {
            // Kick: a pitch-dropping sine with a fast decay.
            let length = (0.35 * sr) as usize;
            let kick: Vec<f32> = (0..length)
                .scan(0.0f32, |phase, t| {
                    let time = t as f32 / sr;
                    *phase += std::f32::consts::TAU * (45.0 + 120.0 * (-time * 30.0).exp()) / sr;
                    Some(phase.sin() * (-time * 9.0).exp() * accent)
                })
                .collect();
            mix_into(part, at, &kick);
        }
        if step % 8 == 4 {
            // Snare: a noise burst over a 190 Hz body.
            let length = (0.2 * sr) as usize;
            let snare: Vec<f32> = (0..length)
                .map(|t| {
                    let time = t as f32 / sr;
                    let noise = rng.random_range(-1.0f32..1.0) * (-time * 22.0).exp();
                    let body = (std::f32::consts::TAU * 190.0 * time).sin() * (-time * 30.0).exp();
                    (0.6 * noise + 0.5 * body) * accent
                })
                .collect();
            mix_into(part, at, &snare);
        }
        if step % 2 == 0 || rng.random_bool(0.3) {
            let length = (0.04 * sr) as usize;
            let hat: Vec<f32> = (0..length)
                .map(|t| {
                    let time = t as f32 / sr;
                    hat_filter.process_sample(rng.random_range(-1.0f32..1.0)) * (-time * 90.0).exp() * 0.25 * accent
                })
                .collect();
            mix_into(part, at, &hat);
        }
    }
}

fn bass(sr: f32, part: &mut [f32], beat: usize, rng: &mut ChaCha8Rng) {
    let eighth = beat / 2;
    let root = rng.random_range(28.0f32..40.0);
    let intervals = [0.0f32, 0.0, 7.0, 12.0, 10.0, 5.0, 3.0];
    let mut lowpass = Biquad::lowpass(sr, 900.0, 0.9);
    let mut n = 0;
    while n + eighth <= part.len() {
        if rng.random_bool(0.8) {
            let hz = midi_to_hz(root + intervals[rng.random_range(0..intervals.len())]);
            let length = eighth * rng.random_range(1..3);
            let velocity = rng.random_range(0.5f32..1.0);
            let note: Vec<f32> = (0..length.min(part.len() - n))
                .map(|t| {
                    let time = t as f32 / sr;
                    // A sawtooth, low-passed: a picked electric bass more or less.
                    let saw = 2.0 * (hz * time).fract() - 1.0;
                    lowpass.process_sample(saw) * (-time * 4.0).exp() * 0.5 * velocity
                })
                .collect();
            mix_into(part, n, &note);
        }
        n += eighth;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: u32 = 48_000;

    fn rms_db(x: &[f32]) -> f32 {
        10.0 * (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32 + 1e-12).log10()
    }

    #[test]
    fn deterministic_and_within_the_peak_limit() {
        let a = dynamics_signal(SR, 60.0);
        assert_eq!(a, dynamics_signal(SR, 60.0));
        assert_eq!(a.len(), 60 * SR as usize);
        assert!(a.iter().all(|v| v.is_finite() && v.abs() <= PEAK_LIMIT));
    }

    #[test]
    fn each_part_shows_what_a_compressor_is_heard_doing() {
        let x = dynamics_signal(SR, DEFAULT_DYNAMICS_SECONDS);
        let quarter = x.len() / 4;
        // Steps: 50 ms windows' levels jump by 6 dB or more many times.
        let window = SR as usize / 20;
        let levels: Vec<f32> = x[..quarter].chunks(window).map(rms_db).collect();
        let jumps = levels.windows(2).filter(|w| (w[1] - w[0]).abs() >= 6.0).count();
        assert!(jumps >= 40, "{jumps} level steps");
        // Bursts: silent gaps from under 10 ms to over 1.5 s.
        let mut gaps = Vec::new();
        let mut run = 0usize;
        for &v in &x[quarter..2 * quarter] {
            if v.abs() < 1e-6 {
                run += 1;
            } else {
                if run > 0 {
                    gaps.push(run);
                }
                run = 0;
            }
        }
        let shortest = gaps.iter().copied().filter(|&g| g > 100).min().unwrap_or(0);
        let longest = gaps.iter().copied().max().unwrap_or(0);
        assert!(shortest < SR as usize / 100, "shortest gap {shortest}");
        assert!(longest > 3 * SR as usize / 2, "longest gap {longest}");
        // Program: a realistic crest factor (peak over RMS) over the mixes.
        let program = &x[2 * quarter..];
        let peak = program.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let crest_db = 20.0 * peak.log10() - rms_db(program);
        assert!((10.0..30.0).contains(&crest_db), "crest factor {crest_db} dB");
    }
}
