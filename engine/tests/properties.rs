//! Property tests: a kernel's output does not depend on how the host splits the signal into
//! blocks, any `f32` input (NaN, infinities, huge values) gives finite output, and knob
//! normalisation round-trips.

use doppel_engine::{KnobDescriptor, ModelConfig, Size, StreamingModel, Weights};
use proptest::prelude::*;

const SIGNAL_SAMPLES: usize = 600;

fn kernel(architecture: &str) -> (StreamingModel, Vec<f32>) {
    let config = ModelConfig::preset(architecture, Size::Nano, 1).unwrap();
    let weights = Weights::random(&config, 5, 0.3);
    (StreamingModel::new(&config, &weights, 128).unwrap(), vec![0.4])
}

fn signal() -> Vec<f32> {
    (0..SIGNAL_SAMPLES)
        .map(|i| 0.6 * (i as f32 * 0.07).sin() * (i as f32 * 0.003).cos())
        .collect()
}

/// Output of `model` over `input` cut into blocks of the given sizes (cycled).
fn in_blocks(model: &mut StreamingModel, knobs: &[f32], input: &[f32], sizes: &[usize]) -> Vec<f32> {
    model.reset(knobs);
    let mut output = vec![0.0; input.len()];
    let (mut start, mut i) = (0, 0);
    while start < input.len() {
        let end = (start + sizes[i % sizes.len()]).min(input.len());
        model.process(&input[start..end], knobs, &mut output[start..end]);
        start = end;
        i += 1;
    }
    output
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn block_splits_do_not_change_the_output(sizes in prop::collection::vec(1usize..300, 1..6)) {
        let input = signal();
        for architecture in ["wavenet", "lstm"] {
            let (mut model, knobs) = kernel(architecture);
            let whole = in_blocks(&mut model, &knobs, &input, &[input.len()]);
            let split = in_blocks(&mut model, &knobs, &input, &sizes);
            let difference = max_difference(&whole, &split);
            prop_assert!(difference <= 1e-6, "{architecture}: blocks {sizes:?} differ by {difference}");
        }
    }

    #[test]
    fn any_input_gives_finite_output(input in prop::collection::vec(any::<f32>(), 1..200)) {
        for architecture in ["wavenet", "lstm"] {
            let (mut model, knobs) = kernel(architecture);
            let mut output = vec![0.0; input.len()];
            model.process(&input, &knobs, &mut output);
            prop_assert!(output.iter().all(|v| v.is_finite()), "{architecture}: {output:?}");
            // And the state is not poisoned: ordinary audio afterwards stays finite.
            let calm = signal();
            let mut after = vec![0.0; calm.len()];
            model.process(&calm, &knobs, &mut after);
            prop_assert!(after.iter().all(|v| v.is_finite()), "{architecture}: state poisoned");
        }
    }

    #[test]
    fn knob_normalisation_round_trips(min in -100.0f32..100.0, span in 0.01f32..100.0, t in 0.0f32..=1.0) {
        let knob = KnobDescriptor { name: "k".into(), min, max: min + span, default: min, unit: String::new() };
        let value = knob.denormalize(t);
        prop_assert!((knob.normalize(value) - t).abs() <= 1e-3, "t {t} -> {value} -> {}", knob.normalize(value));
        prop_assert!((0.0..=1.0).contains(&knob.normalize(value * 10.0)));
    }
}
