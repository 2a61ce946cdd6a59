#!/usr/bin/env bash
# bench/training_curve.sh: Doppel's accuracy against training time in one run. Trains once on
# the built-in amp at its high-gain setting (the same data as `cargo xtask demo` and
# bench/nam_trainer.sh), keeps the best weights every --every seconds, then scores each of
# those snapshots on a held-out guitar phrase the trainer never saw. Prints a markdown table:
# seconds, held-out ESR, and the trainer's own validation ESR at that time.
#
# Optional tooling, not CI. A snapshot at t seconds is what the run had at t; a run given a
# budget of t seconds decays its learning rate sooner, so it usually ends a little better.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: bench/training_curve.sh [--minutes M] [--every S] [--size S] [--doppel PATH] [--out DIR]
  --minutes M     training budget (default 10)
  --every S       snapshot interval in seconds (default 30)
  --size S        WaveNet size (default feather, doppel's default)
  --doppel PATH   doppel binary (default: cargo build --release -p doppel-cli)
  --out DIR       work folder (default: $DOPPEL_BENCH_DIR/curve, i.e. <repo>/target/bench/curve)
USAGE
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${DOPPEL_BENCH_DIR:-$REPO/target/bench}/curve
MINUTES=10
EVERY=30
SIZE=feather
DOPPEL=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --minutes) MINUTES=$2; shift 2 ;;
        --every) EVERY=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --doppel) DOPPEL=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ -z "$DOPPEL" ]]; then
    cargo build --release -p doppel-cli --manifest-path "$REPO/Cargo.toml" >&2
    DOPPEL=$REPO/target/release/doppel
fi

mkdir -p "$OUT"
cd "$OUT"
AMP=(--knob gain=8 --knob tone=6)
[[ -f capture_out.wav ]] || {
    "$DOPPEL" signal --out capture.wav >&2
    "$DOPPEL" reference --input capture.wav --output capture_out.wav "${AMP[@]}" >&2
    "$DOPPEL" signal --kind phrase --seconds 20 --out phrase.wav >&2
    "$DOPPEL" reference --input phrase.wav --output phrase_out.wav "${AMP[@]}" >&2
}
rm -rf snapshots
"$DOPPEL" train --input capture.wav --target capture_out.wav --size "$SIZE" --minutes "$MINUTES" \
    --snapshot-every "$EVERY" --snapshot-dir snapshots --out final.doppel --json > train.json
for snapshot in snapshots/*.doppel final.doppel; do
    printf '%s\t' "$snapshot"
    "$DOPPEL" eval --profile "$snapshot" --input phrase.wav --target phrase_out.wav --json
done > held_out.tsv

python3 - "$EVERY" <<'PY' | tee curve.md
import json, sys
every = float(sys.argv[1])
train = json.load(open("train.json"))
curve = train["validation_curve"]
def validation_at(seconds):
    seen = [p["esr"] for p in curve if p["seconds"] <= seconds]
    return min(seen) if seen else float("nan")
print(f"Doppel WaveNet {train['size']}, one run of {train['wall_seconds']:.0f} s ({train['steps']} steps); "
      "held-out = 20 s of guitar phrases through the same amp, never trained on.")
print()
print("| training seconds | held-out ESR | validation ESR (best so far) |")
print("|---:|---:|---:|")
for line in open("held_out.tsv"):
    name, report = line.split("\t", 1)
    esr = json.loads(report)["esr"]
    seconds = train["wall_seconds"] if name == "final.doppel" else float(name.split("/t")[1][:-7])
    label = f"{seconds:.0f} (end)" if name == "final.doppel" else f"{seconds:.0f}"
    print(f"| {label} | {esr:.4f} | {validation_at(seconds):.4f} |")
PY
