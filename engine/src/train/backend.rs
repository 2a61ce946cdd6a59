//! What computes a training step's predictions and gradients: a hand-derived pass (the
//! WaveNet's, the compressor's) split over the workers of the session's pool, or candle's
//! autograd for the recurrent models (whose parallel kernels run on that same pool, installed
//! around the run). Both work on the
//! flat parameter vector of [`ParamLayout`]. Trainer thread and the pool's workers.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use super::compressor_grad::{CompressorGrad, CompressorWorkspace};
use super::params::ParamLayout;
use super::wavenet_grad::{WavenetGrad, Workspace};
use crate::model::{Model, ModelConfig};

/// One batch of training segments.
pub(crate) struct Batch {
    /// Segments.
    pub rows: usize,
    /// Input samples per segment (context, warm-up and scored samples).
    pub input_samples: usize,
    /// Audio, `[rows][input_samples]`.
    pub inputs: Vec<f32>,
    /// Normalised knobs, `[rows][num_knobs]`.
    pub knobs: Vec<f32>,
    /// Targets over the scored samples, `[rows][segment]`.
    pub targets: Vec<f32>,
}

/// A hand-derived pass over one segment at a time.
pub(crate) trait RowPass: Sync {
    /// One segment's buffers.
    type Workspace: Send;
    /// Loads a segment's audio and knobs and predicts it.
    fn forward_row(&self, params: &[f32], ws: &mut Self::Workspace, audio: &[f32], knobs: &[f32]);
    /// The last forward's prediction.
    fn output<'a>(&self, ws: &'a Self::Workspace) -> &'a [f32];
    /// Adds the segment's gradient into `gradient`.
    fn backward_row(&self, params: &[f32], ws: &mut Self::Workspace, d_output: &[f32], gradient: &mut [f32]);
}

impl RowPass for WavenetGrad {
    type Workspace = Workspace;
    fn forward_row(&self, params: &[f32], ws: &mut Workspace, audio: &[f32], knobs: &[f32]) {
        ws.audio.copy_from_slice(audio);
        ws.knobs.copy_from_slice(knobs);
        self.forward(params, ws);
    }
    fn output<'a>(&self, ws: &'a Workspace) -> &'a [f32] {
        &ws.output
    }
    fn backward_row(&self, params: &[f32], ws: &mut Workspace, d_output: &[f32], gradient: &mut [f32]) {
        self.backward(params, ws, d_output, gradient);
    }
}

impl RowPass for CompressorGrad {
    type Workspace = CompressorWorkspace;
    fn forward_row(&self, params: &[f32], ws: &mut CompressorWorkspace, audio: &[f32], knobs: &[f32]) {
        ws.audio.copy_from_slice(audio);
        ws.knobs.copy_from_slice(knobs);
        self.forward(params, ws);
    }
    fn output<'a>(&self, ws: &'a CompressorWorkspace) -> &'a [f32] {
        &ws.output
    }
    fn backward_row(&self, params: &[f32], ws: &mut CompressorWorkspace, d_output: &[f32], gradient: &mut [f32]) {
        self.backward(params, ws, d_output, gradient);
    }
}

/// A hand-derived pass with one workspace per segment of the batch.
pub(crate) struct HandBackend<P: RowPass> {
    pass: P,
    workspaces: Vec<P::Workspace>,
    /// Per share of the batch, its part of the gradient.
    partial_gradients: Vec<Vec<f32>>,
}

/// Candle's model and autograd (the recurrent models).
pub(crate) struct CandleBackend {
    model: Model,
    /// Variables in the flat layout's order, with their offsets and shapes.
    vars: Vec<(Var, usize, Vec<usize>)>,
    device: Device,
    num_knobs: usize,
    /// Leading outputs of each segment that only warm the state up.
    warmup_samples: usize,
    /// The last forward's scored prediction, kept for the backward pass.
    prediction: Option<Tensor>,
}

/// Computes predictions and gradients.
pub(crate) enum Backend {
    /// The WaveNet's hand pass.
    Hand(HandBackend<WavenetGrad>),
    /// The compressor's hand pass.
    Compressor(HandBackend<CompressorGrad>),
    /// See [`CandleBackend`].
    Candle(CandleBackend),
}

impl Backend {
    /// The backend for `model`, batches of `rows` segments of `segment` scored samples, on
    /// `threads` shares of the batch (the hand pass only; candle's kernels use the installed pool).
    pub fn new(
        model: &ModelConfig,
        layout: &ParamLayout,
        rows: usize,
        segment: usize,
        warmup_samples: usize,
        threads: usize,
    ) -> Result<Self> {
        Ok(match model {
            ModelConfig::Wavenet(config) => {
                let pass = WavenetGrad::new(config, layout);
                let threads = threads.clamp(1, rows);
                Backend::Hand(HandBackend {
                    workspaces: (0..rows).map(|_| pass.workspace(segment)).collect(),
                    partial_gradients: vec![vec![0.0; layout.len()]; threads],
                    pass,
                })
            }
            ModelConfig::Compressor(config) => {
                let pass = CompressorGrad::new(config, layout, warmup_samples);
                let threads = threads.clamp(1, rows);
                Backend::Compressor(HandBackend {
                    workspaces: (0..rows).map(|_| pass.workspace(segment, config.num_knobs)).collect(),
                    partial_gradients: vec![vec![0.0; layout.len()]; threads],
                    pass,
                })
            }
            _ => {
                let device = Device::Cpu;
                let varmap = VarMap::new();
                let candle_model = Model::new(model, VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
                let data = varmap
                    .data()
                    .lock()
                    .map_err(|_| anyhow::anyhow!("variable map lock poisoned"))?;
                let vars = layout
                    .entries()
                    .map(|(name, shape, offset)| {
                        let var = data.get(name).with_context(|| format!("no variable '{name}'"))?;
                        Ok((var.clone(), offset, shape.to_vec()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                drop(data);
                Backend::Candle(CandleBackend {
                    model: candle_model,
                    vars,
                    device,
                    num_knobs: model.num_knobs(),
                    warmup_samples,
                    prediction: None,
                })
            }
        })
    }

    /// Predicts every segment of `batch` into `prediction`, `[rows][segment]`.
    pub fn forward(&mut self, params: &[f32], batch: &Batch, prediction: &mut [f32]) -> Result<()> {
        match self {
            Backend::Hand(hand) => {
                hand.forward(params, batch, prediction);
                Ok(())
            }
            Backend::Compressor(hand) => {
                hand.forward(params, batch, prediction);
                Ok(())
            }
            Backend::Candle(candle) => candle.forward(params, batch, prediction),
        }
    }

    /// Writes into `gradient` the gradient of a loss whose derivative with respect to the
    /// last forward's prediction is `d_prediction`.
    pub fn backward(&mut self, params: &[f32], d_prediction: &[f32], gradient: &mut [f32]) -> Result<()> {
        match self {
            Backend::Hand(hand) => {
                hand.backward(params, d_prediction, gradient);
                Ok(())
            }
            Backend::Compressor(hand) => {
                hand.backward(params, d_prediction, gradient);
                Ok(())
            }
            Backend::Candle(candle) => candle.backward(d_prediction, gradient),
        }
    }
}

impl<P: RowPass> HandBackend<P> {
    /// Segments per share of the batch.
    fn chunk(&self) -> usize {
        self.workspaces.len().div_ceil(self.partial_gradients.len())
    }

    fn forward(&mut self, params: &[f32], batch: &Batch, prediction: &mut [f32]) {
        let chunk = self.chunk();
        let pass = &self.pass;
        let segment = prediction.len() / batch.rows;
        let num_knobs = batch.knobs.len() / batch.rows;
        rayon::scope(|scope| {
            for (t, (workspaces, outputs)) in self
                .workspaces
                .chunks_mut(chunk)
                .zip(prediction.chunks_mut(chunk * segment))
                .enumerate()
            {
                scope.spawn(move |_| {
                    for (i, (ws, output)) in workspaces.iter_mut().zip(outputs.chunks_mut(segment)).enumerate() {
                        let row = t * chunk + i;
                        let audio = &batch.inputs[row * batch.input_samples..][..batch.input_samples];
                        let knobs = &batch.knobs[row * num_knobs..][..num_knobs];
                        pass.forward_row(params, ws, audio, knobs);
                        output.copy_from_slice(pass.output(ws));
                    }
                });
            }
        });
    }

    fn backward(&mut self, params: &[f32], d_prediction: &[f32], gradient: &mut [f32]) {
        let chunk = self.chunk();
        let pass = &self.pass;
        let segment = d_prediction.len() / self.workspaces.len();
        rayon::scope(|scope| {
            for ((workspaces, d_outputs), partial) in self
                .workspaces
                .chunks_mut(chunk)
                .zip(d_prediction.chunks(chunk * segment))
                .zip(self.partial_gradients.iter_mut())
            {
                scope.spawn(move |_| {
                    partial.fill(0.0);
                    for (ws, d_output) in workspaces.iter_mut().zip(d_outputs.chunks(segment)) {
                        pass.backward_row(params, ws, d_output, partial);
                    }
                });
            }
        });
        gradient.fill(0.0);
        let used = self.workspaces.len().div_ceil(chunk);
        for partial in &self.partial_gradients[..used] {
            for (g, &p) in gradient.iter_mut().zip(partial) {
                *g += p;
            }
        }
    }
}

impl CandleBackend {
    fn forward(&mut self, params: &[f32], batch: &Batch, prediction: &mut [f32]) -> Result<()> {
        for (var, offset, shape) in &self.vars {
            let count: usize = shape.iter().product();
            var.set(&Tensor::from_slice(
                &params[*offset..offset + count],
                shape.as_slice(),
                &self.device,
            )?)?;
        }
        let (rows, length, knobs) = (batch.rows, batch.input_samples, self.num_knobs);
        let mut input = Vec::with_capacity(rows * (1 + knobs) * length);
        for row in 0..rows {
            input.extend_from_slice(&batch.inputs[row * length..][..length]);
            for &knob in &batch.knobs[row * knobs..][..knobs] {
                input.extend(std::iter::repeat_n(knob, length));
            }
        }
        let input = Tensor::from_vec(input, (rows, 1 + knobs, length), &self.device)?;
        let segment = prediction.len() / rows;
        let output = self.model.forward(&input)?.narrow(1, self.warmup_samples, segment)?;
        prediction.copy_from_slice(&output.flatten_all()?.to_vec1::<f32>()?);
        self.prediction = Some(output);
        Ok(())
    }

    fn backward(&mut self, d_prediction: &[f32], gradient: &mut [f32]) -> Result<()> {
        let prediction = self.prediction.take().context("backward without a forward pass")?;
        let d = Tensor::from_slice(d_prediction, prediction.dims(), &self.device)?;
        // d/d(prediction) of sum(prediction * d) is d: candle carries it back to the weights.
        let grads = (prediction * d)?.sum_all()?.backward()?;
        for (var, offset, shape) in &self.vars {
            let count: usize = shape.iter().product();
            let target = &mut gradient[*offset..offset + count];
            match grads.get(var.as_tensor()) {
                Some(g) => target.copy_from_slice(&g.flatten_all()?.to_vec1::<f32>()?),
                None => target.fill(0.0),
            }
        }
        Ok(())
    }
}
