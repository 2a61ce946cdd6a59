//! `doppel bench`: real-time cost of a profile's kernel on one thread (a stereo-linked profile
//! on a stereo pair, both channels in the one kernel).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Result};
use clap::Args;
use doppel_engine::signal::test_phrase;
use doppel_engine::{Profile, StreamingModel};

/// Arguments of `doppel bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Profile to measure (repeat the flag, or list several after it, to measure more).
    #[arg(long, required = true, num_args = 1..)]
    profile: Vec<PathBuf>,
    /// Block size in samples.
    #[arg(long, default_value_t = 64)]
    block: usize,
    /// Several block sizes in samples, comma-separated (e.g. `1,32,64,128,512`), measured one
    /// after the other; overrides `--block`. One output line (or JSON object) per block size.
    #[arg(long, value_delimiter = ',')]
    blocks: Vec<usize>,
    /// Seconds of audio to process.
    #[arg(long, default_value_t = 10.0)]
    seconds: f32,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Times the kernel over a test phrase, block by block, for every profile and block size.
pub fn run(args: BenchArgs) -> Result<()> {
    let blocks = if args.blocks.is_empty() {
        vec![args.block]
    } else {
        args.blocks.clone()
    };
    ensure!(blocks.iter().all(|&b| b > 0), "--block must be at least 1");
    ensure!(args.seconds > 0.0, "--seconds must be positive");
    for path in &args.profile {
        let profile = Profile::load(path)?;
        for &block in &blocks {
            measure(&profile, block, args.seconds, args.json)?;
        }
    }
    Ok(())
}

/// Times one profile at one block size and prints the result line.
fn measure(profile: &Profile, block_samples: usize, seconds: f32, json: bool) -> Result<()> {
    let sample_rate = profile.meta.sample_rate;
    let input = test_phrase(sample_rate, seconds, 7);
    let knobs: Vec<f32> = profile.meta.knobs.iter().map(|k| k.normalize(k.default)).collect();
    let mut model = StreamingModel::new(&profile.meta.model, &profile.weights, block_samples)?;
    let linked = model.is_linked();
    // A stereo-linked profile plays a pair: the phrase on the left, another one on the right.
    let mut right = if linked {
        test_phrase(sample_rate, seconds, 8)
    } else {
        Vec::new()
    };
    if linked {
        right.resize(input.len(), 0.0);
    }
    let mut output = vec![0.0; block_samples];
    let mut output_right = vec![0.0; block_samples];
    let mut run_block = |model: &mut StreamingModel, start: usize, block: &[f32]| match model.linked_mut() {
        Some(kernel) => kernel.process_linked(
            [block, &right[start..start + block.len()]],
            &knobs,
            [&mut output[..block.len()], &mut output_right[..block.len()]],
        ),
        None => model.process(block, &knobs, &mut output[..block.len()]),
    };
    // Warm caches and branch predictors on the first second, then time the whole signal.
    let warm = input.len().min(sample_rate as usize);
    for (i, block) in input[..warm].chunks(block_samples).enumerate() {
        run_block(&mut model, i * block_samples, block);
    }
    model.reset(&knobs);
    let start = Instant::now();
    let mut blocks = 0usize;
    for (i, block) in input.chunks(block_samples).enumerate() {
        run_block(&mut model, i * block_samples, block);
        blocks += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let audio_seconds = input.len() as f64 / sample_rate as f64;
    let realtime_factor = elapsed / audio_seconds;
    let us_per_block = elapsed * 1e6 / blocks as f64;
    let (architecture, size) = super::model_label(profile);
    if json {
        let json = serde_json::json!({
            "architecture": architecture,
            "size": size,
            "parameters": profile.meta.model.parameter_count(),
            "channels": if linked { 2 } else { 1 },
            "block": block_samples,
            "sample_rate": sample_rate,
            "seconds": audio_seconds,
            "realtime_factor": realtime_factor,
            "us_per_block": us_per_block,
        });
        println!("{json}");
    } else {
        let channels = if linked { ", stereo-linked pair" } else { "" };
        println!(
            "{architecture}/{size}: realtime factor {realtime_factor:.5} ({us_per_block:.2} µs per {block_samples}-sample block at {sample_rate} Hz, one thread{channels})"
        );
    }
    Ok(())
}
