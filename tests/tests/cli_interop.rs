//! `doppel import` / `doppel export` end to end (test threads): every fixture made by the
//! original tools (NAM's Python package, a PyTorch AIDA-X / Proteus model; see
//! `bench/fixtures/make_fixtures.py`) imports and plays its saved reference output within
//! 1e-4 through `doppel process`; an exported `.nam` imports back to the same sound.

use std::path::PathBuf;

use doppel_e2e::{doppel_error, doppel_ok, read_wav, Scratch};

/// Largest difference allowed between Doppel's output and the original tool's.
const FIXTURE_TOLERANCE: f32 = 1e-4;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/interop")
}

fn fixture(name: &str) -> String {
    fixtures_dir().join(name).to_string_lossy().into_owned()
}

/// Imports `model`, plays the fixture input with `knobs` (normalised, named knob_1..), and
/// returns the largest difference from `expected`.
fn import_and_play(scratch: &Scratch, model: &str, expected: &str, knobs: &[f32]) -> f32 {
    let profile = scratch.file(&format!("{model}.doppel"));
    let output = scratch.file(&format!("{model}.wav"));
    doppel_ok(&["import", &fixture(model), "--out", &profile]);
    let knob_args: Vec<String> = knobs
        .iter()
        .enumerate()
        .map(|(i, v)| format!("knob_{}={v}", i + 1))
        .collect();
    let input = fixture_input();
    let mut args = vec!["process", "--profile", &profile, "--input", &input, "--output", &output];
    for knob in &knob_args {
        args.extend(["--knob", knob.as_str()]);
    }
    doppel_ok(&args);
    let (ours, theirs) = (read_wav(&output).unwrap(), read_wav(&fixture(expected)).unwrap());
    assert_eq!(ours.samples.len(), theirs.samples.len(), "{model}: length differs");
    ours.samples
        .iter()
        .zip(&theirs.samples)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn fixture_input() -> String {
    fixture("input.wav")
}

#[test]
fn every_fixture_plays_like_the_original_tool() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures_dir().join("manifest.json")).unwrap()).unwrap();
    let scratch = Scratch::new("cli-interop-fixtures");
    let entries = manifest["fixtures"].as_array().unwrap();
    assert!(entries.len() >= 9, "the manifest lists {} fixtures", entries.len());
    for entry in entries {
        let model = entry["model"].as_str().unwrap();
        let knobs: Vec<f32> = entry["knobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let error = import_and_play(&scratch, model, entry["output"].as_str().unwrap(), &knobs);
        assert!(error <= FIXTURE_TOLERANCE, "{model}: max difference {error}");
    }
}

#[test]
fn exported_nam_files_import_back_to_the_same_sound() {
    let scratch = Scratch::new("cli-interop-export");
    for model in ["nam_wavenet_preset_like.nam", "nam_lstm.nam", "nam_wavenet_gated.nam"] {
        let first = scratch.file(&format!("{model}.doppel"));
        let exported = scratch.file(&format!("{model}.exported.nam"));
        let second = scratch.file(&format!("{model}.again.doppel"));
        doppel_ok(&["import", &fixture(model), "--out", &first]);
        doppel_ok(&["export", &first, "--out", &exported]);
        let text = std::fs::read_to_string(&exported).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).expect("export writes JSON");
        assert!(
            json["version"].is_string() && json["weights"].is_array(),
            "{model}: not a .nam file"
        );
        doppel_ok(&["import", &exported, "--out", &second]);
        let input = fixture_input();
        let play = |profile: &str, name: &str| {
            let out = scratch.file(name);
            doppel_ok(&["process", "--profile", profile, "--input", &input, "--output", &out]);
            read_wav(&out).unwrap().samples
        };
        let (a, b) = (play(&first, "first.wav"), play(&second, "second.wav"));
        assert_eq!(a, b, "{model}: the exported file sounds different");
    }
}

#[test]
fn unsupported_imports_and_exports_say_what_is_unsupported() {
    let scratch = Scratch::new("cli-interop-errors");
    let knobbed = scratch.file("knobbed.doppel");
    doppel_ok(&["import", &fixture("aidax_gru_two_knobs.json"), "--out", &knobbed]);
    let error = doppel_error(&["export", &knobbed, "--out", &scratch.file("x.nam")]);
    assert!(
        error.contains("knob") || error.contains("GRU") || error.contains("gru"),
        "{error}"
    );

    let bad = scratch.file("convnet.nam");
    std::fs::write(
        &bad,
        r#"{"version": "0.5.4", "architecture": "ConvNet", "config": {}, "weights": []}"#,
    )
    .unwrap();
    let error = doppel_error(&["import", &bad, "--out", &scratch.file("y.doppel")]);
    assert!(
        error.contains("ConvNet"),
        "the error should name the architecture: {error}"
    );
}
