//! `doppel process`: a WAV through a profile, offline, with the plugin's kernel. The output
//! is time-aligned with the input, the profile's reported latency removed as a DAW's delay
//! compensation removes it; `--raw` writes the stream the plugin plays, latency included. A
//! stereo-linked profile plays a stereo file as a stereo track (one detector, one gain); other
//! profiles play its mono mix.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use doppel_engine::wav::{write_wav_channels, write_wav_mono};
use doppel_engine::Profile;

/// Arguments of `doppel process`.
#[derive(Args)]
pub struct ProcessArgs {
    /// Profile to play.
    #[arg(long)]
    profile: PathBuf,
    /// WAV to process (downmixed to mono, except through a stereo-linked profile, which plays
    /// one or two channels as they are).
    #[arg(long)]
    input: PathBuf,
    /// WAV to write (32-bit float; mono, or the input's channels through a stereo-linked
    /// profile).
    #[arg(long)]
    output: PathBuf,
    /// Knob setting as NAME=VALUE in the knob's unit (repeatable; others at their defaults).
    #[arg(long = "knob", value_parser = super::parse_knob)]
    knobs: Vec<(String, f32)>,
    /// Write the model's output as the plugin streams it, its reported latency not removed.
    #[arg(long)]
    raw: bool,
}

/// Processes the file.
pub fn run(args: ProcessArgs) -> Result<()> {
    let profile = Profile::load(&args.profile)?;
    let latency = profile.meta.latency_samples;
    if super::is_linked(&profile) {
        let input = super::read_channels_for(&profile, &args.input)?;
        let views: Vec<&[f32]> = input.channels.iter().map(Vec::as_slice).collect();
        let output = if args.raw {
            super::play_channels(&profile, &views, &args.knobs)?
        } else {
            super::play_channels_compensated(&profile, &views, &args.knobs)?
        };
        let views: Vec<&[f32]> = output.iter().map(Vec::as_slice).collect();
        write_wav_channels(&args.output, &views, input.sample_rate)?;
        eprintln!(
            "wrote {} ({} channels of {} samples through stereo-linked '{}'; latency {latency} samples{})",
            args.output.display(),
            output.len(),
            output[0].len(),
            profile.meta.name,
            if args.raw { ", left in" } else { ", removed" }
        );
        return Ok(());
    }
    let input = super::read_input_for(&profile, &args.input)?;
    let (output, timing) = if args.raw {
        let output = super::play(&profile, &input.samples, &args.knobs)?;
        (output, format!("raw: {latency} samples of latency left in"))
    } else {
        let output = super::play_compensated(&profile, &input.samples, &args.knobs)?;
        (
            output,
            format!("aligned with the input: {latency} samples of latency removed"),
        )
    };
    write_wav_mono(&args.output, &output, input.sample_rate)?;
    eprintln!(
        "wrote {} ({} samples through '{}'; {timing})",
        args.output.display(),
        output.len(),
        profile.meta.name
    );
    Ok(())
}
