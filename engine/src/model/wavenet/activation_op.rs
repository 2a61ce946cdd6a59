//! candle ops for the WaveNet's `tanh` and `sigmoid` (trainer thread), using the same
//! vectorisable approximations as the streaming kernel
//! ([`crate::kernel::wavenet::activation`]).
//!
//! candle's own CPU `tanh` is a scalar libm call per element and dominated the model's
//! forward time; these run in SIMD over all cores, and the backward pass is one fused
//! `grad * f'(y)` computed from the saved output. Sharing the approximation with the kernel
//! also makes the golden tests compare like with like.

use std::sync::OnceLock;

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use crate::kernel::activation;

/// Elements below which one thread does the whole map (spawning costs more than it saves).
const MIN_ELEMENTS_PER_THREAD: usize = 1 << 15;

/// Which activation.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Tanh,
    Sigmoid,
}

impl Kind {
    fn forward(self, x: f32) -> f32 {
        match self {
            Kind::Tanh => activation::tanh(x),
            Kind::Sigmoid => activation::sigmoid(x),
        }
    }

    /// Derivative expressed through the output `y`.
    fn derivative(self, y: f32) -> f32 {
        match self {
            Kind::Tanh => 1.0 - y * y,
            Kind::Sigmoid => y * (1.0 - y),
        }
    }
}

/// `tanh` of every element (f32, CPU).
pub(crate) fn tanh(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Activation(Kind::Tanh))
}

/// `sigmoid` of every element (f32, CPU).
pub(crate) fn sigmoid(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Activation(Kind::Sigmoid))
}

fn worker_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(16))
}

/// `out[i] = f(i)` split over the available cores.
fn parallel_fill(out: &mut [f32], f: impl Fn(usize) -> f32 + Sync) {
    let threads = worker_threads().min(out.len() / MIN_ELEMENTS_PER_THREAD).max(1);
    let chunk = out.len().div_ceil(threads).max(1);
    let fill = |offset: usize, part: &mut [f32]| {
        for (i, o) in part.iter_mut().enumerate() {
            *o = f(offset + i);
        }
    };
    std::thread::scope(|scope| {
        let mut parts = out.chunks_mut(chunk).enumerate();
        let first = parts.next();
        for (index, part) in parts {
            let fill = &fill;
            scope.spawn(move || fill(index * chunk, part));
        }
        if let Some((_, part)) = first {
            fill(0, part);
        }
    });
}

/// The f32 values of a contiguous tensor (the public wrappers make inputs contiguous).
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: only f32 tensors are supported")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: input is not contiguous")
    };
    Ok(&data[start..end])
}

struct Activation(Kind);

impl CustomOp1 for Activation {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Tanh => "doppel-tanh",
            Kind::Sigmoid => "doppel-sigmoid",
        }
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let input = contiguous_f32(storage, layout, self.name())?;
        let mut out = vec![0.0f32; input.len()];
        let kind = self.0;
        parallel_fill(&mut out, |i| kind.forward(input[i]));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            grad_res
                .contiguous()?
                .apply_op2_no_bwd(&res.contiguous()?, &ActivationGrad(self.0))?,
        ))
    }
}

/// `grad * f'(y)` from the forward output `y`.
struct ActivationGrad(Kind);

impl CustomOp2 for ActivationGrad {
    fn name(&self) -> &'static str {
        "doppel-activation-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            bail!(
                "{}: gradient shape {:?} differs from output shape {:?}",
                self.name(),
                l1.shape(),
                l2.shape()
            );
        }
        let grad = contiguous_f32(s1, l1, self.name())?;
        let y = contiguous_f32(s2, l2, self.name())?;
        let mut out = vec![0.0f32; grad.len()];
        let kind = self.0;
        parallel_fill(&mut out, |i| grad[i] * kind.derivative(y[i]));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    #[test]
    fn forward_and_gradient_match_candle_builtins() {
        let device = Device::Cpu;
        // Large enough to be split over threads; includes a strided (transposed) input.
        let x = Var::from_tensor(&(Tensor::randn(0f32, 2.0, (300, 400), &device).unwrap())).unwrap();
        let weight = Tensor::randn(0f32, 1.0, (400, 300), &device).unwrap();
        for (ours, theirs) in [
            (tanh(&x.t().unwrap()).unwrap(), x.t().unwrap().tanh().unwrap()),
            (
                sigmoid(&x.t().unwrap()).unwrap(),
                candle_nn::ops::sigmoid(&x.t().unwrap()).unwrap(),
            ),
        ] {
            let diff = (&ours - &theirs)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff <= 2.5e-7, "forward max abs error {diff:e}");
            let g_ours = (ours * &weight).unwrap().sum_all().unwrap().backward().unwrap();
            let g_theirs = (theirs * &weight).unwrap().sum_all().unwrap().backward().unwrap();
            let (a, b) = (g_ours.get(&x).unwrap(), g_theirs.get(&x).unwrap());
            let diff = (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff <= 2e-6, "gradient max abs error {diff:e}");
        }
    }
}
