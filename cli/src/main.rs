//! `doppel`: the headless command line. Capture signals, the built-in reference device,
//! training, offline processing, evaluation, benchmarks and profile inspection.

mod commands;
mod interrupt;

use clap::{Parser, Subcommand};

/// Doppel: learn an audio effect from clean-in / device-out recordings, and play it.
#[derive(Parser)]
#[command(name = "doppel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a deterministic capture signal (or a held-out test phrase) to a WAV file.
    Signal(commands::signal::SignalArgs),
    /// Run a WAV through the built-in reference tube amp (a stand-in for hardware).
    Reference(commands::reference::ReferenceArgs),
    /// Train a profile from capture pairs.
    Train(Box<commands::train::TrainArgs>),
    /// Process a WAV through a profile.
    Process(commands::process::ProcessArgs),
    /// Measure a profile's accuracy against a device's output.
    Eval(commands::eval::EvalArgs),
    /// Measure a profile's real-time cost on one core.
    Bench(commands::bench::BenchArgs),
    /// Show what a profile holds.
    Info(commands::info::InfoArgs),
    /// Import a NAM (.nam) or AIDA-X / Proteus (.json) model as a profile.
    Import(commands::import::ImportArgs),
    /// Export a profile as a NAM (.nam) file.
    Export(commands::export::ExportArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Signal(args) => commands::signal::run(args),
        Command::Reference(args) => commands::reference::run(args),
        Command::Train(args) => commands::train::run(*args),
        Command::Process(args) => commands::process::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Info(args) => commands::info::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Export(args) => commands::export::run(args),
    };
    if let Err(error) = result {
        // One line: the outermost context and its causes, joined.
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
