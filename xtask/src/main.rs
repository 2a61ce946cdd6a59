//! `cargo xtask`: Doppel's developer commands (runs on the developer's or CI's main thread).
//!
//! `demo` and `test` are Doppel's own; every other command (`bundle`, `bundle-universal`,
//! `known-packages`) goes to nice-plug's bundler unchanged.

mod bundle;
mod ci;
mod demo;
mod deps;
mod steps;

use anyhow::Result;

const USAGE: &str = "\
Usage:
  cargo xtask demo                 build the CLI, capture and train the built-in tube amp,
                                   evaluate it on held-out audio, bundle the plugin with it
  cargo xtask test [--only STEPS] [--skip STEPS]
                                   everything CI runs, in order, failing fast
                                   (STEPS: comma-separated names from the list below)
  cargo xtask deps                 install missing system packages and the Python venv
  cargo xtask bundle <package> [--release]
                                   nice-plug's bundler: writes target/bundled/<Name>.clap/.vst3

Test steps: deps, venv, fmt, clippy, build, test, bundle, standalone, host";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = run(args) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let command = args.first().map(String::as_str).unwrap_or("help");
    match command {
        "demo" => {
            steps::ensure_no_extra_args(&args[1..])?;
            demo::run()
        }
        "test" => ci::run(ci::StepFilter::parse(&args[1..])?),
        "deps" => {
            steps::ensure_no_extra_args(&args[1..])?;
            deps::ensure_system_packages()?;
            deps::ensure_python_venv()
        }
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bundle::passthrough(args),
    }
}
