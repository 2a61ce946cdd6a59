"""The bundled Doppel VST3 in a real host (pedalboard): profile loading, agreement with the
CLI, block-size independence, allocation-free processing, garbage input, knobs and state.

Run against a DEBUG bundle: nice-plug's `assert_process_allocs` aborts the whole host process
on any allocation in `process` there, so merely surviving the buffer-size test is the proof
that the audio thread does not allocate.
"""

import json
import os

import numpy as np
import pedalboard
import pytest

from conftest import DOPPEL_VST3, SAMPLE_RATE, doppel

# Largest difference allowed between the plugin and `doppel process`, between buffer sizes
# and after a state round trip. All run the same streaming kernel in f32 on the same samples,
# the CLI writes float WAVs, and the gains at their defaults are not smoothed: measured 0.0
# (bit-identical); the tolerance only absorbs float rounding should the code paths diverge.
SAME_OUTPUT_TOLERANCE = 1e-6
BUFFER_SIZES = [1, 17, 64, 512, 4096]
SMALLEST_NORMAL_F32 = np.finfo(np.float32).tiny


def load(profile=None):
    """A fresh plugin instance; `profile` goes in DOPPEL_PROFILE only while the instance starts
    (the plugin reads it in `initialize`, which pedalboard runs on the first `process`)."""
    if profile is None:
        os.environ.pop("DOPPEL_PROFILE", None)
        return pedalboard.load_plugin(str(DOPPEL_VST3))
    os.environ["DOPPEL_PROFILE"] = str(profile)
    try:
        plugin = pedalboard.load_plugin(str(DOPPEL_VST3))
        plugin.process(np.zeros((2, 64), dtype=np.float32), SAMPLE_RATE)
        return plugin
    finally:
        os.environ.pop("DOPPEL_PROFILE", None)


def stereo(mono):
    return np.stack([mono, mono]).astype(np.float32)


def play(plugin, mono, buffer_size=512):
    """Processes `mono` on both channels from a reset state; returns the left channel."""
    out = plugin.process(stereo(mono), SAMPLE_RATE, buffer_size=buffer_size, reset=True)
    assert out.shape == (2, len(mono)), f"plugin returned {out.shape} for {len(mono)} samples"
    assert np.array_equal(out[0], out[1]), "the channels differ for identical input"
    return out[0]


def rms(samples):
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def max_diff(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


@pytest.fixture(scope="module")
def plugin(fixture):
    return load(fixture.profile)


@pytest.fixture(scope="module")
def reference_output(plugin, fixture):
    return play(plugin, fixture.phrase)


def knob_parameters(plugin):
    """Names of the model-knob parameters as pedalboard shows them (knob1..knob4 or a
    profile's knob names), discovered rather than hard-coded."""
    generic = {"input_gain_db", "output_gain_db", "mix", "bypass"}
    return [name for name in plugin.parameters if name not in generic and "knob" in name]


def test_plugin_loads_with_the_expected_parameters(plugin):
    names = set(plugin.parameters)
    print("parameters:", sorted(names))
    assert plugin.is_effect
    assert knob_parameters(plugin), f"no knob parameters among {sorted(names)}"
    assert any("gain" in name for name in names), f"no gain parameter among {sorted(names)}"


def test_plugin_matches_the_cli(fixture, reference_output):
    cli = fixture.cli_process()
    assert len(cli) == len(reference_output)
    diff = max_diff(reference_output, cli)
    assert diff < SAME_OUTPUT_TOLERANCE, f"plugin and CLI differ by up to {diff}"
    assert rms(cli) > 1e-4, "the profile plays (near) silence"


@pytest.mark.parametrize("buffer_size", BUFFER_SIZES)
def test_every_buffer_size_gives_the_same_output(plugin, fixture, reference_output, buffer_size):
    out = play(plugin, fixture.phrase, buffer_size=buffer_size)
    diff = max_diff(out, reference_output)
    assert diff < SAME_OUTPUT_TOLERANCE, f"buffer size {buffer_size} changes the output by {diff}"


def test_garbage_input_gives_finite_normal_output(plugin, fixture):
    garbage = fixture.phrase[:SAMPLE_RATE // 2].copy()
    garbage[100:110] = np.nan
    garbage[1000:1010] = np.inf
    garbage[2000:2010] = -np.inf
    garbage[3000:8000] = 1e-40  # subnormal
    garbage[9000:9100] = 1e30
    out = plugin.process(stereo(garbage), SAMPLE_RATE, buffer_size=64, reset=True)
    assert np.all(np.isfinite(out)), "non-finite output"
    subnormal = (out != 0) & (np.abs(out) < SMALLEST_NORMAL_F32)
    assert not np.any(subnormal), f"{int(subnormal.sum())} subnormal output samples"
    # The plugin recovers: clean input right after plays normally again.
    after = play(plugin, fixture.phrase)
    assert np.all(np.isfinite(after))


def test_a_knob_changes_the_output(fixture, reference_output):
    plugin = load(fixture.profile)
    name = knob_parameters(plugin)[0]
    parameter = plugin.parameters[name]
    before = parameter.raw_value
    parameter.raw_value = 0.05 if before > 0.5 else 0.95
    out = play(plugin, fixture.phrase)
    change = rms(out - reference_output)
    # Measured: moving knob 1 from 0.5 to 0.95 changes the output by about 5x its own level.
    assert change > 0.1 * rms(reference_output), (
        f"moving {name} from {before} to {parameter.raw_value} changed the output by only {change} rms"
    )


def test_state_carries_the_profile_to_a_fresh_instance(plugin, fixture, reference_output):
    state = plugin.raw_state
    assert len(state) > 0
    bare = load(None)
    bare_output = play(bare, fixture.phrase)
    assert rms(bare_output - reference_output) > 0.1 * rms(reference_output), "a bare instance already plays the profile"
    restored = load(None)
    restored.raw_state = state
    out = play(restored, fixture.phrase)
    diff = max_diff(out, reference_output)
    assert diff < SAME_OUTPUT_TOLERANCE, f"restored instance differs by up to {diff}"


def test_the_plugin_reports_the_profiles_latency_and_the_host_compensates_it(plugin, fixture, reference_output):
    info = json.loads(doppel("info", str(fixture.profile), "--json"))
    latency = info["latency_samples"]
    # The built-in amp's linear-phase oversampler rings ahead of its peak: training keeps a margin.
    assert latency > 0, "the host-test profile should carry a nonzero latency"
    assert plugin.reported_latency_samples == latency
    # pedalboard removes the reported latency as a DAW's delay compensation does, so the
    # plugin's output lines up with `doppel process` (aligned) and `--raw` is it `latency` later.
    raw = fixture.cli_process(raw=True)
    assert max_diff(raw[latency:], reference_output[: len(raw) - latency]) < SAME_OUTPUT_TOLERANCE


def test_half_mix_adds_the_dry_signal_in_time_with_the_model(fixture, reference_output):
    plugin = load(fixture.profile)
    plugin.parameters["mix"].raw_value = 0.5
    # The host delivers the change with the next block; the reset in `play` then starts the
    # phrase at 50 % rather than mid-ramp from 100 %.
    plugin.process(np.zeros((2, 64), dtype=np.float32), SAMPLE_RATE)
    out = play(plugin, fixture.phrase)
    # Dry delayed by exactly the reported latency: after the host's compensation the dry part is
    # the input itself, sample for sample, and the wet part the aligned model output. A dry path
    # off by the latency would leave a comb filter (here a difference of about the signal's size).
    expected = 0.5 * fixture.phrase + 0.5 * reference_output
    diff = max_diff(out, expected)
    assert diff < 1e-5, f"half mix differs from half dry + half model by up to {diff}"
