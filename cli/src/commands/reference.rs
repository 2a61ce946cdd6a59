//! `doppel reference`: the built-in tube amp (plus a fixed delay) as a stand-in device.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use doppel_engine::reference::{reference_amp_knobs, run_reference_amp};
use doppel_engine::wav::{read_wav_mono, write_wav_mono};

/// Arguments of `doppel reference`.
#[derive(Args)]
pub struct ReferenceArgs {
    /// Clean WAV to play into the amp.
    #[arg(long)]
    input: PathBuf,
    /// Where to write what the amp returns.
    #[arg(long)]
    output: PathBuf,
    /// Amp knob as NAME=VALUE (gain and tone, 0..10).
    #[arg(long = "knob", value_parser = super::parse_knob)]
    knobs: Vec<(String, f32)>,
}

/// Runs the amp.
pub fn run(args: ReferenceArgs) -> Result<()> {
    let descriptors = reference_amp_knobs();
    let mut values: Vec<f32> = descriptors.iter().map(|k| k.default).collect();
    for (name, value) in &args.knobs {
        let Some(i) = descriptors.iter().position(|k| k.name.eq_ignore_ascii_case(name)) else {
            bail!("unknown knob '{name}' (the reference amp has gain and tone)");
        };
        let knob = &descriptors[i];
        if !(knob.min..=knob.max).contains(value) {
            bail!("knob '{name}' value {value} is outside {}..{}", knob.min, knob.max);
        }
        values[i] = *value;
    }
    let input = read_wav_mono(&args.input)?;
    let output = run_reference_amp(&input.samples, input.sample_rate, values[0], values[1]);
    write_wav_mono(&args.output, &output, input.sample_rate)?;
    eprintln!(
        "wrote {} (tube amp, gain {}, tone {})",
        args.output.display(),
        values[0],
        values[1]
    );
    Ok(())
}
