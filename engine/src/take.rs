//! Checks a capture take (Doppel's capture signal played into a device, and what came back)
//! before anything trains on it, and finds the round-trip latency from the signal's clicks.
//! Trainer thread (the plugin's) or any other thread but the audio thread.
//!
//! Each way a take can be bad is one [`TakeProblem`] with its own one-line message, checked in
//! this order: no return, the return clipping, too quiet, too noisy, latency not found,
//! the clicks disagreeing, and the replicate segment not matching itself. Host changes during
//! the take (sample rate, block layout) are the recorder's to notice; they have their own
//! variants so that the user reads every reason in one place.

use std::fmt;
use std::ops::Range;

use crate::align::estimate_latency;
use crate::dataset::{replicate_esr, REPLICATE_ESR_LIMIT};
use crate::signal::{capture_layout, click_positions, CaptureSection};

/// Peak below which nothing came back, in dBFS.
pub const NO_RETURN_DBFS: f32 = -80.0;
/// Peak below which the return is too quiet to learn from, in dBFS.
pub const TOO_QUIET_DBFS: f32 = -40.0;
/// Magnitude at which a return sample counts as clipped.
pub const CLIP_LEVEL: f32 = 0.999;
/// Clipped samples a take may hold (a single full-scale peak is not yet clipping).
pub const MAX_CLIPPED_SAMPLES: usize = 2;
/// Lowest signal-to-noise ratio accepted, in dB: the played phrases' RMS against the noise in
/// the intro's silence. Noise 20 dB down alone puts an ESR floor of 0.01 under any model.
pub const MIN_SNR_DB: f32 = 20.0;
/// Lowest confidence of the click latency ([`crate::align::Alignment::confidence`]).
pub const MIN_LATENCY_CONFIDENCE: f32 = 2.0;
/// Most samples (at 48 kHz, scaled with the rate) the clicks' latencies may differ by.
pub const MAX_CLICK_SPREAD_SAMPLES: i64 = 1;
/// Lowest normalised correlation between the device's answers to two clicks.
pub const MIN_CLICK_SIMILARITY: f32 = 0.9;

/// Why a take cannot be trained on. `Display` gives the one line the user reads.
#[derive(Clone, Debug, PartialEq)]
pub enum TakeProblem {
    /// The return stayed silent.
    NoReturn {
        /// Its peak, in dBFS.
        peak_dbfs: f32,
    },
    /// The return clipped.
    Clipping {
        /// Samples at or above [`CLIP_LEVEL`].
        clipped_samples: usize,
    },
    /// The return is too quiet.
    TooQuiet {
        /// Its peak, in dBFS.
        peak_dbfs: f32,
    },
    /// No clear round-trip latency in the clicks.
    LatencyNotFound {
        /// What went wrong, in words.
        reason: String,
    },
    /// The device answered the clicks at different delays or in different shapes.
    ClicksDisagree {
        /// Each click's delay relative to the first click's answer, in samples.
        offsets_samples: Vec<i64>,
        /// The lowest correlation between two clicks' answers.
        similarity: f32,
    },
    /// The noise floor is too close to the signal.
    TooNoisy {
        /// Signal-to-noise ratio, in dB.
        snr_db: f32,
    },
    /// The repeated segment did not come back the same.
    ReplicateMismatch {
        /// ESR between the two answers.
        self_esr: f32,
    },
    /// The host's sample rate changed during the take.
    SampleRateChanged {
        /// At the start, in Hz.
        from_hz: f32,
        /// Later, in Hz.
        to_hz: f32,
    },
    /// The host reset the plugin, or the Capture Return disappeared, during the take.
    LayoutChanged,
    /// The take ended early (mode changed, transport stopped).
    Interrupted {
        /// Seconds recorded of the signal's length.
        recorded_seconds: f32,
    },
}

impl fmt::Display for TakeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TakeProblem::NoReturn { peak_dbfs } if *peak_dbfs < -120.0 => write!(
                f,
                "No return: the Capture Return stayed silent. Route the device's output to the sidechain."
            ),
            TakeProblem::NoReturn { peak_dbfs } => write!(
                f,
                "No return: the Capture Return stayed silent (peak {peak_dbfs:.0} dBFS). Route the device's output to the sidechain."
            ),
            TakeProblem::Clipping { clipped_samples } => write!(
                f,
                "The return clips ({clipped_samples} samples at full scale): lower the device's output or the interface's input gain."
            ),
            TakeProblem::TooQuiet { peak_dbfs } => write!(
                f,
                "The return is too quiet (peak {peak_dbfs:.1} dBFS, needs {TOO_QUIET_DBFS:.0}): raise the interface's input gain."
            ),
            TakeProblem::LatencyNotFound { reason } => {
                write!(f, "Latency not found: the clicks did not come back clearly ({reason}).")
            }
            TakeProblem::ClicksDisagree {
                offsets_samples,
                similarity,
            } => write!(
                f,
                "The clicks disagree (offsets {offsets_samples:?} samples, similarity {similarity:.2}): the round trip is unstable or the device is time-based."
            ),
            TakeProblem::TooNoisy { snr_db } => write!(
                f,
                "Too noisy: the signal is only {snr_db:.0} dB above the noise floor (needs {MIN_SNR_DB:.0} dB). Check hum, gain staging and cables."
            ),
            TakeProblem::ReplicateMismatch { self_esr } => write!(
                f,
                "The device does not sound like itself: the repeated segment differs by ESR {self_esr:.4} (above {REPLICATE_ESR_LIMIT}): noise, a time-based effect, or a knob moved."
            ),
            TakeProblem::SampleRateChanged { from_hz, to_hz } => write!(
                f,
                "The host's sample rate changed during the capture ({from_hz:.0} Hz to {to_hz:.0} Hz): capture again."
            ),
            TakeProblem::LayoutChanged => write!(
                f,
                "The host reset the plugin or changed its audio layout during the capture: capture again."
            ),
            TakeProblem::Interrupted { recorded_seconds } => write!(
                f,
                "The capture was interrupted after {recorded_seconds:.1} s: leave Mode on Capture until it ends."
            ),
        }
    }
}

/// What a good take measured.
#[derive(Clone, Debug, PartialEq)]
pub struct TakeReport {
    /// Round-trip latency from the clicks, in samples.
    pub latency_samples: i64,
    /// Confidence of that latency.
    pub latency_confidence: f32,
    /// Peak of the return, in dBFS.
    pub return_peak_dbfs: f32,
    /// RMS of the intro's silence in the return, in dBFS.
    pub noise_floor_dbfs: f32,
    /// Played part against the noise floor, in dB.
    pub snr_db: f32,
    /// The replicate check's ESR (`None` when the signal is too short to hold a replicate).
    pub replicate_esr: Option<f32>,
}

fn dbfs(x: f32) -> f32 {
    20.0 * x.max(1e-12).log10()
}

/// RMS around the mean (a DC offset is not noise).
fn ac_rms(x: &[f32]) -> f32 {
    let mean = x.iter().map(|v| *v as f64).sum::<f64>() / x.len().max(1) as f64;
    (x.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt() as f32
}

fn section(layout: &[(CaptureSection, Range<usize>)], wanted: CaptureSection) -> Range<usize> {
    layout
        .iter()
        .find(|(s, _)| *s == wanted)
        .map_or(0..0, |(_, r)| r.clone())
}

/// Checks a take: `played` is the capture signal exactly as it went out (level applied),
/// `returned` what came back on the same clock, at least as long. `max_latency_samples` bounds
/// the round trip searched for.
pub fn check_take(
    played: &[f32],
    returned: &[f32],
    sample_rate: u32,
    max_latency_samples: usize,
) -> Result<TakeReport, TakeProblem> {
    let peak = returned.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let peak_dbfs = dbfs(peak);
    if peak_dbfs < NO_RETURN_DBFS {
        return Err(TakeProblem::NoReturn { peak_dbfs });
    }
    let clipped_samples = returned.iter().filter(|v| v.abs() >= CLIP_LEVEL).count();
    if clipped_samples > MAX_CLIPPED_SAMPLES {
        return Err(TakeProblem::Clipping { clipped_samples });
    }
    if peak_dbfs < TOO_QUIET_DBFS {
        return Err(TakeProblem::TooQuiet { peak_dbfs });
    }

    let clicks = click_positions(sample_rate, played.len());
    let layout = capture_layout(sample_rate, played.len() as f32 / sample_rate as f32);
    let intro = section(&layout, CaptureSection::Intro);
    if clicks.len() < 2 {
        return Err(TakeProblem::LatencyNotFound {
            reason: "the signal is too short to hold its clicks".into(),
        });
    }
    let first_click = clicks[0];
    // Noise: the return before the first click could have come back (the device's idle
    // output, its DC removed), against the played part (the plucks, late by at most the
    // latency window, which is small beside them).
    let settle = (sample_rate as usize / 20).min(first_click / 4);
    let noise_floor = ac_rms(&returned[settle..first_click.min(returned.len())]);
    let plucks = section(&layout, CaptureSection::Plucks);
    let signal_rms = ac_rms(&returned[plucks.start.min(returned.len())..plucks.end.min(returned.len())]);
    let snr_db = dbfs(signal_rms) - dbfs(noise_floor);
    if snr_db < MIN_SNR_DB {
        return Err(TakeProblem::TooNoisy { snr_db });
    }
    let intro_end = (intro.end + max_latency_samples).min(returned.len());
    let alignment =
        estimate_latency(&played[..intro.end], &returned[..intro_end], max_latency_samples).map_err(|err| {
            TakeProblem::LatencyNotFound {
                reason: format!("{err:#}"),
            }
        })?;
    let latency = alignment.latency_samples;
    if alignment.confidence < MIN_LATENCY_CONFIDENCE || latency < 0 {
        return Err(TakeProblem::LatencyNotFound {
            reason: format!("best guess {latency} samples at confidence {:.1}", alignment.confidence),
        });
    }
    check_clicks(&clicks, returned, latency, sample_rate)?;

    let replicate = replicate_esr(played, returned, latency, sample_rate);
    if let Some(self_esr) = replicate.filter(|e| e.is_nan() || *e > REPLICATE_ESR_LIMIT) {
        return Err(TakeProblem::ReplicateMismatch { self_esr });
    }
    Ok(TakeReport {
        latency_samples: latency,
        latency_confidence: alignment.confidence,
        return_peak_dbfs: peak_dbfs,
        noise_floor_dbfs: dbfs(noise_floor),
        snr_db,
        replicate_esr: replicate,
    })
}

/// Compares the device's answer to each click with its answer to the first: the same delay
/// (within [`MAX_CLICK_SPREAD_SAMPLES`]) and the same shape (correlation at least
/// [`MIN_CLICK_SIMILARITY`]).
fn check_clicks(clicks: &[usize], returned: &[f32], latency: i64, sample_rate: u32) -> Result<(), TakeProblem> {
    let scale = (sample_rate as f32 / 48_000.0).max(0.25);
    let (before, after) = ((64.0 * scale) as usize, (1024.0 * scale) as usize);
    let search = (128.0 * scale) as i64;
    let spread = ((MAX_CLICK_SPREAD_SAMPLES as f32 * scale).round() as i64).max(MAX_CLICK_SPREAD_SAMPLES);
    let answer = |click: usize, lag: i64| -> Option<&[f32]> {
        let start = usize::try_from(click as i64 + latency + lag - before as i64).ok()?;
        returned.get(start..start + before + after)
    };
    let reference = answer(clicks[0], 0).ok_or_else(|| TakeProblem::LatencyNotFound {
        reason: "the return ends before the first click's answer".into(),
    })?;
    let reference_energy = reference.iter().map(|v| v * v).sum::<f32>();
    let mut offsets = vec![0];
    let mut similarity = 1.0f32;
    for &click in &clicks[1..] {
        let mut best = (0, f32::NEG_INFINITY);
        for lag in -search..=search {
            let Some(other) = answer(click, lag) else { continue };
            let energy = other.iter().map(|v| v * v).sum::<f32>();
            let dot = reference.iter().zip(other).map(|(a, b)| a * b).sum::<f32>();
            let correlation = dot / (reference_energy * energy).sqrt().max(1e-20);
            if correlation > best.1 {
                best = (lag, correlation);
            }
        }
        offsets.push(best.0);
        similarity = similarity.min(best.1);
    }
    if offsets.iter().any(|o| o.abs() > spread) || similarity.is_nan() || similarity < MIN_CLICK_SIMILARITY {
        return Err(TakeProblem::ClicksDisagree {
            offsets_samples: offsets,
            similarity,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
