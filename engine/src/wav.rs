//! Reading and writing WAV files as `f32` audio, mono or by channel. Used by the CLI and the
//! trainer thread (never the audio thread).
//!
//! Reading accepts 8/16/24/32-bit integer and 32-bit float PCM with any channel count, and
//! either averages the channels to mono or keeps them apart. Errors are one line that names
//! the file.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use hound::{SampleFormat, WavReader, WavSpec, WavWriter};

/// Mono audio read from a WAV file.
#[derive(Clone, Debug, PartialEq)]
pub struct WavAudio {
    /// Mono samples, nominally in -1..1 (integer formats are scaled by 2^(bits-1)).
    pub samples: Vec<f32>,
    /// Sample rate, in Hz.
    pub sample_rate: u32,
    /// Channels in the file before downmixing.
    pub source_channels: u16,
}

impl WavAudio {
    /// Duration, in seconds.
    pub fn seconds(&self) -> f32 {
        self.samples.len() as f32 / self.sample_rate.max(1) as f32
    }
}

/// Audio read from a WAV file, one vector per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct WavChannels {
    /// Samples of each channel (all the same length), nominally in -1..1.
    pub channels: Vec<Vec<f32>>,
    /// Sample rate, in Hz.
    pub sample_rate: u32,
}

impl WavChannels {
    /// The channels averaged to mono.
    pub fn to_mono(&self) -> WavAudio {
        let count = self.channels.len().max(1) as f32;
        let frames = self.channels.first().map_or(0, Vec::len);
        let samples = (0..frames)
            .map(|n| self.channels.iter().map(|c| c[n]).sum::<f32>() / count)
            .collect();
        WavAudio {
            samples,
            sample_rate: self.sample_rate,
            source_channels: self.channels.len() as u16,
        }
    }
}

/// Reads `path` keeping its channels apart.
pub fn read_wav_channels(path: &Path) -> Result<WavChannels> {
    let name = path.display();
    if !path.exists() {
        bail!("WAV file {name} does not exist");
    }
    let reader = WavReader::open(path).map_err(|e| anyhow!("{name} is not a readable WAV file: {e}"))?;
    let spec = reader.spec();
    let channels = spec.channels as usize;
    if channels == 0 {
        bail!("{name} declares zero channels");
    }
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Float, 32) => reader.into_samples::<f32>().collect::<Result<_, _>>(),
        (SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| (v as f64 * scale) as f32))
                .collect::<Result<_, _>>()
        }
        (format, bits) => bail!("{name} uses an unsupported sample format ({bits}-bit {format:?})"),
    }
    .map_err(|e| anyhow!("{name} is not a readable WAV file: {e}"))?;
    let frames = interleaved.len() / channels;
    if frames == 0 {
        bail!("{name} contains no audio (zero-length WAV)");
    }
    let channels = (0..channels)
        .map(|c| {
            interleaved
                .iter()
                .skip(c)
                .step_by(channels)
                .take(frames)
                .copied()
                .collect()
        })
        .collect();
    Ok(WavChannels {
        channels,
        sample_rate: spec.sample_rate,
    })
}

/// Reads `path` and downmixes it to mono by averaging the channels.
pub fn read_wav_mono(path: &Path) -> Result<WavAudio> {
    Ok(read_wav_channels(path)?.to_mono())
}

/// Writes `channels` (each the same length) to `path` as a 32-bit float WAV at
/// `sample_rate` Hz, interleaved.
pub fn write_wav_channels(path: &Path, channels: &[&[f32]], sample_rate: u32) -> Result<()> {
    let name = path.display();
    if channels.is_empty() || channels.len() > u16::MAX as usize {
        bail!("cannot write {name}: {} channels", channels.len());
    }
    let frames = channels.iter().map(|c| c.len()).min().unwrap_or(0);
    let spec = WavSpec {
        channels: channels.len() as u16,
        sample_rate,
        bits_per_sample: 32,
        sample_format: SampleFormat::Float,
    };
    let mut writer = WavWriter::create(path, spec).map_err(|e| anyhow!("cannot create WAV file {name}: {e}"))?;
    for n in 0..frames {
        for channel in channels {
            writer
                .write_sample(channel[n])
                .map_err(|e| anyhow!("cannot write WAV file {name}: {e}"))?;
        }
    }
    writer
        .finalize()
        .map_err(|e| anyhow!("cannot finish WAV file {name}: {e}"))?;
    Ok(())
}

/// Writes `samples` to `path` as a mono 32-bit float WAV at `sample_rate` Hz.
pub fn write_wav_mono(path: &Path, samples: &[f32], sample_rate: u32) -> Result<()> {
    write_wav_channels(path, &[samples], sample_rate)
}

#[cfg(test)]
mod tests;
