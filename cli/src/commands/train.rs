//! `doppel train`: captures in, profile out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use doppel_engine::dataset::{load_dataset, CaptureSpec, CapturesFile, LoadOptions};
use doppel_engine::profile::{ProfileMeta, FORMAT_VERSION};
use doppel_engine::train::{train, TrainConfig};
use doppel_engine::{ModelConfig, Profile, Size};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Alignment margin for WaveNets: 16 samples at 48 kHz.
const CAUSALITY_MARGIN_SECONDS: f32 = 1.0 / 3000.0;

/// Arguments of `doppel train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Clean signal that went into the device.
    #[arg(long, requires = "target", conflicts_with = "captures")]
    input: Option<PathBuf>,
    /// The device's recorded output.
    #[arg(long, requires = "input", conflicts_with = "captures")]
    target: Option<PathBuf>,
    /// Knob setting of this capture as NAME=VALUE (repeatable).
    #[arg(long = "knob", value_parser = super::parse_knob, conflicts_with = "captures")]
    knobs: Vec<(String, f32)>,
    /// A captures.toml listing several pairs with knob values.
    #[arg(long, required_unless_present = "input")]
    captures: Option<PathBuf>,
    /// Architecture: wavenet or lstm.
    #[arg(long, default_value = "wavenet")]
    arch: String,
    /// Size preset: nano, feather, lite or standard.
    #[arg(long, default_value = "nano")]
    size: String,
    /// Wall-time budget in minutes (default 3 when --steps is not given either).
    #[arg(long)]
    minutes: Option<f32>,
    /// Step budget.
    #[arg(long)]
    steps: Option<u64>,
    /// Seed for initialisation and batch sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Profile display name (default: the output file's stem).
    #[arg(long)]
    name: Option<String>,
    /// Device latency in samples, instead of finding it by cross-correlation.
    #[arg(long, allow_negative_numbers = true)]
    latency: Option<i64>,
    /// Profile file to write.
    #[arg(long)]
    out: PathBuf,
    /// Print one JSON object with the results on stdout.
    #[arg(long)]
    json: bool,
}

/// Loads the captures, trains and writes the profile.
pub fn run(args: TrainArgs) -> Result<()> {
    let (specs, ranges) = match (&args.captures, &args.input, &args.target) {
        (Some(path), _, _) => {
            let file = CapturesFile::load(path)?;
            (file.capture, file.knobs)
        }
        (None, Some(input), Some(target)) => {
            let knobs: BTreeMap<String, f32> = args.knobs.iter().cloned().collect();
            (
                vec![CaptureSpec {
                    input: input.clone(),
                    target: target.clone(),
                    knobs,
                }],
                BTreeMap::new(),
            )
        }
        _ => bail!("give --input and --target, or --captures"),
    };
    let size = Size::parse(&args.size)?;
    // A WaveNet has receptive field to spare for a margin that keeps the target causal; a
    // small LSTM models a delay poorly, so it trains on the measured alignment itself.
    let causality_margin_seconds = if args.arch == "wavenet" {
        CAUSALITY_MARGIN_SECONDS
    } else {
        0.0
    };
    let options = LoadOptions {
        latency_override: args.latency,
        causality_margin_seconds,
        ..LoadOptions::default()
    };
    let dataset = load_dataset(&specs, &ranges, &options)?;
    for note in &dataset.notes {
        eprintln!("note: {note}");
    }
    for (spec, pair) in specs.iter().zip(&dataset.pairs) {
        let how = if args.latency.is_some() {
            "given"
        } else {
            "found by cross-correlation"
        };
        eprintln!(
            "latency of {}: {} samples ({how})",
            spec.target.display(),
            pair.latency_samples
        );
    }
    let model = ModelConfig::preset(&args.arch, size, dataset.knobs.len())?;
    let mut config = TrainConfig::new(model.clone());
    config.seed = args.seed;
    config.max_steps = args.steps;
    config.max_seconds = match (args.minutes, args.steps) {
        (Some(minutes), _) => Some(minutes * 60.0),
        (None, Some(_)) => None,
        (None, None) => Some(180.0),
    };
    eprintln!(
        "training {}/{} ({} parameters) on {:.1} s of audio",
        model.architecture(),
        size.name(),
        model.parameter_count(),
        dataset.seconds()
    );
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")?.progress_chars("=> "));
    let outcome = train(&config, &dataset, None, &mut |p| {
        bar.set_position((p.fraction_done * 1000.0) as u64);
        bar.set_message(format!(
            "step {} loss {:.4} best validation ESR {:.4}",
            p.step, p.loss, p.best_validation_esr
        ));
    })?;
    bar.finish_and_clear();
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_stem()
            .map_or("Doppel profile".to_string(), |s| s.to_string_lossy().into_owned())
    });
    let meta = ProfileMeta {
        format_version: FORMAT_VERSION,
        name,
        notes: String::new(),
        model,
        sample_rate: dataset.sample_rate,
        knobs: dataset.knobs.clone(),
        latency_samples: 0,
        training: Some(outcome.summary.clone()),
        accuracy: Some(outcome.accuracy.clone()),
    };
    let profile = Profile::new(meta, outcome.weights).context("training produced an invalid profile")?;
    profile.save(&args.out)?;
    let summary = &outcome.summary;
    if args.json {
        let json = serde_json::json!({
            "out": args.out,
            "esr": outcome.accuracy.esr,
            "esr_preemph": outcome.accuracy.esr_preemph,
            "validation_seconds": outcome.accuracy.seconds,
            "steps": summary.steps,
            "wall_seconds": summary.wall_seconds,
            "latency_samples": summary.device_latency_samples.first().copied().unwrap_or(0),
            "latencies_samples": summary.device_latency_samples,
            "architecture": profile.meta.model.architecture(),
            "size": size.name(),
            "parameters": profile.meta.model.parameter_count(),
            "rollbacks": outcome.rollbacks,
        });
        println!("{json}");
    } else {
        println!(
            "wrote {}: validation ESR {:.5} (pre-emphasised {:.5}) after {} steps in {:.1} s",
            args.out.display(),
            outcome.accuracy.esr,
            outcome.accuracy.esr_preemph,
            summary.steps,
            summary.wall_seconds
        );
    }
    Ok(())
}
