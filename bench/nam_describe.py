#!/usr/bin/env python3
"""Describe a .nam file in one tab-separated line: architecture/size label and weight count.

Used by `bench/nam_core.sh` for its table (standard library only, any python3). A WaveNet
whose two layer arrays have the classic channel counts and dilations is named by its preset
(standard, lite, feather, nano); anything else is "custom" with its channel counts.

Usage: python3 bench/nam_describe.py FILE.nam
Prints: LABEL<TAB>WEIGHT_COUNT<TAB>SAMPLE_RATE_HZ (sample rate "?" when the file has none)
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nam_presets  # noqa: E402  (bench/ helper next to this script)


def _array_shape(layer: dict) -> tuple:
    kernel = layer.get("kernel_sizes", layer.get("kernel_size"))
    kernels = tuple(kernel) if isinstance(kernel, list) else (kernel,) * len(layer["dilations"])
    return layer["channels"], tuple(layer["dilations"]), kernels


def wavenet_label(config: dict) -> str:
    """The preset name of a WaveNet config, or "custom CxC" when it matches none."""
    shapes = [_array_shape(layer) for layer in config.get("layers", [])]
    for size in nam_presets.SIZES:
        preset = nam_presets.wavenet_config(size)["layers_configs"]
        expected = [_array_shape(a) for a in preset]
        if shapes == expected:
            return size
    return "custom " + "x".join(str(s[0]) for s in shapes)


def describe(path: Path) -> tuple:
    with open(path) as fp:
        model = json.load(fp)
    architecture = model.get("architecture", "?")
    config = model.get("config", {})
    if architecture == "WaveNet":
        label = f"WaveNet/{wavenet_label(config)}"
    elif architecture == "LSTM":
        label = f"LSTM/{config.get('num_layers', '?')}x{config.get('hidden_size', '?')}"
    else:
        label = architecture
    weights = len(model.get("weights", []))
    return label, weights, model.get("sample_rate", "?")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    label, weights, sample_rate = describe(Path(sys.argv[1]))
    print(f"{label}\t{weights}\t{sample_rate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
