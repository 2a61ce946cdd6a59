//! Sound generators for the profiling and test signals: Karplus-Strong plucked strings,
//! chords, exponential sine sweeps and band-limited noise. Offline (any thread, allocates).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::dsp::{db_to_gain, Biquad, OnePole, OnePoleKind};

/// Frequency of a MIDI note number, in Hz (A4 = 69 = 440 Hz).
pub fn midi_to_hz(note: f32) -> f32 {
    440.0 * 2f32.powf((note - 69.0) / 12.0)
}

/// How a string is plucked.
#[derive(Clone, Copy, Debug)]
pub struct PluckStyle {
    /// Peak level of the note, in dBFS.
    pub level_db: f32,
    /// Time for the string to decay by 60 dB, in seconds (palm mutes: ~0.1-0.3 s).
    pub decay_seconds: f32,
    /// Pick brightness 0..1: the excitation lowpass goes from 1 kHz (0) to 9 kHz (1).
    pub brightness: f32,
    /// Pluck position as a fraction of the string (0.1 near the bridge .. 0.4).
    pub position: f32,
}

/// A Karplus-Strong string at `frequency_hz` sounding for `duration_samples` (the last
/// 10 ms fade out), with its peak at `style.level_db`.
pub fn pluck(
    sample_rate: f32,
    frequency_hz: f32,
    duration_samples: usize,
    style: PluckStyle,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    bent_pluck(sample_rate, frequency_hz, duration_samples, style, rng, |_| 0.0)
}

/// [`pluck`] whose pitch moves by `bend_semitones(n)` at sample `n` (a bend, a slide or
/// vibrato: the string's loop delay follows it).
pub fn bent_pluck(
    sample_rate: f32,
    frequency_hz: f32,
    duration_samples: usize,
    style: PluckStyle,
    rng: &mut ChaCha8Rng,
    bend_semitones: impl Fn(usize) -> f32,
) -> Vec<f32> {
    let mut out = vec![0.0f32; duration_samples];
    if duration_samples == 0 {
        return out;
    }
    // The two-point average in the loop adds half a sample of delay.
    let period = (sample_rate / frequency_hz.max(20.0)).max(2.5);
    let delay = period - 0.5;
    let excitation_samples = (period.ceil() as usize).min(duration_samples);
    let mut tone = OnePole::new(
        OnePoleKind::Lowpass,
        sample_rate,
        1_000.0 + 8_000.0 * style.brightness.clamp(0.0, 1.0),
    );
    let mut excitation: Vec<f32> = (0..excitation_samples)
        .map(|_| tone.process_sample(rng.random_range(-1.0..1.0)))
        .collect();
    // Picking at a fraction of the string cancels the harmonics with a node there.
    let comb = ((style.position.clamp(0.05, 0.5) * period) as usize).max(1);
    for n in (comb..excitation.len()).rev() {
        excitation[n] -= excitation[n - comb];
    }
    let loop_gain = 0.001f32.powf(1.0 / (style.decay_seconds.max(0.02) * frequency_hz.max(20.0)));
    let read = |buffer: &[f32], position: f32| -> f32 {
        if position < 0.0 {
            return 0.0;
        }
        let i = position.floor() as usize;
        let frac = position - i as f32;
        buffer[i] * (1.0 - frac) + buffer.get(i + 1).copied().unwrap_or(0.0) * frac
    };
    for n in 0..duration_samples {
        let bend = bend_semitones(n);
        let delay = if bend == 0.0 {
            delay
        } else {
            (period / 2f32.powf(bend / 12.0)).max(2.5) - 0.5
        };
        let t = n as f32 - delay;
        let feedback = if t >= 1.0 {
            0.5 * (read(&out, t) + read(&out, t - 1.0))
        } else {
            0.0
        };
        out[n] = excitation.get(n).copied().unwrap_or(0.0) + loop_gain * feedback;
    }
    let fade = ((0.01 * sample_rate) as usize).min(duration_samples);
    for (i, v) in out[duration_samples - fade..].iter_mut().enumerate() {
        *v *= 1.0 - (i as f32 + 1.0) / fade as f32;
    }
    normalize_peak(&mut out, db_to_gain(style.level_db));
    out
}

/// Several strings struck `strum_samples` apart (low string first when `down`), each a
/// [`pluck`]; the sum peaks at `style.level_db`.
pub fn strum(
    sample_rate: f32,
    notes: &[f32],
    duration_samples: usize,
    strum_samples: usize,
    down: bool,
    style: PluckStyle,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let mut out = vec![0.0f32; duration_samples];
    for (k, &note) in notes.iter().enumerate() {
        let order = if down { k } else { notes.len() - 1 - k };
        let start = (order * strum_samples).min(duration_samples);
        let string = pluck(sample_rate, midi_to_hz(note), duration_samples - start, style, rng);
        for (o, s) in out[start..].iter_mut().zip(string) {
            *o += s;
        }
    }
    normalize_peak(&mut out, db_to_gain(style.level_db));
    out
}

/// Exponential sine sweep from `start_hz` to `end_hz` over `length` samples with peak
/// `level_db`, faded in and out over 5 ms.
pub fn log_sweep(sample_rate: f32, start_hz: f32, end_hz: f32, length: usize, level_db: f32) -> Vec<f32> {
    let seconds = length as f64 / sample_rate as f64;
    let ratio = (end_hz as f64 / start_hz as f64).ln();
    let amplitude = db_to_gain(level_db);
    let mut out: Vec<f32> = (0..length)
        .map(|n| {
            let t = n as f64 / sample_rate as f64;
            let phase =
                2.0 * std::f64::consts::PI * start_hz as f64 * seconds / ratio * ((t / seconds * ratio).exp() - 1.0);
            amplitude * phase.sin() as f32
        })
        .collect();
    apply_fades(&mut out, (0.005 * sample_rate) as usize);
    out
}

/// White noise band-limited to `low_hz..high_hz` (two second-order sections each side),
/// normalised to peak `level_db`, faded over 10 ms.
pub fn band_noise(
    sample_rate: f32,
    low_hz: f32,
    high_hz: f32,
    length: usize,
    level_db: f32,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let mut filters = [
        Biquad::highpass(sample_rate, low_hz, 0.54),
        Biquad::highpass(sample_rate, low_hz, 1.31),
        Biquad::lowpass(sample_rate, high_hz, 0.54),
        Biquad::lowpass(sample_rate, high_hz, 1.31),
    ];
    let mut out: Vec<f32> = (0..length)
        .map(|_| {
            filters
                .iter_mut()
                .fold(rng.random_range(-1.0f32..1.0), |s, f| f.process_sample(s))
        })
        .collect();
    normalize_peak(&mut out, db_to_gain(level_db));
    apply_fades(&mut out, (0.01 * sample_rate) as usize);
    out
}

/// Scales `signal` so its peak magnitude is `peak` (silence stays silent).
pub fn normalize_peak(signal: &mut [f32], peak: f32) {
    let current = signal.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if current > 0.0 {
        let scale = peak / current;
        signal.iter_mut().for_each(|v| *v *= scale);
    }
}

/// Linear fade-in and fade-out of `fade_samples` each (shortened for short signals).
pub fn apply_fades(signal: &mut [f32], fade_samples: usize) {
    let fade = fade_samples.min(signal.len() / 2);
    let len = signal.len();
    for i in 0..fade {
        let g = (i as f32 + 0.5) / fade as f32;
        signal[i] *= g;
        signal[len - 1 - i] *= g;
    }
}

/// Adds `source` into `destination` starting at `offset`, clipped to the destination.
pub fn mix_into(destination: &mut [f32], offset: usize, source: &[f32]) {
    if let Some(tail) = destination.get_mut(offset..) {
        for (d, s) in tail.iter_mut().zip(source) {
            *d += s;
        }
    }
}
