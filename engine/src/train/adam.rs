//! Adam with decoupled weight decay (AdamW) over a flat parameter vector, and global
//! gradient-norm clipping. Trainer thread.

/// AdamW state: first and second moment estimates per parameter.
pub(crate) struct AdamW {
    first_moment: Vec<f32>,
    second_moment: Vec<f32>,
    steps: i32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    weight_decay: f32,
}

impl AdamW {
    /// Fresh state for `parameters` values, with the usual betas (0.9, 0.999).
    pub fn new(parameters: usize, weight_decay: f32) -> Self {
        AdamW {
            first_moment: vec![0.0; parameters],
            second_moment: vec![0.0; parameters],
            steps: 0,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay,
        }
    }

    /// Forgets all moment estimates (after a roll-back).
    pub fn reset(&mut self) {
        self.first_moment.fill(0.0);
        self.second_moment.fill(0.0);
        self.steps = 0;
    }

    /// One update of `params` along `gradient` with step size `learning_rate`.
    pub fn step(&mut self, params: &mut [f32], gradient: &[f32], learning_rate: f32) {
        self.steps += 1;
        let correction1 = 1.0 - self.beta1.powi(self.steps);
        let correction2 = 1.0 - self.beta2.powi(self.steps);
        let step_size = learning_rate / correction1;
        let decay = 1.0 - learning_rate * self.weight_decay;
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(gradient)
            .zip(&mut self.first_moment)
            .zip(&mut self.second_moment)
        {
            *m = self.beta1 * *m + (1.0 - self.beta1) * g;
            *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
            let denominator = (*v / correction2).sqrt() + self.epsilon;
            *p = *p * decay - step_size * *m / denominator;
        }
    }
}

/// Scales `gradient` so its L2 norm is at most `max_norm`; returns the norm before scaling
/// (NaN or infinite when the gradient is, which the caller treats as divergence).
pub(crate) fn clip_gradient(gradient: &mut [f32], max_norm: f32) -> f32 {
    let norm = gradient
        .iter()
        .map(|&g| f64::from(g) * f64::from(g))
        .sum::<f64>()
        .sqrt() as f32;
    if norm.is_finite() && norm > max_norm {
        let scale = max_norm / norm;
        gradient.iter_mut().for_each(|g| *g *= scale);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_parameter_by_the_learning_rate_against_its_gradient_sign() {
        let mut adam = AdamW::new(3, 0.0);
        let mut params = [1.0f32, -2.0, 0.5];
        adam.step(&mut params, &[0.3, -4.0, 0.0], 0.01);
        assert!((params[0] - 0.99).abs() < 1e-6);
        assert!((params[1] + 1.99).abs() < 1e-6);
        assert_eq!(params[2], 0.5);
    }

    #[test]
    fn minimises_a_quadratic() {
        let mut adam = AdamW::new(2, 0.0);
        let mut params = [3.0f32, -1.5];
        for _ in 0..2000 {
            let gradient = [2.0 * (params[0] - 1.0), 8.0 * (params[1] + 0.5)];
            adam.step(&mut params, &gradient, 0.01);
        }
        assert!(
            (params[0] - 1.0).abs() < 1e-3 && (params[1] + 0.5).abs() < 1e-3,
            "{params:?}"
        );
    }

    #[test]
    fn clipping_bounds_the_norm_and_reports_it() {
        let mut g = [3.0f32, 4.0];
        assert_eq!(clip_gradient(&mut g, 1.0), 5.0);
        assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
        let mut small = [0.1f32, 0.1];
        clip_gradient(&mut small, 1.0);
        assert_eq!(small, [0.1, 0.1]);
        assert!(clip_gradient(&mut [f32::NAN, 1.0], 1.0).is_nan());
    }
}
