//! Profile format tests: round trip, and a clear error for every kind of bad file.

use super::*;
use crate::model::Size;

fn sample_profile() -> Profile {
    let model = ModelConfig::preset("lstm", Size::Nano, 1).unwrap();
    let weights = Weights::random(&model, 3, 0.1);
    let meta = ProfileMeta {
        format_version: FORMAT_VERSION,
        name: "test amp".into(),
        notes: "fixture".into(),
        model,
        sample_rate: 48_000,
        knobs: vec![KnobDescriptor {
            name: "gain".into(),
            min: 0.0,
            max: 10.0,
            default: 5.0,
            unit: String::new(),
        }],
        latency_samples: 0,
        training: Some(TrainingSummary {
            steps: 10,
            loss_curve: vec![(1, 0.5), (10, 0.1)],
            ..Default::default()
        }),
        accuracy: Some(Accuracy {
            esr: 0.01,
            esr_preemph: 0.02,
            seconds: 3.0,
        }),
        calibration: Some(Calibration {
            loudness_db: Some(-20.5),
            input_level_dbu: Some(12.0),
            gear_make: Some("Acme".into()),
            ..Default::default()
        }),
    };
    Profile::new(meta, weights).unwrap()
}

/// File bytes with an arbitrary header text and the sample's tensors.
fn bytes_with_header(header: &str, weights: &Weights) -> Vec<u8> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = weights
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.shape.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<_> = raw
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let metadata = std::collections::HashMap::from([(HEADER_KEY.to_string(), header.to_string())]);
    safetensors::serialize(views, Some(metadata)).unwrap()
}

fn load_error(bytes: &[u8]) -> String {
    format!("{:#}", Profile::from_bytes(bytes).unwrap_err())
}

#[test]
fn round_trips_through_bytes_and_files() {
    let profile = sample_profile();
    let bytes = profile.to_bytes().unwrap();
    assert_eq!(Profile::from_bytes(&bytes).unwrap(), profile);
    let path = std::env::temp_dir().join(format!("doppel-profile-{}.doppel", std::process::id()));
    profile.save(&path).unwrap();
    assert_eq!(Profile::load(&path).unwrap(), profile);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn profiles_from_before_honest_latency_read_as_their_training_margin() {
    let mut profile = sample_profile();
    profile.meta.training = Some(TrainingSummary {
        alignment_margin_samples: 16,
        ..Default::default()
    });
    profile.meta.latency_samples = 0;
    let read = Profile::from_bytes(&profile.to_bytes().unwrap()).unwrap();
    assert_eq!(
        read.meta.latency_samples, 16,
        "it plays 16 samples late, whatever it said"
    );
    // A profile that already tells its latency keeps it.
    profile.meta.latency_samples = 16;
    assert_eq!(Profile::from_bytes(&profile.to_bytes().unwrap()).unwrap(), profile);
}

#[test]
fn rejects_files_that_are_not_profiles() {
    assert!(load_error(b"hello").contains("not a safetensors file"));
    let bytes = sample_profile().to_bytes().unwrap();
    assert!(
        load_error(&bytes[..bytes.len() / 2]).contains("tensors")
            || load_error(&bytes[..bytes.len() / 2]).contains("safetensors")
    );
    let missing = Profile::load("/nonexistent/x.doppel").unwrap_err();
    assert!(format!("{missing:#}").contains("cannot read profile"));
}

#[test]
fn names_each_header_problem() {
    let profile = sample_profile();
    let header = serde_json::to_string(&profile.meta).unwrap();
    let cases = [
        (
            header.replace("\"format_version\":1", "\"format_version\":99"),
            "format version 99",
        ),
        (
            header.replace("\"architecture\":\"lstm\"", "\"architecture\":\"transformer\""),
            "unreadable profile header",
        ),
        (
            header.replace("\"sample_rate\":48000", "\"sample_rate\":12"),
            "sample rate",
        ),
        (header.replace("\"max\":10.0", "\"max\":-1.0"), "knob 'gain'"),
        (
            header.replace("\"num_knobs\":1", "\"num_knobs\":0"),
            "knobs but its model takes",
        ),
    ];
    for (text, expected) in cases {
        assert_ne!(text, header, "the test's replacement for '{expected}' did not apply");
        let error = load_error(&bytes_with_header(&text, &profile.weights));
        assert!(error.contains(expected), "expected '{expected}' in: {error}");
    }
}

#[test]
fn names_each_tensor_problem() {
    let profile = sample_profile();
    let header = serde_json::to_string(&profile.meta).unwrap();
    let mut missing = Weights::default();
    let mut wrong_shape = Weights::default();
    let mut not_finite = Weights::default();
    let mut extra = profile.weights.clone();
    extra.insert("stowaway", vec![1], vec![0.0]);
    for (name, t) in profile.weights.iter() {
        if name != "head.bias" {
            missing.insert(name.clone(), t.shape.clone(), t.data.clone());
        }
        let shape = if name == "head.weight" {
            vec![t.data.len(), 1]
        } else {
            t.shape.clone()
        };
        wrong_shape.insert(name.clone(), shape, t.data.clone());
        let mut data = t.data.clone();
        if name == "lstm.0.bias" {
            data[2] = f32::NAN;
        }
        not_finite.insert(name.clone(), t.shape.clone(), data);
    }
    let cases = [
        (missing, "missing tensor 'head.bias'"),
        (wrong_shape, "tensor 'head.weight' has shape [8, 1], expected [1, 8]"),
        (not_finite, "tensor 'lstm.0.bias' has a non-finite value"),
        (extra, "unexpected tensor 'stowaway'"),
    ];
    for (weights, expected) in cases {
        let error = load_error(&bytes_with_header(&header, &weights));
        assert!(error.contains(expected), "expected '{expected}' in: {error}");
    }
}

#[test]
fn knobs_normalise_and_resolve_by_name() {
    let profile = sample_profile();
    let knob = &profile.meta.knobs[0];
    assert_eq!(knob.normalize(2.5), 0.25);
    assert_eq!(knob.normalize(20.0), 1.0);
    assert_eq!(knob.denormalize(0.25), 2.5);
    assert_eq!(profile.normalized_knobs(&[]).unwrap(), vec![0.5]);
    assert_eq!(profile.normalized_knobs(&[("GAIN".into(), 10.0)]).unwrap(), vec![1.0]);
    let error = profile
        .normalized_knobs(&[("treble".into(), 1.0)])
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown knob 'treble'"), "{error}");
}
