//! WAV round trips through every supported format, downmixing and error messages.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use hound::{SampleFormat, WavSpec, WavWriter};

use super::*;

/// A unique path in the temp dir (process id + counter), removed when dropped.
struct TempWav(PathBuf);

impl TempWav {
    fn new(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!("doppel-wav-test-{}-{n}-{label}.wav", std::process::id())))
    }
}

impl Drop for TempWav {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ramp(frames: usize) -> Vec<f32> {
    (0..frames).map(|n| 0.9 * (n as f32 * 0.37).sin()).collect()
}

/// Writes `frames` of `channels` channels where channel c holds `signal * (c + 1) / channels`.
fn write_fixture(path: &Path, bits: u16, format: SampleFormat, channels: u16, signal: &[f32]) {
    let spec = WavSpec {
        channels,
        sample_rate: 44_100,
        bits_per_sample: bits,
        sample_format: format,
    };
    let mut writer = WavWriter::create(path, spec).unwrap();
    for &s in signal {
        for c in 0..channels {
            let v = s * (c + 1) as f32 / channels as f32;
            match format {
                SampleFormat::Float => writer.write_sample(v).unwrap(),
                SampleFormat::Int => {
                    let full_scale = (1i64 << (bits - 1)) as f32;
                    let q = (v * full_scale).round().clamp(-full_scale, full_scale - 1.0) as i32;
                    writer.write_sample(q).unwrap()
                }
            }
        }
    }
    writer.finalize().unwrap();
}

#[test]
fn reads_every_supported_format_within_quantisation() {
    let signal = ramp(1_000);
    for (bits, format, tolerance) in [
        (8, SampleFormat::Int, 1.0 / 128.0),
        (16, SampleFormat::Int, 1.0 / 32_768.0),
        (24, SampleFormat::Int, 1.0 / 8_388_608.0),
        (32, SampleFormat::Int, 1e-7),
        (32, SampleFormat::Float, 0.0),
    ] {
        let file = TempWav::new(&format!("{bits}-{format:?}"));
        write_fixture(&file.0, bits, format, 1, &signal);
        let audio = read_wav_mono(&file.0).unwrap();
        assert_eq!(
            (audio.sample_rate, audio.source_channels, audio.samples.len()),
            (44_100, 1, 1_000)
        );
        let worst = audio
            .samples
            .iter()
            .zip(&signal)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            worst <= tolerance,
            "{bits}-bit {format:?}: worst error {worst} > {tolerance}"
        );
    }
}

#[test]
fn downmixes_stereo_and_quad_by_mean() {
    let signal = ramp(500);
    for channels in [2u16, 4] {
        let file = TempWav::new(&format!("ch{channels}"));
        write_fixture(&file.0, 32, SampleFormat::Float, channels, &signal);
        let audio = read_wav_mono(&file.0).unwrap();
        assert_eq!(audio.source_channels, channels);
        // Mean of s·(c+1)/C over c is s·(C+1)/(2C).
        let factor = (channels + 1) as f32 / (2 * channels) as f32;
        for (got, s) in audio.samples.iter().zip(&signal) {
            assert!((got - s * factor).abs() < 1e-6);
        }
    }
}

#[test]
fn write_then_read_is_exact() {
    let file = TempWav::new("roundtrip");
    let signal = ramp(2_345);
    write_wav_mono(&file.0, &signal, 48_000).unwrap();
    let audio = read_wav_mono(&file.0).unwrap();
    assert_eq!(audio.samples, signal);
    assert_eq!((audio.sample_rate, audio.source_channels), (48_000, 1));
    assert!((audio.seconds() - 2_345.0 / 48_000.0).abs() < 1e-6);
}

#[test]
fn errors_name_the_file_in_one_line() {
    let missing = TempWav::new("missing");
    let message = read_wav_mono(&missing.0).unwrap_err().to_string();
    assert!(
        message.contains("does not exist") && message.contains("missing"),
        "{message}"
    );

    let not_wav = TempWav::new("text");
    std::fs::write(&not_wav.0, b"this is not a RIFF file at all").unwrap();
    let message = format!("{:#}", read_wav_mono(&not_wav.0).unwrap_err());
    assert!(
        message.contains("not a readable WAV") && message.contains("text.wav"),
        "{message}"
    );
    assert!(!message.contains('\n'));

    let empty = TempWav::new("empty");
    write_fixture(&empty.0, 16, SampleFormat::Int, 2, &[]);
    let message = read_wav_mono(&empty.0).unwrap_err().to_string();
    assert!(
        message.contains("zero-length") && message.contains("empty.wav"),
        "{message}"
    );

    let unwritable = std::env::temp_dir().join("doppel-no-such-dir-for-tests").join("x.wav");
    let message = write_wav_mono(&unwritable, &[0.0], 48_000).unwrap_err().to_string();
    assert!(
        message.contains("cannot create WAV file") && message.contains("x.wav"),
        "{message}"
    );
}
