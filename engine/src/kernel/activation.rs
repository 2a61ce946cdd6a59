//! Vectorisable `tanh` and `sigmoid` shared by the streaming kernels (audio thread) and
//! the WaveNet's candle activation ops (trainer thread).
//!
//! `std`'s `tanh` is a scalar library call; these are straight-line arithmetic the compiler
//! turns into SIMD. Both go through one `exp` (Cody-Waite range reduction, a degree-7
//! Taylor polynomial, exponent bits) and stay within 2.5e-7 of the exact function (absolute),
//! far below the golden tests' tolerance. NaN propagates, so a diverged
//! training run still shows up as NaN; the kernel never feeds NaN (it sanitises its input and
//! profiles hold only finite weights).

use super::simd::Simd;

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

/// [`exp_clamped`] on every lane of `x` (callers clamp), with fused multiply-adds where
/// `S` has them. `SHORT` evaluates the polynomial by Estrin's scheme (three dependent steps
/// instead of eight, one more multiply) for latency-bound callers.
#[inline(always)]
unsafe fn exp_clamped_v<S: Simd, const SHORT: bool>(x: S::V) -> S::V {
    let magic = S::splat(ROUND_MAGIC);
    let k = S::sub(S::mul_add(x, S::splat(LOG2_E), magic), magic);
    let r = S::mul_add(k, S::splat(-LN2_HIGH), x);
    let r = S::mul_add(k, S::splat(-LN2_LOW), r);
    let c = |v: f32| S::splat(v);
    let p = if SHORT {
        let r2 = S::mul(r, r);
        let r4 = S::mul(r2, r2);
        let p01 = S::mul_add(r, c(1.0), c(1.0));
        let p23 = S::mul_add(r, c(1.0 / 6.0), c(1.0 / 2.0));
        let p45 = S::mul_add(r, c(1.0 / 120.0), c(1.0 / 24.0));
        let p67 = S::mul_add(r, c(1.0 / 5040.0), c(1.0 / 720.0));
        let p03 = S::mul_add(r2, p23, p01);
        let p47 = S::mul_add(r2, p67, p45);
        S::mul_add(r4, p47, p03)
    } else {
        let mut p = c(1.0 / 5040.0);
        for v in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 1.0 / 2.0, 1.0, 1.0] {
            p = S::mul_add(p, r, c(v));
        }
        p
    };
    S::mul(p, S::pow2i(k))
}

/// `1 / x`: a division, or for `SHORT` the instruction set's short-latency reciprocal.
#[inline(always)]
unsafe fn reciprocal<S: Simd, const SHORT: bool>(x: S::V) -> S::V {
    if SHORT {
        S::recip(x)
    } else {
        S::div(S::splat(1.0), x)
    }
}

#[inline(always)]
unsafe fn tanh_lanes<S: Simd, const SHORT: bool>(x: S::V) -> S::V {
    let x = S::min(S::max(x, S::splat(-TANH_LIMIT)), S::splat(TANH_LIMIT));
    let e = exp_clamped_v::<S, SHORT>(S::add(x, x));
    let one = S::splat(1.0);
    S::mul_add(S::splat(-2.0), reciprocal::<S, SHORT>(S::add(e, one)), one)
}

#[inline(always)]
unsafe fn sigmoid_lanes<S: Simd, const SHORT: bool>(x: S::V) -> S::V {
    let x = S::min(S::max(x, S::splat(-EXP_LIMIT)), S::splat(EXP_LIMIT));
    let one = S::splat(1.0);
    reciprocal::<S, SHORT>(S::add(one, exp_clamped_v::<S, SHORT>(S::sub(S::splat(0.0), x))))
}

/// [`tanh`] on every lane (NaN lanes give -1: the kernels never feed NaN). For throughput.
#[inline(always)]
pub(crate) unsafe fn tanh_v<S: Simd>(x: S::V) -> S::V {
    tanh_lanes::<S, false>(x)
}

/// [`sigmoid`] on every lane (NaN lanes give 0: the kernels never feed NaN). For throughput.
#[inline(always)]
pub(crate) unsafe fn sigmoid_v<S: Simd>(x: S::V) -> S::V {
    sigmoid_lanes::<S, false>(x)
}

/// [`tanh_v`] with about half the latency (Estrin's scheme, refined hardware reciprocal) and
/// a few more operations, for the LSTM's recurrence; differs from it by rounding only.
#[inline(always)]
pub(crate) unsafe fn tanh_v_short<S: Simd>(x: S::V) -> S::V {
    tanh_lanes::<S, true>(x)
}

/// [`sigmoid_v`] with about half the latency, like [`tanh_v_short`].
#[inline(always)]
pub(crate) unsafe fn sigmoid_v_short<S: Simd>(x: S::V) -> S::V {
    sigmoid_lanes::<S, true>(x)
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
