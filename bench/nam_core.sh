#!/usr/bin/env bash
# bench/nam_core.sh: real-time cost of Doppel's streaming kernels against NeuralAmpModelerCore
# (NAM's C++/Eigen plugin core) on the same .nam files, one pinned core, 48 kHz.
#
# Optional tooling, not CI. See bench/README.md for prerequisites and expected output.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/nam_core.sh [OPTIONS] [NAM_CORE_SRC_DIR] [FILE.nam ...]

Builds NeuralAmpModelerCore's `benchmodel` tools from source, then for each .nam file (or,
when none is given, random-weight WaveNets of the standard/lite/feather/nano sizes made by
bench/make_nam_models.py) times NAM core and Doppel (`doppel import` + `doppel bench`) on one
pinned CPU core and prints a markdown table of realtime factors (processing time / audio
time at 48 kHz; lower is faster).

NAM_CORE_SRC_DIR  a NeuralAmpModelerCore checkout (default: $WORK/NeuralAmpModelerCore,
                  cloned with its submodules from GitHub when missing).

Options:
  --blocks "N ..."   block sizes in samples (default "64"; e.g. "1 32 64 128 512")
  --flags WHICH      NAM core compiler flags: upstream (its CMake Release flags), native
                     (the same plus -march=native), or both (default: both)
  --repeats N        runs per measurement; the fastest is reported (default 3)
  --cpu N            core to pin every run to with taskset (default 0)
  --doppel PATH      doppel binary to use (default: cargo build --release -p doppel-cli)
  --python PATH      python with the neural-amp-modeler package, for the default models
                     (default: $NAM_PYTHON, else python3)
  -h, --help         this text

Environment: DOPPEL_BENCH_DIR (work folder, default <repo>/target/bench), NAM_PYTHON.
EOF
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${DOPPEL_BENCH_DIR:-$REPO/target/bench}
NAM_CORE_URL=https://github.com/sdatkinson/NeuralAmpModelerCore
SAMPLE_RATE_HZ=48000
SRC=""
MODELS=()
BLOCKS="64"
FLAGS="both"
REPEATS=3
CPU=0
DOPPEL=""
PYTHON=${NAM_PYTHON:-python3}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --blocks) BLOCKS=$2; shift 2 ;;
        --flags) FLAGS=$2; shift 2 ;;
        --repeats) REPEATS=$2; shift 2 ;;
        --cpu) CPU=$2; shift 2 ;;
        --doppel) DOPPEL=$2; shift 2 ;;
        --python) PYTHON=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *)
            if [[ -d $1 && -z $SRC && ${#MODELS[@]} -eq 0 ]]; then
                SRC=$(cd "$1" && pwd)
            elif [[ -f $1 ]]; then
                MODELS+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")")
            else
                echo "not a NAM core source folder or a .nam file: $1" >&2; exit 2
            fi
            shift ;;
    esac
done
case "$FLAGS" in
    upstream) FLAVOURS=(upstream) ;;
    native) FLAVOURS=(native) ;;
    both) FLAVOURS=(upstream native) ;;
    *) echo "--flags must be upstream, native or both" >&2; exit 2 ;;
esac
[[ $REPEATS =~ ^[1-9][0-9]*$ ]] || { echo "--repeats must be a positive integer" >&2; exit 2; }
for block in $BLOCKS; do
    [[ $block =~ ^[1-9][0-9]*$ && $block -le 4096 ]] || { echo "block $block is not in 1..4096" >&2; exit 2; }
done
mkdir -p "$WORK"
log() { echo "[nam_core] $*" >&2; }

# --- prerequisites -----------------------------------------------------------------------------

# Installs (as root) or names the Debian packages behind missing build tools, then exits if
# something is still missing.
require_packages() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v g++ >/dev/null || missing+=(g++)
    command -v make >/dev/null || missing+=(make)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v python3 >/dev/null || missing+=(python3)
    [[ -f /usr/include/eigen3/Eigen/Dense ]] || missing+=(libeigen3-dev)
    [[ -f /usr/include/nlohmann/json.hpp ]] || missing+=(nlohmann-json3-dev)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local command="apt-get install -y ${missing[*]}"
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
            { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2; }
    else
        echo "missing build prerequisites; install them with:" >&2
        echo "  sudo apt-get update && sudo $command" >&2
        exit 1
    fi
}

# Sets SRC to a NeuralAmpModelerCore source tree, cloning it when none was given.
find_source() {
    if [[ -z $SRC ]]; then
        SRC=$WORK/NeuralAmpModelerCore
        if [[ ! -f $SRC/tools/benchmodel.cpp ]]; then
            log "cloning $NAM_CORE_URL into $SRC"
            if ! git clone --depth 1 --recurse-submodules --shallow-submodules "$NAM_CORE_URL" "$SRC" >&2; then
                echo "cannot clone $NAM_CORE_URL (no network?): pass a local checkout as NAM_CORE_SRC_DIR" >&2
                exit 1
            fi
        fi
    fi
    [[ -f $SRC/tools/benchmodel.cpp && -f $SRC/NAM/dsp.h ]] ||
        { echo "$SRC does not look like NeuralAmpModelerCore (no tools/benchmodel.cpp)" >&2; exit 1; }
    # The render tool (not benchmodel) needs the AudioDSPTools submodule, and CMake refuses to
    # configure without it; fetch it when the tree is a git checkout and the network allows.
    if [[ ! -f $SRC/Dependencies/AudioDSPTools/dsp/wav.cpp && -e $SRC/.git ]]; then
        git -C "$SRC" submodule update --init --depth 1 Dependencies/AudioDSPTools >&2 2>/dev/null || true
    fi
}

# --- building NAM core -------------------------------------------------------------------------

# Extra compiler flags for a flavour, pointing at the Debian Eigen / json headers when the
# source tree's submodule / vendored copies are absent.
extra_cxx_flags() {
    local flavour=$1 flags=""
    [[ -f $SRC/Dependencies/eigen/Eigen/Dense ]] || flags+=" -isystem /usr/include/eigen3"
    [[ -f $SRC/Dependencies/nlohmann/json.hpp ]] || flags+=" -I/usr/include/nlohmann"
    [[ $flavour == native ]] && flags+=" -march=native"
    echo "${flags# }"
}

# Builds benchmodel and benchmodel_bufsize for a flavour into $WORK/nam-core-<flavour>; prints
# the folder holding the two executables.
build_nam_core() {
    local flavour=$1 build=$WORK/nam-core-$flavour flags
    flags=$(extra_cxx_flags "$flavour")
    mkdir -p "$build"
    if [[ -f $SRC/Dependencies/AudioDSPTools/dsp/wav.cpp ]]; then
        log "building NAM core ($flavour flags${flags:+: $flags}) with CMake in $build"
        cmake -S "$SRC" -B "$build/cmake" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="$flags" >"$build/cmake.log" 2>&1 ||
            { cat "$build/cmake.log" >&2; exit 1; }
        cmake --build "$build/cmake" --target benchmodel benchmodel_bufsize -j "$(nproc)" >>"$build/cmake.log" 2>&1 ||
            { tail -40 "$build/cmake.log" >&2; exit 1; }
        echo "$build/cmake/tools"
    else
        # Without AudioDSPTools CMake cannot configure; compile the two tools directly with
        # the flags upstream's CMake uses for them in Release (-O3 -DNDEBUG, -Ofast, LTO).
        log "building NAM core ($flavour flags) directly with g++ (no AudioDSPTools submodule)"
        local tool sources=("$SRC"/NAM/*.cpp "$SRC"/NAM/*/*.cpp)
        for tool in benchmodel benchmodel_bufsize; do
            if [[ ! -x $build/$tool || -n $(find "$SRC/NAM" "$SRC/tools/$tool.cpp" -newer "$build/$tool" -print -quit) ]]; then
                # shellcheck disable=SC2086  # $flags is a list of flags
                g++ -std=c++20 -O3 -DNDEBUG -Ofast -flto=auto -DNAM_ENABLE_A2_FAST $flags \
                    -I"$SRC" -I"$SRC/Dependencies/nlohmann" -isystem "$SRC/Dependencies/eigen" \
                    "$SRC/tools/$tool.cpp" "${sources[@]}" -o "$build/$tool" -lstdc++fs >&2
            fi
        done
        echo "$build"
    fi
}

# --- measuring ---------------------------------------------------------------------------------

# Smallest of the numbers on stdin.
minimum() { sort -g | head -1; }

# NAM core realtime factor of a model at a block size: the fastest of $REPEATS runs.
# `benchmodel` (block 64 only) processes (48000 / 64) * 2 = 1500 blocks of zeros, 2.0 s of
# audio at 48 kHz, right after Reset, and prints the elapsed milliseconds (as an integer, then
# as a double). `benchmodel_bufsize MODEL B 1` processes floor(96000 / B) blocks of B zeros
# once as warm-up, then times one more pass and prints "B,microseconds".
nam_rtf() {
    local tools=$1 model=$2 block=$3 run samples seconds
    for ((run = 0; run < REPEATS; run++)); do
        if [[ $block -eq 64 ]]; then
            samples=96000
            seconds=$(taskset -c "$CPU" "$tools/benchmodel" "$model" | grep -E '^[0-9.]+ms$' | tail -1 | sed 's/ms$//')
            seconds=$(awk -v ms="$seconds" 'BEGIN { print ms / 1000 }')
        else
            samples=$((96000 / block * block))
            seconds=$(taskset -c "$CPU" "$tools/benchmodel_bufsize" "$model" "$block" 1 | tail -1 | cut -d, -f2)
            seconds=$(awk -v us="$seconds" 'BEGIN { print us / 1e6 }')
        fi
        [[ -n $seconds ]] || { echo "NAM core printed no timing for $model" >&2; return 1; }
        awk -v s="$seconds" -v n="$samples" -v rate="$SAMPLE_RATE_HZ" 'BEGIN { printf "%.6f\n", s / (n / rate) }'
    done | minimum
}

# Doppel realtime factor of a profile at a block size: the fastest of $REPEATS runs of
# `doppel bench` (1 s warm-up, then 10 s of a guitar-like test phrase, one thread).
doppel_rtf() {
    local profile=$1 block=$2 run
    for ((run = 0; run < REPEATS; run++)); do
        taskset -c "$CPU" "$DOPPEL" bench --profile "$profile" --block "$block" --json |
            python3 -c 'import json, sys; print("%.6f" % json.load(sys.stdin)["realtime_factor"])'
    done | minimum
}

# --- main --------------------------------------------------------------------------------------

require_packages
find_source
declare -A TOOLS
for flavour in "${FLAVOURS[@]}"; do
    TOOLS[$flavour]=$(build_nam_core "$flavour")
done

if [[ ${#MODELS[@]} -eq 0 ]]; then
    mkdir -p "$WORK/nam_models"
    for size in standard lite feather nano; do MODELS+=("$WORK/nam_models/wavenet_$size.nam"); done
    if ! ls "${MODELS[@]}" >/dev/null 2>&1; then
        "$PYTHON" -c 'import nam' 2>/dev/null || {
            echo "$PYTHON cannot import nam: set NAM_PYTHON (or --python) to a python with" >&2
            echo "  pip install neural-amp-modeler   (CPU torch is enough), or pass .nam files" >&2
            exit 1
        }
        log "writing random-weight NAM WaveNets to $WORK/nam_models"
        "$PYTHON" "$REPO/bench/make_nam_models.py" --out "$WORK/nam_models" >&2
    fi
fi

if [[ -z $DOPPEL ]]; then
    log "building doppel (cargo build --release -p doppel-cli)"
    (cd "$REPO" && cargo build --release -p doppel-cli >&2)
    DOPPEL=$REPO/target/release/doppel
fi
HAVE_IMPORT=1
if ! "$DOPPEL" import --help >/dev/null 2>&1; then
    log "this doppel has no 'import' subcommand yet: the Doppel column will say n/a"
    HAVE_IMPORT=0
fi

mkdir -p "$WORK/doppel_profiles"
RESULTS=$WORK/nam_core_results.md
{
    echo "NAM core vs Doppel, realtime factor on one core (taskset -c $CPU), 48 kHz, fastest of $REPEATS runs."
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(date -u +%Y-%m-%dT%H:%MZ)."
    echo "NAM/Doppel = faster NAM core build's RTF / Doppel's RTF (above 1: Doppel is faster)."
    echo
    header="| file | architecture/size | weights | block |"
    rule="|---|---|---:|---:|"
    for flavour in "${FLAVOURS[@]}"; do
        header+=" NAM core RTF ($flavour) |"
        rule+="---:|"
    done
    echo "$header Doppel RTF | NAM/Doppel |"
    echo "$rule---:|---:|"
} | tee "$RESULTS"

for model in "${MODELS[@]}"; do
    IFS=$'\t' read -r label weights rate < <(python3 "$REPO/bench/nam_describe.py" "$model")
    [[ $rate == 48000* || $rate == "?" ]] || log "$(basename "$model") is a ${rate} Hz model; timings are still per 48 kHz of audio"
    profile=$WORK/doppel_profiles/$(basename "${model%.nam}").doppel
    doppel_note=""
    if [[ $HAVE_IMPORT -eq 1 ]]; then
        if ! "$DOPPEL" import "$model" --out "$profile" >"$profile.log" 2>&1; then
            doppel_note="import failed: $(tail -1 "$profile.log")"
            log "doppel import $(basename "$model") failed: $(cat "$profile.log")"
        fi
    else
        doppel_note="n/a (no doppel import)"
    fi
    for block in $BLOCKS; do
        row="| $(basename "$model") | $label | $weights | $block |"
        best_nam=""
        for flavour in "${FLAVOURS[@]}"; do
            rtf=$(nam_rtf "${TOOLS[$flavour]}" "$model" "$block") || rtf="failed"
            row+=" $rtf |"
            if [[ $rtf != failed ]]; then
                best_nam=$(printf '%s\n' $best_nam "$rtf" | minimum)
            fi
        done
        if [[ -z $doppel_note ]]; then
            doppel=$(doppel_rtf "$profile" "$block") || doppel="failed"
        else
            doppel=$doppel_note
        fi
        if [[ -n $best_nam && $doppel =~ ^[0-9.]+$ ]]; then
            ratio=$(awk -v n="$best_nam" -v d="$doppel" 'BEGIN { if (d > 0) printf "%.2f", n / d; else print "inf" }')
        else
            ratio="-"
        fi
        echo "$row $doppel | $ratio |" | tee -a "$RESULTS"
    done
done
log "table saved to $RESULTS"
