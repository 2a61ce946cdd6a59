//! AIDA-X and Proteus model files: recurrent (LSTM or GRU) layers plus a dense head, with
//! the input audio optionally skipped to the output and extra input channels as knobs.
//! Import only. CLI / GUI thread.
//!
//! Two JSON layouts are read:
//! - RTNeural's keras-style layout that AIDA-X loads: `in_shape` `[null, null, inputs]`,
//!   `layers` (`lstm` / `gru` layers then one `dense`), optional `in_skip` (0 or 1),
//!   `in_gain` / `out_gain` (dB) and `metadata` (`name`, `samplerate`). Kernels are stored
//!   transposed (`[in][gates]`); LSTM gates i, f, c, o with one summed bias; GRU gates in
//!   Keras order z, r, h with input and recurrent biases as two rows (`reset_after`).
//! - The Automated-GuitarAmpModelling trainer's own layout (Proteus loads it): `model_data`
//!   (`SimpleRNN` hyperparameters, `skip`) plus the PyTorch `state_dict` (`rec.*`, `lin.*`).
//!
//! AIDA-X plays `(model(g_in x) + skip * g_in x) * g_out`; gains fold into the weights.

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use super::weights::{f64_field, is_absent, matrix, transposed, usize_field, vector};
use super::ImportOptions;
use crate::model::{GruConfig, LstmConfig, ModelConfig, MAX_KNOBS};
use crate::profile::{KnobDescriptor, Profile, ProfileMeta, Weights, FORMAT_VERSION};

/// Recurrent cell type.
#[derive(Clone, Copy, PartialEq)]
enum Cell {
    Lstm,
    Gru,
}

/// A recurrent model read from either layout, in Doppel's tensor names and layout.
struct Recurrent {
    cell: Cell,
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
    skip: bool,
    weights: Weights,
}

/// Translates a parsed AIDA-X (keras-style) or Proteus (`model_data`) file into a profile.
/// Inputs beyond the audio become knobs `knob_1`.. with range 0..1 (default 0.5).
pub fn import(file: &Value, options: &ImportOptions) -> Result<Profile> {
    let (mut model, format) = if file.get("model_data").is_some() {
        (read_state_dict(file)?, "Proteus / Automated-GuitarAmpModelling")
    } else {
        (read_keras(file)?, "AIDA-X")
    };
    apply_gains(file, &mut model)?;
    let num_knobs = model.input_size - 1;
    let config = match model.cell {
        Cell::Lstm => ModelConfig::Lstm(LstmConfig {
            num_knobs,
            hidden_size: model.hidden_size,
            num_layers: model.num_layers,
            skip: model.skip,
        }),
        Cell::Gru => ModelConfig::Gru(GruConfig {
            num_knobs,
            hidden_size: model.hidden_size,
            num_layers: model.num_layers,
            skip: model.skip,
        }),
    };
    let metadata = file.get("metadata").filter(|m| m.is_object());
    let rate = metadata.and_then(|m| m.get("samplerate")).and_then(|r| match r {
        Value::String(s) => s.trim().parse::<f64>().ok(),
        other => other.as_f64(),
    });
    let knobs = (1..=num_knobs)
        .map(|k| KnobDescriptor {
            name: format!("knob_{k}"),
            min: 0.0,
            max: 1.0,
            default: 0.5,
            unit: String::new(),
        })
        .collect();
    let meta = ProfileMeta {
        format_version: FORMAT_VERSION,
        name: options.resolve_name(
            metadata.and_then(|m| m.get("name")).and_then(Value::as_str),
            "AIDA-X import",
        ),
        notes: format!(
            "Imported from a {format} {} file.",
            config.architecture().to_uppercase()
        ),
        model: config,
        sample_rate: options.resolve_sample_rate(rate)?,
        knobs,
        latency_samples: 0,
        training: None,
        accuracy: None,
        calibration: None,
    };
    Profile::new(meta, model.weights)
}

/// Checks the model takes the audio plus at most [`MAX_KNOBS`] knob inputs.
fn check_inputs(input_size: usize, format: &str) -> Result<()> {
    ensure!(
        (1..=1 + MAX_KNOBS).contains(&input_size),
        "unsupported {format} model with {input_size} inputs (audio + at most {MAX_KNOBS} knobs)"
    );
    Ok(())
}

/// RTNeural's keras-style layout.
fn read_keras(file: &Value) -> Result<Recurrent> {
    let input_size = file
        .get("in_shape")
        .and_then(Value::as_array)
        .and_then(|s| s.last())
        .and_then(Value::as_u64)
        .context("AIDA-X file has no readable 'in_shape'")? as usize;
    check_inputs(input_size, "AIDA-X")?;
    let layers = file
        .get("layers")
        .and_then(Value::as_array)
        .context("AIDA-X file has no 'layers'")?;
    let Some((dense, recurrent)) = layers.split_last() else {
        bail!("AIDA-X file has no layers");
    };
    ensure!(!recurrent.is_empty(), "AIDA-X model has no recurrent layer");
    let kind = |layer: &Value| layer.get("type").and_then(Value::as_str).unwrap_or("?").to_string();
    let cell = match kind(&recurrent[0]).as_str() {
        "lstm" => Cell::Lstm,
        "gru" => Cell::Gru,
        other => bail!("unsupported AIDA-X layer type '{other}' (Doppel plays lstm or gru layers then one dense)"),
    };
    let hidden = layer_width(&recurrent[0])?;
    let mut weights = Weights::default();
    for (l, layer) in recurrent.iter().enumerate() {
        let t = kind(layer);
        ensure!(
            t == kind(&recurrent[0]),
            "unsupported AIDA-X layer type '{t}' after '{}' (Doppel plays one kind of recurrent layer, then one dense)",
            kind(&recurrent[0])
        );
        ensure!(
            layer_width(layer)? == hidden,
            "unsupported AIDA-X recurrent layers of different sizes"
        );
        let activation = layer.get("activation").and_then(Value::as_str).unwrap_or("");
        ensure!(
            activation.is_empty(),
            "unsupported AIDA-X {t} activation '{activation}'"
        );
        let input = if l == 0 { input_size } else { hidden };
        let w = layer
            .get("weights")
            .and_then(Value::as_array)
            .context("AIDA-X layer has no weights")?;
        ensure!(
            w.len() == 3,
            "AIDA-X {t} layer {l} has {} weight arrays, expected 3",
            w.len()
        );
        let what = |part: &str| format!("AIDA-X {t} layer {l} {part}");
        match cell {
            Cell::Lstm => {
                let kernel = matrix(&w[0], input, 4 * hidden, &what("kernel"))?;
                let recurrent_kernel = matrix(&w[1], hidden, 4 * hidden, &what("recurrent kernel"))?;
                weights.insert(
                    format!("lstm.{l}.weight_ih"),
                    vec![4 * hidden, input],
                    transposed(&kernel, input, 4 * hidden),
                );
                weights.insert(
                    format!("lstm.{l}.weight_hh"),
                    vec![4 * hidden, hidden],
                    transposed(&recurrent_kernel, hidden, 4 * hidden),
                );
                weights.insert(
                    format!("lstm.{l}.bias"),
                    vec![4 * hidden],
                    vector(&w[2], 4 * hidden, &what("bias"))?,
                );
            }
            Cell::Gru => {
                let rows = 3 * hidden;
                let kernel = keras_to_torch_gates(&matrix(&w[0], input, rows, &what("kernel"))?, hidden);
                let recurrent_kernel =
                    keras_to_torch_gates(&matrix(&w[1], hidden, rows, &what("recurrent kernel"))?, hidden);
                ensure!(
                    w[2].as_array().is_some_and(|b| b.first().is_some_and(Value::is_array)),
                    "unsupported AIDA-X GRU with a single bias vector (Keras reset_after=False)"
                );
                let bias = keras_to_torch_gates(&matrix(&w[2], 2, rows, &what("bias"))?, hidden);
                weights.insert(
                    format!("gru.{l}.weight_ih"),
                    vec![rows, input],
                    transposed(&kernel, input, rows),
                );
                weights.insert(
                    format!("gru.{l}.weight_hh"),
                    vec![rows, hidden],
                    transposed(&recurrent_kernel, hidden, rows),
                );
                weights.insert(format!("gru.{l}.bias_ih"), vec![rows], bias[..rows].to_vec());
                weights.insert(format!("gru.{l}.bias_hh"), vec![rows], bias[rows..].to_vec());
            }
        }
    }
    let t = kind(dense);
    ensure!(
        t == "dense",
        "unsupported AIDA-X layer type '{t}' as the last layer (expected dense)"
    );
    let activation = dense.get("activation").and_then(Value::as_str).unwrap_or("");
    ensure!(
        activation.is_empty() || activation == "linear",
        "unsupported AIDA-X dense activation '{activation}'"
    );
    ensure!(
        layer_width(dense)? == 1,
        "unsupported AIDA-X dense layer with more than one output"
    );
    let w = dense
        .get("weights")
        .and_then(Value::as_array)
        .context("AIDA-X dense layer has no weights")?;
    ensure!(w.len() == 2, "unsupported AIDA-X dense layer without bias");
    weights.insert(
        "head.weight",
        vec![1, hidden],
        matrix(&w[0], hidden, 1, "AIDA-X dense kernel")?,
    );
    weights.insert("head.bias", vec![1], vector(&w[1], 1, "AIDA-X dense bias")?);
    Ok(Recurrent {
        cell,
        input_size,
        hidden_size: hidden,
        num_layers: recurrent.len(),
        skip: skip_flag(file, "in_skip")?,
        weights,
    })
}

/// A layer's output width: the last entry of its `shape`.
fn layer_width(layer: &Value) -> Result<usize> {
    layer
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|s| s.last())
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .context("AIDA-X layer has no readable 'shape'")
}

/// Reorders the gate blocks along each row from Keras' (z, r, h) to PyTorch's (r, z, n).
fn keras_to_torch_gates(rows_of_gates: &[f32], hidden: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows_of_gates.len());
    for row in rows_of_gates.chunks_exact(3 * hidden) {
        out.extend_from_slice(&row[hidden..2 * hidden]);
        out.extend_from_slice(&row[..hidden]);
        out.extend_from_slice(&row[2 * hidden..]);
    }
    out
}

/// A skip count: absent = 0; 0 or 1 accepted.
fn skip_flag(object: &Value, key: &str) -> Result<bool> {
    if is_absent(object, key) {
        return Ok(false);
    }
    let skip = object
        .get(key)
        .and_then(|v| v.as_u64().or_else(|| v.as_bool().map(u64::from)))
        .with_context(|| format!("unreadable '{key}'"))?;
    ensure!(
        skip <= 1,
        "unsupported {key} {skip} (only the audio input can be skipped to the output)"
    );
    Ok(skip == 1)
}

/// The trainer's `model_data` + PyTorch `state_dict` layout.
fn read_state_dict(file: &Value) -> Result<Recurrent> {
    let data = &file["model_data"];
    let what = "Proteus model_data";
    let model = data.get("model").and_then(Value::as_str).unwrap_or("?");
    ensure!(
        model == "SimpleRNN",
        "unsupported Proteus model '{model}' (Doppel plays SimpleRNN)"
    );
    let cell = match data.get("unit_type").and_then(Value::as_str).unwrap_or("?") {
        "LSTM" => Cell::Lstm,
        "GRU" => Cell::Gru,
        other => bail!("unsupported Proteus unit_type '{other}' (Doppel plays LSTM and GRU)"),
    };
    let input = usize_field(data, "input_size", what)?;
    check_inputs(input, "Proteus")?;
    let hidden = usize_field(data, "hidden_size", what)?;
    let num_layers = usize_field(data, "num_layers", what)?;
    let outputs = usize_field(data, "output_size", what)?;
    ensure!(outputs == 1, "unsupported Proteus output_size {outputs}");
    let sd = file.get("state_dict").context("Proteus file has no 'state_dict'")?;
    let tensor = |name: &str| {
        sd.get(name)
            .with_context(|| format!("Proteus state_dict has no '{name}'"))
    };
    let gates = if cell == Cell::Lstm { 4 } else { 3 } * hidden;
    let mut weights = Weights::default();
    for l in 0..num_layers {
        let in_l = if l == 0 { input } else { hidden };
        let w_ih = matrix(tensor(&format!("rec.weight_ih_l{l}"))?, gates, in_l, "rec.weight_ih")?;
        let w_hh = matrix(tensor(&format!("rec.weight_hh_l{l}"))?, gates, hidden, "rec.weight_hh")?;
        let b_ih = vector(tensor(&format!("rec.bias_ih_l{l}"))?, gates, "rec.bias_ih")?;
        let b_hh = vector(tensor(&format!("rec.bias_hh_l{l}"))?, gates, "rec.bias_hh")?;
        let prefix = if cell == Cell::Lstm { "lstm" } else { "gru" };
        weights.insert(format!("{prefix}.{l}.weight_ih"), vec![gates, in_l], w_ih);
        weights.insert(format!("{prefix}.{l}.weight_hh"), vec![gates, hidden], w_hh);
        if cell == Cell::Lstm {
            let bias = b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect();
            weights.insert(format!("lstm.{l}.bias"), vec![gates], bias);
        } else {
            weights.insert(format!("gru.{l}.bias_ih"), vec![gates], b_ih);
            weights.insert(format!("gru.{l}.bias_hh"), vec![gates], b_hh);
        }
    }
    weights.insert(
        "head.weight",
        vec![1, hidden],
        matrix(tensor("lin.weight")?, 1, hidden, "lin.weight")?,
    );
    let has_bias = data.get("bias_fl").and_then(Value::as_bool).unwrap_or(true);
    let bias = if has_bias {
        vector(tensor("lin.bias")?, 1, "lin.bias")?
    } else {
        vec![0.0]
    };
    weights.insert("head.bias", vec![1], bias);
    Ok(Recurrent {
        cell,
        input_size: input,
        hidden_size: hidden,
        num_layers,
        skip: skip_flag(data, "skip")?,
        weights,
    })
}

/// Folds AIDA-X's `in_gain` / `out_gain` (dB) into the first layer's audio column and the
/// head. With a skip connection that is exact only when the two gains cancel.
fn apply_gains(file: &Value, model: &mut Recurrent) -> Result<()> {
    let gain = |key: &str| -> Result<f32> {
        if is_absent(file, key) {
            return Ok(1.0);
        }
        Ok(10f64.powf(f64_field(file, key, "AIDA-X file")? / 20.0) as f32)
    };
    let (g_in, g_out) = (gain("in_gain")?, gain("out_gain")?);
    if g_in == 1.0 && g_out == 1.0 {
        return Ok(());
    }
    ensure!(
        !model.skip || (g_in * g_out - 1.0).abs() < 1e-6,
        "unsupported AIDA-X feature: in_gain / out_gain that do not cancel together with in_skip"
    );
    let (prefix, gates) = match model.cell {
        Cell::Lstm => ("lstm", 4 * model.hidden_size),
        Cell::Gru => ("gru", 3 * model.hidden_size),
    };
    let input = model.input_size;
    let name = format!("{prefix}.0.weight_ih");
    let mut w_ih = model.weights.get(&name, &[gates, input])?.to_vec();
    for row in w_ih.chunks_exact_mut(input) {
        row[0] *= g_in;
    }
    model.weights.insert(name, vec![gates, input], w_ih);
    for (name, shape) in [("head.weight", vec![1, model.hidden_size]), ("head.bias", vec![1])] {
        let scaled = model.weights.get(name, &shape)?.iter().map(|v| v * g_out).collect();
        model.weights.insert(name, shape, scaled);
    }
    Ok(())
}
