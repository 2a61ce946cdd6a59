//! Training objective on plain `f32` slices with its analytic gradient: ESR, first-order and
//! A-weighted pre-emphasis ESR, multi-resolution STFT distance and a DC term, weighted and
//! summed. Used by the trainer thread (both the hand-written WaveNet backward pass and, as a
//! surrogate `sum(prediction * gradient)`, the candle LSTM path).
//!
//! A batch is `rows * samples_per_row` values, row-major: one row per training segment.
//! Every term is a ratio or a mean, so its value does not depend on the batch size.

mod a_weighting;
mod stft;
#[cfg(test)]
mod tests;
mod waveform;

use serde::{Deserialize, Serialize};

use crate::metrics::MRSTFT_FFT_SIZES;

pub use a_weighting::{a_weighting_db, AWeighting};

/// Small constant keeping energy ratios finite on silent segments (the same as the candle
/// losses use, so both paths give the same numbers).
const EPSILON: f64 = 1e-8;

/// What kind of device a capture holds; chooses the default objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectKind {
    /// Guitar amplifier and/or cabinet (distortion, strong harmonics).
    AmpCab,
    /// Dynamics processor (level and envelope matter most).
    Compressor,
    /// Noise reduction (the residual noise floor matters most).
    Denoiser,
}

impl EffectKind {
    /// The command line's name for the kind.
    pub fn name(self) -> &'static str {
        match self {
            EffectKind::AmpCab => "amp",
            EffectKind::Compressor => "compressor",
            EffectKind::Denoiser => "denoiser",
        }
    }

    /// The architecture a kind trains by default: the grey-box dynamics model for a
    /// compressor, a WaveNet otherwise.
    pub fn default_architecture(self) -> &'static str {
        match self {
            EffectKind::Compressor => "compressor",
            EffectKind::AmpCab | EffectKind::Denoiser => "wavenet",
        }
    }

    /// Parses the command line's name for a kind: `amp`, `compressor` or `denoiser`.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "amp" => Ok(EffectKind::AmpCab),
            "compressor" => Ok(EffectKind::Compressor),
            "denoiser" => Ok(EffectKind::Denoiser),
            other => anyhow::bail!("unknown effect '{other}': expected amp, compressor or denoiser"),
        }
    }
}

/// Which loss terms make up the training objective and their weights; the total is the
/// weighted sum of the terms. A zero weight skips a term entirely (no time spent on it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Objective {
    /// Weight of the error-to-signal ratio `Σ(p-t)² / (Σt² + ε)` over the whole batch.
    pub esr: f32,
    /// Weight of the ESR after first-order pre-emphasis `y[n] = x[n] - c·x[n-1]` per row.
    pub esr_preemph: f32,
    /// The pre-emphasis coefficient `c` (dimensionless, 0..1).
    pub preemph_coefficient: f32,
    /// Weight of the ESR after an A-weighting filter (see [`AWeighting`]).
    pub esr_a_weighted: f32,
    /// Weight of the multi-resolution STFT distance (spectral convergence + mean absolute
    /// log-magnitude difference, averaged over resolutions).
    pub mrstft: f32,
    /// FFT sizes of the STFT resolutions, in samples (Hann window, hop a quarter of the
    /// size). Rows shorter than a size skip that resolution.
    pub mrstft_fft_sizes: Vec<usize>,
    /// Weight of the DC term `mean(p-t)² / (mean(t²) + ε)` over the whole batch.
    pub dc: f32,
}

impl Default for Objective {
    fn default() -> Self {
        Objective::for_effect(EffectKind::AmpCab)
    }
}

impl Objective {
    /// The non-zero term weights by name.
    pub fn weights(&self) -> Vec<(String, f32)> {
        [
            ("esr", self.esr),
            ("esr_preemph", self.esr_preemph),
            ("esr_a_weighted", self.esr_a_weighted),
            ("mrstft", self.mrstft),
            ("dc", self.dc),
        ]
        .into_iter()
        .filter(|(_, w)| *w > 0.0)
        .map(|(term, w)| (term.to_owned(), w))
        .collect()
    }

    /// Sets the weight of the term named `term` (`esr`, `esr_preemph`, `esr_a_weighted`,
    /// `mrstft`, `dc`).
    pub fn set_weight(&mut self, term: &str, weight: f32) -> anyhow::Result<()> {
        anyhow::ensure!(
            weight.is_finite() && weight >= 0.0,
            "loss weight of '{term}' must be finite and not negative"
        );
        let slot = match term {
            "esr" => &mut self.esr,
            "esr_preemph" => &mut self.esr_preemph,
            "esr_a_weighted" => &mut self.esr_a_weighted,
            "mrstft" => &mut self.mrstft,
            "dc" => &mut self.dc,
            other => {
                anyhow::bail!("unknown loss term '{other}': expected esr, esr_preemph, esr_a_weighted, mrstft or dc")
            }
        };
        *slot = weight;
        Ok(())
    }

    /// Defaults per effect kind.
    ///
    /// The MRSTFT gradient does not shrink with the error (it is a norm and an L1 distance,
    /// not a square): on a distorted test tone its gradient norm stays about 0.27 from
    /// ESR 2e-3 down to 2e-5, while ESR + pre-emphasis ESR fall from about 1.3e-2 to 1.3e-3.
    /// Weighted at 0.1 it would outweigh the ESR terms well before the ESR target, so it
    /// is kept light where ESR is the goal.
    ///
    /// - Amp/cab: the held-out metric is ESR, so ESR and first-order pre-emphasis ESR (which
    ///   keeps the high-frequency fizz of a distorted amp from being ignored) carry the
    ///   objective, as in the existing trainer. MRSTFT at 0.02 adds a scale-free spectral
    ///   push (quiet passages, noise floor) at about a third of the ESR terms' gradient near
    ///   ESR 0.002. The A-weighted ESR overlaps the pre-emphasis term and is off.
    /// - Compressor: ESR tracks level and envelope directly; MRSTFT at 0.05 keeps the tone
    ///   (no pre-emphasis term: the device barely changes the spectrum).
    /// - Denoiser: what is heard is the residual noise floor, which the log-magnitude
    ///   spectrum sees and ESR barely does: MRSTFT 1.0, plus ESR and A-weighted ESR at 0.5
    ///   to keep the waveform right where the ear is sensitive.
    ///
    /// All kinds keep the small DC term (0.1) of the existing trainer.
    pub fn for_effect(kind: EffectKind) -> Self {
        let (esr, esr_preemph, esr_a_weighted, mrstft) = match kind {
            EffectKind::AmpCab => (1.0, 1.0, 0.0, 0.02),
            EffectKind::Compressor => (1.0, 0.0, 0.0, 0.05),
            EffectKind::Denoiser => (0.5, 0.0, 0.5, 1.0),
        };
        Objective {
            esr,
            esr_preemph,
            preemph_coefficient: 0.85,
            esr_a_weighted,
            mrstft,
            mrstft_fft_sizes: MRSTFT_FFT_SIZES.to_vec(),
            dc: 0.1,
        }
    }
}

/// The objective's total and each term's unweighted value for one batch. Terms whose weight
/// is zero are not computed and read 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ObjectiveValue {
    /// Weighted sum of the terms.
    pub total: f32,
    /// Error-to-signal ratio.
    pub esr: f32,
    /// ESR after first-order pre-emphasis.
    pub esr_preemph: f32,
    /// ESR after A-weighting.
    pub esr_a_weighted: f32,
    /// Multi-resolution STFT distance.
    pub mrstft: f32,
    /// DC term.
    pub dc: f32,
}

/// Evaluates an [`Objective`] and its gradient with respect to the prediction. Filters and
/// FFT plans are made in [`ObjectiveEvaluator::new`]; per-row scratch grows to the largest
/// batch seen and is then reused, so steady-state calls do not allocate.
pub struct ObjectiveEvaluator {
    objective: Objective,
    samples_per_row: usize,
    a_weighted: a_weighting::AWeightedEsr,
    stft: stft::MultiResolutionStft,
}

impl ObjectiveEvaluator {
    /// An evaluator for batches of rows of `samples_per_row` samples at `sample_rate_hz`.
    ///
    /// # Panics
    /// If `samples_per_row` is 0 or an FFT size is smaller than 4.
    pub fn new(objective: &Objective, sample_rate_hz: f32, samples_per_row: usize) -> Self {
        assert!(samples_per_row > 0, "rows must hold at least one sample");
        let fft_sizes: &[usize] = if objective.mrstft != 0.0 {
            &objective.mrstft_fft_sizes
        } else {
            &[]
        };
        ObjectiveEvaluator {
            objective: objective.clone(),
            samples_per_row,
            a_weighted: a_weighting::AWeightedEsr::new(sample_rate_hz, samples_per_row),
            stft: stft::MultiResolutionStft::new(fft_sizes, samples_per_row),
        }
    }

    /// The objective this evaluator computes.
    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    /// Samples in one row (segment).
    pub fn samples_per_row(&self) -> usize {
        self.samples_per_row
    }

    /// Evaluates the objective of `prediction` against `target` (both `rows *
    /// samples_per_row` values, row-major), writes `d total / d prediction` into `gradient`
    /// (same length, overwritten) and returns the total and each term.
    ///
    /// # Panics
    /// If the three slices differ in length or it is not a multiple of `samples_per_row`.
    pub fn evaluate(&mut self, prediction: &[f32], target: &[f32], gradient: &mut [f32]) -> ObjectiveValue {
        assert_eq!(prediction.len(), target.len(), "prediction and target lengths differ");
        assert_eq!(
            prediction.len(),
            gradient.len(),
            "gradient length differs from the prediction's"
        );
        assert_eq!(
            prediction.len() % self.samples_per_row,
            0,
            "the batch is not a whole number of rows"
        );
        gradient.fill(0.0);
        let weights = &self.objective;
        let mut value = ObjectiveValue::default();
        if weights.esr != 0.0 {
            value.esr = waveform::esr(prediction, target, weights.esr, gradient);
        }
        if weights.esr_preemph != 0.0 {
            value.esr_preemph = waveform::esr_preemph(
                prediction,
                target,
                self.samples_per_row,
                weights.preemph_coefficient,
                weights.esr_preemph,
                gradient,
            );
        }
        if weights.esr_a_weighted != 0.0 {
            value.esr_a_weighted = self
                .a_weighted
                .evaluate(prediction, target, weights.esr_a_weighted, gradient);
        }
        if weights.mrstft != 0.0 {
            value.mrstft = self.stft.evaluate(prediction, target, weights.mrstft, gradient);
        }
        if weights.dc != 0.0 {
            value.dc = waveform::dc(prediction, target, weights.dc, gradient);
        }
        value.total = weights.esr * value.esr
            + weights.esr_preemph * value.esr_preemph
            + weights.esr_a_weighted * value.esr_a_weighted
            + weights.mrstft * value.mrstft
            + weights.dc * value.dc;
        value
    }
}
