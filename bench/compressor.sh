#!/usr/bin/env bash
# bench/compressor.sh: learning a compressor, scored on held-out program material at knob
# settings that were never captured, as a DAW plays the profile.
#
# Four knobs with real units on every device: threshold_db, ratio, attack_ms, release_ms, in
# the units the device itself labels them (the models learn each device's own mapping). Every
# other control is pinned; makeup is 0 dB (or absent) everywhere. Devices (--devices):
#   builtin        `doppel reference --device compressor`: RMS detector (5 ms window), 6 dB
#                  knee, makeup 0 dB; attack/release are time constants. Mono.
#   builtin-stereo the same, stereo-linked (louder channel), on stereo captures.
#   invada         Invada Compressor (mono) LV2; invada-stereo: Invada Compressor (stereo),
#                  linked on the louder channel. Pinned: bypass=0, rms=0.5 (RMS window
#                  0.5^3*SR/20+1 = 301 samples, 6.3 ms at 48 kHz; 0 = peak, 1 = 50 ms),
#                  gain=0 dB, noClip=0 (soft clip off). attack/release ports in seconds, as
#                  half-lives of the envelope. The ratio port is converted like a dB value
#                  (real ratio = 10^(port/20)), so it is set to 20*log10(ratio); port max 20
#                  = 10:1, threshold port min -36 dB: the grids just fit.
#   gx             GxCompressor (guitarix) LV2, mono. Pinned: KNEE=0 dB (hard knee; its knee
#                  starts compressing at threshold-knee), BYPASS=1 (an lv2:enabled port: 1
#                  processes, 0 bypasses); no makeup port. ATTACK/RELEASE in seconds, time
#                  constants; its detector averages |x| over a fixed 100 ms before them, so
#                  short attacks and releases act slower than set.
#   mda            MDA Dynamics LV2, stereo ports fed the mono capture on both inputs (output
#                  left channel kept). All ports 0..1, mapped at 48 kHz from the plugin's own
#                  display formulas: thresh=(dB+40)/40; ratio=(1.5-1/ratio)/2.5 (its gain
#                  1/(1+r(e/thr-1)) has slope 1/ratio at threshold and grows harder above);
#                  attack/release as half-lives. Pinned: output=0 (0 dB), limiter=1 (off),
#                  gate_thr=0 (gate off), mix=1 (no dry), so it runs compressor-only; gate_att
#                  and gate_rel stay at their defaults and do nothing with the gate off. Peak
#                  detector. Range limits: attack at most 1.44 ms, release at most 1444 ms, so
#                  its captures and off-grid settings are clamped there and labelled with the
#                  clamped values (grid36 then holds 18 distinct settings).
# Not used: SWH Dyson compressor (dysonCompress): only peak_limit (dB), release_time (0..1 s),
# cfrate and crate (0..1), no threshold, ratio or attack.
#
# Training data: the dynamics signal (`doppel signal --kind dynamics`; stereo devices use
# `--channels 2`) through each device at
#   grid36  3 thresholds (-36, -24, -12 dB) x 3 ratios (2, 4, 10) x 2 attacks (2, 30 ms)
#           x 2 releases (50, 2000 ms), 30 s per setting;
#   grid8   a half fraction of the 2^4 corners (8 settings, every knob at both ends, the
#           release sign the product of the other three), 60 s per setting.
# Held-out material: bench/heldout/make_program.py's band arrangement (GM drums, bass, keys,
# pad) rendered by fluidsynth from the MuseScore General soundfont, peak -3 dBFS (mono
# downmix, or the stereo render for stereo devices), through the same device at three
# off-grid settings (OFF_GRID below).
# Architectures: the compressor (grey-box) model, and on grid36 the candidates of --also
# (default a WaveNet feather; gru and lstm are knob-conditioned recurrent models carrying the
# envelope in their state, trained with --effect compressor's recipe), feather size, the same
# data and wall time. Prints a markdown table: ESR, gain-reduction error (dB RMS, 10 ms
# windows above -60 dBFS) and doing nothing's, per setting, plus each profile's realtime
# factor from `doppel bench`.
#
# Optional tooling, not CI. Debian packages: fluidsynth, musescore-general-soundfont-lossless,
# sox, lv2file, python3, bc, and for the LV2 devices invada-studio-plugins-lv2 (invada,
# invada-stereo), guitarix-lv2 (gx), mda-lv2 (mda).
set -euo pipefail

usage() {
    echo "Usage: bench/compressor.sh [--minutes M] [--devices builtin,invada] [--designs grid36,grid8] [--also wavenet,gru,lstm] [--no-wavenet] [--out DIR]"
    echo "  devices: builtin, builtin-stereo, invada, invada-stereo, gx, mda"
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=${DOPPEL_BENCH_DIR:-$REPO/target/bench}/compressor
MINUTES=6
DEVICES=builtin,invada
DESIGNS=grid36,grid8
# Candidates trained on grid36 besides the compressor model (--also), same data and budget.
ALSO=wavenet
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES=$2; shift 2 ;;
        --devices) DEVICES=$2; shift 2 ;;
        --designs) DESIGNS=$2; shift 2 ;;
        --no-wavenet) ALSO=; shift ;;
        --also) ALSO=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

for tool in fluidsynth sox lv2file python3 bc; do
    command -v "$tool" >/dev/null || { echo "bench/compressor.sh needs $tool (apt-get install fluidsynth sox lv2file python3 bc)" >&2; exit 1; }
done
SOUNDFONT=/usr/share/sounds/sf2/MuseScore_General_Full.sf2
[ -f "$SOUNDFONT" ] || { echo "missing $SOUNDFONT (apt-get install musescore-general-soundfont-lossless)" >&2; exit 1; }
INVADA=http://invadarecords.com/plugins/lv2/compressor/mono
INVADA_STEREO=http://invadarecords.com/plugins/lv2/compressor/stereo
GX='http://guitarix.sourceforge.net/plugins/gx_compressor#_compressor'
MDA=http://drobilla.net/plugins/mda/Dynamics

# LV2 plugin URI and Debian package of a device, or nothing for the built-in ones.
device_plugin() {
    case "$1" in
        builtin|builtin-stereo) ;;
        invada) echo "$INVADA invada-studio-plugins-lv2" ;;
        invada-stereo) echo "$INVADA_STEREO invada-studio-plugins-lv2" ;;
        gx) echo "$GX guitarix-lv2" ;;
        mda) echo "$MDA mda-lv2" ;;
        *) echo "unknown device $1" >&2; usage >&2; exit 2 ;;
    esac
}

# Whether a device takes stereo captures and program material.
is_stereo() {
    case "$1" in builtin-stereo|invada-stereo) return 0 ;; *) return 1 ;; esac
}

IFS=, read -ra device_list <<<"$DEVICES"
IFS=, read -ra design_list <<<"$DESIGNS"
NEED_STEREO=0
for device in "${device_list[@]}"; do
    plugin=$(device_plugin "$device")
    if [ -n "$plugin" ]; then
        read -r uri package <<<"$plugin"
        grep -qxF "$uri" <(lv2file -l 2>/dev/null | cut -f2) ||
            { echo "device $device needs the LV2 plugin $uri (apt-get install $package)" >&2; exit 1; }
    fi
    if is_stereo "$device"; then NEED_STEREO=1; fi
done

DOPPEL=$REPO/target/release/doppel
(cd "$REPO" && cargo build --release --quiet -p doppel-cli)
mkdir -p "$OUT"
cd "$OUT"

# Off-grid settings: threshold_db ratio attack_ms release_ms (releases inside 50..2000 ms).
OFF_GRID=("-30 3 8 400" "-18 6 15 150" "-33 2.5 4 900")

# device SETTING(4 numbers) -> the setting the device can actually play, which its captures
# and off-grid scores are labelled with. Only mda clamps: its attack half-life tops out at
# 1.44 ms and its release at 1444 ms (at 48 kHz). Every other grid and off-grid value is in
# range on every device (Invada: threshold >= -36 dB, ratio <= 10:1).
device_knobs() {
    local device=$1 t=$2 r=$3 a=$4 rel=$5
    case "$device" in
        mda)
            a=$(awk -v v="$a" 'BEGIN { print (v > 1.44) ? 1.44 : v }')
            rel=$(awk -v v="$rel" 'BEGIN { print (v > 1444) ? 1444 : v }') ;;
    esac
    echo "$t $r $a $rel"
}

# MDA Dynamics' 0..1 ports for threshold_db ratio attack_ms release_ms at 48 kHz, inverting
# its display formulas: threshold 40*thresh-40 dB; ratio 1/(1-r), r = 2.5*ratio-0.5 in
# 0..1 (compressor-only mode); attack and release coefficients 10^(-0.002-2*attack) and
# 10^(-2-3*release) per sample, displayed as the half-life -log(2)/(SR*log(1-coefficient)).
mda_ports() {
    python3 - "$@" <<'PY'
import math, sys
t, r, a, rel = map(float, sys.argv[1:])
sr = 48000.0
clamp = lambda v: min(1.0, max(0.0, v))
coefficient = lambda ms: 1.0 - 0.5 ** (1000.0 / (sr * ms))
print(" ".join("%.6f" % clamp(v) for v in (
    (t + 40.0) / 40.0,
    (1.5 - 1.0 / r) / 2.5,
    (-0.002 - math.log10(coefficient(a))) / 2.0,
    (-2.0 - math.log10(coefficient(rel))) / 3.0,
)))
PY
}

# device SETTING(4 numbers) IN OUT; mono devices get mono IN, stereo devices stereo IN.
render() {
    local device=$1 t=$2 r=$3 a=$4 rel=$5 in=$6 out=$7
    case "$device" in
        builtin|builtin-stereo)
            # makeup 0 dB, RMS detector, 6 dB knee (the reference's defaults); a stereo IN
            # is compressed stereo-linked.
            "$DOPPEL" reference --device compressor --input "$in" --output "$out" \
                --knob threshold_db="$t" --knob ratio="$r" --knob attack_ms="$a" --knob release_ms="$rel" 2>/dev/null ;;
        invada|invada-stereo)
            # Pinned: bypass=0, rms=0.5 (6.3 ms RMS window), gain=0 dB, noClip=0. attack,
            # release: seconds (half-lives). threshold: dB. ratio: 20*log10(ratio), the
            # plugin turning the port into 10^(port/20). Stereo: inL/inR by channel order.
            local uri=$INVADA
            [ "$device" = invada-stereo ] && uri=$INVADA_STEREO
            lv2file -i "$in" -o "$out" -p bypass:0 -p rms:0.5 \
                -p attack:"$(echo "$a / 1000" | bc -l)" -p release:"$(echo "$rel / 1000" | bc -l)" \
                -p threshold:"$t" -p ratio:"$(echo "20 * l($r) / l(10)" | bc -l)" \
                -p gain:0 -p noClip:0 "$uri" >/dev/null 2>&1 ;;
        gx)
            # Pinned: KNEE=0 dB (hard knee), BYPASS=1 (lv2:enabled, so on). THRESHOLD: dB,
            # RATIO: x:1, ATTACK and RELEASE: seconds (time constants).
            lv2file -i "$in" -o "$out" -p THRESHOLD:"$t" -p RATIO:"$r" -p KNEE:0 \
                -p ATTACK:"$(echo "$a / 1000" | bc -l)" -p RELEASE:"$(echo "$rel / 1000" | bc -l)" \
                -p BYPASS:1 "$GX" >/dev/null 2>&1 ;;
        mda)
            # Pinned: output=0 (0 dB), limiter=1 (off), gate_thr=0 (off), mix=1 (wet only);
            # gate_att, gate_rel at defaults (inert). thresh, ratio, attack, release from
            # mda_ports. The mono IN feeds left_in and right_in; the left output is kept.
            local p_thr p_ratio p_att p_rel
            read -r p_thr p_ratio p_att p_rel < <(mda_ports "$t" "$r" "$a" "$rel")
            lv2file -i "$in" -o "$out.2ch.wav" -c 1:left_in -c 1:right_in \
                -p thresh:"$p_thr" -p ratio:"$p_ratio" -p attack:"$p_att" -p release:"$p_rel" \
                -p output:0 -p limiter:1 -p gate_thr:0 -p mix:1 "$MDA" >/dev/null 2>&1
            sox "$out.2ch.wav" -e floating-point -b 32 "$out" remix 1 2>/dev/null
            rm -f "$out.2ch.wav" ;;
    esac
}

[ -f dyn30.wav ] || "$DOPPEL" signal --kind dynamics --seconds 30 --out dyn30.wav 2>/dev/null
[ -f dyn60.wav ] || "$DOPPEL" signal --kind dynamics --seconds 60 --out dyn60.wav 2>/dev/null
if [ "$NEED_STEREO" = 1 ]; then
    [ -f dyn30s.wav ] || "$DOPPEL" signal --kind dynamics --channels 2 --seconds 30 --out dyn30s.wav 2>/dev/null
    [ -f dyn60s.wav ] || "$DOPPEL" signal --kind dynamics --channels 2 --seconds 60 --out dyn60s.wav 2>/dev/null
fi
if [ ! -f program.wav ] || [ ! -f program_stereo.wav ]; then
    if [ ! -f program_raw.wav ]; then
        python3 "$REPO/bench/heldout/make_program.py" . 2>/dev/null
        fluidsynth -ni -q -R 0 -C 0 -g 0.5 -r 48000 -O float -T wav -F program_raw.wav "$SOUNDFONT" program.mid
    fi
    # fluidsynth renders stereo: program.wav is its mono downmix, program_stereo.wav the
    # stereo render itself, each normalised to -3 dBFS peak.
    sox program_raw.wav -e floating-point -b 32 program.wav remix 1-2 gain -n -3 2>/dev/null
    sox program_raw.wav -e floating-point -b 32 program_stereo.wav gain -n -3 2>/dev/null
fi

design_settings() {
    case "$1" in
        grid36)
            for t in -36 -24 -12; do for r in 2 4 10; do for a in 2 30; do for rel in 50 2000; do
                echo "$t $r $a $rel dyn30.wav"; done; done; done; done ;;
        grid8)
            for t in -36 -12; do for r in 2 10; do for a in 2 30; do
                sign=1; [ "$t" = -36 ] && sign=$((-sign)); [ "$r" = 2 ] && sign=$((-sign)); [ "$a" = 2 ] && sign=$((-sign))
                rel=2000; [ $sign -lt 0 ] && rel=50
                echo "$t $r $a $rel dyn60.wav"; done; done; done ;;
    esac
}

ROWS=()
for device in "${device_list[@]}"; do
    program=program.wav
    is_stereo "$device" && program=program_stereo.wav
    for design in "${design_list[@]}"; do
        dir=$device-$design
        mkdir -p "$dir"
        # Renders are cached by file name; drop them when this device's recipe (the render
        # code, knob clamping, the design's settings) differs from the one they came from.
        recipe=$({ echo "$device $design"; declare -f render device_knobs mda_ports design_settings; } | sha1sum | cut -d' ' -f1)
        if [ "$(cat "$dir/recipe" 2>/dev/null || true)" != "$recipe" ]; then
            rm -f "$dir"/*.wav
            echo "$recipe" >"$dir/recipe"
        fi
        : >"$dir/captures.toml"
        i=0
        declare -A seen=()
        while read -r t r a rel input; do
            # What the device can play (mda clamps); a setting clamped onto one already
            # captured is not captured twice.
            read -r t r a rel <<<"$(device_knobs "$device" "$t" "$r" "$a" "$rel")"
            [ -n "${seen["$t $r $a $rel"]:-}" ] && continue
            seen["$t $r $a $rel"]=1
            is_stereo "$device" && input=${input%.wav}s.wav
            i=$((i + 1))
            [ -f "$dir/c$i.wav" ] || render "$device" "$t" "$r" "$a" "$rel" "$input" "$dir/c$i.wav"
            printf '[[capture]]\ninput = "../%s"\ntarget = "c%s.wav"\nknobs = { threshold_db = %s, ratio = %s, attack_ms = %s, release_ms = %s }\n\n' \
                "$input" "$i" "$t" "$r" "$a" "$rel" >>"$dir/captures.toml"
        done < <(design_settings "$design")
        archs=(compressor)
        if [ -n "$ALSO" ] && [ "$design" = grid36 ]; then
            IFS=, read -ra extra <<<"$ALSO"
            archs+=("${extra[@]}")
        fi
        for arch in "${archs[@]}"; do
            profile=$dir/$arch.doppel
            size=feather
            "$DOPPEL" train --captures "$dir/captures.toml" --effect compressor --arch "$arch" --size "$size" \
                --minutes "$MINUTES" --seed 1 --out "$profile" --json >"$dir/$arch.train.json" 2>"$dir/$arch.train.log"
            rtf=$("$DOPPEL" bench --profile "$profile" --json 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.4f" % j.get("realtime_factor", float("nan")))' || echo "?")
            for setting in "${OFF_GRID[@]}"; do
                read -r t r a rel <<<"$(device_knobs "$device" $setting)"
                target=$dir/program_${t}_${r}_${a}_${rel}.wav
                [ -f "$target" ] || render "$device" "$t" "$r" "$a" "$rel" "$program" "$target"
                line=$("$DOPPEL" eval --profile "$profile" --input "$program" --target "$target" \
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
