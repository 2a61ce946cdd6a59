//! All of a model's trainable tensors in one flat vector, in the order of the config's
//! `tensor_shapes()`, so the optimiser, gradient clipping and checkpoints work on plain
//! slices whatever computes the gradient. Trainer thread.

use anyhow::{Context, Result};

use crate::model::ModelConfig;
use crate::profile::Weights;

/// Where each named tensor lives in the flat parameter vector.
#[derive(Clone, Debug)]
pub(crate) struct ParamLayout {
    entries: Vec<(String, Vec<usize>, usize)>,
    total: usize,
}

impl ParamLayout {
    /// The layout of `config`'s tensors.
    pub fn new(config: &ModelConfig) -> Self {
        let mut total = 0;
        let entries = config
            .tensor_shapes()
            .into_iter()
            .map(|(name, shape)| {
                let offset = total;
                total += shape.iter().product::<usize>();
                (name, shape, offset)
            })
            .collect();
        ParamLayout { entries, total }
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Offset of tensor `name`; panics if the config has no such tensor (a programming error).
    pub fn offset(&self, name: &str) -> usize {
        self.entries
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, offset)| *offset)
            .unwrap_or_else(|| panic!("no tensor '{name}' in the model"))
    }

    /// `(name, shape, offset)` of every tensor.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[usize], usize)> {
        self.entries.iter().map(|(n, s, o)| (n.as_str(), s.as_slice(), *o))
    }

    /// `weights` as one flat vector, checking every tensor's shape.
    pub fn flatten(&self, weights: &Weights) -> Result<Vec<f32>> {
        let mut flat = vec![0.0; self.total];
        for (name, shape, offset) in self.entries() {
            let data = weights.get(name, shape).with_context(|| format!("tensor '{name}'"))?;
            flat[offset..offset + data.len()].copy_from_slice(data);
        }
        Ok(flat)
    }

    /// The named tensors held in `flat`.
    pub fn to_weights(&self, flat: &[f32]) -> Weights {
        let mut weights = Weights::default();
        for (name, shape, offset) in self.entries() {
            let count: usize = shape.iter().product();
            weights.insert(name, shape.to_vec(), flat[offset..offset + count].to_vec());
        }
        weights
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Size;

    #[test]
    fn flatten_and_back_preserves_every_tensor() {
        for config in [
            ModelConfig::preset("wavenet", Size::Nano, 2).unwrap(),
            ModelConfig::preset("lstm", Size::Feather, 0).unwrap(),
        ] {
            let weights = Weights::random(&config, 3, 0.5);
            let layout = ParamLayout::new(&config);
            let flat = layout.flatten(&weights).unwrap();
            assert_eq!(flat.len(), config.parameter_count());
            assert_eq!(layout.to_weights(&flat), weights);
        }
    }
}
