//! `doppel train`: captures in, profile out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use doppel_engine::dataset::{load_dataset, CaptureSpec, CapturesFile, LoadOptions};
use doppel_engine::profile::{ProfileMeta, FORMAT_VERSION};
use doppel_engine::train::{train, EffectKind, Objective, TrainConfig};
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
    #[arg(long, default_value = "feather")]
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
    /// Recurrent models: no input-to-output skip connection (NAM's LSTM has none, so only
    /// such LSTMs can be exported with `doppel export`).
    #[arg(long)]
    no_skip: bool,
    /// Kind of effect, which picks the default loss weights: amp, compressor or denoiser.
    #[arg(long, default_value = "amp")]
    effect: String,
    /// Loss term weight as TERM=WEIGHT (repeatable); terms: esr, esr_preemph,
    /// esr_a_weighted, mrstft, dc.
    #[arg(long = "loss", value_parser = parse_loss_weight)]
    loss_weights: Vec<(String, f32)>,
    /// Worker threads for training (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Segments per batch (default: the architecture's).
    #[arg(long)]
    batch: Option<usize>,
    /// Scored samples per segment (default: the architecture's).
    #[arg(long)]
    segment: Option<usize>,
    /// Peak learning rate (default: the architecture's).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Fraction of the peak learning rate reached at the end of the budget (default 0.02).
    #[arg(long)]
    final_lr_fraction: Option<f64>,
    /// Also write the best weights so far every this many seconds into --snapshot-dir, as
    /// `t<seconds>.doppel` (the accuracy-versus-time curve of one run).
    #[arg(long, requires = "snapshot_dir")]
    snapshot_every: Option<f32>,
    /// Folder for --snapshot-every profiles.
    #[arg(long, requires = "snapshot_every")]
    snapshot_dir: Option<PathBuf>,
}

/// Parses `TERM=WEIGHT` for `--loss`.
fn parse_loss_weight(text: &str) -> Result<(String, f32), String> {
    let (term, weight) = super::parse_knob(text)?;
    if weight < 0.0 {
        return Err(format!("loss weight of '{term}' must not be negative"));
    }
    Ok((term, weight))
}

/// The objective for `--effect` with `--loss` overrides.
fn objective(effect: &str, overrides: &[(String, f32)]) -> Result<Objective> {
    let kind = match effect {
        "amp" => EffectKind::AmpCab,
        "compressor" => EffectKind::Compressor,
        "denoiser" => EffectKind::Denoiser,
        other => bail!("unknown effect '{other}': expected amp, compressor or denoiser"),
    };
    let mut objective = Objective::for_effect(kind);
    for (term, weight) in overrides {
        let slot = match term.as_str() {
            "esr" => &mut objective.esr,
            "esr_preemph" => &mut objective.esr_preemph,
            "esr_a_weighted" => &mut objective.esr_a_weighted,
            "mrstft" => &mut objective.mrstft,
            "dc" => &mut objective.dc,
            other => bail!("unknown loss term '{other}': expected esr, esr_preemph, esr_a_weighted, mrstft or dc"),
        };
        *slot = *weight;
    }
    Ok(objective)
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
    let mut model = ModelConfig::preset(&args.arch, size, dataset.knobs.len())?;
    if args.no_skip {
        match &mut model {
            ModelConfig::Lstm(c) => c.skip = false,
            ModelConfig::Gru(c) => c.skip = false,
            ModelConfig::Wavenet(_) => bail!("--no-skip applies to lstm and gru models only"),
        }
    }
    let mut config = TrainConfig::new(model.clone());
    config.seed = args.seed;
    config.max_steps = args.steps;
    config.objective = objective(&args.effect, &args.loss_weights)?;
    if let Some(threads) = args.threads {
        config.threads = threads.max(1);
    }
    if let Some(batch) = args.batch {
        config.batch_size = batch;
    }
    if let Some(segment) = args.segment {
        config.segment_samples = segment;
    }
    if let Some(learning_rate) = args.learning_rate {
        config.learning_rate = learning_rate;
    }
    if let Some(fraction) = args.final_lr_fraction {
        config.final_learning_rate_fraction = fraction.clamp(1e-6, 1.0);
    }
    config.snapshot_every_seconds = args.snapshot_every.unwrap_or(0.0);
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
        calibration: None,
    };
    let profile = Profile::new(meta, outcome.weights).context("training produced an invalid profile")?;
    profile.save(&args.out)?;
    if let Some(dir) = &args.snapshot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (seconds, weights) in &outcome.snapshots {
            // Keeps the training summary: evaluation needs its alignment margin.
            let mut meta = profile.meta.clone();
            meta.accuracy = None;
            let path = dir.join(format!("t{seconds:06.1}.doppel"));
            Profile::new(meta, weights.clone())?.save(&path)?;
        }
    }
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
            "validation_curve": summary
                .validation_curve
                .iter()
                .zip(&summary.validation_seconds)
                .map(|(&(step, esr), &seconds)| serde_json::json!({"step": step, "seconds": seconds, "esr": esr}))
                .collect::<Vec<_>>(),
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
