#!/usr/bin/env bash
# bench/nam_trainer.sh: Doppel's trainer against Neural Amp Modeler's own trainer on the same
# capture pair, the same WaveNet size and the same wall-time budgets, scored on held-out audio.
#
# Optional tooling, not CI. See bench/README.md for prerequisites and expected output.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/nam_trainer.sh [OPTIONS]

Makes a capture pair with Doppel (`doppel signal` through `doppel reference` at gain 8, tone 6,
the high-gain setting `cargo xtask demo` captures) and a 20 s held-out guitar phrase through
the same amp; then for each size and budget trains Doppel (`doppel train --minutes B --size S`)
and NAM (bench/nam_trainer.py: the neural-amp-modeler package's Lightning training, CPU, its
default optimiser/loss/batch, stopped at the budget), and scores both on the held-out phrase:
Doppel's profile with `doppel eval`, NAM's .nam with `doppel import` + `doppel eval` and with
NAM's own Python forward. Prints a markdown table.

Options:
  --budgets "B ..."   training budgets in minutes (default "3 10")
  --sizes "S ..."     WaveNet sizes: nano feather lite standard (default "feather", doppel's default)
  --threads N         torch threads for NAM (default 2; Doppel uses its own default, both cores)
  --nam-margin N|auto samples NAM's target is left late of the device latency (default auto:
                      the margin Doppel's profile records, so both learn the same target; 0 is
                      NAM's usual zero-latency alignment)
  --tools "T ..."     which trainers to run: doppel, nam or both (default "doppel nam"); rows
                      of other tools, sizes and budgets are kept from the previous results.jsonl
  --doppel PATH       doppel binary (default: cargo build --release -p doppel-cli)
  --python PATH       python with neural-amp-modeler (default: $NAM_PYTHON, else python3)
  --out DIR           work folder (default: $DOPPEL_BENCH_DIR/trainer, i.e. <repo>/target/bench/trainer)
  -h, --help          this text
EOF
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${DOPPEL_BENCH_DIR:-$REPO/target/bench}/trainer
AMP_KNOBS=(--knob gain=8 --knob tone=6)
PHRASE_SECONDS=20
BUDGETS="3 10"
SIZES="feather"
THREADS=2
NAM_MARGIN=auto
DOPPEL=""
TOOLS="doppel nam"
PYTHON=${NAM_PYTHON:-python3}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --budgets) BUDGETS=$2; shift 2 ;;
        --sizes) SIZES=$2; shift 2 ;;
        --tools) TOOLS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --nam-margin) NAM_MARGIN=$2; shift 2 ;;
        --doppel) DOPPEL=$2; shift 2 ;;
        --python) PYTHON=$2; shift 2 ;;
        --out) WORK=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for size in $SIZES; do
    [[ $size =~ ^(nano|feather|lite|standard)$ ]] || { echo "unknown size $size" >&2; exit 2; }
done
for budget in $BUDGETS; do
    [[ $budget =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "budget $budget is not a number of minutes" >&2; exit 2; }
done
[[ $NAM_MARGIN == auto || $NAM_MARGIN =~ ^[0-9]+$ ]] || { echo "--nam-margin must be auto or a sample count" >&2; exit 2; }
log() { echo "[nam_trainer] $*" >&2; }

# Field KEY (a dotted path) of the JSON object in FILE.
json_get() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    value = value[key]
print(value)
EOF
}

# Runs a command whose stdout is one JSON object into FILE (stderr into FILE.log); on failure
# shows the log's tail and returns 1.
run_json() {
    local file=$1; shift
    if ! "$@" >"$file" 2>"$file.log"; then
        log "failed: $*"
        tail -20 "$file.log" >&2
        return 1
    fi
}

"$PYTHON" -c 'import nam, pytorch_lightning, torch' 2>/dev/null || {
    echo "$PYTHON cannot import nam, pytorch_lightning and torch: set NAM_PYTHON (or --python) to a" >&2
    echo "python with  pip install neural-amp-modeler  (CPU torch is enough)" >&2
    exit 1
}
if [[ -z $DOPPEL ]]; then
    log "building doppel (cargo build --release -p doppel-cli)"
    (cd "$REPO" && cargo build --release -p doppel-cli >&2)
    DOPPEL=$REPO/target/release/doppel
fi
HAVE_IMPORT=1
"$DOPPEL" import --help >/dev/null 2>&1 || {
    log "this doppel has no 'import' subcommand yet: NAM is scored by its Python forward only"
    HAVE_IMPORT=0
}

mkdir -p "$WORK/data"
DATA=$WORK/data
if [[ ! -f $DATA/phrase_out.wav ]]; then
    log "making the capture pair and the held-out phrase in $DATA"
    "$DOPPEL" signal --out "$DATA/capture.wav" >&2
    "$DOPPEL" reference --input "$DATA/capture.wav" --output "$DATA/capture_out.wav" "${AMP_KNOBS[@]}" >&2
    "$DOPPEL" signal --kind phrase --seconds "$PHRASE_SECONDS" --out "$DATA/phrase.wav" >&2
    "$DOPPEL" reference --input "$DATA/phrase.wav" --output "$DATA/phrase_out.wav" "${AMP_KNOBS[@]}" >&2
fi

RESULTS=$WORK/results.jsonl
# Keep the rows of trainers not run this time; drop the ones about to be measured again.
touch "$RESULTS"
python3 - "$RESULTS" "$TOOLS" "$SIZES" "$BUDGETS" <<'EOF'
import json, sys
path, tools, sizes, budgets = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), [float(b) for b in sys.argv[4].split()]
def rerun(row):
    return (row["tool"].split()[0].lower() in tools and row["size"] in sizes
            and row["budget_minutes"] in budgets)
keep = [l for l in open(path) if l.strip() and not rerun(json.loads(l))]
open(path, "w").writelines(keep)
EOF
wants() { [[ " $TOOLS " == *" $1 "* ]]; }
for size in $SIZES; do
    for budget in $BUDGETS; do
        run=$WORK/${size}_${budget}min
        mkdir -p "$run"

        if wants doppel || [[ ! -f $run/doppel_train.json ]]; then
        log "Doppel: training WaveNet $size for $budget min"
        run_json "$run/doppel_train.json" "$DOPPEL" train --input "$DATA/capture.wav" --target "$DATA/capture_out.wav" \
            --arch wavenet --size "$size" --minutes "$budget" --out "$run/doppel.doppel" --json \
            --snapshot-every 30 --snapshot-dir "$run/snapshots"
        run_json "$run/doppel_eval.json" "$DOPPEL" eval --profile "$run/doppel.doppel" \
            --input "$DATA/phrase.wav" --target "$DATA/phrase_out.wav" --json
        # The accuracy-versus-time curve of this run: each 30 s snapshot on the held-out phrase.
        for snapshot in "$run"/snapshots/*.doppel; do
            [[ -f $snapshot ]] || continue
            seconds=${snapshot##*/t}
            "$DOPPEL" eval --profile "$snapshot" --input "$DATA/phrase.wav" --target "$DATA/phrase_out.wav" \
                --json >"$run/snapshot_eval.json"
            printf '%s\t%s\n' "${seconds%.doppel}" "$(json_get "$run/snapshot_eval.json" esr)"
        done >"$run/doppel_curve.tsv"
        latency=$(json_get "$run/doppel_train.json" latency_samples)
        phrase_latency=$(json_get "$run/doppel_eval.json" measured_latency_samples)
        if [[ $NAM_MARGIN == auto ]]; then
            "$DOPPEL" info "$run/doppel.doppel" --json >"$run/doppel_info.json"
            margin=$(json_get "$run/doppel_info.json" training.alignment_margin_samples)
        else
            margin=$NAM_MARGIN
        fi
        python3 - "$RESULTS" "$size" "$budget" "$run/doppel_train.json" "$run/doppel_eval.json" <<'EOF'
import json, sys
results, size, budget, train, held_out = sys.argv[1:]
t, e = json.load(open(train)), json.load(open(held_out))
row = {"tool": "Doppel", "size": size, "budget_minutes": float(budget), "steps": t["steps"], "epochs": None,
       "train_seconds": t["wall_seconds"], "validation_esr": t["esr"], "held_out_esr": e["esr"]}
open(results, "a").write(json.dumps(row) + "\n")
EOF
        log "Doppel: $(json_get "$run/doppel_train.json" steps) steps, held-out ESR $(json_get "$run/doppel_eval.json" esr)" \
            "(capture latency $latency, phrase latency $phrase_latency, margin $margin samples)"
        fi
        wants nam || continue
        # NAM learns the target that Doppel's latest run aligned to.
        latency=$(json_get "$run/doppel_train.json" latency_samples)
        phrase_latency=$(json_get "$run/doppel_eval.json" measured_latency_samples)
        if [[ $NAM_MARGIN == auto ]]; then
            "$DOPPEL" info "$run/doppel.doppel" --json >"$run/doppel_info.json"
            margin=$(json_get "$run/doppel_info.json" training.alignment_margin_samples)
        else
            margin=$NAM_MARGIN
        fi

        log "NAM: training WaveNet $size for $budget min (target delay $latency - $margin samples)"
        run_json "$run/nam_train.json" "$PYTHON" "$REPO/bench/nam_trainer.py" train --input "$DATA/capture.wav" \
            --target "$DATA/capture_out.wav" --size "$size" --minutes "$budget" --latency $((latency - margin)) \
            --threads "$THREADS" --out "$run"
        model=$(json_get "$run/nam_train.json" model)
        run_json "$run/nam_score.json" "$PYTHON" "$REPO/bench/nam_trainer.py" score --model "$model" \
            --input "$DATA/phrase.wav" --target "$DATA/phrase_out.wav" --latency $((phrase_latency - margin)) \
            --threads "$THREADS"
        held_out="n/a (no doppel import)"
        if [[ $HAVE_IMPORT -eq 1 ]]; then
            if run_json "$run/nam_import.json" "$DOPPEL" import "$model" --out "$run/nam.doppel" &&
                run_json "$run/nam_eval.json" "$DOPPEL" eval --profile "$run/nam.doppel" --input "$DATA/phrase.wav" \
                    --target "$DATA/phrase_out.wav" --latency $((phrase_latency - margin)) --json; then
                held_out=$(json_get "$run/nam_eval.json" esr)
            else
                held_out="import/eval failed"
            fi
        fi
        python3 - "$RESULTS" "$run/nam_train.json" "$run/nam_score.json" "$held_out" <<'EOF'
import json, sys
results, train, score, held_out = sys.argv[1:]
t, s = json.load(open(train)), json.load(open(score))
try:
    held_out = float(held_out)
except ValueError:
    pass
row = {"tool": f"NAM {t['nam_version']}", "size": t["size"], "budget_minutes": t["budget_minutes"], "steps": t["steps"],
       "epochs": t["epochs"], "train_seconds": t["train_seconds"], "validation_esr": t["validation_esr"],
       "held_out_esr": held_out, "held_out_esr_nam_python": s["esr"]}
open(results, "a").write(json.dumps(row) + "\n")
EOF
        log "NAM: $(json_get "$run/nam_train.json" steps) steps, held-out ESR $held_out" \
            "(NAM Python forward $(json_get "$run/nam_score.json" esr))"
    done
done

TABLE=$WORK/results.md
{
    echo "Held-out ESR on ${PHRASE_SECONDS} s of guitar phrases through the built-in tube amp (gain 8, tone 6),"
    echo "after training on Doppel's capture signal (its default length) through the same amp (last 10 % held out for validation)."
    echo "NAM: neural-amp-modeler's Lightning training on CPU, $THREADS torch threads, its default loss/optimiser/batch"
    echo "(bench/nam_trainer.py); its held-out ESR is from \`doppel import\` + \`doppel eval\`, NAM's Python forward in brackets."
    echo "Both targets are aligned $margin samples late of the device latency (--nam-margin). $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)."
    echo
    "$PYTHON" "$REPO/bench/nam_trainer.py" table "$RESULTS"
} | tee "$TABLE"
log "table saved to $TABLE"
