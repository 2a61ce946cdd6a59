//! `doppel signal`: the capture signal or a held-out test phrase.

use std::path::PathBuf;

use anyhow::{bail, ensure, Result};
use clap::{Args, ValueEnum};
use doppel_engine::signal::{
    capture_layout, capture_signal, dynamics_signal, dynamics_signal_stereo, test_phrase, DEFAULT_CAPTURE_SECONDS,
    DEFAULT_DYNAMICS_SECONDS,
};
use doppel_engine::wav::{write_wav_channels, write_wav_mono};

/// Which signal to write.
#[derive(Clone, Copy, ValueEnum)]
pub enum SignalKind {
    /// The profiling signal: clicks, sweeps, noise bursts, dynamics and played guitar and bass phrases.
    Capture,
    /// Guitar-like held-out audio for evaluation, different from the capture signal.
    Phrase,
    /// The dynamics capture signal for compressors: level steps, bursts with gaps of 5 ms to
    /// 2 s, and drum, bass and mix program material.
    Dynamics,
}

/// Arguments of `doppel signal`.
#[derive(Args)]
pub struct SignalArgs {
    /// WAV file to write (32-bit float, mono unless `--channels 2`).
    #[arg(long)]
    out: PathBuf,
    /// Channels: 2 writes the stereo dynamics signal (for a stereo-linked compressor: the
    /// signal panned from side to side with a second one against it). Dynamics only.
    #[arg(long, default_value_t = 1)]
    channels: u16,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 48_000)]
    sample_rate: u32,
    /// Length in seconds (default: the capture or dynamics signal's designed length, or 20 s
    /// for a phrase).
    #[arg(long)]
    seconds: Option<f32>,
    /// Capture signal, held-out phrase or dynamics signal.
    #[arg(long, value_enum, default_value = "capture")]
    kind: SignalKind,
    /// Seed of a phrase.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also print where each section of the capture signal lies, as JSON on stdout
    /// (`{"sample_rate", "samples", "sections": [{"section", "start", "end"}]}`, in samples).
    #[arg(long)]
    layout: bool,
}

/// Writes the requested signal.
pub fn run(args: SignalArgs) -> Result<()> {
    ensure!(
        (8_000..=384_000).contains(&args.sample_rate),
        "sample rate {} Hz is out of range",
        args.sample_rate
    );
    ensure!(
        (1..=2).contains(&args.channels),
        "--channels must be 1 or 2 (got {})",
        args.channels
    );
    ensure!(
        args.channels == 1 || matches!(args.kind, SignalKind::Dynamics),
        "--channels 2 applies to --kind dynamics only (other signals are mono)"
    );
    if args.channels == 2 {
        let [left, right] = dynamics_signal_stereo(args.sample_rate, args.seconds.unwrap_or(DEFAULT_DYNAMICS_SECONDS));
        ensure!(!left.is_empty(), "--seconds must be positive");
        write_wav_channels(&args.out, &[&left, &right], args.sample_rate)?;
        eprintln!(
            "wrote {} (stereo, {:.1} s at {} Hz)",
            args.out.display(),
            left.len() as f32 / args.sample_rate as f32,
            args.sample_rate
        );
        return Ok(());
    }
    let samples = match args.kind {
        SignalKind::Capture => capture_signal(args.sample_rate, args.seconds.unwrap_or(DEFAULT_CAPTURE_SECONDS)),
        SignalKind::Phrase => test_phrase(args.sample_rate, args.seconds.unwrap_or(20.0), args.seed),
        SignalKind::Dynamics => dynamics_signal(args.sample_rate, args.seconds.unwrap_or(DEFAULT_DYNAMICS_SECONDS)),
    };
    ensure!(!samples.is_empty(), "--seconds must be positive");
    if args.layout {
        let SignalKind::Capture = args.kind else {
            bail!("--layout describes the capture signal; other kinds have none");
        };
        let seconds = args.seconds.unwrap_or(DEFAULT_CAPTURE_SECONDS);
        let sections: Vec<_> = capture_layout(args.sample_rate, seconds)
            .into_iter()
            .map(|(section, range)| {
                serde_json::json!({
                    "section": format!("{section:?}").to_lowercase(),
                    "start": range.start,
                    "end": range.end,
                })
            })
            .collect();
        let layout = serde_json::json!({
            "sample_rate": args.sample_rate,
            "samples": samples.len(),
            "sections": sections,
        });
        println!("{layout}");
    }
    write_wav_mono(&args.out, &samples, args.sample_rate)?;
    eprintln!(
        "wrote {} ({:.1} s at {} Hz)",
        args.out.display(),
        samples.len() as f32 / args.sample_rate as f32,
        args.sample_rate
    );
    Ok(())
}
