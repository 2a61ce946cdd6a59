//! The `doppel` CLI's error paths (test threads): each bad input must end the command with a
//! non-zero exit and one line on stderr that names the problem, and must write no output.

use std::path::Path;
use std::sync::LazyLock;

use doppel_e2e::{doppel_error, doppel_ok, read_wav, write_wav, Scratch};

/// A folder holding a 3 s capture, the amp's output and a quickly trained profile with one
/// knob (`gain`).
static FIXTURE: LazyLock<Scratch> = LazyLock::new(|| {
    let scratch = Scratch::new("cli-errors");
    let file = |name: &str| scratch.file(name);
    doppel_ok(&["signal", "--out", &file("in.wav"), "--seconds", "3", "--seed", "11"]);
    doppel_ok(&[
        "reference",
        "--input",
        &file("in.wav"),
        "--output",
        &file("out.wav"),
        "--knob",
        "gain=5",
    ]);
    doppel_ok(&[
        "train",
        "--input",
        &file("in.wav"),
        "--target",
        &file("out.wav"),
        "--knob",
        "gain=5",
        "--arch",
        "wavenet",
        "--size",
        "nano",
        "--steps",
        "5",
        "--seed",
        "1",
        "--out",
        &file("good.doppel"),
    ]);
    scratch
});

fn file(name: &str) -> String {
    FIXTURE.file(name)
}

/// Asserts that `line` mentions at least one of `words` (case-insensitive; `-` and `_` read
/// as spaces).
fn assert_mentions(line: &str, words: &[&str]) {
    let normalise = |text: &str| text.to_lowercase().replace(['-', '_'], " ");
    let line_normalised = normalise(line);
    assert!(
        words.iter().any(|word| line_normalised.contains(&normalise(word))),
        "error line {line:?} mentions none of {words:?}"
    );
}

/// `process` of `input` with the good profile must fail, mention one of `words` and write nothing.
fn assert_process_fails(input: &str, extra: &[&str], words: &[&str]) {
    let output = file(&format!("never-{}.wav", words[0].replace(' ', "-")));
    let mut args = vec![
        "process",
        "--profile",
        &*FIXTURE_PROFILE,
        "--input",
        input,
        "--output",
        &output,
    ];
    args.extend_from_slice(extra);
    let line = doppel_error(&args);
    assert_mentions(&line, words);
    assert!(!Path::new(&output).exists(), "a failed process still wrote {output}");
}

static FIXTURE_PROFILE: LazyLock<String> = LazyLock::new(|| file("good.doppel"));

#[test]
fn the_good_fixture_processes_fine() {
    doppel_ok(&[
        "process",
        "--profile",
        &FIXTURE_PROFILE,
        "--input",
        &file("in.wav"),
        "--output",
        &file("ok.wav"),
    ]);
    assert_eq!(read_wav(&file("ok.wav")).unwrap().samples.len(), 3 * 48_000);
}

#[test]
fn missing_input_file() {
    assert_process_fails(&file("no-such-input.wav"), &[], &["no-such-input.wav"]);
}

#[test]
fn missing_profile_file() {
    let line = doppel_error(&["info", &file("no-such-profile.doppel")]);
    assert_mentions(&line, &["no-such-profile.doppel"]);
}

#[test]
fn input_that_is_not_a_wav_file() {
    let path = file("notes.wav");
    std::fs::write(&path, "these are liner notes, not audio\n").unwrap();
    assert_process_fails(&path, &[], &["notes.wav", "wav", "riff"]);
}

#[test]
fn sample_rate_mismatch_between_input_and_target() {
    let target = file("target-44k.wav");
    let samples = read_wav(&file("out.wav")).unwrap().samples;
    write_wav(&target, 44_100, &samples[..3 * 44_100]).unwrap();
    let line = doppel_error(&[
        "train",
        "--input",
        &file("in.wav"),
        "--target",
        &target,
        "--steps",
        "5",
        "--out",
        &file("never-rate.doppel"),
    ]);
    assert_mentions(&line, &["sample rate", "44100", "44 100", "44.1"]);
    assert!(!Path::new(&file("never-rate.doppel")).exists());
}

#[test]
fn sample_rate_mismatch_between_input_and_profile() {
    let input = file("in-44k.wav");
    let samples = read_wav(&file("in.wav")).unwrap().samples;
    write_wav(&input, 44_100, &samples[..2 * 44_100]).unwrap();
    assert_process_fails(&input, &[], &["sample rate", "44100", "44 100", "44.1"]);
}

#[test]
fn length_mismatch_between_input_and_target() {
    let target = file("target-short.wav");
    let samples = read_wav(&file("out.wav")).unwrap().samples;
    write_wav(&target, 48_000, &samples[..samples.len() / 2]).unwrap();
    let line = doppel_error(&[
        "train",
        "--input",
        &file("in.wav"),
        "--target",
        &target,
        "--steps",
        "5",
        "--out",
        &file("never-length.doppel"),
    ]);
    assert_mentions(&line, &["length", "samples long", "duration"]);
}

#[test]
fn silent_input() {
    let silent = file("silent.wav");
    write_wav(&silent, 48_000, &vec![0.0; 3 * 48_000]).unwrap();
    let line = doppel_error(&[
        "train",
        "--input",
        &silent,
        "--target",
        &file("out.wav"),
        "--steps",
        "5",
        "--out",
        &file("never-silent.doppel"),
    ]);
    assert_mentions(&line, &["silent", "silence"]);
}

#[test]
fn unknown_knob_name() {
    assert_process_fails(&file("in.wav"), &["--knob", "drive=3"], &["drive"]);
}

#[test]
fn truncated_profile() {
    let bytes = std::fs::read(&*FIXTURE_PROFILE).unwrap();
    let path = file("truncated.doppel");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let line = doppel_error(&["info", &path]);
    assert_mentions(&line, &["truncated.doppel", "profile"]);
    let output = file("never-truncated.wav");
    let line = doppel_error(&[
        "process",
        "--profile",
        &path,
        "--input",
        &file("in.wav"),
        "--output",
        &output,
    ]);
    assert_mentions(&line, &["truncated.doppel", "profile"]);
    assert!(!Path::new(&output).exists());
}

#[test]
fn profile_with_flipped_header_bytes() {
    let bytes = std::fs::read(&*FIXTURE_PROFILE).unwrap();
    // A safetensors file opens with the header length (u64 LE) and then the JSON header.
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert!(
        header_len > 16 && 8 + header_len <= bytes.len(),
        "the fixture is not a safetensors file"
    );
    for (name, offset) in [
        ("flipped-length.doppel", 5),
        ("flipped-json.doppel", 8 + header_len / 2),
    ] {
        let mut corrupt = bytes.clone();
        corrupt[offset] ^= 0xFF;
        let path = file(name);
        std::fs::write(&path, &corrupt).unwrap();
        let line = doppel_error(&["info", &path]);
        assert_mentions(&line, &[name, "profile"]);
    }
}

#[test]
fn a_wav_file_is_not_a_profile() {
    let line = doppel_error(&["info", &file("in.wav")]);
    assert_mentions(&line, &["in.wav", "profile"]);
}

#[test]
fn layout_of_a_phrase() {
    let line = doppel_error(&["signal", "--out", &file("phrase.wav"), "--kind", "phrase", "--layout"]);
    assert_mentions(&line, &["layout", "sections"]);
}
