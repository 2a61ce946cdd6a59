//! `doppel reference`: a built-in stand-in device, the tube amp (plus a fixed delay) or the
//! feed-forward compressor (stereo-linked on a stereo file).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use doppel_engine::profile::KnobDescriptor;
use doppel_engine::reference::{
    reference_amp_knobs, reference_compressor_knobs, run_reference_amp, CompressorSettings, Detector,
    ReferenceCompressor,
};
use doppel_engine::wav::{read_wav_channels, read_wav_mono, write_wav_channels, write_wav_mono};

/// Which built-in device to play.
#[derive(Clone, Copy, ValueEnum)]
pub enum ReferenceDevice {
    /// The tube amp and cabinet (knobs gain and tone, 0..10).
    Amp,
    /// The feed-forward compressor (knobs threshold_db, ratio, attack_ms, release_ms).
    Compressor,
}

/// Arguments of `doppel reference`.
#[derive(Args)]
pub struct ReferenceArgs {
    /// Clean WAV to play into the device.
    #[arg(long)]
    input: PathBuf,
    /// Where to write what the device returns.
    #[arg(long)]
    output: PathBuf,
    /// The device.
    #[arg(long, value_enum, default_value = "amp")]
    device: ReferenceDevice,
    /// Knob as NAME=VALUE: gain and tone (0..10) for the amp; threshold_db (-40..0), ratio
    /// (1..20), attack_ms (0.1..100) and release_ms (20..2000) for the compressor.
    #[arg(long = "knob", value_parser = super::parse_knob)]
    knobs: Vec<(String, f32)>,
    /// Compressor only: a peak detector instead of the RMS one.
    #[arg(long)]
    peak: bool,
}

/// The knob values in `descriptors` order, defaults where not given.
fn knob_values(descriptors: &[KnobDescriptor], knobs: &[(String, f32)], device: &str) -> Result<Vec<f32>> {
    let mut values: Vec<f32> = descriptors.iter().map(|k| k.default).collect();
    for (name, value) in knobs {
        let Some(i) = descriptors.iter().position(|k| k.name.eq_ignore_ascii_case(name)) else {
            let names: Vec<&str> = descriptors.iter().map(|k| k.name.as_str()).collect();
            bail!(
                "unknown knob '{name}' (the reference {device} has {})",
                names.join(", ")
            );
        };
        let knob = &descriptors[i];
        if !(knob.min..=knob.max).contains(value) {
            bail!("knob '{name}' value {value} is outside {}..{}", knob.min, knob.max);
        }
        values[i] = *value;
    }
    Ok(values)
}

/// Runs the device.
pub fn run(args: ReferenceArgs) -> Result<()> {
    match args.device {
        ReferenceDevice::Amp => {
            let input = read_wav_mono(&args.input)?;
            let values = knob_values(&reference_amp_knobs(), &args.knobs, "amp")?;
            let output = run_reference_amp(&input.samples, input.sample_rate, values[0], values[1]);
            write_wav_mono(&args.output, &output, input.sample_rate)?;
            eprintln!(
                "wrote {} (tube amp, gain {}, tone {})",
                args.output.display(),
                values[0],
                values[1]
            );
        }
        ReferenceDevice::Compressor => {
            let values = knob_values(&reference_compressor_knobs(), &args.knobs, "compressor")?;
            let settings = CompressorSettings {
                threshold_db: values[0],
                ratio: values[1],
                attack_ms: values[2],
                release_ms: values[3],
                detector: if args.peak { Detector::Peak } else { Detector::Rms },
                ..CompressorSettings::default()
            };
            let input = read_wav_channels(&args.input)?;
            let mut compressor = ReferenceCompressor::new(input.sample_rate as f32, settings);
            match input.channels.as_slice() {
                [mono] => {
                    let mut output = vec![0.0; mono.len()];
                    compressor.process(mono, &mut output);
                    write_wav_mono(&args.output, &output, input.sample_rate)?;
                }
                [left, right] => {
                    let (mut left, mut right) = (left.clone(), right.clone());
                    compressor.process_stereo(&mut left, &mut right);
                    write_wav_channels(&args.output, &[&left, &right], input.sample_rate)?;
                }
                more => bail!(
                    "{} has {} channels: the reference compressor takes mono or stereo",
                    args.input.display(),
                    more.len()
                ),
            }
            eprintln!(
                "wrote {} (compressor, threshold {} dB, ratio {}:1, attack {} ms, release {} ms)",
                args.output.display(),
                values[0],
                values[1],
                values[2],
                values[3]
            );
        }
    }
    Ok(())
}
