//! `doppel eval`: a profile's accuracy against what the device did to the same input.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use doppel_engine::dataset::{align_capture, LoadOptions};
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
    // Align as training did: the model's output runs the profile's margin behind the device.
    let margin_samples = profile.meta.training.as_ref().map_or(0, |t| t.alignment_margin_samples);
    let (aligned_input, aligned_target, latency_samples) = align_capture(
        (&input, &args.input),
        (&target, &args.target),
        args.latency,
        LoadOptions::default().max_latency_seconds,
        margin_samples,
    )?;
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
