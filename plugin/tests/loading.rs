//! Model loading through the hub and the plugin state: bad profiles never replace a playing
//! model, and a saved state restores the same model. Test thread stands in for the GUI/host
//! main thread and, around `process`, for the audio thread.

mod common;

use std::sync::Arc;

use arc_swap::ArcSwap;
use common::{nano_profile, rig, test_signal};
use doppel::dsp::{Controls, Processor};
use doppel::hub::ModelHub;
use doppel::params::{DoppelParams, KnobLabels};
use doppel::state;
use nice_plug::prelude::{Param, Params};

/// Params wired to a fresh hub, plus that hub and its processor.
fn plugin_parts() -> (Arc<DoppelParams>, Arc<ModelHub>, Processor) {
    let labels = Arc::new(ArcSwap::from_pointee(KnobLabels::default()));
    let (hub, player) = ModelHub::new(labels.clone());
    let processor = Processor::new(player, Arc::new(Default::default()));
    let params = DoppelParams::new(hub.clone(), labels, DoppelParams::knob_defaults(None));
    (Arc::new(params), hub, processor)
}

fn play(processor: &mut Processor, input: &[f32]) -> Vec<f32> {
    let mut samples = input.to_vec();
    let controls = Controls::default();
    for chunk in samples.chunks_mut(128) {
        processor.process(&mut [chunk], &controls);
    }
    samples
}

#[test]
fn garbage_without_a_previous_model_keeps_passing_through() {
    let (hub, mut processor, _meters) = rig();
    let error = hub.load_bytes(b"definitely not a profile", "garbage").unwrap_err();
    assert!(format!("{error:#}").contains("safetensors"), "{error:#}");
    let status = hub.status();
    assert!(status.meta.is_none());
    assert!(status.last_error.as_deref().unwrap().contains("safetensors"));
    assert_eq!(hub.encoded_profile(), "");
    let input = test_signal(300, 1);
    assert_eq!(play(&mut processor, &input), input, "pass-through changed the audio");
}

#[test]
fn corrupt_state_is_reported_not_fatal() {
    let (params, hub, _processor) = plugin_parts();
    let mut fields = params.serialize_fields();
    fields.insert("profile".into(), serde_json::to_string("dpz1:!!!not base64").unwrap());
    params.deserialize_fields(&fields);
    let status = hub.status();
    assert!(status.meta.is_none());
    assert!(status.last_error.unwrap().contains("saved profile"));
    assert!(!hub.restored_from_state());
}

#[test]
fn missing_file_is_reported() {
    let (hub, _processor, _meters) = rig();
    let error = hub
        .load_path(std::path::Path::new("/nonexistent/model.doppel"))
        .unwrap_err();
    assert!(format!("{error:#}").contains("/nonexistent/model.doppel"));
    assert!(hub.status().last_error.is_some());
}

/// Needs the streaming kernels.
#[test]
fn bad_profile_leaves_the_previous_model_playing() {
    let (hub, mut processor, _meters) = rig();
    let good = nano_profile("wavenet", "good", 5);
    let good_bytes = good.to_bytes().unwrap();
    hub.load_bytes(&good_bytes, "good.doppel").expect("good profile loads");
    let input = test_signal(2048, 2);
    play(&mut processor, &input);
    let encoded = hub.encoded_profile();

    // A file whose header is fine but whose weights have the wrong shape.
    let mut broken = good.clone();
    let (name, tensor) = broken
        .weights
        .iter()
        .next()
        .map(|(n, t)| (n.clone(), t.clone()))
        .unwrap();
    broken.weights.insert(
        name.clone(),
        vec![tensor.data.len() + 1],
        [tensor.data.clone(), vec![0.0]].concat(),
    );
    let broken_bytes = broken.to_bytes().unwrap();
    for (bytes, expected) in [(&broken_bytes[..], name.as_str()), (&good_bytes[..100], "safetensors")] {
        let error = hub.load_bytes(bytes, "broken.doppel").unwrap_err();
        assert!(format!("{error:#}").contains(expected), "{error:#}");
        let status = hub.status();
        assert_eq!(
            status.meta.as_ref().unwrap().name,
            "good",
            "status lost the good profile"
        );
        assert!(status.last_error.is_some());
        assert_eq!(hub.encoded_profile(), encoded, "the persisted profile changed");
        play(&mut processor, &input);
        assert_eq!(
            processor.model().meta.as_ref().unwrap().name,
            "good",
            "the audio thread lost the good model"
        );
    }
    assert_eq!(hub.generation(), 1, "only the good load counted");
}

/// Needs the streaming kernels.
#[test]
fn saved_state_restores_and_plays_the_same_model() {
    for architecture in ["wavenet", "lstm"] {
        let profile = nano_profile(architecture, "saved", 9);
        let bytes = profile.to_bytes().unwrap();
        let (params_a, hub_a, mut processor_a) = plugin_parts();
        hub_a.load_bytes(&bytes, "saved.doppel").expect("profile loads");

        // What a host stores: the persisted fields (parameters travel separately).
        let fields = params_a.serialize_fields();
        let text: String = serde_json::from_str(&fields["profile"]).unwrap();
        assert!(text.starts_with(state::STATE_TAG));
        assert_eq!(
            state::decode_profile(&text).unwrap(),
            bytes,
            "{architecture}: state holds other bytes"
        );

        let (params_b, hub_b, mut processor_b) = plugin_parts();
        params_b.deserialize_fields(&fields);
        assert!(hub_b.restored_from_state());
        assert_eq!(hub_b.status().meta.as_deref(), Some(&profile.meta));
        assert_eq!(
            params_b.serialize_fields(),
            fields,
            "{architecture}: state does not round-trip"
        );
        assert_eq!(params_b.knob1.normalized_value_to_string(0.65, true), "6.5");

        let input = test_signal(3000, 3);
        let (out_a, out_b) = (play(&mut processor_a, &input), play(&mut processor_b, &input));
        assert_eq!(out_a, out_b, "{architecture}: restored model sounds different");
        assert_ne!(out_a, input, "{architecture}: the model did nothing");
    }
}

#[test]
fn empty_state_unloads_the_model() {
    let (params, hub, mut processor) = plugin_parts();
    let mut fields = params.serialize_fields();
    assert_eq!(fields["profile"], "\"\"", "a fresh instance persists no profile");
    fields.insert("profile".into(), "\"\"".into());
    params.deserialize_fields(&fields);
    assert!(hub.status().meta.is_none());
    assert!(hub.status().last_error.is_none());
    let input = test_signal(100, 4);
    assert_eq!(play(&mut processor, &input), input);
}

#[test]
fn calibration_metadata_sets_the_models_gain_staging() {
    let plain = nano_profile("wavenet", "plain", 4);
    let mut calibrated = plain.clone();
    // 6.0206 dB is exactly twice the amplitude; -24 dB loudness is 6 dB under the -18 dB target.
    let doubling_db = 20.0 * 2f32.log10();
    calibrated.meta.calibration = Some(doppel_engine::Calibration {
        loudness_db: Some(-18.0 - doubling_db),
        ..Default::default()
    });
    let input = test_signal(3000, 5);
    let play_profile = |profile: &doppel_engine::Profile| {
        let (_params, hub, mut processor) = plugin_parts();
        hub.load_bytes(&profile.to_bytes().unwrap(), "p.doppel")
            .expect("profile loads");
        play(&mut processor, &input)
    };
    let (out_plain, out_calibrated) = (play_profile(&plain), play_profile(&calibrated));
    assert_ne!(out_plain, input, "the model did nothing");
    for (p, c) in out_plain.iter().zip(&out_calibrated) {
        assert!(
            (c - 2.0 * p).abs() <= 1e-5 * (1.0 + p.abs()),
            "calibrated {c} is not twice {p}"
        );
    }

    // An input level 6 dB under the reference interface level drives the model 6 dB harder,
    // which is what the same model sees when fed twice the signal.
    let mut hot_input = plain.clone();
    hot_input.meta.calibration = Some(doppel_engine::Calibration {
        input_level_dbu: Some(doppel_engine::interop::loudness::REFERENCE_INTERFACE_LEVEL_DBU - doubling_db),
        ..Default::default()
    });
    let doubled: Vec<f32> = input.iter().map(|x| 2.0 * x).collect();
    let (_params, hub, mut processor) = plugin_parts();
    hub.load_bytes(&plain.to_bytes().unwrap(), "p.doppel").unwrap();
    let expected = play(&mut processor, &doubled);
    let out_hot = play_profile(&hot_input);
    for (e, h) in expected.iter().zip(&out_hot) {
        assert!((e - h).abs() <= 1e-4, "input calibration: {h} vs {e}");
    }
}

#[test]
fn nam_files_are_imported_on_the_fly() {
    let dir = std::env::temp_dir().join(format!("doppel-load-any-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut profile = nano_profile("lstm", "nam round trip", 9);
    // NAM files carry no knobs, and NAM's LSTM has no input-to-output skip.
    let mut model = doppel_engine::ModelConfig::preset("lstm", doppel_engine::Size::Nano, 0).unwrap();
    if let doppel_engine::ModelConfig::Lstm(config) = &mut model {
        config.skip = false;
    }
    profile.meta.model = model.clone();
    profile.meta.knobs.clear();
    profile.weights = doppel_engine::Weights::random(&model, 9, 0.2);
    let path = dir.join("model.nam");
    doppel_engine::interop::export_nam_file(&profile, &path).unwrap();
    let (hub, mut processor, _meters) = rig();
    hub.load_any_path(&path).expect("a .nam file imports");
    let status = hub.status();
    assert!(status.source.ends_with("(imported)"), "{}", status.source);
    assert_eq!(status.meta.unwrap().model.architecture(), "lstm");
    let input = test_signal(500, 8);
    assert_ne!(play(&mut processor, &input), input, "the imported model does not play");
    let error = hub.load_any_path(&dir.join("missing.json")).unwrap_err();
    assert!(format!("{error:#}").contains("cannot read"), "{error:#}");
    std::fs::remove_dir_all(&dir).ok();
}
