//! `doppel process`: a WAV through a profile, offline, with the plugin's kernel.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use doppel_engine::wav::write_wav_mono;
use doppel_engine::Profile;

/// Arguments of `doppel process`.
#[derive(Args)]
pub struct ProcessArgs {
    /// Profile to play.
    #[arg(long)]
    profile: PathBuf,
    /// WAV to process (stereo is downmixed).
    #[arg(long)]
    input: PathBuf,
    /// WAV to write (32-bit float, mono).
    #[arg(long)]
    output: PathBuf,
    /// Knob setting as NAME=VALUE in the knob's unit (repeatable; others at their defaults).
    #[arg(long = "knob", value_parser = super::parse_knob)]
    knobs: Vec<(String, f32)>,
}

/// Processes the file.
pub fn run(args: ProcessArgs) -> Result<()> {
    let profile = Profile::load(&args.profile)?;
    let input = super::read_input_for(&profile, &args.input)?;
    let output = super::play(&profile, &input.samples, &args.knobs)?;
    write_wav_mono(&args.output, &output, input.sample_rate)?;
    eprintln!(
        "wrote {} ({} samples through '{}')",
        args.output.display(),
        output.len(),
        profile.meta.name
    );
    Ok(())
}
