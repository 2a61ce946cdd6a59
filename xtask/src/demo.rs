//! `cargo xtask demo`: capture the built-in tube amp, train a profile on it, measure it on
//! held-out audio and bundle the plugin with that profile as its default (xtask main thread).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::bundle::bundle_plugin;
use crate::deps::ensure_system_packages;
use crate::steps::{cargo, format_duration, run as run_command, run_json, workspace_root, Steps};

/// Knob settings of the captured reference amp: a high-gain setting.
const AMP_KNOBS: [&str; 2] = ["gain=8", "tone=6"];
/// Display name written into the demo profile.
const PROFILE_NAME: &str = "Built-in tube amp (gain 8, tone 6)";
/// Training budget of the demo, in minutes.
const TRAIN_MINUTES: &str = "3";
/// Length of the held-out phrase, in seconds.
const PHRASE_SECONDS: &str = "20";

/// Runs the demo end to end; everything it writes goes to `demo/` and `target/bundled/`.
pub fn run() -> Result<()> {
    let root = workspace_root();
    let demo = root.join("demo");
    let doppel = root.join("target/release/doppel");
    let file = |name: &str| demo.join(name);
    let mut steps = Steps::new("cargo xtask demo");

    steps.run("system packages", ensure_system_packages)?;
    steps.run("build the doppel CLI (release)", || {
        run_command(cargo().args(["build", "--release", "-p", "doppel-cli"]))
    })?;
    std::fs::create_dir_all(&demo).with_context(|| format!("could not create {}", demo.display()))?;

    steps.run("make the capture signal", || {
        run_command(doppel_cmd(&doppel).arg("signal").arg("--out").arg(file("capture.wav")))
    })?;
    steps.run("play it through the built-in tube amp", || {
        run_command(&mut reference_amp(
            &doppel,
            &file("capture.wav"),
            &file("capture_out.wav"),
        ))
    })?;
    let trained = steps.run("train a WaveNet feather profile", || {
        run_json(
            doppel_cmd(&doppel)
                .arg("train")
                .arg("--input")
                .arg(file("capture.wav"))
                .arg("--target")
                .arg(file("capture_out.wav"))
                .args([
                    "--arch",
                    "wavenet",
                    "--size",
                    "feather",
                    "--minutes",
                    TRAIN_MINUTES,
                    "--name",
                    PROFILE_NAME,
                ])
                .arg("--out")
                .arg(file("tube_amp.doppel"))
                .arg("--json"),
        )
    })?;
    steps.run("make held-out guitar phrases", || {
        run_command(
            doppel_cmd(&doppel)
                .args(["signal", "--kind", "phrase", "--seconds", PHRASE_SECONDS, "--out"])
                .arg(file("phrase.wav")),
        )
    })?;
    steps.run("play them through the built-in tube amp", || {
        run_command(&mut reference_amp(
            &doppel,
            &file("phrase.wav"),
            &file("phrase_out.wav"),
        ))
    })?;
    let held_out = steps.run("evaluate the profile on the held-out phrases", || {
        run_json(
            doppel_cmd(&doppel)
                .arg("eval")
                .arg("--profile")
                .arg(file("tube_amp.doppel"))
                .arg("--input")
                .arg(file("phrase.wav"))
                .arg("--target")
                .arg(file("phrase_out.wav"))
                .arg("--json"),
        )
    })?;
    let profile = absolute(&file("tube_amp.doppel"))?;
    steps.run("bundle the plugin (release) with the profile as its default", || {
        std::env::set_var("DOPPEL_DEFAULT_PROFILE", &profile);
        bundle_plugin(true)
    })?;
    steps.print_summary();

    let bundled = root.join("target/bundled");
    println!("\nDoppel demo done in {}.", format_duration(steps.elapsed()));
    println!("  profile      {}", profile.display());
    println!("  CLAP plugin  {}", bundled.join("Doppel.clap").display());
    println!("  VST3 plugin  {}", bundled.join("Doppel.vst3").display());
    println!("  training     validation ESR {}", number(&trained, "esr"));
    println!(
        "  held-out     ESR {} as a DAW plays it (best lag: {}), pre-emphasised ESR {}, SNR {} dB over {} s",
        number(&held_out, "esr"),
        number(&held_out, "esr_best_lag"),
        number(&held_out, "esr_preemph"),
        fixed(&held_out, "snr_db"),
        fixed(&held_out, "seconds")
    );
    println!(
        "  latency      {} samples, reported to the host (device latency {} samples)",
        whole(&trained, "profile_latency_samples"),
        whole(&trained, "latency_samples")
    );
    println!("  The bundled plugin plays this profile until you load another one.");
    Ok(())
}

fn doppel_cmd(doppel: &Path) -> Command {
    let mut command = Command::new(doppel);
    command.current_dir(workspace_root());
    command
}

fn reference_amp(doppel: &Path, input: &Path, output: &Path) -> Command {
    let mut command = doppel_cmd(doppel);
    command
        .arg("reference")
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output);
    for knob in AMP_KNOBS {
        command.args(["--knob", knob]);
    }
    command
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("{} was not written", path.display()))
}

/// A number field of a JSON report, formatted for a person; "?" when absent.
fn number(report: &serde_json::Value, key: &str) -> String {
    match report.get(key).and_then(serde_json::Value::as_f64) {
        Some(value) if value != 0.0 && value.abs() < 1e-3 => format!("{value:.3e}"),
        Some(value) => format!("{value:.4}"),
        None => "?".to_owned(),
    }
}

/// A whole-number field of a JSON report; "?" when absent.
fn whole(report: &serde_json::Value, key: &str) -> String {
    report
        .get(key)
        .and_then(serde_json::Value::as_i64)
        .map_or_else(|| "?".to_owned(), |value| value.to_string())
}

/// A number field of a JSON report with one decimal; "?" when absent.
fn fixed(report: &serde_json::Value, key: &str) -> String {
    report
        .get(key)
        .and_then(serde_json::Value::as_f64)
        .map_or_else(|| "?".to_owned(), |value| format!("{value:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_numbers_read_well() {
        let report = serde_json::json!({ "esr": 0.01234567, "tiny": 0.00001234, "snr_db": 19.5 });
        assert_eq!(number(&report, "esr"), "0.0123");
        assert_eq!(number(&report, "tiny"), "1.234e-5");
        assert_eq!(fixed(&report, "snr_db"), "19.5");
        assert_eq!(number(&report, "missing"), "?");
        assert_eq!(fixed(&report, "missing"), "?");
    }
}
