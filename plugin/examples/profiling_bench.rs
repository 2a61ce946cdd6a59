//! Benchmark of profiling inside the plugin (not a test: it paces audio in real time and
//! takes minutes). Run it alone, in release:
//!
//! ```text
//! cargo run --release -p doppel --example profiling_bench -- [capture|learn|all]
//! ```
//!
//! - **capture**: the built-in amp behind a 300-sample round trip on the Capture Return. Times
//!   Capture from the press to the first playable model and to held-out ESR <= 0.02 on the
//!   yardstick's take B (sampled instruments, played through the same amp), and the audio
//!   thread's block times at block 64 while training runs.
//! - **learn**: starts from an unrelated shipped profile; two minutes of the yardstick's take A
//!   played in Learn mode with a third-party device's rendering on the return; the held-out
//!   ESR on take B through the same device after the two minutes and after one more.
//!
//! Inputs come from `bench/heldout/run.sh` (target/bench/heldout/); the device for learn is
//! `DOPPEL_BENCH_DEVICE` (default gx_ts9). One thread plays audio; training gets the rest.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use doppel::capture::DeckPhase;
use doppel::dsp::Controls;
use doppel::params::{CaptureSetup, DoppelParams, KnobLabels, Mode};
use doppel::rig::{ProfilingControls, Rig};
use doppel_engine::align::estimate_latency;
use doppel_engine::metrics::esr;
use doppel_engine::playback::play_compensated;
use doppel_engine::reference::ReampedAmp;
use doppel_engine::wav::read_wav_mono;
use doppel_engine::Profile;

const SR: f32 = 48_000.0;
const BLOCK: usize = 64;
const TARGET_ESR: f32 = 0.02;
/// Held-out audio scored per checkpoint, in seconds (the start of take B).
const SCORED_SECONDS: f32 = 30.0;

fn heldout_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench/heldout")
}

fn read(path: &Path) -> Result<Vec<f32>> {
    Ok(read_wav_mono(path)
        .with_context(|| format!("run bench/heldout/run.sh first ({})", path.display()))?
        .samples)
}

/// Plays blocks in real time through the rig and keeps the block times of the training phase.
struct Clock {
    start: Instant,
    blocks: u64,
    times_us: Vec<f32>,
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: Instant::now(),
            blocks: 0,
            times_us: Vec::with_capacity(1 << 20),
        }
    }

    fn seconds(&self) -> f32 {
        self.start.elapsed().as_secs_f32()
    }

    /// One block: waits for its real-time slot, processes it, keeps its time if `keep`.
    fn block(
        &mut self,
        rig: &mut Rig,
        input: &[f32],
        back: &[f32],
        controls: &Controls,
        profiling: &ProfilingControls,
        keep: bool,
    ) -> [f32; BLOCK] {
        let due = self.start + Duration::from_secs_f64(self.blocks as f64 * BLOCK as f64 / SR as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        self.blocks += 1;
        let (mut left, mut right) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        left[..input.len()].copy_from_slice(input);
        right[..input.len()].copy_from_slice(input);
        let began = Instant::now();
        {
            let mut channels: [&mut [f32]; 2] = [&mut left[..input.len()], &mut right[..input.len()]];
            rig.process(&mut channels, &[back, back], controls, profiling);
        }
        if keep && self.times_us.len() < self.times_us.capacity() {
            self.times_us.push(began.elapsed().as_secs_f32() * 1e6);
        }
        left
    }

    fn report(&self) {
        let mut times = self.times_us.clone();
        if times.is_empty() {
            return;
        }
        times.sort_by(f32::total_cmp);
        let budget_us = BLOCK as f32 / SR * 1e6;
        let p999 = times[((times.len() as f64 * 0.999) as usize).min(times.len() - 1)];
        let worst = times[times.len() - 1];
        println!(
            "block times while training ({} blocks of {BLOCK}): median {:.1} us, p99.9 {p999:.1} us ({:.1} % of the {budget_us:.0} us budget), worst {worst:.1} us ({:.1} %)",
            times.len(),
            times[times.len() / 2],
            100.0 * p999 / budget_us,
            100.0 * worst / budget_us
        );
    }
}

/// ESR of `profile` as a DAW plays it on `input` against `target` (the device's output, its
/// own latency `device_latency` removed).
fn score(profile: &Profile, input: &[f32], target: &[f32], device_latency: i64) -> Result<f32> {
    let knobs = DoppelParams::knob_defaults(Some(&profile.meta));
    let output = play_compensated(profile, input, &knobs[..profile.meta.knobs.len()])?;
    let shift = device_latency.max(0) as usize;
    let n = input.len().min(target.len().saturating_sub(shift));
    Ok(esr(&output[..n], &target[shift..shift + n]))
}

fn new_rig(setup: CaptureSetup) -> Rig {
    let labels = Arc::new(ArcSwap::from_pointee(KnobLabels::default()));
    Rig::new(labels, Arc::new(RwLock::new(setup)))
}

fn capture_bench() -> Result<()> {
    let take_b = read(&heldout_dir().join("di/takeB.wav"))?;
    let held_out = &take_b[..(SCORED_SECONDS * SR) as usize];
    let mut reamp = ReampedAmp::new(SR, 6.0, 5.0, 300, 1e-5);
    let mut amp = reamp.device();
    let mut held_out_target = vec![0.0; held_out.len()];
    amp.process(held_out, &mut held_out_target);
    let amp_latency = amp.latency_samples() as i64;

    let mut rig = new_rig(CaptureSetup::default());
    let controls = Controls::default();
    rig.activate(SR, &controls);
    let capture = ProfilingControls {
        mode: Mode::Capture,
        capture_level_db: -6.0,
        ..ProfilingControls::default()
    };
    let play = ProfilingControls::default();
    let status = rig.trainer().status().clone();
    let silence = [0.0f32; BLOCK];
    let mut back = [0.0f32; BLOCK];
    let mut clock = Clock::new();
    // A capture starts when Mode changes to Capture.
    clock.block(&mut rig, &silence, &back, &controls, &play, false);
    let (mut captured_at, mut first_model_at, mut target_at) = (None, None, None);
    let mut seen_checkpoints = 0;
    let mut held_position = 0;
    while clock.seconds() < 480.0 && target_at.is_none() {
        let captured = rig.deck_status().phase() == DeckPhase::Captured || captured_at.is_some();
        let profiling = if captured { &play } else { &capture };
        // After the capture, someone plays the held-out phrase through the plugin.
        let input: &[f32] = if captured {
            let chunk = &take_b[held_position..held_position + BLOCK];
            held_position = (held_position + BLOCK) % (take_b.len() - BLOCK);
            chunk
        } else {
            &silence
        };
        reamp.receive(&mut back);
        let training = status.phase() == doppel::trainer::TrainerPhase::Training;
        let out = clock.block(&mut rig, input, &back, &controls, profiling, training);
        reamp.send(&out);
        if captured_at.is_none() && rig.deck_status().phase() == DeckPhase::Captured {
            captured_at = Some(clock.seconds());
            println!("capture done at {:.1} s: {}", clock.seconds(), status.message());
        }
        let checkpoints = status.checkpoints.load(Ordering::Relaxed);
        if checkpoints > seen_checkpoints {
            seen_checkpoints = checkpoints;
            first_model_at.get_or_insert(clock.seconds());
            if let Some(profile) = rig.hub.profile() {
                let esr = score(&profile, held_out, &held_out_target, amp_latency)?;
                println!(
                    "{:6.1} s  checkpoint {checkpoints}: step {}, validation ESR {:.4}, held-out ESR {esr:.4}",
                    clock.seconds(),
                    status.steps.load(Ordering::Relaxed),
                    status.best_esr.load(Ordering::Relaxed)
                );
                if esr <= TARGET_ESR {
                    target_at = Some(clock.seconds());
                }
            }
        }
    }
    println!(
        "capture: press to first playable model {}, to held-out ESR <= {TARGET_ESR} {}; round trip found {} samples for {:.1}",
        first_model_at.map_or("never".into(), |t| format!("{t:.1} s")),
        target_at.map_or("not within 8 min".into(), |t| format!("{t:.1} s")),
        status.latency_samples.load(Ordering::Relaxed),
        reamp.latency_samples()
    );
    clock.report();
    Ok(())
}

fn learn_bench() -> Result<()> {
    let device = std::env::var("DOPPEL_BENCH_DEVICE").unwrap_or_else(|_| "gx_ts9".into());
    let dir = heldout_dir();
    let (take_a, take_a_dev) = (
        read(&dir.join("di/takeA.wav"))?,
        read(&dir.join(format!("{device}/takeA_dev.wav")))?,
    );
    let (take_b, take_b_dev) = (
        read(&dir.join("di/takeB.wav"))?,
        read(&dir.join(format!("{device}/takeB_dev.wav")))?,
    );
    let scored = (SCORED_SECONDS * SR) as usize;
    let device_latency = estimate_latency(&take_b[..scored], &take_b_dev[..scored], 12_000)?.latency_samples;
    let start_profile = Profile::load(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles/tube_amp_gain8_tone6_wavenet_feather.doppel"),
    )?;
    let start_esr = score(&start_profile, &take_b[..scored], &take_b_dev, device_latency)?;

    let mut rig = new_rig(CaptureSetup::default());
    rig.hub.load_profile(&start_profile, "start")?;
    let mut controls = Controls::default();
    let defaults = DoppelParams::knob_defaults(Some(&start_profile.meta));
    controls.knobs = defaults;
    rig.activate(SR, &controls);
    let learn = ProfilingControls {
        mode: Mode::Learn,
        ..ProfilingControls::default()
    };
    let play = ProfilingControls::default();
    let status = rig.trainer().status().clone();
    let mut clock = Clock::new();
    let learn_samples = (120.0 * SR) as usize;
    let mut position = 0;
    let mut seen = 0;
    let mut best_at_two_minutes = None;
    let silence = [0.0f32; BLOCK];
    while clock.seconds() < 180.0 {
        let learning = position + BLOCK <= learn_samples.min(take_a.len());
        let (input, back): (&[f32], &[f32]) = if learning {
            (
                &take_a[position..position + BLOCK],
                &take_a_dev[position..position + BLOCK],
            )
        } else {
            (&silence, &silence)
        };
        position += BLOCK;
        let training = status.phase() == doppel::trainer::TrainerPhase::Training;
        clock.block(
            &mut rig,
            input,
            back,
            &controls,
            if learning { &learn } else { &play },
            training,
        );
        if !learning && best_at_two_minutes.is_none() {
            best_at_two_minutes = Some(match rig.hub.profile() {
                Some(p) => score(&p, &take_b[..scored], &take_b_dev, device_latency)?,
                None => f32::NAN,
            });
            println!(
                "after 2 minutes of Learn: held-out ESR {:.4}",
                best_at_two_minutes.unwrap()
            );
        }
        let checkpoints = status.checkpoints.load(Ordering::Relaxed);
        if checkpoints > seen {
            seen = checkpoints;
            if let Some(profile) = rig.hub.profile() {
                println!(
                    "{:6.1} s  checkpoint {checkpoints}: step {}, held-out ESR {:.4}, {:.0} s of playing held",
                    clock.seconds(),
                    status.steps.load(Ordering::Relaxed),
                    score(&profile, &take_b[..scored], &take_b_dev, device_latency)?,
                    status.held_seconds.load(Ordering::Relaxed)
                );
            }
        }
    }
    let end = rig
        .hub
        .profile()
        .map(|p| score(&p, &take_b[..scored], &take_b_dev, device_latency))
        .transpose()?;
    println!(
        "learn ({device}): start profile held-out ESR {start_esr:.4}; after 2 min of playing {:.4}; after 3 min {:.4}; Learn chunks dropped {}",
        best_at_two_minutes.unwrap_or(f32::NAN),
        end.unwrap_or(f32::NAN),
        rig.deck_status().learn_chunks_dropped.load(Ordering::Relaxed)
    );
    clock.report();
    Ok(())
}

fn main() -> Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if which == "capture" || which == "all" {
        capture_bench()?;
    }
    if which == "learn" || which == "all" {
        learn_bench()?;
    }
    Ok(())
}
