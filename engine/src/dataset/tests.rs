//! Knob settling and captures files (test thread).
use super::*;

#[test]
fn one_value_knob_gets_a_range_with_a_note() {
    let mut notes = Vec::new();
    let knob = settle_knob("gain", [8.0].into_iter(), None, &mut notes).unwrap();
    assert_eq!((knob.min, knob.max, knob.default), (0.0, 16.0, 8.0));
    assert_eq!(notes.len(), 1);
}

#[test]
fn explicit_range_wins_and_must_contain_values() {
    let mut notes = Vec::new();
    let range = KnobRangeSpec {
        min: Some(0.0),
        max: Some(10.0),
        default: Some(5.0),
        unit: Some("dB".into()),
    };
    let knob = settle_knob("gain", [2.0, 8.0].into_iter(), Some(&range), &mut notes).unwrap();
    assert_eq!(
        (knob.min, knob.max, knob.default, knob.unit.as_str()),
        (0.0, 10.0, 5.0, "dB")
    );
    let narrow = KnobRangeSpec {
        min: Some(3.0),
        max: Some(4.0),
        ..Default::default()
    };
    let err = settle_knob("gain", [2.0, 8.0].into_iter(), Some(&narrow), &mut notes).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
}

#[test]
fn captures_file_parses_paths_relative_to_itself() {
    let dir = std::env::temp_dir().join(format!("doppel-captures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("captures.toml");
    std::fs::write(
        &path,
        "[[capture]]\ninput = \"di.wav\"\ntarget = \"g3.wav\"\nknobs = { gain = 3.0 }\n\n[knobs.gain]\nmin = 0.0\nmax = 10.0\n",
    )
    .unwrap();
    let file = CapturesFile::load(&path).unwrap();
    assert_eq!(file.capture[0].input, dir.join("di.wav"));
    assert_eq!(file.capture[0].knobs["gain"], 3.0);
    assert_eq!(file.knobs["gain"].max, Some(10.0));
    std::fs::remove_dir_all(dir).unwrap();
}
