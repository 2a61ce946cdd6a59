//! `doppel eval`: a profile's accuracy against what the device did to the same input, scored
//! the way a DAW plays the profile: its output with the latency it reports removed, against the
//! device's output with the device's latency removed. The best-lag ESR is reported beside it,
//! never instead: the gap between the two is timing error. A stereo-linked profile is scored
//! over both channels of a stereo device output.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use doppel_engine::align::align_pair;
use doppel_engine::dataset::{align_capture, measure_capture, LoadOptions};
use doppel_engine::metrics::{best_lag_esr, esr, gain_reduction_db_rms, gain_reduction_error_db, measure};
use doppel_engine::wav::{read_wav_mono, WavChannels};
use doppel_engine::Profile;

/// Lags searched on each side for the best-lag figure, in samples.
const BEST_LAG_SEARCH_SAMPLES: usize = 64;

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
    /// Device latency in samples (default: the latency training measured for this device,
    /// else found by cross-correlation of these files).
    #[arg(long, allow_negative_numbers = true)]
    latency: Option<i64>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// One channel as scored: the aligned input, the aligned device output, the profile's.
struct Track {
    input: Vec<f32>,
    target: Vec<f32>,
    prediction: Vec<f32>,
}

/// Aligns, plays and scores.
pub fn run(args: EvalArgs) -> Result<()> {
    let profile = Profile::load(&args.profile)?;
    let input = super::read_input_for(&profile, &args.input)?;
    let target = read_wav_mono(&args.target)?;
    let max_latency_seconds = LoadOptions::default().max_latency_seconds;
    let measure_latency = || {
        measure_capture(
            (&input, &args.input),
            (&target, &args.target),
            None,
            max_latency_seconds,
        )
    };
    let trained = profile.meta.training.as_ref().and_then(|t| t.device_latency());
    let (device_latency, source, measured) = match (args.latency, trained) {
        (Some(latency), _) => (latency, "given", None),
        (None, Some(latency)) => (latency, "training", Some(measure_latency()?)),
        (None, None) => {
            let measured = measure_latency()?;
            (measured, "measured", Some(measured))
        }
    };
    if let Some(measured) = measured.filter(|&m| source == "training" && m.abs_diff(device_latency) > 1) {
        eprintln!(
            "note: these files put the device {measured} samples late, training measured {device_latency}; scoring with training's (pass --latency {measured} if this recording chain differs)"
        );
    }
    let (aligned_input, aligned_target, _) = align_capture(
        (&input, &args.input),
        (&target, &args.target),
        Some(device_latency),
        max_latency_seconds,
        0,
    )?;
    let seconds = aligned_target.len() as f32 / input.sample_rate as f32;
    // Per channel: aligned input, aligned target, prediction. A stereo-linked profile plays a
    // stereo device output's two channels at once (each aligned by the latency found on the
    // mix); anything else plays the mono mix.
    let targets = super::is_linked(&profile)
        .then(|| super::read_channels_for(&profile, &args.target))
        .transpose()?;
    let tracks: Vec<Track> = match targets {
        Some(targets) if targets.channels.len() == 2 => {
            let inputs = super::read_channels_for(&profile, &args.input)?;
            fn pick(audio: &WavChannels, c: usize) -> &[f32] {
                &audio.channels[c.min(audio.channels.len() - 1)]
            }
            let pairs: Vec<(Vec<f32>, Vec<f32>)> = (0..2)
                .map(|c| align_pair(pick(&inputs, c), pick(&targets, c), device_latency))
                .collect();
            let views: Vec<&[f32]> = pairs.iter().map(|(input, _)| input.as_slice()).collect();
            let played = super::play_channels_compensated(&profile, &views, &args.knobs)?;
            pairs
                .into_iter()
                .zip(played)
                .map(|((input, target), prediction)| Track {
                    input,
                    target,
                    prediction,
                })
                .collect()
        }
        _ => {
            let prediction = super::play_compensated(&profile, &aligned_input, &args.knobs)?;
            vec![Track {
                input: aligned_input,
                target: aligned_target,
                prediction,
            }]
        }
    };
    // Scores over every channel: the waveform metrics on the channels one after another (the
    // ESR is then the stereo one, energy over both), the gain curve per channel, combined.
    let prediction: Vec<f32> = tracks.iter().flat_map(|t| t.prediction.iter().copied()).collect();
    let aligned_target: Vec<f32> = tracks.iter().flat_map(|t| t.target.iter().copied()).collect();
    let metrics = measure(&prediction, &aligned_target);
    let (best_lag, esr_best_lag) = best_lag_esr(&prediction, &aligned_target, BEST_LAG_SEARCH_SAMPLES);
    let esr_channels: Vec<f32> = tracks.iter().map(|t| esr(&t.prediction, &t.target)).collect();
    let profile_latency = profile.meta.latency_samples;
    // Dynamics profiles are also scored on their gain curve, where the ear is sensitive.
    let dynamics = profile.meta.model.architecture() == "compressor"
        || profile.meta.training.as_ref().is_some_and(|t| t.effect == "compressor");
    let rate = input.sample_rate;
    let rms_over_channels = |values: Option<Vec<f32>>| {
        values.map(|v| (v.iter().map(|x| x * x).sum::<f32>() / v.len().max(1) as f32).sqrt())
    };
    let gain_error = dynamics
        .then(|| {
            let model = rms_over_channels(
                tracks
                    .iter()
                    .map(|t| gain_reduction_error_db(&t.input, &t.prediction, &t.target, rate))
                    .collect(),
            )?;
            let bypass = rms_over_channels(
                tracks
                    .iter()
                    .map(|t| gain_reduction_db_rms(&t.input, &t.target, rate))
                    .collect(),
            )?;
            Some((model, bypass))
        })
        .flatten();
    if args.json {
        let mut json = serde_json::to_value(metrics)?;
        json["esr_best_lag"] = esr_best_lag.into();
        json["best_lag_samples"] = best_lag.into();
        json["latency_samples"] = device_latency.into();
        json["latency_source"] = source.into();
        json["measured_latency_samples"] = measured.map_or(serde_json::Value::Null, Into::into);
        json["profile_latency_samples"] = profile_latency.into();
        json["seconds"] = seconds.into();
        json["profile"] = profile.meta.name.clone().into();
        if tracks.len() > 1 {
            json["esr_channels"] = esr_channels.clone().into();
        }
        if let Some((error_db, bypass_db)) = gain_error {
            json["gain_reduction_error_db"] = error_db.into();
            json["gain_reduction_error_db_bypass"] = bypass_db.into();
        }
        println!("{json}");
    } else {
        println!(
            "ESR {:.5}  pre-emphasised ESR {:.5}  SNR {:.2} dB  MR-STFT {:.4}  as a DAW plays it (profile latency {profile_latency}, device latency {device_latency} samples, {source}; {seconds:.1} s)",
            metrics.esr, metrics.esr_preemph, metrics.snr_db, metrics.mrstft
        );
        println!("best-lag ESR {esr_best_lag:.5} at {best_lag:+} samples from the reported latency");
        if tracks.len() > 1 {
            println!(
                "stereo-linked: ESR left {:.5}, right {:.5}",
                esr_channels[0], esr_channels[1]
            );
        }
        if let Some((error_db, bypass_db)) = gain_error {
            println!("gain-reduction error {error_db:.3} dB RMS (doing nothing: {bypass_db:.3} dB)");
        }
    }
    Ok(())
}
