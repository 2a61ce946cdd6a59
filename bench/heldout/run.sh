#!/usr/bin/env bash
# bench/heldout/run.sh: the held-out yardstick. Scores Doppel on material no Doppel code made:
# guitar and bass DI rendered from the MuseScore General soundfont by fluidsynth, played
# through third-party LV2 plugins (bench/heldout/devices.tsv) by lv2file. For each device it
# trains two profiles with the same budget, one on Doppel's capture signal alone and one on
# take A of the DI (3 minutes), and scores both on take B (50 s of other parts, never trained
# on). Prints a markdown table: ESR as a DAW plays each profile and at the best lag, and the
# ratio of the two training sources.
#
# Optional tooling, not CI. Debian packages: fluidsynth, musescore-general-soundfont-lossless,
# sox, lv2file, lilv-utils and the plugin packages named in devices.tsv (installed when root).
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: bench/heldout/run.sh [--minutes M] [--devices ID,ID] [--source NAME=WAV]... [--sources NAMES]
                            [--retrain] [--render-only] [--threads N] [--doppel PATH] [--out DIR]
  --minutes M      training budget of each profile (default 3)
  --devices IDS    comma-separated ids from bench/heldout/devices.tsv (default: all)
  --source N=WAV   one more training input: WAV (mono, 48 kHz) is played through every device,
                   trained on like the capture signal and scored on take B (bench/heldout/ablate.sh)
  --sources NAMES  comma-separated training inputs to train and score (default: capture, takeA
                   and every --source)
  --retrain        train again even where a profile of the same inputs, budget and seed exists
                   (needed after changing doppel's training code: the cache keys on the inputs)
  --render-only    render the takes and every device's outputs and check them; no training
  --threads N      passed to doppel train --threads (default: doppel's, all cores)
  --doppel PATH    doppel binary (default: target/release/doppel, built when missing)
  --out DIR        work folder (default: $DOPPEL_BENCH_DIR/heldout, i.e. <repo>/target/bench/heldout)
USAGE
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${DOPPEL_BENCH_DIR:-$REPO/target/bench}/heldout
MINUTES=3
DEVICES=""
RENDER_ONLY=0
THREADS=""
DOPPEL=""
EXTRA_SOURCES=()
TRAIN_SOURCES=""
RETRAIN=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --minutes) MINUTES=$2; shift 2 ;;
        --devices) DEVICES=$2; shift 2 ;;
        --source) EXTRA_SOURCES+=("$2"); shift 2 ;;
        --sources) TRAIN_SOURCES=$2; shift 2 ;;
        --retrain) RETRAIN=1; shift ;;
        --render-only) RENDER_ONLY=1; shift ;;
        --threads) THREADS=$2; shift 2 ;;
        --doppel) DOPPEL=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

SOUNDFONT=/usr/share/sounds/sf2/MuseScore_General_Full.sf2
SOUNDFONT_PACKAGE=musescore-general-soundfont-lossless
SAMPLE_RATE=48000
DI_PEAK_DBFS=-3
TRAIN_SEED=0

log() { echo "[heldout] $*" >&2; }

# --- devices -----------------------------------------------------------------------------------

# Rows of devices.tsv selected by --devices, comments dropped.
ROWS=()
while IFS= read -r line; do
    [[ -z $line || $line == \#* ]] && continue
    ROWS+=("$line")
done < "$HERE/devices.tsv"
if [[ -n $DEVICES ]]; then
    selected=()
    for id in ${DEVICES//,/ }; do
        match=""
        for row in "${ROWS[@]}"; do [[ ${row%%$'\t'*} == "$id" ]] && match=$row; done
        [[ -n $match ]] || { echo "no device '$id' in bench/heldout/devices.tsv" >&2; exit 2; }
        selected+=("$match")
    done
    ROWS=("${selected[@]}")
fi

# --- prerequisites -----------------------------------------------------------------------------

need_packages() {
    local wanted=(fluidsynth "$SOUNDFONT_PACKAGE" sox lv2file lilv-utils) missing=() row package
    for row in "${ROWS[@]}"; do
        IFS=$'\t' read -r _ _ _ _ package _ <<< "$row"
        wanted+=("$package")
    done
    for package in $(printf '%s\n' "${wanted[@]}" | sort -u); do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$package")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local command="apt-get install -y --no-install-recommends ${missing[*]}"
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
            { apt-get update -qq >&2 &&
              DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
    else
        echo "missing Debian packages; install them with:" >&2
        echo "  sudo apt-get update && sudo $command" >&2
        exit 1
    fi
}
need_packages

version_of() { dpkg-query -W -f='${Version}' "$1"; }

if [[ -z $DOPPEL ]]; then
    DOPPEL=$REPO/target/release/doppel
    [[ -x $DOPPEL ]] || cargo build --release -p doppel-cli --manifest-path "$REPO/Cargo.toml" >&2
fi
[[ -x $DOPPEL ]] || { echo "no doppel binary at $DOPPEL" >&2; exit 1; }

mkdir -p "$OUT/di"
cd "$OUT"

# A file is rebuilt when the text describing how it is made changes: FILE.stamp holds it.
fresh() { [[ -f $1 && -f $1.stamp && "$(cat "$1.stamp")" == "$2" ]]; }
stamp() { printf '%s' "$2" > "$1.stamp"; }

# --- instrument DI: takes A and B --------------------------------------------------------------

# Renders MIDI file $1 to the mono 32-bit float DI $2, peak at DI_PEAK_DBFS, dry (no reverb
# or chorus).
render_di() {
    local tmp=$2.stereo.wav
    fluidsynth -ni -q -R 0 -C 0 -g 0.5 -r "$SAMPLE_RATE" -O float -T wav -F "$tmp" "$SOUNDFONT" "$1" >&2
    sox "$tmp" -e floating-point -b 32 "$2" remix 1-2 gain -n "$DI_PEAK_DBFS" 2>/dev/null
    rm -f "$tmp"
}

di_recipe="$(sha256sum "$HERE/make_takes.py" | cut -d' ' -f1) fluidsynth $(version_of fluidsynth)"
di_recipe+=" $SOUNDFONT_PACKAGE $(version_of "$SOUNDFONT_PACKAGE") sox $(version_of sox) peak $DI_PEAK_DBFS"
if ! fresh di/takeA.wav "$di_recipe" || ! fresh di/takeB.wav "$di_recipe"; then
    log "writing the MIDI parts and rendering takes A and B"
    python3 "$HERE/make_takes.py" di
    for take in takeA takeB; do
        render_di "di/$take.mid" "di/$take.wav"
        stamp "di/$take.wav" "$di_recipe"
    done
fi

# Doppel's own capture signal, made by the doppel under test; redone every run, and kept (so
# the device renders of it stay cached) while its bytes do not change.
"$DOPPEL" signal --out di/capture.new.wav >&2
if cmp -s di/capture.new.wav di/capture.wav; then rm di/capture.new.wav; else mv di/capture.new.wav di/capture.wav; fi

# Further training inputs (--source NAME=WAV), copied into di/ and kept while their bytes do not
# change, like the capture signal.
EXTRA_NAMES=()
for spec in "${EXTRA_SOURCES[@]}"; do
    name=${spec%%=*} wav=${spec#*=}
    [[ $name =~ ^[A-Za-z0-9_.+-]+$ && $name != "$spec" ]] ||
        { echo "--source wants NAME=WAV with a plain NAME, got '$spec'" >&2; exit 2; }
    [[ $name != capture && $name != takeA && $name != takeB ]] ||
        { echo "--source name '$name' is taken" >&2; exit 2; }
    [[ -f $wav ]] || { echo "--source $name: no file $wav" >&2; exit 2; }
    cmp -s "$wav" "di/$name.wav" || cp "$wav" "di/$name.wav"
    EXTRA_NAMES+=("$name")
done
ALL_TRAIN=(capture takeA "${EXTRA_NAMES[@]}")
if [[ -n $TRAIN_SOURCES ]]; then
    SELECTED=(${TRAIN_SOURCES//,/ })
    for name in "${SELECTED[@]}"; do
        printf '%s\n' "${ALL_TRAIN[@]}" | grep -qx -- "$name" ||
            { echo "--sources: '$name' is neither capture, takeA nor a --source" >&2; exit 2; }
    done
else
    SELECTED=("${ALL_TRAIN[@]}")
fi
RENDERED=(takeB "${ALL_TRAIN[@]}")

# --- devices' outputs --------------------------------------------------------------------------

# Input control ports of plugin $1, space-separated.
control_ports() {
    lv2info "$1" | awk '
        /^\tPort [0-9]+:/ { if (control && input) printf "%s ", symbol; control = 0; input = 0 }
        /#ControlPort/ { control = 1 }
        /#InputPort/ { input = 1 }
        /Symbol:/ { symbol = $2 }
        END { if (control && input) printf "%s", symbol }'
}

# Runs device row $1 on input $2, writing the mono 32-bit float $3.
render_device() {
    local id device setting effect package uri connect ports description args=() port
    IFS=$'\t' read -r id device setting effect package uri connect ports description <<< "$1"
    [[ $connect != - ]] && args+=(-c "$connect")
    for port in $ports; do args+=(-p "${port%%=*}:${port#*=}"); done
    lv2file -i "$2" -o "$3.raw.wav" "${args[@]}" "$uri" > "$3.log" 2>&1 ||
        { cat "$3.log" >&2; echo "lv2file failed on $id" >&2; exit 1; }
    sox "$3.raw.wav" -e floating-point -b 32 "$3" remix 1 2>/dev/null
    rm -f "$3.raw.wav"
}

frames_of() { soxi -s "$1" 2>/dev/null; }

declare -A source_sha256
for source in "${RENDERED[@]}"; do source_sha256[$source]=$(sha256sum "di/$source.wav" | cut -d' ' -f1); done
checks=$OUT/checks.tsv
python3 "$HERE/wavstat.py" $(for source in "${RENDERED[@]}"; do echo "di/$source.wav"; done) > "$checks" || true
for row in "${ROWS[@]}"; do
    IFS=$'\t' read -r id _ _ _ package uri connect ports _ <<< "$row"
    listed=$(for port in $ports; do echo "${port%%=*}"; done | sort | tr '\n' ' ')
    actual=$(for port in $(control_ports "$uri"); do echo "$port"; done | sort | tr '\n' ' ')
    [[ $listed == "$actual" ]] ||
        { echo "$id: devices.tsv sets ports '$listed' but $uri has '$actual'" >&2; exit 1; }
    mkdir -p "$id"
    for source in "${RENDERED[@]}"; do
        recipe="$uri $connect $ports $package $(version_of "$package") lv2file $(version_of lv2file)"
        recipe+=" ${source_sha256[$source]}"
        if ! fresh "$id/${source}_dev.wav" "$recipe"; then
            log "$id: rendering $source"
            render_device "$row" "di/$source.wav" "$id/${source}_dev.wav"
            stamp "$id/${source}_dev.wav" "$recipe"
        fi
        python3 "$HERE/wavstat.py" --frames "$(frames_of "di/$source.wav")" "$id/${source}_dev.wav" >> "$checks" || true
    done
done

echo "Render checks (file, frames, Hz, channels, peak dBFS, RMS dBFS, verdict), $checks:" >&2
column -t -s $'\t' "$checks" >&2 2>/dev/null || cat "$checks" >&2
if grep -qv $'\tok$' "$checks"; then
    echo "some renders failed their checks (see above)" >&2
    exit 1
fi
[[ $RENDER_ONLY -eq 1 ]] && exit 0

# --- training and scoring ----------------------------------------------------------------------

thread_args=()
[[ -n $THREADS ]] && thread_args=(--threads "$THREADS")
for row in "${ROWS[@]}"; do
    IFS=$'\t' read -r id _ _ effect _ <<< "$row"
    effect_args=()
    [[ $effect != amp ]] && effect_args=(--effect "$effect")
    for source in "${SELECTED[@]}"; do
        profile=$id/$source.doppel
        # The score is kept while the training input, the device's renders, the budget and the
        # seed stay the same (--retrain after changing doppel's training code).
        recipe="$(cat "$id/${source}_dev.wav.stamp") | $(cat "$id/takeB_dev.wav.stamp") | $MINUTES min"
        recipe+=" seed $TRAIN_SEED ${effect_args[*]} ${thread_args[*]}"
        if [[ $RETRAIN -eq 0 ]] && fresh "$id/$source.eval.json" "$recipe"; then
            log "$id: $source already trained and scored ($id/$source.eval.json)"
            continue
        fi
        log "$id: training on $source for $MINUTES min"
        "$DOPPEL" train --input "di/$source.wav" --target "$id/${source}_dev.wav" --minutes "$MINUTES" \
            --seed "$TRAIN_SEED" "${effect_args[@]}" "${thread_args[@]}" --out "$profile" --json \
            > "$id/$source.train.json"
        "$DOPPEL" eval --profile "$profile" --input di/takeB.wav --target "$id/takeB_dev.wav" --json \
            > "$id/$source.eval.json"
        stamp "$id/$source.eval.json" "$recipe"
    done
done

# --- table -------------------------------------------------------------------------------------

ids=()
for row in "${ROWS[@]}"; do ids+=("${row%%$'\t'*}"); done
SOURCES="${ALL_TRAIN[*]}" python3 - "$HERE/devices.tsv" "$MINUTES" "$("$DOPPEL" --version)" "$(version_of "$SOUNDFONT_PACKAGE")" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" "${ids[@]}" <<'PY' | tee results.md
import json, os, sys, time

devices_tsv, minutes, doppel, soundfont, cpu = sys.argv[1:6]
ids = sys.argv[6:]
rows = {}
for line in open(devices_tsv):
    if line.strip() and not line.startswith("#"):
        fields = line.rstrip("\n").split("\t")
        rows[fields[0]] = fields
TITLES = {"capture": "capture signal alone", "takeA": "real DI (take A)"}
# Every training input with a score for some device, in the order they were named.
sources = [s for s in os.environ["SOURCES"].split() if any(os.path.exists(f"{d}/{s}.eval.json") for d in ids)]


def report(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def number(value, digits=4):
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def esr_cell(scores):
    daw, best, lag = scores.get("esr"), scores.get("esr_best_lag"), scores.get("best_lag_samples")
    lag_text = f" (lag {lag:+d})" if isinstance(lag, int) else ""
    return f"{number(daw)} / {number(best)}{lag_text}"


def ratio(a, b):
    a, b = a.get("esr"), b.get("esr")
    ok = isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0
    return f"{a / b:.2f}" if ok else "n/a"


print(f"Held-out ESR on take B (about 50 s of soundfont guitar and bass DI, never trained on), "
      f"{doppel}, {minutes} min per profile, seed 0; {cpu}; {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}.")
print(f"DI: MuseScore General soundfont {soundfont} by fluidsynth; devices: bench/heldout/devices.tsv.")
print("Each cell: ESR as a DAW plays the profile (its reported latency removed) / ESR at the best lag.")
print("Ratios: ESR as a DAW plays it over the real-DI profile's. Latency: what each profile reports.")
print()
others = [s for s in sources if s != "takeA"]
header = ["device", "setting"] + [TITLES.get(s, s) for s in sources]
header += [f"ratio {TITLES.get(s, s).split()[0]}/DI" for s in others] if "takeA" in sources else []
header += ["profile latency (samples)"]
print("| " + " | ".join(header) + " |")
print("|---|---|" + "---:|" * (len(header) - 2))
for device_id in ids:
    device, setting = rows[device_id][1:3]
    scores = {s: report(f"{device_id}/{s}.eval.json") for s in sources}
    cells = [device, setting] + [esr_cell(scores[s]) for s in sources]
    if "takeA" in sources:
        cells += [ratio(scores[s], scores["takeA"]) for s in others]
    cells.append(" / ".join(str(scores[s].get("profile_latency_samples", "n/a")) for s in sources))
    print("| " + " | ".join(cells) + " |")
PY
