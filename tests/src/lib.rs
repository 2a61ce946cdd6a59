//! Helpers shared by the end-to-end tests: the `doppel` binary, running it, scratch folders,
//! WAV files and the error-to-signal ratio (test threads).
//!
//! The binary: cargo gives a test the path of its own package's binaries only, and `doppel`
//! belongs to doppel-cli, so [`doppel_bin`] runs `cargo build -p doppel-cli` once per test
//! process, with the cargo and the profile the tests were built with, into the same target
//! folder (cargo releases its build lock before it runs tests, so this does not deadlock).
//! Set `DOPPEL_BIN` to test a binary built elsewhere instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;

use anyhow::{ensure, Context, Result};

/// `target/<profile>` of the running test binary (`target/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

static DOPPEL_BIN: LazyLock<PathBuf> = LazyLock::new(|| {
    if let Some(path) = std::env::var_os("DOPPEL_BIN") {
        return PathBuf::from(path);
    }
    let profile_dir = profile_dir();
    let target_dir = profile_dir.parent().expect("target/<profile> has a parent");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--quiet",
            "-p",
            "doppel-cli",
            "--bin",
            "doppel",
            "--target-dir",
        ])
        .arg(target_dir);
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let status = command.status().expect("could not start cargo to build the doppel CLI");
    assert!(status.success(), "`cargo build -p doppel-cli` failed ({status})");
    profile_dir.join(format!("doppel{}", std::env::consts::EXE_SUFFIX))
});

/// Path of the `doppel` CLI under test, built on first use (see the module docs).
pub fn doppel_bin() -> &'static Path {
    &DOPPEL_BIN
}

/// What one run of the CLI did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

/// Runs `doppel args...` to completion.
pub fn doppel(args: &[&str]) -> Run {
    let output = Command::new(doppel_bin())
        .args(args)
        .stdin(Stdio::null())
        .env_remove("DOPPEL_PROFILE")
        .output()
        .expect("could not start the doppel CLI");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `doppel args...`, panics with its stderr unless it succeeds, returns its stdout.
pub fn doppel_ok(args: &[&str]) -> String {
    let run = doppel(args);
    assert_eq!(run.code, Some(0), "`doppel {}` failed:\n{}", args.join(" "), run.stderr);
    run.stdout
}

/// Runs `doppel args...` (which should include `--json`) and parses its stdout as one JSON object.
pub fn doppel_json(args: &[&str]) -> serde_json::Value {
    let stdout = doppel_ok(args);
    let value: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("`doppel {}` printed no JSON ({error}):\n{stdout}", args.join(" ")));
    assert!(
        value.is_object(),
        "`doppel {}` printed JSON that is not an object: {value}",
        args.join(" ")
    );
    value
}

/// Runs `doppel args...` expecting failure: a non-zero exit and exactly one non-empty line on
/// stderr, which is returned.
pub fn doppel_error(args: &[&str]) -> String {
    let run = doppel(args);
    assert!(
        run.code.is_some_and(|code| code != 0),
        "`doppel {}` should fail but exited with {:?}; stderr:\n{}",
        args.join(" "),
        run.code,
        run.stderr
    );
    let lines: Vec<&str> = run.stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "`doppel {}` should print one error line, printed:\n{}",
        args.join(" "),
        run.stderr
    );
    lines[0].to_owned()
}

/// A number field of a JSON report; panics naming the field when it is absent or not a number.
pub fn number(report: &serde_json::Value, key: &str) -> f64 {
    report
        .get(key)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("no number '{key}' in {report}"))
}

/// A string field of a JSON report; panics naming the field when it is absent or not a string.
pub fn text<'a>(report: &'a serde_json::Value, key: &str) -> &'a str {
    report
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("no string '{key}' in {report}"))
}

/// A folder for one test's files: `target/e2e-scratch/<name>`, emptied when made and kept
/// afterwards for inspection.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Makes (or empties) the folder `name`; names must be unique across all e2e tests.
    pub fn new(name: &str) -> Self {
        let dir = profile_dir()
            .parent()
            .expect("target folder")
            .join("e2e-scratch")
            .join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("could not empty the scratch folder");
        }
        std::fs::create_dir_all(&dir).expect("could not make the scratch folder");
        Self { dir }
    }

    /// Path of `file` inside the folder, as a string for command lines.
    pub fn file(&self, file: &str) -> String {
        self.dir
            .join(file)
            .to_str()
            .expect("scratch paths are UTF-8")
            .to_owned()
    }
}

/// A WAV file's first channel as `f32` samples in -1..1.
#[derive(Clone, Debug)]
pub struct Wav {
    /// Samples per second, in Hz.
    pub sample_rate: u32,
    /// Channel count of the file.
    pub channels: u16,
    /// The first channel.
    pub samples: Vec<f32>,
}

/// Reads a WAV file (integer or float samples).
pub fn read_wav(path: &str) -> Result<Wav> {
    let mut reader = hound::WavReader::open(path).with_context(|| format!("could not open {path}"))?;
    let spec = reader.spec();
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()?
        }
    };
    let samples = interleaved
        .iter()
        .step_by(usize::from(spec.channels))
        .copied()
        .collect();
    Ok(Wav {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        samples,
    })
}

/// Writes mono 32-bit float samples.
pub fn write_wav(path: &str, sample_rate: u32, samples: &[f32]) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec).with_context(|| format!("could not create {path}"))?;
    for &sample in samples {
        writer.write_sample(sample)?;
    }
    writer.finalize()?;
    Ok(())
}

/// Writes 32-bit float samples, one slice per channel (interleaved in the file).
pub fn write_wav_channels(path: &str, sample_rate: u32, channels: &[&[f32]]) -> Result<()> {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec).with_context(|| format!("could not create {path}"))?;
    let frames = channels.iter().map(|c| c.len()).min().unwrap_or(0);
    for n in 0..frames {
        for channel in channels {
            writer.write_sample(channel[n])?;
        }
    }
    writer.finalize()?;
    Ok(())
}

/// Reads every channel of a 32-bit float WAV file.
pub fn read_wav_channels(path: &str) -> Result<Vec<Vec<f32>>> {
    let mut reader = hound::WavReader::open(path).with_context(|| format!("could not open {path}"))?;
    let channels = usize::from(reader.spec().channels);
    let interleaved: Vec<f32> = reader.samples::<f32>().collect::<Result<_, _>>()?;
    Ok((0..channels)
        .map(|c| interleaved.iter().skip(c).step_by(channels).copied().collect())
        .collect())
}

/// Error-to-signal ratio `Σ(target - prediction)² / Σ target²` over equal-length slices.
pub fn esr(target: &[f32], prediction: &[f32]) -> Result<f64> {
    ensure!(
        target.len() == prediction.len(),
        "lengths differ: {} vs {}",
        target.len(),
        prediction.len()
    );
    let energy: f64 = target.iter().map(|&t| f64::from(t).powi(2)).sum();
    ensure!(energy > 0.0, "the target is silent");
    let error: f64 = target
        .iter()
        .zip(prediction)
        .map(|(&t, &p)| (f64::from(t) - f64::from(p)).powi(2))
        .sum();
    Ok(error / energy)
}

/// The ESR of `prediction` against `target` delayed by `lag_samples` (prediction[n] against
/// target[n + lag]), over the samples both cover after skipping `skip_samples` at the start.
pub fn esr_at_lag(target: &[f32], prediction: &[f32], lag_samples: i64, skip_samples: usize) -> Result<f64> {
    let (target, prediction) = if lag_samples >= 0 {
        (&target[lag_samples as usize..], prediction)
    } else {
        (target, &prediction[lag_samples.unsigned_abs() as usize..])
    };
    let len = target.len().min(prediction.len());
    ensure!(
        len > skip_samples,
        "no overlap left after skipping {skip_samples} samples"
    );
    esr(&target[skip_samples..len], &prediction[skip_samples..len])
}

/// True when every sample is finite.
pub fn all_finite(samples: &[f32]) -> bool {
    samples.iter().all(|s| s.is_finite())
}

/// Root-mean-square level.
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esr_is_zero_for_a_perfect_copy_and_one_for_silence() {
        let target: Vec<f32> = (0..100).map(|n| (n as f32 * 0.1).sin()).collect();
        assert!(esr(&target, &target).unwrap() < 1e-12);
        assert!((esr(&target, &vec![0.0; 100]).unwrap() - 1.0).abs() < 1e-12);
        assert!(esr(&vec![0.0; 100], &target).is_err());
    }

    #[test]
    fn esr_at_lag_lines_up_a_delayed_target() {
        let input: Vec<f32> = (0..200).map(|n| (n as f32 * 0.37).sin()).collect();
        let mut delayed = vec![0.0; 5];
        delayed.extend_from_slice(&input[..195]);
        assert!(esr_at_lag(&delayed, &input, 5, 0).unwrap() < 1e-12);
        assert!(esr_at_lag(&delayed, &input, 0, 0).unwrap() > 0.1);
        assert!(esr_at_lag(&input, &delayed, -5, 0).unwrap() < 1e-12);
    }

    #[test]
    fn wav_files_round_trip_float_samples() {
        let scratch = Scratch::new("lib-wav-round-trip");
        let path = scratch.file("tone.wav");
        let samples: Vec<f32> = (0..480).map(|n| 0.5 * (n as f32 * 0.05).sin()).collect();
        write_wav(&path, 48_000, &samples).unwrap();
        let wav = read_wav(&path).unwrap();
        assert_eq!((wav.sample_rate, wav.channels), (48_000, 1));
        assert_eq!(wav.samples, samples);
        assert!((rms(&samples) - 0.5 / 2f64.sqrt()).abs() < 0.01);
    }
}
