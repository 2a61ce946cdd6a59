//! Real-time proof: `Processor::process` (the whole audio-thread path, model swap included)
//! never allocates or frees, for any block size, with and without a model, and turns hostile
//! input into clean output. Test thread stands in for the audio thread.
//!
//! The allocation guard is nice-plug's: with its `assert_process_allocs` feature in a debug
//! build it installs `nice_assert_no_alloc::AllocDisabler` as the global allocator (so this
//! binary cannot install another), and `assert_no_alloc` aborts the process on any
//! (de)allocation inside the closure.

mod common;

use common::{is_clean, nano_profile, rig, test_signal};
use doppel::dsp::{Controls, Processor};
use nice_assert_no_alloc::assert_no_alloc;

const BLOCK_SIZES: [usize; 5] = [1, 17, 64, 512, 4096];
const ARCHITECTURES: [&str; 2] = ["wavenet", "lstm"];

/// Hostile input: the test signal with NaN, infinities, subnormals and huge values sprinkled in.
fn hostile_signal(len: usize, seed: u32) -> Vec<f32> {
    let mut signal = test_signal(len, seed);
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-40,
        -3e-39,
        f32::MAX,
        -1e30,
        f32::MIN_POSITIVE / 2.0,
    ];
    for (i, x) in signal.iter_mut().enumerate() {
        if i % 53 < specials.len() && i % 3 == 0 {
            *x = specials[(i / 53) % specials.len()];
        }
    }
    signal
}

/// Controls that change every block: knobs sweep, gains and mix move, bypass toggles now and
/// then, and one block carries non-finite targets.
fn controls_for_block(block: usize) -> Controls {
    let phase = (block % 16) as f32 / 15.0;
    let mut controls = Controls {
        input_gain_db: -12.0 + 36.0 * phase,
        output_gain_db: 6.0 - 12.0 * phase,
        mix: 1.0 - 0.5 * phase,
        bypass: block % 11 == 5,
        knobs: [phase, 1.0 - phase, 0.25, 0.75],
    };
    if block == 3 {
        controls.input_gain_db = f32::NAN;
        controls.knobs[0] = f32::INFINITY;
    }
    controls
}

/// Runs `channels` copies of `input` through `processor` in blocks of `block` samples, each
/// `process` call under the allocation guard, and returns the first channel's output.
fn run(processor: &mut Processor, input: &[f32], channels: usize, block: usize) -> Vec<f32> {
    let mut left = input.to_vec();
    let mut right = input.iter().map(|x| -x).collect::<Vec<f32>>();
    for (index, start) in (0..input.len()).step_by(block).enumerate() {
        let end = (start + block).min(input.len());
        let controls = controls_for_block(index);
        let (l, r) = (&mut left[start..end], &mut right[start..end]);
        if channels == 1 {
            let mut slices: [&mut [f32]; 1] = [l];
            assert_no_alloc(|| processor.process(&mut slices, &controls));
        } else {
            let mut slices: [&mut [f32]; 2] = [l, r];
            assert_no_alloc(|| processor.process(&mut slices, &controls));
        }
    }
    for (i, (l, r)) in left.iter().zip(&right).enumerate() {
        // In mono the second buffer is not processed and keeps its hostile input.
        let right_clean = channels == 1 || is_clean(*r);
        assert!(
            is_clean(*l) && right_clean,
            "block {block}: unclean output {l} / {r} at sample {i}"
        );
    }
    left
}

/// Allocates under the guard; `guard_is_armed` runs it in a child process, which must abort.
#[test]
#[ignore = "run by guard_is_armed in a child process"]
fn probe_allocation_under_guard() {
    let grown = assert_no_alloc(|| std::hint::black_box(vec![0u8; 64]).len());
    assert_eq!(grown, 64);
}

#[test]
fn guard_is_armed() {
    // Without debug assertions nice-plug compiles the guard out and the tests here would prove
    // nothing: check that an allocation under it really kills the process.
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "probe_allocation_under_guard",
            "--test-threads",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        !status.success(),
        "an allocation under assert_no_alloc went unnoticed (release build?)"
    );
}

#[test]
fn passthrough_never_allocates_and_stays_clean() {
    for block in BLOCK_SIZES {
        for channels in [1, 2] {
            let (_hub, mut processor, _meters) = rig();
            let output = run(&mut processor, &hostile_signal(9000, 1), channels, block);
            assert!(
                output.iter().any(|x| x.abs() > 0.1),
                "block {block}: pass-through went silent"
            );
        }
    }
}

/// Needs the streaming kernels (`StreamingModel::new`).
#[test]
fn models_never_allocate_and_stay_clean() {
    let linked = doppel_engine::Profile::linked_compressor_fixture("linked").expect("linked fixture");
    for architecture in ARCHITECTURES.into_iter().chain(["linked"]) {
        let profile = match architecture {
            "linked" => linked.clone(),
            _ => nano_profile(architecture, architecture, 11),
        };
        for block in BLOCK_SIZES {
            for channels in [1, 2] {
                let (hub, mut processor, _meters) = rig();
                hub.load_profile(&profile, "fixture").expect("fixture loads");
                let output = run(&mut processor, &hostile_signal(9000, 2), channels, block);
                assert_eq!(
                    processor.model().meta.as_ref().map(|m| m.name.as_str()),
                    Some(architecture)
                );
                let energy: f32 = output.iter().map(|x| x * x).sum();
                assert!(energy > 0.0, "{architecture}, block {block}: model output is silent");
            }
        }
    }
}

/// Passes models through the swap without kernels: pass-through models posted by "unloading".
#[test]
fn swap_and_retire_do_not_allocate_on_the_audio_side() {
    let (hub, mut processor, _meters) = rig();
    // Longer than the crossfade, which retires the old model when it ends.
    let input = test_signal(2048, 3);
    for round in 0..5 {
        hub.restore_state(String::new()).expect("unloading always works");
        let generation = hub.generation();
        run(&mut processor, &input, 2, 64);
        assert_eq!(generation, round + 1);
        // The swap retired the previous model into the queue; it is freed here, off-audio.
        assert_eq!(hub.collect_retired(), 1, "round {round}: one model retired per swap");
    }
}

/// Needs the streaming kernels. Swaps mid-stream (crossfading, both models playing) between
/// every architecture and a profile with latency.
#[test]
fn swapping_models_mid_stream_does_not_allocate() {
    let (hub, mut processor, _meters) = rig();
    let profiles = [
        nano_profile("wavenet", "A", 21),
        nano_profile("lstm", "B", 22),
        nano_profile("gru", "C", 23),
        nano_profile("compressor", "D", 25),
        doppel_engine::Profile::linked_compressor_fixture("E").expect("linked fixture"),
        doppel_engine::Profile::delay_fixture(24).expect("delay fixture"),
    ];
    let input = test_signal(4096, 4);
    for round in 0..12 {
        let profile = &profiles[round % profiles.len()];
        hub.load_profile(profile, "fixture").expect("fixture loads");
        let output = run(&mut processor, &input, 2, 17);
        assert_eq!(
            processor.model().meta.as_ref().map(|m| m.name.clone()),
            Some(profile.meta.name.clone())
        );
        assert!(output.iter().any(|x| *x != 0.0), "round {round}: silent after the swap");
        // The swap retired the previous model into the queue; it is freed here, off-audio.
        assert_eq!(hub.collect_retired(), 1, "round {round}: one model retired per swap");
    }
    // The last swap's retired model is still queued until the next off-audio collection.
    hub.restore_state(String::new()).expect("unloading always works");
    run(&mut processor, &input, 2, 512);
    assert_eq!(hub.collect_retired(), 1);
    assert!(processor.model().meta.is_none());
}
