//! Linear-phase FIR oversampling by 2 or 4 around a per-sample closure (waveshapers).
//! Audio-thread safe: buffers are allocated in `Oversampler::new` only.

use std::f64::consts::PI;

/// Delay line that keeps its newest `len` values contiguous, newest first, so an FIR is a
/// plain dot product (storage is doubled to avoid wrapping).
#[derive(Clone, Debug)]
struct History {
    buffer: Vec<f32>,
    len: usize,
    position: usize,
}

impl History {
    fn new(len: usize) -> Self {
        Self {
            buffer: vec![0.0; 2 * len],
            len,
            position: 0,
        }
    }

    #[inline]
    fn push(&mut self, x: f32) {
        self.position = if self.position == 0 {
            self.len - 1
        } else {
            self.position - 1
        };
        self.buffer[self.position] = x;
        self.buffer[self.position + self.len] = x;
    }

    #[inline]
    fn newest_first(&self) -> &[f32] {
        &self.buffer[self.position..self.position + self.len]
    }

    fn reset(&mut self) {
        self.buffer.fill(0.0);
        self.position = 0;
    }
}

/// One linear-phase 2x stage: polyphase interpolator and decimator sharing one halfband
/// lowpass (Kaiser-windowed sinc, cutoff at a quarter of the high rate).
#[derive(Clone, Debug)]
struct HalfbandStage {
    /// Taps split by phase: `phases[p][j] = 2 * h[2j + p]` (interpolation gain included).
    phases: [Vec<f32>; 2],
    taps: Vec<f32>,
    up: History,
    down: History,
}

/// Zeroth-order modified Bessel function of the first kind (series), for the Kaiser window.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    for k in 1..64 {
        term *= (x / (2.0 * k as f64)).powi(2);
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

impl HalfbandStage {
    fn new(len: usize, kaiser_beta: f64) -> Self {
        debug_assert!(len % 2 == 1);
        let center = (len - 1) as f64 / 2.0;
        let mut taps: Vec<f64> = (0..len)
            .map(|k| {
                let t = k as f64 - center;
                let sinc = if t == 0.0 { 0.5 } else { (0.5 * PI * t).sin() / (PI * t) };
                let r = t / center;
                sinc * bessel_i0(kaiser_beta * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(kaiser_beta)
            })
            .collect();
        let sum: f64 = taps.iter().sum();
        taps.iter_mut().for_each(|h| *h /= sum);
        let phase = |p: usize| {
            taps.iter()
                .skip(p)
                .step_by(2)
                .map(|&h| (2.0 * h) as f32)
                .collect::<Vec<_>>()
        };
        let phases = [phase(0), phase(1)];
        let up = History::new(phases[0].len());
        // One extra slot: the decimator keeps the even (older) phase, see `downsample`.
        Self {
            phases,
            taps: taps.iter().map(|&h| h as f32).collect(),
            up,
            down: History::new(len + 1),
        }
    }

    /// One input sample in, two high-rate samples out (older first).
    #[inline]
    fn upsample(&mut self, x: f32) -> [f32; 2] {
        self.up.push(x);
        let history = self.up.newest_first();
        let dot = |taps: &[f32]| taps.iter().zip(history).map(|(h, v)| h * v).sum::<f32>();
        [dot(&self.phases[0]), dot(&self.phases[1])]
    }

    /// Two high-rate samples in (older first), one output sample out: the filter output at
    /// the older sample's time, so the interpolator and decimator delays add up to a whole
    /// number of low-rate samples.
    #[inline]
    fn downsample(&mut self, pair: [f32; 2]) -> f32 {
        self.down.push(pair[0]);
        self.down.push(pair[1]);
        self.taps
            .iter()
            .zip(&self.down.newest_first()[1..])
            .map(|(h, v)| h * v)
            .sum()
    }

    fn reset(&mut self) {
        self.up.reset();
        self.down.reset();
    }
}

/// Linear-phase FIR oversampler by 2 or 4 (cascaded halfband stages): each input sample is
/// interpolated, a closure runs once per oversampled sample (a waveshaper, say), and the
/// result is filtered and decimated back. Latency: [`Oversampler::latency_samples`].
#[derive(Clone, Debug)]
pub struct Oversampler {
    /// Outer stage (base rate <-> 2x) and, for 4x, the inner stage (2x <-> 4x).
    outer: HalfbandStage,
    inner: Option<HalfbandStage>,
}

/// Taps of the base <-> 2x halfband (passband flat to ~0.36 of the base rate, ~70 dB stop).
const OUTER_TAPS: usize = 31;
/// Taps of the 2x <-> 4x halfband (a wide transition suffices there); `≡ 1 (mod 4)` keeps
/// the total latency a whole number of base-rate samples.
const INNER_TAPS: usize = 17;
const KAISER_BETA: f64 = 7.0;

impl Oversampler {
    /// An oversampler by `factor` (2 or 4; anything else panics: it is a design constant).
    pub fn new(factor: usize) -> Self {
        let outer = HalfbandStage::new(OUTER_TAPS, KAISER_BETA);
        let inner = match factor {
            2 => None,
            4 => Some(HalfbandStage::new(INNER_TAPS, KAISER_BETA)),
            _ => panic!("oversampling factor must be 2 or 4, got {factor}"),
        };
        Self { outer, inner }
    }

    /// The oversampling factor (2 or 4).
    pub fn factor(&self) -> usize {
        if self.inner.is_some() {
            4
        } else {
            2
        }
    }

    /// Delay of the up/down round trip, in base-rate samples (15 at 2x, 19 at 4x).
    pub fn latency_samples(&self) -> usize {
        (OUTER_TAPS - 1) / 2 + if self.inner.is_some() { (INNER_TAPS - 1) / 4 } else { 0 }
    }

    /// Processes one base-rate sample: upsample, run `shaper` on each oversampled sample in
    /// time order, downsample.
    #[inline]
    pub fn process_sample(&mut self, x: f32, mut shaper: impl FnMut(f32) -> f32) -> f32 {
        let wide = self.outer.upsample(x);
        let shaped = match &mut self.inner {
            None => [shaper(wide[0]), shaper(wide[1])],
            Some(inner) => {
                let mut pair = [0.0; 2];
                for (slot, v) in pair.iter_mut().zip(wide) {
                    let [a, b] = inner.upsample(v);
                    let shaped = [shaper(a), shaper(b)];
                    *slot = inner.downsample(shaped);
                }
                pair
            }
        };
        self.outer.downsample(shaped)
    }

    /// Processes a block; `input` and `output` must have the same length.
    pub fn process(&mut self, input: &[f32], output: &mut [f32], mut shaper: impl FnMut(f32) -> f32) {
        debug_assert_eq!(input.len(), output.len());
        for (x, y) in input.iter().zip(output.iter_mut()) {
            *y = self.process_sample(*x, &mut shaper);
        }
    }

    /// Clears all filter history.
    pub fn reset(&mut self) {
        self.outer.reset();
        if let Some(inner) = &mut self.inner {
            inner.reset();
        }
    }
}
