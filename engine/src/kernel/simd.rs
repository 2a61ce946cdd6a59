//! SIMD lane types for the streaming kernels (audio thread): one small trait, [`Simd`], with a
//! portable implementation and, on x86-64, AVX2 + FMA and AVX-512 ones.
//!
//! Kernels are written once, generic over [`Simd`], and instantiated inside a function compiled
//! for the matching CPU features (`#[target_feature]`); every method here is `inline(always)` so
//! the intrinsics end up inlined into that function. [`Isa::detect`] picks the widest set the
//! CPU supports, once, when a kernel is built.
//!
//! The vector `tanh` and `sigmoid` below are the formulas of [`super::activation`] evaluated
//! lane-wise (with fused multiply-adds where the CPU has them, so they differ from the scalar
//! ones by rounding only, well under 1e-6).

/// Instruction sets a kernel can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Plain Rust on 8-lane arrays; the compiler vectorises what it can. Runs anywhere.
    Portable,
    /// x86-64 AVX2 with FMA, 8 lanes.
    Avx2,
    /// x86-64 AVX-512 (foundation set), 16 lanes.
    Avx512,
}

impl Isa {
    /// The widest instruction set this CPU supports.
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Every instruction set this CPU can run, narrowest first (for tests comparing paths).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|&isa| isa as u8 <= best as u8)
            .collect()
    }
}

/// A vector of `LANES` `f32`s and the operations the kernels need.
///
/// # Safety
/// Implementations other than [`Portable`] may only be used inside code compiled for (and
/// running on) their instruction set. Pointer arguments must be valid for the lanes touched.
pub(crate) trait Simd: Copy {
    /// Lanes per vector.
    const LANES: usize;
    /// The vector.
    type V: Copy;
    /// Loads `LANES` values from `p`.
    unsafe fn load(p: *const f32) -> Self::V;
    /// Loads the first `n < LANES` values from `p`, the other lanes zero.
    unsafe fn load_n(p: *const f32, n: usize) -> Self::V;
    /// Stores all lanes to `p`.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Stores the first `n < LANES` lanes to `p`.
    unsafe fn store_n(p: *mut f32, v: Self::V, n: usize);
    /// Every lane `x`.
    unsafe fn splat(x: f32) -> Self::V;
    /// `a + b`.
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`.
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c` (fused where the instruction set has it).
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise `max(a, b)`; NaN in `a` gives `b`.
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise `min(a, b)`; NaN in `a` gives `b`.
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V;
    /// `2^k` for integer-valued `k` in `-126..=127`.
    unsafe fn pow2i(k: Self::V) -> Self::V;
    /// Sum of all lanes.
    unsafe fn reduce_add(v: Self::V) -> f32;
    /// `1 / x` within about two units in the last place, with short latency (a hardware
    /// estimate refined by one Newton step where the instruction set has one).
    unsafe fn recip(x: Self::V) -> Self::V;
}

/// Plain Rust vectors of 8 lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Portable;

const PORTABLE_LANES: usize = 8;

#[inline(always)]
fn lanewise(a: [f32; PORTABLE_LANES], b: [f32; PORTABLE_LANES], f: impl Fn(f32, f32) -> f32) -> [f32; PORTABLE_LANES] {
    std::array::from_fn(|i| f(a[i], b[i]))
}

impl Simd for Portable {
    const LANES: usize = PORTABLE_LANES;
    type V = [f32; PORTABLE_LANES];
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        std::ptr::read_unaligned(p.cast())
    }
    #[inline(always)]
    unsafe fn load_n(p: *const f32, n: usize) -> Self::V {
        std::array::from_fn(|i| if i < n { *p.add(i) } else { 0.0 })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        std::ptr::write_unaligned(p.cast(), v);
    }
    #[inline(always)]
    unsafe fn store_n(p: *mut f32, v: Self::V, n: usize) {
        for (i, &x) in v.iter().enumerate().take(n) {
            *p.add(i) = x;
        }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self::V {
        [x; PORTABLE_LANES]
    }
    #[inline(always)]
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V {
        lanewise(a, b, |x, y| x + y)
    }
    #[inline(always)]
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V {
        lanewise(a, b, |x, y| x - y)
    }
    #[inline(always)]
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V {
        lanewise(a, b, |x, y| x * y)
    }
    #[inline(always)]
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V {
        lanewise(a, b, |x, y| x / y)
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V {
        lanewise(a, b, |x, y| if x > y { x } else { y })
    }
    #[inline(always)]
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V {
        lanewise(a, b, |x, y| if x < y { x } else { y })
    }
    #[inline(always)]
    unsafe fn pow2i(k: Self::V) -> Self::V {
        k.map(|k| f32::from_bits(((k as i32 + 127) << 23) as u32))
    }
    #[inline(always)]
    unsafe fn reduce_add(v: Self::V) -> f32 {
        v.iter().sum()
    }
    #[inline(always)]
    unsafe fn recip(x: Self::V) -> Self::V {
        x.map(|x| 1.0 / x)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    // AVX-512 intrinsics are stable from Rust 1.89, the workspace's declared minimum.
    use super::Simd;
    use std::arch::x86_64::*;

    /// AVX2 + FMA, 8 lanes.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx2;

    /// Lane masks for partial AVX2 loads and stores: `MASKS[8 - n..]` enables `n` lanes.
    static AVX2_MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2_mask(n: usize) -> __m256i {
        _mm256_loadu_si256(AVX2_MASKS.as_ptr().add(8 - n).cast())
    }

    impl Simd for Avx2 {
        const LANES: usize = 8;
        type V = __m256;
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn load(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn load_n(p: *const f32, n: usize) -> __m256 {
            _mm256_maskload_ps(p, avx2_mask(n))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store_n(p: *mut f32, v: __m256, n: usize) {
            _mm256_maskstore_ps(p, avx2_mask(n), v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            _mm256_add_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn sub(a: __m256, b: __m256) -> __m256 {
            _mm256_sub_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            _mm256_mul_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn div(a: __m256, b: __m256) -> __m256 {
            _mm256_div_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn mul_add(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn max(a: __m256, b: __m256) -> __m256 {
            _mm256_max_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn min(a: __m256, b: __m256) -> __m256 {
            _mm256_min_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn pow2i(k: __m256) -> __m256 {
            let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)));
            _mm256_castsi256_ps(bits)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn reduce_add(v: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn recip(x: __m256) -> __m256 {
            // A 12-bit estimate plus one Newton step is no faster than this division on
            // 8 lanes and is off by up to 4 units in the last place.
            _mm256_div_ps(_mm256_set1_ps(1.0), x)
        }
    }

    /// AVX-512 foundation set, 16 lanes.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx512;

    #[inline(always)]
    fn avx512_mask(n: usize) -> __mmask16 {
        ((1u32 << n) - 1) as __mmask16
    }

    impl Simd for Avx512 {
        const LANES: usize = 16;
        type V = __m512;
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load_n(p: *const f32, n: usize) -> __m512 {
            _mm512_maskz_loadu_ps(avx512_mask(n), p)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn store_n(p: *mut f32, v: __m512, n: usize) {
            _mm512_mask_storeu_ps(p, avx512_mask(n), v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn sub(a: __m512, b: __m512) -> __m512 {
            _mm512_sub_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            _mm512_mul_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn div(a: __m512, b: __m512) -> __m512 {
            _mm512_div_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn mul_add(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn max(a: __m512, b: __m512) -> __m512 {
            _mm512_max_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn min(a: __m512, b: __m512) -> __m512 {
            _mm512_min_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn pow2i(k: __m512) -> __m512 {
            let bits = _mm512_slli_epi32::<23>(_mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)));
            _mm512_castsi512_ps(bits)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn reduce_add(v: __m512) -> f32 {
            _mm512_reduce_add_ps(v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn recip(x: __m512) -> __m512 {
            let y = _mm512_rcp14_ps(x);
            _mm512_fmadd_ps(y, _mm512_fnmadd_ps(x, y, _mm512_set1_ps(1.0)), y)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::activation;

    /// Runs `check::<S>()` for every instruction set this CPU has.
    fn for_each_isa(check: &dyn Fn(Isa)) {
        for isa in Isa::available() {
            check(isa);
        }
    }

    unsafe fn activations<S: Simd, const SHORT: bool>(x: &[f32], tanh_out: &mut [f32], sigmoid_out: &mut [f32]) {
        for ((x, t), s) in x
            .chunks_exact(S::LANES)
            .zip(tanh_out.chunks_exact_mut(S::LANES))
            .zip(sigmoid_out.chunks_exact_mut(S::LANES))
        {
            let v = S::load(x.as_ptr());
            if SHORT {
                S::store(t.as_mut_ptr(), activation::tanh_v_short::<S>(v));
                S::store(s.as_mut_ptr(), activation::sigmoid_v_short::<S>(v));
            } else {
                S::store(t.as_mut_ptr(), activation::tanh_v::<S>(v));
                S::store(s.as_mut_ptr(), activation::sigmoid_v::<S>(v));
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn activations_avx2<const SHORT: bool>(x: &[f32], t: &mut [f32], s: &mut [f32]) {
        activations::<Avx2, SHORT>(x, t, s)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn activations_avx512<const SHORT: bool>(x: &[f32], t: &mut [f32], s: &mut [f32]) {
        activations::<Avx512, SHORT>(x, t, s)
    }

    #[test]
    fn vector_activations_are_within_2_5e7_of_exact() {
        let x: Vec<f32> = (-320_000..320_000).map(|i| i as f32 * 1e-4).collect(); // -32..32
        for short in [false, true] {
            for_each_isa(&|isa| {
                let (mut t, mut s) = (vec![0.0; x.len()], vec![0.0; x.len()]);
                // SAFETY: `isa` is supported by this CPU; lengths are multiples of 16.
                unsafe {
                    match (isa, short) {
                        (Isa::Portable, false) => activations::<Portable, false>(&x, &mut t, &mut s),
                        (Isa::Portable, true) => activations::<Portable, true>(&x, &mut t, &mut s),
                        #[cfg(target_arch = "x86_64")]
                        (Isa::Avx2, false) => activations_avx2::<false>(&x, &mut t, &mut s),
                        #[cfg(target_arch = "x86_64")]
                        (Isa::Avx2, true) => activations_avx2::<true>(&x, &mut t, &mut s),
                        #[cfg(target_arch = "x86_64")]
                        (Isa::Avx512, false) => activations_avx512::<false>(&x, &mut t, &mut s),
                        #[cfg(target_arch = "x86_64")]
                        (Isa::Avx512, true) => activations_avx512::<true>(&x, &mut t, &mut s),
                        #[cfg(not(target_arch = "x86_64"))]
                        _ => unreachable!(),
                    }
                }
                let exact_tanh = |x: f32| (x as f64).tanh();
                let exact_sigmoid = |x: f32| 1.0 / (1.0 + (-(x as f64)).exp());
                let worst = |out: &[f32], f: &dyn Fn(f32) -> f64| {
                    x.iter()
                        .zip(out)
                        .map(|(&x, &y)| (y as f64 - f(x)).abs())
                        .fold(0.0, f64::max)
                };
                let (worst_t, worst_s) = (worst(&t, &exact_tanh), worst(&s, &exact_sigmoid));
                eprintln!("{isa:?} short {short}: tanh {worst_t:e} sigmoid {worst_s:e}");
                assert!(
                    worst_t <= 2.5e-7,
                    "{isa:?} short {short}: tanh max abs error {worst_t:e}"
                );
                assert!(
                    worst_s <= 2.5e-7,
                    "{isa:?} short {short}: sigmoid max abs error {worst_s:e}"
                );
            });
        }
    }

    #[test]
    fn partial_loads_and_stores_touch_only_n_lanes() {
        unsafe fn check<S: Simd>() {
            let src: Vec<f32> = (1..=32).map(|i| i as f32).collect();
            for n in 1..S::LANES {
                let v = S::load_n(src.as_ptr(), n);
                let mut dst = vec![-1.0f32; 32];
                S::store(dst.as_mut_ptr(), v);
                let expected: Vec<f32> = (0..S::LANES).map(|i| if i < n { src[i] } else { 0.0 }).collect();
                assert_eq!(&dst[..S::LANES], &expected[..], "load_n {n}");
                let mut dst = vec![-1.0f32; 32];
                S::store_n(dst.as_mut_ptr(), S::load(src.as_ptr()), n);
                assert_eq!(&dst[..n], &src[..n], "store_n {n}");
                assert!(dst[n..].iter().all(|&v| v == -1.0), "store_n {n} wrote past n");
            }
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn check_avx2() {
            check::<Avx2>()
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn check_avx512() {
            check::<Avx512>()
        }
        for_each_isa(&|isa| unsafe {
            match isa {
                Isa::Portable => check::<Portable>(),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => check_avx2(),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => check_avx512(),
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!(),
            }
        });
    }
}
