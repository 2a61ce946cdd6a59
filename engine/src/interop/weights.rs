//! JSON reading helpers shared by the importers (CLI / GUI thread): typed field access with
//! errors that name the field, a cursor over NAM's flat weight list, and nested-array
//! matrices as RTNeural and PyTorch JSON store them.

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

/// Field `key` of `object` as a non-negative integer.
pub(crate) fn usize_field(object: &Value, key: &str, what: &str) -> Result<usize> {
    object
        .get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .with_context(|| format!("{what}: missing or non-integer '{key}'"))
}

/// Field `key` of `object` as a boolean.
pub(crate) fn bool_field(object: &Value, key: &str, what: &str) -> Result<bool> {
    object
        .get(key)
        .and_then(Value::as_bool)
        .with_context(|| format!("{what}: missing or non-boolean '{key}'"))
}

/// Field `key` of `object` as a number.
pub(crate) fn f64_field(object: &Value, key: &str, what: &str) -> Result<f64> {
    object
        .get(key)
        .and_then(Value::as_f64)
        .with_context(|| format!("{what}: missing or non-numeric '{key}'"))
}

/// True when `key` is absent or null.
pub(crate) fn is_absent(object: &Value, key: &str) -> bool {
    object.get(key).is_none_or(Value::is_null)
}

/// A number as a finite `f32`.
pub(crate) fn finite_f32(value: &Value, what: &str) -> Result<f32> {
    let v = value.as_f64().with_context(|| format!("{what}: expected a number"))?;
    ensure!(v.is_finite(), "{what}: non-finite value");
    Ok(v as f32)
}

/// A flat array of numbers of exactly `len` values.
pub(crate) fn vector(value: &Value, len: usize, what: &str) -> Result<Vec<f32>> {
    let items = value.as_array().with_context(|| format!("{what}: expected an array"))?;
    ensure!(
        items.len() == len,
        "{what}: expected {len} values, found {}",
        items.len()
    );
    items.iter().map(|v| finite_f32(v, what)).collect()
}

/// A nested array `[rows][cols]` as row-major values.
pub(crate) fn matrix(value: &Value, rows: usize, cols: usize, what: &str) -> Result<Vec<f32>> {
    let items = value
        .as_array()
        .with_context(|| format!("{what}: expected an array of rows"))?;
    ensure!(
        items.len() == rows,
        "{what}: expected {rows} rows of {cols}, found {} rows",
        items.len()
    );
    let mut out = Vec::with_capacity(rows * cols);
    for row in items {
        out.extend(vector(row, cols, what)?);
    }
    Ok(out)
}

/// `[rows, cols]` row-major to `[cols, rows]` row-major.
pub(crate) fn transposed(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// Cursor over NAM's flat weight list, consumed in the order the architecture defines.
pub(crate) struct FlatWeights {
    values: Vec<f32>,
    position: usize,
}

impl FlatWeights {
    /// Reads the `weights` array of a NAM file.
    pub(crate) fn from_json(value: &Value) -> Result<Self> {
        let items = value.as_array().context("'weights' is not an array")?;
        let values = items
            .iter()
            .enumerate()
            .map(|(i, v)| finite_f32(v, &format!("weight {i}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(FlatWeights { values, position: 0 })
    }

    /// The next `count` values, for the tensor described by `what`.
    pub(crate) fn take(&mut self, count: usize, what: &str) -> Result<Vec<f32>> {
        let end = self.position + count;
        if end > self.values.len() {
            bail!(
                "the file has {} weights, too few for the architecture (ran out at {what})",
                self.values.len()
            );
        }
        let out = self.values[self.position..end].to_vec();
        self.position = end;
        Ok(out)
    }

    /// Checks every weight was used.
    pub(crate) fn finish(&self) -> Result<()> {
        ensure!(
            self.position == self.values.len(),
            "the file has {} weights but the architecture uses {}",
            self.values.len(),
            self.position
        );
        Ok(())
    }
}
