//! Shared DSP primitives (biquads, one-pole filters, pre-emphasis, FIR oversampling).
//! Safe on the audio thread: every type allocates only in its constructor.
//!
//! These exist once in the workspace; the reference amp, metrics and the plugin use them.

mod oversampler;

use std::f64::consts::PI;

pub use oversampler::Oversampler;

/// Returns `x`, or 0 when `x` is a denormal (magnitude below 1e-30) so feedback state
/// never decays into slow subnormal arithmetic.
#[inline]
pub fn flush_denormal(x: f32) -> f32 {
    if x.abs() < 1e-30 {
        0.0
    } else {
        x
    }
}

/// Returns `x` when it is finite, else 0 (NaN and ±Inf become silence).
#[inline]
pub fn sanitize(x: f32) -> f32 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// Converts a level in dB to a linear amplitude factor.
#[inline]
pub fn db_to_gain(gain_db: f32) -> f32 {
    10f32.powf(gain_db / 20.0)
}

/// Converts a linear amplitude factor to dB (floored at -300 dB for zero).
#[inline]
pub fn gain_to_db(gain: f32) -> f32 {
    20.0 * gain.abs().max(1e-15).log10()
}

/// `a / b` for complex numbers given as `(re, im)`.
fn complex_divide(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let d = (b.0 * b.0 + b.1 * b.1).max(1e-300);
    ((a.0 * b.0 + a.1 * b.1) / d, (a.1 * b.0 - a.0 * b.1) / d)
}

/// Normalised biquad coefficients (`a0` divided out), designed in f64 from the RBJ
/// "Audio EQ Cookbook" formulas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BiquadCoefficients {
    /// Feed-forward taps.
    pub b: [f32; 3],
    /// Feedback taps `a1`, `a2` (with `a0 = 1`).
    pub a: [f32; 2],
}

impl BiquadCoefficients {
    /// Pass-through (b = [1, 0, 0], a = [0, 0]).
    pub const IDENTITY: Self = Self {
        b: [1.0, 0.0, 0.0],
        a: [0.0, 0.0],
    };

    fn from_raw(b: [f64; 3], a: [f64; 3]) -> Self {
        let a0 = a[0];
        Self {
            b: [(b[0] / a0) as f32, (b[1] / a0) as f32, (b[2] / a0) as f32],
            a: [(a[1] / a0) as f32, (a[2] / a0) as f32],
        }
    }

    /// `(cos w0, alpha)` for a corner at `frequency_hz` with quality `q`.
    fn omega(sample_rate_hz: f32, frequency_hz: f32, q: f32) -> (f64, f64) {
        let nyquist_guard = 0.499 * sample_rate_hz as f64;
        let f = (frequency_hz as f64).clamp(1e-3, nyquist_guard);
        let w0 = 2.0 * PI * f / sample_rate_hz as f64;
        (w0.cos(), w0.sin() / (2.0 * (q as f64).max(1e-3)))
    }

    /// Second-order lowpass with corner `cutoff_hz` and quality `q` (0.707: Butterworth).
    pub fn lowpass(sample_rate_hz: f32, cutoff_hz: f32, q: f32) -> Self {
        let (c, alpha) = Self::omega(sample_rate_hz, cutoff_hz, q);
        Self::from_raw(
            [(1.0 - c) / 2.0, 1.0 - c, (1.0 - c) / 2.0],
            [1.0 + alpha, -2.0 * c, 1.0 - alpha],
        )
    }

    /// Second-order highpass with corner `cutoff_hz` and quality `q`.
    pub fn highpass(sample_rate_hz: f32, cutoff_hz: f32, q: f32) -> Self {
        let (c, alpha) = Self::omega(sample_rate_hz, cutoff_hz, q);
        Self::from_raw(
            [(1.0 + c) / 2.0, -(1.0 + c), (1.0 + c) / 2.0],
            [1.0 + alpha, -2.0 * c, 1.0 - alpha],
        )
    }

    /// Peaking bell at `center_hz` with quality `q` and `gain_db` at the centre.
    pub fn peaking(sample_rate_hz: f32, center_hz: f32, q: f32, gain_db: f32) -> Self {
        let (c, alpha) = Self::omega(sample_rate_hz, center_hz, q);
        let a = 10f64.powf(gain_db as f64 / 40.0);
        Self::from_raw(
            [1.0 + alpha * a, -2.0 * c, 1.0 - alpha * a],
            [1.0 + alpha / a, -2.0 * c, 1.0 - alpha / a],
        )
    }

    /// Low shelf: `gain_db` below `corner_hz` (the half-gain point), 0 dB above; `q` 0.707
    /// gives the steepest slope without overshoot.
    pub fn low_shelf(sample_rate_hz: f32, corner_hz: f32, q: f32, gain_db: f32) -> Self {
        let (c, alpha) = Self::omega(sample_rate_hz, corner_hz, q);
        let a = 10f64.powf(gain_db as f64 / 40.0);
        let s = 2.0 * a.sqrt() * alpha;
        Self::from_raw(
            [
                a * ((a + 1.0) - (a - 1.0) * c + s),
                2.0 * a * ((a - 1.0) - (a + 1.0) * c),
                a * ((a + 1.0) - (a - 1.0) * c - s),
            ],
            [
                (a + 1.0) + (a - 1.0) * c + s,
                -2.0 * ((a - 1.0) + (a + 1.0) * c),
                (a + 1.0) + (a - 1.0) * c - s,
            ],
        )
    }

    /// High shelf: `gain_db` above `corner_hz` (the half-gain point), 0 dB below.
    pub fn high_shelf(sample_rate_hz: f32, corner_hz: f32, q: f32, gain_db: f32) -> Self {
        let (c, alpha) = Self::omega(sample_rate_hz, corner_hz, q);
        let a = 10f64.powf(gain_db as f64 / 40.0);
        let s = 2.0 * a.sqrt() * alpha;
        Self::from_raw(
            [
                a * ((a + 1.0) + (a - 1.0) * c + s),
                -2.0 * a * ((a - 1.0) + (a + 1.0) * c),
                a * ((a + 1.0) + (a - 1.0) * c - s),
            ],
            [
                (a + 1.0) - (a - 1.0) * c + s,
                2.0 * ((a - 1.0) - (a + 1.0) * c),
                (a + 1.0) - (a - 1.0) * c - s,
            ],
        )
    }

    /// Analytic complex response `(re, im)` at `frequency_hz`.
    pub fn response(&self, sample_rate_hz: f32, frequency_hz: f32) -> (f64, f64) {
        let w = 2.0 * PI * frequency_hz as f64 / sample_rate_hz as f64;
        let [b0, b1, b2] = self.b.map(f64::from);
        let [a1, a2] = self.a.map(f64::from);
        // H = (b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2) with z^-k = cos kw - i sin kw.
        let num = (
            b0 + b1 * w.cos() + b2 * (2.0 * w).cos(),
            -(b1 * w.sin() + b2 * (2.0 * w).sin()),
        );
        let den = (
            1.0 + a1 * w.cos() + a2 * (2.0 * w).cos(),
            -(a1 * w.sin() + a2 * (2.0 * w).sin()),
        );
        complex_divide(num, den)
    }

    /// Analytic magnitude response at `frequency_hz`, in dB.
    pub fn magnitude_db(&self, sample_rate_hz: f32, frequency_hz: f32) -> f32 {
        let (re, im) = self.response(sample_rate_hz, frequency_hz);
        (10.0 * (re * re + im * im).max(1e-300).log10()) as f32
    }

    /// Analytic phase response at `frequency_hz`, in radians (-π..π).
    pub fn phase_rad(&self, sample_rate_hz: f32, frequency_hz: f32) -> f64 {
        let (re, im) = self.response(sample_rate_hz, frequency_hz);
        im.atan2(re)
    }
}

/// A biquad filter in transposed direct form II with its own state.
#[derive(Clone, Debug)]
pub struct Biquad {
    coefficients: BiquadCoefficients,
    z1: f32,
    z2: f32,
}

impl Default for Biquad {
    fn default() -> Self {
        Self::new(BiquadCoefficients::IDENTITY)
    }
}

impl Biquad {
    /// A filter with the given coefficients and cleared state.
    pub fn new(coefficients: BiquadCoefficients) -> Self {
        Self {
            coefficients,
            z1: 0.0,
            z2: 0.0,
        }
    }

    /// See [`BiquadCoefficients::lowpass`].
    pub fn lowpass(sample_rate_hz: f32, cutoff_hz: f32, q: f32) -> Self {
        Self::new(BiquadCoefficients::lowpass(sample_rate_hz, cutoff_hz, q))
    }

    /// See [`BiquadCoefficients::highpass`].
    pub fn highpass(sample_rate_hz: f32, cutoff_hz: f32, q: f32) -> Self {
        Self::new(BiquadCoefficients::highpass(sample_rate_hz, cutoff_hz, q))
    }

    /// See [`BiquadCoefficients::peaking`].
    pub fn peaking(sample_rate_hz: f32, center_hz: f32, q: f32, gain_db: f32) -> Self {
        Self::new(BiquadCoefficients::peaking(sample_rate_hz, center_hz, q, gain_db))
    }

    /// See [`BiquadCoefficients::low_shelf`].
    pub fn low_shelf(sample_rate_hz: f32, corner_hz: f32, q: f32, gain_db: f32) -> Self {
        Self::new(BiquadCoefficients::low_shelf(sample_rate_hz, corner_hz, q, gain_db))
    }

    /// See [`BiquadCoefficients::high_shelf`].
    pub fn high_shelf(sample_rate_hz: f32, corner_hz: f32, q: f32, gain_db: f32) -> Self {
        Self::new(BiquadCoefficients::high_shelf(sample_rate_hz, corner_hz, q, gain_db))
    }

    /// The current coefficients.
    pub fn coefficients(&self) -> BiquadCoefficients {
        self.coefficients
    }

    /// Replaces the coefficients, keeping the state (for smooth parameter changes).
    pub fn set_coefficients(&mut self, coefficients: BiquadCoefficients) {
        self.coefficients = coefficients;
    }

    /// Filters one sample.
    #[inline]
    pub fn process_sample(&mut self, x: f32) -> f32 {
        let BiquadCoefficients { b, a } = self.coefficients;
        let y = b[0] * x + self.z1;
        self.z1 = flush_denormal(b[1] * x - a[0] * y + self.z2);
        self.z2 = flush_denormal(b[2] * x - a[1] * y);
        y
    }

    /// Filters a buffer in place.
    pub fn process_in_place(&mut self, buffer: &mut [f32]) {
        for x in buffer {
            *x = self.process_sample(*x);
        }
    }

    /// Clears the state (silence history).
    pub fn reset(&mut self) {
        self.z1 = 0.0;
        self.z2 = 0.0;
    }
}

/// Whether a [`OnePole`] passes lows or highs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnePoleKind {
    /// 6 dB/octave lowpass (also an exponential smoother).
    Lowpass,
    /// 6 dB/octave highpass (input minus the lowpass).
    Highpass,
}

/// First-order (6 dB/octave) filter with an exact exponential-decay pole.
#[derive(Clone, Debug)]
pub struct OnePole {
    kind: OnePoleKind,
    coefficient: f32,
    state: f32,
}

impl OnePole {
    /// A filter with corner `cutoff_hz` at `sample_rate_hz`.
    pub fn new(kind: OnePoleKind, sample_rate_hz: f32, cutoff_hz: f32) -> Self {
        let mut filter = Self {
            kind,
            coefficient: 1.0,
            state: 0.0,
        };
        filter.set_cutoff(sample_rate_hz, cutoff_hz);
        filter
    }

    /// A smoother whose step response reaches 63 % after `time_ms`.
    pub fn smoother(sample_rate_hz: f32, time_ms: f32) -> Self {
        let mut filter = Self {
            kind: OnePoleKind::Lowpass,
            coefficient: 1.0,
            state: 0.0,
        };
        filter.coefficient = 1.0 - (-1000.0 / (time_ms.max(1e-3) * sample_rate_hz)).exp();
        filter
    }

    /// Moves the corner to `cutoff_hz`, keeping the state.
    pub fn set_cutoff(&mut self, sample_rate_hz: f32, cutoff_hz: f32) {
        let f = cutoff_hz.clamp(1e-3, 0.49 * sample_rate_hz);
        self.coefficient = 1.0 - (-2.0 * std::f32::consts::PI * f / sample_rate_hz).exp();
    }

    /// Analytic phase response at `frequency_hz`, in radians.
    pub fn phase_rad(&self, sample_rate_hz: f32, frequency_hz: f32) -> f64 {
        let w = 2.0 * PI * frequency_hz as f64 / sample_rate_hz as f64;
        let a = self.coefficient as f64;
        // Lowpass a / (1 - (1-a) z^-1); highpass 1 - lowpass.
        let low = complex_divide((a, 0.0), (1.0 - (1.0 - a) * w.cos(), (1.0 - a) * w.sin()));
        let (re, im) = match self.kind {
            OnePoleKind::Lowpass => low,
            OnePoleKind::Highpass => (1.0 - low.0, -low.1),
        };
        im.atan2(re)
    }

    /// Filters one sample.
    #[inline]
    pub fn process_sample(&mut self, x: f32) -> f32 {
        self.state = flush_denormal(self.state + self.coefficient * (x - self.state));
        match self.kind {
            OnePoleKind::Lowpass => self.state,
            OnePoleKind::Highpass => x - self.state,
        }
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.state = 0.0;
    }
}

/// First-order pre-emphasis `y[n] = x[n] - coefficient * x[n-1]` (a gentle high boost used
/// by the loss and metrics so high frequencies count).
#[derive(Clone, Debug)]
pub struct PreEmphasis {
    coefficient: f32,
    previous: f32,
}

impl PreEmphasis {
    /// A filter with the given coefficient (0.95 is usual) and silent history.
    pub fn new(coefficient: f32) -> Self {
        Self {
            coefficient,
            previous: 0.0,
        }
    }

    /// Filters one sample.
    #[inline]
    pub fn process_sample(&mut self, x: f32) -> f32 {
        let y = x - self.coefficient * self.previous;
        self.previous = x;
        y
    }

    /// Filters a buffer in place.
    pub fn process_in_place(&mut self, buffer: &mut [f32]) {
        for x in buffer {
            *x = self.process_sample(*x);
        }
    }

    /// Clears the history.
    pub fn reset(&mut self) {
        self.previous = 0.0;
    }
}

#[cfg(test)]
mod tests;
