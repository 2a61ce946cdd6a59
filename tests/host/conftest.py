"""Fixtures of the pedalboard host test: the CLI, the bundled VST3 and a quickly trained profile.

`cargo xtask test` runs this with DOPPEL_BIN (the `doppel` CLI) and DOPPEL_VST3 (a DEBUG
bundle, so nice-plug's allocation checks abort the host on any allocation on the audio
thread) set; both default to the paths under target/.
"""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pedalboard.io import AudioFile

REPO = Path(__file__).resolve().parents[2]
DOPPEL_BIN = Path(os.environ.get("DOPPEL_BIN", REPO / "target" / "debug" / "doppel"))
DOPPEL_VST3 = Path(os.environ.get("DOPPEL_VST3", REPO / "target" / "bundled" / "Doppel.vst3"))
SAMPLE_RATE = 48_000


def doppel(*args: str) -> str:
    """Runs the CLI, failing the test with its stderr when it exits non-zero; returns stdout."""
    env = {key: value for key, value in os.environ.items() if key != "DOPPEL_PROFILE"}
    result = subprocess.run([str(DOPPEL_BIN), *args], capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        pytest.fail(f"doppel {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def read_wav(path: Path) -> np.ndarray:
    """The first channel of a WAV file as float32 samples."""
    with AudioFile(str(path)) as file:
        assert file.samplerate == SAMPLE_RATE, f"{path} is at {file.samplerate} Hz"
        return file.read(file.frames)[0].astype(np.float32)


class Fixture:
    """A trained profile, a held-out phrase and the CLI's rendering of it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.profile = folder / "host.doppel"
        self.phrase_path = folder / "phrase.wav"
        capture, capture_out = folder / "capture.wav", folder / "capture_out.wav"
        doppel("signal", "--out", str(capture), "--seconds", "4", "--seed", "21")
        doppel("reference", "--input", str(capture), "--output", str(capture_out), "--knob", "gain=5")
        doppel("train", "--input", str(capture), "--target", str(capture_out), "--knob", "gain=5",
               "--arch", "wavenet", "--size", "nano", "--steps", "30", "--seed", "4",
               "--name", "host test amp", "--out", str(self.profile))
        doppel("signal", "--kind", "phrase", "--seconds", "2", "--seed", "22", "--out", str(self.phrase_path))
        self.phrase = read_wav(self.phrase_path)

    def cli_process(self, *knobs: str, raw: bool = False) -> np.ndarray:
        """`doppel process` of the phrase with `--knob` settings like "gain=5" (`raw`: with
        `--raw`, the reported latency left in)."""
        out = self.folder / f"cli_{'_'.join(knobs) or 'default'}{'_raw' if raw else ''}.wav"
        knob_args = [arg for knob in knobs for arg in ("--knob", knob)]
        doppel("process", "--profile", str(self.profile), "--input", str(self.phrase_path), "--output", str(out),
               *knob_args, *(["--raw"] if raw else []))
        return read_wav(out)


@pytest.fixture(scope="session")
def fixture(tmp_path_factory) -> Fixture:
    assert DOPPEL_BIN.is_file(), f"no doppel CLI at {DOPPEL_BIN} (cargo build -p doppel-cli)"
    assert DOPPEL_VST3.exists(), f"no VST3 bundle at {DOPPEL_VST3} (cargo xtask bundle doppel)"
    return Fixture(tmp_path_factory.mktemp("doppel-host"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Ends the run with a plain 'N passed, N failed' line."""
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = len(stats.get("skipped", []))
    terminalreporter.write_line(f"host: {passed} passed, {failed} failed, {skipped} skipped")
