//! Click-free hot swap: a model posted mid-stream is crossfaded in, both models playing during
//! the fade, so the output steps no more than either model's own output does; after the fade
//! it is exactly the new model's. Test thread stands in for the audio thread.

mod common;

use common::{nano_profile, rig, test_signal};
use doppel::dsp::{Controls, Processor};
use doppel::swap::SWAP_FADE_MS;
use doppel_engine::Profile;
use nice_assert_no_alloc::assert_no_alloc;

const BLOCK: usize = 64;

fn play(processor: &mut Processor, input: &[f32]) -> Vec<f32> {
    let controls = Controls::default();
    let mut out = input.to_vec();
    for chunk in out.chunks_mut(BLOCK) {
        assert_no_alloc(|| processor.process(&mut [chunk], &controls));
    }
    out
}

/// The largest sample-to-sample step of `x`.
fn max_step(x: &[f32]) -> f32 {
    x.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max)
}

#[test]
fn a_swap_crossfades_without_a_step_and_ends_on_the_new_model() {
    let pairs = [
        (nano_profile("wavenet", "A", 31), nano_profile("lstm", "B", 32)),
        (nano_profile("gru", "A", 33), nano_profile("wavenet", "B", 34)),
        (nano_profile("lstm", "A", 35), Profile::delay_fixture(12).unwrap()),
    ];
    let warmup = test_signal(3_000, 5);
    let after = test_signal(4_000, 6);
    let fade = (SWAP_FADE_MS * 0.001 * 48_000.0) as usize;
    for (a, b) in pairs {
        let label = format!("{} -> {}", a.meta.model.architecture(), b.meta.model.architecture());
        // The swap: A plays, B arrives at a block boundary.
        let (hub, mut swapped, _) = rig();
        hub.load_profile(&a, "a").unwrap();
        play(&mut swapped, &warmup);
        hub.load_profile(&b, "b").unwrap();
        let y = play(&mut swapped, &after);
        // Each model alone over the same stretch: A with its history, B fresh and warm.
        let (hub_a, mut only_a, _) = rig();
        hub_a.load_profile(&a, "a").unwrap();
        play(&mut only_a, &warmup);
        let out_a = play(&mut only_a, &after);
        let (hub_b, mut only_b, _) = rig();
        hub_b.load_profile(&b, "b").unwrap();
        let out_b = play(&mut only_b, &after);

        let span = fade + 1;
        let own = max_step(&out_a[..span]).max(max_step(&out_b[..span]));
        let gap = out_a[..span]
            .iter()
            .zip(&out_b[..span])
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        // The fade itself moves at most 1/fade of the gap between the models per sample.
        let allowed = own + gap / fade as f32 + 1e-5;
        let step = max_step(&y[..span]);
        assert!(
            step <= allowed,
            "{label}: step {step} beyond {allowed} (own {own}, gap {gap})"
        );
        assert!(
            (y[0] - out_a[0]).abs() <= gap / fade as f32 + 1e-5,
            "{label}: the first sample jumps away from A"
        );
        assert_eq!(&y[span..], &out_b[span..], "{label}: not the new model after the fade");
    }
}
