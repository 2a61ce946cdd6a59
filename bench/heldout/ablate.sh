#!/usr/bin/env bash
# bench/heldout/ablate.sh: what the capture signal lacks, measured on the held-out yardstick.
# Builds variants of the training input, then runs bench/heldout/run.sh with each as a
# --source, so every variant is trained with the same budget and seed as the capture signal
# and the real DI, and scored on the same take B. Variants:
#   di75         the first 75 s of take A: real DI cut to the default capture signal's length
#                (is the gap the material or the amount of it?)
#   sigS         the capture signal at S seconds (doppel signal --seconds S), e.g. sig195
#   sig-SECTION  the default capture signal with one section cut out (intro, sweeps, noise,
#                dynamics, plucks; sections from doppel signal --layout)
# Optional tooling, not CI; needs what run.sh needs.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: bench/heldout/ablate.sh --variants V,V [run.sh options: --devices, --minutes, --threads, ...]
  e.g. bench/heldout/ablate.sh --variants di75,sig195,sig-sweeps --devices swh_valve,gx_ts9
USAGE
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${DOPPEL_BENCH_DIR:-$REPO/target/bench}/heldout
DOPPEL=$REPO/target/release/doppel
VARIANTS=""
PASS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --variants) VARIANTS=$2; shift 2 ;;
        --out) OUT=$2; PASS+=("$1" "$2"); shift 2 ;;
        --doppel) DOPPEL=$2; PASS+=("$1" "$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) PASS+=("$1"); shift ;;
    esac
done
[[ -n $VARIANTS ]] || { usage >&2; exit 2; }
[[ -x $DOPPEL ]] || cargo build --release -p doppel-cli --manifest-path "$REPO/Cargo.toml" >&2

# Take A and the capture signal come from run.sh's render step.
"$HERE/run.sh" --render-only "${PASS[@]}"
VARIANT_DIR=$OUT/variants
mkdir -p "$VARIANT_DIR"

sources=()
for variant in ${VARIANTS//,/ }; do
    wav=$VARIANT_DIR/$variant.wav
    case "$variant" in
        di75)
            sox "$OUT/di/takeA.wav" "$wav" trim 0 75 ;;
        sig[0-9]*)
            "$DOPPEL" signal --seconds "${variant#sig}" --out "$wav" >&2 ;;
        sig-*)
            section=${variant#sig-}
            layout=$("$DOPPEL" signal --layout --out "$VARIANT_DIR/capture.wav" 2>/dev/null)
            # The sample ranges of every other section, in order.
            keep=$(python3 -c '
import json, sys
layout, cut = json.loads(sys.argv[1]), sys.argv[2]
names = [s["section"] for s in layout["sections"]]
if cut not in names:
    sys.exit(f"no section {cut!r} in the capture signal (sections: {names})")
kept = [s for s in layout["sections"] if s["section"] != cut and s["end"] > s["start"]]
print(" ".join("%d:%d" % (s["start"], s["end"]) for s in kept))
' "$layout" "$section")
            pieces=()
            for range in $keep; do
                piece=$VARIANT_DIR/piece.${#pieces[@]}.wav
                sox "$VARIANT_DIR/capture.wav" "$piece" trim "${range%%:*}s" "=${range#*:}s"
                pieces+=("$piece")
            done
            sox "${pieces[@]}" "$wav"
            rm -f "${pieces[@]}" ;;
        *) echo "unknown variant '$variant' (di75, sigSECONDS, sig-SECTION)" >&2; exit 2 ;;
    esac
    sources+=(--source "$variant=$wav")
done
names=$(IFS=,; echo "capture,takeA,${VARIANTS}")
"$HERE/run.sh" "${sources[@]}" --sources "$names" "${PASS[@]}"
