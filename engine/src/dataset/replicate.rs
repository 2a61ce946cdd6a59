//! NAM's replicate check on a capture of Doppel's signal: the signal plays a stretch of its
//! plucks twice ([`crate::signal::replicate_ranges`]); a time-invariant device answers both
//! the same. Trainer/CLI thread.

use crate::metrics::esr;
use crate::signal::replicate_ranges;

/// Self-ESR above which a device does not "sound like itself": noise, a time-based effect
/// (delay, modulation, a compressor still releasing), or a knob moved during the capture.
pub const REPLICATE_ESR_LIMIT: f32 = 0.01;

/// ESR between the device's answers to the two copies of the replicate, or `None` when
/// `input` is not Doppel's capture signal (its replicate stretches differ) or the target
/// does not cover them after `latency_samples`.
pub fn replicate_esr(input: &[f32], target: &[f32], latency_samples: i64, sample_rate: u32) -> Option<f32> {
    let (original, repeat) = replicate_ranges(sample_rate, input)?;
    let peak = input.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let same = input[original.clone()]
        .iter()
        .zip(&input[repeat.clone()])
        .all(|(a, b)| (a - b).abs() <= 1e-6 * peak.max(1e-9) + 1e-7);
    if !same || peak <= 0.0 {
        return None;
    }
    let shifted = |range: std::ops::Range<usize>| {
        let start = usize::try_from(range.start as i64 + latency_samples).ok()?;
        target.get(start..start + range.len())
    };
    let (first, second) = (shifted(original)?, shifted(repeat)?);
    Some(esr(second, first))
}

/// The one line the user reads about a capture's replicate check.
pub fn replicate_note(label: &str, self_esr: f32) -> String {
    if self_esr > REPLICATE_ESR_LIMIT {
        format!(
            "{label}: the device does not sound like itself: the repeated segment differs by ESR {self_esr:.4} (above {REPLICATE_ESR_LIMIT}): noise, a time-based effect, or a knob moved during the capture"
        )
    } else {
        format!("{label}: replicate check passed: the repeated segment matches itself (ESR {self_esr:.2e})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::capture_signal;

    #[test]
    fn a_static_device_passes_and_a_drifting_one_fails() {
        let sr = 48_000;
        let x = capture_signal(sr, 20.0);
        let late = |y: Vec<f32>, lag: usize| {
            let mut out = vec![0.0; lag];
            out.extend_from_slice(&y[..y.len() - lag]);
            out
        };
        let static_device = late(x.iter().map(|v| (2.0 * v).tanh()).collect(), 12);
        let esr = replicate_esr(&x, &static_device, 12, sr).unwrap();
        assert!(esr < 1e-10, "{esr}");
        assert!(replicate_note("amp.wav", esr).contains("passed"));
        // A gain knob turned slowly during the capture: +12 dB over the whole take.
        let n = x.len() as f32;
        let drifting: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v * 10f32.powf(12.0 * i as f32 / n / 20.0))
            .collect();
        let esr = replicate_esr(&x, &drifting, 0, sr).unwrap();
        assert!(esr > REPLICATE_ESR_LIMIT, "{esr}");
        assert!(replicate_note("amp.wav", esr).contains("does not sound like itself"));
        // Audio that is not the capture signal has no replicate to check.
        let other: Vec<f32> = (0..x.len()).map(|i| (i as f32 * 0.01).sin()).collect();
        assert!(replicate_esr(&other, &other, 0, sr).is_none());
    }
}
