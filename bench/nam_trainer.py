#!/usr/bin/env python3
"""NAM's own trainer on a Doppel capture pair, under a wall-time budget; and NAM-side scoring.

Helper of `bench/nam_trainer.sh` (run it with a python that has `neural-amp-modeler`):

    nam_trainer.py train --input X.wav --target Y.wav --size S --minutes B --latency L
                         --out DIR [--validation-fraction 0.1] [--threads 2] [--seed 0]
    nam_trainer.py score --model M.nam --input X.wav --target Y.wav --latency L
    nam_trainer.py table RESULTS.jsonl

`train` uses NAM's lower-level API (nam.data.Dataset + nam.train.lightning_module with a
Lightning Trainer), not the simplified `nam.train.core.train`: that one insists on NAM's own
v1-v4 capture files (it finds them by hash and calibrates latency from their blips) and, since
nam 0.13, always trains its packed "A2" model. Here NAM gets exactly the pair Doppel trains on,
aligned by the same device latency and split the same way (the last `validation_fraction` of
the aligned pair is validation), with the classic WaveNet size Doppel trains
(bench/nam_presets.py). Everything else is NAM's default, read from the installed package:
its packaged model config supplies the loss (ESR validation loss, MSE + MR-STFT weight),
Adam's learning rate and weight decay and the per-epoch ExponentialLR decay;
`nam.train.core` supplies batch size 16, 8192 output samples per example, seed 0, the -18 dBFS
output normalisation (undone at export) and best-checkpoint-by-validation-loss selection (kept
in memory here). The budget stops training through Lightning's `max_time`; the weights kept
are the best validated ones, the final weights being validated once more after the stop.

`score` plays the exported .nam through NAM's own Python forward (zero history before the
first sample, as Doppel's kernel starts) and prints the held-out ESR as JSON, computed the way
`doppel eval` does: target shifted by the latency, both trimmed to the common length, ESR over
every sample.
"""

import argparse
import copy
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nam_presets  # noqa: E402  (bench/ helper next to this script)

BATCH_SIZE_DEFAULT = 16  # nam.train.core.train's default
NY_DEFAULT = 8192  # nam.train.core._NY_DEFAULT
OUTPUT_LEVEL_RMS_DBFS = -18.0  # nam.train.core's joint data hook
MAX_EPOCHS_DEFAULT = 100  # nam.train.core.train's default


def read_wav(path: Path) -> tuple:
    """(mono float32 samples, sample rate in Hz) of a WAV file."""
    try:
        import soundfile

        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return samples.mean(axis=1), int(rate)
    except ImportError:
        from scipy.io import wavfile

        rate, samples = wavfile.read(str(path))
        if samples.dtype.kind in "iu":
            samples = samples / float(np.iinfo(samples.dtype).max)
        samples = samples.astype(np.float32)
        return (samples.mean(axis=1) if samples.ndim == 2 else samples), int(rate)


def align(x: np.ndarray, y: np.ndarray, latency_samples: int) -> tuple:
    """Doppel's alignment: target[n + latency] lines up with input[n]; common length."""
    if latency_samples >= 0:
        y = y[latency_samples:]
    else:
        x = x[-latency_samples:]
    n = min(len(x), len(y))
    return x[:n], y[:n]


def esr(prediction: np.ndarray, target: np.ndarray) -> float:
    """Error-to-signal ratio over every sample (float64 sums, as doppel's metrics)."""
    p = prediction.astype(np.float64)
    t = target.astype(np.float64)
    return float(np.sum((t - p) ** 2) / (np.sum(t**2) + 1e-12))


def nam_defaults() -> dict:
    """Loss, optimiser and scheduler of the installed nam's packaged (default) model config."""
    import importlib.resources

    resource = importlib.resources.files("nam.train._resources").joinpath("config_model_packed.json")
    with resource.open() as fp:
        packed = json.load(fp)
    return {key: packed[key] for key in ("loss", "optimizer", "lr_scheduler")}


def command_train(args) -> int:
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader

    import nam
    from nam.data import Dataset, apply_joint_dataset_hooks, normalize_joint_dataset_output
    from nam.train.lightning_module import LightningModule

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, rate = read_wav(args.input)
    y, target_rate = read_wav(args.target)
    if rate != target_rate:
        raise SystemExit(f"sample rates differ: {rate} Hz and {target_rate} Hz")
    x, y = align(x, y, args.latency)
    train_end = int(len(x) * (1.0 - args.validation_fraction))

    defaults = nam_defaults()
    model_config = {"net": {"name": "WaveNet", "config": nam_presets.wavenet_config(args.size)}, **defaults}
    model = LightningModule.init_from_config(model_config)
    nx = model.net.receptive_field
    x_t, y_t = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    common = dict(nx=nx, sample_rate=float(rate), require_input_pre_silence=None)
    train_set = Dataset(x_t, y_t, ny=args.ny, stop_samples=train_end, **common)
    # The validation split starts cold: its first nx - 1 samples only warm the model up.
    validation_set = Dataset(x_t, y_t, ny=None, start_samples=max(train_end - (nx - 1), 0), **common)
    apply_joint_dataset_hooks(
        dataset_train=train_set,
        dataset_validation=validation_set,
        hooks=[normalize_joint_dataset_output(level_rms_dbfs=OUTPUT_LEVEL_RMS_DBFS)],
    )
    model.net.sample_rate = float(rate)
    for dataset in (train_set, validation_set):
        dataset.handshake(model.net)
        model.net.handshake(dataset)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=0)
    validation_loader = DataLoader(validation_set)

    keeper = _best_weights_callback(pl)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=MAX_EPOCHS_DEFAULT,
        max_time=timedelta(seconds=args.minutes * 60.0),
        callbacks=[keeper],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(args.out),
    )
    start = time.perf_counter()
    trainer.fit(model, train_loader, validation_loader)
    train_seconds = time.perf_counter() - start

    final_esr = _validation_esr(model, validation_set)
    if keeper.best_state is None or final_esr < keeper.best_esr:
        chosen, chosen_esr = "final", final_esr
    else:
        model.load_state_dict(keeper.best_state)
        chosen, chosen_esr = f"best of epoch {keeper.best_epoch}", keeper.best_esr
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    basename = f"nam_{args.size}_{args.minutes:g}min"
    model.net.export(args.out, basename=basename)
    steps = int(trainer.global_step)
    batches_per_epoch = max(len(train_loader), 1)
    summary = {
        "tool": "NAM",
        "nam_version": getattr(nam, "__version__", "?"),
        "torch_version": torch.__version__,
        "size": args.size,
        "budget_minutes": args.minutes,
        "steps": steps,
        "epochs": steps / batches_per_epoch,
        "batches_per_epoch": batches_per_epoch,
        "train_seconds": train_seconds,
        "validation_esr": chosen_esr,
        "kept": chosen,
        "latency_samples": args.latency,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "ny": args.ny,
        "defaults": defaults,
        "model": str(args.out / f"{basename}.nam"),
    }
    print(json.dumps(summary))
    return 0


def _best_weights_callback(pl):
    """A Lightning callback keeping the weights with the lowest validation ESR (in memory)."""

    class BestWeights(pl.Callback):
        def __init__(self):
            self.best_esr = float("inf")
            self.best_state = None
            self.best_epoch = None

        def on_validation_epoch_end(self, trainer, pl_module):
            if trainer.sanity_checking or "ESR" not in trainer.callback_metrics:
                return
            value = float(trainer.callback_metrics["ESR"])
            print(
                f"[nam] epoch {trainer.current_epoch} step {trainer.global_step}: validation ESR {value:.5f}",
                file=sys.stderr,
            )
            if value < self.best_esr:
                self.best_esr = value
                self.best_state = copy.deepcopy(pl_module.state_dict())
                self.best_epoch = trainer.current_epoch

    return BestWeights()


def _validation_esr(model, validation_set) -> float:
    """ESR of the model's current weights on the (normalised) validation split."""
    import torch

    model.eval()
    x, y = validation_set[0]
    with torch.no_grad():
        prediction = model.net(x[None], pad_start=False)[0]
    return esr(prediction.numpy(), y.numpy())


def command_score(args) -> int:
    import torch
    from nam.models._from_nam import init_from_nam

    with open(args.model) as fp:
        model = init_from_nam(json.load(fp))
    model.eval()
    torch.set_num_threads(args.threads)
    x, rate = read_wav(args.input)
    y, _ = read_wav(args.target)
    x, y = align(x, y, args.latency)
    with torch.no_grad():
        prediction = model(torch.from_numpy(x.copy()), pad_start=True).numpy()
    result = {"esr": esr(prediction, y), "seconds": len(y) / rate, "latency_samples": args.latency}
    print(json.dumps(result))
    return 0


def command_table(args) -> int:
    rows = [json.loads(line) for line in open(args.results) if line.strip()]
    print("| tool | size | budget (min) | steps (epochs) | training wall (s) | validation ESR | held-out ESR |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        work = f"{r['steps']}"
        if r.get("epochs") is not None:
            work += f" ({r['epochs']:.1f} epochs)"
        held_out = r.get("held_out_esr")
        held_out_text = f"{held_out:.5f}" if isinstance(held_out, float) else str(held_out)
        if r.get("held_out_esr_nam_python") is not None:
            held_out_text += f" (NAM python {r['held_out_esr_nam_python']:.5f})"
        print(
            f"| {r['tool']} | {r['size']} | {r['budget_minutes']:g} | {work} | "
            f"{r['train_seconds']:.0f} | {r['validation_esr']:.5f} | {held_out_text} |"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train NAM on a pair under a wall-time budget")
    train.add_argument("--input", type=Path, required=True)
    train.add_argument("--target", type=Path, required=True)
    train.add_argument("--size", choices=nam_presets.SIZES, required=True)
    train.add_argument("--minutes", type=float, required=True)
    train.add_argument("--latency", type=int, required=True, help="alignment shift of the target, in samples")
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--validation-fraction", type=float, default=0.1)
    train.add_argument("--threads", type=int, default=2)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--batch-size", type=int, default=BATCH_SIZE_DEFAULT)
    train.add_argument("--ny", type=int, default=NY_DEFAULT)
    score = sub.add_parser("score", help="held-out ESR of a .nam through NAM's Python forward")
    score.add_argument("--model", type=Path, required=True)
    score.add_argument("--input", type=Path, required=True)
    score.add_argument("--target", type=Path, required=True)
    score.add_argument("--latency", type=int, required=True)
    score.add_argument("--threads", type=int, default=2)
    table = sub.add_parser("table", help="markdown table of a results .jsonl")
    table.add_argument("results", type=Path)
    args = parser.parse_args()
    return {"train": command_train, "score": command_score, "table": command_table}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
