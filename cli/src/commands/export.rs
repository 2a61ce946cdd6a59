//! `doppel export`: a Doppel profile as a NAM (`.nam`) file, so captures are never locked in.

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
    Ok(())
}
