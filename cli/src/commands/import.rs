//! `doppel import`: a NAM (`.nam`) or AIDA-X / Proteus (`.json`) model file as a Doppel profile.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use doppel_engine::interop::{self, ImportOptions};

/// Arguments of `doppel import`.
#[derive(Args)]
pub struct ImportArgs {
    /// Model file: NAM `.nam` (WaveNet, LSTM) or AIDA-X / Proteus `.json` (LSTM, GRU).
    file: PathBuf,
    /// Profile to write.
    #[arg(long)]
    out: PathBuf,
    /// Display name (default: the file's own name, else its file name).
    #[arg(long)]
    name: Option<String>,
    /// Sample rate in Hz for files that do not state one (default 48000).
    #[arg(long)]
    sample_rate: Option<u32>,
}

/// Imports the file, validates the result and saves it.
pub fn run(args: ImportArgs) -> Result<()> {
    let options = ImportOptions {
        name: args.name,
        sample_rate: args.sample_rate,
        fallback_name: None,
    };
    let profile = interop::import_file(&args.file, &options)?;
    profile.save(&args.out)?;
    let (architecture, size) = super::model_label(&profile);
    println!(
        "imported '{}' ({architecture}/{size}, {} parameters, {} knobs, {} Hz) -> {}",
        profile.meta.name,
        profile.meta.model.parameter_count(),
        profile.meta.knobs.len(),
        profile.meta.sample_rate,
        args.out.display()
    );
    Ok(())
}
