//! `doppel info`: what a profile holds.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use doppel_engine::Profile;

/// Arguments of `doppel info`.
#[derive(Args)]
pub struct InfoArgs {
    /// Profile to show.
    profile: PathBuf,
    /// Print the header as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Prints the header and derived facts.
pub fn run(args: InfoArgs) -> Result<()> {
    let profile = Profile::load(&args.profile)?;
    let meta = &profile.meta;
    let (architecture, size) = super::model_label(&profile);
    if args.json {
        let mut json = serde_json::to_value(meta)?;
        json["size"] = size.into();
        json["parameters"] = meta.model.parameter_count().into();
        json["receptive_field_samples"] = meta.model.receptive_field().into();
        json["channels"] = meta.model.channels().into();
        println!("{json}");
        return Ok(());
    }
    println!("name:          {}", meta.name);
    println!(
        "architecture:  {architecture}/{size} ({} parameters)",
        meta.model.parameter_count()
    );
    println!("sample rate:   {} Hz", meta.sample_rate);
    if meta.model.channels() == 2 {
        println!("channels:      stereo-linked (one detector for both, one gain on both)");
    }
    println!("latency:       {} samples", meta.latency_samples);
    println!("receptive field: {} samples", meta.model.receptive_field());
    if meta.knobs.is_empty() {
        println!("knobs:         none");
    }
    for knob in &meta.knobs {
        println!(
            "knob:          {} {}..{} {} (default {})",
            knob.name, knob.min, knob.max, knob.unit, knob.default
        );
    }
    if let Some(accuracy) = &meta.accuracy {
        println!(
            "accuracy:      ESR {:.5}, pre-emphasised {:.5} on {:.1} s held out",
            accuracy.esr, accuracy.esr_preemph, accuracy.seconds
        );
    }
    if let Some(training) = &meta.training {
        println!(
            "training:      {} steps in {:.1} s on {:.1} s of audio, seed {}",
            training.steps, training.wall_seconds, training.data_seconds, training.seed
        );
    }
    if !meta.notes.is_empty() {
        println!("notes:         {}", meta.notes);
    }
    Ok(())
}
