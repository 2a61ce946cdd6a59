//! `doppel eval`: a profile's accuracy against what the device did to the same input.

use std::path::PathBuf;

use anyhow::{ensure, Result};
use clap::Args;
use doppel_engine::align::{align_pair, estimate_latency};
use doppel_engine::metrics::measure;
use doppel_engine::wav::read_wav_mono;
use doppel_engine::Profile;

/// Arguments of `doppel eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Profile to measure.
    #[arg(long)]
    profile: PathBuf,
    /// Clean signal that went into the device.
    #[arg(long)]
    input: PathBuf,
    /// The device's output for it.
    #[arg(long)]
    target: PathBuf,
    /// Knob setting of the device as NAME=VALUE (repeatable).
    #[arg(long = "knob", value_parser = super::parse_knob)]
    knobs: Vec<(String, f32)>,
    /// Device latency in samples, instead of finding it by cross-correlation.
    #[arg(long, allow_negative_numbers = true)]
    latency: Option<i64>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Aligns, plays and scores.
pub fn run(args: EvalArgs) -> Result<()> {
    let profile = Profile::load(&args.profile)?;
    let input = super::read_input_for(&profile, &args.input)?;
    let target = read_wav_mono(&args.target)?;
    ensure!(
        target.sample_rate == input.sample_rate,
        "sample rate mismatch: input is {} Hz but target is {} Hz",
        input.sample_rate,
        target.sample_rate
    );
    let max_latency = (input.sample_rate / 4) as usize;
    let difference = input.samples.len().abs_diff(target.samples.len());
    ensure!(
        difference <= max_latency,
        "length mismatch: input has {} samples, target {} ({difference} apart, more than the {max_latency}-sample latency window)",
        input.samples.len(),
        target.samples.len()
    );
    let latency_samples = match args.latency {
        Some(latency) => latency,
        None => estimate_latency(&input.samples, &target.samples, max_latency)?.latency_samples,
    };
    // Align as training did: the model's output runs the profile's margin behind the device.
    let margin = profile.meta.training.as_ref().map_or(0, |t| t.alignment_margin_samples);
    let (aligned_input, aligned_target) = align_pair(&input.samples, &target.samples, latency_samples - margin);
    let prediction = super::play(&profile, &aligned_input, &args.knobs)?;
    let metrics = measure(&prediction, &aligned_target);
    let seconds = aligned_target.len() as f32 / input.sample_rate as f32;
    if args.json {
        let mut json = serde_json::to_value(metrics)?;
        json["latency_samples"] = latency_samples.into();
        json["seconds"] = seconds.into();
        json["profile"] = profile.meta.name.clone().into();
        println!("{json}");
    } else {
        println!(
            "ESR {:.5}  pre-emphasised ESR {:.5}  SNR {:.2} dB  MR-STFT {:.4}  (latency {latency_samples} samples, {seconds:.1} s)",
            metrics.esr, metrics.esr_preemph, metrics.snr_db, metrics.mrstft
        );
    }
    Ok(())
}
