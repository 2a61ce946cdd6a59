//! Training losses on candle tensors and gradient clipping. Trainer thread.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Small constant keeping energy ratios finite on silent segments.
const EPSILON: f64 = 1e-8;

/// Weights of the loss terms; the total is their weighted sum.
#[derive(Clone, Debug, PartialEq)]
pub struct LossWeights {
    /// Error-to-signal ratio of the raw waveforms.
    pub esr: f64,
    /// Error-to-signal ratio after first-order pre-emphasis (emphasises highs, where a
    /// distorted amp's harsh errors live).
    pub esr_preemph: f64,
    /// Pre-emphasis coefficient `c` in `y[n] = x[n] - c * x[n - 1]`.
    pub preemph_coefficient: f64,
    /// Squared mean error relative to the target's power (penalises DC offset).
    pub dc: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        LossWeights {
            esr: 1.0,
            esr_preemph: 1.0,
            preemph_coefficient: 0.85,
            dc: 0.1,
        }
    }
}

/// `sum((p - t)^2) / (sum(t^2) + eps)` over the whole batch, as a scalar tensor.
pub fn esr(prediction: &Tensor, target: &Tensor) -> Result<Tensor> {
    let error = (prediction - target)?.sqr()?.sum_all()?;
    let energy = (target.sqr()?.sum_all()? + EPSILON)?;
    error.div(&energy)
}

/// First-order pre-emphasis along the last axis; the result is one sample shorter.
pub fn preemphasis(x: &Tensor, coefficient: f64) -> Result<Tensor> {
    let n = x.dim(candle_core::D::Minus1)?;
    let current = x.narrow(candle_core::D::Minus1, 1, n - 1)?;
    let previous = x.narrow(candle_core::D::Minus1, 0, n - 1)?;
    current - (previous * coefficient)?
}

impl LossWeights {
    /// The weighted loss of `prediction` against `target`, both `[batch, samples]`.
    pub fn loss(&self, prediction: &Tensor, target: &Tensor) -> Result<Tensor> {
        let mut total = Tensor::zeros((), prediction.dtype(), prediction.device())?;
        if self.esr != 0.0 {
            total = (total + (esr(prediction, target)? * self.esr)?)?;
        }
        if self.esr_preemph != 0.0 {
            let c = self.preemph_coefficient;
            total = (total + (esr(&preemphasis(prediction, c)?, &preemphasis(target, c)?)? * self.esr_preemph)?)?;
        }
        if self.dc != 0.0 {
            let mean_error = (prediction - target)?.mean_all()?.sqr()?;
            let power = (target.sqr()?.mean_all()? + EPSILON)?;
            total = (total + (mean_error.div(&power)? * self.dc)?)?;
        }
        Ok(total)
    }
}

/// Scales all gradients down so their global L2 norm is at most `max_norm`. Returns the
/// norm before clipping (non-finite when the step must be discarded).
pub fn clip_gradients(grads: &mut GradStore, vars: &[Var], max_norm: f32) -> Result<f32> {
    let mut squared = 0f32;
    for var in vars {
        if let Some(g) = grads.get(var) {
            squared += g.sqr()?.sum_all()?.to_scalar::<f32>()?;
        }
    }
    let norm = squared.sqrt();
    if norm.is_finite() && norm > max_norm {
        let scale = (max_norm / norm) as f64;
        for var in vars {
            if let Some(g) = grads.get(var) {
                let scaled = (g * scale)?;
                grads.insert(var, scaled);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn esr_of_a_scaled_target_is_the_squared_error_ratio() {
        let target = Tensor::new(&[[1f32, -2.0, 3.0, -4.0]], &Device::Cpu).unwrap();
        let prediction = (&target * 0.9).unwrap();
        let value = esr(&prediction, &target).unwrap().to_scalar::<f32>().unwrap();
        assert!((value - 0.01).abs() < 1e-6, "ESR {value}, expected 0.01");
    }

    #[test]
    fn preemphasis_matches_the_difference_equation() {
        let x = Tensor::new(&[[1f32, 2.0, 4.0]], &Device::Cpu).unwrap();
        let y = preemphasis(&x, 0.5).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y, vec![vec![1.5, 3.0]]);
    }

    #[test]
    fn perfect_prediction_has_zero_loss_and_dc_is_penalised() {
        let target = Tensor::new(&[[0.5f32, -0.25, 0.125, -0.5]], &Device::Cpu).unwrap();
        let weights = LossWeights::default();
        assert!(
            weights
                .loss(&target, &target)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .abs()
                < 1e-7
        );
        let offset = (&target + 0.1).unwrap();
        let only_dc = LossWeights {
            esr: 0.0,
            esr_preemph: 0.0,
            ..LossWeights::default()
        };
        let value = only_dc.loss(&offset, &target).unwrap().to_scalar::<f32>().unwrap();
        let power = (0.25 + 0.0625 + 0.015625 + 0.25) / 4.0;
        assert!((value - 0.1 * 0.01 / power).abs() < 1e-6, "DC term {value}");
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let var = Var::new(&[3f32, 4.0], &Device::Cpu).unwrap();
        let loss = (var.as_tensor() * 1.0).unwrap().sqr().unwrap().sum_all().unwrap();
        let mut grads = loss.backward().unwrap();
        let norm = clip_gradients(&mut grads, std::slice::from_ref(&var), 1.0).unwrap();
        assert!((norm - 10.0).abs() < 1e-5, "gradient (6, 8) has norm 10, got {norm}");
        let clipped = grads.get(&var).unwrap().to_vec1::<f32>().unwrap();
        assert!(
            (clipped[0] - 0.6).abs() < 1e-6 && (clipped[1] - 0.8).abs() < 1e-6,
            "{clipped:?}"
        );
    }
}
