#!/usr/bin/env bash
# bench/compressor.sh: learning a compressor, scored on held-out program material at knob
# settings that were never captured, as a DAW plays the profile.
#
# Devices: the built-in reference compressor (`doppel reference --device compressor`, RMS
# detector, 6 dB knee) and the Invada Compressor LV2 (mono, half RMS / half peak detection,
# no makeup, soft clip off), run offline by lv2file. Four knobs with real units:
# threshold_db, ratio, attack_ms, release_ms.
#
# Training data: the dynamics signal (`doppel signal --kind dynamics`) through each device at
#   grid36  3 thresholds (-36, -24, -12 dB) x 3 ratios (2, 4, 10) x 2 attacks (2, 30 ms)
#           x 2 releases (80, 1200 ms), 30 s per setting;
#   grid8   a half fraction of the 2^4 corners (8 settings, every knob at both ends, the
#           release sign the product of the other three), 60 s per setting.
# Held-out material: bench/heldout/make_program.py's band arrangement (GM drums, bass, keys,
# pad) rendered by fluidsynth from the MuseScore General soundfont, peak -3 dBFS, through the
# same device at three off-grid settings (OFF_GRID below).
# Architectures: the compressor (grey-box) model, and a WaveNet feather (--arch wavenet) on
# grid36 for comparison. Prints a markdown table: ESR, gain-reduction error (dB RMS, 10 ms
# windows above -60 dBFS) and doing nothing's, per setting, plus each profile's realtime
# factor from `doppel bench`.
#
# Optional tooling, not CI. Debian packages: fluidsynth, musescore-general-soundfont-lossless,
# sox, lv2file, invada-studio-plugins-lv2.
set -euo pipefail

usage() {
    echo "Usage: bench/compressor.sh [--minutes M] [--devices builtin,invada] [--designs grid36,grid8] [--no-wavenet] [--out DIR]"
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=${DOPPEL_BENCH_DIR:-$REPO/target/bench}/compressor
MINUTES=6
DEVICES=builtin,invada
DESIGNS=grid36,grid8
WAVENET=1
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES=$2; shift 2 ;;
        --devices) DEVICES=$2; shift 2 ;;
        --designs) DESIGNS=$2; shift 2 ;;
        --no-wavenet) WAVENET=0; shift ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

for tool in fluidsynth sox lv2file; do
    command -v "$tool" >/dev/null || { echo "bench/compressor.sh needs $tool (apt-get install fluidsynth sox lv2file invada-studio-plugins-lv2)" >&2; exit 1; }
done
SOUNDFONT=/usr/share/sounds/sf2/MuseScore_General_Full.sf2
[ -f "$SOUNDFONT" ] || { echo "missing $SOUNDFONT (apt-get install musescore-general-soundfont-lossless)" >&2; exit 1; }
INVADA=http://invadarecords.com/plugins/lv2/compressor/mono

DOPPEL=$REPO/target/release/doppel
(cd "$REPO" && cargo build --release --quiet -p doppel-cli)
mkdir -p "$OUT"
cd "$OUT"

# Off-grid settings: threshold_db ratio attack_ms release_ms.
OFF_GRID=("-30 3 8 400" "-18 6 15 150" "-33 2.5 4 900")

# device SETTING(4 numbers) IN OUT
render() {
    local device=$1 t=$2 r=$3 a=$4 rel=$5 in=$6 out=$7
    case "$device" in
        builtin)
            "$DOPPEL" reference --device compressor --input "$in" --output "$out" \
                --knob threshold_db="$t" --knob ratio="$r" --knob attack_ms="$a" --knob release_ms="$rel" 2>/dev/null ;;
        invada)
            lv2file -i "$in" -o "$out" -p bypass:0 -p rms:0.5 \
                -p attack:"$(echo "$a / 1000" | bc -l)" -p release:"$(echo "$rel / 1000" | bc -l)" \
                -p threshold:"$t" -p ratio:"$r" -p gain:0 -p noClip:0 "$INVADA" >/dev/null 2>&1 ;;
    esac
}

[ -f dyn30.wav ] || "$DOPPEL" signal --kind dynamics --seconds 30 --out dyn30.wav 2>/dev/null
[ -f dyn60.wav ] || "$DOPPEL" signal --kind dynamics --seconds 60 --out dyn60.wav 2>/dev/null
if [ ! -f program.wav ]; then
    python3 "$REPO/bench/heldout/make_program.py" . 2>/dev/null
    fluidsynth -ni -q -R 0 -C 0 -g 0.5 -r 48000 -O float -T wav -F program_raw.wav "$SOUNDFONT" program.mid
    sox program_raw.wav -e floating-point -b 32 program.wav remix 1-2 gain -n -3 2>/dev/null
fi

design_settings() {
    case "$1" in
        grid36)
            for t in -36 -24 -12; do for r in 2 4 10; do for a in 2 30; do for rel in 80 1200; do
                echo "$t $r $a $rel dyn30.wav"; done; done; done; done ;;
        grid8)
            for t in -36 -12; do for r in 2 10; do for a in 2 30; do
                sign=1; [ "$t" = -36 ] && sign=$((-sign)); [ "$r" = 2 ] && sign=$((-sign)); [ "$a" = 2 ] && sign=$((-sign))
                rel=1200; [ $sign -lt 0 ] && rel=80
                echo "$t $r $a $rel dyn60.wav"; done; done; done ;;
    esac
}

ROWS=()
IFS=, read -ra device_list <<<"$DEVICES"
IFS=, read -ra design_list <<<"$DESIGNS"
for device in "${device_list[@]}"; do
    for design in "${design_list[@]}"; do
        dir=$device-$design
        mkdir -p "$dir"
        : >"$dir/captures.toml"
        i=0
        while read -r t r a rel input; do
            i=$((i + 1))
            [ -f "$dir/c$i.wav" ] || render "$device" "$t" "$r" "$a" "$rel" "$input" "$dir/c$i.wav"
            printf '[[capture]]\ninput = "../%s"\ntarget = "c%s.wav"\nknobs = { threshold_db = %s, ratio = %s, attack_ms = %s, release_ms = %s }\n\n' \
                "$input" "$i" "$t" "$r" "$a" "$rel" >>"$dir/captures.toml"
        done < <(design_settings "$design")
        archs=(compressor)
        [ "$WAVENET" = 1 ] && [ "$design" = grid36 ] && archs+=(wavenet)
        for arch in "${archs[@]}"; do
            profile=$dir/$arch.doppel
            size=feather
            "$DOPPEL" train --captures "$dir/captures.toml" --effect compressor --arch "$arch" --size "$size" \
                --minutes "$MINUTES" --seed 1 --out "$profile" --json >"$dir/$arch.train.json" 2>"$dir/$arch.train.log"
            rtf=$("$DOPPEL" bench --profile "$profile" --json 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.4f" % j.get("realtime_factor", float("nan")))' || echo "?")
            for setting in "${OFF_GRID[@]}"; do
                read -r t r a rel <<<"$setting"
                target=$dir/program_${t}_${r}_${a}_${rel}.wav
                [ -f "$target" ] || render "$device" "$t" "$r" "$a" "$rel" program.wav "$target"
                line=$("$DOPPEL" eval --profile "$profile" --input program.wav --target "$target" \
                    --knob threshold_db="$t" --knob ratio="$r" --knob attack_ms="$a" --knob release_ms="$rel" --json)
                ROWS+=("$(python3 - "$device" "$design" "$arch" "$t/$r/$a/$rel" "$rtf" "$line" <<'PY'
import json, sys
device, design, arch, setting, rtf, line = sys.argv[1:]
j = json.loads(line)
print(f"| {device} | {design} | {arch} | {setting} | {j['esr']:.4f} | {j.get('gain_reduction_error_db', float('nan')):.2f} | {j.get('gain_reduction_error_db_bypass', float('nan')):.2f} | {rtf} |")
PY
)")
            done
        done
    done
done

{
    echo "| device | captures | model | off-grid setting (thr dB / ratio / attack ms / release ms) | ESR | gain-reduction error, dB | doing nothing, dB | realtime factor |"
    echo "|---|---|---|---|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
} | tee results.md
