//! NAM WaveNet layout: config keys and flat weight order, for import and export (CLI / GUI
//! thread).
//!
//! Per layer array NAM stores the bias-free 1x1 `rechannel` `[C, in]`; per layer the dilated
//! `conv` weight `[mid, C, K]` (PyTorch order: out, in, tap; tap 0 is the oldest sample) and
//! bias `[mid]`, the bias-free `input_mixer` `[mid, condition]`, the `layer1x1` `[C, C]` and
//! bias `[C]`; then the `head_rechannel` `[head, C]` (+ bias `[head]`). After the last array
//! comes the head scale. `mid` is `C`, or `2C` when gated (first half tanh, second half
//! sigmoid). Doppel's tensors hold the same values in the same order, 1x1 kernels without
//! their trailing unit dimension.
//!
//! Newer NAM versions added per-layer activations, gating modes, bottlenecks, grouped
//! convolutions, head 1x1s, FiLM conditioning, wider head kernels, a post-head, condition
//! DSPs and slimmable / packed layouts; each is accepted only in the setting that equals
//! the classic layout, else rejected by name.

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use super::nam::{LEGACY_EXPORT_VERSION, NEW_EXPORT_VERSION};
use super::weights::{bool_field, is_absent, usize_field, FlatWeights};
use crate::model::{LayerArrayConfig, ModelConfig, WavenetConfig};
use crate::profile::Weights;

/// NAM's per-layer FiLM switches (newer versions); all must be off.
const FILM_KEYS: [&str; 8] = [
    "conv_pre_film",
    "conv_post_film",
    "input_mixin_pre_film",
    "input_mixin_post_film",
    "activation_pre_film",
    "activation_post_film",
    "layer1x1_post_film",
    "head1x1_post_film",
];

/// Reads a WaveNet `config` and its share of the flat weights.
pub(super) fn import(config: &Value, flat: &mut FlatWeights) -> Result<(ModelConfig, Weights)> {
    ensure!(
        is_absent(config, "head"),
        "unsupported NAM WaveNet feature: a post-head ('head' block after the layer arrays)"
    );
    ensure!(
        is_absent(config, "condition_dsp"),
        "unsupported NAM WaveNet feature: condition_dsp"
    );
    if !is_absent(config, "in_channels") {
        let channels = usize_field(config, "in_channels", "NAM WaveNet config")?;
        ensure!(
            channels == 1,
            "unsupported NAM WaveNet in_channels {channels} (Doppel plays mono)"
        );
    }
    let layers = config
        .get("layers")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .context("NAM WaveNet config has no 'layers'")?;
    let arrays = layers
        .iter()
        .enumerate()
        .map(|(i, layer)| parse_array(i, layer))
        .collect::<Result<Vec<_>>>()?;
    let mut weights = Weights::default();
    for (i, a) in arrays.iter().enumerate() {
        read_array_weights(i, a, flat, &mut weights)?;
    }
    let head_scale = flat.take(1, "head scale")?[0];
    let wavenet = WavenetConfig {
        num_knobs: 0,
        layer_arrays: arrays,
        head_scale,
    };
    wavenet.validate().context("NAM WaveNet layer arrays do not chain")?;
    Ok((ModelConfig::Wavenet(wavenet), weights))
}

/// One layer array's hyperparameters, with every newer NAM feature checked off.
fn parse_array(i: usize, layer: &Value) -> Result<LayerArrayConfig> {
    let what = format!("NAM WaveNet layer array {i}");
    let unsupported = |feature: &str| anyhow::anyhow!("unsupported NAM WaveNet feature in layer array {i}: {feature}");
    let input_size = usize_field(layer, "input_size", &what)?;
    let condition_size = usize_field(layer, "condition_size", &what)?;
    let channels = usize_field(layer, "channels", &what)?;
    if condition_size != 1 {
        return Err(unsupported(&format!(
            "condition_size {condition_size} (only the audio)"
        )));
    }
    if !is_absent(layer, "bottleneck") && usize_field(layer, "bottleneck", &what)? != channels {
        return Err(unsupported("a bottleneck different from channels"));
    }
    for key in ["groups_input", "groups_input_mixin"] {
        if !is_absent(layer, key) && usize_field(layer, key, &what)? != 1 {
            return Err(unsupported(&format!("grouped convolutions ({key})")));
        }
    }
    if let Some(l1x1) = layer.get("layer1x1").filter(|v| !v.is_null()) {
        if !bool_field(l1x1, "active", &what)? {
            return Err(unsupported("layers without layer1x1"));
        }
        if !is_absent(l1x1, "groups") && usize_field(l1x1, "groups", &what)? != 1 {
            return Err(unsupported("grouped layer1x1"));
        }
    }
    if let Some(h1x1) = layer.get("head1x1").filter(|v| !v.is_null()) {
        if bool_field(h1x1, "active", &what)? {
            return Err(unsupported("head1x1"));
        }
    }
    for key in FILM_KEYS {
        let active = match layer.get(key) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(film) => film.get("active").and_then(Value::as_bool).unwrap_or(true),
        };
        if active {
            return Err(unsupported(&format!("FiLM conditioning ({key})")));
        }
    }
    for key in ["slimmable", "packing"] {
        if !is_absent(layer, key) {
            return Err(unsupported(&format!("{key} layout")));
        }
    }
    let (head_size, head_bias) = match layer.get("head").filter(|v| !v.is_null()) {
        Some(head) => {
            let kernel = usize_field(head, "kernel_size", &what)?;
            if kernel != 1 {
                return Err(unsupported(&format!("head kernel_size {kernel} (only 1x1 heads)")));
            }
            (
                usize_field(head, "out_channels", &what)?,
                bool_field(head, "bias", &what)?,
            )
        }
        None => (
            usize_field(layer, "head_size", &what)?,
            bool_field(layer, "head_bias", &what)?,
        ),
    };
    let dilations: Vec<usize> = layer
        .get("dilations")
        .and_then(Value::as_array)
        .context(format!("{what}: missing 'dilations'"))?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).context(format!("{what}: bad dilation")))
        .collect::<Result<_>>()?;
    let n = dilations.len();
    let kernel_sizes = per_layer(layer, &["kernel_sizes", "kernel_size"], n, &what)?;
    let kernel_size = uniform(&kernel_sizes, |k| k.as_u64(), &what, "kernel sizes")?
        .context(format!("{what}: bad kernel size"))? as usize;
    let activations = per_layer(layer, &["activation"], n, &what)?;
    let primary = uniform(&activations, activation_name, &what, "activations")?
        .context(format!("{what}: unreadable activation"))?;
    let gated = gating(layer, n, &what)?;
    if primary != "Tanh" {
        return Err(unsupported(&format!(
            "activation '{primary}' (Doppel plays Tanh, and Tanh gated by Sigmoid)"
        )));
    }
    Ok(LayerArrayConfig {
        input_size,
        condition_size,
        channels,
        head_size,
        kernel_size,
        dilations,
        gated,
        head_bias,
    })
}

/// The first present key of `keys` as `n` per-layer values (a single value is repeated).
fn per_layer(layer: &Value, keys: &[&str], n: usize, what: &str) -> Result<Vec<Value>> {
    let value = keys
        .iter()
        .find_map(|k| layer.get(*k).filter(|v| !v.is_null()))
        .with_context(|| format!("{what}: missing '{}'", keys[0]))?;
    match value.as_array() {
        Some(items) => {
            ensure!(
                items.len() == n,
                "{what}: {} has {} entries for {n} layers",
                keys[0],
                items.len()
            );
            Ok(items.clone())
        }
        None => Ok(vec![value.clone(); n]),
    }
}

/// The one value all layers share, or an error naming the per-layer variation.
fn uniform<T: PartialEq + std::fmt::Debug>(
    values: &[Value],
    read: impl Fn(&Value) -> Option<T>,
    what: &str,
    name: &str,
) -> Result<Option<T>> {
    let mut read_values = values.iter().map(read);
    let first = read_values.next().flatten();
    if read_values.any(|v| v != first) {
        bail!("unsupported NAM WaveNet feature in {what}: {name} that differ between layers");
    }
    Ok(first)
}

/// An activation's name: `"Tanh"` or `{"type": "Tanh", ...}` (`{"name": ...}` also read).
/// Parameterised activations keep their parameters in the name so they compare unequal.
fn activation_name(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => {
            let name = m.get("type").or_else(|| m.get("name"))?.as_str()?;
            let extra = m.len() > 1;
            Some(if extra {
                format!("{name} {value}")
            } else {
                name.to_string()
            })
        }
        _ => None,
    }
}

/// Whether the array is gated: NAM's per-layer `gating_mode` ("none" / "gated" with a
/// Sigmoid secondary), or the legacy `gated` flag. Blended or mixed gating is unsupported.
fn gating(layer: &Value, n: usize, what: &str) -> Result<bool> {
    if is_absent(layer, "gating_mode") {
        return Ok(layer.get("gated").and_then(Value::as_bool).unwrap_or(false));
    }
    let modes = per_layer(layer, &["gating_mode"], n, what)?;
    let mode = uniform(&modes, |m| m.as_str().map(str::to_string), what, "gating modes")?
        .context(format!("{what}: unreadable gating_mode"))?;
    match mode.as_str() {
        "none" => Ok(false),
        "gated" => {
            if !is_absent(layer, "secondary_activation") {
                let secondaries = per_layer(layer, &["secondary_activation"], n, what)?;
                let secondary = uniform(&secondaries, activation_name, what, "secondary activations")?;
                if let Some(s) = secondary.filter(|s| s != "Sigmoid") {
                    bail!("unsupported NAM WaveNet feature in {what}: gating activation '{s}' (only Sigmoid)");
                }
            }
            Ok(true)
        }
        other => bail!("unsupported NAM WaveNet feature in {what}: gating_mode '{other}'"),
    }
}

fn read_array_weights(i: usize, a: &LayerArrayConfig, flat: &mut FlatWeights, out: &mut Weights) -> Result<()> {
    let p = format!("layer_arrays.{i}");
    let c = a.channels;
    let mid = if a.gated { 2 * c } else { c };
    let mut take = |name: String, shape: Vec<usize>| -> Result<()> {
        let data = flat.take(shape.iter().product(), &name)?;
        out.insert(name, shape, data);
        Ok(())
    };
    take(format!("{p}.rechannel.weight"), vec![c, a.input_size])?;
    for j in 0..a.dilations.len() {
        let l = format!("{p}.layers.{j}");
        take(format!("{l}.conv.weight"), vec![mid, c, a.kernel_size])?;
        take(format!("{l}.conv.bias"), vec![mid])?;
        take(format!("{l}.input_mixin.weight"), vec![mid, a.condition_size])?;
        take(format!("{l}.layer1x1.weight"), vec![c, c])?;
        take(format!("{l}.layer1x1.bias"), vec![c])?;
    }
    take(format!("{p}.head_rechannel.weight"), vec![a.head_size, c])?;
    if a.head_bias {
        take(format!("{p}.head_rechannel.bias"), vec![a.head_size])?;
    }
    Ok(())
}

/// The WaveNet as NAM's `(version, config, flat weights)`. Without gated arrays it writes
/// the legacy 0.5 keys every NAM reads plus the `head` object newer readers require; with
/// gated arrays it writes 0.7's per-layer activation and gating fields.
pub(super) fn export(config: &WavenetConfig, weights: &Weights) -> Result<(&'static str, Value, Vec<f32>)> {
    let any_gated = config.layer_arrays.iter().any(|a| a.gated);
    let shapes = config.tensor_shapes();
    let mut layers = Vec::new();
    let mut flat = Vec::new();
    for (i, a) in config.layer_arrays.iter().enumerate() {
        let n = a.dilations.len();
        let head = json!({"out_channels": a.head_size, "kernel_size": 1, "bias": a.head_bias});
        layers.push(if any_gated {
            let sigmoid = if a.gated {
                json!({"type": "Sigmoid"})
            } else {
                Value::Null
            };
            json!({
                "input_size": a.input_size, "condition_size": a.condition_size, "head": head,
                "channels": a.channels, "bottleneck": a.channels, "kernel_sizes": vec![a.kernel_size; n],
                "dilations": a.dilations, "activation": vec![json!({"type": "Tanh"}); n],
                "gating_mode": vec![if a.gated { "gated" } else { "none" }; n],
                "secondary_activation": vec![sigmoid; n],
                "layer1x1": {"active": true, "groups": 1},
                "head1x1": {"active": false, "out_channels": 1, "groups": 1},
                "groups_input": 1, "groups_input_mixin": 1,
            })
        } else {
            json!({
                "input_size": a.input_size, "condition_size": a.condition_size, "head_size": a.head_size,
                "channels": a.channels, "kernel_size": a.kernel_size, "dilations": a.dilations,
                "activation": "Tanh", "gated": false, "head_bias": a.head_bias, "head": head,
            })
        });
        // tensor_shapes lists each array's tensors in exactly NAM's weight order.
        let prefix = format!("layer_arrays.{i}.");
        for (name, shape) in shapes.iter().filter(|(name, _)| name.starts_with(&prefix)) {
            flat.extend_from_slice(weights.get(name, shape)?);
        }
    }
    flat.push(config.head_scale);
    let version = if any_gated {
        NEW_EXPORT_VERSION
    } else {
        LEGACY_EXPORT_VERSION
    };
    let config = json!({"layers": layers, "head": null, "head_scale": config.head_scale});
    Ok((version, config, flat))
}
