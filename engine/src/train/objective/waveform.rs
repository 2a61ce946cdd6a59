//! Time-domain objective terms (ESR, first-order pre-emphasis ESR, DC) with their gradients.
//! Trainer thread.
//!
//! Each function returns the term's value and adds `weight * d value / d prediction` to
//! `gradient`. Sums are accumulated in `f64`.

use super::EPSILON;

/// `Σ(p-t)² / (Σt² + ε)` over the whole batch.
pub(super) fn esr(prediction: &[f32], target: &[f32], weight: f32, gradient: &mut [f32]) -> f32 {
    let (error_energy, target_energy) = prediction
        .iter()
        .zip(target)
        .fold((0.0f64, 0.0f64), |(e, s), (&p, &t)| {
            let error = (p - t) as f64;
            (e + error * error, s + (t as f64) * (t as f64))
        });
    let denominator = target_energy + EPSILON;
    let scale = (2.0 * weight as f64 / denominator) as f32;
    for ((g, &p), &t) in gradient.iter_mut().zip(prediction).zip(target) {
        *g += scale * (p - t);
    }
    (error_energy / denominator) as f32
}

/// ESR of both signals pre-emphasised per row by `y[n] = x[n] - c·x[n-1]`, `n ≥ 1` (each row
/// loses its first sample, as in the candle loss).
pub(super) fn esr_preemph(
    prediction: &[f32],
    target: &[f32],
    samples_per_row: usize,
    coefficient: f32,
    weight: f32,
    gradient: &mut [f32],
) -> f32 {
    let c = coefficient;
    let (mut error_energy, mut target_energy) = (0.0f64, 0.0f64);
    for (p_row, t_row) in prediction
        .chunks_exact(samples_per_row)
        .zip(target.chunks_exact(samples_per_row))
    {
        for n in 1..samples_per_row {
            let error = (p_row[n] - t_row[n]) - c * (p_row[n - 1] - t_row[n - 1]);
            let emphasised = t_row[n] - c * t_row[n - 1];
            error_energy += (error as f64) * (error as f64);
            target_energy += (emphasised as f64) * (emphasised as f64);
        }
    }
    let denominator = target_energy + EPSILON;
    let scale = (2.0 * weight as f64 / denominator) as f32;
    // d/de[n] of Σ e'[m]² with e'[m] = e[m] - c·e[m-1] is 2·(e'[n] - c·e'[n+1]), where e'[0]
    // and e'[N] do not exist (read 0).
    for ((p_row, t_row), g_row) in prediction
        .chunks_exact(samples_per_row)
        .zip(target.chunks_exact(samples_per_row))
        .zip(gradient.chunks_exact_mut(samples_per_row))
    {
        let emphasised_error = |n: usize| -> f32 {
            if n == 0 || n >= samples_per_row {
                0.0
            } else {
                (p_row[n] - t_row[n]) - c * (p_row[n - 1] - t_row[n - 1])
            }
        };
        for (n, g) in g_row.iter_mut().enumerate() {
            *g += scale * (emphasised_error(n) - c * emphasised_error(n + 1));
        }
    }
    (error_energy / denominator) as f32
}

/// `mean(p-t)² / (mean(t²) + ε)` over the whole batch (matches the candle loss).
pub(super) fn dc(prediction: &[f32], target: &[f32], weight: f32, gradient: &mut [f32]) -> f32 {
    let count = prediction.len().max(1) as f64;
    let (error_sum, target_energy) = prediction
        .iter()
        .zip(target)
        .fold((0.0f64, 0.0f64), |(e, s), (&p, &t)| {
            (e + (p - t) as f64, s + (t as f64) * (t as f64))
        });
    let mean_error = error_sum / count;
    let denominator = target_energy / count + EPSILON;
    let slope = (2.0 * weight as f64 * mean_error / (count * denominator)) as f32;
    for g in gradient.iter_mut() {
        *g += slope;
    }
    (mean_error * mean_error / denominator) as f32
}
