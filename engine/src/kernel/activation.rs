//! Vectorisable `tanh` and `sigmoid` shared by the streaming kernels (audio thread) and
//! the WaveNet's candle activation ops (trainer thread).
//!
//! `std`'s `tanh` is a scalar library call; these are straight-line arithmetic the compiler
//! turns into SIMD. Both go through one `exp` (Cody-Waite range reduction, a degree-7
//! Taylor polynomial, exponent bits) and stay within 2.5e-7 of the exact function (absolute),
//! far below the golden tests' tolerance. NaN propagates, so a diverged
//! training run still shows up as NaN; the kernel never feeds NaN (it sanitises its input and
//! profiles hold only finite weights).

/// `1.5 * 2^23`: adding and subtracting it rounds an `f32` below `2^22` to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split so that `k * LN2_HIGH` is exact for the `k` used here.
const LN2_HIGH: f32 = 355.0 / 512.0;
const LN2_LOW: f32 = -2.121_944_4e-4;
/// `1 - 2 / (e^(2x) + 1)` rounds to exactly 1 in `f32` from here on.
const TANH_LIMIT: f32 = 10.0;
/// `exp` of anything beyond this overflows or flushes to zero in the sigmoid anyway.
const EXP_LIMIT: f32 = 80.0;

/// `e^x` for `|x| <= EXP_LIMIT` (callers clamp).
#[inline(always)]
fn exp_clamped(x: f32) -> f32 {
    let k = (x * LOG2_E + ROUND_MAGIC) - ROUND_MAGIC;
    let r = x - k * LN2_HIGH - k * LN2_LOW;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((k as i32 + 127) << 23) as u32);
    p * scale
}

/// Hyperbolic tangent, absolute error below 2.5e-7; NaN stays NaN.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let x = x.clamp(-TANH_LIMIT, TANH_LIMIT);
    let e = exp_clamped(2.0 * x);
    1.0 - 2.0 / (e + 1.0)
}

/// Logistic sigmoid `1 / (1 + e^-x)`, absolute error below 2.5e-7; NaN stays NaN.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    let x = x.clamp(-EXP_LIMIT, EXP_LIMIT);
    1.0 / (1.0 + exp_clamped(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_and_sigmoid_match_f64_within_2_5e7() {
        let mut worst_tanh = 0.0f64;
        let mut worst_sigmoid = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4; // -20..20
            let exact_tanh = (x as f64).tanh();
            let exact_sigmoid = 1.0 / (1.0 + (-(x as f64)).exp());
            worst_tanh = worst_tanh.max((tanh(x) as f64 - exact_tanh).abs());
            worst_sigmoid = worst_sigmoid.max((sigmoid(x) as f64 - exact_sigmoid).abs());
        }
        assert!(worst_tanh <= 2.5e-7, "tanh max abs error {worst_tanh:e}");
        assert!(worst_sigmoid <= 2.5e-7, "sigmoid max abs error {worst_sigmoid:e}");
    }

    #[test]
    fn extremes_saturate_and_nan_propagates() {
        assert_eq!(tanh(1e30), 1.0);
        assert_eq!(tanh(-1e30), -1.0);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(sigmoid(1e30), 1.0);
        assert!(sigmoid(-1e30) >= 0.0 && sigmoid(-1e30) < 1e-30);
        assert!(sigmoid(f32::NAN).is_nan());
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
    }
}
