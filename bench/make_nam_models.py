#!/usr/bin/env python3
"""Write randomly initialised NAM WaveNet .nam files for the standard/lite/feather/nano sizes.

Benchmark inputs for `bench/nam_core.sh`: the cost of a WaveNet does not depend on what its
weights learned, so a fixed-seed random initialisation of each size, exported by the
`neural-amp-modeler` package's own exporter, is a real .nam file of that architecture.

Usage (with the nam venv's python):
    python bench/make_nam_models.py --out DIR [--sizes standard lite feather nano] [--seed 0]

Writes DIR/wavenet_<size>.nam for each size and prints one line per file.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nam_presets  # noqa: E402  (bench/ helper next to this script)

SAMPLE_RATE_HZ = 48_000


def build_model(size: str, seed: int):
    """A `nam` WaveNet model of `size` with fixed-seed random weights at 48 kHz."""
    from nam.models.factory import init as init_model

    torch.manual_seed(seed)
    model = init_model("WaveNet", kwargs={"config": nam_presets.wavenet_config(size)})
    model.sample_rate = SAMPLE_RATE_HZ
    model.eval()
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder to write the .nam files into")
    parser.add_argument("--sizes", nargs="+", default=list(nam_presets.SIZES), choices=nam_presets.SIZES)
    parser.add_argument("--seed", type=int, default=0, help="torch seed for the random initialisation")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        model = build_model(size, args.seed)
        basename = f"wavenet_{size}"
        model.export(args.out, basename=basename)
        path = args.out / f"{basename}.nam"
        parameters = sum(p.numel() for p in model.parameters())
        with open(path) as fp:
            exported = json.load(fp)
        print(
            f"wrote {path}: WaveNet {size}, {parameters} parameters, "
            f"receptive field {model.receptive_field} samples, file version {exported['version']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
