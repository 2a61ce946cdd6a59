//! `doppel train`: captures in, profile out.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use doppel_engine::dataset::{CaptureSpec, CapturesFile, KnobRangeSpec};
use doppel_engine::profile::ensure_writable;
use doppel_engine::train::{CaptureInput, EffectKind, Session, SessionConfig, SessionEvent};
use doppel_engine::{Profile, Size};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::interrupt;

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
    /// Architecture: wavenet, lstm, gru or compressor (default: the effect's, compressor for
    /// --effect compressor, wavenet otherwise).
    #[arg(long, conflicts_with = "from")]
    arch: Option<String>,
    /// Size preset: nano, feather, lite or standard.
    #[arg(long, default_value = "feather", conflicts_with = "from")]
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
    /// Causality margin in samples: the target is aligned this much later than the device
    /// latency, and the profile reports it as its latency (default: WaveNets measure what the
    /// device's pre-ringing needs, at most 32 samples at 48 kHz; recurrent models use 0).
    #[arg(long, conflicts_with = "from")]
    margin: Option<i64>,
    /// Fine-tune this profile's weights (its model, knobs and latency) instead of starting
    /// from scratch.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Profile file to write.
    #[arg(long)]
    out: PathBuf,
    /// Print one JSON object with the results on stdout.
    #[arg(long)]
    json: bool,
    /// Recurrent models: no input-to-output skip connection (NAM's LSTM has none, so only
    /// such LSTMs can be exported with `doppel export`).
    #[arg(long, conflicts_with = "from")]
    no_skip: bool,
    /// Kind of effect, which picks the default architecture, loss weights, segment length
    /// and warm-up (recorded in the profile): amp, compressor or denoiser.
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

/// The session's settings from the flags.
fn session_config(args: &TrainArgs, ranges: BTreeMap<String, KnobRangeSpec>) -> Result<SessionConfig> {
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_stem()
            .map_or("Doppel profile".to_string(), |s| s.to_string_lossy().into_owned())
    });
    let start_from = args.from.as_ref().map(Profile::load).transpose()?;
    let effect = EffectKind::parse(&args.effect)?;
    Ok(SessionConfig {
        architecture: args
            .arch
            .clone()
            .unwrap_or_else(|| effect.default_architecture().to_owned()),
        size: Size::parse(&args.size)?,
        effect,
        loss_weights: args.loss_weights.clone(),
        no_skip: args.no_skip,
        name,
        latency_override: args.latency,
        margin_samples: args.margin,
        knob_ranges: ranges,
        seed: args.seed,
        max_steps: args.steps,
        max_seconds: match (args.minutes, args.steps) {
            (Some(minutes), _) => Some(minutes * 60.0),
            (None, Some(_)) => None,
            (None, None) => Some(180.0),
        },
        threads: args.threads,
        batch_size: args.batch,
        segment_samples: args.segment,
        learning_rate: args.learning_rate,
        final_learning_rate_fraction: args.final_lr_fraction,
        snapshot_every_seconds: args.snapshot_every.unwrap_or(0.0),
        start_from,
        lower_priority: false,
    })
}

/// Loads the captures, trains and writes the profile.
pub fn run(args: TrainArgs) -> Result<()> {
    // Refuse an unwritable destination before minutes of training, not after.
    ensure_writable(&args.out)?;
    if let Some(dir) = &args.snapshot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
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
                    latency_samples: None,
                }],
                BTreeMap::new(),
            )
        }
        _ => bail!("give --input and --target, or --captures"),
    };
    let settings = session_config(&args, ranges)?;
    let session = Session::new(settings, specs.iter().cloned().map(CaptureInput::Files).collect())?;
    let dataset = session.dataset();
    for note in &dataset.notes {
        eprintln!("note: {note}");
    }
    for (spec, pair) in specs.iter().zip(&dataset.pairs) {
        let how = if args.latency.is_some() {
            "given"
        } else if spec.latency_samples.is_some() {
            "given in captures.toml"
        } else {
            "found by cross-correlation"
        };
        eprintln!(
            "latency of {}: {} samples ({how})",
            spec.target.display(),
            pair.latency_samples
        );
    }
    let meta = session.meta().clone();
    let config = session.train_config();
    // From here on Ctrl-C stops the session instead of killing the process.
    interrupt::stop_on_ctrl_c(session.control())?;
    eprintln!(
        "training {}/{} ({} parameters) on {:.1} s of audio{}; the profile will play {} samples late (reported to hosts)",
        meta.model.architecture(),
        meta.model.size().map_or("custom", |s| s.name()),
        meta.model.parameter_count(),
        dataset.seconds(),
        if args.from.is_some() { ", fine-tuning" } else { "" },
        meta.latency_samples,
    );
    let threads = config.threads;
    let interactive = std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")?.progress_chars("=> "));
    let mut snapshot_error = None;
    let outcome = session.run(&mut |event| match event {
        SessionEvent::Progress(p) => {
            bar.set_position((p.fraction_done * 1000.0) as u64);
            bar.set_message(format!(
                "step {} loss {:.4} best validation ESR {:.4}",
                p.step, p.loss, p.best_validation_esr
            ));
        }
        SessionEvent::Snapshot(checkpoint) => {
            if let Some(dir) = &args.snapshot_dir {
                let path = dir.join(format!("t{:06.1}.doppel", checkpoint.seconds));
                if let Err(err) = checkpoint.profile.save(&path) {
                    snapshot_error.get_or_insert(err);
                }
            }
        }
        SessionEvent::Note(note) => bar.println(format!("note: {note}")),
        // Without a terminal the bar is hidden: logs get a line per improvement instead.
        SessionEvent::Checkpoint(checkpoint) if !interactive => eprintln!(
            "checkpoint: step {}, {:.1} s, validation ESR {:.5}",
            checkpoint.step, checkpoint.seconds, checkpoint.validation_esr
        ),
        SessionEvent::Checkpoint(_) | SessionEvent::DataAdded { .. } => {}
    })?;
    bar.finish_and_clear();
    let profile = &outcome.profile;
    profile.save(&args.out)?;
    if let Some(err) = snapshot_error {
        eprintln!("warning: some snapshots were not written: {err:#}");
    }
    if outcome.stopped {
        eprintln!("interrupted: wrote the best weights so far");
    }
    let summary = profile.meta.training.clone().unwrap_or_default();
    let accuracy = profile.meta.accuracy.clone().unwrap_or_default();
    if args.json {
        let json = serde_json::json!({
            "out": args.out,
            "esr": accuracy.esr,
            "esr_preemph": accuracy.esr_preemph,
            "validation_seconds": accuracy.seconds,
            "steps": summary.steps,
            "wall_seconds": summary.wall_seconds,
            "seconds_per_step": summary.wall_seconds / summary.steps.max(1) as f32,
            "threads": threads,
            "latency_samples": summary.device_latency_samples.first().copied().unwrap_or(0),
            "latencies_samples": summary.device_latency_samples,
            "profile_latency_samples": profile.meta.latency_samples,
            "architecture": profile.meta.model.architecture(),
            "size": profile.meta.model.size().map_or("custom", |s| s.name()),
            "parameters": profile.meta.model.parameter_count(),
            "rollbacks": outcome.rollbacks,
            "interrupted": outcome.stopped,
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
            "wrote {}: validation ESR {:.5} (pre-emphasised {:.5}) after {} steps in {:.1} s; latency {} samples",
            args.out.display(),
            accuracy.esr,
            accuracy.esr_preemph,
            summary.steps,
            summary.wall_seconds,
            profile.meta.latency_samples
        );
    }
    Ok(())
}
