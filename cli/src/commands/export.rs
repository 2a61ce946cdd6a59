//! `doppel export`: a Doppel profile as a NAM (`.nam`) file, so captures are never locked in.
//!
//! NAM's convention is that a model's output lines up with its input: a `.nam` file has no
//! latency field and NAM's plugin reports none. The weights are written exactly as trained, so
//! a profile with a nonzero latency plays that many samples late in NAM; the command says so.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use doppel_engine::{interop, Profile};

/// Arguments of `doppel export`.
#[derive(Args)]
pub struct ExportArgs {
    /// Profile to export (WaveNet, or LSTM without skip; no knobs).
    profile: PathBuf,
    /// NAM file to write.
    #[arg(long)]
    out: PathBuf,
}

/// Loads the profile and writes it as a NAM file.
pub fn run(args: ExportArgs) -> Result<()> {
    let profile = Profile::load(&args.profile)?;
    interop::export_nam_file(&profile, &args.out)?;
    println!("exported '{}' -> {}", profile.meta.name, args.out.display());
    let latency = profile.meta.latency_samples;
    if latency > 0 {
        eprintln!(
            "note: NAM files carry no latency; this profile's output is {latency} samples ({:.2} ms) later than its input, so NAM plays it that much late",
            latency as f32 * 1000.0 / profile.meta.sample_rate as f32
        );
    }
    Ok(())
}
