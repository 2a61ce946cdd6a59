#!/usr/bin/env python3
"""bench/heldout/sections.py: where on take B a profile goes wrong, section by section.

Take B is a row of playing styles (riff, strum, palm mute, arpeggio, bends, bass line,
dynamics; make_takes.py). For the device's take B and one or more predictions of it (each
`doppel process` of take B by a profile, so time-aligned as a DAW plays it), prints per
section: its time span, the target's RMS, each prediction's ESR over that section and the
section's share of that prediction's total error energy. A capture signal that lacks a
playing style shows up as a section whose share is far above its share of the target's
energy. Every prediction is shifted by the one lag (within +-64 samples) that best matches
the whole take, which is 0 whenever the device's latency was measured right.

Needs numpy (the host-test venv has it). Usage:
  sections.py TARGET.wav NAME=PREDICTION.wav [NAME=PREDICTION.wav ...]
"""
import sys

import numpy as np

import make_takes
from wavstat import read_wav

MAX_LAG_SAMPLES = 64


def take_b_sections():
    """(name, start beat, end beat) of each section of take B, by watching make_takes build it."""
    spans = []
    names = ["riff", "strum", "palm_mute", "arpeggio", "bends", "bass_line", "dynamics"]
    originals = {name: getattr(make_takes, name) for name in names}

    def watch(name):
        def section(take, *args, **kwargs):
            start = take.beat
            originals[name](take, *args, **kwargs)
            spans.append((name, start, take.beat))
        return section

    for name in names:
        setattr(make_takes, name, watch(name))
    try:
        take = make_takes.take_b()
    finally:
        for name, function in originals.items():
            setattr(make_takes, name, function)
    return take.bpm, spans


def mono(path):
    rate, channels, samples = read_wav(path)
    return rate, np.asarray(samples, dtype=np.float64)[::channels]


def best_lag(prediction, target):
    n = min(len(prediction), len(target)) - MAX_LAG_SAMPLES
    errors = [np.sum((np.roll(prediction, lag)[MAX_LAG_SAMPLES:n] - target[MAX_LAG_SAMPLES:n]) ** 2)
              for lag in range(-MAX_LAG_SAMPLES, MAX_LAG_SAMPLES + 1)]
    return int(np.argmin(errors)) - MAX_LAG_SAMPLES


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    rate, target = mono(sys.argv[1])
    predictions = []
    for spec in sys.argv[2:]:
        name, path = spec.split("=", 1)
        _, prediction = mono(path)
        prediction = np.pad(prediction, (0, max(0, len(target) - len(prediction))))[: len(target)]
        lag = best_lag(prediction, target)
        predictions.append((name, np.roll(prediction, lag), lag))
    bpm, spans = take_b_sections()
    seconds_per_beat = 60.0 / bpm
    total_target = np.sum(target ** 2)
    header = ["section", "seconds", "target RMS dBFS", "energy share"]
    for name, _, lag in predictions:
        header += [f"{name} ESR (lag {lag:+d})", f"{name} error share"]
    print("| " + " | ".join(header) + " |")
    print("|---|---|" + "---:|" * (len(header) - 2))
    totals = [np.sum((p - target) ** 2) for _, p, _ in predictions]
    for name, start_beat, end_beat in spans:
        # The section's notes ring into its trailing rest; the rest belongs to it.
        start = int(start_beat * seconds_per_beat * rate)
        end = min(len(target), int(end_beat * seconds_per_beat * rate))
        t = target[start:end]
        energy = np.sum(t ** 2)
        cells = [name, f"{start / rate:.1f}-{end / rate:.1f}", f"{10 * np.log10(np.mean(t ** 2) + 1e-20):.1f}",
                 f"{energy / total_target:.3f}"]
        for (_, p, _), total in zip(predictions, totals):
            error = np.sum((p[start:end] - t) ** 2)
            cells += [f"{error / max(energy, 1e-20):.5f}", f"{error / max(total, 1e-20):.3f}"]
        print("| " + " | ".join(cells) + " |")
    cells = ["whole take", f"0.0-{len(target) / rate:.1f}", f"{10 * np.log10(np.mean(target ** 2)):.1f}", "1.000"]
    for total in totals:
        cells += [f"{total / total_target:.5f}", "1.000"]
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
