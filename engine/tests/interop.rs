//! Interop golden tests: models made by the original tools (NAM's `neural-amp-modeler`
//! package, PyTorch models in AIDA-X's and Proteus' formats; see
//! `bench/fixtures/make_fixtures.py`) play in Doppel's kernels as the tools play them;
//! export round trips; calibration metadata; a clear error for each unsupported variant.

use std::path::{Path, PathBuf};

use doppel_engine::interop::{self, aidax, nam, ImportOptions};
use doppel_engine::model::{LayerArrayConfig, LstmConfig, WavenetConfig};
use doppel_engine::wav::read_wav_mono;
use doppel_engine::{Calibration, ModelConfig, Profile, ProfileMeta, Size, StreamingModel, Weights};
use serde_json::{json, Value};

/// Golden tolerance against the original tools' output (f32 on both sides; PyTorch's exact
/// tanh/sigmoid against the kernels' approximations within 2.5e-7, plus summation order).
const GOLDEN_TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop")
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

/// The kernel's output for `input` from reset, in blocks of `block` samples.
fn play(profile: &Profile, input: &[f32], knobs: &[f32], block: usize) -> Vec<f32> {
    let mut model = StreamingModel::new(&profile.meta.model, &profile.weights, 512).unwrap();
    model.reset(knobs);
    let mut out = vec![0.0; input.len()];
    for (x, y) in input.chunks(block).zip(out.chunks_mut(block)) {
        model.process(x, knobs, y);
    }
    out
}

fn max_abs_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn import(name: &str) -> Profile {
    interop::import_file(&fixtures().join(name), &ImportOptions::default()).unwrap()
}

#[test]
fn every_fixture_plays_like_the_original_tool() {
    let manifest = read_json("manifest.json");
    let input = read_wav_mono(&fixtures().join(manifest["input"].as_str().unwrap())).unwrap();
    let fixtures_list = manifest["fixtures"].as_array().unwrap();
    assert!(
        fixtures_list.len() >= 9,
        "manifest lists {} fixtures",
        fixtures_list.len()
    );
    for entry in fixtures_list {
        let name = entry["model"].as_str().unwrap();
        let knobs: Vec<f32> = entry["knobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_f64().unwrap() as f32)
            .collect();
        let expected = read_wav_mono(&fixtures().join(entry["output"].as_str().unwrap())).unwrap();
        let profile = import(name);
        assert_eq!(profile.meta.knobs.len(), knobs.len(), "{name}: knob count");
        let rms = (expected.samples.iter().map(|v| v * v).sum::<f32>() / expected.samples.len() as f32).sqrt();
        let mut worst = 0.0f32;
        for block in [1, 64, 512] {
            let error = max_abs_error(&play(&profile, &input.samples, &knobs, block), &expected.samples);
            assert!(
                error <= GOLDEN_TOLERANCE,
                "{name} block {block}: max abs error {error:e} > {GOLDEN_TOLERANCE:e}"
            );
            worst = worst.max(error);
        }
        println!("golden {name}: max abs error {worst:.2e} (reference rms {rms:.3})");
    }
}

#[test]
fn nam_metadata_becomes_calibration_and_names_the_profile() {
    let profile = import("nam_wavenet_preset_like.nam");
    let file = read_json("nam_wavenet_preset_like.nam");
    let calibration = profile.meta.calibration.clone().unwrap();
    assert_eq!(profile.meta.name, "Fixture Amp");
    assert_eq!(
        calibration.loudness_db,
        Some(file["metadata"]["loudness"].as_f64().unwrap() as f32)
    );
    assert_eq!(
        calibration.gain,
        Some(file["metadata"]["gain"].as_f64().unwrap() as f32)
    );
    assert_eq!(calibration.input_level_dbu, Some(12.5));
    assert_eq!(calibration.output_level_dbu, Some(4.25));
    assert_eq!(calibration.gear_make.as_deref(), Some("Acme"));
    assert_eq!(calibration.gear_model.as_deref(), Some("Tiny 1"));
    assert_eq!(calibration.gear_type.as_deref(), Some("amp"));
    assert_eq!(calibration.tone_type.as_deref(), Some("crunch"));
    assert_eq!(calibration.modeled_by.as_deref(), Some("Doppel fixtures"));
    // Without a metadata name the file stem names it; --name overrides both.
    assert_eq!(import("nam_lstm.nam").meta.name, "nam_lstm");
    let options = ImportOptions {
        name: Some("Mine".into()),
        ..Default::default()
    };
    let named = interop::import_file(&fixtures().join("nam_lstm.nam"), &options).unwrap();
    assert_eq!(named.meta.name, "Mine");
    // The header survives the .doppel round trip.
    let reloaded = Profile::from_bytes(&profile.to_bytes().unwrap()).unwrap();
    assert_eq!(reloaded.meta.calibration, profile.meta.calibration);
}

/// Export then import gives back the same config, tensors and metadata.
fn assert_round_trip(profile: &Profile) {
    let file = nam::export(profile).unwrap();
    let back = nam::import(&file, &ImportOptions::default()).unwrap();
    assert_eq!(back.meta.model, profile.meta.model);
    assert_eq!(back.meta.name, profile.meta.name);
    assert_eq!(back.meta.sample_rate, profile.meta.sample_rate);
    for (name, tensor) in profile.weights.iter() {
        assert_eq!(
            back.weights.get(name, &tensor.shape).unwrap(),
            tensor.data.as_slice(),
            "{name}"
        );
    }
    let input = doppel_engine::signal::test_phrase(48_000, 0.1, 3);
    assert_eq!(play(&back, &input, &[], 64), play(profile, &input, &[], 64));
    if let Some(calibration) = &profile.meta.calibration {
        let back_calibration = back.meta.calibration.unwrap();
        assert_eq!(&back_calibration, calibration);
    }
}

#[test]
fn nam_files_round_trip_through_doppel_export() {
    for name in [
        "nam_wavenet_preset_like.nam",
        "nam_wavenet_gated.nam",
        "nam_lstm.nam",
        "nam_wavenet_legacy.nam",
    ] {
        assert_round_trip(&import(name));
    }
}

fn native_profile(model: ModelConfig, seed: u64) -> Profile {
    let weights = Weights::random(&model, seed, 0.3);
    let meta = ProfileMeta {
        format_version: doppel_engine::profile::FORMAT_VERSION,
        name: "native".into(),
        notes: String::new(),
        model,
        sample_rate: 48_000,
        knobs: Vec::new(),
        latency_samples: 0,
        training: None,
        accuracy: None,
        calibration: None,
    };
    Profile::new(meta, weights).unwrap()
}

#[test]
fn doppel_profiles_without_knobs_export_to_nam_and_back() {
    for size in Size::ALL {
        let profile = native_profile(ModelConfig::preset("wavenet", size, 0).unwrap(), 5);
        let file = nam::export(&profile).unwrap();
        assert_eq!(file["version"], "0.5.4");
        let loudness = file["metadata"]["loudness"].as_f64().unwrap();
        let gain = file["metadata"]["gain"].as_f64().unwrap();
        assert!(loudness.is_finite() && (0.0..=1.0).contains(&gain), "{loudness} {gain}");
        let back = nam::import(&file, &ImportOptions::default()).unwrap();
        assert_eq!(back.meta.model, profile.meta.model);
        assert_eq!(back.meta.model.size(), Some(size), "a preset stays that preset");
    }
    let gated = ModelConfig::Wavenet(WavenetConfig {
        num_knobs: 0,
        layer_arrays: vec![LayerArrayConfig {
            input_size: 1,
            condition_size: 1,
            channels: 3,
            head_size: 1,
            kernel_size: 2,
            dilations: vec![1, 2, 4],
            gated: true,
            head_bias: true,
        }],
        head_scale: 0.5,
    });
    let profile = native_profile(gated, 6);
    assert_eq!(nam::export(&profile).unwrap()["version"], "0.7.0");
    assert_round_trip(&profile);
    let lstm = ModelConfig::Lstm(LstmConfig {
        num_knobs: 0,
        hidden_size: 4,
        num_layers: 2,
        skip: false,
    });
    let profile = native_profile(lstm, 7);
    let back = nam::import(&nam::export(&profile).unwrap(), &ImportOptions::default()).unwrap();
    let input = doppel_engine::signal::test_phrase(48_000, 0.05, 4);
    assert_eq!(play(&back, &input, &[], 32), play(&profile, &input, &[], 32));
}

#[test]
fn export_refuses_what_nam_cannot_play() {
    let error = |profile: &Profile| format!("{:#}", nam::export(profile).unwrap_err());
    let knobs = Profile::fixture("wavenet", Size::Nano, "k", 1).unwrap();
    assert!(error(&knobs).contains("2 knobs"), "{}", error(&knobs));
    let gru = native_profile(ModelConfig::preset("gru", Size::Nano, 0).unwrap(), 1);
    assert!(error(&gru).contains("no GRU"), "{}", error(&gru));
    let skip = native_profile(ModelConfig::preset("lstm", Size::Nano, 0).unwrap(), 1);
    assert!(error(&skip).contains("skip"), "{}", error(&skip));
}

#[test]
fn loudness_is_measured_like_nam_and_drives_default_gain_staging() {
    let profile = import("nam_wavenet_preset_like.nam");
    let nam_loudness = profile.meta.calibration.as_ref().unwrap().loudness_db.unwrap();
    let ours = interop::measure_loudness_db(&profile).unwrap();
    println!("loudness: NAM {nam_loudness:.2} dB, Doppel {ours:.2} dB");
    assert!(
        (ours - nam_loudness).abs() < 3.0,
        "NAM {nam_loudness} dB vs Doppel {ours} dB"
    );
    let nam_gain = profile.meta.calibration.as_ref().unwrap().gain.unwrap();
    let our_gain = interop::measure_gain(&profile).unwrap();
    println!("gain: NAM {nam_gain:.3}, Doppel {our_gain:.3}");
    assert!((our_gain - nam_gain).abs() < 0.1, "NAM {nam_gain} vs Doppel {our_gain}");

    let (input_db, output_db) = interop::calibration_gains_db(&profile.meta);
    assert_eq!(input_db, interop::REFERENCE_INTERFACE_LEVEL_DBU - 12.5);
    assert_eq!(output_db, interop::OUTPUT_LOUDNESS_TARGET_DB - nam_loudness);
    let mut meta = profile.meta.clone();
    meta.calibration = None;
    assert_eq!(interop::calibration_gains_db(&meta), (0.0, 0.0));
    meta.calibration = Some(Calibration {
        loudness_db: Some(-80.0),
        input_level_dbu: Some(f32::NAN),
        ..Default::default()
    });
    assert_eq!(interop::calibration_gains_db(&meta), (0.0, 24.0));
}

#[test]
fn profiles_without_calibration_still_load() {
    let profile = Profile::fixture("lstm", Size::Nano, "old", 2).unwrap();
    let bytes = profile.to_bytes().unwrap();
    let header = String::from_utf8_lossy(&bytes);
    assert!(
        !header.contains("calibration"),
        "an uncalibrated profile writes no calibration key"
    );
    assert_eq!(Profile::from_bytes(&bytes).unwrap().meta.calibration, None);
}

/// The one-line error importing `file` gives.
fn import_error(file: &Value) -> String {
    let result = if file.get("architecture").is_some() {
        nam::import(file, &ImportOptions::default())
    } else {
        aidax::import(file, &ImportOptions::default())
    };
    let message = format!("{:#}", result.expect_err("import should fail"));
    assert!(!message.contains('\n'), "multi-line error: {message}");
    message
}

fn expect_error(file: &Value, needle: &str) {
    let message = import_error(file);
    assert!(message.contains(needle), "expected '{needle}' in: {message}");
}

/// The same value for each of the first layer array's four layers.
fn four(value: Value) -> Value {
    Value::Array(vec![value; 4])
}

#[test]
fn unsupported_nam_variants_are_named() {
    let base = read_json("nam_wavenet_preset_like.nam");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut file = base.clone();
        edit(&mut file);
        file
    };
    let set0 = |file: &mut Value, key: &str, value: Value| file["config"]["layers"][0][key] = value;
    let cases: Vec<(Value, &str)> = vec![
        (with(&|f| f["version"] = json!("0.8.0")), "version 0.8.0"),
        (
            with(&|f| f["architecture"] = json!("ConvNet")),
            "architecture 'ConvNet'",
        ),
        (
            with(&|f| set0(f, "activation", four(json!({"type": "ReLU"})))),
            "activation 'ReLU'",
        ),
        (
            with(&|f| set0(f, "activation", json!({"type": "LeakyReLU", "negative_slope": 0.01}))),
            "LeakyReLU",
        ),
        (
            with(&|f| {
                set0(f, "gating_mode", four(json!("blended")));
                set0(f, "secondary_activation", four(json!({"type": "Sigmoid"})));
            }),
            "gating_mode 'blended'",
        ),
        (
            with(&|f| {
                set0(f, "gating_mode", four(json!("gated")));
                set0(f, "secondary_activation", four(json!({"type": "Tanh"})));
            }),
            "gating activation 'Tanh'",
        ),
        (
            with(&|f| {
                set0(
                    f,
                    "activation",
                    json!([{"type": "Tanh"}, {"type": "Tanh"}, {"type": "Tanh"}, "ReLU"]),
                )
            }),
            "activations that differ",
        ),
        (
            with(&|f| set0(f, "kernel_sizes", json!([3, 3, 2, 3]))),
            "kernel sizes that differ",
        ),
        (
            with(&|f| set0(f, "head1x1", json!({"active": true, "out_channels": 2, "groups": 1}))),
            "head1x1",
        ),
        (
            with(&|f| set0(f, "layer1x1", json!({"active": false, "groups": 1}))),
            "without layer1x1",
        ),
        (
            with(&|f| set0(f, "conv_pre_film", json!({"active": true, "shift": true, "groups": 1}))),
            "FiLM",
        ),
        (with(&|f| set0(f, "bottleneck", json!(2))), "bottleneck"),
        (with(&|f| set0(f, "groups_input", json!(2))), "grouped"),
        (
            with(&|f| set0(f, "head", json!({"out_channels": 2, "kernel_size": 3, "bias": false}))),
            "head kernel_size 3",
        ),
        (
            with(&|f| {
                set0(
                    f,
                    "slimmable",
                    json!({"method": "slice_channels_uniform", "kwargs": {}}),
                )
            }),
            "slimmable",
        ),
        (with(&|f| set0(f, "condition_size", json!(2))), "condition_size 2"),
        (
            with(&|f| f["config"]["condition_dsp"] = json!({"architecture": "WaveNet"})),
            "condition_dsp",
        ),
        (with(&|f| f["config"]["head"] = json!({"channels": 2})), "post-head"),
        (with(&|f| f["config"]["in_channels"] = json!(2)), "in_channels 2"),
        (with(&|f| f["weights"].as_array_mut().unwrap().truncate(100)), "too few"),
        (
            with(&|f| f["weights"].as_array_mut().unwrap().push(json!(0.5))),
            "but the architecture uses",
        ),
        (with(&|f| f["sample_rate"] = json!(44_100.5)), "invalid sample rate"),
    ];
    for (file, needle) in &cases {
        expect_error(file, needle);
    }
    let mut lstm = read_json("nam_lstm.nam");
    lstm["config"]["input_size"] = json!(2);
    expect_error(&lstm, "input_size 2");
}

#[test]
fn unsupported_aidax_variants_are_named() {
    let lstm = read_json("aidax_lstm.json");
    let gru = read_json("aidax_gru.json");
    let proteus = read_json("proteus_lstm_one_knob.json");
    let edit = |base: &Value, f: &dyn Fn(&mut Value)| {
        let mut file = base.clone();
        f(&mut file);
        file
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            edit(&lstm, &|f| f["layers"][0]["type"] = json!("conv1d")),
            "layer type 'conv1d'",
        ),
        (
            edit(&lstm, &|f| f["layers"][1]["activation"] = json!("tanh")),
            "dense activation 'tanh'",
        ),
        (
            edit(&lstm, &|f| f["layers"][0]["activation"] = json!("relu")),
            "lstm activation 'relu'",
        ),
        (edit(&lstm, &|f| f["in_skip"] = json!(2)), "in_skip 2"),
        (edit(&lstm, &|f| f["in_shape"] = json!([null, null, 6])), "6 inputs"),
        (
            edit(&lstm, &|f| {
                f["in_gain"] = json!(6.0);
            }),
            "in_gain / out_gain",
        ),
        (
            edit(&gru, &|f| f["layers"][0]["weights"][2] = json!(vec![0.0; 24])),
            "reset_after=False",
        ),
        (
            edit(&proteus, &|f| f["model_data"]["unit_type"] = json!("RNN")),
            "unit_type 'RNN'",
        ),
        (
            edit(&proteus, &|f| f["model_data"]["model"] = json!("GatedConvNet")),
            "model 'GatedConvNet'",
        ),
    ];
    for (file, needle) in &cases {
        expect_error(file, needle);
    }
}

#[test]
fn aidax_gains_fold_into_the_weights_exactly() {
    // No skip: AIDA-X plays model(g_in x) * g_out.
    let mut file = read_json("aidax_gru.json");
    file["in_gain"] = json!(-6.0);
    file["out_gain"] = json!(3.0);
    let profile = aidax::import(&file, &ImportOptions::default()).unwrap();
    let plain = aidax::import(&read_json("aidax_gru.json"), &ImportOptions::default()).unwrap();
    let input = doppel_engine::signal::test_phrase(48_000, 0.05, 9);
    let g_in = 10f32.powf(-6.0 / 20.0);
    let g_out = 10f32.powf(3.0 / 20.0);
    let scaled: Vec<f32> = input.iter().map(|v| v * g_in).collect();
    let expected: Vec<f32> = play(&plain, &scaled, &[], 64).iter().map(|v| v * g_out).collect();
    let error = max_abs_error(&play(&profile, &input, &[], 64), &expected);
    assert!(error < 1e-6, "folded gains differ by {error:e}");
}

#[test]
fn candle_models_of_imported_files_match_the_original_tools_too() {
    use candle_core::{DType, Device, Tensor};
    let manifest = read_json("manifest.json");
    let input = read_wav_mono(&fixtures().join("input.wav")).unwrap().samples;
    let device = Device::Cpu;
    for entry in manifest["fixtures"].as_array().unwrap() {
        let name = entry["model"].as_str().unwrap();
        let knobs: Vec<f32> = entry["knobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_f64().unwrap() as f32)
            .collect();
        let expected = read_wav_mono(&fixtures().join(entry["output"].as_str().unwrap()))
            .unwrap()
            .samples;
        let profile = import(name);
        let vb = candle_nn::VarBuilder::from_tensors(profile.weights.to_candle(&device).unwrap(), DType::F32, &device);
        let model = doppel_engine::model::Model::new(&profile.meta.model, vb).unwrap();
        // Zero history before the signal, as the kernels' reset and NAM's pad_start assume.
        let pad = profile.meta.model.receptive_field() - 1;
        let mut channels: Vec<f32> = std::iter::repeat_n(0.0, pad).chain(input.iter().copied()).collect();
        for &k in &knobs {
            channels.extend(std::iter::repeat_n(k, pad + input.len()));
        }
        let x = Tensor::from_vec(channels, (1, 1 + knobs.len(), pad + input.len()), &device).unwrap();
        let y = model
            .forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let error = max_abs_error(&y, &expected);
        println!("candle {name}: max abs error {error:.2e}");
        assert!(error <= GOLDEN_TOLERANCE, "{name}: candle max abs error {error:e}");
    }
}
