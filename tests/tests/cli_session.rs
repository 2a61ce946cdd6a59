//! `doppel train` as a session (test threads): Ctrl-C stops it and writes the best weights so
//! far, `--out` is checked before any training, `--from` fine-tunes a profile keeping its
//! latency, and `--margin` fixes the latency.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use doppel_e2e::{doppel, doppel_bin, doppel_error, doppel_json, doppel_ok, number, Scratch};

/// Longest a stopped training may take to write its profile and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// A 3 s capture of the built-in amp and a quickly trained profile of it.
static FIXTURE: LazyLock<Scratch> = LazyLock::new(|| {
    let scratch = Scratch::new("cli-session");
    let file = |name: &str| scratch.file(name);
    doppel_ok(&["signal", "--out", &file("in.wav"), "--seconds", "3", "--seed", "5"]);
    doppel_ok(&[
        "reference",
        "--input",
        &file("in.wav"),
        "--output",
        &file("out.wav"),
        "--knob",
        "gain=6",
    ]);
    doppel_ok(&[
        "train",
        "--input",
        &file("in.wav"),
        "--target",
        &file("out.wav"),
        "--size",
        "nano",
        "--steps",
        "20",
        "--seed",
        "2",
        "--out",
        &file("base.doppel"),
    ]);
    scratch
});

fn file(name: &str) -> String {
    FIXTURE.file(name)
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_training_and_writes_the_best_weights_so_far() {
    let out = file("interrupted.doppel");
    let mut child = Command::new(doppel_bin())
        .args([
            "train",
            "--input",
            &file("in.wav"),
            "--target",
            &file("out.wav"),
            "--size",
            "nano",
            "--minutes",
            "30",
            "--out",
            &out,
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not start the doppel CLI");
    // The first "checkpoint:" line (printed where there is no terminal) comes once the Ctrl-C
    // handler is in place and training has improved on the untrained weights.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("checkpoint: ") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "train ended before its first checkpoint"
        );
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let rest = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let output = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < STOP_TIMEOUT,
            "train did not stop within {STOP_TIMEOUT:?} of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = rest.join().unwrap();
    assert!(output.success(), "interrupted train failed: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let stdout = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["interrupted"], true);
    assert!(
        number(&report, "steps") >= 50.0,
        "a checkpoint came before the stop: {report}"
    );
    let info = doppel_json(&["info", &out, "--json"]);
    assert_eq!(info["training"]["steps"], report["steps"]);
}

#[test]
fn an_unwritable_out_is_refused_before_training() {
    let line = doppel_error(&[
        "train",
        "--input",
        &file("in.wav"),
        "--target",
        &file("out.wav"),
        "--minutes",
        "30",
        "--out",
        &file("no-such-folder/p.doppel"),
    ]);
    assert!(line.contains("does not exist"), "{line}");
    let line = doppel_error(&[
        "train",
        "--input",
        &file("in.wav"),
        "--target",
        &file("out.wav"),
        "--out",
        &file(""),
    ]);
    assert!(line.contains("folder"), "{line}");
}

#[test]
fn fine_tuning_keeps_the_profiles_model_and_latency() {
    // The profile's model and latency are kept, so flags that would change them are refused.
    let refused = doppel(&[
        "train",
        "--input",
        &file("in.wav"),
        "--target",
        &file("out.wav"),
        "--from",
        &file("base.doppel"),
        "--margin",
        "3",
        "--out",
        &file("refused.doppel"),
    ]);
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("--margin") && refused.stderr.contains("--from"),
        "{}",
        refused.stderr
    );
    let base = doppel_json(&["info", &file("base.doppel"), "--json"]);
    let tuned_path = file("tuned.doppel");
    let report = doppel_json(&[
        "train",
        "--input",
        &file("in.wav"),
        "--target",
        &file("out.wav"),
        "--from",
        &file("base.doppel"),
        "--steps",
        "10",
        "--out",
        &tuned_path,
        "--json",
    ]);
    let tuned = doppel_json(&["info", &tuned_path, "--json"]);
    assert_eq!(tuned["model"], base["model"]);
    assert_eq!(
        tuned["latency_samples"], base["latency_samples"],
        "fine-tuning keeps the alignment"
    );
    assert_eq!(report["profile_latency_samples"], base["latency_samples"]);
    // It starts where the profile left off: its first validation is the profile's own score.
    let first = tuned["training"]["validation_curve"][0][1].as_f64().unwrap();
    let base_esr = base["accuracy"]["esr"].as_f64().unwrap();
    assert!(
        (first - base_esr).abs() <= 1e-4 * base_esr.max(1e-3),
        "{first} vs {base_esr}"
    );
}

#[test]
fn a_fixed_margin_is_the_profiles_latency() {
    let path = file("margin.doppel");
    let report = doppel_json(&[
        "train",
        "--input",
        &file("in.wav"),
        "--target",
        &file("out.wav"),
        "--size",
        "nano",
        "--steps",
        "2",
        "--margin",
        "12",
        "--out",
        &path,
        "--json",
    ]);
    assert_eq!(number(&report, "profile_latency_samples"), 12.0);
    assert_eq!(doppel_json(&["info", &path, "--json"])["latency_samples"], 12);
}
