//! Real-time rules for every streaming kernel: after construction, `process` and `reset`
//! never allocate (checked by `assert_no_alloc`'s allocator, which aborts the test binary
//! on any allocation inside `assert_no_alloc`), any block size works, and non-finite or
//! subnormal input never yields non-finite output.

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use doppel_engine::{ModelConfig, Size, StreamingModel, Weights};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

const BLOCK_SIZES: [usize; 5] = [1, 17, 64, 512, 4096];
const MAX_BLOCK_SAMPLES: usize = 4096;

fn hostile_input(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| match i % 97 {
            3 => f32::NAN,
            10 => f32::INFINITY,
            20 => f32::NEG_INFINITY,
            30 => 1e-40, // subnormal
            40 => f32::MAX,
            _ => 0.5 * (i as f32 * 0.05).sin(),
        })
        .collect()
}

fn check_kernel(architecture: &str) {
    let config = ModelConfig::preset(architecture, Size::Nano, 2).unwrap();
    let weights = Weights::random(&config, 11, 0.2);
    let mut model = StreamingModel::new(&config, &weights, MAX_BLOCK_SAMPLES).unwrap();
    let knobs = [0.25f32, 0.75];
    let input = hostile_input(3 * MAX_BLOCK_SAMPLES);
    let mut output = vec![0.0f32; input.len()];
    for block in BLOCK_SIZES {
        assert_no_alloc(|| {
            model.reset(&knobs);
            for (inp, out) in input.chunks(block).zip(output.chunks_mut(block)) {
                model.process(inp, &knobs, out);
            }
        });
        let bad = output.iter().position(|v| !v.is_finite());
        assert!(
            bad.is_none(),
            "{architecture}, block {block}: non-finite output at {bad:?}"
        );
    }
    // A call longer than the kernel's maximum block is split internally, still without allocating.
    let mut small = StreamingModel::new(&config, &weights, 64).unwrap();
    assert_no_alloc(|| small.process(&input, &knobs, &mut output));
    assert!(
        output.iter().all(|v| v.is_finite()),
        "{architecture}: long call produced non-finite output"
    );
}

#[test]
fn wavenet_kernel_is_real_time_safe() {
    check_kernel("wavenet");
}

#[test]
fn lstm_kernel_is_real_time_safe() {
    check_kernel("lstm");
}
