//! Criterion benchmarks of the streaming kernels (bench thread, run by hand with
//! `cargo bench -p doppel-engine --bench kernels`; never in CI): every WaveNet and LSTM preset
//! at blocks of 1, 32, 64, 128 and 512 samples. Criterion reports time per block; the
//! realtime factor at 48 kHz is that time divided by `block / 48000` seconds, printed once
//! per case on stderr from a short timed run so the table reads directly.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use doppel_engine::{ModelConfig, Size, StreamingModel, Weights};

/// Block sizes the issue asks for, in samples.
const BLOCKS: [usize; 5] = [1, 32, 64, 128, 512];
/// Sample rate the realtime factor refers to, in Hz.
const SAMPLE_RATE_HZ: f64 = 48_000.0;
/// Knob-free presets with random weights large enough to leave tanh's linear region.
const WEIGHT_SCALE: f32 = 0.3;

/// A deterministic input: two detuned partials at about -6 dBFS.
fn signal(samples: usize) -> Vec<f32> {
    (0..samples)
        .map(|i| {
            let t = i as f32 / SAMPLE_RATE_HZ as f32;
            0.3 * (t * 2.0 * std::f32::consts::PI * 110.0).sin() + 0.2 * (t * 2.0 * std::f32::consts::PI * 331.0).sin()
        })
        .collect()
}

fn kernels(c: &mut Criterion) {
    let input = signal(48_000);
    for architecture in ["wavenet", "lstm"] {
        let mut group = c.benchmark_group(architecture);
        group
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500));
        for size in Size::ALL {
            let config = ModelConfig::preset(architecture, size, 0).expect("preset");
            let weights = Weights::random(&config, 7, WEIGHT_SCALE);
            for block in BLOCKS {
                let mut model = StreamingModel::new(&config, &weights, block).expect("kernel");
                let mut output = vec![0.0f32; block];
                let mut blocks = input.chunks_exact(block).cycle();
                // A one-second timed pass for the realtime-factor line.
                let start = Instant::now();
                for chunk in input.chunks_exact(block) {
                    model.process(chunk, &[], &mut output);
                }
                let audio_seconds = (input.len() / block * block) as f64 / SAMPLE_RATE_HZ;
                eprintln!(
                    "{architecture}/{}: block {block}: realtime factor {:.5}",
                    size.name(),
                    start.elapsed().as_secs_f64() / audio_seconds
                );
                group.throughput(Throughput::Elements(block as u64));
                group.bench_function(BenchmarkId::new(size.name(), block), |b| {
                    b.iter(|| {
                        let chunk = blocks.next().expect("cycle");
                        model.process(black_box(chunk), &[], &mut output);
                        black_box(&output);
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
