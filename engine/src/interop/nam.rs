//! NAM `.nam` files (Neural Amp Modeler, file versions 0.5.x to 0.7.x): import of WaveNet and
//! LSTM models into Doppel profiles and export back. CLI / GUI thread.
//!
//! A `.nam` file is JSON: `version`, `architecture`, `config` (hyperparameters), `weights`
//! (one flat list in an order the architecture defines), optional `sample_rate` and
//! `metadata` (loudness, gain, calibration levels, gear description). The WaveNet layout is
//! in [`super::nam_wavenet`]. NAM's LSTM per layer stores `[W_ih | W_hh]` (`[4H, in + H]`
//! row-major, gates i, f, g, o), one summed bias `[4H]`, then the initial hidden and cell
//! states `[H]` each; then the head weight `[H]` and bias `[1]`. It has no input skip.

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Map, Value};

use super::weights::{is_absent, usize_field, FlatWeights};
use super::{loudness, nam_wavenet, ImportOptions};
use crate::model::{LstmConfig, ModelConfig};
use crate::profile::{Calibration, Profile, ProfileMeta, Weights, FORMAT_VERSION};

/// Oldest NAM file version read, `(major, minor)`.
const OLDEST_VERSION: (u64, u64) = (0, 5);
/// Newest NAM file version read, `(major, minor)`; later versions may carry features this
/// build would misread.
const NEWEST_VERSION: (u64, u64) = (0, 7);
/// Version written for files every NAM release since 0.5 reads.
pub(crate) const LEGACY_EXPORT_VERSION: &str = "0.5.4";
/// Version written for files that need NAM's newer per-layer activation fields (gated WaveNets).
pub(crate) const NEW_EXPORT_VERSION: &str = "0.7.0";

/// Translates a parsed `.nam` file into a profile, named by `options.name`, else the file's
/// metadata name, else `options.fallback_name`.
pub fn import(file: &Value, options: &ImportOptions) -> Result<Profile> {
    let version = file
        .get("version")
        .and_then(Value::as_str)
        .context("missing 'version'")?;
    check_version(version)?;
    let architecture = file
        .get("architecture")
        .and_then(Value::as_str)
        .context("missing 'architecture'")?;
    let config = file.get("config").context("missing 'config'")?;
    let mut weights = FlatWeights::from_json(file.get("weights").context("missing 'weights'")?)?;
    let (model, tensors) = match architecture {
        "WaveNet" => nam_wavenet::import(config, &mut weights)?,
        "LSTM" => import_lstm(config, &mut weights)?,
        other => bail!("unsupported NAM architecture '{other}' (Doppel plays WaveNet and LSTM)"),
    };
    weights.finish()?;
    let sample_rate = options.resolve_sample_rate(file.get("sample_rate").and_then(Value::as_f64))?;
    let metadata = file.get("metadata").filter(|m| m.is_object());
    let file_name = metadata.and_then(|m| m.get("name")).and_then(Value::as_str);
    let name = options.resolve_name(file_name, "NAM import");
    let meta = ProfileMeta {
        format_version: FORMAT_VERSION,
        name,
        notes: format!("Imported from a NAM {architecture} file (version {version})."),
        model,
        sample_rate,
        knobs: Vec::new(),
        latency_samples: 0,
        training: None,
        accuracy: None,
        calibration: Some(calibration_from_metadata(metadata)),
    };
    Profile::new(meta, tensors)
}

/// Accepts versions `OLDEST_VERSION.*` to `NEWEST_VERSION.*`.
fn check_version(version: &str) -> Result<()> {
    let parts: Vec<u64> = version
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()
        .filter(|p: &Vec<u64>| p.len() == 3)
        .with_context(|| format!("unreadable NAM file version '{version}'"))?;
    let minor = (parts[0], parts[1]);
    ensure!(
        (OLDEST_VERSION..=NEWEST_VERSION).contains(&minor),
        "unsupported NAM file version {version} (Doppel reads {}.{}.x to {}.{}.x)",
        OLDEST_VERSION.0,
        OLDEST_VERSION.1,
        NEWEST_VERSION.0,
        NEWEST_VERSION.1
    );
    Ok(())
}

/// NAM's metadata fields; missing or mistyped ones stay `None`.
fn calibration_from_metadata(metadata: Option<&Value>) -> Calibration {
    let number = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
            .map(|v| v as f32)
    };
    let text = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Calibration {
        loudness_db: number("loudness"),
        gain: number("gain"),
        input_level_dbu: number("input_level_dbu"),
        output_level_dbu: number("output_level_dbu"),
        modeled_by: text("modeled_by"),
        gear_type: text("gear_type"),
        gear_make: text("gear_make"),
        gear_model: text("gear_model"),
        tone_type: text("tone_type"),
    }
}

fn import_lstm(config: &Value, flat: &mut FlatWeights) -> Result<(ModelConfig, Weights)> {
    let what = "NAM LSTM config";
    let input_size = usize_field(config, "input_size", what)?;
    ensure!(
        input_size == 1,
        "unsupported NAM LSTM input_size {input_size} (Doppel plays mono-input LSTMs)"
    );
    for key in ["in_channels", "out_channels"] {
        if !is_absent(config, key) {
            let channels = usize_field(config, key, what)?;
            ensure!(
                channels == 1,
                "unsupported NAM LSTM {key} {channels} (Doppel plays mono)"
            );
        }
    }
    let lstm = LstmConfig {
        num_knobs: 0,
        hidden_size: usize_field(config, "hidden_size", what)?,
        num_layers: usize_field(config, "num_layers", what)?,
        skip: false,
    };
    lstm.validate()?;
    let h = lstm.hidden_size;
    let mut weights = Weights::default();
    for l in 0..lstm.num_layers {
        let input = if l == 0 { input_size } else { h };
        let joint = flat.take(4 * h * (input + h), &format!("LSTM layer {l} weights"))?;
        let (mut w_ih, mut w_hh) = (Vec::with_capacity(4 * h * input), Vec::with_capacity(4 * h * h));
        for row in joint.chunks_exact(input + h) {
            w_ih.extend_from_slice(&row[..input]);
            w_hh.extend_from_slice(&row[input..]);
        }
        weights.insert(format!("lstm.{l}.weight_ih"), vec![4 * h, input], w_ih);
        weights.insert(format!("lstm.{l}.weight_hh"), vec![4 * h, h], w_hh);
        let bias = flat.take(4 * h, &format!("LSTM layer {l} bias"))?;
        weights.insert(format!("lstm.{l}.bias"), vec![4 * h], bias);
        let initial_hidden = flat.take(h, &format!("LSTM layer {l} initial hidden state"))?;
        weights.insert(format!("lstm.{l}.initial_hidden"), vec![h], initial_hidden);
        let initial_cell = flat.take(h, &format!("LSTM layer {l} initial cell state"))?;
        weights.insert(format!("lstm.{l}.initial_cell"), vec![h], initial_cell);
    }
    weights.insert("head.weight", vec![1, h], flat.take(h, "LSTM head weight")?);
    weights.insert("head.bias", vec![1], flat.take(1, "LSTM head bias")?);
    Ok((ModelConfig::Lstm(lstm), weights))
}

/// The profile as a NAM file (JSON). Exports WaveNet and LSTM profiles without knobs; an
/// LSTM must have no input skip (NAM's LSTM has none). Metadata carries the profile name,
/// the calibration fields, and the loudness and gain: the profile's own values when it has
/// them (e.g. imported from NAM), else measured as NAM measures them
/// ([`loudness::measure_loudness_db`], [`loudness::measure_gain`]).
pub fn export(profile: &Profile) -> Result<Value> {
    let meta = &profile.meta;
    ensure!(
        meta.model.num_knobs() == 0,
        "cannot export to NAM: the profile has {} knobs and NAM models take none",
        meta.model.num_knobs()
    );
    let (architecture, version, config, weights) = match &meta.model {
        ModelConfig::Wavenet(c) => {
            let (version, config, weights) = nam_wavenet::export(c, &profile.weights)?;
            ("WaveNet", version, config, weights)
        }
        ModelConfig::Lstm(c) => {
            let (config, weights) = export_lstm(c, &profile.weights)?;
            ("LSTM", LEGACY_EXPORT_VERSION, config, weights)
        }
        ModelConfig::Gru(_) => bail!("cannot export to NAM: NAM has no GRU architecture"),
        ModelConfig::Compressor(_) => bail!("cannot export to NAM: NAM has no compressor architecture"),
    };
    Ok(json!({
        "version": version,
        "metadata": export_metadata(profile)?,
        "architecture": architecture,
        "config": config,
        "weights": weights,
        "sample_rate": meta.sample_rate,
    }))
}

fn export_metadata(profile: &Profile) -> Result<Value> {
    let calibration = profile.meta.calibration.clone().unwrap_or_default();
    let loudness_db = match calibration.loudness_db {
        Some(v) => v,
        None => loudness::measure_loudness_db(profile)?,
    };
    let gain = match calibration.gain {
        Some(v) => v,
        None => loudness::measure_gain(profile)?,
    };
    let mut m = Map::new();
    m.insert("loudness".into(), json!(loudness_db));
    m.insert("gain".into(), json!(gain));
    m.insert("name".into(), json!(profile.meta.name));
    let texts = [
        ("modeled_by", &calibration.modeled_by),
        ("gear_type", &calibration.gear_type),
        ("gear_make", &calibration.gear_make),
        ("gear_model", &calibration.gear_model),
        ("tone_type", &calibration.tone_type),
    ];
    for (key, value) in texts {
        if let Some(v) = value {
            m.insert(key.into(), json!(v));
        }
    }
    for (key, value) in [
        ("input_level_dbu", calibration.input_level_dbu),
        ("output_level_dbu", calibration.output_level_dbu),
    ] {
        if let Some(v) = value {
            m.insert(key.into(), json!(v));
        }
    }
    Ok(Value::Object(m))
}

fn export_lstm(config: &LstmConfig, weights: &Weights) -> Result<(Value, Vec<f32>)> {
    ensure!(
        !config.skip,
        "cannot export to NAM: this LSTM adds its input to the output (skip), which NAM's LSTM cannot; train it with `doppel train --arch lstm --no-skip`"
    );
    let h = config.hidden_size;
    let mut flat = Vec::new();
    for l in 0..config.num_layers {
        let input = if l == 0 { 1 } else { h };
        let w_ih = weights.get(&format!("lstm.{l}.weight_ih"), &[4 * h, input])?;
        let w_hh = weights.get(&format!("lstm.{l}.weight_hh"), &[4 * h, h])?;
        for (a, b) in w_ih.chunks_exact(input).zip(w_hh.chunks_exact(h)) {
            flat.extend_from_slice(a);
            flat.extend_from_slice(b);
        }
        flat.extend_from_slice(weights.get(&format!("lstm.{l}.bias"), &[4 * h])?);
        for name in ["initial_hidden", "initial_cell"] {
            match weights.get_optional(&format!("lstm.{l}.{name}"), &[h])? {
                Some(state) => flat.extend_from_slice(state),
                None => flat.extend(std::iter::repeat_n(0.0, h)),
            }
        }
    }
    flat.extend_from_slice(weights.get("head.weight", &[1, h])?);
    flat.extend_from_slice(weights.get("head.bias", &[1])?);
    let config = json!({"input_size": 1, "hidden_size": h, "num_layers": config.num_layers});
    Ok((config, flat))
}
